"""Crash containment: castgate serves connections in several worker processes. One that dies
(killed, aborted, or ended by its sandbox for a forbidden system call) costs only its own
sessions: the other worker's users go on, the parent closes each lost session's record with a
signed session.lost event (so verify says LOST, not "truncated"), starts a replacement, and new
connections are served."""

from __future__ import annotations

import os
import pathlib
import signal

import pytest

from attacker import Bystander, attack_gateway, mallory_session, marker, still_serving
from harness import CASTGATE, LOGIN, check_record, exclusive, player, run, wait_until

FAULTS = "fault injection" in run([CASTGATE, "--version"]).stdout.decode()
ESCAPE = pathlib.Path("/tmp/castgate-sandbox-escape")


def worker_of(gw, session: str) -> int:
    accepted = gw.wait_event(lambda e: e["castgate"]["session"] == session and
                             e["event"]["action"] == "connection.accepted",
                             what="the session's connection.accepted")
    return accepted["castgate"]["worker"]["pid"]


@pytest.fixture
def no_escape():
    """ESCAPE, the file a sandboxed worker tries to create (common/fault_injection.cpp), absent and
    this test's alone until it ends (a fixed path: other workers and runs wait)."""
    with exclusive("sandbox-escape"):
        ESCAPE.unlink(missing_ok=True)
        yield


@pytest.mark.parametrize("how", ["kill", "abort", "forbidden"])
def test_a_worker_that_dies_costs_only_its_own_sessions(no_escape, gateway_factory, sshd, keys, how):
    if how != "kill" and not FAULTS:
        pytest.skip("castgate was built without -DCASTGATE_FAULT_INJECTION (make asan has it)")
    mark = marker("CRASH")
    gw = attack_gateway(gateway_factory, sshd, keys,
                        extra_args=["--worker-processes", "2"],
                        env={"CASTGATE_TEST_FAULT": f"input!{how}:{mark}"} if how != "kill" else None)
    gw.expect_complete_record = False  # checked below: the lost sessions verify as LOST
    first_workers = gw.workers(2)
    # A source's connections all go to one worker: the bystander comes from another loopback
    # address, one that the parent sends to the other worker.
    victim = Bystander(gw, keys)
    doomed = worker_of(gw, victim.session)
    bystander = None
    for n in range(2, 40):
        candidate = Bystander(gw, keys, source=f"127.0.0.{n}")
        if worker_of(gw, candidate.session) != doomed:
            bystander = candidate
            break
        candidate.close()
    assert bystander is not None, "no loopback source went to the other worker"
    try:
        spared = worker_of(gw, bystander.session)
        assert doomed != spared and {doomed, spared} == set(first_workers)
        lost_sessions = {victim.session}
        if how == "kill":
            os.kill(doomed, signal.SIGKILL)
            expected_signal = signal.SIGKILL
        else:
            # Mallory comes from the victim's source, so to its worker; what she sends kills it.
            gw.ssh(keys.eve, "cat", f"{LOGIN}@db1.int", input=f"{mark}\n".encode(), timeout=60)
            lost_sessions.add(mallory_session(gw))
            assert worker_of(gw, mallory_session(gw)) == doomed
            expected_signal = signal.SIGABRT if how == "abort" else signal.SIGSYS
        for session in lost_sessions:
            lost = gw.wait_event(lambda e, s=session: e["castgate"]["session"] == s and
                                 e["event"]["action"] == "session.lost", what="session.lost")
            assert lost["castgate"]["final"] is True and "sig" in lost["castgate"]
            assert lost["castgate"]["lost"]["worker_pid"] == doomed
            assert lost["castgate"]["lost"]["signal"] == expected_signal
            assert lost["event"]["outcome"] == "failure"
        gone = gw.wait_event(lambda e: e["event"]["action"] == "worker.lost" and
                             e["castgate"]["session"].startswith("gateway-"), what="worker.lost")
        assert gone["castgate"]["worker"]["pid"] == doomed
        assert gone["castgate"]["sessions_lost"] == len(lost_sessions)
        if how == "forbidden":
            assert "forbidden system call" in gw.stderr()
            assert not ESCAPE.exists(), "the sandbox let a worker create a file"
        # The other worker's user never noticed; a replacement worker starts and serves the lost
        # worker's sources.
        bystander.echo("after-the-crash")
        replacement = wait_until(lambda: [p for p in gw.children("castgate-worker")
                                          if p not in first_workers], 20, "a replacement worker")
        assert spared in gw.children("castgate-worker")
        still_serving(gw, keys)
        assert replacement[0] in {e["castgate"]["worker"]["pid"] for e in gw.events()
                                  if e["event"]["action"] == "connection.accepted"}
        bystander.finish()  # its own record verifies on its own
    finally:
        victim.close()
        if bystander:
            bystander.close()
    assert gw.stop() == 1  # castgate says something went wrong, once it is over
    # Every line is schema-valid, every record whole: the lost ones LOST (exit 3), none FAILED.
    check_record(gw, lost=lost_sessions)
    r = player("verify", "--key", str(keys.recording_pub), "--session", victim.session,
               str(gw.stdout_path))
    assert r.returncode == 3, r.stdout.decode() + r.stderr.decode()


def test_a_cut_record_still_reads_as_cut(gateway_factory, sshd, keys, tmp_path):
    """The parent's closing event is what tells a lost session from a deleted end: without it
    (someone removed it, and what followed), verify says the record is truncated."""
    gw = attack_gateway(gateway_factory, sshd, keys, extra_args=["--worker-processes", "2"])
    gw.expect_complete_record = False
    victim = Bystander(gw, keys)
    try:
        os.kill(worker_of(gw, victim.session), signal.SIGKILL)
        gw.wait_event(lambda e: e["castgate"]["session"] == victim.session and
                      e["event"]["action"] == "session.lost", what="session.lost")
    finally:
        victim.close()
    gw.stop()
    lines = gw.stdout_path.read_bytes().splitlines(keepends=True)
    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(b"".join(l for l in lines if b'"session.lost"' not in l))
    r = player("verify", "--key", str(keys.recording_pub), "--session", victim.session, str(cut))
    assert r.returncode == 1, r.stdout.decode() + r.stderr.decode()
    assert b"no final event" in r.stdout + r.stderr
