#!/usr/bin/env bash
# bench/cluster_join.sh [BIN] [MESSAGES] [SYMBOLS]: the cross-section join of a cluster on
# loopback (nats-server -js on a free port, temporary store). Figures, not pass/fail; the machine is shared, so read the ratios.
#
# (bench/cluster.sh measures the ITCH path's msg/s end to end; this one the join of bar rows.)
#   == bar-join latency (engine/xjoin, server/xsnode)
#      a day published with `feed --to nats://`, then for 2 and 4 shards: one cross-section node
#      (cluster.role=xsection) and the shards started together; printed: the seconds until the
#      node has joined every bar, and the node's own figures at exit (its log line): rows, parts,
#      incomplete, and the bar-join latency, from the last shard's row (its closed_ns, wall clock,
#      written when the shard's pipeline had the row) to the row pushed into the cross-section,
#      p50/p99/max, and the wait for the slowest shard (first part -> last part) p50/p99.
set -euo pipefail
BIN=$(readlink -f "${1:-build/release/tickcore}")
MESSAGES=${2:-2e6}
SYMBOLS=${3:-200}
command -v nats-server >/dev/null || { echo "bench/cluster_join.sh: nats-server is not installed (make deps)"; exit 0; }
TMP=$(mktemp -d /tmp/tickcore-bench-cluster-XXXXXX)
NATS_PID=
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -n "$NATS_PID" ] && kill "$NATS_PID" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
URL=nats://127.0.0.1:$PORT
nats-server -a 127.0.0.1 -p "$PORT" -js -sd "$TMP/js" >"$TMP/nats.log" 2>&1 &
NATS_PID=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break; sleep 0.05; done

"$BIN" gen --messages "$MESSAGES" --symbols "$SYMBOLS" --seed 3 --no-truth --out "$TMP/day.itch" >/dev/null
metric() { { curl -s "http://127.0.0.1:$1/metrics" || true; } | awk -v k="$2" '$1 == k {print $2}'; }

echo "== bar-join latency: $MESSAGES messages, $SYMBOLS symbols, 1-minute bars ($BIN)"
for N in 2 4; do
    S=B$N
    "$BIN" feed "$TMP/day.itch" --to "$URL" --quiet --fresh --set cluster.shards=$N \
        --set cluster.stream=$S --set cluster.subject=${S,,}
    COMMON=(--set cluster.nats=$URL --set cluster.shards=$N --set cluster.stream=$S
            --set cluster.subject=${S,,} --set cluster.rows_stream=R$N --set cluster.rows_subject=r$N
            --set live.tcp_port=0 --set live.udp_port=0 --set journal.path=
            --set matrix.symbols=$(( SYMBOLS < 512 ? 512 : SYMBOLS )) --set pipeline.workers=1)
    XH=$(free_port)
    "$BIN" serve "${COMMON[@]}" --set cluster.role=xsection --set http.port=$XH \
        --set server.log="$TMP/xs$N.log" >"$TMP/xs$N.out" 2>&1 &
    XPID=$!
    PIDS+=("$XPID")
    for _ in $(seq 200); do curl -sf "http://127.0.0.1:$XH/healthz" >/dev/null && break; sleep 0.05; done
    t0=$(date +%s.%N)
    SH=()
    for ((i = 0; i < N; i++)); do
        H=$(free_port)
        "$BIN" serve "${COMMON[@]}" --set cluster.shard=$i --set http.port=$H \
            --set server.log="$TMP/s$N.$i.log" >"$TMP/s$N.$i.out" 2>&1 &
        PIDS+=("$!")
        SH+=("$H")
    done
    # the day is joined when the node's rows stop growing and equal every shard's parts
    last=-1
    for _ in $(seq 1200); do
        sleep 0.1
        rows=$(metric "$XH" tickcore_xjoin_rows_total); rows=${rows:-0}
        parts=$(metric "${SH[0]}" tickcore_xrows_published_total); parts=${parts:-0}
        if [ "$rows" != 0 ] && [ "$rows" = "$parts" ] && [ "$rows" = "$last" ]; then break; fi
        last=$rows
    done
    t1=$(date +%s.%N)
    echo "$N shards: every bar joined $(echo "$t1 - $t0" | bc -l | cut -c1-6) s after the shards started ($rows rows)"
    kill "$XPID"; wait "$XPID" 2>/dev/null || true
    grep -o "cross-section: .*" "$TMP/xs$N.log" | sed 's/^/  /'
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done  # not nats-server
    PIDS=()
done
