#!/usr/bin/env bash
# tests/integration.sh RESULTS TICKCORE: runs the real binary the way a user does and checks
# exit codes and reports. Appends "integration <case> P F 0" lines to RESULTS like run.sh.
set -u
results=$1 bin=$2
logdir=build/test-logs/integration
mkdir -p "$logdir"
pass=0 fail=0

check() { # check NAME EXPECTED_STATUS GREP_PATTERN -- COMMAND...
    local name=$1 want=$2 pattern=$3
    shift 4
    local log=$logdir/$name.log
    "$@" > "$log" 2>&1 < /dev/null
    local rc=$?
    if [ "$rc" -eq "$want" ] && { [ -z "$pattern" ] || grep -qE -- "$pattern" "$log"; }; then
        pass=$((pass + 1))
        printf '  %-11s %-40s ok\n' integration "$name"
        echo "integration $name 1 0 0" >> "$results"
    else
        fail=$((fail + 1))
        printf '  %-11s %-40s FAILED (exit %d, wanted %d; wanted /%s/)\n' integration "$name" \
            "$rc" "$want" "$pattern"
        tail -n 30 "$log" | sed 's/^/    /'
        echo "integration $name 0 1 0" >> "$results"
    fi
}

check selfcheck_clean 0 'leak check: OK, 0 live bytes in every tag' -- \
    "$bin" selfcheck --strict --items 2000000
check selfcheck_no_churn 0 'allocations while running \(after the seal\): 0 ' -- \
    "$bin" selfcheck --items 100000
check selfcheck_churn_is_caught 3 'churn site cli/cmd_selfcheck\.c:[0-9]+ \[engine\]: 1 allocations' -- \
    "$bin" selfcheck --strict --inject-churn --items 10000
check selfcheck_leak_is_caught 3 'LEAK: tag journal holds 1000 B in 1 blocks' -- \
    "$bin" selfcheck --strict --inject-leak --items 10000
check selfcheck_lenient_churn_reported 0 'allocations after the seal: 1 churn' -- \
    "$bin" selfcheck --inject-churn --items 10000
check selfcheck_json_leak_check '0' '"leak_check":"ok"' -- "$bin" selfcheck --json --items 10000
if command -v python3 > /dev/null; then
    check selfcheck_json_parses 0 '' -- \
        bash -c "'$bin' selfcheck --json --items 10000 | python3 -c 'import json,sys; json.load(sys.stdin)'"
fi
check selfcheck_under_valgrind_backend 0 'allocator: glibc malloc' -- \
    env TICKCORE_MEM_BACKEND=libc "$bin" selfcheck --strict --items 10000
# External truth: valgrind memcheck (which makes mem/ use glibc malloc, so it sees every block)
# must agree with the built-in leak check, both when it is clean and when it is not.
if command -v valgrind > /dev/null; then
    check memcheck_agrees_clean 0 'in use at exit: 0 bytes in 0 blocks' -- \
        valgrind --error-exitcode=1 --leak-check=full "$bin" selfcheck --strict --items 20000
    check memcheck_agrees_leak 0 'definitely lost: 1,000 bytes in 1 blocks' -- \
        valgrind --leak-check=full "$bin" selfcheck --inject-leak --items 20000
    check memcheck_leak_also_in_report 0 'LEAK: tag journal holds 1000 B in 1 blocks' -- \
        valgrind --leak-check=full "$bin" selfcheck --inject-leak --items 20000
fi
check usage_unknown_command 2 "unknown command 'frobnicate'" -- "$bin" frobnicate
check usage_bad_option 2 "^tickcore: selfcheck: unknown option --no-such-option \\(see tickcore selfcheck --help\\)$" -- "$bin" selfcheck --no-such-option
check usage_bad_number 2 "--items wants a positive integer, got 'ten'" -- "$bin" selfcheck --items ten
check help 0 'selfcheck' -- "$bin" --help

# ---- replay: the real NASDAQ samples, damaged files, CSV, generated days ----------------------
data=${TICKCORE_DATA:-tests/data}
aapl=$data/itch/nasdaq-20200130-aapl-10k.itch
tmp=$(mktemp -d /tmp/tickcore-integration-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
# Capacities small enough for valgrind and for a 2-core CI machine.
small=(--no-progress --set book.max_orders=200000 --set book.max_levels=100000
       --set symbols.max_symbols=2000 --set matrix.symbols=64)
if [ -f "$aapl" ]; then
    check replay_aapl_published_counts 0 \
        'A  add order +4758' -- "$bin" replay "${small[@]}" "$aapl"
    if command -v python3 > /dev/null; then
        check replay_aapl_json_every_type 0 '^ok$' -- bash -c "'$bin' replay --json ${small[*]} '$aapl' |
            python3 -c 'import json,sys; r=json.load(sys.stdin); t=r[\"by_type\"]
assert t=={\"A\":4758,\"D\":4083,\"E\":849,\"P\":240,\"L\":52,\"U\":7,\"X\":6,\"F\":2,\"R\":1,\"H\":1,\"Y\":1}, t
assert r[\"allocs_after_seal\"]==0 and r[\"memory\"][\"leak_check\"]==\"ok\"; print(\"ok\")'"
    fi
    gzip -c "$aapl" > "$tmp/aapl.itch.gz"
    check replay_aapl_gzip_by_content 0 'itch \(gzip\), 10000 messages' -- \
        "$bin" replay "${small[@]}" "$tmp/aapl.itch.gz"
    cp "$tmp/aapl.itch.gz" "$tmp/aapl-no-suffix"
    check replay_gzip_detected_by_magic 0 'A  add order +4758' -- \
        "$bin" replay "${small[@]}" "$tmp/aapl-no-suffix"
    head -c 300000 "$aapl" > "$tmp/truncated.itch"
    check replay_truncated_tail_keeps_prefix 1 \
        'byte 299997 \(message 9755\): truncated final message' -- \
        "$bin" replay "${small[@]}" "$tmp/truncated.itch"
    check replay_skip_bad_truncated_exits_0 0 '9754 messages' -- \
        "$bin" replay "${small[@]}" --skip-bad "$tmp/truncated.itch"
    check replay_aapl_strict_clean 0 'leak check: OK, 0 live bytes in every tag' -- \
        "$bin" replay "${small[@]}" --strict "$aapl"
    if command -v valgrind > /dev/null; then
        check replay_memcheck_clean 0 'in use at exit: 0 bytes in 0 blocks' -- \
            valgrind --error-exitcode=1 --leak-check=full "$bin" replay "${small[@]}" \
            --set book.max_orders=20000 --set book.max_levels=20000 "$aapl"
    fi
fi
if [ -f "$data/itch/nasdaq-20191230-directory-1k.itch" ]; then
    check replay_directory_993_symbols 0 'symbols: 993 in the table' -- \
        "$bin" replay "${small[@]}" "$data/itch/nasdaq-20191230-directory-1k.itch"
fi
if [ -f "$data/itch/ritch-obfuscated-zero-length.itch" ]; then
    check replay_zero_length_prefixes_refused 1 \
        'byte 0 \(message 1\): zero-length message' -- \
        "$bin" replay "${small[@]}" "$data/itch/ritch-obfuscated-zero-length.itch"
fi
: > "$tmp/empty.itch"
check replay_empty_file 1 'empty file \(0 bytes\)' -- "$bin" replay "${small[@]}" "$tmp/empty.itch"
# Unreadable inputs and config paths fail before start-up: one line on stderr naming the path and
# the errno text, nothing on stdout (an input file exits 1, a config 2).
only_stderr() { # only_stderr CMD...: exit status of CMD; prints "stdout empty" and stderr
    local out rc
    out=$("$@" 2> "$tmp/stderr")
    rc=$?
    [ -z "$out" ] && echo "stdout empty"
    echo "stderr lines: $(wc -l < "$tmp/stderr")"
    cat "$tmp/stderr"
    return $rc
}
check replay_missing_file 1 "^tickcore: replay: $tmp/no-such-file: No such file or directory$" -- \
    only_stderr "$bin" replay "${small[@]}" "$tmp/no-such-file"
check replay_missing_file_one_line 1 '^stderr lines: 1$' -- \
    only_stderr "$bin" replay "${small[@]}" "$tmp/empty.itch" "$tmp/no-such-file"
check replay_missing_file_no_stdout 1 '^stdout empty$' -- \
    only_stderr "$bin" replay "${small[@]}" "$tmp/no-such-file"
check replay_directory_input 1 "^tickcore: replay: $tmp: Is a directory$" -- \
    only_stderr "$bin" replay "${small[@]}" "$tmp"
# before start-up: the default capacities size ~230 MiB (books, stats); a missing second input
# must stop the run before any of it (peak RSS of the child well under 64 MiB)
if command -v python3 > /dev/null; then
    check replay_input_checked_before_startup 0 '^small$' -- python3 -c "
import resource, subprocess
r = subprocess.run(['$bin', 'replay', '--no-progress', '$tmp/empty.itch', '$tmp/no-such-file'],
                   capture_output=True)
m = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print('small' if r.returncode == 1 and m < 64 * 1024 and not r.stdout else (r.returncode, m))"
fi
check replay_config_directory_refused 2 "^tickcore: replay: config $tmp: Is a directory$" -- \
    only_stderr "$bin" replay --config "$tmp" "$tmp/empty.itch"
check replay_config_missing 2 "^tickcore: replay: config $tmp/none.ini: No such file or directory$" -- \
    only_stderr "$bin" replay --config "$tmp/none.ini" "$tmp/empty.itch"
check feed_missing_file 1 "^tickcore: feed: $tmp/no-such-file: No such file or directory$" -- \
    only_stderr "$bin" feed "$tmp/no-such-file" --to tcp://127.0.0.1:9
check feed_config_directory_refused 2 "^tickcore: feed: config $tmp: Is a directory$" -- \
    only_stderr "$bin" feed "$tmp/empty.itch" --to tcp://127.0.0.1:9 --config "$tmp"
# Usage errors: one line, the same shape for every command, exit 2, nothing on stdout.
for cmd in replay gen feed selfcheck; do
    check "usage_${cmd}_unknown_option" 2 \
        "^tickcore: $cmd: unknown option --x \\(see tickcore $cmd --help\\)$" -- \
        only_stderr "$bin" "$cmd" --x
    check "usage_${cmd}_unknown_option_one_line" 2 '^stderr lines: 1$' -- only_stderr "$bin" "$cmd" --x
done
check usage_replay_missing_value 2 \
    '^tickcore: replay: option --corr-out needs a value \(see tickcore replay --help\)$' -- \
    only_stderr "$bin" replay "$tmp/empty.itch" --corr-out
check usage_gen_missing_value 2 \
    '^tickcore: gen: option --messages needs a value \(see tickcore gen --help\)$' -- \
    only_stderr "$bin" gen --messages
check usage_replay_no_input 2 '^tickcore: replay: no input file \(see tickcore replay --help\)$' -- \
    only_stderr "$bin" replay --no-progress
printf 'hello,world\n1,2\n' > "$tmp/garbage.csv"
check replay_csv_garbage 1 "garbage.csv: line 1: expected header" -- \
    "$bin" replay "${small[@]}" "$tmp/garbage.csv"
# No quote in the input: no bid or ask. replay --json says null (as /v1/symbols does), not 0,
# and the last trade's price stays a number.
printf 'timestamp,symbol,price,size\n2020-01-30T14:30:00Z,AAA,10.5,100\n' > "$tmp/trades-only.csv"
if command -v python3 > /dev/null; then
    check replay_json_absent_bid_ask_null 0 '^ok$' -- bash -c "'$bin' replay --json ${small[*]} \
        '$tmp/trades-only.csv' | python3 -c 'import json,sys; t=json.load(sys.stdin)[\"analytics\"][\"top\"][0]
assert t[\"symbol\"]==\"AAA\" and t[\"bid\"] is None and t[\"ask\"] is None and t[\"last\"]==10.5, t; print(\"ok\")'"
fi
printf 'timestamp,symbol,price,size\n' > "$tmp/header-only.csv"
check replay_csv_header_only 0 '0 messages' -- "$bin" replay "${small[@]}" "$tmp/header-only.csv"
printf 'timestamp,symbol,price,size\n2024-01-02,AAA,10,5\nnot-a-time,AAA,10,5\n2024-01-03,AAA,-,5\n' \
    > "$tmp/bad-rows.csv"
check replay_csv_bad_rows_counted 0 'bad CSV rows: 2' -- \
    "$bin" replay "${small[@]}" "$tmp/bad-rows.csv"
check replay_csv_strict_stops 1 'bad-rows.csv: line 3' -- \
    "$bin" replay "${small[@]}" --strict "$tmp/bad-rows.csv"
printf '[book]\nmax_orders = 100\nmystery = 1\n' > "$tmp/bad.ini"
check replay_config_unknown_key 2 'bad.ini:3: unknown key .mystery. in section \[book\]' -- \
    "$bin" replay --config "$tmp/bad.ini" "$aapl"
check replay_print_config 0 '^bar_interval = 1m$' -- "$bin" replay --print-config
check replay_config_file_matches_defaults 0 '' -- \
    bash -c "diff <('$bin' replay --print-config) config/tickcore.ini"

# CSV daily closes: three symbols over 40 days; BBB = 2 x AAA (correlation 1), CCC = 1/AAA
# (correlation about -1): --bar 1d, daily returns, correlation written to a file.
awk 'BEGIN { srand(3); p = 100; print "timestamp,symbol,price,size";
    for (d = 0; d < 40; d++) { p *= exp((rand() - 0.5) * 0.04);
        ts = sprintf("2024-01-%02dT15:59:00Z", 1 + d % 28); if (d >= 28) ts = sprintf("2024-02-%02dT15:59:00Z", d - 27);
        printf "%s,AAA,%.4f,100\n%s,BBB,%.4f,100\n%s,CCC,%.4f,100\n", ts, p, ts, 2 * p, ts, 10000 / p } }' \
    > "$tmp/daily.csv"
check replay_csv_daily_correlation 0 '^AAA,1,(1|0\.999[0-9]*),-(1|0\.999[0-9]*)$' -- \
    bash -c "'$bin' replay ${small[*]} --bar 1d --corr-out '$tmp/corr.csv' '$tmp/daily.csv' \
    > /dev/null && cat '$tmp/corr.csv'"

# Daily closes against plain numpy (issue 14): several files (planted correlation, late starters,
# days without a trade); correlation = numpy.corrcoef of every log return and the MST total =
# Prim on sqrt(2(1-rho)), to 1e-9. The last day counts and a first close gives no return.
if /usr/bin/python3 -c 'import numpy' 2> /dev/null; then
    check replay_daily_matches_numpy 0 '^all ok$' -- /usr/bin/python3 tests/daily_test.py "$bin" "$tmp/daily"
fi

# A generated day: generator and decoder agree on the count, the analytics run, the steady state
# allocates nothing, and the correlation, MST and cluster files are written.
check gen_small_day 0 'messages' -- "$bin" gen --messages 300000 --symbols 50 --sectors 5 \
    --seed 11 --out "$tmp/day.itch"
check gen_replay_counts_agree 0 \
    'day.itch: itch, 300000 messages' -- \
    "$bin" replay "${small[@]}" --corr-out "$tmp/c.csv" --mst-out "$tmp/m.csv" \
    --clusters-out "$tmp/k.csv" "$tmp/day.itch"
check gen_replay_outputs_written 0 '^51 50 51$' -- bash -c \
    "echo \$(wc -l < '$tmp/c.csv') \$(wc -l < '$tmp/m.csv') \$(wc -l < '$tmp/k.csv')"
# --corr-out FILE.npy: NumPy format (base/npy), read back with numpy.load, equal to the CSV (which
# has 10 significant digits) and of the same shape.
numpy_py=
for py in python3 /usr/bin/python3; do
    if command -v "$py" > /dev/null && "$py" -c 'import numpy' 2> /dev/null; then numpy_py=$py; break; fi
done
if [ -n "$numpy_py" ]; then
    check corr_npy_loads_like_csv 0 '^same 50x50$' -- bash -c "'$bin' replay ${small[*]} \
        --corr-out '$tmp/c.npy' '$tmp/day.itch' > /dev/null && '$numpy_py' -c '
import csv, numpy as np
a = np.load(\"$tmp/c.npy\"); rows = list(csv.reader(open(\"$tmp/c.csv\")))
b = np.array([[float(x) for x in r[1:]] for r in rows[1:]])
assert a.dtype == np.float64 and not np.isfortran(a), a.dtype
print(\"same\" if a.shape == b.shape and np.allclose(a, b, rtol=1e-9, atol=1e-9) else (a.shape, b.shape),
      \"%dx%d\" % a.shape)'"
fi
# --bars-out and --book-out (engine/export) against naive references (tests/export_ref.py): bars
# recomputed from the --trades-out file of the same run; book snapshots from a dict-of-orders walk
# of the ITCH file; both files byte-identical with 1 and 2 workers; no allocation after the seal.
if command -v python3 > /dev/null; then
    check export_bars_naive_reference 0 '^ok [0-9]+$' -- bash -c "'$bin' replay ${small[*]} \
        --trades-out '$tmp/t.csv' --bars-out '$tmp/b.csv' '$tmp/day.itch' > /dev/null &&
        tests/export_ref.py bars '$tmp/t.csv' '$tmp/b.csv' 60000000000"
    check export_book_naive_reference 0 '^ok [0-9]+$' -- bash -c "'$bin' replay ${small[*]} \
        --set pipeline.workers=2 --book-out '$tmp/s.csv' --depth 3 --book-every 1m \
        '$tmp/day.itch' > /dev/null && tests/export_ref.py book '$tmp/day.itch' 3 60000000000 '$tmp/s.csv'"
    if [ -f "$aapl" ]; then
        check export_book_aapl_naive_reference 0 '^ok 2390$' -- bash -c "'$bin' replay ${small[*]} \
            --book-out '$tmp/sa.csv' --depth 5 --book-every 1m '$aapl' > /dev/null &&
            tests/export_ref.py book '$aapl' 5 60000000000 '$tmp/sa.csv'"
        check export_book_symbols_filter 0 '^same$' -- bash -c "'$bin' replay ${small[*]} \
            --book-out '$tmp/sb.csv' --depth 5 --book-symbols MSFT,AAPL '$aapl' > /dev/null &&
            cmp -s '$tmp/sa.csv' '$tmp/sb.csv' && '$bin' replay ${small[*]} --book-out '$tmp/sc.csv' \
            --book-symbols MSFT '$aapl' > /dev/null && [ \$(wc -l < '$tmp/sc.csv') = 1 ] && echo same"
    fi
fi
check export_k_invariant_no_churn 0 '^same$' -- bash -c "for k in 1 2; do '$bin' replay ${small[*]} \
    --strict --set pipeline.workers=\$k --bars-out $tmp/b\$k.csv --book-out $tmp/s\$k.csv \
    --depth 4 --book-every 30s '$tmp/day.itch' | grep -q 'after the seal): 0 ' || exit 1; done &&
    cmp -s '$tmp/b1.csv' '$tmp/b2.csv' && cmp -s '$tmp/s1.csv' '$tmp/s2.csv' && echo same"
check usage_replay_bad_book_every 2 "--book-every wants a duration" -- \
    "$bin" replay --book-every 0.5s --book-out "$tmp/x.csv" "$tmp/day.itch"
# pcap/pcapng captures of MoldUDP64 (ingest/capture): tests/pcap_write.py wraps a BinaryFILE in
# MoldUDP64 over Ethernet/IPv4/UDP (framing written from the specs), with an ARP packet and a
# heartbeat to skip; the capture replays exactly like the BinaryFILE (the --json results, the
# correlation, bars and book files); a dropped packet is one gap with its sequence range, a
# repeated one is dropped as duplicates.
if command -v python3 > /dev/null; then
    tests/pcap_write.py "$tmp/day.itch" "$tmp/day.pcap" > /dev/null
    tests/pcap_write.py "$tmp/day.itch" "$tmp/day.pcapng" --ng > /dev/null
    for f in day.itch day.pcap day.pcapng; do
        "$bin" replay --json "${small[@]}" --corr-out "$tmp/$f.corr.csv" --bars-out "$tmp/$f.bars.csv" \
            --book-out "$tmp/$f.book.csv" --depth 3 "$tmp/$f" > "$tmp/$f.json"
    done
    for f in day.pcap day.pcapng; do
        check "capture_${f#day.}_same_as_itch" 0 '^same$' -- bash -c "tests/replay_same.py \
            '$tmp/day.itch.json' '$tmp/$f.json' && for o in corr bars book; do
            cmp $tmp/day.itch.\$o.csv $tmp/$f.\$o.csv || exit 1; done"
    done
    check capture_format_reported 0 'day.pcapng: pcap, 300000 messages' -- \
        "$bin" replay "${small[@]}" "$tmp/day.pcapng"
    if [ -f "$aapl" ]; then
        tests/pcap_write.py "$aapl" "$tmp/gap.pcap" --drop 5 --dup 9 > "$tmp/gap.txt"
        check capture_gap_and_duplicates 0 '^ok$' -- bash -c "grep -q '^dropped 5 seq 170-212$' \
            '$tmp/gap.txt' && '$bin' replay --json ${small[*]} '$tmp/gap.pcap' | python3 -c '
import json, sys
f = json.load(sys.stdin)[\"files\"][0]; c = f[\"capture\"]
assert f[\"messages\"] == 10000 - 43, f[\"messages\"]
assert c[\"gaps\"] == 1 and c[\"gap_messages\"] == 43, c
assert c[\"gap_ranges\"] == [{\"from\": 170, \"to\": 212, \"count\": 43}], c
assert c[\"duplicates\"] == 44 and c[\"skipped_packets\"] == 1 and c[\"packets\"] == 228, c
print(\"ok\")'"
        check capture_gap_in_text_report 0 '1 gaps \(43 messages missing\): sequence 170-212' -- \
            "$bin" replay "${small[@]}" "$tmp/gap.pcap"
    fi
    head -c 5000 "$tmp/day.pcap" > "$tmp/cut.pcap"
    check capture_truncated_file_error 1 'cut.pcap: packet [0-9]+: truncated' -- \
        "$bin" replay "${small[@]}" "$tmp/cut.pcap"
fi
check gen_gzip_replays_the_same 0 'itch \(gzip\), 300000 messages' -- bash -c \
    "'$bin' gen --messages 300000 --symbols 50 --sectors 5 --seed 11 --gzip --out '$tmp/day.gz' \
     > /dev/null && '$bin' replay ${small[*]} --decode-only '$tmp/day.gz'"
check gen_replay_no_churn 0 'allocations while replaying \(after the seal\): 0 ' -- \
    "$bin" replay "${small[@]}" --strict "$tmp/day.itch"
check gen_bad_option 2 'messages' -- "$bin" gen --messages lots
# The memory table by tag only with --verbose; the summary and the leak check always.
check replay_memory_summary_only 0 '^no table$' -- bash -c "'$bin' replay ${small[*]} '$tmp/day.itch' |
    grep -q 'peak RSS: .*MiB' && '$bin' replay ${small[*]} '$tmp/day.itch' | grep -q 'leak check: OK' &&
    ! '$bin' replay ${small[*]} '$tmp/day.itch' | grep -q '^  tag  *allocs' && echo 'no table'"
check replay_memory_table_verbose 0 '^  tag +allocs +frees' -- \
    "$bin" replay "${small[@]}" --verbose "$tmp/day.itch"
# The progress line with --repeat: total = the file's bytes x 3, ending at 100%.
day_mb3=$(awk -v b="$(stat -c %s "$tmp/day.itch")" 'BEGIN { printf "%.1f", 3 * b / 1e6 }')
check replay_progress_repeat_total 0 " $day_mb3 / $day_mb3 MB 100\\.0%  pass 3/3 " -- bash -c \
    "'$bin' replay ${small[*]} --progress --repeat 3 '$tmp/day.itch' 2>&1 > /dev/null | tr '\\r' '\\n'"

# The pipeline: the same day with 1 and 2 workers writes the same correlation matrix, byte for byte.
check pipeline_k_invariant_corr 0 '^same$' -- bash -c "'$bin' replay ${small[*]} --set pipeline.workers=1 \
    --corr-out '$tmp/k1.csv' '$tmp/day.itch' > /dev/null && '$bin' replay ${small[*]} \
    --set pipeline.workers=2 --corr-out '$tmp/k2.csv' '$tmp/day.itch' > /dev/null &&
    cmp -s '$tmp/k1.csv' '$tmp/k2.csv' && echo same"
# SIGTERM mid-replay: the engine drains, tears down, reports, and leaks nothing.
"$bin" gen --messages 4M --symbols 200 --seed 5 --no-truth --out "$tmp/big.itch" > /dev/null
check replay_sigterm_clean_exit 0 'interrupted.*|leak check: OK, 0 live bytes in every tag' -- bash -c \
    "'$bin' replay ${small[*]} --speed 50x '$tmp/big.itch' > '$tmp/sig.out' 2>&1 & pid=\$!;
     sleep 1.5; kill -TERM \$pid; wait \$pid; rc=\$?; cat '$tmp/sig.out'; exit \$rc"
check replay_sigterm_reports_interrupted 0 '\(interrupted\)' -- cat "$tmp/sig.out"
check replay_sigterm_no_leak 0 'leak check: OK, 0 live bytes in every tag' -- cat "$tmp/sig.out"
# serve with HTTP on a non-loopback address and no http.token: a warning on stderr at start-up
# (as well as in server.log). Bounded: up to 20 s for "listening", then SIGTERM. No traffic is
# sent; the port is the kernel's free one. With a token, or on loopback, no warning.
serve_briefly() { # serve_briefly NAME --set ...: stderr (and the log) on stdout, serve's status
    local name=$1 port uport
    shift
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    uport=$(python3 -c 'import socket; s=socket.socket(type=socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$bin" serve --set http.port="$port" --set live.tcp_port=0 --set live.udp_port="$uport" \
        --set journal.path="$tmp/$name.journal" --set server.log="$tmp/$name.log" \
        --set book.max_orders=64K --set book.max_levels=16K --set symbols.max_symbols=1000 \
        --set matrix.symbols=16 --set graph.clusters=2 --set pipeline.workers=1 "$@" \
        > "$tmp/$name.out" 2> "$tmp/$name.err" < /dev/null &
    local pid=$! i
    for i in $(seq 200); do
        grep -q 'serve: listening' "$tmp/$name.log" 2> /dev/null && break
        kill -0 "$pid" 2> /dev/null || break
        sleep 0.1
    done
    kill -TERM "$pid" 2> /dev/null
    wait "$pid"
    local rc=$?
    echo "--- stderr"; cat "$tmp/$name.err"; echo "--- log"; cat "$tmp/$name.log"
    return $rc
}
if command -v python3 > /dev/null; then
    check serve_warns_public_http_without_token 0 \
        '^tickcore serve: warning: HTTP listens on 0\.0\.0\.0:[0-9]+ \(not loopback\) without http\.token' -- \
        serve_briefly pub --set http.addr=0.0.0.0
    check serve_public_http_warning_logged 0 'serve: warning: HTTP listens on 0\.0\.0\.0' -- \
        cat "$tmp/pub.log"
    check serve_no_warning_with_token_or_loopback 0 '^no warning$' -- bash -c \
        "$(declare -f serve_briefly); bin='$bin' tmp='$tmp';
         serve_briefly tok --set http.addr=0.0.0.0 --set http.token=s3cret > /dev/null || exit 1
         serve_briefly lo --set http.addr=127.0.0.5 > /dev/null || exit 1
         grep -h warning '$tmp/tok.err' '$tmp/tok.log' '$tmp/lo.err' '$tmp/lo.log' || echo 'no warning'"
fi
# Market pace: the AAPL sample spans 17,535 s of feed time; at 100000x that is at least 0.17 s.
if [ -f "$aapl" ] && command -v python3 > /dev/null; then
    check replay_speed_paces_by_timestamps 0 '^paced$' -- bash -c "'$bin' replay --json ${small[*]} \
        --speed 100000x '$aapl' | python3 -c 'import json,sys; r=json.load(sys.stdin);
print(\"paced\" if r[\"seconds\"] >= 0.17 else r[\"seconds\"])'"
fi
exit 0
