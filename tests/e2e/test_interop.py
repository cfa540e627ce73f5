"""Interoperability: dropbear as a target, PuTTY plink and paramiko as clients."""

import pathlib
import pwd

import paramiko
import pytest

from harness import LOGIN, TEST_USER, Dropbear, keygen, pubkey, run

pytestmark = pytest.mark.timeout(120)


@pytest.mark.usefixtures("test_account")
def test_dropbear_target_with_a_static_key(gateway_factory, keys, tmp_path):
    static = keygen(tmp_path / "dropbear-static")
    home = pathlib.Path(pwd.getpwnam(TEST_USER).pw_dir)
    server = Dropbear(tmp_path, pubkey(static), home)
    try:
        gw = gateway_factory(
            [{"name": "legacy.int", "host": "127.0.0.1", "port": server.port,
              "static_key": str(static)}],
            [server.known_hosts_line()])
        r = gw.ssh(keys.alice, "echo from-$(whoami); exit 4", f"{TEST_USER}@legacy.int")
        assert r.stdout == f"from-{TEST_USER}\n".encode()
        assert r.returncode == 4
        connected = gw.wait_event(lambda e: e["event"]["action"] == "upstream.connected")
        assert connected["castgate"]["upstream"]["credential"] == "static key"
    finally:
        server.stop()


def gateway_fingerprint(keys) -> str:
    out = run(["ssh-keygen", "-lf", str(keys.gateway_host) + ".pub"]).stdout.decode()
    return out.split()[1]


def test_putty_plink_client(gateway, keys, tmp_path):
    ppk = tmp_path / "alice.ppk"
    run(["puttygen", str(keys.alice), "-O", "private", "-o", str(ppk)], check=True)
    r = run(["plink", "-ssh", "-batch", "-noagent", "-hostkey", gateway_fingerprint(keys),
             "-P", str(gateway.bound_ports["db1.int"]), "-i", str(ppk), f"{LOGIN}@127.0.0.1",
             "echo plink-ok; exit 5"], timeout=60)
    assert r.stdout.replace(b"\r", b"") == b"plink-ok\n", r.stderr
    assert r.returncode == 5


def test_paramiko_client_exec_signal_and_stderr(gateway, keys):
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    # sshd only passes signals on to sessions of unprivileged users (privilege separation).
    client.connect("127.0.0.1", port=gateway.shared_port, username=f"{TEST_USER}@db1.int",
                   key_filename=str(keys.alice), look_for_keys=False, allow_agent=False,
                   timeout=15)
    try:
        stdin, stdout, stderr = client.exec_command("read line; echo got:$line; echo oops >&2; exit 9",
                                                    timeout=30)
        stdin.write("hello\n")
        stdin.channel.shutdown_write()
        assert stdout.read() == b"got:hello\n"
        assert stderr.read() == b"oops\n"
        assert stdout.channel.recv_exit_status() == 9
        # A signal sent by the client reaches the remote process.
        chan = client.get_transport().open_session(timeout=15)
        chan.exec_command("trap 'echo got-INT; exit 0' INT; echo ready; sleep 20 & wait")
        buf = b""
        while b"ready" not in buf:
            buf += chan.recv(100)
        m = paramiko.Message()
        m.add_byte(bytes([98]))  # SSH_MSG_CHANNEL_REQUEST
        m.add_int(chan.remote_chanid)
        m.add_string("signal")
        m.add_boolean(False)
        m.add_string("INT")
        client.get_transport()._send_user_message(m)
        while b"got-INT" not in buf:
            data = chan.recv(100)
            if not data:
                break
            buf += data
        assert b"got-INT" in buf
        assert chan.recv_exit_status() == 0
    finally:
        client.close()
