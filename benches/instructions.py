#!/usr/bin/env python3
"""Instructions per durable admission, per thread, under valgrind (issue 15).

    python3 benches/instructions.py                              # target/release/triagem
    python3 benches/instructions.py --bin /tmp/old --top 15      # and the costliest functions
    python3 benches/instructions.py --restart                    # start-up, per patient read back
    python3 benches/instructions.py --ceiling                    # and the bare server beside it

Req/s and CPU time on this machine drift by a quarter within minutes, which
hides a change of a few per cent. Instructions do not drift: this runs the
release server under `valgrind --tool=callgrind --separate-threads=yes` on a
fresh data directory, admits for 2 s uninstrumented (so start-up, each
worker's first requests and the first growth of the maps and buffers are not
counted: they made a build look dearer the fewer admissions fitted in the
run), then for --seconds with instrumentation on (`callgrind_control -i`),
both with `wrk -t1 -c16` (benches/wrk/admit.lua), stops it with SIGTERM, and
divides each thread's instructions by the admissions made while it was on
(`triagem_admissions_total`). The threads
are told apart by what they ran: the actix workers (HTTP, the domain, the
answer), the journal writer (SQL, commit, event streams) and its checkpoint
thread; start-up lands in "other". User-space only: the kernel's share (TCP,
fsync; about a third of a worker's time in `/proc/<tid>/stat`) is not
counted, and valgrind's CPU lacks SHA extensions, so the check code's HMAC
counts more than it costs natively; likewise a `rep stosb` counts one
instruction per byte (actix-http zeroes a 3 KiB header index at every
parse: `__memset_avx2_unaligned_erms`, ~18 000 per admission here, a few
hundred cycles natively). Compare builds with each other, not with
wall-clock figures.

--ceiling also counts the bare actix-web server of benches/ceiling.rs (the
newest built by `cargo bench --no-run --bench ceiling`) the same way, per
request answered, and prints its instructions over Triagem's: the ratio of
`perf.py` in a unit that does not drift with the machine. It leaves out
the kernel (TCP, the journal's writes and fsync, the wake-ups between the
workers and the writer, which cost Triagem more per answer than the ceiling)
and wrk: what the ratio would be if only user-space work counted.

--restart measures start-up instead: the server (not under valgrind) admits
for --seconds with `wrk -t2 -c64` into a fresh data directory and is
stopped; it then starts again under callgrind, and the instructions of the
two start-up threads (the reader that reads and decodes the patients, and
the thread that rebuilds the queues and the escalation from them) are divided
by the patients read back. The reader leaves batches undecoded for the
rebuilding thread when it is waiting, so compare the sum of the two.

Needs valgrind (Debian package `valgrind`) and wrk on PATH. Standard library only.
"""

import argparse
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADMIT = "/api/v1/units/pa/patients"

# What a thread ran tells which it is (callgrind's files carry no thread names).
# (Names a thread's file defines; a file may mention others' only by number.)
RESTART_KINDS = [
    ("start-up rebuild", "Department::restore"),
    ("start-up reader", "sqlite::Feed"),
]
# The first marker a thread's file names wins: the writer checkpoints too.
KINDS = [
    ("journal writer", "journal::Writer::run"),
    ("checkpoint thread", "sqlite3WalCheckpoint"),
    ("actix workers", "h1::dispatcher::Dispatcher"),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return r.status, r.read().decode()


def admissions(port):
    _, text = get(port, "/metrics")
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith("triagem_admissions_total"))


def thread_files(out_dir, kinds):
    """{kind: [(instructions, path)]} over the threads' callgrind files; `kinds`
    is [(kind, marker)], the first whose marker a file names wins, else "other"."""
    by_kind = {}
    for path in sorted(glob.glob(os.path.join(out_dir, "cg.out-*"))):
        with open(path, errors="replace") as f:
            text = f.read()
        # `summary:` is 0 when counting began after start-up; `totals:` is right.
        m = re.search(r"^totals:\s+(\d+)", text, re.M) or re.search(r"^summary:\s+(\d+)", text, re.M)
        kind = next((k for k, marker in kinds if marker in text), "other")
        by_kind.setdefault(kind, []).append((int(m.group(1)) if m else 0, path))
    return by_kind


def top_functions(paths, n, admitted):
    """The costliest functions (exclusive) over some threads' files, per admission."""
    totals = {}
    for path in paths:
        out = subprocess.run(["callgrind_annotate", "--inclusive=no", "--auto=no", path],
                             capture_output=True, text=True).stdout
        listing = out.split("file:function", 1)[-1].split("\n\n", 1)[0]
        for line in listing.splitlines():
            m = re.match(r"\s*([\d,]+)\s+\([^)]*\)\s+(.+?)(?:\s+\[[^\]]*\])?$", line)
            if not m:
                continue
            # `file:function`; the file has no colon, the function may have many.
            where = m.group(2)
            f = re.match(r"^(\?\?\?|\S+?\.(?:rs|c|S|h)):(.+)$", where)
            name = f.group(2) if f else where
            totals[name] = totals.get(name, 0) + int(m.group(1).replace(",", ""))
    for name, ir in sorted(totals.items(), key=lambda kv: -kv[1])[:n]:
        print(f"      {ir / admitted:9,.0f}  {name[:110]}")


def callgrind(out_dir, count_from_start):
    """The valgrind command both servers run under, so they are counted alike."""
    return ["valgrind", "--tool=callgrind", "--separate-threads=yes",
            f"--instr-atstart={'yes' if count_from_start else 'no'}",
            f"--callgrind-out-file={out_dir}/cg.out"]


def launch(cmd, env, log_path, ready, timeout=600):
    """Starts `cmd` and waits, at most `timeout` seconds, until `ready()`."""
    with open(log_path, "a") as log:
        server = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while True:
        try:
            if ready():
                return server
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            sys.exit(f"the server did not become ready; see {log_path}")
        time.sleep(0.5)


def start(binary, data_dir, out_dir, under_valgrind, count_from_start=True):
    """The server on a free port, waited for until ready: (process, port)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIAGEM_") and k != "RUST_LOG"}
    env.update(TRIAGEM_BIND=f"127.0.0.1:{port}", TRIAGEM_DATA_DIR=data_dir)
    cmd = [binary, "serve", "--config", os.path.join(ROOT, "config", "default.toml")]
    if under_valgrind:
        cmd = callgrind(out_dir, count_from_start) + cmd
    server = launch(cmd, env, os.path.join(out_dir, "server.log"),
                    lambda: get(port, "/readyz")[0] == 200)
    return server, port


def instrument(server, state):
    """Turns callgrind's counting on or off in the running server."""
    subprocess.run(["callgrind_control", "-i", state, str(server.pid)],
                   check=True, capture_output=True)


def stop(server):
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=300)


def admit(port, seconds, threads, connections):
    """Admissions made so far, from the server's metrics."""
    run_wrk(port, seconds, threads, connections)
    return admissions(port)


def run_wrk(port, seconds, threads, connections):
    """Requests answered, all 201, from wrk's own count."""
    wrk = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "-s",
         os.path.join(ROOT, "benches", "wrk", "admit.lua"), f"http://127.0.0.1:{port}{ADMIT}"],
        capture_output=True, text=True)
    m = re.search(r"admissions: (\d+) requests, 0 not 201", wrk.stdout)
    if not m:
        sys.exit(f"admissions failed:\n{wrk.stdout}{wrk.stderr}")
    return int(m.group(1))


def ceiling(args, work):
    """The bare server's instructions per request answered, counted like Triagem's."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from perf import build  # the newest ceiling executable in target/release/deps

    binary = build(no_build=True)
    port = free_port()

    def listening():
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True

    server = launch(callgrind(work, count_from_start=False) + [binary, "--bench"],
                    dict(os.environ, CEILING_BIND=f"127.0.0.1:{port}"),
                    os.path.join(work, "ceiling.log"), listening, timeout=120)
    try:
        run_wrk(port, 2, 1, 16)
        instrument(server, "on")
        answered = run_wrk(port, args.seconds, 1, 16)
        instrument(server, "off")
    finally:
        stop(server)
    workers = thread_files(work, KINDS).get("actix workers", [])
    per_request = sum(i for i, _ in workers) / answered
    print(f"{binary}: {answered} requests counted in {args.seconds} s under callgrind "
          f"(wrk -t1 -c16, after 2 s uncounted)")
    print(f"  {'actix workers':18s} {per_request:9,.0f}   ({len(workers)} threads)")
    if args.top:
        print(f"  top {args.top} functions of the actix workers (exclusive, per request):")
        top_functions([p for _, p in workers], args.top, answered)
    return per_request


def restart(args, work):
    """Instructions per patient read back, for the two start-up threads."""
    data = os.path.join(work, "data")
    server, port = start(args.bin, data, work, under_valgrind=False)
    try:
        admitted = admit(port, args.seconds, 2, 64)
    finally:
        stop(server)
    server, _ = start(args.bin, data, work, under_valgrind=True)
    stop(server)
    with open(os.path.join(work, "server.log"), errors="replace") as f:
        log = re.sub(r"\x1b\[[0-9;]*m", "", f.read())
    ready = re.findall(r"journal recovered; ready patients=(\d+)", log)
    patients = int(ready[-1]) if ready else admitted
    print(f"{args.bin}: start-up under callgrind with {patients:.0f} patients read back "
          f"(admitted natively in {args.seconds} s, wrk -t2 -c64)")
    print("instructions per patient read back (user space):")
    found = thread_files(work, RESTART_KINDS)
    files = {kind: found.get(kind, []) for kind, _ in RESTART_KINDS}
    for kind, _ in RESTART_KINDS:
        print(f"  {kind:18s} {sum(i for i, _ in files[kind]) / patients:9,.0f}")
    total = sum(i for rows in files.values() for i, _ in rows)
    # Which thread decodes a batch depends on which one is waiting, and
    # valgrind runs one thread at a time: the split is not native, the sum is.
    print(f"  {'both':18s} {total / patients:9,.0f}")
    if args.top:
        print(f"  top {args.top} functions of both (exclusive, per patient):")
        top_functions([p for rows in files.values() for _, p in rows], args.top, patients)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "triagem"))
    ap.add_argument("--seconds", type=int, default=10, help="admission load (default 10)")
    ap.add_argument("--top", type=int, default=0, help="also list the N costliest functions of each thread kind")
    ap.add_argument("--restart", action="store_true", help="measure start-up, per patient read back")
    ap.add_argument("--ceiling", action="store_true",
                    help="also count benches/ceiling.rs's server and print the ratio of the two")
    args = ap.parse_args()
    for tool in ("valgrind", "callgrind_annotate", "callgrind_control", "wrk"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not on PATH (valgrind: Debian package `valgrind`)")

    work = tempfile.mkdtemp(prefix="triagem-instructions-")
    if args.restart:
        restart(args, work)
        shutil.rmtree(work, ignore_errors=True)
        return
    server, port = start(args.bin, os.path.join(work, "data"), work, under_valgrind=True,
                         count_from_start=False)
    try:
        before = admit(port, 2, 1, 16)
        instrument(server, "on")
        admitted = admit(port, args.seconds, 1, 16) - before
        instrument(server, "off")
    finally:
        stop(server)
    if admitted == 0:
        sys.exit("no admission was made")

    by_kind = thread_files(work, KINDS)
    print(f"{args.bin}: {admitted:.0f} admissions counted in {args.seconds} s under callgrind "
          f"(wrk -t1 -c16, after 2 s uncounted)")
    print("instructions per admission (user space):")
    for kind in [k for k, _ in KINDS] + ["other"]:
        if kind in by_kind:
            ir = sum(i for i, _ in by_kind[kind])
            print(f"  {kind:18s} {ir / admitted:9,.0f}   ({len(by_kind[kind])} thread{'s' if len(by_kind[kind]) > 1 else ''})")
    served = sum(i for k, rows in by_kind.items() if k != "other" for i, _ in rows)
    print(f"  {'workers + journal':18s} {served / admitted:9,.0f}")
    if args.top:
        for kind in ("actix workers", "journal writer"):
            print(f"  top {args.top} functions of the {kind} (exclusive, per admission):")
            top_functions([p for _, p in by_kind.get(kind, [])], args.top, admitted)
    shutil.rmtree(work, ignore_errors=True)
    if args.ceiling:
        work = tempfile.mkdtemp(prefix="triagem-instructions-ceiling-")
        bare = ceiling(args, work)
        shutil.rmtree(work, ignore_errors=True)
        print(f"ceiling / Triagem: {bare:,.0f} / {served / admitted:,.0f} = {bare / (served / admitted):.3f} "
              f"(user-space instructions per answer; perf.py's ratio adds the kernel and the wait for fsync)")


if __name__ == "__main__":
    main()
