#!/usr/bin/env python3
"""Receivers-down drill (issue 16, part 5): the real binary with its alert
webhook receiver, SMS gateway and SMTP server down while 10 000 notifications
queue, a kill -9 and a restart in the middle, then the receivers back.

The receivers are this script's own: an HTTP server for the webhook (down =
nothing listens: connection refused), another for the SMS gateway (down =
503) and a minimal SMTP server (down = 451 to MAIL FROM). Each records what
it accepts by `delivery_id` (the e-mail's Message-ID). The load: N red
patients with an e-mail address, a phone and consent; red breaches at once
(level 1), and the drill's ladder adds levels 2 and 3 two and four seconds
later, so N patients queue 3N webhook notifications and N messages per
channel (N = 2000: 6000 + 2000 + 2000 = 10 000).

Measures and checks: the pending gauges against what was queued, before and
after the kill -9; the delivery ids of the messages before and after it; what
was tried during the outage (only the oldest entry of each outbox); after
recovery, the time to drain, the rate, delivered count, duplicates by
delivery_id, order violations (per receiver by outbox row, per alert by
level), the gauges at 0; and the server's resident memory with 10 000 queued
against a control run with the same patients and nothing queued (receivers
up throughout). Needs a built binary:

    cargo build --release
    python3 benches/outage.py [--bin target/release/triagem] [--patients 2000] [--hold 90]
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import drill
from drill import free_port

LEVELS = 3


def request(method, url, body=None, timeout=10):
    return drill.request(method, url, body, timeout)


# ---- receivers -------------------------------------------------------------

class Recorder:
    """What one receiver was sent: every attempt, and the accepted ones."""

    def __init__(self, name):
        self.name = name
        self.lock = threading.Lock()
        self.accepted = []      # (monotonic time, delivery_id, payload)
        self.refused = []       # (monotonic time, delivery_id)
        self.up = False

    def record(self, delivery_id, payload):
        with self.lock:
            if self.up:
                self.accepted.append((time.monotonic(), delivery_id, payload))
            else:
                self.refused.append((time.monotonic(), delivery_id))
            return self.up

    def counts(self):
        with self.lock:
            return len(self.accepted), len(self.refused)


class HttpReceiver(ThreadingHTTPServer):
    """The alert webhook receiver or the SMS gateway: 200 when up, 503 when down."""
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port, recorder):
        self.recorder = recorder
        super().__init__(("127.0.0.1", port), HttpHandler)


class HttpHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real receiver would

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        payload = json.loads(body)
        ok = self.server.recorder.record(payload["delivery_id"], payload)
        self.send_response(200 if ok else 503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class SmtpReceiver(socketserver.ThreadingTCPServer):
    """Plain SMTP (RFC 5321), as much as a client needs: 451 to MAIL FROM
    when down, 250 to everything when up."""
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port, recorder, quickack=False):
        self.recorder = recorder
        self.quickack = quickack
        super().__init__(("127.0.0.1", port), SmtpHandler)


class SmtpHandler(socketserver.StreamRequestHandler):
    def reply(self, text):
        self.wfile.write(text.encode() + b"\r\n")

    def readline(self):
        line = self.rfile.readline()
        if self.server.quickack:
            # Acknowledge at once rather than with the next reply (Linux
            # delays ACKs up to 40 ms on a connection that answers each
            # command): shows what that delay costs a client that writes
            # the message and its final dot in two writes without TCP_NODELAY.
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        return line

    def handle(self):
        rec = self.server.recorder
        self.reply("220 sink.drill ESMTP")
        to = []
        while True:
            line = self.readline()
            if not line:
                return
            verb = line.decode(errors="replace").strip().split(" ")[0].split(":")[0].upper()
            if verb == "EHLO":
                self.reply("250-sink.drill\r\n250 8BITMIME")
            elif verb == "HELO":
                self.reply("250 sink.drill")
            elif verb == "MAIL":
                to = []
                if rec.up:
                    self.reply("250 OK")
                else:
                    # Not even the message: only the attempt is counted.
                    rec.record(None, None)
                    self.reply("451 4.3.0 try again later")
            elif verb == "RCPT":
                to.append(line.decode(errors="replace").split(":", 1)[1].strip())
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 go on")
                data = []
                while True:
                    l = self.readline()
                    if not l:
                        return
                    if l == b".\r\n":
                        break
                    data.append(l.decode(errors="replace"))
                text = "".join(data)
                m = re.search(r"^Message-ID:\s*<([^@>]+)@triagem>", text, re.M | re.I)
                rec.record(m.group(1) if m else None, {"to": to})
                self.reply("250 taken")
            elif verb in ("RSET", "NOOP"):
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 not implemented")


def serve(server):
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    return server


# ---- the service -----------------------------------------------------------

CONFIG = """
timezone = "America/Sao_Paulo"

[storage]
data_dir = "data"

[protocol]
triage_max_wait = "10m"

[[protocol.colours]]
id = "red"
label = "Vermelho"
max_wait = "0s"

[[protocol.colours]]
id = "yellow"
label = "Amarelo"
max_wait = "30m"

[escalation]
tick = "1s"

[[escalation.levels]]
name = "nursing-coordinator"
after = "0s"

[[escalation.levels]]
name = "physician-on-duty"
after = "2s"

[[escalation.levels]]
name = "medical-director"
after = "4s"

[[units]]
id = "pa"
name = "Pronto Atendimento"
ticket_prefix = "A"
rooms = ["Triagem 1", "Consultório 1"]
triage_rooms = ["Triagem 1"]

[auth]
mode = "open"

[alerts]
timeout = "5s"
retry_initial = "{retry_initial}"
retry_max = "{retry_max}"

[[alerts.webhooks]]
url = "http://127.0.0.1:{hook_port}/hooks/triagem"

[portal]
public_url = "https://triagem.hospital.example"

[notifications]
on = ["admitted", "called"]

[notifications.email]
smtp_url = "smtp://127.0.0.1:{smtp_port}"
from = "Triagem <triagem@hospital.example>"

[notifications.sms]
url = "http://127.0.0.1:{sms_port}/sms"
"""


class Server:
    def __init__(self, binary, config, data_dir, port, log):
        self.binary, self.config, self.log = binary, config, log
        self.env = dict(os.environ, TRIAGEM_BIND=f"127.0.0.1:{port}",
                        TRIAGEM_DATA_DIR=data_dir)
        self.base = f"http://127.0.0.1:{port}"
        self.proc = None

    def start(self):
        out = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--config", self.config],
            stdout=out, stderr=out, stdin=subprocess.DEVNULL, env=self.env)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 60:
            if request("GET", self.base + "/readyz", timeout=1)[0] == 200:
                return time.monotonic() - t0
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise SystemExit(f"the service never became ready; log in {self.log}")

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return None

    def metrics(self):
        status, body = request("GET", self.base + "/metrics")
        if status != 200:
            return None
        out = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    def pending(self):
        m = self.metrics() or {}
        return (int(m.get("triagem_webhook_outbox_pending", -1)),
                int(m.get('triagem_notifications_pending{channel="email"}', -1)),
                int(m.get('triagem_notifications_pending{channel="sms"}', -1)))


def admit_all(base, n, workers=4):
    """Admits n red patients with a contact and consent; returns their protocols."""
    protocols = [None] * n
    errors = []

    def desk(k):
        for i in range(k, n, workers):
            body = {"name": f"Paciente {i}", "colour": "red",
                    "contact": {"phone": f"+55119{i:08d}",
                                "email": f"paciente{i}@example.com", "consent": True}}
            status, resp = request("POST", base + "/api/v1/units/pa/patients", body)
            if status == 201:
                protocols[i] = json.loads(resp)["protocol"]
            else:
                errors.append((status, resp[:200]))

    threads = [threading.Thread(target=desk, args=(k,)) for k in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"admissions failed: {errors[:3]}")
    return protocols


def message_ids(base, protocols):
    """{channel: set of delivery ids} of the patients' messages, and their states."""
    ids, states = {"email": set(), "sms": set()}, {}
    for p in protocols:
        status, body = request("GET", f"{base}/api/v1/patients/{p}/messages")
        if status != 200:
            raise SystemExit(f"messages of {p}: {status}")
        for m in json.loads(body):
            ids[m["channel"]].add(m["delivery_id"])
            states[m["state"]] = states.get(m["state"], 0) + 1
    return ids, states


def wait_for(cond, progress, within_without_progress=120, poll=0.1):
    """Polls cond() until true; gives up after `within_without_progress`
    seconds in which progress() did not change."""
    last, moved = progress(), time.monotonic()
    while not cond():
        time.sleep(poll)
        now = progress()
        if now != last:
            last, moved = now, time.monotonic()
        elif time.monotonic() - moved > within_without_progress:
            return False
    return True


def row(delivery_id):
    """The outbox row of a delivery id (`<instance>-<row>`, `<instance>-m<row>`)."""
    return int(delivery_id.rsplit("-", 1)[1].lstrip("m"))


def analyse(rec):
    """Distinct accepted, duplicates, and order violations by outbox row
    (first acceptance of each id against the largest row accepted before)."""
    with rec.lock:
        accepted = list(rec.accepted)
    seen, dups, violations, top = set(), 0, 0, -1
    for _, did, _ in accepted:
        if did in seen:
            dups += 1
            continue
        seen.add(did)
        r = row(did)
        if r < top:
            violations += 1
        top = max(top, r)
    return seen, dups, violations, accepted


def rate(accepted, since):
    if not accepted:
        return None, None, None
    first = accepted[0][0] - since
    span = accepted[-1][0] - accepted[0][0]
    return first, accepted[-1][0] - since, (len(accepted) - 1) / span if span > 0 else None


def setup(work, name, args):
    ports = {k: free_port() for k in ("hook", "sms", "smtp", "api")}
    config = os.path.join(work, f"{name}.toml")
    with open(config, "w") as f:
        f.write(CONFIG.format(hook_port=ports["hook"], sms_port=ports["sms"],
                              smtp_port=ports["smtp"], retry_initial=args.retry_initial,
                              retry_max=args.retry_max))
    data = os.path.join(work, f"{name}-data")
    server = Server(os.path.abspath(args.bin), config, data, ports["api"],
                    os.path.join(work, f"{name}.log"))
    recs = {k: Recorder(k) for k in ("hook", "email", "sms")}
    return ports, server, recs


def control_run(work, args, expected):
    """Receivers up throughout: the same patients, nothing left queued."""
    ports, server, recs = setup(work, "control", args)
    for r in recs.values():
        r.up = True
    hook = serve(HttpReceiver(ports["hook"], recs["hook"]))
    sms = serve(HttpReceiver(ports["sms"], recs["sms"]))
    smtp = serve(SmtpReceiver(ports["smtp"], recs["email"], args.smtp_quickack))
    try:
        server.start()
        admit_all(server.base, args.patients)
        done = wait_for(
            lambda: (recs["hook"].counts()[0] >= expected[0]
                     and recs["email"].counts()[0] >= expected[1]
                     and recs["sms"].counts()[0] >= expected[2]
                     and server.pending() == (0, 0, 0)),
            lambda: tuple(r.counts()[0] for r in recs.values()))
        time.sleep(2)
        running = server.rss_kib()
        server.kill()
        server.start()
        time.sleep(2)
        restarted = server.rss_kib()
        return {"drained": done, "rss_running": running, "rss_restarted": restarted,
                "pending": server.pending()}
    finally:
        server.kill()
        for s in (hook, sms, smtp):
            s.shutdown()
            s.server_close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/triagem")
    ap.add_argument("--patients", type=int, default=2000,
                    help="red patients with a contact; 5 notifications each")
    ap.add_argument("--hold", type=float, default=90.0,
                    help="seconds the receivers stay down once everything is queued "
                         "(half before the kill -9, half after)")
    ap.add_argument("--retry-initial", default="500ms")
    ap.add_argument("--retry-max", default="60s")
    ap.add_argument("--kill-in-drain", action="store_true",
                    help="also kill -9 the service when half the backlog is delivered")
    ap.add_argument("--smtp-quickack", action="store_true",
                    help="the SMTP sink acknowledges every segment at once (TCP_QUICKACK)")
    ap.add_argument("--no-control", action="store_true",
                    help="skip the control run (receivers up) that memory is compared with")
    args = ap.parse_args()

    n = args.patients
    expected = (LEVELS * n, n, n)   # webhook, email, sms
    work = tempfile.mkdtemp(prefix="triagem-outage-")
    servers = []
    try:
        control = None if args.no_control else control_run(work, args, expected)

        ports, server, recs = setup(work, "outage", args)
        servers.append(server)
        # Down: nothing on the webhook port, 503 from the gateway, 451 from SMTP.
        sms = serve(HttpReceiver(ports["sms"], recs["sms"]))
        smtp = serve(SmtpReceiver(ports["smtp"], recs["email"], args.smtp_quickack))
        servers += [sms, smtp]
        server.start()
        rss_empty = server.rss_kib()

        t0 = time.monotonic()
        protocols = admit_all(server.base, n)
        admitted_in = time.monotonic() - t0
        queued = wait_for(lambda: server.pending() == expected, server.pending, 60)
        queued_in = time.monotonic() - t0
        pending_before = server.pending()
        time.sleep(1)
        rss_queued = server.rss_kib()
        ids_before, states_before = message_ids(server.base, protocols)

        time.sleep(args.hold / 2)
        server.kill()
        ready_in = server.start()
        pending_after_kill = server.pending()
        time.sleep(1)
        rss_restarted = server.rss_kib()
        ids_after, states_after = message_ids(server.base, protocols)
        time.sleep(args.hold / 2)
        outage_end = time.monotonic()

        tried = {k: list(r.refused) for k, r in recs.items()}
        if any(r.counts()[0] for r in recs.values()):
            print("something was accepted during the outage")

        # Recovery.
        for r in recs.values():
            r.up = True
        up = time.monotonic()
        hook = serve(HttpReceiver(ports["hook"], recs["hook"]))
        servers.append(hook)
        rss_peak = 0
        kill_in_drain = None

        def all_delivered():
            nonlocal rss_peak, kill_in_drain
            rss_peak = max(rss_peak, server.rss_kib() or 0)
            got = [len(analyse(recs[k])[0]) for k in ("hook", "email", "sms")]
            if args.kill_in_drain and kill_in_drain is None and sum(got) >= sum(expected) // 2:
                server.kill()
                kill_in_drain = (sum(got), server.start())
            return got == list(expected) and server.pending() == (0, 0, 0)

        drained = wait_for(all_delivered,
                           lambda: tuple(r.counts()[0] for r in recs.values()), 120)
        drained_in = time.monotonic() - up
        pending_end = server.pending()
        rss_drained = server.rss_kib()
        time.sleep(2)  # a quiet moment in which a repeat would show

        # ---- checks
        report = {}
        for k in ("hook", "email", "sms"):
            seen, dups, violations, accepted = analyse(recs[k])
            first, last, per_s = rate(accepted, up)
            report[k] = dict(delivered=len(seen), dups=dups, violations=violations,
                             first=first, last=last, rate=per_s, seen=seen,
                             tried=len(tried[k]),
                             tried_ids={d for _, d in tried[k]})
        # Per alert: levels 1, 2, 3 in that order (first acceptance of each).
        levels, seen = {}, set()
        for _, did, payload in recs["hook"].accepted:
            if did in seen:
                continue
            seen.add(did)
            a = payload["alert"]
            levels.setdefault(a["id"], []).append(a["level"])
        alert_order_bad = sum(1 for ls in levels.values() if ls != list(range(1, LEVELS + 1)))
        hook_rows = sorted(row(d) for d in report["hook"]["seen"])
        hook_contiguous = bool(hook_rows) and hook_rows == list(
            range(hook_rows[0], hook_rows[0] + len(hook_rows)))
        ids_same = ids_before == ids_after
        msgs_match = (report["email"]["seen"] == ids_before["email"]
                      and report["sms"]["seen"] == ids_before["sms"])

        print("== receivers-down drill")
        print(f"binary {args.bin}; {n} red patients with e-mail, phone and consent, "
              f"ladder 0 s / 2 s / 4 s; retry {args.retry_initial} doubling to {args.retry_max}")
        print(f"queued while down: {pending_before[0]} webhook + {pending_before[1]} e-mail + "
              f"{pending_before[2]} SMS = {sum(pending_before)} (expected {sum(expected)}); "
              f"admissions took {admitted_in:.1f} s, all queued after {queued_in:.1f} s"
              + ("" if queued else " (NOT ALL QUEUED)"))
        print(f"message states before the kill: {states_before}; "
              f"after the restart: {states_after}")
        print(f"outage: {outage_end - t0:.0f} s from the first admission; attempts refused: "
              f"SMS {report['sms']['tried']} (delivery ids tried: {len(report['sms']['tried_ids'])}), "
              f"e-mail {report['email']['tried']} (at MAIL FROM, before the message), "
              f"webhook: connection refused (not counted)")
        print(f"kill -9 after {args.hold / 2:.0f} s down, restart to /readyz 200 in {ready_in:.2f} s; "
              f"pending gauges (webhook, e-mail, SMS) before {pending_before}, "
              f"after {pending_after_kill}; message delivery ids the same: {ids_same}")
        if kill_in_drain:
            print(f"kill -9 during the drain at {kill_in_drain[0]} delivered, "
                  f"ready again in {kill_in_drain[1]:.2f} s")
        print(f"after recovery: all delivered {drained} in {drained_in:.1f} s; "
              f"pending gauges at the end {pending_end}")
        for k, name in (("hook", "webhook"), ("email", "e-mail"), ("sms", "SMS")):
            r = report[k]
            rate_s = f"{r['rate']:.0f}/s" if r["rate"] else "-"
            first_s = f"{r['first']:.1f}" if r["first"] is not None else "-"
            last_s = f"{r['last']:.1f}" if r["last"] is not None else "-"
            print(f"  {name:8} delivered {r['delivered']:5} distinct "
                  f"(expected {expected[('hook', 'email', 'sms').index(k)]}), "
                  f"accepted twice {r['dups']}, out of outbox order {r['violations']}; "
                  f"first {first_s} s after recovery, last {last_s} s, {rate_s}")
        print(f"  alerts with levels not 1, 2, 3 in order: {alert_order_bad} of {len(levels)}; "
              f"webhook rows contiguous: {hook_contiguous}; messages delivered = the ids "
              f"queued before the kill: {msgs_match}")
        mib = lambda kib: f"{kib / 1024:.1f} MiB" if kib else "-"
        print(f"resident memory: empty {mib(rss_empty)}; {sum(pending_before)} queued "
              f"{mib(rss_queued)} (restarted with them queued {mib(rss_restarted)}); "
              f"peak while draining {mib(rss_peak)}; drained {mib(rss_drained)}")
        if control:
            print(f"control (same patients, receivers up, nothing queued): "
                  f"{mib(control['rss_running'])} running, {mib(control['rss_restarted'])} "
                  f"restarted; drained {control['drained']}, pending {control['pending']}")

        ok = (queued and pending_before == expected and pending_after_kill == expected
              and ids_same and drained and pending_end == (0, 0, 0) and msgs_match
              and alert_order_bad == 0 and hook_contiguous
              and all(report[k]["violations"] == 0 for k in report)
              and all(report[k]["delivered"] == e for k, e in zip(("hook", "email", "sms"), expected))
              and len(report["sms"]["tried_ids"]) <= 1
              and (args.kill_in_drain or all(report[k]["dups"] == 0 for k in report)))
        print("DRILL PASSED" if ok else "DRILL FAILED")
        return 0 if ok else 1
    finally:
        for s in servers:
            if isinstance(s, Server):
                s.kill()
            else:
                s.shutdown()
                s.server_close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
