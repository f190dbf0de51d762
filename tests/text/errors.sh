#!/bin/sh
# errors.sh AOT DIR: every DIR/NNN-what.wfp is refused by wfp-aot --check
# (exit 1, nothing written) and its first diagnostic is the line, column
# and message that NNN-what.expect names.
aot=$1 dir=$2
passed=0 failed=0
cd "$dir" || exit 2
for f in *.wfp; do
    b=${f%.wfp}
    line=$(sed -n 's/^line: //p' "$b.expect")
    col=$(sed -n 's/^col: //p' "$b.expect")
    msg=$(sed -n 's/^message: //p' "$b.expect")
    want="$f:$line:$col: error: $msg"
    err=$("$aot" --check "$f" 2>&1 >/dev/null)
    rc=$?
    got=$(printf '%s\n' "$err" | head -n 1)
    last=$(printf '%s\n' "$err" | tail -n 1)
    if [ "$rc" -ne 1 ] || [ "$got" != "$want" ] || [ "$last" != "wfp-aot: nothing written" ]; then
        failed=$((failed + 1))
        echo "FAIL $f: exit $rc"
        echo "  want: $want"
        echo "  got:  $got"
    else
        passed=$((passed + 1))
    fi
done
echo "text error corpus: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -ge 30 ]
