/* ---- wfp's values in JavaScript (the same in every module wfp-aot writes) ----
** i64 is a BigInt kept in the signed 64-bit range; str a string; json a Json
** holding compact JSON text (numbers as written, keys in order); fn an Fn
** (a function of F, its stable ID and its captured values). A runtime fault
** throws a Trap with the message the native module gives. */
const wfp = (() => {
  class Trap extends Error {
    constructor(message) { super(message); this.name = "Trap"; }
  }
  class Json {
    constructor(text) { this.text = text; }
  }
  class Fn {
    constructor(f, id, args) { this.f = f; this.id = id; this.args = args; }
  }
  const MIN = -(1n << 63n);
  const i64 = (x) => BigInt.asIntN(64, x);
  const b = (c) => (c ? 1n : 0n);
  const div = (x, y) => {
    if (y === 0n) throw new Trap("integer division by zero");
    if (x === MIN && y === -1n) throw new Trap("integer overflow");
    return x / y;
  };
  const rem = (x, y) => {
    if (y === 0n) throw new Trap("integer division by zero");
    return x % y;
  };
  const shl = (x, y) => i64(x << (y & 63n));
  const shr = (x, y) => x >> (y & 63n);
  const J = (text) => new Json(text);
  /* a value as JSON: an i64 a number, a str a JSON string */
  const tojson = (v) =>
    typeof v === "bigint" ? J(v.toString()) : typeof v === "string" ? J(JSON.stringify(v)) : v;
  const obj = (pairs) => J("{" + pairs.map(([k, v]) => JSON.stringify(k) + ":" + tojson(v).text).join(",") + "}");
  const arr = (items) => J("[" + items.map((v) => tojson(v).text).join(",") + "]");
  const text = (v) => (typeof v === "bigint" ? v.toString() : typeof v === "string" ? v : v.text);
  const concat = (...parts) => parts.map(text).join("");
  const utf8 = new TextEncoder();

  /* ---- reading JSON text ---- */
  const ws = (s, i) => {
    while (i < s.length && " \t\n\r".includes(s[i])) i++;
    return i;
  };
  /* the end of the value that starts at i */
  const skip = (s, i) => {
    i = ws(s, i);
    const c = s[i];
    if (c === '"') {
      for (i++; s[i] !== '"'; i++) if (s[i] === "\\") i++;
      return i + 1;
    }
    if (c === "{" || c === "[") {
      const close = c === "{" ? "}" : "]";
      i = ws(s, i + 1);
      if (s[i] === close) return i + 1;
      for (;;) {
        if (c === "{") i = ws(s, skip(s, i)) + 1; /* the key and ':' */
        i = ws(s, skip(s, i));
        if (s[i] === ",") { i = ws(s, i + 1); continue; }
        return i + 1;
      }
    }
    while (i < s.length && !",]} \t\n\r".includes(s[i])) i++;
    return i;
  };
  const kind = (c) =>
    c === "{" ? "an object" : c === "[" ? "an array" : c === '"' ? "a string"
      : c === "t" || c === "f" ? "a boolean" : c === "n" ? "null" : "a number";
  const pathText = (path, upto) => {
    let r = "$";
    for (const k of path.slice(0, upto)) {
      if (typeof k === "number") r += "[" + k + "]";
      else if (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(k)) r += "." + k;
      else r += "[" + JSON.stringify(k) + "]";
    }
    return r;
  };
  /* the start of the value at path in s */
  const walk = (op, s, path) => {
    let i = ws(s, 0);
    for (let n = 0; n < path.length; n++) {
      const k = path[n];
      if (typeof k === "number") {
        if (s[i] !== "[") throw new Trap(`${op}: ${pathText(path, n)} is ${kind(s[i])}, not an array`);
        i = ws(s, i + 1);
        let found = -1;
        for (let at = 0; s[i] !== "]"; at++) {
          if (at === k) { found = i; break; }
          i = ws(s, skip(s, i));
          if (s[i] === ",") i = ws(s, i + 1);
        }
        if (found < 0) throw new Trap(`${op}: ${pathText(path, n + 1)}: not found`);
        i = found;
      } else {
        if (s[i] !== "{") throw new Trap(`${op}: ${pathText(path, n)} is ${kind(s[i])}, not an object`);
        i = ws(s, i + 1);
        let found = -1;
        while (s[i] !== "}") {
          const ke = skip(s, i);
          const key = JSON.parse(s.slice(i, ke));
          i = ws(s, ws(s, ke) + 1);
          if (key === k && found < 0) found = i;
          i = ws(s, skip(s, i));
          if (s[i] === ",") i = ws(s, i + 1);
        }
        if (found < 0) throw new Trap(`${op}: ${pathText(path, n + 1)}: not found`);
        i = found;
      }
    }
    return i;
  };
  const get_json = (j, path) => {
    const i = walk("get_json", j.text, path);
    return J(j.text.slice(i, skip(j.text, i)).trim());
  };
  const get_str = (j, path) => {
    const i = walk("get_str", j.text, path);
    if (j.text[i] !== '"') throw new Trap(`get_str: ${pathText(path, path.length)} is ${kind(j.text[i])}, not a string`);
    return JSON.parse(j.text.slice(i, skip(j.text, i)));
  };
  const intText = (t) => /^-?(0|[1-9][0-9]*)$/.test(t) && BigInt(t) === i64(BigInt(t));
  const get_i64 = (j, path) => {
    const i = walk("get_i64", j.text, path);
    const c = j.text[i];
    if (!(c === "-" || (c >= "0" && c <= "9")))
      throw new Trap(`get_i64: ${pathText(path, path.length)} is ${kind(c)}, not a number`);
    const t = j.text.slice(i, skip(j.text, i));
    if (!intText(t)) throw new Trap(`get_i64: ${pathText(path, path.length)} is not an integer in the i64 range`);
    return BigInt(t);
  };
  const len = (v) => {
    if (typeof v === "string") return BigInt(utf8.encode(v).length);
    const s = v.text;
    let i = ws(s, 0);
    if (s[i] !== "[") throw new Trap(`len: the JSON value is ${i < s.length ? kind(s[i]) : "empty"}, not an array`);
    i = ws(s, i + 1);
    let n = 0n;
    while (s[i] !== "]") {
      n++;
      i = ws(s, skip(s, i));
      if (s[i] === ",") i = ws(s, i + 1);
    }
    return n;
  };

  /* ---- invocations ---- */
  let current = { input: J("{}") };
  const input = () => current.input;
  const fn = (f, id, ...args) => new Fn(f, id, args);
  function* call(v, args) {
    return yield* v.f(...v.args, ...args);
  }
  /* a function value as an output: {"fn": ID, "args": [captures]} */
  const fnjson = (v) => J(`{"fn":${JSON.stringify(v.id)},"args":[${v.args.map((a) => (a instanceof Fn ? fnjson(a) : tojson(a)).text).join(",")}]}`);
  /* an invocation's output for its return value */
  const output = (v) =>
    v === undefined ? '{"result":null}'
      : v instanceof Json ? v.text
        : v instanceof Fn ? `{"result":${fnjson(v).text}}` : `{"result":${tojson(v).text}}`;
  const swap = (c) => {
    const old = current;
    current = c;
    return old;
  };
  return { Trap, Json, Fn, i64, b, div, rem, shl, shr, J, tojson, obj, arr, concat, len,
           get_json, get_str, get_i64, intText, input, fn, call, output, swap };
})();
