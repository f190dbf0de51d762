#!/bin/sh
# closures.sh: fn values, lambdas and call_ref, compiled and run for real:
# captures of every type (closures among them), closures made in loops,
# returned from functions, kept across suspensions and called through
# higher-order functions; a fn value as the output (its JSON form, naming
# the stable id); recursion through fn values bounded at run time; the
# lifted IR of --emit-ir compiles to a module that gives the same results.
. "$(dirname "$0")/lib.sh"

so=$SO/closures.so
ctx="--ctx n=4 --ctx base=1 --ctx k=7 --ctx m=3"

# expect FN OUTPUT [ARGS...]: wfp-host runs FN of MODULE ($mod) and prints OUTPUT
expect() {
    e_fn=$1 e_out=$2
    shift 2
    # shellcheck disable=SC2086
    run 0 "$WFP_HOST" "$mod" --fn "$e_fn" $ctx "$@" && out_is "$e_out"
}

check_outputs() {
    expect main '{"result":5}'
    expect compose '{"result":16}'
    expect strs '{"result":"hello, ann #4"}' --arg who=ann
    expect useAdder '{"result":14}'
    expect scaled '{"result":12}'
    expect loop '{"result":60}'
    expect curry '{"result":1104}'
    expect deep '{"result":1000}' --arg n=1000
}

mod=$so
check_outputs

# the messages the closures send, in order, with the step count: a
# call_ref whose callee suspends resumes exactly
# shellcheck disable=SC2086
run 0 "$WFP_HOST" "$so" --fn loop $ctx --report &&
    out_is '{"status":"done","output":{"result":60},"trap":null,"steps":10,"fuel":9,"ctx":{"n":4,"base":1,"k":7,"m":3},"messages":[{"topic":"apply","payload":10},{"topic":"apply","payload":10},{"topic":"apply","payload":10},{"topic":"apply","payload":10}],"properties":null}'

# a fn value as the output: {"fn": <stable id>, "args": [captures]}, with
# the ids of the lifted functions --emit-ir writes
run 0 "$WFP_AOT" --check --emit-ir "$WORK/closures.ir.json" "$PROGRAMS/closures.json"
run 0 "$WFP_HOST" "$so" --fn adder --arg k=3 && cp "$WORK/out" "$WORK/adder.out"
run 0 "$WFP_HOST" "$so" --fn closureOut && cp "$WORK/out" "$WORK/closureOut.out"
python3 - "$WORK/closures.ir.json" "$WORK/adder.out" "$WORK/closureOut.out" <<'PY' ||
import json, sys
ir = json.load(open(sys.argv[1]))
ids = {f["name"]: f["id"] for f in ir["functions"]}
adder = json.load(open(sys.argv[2]))
assert adder == {"result": {"fn": ids["makeAdder$lambda0"], "args": [3]}}, adder
out = json.load(open(sys.argv[3]))
want = {"result": {"fn": ids["closureOut$lambda0"], "args": [
    't"1', {"fn": ids["double"], "args": []},
    {"fn": ids["makeAdder$lambda0"], "args": [2]}]}}
assert out == want, (out, want)
# the lambda's captures lead its params, in the lifted IR
lam = [f for f in ir["functions"] if f["name"] == "closureOut$lambda0"][0]
assert lam["captures"] == ["tag", "d", "a"], lam
PY
    fail "fn value outputs do not name the lifted functions' ids"

# recursion through fn values: the depth is bounded, a trap not a crash
run 1 "$WFP_HOST" "$so" --fn deep --arg n=100000000 && err_has "call stack exhausted"

# a fn value from the input, in its JSON form: the id of a function some
# fn value of the program names, and its captured values
id_of() {
    python3 -c 'import json, sys
print([f["id"] for f in json.load(open(sys.argv[1]))["functions"] if f["name"] == sys.argv[2]][0])' \
        "$WORK/closures.ir.json" "$1"
}
dbl=$(id_of double) add=$(id_of 'makeAdder$lambda0') str=$(id_of 'strs$lambda0')
run 0 "$WFP_HOST" "$so" --input "{\"fn\":\"apply\",\"args\":[{\"fn\":\"$dbl\",\"args\":[]},21]}" &&
    out_is '{"result":42}'
run 0 "$WFP_HOST" "$so" --fn apply --arg "f={\"fn\":\"$add\",\"args\":[40]}" --arg x=2 &&
    out_is '{"result":42}'
# the output of one invocation is the input of the next
run 0 "$WFP_HOST" "$so" --fn adder --arg k=40 &&
    f=$(python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin)["result"]))' <"$WORK/out") &&
    run 0 "$WFP_HOST" "$so" --fn apply --arg "f=$f" --arg x=2 && out_is '{"result":42}'
run 2 "$WFP_HOST" "$so" --fn apply --arg 'f=1' --arg x=1 &&
    err_has "argument 'f': '1' is not a function value"
run 1 "$WFP_HOST" "$so" --input '{"fn":"apply","args":{"f":1,"x":1}}' &&
    err_has "argument 'f' must be a function value"
run 1 "$WFP_HOST" "$so" --fn apply --arg "f={\"fn\":\"$add\",\"args\":[]}" --arg x=1 &&
    err_has "argument 'f' gives a function value the wrong number of captured values"
run 1 "$WFP_HOST" "$so" --fn apply --arg "f={\"fn\":\"$add\",\"args\":[\"x\"]}" --arg x=1 &&
    err_has "argument 'f' gives a function value a capture that is not an i64"
run 1 "$WFP_HOST" "$so" --fn apply --arg 'f={"fn":"main","args":[]}' --arg x=1 &&
    err_has "argument 'f' names a function that no fn value of this program refers to"
run 1 "$WFP_HOST" "$so" --fn apply --arg 'f={"fn":"nope","args":[]}' --arg x=1 &&
    err_has "argument 'f' names no function of this program"
# a function value of another signature: a trap at the call, not a crash
run 1 "$WFP_HOST" "$so" --fn apply --arg "f={\"fn\":\"$str\",\"args\":[\"a\",{}]}" --arg x=1 &&
    err_has "call_ref: function 'strs\$lambda0' takes 0 arguments, but this call passes 1"

# the lifted IR compiles to a module with the same behaviour
run 0 "$WFP_AOT" "$WORK/closures.ir.json" -o "$WORK/lifted.so"
mod=$WORK/lifted.so
check_outputs

# closures nest to any depth: a loop wraps one in another n times, the
# invocation suspends holding the chain, and calls it after the resume
# (the state bytes carry it, in this process or through a checkpoint)
c=$SO/closure_chain.so
for n in 33 1000; do
    run 0 "$WFP_HOST" "$c" --fn chain --arg n=$n && out_is "{\"result\":$n}"
    rm -f "$WORK/chain.ck"
    run 4 "$WFP_HOST" "$c" --fn chain --arg n=$n --checkpoint "$WORK/chain.ck" --stop-after 1 &&
        run 0 "$WFP_HOST" "$c" --resume "$WORK/chain.ck" && out_is "{\"result\":$n}"
done
# a function value as output is JSON: within the depth limit (256), each
# closure in another nesting two levels more; past it, a trap
run 0 "$WFP_HOST" "$c" --fn value --arg n=126
run 1 "$WFP_HOST" "$c" --fn value --arg n=127 &&
    err_has "a function value nested too deep for its JSON form (the JSON depth limit is 256 levels)"
finish
