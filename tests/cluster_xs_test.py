#!/usr/bin/env python3
"""cluster_xs_test: the cluster's global cross-section over NATS JetStream (make test stage
"cluster-xs"; tests/cluster_test.py covers publishing, shard consumption and failover).

Starts its own `nats-server -js` on a free loopback port with a temporary store (and stops it).
The oracle is a single-process `tickcore replay --corr-out --mst-out` of the same generated day.

  live      a day published with `feed --to nats://` into 4 shards (`serve` with cluster.nats,
            cluster.shard) and one cross-section node (cluster.role=xsection, live listeners
            off) started before them, shard 1 killed (-9) at 3 random points of its day and
            started again (no journal: it rebuilds from the stream's start and sends its parts
            again, which the node drops as resent): every shard's message count equals a Python
            count of the file (0 lost, 0 taken twice) and its /v1/symbols the replay's trades,
            volume, VWAP, last, bid and ask for its symbols; /v1/correlation?format=csv equals the replay's --corr-out
            to 1e-12 (not bit for bit: the node computes while rows arrive, and each compute
            flushes the covariance's batched rank-k update at another row than the replay's one
            compute at the end; test_xjoin shows the joined rows and the matrix bit for bit when
            the computes are at the same rows), the same symbols in the same order; /v1/mst has
            the replay's edges (rho and distance to the JSON's 10 digits; on a near-tie either edge);
            every bar joined (rows = the shards' published parts), none incomplete, no churn
            ; a shard's /v1/correlation, /v1/pca, /v1/mst, /v1/clusters answer 421 (it computes
            no cross-section: cluster.rows_only)
  restart   the node killed (-9) and started again after the day: it reads the rows stream from
            its start and ends with the same matrix (nothing lost)
  slow      (2 shards) a shard stopped (SIGSTOP) while a node with a 1 s join deadline joins: bars are
            dropped and counted (tickcore_xjoin_incomplete_total > 0), the node's memory stays
            flat (no churn; resident set within 8 MiB), and after SIGCONT its parts are counted
            late or duplicate, never joined into the wrong bar

usage: tests/cluster_xs_test.py RESULTS BIN   (skipped, with a message, only without nats-server:
  PATH, then /usr/local/sbin, /usr/sbin, /sbin)
  TICKCORE_CLUSTER_MESSAGES=400000  the day's size (make test: 200000); past 2e6 the day goes in
  the default 1020 KiB packets (4 KiB below, so that a shard is still mid-day at the kills) and
  every wait grows in proportion; TICKCORE_CLUSTER_SEED=N  the kill points;
  TICKCORE_CLUSTER_SECTIONS=live,slow  only those (restart is part of live);
  TICKCORE_CLUSTER_TIMEOUT=300  the watchdog (s): past it the run fails, every process killed.
  At the end it prints every process's peak resident set (VmHWM; the feed's from rusage).
"""
import csv
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

RESULTS, BIN = sys.argv[1], os.path.abspath(sys.argv[2])
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))
import stage  # noqa: E402
from stage import PROCS, Stage, free_port  # noqa: E402

STAGE = Stage("cluster-xs", RESULTS)
check = STAGE.check
TMP = tempfile.mkdtemp(prefix="tickcore-cluster-xs-")
LOGDIR = os.path.join("build", "test-logs", "cluster-xs")
shutil.rmtree(LOGDIR, ignore_errors=True)
os.makedirs(LOGDIR, exist_ok=True)
T0 = time.time()
MESSAGES = float(os.environ.get("TICKCORE_CLUSTER_MESSAGES", "400000"))
SCALE = max(1.0, MESSAGES / 4e5)  # every wait, for a bigger day than make test-cluster's
RSS = {}  # process name -> peak resident set (MiB), printed at the end
SHARDS = 4  # the live day: 4 shards and one cross-section node
MATRIX = ["--set", "matrix.symbols=64"]


class Node:
    """A `tickcore serve` of the cluster: a shard (shard=I) or the cross-section (shard=None)."""

    def __init__(self, name, url, rows, shard=None, extra=(), stopped=False, stream="XDAY",
                 shards=SHARDS):
        self.name, self.http = name, free_port()
        self.out = os.path.join(LOGDIR, name + ".out")
        role = (["--set", "cluster.role=xsection"] if shard is None
                else ["--set", f"cluster.shard={shard}"])
        self.args = [BIN, "serve", "--set", f"cluster.nats={url}",
                     "--set", f"cluster.shards={shards}", "--set", f"cluster.stream={stream}",
                     "--set", f"cluster.subject={stream.lower()}",
                     "--set", f"cluster.rows_stream={rows}",
                     "--set", f"cluster.rows_subject={rows.lower()}",
                     "--set", "live.tcp_port=0", "--set", "live.udp_port=0",
                     "--set", f"http.port={self.http}", "--set", "journal.path=",
                     "--set", f"server.log={os.path.join(LOGDIR, name + '.log')}",
                     "--set", "book.max_orders=256K", "--set", "book.max_levels=64K",
                     "--set", "symbols.max_symbols=1000", "--set", "pipeline.workers=1"] \
            + MATRIX + role + list(extra)
        self.start(stopped)

    def start(self, stopped=False):
        self.outf = open(self.out, "a")
        self.p = subprocess.Popen(self.args, stdout=self.outf, stderr=subprocess.STDOUT,
                                  preexec_fn=stage.die_with_parent)
        PROCS.append(self.p)  # killed at the end however the run ends
        if stopped:  # SIGSTOP at once: it has taken nothing yet (a shard far behind)
            self.p.send_signal(signal.SIGSTOP)
            return
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.p.poll() is not None:
                raise RuntimeError(f"{self.name}: serve exited {self.p.returncode}: "
                                   + open(self.out).read()[-1500:])
            try:
                if self.get("/healthz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"{self.name}: no /healthz in 20 s")

    def get(self, path):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http}{path}", timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def metric(self, name, labels=""):
        try:
            st, body = self.get("/metrics")
        except OSError:
            return None
        key = name + ("{" + labels + "}" if labels else "")
        for line in body.splitlines():
            if line.startswith(key + " "):
                return float(line.split()[-1])
        return None

    def churn(self):
        try:
            st, body = self.get("/metrics")
        except OSError as e:
            return f"no /metrics: {e}"
        return sum(float(ln.split()[-1]) for ln in body.splitlines()
                   if ln.startswith("tickcore_memory_churn_total{"))

    def signal(self, sig):
        self.p.send_signal(sig)

    def kill9(self):
        self.p.send_signal(signal.SIGKILL)
        self.p.wait()
        self.outf.close()

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGCONT)
            self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = -9
        self.outf.close()
        return rc, open(self.out).read()


def wait_for(fn, timeout):
    deadline = time.time() + timeout
    v = fn()
    while not v and time.time() < deadline:
        time.sleep(0.2)
        v = fn()
    return v


def csv_diff(body, ref):
    """(same names and shape, largest difference, cells that differ in their text)."""
    a = [ln.split(",") for ln in body.splitlines()]
    b = [ln.split(",") for ln in ref.splitlines()]
    if len(a) != len(b) or not a or a[0] != b[0] or any(
            len(x) != len(y) or x[0] != y[0] for x, y in zip(a, b)):
        return False, float("inf"), -1
    worst, ndiff = 0.0, 0
    for ra, rb in zip(a[1:], b[1:]):
        for x, y in zip(ra[1:], rb[1:]):
            if x != y:
                ndiff += 1
                worst = max(worst, abs(float(x) - float(y)))
    return True, worst, ndiff


def mst_same(node, ref_mst):
    """The node's MST against the replay's: the same number of edges, the same sorted edge weights
    (every MST of a graph has the same multiset of weights) to 1e-9, and every edge the two do not
    share matched by a left-over edge of the other tree of the same weight to 1e-9: a near-tie
    (weights a few ulps apart, as periodic computes give) may pick either edge."""
    st, body = node.get("/v1/mst")
    if st != 200:
        return False, f"/v1/mst {st}: {body[:200]}"
    edges = json.loads(body)["edges"]
    if len(edges) != len(ref_mst):
        return False, f"{len(edges)} edges, replay {len(ref_mst)}"
    tol = 1e-9  # the JSON prints 10 significant digits
    got = {frozenset((e["from"], e["to"])): float(e["distance"]) for e in edges}
    ref = {frozenset((r["from"], r["to"])): float(r["distance"]) for r in ref_mst}
    for a, b in zip(sorted(got.values()), sorted(ref.values())):
        if abs(a - b) > tol * max(1.0, abs(b)):
            return False, f"sorted edge weights differ: {a} against {b}"
    only_got = sorted((d, sorted(k)) for k, d in got.items() if k not in ref)
    only_ref = sorted((d, sorted(k)) for k, d in ref.items() if k not in got)
    for (dg, kg), (dr, kr) in zip(only_got, only_ref):
        if abs(dg - dr) > tol * max(1.0, abs(dr)):
            return False, f"edge {'-'.join(kg)} ({dg}) where the replay has {'-'.join(kr)} ({dr})"
    for k in set(got) & set(ref):
        if abs(got[k] - ref[k]) > tol * max(1.0, abs(ref[k])):
            return False, f"edge {'-'.join(sorted(k))} distance {got[k]} against {ref[k]}"
    ties = f", {len(only_got)} exchanged on near-ties" if only_got else ""
    return True, f"{len(edges)} edges{ties}"


def main():
    if stage.nats_server_path() is None:
        STAGE.record("nats_server", False, "nats-server is not installed (make deps installs it)",
                     skip=True)
        return STAGE.finish()
    stage.watchdog(STAGE, int(os.environ.get("TICKCORE_CLUSTER_TIMEOUT", "300")))
    day = os.path.join(TMP, "day.itch")
    messages = os.environ.get("TICKCORE_CLUSTER_MESSAGES", "400000")  # the live day's size
    subprocess.run([BIN, "gen", "--messages", messages, "--symbols", "40", "--seed", "5",
                    "--no-truth", "--out", day], check=True, stdout=subprocess.DEVNULL)
    ref_corr, ref_mst = os.path.join(TMP, "corr.csv"), os.path.join(TMP, "mst.csv")
    t = time.time()
    rj = subprocess.run([BIN, "replay", "--json", "--set", "pipeline.workers=1",
                         "--set", "report.top_symbols=1000", *MATRIX, "--corr-out", ref_corr,
                         "--mst-out", ref_mst, day], check=True, capture_output=True, text=True)
    print(f"  cluster-xs  the oracle, single-process replay: {time.time() - t:.1f} s")
    ref = {t["symbol"]: t for t in json.loads(rj.stdout)["analytics"]["top"]}
    total, per = stage.itch_shard_counts(day, SHARDS)
    ns = stage.NatsServer(os.path.join(TMP, "js"), os.path.join(LOGDIR, "nats-server.log"))
    try:
        run(ns, day, open(ref_corr).read(), list(csv.DictReader(open(ref_mst))), ref, per)
    finally:
        RSS["nats-server"] = stage.peak_rss_mib(ns.p.pid)
        stage.kill_all()  # whatever is still running (a failed check, an exception)
        ns.stop()
        shutil.rmtree(TMP, ignore_errors=True)
    if RSS:
        print("  cluster-xs  peak RSS (MiB): " + ", ".join(f"{k} {v:.0f}" for k, v in RSS.items()))
    print(f"cluster-xs: {time.time() - T0:.1f} s")
    return STAGE.finish()


def publish(ns, day, stream, shards=SHARDS, extra=(), fresh=True):
    """`feed --to nats://` of the day; with fresh=False into the stream the shards made (empty,
    a --fresh would delete it under them); returns (process, start time) for feed_done()."""
    p = subprocess.Popen([BIN, "feed", day, "--to", ns.url, "--json", "--quiet", *extra]
                         + (["--fresh"] if fresh else []) +
                         ["--set", f"cluster.shards={shards}", "--set", f"cluster.stream={stream}",
                          "--set", f"cluster.subject={stream.lower()}"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, preexec_fn=stage.die_with_parent)
    PROCS.append(p)
    return p, time.time()


def feed_done(feed, stream):
    """Waits for a publish() to end: its check, its time and its peak resident set."""
    p, t = feed
    out = p.stdout.read()  # --quiet --json: a few lines; a hang is the watchdog's
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)  # reaped: the cleanup must not kill it
    RSS[f"feed {stream}"] = ru.ru_maxrss / 1024
    check(f"publish_day_{stream}", p.returncode == 0, out[-300:] + err[-300:])
    print(f"  cluster-xs  feed {stream}: {time.time() - t:.1f} s")


def next_seq(node):
    try:
        st, body = node.get("/healthz")
        return json.loads(body)["next_sequence"] if st == 200 else None
    except (OSError, ValueError):
        return None


def compare_symbols(node, ref, shard):
    """A shard's /v1/symbols against the replay for the symbols it owns: (owned, differences).
    Trades and volume count every execution once: a message lost or taken twice shows."""
    st, body = node.get("/v1/symbols")
    rows = json.loads(body)["symbols"] if st == 200 else []
    bad, owned = [], 0
    for r in rows:
        t = ref.get(r["symbol"])
        if t is None:
            bad.append((r["symbol"], "not in replay"))
        elif t["locate"] % SHARDS == shard:
            owned += 1
            for k in ("trades", "volume", "vwap", "last", "bid", "ask"):
                if (r.get(k) or 0) != (t.get(k) or 0):
                    bad.append((r["symbol"], k, r.get(k), t.get(k)))
        elif r.get("trades"):
            bad.append((r["symbol"], "foreign symbol with trades"))
    return owned, bad


def want(section):
    """TICKCORE_CLUSTER_SECTIONS=a,b runs only those sections (live, slow)."""
    only = os.environ.get("TICKCORE_CLUSTER_SECTIONS")
    return not only or section in only.split(",")


def run(ns, day, ref_csv, ref_mst, ref, per):
    if want("live"):
        live(ns, day, ref_csv, ref_mst, ref, per)
    if want("slow"):
        slow(ns, day)


def live(ns, day, ref_csv, ref_mst, ref, per):
    # small packets, so that the killed shard is still mid-day at the kills; a big day has
    # enough packets of the default size (and 4 KiB ones would take the day's time 5 times)
    small = ("--set", "cluster.packet_bytes=4K") if MESSAGES <= 2e6 else ()

    # ---- live: the node first, then 4 shards; shard KILLED killed (-9) at 3 random points ----------
    xs = Node("xs-live", ns.url, "XR1", extra=["--set", "server.analytics_interval=200ms"])
    KILLED = 1  # one fetched packet at a time
    shards = [Node(f"shard{s}", ns.url, "XR1", shard=s,
                   extra=["--set", "cluster.fetch_batch=1"] if s == KILLED else [])
              for s in range(SHARDS)]
    # the day is published while the shards consume it, paced to take about 6 s (a shard cannot
    # pass what is published, so a kill point before 80% of its day comes before the day's end;
    # with the day published first, a 200,000-message day once ended before the first kill
    # under load); past 3.3 M messages the pace is above what the feed reaches: not paced
    feed = publish(ns, day, "XDAY", extra=small + ("--rate", f"{max(20000, int(MESSAGES / 6))}/s"),
                   fresh=False)
    rnd = random.Random(int(os.environ.get("TICKCORE_CLUSTER_SEED", time.time())))
    kill = shards[KILLED]
    at = []
    for p in sorted(rnd.uniform(0.1, 0.8) * per[KILLED] for _ in range(3)):
        deadline = time.time() + 60 * SCALE
        got = next_seq(kill)
        while (got is None or got < p) and time.time() < deadline and kill.p.poll() is None:
            time.sleep(0.01)
            got = next_seq(kill)
        kill.kill9()
        at.append(got)
        kill.start()  # no journal: rebuilt from the stream's start, its parts sent again
    check("kill_points_mid_day", all(a is not None and a < per[KILLED] + 1 for a in at),
          f"shard {KILLED}: next sequence at the kills {at} of {per[KILLED] + 1}")
    print(f"  cluster-xs  shard {KILLED} killed at next sequence {at} of {per[KILLED] + 1}")
    feed_done(feed, "XDAY")

    def published():
        v = [sh.metric("tickcore_xrows_published_total") for sh in shards]
        return v if all(v) else None

    # every shard has closed its last bar once the day's End of Messages is in: parts stop growing
    def settled():
        a = published()
        time.sleep(1.0)
        b = published()  # every shard closes every bar: equal counts, no longer growing
        return b if a and a == b and len(set(b)) == 1 else None

    parts = wait_for(settled, 60 * SCALE) or []
    print(f"  cluster-xs  every shard at the day's end: {time.time() - feed[1]:.1f} s after the "
          f"feed's start ({time.time() - T0:.1f} s)")
    check("shards_published_the_same_bars", len(parts) == SHARDS and len(set(parts)) == 1
          and parts[0] > 100, f"parts published per shard: {parts}")

    def joined():
        try:
            st, body = xs.get("/v1/correlation?format=csv")
        except OSError:
            return None
        rows = xs.metric("tickcore_xjoin_rows_total")
        if st == 200 and parts and rows == parts[0]:
            ok, worst, _ = csv_diff(body, ref_csv)
            return body if ok and worst <= 1e-12 else None
        return None

    body = wait_for(joined, 30 * SCALE)
    same, worst, ndiff = csv_diff(body or "", ref_csv)
    check("live_correlation_csv_equals_replay_1e-12", body is not None,
          f"largest difference {worst:.3g}; rows {xs.metric('tickcore_xjoin_rows_total')} of "
          f"{parts}")
    print(f"  cluster-xs  live node: largest difference {worst:.3g}, {ndiff} cells differ in text")
    ok, why = mst_same(xs, ref_mst)
    check("live_mst_equals_replay", ok, why)
    inc = xs.metric("tickcore_xjoin_incomplete_total")
    check("live_no_incomplete_bars", inc == 0 and xs.metric("tickcore_xjoin_bad_total") == 0
          and xs.metric("tickcore_xjoin_foreign_total") == 0, f"incomplete {inc}")
    check("live_no_churn_node_and_shards", xs.churn() == 0 and all(sh.churn() == 0 for sh in shards))
    # a shard computes no cross-section of its own (cluster.rows_only, the default): 421 naming
    # the node to ask, on every cross-section route
    answers = [(p,) + shards[0].get(p) for p in ("/v1/correlation", "/v1/correlation?format=csv",
                                                  "/v1/pca", "/v1/mst", "/v1/clusters")]
    check("shard_rows_only_answers_421", all(st == 421 and "cluster.role=xsection" in b
                                             for _, st, b in answers),
          "; ".join(f"{p} {st} {b[:80]}" for p, st, b in answers))
    for s, sh in enumerate(shards):  # 0 messages lost or counted twice, statistics = replay
        got = next_seq(sh)
        owned, bad = compare_symbols(sh, ref, s)
        check(f"shard{s}_count_exact_symbols_equal_replay", got == per[s] + 1 and owned > 0
              and not bad, f"next sequence {got}, want {per[s] + 1}; {owned} owned, {bad[:3]}")

    # ---- restart: the node killed and started again reads the rows from the stream's start -------
    xs.kill9()
    xs.start()
    body2 = wait_for(joined, 30 * SCALE)
    same2, worst2, ndiff2 = csv_diff(body2 or "", ref_csv)
    check("restarted_node_same_matrix", body2 is not None,
          f"largest difference {worst2:.3g}")
    print(f"  cluster-xs  restarted node: largest difference {worst2:.3g}, {ndiff2} cells differ")
    ok, why = mst_same(xs, ref_mst)
    check("restarted_node_mst_equals_replay", ok, why)
    RSS["node"] = stage.peak_rss_mib(xs.p.pid)
    for sh in shards:  # the killed shard: its last life (a rebuild of the whole day)
        RSS[sh.name] = stage.peak_rss_mib(sh.p.pid)
    rc, out = xs.stop()
    check("node_exit_0_no_leak", rc == 0 and "leak check: OK" in out and
          "allocations while serving (after the seal): 0 " in out, out[-600:])
    lat = [ln for ln in open(os.path.join(LOGDIR, "xs-live.log")).read().splitlines()
           if "bar-join latency" in ln]
    check("node_reports_join_latency", lat, "no bar-join latency line in the log")
    for sh in shards:
        rc, out = sh.stop()
        check(f"{sh.name}_exit_0_no_leak", rc == 0 and "leak check: OK" in out, out[-600:])
    print(f"  cluster-xs  live and restart done ({time.time() - T0:.1f} s)")


def slow(ns, day):
    # ---- slow: one shard stopped while a node with a 1 s deadline joins --------------------------
    feed_done(publish(ns, day, "XSLOW", shards=2), "XSLOW")  # new shards (new durables), 2 of them
    slow_node = Node("xs-slow", ns.url, "XR2", shards=2,
                     extra=["--set", "cluster.join_deadline=1s", "--set", "cluster.join_window=64"])
    time.sleep(1.5)  # the resident set once start-up has touched its buffers (sampled /100 ms)
    rss0 = slow_node.metric("tickcore_resident_bytes")
    slow = Node("slow1", ns.url, "XR2", shard=1, stopped=True, stream="XSLOW", shards=2)
    fast = Node("fast0", ns.url, "XR2", shard=0, stream="XSLOW", shards=2)
    inc = wait_for(lambda: (slow_node.metric("tickcore_xjoin_incomplete_total") or 0) > 10,
                   60 * SCALE)
    n_inc = slow_node.metric("tickcore_xjoin_incomplete_total")
    check("slow_shard_incomplete_bars_counted", inc, f"incomplete {n_inc}")
    time.sleep(2)
    rss1 = slow_node.metric("tickcore_resident_bytes")
    check("slow_shard_node_memory_flat", slow_node.churn() == 0 and rss0 and rss1 and
          rss1 - rss0 < 8 * 2**20, f"churn {slow_node.churn()}, resident {rss0} -> {rss1}")
    slow.signal(signal.SIGCONT)
    fast_parts = wait_for(lambda: fast.metric("tickcore_xrows_published_total"), 30 * SCALE)

    def caught_up():
        got = slow.metric("tickcore_xrows_published_total")
        return got if got and got == fast_parts else None
    wait_for(caught_up, 60 * SCALE)
    time.sleep(2)
    m = {k: slow_node.metric("tickcore_xjoin_" + k + "_total") or 0 for k in
         ("rows", "incomplete", "late", "duplicates", "parts")}
    check("slow_shard_parts_late_not_joined",
          m["late"] + m["duplicates"] > 0 and m["rows"] + m["incomplete"] <= fast_parts,
          f"{m}, parts per shard {fast_parts}")
    for n in (slow_node, fast, slow):
        rc, out = n.stop()
        check(f"slow_{n.name}_exit_0_no_churn", rc == 0 and
              "allocations while serving (after the seal): 0 " in out, f"exit {rc}: {out[-600:]}")


if __name__ == "__main__":
    sys.exit(main())
