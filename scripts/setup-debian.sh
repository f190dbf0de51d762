#!/bin/sh
# Installs what wfp needs to build, test and benchmark on Debian 12 (as root,
# or with sudo). Safe to run again: apt-get installs only what is missing.
set -eu

SUDO=
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
fi

packages="build-essential cmake pkg-config clang lld binaryen wabt \
libcjson-dev libcmocka-dev libsqlite3-dev strace hyperfine"
# clang's libFuzzer and sanitizer runtimes (tests/fuzz), and the symbolizer
# that puts file and line into their reports
packages="$packages libclang-rt-14-dev llvm"
# Node.js runs the WIT and component tests (jco) and the V8 baseline.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    packages="$packages nodejs npm"
fi

missing=
for p in $packages; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
if [ -n "$missing" ]; then
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update
    # shellcheck disable=SC2086
    $SUDO apt-get install -y --no-install-recommends $missing
fi
