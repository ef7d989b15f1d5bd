#!/usr/bin/env python3
"""Disk-full drill (issue 16): the real binary's data dir on a small tmpfs that
fills up under a load of admissions, then space freed.

Measures and checks: admissions answered 503 (never another 5xx) once the disk
is full; /readyz 503; how long after space is freed /readyz says 200 and an
admission is 201 again; after a kill -9 and a restart, every acknowledged
admission is there, no refused one is (waiting count = acknowledged count) and
protocol numbers are 1..N without a gap. Needs root (mount) and a built
binary:

    cargo build --release
    sudo python3 benches/diskfull.py [--bin target/release/triagem] [--size-mb 24]
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from drill import free_port, request


class Server:
    def __init__(self, binary, config, log):
        self.binary, self.config, self.log = binary, config, log
        self.proc = None

    def start(self):
        out = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--config", self.config],
            stdout=out, stderr=out, stdin=subprocess.DEVNULL)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


def wait_ready(base, within=30):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if request("GET", base + "/readyz", timeout=1)[0] == 200:
            return True
        time.sleep(0.05)
    return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/triagem")
    ap.add_argument("--size-mb", type=int, default=24)
    ap.add_argument("--desks", type=int, default=4)
    ap.add_argument("--full-for", type=float, default=5.0,
                    help="seconds of load against the full disk before space is freed")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("skipped: mounting a tmpfs needs root")
        return 0

    work = tempfile.mkdtemp(prefix="triagem-diskfull-")
    mnt = os.path.join(work, "disk")
    os.mkdir(mnt)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={args.size_mb}m", "tmpfs", mnt],
                   check=True)
    server = None
    try:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        config = os.path.join(work, "triagem.toml")
        with open("config/default.toml") as f:
            text = f.read()
        text = text.replace('bind = "127.0.0.1:8080"', f'bind = "127.0.0.1:{port}"')
        text = text.replace('data_dir = "data"', f'data_dir = "{mnt}/data"')
        with open(config, "w") as f:
            f.write(text)
        server = Server(os.path.abspath(args.bin), config, os.path.join(work, "server.log"))
        server.start()
        if not wait_ready(base):
            print("never ready; log in", server.log)
            return 1

        lock = threading.Lock()
        acked, refused, other, errors = [], [], {}, []
        stop = threading.Event()

        def desk(n):
            i = 0
            while not stop.is_set():
                name = f"Desk {n} patient {i}"
                status, body = request("POST", base + "/api/v1/units/pa/patients",
                                       {"name": name, "complaint": "x" * 200})
                with lock:
                    if status == 201:
                        acked.append((json.loads(body)["protocol"], name, time.monotonic()))
                    elif status == 503:
                        refused.append((name, time.monotonic()))
                    elif status is None:
                        errors.append(body.decode(errors="replace"))
                    else:
                        other[status] = other.get(status, 0) + 1
                i += 1

        # Fill the disk but for a little: the load then uses up the rest.
        filler = os.path.join(mnt, "filler")
        st = os.statvfs(mnt)
        leave = 3 * 1024 * 1024
        with open(filler, "wb") as f:
            f.write(b"\0" * max(0, st.f_bavail * st.f_frsize - leave))

        threads = [threading.Thread(target=desk, args=(n,)) for n in range(args.desks)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        readyz = []  # (time, status)
        first_503 = None
        while time.monotonic() - t0 < 120:
            s = request("GET", base + "/readyz", timeout=1)[0]
            readyz.append((time.monotonic(), s))
            if s == 503 and first_503 is None:
                first_503 = time.monotonic()
            if first_503 and time.monotonic() - first_503 > args.full_for:
                break
            time.sleep(0.05)
        if first_503 is None:
            print("the disk never filled up; raise the load or lower --size-mb")
            return 1
        with lock:
            acked_before_free = len(acked)
            refused_before_free = len(refused)
        os.remove(filler)
        freed = time.monotonic()
        ready_again = admitted_again = None
        while time.monotonic() - freed < 60 and (ready_again is None or admitted_again is None):
            s = request("GET", base + "/readyz", timeout=1)[0]
            if s == 200 and ready_again is None:
                ready_again = time.monotonic() - freed
            with lock:
                if admitted_again is None and acked and acked[-1][2] > freed:
                    admitted_again = min(a[2] for a in acked if a[2] > freed) - freed
            time.sleep(0.02)
        time.sleep(2)
        stop.set()
        for t in threads:
            t.join()

        # Read back from the journal alone.
        server.kill()
        server.start()
        if not wait_ready(base):
            print("not ready after the restart; log in", server.log)
            return 1
        lost = [p for p, _, _ in acked
                if request("GET", f"{base}/api/v1/patients/{p}")[0] != 200]
        status, body = request("GET", base + "/api/v1/units/pa/queue?queue=triage&limit=1")
        total = json.loads(body).get("total") if status == 200 else None
        numbers = sorted(int(p[4:]) for p, _, _ in acked)
        gaps = [n for n in range(1, numbers[-1] + 1) if n not in set(numbers)] if numbers else []
        # A gap is fine only if it belongs to an indeterminate request (none here).
        print("== disk-full drill")
        print(f"tmpfs {args.size_mb} MiB, {args.desks} desks admitting, {args.full_for:.0f} s "
              f"against the full disk, binary {args.bin}")
        print(f"admissions: {len(acked)} acknowledged ({acked_before_free} before space was "
              f"freed), {len(refused)} refused with 503 ({refused_before_free} while full), "
              f"other statuses {other or 'none'}, transport errors {len(errors)}")
        full_503 = [s for t, s in readyz if t >= first_503]
        print(f"/readyz while full: {sum(1 for s in full_503 if s == 503)} of {len(full_503)} "
              f"probes answered 503")
        print(f"after space was freed: /readyz 200 in {ready_again:.2f} s, first admission "
              f"201 in {admitted_again:.2f} s" if ready_again is not None and admitted_again is not None
              else f"after space was freed: ready {ready_again}, admitted {admitted_again}")
        print(f"after kill -9 and restart: {len(lost)} acknowledged lost, waiting {total} "
              f"(acknowledged {len(acked)}), protocol numbers without a gap: {not gaps}")
        ok = (not lost and total == len(acked) and not gaps and not other and not errors
              and ready_again is not None and admitted_again is not None
              and refused_before_free > 0)
        print("DRILL PASSED" if ok else "DRILL FAILED")
        return 0 if ok else 1
    finally:
        if server:
            server.kill()
        subprocess.run(["umount", mnt])
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
