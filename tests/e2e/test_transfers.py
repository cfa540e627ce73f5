"""git and rsync through castgate, with real peers: git 2.39 and rsync 3 clients over OpenSSH's
ssh, castgate, and OpenSSH's sshd running git-upload-pack, git-receive-pack and rsync --server on
the target. What arrives is checked at the far end, and the record must hold file.transfer events
naming the protocol, direction, repository or path, refs and bytes. The gateway fixture checks the
whole record at the end (schema, index templates, castgate-player verify)."""
from __future__ import annotations

import filecmp
import os
import pathlib
import shlex
import subprocess

import pytest

from harness import LOGIN, Sshd, run, wait_until

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def gw(gateway_factory, tmp_path, keys):
    # GIT_PROTOCOL passed through (target "env" and sshd AcceptEnv): git fetches over protocol v2.
    sshd = Sshd(tmp_path, keys.ca_pub, extra="AcceptEnv GIT_PROTOCOL")
    yield gateway_factory(
        [{"name": "db1.int", "host": "127.0.0.1", "port": sshd.port, "env": ["GIT_PROTOCOL"]}],
        [sshd.known_hosts_line()])
    sshd.stop()


def ssh_command(gw, keys) -> list[str]:
    return gw.ssh_args(keys.alice) + ["-l", f"{LOGIN}@db1.int"]


def git(*args, cwd=None, env=None) -> subprocess.CompletedProcess:
    r = run(["git", *args], cwd=cwd, env=env, timeout=120)
    assert r.returncode == 0, f"git {' '.join(args)}:\n{r.stderr.decode()}"
    return r


def transfers(gw, protocol: str) -> list[dict]:
    return [e for e in gw.events() if e["event"]["action"].startswith("file.")
            and e["castgate"]["file"]["protocol"] == protocol]


def sessions_ended(gw, n: int):
    wait_until(lambda: len([e for e in gw.events() if e["event"]["action"] == "session.end"]) >= n,
               30, f"{n} sessions to end")


def make_source_repo(path: pathlib.Path) -> pathlib.Path:
    git("init", "-q", "-b", "main", str(path))
    (path / "README").write_text("castgate transfer test\n")
    (path / "src").mkdir()
    (path / "src" / "main.c").write_text("int main(void) { return 0; }\n")
    git("-C", str(path), "add", ".")
    git("-C", str(path), "-c", "user.name=T", "-c", "user.email=t@example.invalid", "commit", "-qm", "one")
    return path


def repositories(gw, keys, tmp_path):
    """A source repository, a bare clone of it (the target's side), and git's environment for
    reaching the target through castgate."""
    source = make_source_repo(tmp_path / "source")
    bare = tmp_path / "target.git"
    git("clone", "-q", "--bare", str(source), str(bare))
    env = {"GIT_SSH_COMMAND": shlex.join(ssh_command(gw, keys)), "GIT_SSH_VARIANT": "ssh",
           "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    return source, bare, env


def test_git_clone_and_push_through_castgate(gw, keys, tmp_path):
    source, bare, env = repositories(gw, keys, tmp_path)
    url = f"127.0.0.1:{bare}"

    # Clone over protocol v2 (the default) and over v0: the working trees equal the source's.
    for version in ("2", "0"):
        clone = tmp_path / f"clone-v{version}"
        git("-c", f"protocol.version={version}", "clone", "-q", url, str(clone), env=env)
        assert (clone / "README").read_text() == (source / "README").read_text()
        assert (clone / "src" / "main.c").read_text() == (source / "src" / "main.c").read_text()
        head = git("-C", str(clone), "rev-parse", "HEAD").stdout.strip()
        assert head == git("-C", str(source), "rev-parse", "HEAD").stdout.strip()

    # Push a new commit and a new branch: both arrive in the bare repository on the target side.
    clone = tmp_path / "clone-v2"
    (clone / "pushed.txt").write_text("pushed through castgate\n")
    git("-C", str(clone), "add", "pushed.txt")
    git("-C", str(clone), "-c", "user.name=T", "-c", "user.email=t@example.invalid", "commit", "-qm", "two")
    pushed = git("-C", str(clone), "rev-parse", "HEAD").stdout.decode().strip()
    old = git("-C", str(bare), "rev-parse", "main").stdout.decode().strip()
    git("-C", str(clone), "push", "-q", "origin", "main", "main:refs/heads/feature", env=env)
    assert git("-C", str(bare), "rev-parse", "main").stdout.decode().strip() == pushed
    assert git("-C", str(bare), "rev-parse", "feature").stdout.decode().strip() == pushed
    shown = git("-C", str(bare), "show", f"{pushed}:pushed.txt").stdout.decode()
    assert shown == "pushed through castgate\n"

    sessions_ended(gw, 3)
    events = transfers(gw, "git")
    assert [e["event"]["action"] for e in events] == ["file.transfer"] * 3, events
    clones, push = events[:2], events[2]
    for e, version in zip(clones, (2, 0)):
        assert e["event"]["outcome"] == "success", e
        assert e["file"]["path"] == str(bare)
        assert e["castgate"]["file"]["direction"] == "download"
        g = e["castgate"]["git"]
        assert g["service"] == "upload-pack"
        assert g["version"] == version
        assert g["advertised_refs"] >= 2  # HEAD and refs/heads/main
        assert g["wants"] >= 1 and old in g["wanted"]
        assert g["pack_objects"] == 5  # one commit, two trees, two blobs
        assert 0 < g["pack_bytes"] < e["castgate"]["file"]["bytes_read"]
        assert e["castgate"]["file"]["bytes_written"] > 0
    assert push["event"]["outcome"] == "success", push
    assert push["event"]["type"] == ["creation"]
    assert push["file"]["path"] == str(bare)
    assert push["castgate"]["file"]["direction"] == "upload"
    g = push["castgate"]["git"]
    assert g["service"] == "receive-pack"
    assert g["ref_updates"] == 2
    assert g["refs"] == [
        {"name": "refs/heads/main", "old": old, "new": pushed, "status": "ok"},
        {"name": "refs/heads/feature", "old": "0" * 40, "new": pushed, "status": "ok"}]
    assert g["pack_objects"] == 3  # the new commit, its tree, the new blob
    assert push["castgate"]["file"]["bytes_written"] > g["pack_bytes"] > 0
    # The channels are still recorded as exec channels (the follower only adds metadata).
    headers = [e for e in gw.events() if e["event"]["action"] == "asciicast.header"]
    assert all("file_transfer" not in h["castgate"] for h in headers)


def test_rsync_both_ways_through_castgate(gw, keys, tmp_path):
    source = tmp_path / "rsync-source"
    (source / "sub").mkdir(parents=True)
    (source / "a.txt").write_text("alpha\n")
    (source / "sub" / "b.bin").write_bytes(bytes(range(256)) * 64)
    up = tmp_path / "rsync-up"
    down = tmp_path / "rsync-down"
    rsh = shlex.join(ssh_command(gw, keys))
    r = run(["rsync", "-a", "-e", rsh, f"{source}/", f"127.0.0.1:{up}/"], timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    r = run(["rsync", "-az", "-e", rsh, f"127.0.0.1:{up}/", f"{down}/"], timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    for tree in (up, down):
        cmp = filecmp.dircmp(source, tree)
        assert not cmp.left_only and not cmp.right_only and not cmp.diff_files
        assert (tree / "sub" / "b.bin").read_bytes() == (source / "sub" / "b.bin").read_bytes()

    sessions_ended(gw, 2)
    events = transfers(gw, "rsync")
    assert [e["event"]["action"] for e in events] == ["file.transfer"] * 2, events
    sent, fetched = events
    assert sent["castgate"]["file"]["direction"] == "upload"
    assert sent["file"]["path"] == f"{up}/"
    assert sent["event"]["type"] == ["creation"]
    assert sent["castgate"]["file"]["bytes_written"] > 16384  # b.bin went up
    assert fetched["castgate"]["file"]["direction"] == "download"
    assert fetched["file"]["path"] == f"{up}/"
    assert fetched["castgate"]["file"]["bytes_read"] > 0
    for e in events:
        assert e["event"]["outcome"] == "success", e
        assert e["castgate"]["rsync"]["version"] >= 30
        assert e["castgate"]["rsync"]["paths"] == [f"{up}/"]


def test_a_large_push_and_rsync_upload_are_recorded_as_summaries(gw, keys, tmp_path):
    # Their packs and file data are binary input the target only stores: summarised while the
    # data is the protocol, so the record stays small.
    source, bare, env = repositories(gw, keys, tmp_path)
    blob = os.urandom(8 << 20)
    (source / "large.bin").write_bytes(blob)
    git("-C", str(source), "add", "large.bin")
    git("-C", str(source), "-c", "user.name=T", "-c", "user.email=t@example.invalid", "commit", "-qm", "big")
    git("-C", str(source), "push", "-q", f"127.0.0.1:{bare}", "main", env=env)
    assert git("-C", str(bare), "show", "main:large.bin").stdout == blob
    up = tmp_path / "rsync-up"
    r = run(["rsync", "-a", "-e", shlex.join(ssh_command(gw, keys)), f"{source}/large.bin",
             f"127.0.0.1:{up}/"], timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    assert (up / "large.bin").read_bytes() == blob
    sessions_ended(gw, 2)
    events = gw.events()
    for e in transfers(gw, "git") + transfers(gw, "rsync"):
        assert e["event"]["action"] == "file.transfer" and e["event"]["outcome"] == "success", e
        session = e["castgate"]["session"]
        runs = [x["castgate"]["stream"] for x in events if x["castgate"]["session"] == session
                and x["event"]["action"] == "stream.end"]
        assert sum(s["bytes"] for s in runs if s["direction"] == "input") > len(blob) * 0.99, runs
        record = sum(len(l) + 1 for l in gw.raw_lines() if f'"session":"{session}"'.encode() in l)
        assert record < len(blob) / 100


def test_a_command_that_only_looks_like_git_is_no_transfer(gw, keys):
    # Shell syntax after the path: not followed, only recorded.
    r = gw.ssh(keys.alice, "git-upload-pack '/nonexistent.git'; echo done", f"{LOGIN}@db1.int")
    assert b"done" in r.stdout
    sessions_ended(gw, 1)
    assert transfers(gw, "git") == []
