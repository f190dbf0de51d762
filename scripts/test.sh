#!/bin/sh
# The whole test suite: install what is needed, then build and run every
# test twice, once plain and once under AddressSanitizer and
# UndefinedBehaviorSanitizer; then what runs on threads (the ctest labels
# "threads" and "service": the service's committer and worker threads) once
# more under ThreadSanitizer; then the fuzz targets for a minute each.
# Exits non-zero when anything fails.
set -eu
cd "$(dirname "$0")/.."
jobs=$(nproc)
sh scripts/setup-debian.sh
# jco (Node) for the WIT and component tests, outside the source tree
npm_dir=$(pwd)/build-npm
sh scripts/npm-deps.sh "$npm_dir"

run() {
    dir=$1
    shift
    echo "== $dir: configure and build" >&2
    cmake -S . -B "$dir" -DWFP_WERROR=ON -DWFP_NPM_DIR="$npm_dir" "$@"
    cmake --build "$dir" -j "$jobs"
    echo "== $dir: test" >&2
    ctest --test-dir "$dir" --output-on-failure -j "$jobs"
}

run build -DCMAKE_BUILD_TYPE=RelWithDebInfo
# Sanitizers: a failure anywhere aborts (no recovery), leaks included.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
run build-asan -DCMAKE_BUILD_TYPE=Debug -DWFP_ENABLE_ASAN=ON -DWFP_ENABLE_UBSAN=ON
# ThreadSanitizer: only what the threaded tests need, and only those tests
unset ASAN_OPTIONS UBSAN_OPTIONS
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
echo "== build-tsan: configure and build" >&2
cmake -S . -B build-tsan -DWFP_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWFP_ENABLE_TSAN=ON
cmake --build build-tsan -j "$jobs" --target wfp-aot wfp-host wfp_service_module test_loop
echo "== build-tsan: test (labels threads and service)" >&2
ctest --test-dir build-tsan --output-on-failure -j "$jobs" -L 'threads|service'
unset TSAN_OPTIONS
# Fuzzing (tests/fuzz/README.md): clang's libFuzzer, each target for a
# bounded time (WFP_FUZZ_SECONDS, 60 by default); a crash, a leak or a
# broken promise fails it.
echo "== build-fuzz: configure and build" >&2
cmake -S . -B build-fuzz -DWFP_WERROR=ON -DCMAKE_C_COMPILER=clang -DWFP_BUILD_FUZZ=ON \
      -DWFP_BUILD_TESTS=OFF -DWFP_BUILD_BENCH=OFF
cmake --build build-fuzz -j "$jobs"
echo "== build-fuzz: fuzz" >&2
ctest --test-dir build-fuzz --output-on-failure -j "$jobs" -L fuzz
echo "== all tests passed (plain, sanitized, threads and service under ThreadSanitizer, fuzzed)" >&2
