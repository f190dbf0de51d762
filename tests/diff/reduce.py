#!/usr/bin/env python3
"""reduce.py: shrinks a program that shows a bug, keeping it showing.

    python3 reduce.py PROGRAM.json -o SMALL.json --aot-error 'TEXT' [--build]
        keeps wfp-aot --check --emit-wasm (with --build: the whole compilation)
        failing with TEXT on stderr
    python3 reduce.py PROGRAM.json -o SMALL.json --mismatch FN [--input JSON] [--ctx K=V]...
        keeps native wfp-host (or V8) disagreeing with ref.py on FN's invocation

Greedy: drops functions, statements and branches, and replaces
expressions by their operands or by literals, as long as the program still
passes the checker and the bug remains. Slow (one wfp-aot run per try) but
unattended; the result is what tests/diff/found/ keeps.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.setrecursionlimit(20000)

import ref  # noqa: E402
import run as driver  # noqa: E402

LITS = [{'op': 'lit_i64', 'value': 0}, {'op': 'lit_i64', 'value': 1}, {'op': 'lit_str', 'value': ''},
        {'op': 'lit_json', 'value': None}]


class Reducer:
    def __init__(self, a):
        self.a = a
        self.tmp = tempfile.mkdtemp(prefix='wfp-reduce-')
        self.tries = 0

    def smaller(self, prog):
        """Still shows the bug, and is smaller than the best so far (so that
        the search cannot go round in circles)."""
        size = len(ref.dumps(prog))
        if size >= self.best_size or not self.interesting(prog):
            return False
        self.best_size = size
        with open(self.a.output, 'w', encoding='utf-8') as f:
            f.write(pretty(prog) + '\n')
        return True

    def interesting(self, prog):
        self.tries += 1
        path = os.path.join(self.tmp, 'p.json')
        with open(path, 'w', encoding='utf-8') as f:
            f.write(ref.dumps(prog))
        if self.a.aot_error is not None:
            cmd = [self.a.aot, '--emit-wasm', os.path.join(self.tmp, 'p.wasm'), path]
            cmd += ['-o', os.path.join(self.tmp, 'p.so')] if self.a.build else ['--check']
            p = subprocess.run(cmd, capture_output=True)
            return p.returncode != 0 and self.a.aot_error in p.stderr.decode('utf-8', 'replace')
        so, wasm = os.path.join(self.tmp, 'p.so'), os.path.join(self.tmp, 'p.wasm')
        p = subprocess.run([self.a.aot, path, '-o', so, '--emit-wasm', wasm], capture_output=True)
        if p.returncode != 0:
            return False
        ctx = []
        for kv in self.a.ctx:
            k, _, v = kv.partition('=')
            ctx.append((k, int(v)))
        cmd = [self.a.host, so, '--input', self.a.input, '--report']
        for k, v in ctx:
            cmd += ['--ctx', '%s=%d' % (k, v)]
        p = subprocess.run(cmd, capture_output=True)
        if p.returncode not in (0, 1):
            return True  # a crash is a bug worth keeping
        try:
            native = driver.norm_native(p.stdout.decode('utf-8'))
            expect = driver.norm_ref(ref.evaluate(ref.loads(ref.dumps(prog)), self.a.input, ctx))
        except Exception:
            return False
        if 'unspecified' in expect:
            return False
        fields = ['status', 'output', 'trap', 'ctx', 'messages', 'steps']
        return driver.differences(native, expect, fields) != []

    # every place in the program that holds a list of statements or an expression
    def places(self, node, out):
        if isinstance(node, dict):
            for k, v in list(node.items()):
                if isinstance(v, list) and v and all(isinstance(x, dict) and 'op' in x for x in v):
                    out.append(('list', node, k))
                if isinstance(v, dict) and 'op' in v and k not in ('value',):
                    out.append(('expr', node, k))
                self.places(v, out)
        elif isinstance(node, list):
            for x in node:
                self.places(x, out)

    def pass_functions(self, prog):
        """Drops functions, many at a time first, then one by one."""
        changed = False
        chunk = max(1, len(prog['functions']) // 2)
        while chunk >= 1:
            i = 0
            while i < len(prog['functions']):
                cand = dict(prog, functions=prog['functions'][:i] + prog['functions'][i + chunk:])
                if self.smaller(cand):
                    prog['functions'] = cand['functions']
                    changed = True
                else:
                    i += chunk
            chunk //= 2
        return changed

    def pass_places(self, prog):
        """One sweep over every statement list and expression, keeping each
        change that leaves the bug there."""
        changed = False
        n = 0
        while True:
            places = []
            self.places(prog['functions'], places)
            if n >= len(places):
                return changed
            kind, node, key = places[n]
            n += 1
            if kind == 'list':
                j = 0
                while j < len(node[key]):
                    lst = node[key]
                    saved = lst[j]
                    reps = [[]]
                    if saved.get('op') == 'if':
                        reps += [saved.get('then', []), saved.get('else', [])]
                    if saved.get('op') == 'while':
                        reps.append(saved.get('body', []))
                    for rep in reps:
                        node[key] = lst[:j] + rep + lst[j + 1:]
                        if self.smaller(prog):
                            changed = True
                            break
                        node[key] = lst
                    else:
                        j += 1
            else:
                saved = node[key]
                subs = [v for k, v in saved.items() if isinstance(v, dict) and 'op' in v and k != 'value']
                for k, v in saved.items():
                    if isinstance(v, list):
                        subs += [x for x in v if isinstance(x, dict) and 'op' in x]
                for rep in subs + LITS:
                    if rep == saved:
                        continue
                    node[key] = rep
                    if self.smaller(prog):
                        changed = True
                        break
                    node[key] = saved

    def reduce(self, prog):
        while True:
            a = self.pass_functions(prog)
            b = self.pass_places(prog)
            print('reduce: %d bytes after %d tries' % (len(ref.dumps(prog)), self.tries), file=sys.stderr)
            if not (a or b):
                return prog


def main(argv):
    ap = argparse.ArgumentParser(description='shrink a program that shows a bug')
    ap.add_argument('program')
    ap.add_argument('-o', '--output', required=True)
    ap.add_argument('--aot', default=driver.default_tool('WFP_AOT', 'wfp-aot'))
    ap.add_argument('--host', default=driver.default_tool('WFP_HOST', 'wfp-host'))
    ap.add_argument('--aot-error', default=None)
    ap.add_argument('--build', action='store_true',
                    help='with --aot-error: build the module (the error is past code generation)')
    ap.add_argument('--mismatch', default=None, metavar='FN')
    ap.add_argument('--input', default=None)
    ap.add_argument('--ctx', action='append', default=[])
    a = ap.parse_args(argv)
    if (a.aot_error is None) == (a.mismatch is None):
        ap.error('give --aot-error TEXT or --mismatch FN')
    if a.mismatch and a.input is None:
        a.input = json.dumps({'fn': a.mismatch})
    with open(a.program, encoding='utf-8') as f:
        prog = ref.loads(f.read())
    prog = to_plain(prog)
    r = Reducer(a)
    r.best_size = len(ref.dumps(prog)) + 1
    if not r.smaller(prog):
        print('reduce: the program does not show the bug to begin with', file=sys.stderr)
        return 1
    r.reduce(prog)
    print('reduce: wrote %s (%d tries)' % (a.output, r.tries), file=sys.stderr)
    return 0


def to_plain(x):
    """JObj to dict (IR objects have unique keys), keeping RawNum numbers."""
    if isinstance(x, ref.JObj):
        return {k: to_plain(v) for k, v in x}
    if isinstance(x, list):
        return [to_plain(v) for v in x]
    return x


def pretty(prog):
    """One function per line: small enough to read, exact numbers kept."""
    lines = ['{"version": 1, "functions": [']
    fns = prog['functions']
    for i, f in enumerate(fns):
        lines.append('  ' + ref.dumps(f) + (',' if i + 1 < len(fns) else ''))
    lines.append(']}')
    return '\n'.join(lines)


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
