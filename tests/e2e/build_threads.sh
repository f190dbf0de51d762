#!/bin/sh
# build_threads.sh: compiles the few programs the tests labelled "threads"
# run (test_loop, threads.sh), so that the ThreadSanitizer build compiles
# no more than it needs. Usage: build_threads.sh WFP_AOT EXAMPLES PROGRAMS OUTDIR
set -eu
aot=$1 examples=$2 programs=$3 out=$4
mkdir -p "$out"
"$aot" "$examples/program.simple.json" -o "$out/simple.so"
for p in runtime db; do
    "$aot" "$programs/$p.json" -o "$out/$p.so"
done
