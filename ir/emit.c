/*
** emit.c: the AST written back as JSON. One writer serves the canonical form
** (compact, object keys sorted by bytes: what IDs and the program hash are
** computed from) and the indented form people read (--emit-ir).
*/
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ir_ast.h"

/* ---- the JSON writer ---- */

static int keycmp(const void *a, const void *b) {
  const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
  return strcmp(x->string, y->string);
}

static void newline(wfp__buf *b, int indent, int depth) {
  if (indent < 0)
    return;
  wfp__buf_addc(b, '\n');
  for (int i = 0; i < indent * depth; i++)
    wfp__buf_addc(b, ' ');
}

void wfp__json_write(wfp__buf *b, const cJSON *v, bool sorted, int indent,
                     int depth) {
  if (cJSON_IsRaw(v)) {
    wfp__buf_adds(b, v->valuestring);
  } else if (cJSON_IsString(v)) {
    wfp__buf_add_jstr(b, v->valuestring, strlen(v->valuestring));
  } else if (cJSON_IsNumber(v)) {
    /* numbers we build ourselves are integers */
    wfp__buf_add_i64(b, (int64_t)v->valuedouble);
  } else if (cJSON_IsTrue(v)) {
    wfp__buf_adds(b, "true");
  } else if (cJSON_IsFalse(v)) {
    wfp__buf_adds(b, "false");
  } else if (cJSON_IsNull(v)) {
    wfp__buf_adds(b, "null");
  } else if (cJSON_IsArray(v)) {
    if (!v->child) {
      wfp__buf_adds(b, "[]");
      return;
    }
    wfp__buf_addc(b, '[');
    for (const cJSON *c = v->child; c; c = c->next) {
      newline(b, indent, depth + 1);
      wfp__json_write(b, c, sorted, indent, depth + 1);
      if (c->next)
        wfp__buf_addc(b, ',');
    }
    newline(b, indent, depth);
    wfp__buf_addc(b, ']');
  } else if (cJSON_IsObject(v)) {
    int n = 0;
    for (const cJSON *c = v->child; c; c = c->next)
      n++;
    if (!n) {
      wfp__buf_adds(b, "{}");
      return;
    }
    const cJSON *small[32];
    const cJSON **kids = n <= 32 ? small : malloc(sizeof *kids * (size_t)n);
    if (!kids) {
      b->oom = true;
      return;
    }
    int i = 0;
    for (const cJSON *c = v->child; c; c = c->next)
      kids[i++] = c;
    if (sorted && !(v->type & WFP_JSON_KEEP_ORDER))
      qsort(kids, (size_t)n, sizeof *kids, keycmp);
    wfp__buf_addc(b, '{');
    for (i = 0; i < n; i++) {
      newline(b, indent, depth + 1);
      wfp__buf_add_jstr(b, kids[i]->string, strlen(kids[i]->string));
      wfp__buf_addc(b, ':');
      if (indent >= 0)
        wfp__buf_addc(b, ' ');
      wfp__json_write(b, kids[i], sorted, indent, depth + 1);
      if (i + 1 < n)
        wfp__buf_addc(b, ',');
    }
    newline(b, indent, depth);
    wfp__buf_addc(b, '}');
    if (kids != small)
      free(kids);
  }
}

char *wfp__json_canonical(const cJSON *v, size_t *len) {
  wfp__buf b;
  wfp__buf_init(&b);
  wfp__json_write(&b, v, true, -1, 0);
  if (b.oom) {
    wfp__buf_free(&b);
    return NULL;
  }
  return wfp__buf_take(&b, len);
}

char *wfp__json_pretty(const cJSON *v, size_t *len) {
  wfp__buf b;
  wfp__buf_init(&b);
  wfp__json_write(&b, v, false, 2, 0);
  wfp__buf_addc(&b, '\n');
  if (b.oom) {
    wfp__buf_free(&b);
    return NULL;
  }
  return wfp__buf_take(&b, len);
}

/* ---- AST -> cJSON ---- */

typedef struct E {
  wfp_program *p;
  bool lifted;
  bool oom;
} E;

static cJSON *chk(E *x, cJSON *v) {
  if (!v)
    x->oom = true;
  return v;
}

static void add(E *x, cJSON *obj, const char *k, cJSON *v) {
  if (!v) {
    x->oom = true;
    return;
  }
  if (!cJSON_AddItemToObject(obj, k, v)) {
    cJSON_Delete(v);
    x->oom = true;
  }
}

static void push(E *x, cJSON *arr, cJSON *v) {
  if (!v) {
    x->oom = true;
    return;
  }
  if (!cJSON_AddItemToArray(arr, v)) {
    cJSON_Delete(v);
    x->oom = true;
  }
}

static cJSON *str_n(E *x, const char *s, size_t n) {
  /* cJSON strings are NUL-terminated; the IR refuses U+0000, so n == strlen */
  (void)n;
  return chk(x, cJSON_CreateString(s));
}

static cJSON *i64_json(E *x, int64_t v) {
  /* a JSON number when exactly representable everywhere, else a string */
  char tmp[24];
  wfp__fmt_i64(tmp, v);
  if (v >= -9007199254740992LL && v <= 9007199254740992LL)
    return chk(x, cJSON_CreateRaw(tmp));
  return chk(x, cJSON_CreateString(tmp));
}

static const char *var_name(const E *x, const wfp_var *v) {
  return x->lifted && v->lifted_name ? v->lifted_name : v->name;
}

static const char *type_word(wfp_type *t) {
  t = wfp__type_find(t);
  switch (t ? t->kind : WFP_T_ERROR) {
  case WFP_T_I64: return "i64";
  case WFP_T_STR: return "str";
  case WFP_T_JSON: return "json";
  case WFP_T_FN: return "fn";
  case WFP_T_VAR: return t->want_fn ? "fn" : "i64";
  default: return "i64";
  }
}

static cJSON *expr_json(E *x, const wfp_expr *e);
static cJSON *block_json(E *x, const wfp_block *b);

static cJSON *var_ref(E *x, const wfp_var *v) {
  cJSON *o = chk(x, cJSON_CreateObject());
  if (!o)
    return NULL;
  add(x, o, "op", cJSON_CreateString("var"));
  add(x, o, "name", cJSON_CreateString(var_name(x, v)));
  return o;
}

static cJSON *tpl_json(E *x, const wfp_jtpl *t) {
  switch (t->kind) {
  case WFP_J_LIT:
    return chk(x, cJSON_CreateRaw(t->text ? t->text : "null"));
  case WFP_J_HOLE:
    return expr_json(x, t->hole);
  case WFP_J_OBJ:
  case WFP_J_ARR: {
    cJSON *o = chk(x, t->kind == WFP_J_OBJ ? cJSON_CreateObject() : cJSON_CreateArray());
    if (!o)
      return NULL;
    /* the output keeps the template's key order: so does its ID */
    o->type |= WFP_JSON_KEEP_ORDER;
    for (int i = 0; i < t->n; i++) {
      if (t->kind == WFP_J_OBJ)
        add(x, o, t->keys[i], tpl_json(x, t->items[i]));
      else
        push(x, o, tpl_json(x, t->items[i]));
    }
    return o;
  }
  }
  return NULL;
}

static cJSON *params_json(E *x, const wfp_func *f, bool with_caps) {
  cJSON *a = chk(x, cJSON_CreateArray());
  if (!a)
    return NULL;
  if (with_caps)
    for (int i = 0; i < f->ncaps; i++) {
      cJSON *o = chk(x, cJSON_CreateObject());
      if (!o)
        return a;
      add(x, o, "name", cJSON_CreateString(f->caps[i]->name));
      add(x, o, "type", cJSON_CreateString(type_word(f->caps[i]->type)));
      push(x, a, o);
    }
  for (int i = 0; i < f->nparams; i++) {
    cJSON *o = chk(x, cJSON_CreateObject());
    if (!o)
      return a;
    add(x, o, "name", cJSON_CreateString(f->params[i]->name));
    add(x, o, "type", cJSON_CreateString(type_word(f->params[i]->type)));
    push(x, a, o);
  }
  return a;
}

/* The declared type of a param as written (before inference) is what the
** canonical form needs; after the check every param type is resolved, and a
** fn param's signature is not part of the IR. */

static cJSON *fnref_json(E *x, const wfp_expr *e, const char *name) {
  cJSON *o = chk(x, cJSON_CreateObject());
  if (!o)
    return NULL;
  add(x, o, "op", cJSON_CreateString("fn"));
  add(x, o, "name", cJSON_CreateString(name));
  if (x->lifted && e->ncapargs) {
    cJSON *c = chk(x, cJSON_CreateArray());
    for (int i = 0; c && i < e->ncapargs; i++)
      push(x, c, var_ref(x, e->capargs[i]));
    add(x, o, "captures", c);
  } else if (e->nbound) {
    cJSON *c = chk(x, cJSON_CreateArray());
    for (int i = 0; c && i < e->nbound; i++)
      push(x, c, expr_json(x, e->bound[i]));
    add(x, o, "captures", c);
  }
  return o;
}

static cJSON *expr_json(E *x, const wfp_expr *e) {
  if (!e)
    return chk(x, cJSON_CreateNull());
  if (e->op == WFP_OP_LAMBDA && x->lifted)
    return fnref_json(x, e, e->target->name);
  if (e->op == WFP_OP_FN)
    return fnref_json(x, e, e->str);
  cJSON *o = chk(x, cJSON_CreateObject());
  if (!o)
    return NULL;
  add(x, o, "op", cJSON_CreateString(wfp__expr_op_name(e->op)));
  switch (e->op) {
  case WFP_OP_LIT_I64:
    add(x, o, "value", i64_json(x, e->ival));
    break;
  case WFP_OP_LIT_STR:
    add(x, o, "value", str_n(x, e->str, e->slen));
    break;
  case WFP_OP_LIT_JSON:
    /* the compact text, order kept: keys of JSON data are not IR fields */
    add(x, o, "value", chk(x, cJSON_CreateRaw(e->str)));
    break;
  case WFP_OP_VAR:
    add(x, o, "name", cJSON_CreateString(e->var && x->lifted ? var_name(x, e->var) : e->str));
    break;
  case WFP_OP_ADD: case WFP_OP_SUB: case WFP_OP_MUL: case WFP_OP_DIV:
  case WFP_OP_REM: case WFP_OP_BAND: case WFP_OP_BOR: case WFP_OP_BXOR:
  case WFP_OP_SHL: case WFP_OP_SHR: case WFP_OP_EQ: case WFP_OP_NE:
  case WFP_OP_LT: case WFP_OP_LE: case WFP_OP_GT: case WFP_OP_GE:
  case WFP_OP_AND: case WFP_OP_OR:
    add(x, o, "a", expr_json(x, e->a));
    add(x, o, "b", expr_json(x, e->b));
    break;
  case WFP_OP_NEG: case WFP_OP_NOT: case WFP_OP_LEN:
    add(x, o, "a", expr_json(x, e->a));
    break;
  case WFP_OP_CONCAT: {
    cJSON *a = chk(x, cJSON_CreateArray());
    for (int i = 0; a && i < e->nargs; i++)
      push(x, a, expr_json(x, e->args[i]));
    add(x, o, "parts", a);
    break;
  }
  case WFP_OP_JSON:
    add(x, o, "value", tpl_json(x, e->tpl));
    break;
  case WFP_OP_INPUT:
    break;
  case WFP_OP_GET_I64: case WFP_OP_GET_STR: case WFP_OP_GET_JSON: {
    add(x, o, "from", expr_json(x, e->a));
    cJSON *a = chk(x, cJSON_CreateArray());
    for (int i = 0; a && i < e->nsegs; i++)
      push(x, a, e->segs[i].is_index ? i64_json(x, e->segs[i].index)
                                     : str_n(x, e->segs[i].key, e->segs[i].keylen));
    add(x, o, "path", a);
    break;
  }
  case WFP_OP_CALL: {
    add(x, o, "fn", cJSON_CreateString(e->str));
    cJSON *a = chk(x, cJSON_CreateArray());
    if (x->lifted)
      for (int i = 0; a && i < e->ncapargs; i++)
        push(x, a, var_ref(x, e->capargs[i]));
    for (int i = 0; a && i < e->nargs; i++)
      push(x, a, expr_json(x, e->args[i]));
    add(x, o, "args", a);
    break;
  }
  case WFP_OP_CALL_REF: {
    add(x, o, "fn", expr_json(x, e->a));
    cJSON *a = chk(x, cJSON_CreateArray());
    for (int i = 0; a && i < e->nargs; i++)
      push(x, a, expr_json(x, e->args[i]));
    add(x, o, "args", a);
    break;
  }
  case WFP_OP_LAMBDA:
    add(x, o, "params", params_json(x, e->target, false));
    add(x, o, "body", block_json(x, &e->target->body));
    break;
  case WFP_OP_CTX_GET_I64:
    add(x, o, "key", str_n(x, e->str, e->slen));
    break;
  case WFP_OP_CTX_SET_I64:
    add(x, o, "key", str_n(x, e->str, e->slen));
    add(x, o, "value", expr_json(x, e->a));
    break;
  case WFP_OP_MSG_SEND:
    add(x, o, "topic", str_n(x, e->str, e->slen));
    add(x, o, "payload", expr_json(x, e->a));
    break;
  case WFP_OP_SLEEP_MS:
    add(x, o, "ms", expr_json(x, e->a));
    break;
  case WFP_OP_DB_QUERY:
    add(x, o, "sql", str_n(x, e->str, e->slen));
    if (e->nargs) {
      cJSON *a = chk(x, cJSON_CreateArray());
      for (int i = 0; a && i < e->nargs; i++)
        push(x, a, expr_json(x, e->args[i]));
      add(x, o, "params", a);
    }
    if (e->each)
      add(x, o, "each", expr_json(x, e->each));
    break;
  case WFP_OP_SELF_GET:
    add(x, o, "property", str_n(x, e->str, e->slen));
    break;
  case WFP_OP_SELF_SET:
    add(x, o, "property", str_n(x, e->str, e->slen));
    add(x, o, "value", expr_json(x, e->a));
    break;
  case WFP_OP_FN:
  case WFP_OP__COUNT:
    break;
  }
  return o;
}

static cJSON *stmt_json(E *x, const wfp_stmt *s) {
  cJSON *o = chk(x, cJSON_CreateObject());
  if (!o)
    return NULL;
  add(x, o, "op", cJSON_CreateString(wfp__stmt_op_name(s->op)));
  switch (s->op) {
  case WFP_ST_LET:
  case WFP_ST_SET:
    add(x, o, "name", cJSON_CreateString(var_name(x, s->var)));
    add(x, o, "expr", expr_json(x, s->e));
    break;
  case WFP_ST_EXPR:
    add(x, o, "expr", expr_json(x, s->e));
    break;
  case WFP_ST_RETURN:
    if (s->e)
      add(x, o, "expr", expr_json(x, s->e));
    break;
  case WFP_ST_IF:
    add(x, o, "cond", expr_json(x, s->e));
    add(x, o, "then", block_json(x, &s->then_));
    if (s->else_.n)
      add(x, o, "else", block_json(x, &s->else_));
    break;
  case WFP_ST_WHILE:
    add(x, o, "cond", expr_json(x, s->e));
    add(x, o, "body", block_json(x, &s->body));
    break;
  case WFP_ST_TRAP:
    add(x, o, "message", str_n(x, s->msg, s->msglen));
    break;
  case WFP_ST_BREAK:
  case WFP_ST_CONTINUE:
  case WFP_ST__COUNT:
    break;
  }
  return o;
}

static cJSON *block_json(E *x, const wfp_block *b) {
  cJSON *a = chk(x, cJSON_CreateArray());
  for (int i = 0; a && i < b->n; i++)
    push(x, a, stmt_json(x, b->v[i]));
  return a;
}

/* The nearest enclosing named function. */
static const wfp_func *named_ancestor(const wfp_func *f) {
  const wfp_func *a = f->parent;
  while (a && a->is_lambda)
    a = a->parent;
  return a;
}

cJSON *wfp__func_to_json(wfp_program *p, const wfp_func *f, bool lifted) {
  E x = {p, lifted, false};
  cJSON *o = cJSON_CreateObject();
  if (!o)
    return NULL;
  if (lifted) {
    add(&x, o, "id", cJSON_CreateString(f->id));
    add(&x, o, "name", cJSON_CreateString(f->name));
    add(&x, o, "parent", cJSON_CreateNull());
    if (f->parent)
      add(&x, o, "nested_in", cJSON_CreateString(f->parent->name));
    else if (f->meta_nested_in)
      add(&x, o, "nested_in", cJSON_CreateString(f->meta_nested_in));
    if (f->ncaps) {
      cJSON *c = chk(&x, cJSON_CreateArray());
      for (int i = 0; c && i < f->ncaps; i++)
        push(&x, c, cJSON_CreateString(f->caps[i]->name));
      add(&x, o, "captures", c);
    } else if (f->meta_ncaptures) {
      cJSON *c = chk(&x, cJSON_CreateArray());
      for (int i = 0; c && i < f->meta_ncaptures; i++)
        push(&x, c, cJSON_CreateString(f->params[i]->name));
      add(&x, o, "captures", c);
    }
    if (f->resource)
      add(&x, o, "resource", cJSON_CreateString(f->resource->name));
    add(&x, o, "params", params_json(&x, f, true));
    add(&x, o, "body", block_json(&x, &f->body));
  } else if (f->is_lambda) {
    /* a lambda's content, placed by its enclosing named function and rank */
    const wfp_func *a = named_ancestor(f);
    add(&x, o, "in", cJSON_CreateString(a ? a->id : ""));
    add(&x, o, "lambda", i64_json(&x, f->lambda_ordinal));
    add(&x, o, "params", params_json(&x, f, false));
    add(&x, o, "body", block_json(&x, &f->body));
  } else {
    add(&x, o, "name", cJSON_CreateString(f->name ? f->name : ""));
    add(&x, o, "parent",
        f->parent_name ? cJSON_CreateString(f->parent_name) : cJSON_CreateNull());
    if (f->resource)
      add(&x, o, "resource", cJSON_CreateString(f->resource->name));
    add(&x, o, "params", params_json(&x, f, false));
    add(&x, o, "body", block_json(&x, &f->body));
  }
  if (x.oom) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

static cJSON *program_json(wfp_program *p) {
  cJSON *o = cJSON_CreateObject();
  if (!o)
    return NULL;
  E x = {p, true, false};
  add(&x, o, "version", cJSON_CreateRaw("1"));
  /* the entry, when the program has it (one of methods only has none) */
  if (p->entry)
    add(&x, o, "entry", cJSON_CreateString(p->entry->name));
  cJSON *fa = chk(&x, cJSON_CreateArray());
  for (int i = 0; fa && i < p->nfuncs; i++)
    push(&x, fa, wfp__func_to_json(p, p->funcs[i], true));
  add(&x, o, "functions", fa);
  cJSON *ra = chk(&x, cJSON_CreateArray());
  for (int i = 0; ra && i < p->nresources; i++) {
    wfp_resource *r = p->resources[i];
    cJSON *ro = chk(&x, cJSON_CreateObject());
    if (!ro)
      break;
    add(&x, ro, "name", cJSON_CreateString(r->name));
    cJSON *pa = chk(&x, cJSON_CreateArray());
    for (int k = 0; pa && k < r->nprops; k++) {
      cJSON *po = chk(&x, cJSON_CreateObject());
      if (!po)
        break;
      add(&x, po, "name", cJSON_CreateString(r->prop_names[k]));
      add(&x, po, "type",
          cJSON_CreateString(r->prop_types[k] == WFP_T_STR    ? "str"
                             : r->prop_types[k] == WFP_T_JSON ? "json"
                                                              : "i64"));
      push(&x, pa, po);
    }
    add(&x, ro, "properties", pa);
    cJSON *ma = chk(&x, cJSON_CreateArray());
    for (int k = 0; ma && k < r->nmethods; k++)
      push(&x, ma, cJSON_CreateString(r->methods[k]));
    add(&x, ro, "methods", ma);
    push(&x, ra, ro);
  }
  add(&x, o, "resources", ra);
  if (x.oom) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

int wfp__ir_emit(wfp_program *p) {
  cJSON *doc = program_json(p);
  if (!doc)
    return WFP_ENOMEM;
  size_t len = 0;
  char *text = wfp__json_canonical(doc, &len);
  cJSON_Delete(doc);
  if (!text)
    return WFP_ENOMEM;
  uint8_t h[32];
  wfp__sha256_buf(text, len, h);
  wfp__hex(h, 8, p->hash);
  p->ir_text = text;
  p->ir_len = len;
  return WFP_OK;
}

int wfp_program_ir_json(const wfp_program *p, int pretty, char **out,
                        size_t *len) {
  if (!p || !out || p->status != WFP_OK || !p->ir_text)
    return WFP_EINVAL;
  *out = NULL;
  if (!pretty) {
    char *c = malloc(p->ir_len + 1);
    if (!c)
      return WFP_ENOMEM;
    memcpy(c, p->ir_text, p->ir_len + 1);
    *out = c;
    if (len)
      *len = p->ir_len;
    return WFP_OK;
  }
  cJSON *doc = program_json((wfp_program *)p);
  if (!doc)
    return WFP_ENOMEM;
  *out = wfp__json_pretty(doc, len);
  cJSON_Delete(doc);
  return *out ? WFP_OK : WFP_ENOMEM;
}
