/*
** expr.c: IR expressions and statements lowered into the blocks of the
** function being built (blocks.c): arithmetic, strings and JSON through
** the guest runtime's functions, calls, closures, effects, loops.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <binaryen-c.h>

#include "codegen_int.h"

/* ---- expressions ---- */

static BinaryenExpressionRef lower(fb *F, const wfp_expr *e);

bool wfp__cg_trivial(BinaryenExpressionRef x) {
  BinaryenExpressionId id = BinaryenExpressionGetId(x);
  return id == BinaryenConstId() || id == BinaryenLocalGetId();
}

/* Lowers es[0..n) left to right into out[]. When a later operand emits
** statements, an earlier non-trivial operand is evaluated first into a
** temporary, so that evaluation order is the IR's. (Which operands have a
** later one that emits statements is found in one pass from the end: a
** concat of many parts stays linear.) */
static void lower_list(fb *F, wfp_expr *const *es, int n,
                       BinaryenExpressionRef *out) {
  int last = -1; /* the last operand that emits statements */
  for (int j = n - 1; j >= 0 && last < 0; j--)
    if (wfp__cg_e_stmts(F->g, es[j]))
      last = j;
  for (int i = 0; i < n; i++) {
    out[i] = lower(F, es[i]);
    if (i < last && out[i] && !wfp__cg_trivial(out[i])) {
      int l = wfp__cg_new_local(F, wfp__cg_wasm_type(es[i]->type), wfp__cg_vkind(es[i]->type));
      wfp__cg_emit(F, BinaryenLocalSet(F->g->m, (BinaryenIndex)l, out[i]));
      out[i] = wfp__cg_lget(F, l);
    }
  }
}

static BinaryenExpressionRef to_bool(cg *g, BinaryenExpressionRef i32) {
  return BinaryenUnary(g->m, BinaryenExtendUInt32(), i32);
}

static BinaryenExpressionRef nonzero(cg *g, BinaryenExpressionRef i64) {
  return BinaryenBinary(g->m, BinaryenNeInt64(), i64, wfp__cg_c64(g, 0));
}

/* Appends the value v of IR type t to builder sbl, as JSON (json=true) or
** as concat text. */
static BinaryenExpressionRef sb_add(fb *F, int sbl, BinaryenExpressionRef v,
                                    wfp_type *t, bool json) {
  cg *g = F->g;
  int f;
  switch (wfp__cg_kind_of(t)) {
  case WFP_T_I64: f = WFP_RT_SB_I64; break;
  case WFP_T_STR: f = json ? WFP_RT_SB_JSTR : WFP_RT_SB_STR; break;
  default: f = WFP_RT_SB_JSON; break;
  }
  return wfp__cg_call2(g, f, wfp__cg_lget(F, sbl), v, NONE);
}

typedef struct frag {
  wfp__buf text; /* literal text before the hole */
  const wfp_expr *hole;
  int level; /* the template's arrays and objects around the hole */
} frag;

typedef struct frags {
  frag *v;
  int n, cap;
  bool oom;
} frags;

static frag *frag_cur(frags *fs) {
  if (fs->n == 0 || fs->v[fs->n - 1].hole) {
    if (fs->n == fs->cap) {
      int cap = fs->cap ? fs->cap * 2 : 8;
      frag *nv = realloc(fs->v, sizeof *nv * (size_t)cap);
      if (!nv) {
        fs->oom = true;
        return NULL;
      }
      fs->v = nv;
      fs->cap = cap;
    }
    memset(&fs->v[fs->n], 0, sizeof fs->v[fs->n]);
    fs->n++;
  }
  return &fs->v[fs->n - 1];
}

static void frag_text(frags *fs, const char *s, size_t n) {
  frag *f = frag_cur(fs);
  if (f) {
    wfp__buf_add(&f->text, s, n);
    fs->oom |= f->text.oom;
  }
}

/* Flattens a template into literal text and holes, in order. */
static void flatten(frags *fs, const wfp_jtpl *t, int level) {
  switch (t->kind) {
  case WFP_J_LIT:
    frag_text(fs, t->text ? t->text : "null", strlen(t->text ? t->text : "null"));
    break;
  case WFP_J_HOLE: {
    frag *f = frag_cur(fs);
    if (f) {
      f->hole = t->hole;
      f->level = level;
    }
    break;
  }
  case WFP_J_OBJ:
  case WFP_J_ARR:
    frag_text(fs, t->kind == WFP_J_OBJ ? "{" : "[", 1);
    for (int i = 0; i < t->n; i++) {
      if (i)
        frag_text(fs, ",", 1);
      if (t->kind == WFP_J_OBJ) {
        wfp__buf kb;
        wfp__buf_init(&kb);
        wfp__buf_add_jstr(&kb, t->keys[i], t->keylens[i]);
        wfp__buf_addc(&kb, ':');
        fs->oom |= kb.oom;
        frag_text(fs, kb.data ? kb.data : "", kb.len);
        wfp__buf_free(&kb);
      }
      flatten(fs, t->items[i], level + 1);
    }
    frag_text(fs, t->kind == WFP_J_OBJ ? "}" : "]", 1);
    break;
  }
}

static BinaryenExpressionRef lower_json(fb *F, const wfp_expr *e) {
  cg *g = F->g;
  frags fs = {0};
  flatten(&fs, e->tpl, 0);
  if (fs.oom) {
    wfp__cg_fail(g, WFP_ENOMEM, "", "out of memory");
    for (int i = 0; i < fs.n; i++)
      wfp__buf_free(&fs.v[i].text);
    free(fs.v);
    return wfp__cg_c32(g, 0);
  }
  int nh = 0;
  for (int i = 0; i < fs.n; i++)
    nh += fs.v[i].hole != NULL;
  BinaryenExpressionRef r;
  if (nh == 0) {
    r = wfp__cg_c32(g, (int32_t)wfp__cg_str_obj(g, fs.n ? fs.v[0].text.data : "null",
                                fs.n ? fs.v[0].text.len : 4));
  } else {
    wfp_expr **holes = calloc((size_t)nh, sizeof *holes);
    BinaryenExpressionRef *hv = calloc((size_t)nh, sizeof *hv);
    BinaryenExpressionRef *code = calloc((size_t)(3 * fs.n + 3), sizeof *code);
    if (!holes || !hv || !code) {
      free(holes);
      free(hv);
      free(code);
      wfp__cg_fail(g, WFP_ENOMEM, "", "out of memory");
      r = wfp__cg_c32(g, 0);
    } else {
      int k = 0;
      for (int i = 0; i < fs.n; i++)
        if (fs.v[i].hole)
          holes[k++] = (wfp_expr *)fs.v[i].hole;
      lower_list(F, holes, nh, hv);
      int sbl = wfp__cg_new_local(F, I32, VK_SCRATCH);
      int nc = 0;
      code[nc++] = BinaryenLocalSet(g->m, (BinaryenIndex)sbl, wfp__cg_call0(g, WFP_RT_SB_NEW, I32));
      k = 0;
      for (int i = 0; i < fs.n; i++) {
        if (fs.v[i].text.len) {
          uint32_t a = wfp__cg_str_obj(g, fs.v[i].text.data, fs.v[i].text.len);
          BinaryenExpressionRef args[3] = {wfp__cg_lget(F, sbl), wfp__cg_c32(g, (int32_t)(a + 4)),
                                           wfp__cg_c32(g, (int32_t)fs.v[i].text.len)};
          code[nc++] = wfp__cg_call(g, WFP_RT_SB_RAW, args, 3, NONE);
        }
        if (fs.v[i].hole && fs.v[i].level > 0 && wfp__cg_kind_of(holes[k]->type) == WFP_T_JSON) {
          /* a json value inside the template's nesting: checked for depth */
          BinaryenExpressionRef args[3] = {wfp__cg_lget(F, sbl), hv[k], wfp__cg_c32(g, fs.v[i].level)};
          code[nc++] = wfp__cg_call(g, WFP_RT_SB_JSON_AT, args, 3, NONE);
          k++;
        } else if (fs.v[i].hole) {
          code[nc++] = sb_add(F, sbl, hv[k], holes[k]->type, true);
          k++;
        }
      }
      code[nc++] = wfp__cg_call1(g, WFP_RT_SB_END, wfp__cg_lget(F, sbl), I32);
      r = BinaryenBlock(g->m, NULL, code, (BinaryenIndex)nc, I32);
      if (wfp__cg_tpl_nests_json(e->tpl, 0))
        r = wfp__cg_checked(F, r, I32, VK_JSON);
      free(holes);
      free(hv);
      free(code);
    }
  }
  for (int i = 0; i < fs.n; i++)
    wfp__buf_free(&fs.v[i].text);
  free(fs.v);
  return r;
}

static BinaryenExpressionRef lower_concat(fb *F, const wfp_expr *e) {
  cg *g = F->g;
  if (e->nargs == 0)
    return wfp__cg_c32(g, (int32_t)wfp__cg_str_obj(g, "", 0));
  BinaryenExpressionRef *v = calloc((size_t)e->nargs, sizeof *v);
  BinaryenExpressionRef *code = calloc((size_t)e->nargs + 2, sizeof *code);
  if (!v || !code) {
    free(v);
    free(code);
    wfp__cg_fail(g, WFP_ENOMEM, "", "out of memory");
    return wfp__cg_c32(g, 0);
  }
  lower_list(F, e->args, e->nargs, v);
  int sbl = wfp__cg_new_local(F, I32, VK_SCRATCH);
  int nc = 0;
  code[nc++] = BinaryenLocalSet(g->m, (BinaryenIndex)sbl, wfp__cg_call0(g, WFP_RT_SB_NEW, I32));
  for (int i = 0; i < e->nargs; i++)
    code[nc++] = sb_add(F, sbl, v[i], e->args[i]->type, false);
  code[nc++] = wfp__cg_call1(g, WFP_RT_SB_END, wfp__cg_lget(F, sbl), I32);
  BinaryenExpressionRef r = BinaryenBlock(g->m, NULL, code, (BinaryenIndex)nc, I32);
  free(v);
  free(code);
  return r;
}

/* A value as JSON text (the payload of msg_send, for one). */
static BinaryenExpressionRef as_json_text(fb *F, BinaryenExpressionRef v,
                                          wfp_type *t) {
  cg *g = F->g;
  if (wfp__cg_kind_of(t) == WFP_T_JSON)
    return v;
  int sbl = wfp__cg_new_local(F, I32, VK_SCRATCH);
  BinaryenExpressionRef code[3] = {
      BinaryenLocalSet(g->m, (BinaryenIndex)sbl, wfp__cg_call0(g, WFP_RT_SB_NEW, I32)),
      sb_add(F, sbl, v, t, true), wfp__cg_call1(g, WFP_RT_SB_END, wfp__cg_lget(F, sbl), I32)};
  return BinaryenBlock(g->m, NULL, code, 3, I32);
}

static BinaryenExpressionRef lower_logic(fb *F, const wfp_expr *e) {
  cg *g = F->g;
  bool is_and = e->op == WFP_OP_AND;
  BinaryenExpressionRef a = lower(F, e->a);
  if (!wfp__cg_e_stmts(g, e->b)) {
    /* the right operand runs only when it decides, as a plain if */
    BinaryenExpressionRef b = to_bool(g, nonzero(g, lower(F, e->b)));
    return is_and ? BinaryenIf(g->m, nonzero(g, a), b, wfp__cg_c64(g, 0))
                  : BinaryenIf(g->m, nonzero(g, a), wfp__cg_c64(g, 1), b);
  }
  int t = wfp__cg_new_local(F, I64, VK_I64);
  wfp__cg_emit(F, BinaryenLocalSet(g->m, (BinaryenIndex)t, to_bool(g, nonzero(g, a))));
  int rhs = wfp__cg_new_block(F), join = wfp__cg_new_block(F);
  BinaryenExpressionRef c = nonzero(g, wfp__cg_lget(F, t));
  if (is_and)
    wfp__cg_end_if(F, c, rhs, join);
  else
    wfp__cg_end_if(F, c, join, rhs);
  F->cur = rhs;
  BinaryenExpressionRef b = lower(F, e->b);
  wfp__cg_emit(F, BinaryenLocalSet(g->m, (BinaryenIndex)t, to_bool(g, nonzero(g, b))));
  wfp__cg_end_goto(F, join);
  F->cur = join;
  return wfp__cg_lget(F, t);
}

static BinaryenExpressionRef lower_call(fb *F, const wfp_expr *e) {
  cg *g = F->g;
  const wfp_func *t = e->target;
  fninfo *ti = &g->fi[t->index];
  int n = e->ncapargs + e->nargs;
  BinaryenExpressionRef *args = calloc((size_t)n + 1, sizeof *args);
  if (!args) {
    wfp__cg_fail(g, WFP_ENOMEM, "", "out of memory");
    return wfp__cg_zero_of(g, ti->ret);
  }
  for (int i = 0; i < e->ncapargs; i++)
    args[i] = wfp__cg_lget(F, F->var_local[e->capargs[i]->index]);
  lower_list(F, e->args, e->nargs, args + e->ncapargs);
  BinaryenType rt_ = ti->ret;
  BinaryenExpressionRef c = BinaryenCall(g->m, ti->name, args, (BinaryenIndex)n, rt_);
  BinaryenExpressionRef r = NULL;
  if (ti->may_suspend) {
    /* the resume path calls again: the callee restores its own frame */
    BinaryenExpressionRef *zeros = calloc((size_t)n + 1, sizeof *zeros);
    if (!zeros) {
      free(args);
      wfp__cg_fail(g, WFP_ENOMEM, "", "out of memory");
      return wfp__cg_zero_of(g, rt_);
    }
    for (int i = 0; i < n; i++) {
      BinaryenType at = BinaryenExpressionGetType(args[i]);
      zeros[i] = wfp__cg_zero_of(g, at == I64 ? I64 : I32);
    }
    BinaryenExpressionRef rcall = BinaryenCall(g->m, ti->name, zeros, (BinaryenIndex)n, rt_);
    free(zeros);
    r = wfp__cg_call_point(F, c, rcall, rt_, wfp__cg_vkind(t->ret), (uint32_t)t->index);
  } else if (ti->may_unwind) {
    r = wfp__cg_checked(F, c, rt_, wfp__cg_vkind(t->ret));
  } else {
    r = c;
    if (rt_ == NONE) {
      wfp__cg_emit(F, c);
      r = NULL;
    }
  }
  free(args);
  return r;
}

/* A closure of e->target: its function, then the values of its captures
** (the site's variables, or the explicit captures of lifted IR). */
static BinaryenExpressionRef lower_closure(fb *F, const wfp_expr *e) {
  cg *g = F->g;
  BinaryenModuleRef m = g->m;
  const wfp_func *t = e->target;
  fninfo *ti = &g->fi[t->index];
  int k = e->op == WFP_OP_FN && e->nbound ? e->nbound : e->ncapargs;
  if (k != ti->k) {
    wfp__cg_fail(g, WFP_EUNSUPPORTED, e->path,
            "a fn value binding %d of the %d parameters of '%s' is not "
            "supported by this version of the code generator",
            k, t->nparams, t->name);
    return wfp__cg_c32(g, 0);
  }
  BinaryenExpressionRef *v = calloc((size_t)k + 1, sizeof *v);
  BinaryenExpressionRef *code = calloc((size_t)k + 3, sizeof *code);
  if (!v || !code) {
    free(v);
    free(code);
    wfp__cg_fail(g, WFP_ENOMEM, "", "out of memory");
    return wfp__cg_c32(g, 0);
  }
  if (e->op == WFP_OP_FN && e->nbound)
    lower_list(F, e->bound, e->nbound, v);
  else
    for (int j = 0; j < k; j++)
      v[j] = wfp__cg_lget(F, F->var_local[e->capargs[j]->index]);
  int cl = wfp__cg_new_local(F, I32, VK_SCRATCH);
  int n = 0;
  code[n++] = BinaryenLocalSet(
      m, (BinaryenIndex)cl,
      wfp__cg_call2(g, WFP_RT_CLOSURE_NEW, wfp__cg_c32(g, t->index), wfp__cg_c32(g, k), I32));
  for (int j = 0; j < k; j++) {
    BinaryenType vt = BinaryenExpressionGetType(v[j]);
    code[n++] = BinaryenStore(m, vt == I64 ? 8 : 4, (uint32_t)(8 + 8 * j), 4,
                              wfp__cg_lget(F, cl), v[j], vt == I64 ? I64 : I32);
  }
  code[n++] = wfp__cg_lget(F, cl);
  BinaryenExpressionRef r = BinaryenBlock(m, NULL, code, (BinaryenIndex)n, I32);
  free(v);
  free(code);
  return r;
}

/*
** Before a call_ref calls, the runtime checks the function value against
** the signature this call was compiled for (rt_call_ref_check): a value
** from an input, or one whose types the program left to their defaults
** (docs/ir.md, "Types"), may have another, which is a trap with a message
** then, never a call of the wrong type. The arguments are evaluated first.
*/
static void call_ref_check(fb *F, const wfp_expr *e, BinaryenExpressionRef clo,
                           BinaryenExpressionRef *v) {
  cg *g = F->g;
  BinaryenModuleRef m = g->m;
  for (int i = 1; i <= e->nargs; i++)
    if (!wfp__cg_trivial(v[i])) {
      int l = wfp__cg_new_local(F, wfp__cg_wasm_type(e->args[i - 1]->type), wfp__cg_vkind(e->args[i - 1]->type));
      wfp__cg_emit(F, BinaryenLocalSet(m, (BinaryenIndex)l, v[i]));
      v[i] = wfp__cg_lget(F, l);
    }
  /* each function's result type, once per module */
  if (!g->ret_kinds) {
    uint32_t *rk = calloc((size_t)g->nf + 1, sizeof *rk);
    if (!rk) {
      wfp__cg_fail(g, WFP_ENOMEM, "", "out of memory");
      return;
    }
    for (int i = 0; i < g->nf; i++)
      rk[i] = (uint32_t)wfp__cg_vkind(g->p->funcs[i]->ret);
    g->ret_kinds = wfp__cg_add_data(g, rk, (uint32_t)g->nf * 4, 4);
    free(rk);
  }
  /* this call's signature: n, the argument types, the result type */
  uint32_t *sig = calloc((size_t)e->nargs + 2, sizeof *sig);
  if (!sig) {
    wfp__cg_fail(g, WFP_ENOMEM, "", "out of memory");
    return;
  }
  sig[0] = (uint32_t)e->nargs;
  for (int i = 0; i < e->nargs; i++)
    sig[1 + i] = (uint32_t)wfp__cg_vkind(e->args[i]->type);
  sig[1 + e->nargs] = (uint32_t)wfp__cg_vkind(e->type);
  uint32_t addr = wfp__cg_add_data(g, sig, (uint32_t)(e->nargs + 2) * 4, 4);
  free(sig);
  BinaryenExpressionRef a[3] = {BinaryenExpressionCopy(clo, m), wfp__cg_c32(g, (int32_t)addr),
                                wfp__cg_c32(g, (int32_t)g->ret_kinds)};
  wfp__cg_checked(F, wfp__cg_call(g, WFP_RT_CALL_REF_CHECK, a, 3, NONE), NONE, 0);
}

/* call_ref: an indirect call of the closure's wrapper (the table slot is
** the function's index), which unpacks the captures. A fn value may run
** anything, so the site is a resume point: on resume it calls the function
** of the next frame again. */
static BinaryenExpressionRef lower_call_ref(fb *F, const wfp_expr *e) {
  cg *g = F->g;
  BinaryenModuleRef m = g->m;
  int n = e->nargs + 1;
  wfp_expr **ops = calloc((size_t)n + 1, sizeof *ops);
  BinaryenExpressionRef *v = calloc((size_t)n + 1, sizeof *v);
  BinaryenExpressionRef *zeros = calloc((size_t)n + 1, sizeof *zeros);
  BinaryenType *pt = calloc((size_t)n + 1, sizeof *pt);
  if (!ops || !v || !zeros || !pt) {
    free(ops), free(v), free(zeros), free(pt);
    wfp__cg_fail(g, WFP_ENOMEM, "", "out of memory");
    return wfp__cg_zero_of(g, wfp__cg_wasm_type(e->type));
  }
  ops[0] = e->a;
  for (int i = 0; i < e->nargs; i++)
    ops[i + 1] = e->args[i];
  lower_list(F, ops, n, v);
  /* the closure is read twice (its function, then as the argument) */
  BinaryenExpressionRef clo;
  if (wfp__cg_trivial(v[0])) {
    clo = BinaryenExpressionCopy(v[0], m);
  } else {
    int cl = wfp__cg_new_local(F, I32, VK_FN);
    wfp__cg_emit(F, BinaryenLocalSet(m, (BinaryenIndex)cl, v[0]));
    v[0] = wfp__cg_lget(F, cl);
    clo = wfp__cg_lget(F, cl);
  }
  for (int i = 0; i < n; i++) {
    pt[i] = i == 0 ? I32 : wfp__cg_wasm_type(e->args[i - 1]->type);
    zeros[i] = wfp__cg_zero_of(g, pt[i]);
  }
  call_ref_check(F, e, clo, v);
  BinaryenType params = BinaryenTypeCreate(pt, (BinaryenIndex)n);
  BinaryenType rt_ = wfp__cg_wasm_type(e->type);
  BinaryenExpressionRef target = BinaryenLoad(m, 4, false, 0, 4, I32, clo);
  BinaryenExpressionRef c =
      BinaryenCallIndirect(m, "wfp$fns", target, v, (BinaryenIndex)n, params, rt_);
  BinaryenExpressionRef rcall = BinaryenCallIndirect(
      m, "wfp$fns", wfp__cg_call0(g, WFP_RT_FR_PEEK_FN, I32), zeros, (BinaryenIndex)n, params, rt_);
  BinaryenExpressionRef r = wfp__cg_call_point(F, c, rcall, rt_, wfp__cg_vkind(e->type), POINT_DYNAMIC);
  free(ops), free(v), free(zeros), free(pt);
  return r;
}

/* db_query: the parameters as one JSON array text, the each function as
** its closure's JSON form (what the host runs per row), or 0 for none. */
static BinaryenExpressionRef lower_db_query(fb *F, const wfp_expr *e) {
  cg *g = F->g;
  BinaryenModuleRef m = g->m;
  int n = e->nargs + (e->each ? 1 : 0);
  wfp_expr **ops = calloc((size_t)n + 1, sizeof *ops);
  BinaryenExpressionRef *v = calloc((size_t)n + 1, sizeof *v);
  BinaryenExpressionRef *code = calloc((size_t)e->nargs * 2 + 4, sizeof *code);
  if (!ops || !v || !code) {
    free(ops), free(v), free(code);
    wfp__cg_fail(g, WFP_ENOMEM, "", "out of memory");
    return wfp__cg_c32(g, 0);
  }
  for (int i = 0; i < e->nargs; i++)
    ops[i] = e->args[i];
  if (e->each)
    ops[e->nargs] = e->each;
  lower_list(F, ops, n, v);
  int sbl = wfp__cg_new_local(F, I32, VK_SCRATCH);
  int nc = 0;
  code[nc++] = BinaryenLocalSet(m, (BinaryenIndex)sbl, wfp__cg_call0(g, WFP_RT_SB_NEW, I32));
  for (int i = 0; i < e->nargs; i++) {
    const char *sep = i ? "," : "[";
    uint32_t a = wfp__cg_str_obj(g, sep, 1);
    BinaryenExpressionRef args[3] = {wfp__cg_lget(F, sbl), wfp__cg_c32(g, (int32_t)(a + 4)), wfp__cg_c32(g, 1)};
    code[nc++] = wfp__cg_call(g, WFP_RT_SB_RAW, args, 3, NONE);
    code[nc++] = sb_add(F, sbl, v[i], e->args[i]->type, true);
  }
  uint32_t close = e->nargs ? wfp__cg_str_obj(g, "]", 1) : wfp__cg_str_obj(g, "[]", 2);
  BinaryenExpressionRef cargs[3] = {wfp__cg_lget(F, sbl), wfp__cg_c32(g, (int32_t)(close + 4)),
                                    wfp__cg_c32(g, e->nargs ? 1 : 2)};
  code[nc++] = wfp__cg_call(g, WFP_RT_SB_RAW, cargs, 3, NONE);
  code[nc++] = wfp__cg_call1(g, WFP_RT_SB_END, wfp__cg_lget(F, sbl), I32);
  BinaryenExpressionRef params = BinaryenBlock(m, NULL, code, (BinaryenIndex)nc, I32);
  BinaryenExpressionRef each =
      e->each ? wfp__cg_call1(g, WFP_RT_CLOSURE_JSON, v[e->nargs], I32) : wfp__cg_c32(g, 0);
  BinaryenExpressionRef sql = wfp__cg_c32(g, (int32_t)wfp__cg_str_obj(g, e->str, e->slen));
  BinaryenExpressionRef eargs[3] = {sql, params, each};
  free(ops), free(v), free(code);
  return wfp__cg_suspend_effect(F, wfp__cg_call(g, WFP_RT_EFF_DB, eargs, 3, NONE), WFP_RT_RES_ROWS, I32,
                        VK_JSON);
}

static BinaryenExpressionRef lower(fb *F, const wfp_expr *e) {
  cg *g = F->g;
  BinaryenModuleRef m = g->m;
  if (g->rc)
    return wfp__cg_zero_of(g, wfp__cg_wasm_type(e->type));
  switch (e->op) {
  case WFP_OP_LIT_I64:
    return wfp__cg_c64(g, e->ival);
  case WFP_OP_LIT_STR:
  case WFP_OP_LIT_JSON:
    return wfp__cg_c32(g, (int32_t)wfp__cg_str_obj(g, e->str, e->slen));
  case WFP_OP_VAR:
    return wfp__cg_lget(F, F->var_local[e->var->index]);
  case WFP_OP_ADD: case WFP_OP_SUB: case WFP_OP_MUL: case WFP_OP_DIV:
  case WFP_OP_REM: case WFP_OP_BAND: case WFP_OP_BOR: case WFP_OP_BXOR:
  case WFP_OP_SHL: case WFP_OP_SHR: case WFP_OP_LT: case WFP_OP_LE:
  case WFP_OP_GT: case WFP_OP_GE: case WFP_OP_EQ: case WFP_OP_NE: {
    wfp_expr *ops[2] = {e->a, e->b};
    BinaryenExpressionRef v[2];
    lower_list(F, ops, 2, v);
    bool str = (e->op == WFP_OP_EQ || e->op == WFP_OP_NE) &&
               wfp__cg_kind_of(e->a->type) == WFP_T_STR;
    if (str) {
      BinaryenExpressionRef eq = wfp__cg_call2(g, WFP_RT_STR_EQ, v[0], v[1], I32);
      if (e->op == WFP_OP_NE)
        eq = BinaryenUnary(m, BinaryenEqZInt32(), eq);
      return to_bool(g, eq);
    }
    BinaryenOp op;
    bool cmp = false;
    switch (e->op) {
    case WFP_OP_ADD: op = BinaryenAddInt64(); break;
    case WFP_OP_SUB: op = BinaryenSubInt64(); break;
    case WFP_OP_MUL: op = BinaryenMulInt64(); break;
    /* Wasm traps on x / 0, INT64_MIN / -1 and x % 0, as the IR does;
    ** INT64_MIN % -1 is 0 in both */
    case WFP_OP_DIV: op = BinaryenDivSInt64(); break;
    case WFP_OP_REM: op = BinaryenRemSInt64(); break;
    case WFP_OP_BAND: op = BinaryenAndInt64(); break;
    case WFP_OP_BOR: op = BinaryenOrInt64(); break;
    case WFP_OP_BXOR: op = BinaryenXorInt64(); break;
    case WFP_OP_SHL: op = BinaryenShlInt64(); break;
    case WFP_OP_SHR: op = BinaryenShrSInt64(); break;
    case WFP_OP_LT: op = BinaryenLtSInt64(); cmp = true; break;
    case WFP_OP_LE: op = BinaryenLeSInt64(); cmp = true; break;
    case WFP_OP_GT: op = BinaryenGtSInt64(); cmp = true; break;
    case WFP_OP_GE: op = BinaryenGeSInt64(); cmp = true; break;
    case WFP_OP_EQ: op = BinaryenEqInt64(); cmp = true; break;
    default: op = BinaryenNeInt64(); cmp = true; break;
    }
    BinaryenExpressionRef r = BinaryenBinary(m, op, v[0], v[1]);
    return cmp ? to_bool(g, r) : r;
  }
  case WFP_OP_NEG:
    return BinaryenBinary(m, BinaryenSubInt64(), wfp__cg_c64(g, 0), lower(F, e->a));
  case WFP_OP_NOT:
    return to_bool(g, BinaryenUnary(m, BinaryenEqZInt64(), lower(F, e->a)));
  case WFP_OP_AND:
  case WFP_OP_OR:
    return lower_logic(F, e);
  case WFP_OP_CONCAT:
    return lower_concat(F, e);
  case WFP_OP_LEN: {
    BinaryenExpressionRef a = lower(F, e->a);
    if (wfp__cg_kind_of(e->a->type) == WFP_T_STR)
      return BinaryenUnary(m, BinaryenExtendUInt32(),
                           BinaryenLoad(m, 4, false, 0, 4, I32, a));
    return wfp__cg_checked(F, wfp__cg_call1(g, WFP_RT_JSON_LEN, a, I64), I64, VK_I64);
  }
  case WFP_OP_JSON:
    return lower_json(F, e);
  case WFP_OP_INPUT:
    return wfp__cg_checked(F, wfp__cg_call0(g, WFP_RT_INPUT, I32), I32, VK_JSON);
  case WFP_OP_GET_I64:
  case WFP_OP_GET_STR:
  case WFP_OP_GET_JSON: {
    BinaryenExpressionRef a = lower(F, e->a);
    BinaryenExpressionRef path = wfp__cg_c32(g, (int32_t)wfp__cg_path_obj(g, e));
    int f = e->op == WFP_OP_GET_I64   ? WFP_RT_GET_I64
                    : e->op == WFP_OP_GET_STR ? WFP_RT_GET_STR
                                             : WFP_RT_GET_JSON;
    BinaryenType t = e->op == WFP_OP_GET_I64 ? I64 : I32;
    return wfp__cg_checked(F, wfp__cg_call2(g, f, a, path, t), t, wfp__cg_vkind(e->type));
  }
  case WFP_OP_CALL:
    return lower_call(F, e);
  case WFP_OP_CTX_GET_I64: {
    BinaryenExpressionRef key = wfp__cg_c32(g, (int32_t)wfp__cg_str_obj(g, e->str, e->slen));
    return wfp__cg_suspend_effect(F, wfp__cg_call1(g, WFP_RT_EFF_CTX_GET, key, NONE), WFP_RT_RES_I64,
                          I64, VK_I64);
  }
  case WFP_OP_CTX_SET_I64: {
    BinaryenExpressionRef v = lower(F, e->a);
    BinaryenExpressionRef key = wfp__cg_c32(g, (int32_t)wfp__cg_str_obj(g, e->str, e->slen));
    return wfp__cg_suspend_effect(F, wfp__cg_call2(g, WFP_RT_EFF_CTX_SET, key, v, NONE),
                          WFP_RT_RES_NONE, NONE, 0);
  }
  case WFP_OP_MSG_SEND: {
    BinaryenExpressionRef v = as_json_text(F, lower(F, e->a), e->a->type);
    BinaryenExpressionRef topic = wfp__cg_c32(g, (int32_t)wfp__cg_str_obj(g, e->str, e->slen));
    return wfp__cg_suspend_effect(F, wfp__cg_call2(g, WFP_RT_EFF_MSG, topic, v, NONE),
                          WFP_RT_RES_NONE, NONE, 0);
  }
  case WFP_OP_SLEEP_MS: {
    BinaryenExpressionRef v = lower(F, e->a);
    return wfp__cg_suspend_effect(F, wfp__cg_call1(g, WFP_RT_EFF_SLEEP, v, NONE), WFP_RT_RES_NONE,
                          NONE, 0);
  }
  case WFP_OP_SELF_GET: {
    BinaryenExpressionRef prop = wfp__cg_c32(g, (int32_t)wfp__cg_str_obj(g, e->str, e->slen));
    wfp_tkind k = wfp__cg_kind_of(e->type);
    int reader = k == WFP_T_I64   ? WFP_RT_RES_VALUE_I64
                         : k == WFP_T_STR ? WFP_RT_RES_VALUE_STR
                                          : WFP_RT_RES_VALUE_JSON;
    BinaryenType t = k == WFP_T_I64 ? I64 : I32;
    return wfp__cg_suspend_effect(F, wfp__cg_call1(g, WFP_RT_EFF_SELF_GET, prop, NONE), reader, t,
                          wfp__cg_vkind(e->type));
  }
  case WFP_OP_SELF_SET: {
    BinaryenExpressionRef v = as_json_text(F, lower(F, e->a), e->a->type);
    BinaryenExpressionRef prop = wfp__cg_c32(g, (int32_t)wfp__cg_str_obj(g, e->str, e->slen));
    return wfp__cg_suspend_effect(F, wfp__cg_call2(g, WFP_RT_EFF_SELF_SET, prop, v, NONE),
                          WFP_RT_RES_NONE, NONE, 0);
  }
  case WFP_OP_FN:
  case WFP_OP_LAMBDA:
    return lower_closure(F, e);
  case WFP_OP_CALL_REF:
    return lower_call_ref(F, e);
  case WFP_OP_DB_QUERY:
    return lower_db_query(F, e);
  case WFP_OP__COUNT:
    wfp__cg_fail(g, WFP_EUNSUPPORTED, e->path,
            "'%s' is not supported by this version of the code generator",
            wfp__expr_op_name(e->op));
    return wfp__cg_zero_of(g, wfp__cg_wasm_type(e->type));
  }
  return NULL;
}

/* ---- statements ---- */


void wfp__cg_do_return(fb *F, BinaryenExpressionRef v) {
  cg *g = F->g;
  const wfp_func *f = F->f;
  BinaryenType rt_ = F->fi->ret;
  bool flag = rt_ != NONE && f->may_end_void;
  if (v && flag)
    wfp__cg_emit(F, BinaryenGlobalSet(g->m, G_NOVALUE, wfp__cg_c32(g, 0)));
  if (!v && flag)
    wfp__cg_emit(F, BinaryenGlobalSet(g->m, G_NOVALUE, wfp__cg_c32(g, 1)));
  if (v && rt_ == NONE) {
    wfp__cg_emit(F, BinaryenDrop(g->m, v));
    v = NULL;
  }
  wfp__cg_emit(F, wfp__cg_ret_with_fuel(F, v ? v : wfp__cg_zero_of(g, rt_)));
  int c = wfp__cg_cur_block(F);
  F->b[c].term = T_RET;
  F->cur = -1;
}

static BinaryenExpressionRef cond_of(fb *F, const wfp_expr *e) {
  return nonzero(F->g, lower(F, e));
}

static void lower_stmt(fb *F, const wfp_stmt *s) {
  cg *g = F->g;
  if (g->rc)
    return;
  switch (s->op) {
  case WFP_ST_LET:
  case WFP_ST_SET: {
    BinaryenExpressionRef v = lower(F, s->e);
    wfp__cg_emit(F, BinaryenLocalSet(g->m, (BinaryenIndex)F->var_local[s->var->index], v));
    break;
  }
  case WFP_ST_EXPR: {
    BinaryenExpressionRef v = lower(F, s->e);
    if (v)
      wfp__cg_emit(F, BinaryenExpressionGetType(v) == NONE ? v : BinaryenDrop(g->m, v));
    break;
  }
  case WFP_ST_RETURN:
    wfp__cg_do_return(F, s->e ? lower(F, s->e) : NULL);
    break;
  case WFP_ST_IF: {
    BinaryenExpressionRef c = cond_of(F, s->e);
    int t = wfp__cg_new_block(F), e = wfp__cg_new_block(F), j = wfp__cg_new_block(F);
    wfp__cg_end_if(F, c, t, s->else_.n ? e : j);
    F->cur = t;
    wfp__cg_lower_block(F, &s->then_);
    wfp__cg_end_goto(F, j);
    if (s->else_.n) {
      F->cur = e;
      wfp__cg_lower_block(F, &s->else_);
      wfp__cg_end_goto(F, j);
    }
    F->cur = j;
    break;
  }
  case WFP_ST_WHILE: {
    if (F->nloops == 256) {
      wfp__cg_fail(g, WFP_EUNSUPPORTED, s->path, "loops nest more than 256 deep");
      return;
    }
    /* h: the condition; latch: one unit of fuel per iteration (continue
    ** comes here too), then back to h */
    int h = wfp__cg_new_block(F), body = wfp__cg_new_block(F), x = wfp__cg_new_block(F), latch = wfp__cg_new_block(F);
    wfp__cg_end_goto(F, h);
    F->cur = h;
    BinaryenExpressionRef c = cond_of(F, s->e);
    wfp__cg_end_if(F, c, body, x);
    F->loop_head[F->nloops] = latch;
    F->loop_exit[F->nloops] = x;
    F->nloops++;
    F->cur = body;
    wfp__cg_lower_block(F, &s->body);
    wfp__cg_end_goto(F, latch);
    F->nloops--;
    F->cur = latch;
    wfp__cg_fuel_check(F, h);
    F->cur = x;
    break;
  }
  case WFP_ST_BREAK:
    wfp__cg_end_goto(F, F->loop_exit[F->nloops - 1]);
    break;
  case WFP_ST_CONTINUE:
    wfp__cg_end_goto(F, F->loop_head[F->nloops - 1]);
    break;
  case WFP_ST_TRAP: {
    BinaryenExpressionRef m = wfp__cg_c32(g, (int32_t)wfp__cg_str_obj(g, s->msg, s->msglen));
    wfp__cg_emit(F, wfp__cg_call1(g, WFP_RT_TRAP, m, NONE));
    wfp__cg_emit(F, wfp__cg_unwind_return(F));
    int c = wfp__cg_cur_block(F);
    F->b[c].term = T_RET;
    F->cur = -1;
    break;
  }
  case WFP_ST__COUNT:
    break;
  }
}

void wfp__cg_lower_block(fb *F, const wfp_block *b) {
  for (int i = 0; i < b->n && !F->g->rc; i++)
    lower_stmt(F, b->v[i]);
}
