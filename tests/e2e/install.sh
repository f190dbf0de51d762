#!/bin/sh
# install.sh: `cmake --install` puts the two libraries, their headers and
# pkg-config files in a prefix; the runtime library links no compiler (no
# Binaryen, no C++ runtime); the example of docs/embedding.md builds with
# pkg-config alone and runs (compile a program in memory, run it, read the
# results back), and so does examples/embed/host.c on libwfp-host alone (a
# handler of its own, many invocations on one loop).
. "$(dirname "$0")/lib.sh"
prefix=$WORK/prefix
rm -rf "$prefix"
run 0 cmake --install "$BUILD" --prefix "$prefix" || finish
for f in include/wfp/wfp.h include/wfp/ir.h include/wfp/codegen.h include/wfp/aot.h \
    include/wfp/host.h include/wfp/loop.h include/wfp/abi.h include/wfp/wasm-rt.h \
    include/wfp/text.h share/wfp/wfp-run.mjs bin/wfp-aot bin/wfp-host share/wfp/function.wit; do
    [ -e "$prefix/$f" ] || fail "not installed: $f"
done
pc=$(find "$prefix" -name wfp.pc | head -1)
[ -n "$pc" ] || fail "no wfp.pc installed"
[ -f "$(dirname "$pc")/wfp-host.pc" ] || fail "no wfp-host.pc installed"
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
# libwfp-host: the runtime alone, without the compiler's libraries
hostlib=$(pkg-config --variable=libdir wfp-host)/libwfp-host.so
[ -f "$hostlib" ] || fail "no libwfp-host.so installed"
# what it needs itself; and, but in a sanitized build (whose runtime needs
# the C++ library), everything the loader maps for it
if readelf -d "$hostlib" | grep NEEDED | grep -E 'binaryen|libstdc\+\+'; then
    fail "libwfp-host links the compiler's libraries"
fi
if [ -z "$SANITIZE" ] && ldd "$hostlib" | grep -E 'binaryen|libstdc\+\+'; then
    fail "libwfp-host loads the compiler's libraries"
fi
if nm -D --defined-only "$hostlib" | grep -E ' T (wfp_aot|wfp_program|wfp_codegen)'; then
    fail "libwfp-host exports the compiler"
fi
nm -D --defined-only "$hostlib" | grep -q ' T wfp_loop_run$' || fail "libwfp-host has no wfp_loop_run"
nm -D --defined-only "$hostlib" | grep -q ' T wasm_rt_trap$' || fail "libwfp-host has no wasm2c runtime"
hflags=$(pkg-config --cflags --libs wfp-host libuv) || fail "pkg-config does not know wfp-host"
# shellcheck disable=SC2086
run 0 ${CC:-cc} -Wall -Werror $SANITIZE -o "$WORK/host" "$EXAMPLES/embed/host.c" $hflags \
    -Wl,-rpath,"$libdir" || finish
run 0 env -u LD_LIBRARY_PATH "$WORK/host" "$WORK/embedded.so" 200
grep -q '^200 of 200 done with n + 1, 200 messages$' "$WORK/out" || fail "host: $(cat "$WORK/out")"
if readelf -d "$WORK/host" | grep NEEDED | grep -E 'binaryen|libwfp\.so'; then
    fail "a host of its own links the compiler"
fi
# the installed commands work too
run 0 "$prefix/bin/wfp-host" "$WORK/embedded.so" --ctx n=1 && out_is '{"result":2}'
finish
