#!/bin/sh
# host_cli.sh: wfp-host's command line: help, version, usage errors (exit 2
# with a usage line), argument conversion by parameter type (strict JSON,
# the depth limit, nothing cut), traces, sleeps past the limit.
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
run 2 "$WFP_HOST" "$SO/simple.so" --input '{bad' && err_has "the input: '{bad' is not JSON (expected a string key, at byte 1)"
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

# a value that does not convert is a usage error, never a trap: strict JSON
# (no trailing text, no leading zeros, UTF-8), and nothing dropped
h=$SO/hostcli.so
bad=$(printf 'a\377b')
run 2 "$WFP_HOST" "$h" --fn types --arg n=1 --arg "s=$bad" --arg j=1 && err_has "argument 's': 'a?b' is not valid UTF-8 text"
run 2 "$WFP_HOST" "$h" --fn types --arg n=1 --arg s=x --arg j=01 && err_has "argument 'j': '01' is not JSON (a number with a leading zero, at byte 0)"
run 2 "$WFP_HOST" "$h" --fn types --arg n=1 --arg s=x --arg 'j={"a":1} x' && err_has "is not JSON (text after the value, at byte 8)"
run 2 "$WFP_HOST" "$h" --fn types --arg n=01 --arg s=x --arg j=1 && err_has "argument 'n': '01' is not an i64"
run 2 "$WFP_HOST" "$h" --input '{"fn":"types","args":{"n":1,"s":"x","j":2}} tail' && err_has "is not JSON (text after the value, at byte 44)"
run 2 "$WFP_HOST" "$h" --input '{"fn":"types","args":{"n":1,"s":"x","j":2}} tail' --fn types && err_has "text after the value"
run 2 "$WFP_HOST" "$h" --input '{"fn":"types","args":{"n":01,"s":"x","j":2}}' && err_has "a number with a leading zero, at byte 26"
run 2 "$WFP_HOST" "$h" --input "$(printf '{"fn":"types","args":{"n":1,"s":"\377","j":2}}')" && err_has "invalid UTF-8 in a string, at byte 33"
run 2 "$WFP_HOST" "$h" --fn types --ctx "$(printf '\377')=1" && err_has "--ctx: a key that is not valid UTF-8"
# an input rewritten for --fn keeps every digit of its numbers
run 0 "$WFP_HOST" "$h" --input '{"args":{"n":9007199254740993,"s":"x","j":1.50}}' --fn types &&
    out_is '{"n":9007199254740993,"s":"x","j":1.50}'
# JSON nested deeper than WFP_JSON_MAX_DEPTH (256, the input's own levels
# counted) is refused, naming the limit; 256 levels pass
deep() { python3 -c "import sys; d=int(sys.argv[1]); print(sys.argv[2] + '['*d + '1' + ']'*d + sys.argv[3])" "$@"; }
run 2 "$WFP_HOST" "$h" --fn types --arg n=1 --arg s=x --arg "j=$(deep 255 '' '')" &&
    err_has "nests too deep: with the input around it, more than 256 levels (WFP_JSON_MAX_DEPTH)"
run 0 "$WFP_HOST" "$h" --fn types --arg n=1 --arg s=x --arg "j=$(deep 254 '' '')" &&
    grep -q '^{"n":1,"s":"x","j":\[\[' "$WORK/out" || fail "an argument 254 levels deep did not pass"
run 2 "$WFP_HOST" "$h" --input "$(deep 255 '{"fn":"types","args":{"n":1,"s":"x","j":' '}}')" &&
    err_has "nests too deep: more than 256 levels (WFP_JSON_MAX_DEPTH)"
# names, keys and values of any length, whole
long() { python3 -c "import sys; print(sys.argv[1] * int(sys.argv[2]))" "$@"; }
run 0 "$WFP_HOST" "$h" --fn longParam --arg "$(long p 300)=abc" && out_is '{"result":3}'
run 0 "$WFP_HOST" "$h" --fn longKey --ctx "$(long k 600)=7" && out_is '{"result":7}'
run 0 "$WFP_HOST" "$h" --fn show --new "Box:s=$(long s 2000),n=5" &&
    out_is "{\"n\":5,\"s\":\"$(long s 2000)\",\"j\":null}"

# a sleep past the longest one (a day) is a trap, at once; negative is 0;
# a checkpoint may carry any duration, and the resumed run traps alike
run 1 timeout 60 "$WFP_HOST" "$h" --fn sleepy --arg ms=9223372036854775807 &&
    err_has "trap: sleep_ms: 9223372036854775807 ms is longer than the longest sleep, 86400000 ms (a day)"
run 0 timeout 60 "$WFP_HOST" "$h" --fn sleepy --arg ms=-9223372036854775808 && out_is '{"result":1}'
rm -f "$WORK/sleep.ck"
run 4 "$WFP_HOST" "$h" --fn sleepy --arg ms=9223372036854775807 --checkpoint "$WORK/sleep.ck" --stop-after 1
run 1 timeout 60 "$WFP_HOST" "$h" --resume "$WORK/sleep.ck" && err_has "longer than the longest sleep"

# traces: one JSON line per step and per effect, on stderr
run 0 "$WFP_HOST" "$SO/simple.so" --ctx n=41 --trace && out_is '{"result":42}'
lines=$(grep -c '^{"step":' "$WORK/err")
[ "$lines" = 5 ] || fail "--trace: expected 5 lines (3 steps, 2 effects), got $lines"
grep -q '"performed":{"effect":"ctx-get-i64","key":"n"},"resume":{"i64":41}' "$WORK/err" || fail "--trace: no ctx-get-i64 line"
finish
