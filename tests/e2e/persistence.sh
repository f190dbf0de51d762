#!/bin/sh
# persistence.sh: an invocation stopped after any number of steps and
# resumed in a new process ends exactly as a straight run (output,
# messages, context, steps); damaged or foreign checkpoints are refused.
. "$(dirname "$0")/lib.sh"

ck=$WORK/ck

# check_all MODULE ARGS...: for every N from 1 to the step count, stop
# after N and resume; the report must equal the straight run's
check_all() {
    so=$1
    shift
    if ! run 0 "$WFP_HOST" "$so" "$@" --report; then return; fi
    cp "$WORK/out" "$WORK/straight"
    steps=$(sed 's/.*"steps":\([0-9]*\).*/\1/' "$WORK/straight")
    n=1
    while [ "$n" -lt "$steps" ]; do
        rm -f "$ck"
        if run 4 "$WFP_HOST" "$so" "$@" --checkpoint "$ck" --stop-after "$n"; then
            err_has "suspended after $n steps"
            if run 0 "$WFP_HOST" "$so" --resume "$ck" --report; then
                if ! cmp -s "$WORK/out" "$WORK/straight"; then
                    fail "$(basename "$so") resumed after $n steps: $(cat "$WORK/out") differs from $(cat "$WORK/straight")"
                fi
            fi
        fi
        n=$((n + 1))
    done
    # stopping at or after the last step changes nothing
    run 0 "$WFP_HOST" "$so" "$@" --checkpoint "$ck" --stop-after "$steps" --report &&
        cmp -s "$WORK/out" "$WORK/straight" || fail "--stop-after $steps should run to the end"
}

check_all "$SO/simple.so" --ctx n=41
check_all "$SO/converter.so" --ctx celsius=100
check_all "$SO/accumulator.so" --ctx a=1 --ctx b=2 --ctx c=3
check_all "$SO/nested.so" --ctx base=10
check_all "$SO/loop.so" --ctx n=5 --ctx step=3
check_all "$SO/calls.so" --ctx x=7
# fuel: an invocation that yields, stopped and resumed at every yield
check_all "$SO/spin_forever.so" --fn fib --arg n=12 --fuel-slice 50
# closures: fn values live across suspensions, call_refs whose callees
# suspend, closures capturing closures
for f in main compose useAdder loop curry; do
    check_all "$SO/closures.so" --fn "$f" --ctx n=4 --ctx base=1 --ctx k=7 --ctx m=3
done
check_all "$SO/closures.so" --fn strs --arg who=ann --ctx n=4
# db_query on a database file the checkpoint names, fan-outs included
for f in main fan nested; do
    check_all "$SO/db.so" --fn "$f" --ctx min=20 --db "$WORK/p.db"
done
# resources: the instance's properties travel in the checkpoint
check_all "$SO/resource.so" --new Counter:value=10 --fn add --arg amount=5
check_all "$SO/bank-account.so" --new Account:balance=100,transactions=3 --fn transferTo --arg amount=25
check_all "$SO/state-machine.so" --new Machine:state=running,errors=2 --fn pause

# at every optimization level (the modules above are -O2): suspension
# points, saved values and fuel survive Binaryen's and the C compiler's
# optimizations alike
for lv in 0 1 3; do
    for p in loop spin_forever closures; do
        "$WFP_AOT" -O$lv "$PROGRAMS/$p.json" -o "$WORK/$p-O$lv.so" ||
            fail "wfp-aot -O$lv $p.json failed"
    done
    check_all "$WORK/loop-O$lv.so" --ctx n=5 --ctx step=3
    check_all "$WORK/spin_forever-O$lv.so" --fn fib --arg n=9 --fuel-slice 50
    for f in compose loop curry; do
        check_all "$WORK/closures-O$lv.so" --fn "$f" --ctx n=4 --ctx base=1 --ctx k=7 --ctx m=3
    done
done

# a program that reads its input after it suspended gets it on every
# step (a host gives a resumed step none when the program never does)
"$WFP_AOT" "$PROGRAMS/input_late.json" -o "$WORK/input_late.so" || fail "wfp-aot input_late.json failed"
run 0 "$WFP_HOST" "$WORK/input_late.so" --arg x=5 --ctx n=2 &&
    out_is '{"n":7,"input":{"args":{"x":5}}}'
check_all "$WORK/input_late.so" --arg x=5 --ctx n=2

# a chain of stops: stop, resume and stop again, several times
rm -f "$ck"
run 4 "$WFP_HOST" "$SO/loop.so" --ctx n=5 --ctx step=3 --checkpoint "$ck" --stop-after 2
for n in 5 9 12; do
    run 4 "$WFP_HOST" "$SO/loop.so" --resume "$ck" --checkpoint "$ck" --stop-after "$n"
done
run 0 "$WFP_HOST" "$SO/loop.so" --resume "$ck" --report
run 0 "$WFP_HOST" "$SO/loop.so" --ctx n=5 --ctx step=3 --report
cp "$WORK/out" "$WORK/straight"
run 0 "$WFP_HOST" "$SO/loop.so" --ctx n=5 --ctx step=3 --checkpoint "$ck" --report
cmp -s "$WORK/out" "$WORK/straight" || fail "--checkpoint without a stop changed the result"

# damaged checkpoints: truncated at many lengths, bytes flipped at many
# places: always refused with exit 1 and a message, never a crash
rm -f "$ck"
run 4 "$WFP_HOST" "$SO/accumulator.so" --ctx a=1 --ctx b=2 --ctx c=3 --checkpoint "$ck" --stop-after 3
size=$(wc -c <"$ck")
for len in 0 1 5 70 71 72 100 $((size / 2)) $((size - 2)) $((size - 1)); do
    head -c "$len" "$ck" >"$WORK/bad"
    run 1 "$WFP_HOST" "$SO/accumulator.so" --resume "$WORK/bad" && err_has "invalid checkpoint"
done
pos=0
while [ "$pos" -lt "$size" ]; do
    cp "$ck" "$WORK/bad"
    # flip one bit (XOR 0x04) of the byte at pos
    byte=$(od -An -tu1 -j "$pos" -N1 "$ck" | tr -d ' ')
    printf "$(printf '\\%03o' $((byte ^ 4)))" |
        dd of="$WORK/bad" bs=1 seek="$pos" conv=notrunc 2>/dev/null
    run 1 "$WFP_HOST" "$SO/accumulator.so" --resume "$WORK/bad" && err_has "invalid checkpoint"
    pos=$((pos + 37))
done
# a checkpoint of another program: exit 3, naming both program hashes
run 3 "$WFP_HOST" "$SO/simple.so" --resume "$ck" &&
    err_has "written for program" && err_has "this module is program"
# not a checkpoint at all
echo '{"hello":1}' >"$WORK/bad"
run 1 "$WFP_HOST" "$SO/accumulator.so" --resume "$WORK/bad" && err_has "invalid checkpoint"
run 3 "$WFP_HOST" "$SO/accumulator.so" --resume "$WORK/missing"

# forge FILE OUT PYTHON-EXPR: OUT is FILE's body changed by the expression
# (on b, a dict) and signed anew with a plain checksum, as anyone who can
# write the file can
forge() {
    python3 - "$1" "$2" "$3" <<'PY'
import hashlib, json, sys
data = open(sys.argv[1], "rb").read()
b = json.loads(data[data.index(b"\n") + 1:])
exec(sys.argv[3])
body = (json.dumps(b, separators=(",", ":")) + "\n").encode()
open(sys.argv[2], "wb").write(b"WFPC1 " + hashlib.sha256(body).hexdigest().encode() + b"\n" + body)
PY
}

# a forged checkpoint is checked field by field: refused with the field's
# JSON path, never run on trust
# an empty state is a first step: the transfer would start over and be
# made twice (it used to: balance 50, not 75)
rm -f "$ck"
run 4 "$WFP_HOST" "$SO/bank-account.so" --new Account:balance=100,transactions=3 --fn transferTo \
    --arg amount=25 --checkpoint "$ck" --stop-after 5
forge "$ck" "$WORK/bad" 'b["state"] = ""'
run 1 "$WFP_HOST" "$SO/bank-account.so" --resume "$WORK/bad" --report &&
    first_err_line_has "wfp-host: trap: $WORK/bad: \$.state: invalid checkpoint: empty"
rm -f "$ck"
run 4 "$WFP_HOST" "$SO/accumulator.so" --ctx a=1 --ctx b=2 --ctx c=3 --checkpoint "$ck" --stop-after 2
forge "$ck" "$WORK/bad" 'b["effect"]["kind"] = 0.5'
run 1 "$WFP_HOST" "$SO/accumulator.so" --resume "$WORK/bad" && err_has '$.effect.kind: invalid checkpoint'
forge "$ck" "$WORK/bad" 'b["messages"] = [["t", "{not json"]]'
run 1 "$WFP_HOST" "$SO/accumulator.so" --resume "$WORK/bad" && err_has '$.messages[0]: invalid checkpoint'
# a database the checkpoint names is opened only if it exists: a file is
# never created where a checkpoint says (exit 3: the environment)
rm -f "$WORK/made-up.db"
forge "$ck" "$WORK/bad" "b['db'] = '$WORK/made-up.db'"
run 3 "$WFP_HOST" "$SO/accumulator.so" --resume "$WORK/bad" && err_has '$.db: cannot open the database'
[ -e "$WORK/made-up.db" ] && fail "restoring a checkpoint created the database it names"
# unchanged but re-signed, it is still fine
forge "$ck" "$WORK/bad" 'pass'
run 0 "$WFP_HOST" "$SO/accumulator.so" --resume "$WORK/bad" --report

# every limit travels in the checkpoint: a runaway stopped and resumed
# still ends at its step limit (it used to run for ever)
rm -f "$ck"
run 4 "$WFP_HOST" "$SO/spin_forever.so" --max-steps 20 --fuel-slice 100 --checkpoint "$ck" --stop-after 5
run 1 timeout 60 "$WFP_HOST" "$SO/spin_forever.so" --resume "$ck" --report &&
    err_has "trap: step limit reached (20 steps)"
grep -q '"steps":20,"fuel":2000,' "$WORK/out" || fail "resumed runaway: $(cat "$WORK/out")"
# a limit given again replaces the checkpoint's, and only that one
run 1 timeout 60 "$WFP_HOST" "$SO/spin_forever.so" --resume "$ck" --max-steps 9 &&
    err_has "step limit reached (9 steps)"
rm -f "$ck"
run 4 "$WFP_HOST" "$SO/spin_forever.so" --max-fuel 1000 --fuel-slice 100 --checkpoint "$ck" --stop-after 3
run 1 timeout 60 "$WFP_HOST" "$SO/spin_forever.so" --resume "$ck" --fuel-slice 30 &&
    err_has "trap: fuel limit reached (1000 units)"
run 1 timeout 60 "$WFP_HOST" "$SO/spin_forever.so" --resume "$ck" --max-fuel 500 &&
    err_has "trap: fuel limit reached (500 units)"

# signed checkpoints: --checkpoint-key signs what --checkpoint writes, and
# --resume takes only a checkpoint whose MAC verifies under the key
printf '%s' "0123456789abcdef0123456789abcdef" >"$WORK/key"
printf '%s' "another key, 32 bytes long too.." >"$WORK/key2"
rm -f "$ck"
run 0 "$WFP_HOST" "$SO/accumulator.so" --ctx a=1 --ctx b=2 --ctx c=3 --report
cp "$WORK/out" "$WORK/straight"
run 4 "$WFP_HOST" "$SO/accumulator.so" --ctx a=1 --ctx b=2 --ctx c=3 --checkpoint "$ck" \
    --checkpoint-key "$WORK/key" --stop-after 2
[ "$(head -c 18 "$ck")" = "WFPC1 hmac-sha256 " ] || fail "--checkpoint-key wrote no MAC"
run 4 "$WFP_HOST" "$SO/accumulator.so" --resume "$ck" --checkpoint "$ck" --checkpoint-key "$WORK/key" \
    --stop-after 3
run 0 "$WFP_HOST" "$SO/accumulator.so" --resume "$ck" --checkpoint-key "$WORK/key" --report &&
    { cmp -s "$WORK/out" "$WORK/straight" || fail "a signed checkpoint resumed differently"; }
run 1 "$WFP_HOST" "$SO/accumulator.so" --resume "$ck" --checkpoint-key "$WORK/key2" &&
    err_has "invalid checkpoint: MAC mismatch"
run 1 "$WFP_HOST" "$SO/accumulator.so" --resume "$ck" && err_has "resume it with its key"
# tampered with and re-signed with a plain checksum: refused with the key
forge "$ck" "$WORK/bad" 'b["ctx"][0][1] = "1000"'
run 1 "$WFP_HOST" "$SO/accumulator.so" --resume "$WORK/bad" --checkpoint-key "$WORK/key" &&
    err_has "invalid checkpoint: it carries no MAC"
# the key file
run 3 "$WFP_HOST" "$SO/accumulator.so" --resume "$ck" --checkpoint-key "$WORK/nokey" &&
    err_has "cannot read the checkpoint key"
printf 'short' >"$WORK/short"
run 3 "$WFP_HOST" "$SO/accumulator.so" --resume "$ck" --checkpoint-key "$WORK/short" &&
    err_has "at least 16"
run 2 "$WFP_HOST" "$SO/accumulator.so" --checkpoint-key "$WORK/key"
finish
