#!/bin/sh
# One component ctest: compile a program to a core module with wfp-aot, run it as a component (run_component.mjs).
# Also builds the native .so and runs wfp-host --report on it, so both paths must agree; it does not install jco.
#
#   sh run.sh WFP_AOT WFP_HOST NODE NPM_DIR WIT_FILE PROGRAM CTX_JSON EXPECTED_OUTPUT_JSON EXPECTED_MESSAGES_JSON
#
# CTX_JSON is a JSON object of integers ('{"n": 41}'); it becomes --ctx KEY=N for wfp-host and the
# initial context of the JS host. Exit 0 when everything matches, non-zero (a failed test) otherwise,
# including when NPM_DIR holds no jco: a missing toolchain must not pass as a skipped test.
set -eu

if [ "$#" -ne 9 ]; then
    echo "usage: $0 WFP_AOT WFP_HOST NODE NPM_DIR WIT_FILE PROGRAM CTX_JSON EXPECTED_OUTPUT_JSON EXPECTED_MESSAGES_JSON" >&2
    exit 2
fi
aot=$1 host=$2 node=$3 npm_dir=$4 wit=$5 program=$6 ctx=$7 want_output=$8 want_messages=$9
here=$(cd "$(dirname "$0")" && pwd)
name=$(basename "$program" .json)

if [ -z "$npm_dir" ] || [ ! -f "$npm_dir/node_modules/@bytecodealliance/jco/package.json" ]; then
    echo "component test $name: FAIL: jco is not installed in WFP_NPM_DIR='$npm_dir'; run scripts/npm-deps.sh DIR and configure with -DWFP_NPM_DIR=DIR" >&2
    exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/wfp-component-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

# The core module exactly as wfp-aot produces it: nothing is added for the component.
if ! "$aot" --check --emit-wasm "$tmp/$name.wasm" "$program"; then
    echo "component test $name: FAIL: wfp-aot --check --emit-wasm refused $program" >&2
    exit 1
fi

# The native path on the same program and context, for the cross-check.
if ! "$aot" "$program" -o "$tmp/$name.so"; then
    echo "component test $name: FAIL: wfp-aot could not build the native module of $program" >&2
    exit 1
fi
"$node" -e '
  for (const [k, v] of Object.entries(JSON.parse(process.argv[1]))) console.log(`${k}=${v}`);
' "$ctx" > "$tmp/ctx.txt"
set --
while IFS= read -r kv; do
    set -- "$@" --ctx "$kv"
done < "$tmp/ctx.txt"
# A trap is reported in the JSON (status "trap") and compared there, so its exit 1 is no error here.
rc=0
"$host" "$tmp/$name.so" "$@" --report > "$tmp/native.json" || rc=$?
if [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ]; then
    echo "component test $name: FAIL: wfp-host exited with $rc on the native module" >&2
    exit 1
fi

# Not exec: the EXIT trap must still remove the temporary directory.
rc=0
"$node" "$here/run_component.mjs" --native-report "$tmp/native.json" \
    "$npm_dir" "$wit" "$tmp/$name.wasm" "$ctx" "$want_output" "$want_messages" || rc=$?
exit "$rc"
