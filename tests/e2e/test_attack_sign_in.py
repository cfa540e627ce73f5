"""Attacks on signing in with the identity provider (a real one: npm oidc-provider, tests/idp):
clients that walk away in the middle of a device sign-in or of a workload token's validation, and
clients that start sign-ins, or try tokens, without end.

The walk-aways are the crash that motivated this suite: a person closed their terminal after
pressing Enter at the device prompt, and castgate answered the message it held for a session that
was already freed (SIGSEGV), or its identity provider thread reached into that session later (a
use after free). Each test here ends like every attack test: castgate is alive and serving,
another person's session opened before is unaffected and verifies, and castgate exits 0 at the
end (under AddressSanitizer a use after free aborts the process)."""

from __future__ import annotations

import socket
import subprocess
import threading
import time

import paramiko
import pytest

from attacker import Bystander, attack_identities, still_serving
from harness import LOGIN, Tmux, wait_until
from idp import approve
from test_oidc import PROMPT, idp, oidc_gateway, paramiko_sign_in  # noqa: F401  (idp: a fixture)

pytestmark = pytest.mark.timeout(240)

OTHER_ADDRESS = "127.0.0.2"
POLL_INTERVAL = 5  # seconds: oidc-provider's device flow interval
WORKLOADS = [{"name": "ci", "audience": "castgate-workloads", "algorithms": ["RS256"],
              "rules": [{"subject": "repo:acme/deploy:*", "identity": "ci-deployer",
                         "groups": ["ci"]}]}]


@pytest.fixture
def watched(gateway_factory, sshd, idp, tmp_path, keys):  # noqa: F811
    """Builds the gateway (`extra_args`; `workloads`: trust the provider as a workload issuer),
    opens the bystander, and ends with the checks every attack ends with."""
    made = {}

    def make(*extra_args, workloads: bool = False):
        config = {}
        if workloads:
            config["workload_issuers"] = [dict(w, issuer=idp.issuer) for w in WORKLOADS]
        gw = oidc_gateway(gateway_factory, sshd, idp, tmp_path, identities=attack_identities(keys),
                          extra_args=extra_args, **config)
        made["gw"] = gw
        made["bystander"] = Bystander(gw, keys)
        return gw

    yield make
    if made:
        gw = made["gw"]
        try:
            assert gw.proc.alive(), gw.stderr()[-4000:]
            still_serving(gw, keys)
            made["bystander"].finish()
        finally:
            made["bystander"].close()
        assert "AddressSanitizer" not in gw.stderr()
        # gateway_factory then stops castgate and fails the test unless it exits 0.


def device_code_sessions(gw, source: str | None = None) -> set[str]:
    return {e["castgate"]["session"] for e in gw.events()
            if e["event"]["action"] == "auth.device_code" and
            (source is None or e["source"]["ip"] == source)}


def final_event(gw, session: str, timeout: float = 15) -> dict:
    return gw.wait_event(lambda e: e["castgate"]["session"] == session and
                         e["castgate"].get("final"), timeout, f"the final event of {session}")


def ssh_options(source: str = "127.0.0.1") -> list[str]:
    return ["-b", source, "-o", "BatchMode=no", "-o", "LogLevel=INFO",
            "-o", "PubkeyAuthentication=no"]


def at_device_prompt(gw, source: str = "127.0.0.1"):
    """OpenSSH in a terminal (keyboard-interactive only) up to the device prompt. Returns the
    terminal, the URL and code on the screen, and castgate's session."""
    before = device_code_sessions(gw)
    term = Tmux(gw.ssh_args(None, None, ssh_options(source)) + [f"{LOGIN}@db1.int@127.0.0.1",
                                                                "echo never"],
                width=160, height=60)
    try:
        screen = term.wait_for("press Enter", 30)
        m = PROMPT.search(screen)
        assert m, screen
        new = wait_until(lambda: device_code_sessions(gw) - before, 15, "the device code event")
        assert len(new) == 1
    except BaseException:
        term.close()
        raise
    return term, m.group(1), m.group(2), new.pop()


def no_sign_in_since(gw, sessions: list[str]):
    successes = [e for e in gw.events() if e["event"]["action"] == "auth.success" and
                 e["castgate"]["session"] in sessions]
    assert not successes, successes


@pytest.mark.parametrize("press_enter", [True, False], ids=["enter-then-close", "close-at-prompt"])
def test_closing_the_terminal_during_a_device_sign_in(watched, press_enter):
    """The SIGSEGV: a person presses Enter at the device prompt (castgate holds their answer until
    the provider decides), then closes the terminal. Or closes it at the prompt. Three times;
    then the codes are approved after the clients are gone, and castgate must not touch the
    sessions they had."""
    gw = watched()
    abandoned = []
    for _ in range(3):
        term, uri, code, session = at_device_prompt(gw)
        if press_enter:
            term.keys("Enter")
            time.sleep(0.5)  # the answer reaches castgate, which holds it
        term.close()  # kills the terminal and the ssh in it
        abandoned.append((session, uri, code))
    for session, _, _ in abandoned:
        end = final_event(gw, session)
        assert end["event"]["action"] == "connection.closed"
        assert end["castgate"]["end_reason"] == "user_disconnected"
    # Approved after the clients left: castgate stopped polling for these codes.
    for _, uri, code in abandoned:
        approve(uri, code)
    time.sleep(POLL_INTERVAL + 2)
    assert gw.proc.alive(), gw.stderr()[-4000:]
    no_sign_in_since(gw, [s for s, _, _ in abandoned])


def test_a_script_without_a_terminal_answers_the_prompt_and_is_killed(watched):
    """ssh run by a script (stdin /dev/null, no terminal, BatchMode=no) answers the device prompt
    with an empty line at once, and is killed a second later while castgate holds the answer."""
    gw = watched()
    killed = []
    for _ in range(3):
        before = device_code_sessions(gw)
        ssh = subprocess.Popen(gw.ssh_args(None, None, ssh_options()) +
                               [f"{LOGIN}@db1.int@127.0.0.1", "echo never"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, start_new_session=True)
        try:
            new = wait_until(lambda: device_code_sessions(gw) - before, 30, "the device code")
            time.sleep(1)
            assert ssh.poll() is None, ssh.communicate()  # still waiting for the provider
        finally:
            ssh.kill()
            _, err = ssh.communicate(timeout=10)
        # It was shown the instruction; with no terminal to read from, ssh answers the prompt
        # with an empty line (without printing it) and waits.
        assert b"castgate sign-in" in err and b"Code:" in err, err
        killed.append(new.pop())
    for session in killed:
        end = final_event(gw, session)
        assert end["castgate"]["end_reason"] == "user_disconnected"
    assert gw.proc.alive(), gw.stderr()[-4000:]
    no_sign_in_since(gw, killed)


def test_clients_gone_while_their_workload_tokens_are_validated(watched, idp):  # noqa: F811
    """Workload tokens signed with a key castgate does not have yet: validating them means fetching
    the provider's key set, which is slow (3 s). Three clients send a token as their password and
    hang up at once; three rounds, with new keys each round. When the fetch completes, the
    verdicts find their sessions gone."""
    gw = watched(workloads=True)
    idp.control("slow_keys", {"ms": 3000})
    # The workers fetched the keys when they started; castgate fetches them again for an unknown
    # key only once jwks_min_refresh (1 s in the tests) has passed since (before, the token is
    # refused at once: a fast start and bystander made round one too early).
    time.sleep(1.2)
    before = {e["castgate"]["session"] for e in gw.events()}
    for _ in range(3):
        idp.control("rotate")
        token = idp.mint({"sub": "repo:acme/deploy:ref:refs/heads/main",
                          "aud": "castgate-workloads"})
        clients = []
        for _ in range(3):
            t = paramiko.Transport(socket.create_connection(("127.0.0.1", gw.shared_port)))
            t.start_client(timeout=15)
            clients.append(t)
        for t in clients:
            t.auth_password(f"{LOGIN}@db1.int", token, event=threading.Event(), fallback=False)
        time.sleep(1)  # the requests are out; castgate is fetching keys (3 s) to validate them
        for t in clients:
            assert not t.is_authenticated()
            t.close()
        time.sleep(3.5)  # the slow fetch completes and the verdicts are posted
        assert gw.proc.alive(), gw.stderr()[-4000:]
    ours = [e for e in gw.events() if e["castgate"]["session"] not in before and
            not e["castgate"]["session"].startswith(("gateway-", "worker-"))]
    # Nine connections, each ended by its client before any verdict: no verdict was applied to
    # them (not even the tokens' early rejection while the keys were being fetched).
    assert [e["event"]["action"] for e in ours].count("connection.accepted") == 9
    assert {e["event"]["action"] for e in ours} == {"connection.accepted",
                                                    "connection.handshake", "connection.closed"}
    assert {e["castgate"]["end_reason"] for e in ours if e["castgate"].get("final")} == \
        {"user_disconnected"}
    # The provider is slow, not broken: a workload that waits for its verdict is signed in.
    idp.control("slow_keys", {"ms": 0})
    assert paramiko_sign_in(gw, answer=token, command="echo workload-ok")[1] == b"workload-ok\n"


def test_device_sign_ins_per_source_are_rate_limited(watched):
    """--device-sign-in-rate 3: three device sign-ins started from one address in a minute get a
    code; the fourth is refused with a clear message (each costs a device authorization and
    polling at the provider); another address still gets a code."""
    gw = watched("--device-sign-in-rate", "3")
    for _ in range(3):
        term, _, _, _ = at_device_prompt(gw)
        term.close()
    r = gw.ssh(None, "echo never", f"{LOGIN}@db1.int", timeout=30, extra=ssh_options(),
               stdin=subprocess.DEVNULL)
    assert r.returncode == 255 and b"never" not in r.stdout
    assert b"too many sign-ins were started from your address" in r.stderr, r.stderr
    refused = gw.wait_event(lambda e: e["event"]["action"] == "auth.failure" and
                            e["castgate"]["auth_error"] == "rate_limited", what="rate_limited")
    assert refused["source"]["ip"] == "127.0.0.1"
    assert len(device_code_sessions(gw, "127.0.0.1")) == 3
    # Another address is not held back by the first one's sign-ins.
    term, _, _, session = at_device_prompt(gw, source=OTHER_ADDRESS)
    term.close()
    assert session in device_code_sessions(gw, OTHER_ADDRESS)


def test_workload_tokens_per_connection_are_limited(watched, idp):  # noqa: F811
    """--max-token-attempts 2: a client tries three bad tokens on one connection; the third is
    refused (too_many_tokens) without being validated, and the connection is closed."""
    gw = watched("--max-token-attempts", "2", workloads=True)
    now = int(time.time())
    tokens = [
        idp.mint({"sub": "repo:acme/deploy:x", "aud": "someone-else"}),
        idp.mint({"sub": "repo:evil/fork:x", "aud": "castgate-workloads"}),
        idp.mint({"sub": "repo:acme/deploy:x", "aud": "castgate-workloads", "iat": now - 7200,
                  "exp": now - 3600}),
    ]
    t = paramiko.Transport(socket.create_connection(("127.0.0.1", gw.shared_port)))
    t.start_client(timeout=15)
    outcomes = []
    try:
        for token in tokens:
            try:
                t.auth_password(f"{LOGIN}@db1.int", token, fallback=False)
                outcomes.append("signed in")
            except (paramiko.SSHException, EOFError) as e:
                outcomes.append(type(e).__name__)
    finally:
        t.close()
    assert "signed in" not in outcomes and len(outcomes) == 3
    failures = wait_until(lambda: (lambda f: f if len(f) >= 3 else None)(
        [e for e in gw.events() if e["event"]["action"] == "auth.failure"]), 15, "3 failures")
    session = failures[0]["castgate"]["session"]
    assert [e["castgate"]["session"] for e in failures] == [session] * 3
    assert [e["castgate"]["auth_error"] for e in failures] == \
        ["audience_mismatch", "no_workload_rule", "too_many_tokens"]
    end = final_event(gw, session)
    assert end["castgate"]["end_reason"] == "sign_in_failed"
