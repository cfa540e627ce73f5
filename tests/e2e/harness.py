"""Real peers for castgate's end-to-end tests.

Everything runs on loopback with ports picked at run time: OpenSSH sshd (and dropbear) as
targets, castgate itself, and real clients (ssh, scp, sftp, plink, paramiko). Every wait has a
timeout and every process is stopped when its test ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import ipaddress
import json
import os
import pathlib
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import Callable, Iterable

REPO = pathlib.Path(__file__).resolve().parents[2]
CASTGATE = os.environ.get("CASTGATE_BIN", str(REPO / "build" / "gateway" / "castgate"))
PLAYER = os.environ.get("CASTGATE_PLAYER_BIN", str(pathlib.Path(CASTGATE).parents[1] / "player" /
                                                   "castgate-player"))
SCHEMA = REPO / "docs" / "events.schema.json"
SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
LOGIN = getpass.getuser()
TEST_USER = "castgate-test"  # created by scripts/test-setup.sh


class TimeoutError_(AssertionError):
    pass


def wait_until(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.05):
    """Polls `predicate` until it returns something truthy; fails the test after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError_(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@contextlib.contextmanager
def exclusive(name: str):
    """Holds a lock that every castgate test run on this machine shares, for a test that changes
    something they all share (the castgate-test account, a fixed path): parallel workers
    (pytest -n) and other checkouts' runs take turns."""
    with open(pathlib.Path(tempfile.gettempdir()) / f"castgate-e2e-{name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def keygen(path: pathlib.Path, kind: str = "ed25519", comment: str = "") -> pathlib.Path:
    if not path.exists():
        args = ["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(path), "-C", comment or path.name]
        if kind == "rsa":
            args += ["-b", "2048"]
        subprocess.run(args, check=True, timeout=30)
    return path


def pubkey(path: pathlib.Path) -> str:
    return pathlib.Path(str(path) + ".pub").read_text().strip()


class Proc:
    """A child process with its output in files and a guaranteed stop."""

    def __init__(self, name: str, args: list[str], workdir: pathlib.Path, env=None,
                 stdout_path: pathlib.Path | None = None, stdout=None):
        self.name = name
        self.args = args
        self.workdir = workdir
        self.stdout_path = stdout_path or workdir / f"{name}.out"
        self.stderr_path = workdir / f"{name}.err"
        # Appending, so a benchmark can truncate a long recording between runs.
        self._out = open(self.stdout_path, "ab") if stdout is None else None
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(args, stdout=self._out if stdout is None else stdout,
                                     stderr=self._err, env=env, stdin=subprocess.DEVNULL,
                                     start_new_session=True)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def signal(self, sig: int):
        if self.alive():
            os.kill(self.proc.pid, sig)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self._out:
            self._out.close()
        self._err.close()
        return self.proc.returncode


class StdoutPipe:
    """castgate's stdout as a pipe the test reads into a file, and can stop reading or close:
    a stand-in for a log shipper that stalls or dies."""

    def __init__(self, path: pathlib.Path):
        import threading
        self.path = path
        self.read_fd, self.write_fd = os.pipe()
        self.running = threading.Event()
        self.running.set()
        self.closed = False
        self._file = open(path, "wb")
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self):
        while True:
            self.running.wait()
            if self.closed:
                return
            try:
                data = os.read(self.read_fd, 65536)
            except OSError:
                return
            if not data:
                return
            self._file.write(data)
            self._file.flush()

    def pause(self):
        self.running.clear()

    def resume(self):
        self.running.set()

    def close_reader(self):
        self.closed = True
        os.close(self.read_fd)
        self.running.set()

    def finish(self):
        self.running.set()
        self._thread.join(timeout=10)
        self._file.close()


class Sshd:
    """OpenSSH sshd as a target: the gateway's user CA is the only way in."""

    def __init__(self, workdir: pathlib.Path, ca_pub: str, extra: str = ""):
        self.dir = workdir / f"sshd-{free_port()}"
        self.dir.mkdir(parents=True)
        self.host_key = keygen(self.dir / "host_ed25519")
        (self.dir / "ca.pub").write_text(ca_pub + "\n")
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", exist_ok=True)
        self.port = free_port()
        # sshd keeps the first value it reads for a keyword: `extra` goes first to override.
        config = f"""{extra}
Port {self.port}
ListenAddress 127.0.0.1
HostKey {self.host_key}
PidFile {self.dir}/sshd.pid
TrustedUserCAKeys {self.dir}/ca.pub
{"" if "AuthorizedKeysFile" in extra else "AuthorizedKeysFile none"}
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
AcceptEnv LANG LC_* CASTGATE_TEST_*
LogLevel VERBOSE
MaxStartups 100:30:200
{"" if "Subsystem" in extra else "Subsystem sftp internal-sftp"}
"""
        (self.dir / "sshd_config").write_text(config)
        self.proc = Proc("sshd", [SSHD, "-D", "-e", "-f", str(self.dir / "sshd_config")], self.dir)
        wait_until(lambda: port_open(self.port) or not self.proc.alive(), 10, "sshd to listen")
        assert self.proc.alive(), f"sshd failed to start: {self.proc.stderr()}"

    def known_hosts_line(self, names: Iterable[str] | None = None) -> str:
        names = names or [f"[127.0.0.1]:{self.port}"]
        return ",".join(names) + " " + pubkey(self.host_key)

    def log(self) -> str:
        return self.proc.stderr()

    def stop(self):
        self.proc.stop()


class Dropbear:
    """dropbear as a target. It does not accept OpenSSH certificates, so castgate signs in with a
    static key configured for this target."""

    def __init__(self, workdir: pathlib.Path, authorized_key_line: str, user_home: pathlib.Path):
        self.dir = workdir / f"dropbear-{free_port()}"
        self.dir.mkdir(parents=True)
        self.host_key = self.dir / "dropbear_ed25519"
        subprocess.run(["dropbearkey", "-t", "ed25519", "-f", str(self.host_key)], check=True,
                       capture_output=True, timeout=30)
        out = subprocess.run(["dropbearkey", "-y", "-f", str(self.host_key)], check=True,
                             capture_output=True, text=True, timeout=30).stdout
        self.host_pub = next(l for l in out.splitlines() if l.startswith("ssh-ed25519"))
        self.host_pub = " ".join(self.host_pub.split()[:2])
        ssh_dir = user_home / ".ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        (ssh_dir / "authorized_keys").write_text(authorized_key_line + "\n")
        # dropbear ignores keys in files that the user does not own.
        owner = user_home.stat()
        for p in (ssh_dir, ssh_dir / "authorized_keys"):
            os.chown(p, owner.st_uid, owner.st_gid)
        self.port = free_port()
        self.proc = Proc("dropbear", ["dropbear", "-F", "-E", "-s", "-p", f"127.0.0.1:{self.port}",
                                      "-r", str(self.host_key)], self.dir)
        wait_until(lambda: port_open(self.port) or not self.proc.alive(), 10, "dropbear to listen")
        assert self.proc.alive(), f"dropbear failed to start: {self.proc.stderr()}"

    def known_hosts_line(self) -> str:
        return f"[127.0.0.1]:{self.port} {self.host_pub}"

    def stop(self):
        self.proc.stop()


class Keys:
    """Keys shared by a test run: the user CA, the recording key, gateway host key, users."""

    def __init__(self, root: pathlib.Path):
        self.dir = root
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ca = keygen(root / "user_ca", comment="castgate-user-ca")
        self.recording = keygen(root / "recording", comment="castgate-recording")
        self.gateway_host = keygen(root / "gateway_host")
        self.alice = keygen(root / "alice", comment="alice@laptop")
        self.bob = keygen(root / "bob", comment="bob@laptop")
        self.eve = keygen(root / "eve", comment="eve@laptop")
        self.ci = keygen(root / "ci", comment="ci-runner")

    @property
    def ca_pub(self) -> str:
        return pubkey(self.ca)

    @property
    def recording_pub(self) -> pathlib.Path:
        return pathlib.Path(str(self.recording) + ".pub")


DEFAULT_POLICY = {
    "rules": [
        {"name": "ops-all", "groups": ["ops"], "targets": ["*"], "logins": [LOGIN, TEST_USER],
         "port_forwarding": True},
        {"name": "dev-web", "identities": ["bob"], "targets": ["web.int"], "logins": [LOGIN]},
        {"name": "ci-deploy", "identities": ["ci-deployer"], "kinds": ["workload"],
         "targets": ["*"], "logins": [LOGIN], "pty": False},
    ]
}


class Gateway:
    """castgate started with files written for the test; stdout (the recording) goes to a file."""

    def __init__(self, workdir: pathlib.Path, keys: Keys, targets: list[dict], known_hosts: list[str],
                 policy: dict | None = None, bound: dict[str, str] | None = None,
                 extra_args: list[str] | None = None, identities: str | None = None,
                 stdout_path: pathlib.Path | None = None, env: dict | None = None,
                 start: bool = True, stdout_pipe: bool = False):
        self.dir = workdir / f"castgate-{free_port()}"
        self.dir.mkdir(parents=True)
        self.keys = keys
        (self.dir / "targets.json").write_text(json.dumps({"targets": targets}))
        (self.dir / "policy.json").write_text(json.dumps(policy or DEFAULT_POLICY))
        (self.dir / "known_hosts").write_text("\n".join(known_hosts) + "\n")
        if identities is None:
            identities = "\n".join([
                f'identity="alice",email="alice@example.com",groups="ops,dba",kind=human {pubkey(keys.alice)}',
                f'identity="bob",email="bob@example.com",groups="dev",kind=human {pubkey(keys.bob)}',
                f'identity="ci-deployer",kind=workload {pubkey(keys.ci)}',
            ])
        (self.dir / "identities").write_text(identities + "\n")
        self.ports_file = self.dir / "ports"
        listens = ["127.0.0.1:0"] + [f"127.0.0.1:0={t}" for t in (bound or {}).values()]
        self.bound_names = list((bound or {}).keys())
        self.args = [CASTGATE, "--host-key", str(keys.gateway_host), "--user-ca-key", str(keys.ca),
                     "--recording-key", str(keys.recording), "--identities",
                     str(self.dir / "identities"), "--policy", str(self.dir / "policy.json"),
                     "--targets", str(self.dir / "targets.json"), "--known-hosts",
                     str(self.dir / "known_hosts"), "--ports-file", str(self.ports_file),
                     "--workers", "2", "--instance", "gw-test"]
        if "--shutdown-grace" not in (extra_args or []):
            self.args += ["--shutdown-grace", "5s"]
        for l in listens:
            self.args += ["--listen", l]
        self.args += extra_args or []
        self.max_line = 8192
        if "--max-line" in self.args:
            self.max_line = int(self.args[self.args.index("--max-line") + 1])
        self.stdout_path = stdout_path or self.dir / "events.jsonl"
        self.env = dict(os.environ, **(env or {}))
        # A small quarantine keeps the sanitizer build's memory use close to the release build's,
        # so the tests that bound castgate's memory mean the same in both.
        self.env.setdefault("ASAN_OPTIONS", "detect_leaks=1:quarantine_size_mb=16")
        self.proc = None
        # Checked when the test ends: every session's record is complete, signed and valid.
        self.expect_complete_record = True
        self.pipe = StdoutPipe(self.stdout_path) if stdout_pipe else None
        if start:
            self.start()

    def start(self):
        self.proc = Proc("castgate", self.args, self.dir, env=self.env, stdout_path=self.stdout_path,
                         stdout=self.pipe.write_fd if self.pipe else None)
        if self.pipe:
            os.close(self.pipe.write_fd)
        wait_until(lambda: self.ports_file.exists() or not self.proc.alive(), 15,
                   "castgate to listen")
        assert self.proc.alive(), f"castgate failed to start:\n{self.proc.stderr()}"
        lines = [l for l in self.ports_file.read_text().split() if not l.startswith("health=")]
        self.health_port = next((int(l.split("=")[1]) for l in self.ports_file.read_text().split()
                                 if l.startswith("health=")), None)
        self.shared_port = int(lines[0].rsplit(":", 1)[1])
        self.bound_ports = {}
        for name, line in zip(self.bound_names, lines[1:]):
            self.bound_ports[name] = int(line.split("=")[0].rsplit(":", 1)[1])

    # --- clients ------------------------------------------------------------------------------
    def ssh_args(self, key: pathlib.Path | None, port: int | None = None,
                 extra: list[str] | None = None) -> list[str]:
        # ssh keeps the first value it sees for an option, so the caller's come first.
        args = ["ssh", "-F", "/dev/null"] + (extra or []) + ["-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
                "-p", str(port or self.shared_port)]
        if key is not None:
            args += ["-o", "IdentitiesOnly=yes", "-i", str(key)]
        return args

    def ssh(self, key, command: str | None, user: str, port: int | None = None,
            input: bytes | None = None, timeout: float = 60, extra: list[str] | None = None,
            stdin=None) -> subprocess.CompletedProcess:
        args = self.ssh_args(key, port, extra) + [f"{user}@127.0.0.1"]
        if command is not None:
            args.append(command)
        return subprocess.run(args, input=input, stdin=stdin, capture_output=True, timeout=timeout)

    # --- recording ----------------------------------------------------------------------------
    def events(self) -> list[dict]:
        data = self.stdout_path.read_bytes()
        # The last line may still be being written.
        data = data[:data.rfind(b"\n") + 1]
        return [json.loads(line) for line in data.splitlines()]

    def session_of(self, action: str = "session.start") -> str:
        return self.wait_event(lambda e: e["event"]["action"] == action,
                               what=action)["castgate"]["session"]

    def raw_lines(self) -> list[bytes]:
        return self.stdout_path.read_bytes().splitlines()

    def wait_event(self, predicate: Callable[[dict], bool], timeout: float = 15, what: str = "event"):
        def find():
            for e in self.events():
                if predicate(e):
                    return e
            return None
        return wait_until(find, timeout, what)

    def actions(self, session: str | None = None) -> list[str]:
        return [e["event"]["action"] for e in self.events()
                if session is None or e["castgate"]["session"] == session]

    def stderr(self) -> str:
        return self.proc.stderr()

    def children(self, comm: str) -> list[int]:
        """castgate's child processes named `comm` ("castgate-worker", "castgate-signer")."""
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = pathlib.Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            name = stat[stat.index("(") + 1:stat.rindex(")")]
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            if ppid == self.proc.proc.pid and name == comm:
                found.append(int(entry))
        return sorted(found)

    def workers(self, count: int = 1, timeout: float = 15) -> list[int]:
        """The worker processes' pids, once at least `count` run."""
        return wait_until(lambda: (lambda w: w if len(w) >= count else None)(
            self.children("castgate-worker")), timeout, f"{count} worker processes")

    def rss_mb(self) -> float:
        """Resident memory of castgate: the parent and every process it started."""
        total = 0.0
        for pid in [self.proc.proc.pid] + self.children("castgate-worker") + \
                self.children("castgate-signer"):
            try:
                for line in open(f"/proc/{pid}/status"):
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) / 1024
            except OSError:
                pass
        return total

    def stop(self, timeout: float = 20) -> int | None:
        if self.proc is None:
            return None
        if self.pipe and not self.pipe.closed:
            self.pipe.resume()
        if self.proc.alive():
            self.proc.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        rc = self.proc.stop()
        if self.pipe:
            self.pipe.finish()
        return rc


class Tmux:
    """A real terminal: tmux runs the client in a pty; the test types and reads the screen."""

    def __init__(self, command: list[str], width: int = 100, height: int = 30):
        self.socket = f"castgate-test-{os.getpid()}-{free_port()}"
        cmd = " ".join(shlex.quote(c) for c in command)
        # Keep the pane after the client exits so that its last words and exit code can be read.
        # -u: UTF-8 whatever the locale (the sign-in prompt's QR code is drawn with half blocks).
        subprocess.run(["tmux", "-u", "-L", self.socket, "-f", "/dev/null", "new-session", "-d", "-s", "t",
                        "-x", str(width), "-y", str(height),
                        f"{cmd}; echo CLIENT-EXIT=$?; sleep 600"], check=True, timeout=10)
        subprocess.run(["tmux", "-L", self.socket, "set-option", "-g", "status", "off"], timeout=10)

    def _tmux(self, *args, check=True) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True,
                              timeout=10, check=check).stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "t", "-S", "-200")

    def visible(self) -> str:
        """Only what the terminal shows now (no scrollback)."""
        return self._tmux("capture-pane", "-p", "-t", "t")

    def type(self, text: str, enter: bool = True):
        self._tmux("send-keys", "-t", "t", "-l", "--", text)
        if enter:
            self._tmux("send-keys", "-t", "t", "Enter")

    def keys(self, *keys: str):
        self._tmux("send-keys", "-t", "t", *keys)

    def wait_for(self, text: str, timeout: float = 15) -> str:
        def shown():
            screen = self.screen()
            return screen if text in screen else None
        return wait_until(shown, timeout, f"{text!r} on the screen")

    def resize(self, width: int, height: int):
        self._tmux("resize-window", "-t", "t", "-x", str(width), "-y", str(height))

    def close(self):
        self._tmux("kill-server", check=False)


def typed_shell(args: list[str], steps: list[tuple[str, str]], prompt: str = "typed$ ",
                size: tuple[int, int] = (100, 30)) -> str:
    """A person at a real terminal: starts `args` (an ssh with -tt) in tmux, sets a prompt, types
    each (line, what to wait for) of `steps`, exits with 0 and returns the last screen."""
    term = Tmux(args, width=size[0], height=size[1])
    try:
        term.type(f"export PS1='{prompt}'")
        term.wait_for(prompt)
        for line, expect in steps:
            term.type(line)
            term.wait_for(expect)
        term.type("exit")
        return term.wait_for("CLIENT-EXIT=0")
    finally:
        term.close()


QR_LIGHT = {"\u2588": (1, 1), "\u2580": (1, 0), "\u2584": (0, 1), " ": (0, 0)}


def decode_terminal_qr(screen: str, workdir: pathlib.Path) -> list[str]:
    """Renders the half-block QR code on a captured screen as a light-on-dark terminal shows it
    (drawn cells light, the rest dark), to an image, and decodes it with zbarimg (zbar-tools).
    Returns what was decoded; empty if nothing was readable."""
    lines = [l.rstrip("\n") for l in screen.split("\n")]
    rows = [l for l in lines if any(c in l for c in "\u2588\u2580\u2584")]
    if not rows:
        return []
    width = max(len(r) for r in rows)
    scale, border = 6, 8  # pixels per module; a dark terminal margin around it
    pix_w = (width + 2 * border) * scale
    pix_h = (len(rows) * 2 + 2 * border) * scale
    image = bytearray(pix_w * pix_h)
    for ry, row in enumerate(rows):
        for x, ch in enumerate(row):
            for half, lit in enumerate(QR_LIGHT.get(ch, (0, 0))):
                if not lit:
                    continue
                y0 = (ry * 2 + half + border) * scale
                x0 = (x + border) * scale
                for yy in range(y0, y0 + scale):
                    image[yy * pix_w + x0: yy * pix_w + x0 + scale] = b"\xff" * scale
    path = workdir / f"qr-{free_port()}.pgm"
    path.write_bytes(f"P5 {pix_w} {pix_h} 255\n".encode() + bytes(image))
    r = subprocess.run(["zbarimg", "-q", "--raw", str(path)], capture_output=True, timeout=30)
    return r.stdout.decode().split()


def run(args: list[str], timeout: float = 60, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, timeout=timeout, **kw)


def player(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([PLAYER, *args], capture_output=True, timeout=timeout)


_validator = None
_templates = None


def index_templates() -> list[dict]:
    """The Elasticsearch and OpenSearch index templates shipped in deploy/siem."""
    global _templates
    if _templates is None:
        root = pathlib.Path(__file__).resolve().parents[2] / "deploy" / "siem"
        _templates = [json.loads((root / f"{e}-index-template.json").read_text())
                      for e in ("elasticsearch", "opensearch")]
    return _templates


def template_problems(doc: dict, mapping: dict, path: str = "") -> list[str]:
    """What in `doc` a search engine would reject under `mapping` (an index template's mappings):
    a mapped field whose value is not of its type. Unmapped fields (dynamic: false) and disabled
    objects are stored, not indexed."""
    problems = []
    props = mapping.get("properties", {})
    for key, value in doc.items():
        name = f"{path}{key}"
        m = props.get(key)
        if m is None:
            continue
        if m.get("enabled") is False:
            continue
        if "properties" in m or m.get("type") == "object":
            # An array of objects is indexed as its objects' fields (castgate.git.refs).
            for v in (value if isinstance(value, list) and value else [value]):
                if not isinstance(v, dict):
                    problems.append(f"{name} is mapped as an object but is {value!r:.80}")
                else:
                    problems += template_problems(v, m, name + ".")
            continue
        for v in (value if isinstance(value, list) else [value]):
            kind = m["type"]
            ok = {"keyword": lambda x: isinstance(x, str), "text": lambda x: isinstance(x, str),
                  "match_only_text": lambda x: isinstance(x, str),
                  "date": lambda x: isinstance(x, str),
                  "long": lambda x: isinstance(x, int) and not isinstance(x, bool),
                  "float": lambda x: isinstance(x, (int, float)) and not isinstance(x, bool),
                  "boolean": lambda x: isinstance(x, bool)}.get(kind)
            if kind == "ip":
                try:
                    ipaddress.ip_address(v)
                    continue
                except (ValueError, TypeError):
                    ok = None
            if ok is None or not ok(v):
                problems.append(f"{name} is {v!r:.80}, not of type {kind}")
    return problems


def schema_validator():
    global _validator
    if _validator is None:
        import jsonschema
        _validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
    return _validator


def check_record(gw: Gateway, full_schema: bool = False, lost: set[str] | None = None):
    """What must hold for castgate's stdout after any test: every line a JSON object in valid
    UTF-8 within the line limit, matching the published schema; every session complete and
    signed (checked by castgate-player verify)."""
    lines = gw.raw_lines()
    validator = schema_validator()
    # Every line's length here; JSON, UTF-8 and the chain of every line in castgate-player
    # (--strict); the schema for the first lines, every event kind, and a sample of the output.
    step = max(1, len(lines) // 2000)
    for i, raw in enumerate(lines):
        assert len(raw) <= gw.max_line, f"line {i + 1} is {len(raw)} bytes"
        if i >= 400 and i % step and not full_schema and b'"asciicast":{' in raw[:64]:
            continue
        text = raw.decode("utf-8")  # strict: invalid UTF-8 raises
        event = json.loads(text)
        assert isinstance(event, dict)
        errors = sorted(validator.iter_errors(event), key=lambda e: e.path)
        assert not errors, f"line {i + 1} does not match the schema: {errors[0].message}\n{text[:500]}"
        # What a JSON Schema cannot say: event.id and event.sequence name the line's place in its chain.
        place = f"{event['castgate']['session']}:{event['castgate']['seq']}"
        assert event["event"]["id"] == place and event["event"]["sequence"] == event["castgate"]["seq"], \
            f"line {i + 1}: event.id {event['event']['id']!r} is not {place!r}"
        # Accepted by the shipped index templates (Elasticsearch rejects a whole document whose
        # field is not of its mapped type, an IP address that is not one, say).
        for template in index_templates():
            bad = template_problems(event, template["template"]["mappings"])
            assert not bad, f"line {i + 1} would be rejected by the index template: {bad}\n{text[:500]}"
    if lines and lost:
        # A worker process died: its sessions (and its own chain) are LOST, every other one OK.
        r = player("verify", "--strict", "--json", "--key", str(gw.keys.recording_pub),
                   str(gw.stdout_path))
        assert r.returncode == 3, f"castgate-player verify:\n{r.stdout.decode()}{r.stderr.decode()}"
        verdicts = [json.loads(l) for l in r.stdout.decode().splitlines()]
        said_lost = {v["session"] for v in verdicts if v["lost"]}
        assert all(v["ok"] or v["lost"] for v in verdicts), r.stdout.decode()
        assert lost <= said_lost, r.stdout.decode()
        assert all(s in lost or s.startswith("worker-") for s in said_lost), r.stdout.decode()
    elif lines:
        r = player("verify", "--strict", "--key", str(gw.keys.recording_pub), str(gw.stdout_path))
        assert r.returncode == 0, f"castgate-player verify failed:\n{r.stdout.decode()}{r.stderr.decode()}"
