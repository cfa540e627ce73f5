"""Attacks before sign-in: a stranger who never signs in opens connections by the thousand, holds
them half-open, or opens and drops them as fast as they can. Real clients only: raw TCP sockets
(the pre-auth abuse OpenSSH's MaxStartups exists for), paramiko for real key exchanges, OpenSSH for
the people who sign in meanwhile. The attacker comes from 127.0.0.2; everyone else from 127.0.0.1
(castgate counts per source address).

For each: the person already in session (the bystander) is unaffected and their record verifies;
castgate refuses the attacker with counted connection.refused events, not a line per connection;
every connection it accepted has its final event; its memory returns near where it started."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import threading
import time

import paramiko
import pytest

from attacker import (ATTACK_POLICY, Bystander, attack_identities, marker,
                      still_serving)
from harness import LOGIN, wait_until

pytestmark = pytest.mark.timeout(300)

ATTACKER = "127.0.0.2"
BANNER = b"SSH-2.0-OpenSSH_9.2\r\n"
# A client's KEXINIT cut off early: the packet announces 1,500 bytes and sends the first 64.
PARTIAL_KEXINIT = BANNER + struct.pack(">IBB", 1500, 10, 20) + os.urandom(16) + \
    b"\x00\x00\x01\x00curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp"


def attack_gateway(gateway_factory, sshd, keys, extra_args=()):
    return gateway_factory([{"name": "db1.int", "host": "127.0.0.1", "port": sshd.port}],
                           [sshd.known_hosts_line()], policy=ATTACK_POLICY,
                           identities=attack_identities(keys), extra_args=list(extra_args))


def connect_from(gw, source: str, timeout: float = 10) -> socket.socket:
    return socket.create_connection(("127.0.0.1", gw.shared_port), timeout=timeout,
                                    source_address=(source, 0))


def send_quietly(s: socket.socket, data: bytes):
    try:
        s.sendall(data)
    except OSError:
        pass  # castgate refused the connection and closed it already


class RssSampler:
    """castgate's resident memory, sampled every 100 ms in the background."""

    def __init__(self, gw):
        self.gw = gw
        self.start = gw.rss_mb()
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.wait(0.1):
            try:
                self.peak = max(self.peak, self.gw.rss_mb())
            except OSError:
                return

    def stop(self) -> float:
        self._stop.set()
        self._thread.join(timeout=5)
        end = self.gw.rss_mb()
        self.peak = max(self.peak, end)
        return end


def accepted_from(gw, source: str) -> set[str]:
    return {e["castgate"]["session"] for e in gw.events()
            if e["event"]["action"] == "connection.accepted" and e["source"]["ip"] == source}


def ended(gw) -> set[str]:
    return {e["castgate"]["session"] for e in gw.events() if e["castgate"].get("final")}


def refusals(gw) -> list[dict]:
    return [e for e in gw.events() if e["event"]["action"] == "connection.refused"]


def refused_count(gw, reason: str | None = None) -> int:
    return sum(e["castgate"]["count"] for e in refusals(gw)
               if reason is None or e["castgate"]["refusal"] == reason)


def wait_accounted(gw, source: str, opened: int, timeout: float = 60):
    """Every connection the attacker opened was either accepted (and has ended, with its final
    event) or counted in a connection.refused event; refusals are written every 200 ms."""
    def settled():
        accepted = accepted_from(gw, source)
        return (len(accepted) + refused_count(gw) == opened and accepted <= ended(gw)) and accepted
    return wait_until(settled, timeout, f"all {opened} connections from {source} accounted for",
                      interval=0.5)


@pytest.fixture
def watched(gateway_factory, sshd, keys):
    """Builds the gateway with `extra_args`, opens the bystander, and ends with the checks every
    attack ends with."""
    made = {}

    def make(*extra_args):
        gw = attack_gateway(gateway_factory, sshd, keys, extra_args)
        made["gw"] = gw
        made["bystander"] = Bystander(gw, keys)
        return gw, made["bystander"]

    yield make
    if made:
        try:
            still_serving(made["gw"], keys)
            made["bystander"].finish()
        finally:
            made["bystander"].close()


@pytest.mark.timing
def test_a_thousand_half_open_connections_from_one_address(watched, keys):
    """1,000 pre-auth connections from one address in waves of 100 (a third idle, a third with a
    client banner, a third with a banner and a KEXINIT cut off), each wave held for a second,
    while someone at another address signs in and runs a command again and again."""
    gw, bystander = watched()
    still_serving(gw, keys)  # warm-up: the first sign-in of a process is the slowest
    rss = RssSampler(gw)
    waves, per_wave = 10, 100
    attack_done = threading.Event()
    attack_errors: list[BaseException] = []

    def attack():
        try:
            for _ in range(waves):
                held = []
                for i in range(per_wave):
                    s = connect_from(gw, ATTACKER)
                    if i % 3 == 1:
                        send_quietly(s, BANNER)
                    elif i % 3 == 2:
                        send_quietly(s, PARTIAL_KEXINIT)
                    held.append(s)
                time.sleep(1.0)
                for s in held:
                    s.close()
        except BaseException as e:  # noqa: BLE001  (reported by the test thread)
            attack_errors.append(e)
        finally:
            attack_done.set()

    started = time.monotonic()
    attacker = threading.Thread(target=attack, daemon=True)
    attacker.start()
    latencies = []
    while not attack_done.is_set() or len(latencies) < 5:
        token = marker("signed-in")
        t0 = time.monotonic()
        r = gw.ssh(keys.alice, f"echo {token}", f"{LOGIN}@db1.int", timeout=60,
                   stdin=subprocess.DEVNULL)
        latencies.append(time.monotonic() - t0)
        assert r.stdout.decode().strip() == token, r.stderr
    attacker.join(timeout=60)
    attack_seconds = time.monotonic() - started
    assert not attack_errors, attack_errors
    bystander.echo("during")

    accepted = wait_accounted(gw, ATTACKER, waves * per_wave)
    end = rss.stop()
    lines = refusals(gw)
    per_source = refused_count(gw, "per_source")
    print(f"\n1,000 half-open connections in {attack_seconds:.1f}s: {len(accepted)} accepted, "
          f"{per_source} refused per source in {len(lines)} connection.refused lines; "
          f"{len(latencies)} sign-ins from 127.0.0.1, worst {max(latencies):.2f}s, "
          f"median {sorted(latencies)[len(latencies) // 2]:.2f}s; "
          f"RSS start {rss.start:.1f} MB, peak {rss.peak:.1f} MB, end {end:.1f} MB")
    # Only the attacker's address was refused, for being over its own cap (16 by default).
    assert per_source >= 800 and per_source == refused_count(gw)
    assert all(e["castgate"]["sources"] == [ATTACKER] for e in lines)
    # Counted, not a line per connection: at most one line per watchdog pass (200 ms).
    assert len(lines) <= attack_seconds / 0.2 + 2 and len(lines) * 10 <= per_source
    # The person at the other address was never turned away and never waited long.
    assert max(latencies) < 5, latencies
    # Refused connections cost castgate next to nothing: what it holds at the end is allocator
    # slack (ASan keeps 16 MB of freed memory in quarantine), not the attacker's connections.
    assert end < rss.start + 32, (rss.start, rss.peak, end)


@pytest.mark.timing
def test_ten_thousand_connect_disconnect_cycles(watched, keys):
    """10,000 connections opened and dropped as fast as 8 threads can: closed at once, closed
    after the client banner, closed after reading castgate's banner, and a share doing a real key
    exchange (paramiko). castgate's memory returns near where it started, and every connection
    it accepted has its final event."""
    # One address; its cap is lifted so that the connections are served, not refused (refusal is
    # the test above). Any that are refused still have to be counted.
    gw, bystander = watched("--per-source-max-startups", "512", "--max-startups", "512:30:1024")
    cycles, threads = 10_000, 8
    rss = RssSampler(gw)
    errors: list[BaseException] = []
    kinds = {"close": 0, "banner": 0, "read_banner": 0, "key_exchange": 0}
    lock = threading.Lock()

    def one(i: int):
        if i % 50 == 0:
            kind = "key_exchange"
            t = paramiko.Transport(connect_from(gw, ATTACKER))
            try:
                t.start_client(timeout=30)
                assert t.is_active()
            finally:
                t.close()
        else:
            kind = ("close", "banner", "read_banner")[i % 3]
            s = connect_from(gw, ATTACKER)
            try:
                if kind != "close":
                    s.sendall(b"SSH-2.0-cycle\r\n")
                if kind == "read_banner":
                    seen = b""
                    while b"\r\n" not in seen:
                        chunk = s.recv(256)
                        assert chunk, "castgate closed before its banner"
                        seen += chunk
                    assert seen.startswith(b"SSH-2.0-castgate")
            finally:
                s.close()
        with lock:
            kinds[kind] += 1

    def run(worker: int):
        try:
            for i in range(worker, cycles, threads):
                one(i)
        except BaseException as e:  # noqa: BLE001  (reported by the test thread)
            errors.append(e)

    started = time.monotonic()
    pool = [threading.Thread(target=run, args=(w,), daemon=True) for w in range(threads)]
    for t in pool:
        t.start()
    # Once the allocator's caches and ASan's quarantine (16 MB) are warm, memory must stay flat:
    # RSS after the first 2,000 cycles against the end tells a leak from allocator slack.
    warm = None
    i = 0
    while any(t.is_alive() for t in pool):
        bystander.echo(f"cycling-{i}", timeout=10)
        i += 1
        if warm is None and sum(kinds.values()) >= 2_000:
            warm = gw.rss_mb()
        time.sleep(0.5)
    for t in pool:
        t.join(timeout=30)
    elapsed = time.monotonic() - started
    assert not errors, errors[:3]
    assert sum(kinds.values()) == cycles and warm is not None

    accepted = wait_accounted(gw, ATTACKER, cycles, timeout=120)
    end = rss.stop()
    refused = refused_count(gw)
    print(f"\n{cycles} cycles ({kinds}) in {elapsed:.1f}s: {cycles / elapsed:.0f} connections/s; "
          f"{len(accepted)} accepted, {refused} refused; "
          f"RSS start {rss.start:.1f} MB, after 2,000 {warm:.1f} MB, peak {rss.peak:.1f} MB, "
          f"end {end:.1f} MB")
    assert gw.proc.alive()
    # Nothing is left behind: of every connection castgate accepted, only the bystander's is
    # still open.
    events = gw.events()
    opened = {e["castgate"]["session"] for e in events
              if e["event"]["action"] == "connection.accepted"}
    assert opened - ended(gw) == {bystander.session}
    # Slack: ~33 MB under ASan per process that handles the connections, whether 10,000 or 40,000
    # ran — the parent accepts them and one worker (the source's) serves them, each warming its
    # own quarantine and caches (~92 MB together measured); a leak of 1 KB per connection would
    # add 8 MB over the last 8,000, which the second bound catches.
    assert end < rss.start + 2 * 64, (rss.start, warm, rss.peak, end)
    assert end - warm < 8, (rss.start, warm, rss.peak, end)


def test_random_early_drop(watched, keys):
    """OpenSSH's MaxStartups 10:50:40: below 10 signing-in connections all are admitted, from 10
    on half are dropped at random (rising to all at 40). 100 idle connections at once: some are
    dropped early or refused as full, the others are served, and each refusal is an event in the
    gateway's own signed chain."""
    gw, bystander = watched("--max-startups", "10:50:40", "--per-source-max-startups", "1000")
    held = [connect_from(gw, ATTACKER) for _ in range(100)]
    try:
        def admitted_and_refused():
            admitted = accepted_from(gw, ATTACKER)
            return len(admitted) + refused_count(gw) == 100 and admitted
        admitted = wait_until(admitted_and_refused, 30, "100 connections admitted or refused",
                              interval=0.3)
        early, full = refused_count(gw, "early_drop"), refused_count(gw, "full")
        print(f"\nMaxStartups 10:50:40, 100 at once: {len(admitted)} admitted, {early} dropped "
              f"early, {full} refused as full, in {len(refusals(gw))} connection.refused lines")
        assert 10 <= len(admitted) <= 40
        assert early + full == 100 - len(admitted) and early > 0
        assert refused_count(gw, "per_source") == 0
        # The admitted ones are still being served (their SSH banner comes).
        bystander.echo("while-full")
    finally:
        for s in held:
            s.close()
    wait_accounted(gw, ATTACKER, 100)
    refused_events = refusals(gw)
    assert all(e["castgate"]["session"].startswith("gateway-") for e in refused_events)
    # check_record (at teardown) verifies the gateway's chain holding these events.


def test_a_stranger_asking_about_keys_without_end(watched, keys):
    """A stranger sends publickey queries ("would you take this key?", no signature: answered
    PK_OK for a key castgate knows, and no failed attempt in SSH's sense) one after another on
    one connection. They count against --max-request-rate: castgate hangs up with
    limit.exceeded instead of answering until the pre-auth timeout."""
    gw, bystander = watched()
    t = paramiko.Transport(("127.0.0.1", gw.shared_port))
    try:
        t.start_client(timeout=15)
        m = paramiko.Message()
        m.add_byte(paramiko.common.cMSG_SERVICE_REQUEST)
        m.add_string("ssh-userauth")
        t._send_message(m)
        key = paramiko.Ed25519Key.from_private_key_file(str(keys.eve))
        sent = 0
        for sent in range(1, 2001):
            q = paramiko.Message()
            q.add_byte(paramiko.common.cMSG_USERAUTH_REQUEST)
            q.add_string(f"{LOGIN}@db1.int")
            q.add_string("ssh-connection")
            q.add_string("publickey")
            q.add_boolean(False)
            q.add_string(key.get_name())
            q.add_string(key.asbytes())
            try:
                t._send_message(q)
            except (EOFError, OSError, paramiko.SSHException):
                break
            if not t.is_active():
                break
        wait_until(lambda: not t.is_active(), 30, "castgate to hang up")
    finally:
        t.close()
    exceeded = gw.wait_event(lambda e: e["event"]["action"] == "limit.exceeded",
                             what="limit.exceeded")
    assert exceeded["castgate"]["limit"] == "request_rate"
    assert "user" not in exceeded or exceeded["user"].get("id") != "mallory"  # never signed in
    session = exceeded["castgate"]["session"]
    end = gw.wait_event(lambda e: e["castgate"]["session"] == session and
                        e["event"]["action"] in ("connection.closed", "session.end"),
                        what="the connection's last event")
    assert end["castgate"]["end_reason"] == "limit_exceeded"
