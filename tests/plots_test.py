#!/usr/bin/python3
"""tests/plots_test.py RESULTS TICKCORE: `tickcore replay --plots DIR` end to end.

Generates a small day with a known truth (4 sectors), replays it with --plots, --json and the
--corr-out / --mst-out / --clusters-out files, and checks the pictures and the numbers behind
them against oracles that are not the plot code: the PNGs are parsed here (signature, chunk CRCs,
dimensions, enough distinct colours to be a picture); corr.dat must be the --corr-out matrix
permuted into order.csv's order, truth.dat the generator's truth file in that order, every
--clusters-out cluster one contiguous run of the order; pca.dat and loadings.dat must match
numpy's own eigen-decomposition of the --corr-out matrix; mst.dot must hold the --mst-out edges
and label exactly the highest-betweenness node of each cluster; latency.dat and stages.dat the
figures of the --json report; rss.dat the --rss-log samples with 0 allocations after the seal.
Then the same replay with a PATH that holds neither gnuplot nor sfdp: exit 0, a message naming
each Debian package, the data files written, no PNG.
Appends "plots <case> P F S" lines to RESULTS like tests/run.sh.
"""
import csv
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

RESULTS, BIN = sys.argv[1], os.path.abspath(sys.argv[2])
TMP = tempfile.mkdtemp(prefix="tickcore-plots-")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))
from stage import Stage  # noqa: E402

STAGE = Stage("plots", RESULTS)
record, check = STAGE.record, STAGE.check


def png_info(path):
    """(width, height, distinct colours) of an 8-bit RGB/RGBA PNG, parsed here; raises on a bad
    file (signature, chunk CRC, missing IEND)."""
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG signature")
    pos, idat, ihdr, end = 8, b"", None, False
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        (crc,) = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        if zlib.crc32(kind + body) != crc:
            raise ValueError(f"bad CRC in chunk {kind!r}")
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            end = True
        pos += 12 + n
    if not ihdr or not end:
        raise ValueError("no IHDR or IEND")
    w, h, depth, ctype = ihdr[:4]
    if depth != 8 or ctype not in (2, 6):
        return w, h, None
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = w * bpp
    colours, prev = set(), bytearray(stride)
    for y in range(h):
        ft, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):  # undo the PNG filters (RFC 2083 section 6)
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if ft == 1:
                line[i] = (line[i] + a) & 255
            elif ft == 2:
                line[i] = (line[i] + b) & 255
            elif ft == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ft == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        if y % 4 == 0:
            colours.update(bytes(line[i:i + 3]) for i in range(0, stride, bpp * 2))
        prev = line
    return w, h, len(colours)


def read_matrix_csv(path):
    with open(path) as f:
        rows = list(csv.reader(f))
    names = rows[0][1:]
    return names, {r[0]: dict(zip(names, r[1:])) for r in rows[1:]}


def run(args, env=None):
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)


def main():
    import numpy as np

    day = os.path.join(TMP, "day.itch")
    g = run([BIN, "gen", "--messages", "600000", "--symbols", "40", "--sectors", "4", "--seed", "3",
             "--out", day])
    if not check("gen_day", g.returncode == 0, g.stderr):
        return
    d = os.path.join(TMP, "plots")
    outs = {k: os.path.join(TMP, k + ".csv") for k in ("corr", "mst", "clusters")}
    rss = os.path.join(TMP, "rss.log")
    small = ["--no-progress", "--set", "book.max_orders=200000", "--set", "book.max_levels=100000",
             "--set", "symbols.max_symbols=2000", "--set", "matrix.symbols=64",
             "--set", "graph.clusters=4", "--bar", "10s"]
    r = run([BIN, "replay", "--json", "--strict", "--plots", d, "--rss-log", rss,
             "--corr-out", outs["corr"], "--mst-out", outs["mst"], "--clusters-out",
             outs["clusters"]] + small + [day])
    if not check("replay_plots_exit_0", r.returncode == 0, f"exit {r.returncode}: {r.stderr}"):
        return
    rep = json.loads(r.stdout)
    check("replay_plots_says_where", f"plots in {d}:" in r.stderr, r.stderr)

    # the PNGs: valid files of sensible size, not blank
    sizes = {"heatmap.png": (1200, 600), "mst.png": (300, 200), "pca.png": (1000, 300),
             "latency.png": (600, 300), "stages.png": (600, 300), "memory.png": (600, 400)}
    for name, (minw, minh) in sizes.items():
        path = os.path.join(d, name)
        try:
            w, h, ncol = png_info(path)
            ok = minw <= w <= 4000 and minh <= h <= 3000 and (ncol is None or ncol >= 4)
            check(f"png_{name[:-4]}", ok, f"{w}x{h}, {ncol} colours")
        except (OSError, ValueError, zlib.error) as e:
            check(f"png_{name[:-4]}", False, str(e))
    w, h, ncol = png_info(os.path.join(d, "heatmap.png"))
    check("png_heatmap_is_a_picture", ncol is not None and ncol > 100, f"{ncol} colours")

    # the order: clusters contiguous, the --clusters-out labels, the truth's sectors
    with open(os.path.join(d, "order.csv")) as f:
        order = list(csv.DictReader(f))
    with open(outs["clusters"]) as f:
        clusters = {row["symbol"]: row for row in csv.DictReader(f)}
    syms = [o["symbol"] for o in order]
    check("order_every_symbol_once", sorted(syms) == sorted(clusters), f"{syms} vs {list(clusters)}")
    check("order_clusters_match", all(o["cluster"] == clusters[o["symbol"]]["cluster"] for o in order))
    labels = [clusters[s]["cluster"] for s in syms]
    runs = [labels[0]] + [b for a, b in zip(labels, labels[1:]) if a != b]
    check("order_clusters_contiguous", len(runs) == len(set(runs)), f"{labels}")
    truth_names, truth = None, {}
    with open(day + ".truth.csv") as f:
        rows = [row for row in csv.reader(line for line in f if not line.startswith("#"))]
    hdr = rows[0]
    for row in rows[1:]:
        truth[row[0]] = {"sector": row[2], **dict(zip(hdr[6:], row[6:]))}
    check("order_sectors_from_truth", all(o["sector"] == truth[o["symbol"]]["sector"] for o in order))

    # corr.dat = --corr-out permuted (both round-trip doubles: equal exactly); truth.dat = the truth file permuted
    _, corr = read_matrix_csv(outs["corr"])
    with open(os.path.join(d, "corr.dat")) as f:
        cd = [line.split() for line in f]
    check("corr_dat_is_corr_out_in_order",
          len(cd) == len(syms) and all(float(cd[i][j]) == float(corr[a][b])
                                       for i, a in enumerate(syms)
                                       for j, b in enumerate(syms)))
    with open(os.path.join(d, "truth.dat")) as f:
        td = [[float(v) for v in line.split()] for line in f]
    check("truth_dat_is_truth_in_order",
          all(abs(td[i][j] - float(truth[a][b])) < 1e-9 for i, a in enumerate(syms)
              for j, b in enumerate(syms)))

    # PCA against numpy's eigen-decomposition of the same matrix
    m = np.array([[float(corr[a][b]) for b in syms] for a in syms])
    vals, vecs = np.linalg.eigh(m)
    vals, vecs = vals[::-1], vecs[:, ::-1]
    pca = np.loadtxt(os.path.join(d, "pca.dat"), ndmin=2)
    k = len(pca)
    check("pca_scree_matches_numpy", np.allclose(pca[:, 1], vals[:k] / np.trace(m), atol=1e-6),
          f"{pca[:, 1]} vs {vals[:k] / np.trace(m)}")
    check("pca_cumulative", np.allclose(pca[:, 2], np.cumsum(pca[:, 1]), atol=1e-9))
    ld = np.loadtxt(os.path.join(d, "loadings.dat"), usecols=(3, 4))
    ok = True
    for c in range(2):
        v = vecs[:, c] * (1 if vecs[:, c].sum() > 0 else -1)  # pca.h: components sum > 0
        ok = ok and np.allclose(ld[:, c], v, atol=1e-5)
    check("pca_loadings_match_numpy", ok)

    # the MST drawing: the --mst-out edges, one labelled hub per cluster (highest betweenness)
    dot = open(os.path.join(d, "mst.dot")).read()
    with open(outs["mst"]) as f:
        mst_edges = {frozenset((e["from"], e["to"])) for e in csv.DictReader(f)}
    dot_edges = {frozenset(p.strip().strip('"') for p in line.split("[")[0].split("--"))
                 for line in dot.splitlines() if " -- " in line}
    check("mst_dot_edges", dot_edges == mst_edges and len(mst_edges) == len(syms) - 1)
    hubs = {line.split()[0].strip('"') for line in dot.splitlines() if "label=\"" in line
            and " -- " not in line and not line.strip().startswith(("graph", "node"))}
    want = set()
    for c in set(labels):
        members = [s for s in syms if clusters[s]["cluster"] == c]
        want.add(max(members, key=lambda s: float(clusters[s]["betweenness"])))
    check("mst_dot_hubs", hubs == want, f"{hubs} vs {want}")

    # latency and stages: the report's figures
    pl = rep["analytics"]["pipeline"]
    lat = np.loadtxt(os.path.join(d, "latency.dat"), ndmin=2)
    check("latency_dat_counts", int(lat[:, 2].sum()) == pl["latency_ns"]["n"],
          f"{lat[:, 2].sum()} vs {pl['latency_ns']['n']}")
    check("latency_dat_buckets", all(lo < hi for lo, hi in lat[:, :2]) and
          lat[-1, 0] <= pl["latency_ns"]["max"] < lat[-1, 1])
    st = {row[0]: (float(row[1]), float(row[2])) for row in
          (line.split() for line in open(os.path.join(d, "stages.dat")) if not line.startswith("#"))}
    check("stages_dat", abs(st["reader"][0] - pl["reader_busy_s"]) < 1e-5 and
          abs(st["xsection"][0] - pl["xsection_busy_s"]) < 1e-5 and
          abs(st["worker0"][0] - pl["worker_busy_s"][0]) < 1e-5, f"{st} vs {pl}")

    # memory: the --rss-log samples, allocations after the seal 0 throughout
    rows = [line.split() for line in open(os.path.join(d, "rss.dat")) if not line.startswith("#")]
    check("rss_dat_is_rss_log", rows == [line.split() for line in open(rss)] and len(rows) >= 1)
    check("rss_dat_no_churn", all(len(r) == 4 and r[3] == "0" for r in rows) and
          rep["allocs_after_seal"] == 0)

    # without the tools: exit 0, a message naming each package, data written, no PNG
    empty = os.path.join(TMP, "empty-bin")
    os.makedirs(empty)
    d2 = os.path.join(TMP, "plots-no-tools")
    r2 = run([BIN, "replay", "--plots", d2] + small + [day], env={"PATH": empty})
    check("no_tools_exit_0", r2.returncode == 0, f"exit {r2.returncode}: {r2.stderr}")
    check("no_tools_names_gnuplot_package",
          "gnuplot not found on PATH: install the Debian package gnuplot-nox" in r2.stderr, r2.stderr)
    check("no_tools_names_graphviz_package",
          "sfdp not found on PATH: install the Debian package graphviz" in r2.stderr, r2.stderr)
    files = set(os.listdir(d2)) if os.path.isdir(d2) else set()
    check("no_tools_data_written", {"corr.dat", "order.csv", "mst.dot", "heatmap.gp"} <= files and
          not any(f.endswith(".png") for f in files), f"{sorted(files)}")


try:
    main()
finally:
    shutil.rmtree(TMP, ignore_errors=True)
sys.exit(STAGE.finish())
