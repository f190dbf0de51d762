#!/usr/bin/env python3
"""make_seeds.py: real state bytes and checkpoints, captured from runs of
state.program.json, as seeds of the state and checkpoint fuzz targets.

Every function of the program is run by wfp-host with --trace (the resume
value of each step) and stopped after each of its pending steps with
--checkpoint (the state bytes of that step); with the default fuel slice
and with a slice of 2, so that loops and calls yield too. Writes:
  OUT/state/*       inputs of fuzz_state (see the header of fuzz_state.c)
  OUT/checkpoint/*  whole checkpoints, as wfp-host writes them

    python3 make_seeds.py WFP_AOT WFP_HOST OUT

The seeds are then cut down to those that add coverage:
    fuzz_state -merge=1 corpus/state OUT/state   (and so on; README.md)
"""
import base64
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

# The inputs of fuzz_state.c, in its order, with what each needs.
RUNS = [
    ('{}', []),
    ('{"fn":"nest"}', ['--ctx', 'k=2']),
    ('{"fn":"rec","args":{"d":3}}', []),
    ('{"fn":"bump","self":1}', ['--new', 'Counter:value=4,name=x,data=[1]']),
    ('{"fn":"query"}', []),
    ('{"fn":"spin"}', []),
    ('{"fn":"greet","args":{"who":"w","opts":{"x":[1]}}}', []),
    ('{"fn":"rec","args":[2]}', []),
]


def host(hostbin, so, args, check=True):
    p = subprocess.run([hostbin, so] + args, capture_output=True, text=True)
    if check and p.returncode not in (0, 1, 4):
        sys.exit('wfp-host failed (%d): %s' % (p.returncode, p.stderr))
    return p


def resumes(trace):
    """The raw resume text of each step (None: no resume value)."""
    out = {}
    for line in trace.splitlines():
        if '"performed"' not in line:
            continue
        step = json.loads(line)['step']
        raw = line[line.index('"resume":') + len('"resume":'):-1]
        out[step] = None if raw == 'null' else raw.encode()
    return out


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    aot, hostbin, out = sys.argv[1:]
    for d in ('state', 'checkpoint'):
        os.makedirs(os.path.join(out, d), exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        so = os.path.join(tmp, 'state.so')
        subprocess.run([aot, '-O1', os.path.join(HERE, 'state.program.json'), '-o', so],
                       check=True)
        n = 0
        for idx, (inp, extra) in enumerate(RUNS):
            for slice_ in (None, 2):
                args = ['--ctx', 'n=5', '--input', inp] + extra
                if slice_:
                    args += ['--fuel-slice', str(slice_)]
                run = host(hostbin, so, args + ['--trace'])
                res = resumes(run.stderr)
                for k in sorted(res):
                    ck = os.path.join(tmp, 'ck')
                    host(hostbin, so, args + ['--checkpoint', ck, '--stop-after', str(k)])
                    with open(ck, 'rb') as f:
                        raw = f.read()
                    body = json.loads(raw[raw.index(b'\n') + 1:])
                    state = base64.b64decode(body['state'])
                    flags = (idx << 1) | 0x20 | (0x10 if slice_ else 0)
                    if res[k] is not None:
                        flags |= 1
                    # the last pending step of a run: chain to the end
                    if k == max(res):
                        flags |= 0xC0
                    seed = bytes([flags, len(state) & 0xFF, len(state) >> 8]) + state
                    seed += res[k] or b''
                    n += 1
                    with open(os.path.join(out, 'state', 'seed-%03d' % n), 'wb') as f:
                        f.write(seed)
                    with open(os.path.join(out, 'checkpoint', 'seed-%03d' % n), 'wb') as f:
                        f.write(raw)
        print('%d seeds in %s' % (n, out))


if __name__ == '__main__':
    main()
