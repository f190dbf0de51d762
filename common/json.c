/*
** json.c: the strict JSON scanner of json.h, for every reader in the
** libraries: the host's inputs, arguments and property values, checkpoint
** bodies. It reads in place, or with an arena builds a tree whose strings
** are decoded and whose numbers keep their text (every digit). It writes
** no JSON (util.c does).
*/
#include <string.h>

#include "json.h"
#include "wfp/abi.h"

typedef struct rd {
  const unsigned char *s;
  size_t n;
  unsigned max;    /* arrays and objects it may nest */
  size_t at;       /* where the fault is */
  const char *why; /* what it is, NULL while none */
  wfp__arena *a;   /* building a tree in it, or NULL: scanning only */
  wfp__buf str;    /* a string being decoded for the tree */
  bool oom;
} rd;

const char wfp__json_too_deep[] = "nested too deep";

static size_t fault(rd *r, size_t at, const char *why) {
  r->at = at;
  r->why = why;
  return 0;
}

size_t wfp__json_ws(const char *s, size_t i, size_t n) {
  while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
    i++;
  return i;
}

static int hexv(unsigned char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

static long hex4(const unsigned char *p) {
  long v = 0;
  for (int k = 0; k < 4; k++) {
    int h = hexv(p[k]);
    if (h < 0)
      return -1;
    v = v * 16 + h;
  }
  return v;
}

static void add_utf8(wfp__buf *b, unsigned long cp) {
  char u[4];
  size_t k;
  if (cp < 0x80) {
    u[0] = (char)cp;
    k = 1;
  } else if (cp < 0x800) {
    u[0] = (char)(0xC0 | (cp >> 6));
    u[1] = (char)(0x80 | (cp & 0x3F));
    k = 2;
  } else if (cp < 0x10000) {
    u[0] = (char)(0xE0 | (cp >> 12));
    u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    u[2] = (char)(0x80 | (cp & 0x3F));
    k = 3;
  } else {
    u[0] = (char)(0xF0 | (cp >> 18));
    u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    u[3] = (char)(0x80 | (cp & 0x3F));
    k = 4;
  }
  wfp__buf_add(b, u, k);
}

/* The string at s[i] == '"': the index after it, or 0 with the fault. With
** out, appends the decoded bytes (U+0000 included). */
static size_t string(rd *r, size_t i, wfp__buf *out) {
  const unsigned char *s = r->s;
  size_t n = r->n, run = ++i;
  while (i < n) {
    unsigned char c = s[i];
    if (c == '"' || c == '\\') {
      if (!wfp__utf8_valid((const char *)s + run, i - run))
        return fault(r, run, "invalid UTF-8 in a string");
      if (out)
        wfp__buf_add(out, s + run, i - run);
      if (c == '"')
        return i + 1;
      if (i + 1 >= n)
        return fault(r, i, "unterminated string");
      unsigned long cp;
      switch (s[i + 1]) {
      case '"': cp = '"'; break;
      case '\\': cp = '\\'; break;
      case '/': cp = '/'; break;
      case 'b': cp = 8; break;
      case 'f': cp = 12; break;
      case 'n': cp = 10; break;
      case 'r': cp = 13; break;
      case 't': cp = 9; break;
      case 'u': {
        long v = n - i >= 6 ? hex4(s + i + 2) : -1;
        if (v < 0)
          return fault(r, i, "an invalid \\u escape");
        cp = (unsigned long)v;
        if (cp >= 0xDC00 && cp <= 0xDFFF)
          return fault(r, i, "a \\u escape of a lone low surrogate");
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          long lo = n - i >= 12 && s[i + 6] == '\\' && s[i + 7] == 'u' ? hex4(s + i + 8) : -1;
          if (lo < 0xDC00 || lo > 0xDFFF)
            return fault(r, i, "a \\u escape of a lone high surrogate");
          cp = 0x10000ul + ((cp - 0xD800ul) << 10) + ((unsigned long)lo - 0xDC00ul);
          i += 6;
        }
        i += 4;
        break;
      }
      default:
        return fault(r, i, "an invalid escape");
      }
      if (out)
        add_utf8(out, cp);
      i += 2;
      run = i;
      continue;
    }
    if (c < 0x20)
      return fault(r, i, "a control character in a string (escape it)");
    i++;
  }
  return fault(r, i, "unterminated string");
}

static bool digit(const rd *r, size_t i) { return i < r->n && r->s[i] >= '0' && r->s[i] <= '9'; }

static size_t number(rd *r, size_t i) {
  const unsigned char *s = r->s;
  size_t start = i;
  if (i < r->n && s[i] == '-')
    i++;
  if (!digit(r, i))
    return fault(r, start, "not a JSON value");
  if (s[i] == '0') {
    i++;
    if (digit(r, i))
      return fault(r, start, "a number with a leading zero");
  } else {
    while (digit(r, i))
      i++;
  }
  if (i < r->n && s[i] == '.') {
    i++;
    if (!digit(r, i))
      return fault(r, i, "a number without digits after '.'");
    while (digit(r, i))
      i++;
  }
  if (i < r->n && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    if (i < r->n && (s[i] == '+' || s[i] == '-'))
      i++;
    if (!digit(r, i))
      return fault(r, i, "a number without digits in its exponent");
    while (digit(r, i))
      i++;
  }
  return i;
}

/* A node in the tree (NULL with r->oom when out of memory). */
static wfp__jv *node(rd *r, int type) {
  wfp__jv *v = wfp__arena_alloc(r->a, sizeof *v);
  if (!v) {
    r->oom = true;
    return NULL;
  }
  v->type = type;
  return v;
}

/* The string at s[i] decoded into the arena: *p, *len. */
static size_t tree_string(rd *r, size_t i, const char **p, size_t *len) {
  r->str.len = 0;
  r->str.oom = false;
  size_t e = string(r, i, &r->str);
  if (!e)
    return 0;
  char *c = r->str.oom ? NULL
                       : wfp__arena_strndup(r->a, r->str.data ? r->str.data : "", r->str.len);
  if (!c) {
    r->oom = true;
    return fault(r, i, "out of memory");
  }
  *p = c;
  *len = r->str.len;
  return e;
}

/* One value at s[i] (no white space before it): the index after it, or 0
** with the fault. The value is the depth-th container open around it. With
** an arena, *out gets its node. */
static size_t value(rd *r, size_t i, unsigned depth, wfp__jv **out) {
  const unsigned char *s = r->s;
  size_t n = r->n;
  if (i >= n)
    return fault(r, i, "unexpected end of the text");
  unsigned char c = s[i];
  wfp__jv *v = NULL;
  if (c == '"') {
    if (!r->a)
      return string(r, i, NULL);
    if (!(v = node(r, WFP__J_STR)))
      return fault(r, i, "out of memory");
    *out = v;
    return tree_string(r, i, &v->s, &v->n);
  }
  if (c == '{' || c == '[') {
    if (depth >= r->max)
      return fault(r, i, wfp__json_too_deep);
    if (r->a) {
      if (!(v = node(r, c == '{' ? WFP__J_OBJ : WFP__J_ARR)))
        return fault(r, i, "out of memory");
      *out = v;
    }
    wfp__jv **tail = v ? &v->first : NULL;
    unsigned char close = c == '{' ? '}' : ']';
    i = wfp__json_ws((const char *)s, i + 1, n);
    if (i < n && s[i] == close)
      return i + 1;
    for (;;) {
      const char *key = NULL;
      size_t keylen = 0;
      if (c == '{') {
        if (i >= n || s[i] != '"')
          return fault(r, i, i >= n ? "unexpected end of the text" : "expected a string key");
        if (!(i = r->a ? tree_string(r, i, &key, &keylen) : string(r, i, NULL)))
          return 0;
        i = wfp__json_ws((const char *)s, i, n);
        if (i >= n || s[i] != ':')
          return fault(r, i, "expected ':'");
        i = wfp__json_ws((const char *)s, i + 1, n);
      }
      wfp__jv *kid = NULL;
      if (!(i = value(r, i, depth + 1, &kid)))
        return 0;
      if (v) {
        kid->key = key;
        kid->keylen = keylen;
        *tail = kid;
        tail = &kid->next;
        v->count++;
      }
      i = wfp__json_ws((const char *)s, i, n);
      if (i < n && s[i] == ',') {
        i = wfp__json_ws((const char *)s, i + 1, n);
        continue;
      }
      if (i < n && s[i] == close)
        return i + 1;
      return fault(r, i, i >= n ? "unexpected end of the text"
                         : c == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
    }
  }
  size_t e;
  int type = WFP__J_NUM;
  if (c == 't' || c == 'f' || c == 'n') {
    const char *w = c == 't' ? "true" : c == 'f' ? "false" : "null";
    size_t k = strlen(w);
    if (n - i < k || memcmp(s + i, w, k) != 0)
      return fault(r, i, "not a JSON value");
    e = i + k;
    type = c == 't' ? WFP__J_TRUE : c == 'f' ? WFP__J_FALSE : WFP__J_NULL;
  } else if (!(e = number(r, i))) {
    return 0;
  }
  if (r->a) {
    if (!(v = node(r, type)))
      return fault(r, i, "out of memory");
    v->s = (const char *)s + i;
    v->n = e - i;
    *out = v;
  }
  return e;
}

/* The whole text: one value and white space around it. */
static void whole(rd *r, wfp__jv **out) {
  size_t i = wfp__json_ws((const char *)r->s, 0, r->n);
  size_t e = value(r, i, 0, out);
  if (e) {
    e = wfp__json_ws((const char *)r->s, e, r->n);
    if (e != r->n)
      fault(r, e, "text after the value");
  }
}

int wfp__json_check(const char *s, size_t n, unsigned max_depth, size_t *at,
                    const char **why) {
  rd r;
  memset(&r, 0, sizeof r);
  r.s = (const unsigned char *)(s ? s : "");
  r.n = s ? n : 0;
  r.max = max_depth;
  whole(&r, NULL);
  if (!r.why)
    return WFP_OK;
  if (at)
    *at = r.at;
  if (why)
    *why = r.why;
  return WFP_ESYNTAX;
}

int wfp__json_parse(const char *s, size_t n, unsigned max_depth, wfp__arena *a,
                    wfp__jv **out, size_t *at, const char **why) {
  rd r;
  memset(&r, 0, sizeof r);
  r.s = (const unsigned char *)(s ? s : "");
  r.n = s ? n : 0;
  r.max = max_depth;
  r.a = a;
  wfp__buf_init(&r.str);
  wfp__jv *v = NULL;
  whole(&r, &v);
  wfp__buf_free(&r.str);
  if (r.oom)
    return WFP_ENOMEM;
  if (r.why) {
    if (at)
      *at = r.at;
    if (why)
      *why = r.why;
    return WFP_ESYNTAX;
  }
  *out = v;
  return WFP_OK;
}

size_t wfp__json_skip(const char *s, size_t i, size_t n) {
  rd r;
  memset(&r, 0, sizeof r);
  r.s = (const unsigned char *)s;
  r.n = n;
  r.max = WFP_JSON_MAX_DEPTH;
  return value(&r, i, 0, NULL);
}

size_t wfp__json_string(const char *s, size_t i, size_t n, wfp__buf *out) {
  rd r;
  memset(&r, 0, sizeof r);
  r.s = (const unsigned char *)s;
  r.n = n;
  if (i >= n || s[i] != '"')
    return 0;
  return string(&r, i, out);
}

size_t wfp__json_member(const char *s, size_t i, size_t n, wfp__json_mem *m) {
  i = wfp__json_ws(s, i, n);
  if (i < n && (s[i] == ',' || s[i] == '{'))
    i = wfp__json_ws(s, i + 1, n);
  if (i >= n || s[i] != '"')
    return 0;
  m->key = i;
  if (!(i = wfp__json_skip(s, i, n)))
    return 0;
  m->key_end = i;
  i = wfp__json_ws(s, i, n);
  if (i >= n || s[i] != ':')
    return 0;
  i = wfp__json_ws(s, i + 1, n);
  m->val = i;
  if (!(i = wfp__json_skip(s, i, n)))
    return 0;
  m->val_end = i;
  return wfp__json_ws(s, i, n);
}

bool wfp__json_key_is(const char *s, const wfp__json_mem *m, const char *key, size_t kn) {
  /* a key without escapes is its own text */
  if (!memchr(s + m->key + 1, '\\', m->key_end - m->key - 2))
    return m->key_end - m->key - 2 == kn && memcmp(s + m->key + 1, key, kn) == 0;
  wfp__buf b;
  wfp__buf_init(&b);
  bool eq = wfp__json_string(s, m->key, m->key_end, &b) && !b.oom && b.len == kn &&
            (kn == 0 || memcmp(b.data, key, kn) == 0);
  wfp__buf_free(&b);
  return eq;
}
