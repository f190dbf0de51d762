/*
** check.c: the semantic rules of IR v1: names and their scopes, function
** visibility and arity, captures of nested functions and lambdas, resources
** and methods, break/continue placement, and types (inferred by unification,
** with documented defaults for what nothing determines). It annotates the
** AST in place; lifting (lift.c) then reads the captures. Every lookup is
** through a map, so the time stays near-linear in the program's size.
*/
#include <stdlib.h>
#include <string.h>

#include "ir_ast.h"

/* ---- types ---- */

wfp_type *wfp__type_new(wfp_program *p, wfp_tkind k) {
  wfp_type *t = wfp__arena_alloc(&p->arena, sizeof *t);
  if (!t) {
    p->oom = true;
    return &p->oom_type;
  }
  t->kind = k;
  if (k == WFP_T_VAR) {
    /* remembered for the defaults (run_defers) */
    if (p->ntvars == p->tvars_cap) {
      size_t cap = p->tvars_cap ? p->tvars_cap * 2 : 64;
      wfp_type **nv = realloc(p->tvars, cap * sizeof *nv);
      if (!nv) {
        p->oom = true;
        return t;
      }
      p->tvars = nv;
      p->tvars_cap = cap;
    }
    p->tvars[p->ntvars++] = t;
  }
  return t;
}

wfp_type *wfp__type_find(wfp_type *t) {
  while (t && t->kind == WFP_T_VAR && t->link)
    t = t->link;
  return t;
}

/* As wfp__type_find, shortening the chain it walked (unification makes
** chains of variables; this keeps them short). */
static wfp_type *rep(wfp_type *t) {
  wfp_type *r = wfp__type_find(t);
  while (t && t != r && t->kind == WFP_T_VAR) {
    wfp_type *n = t->link;
    t->link = r;
    t = n;
  }
  return r;
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
    if (t->want_fn) {
      /* a fn value nothing calls: its signature is open */
      wfp__buf_adds(out, "fn");
      break;
    }
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
  t = rep(t);
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
  a = rep(a);
  b = rep(b);
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

/* A variable in scope: the innermost of its name first (shadow: the one it
** hides), and the declarations of a function in reverse order (prev). */
typedef struct sentry {
  wfp_var *var;
  int block;
  struct sentry *shadow;
  struct sentry *prev;
} sentry;

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

/* A reference to a named nested function (call or fn) or a lambda. The
** variables visible there: those of its function declared before it
** (seq) in its block or the blocks around it. */
typedef struct site {
  wfp_func *in; /* the function containing the site */
  int block, seq;
  wfp_func *target;
  wfp_expr *e;
  bool reported;
  int done;    /* captures of the target provided so far */
  bool queued; /* in the work list of resolve_sites */
} site;

/* Per function (by f->index): what the checker knows of it. */
typedef struct fnx {
  wfp__map level;  /* params and top-level lets, by name */
  wfp__map caps;   /* captures by name (the first of each name) */
  wfp__map cap_of; /* captures by the variable they copy at the origin */
  int caps_cap;
  int lambda_site; /* a lambda: the index of its site; else -1 */
  int first_site, nsites; /* the sites that target it (resolve_sites) */
  /* the nesting tree: depth, and pre/post order for ancestor tests */
  int depth, enter, leave;
} fnx;

typedef struct K {
  wfp_program *p;
  defer *defers;
  int ndefers, defers_cap;
  site *sites;
  int nsites, sites_cap;
  fnx *fx;            /* one per function, by index */
  wfp__map by_name;   /* named (not lambda) functions, the first of a name */
  wfp__map by_id;     /* the same by id */
  int *bparent;       /* each block's enclosing block (0: none) */
  int nblocks, bcap;
  /* resolve_sites: sites to process again, and site order by target */
  int *work;
  int nwork, work_cap;
  int *by_target;
  bool resolving;
  wfp_func **chain; /* capture_env_lookup, provide: functions on the way */
  int nchain, chain_cap;
} K;

typedef struct C {
  K *k;
  wfp_func *fn;
  wfp__map scope;  /* name -> innermost sentry */
  sentry *decls;   /* every declaration in scope, newest first */
  int seq;         /* declarations so far */
  int block;       /* id of the innermost block */
  int root_block;  /* id of the function body block */
  int loops;
  struct C *outer; /* lambdas: the enclosing context, at the lambda's site */
} C;

static fnx *fx_of(K *k, const wfp_func *f) { return &k->fx[f->index]; }

static bool push(K *k, void **v, int *n, int *cap, size_t sz) {
  if (*n < *cap)
    return true;
  int nc = *cap ? *cap * 2 : 16;
  void *nv = realloc(*v, sz * (size_t)nc);
  if (!nv) {
    k->p->oom = true;
    return false;
  }
  *v = nv;
  *cap = nc;
  return true;
}

static void map_put(K *k, wfp__map *m, const void *key, void *val, bool replace) {
  if (wfp__map_put(m, key, val, replace, NULL))
    k->p->oom = true;
}

static int new_block(K *k, int parent) {
  if (!push(k, (void **)&k->bparent, &k->nblocks, &k->bcap, sizeof(int)))
    return 0;
  k->bparent[k->nblocks] = parent;
  return k->nblocks++;
}

static void add_defer(C *c, dkind kind, wfp_expr *e, wfp_type *t,
                      const char *what, wfp_func *target) {
  K *k = c->k;
  if (!push(k, (void **)&k->defers, &k->ndefers, &k->defers_cap, sizeof(defer)))
    return;
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
  if (!push(k, (void **)&k->sites, &k->nsites, &k->sites_cap, sizeof(site)))
    return;
  site *s = &k->sites[k->nsites];
  memset(s, 0, sizeof *s);
  s->in = c->fn;
  s->block = c->block;
  s->seq = c->seq;
  s->target = target;
  s->e = e;
  if (e->op == WFP_OP_LAMBDA)
    fx_of(k, target)->lambda_site = k->nsites;
  k->nsites++;
}

static bool add_local(wfp_program *p, wfp_func *f, wfp_var *v) {
  if (f->nlocals == f->locals_cap) {
    int cap = f->locals_cap ? f->locals_cap * 2 : 8;
    wfp_var **nv = wfp__ir_alloc(p, sizeof *nv * (size_t)cap);
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
  const char *r = NULL;
  if (b.oom)
    k->p->oom = true;
  else
    r = wfp__ir_strndup(k->p, b.data ? b.data : "?", b.data ? b.len : 1);
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
  } else if (t->kind == WFP_T_VAR || (e->op == WFP_OP_CALL && e->target)) {
    /* a call: whether its function returns on every path is known once
    ** every body is checked (run_defers), whatever the order they are in */
    add_defer(c, D_VALUE, e, e->type, ctx, NULL);
  }
}

/* ---- names ---- */

/* The variable a capture copies in the end (a capture of a capture of
** ...), kept in each capture: chains are as long as nesting is deep. */
static wfp_var *origin(wfp_var *v) {
  return v && v->is_capture && v->root ? v->root : v;
}

static wfp_var *find_in_scope(C *c, const char *name) {
  sentry *s = wfp__map_get(&c->scope, name);
  return s ? s->var : NULL;
}

/* Is v (a variable of the site's function) visible at the site (block,
** seq)? It is when it was declared before, in that block or one around it. */
static bool visible_at(K *k, const wfp_var *v, int block, int seq) {
  if (v->scope_seq >= seq)
    return false;
  for (int b = block; b; b = k->bparent[b])
    if (b == v->scope_block)
      return true;
  return false;
}

static void queue_sites_of(K *k, const wfp_func *f);

static wfp_var *new_capture(K *k, wfp_func *f, wfp_var *outer) {
  wfp_program *p = k->p;
  fnx *x = fx_of(k, f);
  wfp_var *c = wfp__ir_alloc(p, sizeof *c);
  if (!c)
    return NULL;
  c->name = outer->name;
  c->type = outer->type;
  c->owner = f;
  c->is_capture = true;
  c->outer = outer;
  c->root = origin(outer);
  c->path = f->path;
  if (f->ncaps == x->caps_cap) {
    int cap = x->caps_cap ? x->caps_cap * 2 : 4;
    wfp_var **nv = wfp__ir_alloc(p, sizeof *nv * (size_t)cap);
    if (!nv)
      return NULL;
    if (f->ncaps)
      memcpy(nv, f->caps, sizeof *nv * (size_t)f->ncaps);
    f->caps = nv;
    x->caps_cap = cap;
  }
  f->caps[f->ncaps++] = c;
  map_put(k, &x->caps, c->name, c, false);
  map_put(k, &x->cap_of, origin(c), c, false);
  outer->referenced_by_nested = true;
  add_local(p, f, c);
  /* the sites that call f must now pass this value too */
  if (k->resolving)
    queue_sites_of(k, f);
  return c;
}

static wfp_var *find_cap(K *k, wfp_func *f, const char *name) {
  return wfp__map_get(&fx_of(k, f)->caps, name);
}

/* The functions a value passes through on its way down to a nested
** function, collected in k->chain (a loop, not recursion: nesting may be
** as deep as the program is long). False when memory ran out. */
static bool chain_push(K *k, wfp_func *f) {
  if (!push(k, (void **)&k->chain, &k->nchain, &k->chain_cap, sizeof(wfp_func *)))
    return false;
  k->chain[k->nchain++] = f;
  return true;
}

/* Gives the functions of k->chain[from..] (innermost first) captures of v,
** outermost first; the innermost one's, or NULL. */
static wfp_var *capture_down(K *k, int from, wfp_var *v) {
  for (int i = k->nchain - 1; i >= from && v; i--)
    v = new_capture(k, k->chain[i], v);
  k->nchain = from;
  return v;
}

/* What a named nested function f can capture under name: a function-level
** variable (param, top-level let, capture) of its parent, or what the
** parent can capture in turn, and so on up. */
static wfp_var *capture_env_lookup(K *k, wfp_func *f, const char *name) {
  int from = k->nchain;
  wfp_var *v = NULL;
  for (wfp_func *g = f; g->parent && !g->is_lambda; g = g->parent) {
    if (!chain_push(k, g))
      break;
    fnx *x = fx_of(k, g->parent);
    v = wfp__map_get(&x->level, name);
    if (!v)
      v = wfp__map_get(&x->caps, name);
    if (v)
      break;
  }
  return capture_down(k, from, v);
}

static wfp_var *lookup(C *c, const char *name) {
  wfp_var *v = find_in_scope(c, name);
  if (v)
    return v;
  v = find_cap(c->k, c->fn, name);
  if (v)
    return v;
  if (c->fn->is_lambda && c->outer) {
    wfp_var *u = lookup(c->outer, name);
    return u ? new_capture(c->k, c->fn, u) : NULL;
  }
  return capture_env_lookup(c->k, c->fn, name);
}

static wfp_func *find_func(K *k, const char *name, bool *by_id) {
  *by_id = false;
  wfp_func *f = wfp__map_get(&k->by_name, name);
  if (f)
    return f;
  f = wfp__map_get(&k->by_id, name);
  *by_id = f != NULL;
  return f;
}

/* Is a an ancestor of g in the nesting tree, or g itself? */
static bool encloses(K *k, const wfp_func *a, const wfp_func *g) {
  const fnx *x = fx_of(k, a), *y = fx_of(k, g);
  return x->enter <= y->enter && y->leave <= x->leave;
}

/* Is f (a named function) visible from g? Top-level functions are visible
** everywhere, a nested one inside its parent and the parent's descendants. */
static bool visible_from(K *k, wfp_func *f, wfp_func *g) {
  return !f->parent || encloses(k, f->parent, g);
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
  if (t->kind != WFP_T_FN)
    return t; /* out of memory */
  int n = f->nparams - skip;
  if (n < 0)
    n = 0;
  t->params = wfp__ir_alloc(c->k->p, sizeof *t->params * (size_t)(n + 1));
  if (!t->params)
    return &c->k->p->oom_type;
  t->nparams = n;
  for (int i = 0; i < n; i++)
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
    char *ctx = wfp__ir_printf(c->k->p, "argument '%s' of '%s'",
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
  if (!visible_from(c->k, f, c->fn)) {
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
    const char *ctx = wfp__ir_printf(p, "'%s'", wfp__expr_op_name(e->op));
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
    const char *ctx = wfp__ir_printf(p, "'%s'", wfp__expr_op_name(e->op));
    check_expr(c, e->a);
    need_value(c, e->a, ctx);
    expect(c, e->a, T(c, WFP_T_I64), ctx);
    e->type = T(c, WFP_T_I64);
    break;
  }
  case WFP_OP_EQ:
  case WFP_OP_NE: {
    const char *ctx = wfp__ir_printf(p, "'%s'", wfp__expr_op_name(e->op));
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
    const char *ctx = wfp__ir_printf(p, "'%s' from", wfp__expr_op_name(e->op));
    check_expr(c, e->a);
    need_value(c, e->a, ctx);
    expect(c, e->a, T(c, WFP_T_JSON), ctx);
    e->type = T(c, e->op == WFP_OP_GET_I64 ? WFP_T_I64
                     : e->op == WFP_OP_GET_STR ? WFP_T_STR : WFP_T_JSON);
    break;
  }
  case WFP_OP_CALL: {
    bool by_id;
    wfp_func *f = find_func(c->k, e->str, &by_id);
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
    wfp_func *f = find_func(c->k, e->str, &by_id);
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
    if (ft->kind == WFP_T_FN)
      ft->params = wfp__ir_alloc(p, sizeof *ft->params * (size_t)(e->nargs + 1));
    if (ft->kind != WFP_T_FN || !ft->params) {
      e->type = &p->oom_type;
      return;
    }
    ft->nparams = e->nargs;
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
      const char *ctx = wfp__ir_printf(p, "property '%s'", e->str);
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

/* Puts v in scope in the current block; false when the block has one of
** that name already (reported by the caller). */
static bool scope_add(C *c, wfp_var *v) {
  K *k = c->k;
  sentry *top = wfp__map_get(&c->scope, v->name);
  if (top && top->block == c->block)
    return false;
  sentry *n = wfp__ir_alloc(k->p, sizeof *n);
  if (!n)
    return true;
  v->owner = c->fn;
  v->scope_block = c->block;
  v->scope_seq = c->seq++;
  add_local(k->p, c->fn, v);
  n->var = v;
  n->block = c->block;
  n->shadow = top;
  n->prev = c->decls;
  c->decls = n;
  map_put(k, &c->scope, v->name, n, true);
  if (c->block == c->root_block)
    map_put(k, &fx_of(k, c->fn)->level, v->name, v, false);
  return true;
}

static void declare(C *c, wfp_stmt *s) {
  wfp_var *v = s->var;
  /* one name per block (params share the body's block) */
  if (!scope_add(c, v)) {
    sentry *q = wfp__map_get(&c->scope, v->name);
    wfp__diag(c->k->p, WFP_EPROGRAM, s->path,
              "duplicate variable '%s' in this block (declared at %s)",
              v->name, q->var->path);
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
    const char *ctx = wfp__ir_printf(p, "'set' of '%s'", v->name);
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
  int saved_block = c->block;
  if (new_scope)
    c->block = new_block(c->k, saved_block);
  for (int i = 0; i < b->n; i++)
    check_stmt(c, b->v[i]);
  /* the block's variables go out of scope */
  while (c->decls && c->decls->block == c->block) {
    sentry *e = c->decls;
    map_put(c->k, &c->scope, e->var->name, e->shadow, true);
    c->decls = e->prev;
  }
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
  wfp__map_init(&c.scope, false);
  c.block = c.root_block = new_block(k, 0);
  for (int i = 0; i < f->nparams; i++) {
    wfp_var *v = f->params[i];
    if (!scope_add(&c, v))
      wfp__diag(p, WFP_EPROGRAM, v->path, "duplicate parameter '%s'", v->name);
  }
  check_block(&c, &f->body, false);
  if (block_completes(&f->body))
    f->may_end_void = true;
  wfp__map_free(&c.scope);
}

/* ---- captures at reference sites (after every body is checked) ---- */

/* The variable of g that holds u's value, where u is a variable of one of
** g's enclosing functions (or of g itself). at_site: the value is needed at
** a point of g (block, seq: see site); otherwise at g's function level (its
** params, top-level lets, captures). Adds the captures this needs; sets
** *changed when it does, *late when u is g's own but declared too late. */
static wfp_var *provide(K *k, wfp_func *g, bool at_site, int block, int seq,
                        wfp_var *u, bool *changed, bool *late) {
  wfp_var *ou = origin(u);
  int from = k->nchain;
  wfp_var *v = NULL;
  /* up from g to the function that has the value: each one on the way
  ** captures it from the one above (a loop: nesting may be deep) */
  for (wfp_func *cur = g;;) {
    /* its own variable: params hold for the whole function; a let only
    ** where it is visible (at a site), or, at function level, a top-level
    ** let */
    if (ou->owner == cur) {
      if (ou->is_param || (at_site && visible_at(k, ou, block, seq)) ||
          (!at_site && wfp__map_get(&fx_of(k, cur)->level, ou->name) == ou))
        v = ou;
      else
        *late = true;
      break;
    }
    v = wfp__map_get(&fx_of(k, cur)->cap_of, ou);
    if (v || !cur->parent || !chain_push(k, cur))
      break;
    /* a lambda captures at its site, a named function at its parent's
    ** function level */
    if (cur->is_lambda) {
      int ls = fx_of(k, cur)->lambda_site;
      if (ls < 0)
        break;
      at_site = true;
      block = k->sites[ls].block;
      seq = k->sites[ls].seq;
    } else {
      at_site = false;
    }
    cur = cur->parent;
  }
  if (v && k->nchain > from)
    *changed = true;
  return capture_down(k, from, v);
}

/* Puts the sites that target f on the work list (f has a new capture). */
static void queue_sites_of(K *k, const wfp_func *f) {
  const fnx *x = fx_of(k, f);
  for (int i = 0; i < x->nsites; i++) {
    int s = k->by_target[x->first_site + i];
    if (k->sites[s].queued)
      continue;
    if (!push(k, (void **)&k->work, &k->nwork, &k->work_cap, sizeof(int)))
      return;
    k->sites[s].queued = true;
    k->work[k->nwork++] = s;
  }
}

/*
** Every site of a nested function passes the values of its captures, which
** the site's function may have to capture in turn (and so its own sites):
** a work list of sites, each taking the captures its target gained since
** it was last done, until nothing changes.
*/
static void resolve_sites(K *k) {
  wfp_program *p = k->p;
  /* the sites of each function, grouped (counting sort by target) */
  k->by_target = malloc(sizeof *k->by_target * ((size_t)k->nsites + 1));
  if (!k->by_target) {
    p->oom = true;
    return;
  }
  for (int i = 0; i < k->nsites; i++)
    fx_of(k, k->sites[i].target)->nsites++;
  int at = 0;
  for (int i = 0; i < p->nfuncs; i++) {
    k->fx[i].first_site = at;
    at += k->fx[i].nsites;
    k->fx[i].nsites = 0;
  }
  for (int i = 0; i < k->nsites; i++) {
    fnx *x = fx_of(k, k->sites[i].target);
    k->by_target[x->first_site + x->nsites++] = i;
  }
  k->resolving = true;
  for (int i = k->nsites - 1; i >= 0; i--) {
    if (!push(k, (void **)&k->work, &k->nwork, &k->work_cap, sizeof(int)))
      break;
    k->sites[i].queued = true;
    k->work[k->nwork++] = i;
  }
  while (k->nwork > 0 && !p->oom) {
    site *s = &k->sites[k->work[--k->nwork]];
    s->queued = false;
    wfp_func *f = s->target;
    /* lambdas capture at their own site (check_expr); explicit captures
    ** (lifted IR read back) bind the leading params */
    if (s->e->op == WFP_OP_LAMBDA || s->reported || s->e->nbound)
      continue;
    for (; s->done < f->ncaps; s->done++) {
      bool late = false, changed = false;
      wfp_var *v = provide(k, s->in, true, s->block, s->seq, f->caps[s->done]->outer,
                           &changed, &late);
      if (!v) {
        s->reported = true;
        if (p->oom)
          break;
        wfp_var *o = origin(f->caps[s->done]);
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
  k->resolving = false;
  /* record the values each site passes */
  for (int i = 0; i < k->nsites && !p->oom; i++) {
    site *s = &k->sites[i];
    wfp_func *f = s->target;
    if (s->reported || s->e->nbound)
      continue;
    s->e->capargs = wfp__ir_alloc(p, sizeof *s->e->capargs * (size_t)(f->ncaps + 1));
    if (!s->e->capargs)
      return;
    s->e->ncapargs = f->ncaps;
    for (int j = 0; j < f->ncaps; j++) {
      if (s->e->op == WFP_OP_LAMBDA) {
        s->e->capargs[j] = f->caps[j]->outer;
      } else {
        bool ch = false, late = false;
        s->e->capargs[j] = provide(k, s->in, true, s->block, s->seq,
                                   f->caps[j]->outer, &ch, &late);
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
    wfp_func *g = wfp__map_get(&k->by_name, f->name);
    if (g && g != f)
      wfp__diag(p, WFP_EPROGRAM, wfp__ir_text(p, "%s.name", f->path),
                "duplicate function name '%s' (first at %s)", f->name, g->path);
  }
  /* parents */
  for (int i = 0; i < p->nfuncs; i++) {
    wfp_func *f = p->funcs[i];
    if (f->is_lambda || !f->parent_name)
      continue;
    bool by_id;
    wfp_func *par = find_func(k, f->parent_name, &by_id);
    const char *pp = wfp__ir_text(p, "%s.parent", f->path);
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
  /* cycles among parents: walk up from each function not yet seen; a walk
  ** that meets itself found a cycle, reported at its first function in the
  ** program's order, whose parent is dropped (that breaks the cycle) */
  int *state = calloc((size_t)p->nfuncs + 1, sizeof *state); /* 0 new, 1 walk, 2 done */
  bool *cut = calloc((size_t)p->nfuncs + 1, sizeof *cut);
  if (!state || !cut) {
    free(state);
    free(cut);
    p->oom = true;
    return;
  }
  for (int i = 0; i < p->nfuncs; i++) {
    wfp_func *a = p->funcs[i];
    while (a && state[a->index] == 0) {
      state[a->index] = 1;
      a = a->parent;
    }
    if (a && state[a->index] == 1) {
      /* a is on this walk: the cycle is a, a->parent, ... back to a */
      wfp_func *first = a;
      for (wfp_func *b = a->parent; b != a; b = b->parent)
        if (b->index < first->index)
          first = b;
      cut[first->index] = true;
    }
    for (wfp_func *b = p->funcs[i]; b && state[b->index] == 1; b = b->parent)
      state[b->index] = 2;
  }
  for (int i = 0; i < p->nfuncs; i++) {
    wfp_func *f = p->funcs[i];
    if (!cut[i])
      continue;
    wfp__diag(p, WFP_EPROGRAM, wfp__ir_text(p, "%s.parent", f->path),
              "nesting cycle: '%s' is nested in itself through its parents",
              f->name);
    f->parent = NULL;
    f->parsed_ok = false;
  }
  free(state);
  free(cut);
}

/* The nesting tree (parents, lambdas included; no cycles left): each
** function's depth, and its pre/post order number for ancestor tests. */
static void nesting_tree(K *k) {
  wfp_program *p = k->p;
  int n = p->nfuncs;
  int *first = malloc(sizeof *first * ((size_t)n + 1));
  int *next = malloc(sizeof *next * ((size_t)n + 1));
  int *stack = malloc(sizeof *stack * ((size_t)n + 1));
  if (!first || !next || !stack) {
    p->oom = true;
    goto out;
  }
  for (int i = 0; i < n; i++)
    first[i] = -1;
  /* children lists, in reverse so that they come out in program order */
  for (int i = n - 1; i >= 0; i--) {
    wfp_func *f = p->funcs[i];
    next[i] = -1;
    if (f->parent) {
      next[i] = first[f->parent->index];
      first[f->parent->index] = i;
    }
  }
  int clock = 0;
  for (int r = 0; r < n; r++) {
    if (p->funcs[r]->parent)
      continue;
    /* iterative depth-first walk: the stack holds the path from r */
    int sp = 0;
    stack[sp++] = r;
    k->fx[r].depth = 0;
    k->fx[r].enter = clock++;
    while (sp > 0) {
      int top = stack[sp - 1];
      int c = first[top];
      if (c >= 0) {
        first[top] = next[c]; /* consumed */
        k->fx[c].depth = k->fx[top].depth + 1;
        k->fx[c].enter = clock++;
        stack[sp++] = c;
      } else {
        k->fx[top].leave = clock++;
        sp--;
      }
    }
  }
  for (int i = 0; i < n; i++)
    p->funcs[i]->depth = k->fx[i].depth;
out:
  free(first);
  free(next);
  free(stack);
}

static void check_resources(K *k) {
  wfp_program *p = k->p;
  wfp__map res;
  wfp__map_init(&res, false);
  for (int j = 0; j < p->nresources; j++)
    map_put(k, &res, p->resources[j]->name, p->resources[j], false);
  for (int i = 0; i < p->nfuncs; i++) {
    wfp_func *f = p->funcs[i];
    if (!f->resource || f->is_lambda)
      continue;
    wfp_resource *placeholder = f->resource;
    wfp_resource *r = placeholder->name ? wfp__map_get(&res, placeholder->name) : NULL;
    if (!r) {
      wfp__diag(p, WFP_EPROGRAM, placeholder->path, "unknown resource '%s'",
                placeholder->name ? placeholder->name : "?");
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
  wfp__map_free(&res);
  for (int j = 0; j < p->nresources; j++) {
    wfp_resource *r = p->resources[j];
    for (int m = 0; m < r->nmethods; m++) {
      wfp_func *f = wfp__map_get(&k->by_name, r->methods[m]);
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

/*
** The types nothing determines get their defaults (docs/ir.md, "Types"):
** a value that only 'len' constrains is a str; any other value an i64; a fn
** value that nothing calls keeps an open signature. Run-time checks catch
** a value of another type where a default was assumed (a call_ref whose
** function's signature differs traps).
*/
static void default_types(K *k) {
  wfp_program *p = k->p;
  for (int i = 0; i < k->ndefers; i++) {
    defer *d = &k->defers[i];
    wfp_type *t = d->kind == D_LEN && d->t ? rep(d->t) : NULL;
    if (t && t->kind == WFP_T_VAR && !t->want_fn)
      unify(t, wfp__type_new(p, WFP_T_STR));
  }
  wfp_type *i64 = wfp__type_new(p, WFP_T_I64);
  wfp_type *open_fn = wfp__type_new(p, WFP_T_FN);
  if (open_fn->kind == WFP_T_FN) {
    open_fn->want_fn = true; /* printed "fn": nothing fixes its signature */
    open_fn->ret = i64;
  }
  /* p->tvars grows no more: every type below exists already */
  for (size_t i = 0; i < p->ntvars; i++) {
    wfp_type *t = rep(p->tvars[i]);
    if (t->kind == WFP_T_VAR)
      t->link = t->want_fn ? open_fn : i64;
  }
}

static void run_defers(K *k) {
  wfp_program *p = k->p;
  /* functions without a value return give no value */
  for (int i = 0; i < p->nfuncs; i++) {
    wfp_func *f = p->funcs[i];
    wfp_type *r = rep(f->ret);
    if (r->kind == WFP_T_VAR && !has_value_return(&f->body))
      unify(r, wfp__type_new(p, WFP_T_VOID));
  }
  default_types(k);
  for (int i = 0; i < k->ndefers; i++) {
    defer *d = &k->defers[i];
    wfp_type *t = d->t ? rep(d->t) : NULL;
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
      }
      if (d->e->op == WFP_OP_CALL && d->e->target && d->e->target->may_end_void &&
          t->kind != WFP_T_VOID)
        wfp__diag(p, WFP_EPROGRAM, d->e->path,
                  "'%s' does not return a value on every path (%s needs one)",
                  d->e->target->name, d->what);
      break;
    case D_EQ:
      if (t->kind != WFP_T_I64 && t->kind != WFP_T_STR)
        wfp__diag(p, WFP_EPROGRAM, d->e->path,
                  "type mismatch: %s compares i64 or str values, got %s",
                  d->what, tstr(k, t));
      break;
    case D_PRINTABLE:
      if (t->kind == WFP_T_FN)
        wfp__diag(p, WFP_EPROGRAM, d->e->path,
                  "type mismatch: %s must be i64, str or json, not a function",
                  d->what);
      break;
    case D_LEN:
      if (t->kind != WFP_T_STR && t->kind != WFP_T_JSON && t->kind != WFP_T_VOID)
        wfp__diag(p, WFP_EPROGRAM, d->e->path,
                  "type mismatch: 'len' needs str or json, got %s", tstr(k, t));
      break;
    case D_FNVALUE:
    case D_EACH: {
      wfp_func *f = d->target;
      wfp_type *r = rep(f->ret);
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
}

/* ---- limits ----
** Sizes beyond which a program is refused: each stage after the front end
** (codegen, wasm2c, the C compiler, the guest runtime) compiles or runs a
** program within them in time and memory near-linear in its size, and
** none of them fails at run time on what the checker let through.
** docs/ir.md, "Limits", gives the reasons. */
#define LIMIT_FUNCTIONS 10000 /* functions of a program, lambdas included */
#define LIMIT_PARAMS 1000     /* parameters of a function, captures included */
#define LIMIT_NESTING 256     /* functions nested in functions */
#define LIMIT_LOOPS 256       /* while loops nested in one function */
#define LIMIT_PARTS 10000     /* parts of one concat */
#define LIMIT_HOLES 10000     /* holes of one json template */
#define LIMIT_SITES 2000      /* effects, calls and loops of one function */

static int tpl_holes(const wfp_jtpl *t) {
  if (!t)
    return 0;
  if (t->kind == WFP_J_HOLE)
    return 1;
  int n = 0;
  for (int i = 0; (t->kind == WFP_J_OBJ || t->kind == WFP_J_ARR) && i < t->n; i++)
    n += tpl_holes(t->items[i]);
  return n;
}

/* sites: the places where the function being walked can suspend (each a
** resume point of the generated code) */
static void limits_expr(wfp_program *p, const wfp_expr *e, int *sites);

static void limits_tpl(wfp_program *p, const wfp_jtpl *t, int *sites) {
  if (!t)
    return;
  if (t->kind == WFP_J_HOLE)
    limits_expr(p, t->hole, sites);
  for (int i = 0; (t->kind == WFP_J_OBJ || t->kind == WFP_J_ARR) && i < t->n; i++)
    limits_tpl(p, t->items[i], sites);
}

static void limits_expr(wfp_program *p, const wfp_expr *e, int *sites) {
  if (!e)
    return;
  if (wfp__expr_op_is_effect(e->op) || e->op == WFP_OP_CALL || e->op == WFP_OP_CALL_REF)
    ++*sites;
  if (e->op == WFP_OP_CONCAT && e->nargs > LIMIT_PARTS)
    wfp__diag(p, WFP_EPROGRAM, e->path,
              "a concat of %d parts: at most %d are allowed", e->nargs, LIMIT_PARTS);
  if (e->op == WFP_OP_JSON) {
    int h = tpl_holes(e->tpl);
    if (h > LIMIT_HOLES)
      wfp__diag(p, WFP_EPROGRAM, e->path,
                "a json template of %d holes: at most %d are allowed", h, LIMIT_HOLES);
  }
  limits_expr(p, e->a, sites);
  limits_expr(p, e->b, sites);
  limits_expr(p, e->each, sites);
  for (int i = 0; i < e->nargs; i++)
    limits_expr(p, e->args[i], sites);
  for (int i = 0; i < e->nbound; i++)
    limits_expr(p, e->bound[i], sites);
  limits_tpl(p, e->tpl, sites);
  /* a lambda's body is a function of its own */
}

static void limits_block(wfp_program *p, const wfp_block *b, int loops, int *sites) {
  for (int i = 0; i < b->n; i++) {
    const wfp_stmt *s = b->v[i];
    int l = loops;
    if (s->op == WFP_ST_WHILE) {
      ++*sites; /* an iteration may yield (fuel) */
      if (++l == LIMIT_LOOPS + 1)
        wfp__diag(p, WFP_EPROGRAM, s->path,
                  "loops nested more than %d deep in one function", LIMIT_LOOPS);
    }
    limits_expr(p, s->e, sites);
    limits_block(p, &s->then_, l, sites);
    limits_block(p, &s->else_, l, sites);
    limits_block(p, &s->body, l, sites);
  }
}

/* Reports every limit the program exceeds (after the check: captures
** count as parameters). */
static void check_limits(wfp_program *p) {
  if (p->nfuncs > LIMIT_FUNCTIONS)
    wfp__diag(p, WFP_EPROGRAM, "$.functions",
              "the program has %d functions (lambdas included): at most %d are "
              "allowed", p->nfuncs, LIMIT_FUNCTIONS);
  for (int i = 0; i < p->nfuncs && !wfp__diag_full(p); i++) {
    wfp_func *f = p->funcs[i];
    const char *what = f->is_lambda ? "this lambda" : f->name ? f->name : "?";
    const char *q = f->is_lambda ? "" : "'";
    if (f->nparams + f->ncaps > LIMIT_PARAMS && !f->ncaps)
      wfp__diag(p, WFP_EPROGRAM, wfp__arena_printf(&p->arena, "%s.params", f->path),
                "%s%s%s has %d parameters: at most %d are allowed", q, what, q,
                f->nparams, LIMIT_PARAMS);
    else if (f->nparams + f->ncaps > LIMIT_PARAMS)
      wfp__diag(p, WFP_EPROGRAM, f->path,
                "%s%s%s has %d parameters with its %d captured variables: at "
                "most %d are allowed",
                q, what, q, f->nparams + f->ncaps, f->ncaps, LIMIT_PARAMS);
    /* reported at the first function past the limit only: the functions
    ** nested in it are past it too, and would repeat it once each */
    int d = 0;
    for (const wfp_func *a = f->parent; a && d <= LIMIT_NESTING + 1; a = a->parent)
      d++;
    if (d == LIMIT_NESTING + 1)
      wfp__diag(p, WFP_EPROGRAM, f->path,
                "%s%s%s is nested in more than %d functions: at most %d levels "
                "of nesting are allowed",
                q, what, q, LIMIT_NESTING, LIMIT_NESTING);
    int sites = 0;
    limits_block(p, &f->body, 0, &sites);
    if (sites > LIMIT_SITES)
      wfp__diag(p, WFP_EPROGRAM, f->path,
                "%s%s%s has %d effects, calls and loops (the places where it can "
                "suspend): at most %d are allowed in one function",
                q, what, q, sites, LIMIT_SITES);
  }
}

int wfp__ir_check(wfp_program *p) {
  K kk;
  memset(&kk, 0, sizeof kk);
  K *k = &kk;
  k->p = p;
  wfp__map_init(&k->by_name, false);
  wfp__map_init(&k->by_id, false);
  k->fx = calloc((size_t)p->nfuncs + 1, sizeof *k->fx);
  if (!k->fx) {
    p->oom = true;
    return WFP_ENOMEM;
  }
  new_block(k, 0); /* block 0: none */
  for (int i = 0; i < p->nfuncs; i++) {
    wfp_func *f = p->funcs[i];
    fnx *x = &k->fx[i];
    /* the index of the lifted program, which has this order already */
    f->index = i;
    wfp__map_init(&x->level, false);
    wfp__map_init(&x->caps, false);
    wfp__map_init(&x->cap_of, true);
    x->lambda_site = -1;
    f->ret = wfp__type_new(p, WFP_T_VAR);
    if (!f->is_lambda && f->name)
      map_put(k, &k->by_name, f->name, f, false);
    if (!f->is_lambda && f->id[0])
      map_put(k, &k->by_id, f->id, f, false);
  }
  check_names(k);
  check_resources(k);
  nesting_tree(k);
  /* parents are checked before the functions nested in them (lambdas are
  ** checked inside the function that holds them): by depth */
  int *order = malloc(sizeof *order * ((size_t)p->nfuncs + 1));
  int *count = calloc((size_t)p->nfuncs + 2, sizeof *count);
  if (order && count && !p->oom) {
    for (int i = 0; i < p->nfuncs; i++)
      if (!p->funcs[i]->is_lambda)
        count[p->funcs[i]->depth + 1]++;
    for (int d = 1; d <= p->nfuncs; d++)
      count[d] += count[d - 1];
    int n = 0;
    for (int i = 0; i < p->nfuncs; i++)
      if (!p->funcs[i]->is_lambda) {
        order[count[p->funcs[i]->depth]++] = i;
        n++;
      }
    for (int i = 0; i < n && !p->oom; i++)
      check_func_body(k, p->funcs[order[i]], NULL);
  } else {
    p->oom = true;
  }
  free(order);
  free(count);
  if (!p->oom)
    resolve_sites(k);
  if (!p->oom)
    run_defers(k);
  if (!p->oom)
    check_limits(p);
  /* the entry */
  p->entry = wfp__map_get(&k->by_name, p->entry_name);
  if (p->entry && p->entry->parent)
    wfp__diag(p, WFP_EPROGRAM, p->entry->path,
              "the entry function '%s' cannot be nested in another function",
              p->entry->name);
  else if (!p->entry && p->entry_explicit)
    wfp__diag(p, WFP_EPROGRAM, "$.functions",
              "entry function '%s' not found", p->entry_name);
  for (int i = 0; i < p->nfuncs; i++) {
    wfp__map_free(&k->fx[i].level);
    wfp__map_free(&k->fx[i].caps);
    wfp__map_free(&k->fx[i].cap_of);
  }
  free(k->fx);
  wfp__map_free(&k->by_name);
  wfp__map_free(&k->by_id);
  free(k->bparent);
  free(k->work);
  free(k->by_target);
  free(k->chain);
  free(k->defers);
  free(k->sites);
  if (p->oom)
    return WFP_ENOMEM;
  return p->ndiags ? WFP_EPROGRAM : WFP_OK;
}
