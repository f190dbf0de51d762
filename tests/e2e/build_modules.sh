#!/bin/sh
# build_modules.sh: compiles the programs the end-to-end tests run, once,
# with the real wfp-aot (wasm2c and the system C compiler included).
# Usage: build_modules.sh WFP_AOT EXAMPLES PROGRAMS OUTDIR
set -eu
aot=$1 examples=$2 programs=$3 out=$4
mkdir -p "$out"
for ex in simple nested converter accumulator resource bank-account state-machine orders; do
    "$aot" "$examples/program.$ex.json" -o "$out/$ex.so"
done
for p in loop calls traps spin spin_forever closures db regress hostcli runtime closure_chain \
         json_depth; do
    "$aot" "$programs/$p.json" -o "$out/$p.so"
done
