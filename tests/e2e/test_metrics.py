"""Prometheus metrics on the health port (GET /metrics), read by the Prometheus project's own
text parser while real OpenSSH clients come and go: sign-ins by method and outcome, policy
refusals, sessions active and started, bytes relayed and recorded, and counters that never go
down when a worker process dies and is replaced."""

from __future__ import annotations

import os
import signal
import subprocess
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from attacker import ATTACK_POLICY, attack_identities, still_serving
from harness import LOGIN, wait_until

pytestmark = pytest.mark.timeout(180)


def scrape(gw) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{gw.health_port}/metrics", timeout=5) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = r.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            assert key not in samples, f"{key} twice"
            samples[key] = s.value
    return samples


def value(samples, name, **labels) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


@pytest.fixture
def metrics_gateway(gateway_factory, sshd, keys):
    return gateway_factory([{"name": "db1.int", "host": "127.0.0.1", "port": sshd.port}],
                           [sshd.known_hosts_line()], policy=ATTACK_POLICY,
                           identities=attack_identities(keys),
                           extra_args=["--health-listen", "127.0.0.1:0",
                                       "--worker-processes", "2"])


def test_metrics_follow_sessions_as_they_come_and_go(metrics_gateway, keys):
    gw = metrics_gateway
    before = scrape(gw)
    assert value(before, "castgate_up") == 1 and value(before, "castgate_ready") == 1
    assert value(before, "castgate_worker_processes", state="running") == 2
    assert value(before, "castgate_sessions_active") == 0

    # A session that relays a known number of bytes, and one that stays open meanwhile.
    payload = 300_000
    r = gw.ssh(keys.alice, f"head -c {payload} /dev/zero | base64 -w 0", f"{LOGIN}@db1.int")
    assert len(r.stdout) == (payload + 2) // 3 * 4, r.stderr
    held = subprocess.Popen(gw.ssh_args(keys.alice) + [f"{LOGIN}@db1.int@127.0.0.1",
                            "echo held; sleep 30"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert held.stdout.readline() == b"held\n"
        during = wait_until(lambda: (lambda s: s if value(s, "castgate_sessions_active") == 1
                                     else None)(scrape(gw)), 20, "one active session")
        assert value(during, "castgate_sign_ins_total", method="publickey", outcome="success") == 2
        # An unknown key, a refused target, a refused login.
        r = gw.ssh(keys.bob, "true", f"{LOGIN}@nowhere.int")
        assert r.returncode != 0
        r = gw.ssh(keys.alice, "true", "not-a-login@db1.int")
        assert r.returncode != 0
        wait_until(lambda: (lambda s: s if (
            value(s, "castgate_policy_refusals_total", reason="unknown_target") >= 1 and
            value(s, "castgate_policy_refusals_total", reason="policy") >= 1) else None)(scrape(gw)),
            20, "the refusals counted")
        # The refused connections end; the held one is still there.
        wait_until(lambda: value(scrape(gw), "castgate_sessions_active") == 1, 20,
                   "the refused connections gone, the held one counted")
    finally:
        held.send_signal(signal.SIGTERM)
        held.communicate(timeout=30)
    after = wait_until(lambda: (lambda s: s if value(s, "castgate_sessions_active") == 0
                                else None)(scrape(gw)), 30, "no active session")
    assert value(after, "castgate_connections_total") >= 4
    assert value(after, "castgate_sessions_total") >= 2
    # base64 of the payload went to the user; the record says so, and so do the metrics once the
    # session ended.
    assert value(after, "castgate_relayed_bytes_total", direction="to_user") >= payload * 4 // 3
    assert value(after, "castgate_recorded_bytes_total") >= payload * 4 // 3
    assert value(after, "castgate_recorded_lines_total") >= 10
    assert value(after, "castgate_recording_lost_lines_total") == 0
    # Every successful sign-in is in the histogram, and took less than the 2.5 s bucket here.
    count = value(after, "castgate_sign_in_duration_seconds_count")
    assert count == value(after, "castgate_sign_in_duration_seconds_bucket", le="+Inf") >= 2
    assert value(after, "castgate_sign_in_duration_seconds_bucket", le="2.5") == count
    assert 0 < value(after, "castgate_sign_in_duration_seconds_sum") < 2.5 * count
    # No label value comes from a user: the refused target's name appears nowhere.
    with urllib.request.urlopen(f"http://127.0.0.1:{gw.health_port}/metrics", timeout=5) as r:
        assert b"nowhere" not in r.read()


def test_counters_survive_a_worker_that_dies(metrics_gateway, keys):
    gw = metrics_gateway
    for i in range(3):
        still_serving(gw, keys)
    before = wait_until(lambda: (lambda s: s if value(s, "castgate_sessions_total") >= 3
                                 and value(s, "castgate_recorded_lines_total") > 0 else None)(
        scrape(gw)), 20, "three sessions counted")
    gw.expect_complete_record = False  # castgate exits 1 after losing a worker (by design)
    victim = gw.children("castgate-worker")[0]
    os.kill(victim, signal.SIGKILL)
    after = wait_until(lambda: (lambda s: s if value(s, "castgate_worker_restarts_total") == 1 and
                                value(s, "castgate_worker_processes", state="running") == 2
                                else None)(scrape(gw)), 30, "the worker replaced")
    for key, v in before.items():
        if key[0].endswith(("_total", "_count", "_sum", "_bucket")):
            assert after[key] >= v, f"{key} went down from {v} to {after[key]}"
    still_serving(gw, keys)


def test_metrics_requests_from_strangers_change_nothing(metrics_gateway, keys):
    """Anyone who reaches the health port may read the counts; asking many times, or asking
    oddly, neither breaks the endpoint nor moves a counter that the record does not."""
    gw = metrics_gateway
    first = scrape(gw)
    for _ in range(50):
        scrape(gw)
    again = scrape(gw)
    for key, v in first.items():
        if key[0] != "castgate_recording_backlog_bytes":
            assert again[key] == v, key
    still_serving(gw, keys)
