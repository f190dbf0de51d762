/*
** check.c: the semantic rules of IR v1: names and their scopes, function
** visibility and arity, captures of nested functions and lambdas, resources
** and methods, break/continue placement, and types (inferred by unification).
** It annotates the AST in place; lifting (lift.c) then reads the captures.
*/
#include <stdlib.h>
#include <string.h>

#include "ir_ast.h"

/* ---- types ---- */

/* Never NULL: out of memory, the program's error type, which nothing
** unifies with or reports (the load then ends with WFP_ENOMEM). */
wfp_type *wfp__type_new(wfp_program *p, wfp_tkind k) {
  wfp_type *t = wfp__arena_alloc(&p->arena, sizeof *t);
  if (!t) {
    p->oom_type.kind = WFP_T_ERROR;
    return &p->oom_type;
  }
  t->kind = k;
  return t;
}

wfp_type *wfp__type_find(wfp_type *t) {
  while (t && t->kind == WFP_T_VAR && t->link)
    t = t->link;
  return t;
}

void wfp__type_str(wfp_type *t, wfp__buf *out) {
  t = wfp__type_find(t);
  if (!t) {
    wfp__buf_adds(out, "?");
    return;
  }
  switch (t->kind) {
  case WFP_T_VAR:
    wfp__buf_adds(out, t->want_fn ? "fn" : "(unknown)");
    break;
  case WFP_T_I64: wfp__buf_adds(out, "i64"); break;
  case WFP_T_STR: wfp__buf_adds(out, "str"); break;
  case WFP_T_JSON: wfp__buf_adds(out, "json"); break;
  case WFP_T_VOID: wfp__buf_adds(out, "no value"); break;
  case WFP_T_ERROR: wfp__buf_adds(out, "(error)"); break;
  case WFP_T_FN:
    wfp__buf_adds(out, "fn(");
    for (int i = 0; i < t->nparams; i++) {
      if (i)
        wfp__buf_adds(out, ", ");
      wfp__type_str(t->params[i], out);
    }
    wfp__buf_adds(out, ") -> ");
    wfp__type_str(t->ret, out);
    break;
  }
}

static bool occurs(wfp_type *v, wfp_type *t) {
  t = wfp__type_find(t);
  if (t == v)
    return true;
  if (t && t->kind == WFP_T_FN) {
    for (int i = 0; i < t->nparams; i++)
      if (occurs(v, t->params[i]))
        return true;
    return occurs(v, t->ret);
  }
  return false;
}

static bool unify(wfp_type *a, wfp_type *b) {
  a = wfp__type_find(a);
  b = wfp__type_find(b);
  if (!a || !b || a == b)
    return true;
  if (a->kind == WFP_T_ERROR || b->kind == WFP_T_ERROR)
    return true;
  if (b->kind == WFP_T_VAR && a->kind != WFP_T_VAR) {
    wfp_type *t = a;
    a = b;
    b = t;
  }
  if (a->kind == WFP_T_VAR) {
    if (b->kind == WFP_T_VAR) {
      b->want_fn = b->want_fn || a->want_fn;
      a->link = b;
      return true;
    }
    if (a->want_fn && b->kind != WFP_T_FN)
      return false;
    if (occurs(a, b))
      return false;
    a->link = b;
    return true;
  }
  if (a->kind != b->kind)
    return false;
  if (a->kind == WFP_T_FN) {
    if (a->nparams != b->nparams)
      return false;
    for (int i = 0; i < a->nparams; i++)
      if (!unify(a->params[i], b->params[i]))
        return false;
    return unify(a->ret, b->ret);
  }
  return true;
}

/* ---- checker state ---- */

typedef struct scope {
  wfp_var *var;
  int block;
  struct scope *next;
} scope;

typedef enum {
  D_VALUE,     /* must give a value */
  D_EQ,        /* i64 or str */
  D_PRINTABLE, /* i64, str or json */
  D_LEN,       /* str or json */
  D_FNVALUE,   /* a function used as a value returns on every path */
  D_EACH       /* db_query each: one json parameter, returns a value */
} dkind;

typedef struct defer {
  dkind kind;
  wfp_expr *e;
  wfp_type *t;
  const char *what;
  wfp_func *target;
  wfp_func *in; /* the function the expression is in */
} defer;

/* A reference to a named nested function (call or fn) or a lambda. */
typedef struct site {
  wfp_func *in;   /* the function containing the site */
  scope *snap;    /* variables visible there (NULL: none yet) */
  wfp_func *target;
  wfp_expr *e;
  bool reported;
} site;

/* Per function: its top-level lets (params come from f->params). */
typedef struct fnlevel {
  wfp_func *fn;
  wfp_var **vars;
  int n, cap;
} fnlevel;

typedef struct K {
  wfp_program *p;
  defer *defers;
  int ndefers, defers_cap;
  site *sites;
  int nsites, sites_cap;
  int next_block;
  fnlevel *levels; /* one per function, in p->funcs order */
  int nlevels;
} K;

typedef struct C {
  K *k;
  wfp_func *fn;
  scope *sc;
  int block;      /* id of the innermost block */
  int root_block; /* id of the function body block */
  int loops;
  struct C *outer; /* lambdas: the enclosing context, at the lambda's site */
} C;

static fnlevel *level_of(K *k, wfp_func *f) {
  for (int i = 0; i < k->nlevels; i++)
    if (k->levels[i].fn == f)
      return &k->levels[i];
  return NULL;
}

static bool push(void **v, int *n, int *cap, size_t sz) {
  if (*n < *cap)
    return true;
  int nc = *cap ? *cap * 2 : 16;
  void *nv = realloc(*v, sz * (size_t)nc);
  if (!nv)
    return false;
  *v = nv;
  *cap = nc;
  return true;
}

static void add_defer(C *c, dkind kind, wfp_expr *e, wfp_type *t,
                      const char *what, wfp_func *target) {
  K *k = c->k;
  if (!push((void **)&k->defers, &k->ndefers, &k->defers_cap, sizeof(defer))) {
    k->p->oom = true; /* the load ends with WFP_ENOMEM */
    return;
  }
  defer *d = &k->defers[k->ndefers++];
  d->kind = kind;
  d->e = e;
  d->t = t;
  d->what = what;
  d->target = target;
  d->in = c->fn;
}

static void add_site(C *c, wfp_func *target, wfp_expr *e) {
  K *k = c->k;
  if (!push((void **)&k->sites, &k->nsites, &k->sites_cap, sizeof(site))) {
    k->p->oom = true;
    return;
  }
  site *s = &k->sites[k->nsites++];
  s->in = c->fn;
  s->snap = c->sc;
  s->target = target;
  s->e = e;
  s->reported = false;
}

static bool add_local(wfp_program *p, wfp_func *f, wfp_var *v) {
  if (f->nlocals == f->locals_cap) {
    int cap = f->locals_cap ? f->locals_cap * 2 : 8;
    wfp_var **nv = wfp__arena_alloc(&p->arena, sizeof *nv * (size_t)cap);
    if (!nv)
      return false;
    if (f->nlocals)
      memcpy(nv, f->locals, sizeof *nv * (size_t)f->nlocals);
    f->locals = nv;
    f->locals_cap = cap;
  }
  v->index = f->nlocals;
  f->locals[f->nlocals++] = v;
  return true;
}

static const char *tstr(K *k, wfp_type *t) {
  wfp__buf b;
  wfp__buf_init(&b);
  wfp__type_str(t, &b);
  k->p->oom |= b.oom;
  const char *r = wfp__arena_strndup(&k->p->arena, b.data ? b.data : "?",
                                     b.data ? b.len : 1);
  wfp__buf_free(&b);
  return r ? r : "?";
}

static bool is_err(wfp_type *t) {
  t = wfp__type_find(t);
  return t && t->kind == WFP_T_ERROR;
}

/* Unifies e's type with want; reports a mismatch at e. */
static void expect(C *c, wfp_expr *e, wfp_type *want, const char *ctx) {
  if (!e || is_err(e->type))
    return;
  wfp_type *have = wfp__type_find(e->type);
  if (have && have->kind == WFP_T_VOID) {
    wfp__diag(c->k->p, WFP_EPROGRAM, e->path,
              "type mismatch: %s needs %s, but '%s' gives no value", ctx,
              tstr(c->k, want), wfp__expr_op_name(e->op));
    e->type = wfp__type_new(c->k->p, WFP_T_ERROR);
    return;
  }
  if (!unify(e->type, want))
    wfp__diag(c->k->p, WFP_EPROGRAM, e->path,
              "type mismatch: %s needs %s, got %s", ctx, tstr(c->k, want),
              tstr(c->k, e->type));
}

static wfp_type *T(C *c, wfp_tkind k) { return wfp__type_new(c->k->p, k); }

/* An expression used for its value. */
static void need_value(C *c, wfp_expr *e, const char *ctx) {
  if (!e || is_err(e->type))
    return;
  wfp_type *t = wfp__type_find(e->type);
  if (t->kind == WFP_T_VOID) {
    wfp__diag(c->k->p, WFP_EPROGRAM, e->path, "'%s' gives no value (%s needs one)",
              wfp__expr_op_name(e->op), ctx);
    e->type = T(c, WFP_T_ERROR);
  } else if (t->kind == WFP_T_VAR) {
    add_defer(c, D_VALUE, e, e->type, ctx, NULL);
  }
}

/* ---- names ---- */

static wfp_var *origin(wfp_var *v) {
  while (v && v->is_capture && v->outer)
    v = v->outer;
  return v;
}

static wfp_var *find_in_scope(scope *s, const char *name) {
  for (; s; s = s->next)
    if (strcmp(s->var->name, name) == 0)
      return s->var;
  return NULL;
}

static bool in_snapshot(scope *s, wfp_var *v) {
  for (; s; s = s->next)
    if (s->var == v)
      return true;
  return false;
}

static wfp_var *new_capture(wfp_program *p, wfp_func *f, wfp_var *outer) {
  wfp_var *c = wfp__arena_alloc(&p->arena, sizeof *c);
  if (!c)
    return NULL;
  c->name = outer->name;
  c->type = outer->type;
  c->owner = f;
  c->is_capture = true;
  c->outer = outer;
  c->path = f->path;
  wfp_var **nv = wfp__arena_alloc(&p->arena, sizeof *nv * (size_t)(f->ncaps + 1));
  if (!nv)
    return NULL;
  if (f->ncaps)
    memcpy(nv, f->caps, sizeof *nv * (size_t)f->ncaps);
  nv[f->ncaps++] = c;
  f->caps = nv;
  outer->referenced_by_nested = true;
  add_local(p, f, c);
  return c;
}

static wfp_var *find_cap(wfp_func *f, const char *name) {
  for (int i = 0; i < f->ncaps; i++)
    if (strcmp(f->caps[i]->name, name) == 0)
      return f->caps[i];
  return NULL;
}

/* A variable of f's function level: a param, a top-level let, a capture. */
static wfp_var *fn_level_lookup(K *k, wfp_func *f, const char *name);

/* What a named nested function f can capture under name: its parent's
** function-level variables, or what the parent can capture in turn. */
static wfp_var *capture_env_lookup(K *k, wfp_func *f, const char *name) {
  if (!f->parent || f->is_lambda)
    return NULL;
  wfp_var *u = fn_level_lookup(k, f->parent, name);
  if (!u)
    return NULL;
  return new_capture(k->p, f, u);
}

static wfp_var *fn_level_lookup(K *k, wfp_func *f, const char *name) {
  for (int i = 0; i < f->nparams; i++)
    if (strcmp(f->params[i]->name, name) == 0)
      return f->params[i];
  fnlevel *l = level_of(k, f);
  if (l)
    for (int i = 0; i < l->n; i++)
      if (strcmp(l->vars[i]->name, name) == 0)
        return l->vars[i];
  wfp_var *c = find_cap(f, name);
  if (c)
    return c;
  return capture_env_lookup(k, f, name);
}

static wfp_var *lookup(C *c, const char *name) {
  wfp_var *v = find_in_scope(c->sc, name);
  if (v)
    return v;
  v = find_cap(c->fn, name);
  if (v)
    return v;
  if (c->fn->is_lambda && c->outer) {
    wfp_var *u = lookup(c->outer, name);
    return u ? new_capture(c->k->p, c->fn, u) : NULL;
  }
  return capture_env_lookup(c->k, c->fn, name);
}

static wfp_func *find_func(wfp_program *p, const char *name, bool *by_id) {
  *by_id = false;
  for (int i = 0; i < p->nfuncs; i++) {
    wfp_func *f = p->funcs[i];
    if (!f->is_lambda && f->name && strcmp(f->name, name) == 0)
      return f;
  }
  for (int i = 0; i < p->nfuncs; i++) {
    wfp_func *f = p->funcs[i];
    if (f->id[0] && strcmp(f->id, name) == 0 && !f->is_lambda) {
      *by_id = true;
      return f;
    }
  }
  return NULL;
}

/* Is f (a named function) visible from g? Top-level functions are visible
** everywhere, a nested one inside its parent and the parent's descendants. */
static bool visible_from(wfp_func *f, wfp_func *g) {
  if (!f->parent)
    return true;
  for (wfp_func *a = g; a; a = a->parent)
    if (a == f->parent)
      return true;
  return false;
}

/* The method rule: a method is called from a method of its resource only. */
static bool method_callable_from(wfp_func *f, wfp_func *g) {
  if (!f->resource)
    return true;
  return g->resource && g->resource == f->resource;
}

/* ---- expressions ---- */

static void check_expr(C *c, wfp_expr *e);
static void check_block(C *c, wfp_block *b, bool new_scope);
static void check_func_body(K *k, wfp_func *f, C *outer);

static wfp_type *fn_type_of(C *c, wfp_func *f, int skip) {
  wfp_type *t = T(c, WFP_T_FN);
  if (!t)
    return NULL;
  int n = f->nparams - skip;
  if (n < 0)
    n = 0;
  t->nparams = n;
  t->params = wfp__arena_alloc(&c->k->p->arena, sizeof *t->params * (size_t)(n + 1));
  for (int i = 0; i < n && t->params; i++)
    t->params[i] = f->params[i + skip]->type;
  t->ret = f->ret;
  return t;
}

static void check_call_args(C *c, wfp_expr *e, wfp_func *f, const char *fname) {
  if (!f->parsed_ok) {
    /* its faults are reported already: do not add guesses about its use */
    for (int i = 0; i < e->nargs; i++)
      check_expr(c, e->args[i]);
    return;
  }
  if (e->nargs != f->nparams) {
    wfp__diag(c->k->p, WFP_EPROGRAM, e->path,
              "wrong argument count: '%s' takes %d, got %d", fname, f->nparams,
              e->nargs);
    for (int i = 0; i < e->nargs; i++)
      check_expr(c, e->args[i]);
    return;
  }
  for (int i = 0; i < e->nargs; i++) {
    check_expr(c, e->args[i]);
    char *ctx = wfp__arena_printf(&c->k->p->arena, "argument '%s' of '%s'",
                                  f->params[i]->name, fname);
    need_value(c, e->args[i], ctx ? ctx : "an argument");
    expect(c, e->args[i], f->params[i]->type, ctx ? ctx : "an argument");
  }
}

static wfp_resource *method_resource(C *c) {
  return c->fn->resource;
}

static void check_printable(C *c, wfp_expr *e, const char *ctx) {
  need_value(c, e, ctx);
  add_defer(c, D_PRINTABLE, e, e->type, ctx, NULL);
}

static void check_fn_target(C *c, wfp_expr *e, wfp_func *f) {
  if (!visible_from(f, c->fn)) {
    wfp__diag(c->k->p, WFP_EPROGRAM, e->path,
              "function '%s' is nested in '%s' and not visible here", f->name,
              f->parent ? f->parent->name : "?");
    return;
  }
  if (!method_callable_from(f, c->fn)) {
    wfp__diag(c->k->p, WFP_EPROGRAM, e->path,
              "'%s' is a method of '%s': only methods of '%s' can call it",
              f->name, f->resource->name, f->resource->name);
    return;
  }
  if (f->parent)
    add_site(c, f, e);
}

static void check_printable(C *c, wfp_expr *e, const char *ctx);

/* A template's holes, in document order; its depth is the JSON's, which
** the reader bounds. */
static void check_tpl(C *c, wfp_jtpl *t) {
  if (!t)
    return;
  if (t->kind == WFP_J_HOLE) {
    check_expr(c, t->hole);
    check_printable(c, t->hole, "a 'json' template value");
  } else if (t->kind == WFP_J_OBJ || t->kind == WFP_J_ARR) {
    for (int i = 0; i < t->n; i++)
      check_tpl(c, t->items[i]);
  }
}

static void check_expr(C *c, wfp_expr *e) {
  wfp_program *p = c->k->p;
  if (!e || e->type) /* typed already: an ill-formed node */
    return;
  switch (e->op) {
  case WFP_OP_LIT_I64:
    e->type = T(c, WFP_T_I64);
    break;
  case WFP_OP_LIT_STR:
    e->type = T(c, WFP_T_STR);
    break;
  case WFP_OP_LIT_JSON:
  case WFP_OP_INPUT:
    e->type = T(c, WFP_T_JSON);
    break;
  case WFP_OP_VAR: {
    wfp_var *v = lookup(c, e->str);
    if (!v) {
      if (c->fn->parent && !c->fn->is_lambda)
        wfp__diag(p, WFP_EPROGRAM, e->path,
                  "unknown variable '%s' (a nested function reads only its "
                  "own variables and the parameters and top-level variables "
                  "of the functions it is nested in)",
                  e->str);
      else
        wfp__diag(p, WFP_EPROGRAM, e->path, "unknown variable '%s'", e->str);
      e->type = T(c, WFP_T_ERROR);
      return;
    }
    e->var = v;
    e->type = v->type;
    break;
  }
  case WFP_OP_ADD: case WFP_OP_SUB: case WFP_OP_MUL: case WFP_OP_DIV:
  case WFP_OP_REM: case WFP_OP_BAND: case WFP_OP_BOR: case WFP_OP_BXOR:
  case WFP_OP_SHL: case WFP_OP_SHR: case WFP_OP_LT: case WFP_OP_LE:
  case WFP_OP_GT: case WFP_OP_GE: case WFP_OP_AND: case WFP_OP_OR: {
    const char *ctx = wfp__arena_printf(&p->arena, "'%s'", wfp__expr_op_name(e->op));
    check_expr(c, e->a);
    check_expr(c, e->b);
    need_value(c, e->a, ctx);
    need_value(c, e->b, ctx);
    expect(c, e->a, T(c, WFP_T_I64), ctx);
    expect(c, e->b, T(c, WFP_T_I64), ctx);
    e->type = T(c, WFP_T_I64);
    break;
  }
  case WFP_OP_NEG:
  case WFP_OP_NOT: {
    const char *ctx = wfp__arena_printf(&p->arena, "'%s'", wfp__expr_op_name(e->op));
    check_expr(c, e->a);
    need_value(c, e->a, ctx);
    expect(c, e->a, T(c, WFP_T_I64), ctx);
    e->type = T(c, WFP_T_I64);
    break;
  }
  case WFP_OP_EQ:
  case WFP_OP_NE: {
    const char *ctx = wfp__arena_printf(&p->arena, "'%s'", wfp__expr_op_name(e->op));
    check_expr(c, e->a);
    check_expr(c, e->b);
    need_value(c, e->a, ctx);
    need_value(c, e->b, ctx);
    if (e->a && e->b && !is_err(e->a->type) && !is_err(e->b->type)) {
      if (!unify(e->a->type, e->b->type))
        wfp__diag(p, WFP_EPROGRAM, e->path,
                  "type mismatch: '%s' compares values of one type, got %s "
                  "and %s",
                  wfp__expr_op_name(e->op), tstr(c->k, e->a->type),
                  tstr(c->k, e->b->type));
      else
        add_defer(c, D_EQ, e, e->a->type, ctx, NULL);
    }
    e->type = T(c, WFP_T_I64);
    break;
  }
  case WFP_OP_CONCAT:
    for (int i = 0; i < e->nargs; i++) {
      check_expr(c, e->args[i]);
      check_printable(c, e->args[i], "a 'concat' part");
    }
    e->type = T(c, WFP_T_STR);
    break;
  case WFP_OP_LEN:
    check_expr(c, e->a);
    need_value(c, e->a, "'len'");
    if (e->a)
      add_defer(c, D_LEN, e->a, e->a->type, "'len'", NULL);
    e->type = T(c, WFP_T_I64);
    break;
  case WFP_OP_JSON:
    check_tpl(c, e->tpl);
    e->type = T(c, WFP_T_JSON);
    break;
  case WFP_OP_GET_I64:
  case WFP_OP_GET_STR:
  case WFP_OP_GET_JSON: {
    const char *ctx = wfp__arena_printf(&p->arena, "'%s' from", wfp__expr_op_name(e->op));
    check_expr(c, e->a);
    need_value(c, e->a, ctx);
    expect(c, e->a, T(c, WFP_T_JSON), ctx);
    e->type = T(c, e->op == WFP_OP_GET_I64 ? WFP_T_I64
                     : e->op == WFP_OP_GET_STR ? WFP_T_STR : WFP_T_JSON);
    break;
  }
  case WFP_OP_CALL: {
    bool by_id;
    wfp_func *f = find_func(p, e->str, &by_id);
    if (!f) {
      wfp__diag(p, WFP_EPROGRAM, e->path, "unknown function '%s'", e->str);
      for (int i = 0; i < e->nargs; i++)
        check_expr(c, e->args[i]);
      e->type = T(c, WFP_T_ERROR);
      return;
    }
    e->target = f;
    check_fn_target(c, e, f);
    check_call_args(c, e, f, f->name);
    e->type = f->ret;
    break;
  }
  case WFP_OP_FN: {
    bool by_id;
    wfp_func *f = find_func(p, e->str, &by_id);
    if (!f) {
      wfp__diag(p, WFP_EPROGRAM, e->path, "unknown function '%s'", e->str);
      e->type = T(c, WFP_T_ERROR);
      return;
    }
    e->target = f;
    check_fn_target(c, e, f);
    if (f->resource) {
      wfp__diag(p, WFP_EPROGRAM, e->path,
                "'%s' is a method: methods cannot be used as fn values",
                f->name);
      e->type = T(c, WFP_T_ERROR);
      return;
    }
    /* lifted IR: explicit values for the leading (captured) params */
    if (e->nbound > f->nparams) {
      wfp__diag(p, WFP_EPROGRAM, e->path,
                "wrong capture count: '%s' takes %d parameters, got %d "
                "captures",
                f->name, f->nparams, e->nbound);
      e->type = T(c, WFP_T_ERROR);
      return;
    }
    for (int i = 0; i < e->nbound; i++) {
      check_expr(c, e->bound[i]);
      need_value(c, e->bound[i], "a capture");
      expect(c, e->bound[i], f->params[i]->type, "a capture");
    }
    e->type = fn_type_of(c, f, e->nbound);
    add_defer(c, D_FNVALUE, e, NULL, NULL, f);
    break;
  }
  case WFP_OP_LAMBDA: {
    wfp_func *f = e->target;
    check_func_body(c->k, f, c);
    e->type = fn_type_of(c, f, 0);
    add_site(c, f, e);
    add_defer(c, D_FNVALUE, e, NULL, NULL, f);
    break;
  }
  case WFP_OP_CALL_REF: {
    check_expr(c, e->a);
    need_value(c, e->a, "'call_ref'");
    wfp_type *ft = T(c, WFP_T_FN);
    if (!ft)
      return;
    ft->nparams = e->nargs;
    ft->params = wfp__arena_alloc(&p->arena, sizeof *ft->params * (size_t)(e->nargs + 1));
    for (int i = 0; i < e->nargs; i++) {
      check_expr(c, e->args[i]);
      need_value(c, e->args[i], "an argument of 'call_ref'");
      ft->params[i] = e->args[i] && e->args[i]->type ? e->args[i]->type
                                                     : T(c, WFP_T_ERROR);
    }
    ft->ret = T(c, WFP_T_VAR);
    if (e->a && !is_err(e->a->type) && !unify(e->a->type, ft)) {
      wfp_type *have = wfp__type_find(e->a->type);
      if (have->kind == WFP_T_FN && have->nparams != e->nargs)
        wfp__diag(p, WFP_EPROGRAM, e->path,
                  "wrong argument count: the function takes %d, got %d",
                  have->nparams, e->nargs);
      else
        wfp__diag(p, WFP_EPROGRAM, e->a->path,
                  "type mismatch: 'call_ref' needs %s, got %s", tstr(c->k, ft),
                  tstr(c->k, e->a->type));
      e->type = T(c, WFP_T_ERROR);
      return;
    }
    e->type = ft->ret;
    break;
  }
  case WFP_OP_CTX_GET_I64:
    e->type = T(c, WFP_T_I64);
    break;
  case WFP_OP_CTX_SET_I64:
    check_expr(c, e->a);
    need_value(c, e->a, "'ctx_set_i64' value");
    expect(c, e->a, T(c, WFP_T_I64), "'ctx_set_i64' value");
    e->type = T(c, WFP_T_VOID);
    break;
  case WFP_OP_MSG_SEND:
    check_expr(c, e->a);
    check_printable(c, e->a, "'msg_send' payload");
    e->type = T(c, WFP_T_VOID);
    break;
  case WFP_OP_SLEEP_MS:
    check_expr(c, e->a);
    need_value(c, e->a, "'sleep_ms'");
    expect(c, e->a, T(c, WFP_T_I64), "'sleep_ms'");
    e->type = T(c, WFP_T_VOID);
    break;
  case WFP_OP_DB_QUERY:
    for (int i = 0; i < e->nargs; i++) {
      check_expr(c, e->args[i]);
      check_printable(c, e->args[i], "a 'db_query' parameter");
    }
    if (e->each) {
      if (e->each->op != WFP_OP_FN && e->each->op != WFP_OP_LAMBDA &&
          !is_err(e->each->type)) {
        wfp__diag(p, WFP_EPROGRAM, e->each->path,
                  "'each' must be a function reference ('fn') or a 'lambda'");
      } else {
        check_expr(c, e->each);
        if (!is_err(e->each->type) && e->each->target) {
          wfp_func *f = e->each->target;
          int n = f->nparams - e->each->nbound;
          if (n != 1)
            wfp__diag(p, WFP_EPROGRAM, e->each->path,
                      "'each' function must take one parameter (the row), "
                      "'%s' takes %d",
                      f->is_lambda ? "lambda" : f->name, n);
          else if (!unify(f->params[f->nparams - 1]->type, T(c, WFP_T_JSON)))
            wfp__diag(p, WFP_EPROGRAM, e->each->path,
                      "'each' function's parameter must be json (the row), "
                      "not %s",
                      tstr(c->k, f->params[f->nparams - 1]->type));
          add_defer(c, D_EACH, e->each, NULL, NULL, f);
        }
      }
    }
    e->type = T(c, WFP_T_JSON);
    break;
  case WFP_OP_SELF_GET:
  case WFP_OP_SELF_SET: {
    wfp_resource *r = method_resource(c);
    if (e->op == WFP_OP_SELF_SET) {
      check_expr(c, e->a);
      need_value(c, e->a, "'self_set' value");
    }
    if (!r) {
      wfp__diag(p, WFP_EPROGRAM, e->path,
                "'%s' outside a method (only functions with a 'resource' "
                "have self)",
                wfp__expr_op_name(e->op));
      e->type = T(c, e->op == WFP_OP_SELF_SET ? WFP_T_VOID : WFP_T_ERROR);
      return;
    }
    int k = -1;
    for (int i = 0; i < r->nprops; i++)
      if (strcmp(r->prop_names[i], e->str) == 0)
        k = i;
    if (k < 0) {
      wfp__diag(p, WFP_EPROGRAM, e->path, "resource '%s' has no property '%s'",
                r->name, e->str);
      e->type = T(c, e->op == WFP_OP_SELF_SET ? WFP_T_VOID : WFP_T_ERROR);
      return;
    }
    wfp_type *pt = T(c, r->prop_types[k]);
    if (e->op == WFP_OP_SELF_SET) {
      const char *ctx = wfp__arena_printf(&p->arena, "property '%s'", e->str);
      expect(c, e->a, pt, ctx);
      e->type = T(c, WFP_T_VOID);
    } else {
      e->type = pt;
    }
    break;
  }
  case WFP_OP__COUNT:
    break;
  }
}

/* ---- statements ---- */

/* Can this statement list complete normally (fall through its end)? */
static bool block_completes(const wfp_block *b);
static bool has_break(const wfp_block *b) {
  for (int i = 0; i < b->n; i++) {
    const wfp_stmt *s = b->v[i];
    if (s->op == WFP_ST_BREAK)
      return true;
    if (s->op == WFP_ST_IF && (has_break(&s->then_) || has_break(&s->else_)))
      return true;
    /* a break inside a nested while belongs to that loop */
  }
  return false;
}
static bool stmt_completes(const wfp_stmt *s) {
  switch (s->op) {
  case WFP_ST_RETURN:
  case WFP_ST_TRAP:
  case WFP_ST_BREAK:
  case WFP_ST_CONTINUE:
    return false;
  case WFP_ST_IF:
    return block_completes(&s->then_) || block_completes(&s->else_);
  case WFP_ST_WHILE:
    /* while (non-zero literal) ends only through a break */
    if (s->e && s->e->op == WFP_OP_LIT_I64 && s->e->ival != 0)
      return has_break(&s->body);
    return true;
  default:
    return true;
  }
}
static bool block_completes(const wfp_block *b) {
  for (int i = 0; i < b->n; i++)
    if (!stmt_completes(b->v[i]))
      return false;
  return true;
}

static void declare(C *c, wfp_stmt *s) {
  wfp_program *p = c->k->p;
  wfp_var *v = s->var;
  /* one name per block (params share the body's block) */
  for (scope *q = c->sc; q && q->block == c->block; q = q->next)
    if (strcmp(q->var->name, v->name) == 0) {
      wfp__diag(p, WFP_EPROGRAM, s->path,
                "duplicate variable '%s' in this block (declared at %s)",
                v->name, q->var->path);
      return;
    }
  scope *n = wfp__arena_alloc(&p->arena, sizeof *n);
  if (!n)
    return;
  v->owner = c->fn;
  add_local(p, c->fn, v);
  n->var = v;
  n->block = c->block;
  n->next = c->sc;
  c->sc = n;
  if (c->block == c->root_block) {
    fnlevel *l = level_of(c->k, c->fn);
    if (l && push((void **)&l->vars, &l->n, &l->cap, sizeof(wfp_var *)))
      l->vars[l->n++] = v;
    else if (l)
      p->oom = true;
  }
}

static void check_stmt(C *c, wfp_stmt *s) {
  wfp_program *p = c->k->p;
  switch (s->op) {
  case WFP_ST_LET:
    check_expr(c, s->e);
    need_value(c, s->e, "'let'");
    s->var->type = s->e && s->e->type ? s->e->type : T(c, WFP_T_ERROR);
    declare(c, s);
    break;
  case WFP_ST_SET: {
    check_expr(c, s->e);
    need_value(c, s->e, "'set'");
    wfp_var *v = lookup(c, s->var->name);
    if (!v) {
      wfp__diag(p, WFP_EPROGRAM, s->path, "unknown variable '%s'",
                s->var->name);
      break;
    }
    if (v->owner != c->fn || v->is_capture) {
      wfp_var *o = origin(v);
      wfp__diag(p, WFP_EPROGRAM, s->path,
                "cannot set '%s': it is captured from '%s' (captures are by "
                "value; a nested function or lambda only reads them)",
                s->var->name,
                o && o->owner && o->owner->name ? o->owner->name : "the enclosing function");
      break;
    }
    s->var = v;
    const char *ctx = wfp__arena_printf(&p->arena, "'set' of '%s'", v->name);
    expect(c, s->e, v->type, ctx);
    break;
  }
  case WFP_ST_EXPR:
    check_expr(c, s->e);
    break;
  case WFP_ST_RETURN:
    if (s->e) {
      check_expr(c, s->e);
      need_value(c, s->e, "'return'");
      if (s->e->type && is_err(s->e->type)) {
        /* already reported: do not also report an unknown return type */
        wfp_type *r = wfp__type_find(c->fn->ret);
        if (r->kind == WFP_T_VAR)
          r->link = T(c, WFP_T_ERROR);
      } else if (s->e->type) {
        wfp_type *have = wfp__type_find(s->e->type);
        wfp_type *rv = wfp__type_find(c->fn->ret);
        if (have->kind != WFP_T_VOID && rv->kind == WFP_T_VAR && have != rv &&
            occurs(rv, have))
          wfp__diag(p, WFP_EPROGRAM, s->e->path,
                    "type mismatch: %s%s%s would return a function that returns "
                    "its own result type (an infinite type)",
                    c->fn->is_lambda ? "the lambda" : "'",
                    c->fn->is_lambda ? "" : c->fn->name, c->fn->is_lambda ? "" : "'");
        else if (have->kind != WFP_T_VOID && !unify(s->e->type, c->fn->ret))
          wfp__diag(p, WFP_EPROGRAM, s->e->path,
                    "type mismatch: this returns %s, but %s%s%s returns %s "
                    "elsewhere",
                    tstr(c->k, s->e->type), c->fn->is_lambda ? "the lambda" : "'",
                    c->fn->is_lambda ? "" : c->fn->name, c->fn->is_lambda ? "" : "'",
                    tstr(c->k, c->fn->ret));
      }
    } else {
      c->fn->may_end_void = true;
    }
    break;
  case WFP_ST_IF:
    check_expr(c, s->e);
    need_value(c, s->e, "'if' condition");
    expect(c, s->e, T(c, WFP_T_I64), "'if' condition");
    check_block(c, &s->then_, true);
    check_block(c, &s->else_, true);
    break;
  case WFP_ST_WHILE:
    check_expr(c, s->e);
    need_value(c, s->e, "'while' condition");
    expect(c, s->e, T(c, WFP_T_I64), "'while' condition");
    c->loops++;
    check_block(c, &s->body, true);
    c->loops--;
    break;
  case WFP_ST_BREAK:
  case WFP_ST_CONTINUE:
    if (c->loops == 0)
      wfp__diag(p, WFP_EPROGRAM, s->path, "'%s' outside a loop",
                wfp__stmt_op_name(s->op));
    break;
  case WFP_ST_TRAP:
    break;
  case WFP_ST__COUNT:
    break;
  }
}

static void check_block(C *c, wfp_block *b, bool new_scope) {
  scope *saved = c->sc;
  int saved_block = c->block;
  if (new_scope)
    c->block = ++c->k->next_block;
  for (int i = 0; i < b->n; i++)
    check_stmt(c, b->v[i]);
  c->sc = saved;
  c->block = saved_block;
}

static bool has_value_return(const wfp_block *b) {
  for (int i = 0; i < b->n; i++) {
    const wfp_stmt *s = b->v[i];
    if (s->op == WFP_ST_RETURN && s->e)
      return true;
    if (s->op == WFP_ST_IF && (has_value_return(&s->then_) || has_value_return(&s->else_)))
      return true;
    if (s->op == WFP_ST_WHILE && has_value_return(&s->body))
      return true;
  }
  return false;
}

static void check_func_body(K *k, wfp_func *f, C *outer) {
  wfp_program *p = k->p;
  C c;
  memset(&c, 0, sizeof c);
  c.k = k;
  c.fn = f;
  c.outer = outer;
  c.block = c.root_block = ++k->next_block;
  for (int i = 0; i < f->nparams; i++) {
    wfp_var *v = f->params[i];
    bool dup = false;
    for (int j = 0; j < i; j++)
      if (strcmp(f->params[j]->name, v->name) == 0)
        dup = true;
    if (dup) {
      wfp__diag(p, WFP_EPROGRAM, v->path, "duplicate parameter '%s'", v->name);
      continue;
    }
    scope *n = wfp__arena_alloc(&p->arena, sizeof *n);
    if (!n)
      return;
    v->owner = f;
    add_local(p, f, v);
    n->var = v;
    n->block = c.block;
    n->next = c.sc;
    c.sc = n;
  }
  check_block(&c, &f->body, false);
  if (block_completes(&f->body))
    f->may_end_void = true;
}

/* ---- captures at reference sites (after every body is checked) ---- */

/* The variable of g that holds u's value, where u is a variable of one of
** g's enclosing functions (or of g itself). at_site: the value is needed at
** a point of g where exactly the variables of snap are visible; otherwise at
** g's function level (its params, top-level lets, captures). Adds the
** captures this needs; sets *changed when it does. */
static wfp_var *provide(K *k, wfp_func *g, bool at_site, scope *snap,
                        wfp_var *u, bool *changed, bool *late) {
  wfp_var *ou = origin(u);
  /* g's own variable: params and captures hold for the whole function; a
  ** let only where it is visible (snap), or, at function level, when it is
  ** a top-level let */
  for (int i = 0; i < g->nlocals; i++) {
    wfp_var *v = g->locals[i];
    if (v != ou && !(v->is_capture && origin(v) == ou))
      continue;
    if (v->is_param || v->is_capture)
      return v;
    if (at_site && in_snapshot(snap, v))
      return v;
    if (!at_site) {
      fnlevel *l = level_of(k, g);
      for (int q = 0; l && q < l->n; q++)
        if (l->vars[q] == v)
          return v;
    }
    *late = true;
    return NULL;
  }
  /* g must capture it from its enclosing function */
  if (!g->parent)
    return NULL;
  wfp_var *pv;
  if (g->is_lambda) {
    site *ls = NULL;
    for (int i = 0; i < k->nsites; i++)
      if (k->sites[i].target == g && k->sites[i].e->op == WFP_OP_LAMBDA)
        ls = &k->sites[i];
    if (!ls)
      return NULL;
    pv = provide(k, g->parent, true, ls->snap, u, changed, late);
  } else {
    pv = provide(k, g->parent, false, NULL, u, changed, late);
  }
  if (!pv)
    return NULL;
  *changed = true;
  return new_capture(k->p, g, pv);
}

static void resolve_sites(K *k) {
  wfp_program *p = k->p;
  bool changed = true;
  int rounds = 0;
  while (changed && rounds++ < 10000) {
    changed = false;
    for (int i = 0; i < k->nsites; i++) {
      site *s = &k->sites[i];
      wfp_func *f = s->target;
      if (s->e->op == WFP_OP_LAMBDA || s->reported)
        continue;
      /* explicit captures (lifted IR read back) bind the leading params */
      if (s->e->nbound)
        continue;
      for (int j = 0; j < f->ncaps; j++) {
        bool late = false;
        wfp_var *v = provide(k, s->in, true, s->snap, f->caps[j]->outer, &changed, &late);
        if (!v) {
          s->reported = true;
          wfp_var *o = origin(f->caps[j]);
          if (late)
            wfp__diag(p, WFP_EPROGRAM, s->e->path,
                      "'%s' reads '%s', which is not declared yet here "
                      "(nested functions capture variables by value when "
                      "they are called)",
                      f->name, o->name);
          else
            wfp__diag(p, WFP_EPROGRAM, s->e->path,
                      "'%s' reads '%s' of '%s', which is not available here",
                      f->name, o->name, o->owner && o->owner->name ? o->owner->name : "?");
          break;
        }
      }
    }
  }
  /* record the values each site passes */
  for (int i = 0; i < k->nsites; i++) {
    site *s = &k->sites[i];
    wfp_func *f = s->target;
    if (s->reported || s->e->nbound)
      continue;
    s->e->ncapargs = f->ncaps;
    s->e->capargs = wfp__arena_alloc(&p->arena, sizeof *s->e->capargs * (size_t)(f->ncaps + 1));
    if (!s->e->capargs)
      return;
    for (int j = 0; j < f->ncaps; j++) {
      if (s->e->op == WFP_OP_LAMBDA) {
        s->e->capargs[j] = f->caps[j]->outer;
      } else {
        bool ch = false, late = false;
        s->e->capargs[j] = provide(k, s->in, true, s->snap, f->caps[j]->outer, &ch, &late);
      }
    }
  }
}

/* ---- program-level rules ---- */

static void check_names(K *k) {
  wfp_program *p = k->p;
  for (int i = 0; i < p->nfuncs; i++) {
    wfp_func *f = p->funcs[i];
    if (f->is_lambda || !f->name)
      continue;
    for (int j = 0; j < i; j++) {
      wfp_func *g = p->funcs[j];
      if (!g->is_lambda && g->name && strcmp(g->name, f->name) == 0) {
        wfp__diag(p, WFP_EPROGRAM, wfp__arena_printf(&p->arena, "%s.name", f->path),
                  "duplicate function name '%s' (first at %s)", f->name, g->path);
        break;
      }
    }
  }
  /* parents */
  for (int i = 0; i < p->nfuncs; i++) {
    wfp_func *f = p->funcs[i];
    if (f->is_lambda || !f->parent_name)
      continue;
    bool by_id;
    wfp_func *par = find_func(p, f->parent_name, &by_id);
    const char *pp = wfp__arena_printf(&p->arena, "%s.parent", f->path);
    if (!par || by_id) {
      wfp__diag(p, WFP_EPROGRAM, pp, "unknown parent function '%s'",
                f->parent_name);
      f->parsed_ok = false;
      continue;
    }
    if (par == f) {
      wfp__diag(p, WFP_EPROGRAM, pp, "function '%s' cannot be its own parent",
                f->name);
      f->parsed_ok = false;
      continue;
    }
    f->parent = par;
  }
  /* cycles among parents */
  for (int i = 0; i < p->nfuncs; i++) {
    wfp_func *f = p->funcs[i];
    if (f->is_lambda || !f->parent)
      continue;
    wfp_func *a = f->parent;
    int steps = 0;
    while (a && a != f && steps++ <= p->nfuncs)
      a = a->is_lambda ? a->parent : a->parent;
    if (a == f) {
      wfp__diag(p, WFP_EPROGRAM,
                wfp__arena_printf(&p->arena, "%s.parent", f->path),
                "nesting cycle: '%s' is nested in itself through its parents",
                f->name);
      f->parent = NULL;
      f->parsed_ok = false;
    }
  }
}

static void check_resources(K *k) {
  wfp_program *p = k->p;
  for (int i = 0; i < p->nfuncs; i++) {
    wfp_func *f = p->funcs[i];
    if (!f->resource || f->is_lambda)
      continue;
    wfp_resource *placeholder = f->resource;
    wfp_resource *r = NULL;
    for (int j = 0; j < p->nresources; j++)
      if (strcmp(p->resources[j]->name, placeholder->name) == 0)
        r = p->resources[j];
    if (!r) {
      wfp__diag(p, WFP_EPROGRAM, placeholder->path, "unknown resource '%s'",
                placeholder->name);
      f->resource = NULL;
      continue;
    }
    f->resource = r;
    bool listed = false;
    for (int m = 0; m < r->nmethods; m++)
      if (f->name && strcmp(r->methods[m], f->name) == 0)
        listed = true;
    if (!listed)
      wfp__diag(p, WFP_EPROGRAM, placeholder->path,
                "function '%s' is a method of '%s', but '%s' does not list it "
                "in its methods",
                f->name ? f->name : "?", r->name, r->name);
    if (f->parent_name)
      wfp__diag(p, WFP_EPROGRAM, placeholder->path,
                "method '%s' cannot be nested in another function",
                f->name ? f->name : "?");
  }
  for (int j = 0; j < p->nresources; j++) {
    wfp_resource *r = p->resources[j];
    for (int m = 0; m < r->nmethods; m++) {
      wfp_func *f = NULL;
      for (int i = 0; i < p->nfuncs; i++)
        if (!p->funcs[i]->is_lambda && p->funcs[i]->name &&
            strcmp(p->funcs[i]->name, r->methods[m]) == 0)
          f = p->funcs[i];
      if (!f)
        wfp__diag(p, WFP_EPROGRAM, r->method_paths[m],
                  "resource '%s' lists method '%s', but there is no function "
                  "'%s'",
                  r->name, r->methods[m], r->methods[m]);
      else if (f->resource != r)
        wfp__diag(p, WFP_EPROGRAM, r->method_paths[m],
                  "resource '%s' lists method '%s', but function '%s' is not "
                  "a method of '%s' (set its \"resource\": \"%s\")",
                  r->name, r->methods[m], r->methods[m], r->name, r->name);
    }
  }
}

static void run_defers(K *k) {
  wfp_program *p = k->p;
  /* an unknown type is almost always a consequence of another fault: say
  ** it only when there is no other */
  bool others = p->ndiags > 0 || p->dropped > 0;
  /* functions without a value return give no value */
  for (int i = 0; i < p->nfuncs; i++) {
    wfp_func *f = p->funcs[i];
    wfp_type *r = wfp__type_find(f->ret);
    if (r->kind == WFP_T_VAR && !has_value_return(&f->body))
      unify(r, wfp__type_new(p, WFP_T_VOID));
  }
  for (int i = 0; i < k->ndefers; i++) {
    defer *d = &k->defers[i];
    wfp_type *t = d->t ? wfp__type_find(d->t) : NULL;
    if (t && t->kind == WFP_T_ERROR)
      continue;
    /* a call of a function with faults of its own: nothing more to say */
    if (d->e->op == WFP_OP_CALL && d->e->target && !d->e->target->parsed_ok)
      continue;
    if (d->in)
      d->in->reported_types = true;
    switch (d->kind) {
    case D_VALUE:
      if (t->kind == WFP_T_VOID) {
        if (d->e->op == WFP_OP_CALL && d->e->target)
          wfp__diag(p, WFP_EPROGRAM, d->e->path,
                    "'%s' returns no value (%s needs one)", d->e->target->name,
                    d->what);
        else
          wfp__diag(p, WFP_EPROGRAM, d->e->path, "this gives no value (%s needs one)",
                    d->what);
      } else if (t->kind == WFP_T_VAR && !t->want_fn && !others) {
        wfp__diag(p, WFP_EPROGRAM, d->e->path,
                  "cannot infer the type of this '%s' (%s)",
                  wfp__expr_op_name(d->e->op), d->what);
        if (d->in)
          d->in->reported_types = true;
      }
      if (d->e->op == WFP_OP_CALL && d->e->target && d->e->target->may_end_void &&
          t->kind != WFP_T_VOID)
        wfp__diag(p, WFP_EPROGRAM, d->e->path,
                  "'%s' does not return a value on every path (%s needs one)",
                  d->e->target->name, d->what);
      break;
    case D_EQ:
      if (t->kind != WFP_T_I64 && t->kind != WFP_T_STR && t->kind != WFP_T_VAR)
        wfp__diag(p, WFP_EPROGRAM, d->e->path,
                  "type mismatch: %s compares i64 or str values, got %s",
                  d->what, tstr(k, t));
      break;
    case D_PRINTABLE:
      if (t->kind == WFP_T_FN || (t->kind == WFP_T_VAR && t->want_fn))
        wfp__diag(p, WFP_EPROGRAM, d->e->path,
                  "type mismatch: %s must be i64, str or json, not a function",
                  d->what);
      break;
    case D_LEN:
      if (t->kind != WFP_T_STR && t->kind != WFP_T_JSON && t->kind != WFP_T_VAR &&
          t->kind != WFP_T_VOID)
        wfp__diag(p, WFP_EPROGRAM, d->e->path,
                  "type mismatch: 'len' needs str or json, got %s", tstr(k, t));
      break;
    case D_FNVALUE:
    case D_EACH: {
      wfp_func *f = d->target;
      wfp_type *r = wfp__type_find(f->ret);
      if (r->kind != WFP_T_VOID && f->may_end_void)
        wfp__diag(p, WFP_EPROGRAM, d->e->path,
                  "%s does not return a value on every path (a function used "
                  "as a value must return one always, or never)",
                  f->is_lambda ? "this lambda" : f->name);
      if (d->kind == D_EACH && r->kind == WFP_T_VOID)
        wfp__diag(p, WFP_EPROGRAM, d->e->path,
                  "the 'each' function must return a value for every row");
      break;
    }
    }
  }
  /* return types still unknown: value returns that only return themselves
  ** (not worth a second message when an expression of f was reported) */
  for (int i = 0; i < p->nfuncs; i++) {
    wfp_func *f = p->funcs[i];
    wfp_type *r = wfp__type_find(f->ret);
    if (r->kind == WFP_T_VAR && !r->want_fn && f->parsed_ok && !f->reported_types && !others)
      wfp__diag(p, WFP_EPROGRAM, f->path,
                "cannot infer the return type of %s%s%s",
                f->is_lambda ? "this lambda" : "'", f->is_lambda ? "" : f->name,
                f->is_lambda ? "" : "'");
  }
}

int wfp__ir_check(wfp_program *p) {
  K kk;
  memset(&kk, 0, sizeof kk);
  K *k = &kk;
  k->p = p;
  k->levels = calloc((size_t)p->nfuncs + 1, sizeof *k->levels);
  if (!k->levels)
    return WFP_ENOMEM;
  k->nlevels = p->nfuncs;
  for (int i = 0; i < p->nfuncs; i++) {
    wfp_func *f = p->funcs[i];
    k->levels[i].fn = f;
    f->ret = wfp__type_new(p, WFP_T_VAR);
    if (!f->ret) {
      free(k->levels);
      return WFP_ENOMEM;
    }
  }
  check_names(k);
  check_resources(k);
  /* depth: parents are checked before the functions nested in them */
  int maxd = 0;
  for (int i = 0; i < p->nfuncs; i++) {
    wfp_func *f = p->funcs[i];
    if (f->is_lambda)
      continue;
    int d = 0;
    for (wfp_func *a = f->parent; a && d <= p->nfuncs; a = a->parent)
      d++;
    f->depth = d;
    if (d > maxd)
      maxd = d;
  }
  for (int d = 0; d <= maxd; d++)
    for (int i = 0; i < p->nfuncs; i++) {
      wfp_func *f = p->funcs[i];
      if (!f->is_lambda && f->depth == d)
        check_func_body(k, f, NULL);
    }
  /* lambdas' depth: one below their enclosing function */
  for (int i = 0; i < p->nfuncs; i++) {
    wfp_func *f = p->funcs[i];
    if (f->is_lambda) {
      int d = 0;
      for (wfp_func *a = f->parent; a && d <= p->nfuncs; a = a->parent)
        d++;
      f->depth = d;
    }
  }
  resolve_sites(k);
  run_defers(k);
  /* the entry */
  p->entry = NULL;
  for (int i = 0; i < p->nfuncs; i++) {
    wfp_func *f = p->funcs[i];
    if (!f->is_lambda && f->name && strcmp(f->name, p->entry_name) == 0)
      p->entry = f;
  }
  if (p->entry && p->entry->parent)
    wfp__diag(p, WFP_EPROGRAM, p->entry->path,
              "the entry function '%s' cannot be nested in another function",
              p->entry->name);
  else if (!p->entry && p->entry_explicit)
    wfp__diag(p, WFP_EPROGRAM, "$.functions",
              "entry function '%s' not found", p->entry_name);
  for (int i = 0; i < k->nlevels; i++)
    free(k->levels[i].vars);
  free(k->levels);
  free(k->defers);
  free(k->sites);
  return p->ndiags ? WFP_EPROGRAM : WFP_OK;
}
