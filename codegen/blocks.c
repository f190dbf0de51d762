/*
** blocks.c: the function builder: a control-flow graph of blocks, its
** locals, and the resume points (effects, calls that may suspend, fuel
** checks) with the fuel local. It lowers no IR (expr.c) and decides no
** saves (frames.c).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <binaryen-c.h>

#include "codegen_int.h"

/* The builders below give index 0 when out of memory (the arrays exist
** from the start, build_function): lowering goes on harmlessly, and the
** function is dropped (g->rc). */
int wfp__cg_new_local(fb *F, BinaryenType t, int kind) {
  if (F->nl == F->lcap) {
    int cap = F->lcap ? F->lcap * 2 : 32;
    BinaryenType *nt = realloc(F->lt, sizeof *nt * (size_t)cap);
    if (nt)
      F->lt = nt;
    int *nk = nt ? realloc(F->lk, sizeof *nk * (size_t)cap) : NULL;
    if (nk)
      F->lk = nk;
    if (!nt || !nk) {
      wfp__cg_fail(F->g, WFP_ENOMEM, "", "out of memory");
      return 0;
    }
    F->lcap = cap;
  }
  F->lt[F->nl] = t;
  F->lk[F->nl] = kind;
  return F->nl++;
}

int wfp__cg_new_block(fb *F) {
  if (F->nb == F->bcap) {
    int cap = F->bcap ? F->bcap * 2 : 32;
    blk *nb = realloc(F->b, sizeof *nb * (size_t)cap);
    if (!nb) {
      wfp__cg_fail(F->g, WFP_ENOMEM, "", "out of memory");
      return 0;
    }
    F->b = nb;
    F->bcap = cap;
  }
  memset(&F->b[F->nb], 0, sizeof F->b[F->nb]);
  F->b[F->nb].s0 = F->b[F->nb].s1 = -1;
  F->b[F->nb].point = -1;
  return F->nb++;
}

/* Appends code to the current block (a fresh, unreachable one after a
** return or break: the Relooper drops blocks nothing reaches). */
void wfp__cg_emit(fb *F, BinaryenExpressionRef e) {
  if (!e)
    return;
  if (F->cur < 0)
    F->cur = wfp__cg_new_block(F);
  blk *b = &F->b[F->cur];
  if (b->n == b->cap) {
    int cap = b->cap ? b->cap * 2 : 8;
    BinaryenExpressionRef *nc = realloc(b->code, sizeof *nc * (size_t)cap);
    if (!nc) {
      wfp__cg_fail(F->g, WFP_ENOMEM, "", "out of memory");
      return;
    }
    b->code = nc;
    b->cap = cap;
  }
  b->code[b->n++] = e;
}

int wfp__cg_cur_block(fb *F) {
  if (F->cur < 0)
    F->cur = wfp__cg_new_block(F);
  return F->cur;
}

void wfp__cg_end_goto(fb *F, int to) {
  int c = wfp__cg_cur_block(F);
  F->b[c].term = T_GOTO;
  F->b[c].s0 = to;
  F->cur = -1;
}


void wfp__cg_end_if(fb *F, BinaryenExpressionRef cond, int t, int e) {
  /* the Relooper treats a branch condition as free of effects: it drops
  ** it when both ways meet (an if with empty arms). A condition that can
  ** trap (a div by zero) must still run, so it runs first, as code. */
  if (!wfp__cg_trivial(cond)) {
    BinaryenType ty = BinaryenExpressionGetType(cond);
    int l = wfp__cg_new_local(F, ty, VK_SCRATCH); /* read at once, never saved */
    wfp__cg_emit(F, BinaryenLocalSet(F->g->m, (BinaryenIndex)l, cond));
    cond = BinaryenLocalGet(F->g->m, (BinaryenIndex)l, ty);
  }
  int c = wfp__cg_cur_block(F);
  F->b[c].term = T_IF;
  F->b[c].cond = cond;
  F->b[c].s0 = t;
  F->b[c].s1 = e;
  F->cur = -1;
}

BinaryenExpressionRef wfp__cg_lget(fb *F, int l) {
  return BinaryenLocalGet(F->g->m, (BinaryenIndex)l, F->lt[l]);
}

BinaryenExpressionRef wfp__cg_zero_of(cg *g, BinaryenType t) {
  if (t == I64)
    return wfp__cg_c64(g, 0);
  if (t == I32)
    return wfp__cg_c32(g, 0);
  return NULL;
}

/* The fuel local back to the global (before a return or a call that uses
** fuel), and the other way (at entry, after such a call); NULL when the
** function has no fuel local. */
static BinaryenExpressionRef fuel_store(fb *F) {
  if (F->fuel < 0)
    return NULL;
  return BinaryenGlobalSet(F->g->m, G_FUEL,
                           BinaryenLocalGet(F->g->m, (BinaryenIndex)F->fuel, I64));
}

BinaryenExpressionRef wfp__cg_fuel_load(fb *F) {
  if (F->fuel < 0)
    return NULL;
  return BinaryenLocalSet(F->g->m, (BinaryenIndex)F->fuel,
                          BinaryenGlobalGet(F->g->m, G_FUEL, I64));
}

/* A return of v (NULL: none), the fuel stored first. */
BinaryenExpressionRef wfp__cg_ret_with_fuel(fb *F, BinaryenExpressionRef v) {
  BinaryenExpressionRef r = BinaryenReturn(F->g->m, v);
  BinaryenExpressionRef st = fuel_store(F);
  if (!st)
    return r;
  BinaryenExpressionRef both[2] = {st, r};
  return BinaryenBlock(F->g->m, NULL, both, 2, NONE);
}

/* The return that unwinds (suspend or trap): the result does not matter. */
BinaryenExpressionRef wfp__cg_unwind_return(fb *F) {
  return wfp__cg_ret_with_fuel(F, wfp__cg_zero_of(F->g, F->fi->ret));
}

/* if (unwinding) return; : after a call that can trap but not suspend */
static BinaryenExpressionRef unwind_check(fb *F) {
  return BinaryenIf(F->g->m, wfp__cg_gget(F->g, G_UNWIND), wfp__cg_unwind_return(F), NULL);
}

/* A checked runtime call: result in a temporary, then the unwind check. */
BinaryenExpressionRef wfp__cg_checked(fb *F, BinaryenExpressionRef c,
                                      BinaryenType t, int kind) {
  if (t == NONE) {
    wfp__cg_emit(F, c);
    wfp__cg_emit(F, unwind_check(F));
    return NULL;
  }
  int l = wfp__cg_new_local(F, t, kind);
  wfp__cg_emit(F, BinaryenLocalSet(F->g->m, (BinaryenIndex)l, c));
  wfp__cg_emit(F, unwind_check(F));
  return wfp__cg_lget(F, l);
}

static int new_point(fb *F, int kind) {
  if (F->npts == F->pcap) {
    int cap = F->pcap ? F->pcap * 2 : 8;
    point *np = realloc(F->pts, sizeof *np * (size_t)cap);
    if (!np) {
      wfp__cg_fail(F->g, WFP_ENOMEM, "", "out of memory");
      return 0;
    }
    F->pts = np;
    F->pcap = cap;
  }
  memset(&F->pts[F->npts], 0, sizeof F->pts[F->npts]);
  F->pts[F->npts].kind = kind;
  F->pts[F->npts].result = -1;
  return F->npts++;
}

/* An effect: record it, suspend, and on resume read its result. */
BinaryenExpressionRef wfp__cg_suspend_effect(fb *F, BinaryenExpressionRef record,
                                             int reader, BinaryenType t,
                                             int kind) {
  cg *g = F->g;
  wfp__cg_emit(F, record);
  int k = new_point(F, P_EFFECT);
  int e = wfp__cg_cur_block(F);
  F->b[e].term = T_SUSPEND;
  F->b[e].point = k;
  int r = wfp__cg_new_block(F);
  F->pts[k].block = e;
  F->pts[k].resume = r;
  F->pts[k].cont = r;
  F->pts[k].callee = POINT_EFFECT;
  F->cur = r;
  wfp__cg_emit(F, wfp__cg_call0(g, WFP_RT_RESUME_DONE, NONE));
  return wfp__cg_checked(F, wfp__cg_call0(g, reader, t), t, kind);
}

/* One unit of fuel, then cont. When the step's fuel is spent, yield first
** (a resume point, like an effect's): the step that resumes consumes the
** unit, so a unit is counted once however the work is sliced into steps.
** The unit is taken first and given back when it was not there (a
** decrement and a sign test: what the loop pays). Ends the current block. */
void wfp__cg_fuel_check(fb *F, int cont) {
  cg *g = F->g;
  BinaryenModuleRef m = g->m;
  int y = wfp__cg_new_block(F);
  BinaryenIndex fl = (BinaryenIndex)F->fuel;
  BinaryenExpressionRef dec =
      BinaryenBinary(m, BinaryenSubInt64(), BinaryenLocalGet(m, fl, I64), wfp__cg_c64(g, 1));
  wfp__cg_end_if(F, BinaryenBinary(m, BinaryenLtSInt64(), BinaryenLocalTee(m, fl, dec, I64), wfp__cg_c64(g, 0)),
         y, cont);
  F->cur = y;
  wfp__cg_emit(F, BinaryenLocalSet(m, fl, wfp__cg_c64(g, 0)));
  wfp__cg_suspend_effect(F, wfp__cg_call0(g, WFP_RT_EFF_YIELD, NONE), WFP_RT_RES_NONE, NONE, 0);
  wfp__cg_emit(F, BinaryenLocalSet(
              m, fl, BinaryenBinary(m, BinaryenSubInt64(), BinaryenLocalGet(m, fl, I64), wfp__cg_c64(g, 1))));
  wfp__cg_end_goto(F, cont);
}


/* A call that may suspend: the call c, then a resume point. On a suspend
** signal the frame is saved and the caller unwinds; on resume it runs
** rcall, which calls the same callee again (with dummy arguments: the
** callee restores its own frame), and goes on after the call. callee is
** the function index the next frame must belong to (or POINT_DYNAMIC).
** Returns the result (NULL when none). */
BinaryenExpressionRef wfp__cg_call_point(fb *F, BinaryenExpressionRef c,
                                         BinaryenExpressionRef rcall, BinaryenType rt_,
                                         int vk, uint32_t callee) {
  BinaryenModuleRef m = F->g->m;
  int res = rt_ != NONE ? wfp__cg_new_local(F, rt_, vk) : -1;
  /* the callee uses fuel: the global holds it during the call */
  wfp__cg_emit(F, fuel_store(F));
  wfp__cg_emit(F, res >= 0 ? BinaryenLocalSet(m, (BinaryenIndex)res, c) : c);
  wfp__cg_emit(F, wfp__cg_fuel_load(F));
  int k = new_point(F, P_CALL);
  int chk = wfp__cg_new_block(F), rc = wfp__cg_new_block(F), cont = wfp__cg_new_block(F);
  wfp__cg_end_goto(F, chk);
  F->b[chk].term = T_CHECK;
  F->b[chk].point = k;
  F->b[chk].s0 = cont;
  F->cur = rc;
  wfp__cg_emit(F, res >= 0 ? BinaryenLocalSet(m, (BinaryenIndex)res, rcall) : rcall);
  wfp__cg_emit(F, wfp__cg_fuel_load(F));
  wfp__cg_end_goto(F, chk);
  F->pts[k].block = chk;
  F->pts[k].resume = rc;
  F->pts[k].cont = cont;
  F->pts[k].result = res;
  F->pts[k].callee = callee;
  F->cur = cont;
  return res >= 0 ? wfp__cg_lget(F, res) : NULL;
}
