#!/bin/sh
# service.sh: the service's rows of bench/README.md (wfp-host serve):
# durable steps per second with group commit (--fsync full, normal, off)
# and the transactions' sizes, the latency of a synchronous POST ?wait and
# invocations per second over HTTP, recovery of a store with 100,000
# pending invocations, and the long crash test. It builds what it needs
# (cmake, into $BUILD), prints one table and never fails on a slow figure
# (MISS is a result).
#
# usage: bench/service.sh        (BUILD defaults to build-bench)
# env:   BUILD  build directory  PENDING  pending invocations of row 4
#        (100000)  CRASH  0 skips the long crash test (row 5)
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build-bench}
case $BUILD in
/*) build=$BUILD ;;
*) build=$root/$BUILD ;;
esac
PENDING=${PENDING:-100000}
CRASH=${CRASH:-1}

say() { printf '%s\n' "$*" >&2; }
die() {
	say "bench/service.sh: $*"
	exit 1
}
loadavg() { cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?"; }
ms() { date +%s%3N; }

say "== building into $build"
mkdir -p "$build"
log=$build/bench-build.log
cmake -S "$root" -B "$build" -DWFP_BUILD_BENCH=ON >"$log" 2>&1 ||
	{ cat "$log" >&2; die "cmake configure failed"; }
cmake --build "$build" -j2 --target wfp-aot wfp-host wfp-bench-http >>"$log" 2>&1 ||
	{ tail -40 "$log" >&2; die "build failed"; }
aot=$build/wfp-aot
host=$build/wfp-host
load=$build/bench/wfp-bench-http
out=$build/bench-out/service
rm -rf "$out"
mkdir -p "$out"
load_before=$(loadavg)
"$aot" -O2 "$root/examples/program.simple.json" -o "$out/simple.so" || die "wfp-aot failed"
"$aot" -O2 "$root/bench/service.wfp" -o "$out/bench.so" || die "wfp-aot failed"

pid=
port=
# start DIR ARGS...: a service on a store in DIR; sets pid and port
start() {
	dir=$1
	shift
	mkdir -p "$dir"
	rm -f "$dir/port"
	"$host" serve --listen 127.0.0.1:0 --store "$dir/store.db" "$@" >"$dir/out" 2>"$dir/err" &
	pid=$!
	i=0
	until grep -q '^listening on' "$dir/out" 2>/dev/null; do
		kill -0 "$pid" 2>/dev/null || die "the service did not start: $(cat "$dir/err")"
		i=$((i + 1))
		[ $i -lt 6000 ] || die "no 'listening on' line"
		sleep 0.01
	done
	port=$(sed -n 's/^listening on http:\/\/127.0.0.1:\([0-9]*\)$/\1/p' "$dir/out")
}
stop() { kill -TERM "$pid" && wait "$pid" || true; }
metric() { # NAME: its value from /metrics
	curl -s "http://127.0.0.1:$port/metrics" | awk -v n="$1" '$1 == n { print $2 }'
}
# wait_done N: until N invocations are done
wait_done() {
	until [ "$(metric 'wfp_invocations{status="done"}')" -ge "$1" ]; do sleep 0.02; done
}

# ---- 1. durable steps per second: 200 invocations of 1,000 steps each ----
INV=200
STEPS=1000
for sync in full normal off; do
	say "== 1. durable steps, --fsync $sync: $INV invocations x $STEPS ctx.set"
	start "$out/steps-$sync" --fsync "$sync" --ctx bench=0 "$out/bench.so"
	t0=$(ms)
	"$load" "$port" POST /v1/invocations "{\"fn\":\"steps\",\"args\":[$STEPS]}" "$INV" 8 \
		>"$out/steps-$sync/post" || die "posting failed"
	wait_done "$INV"
	t=$(($(ms) - t0))
	ops=$(metric wfp_commit_batch_size_sum)
	txns=$(metric wfp_commit_batch_size_count)
	stop
	eval "steps_$sync=\$(awk -v n=$((INV * STEPS)) -v t=$t 'BEGIN { printf \"%.0f\", n / (t / 1000) }')"
	eval "batch_$sync=\$(awk -v o=$ops -v x=$txns 'BEGIN { printf \"%.1f\", o / x }')"
	eval "txps_$sync=\$(awk -v x=$txns -v t=$t 'BEGIN { printf \"%.0f\", x / (t / 1000) }')"
done

# ---- 2. a synchronous POST ?wait of program.simple.json ----
say "== 2. POST ?wait of program.simple.json: 2,000 on one connection"
start "$out/sync" --ctx n=41 "$out/simple.so"
"$load" "$port" POST "/v1/invocations?wait=10000" '{"fn":"main"}' 200 1 >/dev/null
"$load" "$port" POST "/v1/invocations?wait=10000" '{"fn":"main"}' 2000 1 >"$out/sync/one" ||
	die "wait failed"
grep -q "status_200 2000" "$out/sync/one" || die "not all 200: $(cat "$out/sync/one")"
p50=$(awk '{ for (i = 1; i < NF; i++) if ($i == "p50_us") print $(i + 1) }' "$out/sync/one")
p99=$(awk '{ for (i = 1; i < NF; i++) if ($i == "p99_us") print $(i + 1) }' "$out/sync/one")
say "== 3. invocations per second over HTTP: 20,000 POSTs on 8 connections"
"$load" "$port" POST "/v1/invocations?wait=10000" '{"fn":"main"}' 20000 8 >"$out/sync/eight" ||
	die "wait x8 failed"
ips_wait=$(awk '{ for (i = 1; i < NF; i++) if ($i == "per_second") print $(i + 1) }' \
	"$out/sync/eight")
before=$(metric 'wfp_invocations{status="done"}')
t0=$(ms)
"$load" "$port" POST /v1/invocations '{"fn":"main"}' 20000 8 >"$out/sync/async" ||
	die "async failed"
ips_accept=$(awk '{ for (i = 1; i < NF; i++) if ($i == "per_second") print $(i + 1) }' \
	"$out/sync/async")
wait_done $((before + 20000))
ips_end=$(awk -v t=$(($(ms) - t0)) 'BEGIN { printf "%.0f", 20000 / (t / 1000) }')
stop

# ---- 4. recovery of a store with many pending invocations ----
say "== 4. recovery: $PENDING invocations asleep for an hour in the store"
start "$out/rec" "$out/bench.so"
"$load" "$port" POST /v1/invocations '{"fn":"sleeper","args":[3600000]}' "$PENDING" 8 \
	>"$out/rec/post" || die "posting failed"
until [ "$(metric wfp_live_invocations)" -ge "$PENDING" ]; do sleep 0.05; done
sleep 1 # their sleeps' records commit
kill -KILL "$pid"
wait "$pid" 2>/dev/null || true
store_mb=$(du -sm "$out/rec" | cut -f1)
t0=$(ms)
start "$out/rec" "$out/bench.so"
rec_ms=$(($(ms) - t0))
rec_n=$(sed -n 's/.*"recovered":\([0-9]*\).*/\1/p' "$out/rec/err" | tail -1)
rss_kb=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status")
stop

# ---- 5. the long crash test ----
crash_line=
if [ "$CRASH" != 0 ]; then
	say "== 5. the crash test: 1,000 invocations, 20 kills"
	mkdir -p "$out/crash-so"
	for p in crash; do
		"$aot" "$root/tests/service/programs/$p.wfp" -o "$out/crash-so/$p.so"
	done
	crash_line=$(WFP_HOST=$host SO=$out/crash-so WORK=$out python3 \
		"$root/tests/service/crash.py" --jobs 1000 --kills 20 | tail -1) ||
		die "the crash test failed"
fi

load_after=$(loadavg)
row() { # NAME VALUE UNIT TARGET CMP LIMIT (CMP: le, ge or -)
	awk -v name="$1" -v val="$2" -v unit="$3" -v tgt="$4" -v cmp="$5" -v lim="$6" 'BEGIN {
		st = "-"
		if (val == "") { val = "n/a"; if (cmp != "-") st = "n/a" }
		else if (cmp == "le") st = (val + 0 <= lim + 0) ? "PASS" : "MISS"
		else if (cmp == "ge") st = (val + 0 >= lim + 0) ? "PASS" : "MISS"
		printf "| %-52s | %12s %-10s | %-12s | %-4s |\n", name, val, unit, tgt, st
	}'
}
echo
echo "| row | value | target | |"
echo "|---|---|---|---|"
row "1. durable steps/s, --fsync full" "$steps_full" "steps/s" ">= 20,000" ge 20000
row "1. records per transaction, --fsync full" "$batch_full" "" "" - 0
row "1. transactions/s, --fsync full" "$txps_full" "txn/s" "" - 0
row "1. durable steps/s, --fsync normal" "$steps_normal" "steps/s" "" - 0
row "1. records per transaction, --fsync normal" "$batch_normal" "" "" - 0
row "1. durable steps/s, --fsync off" "$steps_off" "steps/s" "" - 0
row "1. records per transaction, --fsync off" "$batch_off" "" "" - 0
row "2. POST ?wait, program.simple.json, p50" "$p50" "us" "" - 0
row "2. POST ?wait, program.simple.json, p99" "$p99" "us" "" - 0
row "3. invocations/s, POST ?wait, 8 connections" "$ips_wait" "inv/s" "" - 0
row "3. invocations/s accepted (202), 8 connections" "$ips_accept" "inv/s" "" - 0
row "3. invocations/s, 202 to done, 8 connections" "$ips_end" "inv/s" "" - 0
row "4. recovery, $rec_n pending invocations" "$rec_ms" "ms" "" - 0
row "4. resident memory after it" "$((rss_kb / 1024))" "MiB" "" - 0
echo
echo "details: row 1 is $INV invocations of $STEPS ctx.set each (a record per step,"
echo "committed with its write), from the first POST to the last end; the store"
echo "of row 4 is $store_mb MiB on disk; row 5: ${crash_line:-skipped};"
echo "cores: $(nproc); load average before: $load_before, after: $load_after"
