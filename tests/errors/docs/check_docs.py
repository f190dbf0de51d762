#!/usr/bin/env python3
# check_docs.py: the messages docs/ir.md quotes are real output. It runs
# the real wfp-aot on every case of the error corpus and the real wfp-aot +
# wfp-host on docs/traps.json (the run-time traps, one function each), and
# the real wfp-aot on a program one past each limit of "Limits" (the
# programs of ../limits_gen.py), and the sessions the page shows
# ("$ wfp-aot ..." blocks) on the program shown before each. Then every code span of the page that is a message must be
# one of the messages seen; the few spans with spaces that are not
# messages are listed in NOT_MESSAGES below.
#
# To quote a new compile-time message: add a corpus case that gives it (or
# find one), quote its message whole. A new trap: add a function to
# traps.json and a line to TRAPS.
# Usage: check_docs.py WFP_AOT WFP_HOST DOC CORPUS_DIR WORK_DIR
import json
import os
import re
import subprocess
import sys

aot, host, doc, corpus, work = map(os.path.abspath, sys.argv[1:6])
here = os.path.dirname(os.path.abspath(__file__))
failures = []

# Code spans with spaces that are not messages (syntax, commands, patterns).
NOT_MESSAGES = {
    "VACUUM INTO",
    "A-Z a-z 0-9 _ -",
    "A-Z a-z",
    "fn(T1, ..., Tn) -> R",
    "fn(P...) -> R",
    "fn(i64) -> i64",
    "twice(inc, 40)",
    "pending(effect, state)",
    "FILE:LINE:COL: error: ...",
    "FILE: JSONPATH: error: MESSAGE",
    "db_query: ...",
}

# The traps of docs/traps.json: the host's arguments for each.
TRAPS = [
    ["--input", '{"args":[]}'],  # no fn, no entry (the input as is: the guest decides)
    ["--fn", "deep", "--arg", "n=0"],
    ["--fn", "divZero", "--arg", "n=1"],
    ["--fn", "overflow"],
    ["--fn", "lenObject"],
    ["--input", '{"fn":"getI64","args":{"a":[1]}}'],
    ["--input", '{"fn":"getI64","args":{"a":{}}}'],
    ["--input", '{"fn":"getI64","args":{"a":[1,"x"]}}'],
    ["--input", '{"fn":"getI64","args":{"a":[1,1.5]}}'],
    ["--input", '{"fn":"getStr","args":{"s":1}}'],
    ["--fn", "ctxGet"],
    ["--fn", "noTable"],
    ["--fn", "tooManyParams"],
    ["--fn", "twoStatements"],
    ["--fn", "eachRow"],
    ["--fn", "greet", "--arg", "n=1"],
    ["--input", '{"fn":"greet","args":{"who":"a","n":"x"}}'],
    ["--fn", "echo"],
    ["--input", '{"fn":"echo","args":{"x":1}}'],
    ["--input", '{"fn":"f"}'],
    ["--fn", "apply", "--arg", "f={hello}", "--arg", "x=1"],
    ["--fn", "apply", "--arg", "f={noArgs}", "--arg", "x=1"],
    ["--fn", "applyStr", "--arg", "f={hello}"],
    ["--fn", "wrap", "--arg", "n=257"],
    ["--fn", "fnChain", "--arg", "n=127"],
    ["--fn", "grow"],
]

# One past each limit of "Limits": limits_gen.py's shape and size.
LIMITS = [("functions", 10001), ("params", 1001), ("captures", 1001),
          ("nesting", 257), ("loops", 257), ("parts", 10001), ("holes", 10001),
          ("sites", 2001)]


def run(argv, cwd=None):
    p = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def norm(s):
    return " ".join(s.split())


# ---- the messages the tools really give ----

seen = set()
for name in sorted(os.listdir(corpus)):
    if not name.endswith(".json"):
        continue
    argv = [aot, "--check", os.path.join(corpus, name)]
    with open(os.path.join(corpus, name[:-5] + ".expect")) as f:
        for line in f:
            if line.startswith("entry: "):
                argv[1:1] = ["--entry", line[len("entry: "):].strip()]
    rc, _, err = run(argv)
    for line in err.splitlines():
        m = re.match(r"^.*?: error: (.*)$", line)
        if m:
            seen.add(norm(m.group(1)))

for shape, n in LIMITS:
    prog = os.path.join(work, "%s.json" % shape)
    rc, _, err = run([sys.executable, os.path.join(here, "..", "limits_gen.py"),
                      shape, str(n), prog])
    if rc != 0:
        sys.exit("cannot generate the %s program:\n%s" % (shape, err))
    rc, _, err = run([aot, "--check", prog])
    if rc != 1:
        failures.append("%s %d: expected exit 1, got %d" % (shape, n, rc))
    for line in err.splitlines():
        m = re.match(r"^.*?: error: (.*)$", line)
        if m:
            seen.add(norm(m.group(1)))
    os.remove(prog)

so = os.path.join(work, "traps.so")
ir = os.path.join(work, "traps.ir.json")
rc, _, err = run([aot, "-O0", os.path.join(here, "traps.json"), "-o", so, "--emit-ir", ir])
if rc != 0:
    sys.exit("cannot compile traps.json:\n" + err)
ids = {f["name"]: f["id"] for f in json.load(open(ir))["functions"]}
for args in TRAPS:
    for fn in ("hello", "noArgs"):
        args = [a.replace("{%s}" % fn, '{"fn":"%s","args":[]}' % ids[fn]) for a in args]
    rc, _, err = run([host, so] + args)
    first = err.splitlines()[0] if err else ""
    if rc != 1 or not first.startswith("wfp-host: trap: "):
        failures.append("traps.json %s: expected a trap, got exit %d: %s" % (args, rc, first))
        continue
    seen.add(norm(first[len("wfp-host: trap: "):]))

# ---- the page ----

text = open(doc, encoding="utf-8").read()
blocks = list(re.finditer(r"^```[^\n]*\n(.*?)^```", text, re.S | re.M))

# sessions: "$ wfp-aot FILE ..." then its output, run on the block before
sessions = 0
for i, b in enumerate(blocks):
    body = b.group(1)
    if not body.startswith("$ wfp-aot "):
        continue
    sessions += 1
    prog = blocks[i - 1].group(1)
    lines = body.rstrip("\n").split("\n")
    cmd = lines[0][2:].split()
    fname = cmd[-3] if "-o" in cmd else cmd[-1]
    with open(os.path.join(work, fname), "w", encoding="utf-8") as f:
        f.write(prog)
    rc, out, err = run([aot] + cmd[1:], cwd=work)
    got = (out + err).rstrip("\n").split("\n")
    want = []
    for line in lines[1:]:
        if line == "$ echo $?":
            got.append(str(rc))
            continue
        want.append(line)
    if got != want:
        failures.append("session '%s' of %s:\n  shown:\n    %s\n  real:\n    %s"
                        % (lines[0], doc, "\n    ".join(want), "\n    ".join(got)))
    for line in got:
        m = re.match(r"^.*?: error: (.*)$", line)
        if m:
            seen.add(norm(m.group(1)))
if sessions == 0:
    failures.append("no '$ wfp-aot' session found in %s" % doc)

# every code span with a space, outside code blocks, is a message seen
prose = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
quoted = 0
for m in re.finditer(r"`([^`]+)`", prose):
    span = norm(m.group(1))
    if " " not in span or span[0] in "{[\"$" or span.startswith(("--", "wfp-")):
        continue
    if span in NOT_MESSAGES:
        continue
    quoted += 1
    if span not in seen:
        line = text[:text.find(m.group(0))].count("\n") + 1
        failures.append("%s:%d: `%s` is not a message the tools give" % (doc, line, span))

for f in failures:
    print("FAIL " + f)
print("%d messages seen, %d quoted in %s, %d sessions, %d failures"
      % (len(seen), quoted, doc, sessions, len(failures)))
sys.exit(1 if failures else 0)
