#!/usr/bin/python3
"""castgate benchmarks, side by side with OpenSSH on this machine, in one run.

  direct    OpenSSH ssh -> OpenSSH sshd (the target)
  jump      OpenSSH ssh -> OpenSSH sshd bastion (ProxyJump) -> target
  castgate  OpenSSH ssh -> castgate (recording on, stdout to a file) -> target

Every client uses chacha20-poly1305@openssh.com. Figures are medians of several runs; the
report (bench/results/report.md, and JSON next to it) gives ratios against direct and jump.
Usage: bench.py [--quick] [--only NAME,...]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import pty
import resource
import select
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests" / "e2e"))

import harness  # noqa: E402
from harness import TEST_USER, Gateway, Keys, Sshd, keygen, pubkey  # noqa: E402

CIPHER = ["-o", "Ciphers=chacha20-poly1305@openssh.com"]
GIB = 1 << 30


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


def family(pid: int) -> list[int]:
    """castgate and the processes it started (its signer and worker processes)."""
    pids = [pid]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        pids.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return pids


def proc_cpu(pid: int) -> float:
    """CPU seconds of castgate, its live children and the children it has reaped."""
    total = 0
    for p in family(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                st = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(st[11]) + int(st[12]) + (int(st[13]) + int(st[14]) if p == pid else 0)
    return total / os.sysconf("SC_CLK_TCK")


def proc_rss_kib(pid: int) -> int:
    """Resident memory of castgate and the processes it started."""
    total = 0
    for p in family(pid):
        try:
            for line in open(f"/proc/{p}/status"):
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


# Every path logs in as the unprivileged account scripts/test-setup.sh creates: a clean login
# shell, the same for all three paths (a developer's own dotfiles would be measured otherwise).
LOGIN = TEST_USER



# Every benchmark client comes from 127.0.0.1 and opens sessions in waves of 50: lift the
# per-source and pre-authentication limits that protect a real deployment from one address.
BENCH_LIMITS = ["--max-unauthenticated", "2000", "--max-startups", "2000:30:2000",
                "--per-source-max-startups", "2000", "--max-request-rate", "1000"]

class Setup:
    """The target, a stock OpenSSH bastion, castgate (recording on and off), and the clients'
    arguments for each path."""

    def __init__(self, work: pathlib.Path):
        self.work = work
        os.chmod(work, 0o1777)  # the test login reads the payloads and writes the sftp uploads
        self.keys = Keys(work / "keys")
        # The direct and jump paths sign in with a plain authorized key (one offer, no
        # certificate), castgate with its per-session certificate.
        self.client_key = keygen(work / "client")
        auth = work / "authorized_keys"
        auth.write_text(pubkey(self.client_key) + "\n")
        extra = f"AuthorizedKeysFile {auth}\nMaxSessions 100\nMaxStartups 2000:30:4000\n"
        self.target = Sshd(work, self.keys.ca_pub, extra=extra)
        self.bastion = Sshd(work, self.keys.ca_pub, extra=f"AuthorizedKeysFile {auth}\n")
        self.known = work / "known_hosts"
        self.known.write_text(self.target.known_hosts_line() + "\n" + self.bastion.known_hosts_line() + "\n")
        identities = f'identity="bench",groups="ops" {pubkey(self.keys.alice)}'
        targets = [{"name": "target", "host": "127.0.0.1", "port": self.target.port}]
        self.castgate = Gateway(work, self.keys, targets, [self.target.known_hosts_line()],
                                identities=identities, bound={"target": "target"},
                                stdout_path=work / "castgate-events.jsonl",
                                extra_args=BENCH_LIMITS)
        self.bare = Gateway(work, self.keys, targets, [self.target.known_hosts_line()],
                            identities=identities, bound={"target": "target"},
                            stdout_path=work / "castgate-norecording-events.jsonl",
                            extra_args=["--benchmark-disable-recording"] + BENCH_LIMITS)

    def common(self):
        return ["-F", "/dev/null", "-o", f"UserKnownHostsFile={self.known}", "-o",
                "StrictHostKeyChecking=yes", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes",
                "-o", "IdentitiesOnly=yes", *CIPHER]

    def ssh(self, path: str, tty: bool = False) -> list[str]:
        t = ["-tt"] if tty else []
        if path == "direct":
            return ["ssh", *self.common(), *t, "-i", str(self.client_key), "-p",
                    str(self.target.port), f"{LOGIN}@127.0.0.1"]
        if path == "jump":
            jump = f"ssh -W %h:%p {' '.join(self.common())} -i {self.client_key} -p {self.bastion.port} {LOGIN}@127.0.0.1"
            return ["ssh", *self.common(), *t, "-i", str(self.client_key), "-o",
                    f"ProxyCommand={jump}", "-p", str(self.target.port), f"{LOGIN}@127.0.0.1"]
        gw = self.castgate if path == "castgate" else self.bare
        return ["ssh", "-F", "/dev/null", "-o", "UserKnownHostsFile=/dev/null", "-o",
                "StrictHostKeyChecking=no", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes",
                "-o", "IdentitiesOnly=yes", *CIPHER, *t, "-i", str(self.keys.alice), "-p",
                str(gw.bound_ports["target"]), f"{LOGIN}@127.0.0.1"]

    def sftp(self, path: str) -> list[str]:
        args = self.ssh(path)
        # sftp takes the same options, with -P for the port and the destination last.
        port = args[args.index("-p") + 1]
        opts = [a for a in args[1:-1] if a not in ("-p", port)]
        return ["sftp", *opts, "-P", port, "-b", "-", args[-1]]

    def truncate_recordings(self):
        """The gateways append to their stdout files; a long benchmark would fill the disk."""
        for gw in (self.castgate, self.bare):
            os.truncate(gw.stdout_path, 0)

    def stop(self):
        for gw in (self.castgate, self.bare):
            gw.stop()
        self.target.stop()
        self.bastion.stop()


PATHS = ["direct", "jump", "castgate"]


def bench_bulk(s: Setup, reps: int, size: int, payloads: dict) -> dict:
    """Download and upload through exec; MB/s, median of `reps`. For castgate also the bytes its
    event log grew by per byte relayed (the record of the transfer), median."""
    out = {}
    log = s.castgate.stdout_path

    def timed(path, args, stdin=None):
        before = log.stat().st_size if path == "castgate" else 0
        t = time.monotonic()
        r = subprocess.run(s.ssh(path) + args, stdin=stdin, stdout=subprocess.DEVNULL, timeout=900)
        elapsed = time.monotonic() - t
        assert r.returncode == 0
        time.sleep(0.2 if path == "castgate" else 0)  # the writer thread's last lines
        return elapsed, (log.stat().st_size - before) / size if path == "castgate" else 0

    # Rounds interleaved (each round runs every path once), so a machine that slows down for a
    # while slows every path alike; the bench then takes each path's median.
    def upload(path, remote_file):
        # An upload lands in a file (`cat > FILE`, what castgate recognises as an upload: its
        # binary input is summarised like downloads; a command that could run its input is
        # recorded in full).
        landing = s.work / "upload.bin"
        with subprocess.Popen(["head", "-c", str(size), remote_file],
                              stdout=subprocess.PIPE) as head:
            run = timed(path, [f"cat > {landing}"], stdin=head.stdout)
        landing.unlink()
        return run

    for name, remote_file in payloads.items():
        for kind in ("download", "upload"):
            runs = {path: [] for path in PATHS}
            for _ in range(reps):
                for path in PATHS:
                    runs[path].append(upload(path, remote_file) if kind == "upload" else
                                      timed(path, [f"head -c {size} {remote_file}"]))
            for path in PATHS:
                out[f"{kind}/{name}/{path}"] = size / median([t for t, _ in runs[path]]) / 1e6
            out.setdefault("log-ratio", {})[f"{kind}/{name}"] = median(
                [g for _, g in runs["castgate"]])
    return out


def bench_sftp(s: Setup, reps: int, src: pathlib.Path, size: int) -> dict:
    out = {}
    for op in ("get", "put"):
        times = {path: [] for path in PATHS}
        for _ in range(reps):  # rounds interleaved, as in bench_bulk
            for path in PATHS:
                dst = s.work / f"sftp-{op}.bin"
                cmd = f"get {src} {dst}\n" if op == "get" else f"put {src} {dst}\n"
                t = time.monotonic()
                r = subprocess.run(s.sftp(path), input=cmd.encode(), stdout=subprocess.DEVNULL,
                                   timeout=900)
                assert r.returncode == 0
                times[path].append(time.monotonic() - t)
                dst.unlink(missing_ok=True)
        for path in PATHS:
            out[f"sftp-{op}/{path}"] = size / median(times[path]) / 1e6
    return out


def bench_git_rsync(s: Setup, reps: int, payload: pathlib.Path, size: int) -> dict:
    """git clone and push of a repository holding `payload`, rsync of it up and down; MB/s of the
    payload's size, median of `reps`. The target's repositories and directories belong to the
    login the paths use (git refuses repositories of other owners)."""
    out = {}
    src = s.work / "git-source"
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
    subprocess.run(git + ["init", "-q", "-b", "main", str(src)], check=True)
    shutil.copy(payload, src / "payload.bin")
    subprocess.run(git + ["-C", str(src), "add", "payload.bin"], check=True)
    subprocess.run(git + ["-C", str(src), "commit", "-qm", "payload"], check=True)

    def target_repo(name: str, bare_from: pathlib.Path | None) -> pathlib.Path:
        repo = s.work / name
        shutil.rmtree(repo, ignore_errors=True)
        args = ["clone", "-q", "--bare", str(bare_from), str(repo)] if bare_from else ["init", "-q", "--bare", str(repo)]
        subprocess.run(git + args, check=True, stdout=subprocess.DEVNULL)
        shutil.chown(repo, LOGIN)
        for root, dirs, files in os.walk(repo):
            for n in dirs + files:
                shutil.chown(os.path.join(root, n), LOGIN)
        return repo

    log = s.castgate.stdout_path
    grown = {}  # castgate's event log bytes per byte of payload, per operation

    def timed(command: list[str], env: dict | None = None, name: str = "") -> float:
        before = log.stat().st_size
        t = time.monotonic()
        r = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=900)
        elapsed = time.monotonic() - t
        assert r.returncode == 0, r.stderr.decode()
        time.sleep(0.2)  # the writer thread's last lines
        grown.setdefault(name, []).append((log.stat().st_size - before) / size)
        return elapsed

    served = target_repo("git-served.git", src)
    times = {}  # "git-clone/jump" -> seconds of each round
    for _ in range(reps):  # rounds interleaved, as in bench_bulk
        for path in PATHS:
            ssh = s.ssh(path)
            env = {**os.environ, "GIT_SSH_COMMAND": shlex.join(ssh[:-1]), "GIT_SSH_VARIANT": "ssh"}
            remote = ssh[-1]

            def run(name, args, env=None):
                times.setdefault(f"{name}/{path}", []).append(timed(args, env, f"{name}/{path}"))

            clone = s.work / "git-clone"
            shutil.rmtree(clone, ignore_errors=True)
            run("git-clone", git + ["clone", "-q", f"{remote}:{served}", str(clone)], env)
            shutil.rmtree(clone)
            pushed = target_repo("git-pushed.git", None)
            run("git-push", git + ["-C", str(src), "push", "-q", f"{remote}:{pushed}", "main"], env)
            shutil.rmtree(pushed)
            rsh = shlex.join(ssh[:-1])
            up = s.work / "rsync-up"
            run("rsync-up", ["rsync", "-a", "-e", rsh, str(payload), f"{remote}:{up}/"])
            shutil.rmtree(up)
            down = s.work / "rsync-down"
            run("rsync-down", ["rsync", "-a", "-e", rsh, f"{remote}:{payload}", f"{down}/"])
            shutil.rmtree(down)
    for key, samples in times.items():
        out[key] = size / median(samples) / 1e6
        name, path = key.split("/")
        if path == "castgate":
            out.setdefault("log-ratio", {})[name] = median(grown[key])
    shutil.rmtree(served)
    shutil.rmtree(src)
    return out


class PtyClient:
    """An ssh client in a real pseudo-terminal, running `cat` in a remote pty: each byte typed is
    echoed by the remote terminal; the time until it comes back is the echo latency."""

    def __init__(self, args: list[str]):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            import tty
            tty.setraw(0)  # no local echo: only the remote terminal's echo comes back
            os.execvp(args[0], args + ["stty raw echo; exec cat"])

    def read_until(self, token: bytes, timeout: float) -> bool:
        buf = b""
        deadline = time.monotonic() + timeout
        while token not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            r, _, _ = select.select([self.fd], [], [], left)
            if r:
                try:
                    buf += os.read(self.fd, 4096)
                except OSError:
                    return False
        return True

    def ready(self, timeout=30):
        # Wait for the remote cat: type a marker until it echoes.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if os.waitpid(self.pid, os.WNOHANG)[0]:
                raise AssertionError("ssh exited before the remote terminal echoed")
            os.write(self.fd, b"R")
            if self.read_until(b"R", 1.0):
                return True
        raise AssertionError("the remote terminal never echoed")

    def echo_rtt(self, n: int) -> list[float]:
        rtts = []
        for i in range(n):
            ch = bytes([97 + i % 26])
            t = time.perf_counter()
            os.write(self.fd, ch)
            assert self.read_until(ch, 5), "echo lost"
            rtts.append((time.perf_counter() - t) * 1000)
        return rtts

    def close(self):
        try:
            os.kill(self.pid, signal.SIGTERM)
            os.waitpid(self.pid, 0)
        except OSError:
            pass
        os.close(self.fd)


def bench_echo(s: Setup, n: int) -> dict:
    out = {}
    for path in PATHS:
        c = PtyClient(s.ssh(path, tty=True))
        try:
            c.ready()
            c.echo_rtt(50)  # warm up
            rtts = c.echo_rtt(n)
        finally:
            c.close()
        out[f"echo/{path}"] = {"p50_ms": median(rtts), "p99_ms": pct(rtts, 99)}
    return out


def bench_first_output(s: Setup, reps: int) -> dict:
    out = {}
    for path in PATHS:
        times = []
        for _ in range(reps):
            t = time.monotonic()
            p = subprocess.Popen(s.ssh(path) + ["echo first-output"], stdout=subprocess.PIPE)
            p.stdout.readline()
            times.append((time.monotonic() - t) * 1000)
            p.wait(timeout=30)
        out[f"first-output/{path}"] = median(times)
    return out


def bench_recording_cost(s: Setup, size: int, payloads: dict, reps: int) -> dict:
    """castgate's own CPU per GiB moved, with recording and with it switched off."""
    out = {}
    for name, remote_file in payloads.items():
        per = {}
        for label, gw, path in (("on", s.castgate, "castgate"), ("off", s.bare, "castgate-bare")):
            samples = []
            for _ in range(reps):
                before = proc_cpu(gw.proc.proc.pid)
                subprocess.run(s.ssh(path) + [f"head -c {size} {remote_file}"],
                               stdout=subprocess.DEVNULL, timeout=900, check=True)
                samples.append((proc_cpu(gw.proc.proc.pid) - before) * GIB / size)
            per[label] = median(samples)
        out[f"recording-cpu/{name}"] = {"on_s_per_gib": per["on"], "off_s_per_gib": per["off"],
                                        "ratio": per["on"] / per["off"]}
    return out


def bench_many_sessions(s: Setup, count: int) -> dict:
    """`count` interactive sessions through one castgate; memory per idle session and the echo
    latency of one more session meanwhile."""
    gw = s.castgate
    base = proc_rss_kib(gw.proc.proc.pid)
    clients = []
    failures = 0
    t0 = time.monotonic()
    try:
        # Opened in waves of 50 (each wave signed in and echoing before the next starts), held
        # open together: a thousand simultaneous handshakes would measure the target's sshd.
        ok = 0
        for wave in range(0, count, 50):
            batch = []
            for _ in range(min(50, count - wave)):
                try:
                    batch.append(PtyClient(s.ssh("castgate", tty=True)))
                except Exception:
                    failures += 1
            for c in batch:
                try:
                    c.ready(60)
                    ok += 1
                except AssertionError:
                    failures += 1
            clients.extend(batch)
        setup_s = time.monotonic() - t0
        time.sleep(2)
        loaded = proc_rss_kib(gw.proc.proc.pid)
        idle_cpu = proc_cpu(gw.proc.proc.pid)
        time.sleep(5)
        idle_cpu = (proc_cpu(gw.proc.proc.pid) - idle_cpu) / 5
        # One more session through castgate, and one straight to the target for comparison:
        # under this load the machine itself (3,000 peer processes) adds latency to both.
        rtts = {}
        for path in ("castgate", "direct"):
            probe = PtyClient(s.ssh(path, tty=True))
            probe.ready()
            rtts[path] = probe.echo_rtt(1000)
            probe.close()
        return {"sessions": count, "ok": ok, "failures": failures, "setup_s": setup_s,
                "rss_base_kib": base, "rss_loaded_kib": loaded,
                "kib_per_session": (loaded - base) / max(1, ok), "idle_cpu_per_s": idle_cpu,
                "echo_p50_ms": median(rtts["castgate"]), "echo_p99_ms": pct(rtts["castgate"], 99),
                "direct_echo_p50_ms": median(rtts["direct"]),
                "direct_echo_p99_ms": pct(rtts["direct"], 99)}
    finally:
        for c in clients:
            c.close()


def bench_player(work: pathlib.Path, log: pathlib.Path, parts: int = 16) -> dict:
    """castgate-player list, commands and export against jq doing the same selection, on the same
    log: plain, gzip -6 as one file, and split into `parts` files of whole lines, each gzip -6, as a
    bucket prefix of S3 objects is (jq reads the gzip forms through zcat). MB/s count decompressed
    bytes."""
    player = os.environ.get("CASTGATE_PLAYER_BIN", str(REPO / "build" / "player" / "castgate-player"))
    sessions = json.loads("[" + ",".join(
        subprocess.run([player, "list", "--json", str(log)], capture_output=True, check=True)
        .stdout.decode().splitlines()) + "]")
    target = sessions[len(sessions) // 2]["session"]
    size = log.stat().st_size
    gz = work / "log.jsonl.gz"
    subprocess.run(f"gzip -6 -c {log} > {gz}", shell=True, check=True)
    objects = work / "objects"
    objects.mkdir(exist_ok=True)
    subprocess.run(["split", "-n", f"l/{parts}", "-d", "-a", "3", str(log), str(objects / "part-")],
                   check=True)
    for part in sorted(objects.iterdir()):
        subprocess.run(["gzip", "-6", str(part)], check=True)

    def timed(cmd, reps=3):
        ts = []
        for _ in range(reps):
            t = time.monotonic()
            subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True, shell=isinstance(cmd, str))
            ts.append(time.monotonic() - t)
        return median(ts)

    # Page cache warm for everyone.
    subprocess.run(f"cat {log} {gz} {objects}/* > /dev/null", shell=True)
    selections = {
        "list": "select(.event.action==\"session.start\" or .event.action==\"session.end\") | "
                "{s:.castgate.session,u:.user.email,t:.destination.address,a:.event.action}",
        "commands": "select(.event.action==\"command\" or .event.action==\"alert\" or "
                    ".event.action==\"channel.end\" or .event.action==\"session.start\" or "
                    ".event.action==\"session.end\") | {t:.\"@timestamp\",s:.castgate.session,"
                    "c:.process.command_line,a:.event.action,x:.process.exit_code}",
    }
    forms = {"plain": (str(log), f"cat {log}"), "gzip": (str(gz), f"zcat {gz}"),
             "gzip_parts": (str(objects), f"zcat {objects}/*.gz")}
    r = {"log_bytes": size, "gzip_bytes": gz.stat().st_size, "parts": parts,
         "sessions": len(sessions)}
    for command, selection in selections.items():
        for form, (path, source) in forms.items():
            t = timed([player, command, path])
            t_jq = timed(f"{source} | jq -c '{selection}'", 1) if form != "plain" else \
                timed(f"jq -c '{selection}' {log}", 1)
            key = f"{command}_{form}"
            r.update({f"{key}_s": t, f"{key}_mb_s": size / t / 1e6, f"{key}_jq_s": t_jq,
                      f"{key}_speedup": t_jq / t})
    t_export = timed([player, "export", "--session", target, "--channel", "0", str(log)])
    t_export_jq = timed(f"jq -c 'select(.castgate.session==\"{target}\" and .castgate.channel==0 and "
                        f".asciicast != null) | (.asciicast.header // .asciicast.event)' {log}", 1)
    r.update({"export_s": t_export, "export_mb_s": size / t_export / 1e6, "export_jq_s": t_export_jq,
              "export_speedup": t_export_jq / t_export})
    return r


def make_interleaved_log(s: Setup, target_bytes: int) -> pathlib.Path:
    """Real castgate output: many sessions at once, a few printing text in bulk and the rest
    interactive-sized commands, until the log is big enough."""
    s.truncate_recordings()
    log = s.castgate.stdout_path
    procs = []
    n = 0
    while log.stat().st_size < target_bytes:
        while len(procs) < 12:
            n += 1
            cmd = f"head -c 40000000 {s.work}/text.txt" if n % 4 == 0 else "ls -la /usr/bin; uname -a"
            procs.append(subprocess.Popen(s.ssh("castgate") + [cmd], stdout=subprocess.DEVNULL))
        procs = [p for p in procs if p.poll() is None]
        time.sleep(0.05)
    for p in procs:
        p.wait(timeout=300)
    return log


def machine() -> dict:
    cpu = "?"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    # The libssh castgate actually loads (CASTGATE_BIN may be built against another one).
    version = subprocess.run([harness.CASTGATE, "--version"], capture_output=True, text=True).stdout
    libssh = version.split("libssh ", 1)[1].split("/", 1)[0] if "libssh " in version else "?"
    ssh_v = subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.strip()
    return {"cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(), "libssh": libssh,
            "openssh": ssh_v, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def report(results: dict, path: pathlib.Path):
    m = results["machine"]
    lines = [f"Machine: {m['cpu']}, {m['cores']} cores, Linux {m['kernel']}; {m['openssh']}; "
             f"libssh {m['libssh']}; {m['date']}.", ""]
    if "bulk" in results:
        b = results["bulk"]
        lines += ["| bulk, MB/s (median) | direct | jump | castgate | castgate/jump | castgate/direct |",
                  "|---|---|---|---|---|---|"]
        keys = sorted({k.rsplit("/", 1)[0] for k in b if k != "log-ratio"})
        for k in keys:
            d, j, c = b[f"{k}/direct"], b[f"{k}/jump"], b[f"{k}/castgate"]
            lines.append(f"| {k} | {d:.0f} | {j:.0f} | {c:.0f} | {c / j:.2f}x | {c / d:.0%} |")
        lines.append("")
        if b.get("log-ratio"):
            lines += ["| castgate event log bytes per byte relayed (median) | ratio |", "|---|---|"]
            for k, v in sorted(b["log-ratio"].items()):
                lines.append(f"| {k} | {v:.4f} ({v:.2%}) |")
            lines.append("")
    if "echo" in results:
        e = results["echo"]
        lines += ["| keystroke echo, ms | direct | jump | castgate | castgate - direct |",
                  "|---|---|---|---|---|"]
        for q in ("p50_ms", "p99_ms"):
            d, j, c = e["echo/direct"][q], e["echo/jump"][q], e["echo/castgate"][q]
            lines.append(f"| {q[:3]} | {d:.3f} | {j:.3f} | {c:.3f} | +{c - d:.3f} |")
        lines.append("")
    if "first" in results:
        f = results["first"]
        d, j, c = f["first-output/direct"], f["first-output/jump"], f["first-output/castgate"]
        lines += ["| ssh start to first output, ms (median) | direct | jump | castgate | castgate/direct |",
                  "|---|---|---|---|---|", f"| exec `echo` | {d:.0f} | {j:.0f} | {c:.0f} | {c / d:.2f}x |", ""]
    if "recording" in results:
        lines += ["| castgate CPU seconds per GiB relayed | recording on | recording off | ratio |",
                  "|---|---|---|---|"]
        for k, v in results["recording"].items():
            lines.append(f"| {k.split('/', 1)[1]} | {v['on_s_per_gib']:.2f} | {v['off_s_per_gib']:.2f} | {v['ratio']:.2f}x |")
        lines.append("")
    if "many" in results:
        v = results["many"]
        lines += [f"{v['ok']} of {v['sessions']} interactive sessions open at once ({v['failures']} failures); "
                  f"castgate RSS {v['rss_base_kib'] / 1024:.0f} MiB -> {v['rss_loaded_kib'] / 1024:.0f} MiB, "
                  f"{v['kib_per_session']:.0f} KiB per idle session, {v.get('idle_cpu_per_s', 0) * 100:.1f}% of a core "
                  f"while they idle; echo of one more session meanwhile p50 {v['echo_p50_ms']:.2f} ms, "
                  f"p99 {v['echo_p99_ms']:.2f} ms (direct to the target at the same time: p50 "
                  f"{v.get('direct_echo_p50_ms', 0):.2f} ms, p99 {v.get('direct_echo_p99_ms', 0):.2f} ms).", ""]
    if "player" in results:
        p = results["player"]
        lines += ["| player over a " + f"{p['log_bytes'] / GIB:.2f} GiB log ({p['sessions']} sessions) | castgate-player | jq | speed-up | castgate-player MB/s |",
                  "|---|---|---|---|---|"]
        names = {"plain": "", "gzip": f", gzip -6 ({p.get('gzip_bytes', 0) / 1e6:.0f} MB)",
                 "gzip_parts": f", {p.get('parts', 0)} gzip files"}
        for command in ("list", "commands"):
            for form, name in names.items():
                key = f"{command}_{form}"
                if f"{key}_s" in p:
                    lines.append(f"| {command}{name} | {p[key + '_s']:.2f} s | {p[key + '_jq_s']:.1f} s | "
                                 f"{p[key + '_speedup']:.1f}x | {p[key + '_mb_s']:.0f} |")
        lines += [f"| export one channel | {p['export_s']:.2f} s | {p['export_jq_s']:.1f} s | {p['export_speedup']:.1f}x | {p['export_mb_s']:.0f} |", ""]
    path.write_text("\n".join(lines))
    print("\n".join(lines))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small sizes, one repetition (smoke)")
    ap.add_argument("--only", default="",
                    help="comma-separated: bulk,sftp,git,echo,first,recording,many,player")
    ap.add_argument("--size-mib", type=int, default=0, help="bulk size in MiB (default 1024; 64 with --quick)")
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--player-log", default="",
                    help="measure the player on this log instead of recording a new one")
    ap.add_argument("--results", default=str(HERE / "results"),
                    help="directory for report.md and results.json (default bench/results)")
    args = ap.parse_args()
    only = set(filter(None, args.only.split(","))) or {"bulk", "sftp", "git", "echo", "first",
                                                      "recording", "many", "player"}
    results_dir = pathlib.Path(args.results)
    results_dir.mkdir(exist_ok=True)
    work = pathlib.Path(tempfile.mkdtemp(prefix="castgate-bench-"))
    size = (args.size_mib << 20) if args.size_mib else (64 << 20) if args.quick else GIB
    reps = 1 if args.quick else 3
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    # The player alone, on a log given, needs no gateway.
    s = None
    if only - {"player"} or not args.player_log:
        # Payloads, in the page cache: text (base64 of random bytes, like logs and terminal
        # output), random binary, zeros.
        text = work / "text.txt"
        with open(text, "wb") as f:
            subprocess.run(f"head -c {size * 3 // 4 + (1 << 20)} /dev/urandom | base64 -w 120",
                           shell=True, stdout=f, check=True)
        binary = work / "random.bin"
        subprocess.run(["head", "-c", str(size), "/dev/urandom"], stdout=open(binary, "wb"), check=True)
        s = Setup(work)
    # A partial run (--only) updates the figures of an earlier full run.
    previous = results_dir / "results.json"
    results = json.loads(previous.read_text()) if args.only and previous.exists() else {}
    results["machine"] = machine()
    try:
        if "bulk" in only:
            results["bulk"] = {**results.get("bulk", {}),
                               **bench_bulk(s, reps, size, {"text": text, "random binary": binary,
                                                            "zeros": "/dev/zero"})}
        if "sftp" in only:
            s.truncate_recordings()
            results["bulk"] = {**results.get("bulk", {}), **bench_sftp(s, reps, binary, size)}
        if "git" in only:
            s.truncate_recordings()
            git_rsync = bench_git_rsync(s, reps, binary, size)
            ratios = {**results.get("bulk", {}).get("log-ratio", {}), **git_rsync.pop("log-ratio")}
            results["bulk"] = {**results.get("bulk", {}), **git_rsync, "log-ratio": ratios}
        if "echo" in only:
            s.truncate_recordings()
            results["echo"] = bench_echo(s, 300 if args.quick else 2000)
        if "first" in only:
            s.truncate_recordings()
            results["first"] = bench_first_output(s, 5 if args.quick else 20)
        if "recording" in only:
            s.truncate_recordings()
            small = size // 4
            results["recording"] = bench_recording_cost(s, small, {"text": text, "random binary": binary,
                                                                   "zeros": "/dev/zero"}, reps)
        if "many" in only:
            s.truncate_recordings()
            results["many"] = bench_many_sessions(s, 50 if args.quick else args.sessions)
        if "player" in only:
            if args.player_log:
                log = pathlib.Path(args.player_log)
            else:
                s.truncate_recordings()
                log = make_interleaved_log(s, (128 << 20) if args.quick else GIB)
            results["player"] = bench_player(work, log)
    finally:
        if s:
            s.stop()
        (results_dir / "results.json").write_text(json.dumps(results, indent=2))
        report(results, results_dir / "report.md")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
