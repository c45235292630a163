#!/usr/bin/python3
"""tests/kill_sweep.py RESULTS TICKCORE [KILLS] [SEED]: kill -9 sweep over a live feed.

A generated day (100,000 x max(3, KILLS) messages, 24 symbols) is published with the real `tickcore feed --retry`
over SoupBinTCP into the real `tickcore serve` with its journal on, and the server is killed with
SIGKILL at KILLS (default 3) random moments while the feed runs, and restarted on the same
journal each time (the publisher reconnects and resumes from the sequence number the restarted
server asks for). Checked after each restart: the server came back, the journal kept at least
every message /healthz had acknowledged before the kill (0 lost), and the log names no bad
checksum block (a crash must look like a torn tail at worst). Checked at the end: the feed exited
0; the journal equals the file byte for byte (0 lost, 0 double counted); /healthz counts every
message; and every symbol's trades, volume, VWAP, last price, bid and ask from /v1/symbols equal
`tickcore replay --json` of the same file. SEED (default: the clock) picks the moments; it is
printed, so a failure can be run again. Appends "killsweep <case> P F S" lines to RESULTS like
tests/run.sh. Python standard library only.
"""
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

RESULTS, BIN = sys.argv[1], os.path.abspath(sys.argv[2])
KILLS = int(sys.argv[3]) if len(sys.argv) > 3 else 3
SEED = int(sys.argv[4]) if len(sys.argv) > 4 else int(time.time() * 1000) % 1000000
LOGDIR = os.path.abspath("build/test-logs/killsweep")
shutil.rmtree(LOGDIR, ignore_errors=True)
os.makedirs(LOGDIR, exist_ok=True)
TMP = tempfile.mkdtemp(prefix="tickcore-killsweep-")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))
from stage import Stage, free_port  # noqa: E402

STAGE = Stage("killsweep", RESULTS)
check = STAGE.check
SETS = ["server.analytics_interval=100ms", "stats.bar_interval=1s", "matrix.symbols=32",
        "graph.clusters=3", "book.max_orders=256K", "book.max_levels=64K",
        "symbols.max_symbols=1000", "pipeline.workers=1"]


class Server:
    def __init__(self, journal):
        self.tcp, self.udp, self.http = free_port(), free_port(socket.SOCK_DGRAM), free_port()
        self.log = os.path.join(LOGDIR, "serve.log")
        self.out = os.path.join(LOGDIR, "serve.out")
        self.args = [BIN, "serve", "--set", f"live.tcp_port={self.tcp}",
                     "--set", f"live.udp_port={self.udp}", "--set", f"http.port={self.http}",
                     "--set", f"journal.path={journal}", "--set", f"server.log={self.log}"]
        for s in SETS:
            self.args += ["--set", s]
        self.start()

    def start(self):
        self.outf = open(self.out, "a")
        self.p = subprocess.Popen(self.args, stdout=self.outf, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.p.poll() is not None:
                raise RuntimeError(f"serve exited {self.p.returncode}: "
                                   + open(self.out).read()[-2000:])
            try:
                if self.json("/healthz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError("serve did not answer /healthz 200 in 30 s")

    def json(self, path):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http}{path}", timeout=10) as r:
                return r.status, json.loads(r.read().decode())
        except urllib.error.HTTPError as e:
            return e.code, None

    def kill9(self):
        self.p.send_signal(signal.SIGKILL)
        self.p.wait()
        self.outf.close()

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        rc = self.p.wait(timeout=60)
        self.outf.close()
        return rc


def close(a, b):
    return abs(float(a) - float(b)) <= 1e-6 * max(1.0, abs(float(b)))


def same(got, want):
    """/v1/symbols against replay --json: absent (no bid yet) is null in both."""
    if got is None or want is None or got == "missing":
        return got is None and want is None
    return close(got, want)


def main():
    t0 = time.time()
    rnd = random.Random(SEED)
    print(f"  killsweep   seed {SEED}, {KILLS} kills (tests/kill_sweep.py RESULTS BIN {KILLS} {SEED}"
          " runs this sweep again)")
    day = os.path.join(TMP, "day.itch")
    msgs = 100000 * max(3, KILLS)  # about 0.7 s of feed per kill at 150,000/s
    subprocess.run([BIN, "gen", "--messages", str(msgs), "--symbols", "24", "--seed", "23",
                    "--no-truth", "--out", day], check=True, stdout=subprocess.DEVNULL)
    ref = json.loads(subprocess.run([BIN, "replay", "--json", "--set", "report.top_symbols=1000"]
                                    + sum((["--set", s] for s in SETS), []) + [day],
                                    check=True, capture_output=True, text=True).stdout)
    total = ref["messages"]
    want = {t["symbol"]: t for t in ref["analytics"]["top"]}

    jpath = os.path.join(TMP, "sweep.journal")
    srv = Server(jpath)
    f = subprocess.Popen([BIN, "feed", day, "--to", f"tcp://127.0.0.1:{srv.tcp}", "--quiet",
                          "--rate", "150000/s", "--retry", "60"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    kills, lost, came_back, bad_blocks = 0, [], True, []
    prev = 1
    for k in range(KILLS):
        # data flowing again (at least 1,000 messages since the last restart), then a random wait
        deadline = time.time() + 20
        while time.time() < deadline and f.poll() is None:
            st, h = srv.json("/healthz")
            if h and h["next_sequence"] > prev + 1000:
                break
            time.sleep(0.01)
        time.sleep(rnd.uniform(0.0, 0.5))
        st, h = srv.json("/healthz")
        acked = h["next_sequence"] if h else 1
        if acked > total or f.poll() is not None:
            break  # the feed is over: later kills would not be mid-feed
        srv.kill9()
        kills += 1
        size = os.path.getsize(jpath)
        try:
            srv.start()
        except RuntimeError as e:
            came_back = False
            print(f"  killsweep   restart {k + 1}: {e}")
            break
        st, h = srv.json("/healthz")
        after = h["next_sequence"] if h else 0
        print(f"  killsweep   kill {k + 1}: acknowledged {acked - 1} of {total}, journal "
              f"{size} bytes, restarted at sequence {after}")
        if after < acked:
            lost.append((k + 1, acked, after))
        prev = after
        log = open(srv.log).read() if os.path.exists(srv.log) else ""
        if "bad block" in log:
            bad_blocks.append(k + 1)
    check("kills_landed_mid_feed", kills == KILLS,
          f"{kills} of {KILLS} kills before the feed ended (seed {SEED})")
    check("restarts_came_back", came_back, f"seed {SEED}")
    check("restart_keeps_every_acknowledged_message", not lost,
          f"(kill, acknowledged next, restarted next): {lost} (seed {SEED})")
    check("crash_is_never_a_bad_block", not bad_blocks, f"kills {bad_blocks} (seed {SEED})")
    out, _ = f.communicate(timeout=120)
    check("feed_finishes", f.returncode == 0, out[-500:])
    deadline = time.time() + 60
    h = None
    while time.time() < deadline:
        st, h = srv.json("/healthz")
        if h and h["next_sequence"] > total:
            break
        time.sleep(0.05)
    check("every_message_once",
          h is not None and h["next_sequence"] == total + 1 and h["messages"] == total,
          f"healthz {h}, wanted {total} messages")
    check("journal_equals_the_file", open(jpath, "rb").read() == open(day, "rb").read(),
          f"journal {os.path.getsize(jpath)} bytes, file {os.path.getsize(day)} (seed {SEED})")
    bad = []
    for _ in range(40):  # snapshots: published within server.snapshot_interval
        time.sleep(0.1)
        st, body = srv.json("/v1/symbols")
        got = {s["symbol"]: s for s in (body or {}).get("symbols", [])}
        bad = [(sym, k, got.get(sym, {}).get(k), w[k]) for sym, w in want.items()
               for k in ("trades", "volume", "vwap", "last", "bid", "ask")
               if not same(got.get(sym, {}).get(k, "missing"), w[k])]
        if not bad:
            break
    print(f"  killsweep   {len(want)} symbols x 6 fields compared with replay")
    check("every_symbol_equals_replay", not bad and len(want) > 0,
          f"{len(bad)} fields differ, first {bad[:4]} (seed {SEED})")
    rc = srv.stop()
    check("clean_exit", rc == 0, f"exit {rc}")
    shutil.rmtree(TMP, ignore_errors=True)
    print(f"  killsweep   {time.time() - t0:.1f} s")
    return STAGE.finish()


if __name__ == "__main__":
    sys.exit(main())
