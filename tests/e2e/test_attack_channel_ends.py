"""Channels with real clients, as they end and as the record says they ended (castgate.end_reason
of channel.end and port_forward.close): a command that ends on the target is target_closed,
though OpenSSH hangs up as soon as it has answered the target's CLOSE (recorded as
user_disconnected before); a channel the user closes is user_closed; a forwarded service that
closes the connection is target_closed (user_closed since the user-closed change: OpenSSH closes
the channel on the target's EOF). And a forward opened while castgate still connects to the
target relays what the service says first (lost before, and the channel hung)."""

from __future__ import annotations

import socket
import subprocess
import threading

import paramiko
import pytest

from harness import LOGIN, wait_until

pytestmark = pytest.mark.timeout(120)


def channel_ends(gw, action: str = "channel.end") -> list[dict]:
    return [e for e in gw.events() if e["event"]["action"] == action]


def wait_ends(gw, n: int, action: str = "channel.end") -> list[dict]:
    def ended():
        ends = channel_ends(gw, action)
        return ends if len(ends) >= n else None
    return wait_until(ended, 20, f"{n} {action} events")


@pytest.mark.parametrize("how", ["stdin-devnull", "stdin-open", "pty"])
def test_a_command_that_ends_on_the_target_is_target_closed(gateway, keys, how):
    for i in range(5):
        r = gateway.ssh(keys.alice, f"echo done-{i}; exit 3", f"{LOGIN}@db1.int",
                        stdin=subprocess.DEVNULL if how == "stdin-devnull" else subprocess.PIPE,
                        extra=["-tt"] if how == "pty" else None)
        assert r.returncode == 3, r.stderr
    ends = wait_ends(gateway, 5)
    reasons = [(e["castgate"]["end_reason"], e["event"]["reason"]) for e in ends]
    assert reasons == [("target_closed", "target closed the channel")] * 5, reasons


def signed_in(gw, keys, port: int, user: str) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect("127.0.0.1", port=port, username=user, key_filename=str(keys.alice),
                   look_for_keys=False, allow_agent=False, timeout=15)
    return client


def test_a_channel_the_user_closes_is_user_closed(gateway, keys):
    client = signed_in(gateway, keys, gateway.shared_port, f"{LOGIN}@db1.int")
    try:
        ch = client.get_transport().open_session(timeout=15)
        # With a terminal, sshd hangs the command up when the channel closes, and confirms.
        ch.get_pty()
        ch.exec_command("echo started; sleep 30")
        ch.settimeout(15)  # every read bounded
        seen = bytearray()
        wait_until(lambda: b"started" in seen or seen.extend(ch.recv(100)) or b"started" in seen,
                   15, "the command to start")
        ch.close()
        ends = wait_ends(gateway, 1)
    finally:
        client.close()
    assert ends[0]["castgate"]["end_reason"] == "user_closed", ends


@pytest.fixture
def banner_service():
    """A service that speaks first (as SSH, SMTP or MySQL do), then closes the connection."""
    service = socket.socket()
    service.bind(("127.0.0.1", 0))
    service.listen(8)

    def serve():
        try:
            while True:
                c, _ = service.accept()
                c.sendall(b"SERVICE-BANNER\r\n")
                c.close()
        except OSError:
            pass
    threading.Thread(target=serve, daemon=True).start()
    yield service.getsockname()[1]
    service.close()


def test_a_forward_opened_while_castgate_reaches_the_target_gets_what_the_service_says(
        gateway, keys, banner_service):
    """The forward is opened as soon as the user is signed in, while castgate still connects to
    the target: the service's banner, its EOF and its close come with the target's confirmation
    of the channel, and must reach the user (they were lost, and the channel hung)."""
    client = signed_in(gateway, keys, gateway.bound_ports["db1.int"], LOGIN)
    try:
        ch = client.get_transport().open_channel(
            "direct-tcpip", ("127.0.0.1", banner_service), ("127.0.0.1", 40000), timeout=15)
        ch.settimeout(10)
        got = b""
        while b"\n" not in got:
            data = ch.recv(100)
            assert data, got
            got += data
        assert got == b"SERVICE-BANNER\r\n"
        assert ch.recv(100) == b""  # the service's close reached the user
        ch.close()
        ends = wait_ends(gateway, 1, "port_forward.close")
    finally:
        client.close()
    assert ends[0]["castgate"]["end_reason"] == "target_closed", ends
    assert ends[0]["castgate"]["bytes"]["to_user"] == len(b"SERVICE-BANNER\r\n")


def test_a_forward_the_service_closed_is_target_closed_with_openssh(gateway, keys, banner_service):
    lport = free_local_port()
    fwd = subprocess.Popen(gateway.ssh_args(keys.alice, gateway.bound_ports["db1.int"], [
        "-N", "-o", "ExitOnForwardFailure=yes",
        "-L", f"{lport}:127.0.0.1:{banner_service}"]) + [f"{LOGIN}@127.0.0.1"])
    try:
        def banner():
            try:
                c = socket.create_connection(("127.0.0.1", lport), timeout=2)
            except OSError:
                return None
            with c:
                c.settimeout(10)
                data = c.recv(100)
                assert c.recv(100) == b""  # the service's close reached the user
            return data
        assert wait_until(banner, 15, "a forwarded banner") == b"SERVICE-BANNER\r\n"
        ends = wait_ends(gateway, 1, "port_forward.close")
    finally:
        fwd.terminate()
        fwd.wait(timeout=10)
    assert ends[0]["castgate"]["end_reason"] == "target_closed", ends


def free_local_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
