#!/bin/sh
# The main job: install what is needed, build wfp, compile
# examples/program.simple.json and run it with --ctx n=41.
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup-debian.sh >&2
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >&2
cmake --build build -j "$(nproc)" >&2
./build/wfp-aot examples/program.simple.json -o build/simple.so
./build/wfp-host build/simple.so --ctx n=41
