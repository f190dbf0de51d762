/*
** js.c: a loaded program as an ES module of readable JavaScript: the lifted
** program, each function a generator that yields its effects to the host
** (wfp-run.mjs), with wfp's value semantics (wfp-runtime.js) in the module.
** It does not run anything; it prints what the checked program says.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ir_ast.h"
#include "text_int.h"

extern const unsigned char wfp__runtime_js[];
extern const size_t wfp__runtime_js_len;

/* A variable in scope: its wfp name and the JavaScript name it has. A
** let that shadows a visible variable gets a name of its own, since
** JavaScript's let is in scope (dead) from the start of its block. */
typedef struct jvar {
  const char *name;
  char *js; /* NULL: the same name (mangled if reserved); else malloc */
} jvar;

typedef struct Js {
  wfp_program *p;
  wfp__buf *b;
  int indent;
  jvar *vars;
  int nvars, cap;
  int renames; /* in this function */
} Js;

static const char *const js_reserved[] = {
    "break", "case", "catch", "class", "const", "continue", "debugger", "default",
    "delete", "do", "else", "enum", "export", "extends", "false", "finally", "for",
    "function", "if", "import", "in", "instanceof", "new", "null", "return",
    "super", "switch", "this", "throw", "true", "try", "typeof", "var", "void",
    "while", "with", "yield", "let", "static", "implements", "interface",
    "package", "private", "protected", "public", "await", "arguments", "eval",
    "undefined", "NaN", "Infinity", "F", "wfp", "program", NULL};

static const cJSON *get(const cJSON *o, const char *k) {
  return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
}
static const char *gs(const cJSON *o, const char *k) {
  const cJSON *v = get(o, k);
  return cJSON_IsString(v) ? v->valuestring : "";
}
static bool is(const cJSON *e, const char *op) { return strcmp(gs(e, "op"), op) == 0; }

static void out(Js *j, const char *s) { wfp__buf_adds(j->b, s); }

static void nl(Js *j) {
  wfp__buf_addc(j->b, '\n');
  for (int i = 0; i < j->indent; i++)
    out(j, "  ");
}

/* a name as a JavaScript name: wfp names are JavaScript identifiers, but
** some are JavaScript's words (or this module's) */
static void jsname(Js *j, const char *s) {
  out(j, s);
  for (int i = 0; js_reserved[i]; i++)
    if (strcmp(s, js_reserved[i]) == 0) {
      out(j, "$$");
      return;
    }
}

static void var(Js *j, const char *s) {
  for (int i = j->nvars - 1; i >= 0; i--)
    if (j->vars[i].name && strcmp(j->vars[i].name, s) == 0) {
      jsname(j, j->vars[i].js ? j->vars[i].js : s);
      return;
    }
  jsname(j, s);
}

/* declares s in the innermost scope; the JavaScript name is written */
static void declare(Js *j, const char *s) {
  bool shadows = false;
  for (int i = 0; i < j->nvars; i++)
    if (j->vars[i].name && strcmp(j->vars[i].name, s) == 0)
      shadows = true;
  if (j->nvars == j->cap) {
    int cap = j->cap ? j->cap * 2 : 32;
    jvar *v = realloc(j->vars, sizeof *v * (size_t)cap);
    if (!v) {
      j->b->oom = true;
      return;
    }
    j->vars = v;
    j->cap = cap;
  }
  jvar *v = &j->vars[j->nvars++];
  v->name = s;
  v->js = NULL;
  if (shadows) {
    size_t n = strlen(s) + 24;
    v->js = malloc(n);
    if (!v->js) {
      j->b->oom = true;
      v->name = NULL;
      return;
    }
    snprintf(v->js, n, "%s$s%d", s, ++j->renames);
  }
  jsname(j, v->js ? v->js : s);
}

/* a block's scope: a marker (name NULL) on the stack */
static void scope_open(Js *j) {
  if (j->nvars == j->cap) {
    int cap = j->cap ? j->cap * 2 : 32;
    jvar *v = realloc(j->vars, sizeof *v * (size_t)cap);
    if (!v) {
      j->b->oom = true;
      return;
    }
    j->vars = v;
    j->cap = cap;
  }
  j->vars[j->nvars++] = (jvar){NULL, NULL};
}

static void scope_close(Js *j) {
  while (j->nvars > 0) {
    jvar *v = &j->vars[--j->nvars];
    if (!v->name && !v->js)
      break;
    free(v->js);
  }
}

static void jstr(Js *j, const char *s) { wfp__buf_add_jstr(j->b, s, strlen(s)); }

static const wfp_func *func_named(Js *j, const char *name) {
  for (int i = 0; i < j->p->nfuncs; i++)
    if (strcmp(j->p->funcs[i]->name, name) == 0)
      return j->p->funcs[i];
  for (int i = 0; i < j->p->nfuncs; i++)
    if (strcmp(j->p->funcs[i]->id, name) == 0)
      return j->p->funcs[i];
  return NULL;
}

static void fref(Js *j, const char *name) {
  const wfp_func *f = func_named(j, name);
  out(j, "F.");
  out(j, f ? f->name : name);
}

static void expr(Js *j, const cJSON *e);
static void cond(Js *j, const cJSON *e);
static void block(Js *j, const cJSON *body);

static void list(Js *j, const cJSON *a) {
  int i = 0;
  for (const cJSON *c = a ? a->child : NULL; c; c = c->next, i++) {
    if (i)
      out(j, ", ");
    expr(j, c);
  }
}

static void i64_lit(Js *j, const cJSON *v) {
  const char *s = cJSON_IsString(v) || cJSON_IsRaw(v) ? v->valuestring : "0";
  out(j, s);
  out(j, "n");
}

/* a template value holds no expression */
static bool literal(const cJSON *v) {
  if (cJSON_IsObject(v)) {
    if (get(v, "op"))
      return false;
  } else if (!cJSON_IsArray(v)) {
    return true;
  }
  for (const cJSON *c = v->child; c; c = c->next)
    if (!literal(c))
      return false;
  return true;
}

static void raw_json(Js *j, const cJSON *v) {
  wfp__buf t;
  wfp__buf_init(&t);
  wfp__json_write(&t, v, false, -1, 0);
  out(j, "wfp.J(");
  wfp__buf_add_jstr(j->b, t.data ? t.data : "null", t.len);
  if (t.oom)
    j->b->oom = true;
  out(j, ")");
  wfp__buf_free(&t);
}

static void tpl(Js *j, const cJSON *v, bool top) {
  if (literal(v)) {
    raw_json(j, v);
  } else if (cJSON_IsObject(v) && get(v, "op")) {
    if (top)
      out(j, "wfp.tojson(");
    expr(j, v);
    if (top)
      out(j, ")");
  } else if (cJSON_IsObject(v)) {
    out(j, "wfp.obj([");
    for (const cJSON *c = v->child; c; c = c->next) {
      out(j, "[");
      jstr(j, c->string);
      out(j, ", ");
      tpl(j, c, false);
      out(j, c->next ? "], " : "]");
    }
    out(j, "])");
  } else {
    out(j, "wfp.arr([");
    for (const cJSON *c = v->child; c; c = c->next) {
      tpl(j, c, false);
      if (c->next)
        out(j, ", ");
    }
    out(j, "])");
  }
}

static bool is_cond(const cJSON *e) {
  static const char *const ops[] = {"eq", "ne", "lt", "le", "gt", "ge", "and", "or", "not", NULL};
  for (int i = 0; ops[i]; i++)
    if (is(e, ops[i]))
      return true;
  return false;
}

/* a JavaScript boolean for an i64 condition */
static void cond(Js *j, const cJSON *e) {
  static const struct { const char *op, *js; } cmp[] = {
      {"eq", " === "}, {"ne", " !== "}, {"lt", " < "}, {"le", " <= "},
      {"gt", " > "},   {"ge", " >= "},  {"and", " && "}, {"or", " || "}, {NULL, NULL}};
  for (int i = 0; cmp[i].op; i++)
    if (is(e, cmp[i].op)) {
      bool logic = i >= 6;
      out(j, "(");
      if (logic)
        cond(j, get(e, "a"));
      else
        expr(j, get(e, "a"));
      out(j, cmp[i].js);
      if (logic)
        cond(j, get(e, "b"));
      else
        expr(j, get(e, "b"));
      out(j, ")");
      return;
    }
  if (is(e, "not")) {
    out(j, "!");
    cond(j, get(e, "a"));
    return;
  }
  out(j, "(");
  expr(j, e);
  out(j, " !== 0n)");
}

static void effect(Js *j, const char *name, const cJSON *e, const char *const *fields) {
  out(j, "(yield { effect: \"");
  out(j, name);
  out(j, "\"");
  for (int i = 0; fields[i]; i += 2) {
    const cJSON *v = get(e, fields[i]);
    if (!v)
      continue;
    out(j, ", ");
    out(j, fields[i + 1]);
    out(j, ": ");
    if (cJSON_IsString(v))
      jstr(j, v->valuestring);
    else if (cJSON_IsArray(v)) {
      out(j, "[");
      list(j, v);
      out(j, "]");
    } else
      expr(j, v);
  }
  out(j, " })");
}

static void expr(Js *j, const cJSON *e) {
  static const struct { const char *op, *pre, *mid, *post; } bins[] = {
      {"add", "wfp.i64(", " + ", ")"}, {"sub", "wfp.i64(", " - ", ")"},
      {"mul", "wfp.i64(", " * ", ")"}, {"div", "wfp.div(", ", ", ")"},
      {"rem", "wfp.rem(", ", ", ")"},  {"shl", "wfp.shl(", ", ", ")"},
      {"shr", "wfp.shr(", ", ", ")"},  {"band", "(", " & ", ")"},
      {"bor", "(", " | ", ")"},        {"bxor", "(", " ^ ", ")"},
      {NULL, NULL, NULL, NULL}};
  for (int i = 0; bins[i].op; i++)
    if (is(e, bins[i].op)) {
      out(j, bins[i].pre);
      expr(j, get(e, "a"));
      out(j, bins[i].mid);
      expr(j, get(e, "b"));
      out(j, bins[i].post);
      return;
    }
  if (is_cond(e)) {
    out(j, "wfp.b(");
    cond(j, e);
    out(j, ")");
  } else if (is(e, "neg")) {
    out(j, "wfp.i64(-(");
    expr(j, get(e, "a"));
    out(j, "))");
  } else if (is(e, "lit_i64")) {
    i64_lit(j, get(e, "value"));
  } else if (is(e, "lit_str")) {
    jstr(j, gs(e, "value"));
  } else if (is(e, "lit_json")) {
    raw_json(j, get(e, "value"));
  } else if (is(e, "var")) {
    var(j, gs(e, "name"));
  } else if (is(e, "concat")) {
    out(j, "wfp.concat(");
    list(j, get(e, "parts"));
    out(j, ")");
  } else if (is(e, "len")) {
    out(j, "wfp.len(");
    expr(j, get(e, "a"));
    out(j, ")");
  } else if (is(e, "json")) {
    tpl(j, get(e, "value"), true);
  } else if (is(e, "input")) {
    out(j, "wfp.input()");
  } else if (is(e, "get_i64") || is(e, "get_str") || is(e, "get_json")) {
    out(j, "wfp.");
    out(j, gs(e, "op"));
    out(j, "(");
    expr(j, get(e, "from"));
    out(j, ", [");
    int i = 0;
    for (const cJSON *c = get(e, "path") ? get(e, "path")->child : NULL; c; c = c->next, i++) {
      if (i)
        out(j, ", ");
      if (cJSON_IsString(c))
        jstr(j, c->valuestring);
      else
        out(j, c->valuestring ? c->valuestring : "0");
    }
    out(j, "])");
  } else if (is(e, "call")) {
    out(j, "(yield* ");
    fref(j, gs(e, "fn"));
    out(j, "(");
    list(j, get(e, "args"));
    out(j, "))");
  } else if (is(e, "call_ref")) {
    out(j, "(yield* wfp.call(");
    expr(j, get(e, "fn"));
    out(j, ", [");
    list(j, get(e, "args"));
    out(j, "]))");
  } else if (is(e, "fn")) {
    const wfp_func *f = func_named(j, gs(e, "name"));
    out(j, "wfp.fn(");
    fref(j, gs(e, "name"));
    out(j, ", ");
    jstr(j, f ? f->id : "");
    const cJSON *caps = get(e, "captures");
    for (const cJSON *c = caps ? caps->child : NULL; c; c = c->next) {
      out(j, ", ");
      expr(j, c);
    }
    out(j, ")");
  } else if (is(e, "ctx_get_i64")) {
    static const char *const f[] = {"key", "key", NULL};
    effect(j, "ctx_get_i64", e, f);
  } else if (is(e, "ctx_set_i64")) {
    static const char *const f[] = {"key", "key", "value", "value", NULL};
    effect(j, "ctx_set_i64", e, f);
  } else if (is(e, "msg_send")) {
    static const char *const f[] = {"topic", "topic", "payload", "payload", NULL};
    effect(j, "msg_send", e, f);
  } else if (is(e, "sleep_ms")) {
    static const char *const f[] = {"ms", "ms", NULL};
    effect(j, "sleep_ms", e, f);
  } else if (is(e, "db_query")) {
    static const char *const f[] = {"sql", "sql", "params", "params", "each", "each", NULL};
    effect(j, "db_query", e, f);
  } else if (is(e, "self_get")) {
    static const char *const f[] = {"property", "property", NULL};
    effect(j, "self_get", e, f);
  } else if (is(e, "self_set")) {
    static const char *const f[] = {"property", "property", "value", "value", NULL};
    effect(j, "self_set", e, f);
  } else {
    out(j, "undefined");
  }
}

static void stmt(Js *j, const cJSON *s) {
  nl(j);
  if (is(s, "let")) {
    /* the value first: it sees the variables before this one */
    wfp__buf val, *saved = j->b;
    wfp__buf_init(&val);
    j->b = &val;
    expr(j, get(s, "expr"));
    j->b = saved;
    out(j, "let ");
    declare(j, gs(s, "name"));
    out(j, " = ");
    wfp__buf_add(j->b, val.data ? val.data : "", val.len);
    if (val.oom)
      j->b->oom = true;
    wfp__buf_free(&val);
    out(j, ";");
  } else if (is(s, "set")) {
    var(j, gs(s, "name"));
    out(j, " = ");
    expr(j, get(s, "expr"));
    out(j, ";");
  } else if (is(s, "expr")) {
    expr(j, get(s, "expr"));
    out(j, ";");
  } else if (is(s, "return")) {
    const cJSON *e = get(s, "expr");
    if (e && !cJSON_IsNull(e)) {
      out(j, "return ");
      expr(j, e);
      out(j, ";");
    } else {
      out(j, "return;");
    }
  } else if (is(s, "if")) {
    out(j, "if ");
    const cJSON *c = get(s, "cond");
    if (is_cond(c) && !is(c, "not"))
      cond(j, c);
    else {
      out(j, "(");
      cond(j, c);
      out(j, ")");
    }
    out(j, " ");
    block(j, get(s, "then"));
    const cJSON *el = get(s, "else");
    if (el && el->child) {
      out(j, " else ");
      block(j, el);
    }
  } else if (is(s, "while")) {
    out(j, "while ");
    const cJSON *c = get(s, "cond");
    if (is_cond(c) && !is(c, "not"))
      cond(j, c);
    else {
      out(j, "(");
      cond(j, c);
      out(j, ")");
    }
    out(j, " ");
    block(j, get(s, "body"));
  } else if (is(s, "break") || is(s, "continue")) {
    out(j, gs(s, "op"));
    out(j, ";");
  } else if (is(s, "trap")) {
    out(j, "throw new wfp.Trap(");
    jstr(j, gs(s, "message"));
    out(j, ");");
  }
}

static void block(Js *j, const cJSON *body) {
  out(j, "{");
  j->indent++;
  scope_open(j);
  for (const cJSON *c = body ? body->child : NULL; c; c = c->next)
    stmt(j, c);
  scope_close(j);
  j->indent--;
  nl(j);
  out(j, "}");
}

static const char *type_word(wfp_type *t) {
  t = wfp__type_find(t);
  switch (t ? t->kind : WFP_T_ERROR) {
  case WFP_T_STR: return "str";
  case WFP_T_JSON: return "json";
  case WFP_T_FN: return "fn";
  case WFP_T_VAR: return t->want_fn ? "fn" : "i64";
  default: return "i64";
  }
}

int wfp_program_to_js(const wfp_program *cp, const char *source, char **outp, size_t *len) {
  if (!cp || !outp || cp->status != WFP_OK)
    return WFP_EINVAL;
  wfp_program *p = (wfp_program *)cp;
  wfp__buf b;
  wfp__buf_init(&b);
  Js js = {p, &b, 0, NULL, 0, 0, 0};
  Js *j = &js;
  out(j, "// ");
  out(j, source ? source : "a wfp program");
  out(j, " in JavaScript, written by wfp-aot --emit-js (program ");
  out(j, p->hash);
  out(j, ").\n"
         "// The lifted program: every function, nested ones and lambdas\n"
         "// included, is a generator of F that yields each effect it performs\n"
         "// ({ effect: \"ctx_get_i64\", key: \"n\" }) and is resumed with its result.\n"
         "// Run it with the host module: node wfp-run.mjs THIS.mjs [wfp-host options]\n\n"
         "const F = Object.create(null);\n");
  for (int i = 0; i < p->nfuncs; i++) {
    const wfp_func *f = p->funcs[i];
    cJSON *fj = wfp__func_to_json(p, f, true);
    if (!fj) {
      free(j->vars);
      wfp__buf_free(&b);
      return WFP_ENOMEM;
    }
    out(j, "\n// ");
    out(j, f->name);
    out(j, " (id ");
    out(j, f->id);
    if (f->resource) {
      out(j, ", a method of ");
      out(j, f->resource->name);
    }
    if (f->ncaps) {
      out(j, "; captures ");
      for (int k = 0; k < f->ncaps; k++) {
        out(j, k ? ", " : "");
        out(j, f->caps[k]->name);
      }
    }
    out(j, ")\nF.");
    out(j, f->name);
    out(j, " = function* (");
    int k = 0;
    j->renames = 0;
    scope_open(j);
    for (const cJSON *c = get(fj, "params")->child; c; c = c->next, k++) {
      if (k)
        out(j, ", ");
      declare(j, gs(c, "name"));
    }
    out(j, ") ");
    block(j, get(fj, "body"));
    scope_close(j);
    out(j, ";\n");
    cJSON_Delete(fj);
  }
  out(j, "\n");
  wfp__buf_add(&b, wfp__runtime_js, wfp__runtime_js_len);
  out(j, "\nexport const program = {\n  hash: ");
  jstr(j, p->hash);
  out(j, ",\n  entry: ");
  if (p->entry)
    jstr(j, p->entry->name);
  else
    out(j, "null");
  out(j, ",\n  functions: [\n");
  for (int i = 0; i < p->nfuncs; i++) {
    const wfp_func *f = p->funcs[i];
    out(j, "    { name: ");
    jstr(j, f->name);
    out(j, ", id: ");
    jstr(j, f->id);
    out(j, ", resource: ");
    if (f->resource)
      jstr(j, f->resource->name);
    else
      out(j, "null");
    out(j, ", params: [");
    int k = 0;
    for (int c = 0; c < f->ncaps; c++, k++) {
      out(j, k ? ", [" : "[");
      jstr(j, f->caps[c]->name);
      out(j, ", \"");
      out(j, type_word(f->caps[c]->type));
      out(j, "\"]");
    }
    for (int c = 0; c < f->nparams; c++, k++) {
      out(j, k ? ", [" : "[");
      jstr(j, f->params[c]->name);
      out(j, ", \"");
      out(j, type_word(f->params[c]->type));
      out(j, "\"]");
    }
    out(j, "], run: F.");
    out(j, f->name);
    out(j, " },\n");
  }
  out(j, "  ],\n  resources: [\n");
  for (int i = 0; i < p->nresources; i++) {
    const wfp_resource *r = p->resources[i];
    out(j, "    { name: ");
    jstr(j, r->name);
    out(j, ", properties: [");
    for (int k = 0; k < r->nprops; k++) {
      out(j, k ? ", [" : "[");
      jstr(j, r->prop_names[k]);
      out(j, r->prop_types[k] == WFP_T_STR ? ", \"str\"]" : r->prop_types[k] == WFP_T_JSON ? ", \"json\"]" : ", \"i64\"]");
    }
    out(j, "] },\n");
  }
  out(j, "  ],\n  runtime: wfp,\n};\n");
  free(j->vars);
  if (b.oom) {
    wfp__buf_free(&b);
    return WFP_ENOMEM;
  }
  *outp = wfp__buf_take(&b, len);
  return WFP_OK;
}
