#!/usr/bin/env bash
# tests/cluster_stage.sh RESULTS BIN: make test's NATS cluster stages ("cluster" and "cluster-xs"
# lines in RESULTS), small enough for make test: tests/cluster_test.py's kill, restart and slow
# sections (publish always runs) and the whole tests/cluster_xs_test.py (publish, 4 shards, the
# join, a shard killed at 3 random points, a restarted node, a slow shard and its incomplete
# bars), on a 200,000-message day. Each script starts its own nats-server -js on a free loopback
# port with a temporary store, kills every process it started however it ends (a 150 s watchdog
# each), and is skipped, saying so, only when nats-server is absent. make test-cluster runs both
# whole on 400,000 messages (TICKCORE_CLUSTER_MESSAGES). Prints the stage's wall time last.
# Always exits 0: tests/summary.sh decides.
set -u
results=$1 bin=$2
cd "$(dirname "$0")/.."
start=$EPOCHREALTIME
export TICKCORE_CLUSTER_MESSAGES=200000 TICKCORE_CLUSTER_TIMEOUT=150
# make runs this in the background (Makefile): a SIGTERM is passed on to the running script,
# whose cleanup then stops its nats-server and shards
child=
trap '[ -n "$child" ] && kill -TERM "$child" 2>/dev/null; exit 1' TERM HUP
run() { "$@" & child=$!; wait "$child"; child=; }
TICKCORE_CLUSTER_SECTIONS=kill,restart,slow run tests/cluster_test.py "$results" "$bin"
TICKCORE_CLUSTER_SECTIONS= run tests/cluster_xs_test.py "$results" "$bin"
awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "cluster stage: %.1f s\n", b - a }'
exit 0
