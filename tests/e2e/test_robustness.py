"""Bad input and overload: garbage, truncated handshakes, idle connections, timeouts."""

import os
import socket
import subprocess
import time

import pytest

from harness import LOGIN, Tmux, wait_until

pytestmark = pytest.mark.timeout(180)


def open_shell(gw, keys):
    term = Tmux(gw.ssh_args(keys.alice, gw.bound_ports["db1.int"], ["-tt"]) + [f"{LOGIN}@127.0.0.1"])
    term.type("export PS1='ready$ '")
    term.wait_for("ready$")
    return term


def echo_roundtrip(term, token: str, timeout: float = 5) -> float:
    start = time.monotonic()
    term.type(f"echo {token}")
    term.wait_for(f"\n{token}", timeout=timeout)
    return time.monotonic() - start


@pytest.mark.timing
def test_garbage_and_truncated_handshakes_do_not_disturb_a_live_session(gateway, keys):
    term = open_shell(gateway, keys)
    try:
        port = gateway.shared_port
        kexinit_prefix = b"SSH-2.0-OpenSSH_9.2\r\n" + b"\x00\x00\x05\xdc\x0a\x14" + os.urandom(40)
        payloads = [os.urandom(65536), b"\x00" * 1000, b"SSH-2.0-x\r\n", kexinit_prefix,
                    b"SSH-1.5-old\r\n", b"GET / HTTP/1.1\r\n\r\n", b"SSH-2.0-" + b"A" * 5000 + b"\r\n"]
        for i in range(5):
            for p in payloads:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                try:
                    s.sendall(p)
                except OSError:
                    pass
                s.close()
            assert echo_roundtrip(term, f"alive-{i}") < 5
        # A new, real session still works.
        r = gateway.ssh(keys.alice, "echo fresh", f"{LOGIN}@db1.int")
        assert r.stdout == b"fresh\n"
    finally:
        term.close()
    assert gateway.proc.alive()


@pytest.mark.timing
def test_200_idle_unauthenticated_connections(gateway_factory, sshd, keys):
    # All from one address: the per-source cap (tested in test_attack_preauth.py) is lifted here.
    gateway = gateway_factory([{"name": "db1.int", "host": "127.0.0.1", "port": sshd.port}],
                              [sshd.known_hosts_line()], bound={"db1.int": "db1.int"},
                              extra_args=["--per-source-max-startups", "256",
                                          "--max-startups", "256:30:256"])
    term = open_shell(gateway, keys)
    idle = []
    try:
        for _ in range(200):
            s = socket.create_connection(("127.0.0.1", gateway.shared_port), timeout=5)
            idle.append(s)
        time.sleep(1)
        worst = max(echo_roundtrip(term, f"still-here-{i}") for i in range(10))
        assert worst < 2
        r = gateway.ssh(keys.alice, "echo new-session", f"{LOGIN}@db1.int", timeout=30)
        assert r.stdout == b"new-session\n"
    finally:
        for s in idle:
            s.close()
        term.close()


@pytest.mark.timing
def test_cap_on_unauthenticated_connections(gateway_factory, sshd, keys):
    gw = gateway_factory([{"name": "db1.int", "host": "127.0.0.1", "port": sshd.port}],
                         [sshd.known_hosts_line()], bound={"db1.int": "db1.int"},
                         extra_args=["--max-unauthenticated", "20",
                                     "--per-source-max-startups", "64"])
    term = open_shell(gw, keys)
    idle = []
    try:
        for _ in range(30):
            idle.append(socket.create_connection(("127.0.0.1", gw.shared_port), timeout=5))
        refused = gw.wait_event(lambda e: e["event"]["action"] == "connection.refused",
                                what="connection.refused")
        assert refused["castgate"]["count"] >= 9
        assert echo_roundtrip(term, "unaffected") < 3
    finally:
        for s in idle:
            s.close()
        term.close()


@pytest.mark.timing
def test_preauth_timeout(gateway_factory, sshd, keys):
    gw = gateway_factory([{"name": "db1.int", "host": "127.0.0.1", "port": sshd.port}],
                         [sshd.known_hosts_line()], extra_args=["--preauth-timeout", "2s"])
    s = socket.create_connection(("127.0.0.1", gw.shared_port), timeout=10)
    s.sendall(b"SSH-2.0-slowloris\r\n")
    start = time.monotonic()
    s.settimeout(10)
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    assert 1.5 < time.monotonic() - start < 6
    end = gw.wait_event(lambda e: e["event"]["action"] == "connection.closed")
    assert end["castgate"]["end_reason"] == "preauth_timeout"


def test_idle_timeout_closes_with_a_message(gateway_factory, sshd, keys):
    gw = gateway_factory([{"name": "db1.int", "host": "127.0.0.1", "port": sshd.port}],
                         [sshd.known_hosts_line()], extra_args=["--idle-timeout", "2s"])
    r = gw.ssh(keys.alice, "sleep 20", f"{LOGIN}@db1.int", timeout=30)
    assert b"idle" in r.stderr
    end = gw.wait_event(lambda e: e["event"]["action"] == "session.end")
    assert end["castgate"]["end_reason"] == "idle_timeout"
