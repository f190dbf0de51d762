#!/bin/sh
# traps.sh: runtime faults and explicit traps come back as a trap (exit 1,
# "wfp-host: trap: MESSAGE" on stderr), with what happened before them kept.
. "$(dirname "$0")/lib.sh"
t=$SO/traps.so

run 1 "$WFP_HOST" "$t" --fn divide --arg a=7 --arg b=0 && first_err_line_has "trap: integer division by zero"
run 1 "$WFP_HOST" "$t" --fn divide --arg a=-9223372036854775808 --arg b=-1 && err_has "trap: integer overflow"
run 1 "$WFP_HOST" "$t" --fn remainder --arg a=5 --arg b=0 && err_has "trap: integer division by zero"
# INT64_MIN rem -1 is 0, as in C and Wasm
run 0 "$WFP_HOST" "$t" --fn remainder --arg a=-9223372036854775808 --arg b=-1 && out_is '{"result":0}'
run 0 "$WFP_HOST" "$t" --fn divide --arg a=-7 --arg b=2 && out_is '{"result":-3}'
run 0 "$WFP_HOST" "$t" --fn remainder --arg a=-7 --arg b=2 && out_is '{"result":-1}'
run 0 "$WFP_HOST" "$t" --fn shifts --arg x=-17 --arg s=65 &&
    out_is '{"shl":-34,"shr":-9,"div":-4,"rem":-1,"wrap":-9223372036854775808}'
# recursion is bounded at run time
run 0 "$WFP_HOST" "$t" --fn deep --arg n=1000 && out_is '{"result":1000}'
run 1 "$WFP_HOST" "$t" --fn deep --arg n=1000000 && err_has "trap: call stack exhausted"
# an explicit trap; the message sent before it is kept in the report
run 1 "$WFP_HOST" "$t" --fn refuse --arg why=because --report &&
    out_is '{"status":"trap","output":null,"trap":"refused on purpose","steps":2,"fuel":0,"ctx":{},"messages":[{"topic":"before","payload":"because"}],"properties":null}'
run 1 "$WFP_HOST" "$t" --fn needs_ctx && err_has "trap: context key 'absent' is not set"
run 0 "$WFP_HOST" "$t" --fn pick --arg 'doc={"items":[{"n":1},{"n":22}]}' && out_is '{"result":22}'
run 1 "$WFP_HOST" "$t" --fn pick --arg 'doc={"items":[{"n":1}]}' && err_has 'get_i64: $.items[1]: not found'
run 1 "$WFP_HOST" "$t" --fn pick --arg 'doc={"items":[1,{"n":"x"}]}' && err_has 'get_i64: $.items[1].n is a string, not a number'
run 1 "$WFP_HOST" "$t" --fn pick --arg 'doc=[1]' && err_has 'is an array, not an object'
# arguments the input lacks or mistypes are traps of the invocation
run 1 "$WFP_HOST" "$t" --input '{"fn":"divide","args":{"a":1}}' && err_has "argument 'b' is missing"
run 1 "$WFP_HOST" "$t" --input '{"fn":"divide","args":{"a":1,"b":"x"}}' && err_has "argument 'b' must be an integer"
run 0 "$WFP_HOST" "$t" --input '{"fn":"divide","args":[8,2,1]}' &&
    out_is '{"result":4}'
run 0 "$WFP_HOST" "$t" --input '{"fn":"divide","args":[8,2]}' && out_is '{"result":4}'
run 1 "$WFP_HOST" "$t" --input '{"args":{}}' && err_has "no function to run"
# fuel: a loop without effects yields every 1,000,000 iterations, so step
# and fuel limits stop it; recursion consumes fuel too
f=$SO/spin_forever.so
run 1 "$WFP_HOST" "$f" --max-steps 5 && err_has "trap: step limit reached (5 steps)"
run 1 "$WFP_HOST" "$f" --max-fuel 2500000 --report &&
    out_is '{"status":"trap","output":null,"trap":"fuel limit reached (2500000 units)","steps":3,"fuel":2500000,"ctx":{},"messages":[],"properties":null}'
run 0 "$WFP_HOST" "$f" --fn fib --arg n=20 --report &&
    out_is '{"status":"done","output":{"result":6765},"trap":null,"steps":1,"fuel":21891,"ctx":{},"messages":[],"properties":null}'
run 1 "$WFP_HOST" "$f" --fn fib --arg n=20 --max-fuel 1000 && err_has "trap: fuel limit reached (1000 units)"
run 1 "$WFP_HOST" "$f" --max-steps 3 --trace &&
    err_has '"pending":{"effect":"yield"}'
# a small slice: the same result, in more steps; a yield inside recursion
run 0 "$WFP_HOST" "$f" --fn fib --arg n=20 --fuel-slice 1000 --report &&
    out_is '{"status":"done","output":{"result":6765},"trap":null,"steps":22,"fuel":21891,"ctx":{},"messages":[],"properties":null}'
# a step limit ends the invocation as a trap
run 1 "$WFP_HOST" "$SO/loop.so" --ctx n=100 --ctx step=1 --max-steps 7 && err_has "trap: step limit reached (7 steps)"
# regressions found by the differential tests:
# a condition is evaluated even when both ways of the if meet (its trap
# must not be lost), and a temporary set and read inside one arm of a
# short-circuit is not taken for a value live across a later call
r=$SO/regress.so
run 1 "$WFP_HOST" "$r" --fn emptyIf --arg q=0 && err_has "integer division by zero"
run 0 "$WFP_HOST" "$r" --fn emptyIf --arg q=1 && out_is '{"result":7}'
run 0 "$WFP_HOST" "$r" --fn orConcat && out_is '{"result":1}'
# a json template nests a value in its own arrays: within the depth limit
# (256) it builds, past it a trap (never a value a host could not read)
j=$SO/json_depth.so
run 0 "$WFP_HOST" "$j" --fn wrap --arg n=256 && out_is '{"result":1}'
run 1 "$WFP_HOST" "$j" --fn wrap --arg n=257 &&
    err_has "json template: JSON nested deeper than the limit of 256 levels"
finish
