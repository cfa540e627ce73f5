"""ProxyJump through castgate (`ssh db1.int` with the block `castgate ssh-config` prints): real
OpenSSH clients (ssh, scp, sftp, rsync, git) whose inner connection castgate terminates, signs in as
the outer identity, re-originates to a real sshd and records like a direct session."""

import copy
import json
import pathlib
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import paramiko
import pytest

from harness import CASTGATE, LOGIN, Tmux, keygen, pubkey, run, wait_until
from idp import approve
from idp import Idp
from test_oidc import MFA_POLICY, PROMPT, idp, oidc_gateway  # noqa: F401 (idp is a fixture)

pytestmark = pytest.mark.timeout(240)


class Client:
    """An engineer's laptop: a short private directory (control sockets need short paths), the
    generated ssh_config and known_hosts, and the user's key."""

    def __init__(self, gw, key: pathlib.Path | None, domains=("*.int",), batch: bool = True):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="cgj", dir="/tmp"))
        self.gw = gw
        common = ["--targets", str(gw.dir / "targets.json"), "--host-key", str(gw.keys.gateway_host),
                  "--gateway", f"127.0.0.1:{gw.shared_port}", "--dir", str(self.dir)]
        for d in domains:
            common += ["--domain", d]
        script = run([CASTGATE, "ssh-config", *common])
        assert script.returncode == 0, script.stderr
        self.script = script.stdout.decode()
        self.block = run([CASTGATE, "ssh-config", *common, "--format", "config"]).stdout.decode()
        self.known = run([CASTGATE, "ssh-config", *common, "--format", "known-hosts"]).stdout.decode()
        # The script as a user would paste it, with HOME pointing here (the block itself names
        # the directory given by --dir).
        home = self.dir / "home"
        home.mkdir()
        (home / ".ssh").mkdir(mode=0o700)
        (home / ".ssh" / "config").write_text("Host old\n  User someone\n")
        for _ in range(2):  # pasted twice: still one Include, ahead of the user's own stanzas
            r = subprocess.run(["sh", "-e"], input=self.script.encode(),
                               env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
                               capture_output=True, timeout=30)
            assert r.returncode == 0, r.stderr
        self.user_config = home / ".ssh" / "config"
        assert self.user_config.read_text() == f"Include {self.dir}/config\n\nHost old\n  User someone\n"
        assert (self.dir / "known_hosts").read_text() == self.known
        assert (self.dir / "config").read_text() == self.block
        # The test's own lines (ahead of the include) say which key to use; nothing else is added.
        ident = f"  IdentityFile {key}\n  IdentitiesOnly yes\n" if key else \
            "  PubkeyAuthentication no\n"
        self.config = self.dir / "ssh_config"
        self.config.write_text(
            f"Host *\n{ident}  BatchMode {'yes' if batch else 'no'}\n  ConnectTimeout 10\n"
            f"  LogLevel ERROR\nInclude {self.dir}/config\n")

    def ssh(self, target: str, command: str | None = None, opts=(), timeout=60, input=None):
        args = ["ssh", "-F", str(self.config), *opts, f"{LOGIN}@{target}"]
        if command is not None:
            args.append(command)
        return subprocess.run(args, capture_output=True, timeout=timeout, input=input)

    def close(self):
        # Ends the control masters the config started (ControlPersist).
        for sock in self.dir.glob("cm-*"):
            subprocess.run(["ssh", "-F", str(self.config), "-S", str(sock), "-O", "exit", "x"],
                           capture_output=True, timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def client_factory():
    made = []

    def make(gw, key, **kw):
        c = Client(gw, key, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def events(gw, action):
    return [e for e in gw.events() if e["event"]["action"] == action]


def inner_session_of(gw, outer_action="jump.open"):
    e = gw.wait_event(lambda e: e["event"]["action"] == outer_action, what=outer_action)
    return e["castgate"]["session"], e["castgate"]["jump"]["session"]


def test_generated_config_runs_exec_pty_sftp_and_scp_through_the_jump(gateway, keys, client_factory,
                                                                     tmp_path):
    client = client_factory(gateway, keys.alice)
    r = client.ssh("db1.int", "echo through-the-jump; hostname >/dev/null")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"through-the-jump\n"
    outer, inner = inner_session_of(gateway)
    # The inner connection is a session of its own, named by the outer one, and recorded like a
    # direct connection: the outer identity, the target, the login.
    accepted = gateway.wait_event(lambda e: e["castgate"]["session"] == inner and
                                  e["event"]["action"] == "connection.accepted")
    assert accepted["castgate"]["jump"]["outer_session"] == outer
    start = gateway.wait_event(lambda e: e["castgate"]["session"] == inner and
                               e["event"]["action"] == "session.start")
    assert start["destination"]["address"] == "db1.int"
    assert start["destination"]["user"]["name"] == LOGIN
    out = gateway.wait_event(lambda e: e["castgate"]["session"] == inner and
                             e["event"]["action"] == "asciicast.output")
    assert "through-the-jump" in out["asciicast"]["event"][2]
    cmd = gateway.wait_event(lambda e: e["castgate"]["session"] == inner and
                             e["event"]["action"] == "command")
    assert cmd["process"]["command_line"].startswith("echo through-the-jump")
    success = next(e for e in gateway.events() if e["castgate"]["session"] == inner and
                   e["event"]["action"] == "auth.success")
    assert f"ProxyJump session {outer}" in success["castgate"]["auth_detail"]
    # The outer connection recorded no denial: it never asked for a shell.
    assert not [e for e in events(gateway, "policy.denied") if e["castgate"]["session"] == outer]

    # A terminal: the prompt, an answer, the exit status.
    term = Tmux(["ssh", "-F", str(client.config), "-tt", f"{LOGIN}@db1.int"], width=100, height=30)
    try:
        term.type("export PS1='jump-prompt$ '")
        term.wait_for("jump-prompt$")
        term.type("echo answer-$((6*7))")
        term.wait_for("answer-42")
        term.type("exit 3")
        term.wait_for("CLIENT-EXIT=3")
    finally:
        term.close()

    # File transfers: sftp, scp (SFTP protocol) and scp -O.
    src = tmp_path / "payload.bin"
    src.write_bytes(bytes(range(256)) * 400)
    dest = tmp_path / "out"
    dest.mkdir(mode=0o777)
    for i, opts in enumerate([[], ["-O"]]):
        r = run(["scp", "-F", str(client.config), *opts, str(src), f"{LOGIN}@db1.int:{dest}/scp-{i}"])
        assert r.returncode == 0, r.stderr
        assert (dest / f"scp-{i}").read_bytes() == src.read_bytes()
    r = subprocess.run(["sftp", "-F", str(client.config), "-b", "-", f"{LOGIN}@db1.int"],
                       input=f"put {src} {dest}/sftp\nls {dest}\n".encode(), capture_output=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert (dest / "sftp").read_bytes() == src.read_bytes()
    wait_until(lambda: len([e for e in events(gateway, "file.close")
                            if e.get("file", {}).get("path", "").endswith("/sftp")]) >= 1, 15,
               "the sftp upload in the inner session's record")
    assert [e for e in events(gateway, "file.transfer")
            if e.get("file", {}).get("path", "").endswith("scp-1")], "scp -O recorded"


def test_rsync_and_git_through_the_jump(gateway, keys, client_factory, tmp_path):
    client = client_factory(gateway, keys.alice)
    ssh_cmd = f"ssh -F {client.config}"
    src = tmp_path / "tree"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("alpha\n")
    (src / "sub" / "b.bin").write_bytes(bytes(range(256)) * 64)
    dest = tmp_path / "rsynced"
    dest.mkdir(mode=0o777)
    r = run(["rsync", "-a", "-e", ssh_cmd, f"{src}/", f"{LOGIN}@db1.int:{dest}/"], timeout=60)
    assert r.returncode == 0, r.stderr
    assert (dest / "sub" / "b.bin").read_bytes() == (src / "sub" / "b.bin").read_bytes()
    # A second run transfers nothing new and still succeeds (rsync's delta protocol both ways).
    (src / "a.txt").write_text("alpha changed\n")
    r = run(["rsync", "-a", "-e", ssh_cmd, f"{src}/", f"{LOGIN}@db1.int:{dest}/"], timeout=60)
    assert r.returncode == 0, r.stderr
    assert (dest / "a.txt").read_text() == "alpha changed\n"

    bare = tmp_path / "repo.git"
    run(["git", "init", "-q", "--bare", str(bare)], check=True)
    bare.chmod(0o777)
    for p in bare.rglob("*"):
        p.chmod(0o777)
    work = tmp_path / "work"
    env = {"GIT_SSH_COMMAND": ssh_cmd, "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@x",
           "GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@x", "HOME": str(tmp_path),
           "PATH": "/usr/bin:/bin"}
    r = subprocess.run(["git", "clone", "-q", f"{LOGIN}@db1.int:{bare}", str(work)], env=env,
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    (work / "README").write_text("pushed through castgate\n")
    for args in (["add", "README"], ["commit", "-q", "-m", "first"],
                 ["push", "-q", "origin", "HEAD:refs/heads/main"]):
        r = subprocess.run(["git", "-C", str(work), *args], env=env, capture_output=True, timeout=60)
        assert r.returncode == 0, (args, r.stderr)
    shown = run(["git", "--git-dir", str(bare), "show", "main:README"])
    assert shown.stdout == b"pushed through castgate\n"
    commands = [e["process"]["command_line"] for e in events(gateway, "command")]
    assert any(c.startswith("git-receive-pack") for c in commands), commands
    assert any(c.startswith("rsync --server") for c in commands), commands


def test_unconfigured_host_and_disallowed_login_are_refused(gateway_factory, sshd, keys,
                                                          client_factory):
    policy = {"rules": [{"name": "ops", "groups": ["ops"], "targets": ["db1.int"],
                         "logins": [LOGIN]}]}
    gw = gateway_factory([{"name": "db1.int", "host": "127.0.0.1", "port": sshd.port}],
                         [sshd.known_hosts_line()], policy=policy)
    client = client_factory(gw, keys.alice)
    # Not a configured target: the gateway refuses the channel; nothing is forwarded.
    r = client.ssh("other.int", "echo no")
    assert r.returncode != 0 and b"no\n" not in r.stdout
    denied = gw.wait_event(lambda e: e["event"]["action"] == "port_forward.denied")
    assert denied["castgate"]["forward"]["host"] == "other.int"
    assert "not the SSH address of a configured target" in denied["event"]["reason"]
    # A configured target, a login the policy does not allow there.
    r = subprocess.run(["ssh", "-F", str(client.config), "not-allowed@db1.int", "echo no"],
                       capture_output=True, timeout=60)
    assert r.returncode != 0 and b"no\n" not in r.stdout
    d = gw.wait_event(lambda e: e["event"]["action"] == "policy.denied" and
                      e["castgate"]["denial"] == "policy")
    assert d["castgate"]["requested_target"] == "db1.int"
    assert "may not log in" in r.stderr.decode() + d["event"]["reason"]
    # And nothing reached the target for either.
    assert not events(gw, "session.start")


def test_a_wrong_gateway_key_is_detected_by_the_client(gateway_factory, sshd, keys, client_factory,
                                                       tmp_path):
    gw = gateway_factory([{"name": "db1.int", "host": "127.0.0.1", "port": sshd.port}],
                         [sshd.known_hosts_line()])
    client = client_factory(gw, keys.alice)
    # Another gateway (another host key) where the user expects theirs: the outer connection
    # fails host key checking with the generated known_hosts, before any key is offered.
    impostor_keys = copy.copy(keys)
    impostor_keys.gateway_host = keygen(tmp_path / "impostor_host")
    impostor = gateway_factory([{"name": "db1.int", "host": "127.0.0.1", "port": sshd.port}],
                               [sshd.known_hosts_line()], keys=impostor_keys)
    original = client.config.read_text()
    text = original.replace("Host *\n", f"Host 127.0.0.1\n  Port {impostor.shared_port}\n"
                                        f"  HostKeyAlias [127.0.0.1]:{gw.shared_port}\nHost *\n", 1)
    client.config.write_text(text)
    r = client.ssh("db1.int", "echo should-not-run")
    assert r.returncode == 255
    assert b"HOST IDENTIFICATION HAS CHANGED" in r.stderr or b"Host key verification failed" in r.stderr
    assert not [e for e in impostor.events() if e["event"]["action"] == "auth.success"]
    # With the right gateway the same config works.
    client.config.write_text(original)
    assert client.ssh("db1.int", "echo fine").stdout == b"fine\n"


def test_the_inner_connection_takes_only_the_outer_key(gateway, keys, client_factory):
    # The outer connection signs in with alice's key; the inner one offers bob's (registered, but
    # another identity): refused, not signed in as bob, not as alice.
    client = client_factory(gateway, keys.alice)
    text = client.config.read_text()
    client.config.write_text(
        text.replace(f"Host *\n  IdentityFile {keys.alice}\n",
                     f"Host db1.int\n  IdentityFile {keys.bob}\nHost 127.0.0.1\n"
                     f"  IdentityFile {keys.alice}\nHost *\n", 1))
    r = client.ssh("db1.int", "echo no")
    assert r.returncode == 255 and b"no\n" not in r.stdout
    assert b"Permission denied" in r.stderr
    assert not events(gateway, "session.start")
    outer = gateway.wait_event(lambda e: e["event"]["action"] == "jump.open")
    inner = outer["castgate"]["jump"]["session"]
    assert not [e for e in events(gateway, "auth.success") if e["castgate"]["session"] == inner]


def test_hostile_jump_channels(gateway_factory, sshd, keys):
    """A signed-in client with raw channels: garbage instead of SSH, a jump inside a jump, more
    channels than allowed. Each fails alone; the outer connection and the gateway go on."""
    gateway = gateway_factory([{"name": "db1.int", "host": "127.0.0.1", "port": sshd.port}],
                              [sshd.known_hosts_line()], extra_args=["--max-channels", "8"])
    t = paramiko.Transport(("127.0.0.1", gateway.shared_port))
    t.start_client(timeout=15)
    t.auth_publickey(LOGIN, paramiko.Ed25519Key.from_private_key_file(str(keys.alice)))
    try:
        garbage = t.open_channel("direct-tcpip", ("db1.int", 22), ("127.0.0.1", 1), timeout=15)
        garbage.sendall(b"GET / HTTP/1.0\r\n\r\n" + bytes(range(256)) * 64)
        garbage.settimeout(15)
        got = b""
        while True:
            data = garbage.recv(65536)
            if not data:
                break
            got += data
        assert got.startswith(b"SSH-2.0-castgate")  # the inner server's banner, then it hangs up
        garbage.close()
        # An inner SSH connection (paramiko over the channel) that tries a jump of its own.
        chan = t.open_channel("direct-tcpip", ("db1.int", 22), ("127.0.0.1", 1), timeout=15)
        inner = paramiko.Transport(chan)
        inner.start_client(timeout=15)
        inner.auth_publickey(LOGIN, paramiko.Ed25519Key.from_private_key_file(str(keys.alice)))
        assert inner.is_authenticated()
        with pytest.raises(paramiko.ChannelException):
            inner.open_channel("direct-tcpip", ("db1.int", 22), ("127.0.0.1", 1), timeout=15)
        s = inner.open_session(timeout=15)
        s.exec_command("echo inner-works")
        assert s.makefile().read() == b"inner-works\n"
        inner.close()
        # More channels than --max-channels (each signed in, so that the cap on those still
        # signing in is not what stops them): the rest are refused.
        opened, refused = [], 0
        key = paramiko.Ed25519Key.from_private_key_file(str(keys.alice))
        for _ in range(12):
            try:
                chan = t.open_channel("direct-tcpip", ("db1.int", 22), ("127.0.0.1", 1),
                                      timeout=15)
            except paramiko.ChannelException:
                refused += 1
                continue
            inner = paramiko.Transport(chan)
            inner.start_client(timeout=15)
            inner.auth_publickey(LOGIN, key)
            opened.append(inner)
        assert refused == 4 and len(opened) == 8
        for inner in opened:
            inner.close()
    finally:
        t.close()
    gateway.wait_event(lambda e: e["event"]["action"] == "jump.denied" and
                       "inside a ProxyJump" in e["event"]["reason"])
    # The gateway still serves others.
    r = gateway.ssh(keys.bob, "echo still-here", f"{LOGIN}@db1.int")
    assert r.returncode != 0 or r.stdout == b"still-here\n"
    r = gateway.ssh(keys.alice, "echo still-here", f"{LOGIN}@db1.int")
    assert r.stdout == b"still-here\n", r.stderr


@pytest.mark.parametrize("with_key", [False, True])
def test_one_device_sign_in_serves_later_commands_through_the_control_master(
        gateway_factory, sshd, idp, tmp_path, client_factory, with_key):
    """The first `ssh db1.int` signs in at the provider (the ProxyJump's outer connection shows the
    device prompt); later ssh and scp commands reuse that signed-in connection (ControlMaster) and
    open no second sign-in. Without a key the inner connection is bound by the channel it travels
    in; with one (unregistered, proved and bound by the sign-in), only that key signs it in."""
    gw = oidc_gateway(gateway_factory, sshd, idp, tmp_path)
    key = keygen(tmp_path / "laptop") if with_key else None
    client = client_factory(gw, key, batch=False)
    term = Tmux(["ssh", "-F", str(client.config), f"{LOGIN}@db1.int", "echo first-$((40+2))"],
                width=160, height=50)
    try:
        screen = term.wait_for("press Enter", 30)
        m = PROMPT.search(screen)
        assert m, screen
        approve(m.group(1), m.group(2), login="alice")
        term.keys("Enter")
        screen = term.wait_for("CLIENT-EXIT=", 60)
        assert "first-42" in screen and "CLIENT-EXIT=0" in screen, screen
    finally:
        term.close()
    src = tmp_path / "f.txt"
    src.write_text("copied\n")
    for i in range(2):
        r = client.ssh("db1.int", f"echo later-{i}", opts=["-o", "BatchMode=yes"])
        assert r.returncode == 0 and r.stdout == f"later-{i}\n".encode(), r.stderr
    r = run(["scp", "-F", str(client.config), "-o", "BatchMode=yes", str(src),
             f"{LOGIN}@db1.int:{tmp_path}/copy.txt"])
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "copy.txt").read_text() == "copied\n"
    assert len(events(gw, "auth.device_code")) == 1
    opens = events(gw, "jump.open")
    assert len(opens) == 4 and len({e["castgate"]["session"] for e in opens}) == 1
    inner = {e["castgate"]["jump"]["session"] for e in opens}
    successes = [e for e in events(gw, "auth.success") if e["castgate"]["session"] in inner]
    assert len(successes) == 4
    assert all(e["user"]["id"] == "oidc:alice" for e in successes), successes
    assert all(("key SHA256:" in e["castgate"]["auth_detail"]) == with_key for e in successes)
    starts = [e for e in events(gw, "session.start") if e["castgate"]["session"] in inner]
    assert len(starts) == 4 and all(e["destination"]["address"] == "db1.int" for e in starts)


def test_a_refusal_for_mfa_through_the_jump_forgets_the_outer_sign_in(
        gateway_factory, sshd, tmp_path, client_factory):
    """erin signs in with one factor at the ProxyJump's outer connection, which binds her key:
    enough for web1.int. db1.int needs two: refused through the jump, and her key's binding is
    forgotten, so her next connection signs in afresh (and can bring a second factor) instead
    of being refused with the old sign-in until the binding expires."""
    provider = Idp(tmp_path, accounts={"erin": {"groups": ["ops"], "amr": ["pwd"]}})
    try:
        cfg = provider.oidc_config(tmp_path / "oidc.json")
        gw = gateway_factory([{"name": "db1.int", "host": "127.0.0.1", "port": sshd.port},
                              {"name": "web1.int", "host": "127.0.0.1", "port": sshd.port}],
                             [sshd.known_hosts_line()], policy=MFA_POLICY,
                             extra_args=["--oidc-config", str(cfg)])
        key = keygen(tmp_path / "erin-laptop")
        client = client_factory(gw, key, batch=False)

        def end_masters():  # a new outer connection each time: no ControlMaster reuse
            for sock in client.dir.glob("cm-*"):
                run(["ssh", "-F", str(client.config), "-S", str(sock), "-O", "exit", "x"])

        term = Tmux(["ssh", "-F", str(client.config), f"{LOGIN}@web1.int", "echo dev-ok"],
                    width=160, height=50)
        try:
            m = PROMPT.search(term.wait_for("press Enter", 30))
            assert m
            approve(m.group(1), m.group(2), login="erin")
            term.keys("Enter")
            assert "dev-ok" in term.wait_for("CLIENT-EXIT=", 60)
        finally:
            term.close()
        end_masters()
        batch = ["-o", "BatchMode=yes"]
        r = client.ssh("web1.int", "echo bound", opts=batch)
        assert r.stdout == b"bound\n", r.stderr  # the binding signs her in, no prompt
        end_masters()
        r = client.ssh("db1.int", "echo nope", opts=batch)
        assert b"nope" not in r.stdout and r.returncode != 0
        gw.wait_event(lambda e: e["event"]["action"] == "policy.denied" and
                      e["castgate"]["denial"] == "mfa_required", what="the refusal")
        end_masters()
        r = client.ssh("web1.int", "echo still-bound", opts=batch)
        assert b"still-bound" not in r.stdout and r.returncode != 0, "the binding was kept"
    finally:
        provider.stop()


def test_local_port_forwarding_inside_the_jump_where_policy_allows(gateway, keys, client_factory):
    """`ssh -L` to a service next to the target, through the jump: forwarded by the target (the
    inner session's policy allows port forwarding) and logged as a forward in that session."""
    client = client_factory(gateway, keys.alice)
    service = socket.socket()
    service.bind(("127.0.0.1", 0))
    service.listen(1)
    service_port = service.getsockname()[1]

    def echo_once():
        conn, _ = service.accept()
        with conn:
            conn.sendall(b"service says " + conn.recv(100))

    threading.Thread(target=echo_once, daemon=True).start()
    local = socket.socket()
    local.bind(("127.0.0.1", 0))
    local_port = local.getsockname()[1]
    local.close()
    fwd = subprocess.Popen(["ssh", "-F", str(client.config), "-N", "-L",
                            f"{local_port}:127.0.0.1:{service_port}", f"{LOGIN}@db1.int"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def connect():
            try:
                return socket.create_connection(("127.0.0.1", local_port), timeout=2)
            except OSError:
                return None
        conn = wait_until(connect, 20, "the local forward to listen")
        with conn:
            conn.settimeout(15)
            conn.sendall(b"hello")
            assert conn.recv(100) == b"service says hello"
    finally:
        fwd.terminate()
        fwd.wait(timeout=10)
        service.close()
    opened = gateway.wait_event(lambda e: e["event"]["action"] == "port_forward.open")
    inner = {e["castgate"]["jump"]["session"] for e in events(gateway, "jump.open")}
    assert opened["castgate"]["session"] in inner
    assert opened["castgate"]["forward"]["port"] == service_port


def test_plain_dash_j_without_the_generated_config(gateway, keys, tmp_path):
    """`ssh -J gateway login@db1.int`, as people type it ad hoc: only a key and the pinned host
    key (known_hosts written by hand from castgate's host key) in a minimal config."""
    host_key = " ".join(pubkey(keys.gateway_host).split()[:2])
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{gateway.shared_port},db1.int {host_key}\n")
    config = tmp_path / "config"
    config.write_text(f"Host *\n  IdentityFile {keys.alice}\n  IdentitiesOnly yes\n"
                      f"  UserKnownHostsFile {known}\n  StrictHostKeyChecking yes\n"
                      "  BatchMode yes\n  LogLevel ERROR\n")
    r = subprocess.run(["ssh", "-F", str(config), "-J", f"{LOGIN}@127.0.0.1:{gateway.shared_port}",
                        f"{LOGIN}@db1.int", "echo dash-j"], capture_output=True, timeout=60)
    assert r.returncode == 0 and r.stdout == b"dash-j\n", r.stderr
    outer, inner = inner_session_of(gateway)
    start = gateway.wait_event(lambda e: e["castgate"]["session"] == inner and
                               e["event"]["action"] == "session.start")
    assert start["user"]["name"] == "alice" and start["destination"]["address"] == "db1.int"


def outer_transport(gw, user, key, cert=None):
    t = paramiko.Transport(("127.0.0.1", gw.shared_port))
    t.start_client(timeout=15)
    k = paramiko.Ed25519Key.from_private_key_file(str(key))
    if cert:
        k.load_certificate(str(cert))
    t.auth_publickey(user, k)
    assert t.is_authenticated()
    return t, k


def jump_exec(t, key, command):
    chan = t.open_channel("direct-tcpip", ("db1.int", 22), ("127.0.0.1", 1), timeout=15)
    inner = paramiko.Transport(chan)
    inner.start_client(timeout=15)
    inner.auth_publickey(LOGIN, key)
    s = inner.open_session(timeout=15)
    s.exec_command(command)
    out = s.makefile().read()
    inner.close()
    return out


def test_an_expired_sign_in_opens_no_more_jumps(gateway_factory, sshd, keys, tmp_path):
    """A certificate that expires while its (ControlMaster) connection stays open: no new inner
    session after the expiry, and the idle connection is then closed."""
    ca = keygen(tmp_path / "ca")
    ids = (f'identity="alice",email="alice@example.com",groups="ops,dba",kind=human {pubkey(keys.alice)}\n'
           f'cert-authority,name="corp-ca",kind=human,groups="ops" {pubkey(ca)}')
    policy = {"rules": [{"name": "ops", "groups": ["ops"], "targets": ["*"], "logins": [LOGIN]}]}
    gw = gateway_factory([{"name": "db1.int", "host": "127.0.0.1", "port": sshd.port}],
                         [sshd.known_hosts_line()], policy=policy, identities=ids)
    user_key = keygen(tmp_path / "u")
    run(["ssh-keygen", "-q", "-s", str(ca), "-I", "u1", "-n", LOGIN, "-V", "-5m:+8s",
         str(user_key) + ".pub"], check=True)
    t, k = outer_transport(gw, LOGIN, user_key, pathlib.Path(str(user_key) + "-cert.pub"))
    try:
        assert jump_exec(t, k, "echo before-expiry") == b"before-expiry\n"
        time.sleep(10)
        with pytest.raises((paramiko.ChannelException, paramiko.SSHException, EOFError)):
            jump_exec(t, k, "echo after-expiry")
        denied = gw.wait_event(lambda e: e["event"]["action"] == "jump.denied" or
                               (e["event"]["action"] == "connection.closed" and
                                e["castgate"]["end_reason"] == "sign_in_expired"))
        assert "expired" in json.dumps(denied), denied
    finally:
        t.close()
    assert len(events(gw, "session.start")) == 1


def test_jumps_signing_in_at_once_are_capped_and_idle_connections_close(gateway_factory, sshd,
                                                                         keys):
    """A signed-in user with no rights opening jump channels that never sign in: at most 4 at once
    per connection (the rest refused), each given 20 s; and a connection without a target is
    closed --jump-idle-timeout after its last jump channel."""
    from attacker import ATTACK_POLICY, attack_identities
    gw = gateway_factory([{"name": "db1.int", "host": "127.0.0.1", "port": sshd.port}],
                         [sshd.known_hosts_line()], policy=ATTACK_POLICY,
                         identities=attack_identities(keys),
                         extra_args=["--jump-idle-timeout", "3s"])
    t, _ = outer_transport(gw, "nobody-login", keys.bob)
    try:
        opened, refused = [], 0
        for _ in range(10):
            try:
                c = t.open_channel("direct-tcpip", ("db1.int", 22), ("127.0.0.1", 1), timeout=15)
                c.sendall(b"SSH-2.0-stall\r\n")
                opened.append(c)
            except paramiko.ChannelException:
                refused += 1
        assert len(opened) == 4 and refused == 6
        # The refusal reaches the client before its event reaches the log (written by another
        # thread): wait for all six, and no more.
        wait_until(lambda: len(events(gw, "jump.denied")) >= 6, 10, "six jump.denied events")
        assert len(events(gw, "jump.denied")) == 6
        for c in opened:
            c.close()
        wait_until(lambda: not t.is_active(), 30, "the idle connection to be closed")
    finally:
        t.close()
    outer = events(gw, "jump.open")[0]["castgate"]["session"]
    end = gw.wait_event(lambda e: e["castgate"]["session"] == outer and
                        e["event"]["action"] == "connection.closed")
    assert end["castgate"]["end_reason"] == "idle_timeout"
