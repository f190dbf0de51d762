/*
** parse.c: program.json text -> AST, with structural checks (ops, fields and
** their JSON types, literal ranges, UTF-8). Names, scopes and types are the
** checker's (check.c). cJSON parses; numbers are re-read from the source text
** so that integers are exact over the whole i64 range.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ir_ast.h"

/* ---- number tokens: cJSON keeps doubles, we need the digits ---- */

typedef struct numtok {
  const cJSON *node;
  const char *s;
  size_t n;
} numtok;

typedef struct P {
  wfp_program *p;
  const char *text;
  size_t len;
  numtok *nums;
  size_t nnums;
  wfp_func *fn; /* function being parsed */
  int lambda_count; /* lambdas so far in the current top-level function */
} P;

static int line_col(const char *text, size_t off, int *col) {
  int line = 1;
  size_t ls = 0;
  for (size_t i = 0; i < off; i++)
    if (text[i] == '\n') {
      line++;
      ls = i + 1;
    }
  /* columns count characters, not bytes: skip UTF-8 continuation bytes */
  int c = 1;
  for (size_t i = ls; i < off; i++)
    if (((unsigned char)text[i] & 0xC0) != 0x80)
      c++;
  *col = c;
  return line;
}

/* ---- a strict JSON reader in front of cJSON ----
** cJSON accepts some texts JSON forbids (01, 1., raw control characters in
** strings) and reports errors one byte off or at the last byte. This scan
** checks the text against RFC 8259 first, with the exact place of the first
** fault, refuses \u0000 (cJSON would cut the string there) and invalid
** UTF-8, and records every number token in document order for exact i64
** literals. cJSON then builds the tree of a text known to be valid. */

#define JSON_MAX_DEPTH 1000

typedef struct jscan {
  const char *t;
  size_t n, i;
  size_t *nums; /* pairs: offset, length */
  size_t nnums, cap;
  const char *err;
  size_t err_at;
  char buf[96];
} jscan;

static bool jfail(jscan *s, size_t at, const char *msg) {
  if (!s->err) {
    s->err = msg;
    s->err_at = at;
  }
  return false;
}

static void jws(jscan *s) {
  while (s->i < s->n && (s->t[s->i] == ' ' || s->t[s->i] == '\t' ||
                         s->t[s->i] == '\n' || s->t[s->i] == '\r'))
    s->i++;
}

static bool jexpect_char(jscan *s, const char *what) {
  if (s->i >= s->n)
    return jfail(s, s->n, "unexpected end of input");
  unsigned char c = (unsigned char)s->t[s->i];
  if (c >= 0x20 && c < 0x7f)
    snprintf(s->buf, sizeof s->buf, "expected %s, found '%c'", what, c);
  else
    snprintf(s->buf, sizeof s->buf, "expected %s, found byte 0x%02x", what, c);
  return jfail(s, s->i, s->buf);
}

static int jhex(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

static bool jstring_scan(jscan *s) {
  size_t open = s->i++;
  size_t run = s->i;
  while (s->i < s->n) {
    unsigned char c = (unsigned char)s->t[s->i];
    if (c == '"') {
      if (!wfp__utf8_valid(s->t + run, s->i - run))
        return jfail(s, run, "invalid UTF-8 in a string");
      s->i++;
      return true;
    }
    if (c < 0x20) {
      snprintf(s->buf, sizeof s->buf,
               "control character U+%04X in a string (write it escaped)", c);
      return jfail(s, s->i, s->buf);
    }
    if (c != '\\') {
      s->i++;
      continue;
    }
    if (!wfp__utf8_valid(s->t + run, s->i - run))
      return jfail(s, run, "invalid UTF-8 in a string");
    size_t esc = s->i;
    if (s->i + 1 >= s->n)
      break;
    char e = s->t[s->i + 1];
    s->i += 2;
    if (e == 'u') {
      int v = 0;
      for (int k = 0; k < 4; k++) {
        int h = s->i + (size_t)k < s->n ? jhex(s->t[s->i + (size_t)k]) : -1;
        if (h < 0)
          return jfail(s, esc, "invalid \\u escape (four hex digits expected)");
        v = v * 16 + h;
      }
      s->i += 4;
      if (v == 0)
        return jfail(s, esc, "strings may not contain U+0000 (\\u0000)");
      if (v >= 0xDC00 && v <= 0xDFFF)
        return jfail(s, esc, "invalid \\u escape: a low surrogate without a high one");
      if (v >= 0xD800 && v <= 0xDBFF) {
        int lo = 0;
        bool ok = s->i + 6 <= s->n && s->t[s->i] == '\\' && s->t[s->i + 1] == 'u';
        for (int k = 0; ok && k < 4; k++) {
          int h = jhex(s->t[s->i + 2 + (size_t)k]);
          ok = h >= 0;
          lo = lo * 16 + h;
        }
        if (!ok || lo < 0xDC00 || lo > 0xDFFF)
          return jfail(s, esc, "invalid \\u escape: a high surrogate without a low one");
        s->i += 6;
      }
    } else if (!strchr("\"\\/bfnrt", e) || e == 0) {
      snprintf(s->buf, sizeof s->buf, "invalid escape '\\%c' in a string",
               (unsigned char)e >= 0x20 && (unsigned char)e < 0x7f ? e : '?');
      return jfail(s, esc, s->buf);
    }
    run = s->i;
  }
  return jfail(s, open, "unterminated string");
}

static bool jnumber_scan(jscan *s) {
  size_t st = s->i;
  const char *t = s->t;
  size_t i = s->i, n = s->n;
  if (i < n && t[i] == '-')
    i++;
  if (i < n && t[i] == '0') {
    i++;
  } else if (i < n && t[i] >= '1' && t[i] <= '9') {
    while (i < n && t[i] >= '0' && t[i] <= '9')
      i++;
  } else {
    goto bad;
  }
  if (i < n && t[i] == '.') {
    i++;
    if (i >= n || t[i] < '0' || t[i] > '9')
      goto bad;
    while (i < n && t[i] >= '0' && t[i] <= '9')
      i++;
  }
  if (i < n && (t[i] == 'e' || t[i] == 'E')) {
    i++;
    if (i < n && (t[i] == '+' || t[i] == '-'))
      i++;
    if (i >= n || t[i] < '0' || t[i] > '9')
      goto bad;
    while (i < n && t[i] >= '0' && t[i] <= '9')
      i++;
  }
  /* a number is followed by a delimiter, not by more of a token */
  if (i < n && ((t[i] >= '0' && t[i] <= '9') || t[i] == '.' || t[i] == 'e' ||
                t[i] == 'E' || t[i] == '+' || t[i] == '-'))
    goto bad;
  if (s->nnums == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 64;
    size_t *nv = realloc(s->nums, cap * 2 * sizeof *nv);
    if (!nv)
      return jfail(s, st, "out of memory");
    s->nums = nv;
    s->cap = cap;
  }
  s->nums[2 * s->nnums] = st;
  s->nums[2 * s->nnums + 1] = i - st;
  s->nnums++;
  s->i = i;
  return true;
bad : {
  size_t e = st;
  while (e < n && (strchr("+-.eE", t[e]) || (t[e] >= '0' && t[e] <= '9')) &&
         e - st < 40)
    e++;
  snprintf(s->buf, sizeof s->buf, "invalid number '%.*s'", (int)(e - st), t + st);
  return jfail(s, st, s->buf);
}
}

/* One value, containers iteratively (an explicit stack: no recursion). */
static bool jvalue_scan(jscan *s) {
  char stack[JSON_MAX_DEPTH + 1];
  int depth = 0;
  for (;;) {
    /* a value */
    jws(s);
    if (s->i >= s->n)
      return jfail(s, s->n, "unexpected end of input");
    char c = s->t[s->i];
    bool opened = false;
    if (c == '{' || c == '[') {
      if (depth == JSON_MAX_DEPTH)
        return jfail(s, s->i, "JSON nests deeper than 1000 levels");
      stack[depth++] = c;
      s->i++;
      jws(s);
      char close = c == '{' ? '}' : ']';
      if (s->i < s->n && s->t[s->i] == close) {
        s->i++;
        depth--;
      } else {
        opened = true;
      }
    } else if (c == '"') {
      if (!jstring_scan(s))
        return false;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      if (!jnumber_scan(s))
        return false;
    } else if (s->n - s->i >= 4 && strncmp(s->t + s->i, "true", 4) == 0) {
      s->i += 4;
    } else if (s->n - s->i >= 5 && strncmp(s->t + s->i, "false", 5) == 0) {
      s->i += 5;
    } else if (s->n - s->i >= 4 && strncmp(s->t + s->i, "null", 4) == 0) {
      s->i += 4;
    } else {
      return jexpect_char(s, "a value");
    }
    /* after it: a key of the object just opened, or what follows */
    for (;;) {
      if (opened && stack[depth - 1] == '{') {
        /* the first key */
      } else if (!opened) {
        if (depth == 0)
          return true;
        jws(s);
        char close = stack[depth - 1] == '{' ? '}' : ']';
        if (s->i < s->n && s->t[s->i] == close) {
          s->i++;
          depth--;
          continue;
        }
        if (s->i >= s->n || s->t[s->i] != ',')
          return jexpect_char(s, close == '}' ? "',' or '}'" : "',' or ']'");
        s->i++;
        jws(s);
        if (stack[depth - 1] == '[')
          break; /* the next element */
      } else {
        break; /* the first element of an array */
      }
      /* an object key and its colon */
      jws(s);
      if (s->i >= s->n || s->t[s->i] != '"')
        return jexpect_char(s, "a key (a string)");
      if (!jstring_scan(s))
        return false;
      jws(s);
      if (s->i >= s->n || s->t[s->i] != ':')
        return jexpect_char(s, "':'");
      s->i++;
      break;
    }
  }
}

/* Validates the whole text; on success the number tokens are in
** *offs (pairs) and *count. Reports a syntax diagnostic otherwise. */
static int scan_tokens(P *ps, size_t **offs, size_t *count) {
  jscan s;
  memset(&s, 0, sizeof s);
  s.t = ps->text;
  s.n = ps->len;
  bool ok = jvalue_scan(&s);
  if (ok) {
    jws(&s);
    if (s.i < s.n)
      ok = jfail(&s, s.i, "unexpected data after the JSON value");
  }
  if (!ok) {
    free(s.nums);
    int col, line = line_col(ps->text, s.err_at, &col);
    if (strcmp(s.err, "out of memory") == 0)
      return WFP_ENOMEM;
    return wfp__diag_at(ps->p, WFP_ESYNTAX, line, col, "malformed JSON: %s", s.err);
  }
  *offs = s.nums;
  *count = s.nnums;
  return WFP_OK;
}

static void collect_numbers(const cJSON *j, const cJSON **out, size_t *k,
                            size_t max) {
  for (; j; j = j->next) {
    if (cJSON_IsNumber(j)) {
      if (*k < max)
        out[*k] = j;
      (*k)++;
    }
    if (j->child)
      collect_numbers(j->child, out, k, max);
  }
}

static size_t count_numbers(const cJSON *j) {
  size_t k = 0;
  for (; j; j = j->next)
    k += (size_t)cJSON_IsNumber(j) + (j->child ? count_numbers(j->child) : 0);
  return k;
}

static int numcmp(const void *a, const void *b) {
  const numtok *x = a, *y = b;
  return x->node < y->node ? -1 : x->node > y->node;
}

static int build_numtab(P *ps, const cJSON *root, const size_t *offs, size_t cnt) {
  size_t nn = count_numbers(root);
  if (nn != cnt) {
    return wfp__diag(ps->p, WFP_EINTERNAL, "$",
                     "internal error: %zu number tokens, %zu number values", cnt,
                     nn);
  }
  const cJSON **nodes = malloc((nn ? nn : 1) * sizeof *nodes);
  ps->nums = malloc((nn ? nn : 1) * sizeof *ps->nums);
  if (!nodes || !ps->nums) {
    free(nodes);
    return WFP_ENOMEM;
  }
  size_t k = 0;
  collect_numbers(root, nodes, &k, nn);
  for (size_t i = 0; i < nn; i++) {
    ps->nums[i].node = nodes[i];
    ps->nums[i].s = ps->text + offs[2 * i];
    ps->nums[i].n = offs[2 * i + 1];
  }
  ps->nnums = nn;
  qsort(ps->nums, nn, sizeof *ps->nums, numcmp);
  free(nodes);
  return WFP_OK;
}

static const numtok *num_text(P *ps, const cJSON *node) {
  numtok key = {node, NULL, 0};
  return bsearch(&key, ps->nums, ps->nnums, sizeof key, numcmp);
}

/* ---- paths and messages ---- */

bool wfp__ident_ok(const char *s) {
  if (!s || !*s)
    return false;
  for (const char *c = s; *c; c++) {
    bool alpha = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                 *c == '_' || *c == '$';
    bool digit = *c >= '0' && *c <= '9';
    if (!alpha && !(digit && c != s))
      return false;
  }
  return true;
}

/* Paths are never NULL: out of memory, a path is "" and the load ends
** with WFP_ENOMEM (p->arena.oom, p->oom). */
static const char *kpath(P *ps, const char *base, const char *key) {
  const char *r;
  if (wfp__ident_ok(key)) {
    r = wfp__arena_printf(&ps->p->arena, "%s.%s", base, key);
  } else {
    wfp__buf b;
    wfp__buf_init(&b);
    wfp__buf_adds(&b, base);
    wfp__buf_addc(&b, '[');
    wfp__buf_add_jstr(&b, key, strlen(key));
    wfp__buf_addc(&b, ']');
    ps->p->oom |= b.oom;
    r = b.oom ? NULL : wfp__arena_strndup(&ps->p->arena, b.data ? b.data : "", b.len);
    wfp__buf_free(&b);
  }
  return r ? r : "";
}

static const char *ipath(P *ps, const char *base, int i) {
  const char *r = wfp__arena_printf(&ps->p->arena, "%s[%d]", base, i);
  return r ? r : "";
}

static const char *jtype(const cJSON *j) {
  if (!j)
    return "nothing";
  if (cJSON_IsString(j))
    return "a string";
  if (cJSON_IsNumber(j))
    return "a number";
  if (cJSON_IsObject(j))
    return "an object";
  if (cJSON_IsArray(j))
    return "an array";
  if (cJSON_IsBool(j))
    return "a boolean";
  if (cJSON_IsNull(j))
    return "null";
  return "an invalid value";
}

static size_t edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 32 || lb > 32)
    return 99;
  size_t d[33][33];
  for (size_t i = 0; i <= la; i++)
    d[i][0] = i;
  for (size_t j = 0; j <= lb; j++)
    d[0][j] = j;
  for (size_t i = 1; i <= la; i++)
    for (size_t j = 1; j <= lb; j++) {
      size_t c = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
      if (d[i - 1][j] + 1 < c)
        c = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < c)
        c = d[i][j - 1] + 1;
      d[i][j] = c;
    }
  return d[la][lb];
}

static const char *const stmt_names[] = {
#define X(e, s) s,
    WFP_STMT_OPS(X)
#undef X
};
static const char *const expr_names[] = {
#define X(e, s) s,
    WFP_EXPR_OPS(X)
#undef X
};

const char *wfp__stmt_op_name(wfp_stmt_op op) {
  return op < WFP_ST__COUNT ? stmt_names[op] : "?";
}
const char *wfp__expr_op_name(wfp_expr_op op) {
  return op < WFP_OP__COUNT ? expr_names[op] : "?";
}

bool wfp__expr_op_is_effect(wfp_expr_op op) {
  switch (op) {
  case WFP_OP_CTX_GET_I64:
  case WFP_OP_CTX_SET_I64:
  case WFP_OP_MSG_SEND:
  case WFP_OP_SLEEP_MS:
  case WFP_OP_DB_QUERY:
  case WFP_OP_SELF_GET:
  case WFP_OP_SELF_SET:
    return true;
  default:
    return false;
  }
}

/* A suggestion for a misspelt op: the closest name within distance 2. */
static const char *suggest(const char *op) {
  const char *best = NULL;
  size_t bd = 3;
  for (int i = 0; i < WFP_ST__COUNT + WFP_OP__COUNT; i++) {
    const char *n = i < WFP_ST__COUNT ? stmt_names[i] : expr_names[i - WFP_ST__COUNT];
    size_t d = edit_distance(op, n);
    /* ties: prefer the name that starts like the misspelling */
    if (d < bd || (d == bd && best && strncmp(op, n, 2) == 0 &&
                   strncmp(op, best, 2) != 0)) {
      bd = d;
      best = n;
    }
  }
  return best;
}

/* ---- field access with diagnostics ---- */

/* Refuses keys not in allowed (NULL-terminated) and duplicate keys. */
static void check_keys(P *ps, const cJSON *obj, const char *path,
                       const char *const *allowed, const char *what) {
  for (const cJSON *c = obj->child; c; c = c->next) {
    const char *k = c->string ? c->string : "";
    bool ok = false;
    for (const char *const *a = allowed; *a; a++)
      if (strcmp(*a, k) == 0) {
        ok = true;
        break;
      }
    if (!ok) {
      const char *best = NULL;
      size_t bd = 3;
      for (const char *const *a = allowed; *a; a++) {
        size_t d = edit_distance(k, *a);
        if (d < bd) {
          bd = d;
          best = *a;
        }
      }
      if (best)
        wfp__diag(ps->p, WFP_EPROGRAM, kpath(ps, path, k),
                  "unknown field '%s' in %s (did you mean '%s'?)", k, what,
                  best);
      else
        wfp__diag(ps->p, WFP_EPROGRAM, kpath(ps, path, k),
                  "unknown field '%s' in %s", k, what);
      continue;
    }
    for (const cJSON *d = obj->child; d != c; d = d->next)
      if (d->string && strcmp(d->string, k) == 0) {
        wfp__diag(ps->p, WFP_EPROGRAM, kpath(ps, path, k),
                  "duplicate field '%s' in %s", k, what);
        break;
      }
  }
}

static const cJSON *get(const cJSON *obj, const char *key) {
  return cJSON_GetObjectItemCaseSensitive(obj, key);
}

/* A required (or optional, when req is false) string field. Returns NULL
** when absent or mistyped (reported). *len gets the byte length. */
static const char *str_field(P *ps, const cJSON *obj, const char *path,
                             const char *key, const char *what, bool req,
                             size_t *len) {
  const cJSON *v = get(obj, key);
  if (!v) {
    if (req)
      wfp__diag(ps->p, WFP_EPROGRAM, path, "missing field '%s' in %s", key,
                what);
    return NULL;
  }
  if (!cJSON_IsString(v)) {
    wfp__diag(ps->p, WFP_EPROGRAM, kpath(ps, path, key),
              "field '%s' of %s must be a string, not %s", key, what, jtype(v));
    return NULL;
  }
  size_t n = strlen(v->valuestring);
  if (!wfp__utf8_valid(v->valuestring, n)) {
    wfp__diag(ps->p, WFP_EPROGRAM, kpath(ps, path, key),
              "field '%s' of %s is not valid UTF-8", key, what);
    return NULL;
  }
  if (len)
    *len = n;
  return v->valuestring;
}

/* A name field: a non-empty identifier. */
static const char *name_field(P *ps, const cJSON *obj, const char *path,
                              const char *key, const char *what) {
  const char *s = str_field(ps, obj, path, key, what, true, NULL);
  if (!s)
    return NULL;
  if (!wfp__ident_ok(s)) {
    wfp__diag(ps->p, WFP_EPROGRAM, kpath(ps, path, key),
              "'%s' is not a valid name (names are identifiers: a letter, '_' "
              "or '$', then letters, digits, '_' or '$')",
              s);
    return NULL;
  }
  return wfp__arena_strdup(&ps->p->arena, s);
}

static const cJSON *arr_field(P *ps, const cJSON *obj, const char *path,
                              const char *key, const char *what, bool req) {
  const cJSON *v = get(obj, key);
  if (!v) {
    if (req)
      wfp__diag(ps->p, WFP_EPROGRAM, path, "missing field '%s' in %s", key,
                what);
    return NULL;
  }
  if (!cJSON_IsArray(v)) {
    wfp__diag(ps->p, WFP_EPROGRAM, kpath(ps, path, key),
              "field '%s' of %s must be an array, not %s", key, what, jtype(v));
    return NULL;
  }
  return v;
}

/* ---- JSON values (lit_json, templates) ---- */

/* Copies a JSON value into a tree that keeps every number as written (raw
** text), after checking its strings are UTF-8. NULL on a reported fault. */
static cJSON *copy_value(P *ps, const cJSON *v, const char *path) {
  cJSON *r = NULL;
  if (cJSON_IsNumber(v)) {
    const numtok *t = num_text(ps, v);
    if (!t) {
      wfp__diag(ps->p, WFP_EINTERNAL, path, "internal error: number not found");
      return NULL;
    }
    char *tmp = wfp__arena_strndup(&ps->p->arena, t->s, t->n);
    r = tmp ? cJSON_CreateRaw(tmp) : NULL;
    ps->p->oom |= !r;
  } else if (cJSON_IsString(v)) {
    if (!wfp__utf8_valid(v->valuestring, strlen(v->valuestring))) {
      wfp__diag(ps->p, WFP_EPROGRAM, path, "string is not valid UTF-8");
      return NULL;
    }
    r = cJSON_CreateString(v->valuestring);
    ps->p->oom |= !r;
  } else if (cJSON_IsBool(v)) {
    r = cJSON_CreateBool(cJSON_IsTrue(v));
    ps->p->oom |= !r;
  } else if (cJSON_IsNull(v)) {
    r = cJSON_CreateNull();
    ps->p->oom |= !r;
  } else if (cJSON_IsArray(v) || cJSON_IsObject(v)) {
    bool obj = cJSON_IsObject(v);
    r = obj ? cJSON_CreateObject() : cJSON_CreateArray();
    if (!r) {
      ps->p->oom = true;
      return NULL;
    }
    r->type |= WFP_JSON_KEEP_ORDER;
    int i = 0;
    for (const cJSON *c = v->child; c; c = c->next, i++) {
      const char *cp = obj ? kpath(ps, path, c->string) : ipath(ps, path, i);
      if (obj) {
        if (!wfp__utf8_valid(c->string, strlen(c->string))) {
          wfp__diag(ps->p, WFP_EPROGRAM, cp, "key is not valid UTF-8");
          cJSON_Delete(r);
          return NULL;
        }
        for (const cJSON *d = v->child; d != c; d = d->next)
          if (strcmp(d->string, c->string) == 0) {
            wfp__diag(ps->p, WFP_EPROGRAM, cp, "duplicate key '%s' in a JSON object",
                      c->string);
            cJSON_Delete(r);
            return NULL;
          }
      }
      cJSON *cc = copy_value(ps, c, cp);
      if (!cc) {
        cJSON_Delete(r);
        return NULL;
      }
      /* an object's key is copied: that can fail */
      if (obj ? !cJSON_AddItemToObject(r, c->string, cc) : !cJSON_AddItemToArray(r, cc)) {
        ps->p->oom = true;
        cJSON_Delete(cc);
        cJSON_Delete(r);
        return NULL;
      }
    }
  }
  return r;
}

static wfp_expr *parse_expr(P *ps, const cJSON *j, const char *path);
static void parse_block(P *ps, const cJSON *arr, const char *path,
                        wfp_block *out);

static bool tpl_has_hole(const cJSON *v) {
  if (cJSON_IsObject(v) && get(v, "op"))
    return true;
  for (const cJSON *c = v->child; c; c = c->next)
    if ((cJSON_IsObject(c) || cJSON_IsArray(c)) && tpl_has_hole(c))
      return true;
  return false;
}

static wfp_jtpl *parse_tpl(P *ps, const cJSON *v, const char *path) {
  wfp_jtpl *t = wfp__arena_alloc(&ps->p->arena, sizeof *t);
  if (!t)
    return NULL;
  if (cJSON_IsObject(v) && get(v, "op")) {
    t->kind = WFP_J_HOLE;
    t->hole = parse_expr(ps, v, path);
    return t;
  }
  if ((cJSON_IsObject(v) || cJSON_IsArray(v)) && tpl_has_hole(v)) {
    bool obj = cJSON_IsObject(v);
    t->kind = obj ? WFP_J_OBJ : WFP_J_ARR;
    t->n = cJSON_GetArraySize(v);
    t->items = wfp__arena_alloc(&ps->p->arena, sizeof *t->items * (size_t)(t->n + 1));
    t->keys = wfp__arena_alloc(&ps->p->arena, sizeof *t->keys * (size_t)(t->n + 1));
    t->keylens = wfp__arena_alloc(&ps->p->arena, sizeof *t->keylens * (size_t)(t->n + 1));
    if (!t->items || !t->keys || !t->keylens)
      return NULL;
    int i = 0;
    for (const cJSON *c = v->child; c; c = c->next, i++) {
      const char *cp = obj ? kpath(ps, path, c->string) : ipath(ps, path, i);
      if (obj) {
        t->keys[i] = c->string;
        t->keylens[i] = strlen(c->string);
        if (!wfp__utf8_valid(c->string, t->keylens[i]))
          wfp__diag(ps->p, WFP_EPROGRAM, cp, "key is not valid UTF-8");
        for (const cJSON *d = v->child; d != c; d = d->next)
          if (strcmp(d->string, c->string) == 0) {
            wfp__diag(ps->p, WFP_EPROGRAM, cp,
                      "duplicate key '%s' in a JSON object", c->string);
            break;
          }
      }
      t->items[i] = parse_tpl(ps, c, cp);
      if (!t->items[i])
        return NULL;
    }
    return t;
  }
  t->kind = WFP_J_LIT;
  cJSON *copy = copy_value(ps, v, path);
  if (!copy)
    return t; /* reported; text stays NULL */
  wfp__buf b;
  wfp__buf_init(&b);
  wfp__json_write(&b, copy, false, -1, 0);
  cJSON_Delete(copy);
  ps->p->oom |= b.oom;
  t->text = wfp__arena_strndup(&ps->p->arena, b.data ? b.data : "null",
                               b.data ? b.len : 4);
  wfp__buf_free(&b);
  return t;
}

/* ---- expressions ---- */

static wfp_expr *new_expr(P *ps, wfp_expr_op op, const char *path) {
  wfp_expr *e = wfp__arena_alloc(&ps->p->arena, sizeof *e);
  if (e) {
    e->op = op;
    e->path = path;
  }
  return e;
}

/* An expression that failed to parse: typed ERROR so nothing cascades. */
static wfp_expr *bad_expr(P *ps, const char *path) {
  wfp_expr *e = new_expr(ps, WFP_OP_LIT_I64, path);
  if (e) {
    e->type = wfp__type_new(ps->p, WFP_T_ERROR);
  }
  return e;
}

static wfp_expr *sub_expr(P *ps, const cJSON *obj, const char *path,
                          const char *key, const char *what) {
  const cJSON *v = get(obj, key);
  if (!v) {
    wfp__diag(ps->p, WFP_EPROGRAM, path, "missing field '%s' in %s", key, what);
    return bad_expr(ps, path);
  }
  return parse_expr(ps, v, kpath(ps, path, key));
}

static void expr_list(P *ps, const cJSON *obj, const char *path, const char *key,
                      const char *what, bool req, wfp_expr ***out, int *n) {
  *out = NULL;
  *n = 0;
  const cJSON *a = arr_field(ps, obj, path, key, what, req);
  if (!a)
    return;
  const char *ap = kpath(ps, path, key);
  int cnt = cJSON_GetArraySize(a);
  *out = wfp__arena_alloc(&ps->p->arena, sizeof **out * (size_t)(cnt + 1));
  if (!*out)
    return;
  int i = 0;
  for (const cJSON *c = a->child; c; c = c->next, i++)
    (*out)[i] = parse_expr(ps, c, ipath(ps, ap, i));
  *n = cnt;
}

static void parse_params(P *ps, const cJSON *obj, const char *path,
                         wfp_func *f, const char *what);

static wfp_func *new_func(P *ps) {
  wfp_program *p = ps->p;
  wfp_func *f = wfp__arena_alloc(&p->arena, sizeof *f);
  if (!f)
    return NULL;
  if (p->nfuncs == p->funcs_cap) {
    int cap = p->funcs_cap ? p->funcs_cap * 2 : 16;
    wfp_func **nf = realloc(p->funcs, sizeof *nf * (size_t)cap);
    if (!nf) {
      p->oom = true;
      return NULL;
    }
    p->funcs = nf;
    p->funcs_cap = cap;
  }
  p->funcs[p->nfuncs++] = f;
  f->parsed_ok = true;
  return f;
}

static int64_t lit_i64(P *ps, const cJSON *v, const char *path, bool *ok) {
  *ok = false;
  if (!v) {
    wfp__diag(ps->p, WFP_EPROGRAM, path, "missing field 'value' in 'lit_i64'");
    return 0;
  }
  const char *vp = kpath(ps, path, "value");
  int64_t r = 0;
  if (cJSON_IsNumber(v)) {
    const numtok *t = num_text(ps, v);
    if (!t)
      return 0;
    for (size_t i = 0; i < t->n; i++)
      if (t->s[i] == '.' || t->s[i] == 'e' || t->s[i] == 'E') {
        wfp__diag(ps->p, WFP_EPROGRAM, vp,
                  "lit_i64 value %.*s is not an integer", (int)t->n, t->s);
        return 0;
      }
    if (!wfp__parse_i64(t->s, t->n, &r)) {
      if (t->n == 2 && t->s[0] == '-' && t->s[1] == '0') {
        r = 0;
      } else {
        wfp__diag(ps->p, WFP_EPROGRAM, vp,
                  "lit_i64 value %.*s is out of the i64 range", (int)t->n, t->s);
        return 0;
      }
    }
  } else if (cJSON_IsString(v)) {
    const char *s = v->valuestring;
    if (strcmp(s, "-0") == 0) {
      r = 0; /* as the JSON number -0 */
    } else if (!wfp__parse_i64(s, strlen(s), &r)) {
      const char *d = *s == '-' ? s + 1 : s;
      bool digits = *d != 0;
      for (const char *c = d; *c; c++)
        if (*c < '0' || *c > '9')
          digits = false;
      if (digits && d[0] == '0' && d[1])
        wfp__diag(ps->p, WFP_EPROGRAM, vp,
                  "lit_i64 value \"%s\" is not a decimal integer (no leading zeros)", s);
      else if (digits)
        wfp__diag(ps->p, WFP_EPROGRAM, vp,
                  "lit_i64 value \"%s\" is out of the i64 range", s);
      else
        wfp__diag(ps->p, WFP_EPROGRAM, vp,
                  "lit_i64 value \"%s\" is not a decimal integer", s);
      return 0;
    }
  } else {
    wfp__diag(ps->p, WFP_EPROGRAM, vp,
              "lit_i64 value must be an integer or a decimal string, not %s",
              jtype(v));
    return 0;
  }
  *ok = true;
  return r;
}

static wfp_expr *parse_expr(P *ps, const cJSON *j, const char *path) {
  wfp_program *p = ps->p;
  if (!cJSON_IsObject(j)) {
    wfp__diag(p, WFP_EPROGRAM, path,
              "expected an expression (an object with an 'op'), got %s",
              jtype(j));
    return bad_expr(ps, path);
  }
  const cJSON *opv = get(j, "op");
  if (!opv) {
    wfp__diag(p, WFP_EPROGRAM, path, "missing field 'op' in expression");
    return bad_expr(ps, path);
  }
  if (!cJSON_IsString(opv)) {
    wfp__diag(p, WFP_EPROGRAM, kpath(ps, path, "op"),
              "field 'op' must be a string, not %s", jtype(opv));
    return bad_expr(ps, path);
  }
  const char *op = opv->valuestring;
  int k = -1;
  for (int i = 0; i < WFP_OP__COUNT; i++)
    if (strcmp(expr_names[i], op) == 0)
      k = i;
  if (k < 0) {
    for (int i = 0; i < WFP_ST__COUNT; i++)
      if (strcmp(stmt_names[i], op) == 0) {
        wfp__diag(p, WFP_EPROGRAM, kpath(ps, path, "op"),
                  "'%s' is a statement, not an expression", op);
        return bad_expr(ps, path);
      }
    const char *s = suggest(op);
    if (s)
      wfp__diag(p, WFP_EPROGRAM, kpath(ps, path, "op"),
                "unknown op '%s' (did you mean '%s'?)", op, s);
    else
      wfp__diag(p, WFP_EPROGRAM, kpath(ps, path, "op"), "unknown op '%s'", op);
    return bad_expr(ps, path);
  }
  wfp_expr *e = new_expr(ps, (wfp_expr_op)k, path);
  if (!e)
    return NULL;
  char what[48];
  snprintf(what, sizeof what, "'%s'", op);
  size_t n = 0;
  switch (e->op) {
  case WFP_OP_LIT_I64: {
    static const char *const keys[] = {"op", "value", NULL};
    check_keys(ps, j, path, keys, what);
    bool ok;
    e->ival = lit_i64(ps, get(j, "value"), path, &ok);
    if (!ok)
      return bad_expr(ps, path);
    break;
  }
  case WFP_OP_LIT_STR: {
    static const char *const keys[] = {"op", "value", NULL};
    check_keys(ps, j, path, keys, what);
    const char *s = str_field(ps, j, path, "value", what, true, &n);
    if (!s)
      return bad_expr(ps, path);
    e->str = wfp__arena_strndup(&p->arena, s, n);
    e->slen = n;
    break;
  }
  case WFP_OP_LIT_JSON: {
    static const char *const keys[] = {"op", "value", NULL};
    check_keys(ps, j, path, keys, what);
    const cJSON *v = get(j, "value");
    if (!v) {
      wfp__diag(p, WFP_EPROGRAM, path, "missing field 'value' in 'lit_json'");
      return bad_expr(ps, path);
    }
    e->json = copy_value(ps, v, kpath(ps, path, "value"));
    if (!e->json)
      return bad_expr(ps, path);
    /* keep the tree for emitting, and the compact text for codegen */
    wfp__buf b;
    wfp__buf_init(&b);
    wfp__json_write(&b, e->json, false, -1, 0);
    p->oom |= b.oom;
    e->str = wfp__arena_strndup(&p->arena, b.data ? b.data : "", b.len);
    e->slen = b.len;
    wfp__buf_free(&b);
    /* the program owns the copy (freed with the program) */
    cJSON *holder = cJSON_CreateArray();
    if (!holder) {
      p->oom = true;
      cJSON_Delete(e->json);
      e->json = NULL;
      return NULL;
    }
    cJSON_AddItemToArray(p->doc, holder);
    cJSON_AddItemToArray(holder, e->json); /* links: allocates nothing */
    break;
  }
  case WFP_OP_VAR: {
    static const char *const keys[] = {"op", "name", NULL};
    check_keys(ps, j, path, keys, what);
    e->str = name_field(ps, j, path, "name", what);
    if (!e->str)
      return bad_expr(ps, path);
    break;
  }
  case WFP_OP_ADD: case WFP_OP_SUB: case WFP_OP_MUL: case WFP_OP_DIV:
  case WFP_OP_REM: case WFP_OP_BAND: case WFP_OP_BOR: case WFP_OP_BXOR:
  case WFP_OP_SHL: case WFP_OP_SHR: case WFP_OP_EQ: case WFP_OP_NE:
  case WFP_OP_LT: case WFP_OP_LE: case WFP_OP_GT: case WFP_OP_GE:
  case WFP_OP_AND: case WFP_OP_OR: {
    static const char *const keys[] = {"op", "a", "b", NULL};
    check_keys(ps, j, path, keys, what);
    e->a = sub_expr(ps, j, path, "a", what);
    e->b = sub_expr(ps, j, path, "b", what);
    break;
  }
  case WFP_OP_NEG: case WFP_OP_NOT: case WFP_OP_LEN: {
    static const char *const keys[] = {"op", "a", NULL};
    check_keys(ps, j, path, keys, what);
    e->a = sub_expr(ps, j, path, "a", what);
    break;
  }
  case WFP_OP_CONCAT: {
    static const char *const keys[] = {"op", "parts", NULL};
    check_keys(ps, j, path, keys, what);
    expr_list(ps, j, path, "parts", what, true, &e->args, &e->nargs);
    break;
  }
  case WFP_OP_JSON: {
    static const char *const keys[] = {"op", "value", NULL};
    check_keys(ps, j, path, keys, what);
    const cJSON *v = get(j, "value");
    if (!v) {
      wfp__diag(p, WFP_EPROGRAM, path, "missing field 'value' in 'json'");
      return bad_expr(ps, path);
    }
    e->tpl = parse_tpl(ps, v, kpath(ps, path, "value"));
    if (!e->tpl)
      return NULL;
    break;
  }
  case WFP_OP_INPUT: {
    static const char *const keys[] = {"op", NULL};
    check_keys(ps, j, path, keys, what);
    break;
  }
  case WFP_OP_GET_I64: case WFP_OP_GET_STR: case WFP_OP_GET_JSON: {
    static const char *const keys[] = {"op", "from", "path", NULL};
    check_keys(ps, j, path, keys, what);
    e->a = sub_expr(ps, j, path, "from", what);
    const cJSON *a = arr_field(ps, j, path, "path", what, true);
    if (!a)
      break;
    const char *ap = kpath(ps, path, "path");
    e->nsegs = cJSON_GetArraySize(a);
    e->segs = wfp__arena_alloc(&p->arena, sizeof *e->segs * (size_t)(e->nsegs + 1));
    if (!e->segs)
      return NULL;
    int i = 0;
    for (const cJSON *c = a->child; c; c = c->next, i++) {
      wfp_pathseg *s = &e->segs[i];
      if (cJSON_IsString(c)) {
        s->keylen = strlen(c->valuestring);
        if (!wfp__utf8_valid(c->valuestring, s->keylen))
          wfp__diag(p, WFP_EPROGRAM, ipath(ps, ap, i), "key is not valid UTF-8");
        s->key = wfp__arena_strndup(&p->arena, c->valuestring, s->keylen);
      } else if (cJSON_IsNumber(c)) {
        const numtok *t = num_text(ps, c);
        int64_t ix;
        if (!t || !wfp__parse_i64(t->s, t->n, &ix) || ix < 0 ||
            ix > 0x7fffffff) {
          wfp__diag(p, WFP_EPROGRAM, ipath(ps, ap, i),
                    "path index must be an integer from 0 to 2147483647");
          continue;
        }
        s->is_index = true;
        s->index = ix;
      } else {
        wfp__diag(p, WFP_EPROGRAM, ipath(ps, ap, i),
                  "path items are keys (strings) or indexes (integers), not %s",
                  jtype(c));
      }
    }
    break;
  }
  case WFP_OP_CALL: {
    static const char *const keys[] = {"op", "fn", "args", NULL};
    check_keys(ps, j, path, keys, what);
    const char *s = str_field(ps, j, path, "fn", what, true, &n);
    if (!s)
      return bad_expr(ps, path);
    e->str = wfp__arena_strndup(&p->arena, s, n);
    e->slen = n;
    expr_list(ps, j, path, "args", what, false, &e->args, &e->nargs);
    break;
  }
  case WFP_OP_CALL_REF: {
    static const char *const keys[] = {"op", "fn", "args", NULL};
    check_keys(ps, j, path, keys, what);
    e->a = sub_expr(ps, j, path, "fn", what);
    expr_list(ps, j, path, "args", what, false, &e->args, &e->nargs);
    break;
  }
  case WFP_OP_FN: {
    static const char *const keys[] = {"op", "name", "captures", NULL};
    check_keys(ps, j, path, keys, what);
    const char *s = str_field(ps, j, path, "name", what, true, &n);
    if (!s)
      return bad_expr(ps, path);
    e->str = wfp__arena_strndup(&p->arena, s, n);
    e->slen = n;
    if (get(j, "captures"))
      expr_list(ps, j, path, "captures", what, false, &e->bound, &e->nbound);
    break;
  }
  case WFP_OP_LAMBDA: {
    static const char *const keys[] = {"op", "params", "body", NULL};
    check_keys(ps, j, path, keys, what);
    wfp_func *f = new_func(ps);
    if (!f)
      return NULL;
    f->is_lambda = true;
    f->parent = ps->fn;
    f->path = path;
    f->lambda_expr = e;
    f->lambda_ordinal = ps->lambda_count++;
    f->depth = ps->fn ? ps->fn->depth + 1 : 1;
    f->resource = NULL;
    e->target = f;
    wfp_func *saved = ps->fn;
    ps->fn = f;
    parse_params(ps, j, path, f, "'lambda'");
    const cJSON *body = arr_field(ps, j, path, "body", what, true);
    if (body)
      parse_block(ps, body, kpath(ps, path, "body"), &f->body);
    else
      f->parsed_ok = false;
    ps->fn = saved;
    break;
  }
  case WFP_OP_CTX_GET_I64: {
    static const char *const keys[] = {"op", "key", NULL};
    check_keys(ps, j, path, keys, what);
    const char *s = str_field(ps, j, path, "key", what, true, &n);
    if (!s)
      return bad_expr(ps, path);
    e->str = wfp__arena_strndup(&p->arena, s, n);
    e->slen = n;
    break;
  }
  case WFP_OP_CTX_SET_I64: {
    static const char *const keys[] = {"op", "key", "value", NULL};
    check_keys(ps, j, path, keys, what);
    const char *s = str_field(ps, j, path, "key", what, true, &n);
    e->a = sub_expr(ps, j, path, "value", what);
    if (!s)
      return bad_expr(ps, path);
    e->str = wfp__arena_strndup(&p->arena, s, n);
    e->slen = n;
    break;
  }
  case WFP_OP_MSG_SEND: {
    static const char *const keys[] = {"op", "topic", "payload", NULL};
    check_keys(ps, j, path, keys, what);
    const char *s = str_field(ps, j, path, "topic", what, true, &n);
    e->a = sub_expr(ps, j, path, "payload", what);
    if (!s)
      return bad_expr(ps, path);
    e->str = wfp__arena_strndup(&p->arena, s, n);
    e->slen = n;
    break;
  }
  case WFP_OP_SLEEP_MS: {
    static const char *const keys[] = {"op", "ms", NULL};
    check_keys(ps, j, path, keys, what);
    e->a = sub_expr(ps, j, path, "ms", what);
    break;
  }
  case WFP_OP_DB_QUERY: {
    static const char *const keys[] = {"op", "sql", "params", "each", NULL};
    check_keys(ps, j, path, keys, what);
    const char *s = str_field(ps, j, path, "sql", what, true, &n);
    expr_list(ps, j, path, "params", what, false, &e->args, &e->nargs);
    const cJSON *each = get(j, "each");
    if (each)
      e->each = parse_expr(ps, each, kpath(ps, path, "each"));
    if (!s)
      return bad_expr(ps, path);
    e->str = wfp__arena_strndup(&p->arena, s, n);
    e->slen = n;
    break;
  }
  case WFP_OP_SELF_GET: {
    static const char *const keys[] = {"op", "property", NULL};
    check_keys(ps, j, path, keys, what);
    e->str = name_field(ps, j, path, "property", what);
    if (!e->str)
      return bad_expr(ps, path);
    e->slen = strlen(e->str);
    break;
  }
  case WFP_OP_SELF_SET: {
    static const char *const keys[] = {"op", "property", "value", NULL};
    check_keys(ps, j, path, keys, what);
    e->str = name_field(ps, j, path, "property", what);
    e->a = sub_expr(ps, j, path, "value", what);
    if (!e->str)
      return bad_expr(ps, path);
    e->slen = strlen(e->str);
    break;
  }
  case WFP_OP__COUNT:
    break;
  }
  return e;
}

/* ---- statements ---- */

static wfp_stmt *parse_stmt(P *ps, const cJSON *j, const char *path) {
  wfp_program *p = ps->p;
  if (!cJSON_IsObject(j)) {
    wfp__diag(p, WFP_EPROGRAM, path,
              "expected a statement (an object with an 'op'), got %s", jtype(j));
    return NULL;
  }
  const cJSON *opv = get(j, "op");
  if (!opv) {
    wfp__diag(p, WFP_EPROGRAM, path, "missing field 'op' in statement");
    return NULL;
  }
  if (!cJSON_IsString(opv)) {
    wfp__diag(p, WFP_EPROGRAM, kpath(ps, path, "op"),
              "field 'op' must be a string, not %s", jtype(opv));
    return NULL;
  }
  const char *op = opv->valuestring;
  int k = -1;
  for (int i = 0; i < WFP_ST__COUNT; i++)
    if (strcmp(stmt_names[i], op) == 0)
      k = i;
  if (k < 0) {
    for (int i = 0; i < WFP_OP__COUNT; i++)
      if (strcmp(expr_names[i], op) == 0) {
        wfp__diag(p, WFP_EPROGRAM, kpath(ps, path, "op"),
                  "'%s' is an expression, not a statement (wrap it: "
                  "{\"op\": \"expr\", \"expr\": ...})",
                  op);
        return NULL;
      }
    const char *s = suggest(op);
    if (s)
      wfp__diag(p, WFP_EPROGRAM, kpath(ps, path, "op"),
                "unknown op '%s' (did you mean '%s'?)", op, s);
    else
      wfp__diag(p, WFP_EPROGRAM, kpath(ps, path, "op"), "unknown op '%s'", op);
    return NULL;
  }
  wfp_stmt *s = wfp__arena_alloc(&p->arena, sizeof *s);
  if (!s)
    return NULL;
  s->op = (wfp_stmt_op)k;
  s->path = path;
  char what[48];
  snprintf(what, sizeof what, "'%s'", op);
  switch (s->op) {
  case WFP_ST_LET:
  case WFP_ST_SET: {
    static const char *const keys[] = {"op", "name", "expr", NULL};
    check_keys(ps, j, path, keys, what);
    const char *name = name_field(ps, j, path, "name", what);
    s->e = sub_expr(ps, j, path, "expr", what);
    if (!name)
      return NULL;
    s->var = wfp__arena_alloc(&p->arena, sizeof *s->var);
    if (!s->var)
      return NULL;
    s->var->name = name;
    s->var->path = path;
    break;
  }
  case WFP_ST_EXPR: {
    static const char *const keys[] = {"op", "expr", NULL};
    check_keys(ps, j, path, keys, what);
    s->e = sub_expr(ps, j, path, "expr", what);
    break;
  }
  case WFP_ST_RETURN: {
    static const char *const keys[] = {"op", "expr", NULL};
    check_keys(ps, j, path, keys, what);
    const cJSON *v = get(j, "expr");
    if (v && !cJSON_IsNull(v))
      s->e = parse_expr(ps, v, kpath(ps, path, "expr"));
    break;
  }
  case WFP_ST_IF: {
    static const char *const keys[] = {"op", "cond", "then", "else", NULL};
    check_keys(ps, j, path, keys, what);
    s->e = sub_expr(ps, j, path, "cond", what);
    const cJSON *t = arr_field(ps, j, path, "then", what, true);
    if (t)
      parse_block(ps, t, kpath(ps, path, "then"), &s->then_);
    const cJSON *el = arr_field(ps, j, path, "else", what, false);
    if (el)
      parse_block(ps, el, kpath(ps, path, "else"), &s->else_);
    break;
  }
  case WFP_ST_WHILE: {
    static const char *const keys[] = {"op", "cond", "body", NULL};
    check_keys(ps, j, path, keys, what);
    s->e = sub_expr(ps, j, path, "cond", what);
    const cJSON *b = arr_field(ps, j, path, "body", what, true);
    if (b)
      parse_block(ps, b, kpath(ps, path, "body"), &s->body);
    break;
  }
  case WFP_ST_BREAK:
  case WFP_ST_CONTINUE: {
    static const char *const keys[] = {"op", NULL};
    check_keys(ps, j, path, keys, what);
    break;
  }
  case WFP_ST_TRAP: {
    static const char *const keys[] = {"op", "message", NULL};
    check_keys(ps, j, path, keys, what);
    size_t n = 0;
    const char *m = str_field(ps, j, path, "message", what, true, &n);
    if (!m)
      return NULL;
    s->msg = wfp__arena_strndup(&p->arena, m, n);
    s->msglen = n;
    break;
  }
  case WFP_ST__COUNT:
    break;
  }
  return s;
}

static void parse_block(P *ps, const cJSON *arr, const char *path,
                        wfp_block *out) {
  int n = cJSON_GetArraySize(arr);
  out->v = wfp__arena_alloc(&ps->p->arena, sizeof *out->v * (size_t)(n + 1));
  out->n = 0;
  if (!out->v)
    return;
  int i = 0;
  for (const cJSON *c = arr->child; c; c = c->next, i++) {
    wfp_stmt *s = parse_stmt(ps, c, ipath(ps, path, i));
    if (s)
      out->v[out->n++] = s;
    else if (ps->fn)
      ps->fn->parsed_ok = false;
  }
}

/* ---- functions, resources, program ---- */

static wfp_tkind type_name(const char *s) {
  if (strcmp(s, "i64") == 0)
    return WFP_T_I64;
  if (strcmp(s, "str") == 0)
    return WFP_T_STR;
  if (strcmp(s, "json") == 0)
    return WFP_T_JSON;
  if (strcmp(s, "fn") == 0)
    return WFP_T_FN;
  return WFP_T_VAR;
}

static void parse_params(P *ps, const cJSON *obj, const char *path,
                         wfp_func *f, const char *what) {
  wfp_program *p = ps->p;
  const cJSON *a = arr_field(ps, obj, path, "params", what, false);
  if (!a) {
    if (get(obj, "params"))
      f->parsed_ok = false;
    return;
  }
  const char *ap = kpath(ps, path, "params");
  int n = cJSON_GetArraySize(a);
  f->params = wfp__arena_alloc(&p->arena, sizeof *f->params * (size_t)(n + 1));
  if (!f->params)
    return;
  int i = 0;
  for (const cJSON *c = a->child; c; c = c->next, i++) {
    const char *pp = ipath(ps, ap, i);
    const char *name = NULL;
    wfp_tkind k = WFP_T_I64;
    if (cJSON_IsString(c)) {
      if (!wfp__ident_ok(c->valuestring)) {
        wfp__diag(p, WFP_EPROGRAM, pp, "'%s' is not a valid parameter name",
                  c->valuestring);
      } else {
        name = wfp__arena_strdup(&p->arena, c->valuestring);
      }
    } else if (cJSON_IsObject(c)) {
      static const char *const keys[] = {"name", "type", NULL};
      check_keys(ps, c, pp, keys, "a parameter");
      name = name_field(ps, c, pp, "name", "a parameter");
      const char *t = str_field(ps, c, pp, "type", "a parameter", false, NULL);
      if (t) {
        k = type_name(t);
        if (k == WFP_T_VAR) {
          wfp__diag(p, WFP_EPROGRAM, kpath(ps, pp, "type"),
                    "unknown type '%s' (types are i64, str, json, fn)", t);
          k = WFP_T_ERROR;
        }
      } else if (get(c, "type")) {
        k = WFP_T_ERROR;
      }
    } else {
      wfp__diag(p, WFP_EPROGRAM, pp,
                "a parameter is a name or {\"name\", \"type\"}, not %s",
                jtype(c));
    }
    if (!name) {
      f->parsed_ok = false;
      continue;
    }
    wfp_var *v = wfp__arena_alloc(&p->arena, sizeof *v);
    if (!v)
      return;
    v->name = name;
    v->is_param = true;
    v->owner = f;
    v->path = pp;
    if (k == WFP_T_FN) {
      v->type = wfp__type_new(p, WFP_T_VAR);
      if (v->type)
        v->type->want_fn = true;
    } else {
      v->type = wfp__type_new(p, k);
    }
    f->params[f->nparams++] = v;
  }
}

static void parse_function(P *ps, const cJSON *j, const char *path) {
  wfp_program *p = ps->p;
  if (!cJSON_IsObject(j)) {
    wfp__diag(p, WFP_EPROGRAM, path, "expected a function object, got %s",
              jtype(j));
    return;
  }
  static const char *const keys[] = {"id",       "name",     "parent",
                                     "params",   "body",     "resource",
                                     "nested_in", "captures", NULL};
  check_keys(ps, j, path, keys, "a function");
  wfp_func *f = new_func(ps);
  if (!f)
    return;
  f->path = path;
  ps->fn = f;
  ps->lambda_count = 0;
  f->name = name_field(ps, j, path, "name", "a function");
  if (!f->name)
    f->parsed_ok = false;
  const cJSON *id = get(j, "id");
  if (id && !cJSON_IsNull(id)) {
    if (!cJSON_IsString(id)) {
      wfp__diag(p, WFP_EPROGRAM, kpath(ps, path, "id"),
                "field 'id' must be a string, not %s", jtype(id));
    } else if (id->valuestring[0]) {
      const char *s = id->valuestring;
      size_t n = strlen(s);
      bool ok = n <= 16;
      for (size_t i = 0; i < n && ok; i++)
        ok = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
             (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-';
      if (!ok)
        wfp__diag(p, WFP_EPROGRAM, kpath(ps, path, "id"),
                  "id '%s' is not valid (at most 16 of letters, digits, '_' "
                  "and '-'; or empty to have one assigned)",
                  s);
      else {
        memcpy(f->id, s, n + 1);
        f->id_given = true;
      }
    }
  }
  const cJSON *par = get(j, "parent");
  if (par && !cJSON_IsNull(par)) {
    if (!cJSON_IsString(par))
      wfp__diag(p, WFP_EPROGRAM, kpath(ps, path, "parent"),
                "field 'parent' must be null or a function name, not %s",
                jtype(par));
    else
      f->parent_name = wfp__arena_strdup(&p->arena, par->valuestring);
  }
  const cJSON *res = get(j, "resource");
  if (res && !cJSON_IsNull(res)) {
    if (!cJSON_IsString(res))
      wfp__diag(p, WFP_EPROGRAM, kpath(ps, path, "resource"),
                "field 'resource' must be null or a resource name, not %s",
                jtype(res));
    else {
      /* resolved by the checker; stash the name in a placeholder */
      wfp_resource *r = wfp__arena_alloc(&p->arena, sizeof *r);
      if (r) {
        r->name = wfp__arena_strdup(&p->arena, res->valuestring);
        r->index = -1; /* unresolved */
        r->path = kpath(ps, path, "resource");
      }
      f->resource = r;
    }
  }
  const cJSON *nin = get(j, "nested_in");
  if (nin && !cJSON_IsString(nin) && !cJSON_IsNull(nin))
    wfp__diag(p, WFP_EPROGRAM, kpath(ps, path, "nested_in"),
              "field 'nested_in' must be a function name, not %s", jtype(nin));
  else if (cJSON_IsString(nin))
    f->meta_nested_in = wfp__arena_strdup(&p->arena, nin->valuestring);
  const cJSON *caps = get(j, "captures");
  if (caps) {
    if (!cJSON_IsArray(caps))
      wfp__diag(p, WFP_EPROGRAM, kpath(ps, path, "captures"),
                "field 'captures' must be an array of parameter names, not %s",
                jtype(caps));
  }
  parse_params(ps, j, path, f, "a function");
  if (caps && cJSON_IsArray(caps)) {
    /* informational in lifted IR: the leading params that were captured */
    int i = 0;
    for (const cJSON *c = caps->child; c; c = c->next, i++)
      if (!cJSON_IsString(c) || i >= f->nparams ||
          strcmp(f->params[i]->name, c->valuestring) != 0) {
        wfp__diag(p, WFP_EPROGRAM, ipath(ps, kpath(ps, path, "captures"), i),
                  "'captures' must list the function's leading parameters");
        break;
      }
    f->meta_ncaptures = i;
  }
  const cJSON *body = arr_field(ps, j, path, "body", "a function", true);
  if (body)
    parse_block(ps, body, kpath(ps, path, "body"), &f->body);
  else
    f->parsed_ok = false;
  ps->fn = NULL;
}

static void parse_resource(P *ps, const cJSON *j, const char *path) {
  wfp_program *p = ps->p;
  if (!cJSON_IsObject(j)) {
    wfp__diag(p, WFP_EPROGRAM, path, "expected a resource object, got %s",
              jtype(j));
    return;
  }
  static const char *const keys[] = {"name", "properties", "methods", NULL};
  check_keys(ps, j, path, keys, "a resource");
  wfp_resource *r = wfp__arena_alloc(&p->arena, sizeof *r);
  if (!r)
    return;
  r->path = path;
  r->index = p->nresources;
  r->name = name_field(ps, j, path, "name", "a resource");
  if (!r->name)
    r->name = "";
  const cJSON *props = arr_field(ps, j, path, "properties", "a resource", false);
  if (props) {
    const char *pp = kpath(ps, path, "properties");
    int n = cJSON_GetArraySize(props);
    r->prop_names = wfp__arena_alloc(&p->arena, sizeof *r->prop_names * (size_t)(n + 1));
    r->prop_types = wfp__arena_alloc(&p->arena, sizeof *r->prop_types * (size_t)(n + 1));
    if (!r->prop_names || !r->prop_types)
      return;
    int i = 0;
    for (const cJSON *c = props->child; c; c = c->next, i++) {
      const char *ip = ipath(ps, pp, i);
      const char *name = NULL;
      wfp_tkind k = WFP_T_I64;
      if (cJSON_IsString(c)) {
        if (wfp__ident_ok(c->valuestring))
          name = wfp__arena_strdup(&p->arena, c->valuestring);
        else
          wfp__diag(p, WFP_EPROGRAM, ip, "'%s' is not a valid property name",
                    c->valuestring);
      } else if (cJSON_IsObject(c)) {
        static const char *const pkeys[] = {"name", "type", NULL};
        check_keys(ps, c, ip, pkeys, "a property");
        name = name_field(ps, c, ip, "name", "a property");
        const char *t = str_field(ps, c, ip, "type", "a property", false, NULL);
        if (t) {
          k = type_name(t);
          if (k != WFP_T_I64 && k != WFP_T_STR && k != WFP_T_JSON) {
            wfp__diag(p, WFP_EPROGRAM, kpath(ps, ip, "type"),
                      "property type must be i64, str or json, not '%s'", t);
            k = WFP_T_ERROR;
          }
        }
      } else {
        wfp__diag(p, WFP_EPROGRAM, ip,
                  "a property is {\"name\", \"type\"}, not %s", jtype(c));
      }
      if (!name)
        continue;
      for (int q = 0; q < r->nprops; q++)
        if (strcmp(r->prop_names[q], name) == 0) {
          wfp__diag(p, WFP_EPROGRAM, ip, "duplicate property '%s' in resource '%s'",
                    name, r->name);
          name = NULL;
          break;
        }
      if (!name)
        continue;
      r->prop_names[r->nprops] = name;
      r->prop_types[r->nprops] = k;
      r->nprops++;
    }
  }
  const cJSON *meths = arr_field(ps, j, path, "methods", "a resource", false);
  if (meths) {
    const char *mp = kpath(ps, path, "methods");
    int n = cJSON_GetArraySize(meths);
    r->methods = wfp__arena_alloc(&p->arena, sizeof *r->methods * (size_t)(n + 1));
    r->method_paths = wfp__arena_alloc(&p->arena, sizeof *r->method_paths * (size_t)(n + 1));
    if (!r->methods || !r->method_paths)
      return;
    int i = 0;
    for (const cJSON *c = meths->child; c; c = c->next, i++) {
      const char *ip = ipath(ps, mp, i);
      if (!cJSON_IsString(c)) {
        wfp__diag(p, WFP_EPROGRAM, ip, "a method is a function name, not %s",
                  jtype(c));
        continue;
      }
      bool dup = false;
      for (int q = 0; q < r->nmethods; q++)
        if (strcmp(r->methods[q], c->valuestring) == 0)
          dup = true;
      if (dup) {
        wfp__diag(p, WFP_EPROGRAM, ip, "method '%s' is listed twice",
                  c->valuestring);
        continue;
      }
      r->methods[r->nmethods] = wfp__arena_strdup(&p->arena, c->valuestring);
      if (!r->methods[r->nmethods])
        return; /* out of memory (p->arena.oom) */
      r->method_paths[r->nmethods] = ip;
      r->nmethods++;
    }
  }
  for (int q = 0; q < p->nresources; q++)
    if (strcmp(p->resources[q]->name, r->name) == 0 && r->name[0]) {
      wfp__diag(p, WFP_EPROGRAM, kpath(ps, path, "name"),
                "duplicate resource name '%s'", r->name);
      return;
    }
  p->resources[p->nresources++] = r;
}

int wfp__ir_parse(wfp_program *p, const char *text, size_t len) {
  /* a UTF-8 byte order mark is not JSON, but editors write one */
  if (len >= 3 && (unsigned char)text[0] == 0xEF &&
      (unsigned char)text[1] == 0xBB && (unsigned char)text[2] == 0xBF) {
    text += 3;
    len -= 3;
  }
  P ps;
  memset(&ps, 0, sizeof ps);
  ps.p = p;
  ps.text = text;
  ps.len = len;
  size_t *offs = NULL, ntok = 0;
  int rc = scan_tokens(&ps, &offs, &ntok);
  if (rc)
    return rc;
  cJSON *root = cJSON_ParseWithLength(text, len);
  if (!root) {
    /* the text is valid JSON: cJSON can only have run out of memory */
    free(offs);
    return WFP_ENOMEM;
  }
  /* the document also owns lit_json copies (hung under it, see LIT_JSON) */
  p->doc = cJSON_CreateArray();
  if (!p->doc) {
    free(offs);
    cJSON_Delete(root);
    return WFP_ENOMEM;
  }
  cJSON_AddItemToArray(p->doc, root);
  rc = build_numtab(&ps, root, offs, ntok);
  free(offs);
  if (rc) {
    free(ps.nums);
    return rc;
  }
  if (!cJSON_IsObject(root)) {
    free(ps.nums);
    return wfp__diag(p, WFP_EPROGRAM, "$",
                     "a program is a JSON object, not %s", jtype(root));
  }
  static const char *const keys[] = {"version", "functions", "resources",
                                     "entry", NULL};
  check_keys(&ps, root, "$", keys, "the program");
  const cJSON *ver = get(root, "version");
  if (!ver)
    wfp__diag(p, WFP_EPROGRAM, "$", "missing field 'version' (this is IR version 1)");
  else if (!cJSON_IsNumber(ver) || !num_text(&ps, ver) ||
           num_text(&ps, ver)->n != 1 || num_text(&ps, ver)->s[0] != '1')
    wfp__diag(p, WFP_EPROGRAM, "$.version",
              "unsupported IR version (this is IR version 1: write \"version\": 1)");
  const cJSON *entry = get(root, "entry");
  if (entry) {
    if (!cJSON_IsString(entry) || !wfp__ident_ok(entry->valuestring))
      wfp__diag(p, WFP_EPROGRAM, "$.entry",
                "field 'entry' must be a function name");
    else if (!p->entry_explicit) {
      /* named in the file: it must exist, as with --entry */
      const char *name = wfp__arena_strdup(&p->arena, entry->valuestring);
      if (name)
        p->entry_name = name;
      p->entry_explicit = true;
    }
  }
  const cJSON *res = arr_field(&ps, root, "$", "resources", "the program", false);
  if (res) {
    int n = cJSON_GetArraySize(res);
    p->resources = calloc((size_t)n + 1, sizeof *p->resources);
    if (!p->resources) {
      free(ps.nums);
      return WFP_ENOMEM;
    }
    int i = 0;
    for (const cJSON *c = res->child; c; c = c->next, i++)
      parse_resource(&ps, c, ipath(&ps, "$.resources", i));
  }
  const cJSON *fns = arr_field(&ps, root, "$", "functions", "the program", true);
  if (fns) {
    int i = 0;
    for (const cJSON *c = fns->child; c; c = c->next, i++)
      parse_function(&ps, c, ipath(&ps, "$.functions", i));
  }
  free(ps.nums);
  return p->ndiags ? WFP_EPROGRAM : WFP_OK;
}
