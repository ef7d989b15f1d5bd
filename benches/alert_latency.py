#!/usr/bin/env python3
"""Alert latency and idle CPU of the release server (issue 3's benchmark).

    cargo build --release
    python3 benches/alert_latency.py latency   # deadline -> webhook receipt, under wrk admissions
    python3 benches/alert_latency.py cpu       # process CPU over 30 s: idle, then 20 000 waiting
    python3 benches/alert_latency.py           # both

Python 3 standard library only, plus wrk on PATH for the admission load.
Each part starts target/release/triagem on a fresh temporary data directory
and a free port, with a generated config: colour `probe` (max wait 2 s),
colour `green` (6 h, the load), `escalation.tick = "100ms"`, warning at 80 %,
ladder levels at the breach + 0 s and + 1 s, and one `[[alerts.webhooks]]`
receiver served by this script.

latency: wrk admits green patients (benches/wrk/admit.lua) for the whole run
while the script admits `probe` patients every 0.25 s. Each probe has three
deadlines: warning at 1.6 s, level 1 at 2 s, level 2 at 3 s after admission.
For every `alert.firing` the receiver records its receipt time minus that
deadline (the alert's `arrived_at` + the step's offset: probes are admitted
with a colour and no `arrived_at`, so the clock starts at arrival). The
server and this script read the same system clock. It also splits that into
deadline -> `fired_at` (the scheduler; `fired_at` has millisecond precision)
and `fired_at` -> receipt (journal commit + outbox), lists the five latest
firings with the number of admissions before their probe (about the queue's
size), and the journal's commit-time histogram from /metrics. Exit status 1
if a firing is missing, early, or later than one tick + 50 ms.

cpu: utime + stime of the server (/proc/<pid>/stat) over 30 s, once idle
after start-up, then again with 20 000 green patients waiting (6 h from
their deadline).
"""

import argparse
import http.client
import http.server
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.path.join(ROOT, "target", "release", "triagem")
ADMIT_LUA = os.path.join(ROOT, "benches", "wrk", "admit.lua")

PROBE_MAX_WAIT_S = 2
WARNING_PERCENT = 80
LEVEL_AFTER_S = [0, 1]
TICK = "100ms"
TICK_S = 0.1


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config_text(receiver_port):
    levels = "".join(
        f'[[escalation.levels]]\nname = "level-{i + 1}"\nafter = "{after}s"\n\n'
        for i, after in enumerate(LEVEL_AFTER_S)
    )
    return f"""timezone = "UTC"

[protocol]
name = "alert latency bench"
triage_max_wait = "6h"

[[protocol.colours]]
id = "probe"
label = "Probe"
max_wait = "{PROBE_MAX_WAIT_S}s"

[[protocol.colours]]
id = "green"
label = "Verde"
max_wait = "6h"

[escalation]
tick = "{TICK}"
warning_at_percent = {WARNING_PERCENT}

{levels}[[alerts.webhooks]]
url = "http://127.0.0.1:{receiver_port}/hook"

[[units]]
id = "pa"
name = "Pronto Atendimento"
ticket_prefix = "A"
rooms = ["Consultório 1"]
"""


def deadline_offset_s(kind, level):
    """Seconds from the clock's start to a step's deadline."""
    if kind == "warning":
        return PROBE_MAX_WAIT_S * WARNING_PERCENT / 100
    return PROBE_MAX_WAIT_S + LEVEL_AFTER_S[level - 1]


def parse_time(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class Receiver:
    """A local webhook receiver that timestamps every POST on arrival."""

    def __init__(self):
        self.received = []  # (receipt time, payload)
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                at = time.time()
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                with outer.lock:
                    outer.received.append((at, json.loads(body)))

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def snapshot(self):
        with self.lock:
            return list(self.received)

    def close(self):
        self.server.shutdown()


class Server:
    """The release binary on a temporary data directory and a free port."""

    def __init__(self, receiver_port):
        self.dir = tempfile.mkdtemp(prefix="triagem-bench-")
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        cfg = os.path.join(self.dir, "bench.toml")
        with open(cfg, "w") as f:
            f.write(config_text(receiver_port))
        env = dict(
            os.environ,
            TRIAGEM_DATA_DIR=os.path.join(self.dir, "data"),
            TRIAGEM_BIND=f"127.0.0.1:{self.port}",
        )
        self.log = open(os.path.join(self.dir, "server.log"), "w")
        self.proc = subprocess.Popen(
            [BINARY, "serve", "--config", cfg],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(self.base + "/readyz", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        sys.exit(f"the server did not become ready; see {self.log.name}")

    def admit(self, colour, name, conn=None):
        """Admits one patient; returns the answer's JSON."""
        own = conn is None
        conn = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        body = json.dumps({"name": name, "colour": colour})
        conn.request(
            "POST",
            "/api/v1/units/pa/patients",
            body,
            {"Content-Type": "application/json"},
        )
        res = conn.getresponse()
        data = res.read()
        if own:
            conn.close()
        if res.status != 201:
            raise RuntimeError(f"admission answered {res.status}: {data[:200]!r}")
        return json.loads(data)

    def waiting(self):
        url = self.base + "/api/v1/units/pa/queue?limit=1"
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.load(r)["total"]

    def commit_histogram(self):
        """Journal commits per duration bucket, from /metrics: [(le, count in bucket)]."""
        with urllib.request.urlopen(self.base + "/metrics", timeout=10) as r:
            text = r.read().decode()
        cumulative = []
        for line in text.splitlines():
            if line.startswith("triagem_journal_commit_seconds_bucket"):
                le = line.split('le="', 1)[1].split('"', 1)[0]
                cumulative.append((le, int(float(line.rsplit(" ", 1)[1]))))
        below = 0
        out = []
        for le, count in cumulative:
            out.append((le, count - below))
            below = count
        return out

    def cpu_seconds(self):
        """utime + stime of the server process."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]


def summary(label, values_ms):
    v = sorted(values_ms)
    if not v:
        print(f"  {label:<34} none")
        return
    print(
        f"  {label:<34} n={len(v):<4} min {v[0]:7.1f}  p50 {percentile(v, 50):7.1f}  "
        f"p99 {percentile(v, 99):7.1f}  max {v[-1]:7.1f}  mean {statistics.fmean(v):7.1f} ms"
    )


def latency(args):
    last_deadline = 1 + args.probes * args.probe_interval + PROBE_MAX_WAIT_S + LEVEL_AFTER_S[-1]
    if args.wrk_connections > 0 and last_deadline > args.duration:
        print(f"note: the last deadline (~{last_deadline:.0f} s) falls after wrk stops ({args.duration} s)")
    receiver = Receiver()
    server = Server(receiver.port)
    wrk = None
    try:
        url = server.base + "/api/v1/units/pa/patients"
        if args.wrk_connections > 0:
            cmd = [
                "wrk",
                f"-t{args.wrk_threads}",
                f"-c{args.wrk_connections}",
                f"-d{args.duration}s",
                "--latency",
                "-s",
                ADMIT_LUA,
                url,
            ]
            print("load:", " ".join(cmd))
            wrk = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
            time.sleep(1)  # let the load ramp up before the first probe
        else:
            print("load: none")
        probes = set()
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        for i in range(args.probes):
            view = server.admit("probe", f"Probe {i}", conn)
            probes.add(view["protocol"])
            time.sleep(args.probe_interval)
        conn.close()
        # Every probe fires warning, level 1 and level 2.
        expected = 1 + len(LEVEL_AFTER_S)
        last = time.time() + PROBE_MAX_WAIT_S + LEVEL_AFTER_S[-1] + 10
        while time.time() < last:
            fired = [p for _, p in receiver.snapshot() if p["event"] == "alert.firing"]
            if len(fired) >= expected * len(probes):
                break
            time.sleep(0.2)
        if wrk is not None:
            out, _ = wrk.communicate()
            wrk = None
            print(out.strip())
        waiting = server.waiting()
        commits = server.commit_histogram()
    finally:
        if wrk is not None:
            wrk.terminate()
            wrk.wait()
        server.stop()
        receiver.close()

    end_to_end, scheduler, delivery = {}, {}, {}
    firings = 0
    late = []  # (end-to-end ms, scheduler ms, deadline, admissions before the probe)
    for at, payload in receiver.snapshot():
        alert = payload["alert"]
        if payload["event"] != "alert.firing" or alert["protocol"] not in probes:
            continue
        firings += 1
        key = "warning" if alert["kind"] == "warning" else f"level {alert['level']}"
        deadline = parse_time(alert["arrived_at"]) + deadline_offset_s(alert["kind"], alert["level"])
        fired_at = parse_time(alert["fired_at"])
        # The protocol's sequence counts admissions so far: about the queue's size.
        admitted = int(alert["protocol"][4:])
        late.append(((at - deadline) * 1000, (fired_at - deadline) * 1000, deadline, admitted))
        for table, value in (
            (end_to_end, at - deadline),
            (scheduler, fired_at - deadline),
            (delivery, at - fired_at),
        ):
            table.setdefault(key, []).append(value * 1000)
            table.setdefault("all", []).append(value * 1000)
    expected_total = len(probes) * (1 + len(LEVEL_AFTER_S))
    print(
        f"\n{len(probes)} probes (max wait {PROBE_MAX_WAIT_S} s, tick {TICK}); "
        f"{firings} of {expected_total} firings received; {waiting} patients waiting at the end"
    )
    early = [v for v in end_to_end.get("all", []) if v < 0]
    print(f"received before the deadline: {len(early)}")
    for title, table in (
        ("deadline -> webhook receipt", end_to_end),
        ("deadline -> fired_at (scheduler)", scheduler),
        ("fired_at -> receipt (journal + outbox)", delivery),
    ):
        print(title)
        for key in ["all", "warning"] + [f"level {i + 1}" for i in range(len(LEVEL_AFTER_S))]:
            summary(key, table.get(key, []))
    start = min((d for _, _, d, _ in late), default=0)
    print("latest firings (deadline -> receipt / -> fired_at; deadline from the first; probe admitted after):")
    for e, f, d, n in sorted(late, reverse=True)[:5]:
        print(f"  {e:6.0f} / {f:4.0f} ms at {d - start:5.1f} s; {n} admissions")
    print("journal commits by duration (s):", ", ".join(f"≤{le}: {n}" for le, n in commits if n))
    target = TICK_S * 1000 + 50
    worst = max(end_to_end.get("all", [float("inf")]))
    ok = firings == expected_total and not early and worst < target
    print(f"target: every firing within one tick + 50 ms = {target:.0f} ms: {'met' if ok else 'MISSED'}")
    return ok


def admit_many(server, n, threads=8):
    def work(t):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        for i in range(t, n, threads):
            server.admit("green", f"Paciente {i}", conn)
        conn.close()

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def cpu_over(server, seconds):
    before, t0 = server.cpu_seconds(), time.monotonic()
    time.sleep(seconds)
    used, elapsed = server.cpu_seconds() - before, time.monotonic() - t0
    return used, elapsed


def cpu(args):
    receiver = Receiver()
    server = Server(receiver.port)
    try:
        time.sleep(args.settle)
        used, elapsed = cpu_over(server, args.window)
        print(
            f"idle, 0 waiting: {used:.2f} s CPU over {elapsed:.1f} s = {100 * used / elapsed:.2f} % of one core"
        )
        t0 = time.monotonic()
        admit_many(server, args.patients)
        waiting = server.waiting()
        print(f"admitted {args.patients} green patients in {time.monotonic() - t0:.1f} s; {waiting} waiting")
        time.sleep(args.settle)
        used, elapsed = cpu_over(server, args.window)
        print(
            f"idle, {waiting} waiting: {used:.2f} s CPU over {elapsed:.1f} s = "
            f"{100 * used / elapsed:.2f} % of one core"
        )
        alerts = len(receiver.snapshot())
        print(f"webhook notifications received: {alerts} (expected 0: nothing was due)")
    finally:
        server.stop()
        receiver.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", nargs="?", choices=["latency", "cpu", "all"], default="all")
    parser.add_argument("--probes", type=int, default=40, help="probe patients (latency)")
    parser.add_argument("--probe-interval", type=float, default=0.25, help="seconds between probes")
    parser.add_argument("--duration", type=int, default=20, help="wrk seconds (latency)")
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--wrk-connections", type=int, default=64, help="0: no load")
    parser.add_argument("--window", type=float, default=30, help="CPU window, seconds (cpu)")
    parser.add_argument("--settle", type=float, default=5, help="seconds before a CPU window")
    parser.add_argument("--patients", type=int, default=20000, help="waiting patients (cpu)")
    args = parser.parse_args()
    if not os.access(BINARY, os.X_OK):
        sys.exit(f"{BINARY} not found: run `cargo build --release` first")
    ok = True
    if args.part in ("latency", "all"):
        ok = latency(args)
    if args.part in ("cpu", "all"):
        cpu(args)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
