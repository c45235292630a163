"""tickcore from Python: the engine's results as NumPy arrays over the engine's own buffers.

    import tickcore
    with tickcore.replay("build/demo/day.itch", window=390) as s:
        c = s.correlation()          # (n, n) float64 view of the engine's matrix: no copy
        names = s.symbols()          # the symbol table in stock locate order; c's axes are names[:n]
        bars = s.bars("AAPL")        # the closed bars the engine keeps (the last bar_history;
                                     # with day_bars=390: every priced bar of the day)
        book = s.book("AAPL", depth=10)
        print(s.memory())

Design. The package is a thin layer over libtickcore.so (cffi, ABI mode: no compiler needed).
A replay is one C call: the engine reads, decodes and analyses every message in C, so Python
creates no object per message (tests/python/test_tickcore.py counts them with tracemalloc).

Lifetime. correlation() hands out a read-only ndarray whose memory is the engine's buffer; the
session's memory lives until close(). The rule is enforced, the way mmap and memoryview enforce
theirs: every array handed out keeps an export object alive (its .base); close() refuses with
BufferError while any such array (or a view or slice of one) still exists, so no array can ever
read freed memory, and after close() every method raises ClosedError. Copy what you keep
(arr.copy()), or drop it, before close(). A session that is garbage-collected frees its memory
once neither it nor any array from it is left.

In steps. tickcore.session(...) sizes nothing until the first call: s.step(n) reads the next n
messages of the files, or, without files, s.feed(data) hands over ITCH 5.0 BinaryFILE bytes
(bytes, bytearray, memoryview, NumPy uint8: read in place, not copied, and not kept) split
anyhow: a message cut between two calls is completed by the next one. Every reader works between
calls and shows every message so far; s.finish() (or the step that finds the end, or run())
ends the input: the open bar closes, the final correlation is computed. Bad bytes raise
TickcoreError (errno EBADMSG) naming their byte offset in the fed stream. The correlation is
computed again, in the same buffer, by the first correlation() after bars closed: so that no
array ever changes under its holder, correlation() (and finish()) refuse with BufferError while
an array of the previous matrix is alive; copy it (arr.copy()) or drop it first.

Which library: $TICKCORE_LIB if set, else libtickcore.so next to this file (make python copies
it in), else build/libtickcore.so of the checkout this file is in, else the system's
libtickcore.so.1 (make install).
"""
import gc
import os
import weakref

import numpy as np
from cffi import FFI

__all__ = ["replay", "session", "Session", "Book", "ClosedError", "TickcoreError", "BAR_DTYPE",
           "LEVEL_DTYPE", "PRICE_SCALE"]

# The declarations of include/tickcore/tickcore.h (a test checks them against the header).
CDEF = """
typedef struct tickcore tickcore_t;
typedef struct tickcore_bar {
    uint64_t k; int64_t open, high, low, close; uint64_t volume;
    double vwap; double ret; double mid_ret; uint32_t trades; uint32_t flags;
} tickcore_bar_t;
typedef struct tickcore_level {
    int64_t price; uint64_t shares; uint32_t orders; uint32_t reserved;
} tickcore_level_t;
typedef struct tickcore_summary {
    uint64_t messages, bytes; double seconds; uint32_t files, files_failed; uint32_t symbols;
    uint32_t matrix_symbols; uint64_t matrix_rows; uint64_t bar_ns; uint32_t bar_history;
    uint32_t workers; uint64_t allocs_after_seal;
} tickcore_summary_t;
typedef struct tickcore_buffer { char name[32]; const void *addr; size_t bytes; } tickcore_buffer_t;
typedef struct tickcore_memory {
    int64_t live_bytes; int64_t peak_bytes; uint64_t allocs, frees; uint64_t churn_allocs;
    uint64_t allocs_after_seal; uint64_t peak_rss; uint32_t ntags;
    struct { char name[16]; int64_t live_bytes, peak_bytes; uint64_t churn_allocs; } tag[16];
    char backend[32];
} tickcore_memory_t;
const char *tickcore_version(void);
int tickcore_open(tickcore_t **out, const char *config_path, const char *const *settings,
                  size_t nsettings, char *err, size_t errlen);
int tickcore_add_file(tickcore_t *s, const char *path);
int tickcore_run(tickcore_t *s);
const char *tickcore_errmsg(const tickcore_t *s);
void tickcore_close(tickcore_t *s);
int tickcore_summary(tickcore_t *s, tickcore_summary_t *out);
int tickcore_correlation(tickcore_t *s, const double **data, size_t *n);
int tickcore_symbols(tickcore_t *s, const char **out, size_t cap);
int tickcore_bars(tickcore_t *s, const char *symbol, tickcore_bar_t *out, size_t cap);
int tickcore_book(tickcore_t *s, const char *symbol, char side, tickcore_level_t *out,
                  size_t depth);
int tickcore_buffers(tickcore_t *s, tickcore_buffer_t *out, size_t cap);
int tickcore_memory(tickcore_t *s, tickcore_memory_t *out);
typedef struct tickcore_position {
    uint64_t messages; uint64_t fed_bytes; uint32_t carried; uint32_t state; uint64_t bars;
    uint64_t corr_bars; uint64_t day_bars; uint64_t day_bars_dropped;
} tickcore_position_t;
int64_t tickcore_step(tickcore_t *s, uint64_t max_messages);
int tickcore_feed(tickcore_t *s, const void *buf, size_t len);
int tickcore_finish(tickcore_t *s);
int tickcore_position(tickcore_t *s, tickcore_position_t *out);
"""

PRICE_SCALE = 10000  # integer prices are in 1/10000 dollars
BAR_CARRIED, BAR_NOPRICE = 1, 2

# tickcore_bar_t and tickcore_level_t as NumPy records (checked against cffi's layout at import).
BAR_DTYPE = np.dtype([("k", "<u8"), ("open", "<i8"), ("high", "<i8"), ("low", "<i8"),
                      ("close", "<i8"), ("volume", "<u8"), ("vwap", "<f8"), ("ret", "<f8"),
                      ("mid_ret", "<f8"), ("trades", "<u4"), ("flags", "<u4")])
LEVEL_DTYPE = np.dtype([("price", "<i8"), ("shares", "<u8"), ("orders", "<u4"),
                        ("reserved", "<u4")])

ffi = FFI()
ffi.cdef(CDEF)
for _name, _dt in (("tickcore_bar_t", BAR_DTYPE), ("tickcore_level_t", LEVEL_DTYPE)):
    assert ffi.sizeof(_name) == _dt.itemsize, _name
    for _f in _dt.names:
        assert ffi.offsetof(_name, _f) == _dt.fields[_f][1], (_name, _f)


def _library_path():
    here = os.path.dirname(os.path.abspath(__file__))
    for p in (os.environ.get("TICKCORE_LIB"), os.path.join(here, "libtickcore.so"),
              os.path.join(here, "..", "..", "build", "libtickcore.so")):
        if p and os.path.exists(p):
            return p
    return "libtickcore.so.1"


try:
    lib = ffi.dlopen(_library_path())
except OSError as e:  # pragma: no cover - said once, clearly
    raise ImportError(
        f"tickcore: cannot load libtickcore ({e}); build it with `make` (build/libtickcore.so), "
        "install it with `make install`, or set TICKCORE_LIB to its path") from None

__version__ = ffi.string(lib.tickcore_version()).decode()


class TickcoreError(OSError):
    """A call failed: .errno is the errno, the message is the engine's (file, key, byte...)."""


class ClosedError(ValueError):
    """The session is closed: its results are gone."""


def _check(rc, handle, what):
    if rc < 0:
        msg = ffi.string(lib.tickcore_errmsg(handle)).decode(errors="replace") if handle else ""
        raise TickcoreError(-rc, f"{what}: {msg or os.strerror(-rc)}")
    return rc


class _Handle:
    """Owns one tickcore_t*. Freed by close() or, failing that, once nothing refers to it."""

    def __init__(self, ptr):
        self.ptr = ptr

    def close(self):
        ptr, self.ptr = self.ptr, ffi.NULL
        if ptr != ffi.NULL:
            lib.tickcore_close(ptr)

    __del__ = close


class _Export:
    """The .base of an array over session memory: keeps the handle alive while it exists."""

    __slots__ = ("__array_interface__", "_handle", "__weakref__")

    def __init__(self, handle, addr, shape, typestr):
        self._handle = handle
        self.__array_interface__ = {"version": 3, "shape": shape, "typestr": typestr,
                                    "data": (addr, True)}  # read-only


class Book:
    """One symbol's book at the end of the replay: bid and ask levels, best first.

    Each side is a structured array with price (dollars, float64), shares and orders."""

    __slots__ = ("symbol", "bid", "ask")

    def __init__(self, symbol, bid, ask):
        self.symbol, self.bid, self.ask = symbol, bid, ask

    def __repr__(self):
        def top(side):
            return f"{side['price'][0]:.4f} x {side['shares'][0]}" if len(side) else "-"
        return (f"Book({self.symbol}: bid {top(self.bid)}, ask {top(self.ask)}, "
                f"{len(self.bid)}/{len(self.ask)} levels)")


_BOOK_DTYPE = np.dtype([("price", "<f8"), ("shares", "<u8"), ("orders", "<u4")])

# keyword shortcuts of replay() -> configuration keys (the rest: settings={"section.key": v})
_SHORTCUTS = {"window": "matrix.window", "bar": "stats.bar_interval",
              "bar_history": "stats.bar_history", "workers": "pipeline.workers",
              "returns": "matrix.returns", "matrix_symbols": "matrix.symbols",
              "max_symbols": "symbols.max_symbols", "day_bars": "stats.day_bars",
              "day_symbols": "stats.day_symbols"}


class Session:
    """A replay: open (configuration), add files, run (or step, or feed bytes, then finish);
    the readers (between steps too); then close()."""

    def __init__(self, files=(), config=None, settings=None, run=True):
        items = [f"{k}={v}" for k, v in (settings or {}).items()]
        c_items = [ffi.new("char[]", s.encode()) for s in items]
        c_arr = ffi.new("const char *[]", c_items) if c_items else ffi.NULL
        out = ffi.new("tickcore_t **")
        err = ffi.new("char[]", 600)
        rc = lib.tickcore_open(out, config.encode() if config else ffi.NULL, c_arr,
                               len(items), err, 600)
        if rc < 0:
            raise TickcoreError(-rc, f"tickcore_open: {ffi.string(err).decode(errors='replace')}")
        self._h = _Handle(out[0])
        self._exports = weakref.WeakSet()
        self._corr = None
        for f in [files] if isinstance(files, (str, os.PathLike)) else files:
            self.add_file(f)
        if run:
            self.run()

    # ---- lifecycle ----
    def _ptr(self):
        if self._h is None or self._h.ptr == ffi.NULL:
            raise ClosedError("the tickcore session is closed")
        return self._h.ptr

    def add_file(self, path):
        p = self._ptr()
        _check(lib.tickcore_add_file(p, os.fsencode(path)), p, "add_file")

    def run(self):
        """Replay every file to the end (after steps: the rest). Raises TickcoreError (errno EIO)
        when a file ended with an error; what was read before it stays readable."""
        p = self._ptr()
        if self._position(p).state == 1:
            self._refuse_live_views("run()")
        self._corr = None
        _check(lib.tickcore_run(p), p, "run")
        return self

    def step(self, n=1_000_000):
        """Read the next n messages of the files. Returns how many were read; 0 once every file
        has been read (the input has then ended, as with finish()). TickcoreError (EIO) when a
        file ended by an error in this step (what was read stays; the next step goes on)."""
        p = self._ptr()
        if n < 1:
            raise ValueError("step(n): n >= 1")
        got = _check(lib.tickcore_step(p, n), p, "step")
        if got == 0:
            self._corr = None
        return got

    def feed(self, data):
        """Hand over ITCH 5.0 BinaryFILE bytes (any buffer: read in place, not kept); the engine
        applies them while this returns (the readers wait for it). TickcoreError (EBADMSG) at a
        bad frame, naming its byte offset from the first byte fed; the messages before it
        stay."""
        p = self._ptr()
        buf = ffi.from_buffer(data)
        _check(lib.tickcore_feed(p, buf, len(buf)), p, "feed")

    def finish(self):
        """End the input: the open bar closes and the final correlation is computed (into the
        buffer earlier arrays view: BufferError while one is alive). TickcoreError (EBADMSG)
        when the fed bytes end inside a message; the results of everything before stay."""
        p = self._ptr()
        if self._position(p).state != 2:
            self._refuse_live_views("finish()")
        self._corr = None
        _check(lib.tickcore_finish(p), p, "finish")
        return self

    def _position(self, p):
        pos = ffi.new("tickcore_position_t *")
        lib.tickcore_position(p, pos)
        return pos

    def position(self):
        """Where the session stands: messages so far, fed_bytes (decoded), carried (bytes of a
        cut message waiting), state ("open", "running", "ended"), bars (closed so far), and the
        day store's bars kept and dropped (stats.day_bars)."""
        pos = self._position(self._ptr())
        return {"messages": pos.messages, "fed_bytes": pos.fed_bytes, "carried": pos.carried,
                "state": ("open", "running", "ended")[pos.state], "bars": pos.bars,
                "day_bars": pos.day_bars, "day_bars_dropped": pos.day_bars_dropped}

    def _refuse_live_views(self, what):
        if len(self._exports):
            gc.collect()  # arrays only held by garbage cycles
        if len(self._exports):
            raise BufferError(
                f"{what} would compute the correlation again in the buffer that "
                f"{len(self._exports)} array(s) view: delete them, or keep copies (arr.copy())")

    @property
    def closed(self):
        return self._h is None or self._h.ptr == ffi.NULL

    def exports(self):
        """How many exported arrays (and views of them) are alive now."""
        return len(self._exports)

    def close(self):
        """Free the engine's memory. BufferError while arrays from correlation() are alive."""
        if self._h is None:
            return
        self._corr = None
        if len(self._exports):
            gc.collect()  # arrays only held by garbage cycles
        if len(self._exports):
            raise BufferError(
                f"{len(self._exports)} array(s) still view this session's memory: "
                "delete them, or keep copies (arr.copy()), before close()")
        self._h.close()
        self._h = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- readers ----
    def summary(self):
        p = self._ptr()
        s = ffi.new("tickcore_summary_t *")
        _check(lib.tickcore_summary(p, s), p, "summary")
        return {f: getattr(s, f) for f in ("messages", "bytes", "seconds", "files",
                                           "files_failed", "symbols", "matrix_symbols",
                                           "matrix_rows", "bar_ns", "bar_history", "workers",
                                           "allocs_after_seal")}

    def correlation(self):
        """The (n, n) correlation matrix as a read-only float64 array over the engine's buffer
        (no copy; the same memory every call). Its axes are symbols()[:n]."""
        p = self._ptr()
        pos = self._position(p)
        if pos.bars != pos.corr_bars and pos.state != 2:  # the engine will compute it again
            self._refuse_live_views("correlation()")
            self._corr = None
        if self._corr is None:
            data = ffi.new("const double **")
            n = ffi.new("size_t *")
            _check(lib.tickcore_correlation(p, data, n), p, "correlation")
            addr = int(ffi.cast("uintptr_t", data[0]))
            self._corr = (addr, n[0])
        addr, n = self._corr
        exp = _Export(self._h, addr, (n, n), "<f8")
        self._exports.add(exp)
        return np.asarray(exp)

    def symbols(self):
        """Every symbol of the replay's table, in stock locate order (the correlation's axes are
        the first n: the symbols with locate <= matrix.symbols)."""
        p = self._ptr()
        n = _check(lib.tickcore_symbols(p, ffi.NULL, 0), p, "symbols")
        names = ffi.new("const char *[]", max(n, 1))
        lib.tickcore_symbols(p, names, n)
        return [ffi.string(names[i]).decode() for i in range(n)]

    def bars(self, symbol):
        """The closed bars the engine keeps for symbol, oldest first, as a structured array of
        BAR_DTYPE (prices in 1/PRICE_SCALE dollars): its last bar_history bars, or, with the day
        store (day_bars=N, the key stats.day_bars), every bar of the session from its first
        trade (the rows of `tickcore replay --bars-out`), up to N. A copy into NumPy's memory
        (the store grows as steps close bars, and a new session empties it), written by the C
        library in one call. TickcoreError (ENOSPC) for a symbol the full store had no room for
        (stats.day_symbols)."""
        p = self._ptr()
        sym = symbol.encode()
        n = _check(lib.tickcore_bars(p, sym, ffi.NULL, 0), p, f"bars({symbol!r})")
        out = np.empty(n, BAR_DTYPE)
        if n:
            got = lib.tickcore_bars(p, sym, ffi.cast("tickcore_bar_t *", out.ctypes.data), n)
            out = out[:_check(got, p, f"bars({symbol!r})")]
        return out

    def bars_frame(self, symbols=None, priced_only=True):
        """Every kept bar of every symbol (or of `symbols`) as a pandas DataFrame: symbol, k,
        start (bar start on the feed clock), open/high/low/close/vwap in dollars, volume, trades,
        ret, mid_ret, flags. priced_only drops the bars before a symbol's first trade. With the
        day store (day_bars=390) the whole day; without it the last bar_history bars. Warns
        (RuntimeWarning) when the day store dropped bars (position()["day_bars_dropped"])."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("bars_frame() needs pandas (Debian: python3-pandas); "
                              "bars(symbol) gives the same rows as a NumPy array") from None
        p = self._ptr()
        dropped = self._position(p).day_bars_dropped
        if dropped:
            import warnings
            warnings.warn(f"the day store dropped {dropped} bars (stats.day_bars, "
                          "stats.day_symbols too small): the frame misses them", RuntimeWarning)
        names = self.symbols() if symbols is None else list(symbols)
        counts = []
        for name in names:
            rc = lib.tickcore_bars(p, name.encode(), ffi.NULL, 0)
            counts.append(max(rc, 0))
        total = sum(counts)
        rows = np.empty(total, BAR_DTYPE)
        sym_index = np.empty(total, np.int32)
        base = int(rows.ctypes.data)
        at = 0
        for i, (name, n) in enumerate(zip(names, counts)):
            if n:
                got = lib.tickcore_bars(p, name.encode(),
                                        ffi.cast("tickcore_bar_t *", base + at * BAR_DTYPE.itemsize), n)
                n = max(got, 0)
                sym_index[at:at + n] = i
                at += n
        rows, sym_index = rows[:at], sym_index[:at]
        if priced_only:
            keep = (rows["flags"] & BAR_NOPRICE) == 0
            rows, sym_index = rows[keep], sym_index[keep]
        bar_ns = self.summary()["bar_ns"]
        cols = {"symbol": pd.Categorical.from_codes(sym_index, categories=names),
                "k": rows["k"],
                "start": pd.to_timedelta(rows["k"].astype(np.int64) * bar_ns, unit="ns")}
        for f in ("open", "high", "low", "close"):
            cols[f] = rows[f] / PRICE_SCALE
        for f in ("vwap", "volume", "trades", "ret", "mid_ret", "flags"):
            cols[f] = rows[f]
        return pd.DataFrame(cols)

    def book(self, symbol, depth=10):
        """symbol's book at the end of the replay: a Book with .bid and .ask, each the best
        `depth` levels (price in dollars, shares, orders), best first."""
        p = self._ptr()
        sides = []
        raw = np.empty(depth, LEVEL_DTYPE)
        for side in (b"B", b"S"):
            n = _check(lib.tickcore_book(p, symbol.encode(), side,
                                         ffi.cast("tickcore_level_t *", raw.ctypes.data), depth),
                       p, f"book({symbol!r})")
            out = np.empty(n, _BOOK_DTYPE)
            out["price"] = raw["price"][:n] / PRICE_SCALE
            out["shares"] = raw["shares"][:n]
            out["orders"] = raw["orders"][:n]
            sides.append(out)
        return Book(symbol, sides[0], sides[1])

    def buffers(self):
        """The engine's result buffers: {name: (address, bytes)}."""
        p = self._ptr()
        n = _check(lib.tickcore_buffers(p, ffi.NULL, 0), p, "buffers")
        out = ffi.new("tickcore_buffer_t[]", max(n, 1))
        n = min(n, _check(lib.tickcore_buffers(p, out, n), p, "buffers"))
        return {ffi.string(out[i].name).decode(): (int(ffi.cast("uintptr_t", out[i].addr)),
                                                    out[i].bytes) for i in range(n)}

    def memory(self):
        """The engine's memory accounting (process-wide: every byte it owns is counted): live
        and peak bytes, allocations after the seal during this replay (0: the steady state
        allocated nothing), churn, peak RSS, and live/peak bytes per tag."""
        p = self._ptr()
        m = ffi.new("tickcore_memory_t *")
        lib.tickcore_memory(p, m)
        return {
            "backend": ffi.string(m.backend).decode(),
            "live_bytes": m.live_bytes, "peak_bytes": m.peak_bytes,
            "allocs": m.allocs, "frees": m.frees, "churn_allocs": m.churn_allocs,
            "allocs_after_seal": m.allocs_after_seal, "peak_rss": m.peak_rss,
            "tags": {ffi.string(m.tag[i].name).decode(): {"live_bytes": m.tag[i].live_bytes,
                                                          "peak_bytes": m.tag[i].peak_bytes,
                                                          "churn_allocs": m.tag[i].churn_allocs}
                     for i in range(m.ntags)},
        }

    def __repr__(self):
        if self.closed:
            return "<tickcore.Session closed>"
        pos = self.position()
        return f"<tickcore.Session {pos['state']}, {pos['messages']} messages>"


def _settings(settings, shortcuts, who):
    merged = {}
    for k, v in shortcuts.items():
        if k not in _SHORTCUTS:
            raise TypeError(f"{who}() got an unexpected keyword {k!r} "
                            f"(known: {', '.join(_SHORTCUTS)}; others: settings={{...}})")
        merged[_SHORTCUTS[k]] = v
    merged.update(settings or {})
    return merged


def session(*files, config=None, settings=None, **shortcuts):
    """A Session that has not run: s.step(n) through the files, or, without files, s.feed(data)
    with ITCH bytes; then s.finish() (or run()). Same arguments as replay()."""
    return Session(files, config=config, settings=_settings(settings, shortcuts, "session"),
                   run=False)


def replay(*files, config=None, settings=None, **shortcuts):
    """Replay files (ITCH 5.0, plain or gzip, or trades/quotes CSV) and return the Session.

    config: an INI file like config/tickcore.ini; settings: {"section.key": value, ...} as
    `tickcore replay --set`; shortcuts: window=, bar=, bar_history=, workers=, returns=,
    matrix_symbols=, max_symbols=, day_bars= (the day store: bars() and bars_frame() give every
    bar of the day, up to day_bars per symbol; memory day_symbols x day_bars x 80 bytes, counted
    in memory()["tags"]["engine"]), day_symbols= (default 1000)."""
    return Session(files, config=config, settings=_settings(settings, shortcuts, "replay"))
