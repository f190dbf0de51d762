/* native_stepper.c: the baseline of the effect round-trip benchmark, a .so that
** exports the same wfp_module_descriptor as a compiled program and runs
** bench/loop.json's work by hand; it is not a wfp program and is never shipped. */
/*
** Per step it does what the compiled guest does for the same loop, so that
** the difference is the cost of the Wasm translation and its canonical-ABI
** copies, not of the protocol: validate the state header (magic, version,
** program hash, a checksum of the same kind as the guest's) and its one
** frame, decode the live values (n, s, i), parse the resume text
** {"i64":N}, add, encode the state with its checksum, and return pending
** ctx-get-i64("k"); at the end it outputs {"result":s}. It reads the host's
** buffers in place: native code has no linear memory to copy them into.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wfp/abi.h"

#define EXPORT __attribute__((visibility("default")))

/* Not the hash of any real program: a resumed wfp state is refused here. */
#define PROGRAM_HASH_HEX "6e617469766531aa"
#define PROGRAM_HASH 0x6e617469766531aaull

/* The guest's layout (codegen/guest/rt.c): a 32-byte header
** "wfps" u16 version u16 flags u64 hash u64 checksum u32 entry u32 frames,
** then one frame: payload, u32 payload length, u32 function, u32 point. */
enum { HDR = 32, NVALS = 3, PAYLOAD = 8 * NVALS, STATE_LEN = HDR + PAYLOAD + 12 };
enum { STATE_VERSION = 1 };
/* resume points: waiting for ctx "n", waiting for ctx "k" */
enum { AT_N = 0, AT_K = 1, NPOINTS = 2 };

typedef struct inst {
  uint8_t state[STATE_LEN]; /* the last pending step's state bytes */
  char out[48];             /* the last done step's output */
} inst;

static uint32_t rd32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}
static uint64_t rd64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}
static void wr32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void wr64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

/* The guest's state checksum (state_sum in codegen/guest/rt.c), word for
** word, so that the baseline pays the same hashing: one xor and multiply
** per 8 bytes of everything but the checksum field (bytes 16..24). */
static uint64_t state_sum(const uint8_t *p, uint32_t n) {
  const uint64_t K = 0x9E3779B97F4A7C15ull;
  uint64_t h = (0x243F6A8885A308D3ull ^ (uint64_t)n) * K;
  h = (h ^ rd64(p)) * K;
  h = (h ^ rd64(p + 8)) * K;
  uint32_t i = 24;
  for (; i + 8u <= n; i += 8u)
    h = (h ^ rd64(p + i)) * K;
  if (i < n)
    h = (h ^ rd64(p + n - 8u)) * K;
  h ^= h >> 32;
  h *= K;
  return h ^ (h >> 29);
}

/* ---- the first step's input: a small JSON validator ---- */

static size_t ws(const char *p, size_t i, size_t n) {
  while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
    i++;
  return i;
}

/* Index after the JSON string at p[i] == '"', or 0. Escapes are skipped,
** not decoded: only the key "fn" and its value are compared. */
static size_t jstring(const char *p, size_t i, size_t n) {
  for (i++; i < n; i++) {
    unsigned char c = (unsigned char)p[i];
    if (c == '"')
      return i + 1;
    if (c < 0x20)
      return 0;
    if (c == '\\')
      i++;
  }
  return 0;
}

/* Index after one value at p[i] (and its trailing white space), or 0. */
static size_t jvalue(const char *p, size_t i, size_t n, int depth) {
  i = ws(p, i, n);
  if (i >= n || depth > 64)
    return 0;
  char c = p[i];
  if (c == '"') {
    i = jstring(p, i, n);
  } else if (c == '{' || c == '[') {
    char close = c == '{' ? '}' : ']';
    i = ws(p, i + 1, n);
    if (i < n && p[i] == close) {
      i++;
    } else {
      for (;;) {
        if (c == '{') {
          if (i >= n || p[i] != '"' || !(i = jstring(p, i, n)))
            return 0;
          i = ws(p, i, n);
          if (i >= n || p[i] != ':')
            return 0;
          i++;
        }
        i = jvalue(p, i, n, depth + 1);
        if (!i || i >= n)
          return 0;
        if (p[i] == close) {
          i++;
          break;
        }
        if (p[i] != ',')
          return 0;
        i++;
      }
    }
  } else if (c == 't' || c == 'n' || c == 'f') {
    const char *w = c == 't' ? "true" : c == 'n' ? "null" : "false";
    size_t wl = strlen(w);
    if (n - i < wl || memcmp(p + i, w, wl) != 0)
      return 0;
    i += wl;
  } else {
    size_t s = i;
    if (p[i] == '-')
      i++;
    while (i < n && ((p[i] >= '0' && p[i] <= '9') || p[i] == '.' || p[i] == 'e' ||
                     p[i] == 'E' || p[i] == '+' || p[i] == '-'))
      i++;
    if (i == s || (i == s + 1 && p[s] == '-'))
      return 0;
  }
  return i ? ws(p, i, n) : 0;
}

/* NULL when the input is an object whose "fn" is absent, null or "main". */
static const char *check_input(const char *p, size_t n) {
  if (n == 0)
    return NULL;
  if (jvalue(p, 0, n, 0) != n)
    return "the invocation's input is not valid JSON";
  size_t i = ws(p, 0, n);
  if (p[i] != '{')
    return "the invocation's input must be a JSON object";
  i = ws(p, i + 1, n);
  while (i < n && p[i] == '"') {
    size_t k = jstring(p, i, n);
    int is_fn = k == i + 4 && memcmp(p + i, "\"fn\"", 4) == 0;
    i = ws(p, k, n) + 1; /* past ':' */
    size_t v = ws(p, i, n);
    size_t e = jvalue(p, v, n, 0);
    if (is_fn && p[v] != 'n' &&
        !(e >= v + 6 && memcmp(p + v, "\"main\"", 6) == 0 && ws(p, v + 6, n) == e))
      return "no such function in this program";
    i = e < n && p[e] == ',' ? ws(p, e + 1, n) : n;
  }
  return NULL;
}

/* ---- the resume value ---- */

/* {"i64":N} -> *v; 0 when it is another text. */
static int parse_resume(const char *p, uint32_t n, int64_t *v) {
  if (n < 9 || memcmp(p, "{\"i64\":", 7) != 0 || p[n - 1] != '}')
    return 0;
  uint32_t i = 7, end = n - 1;
  int neg = 0;
  if (p[i] == '-') {
    neg = 1;
    i++;
  }
  if (i >= end)
    return 0;
  uint64_t u = 0, lim = neg ? 9223372036854775808ull : 9223372036854775807ull;
  for (; i < end; i++) {
    if (p[i] < '0' || p[i] > '9')
      return 0;
    uint32_t d = (uint32_t)(p[i] - '0');
    if (u > (lim - d) / 10u)
      return 0;
    u = u * 10u + d;
  }
  *v = neg ? (int64_t)(0ull - u) : (int64_t)u;
  return 1;
}

/* ---- the step ---- */

static const char *validate(const uint8_t *s, uint32_t n, uint32_t *point) {
  if (n < HDR)
    return "invalid state: truncated header";
  if (memcmp(s, "wfps", 4) != 0)
    return "invalid state: not wfp state bytes";
  if ((rd32(s + 4) & 0xFFFFu) != STATE_VERSION || (rd32(s + 4) >> 16))
    return "invalid state: unsupported format version";
  if (rd64(s + 8) != PROGRAM_HASH)
    return "invalid state: it belongs to another program";
  if (rd64(s + 16) != state_sum(s, n))
    return "invalid state: checksum mismatch (truncated or tampered)";
  if (rd32(s + 24) != 0 || rd32(s + 28) != 1)
    return "invalid state: unknown entry function or frame count";
  if (n != STATE_LEN)
    return "invalid state: frame size does not match its values";
  uint32_t t = n - 12u;
  if (rd32(s + t) != PAYLOAD || rd32(s + t + 4) != 0 || rd32(s + t + 8) >= NPOINTS)
    return "invalid state: malformed frame";
  *point = rd32(s + t + 8);
  return NULL;
}

static void encode(inst *I, uint32_t point, int64_t n, int64_t s, int64_t i) {
  uint8_t *st = I->state;
  memcpy(st, "wfps", 4);
  wr32(st + 4, STATE_VERSION);
  wr64(st + 8, PROGRAM_HASH);
  wr32(st + 24, 0);
  wr32(st + 28, 1);
  wr64(st + HDR, (uint64_t)n);
  wr64(st + HDR + 8, (uint64_t)s);
  wr64(st + HDR + 16, (uint64_t)i);
  wr32(st + HDR + PAYLOAD, PAYLOAD);
  wr32(st + HDR + PAYLOAD + 4, 0);
  wr32(st + HDR + PAYLOAD + 8, point);
  wr64(st + 16, state_sum(st, STATE_LEN));
}

static void set_text(wfp_abi_bytes *b, const char *s) {
  b->ptr = (const uint8_t *)s;
  b->len = (uint32_t)strlen(s);
}

static int trap(wfp_abi_step *out, const char *msg) {
  out->kind = WFP_STEP_TRAP;
  set_text(&out->text, msg);
  return 0;
}

static int pending_ctx(inst *I, wfp_abi_step *out, const char *key, uint32_t point,
                       int64_t n, int64_t s, int64_t i) {
  encode(I, point, n, s, i);
  out->kind = WFP_STEP_PENDING;
  out->effect = WFP_EFFECT_CTX_GET_I64;
  out->s0.ptr = (const uint8_t *)key;
  out->s0.len = 1;
  out->state.ptr = I->state;
  out->state.len = STATE_LEN;
  return 0;
}

/* i64 to decimal, as the guest's rt_sb_i64 does */
static size_t put_i64(char *p, int64_t v) {
  char tmp[24];
  size_t n = 0, k = 0;
  uint64_t u = v < 0 ? 0ull - (uint64_t)v : (uint64_t)v;
  do {
    tmp[n++] = (char)('0' + u % 10u);
    u /= 10u;
  } while (u);
  if (v < 0)
    p[k++] = '-';
  while (n)
    p[k++] = tmp[--n];
  return k;
}

static int run_step(void *vi, uint64_t ctx, const char *input, uint32_t input_len,
                    const uint8_t *state, uint32_t state_len, int has_resume,
                    const char *resume, uint32_t resume_len, wfp_abi_step *out) {
  inst *I = vi;
  (void)ctx;
  memset(out, 0, sizeof *out);
  if (state_len == 0) {
    if (has_resume)
      return trap(out, "invalid step: a resume value without state");
    const char *bad = check_input(input, input_len);
    if (bad)
      return trap(out, bad);
    return pending_ctx(I, out, "n", AT_N, 0, 0, 0);
  }
  uint32_t point;
  const char *bad = validate(state, state_len, &point);
  if (bad)
    return trap(out, bad);
  if (!has_resume)
    return trap(out, "invalid step: resuming ctx_get_i64 without a resume value");
  int64_t v;
  if (!parse_resume(resume, resume_len, &v))
    return trap(out, resume_len > 9 && memcmp(resume, "{\"error\":", 9) == 0
                         ? "the host reported an error performing the effect"
                         : "invalid resume value for ctx_get_i64");
  int64_t n = (int64_t)rd64(state + HDR), s = (int64_t)rd64(state + HDR + 8),
          i = (int64_t)rd64(state + HDR + 16);
  if (point == AT_N) {
    n = v;
  } else {
    /* the IR's i64 arithmetic wraps */
    s = (int64_t)((uint64_t)s + (uint64_t)v);
    i = (int64_t)((uint64_t)i + 1u);
  }
  if (i < n)
    return pending_ctx(I, out, "k", AT_K, n, s, i);
  size_t k = 0;
  memcpy(I->out, "{\"result\":", 10);
  k = 10 + put_i64(I->out + 10, s);
  I->out[k++] = '}';
  I->out[k] = 0;
  out->kind = WFP_STEP_DONE;
  out->text.ptr = (const uint8_t *)I->out;
  out->text.len = (uint32_t)k;
  return 0;
}

static void *inst_new(void) { return calloc(1, sizeof(inst)); }
static void inst_free(void *p) { free(p); }
/* nothing to free: the result lives in the instance until the next step */
static void post_return(void *p) { (void)p; }
static const char *fatal_message(void *p) {
  (void)p;
  return "";
}
/* fuel: this loop needs no preemption; the host may still set a budget */
static void set_fuel(void *p, int64_t budget) {
  (void)p;
  (void)budget;
}
static int64_t fuel_used(void *p) {
  (void)p;
  return 1; /* one iteration per step, as the compiled loop counts it */
}

static size_t memory_bytes(void *p) {
  (void)p;
  return sizeof(inst);
}

static const char ir[] = "{\"native\":\"bench/loop.json, by hand\"}";

static const wfp_abi_func funcs[] = {
    {"main", "6e617469766531aa", 0, 0, NULL, NULL, WFP_TY_I64, NULL, NULL}};

/* A descriptor of the first ABI-1 size: no wasm2c runtime layout to
** declare, and an instantiate that cannot trap; the appended fields stay
** unread (abi.h, WFP_DESC_HAS). */
static const wfp_module_desc desc = {
    WFP_ABI_VERSION, WFP_MODULE_DESC_V1_SIZE, "native-baseline", PROGRAM_HASH_HEX,
    ir, sizeof ir - 1, "main", 1, funcs, 0, NULL,
    inst_new, inst_free, run_step, post_return, fatal_message, memory_bytes,
    set_fuel, fuel_used, 0, NULL, NULL, NULL};

EXPORT const wfp_module_desc *wfp_module_descriptor(void);
EXPORT const wfp_module_desc *wfp_module_descriptor(void) { return &desc; }
