"""Reload without a restart: on SIGHUP, and when a mounted configuration (a Kubernetes ConfigMap:
files behind a `..data` symlink swapped at once) changes, castgate reads its targets, policy,
identities, known hosts and alert rules again. A valid new configuration applies to new
connections at once; live sessions go on under the rules they started with (their worker
process retires when they end); an invalid one is refused with the file and the place, and the
configuration in force stays. Real OpenSSH clients in terminals, a real OpenSSH target."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import urllib.request

import paramiko
import pytest

from attacker import ATTACK_POLICY, Bystander, attack_identities
from harness import LOGIN, keygen, pubkey, wait_until

pytestmark = pytest.mark.timeout(240)

DB1 = "db1.int"


def replace(path: pathlib.Path, content) -> None:
    """As an editor or a deployment tool does: a new file renamed over the old one."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_text(content if isinstance(content, str) else json.dumps(content))
    os.replace(tmp, path)


def reload_event(gw, count: int, outcome: str | None = None, timeout: float = 15) -> dict:
    """The `count`-th config.reload event (1-based), once written."""
    def find():
        found = [e for e in gw.events() if e["event"]["action"] == "config.reload"]
        return found[count - 1] if len(found) >= count else None
    e = wait_until(find, timeout, f"config.reload #{count}")
    if outcome:
        assert e["event"]["outcome"] == outcome, e
    return e


def metrics(gw) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{gw.health_port}/metrics", timeout=5) as r:
        return r.read().decode()


def metric(gw, name: str) -> float:
    for line in metrics(gw).splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def wait_metric(gw, name: str, value: float, timeout: float = 10) -> None:
    """/metrics is refreshed a few times a second: the value shows within a moment."""
    wait_until(lambda: metric(gw, name) == value, timeout, f"{name} == {value}")


def works(gw, key, target=DB1) -> bool:
    r = gw.ssh(key, "echo reachable", f"{LOGIN}@{target}", extra=["-o", "LogLevel=INFO"])
    return r.returncode == 0 and r.stdout == b"reachable\n"


def refusal(gw, key, target=DB1) -> bytes:
    r = gw.ssh(key, "echo should-not-run", f"{LOGIN}@{target}", extra=["-o", "LogLevel=INFO"])
    assert r.returncode != 0 and b"should-not-run" not in r.stdout
    return r.stderr


@pytest.fixture
def gw(gateway_factory, sshd, keys):
    return gateway_factory([{"name": DB1, "host": "127.0.0.1", "port": sshd.port}],
                           [sshd.known_hosts_line()], policy=ATTACK_POLICY,
                           identities=attack_identities(keys),
                           extra_args=["--health-listen", "127.0.0.1:0"])


def test_sighup_puts_a_new_policy_in_force_and_live_sessions_keep_theirs(gw, keys):
    alice = Bystander(gw, keys)  # alice's shell on db1.int, started under the old policy
    try:
        start = next(e for e in gw.events() if e["event"]["action"] == "session.start" and
                     e["castgate"]["session"] == alice.session)
        before = start["castgate"]["config"]
        # Alice leaves the ops group's rule: only the "dba" group may log in now.
        policy = {"rules": [{"name": "dba-only", "groups": ["dba"], "targets": ["*"],
                             "logins": [LOGIN]}]}
        replace(gw.dir / "policy.json", policy)
        os.kill(gw.proc.proc.pid, signal.SIGHUP)
        e = reload_event(gw, 1, "success")
        assert e["castgate"]["trigger"] == "SIGHUP"
        assert e["castgate"]["previous_config"] == before != e["castgate"]["config"]
        assert e["castgate"]["changed"] == [str(gw.dir / "policy.json")]
        assert e["castgate"]["workers_retiring"] == 2
        assert any(f["option"] == "--policy" and len(f["sha256"]) == 64
                   for f in e["castgate"]["files"])
        # New connections get the new rules at once...
        assert b"may not log in" in refusal(gw, keys.alice)
        denied = gw.wait_event(lambda e: e["event"]["action"] == "policy.denied" and
                               e["user"]["id"] == "alice", what="the refusal under the new policy")
        assert denied["castgate"]["denial"] == "policy"
        # ...the live one goes on under the rules it started with, recorded as before.
        alice.echo("still-here")
        # Alice's worker process retires when her session ends (the other one had none).
        wait_until(lambda: metric(gw, 'castgate_worker_processes{state="retiring"}') >= 1, 10,
                   "a retiring worker process")
        wait_metric(gw, 'castgate_config_reloads_total{outcome="success"}', 1)
        retiring = [e for e in gw.events() if e["event"]["action"] == "worker.retiring"]
        assert len(retiring) == 2 and all(r["castgate"]["config"] == before for r in retiring)
        alice.finish()  # ends cleanly; its record verifies on its own
        # Its worker process ends after its last connection; the other had none.
        wait_until(lambda: metric(gw, 'castgate_worker_processes{state="retiring"}') == 0, 15,
                   "the retired worker processes to end")
        stopped = {e["castgate"]["session"] for e in gw.events()
                   if e["event"]["action"] == "worker.stop"}
        assert {r["castgate"]["session"] for r in retiring} <= stopped
        assert "worker.lost" not in gw.actions()
        # The digest is of the files' bytes: the first policy back, the first digest back, and
        # new sessions say which configuration admitted them.
        replace(gw.dir / "policy.json", ATTACK_POLICY)
        os.kill(gw.proc.proc.pid, signal.SIGHUP)
        after = reload_event(gw, 2, "success")
        assert after["castgate"]["config"] == before
        assert works(gw, keys.alice)
        last = [e for e in gw.events() if e["event"]["action"] == "session.start"][-1]
        assert last["castgate"]["config"] == before
    finally:
        alice.term.close()


@pytest.mark.parametrize("case", ["invalid json", "unknown field", "fifo", "missing target key"])
def test_a_bad_configuration_is_refused_and_the_one_in_force_stays(gw, keys, case):
    policy_file = gw.dir / "policy.json"
    targets_file = gw.dir / "targets.json"
    if case == "invalid json":
        replace(policy_file, '{"rules": [{"name": "ops", "groups": ["ops"]')
        expected = "policy.json"
    elif case == "unknown field":
        replace(policy_file, {"rules": [{"name": "ops", "groups": ["ops"], "targets": ["*"],
                                         "logins": [LOGIN], "mfa_please": True}]})
        expected = "mfa_please"
    elif case == "fifo":  # would block a reader for ever
        policy_file.unlink()
        os.mkfifo(policy_file)
        expected = "is not a regular file"
    else:  # a target whose static key does not exist
        targets = json.loads(targets_file.read_text())
        targets["targets"].append({"name": "web1.int", "host": "127.0.0.1", "port": 22,
                                   "static_key": str(gw.dir / "no-such-key")})
        replace(targets_file, targets)
        expected = "no-such-key"
    os.kill(gw.proc.proc.pid, signal.SIGHUP)
    e = reload_event(gw, 1, "failure")
    assert expected in e["castgate"]["error"], e
    assert expected in gw.stderr() and "the configuration in force stays" in gw.stderr()
    wait_metric(gw, "castgate_config_last_reload_successful", 0)
    wait_metric(gw, 'castgate_config_reloads_total{outcome="failure"}', 1)
    wait_metric(gw, 'castgate_worker_processes{state="retiring"}', 0)
    # The old rules serve on: alice (ops) still works, nobody (no group) is still refused.
    assert works(gw, keys.alice)
    assert b"may not log in" in refusal(gw, keys.bob)
    # Not retried while nothing changes; a fixed file is taken at once, without a signal.
    if case == "fifo":
        policy_file.unlink()
    replace(policy_file, {"rules": [{"name": "everyone", "groups": ["ops"], "targets": ["*"],
                                     "logins": [LOGIN]}]})
    if case == "missing target key":
        replace(targets_file, {"targets": json.loads(targets_file.read_text())["targets"][:1]})
    e = reload_event(gw, 2)
    assert e["event"]["outcome"] == "success" and e["castgate"]["trigger"] == "file change", e
    wait_metric(gw, "castgate_config_last_reload_successful", 1)
    assert works(gw, keys.alice)


def configmap(directory: pathlib.Path, files: dict[str, str], version: int) -> None:
    """The layout kubelet gives a mounted ConfigMap: each name a symlink to ..data/NAME, and
    ..data a symlink to a timestamped directory, swapped in one rename on an update."""
    directory.mkdir(exist_ok=True)
    real = directory / f"..2026_12_01_{version:02d}"
    real.mkdir()
    for name, text in files.items():
        (real / name).write_text(text)
        link = directory / name
        if not link.is_symlink():
            link.symlink_to(pathlib.Path("..data") / name)
    tmp = directory / "..data_tmp"
    tmp.symlink_to(real.name)
    os.replace(tmp, directory / "..data")


def test_a_mounted_configmap_is_reloaded_when_it_changes(gateway_factory, sshd, keys, tmp_path):
    """Targets, known hosts, identities and alert rules, in a ConfigMap-like directory; no
    signal: castgate sees the files change."""
    mount = tmp_path / "config"
    targets = [{"name": DB1, "host": "127.0.0.1", "port": sshd.port}]
    files = {
        "targets.json": json.dumps({"targets": targets}),
        "policy.json": json.dumps(ATTACK_POLICY),
        "identities": attack_identities(keys) + "\n",
        "known_hosts": sshd.known_hosts_line() + "\n",
        "alerts.json": "[]",
    }
    configmap(mount, files, 1)
    gw = gateway_factory(targets, [sshd.known_hosts_line()],
                         extra_args=["--health-listen", "127.0.0.1:0",
                                     "--alert-rules", str(mount / "alerts.json")], start=False)
    # The harness wrote its own files: castgate reads the mounted ones instead.
    for option, name in [("--targets", "targets.json"), ("--policy", "policy.json"),
                         ("--identities", "identities"), ("--known-hosts", "known_hosts")]:
        gw.args[gw.args.index(option) + 1] = str(mount / name)
    gw.start()
    assert works(gw, keys.alice)
    newcomer = keygen(tmp_path / "newcomer")
    assert b"Permission denied" in refusal(gw, newcomer)  # not an identity yet
    assert b"web1.int" in refusal(gw, keys.alice, "web1.int")  # not a target yet

    # One update: a new target (same host, another name), a new identity, an alert rule.
    files["targets.json"] = json.dumps({"targets": targets + [
        {"name": "web1.int", "host": "127.0.0.1", "port": sshd.port}]})
    files["identities"] += (f'identity="newcomer",email="new@example.com",groups="ops",'
                            f'kind=human {pubkey(newcomer)}\n')
    files["alerts.json"] = json.dumps([
        {"name": "reload-canary", "severity": "high", "pattern": "reload-canary"}])
    configmap(mount, files, 2)
    e = reload_event(gw, 1, "success", timeout=20)
    assert e["castgate"]["trigger"] == "file change"
    assert sorted(e["castgate"]["changed"]) == sorted(
        str(mount / n) for n in ("targets.json", "identities", "alerts.json"))
    assert works(gw, keys.alice, "web1.int")
    assert works(gw, newcomer)
    r = gw.ssh(keys.alice, "echo reload-canary-$((40+2))", f"{LOGIN}@{DB1}")
    assert r.stdout == b"reload-canary-42\n"
    alert = gw.wait_event(lambda e: e["event"]["action"] == "alert", what="the new alert rule")
    assert alert["rule"]["name"] == "reload-canary"

    # Known hosts: the target's pin removed, sessions to it are refused (pins are checked).
    files["known_hosts"] = "# no pins\n"
    configmap(mount, files, 3)
    reload_event(gw, 2, "success", timeout=20)
    assert works(gw, keys.alice) is False
    # Put back: works again.
    files["known_hosts"] = sshd.known_hosts_line() + "\n"
    configmap(mount, files, 4)
    reload_event(gw, 3, "success", timeout=20)
    assert works(gw, keys.alice)
    wait_metric(gw, 'castgate_config_reloads_total{outcome="success"}', 3)


def test_a_stop_signal_ends_retiring_workers_too(gw, keys):
    """A live session on a retired worker process when castgate is stopped: drained like any
    other (closed after the grace period, its record complete), and castgate exits cleanly."""
    alice = Bystander(gw, keys)
    try:
        replace(gw.dir / "policy.json", {"rules": [{"name": "dba-only", "groups": ["dba"],
                                                    "targets": ["*"], "logins": [LOGIN]}]})
        os.kill(gw.proc.proc.pid, signal.SIGHUP)
        reload_event(gw, 1, "success")
        alice.echo("on-a-retired-worker")
        assert gw.stop() == 0
        end = gw.wait_event(lambda e: e["event"]["action"] == "session.end" and
                            e["castgate"]["session"] == alice.session, what="alice's end")
        assert end["castgate"]["end_reason"] == "gateway_shutdown"
        assert "worker.lost" not in gw.actions()
    finally:
        alice.term.close()


# --- what a reload must not leave open (hostile review) ------------------------------------------

def without_mallory(keys) -> str:
    return "\n".join(l for l in attack_identities(keys).splitlines() if "mallory" not in l) + "\n"


def revoke_mallory(gw, keys, count=1):
    replace(gw.dir / "identities", without_mallory(keys))
    os.kill(gw.proc.proc.pid, signal.SIGHUP)
    return reload_event(gw, count, "success")


def test_a_connection_from_before_a_reload_starts_no_new_session_under_the_old_rules(gw, keys):
    """mallory's key is revoked by a reload. Her ProxyJump connection from before keeps the jump
    it has (a live session goes on) but opens no new one, and ends after it; a stranger's
    connection that had not signed in yet is closed: both connect again, to the rules in force."""
    eve = paramiko.Ed25519Key.from_private_key_file(str(keys.eve))
    outer = paramiko.Transport(("127.0.0.1", gw.shared_port))
    pending = paramiko.Transport(("127.0.0.1", gw.shared_port))
    try:
        outer.start_client(timeout=15)
        outer.auth_publickey(LOGIN, eve)
        chan = outer.open_channel("direct-tcpip", (DB1, 22), ("127.0.0.1", 1), timeout=15)
        inner = paramiko.Transport(chan)
        inner.start_client(timeout=15)
        inner.auth_publickey(LOGIN, eve)
        live = inner.open_session(timeout=15)
        live.exec_command("read x; echo got-$x")
        pending.start_client(timeout=15)  # key exchange done, not signed in
        revoke_mallory(gw, keys)
        assert b"Permission denied" in refusal(gw, keys.eve)  # a new connection: revoked
        # The connection that was signing in is closed: no sign-in under the old identities.
        wait_until(lambda: not pending.is_active(), 10, "the pending connection to close")
        with pytest.raises(Exception):
            pending.auth_publickey(f"{LOGIN}@{DB1}", eve)
        # No new jump through the old connection...
        with pytest.raises(paramiko.ChannelException):
            outer.open_channel("direct-tcpip", (DB1, 22), ("127.0.0.1", 1), timeout=15)
        denied = gw.wait_event(lambda e: e["event"]["action"] == "jump.denied", what="jump.denied")
        assert "configuration was reloaded" in denied["event"]["reason"]
        # ...while the live one goes on, and the connection ends after it.
        live.sendall(b"x\n")
        assert live.makefile().read() == b"got-x\n"
        inner.close()
        wait_until(lambda: not outer.is_active(), 15, "the old connection to close")

        def ends():
            return [e for e in gw.events() if e["event"]["action"] in ("session.end", "connection.closed")
                    and e["castgate"].get("end_reason") == "config_reloaded"]
        # The last lines reach the log after the client saw the connection close.
        wait_until(lambda: len(ends()) >= 2, 10, "both connections' last events")
        assert len(ends()) == 2, ends()  # the stranger's and mallory's outer connection
    finally:
        for t in (outer, pending):
            t.close()


def test_sessions_held_across_reloads_never_block_one(gateway_factory, sshd, keys):
    """A signed-in user holding a session open after every reload keeps old worker processes
    alive: past --max-retired-workers the oldest end their sessions (said so), and no reload,
    the revocation of that very user included, is ever refused for it."""
    gw = gateway_factory([{"name": DB1, "host": "127.0.0.1", "port": sshd.port}],
                         [sshd.known_hosts_line()], policy=ATTACK_POLICY,
                         identities=attack_identities(keys),
                         extra_args=["--health-listen", "127.0.0.1:0", "--worker-processes", "1",
                                     "--max-retired-workers", "2"])
    eve = paramiko.Ed25519Key.from_private_key_file(str(keys.eve))
    held = []

    def hold():
        t = paramiko.Transport(("127.0.0.1", gw.shared_port))
        t.start_client(timeout=15)
        t.auth_publickey(f"{LOGIN}@{DB1}", eve)
        t.open_session(timeout=15).exec_command("sleep 600")
        held.append(t)

    try:
        hold()
        for n in range(1, 4):
            policy = dict(ATTACK_POLICY, rules=ATTACK_POLICY["rules"] + [
                {"name": f"unused-{n}", "groups": ["nobody"], "targets": ["*"], "logins": [LOGIN]}])
            replace(gw.dir / "policy.json", policy)
            os.kill(gw.proc.proc.pid, signal.SIGHUP)
            reload_event(gw, n, "success")
            hold()
        # Three retired, two allowed: the oldest ended its session (after the 5 s grace).
        end = gw.wait_event(lambda e: e["event"]["action"] == "session.end" and
                            e["castgate"]["end_reason"] == "config_reloaded", timeout=20,
                            what="the oldest retired session's end")
        wait_metric(gw, 'castgate_worker_processes{state="retiring"}', 2, timeout=20)
        revoke_mallory(gw, keys, count=4)  # never refused
        assert b"Permission denied" in refusal(gw, keys.eve)
    finally:
        for t in held:
            t.close()


def test_a_configuration_beside_the_signers_keys_is_not_reloaded_and_says_why(
        gateway_factory, sshd, keys, tmp_path):
    keydir = tmp_path / "keys"
    keydir.mkdir()
    shutil.copy(keys.ca, keydir / "user_ca")
    gw = gateway_factory([{"name": DB1, "host": "127.0.0.1", "port": sshd.port}],
                         [sshd.known_hosts_line()], policy=ATTACK_POLICY,
                         identities=attack_identities(keys), start=False)
    gw.args[gw.args.index("--user-ca-key") + 1] = str(keydir / "user_ca")
    (keydir / "policy.json").write_text(json.dumps(ATTACK_POLICY))
    gw.args[gw.args.index("--policy") + 1] = str(keydir / "policy.json")
    gw.start()
    wait_until(lambda: "castgate cannot reload its configuration" in gw.stderr(), 10, "warning")
    replace(gw.dir / "identities", without_mallory(keys))
    os.kill(gw.proc.proc.pid, signal.SIGHUP)
    e = reload_event(gw, 1, "failure")
    assert "also holds the signer's keys" in e["castgate"]["error"], e
    assert works(gw, keys.eve)  # the revocation is not in force: the files were not read


def test_a_static_key_that_is_the_signers_key_is_refused(gw, keys):
    """A hard link to the user CA beside the rules, named as a target's static key: the CA's
    private key never goes into a worker process."""
    os.link(keys.ca, gw.dir / "backup_of_ca")
    targets = json.loads((gw.dir / "targets.json").read_text())
    targets["targets"].append({"name": "probe.int", "host": "127.0.0.1", "port": 22,
                               "static_key": str(gw.dir / "backup_of_ca")})
    replace(gw.dir / "targets.json", targets)
    e = reload_event(gw, 1, "failure", timeout=20)
    assert "is the signer's key" in e["castgate"]["error"], e
    os.unlink(gw.dir / "backup_of_ca")


def test_a_file_named_by_a_refused_reload_is_watched_until_it_appears(gw, keys, sshd, tmp_path):
    """targets.json names a static key not there yet (a Secret synced after the ConfigMap): the
    reload is refused, and taken as soon as the key arrives."""
    later = gw.dir / "later_key"
    targets = json.loads((gw.dir / "targets.json").read_text())
    targets["targets"].append({"name": "later.int", "host": "127.0.0.1", "port": sshd.port,
                               "static_key": str(later)})
    replace(gw.dir / "targets.json", targets)
    e = reload_event(gw, 1, "failure", timeout=20)
    assert "later_key" in e["castgate"]["error"], e
    keygen(tmp_path / "later_key")
    os.rename(tmp_path / "later_key", later)
    e = reload_event(gw, 2, "success", timeout=20)
    assert e["castgate"]["trigger"] == "file change"
