#!/usr/bin/env bash
# bench/cluster.sh [BIN] [MESSAGES] [SYMBOLS] [ROUNDS]: messages per second end to end through
# NATS JetStream on loopback, beside the single-process replay of the same file in the same run.
#
# One generated day (MESSAGES, default 5e6; SYMBOLS, default 500). Its own nats-server -js on a
# free loopback port with a temporary store (removed at the end). For K = 2 and 4 shards: K
# `tickcore serve` shards (live listeners off, no journal) are started and wait on an empty
# stream; then one `tickcore feed --to nats://` publishes the day; the end-to-end time runs from
# the feed's start until every shard has applied its last message (its /healthz next_sequence
# stops at the count the feed placed on its subject: the sum over shards equals the feed's
# "copies"). Printed per round: the publisher's own msg/s, end to end msg/s (file messages /
# end-to-end seconds), and `tickcore replay` of the same file (msg/s, 1 worker and the default).
# ROUNDS (default 3) interleaves replay, K=2, K=4; medians at the end. Figures, not pass/fail.
set -euo pipefail
BIN=${1:-build/release/tickcore}
N=${2:-5e6}
SYMS=${3:-500}
ROUNDS=${4:-3}
BIN=$(realpath "$BIN")
command -v nats-server >/dev/null || { echo "bench/cluster.sh: nats-server is not installed (make deps)"; exit 2; }
TMP=$(mktemp -d /tmp/tickcore-bench-cluster.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ -n "${KEEP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/{print $2}') GiB;" \
     "$(nats-server --version); $("$BIN" --version 2>/dev/null | head -1 || echo tickcore)"
"$BIN" gen --messages "$N" --symbols "$SYMS" --sectors 10 --seed 7 --no-truth --out "$TMP/day.itch" >/dev/null
NPORT=$(port)
nats-server -a 127.0.0.1 -p "$NPORT" -js -sd "$TMP/js" >"$TMP/nats.log" 2>&1 &
PIDS+=($!)
URL=nats://127.0.0.1:$NPORT
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$NPORT") 2>/dev/null && break; sleep 0.05; done

replay_rate() { # workers ("" = default)
    local w=()
    [ -n "$1" ] && w=(--set "pipeline.workers=$1")
    "$BIN" replay --json "${w[@]}" "$TMP/day.itch" |
        python3 -c 'import json,sys; j=json.load(sys.stdin); print("%.0f" % (j["messages"] / j["seconds"]))'
}

# K shards + one feed; prints "publish_rate e2e_rate seconds"
cluster_run() {
    local k=$1 round=$2 stream="B${1}R${2}" ports=() pids=()
    local subj
    subj=$(echo "$stream" | tr 'A-Z' 'a-z')
    for s in $(seq 0 $((k - 1))); do
        local hp
        hp=$(port)
        ports+=("$hp")
        "$BIN" serve --set cluster.nats="$URL" --set cluster.shards="$k" --set cluster.shard="$s" \
            --set cluster.stream="$stream" --set cluster.subject="$subj" --set live.tcp_port=0 \
            --set live.udp_port=0 --set http.port="$hp" --set journal.path= \
            --set server.log="$TMP/shard$s.log" --set pipeline.workers=1 >"$TMP/shard$s.out" 2>&1 &
        pids+=($!)
        PIDS+=($!)
    done
    for hp in "${ports[@]}"; do
        for _ in $(seq 400); do curl -sf "http://127.0.0.1:$hp/healthz" >/dev/null && break; sleep 0.05; done
    done
    python3 - "$BIN" "$TMP/day.itch" "$URL" "$k" "$stream" "$subj" "${ports[@]}" <<'EOF'
import json, subprocess, sys, time, urllib.request
bin_, day, url, k, stream, subj = sys.argv[1:7]
ports = sys.argv[7:]
def seq(p):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{p}/healthz", timeout=5) as r:
            return json.loads(r.read())["next_sequence"] - 1
    except OSError:  # a refused or reset connection under load: ask again
        return 0
t0 = time.time()
f = subprocess.Popen([bin_, "feed", day, "--to", url, "--json", "--set", f"cluster.shards={k}",
                      "--set", f"cluster.stream={stream}", "--set", f"cluster.subject={subj}"],
                     stdout=subprocess.PIPE, text=True)
out, _ = f.communicate()
j = json.loads(out)
copies = j["copies"]
last, t_last = -1, time.time()
while True:
    done = sum(seq(p) for p in ports)
    if done >= copies:
        break
    if done != last:
        last, t_last = done, time.time()
    elif time.time() - t_last > 30:
        sys.exit(f"shards stuck at {done} of {copies} messages for 30 s (see the shard logs)")
    time.sleep(0.01)
t = time.time() - t0
print("%.0f %.0f %.3f" % (j["rate"], j["messages"] / t, t))
EOF
    for p in "${pids[@]}"; do kill "$p"; done
    for p in "${pids[@]}"; do wait "$p" || true; done
}

declare -a R1 RD P2 E2 P4 E4
printf '%-6s %14s %14s %16s %16s %16s %16s\n' round "replay w=1" "replay" "publish K=2" "e2e K=2" \
       "publish K=4" "e2e K=4"
for r in $(seq 1 "$ROUNDS"); do
    a=$(replay_rate 1)
    b=$(replay_rate "")
    read -r p2 e2 _ < <(cluster_run 2 "$r")
    read -r p4 e4 _ < <(cluster_run 4 "$r")
    R1+=("$a"); RD+=("$b"); P2+=("$p2"); E2+=("$e2"); P4+=("$p4"); E4+=("$e4")
    printf '%-6s %14s %14s %16s %16s %16s %16s\n' "$r" "$a" "$b" "$p2" "$e2" "$p4" "$e4"
done
med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '%-6s %14s %14s %16s %16s %16s %16s   (msg/s, %s messages, %s symbols)\n' median \
    "$(med "${R1[@]}")" "$(med "${RD[@]}")" "$(med "${P2[@]}")" "$(med "${E2[@]}")" \
    "$(med "${P4[@]}")" "$(med "${E4[@]}")" "$N" "$SYMS"
