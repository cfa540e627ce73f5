"""Attacks that try to hide from the recording: a shell disguised as a file transfer (the exec
string says scp, the data says otherwise), a program named scp, a client or target that stops
speaking the protocol half-way, SFTP with a terminal, passwords typed where no terminal echoes,
full-screen programs. Castgate treats a channel as a file transfer only while the data itself is
that protocol; from the first byte that is not, it records everything, in both directions, with
an alert. Real clients throughout (OpenSSH ssh/sftp in a terminal, paramiko)."""

import os
import pathlib
import pwd
import shutil
import tempfile
import time

import paramiko
import pytest

from attacker import (Bystander, assert_recorded, events_of, mallory_session, marker,  # noqa: F401
                      paramiko_mallory, recorded_text, sessions_of, still_serving, target_gateway,
                      test_user_password, watched)
from harness import LOGIN, TEST_USER, Tmux, run, wait_until

pytestmark = pytest.mark.timeout(180)


def mallory(gw, keys) -> paramiko.Transport:
    return paramiko_mallory(gw, keys, f"{TEST_USER}@db1.int")


def recv_until(chan, needle: bytes, timeout: float = 15, stderr: bool = False) -> bytes:
    chan.settimeout(timeout)
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen:
        if time.monotonic() > deadline:
            raise AssertionError(f"{needle!r} did not come; got {seen[-300:]!r}")
        data = chan.recv_stderr(4096) if stderr else chan.recv(4096)
        if not data:
            break
        seen += data
    return seen


def header_of(gw, session, channel=0):
    return [e for e in events_of(gw, session, "asciicast.header")
            if e["castgate"]["channel"] == channel][0]


def test_scp_command_with_a_shell_behind_it(watched, keys):
    """The exec string starts like scp and then runs an interactive shell: not a file transfer,
    everything typed and shown is recorded."""
    gw, mark = watched, marker()
    term = Tmux(gw.ssh_args(keys.eve, None, ["-tt"]) +
                [f"{LOGIN}@db1.int@127.0.0.1", "scp -f /nonexistent; exec bash -i"])
    try:
        term.type("export PS1='hidden$ '")
        term.wait_for("hidden$")
        term.type(f"echo {mark}-typed")
        term.wait_for(f"\n{mark}-typed")
        term.type("exit")
        term.wait_for("CLIENT-EXIT=")
    finally:
        term.close()
    session = mallory_session(gw)
    assert "file_transfer" not in header_of(gw, session)["castgate"]
    assert_recorded(gw, session, f"{mark}-typed")
    inputs = "".join(e["asciicast"]["event"][2] for e in events_of(gw, session, "asciicast.input"))
    assert f"echo {mark}-typed" in inputs
    assert any(f"echo {mark}-typed" in e["process"]["command_line"]
               for e in events_of(gw, session, "command"))


@pytest.mark.usefixtures("test_account")
def test_a_program_named_scp(watched, keys, tmp_path):
    """A program uploaded as `scp` and run as `./scp -f x` is not scp."""
    gw, mark = watched, marker()
    home = pathlib.Path(pwd.getpwnam(TEST_USER).pw_dir)
    fake = tmp_path / "scp"
    fake.write_text('#!/bin/sh\nwhile read -r line; do eval "$line"; done\n')
    batch = tmp_path / "batch"
    batch.write_text(f"put {fake} {home}/scp\nchmod 755 {home}/scp\n")
    r = run(["sftp", "-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o",
             "UserKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes", "-i", str(keys.eve),
             "-P", str(gw.shared_port), "-b", str(batch), f"{TEST_USER}@db1.int@127.0.0.1"])
    assert r.returncode == 0, r.stderr
    try:
        r = gw.ssh(keys.eve, "./scp -f x", f"{TEST_USER}@db1.int",
                   input=f"echo {mark}-shown\n".encode())
        assert f"{mark}-shown".encode() in r.stdout
        session = mallory_session(gw)
        assert "file_transfer" not in header_of(gw, session)["castgate"]
        assert_recorded(gw, session, f"{mark}-shown")
    finally:
        (home / "scp").unlink(missing_ok=True)


def test_a_client_that_stops_speaking_scp(watched, keys, tmp_path):
    """The exec string is exactly what scp sends and the target runs the real scp, but the client
    turns to other talk after one file: from that byte on, everything is recorded, with an
    alert; the file itself stays out of the record."""
    gw, mark = watched, marker()
    inbox = pathlib.Path(tempfile.mkdtemp(prefix="castgate-scp-"))  # reachable by the test user
    shutil.chown(inbox, TEST_USER)
    t = mallory(gw, keys)
    try:
        chan = t.open_session(timeout=15)
        chan.exec_command(f"scp -t {inbox}")
        assert recv_until(chan, b"\0") == b"\0"
        content = b"file-content-" + mark.encode()
        chan.sendall(b"C0644 %d a.txt\n" % len(content) + content + b"\0")
        recv_until(chan, b"\0")
        chan.sendall(f"cat /etc/hostname; echo {mark}-not-scp\n".encode())
        chan.shutdown_write()
        chan.settimeout(15)
        while chan.recv(4096):
            pass
    finally:
        t.close()
        shutil.rmtree(inbox, ignore_errors=True)
    session = mallory_session(gw)
    assert header_of(gw, session)["castgate"]["file_transfer"] == "scp"
    transfer = gw.wait_event(lambda e: e["castgate"]["session"] == session and
                             e["event"]["action"] == "file.transfer", what="file.transfer")
    assert transfer["file"]["path"] == str(inbox) and transfer["file"]["target_path"] == "a.txt"
    fallback = gw.wait_event(lambda e: e["castgate"]["session"] == session and
                             e["event"]["action"] == "recording.fallback", what="the fallback")
    assert fallback["castgate"]["fallback"]["protocol"] == "scp"
    alert = gw.wait_event(lambda e: e["castgate"]["session"] == session and
                          e["event"]["action"] == "alert", what="the alert")
    assert alert["rule"]["name"] == "file-transfer-protocol-mismatch"
    assert_recorded(gw, session, f"{mark}-not-scp")
    assert f"file-content-{mark}" not in recorded_text(gw, session)


def test_sftp_where_the_target_speaks_first(gateway_factory, keys, tmp_path):
    """The target's SFTP server says something that is not SFTP before its VERSION (here its
    configuration does it; a user's ~/.ssh/rc cannot, since castgate's certificates do not permit
    user rc): recorded, with an alert."""
    from attacker import ATTACK_POLICY, attack_identities
    from harness import Sshd
    mark = marker()
    place = pathlib.Path(tempfile.mkdtemp(prefix="castgate-sftp-"))  # the test user runs it
    place.chmod(0o755)
    server = place / "chatty-sftp-server"
    server.write_text(f"#!/bin/sh\necho {mark}-before-sftp\nexec /usr/lib/openssh/sftp-server\n")
    server.chmod(0o755)
    sshd = Sshd(tmp_path, keys.ca_pub, extra=f"Subsystem sftp {server}\n")
    try:
        gw = gateway_factory([{"name": "db1.int", "host": "127.0.0.1", "port": sshd.port}],
                             [sshd.known_hosts_line()], policy=ATTACK_POLICY,
                             identities=attack_identities(keys))
        bystander = Bystander(gw, keys)
        try:
            r = run(["sftp", "-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o",
                     "UserKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes", "-i",
                     str(keys.eve), "-P", str(gw.shared_port), "-b", "/dev/null",
                     f"{TEST_USER}@db1.int@127.0.0.1"])
            assert r.returncode != 0  # the client cannot make sense of it either
            session = mallory_session(gw)
            gw.wait_event(lambda e: e["castgate"]["session"] == session and
                          e["event"]["action"] == "recording.fallback", what="the fallback")
            assert_recorded(gw, session, f"{mark}-before-sftp")
            still_serving(gw, keys)
            bystander.finish()
        finally:
            bystander.close()
    finally:
        sshd.stop()
        shutil.rmtree(place)


@pytest.mark.usefixtures("test_account")
def test_user_rc_files_do_not_run_on_targets(watched, keys):
    """~/.ssh/rc would run before every command, SFTP included, and could speak for it: the
    per-session certificates do not grant permit-user-rc."""
    gw, mark = watched, marker()
    home = pathlib.Path(pwd.getpwnam(TEST_USER).pw_dir)
    ssh_dir = home / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    rc = ssh_dir / "rc"
    rc.write_text(f"echo {mark}-from-rc\n")
    try:
        r = gw.ssh(keys.eve, "echo ran", f"{TEST_USER}@db1.int")
        assert r.stdout == b"ran\n"
    finally:
        rc.unlink()


def test_sftp_with_a_terminal_is_recorded_in_full(watched, keys):
    gw, mark = watched, marker()
    t = mallory(gw, keys)
    try:
        chan = t.open_session(timeout=15)
        chan.get_pty()
        chan.invoke_subsystem("sftp")
        chan.sendall(f"{mark}-typed\r".encode())
        time.sleep(0.5)
    finally:
        t.close()
    session = mallory_session(gw)
    header = header_of(gw, session)
    assert header["castgate"]["pty"] is True and "file_transfer" not in header["castgate"]
    assert_recorded(gw, session, f"{mark}-typed")


def test_sudo_password_without_a_terminal_is_masked(watched, keys, test_user_password):
    """`sudo -S` reads the password from stdin and prompts on stderr: the answer is masked, whether
    it was typed after the prompt or piped in before it appeared."""
    gw = watched
    # Piped in before the prompt appears.
    r = gw.ssh(keys.eve, "sudo -S -k -p '[sudo] password for %u: ' /usr/bin/true && echo accepted",
               f"{TEST_USER}@db1.int", input=f"{test_user_password}\n".encode())
    assert b"accepted" in r.stdout, r.stderr
    # Piped in with a line for the program sudo runs, in one write: sudo reads the first line.
    answer = marker("answer-for-the-program")
    r = gw.ssh(keys.eve, "sudo -S -k -p '[sudo] password for %u: ' /usr/bin/true && head -n1",
               f"{TEST_USER}@db1.int", input=f"{test_user_password}\n{answer}\n".encode())
    assert answer.encode() in r.stdout, r.stderr
    # Typed after the prompt.
    t = mallory(gw, keys)
    try:
        chan = t.open_session(timeout=15)
        chan.exec_command("sudo -S -k -p '[sudo] password for %u: ' /usr/bin/true && echo accepted")
        recv_until(chan, b"password for", stderr=True)
        chan.sendall(f"{test_user_password}\n".encode())
        assert b"accepted" in recv_until(chan, b"accepted")
    finally:
        t.close()
    sessions = wait_until(lambda: sessions_of(gw, "mallory")[-3:] if len(sessions_of(gw, "mallory")) >= 3
                          else None, 15, "all three sessions")
    for session in sessions:
        gw.wait_event(lambda e: e["castgate"]["session"] == session and
                      e["event"]["action"] == "channel.end", what="the channel's end")
        inputs = "".join(e["asciicast"]["event"][2]
                         for e in events_of(gw, session, "asciicast.input"))
        assert "********" in inputs
        assert test_user_password not in inputs
    assert answer in "".join(e["asciicast"]["event"][2] for e in events_of(gw, sessions[1], "asciicast.input"))
    assert test_user_password.encode() not in gw.stdout_path.read_bytes()


def test_full_screen_programs_are_recorded_and_passwords_stay_masked(watched, keys):
    """In the alternate screen (vim, a nested tmux) the output is recorded and a password typed
    at a prompt there is masked."""
    gw, mark = watched, marker()
    secret = "alt-" + marker("secret")
    term = Tmux(gw.ssh_args(keys.eve, None, ["-tt"]) + [f"{LOGIN}@db1.int@127.0.0.1"])
    try:
        term.type("export PS1='full$ '")
        term.wait_for("full$")
        # The prompt is assembled so that the command line itself does not show it.
        term.type(f"printf '\\033[?1049h{mark}-in-alt\\n'; "
                  "read -s -p \"$(printf 'Pass%s: ' word)\" pw; printf '\\033[?1049l'; echo len=${#pw}")
        term.wait_for("Password:")  # (tmux drops the trailing space)
        term.type(secret)
        term.wait_for(f"len={len(secret)}")
        term.type(f"vim -u NONE -N -c 'normal i{mark}-in-vim' -c 'redraw' -c 'sleep 1' -c 'q!'; "
                  "echo vim-$((6*7))")
        term.wait_for("\nvim-42", 20)
        term.type("exit")
        term.wait_for("CLIENT-EXIT=")
    finally:
        term.close()
    session = mallory_session(gw)
    assert_recorded(gw, session, f"{mark}-in-alt")
    assert_recorded(gw, session, f"{mark}-in-vim")
    gw.wait_event(lambda e: e["castgate"]["session"] == session and
                  e["event"]["action"] == "session.end", what="the end")
    assert secret not in recorded_text(gw, session)
    assert secret.encode() not in gw.stdout_path.read_bytes()


def test_scp_upload_into_a_directory_named_like_a_file(watched, keys, tmp_path):
    """`scp -O key.pub host:DIR/.ssh` writes DIR/.ssh/key.pub... or, named authorized_keys, the
    file sshd trusts: only the target knows .ssh is a directory. The record names both places,
    and the credential-file alert fires. A shell start-up file uploaded (contents not recorded,
    and it can change what the next scp or sftp-server runs) raises its own alert."""
    gw = watched
    home = tmp_path / "scp-home"
    (home / ".ssh").mkdir(parents=True)
    os.chmod(tmp_path, 0o755)
    local = tmp_path / "authorized_keys"
    local.write_text("ssh-ed25519 AAAA mallory\n")
    rc = tmp_path / ".bashrc"
    rc.write_text("scp() { bash -i; }\n")
    base = ["scp", "-O", "-F", "/dev/null", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes",
            "-i", str(keys.eve), "-P", str(gw.shared_port)]
    for source, destination in ((local, home / ".ssh"), (rc, home)):
        r = run(base + [str(source), f"{LOGIN}@db1.int@127.0.0.1:{destination}"], timeout=60)
        assert r.returncode == 0, r.stderr
    assert (home / ".ssh" / "authorized_keys").exists() and (home / ".bashrc").exists()
    session = wait_until(lambda: sessions_of(gw, "mallory")[-2:] if len(sessions_of(gw, "mallory")) >= 2
                         else None, 15, "both sessions")
    transfer = gw.wait_event(lambda e: e["castgate"]["session"] == session[0] and
                             e["event"]["action"] == "file.transfer", what="file.transfer")
    assert transfer["file"]["path"] == str(home / ".ssh")
    assert transfer["castgate"]["file"]["alternative_path"] == str(home / ".ssh" / "authorized_keys")
    alert = gw.wait_event(lambda e: e["castgate"]["session"] == session[0] and
                          e["event"]["action"] == "alert", what="the credential-file alert")
    assert alert["rule"]["name"] == "credential-file-change"
    alert = gw.wait_event(lambda e: e["castgate"]["session"] == session[1] and
                          e["event"]["action"] == "alert", what="the shell start-up file alert")
    assert alert["rule"]["name"] == "shell-startup-file"
