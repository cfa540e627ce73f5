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
import signal
import urllib.request

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
