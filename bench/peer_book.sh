#!/bin/sh
# peer_book.sh: tickcore's whole-process replay against a simple C++ ITCH order book builder on
# the same ITCH day, in the same run.
#
#   bench/peer_book.sh TICKCORE PEER [ITCH_FILE]
#
# TICKCORE  the tickcore binary (build it with make RELEASE=1: build/release/tickcore).
# PEER      where to get the peer's source: a directory or a git URL of a checkout of
#           charles-cooper/itch-order-book (https://github.com/charles-cooper/itch-order-book).
#           Nothing of it is in this repository: read its LICENSE before you build it. It is
#           copied (or cloned) into a temporary directory and built there with its own recipe,
#           $CXX -O3 -march=native -std=c++1y main.cpp bufferedreader.cpp (CXX: g++ by default;
#           PEER_CXXFLAGS adds flags). Its order table is sized by its own constant for the
#           largest order reference of a real NASDAQ day, which covers any day `tickcore gen`
#           writes.
# ITCH_FILE an uncompressed ITCH 5.0 BinaryFILE (the peer reads plain bytes from stdin). Default:
#           tickcore gen --messages $MESSAGES --symbols 500 --sectors 10 --seed 1 into the
#           temporary directory (MESSAGES: 20M).
#
# Each round runs, one after another: the peer (./peer < FILE), tickcore replay with the
# default number of workers, and tickcore replay --set pipeline.workers=1 (one shard worker:
# book and stats on one thread, beside the reader). Every run is a whole process, timed by
# /usr/bin/time: wall seconds and CPU seconds (user + sys). ROUNDS rounds (default 5); the
# figures are the medians, as messages per wall second and per CPU second, and the ratios to the
# peer. The file is read once before the first round so that every run finds it in the page
# cache. The peer prints its own figure too (it times from its first add order): shown as is.
# Exit status: 0 done, 1 a run failed, 2 usage or a missing tool. KEEP=1 keeps the temporary
# directory.
set -u

usage() {
    echo "usage: $0 TICKCORE PEER_DIR_OR_GIT_URL [ITCH_FILE]" >&2
    exit 2
}

[ $# -ge 2 ] && [ $# -le 3 ] || usage
TC=$1
PEER=$2
FILE=${3:-}
ROUNDS=${ROUNDS:-5}
MESSAGES=${MESSAGES:-20M}
CXX=${CXX:-g++}

[ -x "$TC" ] || { echo "peer_book.sh: $TC is not an executable (give the tickcore binary)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "peer_book.sh: /usr/bin/time is missing (apt-get install time)" >&2; exit 2; }
command -v "$CXX" >/dev/null 2>&1 || { echo "peer_book.sh: no C++ compiler $CXX (set CXX)" >&2; exit 2; }
if [ -n "$FILE" ] && [ ! -r "$FILE" ]; then
    echo "peer_book.sh: cannot read $FILE" >&2
    exit 2
fi

D=$(mktemp -d "${TMPDIR:-/tmp}/tickcore-peer-book.XXXXXX") || exit 1
if [ "${KEEP:-0}" = 1 ]; then
    echo "peer_book.sh: files kept in $D"
else
    trap 'rm -rf "$D"' EXIT
fi
trap 'exit 1' INT TERM

# ---- the peer, built outside the repository --------------------------------------------------
if [ -d "$PEER" ]; then
    cp -R "$PEER" "$D/peer" || exit 1
else
    git clone --quiet --depth 1 "$PEER" "$D/peer" || { echo "peer_book.sh: cannot clone $PEER" >&2; exit 1; }
fi
for f in main.cpp bufferedreader.cpp; do
    [ -f "$D/peer/$f" ] || { echo "peer_book.sh: $PEER has no $f (is it itch-order-book?)" >&2; exit 2; }
done
echo "peer: $PEER at $(git -C "$D/peer" rev-parse --short HEAD 2>/dev/null || echo '(not a git checkout)')"
# shellcheck disable=SC2086 # PEER_CXXFLAGS is a list of flags
(cd "$D/peer" && "$CXX" -O3 -march=native -std=c++1y ${PEER_CXXFLAGS:-} main.cpp bufferedreader.cpp \
    -o peer) || { echo "peer_book.sh: the peer does not build" >&2; exit 1; }
echo "peer build: $("$CXX" --version | head -1); -O3 -march=native -std=c++1y ${PEER_CXXFLAGS:-}"

# ---- the day ----------------------------------------------------------------------------------
if [ -z "$FILE" ]; then
    FILE="$D/day.itch"
    echo "gen: $MESSAGES messages, 500 symbols, seed 1 -> $FILE"
    "$TC" gen --messages "$MESSAGES" --symbols 500 --sectors 10 --seed 1 --no-truth --out "$FILE" \
        >/dev/null || { echo "peer_book.sh: tickcore gen failed" >&2; exit 1; }
fi
cat "$FILE" >/dev/null
MSGS=$("$TC" replay --json --decode-only "$FILE" 2>/dev/null |
    sed -n 's/.*"messages": *\([0-9][0-9]*\).*/\1/p' | head -1)
[ -n "$MSGS" ] || { echo "peer_book.sh: tickcore replay --decode-only $FILE failed" >&2; exit 1; }
echo "file: $FILE, $(wc -c <"$FILE") bytes, $MSGS messages; $(nproc) cores online; $ROUNDS rounds"

# ---- interleaved rounds -----------------------------------------------------------------------
# run NAME CMD...: one whole-process run; appends "wall cpu" to $D/NAME.times.
run() {
    name=$1
    shift
    if ! /usr/bin/time -f '%e %U %S' -o "$D/t" "$@" >"$D/$name.out" 2>"$D/$name.err"; then
        echo "peer_book.sh: $name failed:" >&2
        tail -5 "$D/$name.err" "$D/$name.out" >&2
        exit 1
    fi
    awk '{ printf "%s %.3f\n", $1, $2 + $3 }' "$D/t" >>"$D/$name.times"
}

r=1
while [ "$r" -le "$ROUNDS" ]; do
    run peer sh -c 'exec "$1" <"$2"' sh "$D/peer/peer" "$FILE"
    run tickcore "$TC" replay --json "$FILE"
    run tickcore_w1 "$TC" replay --json --set pipeline.workers=1 "$FILE"
    r=$((r + 1))
done

# median COLUMN FILE
median() {
    sort -g -k"$1","$1" "$2" | awk -v c="$1" '{ v[NR] = $c } END {
        if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

PW=$(median 1 "$D/peer.times")
PC=$(median 2 "$D/peer.times")
printf '\n%-34s %9s %9s %12s %12s %9s %9s\n' "median of $ROUNDS (whole process)" "wall s" "CPU s" \
    "M msg/s" "M msg/CPU s" "x peer" "x CPU"
for name in peer tickcore tickcore_w1; do
    W=$(median 1 "$D/$name.times")
    C=$(median 2 "$D/$name.times")
    case $name in
    peer) label="itch-order-book (C++, -O3 native)" ;;
    tickcore) label="tickcore replay (default workers)" ;;
    *) label="tickcore replay, pipeline.workers=1" ;;
    esac
    awk -v l="$label" -v w="$W" -v c="$C" -v m="$MSGS" -v pw="$PW" -v pc="$PC" 'BEGIN {
        printf "%-34s %9.2f %9.2f %12.2f %12.2f %9.2f %9.2f\n", l, w, c, m / w / 1e6, m / c / 1e6,
            pw / w, pc / c }'
done
echo
echo "x peer: the peer's wall time over this one's (above 1: faster); x CPU: the same for CPU time."
echo "all runs (wall CPU):"
for name in peer tickcore tickcore_w1; do
    echo "  $name: $(tr '\n' ';' <"$D/$name.times")"
done
echo "the peer's own last line: $(tail -1 "$D/peer.out")"
