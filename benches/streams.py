#!/usr/bin/env python3
"""A thousand screens and slow clients (issue 16): desks admit and call at a
steady pace, first alone (quiet), then while 2 000 ward screens hold event
streams open, slowloris clients trickle request heads and bodies, and a few
screens stop reading.

Measures and checks: the desks' p50/p99/max latency quiet and loaded (the
target is loaded p99 within 2x quiet); that every reading screen received every
event (its last event id equals the last one sent); that slow heads are closed
after `server.request_head_timeout` and slow bodies answered 408 after
`server.request_body_timeout`; that screens that stop reading are dropped after
`server.send_timeout` (`triagem_event_streams` falls by their number); the
service's CPU and resident memory in each phase. Needs a built binary and
~2 100 file descriptors (`ulimit -n`):

    cargo build --release
    python3 benches/streams.py [--bin target/release/triagem] [--streams 2000]
"""

import argparse
import http.client
import json
import multiprocessing
import os
import resource
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from drill import free_port

SEND_TIMEOUT = 5  # seconds, written into the drill's config
HEAD_TIMEOUT = 5
BODY_TIMEOUT = 5


def get(base, path, timeout=5):
    with urllib.request.urlopen(base + path, timeout=timeout) as r:
        return r.read()


def metric(base, name):
    for line in get(base, "/metrics").decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def proc_stat(pid):
    """(CPU seconds used so far, resident bytes)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    return cpu, rss


def desks(port, n, pace, seconds, out):
    """n desks, each admitting then calling every `pace` seconds, on keep-alive
    connections; sends back the latencies (ms) and the statuses seen."""
    lat, statuses, lock = [], {}, threading.Lock()
    stop = time.monotonic() + seconds

    def desk(d):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        i = 0
        next_at = time.monotonic()
        while time.monotonic() < stop:
            if i % 2 == 0:
                path = "/api/v1/units/pa/patients"
                body = {"name": f"Desk {d} patient {i}", "colour": "green"}
            else:
                path = "/api/v1/units/pa/call"
                body = {"room": "Consultório 1"}
            t0 = time.perf_counter()
            conn.request("POST", path, json.dumps(body),
                         {"Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
            ms = (time.perf_counter() - t0) * 1000
            with lock:
                lat.append(ms)
                statuses[r.status] = statuses.get(r.status, 0) + 1
            i += 1
            next_at += pace
            time.sleep(max(0.0, next_at - time.monotonic()))

    threads = [threading.Thread(target=desk, args=(d,)) for d in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.send((lat, statuses))


def last_id(tail):
    """The id of the last whole `id:` line in `tail`, or None."""
    end = len(tail)
    while True:
        i = tail.rfind(b"id: ", 0, end)
        if i < 0:
            return None
        nl = tail.find(b"\n", i)
        if (i == 0 or tail[i - 1:i] == b"\n") and nl > 0:
            try:
                return int(tail[i + 4:nl])
            except ValueError:
                return None
        end = i


def screens(port, count, stalled, slow_heads, slow_bodies, ready, stop, out):
    """Holds `count` reading streams, `stalled` that never read after their
    head, and slowloris clients; reports what each saw."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
    req = b"GET /api/v1/units/pa/events HTTP/1.1\r\nHost: triagem\r\n\r\n"
    ep = select.epoll()
    socks, tails = {}, {}
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(req)
        s.setblocking(False)
        socks[s.fileno()] = s
        tails[s.fileno()] = b""
        ep.register(s.fileno(), select.EPOLLIN)
    stalled_socks = []
    for _ in range(stalled):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
        s.connect(("127.0.0.1", port))
        s.sendall(req)
        s.recv(64)  # the status line, then never again
        stalled_socks.append(s)

    slow_closed_after, slow_408_after, slow_errors = [], [], []

    def slow_head():
        while not stop.is_set():
            s = socket.create_connection(("127.0.0.1", port))
            t0 = time.monotonic()
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: triagem\r\n")
            try:
                while not stop.is_set():
                    s.sendall(b"X-Slow: 1\r\n")
                    s.settimeout(1.0)
                    try:
                        s.recv(4096)  # a 408, or the end: either way closed
                    except socket.timeout:
                        continue
                    slow_closed_after.append(time.monotonic() - t0)
                    break
            except OSError:
                slow_closed_after.append(time.monotonic() - t0)
            s.close()

    def slow_body():
        while not stop.is_set():
            s = socket.create_connection(("127.0.0.1", port))
            t0 = time.monotonic()
            # Not a desk's route, so the desks' time in the service is their own.
            s.sendall(b"POST /api/v1/patients/20260000000000001/triage HTTP/1.1\r\nHost: triagem\r\n"
                      b"Content-Type: application/json\r\nContent-Length: 400\r\n\r\n{")
            answer = b""
            try:
                while not stop.is_set():
                    s.sendall(b" ")
                    s.settimeout(1.0)
                    try:
                        chunk = s.recv(4096)
                    except socket.timeout:
                        continue
                    answer += chunk
                    if not chunk or b"\r\n\r\n" in answer:
                        break
            except OSError as e:
                slow_errors.append(str(e))
            if answer.startswith(b"HTTP/1.1 408"):
                slow_408_after.append(time.monotonic() - t0)
            elif answer:
                slow_errors.append(answer[:40].decode(errors="replace"))
            s.close()

    helpers = ([threading.Thread(target=slow_head) for _ in range(slow_heads)]
               + [threading.Thread(target=slow_body) for _ in range(slow_bodies)])
    for t in helpers:
        t.start()
    ready.set()

    broken = 0
    while not stop.is_set():
        # Sweep every 200 ms: each recv takes whatever arrived meanwhile, so
        # this process leaves the cores to the service and the desks.
        time.sleep(0.2)
        for fd, _ in ep.poll(0):
            s = socks[fd]
            try:
                chunk = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                ep.unregister(fd)
                broken += 1
                continue
            tails[fd] = (tails[fd] + chunk)[-512:]
    # Drain what is still in flight.
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        for fd, _ in ep.poll(0.1):
            try:
                chunk = socks[fd].recv(65536)
            except OSError:
                chunk = b""
            if chunk:
                tails[fd] = (tails[fd] + chunk)[-512:]
            else:
                ep.unregister(fd)
    for t in helpers:
        t.join()
    ids = [last_id(t) for t in tails.values()]
    out.send({
        "cpu": time.process_time(),
        "last_ids": ids,
        "broken": broken,
        "slow_closed_after": slow_closed_after,
        "slow_408_after": slow_408_after,
        "slow_errors": slow_errors[:5],
    })
    for s in list(socks.values()) + stalled_socks:
        s.close()


def server_time(base, routes):
    """(requests, seconds in the service) of `routes` so far, from the
    duration histogram: the service's own share of the desks' latency; and
    (seconds, count) of the journal's commits so far."""
    n = total = 0.0
    commits = [0.0, 0.0]
    for line in get(base, "/metrics").decode().splitlines():
        if line.startswith("triagem_journal_commit_seconds_sum"):
            commits[0] = float(line.split()[-1])
        if line.startswith("triagem_journal_commit_seconds_count"):
            commits[1] = float(line.split()[-1])
        if not line.startswith("triagem_http_request_duration_seconds_"):
            continue
        if not any(f'route="{r}"' in line for r in routes):
            continue
        if line.startswith("triagem_http_request_duration_seconds_sum"):
            total += float(line.split()[-1])
        elif line.startswith("triagem_http_request_duration_seconds_count"):
            n += float(line.split()[-1])
    return n, total, commits


DESK_ROUTES = ["/api/v1/units/{unit}/patients", "/api/v1/units/{unit}/call"]


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")


def run_desks(port, args):
    rx, tx = multiprocessing.Pipe(False)
    p = multiprocessing.Process(target=desks, args=(port, args.desks, args.pace, args.seconds, tx))
    p.start()
    lat, statuses = rx.recv()
    p.join()
    return lat, statuses


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/triagem")
    ap.add_argument("--streams", type=int, default=2000)
    ap.add_argument("--stalled", type=int, default=10)
    ap.add_argument("--slow-heads", type=int, default=10)
    ap.add_argument("--slow-bodies", type=int, default=5)
    ap.add_argument("--desks", type=int, default=4)
    ap.add_argument("--pace", type=float, default=0.25, help="seconds between a desk's requests")
    ap.add_argument("--seconds", type=float, default=30)
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.streams + args.stalled + args.slow_heads + args.slow_bodies + 200
    if hard < need:
        print(f"needs {need} file descriptors; `ulimit -Hn` is {hard}")
        return 1
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    work = tempfile.mkdtemp(prefix="triagem-streams-")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with open("config/default.toml") as f:
        text = f.read()
    for old, new in [
        ('bind = "127.0.0.1:8080"', f'bind = "127.0.0.1:{port}"'),
        ('data_dir = "data"', f'data_dir = "{work}/data"'),
        ('request_head_timeout = "5s"', f'request_head_timeout = "{HEAD_TIMEOUT}s"'),
        ('request_body_timeout = "10s"', f'request_body_timeout = "{BODY_TIMEOUT}s"'),
        ('send_timeout = "30s"', f'send_timeout = "{SEND_TIMEOUT}s"'),
    ]:
        assert old in text, old
        text = text.replace(old, new)
    config = os.path.join(work, "triagem.toml")
    with open(config, "w") as f:
        f.write(text)
    log = open(os.path.join(work, "server.log"), "wb")
    server = subprocess.Popen([os.path.abspath(args.bin), "serve", "--config", config],
                              stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                get(base, "/readyz", 1)
                break
            except OSError:
                time.sleep(0.05)
        else:
            print("never ready; log in", log.name)
            return 1

        cpu0, rss_quiet0 = proc_stat(server.pid)
        n0, t0s, _ = server_time(base, DESK_ROUTES)
        quiet, quiet_status = run_desks(port, args)
        cpu1, rss_quiet = proc_stat(server.pid)
        n1, t1s, _ = server_time(base, DESK_ROUTES)

        ready, stop = multiprocessing.Event(), multiprocessing.Event()
        rx, tx = multiprocessing.Pipe(False)
        sp = multiprocessing.Process(target=screens, args=(
            port, args.streams, args.stalled, args.slow_heads, args.slow_bodies, ready, stop, tx))
        t_open = time.monotonic()
        sp.start()
        ready.wait(120)
        opened_in = time.monotonic() - t_open
        expected = args.streams + args.stalled
        t0 = time.monotonic()
        while metric(base, "triagem_event_streams") != expected and time.monotonic() - t0 < 30:
            time.sleep(0.1)
        streams_open = metric(base, "triagem_event_streams")
        _, rss_streams = proc_stat(server.pid)

        cpu2, _ = proc_stat(server.pid)
        # Stalled screens leave the count once their window has been shut for
        # send_timeout: the desks' events fill it.
        drops = []

        def watch():
            t = time.monotonic()
            while time.monotonic() - t < args.seconds:
                if metric(base, "triagem_event_streams") <= args.streams:
                    drops.append(time.monotonic() - t)
                    return
                time.sleep(0.2)

        watcher = threading.Thread(target=watch)
        watcher.start()
        n2, t2s, c2 = server_time(base, DESK_ROUTES)
        loaded, loaded_status = run_desks(port, args)
        cpu3, rss_loaded = proc_stat(server.pid)
        n3, t3s, c3 = server_time(base, DESK_ROUTES)
        watcher.join()
        streams_after = metric(base, "triagem_event_streams")
        stop.set()
        seen = rx.recv()
        sp.join()
        # The last event id the service sent: a fresh stream replays it.
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /api/v1/units/pa/events HTTP/1.1\r\nHost: triagem\r\nLast-Event-ID: 0\r\n\r\n")
        s.settimeout(2)
        buf = b""
        try:
            while True:
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                buf += chunk
        except socket.timeout:
            pass
        s.close()
        final = last_id(buf[-4096:])

        ids = seen["last_ids"]
        behind = sum(1 for i in ids if i != final)
        qp99, lp99 = pct(quiet, 99), pct(loaded, 99)
        print("== a thousand screens and slow clients")
        print(f"binary {args.bin}; {args.desks} desks, one request each every {args.pace} s "
              f"(admit, call, admit, ...), {args.seconds:.0f} s per phase")
        print(f"quiet:  {len(quiet)} requests, p50 {pct(quiet, 50):.2f} ms, p99 {qp99:.2f} ms, "
              f"max {max(quiet):.2f} ms, statuses {quiet_status}, service CPU "
              f"{(cpu1 - cpu0) / args.seconds * 100:.1f} %, RSS {rss_quiet / 2**20:.1f} MiB")
        print(f"loaded: {len(loaded)} requests, p50 {pct(loaded, 50):.2f} ms, p99 {lp99:.2f} ms, "
              f"max {max(loaded):.2f} ms, statuses {loaded_status}, service CPU "
              f"{(cpu3 - cpu2) / args.seconds * 100:.1f} %, RSS {rss_loaded / 2**20:.1f} MiB")
        print(f"p99 loaded / quiet: {lp99 / qp99:.2f} (target <= 2)")
        print(f"time in the service (duration histogram), mean per desk request: quiet "
              f"{(t1s - t0s) / max(1, n1 - n0) * 1000:.2f} ms, loaded "
              f"{(t3s - t2s) / max(1, n3 - n2) * 1000:.2f} ms; the screens' process used "
              f"{seen['cpu']:.1f} s of CPU; journal commits while loaded: "
              f"{c3[1] - c2[1]:.0f}, mean {(c3[0] - c2[0]) / max(1, c3[1] - c2[1]) * 1000:.2f} ms")
        print(f"streams: {args.streams} reading + {args.stalled} stalled opened in "
              f"{opened_in:.1f} s; triagem_event_streams {streams_open:.0f} "
              f"(RSS {rss_quiet / 2**20:.1f} -> {rss_streams / 2**20:.1f} MiB), "
              f"{streams_after:.0f} at the end")
        print(f"stalled screens dropped: "
              + (f"all {args.stalled} within {drops[0]:.1f} s of the desks starting "
                 f"(send_timeout {SEND_TIMEOUT} s)" if drops else "NOT dropped"))
        print(f"reading screens: {len(ids) - behind} of {len(ids)} at the last event id "
              f"{final}; {behind} behind; {seen['broken']} closed by the service")
        heads, bodies = seen["slow_closed_after"], seen["slow_408_after"]
        print(f"slow heads: {len(heads)} closed, after {min(heads, default=0):.1f}-"
              f"{max(heads, default=0):.1f} s (request_head_timeout {HEAD_TIMEOUT} s)")
        print(f"slow bodies: {len(bodies)} answered 408, after {min(bodies, default=0):.1f}-"
              f"{max(bodies, default=0):.1f} s (request_body_timeout {BODY_TIMEOUT} s); "
              f"other answers {seen['slow_errors'] or 'none'}")
        ok = (lp99 <= 2 * qp99 and drops and behind == 0 and seen["broken"] == 0
              and heads and bodies and not seen["slow_errors"])
        print("PASS" if ok else "FAIL")
        return 0 if ok else 1
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait()


if __name__ == "__main__":
    sys.exit(main())
