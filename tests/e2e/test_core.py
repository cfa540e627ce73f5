"""Gateway core: real OpenSSH clients through castgate to a real OpenSSH sshd."""

import hashlib
import itertools
import os
import pathlib
import signal
import socket
import subprocess
import threading
import time

import pytest

from harness import LOGIN, Tmux, keygen, pubkey, run, wait_until

pytestmark = pytest.mark.timeout(180)


def direct_ssh_args(keys, sshd, tmp_path):
    """ssh straight to the target with a certificate from the same CA: the baseline."""
    key = keygen(tmp_path / "direct")
    cert = pathlib.Path(str(key) + "-cert.pub")
    if not cert.exists():
        run(["ssh-keygen", "-q", "-s", str(keys.ca), "-I", "direct", "-n", LOGIN, "-V", "-5m:+1h",
             str(key) + ".pub"], check=True)
    return ["ssh", "-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o",
            "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes",
            "-o", "IdentitiesOnly=yes", "-i", str(key), "-p", str(sshd.port), f"{LOGIN}@127.0.0.1"]


def session_events(gw, session):
    return [e for e in gw.events() if e["castgate"]["session"] == session]


def last_session(gw, action="session.start"):
    return gw.wait_event(lambda e: e["event"]["action"] == action, what=action)["castgate"]["session"]


def test_interactive_shell_through_a_real_pty(gateway, keys):
    term = Tmux(gateway.ssh_args(keys.alice, gateway.bound_ports["db1.int"], ["-tt"]) +
                [f"{LOGIN}@127.0.0.1"], width=100, height=30)
    try:
        term.type("export PS1='castgate-prompt$ '")
        term.wait_for("castgate-prompt$")
        term.type("echo answer-$((6*7))")
        term.wait_for("answer-42")
        term.type("stty size")
        term.wait_for("30 100")
        term.resize(120, 40)
        # The new size travels from the terminal through ssh, castgate and sshd to the target's
        # pty: ask until it has arrived there.
        asked = itertools.count()

        def target_size():
            n = next(asked)
            term.type(f"echo size-{n}=$(stty size | tr ' ' x)")
            return f"\nsize-{n}=40x120" in term.wait_for(f"\nsize-{n}=")
        wait_until(target_size, 15, "the target's pty to be 120x40", interval=0.2)
        term.type("exit 7")
        term.wait_for("CLIENT-EXIT=7")
    finally:
        term.close()
    end = gateway.wait_event(lambda e: e["event"]["action"] == "channel.end", what="channel.end")
    assert end["process"]["exit_code"] == 7
    header = next(e for e in gateway.events() if e["event"]["action"] == "asciicast.header")
    assert header["castgate"]["pty"] is True
    assert header["asciicast"]["header"]["width"] == 100
    assert header["asciicast"]["header"]["height"] == 30
    resizes = [e["asciicast"]["event"][2] for e in gateway.events()
               if e["event"]["action"] == "asciicast.resize"]
    assert "120x40" in resizes
    output = "".join(e["asciicast"]["event"][2] for e in gateway.events()
                     if e["event"]["action"] == "asciicast.output")
    assert "answer-42" in output


def test_exec_separates_stdout_and_stderr_and_returns_the_exit_status(gateway, keys):
    r = gateway.ssh(keys.alice, "echo out; echo err >&2; exit 3", f"{LOGIN}@db1.int")
    assert r.returncode == 3
    assert r.stdout == b"out\n"
    assert r.stderr == b"err\n"


def test_exit_signal_is_relayed_like_a_direct_connection(gateway, keys, sshd, tmp_path):
    direct = run(direct_ssh_args(keys, sshd, tmp_path) + ["kill -TERM $$"])
    via = gateway.ssh(keys.alice, "kill -TERM $$", f"{LOGIN}@db1.int")
    assert via.returncode == direct.returncode == 255
    end = gateway.wait_event(lambda e: e["event"]["action"] == "channel.end", what="channel.end")
    assert end["castgate"]["exit_signal"] == "TERM"


def test_stdin_eof_reaches_the_target(gateway, keys, tmp_path):
    data = os.urandom(123457)
    r = gateway.ssh(keys.alice, "wc -c", f"{LOGIN}@db1.int", input=data)
    assert r.returncode == 0
    assert r.stdout.strip() == b"123457"


def test_env_allowlist(gateway, keys):
    r = gateway.ssh(keys.alice, "echo lang=$LANG secret=$CASTGATE_TEST_SECRET", f"{LOGIN}@db1.int",
                    extra=["-o", "SendEnv=LANG CASTGATE_TEST_SECRET"],
                    )
    # CASTGATE_TEST_SECRET is accepted by the target but not on castgate's allowlist.
    assert b"secret=\n" in r.stdout or r.stdout.endswith(b"secret=\n")


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "big.bin"
    with open(path, "wb") as f:
        for _ in range(100):
            f.write(os.urandom(1 << 20))
    return path


@pytest.mark.bulk
def test_100MB_download_and_upload_are_identical(gateway, keys, big_file, tmp_path):
    want = sha256_file(big_file)
    port = gateway.bound_ports["db1.int"]
    down = subprocess.run(gateway.ssh_args(keys.alice, port) + [f"{LOGIN}@127.0.0.1",
                          f"cat {big_file}"], stdout=subprocess.PIPE, timeout=150)
    assert down.returncode == 0
    assert hashlib.sha256(down.stdout).hexdigest() == want
    target = tmp_path / "uploaded.bin"
    with open(big_file, "rb") as f:
        up = subprocess.run(gateway.ssh_args(keys.alice, port) + [f"{LOGIN}@127.0.0.1",
                            f"cat > {target}"], stdin=f, timeout=150)
    assert up.returncode == 0
    assert sha256_file(target) == want


def test_sftp_put_and_get(gateway, keys, tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(3_000_000))
    batch = tmp_path / "batch"
    batch.write_text(f"put {src} {tmp_path}/put.bin\nget {tmp_path}/put.bin {tmp_path}/got.bin\n")
    args = ["sftp", "-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o",
            "UserKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
            "-i", str(keys.alice), "-P", str(gateway.shared_port), "-b", str(batch),
            f"{LOGIN}@db1.int@127.0.0.1"]
    r = run(args, timeout=60)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "put.bin").read_bytes() == src.read_bytes()
    assert (tmp_path / "got.bin").read_bytes() == src.read_bytes()


@pytest.mark.parametrize("legacy", [False, True], ids=["scp-sftp", "scp-O"])
def test_scp_both_protocols(gateway, keys, tmp_path, legacy):
    src = tmp_path / "scp-src.bin"
    src.write_bytes(os.urandom(2_000_000))
    base = ["scp", "-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o",
            "UserKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
            "-i", str(keys.alice), "-P", str(gateway.bound_ports["db1.int"])]
    if legacy:
        base.append("-O")
    r = run(base + [str(src), f"{LOGIN}@127.0.0.1:{tmp_path}/scp-up.bin"])
    assert r.returncode == 0, r.stderr
    r = run(base + [f"{LOGIN}@127.0.0.1:{tmp_path}/scp-up.bin", str(tmp_path / "scp-down.bin")])
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "scp-down.bin").read_bytes() == src.read_bytes()


def test_controlmaster_runs_three_sessions_on_one_connection(gateway, keys, tmp_path):
    ctl = str(tmp_path / "cm.sock")
    port = gateway.bound_ports["db1.int"]
    master = subprocess.Popen(gateway.ssh_args(keys.alice, port, ["-M", "-N", "-S", ctl]) +
                              [f"{LOGIN}@127.0.0.1"], stderr=subprocess.PIPE)
    try:
        wait_until(lambda: os.path.exists(ctl), 15, "the control socket")
        procs = [subprocess.Popen(gateway.ssh_args(keys.alice, port, ["-S", ctl]) +
                                  [f"{LOGIN}@127.0.0.1", f"sleep 1; echo session-{i}"],
                                  stdout=subprocess.PIPE) for i in range(3)]
        outs = [p.communicate(timeout=30)[0] for p in procs]
        assert outs == [b"session-0\n", b"session-1\n", b"session-2\n"]
    finally:
        run(["ssh", "-S", ctl, "-O", "exit", "x"], timeout=10)
        master.wait(timeout=15)
    starts = [e for e in gateway.events() if e["event"]["action"] == "session.start"]
    assert len(starts) == 1  # one sign-in, one upstream connection
    headers = [e for e in gateway.events() if e["event"]["action"] == "asciicast.header"]
    assert sorted(e["castgate"]["channel"] for e in headers) == [0, 1, 2]
    assert len({e["castgate"]["session"] for e in headers}) == 1


def test_routing_by_listener_and_by_user_name(gateway, keys):
    by_listener = gateway.ssh(keys.alice, "echo via-listener", LOGIN,
                              port=gateway.bound_ports["db1.int"])
    by_name = gateway.ssh(keys.alice, "echo via-name", f"{LOGIN}@db1.int")
    assert by_listener.stdout == b"via-listener\n"
    assert by_name.stdout == b"via-name\n"
    dests = {e["destination"]["address"] for e in gateway.events()
             if e["event"]["action"] == "session.start"}
    assert dests == {"db1.int"}


def refusal(gw, key, user, port=None, command="echo should-not-run"):
    r = gw.ssh(key, command, user, port=port)
    assert b"should-not-run" not in r.stdout
    return r


def test_refused_by_policy_says_who_what_and_why(gateway, keys):
    r = refusal(gateway, keys.bob, f"{LOGIN}@db1.int")
    assert r.returncode != 0
    msg = r.stderr.decode()
    assert "bob" in msg and "db1.int" in msg and LOGIN in msg and "may not" in msg
    denied = gateway.wait_event(lambda e: e["event"]["action"] == "policy.denied")
    assert denied["castgate"]["denial"] == "policy"
    assert denied["user"]["name"] == "bob"
    # Refused before any upstream connection.
    session = denied["castgate"]["session"]
    assert "upstream.connected" not in gateway.actions(session)
    assert "credential.issued" not in gateway.actions(session)


def test_unknown_key_is_refused_with_its_fingerprint(gateway, keys):
    r = gateway.ssh(keys.eve, "true", f"{LOGIN}@db1.int",
                    extra=["-o", "BatchMode=no", "-o", "LogLevel=INFO",
                           "-o", "PreferredAuthentications=publickey,keyboard-interactive"],
                    stdin=subprocess.DEVNULL)
    assert r.returncode == 255
    fp = run(["ssh-keygen", "-lf", str(keys.eve) + ".pub"]).stdout.split()[1].decode()
    assert fp in r.stderr.decode()
    assert "none of the keys you offered is registered" in r.stderr.decode()
    failure = gateway.wait_event(lambda e: e["event"]["action"] == "auth.failure")
    assert fp in failure["event"]["reason"]


def test_unconfigured_target_is_refused_without_connecting(gateway, keys):
    r = refusal(gateway, keys.alice, f"{LOGIN}@evil.example.com")
    assert "evil.example.com" in r.stderr.decode()
    assert "not configured" in r.stderr.decode()
    denied = gateway.wait_event(lambda e: e["event"]["action"] == "policy.denied")
    assert denied["castgate"]["denial"] == "unknown_target"


def test_missing_target_lists_the_reachable_ones(gateway, keys):
    r = refusal(gateway, keys.alice, LOGIN)
    assert "db1.int" in r.stderr.decode()


def test_host_key_mismatch_is_refused(gateway_factory, sshd, keys, tmp_path):
    other = keygen(tmp_path / "not-the-host-key")
    gw = gateway_factory([{"name": "db1.int", "host": "127.0.0.1", "port": sshd.port}],
                         [f"[127.0.0.1]:{sshd.port} {pubkey(other)}"])
    r = refusal(gw, keys.alice, f"{LOGIN}@db1.int")
    msg = r.stderr.decode()
    assert "does not match" in msg and "db1.int" in msg
    failed = gw.wait_event(lambda e: e["event"]["action"] == "upstream.failed")
    assert failed["castgate"]["upstream"]["error"] == "host_key_mismatch"
    assert "Accepted" not in sshd.log()


def test_unpinned_host_key_is_not_trusted_on_first_use(gateway_factory, sshd, keys):
    gw = gateway_factory([{"name": "db1.int", "host": "127.0.0.1", "port": sshd.port}],
                         ["# nothing pinned"])
    r = refusal(gw, keys.alice, f"{LOGIN}@db1.int")
    assert "no host key is pinned" in r.stderr.decode()
    failed = gw.wait_event(lambda e: e["event"]["action"] == "upstream.failed")
    assert failed["castgate"]["upstream"]["error"] == "host_key_unknown"


def test_target_down(gateway_factory, keys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    gw = gateway_factory([{"name": "down.int", "host": "127.0.0.1", "port": dead_port}],
                         [f"[127.0.0.1]:{dead_port} {keys.ca_pub}"])
    start = time.monotonic()
    r = refusal(gw, keys.alice, f"{LOGIN}@down.int")
    assert time.monotonic() - start < 20
    assert "cannot connect to down.int" in r.stderr.decode()
    failed = gw.wait_event(lambda e: e["event"]["action"] == "upstream.failed")
    assert failed["castgate"]["upstream"]["error"] == "target_unreachable"


def test_port_forwarding_only_where_policy_allows(gateway, keys, sshd):
    # alice (ops) may forward: reach a service next to the target through it. A forward to a
    # target's own SSH address is not forwarded but served by castgate (a ProxyJump, recorded).
    port = gateway.bound_ports["db1.int"]
    service = socket.socket()
    service.bind(("127.0.0.1", 0))
    service.listen(4)
    threading.Thread(target=lambda: [c.sendall(b"SERVICE-BANNER\r\n") or c.close()
                                     for c in iter(lambda: service.accept()[0], None)],
                     daemon=True).start()
    ports = {}
    for name in ("service", "ssh"):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        ports[name] = s.getsockname()[1]
        s.close()
    fwd = subprocess.Popen(gateway.ssh_args(keys.alice, port, [
        "-N", "-o", "ExitOnForwardFailure=yes",
        "-L", f"{ports['service']}:127.0.0.1:{service.getsockname()[1]}",
        "-L", f"{ports['ssh']}:127.0.0.1:{sshd.port}"]) + [f"{LOGIN}@127.0.0.1"])
    try:
        def banner(lport):
            def get():
                try:
                    with socket.create_connection(("127.0.0.1", lport), timeout=2) as c:
                        c.settimeout(5)
                        return c.recv(100)
                except OSError:
                    return None
            return wait_until(get, 15, "a forwarded banner")
        assert banner(ports["service"]) == b"SERVICE-BANNER\r\n"
        assert banner(ports["ssh"]).startswith(b"SSH-2.0-castgate")
    finally:
        fwd.terminate()
        fwd.wait(timeout=10)
        service.close()
    gateway.wait_event(lambda e: e["event"]["action"] == "port_forward.open", what="port_forward.open")
    gateway.wait_event(lambda e: e["event"]["action"] == "jump.open", what="jump.open")


def test_agent_and_x11_forwarding_are_refused(gateway, keys):
    r = gateway.ssh(keys.alice, "echo agent=${SSH_AUTH_SOCK:-none}", f"{LOGIN}@db1.int",
                    extra=["-A", "-o", "ForwardX11=yes"])
    assert b"agent=none" in r.stdout


def test_sigterm_lets_sessions_finish_then_closes_them_with_a_message(gateway_factory, sshd, keys):
    gw = gateway_factory([{"name": "db1.int", "host": "127.0.0.1", "port": sshd.port}],
                         [sshd.known_hosts_line()], extra_args=["--shutdown-grace", "2s"])
    client = subprocess.Popen(gw.ssh_args(keys.alice) + [f"{LOGIN}@db1.int@127.0.0.1",
                              "echo started; sleep 30"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    gw.wait_event(lambda e: e["event"]["action"] == "asciicast.output", what="output")
    gw.proc.signal(signal.SIGTERM)
    time.sleep(1)
    assert client.poll() is None  # still running within the grace period
    out, err = client.communicate(timeout=20)
    assert b"started" in out
    assert b"shutting down" in err
    assert gw.proc.wait(20) == 0
    actions = gw.actions()
    assert [a for a in actions if not a.startswith("signer.")][-1] == "gateway.stop"
    assert actions[-1] == "signer.stop"  # the signer's own chain ends after castgate's
    end = [e for e in gw.events() if e["event"]["action"] == "session.end"]
    assert end and end[0]["castgate"]["end_reason"] == "gateway_shutdown"


def test_settings_from_environment_and_config_file(gateway_factory, sshd, keys, tmp_path):
    """The same gateway configured three ways: a config file, CASTGATE_* variables, flags."""
    gw = gateway_factory([{"name": "db1.int", "host": "127.0.0.1", "port": sshd.port}],
                         [sshd.known_hosts_line()], start=False)
    # Move two settings out of the command line: one into a file, one into the environment.
    args = gw.args
    i = args.index("--policy")
    policy = args[i + 1]
    del args[i:i + 2]
    i = args.index("--targets")
    targets = args[i + 1]
    del args[i:i + 2]
    conf = tmp_path / "castgate.conf"
    conf.write_text(f"# castgate settings\npolicy = {policy}\nidle-timeout = 1h\n")
    args += ["--config", str(conf)]
    gw.env["CASTGATE_TARGETS"] = targets
    gw.start()
    r = gw.ssh(keys.alice, "echo configured", f"{LOGIN}@db1.int")
    assert r.stdout == b"configured\n"


def test_bad_settings_stop_start_up_with_a_clear_message(tmp_path, keys):
    from harness import CASTGATE
    r = run([CASTGATE, "--listen", "127.0.0.1:0", "--demo", "--targets", "/nonexistent.json",
             "--policy", "/nonexistent.json", "--known-hosts", "/dev/null"])
    assert r.returncode == 2
    assert b"cannot read /nonexistent.json" in r.stderr
    bad = tmp_path / "policy.json"
    bad.write_text('{"rules": [{"groups": ["ops"], "targets": ["*"], "logins": ["x"], "typo": 1}]}')
    t = tmp_path / "targets.json"
    t.write_text('{"targets": [{"name": "a"}]}')
    r = run([CASTGATE, "--listen", "127.0.0.1:0", "--demo", "--targets", str(t), "--policy",
             str(bad), "--known-hosts", "/dev/null", "--user-ca-key", str(keys.ca)])
    assert r.returncode == 2
    assert b'unknown setting "typo"' in r.stderr


def test_sessions_leave_no_descriptors_behind(gateway_factory, sshd, keys):
    """Each session's sockets (to the user, to the target) are closed when it ends: a gateway
    that leaked one per session would run out of descriptors in production. (libssh 0.10 forgets,
    without closing, a socket handed to it when the session disconnects.)"""
    gw = gateway_factory([{"name": "db1.int", "host": "127.0.0.1", "port": sshd.port}],
                         [sshd.known_hosts_line()], extra_args=["--worker-processes", "1"])
    worker = gw.workers(1)[0]

    def fds():
        return len(os.listdir(f"/proc/{worker}/fd"))

    assert gw.ssh(keys.alice, "echo warm", f"{LOGIN}@db1.int").stdout == b"warm\n"
    wait_until(lambda: sum(e["event"]["action"] == "session.end" for e in gw.events()) == 1, 15,
               "the first session's end")
    time.sleep(0.5)
    baseline = fds()
    for i in range(6):
        assert gw.ssh(keys.alice, f"echo {i}", f"{LOGIN}@db1.int").stdout == f"{i}\n".encode()
    wait_until(lambda: sum(e["event"]["action"] == "session.end" for e in gw.events()) == 7, 15,
               "every session's end")
    wait_until(lambda: fds() <= baseline, 10, f"the worker's descriptors back to {baseline}")
