/*
** lower.c: IR -> core Wasm with the Binaryen C API.
**
** Each IR function becomes one Wasm function built as a control-flow graph
** and turned back into structured code by Binaryen's Relooper. A function
** that can suspend gets one resume point per suspension (an effect, or a
** call to a function that can suspend): there it saves exactly the locals
** live after that point into the state and returns; a resume enters through
** a dispatch on the saved point, restores those locals and goes on. Code
** that cannot suspend gets no dispatch and no saves. docs/state.md and
** docs/suspension.md describe the design; the guest runtime (guest/rt.c)
** supplies strings, JSON, state bytes and the canonical-ABI exports.
** This file assembles the module (data, types, each function, thunks and
** wrappers, tables, the runtime's imports, optimization); analysis.c,
** blocks.c, expr.c and frames.c hold the rest (codegen_int.h).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <binaryen-c.h>

#include "codegen_int.h"

/* ---- the module being built ---- */

void wfp__cg_fail(cg *g, int code, const char *path, const char *fmt, ...) {
  if (g->rc)
    return;
  g->rc = code;
  g->fail_path = path ? path : "";
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  g->fail_msg = n >= 0 ? malloc((size_t)n + 1) : NULL;
  if (g->fail_msg) {
    va_start(ap, fmt);
    vsnprintf(g->fail_msg, (size_t)n + 1, fmt, ap);
    va_end(ap);
  }
}

/* The diagnostic of a failed codegen, in one block (wfp_free), or NULL
** when out of memory. */
static wfp_diag *make_diag(const cg *g) {
  const char *file = g->p->file ? g->p->file : "<memory>";
  const char *msg = g->fail_msg ? g->fail_msg : wfp_strerror(g->rc);
  const char *path = g->fail_path ? g->fail_path : "";
  size_t fl = strlen(file) + 1, pl = strlen(path) + 1, ml = strlen(msg) + 1;
  wfp_diag *d = malloc(sizeof *d + fl + pl + ml);
  if (!d)
    return NULL;
  char *s = (char *)(d + 1);
  memset(d, 0, sizeof *d);
  d->code = g->rc;
  d->file = memcpy(s, file, fl);
  d->path = memcpy(s + fl, path, pl);
  d->msg = memcpy(s + fl + pl, msg, ml);
  return d;
}

static const char *rt(cg *g, int f) {
  /* setup() found every one, or codegen stopped there */
  return f >= 0 && f < WFP_RT_COUNT && g->rt_int[f] ? g->rt_int[f] : "missing";
}

BinaryenExpressionRef wfp__cg_c32(cg *g, int32_t v) {
  return BinaryenConst(g->m, BinaryenLiteralInt32(v));
}
BinaryenExpressionRef wfp__cg_c64(cg *g, int64_t v) {
  return BinaryenConst(g->m, BinaryenLiteralInt64(v));
}

BinaryenExpressionRef wfp__cg_call(cg *g, int rtfn,
                                   BinaryenExpressionRef *args, int n,
                                   BinaryenType ret) {
  return BinaryenCall(g->m, rt(g, rtfn), args, (BinaryenIndex)n, ret);
}
BinaryenExpressionRef wfp__cg_call0(cg *g, int f, BinaryenType ret) {
  return wfp__cg_call(g, f, NULL, 0, ret);
}
BinaryenExpressionRef wfp__cg_call1(cg *g, int f, BinaryenExpressionRef a,
                                    BinaryenType ret) {
  return wfp__cg_call(g, f, &a, 1, ret);
}
BinaryenExpressionRef wfp__cg_call2(cg *g, int f, BinaryenExpressionRef a,
                                    BinaryenExpressionRef b, BinaryenType ret) {
  BinaryenExpressionRef v[2] = {a, b};
  return wfp__cg_call(g, f, v, 2, ret);
}

BinaryenExpressionRef wfp__cg_gget(cg *g, const char *name) {
  return BinaryenGlobalGet(g->m, name, I32);
}

/* ---- data ---- */

uint32_t wfp__cg_add_data(cg *g, const void *bytes, uint32_t n, uint32_t align) {
  uint32_t addr = (g->data_top + align - 1) & ~(align - 1);
  if ((uint64_t)addr + n + 65536u > (uint64_t)MAX_PAGES * 65536u) {
    wfp__cg_fail(g, WFP_ELIMIT, "",
            "the program's constant data (its literals, names and tables) does "
            "not fit the module's memory of %u MiB",
            MAX_PAGES / 16u);
    return 0;
  }
  static const char pad[16] = {0};
  wfp__buf_add(&g->data, pad, addr - g->data_top);
  wfp__buf_add(&g->data, bytes, n);
  if (g->data.oom) {
    wfp__cg_fail(g, WFP_ENOMEM, "", "out of memory");
    return 0;
  }
  g->data_top = addr + n;
  return addr;
}

/* The bytes of data at addr (valid until the next wfp__cg_add_data). */
static const char *data_at(const cg *g, uint32_t addr) {
  return g->data.data + (addr - g->data_base);
}

static uint32_t lit_hash(const char *s, size_t n) {
  uint32_t h = 2166136261u; /* FNV-1a */
  for (size_t i = 0; i < n; i++)
    h = (h ^ (unsigned char)s[i]) * 16777619u;
  return h;
}

/* Makes room for one more literal in the hash table (rehashing when half
** full); false when out of memory. */
static bool lit_room(cg *g) {
  if (2 * (g->nlits + 1) <= g->lit_slots)
    return true;
  int n = g->lit_slots ? g->lit_slots * 2 : 256;
  int *slot = calloc((size_t)n, sizeof *slot);
  if (!slot)
    return false;
  for (int i = 0; i < g->nlits; i++) {
    uint32_t k = lit_hash(data_at(g, g->lits[i].addr + 4), g->lits[i].n) & (uint32_t)(n - 1);
    while (slot[k])
      k = (k + 1) & (uint32_t)(n - 1);
    slot[k] = i + 1;
  }
  free(g->lit_slot);
  g->lit_slot = slot;
  g->lit_slots = n;
  return true;
}

/* A str object {u32 len; bytes} in data, shared between equal literals
** (a hash table: a program has as many literals as it has names). */
uint32_t wfp__cg_str_obj(cg *g, const char *s, size_t n) {
  if (!lit_room(g)) {
    wfp__cg_fail(g, WFP_ENOMEM, "", "out of memory");
    return 0;
  }
  uint32_t mask = (uint32_t)(g->lit_slots - 1), k = lit_hash(s, n) & mask;
  for (; g->lit_slot[k]; k = (k + 1) & mask) {
    const lit *l = &g->lits[g->lit_slot[k] - 1];
    if (l->n == n && memcmp(data_at(g, l->addr + 4), s, n) == 0)
      return l->addr;
  }
  char *buf = malloc(4 + n);
  if (!buf) {
    wfp__cg_fail(g, WFP_ENOMEM, "", "out of memory");
    return 0;
  }
  uint32_t len = (uint32_t)n;
  memcpy(buf, &len, 4);
  if (n)
    memcpy(buf + 4, s, n);
  uint32_t addr = wfp__cg_add_data(g, buf, (uint32_t)(4 + n), 4);
  free(buf);
  if (g->rc)
    return addr;
  if (g->nlits == g->lits_cap) {
    int cap = g->lits_cap ? g->lits_cap * 2 : 64;
    lit *nl = realloc(g->lits, sizeof *nl * (size_t)cap);
    if (!nl) {
      wfp__cg_fail(g, WFP_ENOMEM, "", "out of memory");
      return addr;
    }
    g->lits = nl;
    g->lits_cap = cap;
  }
  g->lits[g->nlits].addr = addr;
  g->lits[g->nlits].n = (uint32_t)n;
  g->lit_slot[k] = ++g->nlits;
  return addr;
}

/* A get_* path: [u32 nsegs] then [u32 kind][u32 len|index][key, padded]. */
uint32_t wfp__cg_path_obj(cg *g, const wfp_expr *e) {
  wfp__buf b;
  wfp__buf_init(&b);
  uint32_t n = (uint32_t)e->nsegs;
  wfp__buf_add(&b, &n, 4);
  for (int i = 0; i < e->nsegs; i++) {
    const wfp_pathseg *s = &e->segs[i];
    uint32_t kind = s->is_index ? 1 : 0;
    uint32_t v = s->is_index ? (uint32_t)s->index : (uint32_t)s->keylen;
    wfp__buf_add(&b, &kind, 4);
    wfp__buf_add(&b, &v, 4);
    if (!s->is_index) {
      wfp__buf_add(&b, s->key, s->keylen);
      static const char zero[4] = {0};
      wfp__buf_add(&b, zero, (4 - s->keylen % 4) % 4);
    }
  }
  uint32_t addr = b.oom ? 0 : wfp__cg_add_data(g, b.data, (uint32_t)b.len, 4);
  if (b.oom)
    wfp__cg_fail(g, WFP_ENOMEM, "", "out of memory");
  wfp__buf_free(&b);
  return addr;
}

/* ---- types ---- */

wfp_tkind wfp__cg_kind_of(wfp_type *t) {
  t = wfp__type_find(t);
  return t ? t->kind : WFP_T_ERROR;
}

BinaryenType wfp__cg_wasm_type(wfp_type *t) {
  switch (wfp__cg_kind_of(t)) {
  case WFP_T_I64:
    return I64;
  case WFP_T_VOID:
    return NONE;
  default:
    return I32;
  }
}


int wfp__cg_vkind(wfp_type *t) {
  switch (wfp__cg_kind_of(t)) {
  case WFP_T_I64: return VK_I64;
  case WFP_T_STR: return VK_STR;
  case WFP_T_JSON: return VK_JSON;
  case WFP_T_FN: return VK_FN;
  default: return VK_SCRATCH;
  }
}

/* Does the template hold a json hole inside its own arrays or objects? The
** value put there may then nest too deep (rt_sb_json_at traps). */
bool wfp__cg_tpl_nests_json(const wfp_jtpl *t, int level) {
  if (!t)
    return false;
  if (t->kind == WFP_J_HOLE)
    return level > 0 && t->hole && wfp__cg_kind_of(t->hole->type) == WFP_T_JSON;
  for (int i = 0; (t->kind == WFP_J_OBJ || t->kind == WFP_J_ARR) && i < t->n; i++)
    if (wfp__cg_tpl_nests_json(t->items[i], level + 1))
      return true;
  return false;
}

/* ---- one function ---- */

static void build_function(cg *g, int idx) {
  const wfp_func *f = g->p->funcs[idx];
  fninfo *fi = &g->fi[idx];
  fb F;
  memset(&F, 0, sizeof F);
  F.g = g;
  F.f = f;
  F.fi = fi;
  F.fidx = idx;
  F.var_local = calloc((size_t)f->nlocals + 1, sizeof *F.var_local);
  F.lcap = F.bcap = 32;
  F.pcap = 8;
  F.lt = calloc((size_t)F.lcap, sizeof *F.lt);
  F.lk = calloc((size_t)F.lcap, sizeof *F.lk);
  F.b = calloc((size_t)F.bcap, sizeof *F.b);
  F.pts = calloc((size_t)F.pcap, sizeof *F.pts);
  if (!F.var_local || !F.lt || !F.lk || !F.b || !F.pts) {
    wfp__cg_fail(g, WFP_ENOMEM, "", "out of memory");
    goto done;
  }
  /* params: captures, then declared params */
  for (int i = 0; i < f->ncaps; i++)
    F.var_local[f->caps[i]->index] =
        wfp__cg_new_local(&F, wfp__cg_wasm_type(f->caps[i]->type), wfp__cg_vkind(f->caps[i]->type));
  for (int i = 0; i < f->nparams; i++)
    F.var_local[f->params[i]->index] =
        wfp__cg_new_local(&F, wfp__cg_wasm_type(f->params[i]->type), wfp__cg_vkind(f->params[i]->type));
  F.nparams = F.nl;
  for (int i = 0; i < f->nlocals; i++) {
    wfp_var *v = f->locals[i];
    if (v->is_param || v->is_capture)
      continue;
    F.var_local[v->index] = wfp__cg_new_local(&F, wfp__cg_wasm_type(v->type), wfp__cg_vkind(v->type));
  }
  F.fuel = -1;
  if (fi->has_call || fi->has_loop)
    F.fuel = wfp__cg_new_local(&F, I64, VK_SCRATCH);
  int entry = wfp__cg_new_block(&F);
  int body = wfp__cg_new_block(&F);
  /* fresh or resuming, the function starts with the step's fuel */
  F.cur = entry;
  wfp__cg_emit(&F, wfp__cg_fuel_load(&F));
  F.cur = body;
  if (fi->has_call) {
    /* a call is a unit of fuel: recursion yields too */
    int start = wfp__cg_new_block(&F);
    wfp__cg_fuel_check(&F, start);
    F.cur = start;
  }
  wfp__cg_lower_block(&F, &f->body);
  if (g->rc)
    goto done;

  if (F.cur >= 0)
    wfp__cg_do_return(&F, NULL);
  if (F.npts > 0 && !fi->may_suspend) {
    wfp__cg_fail(g, WFP_EINTERNAL, f->path, "internal error: suspension analysis");
    goto done;
  }
  if (wfp__cg_liveness(&F) || wfp__cg_compute_saves(&F)) {
    if (!g->rc)
      wfp__cg_fail(g, WFP_ENOMEM, "", "out of memory");
    goto done;
  }
  if (g->rc)
    goto done;
  int label = wfp__cg_new_local(&F, I32, VK_SCRATCH);
  int fptr = wfp__cg_new_local(&F, I32, VK_SCRATCH); /* frame pointer of saves/restores */
  RelooperBlockRef *rb = calloc((size_t)F.nb + 1, sizeof *rb);
  if (!rb) {
    wfp__cg_fail(g, WFP_ENOMEM, "", "out of memory");
    goto done;
  }
  RelooperRef R = RelooperCreate(g->m); /* freed by RelooperRenderAndDispose only */
  /* blocks' code, with saves at suspensions and checks after calls */
  for (int i = 0; i < F.nb; i++) {
    blk *b = &F.b[i];
    if (b->term == T_SUSPEND) {
      point *pt = &F.pts[b->point];
      BinaryenExpressionRef tail[3] = {
          wfp__cg_save_code(&F, pt, b->point, fptr),
          BinaryenGlobalSet(g->m, G_UNWIND, wfp__cg_c32(g, (int32_t)WFP_UNWIND_SUSPEND)), wfp__cg_unwind_return(&F)};
      int saved_cur = F.cur;
      F.cur = i;
      for (int t = 0; t < 3; t++)
        wfp__cg_emit(&F, tail[t]);
      F.cur = saved_cur;
    } else if (b->term == T_CHECK) {
      point *pt = &F.pts[b->point];
      BinaryenExpressionRef onsusp = BinaryenIf(
          g->m, BinaryenBinary(g->m, BinaryenEqInt32(), wfp__cg_gget(g, G_UNWIND), wfp__cg_c32(g, (int32_t)WFP_UNWIND_SUSPEND)),
          wfp__cg_save_code(&F, pt, b->point, fptr), NULL);
      BinaryenExpressionRef both[2] = {onsusp, wfp__cg_unwind_return(&F)};
      BinaryenExpressionRef chk = BinaryenIf(g->m, wfp__cg_gget(g, G_UNWIND),
                                             BinaryenBlock(g->m, NULL, both, 2, NONE), NULL);
      int saved_cur = F.cur;
      F.cur = i;
      wfp__cg_emit(&F, chk);
      F.cur = saved_cur;
    }
  }
  for (int i = 0; i < F.nb; i++) {
    blk *b = &F.b[i];
    BinaryenExpressionRef code =
        b->n ? BinaryenBlock(g->m, NULL, b->code, (BinaryenIndex)b->n, BinaryenTypeAuto())
             : BinaryenNop(g->m);
    rb[i] = RelooperAddBlock(R, code);
  }
  for (int i = 0; i < F.nb; i++) {
    blk *b = &F.b[i];
    switch (b->term) {
    case T_GOTO:
    case T_CHECK:
      RelooperAddBranch(rb[i], rb[b->s0], NULL, NULL);
      break;
    case T_IF:
      RelooperAddBranch(rb[i], rb[b->s0], b->cond, NULL);
      RelooperAddBranch(rb[i], rb[b->s1], NULL, NULL);
      break;
    case T_OPEN: /* a dead block that was never closed */
      break;
    default:
      break;
    }
  }
  /* the entry: straight into the body, or into the dispatch on a resume */
  RelooperBlockRef rentry = rb[entry];
  if (F.npts > 0) {
    RelooperBlockRef disp = RelooperAddBlockWithSwitch(
        R, BinaryenNop(g->m), wfp__cg_call1(g, WFP_RT_FR_OPEN, wfp__cg_c32(g, idx), I32));
    RelooperBlockRef bad = RelooperAddBlock(R, BinaryenUnreachable(g->m));
    for (int k = 0; k < F.npts; k++) {
      point *pt = &F.pts[k];
      RelooperBlockRef rs = RelooperAddBlock(R, wfp__cg_restore_code(&F, pt, fptr));
      BinaryenIndex ix = (BinaryenIndex)k;
      RelooperAddBranchForSwitch(disp, rs, &ix, 1, NULL);
      RelooperAddBranch(rs, rb[pt->resume], NULL, NULL);
    }
    RelooperAddBranchForSwitch(disp, bad, NULL, 0, NULL);
    RelooperAddBranch(rentry, disp, wfp__cg_gget(g, G_RESUMING), NULL);
  }
  RelooperAddBranch(rentry, rb[body], NULL, NULL);
  BinaryenExpressionRef parts[2] = {
      RelooperRenderAndDispose(R, rentry, (BinaryenIndex)label),
      /* every path returns: the end is unreachable, whatever the result type */
      BinaryenUnreachable(g->m)};
  BinaryenExpressionRef fbody = BinaryenBlock(g->m, NULL, parts, 2, BinaryenTypeAuto());
  free(rb);
  BinaryenType params = BinaryenTypeCreate(F.lt, (BinaryenIndex)F.nparams);
  BinaryenAddFunction(g->m, fi->name, params, fi->ret, F.lt + F.nparams,
                      (BinaryenIndex)(F.nl - F.nparams), fbody);
done:
  for (int i = 0; i < F.nb; i++) {
    free(F.b[i].code);
    free(F.b[i].use);
    free(F.b[i].def);
    free(F.b[i].in);
  }
  for (int k = 0; k < F.npts; k++)
    free(F.pts[k].saved);
  free(F.pts);
  free(F.b);
  free(F.lt);
  free(F.lk);
  free(F.var_local);
}

/* ---- thunks and wrappers, shared by functions of one signature ----
** A thunk is the entry of an invocation: it reads the arguments from the
** input JSON, calls the function and writes its output. A wrapper is what
** call_ref calls: it unpacks a closure's captures ahead of the arguments.
** Both reach the function through the table (slot nfuncs + i holds
** function i), so one of each serves every function of the same signature:
** wasm2c's time grows with the square of the number of Wasm functions, and
** a thunk and a wrapper per function would triple it. */

/* The table: [0, n) the wrapper of function i (call_ref's slot, a
** closure's function index), [n, 2n) function i itself, [2n, 3n) the thunk
** of function i (the entry dispatch, run_body). */
#define SLOT_FUNC(g, i) ((g)->nf + (i))
#define SLOT_THUNK(g, i) (2 * (g)->nf + (i))

/* Groups functions by a key: each function gets the index of its group's
** first member (*rep), and the number of groups is returned (-1: no memory). */
typedef void (*keyfn)(const cg *g, int i, wfp__buf *key);

static int group_by(cg *g, keyfn key, int *rep) {
  int n = g->nf, slots = 16, ngroups = 0;
  while (slots < 2 * n)
    slots *= 2;
  int *slot = calloc((size_t)slots, sizeof *slot); /* member index + 1 */
  wfp__buf *keys = calloc((size_t)n + 1, sizeof *keys);
  if (!slot || !keys) {
    free(slot);
    free(keys);
    return -1;
  }
  bool oom = false;
  for (int i = 0; i < n && !oom; i++) {
    key(g, i, &keys[i]);
    oom = keys[i].oom;
    uint32_t h = lit_hash(keys[i].data ? keys[i].data : "", keys[i].len) & (uint32_t)(slots - 1);
    for (;; h = (h + 1) & (uint32_t)(slots - 1)) {
      int j = slot[h] - 1;
      if (j < 0) {
        slot[h] = i + 1;
        rep[i] = i;
        ngroups++;
        break;
      }
      if (keys[j].len == keys[i].len && memcmp(keys[j].data, keys[i].data, keys[i].len) == 0) {
        rep[i] = j;
        break;
      }
    }
  }
  for (int i = 0; i < n; i++)
    wfp__buf_free(&keys[i]);
  free(keys);
  free(slot);
  return oom ? -1 : ngroups;
}

static wfp_var *param_var(const wfp_func *f, int i) {
  return i < f->ncaps ? f->caps[i] : f->params[i - f->ncaps];
}

/* A thunk depends on the kinds of the parameters and the result, and on
** whether the function may suspend and may end without a value. */
static void thunk_key(const cg *g, int i, wfp__buf *key) {
  const wfp_func *f = g->p->funcs[i];
  for (int k = 0; k < f->ncaps + f->nparams; k++)
    wfp__buf_addc(key, (char)('0' + wfp__cg_kind_of(param_var(f, k)->type)));
  wfp__buf_printf(key, ">%d%d%d", (int)wfp__cg_kind_of(f->ret), g->fi[i].may_suspend,
                  f->may_end_void);
}

/* A wrapper depends on the Wasm types of the parameters and the result,
** and on how many leading ones are captures. Functions without a closure
** have no wrapper: they form groups of their own. */
static void wrapper_key(const cg *g, int i, wfp__buf *key) {
  const wfp_func *f = g->p->funcs[i];
  wfp__buf_printf(key, "%c%d:", g->fi[i].closable ? 'c' : 'n', g->fi[i].k);
  for (int k = 0; k < f->ncaps + f->nparams; k++)
    wfp__buf_addc(key, wfp__cg_wasm_type(param_var(f, k)->type) == I64 ? 'j' : 'i');
  wfp__buf_printf(key, ">%c", g->fi[i].ret == I64 ? 'j' : g->fi[i].ret == NONE ? 'v' : 'i');
}

/* The full signature of function i, for call_indirect. */
static BinaryenType func_params(cg *g, int i) {
  const wfp_func *f = g->p->funcs[i];
  int n = f->ncaps + f->nparams;
  BinaryenType *pt = calloc((size_t)n + 1, sizeof *pt);
  if (!pt) {
    wfp__cg_fail(g, WFP_ENOMEM, "", "out of memory");
    return NONE;
  }
  for (int k = 0; k < n; k++)
    pt[k] = wfp__cg_wasm_type(param_var(f, k)->type);
  BinaryenType t = BinaryenTypeCreate(pt, (BinaryenIndex)n);
  free(pt);
  return t;
}

/* The thunk of function idx's group: thunk(fn, resuming). */
static void build_thunk(cg *g, int idx) {
  const wfp_func *f = g->p->funcs[idx];
  fninfo *fi = &g->fi[idx];
  BinaryenModuleRef m = g->m;
  int n = f->ncaps + f->nparams;
  BinaryenType *lt = calloc((size_t)n + 3, sizeof *lt);
  BinaryenExpressionRef *code = calloc(8, sizeof *code);
  BinaryenExpressionRef *load = calloc((size_t)n * 2 + 2, sizeof *load);
  BinaryenExpressionRef *args = calloc((size_t)n + 1, sizeof *args);
  BinaryenExpressionRef *zeros = calloc((size_t)n + 1, sizeof *zeros);
  BinaryenType params = func_params(g, idx);
  if (!lt || !code || !load || !args || !zeros) {
    wfp__cg_fail(g, WFP_ENOMEM, "", "out of memory");
    goto out;
  }
  /* local 0: the function (param); 1: resuming (param); 2..n+1: the
  ** arguments; n+2: the result */
  lt[0] = lt[1] = I32;
  int nc = 0, nl = 0;
  for (int i = 0; i < n; i++) {
    wfp_var *v = param_var(f, i);
    BinaryenType t = wfp__cg_wasm_type(v->type);
    lt[2 + i] = t;
    int rf;
    switch (wfp__cg_kind_of(v->type)) {
    case WFP_T_I64: rf = WFP_RT_ARG_I64; break;
    case WFP_T_STR: rf = WFP_RT_ARG_STR; break;
    case WFP_T_JSON: rf = WFP_RT_ARG_JSON; break;
    default: rf = WFP_RT_ARG_FN; break;
    }
    load[nl++] = BinaryenLocalSet(m, (BinaryenIndex)(2 + i),
                                  wfp__cg_call2(g, rf, BinaryenLocalGet(m, 0, I32), wfp__cg_c32(g, i), t));
    load[nl++] = BinaryenIf(m, wfp__cg_gget(g, G_UNWIND), BinaryenReturn(m, NULL), NULL);
    args[i] = BinaryenLocalGet(m, (BinaryenIndex)(2 + i), t);
    zeros[i] = wfp__cg_zero_of(g, t);
  }
  BinaryenType rt_ = fi->ret;
  int res = 2 + n;
  lt[res] = rt_ == NONE ? I32 : rt_;
  BinaryenExpressionRef slot =
      BinaryenBinary(m, BinaryenAddInt32(), BinaryenLocalGet(m, 0, I32), wfp__cg_c32(g, SLOT_FUNC(g, 0)));
  BinaryenExpressionRef c =
      BinaryenCallIndirect(m, "wfp$fns", slot, args, (BinaryenIndex)n, params, rt_);
  BinaryenExpressionRef rcall = BinaryenCallIndirect(
      m, "wfp$fns", BinaryenExpressionCopy(slot, m), zeros, (BinaryenIndex)n, params, rt_);
  if (rt_ != NONE) {
    c = BinaryenLocalSet(m, (BinaryenIndex)res, c);
    rcall = BinaryenLocalSet(m, (BinaryenIndex)res, rcall);
  }
  load[nl++] = c;
  BinaryenExpressionRef fresh = BinaryenBlock(m, NULL, load, (BinaryenIndex)nl, NONE);
  code[nc++] = BinaryenIf(m, BinaryenLocalGet(m, 1, I32),
                          fi->may_suspend ? rcall : BinaryenUnreachable(m), fresh);
  code[nc++] = BinaryenIf(m, wfp__cg_gget(g, G_UNWIND), BinaryenReturn(m, NULL), NULL);
  BinaryenExpressionRef out;
  switch (wfp__cg_kind_of(f->ret)) {
  case WFP_T_I64:
    out = wfp__cg_call1(g, WFP_RT_OUT_I64, BinaryenLocalGet(m, (BinaryenIndex)res, I64), NONE);
    break;
  case WFP_T_STR:
    out = wfp__cg_call1(g, WFP_RT_OUT_STR, BinaryenLocalGet(m, (BinaryenIndex)res, I32), NONE);
    break;
  case WFP_T_JSON:
    out = wfp__cg_call1(g, WFP_RT_OUT_JSON, BinaryenLocalGet(m, (BinaryenIndex)res, I32), NONE);
    break;
  case WFP_T_FN:
    out = wfp__cg_call1(g, WFP_RT_OUT_FN, BinaryenLocalGet(m, (BinaryenIndex)res, I32), NONE);
    break;
  default:
    out = wfp__cg_call0(g, WFP_RT_OUT_NULL, NONE);
    break;
  }
  if (rt_ != NONE && f->may_end_void)
    out = BinaryenIf(m, wfp__cg_gget(g, G_NOVALUE), wfp__cg_call0(g, WFP_RT_OUT_NULL, NONE), out);
  code[nc++] = out;
  BinaryenType two[2] = {I32, I32};
  BinaryenAddFunction(m, fi->thunk, BinaryenTypeCreate(two, 2), NONE, lt + 2,
                      (BinaryenIndex)(n + 1), BinaryenBlock(m, NULL, code, (BinaryenIndex)nc, NONE));
out:
  free(lt);
  free(code);
  free(load);
  free(args);
  free(zeros);
}

/* The wrapper of function idx's group: (closure, the function's own
** params) -> its result. Fresh, it calls the closure's function with the
** captures stored in the closure ahead of the params; resuming, the
** function restores everything from its frame, so it gets zeros (the
** closure pointer is 0 then: the function is the next frame's). */
static void build_wrapper(cg *g, int idx) {
  BinaryenModuleRef m = g->m;
  const wfp_func *f = g->p->funcs[idx];
  fninfo *fi = &g->fi[idx];
  int n = f->ncaps + f->nparams, k = fi->k;
  BinaryenType *pt = calloc((size_t)(n - k) + 2, sizeof *pt);
  BinaryenExpressionRef *args = calloc((size_t)n + 1, sizeof *args);
  BinaryenExpressionRef *zeros = calloc((size_t)n + 1, sizeof *zeros);
  BinaryenType params = func_params(g, idx);
  if (!pt || !args || !zeros) {
    wfp__cg_fail(g, WFP_ENOMEM, "", "out of memory");
    goto out;
  }
  pt[0] = I32;
  for (int i = 0; i < n; i++) {
    BinaryenType t = wfp__cg_wasm_type(param_var(f, i)->type);
    zeros[i] = wfp__cg_zero_of(g, t);
    if (i < k) {
      args[i] = BinaryenLoad(m, t == I64 ? 8 : 4, false, (uint32_t)(8 + 8 * i), 4, t,
                             BinaryenLocalGet(m, 0, I32));
    } else {
      pt[1 + i - k] = t;
      args[i] = BinaryenLocalGet(m, (BinaryenIndex)(1 + i - k), t);
    }
  }
  BinaryenExpressionRef fresh_fn = BinaryenLoad(m, 4, false, 0, 4, I32, BinaryenLocalGet(m, 0, I32));
  BinaryenExpressionRef fresh_slot =
      BinaryenBinary(m, BinaryenAddInt32(), fresh_fn, wfp__cg_c32(g, SLOT_FUNC(g, 0)));
  BinaryenExpressionRef res_slot = BinaryenBinary(m, BinaryenAddInt32(),
                                                  wfp__cg_call0(g, WFP_RT_FR_PEEK_FN, I32),
                                                  wfp__cg_c32(g, SLOT_FUNC(g, 0)));
  BinaryenExpressionRef body = BinaryenIf(
      m, wfp__cg_gget(g, G_RESUMING),
      BinaryenCallIndirect(m, "wfp$fns", res_slot, zeros, (BinaryenIndex)n, params, fi->ret),
      BinaryenCallIndirect(m, "wfp$fns", fresh_slot, args, (BinaryenIndex)n, params, fi->ret));
  BinaryenAddFunction(m, fi->wrapper, BinaryenTypeCreate(pt, (BinaryenIndex)(n - k + 1)),
                      fi->ret, NULL, 0, body);
out:
  free(pt);
  free(args);
  free(zeros);
}

/* Thunks and wrappers, one per group, and the table. A slot no closure can
** name (its function has no wrapper) holds a function that traps: the
** runtime never makes such a closure. */
static void build_entries(cg *g) {
  BinaryenModuleRef m = g->m;
  int n = g->nf;
  BinaryenAddTable(m, "wfp$fns", (BinaryenIndex)(3 * n), (BinaryenIndex)(3 * n),
                   BinaryenTypeFuncref());
  if (n == 0)
    return;
  int *trep = calloc((size_t)n, sizeof *trep);
  int *wrep = calloc((size_t)n, sizeof *wrep);
  const char **names = calloc((size_t)n, sizeof *names);
  if (!trep || !wrep || !names || group_by(g, thunk_key, trep) < 0 ||
      group_by(g, wrapper_key, wrep) < 0) {
    wfp__cg_fail(g, WFP_ENOMEM, "", "out of memory");
    goto out;
  }
  bool any_closable = false, all_closable = true;
  for (int i = 0; i < n && !g->rc; i++) {
    fninfo *fi = &g->fi[i];
    snprintf(fi->thunk, sizeof fi->thunk, "thunk%d", trep[i]);
    if (trep[i] == i)
      build_thunk(g, i);
    any_closable |= fi->closable;
    all_closable &= fi->closable;
    if (fi->closable) {
      snprintf(fi->wrapper, sizeof fi->wrapper, "cl%d", wrep[i]);
      if (wrep[i] == i)
        build_wrapper(g, i);
    }
  }
  if (g->rc)
    goto out;
  if (!all_closable)
    BinaryenAddFunction(m, "wfp$noclosure", NONE, NONE, NULL, 0, BinaryenUnreachable(m));
  for (int i = 0; i < n; i++)
    names[i] = g->fi[i].closable ? g->fi[i].wrapper : "wfp$noclosure";
  if (any_closable)
    BinaryenAddActiveElementSegment(m, "wfp$fns", "wfp$wrappers", names, (BinaryenIndex)n,
                                    wfp__cg_c32(g, 0));
  for (int i = 0; i < n; i++)
    names[i] = g->fi[i].name;
  BinaryenAddActiveElementSegment(m, "wfp$fns", "wfp$funcs", names, (BinaryenIndex)n,
                                  wfp__cg_c32(g, SLOT_FUNC(g, 0)));
  for (int i = 0; i < n; i++)
    names[i] = g->fi[i].thunk;
  BinaryenAddActiveElementSegment(m, "wfp$fns", "wfp$thunks", names, (BinaryenIndex)n,
                                  wfp__cg_c32(g, SLOT_THUNK(g, 0)));
out:
  free(trep);
  free(wrep);
  free(names);
}

/* ---- tables and the functions the runtime imports ---- */

static uint32_t funcs_table(cg *g) {
  const wfp_program *p = g->p;
  wfp__buf b;
  wfp__buf_init(&b);
  uint32_t *params = calloc((size_t)p->nfuncs + 1, sizeof *params);
  if (!params) {
    wfp__cg_fail(g, WFP_ENOMEM, "", "out of memory");
    return 0;
  }
  for (int i = 0; i < p->nfuncs; i++) {
    const wfp_func *f = p->funcs[i];
    int n = f->ncaps + f->nparams;
    uint32_t *pv = calloc((size_t)n * 2 + 2, sizeof *pv);
    if (!pv) {
      wfp__cg_fail(g, WFP_ENOMEM, "", "out of memory");
      break;
    }
    for (int k = 0; k < n; k++) {
      wfp_var *v = k < f->ncaps ? f->caps[k] : f->params[k - f->ncaps];
      pv[2 * k] = wfp__cg_str_obj(g, v->name, strlen(v->name));
      pv[2 * k + 1] = (uint32_t)wfp__cg_vkind(v->type);
    }
    params[i] = wfp__cg_add_data(g, pv, (uint32_t)(n * 2 + 1) * 4, 4);
    free(pv);
  }
  uint32_t nf = (uint32_t)p->nfuncs;
  wfp__buf_add(&b, &nf, 4);
  for (int i = 0; i < p->nfuncs; i++) {
    const wfp_func *f = p->funcs[i];
    /* k: the captures a closure binds; all ones when no closure of the
    ** function exists (the runtime refuses one in state then) */
    uint32_t row[WFP_FUNCS_ROW];
    row[WFP_FUNCS_NAME] = wfp__cg_str_obj(g, f->name, strlen(f->name));
    row[WFP_FUNCS_ID] = wfp__cg_str_obj(g, f->id, strlen(f->id));
    row[WFP_FUNCS_NPARAMS] = (uint32_t)(f->ncaps + f->nparams);
    row[WFP_FUNCS_PARAMS] = params[i];
    row[WFP_FUNCS_K] = g->fi[i].closable ? (uint32_t)g->fi[i].k : NOT_CLOSABLE;
    wfp__buf_add(&b, row, sizeof row);
  }
  free(params);
  uint32_t addr = b.oom ? 0 : wfp__cg_add_data(g, b.data, (uint32_t)b.len, 4);
  if (b.oom)
    wfp__cg_fail(g, WFP_ENOMEM, "", "out of memory");
  wfp__buf_free(&b);
  return addr;
}

static uint32_t layout_table(cg *g) {
  const wfp_program *p = g->p;
  wfp__buf b;
  wfp__buf_init(&b);
  uint32_t nf = (uint32_t)p->nfuncs, first = 0;
  wfp__buf_add(&b, &nf, 4);
  for (int i = 0; i < p->nfuncs; i++) {
    uint32_t row[WFP_LAYOUT_FN_ROW];
    row[WFP_LAYOUT_FIRST] = first;
    row[WFP_LAYOUT_NPOINTS] = (uint32_t)g->fi[i].npoints;
    wfp__buf_add(&b, row, sizeof row);
    first += (uint32_t)g->fi[i].npoints;
  }
  for (int i = 0; i < p->nfuncs; i++) {
    fninfo *fi = &g->fi[i];
    for (int k = 0; k < fi->npoints; k++) {
      uint32_t types = wfp__cg_add_data(g, fi->pt_types[k], (uint32_t)fi->pt_nvals[k] + 1, 1);
      uint32_t row[WFP_LAYOUT_POINT_ROW];
      row[WFP_POINT_CALLEE] = fi->pt_callee[k];
      row[WFP_POINT_NVALS] = (uint32_t)fi->pt_nvals[k];
      row[WFP_POINT_TYPES] = types;
      wfp__buf_add(&b, row, sizeof row);
    }
  }
  uint32_t addr = b.oom ? 0 : wfp__cg_add_data(g, b.data, (uint32_t)b.len, 4);
  if (b.oom)
    wfp__cg_fail(g, WFP_ENOMEM, "", "out of memory");
  wfp__buf_free(&b);
  return addr;
}

/* The function wfp.run(fn, resuming): an indirect call of thunk fn
** through the table. Not a br_table over the thunks: that nests one block
** per function (wasm2c and the optimizer's passes recurse on nesting, and
** the optimizer inlines every thunk into it, one function as large as the
** program for the C compiler). The runtime passes only valid indexes. */
static BinaryenExpressionRef run_body(cg *g) {
  BinaryenModuleRef m = g->m;
  if (g->nf == 0)
    return BinaryenUnreachable(m);
  BinaryenExpressionRef args[2] = {BinaryenLocalGet(m, 0, I32), BinaryenLocalGet(m, 1, I32)};
  BinaryenExpressionRef slot = BinaryenBinary(m, BinaryenAddInt32(), BinaryenLocalGet(m, 0, I32),
                                              wfp__cg_c32(g, SLOT_THUNK(g, 0)));
  BinaryenType two[2] = {I32, I32};
  return BinaryenCallIndirect(m, "wfp$fns", slot, args, 2, BinaryenTypeCreate(two, 2), NONE);
}

static void define_import(cg *g, const char *base, BinaryenType params,
                          BinaryenType results, BinaryenType *vars, int nvars,
                          BinaryenExpressionRef body) {
  BinaryenModuleRef m = g->m;
  for (BinaryenIndex i = 0; i < BinaryenGetNumFunctions(m); i++) {
    BinaryenFunctionRef fn = BinaryenGetFunctionByIndex(m, i);
    const char *mod = BinaryenFunctionImportGetModule(fn);
    if (!mod || strcmp(mod, "wfp") != 0 ||
        strcmp(BinaryenFunctionImportGetBase(fn), base) != 0)
      continue;
    char name[64];
    snprintf(name, sizeof name, "%s", BinaryenFunctionGetName(fn));
    BinaryenRemoveFunction(m, name);
    BinaryenAddFunction(m, name, params, results, vars, (BinaryenIndex)nvars, body);
    return;
  }
  /* the runtime may not need it: nothing to define */
}

/* ---- the module ---- */

/* The list of wfp/abi.h, as data. */
static const struct {
  const char *name, *params, *result;
} rt_list[WFP_RT_COUNT] = {
#define RT_ROW(N, n, p, r) {#n, p, r},
    WFP_RT_FUNCTIONS(RT_ROW)
#undef RT_ROW
};

/* Is wasm type t (a tuple, or none) the one the letters spell? */
static bool sig_is(BinaryenType t, const char *letters) {
  BinaryenIndex n = BinaryenTypeArity(t);
  if (t == BinaryenTypeNone())
    n = 0;
  if (n != strlen(letters) || n > 8)
    return false;
  BinaryenType v[8];
  if (n)
    BinaryenTypeExpand(t, v);
  for (BinaryenIndex i = 0; i < n; i++)
    if (v[i] != (letters[i] == 'I' ? BinaryenTypeInt64() : BinaryenTypeInt32()))
      return false;
  return true;
}

static int setup(cg *g) {
  BinaryenModuleRef m = g->m;
  /* the runtime's functions that codegen calls (WFP_RT_FUNCTIONS of
  ** wfp/abi.h), each checked against the signature listed there */
  uint32_t heap_base = 0;
  BinaryenIndex ne = BinaryenGetNumExports(m);
  for (BinaryenIndex i = 0; i < ne; i++) {
    BinaryenExportRef e = BinaryenGetExportByIndex(m, i);
    const char *name = BinaryenExportGetName(e);
    if (BinaryenExportGetKind(e) == BinaryenExternalFunction() &&
        strncmp(name, "rt_", 3) == 0) {
      for (int f = 0; f < WFP_RT_COUNT; f++)
        if (strcmp(name + 3, rt_list[f].name) == 0)
          g->rt_int[f] = BinaryenExportGetValue(e);
    } else if (BinaryenExportGetKind(e) == BinaryenExternalGlobal() &&
               strcmp(name, "__heap_base") == 0) {
      BinaryenGlobalRef gl = BinaryenGetGlobal(m, BinaryenExportGetValue(e));
      heap_base = (uint32_t)BinaryenConstGetValueI32(BinaryenGlobalGetInitExpr(gl));
    }
  }
  for (int f = 0; f < WFP_RT_COUNT; f++) {
    BinaryenFunctionRef fn = g->rt_int[f] ? BinaryenGetFunction(m, g->rt_int[f]) : NULL;
    if (!fn || !sig_is(BinaryenFunctionGetParams(fn), rt_list[f].params) ||
        !sig_is(BinaryenFunctionGetResults(fn), rt_list[f].result)) {
      wfp__cg_fail(g, WFP_EINTERNAL, "",
                   "internal error: the guest runtime %s rt_%s(%s) -> (%s) of wfp/abi.h",
                   fn ? "does not match" : "does not export", rt_list[f].name,
                   rt_list[f].params, rt_list[f].result);
      return WFP_EINTERNAL;
    }
  }
  if (!heap_base) {
    wfp__cg_fail(g, WFP_EINTERNAL, "", "internal error: the guest runtime has no heap base");
    return WFP_EINTERNAL;
  }
  g->data_top = g->data_base = (heap_base + 15u) & ~15u;
  BinaryenAddGlobal(m, G_UNWIND, I32, true, wfp__cg_c32(g, (int32_t)WFP_UNWIND_NONE));
  BinaryenAddGlobal(m, G_RESUMING, I32, true, wfp__cg_c32(g, 0));
  BinaryenAddGlobal(m, G_NOVALUE, I32, true, wfp__cg_c32(g, 0));
  BinaryenAddGlobal(m, G_FUEL, I64, true, wfp__cg_c64(g, 0));
  return WFP_OK;
}

/* Sets the memory's size and adds our data segment. Binaryen 108's
** BinaryenSetMemory keeps the segments the module has (the runtime's) and
** appends the ones given. */
static void finish_memory(cg *g) {
  BinaryenModuleRef m = g->m;
  const char *data[1] = {g->data.data ? g->data.data : ""};
  bool passive[1] = {false};
  BinaryenExpressionRef offs[1] = {wfp__cg_c32(g, (int32_t)g->data_base)};
  BinaryenIndex sizes[1] = {(BinaryenIndex)g->data.len};
  /* initial memory: the data plus 64 KiB of arena; at most 256 MiB */
  uint32_t need = ((g->data_top + 15u) & ~15u) + 65536u;
  BinaryenIndex pages = (need + 65535u) / 65536u;
  BinaryenSetMemory(m, pages, MAX_PAGES, NULL, data, passive, offs, sizes,
                    g->data.len ? 1 : 0, false);
}

/* Functions larger than this (IR statements and expressions) get a
** lighter optimization: some of Binaryen's passes take time quadratic in
** a function's size (effects of nested trees, branch targets of nested
** blocks), and the C compiler optimizes the function again anyway. */
#define LARGE_FUNCTION 2000

/* The names of the guest runtime's own functions (not its imports), in
** strcmp order: which functions of the module are not the program's. */
typedef struct rt_set {
  char **names;
  size_t n;
} rt_set;

static bool imported(BinaryenFunctionRef fn) {
  const char *mod = BinaryenFunctionImportGetModule(fn);
  return mod && *mod;
}

static int cmp_name(const void *x, const void *y) {
  return strcmp(*(char *const *)x, *(char *const *)y);
}

static bool rt_has(const rt_set *r, const char *name) {
  return r->n && bsearch(&name, r->names, r->n, sizeof *r->names, cmp_name) != NULL;
}

static void rt_set_free(rt_set *r) {
  for (size_t i = 0; i < r->n; i++)
    free(r->names[i]);
  free(r->names);
  r->names = NULL;
  r->n = 0;
}

static int rt_set_make(rt_set *r, BinaryenModuleRef m) {
  BinaryenIndex nf = BinaryenGetNumFunctions(m);
  r->names = calloc(nf + 1, sizeof *r->names);
  if (!r->names)
    return WFP_ENOMEM;
  for (BinaryenIndex i = 0; i < nf; i++) {
    BinaryenFunctionRef fn = BinaryenGetFunctionByIndex(m, i);
    if (imported(fn))
      continue;
    const char *name = BinaryenFunctionGetName(fn);
    size_t k = strlen(name) + 1;
    if (!(r->names[r->n] = malloc(k)))
      return WFP_ENOMEM;
    memcpy(r->names[r->n++], name, k);
  }
  qsort(r->names, r->n, sizeof *r->names, cmp_name);
  return WFP_OK;
}

/* True when fn is a program function of more than LARGE_FUNCTION nodes */
static bool is_large(cg *g, const char *name) {
  char *end;
  if (name[0] != 'f' || name[1] < '0' || name[1] > '9')
    return false;
  long i = strtol(name + 1, &end, 10);
  return !*end && i >= 0 && i < g->nf && g->fi[i].size > LARGE_FUNCTION;
}

/* Optimizes the module: each function the program added on its own (the
** large ones by passes linear in their size), then the module as a whole:
** inlining, which optimizes again the functions it inlined into unless the
** program has large ones. The runtime's own functions are not optimized
** on their own: clang made them, the C compiler optimizes them anyway,
** and re-optimizing them with every program was most of codegen's time
** (the step's instructions differ by 0.3 %, bench/README.md). */
static void optimize(cg *g, int level, const rt_set *rt) {
  BinaryenModuleRef m = g->m;
  if (level == 0) {
    static const char *dce[] = {"remove-unused-module-elements"};
    BinaryenModuleRunPasses(m, dce, 1);
    return;
  }
  static const char *light[] = {"dce", "remove-unused-names", "vacuum"};
  const char *module[] = {"duplicate-function-elimination", "inlining-optimizing",
                          "remove-unused-module-elements"};
  bool large = false;
  for (BinaryenIndex i = 0; i < BinaryenGetNumFunctions(m); i++) {
    BinaryenFunctionRef fn = BinaryenGetFunctionByIndex(m, i);
    const char *name = BinaryenFunctionGetName(fn);
    if (imported(fn) || rt_has(rt, name))
      continue;
    if (is_large(g, name)) {
      large = true;
      BinaryenFunctionRunPasses(fn, m, light, sizeof light / sizeof *light);
    } else {
      BinaryenFunctionOptimize(fn, m);
    }
  }
  /* a large function inlined into must not meet the full passes again */
  if (large)
    module[1] = "inlining";
  BinaryenModuleRunPasses(m, module, sizeof module / sizeof *module);
}

/* The index of the first function that is not the runtime's, or -1 */
static long first_own(BinaryenModuleRef m, const rt_set *rt) {
  for (BinaryenIndex i = 0; i < BinaryenGetNumFunctions(m); i++)
    if (!rt_has(rt, BinaryenFunctionGetName(BinaryenGetFunctionByIndex(m, i))))
      return (long)i;
  return -1;
}

static void prune_exports(cg *g) {
  static const char *const keep[] = {"memory", "run-step", "cabi_realloc",
                                     "cabi_post_run-step", "resume-step",
                                     "cabi_post_resume-step", "wfp_last_state",
                                     "wfp_fatal_message",
                                     "wfp_set_fuel", "wfp_fuel_used", NULL};
  BinaryenModuleRef m = g->m;
  for (BinaryenIndex i = BinaryenGetNumExports(m); i-- > 0;) {
    const char *name = BinaryenExportGetName(BinaryenGetExportByIndex(m, i));
    bool k = false;
    for (const char *const *q = keep; *q; q++)
      k = k || strcmp(*q, name) == 0;
    if (!k) {
      char copy[128];
      snprintf(copy, sizeof copy, "%s", name);
      BinaryenRemoveExport(m, copy);
    }
  }
}

int wfp_codegen(const wfp_program *p, const wfp_cg_opts *opts,
                unsigned char **wasm, size_t *len, wfp_diag **diag) {
  if (diag)
    *diag = NULL;
  if (!p || !wasm || !len || p->status != WFP_OK)
    return WFP_EINVAL;
  *wasm = NULL;
  *len = 0;
  int level = 2;
  if (opts && opts->size >= sizeof(size_t) + sizeof(int) && opts->opt_level >= 0)
    level = opts->opt_level > 3 ? 3 : opts->opt_level;
  long *own = opts && opts->size >= sizeof *opts ? opts->first_own : NULL;
  rt_set rt = {NULL, 0};
  cg G;
  memset(&G, 0, sizeof G);
  cg *g = &G;
  wfp__buf_init(&g->data);
  g->p = p;
  /* the guest runtime is the module we add the program to */
  char *copy = malloc(wfp__rt_wasm_len);
  if (!copy) {
    wfp__cg_fail(g, WFP_ENOMEM, "", "out of memory");
    goto out;
  }
  memcpy(copy, wfp__rt_wasm, wfp__rt_wasm_len);
  g->m = BinaryenModuleRead(copy, wfp__rt_wasm_len);
  free(copy);
  BinaryenModuleSetFeatures(g->m, BinaryenFeatureMVP() | BinaryenFeatureBulkMemory() |
                                      BinaryenFeatureSignExt() |
                                      BinaryenFeatureMutableGlobals());
  if (rt_set_make(&rt, g->m)) {
    wfp__cg_fail(g, WFP_ENOMEM, "", "out of memory");
    goto out;
  }
  g->nf = p->nfuncs;
  g->fi = calloc((size_t)p->nfuncs + 1, sizeof *g->fi);
  if (!g->fi || setup(g)) {
    if (!g->rc)
      wfp__cg_fail(g, WFP_ENOMEM, "", "out of memory");
    goto out;
  }
  /* what the runtime asks of the program (wfp.hash, wfp.heap_start,
  ** wfp.funcs, wfp.layout, wfp.entry) is read from data at one address, the
  ** same in every program of this runtime, not returned as constants: the
  ** optimizer would fold them into the runtime's own functions, whose C
  ** would then differ from program to program and miss wfp-aot's cache */
  static const char zeros[WFP_INFO_SIZE] = {0};
  uint32_t info = wfp__cg_add_data(g, zeros, sizeof zeros, 8);
  for (int i = 0; i < p->nfuncs; i++) {
    snprintf(g->fi[i].name, sizeof g->fi[i].name, "f%d", i);
    g->fi[i].ret = wfp__cg_wasm_type(p->funcs[i]->ret);
    /* lifted IR read back lists its captures as leading params */
    g->fi[i].k = p->funcs[i]->ncaps ? p->funcs[i]->ncaps : p->funcs[i]->meta_ncaptures;
  }
  wfp__cg_analyze(g);
  for (int i = 0; i < p->nfuncs && !g->rc; i++)
    build_function(g, i);
  if (!g->rc)
    build_entries(g);
  if (g->rc)
    goto out;
  /* what the runtime imports */
  uint32_t funcs = funcs_table(g);
  uint32_t layout = layout_table(g);
  uint64_t hash = strtoull(p->hash, NULL, 16);
  int32_t entry = p->entry ? p->entry->index : -1;
  g->data_top = (g->data_top + 15u) & ~15u;
  uint32_t heap = g->data_top;
  BinaryenModuleRef m = g->m;
  if (g->rc)
    goto out;
  char *at = g->data.data + (info - g->data_base);
  uint32_t words[4] = {heap, funcs, layout, (uint32_t)entry};
  memcpy(at + WFP_INFO_HASH, &hash, 8);
  memcpy(at + WFP_INFO_HEAP, words, sizeof words); /* heap, funcs, layout, entry */
  define_import(g, "hash", NONE, I64, NULL, 0,
                BinaryenLoad(m, 8, false, WFP_INFO_HASH, 8, I64, wfp__cg_c32(g, (int32_t)info)));
  define_import(g, "heap_start", NONE, I32, NULL, 0,
                BinaryenLoad(m, 4, false, WFP_INFO_HEAP, 4, I32, wfp__cg_c32(g, (int32_t)info)));
  define_import(g, "funcs", NONE, I32, NULL, 0,
                BinaryenLoad(m, 4, false, WFP_INFO_FUNCS, 4, I32, wfp__cg_c32(g, (int32_t)info)));
  define_import(g, "layout", NONE, I32, NULL, 0,
                BinaryenLoad(m, 4, false, WFP_INFO_LAYOUT, 4, I32, wfp__cg_c32(g, (int32_t)info)));
  define_import(g, "entry", NONE, I32, NULL, 0,
                BinaryenLoad(m, 4, false, WFP_INFO_ENTRY, 4, I32, wfp__cg_c32(g, (int32_t)info)));
  define_import(g, "get_unwind", NONE, I32, NULL, 0, wfp__cg_gget(g, G_UNWIND));
  define_import(g, "set_unwind", I32, NONE, NULL, 0,
                BinaryenGlobalSet(m, G_UNWIND, BinaryenLocalGet(m, 0, I32)));
  define_import(g, "set_resuming", I32, NONE, NULL, 0,
                BinaryenGlobalSet(m, G_RESUMING, BinaryenLocalGet(m, 0, I32)));
  define_import(g, "get_fuel", NONE, I64, NULL, 0, BinaryenGlobalGet(m, G_FUEL, I64));
  define_import(g, "set_fuel", I64, NONE, NULL, 0,
                BinaryenGlobalSet(m, G_FUEL, BinaryenLocalGet(m, 0, I64)));
  BinaryenType two[2] = {I32, I32};
  define_import(g, "run", BinaryenTypeCreate(two, 2), NONE, NULL, 0, run_body(g));
  if (g->rc)
    goto out;
  finish_memory(g);
  prune_exports(g);
  if (g->rc)
    goto out;
  if (!BinaryenModuleValidate(m)) {
    wfp__cg_fail(g, WFP_EINTERNAL, "",
            "internal error: the generated module is not valid WebAssembly "
            "(a wfp bug; please report it with the program)");
    goto out;
  }
  BinaryenSetOptimizeLevel(level);
  BinaryenSetShrinkLevel(0);
  optimize(g, level, &rt);
  if (own)
    *own = first_own(m, &rt);
  BinaryenModuleAllocateAndWriteResult w = BinaryenModuleAllocateAndWrite(m, NULL);
  free(w.sourceMap);
  *wasm = malloc(w.binaryBytes ? w.binaryBytes : 1);
  if (!*wasm) {
    free(w.binary);
    wfp__cg_fail(g, WFP_ENOMEM, "", "out of memory");
    goto out;
  }
  memcpy(*wasm, w.binary, w.binaryBytes);
  *len = w.binaryBytes;
  free(w.binary);
out:
  rt_set_free(&rt);
  if (g->m)
    BinaryenModuleDispose(g->m);
  for (int i = 0; g->fi && i < g->nf; i++) {
    for (int k = 0; k < g->fi[i].npoints; k++)
      free(g->fi[i].pt_types[k]);
    free(g->fi[i].pt_types);
    free(g->fi[i].pt_callee);
    free(g->fi[i].pt_nvals);
  }
  free(g->fi);
  wfp__buf_free(&g->data);
  free(g->lits);
  free(g->lit_slot);
  if (g->rc && diag)
    *diag = make_diag(g);
  free(g->fail_msg);
  return g->rc;
}
