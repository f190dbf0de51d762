// v8_run.mjs: runs invocations of a wfp core module (wfp-aot --emit-wasm) in
// V8 with plain WebAssembly.instantiate, driving the canonical-ABI run-step
// export the way a host does, and prints one report per invocation.
//
//   node v8_run.mjs MODULE.wasm JOBS.json
//
// JOBS.json is an array of {"input": TEXT, "ctx": [[KEY, "I64"], ...],
// "fuel_slice": N (0: the default), "fresh": BOOL}. With "fresh" every step
// runs on a new instance, so the state bytes alone must carry the
// invocation; without it one instance serves every step, as wfp-host does.
// Prints a JSON array of {"status", "output", "trap", "steps", "fuel",
// "ctx": [[KEY, "I64"], ...], "messages": [[TOPIC, PAYLOAD_TEXT], ...]};
// i64 values travel as decimal strings so that none loses digits.
import { readFileSync } from 'node:fs';

const [wasmPath, jobsPath] = process.argv.slice(2);
if (!wasmPath || !jobsPath) {
  console.error('usage: node v8_run.mjs MODULE.wasm JOBS.json');
  process.exit(2);
}

const module = await WebAssembly.compile(readFileSync(wasmPath));
const jobs = JSON.parse(readFileSync(jobsPath, 'utf8'));
const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

// The same default as the C host (hostlib/invoke.c DEFAULT_FUEL_SLICE).
const DEFAULT_FUEL_SLICE = 1000000n;
// A generated program that never ends is a generator bug; stop it anyway.
const MAX_STEPS = 200000;

// Effect cases of wit/function.wit, in declaration order.
const EFFECTS = ['ctx-get-i64', 'ctx-set-i64', 'msg-send', 'sleep-ms', 'db-query', 'self-get', 'self-set', 'yield'];

// The messages V8 gives Wasm traps, as the wasm2c runtime of the native host
// words them (hostlib/wasm_rt.c wasm_rt_strerror).
function trapMessage(e, ex) {
  const m = String(e && e.message);
  if (e instanceof RangeError && /call stack/i.test(m)) return 'call stack exhausted';
  if (!(e instanceof WebAssembly.RuntimeError)) throw e;
  if (/divide by zero|remainder by zero/.test(m)) return 'integer division by zero';
  if (/unrepresentable/.test(m)) return 'integer overflow';
  if (/out of bounds/.test(m)) return 'out-of-bounds memory access';
  if (/unreachable/.test(m)) {
    // the guest runtime's fatal errors name themselves before trapping
    const p = ex.wfp_fatal_message() >>> 0;
    const u8 = new Uint8Array(ex.memory.buffer);
    let end = p;
    while (u8[end] !== 0) end++;
    const s = dec.decode(u8.subarray(p, end));
    return s || 'unreachable code executed';
  }
  if (/signature/.test(m)) return "call_ref: the function value's signature does not match the call";
  return 'wasm trap: ' + m;
}

function lower(ex, bytes) {
  if (bytes.length === 0) return 0;
  const p = ex.cabi_realloc(0, 0, 1, bytes.length) >>> 0;
  new Uint8Array(ex.memory.buffer).set(bytes, p);
  return p;
}

function runJob(job) {
  const ctx = new Map(job.ctx.map(([k, v]) => [k, BigInt(v)]));
  const messages = [];
  const input = enc.encode(job.input);
  const slice = job.fuel_slice ? BigInt(job.fuel_slice) : DEFAULT_FUEL_SLICE;
  let inst = null;
  let state = new Uint8Array(0);
  let resume = null;
  let steps = 0;
  let fuel = 0n;
  const report = (status, output, trap) => ({
    status, output, trap, steps, fuel: String(fuel),
    ctx: [...ctx].map(([k, v]) => [k, String(v)]), messages,
  });
  for (;;) {
    if (steps >= MAX_STEPS) return report('trap', null, `v8_run: no end after ${MAX_STEPS} steps`);
    steps++;
    if (!inst || job.fresh) inst = new WebAssembly.Instance(module, {});
    const ex = inst.exports;
    let r;
    try {
      ex.wfp_set_fuel(slice);
      // one allocation per lowered value, as the canonical ABI's lowering does
      const ip = lower(ex, input);
      const sp = lower(ex, state);
      const rb = resume === null ? new Uint8Array(0) : enc.encode(resume);
      const rp = lower(ex, rb);
      r = ex['run-step'](0n, ip, input.length, sp, state.length, resume === null ? 0 : 1, rp, rb.length) >>> 0;
    } catch (e) {
      // a Wasm trap loses the instance (its stack pointer is gone with it)
      const msg = trapMessage(e, ex);
      inst = null;
      return report('trap', null, msg);
    }
    fuel += BigInt.asIntN(64, ex.wfp_fuel_used());
    const buf = ex.memory.buffer;
    const u8 = new Uint8Array(buf);
    const dv = new DataView(buf);
    const str = (at) => {
      const p = dv.getUint32(at, true), n = dv.getUint32(at + 4, true);
      return dec.decode(u8.subarray(p, p + n));
    };
    const tag = u8[r];
    if (tag === 0 || tag === 2) {
      const text = str(r + 8);
      ex['cabi_post_run-step'](r);
      return tag === 0 ? report('done', text, null) : report('trap', null, text);
    }
    if (tag !== 1) throw new Error(`malformed step result tag ${tag}`);
    const effect = EFFECTS[u8[r + 8]];
    const sp = dv.getUint32(r + 48, true), sn = dv.getUint32(r + 52, true);
    state = u8.slice(sp, sp + sn); // the host's own copy, independent of the guest's memory
    resume = null;
    switch (effect) {
      case 'ctx-get-i64': {
        const key = str(r + 16);
        resume = ctx.has(key)
          ? `{"i64":${ctx.get(key)}}`
          : JSON.stringify({ error: `context key '${key}' is not set` });
        break;
      }
      case 'ctx-set-i64':
        ctx.set(str(r + 16), dv.getBigInt64(r + 24, true));
        break;
      case 'msg-send':
        messages.push([str(r + 16), str(r + 24)]);
        break;
      case 'sleep-ms':
      case 'yield':
        break;
      default:
        ex['cabi_post_run-step'](r);
        return report('trap', null, `v8_run: effect ${effect} is not performed here`);
    }
    ex['cabi_post_run-step'](r);
  }
}

process.stdout.write(JSON.stringify(jobs.map(runJob)) + '\n');
