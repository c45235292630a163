#!/usr/bin/python3
"""tests/fault_sweep.py RESULTS TICKCORE [PER] [SEED]: the I/O fault seam (base/fault,
TICKCORE_FAULT) swept over a feed + restart cycle of the real `tickcore serve`.

A generated day (12,000 messages, 12 symbols) is cut in two at a record boundary; a first server
(no fault) takes the first 5,000 messages from `tickcore feed`, so the journal and its checksum
sidecar exist, and stops. A counting run (TICKCORE_FAULT=count) of the cycle below gives the
number of calls per site. Then, for each site with calls, each kind (eio and enospc persistent,
eintr, short; econnreset at the connections' sites) and PER call numbers N of that site drawn from 1 .. its count with SEED (a
stratified sample: every site and kind, PER points each; default 3; PER=0: every N), one cycle
on a fresh copy of that journal:
  1. `serve` with TICKCORE_FAULT=KIND@N/SITE[!] starts on the journal (its scan reads it), takes
     the whole day from `tickcore feed --retry 3` (which resumes at the server's next sequence);
     /healthz is polled meanwhile; then SIGTERM.
  2. A server without fault starts on what is left and is compared.
Checked for every point: no crash (no signal, no sanitizer report) and no hang (every process
ends within its deadline); no silent loss: the journal is a byte prefix of the day, it holds every
message /healthz acknowledged (next_sequence - 1, the number a publisher's Login Accepted gives)
and never fewer than the counted journal claimed; the restarted server's /healthz counts exactly
the journal's messages and its /v1/symbols (trades, volume, VWAP, last, bid, ask of every symbol)
equal `tickcore replay --json` of the journal file; the restarted server exits 0.
By kind and site: eintr and short anywhere, and every kind at a connection's site (tcp_accept,
and tcp_recv, tcp_send of the SoupBinTCP session: the publisher reconnects and resumes;
http_accept: a query client retries), are recovered from transparently:
/healthz ok, the feed exits 0, the server exits 0, the journal equals the day. eio and enospc at
a journal write, checksum write or fsync: /healthz 503 "degraded: journal" naming the error (if
it struck before the stop), the publisher refused (the feed exits non-zero) and queries still
answered, and the server's exit status 1; at a read of the scan: start-up fails with exit 1 and
the journal is left as it was. A point whose N the run did not reach (fsync counts depend on
timing) is reported as not reached. Sites with no call in this cycle (gaps_write, export_write)
are named; test_fault and test_journal cover them. Appends "faultsweep <case> P F S" lines to
RESULTS like tests/run.sh. Python standard library only.
"""
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

RESULTS, BIN = sys.argv[1], os.path.abspath(sys.argv[2])
PER = int(sys.argv[3]) if len(sys.argv) > 3 else 3
SEED = int(sys.argv[4]) if len(sys.argv) > 4 else int(time.time() * 1000) % 1000000
LOGDIR = os.path.abspath("build/test-logs/faultsweep")
shutil.rmtree(LOGDIR, ignore_errors=True)
os.makedirs(LOGDIR, exist_ok=True)
TMP = tempfile.mkdtemp(prefix="tickcore-faultsweep-")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))
from stage import Stage, free_port  # noqa: E402

STAGE = Stage("faultsweep", RESULTS)
SETS = ["server.analytics_interval=100ms", "stats.bar_interval=1s", "matrix.symbols=32",
        "graph.clusters=3", "book.max_orders=256K", "book.max_levels=64K",
        "symbols.max_symbols=1000", "pipeline.workers=1", "journal.buffer_size=16K",
        "journal.fsync_interval=20ms"]
KINDS = ["eio", "enospc", "eintr", "short", "econnreset"]
JOURNAL_SITES = ("journal_write", "journal_fsync", "crc_write")
PERSISTENT_SITES = JOURNAL_SITES + ("journal_read", "gaps_write", "export_write")
SITES = ["journal_write", "journal_fsync", "journal_read", "crc_write", "gaps_write",
         "export_write", "tcp_accept", "http_accept", "tcp_recv", "tcp_send"]
# the connections: every kind there is the peer's trouble, recovered from (a reconnect, a retry)
SOCKET_SITES = ("tcp_accept", "http_accept", "tcp_recv", "tcp_send")
SAN_LOG = os.path.join(TMP, "san")  # ASAN_OPTIONS/UBSAN_OPTIONS log_path, if the binary has them
ENV = dict(os.environ, ASAN_OPTIONS=f"log_path={SAN_LOG}:" + os.environ.get("ASAN_OPTIONS", ""),
           UBSAN_OPTIONS=f"log_path={SAN_LOG}:print_stacktrace=1:"
           + os.environ.get("UBSAN_OPTIONS", ""))


def records(path):
    """Record count of an ITCH BinaryFILE (2-byte big-endian length, then the message)."""
    data = open(path, "rb").read()
    n, off = 0, 0
    while off + 2 <= len(data):
        ln = struct.unpack_from(">H", data, off)[0]
        if off + 2 + ln > len(data):
            break
        off += 2 + ln
        n += 1
    return n, off


class Server:
    def __init__(self, journal, fault=None, tag="serve"):
        for _ in range(5):  # a free port taken by another process meanwhile: new ports
            self.start(journal, fault, tag)
            if self.up or self.p.returncode is None or "Address already in use" not in \
                    open(self.out, errors="replace").read():
                return
            self.outf.close()

    def start(self, journal, fault, tag):
        self.tcp, self.udp, self.http = free_port(), free_port(socket.SOCK_DGRAM), free_port()
        self.log = os.path.join(LOGDIR, f"{tag}.log")
        self.out = os.path.join(LOGDIR, f"{tag}.out")
        for f in (self.log, self.out):
            if os.path.exists(f):
                os.unlink(f)
        args = [BIN, "serve", "--set", f"live.tcp_port={self.tcp}",
                "--set", f"live.udp_port={self.udp}", "--set", f"http.port={self.http}",
                "--set", f"journal.path={journal}", "--set", f"server.log={self.log}"]
        for s in SETS:
            args += ["--set", s]
        env = dict(ENV)
        env.pop("TICKCORE_FAULT", None)
        if fault:
            env["TICKCORE_FAULT"] = fault
        self.outf = open(self.out, "w")
        self.p = subprocess.Popen(args, stdout=self.outf, stderr=subprocess.STDOUT, env=env)
        self.up = False
        deadline = time.time() + 30
        while time.time() < deadline and self.p.poll() is None:
            st, h = self.get("/healthz", tries=1)
            if st == 200 or (st == 503 and h and h["status"].startswith("degraded")):
                self.up = True
                return
            time.sleep(0.02)

    def get(self, path, tries=5):
        """(status, JSON body); retried on a refused or reset connection (http_accept faults)."""
        for _ in range(tries):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.http}{path}",
                                            timeout=10) as r:
                    return r.status, json.loads(r.read().decode())
            except urllib.error.HTTPError as e:
                try:
                    return e.code, json.loads(e.read().decode())
                except ValueError:
                    return e.code, None
            except (OSError, ValueError):
                time.sleep(0.02)
        return 0, None

    def stop(self, timeout=30):
        """Exit status after SIGTERM; None if it hung (then killed)."""
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            rc = None
        self.outf.close()
        return rc

    def logtext(self):
        t = ""
        for f in (self.log, self.out):
            if os.path.exists(f):
                t += open(f, errors="replace").read()
        return t


def fault_calls(text):
    m = re.search(r"fault: calls ((?:\w+=\d+ ?)+); armed \w+ at call \d+(?: \(persistent\))?, "
                  r"injected (\d+)", text)
    if not m:
        return None, 0
    return {k: int(v) for k, v in (kv.split("=") for kv in m.group(1).split())}, int(m.group(2))


def close(a, b):
    return abs(float(a) - float(b)) <= 1e-6 * max(1.0, abs(float(b)))


def same(got, want, k):
    """A field of /v1/symbols against replay's: no bid (ask) yet is null in both."""
    if got is None or want is None:
        return got is None and want is None and k in ("bid", "ask", "last")
    return close(got, want)


class Sweep:
    def __init__(self, day, base, total, half):
        self.day, self.base, self.total, self.half = day, base, total, half
        self.daybytes = open(day, "rb").read()
        self.refs = {}
        self.points = self.failed = self.unreached = 0
        self.failures = []

    def ref(self, path, n):
        if n not in self.refs:
            out = subprocess.run([BIN, "replay", "--json", "--set", "report.top_symbols=1000"]
                                 + sum((["--set", s] for s in SETS), []) + [path],
                                 capture_output=True, text=True, timeout=60)
            self.refs[n] = {t["symbol"]: t for t in json.loads(out.stdout)["analytics"]["top"]}
        return self.refs[n]

    def cycle(self, fault, site, kind):
        """One point; returns (problems, fault counts from the log, injected)."""
        d = os.path.join(TMP, "pt")
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        j = os.path.join(d, "j.journal")
        shutil.copy(self.base, j)
        shutil.copy(self.base + ".crc", j + ".crc")
        bad = []
        tm = [time.time()]
        srv = Server(j, fault, "fault")
        tm.append(time.time())
        acked, seen = 0, []
        feed_rc, feed_out = None, ""
        last_st, last_h, q_st = 0, None, 0
        if srv.up:
            f = subprocess.Popen([BIN, "feed", self.day, "--to", f"tcp://127.0.0.1:{srv.tcp}",
                                  "--quiet", "--retry", "3"], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True, env=ENV)
            stop = threading.Event()

            def poll():
                while not stop.is_set():
                    st, h = srv.get("/healthz", tries=1)
                    if h and "next_sequence" in h:
                        seen.append((st, h))
                    time.sleep(0.01)
            t = threading.Thread(target=poll)
            t.start()
            try:
                feed_out = f.communicate(timeout=30)[0]
                feed_rc = f.returncode
            except subprocess.TimeoutExpired:
                f.kill()
                feed_out = f.communicate()[0]
                bad.append("the feed hung (30 s)")
            stop.set()
            t.join()
            st, h = srv.get("/healthz")
            if h and "next_sequence" in h:
                seen.append((st, h))
            acked = max([hh["next_sequence"] - 1 for _, hh in seen], default=0)
            last_st, last_h = (seen[-1] if seen else (0, None))
            q_st, _ = srv.get("/v1/symbols")
        tm.append(time.time())
        rc = srv.stop()
        tm.append(time.time())
        text = srv.logtext()
        calls, injected = fault_calls(text)
        if rc is None:
            bad.append("the server hung after SIGTERM (30 s)")
        elif rc < 0:
            bad.append(f"the server died of signal {-rc}")
        jbytes = open(j, "rb").read()
        m, _ = records(j)
        if not self.daybytes.startswith(jbytes):
            bad.append(f"the journal ({len(jbytes)} bytes) is not a prefix of the day")
        if m < self.half:
            bad.append(f"the journal lost messages it had: {m} < {self.half}")
        if m < acked:
            bad.append(f"acknowledged {acked} messages, the journal holds {m}")
        reached = injected > 0
        persistent = kind in ("eio", "enospc")
        if reached and site == "journal_read" and persistent:
            if srv.up:
                bad.append("a failed read of the scan: the server started anyway")
            if rc != 1:
                bad.append(f"a failed read at start-up: exit {rc}, wanted 1")
            if "journal" not in text:
                bad.append("start-up failure message does not name the journal")
        elif reached and persistent and site in JOURNAL_SITES:
            if rc != 1:
                bad.append(f"a failed journal {site}: exit {rc}, wanted 1")
            degraded = [hh for s2, hh in seen if hh["status"] != "ok"]
            if last_h is not None and last_h["status"] != "ok" or degraded:
                hh = degraded[-1] if degraded else last_h
                err = "Input/output error" if kind == "eio" else "No space left on device"
                if not hh["status"].startswith("degraded: journal") or last_st != 503:
                    bad.append(f"/healthz after the failure: {last_st} {hh.get('status')}")
                if err not in json.dumps(hh):
                    bad.append(f"/healthz does not name '{err}': {hh}")
                if feed_rc == 0 and m < self.total:
                    bad.append("the publisher was not refused (feed exit 0, day incomplete)")
                if q_st != 200:
                    bad.append(f"queries not served while degraded: /v1/symbols {q_st}")
        elif srv.up or not reached:
            if not srv.up:
                bad.append("the server did not start")
            if feed_rc != 0:
                bad.append(f"feed exit {feed_rc}: {feed_out[-300:]}")
            if rc != 0:
                bad.append(f"server exit {rc}")
            if jbytes != self.daybytes:
                bad.append(f"journal {len(jbytes)} bytes, the day {len(self.daybytes)}")
            if last_h is None or last_h["status"] != "ok":
                bad.append(f"/healthz at the end: {last_st} {last_h}")
            if kind in ("eintr", "short") and site not in ("tcp_accept", "http_accept"):
                noted = [ln for ln in text.splitlines() if re.search(
                    r"sidecar|structure only|torn|cut |error|failed|Interrupted", ln)]
                if noted:  # transparent: the log of a clean run, nothing noted or retried
                    bad.append(f"not transparent, the log says: {noted[0][-200:]}")
        else:
            bad.append(f"the server did not start (exit {rc}): {text[-300:]}")
        # the restart: exactly the journal, equal to replay of it
        tm.append(time.time())
        r = Server(j, None, "restart")
        tm.append(time.time())
        if not r.up:
            bad.append(f"restart failed: {r.logtext()[-300:]}")
        else:
            st, h = r.get("/healthz")
            if not h or h.get("status") != "ok" or h["next_sequence"] != m + 1:
                bad.append(f"restart /healthz {st} {h}, wanted next {m + 1}")
            want = self.ref(j, m) if m > 0 else {}
            diff = []
            for _ in range(40):
                st, body = r.get("/v1/symbols")
                got = {s["symbol"]: s for s in (body or {}).get("symbols", [])}
                diff = [(sym, k, got.get(sym, {}).get(k), w[k]) for sym, w in want.items()
                        for k in ("trades", "volume", "vwap", "last", "bid", "ask")
                        if sym not in got or not same(got[sym].get(k), w[k], k)]
                if not diff:
                    break
                time.sleep(0.05)
            if diff:
                shutil.copy(j, os.path.join(LOGDIR, "differs.journal"))
                bad.append(f"restart: {len(diff)} symbol fields differ from replay, {diff[:3]}")
        tm.append(time.time())
        rrc = r.stop()
        tm.append(time.time())
        if os.environ.get("FAULT_SWEEP_TIMES"):
            print("    times", fault, " ".join(f"{b - a:.2f}" for a, b in zip(tm, tm[1:])))
        if rrc != 0:
            bad.append(f"restarted server exit {rrc}")
        if os.path.exists(TMP) and any(n.startswith("san") for n in os.listdir(TMP)):
            bad.append("a sanitizer report: " + " ".join(n for n in os.listdir(TMP)
                                                          if n.startswith("san")))
        return bad, calls, injected


def main():
    t0 = time.time()
    rnd = random.Random(SEED)
    print(f"  faultsweep  seed {SEED}, {PER or 'every'} N per site and kind "
          f"(tests/fault_sweep.py RESULTS BIN {PER} {SEED} runs this sweep again)")
    day = os.path.join(TMP, "day.itch")
    subprocess.run([BIN, "gen", "--messages", "12000", "--symbols", "12", "--seed", "29",
                    "--no-truth", "--out", day], check=True, stdout=subprocess.DEVNULL, env=ENV)
    total, _ = records(day)
    half = 5000
    part = os.path.join(TMP, "part.itch")
    data = open(day, "rb").read()
    off = 0
    for _ in range(half):
        off += 2 + struct.unpack_from(">H", data, off)[0]
    open(part, "wb").write(data[:off])
    base = os.path.join(TMP, "base.journal")
    a = Server(base, None, "first")
    ok = a.up and subprocess.run([BIN, "feed", part, "--to", f"tcp://127.0.0.1:{a.tcp}",
                                  "--quiet"], env=ENV).returncode == 0
    ok = a.stop() == 0 and ok
    if not STAGE.check("first_half_journaled", ok and records(base)[0] == half,
                       a.logtext()[-500:]):
        return STAGE.finish()
    sw = Sweep(day, base, total, half)
    bad, calls, _ = sw.cycle("count", None, None)
    STAGE.check("counting_run_is_clean", not bad and calls, f"{bad} {calls}")
    if not calls:
        return STAGE.finish()
    print("  faultsweep  calls per site in one cycle: "
          + ", ".join(f"{s} {calls.get(s, 0)}" for s in SITES))
    plan = []
    for site in SITES:
        n = calls.get(site, 0)
        if n == 0:
            continue
        for kind in KINDS:
            if kind == "econnreset" and site not in SOCKET_SITES:
                continue  # a file's write does not reset
            if PER == 0:
                ns = list(range(1, n + 1))
            else:
                ns = sorted(rnd.sample(range(1, n + 1), min(PER, n)))
            for k in ns:
                plan.append((site, kind, k))
    only = os.environ.get("FAULT_SWEEP_ONLY")  # one point, e.g. "eio@1/journal_write!"
    sites = os.environ.get("FAULT_SWEEP_SITES")  # e.g. "journal_read+crc_write"
    if sites:
        plan = [p for p in plan if p[0] in sites.split("+")]
    kinds = os.environ.get("FAULT_SWEEP_KINDS")  # e.g. "eintr+short"
    if kinds:
        plan = [p for p in plan if p[1] in kinds.split("+")]
    if only:
        plan = [(only.split("/")[1].rstrip("!"), only.split("@")[0], int(only.split("@")[1]
                                                                           .split("/")[0]))]
    skipped = [s for s in SITES if calls.get(s, 0) == 0]
    reached = 0
    for site, kind, n in plan:
        persist = kind in ("eio", "enospc") and site in PERSISTENT_SITES
        fault = f"{kind}@{n}/{site}" + ("!" if persist else "")
        try:
            bad, _, injected = sw.cycle(fault, site, kind)
        except Exception as e:  # the harness: named with its point, the sweep goes on
            bad, injected = [f"harness: {e!r}"], 1
        sw.points += 1
        reached += injected > 0
        if injected == 0:
            sw.unreached += 1
        if bad:
            sw.failures.append((fault, bad))
            print(f"  faultsweep  TICKCORE_FAULT={fault}: " + "; ".join(bad))
    print(f"  faultsweep  {sw.points} points ({reached} reached, {sw.unreached} not reached "
          f"this run), {len(sw.failures)} failed; sites with no call in the cycle: "
          f"{', '.join(skipped) or 'none'}")
    for kind in KINDS:
        fl = [f for f, _ in sw.failures if f.startswith(kind + "@")]
        STAGE.check(f"every_{kind}_point", not fl,
                    f"{len(fl)} failed: " + " | ".join(f"{f}: {b}" for f, b in sw.failures
                                                       if f in fl)[:1500])
    STAGE.check("most_points_reached", reached >= sw.points * 3 // 4,
                f"{reached} of {sw.points} reached")
    shutil.rmtree(TMP, ignore_errors=True)
    print(f"  faultsweep  {time.time() - t0:.1f} s")
    return STAGE.finish()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # a crash of the harness is a failure, not a silent pass
        STAGE.check("harness", False, repr(e))
        sys.exit(1)
