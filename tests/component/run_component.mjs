// Runs a core module made by `wfp-aot --emit-wasm` as a real Component Model component, through jco.
// Embeds wit/function.wit, builds the component, transpiles it to JS, and drives it with a JS host three
// times: through `runStep` (resume values as JSON text), through `resumeStep` (typed: i64 for a ctx-get-i64,
// none for an effect without a result, JSON text for an error), and alternating the two step by step (the
// state is the same on both exports). All three must give the same result.
// It does not compile programs, does not touch the native .so, and performs no db-query/self-* effects.
//
//   node run_component.mjs [options] NPM_DIR WIT_FILE CORE_WASM CTX_JSON EXPECTED_OUTPUT_JSON EXPECTED_MESSAGES_JSON
//
//   NPM_DIR          the directory scripts/npm-deps.sh installed jco into (holds node_modules/)
//   WIT_FILE         wit/function.wit
//   CORE_WASM        the core module written by `wfp-aot --check --emit-wasm`
//   CTX_JSON         the initial context, a JSON object of integers: '{"n": 41}'
//                    (a value may be a decimal string, for the whole i64 range)
//   EXPECTED_OUTPUT_JSON    the output the invocation must return (compared as parsed JSON)
//   EXPECTED_MESSAGES_JSON  the messages it must send, in order: '[{"topic": "t", "payload": 42}]'
//
// Options:
//   --input JSON          the invocation's input (default '{}': the entry function)
//   --max-steps N         fail after N steps (default 10000), so a runaway program ends the test
//   --native-report FILE  the output of `wfp-host --report` for the same program, input and context:
//                         output, messages, final context and step count must be the same here
//
// Exit 0 with one summary line when everything matches; 1 with one line per mismatch otherwise;
// 2 on a usage or environment error (jco missing, unreadable file).

import { readFileSync, writeFileSync, existsSync, mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';

const TAG = 'run_component';
const WORLD = 'function';

class UsageError extends Error {}

function usageText() {
  return (
    'usage: node run_component.mjs [--input JSON] [--max-steps N] [--native-report FILE]\n' +
    '         NPM_DIR WIT_FILE CORE_WASM CTX_JSON EXPECTED_OUTPUT_JSON EXPECTED_MESSAGES_JSON'
  );
}

function parseArgs(argv) {
  const opts = { input: '{}', maxSteps: 10000, nativeReport: null };
  const pos = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new UsageError(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--input') opts.input = value();
    else if (a === '--max-steps') opts.maxSteps = Number(value());
    else if (a === '--native-report') opts.nativeReport = value();
    else if (a === '-h' || a === '--help') { console.log(usageText()); process.exit(0); }
    else if (a.startsWith('--')) throw new UsageError(`unknown option ${a}`);
    else pos.push(a);
  }
  if (pos.length !== 6) throw new UsageError(`expected 6 arguments, got ${pos.length}`);
  if (!Number.isInteger(opts.maxSteps) || opts.maxSteps < 1) throw new UsageError('--max-steps needs a positive integer');
  const [npmDir, witFile, coreWasm, ctxText, outText, msgText] = pos;
  const json = (what, text) => {
    try { return JSON.parse(text); } catch (e) { throw new UsageError(`${what} is not JSON: ${e.message}`); }
  };
  const ctxObj = json('CTX_JSON', ctxText);
  if (ctxObj === null || typeof ctxObj !== 'object' || Array.isArray(ctxObj)) throw new UsageError('CTX_JSON must be a JSON object');
  const ctx = new Map();
  for (const [k, v] of Object.entries(ctxObj)) {
    // BigInt so that an i64 beyond 2^53 given as a decimal string stays exact.
    try { ctx.set(k, BigInt.asIntN(64, BigInt(v))); } catch { throw new UsageError(`CTX_JSON: '${k}' is not an integer`); }
  }
  const expectedMessages = json('EXPECTED_MESSAGES_JSON', msgText);
  if (!Array.isArray(expectedMessages)) throw new UsageError('EXPECTED_MESSAGES_JSON must be a JSON array');
  json('--input', opts.input);
  return { ...opts, npmDir, witFile, coreWasm, ctx, expectedOutput: json('EXPECTED_OUTPUT_JSON', outText), expectedMessages };
}

function readOrUsage(file, enc) {
  try { return readFileSync(file, enc); } catch (e) { throw new UsageError(`cannot read ${file}: ${e.message}`); }
}

// jco's own steps, each failure named, so a refusal of the module says which canonical-ABI step broke.
async function buildComponent(jco, binary, witSource) {
  let embedded, component, transpiled;
  try {
    embedded = await jco.componentEmbed({ binary, witSource, world: WORLD });
  } catch (e) {
    throw new Error(`jco componentEmbed (world '${WORLD}') refused the core module: ${e.message ?? e}`);
  }
  try {
    component = await jco.componentNew(embedded);
  } catch (e) {
    throw new Error(`jco componentNew cannot make a component of the core module: ${e.message ?? e}`);
  }
  try {
    transpiled = await jco.transpile(component, { name: 'component', wasiShim: false, quiet: true });
  } catch (e) {
    throw new Error(`jco transpile failed on the component: ${e.message ?? e}`);
  }
  return { component, transpiled };
}

// Writes the transpiled files to a fresh directory and imports them; the directory is removed
// afterwards since instantiation happens during the import (top-level await) and needs nothing later.
async function importTranspiled(files) {
  const dir = mkdtempSync(path.join(tmpdir(), 'wfp-component-'));
  try {
    // Node treats .js as CommonJS unless told otherwise; jco emits an ES module.
    writeFileSync(path.join(dir, 'package.json'), '{"type": "module"}\n');
    for (const [name, bytes] of Object.entries(files)) {
      const file = path.join(dir, name);
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, bytes);
    }
    return await import(pathToFileURL(path.join(dir, 'component.js')).href);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// The stepper loop, performing each effect the way wfp-host does (hostlib/invoke.c). mode: 'plain'
// (run-step), 'typed' (resume-step), 'mixed' (odd steps run-step, even steps resume-step).
async function runInvocation(mod, mode, input, ctx, maxSteps) {
  const messages = [];
  const ctxId = 1n; // the host's name for the context; this host has only one
  let state = new Uint8Array(0);
  let resume; // undefined is option::none
  let typed = { tag: 'none' }; // the same value as a resume-value
  let steps = 0;
  for (;;) {
    if (steps >= maxSteps) throw new Error(`no result after ${maxSteps} steps (raise --max-steps?)`);
    steps++;
    const viaTyped = mode === 'typed' || (mode === 'mixed' && steps % 2 === 0);
    const name = viaTyped ? 'resume-step' : 'run-step';
    let r;
    try {
      r = viaTyped ? mod.resumeStep(ctxId, input, state, typed) : mod.runStep(ctxId, input, state, resume);
    } catch (e) {
      // A Wasm trap escaping the step: the contract wants faults as trap(message), never this.
      throw new Error(`step ${steps}: ${name} threw instead of returning a step-result: ${e.message ?? e}`);
    }
    if (r.tag === 'done') return { status: 'done', output: r.val, messages, steps };
    if (r.tag === 'trap') return { status: 'trap', trap: r.val, messages, steps };
    if (r.tag !== 'pending') throw new Error(`step ${steps}: unknown step-result case '${r.tag}'`);

    const { effect } = r.val;
    // The host keeps its own copy: the state must be plain bytes, independent of the guest's memory.
    state = Uint8Array.from(r.val.state);
    resume = undefined;
    typed = { tag: 'none' };
    switch (effect.tag) {
      case 'ctx-get-i64':
        if (ctx.has(effect.val)) {
          resume = `{"i64":${ctx.get(effect.val)}}`;
          typed = { tag: 'i64', val: ctx.get(effect.val) };
        } else {
          resume = JSON.stringify({ error: `context key '${effect.val}' is not set` });
          typed = { tag: 'json', val: resume };
        }
        break;
      case 'ctx-set-i64':
        ctx.set(effect.val.key, effect.val.value);
        break;
      case 'msg-send': {
        let payload;
        try {
          payload = JSON.parse(effect.val.payload);
        } catch (e) {
          throw new Error(`step ${steps}: msg-send on '${effect.val.topic}' has a payload that is not JSON text: ${JSON.stringify(effect.val.payload)}`);
        }
        messages.push({ topic: effect.val.topic, payload });
        break;
      }
      case 'sleep-ms':
        // A real timer, so that the pending state really outlives the event-loop turn.
        await sleep(Number(effect.val));
        break;
      case 'yield':
        break;
      default:
        throw new Error(`step ${steps}: effect '${effect.tag}' is not one this test performs (${JSON.stringify(effect, (k, v) => (typeof v === 'bigint' ? String(v) : v))})`);
    }
  }
}

const show = (v) => JSON.stringify(v);
const ctxObject = (ctx) => Object.fromEntries([...ctx].map(([k, v]) => [k, String(v)]));

async function main() {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`${TAG}: ${e.message}\n${usageText()}`);
      return 2;
    }
    throw e;
  }
  const name = path.basename(args.coreWasm);
  const api = path.resolve(args.npmDir, 'node_modules', '@bytecodealliance', 'jco', 'dist', 'api.js');
  if (!existsSync(api)) {
    console.error(`${TAG}: FAIL: jco not found under '${args.npmDir}': run scripts/npm-deps.sh DIR and configure with -DWFP_NPM_DIR=DIR`);
    return 2;
  }

  let binary, witSource, nativeReport = null;
  try {
    binary = readOrUsage(args.coreWasm);
    witSource = readOrUsage(args.witFile, 'utf8');
    if (args.nativeReport) {
      const text = readOrUsage(args.nativeReport, 'utf8');
      try { nativeReport = JSON.parse(text); } catch (e) { throw new UsageError(`${args.nativeReport} is not a wfp-host --report JSON object: ${e.message}`); }
    }
  } catch (e) {
    if (e instanceof UsageError) { console.error(`${TAG}: ${e.message}`); return 2; }
    throw e;
  }

  const jco = await import(pathToFileURL(api).href);
  const initialCtx = new Map(args.ctx);
  let result;
  try {
    const { transpiled } = await buildComponent(jco, binary, witSource);
    const mod = await importTranspiled(transpiled.files);
    if (typeof mod.runStep !== 'function') throw new Error('the transpiled component exports no runStep function');
    if (typeof mod.resumeStep !== 'function') throw new Error('the transpiled component exports no resumeStep function');
    const runs = {};
    for (const mode of ['plain', 'typed', 'mixed']) {
      const ctx = new Map(initialCtx);
      runs[mode] = { ...(await runInvocation(mod, mode, args.input, ctx, args.maxSteps)), ctx: ctxObject(ctx) };
    }
    for (const mode of ['typed', 'mixed']) {
      if (!isDeepStrictEqual(runs[mode], runs.plain)) {
        throw new Error(`through resume-step (${mode}) the invocation ended as ${show(runs[mode])}, through run-step as ${show(runs.plain)}`);
      }
    }
    result = runs.plain;
  } catch (e) {
    console.error(`${TAG}: FAIL: ${name}: ${e.message ?? e}`);
    return 1;
  }

  const problems = [];
  if (result.status === 'trap') {
    problems.push(`the invocation trapped after ${result.steps} steps: ${result.trap}`);
  } else {
    let output;
    try {
      output = JSON.parse(result.output);
    } catch (e) {
      problems.push(`the output is not JSON text: ${show(result.output)}`);
    }
    if (output !== undefined && !isDeepStrictEqual(output, args.expectedOutput)) {
      problems.push(`output ${show(output)}, expected ${show(args.expectedOutput)}`);
    }
    if (!isDeepStrictEqual(result.messages, args.expectedMessages)) {
      problems.push(`messages ${show(result.messages)}, expected ${show(args.expectedMessages)}`);
    }
    if (nativeReport) {
      // The native path (wfp-host on the .so from the same program) must agree on everything observable.
      if (nativeReport.status !== 'done') problems.push(`native: wfp-host ended with status ${show(nativeReport.status)}: ${show(nativeReport.trap)}`);
      if (output !== undefined && !isDeepStrictEqual(output, nativeReport.output)) problems.push(`output ${show(output)}, native wfp-host printed ${show(nativeReport.output)}`);
      if (!isDeepStrictEqual(result.messages, nativeReport.messages)) problems.push(`messages ${show(result.messages)}, native wfp-host sent ${show(nativeReport.messages)}`);
      const nativeCtx = Object.fromEntries(Object.entries(nativeReport.ctx ?? {}).map(([k, v]) => [k, String(v)]));
      if (!isDeepStrictEqual(result.ctx, nativeCtx)) problems.push(`final context ${show(result.ctx)}, native wfp-host has ${show(nativeCtx)}`);
      if (result.steps !== nativeReport.steps) problems.push(`${result.steps} steps, native wfp-host took ${show(nativeReport.steps)}`);
    }
  }
  if (problems.length) {
    for (const p of problems) console.error(`${TAG}: FAIL: ${name}: ${p}`);
    return 1;
  }
  const initial = ctxObject(initialCtx);
  const changed = Object.keys(result.ctx).filter((k) => initial[k] !== result.ctx[k]).length;
  console.log(
    `${TAG}: OK: ${name} as a component (run-step, resume-step and both alternating): done in ${result.steps} steps, output ${result.output}, ` +
    `${result.messages.length} message(s), ${changed} context key(s) changed` +
    (nativeReport ? ', same as native wfp-host' : ''),
  );
  return 0;
}

main().then(
  (code) => { process.exitCode = code; },
  (e) => { console.error(`${TAG}: error: ${e.stack ?? e}`); process.exitCode = 2; },
);
