// v8_stepper.mjs: the V8 baseline of the effect round trip: drives the same
// core .wasm (wfp-aot --emit-wasm bench/loop.json) from JavaScript in Node;
// it is a benchmark host only (ctx-get-i64 and nothing else), not a wfp host.
//
// usage: node bench/v8_stepper.mjs LOOP.wasm N K RUNS
// Does per step what the C host library does: lowers input, state and
// resume into linear memory with cabi_realloc (one allocation, as the .so's
// glue does), calls run-step, lifts the result from the return area, copies
// the state out (post-return frees it), performs ctx-get-i64 with a Map
// lookup, formats the resume text {"i64":N}, and calls cabi_post_run-step.
// The state (68 bytes here) is copied with TypedArray.set, which measured
// faster than a byte loop; the input and resume texts (2 and 9 bytes) by hand.
// One untimed warm-up run lets V8 tier up; then RUNS timed runs. Prints
// "key value" lines like the C drivers.
import { readFileSync } from 'node:fs';

const [wasmPath, nArg, kArg, runsArg] = process.argv.slice(2);
if (!wasmPath || !nArg || !kArg || !runsArg) {
  console.error('usage: node v8_stepper.mjs LOOP.wasm N K RUNS');
  process.exit(2);
}
const N = BigInt(nArg), K = BigInt(kArg), RUNS = Number(runsArg);

// The module imports nothing: an empty import object.
const { instance } = await WebAssembly.instantiate(readFileSync(wasmPath), {});
const ex = instance.exports;
const runStep = ex['run-step'], realloc = ex.cabi_realloc;
const postReturn = ex['cabi_post_run-step'];

// Views over memory are rebuilt when memory.grow detaches the buffer (a
// detached view has length 0): cheaper than reading memory.buffer per step.
let u8 = new Uint8Array(0), dv = null;
function views() {
  if (u8.length === 0) {
    u8 = new Uint8Array(ex.memory.buffer);
    dv = new DataView(ex.memory.buffer);
  }
}

const enc = new TextEncoder(), dec = new TextDecoder();

// Short ASCII keys without TextDecoder, as a tuned host would; else UTF-8.
function lift(p, n) {
  if (n <= 16) {
    let s = '';
    for (let i = 0; i < n; i++) {
      const c = u8[p + i];
      if (c >= 0x80) return dec.decode(u8.subarray(p, p + n));
      s += String.fromCharCode(c);
    }
    return s;
  }
  return dec.decode(u8.subarray(p, p + n));
}

// The resume text {"i64":N} written as bytes into dst; returns its length.
// Safe-integer Numbers are formatted by hand (no string per step); a BigInt
// beyond 2^53 goes through its string form.
const PREFIX = [...'{"i64":'].map((c) => c.charCodeAt(0));
const digits = new Uint8Array(24);
function formatI64(dst, v) {
  let k = 0;
  for (; k < PREFIX.length; k++) dst[k] = PREFIX[k];
  if (typeof v === 'number') {
    let u = v;
    if (u < 0) {
      dst[k++] = 45; // '-'
      u = -u;
    }
    let nd = 0;
    do {
      digits[nd++] = 48 + (u % 10);
      u = Math.floor(u / 10);
    } while (u > 0);
    while (nd > 0) dst[k++] = digits[--nd];
  } else {
    const t = String(v);
    for (let i = 0; i < t.length; i++) dst[k++] = t.charCodeAt(i);
  }
  dst[k++] = 125; // '}'
  return k;
}

function runOnce(n, k) {
  // i64 context values: Numbers when exact, BigInts otherwise
  const asI64 = (v) => (v >= -(2n ** 53n) + 1n && v <= 2n ** 53n - 1n ? Number(v) : v);
  const ctx = new Map([['n', asI64(n)], ['k', asI64(k)]]);
  const input = enc.encode('{}');
  let state = new Uint8Array(256), stateLen = 0; // reused, like the C host
  let resumeBytes = new Uint8Array(64);
  let hasResume = 0, resumeLen = 0;
  let steps = 0;
  for (;;) {
    steps++;
    // lower: one allocation for input, state and resume, 8-aligned parts
    const a = (input.length + 7) & ~7, b = (stateLen + 7) & ~7;
    const base = realloc(0, 0, 8, a + b + resumeLen) >>> 0;
    views();
    for (let i = 0; i < input.length; i++) u8[base + i] = input[i];
    if (stateLen) u8.set(state.subarray(0, stateLen), base + a);
    for (let i = 0, d = base + a + b; i < resumeLen; i++) u8[d + i] = resumeBytes[i];
    const r = runStep(0n, base, input.length, base + a, stateLen, hasResume,
                      base + a + b, resumeLen) >>> 0;
    views();
    const tag = u8[r];
    if (tag === 0 || tag === 2) {
      const tp = dv.getUint32(r + 8, true), tn = dv.getUint32(r + 12, true);
      const text = dec.decode(u8.subarray(tp, tp + tn));
      postReturn(r);
      if (tag === 2) throw new Error('trap: ' + text);
      return { steps, output: text };
    }
    if (tag !== 1) throw new Error('malformed step result');
    const effect = u8[r + 8];
    if (effect !== 0) throw new Error('unexpected effect ' + effect);
    const key = lift(dv.getUint32(r + 16, true), dv.getUint32(r + 20, true));
    const sp = dv.getUint32(r + 48, true), sn = dv.getUint32(r + 52, true);
    if (sn > state.length) state = new Uint8Array(sn * 2);
    state.set(u8.subarray(sp, sp + sn));
    stateLen = sn;
    postReturn(r);
    // perform ctx-get-i64
    const v = ctx.get(key);
    if (v === undefined) {
      const t = enc.encode(JSON.stringify({ error: `context key '${key}' is not set` }));
      if (t.length > resumeBytes.length) resumeBytes = new Uint8Array(t.length);
      resumeBytes.set(t);
      resumeLen = t.length;
    } else {
      resumeLen = formatI64(resumeBytes, v);
    }
    hasResume = 1;
  }
}

function check(res, n, k) {
  const want = `{"result":${n * k}}`;
  if (res.output !== want) {
    console.error(`v8_stepper: wrong output ${res.output}, expected ${want}`);
    process.exit(1);
  }
}

{
  const wn = N / 10n > 0n ? N / 10n : 1n;
  check(runOnce(wn, K), wn, K);
}
const ns = [];
let steps = 0;
for (let i = 0; i < RUNS; i++) {
  const t0 = process.hrtime.bigint();
  const res = runOnce(N, K);
  const t1 = process.hrtime.bigint();
  check(res, N, K);
  steps = res.steps;
  ns.push(Number(t1 - t0) / steps);
}
ns.sort((x, y) => x - y);
console.log(`module ${wasmPath}`);
console.log(`steps ${steps}`);
console.log(`runs ${RUNS}`);
console.log(`ns_per_step_median ${ns[Math.floor(RUNS / 2)].toFixed(2)}`);
console.log(`ns_per_step_min ${ns[0].toFixed(2)}`);
console.log(`ns_per_step_max ${ns[RUNS - 1].toFixed(2)}`);
console.log(`node ${process.version}`);
