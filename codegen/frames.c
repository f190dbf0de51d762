/*
** frames.c: liveness of locals over a function's blocks, and the saves and
** restores at each resume point: exactly the locals live there, i64 values
** first (the frame layout of docs/state.md). It builds no control flow.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <binaryen-c.h>

#include "codegen_int.h"

/* ---- liveness ---- */

/* Records the locals a block reads before writing (use) and writes (def),
** in execution order. An if arm starts from the defs before it and sees its
** own writes (a temporary set and read inside one arm is not a use); after
** the if, only what both arms wrote is certain. Sets are kept sparse: a
** mark per local (dm: defined on this path, um: already a use) and the
** stack of defs on this path, undone as arms end. */
typedef struct ud {
  uint8_t *dm, *um;
  int *defs, ndefs, dcap; /* locals defined on this path, in order */
  int *uses, nuses, ucap;
  uint32_t *tm, stamp; /* membership of one arm's defs, by stamp */
  bool unknown;        /* an expression the walk does not know, or no memory */
  bool oom;            /* no memory (unknown too: the walk stops) */
} ud;

static bool ud_push(ud *u, int **v, int *n, int *cap, int x) {
  if (*n == *cap) {
    int c = *cap ? *cap * 2 : 16;
    int *nv = realloc(*v, sizeof *nv * (size_t)c);
    if (!nv) {
      u->unknown = u->oom = true;
      return false;
    }
    *v = nv;
    *cap = c;
  }
  (*v)[(*n)++] = x;
  return true;
}

static void usedef(ud *u, BinaryenExpressionRef e) {
  if (!e || u->unknown)
    return;
  BinaryenExpressionId id = BinaryenExpressionGetId(e);
  if (id == BinaryenLocalGetId()) {
    int i = (int)BinaryenLocalGetGetIndex(e);
    if (!u->dm[i] && !u->um[i] && ud_push(u, &u->uses, &u->nuses, &u->ucap, i))
      u->um[i] = 1;
  } else if (id == BinaryenLocalSetId()) {
    usedef(u, BinaryenLocalSetGetValue(e));
    int i = (int)BinaryenLocalSetGetIndex(e);
    if (!u->dm[i] && ud_push(u, &u->defs, &u->ndefs, &u->dcap, i))
      u->dm[i] = 1;
  } else if (id == BinaryenBlockId()) {
    for (BinaryenIndex i = 0; i < BinaryenBlockGetNumChildren(e); i++)
      usedef(u, BinaryenBlockGetChildAt(e, i));
  } else if (id == BinaryenIfId()) {
    usedef(u, BinaryenIfGetCondition(e));
    int base = u->ndefs;
    usedef(u, BinaryenIfGetIfTrue(e));
    /* take the then arm's defs off the path */
    int nt = u->ndefs - base;
    int *t = nt ? malloc(sizeof *t * (size_t)nt) : NULL;
    if (nt && !t) {
      u->unknown = u->oom = true;
      return;
    }
    for (int k = 0; k < nt; k++) {
      t[k] = u->defs[base + k];
      u->dm[t[k]] = 0;
    }
    u->ndefs = base;
    BinaryenExpressionRef no = BinaryenIfGetIfFalse(e);
    if (no) {
      usedef(u, no);
      /* keep what both arms defined */
      u->stamp++;
      for (int k = 0; k < nt; k++)
        u->tm[t[k]] = u->stamp;
      int w = base;
      for (int k = base; k < u->ndefs; k++) {
        int l = u->defs[k];
        if (u->tm[l] == u->stamp)
          u->defs[w++] = l;
        else
          u->dm[l] = 0;
      }
      u->ndefs = w;
    }
    free(t);
  } else if (id == BinaryenCallId()) {
    for (BinaryenIndex i = 0; i < BinaryenCallGetNumOperands(e); i++)
      usedef(u, BinaryenCallGetOperandAt(e, i));
  } else if (id == BinaryenCallIndirectId()) {
    /* the operands are evaluated first, then the table index */
    for (BinaryenIndex i = 0; i < BinaryenCallIndirectGetNumOperands(e); i++)
      usedef(u, BinaryenCallIndirectGetOperandAt(e, i));
    usedef(u, BinaryenCallIndirectGetTarget(e));
  } else if (id == BinaryenUnaryId()) {
    usedef(u, BinaryenUnaryGetValue(e));
  } else if (id == BinaryenBinaryId()) {
    usedef(u, BinaryenBinaryGetLeft(e));
    usedef(u, BinaryenBinaryGetRight(e));
  } else if (id == BinaryenLoadId()) {
    usedef(u, BinaryenLoadGetPtr(e));
  } else if (id == BinaryenStoreId()) {
    usedef(u, BinaryenStoreGetPtr(e));
    usedef(u, BinaryenStoreGetValue(e));
  } else if (id == BinaryenSelectId()) {
    usedef(u, BinaryenSelectGetIfTrue(e));
    usedef(u, BinaryenSelectGetIfFalse(e));
    usedef(u, BinaryenSelectGetCondition(e));
  } else if (id == BinaryenDropId()) {
    usedef(u, BinaryenDropGetValue(e));
  } else if (id == BinaryenReturnId()) {
    usedef(u, BinaryenReturnGetValue(e));
  } else if (id == BinaryenGlobalSetId()) {
    usedef(u, BinaryenGlobalSetGetValue(e));
  } else if (id != BinaryenConstId() && id != BinaryenGlobalGetId() &&
             id != BinaryenNopId() && id != BinaryenUnreachableId()) {
    /* an expression this walk does not know would hide its reads: a
    ** value live across a suspension would not be saved */
    u->unknown = true;
  }
}

static int cmp_int(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}

/* A sorted copy of v[0..n) (NULL when n is 0); false when out of memory. */
static bool sorted_copy(const int *v, int n, int **out) {
  *out = NULL;
  if (!n)
    return true;
  *out = malloc(sizeof **out * (size_t)n);
  if (!*out)
    return false;
  memcpy(*out, v, sizeof **out * (size_t)n);
  qsort(*out, (size_t)n, sizeof **out, cmp_int);
  return true;
}

/* Live-in sets of every block, by backward dataflow until nothing
** changes: in = use + (out - def), out = the successors' ins. The sets are
** sorted lists: their total size is what the saves write anyway. */
int wfp__cg_liveness(fb *F) {
  int rc = WFP_OK;
  ud u;
  memset(&u, 0, sizeof u);
  int nl = F->nl ? F->nl : 1;
  u.dm = calloc((size_t)nl, 1);
  u.um = calloc((size_t)nl, 1);
  u.tm = calloc((size_t)nl, sizeof *u.tm);
  int *scratch = NULL, scap = 0;
  if (!u.dm || !u.um || !u.tm) {
    rc = WFP_ENOMEM;
    goto out;
  }
  for (int i = 0; i < F->nb && !u.unknown; i++) {
    blk *b = &F->b[i];
    u.ndefs = u.nuses = 0;
    for (int k = 0; k < b->n; k++)
      usedef(&u, b->code[k]);
    if (b->term == T_IF)
      usedef(&u, b->cond);
    if (u.unknown)
      break;
    for (int k = 0; k < u.ndefs; k++)
      u.dm[u.defs[k]] = 0;
    for (int k = 0; k < u.nuses; k++)
      u.um[u.uses[k]] = 0;
    if (!sorted_copy(u.defs, u.ndefs, &b->def) || !sorted_copy(u.uses, u.nuses, &b->use)) {
      rc = WFP_ENOMEM;
      goto out;
    }
    b->ndef = u.ndefs;
    b->nuse = u.nuses;
  }
  if (u.oom) {
    rc = WFP_ENOMEM;
    goto out;
  }
  if (u.unknown) {
    wfp__cg_fail(F->g, WFP_EINTERNAL, F->f->path,
            "internal error: an expression the liveness analysis does not know");
    rc = WFP_EINTERNAL;
    goto out;
  }
  for (bool changed = true; changed;) {
    changed = false;
    for (int i = F->nb - 1; i >= 0; i--) {
      blk *b = &F->b[i];
      int succ[2] = {-1, -1};
      /* a suspension continues, after the resume, where its point resumes:
      ** what is live there is live here (and saved) */
      if (b->term == T_SUSPEND)
        succ[0] = F->pts[b->point].resume;
      else if (b->term == T_GOTO || b->term == T_CHECK)
        succ[0] = b->s0;
      else if (b->term == T_IF) {
        succ[0] = b->s0;
        succ[1] = b->s1;
      }
      /* in = use + (out - def), merged in order */
      const blk *s0 = succ[0] >= 0 ? &F->b[succ[0]] : NULL;
      const blk *s1 = succ[1] >= 0 && succ[1] != succ[0] ? &F->b[succ[1]] : NULL;
      int most = b->nuse + (s0 ? s0->nin : 0) + (s1 ? s1->nin : 0);
      if (most > scap) {
        int c = most * 2;
        int *ns = realloc(scratch, sizeof *ns * (size_t)c);
        if (!ns) {
          rc = WFP_ENOMEM;
          goto out;
        }
        scratch = ns;
        scap = c;
      }
      int n = 0, iu = 0, i0 = 0, i1 = 0, id = 0;
      for (;;) {
        int x = INT32_MAX;
        if (iu < b->nuse && b->use[iu] < x)
          x = b->use[iu];
        if (s0 && i0 < s0->nin && s0->in[i0] < x)
          x = s0->in[i0];
        if (s1 && i1 < s1->nin && s1->in[i1] < x)
          x = s1->in[i1];
        if (x == INT32_MAX)
          break;
        bool from_use = iu < b->nuse && b->use[iu] == x;
        if (from_use)
          iu++;
        if (s0 && i0 < s0->nin && s0->in[i0] == x)
          i0++;
        if (s1 && i1 < s1->nin && s1->in[i1] == x)
          i1++;
        while (id < b->ndef && b->def[id] < x)
          id++;
        if (from_use || !(id < b->ndef && b->def[id] == x))
          scratch[n++] = x;
      }
      if (n == b->nin && (n == 0 || memcmp(scratch, b->in, sizeof *scratch * (size_t)n) == 0))
        continue;
      int *nin = realloc(b->in, sizeof *nin * (size_t)(n ? n : 1));
      if (!nin) {
        rc = WFP_ENOMEM;
        goto out;
      }
      memcpy(nin, scratch, sizeof *nin * (size_t)n);
      b->in = nin;
      b->nin = n;
      changed = true;
    }
  }
out:
  free(u.dm);
  free(u.um);
  free(u.tm);
  free(u.defs);
  free(u.uses);
  free(scratch);
  return rc;
}

/* ---- saves, restores and the dispatch ---- */

/* Saved values are ordered i64 first (wfp__cg_compute_saves): that fixed-size part
** is stored and loaded by the generated code itself, at constant offsets;
** strings go through the runtime. */
static int fixed_bytes(const fb *F, const point *pt) {
  int n = 0;
  for (int i = 0; i < pt->nsaved; i++)
    n += F->lk[pt->saved[i]] == VK_I64 ? 8 : 0;
  return n;
}

BinaryenExpressionRef wfp__cg_save_code(fb *F, point *pt, int k, int ptr) {
  cg *g = F->g;
  BinaryenExpressionRef *code = calloc((size_t)pt->nsaved + 3, sizeof *code);
  if (!code) {
    wfp__cg_fail(g, WFP_ENOMEM, "", "out of memory");
    return BinaryenNop(g->m);
  }
  int n = 0, off = 0;
  code[n++] = BinaryenLocalSet(g->m, (BinaryenIndex)ptr,
                               wfp__cg_call1(g, WFP_RT_FW_BEGIN, wfp__cg_c32(g, fixed_bytes(F, pt)), I32));
  for (int i = 0; i < pt->nsaved; i++) {
    int l = pt->saved[i];
    if (F->lk[l] == VK_I64) {
      code[n++] = BinaryenStore(g->m, 8, (uint32_t)off, 1, wfp__cg_lget(F, ptr), wfp__cg_lget(F, l), I64);
      off += 8;
    } else {
      code[n++] = wfp__cg_call1(g, F->lk[l] == VK_FN ? WFP_RT_FW_FN : WFP_RT_FW_STR, wfp__cg_lget(F, l), NONE);
    }
  }
  code[n++] = wfp__cg_call2(g, WFP_RT_FW_END, wfp__cg_c32(g, F->fidx), wfp__cg_c32(g, k), NONE);
  BinaryenExpressionRef r = BinaryenBlock(g->m, NULL, code, (BinaryenIndex)n, NONE);
  free(code);
  return r;
}

BinaryenExpressionRef wfp__cg_restore_code(fb *F, point *pt, int ptr) {
  cg *g = F->g;
  BinaryenExpressionRef *code = calloc((size_t)pt->nsaved + 2, sizeof *code);
  if (!code) {
    wfp__cg_fail(g, WFP_ENOMEM, "", "out of memory");
    return BinaryenNop(g->m);
  }
  int n = 0, off = 0;
  int fixed = fixed_bytes(F, pt);
  if (fixed)
    code[n++] = BinaryenLocalSet(g->m, (BinaryenIndex)ptr,
                                 wfp__cg_call1(g, WFP_RT_FR_TAKE, wfp__cg_c32(g, fixed), I32));
  for (int i = 0; i < pt->nsaved; i++) {
    int l = pt->saved[i];
    if (F->lk[l] == VK_I64) {
      code[n++] = BinaryenLocalSet(
          g->m, (BinaryenIndex)l, BinaryenLoad(g->m, 8, false, (uint32_t)off, 1, I64, wfp__cg_lget(F, ptr)));
      off += 8;
    } else {
      code[n++] = BinaryenLocalSet(g->m, (BinaryenIndex)l,
                                   wfp__cg_call0(g, F->lk[l] == VK_FN ? WFP_RT_FR_FN : WFP_RT_FR_STR, I32));
    }
  }
  BinaryenExpressionRef r = n ? BinaryenBlock(g->m, NULL, code, (BinaryenIndex)n, NONE)
                              : BinaryenNop(g->m);
  free(code);
  return r;
}

int wfp__cg_compute_saves(fb *F) {
  fninfo *fi = F->fi;
  fi->pt_callee = calloc((size_t)F->npts + 1, sizeof *fi->pt_callee);
  fi->pt_nvals = calloc((size_t)F->npts + 1, sizeof *fi->pt_nvals);
  fi->pt_types = calloc((size_t)F->npts + 1, sizeof *fi->pt_types);
  if (!fi->pt_callee || !fi->pt_nvals || !fi->pt_types)
    return WFP_ENOMEM;
  fi->npoints = F->npts; /* pt_types[0..npoints) is what wfp_codegen frees */
  for (int k = 0; k < F->npts; k++) {
    point *pt = &F->pts[k];
    const blk *c = &F->b[pt->cont];
    pt->saved = calloc((size_t)c->nin + 1, sizeof *pt->saved);
    fi->pt_types[k] = calloc((size_t)c->nin + 1, 1);
    if (!pt->saved || !fi->pt_types[k])
      return WFP_ENOMEM;
    /* i64 values first: the fixed part of the frame (wfp__cg_save_code); each
    ** part in the order of the locals */
    for (int pass = 0; pass < 2; pass++)
      for (int j = 0; j < c->nin; j++) {
        int l = c->in[j];
        /* the fuel local is loaded again at entry, fresh or resuming */
        if (l == pt->result || l == F->fuel)
          continue;
        if (F->lk[l] == VK_SCRATCH) {
          if (pass == 1)
            continue;
          wfp__cg_fail(F->g, WFP_EINTERNAL, F->f->path,
                  "internal error: local %d of kind %d live across a suspension",
                  l, F->lk[l]);
          return WFP_EINTERNAL;
        }
        if ((F->lk[l] == VK_I64) != (pass == 0))
          continue;
        fi->pt_types[k][pt->nsaved] = (uint8_t)F->lk[l];
        pt->saved[pt->nsaved++] = l;
      }
    fi->pt_callee[k] = pt->callee;
    fi->pt_nvals[k] = pt->nsaved;
  }
  return WFP_OK;
}
