/*
** wasm_rt.c: the wasm2c runtime of wfp/wasm-rt.h that every loaded .so
** links against, once per process, plus the host's trap boundary. Modules
** check bounds and count calls in their own code: no signal handler, no
** guard-page reservations, no signal-mask system call per step. Every
** thread has its own call depth and its own boundary, so steps of
** different instances run on several threads at once; a trap longjmps to
** the innermost wfp__rt_protect() of the calling thread. Linear memories
** are mappings, a freed one kept for the next and made zero again. A
** module built against another wasm-rt.h has another WFP_RT_LAYOUT
** (abi.h), and the loader refuses it.
*/
#define _GNU_SOURCE /* mremap */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "wfp/wasm-rt.h"

#include "host_int.h"

#if defined(__GNUC__)
#define RT_EXPORT __attribute__((visibility("default")))
#else
#define RT_EXPORT
#endif

/* The call depth counter the generated code increments: one per thread. */
RT_EXPORT WFP__RT_TLS uint32_t wasm_rt_call_stack_depth;

/* The memory limit of the step running on this thread (0: none), and
** whether a grow was refused for it, or failed for want of host memory. */
static __thread uint64_t mem_cap;
static __thread bool mem_capped, mem_failed;

void wfp__rt_set_memory_cap(uint64_t bytes) {
  mem_cap = bytes;
  mem_capped = false;
  mem_failed = false;
}

bool wfp__rt_memory_capped(void) { return mem_capped; }
bool wfp__rt_memory_failed(void) { return mem_failed; }

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

uint64_t wfp__rt_layout(void) { return WFP_RT_LAYOUT; }

/* ---- the runtime's own allocations: counted, and failed on request ----
** Memories, tables and the type registry are what an instantiate
** allocates; tests fail them one by one to prove that a trap there leaks
** nothing, and read the count of live memories and tables back. */

static long fail_countdown = -1;
static long live_blocks;

void wfp__rt_fail_alloc(long n) {
  __atomic_store_n(&fail_countdown, n, __ATOMIC_RELAXED);
}

long wfp__rt_live_blocks(void) { return __atomic_load_n(&live_blocks, __ATOMIC_RELAXED); }

static bool injected_failure(void) {
  long n = __atomic_load_n(&fail_countdown, __ATOMIC_RELAXED);
  if (n < 0)
    return false;
  __atomic_store_n(&fail_countdown, n - 1, __ATOMIC_RELAXED);
  return n == 0;
}

static void *rt_calloc(size_t n, size_t size) {
  return injected_failure() ? NULL : calloc(n, size);
}

static void *rt_realloc(void *p, size_t n) {
  return injected_failure() ? NULL : realloc(p, n);
}

/* The runtime needs no set-up: its state is static. wasm2c's generated
** code asserts that wasm_rt_init ran; the loader calls it. */
static bool initialized;

RT_EXPORT void wasm_rt_init(void) { __atomic_store_n(&initialized, true, __ATOMIC_RELAXED); }
RT_EXPORT bool wasm_rt_is_initialized(void) {
  return __atomic_load_n(&initialized, __ATOMIC_RELAXED);
}
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
  /* any number of types: a function of many parameters is a valid program */
  uint64_t n = (uint64_t)params + results;
  wasm_rt_type_t small[16];
  wasm_rt_type_t *tmp = small;
  if (n > 16 && (n > SIZE_MAX / sizeof *tmp ||
                 !(tmp = rt_realloc(NULL, (size_t)n * sizeof *tmp))))
    trap_oom();
  va_list ap;
  va_start(ap, results);
  for (uint64_t i = 0; i < n; i++)
    tmp[i] = (wasm_rt_type_t)va_arg(ap, int);
  va_end(ap);
  uint32_t id = 0;
  pthread_mutex_lock(&types_lock);
  for (uint32_t i = 0; i < ntypes && !id; i++)
    if (types[i].np == params && types[i].nr == results &&
        memcmp(types[i].t, tmp, (size_t)n * sizeof *tmp) == 0)
      id = i + 1;
  if (!id && ntypes == types_cap) {
    uint32_t cap = types_cap ? types_cap * 2 : 16;
    ftype *nt = rt_realloc(types, cap * sizeof *nt);
    if (nt) {
      types = nt;
      types_cap = cap;
    }
  }
  if (!id && ntypes < types_cap) {
    wasm_rt_type_t *copy = rt_realloc(NULL, (size_t)(n ? n : 1) * sizeof *copy);
    if (copy) {
      memcpy(copy, tmp, (size_t)n * sizeof *tmp);
      types[ntypes].np = params;
      types[ntypes].nr = results;
      types[ntypes].t = copy;
      id = ++ntypes;
    }
  }
  pthread_mutex_unlock(&types_lock);
  /* nothing is held when it traps: the lock is free, the list consistent */
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

/* ---- memories: mapped pages, recycled ----
** A new memory reads as zero. calloc of a block that glibc had freed
** before clears all of it: a module's 3 pages (192 KiB) took 99 % of the
** instructions of a new instance, though a step touches a few of its
** pages. Fresh pages of an anonymous mapping are zero at no cost until
** touched, but mapping and unmapping are system calls and every touched
** page a fault. So a memory is a mapping, and a freed one of at most
** CACHE_BYTES goes to a small cache instead of back to the kernel. Reused,
** it is made zero again from what the kernel says of it: the pages it has
** in memory (mincore) are cleared, the others are discarded (MADV_DONTNEED:
** a page that was swapped out would otherwise come back with what it
** held). The contents of one instance never reach the next. A mapping is
** max(pages, 1) pages long: a memory of 0 pages has one, which nothing can
** touch (the generated code checks accesses against size 0). */

#define PAGE 65536u
#define CACHE_SLOTS 16
#define CACHE_BYTES (1u << 20)

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
  uint8_t *data;
  size_t bytes;
} cache[CACHE_SLOTS];
static int ncache;

static size_t map_bytes(uint32_t pages) { return (size_t)(pages ? pages : 1) * PAGE; }

/* A cached mapping of exactly bytes, or NULL. */
static uint8_t *cache_take(size_t bytes) {
  uint8_t *d = NULL;
  pthread_mutex_lock(&cache_lock);
  for (int i = ncache - 1; i >= 0 && !d; i--)
    if (cache[i].bytes == bytes) {
      d = cache[i].data;
      cache[i] = cache[--ncache];
    }
  pthread_mutex_unlock(&cache_lock);
  return d;
}

/* Keeps the mapping d of bytes for a later memory; false when the cache
** is full or the mapping too large. */
static bool cache_put(uint8_t *d, size_t bytes) {
  if (bytes > CACHE_BYTES)
    return false;
  bool kept = false;
  pthread_mutex_lock(&cache_lock);
  if (ncache < CACHE_SLOTS) {
    cache[ncache].data = d;
    cache[ncache].bytes = bytes;
    ncache++;
    kept = true;
  }
  pthread_mutex_unlock(&cache_lock);
  return kept;
}

/* Makes the recycled mapping d of bytes read as zero; false when the
** kernel would not say which pages it has (the caller unmaps it). */
static bool make_zero(uint8_t *d, size_t bytes) {
  long v = sysconf(_SC_PAGESIZE); /* glibc: read from memory, no system call */
  if (v <= 0 || PAGE % (size_t)v != 0)
    return false;
  size_t ps = (size_t)v, n = bytes / ps;
  unsigned char vec[CACHE_BYTES / 4096];
  if (n > sizeof vec || mincore(d, bytes, vec) != 0)
    return false;
  /* runs of pages in memory are cleared, runs of the others discarded */
  for (size_t i = 0; i < n;) {
    size_t j = i;
    bool in = vec[i] & 1;
    while (j < n && (bool)(vec[j] & 1) == in)
      j++;
    if (in)
      memset(d + i * ps, 0, (j - i) * ps);
    else if (madvise(d + i * ps, (j - i) * ps, MADV_DONTNEED) != 0)
      return false;
    i = j;
  }
  return true;
}

RT_EXPORT void wasm_rt_allocate_memory(wasm_rt_memory_t *m, uint32_t initial,
                                       uint32_t max) {
  memset(m, 0, sizeof *m);
  m->max_pages = max;
  /* 4 GiB does not fit m->size: at most 65,535 pages, as grow allows */
  if (initial > 65535u || (max && initial > max))
    trap_oom();
  if (injected_failure())
    trap_oom();
  size_t bytes = map_bytes(initial);
  uint8_t *d = cache_take(bytes);
  if (d && !make_zero(d, bytes)) {
    munmap(d, bytes);
    d = NULL;
  }
  if (!d) {
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
      trap_oom();
    d = p;
  }
  __atomic_add_fetch(&live_blocks, 1, __ATOMIC_RELAXED);
  m->data = d;
  m->pages = initial;
  m->size = (uint32_t)((size_t)initial * PAGE);
}

RT_EXPORT uint32_t wasm_rt_grow_memory(wasm_rt_memory_t *m, uint32_t delta) {
  uint32_t old = m->pages;
  if (delta == 0)
    return old;
  uint64_t np = (uint64_t)old + delta;
  if (np > m->max_pages || np > 65535u) /* 4 GiB does not fit m->size */
    return (uint32_t)-1;
  if (mem_cap && np * PAGE > mem_cap) {
    mem_capped = true;
    return (uint32_t)-1;
  }
  /* the pages a mapping gains are zero; those of a memory of 0 pages were
  ** never reachable */
  void *d = injected_failure() ? MAP_FAILED
                               : mremap(m->data, map_bytes(old),
                                        map_bytes((uint32_t)np), MREMAP_MAYMOVE);
  if (d == MAP_FAILED) {
    mem_failed = true;
    return (uint32_t)-1;
  }
  m->data = d;
  m->pages = (uint32_t)np;
  m->size = (uint32_t)((size_t)np * PAGE);
  return old;
}

RT_EXPORT void wasm_rt_free_memory(wasm_rt_memory_t *m) {
  if (m->data) {
    __atomic_sub_fetch(&live_blocks, 1, __ATOMIC_RELAXED);
    size_t bytes = map_bytes(m->pages);
    if (!cache_put(m->data, bytes))
      munmap(m->data, bytes);
  }
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
    t->data = rt_calloc(n ? n : 1, sizeof(elem));                              \
    if (!t->data)                                                              \
      trap_oom();                                                              \
    __atomic_add_fetch(&live_blocks, 1, __ATOMIC_RELAXED);                     \
  }                                                                            \
  RT_EXPORT void wasm_rt_free_##kind##_table(wasm_rt_##kind##_table_t *t) {    \
    if (t->data)                                                               \
      __atomic_sub_fetch(&live_blocks, 1, __ATOMIC_RELAXED);                   \
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
    elem *d = rt_realloc(t->data, (size_t)n * sizeof(elem));                   \
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
