"""Completeness across sessions: castgate's signed checkpoints, and castgate-player verify telling
a session deleted whole, a removed checkpoint, a session still open and one whose end was cut."""
import json
import subprocess
import time

from harness import LOGIN, player, wait_until


def checkpoint_gateway(gateway_factory, sshd):
    return gateway_factory([{"name": "db1.int", "host": "127.0.0.1", "port": sshd.port}],
                           [sshd.known_hosts_line()], extra_args=["--checkpoint-interval", "1s"])


def verify(keys, tmp_path, lines, name):
    path = tmp_path / f"{name}.jsonl"
    path.write_bytes(b"".join(l + b"\n" for l in lines))
    r = player("verify", "--json", "--key", str(keys.recording_pub), str(path))
    verdicts = {v["session"]: v for v in map(json.loads, r.stdout.decode().splitlines())}
    return r.returncode, verdicts, r.stdout.decode() + r.stderr.decode()


def session_of(line: bytes) -> str:
    return json.loads(line)["castgate"]["session"]


def test_checkpoints_catch_a_deleted_session_a_removed_checkpoint_and_a_cut_end(
        gateway_factory, sshd, keys, tmp_path):
    gw = checkpoint_gateway(gateway_factory, sshd)
    for word in ("first", "second"):
        r = gw.ssh(keys.alice, f"echo {word}", f"{LOGIN}@db1.int")
        assert r.returncode == 0 and word.encode() in r.stdout, r.stderr
    sessions = [e["castgate"]["session"] for e in gw.events()
                if e["event"]["action"] == "session.start"]
    assert len(sessions) == 2
    # Both sessions named in a checkpoint of their worker process's chain, which the parent's
    # checkpoints name in turn.
    wait_until(lambda: {s for e in gw.events() if e["event"]["action"] == "checkpoint"
                        for s in e["castgate"]["checkpoint"]["ended"]} >= set(sessions),
               15, "a checkpoint naming both sessions ended")
    assert gw.stop() == 0
    events = gw.events()
    checkpoints = [e for e in events if e["event"]["action"] == "checkpoint"]
    assert all("sig" in e["castgate"] for e in checkpoints)
    workers = {e["castgate"]["worker"]["chain"] for e in events
               if e["event"]["action"] == "worker.start" and e["castgate"]["session"].startswith("gateway-")}
    parent_named = {s for e in checkpoints if e["castgate"]["session"].startswith("gateway-")
                    for s in e["castgate"]["checkpoint"]["started"]}
    assert workers and workers <= parent_named
    lines = gw.raw_lines()
    rc, verdicts, out = verify(keys, tmp_path, lines, "whole")
    assert rc == 0 and all(v["ok"] for v in verdicts.values()), out

    # A session deleted whole: named, FAILED.
    gone = sessions[0]
    rc, verdicts, out = verify(keys, tmp_path, [l for l in lines if session_of(l) != gone], "deleted")
    assert rc == 1, out
    assert not verdicts[gone]["ok"] and "no event of it is in the store" in verdicts[gone]["problems"][0], out

    # A worker process's whole chain deleted: the parent's checkpoints name it.
    worker = next(iter(workers))
    rc, verdicts, out = verify(keys, tmp_path, [l for l in lines if session_of(l) != worker], "worker")
    assert rc == 1 and "no event of it is in the store" in " ".join(verdicts[worker]["problems"]), out

    # A checkpoint removed: its number is missing from its chain.
    first = next(i for i, l in enumerate(lines)
                 if b'"checkpoint":{' in l and b'"number":1,' in l and session_of(l).startswith("worker-"))
    rc, verdicts, out = verify(keys, tmp_path, lines[:first] + lines[first + 1:], "checkpoint")
    assert rc == 1 and "checkpoint 1 is missing" in " ".join(verdicts[session_of(lines[first])]["problems"]), out

    # A session's end deleted: truncated (a checkpoint says it ended), not open.
    cut = sessions[1]
    last = max(i for i, l in enumerate(lines) if session_of(l) == cut)
    rc, verdicts, out = verify(keys, tmp_path, lines[:last] + lines[last + 1:], "cut")
    assert rc == 1 and "says it ended: the record was truncated" in " ".join(verdicts[cut]["problems"]), out


def test_a_live_session_is_open_and_a_store_cut_later_is_truncated(gateway_factory, sshd, keys, tmp_path):
    gw = checkpoint_gateway(gateway_factory, sshd)
    client = subprocess.Popen(gw.ssh_args(keys.alice, None, None) + [f"{LOGIN}@db1.int@127.0.0.1", "sleep 60"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        session = wait_until(lambda: next((e["castgate"]["session"] for e in gw.events()
                                           if e["event"]["action"] == "session.start"), None),
                             15, "the session to start")
        wait_until(lambda: any(session in e["castgate"]["checkpoint"]["open"] for e in gw.events()
                               if e["event"]["action"] == "checkpoint"), 15, "a checkpoint naming it open")
        time.sleep(1.5)  # one more round of checkpoints
        snapshot = gw.raw_lines()
        rc, verdicts, out = verify(keys, tmp_path, snapshot, "live")
        # Running: the session, its worker process's chain and the parent's are OPEN, not FAILED
        # (exit 4: nothing failed, but no signature vouches for what is open yet).
        assert rc == 4, out
        assert verdicts[session]["open"] and not verdicts[session]["problems"], out
        assert all(v["ok"] or v.get("open") for v in verdicts.values()), out

        # The worker's checkpoints (and anything of the session) after the snapshot removed from
        # a later store, while the parent went on writing: the session is truncated, not open.
        wait_until(lambda: len(gw.raw_lines()) > len(snapshot) + 12, 20, "more checkpoints")
        time.sleep(13)  # more than an interval and 10 s: the worker's checkpoints are missing
        later = gw.raw_lines()
        kept = set(snapshot)
        worker = next(e["castgate"]["session"] for e in gw.events() if e["event"]["action"] == "checkpoint"
                      and session in e["castgate"]["checkpoint"]["open"])
        store = [l for l in later if l in kept or session_of(l) not in (worker, session)]
        rc, verdicts, out = verify(keys, tmp_path, store, "cut-later")
        assert rc == 1, out
        assert not verdicts[session].get("open") and \
            "later lines of its instance" in " ".join(verdicts[session]["problems"]), out

        # The same snapshot read long after: the gateway had stopped writing, so nothing is open.
        path = tmp_path / "live-late.jsonl"
        path.write_bytes(b"".join(l + b"\n" for l in snapshot))
        r = player("verify", "--key", str(keys.recording_pub), "--as-of", "2099-01-01T00:00:00Z", str(path))
        assert r.returncode == 1 and b"OPEN" not in r.stdout and b"stopped without closing it" in r.stdout, r.stdout
    finally:
        client.kill()
        client.wait(timeout=10)
