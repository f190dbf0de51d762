#!/usr/bin/env python3
"""scale.py: compile time and peak memory of wfp-aot against program size.

Generates programs of growing size in one dimension at a time (functions,
parameters, concat parts, json holes, effects in one function, nesting of
nested functions), compiles each with `wfp-aot --time` and prints, per size,
the time of each stage, the whole command's wall time, its CPU time (user
and system, wfp-aot and the tools it runs: steadier than wall time on a
busy machine), its peak resident memory (the largest of wfp-aot and its
tools), and the ratios of CPU time and memory to the previous size: with
sizes doubling, near-linear growth shows ratios near 2. Nothing is
asserted; it is a measurement (bench/README.md records one run).

  python3 bench/scale.py [--aot build/wfp-aot] [--shapes funcs,params,...]
                         [--sizes 1000,2000,4000] [--check] [-O2]

--check stops after codegen (no wasm2c, no C compiler).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def I(v):
    return {"op": "lit_i64", "value": v}


def V(n):
    return {"op": "var", "name": n}


def gen_funcs(n):
    """n functions; f_k calls f_(k/2), main calls the last one."""
    fs = []
    for k in range(n - 1):
        e = V("x") if k == 0 else {"op": "add", "a": {"op": "call", "fn": "f%d" % (k // 2),
                                                        "args": [V("x")]}, "b": I(1)}
        fs.append({"name": "f%d" % k, "params": ["x"], "body": [{"op": "return", "expr": e}]})
    fs.append({"name": "main", "params": [], "body": [
        {"op": "return", "expr": {"op": "call", "fn": "f%d" % (n - 2), "args": [I(0)]}}]})
    return fs


def gen_params(n):
    """one function of n parameters, summed by n statements; main calls it."""
    ps = ["p%d" % i for i in range(n)]
    body = [{"op": "let", "name": "s", "expr": I(0)}]
    body += [{"op": "set", "name": "s", "expr": {"op": "add", "a": V("s"), "b": V(p)}} for p in ps]
    body.append({"op": "return", "expr": V("s")})
    return [{"name": "big", "params": ps, "body": body},
            {"name": "main", "params": [], "body": [
                {"op": "return", "expr": {"op": "call", "fn": "big", "args": [I(i) for i in range(n)]}}]}]


def gen_concat(n):
    """one concat of n parts, string literals and an i64 variable."""
    parts = [V("x") if i % 2 else {"op": "lit_str", "value": "s%d" % i} for i in range(n)]
    return [{"name": "main", "params": ["x"], "body": [
        {"op": "return", "expr": {"op": "len", "a": {"op": "concat", "parts": parts}}}]}]


def gen_holes(n):
    """one json template of n holes, in an array and in objects."""
    items = [V("x") if i % 2 else {"k": V("x")} for i in range(n)]
    return [{"name": "main", "params": ["x"], "body": [
        {"op": "return", "expr": {"op": "json", "value": items}}]}]


def gen_effects(n):
    """one function of n statements, each an effect (a resume point)."""
    body = [{"op": "let", "name": "v0", "expr": I(0)}]
    for k in range(1, n):
        body.append({"op": "let", "name": "v%d" % k, "expr": {
            "op": "add", "a": V("v%d" % (k - 1)), "b": {"op": "ctx_get_i64", "key": "k"}}})
    body.append({"op": "return", "expr": V("v%d" % (n - 1))})
    return [{"name": "main", "params": [], "body": body}]


def gen_nesting(n):
    """functions nested n deep, each reading its parent's parameter."""
    fs = []
    for k in range(n):
        fs.append({"name": "n%d" % k, "parent": None if k == 0 else "n%d" % (k - 1),
                   "params": ["a%d" % k],
                   "body": [{"op": "return", "expr": {"op": "add", "a": V("a%d" % k),
                                                      "b": V("a%d" % (k - 1)) if k else I(0)}}]})
    fs.append({"name": "main", "params": [], "body": [
        {"op": "return", "expr": {"op": "call", "fn": "n0", "args": [I(1)]}}]})
    return fs


SHAPES = {
    "funcs": (gen_funcs, "1250,2500,5000,10000"),
    "params": (gen_params, "125,250,500,1000"),
    "concat": (gen_concat, "1250,2500,5000,10000"),
    "holes": (gen_holes, "1250,2500,5000,10000"),
    "effects": (gen_effects, "250,500,1000,2000"),
    "nesting": (gen_nesting, "32,64,128,256"),
}


def run(aot, prog, out_dir, check, olevel):
    """Runs wfp-aot; returns (status, {stage: ms}, wall s, cpu s, peak KiB)."""
    cmd = [aot, "--time", olevel, prog]
    cmd += ["--check", "--emit-wasm", os.path.join(out_dir, "m.wasm")] if check else \
           ["-o", os.path.join(out_dir, "m.so")]
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    err = p.stderr.read().decode()
    p.stderr.close()
    stages = {}
    for line in err.splitlines():
        if line.startswith("wfp-aot: ") and line.endswith(" ms"):
            name, ms = line[9:-3].rsplit(None, 1)
            stages[name.strip()] = float(ms)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.stderr.write(err)
    return code, stages, wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--aot", default=os.environ.get("WFP_AOT", "build/wfp-aot"))
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--sizes", help="sizes for every shape (default: each shape's own)")
    ap.add_argument("--check", action="store_true", help="stop after codegen")
    ap.add_argument("-O", dest="olevel", default="2", choices="0123")
    a = ap.parse_args()
    print("| shape | size | front end s | codegen s | wasm2c s | cc s | wall s | CPU s | peak MiB | CPU ratio | memory ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="wfp-scale-") as tmp:
        for shape in a.shapes.split(","):
            gen, default = SHAPES[shape]
            prev = None
            for n in [int(x) for x in (a.sizes or default).split(",")]:
                prog = os.path.join(tmp, "%s-%d.json" % (shape, n))
                with open(prog, "w") as f:
                    json.dump({"version": 1, "functions": gen(n)}, f)
                code, st, wall, cpu, kib = run(a.aot, prog, tmp, a.check, "-O" + a.olevel)
                mib = kib / 1024.0
                ratio = "" if prev is None else "%.2f" % (cpu / prev[0])
                mratio = "" if prev is None else "%.2f" % (mib / prev[1])
                s = lambda k: "%.2f" % (st.get(k, 0) / 1e3)
                tail = "" if code == 0 else " (exit %d)" % code
                print("| %s | %d | %s | %s | %s | %s | %.2f | %.2f | %.0f | %s | %s |%s" % (
                    shape, n, s("front end"), s("codegen"), s("wasm2c"), s("cc"), wall, cpu, mib,
                    ratio, mratio, tail), flush=True)
                prev = (cpu, mib)
    return 0


if __name__ == "__main__":
    sys.exit(main())
