"""A policy rule's max_session_length and hours: the user is warned in their terminal before the
end, then the session ends with the rule named; the record says when and why. A real OpenSSH
client in a terminal against a real OpenSSH target."""

from __future__ import annotations

import datetime
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
                          "ends_at" in e["castgate"], what="the limited start")
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
                "ends_at" in e["castgate"] and e["castgate"]["session"] != session]


def test_a_rules_hours_closing_on_a_live_session_end_it_and_refuse_new_ones(gateway_factory, sshd,
                                                                           keys):
    """A rule's hours (here: until ten seconds from now, UTC): the live session is warned, then
    ended when the window closes; a new one is refused with the hours named."""
    now = datetime.datetime.now(datetime.timezone.utc)
    window = {"from": (now - datetime.timedelta(minutes=1)).strftime("%H:%M:%S"),
              "to": (now + datetime.timedelta(seconds=10)).strftime("%H:%M:%S"),
              "time_zone": "UTC"}
    policy = {"rules": [{"name": "office", "identities": ["alice"], "targets": ["db1.int"],
                         "logins": [LOGIN], "hours": window}]}
    gw = gateway_factory([{"name": "db1.int", "host": "127.0.0.1", "port": sshd.port}],
                         [sshd.known_hosts_line()], policy=policy,
                         identities=attack_identities(keys),
                         extra_args=["--session-end-warning", "4s"])
    term = Tmux(gw.ssh_args(keys.alice, None, ["-tt"]) + [f"{LOGIN}@db1.int@127.0.0.1"])
    try:
        term.type("export PS1='office$ '")
        term.wait_for("office$")
        described = f"policy rule office allows access every day {window['from']}-{window['to']} UTC"
        screen = term.wait_for("this session ends in", timeout=15)
        assert described in screen, screen
        screen = term.wait_for("CLIENT-EXIT=", timeout=15)
        assert "this session ended: " + described in screen
    finally:
        term.close()
    assert time.time() >= (now + datetime.timedelta(seconds=9)).timestamp()
    end = gw.wait_event(lambda e: e["event"]["action"] == "session.end" and
                        e["castgate"].get("end_reason") == "outside_hours", what="the end")
    start = gw.wait_event(lambda e: e["event"]["action"] == "session.start" and
                          e["castgate"]["session"] == end["castgate"]["session"], what="the start")
    ends = datetime.datetime.strptime(start["castgate"]["ends_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    expected = (now + datetime.timedelta(seconds=10)).replace(tzinfo=None)
    assert abs((ends - expected).total_seconds()) < 2, (ends, expected)
    r = gw.ssh(keys.alice, "echo nope", f"{LOGIN}@db1.int", extra=["-o", "LogLevel=INFO"])
    assert b"nope" not in r.stdout
    assert b"policy rule office allows access only every day" in r.stderr, r.stderr
    gw.wait_event(lambda e: e["event"]["action"] == "policy.denied" and
                  e["castgate"].get("denial") == "outside_hours", what="the refusal")
