#!/bin/sh
# runtime.sh: the runtime's rows of bench/README.md: many invocations in one
# host (wfp-host --batch) against one process per invocation, fan-outs,
# memory per sleeping invocation, steps per second on one and two worker
# threads. It builds what it needs (cmake, into $BUILD), prints one table
# and never fails on a slow figure (MISS is a result).
#
# usage: bench/runtime.sh        (BUILD defaults to build-bench)
# env:   BUILD  build directory  LINES  --batch lines of row 2 (100000)
#        MILLION  0 skips the 1,000,000 sleepers of row 4 (about 1 GB)
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build-bench}
case $BUILD in
/*) build=$BUILD ;;
*) build=$root/$BUILD ;;
esac
LINES=${LINES:-100000}
MILLION=${MILLION:-1}
PROC_RUNS=300

say() { printf '%s\n' "$*" >&2; }
die() {
	say "bench/runtime.sh: $*"
	exit 1
}
loadavg() { cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?"; }
ms() { date +%s%3N; }
# median of the numbers on stdin
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# wall ms of a command, its output to $out/last
timed() {
	t0=$(ms)
	"$@" >"$out/last" || die "failed: $*"
	echo $(($(ms) - t0))
}
# peak resident memory of a command, in KiB
peak_kb() {
	/usr/bin/time -f '%M' -o "$out/rss" "$@" >"$out/last" || die "failed: $*"
	cat "$out/rss"
}

say "== building into $build"
mkdir -p "$build"
log=$build/bench-build.log
cmake -S "$root" -B "$build" -DWFP_BUILD_BENCH=ON >"$log" 2>&1 ||
	{ cat "$log" >&2; die "cmake configure failed"; }
cmake --build "$build" -j2 --target wfp-aot wfp-host wfp-bench-proc >>"$log" 2>&1 ||
	{ tail -40 "$log" >&2; die "build failed"; }
aot=$build/wfp-aot
host=$build/wfp-host
out=$build/bench-out
mkdir -p "$out"
load_before=$(loadavg)
"$aot" -O2 "$root/examples/program.simple.json" -o "$out/simple.so" || die "wfp-aot failed"
"$aot" -O2 "$root/tests/e2e/programs/runtime.json" -o "$out/runtime.so" || die "wfp-aot failed"

# ---- 1. a fan-out of 50 rows that sleep 100 ms each ----
say "== 1. fan-out, 50 rows x sleep_ms(100), 5 runs"
fan_ms=$(for i in 1 2 3 4 5; do
	timed "$host" "$out/runtime.so" --fn fanSleep --arg n=50 --arg ms=100
done | median)

# ---- 2. invocations per second: --batch against a process each ----
say "== 2. --batch of $LINES lines of program.simple.json, workers 1 and 2"
python3 -c "import sys; sys.stdout.write('{}\n' * $LINES)" >"$out/lines"
b1=$(timed "$host" --batch "$out/lines" "$out/simple.so" --ctx n=41 --workers 1)
[ "$(wc -l <"$out/last")" -eq "$LINES" ] || die "--batch lost lines"
b2=$(timed "$host" --batch "$out/lines" "$out/simple.so" --ctx n=41 --workers 2)
say "== 2. one wfp-host process per invocation, $PROC_RUNS runs"
"$build/bench/wfp-bench-proc" spawn "$PROC_RUNS" "$host" "$out/simple.so" --ctx n=41 \
	>"$out/proc.txt" || die "wfp-bench-proc failed"
proc_ms=$(sed -n 's/^wall_ms_median //p' "$out/proc.txt")
ips1=$(awk -v n="$LINES" -v t="$b1" 'BEGIN { printf "%.0f", n / (t / 1000) }')
ips2=$(awk -v n="$LINES" -v t="$b2" 'BEGIN { printf "%.0f", n / (t / 1000) }')
ipsp=$(awk -v t="$proc_ms" 'BEGIN { printf "%.0f", 1000 / t }')
best=$(awk -v a="$ips1" -v b="$ips2" 'BEGIN { print (a > b) ? a : b }')
speedup=$(awk -v a="$best" -v b="$ipsp" 'BEGIN { printf "%.0f", a / b }')

# ---- 3. a fan-out of 10,000 rows ----
say "== 3. fan-out of 10,000 rows (each a call of work(1)), 3 runs"
rows_ms=$(for i in 1 2 3; do
	timed "$host" "$out/runtime.so" --fn fanWork --arg n=10000 --arg k=1
done | median)
rows_ps=$(awk -v t="$rows_ms" 'BEGIN { printf "%.0f", 10000 / (t / 1000) }')

# ---- 4. memory of invocations asleep at once ----
state=$("$host" "$out/runtime.so" --fn nap --arg ms=1 --trace 2>&1 >/dev/null |
	sed -n 's/.*"state_bytes":\([0-9]*\).*/\1/p' | head -1)
sleepers() { # N MS: peak KiB of N invocations asleep MS ms at once
	python3 -c "import sys; sys.stdout.write('{\"fn\":\"nap\",\"args\":[$2]}\n' * $1)" >"$out/naps"
	peak_kb "$host" --batch "$out/naps" "$out/runtime.so" --workers 1
}
per_inv() { # N KB BASE_KB: bytes per invocation beyond its state bytes
	awk -v n="$1" -v kb="$2" -v base="$3" -v s="$state" -v n0=1000 \
		'BEGIN { printf "%.0f", (kb - base) * 1024 / (n - n0) - s }'
}
say "== 4. 1,000 and 100,000 invocations asleep at once"
base_kb=$(sleepers 1000 3000)
k100=$(sleepers 100000 5000)
[ "$(wc -l <"$out/last")" -eq 100000 ] || die "sleepers lost lines"
m100=$(per_inv 100000 "$k100" "$base_kb")
m1m=
if [ "$MILLION" != 0 ]; then
	say "== 4. 1,000,000 invocations asleep at once"
	k1m=$(sleepers 1000000 40000)
	m1m=$(per_inv 1000000 "$k1m" "$base_kb")
fi

# ---- 5. steps per second on one and two worker threads ----
say "== 5. 64 invocations of work(20000000), fuel slice 100000: workers 1 and 2"
steps_each=$("$host" "$out/runtime.so" --fn work --arg n=20000000 --fuel-slice 100000 --report |
	sed -n 's/.*"steps":\([0-9]*\).*/\1/p')
python3 -c "import sys; sys.stdout.write('{\"fn\":\"work\",\"args\":[20000000]}\n' * 64)" >"$out/work"
w1=$(timed "$host" --batch "$out/work" "$out/runtime.so" --fuel-slice 100000 --workers 1)
w2=$(timed "$host" --batch "$out/work" "$out/runtime.so" --fuel-slice 100000 --workers 2)
# the control: two processes of one worker at once, the parallelism the
# machine gives (2.00 on two idle cores)
t0=$(ms)
"$host" --batch "$out/work" "$out/runtime.so" --fuel-slice 100000 --workers 1 >/dev/null &
bg=$!
"$host" --batch "$out/work" "$out/runtime.so" --fuel-slice 100000 --workers 1 >/dev/null
wait "$bg"
wc2=$(($(ms) - t0))
machine=$(awk -v a="$w1" -v b="$wc2" 'BEGIN { printf "%.2f", 2 * a / b }')
sps1=$(awk -v n="$steps_each" -v t="$w1" 'BEGIN { printf "%.0f", 64 * n / (t / 1000) }')
sps2=$(awk -v n="$steps_each" -v t="$w2" 'BEGIN { printf "%.0f", 64 * n / (t / 1000) }')
scale=$(awk -v a="$sps2" -v b="$sps1" 'BEGIN { printf "%.2f", a / b }')

load_after=$(loadavg)

row() { # NAME VALUE UNIT TARGET CMP LIMIT (CMP: le, ge or -)
	awk -v name="$1" -v val="$2" -v unit="$3" -v tgt="$4" -v cmp="$5" -v lim="$6" 'BEGIN {
		st = "-"
		if (val == "") { val = "n/a"; if (cmp != "-") st = "n/a" }
		else if (cmp == "le") st = (val + 0 <= lim + 0) ? "PASS" : "MISS"
		else if (cmp == "ge") st = (val + 0 >= lim + 0) ? "PASS" : "MISS"
		printf "| %-50s | %12s %-10s | %-10s | %-4s |\n", name, val, unit, tgt, st
	}'
}
echo
echo "| row | value | target | |"
echo "|---|---|---|---|"
row "1. fan-out, 50 rows x sleep 100 ms (was 5.0 s)" "$fan_ms" "ms" "< 500 ms" le 500
row "2. --batch, program.simple.json, --workers 1" "$ips1" "inv/s" "" - 0
row "2. --batch, program.simple.json, --workers 2" "$ips2" "inv/s" "" - 0
row "2. one wfp-host process per invocation" "$ipsp" "inv/s" "" - 0
row "2. --batch (best) / process per invocation" "$speedup" "x" ">= 100x" ge 100
row "3. fan-out of 10,000 rows" "$rows_ps" "rows/s" "" - 0
row "4. memory per sleeping invocation, 100,000" "$m100" "bytes" "< 1024" le 1023
row "4. memory per sleeping invocation, 1,000,000" "$m1m" "bytes" "< 1024" le 1023
row "5. steps/s, compute, --workers 1" "$sps1" "steps/s" "" - 0
row "5. steps/s, compute, --workers 2" "$sps2" "steps/s" "" - 0
row "5. --workers 2 / --workers 1" "$scale" "x" ">= 1.7x" ge 1.7
row "5. control: 2 processes of 1 worker / 1" "$machine" "x" "" - 0
echo
echo "details: $LINES lines in $b1 ms (1 worker), $b2 ms (2 workers); a process: $proc_ms ms;"
echo "10,000 rows in $rows_ms ms; state bytes of a sleeping nap: $state; peak RSS:"
echo "$base_kb KiB (1,000 asleep), $k100 KiB (100,000)${m1m:+, $k1m KiB (1,000,000)};"
echo "work: $steps_each steps each, 64 in $w1 ms (1 worker), $w2 ms (2 workers),"
echo "twice 64 in two processes of 1 worker at once: $wc2 ms;"
echo "cores: $(nproc); load average before: $load_before, after: $load_after"
