#!/usr/bin/python3
"""tests/serve_test.py RESULTS TICKCORE: the server end to end, the way an operator runs it.

Starts the real `tickcore serve` on loopback ports chosen free at run time, feeds it a generated
day with the real `tickcore feed` over SoupBinTCP and over MoldUDP64, queries every endpoint,
checks /metrics with promtool, sends bad clients (garbage bytes, a slow loris, half packets, a
wrong password, an oversized HTTP request) while a good publisher runs, kills the server with
SIGKILL mid-feed and restarts it, and stops it with SIGTERM. The oracles are independent of the
server: `tickcore replay` of the same file (message count, VWAPs, books), the file itself (the
journal must equal it byte for byte), promtool, and hand-built SoupBinTCP packets.
Appends "serve <case> P F S" lines to RESULTS like tests/run.sh. Python standard library only.
"""
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

RESULTS, BIN = sys.argv[1], os.path.abspath(sys.argv[2])
LOGDIR = os.path.abspath("build/test-logs/serve")
shutil.rmtree(LOGDIR, ignore_errors=True)  # this run's logs only (a restart appends to its own)
os.makedirs(LOGDIR, exist_ok=True)
TMP = tempfile.mkdtemp(prefix="tickcore-serve-")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))
from stage import Stage, free_port  # noqa: E402

STAGE = Stage("serve", RESULTS)
record, check = STAGE.record, STAGE.check


class Server:
    def __init__(self, name, journal, extra=()):
        self.name = name
        self.tcp, self.udp, self.http = free_port(), free_port(socket.SOCK_DGRAM), free_port()
        self.log = os.path.join(LOGDIR, name + ".log")
        self.out = os.path.join(LOGDIR, name + ".out")
        self.args = [BIN, "serve", "--set", f"live.tcp_port={self.tcp}",
                     "--set", f"live.udp_port={self.udp}", "--set", f"http.port={self.http}",
                     "--set", f"journal.path={journal}", "--set", f"server.log={self.log}",
                     "--set", "server.analytics_interval=100ms", "--set", "stats.bar_interval=1s",
                     "--set", "matrix.symbols=32", "--set", "graph.clusters=3",
                     "--set", "book.max_orders=256K", "--set", "book.max_levels=64K",
                     "--set", "symbols.max_symbols=1000", "--set", "pipeline.workers=1"] + list(extra)
        self.token = None
        for a in extra:
            if a.startswith("http.token="):
                self.token = a.split("=", 1)[1]
        self.start()

    def start(self):
        self.outf = open(self.out, "a")
        self.p = subprocess.Popen(self.args, stdout=self.outf, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.p.poll() is not None:
                raise RuntimeError(f"{self.name}: serve exited {self.p.returncode}: "
                                   + open(self.out).read()[-2000:])
            try:
                st, _ = self.get("/healthz")
                if st == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name}: serve did not answer /healthz in 20 s")

    def get(self, path, token=None, method="GET", timeout=10):
        req = urllib.request.Request(f"http://127.0.0.1:{self.http}{path}", method=method)
        tok = token if token is not None else self.token
        if tok:
            req.add_header("Authorization", f"Bearer {tok}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def json(self, path):
        st, body = self.get(path)
        return st, (json.loads(body) if body.startswith("{") else None)

    def metric(self, name, labels=""):
        st, body = self.get("/metrics")
        key = name + ("{" + labels + "}" if labels else "")
        for line in body.splitlines():
            if line.startswith(key + " "):
                return float(line.split()[-1])
        return None

    def wait_seq(self, want, timeout=60):
        deadline = time.time() + timeout
        st, h = self.json("/healthz")
        while time.time() < deadline:
            st, h = self.json("/healthz")
            if h and h["next_sequence"] >= want:
                return h["next_sequence"]
            time.sleep(0.05)
        return h["next_sequence"] if h else None

    def kill9(self):
        self.p.send_signal(signal.SIGKILL)
        self.p.wait()
        self.outf.close()

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = -9
        self.outf.close()
        return rc, open(self.out).read()


def feed(path, url, *args):
    return subprocess.Popen([BIN, "feed", path, "--to", url, "--quiet"] + list(args),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def soup(ptype, payload=b""):
    return struct.pack(">H", len(payload) + 1) + ptype + payload


def login(user="tick", pw="core", session="", seq=0):
    return soup(b"L", user.ljust(6).encode() + pw.ljust(10).encode() +
                session.rjust(10).encode() + str(seq).rjust(20).encode())


def read_packet(s, timeout=5):
    s.settimeout(timeout)
    hdr = b""
    while len(hdr) < 2:
        c = s.recv(2 - len(hdr))
        if not c:
            return None
        hdr += c
    n = struct.unpack(">H", hdr)[0]
    body = b""
    while len(body) < n:
        c = s.recv(n - len(body))
        if not c:
            return None
        body += c
    return body


def closed_by_peer(s, timeout):
    s.settimeout(timeout)
    try:
        while True:
            d = s.recv(4096)
            if not d:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def main():
    day = os.path.join(TMP, "day.itch")
    subprocess.run([BIN, "gen", "--messages", "300000", "--symbols", "24", "--seed", "11",
                    "--no-truth", "--out", day], check=True, stdout=subprocess.DEVNULL)
    ref = json.loads(subprocess.run([BIN, "replay", "--json", "--set", "pipeline.workers=1",
                                     "--set", "stats.bar_interval=1s", day],
                                    check=True, capture_output=True, text=True).stdout)
    total = ref["messages"]
    top = ref["analytics"]["top"]

    # ---- 1. TCP feed, SIGKILL mid-feed, restart, finish: nothing lost -----------------------
    jpath = os.path.join(TMP, "a.journal")
    srv = Server("crash", jpath, ["--set", "live.heartbeat=200ms"])
    f = feed(day, f"tcp://127.0.0.1:{srv.tcp}", "--rate", "150000/s", "--retry", "60")
    time.sleep(0.8)
    before = srv.wait_seq(1000, timeout=10)
    srv.kill9()
    check("kill9_mid_feed", before is not None and 1000 <= before < total,
          f"next sequence at the kill: {before} of {total}")
    time.sleep(0.3)
    srv.start()
    st, h = srv.json("/healthz")
    check("restart_resumes_from_journal", h and h["next_sequence"] > 1,
          f"after restart: {h}")
    out, _ = f.communicate(timeout=120)
    check("feed_finishes_after_restart", f.returncode == 0, out[-500:])
    got = srv.wait_seq(total + 1)
    check("kill9_all_messages", got == total + 1, f"next sequence {got}, wanted {total + 1}")
    time.sleep(0.5)  # snapshots: published within server.snapshot_interval of the last batch
    bad = []
    for t in top:
        st, s = srv.json("/v1/symbols/" + t["symbol"])
        if st != 200:
            bad.append((t["symbol"], st))
            continue
        for k_ref, k in (("vwap", "vwap"), ("volume", "volume"), ("trades", "trades")):
            v = s.get(k, s.get("stats", {}).get(k))
            if v is None or abs(float(v) - float(t[k_ref])) > 1e-6 * max(1, abs(float(t[k_ref]))):
                bad.append((t["symbol"], k, v, t[k_ref]))
        for k in ("bid", "ask"):  # none yet: null in both
            v = (s.get(k) or {}).get("price")
            if (v is None) != (t[k] is None) or v is not None and abs(float(v) - float(t[k])) > 1e-9:
                bad.append((t["symbol"], k, v, t[k]))
    check("kill9_books_and_vwaps_equal_replay", not bad, str(bad[:5]))
    check("journal_equals_the_file", open(jpath, "rb").read() == open(day, "rb").read(),
          f"journal {os.path.getsize(jpath)} bytes, file {os.path.getsize(day)}")
    rj = json.loads(subprocess.run([BIN, "replay", "--json", jpath], capture_output=True,
                                   text=True).stdout)
    check("replay_reads_the_journal", rj["messages"] == total, f"{rj['messages']} != {total}")

    # ---- 1b. three shard workers: each marks only its own events; same answers as one -------
    # /v1/symbols (last, volume, trades, vwap, bid, ask, bar return, last event's ts) of every
    # symbol equals the one-worker server's above; the steady state allocates nothing.
    # (its log on standard error, beside the report on standard output, in one file)
    rsrv = Server("routed", os.path.join(TMP, "r.journal"), ["--set", "pipeline.workers=3",
                                                             "--set", "server.log="])
    f = feed(day, f"tcp://127.0.0.1:{rsrv.tcp}", "--rate", "max")
    out, _ = f.communicate(timeout=120)
    got = rsrv.wait_seq(total + 1)
    time.sleep(0.5)
    _, one = srv.json("/v1/symbols")
    _, three = rsrv.json("/v1/symbols")
    one = sorted((one or {}).get("symbols", []), key=lambda r: r["symbol"])
    three = sorted((three or {}).get("symbols", []), key=lambda r: r["symbol"])
    diff = [(a, b) for a, b in zip(one, three) if a != b]
    check("routed_3_workers_symbols_equal_one_worker",
          f.returncode == 0 and got == total + 1 and len(one) == 24 and len(three) == 24
          and not diff, f"next sequence {got}, {len(one)}/{len(three)} symbols, {diff[:2]}")
    churn = rsrv.metric("tickcore_memory_churn_total", 'tag="server"')
    rc, out = rsrv.stop()
    check("routed_3_workers_no_churn", rc == 0 and churn == 0 and
          "allocations while serving (after the seal): 0 " in out, f"exit {rc}, churn {churn}")
    # Issue 15: the report on stdout and the log on stderr interleaved mid-line ("  total   102
    # 2026-...Z serve: exit status 0": stdout's buffer flushed at exit, after the last log line).
    # Every log line (the serve's threads' and the exit's) starts a line and is whole.
    mixed = [ln for ln in out.splitlines()
             if re.search(r".\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z serve: ", ln)]
    check("report_and_log_lines_whole", not mixed and "serve: exit status 0" in out
          and "tickcore serve:" in out, f"{len(mixed)} mixed lines, first {mixed[:2]}")

    # ---- 2. every endpoint -------------------------------------------------------------------
    for path, want in (("/healthz", 200), ("/metrics", 200), ("/v1/symbols", 200),
                       ("/v1/symbols/" + top[0]["symbol"] + "?depth=3", 200),
                       ("/v1/symbols/NOSUCH", 404), ("/v1/symbols/" + top[0]["symbol"] + "?depth=x", 400),
                       ("/v1/correlation?symbols=" + ",".join(t["symbol"] for t in top[:3]), 200),
                       ("/v1/correlation", 400), ("/v1/correlation?symbols=NOSUCH", 404),
                       ("/v1/pca", 200), ("/v1/mst", 200), ("/v1/clusters", 200),
                       ("/v1/memory", 200), ("/nope", 404), ("/../../etc/passwd", 404)):
        st, body = srv.get(path)
        ok = st == want
        if ok and path != "/metrics":
            try:
                j = json.loads(body)
                ok = ("error" in j) == (want >= 400)
            except ValueError as e:
                ok, body = False, f"not JSON: {e}: {body[:200]}"
        check("http_" + path.strip("/").replace("/", "_").replace("?", "_")[:30] or "root", ok,
              f"status {st}, wanted {want}: {body[:300]}")
    st, body = srv.get("/metrics", method="POST")
    check("http_post_refused", st == 405 and "error" in body, f"{st} {body[:200]}")
    st, c = srv.json("/v1/correlation?symbols=" + ",".join(t["symbol"] for t in top[:3]))
    mat = c.get("matrix") or c.get("correlation") if c else None
    check("correlation_submatrix_3x3", mat and len(mat) == 3 and all(len(r) == 3 for r in mat)
          and all(abs(mat[i][i] - 1) < 1e-9 for i in range(3))
          and all(abs(mat[i][j] - mat[j][i]) < 1e-12 for i in range(3) for j in range(3)),
          str(c)[:300])
    st, body = srv.get("/metrics")
    mfile = os.path.join(TMP, "metrics.txt")
    open(mfile, "w").write(body)
    if shutil.which("promtool"):
        pr = subprocess.run(["promtool", "check", "metrics"], stdin=open(mfile),
                            capture_output=True, text=True)
        check("promtool_check_metrics", pr.returncode == 0, pr.stdout + pr.stderr)
    else:
        record("promtool_check_metrics", False, "promtool not installed (make deps)", skip=True)
    for fam in ("tickcore_feed_messages_total", "tickcore_udp_gaps_total",
                "tickcore_memory_live_bytes", "tickcore_memory_churn_total",
                "tickcore_ring_high_water", "tickcore_resident_bytes",
                "tickcore_journal_fsyncs_total", "tickcore_pipeline_full_waits_total"):
        check("metrics_has_" + fam, f"# TYPE {fam} " in body and f"# HELP {fam} " in body, fam)
    churn = sum(float(l.split()[-1]) for l in body.splitlines()
                if l.startswith("tickcore_memory_churn_total{"))
    check("metrics_churn_zero_after_feed_and_queries", churn == 0, f"churn {churn}")

    rc, out = srv.stop()
    check("sigterm_exit_0", rc == 0, out[-1500:])
    check("sigterm_no_leak", "leak check: OK" in out, out[-1500:])
    check("sigterm_no_churn", "allocations while serving (after the seal): 0 " in out, out[-800:])

    # ---- 2b. a whole day at max rate (1 s bars): the cross-section is computed ---------------
    # #16: the day's bars all came within one server.analytics_interval, and the cross-section
    # thread looked at the interval only when a bar came: /v1/mst stayed 503 and
    # tickcore_xsection_computes_total 0. The idle tick after the feed now computes them.
    srv = Server("maxrate", os.path.join(TMP, "max.journal"))
    f = feed(day, f"tcp://127.0.0.1:{srv.tcp}", "--rate", "max")
    got = srv.wait_seq(total + 1)
    out, _ = f.communicate(timeout=60)
    deadline, st = time.time() + 10, None
    while time.time() < deadline:
        st, mst = srv.json("/v1/mst")
        if st == 200:
            break
        time.sleep(0.1)
    computes = srv.metric("tickcore_xsection_computes_total")
    check("max_rate_day_computes_cross_section", got == total + 1 and st == 200 and
          mst and mst["count"] == mst["n"] - 1 > 0 and computes and computes >= 1,
          f"next sequence {got}, /v1/mst {st}, computes {computes}")
    # /v1/correlation?format=csv: the whole matrix in the --corr-out format. This server computed
    # several times while the rows came (server.analytics_interval=100ms), and each compute
    # flushes the covariance's batched rank-k update at another row than one compute at the end
    # does: the values agree with replay's to 1e-12, not bit for bit (2c has the bit-for-bit case)
    corr_ref = os.path.join(TMP, "corr_ref.csv")
    subprocess.run([BIN, "replay", "--set", "pipeline.workers=1", "--set", "stats.bar_interval=1s",
                    "--set", "matrix.symbols=32", "--set", "graph.clusters=3",
                    "--corr-out", corr_ref, day], check=True, stdout=subprocess.DEVNULL)
    ref_csv = open(corr_ref).read()

    def csv_close(body, tol):
        a = [ln.split(",") for ln in body.splitlines()]
        b = [ln.split(",") for ln in ref_csv.splitlines()]
        if len(a) != len(b) or a[0] != b[0] or any(len(x) != len(y) or x[0] != y[0]
                                                   for x, y in zip(a, b)):
            return False, f"shape or names differ: {body[:200]!r}"
        worst = max(abs(float(x) - float(y)) for ra, rb in zip(a[1:], b[1:])
                    for x, y in zip(ra[1:], rb[1:]))
        return worst <= tol, f"largest difference {worst:.3g}"

    st, body = srv.get("/v1/correlation?format=csv")
    ok, why = csv_close(body, 1e-12) if st == 200 else (False, f"status {st}: {body[:200]}")
    check("correlation_csv_equals_replay_corr_out_1e-12", ok, why)
    st2, body2 = srv.get("/v1/correlation?format=csv")
    check("correlation_csv_second_request_same_body", st2 == 200 and body2 == body,
          f"status {st2}")
    st, body = srv.get("/v1/correlation?format=xml")
    check("correlation_bad_format_400", st == 400 and "format must be csv" in body, body[:200])
    churn = srv.metric("tickcore_memory_churn_total", 'tag="server"')
    check("correlation_csv_no_churn", churn == 0, f"churn {churn}")
    rc, out = srv.stop()
    check("max_rate_sigterm_exit_0", rc == 0, out[-800:])

    # ---- 2c. one compute at the end: the CSV equals replay --corr-out byte for byte ------------
    srv = Server("corrcsv", os.path.join(TMP, "csv.journal"),
                 ["--set", "server.analytics_interval=1h"])
    f = feed(day, f"tcp://127.0.0.1:{srv.tcp}", "--rate", "max")
    got = srv.wait_seq(total + 1)
    f.communicate(timeout=60)
    # an idle moment of the feed computes early (the idle tick): wait for the last rows' compute
    deadline, st, body = time.time() + 15, None, ""
    while time.time() < deadline:
        st, body = srv.get("/v1/correlation?format=csv")
        if st == 200 and body == ref_csv:
            break
        time.sleep(0.2)
    check("correlation_csv_equals_replay_corr_out_bytes", st == 200 and body == ref_csv,
          f"status {st}, {len(body)} bytes against {len(ref_csv)}; " +
          (csv_close(body, 0)[1] if st == 200 else body[:200]))
    rc, out = srv.stop()
    check("correlation_csv_server_exit_0_no_churn", rc == 0 and
          "allocations while serving (after the seal): 0 " in out, out[-800:])

    # ---- 3. UDP with dropped packets: gaps re-requested and filled ---------------------------
    jb = os.path.join(TMP, "b.journal")
    srv = Server("udp", jb)
    f = feed(day, f"udp://127.0.0.1:{srv.udp}", "--rate", "300000/s", "--drop-every", "97",
             "--linger", "3")
    got = srv.wait_seq(total + 1, timeout=60)
    out, _ = f.communicate(timeout=60)
    check("udp_feed_exit_0", f.returncode == 0, out[-500:])
    check("udp_all_messages", got == total + 1, f"next sequence {got}")
    gaps, lost, rec = (srv.metric("tickcore_udp_gaps_total"),
                       srv.metric("tickcore_udp_lost_messages_total"),
                       srv.metric("tickcore_udp_recovered_messages_total"))
    check("udp_gaps_detected_and_filled", gaps and gaps > 0 and lost == 0 and rec and rec > 0,
          f"gaps {gaps}, lost {lost}, recovered {rec}")
    check("udp_journal_equals_the_file", open(jb, "rb").read() == open(day, "rb").read())
    rc, out = srv.stop()
    check("udp_sigterm_exit_0", rc == 0, out[-800:])

    # ---- 3b. A/B arbitration: the same stream over TCP and UDP at once, each message once ------
    jab = os.path.join(TMP, "ab.journal")
    srv = Server("ab", jab)
    ft = feed(day, f"tcp://127.0.0.1:{srv.tcp}", "--rate", "400000/s")
    fu = feed(day, f"udp://127.0.0.1:{srv.udp}", "--rate", "400000/s", "--linger", "2")
    ot, _ = ft.communicate(timeout=120)
    ou, _ = fu.communicate(timeout=120)
    got = srv.wait_seq(total + 1)
    dups = (srv.metric("tickcore_feed_duplicates_total", 'feed="tcp"') or 0) + \
        (srv.metric("tickcore_feed_duplicates_total", 'feed="udp"') or 0)
    took = (srv.metric("tickcore_feed_messages_total", 'feed="tcp"') or 0) + \
        (srv.metric("tickcore_feed_messages_total", 'feed="udp"') or 0)
    check("ab_both_feeds_each_message_once", ft.returncode == 0 and fu.returncode == 0 and
          got == total + 1 and took == total and dups > 0,
          f"next {got}, taken {took}, duplicates {dups}; {ot[-200:]} {ou[-200:]}")
    check("ab_journal_equals_the_file", open(jab, "rb").read() == open(day, "rb").read())
    rc, out = srv.stop()
    check("ab_sigterm_exit_0", rc == 0, out[-500:])

    # ---- 3c. a gap that cannot be filled: counted, logged, journalled, survives a restart ------
    jg = os.path.join(TMP, "gap.journal")
    srv = Server("gap", jg, ["--set", "live.gap_timeout=200ms"])
    # every 50th datagram held back, and only 10 messages retained: re-requests cannot be answered
    fg = feed(day, f"udp://127.0.0.1:{srv.udp}", "--rate", "300000/s", "--drop-every", "50",
              "--retain", "10", "--linger", "1")
    fg.communicate(timeout=120)
    got = srv.wait_seq(total + 1)
    lost = srv.metric("tickcore_udp_lost_messages_total")
    gaps = srv.metric("tickcore_udp_lost_gaps_total")
    jmsgs = srv.metric("tickcore_journal_messages_total")
    check("gap_lost_counted_and_ingest_goes_on", got == total + 1 and lost and lost > 0 and
          gaps and gaps > 0, f"next {got}, lost {lost} in {gaps} gaps")
    logtext = open(srv.log).read()
    check("gap_lost_range_logged", "lost: not retransmitted" in logtext, logtext[-500:])
    srv.kill9()
    sidecar = jg + ".gaps"
    lines = open(sidecar).read().splitlines() if os.path.exists(sidecar) else []
    check("gap_recorded_in_sidecar", len(lines) == gaps, f"{len(lines)} lines for {gaps} gaps")
    srv.start()
    st, h = srv.json("/healthz")
    check("gap_restart_resumes_after_lost_ranges", h and h["next_sequence"] == total + 1,
          f"after restart: {h}; journal had {jmsgs} messages + {lost} lost")
    rc, out = srv.stop()
    check("gap_sigterm_exit_0", rc == 0, out[-500:])

    # ---- 4. bad clients while a good publisher runs ------------------------------------------
    jc = os.path.join(TMP, "c.journal")
    srv = Server("bad", jc, ["--set", "live.idle_timeout=1s", "--set", "live.login_timeout=1s",
                             "--set", "http.max_request=4K", "--set", "http.token=s3cret"])
    good = feed(day, f"tcp://127.0.0.1:{srv.tcp}", "--rate", "200000/s")
    time.sleep(0.2)
    g = socket.create_connection(("127.0.0.1", srv.tcp))
    g.sendall(b"\x00\x05GARBAGE-GARBAGE")
    check("bad_garbage_dropped", closed_by_peer(g, 5))
    w = socket.create_connection(("127.0.0.1", srv.tcp))
    w.sendall(login(pw="wrong"))
    p = read_packet(w)
    check("bad_password_rejected", p == b"JA", repr(p))
    w.close()
    ws = socket.create_connection(("127.0.0.1", srv.tcp))
    ws.sendall(login(session="OTHER"))
    p = read_packet(ws)
    check("bad_session_rejected", p == b"JS", repr(p))
    ws.close()
    sl = socket.create_connection(("127.0.0.1", srv.tcp))
    sl.sendall(login()[:10])  # half a login, then nothing: a slow loris
    t0 = time.time()
    check("slow_loris_before_login_dropped", closed_by_peer(sl, 5) and time.time() - t0 >= 0.5,
          f"after {time.time() - t0:.1f} s")
    sl = socket.create_connection(("127.0.0.1", srv.tcp))
    sl.sendall(login())
    p = read_packet(sl)
    sl.sendall(soup(b"S", b"A" + b"\x00" * 35)[:9])  # logged in, then half a packet and silence
    t0 = time.time()
    check("slow_loris_mid_packet_dropped", p and p[:1] == b"A" and closed_by_peer(sl, 5)
          and time.time() - t0 >= 0.5, f"{p!r} after {time.time() - t0:.1f} s")
    hp = socket.create_connection(("127.0.0.1", srv.tcp))
    hp.sendall(login())
    p = read_packet(hp)
    check("second_login_accepted", p is not None and p[:1] == b"A", repr(p))
    hp.sendall(soup(b"S", b"A" + b"\x00" * 10)[:7])  # half a sequenced packet, then close
    hp.close()
    ns = socket.create_connection(("127.0.0.1", srv.tcp))
    ns.sendall(soup(b"S", b"A" * 36))  # data before login
    check("data_before_login_dropped", closed_by_peer(ns, 5))
    big = socket.create_connection(("127.0.0.1", srv.http))
    big.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 100000 + b"\r\n\r\n")
    big.settimeout(5)
    try:
        resp = big.recv(200)
    except (ConnectionResetError, socket.timeout):
        resp = b""
    check("http_oversized_request_refused", resp[:12] in (b"HTTP/1.1 413", b"HTTP/1.1 431",
                                                          b"HTTP/1.1 414") or resp == b"",
          repr(resp[:80]))
    big.close()
    st, _ = srv.get("/metrics", token="")
    check("http_token_required", st == 401, str(st))
    st, _ = srv.get("/metrics", token="wrong")
    check("http_wrong_token_refused", st == 401, str(st))
    st, _ = srv.get("/healthz", token="")
    check("http_healthz_public", st == 200, str(st))
    out, _ = good.communicate(timeout=120)
    check("good_publisher_unharmed", good.returncode == 0, out[-500:])
    got = srv.wait_seq(total + 1)
    check("good_publisher_all_messages", got == total + 1, f"next sequence {got}")
    drops = {r: srv.metric("tickcore_tcp_disconnects_total", f'reason="{r}"')
             for r in ("garbage", "bad_login", "bad_session", "idle_timeout", "disconnect",
                       "protocol", "logout")}
    drops["login_timeout"] = srv.metric("tickcore_tcp_disconnects_total", 'reason="login_timeout"')
    check("bad_clients_counted", drops["garbage"] >= 1 and drops["bad_login"] >= 1 and
          drops["bad_session"] >= 1 and drops["idle_timeout"] >= 1 and drops["protocol"] >= 1
          and drops["login_timeout"] >= 1
          and drops["disconnect"] >= 1, str(drops))
    logtext = open(srv.log).read()
    check("bad_clients_logged", "dropped (garbage)" in logtext and "dropped (idle_timeout)" in logtext
          and "dropped (login_timeout)" in logtext,
          logtext[-800:])
    # SIGHUP reopens the log (rotation)
    os.rename(srv.log, srv.log + ".1")
    srv.p.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    check("sighup_reopens_log", os.path.exists(srv.log) and "log reopened" in open(srv.log).read())
    rc, out = srv.stop()
    check("bad_sigterm_exit_0", rc == 0 and "leak check: OK" in out, out[-800:])

    # ---- 5. steady state: 10^6 messages with queries running, 0 engine allocations ------------
    big = os.path.join(TMP, "big.itch")
    subprocess.run([BIN, "gen", "--messages", "1M", "--symbols", "100", "--seed", "3",
                    "--no-truth", "--out", big], check=True, stdout=subprocess.DEVNULL)
    srv = Server("steady", os.path.join(TMP, "d.journal"), ["--strict"])
    import http.client
    import threading
    done = threading.Event()
    answers = {"n": 0, "bad": 0}

    def query_load():
        conn = http.client.HTTPConnection("127.0.0.1", srv.http, timeout=10)
        paths = ["/v1/symbols", "/metrics", "/v1/mst", "/v1/clusters", "/v1/pca", "/healthz",
                 "/v1/memory"]
        i = 0
        while not done.is_set():
            conn.request("GET", paths[i % len(paths)])
            r = conn.getresponse()
            r.read()
            answers["n"] += 1
            answers["bad"] += r.status not in (200, 503)
            i += 1
        conn.close()

    th = threading.Thread(target=query_load)
    th.start()
    f = feed(big, f"tcp://127.0.0.1:{srv.tcp}", "--rate", "max")
    out, _ = f.communicate(timeout=300)
    got = srv.wait_seq(1000001, timeout=120)
    time.sleep(0.3)
    done.set()
    th.join()
    check("steady_1M_messages_taken", f.returncode == 0 and got == 1000001, f"{got} {out[-300:]}")
    check("steady_queries_answered", answers["n"] > 20 and answers["bad"] == 0, str(answers))
    churn = srv.metric("tickcore_memory_churn_total", 'tag="server"')
    rc, out = srv.stop()
    check("steady_zero_engine_allocations", rc == 0 and churn == 0 and
          "allocations while serving (after the seal): 0 " in out and "leak check: OK" in out,
          f"exit {rc}, churn {churn}: {out[-1200:]}")

    # ---- 6. config errors ----------------------------------------------------------------------
    r = subprocess.run([BIN, "serve", "--set", "live.session=A-B"], capture_output=True, text=True)
    check("config_bad_value_exit_2", r.returncode == 2 and "live.session" in r.stderr, r.stderr)
    badini = os.path.join(TMP, "bad.ini")
    open(badini, "w").write("[live]\ntcp_port = 7001\nfrobnicate = 1\n")
    r = subprocess.run([BIN, "serve", "--config", badini], capture_output=True, text=True)
    check("config_bad_key_names_line", r.returncode == 2 and "bad.ini:3" in r.stderr, r.stderr)


try:
    main()
except Exception as e:  # a crash of the harness is a failure, not a silent pass
    import traceback
    traceback.print_exc()
    record("harness", False, repr(e))
finally:
    shutil.rmtree(TMP, ignore_errors=True)
sys.exit(0)
