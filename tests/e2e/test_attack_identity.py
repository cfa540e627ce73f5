"""Attacks on identity: a name chosen at the identity provider, an email nobody verified, a key id
a certificate authority signed, a bound key used from elsewhere, and switches that would turn
recording off. Real clients (OpenSSH, paramiko) and a real OpenID Provider (npm oidc-provider)."""

import json
import subprocess

import pytest

from attacker import watching
from harness import CASTGATE, LOGIN, Gateway, keygen, pubkey, run, wait_until
from idp import Idp
from test_oidc import openssh_sign_in, paramiko_sign_in

pytestmark = pytest.mark.timeout(240)

POLICY = {"rules": [
    {"name": "alice-by-key", "identities": ["alice"], "targets": ["*"], "logins": [LOGIN]},
    {"name": "ci-certificates", "identities": ["cert:ci-ca:deploy-*"], "targets": ["*"],
     "logins": [LOGIN]},
    {"name": "verified-mail", "emails": ["*@verified.example"], "targets": ["*"],
     "logins": [LOGIN]},
]}

ACCOUNTS = {
    # Chose "alice" as their display name and user name at the provider.
    "mallory": {"preferred_username": "alice", "name": "alice"},
    # Claims an email at the trusted domain, unverified.
    "trudy": {"email": "trudy@verified.example"},
    # The same, verified by the provider.
    "victor": {"email": "victor@verified.example", "email_verified": True},
}


@pytest.fixture
def idp(tmp_path):
    server = Idp(tmp_path, accounts=ACCOUNTS)
    yield server
    server.stop()


@pytest.fixture
def gw(gateway_factory, sshd, idp, keys, tmp_path):
    ca = keygen(tmp_path / "ci-ca")
    cfg = idp.oidc_config(tmp_path / "oidc.json")
    g = gateway_factory([{"name": "db1.int", "host": "127.0.0.1", "port": sshd.port}],
                        [sshd.known_hosts_line()], policy=POLICY,
                        identities="\n".join([
                            f'identity="alice",groups="ops" {pubkey(keys.alice)}',
                            f'cert-authority,name="ci-ca",kind=workload {pubkey(ca)}']),
                        extra_args=["--oidc-config", str(cfg)])
    g.ca = ca
    with watching(g, keys):
        yield g


def denial_of(gw, user_id):
    return gw.wait_event(lambda e: e["event"]["action"] == "policy.denied" and
                         e["user"]["id"] == user_id, what=f"the denial of {user_id}")


def test_a_display_name_at_the_provider_grants_nothing(gw):
    r = paramiko_sign_in(gw, login="mallory", command="echo should-not-run")
    assert r is not None and b"should-not-run" not in r[1]
    denied = denial_of(gw, "oidc:mallory")
    assert denied["user"]["name"] == "alice"  # recorded for people to read, matched by nothing
    assert denied["castgate"]["denial"] == "policy"


def test_an_unverified_email_grants_nothing_and_a_verified_one_does(gw):
    r = paramiko_sign_in(gw, login="trudy", command="echo should-not-run")
    assert r is not None and b"should-not-run" not in r[1]
    denied = denial_of(gw, "oidc:trudy")
    assert denied["user"]["email"] == "trudy@verified.example"
    assert denied["castgate"]["identity"]["email_verified"] is False
    status, out = paramiko_sign_in(gw, login="victor", command="echo verified-ok")
    assert out == b"verified-ok\n"


def test_a_certificate_key_id_is_qualified_by_its_authority(gw, tmp_path):
    key = keygen(tmp_path / "bot")

    def certify(key_id):
        run(["ssh-keygen", "-q", "-s", str(gw.ca), "-I", key_id, "-n", LOGIN, "-V", "-5m:+10m",
             str(key) + ".pub"], check=True)

    certify("alice")  # the key id of a registered person: a different identity
    r = gw.ssh(key, "echo should-not-run", f"{LOGIN}@db1.int",
               extra=["-o", f"CertificateFile={key}-cert.pub"])
    assert b"should-not-run" not in r.stdout
    denial_of(gw, "cert:ci-ca:alice")
    certify("deploy-7")
    r = gw.ssh(key, "echo cert-ok", f"{LOGIN}@db1.int",
               extra=["-o", f"CertificateFile={key}-cert.pub"])
    assert r.stdout == b"cert-ok\n", r.stderr


def test_a_bound_key_signs_in_only_from_where_it_was_bound(gw, tmp_path):
    key = keygen(tmp_path / "laptop")
    term, _ = openssh_sign_in(gw, login="victor", key=key, command="echo first-time")
    try:
        assert "first-time" in term.screen()
    finally:
        term.close()
    bound = gw.wait_event(lambda e: e["event"]["action"] == "auth.success" and
                          "bound until" in e["castgate"].get("auth_detail", ""), what="the binding")
    assert "for 127.0.0.1" in bound["castgate"]["auth_detail"]
    # The same key, from the same address: no browser.
    r = gw.ssh(key, "echo again", f"{LOGIN}@db1.int")
    assert r.stdout == b"again\n", r.stderr
    # The same key from another address (a copy of the laptop's key elsewhere) is not enough.
    r = gw.ssh(key, "echo elsewhere", f"{LOGIN}@db1.int", extra=["-b", "127.0.0.2"])
    assert r.returncode == 255 and b"elsewhere" not in r.stdout
    wait_until(lambda: [e for e in gw.events() if e["event"]["action"] == "auth.partial" and
                        e["source"]["ip"] == "127.0.0.2"], 15, "the refusal from 127.0.0.2")


def test_recording_cannot_be_switched_off_by_environment_or_config_file(tmp_path, keys, sshd):
    args = ["--listen", "127.0.0.1:0", "--demo"]
    r = subprocess.run([CASTGATE, *args], capture_output=True, timeout=30,
                       env={"CASTGATE_BENCHMARK_DISABLE_RECORDING": "1", "PATH": "/usr/bin:/bin"})
    assert r.returncode != 0 and b"command line" in r.stderr
    config = tmp_path / "castgate.conf"
    config.write_text("benchmark-disable-recording = true\n")
    r = subprocess.run([CASTGATE, *args, "--config", str(config)], capture_output=True, timeout=30)
    assert r.returncode != 0 and b"benchmark-disable-recording" in r.stderr
    # On the command line it is accepted (benchmarks), and says so in the record.
    gw = Gateway(tmp_path, keys, [{"name": "db1.int", "host": "127.0.0.1", "port": sshd.port}],
                 [sshd.known_hosts_line()], extra_args=["--benchmark-disable-recording"])
    try:
        start = gw.wait_event(lambda e: e["event"]["action"] == "gateway.start")
        assert start["castgate"]["recording_enabled"] is False
    finally:
        gw.stop()
    actions = [json.loads(line)["event"]["action"] for line in gw.raw_lines()]
    assert [a for a in actions if not a.startswith("signer.")][-1] == "gateway.stop"
