#!/usr/bin/python3
"""examples/notebook.py [DAY.itch]: a notebook's worth of tickcore from Python.

Replays a trading day (default build/demo/day.itch: `make run` makes it, or
`build/tickcore gen --messages 10M --symbols 500 --sectors 10 --seed 1 --out build/demo/day.itch`),
reads the correlation matrix straight from the engine's buffer, times that read, looks at a
book and a symbol's bars, plots the correlation heatmap with matplotlib when it is installed,
and prints the memory story: what the engine holds, what it allocated while replaying, and
what Python allocated. Run from the repository root: PYTHONPATH=python examples/notebook.py
"""
import os
import sys
import time
import tracemalloc

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "python"))

import numpy as np  # noqa: E402

import tickcore  # noqa: E402


def mb(n):
    return f"{n / 1e6:,.1f} MB"


def main():
    day = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "demo", "day.itch")
    if not os.path.exists(day):
        sys.exit(f"notebook: no {day}; make it with: build/tickcore gen --messages 10M "
                 "--symbols 500 --sectors 10 --seed 1 --out build/demo/day.itch")
    tracemalloc.start()
    t = time.perf_counter()
    s = tickcore.replay(day, window=390)
    wall = time.perf_counter() - t
    py_current, py_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    info = s.summary()
    print(f"replayed {day}: {info['messages']:,} messages in {wall:.2f} s "
          f"({info['messages'] / info['seconds'] / 1e6:.1f} M msg/s in the engine), "
          f"{info['symbols']} symbols, {info['workers']} shard worker(s)")

    # the correlation: a view of the engine's buffer
    reads = []
    for _ in range(1000):
        t0 = time.perf_counter_ns()
        c = s.correlation()
        reads.append(time.perf_counter_ns() - t0)
        del c
    c = s.correlation()
    names = s.symbols()[:c.shape[0]]
    lo, size = s.buffers()["xsection.scratch"]
    addr = c.__array_interface__["data"][0]
    print(f"correlation: {c.shape[0]}x{c.shape[1]} float64 ({mb(c.nbytes)}) at {addr:#x}, inside "
          f"the engine's cross-section arena [{lo:#x}, +{size}); owndata={c.flags.owndata}; "
          f"reading it from Python: median {np.median(reads) / 1e3:.1f} us over 1000 reads")
    off = c[~np.eye(c.shape[0], dtype=bool)]
    print(f"  off-diagonal: mean {off.mean():.3f}, min {off.min():.3f}, max {off.max():.3f}")

    sym = names[0]
    print(s.book(sym, depth=5))
    bars = s.bars(sym)
    priced = bars[(bars["flags"] & tickcore.BAR_NOPRICE) == 0]
    print(f"bars of {sym}: the engine keeps the last {info['bar_history']} closed bars per symbol "
          f"(stats.bar_history); {len(priced)} priced, last close "
          f"{priced['close'][-1] / tickcore.PRICE_SCALE:.2f}" if len(priced) else
          f"bars of {sym}: none priced")
    try:
        import pandas  # noqa: F401  (imported first: its import alone takes ~0.7 s here)
        t0 = time.perf_counter()
        df = s.bars_frame()
        print(f"bars_frame(): {len(df):,} rows x {len(df.columns)} columns for {len(names)} symbols "
              f"in {(time.perf_counter() - t0) * 1e3:.1f} ms")
    except ImportError:
        print("bars_frame(): pandas is not installed (Debian: python3-pandas); bars(SYM) works")

    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        out = os.path.join(ROOT, "build", "demo", "corr-heatmap.png")
        fig, ax = plt.subplots(figsize=(7, 6))
        im = ax.imshow(c, cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
        fig.colorbar(im, ax=ax, label="correlation of 1-minute mid-quote returns")
        ax.set_title(f"{os.path.basename(day)}: {c.shape[0]} symbols, by stock locate")
        fig.savefig(out, dpi=100, bbox_inches="tight")
        print(f"heatmap: {out}")
    except ImportError:
        print("heatmap: matplotlib is not installed (Debian: python3-matplotlib); skipped")

    m = s.memory()
    print("memory story:")
    print(f"  engine ({m['backend']}): {mb(m['live_bytes'])} live now, all sized at start-up; "
          f"peak RSS {mb(m['peak_rss'])}")
    for name, t in sorted(m["tags"].items(), key=lambda kv: -kv[1]["live_bytes"]):
        if t["live_bytes"]:
            print(f"    {name:10s} {mb(t['live_bytes']):>10s}")
    print(f"  allocations while replaying {info['messages']:,} messages: "
          f"{m['allocs_after_seal']} (churn since start: {m['churn_allocs']})")
    print(f"  Python during the replay: {py_peak:,} bytes at the peak, {py_current:,} left "
          "(no object per message: the engine's buffers are the results)")
    del c  # close() refuses while an array views the engine's memory
    s.close()
    print("closed: every engine byte returned" if tickcore_live() == 0 else
          f"closed: {tickcore_live()} bytes still live")


def tickcore_live():
    m = tickcore.ffi.new("tickcore_memory_t *")
    tickcore.lib.tickcore_memory(tickcore.ffi.NULL, m)
    return m.live_bytes


if __name__ == "__main__":
    main()
