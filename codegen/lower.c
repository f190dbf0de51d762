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
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <binaryen-c.h>

#include "codegen_int.h"

/* ---- the module being built ---- */

typedef struct lit {
  uint32_t addr; /* of the str object: its bytes are at addr + 4 */
  uint32_t n;
} lit;

typedef struct fninfo {
  bool may_suspend; /* can return with the suspend signal */
  bool may_unwind;  /* can return with the suspend or the trap signal */
  bool direct_effect, direct_trap;
  bool has_loop, has_call; /* fuel: both consume it, and may yield */
  bool has_call_ref;       /* a call of a fn value: it may do anything */
  bool closable;           /* some fn value or lambda names it: it has a wrapper */
  int k;                   /* the captures a closure of it binds */
  int size;                /* statements and expressions of its body */
  char wrapper[32];
  char name[32]; /* Wasm function name */
  char thunk[32];
  BinaryenType ret;
  /* resume points, recorded while lowering, for the state layout table */
  int npoints;
  uint32_t *pt_callee;
  int *pt_nvals;
  uint8_t **pt_types;
} fninfo;

typedef struct cg {
  BinaryenModuleRef m;
  const wfp_program *p;
  int rc;
  /* the first failure: where (borrowed from the program, or "") and what */
  const char *fail_path;
  char *fail_msg;
  fninfo *fi;
  int nf;
  /* data appended after the runtime's: one segment, from data_base to
  ** data_top (one per literal would make wasm2c and the C compiler slow) */
  wfp__buf data;
  uint32_t data_base, data_top;
  lit *lits;
  int nlits, lits_cap;
  int *lit_slot; /* open addressing over lits: index + 1, 0 when free */
  int lit_slots; /* a power of two, at least twice nlits */
  /* runtime functions (internal names), by export name */
  const char **rt_names;
  const char **rt_int;
  int nrt;
  uint32_t ret_kinds; /* data: each function's result type (call_ref_check) */
} cg;

/* the callee of a resume point that is not a call (the layout table's
** encoding, read by the guest runtime): an effect, or a call_ref whose
** callee is known only at run time */
#define POINT_EFFECT 0xFFFFFFFFu
#define POINT_DYNAMIC 0xFFFFFFFEu
/* the k of a function no fn value names, in the function table */
#define NOT_CLOSABLE 0xFFFFFFFFu

/* the most linear memory a module may grow to (64 KiB pages): 256 MiB */
#define MAX_PAGES 4096u

#define I32 BinaryenTypeInt32()
#define I64 BinaryenTypeInt64()
#define NONE BinaryenTypeNone()

static void cg_fail(cg *g, int code, const char *path, const char *fmt, ...)
    WFP__PRINTF(4, 5);
static void cg_fail(cg *g, int code, const char *path, const char *fmt, ...) {
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

static const char *rt(cg *g, const char *name) {
  for (int i = 0; i < g->nrt; i++)
    if (strcmp(g->rt_names[i], name) == 0)
      return g->rt_int[i];
  cg_fail(g, WFP_EINTERNAL, "", "internal error: runtime function %s missing",
          name);
  return "missing";
}

static BinaryenExpressionRef c32(cg *g, int32_t v) {
  return BinaryenConst(g->m, BinaryenLiteralInt32(v));
}
static BinaryenExpressionRef c64(cg *g, int64_t v) {
  return BinaryenConst(g->m, BinaryenLiteralInt64(v));
}

static BinaryenExpressionRef call(cg *g, const char *rtname,
                                  BinaryenExpressionRef *args, int n,
                                  BinaryenType ret) {
  return BinaryenCall(g->m, rt(g, rtname), args, (BinaryenIndex)n, ret);
}
static BinaryenExpressionRef call0(cg *g, const char *f, BinaryenType ret) {
  return call(g, f, NULL, 0, ret);
}
static BinaryenExpressionRef call1(cg *g, const char *f, BinaryenExpressionRef a,
                                   BinaryenType ret) {
  return call(g, f, &a, 1, ret);
}
static BinaryenExpressionRef call2(cg *g, const char *f, BinaryenExpressionRef a,
                                   BinaryenExpressionRef b, BinaryenType ret) {
  BinaryenExpressionRef v[2] = {a, b};
  return call(g, f, v, 2, ret);
}

#define G_UNWIND "wfp$unwind"
#define G_RESUMING "wfp$resuming"
#define G_NOVALUE "wfp$novalue"
#define G_FUEL "wfp$fuel"

static BinaryenExpressionRef gget(cg *g, const char *name) {
  return BinaryenGlobalGet(g->m, name, I32);
}

/* ---- data ---- */

static uint32_t add_data(cg *g, const void *bytes, uint32_t n, uint32_t align) {
  uint32_t addr = (g->data_top + align - 1) & ~(align - 1);
  if ((uint64_t)addr + n + 65536u > (uint64_t)MAX_PAGES * 65536u) {
    cg_fail(g, WFP_ELIMIT, "",
            "the program's constant data (its literals, names and tables) does "
            "not fit the module's memory of %u MiB",
            MAX_PAGES / 16u);
    return 0;
  }
  static const char pad[16] = {0};
  wfp__buf_add(&g->data, pad, addr - g->data_top);
  wfp__buf_add(&g->data, bytes, n);
  if (g->data.oom) {
    cg_fail(g, WFP_ENOMEM, "", "out of memory");
    return 0;
  }
  g->data_top = addr + n;
  return addr;
}

/* The bytes of data at addr (valid until the next add_data). */
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
static uint32_t str_obj(cg *g, const char *s, size_t n) {
  if (!lit_room(g)) {
    cg_fail(g, WFP_ENOMEM, "", "out of memory");
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
    cg_fail(g, WFP_ENOMEM, "", "out of memory");
    return 0;
  }
  uint32_t len = (uint32_t)n;
  memcpy(buf, &len, 4);
  if (n)
    memcpy(buf + 4, s, n);
  uint32_t addr = add_data(g, buf, (uint32_t)(4 + n), 4);
  free(buf);
  if (g->rc)
    return addr;
  if (g->nlits == g->lits_cap) {
    int cap = g->lits_cap ? g->lits_cap * 2 : 64;
    lit *nl = realloc(g->lits, sizeof *nl * (size_t)cap);
    if (!nl) {
      cg_fail(g, WFP_ENOMEM, "", "out of memory");
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
static uint32_t path_obj(cg *g, const wfp_expr *e) {
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
  uint32_t addr = b.oom ? 0 : add_data(g, b.data, (uint32_t)b.len, 4);
  if (b.oom)
    cg_fail(g, WFP_ENOMEM, "", "out of memory");
  wfp__buf_free(&b);
  return addr;
}

/* ---- types ---- */

static wfp_tkind kind_of(wfp_type *t) {
  t = wfp__type_find(t);
  return t ? t->kind : WFP_T_ERROR;
}

static BinaryenType wasm_type(wfp_type *t) {
  switch (kind_of(t)) {
  case WFP_T_I64:
    return I64;
  case WFP_T_VOID:
    return NONE;
  default:
    return I32;
  }
}

/* value kinds of locals: what the state stores for them */
enum { VK_SCRATCH = 0, VK_I64 = 1, VK_STR = 2, VK_JSON = 3, VK_FN = 4 };

static int vkind(wfp_type *t) {
  switch (kind_of(t)) {
  case WFP_T_I64: return VK_I64;
  case WFP_T_STR: return VK_STR;
  case WFP_T_JSON: return VK_JSON;
  case WFP_T_FN: return VK_FN;
  default: return VK_SCRATCH;
  }
}

/* Does the template hold a json hole inside its own arrays or objects? The
** value put there may then nest too deep (rt_sb_json_at traps). */
static bool tpl_nests_json(const wfp_jtpl *t, int level) {
  if (!t)
    return false;
  if (t->kind == WFP_J_HOLE)
    return level > 0 && t->hole && kind_of(t->hole->type) == WFP_T_JSON;
  for (int i = 0; (t->kind == WFP_J_OBJ || t->kind == WFP_J_ARR) && i < t->n; i++)
    if (tpl_nests_json(t->items[i], level + 1))
      return true;
  return false;
}

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
    if (e->a && kind_of(e->a->type) == WFP_T_JSON)
      w->fi->direct_trap = true;
    break;
  case WFP_OP_JSON:
    if (tpl_nests_json(e->tpl, 0))
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

/* Does e call (directly) a function that may suspend (or unwind)? */
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

static void analyze(cg *g) {
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

static bool e_stmts(const cg *g, const wfp_expr *e);

static bool tpl_stmts(const cg *g, const wfp_jtpl *t) {
  if (!t)
    return false;
  if (t->kind == WFP_J_HOLE)
    return e_stmts(g, t->hole);
  for (int i = 0; (t->kind == WFP_J_OBJ || t->kind == WFP_J_ARR) && i < t->n; i++)
    if (tpl_stmts(g, t->items[i]))
      return true;
  return false;
}

/* True when lowering e emits statements (suspension points, unwind checks):
** operands to its left must then be evaluated first, into temporaries. */
static bool e_stmts(const cg *g, const wfp_expr *e) {
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
    if (e->a && kind_of(e->a->type) == WFP_T_JSON)
      return true;
    break;
  case WFP_OP_JSON:
    if (tpl_nests_json(e->tpl, 0))
      return true;
    break;
  case WFP_OP_CALL:
    if (e->target && g->fi[e->target->index].may_unwind)
      return true;
    break;
  default:
    break;
  }
  if (e_stmts(g, e->a) || e_stmts(g, e->b) || tpl_stmts(g, e->tpl))
    return true;
  for (int i = 0; i < e->nargs; i++)
    if (e_stmts(g, e->args[i]))
      return true;
  return false;
}

/* ---- the function builder: a CFG of blocks ---- */

enum { T_OPEN = 0, T_GOTO, T_IF, T_RET, T_SUSPEND, T_CHECK };

typedef struct blk {
  BinaryenExpressionRef *code;
  int n, cap;
  int term;
  int s0, s1; /* successors (GOTO: s0; IF: s0 when true, s1 when false) */
  BinaryenExpressionRef cond;
  int point; /* T_SUSPEND, T_CHECK */
  /* liveness: sorted lists of locals (sparse: a program's size, not
  ** blocks times locals) */
  int *use, *def, *in;
  int nuse, ndef, nin;
} blk;

enum { P_EFFECT, P_CALL };

typedef struct point {
  int kind;
  int block;  /* P_EFFECT: the block that suspends; P_CALL: the check block */
  int resume; /* where a resume enters after restoring */
  int cont;   /* whose live-in set is saved */
  int result; /* local the resumed operation assigns (excluded), or -1 */
  uint32_t callee;
  int *saved;
  int nsaved;
} point;

typedef struct fb {
  cg *g;
  const wfp_func *f;
  fninfo *fi;
  int fidx;
  BinaryenType *lt; /* local types: params first */
  int *lk;          /* local value kinds */
  int nl, lcap;
  int nparams;
  int *var_local; /* f->locals[i] -> Wasm local */
  blk *b;
  int nb, bcap;
  int cur; /* current block, -1 after return/break: code there is dead */
  int loop_head[256], loop_exit[256];
  int nloops;
  point *pts;
  int npts, pcap;
} fb;

/* The builders below give index 0 when out of memory (the arrays exist
** from the start, build_function): lowering goes on harmlessly, and the
** function is dropped (g->rc). */
static int new_local(fb *F, BinaryenType t, int kind) {
  if (F->nl == F->lcap) {
    int cap = F->lcap ? F->lcap * 2 : 32;
    BinaryenType *nt = realloc(F->lt, sizeof *nt * (size_t)cap);
    if (nt)
      F->lt = nt;
    int *nk = nt ? realloc(F->lk, sizeof *nk * (size_t)cap) : NULL;
    if (nk)
      F->lk = nk;
    if (!nt || !nk) {
      cg_fail(F->g, WFP_ENOMEM, "", "out of memory");
      return 0;
    }
    F->lcap = cap;
  }
  F->lt[F->nl] = t;
  F->lk[F->nl] = kind;
  return F->nl++;
}

static int new_block(fb *F) {
  if (F->nb == F->bcap) {
    int cap = F->bcap ? F->bcap * 2 : 32;
    blk *nb = realloc(F->b, sizeof *nb * (size_t)cap);
    if (!nb) {
      cg_fail(F->g, WFP_ENOMEM, "", "out of memory");
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
static void emit(fb *F, BinaryenExpressionRef e) {
  if (!e)
    return;
  if (F->cur < 0)
    F->cur = new_block(F);
  blk *b = &F->b[F->cur];
  if (b->n == b->cap) {
    int cap = b->cap ? b->cap * 2 : 8;
    BinaryenExpressionRef *nc = realloc(b->code, sizeof *nc * (size_t)cap);
    if (!nc) {
      cg_fail(F->g, WFP_ENOMEM, "", "out of memory");
      return;
    }
    b->code = nc;
    b->cap = cap;
  }
  b->code[b->n++] = e;
}

static int cur_block(fb *F) {
  if (F->cur < 0)
    F->cur = new_block(F);
  return F->cur;
}

static void end_goto(fb *F, int to) {
  int c = cur_block(F);
  F->b[c].term = T_GOTO;
  F->b[c].s0 = to;
  F->cur = -1;
}

static bool trivial(BinaryenExpressionRef x);

static void end_if(fb *F, BinaryenExpressionRef cond, int t, int e) {
  /* the Relooper treats a branch condition as free of effects: it drops
  ** it when both ways meet (an if with empty arms). A condition that can
  ** trap (a div by zero) must still run, so it runs first, as code. */
  if (!trivial(cond)) {
    BinaryenType ty = BinaryenExpressionGetType(cond);
    int l = new_local(F, ty, VK_SCRATCH); /* read at once, never saved */
    emit(F, BinaryenLocalSet(F->g->m, (BinaryenIndex)l, cond));
    cond = BinaryenLocalGet(F->g->m, (BinaryenIndex)l, ty);
  }
  int c = cur_block(F);
  F->b[c].term = T_IF;
  F->b[c].cond = cond;
  F->b[c].s0 = t;
  F->b[c].s1 = e;
  F->cur = -1;
}

static BinaryenExpressionRef lget(fb *F, int l) {
  return BinaryenLocalGet(F->g->m, (BinaryenIndex)l, F->lt[l]);
}

static BinaryenExpressionRef zero_of(cg *g, BinaryenType t) {
  if (t == I64)
    return c64(g, 0);
  if (t == I32)
    return c32(g, 0);
  return NULL;
}

/* The return that unwinds (suspend or trap): the result does not matter. */
static BinaryenExpressionRef unwind_return(fb *F) {
  return BinaryenReturn(F->g->m, zero_of(F->g, F->fi->ret));
}

/* if (unwinding) return; : after a call that can trap but not suspend */
static BinaryenExpressionRef unwind_check(fb *F) {
  return BinaryenIf(F->g->m, gget(F->g, G_UNWIND), unwind_return(F), NULL);
}

/* A checked runtime call: result in a temporary, then the unwind check. */
static BinaryenExpressionRef checked(fb *F, BinaryenExpressionRef c,
                                     BinaryenType t, int kind) {
  if (t == NONE) {
    emit(F, c);
    emit(F, unwind_check(F));
    return NULL;
  }
  int l = new_local(F, t, kind);
  emit(F, BinaryenLocalSet(F->g->m, (BinaryenIndex)l, c));
  emit(F, unwind_check(F));
  return lget(F, l);
}

static int new_point(fb *F, int kind) {
  if (F->npts == F->pcap) {
    int cap = F->pcap ? F->pcap * 2 : 8;
    point *np = realloc(F->pts, sizeof *np * (size_t)cap);
    if (!np) {
      cg_fail(F->g, WFP_ENOMEM, "", "out of memory");
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
static BinaryenExpressionRef suspend_effect(fb *F, BinaryenExpressionRef record,
                                            const char *reader, BinaryenType t,
                                            int kind) {
  cg *g = F->g;
  emit(F, record);
  int k = new_point(F, P_EFFECT);
  int e = cur_block(F);
  F->b[e].term = T_SUSPEND;
  F->b[e].point = k;
  int r = new_block(F);
  F->pts[k].block = e;
  F->pts[k].resume = r;
  F->pts[k].cont = r;
  F->pts[k].callee = POINT_EFFECT;
  F->cur = r;
  emit(F, call0(g, "rt_resume_done", NONE));
  return checked(F, call0(g, reader, t), t, kind);
}

/* One unit of fuel, then cont. When the step's fuel is spent, yield first
** (a resume point, like an effect's): the step that resumes consumes the
** unit, so a unit is counted once however the work is sliced into steps.
** Ends the current block. */
static void fuel_check(fb *F, int cont) {
  cg *g = F->g;
  BinaryenModuleRef m = g->m;
  int y = new_block(F), take = new_block(F);
  end_if(F, BinaryenBinary(m, BinaryenLeSInt64(), BinaryenGlobalGet(m, G_FUEL, I64), c64(g, 0)),
         y, take);
  F->cur = y;
  suspend_effect(F, call0(g, "rt_eff_yield", NONE), "rt_res_none", NONE, 0);
  end_goto(F, take);
  F->cur = take;
  emit(F, BinaryenGlobalSet(m, G_FUEL,
                            BinaryenBinary(m, BinaryenSubInt64(),
                                           BinaryenGlobalGet(m, G_FUEL, I64), c64(g, 1))));
  end_goto(F, cont);
}

/* ---- expressions ---- */

static BinaryenExpressionRef lower(fb *F, const wfp_expr *e);

static bool trivial(BinaryenExpressionRef x) {
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
    if (e_stmts(F->g, es[j]))
      last = j;
  for (int i = 0; i < n; i++) {
    out[i] = lower(F, es[i]);
    if (i < last && out[i] && !trivial(out[i])) {
      int l = new_local(F, wasm_type(es[i]->type), vkind(es[i]->type));
      emit(F, BinaryenLocalSet(F->g->m, (BinaryenIndex)l, out[i]));
      out[i] = lget(F, l);
    }
  }
}

static BinaryenExpressionRef to_bool(cg *g, BinaryenExpressionRef i32) {
  return BinaryenUnary(g->m, BinaryenExtendUInt32(), i32);
}

static BinaryenExpressionRef nonzero(cg *g, BinaryenExpressionRef i64) {
  return BinaryenBinary(g->m, BinaryenNeInt64(), i64, c64(g, 0));
}

/* Appends the value v of IR type t to builder sbl, as JSON (json=true) or
** as concat text. */
static BinaryenExpressionRef sb_add(fb *F, int sbl, BinaryenExpressionRef v,
                                    wfp_type *t, bool json) {
  cg *g = F->g;
  const char *f;
  switch (kind_of(t)) {
  case WFP_T_I64: f = "rt_sb_i64"; break;
  case WFP_T_STR: f = json ? "rt_sb_jstr" : "rt_sb_str"; break;
  default: f = "rt_sb_json"; break;
  }
  return call2(g, f, lget(F, sbl), v, NONE);
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
    cg_fail(g, WFP_ENOMEM, "", "out of memory");
    for (int i = 0; i < fs.n; i++)
      wfp__buf_free(&fs.v[i].text);
    free(fs.v);
    return c32(g, 0);
  }
  int nh = 0;
  for (int i = 0; i < fs.n; i++)
    nh += fs.v[i].hole != NULL;
  BinaryenExpressionRef r;
  if (nh == 0) {
    r = c32(g, (int32_t)str_obj(g, fs.n ? fs.v[0].text.data : "null",
                                fs.n ? fs.v[0].text.len : 4));
  } else {
    wfp_expr **holes = calloc((size_t)nh, sizeof *holes);
    BinaryenExpressionRef *hv = calloc((size_t)nh, sizeof *hv);
    BinaryenExpressionRef *code = calloc((size_t)(3 * fs.n + 3), sizeof *code);
    if (!holes || !hv || !code) {
      free(holes);
      free(hv);
      free(code);
      cg_fail(g, WFP_ENOMEM, "", "out of memory");
      r = c32(g, 0);
    } else {
      int k = 0;
      for (int i = 0; i < fs.n; i++)
        if (fs.v[i].hole)
          holes[k++] = (wfp_expr *)fs.v[i].hole;
      lower_list(F, holes, nh, hv);
      int sbl = new_local(F, I32, VK_SCRATCH);
      int nc = 0;
      code[nc++] = BinaryenLocalSet(g->m, (BinaryenIndex)sbl, call0(g, "rt_sb_new", I32));
      k = 0;
      for (int i = 0; i < fs.n; i++) {
        if (fs.v[i].text.len) {
          uint32_t a = str_obj(g, fs.v[i].text.data, fs.v[i].text.len);
          BinaryenExpressionRef args[3] = {lget(F, sbl), c32(g, (int32_t)(a + 4)),
                                           c32(g, (int32_t)fs.v[i].text.len)};
          code[nc++] = call(g, "rt_sb_raw", args, 3, NONE);
        }
        if (fs.v[i].hole && fs.v[i].level > 0 && kind_of(holes[k]->type) == WFP_T_JSON) {
          /* a json value inside the template's nesting: checked for depth */
          BinaryenExpressionRef args[3] = {lget(F, sbl), hv[k], c32(g, fs.v[i].level)};
          code[nc++] = call(g, "rt_sb_json_at", args, 3, NONE);
          k++;
        } else if (fs.v[i].hole) {
          code[nc++] = sb_add(F, sbl, hv[k], holes[k]->type, true);
          k++;
        }
      }
      code[nc++] = call1(g, "rt_sb_end", lget(F, sbl), I32);
      r = BinaryenBlock(g->m, NULL, code, (BinaryenIndex)nc, I32);
      if (tpl_nests_json(e->tpl, 0))
        r = checked(F, r, I32, VK_JSON);
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
    return c32(g, (int32_t)str_obj(g, "", 0));
  BinaryenExpressionRef *v = calloc((size_t)e->nargs, sizeof *v);
  BinaryenExpressionRef *code = calloc((size_t)e->nargs + 2, sizeof *code);
  if (!v || !code) {
    free(v);
    free(code);
    cg_fail(g, WFP_ENOMEM, "", "out of memory");
    return c32(g, 0);
  }
  lower_list(F, e->args, e->nargs, v);
  int sbl = new_local(F, I32, VK_SCRATCH);
  int nc = 0;
  code[nc++] = BinaryenLocalSet(g->m, (BinaryenIndex)sbl, call0(g, "rt_sb_new", I32));
  for (int i = 0; i < e->nargs; i++)
    code[nc++] = sb_add(F, sbl, v[i], e->args[i]->type, false);
  code[nc++] = call1(g, "rt_sb_end", lget(F, sbl), I32);
  BinaryenExpressionRef r = BinaryenBlock(g->m, NULL, code, (BinaryenIndex)nc, I32);
  free(v);
  free(code);
  return r;
}

/* A value as JSON text (the payload of msg_send, for one). */
static BinaryenExpressionRef as_json_text(fb *F, BinaryenExpressionRef v,
                                          wfp_type *t) {
  cg *g = F->g;
  if (kind_of(t) == WFP_T_JSON)
    return v;
  int sbl = new_local(F, I32, VK_SCRATCH);
  BinaryenExpressionRef code[3] = {
      BinaryenLocalSet(g->m, (BinaryenIndex)sbl, call0(g, "rt_sb_new", I32)),
      sb_add(F, sbl, v, t, true), call1(g, "rt_sb_end", lget(F, sbl), I32)};
  return BinaryenBlock(g->m, NULL, code, 3, I32);
}

static BinaryenExpressionRef lower_logic(fb *F, const wfp_expr *e) {
  cg *g = F->g;
  bool is_and = e->op == WFP_OP_AND;
  BinaryenExpressionRef a = lower(F, e->a);
  if (!e_stmts(g, e->b)) {
    /* the right operand runs only when it decides, as a plain if */
    BinaryenExpressionRef b = to_bool(g, nonzero(g, lower(F, e->b)));
    return is_and ? BinaryenIf(g->m, nonzero(g, a), b, c64(g, 0))
                  : BinaryenIf(g->m, nonzero(g, a), c64(g, 1), b);
  }
  int t = new_local(F, I64, VK_I64);
  emit(F, BinaryenLocalSet(g->m, (BinaryenIndex)t, to_bool(g, nonzero(g, a))));
  int rhs = new_block(F), join = new_block(F);
  BinaryenExpressionRef c = nonzero(g, lget(F, t));
  if (is_and)
    end_if(F, c, rhs, join);
  else
    end_if(F, c, join, rhs);
  F->cur = rhs;
  BinaryenExpressionRef b = lower(F, e->b);
  emit(F, BinaryenLocalSet(g->m, (BinaryenIndex)t, to_bool(g, nonzero(g, b))));
  end_goto(F, join);
  F->cur = join;
  return lget(F, t);
}

/* A call that may suspend: the call c, then a resume point. On a suspend
** signal the frame is saved and the caller unwinds; on resume it runs
** rcall, which calls the same callee again (with dummy arguments: the
** callee restores its own frame), and goes on after the call. callee is
** the function index the next frame must belong to (or POINT_DYNAMIC).
** Returns the result (NULL when none). */
static BinaryenExpressionRef call_point(fb *F, BinaryenExpressionRef c,
                                        BinaryenExpressionRef rcall, BinaryenType rt_,
                                        int vk, uint32_t callee) {
  BinaryenModuleRef m = F->g->m;
  int res = rt_ != NONE ? new_local(F, rt_, vk) : -1;
  emit(F, res >= 0 ? BinaryenLocalSet(m, (BinaryenIndex)res, c) : c);
  int k = new_point(F, P_CALL);
  int chk = new_block(F), rc = new_block(F), cont = new_block(F);
  end_goto(F, chk);
  F->b[chk].term = T_CHECK;
  F->b[chk].point = k;
  F->b[chk].s0 = cont;
  F->cur = rc;
  emit(F, res >= 0 ? BinaryenLocalSet(m, (BinaryenIndex)res, rcall) : rcall);
  end_goto(F, chk);
  F->pts[k].block = chk;
  F->pts[k].resume = rc;
  F->pts[k].cont = cont;
  F->pts[k].result = res;
  F->pts[k].callee = callee;
  F->cur = cont;
  return res >= 0 ? lget(F, res) : NULL;
}

static BinaryenExpressionRef lower_call(fb *F, const wfp_expr *e) {
  cg *g = F->g;
  const wfp_func *t = e->target;
  fninfo *ti = &g->fi[t->index];
  int n = e->ncapargs + e->nargs;
  BinaryenExpressionRef *args = calloc((size_t)n + 1, sizeof *args);
  if (!args) {
    cg_fail(g, WFP_ENOMEM, "", "out of memory");
    return zero_of(g, ti->ret);
  }
  for (int i = 0; i < e->ncapargs; i++)
    args[i] = lget(F, F->var_local[e->capargs[i]->index]);
  lower_list(F, e->args, e->nargs, args + e->ncapargs);
  BinaryenType rt_ = ti->ret;
  BinaryenExpressionRef c = BinaryenCall(g->m, ti->name, args, (BinaryenIndex)n, rt_);
  BinaryenExpressionRef r = NULL;
  if (ti->may_suspend) {
    /* the resume path calls again: the callee restores its own frame */
    BinaryenExpressionRef *zeros = calloc((size_t)n + 1, sizeof *zeros);
    if (!zeros) {
      free(args);
      cg_fail(g, WFP_ENOMEM, "", "out of memory");
      return zero_of(g, rt_);
    }
    for (int i = 0; i < n; i++) {
      BinaryenType at = BinaryenExpressionGetType(args[i]);
      zeros[i] = zero_of(g, at == I64 ? I64 : I32);
    }
    BinaryenExpressionRef rcall = BinaryenCall(g->m, ti->name, zeros, (BinaryenIndex)n, rt_);
    free(zeros);
    r = call_point(F, c, rcall, rt_, vkind(t->ret), (uint32_t)t->index);
  } else if (ti->may_unwind) {
    r = checked(F, c, rt_, vkind(t->ret));
  } else {
    r = c;
    if (rt_ == NONE) {
      emit(F, c);
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
    cg_fail(g, WFP_EUNSUPPORTED, e->path,
            "a fn value binding %d of the %d parameters of '%s' is not "
            "supported by this version of the code generator",
            k, t->nparams, t->name);
    return c32(g, 0);
  }
  BinaryenExpressionRef *v = calloc((size_t)k + 1, sizeof *v);
  BinaryenExpressionRef *code = calloc((size_t)k + 3, sizeof *code);
  if (!v || !code) {
    free(v);
    free(code);
    cg_fail(g, WFP_ENOMEM, "", "out of memory");
    return c32(g, 0);
  }
  if (e->op == WFP_OP_FN && e->nbound)
    lower_list(F, e->bound, e->nbound, v);
  else
    for (int j = 0; j < k; j++)
      v[j] = lget(F, F->var_local[e->capargs[j]->index]);
  int cl = new_local(F, I32, VK_SCRATCH);
  int n = 0;
  code[n++] = BinaryenLocalSet(
      m, (BinaryenIndex)cl,
      call2(g, "rt_closure_new", c32(g, t->index), c32(g, k), I32));
  for (int j = 0; j < k; j++) {
    BinaryenType vt = BinaryenExpressionGetType(v[j]);
    code[n++] = BinaryenStore(m, vt == I64 ? 8 : 4, (uint32_t)(8 + 8 * j), 4,
                              lget(F, cl), v[j], vt == I64 ? I64 : I32);
  }
  code[n++] = lget(F, cl);
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
    if (!trivial(v[i])) {
      int l = new_local(F, wasm_type(e->args[i - 1]->type), vkind(e->args[i - 1]->type));
      emit(F, BinaryenLocalSet(m, (BinaryenIndex)l, v[i]));
      v[i] = lget(F, l);
    }
  /* each function's result type, once per module */
  if (!g->ret_kinds) {
    uint32_t *rk = calloc((size_t)g->nf + 1, sizeof *rk);
    if (!rk) {
      cg_fail(g, WFP_ENOMEM, "", "out of memory");
      return;
    }
    for (int i = 0; i < g->nf; i++)
      rk[i] = (uint32_t)vkind(g->p->funcs[i]->ret);
    g->ret_kinds = add_data(g, rk, (uint32_t)g->nf * 4, 4);
    free(rk);
  }
  /* this call's signature: n, the argument types, the result type */
  uint32_t *sig = calloc((size_t)e->nargs + 2, sizeof *sig);
  if (!sig) {
    cg_fail(g, WFP_ENOMEM, "", "out of memory");
    return;
  }
  sig[0] = (uint32_t)e->nargs;
  for (int i = 0; i < e->nargs; i++)
    sig[1 + i] = (uint32_t)vkind(e->args[i]->type);
  sig[1 + e->nargs] = (uint32_t)vkind(e->type);
  uint32_t addr = add_data(g, sig, (uint32_t)(e->nargs + 2) * 4, 4);
  free(sig);
  BinaryenExpressionRef a[3] = {BinaryenExpressionCopy(clo, m), c32(g, (int32_t)addr),
                                c32(g, (int32_t)g->ret_kinds)};
  checked(F, call(g, "rt_call_ref_check", a, 3, NONE), NONE, 0);
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
    cg_fail(g, WFP_ENOMEM, "", "out of memory");
    return zero_of(g, wasm_type(e->type));
  }
  ops[0] = e->a;
  for (int i = 0; i < e->nargs; i++)
    ops[i + 1] = e->args[i];
  lower_list(F, ops, n, v);
  /* the closure is read twice (its function, then as the argument) */
  BinaryenExpressionRef clo;
  if (trivial(v[0])) {
    clo = BinaryenExpressionCopy(v[0], m);
  } else {
    int cl = new_local(F, I32, VK_FN);
    emit(F, BinaryenLocalSet(m, (BinaryenIndex)cl, v[0]));
    v[0] = lget(F, cl);
    clo = lget(F, cl);
  }
  for (int i = 0; i < n; i++) {
    pt[i] = i == 0 ? I32 : wasm_type(e->args[i - 1]->type);
    zeros[i] = zero_of(g, pt[i]);
  }
  call_ref_check(F, e, clo, v);
  BinaryenType params = BinaryenTypeCreate(pt, (BinaryenIndex)n);
  BinaryenType rt_ = wasm_type(e->type);
  BinaryenExpressionRef target = BinaryenLoad(m, 4, false, 0, 4, I32, clo);
  BinaryenExpressionRef c =
      BinaryenCallIndirect(m, "wfp$fns", target, v, (BinaryenIndex)n, params, rt_);
  BinaryenExpressionRef rcall = BinaryenCallIndirect(
      m, "wfp$fns", call0(g, "rt_fr_peek_fn", I32), zeros, (BinaryenIndex)n, params, rt_);
  BinaryenExpressionRef r = call_point(F, c, rcall, rt_, vkind(e->type), POINT_DYNAMIC);
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
    cg_fail(g, WFP_ENOMEM, "", "out of memory");
    return c32(g, 0);
  }
  for (int i = 0; i < e->nargs; i++)
    ops[i] = e->args[i];
  if (e->each)
    ops[e->nargs] = e->each;
  lower_list(F, ops, n, v);
  int sbl = new_local(F, I32, VK_SCRATCH);
  int nc = 0;
  code[nc++] = BinaryenLocalSet(m, (BinaryenIndex)sbl, call0(g, "rt_sb_new", I32));
  for (int i = 0; i < e->nargs; i++) {
    const char *sep = i ? "," : "[";
    uint32_t a = str_obj(g, sep, 1);
    BinaryenExpressionRef args[3] = {lget(F, sbl), c32(g, (int32_t)(a + 4)), c32(g, 1)};
    code[nc++] = call(g, "rt_sb_raw", args, 3, NONE);
    code[nc++] = sb_add(F, sbl, v[i], e->args[i]->type, true);
  }
  uint32_t close = e->nargs ? str_obj(g, "]", 1) : str_obj(g, "[]", 2);
  BinaryenExpressionRef cargs[3] = {lget(F, sbl), c32(g, (int32_t)(close + 4)),
                                    c32(g, e->nargs ? 1 : 2)};
  code[nc++] = call(g, "rt_sb_raw", cargs, 3, NONE);
  code[nc++] = call1(g, "rt_sb_end", lget(F, sbl), I32);
  BinaryenExpressionRef params = BinaryenBlock(m, NULL, code, (BinaryenIndex)nc, I32);
  BinaryenExpressionRef each =
      e->each ? call1(g, "rt_closure_json", v[e->nargs], I32) : c32(g, 0);
  BinaryenExpressionRef sql = c32(g, (int32_t)str_obj(g, e->str, e->slen));
  BinaryenExpressionRef eargs[3] = {sql, params, each};
  free(ops), free(v), free(code);
  return suspend_effect(F, call(g, "rt_eff_db", eargs, 3, NONE), "rt_res_rows", I32,
                        VK_JSON);
}

static BinaryenExpressionRef lower(fb *F, const wfp_expr *e) {
  cg *g = F->g;
  BinaryenModuleRef m = g->m;
  if (g->rc)
    return zero_of(g, wasm_type(e->type));
  switch (e->op) {
  case WFP_OP_LIT_I64:
    return c64(g, e->ival);
  case WFP_OP_LIT_STR:
  case WFP_OP_LIT_JSON:
    return c32(g, (int32_t)str_obj(g, e->str, e->slen));
  case WFP_OP_VAR:
    return lget(F, F->var_local[e->var->index]);
  case WFP_OP_ADD: case WFP_OP_SUB: case WFP_OP_MUL: case WFP_OP_DIV:
  case WFP_OP_REM: case WFP_OP_BAND: case WFP_OP_BOR: case WFP_OP_BXOR:
  case WFP_OP_SHL: case WFP_OP_SHR: case WFP_OP_LT: case WFP_OP_LE:
  case WFP_OP_GT: case WFP_OP_GE: case WFP_OP_EQ: case WFP_OP_NE: {
    wfp_expr *ops[2] = {e->a, e->b};
    BinaryenExpressionRef v[2];
    lower_list(F, ops, 2, v);
    bool str = (e->op == WFP_OP_EQ || e->op == WFP_OP_NE) &&
               kind_of(e->a->type) == WFP_T_STR;
    if (str) {
      BinaryenExpressionRef eq = call2(g, "rt_str_eq", v[0], v[1], I32);
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
    return BinaryenBinary(m, BinaryenSubInt64(), c64(g, 0), lower(F, e->a));
  case WFP_OP_NOT:
    return to_bool(g, BinaryenUnary(m, BinaryenEqZInt64(), lower(F, e->a)));
  case WFP_OP_AND:
  case WFP_OP_OR:
    return lower_logic(F, e);
  case WFP_OP_CONCAT:
    return lower_concat(F, e);
  case WFP_OP_LEN: {
    BinaryenExpressionRef a = lower(F, e->a);
    if (kind_of(e->a->type) == WFP_T_STR)
      return BinaryenUnary(m, BinaryenExtendUInt32(),
                           BinaryenLoad(m, 4, false, 0, 4, I32, a));
    return checked(F, call1(g, "rt_json_len", a, I64), I64, VK_I64);
  }
  case WFP_OP_JSON:
    return lower_json(F, e);
  case WFP_OP_INPUT:
    return checked(F, call0(g, "rt_input", I32), I32, VK_JSON);
  case WFP_OP_GET_I64:
  case WFP_OP_GET_STR:
  case WFP_OP_GET_JSON: {
    BinaryenExpressionRef a = lower(F, e->a);
    BinaryenExpressionRef path = c32(g, (int32_t)path_obj(g, e));
    const char *f = e->op == WFP_OP_GET_I64   ? "rt_get_i64"
                    : e->op == WFP_OP_GET_STR ? "rt_get_str"
                                             : "rt_get_json";
    BinaryenType t = e->op == WFP_OP_GET_I64 ? I64 : I32;
    return checked(F, call2(g, f, a, path, t), t, vkind(e->type));
  }
  case WFP_OP_CALL:
    return lower_call(F, e);
  case WFP_OP_CTX_GET_I64: {
    BinaryenExpressionRef key = c32(g, (int32_t)str_obj(g, e->str, e->slen));
    return suspend_effect(F, call1(g, "rt_eff_ctx_get", key, NONE), "rt_res_i64",
                          I64, VK_I64);
  }
  case WFP_OP_CTX_SET_I64: {
    BinaryenExpressionRef v = lower(F, e->a);
    BinaryenExpressionRef key = c32(g, (int32_t)str_obj(g, e->str, e->slen));
    return suspend_effect(F, call2(g, "rt_eff_ctx_set", key, v, NONE),
                          "rt_res_none", NONE, 0);
  }
  case WFP_OP_MSG_SEND: {
    BinaryenExpressionRef v = as_json_text(F, lower(F, e->a), e->a->type);
    BinaryenExpressionRef topic = c32(g, (int32_t)str_obj(g, e->str, e->slen));
    return suspend_effect(F, call2(g, "rt_eff_msg", topic, v, NONE),
                          "rt_res_none", NONE, 0);
  }
  case WFP_OP_SLEEP_MS: {
    BinaryenExpressionRef v = lower(F, e->a);
    return suspend_effect(F, call1(g, "rt_eff_sleep", v, NONE), "rt_res_none",
                          NONE, 0);
  }
  case WFP_OP_SELF_GET: {
    BinaryenExpressionRef prop = c32(g, (int32_t)str_obj(g, e->str, e->slen));
    wfp_tkind k = kind_of(e->type);
    const char *reader = k == WFP_T_I64   ? "rt_res_value_i64"
                         : k == WFP_T_STR ? "rt_res_value_str"
                                          : "rt_res_value_json";
    BinaryenType t = k == WFP_T_I64 ? I64 : I32;
    return suspend_effect(F, call1(g, "rt_eff_self_get", prop, NONE), reader, t,
                          vkind(e->type));
  }
  case WFP_OP_SELF_SET: {
    BinaryenExpressionRef v = as_json_text(F, lower(F, e->a), e->a->type);
    BinaryenExpressionRef prop = c32(g, (int32_t)str_obj(g, e->str, e->slen));
    return suspend_effect(F, call2(g, "rt_eff_self_set", prop, v, NONE),
                          "rt_res_none", NONE, 0);
  }
  case WFP_OP_FN:
  case WFP_OP_LAMBDA:
    return lower_closure(F, e);
  case WFP_OP_CALL_REF:
    return lower_call_ref(F, e);
  case WFP_OP_DB_QUERY:
    return lower_db_query(F, e);
  case WFP_OP__COUNT:
    cg_fail(g, WFP_EUNSUPPORTED, e->path,
            "'%s' is not supported by this version of the code generator",
            wfp__expr_op_name(e->op));
    return zero_of(g, wasm_type(e->type));
  }
  return NULL;
}

/* ---- statements ---- */

static void lower_block(fb *F, const wfp_block *b);

static void do_return(fb *F, BinaryenExpressionRef v) {
  cg *g = F->g;
  const wfp_func *f = F->f;
  BinaryenType rt_ = F->fi->ret;
  bool flag = rt_ != NONE && f->may_end_void;
  if (v && flag)
    emit(F, BinaryenGlobalSet(g->m, G_NOVALUE, c32(g, 0)));
  if (!v && flag)
    emit(F, BinaryenGlobalSet(g->m, G_NOVALUE, c32(g, 1)));
  if (v && rt_ == NONE) {
    emit(F, BinaryenDrop(g->m, v));
    v = NULL;
  }
  emit(F, BinaryenReturn(g->m, v ? v : zero_of(g, rt_)));
  int c = cur_block(F);
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
    emit(F, BinaryenLocalSet(g->m, (BinaryenIndex)F->var_local[s->var->index], v));
    break;
  }
  case WFP_ST_EXPR: {
    BinaryenExpressionRef v = lower(F, s->e);
    if (v)
      emit(F, BinaryenExpressionGetType(v) == NONE ? v : BinaryenDrop(g->m, v));
    break;
  }
  case WFP_ST_RETURN:
    do_return(F, s->e ? lower(F, s->e) : NULL);
    break;
  case WFP_ST_IF: {
    BinaryenExpressionRef c = cond_of(F, s->e);
    int t = new_block(F), e = new_block(F), j = new_block(F);
    end_if(F, c, t, s->else_.n ? e : j);
    F->cur = t;
    lower_block(F, &s->then_);
    end_goto(F, j);
    if (s->else_.n) {
      F->cur = e;
      lower_block(F, &s->else_);
      end_goto(F, j);
    }
    F->cur = j;
    break;
  }
  case WFP_ST_WHILE: {
    if (F->nloops == 256) {
      cg_fail(g, WFP_EUNSUPPORTED, s->path, "loops nest more than 256 deep");
      return;
    }
    /* h: the condition; latch: one unit of fuel per iteration (continue
    ** comes here too), then back to h */
    int h = new_block(F), body = new_block(F), x = new_block(F), latch = new_block(F);
    end_goto(F, h);
    F->cur = h;
    BinaryenExpressionRef c = cond_of(F, s->e);
    end_if(F, c, body, x);
    F->loop_head[F->nloops] = latch;
    F->loop_exit[F->nloops] = x;
    F->nloops++;
    F->cur = body;
    lower_block(F, &s->body);
    end_goto(F, latch);
    F->nloops--;
    F->cur = latch;
    fuel_check(F, h);
    F->cur = x;
    break;
  }
  case WFP_ST_BREAK:
    end_goto(F, F->loop_exit[F->nloops - 1]);
    break;
  case WFP_ST_CONTINUE:
    end_goto(F, F->loop_head[F->nloops - 1]);
    break;
  case WFP_ST_TRAP: {
    BinaryenExpressionRef m = c32(g, (int32_t)str_obj(g, s->msg, s->msglen));
    emit(F, call1(g, "rt_trap", m, NONE));
    emit(F, unwind_return(F));
    int c = cur_block(F);
    F->b[c].term = T_RET;
    F->cur = -1;
    break;
  }
  case WFP_ST__COUNT:
    break;
  }
}

static void lower_block(fb *F, const wfp_block *b) {
  for (int i = 0; i < b->n && !F->g->rc; i++)
    lower_stmt(F, b->v[i]);
}

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
static int liveness(fb *F) {
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
    cg_fail(F->g, WFP_EINTERNAL, F->f->path,
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

/* Saved values are ordered i64 first (compute_saves): that fixed-size part
** is stored and loaded by the generated code itself, at constant offsets;
** strings go through the runtime. */
static int fixed_bytes(const fb *F, const point *pt) {
  int n = 0;
  for (int i = 0; i < pt->nsaved; i++)
    n += F->lk[pt->saved[i]] == VK_I64 ? 8 : 0;
  return n;
}

static BinaryenExpressionRef save_code(fb *F, point *pt, int k, int ptr) {
  cg *g = F->g;
  BinaryenExpressionRef *code = calloc((size_t)pt->nsaved + 3, sizeof *code);
  if (!code) {
    cg_fail(g, WFP_ENOMEM, "", "out of memory");
    return BinaryenNop(g->m);
  }
  int n = 0, off = 0;
  code[n++] = BinaryenLocalSet(g->m, (BinaryenIndex)ptr,
                               call1(g, "rt_fw_begin", c32(g, fixed_bytes(F, pt)), I32));
  for (int i = 0; i < pt->nsaved; i++) {
    int l = pt->saved[i];
    if (F->lk[l] == VK_I64) {
      code[n++] = BinaryenStore(g->m, 8, (uint32_t)off, 1, lget(F, ptr), lget(F, l), I64);
      off += 8;
    } else {
      code[n++] = call1(g, F->lk[l] == VK_FN ? "rt_fw_fn" : "rt_fw_str", lget(F, l), NONE);
    }
  }
  code[n++] = call2(g, "rt_fw_end", c32(g, F->fidx), c32(g, k), NONE);
  BinaryenExpressionRef r = BinaryenBlock(g->m, NULL, code, (BinaryenIndex)n, NONE);
  free(code);
  return r;
}

static BinaryenExpressionRef restore_code(fb *F, point *pt, int ptr) {
  cg *g = F->g;
  BinaryenExpressionRef *code = calloc((size_t)pt->nsaved + 2, sizeof *code);
  if (!code) {
    cg_fail(g, WFP_ENOMEM, "", "out of memory");
    return BinaryenNop(g->m);
  }
  int n = 0, off = 0;
  int fixed = fixed_bytes(F, pt);
  if (fixed)
    code[n++] = BinaryenLocalSet(g->m, (BinaryenIndex)ptr,
                                 call1(g, "rt_fr_take", c32(g, fixed), I32));
  for (int i = 0; i < pt->nsaved; i++) {
    int l = pt->saved[i];
    if (F->lk[l] == VK_I64) {
      code[n++] = BinaryenLocalSet(
          g->m, (BinaryenIndex)l, BinaryenLoad(g->m, 8, false, (uint32_t)off, 1, I64, lget(F, ptr)));
      off += 8;
    } else {
      code[n++] = BinaryenLocalSet(g->m, (BinaryenIndex)l,
                                   call0(g, F->lk[l] == VK_FN ? "rt_fr_fn" : "rt_fr_str", I32));
    }
  }
  BinaryenExpressionRef r = n ? BinaryenBlock(g->m, NULL, code, (BinaryenIndex)n, NONE)
                              : BinaryenNop(g->m);
  free(code);
  return r;
}

static int compute_saves(fb *F) {
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
    /* i64 values first: the fixed part of the frame (save_code); each
    ** part in the order of the locals */
    for (int pass = 0; pass < 2; pass++)
      for (int j = 0; j < c->nin; j++) {
        int l = c->in[j];
        if (l == pt->result)
          continue;
        if (F->lk[l] == VK_SCRATCH) {
          if (pass == 1)
            continue;
          cg_fail(F->g, WFP_EINTERNAL, F->f->path,
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
    cg_fail(g, WFP_ENOMEM, "", "out of memory");
    goto done;
  }
  /* params: captures, then declared params */
  for (int i = 0; i < f->ncaps; i++)
    F.var_local[f->caps[i]->index] =
        new_local(&F, wasm_type(f->caps[i]->type), vkind(f->caps[i]->type));
  for (int i = 0; i < f->nparams; i++)
    F.var_local[f->params[i]->index] =
        new_local(&F, wasm_type(f->params[i]->type), vkind(f->params[i]->type));
  F.nparams = F.nl;
  for (int i = 0; i < f->nlocals; i++) {
    wfp_var *v = f->locals[i];
    if (v->is_param || v->is_capture)
      continue;
    F.var_local[v->index] = new_local(&F, wasm_type(v->type), vkind(v->type));
  }
  int entry = new_block(&F);
  int body = new_block(&F);
  F.cur = body;
  if (fi->has_call) {
    /* a call is a unit of fuel: recursion yields too */
    int start = new_block(&F);
    fuel_check(&F, start);
    F.cur = start;
  }
  lower_block(&F, &f->body);
  if (g->rc)
    goto done;

  if (F.cur >= 0)
    do_return(&F, NULL);
  if (F.npts > 0 && !fi->may_suspend) {
    cg_fail(g, WFP_EINTERNAL, f->path, "internal error: suspension analysis");
    goto done;
  }
  if (liveness(&F) || compute_saves(&F)) {
    if (!g->rc)
      cg_fail(g, WFP_ENOMEM, "", "out of memory");
    goto done;
  }
  if (g->rc)
    goto done;
  int label = new_local(&F, I32, VK_SCRATCH);
  int fptr = new_local(&F, I32, VK_SCRATCH); /* frame pointer of saves/restores */
  RelooperBlockRef *rb = calloc((size_t)F.nb + 1, sizeof *rb);
  if (!rb) {
    cg_fail(g, WFP_ENOMEM, "", "out of memory");
    goto done;
  }
  RelooperRef R = RelooperCreate(g->m); /* freed by RelooperRenderAndDispose only */
  /* blocks' code, with saves at suspensions and checks after calls */
  for (int i = 0; i < F.nb; i++) {
    blk *b = &F.b[i];
    if (b->term == T_SUSPEND) {
      point *pt = &F.pts[b->point];
      BinaryenExpressionRef tail[3] = {
          save_code(&F, pt, b->point, fptr),
          BinaryenGlobalSet(g->m, G_UNWIND, c32(g, 1)), unwind_return(&F)};
      int saved_cur = F.cur;
      F.cur = i;
      for (int t = 0; t < 3; t++)
        emit(&F, tail[t]);
      F.cur = saved_cur;
    } else if (b->term == T_CHECK) {
      point *pt = &F.pts[b->point];
      BinaryenExpressionRef onsusp = BinaryenIf(
          g->m, BinaryenBinary(g->m, BinaryenEqInt32(), gget(g, G_UNWIND), c32(g, 1)),
          save_code(&F, pt, b->point, fptr), NULL);
      BinaryenExpressionRef both[2] = {onsusp, unwind_return(&F)};
      BinaryenExpressionRef chk = BinaryenIf(g->m, gget(g, G_UNWIND),
                                             BinaryenBlock(g->m, NULL, both, 2, NONE), NULL);
      int saved_cur = F.cur;
      F.cur = i;
      emit(&F, chk);
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
        R, BinaryenNop(g->m), call1(g, "rt_fr_open", c32(g, idx), I32));
    RelooperBlockRef bad = RelooperAddBlock(R, BinaryenUnreachable(g->m));
    for (int k = 0; k < F.npts; k++) {
      point *pt = &F.pts[k];
      RelooperBlockRef rs = RelooperAddBlock(R, restore_code(&F, pt, fptr));
      BinaryenIndex ix = (BinaryenIndex)k;
      RelooperAddBranchForSwitch(disp, rs, &ix, 1, NULL);
      RelooperAddBranch(rs, rb[pt->resume], NULL, NULL);
    }
    RelooperAddBranchForSwitch(disp, bad, NULL, 0, NULL);
    RelooperAddBranch(rentry, disp, gget(g, G_RESUMING), NULL);
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
    wfp__buf_addc(key, (char)('0' + kind_of(param_var(f, k)->type)));
  wfp__buf_printf(key, ">%d%d%d", (int)kind_of(f->ret), g->fi[i].may_suspend,
                  f->may_end_void);
}

/* A wrapper depends on the Wasm types of the parameters and the result,
** and on how many leading ones are captures. Functions without a closure
** have no wrapper: they form groups of their own. */
static void wrapper_key(const cg *g, int i, wfp__buf *key) {
  const wfp_func *f = g->p->funcs[i];
  wfp__buf_printf(key, "%c%d:", g->fi[i].closable ? 'c' : 'n', g->fi[i].k);
  for (int k = 0; k < f->ncaps + f->nparams; k++)
    wfp__buf_addc(key, wasm_type(param_var(f, k)->type) == I64 ? 'j' : 'i');
  wfp__buf_printf(key, ">%c", g->fi[i].ret == I64 ? 'j' : g->fi[i].ret == NONE ? 'v' : 'i');
}

/* The full signature of function i, for call_indirect. */
static BinaryenType func_params(cg *g, int i) {
  const wfp_func *f = g->p->funcs[i];
  int n = f->ncaps + f->nparams;
  BinaryenType *pt = calloc((size_t)n + 1, sizeof *pt);
  if (!pt) {
    cg_fail(g, WFP_ENOMEM, "", "out of memory");
    return NONE;
  }
  for (int k = 0; k < n; k++)
    pt[k] = wasm_type(param_var(f, k)->type);
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
    cg_fail(g, WFP_ENOMEM, "", "out of memory");
    goto out;
  }
  /* local 0: the function (param); 1: resuming (param); 2..n+1: the
  ** arguments; n+2: the result */
  lt[0] = lt[1] = I32;
  int nc = 0, nl = 0;
  for (int i = 0; i < n; i++) {
    wfp_var *v = param_var(f, i);
    BinaryenType t = wasm_type(v->type);
    lt[2 + i] = t;
    const char *rf;
    switch (kind_of(v->type)) {
    case WFP_T_I64: rf = "rt_arg_i64"; break;
    case WFP_T_STR: rf = "rt_arg_str"; break;
    case WFP_T_JSON: rf = "rt_arg_json"; break;
    default: rf = "rt_arg_fn"; break;
    }
    load[nl++] = BinaryenLocalSet(m, (BinaryenIndex)(2 + i),
                                  call2(g, rf, BinaryenLocalGet(m, 0, I32), c32(g, i), t));
    load[nl++] = BinaryenIf(m, gget(g, G_UNWIND), BinaryenReturn(m, NULL), NULL);
    args[i] = BinaryenLocalGet(m, (BinaryenIndex)(2 + i), t);
    zeros[i] = zero_of(g, t);
  }
  BinaryenType rt_ = fi->ret;
  int res = 2 + n;
  lt[res] = rt_ == NONE ? I32 : rt_;
  BinaryenExpressionRef slot =
      BinaryenBinary(m, BinaryenAddInt32(), BinaryenLocalGet(m, 0, I32), c32(g, SLOT_FUNC(g, 0)));
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
  code[nc++] = BinaryenIf(m, gget(g, G_UNWIND), BinaryenReturn(m, NULL), NULL);
  BinaryenExpressionRef out;
  switch (kind_of(f->ret)) {
  case WFP_T_I64:
    out = call1(g, "rt_out_i64", BinaryenLocalGet(m, (BinaryenIndex)res, I64), NONE);
    break;
  case WFP_T_STR:
    out = call1(g, "rt_out_str", BinaryenLocalGet(m, (BinaryenIndex)res, I32), NONE);
    break;
  case WFP_T_JSON:
    out = call1(g, "rt_out_json", BinaryenLocalGet(m, (BinaryenIndex)res, I32), NONE);
    break;
  case WFP_T_FN:
    out = call1(g, "rt_out_fn", BinaryenLocalGet(m, (BinaryenIndex)res, I32), NONE);
    break;
  default:
    out = call0(g, "rt_out_null", NONE);
    break;
  }
  if (rt_ != NONE && f->may_end_void)
    out = BinaryenIf(m, gget(g, G_NOVALUE), call0(g, "rt_out_null", NONE), out);
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
    cg_fail(g, WFP_ENOMEM, "", "out of memory");
    goto out;
  }
  pt[0] = I32;
  for (int i = 0; i < n; i++) {
    BinaryenType t = wasm_type(param_var(f, i)->type);
    zeros[i] = zero_of(g, t);
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
      BinaryenBinary(m, BinaryenAddInt32(), fresh_fn, c32(g, SLOT_FUNC(g, 0)));
  BinaryenExpressionRef res_slot = BinaryenBinary(m, BinaryenAddInt32(),
                                                  call0(g, "rt_fr_peek_fn", I32),
                                                  c32(g, SLOT_FUNC(g, 0)));
  BinaryenExpressionRef body = BinaryenIf(
      m, gget(g, G_RESUMING),
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
    cg_fail(g, WFP_ENOMEM, "", "out of memory");
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
                                    c32(g, 0));
  for (int i = 0; i < n; i++)
    names[i] = g->fi[i].name;
  BinaryenAddActiveElementSegment(m, "wfp$fns", "wfp$funcs", names, (BinaryenIndex)n,
                                  c32(g, SLOT_FUNC(g, 0)));
  for (int i = 0; i < n; i++)
    names[i] = g->fi[i].thunk;
  BinaryenAddActiveElementSegment(m, "wfp$fns", "wfp$thunks", names, (BinaryenIndex)n,
                                  c32(g, SLOT_THUNK(g, 0)));
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
    cg_fail(g, WFP_ENOMEM, "", "out of memory");
    return 0;
  }
  for (int i = 0; i < p->nfuncs; i++) {
    const wfp_func *f = p->funcs[i];
    int n = f->ncaps + f->nparams;
    uint32_t *pv = calloc((size_t)n * 2 + 2, sizeof *pv);
    if (!pv) {
      cg_fail(g, WFP_ENOMEM, "", "out of memory");
      break;
    }
    for (int k = 0; k < n; k++) {
      wfp_var *v = k < f->ncaps ? f->caps[k] : f->params[k - f->ncaps];
      pv[2 * k] = str_obj(g, v->name, strlen(v->name));
      pv[2 * k + 1] = (uint32_t)vkind(v->type);
    }
    params[i] = add_data(g, pv, (uint32_t)(n * 2 + 1) * 4, 4);
    free(pv);
  }
  uint32_t nf = (uint32_t)p->nfuncs;
  wfp__buf_add(&b, &nf, 4);
  for (int i = 0; i < p->nfuncs; i++) {
    const wfp_func *f = p->funcs[i];
    /* k: the captures a closure binds; all ones when no closure of the
    ** function exists (the runtime refuses one in state then) */
    uint32_t row[5] = {str_obj(g, f->name, strlen(f->name)),
                       str_obj(g, f->id, strlen(f->id)),
                       (uint32_t)(f->ncaps + f->nparams), params[i],
                       g->fi[i].closable ? (uint32_t)g->fi[i].k : NOT_CLOSABLE};
    wfp__buf_add(&b, row, sizeof row);
  }
  free(params);
  uint32_t addr = b.oom ? 0 : add_data(g, b.data, (uint32_t)b.len, 4);
  if (b.oom)
    cg_fail(g, WFP_ENOMEM, "", "out of memory");
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
    uint32_t row[2] = {first, (uint32_t)g->fi[i].npoints};
    wfp__buf_add(&b, row, sizeof row);
    first += (uint32_t)g->fi[i].npoints;
  }
  for (int i = 0; i < p->nfuncs; i++) {
    fninfo *fi = &g->fi[i];
    for (int k = 0; k < fi->npoints; k++) {
      uint32_t types = add_data(g, fi->pt_types[k], (uint32_t)fi->pt_nvals[k] + 1, 1);
      uint32_t row[3] = {fi->pt_callee[k], (uint32_t)fi->pt_nvals[k], types};
      wfp__buf_add(&b, row, sizeof row);
    }
  }
  uint32_t addr = b.oom ? 0 : add_data(g, b.data, (uint32_t)b.len, 4);
  if (b.oom)
    cg_fail(g, WFP_ENOMEM, "", "out of memory");
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
                                              c32(g, SLOT_THUNK(g, 0)));
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

static int setup(cg *g) {
  BinaryenModuleRef m = g->m;
  /* runtime functions by their export names */
  BinaryenIndex ne = BinaryenGetNumExports(m);
  g->rt_names = calloc(ne + 1, sizeof *g->rt_names);
  g->rt_int = calloc(ne + 1, sizeof *g->rt_int);
  if (!g->rt_names || !g->rt_int)
    return WFP_ENOMEM;
  uint32_t heap_base = 0;
  for (BinaryenIndex i = 0; i < ne; i++) {
    BinaryenExportRef e = BinaryenGetExportByIndex(m, i);
    if (BinaryenExportGetKind(e) == BinaryenExternalFunction()) {
      g->rt_names[g->nrt] = BinaryenExportGetName(e);
      g->rt_int[g->nrt] = BinaryenExportGetValue(e);
      g->nrt++;
    } else if (BinaryenExportGetKind(e) == BinaryenExternalGlobal() &&
               strcmp(BinaryenExportGetName(e), "__heap_base") == 0) {
      BinaryenGlobalRef gl = BinaryenGetGlobal(m, BinaryenExportGetValue(e));
      heap_base = (uint32_t)BinaryenConstGetValueI32(BinaryenGlobalGetInitExpr(gl));
    }
  }
  if (!heap_base) {
    cg_fail(g, WFP_EINTERNAL, "", "internal error: the guest runtime has no heap base");
    return WFP_EINTERNAL;
  }
  g->data_top = g->data_base = (heap_base + 15u) & ~15u;
  BinaryenAddGlobal(m, G_UNWIND, I32, true, c32(g, 0));
  BinaryenAddGlobal(m, G_RESUMING, I32, true, c32(g, 0));
  BinaryenAddGlobal(m, G_NOVALUE, I32, true, c32(g, 0));
  BinaryenAddGlobal(m, G_FUEL, I64, true, c64(g, 0));
  return WFP_OK;
}

/* Sets the memory's size and adds our data segment. Binaryen 108's
** BinaryenSetMemory keeps the segments the module has (the runtime's) and
** appends the ones given. */
static void finish_memory(cg *g) {
  BinaryenModuleRef m = g->m;
  const char *data[1] = {g->data.data ? g->data.data : ""};
  bool passive[1] = {false};
  BinaryenExpressionRef offs[1] = {c32(g, (int32_t)g->data_base)};
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

/* Optimizes the module. Without large functions, Binaryen's own pipeline
** at the level. With some, each function is optimized on its own (the
** large ones by passes linear in their size), then the module as a whole
** by passes that do not optimize functions again. */
static void optimize(cg *g, int level) {
  BinaryenModuleRef m = g->m;
  if (level == 0) {
    static const char *dce[] = {"remove-unused-module-elements"};
    BinaryenModuleRunPasses(m, dce, 1);
    return;
  }
  bool large = false;
  for (int i = 0; i < g->nf && !large; i++)
    large = g->fi[i].size > LARGE_FUNCTION;
  if (!large) {
    BinaryenModuleOptimize(m);
    return;
  }
  static const char *light[] = {"dce", "remove-unused-names", "vacuum"};
  static const char *module[] = {"duplicate-function-elimination", "inlining",
                                 "remove-unused-module-elements"};
  for (int i = 0; i < g->nf; i++) {
    BinaryenFunctionRef fn = BinaryenGetFunction(m, g->fi[i].name);
    if (!fn)
      continue;
    if (g->fi[i].size > LARGE_FUNCTION)
      BinaryenFunctionRunPasses(fn, m, light, sizeof light / sizeof *light);
    else
      BinaryenFunctionOptimize(fn, m);
  }
  BinaryenModuleRunPasses(m, module, sizeof module / sizeof *module);
}

static void prune_exports(cg *g) {
  static const char *const keep[] = {"memory", "run-step", "cabi_realloc",
                                     "cabi_post_run-step", "wfp_fatal_message",
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
  cg G;
  memset(&G, 0, sizeof G);
  cg *g = &G;
  wfp__buf_init(&g->data);
  g->p = p;
  /* the guest runtime is the module we add the program to */
  char *copy = malloc(wfp__rt_wasm_len);
  if (!copy) {
    cg_fail(g, WFP_ENOMEM, "", "out of memory");
    goto out;
  }
  memcpy(copy, wfp__rt_wasm, wfp__rt_wasm_len);
  g->m = BinaryenModuleRead(copy, wfp__rt_wasm_len);
  free(copy);
  BinaryenModuleSetFeatures(g->m, BinaryenFeatureMVP() | BinaryenFeatureBulkMemory() |
                                      BinaryenFeatureSignExt() |
                                      BinaryenFeatureMutableGlobals());
  g->nf = p->nfuncs;
  g->fi = calloc((size_t)p->nfuncs + 1, sizeof *g->fi);
  if (!g->fi || setup(g)) {
    if (!g->rc)
      cg_fail(g, WFP_ENOMEM, "", "out of memory");
    goto out;
  }
  for (int i = 0; i < p->nfuncs; i++) {
    snprintf(g->fi[i].name, sizeof g->fi[i].name, "f%d", i);
    g->fi[i].ret = wasm_type(p->funcs[i]->ret);
    /* lifted IR read back lists its captures as leading params */
    g->fi[i].k = p->funcs[i]->ncaps ? p->funcs[i]->ncaps : p->funcs[i]->meta_ncaptures;
  }
  analyze(g);
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
  define_import(g, "heap_start", NONE, I32, NULL, 0, c32(g, (int32_t)heap));
  define_import(g, "funcs", NONE, I32, NULL, 0, c32(g, (int32_t)funcs));
  define_import(g, "layout", NONE, I32, NULL, 0, c32(g, (int32_t)layout));
  define_import(g, "hash", NONE, I64, NULL, 0, c64(g, (int64_t)hash));
  define_import(g, "entry", NONE, I32, NULL, 0, c32(g, entry));
  define_import(g, "get_unwind", NONE, I32, NULL, 0, gget(g, G_UNWIND));
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
    cg_fail(g, WFP_EINTERNAL, "",
            "internal error: the generated module is not valid WebAssembly "
            "(a wfp bug; please report it with the program)");
    goto out;
  }
  BinaryenSetOptimizeLevel(level);
  BinaryenSetShrinkLevel(0);
  optimize(g, level);
  BinaryenModuleAllocateAndWriteResult w = BinaryenModuleAllocateAndWrite(m, NULL);
  free(w.sourceMap);
  *wasm = malloc(w.binaryBytes ? w.binaryBytes : 1);
  if (!*wasm) {
    free(w.binary);
    cg_fail(g, WFP_ENOMEM, "", "out of memory");
    goto out;
  }
  memcpy(*wasm, w.binary, w.binaryBytes);
  *len = w.binaryBytes;
  free(w.binary);
out:
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
  free(g->rt_names);
  free(g->rt_int);
  if (g->rc && diag)
    *diag = make_diag(g);
  free(g->fail_msg);
  return g->rc;
}
