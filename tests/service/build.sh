#!/bin/sh
# build.sh: compiles the service tests' programs once (the fixture of
# every service.* test). Usage: build.sh WFP_AOT PROGRAMS EXAMPLES OUTDIR
set -eu
aot=$1 programs=$2 examples=$3 out=$4
mkdir -p "$out"
for p in svc crash multihost version.v1 version.v2; do
    "$aot" "$programs/$p.wfp" -o "$out/$p.so"
done
"$aot" "$examples/program.simple.json" -o "$out/simple.so"
"$aot" "$examples/service/bank.wfp" -o "$out/bank.so"
