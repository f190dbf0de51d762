#!/bin/sh
# limits.sh: the sizes docs/ir.md ("Limits") gives, as wfp-aot's front end
# checks them: one past each limit is refused (exit 1, the JSON path and the
# limit named, nothing written), and exactly at it the program is accepted.
# The programs are generated: too large for the corpus, whose every case
# errors.truncate loads cut at every 7th byte.
# Usage: limits.sh WFP_AOT WORK_DIR
set -u
aot=$1
work=$2
here=$(dirname "$0")
failures=0
rm -rf "$work"
mkdir -p "$work" || exit 1

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# gen SHAPE N FILE: a valid program of that shape and size
gen() {
    python3 "$here/limits_gen.py" "$1" "$2" "$3"
}

# refused SHAPE N PATH MESSAGE
refused() {
    f="$work/$1-$2.json"
    gen "$1" "$2" "$f" || { fail "$1 $2: cannot generate"; return; }
    "$aot" "$f" -o "$work/out.so" >"$work/stdout" 2>"$work/stderr"
    rc=$?
    [ "$rc" -eq 1 ] || fail "$1 $2: exit status $rc, expected 1"
    first=$(head -n 1 "$work/stderr")
    case "$first" in
        "$f: $3: error: "*"$4"*) ;;
        *) fail "$1 $2: expected '$f: $3: error: ...$4...', got '$first'" ;;
    esac
    [ -e "$work/out.so" ] && fail "$1 $2: a refused program wrote its output"
    rm -f "$f"
}

# accepted SHAPE N: the front end takes it (--check: no C compiler)
accepted() {
    f="$work/$1-$2.json"
    gen "$1" "$2" "$f" || { fail "$1 $2: cannot generate"; return; }
    "$aot" --check "$f" >"$work/stdout" 2>"$work/stderr"
    rc=$?
    [ "$rc" -eq 0 ] || fail "$1 $2: exit status $rc, expected 0 ($(head -n 1 "$work/stderr"))"
    rm -f "$f"
}

refused params 1001 '$.functions[1].params' "'wide' has 1001 parameters: at most 1000 are allowed"
accepted params 1000
refused captures 1001 '$.functions[1]' "'inner' has 1001 parameters with its 2 captured variables: at most 1000 are allowed"
accepted captures 1000
refused nesting 257 '$.functions[257]' "'n257' is nested in more than 256 functions: at most 256 levels of nesting are allowed"
accepted nesting 256
refused loops 257 "\$.functions[0]$(python3 -c 'print(".body[0]" * 257)')" 'loops nested more than 256 deep in one function'
accepted loops 256
refused sites 2001 '$.functions[0]' "'main' has 2001 effects, calls and loops (the places where it can suspend): at most 2000 are allowed in one function"
accepted sites 2000
refused functions 10001 '$.functions' 'the program has 10001 functions (lambdas included): at most 10000 are allowed'
accepted functions 10000
refused parts 10001 '$.functions[0].body[0].expr' 'a concat of 10001 parts: at most 10000 are allowed'
accepted parts 10000
refused holes 10001 '$.functions[0].body[0].expr' 'a json template of 10001 holes: at most 10000 are allowed'
accepted holes 10000

if [ "$failures" -ne 0 ]; then
    echo "$failures check(s) failed"
    exit 1
fi
echo "all checks passed"
