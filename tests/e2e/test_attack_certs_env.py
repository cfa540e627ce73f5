"""Attacks through what a client presents: user certificates that OpenSSH would refuse, and
environment variables that change what the target's shell or programs run.

Certificates come from ssh-keygen where it will make them; it refuses to write a malformed
source-address, so those are written here per PROTOCOL.certkeys and signed with the CA's Ed25519
key (python3-cryptography), the way a careless or compromised issuing service could. They are
presented by the real OpenSSH client, which does not check critical options itself.
"""

from __future__ import annotations

import base64
import os
import pathlib
import secrets
import struct
import time

import pytest
from cryptography.hazmat.primitives import serialization

from attacker import ATTACK_POLICY, Bystander, attack_identities, still_serving
from harness import LOGIN, Sshd, keygen, pubkey, run, wait_until

pytestmark = pytest.mark.timeout(120)

CERT_TYPE = "ssh-ed25519-cert-v01@openssh.com"


@pytest.fixture
def ca(tmp_path) -> pathlib.Path:
    return keygen(tmp_path / "ci-ca")


@pytest.fixture
def cert_gateway(gateway_factory, sshd, keys, ca):
    """castgate with the attack identities and a trusted CA whose certificates name workloads in
    the ops group (which ATTACK_POLICY lets onto every target as LOGIN)."""
    identities = attack_identities(keys) + "\n" + \
        f'cert-authority,name="ci-ca",kind=workload,groups="ops" {pubkey(ca)}'
    return gateway_factory([{"name": "db1.int", "host": "127.0.0.1", "port": sshd.port}],
                           [sshd.known_hosts_line()], policy=ATTACK_POLICY, identities=identities)


# --- certificates written by hand (PROTOCOL.certkeys) ----------------------------------------------

def ssh_string(data: bytes | str) -> bytes:
    if isinstance(data, str):
        data = data.encode()
    return struct.pack(">I", len(data)) + data


def write_certificate(ca: pathlib.Path, key: pathlib.Path, key_id: str, principals: list[str],
                      critical_options: dict[str, str]) -> pathlib.Path:
    """Signs `key`.pub with `ca` as a user certificate valid for ten minutes, with the given
    critical options written as they are (no validation), and writes `key`-cert.pub."""
    ca_key = serialization.load_ssh_private_key(ca.read_bytes(), password=None)
    ca_blob = base64.b64decode(pubkey(ca).split()[1])
    key_blob = base64.b64decode(pubkey(key).split()[1])
    raw_public_key = key_blob[4 + len("ssh-ed25519") + 4:]
    assert len(raw_public_key) == 32
    now = int(time.time())
    options = b"".join(ssh_string(name) + ssh_string(ssh_string(value))
                       for name, value in sorted(critical_options.items()))
    extensions = b"".join(ssh_string(name) + ssh_string(b"") for name in ["permit-pty"])
    body = (ssh_string(CERT_TYPE) + ssh_string(secrets.token_bytes(32)) +
            ssh_string(raw_public_key) + struct.pack(">QI", 1, 1) + ssh_string(key_id) +
            ssh_string(b"".join(ssh_string(p) for p in principals)) +
            struct.pack(">QQ", now - 300, now + 600) + ssh_string(options) +
            ssh_string(extensions) + ssh_string(b"") + ssh_string(ca_blob))
    signature = ssh_string("ssh-ed25519") + ssh_string(ca_key.sign(body))
    cert = pathlib.Path(str(key) + "-cert.pub")
    cert.write_text(f"{CERT_TYPE} {base64.b64encode(body + ssh_string(signature)).decode()} "
                    f"{key_id}\n")
    return cert


def ssh_keygen_certificate(ca: pathlib.Path, key: pathlib.Path, key_id: str, *opts: str):
    run(["ssh-keygen", "-q", "-s", str(ca), "-I", key_id, "-V", "-5m:+10m", *opts,
         str(key) + ".pub"], check=True)
    return pathlib.Path(str(key) + "-cert.pub")


def sign_in_with(gw, key: pathlib.Path, cert: pathlib.Path, token: str):
    return gw.ssh(key, f"echo {token}", f"{LOGIN}@db1.int",
                  extra=["-o", f"CertificateFile={cert}"], timeout=30)


def failure_reasons(gw) -> list[str]:
    return [e["event"].get("reason", "") for e in gw.events()
            if e["event"]["action"] == "auth.failure"]


def test_hand_written_certificates_are_accepted_when_well_formed(cert_gateway, ca, tmp_path):
    """The hand-written certificates are right in every other respect: the refusals below are
    about the one thing each gets wrong."""
    key = keygen(tmp_path / "bot")
    cert = write_certificate(ca, key, "bot-well-formed", [LOGIN], {"source-address": "127.0.0.1"})
    r = sign_in_with(cert_gateway, key, cert, "hand-written-ok")
    assert r.stdout == b"hand-written-ok\n", r.stderr


def test_certificate_without_principals_is_refused(cert_gateway, ca, keys, tmp_path):
    gw = cert_gateway
    bystander = Bystander(gw, keys)
    try:
        key = keygen(tmp_path / "bot")
        cert = ssh_keygen_certificate(ca, key, "no-principals")  # no -n: valid for any login
        r = sign_in_with(gw, key, cert, "no-principals-in")
        assert b"no-principals-in" not in r.stdout
        assert r.returncode == 255
        gw.wait_event(lambda e: e["event"]["action"] == "auth.failure" and
                      "lacks a principal list" in e["event"].get("reason", ""),
                      what="auth.failure naming the missing principals")
        assert not [e for e in gw.events() if e["event"]["action"] == "auth.success" and
                    e["user"]["name"] == "no-principals"]
        bystander.finish()
    finally:
        bystander.close()
    still_serving(gw, keys)


# (source-address, how the certificate is made, accepted from 127.0.0.1?)
SOURCE_ADDRESSES = [
    ("127.0.0.1/32", "ssh-keygen", True),
    ("10.0.0.0/8", "ssh-keygen", False),
    ("10.0.0.0/abc", "by hand", False),  # atoi("abc") == 0: read as /0, it matched everything
    ("127.0.0.1/32,10.0.0.0/abc", "by hand", False),  # one bad entry spoils the list
    ("10.0.0.0/8,", "by hand", False),  # an empty entry
    ("127.0.0.0/33", "by hand", False),
    ("127.0.0.1/8", "by hand", False),  # bits past the prefix length: OpenSSH refuses it too
]


def test_source_address_is_read_strictly(cert_gateway, ca, keys, tmp_path):
    gw = cert_gateway
    for i, (allowed, how, accepted) in enumerate(SOURCE_ADDRESSES):
        key = keygen(tmp_path / f"bot{i}")
        key_id = f"bot-{i}"
        if how == "ssh-keygen":
            cert = ssh_keygen_certificate(ca, key, key_id, "-n", LOGIN,
                                          "-O", f"source-address={allowed}")
        else:
            cert = write_certificate(ca, key, key_id, [LOGIN], {"source-address": allowed})
        token = f"in-{i}-{secrets.token_hex(4)}"
        before = len(failure_reasons(gw))
        r = sign_in_with(gw, key, cert, token)
        if accepted:
            assert r.stdout == f"{token}\n".encode(), (allowed, r.stderr)
            continue
        assert token.encode() not in r.stdout, f"source-address={allowed!r} let 127.0.0.1 in"
        assert r.returncode == 255
        # The refusal reaches the client before the writer thread logs it: wait for the line.
        expected = ("may not be used from 127.0.0.1" if allowed == "10.0.0.0/8"
                    else "source-address is malformed")
        wait_until(lambda: any(expected in x for x in failure_reasons(gw)[before:]), 15,
                   f"auth.failure saying {expected!r} for source-address={allowed!r}")
    reasons = failure_reasons(gw)
    assert any('bad prefix length: "10.0.0.0/abc"' in x for x in reasons), reasons
    assert any("empty entry" in x for x in reasons), reasons
    assert any("bits set past the prefix length" in x for x in reasons), reasons
    still_serving(gw, keys)


# --- the environment ---------------------------------------------------------------------------

def test_dangerous_environment_never_reaches_the_target(gateway_factory, keys, tmp_path):
    """The target's sshd accepts any variable (AcceptEnv *) and the target's "env" is ["*"]:
    castgate is the only thing between mallory's LD_PRELOAD or BASH_ENV and the target."""
    target = Sshd(tmp_path, keys.ca_pub, extra="AcceptEnv *\n")
    try:
        gw = gateway_factory([{"name": "db1.int", "host": "127.0.0.1", "port": target.port,
                               "env": ["*"]}],
                             [target.known_hosts_line()], policy=ATTACK_POLICY,
                             identities=attack_identities(keys))
        # The operator is told at start-up which variables "*" would have let through.
        warnings = [l for l in gw.stderr().splitlines() if "never passes" in l]
        assert warnings, f"no start-up warning about env [\"*\"]:\n{gw.stderr()}"
        assert all(name in warnings[0] for name in ("LD_*", "BASH_ENV", "BASH_FUNC_*", "PATH"))
        mark = secrets.token_hex(4)
        bash_env = tmp_path / "bash_env"
        bash_env.write_text(f"echo BASH_ENV-RAN-{mark}\n")
        sent = {
            "LD_PRELOAD": f"/nonexistent/preload-{mark}.so",
            "BASH_ENV": str(bash_env),
            "GLIBC_TUNABLES": f"glibc.malloc.check={mark}",
            "BASH_FUNC_env%%": f"() {{ echo FUNCTION-RAN-{mark}; }}",
            "LANG": "C.UTF-8",
            "CASTGATE_TEST_PLAIN": f"plain-{mark}",
        }
        send = [a for name in sent for a in ("-o", f"SendEnv={name}")]
        # The client's own environment: LD_PRELOAD of a missing file only makes the local ssh
        # print a warning.
        env = dict(os.environ, **sent)
        args = gw.ssh_args(keys.eve, None, send) + [f"{LOGIN}@db1.int@127.0.0.1", "env"]
        r = run(args, timeout=60, env=env)
        out = r.stdout.decode(errors="replace")
        assert r.returncode == 0, r.stderr
        lines = out.splitlines()
        for name in ("LD_PRELOAD", "BASH_ENV", "GLIBC_TUNABLES", "BASH_FUNC_env%%"):
            assert not [l for l in lines if l.startswith(name + "=")], f"{name} reached the target"
        # Nothing mallory sent ran there either (BASH_ENV's script, or the exported function
        # that would replace `env` itself).
        assert mark not in out.replace(f"plain-{mark}", ""), out
        # Ordinary variables still pass.
        assert "LANG=C.UTF-8" in lines, out
        assert f"CASTGATE_TEST_PLAIN=plain-{mark}" in lines, out
        still_serving(gw, keys)
    finally:
        target.stop()

