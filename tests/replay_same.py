#!/usr/bin/env python3
"""tests/replay_same.py A.json B.json: two `tickcore replay --json` reports give the same results:
messages, by_type, symbols, and the analytics (books, stats, top symbols, cross-section) without
the timings. Prints "same" or the first difference (exit 1)."""
import json
import sys


def results(path):
    r = json.load(open(path))
    a = r["analytics"]
    xs = {k: v for k, v in (a.get("xsection") or {}).items() if k != "seconds"}
    return {"messages": r["messages"], "by_type": r["by_type"], "symbols": r["symbols"],
            "book": a["book"], "stats": a["stats"], "top": a["top"], "xsection": xs}


a, b = results(sys.argv[1]), results(sys.argv[2])
for k in a:
    if a[k] != b[k]:
        print("differs in %s:\n  %s\n  %s" % (k, a[k], b[k]))
        sys.exit(1)
print("same")
