#!/usr/bin/python3
"""bench/estimator_oracle.py [--bin BIN] [--dir DIR] [--seeds 1-20] [--mc N]: where the bias of
the correlation estimators comes from (issue 14), measured outside the engine with NumPy.

For each seed it generates a demo-sized day (`tickcore gen --messages 10M --symbols 500
--sectors 10 --seed S --latent`, kept in DIR, default build/bench-oracle) and reads three
versions of the same 390 one-minute returns of every symbol:
  L  the latent path (FILE.latent.csv, `latent` rows): the model's log mid at the minute ends,
     the path the floor (FILE.floor.csv) is the sample correlation of;
  Q  the generator's own quote at the minute ends (`quote` rows): the latent price at the
     symbol's last touch, on the tick grid (staleness and rounding, no book);
  M  the engine's bar rows: the mid-quote log return of every 1-minute bar from the day store
     of the Python package (day_bars), the trade return where there is no two-sided quote
     (STATS_ROW_MIDRET, what the cross-section is fed), from the first row where every symbol has
     one.
On each it computes, written here from the papers and not from the engine: close (numpy.cov of
the rows), two scales (Zhang, Mykland and Ait-Sahalia 2005) with slow scale K and fast scale J,
(C_K - C_J) / (K - J), C_n the average over the n offset grids of the covariance of n-bar returns
(J = 1: the engine's twoscale), and the block means of a correlation over the true sectors (what
the engine's ledoit-wolf-block shrinkage gives at intensity 1, the intensity it reports on these
days; block means keep the mean, so only the error changes: "blocks x", the mean |error| over the
floor's). Printed per estimator over the days: the bias (mean estimated - mean true correlation)
on M, M less the floor's bias, and the paired differences M - L (what the engine's rows add to the same
estimator on the latent path), Q - L (staleness and ticks alone) and L - floor (the estimator's
own sampling on noise-free returns); and the autocovariance of the noise M - L at lags 0-5 in
units of a one-minute return's variance. The engine's own report (`replay --json`, the default
estimator) is printed beside the oracle's M twoscale K=2 with blocks, to show they agree.

--mc N: also N days of the model alone (NumPy normals with the truth file's loadings of the first
seed, 390 one-minute returns, no ticks, book or staleness): the estimators' own bias against the
truth, so the L - floor column can be told from a property of the estimator.
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np


def read_matrix(path):
    rows = [l.rstrip("\n").split(",") for l in open(path) if not l.startswith("#")]
    body = rows[1:]
    names = [r[0] for r in body]
    sector = np.array([int(r[2]) for r in body])
    par = np.array([[float(x) for x in r[3:6]] for r in body])
    return names, sector, par, np.array([[float(x) for x in r[6:]] for r in body])


def read_latent(path, names):
    lat, quo = {}, {}
    for line in open(path):
        if line.startswith("#"):
            continue
        f = line.rstrip("\n").split(",")
        (lat if f[1] == "latent" else quo)[f[0]] = np.array([float(x) for x in f[2:]])
    return (np.array([lat[n] for n in names]).T, np.array([quo[n] for n in names]).T)


def corr_of(c):
    d = np.sqrt(np.diag(c))
    return c / np.outer(d, d)


def grid_cov(r, n):
    """The average over the n offset grids of the sample covariance of n-row returns."""
    t = r.shape[0]
    if n == 1:
        return np.cov(r, rowvar=False)
    return sum(np.cov(r[g:g + (t - g) // n * n].reshape(-1, n, r.shape[1]).sum(1), rowvar=False)
               for g in range(n)) / n


def estimate(r, est):
    kind, j, k = est
    if kind == "close":
        return np.cov(r, rowvar=False)
    return (grid_cov(r, k) - grid_cov(r, j)) / (k - j)


def block_means(rho, sector):
    out = np.empty_like(rho)
    for a in range(sector.max() + 1):
        ia = np.where(sector == a)[0]
        for b in range(sector.max() + 1):
            ib = np.where(sector == b)[0]
            sub = rho[np.ix_(ia, ib)]
            out[np.ix_(ia, ib)] = sub[np.triu_indices(len(ia), 1)].mean() if a == b else sub.mean()
    return out


ESTS = [("close", 1, 1), ("twoscale", 1, 2), ("twoscale", 1, 3), ("twoscale", 1, 4),
        ("twoscale", 2, 4), ("twoscale", 3, 6)]


def label(est):
    kind, j, k = est
    return "close" if kind == "close" else "twoscale K=%d J=%d" % (k, j)


def engine_rows(lib, path, names):
    os.environ["TICKCORE_LIB"] = lib
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
    import tickcore
    s = tickcore.replay(path, settings={"stats.day_bars": 1100, "stats.day_symbols": 512})
    bars = {n: s.bars(n) for n in names}
    s.close()
    open_k = 34200 // 60  # 09:30 in one-minute bars since midnight
    rows = np.full((390, len(names)), np.nan)
    for i, n in enumerate(names):
        b = bars[n]
        k = b["k"].astype(np.int64) - open_k
        keep = (k >= 0) & (k < 390)
        mid, ret = b["mid_ret"][keep], b["ret"][keep]
        rows[k[keep], i] = np.where(np.isnan(mid), ret, mid)
    return rows


def one_day(a, seed):
    day = os.path.join(a.dir, "demo%d.itch" % seed)
    if not (os.path.exists(day) and os.path.exists(day + ".latent.csv")):
        subprocess.run([a.bin, "gen", "--messages", "10M", "--symbols", "500", "--sectors", "10",
                        "--seed", str(seed), "--latent", "--out", day], check=True,
                       stdout=subprocess.DEVNULL)
    names, sector, _, truth = read_matrix(day + ".truth.csv")
    _, _, _, floor = read_matrix(day + ".floor.csv")
    xl, xq = read_latent(day + ".latent.csv", names)
    rm = engine_rows(a.lib, day, names)
    bad = np.where(np.isnan(rm).any(1))[0]
    first = bad.max() + 1 if len(bad) else 0
    layers = {"L": np.diff(xl, axis=0)[first:], "Q": np.diff(xq, axis=0)[first:],
              "M": rm[first:]}
    eng = json.loads(subprocess.run([a.bin, "replay", "--json", "--no-progress", day],
                                    check=True, capture_output=True, text=True).stdout)
    iu = np.triu_indices(len(names), 1)
    t = truth[iu].mean()
    out = {"floor": floor[iu].mean() - t, "engine": eng["analytics"]["truth"]["bias"],
           "engine_xfloor": eng["analytics"]["truth"]["mae_over_floor"],
           "floor_mae": np.abs(floor - truth)[iu].mean()}
    for est in ESTS:
        for lay, r in layers.items():
            rho = corr_of(estimate(r, est))
            out[(lay, est)] = rho[iu].mean() - t
            if lay == "M":
                blk = block_means(rho, sector)
                out[("Mblk", est)] = blk[iu].mean() - t
                out[("Mblk_x", est)] = np.abs(blk - truth)[iu].mean() / out["floor_mae"]
    # the noise the engine's rows carry beyond the latent path, in minute-return variances
    xm = np.vstack([np.zeros(len(names)), np.cumsum(layers["M"], 0)])
    u = xm - (xl[first:] - xl[first])
    u -= u.mean(0)
    v = layers["L"].var(0)
    out["noise_acov"] = [float(np.mean((u[h:] * u[:len(u) - h]).mean(0) / v)) for h in range(6)]
    if not a.keep:
        for ext in ("", ".truth.csv", ".floor.csv", ".latent.csv"):
            os.remove(day + ext)
    return out


def mean_se(v):
    v = np.asarray(v, float)
    return v.mean(), (v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else float("nan"))


def monte_carlo(truth_path, days, rng_seed=7):
    names, sector, par, truth = read_matrix(truth_path)
    beta, gam, sig = (par / np.sqrt(390)).T
    iu = np.triu_indices(len(names), 1)
    rng = np.random.default_rng(rng_seed)
    res = {e: [] for e in ESTS}
    for _ in range(days):
        r = (rng.standard_normal((390, 1)) * beta +
             rng.standard_normal((390, sector.max() + 1))[:, sector] * gam +
             rng.standard_normal((390, len(names))) * sig)
        for e in ESTS:
            res[e].append(corr_of(estimate(r, e))[iu].mean() - truth[iu].mean())
    print("model alone (NumPy, %d days of 390 one-minute returns, loadings of %s):" %
          (days, os.path.basename(truth_path)))
    for e in ESTS:
        m, se = mean_se(res[e])
        d, dse = mean_se(np.array(res[e]) - np.array(res[ESTS[0]]))
        print("  %-20s bias %+.4f (%.4f)   minus close %+.4f (%.4f)" % (label(e), m, se, d, dse))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bin", default=os.path.join(here, "..", "build", "release", "tickcore"))
    p.add_argument("--lib", help="libtickcore.so (default: beside --bin)")
    p.add_argument("--dir", default=os.path.join(here, "..", "build", "bench-oracle"))
    p.add_argument("--seeds", default="1-20", help="a-b or a,b,c")
    p.add_argument("--mc", type=int, default=0, help="days of the model alone (0: none)")
    p.add_argument("--keep", action="store_true", help="keep the generated days")
    a = p.parse_args()
    a.lib = a.lib or os.path.join(os.path.dirname(os.path.abspath(a.bin)), "libtickcore.so")
    if "-" in a.seeds:
        lo, hi = a.seeds.split("-")
        seeds = list(range(int(lo), int(hi) + 1))
    else:
        seeds = [int(s) for s in a.seeds.split(",")]
    os.makedirs(a.dir, exist_ok=True)
    days = []
    for s in seeds:
        d = one_day(a, s)
        days.append(d)
        print("seed %2d: floor %+.4f, engine (default) %+.4f %.3fx, oracle twoscale K=2 blocks "
              "%+.4f %.3fx" % (s, d["floor"], d["engine"], d["engine_xfloor"],
                               d[("Mblk", ESTS[1])], d[("Mblk_x", ESTS[1])]), flush=True)
    n = len(days)
    print("\n%d demo-sized days (10M messages, 500 symbols, 10 sectors), seeds %s; bias = mean "
          "estimated - mean true rho; (s.e.) over days" % (n, a.seeds))
    m, se = mean_se([d["floor"] for d in days])
    print("floor (latent one-minute sample correlation): bias %+.4f (%.4f)" % (m, se))
    m, se = mean_se([d["engine"] for d in days])
    print("engine's default (replay --json): bias %+.4f (%.4f), %.3fx the floor's mean |error|" %
          (m, se, np.mean([d["engine_xfloor"] for d in days])))
    print("%-20s %16s %16s %16s %16s %16s %8s" % (
        "estimator", "M bias", "M - floor", "M - L", "Q - L", "L - floor", "blocks x"))
    for e in ESTS:
        col = []
        for f in (lambda d: d[("M", e)], lambda d: d[("M", e)] - d["floor"], lambda d: d[("M", e)] - d[("L", e)],
                  lambda d: d[("Q", e)] - d[("L", e)], lambda d: d[("L", e)] - d["floor"]):
            col.append("%+.4f (%.4f)" % mean_se([f(d) for d in days]))
        print("%-20s %s %8.3f" % (label(e), " ".join(col),
                                  np.mean([d[("Mblk_x", e)] for d in days])))
    acov = np.mean([d["noise_acov"] for d in days], 0)
    print("noise of the engine's rows (M - L at the minute ends), autocovariance at lags 0-5 in "
          "one-minute return variances: " + " ".join("%.3f" % x for x in acov))
    if a.mc:
        monte_carlo(_truth_for_mc(a, seeds[0]), a.mc)


def _truth_for_mc(a, seed):
    path = os.path.join(a.dir, "mc%d.itch" % seed)
    if not os.path.exists(path + ".truth.csv"):
        # the truth file is written before any message: a minimal day gives the same loadings
        subprocess.run([a.bin, "gen", "--messages", "2000", "--symbols", "500", "--sectors", "10",
                        "--seed", str(seed), "--out", path], check=True,
                       stdout=subprocess.DEVNULL)
    return path + ".truth.csv"


if __name__ == "__main__":
    main()
