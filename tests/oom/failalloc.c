/*
** failalloc.c: the allocation countdown behind --wrap=malloc,... (the list
** is in CMakeLists.txt), cJSON's hooks and SQLite's allocator; armed by the
** tests, or by WFP_FAIL_ALLOC=k in the commands' test builds. Test-only.
*/
#include "failalloc.h"

#include <dlfcn.h>
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
char *__real_realpath(const char *path, char *resolved);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t k, size_t n);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);
char *__wrap_realpath(const char *path, char *resolved);
int __real_posix_spawn_file_actions_addopen(posix_spawn_file_actions_t *fa, int fd,
                                            const char *path, int flags, mode_t mode);
int __real_posix_spawn_file_actions_adddup2(posix_spawn_file_actions_t *fa, int fd,
                                            int newfd);
int __wrap_posix_spawn_file_actions_addopen(posix_spawn_file_actions_t *fa, int fd,
                                            const char *path, int flags, mode_t mode);
int __wrap_posix_spawn_file_actions_adddup2(posix_spawn_file_actions_t *fa, int fd,
                                            int newfd);

static fa_mode armed = FA_COUNT;
static unsigned long target, count, failures;

/* Called at each failure: a place for a debugger's breakpoint (README.md). */
__attribute__((noinline)) void fa_failing(void);
__attribute__((noinline)) void fa_failing(void) { __asm__ volatile(""); }

/* true when this allocation must fail (errno is then ENOMEM, as libc sets it) */
static bool fail_now(void) {
  unsigned long n = __atomic_add_fetch(&count, 1, __ATOMIC_RELAXED);
  bool fail = (armed == FA_ONCE && n == target) || (armed == FA_PERSIST && n >= target);
  if (fail) {
    __atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);
    fa_failing();
    errno = ENOMEM;
  }
  return fail;
}

void *__wrap_malloc(size_t n) { return fail_now() ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t k, size_t n) { return fail_now() ? NULL : __real_calloc(k, n); }
void *__wrap_realloc(void *p, size_t n) { return fail_now() ? NULL : __real_realloc(p, n); }
char *__wrap_strdup(const char *s) { return fail_now() ? NULL : __real_strdup(s); }
char *__wrap_strndup(const char *s, size_t n) {
  return fail_now() ? NULL : __real_strndup(s, n);
}
/* realpath allocates only when resolved is NULL */
char *__wrap_realpath(const char *path, char *resolved) {
  if (!resolved && fail_now())
    return NULL;
  return __real_realpath(path, resolved);
}

/* each action added to a spawn's file actions is an allocation (glibc
** copies the path and grows the list), reported as ENOMEM */
int __wrap_posix_spawn_file_actions_addopen(posix_spawn_file_actions_t *fa, int fd,
                                            const char *path, int flags, mode_t mode) {
  return fail_now() ? ENOMEM : __real_posix_spawn_file_actions_addopen(fa, fd, path, flags, mode);
}
int __wrap_posix_spawn_file_actions_adddup2(posix_spawn_file_actions_t *fa, int fd,
                                            int newfd) {
  return fail_now() ? ENOMEM : __real_posix_spawn_file_actions_adddup2(fa, fd, newfd);
}

/* cJSON is a shared library: its malloc is libc's unless it is given ours */
static void hook_cjson(void) {
  cJSON_Hooks h = {__wrap_malloc, free};
  cJSON_InitHooks(&h);
}

/* SQLite's memory, through the countdown: its allocator, set before SQLite
** starts (sqlite3_config), with the size in a header, as xSize needs */
#define SQ_HDR 16
static void *sq_malloc(int n) {
  if (n < 0 || fail_now())
    return NULL;
  char *p = __real_malloc((size_t)n + SQ_HDR);
  if (!p)
    return NULL;
  memcpy(p, &n, sizeof n);
  return p + SQ_HDR;
}
static void sq_free(void *p) {
  if (p)
    free((char *)p - SQ_HDR);
}
static void *sq_realloc(void *p, int n) {
  if (!p)
    return sq_malloc(n);
  if (n < 0 || fail_now())
    return NULL;
  char *q = __real_realloc((char *)p - SQ_HDR, (size_t)n + SQ_HDR);
  if (!q)
    return NULL;
  memcpy(q, &n, sizeof n);
  return q + SQ_HDR;
}
static int sq_size(void *p) {
  int n = 0;
  if (p)
    memcpy(&n, (char *)p - SQ_HDR, sizeof n);
  return n;
}
static int sq_roundup(int n) { return (n + 7) & ~7; }
static int sq_init(void *ud) {
  (void)ud;
  return SQLITE_OK;
}
static void sq_shutdown(void *ud) { (void)ud; }

int fa_hook_sqlite(void) {
  static const sqlite3_mem_methods mm = {sq_malloc, sq_free, sq_realloc, sq_size,
                                         sq_roundup, sq_init, sq_shutdown, NULL};
  /* the library the host loads (hostlib/db.c): loaded once per process */
  const char *lib = getenv("WFP_SQLITE");
  void *h = dlopen(lib && *lib ? lib : "libsqlite3.so.0", RTLD_NOW | RTLD_LOCAL);
  int (*config)(int, ...) = h ? (int (*)(int, ...))dlsym(h, "sqlite3_config") : NULL;
  return config && config(SQLITE_CONFIG_MALLOC, &mm) == SQLITE_OK ? 0 : -1;
}

void fa_arm(fa_mode m, unsigned long k) {
  hook_cjson();
  __atomic_store_n(&count, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&failures, 0, __ATOMIC_RELAXED);
  target = k;
  armed = m;
}

unsigned long fa_disarm(void) {
  armed = FA_COUNT;
  return __atomic_load_n(&count, __ATOMIC_RELAXED);
}

unsigned long fa_failures(void) { return __atomic_load_n(&failures, __ATOMIC_RELAXED); }
unsigned long fa_count(void) { return __atomic_load_n(&count, __ATOMIC_RELAXED); }

/* ---- the commands' test builds: armed from the environment ----
** WFP_FAIL_ALLOC=k fails the k-th allocation of the process,
** WFP_FAIL_ALLOC_MODE=persist that one and every later one, and
** WFP_FAIL_ALLOC_LOG=FILE receives "ALLOCATIONS FAILURES" at exit, so the
** driver knows when k went past the last allocation. */

static const char *log_path;

static void write_log(void) {
  unsigned long n = fa_disarm();
  FILE *f = fopen(log_path, "w");
  if (f) {
    fprintf(f, "%lu %lu\n", n, fa_failures());
    fclose(f);
  }
}

__attribute__((constructor)) static void from_env(void) {
  const char *k = getenv("WFP_FAIL_ALLOC");
  if (!k || !*k)
    return;
  const char *m = getenv("WFP_FAIL_ALLOC_MODE");
  log_path = getenv("WFP_FAIL_ALLOC_LOG");
  if (log_path && *log_path)
    atexit(write_log);
  unsigned long v = strtoul(k, NULL, 10);
  /* wfp-host's db_query: SQLite's allocations count too */
  if (fa_hook_sqlite() != 0) {
    fprintf(stderr, "failalloc: cannot set SQLite's allocator\n");
    _exit(125);
  }
  fa_arm(v == 0 ? FA_COUNT : m && strcmp(m, "persist") == 0 ? FA_PERSIST : FA_ONCE, v);
}
