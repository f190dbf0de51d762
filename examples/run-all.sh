#!/bin/sh
# run-all.sh: compiles and runs every example (examples/program.*.sh) and
# checks each output. Tools: WFP_AOT and WFP_HOST, else build/ of this
# repository. Exit 0 when every check passed.
dir=$(cd "$(dirname "$0")" && pwd)
passed=0 failed=0
for s in "$dir"/program.*.sh; do
    if sh "$s"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL $(basename "$s")"
    fi
done
echo "examples: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
