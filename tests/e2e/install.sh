#!/bin/sh
# install.sh: `cmake --install` puts the library, its headers and wfp.pc in
# a prefix; the example of docs/embedding.md builds with pkg-config alone
# and runs: compile a program in memory, run it, read the results back.
. "$(dirname "$0")/lib.sh"
prefix=$WORK/prefix
rm -rf "$prefix"
run 0 cmake --install "$BUILD" --prefix "$prefix" || finish
for f in include/wfp/wfp.h include/wfp/ir.h include/wfp/codegen.h include/wfp/aot.h \
    include/wfp/host.h include/wfp/abi.h include/wfp/text.h share/wfp/wfp-run.mjs bin/wfp-aot bin/wfp-host share/wfp/function.wit; do
    [ -e "$prefix/$f" ] || fail "not installed: $f"
done
pc=$(find "$prefix" -name wfp.pc | head -1)
[ -n "$pc" ] || fail "no wfp.pc installed"
export PKG_CONFIG_PATH
PKG_CONFIG_PATH=$(dirname "$pc")
flags=$(pkg-config --cflags --libs wfp) || fail "pkg-config does not know wfp"
# shellcheck disable=SC2086
# (a sanitized library needs a program built with the same sanitizers)
# shellcheck disable=SC2086
# the line of docs/embedding.md: the rpath lets the program find libwfp.so.0
# where it was installed, with no LD_LIBRARY_PATH
libdir=$(pkg-config --variable=libdir wfp)
run 0 ${CC:-cc} -Wall -Werror $SANITIZE -o "$WORK/embed" "$SRC/embed.c" $flags -Wl,-rpath,"$libdir" || finish
cd "$WORK" || finish
run 0 env -u LD_LIBRARY_PATH "$WORK/embed" "$WORK/embedded.so"
grep -q '^output {"result":42}$' "$WORK/out" || fail "output: $(cat "$WORK/out")"
grep -q '^message seen 41$' "$WORK/out" || fail "message: $(cat "$WORK/out")"
grep -q '^ctx twice 82, steps 4$' "$WORK/out" || fail "ctx: $(cat "$WORK/out")"
# the installed commands work too
run 0 "$prefix/bin/wfp-host" "$WORK/embedded.so" --ctx n=1 && out_is '{"result":2}'
finish
