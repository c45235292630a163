#!/usr/bin/python3
"""peer_pandas: the replay's analytics recomputed with pandas/numpy, timed, and checked.

The peer stack is the one the seed story's team used: pandas and numpy (Debian python3-pandas,
python3-numpy; run with /usr/bin/python3). From a trades CSV (`timestamp,symbol,price,size,side`,
integer-ns timestamps, as `tickcore replay --trades-out` writes it) it computes per-symbol trade
count, volume, VWAP and last price; 1-minute OHLCV bars per symbol; log returns of bar closes;
and the correlation matrix of those returns over the rolling window. Each stage is timed with
time.perf_counter. It then compares with tickcore's figures for the same data: the replay's
--json output (analytics.top[]: symbol, trades, volume, vwap, last; analytics.xsection.rows) and
its --corr-out CSV, prints the differences and a table of seconds and ratios, and exits 1 when
they disagree beyond the tolerances (0 agree, 2 usage or input error).

The computation is the textbook one, written the plain pandas/numpy way with no copy of the
engine's internal rules (issue 14: an earlier version copied two engine quirks, the dropped last
bar and the zero return of a first close, and so agreed with them):
  - a trade is a row with price > 0 and size > 0;
  - bars: pandas groupby on pd.Grouper(freq=bar, origin="epoch") and symbol, `last` price as the
    close (bars aligned to multiples of the interval); every bar with a trade counts, the last
    one included; bars where no tracked symbol traded do not exist (nights, weekends);
  - returns: a symbol without a trade in a bar keeps its previous close (ffill: return 0), and
    the return is numpy log of consecutive closes; it is missing (NaN) before a symbol's second
    close, and a bar enters the correlation only when every tracked symbol has a return
    (complete cases: dropna);
  - correlation: numpy.corrcoef of the last `window` rows (tracked symbols and their order from
    the --corr-out header); a pair numpy leaves undefined (a constant column) is reported, not
    compared.
Out-of-order timestamps are binned by their own time here (the engine puts them in the open bar
and counts them as late): the count is printed, and generated days have none.

Tolerances. VWAP, 1e-9 relative: tickcore sums price * size exactly in 128-bit integers and
prints the VWAP with 10 significant digits (%.10g: relative rounding <= 5e-10, at worst just
above a power of ten; ~3e-10 seen); pandas sums float64 products of 4-decimal prices (relative
error ~1e-16 per trade, < 1e-11 for 10^6 trades). So agreement is bounded by ~5e-10, and one
trade more or less moves a VWAP by ~1e-5 relative, 4 orders of magnitude above 1e-9. Last
price: 4-decimal prices below 10^6 print exactly in 10 digits; the same 1e-9 bound. Trade
counts and volumes: exact. Correlation, 1e-6 absolute: tickcore's rolling dsyrk update
(S - n mu mu^T, recomputed every few batches) leaves errors ~1e-10 for
returns; a window shifted by one row of ~390, or one bar binned differently, moves correlations
by ~1e-3.
"""
import argparse
import json
import math
import sys
import time

try:
    import numpy as np
    import pandas as pd
except ImportError as e:  # pragma: no cover
    sys.stderr.write(
        "peer_pandas: %s; install the Debian packages python3-pandas python3-numpy and run with "
        "/usr/bin/python3\n" % e
    )
    sys.exit(2)

VWAP_RTOL = 1e-9
LAST_RTOL = 1e-9
CORR_ATOL = 1e-6


def die(msg, code=2):
    sys.stderr.write("peer_pandas: %s\n" % msg)
    sys.exit(code)


def load_tickcore_json(path):
    try:
        with open(path, "rb") as f:
            raw = f.read()
        # Decode leniently: a stray byte in an unrelated field must not hide the figures.
        doc = json.loads(raw.decode("utf-8", "replace"))
    except (OSError, ValueError) as e:
        die("%s: cannot read tickcore's JSON: %s" % (path, e))
    a = doc.get("analytics")
    if not isinstance(a, dict):
        die("%s: no \"analytics\" object (was the replay run with --decode-only?)" % path)
    return doc, a


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("trades", help="trades CSV: timestamp,symbol,price,size,side (integer ns)")
    ap.add_argument("tickcore_json", help="the output of tickcore replay --json")
    ap.add_argument("corr", nargs="?", help="tickcore replay --corr-out CSV")
    ap.add_argument("--window", type=int, help="rows in the window (default: the JSON's)")
    ap.add_argument("--bar-ns", type=int, help="bar interval in ns (default: the JSON's)")
    ap.add_argument("--label", default="tickcore replay", help="what tickcore's seconds measure")
    args = ap.parse_args()

    doc, an = load_tickcore_json(args.tickcore_json)
    st = an.get("stats", {})
    xs = an.get("xsection", {})
    bar_ns = args.bar_ns or int(st.get("bar_ns") or 60_000_000_000)
    window = args.window or int(xs.get("window") or 390)
    tc_seconds = float(doc.get("seconds", float("nan")))
    tc_xs_seconds = float(xs.get("seconds", float("nan")))

    tm = {}
    # ---- read -----------------------------------------------------------------------------
    t0 = time.perf_counter()
    try:
        df = pd.read_csv(
            args.trades,
            dtype={"timestamp": np.int64, "symbol": str, "price": np.float64, "size": np.int64,
                   "side": str},
            na_filter=False,  # a symbol "NA" is a symbol
        )
    except (OSError, ValueError, pd.errors.ParserError) as e:
        die("%s: %s" % (args.trades, e))
    tm["read"] = time.perf_counter() - t0
    cols = list(df.columns)
    if cols[:4] != ["timestamp", "symbol", "price", "size"]:
        die("%s: expected the header timestamp,symbol,price,size[,side], got %s"
            % (args.trades, ",".join(cols)))
    if len(df) == 0:
        die("%s: no trades" % args.trades)

    # ---- bars ----------------------------------------------------------------------------
    t0 = time.perf_counter()
    ok = (df["price"].to_numpy() > 0) & (df["size"].to_numpy() > 0)
    nbad = int((~ok).sum())
    if nbad:
        df = df[ok]
    ts = df["timestamp"].to_numpy()
    nlate = int((ts[1:] < np.maximum.accumulate(ts)[:-1]).sum())  # out of order (see above)
    df = df.assign(t=pd.to_datetime(df["timestamp"], unit="ns"))
    g = df.groupby([pd.Grouper(key="t", freq=pd.Timedelta(bar_ns, unit="ns"), origin="epoch"),
                    "symbol"], sort=True)
    bars = g["price"].agg(["first", "max", "min", "last"])
    bars.columns = ["open", "high", "low", "close"]
    bars["volume"] = g["size"].sum()
    bars["trades"] = g.size()
    close_w = bars["close"].unstack("symbol")  # bars with any trade x symbols, NaN: no trade
    tm["bars"] = time.perf_counter() - t0

    # ---- VWAP -----------------------------------------------------------------------------
    t0 = time.perf_counter()
    gs = df.assign(notional=df["price"] * df["size"]).groupby("symbol", sort=False)
    per = pd.DataFrame({"trades": gs.size(), "volume": gs["size"].sum(),
                        "notional": gs["notional"].sum(), "last": gs["price"].last()})
    per["vwap"] = per["notional"] / per["volume"]
    tm["vwap"] = time.perf_counter() - t0

    # ---- correlation of bar returns -------------------------------------------------------
    first_seen = list(pd.unique(df["symbol"]))
    tracked = first_seen
    corr_tc = None
    if args.corr:
        try:
            corr_tc = pd.read_csv(args.corr, index_col=0, na_filter=False)
        except (OSError, ValueError, pd.errors.ParserError) as e:
            die("%s: %s" % (args.corr, e))
        tracked = [str(c) for c in corr_tc.columns]
    t0 = time.perf_counter()
    sub = close_w.reindex(columns=tracked)
    sub = sub[sub.notna().any(axis=1)]  # bars where a tracked symbol traded
    rets = np.log(sub.ffill()).diff().dropna()  # consecutive closes; complete rows only
    X = rets.to_numpy()[-window:]
    nrows_total = len(rets)
    n = X.shape[0]
    corr_pd = None
    if n >= 2 and X.shape[1] >= 2:
        with np.errstate(divide="ignore", invalid="ignore"):
            corr_pd = np.corrcoef(X.T)
    tm["correlation"] = time.perf_counter() - t0
    total = sum(tm.values())

    # ---- compare --------------------------------------------------------------------------
    fails = []
    print("peer_pandas: pandas %s, numpy %s; %s: %d trades (%d refused: price or size <= 0; "
          "%d late), %d symbols, %d bars with trades" % (pd.__version__, np.__version__,
          args.trades, len(df), nbad, nlate, len(per), len(close_w)))
    tc_trades = st.get("trades")
    if tc_trades is not None and int(tc_trades) != len(df):
        fails.append("trades: tickcore %s, pandas %d" % (tc_trades, len(df)))
    if st.get("symbols_traded") is not None and int(st["symbols_traded"]) != len(per):
        fails.append("symbols traded: tickcore %s, pandas %d" % (st["symbols_traded"], len(per)))

    top = an.get("top") or []
    worst_vwap = (0.0, 0.0, "")
    worst_last = (0.0, 0.0, "")
    for t in top:
        sym = str(t.get("symbol"))
        if sym not in per.index:
            fails.append("%s: in tickcore's top list, no trade in the CSV" % sym)
            continue
        p = per.loc[sym]
        if int(t["trades"]) != int(p["trades"]) or int(t["volume"]) != int(p["volume"]):
            fails.append("%s: trades/volume tickcore %s/%s, pandas %d/%d"
                         % (sym, t["trades"], t["volume"], p["trades"], p["volume"]))
        for key, worst_name in (("vwap", "vwap"), ("last", "last")):
            a, b = t.get(key), float(p[key])
            if a is None:
                fails.append("%s: tickcore %s is null" % (sym, key))
                continue
            ad = abs(float(a) - b)
            rd = ad / abs(b) if b else (0.0 if ad == 0 else math.inf)
            if worst_name == "vwap" and rd >= worst_vwap[1]:
                worst_vwap = (ad, rd, sym)
            if worst_name == "last" and rd >= worst_last[1]:
                worst_last = (ad, rd, sym)
    if worst_vwap[1] > VWAP_RTOL:
        fails.append("VWAP of %s differs by %.3g relative (> %g)"
                     % (worst_vwap[2], worst_vwap[1], VWAP_RTOL))
    if worst_last[1] > LAST_RTOL:
        fails.append("last price of %s differs by %.3g relative (> %g)"
                     % (worst_last[2], worst_last[1], LAST_RTOL))
    print("  per symbol (%d in tickcore's top list of %d traded): trades and volume %s; VWAP max "
          "abs %.3g, max rel %.3g (%s); last max abs %.3g, max rel %.3g (%s)"
          % (len(top), len(per), "equal" if not any("trades/volume" in f for f in fails)
             else "DIFFER", worst_vwap[0], worst_vwap[1], worst_vwap[2] or "-", worst_last[0],
             worst_last[1], worst_last[2] or "-"))
    if len(top) < len(per):
        print("  note: tickcore listed %d of %d symbols; run the replay with --top %d to check "
              "them all" % (len(top), len(per), max(len(per), 1000)))

    tc_rows = xs.get("rows")
    print("  bar rows: pandas %d (window %d: %d), tickcore %s" % (nrows_total, window, n, tc_rows))
    if tc_rows is not None and int(tc_rows) != nrows_total:
        fails.append("bar rows: tickcore %s, pandas %d" % (tc_rows, nrows_total))
    if corr_tc is not None:
        if tracked != first_seen[:len(tracked)]:
            print("  note: tickcore's tracked symbols are not the first %d seen in the CSV"
                  % len(tracked))
        if corr_pd is None:
            fails.append("correlation: pandas has fewer than 2 rows or symbols")
        else:
            rows_tc = [str(i) for i in corr_tc.index]
            if rows_tc != tracked:
                fails.append("%s: row names differ from the header" % args.corr)
            else:
                tcm = corr_tc.to_numpy(dtype=float)
                undefined = ~np.isfinite(corr_pd)
                if undefined.any():
                    print("  note: numpy leaves %d entries undefined (a constant column): not "
                          "compared" % int(undefined.sum()))
                if not np.isfinite(tcm).all():
                    fails.append("correlation: tickcore's matrix has non-numbers")
                diff = np.where(undefined, 0.0, np.abs(tcm - corr_pd))
                i, j = np.unravel_index(int(np.nanargmax(diff)), diff.shape)
                mx = float(diff[i, j])
                print("  correlation %dx%d: max abs difference %.3g (%s, %s), mean %.3g"
                      % (len(tracked), len(tracked), mx, tracked[i], tracked[j],
                         float(diff.mean())))
                if mx > CORR_ATOL:
                    fails.append("correlation of %s and %s differs by %.3g (> %g)"
                                 % (tracked[i], tracked[j], mx, CORR_ATOL))
    else:
        print("  correlation: no --corr-out CSV given, not compared")

    # ---- table ----------------------------------------------------------------------------
    def ratio(a, b):
        return "%8.1fx" % (a / b) if b and b > 0 and math.isfinite(b) else "%9s" % "-"

    def sec(v):
        return "%12.4f" % v if v is not None and math.isfinite(v) else "%12s" % "-"

    tc_total = tc_seconds + (tc_xs_seconds if math.isfinite(tc_xs_seconds) else 0.0)
    print("\n  %-26s %12s %12s %9s" % ("stage", "pandas s", "tickcore s", "ratio"))
    print("  %-26s %s %s %9s" % ("read CSV", sec(tm["read"]), sec(None), "-"))
    print("  %-26s %s %s %9s" % ("1-min OHLCV bars", sec(tm["bars"]), sec(None), "-"))
    print("  %-26s %s %s %9s" % ("trades, volume, VWAP", sec(tm["vwap"]), sec(None), "-"))
    print("  %-26s %s %s %s" % ("returns + correlation", sec(tm["correlation"]),
                                sec(tc_xs_seconds), ratio(tm["correlation"], tc_xs_seconds)))
    print("  %-26s %s %s %s" % ("total", sec(total), sec(tc_total), ratio(total, tc_total)))
    print("  tickcore s: %s = %.4f s single pass (decode, books, stats, bars, matrix rows; not "
          "split by stage) + %.4f s correlation, PCA, MST at the end"
          % (args.label, tc_seconds, tc_xs_seconds))

    if fails:
        print("\npeer_pandas: DISAGREE")
        for f in fails[:20]:
            print("  " + f)
        if len(fails) > 20:
            print("  ... %d more" % (len(fails) - 20))
        return 1
    print("\npeer_pandas: AGREE (VWAP and last within %g relative, correlation within %g)"
          % (VWAP_RTOL, CORR_ATOL))
    return 0


if __name__ == "__main__":
    sys.exit(main())
