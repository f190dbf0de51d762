#!/usr/bin/env python3
"""js_vs_native.py: every example (its .wfp) and the closures of the e2e
programs run two ways, which must agree: natively (wfp-aot -> .so ->
wfp-host --report) and in Node (wfp-aot --emit-js -> wfp-run.mjs --report).
Status, output, trap message, final context, messages and resource
properties must be the same; steps and fuel are the native host's.

    js_vs_native.py --aot A --host H --node N --run wfp-run.mjs --npm DIR --work W
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
EX = os.path.join(ROOT, 'examples')
CLOSURES = os.path.join(ROOT, 'tests', 'e2e', 'programs', 'closures.json')
VALUES = os.path.join(HERE, 'js', 'values.wfp')
ACCT = ['--new', 'Account:balance=100,transactions=0']
CCTX = ['--ctx', 'n=4', '--ctx', 'base=1', '--ctx', 'k=7', '--ctx', 'm=3']

CASES = [
    ('program.simple.wfp', ['--ctx', 'n=41']),
    ('program.simple.wfp', []),  # a trap: the key is missing
    ('program.nested.wfp', ['--ctx', 'base=10']),
    ('program.converter.wfp', ['--ctx', 'celsius=37']),
    ('program.converter.wfp', ['--ctx', 'celsius=-40']),
    ('program.accumulator.wfp', ['--ctx', 'a=1', '--ctx', 'b=2', '--ctx', 'c=3']),
    ('program.resource.wfp', ['--new', 'Counter:value=10', '--fn', 'increment']),
    ('program.resource.wfp', ['--new', 'Counter:value=10', '--fn', 'add', '--arg', 'amount=5']),
    ('program.bank-account.wfp', ACCT + ['--fn', 'deposit', '--arg', 'amount=50']),
    ('program.bank-account.wfp', ACCT + ['--fn', 'transferTo', '--arg', 'amount=25']),
    ('program.bank-account.wfp', ['--new', 'Account:balance=10,transactions=0', '--fn', 'receive', '--arg', 'amount=25']),
    ('program.bank-account.wfp', ACCT + ['--fn', 'withdraw', '--arg', 'amount=500']),
    ('program.state-machine.wfp', ['--new', 'Machine:state=idle,errors=0', '--fn', 'start']),
    ('program.state-machine.wfp', ['--new', 'Machine:state=idle,errors=0', '--fn', 'pause']),
    ('program.state-machine.wfp', ['--new', 'Machine:state=paused,errors=3', '--fn', 'getState']),
    ('program.orders.wfp', ['--ctx', 'fee=50']),
] + [(CLOSURES, CCTX + ['--fn', f] + extra) for f, extra in [
    ('main', []), ('compose', []), ('strs', ['--arg', 'who=ann']), ('useAdder', []),
    ('scaled', []), ('loop', []), ('curry', []), ('deep', ['--arg', 'n=200'])]] + [
    (VALUES, ['--ctx', 'm=-1', '--ctx', 'k=5', '--fn', f] + extra) for f, extra in [
        ('arith', []), ('divzero', ['--arg', 'n=0']), ('divzero', ['--arg', 'n=3']), ('overflow', []),
        ('strings', []), ('getfault', ['--arg', 'which=1']), ('getfault', ['--arg', 'which=2']),
        ('getfault', ['--arg', 'which=3']), ('getfault', ['--arg', 'which=4']), ('shadow', []),
        ('logic', ['--arg', 'a=0', '--arg', 'b=0']), ('logic', ['--arg', 'a=2', '--arg', 'b=9']),
        ('logic', ['--arg', 'a=0', '--arg', 'b=3']), ('closure', [])]] + [
    (VALUES, ['--input', '{"fn": "echo", "args": {}, "x": [1.50, "\u00e9", 12345678901234567890]}'])]


def run(args, env=None):
    return subprocess.run(args, capture_output=True, text=True, env=env)


def main():
    ap = argparse.ArgumentParser()
    for k in ('aot', 'host', 'node', 'run', 'npm', 'work'):
        ap.add_argument('--' + k, required=True)
    o = ap.parse_args()
    os.makedirs(o.work, exist_ok=True)
    sqljs = os.path.join(o.npm, 'node_modules', 'sql.js')
    if not os.path.isdir(sqljs):
        print('FAIL: sql.js is not installed in WFP_NPM_DIR=%r; run scripts/npm-deps.sh DIR '
              'and configure with -DWFP_NPM_DIR=DIR' % o.npm)
        return 1
    env = dict(os.environ, NODE_PATH=os.path.join(o.npm, 'node_modules'))
    built = {}
    passed = failed = 0
    for prog, args in CASES:
        src = prog if os.path.isabs(prog) else os.path.join(EX, prog)
        name = os.path.basename(src).rsplit('.', 1)[0]
        if src not in built:
            so, mjs = os.path.join(o.work, name + '.so'), os.path.join(o.work, name + '.mjs')
            r = run([o.aot, src, '-o', so, '--emit-js', mjs])
            if r.returncode:
                print('FAIL %s: wfp-aot: %s' % (src, r.stderr))
                failed += 1
                continue
            built[src] = (so, mjs)
        so, mjs = built[src]
        n = run([o.host, so, '--report'] + args, env)
        j = run([o.node, o.run, mjs, '--report'] + args, env)
        what = '%s %s' % (name, ' '.join(args))
        try:
            nat, js = json.loads(n.stdout), json.loads(j.stdout)
        except ValueError:
            print('FAIL %s: no report\n  native: %s %s\n  js: %s %s' % (what, n.stdout, n.stderr, j.stdout, j.stderr))
            failed += 1
            continue
        for r in (nat, js):
            r.pop('steps', None)
            r.pop('fuel', None)
        if nat != js or n.returncode != j.returncode:
            print('FAIL %s\n  native (exit %d): %s\n  js     (exit %d): %s' %
                  (what, n.returncode, json.dumps(nat), j.returncode, json.dumps(js)))
            failed += 1
        else:
            passed += 1
    print('js vs native: %d passed, %d failed' % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
