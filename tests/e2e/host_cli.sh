#!/bin/sh
# host_cli.sh: wfp-host's command line: help, version, usage errors (exit 2
# with a usage line), argument conversion by parameter type, traces.
. "$(dirname "$0")/lib.sh"
t=$SO/traps.so

run 0 "$WFP_HOST" --help
for opt in --ctx --input --fn --arg --new --max-steps --max-fuel --fuel-slice --trace --report --checkpoint \
    --stop-after --resume --help --version; do
    grep -qF -- "$opt" "$WORK/out" || fail "--help does not mention $opt"
done
run 0 "$WFP_HOST" --version && grep -q "^wfp-host [0-9]" "$WORK/out" || fail "--version"
run 2 "$WFP_HOST" && err_has "usage: wfp-host"
run 2 "$WFP_HOST" "$SO/simple.so" --bogus && first_err_line_has "unknown option '--bogus'" && err_has "usage: wfp-host"
run 2 "$WFP_HOST" "$SO/simple.so" --ctx && err_has "needs a value"
run 2 "$WFP_HOST" "$SO/simple.so" --ctx n=abc && err_has "KEY=I64"
run 2 "$WFP_HOST" "$SO/simple.so" --ctx n=99999999999999999999 && err_has "KEY=I64"
run 2 "$WFP_HOST" "$SO/simple.so" --max-steps 0 && err_has "positive integer"
run 2 "$WFP_HOST" "$SO/simple.so" --max-fuel x && err_has "positive integer"
run 2 "$WFP_HOST" "$SO/simple.so" --stop-after 1 && err_has "needs --checkpoint"
run 2 "$WFP_HOST" "$SO/simple.so" --resume x --ctx n=1 && err_has "drop --input"
run 2 "$WFP_HOST" "$SO/simple.so" --input '[1]' && err_has "must be a JSON object"
run 2 "$WFP_HOST" "$SO/simple.so" --input '{bad' && err_has "must be a JSON object"
run 2 "$WFP_HOST" "$SO/simple.so" --fn nope && err_has "no function 'nope'"
run 2 "$WFP_HOST" "$t" --fn divide --arg c=1 && err_has "has no parameter 'c'"
run 2 "$WFP_HOST" "$t" --fn divide --arg a=x --arg b=1 && err_has "'x' is not an i64"
run 2 "$WFP_HOST" "$t" --fn pick --arg 'doc={' && err_has "is not JSON"
run 2 "$WFP_HOST" "$t" --fn divide --arg a && err_has "NAME=VALUE"
# str parameters take the text as is, json ones JSON text
run 1 "$WFP_HOST" "$t" --fn refuse --arg 'why=a "quoted" \ text' --report &&
    grep -qF '"payload":"a \"quoted\" \\ text"' "$WORK/out" || fail "str argument not passed as is: $(cat "$WORK/out")"
# --fn and --arg build the input; --input may give the rest
run 0 "$WFP_HOST" "$t" --input '{"fn":"divide","args":{"a":9}}' --arg b=3 && out_is '{"result":3}'
# traces: one JSON line per step and per effect, on stderr
run 0 "$WFP_HOST" "$SO/simple.so" --ctx n=41 --trace && out_is '{"result":42}'
lines=$(grep -c '^{"step":' "$WORK/err")
[ "$lines" = 5 ] || fail "--trace: expected 5 lines (3 steps, 2 effects), got $lines"
grep -q '"performed":{"effect":"ctx-get-i64","key":"n"},"resume":{"i64":41}' "$WORK/err" || fail "--trace: no ctx-get-i64 line"
finish
