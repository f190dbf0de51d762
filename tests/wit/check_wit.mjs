// Checks wit/function.wit with an independent WIT parser: the one inside jco
// (the Bytecode Alliance's Component Model toolchain, i.e. wasm-tools'
// wit-parser and wit-component compiled to wasm).
//
//   node tests/wit/check_wit.mjs NPM_DIR path/to/function.wit
//
// NPM_DIR is the directory scripts/npm-deps.sh installed jco into (the one
// holding node_modules/). Steps:
//   1. parse the WIT and embed world `function` into a dummy core module
//      (componentEmbed), then turn that module into a component
//      (componentNew): this validates the WIT and the canonical-ABI lowering;
//   2. print the component's world back as WIT (componentWit) and check the
//      `run-step` and `resume-step` exports;
//   3. print the component as WAT and rebuild every type of interface
//      `types` from it, then compare them with what the contract says;
//   4. check the core signatures the dummy module has for both, which
//      are the ones the compiled core module must export.
// Exit 0 with a one-line summary if all holds, 1 with the reasons otherwise,
// 2 on a usage or environment error.

import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const PACKAGE = 'wfp:function';
const VERSION = '0.1.0';
const IFACE = `${PACKAGE}/types@${VERSION}`;
const WORLD = 'function';

const RUN_STEP =
  'run-step: func(ctx-id: u64, input: string, state: list<u8>, ' +
  'resume: option<string>) -> step-result';

// Core (canonical ABI) signature of the `run-step` export.
const RUN_STEP_CORE = 'func (param i64 i32 i32 i32 i32 i32 i32 i32) (result i32)';

// The additional export with the resume value typed; its core signature
// flattens resume-value to (discriminant, s64 and the string's pointer
// joined in an i64, the string's length).
const RESUME_STEP =
  'resume-step: func(ctx-id: u64, input: string, state: list<u8>, ' +
  'resume: resume-value) -> step-result';
const RESUME_STEP_CORE = 'func (param i64 i32 i32 i32 i32 i32 i64 i32) (result i32)';

// Every type of interface `types`, in WIT syntax, as rebuilt from the
// component. Case and field order matter: they fix discriminants and layout.
const EXPECTED_TYPES = {
  'ctx-set': 'record { key: string, value: s64 }',
  'message': 'record { topic: string, payload: string }',
  'query': 'record { sql: string, params: string, each: option<string> }',
  'property-set': 'record { property: string, value: string }',
  'effect':
    'variant { ctx-get-i64(string), ctx-set-i64(ctx-set), msg-send(message), ' +
    'sleep-ms(u64), db-query(query), self-get(string), ' +
    'self-set(property-set), yield }',
  'pending-step': 'record { effect: effect, state: list<u8> }',
  'resume-value': 'variant { none, i64(s64), json(string) }',
  'step-result': 'variant { done(string), pending(pending-step), trap(string) }',
};

function usage(msg) {
  if (msg) console.error(`check_wit: ${msg}`);
  console.error('usage: node check_wit.mjs NPM_DIR FUNCTION_WIT');
  process.exit(2);
}

// ---------------------------------------------------------------- WAT reader

// Tokens: '(' ')' strings atoms; `(; ... ;)` and `;; ...` comments dropped.
function tokenize(text) {
  const toks = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '(' && text[i + 1] === ';') {
      let depth = 1;
      i += 2;
      while (i < text.length && depth > 0) {
        if (text[i] === '(' && text[i + 1] === ';') { depth++; i += 2; }
        else if (text[i] === ';' && text[i + 1] === ')') { depth--; i += 2; }
        else i++;
      }
    } else if (c === ';' && text[i + 1] === ';') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '(' || c === ')') {
      toks.push(c);
      i++;
    } else if (/\s/.test(c)) {
      i++;
    } else if (c === '"' || (c === '$' && text[i + 1] === '"')) {
      let j = c === '$' ? i + 2 : i + 1;
      let s = '';
      while (j < text.length && text[j] !== '"') {
        if (text[j] === '\\') { s += text[j + 1]; j += 2; } else s += text[j++];
      }
      toks.push({ str: s, id: c === '$' });
      i = j + 1;
    } else {
      let j = i;
      while (j < text.length && !/[\s()"]/.test(text[j])) j++;
      toks.push(text.slice(i, j));
      i = j;
    }
  }
  return toks;
}

function parseSexp(text) {
  const toks = tokenize(text);
  let pos = 0;
  function node() {
    const t = toks[pos++];
    if (t !== '(') return t;
    const list = [];
    while (toks[pos] !== ')') {
      if (pos >= toks.length) throw new Error('unbalanced WAT');
      list.push(node());
    }
    pos++;
    return list;
  }
  return node();
}

const isList = (x) => Array.isArray(x);
const head = (x) => (isList(x) ? x[0] : undefined);
const strOf = (x) => (x && typeof x === 'object' && !isList(x) ? x.str : undefined);
const idOf = (x) => (typeof x === 'string' && x.startsWith('$') ? x : x && x.id ? '$' + x.str : undefined);

// Rebuild the types of the instance type of interface IFACE as WIT text.
function interfaceTypes(component) {
  // (import "wfp:function/types@0.1.0" (instance $x (type $ty)))
  const imp = component.find((f) => head(f) === 'import' && strOf(f[1]) === IFACE);
  if (!imp) return { error: `the component does not import interface ${IFACE}` };
  const instRef = imp[2].find((x) => head(x) === 'type');
  const tyId = instRef && idOf(instRef[1]);
  const tyDef = component.find((f) => head(f) === 'type' && idOf(f[1]) === tyId);
  const instance = tyDef && tyDef.find((x) => head(x) === 'instance');
  if (!instance) return { error: `no instance type found for ${IFACE}` };

  const space = []; // type index space of the instance type
  const exported = []; // [name, index]
  for (const decl of instance.slice(1)) {
    if (head(decl) === 'type') {
      space.push({ def: decl[decl.length - 1] });
    } else if (head(decl) === 'export') {
      const name = strOf(decl[1]);
      const t = decl[2];
      if (head(t) !== 'type') return { error: `${IFACE} exports a non-type '${name}'` };
      const eq = t[t.length - 1];
      if (head(eq) !== 'eq') return { error: `${IFACE}: type '${name}' is not a plain type (a resource?)` };
      space.push({ name, target: Number(eq[1]) });
      exported.push([name, space.length - 1]);
    } else {
      return { error: `${IFACE}: unexpected item '${head(decl)}' in the interface` };
    }
  }

  function ref(t) {
    if (typeof t === 'string' && /^\d+$/.test(t)) {
      const e = space[Number(t)];
      if (!e) return `<bad index ${t}>`;
      return e.name !== undefined ? e.name : show(e.def);
    }
    return show(t);
  }
  function show(d) {
    if (!isList(d)) return String(d);
    switch (d[0]) {
      case 'list': return `list<${ref(d[1])}>`;
      case 'option': return `option<${ref(d[1])}>`;
      case 'tuple': return `tuple<${d.slice(1).map(ref).join(', ')}>`;
      case 'result': {
        const parts = d.slice(1).map((x) => (isList(x) && (x[0] === 'error') ? `error ${ref(x[1])}` : ref(x)));
        return `result<${parts.join(', ')}>`;
      }
      case 'record':
        return `record { ${d.slice(1).map((f) => `${strOf(f[1])}: ${ref(f[2])}`).join(', ')} }`;
      case 'variant':
        return `variant { ${d.slice(1).map((c) => (c.length > 2 ? `${strOf(c[1])}(${ref(c[2])})` : strOf(c[1]))).join(', ')} }`;
      case 'enum':
        return `enum { ${d.slice(1).map(strOf).join(', ')} }`;
      case 'flags':
        return `flags { ${d.slice(1).map(strOf).join(', ')} }`;
      default:
        return `(${d.map((x) => (isList(x) ? show(x) : strOf(x) ?? String(x))).join(' ')})`;
    }
  }

  const types = {};
  for (const [name, idx] of exported) {
    const target = space[space[idx].target];
    types[name] = target ? (target.name !== undefined ? `type ${target.name}` : show(target.def)) : '<bad index>';
  }
  return { types };
}

// ---------------------------------------------------------------- main

async function main() {
  const [npmDir, witFile] = process.argv.slice(2);
  if (!npmDir || !witFile) usage();
  const api = path.resolve(npmDir, 'node_modules', '@bytecodealliance', 'jco', 'dist', 'api.js');
  if (!existsSync(api)) usage(`jco not found under ${npmDir} (run scripts/npm-deps.sh ${npmDir})`);
  let witSource;
  try {
    witSource = readFileSync(witFile, 'utf8');
  } catch (e) {
    usage(`cannot read ${witFile}: ${e.message}`);
  }
  const jco = await import(pathToFileURL(api).href);
  const jcoVersion = JSON.parse(readFileSync(path.join(path.dirname(api), '..', 'package.json'), 'utf8')).version;

  const problems = [];
  const fail = () => {
    console.error(`check_wit: FAIL: ${witFile}:`);
    for (const p of problems) console.error(`  - ${p}`);
    process.exit(1);
  };

  // 1. Parse, embed into a dummy core module, make a component.
  let embedded, component;
  try {
    embedded = await jco.componentEmbed({ dummy: true, witSource, world: WORLD });
  } catch (e) {
    problems.push(`jco rejects the WIT (world '${WORLD}'): ${e.message ?? e}`);
    fail();
  }
  try {
    component = await jco.componentNew(embedded);
  } catch (e) {
    problems.push(`jco cannot make a component of world '${WORLD}': ${e.message ?? e}`);
    fail();
  }

  // 2. The world, printed back as WIT.
  const worldWit = await jco.componentWit(component);
  const lines = worldWit.split('\n').map((l) => l.trim().replace(/\s+/g, ' ')).filter((l) => l && !l.startsWith('//'));
  const exports = lines.filter((l) => l.startsWith('export '));
  const imports = lines.filter((l) => l.startsWith('import '));
  const uses = lines.filter((l) => l.startsWith('use '));
  const wantExports = [`export ${RUN_STEP};`, `export ${RESUME_STEP};`];
  if (exports.length !== 2 || exports[0] !== wantExports[0] || exports[1] !== wantExports[1]) {
    problems.push(`world '${WORLD}' must export exactly\n      ${wantExports.join('\n      ')}\n    it exports:\n      ${exports.join('\n      ') || '(nothing)'}`);
  }
  if (imports.length !== 1 || imports[0] !== `import ${IFACE};`) {
    problems.push(`world '${WORLD}' must depend on interface ${IFACE} only (package ${PACKAGE}@${VERSION}); it has: ${imports.join(' ') || '(nothing)'}`);
  }
  if (!uses.includes(`use ${IFACE}.{step-result, resume-value};`)) {
    problems.push(`world '${WORLD}' must take step-result and resume-value from ${IFACE}; it has: ${uses.join(' ') || '(no use)'}`);
  }

  // 3. The types of interface `types`.
  const watText = await jco.print(component);
  const tree = parseSexp(watText);
  const { types, error } = interfaceTypes(tree);
  if (error) {
    problems.push(error);
  } else {
    for (const [name, want] of Object.entries(EXPECTED_TYPES)) {
      if (!(name in types)) problems.push(`interface types: missing type '${name}' (want ${want})`);
      else if (types[name] !== want) problems.push(`interface types: '${name}' is\n      ${types[name]}\n    want\n      ${want}`);
    }
    for (const name of Object.keys(types)) {
      if (!(name in EXPECTED_TYPES)) problems.push(`interface types: unexpected type '${name}': ${types[name]}`);
    }
  }

  // 4. The core signatures of run-step and resume-step in the dummy module.
  const coreWat = await jco.print(embedded);
  const core = parseSexp(coreWat);
  const typeDefs = core.filter((f) => head(f) === 'type').map((f) => f[f.length - 1]);
  const funcs = core.filter((f) => head(f) === 'func' || (head(f) === 'import' && isList(f[3]) && head(f[3]) === 'func'));
  for (const [name, want] of [['run-step', RUN_STEP_CORE], ['resume-step', RESUME_STEP_CORE]]) {
    const exp = core.find((f) => head(f) === 'export' && new RegExp(`(^|\\|)${name}$`).test(strOf(f[1]) ?? ''));
    if (!exp) {
      problems.push(`the dummy core module has no ${name} export`);
      continue;
    }
    const fn = funcs[Number(exp[2][1])];
    const fdecl = head(fn) === 'import' ? fn[3] : fn;
    const tref = fdecl.find((x) => head(x) === 'type');
    const sig = tref ? typeDefs[Number(tref[1])] : undefined;
    const text = sig ? sig.map((x) => (isList(x) ? `(${x.join(' ')})` : x)).join(' ') : '?';
    if (text !== want) problems.push(`core signature of ${name} is (${text}), want (${want})`);
  }

  if (problems.length) fail();
  console.log(
    `check_wit: OK: ${path.basename(witFile)}: package ${PACKAGE}@${VERSION}, world ${WORLD} ` +
    `exports run-step (core ${RUN_STEP_CORE.replace('func ', '')}) and resume-step ` +
    `(core ${RESUME_STEP_CORE.replace('func ', '')}), ` +
    `${Object.keys(EXPECTED_TYPES).length} types as in the contract (jco ${jcoVersion})`,
  );
}

main().catch((e) => {
  console.error(`check_wit: error: ${e.stack ?? e}`);
  process.exit(2);
});
