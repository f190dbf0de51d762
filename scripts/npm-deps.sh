#!/bin/sh
# Installs the Node tools the tests use (jco, the Bytecode Alliance's
# Component Model toolchain; sql.js, SQLite in WebAssembly, for the
# JavaScript host of wfp-aot --emit-js) into DIR, outside the repository tree.
#
#   scripts/npm-deps.sh DIR
#
# Afterwards DIR/node_modules/@bytecodealliance/jco is present; pass DIR to
# tests/wit/check_wit.mjs. Running it again with the same version installed
# does nothing.
set -eu

JCO_VERSION=1.35.0
SQLJS_VERSION=1.17.0

usage() {
    echo "usage: $0 DIR" >&2
    echo "  installs @bytecodealliance/jco@$JCO_VERSION and sql.js@$SQLJS_VERSION into DIR/node_modules" >&2
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

# the version of package $1 installed in DIR, or nothing
have() {
    pkg_json=$dir/node_modules/$1/package.json
    [ -f "$pkg_json" ] || return 0
    node -e 'process.stdout.write(String(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).version))' "$pkg_json" 2>/dev/null || true
}

want=""
[ "$(have @bytecodealliance/jco)" = "$JCO_VERSION" ] || want="$want @bytecodealliance/jco@$JCO_VERSION"
[ "$(have sql.js)" = "$SQLJS_VERSION" ] || want="$want sql.js@$SQLJS_VERSION"
if [ -z "$want" ]; then
    echo "jco $JCO_VERSION and sql.js $SQLJS_VERSION already installed in $dir"
    exit 0
fi

mkdir -p "$dir"
# shellcheck disable=SC2086
if ! npm install --prefix "$dir" --no-audit --no-fund $want; then
    echo "$0: error: npm install of$want into $dir failed" >&2
    exit 3
fi
echo "installed$want in $dir"
