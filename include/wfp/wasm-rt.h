/*
** wasm-rt.h: the wasm2c runtime interface as wfp builds it, written for the
** code wasm2c 1.0.32 generates. wfp-aot compiles every module against this
** header (it writes it beside the module's C as "wasm-rt.h") and the host
** library implements it (hostlib/wasm_rt.c); the .so links no runtime of
** its own. Not WABT's header: fixed options, and a call depth per thread.
**
** What differs from wasm2c's defaults, on purpose:
**   - memory accesses are bounds-checked by the generated code
**     (WASM_RT_MEMCHECK_SIGNAL_HANDLER 0): no signal handler, no guard
**     pages; the other value is refused at compile time;
**   - recursion is bounded by counting calls (WASM_RT_USE_STACK_DEPTH_COUNT
**     1), and the counter, wasm_rt_call_stack_depth, is thread-local: steps
**     of different instances run on several threads at once;
**   - WFP_RT_THREADS says so, and WFP_RT_LAYOUT (abi.h) mixes it in, so a
**     host refuses a module compiled against another wasm-rt.h.
** A trap (wasm_rt_trap) jumps to the host's trap boundary on the calling
** thread; nothing else here keeps state.
*/
#ifndef WFP_WASM_RT_H
#define WFP_WASM_RT_H

#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- build options: fixed ---- */

#ifndef WASM_RT_MEMCHECK_SIGNAL_HANDLER
#define WASM_RT_MEMCHECK_SIGNAL_HANDLER 0
#elif WASM_RT_MEMCHECK_SIGNAL_HANDLER
#error "wfp's runtime checks bounds in the generated code: WASM_RT_MEMCHECK_SIGNAL_HANDLER must be 0"
#endif

#ifndef WASM_RT_USE_STACK_DEPTH_COUNT
#define WASM_RT_USE_STACK_DEPTH_COUNT 1
#elif !WASM_RT_USE_STACK_DEPTH_COUNT
#error "wfp's runtime bounds recursion by counting calls: WASM_RT_USE_STACK_DEPTH_COUNT must be 1"
#endif

/* The deepest call chain before a trap (wfp-aot passes its own). */
#ifndef WASM_RT_MAX_CALL_STACK_DEPTH
#define WASM_RT_MAX_CALL_STACK_DEPTH 500
#endif

/* This runtime's mark: 1, the call depth counter is per thread. abi.h
** defines it 0 when included first, for modules of other headers. */
#undef WFP_RT_THREADS
#define WFP_RT_THREADS 1

/* ---- compiler helpers the generated code uses ---- */

#if defined(__GNUC__)
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#define wasm_rt_memcpy __builtin_memcpy
#define wasm_rt_unreachable __builtin_unreachable
#define WASM_RT_NO_RETURN __attribute__((noreturn))
/* initial-exec: the counter lives in the host (the executable or the host
** library), loaded before any module, so one thread-pointer-relative load
** reaches it, with no call per access */
#define WFP__RT_TLS __thread __attribute__((tls_model("initial-exec")))
#else
#define LIKELY(x) (x)
#define UNLIKELY(x) (x)
#define wasm_rt_memcpy memcpy
#define wasm_rt_unreachable abort
#define WASM_RT_NO_RETURN _Noreturn
#define WFP__RT_TLS _Thread_local
#endif

/* Calls in progress on this thread; the generated code counts them and
** traps (WASM_RT_TRAP_EXHAUSTION) past WASM_RT_MAX_CALL_STACK_DEPTH. */
extern WFP__RT_TLS uint32_t wasm_rt_call_stack_depth;

/* ---- values and objects ---- */

/* Why a step trapped. The order is wasm2c 1.0.32's: the codes travel in
** the generated code. */
typedef enum {
  WASM_RT_TRAP_NONE,
  WASM_RT_TRAP_OOB,                /* a memory or table access out of bounds */
  WASM_RT_TRAP_INT_OVERFLOW,       /* INT_MIN / -1, or a truncation out of range */
  WASM_RT_TRAP_DIV_BY_ZERO,        /* an integer division or remainder by zero */
  WASM_RT_TRAP_INVALID_CONVERSION, /* a NaN converted to an integer */
  WASM_RT_TRAP_UNREACHABLE,        /* the unreachable instruction */
  WASM_RT_TRAP_CALL_INDIRECT,      /* call_indirect on a null or mistyped entry */
  WASM_RT_TRAP_UNCAUGHT_EXCEPTION, /* a thrown exception that nothing caught */
  WASM_RT_TRAP_EXHAUSTION,         /* too many nested calls */
} wasm_rt_trap_t;

/* The types of a function signature (wasm_rt_register_func_type). */
typedef enum {
  WASM_RT_I32,
  WASM_RT_I64,
  WASM_RT_F32,
  WASM_RT_F64,
  WASM_RT_FUNCREF,
  WASM_RT_EXTERNREF,
} wasm_rt_type_t;

/* Any function, stored untyped; the caller casts it to its signature. */
typedef void (*wasm_rt_function_ptr_t)(void);

/* A function reference: its registered type, its code and the instance
** it closes over. A null reference is all zeros. */
typedef struct {
  uint32_t func_type;
  wasm_rt_function_ptr_t func;
  void *module_instance;
} wasm_rt_funcref_t;
static const wasm_rt_funcref_t wasm_rt_funcref_null_value = {0, NULL, NULL};

/* A host reference, opaque to Wasm. */
typedef void *wasm_rt_externref_t;
static const wasm_rt_externref_t wasm_rt_externref_null_value = NULL;

/* A linear memory of `pages` 64 KiB pages (at most max_pages), `size`
** bytes at `data`. */
typedef struct {
  uint8_t *data;
  uint32_t pages, max_pages;
  uint32_t size;
} wasm_rt_memory_t;

/* Tables of `size` entries (at most max_size). */
typedef struct {
  wasm_rt_funcref_t *data;
  uint32_t max_size;
  uint32_t size;
} wasm_rt_funcref_table_t;

typedef struct {
  wasm_rt_externref_t *data;
  uint32_t max_size;
  uint32_t size;
} wasm_rt_externref_table_t;

/* ---- the runtime: implemented by the host ---- */

/* Set-up: the host calls wasm_rt_init before it creates instances; the
** generated code asserts that it did. wasm_rt_free releases nothing here
** (the runtime's state is static). */
void wasm_rt_init(void);
bool wasm_rt_is_initialized(void);
void wasm_rt_free(void);

/* Leaves the running step with a trap: back to the host's boundary on this
** thread. */
WASM_RT_NO_RETURN void wasm_rt_trap(wasm_rt_trap_t code);
/* A trap's text (static storage). */
const char *wasm_rt_strerror(wasm_rt_trap_t code);

/* The id of a function signature: `params` types then `results` types, as
** int arguments. Equal signatures get equal ids, in every module. May trap
** (out of memory). */
uint32_t wasm_rt_register_func_type(uint32_t params, uint32_t results, ...);

/* Exceptions (wfp programs throw none; present so that any module links). */
uint32_t wasm_rt_register_tag(uint32_t size);
void wasm_rt_load_exception(uint32_t tag, uint32_t size, const void *values);
WASM_RT_NO_RETURN void wasm_rt_throw(void);
#define WASM_RT_UNWIND_TARGET jmp_buf
WASM_RT_UNWIND_TARGET *wasm_rt_get_unwind_target(void);
void wasm_rt_set_unwind_target(WASM_RT_UNWIND_TARGET *target);
uint32_t wasm_rt_exception_tag(void);
uint32_t wasm_rt_exception_size(void);
void *wasm_rt_exception(void);
#define WASM_RT_SETJMP(buf) setjmp(buf)
#define wasm_rt_try(target) WASM_RT_SETJMP(target)

/* Memories: allocate (may trap: out of memory), grow by `pages` (the old
** page count, or UINT32_MAX when it cannot: past max_pages, past the
** host's memory limit for the running step, or out of memory), free. */
void wasm_rt_allocate_memory(wasm_rt_memory_t *mem, uint32_t initial_pages,
                             uint32_t max_pages);
uint32_t wasm_rt_grow_memory(wasm_rt_memory_t *mem, uint32_t pages);
void wasm_rt_free_memory(wasm_rt_memory_t *mem);

/* Tables: the same, entries set to null on allocation and to `init` when
** grown. */
void wasm_rt_allocate_funcref_table(wasm_rt_funcref_table_t *t, uint32_t elements,
                                    uint32_t max_elements);
void wasm_rt_free_funcref_table(wasm_rt_funcref_table_t *t);
uint32_t wasm_rt_grow_funcref_table(wasm_rt_funcref_table_t *t, uint32_t delta,
                                    wasm_rt_funcref_t init);
void wasm_rt_allocate_externref_table(wasm_rt_externref_table_t *t, uint32_t elements,
                                      uint32_t max_elements);
void wasm_rt_free_externref_table(wasm_rt_externref_table_t *t);
uint32_t wasm_rt_grow_externref_table(wasm_rt_externref_table_t *t, uint32_t delta,
                                      wasm_rt_externref_t init);

#ifdef __cplusplus
}
#endif
#endif /* WFP_WASM_RT_H */
