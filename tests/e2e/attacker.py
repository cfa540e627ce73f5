"""Shared pieces of the attacker suite (tests/e2e/test_attack_*.py).

Every attack test follows the same shape, with real clients only:
  1. a bystander (another person, another connection) opens an interactive session first;
  2. the attacker does their worst;
  3. castgate is still serving (a new session works), the bystander's session still echoes, and
     once it ends its chain verifies on its own;
  4. the attacker's session was either refused with an audit event, or recorded in full (the
     marked text the attacker produced is in the record).
"""

from __future__ import annotations

import contextlib
import pathlib
import secrets

import paramiko
import pytest

from harness import LOGIN, TEST_USER, Keys, Tmux, player, pubkey, run, wait_until

# alice watches (the bystander); mallory attacks: signed in, allowed onto db1.int like alice;
# nobody is signed in but has no rights at all.
ATTACK_POLICY = {
    "rules": [
        {"name": "ops", "groups": ["ops"], "targets": ["*"], "logins": [LOGIN, TEST_USER],
         "port_forwarding": True},
    ]
}


def attack_identities(keys: Keys) -> str:
    return "\n".join([
        f'identity="alice",email="alice@example.com",groups="ops",kind=human {pubkey(keys.alice)}',
        f'identity="mallory",email="mallory@example.com",groups="ops",kind=human {pubkey(keys.eve)}',
        f'identity="nobody",kind=human {pubkey(keys.bob)}',
    ])


def attack_gateway(gateway_factory, sshd, keys: Keys, **kw):
    """castgate in front of one OpenSSH target (db1.int), with the attack identities."""
    return gateway_factory([{"name": "db1.int", "host": "127.0.0.1", "port": sshd.port}],
                           [sshd.known_hosts_line()], policy=ATTACK_POLICY,
                           identities=attack_identities(keys), bound={"db1.int": "db1.int"}, **kw)


@pytest.fixture
def target_gateway(gateway_factory, sshd, keys):
    return attack_gateway(gateway_factory, sshd, keys)


@pytest.fixture
def test_user_password(test_account):
    """A password for the unprivileged test account (sudo asks for it), removed afterwards."""
    password = "pw-" + secrets.token_hex(12)
    run(["chpasswd"], input=f"{TEST_USER}:{password}\n".encode(), check=True)
    yield password
    run(["usermod", "-p", "*", TEST_USER], check=True)


@contextlib.contextmanager
def watching(gw, keys: Keys):
    """A bystander in session while the attack runs, and the checks every attack ends with."""
    bystander = Bystander(gw, keys)
    try:
        yield gw
        still_serving(gw, keys)
        bystander.finish()
    finally:
        bystander.close()


@pytest.fixture
def watched(target_gateway, keys):
    """The gateway, a bystander already in session, and the checks every attack ends with."""
    with watching(target_gateway, keys) as gw:
        yield gw


def paramiko_mallory(gw, keys: Keys, user: str = f"{LOGIN}@db1.int") -> paramiko.Transport:
    """mallory signed in with paramiko, which sends whatever it is told to."""
    t = paramiko.Transport(("127.0.0.1", gw.shared_port))
    t.start_client(timeout=15)
    t.auth_publickey(user, paramiko.Ed25519Key.from_private_key_file(str(keys.eve)))
    return t


def mallory_session(gw) -> str:
    return wait_until(lambda: sessions_of(gw, "mallory")[-1:], 15, "mallory's session")[0]


def marker(prefix: str = "MARK") -> str:
    return f"{prefix}-{secrets.token_hex(6)}"


class Bystander:
    """Another person's interactive session, opened before an attack and checked after it."""

    def __init__(self, gw, keys: Keys, target: str = "db1.int", source: str | None = None):
        self.gw = gw
        before = {e["castgate"]["session"] for e in gw.events()
                  if e["event"]["action"] == "session.start"}
        extra = ["-tt"] + (["-b", source] if source else [])  # another loopback address
        self.term = Tmux(gw.ssh_args(keys.alice, None, extra) + [f"{LOGIN}@{target}@127.0.0.1"])
        self.term.type("export PS1='bystander$ '")
        self.term.wait_for("bystander$")
        start = gw.wait_event(lambda e: e["event"]["action"] == "session.start" and
                              e["castgate"]["session"] not in before and
                              e["user"]["id"] == "alice", what="the bystander's session")
        self.session = start["castgate"]["session"]
        self.echo("before")

    def echo(self, what: str, timeout: float = 10):
        token = f"{what}-{secrets.token_hex(4)}"
        self.term.type(f"echo {token}")
        self.term.wait_for(f"\n{token}", timeout=timeout)

    def finish(self):
        """Still answers, ends cleanly, and its record verifies on its own."""
        try:
            self.echo("after")
            self.term.type("exit")
            self.term.wait_for("CLIENT-EXIT=0", timeout=15)
        finally:
            self.term.close()
        self.gw.wait_event(lambda e: e["event"]["action"] == "session.end" and
                           e["castgate"]["session"] == self.session, what="the bystander's end")
        r = player("verify", "--key", str(self.gw.keys.recording_pub), "--session", self.session,
                   str(self.gw.stdout_path))
        assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()

    def close(self):
        self.term.close()


def still_serving(gw, keys: Keys):
    """A fresh session works after the attack."""
    token = marker("fresh")
    r = gw.ssh(keys.alice, f"echo {token}", f"{LOGIN}@db1.int", timeout=60)
    assert r.stdout.decode(errors="replace").strip() == token, r.stderr
    assert gw.proc.alive()


def sessions_of(gw, user_id: str) -> list[str]:
    return [e["castgate"]["session"] for e in gw.events()
            if e["event"]["action"] in ("session.start", "policy.denied") and
            e.get("user", {}).get("id") == user_id]


def recorded_text(gw, session: str) -> str:
    """Everything the record of `session` shows and receives, and every string field of its
    other events, as one text to search."""
    parts = []
    for e in gw.events():
        if e["castgate"]["session"] != session:
            continue
        if "asciicast" in e and "event" in e["asciicast"]:
            parts.append(e["asciicast"]["event"][2])
        else:
            parts.append(repr(e))
    return "\n".join(parts)


def assert_recorded(gw, session: str, text: str, timeout: float = 15):
    wait_until(lambda: text in recorded_text(gw, session), timeout,
               f"{text!r} in the record of session {session}")


def events_of(gw, session: str, action: str | None = None) -> list[dict]:
    return [e for e in gw.events() if e["castgate"]["session"] == session and
            (action is None or e["event"]["action"] == action)]


def path_with_bytes(base: pathlib.Path, raw_name: bytes) -> bytes:
    return bytes(base) + b"/" + raw_name
