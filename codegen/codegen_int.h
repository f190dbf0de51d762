/*
** codegen_int.h: what the code generator's files share (never installed):
** the module and function builders' types, and the functions one file
** calls in another (wfp__cg_*). The guest runtime's Wasm is built from
** guest/rt.c and embedded at build time (rt_wasm.c, generated); lower.c
** reads it and adds the program.
*/
#ifndef WFP_CODEGEN_INT_H
#define WFP_CODEGEN_INT_H

#include <stddef.h>

#include <binaryen-c.h>

#include "ir_ast.h"
#include "wfp/abi.h"
#include "wfp/codegen.h"

extern const unsigned char wfp__rt_wasm[];
extern const size_t wfp__rt_wasm_len;

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
  const char *rt_int[WFP_RT_COUNT]; /* internal names of the WFP_RT_* functions */
  uint32_t ret_kinds; /* data: each function's result type (call_ref_check) */
} cg;

/* the callee of a resume point that is not a wfp__cg_call (the layout table's
** encoding, read by the guest runtime): an effect, or a call_ref whose
** callee is known only at run time */
#define POINT_EFFECT WFP_POINT_EFFECT
#define POINT_DYNAMIC WFP_POINT_DYNAMIC
/* the k of a function no fn value names, in the function table */
#define NOT_CLOSABLE WFP_NOT_CLOSABLE

/* the most linear memory a module may grow to (64 KiB pages): 256 MiB */
#define MAX_PAGES 4096u

#define I32 BinaryenTypeInt32()
#define I64 BinaryenTypeInt64()
#define NONE BinaryenTypeNone()


#define G_UNWIND "wfp$unwind"
#define G_RESUMING "wfp$resuming"
#define G_NOVALUE "wfp$novalue"
#define G_FUEL "wfp$fuel"

/* value kinds of locals: what the state stores for them */
enum {
  VK_SCRATCH = 0,
  VK_I64 = WFP_TY_I64,
  VK_STR = WFP_TY_STR,
  VK_JSON = WFP_TY_JSON,
  VK_FN = WFP_TY_FN
};

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
  /* the step's fuel, in a local while the function runs (-1: it uses
  ** none): loaded at entry, stored back to the global before a call that
  ** uses fuel and before every return, loaded again after such a call. A
  ** loop then counts in a register, not through memory. */
  int fuel;
} fb;

/* ---- lower.c: diagnostics, constants, runtime calls, data and types ---- */

void wfp__cg_fail(cg *g, int code, const char *path, const char *fmt, ...)
    WFP__PRINTF(4, 5);
BinaryenExpressionRef wfp__cg_c32(cg *g, int32_t v);
BinaryenExpressionRef wfp__cg_c64(cg *g, int64_t v);
BinaryenExpressionRef wfp__cg_call(cg *g, int rtfn,
                                   BinaryenExpressionRef *args, int n,
                                   BinaryenType ret);
BinaryenExpressionRef wfp__cg_call0(cg *g, int f, BinaryenType ret);
BinaryenExpressionRef wfp__cg_call1(cg *g, int f, BinaryenExpressionRef a,
                                    BinaryenType ret);
BinaryenExpressionRef wfp__cg_call2(cg *g, int f, BinaryenExpressionRef a,
                                    BinaryenExpressionRef b, BinaryenType ret);
BinaryenExpressionRef wfp__cg_gget(cg *g, const char *name);
uint32_t wfp__cg_add_data(cg *g, const void *bytes, uint32_t n, uint32_t align);
uint32_t wfp__cg_str_obj(cg *g, const char *s, size_t n);
uint32_t wfp__cg_path_obj(cg *g, const wfp_expr *e);
wfp_tkind wfp__cg_kind_of(wfp_type *t);
BinaryenType wfp__cg_wasm_type(wfp_type *t);
int wfp__cg_vkind(wfp_type *t);
bool wfp__cg_tpl_nests_json(const wfp_jtpl *t, int level);

/* ---- analysis.c ---- */

void wfp__cg_analyze(cg *g);
bool wfp__cg_e_stmts(const cg *g, const wfp_expr *e);

/* ---- blocks.c ---- */

int wfp__cg_new_local(fb *F, BinaryenType t, int kind);
int wfp__cg_new_block(fb *F);
void wfp__cg_emit(fb *F, BinaryenExpressionRef e);
int wfp__cg_cur_block(fb *F);
void wfp__cg_end_goto(fb *F, int to);
void wfp__cg_end_if(fb *F, BinaryenExpressionRef cond, int t, int e);
BinaryenExpressionRef wfp__cg_lget(fb *F, int l);
BinaryenExpressionRef wfp__cg_zero_of(cg *g, BinaryenType t);
BinaryenExpressionRef wfp__cg_fuel_load(fb *F);
BinaryenExpressionRef wfp__cg_ret_with_fuel(fb *F, BinaryenExpressionRef v);
BinaryenExpressionRef wfp__cg_unwind_return(fb *F);
BinaryenExpressionRef wfp__cg_checked(fb *F, BinaryenExpressionRef c,
                                      BinaryenType t, int kind);
BinaryenExpressionRef wfp__cg_suspend_effect(fb *F, BinaryenExpressionRef record,
                                             int reader, BinaryenType t,
                                             int kind);
void wfp__cg_fuel_check(fb *F, int cont);
BinaryenExpressionRef wfp__cg_call_point(fb *F, BinaryenExpressionRef c,
                                         BinaryenExpressionRef rcall, BinaryenType rt_,
                                         int vk, uint32_t callee);

/* ---- expr.c ---- */

bool wfp__cg_trivial(BinaryenExpressionRef x);
void wfp__cg_do_return(fb *F, BinaryenExpressionRef v);
void wfp__cg_lower_block(fb *F, const wfp_block *b);

/* ---- frames.c ---- */

int wfp__cg_liveness(fb *F);
BinaryenExpressionRef wfp__cg_save_code(fb *F, point *pt, int k, int ptr);
BinaryenExpressionRef wfp__cg_restore_code(fb *F, point *pt, int ptr);
int wfp__cg_compute_saves(fb *F);

#endif /* WFP_CODEGEN_INT_H */
