#!/bin/sh
# Installs what wfp needs to build, test and benchmark on Debian 12 (as root,
# or with sudo). Safe to run again: apt-get installs only what is missing.
set -eu

SUDO=
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
fi

packages="build-essential cmake pkg-config clang lld binaryen wabt \
libcjson-dev libcmocka-dev libsqlite3-dev libuv1-dev python3 strace hyperfine"
# clang's libFuzzer and sanitizer runtimes (tests/fuzz), and the symbolizer
# that puts file and line into their reports
packages="$packages libclang-rt-14-dev llvm"
# The service (wfp-host serve): HTTP parsing; curl for the README's example
# and bench/service.sh; Chromium and a font for the status page's test (a
# screenshot in which the page's text is drawn); the sqlite3 command for
# the store's operations (docs/service.md).
packages="$packages libhttp-parser-dev curl chromium fonts-dejavu-core sqlite3"
# PostgreSQL: the store several hosts share (libpq), and the throwaway
# cluster its tests start (initdb, pg_ctl; no system service is used)
packages="$packages postgresql libpq-dev"
# Node.js runs the WIT and component tests (jco) and the V8 baseline; npm
# installs jco. Debian 12's nodejs is 18, and jco wants 20 or later: when
# the node on PATH is older, node 20 comes from the npm registry (below).
if ! command -v npm >/dev/null 2>&1; then
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

node_major() {
    node -e 'process.stdout.write(process.versions.node.split(".")[0])' 2>/dev/null || echo 0
}
NODE_VERSION=20.20.2
if [ "$(node_major)" -lt 20 ]; then
    case "$(uname -m)" in
        x86_64) arch=x64 ;;
        aarch64) arch=arm64 ;;
        *) echo "$0: error: Node.js 20 or later is needed; install it for $(uname -m)" >&2; exit 3 ;;
    esac
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    # the registry's node-linux-<arch> package is the release binary itself
    (cd "$tmp" && npm pack --silent "node-linux-$arch@$NODE_VERSION" >/dev/null &&
        tar xzf "node-linux-$arch-$NODE_VERSION.tgz")
    $SUDO install -m 755 "$tmp/package/bin/node" /usr/local/bin/node
    hash -r 2>/dev/null || true
    echo "installed node $(/usr/local/bin/node --version) in /usr/local/bin"
fi
