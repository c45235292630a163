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
# Also per round: CPU seconds (user + system, from /proc and the feed's rusage) per 10^6 file
# messages of nats-server, the feed, the K shards together and the busiest shard, the load average
# (1, 5, 15 min) at the round's end, and from their
# medians what the same code would do with a core per process. PROFILE=DIR records each cluster
# run with `perf record -a -g -e cpu-clock` into DIR/K<k>.<stream>.data (and .pids: who is who).
# FEED_SET="key=value ..." and SHARD_SET="key=value ..." add settings to the feed and the shards
# (e.g. FEED_SET=cluster.packet_bytes=1M for an A/B of two settings with the same binary).
# With each cluster run goes one cross-section node (`serve --set cluster.role=xsection`, started
# before the shards on the run's own rows stream): "joined" is file messages / time from the
# feed's start until the node has joined as many bar rows as the shards published, after the
# shards' end; the node's CPU per 10^6 messages and its bar-join latency line (p50/p99 from the
# last shard's row to the joined row) are printed too. XSECTION=0 runs the shards alone.
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
MPORT=$(port)
nats-server -a 127.0.0.1 -p "$NPORT" -m "$MPORT" -js -sd "$TMP/js" >"$TMP/nats.log" 2>&1 &
NPID=$!
PIDS+=($!)
URL=nats://127.0.0.1:$NPORT
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$NPORT") 2>/dev/null && break; sleep 0.05; done

SHARD_ARGS=()
for kv in ${SHARD_SET:-}; do SHARD_ARGS+=(--set "$kv"); done
XSECTION=${XSECTION:-1}
MATRIX=$(python3 -c "print(max(512, int(float('$SYMS'))))")
replay_rate() { # workers ("" = default)
    local w=()
    [ -n "$1" ] && w=(--set "pipeline.workers=$1")
    "$BIN" replay --json "${w[@]}" "$TMP/day.itch" |
        python3 -c 'import json,sys; j=json.load(sys.stdin); print("%.0f" % (j["messages"] / j["seconds"]))'
}

# K shards + one feed; prints "publish_rate e2e_rate seconds"
cluster_run() {
    local k=$1 round=$2 stream="B${1}R${2}" ports=() pids=() xp=0 xpid=0
    local subj
    subj=$(echo "$stream" | tr 'A-Z' 'a-z')
    local rows=(--set cluster.rows_stream="X$stream" --set cluster.rows_subject="x$subj"
                --set matrix.symbols="$MATRIX")
    if [ "$XSECTION" = 1 ]; then
        xp=$(port)
        "$BIN" serve --set cluster.nats="$URL" --set cluster.shards="$k" --set cluster.role=xsection \
            --set cluster.stream="$stream" --set cluster.subject="$subj" "${rows[@]}" \
            --set live.tcp_port=0 --set live.udp_port=0 --set http.port="$xp" --set journal.path= \
            --set server.log="$TMP/xs$stream.log" --set pipeline.workers=1 >"$TMP/xs$stream.out" 2>&1 &
        xpid=$!
        PIDS+=($!)
        for _ in $(seq 400); do curl -sf "http://127.0.0.1:$xp/healthz" >/dev/null && break; sleep 0.05; done
    fi
    for s in $(seq 0 $((k - 1))); do
        local hp
        hp=$(port)
        ports+=("$hp")
        "$BIN" serve --set cluster.nats="$URL" --set cluster.shards="$k" --set cluster.shard="$s" \
            --set cluster.stream="$stream" --set cluster.subject="$subj" --set live.tcp_port=0 \
            --set live.udp_port=0 --set http.port="$hp" --set journal.path= \
            --set server.log="$TMP/shard$s.log" --set pipeline.workers=1 "${rows[@]}" "${SHARD_ARGS[@]}" \
            >"$TMP/shard$s.out" 2>&1 &
        pids+=($!)
        PIDS+=($!)
    done
    for hp in "${ports[@]}"; do
        for _ in $(seq 400); do curl -sf "http://127.0.0.1:$hp/healthz" >/dev/null && break; sleep 0.05; done
    done
    local line
    line=$(python3 - "$BIN" "$TMP/day.itch" "$URL" "$k" "$stream" "$subj" "$NPID" "${pids[*]}" "$TMP" "$MPORT" "$xp" "$xpid" "${ports[@]}" <<'EOF'
import json, os, subprocess, sys, time, urllib.request
bin_, day, url, k, stream, subj, npid = sys.argv[1:8]
spids = sys.argv[8].split()
tmp, mport, xport, xpid = sys.argv[9:13]
ports = sys.argv[13:]
tck = os.sysconf("SC_CLK_TCK")
def cpu(pid):  # user + system CPU seconds of a process (all its threads)
    with open(f"/proc/{pid}/stat") as f:
        v = f.read().rsplit(")", 1)[1].split()
    return (int(v[11]) + int(v[12])) / tck
c0 = [cpu(p) for p in [npid] + spids]
x0 = cpu(xpid) if xport != "0" else 0.0
def metric(p, name):  # a counter of /metrics, 0 when absent or not answering
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{p}/metrics", timeout=5) as r:
            for line in r.read().decode().splitlines():
                f = line.split()
                if len(f) == 2 and f[0] == name:
                    return int(float(f[1]))
    except OSError:
        pass
    return 0
def seq(p):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{p}/healthz", timeout=5) as r:
            return json.loads(r.read())["next_sequence"] - 1
    except OSError:  # a refused or reset connection under load: ask again
        return 0
prof = os.environ.get("PROFILE")  # a folder: perf record -a of the run, and who is who
if prof:
    base = f"{prof}/K{k}.{stream}"
    perf = subprocess.Popen(["perf", "record", "-q", "-a", "-g", "-e", "cpu-clock", "-F", "499",
                             "-o", base + ".data"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    time.sleep(0.5)
t0 = time.time()
f = subprocess.Popen([bin_, "feed", day, "--to", url, "--json", "--set", f"cluster.shards={k}",
                      "--set", f"cluster.stream={stream}", "--set", f"cluster.subject={subj}"] +
                     [a for kv in os.environ.get("FEED_SET", "").split() for a in ("--set", kv)],
                     stdout=subprocess.PIPE, text=True)
if prof:
    with open(base + ".pids", "w") as o:
        o.write(f"nats-server {npid}\nfeed {f.pid}\n" +
                "".join(f"shard{i} {p}\n" for i, p in enumerate(spids)))
out = f.stdout.read()
_, status, ru = os.wait4(f.pid, 0)
f.returncode = os.waitstatus_to_exitcode(status)
feed_cpu = ru.ru_utime + ru.ru_stime
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
        if prof:
            perf.send_signal(2)
            perf.wait()
        with open(f"{tmp}/stuck.{stream}.txt", "w") as o:
            o.write("shard next_sequence - 1: %s\n" % [seq(p) for p in ports])
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{mport}/jsz?consumers=true",
                                            timeout=5) as r:
                    o.write(r.read().decode())
            except OSError as e:
                o.write(f"jsz: {e}\n")
        sys.exit(f"shards stuck at {done} of {copies} messages for 30 s (see the shard logs and stuck.{stream}.txt)")
    time.sleep(0.01)
t = time.time() - t0
tx, last, t_last = t, -1, time.time()
if xport != "0":  # the node has joined every row the shards published (they are all done)
    while True:
        parts = metric(ports[0], "tickcore_xrows_published_total")
        rows = metric(xport, "tickcore_xjoin_rows_total")
        if parts and rows >= parts:
            break
        if rows != last:
            last, t_last = rows, time.time()
        elif time.time() - t_last > 30:
            sys.exit(f"cross-section node stuck at {rows} of {parts} rows for 30 s (see {tmp}/xs{stream}.log)")
        time.sleep(0.01)
    tx = time.time() - t0
if prof:
    perf.send_signal(2)
    perf.wait()
c1 = [cpu(p) for p in [npid] + spids]
d = [b - a for a, b in zip(c0, c1)]
m = j["messages"] / 1e6  # CPU seconds per 10^6 file messages: nats-server, feed, the K shards
xc = (cpu(xpid) - x0) / m if xport != "0" else 0.0
print("%.0f %.0f %.3f %.3f %.3f %.3f %.3f %.0f %.3f" % (j["rate"], j["messages"] / t, t, d[0] / m,
                                                      feed_cpu / m, sum(d[1:]) / m, max(d[1:]) / m,
                                                      j["messages"] / tx, xc))
EOF
) || true
    for p in "${pids[@]}"; do kill "$p"; done
    for p in "${pids[@]}"; do wait "$p" || true; done
    if [ "$XSECTION" = 1 ]; then
        kill "$xpid"
        wait "$xpid" || true
        grep -o "cross-section: .*" "$TMP/xs$stream.log" | tail -1 >"$TMP/xs$stream.line" || true
    fi
    echo "$line"
}

declare -a R1 RD P2 E2 J2 P4 E4 J4 CN2 CF2 CS2 CM2 CX2 CN4 CF4 CS4 CM4 CX4
printf '%-6s %11s %11s %12s %12s %12s %12s %12s %12s   %s\n' round "replay w=1" "replay" "publish K=2" \
       "e2e K=2" "joined K=2" "publish K=4" "e2e K=4" "joined K=4" \
       "CPU s/10^6 msg K=2 | K=4: nats-server feed shards(sum) shard(max) node"
for r in $(seq 1 "$ROUNDS"); do
    a=$(replay_rate 1)
    b=$(replay_rate "")
    read -r p2 e2 _ cn2 cf2 cs2 cm2 j2 cx2 < <(cluster_run 2 "$r")
    [ "$XSECTION" = 1 ] && sed 's/^/  K=2 node: /' "$TMP/xsB2R$r.line" >&2
    read -r p4 e4 _ cn4 cf4 cs4 cm4 j4 cx4 < <(cluster_run 4 "$r")
    [ "$XSECTION" = 1 ] && sed 's/^/  K=4 node: /' "$TMP/xsB4R$r.line" >&2
    R1+=("$a"); RD+=("$b"); P2+=("$p2"); E2+=("$e2"); J2+=("$j2"); P4+=("$p4"); E4+=("$e4"); J4+=("$j4")
    CN2+=("$cn2"); CF2+=("$cf2"); CS2+=("$cs2"); CM2+=("$cm2"); CX2+=("$cx2")
    CN4+=("$cn4"); CF4+=("$cf4"); CS4+=("$cs4"); CM4+=("$cm4"); CX4+=("$cx4")
    printf '%-6s %11s %11s %12s %12s %12s %12s %12s %12s   %s %s %s %s %s | %s %s %s %s %s   load %s\n' \
        "$r" "$a" "$b" "$p2" "$e2" "$j2" "$p4" "$e4" "$j4" "$cn2" "$cf2" "$cs2" "$cm2" "$cx2" \
        "$cn4" "$cf4" "$cs4" "$cm4" "$cx4" "$(cut -d' ' -f1-3 /proc/loadavg)"
done
med() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '%-6s %11s %11s %12s %12s %12s %12s %12s %12s   %s %s %s %s %s | %s %s %s %s %s\n' median \
    "$(med "${R1[@]}")" "$(med "${RD[@]}")" "$(med "${P2[@]}")" "$(med "${E2[@]}")" \
    "$(med "${J2[@]}")" "$(med "${P4[@]}")" "$(med "${E4[@]}")" "$(med "${J4[@]}")" \
    "$(med "${CN2[@]}")" "$(med "${CF2[@]}")" "$(med "${CS2[@]}")" "$(med "${CM2[@]}")" \
    "$(med "${CX2[@]}")" "$(med "${CN4[@]}")" "$(med "${CF4[@]}")" "$(med "${CS4[@]}")" \
    "$(med "${CM4[@]}")" "$(med "${CX4[@]}")"
echo "(msg/s of $N messages, $SYMS symbols; CPU = user + system seconds per 10^6 file messages)"
# With a core per process: each process runs at 10^6 / (its CPU s per 10^6) msg/s at most, so
# the cluster runs at the slowest one's rate (assumes: the process is CPU-bound, its CPU per
# message does not grow with rate, one core is enough for its threads, loopback is free)
python3 - "$(med "${CN2[@]}")" "$(med "${CF2[@]}")" "$(med "${CM2[@]}")" "$(med "${CX2[@]}")" \
    "$(med "${CN4[@]}")" "$(med "${CF4[@]}")" "$(med "${CM4[@]}")" "$(med "${CX4[@]}")" <<'EOF'
import sys
v = [float(x) for x in sys.argv[1:]]
for k, (n, f, s, x) in ((2, v[0:4]), (4, v[4:8])):
    lim = {"nats-server": n, "feed": f, "a shard": s}
    if x > 0:
        lim["the node"] = x
    who = max(lim, key=lim.get)
    print("a core per process, K=%d: %s -> %.2f M msg/s end to end (bound by %s)" %
          (k, ", ".join("%s %.2f M msg/s" % (w, 1 / c) for w, c in lim.items()), 1 / lim[who], who))
EOF
