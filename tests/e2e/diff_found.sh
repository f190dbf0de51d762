#!/bin/sh
# diff_found.sh: the reproductions the differential test found
# (tests/diff/found/, each with a note of the bug), compiled and run as
# their notes say they should: regression tests of the fixes.
. "$(dirname "$0")/lib.sh"
found=$SRC/../diff/found

# a function of nine Wasm parameters or more: wasm2c wraps its C header over
# lines, and the two-unit compile must still split it right
run 0 "$WFP_AOT" "$found/aot-nine-params.json" -o "$WORK/nine.so" &&
    run 0 "$WFP_HOST" "$WORK/nine.so" --report &&
    out_is '{"status":"done","output":{"result":20},"trap":null,"steps":19,"fuel":1,"ctx":{},"messages":[{"topic":"t","payload":1},{"topic":"t","payload":2},{"topic":"t","payload":3},{"topic":"t","payload":4},{"topic":"t","payload":5},{"topic":"t","payload":6},{"topic":"t","payload":7},{"topic":"t","payload":8},{"topic":"t","payload":9},{"topic":"t","payload":1},{"topic":"t","payload":2},{"topic":"t","payload":3},{"topic":"t","payload":4},{"topic":"t","payload":5},{"topic":"t","payload":6},{"topic":"t","payload":7},{"topic":"t","payload":8},{"topic":"t","payload":9}],"properties":null}'

# or with a concat in its right operand, in a function that calls: the
# builder's temporary is not live across the call's resume point
run 0 "$WFP_AOT" "$found/codegen-or-concat-call.json" -o "$WORK/oc.so" &&
    run 0 "$WFP_HOST" "$WORK/oc.so" && out_is '{"result":1}'

# an if with empty branches still evaluates its condition, and its trap
run 0 "$WFP_AOT" "$found/if-empty-skips-cond-trap.json" -o "$WORK/e.so" &&
    run 1 "$WFP_HOST" "$WORK/e.so" --arg q=0 && err_has "trap: integer division by zero"
run 0 "$WFP_HOST" "$WORK/e.so" --arg q=1 && out_is '{"result":7}'
finish
