/*
** print.c: IR (a cJSON tree, as written or as the text parser made it) ->
** wfp text in the one canonical layout that --emit-text and --fmt share.
** It prints what it is given; checking the program is the front end's job.
*/
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "text_int.h"

#define WIDTH 80

typedef struct Pr {
  wfp__buf *b;
  const wfp__notes *notes;
  wfp__arena *a;
  int indent;
  bool oom;
} Pr;

const wfp__note *wfp__notes_find(const wfp__notes *ns, const char *path) {
  if (!ns || !ns->n || !path)
    return NULL;
  size_t lo = 0, hi = ns->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int c = strcmp(ns->v[mid].path, path);
    if (c == 0)
      return &ns->v[mid];
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

/* ---- small helpers ---- */

static const cJSON *get(const cJSON *o, const char *k) {
  return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
}
static const char *gs(const cJSON *o, const char *k) {
  const cJSON *v = get(o, k);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}
static const char *opname(const cJSON *e) {
  const char *s = gs(e, "op");
  return s ? s : "";
}
static bool is(const cJSON *e, const char *op) { return strcmp(opname(e), op) == 0; }

static void out(Pr *p, const char *s) { wfp__buf_adds(p->b, s); }
static void outc(Pr *p, char c) { wfp__buf_addc(p->b, c); }

static void nl(Pr *p) {
  /* no trailing white space on a line */
  while (p->b->len && p->b->data[p->b->len - 1] == ' ')
    p->b->data[--p->b->len] = 0;
  outc(p, '\n');
  for (int i = 0; i < p->indent; i++)
    out(p, "  ");
}

static int column(const Pr *p) {
  size_t i = p->b->len;
  int c = 0;
  while (i > 0 && p->b->data[i - 1] != '\n') {
    if (((unsigned char)p->b->data[i - 1] & 0xC0) != 0x80)
      c++;
    i--;
  }
  return c;
}

static const char *kpath(Pr *p, const char *base, const char *key) {
  if (!base)
    return NULL;
  const char *r = wfp__text_kpath(p->a, base, key);
  if (!r)
    p->oom = true;
  return r;
}
static const char *ipath(Pr *p, const char *base, int i) {
  if (!base)
    return NULL;
  const char *r = wfp__arena_printf(p->a, "%s[%d]", base, i);
  if (!r)
    p->oom = true;
  return r;
}

static bool ident(const char *s) {
  if (!s || !*s)
    return false;
  for (const char *c = s; *c; c++) {
    bool al = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || *c == '_' || *c == '$';
    bool dg = *c >= '0' && *c <= '9';
    if (!al && !(dg && c != s))
      return false;
  }
  return true;
}

/* a variable, parameter, property or resource name */
static void name(Pr *p, const char *s) {
  if (!s)
    s = "";
  if (!ident(s) || wfp__text_reserved(s))
    outc(p, '#');
  out(p, s);
}

/* a function name where a call could take it for a built-in */
static void fname(Pr *p, const char *s) {
  if (!s)
    s = "";
  if (!ident(s) || wfp__text_reserved(s) || wfp__text_builtin(s))
    outc(p, '#');
  out(p, s);
}

static void str_lit(Pr *p, const char *s, char q, bool tpl) {
  static const char hex[] = "0123456789abcdef";
  if (q)
    outc(p, q);
  for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
    switch (*c) {
    case '"': out(p, q == '"' ? "\\\"" : "\""); break;
    case '`': out(p, tpl ? "\\`" : "`"); break;
    case '\\': out(p, "\\\\"); break;
    case '\n': out(p, "\\n"); break;
    case '\r': out(p, "\\r"); break;
    case '\t': out(p, "\\t"); break;
    case '\b': out(p, "\\b"); break;
    case '\f': out(p, "\\f"); break;
    case '$':
      out(p, tpl && c[1] == '{' ? "\\$" : "$");
      break;
    default:
      if (*c < 0x20 || *c == 0x7f) {
        char e[7] = {'\\', 'u', '0', '0', hex[*c >> 4], hex[*c & 15], 0};
        out(p, e);
      } else {
        outc(p, (char)*c);
      }
    }
  }
  if (q)
    outc(p, q);
}

/* ---- notes ---- */

static const wfp__note *note(Pr *p, const char *path) {
  return p->notes ? wfp__notes_find(p->notes, path) : NULL;
}

static void leading(Pr *p, const wfp__note *n, bool first) {
  if (!n)
    return;
  if (n->blank && !first)
    nl(p);
  for (int i = 0; i < n->nlead; i++) {
    out(p, n->lead[i]);
    nl(p);
  }
  if (n->gap && n->nlead)
    nl(p);
}

/* the comments before a top-level item */
static void top_leading(Pr *p, const wfp__note *n) {
  if (!n)
    return;
  for (int k = 0; k < n->nlead; k++) {
    out(p, n->lead[k]);
    nl(p);
  }
  if (n->gap && n->nlead)
    nl(p);
}

static void trailing(Pr *p, const wfp__note *n) {
  if (n && n->trail) {
    outc(p, ' ');
    out(p, n->trail);
  }
}

/* comments at the end of a block, then the line of its closing brace */
static void block_end_notes(Pr *p, const char *path) {
  const wfp__note *n = path ? note(p, wfp__arena_printf(p->a, "%s#end", path)) : NULL;
  if (!n)
    return;
  for (int i = 0; i < n->nlead; i++) {
    nl(p);
    out(p, n->lead[i]);
  }
}

/* ---- JSON data ---- */

static void json_data(Pr *p, const cJSON *v);
static void expr(Pr *p, const cJSON *e, const char *path, int minprec);

/* A raw item (JSON text kept as written) as a tree; NULL if not JSON. */
static cJSON *raw_tree(const cJSON *v) {
  return wfp__text_json_value(v->valuestring, strlen(v->valuestring));
}

static void key(Pr *p, const char *k) {
  if (ident(k))
    out(p, k);
  else
    str_lit(p, k, '"', false);
}

/* Prints items of an object or array, on one line when that fits and holds
** no line break, else one per line. each(p, item, i) prints one value. */
typedef void (*item_fn)(Pr *p, const cJSON *item, int i, const char *path);

static void items(Pr *p, const cJSON *v, item_fn each, const char *path) {
  bool obj = cJSON_IsObject(v);
  if (!v->child) {
    out(p, obj ? "{}" : "[]");
    return;
  }
  /* try one line */
  wfp__buf tmp;
  wfp__buf_init(&tmp);
  Pr q = *p;
  q.b = &tmp;
  int i = 0;
  outc(&q, obj ? '{' : '[');
  for (const cJSON *c = v->child; c; c = c->next, i++) {
    if (obj) {
      key(&q, c->string);
      out(&q, ": ");
    }
    each(&q, c, i, path);
    if (c->next)
      out(&q, ", ");
  }
  outc(&q, obj ? '}' : ']');
  if (q.oom || tmp.oom)
    p->oom = true;
  if (!memchr(tmp.data ? tmp.data : "", '\n', tmp.len) && column(p) + (int)tmp.len <= WIDTH) {
    wfp__buf_add(p->b, tmp.data, tmp.len);
    wfp__buf_free(&tmp);
    return;
  }
  wfp__buf_free(&tmp);
  outc(p, obj ? '{' : '[');
  p->indent++;
  i = 0;
  for (const cJSON *c = v->child; c; c = c->next, i++) {
    nl(p);
    if (obj) {
      key(p, c->string);
      out(p, ": ");
    }
    each(p, c, i, path);
    if (c->next)
      outc(p, ',');
  }
  p->indent--;
  nl(p);
  outc(p, obj ? '}' : ']');
}

static void json_item(Pr *p, const cJSON *c, int i, const char *path) {
  (void)i;
  (void)path;
  json_data(p, c);
}

static void json_data(Pr *p, const cJSON *v) {
  if (cJSON_IsRaw(v)) {
    /* a number stays as written; other raw text is read as JSON */
    cJSON *t = raw_tree(v);
    if (t && !cJSON_IsRaw(t))
      json_data(p, t);
    else
      out(p, v->valuestring);
    cJSON_Delete(t);
  } else if (cJSON_IsString(v)) {
    str_lit(p, v->valuestring, '"', false);
  } else if (cJSON_IsNumber(v)) {
    wfp__buf_add_i64(p->b, (int64_t)v->valuedouble);
  } else if (cJSON_IsTrue(v)) {
    out(p, "true");
  } else if (cJSON_IsFalse(v)) {
    out(p, "false");
  } else if (cJSON_IsNull(v)) {
    out(p, "null");
  } else if (cJSON_IsArray(v) || cJSON_IsObject(v)) {
    items(p, v, json_item, NULL);
  }
}

/* ---- templates ---- */

static void tpl_value(Pr *p, const cJSON *v, const char *path);

static void tpl_item(Pr *p, const cJSON *c, int i, const char *path) {
  tpl_value(p, c, cJSON_IsObject(c->prev ? c->prev : c) && c->string ? kpath(p, path, c->string)
                                                                       : ipath(p, path, i));
}

static void tpl_member(Pr *p, const cJSON *c, int i, const char *path) {
  tpl_value(p, c, c->string ? kpath(p, path, c->string) : ipath(p, path, i));
}

/* Would the parser read this expression, in a template, as literal
** structure? Then it is written in parentheses. */
static bool hole_needs_parens(const cJSON *e) {
  if (is(e, "lit_i64") || is(e, "lit_str"))
    return true;
  if (is(e, "json")) {
    const cJSON *v = get(e, "value");
    return cJSON_IsObject(v) ? !get(v, "op") : cJSON_IsArray(v);
  }
  return false;
}

static void tpl_value(Pr *p, const cJSON *v, const char *path) {
  if (cJSON_IsObject(v) && get(v, "op")) {
    bool par = hole_needs_parens(v);
    if (par)
      outc(p, '(');
    expr(p, v, path, 0);
    if (par)
      outc(p, ')');
  } else if (cJSON_IsObject(v) || cJSON_IsArray(v)) {
    items(p, v, tpl_member, path);
  } else {
    json_data(p, v);
  }
  (void)tpl_item;
}

/* ---- expressions ---- */

enum { P_OR = 1, P_AND, P_CMP, P_BOR, P_BXOR, P_BAND, P_SHIFT, P_ADD, P_MUL,
       P_UNARY, P_POSTFIX, P_PRIMARY };

static const struct { const char *op, *sym; int prec; } bins[] = {
    {"or", "||", P_OR},    {"and", "&&", P_AND},  {"eq", "==", P_CMP},
    {"ne", "!=", P_CMP},   {"lt", "<", P_CMP},    {"le", "<=", P_CMP},
    {"gt", ">", P_CMP},    {"ge", ">=", P_CMP},   {"bor", "|", P_BOR},
    {"bxor", "^", P_BXOR}, {"band", "&", P_BAND}, {"shl", "<<", P_SHIFT},
    {"shr", ">>", P_SHIFT}, {"add", "+", P_ADD},  {"sub", "-", P_ADD},
    {"mul", "*", P_MUL},   {"div", "/", P_MUL},   {"rem", "%", P_MUL},
    {NULL, NULL, 0}};

static int bin_index(const cJSON *e) {
  const char *op = opname(e);
  for (int i = 0; bins[i].op; i++)
    if (strcmp(bins[i].op, op) == 0)
      return i;
  return -1;
}

static bool lit_negative(const cJSON *e) {
  if (!is(e, "lit_i64"))
    return false;
  const cJSON *v = get(e, "value");
  const char *s = cJSON_IsString(v) || cJSON_IsRaw(v) ? v->valuestring : NULL;
  if (s)
    return s[0] == '-';
  return cJSON_IsNumber(v) && v->valuedouble < 0;
}

static int prec_of(const cJSON *e) {
  int b = bin_index(e);
  if (b >= 0)
    return bins[b].prec;
  if (is(e, "neg") || is(e, "not") || lit_negative(e))
    return P_UNARY;
  if (is(e, "call_ref"))
    return P_POSTFIX;
  return P_PRIMARY;
}

static bool bitwise(int prec) { return prec == P_BOR || prec == P_BXOR || prec == P_BAND || prec == P_SHIFT; }

/* extra parentheses that C and JavaScript readers need */
static bool clarity(const cJSON *parent, const cJSON *child) {
  int bp = bin_index(parent), bc = bin_index(child);
  if (bp < 0 || bc < 0 || strcmp(bins[bp].op, bins[bc].op) == 0)
    return false;
  if (bitwise(bins[bp].prec) || bitwise(bins[bc].prec))
    return true;
  if (bins[bp].prec == P_OR && bins[bc].prec == P_AND)
    return true;
  return bins[bp].prec == P_CMP && bins[bc].prec == P_CMP;
}

static void args(Pr *p, const cJSON *a, const char *path) {
  int i = 0;
  for (const cJSON *c = a ? a->child : NULL; c; c = c->next, i++) {
    if (i)
      out(p, ", ");
    expr(p, c, ipath(p, path, i), 0);
  }
}

static void stmts(Pr *p, const cJSON *body, const char *path);

static void block(Pr *p, const cJSON *body, const char *path) {
  const wfp__note *en = path ? note(p, wfp__arena_printf(p->a, "%s#end", path)) : NULL;
  if ((!body || !body->child) && !en) {
    out(p, "{}");
    return;
  }
  outc(p, '{');
  p->indent++;
  stmts(p, body, path);
  block_end_notes(p, path);
  p->indent--;
  nl(p);
  outc(p, '}');
}

static void params(Pr *p, const cJSON *ps) {
  outc(p, '(');
  int i = 0;
  for (const cJSON *c = ps ? ps->child : NULL; c; c = c->next, i++) {
    if (i)
      out(p, ", ");
    const char *n = cJSON_IsString(c) ? c->valuestring : gs(c, "name");
    const char *t = cJSON_IsString(c) ? NULL : gs(c, "type");
    name(p, n);
    if (t && strcmp(t, "i64") != 0) {
      out(p, ": ");
      out(p, t);
    }
  }
  outc(p, ')');
}

static void i64_text(Pr *p, const cJSON *v) {
  char tmp[32];
  int64_t x = 0;
  const char *s = NULL;
  if (cJSON_IsString(v) || cJSON_IsRaw(v))
    s = v->valuestring;
  if (s && wfp__parse_i64(s, strlen(s), &x)) {
    wfp__fmt_i64(tmp, x);
    out(p, tmp);
  } else if (s) {
    out(p, s);
  } else if (cJSON_IsNumber(v)) {
    wfp__fmt_i64(tmp, (int64_t)v->valuedouble);
    out(p, tmp);
  }
}

static void expr(Pr *p, const cJSON *e, const char *path, int minprec) {
  int prec = prec_of(e);
  bool par = prec < minprec;
  if (par)
    outc(p, '(');
  const char *op = opname(e);
  int b = bin_index(e);
  if (b >= 0) {
    const cJSON *a = get(e, "a"), *bb = get(e, "b");
    bool ca = clarity(e, a), cb = clarity(e, bb);
    if (ca)
      outc(p, '(');
    expr(p, a, kpath(p, path, "a"), ca ? 0 : prec);
    if (ca)
      outc(p, ')');
    outc(p, ' ');
    out(p, bins[b].sym);
    outc(p, ' ');
    if (cb)
      outc(p, '(');
    expr(p, bb, kpath(p, path, "b"), cb ? 0 : prec + 1);
    if (cb)
      outc(p, ')');
  } else if (is(e, "neg") || is(e, "not")) {
    const cJSON *a = get(e, "a");
    outc(p, op[0] == 'n' && op[1] == 'e' ? '-' : '!');
    /* -(5) is neg of a literal; -5 is the literal */
    bool force = is(e, "neg") && (is(a, "lit_i64") || is(a, "neg"));
    if (force)
      outc(p, '(');
    expr(p, a, kpath(p, path, "a"), force ? 0 : P_UNARY);
    if (force)
      outc(p, ')');
  } else if (is(e, "lit_i64")) {
    i64_text(p, get(e, "value"));
  } else if (is(e, "lit_str")) {
    const char *s = gs(e, "value");
    str_lit(p, s ? s : "", '"', false);
  } else if (is(e, "lit_json")) {
    out(p, "json ");
    json_data(p, get(e, "value"));
  } else if (is(e, "var")) {
    name(p, gs(e, "name"));
  } else if (is(e, "concat")) {
    const cJSON *parts = get(e, "parts");
    outc(p, '`');
    bool after_text = false;
    int i = 0;
    for (const cJSON *c = parts ? parts->child : NULL; c; c = c->next, i++) {
      const char *s = is(c, "lit_str") ? gs(c, "value") : NULL;
      if (s && *s && !after_text) {
        str_lit(p, s, 0, true);
        after_text = true;
      } else {
        out(p, "${");
        expr(p, c, ipath(p, kpath(p, path, "parts"), i), 0);
        outc(p, '}');
        after_text = false;
      }
    }
    outc(p, '`');
  } else if (is(e, "json")) {
    const cJSON *v = get(e, "value");
    const char *vp = kpath(p, path, "value");
    if ((cJSON_IsObject(v) && !get(v, "op")) || cJSON_IsArray(v)) {
      tpl_value(p, v, vp);
    } else {
      out(p, "json(");
      tpl_value(p, v, vp);
      outc(p, ')');
    }
  } else if (is(e, "input")) {
    out(p, "input()");
  } else if (is(e, "get_i64") || is(e, "get_str") || is(e, "get_json")) {
    out(p, op);
    outc(p, '(');
    expr(p, get(e, "from"), kpath(p, path, "from"), 0);
    const cJSON *ps = get(e, "path");
    for (const cJSON *c = ps ? ps->child : NULL; c; c = c->next) {
      out(p, ", ");
      if (cJSON_IsString(c))
        str_lit(p, c->valuestring, '"', false);
      else
        i64_text(p, c);
    }
    outc(p, ')');
  } else if (is(e, "len")) {
    out(p, "len(");
    expr(p, get(e, "a"), kpath(p, path, "a"), 0);
    outc(p, ')');
  } else if (is(e, "call")) {
    fname(p, gs(e, "fn"));
    outc(p, '(');
    args(p, get(e, "args"), kpath(p, path, "args"));
    outc(p, ')');
  } else if (is(e, "call_ref")) {
    const cJSON *f = get(e, "fn");
    expr(p, f, kpath(p, path, "fn"), P_POSTFIX);
    out(p, ".(");
    args(p, get(e, "args"), kpath(p, path, "args"));
    outc(p, ')');
  } else if (is(e, "fn")) {
    out(p, "fn ");
    fname(p, gs(e, "name"));
    const cJSON *c = get(e, "captures");
    if (c && c->child) {
      out(p, " with (");
      args(p, c, kpath(p, path, "captures"));
      outc(p, ')');
    }
  } else if (is(e, "lambda")) {
    out(p, "fn");
    params(p, get(e, "params"));
    outc(p, ' ');
    block(p, get(e, "body"), kpath(p, path, "body"));
  } else if (is(e, "ctx_get_i64")) {
    out(p, "ctx.get(");
    str_lit(p, gs(e, "key") ? gs(e, "key") : "", '"', false);
    outc(p, ')');
  } else if (is(e, "ctx_set_i64")) {
    out(p, "ctx.set(");
    str_lit(p, gs(e, "key") ? gs(e, "key") : "", '"', false);
    out(p, ", ");
    expr(p, get(e, "value"), kpath(p, path, "value"), 0);
    outc(p, ')');
  } else if (is(e, "msg_send")) {
    out(p, "msg.send(");
    str_lit(p, gs(e, "topic") ? gs(e, "topic") : "", '"', false);
    out(p, ", ");
    expr(p, get(e, "payload"), kpath(p, path, "payload"), 0);
    outc(p, ')');
  } else if (is(e, "sleep_ms")) {
    out(p, "sleep(");
    expr(p, get(e, "ms"), kpath(p, path, "ms"), 0);
    outc(p, ')');
  } else if (is(e, "db_query")) {
    out(p, "db.query(");
    str_lit(p, gs(e, "sql") ? gs(e, "sql") : "", '"', false);
    const cJSON *ps = get(e, "params"), *each = get(e, "each");
    if (ps && ps->child) {
      out(p, ", [");
      args(p, ps, kpath(p, path, "params"));
      outc(p, ']');
    }
    if (each && !cJSON_IsNull(each)) {
      out(p, ", ");
      expr(p, each, kpath(p, path, "each"), 0);
    }
    outc(p, ')');
  } else if (is(e, "self_get")) {
    out(p, "self.");
    out(p, gs(e, "property") ? gs(e, "property") : "");
  } else if (is(e, "self_set")) {
    out(p, "self.");
    out(p, gs(e, "property") ? gs(e, "property") : "");
    out(p, " = ");
    expr(p, get(e, "value"), kpath(p, path, "value"), 0);
  } else {
    /* not an IR expression: only a program the checker refuses has one */
    out(p, "json ");
    json_data(p, e);
  }
  if (par)
    outc(p, ')');
}

/* ---- statements ---- */

static void stmt(Pr *p, const cJSON *s, const char *path);

static void if_stmt(Pr *p, const cJSON *s, const char *path) {
  out(p, "if ");
  expr(p, get(s, "cond"), kpath(p, path, "cond"), 0);
  outc(p, ' ');
  block(p, get(s, "then"), kpath(p, path, "then"));
  const cJSON *el = get(s, "else");
  if (!el || !el->child)
    return;
  const char *ep = kpath(p, path, "else");
  const char *e0 = ipath(p, ep, 0);
  if (!el->child->next && is(el->child, "if") && !note(p, e0) &&
      !note(p, wfp__arena_printf(p->a, "%s#end", ep))) {
    out(p, " else ");
    if_stmt(p, el->child, e0);
  } else {
    out(p, " else ");
    block(p, el, ep);
  }
}

static void stmt(Pr *p, const cJSON *s, const char *path) {
  const char *op = opname(s);
  if (strcmp(op, "let") == 0 || strcmp(op, "set") == 0) {
    if (op[0] == 'l')
      out(p, "let ");
    name(p, gs(s, "name"));
    out(p, " = ");
    expr(p, get(s, "expr"), kpath(p, path, "expr"), 0);
  } else if (strcmp(op, "expr") == 0) {
    expr(p, get(s, "expr"), kpath(p, path, "expr"), 0);
  } else if (strcmp(op, "return") == 0) {
    const cJSON *e = get(s, "expr");
    out(p, "return");
    if (e && !cJSON_IsNull(e)) {
      outc(p, ' ');
      expr(p, e, kpath(p, path, "expr"), 0);
    }
  } else if (strcmp(op, "if") == 0) {
    if_stmt(p, s, path);
  } else if (strcmp(op, "while") == 0) {
    out(p, "while ");
    expr(p, get(s, "cond"), kpath(p, path, "cond"), 0);
    outc(p, ' ');
    block(p, get(s, "body"), kpath(p, path, "body"));
  } else if (strcmp(op, "break") == 0 || strcmp(op, "continue") == 0) {
    out(p, op);
  } else if (strcmp(op, "trap") == 0) {
    out(p, "trap ");
    str_lit(p, gs(s, "message") ? gs(s, "message") : "", '"', false);
  } else {
    expr(p, s, path, 0);
  }
}

static void stmts(Pr *p, const cJSON *body, const char *path) {
  int i = 0;
  for (const cJSON *c = body ? body->child : NULL; c; c = c->next, i++) {
    const char *sp = ipath(p, path, i);
    const wfp__note *n = note(p, sp);
    nl(p);
    leading(p, n, i == 0);
    stmt(p, c, sp);
    trailing(p, n);
  }
}

/* ---- functions, resources, the program ---- */

typedef struct Prog {
  const cJSON *prog;
  const cJSON **f; /* functions, in order */
  const char **fpath;
  int nf;
  int *parent;     /* index of the parent, -1 */
  bool *inside;    /* written inside its parent's body */
  int **kids;      /* functions written inside each one, in order */
  int *nkids;
  const cJSON **r;
  int nr;
  bool *rinline;   /* its methods are written in its block */
  int *rpos;       /* position in T of its first method */
  int *T;          /* top-level functions, in order */
  int nT;
} Prog;

static void function(Pr *p, Prog *g, int i, bool in_block);

static void attrs(Pr *p, const cJSON *f) {
  const char *id = gs(f, "id");
  if (id && *id) {
    out(p, "@id(");
    str_lit(p, id, '"', false);
    outc(p, ')');
    nl(p);
  }
  const char *ni = gs(f, "nested_in");
  if (ni) {
    out(p, "@nested_in(");
    fname(p, ni);
    outc(p, ')');
    nl(p);
  }
  const cJSON *caps = get(f, "captures");
  if (cJSON_IsArray(caps)) {
    out(p, "@captures(");
    int k = 0;
    for (const cJSON *c = caps->child; c; c = c->next, k++) {
      if (k)
        out(p, ", ");
      name(p, cJSON_IsString(c) ? c->valuestring : "");
    }
    outc(p, ')');
    nl(p);
  }
}

static void function(Pr *p, Prog *g, int i, bool in_block) {
  const cJSON *f = g->f[i];
  const char *path = g->fpath[i];
  const wfp__note *n = note(p, path);
  top_leading(p, n);
  attrs(p, f);
  out(p, "fn ");
  const char *res = gs(f, "resource");
  if (res && !in_block) {
    name(p, res);
    outc(p, '.');
  }
  name(p, gs(f, "name"));
  params(p, get(f, "params"));
  const char *parent = gs(f, "parent");
  if (parent && !g->inside[i]) {
    out(p, " in ");
    fname(p, parent);
  }
  outc(p, ' ');
  const cJSON *body = get(f, "body");
  const char *bp = kpath(p, path, "body");
  const wfp__note *en = note(p, wfp__arena_printf(p->a, "%s#end", bp));
  if ((!body || !body->child) && !g->nkids[i] && !en) {
    out(p, "{}");
  } else {
    outc(p, '{');
    p->indent++;
    stmts(p, body, bp);
    for (int k = 0; k < g->nkids[i]; k++) {
      if (body && body->child)
        nl(p);
      else if (k)
        nl(p);
      nl(p);
      function(p, g, g->kids[i][k], false);
    }
    block_end_notes(p, bp);
    p->indent--;
    nl(p);
    outc(p, '}');
  }
  trailing(p, n);
}

static void resource(Pr *p, Prog *g, int k, int t0) {
  const cJSON *r = g->r[k];
  const char *path = wfp__arena_printf(p->a, "$.resources[%d]", k);
  const wfp__note *n = note(p, path);
  top_leading(p, n);
  out(p, "resource ");
  name(p, gs(r, "name"));
  outc(p, ' ');
  const cJSON *props = get(r, "properties"), *ms = get(r, "methods");
  const wfp__note *en = note(p, wfp__arena_printf(p->a, "%s#end", path));
  bool any = (props && props->child) || (ms && ms->child) || en;
  if (!any) {
    out(p, "{}");
    trailing(p, n);
    return;
  }
  outc(p, '{');
  p->indent++;
  int i = 0;
  const char *pp = kpath(p, path, "properties");
  for (const cJSON *c = props ? props->child : NULL; c; c = c->next, i++) {
    const char *cp = ipath(p, pp, i);
    const wfp__note *cn = note(p, cp);
    nl(p);
    leading(p, cn, i == 0);
    const char *pn = cJSON_IsString(c) ? c->valuestring : gs(c, "name");
    const char *pt = cJSON_IsString(c) ? NULL : gs(c, "type");
    name(p, pn);
    out(p, ": ");
    out(p, pt ? pt : "i64");
    trailing(p, cn);
  }
  int nm = cJSON_GetArraySize(ms);
  if (g->rinline[k]) {
    for (int m = 0; m < nm; m++) {
      if (i || m)
        nl(p);
      nl(p);
      function(p, g, g->T[t0 + m], true);
    }
  } else if (nm) {
    if (i)
      nl(p);
    nl(p);
    out(p, "methods ");
    int m = 0;
    for (const cJSON *c = ms->child; c; c = c->next, m++) {
      if (m)
        out(p, ", ");
      name(p, cJSON_IsString(c) ? c->valuestring : "");
    }
  }
  block_end_notes(p, path);
  p->indent--;
  nl(p);
  outc(p, '}');
  trailing(p, n);
}

static int find_fn(Prog *g, const char *nm) {
  for (int i = 0; nm && i < g->nf; i++) {
    const char *s = gs(g->f[i], "name");
    if (s && strcmp(s, nm) == 0)
      return i;
  }
  return -1;
}

/* Decides where each function and resource is written (see docs/language.md,
** "Order"): the text keeps the IR's order of functions exactly. */
static bool layout(Pr *p, Prog *g) {
  const cJSON *fa = get(g->prog, "functions"), *ra = get(g->prog, "resources");
  g->nf = cJSON_GetArraySize(fa);
  g->nr = cJSON_GetArraySize(ra);
  size_t nf = (size_t)g->nf + 1, nr = (size_t)g->nr + 1;
  g->f = wfp__arena_alloc(p->a, sizeof *g->f * nf);
  g->fpath = wfp__arena_alloc(p->a, sizeof *g->fpath * nf);
  g->parent = wfp__arena_alloc(p->a, sizeof *g->parent * nf);
  g->inside = wfp__arena_alloc(p->a, sizeof *g->inside * nf);
  g->kids = wfp__arena_alloc(p->a, sizeof *g->kids * nf);
  g->nkids = wfp__arena_alloc(p->a, sizeof *g->nkids * nf);
  g->T = wfp__arena_alloc(p->a, sizeof *g->T * nf);
  g->r = wfp__arena_alloc(p->a, sizeof *g->r * nr);
  g->rinline = wfp__arena_alloc(p->a, sizeof *g->rinline * nr);
  g->rpos = wfp__arena_alloc(p->a, sizeof *g->rpos * nr);
  int *stack = wfp__arena_alloc(p->a, sizeof *stack * nf);
  if (!g->f || !g->fpath || !g->parent || !g->inside || !g->kids || !g->nkids ||
      !g->T || !g->r || !g->rinline || !g->rpos || !stack)
    return false;
  int i = 0;
  for (const cJSON *c = fa ? fa->child : NULL; c; c = c->next, i++) {
    g->f[i] = c;
    g->fpath[i] = wfp__arena_printf(p->a, "$.functions[%d]", i);
  }
  i = 0;
  for (const cJSON *c = ra ? ra->child : NULL; c; c = c->next, i++)
    g->r[i] = c;
  /* nesting: inside the parent when the order is the parent's pre-order */
  int sp = 0;
  for (i = 0; i < g->nf; i++) {
    const char *pn = gs(g->f[i], "parent");
    int pi = find_fn(g, pn);
    g->parent[i] = pi;
    int at = -1;
    for (int s = sp - 1; s >= 0 && pi >= 0; s--)
      if (stack[s] == pi) {
        at = s;
        break;
      }
    if (at >= 0 && !gs(g->f[i], "resource") && !get(g->f[i], "nested_in")) {
      sp = at + 1;
      stack[sp++] = i;
      g->inside[i] = true;
      if (!g->kids[pi]) {
        g->kids[pi] = wfp__arena_alloc(p->a, sizeof(int) * nf);
        if (!g->kids[pi])
          return false;
      }
      g->kids[pi][g->nkids[pi]++] = i;
    } else {
      sp = 0;
      stack[sp++] = i;
      g->T[g->nT++] = i;
    }
  }
  /* resources: methods in the block when they follow each other in T, in
  ** the order of the methods list, and the blocks keep the resources' order */
  int last = -1;
  for (int k = 0; k < g->nr; k++) {
    const cJSON *ms = get(g->r[k], "methods");
    const char *rn = gs(g->r[k], "name");
    int nm = cJSON_GetArraySize(ms);
    g->rinline[k] = false;
    if (!nm || !rn)
      continue;
    int t0 = -1;
    for (int t = 0; t < g->nT; t++)
      if (ms->child && cJSON_IsString(ms->child) &&
          strcmp(gs(g->f[g->T[t]], "name") ? gs(g->f[g->T[t]], "name") : "", ms->child->valuestring) == 0) {
        t0 = t;
        break;
      }
    bool ok = t0 >= 0 && t0 > last && t0 + nm <= g->nT;
    int m = 0;
    for (const cJSON *c = ms->child; ok && c; c = c->next, m++) {
      const cJSON *f = g->f[g->T[t0 + m]];
      const char *fr = gs(f, "resource"), *fnm = gs(f, "name");
      ok = cJSON_IsString(c) && fnm && strcmp(fnm, c->valuestring) == 0 && fr &&
           strcmp(fr, rn) == 0;
    }
    /* every function of the resource is one of these */
    for (int t = 0; ok && t < g->nT; t++) {
      const char *fr = gs(g->f[g->T[t]], "resource");
      if (fr && strcmp(fr, rn) == 0 && (t < t0 || t >= t0 + nm))
        ok = false;
    }
    for (int f = 0; ok && f < g->nf; f++) {
      const char *fr = gs(g->f[f], "resource");
      if (g->inside[f] && fr && strcmp(fr, rn) == 0)
        ok = false;
    }
    /* an earlier resource of the same name would take these methods */
    for (int k2 = 0; ok && k2 < k; k2++) {
      const char *n2 = gs(g->r[k2], "name");
      if (n2 && strcmp(n2, rn) == 0)
        ok = false;
    }
    if (ok) {
      g->rinline[k] = true;
      g->rpos[k] = t0;
      last = t0 + nm - 1;
    }
  }
  return true;
}

bool wfp__text_print(const cJSON *prog, const wfp__notes *notes, wfp__buf *b) {
  wfp__arena a;
  wfp__arena_init(&a);
  Pr pr = {b, notes, &a, 0, false};
  Pr *p = &pr;
  Prog g;
  memset(&g, 0, sizeof g);
  g.prog = prog;
  if (!layout(p, &g)) {
    wfp__arena_free(&a);
    return false;
  }
  bool first = true;
  const char *entry = gs(prog, "entry");
  if (entry) {
    const wfp__note *n = note(p, "$.entry");
    top_leading(p, n);
    out(p, "entry ");
    fname(p, entry);
    trailing(p, n);
    nl(p);
    first = false;
  }
  int rk = 0, t = 0;
  for (;;) {
    /* resources go where their methods are, the others after the one
    ** before them in the program's order */
    while (rk < g.nr && !g.rinline[rk]) {
      if (!first)
        nl(p);
      first = false;
      resource(p, &g, rk++, 0);
      nl(p);
    }
    if (rk < g.nr && g.rpos[rk] == t) {
      if (!first)
        nl(p);
      first = false;
      resource(p, &g, rk, t);
      nl(p);
      t += cJSON_GetArraySize(get(g.r[rk], "methods"));
      rk++;
      continue;
    }
    if (t >= g.nT)
      break;
    if (!first)
      nl(p);
    first = false;
    function(p, &g, g.T[t++], false);
    nl(p);
  }
  const wfp__note *eof = note(p, "#eof");
  if (eof) {
    if (!first)
      nl(p);
    for (int k = 0; k < eof->nlead; k++) {
      out(p, eof->lead[k]);
      nl(p);
    }
  }
  bool ok = !p->oom && !b->oom;
  wfp__arena_free(&a);
  return ok;
}
