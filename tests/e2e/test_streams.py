"""Binary output on exec channels without a pty: recorded as stream summaries (bytes, times, the
SHA-256 of exactly the bytes, the printable strings in them) instead of escaped byte for byte,
and binary input too where the command only writes it to files (`tar x`, `cat > FILE`); text,
and input to anything else, in full; the policy's "binary_streams": "full" keeps
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


def input_runs_cover(events, data: bytes) -> list[dict]:
    """The input runs of a session; each one's digest is that of exactly its bytes of `data`."""
    runs = [e["castgate"]["stream"] for e in of(events, "stream.end")
            if e["castgate"]["stream"]["direction"] == "input"]
    for s in runs:
        part = data[s["offset"]:s["offset"] + s["bytes"]]
        assert len(part) == s["bytes"] and hashlib.sha256(part).hexdigest() == s["sha256"], s
    return runs


def test_tar_upload_lands_intact_as_a_summary_of_its_input(gateway, keys, tmp_path):
    # `tar x` only writes what it reads to files: its binary input is summarised like an SFTP
    # upload, with the digest of exactly the bytes sent.
    src = tmp_path / "src"
    dest = tmp_path / "dest"
    src.mkdir()
    dest.mkdir()
    (src / "random.bin").write_bytes(os.urandom(4 << 20))
    (src / "zeros.img").write_bytes(bytes(4 << 20))
    tar = subprocess.run(["tar", "c", "-C", str(src), "."], capture_output=True, check=True).stdout
    r, events, session = session_run(gateway, keys, f"tar xf - -C {dest}", input=tar)
    assert r.returncode == 0, r.stderr
    for name in ("random.bin", "zeros.img"):
        assert (dest / name).read_bytes() == (src / name).read_bytes()
    runs = input_runs_cover(events, tar)
    assert sum(s["bytes"] for s in runs) > len(tar) * 0.99
    assert len(output_text(events, "asciicast.input")) < len(tar) / 100
    assert record_bytes(gateway, session) < len(tar) / 100
    # Its members are listed as they pass, as SFTP's files are.
    members = {e["file"]["path"]: e for e in of(events, "file.transfer")}
    assert members[f"{dest}/random.bin"]["file"]["size"] == 4 << 20
    assert members[f"{dest}/zeros.img"]["castgate"]["file"]["protocol"] == "tar"


def test_a_dotfile_in_an_uploaded_archive_raises_its_alert_and_junk_is_recorded(gateway, keys, tmp_path):
    src = tmp_path / "home"
    dest = tmp_path / "dest"
    src.mkdir()
    dest.mkdir()
    (src / ".bashrc").write_text("alias ls='rm -rf'\n")
    (src / "blob.bin").write_bytes(os.urandom(1 << 20))
    tar = subprocess.run(["tar", "c", "-C", str(src), ".bashrc", "blob.bin"], capture_output=True,
                         check=True).stdout
    r, events, _ = session_run(gateway, keys, f"tar x -C {dest}", input=tar)
    assert r.returncode == 0, r.stderr
    assert (dest / ".bashrc").read_text() == "alias ls='rm -rf'\n"
    alerts = [e for e in of(events, "alert") if e["rule"]["name"] == "shell-startup-file"]
    assert alerts and alerts[0]["castgate"]["alert"]["matched"] == f"{dest}/.bashrc"
    # Not tar from some point on (a shell script after the first member): a file.error, and
    # the rest of the input recorded byte for byte.
    script = b"echo not-tar-any-more\n" + os.urandom(64 << 10)
    r, events, _ = session_run(gateway, keys, f"tar x -C {dest}", input=tar[:1024] + script)
    errors = of(events, "file.error")
    assert len(errors) == 1 and errors[0]["castgate"]["file"]["status"].startswith("not tar: ")
    assert "echo not-tar-any-more" in output_text(events, "asciicast.input")


def test_cat_upload_is_a_summary_and_a_shell_upload_is_not(gateway, keys, tmp_path):
    blob = os.urandom(8 << 20)
    dest = tmp_path / "uploaded.bin"
    r, events, session = session_run(gateway, keys, f"cat > {dest}", input=blob)
    assert r.returncode == 0, r.stderr
    assert dest.read_bytes() == blob
    runs = input_runs_cover(events, blob)
    assert len(runs) == 1 and runs[0]["bytes"] == len(blob) and runs[0]["offset"] == 0
    assert record_bytes(gateway, session) < len(blob) / 100
    # The same bytes to a command that could run them (a second command after the upload):
    # recorded in full.
    r, events, session = session_run(gateway, keys, f"cat > {dest}; true", input=blob[:1 << 20])
    assert r.returncode == 0, r.stderr
    assert not of(events, "stream.end")
    assert record_bytes(gateway, session) > 1 << 20


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
