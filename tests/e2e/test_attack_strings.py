"""Attacks with untrusted text: every way a user can put bytes that are not valid UTF-8 (or text
that a terminal would act on) into what castgate records, with real clients (OpenSSH, sftp, scp,
paramiko). Before the fix one `ssh host $'echo \\xff'` aborted the whole process. For each: castgate
keeps serving, another person's session opened before is unaffected and verifies, and the
attacker's session is recorded (the marked text is in the record) or refused with an audit event.
And a fault planted in session code (test build only) ends that one session, never the process."""

import os
import subprocess

import paramiko
import pytest

from attacker import (ATTACK_POLICY, Bystander, assert_recorded, attack_identities,  # noqa: F401
                      events_of, mallory_session, marker, paramiko_mallory, still_serving,
                      target_gateway, watched)  # (fixtures)
from harness import CASTGATE, LOGIN, check_record, run, wait_until

pytestmark = pytest.mark.timeout(180)

REPLACEMENT = "\ufffd"


def ssh_bytes(gw, keys, user: bytes, command: bytes | None, extra=()) -> subprocess.CompletedProcess:
    """OpenSSH with raw bytes in the user name and command (not valid UTF-8)."""
    args = [a.encode() for a in gw.ssh_args(keys.eve, None, list(extra))] + [user + b"@127.0.0.1"]
    if command is not None:
        args.append(command)
    return subprocess.run(args, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)


def read_all(chan, timeout=30) -> bytes:
    chan.settimeout(timeout)
    out = b""
    while True:
        data = chan.recv(65536)
        if not data:
            return out
        out += data


def test_exec_command_that_is_not_utf8(watched, keys):
    gw, mark = watched, marker()
    r = ssh_bytes(gw, keys, f"{LOGIN}@db1.int".encode(), b"echo \xff\xfe " + mark.encode())
    assert r.returncode == 0 and mark.encode() in r.stdout
    session = mallory_session(gw)
    assert_recorded(gw, session, REPLACEMENT * 2 + " " + mark)
    command = [e for e in events_of(gw, session, "command")][0]
    assert command["process"]["command_line"] == f"echo {REPLACEMENT * 2} {mark}"


def test_login_name_that_is_not_utf8_is_refused_with_an_audit_event(watched, keys):
    gw = watched
    # OpenSSH refuses control characters in a user name, not bytes that are not UTF-8.
    r = ssh_bytes(gw, keys, b"\xff\xferoot@db1.int", b"echo never")
    assert b"never" not in r.stdout
    denied = gw.wait_event(lambda e: e["event"]["action"] == "policy.denied" and
                           e.get("user", {}).get("id") == "mallory", what="policy.denied")
    assert denied["castgate"]["requested_login"] == "\\xff\\xferoot"
    assert b"may not log in" in r.stderr and b"\xff" not in r.stderr  # told, harmlessly
    # paramiko sends anything: escape sequences in the user name reach neither the record raw nor
    # the user's terminal.
    t = paramiko.Transport(("127.0.0.1", gw.shared_port))
    t.start_client(timeout=15)
    try:
        t.auth_publickey(b"\x1b[2J\x1b]0;pwned\x07root\xff@db1.int".decode("latin-1"),
                         paramiko.Ed25519Key.from_private_key_file(str(keys.eve)))
        chan = t.open_session(timeout=15)
        chan.exec_command("echo never")
        shown = read_all(chan) + chan.recv_stderr(65536)
        assert b"never" not in shown and b"\x1b" not in shown
    finally:
        t.close()
    denials = wait_until(lambda: [e for e in gw.events() if e["event"]["action"] == "policy.denied"
                                  and "pwned" in e["castgate"]["requested_login"]], 15, "denial")
    assert "\x1b" not in denials[0]["castgate"]["requested_login"]


def test_subsystem_name_that_is_not_utf8(watched, keys):
    gw = watched
    t = paramiko_mallory(gw, keys)
    try:
        chan = t.open_session(timeout=15)
        with pytest.raises(paramiko.SSHException):
            chan.invoke_subsystem(b"\xff\xfe-subsystem")  # the target has no such subsystem
    finally:
        t.close()
    session = mallory_session(gw)
    header = gw.wait_event(lambda e: e["castgate"]["session"] == session and
                           e["event"]["action"] == "asciicast.header", what="the header")
    assert header["asciicast"]["header"]["command"] == REPLACEMENT * 2 + "-subsystem"


def test_terminal_type_that_is_not_utf8(watched, keys):
    gw, mark = watched, marker()
    t = paramiko_mallory(gw, keys)
    try:
        chan = t.open_session(timeout=15)
        chan.get_pty(term=b"\xff\xfexterm")
        chan.exec_command(f"echo {mark}")
        assert mark.encode() in read_all(chan)
    finally:
        t.close()
    session = mallory_session(gw)
    assert_recorded(gw, session, mark)
    header = events_of(gw, session, "asciicast.header")[0]
    assert header["asciicast"]["header"]["env"]["TERM"] == REPLACEMENT * 2 + "xterm"


def test_sftp_get_of_a_latin1_file_name(watched, keys, tmp_path):
    gw = watched
    remote = tmp_path / "latin1"
    remote.mkdir()
    name = b"caf\xe9.txt"  # an ordinary Latin-1 name
    with open(os.path.join(bytes(remote), name), "wb") as f:
        f.write(b"data\n")
    batch = tmp_path / "batch"
    batch.write_bytes(b"get " + bytes(remote) + b"/" + name + b" " + bytes(tmp_path) + b"/got.txt\n")
    args = ["sftp", "-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o",
            "UserKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes", "-i", str(keys.eve),
            "-P", str(gw.shared_port), "-b", str(batch), f"{LOGIN}@db1.int@127.0.0.1"]
    r = run(args)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "got.txt").read_bytes() == b"data\n"
    session = mallory_session(gw)
    opened = gw.wait_event(lambda e: e["castgate"]["session"] == session and
                           e["event"]["action"] == "file.open", what="file.open")
    assert opened["file"]["path"] == f"{remote}/caf{REPLACEMENT}.txt"


def test_scp_of_a_latin1_file_name(watched, keys, tmp_path):
    gw = watched
    remote = tmp_path / "scp-latin1"
    remote.mkdir()
    name = b"na\xefve.txt"
    with open(os.path.join(bytes(remote), name), "wb") as f:
        f.write(b"scp data\n")
    args = [a.encode() for a in ["scp", "-O", "-F", "/dev/null", "-o", "StrictHostKeyChecking=no",
                                 "-o", "UserKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes",
                                 "-i", str(keys.eve), "-P", str(gw.shared_port)]]
    args += [f"{LOGIN}@db1.int@127.0.0.1:".encode() + bytes(remote) + b"/" + name,
             bytes(tmp_path / "scp-got.txt")]
    r = subprocess.run(args, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    session = mallory_session(gw)
    transfer = gw.wait_event(lambda e: e["castgate"]["session"] == session and
                             e["event"]["action"] == "file.transfer", what="file.transfer")
    assert transfer["file"]["path"] == f"{remote}/na{REPLACEMENT}ve.txt"


def test_port_forward_to_a_host_name_that_is_not_utf8(watched, keys):
    gw = watched
    t = paramiko_mallory(gw, keys)
    try:
        with pytest.raises(paramiko.ChannelException):
            t.open_channel("direct-tcpip", (b"\xff\xfe\x1b]0;evil\x07.invalid", 22), ("127.0.0.1", 4242),
                           timeout=30)
    finally:
        t.close()
    session = mallory_session(gw)
    failed = gw.wait_event(lambda e: e["castgate"]["session"] == session and
                           e["event"]["action"] in ("channel.open_failed", "port_forward.close"),
                           what="the forward's end")
    assert failed["castgate"]["forward"]["host"].startswith(REPLACEMENT * 2)


def test_alert_text_cut_in_the_middle_of_a_character(watched, keys):
    gw, mark = watched, marker()
    # "rm -rf /" matches a default alert; the alert keeps 1,024 bytes of the command, and an odd
    # prefix puts byte 1,024 in the middle of a two-byte character.
    command = f"echo {mark} rm -rf / #" + "é" * 700
    r = gw.ssh(keys.eve, command, f"{LOGIN}@db1.int")
    assert mark.encode() in r.stdout
    session = mallory_session(gw)
    alert = gw.wait_event(lambda e: e["castgate"]["session"] == session and
                          e["event"]["action"] == "alert", what="the alert")
    matched = alert["castgate"]["alert"]["matched"]
    assert matched.startswith(f"echo {mark}") and REPLACEMENT not in matched
    assert len(matched.encode()) <= 1024


def test_terminal_code_points_above_unicode(watched, keys):
    """libvterm decodes up to six-byte sequences: echoed input becomes a cell above U+10FFFF,
    and the command read off the screen used to hold invalid UTF-8."""
    gw, mark = watched, marker()
    t = paramiko_mallory(gw, keys)
    try:
        chan = t.open_session(timeout=15)
        chan.get_pty(width=100, height=30)
        chan.exec_command("cat")
        chan.sendall(b"\xf7\xbf\xbf\xbf\xfb\xbf\xbf\xbf\xbf" + mark.encode() + b"\r")
        seen = b""
        chan.settimeout(15)
        while seen.count(mark.encode()) < 2:
            seen += chan.recv(4096)
        chan.sendall(b"\x04")
        read_all(chan)
    finally:
        t.close()
    session = mallory_session(gw)
    assert_recorded(gw, session, mark)
    command = gw.wait_event(lambda e: e["castgate"]["session"] == session and
                            e["event"]["action"] == "command" and
                            mark in e["process"]["command_line"], what="the command")
    assert command["process"]["command_line"].endswith(mark)


# What a program sets up on a 80x50 terminal before the user's window shrinks to 20x2, then does
# after it: each left libvterm 0.1.4 reading and writing out of bounds (found by fuzz_terminal and
# the hostile review).
SHRINK_ATTACKS = {
    # 49 lines, the cursor back at the top: libvterm scrolls the lines up and the cursor up as
    # far, to row -48; ESC # 6 then writes its line table out of bounds.
    "cursor-above-the-screen": ("for i in $(seq 49); do echo line $i; done; printf '\\033[60A'",
                                "printf '\\033#6\\033#3'"),
    # A scrolling region at the bottom: its top stays past the new edge; line feeds and CSI S
    # move cells past the buffer.
    "scroll-region-below-the-screen": ("printf '\\033[40;49r\\033[45;1H'",
                                       "printf '\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\033[5S\\033[5T'"),
    # A saved cursor below the new edge: ESC 8, then a character, writes through a NULL line.
    "saved-cursor-below-the-screen": ("printf '\\033[49;70H\\0337'", "printf '\\0338x\\033#6yz'"),
}


@pytest.mark.parametrize("attack", sorted(SHRINK_ATTACKS))
def test_a_smaller_window_cannot_crash_the_worker(watched, keys, attack):
    """A program sets its terminal up (cursor, scrolling region, saved cursor), the user shrinks
    the window, the program goes on: with libvterm 0.1.4 the worker died with SIGSEGV (or heap
    corruption), and every session on it with it. Now the session goes on, the output after the
    resize is recorded, and the bystander is unaffected."""
    gw, mark = watched, marker()
    before, after = SHRINK_ATTACKS[attack]
    script = (f"{before}; echo READY; read x; {after}; printf '%s\\n' {mark}; "
              "for i in 1 2 3; do printf '\\033#6 again %s\\n' $i; done")
    t = paramiko_mallory(gw, keys)
    try:
        chan = t.open_session(timeout=15)
        chan.get_pty(width=80, height=50)
        chan.exec_command(script)
        seen = b""
        chan.settimeout(15)
        while b"READY" not in seen:
            data = chan.recv(4096)
            assert data, seen[-200:]
            seen += data
        chan.resize_pty(width=20, height=2)
        chan.resize_pty(width=20, height=1)  # the smallest libvterm holds: 2 rows
        chan.sendall(b"go\r")
        out = read_all(chan)
        assert mark.encode() in out and b"again 3" in out
        assert chan.recv_exit_status() == 0
    finally:
        t.close()
    session = mallory_session(gw)
    assert_recorded(gw, session, mark)
    end = gw.wait_event(lambda e: e["castgate"]["session"] == session and
                        e["event"]["action"] == "session.end", what="the session's end")
    assert end["castgate"]["end_reason"] != "internal_error"
    assert [r["asciicast"]["event"][2] for r in events_of(gw, session, "asciicast.resize")][:2] \
        == ["20x2", "20x1"]


@pytest.mark.skipif("fault injection" not in run([CASTGATE, "--version"]).stdout.decode(),
                    reason="castgate was built without -DCASTGATE_FAULT_INJECTION (make asan has it)")
@pytest.mark.parametrize("where", ["exec", "input", "tick"])
def test_an_exception_in_session_code_ends_that_session_only(gateway_factory, sshd, keys, where):
    """An exception thrown from session code, whichever way the loop entered it (fd readiness,
    deferred work, a timer), closes that session with its signed last event; castgate, and the
    session of the person next to it, go on."""
    mark = "FAULT-" + where
    gw = gateway_factory([{"name": "db1.int", "host": "127.0.0.1", "port": sshd.port}],
                         [sshd.known_hosts_line()], policy=ATTACK_POLICY,
                         identities=attack_identities(keys),
                         env={"CASTGATE_TEST_FAULT": f"{where}:{'mallory' if where == 'tick' else mark}"})
    bystander = Bystander(gw, keys)
    try:
        if where == "exec":
            gw.ssh(keys.eve, f"echo {mark}", f"{LOGIN}@db1.int")
        elif where == "input":
            gw.ssh(keys.eve, "cat", f"{LOGIN}@db1.int", input=f"{mark}\n".encode())
        else:
            gw.ssh(keys.eve, "sleep 30", f"{LOGIN}@db1.int", timeout=60)
        session = mallory_session(gw)
        end = gw.wait_event(lambda e: e["castgate"]["session"] == session and
                            e["event"]["action"] == "session.end", what="the faulty session's end")
        assert end["castgate"]["end_reason"] == "internal_error"
        assert "internal error" in gw.stderr()
        still_serving(gw, keys)
        bystander.finish()
    finally:
        bystander.close()
    assert gw.stop() == 0
    check_record(gw)  # every session, the faulty one included, complete and signed
