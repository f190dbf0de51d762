/*
** analysis.c: what codegen knows before it lowers a function: which
** functions can suspend or unwind (effects, traps, loops and calls, which
** use fuel), and which expressions must run as statements. Reads the IR;
** builds no Wasm.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <binaryen-c.h>

#include "codegen_int.h"

/* ---- analysis: which functions can suspend or unwind ---- */

typedef struct walkctx {
  cg *g;
  fninfo *fi;
  const wfp_func *f;
} walkctx;

static void scan_expr(walkctx *w, const wfp_expr *e);

static void scan_block(walkctx *w, const wfp_block *b) {
  w->fi->size += b->n;
  for (int i = 0; i < b->n; i++) {
    const wfp_stmt *s = b->v[i];
    if (s->e)
      scan_expr(w, s->e);
    if (s->op == WFP_ST_TRAP)
      w->fi->direct_trap = true;
    if (s->op == WFP_ST_WHILE)
      w->fi->has_loop = true;
    scan_block(w, &s->then_);
    scan_block(w, &s->else_);
    scan_block(w, &s->body);
  }
}

static void scan_tpl(walkctx *w, const wfp_jtpl *t) {
  if (!t)
    return;
  w->fi->size++;
  if (t->kind == WFP_J_HOLE)
    scan_expr(w, t->hole);
  for (int i = 0; (t->kind == WFP_J_OBJ || t->kind == WFP_J_ARR) && i < t->n; i++)
    scan_tpl(w, t->items[i]);
}

static void scan_expr(walkctx *w, const wfp_expr *e) {
  if (!e)
    return;
  w->fi->size++;
  if (wfp__expr_op_is_effect(e->op))
    w->fi->direct_effect = true;
  switch (e->op) {
  case WFP_OP_GET_I64: case WFP_OP_GET_STR: case WFP_OP_GET_JSON:
  case WFP_OP_INPUT:
    w->fi->direct_trap = true;
    break;
  case WFP_OP_CALL:
    w->fi->has_call = true;
    break;
  case WFP_OP_CALL_REF:
    w->fi->has_call = true;
    w->fi->has_call_ref = true;
    break;
  case WFP_OP_FN:
  case WFP_OP_LAMBDA:
    if (e->target)
      w->g->fi[e->target->index].closable = true;
    break;
  case WFP_OP_LEN:
    if (e->a && wfp__cg_kind_of(e->a->type) == WFP_T_JSON)
      w->fi->direct_trap = true;
    break;
  case WFP_OP_JSON:
    if (wfp__cg_tpl_nests_json(e->tpl, 0))
      w->fi->direct_trap = true;
    break;
  default:
    break;
  }
  scan_expr(w, e->a);
  scan_expr(w, e->b);
  for (int i = 0; i < e->nargs; i++)
    scan_expr(w, e->args[i]);
  scan_expr(w, e->each);
  scan_tpl(w, e->tpl);
  /* lambdas are functions of their own */
}

static bool calls_where(const wfp_expr *e, const cg *g, bool suspend);

static bool block_calls_where(const wfp_block *b, const cg *g, bool suspend) {
  for (int i = 0; i < b->n; i++) {
    const wfp_stmt *s = b->v[i];
    if ((s->e && calls_where(s->e, g, suspend)) ||
        block_calls_where(&s->then_, g, suspend) ||
        block_calls_where(&s->else_, g, suspend) ||
        block_calls_where(&s->body, g, suspend))
      return true;
  }
  return false;
}

static bool tpl_calls_where(const wfp_jtpl *t, const cg *g, bool suspend) {
  if (!t)
    return false;
  if (t->kind == WFP_J_HOLE)
    return calls_where(t->hole, g, suspend);
  for (int i = 0; (t->kind == WFP_J_OBJ || t->kind == WFP_J_ARR) && i < t->n; i++)
    if (tpl_calls_where(t->items[i], g, suspend))
      return true;
  return false;
}

/* Does e wfp__cg_call (directly) a function that may suspend (or unwind)? */
static bool calls_where(const wfp_expr *e, const cg *g, bool suspend) {
  if (!e)
    return false;
  if (e->op == WFP_OP_CALL && e->target) {
    const fninfo *t = &g->fi[e->target->index];
    if (suspend ? t->may_suspend : t->may_unwind)
      return true;
  }
  if (calls_where(e->a, g, suspend) || calls_where(e->b, g, suspend) ||
      calls_where(e->each, g, suspend) || tpl_calls_where(e->tpl, g, suspend))
    return true;
  for (int i = 0; i < e->nargs; i++)
    if (calls_where(e->args[i], g, suspend))
      return true;
  return false;
}

void wfp__cg_analyze(cg *g) {
  const wfp_program *p = g->p;
  for (int i = 0; i < p->nfuncs; i++) {
    walkctx w = {g, &g->fi[i], p->funcs[i]};
    scan_block(&w, &p->funcs[i]->body);
    /* fuel: a loop or a call can yield, so it suspends like an effect */
    g->fi[i].may_suspend =
        g->fi[i].direct_effect || g->fi[i].has_loop || g->fi[i].has_call;
    g->fi[i].may_unwind = g->fi[i].may_suspend || g->fi[i].direct_trap;
  }
  for (bool changed = true; changed;) {
    changed = false;
    for (int i = 0; i < p->nfuncs; i++) {
      fninfo *fi = &g->fi[i];
      const wfp_block *body = &p->funcs[i]->body;
      if (!fi->may_suspend && block_calls_where(body, g, true)) {
        fi->may_suspend = fi->may_unwind = changed = true;
      }
      if (!fi->may_unwind && block_calls_where(body, g, false)) {
        fi->may_unwind = changed = true;
      }
    }
  }
}

/* ---- what must run as statements ---- */


static bool tpl_stmts(const cg *g, const wfp_jtpl *t) {
  if (!t)
    return false;
  if (t->kind == WFP_J_HOLE)
    return wfp__cg_e_stmts(g, t->hole);
  for (int i = 0; (t->kind == WFP_J_OBJ || t->kind == WFP_J_ARR) && i < t->n; i++)
    if (tpl_stmts(g, t->items[i]))
      return true;
  return false;
}

/* True when lowering e emits statements (suspension points, unwind checks):
** operands to its left must then be evaluated first, into temporaries. */
bool wfp__cg_e_stmts(const cg *g, const wfp_expr *e) {
  if (!e)
    return false;
  if (wfp__expr_op_is_effect(e->op))
    return true;
  switch (e->op) {
  case WFP_OP_CALL_REF:
    return true;
  case WFP_OP_GET_I64: case WFP_OP_GET_STR: case WFP_OP_GET_JSON:
  case WFP_OP_INPUT:
    return true;
  case WFP_OP_LEN:
    if (e->a && wfp__cg_kind_of(e->a->type) == WFP_T_JSON)
      return true;
    break;
  case WFP_OP_JSON:
    if (wfp__cg_tpl_nests_json(e->tpl, 0))
      return true;
    break;
  case WFP_OP_CALL:
    if (e->target && g->fi[e->target->index].may_unwind)
      return true;
    break;
  default:
    break;
  }
  if (wfp__cg_e_stmts(g, e->a) || wfp__cg_e_stmts(g, e->b) || tpl_stmts(g, e->tpl))
    return true;
  for (int i = 0; i < e->nargs; i++)
    if (wfp__cg_e_stmts(g, e->args[i]))
      return true;
  return false;
}
