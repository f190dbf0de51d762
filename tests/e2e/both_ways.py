"""both_ways.py: every example and end-to-end program, run both ways: alone
(one wfp-host process per input) and through --batch (one line per input,
all at once in one host, on two worker threads), gives the same output or
the same trap for every input; and every single run that suspends can be
checkpointed after its first step and resumed to the same end.

Inputs that share nothing run in one batch together; those that change a
shared store (a resource instance of --new, a database) run in a batch of
their own, as alone they would have it to themselves.

Environment: WFP_HOST, SO (the compiled modules), WORK (a scratch
directory). Exits 1 when anything differs.
"""
import json
import os
import subprocess
import sys

HOST = os.environ["WFP_HOST"]
SO = os.environ["SO"]
WORK = os.environ["WORK"]

failures = []


def host(args, stdin=None):
    p = subprocess.run([HOST] + args, input=stdin, capture_output=True, text=True,
                       timeout=120)
    return p.returncode, p.stdout, p.stderr


def alone(so, opts, inp):
    """(exit code, the output or the trap message) of one run."""
    code, out, err = host([f"{SO}/{so}.so"] + opts + ["--input", inp])
    if code == 0:
        return code, out.strip()
    if code == 1:
        for line in err.splitlines():
            if line.startswith("wfp-host: trap: "):
                return code, line[len("wfp-host: trap: "):]
    return code, err.strip()


def batch(so, opts, inputs):
    code, out, err = host([f"{SO}/{so}.so", "--workers", "2", "--batch", "-"] + opts,
                          stdin="".join(i + "\n" for i in inputs))
    return code, out, err


def check(so, opts, inputs, label):
    want = [alone(so, opts, i) for i in inputs]
    code, out, err = batch(so, opts, inputs)
    lines = out.splitlines()
    if len(lines) != len(inputs):
        failures.append(f"{label}: {len(lines)} lines for {len(inputs)} inputs: {err.strip()}")
        return
    for n, (line, (wcode, wtext), inp) in enumerate(zip(lines, want, inputs), 1):
        if wcode == 0:
            expect = '{"line":%d,"output":%s}' % (n, wtext)
        elif wcode == 1:
            expect = json.dumps({"line": n, "trap": wtext}, separators=(",", ":"),
                                ensure_ascii=False)
        else:
            failures.append(f"{label}: {inp} alone exits {wcode}: {wtext}")
            continue
        if line != expect:
            failures.append(f"{label}: {inp}\n    alone: {expect}\n    batch: {line}")
    wbatch = 1 if any(c == 1 for c, _ in want) else 0
    if code != wbatch:
        failures.append(f"{label}: --batch exits {code}, expected {wbatch}: {err.strip()}")


def resumes(so, opts, inp, label):
    """A run stopped after its first step and resumed ends as a straight one."""
    straight = alone(so, opts, inp)
    ck = os.path.join(WORK, "ck")
    if os.path.exists(ck):
        os.remove(ck)
    code, out, err = host([f"{SO}/{so}.so"] + opts +
                          ["--input", inp, "--checkpoint", ck, "--stop-after", "1"])
    if code != 4:
        return  # it ended in its first step: nothing to resume
    # the checkpoint carries the context, the instances and the limits
    code, out, err = host([f"{SO}/{so}.so", "--resume", ck])
    got = (code, out.strip()) if code == 0 else (code, next(
        (line[len("wfp-host: trap: "):] for line in err.splitlines()
         if line.startswith("wfp-host: trap: ")), err.strip()))
    if got != straight:
        failures.append(f"{label}: {inp} resumed: {got}, straight: {straight}")


def j(fn=None, args=None, self=None):
    d = {}
    if fn:
        d["fn"] = fn
    if args is not None:
        d["args"] = args
    if self is not None:
        d["self"] = self
    return json.dumps(d)


# (module, options, inputs, together): together False runs each input in a
# batch of its own (a shared store it changes)
CASES = [
    ("simple", ["--ctx", "n=41"], [j(), j("main"), j("nope")], True),
    ("simple", ["--ctx", "n=-1"], [j()], True),
    ("simple", [], [j()], True),
    ("nested", ["--ctx", "base=10"], [j(), j()], True),
    ("converter", ["--ctx", "celsius=100"], [j()], True),
    ("converter", ["--ctx", "celsius=-40"], [j()], True),
    ("converter", ["--ctx", "celsius=37"], [j()], True),
    ("accumulator", ["--ctx", "a=1", "--ctx", "b=2", "--ctx", "c=3"], [j(), j(), j()], True),
    ("resource", ["--new", "Counter:value=10"],
     [j("getValue", self=1), j("increment", self=1), j("add", {"amount": 5}, 1),
      j("increment")], False),
    ("bank-account", ["--new", "Account:balance=100,transactions=0"],
     [j("deposit", {"amount": 50}, 1), j("transferTo", {"amount": 25}, 1),
      j("withdraw", {"amount": 500}, 1), j("deposit", {"amount": 0}, 1)], False),
    ("state-machine", ["--new", "Machine:state=idle,errors=0"],
     [j("start", self=1), j("pause", self=1)], False),
    ("state-machine", ["--new", "Machine:state=paused,errors=3"], [j("getState", self=1)], False),
    ("orders", ["--ctx", "fee=50"], [j()], False),
    ("loop", ["--ctx", "n=5", "--ctx", "step=3"], [j(), j()], True),
    ("loop", ["--ctx", "n=100", "--ctx", "step=1", "--max-steps", "7"], [j()], True),
    ("calls", ["--ctx", "x=7"], [j(), j(), j("depth", {"n": 30}), j("depth", {"n": 1000000})],
     True),
    ("closures", ["--ctx", "n=4", "--ctx", "base=1", "--ctx", "k=7", "--ctx", "m=3"],
     [j(f) for f in ["main", "compose", "useAdder", "scaled", "loop", "closureOut", "curry"]] +
     [j("strs", {"who": "ann"}), j("deep", {"n": 20})], True),
    ("traps", [],
     [j("divide", {"a": 7, "b": 2}), j("divide", {"a": 1, "b": 0}),
      j("remainder", {"a": 7, "b": 0}), j("deep", {"n": 1000000}),
      j("refuse", {"why": "no"}), j("needs_ctx"), j("pick", {"doc": {"a": [1, 2]}}),
      j("shifts", {"x": -8, "s": 65})], True),
    ("spin", ["--ctx", "n=1000", "--ctx", "k=1"], [j(), j()], True),
    ("spin_forever", ["--fuel-slice", "50"], [j("fib", {"n": 12}), j("fib", {"n": 5})], True),
    ("spin_forever", ["--max-steps", "20", "--fuel-slice", "100"], [j(), j()], True),
    ("spin_forever", ["--max-fuel", "1000", "--fuel-slice", "100"], [j()], True),
    ("regress", [], [j("emptyIf", {"q": 1}), j("emptyIf", {"q": 0}), j("orConcat"),
                     j("h", {"n": 3})], True),
    ("hostcli", ["--max-fuel", "200000"],
     [j("echo", {"s": "hé"}), j("sleepy", {"ms": 20}), j("ticks", {"n": 3}),
      j("types", {"n": 1, "s": "x", "j": [1]}), j("endless"), j("runaway"), j("attach"),
      j("vacuumInto"), j("setVersion")], True),
    ("hostcli", [], [j("bigFan")], True),
    ("runtime", [], [j("fanSleep", {"n": 5, "ms": 10}), j("nap", {"ms": 5}),
                     j("work", {"n": 1000}), j("grow", {"n": 10})], True),
    ("runtime", ["--ctx", "hits=0"], [j("bump")], False),
    ("runtime", ["--new", "Tally:n=1"], [j("slowAdd", {"who": 1, "ms": 5}, 1),
                                          j("total", self=1)], False),
]

DB_FNS = ["main", "all", "fan", "ages", "nested", "bad", "two", "arity", "rowTrap"]

for so, opts, inputs, together in CASES:
    label = f"{so} {' '.join(opts)}".strip()
    if together:
        check(so, opts, inputs, label)
    else:
        for i in inputs:
            check(so, opts, [i], label)
    for i in inputs:
        resumes(so, opts, i, label)

# the database programs: a database file of their own for each input, the
# same for both ways
for f in DB_FNS:
    for way in ("alone", "batch"):
        path = os.path.join(WORK, f"{f}.{way}.db")
        if os.path.exists(path):
            os.remove(path)
    want = alone("db", ["--ctx", "min=20", "--db", os.path.join(WORK, f"{f}.alone.db")], j(f))
    code, out, err = batch("db", ["--ctx", "min=20", "--db",
                                  os.path.join(WORK, f"{f}.batch.db")], [j(f)])
    if want[0] == 0:
        expect = '{"line":1,"output":%s}' % want[1]
    else:
        expect = json.dumps({"line": 1, "trap": want[1]}, separators=(",", ":"),
                            ensure_ascii=False)
    if out.strip() != expect:
        failures.append(f"db {f}:\n    alone: {expect}\n    batch: {out.strip()} {err.strip()}")

for f in failures:
    print("FAIL:", f, file=sys.stderr)
if failures:
    print(f"{len(failures)} check(s) failed", file=sys.stderr)
    sys.exit(1)
print(f"all checks passed: {sum(len(c[2]) for c in CASES) + len(DB_FNS)} inputs both ways")
