#!/bin/sh
# cli.sh: fault injection through the commands. wfp-aot and wfp-host,
# built with the allocation countdown (WFP_FAIL_ALLOC=k), fail their k-th
# allocation (once, then from k on) for k = 1, 2, ... until a run makes no
# allocation fail. Each run must exit 3 with an "out of memory" line, print
# nothing on stdout and leave no file behind (a checkpoint written before
# the failure must be whole: it resumes to the right output), or give
# exactly what the run without failures gives.
# --batch streams: a run that fails there may have printed the lines
# before the failure, exactly as the run without failures prints them.
# Usage: cli.sh WFP_AOT_OOM WFP_HOST_OOM WFP_HOST MODULE.so PROGRAM.json WORKDIR
#               PROGRAM.wfp
# Every allocation is tried (k = 1, 2, ...) unless WFP_OOM_AOT_STRIDE or
# WFP_OOM_HOST_STRIDE say every N-th (the defaults of the test build);
# WFP_OOM_STRIDE, when set, is the stride of both (1: exhaustive).
set -u
aot_stride=${WFP_OOM_STRIDE:-${WFP_OOM_AOT_STRIDE:-1}}
host_stride=${WFP_OOM_STRIDE:-${WFP_OOM_HOST_STRIDE:-1}}
rm -rf "$6"
mkdir -p "$6"
# the commands run in a directory of their own: absolute paths
aot=$(realpath "$1") host=$(realpath "$2") real_host=$(realpath "$3")
so=$(realpath "$4") program=$(realpath "$5") work=$(realpath "$6")
text_program=$(realpath "$7")
fails=0

# run LABEL K MODE CMD...: runs CMD in $work/run with the countdown set;
# leaves rc, stdout, stderr, the allocation count and failures.
run() {
    label=$1 k=$2 mode=$3
    shift 3
    rm -f "$work/log"
    (cd "$work/run" && TMPDIR="$work/tmp" WFP_FAIL_ALLOC=$k WFP_FAIL_ALLOC_MODE=$mode \
        WFP_FAIL_ALLOC_LOG="$work/log" "$@" >"$work/stdout" 2>"$work/stderr")
    rc=$?
    allocs=-1 failed=-1
    [ -f "$work/log" ] && read -r allocs failed <"$work/log"
}

# what is in the run directory, but the files the case started with
leftovers() {
    (cd "$work/run" && ls -A) | grep -vxF -f "$work/inputs" || true
}

bad() {
    echo "FAIL $label: allocation $k failing ($mode): $*"
    echo "--- exit $rc, stdout:"; cat "$work/stdout"
    echo "--- stderr:"; cat "$work/stderr"
    fails=$((fails + 1))
}

# inject LABEL SETUP STRIDE CMD...: SETUP (a shell function) fills the
# run directory first; files it makes may stay, anything new must not.
inject() {
    label=$1 setup=$2 stride=$3
    shift 3
    prep() {
        rm -rf "$work/run" "$work/tmp"
        mkdir -p "$work/run" "$work/tmp"
        $setup
        (cd "$work/run" && ls -A) >"$work/inputs"
    }
    prep
    run "$label" 0 once "$@"
    ref_rc=$rc
    cp "$work/stdout" "$work/ref.stdout"
    cp "$work/stderr" "$work/ref.stderr"
    total=$allocs
    if [ "$allocs" -lt 1 ]; then
        k=0 mode=none
        bad "the run without failures counted no allocation (no log)"
        return
    fi
    runs=0 nomem=0 same=0 fails_before=$fails
    for mode in once persist; do
        k=1
        while :; do
            prep
            run "$label" $k $mode "$@"
            runs=$((runs + 1))
            if [ "$allocs" -lt 0 ]; then
                bad "no allocation log: the command died (signal or abort)"
                break
            fi
            if [ "$failed" -eq 0 ]; then
                # past the last allocation: the whole run, as without failures
                if [ $rc -ne $ref_rc ] || ! cmp -s "$work/stdout" "$work/ref.stdout"; then
                    bad "no allocation failed, yet the result differs"
                fi
                break
            fi
            if [ $rc -eq $ref_rc ] && cmp -s "$work/stdout" "$work/ref.stdout" &&
               cmp -s "$work/stderr" "$work/ref.stderr"; then
                same=$((same + 1))  # the failure was recovered from
                k=$((k + stride))
                continue
            elif [ $rc -ne 3 ]; then
                bad "exit $rc, not 3"; break
            elif ! grep -q "out of memory" "$work/stderr"; then
                bad "no 'out of memory' line"; break
            elif [ -s "$work/stdout" ] && { [ -z "$prefix_ok" ] ||
                 [ "$(head -c "$(wc -c <"$work/stdout")" "$work/ref.stdout")" != \
                   "$(cat "$work/stdout")" ]; }; then
                bad "output on stdout although it failed"; break
            else
                nomem=$((nomem + 1))
            fi
            if [ -n "$(ls -A "$work/tmp")" ]; then
                bad "temporary files left: $(ls -A "$work/tmp")"; break
            fi
            left=$(leftovers)
            if [ -n "$left" ] && [ "$left" != "$ck_ok" ]; then
                bad "files left behind: $left"; break
            fi
            if [ -n "$left" ]; then
                # a checkpoint written before the failure: whole and resumable
                out=$(cd "$work/run" && "$real_host" "$so" --resume "$ck_ok" $resume_args 2>&1)
                if [ "$out" != "$(cat "$work/ref.output")" ]; then
                    bad "the checkpoint left does not resume to the output: $out"; break
                fi
            fi
            k=$((k + stride))
        done
    done
    verdict=ok
    [ $fails -eq $fails_before ] || verdict=FAIL
    echo "$verdict $label: $total allocations, $runs runs (every $stride): $nomem out of memory, $same recovered"
}

no_setup() { :; }
ck_ok="" resume_args=""
prefix_ok=""

# ---- wfp-aot: the front end, codegen and the driver around wasm2c ----
# (the driver around cc and the .so is the same library code, which the
# in-process test, oom aot, runs to the .so)
inject "wfp-aot (every output but the .so)" no_setup $aot_stride \
    "$aot" -O0 "$program" --check --emit-ir ir.json --emit-wasm m.wasm \
    --emit-wit f.wit --emit-c csrc
refused=$work/refused.json
printf '{"version": 1, "functions": [{"name": "main", "params": [], "body": [{"op": "nope"}]}]}' >"$refused"
inject "wfp-aot (a refused program)" no_setup "${WFP_OOM_STRIDE:-1}" "$aot" "$refused" -o out.so
# the text syntax: parsed, checked, written back as text and JavaScript;
# and --fmt rewriting a file in place (whole, or not at all)
inject "wfp-aot (a text program, its text and JavaScript)" no_setup $aot_stride \
    "$aot" "$text_program" --check --emit-ir ir.json --emit-text t.wfp --emit-js t.mjs
unformatted() {
    sed 's/^  /    /' "$text_program" >"$work/run/p.wfp"
}
inject "wfp-aot (--fmt)" unformatted $aot_stride "$aot" --fmt p.wfp

# ---- wfp-host: load, env, instance, steps, effects, checkpoints, report ----
"$real_host" "$so" --ctx n=7 --arg tag=oom >"$work/ref.output" || {
    echo "FAIL: $so does not run"; exit 1; }
ck_ok=ck
inject "wfp-host (effects, trace, report, checkpoints)" no_setup $host_stride \
    "$host" "$so" --ctx n=7 --arg tag=oom --report --trace --checkpoint ck --fuel-slice 1
ck_ok=""
inject "wfp-host (a method on a new instance)" no_setup $host_stride \
    "$host" "$so" --fn bump --new 'Counter:value=5,label=ab,meta={"q":[1]}' --arg by=3 --report
stopped() {
    (cd "$work/run" && "$real_host" "$so" --ctx n=7 --arg tag=oom --checkpoint ck \
        --stop-after 4 2>/dev/null)
    [ -s "$work/run/ck" ] || echo "FAIL: no checkpoint to resume"
}
inject "wfp-host (--resume)" stopped $host_stride "$host" "$so" --resume ck --report
ck_ok=ck
inject "wfp-host (--stop-after)" no_setup $host_stride \
    "$host" "$so" --ctx n=7 --arg tag=oom --checkpoint ck --stop-after 3
# a signed checkpoint: the key read, the MAC made
keyed() {
    printf '0123456789abcdef0123456789abcdef' >"$work/run/key"
}
resume_args="--checkpoint-key key"
inject "wfp-host (--checkpoint-key)" keyed $host_stride \
    "$host" "$so" --ctx n=7 --arg tag=oom --checkpoint ck --checkpoint-key key --stop-after 2
ck_ok="" resume_args=""
# many invocations in one host: the lines read, run at once, printed in order
lines() {
    printf '{"args":{"tag":"a"}}\n{"fn":"main","args":{"tag":"b"}}\n{"fn":"nope"}\nnot json\n' \
        >"$work/run/lines"
}
prefix_ok=1
inject "wfp-host (--batch)" lines $host_stride "$host" "$so" --ctx n=7 --batch lines
prefix_ok=""

[ $fails -eq 0 ] || { echo "$fails failures"; exit 1; }
