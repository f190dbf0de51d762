#!/bin/sh
# emit.sh: wfp-aot's outputs: --emit-ir (nested functions lifted, captures
# leading), --emit-wasm (a valid module with the canonical-ABI exports),
# --emit-c (compilable sources), --emit-wit, -O levels, --entry.
. "$(dirname "$0")/lib.sh"
ex=$EXAMPLES

run 0 "$WFP_AOT" --check --emit-ir "$WORK/nested.ir.json" "$ex/program.nested.json"
python3 - "$WORK/nested.ir.json" <<'PY' || fail "--emit-ir: nested function not lifted as expected"
import json, sys
ir = json.load(open(sys.argv[1]))
fns = {f["name"]: f for f in ir["functions"]}
f = fns["addBase"]
assert f["parent"] is None and f["nested_in"] == "main", f
assert f["captures"] == ["base"], f
assert [p["name"] for p in f["params"]] == ["base", "x"], f["params"]
call = json.dumps(fns["main"]["body"])
assert '"fn": "addBase", "args": [{"op": "var", "name": "base"}' in call, call
assert all(len(f["id"]) == 16 for f in ir["functions"])
PY
run 0 "$WFP_AOT" --check --emit-wasm "$WORK/simple.wasm" "$ex/program.simple.json"
if command -v wasm-validate >/dev/null 2>&1; then
    run 0 wasm-validate "$WORK/simple.wasm"
fi
if command -v wasm-objdump >/dev/null 2>&1; then
    run 0 wasm-objdump -x "$WORK/simple.wasm"
    for e in '"run-step"' '"cabi_realloc"' '"cabi_post_run-step"' '"memory"'; do
        grep -qF -- "-> $e" "$WORK/out" || fail "--emit-wasm: no export $e"
    done
    grep -q "Import\[" "$WORK/out" && fail "--emit-wasm: the module imports something"
fi
run 0 "$WFP_AOT" --check --emit-wit "$WORK/f.wit" "$ex/program.simple.json"
cmp -s "$WORK/f.wit" "$WIT" || fail "--emit-wit differs from wit/function.wit"
rm -rf "$WORK/c"
run 0 "$WFP_AOT" --check --emit-c "$WORK/c" "$ex/program.simple.json"
for f in module.c module.h glue.c abi.h wasm-rt.h; do
    [ -s "$WORK/c/$f" ] || fail "--emit-c: no $f"
done
for o in -O0 -O1 -O3; do
    run 0 "$WFP_AOT" "$o" "$ex/program.simple.json" -o "$WORK/s$o.so" &&
        run 0 "$WFP_HOST" "$WORK/s$o.so" --ctx n=41 && out_is '{"result":42}'
done
# --entry chooses what an input without "fn" runs
run 0 "$WFP_AOT" --entry fetch "$PROGRAMS/calls.json" -o "$WORK/calls.so" &&
    run 0 "$WFP_HOST" "$WORK/calls.so" --arg key=k --arg scale=3 --ctx x=5 && out_is '{"result":15}'
run 1 "$WFP_AOT" --entry nope "$PROGRAMS/calls.json" -o "$WORK/none.so" && err_has "entry function 'nope' not found"
[ -e "$WORK/none.so" ] && fail "a refused program wrote its output"
# functions of many parameters: wasm2c wraps their C headers over several
# lines, which the two-unit compile must still split right
python3 - "$WORK/many.json" <<'PY'
import json, sys
ps = ["p%d" % i for i in range(12)]
sum12 = {"op": "lit_i64", "value": 0}
for p in ps:
    sum12 = {"op": "add", "a": sum12, "b": {"op": "var", "name": p}}
caps = [{"op": "let", "name": "c%d" % i, "expr": {"op": "lit_i64", "value": i}} for i in range(10)]
sumc = {"op": "var", "name": "x"}
for i in range(10):
    sumc = {"op": "add", "a": sumc, "b": {"op": "var", "name": "c%d" % i}}
prog = {"version": 1, "functions": [
    {"name": "main", "params": [], "body": caps + [
        {"op": "expr", "expr": {"op": "msg_send", "topic": "t", "payload": {"op": "lit_i64", "value": 0}}},
        {"op": "let", "name": "f", "expr": {"op": "lambda", "params": ["x"], "body": [
            {"op": "expr", "expr": {"op": "sleep_ms", "ms": {"op": "lit_i64", "value": 0}}},
            {"op": "return", "expr": sumc}]}},
        {"op": "return", "expr": {"op": "add",
            "a": {"op": "call", "fn": "twelve", "args": [{"op": "lit_i64", "value": i} for i in range(12)]},
            "b": {"op": "call_ref", "fn": {"op": "var", "name": "f"}, "args": [{"op": "lit_i64", "value": 100}]}}}]},
    {"name": "twelve", "params": ps, "body": [
        {"op": "expr", "expr": {"op": "msg_send", "topic": "t", "payload": {"op": "var", "name": "p11"}}},
        {"op": "return", "expr": sum12}]}]}
json.dump(prog, open(sys.argv[1], "w"))
PY
run 0 "$WFP_AOT" "$WORK/many.json" -o "$WORK/many.so" &&
    run 0 "$WFP_HOST" "$WORK/many.so" && out_is '{"result":211}'
# the most parameters a function may have (1,000): a C header of some 125
# lines, split right too
python3 - "$WORK/wide.json" <<'PY'
import json, sys
ps = ["p%d" % i for i in range(1000)]
body = [{"op": "let", "name": "s", "expr": {"op": "lit_i64", "value": 0}}]
body += [{"op": "set", "name": "s", "expr": {"op": "add", "a": {"op": "var", "name": "s"},
                                             "b": {"op": "var", "name": p}}} for p in ps]
body += [{"op": "expr", "expr": {"op": "sleep_ms", "ms": {"op": "lit_i64", "value": 0}}},
         {"op": "return", "expr": {"op": "var", "name": "s"}}]
prog = {"version": 1, "functions": [
    {"name": "wide", "params": ps, "body": body},
    {"name": "main", "params": [], "body": [{"op": "return", "expr":
        {"op": "call", "fn": "wide", "args": [{"op": "lit_i64", "value": i} for i in range(1000)]}}]}]}
json.dump(prog, open(sys.argv[1], "w"))
PY
run 0 "$WFP_AOT" "$WORK/wide.json" -o "$WORK/wide.so" &&
    run 0 "$WFP_HOST" "$WORK/wide.so" && out_is '{"result":499500}'
# docs/cli.md's by-hand build of --emit-c output, run as it is written
# there (wfp-aot and wfp-host on the PATH, cc as the C compiler): the
# module it builds loads in wfp-host and runs
doc=$SRC/../../docs/cli.md
hand=$WORK/by-hand
rm -rf "$hand"
mkdir -p "$hand/bin"
ln -s "$EXAMPLES" "$hand/examples"
ln -s "$WFP_AOT" "$hand/bin/wfp-aot"
ln -s "$WFP_HOST" "$hand/bin/wfp-host"
awk '/^<!-- tests\/e2e\/emit.sh runs this block/ {on = 1; next}
     on && /^```sh$/ {inside = 1; next}
     inside && /^```$/ {exit}
     inside {print}' "$doc" >"$hand/build.sh"
grep -q "wfp-host" "$hand/build.sh" || fail "docs/cli.md: no by-hand build block found"
(cd "$hand" && PATH="$hand/bin:$PATH" sh -e build.sh) >"$WORK/out" 2>"$WORK/err" ||
    fail "docs/cli.md's by-hand build failed: $(tail -3 "$WORK/err")"
out_is '{"result":42}'
# a failing tool: exit 3, its name and output in the message, nothing written
rm -f "$WORK/cc.so" "$WORK/flags.so"
run 3 env CC=false "$WFP_AOT" "$ex/program.simple.json" -o "$WORK/cc.so" &&
    first_err_line_has "the C compiler 'false' failed"
[ -e "$WORK/cc.so" ] && fail "a failed compilation wrote its output"
run 3 env CC=/nonexistent/cc "$WFP_AOT" "$ex/program.simple.json" -o "$WORK/cc.so" &&
    first_err_line_has "cannot run the C compiler '/nonexistent/cc'"
run 3 env WFP_WASM2C=/nonexistent/wasm2c "$WFP_AOT" "$ex/program.simple.json" -o "$WORK/cc.so" &&
    first_err_line_has "cannot run wasm2c '/nonexistent/wasm2c'"
[ -e "$WORK/cc.so" ] && fail "a failed compilation wrote its output"
# CC may carry flags; it is split at spaces
run 0 env CC="${CC:-cc} -DWFP_TEST_FLAG=1" "$WFP_AOT" "$ex/program.simple.json" -o "$WORK/flags.so" &&
    run 0 "$WFP_HOST" "$WORK/flags.so" --ctx n=1 && out_is '{"result":2}'
finish
