#!/usr/bin/env python3
"""run.py: the differential test driver.

For every seed: gen.py makes a program of many test functions; wfp-aot
compiles it once to a native module (and writes its core Wasm module in
the same run); every invocation then runs three ways and must agree:

  native  wfp-host prog.so --input ... --ctx ... --report
  V8      v8_run.mjs on the core module, in Node (the canonical-ABI stepper)
  ref     ref.py, an interpreter of docs/ir.md

native and V8 must agree on everything (status, output, trap, steps, fuel,
final context, messages); the reference on all but fuel, and on steps when
no fuel slice makes the invocation yield. Some invocations also run with a
small --fuel-slice (1 included: every loop iteration and call yields), and
some are stopped after a random step (--checkpoint --stop-after, exit 4) and
resumed in a new process (--resume): the report must be the straight run's,
byte for byte. With --opt-levels 0,2,3 every program is compiled at each
level and every run is repeated on each module: all must give the same
report.

    python3 run.py --seeds 1-500 [--aot PATH --host PATH --node PATH] [--jobs 2]
                   [--opt-levels 0,2,3] [--keep]

On a mismatch it prints the seed, the function, the three results and a
command to reproduce, and keeps the seed's directory (the program file)
under --work. Exit status: 0 all agree, 1 a mismatch or a failure, 2 usage.
"""
import argparse
import concurrent.futures
import json
import os
import random
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.setrecursionlimit(20000)

import gen  # noqa: E402
import ref  # noqa: E402

V8_RUN = os.path.join(HERE, 'v8_run.mjs')
TIMEOUT = 120


def parse_seeds(text):
    seeds = []
    for part in text.split(','):
        part = part.strip()
        if '-' in part[1:]:
            a, b = part.split('-', 1)
            seeds += list(range(int(a), int(b) + 1))
        elif part:
            seeds.append(int(part))
    return seeds


def default_tool(env, name):
    if os.environ.get(env):
        return os.environ[env]
    return os.path.normpath(os.path.join(HERE, '..', '..', 'build', name))


class Failure(Exception):
    pass


# ---- the three results, in one comparable form ----

def norm_native(text):
    r = ref.loads(text)
    # a done invocation's output may be the JSON null itself
    return {
        'status': r.get('status'),
        'output': ref.dumps(r.get('output')) if r.get('status') == 'done' else None,
        'trap': r.get('trap'),
        'steps': int(r.get('steps').text),
        'fuel': int(r.get('fuel').text),
        'ctx': [[k, int(v.text)] for k, v in r.get('ctx')],
        'messages': [[m.get('topic'), ref.dumps(m.get('payload'))] for m in r.get('messages')],
    }


def norm_v8(r):
    return {
        'status': r['status'],
        'output': None if r['output'] is None else ref.canon(r['output']),
        'trap': r['trap'],
        'steps': r['steps'],
        'fuel': int(r['fuel']),
        'ctx': [[k, int(v)] for k, v in r['ctx']],
        'messages': [[t, ref.canon(p)] for t, p in r['messages']],
    }


def norm_ref(r):
    if 'unspecified' in r:
        return r
    return {
        'status': r['status'],
        'output': None if r['output'] is None else ref.canon(r['output']),
        'trap': r['trap'],
        'steps': r['steps'],
        'ctx': [[k, int(v)] for k, v in r['ctx']],
        'messages': [[t, ref.canon(p)] for t, p in r['messages']],
    }


def differences(a, b, fields):
    return [f for f in fields if a.get(f) != b.get(f)]


# ---- one seed ----

class SeedRun:
    def __init__(self, seed, args):
        self.seed = seed
        self.a = args
        self.dir = os.path.join(args.work, 'seed-%d' % seed)
        self.log = []
        self.failed = False
        self.stats = {'functions': 0, 'invocations': 0, 'runs': 0, 'persist': 0,
                      'unspecified': 0, 'traps': 0, 'levels': 0, 'compile_s': 0.0}

    def say(self, text):
        self.log.append(text)

    def fail(self, text):
        self.failed = True
        self.say(text)

    def sh(self, cmd, timeout=TIMEOUT):
        return subprocess.run(cmd, capture_output=True, timeout=timeout)

    def host_cmd(self, run, so=None):
        cmd = [self.a.host, so or self.so, '--input', run['input']]
        for k, v in run['ctx']:
            cmd += ['--ctx', '%s=%d' % (k, v)]
        if run['fuel_slice']:
            cmd += ['--fuel-slice', str(run['fuel_slice'])]
        return cmd

    def repro(self, run):
        q = lambda s: "'" + s.replace("'", "'\\''") + "'"  # noqa: E731
        return ' '.join(q(x) for x in self.host_cmd(run) + ['--report'])

    def go(self):
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        prog, invs = gen.generate(self.seed, exclude=self.a.exclude)
        prog_path = os.path.join(self.dir, 'prog.json')
        with open(prog_path, 'w', encoding='utf-8') as f:
            f.write(ref.dumps(prog) + '\n')
        self.prog_path = prog_path
        wasm = os.path.join(self.dir, 'prog.wasm')
        self.stats['functions'] = len(prog['functions'])

        # one module per optimization level; the core module of the first
        # level also goes to V8
        self.sos = []
        t0 = time.monotonic()
        for i, level in enumerate(self.a.levels):
            so = os.path.join(self.dir, 'prog-O%d.so' % level)
            cmd = [self.a.aot, prog_path, '-O%d' % level, '-o', so]
            if i == 0:
                cmd += ['--emit-wasm', wasm]
            p = self.sh(cmd)
            if p.returncode != 0:
                # every generated program must be valid: a refusal is a generator
                # bug, or a checker bug when docs/ir.md says the program is valid
                self.fail('seed %d: wfp-aot -O%d refused or failed (exit %d) on %s:\n%s' % (
                    self.seed, level, p.returncode, prog_path, p.stderr.decode('utf-8', 'replace')))
                return
            self.sos.append((level, so))
        self.so = self.sos[0][1]
        self.stats['compile_s'] = time.monotonic() - t0

        # the runs: every invocation straight; some again with a small fuel
        # slice; some of them stopped and resumed
        rng = random.Random(self.seed * 1000003 + 17)
        runs = []
        for inv in invs:
            base = dict(inv, fuel_slice=0, fresh=rng.random() < 0.5)
            runs.append(base)
            if rng.random() < 0.3:
                # a slice of 1 makes every loop iteration and call a yield
                slice_ = 1 if rng.random() < 0.3 else rng.randint(2, 25)
                runs.append(dict(inv, fuel_slice=slice_, fresh=rng.random() < 0.5))
        for run in runs:
            run['persist'] = rng.random() < self.a.persist
            run['stop'] = rng.random()
            run['persist_so'] = rng.choice(self.sos)[1]  # stop and resume at any level
        self.stats['invocations'] = len(invs)
        self.stats['runs'] = len(runs)

        program = ref.Program(ref.loads(ref.dumps(prog)))

        # V8: all runs in one Node process
        jobs_path = os.path.join(self.dir, 'jobs.json')
        with open(jobs_path, 'w', encoding='utf-8') as f:
            json.dump([{'input': r['input'], 'ctx': [[k, str(v)] for k, v in r['ctx']],
                        'fuel_slice': r['fuel_slice'], 'fresh': r['fresh']} for r in runs],
                      f, ensure_ascii=False)
        p = self.sh([self.a.node, V8_RUN, wasm, jobs_path])
        if p.returncode != 0:
            self.fail('seed %d: v8_run.mjs failed (exit %d):\n%s' % (
                self.seed, p.returncode, p.stderr.decode('utf-8', 'replace')))
            return
        v8_results = json.loads(p.stdout.decode('utf-8'))

        for run, v8r in zip(runs, v8_results):
            self.check(run, v8r, program)

    def check(self, run, v8r, program):
        p = self.sh(self.host_cmd(run) + ['--report'])
        where = 'seed %d fn %s ctx %s%s' % (self.seed, run['fn'], json.dumps(dict(run['ctx'])),
                                             ' fuel-slice %d' % run['fuel_slice'] if run['fuel_slice'] else '')
        if p.returncode not in (0, 1) or not p.stdout.strip():
            self.fail('%s: wfp-host exit %d, no report\n  stderr: %s\n  reproduce: %s' % (
                where, p.returncode, p.stderr.decode('utf-8', 'replace').strip(), self.repro(run)))
            return
        straight = p.stdout
        native = norm_native(straight.decode('utf-8'))
        if (p.returncode == 0) != (native['status'] == 'done'):
            self.fail('%s: wfp-host exit %d with status %s' % (where, p.returncode, native['status']))
        v8 = norm_v8(v8r)
        expect = norm_ref(ref.evaluate(program, run['input'], [tuple(kv) for kv in run['ctx']]))
        if native['status'] == 'trap':
            self.stats['traps'] += 1

        problems = []
        d = differences(native, v8, ['status', 'output', 'trap', 'steps', 'fuel', 'ctx', 'messages'])
        if d:
            problems.append('native and V8 differ in ' + ', '.join(d))
        if 'unspecified' in expect:
            self.stats['unspecified'] += 1
        else:
            fields = ['status', 'output', 'trap', 'ctx', 'messages'] + ([] if run['fuel_slice'] else ['steps'])
            d = differences(native, expect, fields)
            if d:
                problems.append('native and the reference differ in ' + ', '.join(d))
            d = differences(v8, expect, fields)
            if d:
                problems.append('V8 and the reference differ in ' + ', '.join(d))
        if problems:
            self.fail('MISMATCH %s: %s\n  program: %s\n  input:   %s\n  native:  %s\n  v8:      %s\n  ref:     %s\n'
                      '  reproduce: %s\n            python3 %s %s --input %s %s' % (
                          where, '; '.join(problems), self.prog_path, run['input'],
                          json.dumps(native, ensure_ascii=False), json.dumps(v8, ensure_ascii=False),
                          json.dumps(expect, ensure_ascii=False), self.repro(run),
                          os.path.join(HERE, 'ref.py'), self.prog_path,
                          "'" + run['input'] + "'",
                          ' '.join('--ctx %s=%d' % (k, v) for k, v in run['ctx'])))
            return

        # the other optimization levels: the same report, byte for byte
        for level, so in self.sos[1:]:
            q = self.sh(self.host_cmd(run, so) + ['--report'])
            self.stats['levels'] += 1
            if q.returncode != p.returncode or q.stdout != straight:
                self.fail('MISMATCH %s: -O%d and -O%d differ\n  -O%d: exit %d, %s\n  -O%d: exit %d, %s\n'
                          '  reproduce: %s' % (
                              where, self.sos[0][0], level, self.sos[0][0], p.returncode,
                              straight.decode('utf-8', 'replace').strip(), level, q.returncode,
                              q.stdout.decode('utf-8', 'replace').strip(),
                              ' '.join(self.host_cmd(run, so) + ['--report'])))
                return

        if run['persist'] and native['steps'] >= 2:
            self.persist(run, where, straight, native['steps'], p.returncode)

    def persist(self, run, where, straight, steps, rc):
        n = 1 + int(run['stop'] * (steps - 1))
        ck = os.path.join(self.dir, 'ck')
        if os.path.exists(ck):
            os.unlink(ck)
        so = run['persist_so']
        p = self.sh(self.host_cmd(run, so) + ['--checkpoint', ck, '--stop-after', str(n)])
        if p.returncode != 4:
            self.fail('%s: --stop-after %d of %d steps: exit %d, expected 4 (suspended)\n  %s' % (
                where, n, steps, p.returncode, p.stderr.decode('utf-8', 'replace').strip()))
            return
        p = self.sh([self.a.host, so, '--resume', ck, '--report'])
        self.stats['persist'] += 1
        if p.returncode != rc or p.stdout != straight:
            self.fail('MISMATCH %s: stopped after %d of %d steps and resumed: exit %d, report\n    %s\n'
                      '  straight run: exit %d, report\n    %s\n  reproduce: %s --checkpoint ck --stop-after %d'
                      ' && %s %s --resume ck --report' % (
                          where, n, steps, p.returncode, p.stdout.decode('utf-8', 'replace').strip(), rc,
                          straight.decode('utf-8', 'replace').strip(),
                          ' '.join(self.host_cmd(run, so)), n, self.a.host, so))

    def finish(self):
        if not self.failed and not self.a.keep:
            shutil.rmtree(self.dir, ignore_errors=True)


def run_seed(seed, args):
    s = SeedRun(seed, args)
    try:
        s.go()
    except subprocess.TimeoutExpired as e:
        s.fail('seed %d: timed out: %s' % (seed, ' '.join(map(str, e.cmd))[:300]))
    except Exception as e:  # a crash of the driver must fail the test too, with the seed
        import traceback
        s.fail('seed %d: driver error: %s\n%s' % (seed, e, traceback.format_exc()))
    s.finish()
    return s


def main(argv):
    ap = argparse.ArgumentParser(description='differential test: native wfp vs V8 vs the reference evaluator')
    ap.add_argument('--seeds', default='1-8', help='e.g. 1-500 or 3,7,9 (default 1-8)')
    ap.add_argument('--aot', default=default_tool('WFP_AOT', 'wfp-aot'))
    ap.add_argument('--host', default=default_tool('WFP_HOST', 'wfp-host'))
    ap.add_argument('--node', default=os.environ.get('WFP_NODE', 'node'))
    ap.add_argument('--work', default=os.path.join(os.getcwd(), 'diff-work'),
                    help='where programs are written (failing seeds are kept there)')
    ap.add_argument('--jobs', type=int, default=2, help='seeds in parallel (default 2)')
    ap.add_argument('--persist', type=float, default=0.35,
                    help='the share of runs also stopped and resumed (default 0.35)')
    ap.add_argument('--opt-levels', default='2',
                    help='compile each program at these wfp-aot levels, e.g. 0,2,3 (default 2); '
                         'every run is repeated on each module')
    ap.add_argument('--keep', action='store_true', help='keep every seed directory')
    ap.add_argument('--fixed-only', action='store_true',
                    help='leave out the constructs of gen.FIXED_SEED_EXCLUSIONS (known open bugs): the ctest run')
    ap.add_argument('-v', '--verbose', action='store_true')
    args = ap.parse_args(argv)
    try:
        seeds = parse_seeds(args.seeds)
    except ValueError:
        ap.error('bad --seeds %r' % args.seeds)
    if not seeds:
        ap.error('no seeds')
    try:
        args.levels = [int(x) for x in args.opt_levels.split(',') if x.strip()]
    except ValueError:
        ap.error('bad --opt-levels %r' % args.opt_levels)
    if not args.levels or any(lv < 0 or lv > 3 for lv in args.levels):
        ap.error('--opt-levels takes levels 0..3')
    args.exclude = set(gen.FIXED_SEED_EXCLUSIONS) if args.fixed_only else set()
    for tool in (args.aot, args.host):
        if not os.access(tool, os.X_OK):
            print('run.py: %s is not an executable (give --aot/--host)' % tool, file=sys.stderr)
            return 2
    os.makedirs(args.work, exist_ok=True)

    t0 = time.monotonic()
    total = {}
    failed = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as ex:
        for s in ex.map(lambda sd: run_seed(sd, args), seeds):
            for k, v in s.stats.items():
                total[k] = total.get(k, 0) + v
            for line in s.log:
                print(line, flush=True)
            if s.failed:
                failed.append(s.seed)
                print('seed %d: FAILED; program kept in %s' % (s.seed, s.dir), flush=True)
            elif args.verbose:
                print('seed %d: ok: %d functions, %d invocations, %d runs, %d resumed (compile %.1fs)' % (
                    s.seed, s.stats['functions'], s.stats['invocations'], s.stats['runs'],
                    s.stats['persist'], s.stats['compile_s']), flush=True)
    dt = time.monotonic() - t0
    # a run that compared nothing, or nothing against the reference, proves nothing
    compared = total.get('runs', 0) - total.get('unspecified', 0)
    if not failed and (total.get('runs', 0) == 0 or compared < total.get('runs', 0) // 2):
        print('run.py: only %d of %d runs were compared with the reference' % (compared, total.get('runs', 0)))
        failed.append('(too few comparisons)')
    print('diff: %d programs, %d functions, %d invocations, %d runs (%d traps), %d stopped and resumed, '
          '%d repeated at other -O levels, %d left to native-vs-V8 only (docs silent); %s in %.1fs' % (
              len(seeds), total.get('functions', 0), total.get('invocations', 0), total.get('runs', 0),
              total.get('traps', 0), total.get('persist', 0), total.get('levels', 0),
              total.get('unspecified', 0),
              'FAILED seeds %s' % ','.join(map(str, failed)) if failed else 'all agree', dt))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
