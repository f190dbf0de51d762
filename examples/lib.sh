# lib.sh: what the examples' run scripts share (sourced, not run).
# The tools are WFP_AOT and WFP_HOST, else build/wfp-aot and build/wfp-host
# of this repository; modules go to a temporary directory removed at exit
# (or to WFP_WORK, kept). Each check prints one line, ok or FAIL.
ex_dir=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$ex_dir")
AOT=${WFP_AOT:-$root/build/wfp-aot}
HOST=${WFP_HOST:-$root/build/wfp-host}
if [ -n "${WFP_WORK:-}" ]; then
    WORK=$WFP_WORK
    mkdir -p "$WORK"
else
    WORK=$(mktemp -d)
    trap 'rm -rf "$WORK"' EXIT
fi
checks=0 failed=0

fail() {
    failed=$((failed + 1))
    echo "FAIL $*"
}

# build NAME SO: compiles examples/NAME.wfp to WORK/SO, after checking that
# NAME.wfp and NAME.json are one program (the same canonical IR and IDs).
build() {
    checks=$((checks + 1))
    if ! "$AOT" --check --emit-ir "$WORK/$1.json.ir" "$ex_dir/$1.json" ||
       ! "$AOT" --check --emit-ir "$WORK/$1.wfp.ir" "$ex_dir/$1.wfp"; then
        fail "$1: wfp-aot refused it"
        return 1
    fi
    if ! cmp -s "$WORK/$1.json.ir" "$WORK/$1.wfp.ir"; then
        fail "$1: $1.wfp and $1.json are not the same program"
        return 1
    fi
    if ! "$AOT" "$ex_dir/$1.wfp" -o "$WORK/$2"; then
        fail "$1: wfp-aot $1.wfp"
        return 1
    fi
    echo "ok   wfp-aot $1.wfp -o $2 (the same program as $1.json)"
}

# expect WANT ARGS...: wfp-host ARGS prints WANT and exits 0
expect() {
    want=$1
    shift
    checks=$((checks + 1))
    got=$(cd "$WORK" && "$HOST" "$@" 2>"$WORK/stderr")
    rc=$?
    if [ "$rc" -ne 0 ] || [ "$got" != "$want" ]; then
        fail "wfp-host $*: exit $rc, printed '$got' (want '$want') $(head -c 300 "$WORK/stderr")"
        return 1
    fi
    echo "ok   wfp-host $* -> $got"
}

# expect_trap MESSAGE ARGS...: wfp-host ARGS traps with MESSAGE (exit 1)
expect_trap() {
    want=$1
    shift
    checks=$((checks + 1))
    got=$(cd "$WORK" && "$HOST" "$@" 2>"$WORK/stderr")
    rc=$?
    if [ "$rc" -ne 1 ] || [ -n "$got" ] || ! grep -qF "trap: $want" "$WORK/stderr"; then
        fail "wfp-host $*: exit $rc, stdout '$got', stderr '$(head -c 300 "$WORK/stderr")' (want the trap '$want')"
        return 1
    fi
    echo "ok   wfp-host $* -> trap: $want"
}

finish() {
    echo "$(basename "$0" .sh): $((checks - failed)) passed, $failed failed"
    [ "$failed" -eq 0 ]
}
