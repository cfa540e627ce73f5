"""castgate's container image, run as it is deployed: the image built by scripts/build-image.sh
(castgate:test, with buildah), started with buildah run on a read-only root filesystem as the
image's own user, recording a session from a real OpenSSH client to a real sshd.

`make image-test` builds the image and runs these tests (as root: buildah with vfs storage and
chroot isolation). They are not part of `make test`: tests/e2e's run does not collect them.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import uuid

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "e2e"))

from harness import LOGIN, Keys, Proc, Sshd, pubkey, wait_until  # noqa: E402

IMAGE = os.environ.get("CASTGATE_IMAGE_TAG", "castgate:test")
STORE = pathlib.Path(os.environ.get("CASTGATE_IMAGE_DIR", "/var/tmp/castgate-image"))
BUILDAH = ["buildah", "--root", str(STORE / "storage"), "--runroot", str(STORE / "run"),
           "--storage-driver", os.environ.get("CASTGATE_IMAGE_STORAGE_DRIVER", "vfs")]
UID = 10001  # the image's USER
EXTRA_CAS = sorted(pathlib.Path("/usr/local/share/ca-certificates").glob("**/*.crt"))


def buildah(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run(BUILDAH + list(args), capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"buildah {' '.join(args)} exited {r.returncode}:\n{r.stderr[-3000:]}")
    return r


def mounted(path: pathlib.Path) -> bool:
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == str(path) for line in f)


class Container:
    """A working container of the image, its root filesystem mounted read-only.

    buildah run cannot make a container's root read-only by itself; with chroot isolation it
    runs the command in the directory buildah mount gives, so that directory is bind-mounted onto
    itself read-only first. buildah run binds /etc/hosts, /etc/resolv.conf, /etc/hostname and
    /run/.containerenv, and the volumes given, onto files and directories that must then exist:
    they are made in this container's own layer (never in the image) before the root turns
    read-only. /run is a tmpfs, as `podman run --read-only` makes it: buildah (1.28) removes
    /run/.containerenv after the command and fails when it cannot. /tmp stays read-only."""

    def __init__(self, mountpoints: list[str] = ()):
        self.name = f"castgate-image-test-{uuid.uuid4().hex[:12]}"
        buildah("from", "--pull=never", "--name", self.name, IMAGE)
        self.root = pathlib.Path(buildah("mount", self.name).stdout.strip())
        for f in ("etc/hosts", "etc/resolv.conf", "etc/hostname", "run/.containerenv"):
            (self.root / f).touch(exist_ok=True)
        for d in mountpoints:
            (self.root / d.lstrip("/")).mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "--bind", str(self.root), str(self.root)], check=True, timeout=30)
        subprocess.run(["mount", "-o", "remount,ro,bind", str(self.root)], check=True, timeout=30)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=755,size=1m", "tmpfs",
                        str(self.root / "run")], check=True, timeout=30)

    def run_args(self, command: list[str], volumes: list[str] = (), user: str | None = None) -> list[str]:
        args = BUILDAH + ["run", "--isolation", "chroot", "--network", "host"]
        for v in volumes:
            args += ["-v", v]
        if user is not None:
            args += ["--user", user]
        return args + [self.name, "--"] + command

    def run(self, command: list[str], volumes: list[str] = (), user: str | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(self.run_args(command, volumes, user), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def remove(self):
        for path in (self.root / "run", self.root):
            if mounted(path):
                subprocess.run(["umount", str(path)], timeout=30)
        buildah("umount", self.name, check=False)
        buildah("rm", self.name, check=False)


@pytest.fixture(scope="module", autouse=True)
def image_exists():
    if os.geteuid() != 0:
        pytest.fail("the image tests run as root (buildah with vfs storage and chroot isolation)")
    if not shutil.which("buildah"):
        pytest.fail("buildah is not installed: run scripts/build-image.sh (make image-test)")
    # The lock scripts/build-image.sh takes: no build, and no other run of these tests, meanwhile.
    with open(STORE / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if buildah("inspect", "--type", "image", IMAGE, check=False).returncode != 0:
            pytest.fail(f"no image {IMAGE} in {STORE}: run scripts/build-image.sh (make image-test)")
        # Containers a killed run left behind.
        for name in buildah("containers", "--noheading", "--format", "{{.ContainerName}}").stdout.split():
            if name.startswith("castgate-image-test-"):
                root = pathlib.Path(buildah("mount", name).stdout.strip())
                stale = Container.__new__(Container)
                stale.name, stale.root = name, root
                stale.remove()
        yield


@pytest.fixture
def container():
    made = []

    def make(mountpoints=()):
        c = Container(list(mountpoints))
        made.append(c)
        return c
    yield make
    for c in made:
        c.remove()


def castgate_processes(marker: str) -> dict[int, tuple[str, str, str]]:
    """castgate's processes (the parent, its workers and signer, which keep its command line):
    pid -> (name, Uid line, Gid line) from /proc/PID/status."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = pathlib.Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            status = pathlib.Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        if not cmdline or not cmdline[0].endswith(b"castgate") or marker.encode() not in cmdline:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        found[int(entry)] = (fields["Name"].strip(), fields["Uid"].split(), fields["Gid"].split())
    return found


def test_a_session_recorded_by_castgate_in_its_image(container, tmp_path):
    keys = Keys(tmp_path / "keys")
    sshd = Sshd(tmp_path, keys.ca_pub)
    # What castgate reads (ro) and where it writes its ports file (rw), owned by the image's user;
    # its recording leaves the container on stdout, as in a deployment.
    config, state = tmp_path / "config", tmp_path / "state"
    config.mkdir()
    state.mkdir()
    for name, key in (("host_ed25519", keys.gateway_host), ("user_ca", keys.ca),
                      ("recording", keys.recording)):
        shutil.copy(key, config / name)
        shutil.copy(str(key) + ".pub", config / f"{name}.pub")
    (config / "targets.json").write_text(json.dumps(
        {"targets": [{"name": "db1.int", "host": "127.0.0.1", "port": sshd.port}]}))
    (config / "policy.json").write_text(json.dumps({"rules": [
        {"name": "ops-all", "groups": ["ops"], "targets": ["*"], "logins": [LOGIN]}]}))
    (config / "known_hosts").write_text(sshd.known_hosts_line() + "\n")
    (config / "identities").write_text(
        f'identity="alice",email="alice@example.com",groups="ops",kind=human {pubkey(keys.alice)}\n')
    for d in (config, state):
        for p in [d, *d.iterdir()]:
            os.chown(p, UID, UID)
        d.chmod(0o700)
    for p in config.iterdir():
        p.chmod(0o600)

    c = container(["/etc/castgate", "/var/lib/castgate"])
    volumes = [f"{config}:/etc/castgate:ro", f"{state}:/var/lib/castgate"]
    instance = f"image-test-{uuid.uuid4().hex[:8]}"
    events_path = state / "events.jsonl"
    castgate = Proc("castgate", c.run_args([
        "/usr/local/bin/castgate", "--host-key", "/etc/castgate/host_ed25519",
        "--user-ca-key", "/etc/castgate/user_ca", "--recording-key", "/etc/castgate/recording",
        "--identities", "/etc/castgate/identities", "--policy", "/etc/castgate/policy.json",
        "--targets", "/etc/castgate/targets.json", "--known-hosts", "/etc/castgate/known_hosts",
        "--listen", "127.0.0.1:0", "--ports-file", "/var/lib/castgate/ports",
        "--workers", "2", "--shutdown-grace", "5s", "--instance", instance], volumes),
        tmp_path, stdout_path=events_path)
    try:
        ports = state / "ports"
        wait_until(lambda: ports.exists() or not castgate.alive(), 60, "castgate to listen")
        assert castgate.alive(), f"castgate did not start in the image:\n{castgate.stderr()}"
        line = next(l for l in ports.read_text().split() if not l.startswith("health="))
        port = int(line.rsplit(":", 1)[1])

        # castgate and every process it started run as the image's user.
        procs = wait_until(lambda: (lambda p: p if any(n == "castgate-worker" for n, _, _ in p.values())
                                    else None)(castgate_processes(instance)), 15, "castgate's workers")
        assert any(name == "castgate" for name, _, _ in procs.values()), procs
        for pid, (name, uids, gids) in procs.items():
            assert uids == [str(UID)] * 4 and gids == [str(UID)] * 4, (pid, name, uids, gids)

        # A real OpenSSH client through castgate (in the container) to a real sshd.
        r = subprocess.run(
            ["ssh", "-F", "/dev/null", "-o", "StrictHostKeyChecking=no",
             "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes",
             "-o", "ConnectTimeout=10", "-o", "IdentitiesOnly=yes", "-i", str(keys.alice),
             "-p", str(port), f"{LOGIN}@db1.int@127.0.0.1", "echo from-the-image-$((6*7))"],
            capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, r.stderr.decode(errors="replace") + castgate.stderr()
        assert b"from-the-image-42" in r.stdout

        def events():
            data = events_path.read_bytes()
            return [json.loads(l) for l in data[:data.rfind(b"\n") + 1].splitlines()]
        end = wait_until(lambda: next((e for e in events() if e["event"]["action"] == "session.end"),
                                      None), 15, "session.end")
        session = end["castgate"]["session"]
        mine = [e for e in events() if e["castgate"]["session"] == session]
        actions = [e["event"]["action"] for e in mine]
        assert "session.start" in actions and actions[-1] == "session.end", actions
        assert actions.index("session.start") < actions.index("asciicast.output"), actions
        output = "".join(e["asciicast"]["event"][2] for e in mine
                         if e["event"]["action"] == "asciicast.output")
        assert "from-the-image-42" in output
    finally:
        # SIGTERM to castgate itself (buildah run is its grandparent), then to buildah run.
        for pid, (name, _, _) in castgate_processes(instance).items():
            if name == "castgate":
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        try:
            castgate.wait(30)
        except subprocess.TimeoutExpired:
            pass
        castgate.stop()
        for pid in castgate_processes(instance):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        sshd.stop()
    assert castgate.proc.returncode == 0, f"castgate exited {castgate.proc.returncode}:\n" \
                                          f"{castgate.stderr()[-3000:]}"

    # The record is complete and signed: the image's own castgate-player verifies it.
    r = c.run(["castgate-player", "verify", "--strict", "--key", "/etc/castgate/recording.pub",
               "/var/lib/castgate/events.jsonl"], volumes)
    assert r.returncode == 0, f"castgate-player verify:\n{r.stdout}{r.stderr}"
    assert session in r.stdout, r.stdout


def test_the_root_filesystem_is_read_only_and_the_user_unprivileged(container):
    c = container()
    r = c.run(["sh", "-c", "id -u; id -g; touch /probe"])
    assert r.stdout.split() == [str(UID), str(UID)], r.stdout + r.stderr
    assert r.returncode != 0 and "Read-only file system" in r.stderr, r.stderr
    r = c.run(["sh", "-c", "touch /tmp/probe"])
    assert r.returncode != 0 and "Read-only file system" in r.stderr, r.stderr
    # Not even root could change the image's files.
    r = c.run(["sh", "-c", "touch /usr/local/bin/probe"], user="0:0")
    assert r.returncode != 0 and "Read-only file system" in r.stderr, r.stderr


def test_the_image_config():
    info = json.loads(buildah("inspect", "--type", "image", IMAGE).stdout)
    config = info["OCIv1"]["config"]
    assert config["User"] == f"{UID}:{UID}"
    assert config["Entrypoint"] == ["/usr/local/bin/castgate"]
    assert "LD_LIBRARY_PATH=/usr/local/lib/castgate" in config["Env"]


@pytest.mark.skipif(not EXTRA_CAS, reason="this machine has no extra CA certificates")
def test_no_build_secret_in_the_image(container):
    """The extra CA certificates handed to the build as a secret are in no file of the image."""
    needles = []
    for ca in EXTRA_CAS:
        for body in re.findall(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----",
                               ca.read_text(), re.S):
            body = "".join(body.split())
            needles += [base64.b64decode(body), body[64:128].encode()]
    assert needles, f"no certificate in {EXTRA_CAS}"
    c = container()
    found = []
    for dirpath, dirnames, filenames in os.walk(c.root):
        for name in filenames:
            path = pathlib.Path(dirpath) / name
            if path.is_symlink() or not path.is_file():
                continue
            data = path.read_bytes()
            if any(n in data for n in needles):
                found.append(str(path.relative_to(c.root)))
    assert not found, f"the image holds an extra CA certificate in {found}"
    assert not list((c.root / "usr/local/share/ca-certificates").glob("*"))
    assert not (c.root / "run/secrets/extra-ca").exists()
