#!/bin/sh
# cluster.sh: the PostgreSQL rows of bench/README.md (several wfp-host
# serve on one store, CONTRACT section 7): invocations per second with 1, 2
# and 4 hosts on one store over loopback, durable steps per second on 1 and
# 2 hosts, and the time another host takes to finish a killed host's
# invocations (lease takeover). It starts a throwaway PostgreSQL cluster
# (tests/service/pg.py: initdb and pg_ctl into the build directory, a Unix
# socket, fsync off) and stops it at the end. It builds what it needs
# (cmake, into $BUILD), prints one table and never fails on a slow figure.
#
# usage: bench/cluster.sh        (BUILD defaults to build-bench)
# env:   BUILD  build directory   N  invocations of row 1 (20000)
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build-bench}
case $BUILD in
/*) build=$BUILD ;;
*) build=$root/$BUILD ;;
esac
N=${N:-20000}

say() { printf '%s\n' "$*" >&2; }
die() {
	say "bench/cluster.sh: $*"
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
out=$build/bench-out/cluster
pgdir=$out/pg
pids=
cleanup() {
	for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
	python3 "$root/tests/service/pg.py" stop "$pgdir" >/dev/null 2>&1 || true
}
trap cleanup EXIT INT TERM
rm -rf "$out"
mkdir -p "$out"
load_before=$(loadavg)
"$aot" -O2 "$root/examples/program.simple.json" -o "$out/simple.so" || die "wfp-aot failed"
"$aot" -O2 "$root/bench/service.wfp" -o "$out/bench.so" || die "wfp-aot failed"
python3 "$root/tests/service/pg.py" start "$pgdir" >"$out/pg.log" 2>&1 ||
	die "no PostgreSQL cluster: $(cat "$out/pg.log")"
base=$(cat "$pgdir/url")
psql_() { psql -X -q -t -A -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }
newdb() { # NAME: a fresh database; its URL
	psql_ "$base" "DROP DATABASE IF EXISTS $1" >/dev/null 2>&1
	psql_ "$base" "CREATE DATABASE $1" >/dev/null
	echo "$base" | sed "s|postgresql:///postgres?|postgresql:///$1?|"
}
done_count() { psql_ "$1" "select count(*) from wfp.wfp_invocations where status = 1"; }

# start NAME URL ARGS...: a host in the background; sets pid and port
pid=
port=
start() {
	name=$1 url=$2
	shift 2
	dir=$out/$name
	mkdir -p "$dir"
	"$host" serve --listen 127.0.0.1:0 --store "$url" "$@" >"$dir/out" 2>"$dir/err" &
	pid=$!
	pids="$pids $pid"
	i=0
	until grep -q '^listening on' "$dir/out" 2>/dev/null; do
		kill -0 "$pid" 2>/dev/null || die "the service did not start: $(cat "$dir/err")"
		i=$((i + 1))
		[ $i -lt 6000 ] || die "no 'listening on' line"
		sleep 0.01
	done
	port=$(sed -n 's/^listening on http:\/\/127.0.0.1:\([0-9]*\)$/\1/p' "$dir/out")
}
stopall() {
	for p in $pids; do kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
	pids=
}

# ---- 1. invocations per second, 1, 2 and 4 hosts ----
for h in 1 2 4; do
	say "== 1. $N invocations of program.simple.json on $h host(s), 8 connections in all"
	url=$(newdb "inv$h")
	ports=
	k=0
	while [ $k -lt $h ]; do
		start "inv$h-$k" "$url" --ctx n=41 "$out/simple.so"
		ports="$ports $port"
		k=$((k + 1))
	done
	t0=$(ms)
	lp=
	for p in $ports; do
		"$load" "$p" POST /v1/invocations '{"fn":"main"}' $((N / h)) $((8 / h)) \
			>"$out/inv$h-$p.load" &
		lp="$lp $!"
	done
	for p in $lp; do wait "$p" || die "posting failed"; done
	ta=$(($(ms) - t0))
	until [ "$(done_count "$url")" -ge $((N / h * h)) ]; do sleep 0.05; done
	te=$(($(ms) - t0))
	stopall
	eval "acc_$h=\$(awk -v n=$((N / h * h)) -v t=$ta 'BEGIN { printf \"%.0f\", n / (t / 1000) }')"
	eval "end_$h=\$(awk -v n=$((N / h * h)) -v t=$te 'BEGIN { printf \"%.0f\", n / (t / 1000) }')"
done

# ---- 2. durable steps per second, 1 and 2 hosts ----
INV=100
STEPS=1000
for h in 1 2; do
	say "== 2. durable steps on $h host(s): $INV invocations x $STEPS ctx.set"
	url=$(newdb "steps$h")
	ports=
	k=0
	while [ $k -lt $h ]; do
		start "steps$h-$k" "$url" --ctx bench=0 "$out/bench.so"
		ports="$ports $port"
		k=$((k + 1))
	done
	t0=$(ms)
	for p in $ports; do
		"$load" "$p" POST /v1/invocations "{\"fn\":\"steps\",\"args\":[$STEPS]}" $((INV / h)) 4 \
			>/dev/null || die "posting failed"
	done
	until [ "$(done_count "$url")" -ge "$INV" ]; do sleep 0.05; done
	t=$(($(ms) - t0))
	batch=$(curl -s "http://127.0.0.1:$port/metrics" | awk '
		$1 == "wfp_commit_batch_size_sum" { s = $2 } $1 == "wfp_commit_batch_size_count" { c = $2 }
		END { if (c) printf "%.1f", s / c }')
	stopall
	eval "steps_$h=\$(awk -v n=$((INV * STEPS)) -v t=$t 'BEGIN { printf \"%.0f\", n / (t / 1000) }')"
	eval "batch_$h=\$batch"
done

# ---- 3. takeover after a kill ----
K=100
for lease in 1000 5000; do
	say "== 3. takeover: $K sleepers on a host killed with SIGKILL, --lease-ms $lease"
	url=$(newdb "take$lease")
	start "take$lease-b" "$url" --lease-ms "$lease" "$out/bench.so"
	start "take$lease-a" "$url" --lease-ms "$lease" "$out/bench.so"
	apid=$pid
	# they sleep 200 ms: by the kill each has committed its sleep
	"$load" "$port" POST /v1/invocations '{"fn":"sleeper","args":[200]}' "$K" 4 >/dev/null ||
		die "posting failed"
	sleep 0.1
	kill -KILL "$apid"
	t0=$(ms)
	until [ "$(done_count "$url")" -ge "$K" ]; do sleep 0.02; done
	eval "take_$lease=$(($(ms) - t0))"
	stopall
done

load_after=$(loadavg)
row() { # NAME VALUE UNIT
	awk -v name="$1" -v val="$2" -v unit="$3" 'BEGIN {
		if (val == "") val = "n/a"
		printf "| %-56s | %10s %-8s |\n", name, val, unit
	}'
}
echo
echo "| row | value |"
echo "|---|---|"
row "1. invocations/s accepted (202), 1 host" "$acc_1" "inv/s"
row "1. invocations/s, 202 to done, 1 host" "$end_1" "inv/s"
row "1. invocations/s accepted (202), 2 hosts" "$acc_2" "inv/s"
row "1. invocations/s, 202 to done, 2 hosts" "$end_2" "inv/s"
row "1. invocations/s accepted (202), 4 hosts" "$acc_4" "inv/s"
row "1. invocations/s, 202 to done, 4 hosts" "$end_4" "inv/s"
row "2. durable steps/s, 1 host" "$steps_1" "steps/s"
row "2. records per transaction, 1 host" "$batch_1" ""
row "2. durable steps/s, 2 hosts" "$steps_2" "steps/s"
row "2. records per transaction, 2 hosts (one of them)" "$batch_2" ""
row "3. kill to all $K done elsewhere, --lease-ms 1000" "$take_1000" "ms"
row "3. kill to all $K done elsewhere, --lease-ms 5000" "$take_5000" "ms"
echo
echo "details: row 1 posts $N invocations over 8 connections split among the hosts,"
echo "from the first POST to the last 202 and to the last end in the store; row 2 is"
echo "$INV invocations of $STEPS ctx.set each (a record per step); row 3 from the"
echo "SIGKILL to the last of $K sleepers (200 ms) done by the other host;"
echo "PostgreSQL $(psql_ "$base" 'show server_version') on a Unix socket, fsync off;"
echo "cores: $(nproc); load average before: $load_before, after: $load_after"
