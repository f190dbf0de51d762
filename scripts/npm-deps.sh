#!/bin/sh
# Installs the Node tools the tests use (jco, the Bytecode Alliance's
# Component Model toolchain) into DIR, outside the repository tree.
#
#   scripts/npm-deps.sh DIR
#
# Afterwards DIR/node_modules/@bytecodealliance/jco is present; pass DIR to
# tests/wit/check_wit.mjs. Running it again with the same version installed
# does nothing.
set -eu

JCO_VERSION=1.35.0

usage() {
    echo "usage: $0 DIR" >&2
    echo "  installs @bytecodealliance/jco@$JCO_VERSION into DIR/node_modules" >&2
}

if [ "$#" -ne 1 ] || [ -z "$1" ]; then
    usage
    exit 2
fi
case "$1" in
    -h|--help) usage; exit 0 ;;
esac
dir=$1

if ! command -v npm >/dev/null 2>&1; then
    echo "$0: error: npm not found in PATH; install Node.js (20 or later) with npm" >&2
    exit 3
fi
if ! command -v node >/dev/null 2>&1; then
    echo "$0: error: node not found in PATH; install Node.js (20 or later)" >&2
    exit 3
fi

pkg_json=$dir/node_modules/@bytecodealliance/jco/package.json
if [ -f "$pkg_json" ]; then
    have=$(node -e 'process.stdout.write(String(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).version))' "$pkg_json" 2>/dev/null || true)
    if [ "$have" = "$JCO_VERSION" ]; then
        echo "jco $JCO_VERSION already installed in $dir"
        exit 0
    fi
fi

mkdir -p "$dir"
if ! npm install --prefix "$dir" --no-audit --no-fund \
        "@bytecodealliance/jco@$JCO_VERSION"; then
    echo "$0: error: npm install of @bytecodealliance/jco@$JCO_VERSION into $dir failed" >&2
    exit 3
fi
echo "jco $JCO_VERSION installed in $dir"
