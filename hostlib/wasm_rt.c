/*
** wasm_rt.c: the wasm2c runtime (wasm-rt.h) that every loaded .so links
** against, once per process, plus the host's trap boundary. Built for
** modules compiled with explicit bounds checks and call-depth counting
** (WASM_RT_MEMCHECK_SIGNAL_HANDLER=0): no signal handler, no guard-page
** reservations, no signal-mask system call per step. A trap longjmps to the
** innermost wfp__rt_protect() of the calling thread.
*/
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define WASM_RT_MEMCHECK_SIGNAL_HANDLER 0
#define WASM_RT_USE_STACK_DEPTH_COUNT 1
#include <wasm-rt.h>

#include "host_int.h"

#if defined(__GNUC__)
#define RT_EXPORT __attribute__((visibility("default")))
#else
#define RT_EXPORT
#endif

/* The call depth counter the generated code increments (wasm-rt.h declares
** it a plain global; steps run on one thread at a time). */
RT_EXPORT uint32_t wasm_rt_call_stack_depth;

typedef struct boundary {
  sigjmp_buf jb;
  uint32_t depth;
  bool oom;
} boundary;

static __thread boundary *cur;

RT_EXPORT void wasm_rt_trap(wasm_rt_trap_t code) {
  boundary *b = cur;
  if (!b)
    abort(); /* a trap outside any boundary: a host bug */
  wasm_rt_call_stack_depth = b->depth;
  /* no signal mask was saved: siglongjmp restores none, no system call */
  siglongjmp(b->jb, (int)code);
}

int wfp__rt_protect(void (*fn)(void *), void *arg, bool *oom) {
  boundary b;
  b.depth = wasm_rt_call_stack_depth;
  b.oom = false;
  boundary *prev = cur;
  cur = &b;
  int code = sigsetjmp(b.jb, 0);
  if (code == 0)
    fn(arg);
  cur = prev;
  if (oom)
    *oom = b.oom;
  return code;
}

static void trap_oom(void) {
  if (cur)
    cur->oom = true;
  wasm_rt_trap(WASM_RT_TRAP_EXHAUSTION);
}

static bool initialized;

RT_EXPORT void wasm_rt_init(void) { initialized = true; }
RT_EXPORT bool wasm_rt_is_initialized(void) { return initialized; }
RT_EXPORT void wasm_rt_free(void) {}

/* ---- function types: a process-wide registry, under a lock ---- */

typedef struct ftype {
  uint32_t np, nr;
  wasm_rt_type_t *t;
} ftype;

static pthread_mutex_t types_lock = PTHREAD_MUTEX_INITIALIZER;
static ftype *types;
static uint32_t ntypes, types_cap;

RT_EXPORT uint32_t wasm_rt_register_func_type(uint32_t params, uint32_t results,
                                              ...) {
  /* a function may have 1,000 parameters (docs/ir.md, Limits) */
  wasm_rt_type_t small[64], *tmp = small;
  uint32_t n = params + results;
  if (n > 64 && !(tmp = malloc(n * sizeof *tmp)))
    trap_oom();
  va_list ap;
  va_start(ap, results);
  for (uint32_t i = 0; i < n; i++)
    tmp[i] = (wasm_rt_type_t)va_arg(ap, int);
  va_end(ap);
  uint32_t id = 0;
  pthread_mutex_lock(&types_lock);
  for (uint32_t i = 0; i < ntypes && !id; i++)
    if (types[i].np == params && types[i].nr == results &&
        memcmp(types[i].t, tmp, n * sizeof *tmp) == 0)
      id = i + 1;
  if (!id && ntypes == types_cap) {
    uint32_t cap = types_cap ? types_cap * 2 : 16;
    ftype *nt = realloc(types, cap * sizeof *nt);
    if (nt) {
      types = nt;
      types_cap = cap;
    }
  }
  wasm_rt_type_t *copy = NULL;
  if (!id && ntypes < types_cap && (copy = malloc((n ? n : 1) * sizeof *copy))) {
    memcpy(copy, tmp, n * sizeof *tmp);
    types[ntypes].np = params;
    types[ntypes].nr = results;
    types[ntypes].t = copy;
    id = ++ntypes;
  }
  pthread_mutex_unlock(&types_lock);
  if (tmp != small)
    free(tmp);
  if (!id)
    trap_oom();
  return id;
}

/* ---- exceptions: wfp modules use none; present so any module links ---- */

static uint32_t ntags;
RT_EXPORT uint32_t wasm_rt_register_tag(uint32_t size) {
  (void)size;
  return __atomic_fetch_add(&ntags, 1, __ATOMIC_RELAXED);
}
RT_EXPORT void wasm_rt_load_exception(uint32_t tag, uint32_t size,
                                      const void *values) {
  (void)tag;
  (void)size;
  (void)values;
}
RT_EXPORT void wasm_rt_throw(void) { wasm_rt_trap(WASM_RT_TRAP_UNCAUGHT_EXCEPTION); }
static __thread WASM_RT_UNWIND_TARGET *unwind_target;
RT_EXPORT WASM_RT_UNWIND_TARGET *wasm_rt_get_unwind_target(void) { return unwind_target; }
RT_EXPORT void wasm_rt_set_unwind_target(WASM_RT_UNWIND_TARGET *t) { unwind_target = t; }
RT_EXPORT uint32_t wasm_rt_exception_tag(void) { return 0; }
RT_EXPORT uint32_t wasm_rt_exception_size(void) { return 0; }
RT_EXPORT void *wasm_rt_exception(void) { return NULL; }

/* ---- memories: plain heap memory, bounds-checked by the generated code ---- */

#define PAGE 65536u

RT_EXPORT void wasm_rt_allocate_memory(wasm_rt_memory_t *m, uint32_t initial,
                                       uint32_t max) {
  memset(m, 0, sizeof *m);
  m->max_pages = max;
  if (initial > 65536u || (max && initial > max))
    trap_oom();
  size_t bytes = (size_t)initial * PAGE;
  m->data = calloc(bytes ? bytes : 1, 1);
  if (!m->data)
    trap_oom();
  m->pages = initial;
  m->size = (uint32_t)bytes;
}

RT_EXPORT uint32_t wasm_rt_grow_memory(wasm_rt_memory_t *m, uint32_t delta) {
  uint32_t old = m->pages;
  if (delta == 0)
    return old;
  uint64_t np = (uint64_t)old + delta;
  if (np > m->max_pages || np > 65535u) /* 4 GiB does not fit m->size */
    return (uint32_t)-1;
  size_t bytes = (size_t)np * PAGE;
  uint8_t *d = realloc(m->data, bytes);
  if (!d)
    return (uint32_t)-1;
  memset(d + (size_t)old * PAGE, 0, (size_t)delta * PAGE);
  m->data = d;
  m->pages = (uint32_t)np;
  m->size = (uint32_t)bytes;
  return old;
}

RT_EXPORT void wasm_rt_free_memory(wasm_rt_memory_t *m) {
  free(m->data);
  m->data = NULL;
  m->size = 0;
  m->pages = 0;
}

/* ---- tables ---- */

#define DEFINE_TABLE(kind, elem)                                               \
  RT_EXPORT void wasm_rt_allocate_##kind##_table(wasm_rt_##kind##_table_t *t,  \
                                                 uint32_t n, uint32_t max) {   \
    t->size = n;                                                               \
    t->max_size = max;                                                         \
    t->data = calloc(n ? n : 1, sizeof(elem));                                 \
    if (!t->data)                                                              \
      trap_oom();                                                              \
  }                                                                            \
  RT_EXPORT void wasm_rt_free_##kind##_table(wasm_rt_##kind##_table_t *t) {    \
    free(t->data);                                                             \
    t->data = NULL;                                                            \
    t->size = 0;                                                               \
  }                                                                            \
  RT_EXPORT uint32_t wasm_rt_grow_##kind##_table(wasm_rt_##kind##_table_t *t,  \
                                                 uint32_t delta, elem init) {  \
    uint32_t old = t->size;                                                    \
    uint64_t n = (uint64_t)old + delta;                                        \
    if (n > t->max_size)                                                       \
      return (uint32_t)-1;                                                     \
    if (delta == 0)                                                            \
      return old;                                                              \
    elem *d = realloc(t->data, (size_t)n * sizeof(elem));                      \
    if (!d)                                                                    \
      return (uint32_t)-1;                                                     \
    for (uint64_t i = old; i < n; i++)                                         \
      d[i] = init;                                                             \
    t->data = d;                                                               \
    t->size = (uint32_t)n;                                                     \
    return old;                                                                \
  }

DEFINE_TABLE(funcref, wasm_rt_funcref_t)
DEFINE_TABLE(externref, wasm_rt_externref_t)

RT_EXPORT const char *wasm_rt_strerror(wasm_rt_trap_t trap) {
  switch (trap) {
  case WASM_RT_TRAP_NONE: return "no trap";
  case WASM_RT_TRAP_OOB: return "out-of-bounds memory access";
  case WASM_RT_TRAP_INT_OVERFLOW: return "integer overflow";
  case WASM_RT_TRAP_DIV_BY_ZERO: return "integer division by zero";
  case WASM_RT_TRAP_INVALID_CONVERSION: return "invalid conversion to integer";
  case WASM_RT_TRAP_UNREACHABLE: return "unreachable code executed";
  case WASM_RT_TRAP_CALL_INDIRECT: return "call_ref: the function value's signature does not match the call";
  case WASM_RT_TRAP_UNCAUGHT_EXCEPTION: return "uncaught exception";
  case WASM_RT_TRAP_EXHAUSTION: return "call stack exhausted";
  }
  return "unknown trap";
}
