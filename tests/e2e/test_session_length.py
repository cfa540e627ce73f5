"""A policy rule's max_session_length: the user is warned in their terminal before the end, then
the session ends with the rule named; the record says when and why. A real OpenSSH client in a
terminal against a real OpenSSH target."""

from __future__ import annotations

import time

import pytest

from attacker import attack_identities
from harness import LOGIN, Tmux, player

pytestmark = pytest.mark.timeout(120)

POLICY = {"rules": [
    {"name": "contractors", "identities": ["alice"], "targets": ["db1.int"], "logins": [LOGIN],
     "max_session_length": "6s"},
    {"name": "ops", "identities": ["alice"], "targets": ["web1.int"], "logins": [LOGIN]},
]}


def test_a_session_past_its_rules_length_is_warned_then_ended(gateway_factory, sshd, keys):
    targets = [{"name": "db1.int", "host": "127.0.0.1", "port": sshd.port},
               {"name": "web1.int", "host": "127.0.0.1", "port": sshd.port}]
    gw = gateway_factory(targets, [sshd.known_hosts_line()], policy=POLICY,
                         identities=attack_identities(keys),
                         extra_args=["--session-end-warning", "3s"])
    limited = Tmux(gw.ssh_args(keys.alice, None, ["-tt"]) + [f"{LOGIN}@db1.int@127.0.0.1"])
    free = Tmux(gw.ssh_args(keys.alice, None, ["-tt"]) + [f"{LOGIN}@web1.int@127.0.0.1"])
    try:
        limited.type("export PS1='limited$ '")
        limited.wait_for("limited$")
        started = time.monotonic()
        free.type("export PS1='free$ '")
        free.wait_for("free$")
        screen = limited.wait_for("this session ends in", timeout=10)
        warned_after = time.monotonic() - started
        assert "policy rule contractors allows sessions of at most 6s" in screen
        screen = limited.wait_for("CLIENT-EXIT=", timeout=10)
        ended_after = time.monotonic() - started
        assert "this session ended: policy rule contractors allows sessions of at most 6s" in screen
        assert 1.5 <= warned_after <= 5.5 and 4.5 <= ended_after <= 9, (warned_after, ended_after)
        # The rule without a limit: its session goes on.
        free.type("echo still-free")
        free.wait_for("\nstill-free")
    finally:
        limited.close()
        free.close()
    start = gw.wait_event(lambda e: e["event"]["action"] == "session.start" and
                          e["castgate"].get("max_session_length") == 6, what="the limited start")
    session = start["castgate"]["session"]
    warning = gw.wait_event(lambda e: e["event"]["action"] == "session.warning" and
                            e["castgate"]["session"] == session, what="the warning")
    assert 1 <= warning["castgate"]["ends_in_seconds"] <= 3
    end = gw.wait_event(lambda e: e["event"]["action"] == "session.end" and
                        e["castgate"]["session"] == session, what="the end")
    assert end["castgate"]["end_reason"] == "max_session_length"
    # The warning is part of what the user saw, so it is in the replay too.
    r = player("export", "--session", session, "--key", str(keys.recording_pub),
               str(gw.stdout_path))
    assert r.returncode == 0, r.stderr
    assert b"this session ends in" in r.stdout
    assert not [e for e in gw.events() if e["event"]["action"] == "session.start" and
                "max_session_length" in e["castgate"] and e["castgate"]["session"] != session]
