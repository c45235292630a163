#!/bin/sh
# peer.sh: tickcore against the pandas/numpy stack on the same data, in the same run.
#
#   bench/peer.sh TICKCORE [MESSAGES [SYMBOLS]]     (defaults 2e6 messages, 100 symbols)
#   bench/peer.sh TICKCORE --trades FILE.csv        (only the CSV-input comparison, on FILE)
#
# 1. `tickcore gen` writes a synthetic ITCH day into a temporary directory.
# 2. `tickcore replay --trades-out T.csv --json --corr-out C.csv --set matrix.returns=trade`
#    replays it and exports every trade it counted; bench/peer_pandas.py recomputes per-symbol
#    trades, volume, VWAP, last price, 1-minute bars and the correlation of bar returns from
#    T.csv with pandas/numpy (numpy.corrcoef: both replays set matrix.estimator=close, the
#    textbook computation; the default, auto, is twoscale at 1-minute bars), checks them
#    against the replay's figures and prints the seconds of both and their ratio (tickcore's
#    time there includes ITCH decoding and the order books).
# 3. `tickcore replay --bar 1m --json --corr-out C2.csv T.csv` reads the same trades CSV, and
#    pandas does the same on the same file: the like-for-like comparison.
# Exit status: 0 both agree, 1 a disagreement or a failed run, 2 usage or missing tool.
# Set KEEP=1 to keep the temporary directory. Python: /usr/bin/python3 (Debian's, which has
# python3-pandas and python3-numpy), or $PEER_PYTHON.
set -u

usage() {
    echo "usage: $0 TICKCORE [MESSAGES [SYMBOLS]] | $0 TICKCORE --trades FILE.csv" >&2
    exit 2
}

[ $# -ge 1 ] || usage
TC=$1
shift
TRADES=""
MESSAGES=2e6
SYMBOLS=100
if [ $# -ge 1 ] && [ "$1" = "--trades" ]; then
    [ $# -eq 2 ] || usage
    TRADES=$2
    [ -r "$TRADES" ] || { echo "peer.sh: cannot read $TRADES" >&2; exit 2; }
else
    [ $# -le 2 ] || usage
    [ $# -ge 1 ] && MESSAGES=$1
    [ $# -ge 2 ] && SYMBOLS=$2
fi

HERE=$(cd "$(dirname "$0")" && pwd)
PEER="$HERE/peer_pandas.py"
PY=${PEER_PYTHON:-/usr/bin/python3}

[ -x "$TC" ] || { echo "peer.sh: $TC is not an executable (give the tickcore binary)" >&2; exit 2; }
if ! "$PY" -c 'import pandas, numpy' 2>/dev/null; then
    echo "peer.sh: $PY cannot import pandas and numpy;" \
        "apt-get install python3-pandas python3-numpy (or set PEER_PYTHON)" >&2
    exit 2
fi
if [ -z "$TRADES" ] && ! "$TC" replay --help 2>&1 | grep -q -- '--trades-out'; then
    echo "peer.sh: $TC replay has no --trades-out option yet, so the trades it counted cannot be" \
        "exported for pandas. Wire it (ingest/csvout: csvout_trade for every trade the stats" \
        "count), or run: $0 $TC --trades FILE.csv for the CSV-input comparison only." >&2
    exit 2
fi

D=$(mktemp -d "${TMPDIR:-/tmp}/tickcore-peer.XXXXXX") || exit 1
if [ "${KEEP:-0}" = 1 ]; then
    echo "peer.sh: files kept in $D"
else
    trap 'rm -rf "$D"' EXIT
fi
trap 'exit 1' INT TERM

status=0

if [ -z "$TRADES" ]; then
    echo "== tickcore gen: $MESSAGES messages, $SYMBOLS symbols"
    "$TC" gen --messages "$MESSAGES" --symbols "$SYMBOLS" --out "$D/day.itch" >"$D/gen.txt" 2>&1 || {
        cat "$D/gen.txt" >&2
        echo "peer.sh: tickcore gen failed" >&2
        exit 1
    }
    echo "== ITCH replay exporting trades, then pandas on the trades"
    if ! "$TC" replay --trades-out "$D/T.csv" --json --top 1000 --corr-out "$D/C.csv" \
        --set matrix.returns=trade --set matrix.estimator=close "$D/day.itch" >"$D/R.json" \
        2>"$D/R.err"; then
        cat "$D/R.err" >&2
        echo "peer.sh: tickcore replay of the ITCH day failed (exit status above in $D/R.json)" >&2
        exit 1
    fi
    "$PY" "$PEER" --label "replay of the ITCH day" \
        "$D/T.csv" "$D/R.json" "$D/C.csv" || status=1
    TRADES="$D/T.csv"
    echo
fi

echo "== CSV replay of the trades file, and pandas on the same file"
if ! "$TC" replay --bar 1m --json --top 1000 --corr-out "$D/C2.csv" --set matrix.returns=trade \
    --set matrix.estimator=close "$TRADES" >"$D/R2.json" 2>"$D/R2.err"; then
    cat "$D/R2.err" >&2
    echo "peer.sh: tickcore replay of $TRADES failed" >&2
    exit 1
fi
"$PY" "$PEER" --label "replay of the trades CSV" "$TRADES" "$D/R2.json" "$D/C2.csv" || status=1

if [ $status -eq 0 ]; then
    echo "peer.sh: tickcore and pandas agree"
else
    echo "peer.sh: tickcore and pandas DISAGREE (see above)"
fi
exit $status
