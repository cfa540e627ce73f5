"""Privilege separation: the user-CA key and the recording key live in the signer process only.
castgate forks it at start-up; the signer reads the key files itself, signs only what it can check,
and keeps its own signed chain of every certificate it issued. Checked on the real processes:
their memory, their names, their records, and what happens when the signer is gone."""

import os
import pathlib
import signal
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization

from harness import LOGIN, wait_until

pytestmark = pytest.mark.timeout(180)

# The sanitizer's shadow memory is mapped as one region of terabytes and holds no program data.
LARGEST_REGION = 64 << 30


def seed_of(private_key_file: pathlib.Path) -> bytes:
    key = serialization.load_ssh_private_key(private_key_file.read_bytes(), None)
    return key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())


def memory_contains(pid: int, needles: list[bytes]) -> set[bytes]:
    """Which of `needles` appear anywhere in the readable memory of `pid`."""
    found = set()
    overlap = max(len(n) for n in needles) - 1
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            fields = line.split()
            start, end = (int(x, 16) for x in fields[0].split("-"))
            if "r" not in fields[1] or end - start > LARGEST_REGION or \
                    (len(fields) > 5 and fields[5] in ("[vvar]", "[vsyscall]")):
                continue
            tail = b""
            at = start
            while at < end:
                size = min(end - at, 16 << 20)
                try:
                    mem.seek(at)
                    chunk = mem.read(size)
                except OSError:
                    break
                data = tail + chunk
                found.update(n for n in needles if n in data)
                tail = data[-overlap:]
                at += size
    return found


def signer_pid(gw) -> int:
    return wait_until(lambda: gw.children("castgate-signer")[:1], 10, "the signer process")[0]


# Against the release build (make test runs "bulk" tests there): reading a sanitizer-built worker's
# whole memory through /proc/PID/mem faults in its shadow memory, tens of GB (the OOM killer ended
# the worker in CI).
@pytest.mark.bulk
def test_no_private_key_in_the_process_that_parses_the_network(gateway, keys):
    """With a session open, neither castgate's parent nor its worker processes hold the user-CA key
    or the recording key; the signer does (which shows the search works)."""
    r = gateway.ssh(keys.alice, "echo signed-in", f"{LOGIN}@db1.int")
    assert b"signed-in" in r.stdout, r.stderr
    term = subprocess.Popen(gateway.ssh_args(keys.alice) + [f"{LOGIN}@db1.int@127.0.0.1",
                            "echo open; sleep 60"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        gateway.wait_event(lambda e: e["event"]["action"] == "asciicast.output" and
                           "open" in e["asciicast"]["event"][2], what="the open session")
        secrets = [seed_of(keys.ca), seed_of(keys.recording)]
        # The parent, and the worker processes (one of them serves this session).
        for pid in [gateway.proc.proc.pid] + gateway.workers(2):
            assert memory_contains(pid, secrets) == set(), f"process {pid}"
        assert memory_contains(signer_pid(gateway), secrets) == set(secrets)
    finally:
        term.kill()
        term.wait(timeout=10)


def test_every_certificate_is_in_the_signers_own_chain(gateway, keys):
    """Each credential.issued a session records has its signer.certificate, with the same serial,
    principal and key id, in the signer's chain; that chain ends signed when castgate stops."""
    for _ in range(3):
        r = gateway.ssh(keys.alice, "true", f"{LOGIN}@db1.int")
        assert r.returncode == 0, r.stderr
    issued = [e for e in gateway.events() if e["event"]["action"] == "credential.issued"]
    signed = {e["castgate"]["certificate"]["serial"]: e for e in gateway.events()
              if e["event"]["action"] == "signer.certificate"}
    assert len(issued) == 3
    for e in issued:
        cert = e["castgate"]["certificate"]
        audit = signed[cert["serial"]]
        assert audit["castgate"]["session"].startswith("signer-")
        assert audit["castgate"]["certificate"]["principals"] == [LOGIN]
        assert audit["castgate"]["certificate"]["key_id"] == cert["key_id"]
    assert sorted(e["castgate"]["signed"]["certificates"] for e in signed.values()) == [1, 2, 3]
    assert gateway.stop() == 0
    last = gateway.events()[-1]
    assert last["event"]["action"] == "signer.stop"
    assert last["castgate"]["signed"]["certificates"] == 3
    assert last["castgate"]["final"] and last["castgate"]["sig"]


def test_a_signer_that_is_gone_fails_closed(gateway, keys):
    """The signer killed: no new session starts (no certificate), the user is told, castgate says
    why in its log and keeps running; an open session's last event cannot be signed and verify
    says so."""
    r = gateway.ssh(keys.alice, "echo before", f"{LOGIN}@db1.int")
    assert b"before" in r.stdout
    os.kill(signer_pid(gateway), signal.SIGKILL)
    r = gateway.ssh(keys.alice, "echo after", f"{LOGIN}@db1.int")
    assert r.returncode != 0 and b"after" not in r.stdout
    assert "signer process is gone" in gateway.stderr()
    assert gateway.proc.alive()
    gateway.expect_complete_record = False  # the signer's chain and later sessions end unsigned
