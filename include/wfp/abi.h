/*
** abi.h: the contract between a compiled program (func.so) and a host. A
** .so exports one symbol, WFP_MODULE_SYMBOL, a function returning its
** descriptor. This header is compiled into every .so, into the guest
** runtime (freestanding wasm32) and into hosts; it declares constants, data
** and function-pointer types, and one inline function (the state's
** checksum, which guest and host must compute alike).
**
** Evolution: the descriptor starts with abi_version and struct_size; fields
** are only ever appended. A host refuses a module whose abi_version differs
** from WFP_ABI_VERSION or whose struct_size is below the first ABI-1
** descriptor's (WFP_MODULE_DESC_V1_SIZE), and reads an appended field only
** when struct_size says the module has it (WFP_DESC_HAS).
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

/* The cases of the WIT `resume-value` variant (resume_step's kind). */
enum { WFP_RESUME_NONE = 0, WFP_RESUME_I64 = 1, WFP_RESUME_JSON = 2 };

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

/*
** The guest contract: what codegen (codegen/), the guest runtime
** (codegen/guest/rt.c) and the descriptor glue wfp-aot generates agree on,
** written once here. Value kinds in state frames are the WFP_TY_* codes.
**
** The resume point table's callee of a point that is not a direct call: an
** effect, or a call of a fn value (its callee known only at run time); and
** the k of a function no fn value names, in the function table.
*/
#define WFP_POINT_EFFECT 0xFFFFFFFFu
#define WFP_POINT_DYNAMIC 0xFFFFFFFEu
#define WFP_NOT_CLOSABLE 0xFFFFFFFFu
/*
** The return area of run-step (canonical ABI, wasm32), 8-aligned: the
** step-result discriminant (WFP_STEP_*) at WFP_RA_TAG; done and trap: the
** string (u32 ptr, u32 len) at WFP_RA_TEXT; pending: the effect
** discriminant at WFP_RA_EFFECT, its payload from WFP_RA_ARG0 (the first
** string or i64), WFP_RA_ARG1 (the second), a db-query's option flag at
** WFP_RA_OPT and its string at WFP_RA_OPT_STR, the state list at
** WFP_RA_STATE.
*/
#define WFP_RA_SIZE 56u
#define WFP_RA_TAG 0u
#define WFP_RA_TEXT 8u
#define WFP_RA_EFFECT 8u
#define WFP_RA_ARG0 16u
#define WFP_RA_ARG1 24u
#define WFP_RA_OPT 32u
#define WFP_RA_OPT_STR 36u
#define WFP_RA_STATE 48u
/*
** State bytes (docs/state.md), written by the guest runtime, read by it and
** by hosts that look inside (a checkpoint's summary): a header of
** WFP_STATE_HDR bytes, little-endian: the magic "wfps" at 0, a u16 version
** and a u16 of flags (none defined: nonzero is refused) at
** WFP_STATE_AT_VERSION, the program's hash (u64) at WFP_STATE_AT_HASH, the
** checksum (u64) at WFP_STATE_AT_SUM, the entry function (u32) at
** WFP_STATE_AT_ENTRY, the frame count (u32) at WFP_STATE_AT_FRAMES; then
** the frames, innermost first, each its payload followed by a trailer of
** WFP_FRAME_TRAILER bytes: u32 payload length, u32 function, u32 resume
** point.
*/
#define WFP_STATE_MAGIC 0x73706677u /* "wfps" read as a little-endian u32 */
#define WFP_STATE_VERSION 1u
#define WFP_STATE_HDR 32u
#define WFP_STATE_AT_VERSION 4u
#define WFP_STATE_AT_HASH 8u
#define WFP_STATE_AT_SUM 16u
#define WFP_STATE_AT_ENTRY 24u
#define WFP_STATE_AT_FRAMES 28u
#define WFP_FRAME_TRAILER 12u
/*
** The checksum at WFP_STATE_AT_SUM, over the n >= WFP_STATE_HDR bytes of a
** state but its own field: per 8-byte word one xor and one multiply by an
** odd constant, a bijection, so a change in any single word changes the
** result; the tail is read as the last eight bytes, overlapping, so there
** is no byte loop; the end mixes the high bits down. It catches
** truncation, bit flips and splices, not a forger who recomputes it. The
** guest writes and checks it, a host checks a checkpoint's with it.
** Words are read in the machine's order: wasm and every host wfp runs on
** are little-endian.
*/
static inline uint64_t wfp_state_sum(const uint8_t *p, uint32_t n) {
  const uint64_t K = 0x9E3779B97F4A7C15ull;
  uint64_t h = (0x243F6A8885A308D3ull ^ (uint64_t)n) * K, w;
  __builtin_memcpy(&w, p, 8);
  h = (h ^ w) * K;
  __builtin_memcpy(&w, p + 8, 8);
  h = (h ^ w) * K;
  uint32_t i = 24;
  for (; i + 8u <= n; i += 8u) {
    __builtin_memcpy(&w, p + i, 8);
    h = (h ^ w) * K;
  }
  if (i < n) {
    __builtin_memcpy(&w, p + n - 8u, 8);
    h = (h ^ w) * K;
  }
  h ^= h >> 32;
  h *= K;
  return h ^ (h >> 29);
}
/*
** How the program's code leaves a function (its unwind global, read and
** set by the runtime through the wfp.get_unwind/set_unwind imports): not
** at all, to suspend (writing frames on the way out), or to trap.
*/
#define WFP_UNWIND_NONE 0u
#define WFP_UNWIND_SUSPEND 1u
#define WFP_UNWIND_TRAP 2u
/*
** The tables codegen writes into the program's data and the runtime reads,
** all u32 words (addresses are linear-memory offsets):
**
** program info, at one address the runtime's imports load from (the same
** in every program, so the runtime's code is too): u64 program hash at
** WFP_INFO_HASH, then the heap's start, the function table's and the
** layout table's addresses and the entry function (-1: none).
**
** function table: u32 count, then per function WFP_FUNCS_ROW words: name
** and id (each the address of a str: u32 address, u32 length), the
** parameter count, the address of the parameters (per parameter the
** address of its name's str and its WFP_TY_* code), and k, the leading
** parameters (captures) a closure of the function binds, or
** WFP_NOT_CLOSABLE.
**
** layout table: u32 count, then per function WFP_LAYOUT_FN_ROW words (its
** first resume point, its number of points), then per point
** WFP_LAYOUT_POINT_ROW words: the callee (a function, WFP_POINT_EFFECT or
** WFP_POINT_DYNAMIC), the number of live values saved there, and the
** address of their WFP_TY_* codes (one byte each).
*/
#define WFP_INFO_HASH 0u
#define WFP_INFO_HEAP 8u
#define WFP_INFO_FUNCS 12u
#define WFP_INFO_LAYOUT 16u
#define WFP_INFO_ENTRY 20u
#define WFP_INFO_SIZE 24u
enum { WFP_FUNCS_NAME, WFP_FUNCS_ID, WFP_FUNCS_NPARAMS, WFP_FUNCS_PARAMS, WFP_FUNCS_K,
       WFP_FUNCS_ROW };
enum { WFP_LAYOUT_FIRST, WFP_LAYOUT_NPOINTS, WFP_LAYOUT_FN_ROW };
enum { WFP_POINT_CALLEE, WFP_POINT_NVALS, WFP_POINT_TYPES, WFP_LAYOUT_POINT_ROW };
/*
** The runtime functions codegen calls, each exported by the guest runtime
** as "rt_" name: X(NAME, name, params, result), the wasm types as letters
** (i i32, I i64; "" none). Codegen calls them by WFP_RT_<NAME> and checks,
** before it lowers any program, that the runtime exports every one with
** exactly this signature (codegen/lower.c), so the two cannot drift apart
** unnoticed.
*/
#define WFP_RT_FUNCTIONS(X)                                                    \
  X(SB_NEW, sb_new, "", "i")                                                   \
  X(SB_RAW, sb_raw, "iii", "")                                                 \
  X(SB_I64, sb_i64, "iI", "")                                                  \
  X(SB_STR, sb_str, "ii", "")                                                  \
  X(SB_JSON, sb_json, "ii", "")                                                \
  X(SB_JSTR, sb_jstr, "ii", "")                                                \
  X(SB_END, sb_end, "i", "i")                                                  \
  X(SB_JSON_AT, sb_json_at, "iii", "")                                         \
  X(STR_EQ, str_eq, "ii", "i")                                                 \
  X(TRAP, trap, "i", "")                                                       \
  X(GET_JSON, get_json, "ii", "i")                                             \
  X(GET_I64, get_i64, "ii", "I")                                               \
  X(GET_STR, get_str, "ii", "i")                                               \
  X(JSON_LEN, json_len, "i", "I")                                              \
  X(INPUT, input, "", "i")                                                     \
  X(OUT_I64, out_i64, "I", "")                                                 \
  X(OUT_STR, out_str, "i", "")                                                 \
  X(OUT_JSON, out_json, "i", "")                                               \
  X(OUT_NULL, out_null, "", "")                                                \
  X(OUT_FN, out_fn, "i", "")                                                   \
  X(EFF_CTX_GET, eff_ctx_get, "i", "")                                         \
  X(EFF_CTX_SET, eff_ctx_set, "iI", "")                                        \
  X(EFF_MSG, eff_msg, "ii", "")                                                \
  X(EFF_SLEEP, eff_sleep, "I", "")                                             \
  X(EFF_DB, eff_db, "iii", "")                                                 \
  X(EFF_SELF_GET, eff_self_get, "i", "")                                       \
  X(EFF_SELF_SET, eff_self_set, "ii", "")                                      \
  X(EFF_YIELD, eff_yield, "", "")                                              \
  X(RES_NONE, res_none, "", "")                                                \
  X(RES_I64, res_i64, "", "I")                                                 \
  X(RES_ROWS, res_rows, "", "i")                                               \
  X(RES_VALUE_I64, res_value_i64, "", "I")                                     \
  X(RES_VALUE_STR, res_value_str, "", "i")                                     \
  X(RES_VALUE_JSON, res_value_json, "", "i")                                   \
  X(FW_BEGIN, fw_begin, "i", "i")                                              \
  X(FW_STR, fw_str, "i", "")                                                   \
  X(FW_FN, fw_fn, "i", "")                                                     \
  X(FW_END, fw_end, "ii", "")                                                  \
  X(FR_OPEN, fr_open, "i", "i")                                                \
  X(FR_TAKE, fr_take, "i", "i")                                                \
  X(FR_STR, fr_str, "", "i")                                                   \
  X(FR_FN, fr_fn, "", "i")                                                     \
  X(FR_PEEK_FN, fr_peek_fn, "", "i")                                           \
  X(RESUME_DONE, resume_done, "", "")                                          \
  X(CALL_REF_CHECK, call_ref_check, "iii", "")                                 \
  X(ARG_I64, arg_i64, "ii", "I")                                               \
  X(ARG_STR, arg_str, "ii", "i")                                               \
  X(ARG_JSON, arg_json, "ii", "i")                                             \
  X(ARG_FN, arg_fn, "ii", "i")                                                 \
  X(CLOSURE_NEW, closure_new, "ii", "i")                                       \
  X(CLOSURE_JSON, closure_json, "i", "i")
#define WFP__RT_ENUM(N, n, p, r) WFP_RT_##N,
enum { WFP_RT_FUNCTIONS(WFP__RT_ENUM) WFP_RT_COUNT };
#undef WFP__RT_ENUM

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
  /* A new instance (NULL when out of memory). May trap. */
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

  /* ---- appended fields: a host reads each only when WFP_DESC_HAS says
  ** the module has it (modules built before it was appended do not) ---- */

  /* WFP_RT_LAYOUT as the module was compiled: a host refuses a module
  ** whose runtime layout differs from its own. */
  uint64_t rt_layout;
  /* Creating an instance in three steps that a trap leaves cleanly (the
  ** first-ABI-1 instantiate above does all three at once, and a trap in it
  ** loses the instance):
  **   init_module    registers the module's function types with the
  **                  runtime; may trap (out of memory), and may be run
  **                  again after a trap; one thread at a time
  **   alloc_instance a zeroed instance, or NULL when out of memory; never
  **                  traps
  **   init_instance  fills it (memories, tables, data); may trap (out of
  **                  memory), and free_instance then frees what it
  **                  allocated so far */
  void (*init_module)(void);
  void *(*alloc_instance)(void);
  void (*init_instance)(void *inst);
  /* resume-step of wit/function.wit: run_step with the resume value typed,
  ** kind WFP_RESUME_*: none; an i64 (v), what a ctx-get-i64 or the
  ** self-get of an i64 property resumes with, as if it were {"i64": v} or
  ** {"value": v}; or JSON text (json, json_len) as run_step's resume.
  ** Otherwise as run_step. A host falls back to run_step for a module
  ** without it. */
  int (*resume_step)(void *inst, uint64_t ctx_id, const char *input,
                     uint32_t input_len, const uint8_t *state, uint32_t state_len,
                     uint32_t kind, int64_t v, const char *json, uint32_t json_len,
                     wfp_abi_step *out);
} wfp_module_desc;

/* The size of the first ABI-1 descriptor (up to fuel_used). A host accepts
** any struct_size from this up, and reads the fields appended since only
** when struct_size covers them. */
#define WFP_MODULE_DESC_V1_SIZE                                                \
  (offsetof(wfp_module_desc, fuel_used) + sizeof(int64_t(*)(void *)))

/* Whether descriptor d has the appended field f. */
#define WFP_DESC_HAS(d, f)                                                     \
  ((d)->struct_size >= offsetof(wfp_module_desc, f) + sizeof((d)->f))

/*
** The wasm2c runtime layout that a module and its host must share, as one
** number: the runtime's types that both sides read or write (memories,
** tables, function references), and the build options that change what
** generated code expects of the runtime (bounds checks in the code or by
** guard pages and a signal handler, call-depth counting, trap codes). The
** module computes it at compile time into its descriptor, the host from its
** own wasm-rt.h and options, both with this macro, so a module built with
** other WASM_RT_* options or another wasm-rt.h is refused at load instead of
** misbehaving at run time. It is not part of WFP_ABI_VERSION: it follows
** wasm2c and its options, not wfp. Expanding it needs a wasm-rt.h: wfp's
** (wfp/wasm-rt.h, which wfp-aot compiles modules against) sets
** WFP_RT_THREADS to 1, its call depth being per thread; with another one
** it stays 0 and the number differs.
*/
#ifndef WFP_RT_THREADS
#define WFP_RT_THREADS 0
#endif
#define WFP__RT_MIX(h, v) ((((uint64_t)(h)) ^ (uint64_t)(v)) * 0x100000001b3ull)
#define WFP_RT_LAYOUT                                                          \
  WFP__RT_MIX(WFP__RT_MIX(WFP__RT_MIX(WFP__RT_MIX(WFP__RT_MIX(WFP__RT_MIX(    \
  WFP__RT_MIX(WFP__RT_MIX(WFP__RT_MIX(WFP__RT_MIX(WFP__RT_MIX(WFP__RT_MIX(    \
  WFP__RT_MIX(WFP__RT_MIX(WFP__RT_MIX(WFP__RT_MIX(WFP__RT_MIX(WFP__RT_MIX(    \
  WFP__RT_MIX(WFP__RT_MIX(WFP__RT_MIX(WFP__RT_MIX(WFP__RT_MIX(               \
    0xcbf29ce484222325ull, 2 /* the version of this list */), WFP_RT_THREADS), \
    sizeof(void *)),                                                           \
    sizeof(wasm_rt_memory_t)), offsetof(wasm_rt_memory_t, data)),              \
    offsetof(wasm_rt_memory_t, pages)), offsetof(wasm_rt_memory_t, max_pages)),\
    offsetof(wasm_rt_memory_t, size)),                                         \
    sizeof(wasm_rt_funcref_t)), offsetof(wasm_rt_funcref_t, func_type)),       \
    offsetof(wasm_rt_funcref_t, func)),                                        \
    offsetof(wasm_rt_funcref_t, module_instance)),                             \
    sizeof(wasm_rt_funcref_table_t)), offsetof(wasm_rt_funcref_table_t, data)),\
    offsetof(wasm_rt_funcref_table_t, max_size)),                              \
    offsetof(wasm_rt_funcref_table_t, size)),                                  \
    sizeof(wasm_rt_externref_table_t)), sizeof(wasm_rt_externref_t)),          \
    WASM_RT_MEMCHECK_SIGNAL_HANDLER), WASM_RT_USE_STACK_DEPTH_COUNT),          \
    WASM_RT_TRAP_EXHAUSTION), WASM_RT_TRAP_UNCAUGHT_EXCEPTION),                \
    sizeof(wasm_rt_trap_t))

typedef const wfp_module_desc *(*wfp_module_desc_fn)(void);

#endif /* WFP_ABI_H */
