#!/bin/sh
# modules.sh: the host refuses, with exit 3 and a clear first line, what
# is not a wfp module: a missing file, a text file, a shared object without
# the descriptor, one built for another ABI version.
. "$(dirname "$0")/lib.sh"

run 3 "$WFP_HOST" "$WORK/missing.so" && first_err_line_has "missing.so: No such file"
echo "not a module" >"$WORK/text.so"
run 3 "$WFP_HOST" "$WORK/text.so" && first_err_line_has "is not a wfp module"
run 3 "$WFP_HOST" "$WORK" && first_err_line_has "is a directory"
if run 0 ${CC:-cc} -shared -fPIC -I"$INCLUDE" -o "$WORK/plain.so" "$SRC/fake_module.c"; then
    run 3 "$WFP_HOST" "$WORK/plain.so" --ctx n=1 && first_err_line_has "is not a wfp module: it has no wfp_module_descriptor symbol"
fi
if run 0 ${CC:-cc} -shared -fPIC -I"$INCLUDE" -DWFP_FAKE_ABI=2 -o "$WORK/abi2.so" "$SRC/fake_module.c"; then
    run 3 "$WFP_HOST" "$WORK/abi2.so" && first_err_line_has "ABI version 2"
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
