#!/usr/bin/env python3
"""Durable admissions on PostgreSQL against SQLite, in one run (issue 17).

    python3 benches/pg_ratio.py                  # builds the release server
    python3 benches/pg_ratio.py --bin target/release/triagem --duration 10

Python 3 standard library, wrk on PATH and PostgreSQL's server binaries
(Debian `postgresql`). Starts a throwaway cluster (initdb/pg_ctl in a
temporary directory, its own port, as the `postgres` user when run as root)
with the server's defaults (`fsync = on`, `synchronous_commit = on`), then
runs the load of benches/perf.py (wrk -t2 -c64, benches/wrk/admit.lua)
against Triagem on SQLite (S) and on PostgreSQL (P), one server at a time,
in the order S P S P, each on a fresh data directory or database. Prints each
run's admissions/s and non-201 answers, and mean(P) / mean(S). Any answer
other than 201 fails the run.
"""

import argparse
import glob
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


def run_wrk(port, duration):
    out = subprocess.run(
        ["wrk", "-t2", "-c64", f"-d{duration}s", "--latency",
         "-s", os.path.join(ROOT, "benches/wrk/admit.lua"),
         f"http://127.0.0.1:{port}/api/v1/units/pa/patients"],
        capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    bad = int(re.search(r"(\d+) not 201", out).group(1))
    errors = re.search(r"Socket errors:.*", out)
    p99 = re.search(r"p99: ([\d.]+) ms", out).group(1)
    return rps, bad, errors.group(0) if errors else "", p99


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=None)
    ap.add_argument("--duration", type=int, default=10)
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
                env["TRIAGEM_DATABASE_URL"] = f"postgres://postgres@127.0.0.1:{pg_port}/{db}"
                cfg = config
            log = open(os.path.join(work, f"triagem-{i}.log"), "w")
            proc = subprocess.Popen([binary, "serve", "--config", cfg], env=env,
                                    stdout=log, stderr=log)
            try:
                wait_ready(port, proc)
                rps, bad, errors, p99 = run_wrk(port, args.duration)
            finally:
                proc.terminate()
                proc.wait()
            name = "SQLite" if kind == "S" else "PostgreSQL"
            print(f"{name:<10} {rps:>9.0f} admissions/s  p99 {p99} ms  {bad} not 201  {errors}",
                  flush=True)
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
