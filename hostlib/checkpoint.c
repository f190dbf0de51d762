/*
** checkpoint.c: a pending invocation and its environment as bytes, and back
** (format: docs/state.md). The reader trusts nothing it reads: every field
** is checked against the module before anything is built, the environment
** is replaced all at once or not at all, and no file it names is created.
** Not here: running invocations (invoke.c), the environment (env.c).
*/
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host_int.h"

/* ---- the envelope ----
** "WFPC1 <SHA-256 of the body, hex>\n" then the body, or, signed,
** "WFPC1 hmac-sha256 <HMAC-SHA-256 of the body under the key, hex>\n". */

#define MAGIC "WFPC1 "
#define MAC_TAG "hmac-sha256 "
#define SUM_HDR (sizeof MAGIC - 1 + 64 + 1)
#define MAC_HDR (sizeof MAGIC - 1 + sizeof MAC_TAG - 1 + 64 + 1)

#define BODY_VERSION 3 /* 1: no max_steps; db optional. 2: no row_steps, wake,
                       ** time_limit, started, max_memory */
#define BODY_DEPTH 8   /* the body's own nesting: instances[].props[][] */
#define MAX_HANDLE 9007199254740992.0 /* 2^53: "self" is a JSON number */

int wfp_env_set_checkpoint_key(wfp_env *e, const void *key, size_t len) {
  if (!e || (key && len < 16))
    return WFP_EINVAL;
  memset(e->ckpt_key, 0, sizeof e->ckpt_key);
  e->ckpt_key_len = 0;
  if (!key)
    return WFP_OK;
  /* HMAC hashes a key longer than a block: keep what it would use */
  if (len > sizeof e->ckpt_key) {
    wfp__sha256_buf(key, len, e->ckpt_key);
    e->ckpt_key_len = 32;
  } else {
    memcpy(e->ckpt_key, key, len);
    e->ckpt_key_len = len;
  }
  return WFP_OK;
}

/* ---- writing ---- */

int wfp_invocation_checkpoint(const wfp_invocation *inv, char **out, size_t *len) {
  if (!inv || !out || !inv->pending)
    return WFP_EINVAL;
  const wfp_env *e = inv->e;
  wfp__buf b;
  wfp__buf_init(&b);
  wfp__buf_printf(&b, "{\"format\":\"wfp-checkpoint\",\"version\":%d,\"program\":",
                  BODY_VERSION);
  const char *h = inv->m->d->program_hash;
  wfp__buf_add_jstr(&b, h, strlen(h));
  wfp__buf_adds(&b, ",\"input\":");
  wfp__buf_add_jstr(&b, inv->input, inv->input_len);
  wfp__buf_printf(&b,
                  ",\"steps\":\"%llu\",\"max_steps\":\"%llu\",\"fuel\":\"%llu\","
                  "\"fuel_max\":\"%llu\",\"fuel_slice\":\"%llu\",\"state\":\"",
                  (unsigned long long)inv->steps, (unsigned long long)inv->max_steps,
                  (unsigned long long)inv->fuel_used, (unsigned long long)inv->fuel_max,
                  (unsigned long long)inv->fuel_slice);
  wfp__buf_add_base64(&b, inv->state.data, inv->state.len);
  wfp__buf_printf(&b,
                  "\",\"row_steps\":\"%llu\",\"wake\":\"%lld\",\"time_limit\":\"%llu\","
                  "\"started\":\"%lld\",\"max_memory\":\"%llu",
                  (unsigned long long)inv->row_steps,
                  (long long)(inv->effect == WFP_EFFECT_SLEEP_MS ? inv->wake_at : 0),
                  (unsigned long long)inv->time_limit, (long long)inv->started_at,
                  (unsigned long long)inv->mem_max);
  wfp__buf_printf(&b, "\",\"effect\":{\"kind\":%u,\"s0\":", inv->effect);
  wfp__buf_add_jstr(&b, inv->s0.data ? inv->s0.data : "", inv->s0.len);
  wfp__buf_adds(&b, ",\"s1\":");
  wfp__buf_add_jstr(&b, inv->s1.data ? inv->s1.data : "", inv->s1.len);
  wfp__buf_adds(&b, ",\"s2\":");
  if (inv->has_s2)
    wfp__buf_add_jstr(&b, inv->s2.data ? inv->s2.data : "", inv->s2.len);
  else
    wfp__buf_adds(&b, "null");
  wfp__buf_adds(&b, ",\"i\":\"");
  wfp__buf_add_i64(&b, inv->ival);
  wfp__buf_adds(&b, "\"},\"ctx\":[");
  for (size_t i = 0; i < e->nctx; i++) {
    if (i)
      wfp__buf_addc(&b, ',');
    wfp__buf_addc(&b, '[');
    wfp__buf_add_jstr(&b, e->ctx[i].key, strlen(e->ctx[i].key));
    wfp__buf_adds(&b, ",\"");
    wfp__buf_add_i64(&b, e->ctx[i].v);
    wfp__buf_adds(&b, "\"]");
  }
  wfp__buf_adds(&b, "],\"messages\":[");
  for (size_t i = 0; i < e->nmsgs; i++) {
    if (i)
      wfp__buf_addc(&b, ',');
    wfp__buf_addc(&b, '[');
    wfp__buf_add_jstr(&b, e->msgs[i].topic, strlen(e->msgs[i].topic));
    wfp__buf_addc(&b, ',');
    wfp__buf_add_jstr(&b, e->msgs[i].payload, strlen(e->msgs[i].payload));
    wfp__buf_addc(&b, ']');
  }
  wfp__buf_adds(&b, "],\"instances\":[");
  for (size_t i = 0; i < e->ninsts; i++) {
    const inst_ent *in = &e->insts[i];
    if (i)
      wfp__buf_addc(&b, ',');
    wfp__buf_printf(&b, "{\"handle\":\"%llu\",\"resource\":", (unsigned long long)in->handle);
    wfp__buf_add_jstr(&b, in->resource, strlen(in->resource));
    wfp__buf_adds(&b, ",\"props\":[");
    for (size_t k = 0; k < in->nprops; k++) {
      if (k)
        wfp__buf_addc(&b, ',');
      wfp__buf_addc(&b, '[');
      wfp__buf_add_jstr(&b, in->props[k].name, strlen(in->props[k].name));
      wfp__buf_printf(&b, ",%u,", in->props[k].type);
      wfp__buf_add_jstr(&b, in->props[k].json, strlen(in->props[k].json));
      wfp__buf_addc(&b, ']');
    }
    wfp__buf_adds(&b, "]}");
  }
  wfp__buf_adds(&b, "],\"db\":");
  if (e->db_path)
    wfp__buf_add_jstr(&b, e->db_path, strlen(e->db_path));
  else
    wfp__buf_adds(&b, "null");
  wfp__buf_adds(&b, "}\n");
  if (b.oom) {
    wfp__buf_free(&b);
    return WFP_ENOMEM;
  }
  uint8_t sum[32];
  char hex[65];
  if (e->ckpt_key_len)
    wfp__hmac_sha256(e->ckpt_key, e->ckpt_key_len, b.data, b.len, sum);
  else
    wfp__sha256_buf(b.data, b.len, sum);
  wfp__hex(sum, 32, hex);
  wfp__buf f;
  wfp__buf_init(&f);
  wfp__buf_adds(&f, MAGIC);
  if (e->ckpt_key_len)
    wfp__buf_adds(&f, MAC_TAG);
  wfp__buf_adds(&f, hex);
  wfp__buf_addc(&f, '\n');
  wfp__buf_add(&f, b.data, b.len);
  wfp__buf_free(&b);
  if (f.oom) {
    wfp__buf_free(&f);
    return WFP_ENOMEM;
  }
  *out = wfp__buf_take(&f, len);
  return WFP_OK;
}

/* A whole JSON text of n bytes nested at most max_depth deep (json.h):
** 0 and its tree in *out (when a is not NULL: else it is only checked),
** WFP_EINVAL with *why, WFP_ENOMEM. */
static int jparse(const char *s, size_t n, int max_depth, wfp__arena *a, wfp__jv **out,
                  const char **why, size_t *at) {
  size_t where = 0;
  int rc = a ? wfp__json_parse(s, n, (unsigned)max_depth, a, out, &where, why)
             : wfp__json_check(s, n, (unsigned)max_depth, &where, why);
  if (at)
    *at = where;
  return rc == WFP_ESYNTAX ? WFP_EINVAL : rc;
}

/* ---- reading: the tree, checked field by field ---- */

typedef struct rd {
  wfp_module *m;
  const wfp_module_desc *d;
  wfp_env *e;
  wfp_host_diag *diag;
  wfp__arena a;
  int rc;           /* the first failure */
  const char *what; /* what a corrupt input is ("invalid checkpoint" when NULL) */
} rd;

/* Records the first failure (ECORRUPT unless said otherwise) at path. */
static bool bad(rd *r, int code, const char *path, const char *fmt, ...) WFP__PRINTF(4, 5);
static bool bad(rd *r, int code, const char *path, const char *fmt, ...) {
  if (r->rc)
    return false;
  r->rc = code;
  if (r->diag) {
    memset(&r->diag->d, 0, sizeof r->diag->d);
    snprintf(r->diag->place, sizeof r->diag->place, "%s", path);
    va_list ap;
    va_start(ap, fmt);
    char why[sizeof r->diag->text - 32];
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (code == WFP_ECORRUPT)
      snprintf(r->diag->text, sizeof r->diag->text, "%s: %s",
               r->what ? r->what : "invalid checkpoint", why);
    else
      snprintf(r->diag->text, sizeof r->diag->text, "%s", why);
    r->diag->d.code = code;
    r->diag->d.path = r->diag->place;
    r->diag->d.msg = r->diag->text;
  }
  return false;
}

static bool nomem(rd *r) { return bad(r, WFP_ENOMEM, "", "out of memory"); }

/* The members of object o named in keys[] (NULL-terminated): each found
** one in got[] (else NULL); a member of another name, or one named twice,
** is refused. */
static bool members(rd *r, const wfp__jv *o, const char *path, const char *const *keys,
                    const wfp__jv **got) {
  size_t nk = 0;
  while (keys[nk])
    got[nk++] = NULL;
  if (!o || o->type != WFP__J_OBJ)
    return bad(r, WFP_ECORRUPT, path, "an object was expected");
  for (const wfp__jv *m = o->first; m; m = m->next) {
    size_t k = 0;
    while (k < nk && !(strlen(keys[k]) == m->keylen && memcmp(keys[k], m->key, m->keylen) == 0))
      k++;
    if (k == nk)
      return bad(r, WFP_ECORRUPT, path, "an unknown member \"%.*s\"", (int)(m->keylen > 64 ? 64 : m->keylen),
                 m->key);
    if (got[k])
      return bad(r, WFP_ECORRUPT, path, "the member \"%s\" appears twice", keys[k]);
    got[k] = m;
  }
  return true;
}

static bool need(rd *r, const wfp__jv *v, const char *path, int type, const char *what) {
  if (!v)
    return bad(r, WFP_ECORRUPT, path, "missing (%s)", what);
  if (v->type != type)
    return bad(r, WFP_ECORRUPT, path, "%s was expected", what);
  return true;
}

/* A string without U+0000 (what the environment keeps as C strings). */
static bool cstr(rd *r, const wfp__jv *v, const char *path, const char *what) {
  if (!need(r, v, path, WFP__J_STR, what))
    return false;
  if (memchr(v->s, 0, v->n))
    return bad(r, WFP_ECORRUPT, path, "%s contains U+0000", what);
  return true;
}

/* A counter: a decimal string of an integer from lo up. */
static bool counter(rd *r, const wfp__jv *v, const char *path, int64_t lo, int64_t *out) {
  if (!need(r, v, path, WFP__J_STR, "a decimal string"))
    return false;
  if (!wfp__parse_i64(v->s, v->n, out))
    return bad(r, WFP_ECORRUPT, path, "not a decimal 64-bit integer");
  if (*out < lo)
    return bad(r, WFP_ECORRUPT, path, "out of range (at least %lld)", (long long)lo);
  return true;
}

/* A JSON number that is an integer in [lo, hi], exactly. */
static bool small_int(rd *r, const wfp__jv *v, const char *path, int64_t lo, int64_t hi,
                      int64_t *out) {
  if (!need(r, v, path, WFP__J_NUM, "a number"))
    return false;
  if (!wfp__parse_i64(v->s, v->n, out) || *out < lo || *out > hi)
    return bad(r, WFP_ECORRUPT, path, "out of range (%lld to %lld)", (long long)lo,
               (long long)hi);
  return true;
}

/* Text that must be JSON nested at most WFP_JSON_MAX_DEPTH deep. */
static bool json_text(rd *r, const char *s, size_t n, const char *path, const char *what) {
  const char *why;
  int rc = jparse(s, n, WFP_JSON_MAX_DEPTH, NULL, NULL, &why, NULL);
  if (rc == WFP_ENOMEM)
    return nomem(r);
  if (rc)
    return bad(r, WFP_ECORRUPT, path, "%s is not JSON (%s)", what, why);
  return true;
}

/* Copies JSON text without the white space between tokens (malloc). */
static char *compact(const char *s, size_t n) {
  char *o = malloc(n + 1);
  if (!o)
    return NULL;
  size_t k = 0;
  bool in = false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (in) {
      o[k++] = c;
      if (c == '\\' && i + 1 < n)
        o[k++] = s[++i];
      else if (c == '"')
        in = false;
    } else if (c == '"') {
      in = true;
      o[k++] = c;
    } else if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
      o[k++] = c;
    }
  }
  o[k] = 0;
  return o;
}

/* A property value: JSON of type ty (malloc'd compact text in *out). */
static bool prop_value(rd *r, const wfp__jv *v, uint8_t ty, const char *path, char **out) {
  *out = NULL;
  if (!need(r, v, path, WFP__J_STR, "a string of JSON text"))
    return false;
  wfp__arena a;
  wfp__arena_init(&a);
  wfp__jv *t = NULL;
  const char *why;
  int rc = jparse(v->s, v->n, WFP_JSON_MAX_DEPTH, &a, &t, &why, NULL);
  bool ok = true;
  int64_t x;
  if (rc == WFP_ENOMEM)
    ok = nomem(r);
  else if (rc)
    ok = bad(r, WFP_ECORRUPT, path, "not JSON (%s)", why);
  else if (ty == WFP_TY_I64 && !(t->type == WFP__J_NUM && wfp__parse_i64(t->s, t->n, &x)))
    ok = bad(r, WFP_ECORRUPT, path, "not an i64, which the property's type is");
  else if (ty == WFP_TY_STR && t->type != WFP__J_STR)
    ok = bad(r, WFP_ECORRUPT, path, "not a string, which the property's type is");
  wfp__arena_free(&a);
  if (ok && !(*out = compact(v->s, v->n)))
    ok = nomem(r);
  return ok;
}

static const wfp_abi_resource *find_resource(const wfp_module_desc *d, const char *name) {
  for (uint32_t i = 0; i < d->nresources; i++)
    if (strcmp(d->resources[i].name, name) == 0)
      return &d->resources[i];
  return NULL;
}

/* ---- the state bytes' header (docs/state.md), before any step sees them:
** a resumed step trusts that the state belongs to this invocation ---- */

static uint64_t rd64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

static uint32_t rd32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The header of a checkpoint's state, its checksum (wfp_state_sum of
** wfp/abi.h) included; the frames are the guest's to check. */
static bool check_state(rd *r, const wfp__buf *st, int fn) {
  const uint8_t *s = (const uint8_t *)st->data;
  size_t n = st->len;
  /* an empty state is a first step: the invocation would start again and
  ** repeat every effect it performed */
  if (n == 0)
    return bad(r, WFP_ECORRUPT, "$.state", "empty: a pending invocation has state");
  if (n < WFP_STATE_HDR)
    return bad(r, WFP_ECORRUPT, "$.state", "shorter than the state header");
  if (n > 0x7fffffffu)
    return bad(r, WFP_ECORRUPT, "$.state", "too long");
  if (rd32(s) != WFP_STATE_MAGIC ||
      (rd32(s + WFP_STATE_AT_VERSION) & 0xffffu) != WFP_STATE_VERSION ||
      rd32(s + WFP_STATE_AT_VERSION) >> 16)
    return bad(r, WFP_ECORRUPT, "$.state", "not wfp state bytes of format version 1");
  char hash[17];
  snprintf(hash, sizeof hash, "%016llx", (unsigned long long)rd64(s + WFP_STATE_AT_HASH));
  if (strcmp(hash, r->d->program_hash) != 0)
    return bad(r, WFP_ECORRUPT, "$.state", "state of another program (%s)", hash);
  if (rd64(s + WFP_STATE_AT_SUM) != wfp_state_sum(s, (uint32_t)n))
    return bad(r, WFP_ECORRUPT, "$.state", "the state's checksum does not match");
  if (rd32(s + WFP_STATE_AT_FRAMES) == 0)
    return bad(r, WFP_ECORRUPT, "$.state", "state without frames");
  if (rd32(s + WFP_STATE_AT_ENTRY) != (uint32_t)fn)
    return bad(r, WFP_ECORRUPT, "$.state",
               "state of another function than the input's (function %u, not %d)",
               rd32(s + WFP_STATE_AT_ENTRY), fn);
  return true;
}

/* The function the input runs, and its instance: the input is a JSON
** object; "fn" names a function of the module (or the module has an
** entry); "self", when given, is a handle. */
static bool check_input(rd *r, const wfp__jv *in, int *fn, uint64_t *self) {
  if (!cstr(r, in, "$.input", "a string"))
    return false;
  wfp__jv *t = NULL;
  const char *why;
  int rc = jparse(in->s, in->n, WFP_JSON_MAX_DEPTH, &r->a, &t, &why, NULL);
  if (rc == WFP_ENOMEM)
    return nomem(r);
  if (rc)
    return bad(r, WFP_ECORRUPT, "$.input", "not JSON (%s)", why);
  if (t->type != WFP__J_OBJ)
    return bad(r, WFP_ECORRUPT, "$.input", "not a JSON object");
  const wfp__jv *fv = NULL, *sv = NULL;
  for (const wfp__jv *m = t->first; m; m = m->next) {
    if (m->keylen == 2 && memcmp(m->key, "fn", 2) == 0)
      fv = m;
    else if (m->keylen == 4 && memcmp(m->key, "self", 4) == 0)
      sv = m;
  }
  *fn = -1;
  if (fv) {
    if (fv->type != WFP__J_STR || memchr(fv->s, 0, fv->n) ||
        (*fn = wfp_module_find(r->m, fv->s)) < 0)
      return bad(r, WFP_ECORRUPT, "$.input", "\"fn\" names no function of this module");
  } else if (!r->d->entry || (*fn = wfp_module_find(r->m, r->d->entry)) < 0) {
    return bad(r, WFP_ECORRUPT, "$.input", "no \"fn\", and the module has no entry");
  }
  *self = 0;
  if (sv && sv->type != WFP__J_NULL) {
    /* as wfp_invocation_new reads it: a number of integral value (1.0 and
    ** 1e0 too), range first, then the conversion */
    char num[64];
    double h = 0;
    if (sv->type == WFP__J_NUM && sv->n < sizeof num) {
      memcpy(num, sv->s, sv->n);
      num[sv->n] = 0;
      h = strtod(num, NULL);
    }
    if (!(h >= 1 && h <= MAX_HANDLE) || h != (double)(uint64_t)h)
      return bad(r, WFP_ECORRUPT, "$.input", "\"self\" is not a handle");
    *self = (uint64_t)h;
  }
  return true;
}

/* The pending effect and its operands, as the guest reports them. */
typedef struct effect {
  int64_t kind, ival;
  const wfp__jv *s0, *s1, *s2; /* s2 NULL for null */
} effect;

static bool check_effect(rd *r, const wfp__jv *v, int fn, uint64_t self, const wfp_env *n,
                         effect *ef) {
  static const char *const keys[] = {"kind", "s0", "s1", "s2", "i", NULL};
  const wfp__jv *g[5];
  if (!members(r, v, "$.effect", keys, g) ||
      !small_int(r, g[0], "$.effect.kind", 0, WFP_EFFECT_COUNT - 1, &ef->kind) ||
      !need(r, g[1], "$.effect.s0", WFP__J_STR, "a string") ||
      !need(r, g[2], "$.effect.s1", WFP__J_STR, "a string") ||
      !counter(r, g[4], "$.effect.i", INT64_MIN, &ef->ival))
    return false;
  if (!g[3] || (g[3]->type != WFP__J_NULL && g[3]->type != WFP__J_STR))
    return bad(r, WFP_ECORRUPT, "$.effect.s2", "a string or null was expected");
  ef->s0 = g[1];
  ef->s1 = g[2];
  ef->s2 = g[3]->type == WFP__J_STR ? g[3] : NULL;
  /* which operands each effect has (abi.h, wfp_abi_step): the others are
  ** empty */
  int k = (int)ef->kind;
  bool has_s0 = k != WFP_EFFECT_SLEEP_MS && k != WFP_EFFECT_YIELD;
  bool has_s1 = k == WFP_EFFECT_MSG_SEND || k == WFP_EFFECT_DB_QUERY ||
                k == WFP_EFFECT_SELF_SET;
  bool has_i = k == WFP_EFFECT_CTX_SET_I64 || k == WFP_EFFECT_SLEEP_MS;
  if (!has_s0 && ef->s0->n)
    return bad(r, WFP_ECORRUPT, "$.effect.s0", "this effect has no such operand");
  if (!has_s1 && ef->s1->n)
    return bad(r, WFP_ECORRUPT, "$.effect.s1", "this effect has no such operand");
  if (ef->s2 && k != WFP_EFFECT_DB_QUERY)
    return bad(r, WFP_ECORRUPT, "$.effect.s2", "this effect has no such operand");
  if (!has_i && ef->ival)
    return bad(r, WFP_ECORRUPT, "$.effect.i", "this effect has no such operand");
  switch (k) {
  case WFP_EFFECT_MSG_SEND:
    return json_text(r, ef->s1->s, ef->s1->n, "$.effect.s1", "the message payload");
  case WFP_EFFECT_DB_QUERY: {
    wfp__jv *p = NULL;
    const char *why;
    int rc = jparse(ef->s1->s, ef->s1->n, WFP_JSON_MAX_DEPTH, &r->a, &p, &why, NULL);
    if (rc == WFP_ENOMEM)
      return nomem(r);
    if (rc || p->type != WFP__J_ARR)
      return bad(r, WFP_ECORRUPT, "$.effect.s1", "the query parameters are not a JSON array");
    if (!ef->s2)
      return true;
    /* each: {"fn": "<a function's id>", "args": [captured values]} */
    wfp__jv *t = NULL;
    rc = jparse(ef->s2->s, ef->s2->n, WFP_JSON_MAX_DEPTH, &r->a, &t, &why, NULL);
    if (rc == WFP_ENOMEM)
      return nomem(r);
    static const char *const fkeys[] = {"fn", "args", NULL};
    const wfp__jv *f[2];
    if (rc || !members(r, t, "$.effect.s2", fkeys, f) || !f[0] || f[0]->type != WFP__J_STR ||
        !f[1] || f[1]->type != WFP__J_ARR)
      return bad(r, WFP_ECORRUPT, "$.effect.s2", "not a function value");
    int fi = memchr(f[0]->s, 0, f[0]->n) ? -1 : wfp_module_find(r->m, f[0]->s);
    if (fi < 0 || strcmp(r->d->funcs[fi].id, f[0]->s) != 0)
      return bad(r, WFP_ECORRUPT, "$.effect.s2", "names no function of this module");
    if (f[1]->count != r->d->funcs[fi].ncaptures)
      return bad(r, WFP_ECORRUPT, "$.effect.s2",
                 "a function value whose captures do not fit its function");
    return true;
  }
  case WFP_EFFECT_SELF_GET:
  case WFP_EFFECT_SELF_SET: {
    /* a method reading or writing a property of its own resource, on an
    ** instance of it */
    const wfp_abi_func *f = &r->d->funcs[fn];
    const wfp_abi_resource *res = f->resource ? find_resource(r->d, f->resource) : NULL;
    if (!res)
      return bad(r, WFP_ECORRUPT, "$.effect.kind", "self_get or self_set outside a method");
    const inst_ent *in = wfp__env_instance(n, self);
    if (!self || !in || strcmp(in->resource, res->name) != 0)
      return bad(r, WFP_ECORRUPT, "$.input",
                 "\"self\" is no instance of %s in the checkpoint", res->name);
    uint32_t p = 0;
    while (p < res->nprops && !(strlen(res->prop_names[p]) == ef->s0->n &&
                                memcmp(res->prop_names[p], ef->s0->s, ef->s0->n) == 0))
      p++;
    if (p == res->nprops)
      return bad(r, WFP_ECORRUPT, "$.effect.s0", "%s has no such property", res->name);
    if (k == WFP_EFFECT_SELF_GET)
      return true;
    char *c = NULL;
    bool ok = prop_value(r, ef->s1, res->prop_types[p], "$.effect.s1", &c);
    free(c);
    return ok;
  }
  default:
    return true;
  }
}

static bool read_ctx(rd *r, const wfp__jv *v, wfp_env *n) {
  if (!need(r, v, "$.ctx", WFP__J_ARR, "an array"))
    return false;
  size_t i = 0;
  char path[64];
  for (const wfp__jv *it = v->first; it; it = it->next, i++) {
    snprintf(path, sizeof path, "$.ctx[%zu]", i);
    int64_t x;
    if (!need(r, it, path, WFP__J_ARR, "a [key, value] pair"))
      return false;
    if (it->count != 2)
      return bad(r, WFP_ECORRUPT, path, "a [key, value] pair was expected");
    if (!cstr(r, it->first, path, "the key") || !counter(r, it->first->next, path, INT64_MIN, &x))
      return false;
    if (wfp__env_ctx_getn(n, it->first->s, it->first->n, &x) == WFP_OK)
      return bad(r, WFP_ECORRUPT, path, "a key set twice");
    if (wfp__env_ctx_setn(n, it->first->s, it->first->n, x))
      return nomem(r);
  }
  return true;
}

static bool read_messages(rd *r, const wfp__jv *v, wfp_env *n) {
  if (!need(r, v, "$.messages", WFP__J_ARR, "an array"))
    return false;
  size_t i = 0;
  char path[64];
  for (const wfp__jv *it = v->first; it; it = it->next, i++) {
    snprintf(path, sizeof path, "$.messages[%zu]", i);
    if (!need(r, it, path, WFP__J_ARR, "a [topic, payload] pair"))
      return false;
    if (it->count != 2)
      return bad(r, WFP_ECORRUPT, path, "a [topic, payload] pair was expected");
    const wfp__jv *t = it->first, *p = t->next;
    if (!cstr(r, t, path, "the topic") || !cstr(r, p, path, "the payload") ||
        !json_text(r, p->s, p->n, path, "the payload"))
      return false;
    if (wfp__env_msg_add(n, t->s, t->n, p->s, p->n))
      return nomem(r);
  }
  return true;
}

static bool read_instances(rd *r, const wfp__jv *v, wfp_env *n) {
  if (!need(r, v, "$.instances", WFP__J_ARR, "an array"))
    return false;
  size_t i = 0;
  char path[96];
  for (const wfp__jv *it = v->first; it; it = it->next, i++) {
    snprintf(path, sizeof path, "$.instances[%zu]", i);
    static const char *const keys[] = {"handle", "resource", "props", NULL};
    const wfp__jv *g[3];
    int64_t h;
    if (!members(r, it, path, keys, g) || !counter(r, g[0], path, 1, &h) ||
        !cstr(r, g[1], path, "the resource") || !need(r, g[2], path, WFP__J_ARR, "props"))
      return false;
    if ((double)h > MAX_HANDLE)
      return bad(r, WFP_ECORRUPT, path, "a handle out of range");
    if (wfp__env_instance(n, (uint64_t)h))
      return bad(r, WFP_ECORRUPT, path, "a handle used twice");
    const wfp_abi_resource *res = find_resource(r->d, g[1]->s);
    if (!res)
      return bad(r, WFP_ECORRUPT, path, "this module has no resource '%.64s'", g[1]->s);
    /* exactly the resource's properties, in its order, of its types */
    if (g[2]->count != res->nprops)
      return bad(r, WFP_ECORRUPT, path, "not the properties of %s", res->name);
    inst_ent *in = wfp__env_instance_add(n, (uint64_t)h, res->name);
    if (!in)
      return nomem(r);
    uint32_t k = 0;
    for (const wfp__jv *p = g[2]->first; p; p = p->next, k++) {
      snprintf(path, sizeof path, "$.instances[%zu].props[%u]", i, k);
      int64_t ty;
      if (!need(r, p, path, WFP__J_ARR, "a [name, type, value] triple"))
        return false;
      if (p->count != 3)
        return bad(r, WFP_ECORRUPT, path, "a [name, type, value] triple was expected");
      const wfp__jv *pn = p->first, *pt = pn->next, *pv = pt->next;
      if (!cstr(r, pn, path, "the name") || !small_int(r, pt, path, 0, 255, &ty))
        return false;
      if (strcmp(pn->s, res->prop_names[k]) != 0 || ty != res->prop_types[k])
        return bad(r, WFP_ECORRUPT, path, "not property %u of %s (%s, type %u)", k,
                   res->name, res->prop_names[k], res->prop_types[k]);
      char *c;
      if (!prop_value(r, pv, (uint8_t)ty, path, &c))
        return false;
      int rc = wfp__env_prop_add(in, res->prop_names[k], (uint8_t)ty, c);
      free(c);
      if (rc)
        return nomem(r);
    }
  }
  return true;
}

/* Moves what an invocation changes (context, messages, instances) from b
** into a, and a's into b: the restore's all-at-once replacement. The
** database and the key stay where they are. */
static void swap_state(wfp_env *a, wfp_env *b) {
#define SWAP(f)                                                                \
  do {                                                                         \
    __typeof__(a->f) t_ = a->f;                                                \
    a->f = b->f;                                                               \
    b->f = t_;                                                                 \
  } while (0)
  SWAP(insts);
  SWAP(ninsts);
  SWAP(insts_cap);
  SWAP(next_handle);
  SWAP(ctx);
  SWAP(nctx);
  SWAP(ctx_cap);
  SWAP(index);
  SWAP(index_cap);
  SWAP(msgs);
  SWAP(nmsgs);
  SWAP(msgs_cap);
#undef SWAP
}

/* Checks the envelope; the body in *body, *blen. */
static bool envelope(rd *r, const wfp_env *e, const char *data, size_t len,
                     const char **body, size_t *blen) {
  size_t m = sizeof MAGIC - 1;
  if (len < m || memcmp(data, MAGIC, m) != 0)
    return bad(r, WFP_ECORRUPT, "header", "not a wfp checkpoint");
  bool mac = len >= m + sizeof MAC_TAG - 1 &&
             memcmp(data + m, MAC_TAG, sizeof MAC_TAG - 1) == 0;
  size_t hl = mac ? MAC_HDR : SUM_HDR;
  if (len < hl || data[hl - 1] != '\n')
    return bad(r, WFP_ECORRUPT, "header", "truncated");
  const char *hex = data + hl - 65;
  *body = data + hl;
  *blen = len - hl;
  uint8_t sum[32];
  char want[65];
  if (e->ckpt_key_len && !mac)
    return bad(r, WFP_ECORRUPT, "header",
               "it carries no MAC, and this host takes only checkpoints signed with "
               "its key");
  if (!e->ckpt_key_len && mac)
    return bad(r, WFP_ECORRUPT, "header",
               "it is signed (HMAC-SHA-256): resume it with its key (wfp-host "
               "--checkpoint-key)");
  if (mac)
    wfp__hmac_sha256(e->ckpt_key, e->ckpt_key_len, *body, *blen, sum);
  else
    wfp__sha256_buf(*body, *blen, sum);
  wfp__hex(sum, 32, want);
  if (!wfp__equal_ct(want, hex, 64))
    return bad(r, WFP_ECORRUPT, "header",
               mac ? "MAC mismatch (tampered with, or signed with another key)"
                   : "checksum mismatch (truncated or tampered with)");
  return true;
}

int wfp_invocation_restore(wfp_module *m, wfp_env *e, const char *data, size_t len,
                           wfp_invocation **out, wfp_host_diag *diag) {
  rd r = {m, m ? m->d : NULL, e, diag, {0}, 0, NULL};
  if (!m || !e || !out || (!data && len)) {
    bad(&r, WFP_EINVAL, "", "invalid argument");
    return r.rc;
  }
  *out = NULL;
  wfp__arena_init(&r.a);
  wfp_env *n = NULL; /* the environment being built, aside */
  wfp_invocation *inv = NULL;
  const char *body = NULL;
  size_t blen = 0;
  wfp__jv *top = NULL;
  if (!envelope(&r, e, data ? data : "", len, &body, &blen))
    goto out;
  const char *why;
  size_t at = 0;
  int rc = jparse(body, blen, BODY_DEPTH, &r.a, &top, &why, &at);
  if (rc == WFP_ENOMEM) {
    nomem(&r);
    goto out;
  }
  if (rc) {
    bad(&r, WFP_ECORRUPT, "body", "malformed JSON at byte %zu of the body: %s", at, why);
    goto out;
  }
  static const char *const keys[] = {"format",     "version", "program",  "input",
                                     "steps",      "fuel",    "fuel_max", "fuel_slice",
                                     "state",      "effect",  "ctx",      "messages",
                                     "instances",  "db",      "max_steps", "row_steps",
                                     "wake",       "time_limit", "started", "max_memory",
                                     NULL};
  enum { FORMAT, VERSION, PROGRAM, INPUT, STEPS, FUEL, FUEL_MAX, FUEL_SLICE, STATE,
         EFFECT, CTX, MESSAGES, INSTANCES, DB, MAX_STEPS, ROW_STEPS, WAKE, TIME_LIMIT,
         STARTED, MAX_MEMORY, NKEYS };
  const wfp__jv *g[NKEYS];
  int64_t version, steps, max_steps = 0, fuel, fuel_max, fuel_slice;
  int64_t row_steps = 0, wake = 0, time_limit = 0, started = 0, max_memory = 0;
  if (!members(&r, top, "$", keys, g))
    goto out;
  if (!need(&r, g[FORMAT], "$.format", WFP__J_STR, "a string") ||
      strcmp(g[FORMAT]->s, "wfp-checkpoint") != 0) {
    bad(&r, WFP_ECORRUPT, "$.format", "not a wfp checkpoint");
    goto out;
  }
  if (!small_int(&r, g[VERSION], "$.version", 1, BODY_VERSION, &version))
    goto out;
  /* version 1 had no step limit and an optional db; version 3 added the
  ** rows' steps, the wake time of a sleep, the time and memory limits */
  bool v3 = g[ROW_STEPS] && g[WAKE] && g[TIME_LIMIT] && g[STARTED] && g[MAX_MEMORY];
  bool none3 = !g[ROW_STEPS] && !g[WAKE] && !g[TIME_LIMIT] && !g[STARTED] && !g[MAX_MEMORY];
  if (version == 1   ? g[MAX_STEPS] != NULL || !none3
      : version == 2 ? !g[MAX_STEPS] || !g[DB] || !none3
                     : !g[MAX_STEPS] || !g[DB] || !v3) {
    bad(&r, WFP_ECORRUPT, "$", "the members do not fit format version %lld",
        (long long)version);
    goto out;
  }
  if (!cstr(&r, g[PROGRAM], "$.program", "a string"))
    goto out;
  if (strcmp(g[PROGRAM]->s, m->d->program_hash) != 0) {
    bad(&r, WFP_EFOREIGN, "$.program",
        "the checkpoint was written for program %.16s; this module is program %s",
        g[PROGRAM]->s, m->d->program_hash);
    goto out;
  }
  int fn = -1;
  uint64_t self = 0;
  if (!check_input(&r, g[INPUT], &fn, &self) ||
      !counter(&r, g[STEPS], "$.steps", 1, &steps) ||
      (g[MAX_STEPS] && !counter(&r, g[MAX_STEPS], "$.max_steps", 0, &max_steps)) ||
      !counter(&r, g[FUEL], "$.fuel", 0, &fuel) ||
      !counter(&r, g[FUEL_MAX], "$.fuel_max", 0, &fuel_max) ||
      !counter(&r, g[FUEL_SLICE], "$.fuel_slice", 0, &fuel_slice) ||
      (v3 && (!counter(&r, g[ROW_STEPS], "$.row_steps", 0, &row_steps) ||
              !counter(&r, g[WAKE], "$.wake", 0, &wake) ||
              !counter(&r, g[TIME_LIMIT], "$.time_limit", 0, &time_limit) ||
              !counter(&r, g[STARTED], "$.started", 0, &started) ||
              !counter(&r, g[MAX_MEMORY], "$.max_memory", 0, &max_memory))))
    goto out;
  /* a pending step was taken within the limits: at most max_steps steps
  ** (its rows' counted), at most fuel_max fuel */
  if (max_steps && (steps > max_steps || row_steps > max_steps - steps)) {
    bad(&r, WFP_ECORRUPT, "$.steps", "more steps than the limit ($.max_steps)");
    goto out;
  }
  if (fuel_max && fuel > fuel_max) {
    bad(&r, WFP_ECORRUPT, "$.fuel", "more fuel used than the limit ($.fuel_max)");
    goto out;
  }
  const wfp__jv *db = g[DB];
  if (db && db->type != WFP__J_NULL) {
    /* an absolute path, as the writer records it: never a URI, never
    ** ":memory:", never relative to wherever the host runs */
    if (!cstr(&r, db, "$.db", "a string or null"))
      goto out;
    if (db->s[0] != '/') {
      bad(&r, WFP_ECORRUPT, "$.db", "not an absolute path");
      goto out;
    }
  }
  if (!need(&r, g[STATE], "$.state", WFP__J_STR, "a base64 string"))
    goto out;
  /* everything is built aside and replaces e's only when all of it holds */
  if (!(n = wfp_env_new())) {
    nomem(&r);
    goto out;
  }
  if (!read_ctx(&r, g[CTX], n) || !read_messages(&r, g[MESSAGES], n) ||
      !read_instances(&r, g[INSTANCES], n))
    goto out;
  effect ef;
  if (!check_effect(&r, g[EFFECT], fn, self, n, &ef))
    goto out;
  if (wake && ef.kind != WFP_EFFECT_SLEEP_MS) {
    bad(&r, WFP_ECORRUPT, "$.wake", "a wake time, and the effect is no sleep_ms");
    goto out;
  }
  const wfp__jv *in = g[INPUT];
  if ((rc = wfp_invocation_new(m, e, in->s, in->n, &inv)) != 0) {
    if (rc == WFP_ENOMEM)
      nomem(&r);
    else
      bad(&r, WFP_ECORRUPT, "$.input", "not an input this module takes");
    goto out;
  }
  if (!wfp__base64_decode(g[STATE]->s, g[STATE]->n, &inv->state)) {
    if (inv->state.oom)
      nomem(&r);
    else
      bad(&r, WFP_ECORRUPT, "$.state", "not base64");
    goto out;
  }
  if (!check_state(&r, &inv->state, fn))
    goto out;
  inv->effect = (uint32_t)ef.kind;
  wfp__buf_add(&inv->s0, ef.s0->s, ef.s0->n);
  wfp__buf_add(&inv->s1, ef.s1->s, ef.s1->n);
  inv->has_s2 = ef.s2 != NULL;
  if (ef.s2)
    wfp__buf_add(&inv->s2, ef.s2->s, ef.s2->n);
  if (inv->s0.oom || inv->s1.oom || inv->s2.oom) {
    nomem(&r);
    goto out;
  }
  inv->ival = ef.ival;
  inv->steps = (uint64_t)steps;
  inv->max_steps = (uint64_t)max_steps;
  inv->fuel_used = (uint64_t)fuel;
  inv->fuel_max = (uint64_t)fuel_max;
  inv->fuel_slice = (uint64_t)fuel_slice;
  inv->row_steps = (uint64_t)row_steps;
  inv->wake_at = wake;
  inv->time_limit = (uint64_t)time_limit;
  inv->started_at = started;
  inv->mem_max = (uint64_t)max_memory;
  inv->pending = true;
  /* its messages so far are the ones of the checkpoint */
  for (size_t i = 0; i < n->nmsgs; i++)
    if (wfp__inv_msg_add(inv, n->msgs[i].topic, strlen(n->msgs[i].topic), n->msgs[i].payload,
                         strlen(n->msgs[i].payload))) {
      nomem(&r);
      goto out;
    }
  /* the database the invocation ran on, unless the host chose one: opened
  ** only if it exists, for a checkpoint names no file to create */
  if (db && db->type == WFP__J_STR && !e->db) {
    char err[512];
    rc = wfp__env_open_db(n, db->s, false, err, sizeof err);
    if (rc) {
      if (rc == WFP_ENOMEM)
        nomem(&r);
      else
        bad(&r, rc, "$.db", "%s (a checkpoint opens only an existing database)", err);
      goto out;
    }
  }
  /* all of it holds: replace e's state at once */
  swap_state(e, n);
  if (n->db) {
    e->db = n->db;
    e->db_path = n->db_path;
    n->db = NULL;
    n->db_path = NULL;
  }
out:
  wfp_env_free(n);
  wfp__arena_free(&r.a);
  if (r.rc) {
    wfp_invocation_free(inv);
    return r.rc;
  }
  *out = inv;
  return WFP_OK;
}

/* ---- an invocation from what a store kept (wfp_invocation_revive) ---- */

/* A string operand: present only where the effect has it, and JSON where
** it is JSON. */
static bool revive_operand(rd *r, const char *p, size_t n, bool has, bool json,
                           const char *path) {
  if (!has)
    return n == 0 || bad(r, WFP_ECORRUPT, path, "this effect has no such operand");
  if (n && !p)
    return bad(r, WFP_ECORRUPT, path, "missing");
  return !json || json_text(r, p ? p : "", n, path, "the operand");
}

int wfp_invocation_revive(wfp_module *m, wfp_env *e, const wfp_saved_invocation *s,
                          wfp_invocation **out, wfp_host_diag *diag) {
  rd r = {m, m ? m->d : NULL, e, diag, {0}, 0, "invalid saved invocation"};
  if (!m || !e || !s || !out || s->size < sizeof(wfp_saved_invocation) ||
      (!s->input && s->input_len) || (!s->state && s->state_len)) {
    bad(&r, WFP_EINVAL, "", "invalid argument");
    return r.rc;
  }
  *out = NULL;
  wfp__arena_init(&r.a);
  wfp_invocation *inv = NULL;
  /* the input, as a checkpoint's: its function and instance */
  wfp__jv in;
  memset(&in, 0, sizeof in);
  in.type = WFP__J_STR;
  in.s = s->input ? s->input : "";
  in.n = s->input_len;
  int fn = -1;
  uint64_t self = 0;
  if (!check_input(&r, &in, &fn, &self))
    goto out;
  int rc = wfp_invocation_new(m, e, in.s, in.n, &inv);
  if (rc) {
    if (rc == WFP_ENOMEM)
      nomem(&r);
    else
      bad(&r, WFP_ECORRUPT, "input", "not an input this module takes");
    goto out;
  }
  inv->steps = s->steps;
  inv->fuel_used = s->fuel;
  if (!s->state_len) /* no step taken: it starts from the beginning */
    goto out;
  wfp__set_bytes(&inv->state, s->state, s->state_len);
  if (inv->state.oom) {
    nomem(&r);
    goto out;
  }
  if (!check_state(&r, &inv->state, fn))
    goto out;
  if (!s->steps) {
    bad(&r, WFP_ECORRUPT, "steps", "state bytes, and no step taken");
    goto out;
  }
  if (s->effect >= 0) {
    int k = s->effect;
    if (k >= WFP_EFFECT_COUNT) {
      bad(&r, WFP_ECORRUPT, "effect", "no such effect (%d)", k);
      goto out;
    }
    bool has_s0 = k != WFP_EFFECT_SLEEP_MS && k != WFP_EFFECT_YIELD;
    bool has_s1 = k == WFP_EFFECT_MSG_SEND || k == WFP_EFFECT_DB_QUERY ||
                  k == WFP_EFFECT_SELF_SET;
    bool has_i = k == WFP_EFFECT_CTX_SET_I64 || k == WFP_EFFECT_SLEEP_MS;
    if (!revive_operand(&r, s->key, s->key_len, has_s0, false, "effect.key") ||
        !revive_operand(&r, s->json, s->json_len, has_s1, true, "effect.json") ||
        (s->each && !revive_operand(&r, s->each, s->each_len, k == WFP_EFFECT_DB_QUERY, true,
                                    "effect.each")))
      goto out;
    if (!has_i && s->i64) {
      bad(&r, WFP_ECORRUPT, "effect.i64", "this effect has no such operand");
      goto out;
    }
    if (s->wake_at && k != WFP_EFFECT_SLEEP_MS) {
      bad(&r, WFP_ECORRUPT, "effect.wake_at", "a wake time, and the effect is no sleep_ms");
      goto out;
    }
    inv->effect = (uint32_t)k;
    wfp__set_bytes(&inv->s0, s->key, s->key_len);
    wfp__set_bytes(&inv->s1, s->json, s->json_len);
    inv->has_s2 = s->each != NULL;
    wfp__set_bytes(&inv->s2, s->each, s->each ? s->each_len : 0);
    if (inv->s0.oom || inv->s1.oom || inv->s2.oom) {
      nomem(&r);
      goto out;
    }
    inv->ival = s->i64;
    inv->wake_at = s->wake_at;
    inv->pending = true;
    goto out;
  }
  if (s->has_resume) {
    if (!s->resume && s->resume_len) {
      bad(&r, WFP_ECORRUPT, "resume", "missing");
      goto out;
    }
    if (!json_text(&r, s->resume ? s->resume : "", s->resume_len, "resume",
                   "the resume value"))
      goto out;
    if (wfp__resume_json(inv, s->resume ? s->resume : "", s->resume_len)) {
      nomem(&r);
      goto out;
    }
  }
out:
  wfp__arena_free(&r.a);
  if (r.rc) {
    wfp_invocation_free(inv);
    return r.rc;
  }
  *out = inv;
  return WFP_OK;
}
