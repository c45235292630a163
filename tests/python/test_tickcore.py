#!/usr/bin/python3
"""tests/python/test_tickcore.py RESULTS TICKCORE: the Python package (python/tickcore) over
build/libtickcore.so, the way a notebook uses it.

Oracles independent of the package: `tickcore replay --corr-out` and `--trades-out` of the same
file (the command line's own output path), the ITCH files themselves read by a naive parser here
(the stock directory for the symbol list; a plain dict-of-orders book for the AAPL excerpt), the
published facts of tests/data/README.md (80 live orders on 64 levels after 1,001 messages), the
library's own buffer list for the zero-copy address, and tracemalloc for Python's allocations.
Appends one "python <test> P F S" line per test to RESULTS like tests/run.sh. Runs with Debian's
python3 (numpy, cffi; pandas when installed).
"""
import collections
import csv
import errno
import gc
import itertools
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import tracemalloc
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RESULTS = sys.argv[1] if len(sys.argv) > 1 else None
BIN = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else os.path.join(ROOT, "build/tickcore")
os.environ.setdefault("TICKCORE_LIB", os.path.join(os.path.dirname(BIN), "libtickcore.so"))
sys.path.insert(0, os.path.join(ROOT, "python"))

import numpy as np  # noqa: E402

import tickcore  # noqa: E402

TMP = tempfile.mkdtemp(prefix="tickcore-py-")
DATA = os.environ.get("TICKCORE_DATA", os.path.join(ROOT, "tests", "data"))
AAPL = os.path.join(DATA, "itch", "nasdaq-20200130-aapl-10k.itch")


def gen(name, messages, symbols, seed):
    path = os.path.join(TMP, name)
    if not os.path.exists(path):
        subprocess.run([BIN, "gen", "--messages", str(messages), "--symbols", str(symbols),
                        "--sectors", "4", "--seed", str(seed), "--out", path],
                       check=True, stdout=subprocess.DEVNULL)
    return path


def itch_messages(path, limit=None):
    """(type, body) of each message of an ITCH 5.0 BinaryFILE, by its framing alone."""
    with open(path, "rb") as f:
        data = f.read()
    at, n = 0, 0
    while at + 2 <= len(data) and (limit is None or n < limit):
        (ln,) = struct.unpack_from(">H", data, at)
        body = data[at + 2:at + 2 + ln]
        at += 2 + ln
        n += 1
        yield chr(body[0]), body


def naive_book(path, limit=None):
    """Live orders by reference from A, F, E, C, X, D, U: the textbook order book."""
    orders = {}
    for t, m in itch_messages(path, limit):
        if t in "AF":
            ref, side, shares, price = struct.unpack_from(">QcI8xI", m, 11)
            orders[ref] = [side, shares, price]
        elif t in "ECX":
            ref, shares = struct.unpack_from(">QI", m, 11)
            if ref in orders:
                orders[ref][1] -= shares
                if orders[ref][1] <= 0:
                    del orders[ref]
        elif t == "D":
            (ref,) = struct.unpack_from(">Q", m, 11)
            orders.pop(ref, None)
        elif t == "U":
            old, new, shares, price = struct.unpack_from(">QQII", m, 11)
            if old in orders:
                side = orders.pop(old)[0]
                orders[new] = [side, shares, price]
    return orders


def levels(orders, side):
    agg = collections.defaultdict(lambda: [0, 0])
    for s, shares, price in orders.values():
        if s == side:
            agg[price][0] += shares
            agg[price][1] += 1
    keys = sorted(agg, reverse=(side == b"B"))
    return [(p / 1e4, agg[p][0], agg[p][1]) for p in keys]


class TestTickcore(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.day = gen("day-200k.itch", 200_000, 20, 3)

    def test_correlation_equals_corr_out_csv(self):
        out = os.path.join(TMP, "corr.csv")
        subprocess.run([BIN, "replay", "--no-progress", "--corr-out", out, self.day], check=True,
                       stdout=subprocess.DEVNULL)
        with open(out) as f:
            rows = list(csv.reader(f))
        header, body = rows[0][1:], rows[1:]
        want = np.array([[float(v) for v in r[1:]] for r in body])
        with tickcore.replay(self.day, window=390) as s:
            c = s.correlation()
            names = s.symbols()
            self.assertEqual(c.shape, (len(header), len(header)))
            self.assertEqual(names[:len(header)], header)
            self.assertEqual([r[0] for r in body], header)
            np.testing.assert_allclose(c, want, rtol=1e-9, atol=1e-9)
            del c

    def test_array_is_the_engine_buffer(self):
        with tickcore.replay(self.day) as s:
            a = s.correlation()
            b = s.correlation()
            addr = a.__array_interface__["data"][0]
            lo, size = s.buffers()["xsection.scratch"]
            self.assertTrue(lo <= addr and addr + a.nbytes <= lo + size,
                            f"{addr:#x} not in the arena [{lo:#x}, {lo + size:#x})")
            self.assertEqual(b.__array_interface__["data"][0], addr)  # no copy per call
            self.assertFalse(a.flags.owndata)
            self.assertFalse(a.flags.writeable)
            with self.assertRaises(ValueError):
                a[0, 0] = 2.0
            self.assertEqual(a.ctypes.data, addr)
            del a, b

    def test_close_is_enforced(self):
        s = tickcore.replay(self.day)
        a = s.correlation()
        kept = a.copy()
        with self.assertRaises(BufferError):
            s.close()
        np.testing.assert_array_equal(a, kept)  # still the engine's valid memory
        part = a[2:5, 1:3]  # a view of the view keeps the memory too
        del a
        with self.assertRaises(BufferError):
            s.close()
        self.assertEqual(s.exports(), 1)
        np.testing.assert_array_equal(part, kept[2:5, 1:3])
        del part
        s.close()
        self.assertTrue(s.closed)
        for call in (s.correlation, s.symbols, s.memory, s.summary, lambda: s.bars("X"),
                     lambda: s.book("X")):
            with self.assertRaises(tickcore.ClosedError):
                call()
        s.close()  # twice is fine
        np.testing.assert_array_equal(kept, kept)  # copies are the caller's

    def test_dropped_session_frees_after_last_array(self):
        m = tickcore.ffi.new("tickcore_memory_t *")

        def live():
            tickcore.lib.tickcore_memory(tickcore.ffi.NULL, m)
            return m.live_bytes

        gc.collect()
        before = live()
        s = tickcore.replay(self.day)
        a = s.correlation()
        kept = a.copy()
        during = live()
        self.assertGreater(during, before)
        del s  # no close(): the array still holds the memory
        gc.collect()
        self.assertEqual(live(), during)
        np.testing.assert_array_equal(a, kept)
        del a
        gc.collect()
        self.assertEqual(live(), before)

    def test_symbol_list_matches_the_stock_directory(self):
        directory = {}
        for t, m in itch_messages(self.day):
            if t == "R":
                (loc,) = struct.unpack_from(">H", m, 1)
                directory[loc] = m[11:19].decode().rstrip()
        with tickcore.replay(self.day) as s:
            self.assertEqual(s.symbols(), [directory[k] for k in sorted(directory)])

    def test_book_aapl_matches_a_naive_book(self):
        if not os.path.exists(AAPL):
            self.skipTest(f"no {AAPL}")
        # the published fact: after the first 1,001 messages, 80 orders on 64 levels
        prefix = os.path.join(TMP, "aapl-1001.itch")
        with open(AAPL, "rb") as f, open(prefix, "wb") as out:
            for _ in range(1001):
                hdr = f.read(2)
                out.write(hdr + f.read(struct.unpack(">H", hdr)[0]))
        with tickcore.replay(prefix) as s:
            b = s.book("AAPL", depth=1000)
            self.assertEqual(len(b.bid) + len(b.ask), 64)
            self.assertEqual(int(b.bid["orders"].sum() + b.ask["orders"].sum()), 80)
        # the whole excerpt against the dict-of-orders book
        orders = naive_book(AAPL)
        with tickcore.replay(AAPL) as s:
            b = s.book("AAPL", depth=1000)
            for side, got in ((b"B", b.bid), (b"S", b.ask)):
                want = levels(orders, side)
                self.assertEqual(len(got), len(want))
                self.assertEqual([(float(p), int(q), int(o)) for p, q, o in got], want)
            top = s.book("AAPL", depth=1)
            self.assertEqual(len(top.bid), 1)
            self.assertEqual(float(top.bid["price"][0]), levels(orders, b"B")[0][0])
            with self.assertRaises(tickcore.TickcoreError) as e:
                s.book("MSFT")
            self.assertEqual(e.exception.errno, errno.ENOENT)
            with self.assertRaises(tickcore.TickcoreError) as e:
                s.correlation()  # one symbol: no matrix
            self.assertEqual(e.exception.errno, errno.EAGAIN)

    def test_bars_match_the_trades_out_file(self):
        trades = os.path.join(TMP, "trades.csv")
        subprocess.run([BIN, "replay", "--no-progress", "--trades-out", trades, self.day],
                       check=True, stdout=subprocess.DEVNULL)
        with tickcore.replay(self.day, bar_history=4096) as s:  # every bar of the day
            sym = s.symbols()[3]
            bar_ns = s.summary()["bar_ns"]
            got = s.bars(sym)
        # OHLCV of each minute from the list of trades, the textbook way
        agg = {}
        with open(trades) as f:
            for r in csv.DictReader(f):
                if r["symbol"] != sym:
                    continue
                k = int(r["timestamp"]) // bar_ns
                px, size = round(float(r["price"]) * 1e4), int(r["size"])
                if k not in agg:
                    agg[k] = [px, px, px, px, 0, 0]
                o = agg[k]
                o[1], o[2], o[3] = max(o[1], px), min(o[2], px), px
                o[4] += size
                o[5] += 1
        traded = got[got["trades"] > 0]
        self.assertGreater(len(traded), 5)
        for b in traded:
            o, h, lo, c, v, n = agg[int(b["k"])]
            self.assertEqual((b["open"], b["high"], b["low"], b["close"], b["volume"],
                              b["trades"]), (o, h, lo, c, v, n), f"bar {b['k']}")
        self.assertEqual(set(int(k) for k in traded["k"]),
                         {k for k in agg if got["k"][0] <= k <= got["k"][-1]})

    def test_bars_frame(self):
        try:
            import pandas  # noqa: F401
        except ImportError:
            self.skipTest("pandas not installed")
        with tickcore.replay(self.day) as s:
            df = s.bars_frame()
            names = s.symbols()
            one = s.bars(names[0])
            one = one[(one["flags"] & tickcore.BAR_NOPRICE) == 0]
            sub = df[df["symbol"] == names[0]]
            np.testing.assert_array_equal(sub["close"].to_numpy(), one["close"] / 1e4)
            np.testing.assert_array_equal(sub["k"].to_numpy(), one["k"])
            self.assertEqual(set(df["symbol"].unique()), set(names))

    def test_errors_name_what_is_wrong(self):
        with self.assertRaises(tickcore.TickcoreError) as e:
            tickcore.replay(os.path.join(TMP, "missing.itch"))
        self.assertEqual(e.exception.errno, errno.ENOENT)
        self.assertIn("missing.itch", str(e.exception))
        with self.assertRaises(tickcore.TickcoreError) as e:
            tickcore.replay(self.day, window="many")
        self.assertEqual(e.exception.errno, errno.EINVAL)
        self.assertIn("window", str(e.exception))
        with self.assertRaises(TypeError):
            tickcore.replay(self.day, windw=3)
        bad = os.path.join(TMP, "cut.itch")
        with open(self.day, "rb") as f, open(bad, "wb") as out:
            out.write(f.read(100_003))
        with self.assertRaises(tickcore.TickcoreError) as e:
            tickcore.replay(bad)
        self.assertEqual(e.exception.errno, errno.EIO)
        self.assertIn("cut.itch", str(e.exception))

    def test_memory_story(self):
        with tickcore.replay(self.day) as s:
            m = s.memory()
            self.assertEqual(m["allocs_after_seal"], 0)
            self.assertGreater(m["live_bytes"], 1 << 20)
            self.assertGreater(m["tags"]["book"]["live_bytes"], 0)
            self.assertEqual(sum(t["live_bytes"] for t in m["tags"].values()), m["live_bytes"])

    def test_cdef_matches_the_header(self):
        from cffi import FFI
        text = open(os.path.join(ROOT, "include", "tickcore", "tickcore.h")).read()
        import re
        text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
        lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")
                 and "extern \"C\"" not in ln and ln.strip() != "}"]
        src = "\n".join(lines).replace("TICKCORE_API", "")
        src = re.sub(r"enum \{[^}]*\};", "", src)
        src = src.replace("[TICKCORE_MEM_TAGS]", "[16]")
        ref = FFI()
        ref.cdef(src)
        for t in ("tickcore_bar_t", "tickcore_level_t", "tickcore_summary_t", "tickcore_buffer_t",
                  "tickcore_memory_t", "tickcore_position_t"):
            self.assertEqual(ref.sizeof(t), tickcore.ffi.sizeof(t), t)
        funcs = set(re.findall(r"\b(tickcore_[a-z_]+)\s*\(", src))
        self.assertEqual(funcs, set(re.findall(r"\b(tickcore_[a-z_]+)\s*\(", tickcore.CDEF)))

    # ---- in steps: feed bytes, step through files (library 1.1) ----

    def replay_json(self, path, *sets):
        args = [BIN, "replay", "--json", "--no-progress", path]
        for kv in sets:
            args += ["--set", kv]
        return json.loads(subprocess.run(args, check=True, capture_output=True).stdout)

    def test_feed_random_chunks_equals_replay(self):
        with open(self.day, "rb") as f:
            data = f.read()
        want = self.replay_json(self.day, "report.top_symbols=20")
        rng = np.random.default_rng(7)
        view = memoryview(data)
        with tickcore.replay(self.day) as ref, tickcore.session() as s:
            off = calls = 0
            while off < len(data):
                k = int(rng.integers(1, 4000)) if rng.random() < 0.9 else int(rng.integers(1, 9))
                s.feed(view[off:off + k])  # read in place: no copy of the slice
                off += k
                calls += 1
            pos = s.position()
            self.assertEqual((pos["fed_bytes"], pos["carried"], pos["state"]),
                             (len(data), 0, "running"))
            s.finish()
            self.assertGreater(calls, 100)
            # the command line's --json of the same file (an independent path: files, report)
            self.assertEqual(s.summary()["messages"], want["messages"])
            self.assertEqual(s.summary()["matrix_rows"], want["analytics"]["xsection"]["rows"])
            orders = levels = 0
            for sym in s.symbols():
                b = s.book(sym, depth=1000)
                levels += len(b.bid) + len(b.ask)
                orders += int(b.bid["orders"].sum() + b.ask["orders"].sum())
            self.assertEqual((orders, levels), (want["analytics"]["book"]["orders"],
                                                want["analytics"]["book"]["levels"]))
            for top in want["analytics"]["top"]:
                b = s.book(top["symbol"], depth=1000)
                self.assertEqual((int(b.bid["orders"].sum() + b.ask["orders"].sum()),
                                  len(b.bid) + len(b.ask)), (top["orders"], top["levels"]))
            c = s.correlation()
            # the MST total and the PCA shares of --json, from the matrix here (Prim, eigvalsh)
            d = np.sqrt(np.maximum(2 * (1 - c), 0))
            n = len(c)
            inside, best, total = np.zeros(n, bool), d[0].copy(), 0.0
            inside[0] = True
            for _ in range(n - 1):
                j = int(np.argmin(np.where(inside, np.inf, best)))
                total += best[j]
                inside[j] = True
                best = np.minimum(best, d[j])
            self.assertAlmostEqual(total, want["analytics"]["xsection"]["mst_total"], places=6)
            ev = np.sort(np.linalg.eigvalsh(c))[::-1] / n
            got = want["analytics"]["xsection"]["pc_explained"]
            np.testing.assert_allclose(ev[:len(got)], got, atol=1e-6)
            # and bit for bit what replaying the file gives here
            np.testing.assert_array_equal(c, ref.correlation())
            for sym in s.symbols():
                self.assertEqual(s.bars(sym).tobytes(), ref.bars(sym).tobytes())  # NaN too
                np.testing.assert_array_equal(s.book(sym, 50).bid, ref.book(sym, 50).bid)
                np.testing.assert_array_equal(s.book(sym, 50).ask, ref.book(sym, 50).ask)
            del c

    def test_feed_bad_bytes_names_the_offset(self):
        frames = [m for _, m in itertools.islice(itch_messages(AAPL), 30)]
        good = b"".join(struct.pack(">H", len(m)) + m for m in frames[:20])
        bad = struct.pack(">H", 36) + b"Z" + bytes(35)  # no such message type
        with tickcore.session() as s:
            s.feed(good[:-3])
            with self.assertRaises(tickcore.TickcoreError) as e:
                s.feed(good[-3:] + bad)
            self.assertEqual(e.exception.errno, errno.EBADMSG)
            self.assertIn(f"byte {len(good)} (message 21)", str(e.exception))
            self.assertIn("unknown message type 0x5a ('Z')", str(e.exception))
            self.assertEqual(s.position()["messages"], 20)
            with self.assertRaises(tickcore.TickcoreError):
                s.feed(good)  # the fed stream has ended by the error
        nxt = struct.pack(">H", len(frames[20])) + frames[20]
        with tickcore.session() as s:
            s.feed(good + nxt[:5])
            self.assertEqual(s.position()["carried"], 5)
            with self.assertRaises(tickcore.TickcoreError) as e:
                s.finish()
            self.assertIn(f"byte {len(good)} (message 21): truncated final message",
                          str(e.exception))
            self.assertEqual(s.summary()["messages"], 20)  # what came before stands

    def test_step_results_between_steps(self):
        with tickcore.session(AAPL) as s:
            self.assertEqual(s.position()["state"], "open")
            self.assertEqual(s.step(1001), 1001)
            b = s.book("AAPL", depth=100)
            # tests/data/README.md: 80 live orders on 64 levels after the first 1,001 messages
            self.assertEqual(len(b.bid) + len(b.ask), 64)
            self.assertEqual(int(b.bid["orders"].sum() + b.ask["orders"].sum()), 80)
            total = 1001
            while total < 6000:
                total += s.step(1000)
            self.assertEqual(total, 6001)
            orders = naive_book(AAPL, 6001)  # the textbook book of the first 6,001 messages
            b = s.book("AAPL", depth=1000)
            for side, got in ((b"B", b.bid), (b"S", b.ask)):
                self.assertEqual([(float(p), int(q), int(o)) for p, q, o in got],
                                 levels(orders, side))
            while s.step(3000):
                pass
            self.assertEqual(s.position()["state"], "ended")
            self.assertEqual(s.summary()["messages"], 10_000)

    def test_correlation_views_between_steps(self):
        with tickcore.session(self.day) as s:
            s.step(100_000)
            c = s.correlation()
            keep = c.copy()
            bars = s.position()["bars"]
            s.step(50_000)
            self.assertGreater(s.position()["bars"], bars)  # bars closed: the next correlation() would rewrite c's memory
            with self.assertRaises(BufferError):
                s.correlation()
            np.testing.assert_array_equal(c, keep)  # unchanged under its holder
            with self.assertRaises(BufferError):
                s.finish()
            del c
            c2 = s.correlation()
            self.assertFalse(np.array_equal(c2, keep))
            del c2
            s.run()  # the rest of the file, then the end
            with tickcore.replay(self.day) as ref:
                a, b = s.correlation(), ref.correlation()
                # a matrix read between steps commits the rows waiting for a dsyrk batch early
                # (analytics/covariance: covariance_flush), so the sums are added in another
                # grouping: equal to rounding, not to the bit
                np.testing.assert_allclose(a, b, rtol=0, atol=1e-13)
                del a, b

    # ---- whole-day bars: the day store (stats.day_bars) ----

    @staticmethod
    def write_390_day(path, nsym=20, seed=11):
        """20 symbols trading 2-4 times a minute from 09:30:00 to 15:59:59: 390 one-minute bars
        each. Returns {symbol: {k: [(price, shares), ...]}} of the trades written."""
        rng = np.random.default_rng(seed)
        out, trades, match = bytearray(), {}, 1

        def msg(m):
            out.extend(struct.pack(">H", len(m)) + m)

        def head(t, loc, ts):
            return struct.pack(">cHH", t, loc, 0) + ts.to_bytes(6, "big")

        syms = [f"S{i:03d}" for i in range(nsym)]
        msg(head(b"S", 0, 1000) + b"O")
        for i, sym in enumerate(syms):
            msg(head(b"R", i + 1, 1000) + sym.ljust(8).encode() + b"QN" + struct.pack(">I", 100)
                + b"N" + bytes(1 + 2 + 1 + 1 + 1 + 1 + 1 + 4 + 1))
            trades[sym] = {}
        t0, minute = 34200 * 10**9, 60 * 10**9
        price = {sym: 100_0000 + 1000 * i for i, sym in enumerate(syms)}
        for b in range(390):
            events = []
            for i, sym in enumerate(syms):
                for _ in range(int(rng.integers(2, 5))):
                    ts = t0 + b * minute + int(rng.integers(0, minute - 1000))
                    price[sym] += int(rng.integers(-300, 301))
                    events.append((ts, i, sym, price[sym], int(rng.integers(1, 50)) * 100))
            for ts, i, sym, px, sh in sorted(events):
                msg(head(b"P", i + 1, ts) + struct.pack(">QcI", 0, b"B", sh) +
                    sym.ljust(8).encode() + struct.pack(">IQ", px, match))
                match += 1
                trades[sym].setdefault((ts // minute), []).append((px, sh))
        msg(head(b"S", 0, t0 + 390 * minute - 500) + b"C")  # inside the last bar
        with open(path, "wb") as f:
            f.write(out)
        return trades

    def test_day_bars_whole_day_equals_bars_out(self):
        path = os.path.join(TMP, "day390.itch")
        trades = self.write_390_day(path)
        out = os.path.join(TMP, "day390.bars.csv")
        subprocess.run([BIN, "replay", "--no-progress", "--bars-out", out, path], check=True,
                       stdout=subprocess.DEVNULL)
        rows = collections.defaultdict(list)
        for r in csv.DictReader(open(out)):
            rows[r["symbol"]].append(r)
        self.assertEqual({k: len(v) for k, v in rows.items()}, {k: 390 for k in trades})
        with tickcore.replay(path) as s:  # without the store: the last bar_history (64)
            self.assertEqual(len(s.bars("S000")), 64)
        with tickcore.replay(path, day_bars=390, workers=2) as s:
            pos = s.position()
            self.assertEqual((pos["day_bars"], pos["day_bars_dropped"]), (390 * 20, 0))
            for sym, want in rows.items():
                got = s.bars(sym)
                self.assertEqual(len(got), 390)
                for g, w in zip(got, want):
                    self.assertEqual(int(g["k"]), int(w["bar"]))
                    for f in ("open", "high", "low", "close"):
                        self.assertEqual(f"{g[f] / 1e4:.4f}", w[f])
                    self.assertEqual((int(g["volume"]), int(g["trades"])),
                                     (int(w["volume"]), int(w["trades"])))
                    self.assertEqual(f"{g['vwap']:.10g}", w["vwap"])
                    self.assertEqual("" if math.isnan(g["ret"]) else f"{g['ret']:.10g}",
                                     w["return"])
                    # and the textbook bar of the trades written here
                    tr = trades[sym][int(g["k"])]
                    px = [p for p, _ in tr]
                    self.assertEqual((g["open"], g["high"], g["low"], g["close"]),
                                     (px[0], max(px), min(px), px[-1]))
                    self.assertEqual(g["volume"], sum(q for _, q in tr))
            # memory: the store is sized at start-up, counted in the engine tag
            addr, size = s.buffers()["export.day_bars"]
            self.assertEqual(size, 1000 * 390 * tickcore.BAR_DTYPE.itemsize)
            self.assertEqual(s.memory()["allocs_after_seal"], 0)
            try:
                import pandas  # noqa: F401
                f = s.bars_frame()
                self.assertEqual(len(f), 390 * 20)
            except ImportError:
                pass
        # too small a store: the rest is counted, never silently missing
        with tickcore.replay(path, day_bars=100, day_symbols=15) as s:
            pos = s.position()
            self.assertEqual(pos["day_bars"], 15 * 100)
            self.assertEqual(pos["day_bars_dropped"], 20 * 390 - 15 * 100)
            with self.assertRaises(tickcore.TickcoreError) as e:
                s.bars("S019")
            self.assertEqual(e.exception.errno, errno.ENOSPC)
            self.assertIn("stats.day_symbols", str(e.exception))
        # between steps: the bars closed so far
        with tickcore.session(path, day_bars=390) as s:
            s.step(1 + 20 + sum(len(v) for d in trades.values() for k, v in d.items()
                                if k < 34200 // 60 + 100))
            self.assertEqual(len(s.bars("S000")), 99)  # bar 99 is open still

    def test_no_python_objects_per_message(self):
        small = gen("alloc-0100k.itch", 100_000, 50, 5)
        large = gen("alloc-1000k.itch", 1_000_000, 50, 5)

        def measure(path):
            """Python memory a whole replay leaves behind and its peak, and the blocks it left
            (sys.getallocatedblocks: every live object counts)."""
            gc.collect()
            blocks0 = sys.getallocatedblocks()
            tracemalloc.start()
            s = tickcore.replay(path, workers=1)
            n = s.summary()["messages"]
            s.close()
            del s
            current, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            gc.collect()
            return n, current, peak, sys.getallocatedblocks() - blocks0

        measure(small)  # warm-up: first-call caches (cffi types, imports)
        runs = [measure(p) for p in (small, large, small, large)]
        print(f"\n    tracemalloc (messages, bytes left, peak bytes, blocks left): {runs}",
              file=sys.stderr)
        self.assertEqual([r[0] for r in runs], [100_000, 1_000_000] * 2)
        # what a replay leaves behind: equal to the byte and the block
        self.assertEqual(len({r[1] for r in runs}), 1, runs)
        self.assertEqual(len({r[3] for r in runs}), 1, runs)
        # the peak during the replay: equal but for Python's free lists, which shift it by a few
        # dozen bytes from one call to the next whatever the size (one object per message would
        # add at least 28 bytes x 900,000 = 25 MB to the large run)
        self.assertLess(max(r[2] for r in runs) - min(r[2] for r in runs), 512, runs)


class Recorder(unittest.TextTestResult):
    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.lines = []

    def addSuccess(self, test):
        super().addSuccess(test)
        self.lines.append((test._testMethodName, 1, 0, 0))

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self.lines.append((test._testMethodName, 0, 1, 0))

    def addError(self, test, err):
        super().addError(test, err)
        self.lines.append((getattr(test, "_testMethodName", str(test)), 0, 1, 0))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self.lines.append((test._testMethodName, 0, 0, 1))


def main():
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(TestTickcore)
    runner = unittest.TextTestRunner(verbosity=2, resultclass=Recorder)
    try:
        res = runner.run(suite)
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    if RESULTS:
        with open(RESULTS, "a") as f:
            for name, p, fl, sk in res.lines:
                f.write(f"python {name} {p} {fl} {sk}\n")
    passed = sum(x[1] for x in res.lines)
    failed = sum(x[2] for x in res.lines)
    print(f"python: {passed} passed, {failed} failed")
    # with RESULTS, tests/summary.sh decides (like tests/run.sh); alone, the exit status does
    return 0 if RESULTS or res.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
