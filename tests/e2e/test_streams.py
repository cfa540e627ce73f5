"""Binary output on exec channels without a pty: recorded as stream summaries (bytes, times, the
SHA-256 of exactly the bytes, the printable strings in them) instead of escaped byte for byte;
text, and everything the user sends, in full; the policy's "binary_streams": "full" keeps
today's recording. Real OpenSSH client and sshd through castgate; contents checked at the far
end."""

import hashlib
import json
import os
import subprocess

import pytest

from harness import DEFAULT_POLICY, LOGIN, player, run, wait_until

pytestmark = pytest.mark.timeout(240)


def session_run(gw, keys, command, input=None, stdin=None, timeout=120):
    """Runs `command` on db1.int through castgate; returns the ssh result and the session's
    events once its record has ended."""
    ended = sum(1 for e in gw.events() if e["event"]["action"] == "session.end")
    r = gw.ssh(keys.alice, command, f"{LOGIN}@db1.int", input=input, stdin=stdin, timeout=timeout)
    wait_until(lambda: sum(1 for e in gw.events() if e["event"]["action"] == "session.end") > ended,
               30, "the session's end")
    session = [e for e in gw.events() if e["event"]["action"] == "session.end"][-1]["castgate"]["session"]
    return r, [e for e in gw.events() if e["castgate"]["session"] == session], session


def record_bytes(gw, session):
    return sum(len(l) + 1 for l in gw.raw_lines() if f'"session":"{session}"'.encode() in l)


def of(events, action):
    return [e for e in events if e["event"]["action"] == action]


def output_text(events, action="asciicast.output"):
    return "".join(e["asciicast"]["event"][2] for e in of(events, action))


def test_binary_download_is_a_summary_whose_digest_matches_the_file(gateway, keys, tmp_path):
    blob = os.urandom(6 << 20) + bytes(6 << 20)  # random bytes, then zeros: one binary run
    src = tmp_path / "backup.bin"
    src.write_bytes(blob)
    r, events, session = session_run(gateway, keys, f"cat {src}")
    assert r.returncode == 0, r.stderr
    assert r.stdout == blob  # the user got every byte
    ends = of(events, "stream.end")
    assert len(ends) == 1, [e["castgate"]["stream"] for e in ends]
    s = ends[0]["castgate"]["stream"]
    assert s["direction"] == "output" and s["offset"] == 0 and s["bytes"] == len(blob)
    assert s["sha256"] == hashlib.sha256(blob).hexdigest()
    assert ends[0]["file"]["hash"]["sha256"] == s["sha256"]
    assert output_text(events) == ""  # nothing escaped byte for byte
    # The whole session's record (sign-in, start, command, summary, end) is under 1% of the
    # bytes relayed.
    assert record_bytes(gateway, session) < len(blob) / 100
    start = of(events, "session.start")[0]
    assert start["castgate"]["binary_streams"] == "summary"
    # The replay says what passed.
    cast = tmp_path / "binary.cast"
    p = player("export", "--session", session, "--channel", "0", "-o", str(cast),
               str(gateway.stdout_path))
    assert p.returncode == 0, p.stderr
    assert "binary output: 12.0 MiB, sha256 " + s["sha256"] in cast.read_text()


def test_tar_upload_lands_intact_and_input_is_recorded_in_full(gateway, keys, tmp_path):
    # What the user sends is what the target runs: never summarised (a summary of `ssh host bash`
    # input would let a user hide commands). The upload is recorded byte for byte, as it was.
    src = tmp_path / "src"
    dest = tmp_path / "dest"
    src.mkdir()
    dest.mkdir()
    (src / "random.bin").write_bytes(os.urandom(256 << 10))
    (src / "zeros.img").write_bytes(bytes(256 << 10))
    tar = subprocess.run(["tar", "c", "-C", str(src), "."], capture_output=True, check=True).stdout
    r, events, session = session_run(gateway, keys, f"tar x -C {dest}", input=tar)
    assert r.returncode == 0, r.stderr
    for name in ("random.bin", "zeros.img"):
        assert (dest / name).read_bytes() == (src / name).read_bytes()
    assert not [e for e in events if e["event"]["action"].startswith("stream.")]
    assert len(output_text(events, "asciicast.input")) >= len(tar) * 0.9


def test_text_stays_recorded_in_full_and_runs_switch_both_ways(gateway, keys, tmp_path):
    text = "".join(f"log line {i}: the quick brown fox ümlaut\n" for i in range(20000))
    (tmp_path / "app.log").write_text(text)
    r, events, _ = session_run(gateway, keys, f"cat {tmp_path}/app.log")
    assert r.returncode == 0 and r.stdout.decode() == text
    assert output_text(events) == text
    assert not [e for e in events if e["event"]["action"].startswith("stream.")]

    rand = os.urandom(256 << 10)
    (tmp_path / "rand.bin").write_bytes(rand)
    # Pauses keep the text and the binary data in separate reads, as a program writing them would.
    r, events, _ = session_run(
        gateway, keys,
        f"echo start; sleep 0.5; head -c 1048576 /dev/zero; sleep 0.5; echo middle; sleep 0.5; "
        f"cat {tmp_path}/rand.bin; sleep 0.5; echo end")
    assert r.returncode == 0
    assert r.stdout == b"start\n" + bytes(1 << 20) + b"middle\n" + rand + b"end\n"
    assert output_text(events) == "start\nmiddle\nend\n"
    runs = [e["castgate"]["stream"] for e in of(events, "stream.end")]
    assert [(s["offset"], s["bytes"]) for s in runs] == [(6, 1 << 20), (6 + (1 << 20) + 7, len(rand))]
    assert runs[0]["sha256"] == hashlib.sha256(bytes(1 << 20)).hexdigest()
    assert runs[1]["sha256"] == hashlib.sha256(rand).hexdigest()


def test_a_command_hidden_among_binary_input_to_a_shell_is_recorded(gateway, keys, tmp_path):
    # Bytes a shell reads as (failing) command names, no quotes or newlines, and between them a
    # command cut into one character per line (backslash-newline), as no strings(1) would find it.
    noise = bytes(0x80 + b % 0x80 for b in os.urandom(16384))
    proof = tmp_path / "proof"
    command = f"echo HIDDEN-$((6*7)) > {proof}"
    hidden = "\\\n".join(command).encode()
    r, events, _ = session_run(gateway, keys, "bash", input=noise + b"\n" + hidden + b"\n" + noise + b"\n")
    assert proof.read_text() == "HIDDEN-42\n"  # it ran
    assert hidden.decode() in output_text(events, "asciicast.input")
    assert not [e for e in events if e["event"]["action"].startswith("stream.")]
    # The shell's complaints (stderr) are recorded in full.
    assert "command not found" in output_text(events, "asciicast.stderr")


def test_binary_output_keeps_its_strings(gateway, keys, tmp_path):
    blob = bytearray(os.urandom(1 << 20))
    blob[500000:500000 + 40] = b"\nBEGIN PRIVATE KEY marker-7f3a9c2e1d\n\x00\x00"
    (tmp_path / "mixed.bin").write_bytes(bytes(blob))
    r, events, _ = session_run(gateway, keys, f"cat {tmp_path}/mixed.bin")
    assert r.returncode == 0 and r.stdout == bytes(blob)
    strings = "".join(e["castgate"]["stream"].get("strings", "") for e in of(events, "stream.progress"))
    assert "BEGIN PRIVATE KEY marker-7f3a9c2e1d\n" in strings
    assert len(strings) < len(blob) / 100


def test_policy_full_records_binary_byte_for_byte(gateway_factory, sshd, keys, tmp_path):
    policy = json.loads(json.dumps(DEFAULT_POLICY))
    policy["rules"][0]["binary_streams"] = "full"
    gw = gateway_factory([{"name": "db1.int", "host": "127.0.0.1", "port": sshd.port}],
                         [sshd.known_hosts_line()], policy=policy)
    rand = os.urandom(64 << 10)
    (tmp_path / "rand.bin").write_bytes(rand)
    r, events, _ = session_run(gw, keys, f"cat {tmp_path}/rand.bin")
    assert r.returncode == 0 and r.stdout == rand
    assert not [e for e in events if e["event"]["action"].startswith("stream.")]
    shown = output_text(events)
    assert len(shown) >= len(rand) * 0.9  # every byte, escaped or replaced
    assert of(events, "session.start")[0]["castgate"]["binary_streams"] == "full"


def test_a_pty_session_is_recorded_in_full_whatever_it_prints(gateway, keys, tmp_path):
    rand = bytes(0x80 + b % 0x80 for b in os.urandom(8192))
    (tmp_path / "rand.bin").write_bytes(rand)
    r, events, _ = session_run(gateway, keys, f"cat {tmp_path}/rand.bin", stdin=subprocess.DEVNULL)
    assert r.returncode == 0
    assert of(events, "stream.end")  # without a pty: summarised
    ended = sum(1 for e in gateway.events() if e["event"]["action"] == "session.end")
    r = run(gateway.ssh_args(keys.alice, None, ["-tt"]) + [f"{LOGIN}@db1.int@127.0.0.1",
                                                          f"cat {tmp_path}/rand.bin"],
            stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    wait_until(lambda: sum(1 for e in gateway.events() if e["event"]["action"] == "session.end") > ended,
               30, "the pty session's end")
    session = [e for e in gateway.events() if e["event"]["action"] == "session.end"][-1]["castgate"]["session"]
    events = [e for e in gateway.events() if e["castgate"]["session"] == session]
    assert not [e for e in events if e["event"]["action"].startswith("stream.")]
    assert len(output_text(events)) >= len(rand) // 2


def test_a_few_odd_bytes_stay_recorded_in_full(gateway, keys):
    # A character cut across reads, invalid sequences and control characters printed alone are
    # text's business: they start no run.
    for command in ("printf 'a\\342'; sleep 0.3; printf '\\202'; sleep 0.3; printf '\\254b'",
                    "printf '\\300\\257 \\355\\240\\200 \\364\\220\\200\\200 \\342\\202x \\377'",
                    "printf '\\001\\002\\000\\033[31mred\\n'"):
        r, events, _ = session_run(gateway, keys, command)
        assert r.returncode == 0
        assert output_text(events) == r.stdout.decode("utf-8", "replace")
        assert not [e for e in events if e["event"]["action"].startswith("stream.")]
