/*
** ir_ast.h: the checked, typed IR that the front end builds and codegen reads.
** A cross-library internal header (like SQLite's btree.h): ir/ and codegen/
** include it; it is never installed. All nodes live in the program's arena.
*/
#ifndef WFP_IR_AST_H
#define WFP_IR_AST_H

#include <stdbool.h>
#include <stdint.h>

#include "util.h"
#include "wfp/ir.h"

struct cJSON;

/* ---- types ---- */

typedef enum wfp_tkind {
  WFP_T_VAR = 0, /* not yet known: a unification variable */
  WFP_T_I64,
  WFP_T_STR,
  WFP_T_JSON,
  WFP_T_FN,
  WFP_T_VOID, /* the "value" of effects and calls that give none */
  WFP_T_ERROR /* an ill-formed node: unifies with anything, reports nothing */
} wfp_tkind;

typedef struct wfp_type wfp_type;
struct wfp_type {
  wfp_tkind kind;
  wfp_type *link;    /* VAR: what it was bound to, or NULL */
  bool want_fn;      /* VAR: only a function type may bind it */
  int nparams;       /* FN */
  wfp_type **params; /* FN */
  wfp_type *ret;     /* FN: VOID when the function gives no value */
};

/* Follows VAR links; never NULL for a non-NULL argument. */
wfp_type *wfp__type_find(wfp_type *t);

/* ---- ops ---- */

#define WFP_STMT_OPS(X)                                                        \
  X(LET, "let")                                                                \
  X(SET, "set")                                                                \
  X(EXPR, "expr")                                                              \
  X(RETURN, "return")                                                          \
  X(IF, "if")                                                                  \
  X(WHILE, "while")                                                            \
  X(BREAK, "break")                                                            \
  X(CONTINUE, "continue")                                                      \
  X(TRAP, "trap")

#define WFP_EXPR_OPS(X)                                                        \
  X(LIT_I64, "lit_i64")                                                        \
  X(LIT_STR, "lit_str")                                                        \
  X(LIT_JSON, "lit_json")                                                      \
  X(VAR, "var")                                                                \
  X(ADD, "add")                                                                \
  X(SUB, "sub")                                                                \
  X(MUL, "mul")                                                                \
  X(DIV, "div")                                                                \
  X(REM, "rem")                                                                \
  X(BAND, "band")                                                              \
  X(BOR, "bor")                                                                \
  X(BXOR, "bxor")                                                              \
  X(SHL, "shl")                                                                \
  X(SHR, "shr")                                                                \
  X(NEG, "neg")                                                                \
  X(EQ, "eq")                                                                  \
  X(NE, "ne")                                                                  \
  X(LT, "lt")                                                                  \
  X(LE, "le")                                                                  \
  X(GT, "gt")                                                                  \
  X(GE, "ge")                                                                  \
  X(AND, "and")                                                                \
  X(OR, "or")                                                                  \
  X(NOT, "not")                                                                \
  X(CONCAT, "concat")                                                          \
  X(LEN, "len")                                                                \
  X(JSON, "json")                                                              \
  X(INPUT, "input")                                                            \
  X(GET_I64, "get_i64")                                                        \
  X(GET_STR, "get_str")                                                        \
  X(GET_JSON, "get_json")                                                      \
  X(CALL, "call")                                                              \
  X(LAMBDA, "lambda")                                                          \
  X(CALL_REF, "call_ref")                                                      \
  X(FN, "fn")                                                                  \
  X(CTX_GET_I64, "ctx_get_i64")                                                \
  X(CTX_SET_I64, "ctx_set_i64")                                                \
  X(MSG_SEND, "msg_send")                                                      \
  X(SLEEP_MS, "sleep_ms")                                                      \
  X(DB_QUERY, "db_query")                                                      \
  X(SELF_GET, "self_get")                                                      \
  X(SELF_SET, "self_set")

typedef enum wfp_stmt_op {
#define X(e, s) WFP_ST_##e,
  WFP_STMT_OPS(X)
#undef X
      WFP_ST__COUNT
} wfp_stmt_op;

typedef enum wfp_expr_op {
#define X(e, s) WFP_OP_##e,
  WFP_EXPR_OPS(X)
#undef X
      WFP_OP__COUNT
} wfp_expr_op;

const char *wfp__stmt_op_name(wfp_stmt_op op);
const char *wfp__expr_op_name(wfp_expr_op op);
/* True for ops that suspend the invocation (the host performs them). */
bool wfp__expr_op_is_effect(wfp_expr_op op);

/* ---- nodes ---- */

typedef struct wfp_expr wfp_expr;
typedef struct wfp_stmt wfp_stmt;
typedef struct wfp_var wfp_var;
typedef struct wfp_func wfp_func;
typedef struct wfp_resource wfp_resource;
typedef struct wfp_jtpl wfp_jtpl;

typedef struct wfp_block {
  wfp_stmt **v;
  int n;
} wfp_block;

/* One step of a get_* path: an object key or an array index. */
typedef struct wfp_pathseg {
  bool is_index;
  int64_t index;
  const char *key;
  size_t keylen;
} wfp_pathseg;

/* A json template: literal structure with expression holes. */
typedef enum { WFP_J_LIT, WFP_J_OBJ, WFP_J_ARR, WFP_J_HOLE } wfp_jkind;
struct wfp_jtpl {
  wfp_jkind kind;
  const char *text; /* LIT: compact JSON text of the literal value */
  int n;            /* OBJ, ARR: members */
  const char **keys;
  size_t *keylens;
  wfp_jtpl **items;
  wfp_expr *hole; /* HOLE */
};

struct wfp_expr {
  wfp_expr_op op;
  const char *path; /* JSON path, for diagnostics */
  wfp_type *type;
  /* literals and literal fields: lit_i64 value; lit_str / key / topic / sql /
  ** property / var or fn name (str, slen); lit_json compact text (str). */
  int64_t ival;
  const char *str;
  size_t slen;
  /* operands: a, b for binary and unary ops; a = payload / value / ms /
  ** from / the fn expression of call_ref */
  wfp_expr *a, *b;
  wfp_expr **args; /* call / call_ref args, concat parts, db_query params */
  int nargs;
  wfp_pathseg *segs; /* get_* */
  int nsegs;
  wfp_jtpl *tpl; /* json */
  wfp_var *var;  /* var */
  /* call / fn / lambda / db_query each: the target function */
  wfp_func *target;
  wfp_expr *each; /* db_query: a fn or lambda expression, or NULL */
  /* fn given with explicit "captures" (lifted IR read back) */
  wfp_expr **bound;
  int nbound;
  /* lifting: values the site passes for the target's captures, in order */
  wfp_var **capargs;
  int ncapargs;
};

struct wfp_stmt {
  wfp_stmt_op op;
  const char *path;
  wfp_var *var; /* let / set */
  wfp_expr *e;  /* let, set, expr, return (may be NULL), if / while cond */
  wfp_block then_, else_, body;
  const char *msg; /* trap */
  size_t msglen;
};

struct wfp_var {
  const char *name;
  /* the name lifted IR gives it when a let would hide a captured name at a
  ** site that passes it (lift.c), else NULL: the source keeps `name` */
  const char *lifted_name;
  wfp_type *type;
  wfp_func *owner;  /* the function whose frame holds it */
  int index;        /* slot in owner: params first, then captures? see lift */
  bool is_param;
  bool is_capture;  /* a lifted leading parameter */
  wfp_var *outer;   /* is_capture: the variable it copies */
  wfp_var *root;    /* is_capture: the variable at the end of that chain */
  const char *path; /* where it was declared */
  bool referenced_by_nested; /* read by a nested function or lambda */
  /* the checker's: the block that declares it and its rank among the
  ** declarations of its function (what a reference site can see) */
  int scope_block, scope_seq;
};

struct wfp_resource {
  const char *name;
  const char *path;
  int nprops;
  const char **prop_names;
  wfp_tkind *prop_types;
  int nmethods;
  const char **methods;
  const char **method_paths;
  int index;
};

struct wfp_func {
  const char *name;
  char id[17];
  bool id_given;
  const char *path;
  const char *parent_name; /* as written; NULL for top level */
  wfp_func *parent;        /* lexically enclosing function (nested or lambda) */
  bool is_lambda;
  int lambda_ordinal; /* lambdas: pre-order index within the top ancestor */
  wfp_resource *resource;
  wfp_var **params; /* declared params */
  int nparams;
  wfp_var **caps; /* captured variables, in order: leading params after lifting */
  int ncaps;
  wfp_var **locals; /* every variable of the function (params, caps, lets) */
  int nlocals;
  int locals_cap;
  wfp_block body;
  wfp_type *ret;       /* return type (VOID if it never returns a value) */
  bool may_end_void;   /* a bare return or the end is reachable */
  bool parsed_ok;
  bool reported_types; /* a type fault of one of its expressions was reported */
  int index;          /* position in the lifted program */
  int depth;          /* nesting depth: 0 top level */
  /* lambdas: the enclosing function and the expression */
  wfp_expr *lambda_expr;
  /* lifted IR read back: its metadata, written out again unchanged */
  const char *meta_nested_in;
  int meta_ncaptures;
};

/* Program internals (the handle of wfp/ir.h). */
struct wfp_program {
  wfp__arena arena;
  wfp_ir_opts opts;
  const char *file;
  const char *entry_name; /* from opts, the file, or "main" */
  bool entry_explicit;
  /* diagnostics */
  wfp_diag *diags;
  size_t ndiags, diags_cap, dropped;
  int status; /* 0 after a successful load */
  /* the program, in lifted order after load */
  wfp_func **funcs;
  int nfuncs, funcs_cap;
  wfp_resource **resources;
  int nresources;
  wfp_func *entry; /* NULL when the program has no function of that name */
  /* every type variable made, for the defaults of what nothing determines */
  wfp_type **tvars;
  size_t ntvars, tvars_cap;
  /* an allocation failed: the stage ends with WFP_ENOMEM. Until then the
  ** stage goes on safely; a type it could not make is oom_type (ERROR). */
  bool oom;
  wfp_type oom_type;
  char hash[17];
  char *ir_text; /* canonical lifted IR, compact (malloc) */
  size_t ir_len;
};

/* ---- allocation: arena memory of the program, failures recorded ---- */

/* As wfp__arena_alloc / _strndup / _strdup / _printf on p->arena; on
** failure they set p->oom and return NULL. */
void *wfp__ir_alloc(wfp_program *p, size_t n);
char *wfp__ir_strndup(wfp_program *p, const char *s, size_t n);
char *wfp__ir_strdup(wfp_program *p, const char *s);
char *wfp__ir_printf(wfp_program *p, const char *fmt, ...) WFP__PRINTF(2, 3);
/* A JSON path or message text: as wfp__ir_printf, but "" when out of
** memory, for text that only diagnostics read. */
const char *wfp__ir_text(wfp_program *p, const char *fmt, ...) WFP__PRINTF(2, 3);

/* ---- hash maps (map.c): string or pointer keys, borrowed ---- */

typedef struct wfp__map {
  struct wfp__map_slot *slots;
  size_t cap, n;
  bool ptr_keys;
} wfp__map;

void wfp__map_init(wfp__map *m, bool ptr_keys);
void wfp__map_free(wfp__map *m);
/* The value of key, or NULL. */
void *wfp__map_get(const wfp__map *m, const void *key);
/* Sets key to val; when key is there already, *old (if not NULL) gets its
** value, which is replaced only when replace is true. 0 or WFP_ENOMEM. */
int wfp__map_put(wfp__map *m, const void *key, void *val, bool replace,
                 void **old);

/* ---- internal entry points of the front end stages ---- */

/* Adds a diagnostic (printf-style message). Returns code for chaining. */
int wfp__diag(wfp_program *p, int code, const char *path, const char *fmt, ...)
    WFP__PRINTF(4, 5);
int wfp__diag_at(wfp_program *p, int code, int line, int col, const char *fmt,
                 ...) WFP__PRINTF(5, 6);
/* True when the diagnostic bound is reached (stages stop early then). */
bool wfp__diag_full(const wfp_program *p);

/* A new type; never NULL (out of memory: p->oom_type, an ERROR). */
wfp_type *wfp__type_new(wfp_program *p, wfp_tkind k);
/* Writes a type as text: "i64", "fn(i64, str) -> json". */
void wfp__type_str(wfp_type *t, wfp__buf *out);

/* parse.c: JSON text -> AST. Returns 0, WFP_ESYNTAX, WFP_EPROGRAM, WFP_ENOMEM. */
int wfp__ir_parse(wfp_program *p, const char *text, size_t len);
/* check.c: names, scopes, types, captures. 0 or WFP_EPROGRAM / WFP_ENOMEM. */
int wfp__ir_check(wfp_program *p);
/* ids.c: content-hash IDs for functions without one; duplicate-id check. */
int wfp__ir_assign_ids(wfp_program *p);
/* lift.c: lambda lifting; orders p->funcs in lifted order. */
int wfp__ir_lift(wfp_program *p);
/* emit.c: canonical IR text and the program hash. */
int wfp__ir_emit(wfp_program *p);

/* A cJSON type flag on objects whose key order is data (JSON literals and
** templates: the output keeps it), so the canonical writer does not sort
** them. cJSON compares types under 0xFF and uses 256 and 512 itself. */
#define WFP_JSON_KEEP_ORDER (1 << 12)

/* emit.c helpers shared with ids.c */
struct cJSON *wfp__func_to_json(wfp_program *p, const wfp_func *f, bool lifted);
/* Compact JSON with object keys sorted by bytes: the canonical form. */
char *wfp__json_canonical(const struct cJSON *v, size_t *len);
/* Indented JSON (2 spaces), keys in their order. */
char *wfp__json_pretty(const struct cJSON *v, size_t *len);
/* Appends compact canonical text of v to b. */
void wfp__json_write(wfp__buf *b, const struct cJSON *v, bool sorted, int indent,
                     int depth);

/* A name is an identifier: [A-Za-z_$][A-Za-z0-9_$]*. */
bool wfp__ident_ok(const char *s);

#endif /* WFP_IR_AST_H */
