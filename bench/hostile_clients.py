#!/usr/bin/python3
"""bench/hostile_clients.py TICKCORE [SLOW_HTTP] [SILENT_TCP] [SECONDS]: a good client's queries
against a fed `tickcore serve` while bad clients hold connections open.

Generates a day (300,000 messages, 24 symbols), starts `serve` with its journal, publishes the
day with `tickcore feed` over SoupBinTCP, then keeps, for SECONDS (default 20):
  - SLOW_HTTP (default 1000) slow HTTP clients: each sends a partial request header, then one
    more header byte every 0.5 s; they come from 127.0.0.2 .. 127.0.0.41 (25 per address, under
    http.per_ip_connections), and one that the server closes is opened again at once;
  - SILENT_TCP (default 500) silent connections to the SoupBinTCP port (connect, send nothing),
    opened again when the server closes them;
and meanwhile a good client (its own process, from 127.0.0.1) sends a new-connection
`GET /v1/symbols/SYM` every 20 ms, rotating over the day's symbols, with a 2 s timeout, and a
publisher logs in and sends its next sequenced message every 200 ms (whether it gets in is the
other half of the question). Prints the good client's success rate and latency (p50, p99, max)
and the publisher's logins, with the bad clients' counts actually held open (sampled), and
the same good-client figures with no bad client first, as the baseline. Python standard library
only; raises RLIMIT_NOFILE for its sockets.
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

BIN = os.path.abspath(sys.argv[1])
SLOW = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
SILENT = int(sys.argv[3]) if len(sys.argv) > 3 else 500
SECONDS = float(sys.argv[4]) if len(sys.argv) > 4 else 20.0
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "support"))
from stage import free_port  # noqa: E402


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100.0 * len(xs)))]


def good_client(port, symbols, seconds, q):
    """New connection per query, 2 s timeout; (ok, failures, latencies in ms)."""
    ok, fail, lat = 0, 0, []
    end = time.time() + seconds
    i = 0
    while time.time() < end:
        sym = symbols[i % len(symbols)]
        i += 1
        t0 = time.perf_counter()
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
            s.settimeout(2)
            s.sendall(f"GET /v1/symbols/{sym} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
                      .encode())
            buf = b""
            while True:
                b = s.recv(65536)
                if not b:
                    break
                buf += b
            s.close()
            if buf.startswith(b"HTTP/1.1 200"):
                ok += 1
                lat.append((time.perf_counter() - t0) * 1e3)
            else:
                fail += 1
        except OSError:
            fail += 1
        time.sleep(0.02)
    q.put((ok, fail, lat))


def soup(ptype, payload=b""):
    return struct.pack(">H", 1 + len(payload)) + bytes([ptype]) + payload


def publisher(port, seconds, q):
    """Log in every 200 ms on a new connection; count Login Accepted within 1.5 s."""
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
    ok, fail, lat = good
    print(f"{label}: good client {ok} of {ok + fail} queries answered 200 "
          f"({100.0 * ok / max(1, ok + fail):.2f}%), latency p50 {pct(lat, 50):.2f} ms, "
          f"p99 {pct(lat, 99):.2f} ms, max {max(lat) if lat else float('nan'):.2f} ms; "
          f"publisher logged in {pub[0]} of {pub[0] + pub[1]} times, "
          f"p99 {pct(pub[2], 99):.2f} ms")
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
                            "--set", f"server.log={tmp}/serve.log"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.5)
    # --retry: a slow start-up (a sanitizer build, a loaded machine) is waited for
    subprocess.run([BIN, "feed", day, "--to", f"tcp://127.0.0.1:{tcp}", "--quiet", "--retry", "60"],
                   check=True)
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; server fed "
          f"{ref['messages']} messages; {SECONDS:.0f} s per run; {SLOW} slow HTTP clients, "
          f"{SILENT} silent TCP connections")
    report("no bad clients", *run(http, tcp, symbols, False))
    report(f"{SLOW} slow HTTP + {SILENT} silent TCP", *run(http, tcp, symbols, True))
    srv.terminate()
    srv.wait(timeout=60)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
