# lib.sh: helpers the end-to-end test scripts source. Each check prints what
# failed and counts it; `finish` exits non-zero when anything failed.
# Needs: WFP_AOT, WFP_HOST, SO (compiled modules), WORK (a scratch dir).

failures=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# run EXPECTED_STATUS CMD...: runs CMD with stdout in $WORK/out, stderr in
# $WORK/err, and checks its exit status
run() {
    want=$1
    shift
    "$@" >"$WORK/out" 2>"$WORK/err"
    got=$?
    if [ "$got" != "$want" ]; then
        fail "exit status $got, expected $want: $*"
        sed 's/^/    stderr: /' "$WORK/err" | head -5 >&2
        return 1
    fi
    return 0
}

# out_is TEXT: stdout of the last run is exactly TEXT (one line)
out_is() {
    if [ "$(cat "$WORK/out")" != "$1" ]; then
        fail "stdout: expected '$1', got '$(cat "$WORK/out")'"
    fi
}

# err_has TEXT: stderr of the last run contains TEXT
err_has() {
    if ! grep -qF -- "$1" "$WORK/err"; then
        fail "stderr: expected to contain '$1', got '$(head -3 "$WORK/err")'"
    fi
}

# first_err_line_has TEXT: the first line of stderr contains TEXT
first_err_line_has() {
    if ! head -1 "$WORK/err" | grep -qF -- "$1"; then
        fail "first stderr line: expected '$1', got '$(head -1 "$WORK/err")'"
    fi
}

finish() {
    if [ "$failures" -ne 0 ]; then
        echo "$failures check(s) failed" >&2
        exit 1
    fi
    echo "all checks passed"
    exit 0
}
