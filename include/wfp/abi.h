/*
** abi.h: the contract between a compiled program (func.so) and a host. A
** .so exports one symbol, WFP_MODULE_SYMBOL, a function returning its
** descriptor. This header is compiled into every .so and into hosts; it
** declares data and function-pointer types only, no functions.
**
** Evolution: the descriptor starts with abi_version and struct_size; fields
** are only ever appended. A host refuses a module whose abi_version differs
** from WFP_ABI_VERSION, and reads an appended field only when struct_size
** says the module has it.
*/
#ifndef WFP_ABI_H
#define WFP_ABI_H

#include <stddef.h>
#include <stdint.h>

#define WFP_ABI_VERSION 1u
#define WFP_MODULE_SYMBOL "wfp_module_descriptor"

/* The deepest nesting of arrays and objects a JSON value may have, one rule
** for the compiler (lit_json, templates), the guest (parsing, get_*) and
** the host (inputs, resume values, checkpoints): a value nested deeper is
** refused (compile time) or a trap (run time), never misread. */
#define WFP_JSON_MAX_DEPTH 256

/* Value types of parameters, results and properties. */
enum { WFP_TY_VOID = 0, WFP_TY_I64 = 1, WFP_TY_STR = 2, WFP_TY_JSON = 3, WFP_TY_FN = 4 };

/* How a step ended (step-result of wit/function.wit). */
enum { WFP_STEP_DONE = 0, WFP_STEP_PENDING = 1, WFP_STEP_TRAP = 2 };

/* The effect of a pending step, in the order of the WIT `effect` variant. */
enum {
  WFP_EFFECT_CTX_GET_I64 = 0,
  WFP_EFFECT_CTX_SET_I64 = 1,
  WFP_EFFECT_MSG_SEND = 2,
  WFP_EFFECT_SLEEP_MS = 3,
  WFP_EFFECT_DB_QUERY = 4,
  WFP_EFFECT_SELF_GET = 5,
  WFP_EFFECT_SELF_SET = 6,
  WFP_EFFECT_YIELD = 7,
  WFP_EFFECT_COUNT
};

/* Bytes inside an instance's linear memory: valid until post_return or the
** next call into the instance, whichever comes first. */
typedef struct wfp_abi_bytes {
  const uint8_t *ptr;
  uint32_t len;
} wfp_abi_bytes;

/*
** One step's result, lifted from the canonical ABI return area.
**   kind    WFP_STEP_*
**   text    done: the output JSON; trap: the message
**   effect  pending: WFP_EFFECT_*, with its operands:
**           ctx-get-i64 s0 key | ctx-set-i64 s0 key, i value |
**           msg-send s0 topic, s1 payload JSON | sleep-ms i ms |
**           db-query s0 sql, s1 params JSON, s2 each JSON (has_s2) |
**           self-get s0 property | self-set s0 property, s1 value JSON
**   state   pending: the state bytes to resume with
*/
typedef struct wfp_abi_step {
  uint32_t kind;
  uint32_t effect;
  wfp_abi_bytes text;
  wfp_abi_bytes s0, s1, s2;
  uint32_t has_s2;
  int64_t i;
  wfp_abi_bytes state;
} wfp_abi_step;

/* A function of the (lifted) program. Captured variables are its leading
** parameters. */
typedef struct wfp_abi_func {
  const char *name;
  const char *id;
  uint32_t nparams;
  uint32_t ncaptures;
  const char *const *param_names;
  const uint8_t *param_types; /* WFP_TY_* */
  uint8_t result_type;        /* WFP_TY_*; VOID when it returns nothing */
  const char *resource;       /* a method of this resource, or NULL */
  const char *nested_in;      /* lexically nested in this function, or NULL */
} wfp_abi_func;

typedef struct wfp_abi_resource {
  const char *name;
  uint32_t nprops;
  const char *const *prop_names;
  const uint8_t *prop_types; /* WFP_TY_* */
  uint32_t nmethods;
  const char *const *methods;
} wfp_abi_resource;

/*
** The module descriptor. Everything it points to is static in the .so.
** The calls into an instance run compiled Wasm: a Wasm trap leaves them
** through the wasm2c runtime's wasm_rt_trap, which the host provides (the
** .so links no runtime of its own). Call them inside the host's trap
** boundary, one thread per instance at a time.
*/
typedef struct wfp_module_desc {
  uint32_t abi_version; /* WFP_ABI_VERSION */
  uint32_t struct_size; /* sizeof(wfp_module_desc) of the module */
  const char *wfp_version;  /* the compiler that built it */
  const char *program_hash; /* 16 hex digits */
  const char *ir;           /* the canonical IR, compact JSON */
  size_t ir_len;
  const char *entry; /* the entry function's name, or NULL */
  uint32_t nfuncs;
  const wfp_abi_func *funcs;
  uint32_t nresources;
  const wfp_abi_resource *resources;
  /* A new instance (NULL when out of memory). May trap (out of memory in
  ** the runtime): the host then calls free_instance(NULL) on the same
  ** thread, which frees what the trapped call left (a half-made instance,
  ** a held lock), so that nothing leaks and the next call can succeed.
  ** free_instance(NULL) is a no-op otherwise. */
  void *(*instantiate)(void);
  void (*free_instance)(void *inst);
  /* One run-step: copies input, state and resume into the instance's
  ** memory, runs it and lifts the result into *out. Returns 0, or -1 when
  ** the result does not fit the instance's memory (a corrupt instance). */
  int (*run_step)(void *inst, uint64_t ctx_id, const char *input,
                  uint32_t input_len, const uint8_t *state, uint32_t state_len,
                  int has_resume, const char *resume, uint32_t resume_len,
                  wfp_abi_step *out);
  /* Frees what the last step's result used (canonical-ABI post-return). */
  void (*post_return)(void *inst);
  /* After a Wasm "unreachable" trap: the runtime's reason, or "". */
  const char *(*fatal_message)(void *inst);
  /* Bytes of linear memory the instance holds now. */
  size_t (*memory_bytes)(void *inst);
  /* Fuel: the budget of the next steps (units: loop iterations and calls;
  ** a step whose budget runs out returns pending(yield)), and what the
  ** last step used. */
  void (*set_fuel)(void *inst, int64_t budget);
  int64_t (*fuel_used)(void *inst);
} wfp_module_desc;

typedef const wfp_module_desc *(*wfp_module_desc_fn)(void);

#endif /* WFP_ABI_H */
