// wfp-run.mjs: the host for the JavaScript modules of wfp-aot --emit-js.
// It runs one invocation of a program in Node and performs its effects as
// wfp-host does: context, messages, sleep, resource instances (self), and
// db_query with its fan-out on SQLite through the sql.js package (found in
// NODE_PATH or next to this file; without it db_query traps). No fuel or
// step limits, checkpoints or batches: wfp-host has those.
//
//   node wfp-run.mjs prog.mjs [--ctx K=V] [--input JSON] [--fn NAME]
//        [--arg NAME=VALUE] [--new RES[:p=v,...]] [--db PATH] [--report]
//
// It prints the output (or with --report the object wfp-host --report
// prints: status, output, trap, steps, fuel null, ctx, messages,
// properties) and exits 0, 1 on a trap, 2 on a usage error.
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import path from "node:path";

class Usage extends Error {}

/* ---- SQLite, when sql.js is at hand ---- */
async function openDb(file) {
  let initSqlJs;
  const require = createRequire(import.meta.url);
  try {
    initSqlJs = require("sql.js");
  } catch {
    return null;
  }
  const SQL = await initSqlJs();
  const data = file && existsSync(file) ? readFileSync(file) : undefined;
  return { db: new SQL.Database(data), file };
}

function saveDb(d) {
  if (d && d.file) writeFileSync(d.file, Buffer.from(d.db.export()));
}

/* a SQL value as JSON text, as wfp-host writes rows */
function sqlJson(v) {
  if (v === null || v === undefined) return "null";
  if (typeof v === "bigint") return v.toString();
  if (typeof v === "number") {
    if (!Number.isFinite(v)) return "null";
    for (let p = 15; p <= 17; p++) {
      const t = v.toPrecision(p);
      if (Number(t) === v) return cFormat(t);
    }
    return String(v);
  }
  if (typeof v === "string") return JSON.stringify(v);
  return JSON.stringify(Buffer.from(v).toString("base64"));
}

/* toPrecision text as C's %.*g writes it (no trailing zeros, e+XX) */
function cFormat(t) {
  let [m, e] = t.split("e");
  if (m.includes(".")) m = m.replace(/0+$/, "").replace(/\.$/, "");
  if (e === undefined) return m;
  const n = Number(e);
  return `${m}e${n < 0 ? "-" : "+"}${String(Math.abs(n)).padStart(2, "0")}`;
}

/* a value bound to a ? parameter */
function sqlParam(rt, v) {
  if (typeof v === "bigint" || typeof v === "string") return v;
  const t = v.text;
  if (t === "null") return null;
  if (t === "true") return 1n;
  if (t === "false") return 0n;
  if (t[0] === '"') return JSON.parse(t);
  if (t[0] === "{" || t[0] === "[") return t;
  return rt.intText(t) ? BigInt(t) : Number(t);
}

/* ---- one invocation ---- */
export async function run(mod, opts) {
  const prog = mod.program;
  const rt = prog.runtime;
  const env = {
    ctx: new Map(opts.ctx || []),
    messages: [],
    props: null,
    steps: 0,
    db: null,
  };
  const byName = (n) => prog.functions.find((f) => f.name === n) || prog.functions.find((f) => f.id === n);
  let input = opts.input || "{}";
  const inObj = JSON.parse(input);
  const fname = inObj.fn !== undefined ? inObj.fn : prog.entry;
  if (opts.instance) {
    const r = prog.resources.find((x) => x.name === opts.instance.resource);
    if (!r) throw new Usage(`--new: no resource '${opts.instance.resource}'`);
    env.props = new Map(r.properties.map(([n, t]) => [n, t === "i64" ? "0" : t === "str" ? '""' : "null"]));
    for (const [k, v] of opts.instance.props) {
      const p = r.properties.find(([n]) => n === k);
      if (!p) throw new Usage(`--new: resource '${r.name}' has no property '${k}'`);
      env.props.set(k, p[1] === "str" ? JSON.stringify(v) : v);
    }
    env.resource = r;
  }
  const propType = (k) => env.resource.properties.find(([n]) => n === k)[1];
  const fromProp = (k) => {
    const t = env.props.get(k), ty = propType(k);
    return ty === "i64" ? BigInt(t) : ty === "str" ? JSON.parse(t) : rt.J(t);
  };

  /* runs a generator to its end, performing its effects */
  async function drive(gen, inputText) {
    const saved = rt.swap({ input: rt.J(compact(inputText)) });
    try {
      let r = gen.next();
      for (;;) {
        env.steps++;
        if (r.done) return r.value;
        rt.swap({ input: rt.J(compact(inputText)) });
        const v = await perform(r.value);
        rt.swap({ input: rt.J(compact(inputText)) });
        r = gen.next(v);
      }
    } finally {
      rt.swap(saved);
    }
  }

  async function perform(e) {
    switch (e.effect) {
      case "ctx_get_i64":
        if (!env.ctx.has(e.key)) throw new rt.Trap(`context key '${e.key}' is not set`);
        return env.ctx.get(e.key);
      case "ctx_set_i64":
        env.ctx.set(e.key, e.value);
        return undefined;
      case "msg_send":
        env.messages.push({ topic: e.topic, payload: rt.tojson(e.payload).text });
        return undefined;
      case "sleep_ms":
        if (e.ms > 0n) await new Promise((ok) => setTimeout(ok, Number(e.ms)));
        return undefined;
      case "self_get":
        return fromProp(e.property);
      case "self_set":
        env.props.set(e.property, rt.tojson(e.value).text);
        return undefined;
      case "db_query":
        return dbQuery(e);
      default:
        throw new rt.Trap(`unknown effect ${e.effect}`);
    }
  }

  async function dbQuery(e) {
    if (!env.db) env.db = await openDb(opts.db);
    if (!env.db) throw new rt.Trap("db_query: this host has no SQLite (install the sql.js package)");
    const db = env.db.db;
    let rows = [];
    let st;
    try {
      st = db.prepare(e.sql);
    } catch (err) {
      throw new rt.Trap(`db_query: ${err.message}`);
    }
    try {
      const params = (e.params || []).map((v) => sqlParam(rt, v));
      const want = st.getParameterCount ? st.getParameterCount() : params.length;
      if (params.length !== want)
        throw new rt.Trap(`db_query: ${params.length} parameter${params.length === 1 ? "" : "s"} given, the statement has ${want}`);
      if (params.length) st.bind(params);
      while (st.step()) {
        const names = st.getColumnNames();
        const vals = st.get(null, { useBigInt: true });
        rows.push("{" + names.map((n, i) => JSON.stringify(n) + ":" + sqlJson(vals[i])).join(",") + "}");
      }
    } catch (err) {
      if (err instanceof rt.Trap) throw err;
      throw new rt.Trap(`db_query: ${err.message}`);
    } finally {
      st.free();
    }
    saveDb(env.db);
    if (!e.each) return rt.J("[" + rows.join(",") + "]");
    const out = [];
    for (let i = 0; i < rows.length; i++) {
      const f = e.each;
      const rowInput = JSON.stringify({ fn: f.id, args: [] }).replace("[]", "[" + [...f.args.map((a) => rt.tojson(a).text), rows[i]].join(",") + "]");
      try {
        const v = await drive(f.f(...f.args, rt.J(rows[i])), rowInput);
        out.push(v instanceof rt.Json ? v.text : rt.tojson(v).text);
      } catch (err) {
        if (err instanceof rt.Trap) throw new rt.Trap(`db_query each, row ${i + 1}: ${err.message}`);
        throw err;
      }
    }
    return rt.J("[" + out.join(",") + "]");
  }

  let status = "done", output = null, trap = null;
  try {
    if (fname === null || fname === undefined)
      throw new rt.Trap("no function to run: the input names none and the program has no entry function");
    const f = byName(fname);
    if (!f) throw new rt.Trap(`no function '${fname}' in this program`);
    const args = bindArgs(rt, f, inObj.args);
    const gen = f.run(...args);
    const v = await drive(gen, input);
    output = rt.output(v);
  } catch (err) {
    if (err instanceof rt.Trap) {
      status = "trap";
      trap = err.message;
    } else if (err instanceof RangeError && /call stack/i.test(err.message)) {
      status = "trap";
      trap = "call stack exhausted";
    } else {
      throw err;
    }
  }
  return { status, output, trap, steps: env.steps, env };
}

/* JSON text without white space outside strings (numbers as written) */
function compact(t) {
  let r = "", s = false;
  for (let i = 0; i < t.length; i++) {
    const c = t[i];
    if (s) {
      r += c;
      if (c === "\\") r += t[++i];
      else if (c === '"') s = false;
    } else if (c === '"') {
      s = true;
      r += c;
    } else if (!" \t\n\r".includes(c)) r += c;
  }
  return r;
}

/* the invoked function's arguments from the input's args (by name or position) */
function bindArgs(rt, f, args) {
  return f.params.map(([n, t], i) => {
    let v = Array.isArray(args) ? args[i] : args ? args[n] : undefined;
    if (v === undefined) throw new rt.Trap(`argument '${n}' is missing`);
    const text = JSON.stringify(v);
    if (t === "i64") {
      if (!(typeof v === "number" || typeof v === "bigint") || !rt.intText(String(v)))
        throw new rt.Trap(`argument '${n}' must be an integer in the i64 range`);
      return BigInt(v);
    }
    if (t === "str") {
      if (typeof v !== "string") throw new rt.Trap(`argument '${n}' must be a string`);
      return v;
    }
    if (t === "fn") throw new rt.Trap(`argument '${n}' is a function, which an input cannot give`);
    return rt.J(compact(text));
  });
}

/* ---- the command ---- */
function parseArgs(argv) {
  const o = { ctx: [], args: {}, report: false };
  let file = null;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new Usage(`option '${a}' needs a value`);
      return argv[++i];
    };
    if (a === "--ctx") {
      const v = val(), eq = v.indexOf("=");
      if (eq <= 0 || !/^-?(0|[1-9][0-9]*)$/.test(v.slice(eq + 1))) throw new Usage(`--ctx ${v}: KEY=I64 expected`);
      o.ctx.push([v.slice(0, eq), BigInt(v.slice(eq + 1))]);
    } else if (a === "--input") o.input = val();
    else if (a === "--fn") o.fn = val();
    else if (a === "--arg") {
      const v = val(), eq = v.indexOf("=");
      if (eq <= 0) throw new Usage(`--arg ${v}: NAME=VALUE expected`);
      o.args[v.slice(0, eq)] = v.slice(eq + 1);
    } else if (a === "--new") {
      const v = val(), c = v.indexOf(":");
      const props = c < 0 ? [] : v.slice(c + 1).split(",").filter((x) => x).map((kv) => {
        const eq = kv.indexOf("=");
        if (eq <= 0) throw new Usage(`--new ${v}: RESOURCE[:prop=value,...] expected`);
        return [kv.slice(0, eq), kv.slice(eq + 1)];
      });
      o.instance = { resource: c < 0 ? v : v.slice(0, c), props };
    } else if (a === "--db") o.db = val();
    else if (a === "--report") o.report = true;
    else if (a.startsWith("-")) throw new Usage(`unknown option '${a}'`);
    else if (file) throw new Usage(`more than one module given ('${a}')`);
    else file = a;
  }
  if (!file) throw new Usage("no module given");
  return [file, o];
}

async function main() {
  let file, o;
  try {
    [file, o] = parseArgs(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof Usage)) throw err;
    process.stderr.write(`wfp-run: ${err.message}\nusage: node wfp-run.mjs prog.mjs [options]\n`);
    return 2;
  }
  const mod = await import(pathToFileURL(path.resolve(file)).href);
  const prog = mod.program;
  const inObj = JSON.parse(o.input || "{}");
  if (o.fn) inObj.fn = o.fn;
  const fname = inObj.fn !== undefined ? inObj.fn : prog.entry;
  const f = prog.functions.find((x) => x.name === fname) || prog.functions.find((x) => x.id === fname);
  if (Object.keys(o.args).length) {
    if (!f) {
      process.stderr.write(`wfp-run: --arg: no function '${fname}'\n`);
      return 2;
    }
    inObj.args = inObj.args && !Array.isArray(inObj.args) ? inObj.args : {};
    for (const [k, v] of Object.entries(o.args)) {
      const p = f.params.find(([n]) => n === k);
      if (!p) {
        process.stderr.write(`wfp-run: --arg ${k}: '${fname}' has no parameter '${k}'\n`);
        return 2;
      }
      try {
        inObj.args[k] = p[1] === "i64" ? JSON.parse(v) : p[1] === "str" ? v : JSON.parse(v);
      } catch {
        process.stderr.write(`wfp-run: --arg ${k}: '${v}' does not convert to ${p[1]}\n`);
        return 2;
      }
    }
  }
  const inputText = o.fn || Object.keys(o.args).length ? JSON.stringify(inObj) : o.input || "{}";
  let r;
  try {
    r = await run(mod, { ctx: o.ctx, input: inputText, instance: o.instance, db: o.db });
  } catch (err) {
    if (!(err instanceof Usage)) throw err;
    process.stderr.write(`wfp-run: ${err.message}\n`);
    return 2;
  }
  if (o.report) {
    const ctx = [...r.env.ctx.entries()].map(([k, v]) => JSON.stringify(k) + ":" + v.toString()).join(",");
    const msgs = r.env.messages.map((m) => `{"topic":${JSON.stringify(m.topic)},"payload":${m.payload}}`).join(",");
    const props = r.env.props ? "{" + [...r.env.props.entries()].map(([k, v]) => JSON.stringify(k) + ":" + v).join(",") + "}" : "null";
    process.stdout.write(`{"status":${JSON.stringify(r.status)},"output":${r.output === null ? "null" : r.output},"trap":${r.trap === null ? "null" : JSON.stringify(r.trap)},"steps":${r.steps},"fuel":null,"ctx":{${ctx}},"messages":[${msgs}],"properties":${props}}\n`);
  } else if (r.status === "done") {
    process.stdout.write(r.output + "\n");
  } else {
    process.stderr.write(`wfp-run: trap: ${r.trap}\n`);
  }
  return r.status === "done" ? 0 : 1;
}

if (import.meta.url === pathToFileURL(process.argv[1] || "").href) {
  main().then((code) => process.exit(code));
}
