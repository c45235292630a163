#!/usr/bin/env python3
"""tests/export_ref.py: naive references for `tickcore replay --bars-out` and `--book-out`.

  export_ref.py bars TRADES.csv BARS.csv BAR_NS
      Recompute every bar from the --trades-out file of the same run (textbook OHLCV: first,
      max, min, last price, summed size, VWAP = sum(p*s)/sum(s), trade count, log return of
      the close against the previous bar's close, carried bars between trades) and compare
      with the export row by row, for bars up to the last one exported (bars inside a clock
      jump longer than stats.bar_history are not reported by design; every bar holding a trade
      must be there).
  export_ref.py book FILE.itch DEPTH EVERY_NS SNAP.csv
      Walk the ITCH BinaryFILE message by message with a dict of live orders (A F E C X D U),
      take the book at each boundary T = j * EVERY_NS before the first message at or after T,
      and compare with the export row by row.

Prints "ok N" (rows compared) or the first difference, exit 1. No tickcore code is reused.
"""
import csv
import math
import struct
import sys


def fail(msg):
    print(msg)
    sys.exit(1)


def bars(trades_path, bars_path, bar_ns):
    bar_ns = int(bar_ns)
    agg = {}  # (sym, k) -> [o, h, l, c, vol, notional, n]   prices in 1e-4 units
    for r in csv.DictReader(open(trades_path)):
        ts, sym, px, sz = int(r["timestamp"]), r["symbol"], round(float(r["price"]) * 10000), int(r["size"])
        k = ts // bar_ns
        a = agg.get((sym, k))
        if a is None:
            agg[(sym, k)] = [px, px, px, px, sz, px * sz, 1]
        else:
            a[1], a[2], a[3] = max(a[1], px), min(a[2], px), px
            a[4] += sz
            a[5] += px * sz
            a[6] += 1
    got = list(csv.DictReader(open(bars_path)))
    if not got:
        fail("no bars exported")
    kmax = max(int(r["bar"]) for r in got)
    # Bars inside a jump of the clock longer than stats.bar_history are closed without being
    # reported (analytics/stats.h): compare the bars the export has, after checking that every
    # bar holding a trade is among them.
    exported = {int(r["bar"]) for r in got}
    missing = sorted({k for (_, k) in agg if k <= kmax} - exported)
    if missing:
        fail("bars with trades not exported: %s" % missing[:10])
    first = {}
    for (sym, k) in agg:
        first[sym] = min(first.get(sym, k), k)
    want = []
    for sym, k0 in first.items():
        prev = None
        for k in range(k0, kmax + 1):
            a = agg.get((sym, k))
            if k not in exported:
                continue
            if a is None:
                c = prev
                want.append((k, sym, c, c, c, c, 0, None, 0, 0.0))
            else:
                ret = math.log(a[3] / prev) if prev else None
                want.append((k, sym, a[0], a[1], a[2], a[3], a[4], a[5] / a[4] / 10000, a[6], ret))
                prev = a[3]
    want.sort(key=lambda w: (w[0], w[1]))
    have = []
    for r in got:
        if int(r["end_ns"]) != (int(r["bar"]) + 1) * bar_ns:
            fail("end_ns: %s" % r)
        have.append((int(r["bar"]), r["symbol"], *(round(float(r[c]) * 10000) for c in ("open", "high", "low", "close")),
                     int(r["volume"]), float(r["vwap"]) if r["vwap"] else None, int(r["trades"]),
                     float(r["return"]) if r["return"] else None))
    have.sort(key=lambda w: (w[0], w[1]))
    if len(have) != len(want):
        fail("rows: exported %d, reference %d" % (len(have), len(want)))
    for h, w in zip(have, want):
        if h[:7] != w[:7] or h[8] != w[8]:
            fail("bar differs:\n  exported  %s\n  reference %s" % (h, w))
        for x, y in ((h[7], w[7]), (h[9], w[9])):
            if (x is None) != (y is None) or (x is not None and abs(x - y) > 1e-9 * max(1, abs(y))):
                fail("bar differs:\n  exported  %s\n  reference %s" % (h, w))
    print("ok", len(have))


def book(itch_path, depth, every, snap_path):
    depth, every = int(depth), int(every)
    data = open(itch_path, "rb").read()
    orders = {}  # ref -> [locate, side, price, shares]
    names = {}
    want = []
    nxt = None
    pos = 0

    def snapshot(t):
        levels = {}
        for loc, side, px, sh in orders.values():
            lv = levels.setdefault((loc, side, px), [0, 0])
            lv[0] += sh
            lv[1] += 1
        for loc in sorted({k[0] for k in levels}):
            for side in "BS":
                pxs = sorted((k[2] for k in levels if k[0] == loc and k[1] == side), reverse=(side == "B"))
                for i, px in enumerate(pxs[:depth]):
                    sh, n = levels[(loc, side, px)]
                    want.append((t, names.get(loc, ""), side, i + 1, px, sh, n))

    while pos + 2 <= len(data):
        n = struct.unpack_from(">H", data, pos)[0]
        m = data[pos + 2: pos + 2 + n]
        pos += 2 + n
        typ, loc = chr(m[0]), struct.unpack_from(">H", m, 1)[0]
        ts = int.from_bytes(m[5:11], "big")
        if nxt is None:
            nxt = (ts // every + 1) * every
        elif ts >= nxt:
            snapshot(ts // every * every)
            nxt = (ts // every + 1) * every
        if typ == "R":
            names[loc] = m[11:19].decode().rstrip()
        elif typ in "AF":
            ref, side, sh, _, px = struct.unpack_from(">QcI8sI", m, 11)
            orders[ref] = [loc, side.decode(), px, sh]
        elif typ in "EC":
            ref, sh = struct.unpack_from(">QI", m, 11)
            o = orders[ref]
            o[3] -= sh
            if o[3] <= 0:
                del orders[ref]
        elif typ == "X":
            ref, sh = struct.unpack_from(">QI", m, 11)
            o = orders[ref]
            o[3] -= sh
            if o[3] <= 0:
                del orders[ref]
        elif typ == "D":
            del orders[struct.unpack_from(">Q", m, 11)[0]]
        elif typ == "U":
            old, new, sh, px = struct.unpack_from(">QQII", m, 11)
            o = orders.pop(old)
            orders[new] = [o[0], o[1], px, sh]
    have = [(int(r["time_ns"]), r["symbol"], r["side"], int(r["level"]), round(float(r["price"]) * 10000),
             int(r["shares"]), int(r["orders"])) for r in csv.DictReader(open(snap_path))]
    if len(have) != len(want):
        fail("rows: exported %d, reference %d" % (len(have), len(want)))
    for h, w in zip(have, want):
        if h != w:
            fail("snapshot row differs:\n  exported  %s\n  reference %s" % (h, w))
    print("ok", len(have))


if __name__ == "__main__":
    {"bars": bars, "book": book}[sys.argv[1]](*sys.argv[2:])
