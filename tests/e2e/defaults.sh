#!/bin/sh
# defaults.sh: the types a program leaves open (docs/ir.md, "Types"), for
# real: a program whose types nothing fixes compiles (the defaults), runs
# where the defaults hold, and where a function value from the input has
# another signature, the call_ref traps with a message naming both types,
# before the call. Compiles its own module (programs/defaults.json).
. "$(dirname "$0")/lib.sh"

prog=$PROGRAMS/defaults.json
so=$WORK/defaults.so
run 0 "$WFP_AOT" "$prog" -o "$so" --emit-ir "$WORK/defaults.ir.json" || finish

# the stable id of a function, from the lifted IR
id_of() {
    python3 -c 'import json, sys
print([f["id"] for f in json.load(open(sys.argv[1]))["functions"] if f["name"] == sys.argv[2]][0])' \
        "$WORK/defaults.ir.json" "$1"
}
fv() { printf '{"fn":"%s","args":[]}' "$(id_of "$1")"; }

# apply(f, x) = call_ref(f, x): nothing calls apply, its result is i64
run 0 "$WFP_HOST" "$so" --fn apply --arg "f=$(fv inc)" --arg x=41 && out_is '{"result":42}'
run 1 "$WFP_HOST" "$so" --fn apply --arg "f=$(fv hello)" --arg x=41 &&
    first_err_line_has "wfp-host: trap: call_ref: function 'hello' returns str, but this call expects i64"
# len(call_ref(f)): a value only len constrains is a str
run 0 "$WFP_HOST" "$so" --fn lenOf --arg "f=$(fv word)" && out_is '{"result":6}'
run 1 "$WFP_HOST" "$so" --fn lenOf --arg "f=$(fv list)" &&
    first_err_line_has "call_ref: function 'list' returns json, but this call expects str"
# an inferred result (json) is checked the same way: no str read as json
run 1 "$WFP_HOST" "$so" --fn asJson --arg "f=$(fv hello)" &&
    first_err_line_has "call_ref: function 'hello' returns str, but this call expects json"
# parameters and their number
run 1 "$WFP_HOST" "$so" --fn withStr --arg "f=$(fv inc)" &&
    first_err_line_has "call_ref: parameter 'n' of function 'inc' is i64, but this call passes str"
run 1 "$WFP_HOST" "$so" --fn asJson --arg "f=$(fv list)" &&
    first_err_line_has "call_ref: function 'list' takes 0 arguments, but this call passes 1"
# a fn value nothing calls keeps any signature, across a suspension
run 0 "$WFP_HOST" "$so" --fn keep --arg "f=$(fv hello)" &&
    out_is "{\"result\":$(fv hello)}"
# main() { return main() }: valid, its result type is the default; the
# recursion is bounded at run time
run 1 "$WFP_HOST" "$so" && first_err_line_has "wfp-host: trap: call stack exhausted"
finish
