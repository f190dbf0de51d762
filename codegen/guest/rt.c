/*
** rt.c: the guest runtime, compiled to wasm32 and merged by codegen into
** every module: the canonical-ABI exports (run-step, cabi_realloc,
** post-return), the per-step arena, strings and JSON text, the state bytes
** (write, validate, read), effects and resume values. It never touches the
** program's own code; codegen calls it (rt_*) and defines what it imports
** (module "wfp"). No libc: freestanding, bulk-memory for memcpy/memset.
**
** Values: str and json are pointers to {u32 len; u8 bytes[len]} in linear
** memory; json holds compact, validated JSON text. Everything a step
** allocates lives in one bump arena, reset by post-return.
*/
#include "wfp/abi.h" /* WFP_JSON_MAX_DEPTH; freestanding: types only */

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef int s32;
typedef unsigned long long u64;
typedef long long s64;
typedef unsigned long usize;

#define EXPORT(n) __attribute__((export_name(n)))
#define IMPORT(n) __attribute__((import_module("wfp"), import_name(n)))
#define memcpy __builtin_memcpy
#define memset __builtin_memset
#define NOINLINE __attribute__((noinline))

typedef struct str {
  u32 len;
  u8 b[];
} str;

/* unaligned little-endian access (Wasm is little-endian) */
static u32 rd32(const u8 *p) {
  u32 v;
  memcpy(&v, p, 4);
  return v;
}
static u64 rd64(const u8 *p) {
  u64 v;
  memcpy(&v, p, 8);
  return v;
}
static void wr32(u8 *p, u32 v) { memcpy(p, &v, 4); }
static void wr64(u8 *p, u64 v) { memcpy(p, &v, 8); }

/* ---- what codegen defines ---- */
IMPORT("heap_start") u32 wfp_gen_heap_start(void);
IMPORT("run") void wfp_gen_run(u32 fn, u32 resuming);
IMPORT("funcs") u32 wfp_gen_funcs(void);
IMPORT("layout") u32 wfp_gen_layout(void);
IMPORT("hash") u64 wfp_gen_hash(void);
IMPORT("entry") s32 wfp_gen_entry(void);
IMPORT("get_unwind") u32 wfp_gen_get_unwind(void);
IMPORT("set_unwind") void wfp_gen_set_unwind(u32 v);
IMPORT("set_resuming") void wfp_gen_set_resuming(u32 v);
IMPORT("get_fuel") s64 wfp_gen_get_fuel(void);
IMPORT("set_fuel") void wfp_gen_set_fuel(s64 v);

/* the contract's names (wfp/abi.h), short */
#define UNWIND_SUSPEND WFP_UNWIND_SUSPEND
#define UNWIND_TRAP WFP_UNWIND_TRAP
#define TY_I64 WFP_TY_I64
#define TY_STR WFP_TY_STR
#define TY_JSON WFP_TY_JSON
#define TY_FN WFP_TY_FN

/* ---- fatal errors: a wasm trap, with a message the host may read ---- */

static const char *fatal_msg;

EXPORT("wfp_fatal_message") const char *wfp_fatal_message(void) {
  return fatal_msg ? fatal_msg : "";
}

__attribute__((noreturn)) NOINLINE static void fatal(const char *msg) {
  fatal_msg = msg;
  __builtin_trap();
}

/* ---- the arena ---- */

static u32 heap_start, heap_top;

static void init(void) {
  if (!heap_start) {
    heap_start = (wfp_gen_heap_start() + 15u) & ~15u;
    heap_top = heap_start;
  }
}

static u32 mem_bytes(void) { return (u32)__builtin_wasm_memory_size(0) * 65536u; }

NOINLINE static void grow(u32 need_top) {
  u32 have = mem_bytes();
  if (need_top <= have)
    return;
  u32 pages = (need_top - have + 65535u) / 65536u;
  u32 cur = have / 65536u;
  /* grow at least by a quarter, so that a growing step does not grow often */
  u32 extra = cur / 4u;
  if (__builtin_wasm_memory_grow(0, pages + extra) == (usize)-1 &&
      __builtin_wasm_memory_grow(0, pages) == (usize)-1)
    fatal("out of memory");
}

static void *alloc(u32 n) {
  u32 p = (heap_top + 7u) & ~7u;
  u32 top = p + n;
  if (top < p)
    fatal("out of memory");
  if (top > mem_bytes())
    grow(top);
  heap_top = top;
  return (void *)(usize)p;
}

EXPORT("cabi_realloc")
void *cabi_realloc(void *old, u32 old_size, u32 align, u32 new_size) {
  init();
  if (align < 1u)
    align = 1u;
  u32 o = (u32)(usize)old;
  /* the last allocation grows in place */
  if (o && o + old_size == heap_top && (o & (align - 1u)) == 0) {
    u32 top = o + new_size;
    if (top > mem_bytes())
      grow(top);
    heap_top = top;
    return old;
  }
  u32 p = (heap_top + align - 1u) & ~(align - 1u);
  u32 top = p + new_size;
  if (top < p)
    fatal("out of memory");
  if (top > mem_bytes())
    grow(top);
  heap_top = top;
  if (o && old_size)
    memcpy((void *)(usize)p, old, old_size < new_size ? old_size : new_size);
  return (void *)(usize)p;
}

static str *str_new(const u8 *p, u32 n) {
  str *s = alloc(4u + n);
  s->len = n;
  if (n)
    memcpy(s->b, p, n);
  return s;
}

static str *cstr(const char *c) {
  u32 n = 0;
  while (c[n])
    n++;
  return str_new((const u8 *)c, n);
}

/* ---- string builder: [u32 len][bytes] grown at the arena's top ---- */

typedef struct sb {
  u32 len, cap;
  str *s;
} sb;

EXPORT("rt_sb_new") sb *rt_sb_new(void) {
  sb *b = alloc(sizeof *b);
  b->len = 0;
  b->cap = 64;
  b->s = alloc(4u + b->cap);
  return b;
}

static void sb_need(sb *b, u32 n) {
  if (b->len + n <= b->cap)
    return;
  u32 cap = b->cap * 2u;
  if (cap < b->len + n)
    cap = b->len + n;
  u32 end = (u32)(usize)b->s + 4u + b->cap;
  if (end == heap_top) { /* last allocation: extend in place */
    u32 top = (u32)(usize)b->s + 4u + cap;
    if (top > mem_bytes())
      grow(top);
    heap_top = top;
  } else {
    str *ns = alloc(4u + cap);
    memcpy(ns->b, b->s->b, b->len);
    b->s = ns;
  }
  b->cap = cap;
}

EXPORT("rt_sb_raw") void rt_sb_raw(sb *b, const u8 *p, u32 n) {
  sb_need(b, n);
  memcpy(b->s->b + b->len, p, n);
  b->len += n;
}

static void sb_c(sb *b, u8 c) {
  sb_need(b, 1);
  b->s->b[b->len++] = c;
}

static void sb_cs(sb *b, const char *c) {
  u32 n = 0;
  while (c[n])
    n++;
  rt_sb_raw(b, (const u8 *)c, n);
}

EXPORT("rt_sb_i64") void rt_sb_i64(sb *b, s64 v) {
  u8 tmp[24];
  u32 n = 0;
  u64 u = v < 0 ? 0ull - (u64)v : (u64)v;
  do {
    tmp[n++] = (u8)('0' + u % 10u);
    u /= 10u;
  } while (u);
  sb_need(b, n + 1u);
  if (v < 0)
    b->s->b[b->len++] = '-';
  while (n)
    b->s->b[b->len++] = tmp[--n];
}

EXPORT("rt_sb_str") void rt_sb_str(sb *b, const str *s) {
  rt_sb_raw(b, s->b, s->len);
}

/* JSON text is appended as is */
EXPORT("rt_sb_json") void rt_sb_json(sb *b, const str *s) {
  rt_sb_raw(b, s->b, s->len);
}

static void sb_jstr_raw(sb *b, const u8 *p, u32 n) {
  static const char hex[] = "0123456789abcdef";
  sb_need(b, n + 2u);
  b->s->b[b->len++] = '"';
  u32 run = 0;
  for (u32 i = 0; i < n; i++) {
    u8 c = p[i];
    if (c >= 0x20 && c != '"' && c != '\\')
      continue;
    rt_sb_raw(b, p + run, i - run);
    run = i + 1;
    switch (c) {
    case '"': sb_cs(b, "\\\""); break;
    case '\\': sb_cs(b, "\\\\"); break;
    case '\n': sb_cs(b, "\\n"); break;
    case '\r': sb_cs(b, "\\r"); break;
    case '\t': sb_cs(b, "\\t"); break;
    case '\b': sb_cs(b, "\\b"); break;
    case '\f': sb_cs(b, "\\f"); break;
    default: {
      u8 e[6] = {'\\', 'u', '0', '0', (u8)hex[c >> 4], (u8)hex[c & 15]};
      rt_sb_raw(b, e, 6);
    }
    }
  }
  rt_sb_raw(b, p + run, n - run);
  sb_c(b, '"');
}

/* a str appended as a JSON string literal */
EXPORT("rt_sb_jstr") void rt_sb_jstr(sb *b, const str *s) {
  sb_jstr_raw(b, s->b, s->len);
}

EXPORT("rt_sb_end") str *rt_sb_end(sb *b) {
  b->s->len = b->len;
  /* give back the unused tail when it is the arena's top */
  u32 end = (u32)(usize)b->s + 4u + b->cap;
  if (end == heap_top)
    heap_top = (u32)(usize)b->s + 4u + b->len;
  return b->s;
}

/* ---- strings ---- */

EXPORT("rt_str_eq") u32 rt_str_eq(const str *a, const str *b) {
  if (a == b)
    return 1;
  if (a->len != b->len)
    return 0;
  for (u32 i = 0; i < a->len; i++)
    if (a->b[i] != b->b[i])
      return 0;
  return 1;
}

/* ---- traps the program can see: unwinding, with a message ---- */

static str *trap_msg;

static void fail_str(str *m) {
  trap_msg = m;
  wfp_gen_set_unwind(UNWIND_TRAP);
}

static void fail(const char *m) { fail_str(cstr(m)); }

EXPORT("rt_trap") void rt_trap(const str *m) { fail_str((str *)m); }

/* ---- JSON text ----
** A value nests at most WFP_JSON_MAX_DEPTH arrays and objects (abi.h: one
** rule for compiler, guest and host): `1` is 0 deep, `[]` 1, `[[1]]` 2. A
** deeper value is never misread: the reader stops, sets json_too_deep, and
** the caller traps with deep_msg. */

#define STR_(x) #x
#define STR(x) STR_(x)

static int json_too_deep;

/* ": JSON nested deeper than the limit of 256 levels" */
static void fail_deep(const char *what) {
  sb *b = rt_sb_new();
  sb_cs(b, what);
  sb_cs(b, ": JSON nested deeper than the limit of " STR(WFP_JSON_MAX_DEPTH) " levels");
  fail_str(rt_sb_end(b));
}

static int is_ws(u8 c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Set when ws() skipped white space: json_compact_ok clears and reads it,
** so that checking a value is compact costs no second pass. */
static u32 ws_seen;

static u32 ws(const u8 *p, u32 i, u32 n) {
  u32 from = i;
  while (i < n && is_ws(p[i]))
    i++;
  ws_seen |= i != from;
  return i;
}

/* Does one of the eight bytes of w need a closer look inside a JSON string:
** '"', '\\', a control character or a byte of a multi-byte character?
** (The zero-byte test of each: it never misses one.) */
static int jstr_special8(u64 w) {
  const u64 ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
  u64 q = w ^ (ones * '"'), b = w ^ (ones * '\\');
  u64 t = ((q - ones) & ~q) | ((b - ones) & ~b) | ((w - ones * 0x20u) & ~w) | w;
  return (t & highs) != 0;
}

/* UTF-8 well-formedness of p[i..j) (no overlongs, surrogates, > U+10FFFF) */
static int utf8_ok(const u8 *p, u32 i, u32 j) {
  while (i < j) {
    /* ASCII eight bytes at a time: state bytes are checked on every resume */
    while (j - i >= 8u && !(rd64(p + i) & 0x8080808080808080ull))
      i += 8u;
    if (i >= j)
      break;
    u8 c = p[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    u32 len, cp;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1Fu;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0Fu;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07u;
    } else {
      return 0;
    }
    if (j - i < len)
      return 0;
    for (u32 k = 1; k < len; k++) {
      if ((p[i + k] & 0xC0) != 0x80)
        return 0;
      cp = (cp << 6) | (p[i + k] & 0x3Fu);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return 0;
    i += len;
  }
  return 1;
}

static int hexv(u8 c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* A JSON string starting at p[i] == '"': returns the index after it, or 0
** when malformed. With out, appends the decoded UTF-8. */
static u32 jstring(const u8 *p, u32 i, u32 n, sb *out) {
  i++;
  u32 run = i;
  while (i < n) {
    /* plain ASCII eight bytes at a time */
    while (n - i >= 8u && !jstr_special8(rd64(p + i)))
      i += 8u;
    if (i >= n)
      break;
    u8 c = p[i];
    if (c == '"') {
      if (!utf8_ok(p, run, i))
        return 0;
      if (out)
        rt_sb_raw(out, p + run, i - run);
      return i + 1;
    }
    if (c < 0x20)
      return 0;
    if (c != '\\') {
      i++;
      continue;
    }
    if (!utf8_ok(p, run, i))
      return 0;
    if (out)
      rt_sb_raw(out, p + run, i - run);
    if (i + 1 >= n)
      return 0;
    u8 e = p[i + 1];
    u32 cp;
    i += 2;
    switch (e) {
    case '"': cp = '"'; break;
    case '\\': cp = '\\'; break;
    case '/': cp = '/'; break;
    case 'b': cp = 8; break;
    case 'f': cp = 12; break;
    case 'n': cp = 10; break;
    case 'r': cp = 13; break;
    case 't': cp = 9; break;
    case 'u': {
      if (n - i < 4)
        return 0;
      s32 v = 0;
      for (u32 k = 0; k < 4; k++) {
        int h = hexv(p[i + k]);
        if (h < 0)
          return 0;
        v = v * 16 + h;
      }
      i += 4;
      cp = (u32)v;
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (n - i < 6 || p[i] != '\\' || p[i + 1] != 'u')
          return 0;
        s32 lo = 0;
        for (u32 k = 0; k < 4; k++) {
          int h = hexv(p[i + 2 + k]);
          if (h < 0)
            return 0;
          lo = lo * 16 + h;
        }
        if (lo < 0xDC00 || lo > 0xDFFF)
          return 0;
        i += 6;
        cp = 0x10000u + ((cp - 0xD800u) << 10) + ((u32)lo - 0xDC00u);
      } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
        return 0;
      }
      break;
    }
    default:
      return 0;
    }
    if (out) {
      u8 u[4];
      u32 k;
      if (cp < 0x80) {
        u[0] = (u8)cp;
        k = 1;
      } else if (cp < 0x800) {
        u[0] = (u8)(0xC0 | (cp >> 6));
        u[1] = (u8)(0x80 | (cp & 0x3F));
        k = 2;
      } else if (cp < 0x10000) {
        u[0] = (u8)(0xE0 | (cp >> 12));
        u[1] = (u8)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (u8)(0x80 | (cp & 0x3F));
        k = 3;
      } else {
        u[0] = (u8)(0xF0 | (cp >> 18));
        u[1] = (u8)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (u8)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (u8)(0x80 | (cp & 0x3F));
        k = 4;
      }
      rt_sb_raw(out, u, k);
    }
    run = i;
  }
  return 0;
}

/* A JSON number at p[i]: index after it, or 0. */
static u32 jnumber(const u8 *p, u32 i, u32 n) {
  if (i < n && p[i] == '-')
    i++;
  if (i >= n)
    return 0;
  if (p[i] == '0') {
    i++;
  } else if (p[i] >= '1' && p[i] <= '9') {
    while (i < n && p[i] >= '0' && p[i] <= '9')
      i++;
  } else {
    return 0;
  }
  if (i < n && p[i] == '.') {
    i++;
    if (i >= n || p[i] < '0' || p[i] > '9')
      return 0;
    while (i < n && p[i] >= '0' && p[i] <= '9')
      i++;
  }
  if (i < n && (p[i] == 'e' || p[i] == 'E')) {
    i++;
    if (i < n && (p[i] == '+' || p[i] == '-'))
      i++;
    if (i >= n || p[i] < '0' || p[i] > '9')
      return 0;
    while (i < n && p[i] >= '0' && p[i] <= '9')
      i++;
  }
  return i;
}

static int lit(const u8 *p, u32 i, u32 n, const char *w) {
  for (u32 k = 0; w[k]; k++)
    if (i + k >= n || p[i + k] != (u8)w[k])
      return 0;
  return 1;
}

/* Validates one value at p[i] (after white space), inside depth arrays
** and objects, and, with out, appends it without insignificant white space.
** Returns the index after it (and after trailing white space), or 0 when
** malformed or nested too deep (json_too_deep set). depth -1: the value is
** an envelope ({"rows": V}) that does not count. */
static u32 jvalue(const u8 *p, u32 i, u32 n, sb *out, s32 depth) {
  i = ws(p, i, n);
  if (i >= n)
    return 0;
  u8 c = p[i];
  u32 j;
  if ((c == '{' || c == '[') && depth >= WFP_JSON_MAX_DEPTH) {
    json_too_deep = 1;
    return 0;
  }
  if (c == '"') {
    j = jstring(p, i, n, 0);
    if (j && out)
      rt_sb_raw(out, p + i, j - i);
  } else if (c == '{' || c == '[') {
    u8 close = c == '{' ? '}' : ']';
    if (out)
      sb_c(out, c);
    i = ws(p, i + 1, n);
    if (i < n && p[i] == close) {
      j = i + 1;
    } else {
      for (;;) {
        if (c == '{') {
          if (i >= n || p[i] != '"')
            return 0;
          u32 k = jstring(p, i, n, 0);
          if (!k)
            return 0;
          if (out)
            rt_sb_raw(out, p + i, k - i);
          i = ws(p, k, n);
          if (i >= n || p[i] != ':')
            return 0;
          if (out)
            sb_c(out, ':');
          i++;
        }
        i = jvalue(p, i, n, out, depth + 1);
        if (!i || i >= n)
          return 0;
        if (p[i] == ',') {
          if (out)
            sb_c(out, ',');
          i = ws(p, i + 1, n);
          continue;
        }
        if (p[i] != close)
          return 0;
        j = i + 1;
        break;
      }
    }
    if (out)
      sb_c(out, close);
  } else if (c == 't' || c == 'f' || c == 'n') {
    const char *w = c == 't' ? "true" : c == 'f' ? "false" : "null";
    if (!lit(p, i, n, w))
      return 0;
    j = i + (c == 'f' ? 5u : 4u);
    if (out)
      rt_sb_raw(out, p + i, j - i);
  } else {
    j = jnumber(p, i, n);
    if (j && out)
      rt_sb_raw(out, p + i, j - i);
  }
  if (!j)
    return 0;
  return ws(p, j, n);
}

/* The compact form of JSON text, or NULL when it is not one JSON value
** (json_too_deep says whether it was too deep). */
static str *json_compact(const u8 *p, u32 n) {
  json_too_deep = 0;
  sb *b = rt_sb_new();
  u32 e = jvalue(p, 0, n, b, 0);
  if (!e || e != n)
    return 0;
  return rt_sb_end(b);
}

/* Skips one value in compact text: index after it, or 0 (json_too_deep
** set when it was too deep). */
static u32 jskip(const u8 *p, u32 i, u32 n) {
  json_too_deep = 0;
  return jvalue(p, i, n, 0, 0);
}

/* Checks that the text p[0..n) is one JSON value (an envelope, whose own
** level does not count, when envelope != 0); on failure traps with
** "<pre><what>: not JSON" or the depth limit. */
static int json_ok(const u8 *p, u32 n, int envelope, const char *pre, const char *what) {
  json_too_deep = 0;
  u32 e = jvalue(p, 0, n, 0, envelope ? -1 : 0);
  if (e && e == n)
    return 1;
  sb *b = rt_sb_new();
  sb_cs(b, pre);
  sb_cs(b, what);
  if (json_too_deep)
    sb_cs(b, ": JSON nested deeper than the limit of " STR(WFP_JSON_MAX_DEPTH) " levels");
  else
    sb_cs(b, ": not JSON");
  fail_str(rt_sb_end(b));
  return 0;
}

/* How deep the arrays and objects of valid JSON text nest. */
static u32 json_depth(const u8 *p, u32 n) {
  u32 d = 0, most = 0;
  for (u32 i = 0; i < n; i++) {
    u8 c = p[i];
    if (c == '"') {
      for (i++; i < n && p[i] != '"'; i++)
        if (p[i] == '\\')
          i++;
    } else if (c == '{' || c == '[') {
      if (++d > most)
        most = d;
    } else if (c == '}' || c == ']') {
      d--;
    }
  }
  return most;
}

/* A json value appended at level (the arrays and objects of a template
** around the hole): a trap when together they nest too deep. */
EXPORT("rt_sb_json_at") void rt_sb_json_at(sb *b, const str *s, u32 level) {
  if (level + json_depth(s->b, s->len) > WFP_JSON_MAX_DEPTH) {
    fail_deep("json template");
    return;
  }
  rt_sb_raw(b, s->b, s->len);
}

/* Does the JSON string at p[i] decode to exactly key[0..kn)? Sets *after. */
static int jkey_eq(const u8 *p, u32 i, u32 n, const u8 *key, u32 kn, u32 *after) {
  u8 *save = (u8 *)(usize)heap_top;
  u32 saved_top = heap_top;
  sb *b = rt_sb_new();
  u32 e = jstring(p, i, n, b);
  *after = e;
  int eq = e && b->len == kn;
  for (u32 k = 0; eq && k < kn; k++)
    eq = b->s->b[k] == key[k];
  (void)save;
  heap_top = saved_top; /* scratch only */
  return eq;
}

/* Integer JSON number at p[i..j) -> *v; 0 if not an integer or out of
** range. Up to 18 digits cannot overflow; only a 19th needs the check. */
static int jint(const u8 *p, u32 i, u32 j, s64 *v) {
  int neg = 0;
  if (i < j && p[i] == '-') {
    neg = 1;
    i++;
  }
  if (i >= j || j - i > 19u || (p[i] == '0' && j - i > 1u))
    return 0;
  u64 u = 0;
  for (u32 k = i; k < j; k++) {
    u32 d = (u32)p[k] - '0';
    if (d > 9u)
      return 0;
    if (k - i == 18u) { /* the 19th digit */
      u64 lim = neg ? 9223372036854775808ull : 9223372036854775807ull;
      if (u > (lim - d) / 10u)
        return 0;
    }
    u = u * 10u + d;
  }
  *v = neg ? (s64)(0ull - u) : (s64)u;
  return 1;
}

/* Looks up key in the object at p[i] (compact or not): the value's start
** index, or 0 when absent / not an object. */
static u32 jfind(const u8 *p, u32 i, u32 n, const u8 *key, u32 kn) {
  i = ws(p, i, n);
  if (i >= n || p[i] != '{')
    return 0;
  i = ws(p, i + 1, n);
  if (i < n && p[i] == '}')
    return 0;
  while (i < n && p[i] == '"') {
    u32 after;
    int eq = jkey_eq(p, i, n, key, kn, &after);
    if (!after)
      return 0;
    i = ws(p, after, n);
    if (i >= n || p[i] != ':')
      return 0;
    i = ws(p, i + 1, n);
    if (eq)
      return i;
    i = jskip(p, i, n);
    if (!i || i >= n)
      return 0;
    if (p[i] != ',')
      return 0;
    i = ws(p, i + 1, n);
  }
  return 0;
}

/* The index-th element of the array at p[i]: its start, or 0. */
static u32 jindex(const u8 *p, u32 i, u32 n, u32 index) {
  i = ws(p, i, n);
  if (i >= n || p[i] != '[')
    return 0;
  i = ws(p, i + 1, n);
  if (i < n && p[i] == ']')
    return 0;
  for (u32 k = 0;; k++) {
    if (k == index)
      return i;
    i = jskip(p, i, n);
    if (!i || i >= n || p[i] != ',')
      return 0;
    i = ws(p, i + 1, n);
  }
}

static const char *kind_word(u8 c) {
  switch (c) {
  case '{': return "an object";
  case '[': return "an array";
  case '"': return "a string";
  case 't': case 'f': return "a boolean";
  case 'n': return "null";
  default: return "a number";
  }
}

/* ---- get_* paths: data segments [u32 nsegs] then per seg:
**      [u32 kind 0=key 1=index][u32 len or index][key bytes, padded to 4] ---- */

static void path_text(sb *b, const u32 *d, u32 upto) {
  u32 nseg = d[0];
  const u32 *q = d + 1;
  sb_c(b, '$');
  for (u32 s = 0; s < nseg && s < upto; s++) {
    u32 kind = q[0], v = q[1];
    if (kind == 1) {
      sb_c(b, '[');
      rt_sb_i64(b, v);
      sb_c(b, ']');
      q += 2;
    } else {
      const u8 *k = (const u8 *)(q + 2);
      int ident = v > 0 && !(k[0] >= '0' && k[0] <= '9');
      for (u32 i = 0; i < v && ident; i++)
        ident = (k[i] >= 'a' && k[i] <= 'z') || (k[i] >= 'A' && k[i] <= 'Z') ||
                (k[i] >= '0' && k[i] <= '9') || k[i] == '_' || k[i] == '$';
      if (ident) {
        sb_c(b, '.');
        rt_sb_raw(b, k, v);
      } else {
        sb_c(b, '[');
        sb_jstr_raw(b, k, v);
        sb_c(b, ']');
      }
      q += 2 + (v + 3u) / 4u;
    }
  }
}

static void fail_path(const char *op, const u32 *d, u32 upto, const char *what) {
  sb *b = rt_sb_new();
  sb_cs(b, op);
  sb_cs(b, ": ");
  path_text(b, d, upto);
  sb_cs(b, what);
  fail_str(rt_sb_end(b));
}

/* Start index of the value at the path, or 0 (failure reported). */
static u32 walk(const char *op, const str *j, const u32 *d) {
  const u8 *p = j->b;
  u32 n = j->len, i = ws(p, 0, n);
  u32 nseg = d[0];
  const u32 *q = d + 1;
  json_too_deep = 0;
  for (u32 s = 0; s < nseg; s++) {
    u32 kind = q[0], v = q[1];
    if (i >= n) {
      fail_path(op, d, s, ": not found");
      return 0;
    }
    u32 r;
    if (kind == 1) {
      if (p[i] != '[') {
        sb *b = rt_sb_new();
        sb_cs(b, op);
        sb_cs(b, ": ");
        path_text(b, d, s);
        sb_cs(b, " is ");
        sb_cs(b, kind_word(p[i]));
        sb_cs(b, ", not an array");
        fail_str(rt_sb_end(b));
        return 0;
      }
      r = jindex(p, i, n, v);
      q += 2;
    } else {
      if (p[i] != '{') {
        sb *b = rt_sb_new();
        sb_cs(b, op);
        sb_cs(b, ": ");
        path_text(b, d, s);
        sb_cs(b, " is ");
        sb_cs(b, kind_word(p[i]));
        sb_cs(b, ", not an object");
        fail_str(rt_sb_end(b));
        return 0;
      }
      r = jfind(p, i, n, (const u8 *)(q + 2), v);
      q += 2 + (v + 3u) / 4u;
    }
    if (!r) {
      if (json_too_deep)
        fail_deep(op);
      else
        fail_path(op, d, s + 1, ": not found");
      return 0;
    }
    i = r;
  }
  if (i >= n) {
    fail_path(op, d, nseg, ": not found");
    return 0;
  }
  return i + 1; /* +1: 0 means failure */
}

EXPORT("rt_get_json") str *rt_get_json(const str *j, const u32 *path) {
  u32 i = walk("get_json", j, path);
  if (!i)
    return 0;
  i--;
  u32 e = jskip(j->b, i, j->len);
  if (!e) {
    if (json_too_deep)
      fail_deep("get_json");
    else
      fail("get_json: malformed JSON");
    return 0;
  }
  while (e > i && is_ws(j->b[e - 1]))
    e--;
  return str_new(j->b + i, e - i);
}

EXPORT("rt_get_i64") s64 rt_get_i64(const str *j, const u32 *path) {
  u32 i = walk("get_i64", j, path);
  if (!i)
    return 0;
  i--;
  u32 e = jnumber(j->b, i, j->len);
  s64 v;
  if (!e || !jint(j->b, i, e, &v)) {
    if (e)
      fail_path("get_i64", path, path[0], " is not an integer in the i64 range");
    else {
      sb *b = rt_sb_new();
      sb_cs(b, "get_i64: ");
      path_text(b, path, path[0]);
      sb_cs(b, " is ");
      sb_cs(b, kind_word(j->b[i]));
      sb_cs(b, ", not a number");
      fail_str(rt_sb_end(b));
    }
    return 0;
  }
  return v;
}

EXPORT("rt_get_str") str *rt_get_str(const str *j, const u32 *path) {
  u32 i = walk("get_str", j, path);
  if (!i)
    return 0;
  i--;
  if (j->b[i] != '"') {
    sb *b = rt_sb_new();
    sb_cs(b, "get_str: ");
    path_text(b, path, path[0]);
    sb_cs(b, " is ");
    sb_cs(b, kind_word(j->b[i]));
    sb_cs(b, ", not a string");
    fail_str(rt_sb_end(b));
    return 0;
  }
  sb *b = rt_sb_new();
  if (!jstring(j->b, i, j->len, b)) {
    fail("get_str: malformed JSON string");
    return 0;
  }
  return rt_sb_end(b);
}

EXPORT("rt_json_len") s64 rt_json_len(const str *j) {
  const u8 *p = j->b;
  u32 n = j->len, i = ws(p, 0, n);
  if (i >= n || p[i] != '[') {
    sb *b = rt_sb_new();
    sb_cs(b, "len: the JSON value is ");
    sb_cs(b, i < n ? kind_word(p[i]) : "empty");
    sb_cs(b, ", not an array");
    fail_str(rt_sb_end(b));
    return 0;
  }
  i = ws(p, i + 1, n);
  if (i < n && p[i] == ']')
    return 0;
  s64 k = 0;
  for (;;) {
    k++;
    i = jskip(p, i, n);
    if (!i) {
      /* never a count that stops short at an element it cannot read */
      if (json_too_deep)
        fail_deep("len");
      else
        fail("len: malformed JSON");
      return 0;
    }
    if (i >= n || p[i] != ',')
      break;
    i = ws(p, i + 1, n);
  }
  return k;
}

/* ---- fuel ----
** Loops and calls consume fuel: one unit per loop iteration and per entry
** of a function that calls. A step starts with its budget; when it runs
** out, the step returns pending(yield) and the next step goes on. A host
** sets the budget before a step and reads what the step used after it;
** one that does neither gets DEFAULT_FUEL per step. */
#define DEFAULT_FUEL 1000000

static s64 fuel_budget = DEFAULT_FUEL;
static s64 fuel_used_last;

EXPORT("wfp_set_fuel") void wfp_set_fuel(s64 n) { fuel_budget = n > 0 ? n : 0; }
EXPORT("wfp_fuel_used") s64 wfp_fuel_used(void) { return fuel_used_last; }

/* ---- the step: input, output, effects ---- */

static const u8 *in_p;
static u32 in_n;
static str *in_json; /* the input, compacted, once a step needs it */
static u32 args_at;  /* index of "args" in in_json (+1), 0 when absent */
static str *output;

/* The pending effect. */
static u32 eff_kind;
static str *eff_s0, *eff_s1, *eff_s2;
static s64 eff_i;

/* The resume value: JSON text (run-step's option<string>, resume-step's
** json case: res_has, res_p, res_n) or resume-step's typed i64 (res_typed
** set, res_i64), which spares the host the formatting and the guest the
** parsing of {"i64":N}. */
static const u8 *res_p;
static u32 res_n, res_has, res_typed;
static s64 res_i64;

EXPORT("rt_input") str *rt_input(void) {
  if (!in_json) {
    if (in_n == 0) {
      in_json = cstr("{}");
    } else {
      in_json = json_compact(in_p, in_n);
      if (!in_json) {
        if (json_too_deep)
          fail_deep("the invocation's input");
        else
          fail("the invocation's input is not valid JSON");
        return 0;
      }
    }
  }
  return in_json;
}

EXPORT("rt_out_i64") void rt_out_i64(s64 v) {
  sb *b = rt_sb_new();
  sb_cs(b, "{\"result\":");
  rt_sb_i64(b, v);
  sb_c(b, '}');
  output = rt_sb_end(b);
}

EXPORT("rt_out_str") void rt_out_str(const str *s) {
  sb *b = rt_sb_new();
  sb_cs(b, "{\"result\":");
  rt_sb_jstr(b, s);
  sb_c(b, '}');
  output = rt_sb_end(b);
}

EXPORT("rt_out_json") void rt_out_json(const str *j) { output = (str *)j; }

EXPORT("rt_out_null") void rt_out_null(void) { output = cstr("{\"result\":null}"); }

/* Effects: recorded here; the generated code then saves its frame. */
EXPORT("rt_eff_ctx_get") void rt_eff_ctx_get(const str *key) {
  eff_kind = WFP_EFFECT_CTX_GET_I64;
  eff_s0 = (str *)key;
}
EXPORT("rt_eff_ctx_set") void rt_eff_ctx_set(const str *key, s64 v) {
  eff_kind = WFP_EFFECT_CTX_SET_I64;
  eff_s0 = (str *)key;
  eff_i = v;
}
EXPORT("rt_eff_msg") void rt_eff_msg(const str *topic, const str *payload) {
  eff_kind = WFP_EFFECT_MSG_SEND;
  eff_s0 = (str *)topic;
  eff_s1 = (str *)payload;
}
EXPORT("rt_eff_sleep") void rt_eff_sleep(s64 ms) {
  eff_kind = WFP_EFFECT_SLEEP_MS;
  eff_i = ms < 0 ? 0 : ms;
}
EXPORT("rt_eff_db") void rt_eff_db(const str *sql, const str *params, const str *each) {
  eff_kind = WFP_EFFECT_DB_QUERY;
  eff_s0 = (str *)sql;
  eff_s1 = (str *)params;
  eff_s2 = (str *)each;
}
EXPORT("rt_eff_self_get") void rt_eff_self_get(const str *prop) {
  eff_kind = WFP_EFFECT_SELF_GET;
  eff_s0 = (str *)prop;
}
EXPORT("rt_eff_self_set") void rt_eff_self_set(const str *prop, const str *value) {
  eff_kind = WFP_EFFECT_SELF_SET;
  eff_s0 = (str *)prop;
  eff_s1 = (str *)value;
}
EXPORT("rt_eff_yield") void rt_eff_yield(void) { eff_kind = WFP_EFFECT_YIELD; }

/* ---- resume values ---- */

/* A resume text that is {"error": "..."} becomes a trap; returns 1 then. */
static int res_error(void) {
  u32 i = jfind(res_p, 0, res_n, (const u8 *)"error", 5);
  if (!i)
    return 0;
  if (res_p[i] == '"') {
    sb *b = rt_sb_new();
    if (jstring(res_p, i, res_n, b)) {
      fail_str(rt_sb_end(b));
      return 1;
    }
  }
  fail("the host reported an error performing the effect");
  return 1;
}

static int res_present(const char *what) {
  if (res_has)
    return 1;
  sb *b = rt_sb_new();
  sb_cs(b, "invalid step: resuming ");
  sb_cs(b, what);
  sb_cs(b, " without a resume value");
  fail_str(rt_sb_end(b));
  return 0;
}

/* A typed i64 where the effect's result is not one: a fault of the host. */
static void res_typed_bad(const char *what) {
  sb *b = rt_sb_new();
  sb_cs(b, "invalid resume value for ");
  sb_cs(b, what);
  sb_cs(b, ": an i64, which this effect does not return");
  fail_str(rt_sb_end(b));
}

EXPORT("rt_res_none") void rt_res_none(void) {
  if (res_typed) {
    res_typed_bad("an effect without a result");
    return;
  }
  if (!res_has || res_n == 0 || (res_n == 4 && lit(res_p, 0, 4, "null")) ||
      (res_n == 2 && res_p[0] == '{' && res_p[1] == '}'))
    return;
  if (!json_ok(res_p, res_n, 0, "invalid resume value", ""))
    return;
  res_error();
}

EXPORT("rt_res_i64") s64 rt_res_i64(void) {
  if (res_typed)
    return res_i64;
  if (!res_present("ctx_get_i64"))
    return 0;
  const u8 *p = res_p;
  u32 n = res_n;
  /* the host's own form, {"i64":N}, first: '{"i6' and '64":' as words */
  if (n > 8 && rd32(p) == 0x3669227Bu && rd32(p + 3) == 0x3A223436u &&
      p[n - 1] == '}') {
    s64 v;
    if (jint(p, 7, n - 1, &v))
      return v;
  }
  if (!json_ok(p, n, 1, "invalid resume value for ", "ctx_get_i64"))
    return 0;
  if (res_error())
    return 0;
  u32 i = jfind(p, 0, n, (const u8 *)"i64", 3);
  if (i) {
    u32 e = jnumber(p, i, n);
    s64 v;
    if (e && jint(p, i, e, &v))
      return v;
  }
  fail("invalid resume value for ctx_get_i64: expected {\"i64\": <integer>}");
  return 0;
}

/* A resume value {"<key>": V, ...} of the effect what: where V starts,
** plus 1 (0 after a failure: no value, not JSON, the host's error, no
** such key). */
static u32 res_field(const char *what, const char *key, u32 kn) {
  if (res_typed) {
    res_typed_bad(what);
    return 0;
  }
  if (!res_present(what))
    return 0;
  if (!json_ok(res_p, res_n, 1, "invalid resume value for ", what))
    return 0;
  if (res_error())
    return 0;
  u32 i = jfind(res_p, 0, res_n, (const u8 *)key, kn);
  if (!i) {
    sb *b = rt_sb_new();
    sb_cs(b, "invalid resume value for ");
    sb_cs(b, what);
    sb_cs(b, ": expected {\"");
    sb_cs(b, key);
    sb_cs(b, "\": ...}");
    fail_str(rt_sb_end(b));
  }
  return i ? i + 1 : 0;
}

/* self_get: {"value": V}, V of the property's type. The value's text is
** returned as a str (get_str decodes a JSON string) or json. */
static u32 res_value(const char *what) { return res_field(what, "value", 5); }

EXPORT("rt_res_value_i64") s64 rt_res_value_i64(void) {
  if (res_typed)
    return res_i64; /* an i64 property's value, typed */
  u32 i = res_value("self_get");
  if (!i)
    return 0;
  i--;
  u32 e = jnumber(res_p, i, res_n);
  s64 v;
  if (!e || !jint(res_p, i, e, &v)) {
    fail("invalid resume value for self_get: the property is i64, the value is not");
    return 0;
  }
  return v;
}

EXPORT("rt_res_value_str") str *rt_res_value_str(void) {
  u32 i = res_value("self_get");
  if (!i)
    return 0;
  i--;
  sb *b = rt_sb_new();
  if (res_p[i] != '"' || !jstring(res_p, i, res_n, b)) {
    fail("invalid resume value for self_get: the property is str, the value is not");
    return 0;
  }
  return rt_sb_end(b);
}

EXPORT("rt_res_value_json") str *rt_res_value_json(void) {
  u32 i = res_value("self_get");
  if (!i)
    return 0;
  i--;
  sb *b = rt_sb_new();
  json_too_deep = 0;
  if (!jvalue(res_p, i, res_n, b, 0)) {
    if (json_too_deep)
      fail_deep("invalid resume value for self_get");
    else
      fail("invalid resume value for self_get: malformed JSON");
    return 0;
  }
  return rt_sb_end(b);
}

/* db_query: {"rows": [...]}: the array (row objects, or with each the
** values the per-row invocations returned), as a json value. */
EXPORT("rt_res_rows") str *rt_res_rows(void) {
  u32 i = res_field("db_query", "rows", 4);
  if (!i)
    return 0;
  i--;
  if (res_p[i] != '[') {
    fail("invalid resume value for db_query: expected {\"rows\": [...]}");
    return 0;
  }
  sb *b = rt_sb_new();
  json_too_deep = 0;
  if (!jvalue(res_p, i, res_n, b, 0)) {
    /* the envelope was valid: only the rows' own depth can fail */
    fail_deep("invalid resume value for db_query");
    return 0;
  }
  return rt_sb_end(b);
}

/* ---- state bytes ----
** header (32 bytes): "wfps" u16 version u16 flags u64 program hash
**                    u64 checksum u32 entry function u32 frame count
** frames, innermost first: payload, then u32 payload length, u32 function,
** u32 resume point. See docs/state.md. */

#define HDR WFP_STATE_HDR

static u8 *st_w;      /* state being written */
static u32 st_wlen, st_wcap, st_wframes, st_wframe_start;
static const u8 *st_r; /* state being resumed */
static u32 st_rend;    /* end of the unread frames */
static u32 st_rpos;    /* read cursor within the current frame */


/* The checksum is wfp_state_sum of wfp/abi.h, shared with hosts. */
#define state_sum wfp_state_sum

NOINLINE static void st_grow(u32 n) {
  u32 cap = st_wcap * 2u;
  if (cap < st_wlen + n)
    cap = st_wlen + n + 64u;
  u8 *nw = cabi_realloc(st_w, st_wcap, 8, cap);
  st_w = nw;
  st_wcap = cap;
}

/* A frame's trailer: u32 length, function, point (wfp/abi.h). */
#define TRAILER WFP_FRAME_TRAILER

/* Room for n more bytes and a trailer after them: every write into a
** frame leaves room for its trailer, so rt_fw_end needs no test. The test
** inline, the growth out of line. */
static inline void st_need(u32 n) {
  if (st_wlen + n + TRAILER > st_wcap)
    st_grow(n + TRAILER);
}

/* Starts a frame and reserves its fixed part, the i64 values, which the
** generated code stores itself; returns where they go. */
EXPORT("rt_fw_begin") u8 *rt_fw_begin(u32 fixed) {
  if (!st_w) {
    st_wcap = 256;
    st_w = alloc(st_wcap);
    st_wlen = HDR;
    st_wframes = 0;
  }
  st_wframe_start = st_wlen;
  st_need(fixed);
  u8 *at = st_w + st_wlen;
  st_wlen += fixed;
  return at;
}

EXPORT("rt_fw_str") void rt_fw_str(const str *s) {
  st_need(4u + s->len);
  wr32(st_w + st_wlen, s->len);
  memcpy(st_w + st_wlen + 4, s->b, s->len);
  st_wlen += 4u + s->len;
}

EXPORT("rt_fw_end") void rt_fw_end(u32 fn, u32 point) {
  /* room left by the frame's last st_need */
  wr32(st_w + st_wlen, st_wlen - st_wframe_start);
  wr32(st_w + st_wlen + 4, fn);
  wr32(st_w + st_wlen + 8, point);
  st_wlen += WFP_FRAME_TRAILER;
  st_wframes++;
}

/* Reading: frames were validated as a whole before the step ran. */
EXPORT("rt_fr_open") u32 rt_fr_open(u32 fn) {
  u32 t = st_rend - WFP_FRAME_TRAILER;
  u32 len = rd32(st_r + t);
  u32 point = rd32(st_r + t + 8);
  if (rd32(st_r + t + 4) != fn)
    fatal("state frame of another function (a wfp bug)");
  st_rpos = t - len;
  st_rend = st_rpos;
  return point;
}

/* The fixed part of the frame being restored (its i64 values), which the
** generated code loads itself. */
EXPORT("rt_fr_take") const u8 *rt_fr_take(u32 fixed) {
  const u8 *at = st_r + st_rpos;
  st_rpos += fixed;
  return at;
}

/* A str in the state is already [u32 len][bytes]: used in place. */
EXPORT("rt_fr_str") str *rt_fr_str(void) {
  str *s = (str *)(usize)(st_r + st_rpos);
  st_rpos += 4u + rd32(st_r + st_rpos);
  return s;
}

EXPORT("rt_resume_done") void rt_resume_done(void) { wfp_gen_set_resuming(0); }

/* The tables codegen provides (see codegen/lower.c):
** layout: u32 nfuncs; per function u32 first point, u32 npoints; then per
**   point u32 callee (POINT_EFFECT, POINT_DYNAMIC or a function), u32
**   nvals, u32 address of nvals type bytes.
** funcs: u32 nfuncs; per function u32 name (str*), u32 id (str*), u32
**   nparams, u32 params: per param u32 name (str*), u32 type; u32 k: the
**   leading params a closure of the function binds (its captures).
**
** A closure (a fn value) in memory: u32 function, u32 k, then k slots of
** 8 bytes, an i64 or a pointer each. In state bytes: u32 function, u32 k,
** then the k values, each in its type's encoding (a closure's recursively). */
#define POINT_EFFECT WFP_POINT_EFFECT
#define POINT_DYNAMIC WFP_POINT_DYNAMIC

static const u32 *fn_entry(u32 fn);

/* Closures nest to any depth (a loop can wrap one in another as often as
** it runs), so every walk over one keeps its own stack of the closures it
** is inside, in the arena, instead of recursing: the guest's call depth is
** the program's. One frame per closure being walked. */
typedef struct cwalk {
  const u32 *params; /* the closure's function's parameters (name, type)* */
  u8 *c;             /* the closure in memory (reading and writing), or 0 */
  u32 i, k;          /* the next capture, and how many there are */
} cwalk;

static cwalk *cw;   /* the stack: valid for one step (the arena's) */
static u32 cw_cap;

/* Frame d of the stack, grown as needed. */
static cwalk *cw_at(u32 d) {
  if (d >= cw_cap) {
    u32 cap = cw_cap ? cw_cap * 2u : 64u;
    if (cap <= d)
      cap = d + 1u;
    cwalk *n = alloc(cap * (u32)sizeof *n);
    if (cw_cap)
      memcpy(n, cw, cw_cap * sizeof *n);
    cw = n;
    cw_cap = cap;
  }
  return &cw[d];
}

/* Is p[0..n) one JSON value in compact form (no white space outside
** strings), as the guest writes json values into state bytes? */
static int json_compact_ok(const u8 *p, u32 n) {
  ws_seen = 0;
  return n && jvalue(p, 0, n, 0, 0) == n && !ws_seen;
}

/* The end of one value of a type other than fn at s[q..t), or 0. */
static u32 scalar_end(const u8 *s, u32 q, u32 t, u32 ty) {
  if (ty == TY_I64)
    return t - q >= 8u ? q + 8u : 0;
  if (ty == TY_STR || ty == TY_JSON) {
    if (t - q < 4u)
      return 0;
    u32 sl = rd32(s + q);
    if (sl > t - q - 4u)
      return 0;
    /* the content too: a forged state (its checksum is no MAC) must not
    ** make a str that is not UTF-8 or a json value that is not JSON, which
    ** the program would print as its output */
    const u8 *v = s + q + 4u;
    if (ty == TY_STR ? !utf8_ok(v, 0, sl) : !json_compact_ok(v, sl))
      return 0;
    return q + 4u + sl;
  }
  return 0;
}

/* One value of type ty at s[q..t): its end, or 0 when it does not fit. A
** closure's captures are typed by its function's leading params. */
static u32 value_end(const u8 *s, u32 q, u32 t, u32 ty) {
  if (ty != TY_FN)
    return scalar_end(s, q, t, ty);
  u32 sp = 0;
  for (;;) {
    /* a closure header at q: function, k */
    if (t - q < 8u)
      return 0;
    u32 f = rd32(s + q), k = rd32(s + q + 4);
    if (f >= ((const u32 *)(usize)wfp_gen_funcs())[0])
      return 0;
    const u32 *row = fn_entry(f);
    if (k != row[WFP_FUNCS_K] || k > row[WFP_FUNCS_NPARAMS])
      return 0;
    q += 8;
    cwalk *w = cw_at(sp++);
    w->params = (const u32 *)(usize)row[WFP_FUNCS_PARAMS];
    w->i = 0;
    w->k = k;
    /* its captures, until one is a closure (read next) or all are done */
    for (;;) {
      if (!sp)
        return q;
      w = &cw[sp - 1];
      if (w->i == w->k) {
        sp--;
        continue;
      }
      u32 cty = w->params[2 * w->i++ + 1];
      if (cty == TY_FN)
        break;
      q = scalar_end(s, q, t, cty);
      if (!q)
        return 0;
    }
  }
}

static const char *validate_state(const u8 *s, u32 n, u32 *entry) {
  if (n < HDR)
    return "invalid state: truncated header";
  if (rd32(s) != WFP_STATE_MAGIC)
    return "invalid state: not wfp state bytes";
  if ((rd32(s + WFP_STATE_AT_VERSION) & 0xFFFFu) != WFP_STATE_VERSION)
    return "invalid state: unsupported format version";
  if (rd32(s + WFP_STATE_AT_VERSION) >> 16)
    return "invalid state: unknown flags";
  if (rd64(s + WFP_STATE_AT_HASH) != wfp_gen_hash())
    return "invalid state: it belongs to another program";
  if (rd64(s + WFP_STATE_AT_SUM) != state_sum(s, n))
    return "invalid state: checksum mismatch (truncated or tampered)";
  const u32 *lay = (const u32 *)(usize)wfp_gen_layout();
  u32 nfuncs = lay[0];
  u32 fn = rd32(s + WFP_STATE_AT_ENTRY), nframes = rd32(s + WFP_STATE_AT_FRAMES);
  if (fn >= nfuncs)
    return "invalid state: unknown entry function";
  if (nframes == 0)
    return "invalid state: no frames";
  const u32 *pts = lay + 1 + WFP_LAYOUT_FN_ROW * nfuncs;
  u32 end = n, expect = fn;
  for (u32 k = 0; k < nframes; k++) {
    if (end < HDR + WFP_FRAME_TRAILER)
      return "invalid state: truncated frame";
    u32 t = end - WFP_FRAME_TRAILER;
    u32 len = rd32(s + t), f = rd32(s + t + 4), point = rd32(s + t + 8);
    if (len > t - HDR)
      return "invalid state: frame length out of range";
    if (f >= nfuncs)
      return "invalid state: unknown function in a frame";
    if (expect != POINT_DYNAMIC && f != expect)
      return "invalid state: frame of an unexpected function";
    /* a dynamic call resumes through the table: only closures' functions */
    if (expect == POINT_DYNAMIC && fn_entry(f)[WFP_FUNCS_K] == WFP_NOT_CLOSABLE)
      return "invalid state: frame of a function no fn value names";
    const u32 *row = lay + 1 + WFP_LAYOUT_FN_ROW * f;
    if (point >= row[WFP_LAYOUT_NPOINTS])
      return "invalid state: unknown resume point";
    const u32 *pt = pts + WFP_LAYOUT_POINT_ROW * (row[WFP_LAYOUT_FIRST] + point);
    u32 callee = pt[WFP_POINT_CALLEE], nvals = pt[WFP_POINT_NVALS];
    const u8 *types = (const u8 *)(usize)pt[WFP_POINT_TYPES];
    int last = k + 1 == nframes;
    if (last != (callee == POINT_EFFECT))
      return "invalid state: the frames do not end at an effect";
    u32 q = t - len;
    for (u32 v = 0; v < nvals; v++) {
      json_too_deep = 0;
      q = value_end(s, q, t, types[v]);
      /* a json value deeper than the rule: the limit named, as everywhere */
      if (!q && json_too_deep)
        return "invalid state: JSON nested deeper than the limit of " STR(
            WFP_JSON_MAX_DEPTH) " levels";
      if (!q)
        return "invalid state: a value does not fit its frame";
    }
    if (q != t)
      return "invalid state: frame size does not match its values";
    end = t - len;
    expect = callee;
  }
  if (end != HDR)
    return "invalid state: bytes beyond the frames";
  *entry = fn;
  return 0;
}

/* ---- function table, arguments ---- */

static const u32 *fn_entry(u32 fn) {
  const u32 *t = (const u32 *)(usize)wfp_gen_funcs();
  return t + 1 + WFP_FUNCS_ROW * fn;
}

/*
** call_ref's check of a function value against the signature the call was
** compiled for, which may hold a default type (docs/ir.md, "Types"): a
** value from outside the program (an input) or one whose types nothing in
** the program fixed may have another. sig: u32 n, the n parameter types,
** the result type (0: no value); rets: each function's result type. A
** difference is a trap that names it, before the call.
*/
static const char *ty_word(u32 ty) {
  switch (ty) {
  case TY_I64: return "i64";
  case TY_STR: return "str";
  case TY_JSON: return "json";
  case TY_FN: return "fn";
  default: return "no value";
  }
}

EXPORT("rt_call_ref_check") void rt_call_ref_check(const u32 *clo, const u32 *sig,
                                                   const u32 *rets) {
  u32 f = clo[0], k = clo[1];
  const u32 *row = fn_entry(f);
  const u32 *params = (const u32 *)(usize)row[WFP_FUNCS_PARAMS];
  u32 n = row[WFP_FUNCS_NPARAMS] - k;
  sb *b = 0;
  if (n != sig[0]) {
    b = rt_sb_new();
    sb_cs(b, "call_ref: function '");
    rt_sb_str(b, (const str *)(usize)row[WFP_FUNCS_NAME]);
    sb_cs(b, "' takes ");
    rt_sb_i64(b, n);
    sb_cs(b, " arguments, but this call passes ");
    rt_sb_i64(b, sig[0]);
    fail_str(rt_sb_end(b));
    return;
  }
  for (u32 i = 0; i < n; i++) {
    u32 ty = params[2 * (k + i) + 1];
    if (ty == sig[1 + i])
      continue;
    b = rt_sb_new();
    sb_cs(b, "call_ref: parameter '");
    rt_sb_str(b, (const str *)(usize)params[2 * (k + i)]);
    sb_cs(b, "' of function '");
    rt_sb_str(b, (const str *)(usize)row[WFP_FUNCS_NAME]);
    sb_cs(b, "' is ");
    sb_cs(b, ty_word(ty));
    sb_cs(b, ", but this call passes ");
    sb_cs(b, ty_word(sig[1 + i]));
    fail_str(rt_sb_end(b));
    return;
  }
  if (rets[f] != sig[1 + n]) {
    b = rt_sb_new();
    sb_cs(b, "call_ref: function '");
    rt_sb_str(b, (const str *)(usize)row[WFP_FUNCS_NAME]);
    sb_cs(b, "' returns ");
    sb_cs(b, ty_word(rets[f]));
    sb_cs(b, ", but this call expects ");
    sb_cs(b, ty_word(sig[1 + n]));
    fail_str(rt_sb_end(b));
  }
}

static s32 find_fn(const u8 *name, u32 n) {
  const u32 *t = (const u32 *)(usize)wfp_gen_funcs();
  u32 nf = t[0];
  for (int pass = 0; pass < 2; pass++)
    for (u32 f = 0; f < nf; f++) {
      const str *s = (const str *)(usize)fn_entry(f)[pass ? WFP_FUNCS_ID : WFP_FUNCS_NAME];
      if (s->len != n)
        continue;
      u32 k = 0;
      while (k < n && s->b[k] == name[k])
        k++;
      if (k == n)
        return (s32)f;
    }
  return -1;
}

/* The name of parameter idx of function fn (captures first). */
static const str *param_name(u32 fn, u32 idx) {
  const u32 *params = (const u32 *)(usize)fn_entry(fn)[WFP_FUNCS_PARAMS];
  return (const str *)(usize)params[2 * idx];
}

static u32 arg_at(u32 idx, const str *name) {
  if (!args_at)
    return 0;
  const u8 *p = in_json->b;
  u32 n = in_json->len, i = args_at - 1;
  if (p[i] == '{')
    return jfind(p, i, n, name->b, name->len);
  if (p[i] == '[')
    return jindex(p, i, n, idx);
  return 0;
}

static void fail_arg(const str *name, const char *what) {
  sb *b = rt_sb_new();
  sb_cs(b, "argument '");
  rt_sb_str(b, name);
  sb_cs(b, "' ");
  sb_cs(b, what);
  fail_str(rt_sb_end(b));
}

EXPORT("rt_arg_i64") s64 rt_arg_i64(u32 fn, u32 idx) {
  const str *name = param_name(fn, idx);
  u32 i = arg_at(idx, name);
  if (!i) {
    fail_arg(name, "is missing");
    return 0;
  }
  const u8 *p = in_json->b;
  u32 e = jnumber(p, i, in_json->len);
  s64 v;
  if (!e || !jint(p, i, e, &v)) {
    fail_arg(name, "must be an integer in the i64 range");
    return 0;
  }
  return v;
}

EXPORT("rt_arg_str") str *rt_arg_str(u32 fn, u32 idx) {
  const str *name = param_name(fn, idx);
  u32 i = arg_at(idx, name);
  if (!i) {
    fail_arg(name, "is missing");
    return 0;
  }
  const u8 *p = in_json->b;
  if (p[i] != '"') {
    fail_arg(name, "must be a string");
    return 0;
  }
  sb *b = rt_sb_new();
  jstring(p, i, in_json->len, b);
  return rt_sb_end(b);
}

EXPORT("rt_arg_json") str *rt_arg_json(u32 fn, u32 idx) {
  const str *name = param_name(fn, idx);
  u32 i = arg_at(idx, name);
  if (!i) {
    fail_arg(name, "is missing");
    return 0;
  }
  u32 e = jskip(in_json->b, i, in_json->len);
  while (e > i && is_ws(in_json->b[e - 1]))
    e--;
  return str_new(in_json->b + i, e - i);
}

u8 *rt_closure_new(u32 fn, u32 k);

/* A closure from its JSON form, {"fn": "<id or name>", "args": [captures]}:
** how a host hands a fn value back (db_query's each, a fan-out's rows). Its
** function must be one a fn value of the program names, with that many
** captures, each of its parameter's type. 0 after a failure. */
static u8 *closure_of_json(const u8 *p, u32 i, u32 n, const str *name) {
  static const char form[] =
      "must be a function value: {\"fn\": \"<id>\", \"args\": [captured values]}";
  i = ws(p, i, n);
  u32 f_at = jfind(p, i, n, (const u8 *)"fn", 2);
  u32 a_at = jfind(p, i, n, (const u8 *)"args", 4);
  if (!f_at || !a_at || p[f_at] != '"' || p[a_at] != '[') {
    fail_arg(name, form);
    return 0;
  }
  sb *b = rt_sb_new();
  if (!jstring(p, f_at, n, b)) {
    fail_arg(name, form);
    return 0;
  }
  str *id = rt_sb_end(b);
  s32 f = find_fn(id->b, id->len);
  if (f < 0) {
    fail_arg(name, "names no function of this program");
    return 0;
  }
  const u32 *row = fn_entry((u32)f);
  u32 k = row[WFP_FUNCS_K];
  if (k == WFP_NOT_CLOSABLE) {
    fail_arg(name, "names a function that no fn value of this program refers to");
    return 0;
  }
  if (jindex(p, a_at, n, k) || (k && !jindex(p, a_at, n, k - 1))) {
    fail_arg(name, "gives a function value the wrong number of captured values");
    return 0;
  }
  const u32 *params = (const u32 *)(usize)row[WFP_FUNCS_PARAMS];
  u8 *c = rt_closure_new((u32)f, k);
  for (u32 j = 0; j < k; j++) {
    u32 at = jindex(p, a_at, n, j), ty = params[2 * j + 1];
    u8 *slot = c + 8 + 8 * j;
    if (ty == TY_I64) {
      u32 e = jnumber(p, at, n);
      s64 v;
      if (!e || !jint(p, at, e, &v)) {
        fail_arg(name, "gives a function value a capture that is not an i64");
        return 0;
      }
      wr64(slot, (u64)v);
    } else if (ty == TY_STR) {
      sb *sv = rt_sb_new();
      if (p[at] != '"' || !jstring(p, at, n, sv)) {
        fail_arg(name, "gives a function value a capture that is not a string");
        return 0;
      }
      wr32(slot, (u32)(usize)rt_sb_end(sv));
    } else if (ty == TY_JSON) {
      u32 e = jskip(p, at, n);
      while (e > at && is_ws(p[e - 1]))
        e--;
      wr32(slot, (u32)(usize)str_new(p + at, e - at));
    } else {
      u8 *inner = closure_of_json(p, at, n, name);
      if (!inner)
        return 0;
      wr32(slot, (u32)(usize)inner);
    }
  }
  return c;
}

EXPORT("rt_arg_fn") u8 *rt_arg_fn(u32 fn, u32 idx) {
  const str *name = param_name(fn, idx);
  u32 i = arg_at(idx, name);
  if (!i) {
    fail_arg(name, "is missing");
    return 0;
  }
  return closure_of_json(in_json->b, i, in_json->len, name);
}

/* ---- closures ---- */

EXPORT("rt_closure_new") u8 *rt_closure_new(u32 fn, u32 k) {
  u8 *c = alloc(8u + 8u * k);
  wr32(c, fn);
  wr32(c + 4, k);
  return c;
}

/* A closure into the state being written: function, k, then its typed
** captures, a closure's recursively (in that order, without recursion). */
static void fw_closure(const u8 *c) {
  u32 sp = 0;
  for (;;) {
    u32 f = rd32(c), k = rd32(c + 4);
    st_need(8);
    wr32(st_w + st_wlen, f);
    wr32(st_w + st_wlen + 4, k);
    st_wlen += 8;
    cwalk *w = cw_at(sp++);
    w->params = (const u32 *)(usize)fn_entry(f)[WFP_FUNCS_PARAMS];
    w->c = (u8 *)c;
    w->i = 0;
    w->k = k;
    for (c = 0; sp && !c;) {
      w = &cw[sp - 1];
      if (w->i == w->k) {
        sp--;
        continue;
      }
      u32 i = w->i++, ty = w->params[2 * i + 1];
      const u8 *slot = w->c + 8 + 8 * i;
      if (ty == TY_I64) {
        st_need(8);
        memcpy(st_w + st_wlen, slot, 8);
        st_wlen += 8;
      } else if (ty == TY_FN) {
        c = (const u8 *)(usize)rd32(slot);
      } else {
        rt_fw_str((const str *)(usize)rd32(slot));
      }
    }
    if (!c)
      return;
  }
}

EXPORT("rt_fw_fn") void rt_fw_fn(const u8 *c) { fw_closure(c); }

/* A closure out of the state being resumed (validated already): strings
** stay in place in the state, as rt_fr_str's. */
EXPORT("rt_fr_fn") u8 *rt_fr_fn(void) {
  u8 *top = 0, *into = 0; /* into: the slot the next closure goes to */
  u32 sp = 0;
  for (;;) {
    u32 f = rd32(st_r + st_rpos), k = rd32(st_r + st_rpos + 4);
    st_rpos += 8;
    u8 *c = rt_closure_new(f, k);
    if (into)
      wr32(into, (u32)(usize)c);
    else
      top = c;
    cwalk *w = cw_at(sp++);
    w->params = (const u32 *)(usize)fn_entry(f)[WFP_FUNCS_PARAMS];
    w->c = c;
    w->i = 0;
    w->k = k;
    for (into = 0; sp && !into;) {
      w = &cw[sp - 1];
      if (w->i == w->k) {
        sp--;
        continue;
      }
      u32 i = w->i++, ty = w->params[2 * i + 1];
      u8 *slot = w->c + 8 + 8 * i;
      if (ty == TY_I64) {
        memcpy(slot, st_r + st_rpos, 8);
        st_rpos += 8;
      } else if (ty == TY_FN) {
        into = slot;
      } else {
        wr32(slot, (u32)(usize)rt_fr_str());
      }
    }
    if (!into)
      return top;
  }
}

/* The function of the frame a dynamic call resumes into. */
EXPORT("rt_fr_peek_fn") u32 rt_fr_peek_fn(void) { return rd32(st_r + st_rend - 8u); }

/* A closure's JSON form: {"fn": "<stable id>", "args": [captures]}: what a
** host runs (db_query's each), and the output of a function value. Each
** closure inside another nests two levels of JSON; base is the levels
** around the form. A form past the JSON depth limit is a trap: a host
** could not read it. */
static void sb_closure(sb *b, const u8 *c, u32 base) {
  u32 sp = 0;
  for (;;) {
    if (base + 2u * (sp + 1u) > WFP_JSON_MAX_DEPTH)
      fatal("a function value nested too deep for its JSON form (the JSON "
            "depth limit is " STR(WFP_JSON_MAX_DEPTH) " levels)");
    u32 f = rd32(c), k = rd32(c + 4);
    const u32 *row = fn_entry(f);
    sb_cs(b, "{\"fn\":");
    rt_sb_jstr(b, (const str *)(usize)row[WFP_FUNCS_ID]);
    sb_cs(b, ",\"args\":[");
    cwalk *w = cw_at(sp++);
    w->params = (const u32 *)(usize)row[WFP_FUNCS_PARAMS];
    w->c = (u8 *)c;
    w->i = 0;
    w->k = k;
    for (c = 0; sp && !c;) {
      w = &cw[sp - 1];
      if (w->i == w->k) {
        sb_cs(b, "]}");
        sp--;
        continue;
      }
      u32 i = w->i++, ty = w->params[2 * i + 1];
      const u8 *slot = w->c + 8 + 8 * i;
      if (i)
        sb_c(b, ',');
      if (ty == TY_I64)
        rt_sb_i64(b, (s64)rd64(slot));
      else if (ty == TY_STR)
        rt_sb_jstr(b, (const str *)(usize)rd32(slot));
      else if (ty == TY_JSON)
        rt_sb_json(b, (const str *)(usize)rd32(slot));
      else
        c = (const u8 *)(usize)rd32(slot);
    }
    if (!c)
      return;
  }
}

EXPORT("rt_closure_json") str *rt_closure_json(const u8 *c) {
  sb *b = rt_sb_new();
  sb_closure(b, c, 0);
  return rt_sb_end(b);
}

EXPORT("rt_out_fn") void rt_out_fn(const u8 *c) {
  sb *b = rt_sb_new();
  sb_cs(b, "{\"result\":");
  sb_closure(b, c, 1);
  sb_c(b, '}');
  output = rt_sb_end(b);
}

/* ---- run-step ---- */

/* The state this instance wrote last (a copy, when it fits): state that
** comes back byte for byte as written was valid when it was written, and
** its checksum and frames are not checked again. What the host kept in its
** own memory between two steps costs a comparison, not a validation; state
** from anywhere else (a checkpoint, another process, another invocation
** of a pooled instance) differs and is validated whole.
**
** Two copies, written in turn: the descriptor glue (native code of this
** module) compares the host's state with the newest one itself and, when
** they are the same, passes the copy's own address instead of copying the
** bytes in (wfp_last_state says where it is). A step resumed from one copy
** writes the other, since strings restored from the state are used in
** place and may still be read while the next state is copied. Nothing
** else passes an address of these statics: canonical-ABI lowering
** allocates with cabi_realloc, in the arena. */
static u8 last_state[2][512];
static u32 last_ref[2]; /* the newest copy: its address and length, or 0, 0 */

EXPORT("wfp_last_state") u32 *wfp_last_state(void) { return last_ref; }

static int same_as_last(const u8 *s, u32 n) {
  const u8 *last = (const u8 *)(usize)last_ref[0];
  if (n != last_ref[1] || n == 0)
    return 0;
  if (s == last)
    return 1; /* the glue found the bytes the same and passed the copy */
  u64 diff = 0;
  u32 i = 0;
  for (; i + 8u <= n; i += 8u)
    diff |= rd64(s + i) ^ rd64(last + i);
  for (; i < n; i++)
    diff |= (u64)(s[i] ^ last[i]);
  return diff == 0;
}

/* The return area of step-result: its layout is WFP_RA_* (wfp/abi.h). */
static u64 ret_area[WFP_RA_SIZE / 8];

static u8 *ret_str(u8 tag, const str *s) {
  u8 *r = (u8 *)ret_area;
  memset(r, 0, sizeof ret_area);
  r[WFP_RA_TAG] = tag;
  wr32(r + WFP_RA_TEXT, (u32)(usize)s->b);
  wr32(r + WFP_RA_TEXT + 4, s->len);
  return r;
}

static u8 *ret_trap(const char *m) { return ret_str(2, cstr(m)); }

static void put_str(u8 *at, const str *s) {
  wr32(at, s ? (u32)(usize)s->b : 0u);
  wr32(at + 4, s ? s->len : 0u);
}

static u8 *ret_pending(void) {
  u8 *r = (u8 *)ret_area;
  memset(r, 0, sizeof ret_area);
  r[WFP_RA_TAG] = WFP_STEP_PENDING;
  r[WFP_RA_EFFECT] = (u8)eff_kind;
  switch (eff_kind) {
  case WFP_EFFECT_CTX_GET_I64: case WFP_EFFECT_SELF_GET:
    put_str(r + WFP_RA_ARG0, eff_s0);
    break;
  case WFP_EFFECT_CTX_SET_I64:
    put_str(r + WFP_RA_ARG0, eff_s0);
    wr64(r + WFP_RA_ARG1, (u64)eff_i);
    break;
  case WFP_EFFECT_MSG_SEND: case WFP_EFFECT_SELF_SET:
    put_str(r + WFP_RA_ARG0, eff_s0);
    put_str(r + WFP_RA_ARG1, eff_s1);
    break;
  case WFP_EFFECT_SLEEP_MS:
    wr64(r + WFP_RA_ARG0, (u64)eff_i);
    break;
  case WFP_EFFECT_DB_QUERY:
    put_str(r + WFP_RA_ARG0, eff_s0);
    put_str(r + WFP_RA_ARG1, eff_s1);
    if (eff_s2) {
      r[WFP_RA_OPT] = 1;
      put_str(r + WFP_RA_OPT_STR, eff_s2);
    }
    break;
  default:
    break;
  }
  /* finish the header */
  wr32(st_w, WFP_STATE_MAGIC);
  wr32(st_w + WFP_STATE_AT_VERSION, WFP_STATE_VERSION);
  wr64(st_w + WFP_STATE_AT_HASH, wfp_gen_hash());
  wr32(st_w + WFP_STATE_AT_FRAMES, st_wframes);
  wr64(st_w + WFP_STATE_AT_SUM, state_sum(st_w, st_wlen));
  last_ref[0] = last_ref[1] = 0;
  if (st_wlen <= sizeof last_state[0]) {
    /* not the copy this step resumed from */
    u8 *to = last_state[st_r == last_state[0] ? 1 : 0];
    memcpy(to, st_w, st_wlen);
    last_ref[0] = (u32)(usize)to;
    last_ref[1] = st_wlen;
  }
  wr32(r + WFP_RA_STATE, (u32)(usize)st_w);
  wr32(r + WFP_RA_STATE + 4, st_wlen);
  return r;
}

static void reset_step(void) {
  in_json = 0;
  args_at = 0;
  output = 0;
  trap_msg = 0;
  eff_kind = 0;
  eff_s0 = eff_s1 = eff_s2 = 0;
  eff_i = 0;
  st_w = 0;
  st_wlen = st_wcap = st_wframes = 0;
  st_r = 0;
  st_rend = st_rpos = 0;
  cw = 0; /* the arena was reset */
  cw_cap = 0;
  fatal_msg = 0;
  wfp_gen_set_unwind(0);
  wfp_gen_set_resuming(0);
}

static u8 *step_body(const u8 *input, u32 input_len, const u8 *state,
                     u32 state_len);

/* Both exports: the resume value is set (res_*), then the step runs. */
static u8 *step(const u8 *input, u32 input_len, const u8 *state, u32 state_len) {
  init();
  reset_step();
  wfp_gen_set_fuel(fuel_budget);
  u8 *r = step_body(input, input_len, state, state_len);
  /* fuel never goes below 0: a step yields before a unit it lacks */
  s64 left = wfp_gen_get_fuel();
  fuel_used_last = fuel_budget - (left < 0 ? 0 : left);
  return r;
}

EXPORT("run-step")
u8 *run_step(s64 ctx_id, const u8 *input, u32 input_len, const u8 *state,
             u32 state_len, u32 has_resume, const u8 *resume, u32 resume_len) {
  (void)ctx_id;
  res_typed = 0;
  res_has = has_resume & 1u;
  res_p = resume;
  res_n = res_has ? resume_len : 0;
  return step(input, input_len, state, state_len);
}

/* resume-value of wit/function.wit, its canonical-ABI flattening: the
** discriminant, then the cases' payloads joined: s64 for i64, the string's
** (pointer zero-extended to 64 bits, length) for json. */
enum { RES_NONE = 0, RES_I64 = 1, RES_JSON = 2 };

EXPORT("resume-step")
u8 *resume_step(s64 ctx_id, const u8 *input, u32 input_len, const u8 *state,
                u32 state_len, u32 kind, s64 v, u32 json_len) {
  (void)ctx_id;
  if (kind > RES_JSON) {
    /* the canonical ABI traps on a bad discriminant; this guest says why */
    init();
    reset_step();
    fuel_used_last = 0;
    return ret_trap("invalid step: unknown resume-value case");
  }
  res_typed = kind == RES_I64;
  res_i64 = v;
  res_has = kind != RES_NONE;
  /* the canonical ABI wraps the joined i64 back to the string's i32 */
  res_p = kind == RES_JSON ? (const u8 *)(usize)(u32)(u64)v : 0;
  res_n = kind == RES_JSON ? json_len : 0;
  return step(input, input_len, state, state_len);
}

static u8 *step_body(const u8 *input, u32 input_len, const u8 *state,
                     u32 state_len) {
  in_p = input;
  in_n = input_len;
  u32 fn;
  if (state_len == 0) {
    if (res_has)
      return ret_trap("invalid step: a resume value without state");
    str *in = rt_input();
    if (!in)
      return ret_str(2, trap_msg);
    const u8 *p = in->b;
    u32 n = in->len;
    if (p[0] != '{')
      return ret_trap("the invocation's input must be a JSON object");
    u32 a = jfind(p, 0, n, (const u8 *)"args", 4);
    if (a) {
      if (p[a] != '{' && p[a] != '[' && !lit(p, a, n, "null"))
        return ret_trap("the input's \"args\" must be an object or an array");
      if (p[a] != 'n')
        args_at = a + 1;
    }
    u32 f = jfind(p, 0, n, (const u8 *)"fn", 2);
    s32 k;
    if (f && p[f] != 'n') {
      if (p[f] != '"')
        return ret_trap("the input's \"fn\" must be a function name or id");
      sb *b = rt_sb_new();
      jstring(p, f, n, b);
      str *name = rt_sb_end(b);
      k = find_fn(name->b, name->len);
      if (k < 0) {
        sb *m = rt_sb_new();
        sb_cs(m, "no function '");
        rt_sb_str(m, name);
        sb_cs(m, "' in this program");
        return ret_str(2, rt_sb_end(m));
      }
    } else {
      k = wfp_gen_entry();
      if (k < 0)
        return ret_trap("no function to run: the input names none and the "
                        "program has no entry function");
    }
    fn = (u32)k;
    wfp_gen_run(fn, 0);
  } else {
    if (same_as_last(state, state_len)) {
      fn = rd32(state + WFP_STATE_AT_ENTRY);
    } else {
      const char *bad = validate_state(state, state_len, &fn);
      if (bad)
        return ret_trap(bad);
    }
    /* effects without a result resume with none; the ones with a result
    ** check for theirs (res_present) */
    st_r = state;
    st_rend = state_len;
    wfp_gen_set_resuming(1);
    wfp_gen_run(fn, 1);
  }
  u32 u = wfp_gen_get_unwind();
  if (u == UNWIND_TRAP)
    return ret_str(2, trap_msg ? trap_msg : cstr("trap"));
  if (u == UNWIND_SUSPEND) {
    wr32(st_w + WFP_STATE_AT_ENTRY, fn);
    return ret_pending();
  }
  if (!output)
    rt_out_null();
  return ret_str(0, output);
}

EXPORT("cabi_post_run-step") void cabi_post_run_step(u8 *ret) {
  (void)ret;
  heap_top = heap_start;
}

EXPORT("cabi_post_resume-step") void cabi_post_resume_step(u8 *ret) {
  (void)ret;
  heap_top = heap_start;
}
