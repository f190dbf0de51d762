#!/bin/sh
# kills.sh: a wfp-host killed while it writes a checkpoint leaves no
# temporary file: SIGTERM, SIGINT and SIGHUP wait for the file to be in
# place, and the checkpoint they leave resumes; what SIGKILL leaves, the
# next run with the same --checkpoint removes, and nothing else (files
# of other names, a temporary file another live process is writing).
. "$(dirname "$0")/lib.sh"

shim=$WORK/kill_shim.so
run 0 ${CC:-cc} -shared -fPIC -o "$shim" "$SRC/kill_shim.c" -ldl || finish
# a sanitizer runtime wants to be loaded first; the shim goes before it
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"

dir=$WORK/ck
temps() { LC_ALL=C ls "$dir" | grep -c '^ck\.tmp\.' ; }

for sig in 15 2 1; do
    rm -rf "$dir" && mkdir -p "$dir"
    KILL_IN_FSYNC=$sig LD_PRELOAD=$shim "$WFP_HOST" "$SO/simple.so" --ctx n=41 \
        --checkpoint "$dir/ck" >"$WORK/out" 2>"$WORK/err"
    got=$?
    [ "$got" = $((128 + sig)) ] || fail "signal $sig in fsync: exit $got, expected $((128 + sig))"
    [ "$(temps)" = 0 ] || fail "signal $sig in fsync left $(ls "$dir" | tr '\n' ' ')"
    # the file it was writing is whole: the invocation goes on from it
    run 0 "$WFP_HOST" "$SO/simple.so" --resume "$dir/ck" && out_is '{"result":42}'
done

# SIGKILL cannot wait: it leaves a temporary file, which the next run
# with this checkpoint removes
rm -rf "$dir" && mkdir -p "$dir"
KILL_IN_FSYNC=9 LD_PRELOAD=$shim "$WFP_HOST" "$SO/simple.so" --ctx n=41 \
    --checkpoint "$dir/ck" >"$WORK/out" 2>"$WORK/err"
[ "$(temps)" = 1 ] || fail "SIGKILL in fsync: expected a temporary file, got $(ls "$dir" | tr '\n' ' ')"
# neighbours that are not its temporary files stay
for f in ck.tmp.abc ck.tmp.ABCDEFG ck.tmp.ab-def other.tmp.ABCDEF ck.tmpABCDEF; do
    echo x >"$dir/$f"
done
mkdir "$dir/ck.tmp.QWERTY"
# a temporary file a live writer holds (locked) stays too
python3 - "$dir/ck.tmp.LIVE12" "$WORK/locked" <<'PY' &
import fcntl, os, sys, time
f = open(sys.argv[1], "w")
fcntl.flock(f, fcntl.LOCK_EX)
open(sys.argv[2], "w").close()
time.sleep(30)
PY
holder=$!
i=0
while [ ! -e "$WORK/locked" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
run 0 "$WFP_HOST" "$SO/simple.so" --ctx n=1 --checkpoint "$dir/ck" && out_is '{"result":2}'
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
rm -f "$WORK/locked"
left=$(LC_ALL=C ls "$dir" | tr '\n' ' ')
[ "$left" = "ck ck.tmp.ABCDEFG ck.tmp.LIVE12 ck.tmp.QWERTY ck.tmp.ab-def ck.tmp.abc ck.tmpABCDEF other.tmp.ABCDEF " ] ||
    fail "after a run with --checkpoint: left '$left'"
finish
