#!/usr/bin/python3
"""daily_test.py TICKCORE [WORKDIR]: tickcore's daily-close correlation and MST against plain numpy.

Each case writes a CSV of daily closes (one trade per symbol per trading day at 15:59 UTC,
weekdays only): N symbols over T days, random walks of log prices with a planted one-factor
correlation, a few symbols starting late and a few skipping days. It runs
`tickcore replay --bar 1d --json --corr-out C --mst-out M` and checks, to 1e-9:
  - the correlation matrix equals numpy.corrcoef of the log returns of consecutive closes,
    computed here from the file's prices the textbook way: closes per day, a day without a
    trade carries the previous close (return 0), returns are log(close_t / close_{t-1}) over
    all T days (the last day included), a return needing a close from before the symbol's
    first trade is missing, and missing values are handled by complete cases (a day enters only
    when every symbol has a return);
  - the number of rows tickcore used equals the number of complete days;
  - the MST total distance equals a minimum spanning tree (Prim, written here) over
    d = sqrt(2 (1 - rho)) of numpy's correlation.
Nothing of tickcore's code or output is used to build the expected values. Prints one
"ok"/"FAILED" line per check and "all ok" at the end; exit 0 when all pass, 1 otherwise.
"""
import datetime
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np

TOL = 1e-9


def trading_days(t):
    d = datetime.date(2023, 1, 2)  # a Monday
    out = []
    while len(out) < t:
        if d.weekday() < 5:
            out.append(d)
        d += datetime.timedelta(days=1)
    return out


def make_case(seed, n, t, late, skips):
    """Closes as printed in the file (4 decimals: tickcore's price scale is 1/10000 $)."""
    rng = np.random.default_rng(seed)
    beta = rng.uniform(0.3, 1.2, n)
    f = rng.normal(0, 0.01, t)
    e = rng.normal(0, 0.01, (t, n))
    logp = np.log(rng.uniform(20, 200, n)) + np.cumsum(f[:, None] * beta + e, axis=0)
    closes = np.round(np.exp(logp), 4)
    traded = np.ones((t, n), dtype=bool)
    start = np.zeros(n, dtype=int)
    for j in rng.choice(n, late, replace=False):  # late starters: no trade before their start
        start[j] = int(rng.integers(1, t // 3))
        traded[: start[j], j] = False
    for _ in range(skips):  # days without a trade (carried), never a symbol's first day
        j = int(rng.integers(0, n))
        d = int(rng.integers(start[j] + 1, t))
        traded[d, j] = False
    traded[:, 0] = True  # someone trades every day, so every day is a bar with trades
    start[0] = 0
    names = ["S%03d" % j for j in range(n)]
    return names, closes, traded


def write_csv(path, names, closes, traded):
    days = trading_days(closes.shape[0])
    with open(path, "w") as fh:
        fh.write("timestamp,symbol,price,size\n")
        for i, d in enumerate(days):
            ts = d.isoformat() + "T15:59:00Z"
            for j, s in enumerate(names):
                if traded[i, j]:
                    fh.write("%s,%s,%.4f,100\n" % (ts, s, closes[i, j]))


def oracle(closes, traded):
    px = np.where(traded, closes, np.nan)
    # previous-tick carry: a day without a trade keeps the last close (return 0)
    for i in range(1, px.shape[0]):
        m = np.isnan(px[i]) & ~np.isnan(px[i - 1])
        px[i, m] = px[i - 1, m]
    r = np.log(px[1:] / px[:-1])  # NaN before a symbol's second close
    complete = r[~np.isnan(r).any(axis=1)]
    return np.corrcoef(complete.T), complete.shape[0]


def prim_total(rho):
    n = rho.shape[0]
    d = np.sqrt(np.maximum(2.0 * (1.0 - rho), 0.0))
    inside = np.zeros(n, dtype=bool)
    best = np.full(n, np.inf)
    best[0] = 0.0
    total = 0.0
    for _ in range(n):
        u = int(np.argmin(np.where(inside, np.inf, best)))
        inside[u] = True
        total += best[u]
        best = np.where(~inside & (d[u] < best), d[u], best)
    return total


def read_corr(path):
    with open(path) as fh:
        head = fh.readline().strip().split(",")[1:]
        rows = {}
        for line in fh:
            parts = line.strip().split(",")
            rows[parts[0]] = [float(v) for v in parts[1:]]
    return head, rows


def run_case(tc, work, seed, n, t, late, skips, results):
    names, closes, traded = make_case(seed, n, t, late, skips)
    csv = os.path.join(work, "daily-%d.csv" % seed)
    corr, mst = csv + ".corr", csv + ".mst"
    write_csv(csv, names, closes, traded)
    cmd = [tc, "replay", "--json", "--bar", "1d", "--set", "matrix.window=1000",
           "--set", "matrix.estimator=close", "--set", "matrix.shrinkage=none",
           "--corr-out", corr, "--mst-out", mst, csv]
    p = subprocess.run(cmd, capture_output=True, text=True)
    label = "seed %d, %d symbols x %d days, %d late, %d skipped days" % (seed, n, t, late, skips)
    if p.returncode != 0:
        results.append((label + ": replay", False, "exit %d: %s" % (p.returncode, p.stderr[-500:])))
        return
    rep = json.loads(p.stdout)
    want, want_rows = oracle(closes, traded)
    head, rows = read_corr(corr)
    idx = [names.index(s) for s in head]
    got = np.array([rows[s] for s in head])
    ok_names = sorted(head) == sorted(names)
    err = float(np.max(np.abs(got - want[np.ix_(idx, idx)]))) if ok_names else math.inf
    results.append((label + ": correlation = numpy.corrcoef", err <= TOL, "max |diff| %.3g" % err))
    got_rows = rep["analytics"]["xsection"]["rows"]
    results.append((label + ": rows = complete days", got_rows == want_rows,
                    "tickcore %d, numpy %d" % (got_rows, want_rows)))
    with open(mst) as fh:
        fh.readline()
        edges = [line.strip().split(",") for line in fh if line.strip()]
    got_total = sum(float(e[3]) for e in edges)
    want_total = prim_total(want)
    d = abs(got_total - want_total)
    results.append((label + ": MST total = Prim on sqrt(2(1-rho))",
                    d <= TOL and len(edges) == n - 1,
                    "tickcore %.12f (%d edges), here %.12f" % (got_total, len(edges), want_total)))


def main():
    if len(sys.argv) < 2:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        return 2
    tc = sys.argv[1]
    work = sys.argv[2] if len(sys.argv) > 2 else tempfile.mkdtemp(prefix="tickcore-daily-")
    os.makedirs(work, exist_ok=True)
    results = []
    cases = [(1, 5, 60, 0, 0), (2, 12, 120, 2, 5), (3, 20, 250, 4, 20), (4, 30, 400, 6, 40)]
    for c in cases:
        run_case(tc, work, *c, results)
    bad = 0
    for label, ok, detail in results:
        print("%-8s %s (%s)" % ("ok" if ok else "FAILED", label, detail))
        bad += not ok
    print("all ok" if bad == 0 else "%d of %d checks failed" % (bad, len(results)))
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
