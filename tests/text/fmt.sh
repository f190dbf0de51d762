#!/bin/sh
# fmt.sh AOT DIR WORK: wfp-aot --fmt rewrites DIR/messy.wfp as DIR/messy.expect
# (comments and blank lines kept), the same program; a second run changes
# nothing; a file with a syntax error is left as it was (exit 1); an
# unreadable one is exit 3; nothing else is left in the directory.
aot=$1 dir=$2 work=$3
rm -rf "$work"
mkdir -p "$work"
fail=0
no() { echo "FAIL $*"; fail=1; }

cp "$dir/messy.wfp" "$work/messy.wfp"
"$aot" --check --emit-ir "$work/before.ir" "$work/messy.wfp" || no "the input does not compile"
"$aot" --fmt "$work/messy.wfp" || no "--fmt failed"
cmp "$work/messy.wfp" "$dir/messy.expect" || { no "--fmt output differs from messy.expect"; diff "$dir/messy.expect" "$work/messy.wfp" | head -20; }
"$aot" --check --emit-ir "$work/after.ir" "$work/messy.wfp" || no "the formatted file does not compile"
cmp -s "$work/before.ir" "$work/after.ir" || no "formatting changed the program"
cp "$work/messy.wfp" "$work/again.wfp"
"$aot" --fmt "$work/again.wfp" && cmp -s "$work/again.wfp" "$work/messy.wfp" || no "a second --fmt changed the text"

printf 'fn main() {\n  return 1 +\n}\n' > "$work/bad.wfp"
cp "$work/bad.wfp" "$work/bad.orig"
"$aot" --fmt "$work/bad.wfp" 2>"$work/bad.err"
rc=$?
[ "$rc" -eq 1 ] || no "--fmt of a syntax error: exit $rc (want 1)"
grep -q "^$work/bad.wfp:3:1: error: expected an expression" "$work/bad.err" || { no "--fmt of a syntax error: $(cat "$work/bad.err")"; }
cmp -s "$work/bad.wfp" "$work/bad.orig" || no "--fmt changed a file it refused"

"$aot" --fmt "$work/missing.wfp" 2>/dev/null
rc=$?
[ "$rc" -eq 3 ] || no "--fmt of a missing file: exit $rc (want 3)"
"$aot" --fmt "$work/messy.wfp" "$work/again.wfp" 2>/dev/null
rc=$?
[ "$rc" -eq 2 ] || no "--fmt with two files: exit $rc (want 2)"

left=$(ls -A "$work" | grep -v -x -e messy.wfp -e again.wfp -e bad.wfp -e bad.orig -e bad.err -e before.ir -e after.ir)
[ -z "$left" ] || no "left in the directory: $left"
[ "$fail" -eq 0 ] && echo "text.fmt: 8 passed, 0 failed"
exit "$fail"
