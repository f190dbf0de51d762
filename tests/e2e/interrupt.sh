#!/bin/sh
# interrupt.sh: SIGTERM or SIGINT while wfp-aot's C compiler runs: the
# compiler and what it started are killed, the temporary directory is
# removed, nothing is written, and wfp-aot exits with 128 + the signal.
# The C compiler is a script that records its pid and the pid of a child
# it waits for, then sleeps: it runs until it is killed.
. "$(dirname "$0")/lib.sh"

cc=$WORK/slow-cc
cat >"$cc" <<'SH'
#!/bin/sh
echo $$ >>"$WFP_TEST_PIDS"
sleep 60 &
echo $! >>"$WFP_TEST_PIDS"
wait
SH
chmod +x "$cc"

alive() {
    kill -0 "$1" 2>/dev/null
}

for sig in TERM INT; do
    case $sig in TERM) want=143 ;; INT) want=130 ;; esac
    tmp=$WORK/tmp-$sig
    pids=$WORK/pids-$sig
    rm -rf "$tmp" "$pids" "$WORK/out-$sig.so"
    mkdir -p "$tmp"
    : >"$pids"
    TMPDIR=$tmp CC=$cc WFP_TEST_PIDS=$pids \
        "$WFP_AOT" "$EXAMPLES/program.simple.json" -o "$WORK/out-$sig.so" \
        >"$WORK/out" 2>"$WORK/err" &
    aot=$!
    # wait until the C compiler (three at once, and their children) runs
    n=0
    while [ "$(wc -l <"$pids")" -lt 2 ] && [ $n -lt 300 ]; do
        sleep 0.1
        n=$((n + 1))
    done
    [ "$(wc -l <"$pids")" -ge 2 ] || fail "SIG$sig: the C compiler never started"
    [ -n "$(ls -A "$tmp")" ] || fail "SIG$sig: no temporary directory while cc runs"
    kill -$sig $aot
    wait $aot
    rc=$?
    [ "$rc" = "$want" ] || fail "SIG$sig: exit status $rc, expected $want"
    grep -qF "wfp-aot: interrupted by SIG$sig: nothing written" "$WORK/err" ||
        fail "SIG$sig: stderr: $(head -3 "$WORK/err")"
    [ -z "$(ls -A "$tmp")" ] || fail "SIG$sig: left in TMPDIR: $(ls -A "$tmp")"
    [ -e "$WORK/out-$sig.so" ] && fail "SIG$sig: the output was written"
    # every compiler process and its children are gone (a moment for the
    # kernel to reap what init inherited)
    n=0
    while [ $n -lt 50 ]; do
        left=
        for p in $(cat "$pids"); do
            alive "$p" && left="$left $p"
        done
        [ -z "$left" ] && break
        sleep 0.1
        n=$((n + 1))
    done
    [ -z "$left" ] || fail "SIG$sig: still running:$left"
done
finish
