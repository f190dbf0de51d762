#!/usr/bin/env python3
"""roundtrip.py: the text form of IR programs, both ways.

For every program given (JSON files, and the generated programs of the
differential suite for --seeds): IR -> text -> IR gives the same canonical
IR (IDs included) and text -> IR -> text the same text. The lifted IR that
--emit-ir writes goes the same round. Prints one line per failure and a
summary; exit 0 when all agree.

    roundtrip.py --aot wfp-aot --work DIR [--seeds 1-12,30] [--lifted] FILE.json ...
"""
import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'diff'))


def aot(args, what):
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError('%s: wfp-aot %s failed (exit %d): %s' %
                           (what, ' '.join(args[1:]), r.returncode, r.stderr.strip()[:800]))


def read(path):
    with open(path, 'rb') as f:
        return f.read()


def one(a, src, work, name):
    """IR src -> text -> IR; then text -> IR -> text."""
    ir1, t1 = os.path.join(work, name + '.ir1.json'), os.path.join(work, name + '.wfp')
    ir2, t2 = os.path.join(work, name + '.ir2.json'), os.path.join(work, name + '.2.wfp')
    aot([a, '--check', '--emit-ir', ir1, '--emit-text', t1, src], name)
    aot([a, '--check', '--emit-ir', ir2, '--emit-text', t2, t1], name + ' (text)')
    if read(ir1) != read(ir2):
        raise RuntimeError('%s: the text form compiles to another IR (%s vs %s)' % (name, ir1, ir2))
    if read(t1) != read(t2):
        raise RuntimeError('%s: text -> IR -> text changed the text (%s vs %s)' % (name, t1, t2))
    return ir1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--aot', required=True)
    ap.add_argument('--work', required=True)
    ap.add_argument('--seeds', default='')
    ap.add_argument('--lifted', action='store_true', help='also the lifted IR of each')
    ap.add_argument('files', nargs='*')
    o = ap.parse_args()
    os.makedirs(o.work, exist_ok=True)
    progs = [(os.path.basename(f)[:-5], f) for f in o.files]
    if o.seeds:
        import gen
        seeds = []
        for part in o.seeds.split(','):
            lo, _, hi = part.partition('-')
            seeds += range(int(lo), int(hi or lo) + 1)
        for s in seeds:
            prog, _ = gen.generate(s)
            path = os.path.join(o.work, 'seed%d.json' % s)
            with open(path, 'w', encoding='utf-8') as f:
                f.write(gen.dumps(prog) + '\n')
            progs.append(('seed%d' % s, path))
    passed = failed = 0
    for name, path in progs:
        try:
            ir = one(o.aot, path, o.work, name)
            passed += 1
            if o.lifted:
                one(o.aot, ir, o.work, name + '.lifted')
                passed += 1
        except RuntimeError as e:
            failed += 1
            print('FAIL', e)
    print('text round trip: %d passed, %d failed' % (passed, failed))
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == '__main__':
    sys.exit(main())
