"""Locks (--locks): during an incident an operator names identities, groups or targets in a file
(a ConfigMap in Kubernetes); castgate ends the matching live sessions with the lock's reason
within seconds, refuses new ones, and lets everyone else work on. Real OpenSSH clients in
terminals, a real OpenSSH target."""

from __future__ import annotations

import json
import os
import pathlib
import time

import pytest

from attacker import ATTACK_POLICY, Bystander, attack_identities, marker
from harness import LOGIN, Tmux

pytestmark = pytest.mark.timeout(180)


def write_locks(path: pathlib.Path, content) -> None:
    """As an editor or a ConfigMap update does: a new file renamed over the old one."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(content if isinstance(content, str) else json.dumps(content))
    os.replace(tmp, path)


class Shell:
    """An interactive session of `key`'s owner on `target`, in a terminal."""

    def __init__(self, gw, key, target):
        self.term = Tmux(gw.ssh_args(key, None, ["-tt"]) + [f"{LOGIN}@{target}@127.0.0.1"])
        self.term.type("export PS1='shell$ '")
        self.term.wait_for("shell$")

    def echo(self):
        token = marker("alive")
        self.term.type(f"echo {token}")
        self.term.wait_for(f"\n{token}", timeout=10)

    def close(self):
        self.term.close()


@pytest.fixture
def locked_gateway(gateway_factory, sshd, keys, tmp_path):
    lock_dir = tmp_path / "locks"
    lock_dir.mkdir()
    lock_file = lock_dir / "locks.json"
    write_locks(lock_file, {"locks": []})
    targets = [{"name": "db1.int", "host": "127.0.0.1", "port": sshd.port},
               {"name": "web1.int", "host": "127.0.0.1", "port": sshd.port}]
    gw = gateway_factory(targets, [sshd.known_hosts_line()], policy=ATTACK_POLICY,
                         identities=attack_identities(keys), extra_args=["--locks", str(lock_file)])
    return gw, lock_file


def refused(gw, key, target) -> bytes:
    r = gw.ssh(key, "echo should-not-run", f"{LOGIN}@{target}", extra=["-o", "LogLevel=INFO"])
    assert b"should-not-run" not in r.stdout and r.returncode != 0
    return r.stderr


def test_a_lock_ends_matching_sessions_in_seconds_and_refuses_new_ones(locked_gateway, keys):
    gw, lock_file = locked_gateway
    alice = Bystander(gw, keys)  # alice on db1.int
    mallory = Shell(gw, keys.eve, "web1.int")
    try:
        # Alice's laptop is stolen: lock her out, everywhere.
        write_locks(lock_file, {"locks": [{"identities": ["alice"],
                                           "reason": "INC-4711 laptop reported stolen"}]})
        start = time.monotonic()
        screen = alice.term.wait_for("CLIENT-EXIT=", timeout=10)
        assert time.monotonic() - start < 5
        assert "access locked by an administrator: INC-4711 laptop reported stolen" in screen
        end = gw.wait_event(lambda e: e["event"]["action"] == "session.end" and
                            e["castgate"]["session"] == alice.session, what="alice's end")
        assert end["castgate"]["end_reason"] == "locked"
        mallory.echo()  # everyone else works on
        assert b"INC-4711 laptop reported stolen" in refused(gw, keys.alice, "db1.int")
        denied = gw.wait_event(lambda e: e["event"]["action"] == "policy.denied" and
                               e["castgate"].get("denial") == "locked", what="the refusal")
        assert denied["user"]["id"] == "alice"

        # A lock on a target: mallory's session there ends, alice (unlocked) may work again.
        write_locks(lock_file, {"locks": [{"targets": ["web*.int"], "reason": "emergency patch"}]})
        screen = mallory.term.wait_for("CLIENT-EXIT=", timeout=10)
        assert "access locked by an administrator: emergency patch" in screen
        r = gw.ssh(keys.alice, "echo alice-back", f"{LOGIN}@db1.int")
        assert r.stdout == b"alice-back\n", r.stderr
        assert b"emergency patch" in refused(gw, keys.eve, "web1.int")

        # A broken file, or none, lifts nothing: the locks in force stay (and castgate says why).
        write_locks(lock_file, '{"locks": [{"targets": ["web*.int"]')
        time.sleep(1.5)
        assert b"emergency patch" in refused(gw, keys.eve, "web1.int")
        lock_file.unlink()
        time.sleep(1.5)
        assert b"emergency patch" in refused(gw, keys.eve, "web1.int")
        assert "locks:" in gw.stderr() and "the locks in force stay" in gw.stderr()
        # Lifting takes a file that says so.
        write_locks(lock_file, {"locks": []})
        time.sleep(1.5)
        r = gw.ssh(keys.eve, "echo web-back", f"{LOGIN}@web1.int")
        assert r.stdout == b"web-back\n", r.stderr
    finally:
        alice.close()
        mallory.close()


@pytest.mark.parametrize("case", ["names nobody", "shares its directory", "is a fifo"])
def test_castgate_refuses_to_start_with_a_lock_file_it_cannot_use(gateway_factory, sshd, keys,
                                                                  tmp_path, case):
    lock_dir = tmp_path / "locks"
    lock_dir.mkdir()
    lock_file = lock_dir / "locks.json"
    if case == "is a fifo":  # would block a reader for ever
        os.mkfifo(lock_file)
        expected = "is not a regular file"
    else:
        lock_file.write_text('{"locks": [{"reason": "no selector"}]}' if case == "names nobody"
                             else '{"locks": []}')
        expected = "would lock everyone out"
    if case == "shares its directory":  # the worker processes could read the key
        (lock_dir / "user_ca").write_text("a secret")
        expected = "also holds user_ca: keep the lock file in a directory of its own"
    gw = gateway_factory([{"name": "db1.int", "host": "127.0.0.1", "port": sshd.port}],
                         [sshd.known_hosts_line()], policy=ATTACK_POLICY,
                         identities=attack_identities(keys),
                         extra_args=["--locks", str(lock_file)], start=False)
    gw.expect_complete_record = False
    with pytest.raises(AssertionError) as e:
        gw.start()
    assert expected in str(e.value)
