"""Attacks on castgate's memory: signed-in clients that misbehave on purpose so that castgate
holds more and more for them. paramiko sends what no well-behaved client would (raw messages
past its own flow control and limits, with `Transport._send_user_message`). For every attack:
castgate keeps serving, another person's session opened before is unaffected and verifies,
castgate's memory stays well under what the attack costs without the limit (sampled while it
runs; each test says what that is, measured by disabling the check), and the attacker is
disconnected with a `limit.exceeded` event naming the limit (--max-channel-buffer, --max-env,
--max-env-size, --max-request-rate, --max-terminal-cells, --max-pending-requests). Two are not
limits: input at a password prompt is held bounded, not refused, and a client that corrupts its
stream ends its session with a protocol error.

Memory is castgate's resident set, under AddressSanitizer in `make test`."""

from __future__ import annotations

import json
import pathlib
import pwd
import threading
from typing import Callable

import paramiko
import pytest

from attacker import (ATTACK_POLICY, attack_gateway, attack_identities, events_of,  # noqa: F401
                      mallory_session, paramiko_mallory, recorded_text, watched,  # (fixture)
                      watching)
from harness import LOGIN, TEST_USER, Dropbear, TimeoutError_, keygen, pubkey, wait_until

pytestmark = pytest.mark.timeout(120)

KB, MB = 1 << 10, 1 << 20
MSG_CHANNEL_DATA, MSG_CHANNEL_REQUEST = 94, 98
MSG_CHANNEL_CLOSE, MSG_CHANNEL_SUCCESS, MSG_CHANNEL_FAILURE = 97, 99, 100
# castgate's defaults, which these tests run with.
MAX_ENV, MAX_ENV_SIZE, MAX_REQUEST_RATE, MAX_TERMINAL_CELLS = 64, 8192, 20, 250000
# Requests that --max-request-rate lets through in a flood of a few seconds: the burst (ten
# seconds' worth), and what refills meanwhile.
BURST_AND_REFILL = MAX_REQUEST_RATE * 10 + MAX_REQUEST_RATE * 3
SENT_ERRORS = (OSError, EOFError, paramiko.SSHException)


# AddressSanitizer keeps freed blocks in a quarantine (16 MB in the harness) to catch their use;
# filling it would be most of the growth these tests see, whatever the attack. With 1 MB of it
# what remains is castgate's own holding.
ASAN_SMALL_QUARANTINE = {"ASAN_OPTIONS": "detect_leaks=1:quarantine_size_mb=1"}


@pytest.fixture
def target_gateway(gateway_factory, sshd, keys):
    return attack_gateway(gateway_factory, sshd, keys, env=ASAN_SMALL_QUARANTINE)


class Memory:
    """castgate's resident memory, sampled every 20 ms while an attack runs."""

    def __init__(self, gw):
        self.gw = gw
        self.samples: list[float] = []
        self._stop = threading.Event()

    def __enter__(self):
        self.base = self.gw.rss_mb()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.samples.append(self.gw.rss_mb())
            self._stop.wait(0.02)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)
        self.samples.append(self.gw.rss_mb())

    @property
    def growth(self) -> float:
        return max(self.samples) - self.base

    def assert_bounded(self, at_most_mb: float, unbounded: str):
        assert self.growth < at_most_mb, (
            f"castgate grew by {self.growth:.0f} MB (from {self.base:.0f} MB); without the limit "
            f"the attack costs {unbounded}")


def ignore_channel_close(t: paramiko.Transport):
    """The attacker's side no longer answers (or notices) castgate's CHANNEL_CLOSE: it goes on
    sending on a channel that castgate has closed."""
    t._channel_handler_table = {**t._channel_handler_table, MSG_CHANNEL_CLOSE: lambda c, m: None}


def channel_request(t: paramiko.Transport, chan: paramiko.Channel, kind: str, *fields,
                    want_reply: bool = False):
    """A raw SSH_MSG_CHANNEL_REQUEST: ints as uint32, everything else as strings."""
    m = paramiko.Message()
    m.add_byte(bytes([MSG_CHANNEL_REQUEST]))
    m.add_int(chan.remote_chanid)
    m.add_string(kind)
    m.add_boolean(want_reply)
    for f in fields:
        if isinstance(f, int):
            m.add_int(f)
        else:
            m.add_string(f)
    t._send_user_message(m)


def pty_req(t, chan, cols: int, rows: int, want_reply: bool = True):
    channel_request(t, chan, "pty-req", "xterm", cols, rows, 0, 0, b"", want_reply=want_reply)


def flood(t: paramiko.Transport, send: Callable[[int], None], count: int,
          seconds: float = 20) -> int:
    """Calls send(i) up to `count` times, until castgate hangs up; returns how many were sent.
    After `seconds` the attacker gives up, closing its connection if a send is stuck (castgate
    not reading: paramiko would wait for ever)."""
    sent = 0

    def run():
        nonlocal sent
        for i in range(count):
            if not t.is_active():
                return
            try:
                send(i)
            except SENT_ERRORS:
                return
            sent = i + 1

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        t.close()
        worker.join(10)
    return sent


class Replies:
    """Counts castgate's answers to channel requests sent with want_reply, so that a flood can
    keep only a few unanswered (paramiko would close its channel on the first failure)."""

    def __init__(self, t: paramiko.Transport):
        self.answered = 0
        self.failed = 0

        def answer(failed: bool):
            def handle(chan, m):  # on paramiko's thread, the only writer
                self.answered += 1
                self.failed += failed
            return handle

        t._channel_handler_table = {**t._channel_handler_table, MSG_CHANNEL_SUCCESS: answer(False),
                                    MSG_CHANNEL_FAILURE: answer(True)}

    def wait_below(self, sent: int, outstanding: int, t: paramiko.Transport):
        wait_until(lambda: sent - self.answered < outstanding or not t.is_active(), 15,
                   "castgate's answers", interval=0.001)


def limit_event(gw, t: paramiko.Transport, session: str) -> dict | None:
    """How castgate answered the attack: the attacker's limit.exceeded event once castgate has
    also hung up on the attacker, or None if castgate wrote no such event within 15 s."""
    def find():
        # Only the lines that can match are parsed: without its limit an attack can make the
        # record large.
        for line in gw.stdout_path.read_bytes().splitlines():
            if b'"limit.exceeded"' in line and session.encode() in line:
                return json.loads(line)
        return None

    try:
        exceeded = wait_until(find, 15, "limit.exceeded", interval=0.2)
    except TimeoutError_:
        return None
    wait_until(lambda: not t.is_active(), 15, "castgate to hang up on the attacker")
    return exceeded


def assert_limit(gw, session: str, exceeded: dict | None, limits: set[str]):
    """The attacker's session ended on a limit.exceeded naming one of `limits`."""
    assert exceeded, f"no limit.exceeded: castgate did not stop the attacker ({limits})"
    assert exceeded["castgate"]["limit"] in limits, exceeded
    assert exceeded["event"]["outcome"] == "failure"
    end = gw.wait_event(lambda e: e["castgate"]["session"] == session and
                        e["event"]["action"] == "session.end", what="the attacker's session.end")
    assert end["castgate"]["end_reason"] == "limit_exceeded"


@pytest.mark.parametrize("target_command", ["sleep 60", "cat > /dev/null"],
                         ids=["target-not-reading", "target-reading"])
def test_client_sending_past_the_window(watched, keys, target_command):
    """SSH_MSG_CHANNEL_DATA far past the window castgate advertised (256 MiB in 32 KiB packets),
    from a client that ignores castgate's CLOSE as well and goes on sending. libssh 0.10 buffers
    data sent past the window; castgate counts what libssh holds and hangs up past
    --max-channel-buffer (4 MiB), whether the target reads (cat) or not (sleep): a client that
    ignores the window outruns castgate and the target either way.
    With the limit castgate grows by ~12 MB (libssh's buffer, which doubles as it grows, and one
    batch on its way to the target). Without it castgate holds all that arrives: +275 MB for the
    256 MiB when the target does not read, +365 MB when it does (castgate relays and records
    slower than the client sends, and takes libssh's whole buffer as one batch). Before castgate
    hung up at once on a peer past a limit, a client ignoring the CLOSE had 3 s of grace in
    which libssh went on buffering: +275 MB and +137 MB."""
    gw = watched
    t = paramiko_mallory(gw, keys)
    try:
        ignore_channel_close(t)
        chan = t.open_session(timeout=15)
        chan.exec_command(target_command)
        session = mallory_session(gw)
        block = b"W" * (32 * KB)

        def data(i: int):
            m = paramiko.Message()
            m.add_byte(bytes([MSG_CHANNEL_DATA]))
            m.add_int(chan.remote_chanid)
            m.add_string(block)
            t._send_user_message(m)

        with Memory(gw) as memory:
            sent = flood(t, data, 256 * MB // len(block))
            exceeded = limit_event(gw, t, session)
    finally:
        t.close()
    memory.assert_bounded(32, "all that arrives: 256 MiB and more")
    assert sent < 256 * MB // len(block), "castgate took all 256 MiB"
    assert_limit(gw, session, exceeded, {"channel_buffer"})


def test_env_flood(watched, keys):
    """Thousands of env requests with names the target allows (LC_*), 4 KB each, with at most
    four unanswered at a time so that only their number can stop them: castgate hangs up past
    --max-env (64 per channel). The cost without the limit is the target's, not castgate's
    (which holds a few at a time): every variable is relayed into the environment of all the
    session runs, 20 a second for as long as the client likes once --max-request-rate's burst
    is spent (8 MB for these 2,000, on a server that keeps them; OpenSSH keeps 128 and refuses
    the rest). Without it 129 reached OpenSSH here."""
    gw = watched
    t = paramiko_mallory(gw, keys)
    try:
        chan = t.open_session(timeout=15)
        replies = Replies(t)
        session = mallory_session(gw)
        value = "v" * (4 * KB)

        def env(i: int):
            replies.wait_below(i, 4, t)
            channel_request(t, chan, "env", f"LC_FLOOD_{i}", value, want_reply=True)

        with Memory(gw) as memory:
            sent = flood(t, env, 2000)
            exceeded = limit_event(gw, t, session)
    finally:
        t.close()
    assert MAX_ENV < sent < 2000
    assert replies.answered - replies.failed <= MAX_ENV  # no more than allowed reached the target
    memory.assert_bounded(16, "a few requests at a time")
    assert_limit(gw, session, exceeded, {"env"})


def test_env_request_larger_than_the_limit(watched, keys):
    """One env request of 200 KB (libssh takes packets up to 256 KiB): castgate hangs up past
    --max-env-size (8 KB). Without the limit the variable goes to the target, and castgate holds
    every such request while the one ahead of it waits for the target: 32 pending x 256 KiB =
    8 MiB a channel, 512 MiB over a connection's 64 channels."""
    gw = watched
    t = paramiko_mallory(gw, keys)
    try:
        chan = t.open_session(timeout=15)
        session = mallory_session(gw)
        with Memory(gw) as memory:
            channel_request(t, chan, "env", "LC_HUGE", "h" * (25 * MAX_ENV_SIZE))  # 200 KB
            exceeded = limit_event(gw, t, session)
    finally:
        t.close()
    memory.assert_bounded(16, "8 MiB a channel, 512 MiB a connection")
    assert_limit(gw, session, exceeded, {"env"})


def test_window_change_flood(watched, keys):
    """5,000 window-change requests on a terminal, as fast as paramiko sends them: castgate hangs
    up past --max-request-rate (20 a second, bursts of 200). Without the limit every one resizes
    the recorded terminal and writes a signed asciicast resize line (~700 bytes): all 5,000 were
    recorded, 3.4 MB of record in about a second, and so on for as long as the attacker likes."""
    gw = watched
    t = paramiko_mallory(gw, keys)
    try:
        chan = t.open_session(timeout=15)
        chan.get_pty(width=80, height=24)
        chan.exec_command("sleep 60")
        session = mallory_session(gw)
        lines_before = len(events_of(gw, session))
        with Memory(gw) as memory:
            flood(t, lambda i: chan.resize_pty(width=80 + i % 2, height=24), 5000)
            exceeded = limit_event(gw, t, session)
    finally:
        t.close()
    resizes = events_of(gw, session, "asciicast.resize")
    assert len(resizes) <= BURST_AND_REFILL, len(resizes)
    assert len(events_of(gw, session)) - lines_before < 300  # the record did not grow by thousands
    memory.assert_bounded(16, "a record line per request (the record's cost, not memory's)")
    assert_limit(gw, session, exceeded, {"request_rate"})


def test_global_request_flood(watched, keys):
    """5,000 tcpip-forward requests (each refused with a port_forward.denied line): castgate
    hangs up past --max-request-rate. Without the limit the record grows by one signed line
    (~700 bytes) per request, at the rate the attacker sends them."""
    gw = watched
    t = paramiko_mallory(gw, keys)
    try:
        t.open_session(timeout=15)  # signed in to the target: a session in the record
        session = mallory_session(gw)
        with Memory(gw) as memory:
            forward = ("127.0.0.1", 10000)
            flood(t, lambda i: t.global_request("tcpip-forward", forward, wait=False), 5000)
            exceeded = limit_event(gw, t, session)
    finally:
        t.close()
    denied = events_of(gw, session, "port_forward.denied")
    assert 0 < len(denied) <= BURST_AND_REFILL, len(denied)
    memory.assert_bounded(16, "a record line per request (the record's cost, not memory's)")
    assert_limit(gw, session, exceeded, {"request_rate"})


@pytest.mark.parametrize("attack", ["pty-100000x100000", "pty-1000x1000", "window-change",
                                    "terminals-adding-up"])
def test_absurd_terminal_sizes(watched, keys, attack):
    """Terminals larger than --max-terminal-cells (250,000 cells over all of a connection's
    terminals), asked for with pty-req, with window-change, or by several terminals that add up:
    castgate hangs up. Here: four terminals, each running a program. Without the limit castgate
    keeps a screen of the size asked (libvterm, clamped to 1000x1000: ~32 bytes a cell, twice
    with the alternate screen), 64 MB for each 1000x1000 terminal (+276 MB measured for the
    four), 4 GB over a connection's 64 channels; and the target and the replaying player are
    told 100000x100000. With the limit castgate holds the screens within the budget (three of
    400x200, ~15 MB)."""
    gw = watched
    t = paramiko_mallory(gw, keys)
    sizes = {"pty-100000x100000": [(100000, 100000)] * 4, "pty-1000x1000": [(1000, 1000)] * 4,
             "window-change": [(80, 24)] * 4, "terminals-adding-up": [(400, 200)] * 4}[attack]
    assert (sum(c * r for c, r in sizes) > MAX_TERMINAL_CELLS) != (attack == "window-change")
    channels = []  # kept: paramiko closes a channel it no longer references
    try:
        session = None
        with Memory(gw) as memory:
            for cols, rows in sizes:
                try:
                    channels.append(t.open_session(timeout=15))
                    session = session or mallory_session(gw)
                    channels[-1].get_pty(width=cols, height=rows)
                    channels[-1].exec_command("sleep 60")
                except SENT_ERRORS:
                    break
            if attack == "window-change":
                flood(t, lambda i: channels[i].resize_pty(width=100000, height=100000), 4)
            exceeded = limit_event(gw, t, session)
    finally:
        t.close()
    memory.assert_bounded(32, "64 MB per 1000x1000 terminal")
    started = [(h["asciicast"]["header"]["width"], h["asciicast"]["header"]["height"])
               for h in events_of(gw, session, "asciicast.header")]
    assert started == {"terminals-adding-up": [(400, 200)] * 3,
                       "window-change": [(80, 24)] * 4}.get(attack, []), started
    assert_limit(gw, session, exceeded, {"terminal_cells"})


@pytest.fixture
def watched_with_dropbear(test_account, gateway_factory, sshd, keys, tmp_path):
    """Like `watched`, with a dropbear target (legacy.int, signed in to with a static key) beside
    OpenSSH (db1.int)."""
    static = keygen(tmp_path / "dropbear-static")
    server = Dropbear(tmp_path, pubkey(static), pathlib.Path(pwd.getpwnam(TEST_USER).pw_dir))
    try:
        gw = gateway_factory(
            [{"name": "db1.int", "host": "127.0.0.1", "port": sshd.port},
             {"name": "legacy.int", "host": "127.0.0.1", "port": server.port,
              "static_key": str(static)}],
            [sshd.known_hosts_line(), server.known_hosts_line()], policy=ATTACK_POLICY,
            identities=attack_identities(keys), env=ASAN_SMALL_QUARANTINE)
        with watching(gw, keys):
            yield gw
    finally:
        server.stop()


class PasswordPaste:
    """40 MB of `pattern` sent at a password prompt (`read -s`) in a terminal session without a
    newline, then Enter, then an ordinary answer to an ordinary prompt; castgate's memory
    sampled meanwhile."""

    pattern = b"~qZ7"  # in no prompt, command, hex or base64 text: its absence is telling

    def __init__(self, gw, keys, target: str):
        self.seen = b""
        t = paramiko_mallory(gw, keys, target)
        try:
            self.chan = t.open_session(timeout=15)
            self.chan.get_pty(width=100, height=30)
            self.chan.exec_command("read -s -p 'Password: ' pw; echo \"len=${#pw}\"; "
                                   "read -p 'next: ' x; echo \"got=$x\"")
            self.session = mallory_session(gw)
            self.chan.settimeout(30)
            assert self.read_until(b"Password: ")
            with Memory(gw) as self.memory:
                block = self.pattern * (256 * KB)
                try:
                    for _ in range(40 * MB // len(block)):
                        self.chan.sendall(block)
                    self.chan.sendall(b"\r")
                except OSError:  # the channel is closed
                    pass
                self.answered = self.read_until(b"len=")
            if self.answered:
                assert b"len=4095" in self.seen  # the line discipline's limit: what `read` got
                assert self.read_until(b"next: ")
                self.chan.sendall(b"afterwards\r")
                assert self.read_until(b"got=afterwards")
        finally:
            t.close()
        wait_until(lambda: events_of(gw, self.session, "channel.end"), 15, "the channel's end")
        self.recorded = recorded_text(gw, self.session)
        assert "********" in self.recorded
        assert self.pattern.decode() not in self.recorded
        assert self.pattern not in gw.stdout_path.read_bytes()  # nowhere in the record

    def read_until(self, text: bytes) -> bool:
        while text not in self.seen:
            data = self.chan.recv(65536)
            if not data:
                return False
            self.seen += data
        return True


def test_unbounded_input_at_a_password_prompt(watched_with_dropbear, keys):
    """40 MB sent at a password prompt without a newline, then Enter, in a terminal session (on
    dropbear: see the next test for OpenSSH). Not a disconnect: castgate holds one keystroke of
    a secret answer however long it is, and records it as ********; the session goes on. Without
    the limit castgate holds all 40 MB until Enter (a string that doubles as it grows: 64 MB,
    and the copies): +74 MB measured, and without end for a client that never presses Enter."""
    gw = watched_with_dropbear
    paste = PasswordPaste(gw, keys, f"{TEST_USER}@legacy.int")
    paste.memory.assert_bounded(24, "all of the answer until Enter: 64 MB for 40 MB")
    assert paste.answered, paste.seen[-300:]
    assert "afterwards" in paste.recorded


def test_long_answer_at_an_openssh_password_prompt(watched, keys):
    """The same 40 MB at a password prompt on OpenSSH. sshd answers every write to a terminal
    with echo off by an SSH_MSG_IGNORE as long as the write (cover against traffic analysis); a
    fast paste makes that longer than libssh's 256 KiB packet limit (in every run here), and
    castgate's connection to the target breaks. castgate then ends the session and says why;
    before, the session hung for good, neither relaying nor ending. Either way castgate's memory
    stays flat and the answer is recorded as ********."""
    gw = watched
    paste = PasswordPaste(gw, keys, f"{LOGIN}@db1.int")
    paste.memory.assert_bounded(24, "all of the answer until Enter: 64 MB for 40 MB")
    if not paste.answered:
        assert b"castgate: the connection to db1.int was lost" in paste.seen, paste.seen[-300:]
        end = gw.wait_event(lambda e: e["castgate"]["session"] == paste.session and
                            e["event"]["action"] == "session.end", what="session.end")
        assert end["castgate"]["end_reason"] == "target_disconnected"


def test_client_corrupting_its_stream(watched, keys):
    """Signed in, the client writes 256 MiB that are no SSH packets straight to its socket.
    libssh 0.10 stops parsing at the first bad packet, keeps the socket open and appends all
    that follows to its input buffer: castgate went on reading, +286 MB for these 256 MiB and
    without end, and the session never ended. castgate now stops reading at a protocol error
    and ends the session (end_reason protocol_error): an audit event, not a limit."""
    gw = watched
    t = paramiko_mallory(gw, keys)
    try:
        chan = t.open_session(timeout=15)
        chan.exec_command("sleep 60")
        session = mallory_session(gw)
        garbage = b"\xff" * MB
        with Memory(gw) as memory:
            sent = 0
            t.sock.settimeout(10)  # paramiko's 0.1 s would end the flood whenever castgate lags
            try:
                while sent < 256:  # on the socket: paramiko's own state does not matter now
                    t.sock.sendall(garbage)
                    sent += 1
            except OSError:
                pass
            try:
                end = gw.wait_event(lambda e: e["castgate"]["session"] == session and
                                    e["event"]["action"] == "session.end", what="session.end")
            except TimeoutError_:
                end = None
    finally:
        t.close()
    memory.assert_bounded(16, "all that arrives: 256 MiB and more")
    assert sent < 256, "castgate read all 256 MiB"
    assert end, "the session did not end"
    assert end["castgate"]["end_reason"] == "protocol_error"


def test_pending_request_flood(watched, keys):
    """Thousands of requests sent right after opening a session channel, before any program:
    signals (which libssh hands to castgate's callback, outside the request budget) and
    window-changes, queued behind a pty-req that waits for the target. castgate hangs up past
    --max-pending-requests (32 per channel; here) or --max-request-rate (when the first is
    disabled), whichever comes first. Without both, every request waits in castgate's queue for
    as long as the one ahead of it waits at the target: ~100 bytes held for every ~100 the
    client sends, for as long as the target is slow to answer (OpenSSH answers here within
    milliseconds, and the queue drains)."""
    gw = watched
    t = paramiko_mallory(gw, keys)
    try:
        chan = t.open_session(timeout=15)
        session = mallory_session(gw)

        def request(i: int):
            if i % 2:
                channel_request(t, chan, "signal", "WINCH")
            else:
                chan.resize_pty(width=80, height=24)

        with Memory(gw) as memory:
            pty_req(t, chan, 80, 24)
            flood(t, request, 5000)
            exceeded = limit_event(gw, t, session)
    finally:
        t.close()
    memory.assert_bounded(16, "~100 bytes per request, for as long as the target is slow")
    assert_limit(gw, session, exceeded, {"pending_requests", "request_rate"})
