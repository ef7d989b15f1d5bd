#!/usr/bin/env python3
"""Durable admissions against the HTTP ceiling, and a climb to a million waiting (issue 15).

    python3 benches/perf.py                     # everything, ~6 min plus the builds
    python3 benches/perf.py --quick             # 100 000 patients, 5 s windows and runs
    python3 benches/perf.py --only ratio        # or climb, or recovery
    python3 benches/perf.py --only rates        # call-next at steady admission rates (not in the default run)
    python3 benches/perf.py --patients 500000 --window 10 --duration 20 --keep

Python 3 standard library only, plus wrk on PATH. It builds the release server
(`cargo build --release`) and the ceiling (`cargo bench --no-run --bench
ceiling`, benches/ceiling.rs: a bare actix-web server answering the same
admission with a body of the same shape and size, without journal, lock or
logging), waits for a quiet machine (no rustc/cargo/chromium/linker for 5 s,
at most --quiet-timeout), then, writing out the dirty pages other processes
left (`sync`: the build's, which the kernel would otherwise write in one
burst in the middle of a run) before each ratio run and before the climb:

ratio     wrk (-t2 -c64 -d10s, benches/wrk/admit.lua) against the ceiling (A) and
          against Triagem (B) in the order A B A B (--pairs 3: A B A B A B),
          one server at a time, each B on a fresh data directory (so every B
          run starts empty); prints each run's req/s, non-201 answers and
          latency, and mean(B) / mean(A).
          Any answer other than 201 in B, or any socket error, fails.
climb     a fresh Triagem; admissions (-t2 -c64) in windows (--window s) until
          --patients wait, and in every --call-every-th window a call-next run
          (wrk -t1 -c1 --latency benches/wrk/call.lua, --call-duration s)
          starting 1 s into the window, concurrent with the admissions. Records
          each window's admission p99.9 and call p99 with the waiting counts
          before and after it (the sum of `triagem_patients_waiting{unit="pa"}`
          from /metrics; calls consume patients, the windows go on until
          enough wait). Each window also counts the group commits slower
          than 25 ms (the journal's commit histogram) and the CPU the
          hypervisor took (steal, /proc/stat), so that a stall can be put
          down to the disk or the host rather than the service. A window
          with calls also gives the share of them the server answered
          within 5 ms by its own clock (its request-duration histogram,
          from the handler's start to the answer's head): what wrk sees
          beyond that is the request waiting to be read and the answer to
          be sent, on cores shared with wrk. Memory: VmRSS of the server empty (ready + 1 s) and
          full (2 s after the last window); (full - empty) / waiting.
recovery  with that server full: kill -9, start it again on the same data
          directory, poll /readyz every 10 ms and report exec -> first 200;
          /healthz is probed every 10 ms alongside (a new connection per probe)
          and the slowest answer of either is the stall. Then the waiting
          count must equal the one before the kill, which must equal the
          server's own admissions_total - calls_total (nothing lost).
          The ratio runs and the restart also report the CPU the hypervisor
          took meanwhile (steal), in cores.
          (--only recovery fills the server without the call-next runs.)
rates     only with --only rates: call-next at steady admission rates below
          saturation, to show where its latency comes from. For each level
          a fresh Triagem, 2 s of admissions (-t1 -c16) so calls find
          patients, 10 s of rest, then admissions paced by admit.lua's pause
          (connections, ms after each answer: 16/100, 16/10, 64/10, 64/4 and
          64/0, which is saturation) for 10 s with a call-next run (-t1 -c1,
          5 s) 2 s into it. Prints each level's admission rate and p99, and
          the calls' p50/p99/p99.9 (and the server's own share within 5 ms,
          as in the climb); no latency target is judged, but a failed
          admission or a call that fails or finds the queue empty does.

Servers get free ports and a directory under the run's temporary directory;
Triagem runs `serve --config config/default.toml` with TRIAGEM_BIND and
TRIAGEM_DATA_DIR, as shipped: RUST_LOG and other TRIAGEM_* variables are
removed from its environment, so it logs as shipped (requests at debug level: not at all), to a
file in the run directory (printed). Data directories are deleted at the
end unless --keep; logs are kept. Every wrk run also reports the CPU that
other processes used meanwhile (machine busy time from /proc/stat minus the
servers', wrk's and this script's), in cores: a measure of how quiet it was.

Exit status 1 if a target is missed, 2 if something could not be measured.
"""

import argparse
import glob
import http.client
import json
import math
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = None  # target/release/triagem, in cargo's target directory (CARGO_TARGET_DIR or target)
CONFIG = os.path.join(ROOT, "config", "default.toml")
ADMIT_LUA = os.path.join(ROOT, "benches", "wrk", "admit.lua")
CALL_LUA = os.path.join(ROOT, "benches", "wrk", "call.lua")
UNIT = "pa"
ADMIT_PATH = f"/api/v1/units/{UNIT}/patients"
CALL_PATH = f"/api/v1/units/{UNIT}/call"

# Targets of issue 15.
RATIO_MIN = 0.5
ADMIT_P999_MS = 50.0
CALL_P99_MS = 5.0
RSS_PER_PATIENT_BYTES = 1024
RECOVERY_S = 3.0
PROBE_MS = 100.0

BUSY_COMMANDS = {"rustc", "cargo", "chromium", "chrome", "cc", "cc1", "ld", "ld.lld", "rust-lld"}
CLK_TCK = os.sysconf("SC_CLK_TCK")


class Unmeasurable(Exception):
    """Something that stops a part from being measured (exit status 2)."""


def log(text=""):
    print(text, flush=True)


# --- building ---------------------------------------------------------------------------


def target_dir():
    out = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps"], cwd=ROOT, check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out)["target_directory"]


def build(no_build):
    global BINARY
    release = os.path.join(target_dir(), "release")
    BINARY = os.path.join(release, "triagem")
    if no_build:
        if not os.access(BINARY, os.X_OK):
            sys.exit(f"{BINARY} not found: build it (or leave out --no-build)")
        found = sorted(
            (p for p in glob.glob(os.path.join(release, "deps", "ceiling-*"))
             if os.access(p, os.X_OK) and not p.endswith(".d")),
            key=os.path.getmtime,
        )
        if not found:
            sys.exit("no ceiling executable in target/release/deps: build it (or leave out --no-build)")
        # An old build of the ceiling stays in deps/ beside the new one; one built
        # before the crates' features changed answers at another speed (actix-web's
        # `unicode` feature alone is a fifth of its instructions), so the ratio lies.
        sources = [os.path.join(ROOT, f) for f in ("Cargo.toml", "Cargo.lock", "benches/ceiling.rs")]
        newest = max(os.path.getmtime(f) for f in sources)
        if os.path.getmtime(found[-1]) < newest:
            sys.exit(f"{found[-1]} is older than Cargo.toml, Cargo.lock or benches/ceiling.rs: "
                     "rebuild it (cargo bench --no-run --bench ceiling) or leave out --no-build")
        return found[-1]
    log("building: cargo build --release")
    subprocess.run(["cargo", "build", "--release"], cwd=ROOT, check=True)
    log("building: cargo bench --no-run --bench ceiling")
    out = subprocess.run(
        ["cargo", "bench", "--no-run", "--bench", "ceiling", "--message-format=json"],
        cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True,
    ).stdout
    for line in out.splitlines():
        try:
            m = json.loads(line)
        except ValueError:
            continue
        if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "ceiling" and m.get("executable"):
            return m["executable"]
    sys.exit("cargo did not name the ceiling's executable")


def git_commit():
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, check=True,
                              stdout=subprocess.PIPE, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "src"], cwd=ROOT,
                               stdout=subprocess.PIPE, text=True).stdout.strip()
        return head + (" (src/ has uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# --- the machine ------------------------------------------------------------------------


def busy_processes():
    """Names of running processes that make the machine noisy (builds, browsers)."""
    mine = {os.getpid()}
    names = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) in mine:
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        comm = stat[stat.find("(") + 1:stat.rfind(")")]
        state = stat[stat.rfind(")") + 2:][:1]
        if comm in BUSY_COMMANDS and state not in "ZXTt":  # zombies and stopped processes use no CPU
            names.append(comm)
    return names


def wait_quiet(quiet_s, timeout_s):
    """Waits until no build or browser process has been seen for quiet_s seconds."""
    t0 = time.monotonic()
    quiet_since = time.monotonic()
    seen = []
    while True:
        now = time.monotonic()
        busy = busy_processes()
        if busy:
            seen = busy
            quiet_since = now
        elif now - quiet_since >= quiet_s:
            waited = now - t0
            log(f"machine quiet (no {'/'.join(sorted(BUSY_COMMANDS))} for {quiet_s:.0f} s) after waiting {waited:.0f} s; "
                f"load average {os.getloadavg()[0]:.2f}")
            return True
        if now - t0 > timeout_s:
            log(f"note: the machine did not get quiet within {timeout_s:.0f} s (still running: "
                f"{', '.join(sorted(set(seen)))}); measuring anyway")
            return False
        time.sleep(0.5)


def dirty_mib():
    """Dirty page cache waiting to be written, machine-wide (/proc/meminfo), in MiB."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("Dirty:"):
                return int(line.split()[1]) / 1024
    return 0.0


def flush_dirty():
    """Writes out the dirty pages other processes left (a release build leaves ~170 MiB).
    Left alone, the kernel writes them ~30 s later in one burst, and the journal's
    fsync waits behind it: a 300 MiB burst held commits 100-250 ms (RESULTS section 10),
    which a run would report as the service's latency."""
    dirty = dirty_mib()
    t0 = time.monotonic()
    os.sync()
    if dirty >= 16:
        log(f"  wrote out {dirty:.0f} MiB of dirty pages first ({time.monotonic() - t0:.1f} s)")


def machine_busy_seconds():
    """user + nice + system time of all CPUs, in seconds (/proc/stat)."""
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:]
    return (int(fields[0]) + int(fields[1]) + int(fields[2])) / CLK_TCK


def proc_cpu_seconds(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class CpuWatch:
    """How many cores other processes kept busy while a wrk run went on, and
    how many the hypervisor took (steal): a slow run is then put down to the
    host rather than the service."""

    def __init__(self, server):
        self.server = server
        self.t0 = time.monotonic()
        self.steal0 = steal_seconds()
        self.busy0 = machine_busy_seconds()
        self.server0 = server.cpu_seconds()
        t = os.times()
        self.self0 = t.user + t.system

    def finish(self, wrk_cpu_seconds):
        elapsed = time.monotonic() - self.t0
        t = os.times()
        ours = (self.server.cpu_seconds() - self.server0) + wrk_cpu_seconds + (t.user + t.system - self.self0)
        busy = machine_busy_seconds() - self.busy0
        return {
            "elapsed": elapsed,
            "server_cores": (self.server.cpu_seconds() - self.server0) / elapsed,
            "wrk_cores": wrk_cpu_seconds / elapsed,
            "others_cores": max(0.0, busy - ours) / elapsed,
            "stolen_cores": (steal_seconds() - self.steal0) / elapsed,
        }


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- servers ----------------------------------------------------------------------------


class Server:
    """A server process on a free port, its output in a log file."""

    def __init__(self, label, cmd, env, run_dir, port):
        self.label = label
        self.port = port
        self.log_path = os.path.join(run_dir, f"{label}.log")
        self.log = open(self.log_path, "ab")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def cpu_seconds(self):
        return proc_cpu_seconds(self.pid)

    def rss_bytes(self, field="VmRSS"):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
        raise Unmeasurable(f"no {field} for {self.label}")

    def check(self):
        if not self.alive():
            raise Unmeasurable(f"{self.label} exited with status {self.proc.returncode}; see {self.log_path}")

    def stop(self):
        """SIGTERM, then SIGKILL after 30 s; the exit status."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                log(f"note: {self.label} did not stop within 30 s of SIGTERM; killed")
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.log.close()


def http_get(port, path, timeout=10):
    """(status, body) of a GET on a new connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        res = conn.getresponse()
        return res.status, res.read()
    finally:
        conn.close()


def http_post(port, path, body, timeout=10):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        res = conn.getresponse()
        return res.status, res.read()
    finally:
        conn.close()


def triagem_env(data_dir, port):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIAGEM_") and k != "RUST_LOG"}
    env["TRIAGEM_BIND"] = f"127.0.0.1:{port}"
    env["TRIAGEM_DATA_DIR"] = data_dir
    return env


def start_triagem(label, run_dir, data_dir, port=None, wait_ready=True):
    port = port or free_port()
    server = Server(label, [BINARY, "serve", "--config", CONFIG], triagem_env(data_dir, port), run_dir, port)
    if wait_ready:
        wait_until(lambda: ready(server), 300, f"{label} did not become ready; see {server.log_path}", server)
    return server


def ready(server):
    try:
        return http_get(server.port, "/readyz", timeout=5)[0] == 200
    except OSError:
        return False


def start_ceiling(label, run_dir, ceiling):
    port = free_port()
    env = dict(os.environ, CEILING_BIND=f"127.0.0.1:{port}")
    server = Server(label, [ceiling, "--bench"], env, run_dir, port)

    def answers():
        try:
            status, body = http_post(port, ADMIT_PATH, {"name": "Paciente 0-0", "colour": "green"}, timeout=5)
        except OSError:
            return False
        if status != 201:
            raise Unmeasurable(f"the ceiling answered {status}: {body[:200]!r}")
        return True

    wait_until(answers, 60, f"{label} did not answer; see {server.log_path}", server)
    return server


def wait_until(predicate, timeout_s, message, server):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        server.check()
        time.sleep(0.05)
    server.stop()
    raise Unmeasurable(message)


def metrics(port):
    """{(name, frozenset(labels)): value} of the Prometheus text at /metrics."""
    status, body = http_get(port, "/metrics", timeout=30)
    if status != 200:
        raise Unmeasurable(f"/metrics answered {status}")
    out = {}
    for line in body.decode().splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$", line)
        if m:
            labels = frozenset(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
            out[(m.group(1), labels)] = float(m.group(3))
    return out


def metric_sum(values, name, **labels):
    want = set(labels.items())
    return int(sum(v for (n, ls), v in values.items() if n == name and want <= ls))


def waiting(port):
    """Patients waiting in the unit's queues (triage and treatment), from /metrics."""
    return metric_sum(metrics(port), "triagem_patients_waiting", unit=UNIT)


SLOW_COMMIT_S = 0.025


def slow_commits(values):
    """Group commits so far that took longer than SLOW_COMMIT_S (from the commit histogram)."""
    total = metric_sum(values, "triagem_journal_commit_seconds_count")
    fast = metric_sum(values, "triagem_journal_commit_seconds_bucket", le=str(SLOW_COMMIT_S))
    return total - fast


CALL_ROUTE = {"method": "POST", "route": "/api/v1/units/{unit}/call"}


def calls_served(values):
    """(calls answered so far, of which within CALL_P99_MS by the server's own clock), from its
    request-duration histogram: from the handler's start to the answer's head, so without the
    time a request waits to be read and an answer to be sent."""
    total = metric_sum(values, "triagem_http_request_duration_seconds_count", **CALL_ROUTE)
    within = metric_sum(values, "triagem_http_request_duration_seconds_bucket", le=f"{CALL_P99_MS / 1000:g}",
                        **CALL_ROUTE)
    return total, within


def server_share(before, after):
    """The share of the calls between two calls_served() readings within CALL_P99_MS (None if none)."""
    calls = after[0] - before[0]
    return (after[1] - before[1]) / calls if calls else None


def share_note(share):
    """A call-next line's note of server_share() (nothing without calls)."""
    return "" if share is None else f" ({share:.1%} within {CALL_P99_MS:g} ms in the server)"


def steal_seconds():
    """CPU time the hypervisor took from this machine so far (/proc/stat), in seconds."""
    with open("/proc/stat") as f:
        fields = f.readline().split()
    return int(fields[8]) / CLK_TCK if len(fields) > 8 else 0.0


def queue_totals(port):
    """The same count from the queue endpoints: (treatment, triage)."""
    out = []
    for queue in ("treatment", "triage"):
        status, body = http_get(port, f"/api/v1/units/{UNIT}/queue?queue={queue}&limit=1", timeout=30)
        if status != 200:
            raise Unmeasurable(f"GET queue={queue} answered {status}")
        out.append(json.loads(body)["total"])
    return tuple(out)


# --- wrk --------------------------------------------------------------------------------


class Wrk:
    """One wrk run in the background; result() waits for it and parses its output."""

    def __init__(self, port, path, script, threads, connections, seconds, script_args=()):
        self.cmd = [
            "wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency",
            "-s", script, f"http://127.0.0.1:{port}{path}",
        ]
        if script_args:
            self.cmd += ["--", *map(str, script_args)]
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def result(self):
        out = self.proc.stdout.read()
        self.proc.stdout.close()
        # wait4 rather than wait: it gives the run's CPU time.
        _, status, usage = os.wait4(self.proc.pid, 0)
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        if self.proc.returncode != 0:
            raise Unmeasurable(f"{' '.join(self.cmd)} failed ({self.proc.returncode}):\n{out}")
        r = parse_wrk(out)
        r["cpu"] = usage.ru_utime + usage.ru_stime
        r["output"] = out
        return r


def parse_wrk(out):
    def number(pattern, default=None):
        m = re.search(pattern, out, re.M)
        if m is None:
            if default is None:
                raise Unmeasurable(f"cannot find /{pattern}/ in wrk's output:\n{out}")
            return default
        return float(m.group(1))

    r = {"rps": number(r"^Requests/sec:\s+([\d.]+)")}
    for p, v in re.findall(r"^\s+p([\d.]+): ([\d.]+) ms$", out, re.M):
        r[f"p{p}"] = float(v)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    r["socket_errors"] = sum(int(x) for x in errors.groups()) if errors else 0
    m = re.search(r"^admissions: (\d+) requests, (\d+) not 201", out, re.M)
    if m:
        r["requests"], r["bad"] = int(m.group(1)), int(m.group(2))
    m = re.search(r"^calls: (\d+) requests, (\d+) found the queue empty \(204\), (\d+) other non-200", out, re.M)
    if m:
        r["requests"], r["empty"], r["bad"] = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if "requests" not in r:
        raise Unmeasurable(f"no summary line from the Lua script in wrk's output:\n{out}")
    return r


# --- the parts --------------------------------------------------------------------------


def ratio(args, run_dir, ceiling):
    log(f"\n== ratio: wrk -t{args.threads} -c{args.connections} -d{args.duration}s admit.lua, "
        f"ceiling (A) and Triagem (B, a fresh data directory each) in the order {' '.join('AB' * args.pairs)}")
    runs = []
    for i, kind in enumerate("AB" * args.pairs):
        n = i // 2 + 1
        time.sleep(1)
        flush_dirty()
        if kind == "A":
            server = start_ceiling(f"ratio-A{n}-ceiling", run_dir, ceiling)
            data_dir = None
        else:
            data_dir = os.path.join(run_dir, f"ratio-B{n}-data")
            server = start_triagem(f"ratio-B{n}-triagem", run_dir, data_dir)
        try:
            watch = CpuWatch(server)
            r = Wrk(server.port, ADMIT_PATH, ADMIT_LUA, args.threads, args.connections, args.duration).result()
            r.update(watch.finish(r["cpu"]))
            server.check()
            if kind == "B":
                r["waiting_after"] = waiting(server.port)
            r["rss"] = server.rss_bytes()
        finally:
            status = server.stop()
            if data_dir and not args.keep:
                shutil.rmtree(data_dir, ignore_errors=True)
        r["kind"], r["n"], r["log"], r["exit"] = kind, n, server.log_path, status
        runs.append(r)
        log(f"  {kind}{n} {'ceiling' if kind == 'A' else 'triagem'}: {r['rps']:9.0f} req/s, {r['requests']} requests, "
            f"{r['bad']} not 201, {r['socket_errors']} socket errors; p50 {r['p50']:.2f} / p99 {r['p99']:.2f} / "
            f"p99.9 {r['p99.9']:.2f} ms; server {r['server_cores']:.2f} cores, wrk {r['wrk_cores']:.2f}, "
            f"others {r['others_cores']:.2f}, stolen {r['stolen_cores']:.2f}"
            + (f"; {r['waiting_after']} waiting after" if kind == "B" else ""))
    a = statistics.fmean(r["rps"] for r in runs if r["kind"] == "A")
    b = statistics.fmean(r["rps"] for r in runs if r["kind"] == "B")
    bad_b = sum(r["bad"] + r["socket_errors"] for r in runs if r["kind"] == "B")
    bad_a = sum(r["bad"] + r["socket_errors"] for r in runs if r["kind"] == "A")
    log(f"  mean A {a:.0f} req/s, mean B {b:.0f} req/s: ratio B/A = {b / a:.3f}")
    return {"runs": runs, "a": a, "b": b, "ratio": b / a, "bad_b": bad_b, "bad_a": bad_a}


def climb(args, run_dir, with_calls):
    log(f"\n== climb: admissions (wrk -t{args.threads} -c{args.connections}) in {args.window} s windows until "
        f"{args.patients} wait" + (
            f"; call-next (wrk -t1 -c1 -d{args.call_duration}s) 1 s into every "
            f"{'' if args.call_every == 1 else ordinal(args.call_every) + ' '}window" if with_calls else
            "; no call-next runs"))
    flush_dirty()
    data_dir = os.path.join(run_dir, "climb-data")
    server = start_triagem("climb-triagem", run_dir, data_dir)
    log(f"  Triagem pid {server.pid}, log {server.log_path}")
    time.sleep(1)
    rss_empty = server.rss_bytes()
    log(f"  VmRSS empty: {rss_empty / 2**20:.1f} MiB")
    windows = []
    values = metrics(server.port)
    now_waiting = metric_sum(values, "triagem_patients_waiting", unit=UNIT)
    slow = slow_commits(values)
    served = calls_served(values)
    net_rate = None
    t0 = time.monotonic()
    while now_waiting < args.patients:
        seconds = args.window
        if net_rate:
            # Aim the last window at the target (10 % over), not a whole window past it.
            need = (args.patients - now_waiting) / net_rate * 1.1
            seconds = max(2, min(args.window, math.ceil(need)))
        index = len(windows) + 1
        watch = CpuWatch(server)
        admit = Wrk(server.port, ADMIT_PATH, ADMIT_LUA, args.threads, args.connections, seconds)
        call = None
        call_seconds = min(args.call_duration, seconds - 2)
        if with_calls and (index - 1) % args.call_every == 0 and call_seconds >= 1:
            time.sleep(1)
            call = Wrk(server.port, CALL_PATH, CALL_LUA, 1, 1, call_seconds).result()
        a = admit.result()
        a.update(watch.finish(a["cpu"] + (call["cpu"] if call else 0)))
        server.check()
        values = metrics(server.port)
        before, now_waiting = now_waiting, metric_sum(values, "triagem_patients_waiting", unit=UNIT)
        slow, slow_before = slow_commits(values), slow
        served, served_before = calls_served(values), served
        net_rate = max(1.0, (now_waiting - before) / seconds)
        w = {"index": index, "seconds": seconds, "before": before, "after": now_waiting, "admit": a, "call": call,
             "slow_commits": slow - slow_before, "server_share": server_share(served_before, served)}
        windows.append(w)
        line = (f"  window {index:2}: {before:8} -> {now_waiting:8} waiting, {a['rps']:7.0f} adm/s, "
                f"p99 {a['p99']:6.2f} p99.9 {a['p99.9']:7.2f} ms, {a['bad']} not 201")
        if a["socket_errors"]:
            line += f", {a['socket_errors']} socket errors"
        if call:
            line += (f"; calls {call['rps']:5.0f}/s p50 {call['p50']:.2f} p99 {call['p99']:.2f} "
                     f"p99.9 {call['p99.9']:.2f} ms")
            line += share_note(w["server_share"])
            if call["empty"] or call["bad"] or call["socket_errors"]:
                line += f" ({call['empty']} empty, {call['bad']} other, {call['socket_errors']} socket errors)"
        line += f"; others {a['others_cores']:.2f} cores, stolen {a['stolen_cores']:.2f}"
        if w["slow_commits"]:
            line += f"; {w['slow_commits']} commits over {SLOW_COMMIT_S * 1000:.0f} ms"
        log(line)
    elapsed = time.monotonic() - t0
    time.sleep(2)
    rss_full = server.rss_bytes()
    hwm = server.rss_bytes("VmHWM")
    full = waiting(server.port)
    per_patient = (rss_full - rss_empty) / full if full else float("nan")
    log(f"  {full} waiting after {elapsed:.0f} s; VmRSS {rss_full / 2**20:.1f} MiB (peak {hwm / 2**20:.1f} MiB): "
        f"{per_patient:.0f} bytes per waiting patient")
    return server, data_dir, {
        "windows": windows, "rss_empty": rss_empty, "rss_full": rss_full, "hwm": hwm, "waiting": full,
        "per_patient": per_patient, "with_calls": with_calls,
    }


# (connections, ms each connection waits after an answer); the last is saturation.
RATE_LEVELS = [(16, 100), (16, 10), (64, 10), (64, 4), (64, 0)]


def rates(args, run_dir):
    log("\n== rates: call-next (wrk -t1 -c1 -d5s) 2 s into 10 s of admissions paced by admit.lua "
        "(-t2, connections / pause after each answer), a fresh Triagem each, after 2 s of -c16 "
        "admissions and 10 s of rest")
    levels = []
    for connections, pause in RATE_LEVELS:
        flush_dirty()
        data_dir = os.path.join(run_dir, f"rates-c{connections}-p{pause}-data")
        server = start_triagem(f"rates-c{connections}-p{pause}-triagem", run_dir, data_dir)
        try:
            Wrk(server.port, ADMIT_PATH, ADMIT_LUA, 1, 16, 2).result()
            time.sleep(10)
            admit = Wrk(server.port, ADMIT_PATH, ADMIT_LUA, args.threads, connections, 10, [pause])
            time.sleep(2)
            served = calls_served(metrics(server.port))
            call = Wrk(server.port, CALL_PATH, CALL_LUA, 1, 1, 5).result()
            share = server_share(served, calls_served(metrics(server.port)))
            a = admit.result()
            server.check()
        finally:
            server.stop()
            if not args.keep:
                shutil.rmtree(data_dir, ignore_errors=True)
        failed = a["bad"] + a["socket_errors"] + call["bad"] + call["empty"] + call["socket_errors"]
        levels.append({"connections": connections, "pause": pause, "admit": a, "call": call, "failed": failed,
                       "server_share": share})
        log(f"  c{connections:<3} pause {pause:3} ms: {a['rps']:7.0f} adm/s (p99 {a['p99']:6.2f} ms); "
            f"calls p50 {call['p50']:.2f} p99 {call['p99']:.2f} p99.9 {call['p99.9']:.2f} ms"
            + share_note(share)
            + (f"; {failed} failed or empty" if failed else ""))
    under = [lv["admit"]["rps"] for lv in levels if lv["call"]["p99"] < CALL_P99_MS]
    log(f"  call-next p99 under {CALL_P99_MS:g} ms up to {max(under):.0f} admissions/s" if under else
        f"  call-next p99 not under {CALL_P99_MS:g} ms at any level")
    return levels


def ordinal(n):
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


class Prober(threading.Thread):
    """GETs a path every 10 ms on a new connection until stopped; records every answer."""

    def __init__(self, port, path, t0, stop_on_200=False):
        super().__init__(daemon=True)
        self.port, self.path, self.t0, self.stop_on_200 = port, path, t0, stop_on_200
        self.answers = []  # (sent, seconds to answer, status)
        self.refused = 0
        self.errors = []  # (sent, seconds, error)
        self.first_200 = None  # seconds from t0 to the first 200's arrival
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            sent = time.monotonic()
            try:
                status, _ = http_get(self.port, self.path, timeout=10)
                took = time.monotonic() - sent
                self.answers.append((sent - self.t0, took, status))
                if status == 200 and self.first_200 is None:
                    self.first_200 = sent + took - self.t0
                    if self.stop_on_200:
                        return
            except ConnectionRefusedError:
                self.refused += 1
            except OSError as e:
                self.errors.append((sent - self.t0, time.monotonic() - sent, repr(e)))
            time.sleep(0.01)

    def slowest(self):
        return max(self.answers, key=lambda a: a[1], default=None)

    def statuses(self):
        out = {}
        for _, _, s in self.answers:
            out[s] = out.get(s, 0) + 1
        return out


def recovery(args, run_dir, server, data_dir):
    log("\n== recovery: kill -9 with the queue full, start again on the same data directory")
    values = metrics(server.port)
    before = metric_sum(values, "triagem_patients_waiting", unit=UNIT)
    admitted = metric_sum(values, "triagem_admissions_total", unit=UNIT)
    called = metric_sum(values, "triagem_calls_total", unit=UNIT)
    size = sum(os.path.getsize(p) for p in glob.glob(os.path.join(data_dir, "*")))
    log(f"  before: {before} waiting ({admitted} admitted - {called} called = {admitted - called}); "
        f"journal {size / 2**20:.0f} MiB")
    server.kill9()
    port = server.port
    steal0 = steal_seconds()
    t0 = time.monotonic()
    restarted = start_triagem("recovery-triagem", run_dir, data_dir, port=port, wait_ready=False)
    readyz = Prober(port, "/readyz", t0, stop_on_200=True)
    healthz = Prober(port, "/healthz", t0)
    readyz.start()
    healthz.start()
    readyz.join(timeout=300)
    healthz.done.set()
    healthz.join()
    if readyz.is_alive():
        readyz.done.set()
        restarted.stop()
        raise Unmeasurable(f"not ready within 300 s; see {restarted.log_path}")
    restarted.check()
    ready_s = readyz.first_200
    stolen = (steal_seconds() - steal0) / (time.monotonic() - t0)
    after = waiting(port)
    totals = queue_totals(port)
    slow_r, slow_h = readyz.slowest(), healthz.slowest()
    log(f"  exec -> first 200 from /readyz: {ready_s * 1000:.0f} ms, the host taking {stolen:.2f} cores "
        f"meanwhile (steal; log {restarted.log_path})")
    for name, p in (("/readyz", readyz), ("/healthz", healthz)):
        s = p.slowest()
        log(f"  {name}: {len(p.answers)} answers {p.statuses()}, {p.refused} refused before listening, "
            f"{len(p.errors)} errors; slowest {s[1] * 1000:.1f} ms (sent at {s[0] * 1000:.0f} ms)" if s else
            f"  {name}: no answer, {p.refused} refused, {len(p.errors)} errors")
        for e in p.errors[:5]:
            log(f"    error at {e[0] * 1000:.0f} ms after {e[1] * 1000:.0f} ms: {e[2]}")
    log(f"  after: {after} waiting (queues: {totals[0]} treatment + {totals[1]} triage)")
    probes = [s for s in (slow_r, slow_h) if s]
    slowest_ms = max((s[1] for s in probes), default=float("nan")) * 1000
    # A probe that got no answer at all (timeout, reset) is a stall too.
    errors = len(readyz.errors) + len(healthz.errors)
    if errors:
        slowest_ms = max(slowest_ms, max(e[1] for e in readyz.errors + healthz.errors) * 1000)
    status = restarted.stop()
    if status != 0:
        log(f"  note: the restarted server exited with status {status} at SIGTERM")
    return {
        "before": before, "expected": admitted - called, "after": after, "totals": totals,
        "ready_s": ready_s, "stolen_cores": stolen, "slowest_ms": slowest_ms, "not_ready_503": readyz.statuses().get(503, 0),
        "probe_errors": errors, "journal_bytes": size,
        "healthz_answers": len(healthz.answers),
    }


# --- the summary ------------------------------------------------------------------------


def summary(args, results):
    rows = []  # (target, measured, ok)
    if "ratio" in results:
        r = results["ratio"]
        runs = ", ".join(f"{x['kind']}{x['n']} {x['rps']:.0f}" for x in r["runs"])
        rows.append((f"durable admissions >= {RATIO_MIN:g} x the HTTP ceiling",
                     f"{r['ratio']:.3f} (mean B {r['b']:.0f} / mean A {r['a']:.0f} req/s; {runs})",
                     r["ratio"] >= RATIO_MIN))
        rows.append(("no answer other than 201 from Triagem (B)",
                     f"{r['bad_b']} non-201 or socket errors" + (f" (ceiling: {r['bad_a']})" if r["bad_a"] else ""),
                     r["bad_b"] == 0))
    if "climb" in results:
        c = results["climb"]
        ws = c["windows"]
        if c["with_calls"]:
            worst = max(ws, key=lambda w: w["admit"]["p99.9"])
            rows.append((f"admission p99.9 < {ADMIT_P999_MS:g} ms, 0 -> {args.patients} waiting",
                         f"{worst['admit']['p99.9']:.1f} ms worst (window {worst['index']}, "
                         f"{worst['before']} -> {worst['after']} waiting)",
                         worst["admit"]["p99.9"] < ADMIT_P999_MS))
            calls = [w for w in ws if w["call"]]
            if calls:
                wc = max(calls, key=lambda w: w["call"]["p99"])
                shares = [w["server_share"] for w in calls if w["server_share"] is not None]
                inside = ""
                if shares:
                    lo, hi = min(shares), max(shares)
                    span = f"{lo:.1%}" if lo == hi else f"{lo:.1%}-{hi:.1%}"
                    inside = f"; the server's own time within {CALL_P99_MS:g} ms for {span} of calls"
                rows.append((f"call-next p99 < {CALL_P99_MS:g} ms while admissions run",
                             f"{wc['call']['p99']:.2f} ms worst (window {wc['index']}, "
                             f"{wc['before']} -> {wc['after']} waiting){inside}",
                             wc["call"]["p99"] < CALL_P99_MS))
            bad = sum(w["admit"]["bad"] + w["admit"]["socket_errors"] for w in ws)
            bad += sum(w["call"]["bad"] + w["call"]["socket_errors"] for w in calls)
            rows.append(("no failed admission or call during the climb", f"{bad} failed", bad == 0))
        rows.append((f"memory < {RSS_PER_PATIENT_BYTES} bytes per waiting patient",
                     f"{c['per_patient']:.0f} bytes ({c['rss_empty'] / 2**20:.0f} -> {c['rss_full'] / 2**20:.0f} MiB "
                     f"at {c['waiting']} waiting)",
                     c["per_patient"] < RSS_PER_PATIENT_BYTES))
    if "recovery" in results:
        r = results["recovery"]
        rows.append((f"ready < {RECOVERY_S:g} s after kill -9 at {r['before']} waiting",
                     f"{r['ready_s']:.2f} s (the host took {r['stolen_cores']:.2f} cores meanwhile)",
                     r["ready_s"] < RECOVERY_S))
        rows.append((f"no probe stall while recovering (< {PROBE_MS:g} ms)",
                     f"slowest {r['slowest_ms']:.1f} ms; /readyz 503 x{r['not_ready_503']}, "
                     f"/healthz answered x{r['healthz_answers']}"
                     + (f", {r['probe_errors']} probe errors" if r["probe_errors"] else ""),
                     r["slowest_ms"] < PROBE_MS and r["probe_errors"] == 0))
        lost_ok = r["after"] == r["before"] == r["expected"] and sum(r["totals"]) == r["after"]
        rows.append(("nothing lost (waiting after = before = admitted - called)",
                     f"{r['after']} after, {r['before']} before, {r['expected']} admitted - called, "
                     f"queues {r['totals'][0]} + {r['totals'][1]}",
                     lost_ok))
    if "rates" in results:
        failed = sum(lv["failed"] for lv in results["rates"])
        rows.append(("no failed admission, failed or empty call at steady rates", f"{failed}", failed == 0))
    width = max(len(t) for t, _, _ in rows)
    log("\n== summary")
    log(f"  {'target':<{width}}  result  measured")
    for target, measured, ok in rows:
        log(f"  {target:<{width}}  {'pass' if ok else 'FAIL':<6}  {measured}")
    others = [r["others_cores"] for r in results.get("ratio", {}).get("runs", [])]
    others += [w["admit"]["others_cores"] for w in results.get("climb", {}).get("windows", [])]
    if others:
        log(f"  other processes kept {statistics.fmean(others):.2f} cores busy on average during the wrk runs "
            f"(most: {max(others):.2f})")
    stolen = [r["stolen_cores"] for r in results.get("ratio", {}).get("runs", [])]
    stolen += [w["admit"]["stolen_cores"] for w in results.get("climb", {}).get("windows", [])]
    if stolen:
        log(f"  the host took {statistics.fmean(stolen):.2f} cores on average during the wrk runs (steal; "
            f"most: {max(stolen):.2f}); more than a few hundredths makes every figure above slower")
    return all(ok for _, _, ok in rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--quick", action="store_true",
                        help="development: 100 000 patients, 5 s windows and ratio runs")
    parser.add_argument("--only", choices=["ratio", "climb", "recovery", "rates"],
                        help="one part (recovery fills the server without call-next runs; "
                             "rates runs only when asked for)")
    parser.add_argument("--patients", type=int, help="waiting patients to climb to (default 1 000 000)")
    parser.add_argument("--duration", type=int, help="seconds of each ratio run (default 10)")
    parser.add_argument("--pairs", type=int, default=2,
                        help="ceiling/Triagem pairs in the ratio; more average out the machine's drift (default 2)")
    parser.add_argument("--window", type=int, help="seconds of each climb window (default 10)")
    parser.add_argument("--call-duration", type=int, default=3, help="seconds of each call-next run (default 3)")
    parser.add_argument("--call-every", type=int, default=1, help="a call-next run every n-th window (default 1)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads for admissions (default 2)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections for admissions (default 64)")
    parser.add_argument("--keep", action="store_true", help="keep the data directories (logs are always kept)")
    parser.add_argument("--dir", help="where to make the run's directory (default: the system's temp dir)")
    parser.add_argument("--no-build", action="store_true", help="use the binaries already built")
    parser.add_argument("--quiet-timeout", type=float, default=600,
                        help="wait at most this many seconds for a quiet machine; 0: do not wait (default 600)")
    args = parser.parse_args()
    if args.pairs < 1:
        parser.error("--pairs must be at least 1")
    args.patients = args.patients or (100_000 if args.quick else 1_000_000)
    args.duration = args.duration or (5 if args.quick else 10)
    args.window = args.window or (5 if args.quick else 10)
    if shutil.which("wrk") is None:
        sys.exit("wrk not found on PATH")

    ceiling = build(args.no_build)
    run_dir = tempfile.mkdtemp(prefix="triagem-perf-", dir=args.dir)
    log(f"\n{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, commit {git_commit()}, {os.cpu_count()} CPUs; "
        f"run directory {run_dir}")
    log(f"triagem: {BINARY} serve --config {os.path.relpath(CONFIG, ROOT)} (RUST_LOG unset: log level as shipped)")
    log(f"ceiling: {ceiling}")
    if args.quiet_timeout > 0:
        wait_quiet(5, args.quiet_timeout)

    parts = [args.only] if args.only else ["ratio", "climb", "recovery"]
    results = {}
    server = None
    try:
        if "ratio" in parts:
            results["ratio"] = ratio(args, run_dir, ceiling)
        if "rates" in parts:
            results["rates"] = rates(args, run_dir)
        if "climb" in parts or "recovery" in parts:
            server, data_dir, results["climb"] = climb(args, run_dir, with_calls="climb" in parts)
            if "recovery" in parts:
                results["recovery"] = recovery(args, run_dir, server, data_dir)
            else:
                server.stop()
    except Unmeasurable as e:
        log(f"\nerror: {e}")
        if server is not None and server.alive():
            server.stop()
        sys.exit(2)
    finally:
        if not args.keep:
            for d in glob.glob(os.path.join(run_dir, "*-data")):
                shutil.rmtree(d, ignore_errors=True)

    ok = summary(args, results)
    logs = sum(os.path.getsize(p) for p in glob.glob(os.path.join(run_dir, "*.log")))
    log(f"\nlogs: {run_dir} ({logs / 2**20:.0f} MiB){'' if args.keep else '; data directories deleted'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
