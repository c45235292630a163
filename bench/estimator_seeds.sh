#!/usr/bin/env bash
# bench/estimator_seeds.sh [BIN] [DIR] [SEEDS]: the correlation estimators over several generated
# days, so that a default is chosen from more than one day's draw (issue 14). For each seed in
# SEEDS (default "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16") it generates a demo-sized day (10M
# messages, 500 symbols, 10 sectors) and a 2M-message, 100-symbol day in DIR (default
# build/bench-seeds; each day deleted once measured unless TICKCORE_KEEP_DAYS=1), replays both with
# each configuration of CONFIGS below (bar, window = the session, estimator, K, shrinkage; `auto`
# = the defaults) and appends one line per (seed, configuration) to DIR/seeds.tsv. Then prints,
# per configuration over the seeds: mean bias and its standard error, mean and worst mean |error|
# over the floor, and on how many days each target holds (|bias| <= 0.01, <= 1.25x the floor,
# ARI >= 0.95 on the demo-sized day, ARI >= 0.95 on the 2M/100 day, the first three together).
# TICKCORE_SEEDS_CONFIGS overrides CONFIGS (space-separated bar:window:estimator:K:shrinkage).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/tickcore}
dir=${2:-build/bench-seeds}
seeds=${3:-"1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16"}
configs=${TICKCORE_SEEDS_CONFIGS:-"1m:390:close:5:none 1m:390:twoscale:3:ledoit-wolf-block
1m:390:twoscale:4:ledoit-wolf-block 1m:390:twoscale:5:ledoit-wolf-block
1m:390:twoscale:6:ledoit-wolf-block 1m:390:subsample:5:ledoit-wolf-block
30s:780:close:5:none 30s:780:twoscale:8:ledoit-wolf-block 30s:780:twoscale:10:ledoit-wolf-block
5m:78:close:5:none 5m:78:twoscale:2:ledoit-wolf-block"}
mkdir -p "$dir"
out=$dir/seeds.tsv
for seed in $seeds; do
    demo=$dir/demo$seed.itch small=$dir/small$seed.itch
    [ -s "$demo" ] && [ -s "$demo.floor.csv" ] || "$bin" gen --messages 10M --symbols 500 --sectors 10 \
        --seed "$seed" --out "$demo" > /dev/null
    [ -s "$small" ] && [ -s "$small.floor.csv" ] || "$bin" gen --messages 2M --symbols 100 --sectors 10 \
        --seed "$seed" --out "$small" > /dev/null
    for c in $configs; do
        IFS=: read -r bar win est k shr <<< "$c"
        set_args=(--bar "$bar" --set matrix.window="$win")
        [ "$est" = auto ] || set_args+=(--set matrix.estimator="$est"
            --set matrix.subsample_grids="$k" --set matrix.shrinkage="$shr")
        d=$("$bin" replay --json --no-progress "${set_args[@]}" "$demo")
        s=$("$bin" replay --json --no-progress "${set_args[@]}" "$small")
        printf '%s\t%s\t%s\t%s\n' "$seed" "$c" \
            "$(printf '%s' "$d" | tr -d '\n')" "$(printf '%s' "$s" | tr -d '\n')" >> "$out"
    done
    [ "${TICKCORE_KEEP_DAYS:-0}" = 1 ] || rm -f "$demo" "$demo".*.csv "$small" "$small".*.csv
done
/usr/bin/python3 - "$out" << 'EOF'
import collections, json, math, sys
rows = collections.OrderedDict()
for line in open(sys.argv[1]):
    seed, c, d, s = line.rstrip("\n").split("\t")
    d, s = json.loads(d)["analytics"], json.loads(s)["analytics"]
    rows.setdefault(c, {})[int(seed)] = (d["truth"], s["truth"], d["xsection"]["estimator"],
                                         d["xsection"]["shrinkage"])
print("per configuration over the seeds (demo-sized days: 10M messages, 500 symbols, 10 sectors;"
      " small: 2M, 100 symbols)")
print("%-44s %4s %8s %6s %7s %7s %6s %6s %6s %6s %6s" % (
    "bar:window:estimator:K:shrinkage (ran as)", "days", "bias", "se", "xfloor", "worst",
    "bias", "err", "ARI", "ARI2M", "all3"))
for c, by in rows.items():
    v = list(by.values())
    n = len(v)
    b = [t["bias"] for t, _, _, _ in v]
    r = [t["mae_over_floor"] for t, _, _, _ in v]
    mb = sum(b) / n
    se = math.sqrt(sum((x - mb) ** 2 for x in b) / (n - 1) / n) if n > 1 else float("nan")
    ok_b = sum(abs(x) <= 0.01 for x in b)
    ok_r = sum(x <= 1.25 for x in r)
    ok_a = sum(t["ari"] >= 0.95 for t, _, _, _ in v)
    ok_s = sum(t["ari"] >= 0.95 for _, t, _, _ in v)
    ok3 = sum(abs(t["bias"]) <= 0.01 and t["mae_over_floor"] <= 1.25 and t["ari"] >= 0.95
              for t, _, _, _ in v)
    ran = "%s/%s" % (v[0][2], v[0][3])
    print("%-44s %4d %+8.4f %6.4f %7.3f %7.3f %6d %6d %6d %6d %6d" % (
        c + " (" + ran + ")" if c.split(":")[2] == "auto" else c, n, mb, se, sum(r) / n, max(r),
        ok_b, ok_r, ok_a, ok_s, ok3))
fl = [t["floor_bias"] for t, _, _, _ in next(iter(rows.values())).values()]
print("floor bias over the same days: mean %+.4f" % (sum(fl) / len(fl)))
EOF
