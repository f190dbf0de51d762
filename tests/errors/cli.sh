#!/bin/sh
# cli.sh: checks wfp-aot's command line on refusals: exit codes, that nothing
# is written, usage errors and --help/--version. It compiles no valid program.
# Usage: cli.sh WFP_AOT CORPUS_DIR WORK_DIR
set -u

if [ $# -ne 3 ]; then
    echo "usage: cli.sh WFP_AOT CORPUS_DIR WORK_DIR" >&2
    exit 2
fi
aot=$1
corpus=$2
work=$3
failures=0

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# Runs wfp-aot with the given arguments; leaves $rc, $work/stdout, $work/stderr.
run() {
    "$aot" "$@" >"$work/stdout" 2>"$work/stderr"
    rc=$?
}

expect_rc() {
    want=$1
    what=$2
    if [ "$rc" -ne "$want" ]; then
        fail "$what: exit status $rc, expected $want (stderr: $(head -n 3 "$work/stderr"))"
        return 1
    fi
    return 0
}

# A fresh, empty directory for the outputs, so that anything left in it after
# a refusal (the outputs or a temporary file of an atomic write) is seen.
out="$work/out"
rm -rf "$work"
mkdir -p "$out" || { echo "FAIL: cannot create $out"; exit 1; }

# 1. Refused programs: exit 1, a diagnostic naming the file, nothing written.
for case in 002-json-trailing-comma 006-unknown-op-statement \
            049-set-captured-nested-function 060-invalid-utf8-in-json-template \
            074-duplicate-resource; do
    file="$corpus/$case.json"
    if [ ! -f "$file" ]; then
        fail "$case: corpus file missing"
        continue
    fi
    run "$file" -o "$out/out.so" --emit-ir "$out/out.json" --emit-wasm "$out/out.wasm"
    expect_rc 1 "$case"
    # the first line of stderr is the diagnostic, and it names the file
    first=$(head -n 1 "$work/stderr")
    case "$first" in
        "$file":*"error: "*) ;;
        *) fail "$case: first stderr line is not 'FILE...: error: ...' (got: $first)" ;;
    esac
    for f in out.so out.json out.wasm; do
        [ -e "$out/$f" ] && fail "$case: $f was written although the program was refused"
    done
    left=$(ls -A "$out")
    [ -n "$left" ] && fail "$case: files left in the output directory: $left"
    rm -rf "$out" && mkdir -p "$out"
done

# 2. --entry naming a function the program lacks is a refusal, not a usage
# error: the program is what does not fit.
cat >"$work/ok.json" <<'EOF'
{"version": 1, "functions": [{"name": "main", "params": [], "body": [
  {"op": "return", "expr": {"op": "lit_i64", "value": 1}}]}]}
EOF
run "$work/ok.json" --entry start -o "$out/out.so"
expect_rc 1 "--entry start (no such function)"
grep -q "start" "$work/stderr" || fail "--entry start: stderr does not name 'start'"
[ -e "$out/out.so" ] && fail "--entry start: out.so was written"

# 3. Environment errors: exit 3.
run "$work/does-not-exist.json" -o "$out/out.so"
expect_rc 3 "missing input file"
[ -s "$work/stderr" ] || fail "missing input file: nothing on stderr"
run "$corpus" -o "$out/out.so"
expect_rc 3 "a directory as input"
[ -s "$work/stderr" ] || fail "a directory as input: nothing on stderr"
[ -e "$out/out.so" ] && fail "environment errors: out.so was written"

# 4. Usage errors: exit 2 and a usage line somewhere on stderr.
run --no-such-option "$work/ok.json"
if expect_rc 2 "unknown option"; then
    grep -q '^usage: wfp-aot' "$work/stderr" || fail "unknown option: no 'usage: wfp-aot' line on stderr"
fi
run
if expect_rc 2 "no program"; then
    grep -q '^usage: wfp-aot' "$work/stderr" || fail "no program: no 'usage: wfp-aot' line on stderr"
fi

# 5. --help: exit 0, every option of CONTRACT section 4 on stdout.
run --help
if expect_rc 0 "--help"; then
    for opt in -o --entry -O0 --emit-ir --emit-wasm --emit-c --emit-wit --help --version; do
        # -O0 may be listed as a range (-O0..-O3) or a list (-O0 -O1 ...)
        grep -Eq -e "$opt([^a-zA-Z-]|\$)" "$work/stdout" || fail "--help does not mention $opt"
    done
fi

# 6. --version: exit 0 and a version number on stdout.
run --version
if expect_rc 0 "--version"; then
    grep -q '[0-9][0-9]*\.[0-9][0-9]*' "$work/stdout" || fail "--version prints no version number"
fi

if [ "$failures" -ne 0 ]; then
    echo "$failures failure(s)"
    exit 1
fi
echo "all checks passed"
exit 0
