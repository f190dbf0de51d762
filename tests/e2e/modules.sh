#!/bin/sh
# modules.sh: the host refuses, with exit 3 and a clear first line, what
# is not a wfp module: a missing file, a text file, a truncated module, a
# shared object without the descriptor, one built for another ABI version
# or another wasm2c runtime layout, a descriptor too short. Descriptors of
# the first ABI-1 size and larger ones load.
. "$(dirname "$0")/lib.sh"

run 3 "$WFP_HOST" "$WORK/missing.so" && first_err_line_has "missing.so: No such file"
echo "not a module" >"$WORK/text.so"
run 3 "$WFP_HOST" "$WORK/text.so" && first_err_line_has "text.so: ELF header: not a wfp module: not an ELF file"
run 3 "$WFP_HOST" "$WORK" && first_err_line_has "is a directory"
run 3 "$WFP_HOST" /dev/null && first_err_line_has "not a wfp module: not a regular file"
# a truncated module: refused before it is mapped (it used to die of
# SIGBUS), whatever the length
size=$(wc -c <"$SO/simple.so")
for len in 20000 64 100 1000 $((size / 2)) $((size - 1)); do
    head -c "$len" "$SO/simple.so" >"$WORK/cut.so"
    run 3 "$WFP_HOST" "$WORK/cut.so" --ctx n=1 && first_err_line_has "not a wfp module" &&
        err_has "cut.so: "
done
head -c 20000 "$SO/simple.so" >"$WORK/cut.so"
run 3 "$WFP_HOST" "$WORK/cut.so" --ctx n=1 &&
    first_err_line_has "cut.so: program header" && err_has "past the end of the file (truncated?)"
if run 0 ${CC:-cc} -shared -fPIC -I"$INCLUDE" -o "$WORK/plain.so" "$SRC/fake_module.c"; then
    run 3 "$WFP_HOST" "$WORK/plain.so" --ctx n=1 && first_err_line_has "plain.so: not a wfp module: it has no wfp_module_descriptor symbol"
fi
if run 0 ${CC:-cc} -shared -fPIC -I"$INCLUDE" -DWFP_FAKE_ABI=2 -o "$WORK/abi2.so" "$SRC/fake_module.c"; then
    run 3 "$WFP_HOST" "$WORK/abi2.so" && first_err_line_has "ABI version 2"
fi
# a module built by hand from --emit-c: the directory holds wfp's own
# wasm-rt.h, so a plain build runs (no assertion about wasm_rt_init aborts
# it); built against wasm2c's own wasm-rt.h instead (its global call depth
# counter, or its defaults: guard pages and a signal handler instead of
# bounds checks), it is refused by its runtime layout, not run unchecked
rm -rf "$WORK/c"
if run 0 "$WFP_AOT" --check --emit-c "$WORK/c" "$EXAMPLES/program.simple.json"; then
    [ -f "$WORK/c/wasm-rt.h" ] || fail "--emit-c wrote no wasm-rt.h"
    if run 0 ${CC:-cc} -shared -fPIC -O0 -w -I"$WORK/c" \
        -o "$WORK/byhand.so" "$WORK/c/module.c" "$WORK/c/glue.c" -lm; then
        run 0 "$WFP_HOST" "$WORK/byhand.so" --ctx n=41 && out_is '{"result":42}'
    fi
    if [ -f /usr/include/wasm-rt.h ]; then
        mv "$WORK/c/wasm-rt.h" "$WORK/c/wfp-rt.h.away"
        if run 0 ${CC:-cc} -shared -fPIC -O0 -w -DWASM_RT_MEMCHECK_SIGNAL_HANDLER=0 -I"$WORK/c" \
            -o "$WORK/wabt.so" "$WORK/c/module.c" "$WORK/c/glue.c" -lm; then
            run 3 "$WFP_HOST" "$WORK/wabt.so" --ctx n=41 &&
                first_err_line_has "wabt.so: descriptor: built for another wasm2c runtime layout"
        fi
        if run 0 ${CC:-cc} -shared -fPIC -O0 -w -I"$WORK/c" \
            -o "$WORK/defaults.so" "$WORK/c/module.c" "$WORK/c/glue.c" -lm; then
            run 3 "$WFP_HOST" "$WORK/defaults.so" --ctx n=41 &&
                first_err_line_has "defaults.so: descriptor: built for another wasm2c runtime layout"
        fi
    fi
fi
# descriptors by size: cut short of the first ABI-1 one, refused; the first
# ABI-1 one (a module built before any field was appended) and a larger
# one (fields appended later) load and run
if run 0 ${CC:-cc} -shared -fPIC -D_GNU_SOURCE -DWFP_TRAP_SHORT -I"$INCLUDE" -o "$WORK/short.so" "$SRC/trap_module.c"; then
    run 3 "$WFP_HOST" "$WORK/short.so" && first_err_line_has "short.so: descriptor: not a wfp module: its descriptor is incomplete"
fi
if run 0 ${CC:-cc} -shared -fPIC -D_GNU_SOURCE -DWFP_TRAP_FULL -DWASM_RT_MEMCHECK_SIGNAL_HANDLER=0 \
    -I"$INCLUDE" -o "$WORK/later.so" "$SRC/trap_module.c"; then
    run 0 "$WFP_HOST" "$WORK/later.so" && out_is '{"result":"fine"}'
    run 1 "$WFP_HOST" "$WORK/later.so" --input '{"div":1}' && err_has "trap: integer division by zero"
fi
# every kind of Wasm trap comes back as a trap with its message, and the
# host goes on (a hand-written module traps the way generated code does)
if run 0 ${CC:-cc} -shared -fPIC -D_GNU_SOURCE -I"$INCLUDE" -o "$WORK/traps.so" "$SRC/trap_module.c"; then
    run 0 "$WFP_HOST" "$WORK/traps.so" && out_is '{"result":"fine"}'
    run 1 "$WFP_HOST" "$WORK/traps.so" --input '{"oob":1}' && err_has "trap: out-of-bounds memory access"
    run 1 "$WFP_HOST" "$WORK/traps.so" --input '{"div":1}' && err_has "trap: integer division by zero"
    run 1 "$WFP_HOST" "$WORK/traps.so" --input '{"overflow":1}' && err_has "trap: integer overflow"
    run 1 "$WFP_HOST" "$WORK/traps.so" --input '{"exhaustion":1}' && err_has "trap: call stack exhausted"
    run 1 "$WFP_HOST" "$WORK/traps.so" --input '{"unreachable":1}' && err_has "trap: out of memory"
fi
finish
