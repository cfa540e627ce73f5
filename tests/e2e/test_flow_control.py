"""Flow control end to end: slow or stuck peers make castgate wait, never buffer without bound."""

import os
import signal
import subprocess
import threading
import time

import pytest

from harness import LOGIN, Tmux

pytestmark = pytest.mark.timeout(240)

MB = 1 << 20


def sample_rss(gw, stop: threading.Event, samples: list):
    while not stop.is_set():
        try:
            samples.append(gw.rss_mb())
        except OSError:
            return
        time.sleep(0.05)


@pytest.mark.bulk
def test_slow_reader_on_the_user_side(gateway, keys):
    """200 MB from the target to a user who reads 4 MB/s for a while: castgate's memory stays flat."""
    base = gateway.rss_mb()
    proc = subprocess.Popen(gateway.ssh_args(keys.alice, gateway.bound_ports["db1.int"]) +
                            [f"{LOGIN}@127.0.0.1", "head -c 200000000 /dev/urandom"],
                            stdout=subprocess.PIPE)
    stop, samples = threading.Event(), []
    t = threading.Thread(target=sample_rss, args=(gateway, stop, samples))
    t.start()
    got = 0
    try:
        slow_until = time.monotonic() + 5
        while True:
            chunk = proc.stdout.read(64 * 1024)
            if not chunk:
                break
            got += len(chunk)
            if time.monotonic() < slow_until:
                time.sleep(0.016)  # ~4 MB/s
        assert proc.wait(timeout=120) == 0
    finally:
        stop.set()
        t.join()
    assert got == 200000000
    assert max(samples) - base < 80, f"castgate grew from {base:.0f} to {max(samples):.0f} MB"


@pytest.mark.bulk
def test_slow_reader_on_the_target_side(gateway, keys):
    """The target does not read for 4 s while the user pushes 200 MB: castgate holds back."""
    base = gateway.rss_mb()
    proc = subprocess.Popen(gateway.ssh_args(keys.alice, gateway.bound_ports["db1.int"]) +
                            [f"{LOGIN}@127.0.0.1", "sleep 4; wc -c"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    stop, samples = threading.Event(), []
    t = threading.Thread(target=sample_rss, args=(gateway, stop, samples))
    t.start()
    sent = [0]

    def feed():
        block = os.urandom(MB)
        try:
            for _ in range(200):
                proc.stdin.write(block)
                sent[0] += len(block)
            proc.stdin.close()
        except BrokenPipeError:
            pass

    writer = threading.Thread(target=feed)
    start = time.monotonic()
    writer.start()
    try:
        time.sleep(2)
        # While the target sleeps, only a few windows' worth can have left the user.
        assert sent[0] < 30 * MB, f"{sent[0] / MB:.0f} MB accepted while the target was not reading"
        writer.join(timeout=120)
        out = proc.stdout.read()
        assert proc.wait(timeout=30) == 0
    finally:
        stop.set()
        t.join()
    assert out.strip() == str(200 * MB).encode()
    assert time.monotonic() - start > 4
    assert max(samples) - base < 80, f"castgate grew from {base:.0f} to {max(samples):.0f} MB"


@pytest.mark.timing
def test_a_stuck_user_stalls_only_their_own_session(gateway, keys):
    stuck = subprocess.Popen(gateway.ssh_args(keys.alice, gateway.bound_ports["db1.int"]) +
                             [f"{LOGIN}@127.0.0.1", "cat /dev/urandom"], stdout=subprocess.PIPE)
    term = None
    try:
        stuck.stdout.read(5 * MB)
        os.kill(stuck.pid, signal.SIGSTOP)  # stops reading mid-stream
        time.sleep(1)
        term = Tmux(gateway.ssh_args(keys.alice, gateway.bound_ports["db1.int"], ["-tt"]) +
                    [f"{LOGIN}@127.0.0.1"])
        term.type("export PS1='ok$ '")
        term.wait_for("ok$")
        # A session stalled behind the stuck one would not echo at all (wait_for times out);
        # the median echo bounds the delay without failing on one slow round on a busy machine.
        delays = []
        for i in range(5):
            start = time.monotonic()
            term.type(f"echo ping-{i}")
            term.wait_for(f"\nping-{i}", timeout=5)
            delays.append(time.monotonic() - start)
        assert sorted(delays)[2] < 2, delays
    finally:
        os.kill(stuck.pid, signal.SIGCONT)
        stuck.kill()
        stuck.wait(timeout=10)
        if term:
            term.close()
