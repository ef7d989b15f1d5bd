#!/usr/bin/env python3
"""Durable admissions on PostgreSQL against SQLite, in one run (issue 17).

    python3 benches/pg_ratio.py                  # builds the release server
    python3 benches/pg_ratio.py --bin target/release/triagem --duration 10
    python3 benches/pg_ratio.py --link-ms 5     # PostgreSQL 5 ms away each way

Python 3 standard library, wrk on PATH and PostgreSQL's server binaries
(Debian `postgresql`). Starts a throwaway cluster (initdb/pg_ctl in a
temporary directory, its own port, as the `postgres` user when run as root)
with the server's defaults (`fsync = on`, `synchronous_commit = on`), then
runs the load of benches/perf.py (wrk -t2 -c64, benches/wrk/admit.lua)
against Triagem on SQLite (S) and on PostgreSQL (P), one server at a time,
in the order S P S P, each on a fresh data directory or database. Prints each
run's admissions/s and non-201 answers, and mean(P) / mean(S). Any answer
other than 201 fails the run. Before each load, one desk admits 50 patients one
after another and the median and slowest time of those is printed: with
`--link-ms N` PostgreSQL is reached through a proxy in this script that delivers
every byte N ms later each way (a database on another machine), which is where
the round trips of a commit show.

The machine may be shared: before the runs it waits (at most --quiet-timeout
seconds) until no build or browser has run for 5 s, and each run reports the
cores used by Triagem, by PostgreSQL (the cluster's postmaster and its
children), by wrk, and by every other process meanwhile (machine busy time from
/proc/stat minus those and this script's), as in benches/perf.py.
"""

import argparse
import asyncio
import glob
import json
import threading
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benches"))
sys.dont_write_bytecode = True  # no benches/__pycache__ from importing perf
from perf import CLK_TCK, machine_busy_seconds, proc_cpu_seconds, wait_quiet  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_postgres(cmd, root):
    if root:
        return subprocess.run(["su", "postgres", "-s", "/bin/sh", "-c", cmd], check=True)
    return subprocess.run(["sh", "-c", cmd], check=True)


def wait_ready(port, proc, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"triagem exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                if r.status == 200:
                    return
        except Exception:
            pass
        time.sleep(0.05)
    sys.exit("triagem never became ready")


def start_link(target, delay_ms):
    """A TCP proxy to 127.0.0.1:target delivering each chunk delay_ms later, in
    order, without holding up the chunks behind it; returns its port."""
    port = free_port()
    delay = delay_ms / 1000

    async def pipe(reader, writer):
        loop = asyncio.get_running_loop()
        queue = asyncio.Queue()

        async def deliver():
            while True:
                due, data = await queue.get()
                await asyncio.sleep(max(0.0, due - loop.time()))
                if not data:
                    writer.close()
                    return
                writer.write(data)
                await writer.drain()

        task = asyncio.create_task(deliver())
        while True:
            data = await reader.read(65536)
            queue.put_nowait((loop.time() + delay, data))
            if not data:
                break
        await task

    async def carry(client_reader, client_writer):
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target)
        await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer),
                             return_exceptions=True)

    async def serve(ready):
        server = await asyncio.start_server(carry, "127.0.0.1", port)
        ready.set()
        async with server:
            await server.serve_forever()

    ready = threading.Event()
    threading.Thread(target=lambda: asyncio.run(serve(ready)), daemon=True).start()
    ready.wait()
    return port


def one_desk(port, n=50):
    """n admissions one after another: (median, slowest) in ms."""
    body = json.dumps({"name": "Desk Patient", "colour": "green"}).encode()
    took = []
    for _ in range(n):
        req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/units/pa/patients", body,
                                     {"Content-Type": "application/json"})
        t0 = time.monotonic()
        with urllib.request.urlopen(req, timeout=30) as r:
            if r.status != 201:
                sys.exit(f"one desk: {r.status}")
        took.append((time.monotonic() - t0) * 1000)
    took.sort()
    return took[len(took) // 2], took[-1]


def postgres_cpu_seconds(postmaster):
    """CPU of the cluster: the postmaster (with its reaped children) and its live children."""
    total = 0.0
    try:
        with open(f"/proc/{postmaster}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += sum(int(x) for x in fields[11:15]) / CLK_TCK
    except OSError:
        return 0.0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == postmaster:
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return total


def run_wrk(port, duration, server_pid, postmaster):
    cmd = ["wrk", "-t2", "-c64", f"-d{duration}s", "--latency",
           "-s", os.path.join(ROOT, "benches/wrk/admit.lua"),
           f"http://127.0.0.1:{port}/api/v1/units/pa/patients"]
    t0, busy0 = time.monotonic(), machine_busy_seconds()
    server0, pg0 = proc_cpu_seconds(server_pid), postgres_cpu_seconds(postmaster)
    me = os.times()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = proc.stdout.read()
    proc.stdout.close()
    # wait4 rather than wait: it gives wrk's CPU time.
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{out}")
    elapsed = time.monotonic() - t0
    server = proc_cpu_seconds(server_pid) - server0
    pg = postgres_cpu_seconds(postmaster) - pg0
    wrk = usage.ru_utime + usage.ru_stime
    me1 = os.times()
    mine = me1.user + me1.system - me.user - me.system
    others = max(0.0, machine_busy_seconds() - busy0 - server - pg - wrk - mine)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    bad = int(re.search(r"(\d+) not 201", out).group(1))
    errors = re.search(r"Socket errors:.*", out)
    p99 = re.search(r"p99: ([\d.]+) ms", out).group(1)
    cores = {"triagem": server / elapsed, "postgres": pg / elapsed,
             "wrk": wrk / elapsed, "others": others / elapsed}
    return rps, bad, errors.group(0) if errors else "", p99, cores


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=None)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--quiet-timeout", type=float, default=120,
                    help="longest wait for a quiet machine before measuring anyway (s)")
    ap.add_argument("--link-ms", type=float, default=0,
                    help="reach PostgreSQL through a proxy adding this many ms each way")
    args = ap.parse_args()
    binary = args.bin
    if binary is None:
        subprocess.run(["cargo", "build", "--release", "--bin", "triagem"], cwd=ROOT, check=True)
        binary = os.path.join(ROOT, "target/release/triagem")
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins or not shutil.which("wrk"):
        sys.exit("needs PostgreSQL (apt-get install postgresql) and wrk")
    pg = os.path.dirname(bins[-1])
    root = os.geteuid() == 0
    work = tempfile.mkdtemp(prefix="triagem-pgratio-")
    os.chmod(work, 0o755)
    if root:
        shutil.chown(work, "postgres")
    pg_port = free_port()
    as_postgres(f"{pg}/initdb -D {work}/pg -A trust -U postgres >/dev/null", root)
    as_postgres(f"{pg}/pg_ctl -D {work}/pg -l {work}/pg.log -w -o "
                f"'-p {pg_port} -k {work} -c listen_addresses=127.0.0.1' start >/dev/null", root)
    shipped = open(os.path.join(ROOT, "config/default.toml")).read()
    config = os.path.join(work, "postgres.toml")
    with open(config, "w") as f:
        f.write(shipped.replace("[storage]\n", '[storage]\nbackend = "postgres"\n', 1))
    with open(f"{work}/pg/postmaster.pid") as f:
        postmaster = int(f.readline())
    show = subprocess.run(["psql", "-qAt", "-h", "127.0.0.1", "-p", str(pg_port), "-U", "postgres",
                           "-c", "SELECT current_setting('server_version') || ', fsync=' || "
                                 "current_setting('fsync') || ', synchronous_commit=' || "
                                 "current_setting('synchronous_commit')"],
                          capture_output=True, text=True, check=True).stdout.strip()
    print(f"PostgreSQL {show}; {os.cpu_count()} cores", flush=True)
    link = start_link(pg_port, args.link_ms) if args.link_ms else pg_port
    if args.link_ms:
        print(f"PostgreSQL reached through a link of {args.link_ms:g} ms each way", flush=True)
    wait_quiet(5, args.quiet_timeout)
    results = {"S": [], "P": []}
    try:
        for i, kind in enumerate("SPSP"):
            port = free_port()
            env = {k: v for k, v in os.environ.items()
                   if not k.startswith("TRIAGEM_") and k != "RUST_LOG"}
            env["TRIAGEM_BIND"] = f"127.0.0.1:{port}"
            env["TRIAGEM_DATA_DIR"] = os.path.join(work, f"data-{i}")
            cfg = os.path.join(ROOT, "config/default.toml")
            if kind == "P":
                db = f"bench{i}"
                subprocess.run(["psql", "-q", "-h", "127.0.0.1", "-p", str(pg_port), "-U", "postgres",
                                "-c", f"CREATE DATABASE {db}"], check=True)
                env["TRIAGEM_DATABASE_URL"] = f"postgres://postgres@127.0.0.1:{link}/{db}"
                cfg = config
            log = open(os.path.join(work, f"triagem-{i}.log"), "w")
            proc = subprocess.Popen([binary, "serve", "--config", cfg], env=env,
                                    stdout=log, stderr=log)
            try:
                wait_ready(port, proc)
                desk = one_desk(port)
                rps, bad, errors, p99, cores = run_wrk(port, args.duration, proc.pid, postmaster)
            finally:
                proc.terminate()
                proc.wait()
            name = "SQLite" if kind == "S" else "PostgreSQL"
            used = ", ".join(f"{k} {v:.2f}" for k, v in cores.items())
            print(f"{name:<10} one desk {desk[0]:.1f} ms (slowest {desk[1]:.1f}); "
                  f"{rps:>6.0f} admissions/s  p99 {p99} ms  {bad} not 201  {errors}"
                  f"  cores: {used}", flush=True)
            if bad or errors:
                sys.exit("answers other than 201, or socket errors")
            results[kind].append(rps)
    finally:
        as_postgres(f"{pg}/pg_ctl -D {work}/pg -m fast stop >/dev/null", root)
    s = sum(results["S"]) / len(results["S"])
    p = sum(results["P"]) / len(results["P"])
    print(f"mean SQLite {s:.0f}/s, PostgreSQL {p:.0f}/s: ratio {p / s:.2f}")
    print(f"run directory (logs): {work}")


if __name__ == "__main__":
    main()
