"""Uploads to sinks (`tar x`, `cat > F`) as a hostile review attacked them, end to end through
real OpenSSH, bash and GNU tar: each test is tagged with its finding id (see
tests/asciicast/hostile_uploads_test.cpp). Each one's attack lands on the target; the record must
show it: what castgate cannot follow exactly as GNU tar reads it is a file.error, and the input
is recorded byte for byte from there; what is not exactly an upload sink is no summary at all."""

import io
import os
import pathlib
import subprocess
import tarfile

import pytest

from test_streams import of, output_text, session_run

pytestmark = pytest.mark.timeout(240)

HOSTILE = pathlib.Path(__file__).resolve().parents[1] / "asciicast/data/transfers/hostile"


def recorded_in_full(events, size):
    """No summary of the input: it is in the record (escaped, so at least as long)."""
    assert not [e for e in events if e["event"]["action"].startswith("stream.")
                and e["castgate"]["stream"]["direction"] == "input"]
    assert len(output_text(events, "asciicast.input")) >= size * 0.9


@pytest.mark.parametrize("archive", ["X-type", "x-then-L", "x-x", "g-path", "sparse-name",
                                     "sparse-ext", "pax-len-overflow", "chksum-b256"])
def test_H1_to_H6_H15_H16_headers_tar_reads_otherwise_are_recorded_in_full(gateway, keys, tmp_path, archive):
    dest = tmp_path / "home"
    dest.mkdir()
    data = (HOSTILE / f"{archive}.tar").read_bytes()
    r, events, _ = session_run(gateway, keys, f"tar xf - -C {dest}", input=data)
    assert (dest / ".bashrc").read_bytes().startswith(b"echo PWNED")  # GNU tar wrote it
    errors = of(events, "file.error")
    assert len(errors) == 1 and errors[0]["castgate"]["file"]["status"].startswith("not tar: ")
    assert ".bashrc" in output_text(events, "asciicast.input")
    assert not of(events, "stream.end")


def test_H7_a_member_under_a_symlink_of_the_archive_is_recorded_in_full(gateway, keys, tmp_path):
    dest = tmp_path / "home"
    (dest / ".ssh").mkdir(parents=True)
    data = (HOSTILE / "symlink-dir.tar").read_bytes()
    r, events, _ = session_run(gateway, keys, f"tar xf - -C {dest}", input=data)
    assert (dest / ".ssh/rc").exists()
    errors = of(events, "file.error")
    assert [e["castgate"]["file"]["status"] for e in errors] == [
        "not tar: a member under a symbolic link of the archive"]
    assert not of(events, "stream.end")


def test_H8_two_dash_C_options_are_no_upload_sink(gateway, keys, tmp_path):
    dest = tmp_path / "home"
    (dest / ".ssh").mkdir(parents=True)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        body = b"#!/bin/sh\necho from ssh rc\n" + os.urandom(4096)
        info = tarfile.TarInfo("rc")
        info.size = len(body)
        t.addfile(info, io.BytesIO(body))
    r, events, _ = session_run(gateway, keys, f"tar x -C {dest}/.ssh -C .", input=buf.getvalue())
    assert (dest / ".ssh/rc").exists()  # GNU tar: -C DIR then -C . is DIR
    recorded_in_full(events, len(buf.getvalue()))
    assert not of(events, "file.transfer")


def test_H9_a_newline_after_cat_is_no_upload(gateway, keys, tmp_path):
    dest = tmp_path / "x.bin"
    blob = os.urandom(64 << 10)
    r, events, _ = session_run(gateway, keys, f"cat\n > {dest}", input=blob)
    assert dest.read_bytes() == b""  # the shell ran `cat`, then `> x.bin`
    assert not of(events, "file.transfer")
    recorded_in_full(events, len(blob))


def test_H11_a_compressed_archive_is_no_upload_sink(gateway, keys, tmp_path):
    dest = tmp_path / "home"
    dest.mkdir()
    data = (HOSTILE / "tgz-fextra.tar.gz").read_bytes()
    r, events, _ = session_run(gateway, keys, f"tar xzf - -C {dest}", input=data)
    assert r.returncode == 0, r.stderr
    assert (dest / ".bashrc").read_bytes() == b"echo PWNED-from-bashrc\n"
    recorded_in_full(events, len(data))


def test_H12_strip_components_is_no_upload_sink(gateway, keys, tmp_path):
    dest = tmp_path / "home"
    (dest / ".ssh").mkdir(parents=True)
    data = (HOSTILE / "strip.tar").read_bytes()
    r, events, _ = session_run(gateway, keys, f"tar x -C {dest}/.ssh --strip-components=1", input=data)
    assert (dest / ".ssh/rc").exists()
    recorded_in_full(events, len(data))


def test_H0_a_newline_after_dash_C_runs_the_upload_in_bash_in_full_view(gateway, keys, tmp_path):
    """`tar x -C<newline> /bin/bash`: the target's shell runs `tar x -C` (fails) and then
    /bin/bash, which executes the upload (a valid tar archive whose member's data is a script cut
    into one character per line). It is no upload sink: the script is in the record."""
    marker = tmp_path / "pwned"
    archive = tmp_path / "shell-in-tar.tar"
    subprocess.run(["python3", str(HOSTILE / "make_shell_tar.py"), str(archive),
                    f"id > {marker}"], check=True)
    r, events, session = session_run(gateway, keys, "tar x -C\n /bin/bash", input=archive.read_bytes())
    assert marker.exists()  # bash ran the upload on the target
    assert not of(events, "stream.end")
    assert str(marker) in output_text(events, "asciicast.input").replace("\\\n", "")
