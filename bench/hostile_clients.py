#!/usr/bin/python3
"""bench/hostile_clients.py TICKCORE [SLOW_HTTP] [SILENT_TCP] [SECONDS] [--set KEY=VALUE ...]:
a good client's queries against a fed `tickcore serve` while bad clients hold connections open.

Generates a day (300,000 messages, 24 symbols), starts `serve` with its journal (and any
`--set KEY=VALUE` given here, e.g. `--set http.boost=false`), publishes the day with `tickcore
feed` over SoupBinTCP, then keeps, for SECONDS (default 20):
  - SLOW_HTTP (default 1000) slow HTTP clients: each sends a partial request header, then one
    more header byte every 0.5 s; they come from 127.0.0.2 .. 127.0.0.41 (25 per address, under
    http.per_ip_connections), and one that the server closes is opened again at once;
  - SILENT_TCP (default 500) silent connections to the SoupBinTCP port (connect, send nothing),
    opened again when the server closes them;
and meanwhile a good client (its own process, from 127.0.0.1) sends a new-connection
`GET /v1/symbols/SYM` on an open-loop schedule of one every 20 ms (50/s), rotating over the
day's symbols, with a 2 s timeout, and a publisher logs in and sends its next sequenced message
every 200 ms (whether it gets in is the other half of the question). The good client and the
publisher stand for other machines: each asks for SCHED_FIFO 2 (granted as root or with
CAP_SYS_NICE; printed), so that the bad clients' process, which shares the 2 cores, does not make
them late; the bad clients run in the fair class. Query i is due at t0 + 20 ms * i and its
latency runs from that scheduled time to the last byte of the answer (no coordinated omission: a
stall delays every query behind it and counts in each); printed beside it: the latency from the
actual connect (the server's part plus the loopback; beside it, to the answer's first byte, so a
slow close would show), the client's own lateness (actual connect - scheduled time), and the
slowest queries with their time into the run (an ingest burst bunches them at the start). Prints the good client's success rate and latencies (p50, p99, max)
and the publisher's logins, with the bad clients' counts actually held open (sampled), and
the same figures with no bad client first, as the baseline. Python standard library only;
raises RLIMIT_NOFILE for its sockets.
"""
import json
import multiprocessing
import os
import random
import resource
import selectors
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

ARGS, SETS = [], []
_a = sys.argv[1:]
while _a:
    if _a[0] == "--set" and len(_a) > 1:
        SETS += ["--set", _a[1]]
        _a = _a[2:]
    else:
        ARGS.append(_a.pop(0))
BIN = os.path.abspath(ARGS[0])
SLOW = int(ARGS[1]) if len(ARGS) > 1 else 1000
SILENT = int(ARGS[2]) if len(ARGS) > 2 else 500
SECONDS = float(ARGS[3]) if len(ARGS) > 3 else 20.0
PERIOD = 0.02  # the good client's schedule: one query every 20 ms
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "support"))
from stage import free_port  # noqa: E402


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100.0 * len(xs)))]


def realtime():
    """SCHED_FIFO 2 for this process (a client standing for another machine): True if granted."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(2))
        return True
    except (OSError, AttributeError):
        return False


def good_client(port, symbols, seconds, q):
    """Open loop, one new-connection query every PERIOD, 2 s timeout: (ok, failures, latencies
    from the scheduled time, from the actual connect, lateness of the connect, all in ms, rt)."""
    rt = realtime()
    ok, fail, lat, act, late, worst, first = 0, 0, [], [], [], [], []
    t0 = time.perf_counter() + 0.01
    n = int(seconds / PERIOD)
    for i in range(n):
        due = t0 + i * PERIOD
        now = time.perf_counter()
        if due > now:
            time.sleep(due - now)
        sym = symbols[i % len(symbols)]
        ts = time.perf_counter()
        late.append((ts - due) * 1e3)
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
            s.settimeout(2)
            s.sendall(f"GET /v1/symbols/{sym} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
                      .encode())
            buf, tf = b"", None
            while True:
                b = s.recv(65536)
                if not b:
                    break
                if tf is None:
                    tf = time.perf_counter()
                buf += b
            s.close()
            te = time.perf_counter()
            if buf.startswith(b"HTTP/1.1 200"):
                ok += 1
                lat.append((te - due) * 1e3)
                act.append((te - ts) * 1e3)
                first.append(((tf or te) - ts) * 1e3)
                worst.append(((te - ts) * 1e3, due - t0))
            else:
                fail += 1
        except OSError:
            fail += 1
    q.put((ok, fail, lat, act, late, rt, sorted(worst, reverse=True)[:12], first))


def soup(ptype, payload=b""):
    return struct.pack(">H", 1 + len(payload)) + bytes([ptype]) + payload


def publisher(port, seconds, q):
    """Log in every 200 ms on a new connection; count Login Accepted within 1.5 s."""
    realtime()
    ok, fail, lat = 0, 0, []
    end = time.time() + seconds
    login = soup(ord("L"), b"tick  core      " + b" " * 10 + b"%20d" % 0)
    while time.time() < end:
        t0 = time.perf_counter()
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=1.5)
            s.settimeout(1.5)
            s.sendall(login)
            hdr = s.recv(3)
            if len(hdr) == 3 and hdr[2] == ord("A"):
                ok += 1
                lat.append((time.perf_counter() - t0) * 1e3)
            else:
                fail += 1
            s.sendall(soup(ord("O")))
            s.close()
        except OSError:
            fail += 1
        time.sleep(0.2)
    q.put((ok, fail, lat))


class Holder:
    """Keeps n connections open to port, from the given source addresses; prefix is sent at
    connect and one byte of drip every drip_s (None: silent)."""

    def __init__(self, sel, port, n, sources, prefix=b"", drip=None, drip_s=0.5):
        self.sel, self.port, self.n, self.sources = sel, port, n, sources
        self.prefix, self.drip, self.drip_s = prefix, drip, drip_s
        self.socks, self.opened, self.closed = {}, 0, 0
        for i in range(n):
            self.open(i)

    def open(self, i):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        src = self.sources[i % len(self.sources)]
        try:
            s.bind((src, 0))
            s.connect_ex(("127.0.0.1", self.port))
        except OSError:
            s.close()
            return
        self.socks[s] = [i, 0, time.time()]
        self.sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, self)
        self.opened += 1

    def event(self, s, mask):
        st = self.socks.get(s)
        if st is None:
            return
        if mask & selectors.EVENT_WRITE:
            try:
                if self.prefix and st[1] == 0:
                    s.send(self.prefix)
                st[1] = 1
            except OSError:
                pass
            self.sel.modify(s, selectors.EVENT_READ, self)
        if mask & selectors.EVENT_READ:
            try:
                b = s.recv(4096)
            except OSError:
                b = b""
            if not b:  # closed by the server: open another
                self.sel.unregister(s)
                s.close()
                del self.socks[s]
                self.closed += 1
                self.open(st[0])

    def tick(self, now):
        if self.drip is None:
            return
        for s, st in list(self.socks.items()):
            if st[1] and now - st[2] >= self.drip_s:
                st[2] = now
                try:
                    s.send(self.drip)
                except OSError:
                    pass


def attack(http, tcp, seconds, q):
    raise_nofile()
    sel = selectors.DefaultSelector()
    srcs = [f"127.0.0.{k}" for k in range(2, 42)]
    hs = []
    if SLOW:
        hs.append(Holder(sel, http, SLOW, srcs, b"GET /v1/symbols HTTP/1.1\r\nHost: t\r\n", b"X"))
    if SILENT:
        hs.append(Holder(sel, tcp, SILENT, srcs))
    end = time.time() + seconds
    held = []
    next_sample = time.time() + 1
    while time.time() < end:
        for key, mask in sel.select(timeout=0.05):
            key.data.event(key.fileobj, mask)
        now = time.time()
        for h in hs:
            h.tick(now)
        if now >= next_sample:
            next_sample = now + 1
            held.append(tuple(len(h.socks) for h in hs))
    q.put(([(h.opened, h.closed) for h in hs], held))


def run(srv_http, srv_tcp, symbols, with_attack):
    q = multiprocessing.Queue()
    procs = []
    if with_attack:
        procs.append(multiprocessing.Process(target=attack,
                                             args=(srv_http, srv_tcp, SECONDS + 3, q)))
        procs[-1].start()
        time.sleep(3)  # let the bad clients pile up first
    qg, qp = multiprocessing.Queue(), multiprocessing.Queue()
    g = multiprocessing.Process(target=good_client, args=(srv_http, symbols, SECONDS, qg))
    p = multiprocessing.Process(target=publisher, args=(srv_tcp, SECONDS, qp))
    g.start()
    p.start()
    good, pub = qg.get(), qp.get()
    g.join()
    p.join()
    att = None
    if with_attack:
        att = q.get()
        procs[0].join()
    return good, pub, att


def report(label, good, pub, att):
    ok, fail, lat, act, late, rt, worst, first = good
    print(f"{label}: good client ({'SCHED_FIFO 2' if rt else 'fair class: real time refused'}) "
          f"{ok} of {ok + fail} queries answered 200 ({100.0 * ok / max(1, ok + fail):.2f}%); "
          f"from the scheduled time p50 {pct(lat, 50):.2f} ms, p99 {pct(lat, 99):.2f} ms, "
          f"max {max(lat) if lat else float('nan'):.2f} ms; from the actual connect p50 "
          f"{pct(act, 50):.2f}, p99 {pct(act, 99):.2f}, "
          f"max {max(act) if act else float('nan'):.2f} ms (to the answer's first byte p99 "
          f"{pct(first, 99):.2f}); client lateness p99 "
          f"{pct(late, 99):.2f} ms, max {max(late) if late else float('nan'):.2f} ms; "
          f"publisher logged in {pub[0]} of {pub[0] + pub[1]} times, "
          f"p99 {pct(pub[2], 99):.2f} ms")
    print("    slowest from the actual connect (ms @ s into the run): "
          + ", ".join(f"{w:.1f} @ {t:.2f}" for w, t in worst))
    if att:
        opened, held = att
        names = (["slow HTTP"] if SLOW else []) + (["silent TCP"] if SILENT else [])
        for k, name in enumerate(names):
            hk = [h[k] for h in held]
            print(f"    {name}: held open min {min(hk)} median {sorted(hk)[len(hk) // 2]} "
                  f"(sampled each second), {opened[k][0]} connections opened, "
                  f"{opened[k][1]} closed by the server")


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def wait_ready(port, srv):
    """Until /healthz answers 200 (start-up prefaults its memory: seconds on a loaded machine)."""
    end = time.time() + 120
    while time.time() < end:
        if srv.poll() is not None:
            sys.exit(f"hostile_clients: tickcore serve exited at start-up ({srv.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    sys.exit("hostile_clients: tickcore serve did not answer /healthz 200 within 120 s")


def main():
    raise_nofile()
    tmp = tempfile.mkdtemp(prefix="tickcore-hostile-")
    day = os.path.join(tmp, "day.itch")
    subprocess.run([BIN, "gen", "--messages", "300000", "--symbols", "24", "--seed", "5",
                    "--no-truth", "--out", day], check=True, stdout=subprocess.DEVNULL)
    ref = json.loads(subprocess.run([BIN, "replay", "--json", "--set", "report.top_symbols=100",
                                     day], check=True, capture_output=True, text=True).stdout)
    symbols = [t["symbol"] for t in ref["analytics"]["top"]]
    tcp, udp, http = free_port(), free_port(socket.SOCK_DGRAM), free_port()
    srv = subprocess.Popen([BIN, "serve", "--set", f"live.tcp_port={tcp}",
                            "--set", f"live.udp_port={udp}", "--set", f"http.port={http}",
                            "--set", f"journal.path={tmp}/j.journal",
                            "--set", f"server.log={tmp}/serve.log"] + SETS,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:  # the server is stopped and the folder removed however this ends
        wait_ready(http, srv)
        # --retry: a slow start-up (a sanitizer build, a loaded machine) is waited for
        subprocess.run([BIN, "feed", day, "--to", f"tcp://127.0.0.1:{tcp}", "--quiet",
                        "--retry", "60"], check=True)
        print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; server fed "
              f"{ref['messages']} messages; {SECONDS:.0f} s per run; {SLOW} slow HTTP clients, "
              f"{SILENT} silent TCP connections; serve {' '.join(SETS) or '(defaults)'}")
        report("no bad clients", *run(http, tcp, symbols, False))
        report(f"{SLOW} slow HTTP + {SILENT} silent TCP", *run(http, tcp, symbols, True))
    finally:
        srv.terminate()
        srv.wait(timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
