/*
** test_module.c: the loader and the runtime on real compiled modules: the
** file check before dlopen (every truncation of a module), instances made
** while the runtime's allocations fail one by one (no trap leaves a lock
** held or anything allocated), function types of many parameters, and
** recycled linear memories that start zero (no instance sees what another
** wrote).
** Usage: test_module SO_DIR (the e2e modules: simple.so, closures.so).
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>
#include <link.h>

#include "wfp/wasm-rt.h"

#include "host_int.h"

static const char *so_dir;

static char *so_path(const char *name) {
  static char p[4096];
  snprintf(p, sizeof p, "%s/%s", so_dir, name);
  return p;
}

/* Runs {} with ctx n=41 on m; returns the status, the message in *msg. */
static int run_simple(wfp_module *m, char *msg, size_t n) {
  wfp_env *e = wfp_env_new();
  wfp_invocation *inv = NULL;
  assert_non_null(e);
  assert_int_equal(wfp_env_ctx_set(e, "n", 41), 0);
  assert_int_equal(wfp_invocation_new(m, e, "{}", 2, &inv), 0);
  int st = wfp_invocation_run(inv, 100);
  const char *s = st == WFP_DONE ? wfp_invocation_output(inv) : wfp_invocation_trap_message(inv);
  snprintf(msg, n, "%s", s ? s : "");
  wfp_invocation_free(inv);
  wfp_env_free(e);
  return st;
}

/* Steps a new invocation of m's main once, the n-th next runtime
** allocation failing (-1: none); the instance is dropped afterwards, so
** that the next step makes a new one. Returns the status. */
static int step_failing(wfp_module *m, long n, char *msg, size_t len) {
  wfp_env *e = wfp_env_new();
  wfp_invocation *inv = NULL;
  assert_int_equal(wfp_invocation_new(m, e, "{\"fn\":\"main\"}", 13, &inv), 0);
  wfp__rt_fail_alloc(n);
  int st = wfp_invocation_step(inv);
  wfp__rt_fail_alloc(-1);
  /* out of memory, the step did not happen: it can be taken again */
  if (st == WFP_ENOMEM)
    assert_int_equal(wfp_invocation_steps(inv), 0);
  const char *t = wfp_invocation_trap_message(inv);
  snprintf(msg, len, "%s", t ? t : "");
  wfp_invocation_free(inv);
  wfp_env_free(e);
  wfp__module_discard(m);
  return st;
}

/* An out-of-memory trap while the module registers its types (the first
** instance of a module in a process) or while an instance is filled
** (memory, then table): each is a clean WFP_ENOMEM (the host's failure,
** not the program's: no step happened), frees what was made, and the next
** instance is made as if nothing had happened. Before, the first
** jumped out of pthread_once (undefined; glibc's unwinding happens to
** reset it), and the second lost the instance and the memory already
** allocated. Runs first: the process has registered no type yet. */
static void instantiate_under_failing_allocations(void **state) {
  (void)state;
  static const struct {
    const char *name;
    int fills; /* allocations filling an instance: memory, tables */
  } mods[] = {{"simple.so", 2}, {"closures.so", 2}}; /* a memory, a table of functions */
  for (int k = 0; k < 2; k++) {
    wfp_module *m = NULL;
    wfp_host_diag hd;
    char msg[256];
    assert_int_equal(wfp_module_load(so_path(mods[k].name), &m, &hd), 0);
    long base = wfp__rt_live_blocks();
    /* registering the module's types: its first allocation fails */
    assert_int_equal(step_failing(m, 0, msg, sizeof msg), WFP_ENOMEM);
    assert_string_equal(msg, "");
    assert_int_equal(wfp__rt_live_blocks(), base);
    assert_int_equal(step_failing(m, -1, msg, sizeof msg), WFP_PENDING);
    assert_int_equal(wfp__rt_live_blocks(), base);
    /* filling an instance: each of its allocations fails in turn */
    int failures = 0;
    for (long n = 0;; n++) {
      int st = step_failing(m, n, msg, sizeof msg);
      if (st != WFP_ENOMEM)
        break;
      if (wfp__rt_live_blocks() != base)
        fail_msg("%s: allocation %ld failed and %ld blocks were left", mods[k].name, n,
                 wfp__rt_live_blocks() - base);
      failures++;
    }
    assert_int_equal(failures, mods[k].fills);
    if (k == 0) {
      assert_int_equal(run_simple(m, msg, sizeof msg), WFP_DONE);
      assert_string_equal(msg, "{\"result\":42}");
    }
    wfp_module_free(m);
    assert_int_equal(wfp__rt_live_blocks(), base);
  }
}

/* A function type of many parameters registers (70 failed as "out of
** memory creating an instance"), once: the same type is the same id. */
typedef struct reg {
  uint32_t a, b, c;
} reg;

#define I64X10 WASM_RT_I64, WASM_RT_I64, WASM_RT_I64, WASM_RT_I64, WASM_RT_I64, \
               WASM_RT_I64, WASM_RT_I64, WASM_RT_I64, WASM_RT_I64, WASM_RT_I64

static void do_register(void *arg) {
  reg *r = arg;
  r->a = wasm_rt_register_func_type(70, 1, I64X10, I64X10, I64X10, I64X10, I64X10, I64X10,
                                    I64X10, WASM_RT_I64);
  r->b = wasm_rt_register_func_type(70, 1, I64X10, I64X10, I64X10, I64X10, I64X10, I64X10,
                                    I64X10, WASM_RT_I64);
  r->c = wasm_rt_register_func_type(69, 2, I64X10, I64X10, I64X10, I64X10, I64X10, I64X10,
                                    I64X10, WASM_RT_I64);
}

static void many_parameters_register(void **state) {
  (void)state;
  reg r = {0, 0, 0};
  bool oom = false;
  assert_int_equal(wfp__rt_protect(do_register, &r, &oom), 0);
  assert_false(oom);
  assert_true(r.a != 0 && r.a == r.b && r.c != 0 && r.c != r.a);
}

/* ---- the file check ---- */

typedef struct mem {
  const uint8_t *p;
  size_t n;
} mem;

static bool mem_read(void *ud, uint64_t off, void *buf, size_t n) {
  mem *m = ud;
  if (off > m->n || n > m->n - off)
    return false;
  memcpy(buf, m->p + off, n);
  return true;
}

/* Every proper prefix of a real module is refused, naming a place; the
** whole module passes. (A prefix is what a copy cut short leaves, and what
** made dlopen fault with SIGBUS.) */
static void every_truncation_is_refused(void **state) {
  (void)state;
  char *data = NULL;
  size_t len = 0;
  assert_int_equal(wfp__read_file(so_path("simple.so"), &data, &len), 0);
  char place[64];
  const char *why = NULL;
  mem whole = {(const uint8_t *)data, len};
  assert_int_equal(wfp__elf_check(mem_read, &whole, len, place, sizeof place, &why), 0);
  for (size_t n = 0; n < len; n++) {
    mem cut = {(const uint8_t *)data, n};
    why = NULL;
    int rc = wfp__elf_check(mem_read, &cut, n, place, sizeof place, &why);
    if (rc != WFP_ENOTMODULE)
      fail_msg("a module cut at %zu of %zu bytes passed the check", n, len);
    assert_non_null(why);
    assert_true(place[0] != 0);
  }
  free(data);
}

/* The same through wfp_module_load on real files, the loader's messages
** included: no fault, exit-3 codes, the place and the fault named. */
static void truncated_files_are_refused(void **state) {
  (void)state;
  char *data = NULL;
  size_t len = 0;
  assert_int_equal(wfp__read_file(so_path("simple.so"), &data, &len), 0);
  char tmp[] = "/tmp/wfp-test-module-XXXXXX";
  int fd = mkstemp(tmp);
  assert_true(fd >= 0);
  close(fd);
  size_t cuts[] = {0, 3, 64, 1000, 20000, len / 2, len - 1};
  for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
    assert_int_equal(wfp__write_file_atomic(tmp, data, cuts[i], 0644), 0);
    wfp_module *m = NULL;
    wfp_host_diag hd;
    int rc = wfp_module_load(tmp, &m, &hd);
    assert_int_equal(rc, WFP_ENOTMODULE);
    assert_null(m);
    assert_int_equal(hd.d.code, WFP_ENOTMODULE);
    assert_string_equal(hd.d.file, tmp);
    assert_non_null(strstr(hd.d.msg, "not a wfp module"));
    char line[1024];
    wfp_diag_format(&hd.d, line, sizeof line);
    assert_non_null(strstr(line, tmp));
    if (cuts[i] == 20000) {
      assert_non_null(strstr(hd.d.path, "program header"));
      assert_non_null(strstr(hd.d.msg, "past the end of the file"));
    }
  }
  assert_int_equal(wfp__write_file_atomic(tmp, data, len, 0755), 0);
  wfp_module *m = NULL;
  assert_int_equal(wfp_module_load(tmp, &m, NULL), 0);
  char msg[128];
  assert_int_equal(run_simple(m, msg, sizeof msg), WFP_DONE);
  wfp_module_free(m);
  unlink(tmp);
  free(data);
}

/* Hand-made ELF headers: each fault named, never read past the buffer. */
static void malformed_headers_are_refused(void **state) {
  (void)state;
  char *data = NULL;
  size_t len = 0;
  assert_int_equal(wfp__read_file(so_path("simple.so"), &data, &len), 0);
  char place[64];
  const char *why;
  ElfW(Ehdr) *eh = (ElfW(Ehdr) *)data;
  mem whole = {(const uint8_t *)data, len};
  static const struct {
    size_t off, size;
    uint64_t value;
    const char *why;
  } cases[] = {
      {offsetof(ElfW(Ehdr), e_type), 2, ET_EXEC, "not a shared object"},
      {offsetof(ElfW(Ehdr), e_machine), 2, 0x1234, "another kind of machine"},
      {offsetof(ElfW(Ehdr), e_phentsize), 2, 7, "malformed program headers"},
      {offsetof(ElfW(Ehdr), e_phoff), sizeof(eh->e_phoff), UINT64_MAX - 8,
       "program headers lie past the end"},
      {offsetof(ElfW(Ehdr), e_shoff), sizeof(eh->e_shoff), UINT64_MAX - 100,
       "section headers lie past the end"},
      {offsetof(ElfW(Ehdr), e_shnum), 2, 65000, "section headers lie past the end"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *copy = malloc(len);
    memcpy(copy, data, len);
    memcpy(copy + cases[i].off, &cases[i].value, cases[i].size);
    mem c = {(const uint8_t *)copy, len};
    why = "";
    assert_int_equal(wfp__elf_check(mem_read, &c, len, place, sizeof place, &why),
                     WFP_ENOTMODULE);
    if (!strstr(why, cases[i].why))
      fail_msg("case %zu: '%s', wanted '%s'", i, why, cases[i].why);
    free(copy);
  }
  /* a segment's offset pushed past the end */
  ElfW(Phdr) *ph = (ElfW(Phdr) *)(data + eh->e_phoff);
  for (unsigned i = 0; i < eh->e_phnum; i++)
    if (ph[i].p_type == PT_LOAD && ph[i].p_filesz) {
      ph[i].p_offset = UINT64_MAX - 4;
      break;
    }
  why = "";
  assert_int_equal(wfp__elf_check(mem_read, &whole, len, place, sizeof place, &why),
                   WFP_ENOTMODULE);
  assert_non_null(strstr(why, "segment reaches past the end"));
  free(data);
}

/* ---- recycled linear memories ----
** A freed memory is kept for the next one (wasm_rt.c); the next must read
** as zero whatever the last one wrote, in pages the kernel has in memory
** and in those it has not. */

typedef struct mem_op {
  wasm_rt_memory_t *m;
  uint32_t pages, grow;
} mem_op;

static void do_alloc_memory(void *arg) {
  mem_op *o = arg;
  wasm_rt_allocate_memory(o->m, o->pages, 65535);
  if (o->grow)
    assert_int_equal(wasm_rt_grow_memory(o->m, o->grow), o->pages);
}

static void alloc_memory(wasm_rt_memory_t *m, uint32_t pages, uint32_t grow) {
  mem_op o = {m, pages, grow};
  bool oom = false;
  assert_int_equal(wfp__rt_protect(do_alloc_memory, &o, &oom), 0);
}

static size_t nonzero_bytes(const wasm_rt_memory_t *m) {
  size_t n = 0;
  for (uint32_t i = 0; i < m->size; i++)
    n += m->data[i] != 0;
  return n;
}

static void recycled_memory_starts_zero(void **state) {
  (void)state;
  long base = wfp__rt_live_blocks();
  wasm_rt_memory_t a, b;
  /* every byte written, a few pages given back to the kernel */
  alloc_memory(&a, 3, 0);
  assert_int_equal(a.size, 3 * 65536);
  assert_int_equal(nonzero_bytes(&a), 0);
  memset(a.data, 0xa5, a.size);
  assert_int_equal(madvise(a.data + 65536, 8192, MADV_DONTNEED), 0);
  uint8_t *was = a.data;
  wasm_rt_free_memory(&a);
  assert_int_equal(wfp__rt_live_blocks(), base);
  alloc_memory(&b, 3, 0);
  assert_ptr_equal(b.data, was); /* the same mapping, recycled */
  assert_int_equal(nonzero_bytes(&b), 0);
  /* a few bytes here and there */
  b.data[0] = 1;
  b.data[70000] = 2;
  b.data[b.size - 1] = 3;
  wasm_rt_free_memory(&b);
  alloc_memory(&a, 3, 0);
  assert_ptr_equal(a.data, was);
  assert_int_equal(nonzero_bytes(&a), 0);
  wasm_rt_free_memory(&a);
  /* grown: the pages gained are zero, and the grown mapping is recycled
  ** for a memory of its size */
  alloc_memory(&a, 1, 2);
  assert_int_equal(a.size, 3 * 65536);
  assert_int_equal(nonzero_bytes(&a), 0);
  memset(a.data, 0x5a, a.size);
  was = a.data;
  wasm_rt_free_memory(&a);
  alloc_memory(&b, 3, 0);
  assert_ptr_equal(b.data, was);
  assert_int_equal(nonzero_bytes(&b), 0);
  wasm_rt_free_memory(&b);
  /* a memory of 0 pages, grown */
  alloc_memory(&a, 0, 1);
  assert_int_equal(a.size, 65536);
  assert_int_equal(nonzero_bytes(&a), 0);
  /* a grow that fails for want of host memory leaves the memory as it
  ** was, and says so */
  memset(a.data, 7, a.size);
  wfp__rt_set_memory_cap(0);
  wfp__rt_fail_alloc(0);
  assert_int_equal(wasm_rt_grow_memory(&a, 1), (uint32_t)-1);
  wfp__rt_fail_alloc(-1);
  assert_true(wfp__rt_memory_failed());
  assert_int_equal(a.pages, 1);
  assert_int_equal(a.size, 65536);
  assert_int_equal(nonzero_bytes(&a), 65536);
  assert_int_equal(wasm_rt_grow_memory(&a, 1), 1);
  assert_int_equal(nonzero_bytes(&a), 65536);
  wasm_rt_free_memory(&a);
  assert_int_equal(wfp__rt_live_blocks(), base);
}

/* Through a real module: a step writes its state into the heap of an
** instance; the instance is freed, and a new one, which gets the same
** memory back, reads zero where that state was, before it runs; run the
** same way, it writes the state at the same place. */
typedef struct step_call {
  const wfp_module_desc *d;
  void *inst;
  wfp_abi_step out;
  int rc;
} step_call;

static void do_new_instance(void *arg) {
  step_call *c = arg;
  c->d->init_module();
  c->inst = c->d->alloc_instance();
  assert_non_null(c->inst);
  c->d->init_instance(c->inst);
}

static void do_first_step(void *arg) {
  step_call *c = arg;
  c->rc = c->d->run_step(c->inst, 1, "{}", 2, NULL, 0, 0, NULL, 0, &c->out);
}

static void new_instance_does_not_see_the_last(void **state) {
  (void)state;
  wfp_module *m = NULL;
  wfp_host_diag hd;
  assert_int_equal(wfp_module_load(so_path("simple.so"), &m, &hd), 0);
  const wfp_module_desc *d = wfp_module_descriptor_of(m);
  step_call c = {d, NULL, {0}, 0};
  bool oom = false;
  assert_int_equal(wfp__rt_protect(do_new_instance, &c, &oom), 0);
  assert_int_equal(wfp__rt_protect(do_first_step, &c, &oom), 0);
  assert_int_equal(c.rc, 0);
  assert_int_equal(c.out.kind, WFP_STEP_PENDING);
  assert_true(c.out.state.len > 0);
  const uint8_t *at = c.out.state.ptr;
  uint32_t len = c.out.state.len;
  size_t written = 0;
  for (uint32_t i = 0; i < len; i++)
    written += at[i] != 0;
  assert_true(written > 0);
  d->post_return(c.inst);
  d->free_instance(c.inst);
  /* the new instance, before it runs: what it has where the state was
  ** (the freed memory stays mapped while it waits for reuse) */
  assert_int_equal(wfp__rt_protect(do_new_instance, &c, &oom), 0);
  uint8_t *seen = malloc(len);
  assert_non_null(seen);
  memcpy(seen, at, len);
  assert_int_equal(wfp__rt_protect(do_first_step, &c, &oom), 0);
  assert_int_equal(c.out.kind, WFP_STEP_PENDING);
  assert_ptr_equal(c.out.state.ptr, at); /* the same memory */
  for (uint32_t i = 0; i < len; i++)
    if (seen[i])
      fail_msg("byte %u of the last instance's state was still there", i);
  free(seen);
  d->post_return(c.inst);
  d->free_instance(c.inst);
  wfp_module_free(m);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: test_module SO_DIR\n");
    return 2;
  }
  so_dir = argv[1];
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(instantiate_under_failing_allocations),
      cmocka_unit_test(many_parameters_register),
      cmocka_unit_test(recycled_memory_starts_zero),
      cmocka_unit_test(new_instance_does_not_see_the_last),
      cmocka_unit_test(every_truncation_is_refused),
      cmocka_unit_test(truncated_files_are_refused),
      cmocka_unit_test(malformed_headers_are_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
