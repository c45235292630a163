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

Semantics copied from the engine (engine/xsection.c, analytics/stats.h, analytics/covariance.h),
so that the two must agree to rounding:
  - a trade is a row with price > 0 and size > 0 (the stats count the rest as bad);
  - bar k = floor(ts / bar_ns); a trade older than the open bar goes into the open bar (late),
    i.e. the bar of a row is the running maximum of the rows' bar numbers;
  - a closed bar is a row of the matrix if a tracked symbol traded in it; bars with no tracked
    trade are idle and skipped; the bar open at the end of the data (the bar of the last event:
    the last trade for CSV input, the last ITCH message for ITCH input, see --end-ts/--itch) is
    not closed and not in the matrix;
  - close = last trade price in the bar (file order), carried over bars without a trade;
    return = ln(close / previous row's close); 0 for a symbol not priced yet and for its first
    priced bar;
  - tracked symbols and their order: the --corr-out header (the engine tracks the first
    matrix.symbols symbols by stock locate at its first bar close; for CSV input that is
    first-seen order, checked here);
  - correlation: sample covariance (n - 1) of the last `window` rows; a column whose centred
    sum of squares is <= 1e-12 of its raw one (or all zero) has variance 0, hence correlation 0
    off the diagonal; the diagonal is 1; values clamped to [-1, 1].

Tolerances. VWAP, 1e-9 relative: tickcore sums price * size exactly in 128-bit integers and
prints the VWAP with 10 significant digits (%.10g: relative rounding <= 5e-10, at worst just
above a power of ten; ~3e-10 seen); pandas sums float64 products of 4-decimal prices (relative
error ~1e-16 per trade, < 1e-11 for 10^6 trades). So agreement is bounded by ~5e-10, and one
trade more or less moves a VWAP by ~1e-5 relative, 4 orders of magnitude above 1e-9. Last
price: 4-decimal prices below 10^6 print exactly in 10 digits; the same 1e-9 bound. Trade
counts and volumes: exact. Correlation, 1e-6 absolute: tickcore's rolling dsyrk update
(S - n mu mu^T, recomputed every few batches) and its 10-digit print leave errors ~1e-10 for
returns; a window shifted by one row of ~390, or one bar binned differently, moves correlations
by ~1e-3.
"""
import argparse
import gzip
import json
import math
import struct
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


def itch_last_ts(path):
    """Timestamp (ns since midnight) of the last message of an ITCH 5.0 BinaryFILE (plain or
    gzip): 2-byte big-endian length, then the message; its timestamp is bytes 5..10."""
    with open(path, "rb") as f:
        magic = f.read(2)
    opener = gzip.open if magic == b"\x1f\x8b" else open
    with opener(path, "rb") as f:
        data = f.read()
    pos, n, last = 0, len(data), None
    while pos + 2 <= n:
        ln = (data[pos] << 8) | data[pos + 1]
        if ln == 0 or pos + 2 + ln > n:
            break
        if ln >= 11:
            last = pos + 2
        pos += 2 + ln
    if last is None:
        die("%s: no ITCH message with a timestamp" % path)
    hi, lo = struct.unpack_from(">HI", data, last + 5)
    return (hi << 32) | lo


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
    ap.add_argument("--end-ts", type=int, help="timestamp of the replay's last event "
                    "(default: the last trade's, right for CSV input)")
    ap.add_argument("--itch", help="the ITCH file the replay read: --end-ts from its last message")
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
    end_ts = args.end_ts
    if end_ts is None and args.itch:
        end_ts = itch_last_ts(args.itch)

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

    # ---- bars -----------------------------------------------------------------------------
    t0 = time.perf_counter()
    ok = (df["price"].to_numpy() > 0) & (df["size"].to_numpy() > 0)
    nbad = int((~ok).sum())
    if nbad:
        df = df[ok]
    ts = df["timestamp"].to_numpy()
    k_raw = ts // bar_ns
    k = np.maximum.accumulate(k_raw)  # late trades go into the open bar
    nlate = int((k != k_raw).sum())
    df = df.assign(bar=k)
    g = df.groupby(["bar", "symbol"], sort=True)
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
    if end_ts is None:
        end_ts = int(ts[-1])
    end_k = max(int(k[-1]), end_ts // bar_ns)  # the bar still open at the end
    sub = close_w.reindex(columns=tracked)
    sub = sub[sub.notna().any(axis=1).to_numpy() & (sub.index.to_numpy() < end_k)]
    rets = np.log(sub.ffill()).diff().fillna(0.0)  # unpriced, first priced bar: 0
    X = rets.to_numpy()[-window:]
    nrows_total = len(rets)
    n = X.shape[0]
    corr_pd = None
    if n >= 2 and X.shape[1] >= 2:
        Xc = X - X.mean(axis=0)
        cov = Xc.T @ Xc / (n - 1)
        raw = (X * X).sum(axis=0)
        cent = np.diag(cov) * (n - 1)
        zero = (raw == 0) | (cent <= 1e-12 * raw)
        var = np.where(zero, 0.0, np.diag(cov))
        d = np.where(var > 0, 1.0 / np.sqrt(np.where(var > 0, var, 1.0)), 0.0)
        corr_pd = np.clip(cov * np.outer(d, d), -1.0, 1.0)
        np.fill_diagonal(corr_pd, 1.0)
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
    print("  bar rows: pandas %d (window %d: %d), tickcore %s; end of data in bar %d"
          % (nrows_total, window, n, tc_rows, end_k))
    if tc_rows is not None and int(tc_rows) != nrows_total:
        fails.append("bar rows: tickcore %s, pandas %d" % (tc_rows, nrows_total))
    if corr_tc is not None:
        if args.itch is None and args.end_ts is None and tracked != first_seen[:len(tracked)]:
            print("  note: tickcore's tracked symbols are not the first %d seen in the CSV"
                  % len(tracked))
        if corr_pd is None:
            fails.append("correlation: pandas has fewer than 2 rows or symbols")
        else:
            rows_tc = [str(i) for i in corr_tc.index]
            if rows_tc != tracked:
                fails.append("%s: row names differ from the header" % args.corr)
            else:
                diff = np.abs(corr_tc.to_numpy(dtype=float) - corr_pd)
                i, j = np.unravel_index(int(np.nanargmax(diff)), diff.shape)
                mx = float(diff[i, j])
                print("  correlation %dx%d: max abs difference %.3g (%s, %s), mean %.3g"
                      % (len(tracked), len(tracked), mx, tracked[i], tracked[j],
                         float(diff.mean())))
                if not np.isfinite(diff).all():
                    fails.append("correlation: tickcore's matrix has non-numbers")
                elif mx > CORR_ATOL:
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
