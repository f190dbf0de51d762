#!/bin/sh
# run.sh: builds what the benchmarks need (cmake, into $BUILD) and runs them
# all in one go, printing one table with targets; it never fails on a slow
# figure (MISS is a result) and does not tune or change the product.
#
# usage: bench/run.sh            (from anywhere; BUILD defaults to build-bench,
#                                 relative to the repository root)
# env:   BUILD  build directory   CC  the C compiler (wfp-aot runs it, and so
#        does this script for the baselines, so that every ratio compares code
#        of one compiler; default wfp-aot's: clang where installed, else
#        cc)   STEPS  loop iterations (default 10000000)
#        KERNEL_N  the compute kernel's n (default 300000)
#        COMPILERS  the compilers of the side-by-side section (default
#        "gcc clang": those installed)
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build-bench}
case $BUILD in
/*) build=$BUILD ;;
*) build=$root/$BUILD ;;
esac
STEPS=${STEPS:-10000000}
KERNEL_N=${KERNEL_N:-300000}
COMPILERS=${COMPILERS:-gcc clang}
if [ -z "${CC:-}" ]; then
	if command -v clang >/dev/null 2>&1; then CC=clang; else CC=cc; fi
fi
export CC
K=3           # the value of ctx "k": the loop's output is STEPS * K
STEP_RUNS=3   # timed runs per stepper (median reported)
KERNEL_RUNS=5 # timed runs of the compute kernel, each side
COLD_RUNS=200 # in-process cold starts
PROC_RUNS=100 # whole wfp-host processes
AOT_RUNS=10   # wfp-aot --time runs, and cc runs of the one-line baseline

say() { printf '%s\n' "$*" >&2; }
die() {
	say "bench/run.sh: $*"
	exit 1
}

# ---- build ----
# Configuring again is cheap and makes sure the bench targets exist even in
# a build directory configured before bench/ had any.
say "== building into $build"
mkdir -p "$build"
log=$build/bench-build.log
cmake -S "$root" -B "$build" -DWFP_BUILD_BENCH=ON >"$log" 2>&1 ||
	{ cat "$log" >&2; die "cmake configure failed"; }
cmake --build "$build" -j2 --target wfp-aot wfp-host wfp-bench-step \
	wfp-bench-cold wfp-bench-proc wfp-bench-limit wfp-bench-kernel >>"$log" 2>&1 ||
	{ tail -40 "$log" >&2; die "build failed"; }

aot=$build/wfp-aot
host=$build/wfp-host
drv=$build/bench
out=$build/bench-out
mkdir -p "$out"

# "key value" lines of a driver's output -> value
get() { sed -n "s/^$1 //p" "$2" | head -n 1; }

# Other work on the machine inflates wall times: record the load around the
# measurements (Linux only; "?" elsewhere).
loadavg() { cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?"; }
load_before=$(loadavg)

# ---- compile the programs and the baselines ----
# A baseline .so of the C compiler $1 from bench/$2.c into $out/$3.so.
baseline() {
	# shellcheck disable=SC2086 # CC may hold flags
	$1 -O2 -shared -fPIC -fvisibility=hidden -I"$root/include" \
		-o "$out/$3.so" "$root/bench/$2.c" || die "$1 failed on bench/$2.c"
}
say "== compiling bench/loop.json, bench/kernel.json, examples/program.simple.json (-O2) and the baselines with $CC"
"$aot" -O2 "$root/bench/loop.json" -o "$out/loop.so" --emit-wasm "$out/loop.wasm" ||
	die "wfp-aot failed on bench/loop.json"
"$aot" -O2 "$root/bench/kernel.json" -o "$out/kernel.so" ||
	die "wfp-aot failed on bench/kernel.json"
"$aot" -O2 "$root/examples/program.simple.json" -o "$out/simple.so" ||
	die "wfp-aot failed on examples/program.simple.json"
baseline "$CC" native_stepper native_stepper
baseline "$CC" limit_stepper limit_stepper
baseline "$CC" kernel kernel_c

# ---- 1. effect round trip: wfp .so, the physical limit, the native stepper ----
say "== 1. effect round trip, $STEPS iterations: wfp .so"
"$drv/wfp-bench-step" "$out/loop.so" "$STEPS" "$K" "$STEP_RUNS" >"$out/step_wfp.txt" ||
	die "the wfp step benchmark failed"
say "== 1. effect round trip: the physical limit"
"$drv/wfp-bench-limit" "$out/limit_stepper.so" "$STEPS" "$K" "$STEP_RUNS" \
	>"$out/step_limit.txt" || die "the physical-limit benchmark failed"
say "== 1. effect round trip: native C stepper"
"$drv/wfp-bench-step" "$out/native_stepper.so" "$STEPS" "$K" "$STEP_RUNS" \
	>"$out/step_native.txt" || die "the native step benchmark failed"
wfp_ns=$(get ns_per_step_median "$out/step_wfp.txt")
lim_ns=$(get ns_per_step_median "$out/step_limit.txt")
nat_ns=$(get ns_per_step_median "$out/step_native.txt")
steps=$(get steps "$out/step_wfp.txt")
nat_steps=$(get steps "$out/step_native.txt")

# ---- 1b. the compute kernel: wfp (fuel on) vs the same C ----
say "== 1b. compute kernel, n = $KERNEL_N: wfp .so vs C, $KERNEL_RUNS runs each"
"$drv/wfp-bench-kernel" "$out/kernel.so" "$out/kernel_c.so" "$KERNEL_N" "$KERNEL_RUNS" \
	>"$out/kernel.txt" || die "the kernel benchmark failed"

# ---- 2. the same .wasm in V8 ----
v8_ns=
if command -v node >/dev/null 2>&1; then
	say "== 2. effect round trip: the same .wasm in Node $(node --version) (V8)"
	node "$root/bench/v8_stepper.mjs" "$out/loop.wasm" "$STEPS" "$K" "$STEP_RUNS" \
		>"$out/step_v8.txt" || die "the V8 step benchmark failed"
	v8_ns=$(get ns_per_step_median "$out/step_v8.txt")
	v8_steps=$(get steps "$out/step_v8.txt")
else
	say "== 2. skipped: node is not installed"
fi

# ---- 3. cold start ----
say "== 3. cold start in process, $COLD_RUNS runs"
"$drv/wfp-bench-cold" "$out/simple.so" "$COLD_RUNS" >"$out/cold.txt" ||
	die "the cold start benchmark failed"
say "== 3. cold start, whole wfp-host process, $PROC_RUNS runs"
if command -v hyperfine >/dev/null 2>&1; then
	proc_how="hyperfine -N, $PROC_RUNS runs, 5 warm-up"
	hyperfine -N --style none --warmup 5 --runs "$PROC_RUNS" \
		--export-json "$out/hyperfine.json" \
		"$host $out/simple.so --ctx n=41" >"$out/hyperfine.txt" 2>&1 ||
		{ cat "$out/hyperfine.txt" >&2; die "hyperfine failed"; }
	# seconds in the JSON ("median": 0.0007...) -> ms
	proc_ms=$(sed -n 's/^ *"median": *\([0-9.eE+-]*\),*$/\1/p' "$out/hyperfine.json" |
		head -n 1 | awk '{ printf "%.3f", $1 * 1000 }')
else
	proc_how="fork/exec loop (bench_proc.c), $PROC_RUNS runs, 1 warm-up"
	"$drv/wfp-bench-proc" spawn "$PROC_RUNS" "$host" "$out/simple.so" --ctx n=41 \
		>"$out/proc.txt" || die "the whole-process benchmark failed"
	proc_ms=$(get wall_ms_median "$out/proc.txt")
fi

# ---- 4. wfp-aot per stage, on new variants, against cc on one line ----
# Each run compiles a program of its own (program.simple.json adding
# 1000 + the run's number instead of 1), so that nothing the compiler may
# keep from earlier runs holds the whole answer.
i=0
while [ "$i" -le "$AOT_RUNS" ]; do
	sed "s/\"value\": 1}/\"value\": $((1000 + i))}/" "$root/examples/program.simple.json" \
		>"$out/variant-$i.json"
	i=$((i + 1))
done
grep -q '"value": 1000}' "$out/variant-0.json" || die "could not make the program's variants"
say "== 4. wfp-aot --time -O2 on $AOT_RUNS new variants of examples/program.simple.json"
# a cache of this run's own: the untimed first run fills it with what every
# variant shares (the guest runtime's units), and each timed run compiles
# what its variant changed, never what an earlier bench run left
rm -rf "$out/cache"
WFP_CACHE_DIR=$out/cache "$drv/wfp-bench-proc" aot "$AOT_RUNS" "$aot" -O2 --time \
	"$out/variant-%N.json" -o "$out/variant-%N.so" >"$out/aot.txt" ||
	die "the wfp-aot benchmark failed"
say "== 4. $CC -O2 -shared of one line of C, $AOT_RUNS runs"
echo 'int f(void) { return 42; }' >"$out/one.c"
# shellcheck disable=SC2086 # CC may hold flags
"$drv/wfp-bench-proc" spawn "$AOT_RUNS" $CC -O2 -shared -fPIC -o "$out/one.so" "$out/one.c" \
	>"$out/one.txt" || die "the C compiler baseline failed"
so_bytes=$(wc -c <"$out/simple.so" | tr -d ' ')
strip -o "$out/simple.stripped.so" "$out/simple.so" || die "strip failed"
so_stripped=$(wc -c <"$out/simple.stripped.so" | tr -d ' ')

# ---- 6. gcc and clang side by side: the step and the kernel ----
: >"$out/compilers.txt"
for c in $COMPILERS; do
	command -v "$c" >/dev/null 2>&1 || continue
	say "== 6. compilers: $c"
	CC=$c "$aot" -O2 "$root/bench/loop.json" -o "$out/loop-$c.so" || die "wfp-aot failed with CC=$c"
	CC=$c "$aot" -O2 "$root/bench/kernel.json" -o "$out/kernel-$c.so" || die "wfp-aot failed with CC=$c"
	baseline "$c" kernel "kernel_c-$c"
	baseline "$c" limit_stepper "limit-$c"
	"$drv/wfp-bench-step" "$out/loop-$c.so" "$STEPS" "$K" "$STEP_RUNS" >"$out/step-$c.txt" ||
		die "the step benchmark failed with $c"
	"$drv/wfp-bench-limit" "$out/limit-$c.so" "$STEPS" "$K" "$STEP_RUNS" >"$out/limit-$c.txt" ||
		die "the limit benchmark failed with $c"
	"$drv/wfp-bench-kernel" "$out/kernel-$c.so" "$out/kernel_c-$c.so" "$KERNEL_N" "$KERNEL_RUNS" \
		>"$out/kernel-$c.txt" || die "the kernel benchmark failed with $c"
	echo "$c" >>"$out/compilers.txt"
done

load_after=$(loadavg)

# ---- the table ----
# row NAME VALUE UNIT TARGET-TEXT CMP LIMIT: CMP is le/lt/- (no target)
row() {
	awk -v name="$1" -v val="$2" -v unit="$3" -v tgt="$4" -v cmp="$5" -v lim="$6" 'BEGIN {
		st = "-"
		if (val == "") { val = "n/a"; if (cmp != "-") st = "n/a" }
		else if (cmp == "le") st = (val + 0 <= lim + 0) ? "PASS" : "MISS"
		else if (cmp == "lt") st = (val + 0 < lim + 0) ? "PASS" : "MISS"
		printf "| %-46s | %12s %-5s | %-9s | %-6s |\n", name, val, unit, tgt, st
	}'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print ""; else printf "%.2f", a / b }'; }
kb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1024 }'; }

resolve() { p=$(command -v "$1" 2>/dev/null) && readlink -f "$p" 2>/dev/null || echo "$1"; }
# the first word of CC is the compiler
cc_word=$(printf '%s\n' "$CC" | awk '{ print $1 }')

{
	echo
	echo "wfp benchmarks ($(date -u '+%Y-%m-%d %H:%M UTC'))"
	echo
	printf '| %-46s | %18s | %-9s | %-6s |\n' "measure" "result" "target" "status"
	printf '|%s|%s|%s|%s|\n' "------------------------------------------------" \
		"--------------------" "-----------" "--------"
	row "1. round trip, wfp .so (-O2), ns/step" "$wfp_ns" "ns" "" - 0
	row "1. round trip, physical limit, ns/step" "$lim_ns" "ns" "" - 0
	row "1. ratio wfp / physical limit" "$(ratio "$wfp_ns" "$lim_ns")" "x" "<= 3.0" le 3
	row "1. round trip, native C stepper, ns/step" "$nat_ns" "ns" "" - 0
	row "1. ratio wfp / native stepper" "$(ratio "$wfp_ns" "$nat_ns")" "x" "<= 1.3" le 1.3
	row "1b. kernel, wfp .so (-O2, fuel on), ms" "$(get wfp_ms_median "$out/kernel.txt")" "ms" "" - 0
	row "1b. kernel, the same C, ms" "$(get c_ms_median "$out/kernel.txt")" "ms" "" - 0
	row "1b. ratio wfp / C" "$(ratio "$(get wfp_ms_median "$out/kernel.txt")" "$(get c_ms_median "$out/kernel.txt")")" "x" "<= 1.2" le 1.2
	row "2. round trip, same .wasm in V8, ns/step" "$v8_ns" "ns" "" - 0
	row "2. ratio wfp / V8" "$(ratio "$wfp_ns" "$v8_ns")" "x" "" - 0
	row "3. cold start in process, first run" "$(get first_us "$out/cold.txt")" "us" "< 100" lt 100
	row "3. cold start in process, median of $COLD_RUNS" "$(get median_us "$out/cold.txt")" "us" "< 100" lt 100
	row "3. new instance of a loaded module, median" "$(get inst_new_us_median "$out/cold.txt")" "us" "<= 5" le 5
	row "3. whole wfp-host process, median of $PROC_RUNS" "$proc_ms" "ms" "" - 0
	row "4. wfp-aot front end, median" "$(get stage_front_end_ms_median "$out/aot.txt")" "ms" "" - 0
	row "4. wfp-aot codegen (Binaryen), median" "$(get stage_codegen_ms_median "$out/aot.txt")" "ms" "" - 0
	row "4. wfp-aot wasm2c, median" "$(get stage_wasm2c_ms_median "$out/aot.txt")" "ms" "" - 0
	row "4. wfp-aot cc, median" "$(get stage_cc_ms_median "$out/aot.txt")" "ms" "" - 0
	row "4. wfp-aot whole command, median of $AOT_RUNS" "$(get wall_ms_median "$out/aot.txt")" "ms" "< 500" lt 500
	row "4. $cc_word -O2 -shared of one line, median" "$(get wall_ms_median "$out/one.txt")" "ms" "" - 0
	row "4. ratio wfp-aot / cc of one line" "$(ratio "$(get wall_ms_median "$out/aot.txt")" "$(get wall_ms_median "$out/one.txt")")" "x" "<= 3.0" le 3
	row "4. simple.so size, as written" "$(kb "$so_bytes")" "KiB" "" - 0
	row "4. simple.so size, stripped" "$(kb "$so_stripped")" "KiB" "<= 20" le 20
	while read -r c; do
		kw=$(get wfp_ms_median "$out/kernel-$c.txt")
		kc=$(get c_ms_median "$out/kernel-$c.txt")
		sw=$(get ns_per_step_median "$out/step-$c.txt")
		sl=$(get ns_per_step_median "$out/limit-$c.txt")
		row "6. $c: round trip, wfp, ns/step" "$sw" "ns" "" - 0
		row "6. $c: ratio wfp / physical limit" "$(ratio "$sw" "$sl")" "x" "<= 3.0" le 3
		row "6. $c: kernel, wfp / C ($kw / $kc ms)" "$(ratio "$kw" "$kc")" "x" "<= 1.2" le 1.2
	done <"$out/compilers.txt"
	echo
	echo "details:"
	echo "  steps per invocation: wfp $steps, native $nat_steps${v8_ns:+, V8 $v8_steps} (1 + $STEPS ctx reads + 1)"
	echo "  ns/step min..max over $STEP_RUNS runs: wfp $(get ns_per_step_min "$out/step_wfp.txt")..$(get ns_per_step_max "$out/step_wfp.txt"), limit $(get ns_per_step_min "$out/step_limit.txt")..$(get ns_per_step_max "$out/step_limit.txt"), native $(get ns_per_step_min "$out/step_native.txt")..$(get ns_per_step_max "$out/step_native.txt")${v8_ns:+, V8 $(get ns_per_step_min "$out/step_v8.txt")..$(get ns_per_step_max "$out/step_v8.txt")}"
	echo "  kernel: result $(get result "$out/kernel.txt") Collatz steps, the wfp invocation took $(get wfp_steps "$out/kernel.txt") steps and $(get wfp_fuel "$out/kernel.txt") fuel; min ms wfp $(get wfp_ms_min "$out/kernel.txt"), C $(get c_ms_min "$out/kernel.txt")"
	echo "  new instance: first $(get inst_new_us_first "$out/cold.txt") us, freeing one $(get inst_free_us_median "$out/cold.txt") us (median); new + first step + freed $(get inst_cycle_us_median "$out/cold.txt") us (median)"
	echo "  cold start up to the first step (load + first instance + first step), first / median: $(get cold_step_us_first "$out/cold.txt") / $(get cold_step_us_median "$out/cold.txt") us"
	echo "  cold start phases, first / median (us): load $(get first_load_us "$out/cold.txt") / $(get median_load_us "$out/cold.txt"), instantiate+run $(get first_run_us "$out/cold.txt") / $(get median_run_us "$out/cold.txt"), free+dlclose $(get first_free_us "$out/cold.txt") / $(get median_free_us "$out/cold.txt"); unmapped by dlclose each time: $(get unloaded_each_time "$out/cold.txt")"
	echo "  whole process timed with: $proc_how"
	echo "  wfp-aot whole command: min $(get wall_ms_min "$out/aot.txt") ms wall, median $(get cpu_ms_median "$out/aot.txt") ms CPU (user+sys, with its children); cc of one line: min $(get wall_ms_min "$out/one.txt") ms, median $(get cpu_ms_median "$out/one.txt") ms CPU"
	echo "  load average before / after: $load_before / $load_after (1-minute first; this run itself adds about 1, the rest is other work)"
	echo "  C compiler: '$CC' ($(resolve "$cc_word")) for wfp-aot and the baselines, -O2"
	echo "  outputs in $out"
}
