"""Attacks on the analyst, through the record.

Two attackers: one with write access to the log store, who forges, cuts and appends lines so that
the player shows something that did not happen; and a user of the gateway who puts terminal escape
sequences into what gets recorded, so that reading the record acts on the analyst's terminal.

castgate-player must never show what it did not verify (export and html with --key render only
the events the signed final event vouches for), must report every broken line naming a session
as a problem of that session, and must escape control characters in everything it prints.

The log-store attacks tamper with a copy of a real record made by castgate, sshd and ssh; the
gateway itself is not attacked there, so those tests have no bystander. The escape-sequence attack
goes through the gateway and follows the attacker suite's shape (tests/e2e/attacker.py).
"""

from __future__ import annotations

import json
import pathlib

import pytest

from attacker import Bystander, marker, still_serving, target_gateway  # noqa: F401
from harness import LOGIN, player, run

pytestmark = pytest.mark.timeout(240)

ESC = b"\x1b"
C1_CSI = "\u009b".encode()  # an 8-bit CSI, as UTF-8


def record_exec_session(gw, keys, command: str) -> str:
    """mallory runs `command` on db1.int; returns the session once its record has ended."""
    before = {e["castgate"]["session"] for e in gw.events()}
    r = gw.ssh(keys.eve, command, f"{LOGIN}@db1.int")
    assert r.returncode == 0, r.stderr
    end = gw.wait_event(lambda e: e["event"]["action"] == "session.end" and
                        e["castgate"]["session"] not in before, what="the session's end")
    return end["castgate"]["session"]


def session_indexes(lines: list[bytes], session: str) -> list[int]:
    return [i for i, l in enumerate(lines) if json.loads(l)["castgate"]["session"] == session]


def write_log(path: pathlib.Path, lines: list[bytes]) -> pathlib.Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def cut_after_session(line: bytes, session: str) -> bytes:
    """The first part of `line`, cut a little after it names the session (a half-written line)."""
    at = line.index(b'"session":"' + session.encode() + b'"')
    cut = line[:at + len(session) + 16]
    assert len(cut) < len(line)
    return cut


def page_data(page: pathlib.Path) -> dict:
    """The data block of a replay page, as the page's script reads it."""
    html = page.read_text()
    block = html.split('<script id="castgate-data" type="application/json">', 1)[1]
    return json.loads(block.split("</script>", 1)[0])


def test_forged_cut_and_junk_lines_are_never_shown_and_are_reported(target_gateway, keys,
                                                                     tmp_path):
    gw = target_gateway
    real, fake = marker("real"), marker("FORGED")
    session = record_exec_session(gw, keys, f"echo {real}")
    assert gw.stop() == 0  # the store holds finished records only
    lines = gw.raw_lines()
    idx = session_indexes(lines, session)
    output = next(i for i in idx if real.encode() in lines[i] and
                  json.loads(lines[i])["event"]["action"] == "asciicast.output")
    # The attacker's copy of the store: a forged line with the real one's seq, placed before all
    # of the session's lines; a half-written copy of the session's start; junk naming the session.
    forged = lines[output].replace(real.encode(), fake.encode())
    half = cut_after_session(lines[idx[0]], session)
    junk = b'{"castgate":{"session":"' + session.encode() + b'","note":"appended by hand'
    tampered = list(lines)
    tampered.insert(idx[0], forged)
    tampered.insert(idx[0] + 3, half)
    tampered.append(junk)
    log = write_log(tmp_path / "tampered.jsonl", tampered)
    half_at = f"{log}:{idx[0] + 4}"
    junk_at = f"{log}:{len(tampered)}"

    # Without a key the exporter keeps the first line of each seq: the attack works there.
    r = player("export", "--session", session, str(log))
    assert r.returncode == 0 and fake.encode() in r.stdout

    # verify: the session fails, with the forged and the broken lines among its problems, whether
    # it reads every line or only the session's.
    for selection in ([], ["--session", session]):
        r = player("verify", "--key", str(keys.recording_pub), *selection, str(log))
        out = r.stdout.decode()
        assert r.returncode == 1, out
        assert f"FAILED {session}" in out
        assert "appears twice with different content" in out
        assert f"{half_at} names this session but is not valid JSON" in out, out
        assert f"{junk_at} names this session but is not valid JSON" in out, out
    # The untouched sessions of the same file still verify.
    r = player("verify", "--key", str(keys.recording_pub), "--json", str(log))
    verdicts = {v["session"]: v for v in map(json.loads, r.stdout.splitlines())}
    assert not verdicts[session]["ok"]
    assert all(v["ok"] for s, v in verdicts.items() if s != session), verdicts

    # export --key: the real output, never the forged; NOT VERIFIED and why, on stderr.
    r = player("export", "--session", session, "--key", str(keys.recording_pub), str(log))
    assert r.returncode == 1
    assert real.encode() in r.stdout and fake.encode() not in r.stdout
    err = r.stderr.decode()
    assert "NOT VERIFIED" in err and f"{half_at} names this session" in err, err
    cast = r.stdout.decode().splitlines()
    assert json.loads(cast[0])["version"] == 2
    assert any(real in json.loads(l)[2] for l in cast[1:])

    # html --key: the page holds the real output, not the forged text, and says what is wrong.
    page = tmp_path / "tampered.html"
    r = player("html", "--session", session, "--key", str(keys.recording_pub), "-o", str(page),
               str(log))
    assert r.returncode == 1, r.stderr
    assert fake not in page.read_text()
    data = page_data(page)
    assert real in data["channels"][0]["cast"]
    assert not data["verification"]["ok"]
    problems = data["verification"]["problems"]
    assert any(p.startswith(f"{junk_at} names this session") for p in problems), problems
    assert {e["castgate"]["session"] for e in data["events"]} == {session}


def test_a_truncated_record_shows_nothing_and_an_altered_one_only_what_follows(target_gateway,
                                                                              keys, tmp_path):
    gw = target_gateway
    real = marker("real")
    session = record_exec_session(gw, keys, f"echo {real}")
    assert gw.stop() == 0
    lines = gw.raw_lines()
    idx = session_indexes(lines, session)
    log = write_log(tmp_path / "truncated.jsonl", [l for i, l in enumerate(lines) if i != idx[-1]])

    r = player("export", "--session", session, "--key", str(keys.recording_pub), str(log))
    assert r.returncode == 1 and r.stdout == b""
    err = r.stderr.decode()
    assert f"no event of session {session} verifies" in err and "truncated" in err, err

    page = tmp_path / "truncated.html"
    r = player("html", "--session", session, "--key", str(keys.recording_pub), "-o", str(page),
               str(log))
    assert r.returncode == 1
    data = page_data(page)
    assert data["events"] == [] and data["channels"] == []
    assert not data["verification"]["ok"]
    assert any("truncated" in p for p in data["verification"]["problems"])
    assert real not in page.read_text()

    # An altered event in the middle: only what follows it is still vouched for.
    altered = list(lines)
    output = next(i for i in idx if real.encode() in lines[i] and b'"asciicast.output"' in lines[i])
    altered[output] = lines[output].replace(real.encode(), marker("edit").encode())
    log = write_log(tmp_path / "altered.jsonl", altered)
    page = tmp_path / "altered.html"
    r = player("html", "--session", session, "--key", str(keys.recording_pub), "-o", str(page),
               str(log))
    assert r.returncode == 1
    data = page_data(page)
    shown = sorted(e["castgate"]["seq"] for e in data["events"])
    after = [json.loads(lines[i])["castgate"]["seq"] for i in idx if i > output and
             b'"asciicast":{' not in lines[i]]
    assert shown == after and shown, (shown, after)
    assert data["channels"] == []  # the channel's header came before the altered event


def test_escape_sequences_in_a_login_cannot_reach_the_analysts_terminal(target_gateway, keys,
                                                                        tmp_path):
    gw = target_gateway
    bystander = Bystander(gw, keys)
    try:
        # ssh refuses control characters in a user name given on its command line, not in one
        # read from a configuration file.
        config = tmp_path / "mallory_ssh_config"
        config.write_text("Host evil\n  HostName 127.0.0.1\n  User \x1b[2Jevil@db1.int\n")
        r = run(gw.ssh_args(keys.eve, None, ["-F", str(config)]) + ["evil", "true"], timeout=30)
        assert r.returncode != 0  # refused by policy: mallory may only log in as LOGIN
        assert b"invalid characters" not in r.stderr, r.stderr
        denied = gw.wait_event(lambda e: e["event"]["action"] == "policy.denied" and
                               e["user"]["id"] == "mallory", what="the refusal")
        still_serving(gw, keys)
        bystander.finish()
    finally:
        bystander.close()
    r = player("list", "--denied", str(gw.stdout_path))
    assert r.returncode == 0
    assert ESC not in r.stdout and C1_CSI not in r.stdout
    row = next(l for l in r.stdout.decode().splitlines() if denied["castgate"]["session"] in l)
    if "\x1b" in denied.get("user", {}).get("target", {}).get("name", ""):
        assert "\\x1b[2Jevil" in row, row  # recorded as typed: shown, escaped
    # The machine-readable form keeps the value exact (JSON escapes it).
    r = player("list", "--denied", "--json", str(gw.stdout_path))
    rows = {j["session"]: j for j in map(json.loads, r.stdout.splitlines())}
    assert ESC not in r.stdout
    assert denied["castgate"]["session"] in rows


def test_escape_sequences_written_into_the_store_are_printed_escaped(target_gateway, keys,
                                                                     tmp_path):
    """An attacker with write access to the store needs no gateway to put escape sequences into
    the fields list and channels print; they are shown escaped, and valid non-ASCII stays
    readable."""
    gw = target_gateway
    session = record_exec_session(gw, keys, "echo hi")
    osc_title, clear, csi8 = "\x1b]0;pwned\x07", "\x1b[2J", "\u009b31m"
    tampered = []
    for line in gw.raw_lines():
        e = json.loads(line)
        action = e["event"]["action"]
        if e["castgate"]["session"] == session and action in ("session.start", "asciicast.header",
                                                                 "session.end"):
            e["user"]["email"] = osc_title + "mallory@example.com"
            e["destination"]["user"]["name"] = "jos\u00e9" + csi8
            e["destination"]["address"] = clear + "db1.int"
            if action == "session.end":
                e["castgate"]["end_reason"] = "closed\x7f\x1b[1A"
            if action == "asciicast.header":
                e["castgate"]["channel_kind"] = clear + "shell"
            line = json.dumps(e, ensure_ascii=False, separators=(",", ":")).encode()
        tampered.append(line)
    # And a forged session whose very id is an escape sequence.
    ghost = json.loads(tampered[-1])
    ghost["castgate"]["session"] = osc_title
    tampered.append(json.dumps(ghost, ensure_ascii=False, separators=(",", ":")).encode())
    log = write_log(tmp_path / "escapes.jsonl", tampered)

    r = player("list", str(log))
    assert r.returncode == 0
    row = next(l for l in r.stdout.splitlines() if session.encode() in l)
    for raw in (ESC, b"\x07", b"\x7f", C1_CSI):
        assert raw not in r.stdout, (raw, row)
    assert b"\\x1b]0;pwned\\x07mallory@example.com" in row
    assert b"\\x1b[2Jdb1.int" in row
    assert "jos\u00e9\\u009b31m".encode() in row  # josé stays readable
    assert b"closed\\x7f\\x1b[1A" in row

    r = player("channels", "--session", session, str(log))
    assert r.returncode == 0 and ESC not in r.stdout
    assert b"\\x1b[2Jshell" in r.stdout

    r = player("verify", "--key", str(keys.recording_pub), str(log))
    assert r.returncode == 1
    assert ESC not in r.stdout and b"\x07" not in r.stdout
    assert b"FAILED \\x1b]0;pwned\\x07" in r.stdout
