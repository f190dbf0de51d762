/*
** module.c: loading a .so: the file checked before it is mapped, dlopen,
** the one descriptor symbol, its version, shape and runtime layout; and a
** small pool of instances, which steps take and give back (an instance
** belongs to one thread at a time; a suspended invocation holds none).
*/
#define _GNU_SOURCE /* memmem */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wfp/wasm-rt.h"

#include "host_int.h"

/* Fills diag (when not NULL) and returns code. */
static int say(wfp_host_diag *diag, int code, const char *file, const char *place,
               const char *fmt, ...) WFP__PRINTF(5, 6);
static int say(wfp_host_diag *diag, int code, const char *file, const char *place,
               const char *fmt, ...) {
  if (diag) {
    memset(&diag->d, 0, sizeof diag->d);
    snprintf(diag->place, sizeof diag->place, "%s", place);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(diag->text, sizeof diag->text, fmt, ap);
    va_end(ap);
    diag->d.code = code;
    diag->d.file = file;
    diag->d.path = diag->place;
    diag->d.msg = diag->text;
  }
  return code;
}

/* ---- the file, before dlopen ----
** dlopen maps the file's segments as they are: a segment that reaches past
** the end of a truncated file faults (SIGBUS) when the loader touches it,
** and no error comes back. So every header, segment and section must lie
** within the file first. */

#if defined(__x86_64__)
#define HOST_MACHINE EM_X86_64
#elif defined(__aarch64__)
#define HOST_MACHINE EM_AARCH64
#elif defined(__i386__)
#define HOST_MACHINE EM_386
#elif defined(__arm__)
#define HOST_MACHINE EM_ARM
#elif defined(__riscv)
#define HOST_MACHINE EM_RISCV
#elif defined(__powerpc64__)
#define HOST_MACHINE EM_PPC64
#elif defined(__s390x__)
#define HOST_MACHINE EM_S390
#else
#define HOST_MACHINE EM_NONE /* not checked here; dlopen checks it */
#endif

#define MAX_HEADERS 65535u /* more program or section headers is no module */

/* [off, off + n) within size, without overflow */
static bool within(uint64_t off, uint64_t n, uint64_t size) {
  return off <= size && n <= size - off;
}

int wfp__elf_check(wfp__elf_read_fn rd, void *ud, uint64_t size, char *place,
                   size_t placelen, const char **why) {
  ElfW(Ehdr) eh;
  snprintf(place, placelen, "ELF header");
  if (size < sizeof eh || !rd(ud, 0, &eh, sizeof eh)) {
    *why = "not an ELF file (too short)";
    return WFP_ENOTMODULE;
  }
  if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) {
    *why = "not an ELF file";
    return WFP_ENOTMODULE;
  }
  if (eh.e_ident[EI_CLASS] != (sizeof(void *) == 8 ? ELFCLASS64 : ELFCLASS32) ||
      eh.e_ident[EI_DATA] !=
          (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? ELFDATA2LSB : ELFDATA2MSB) ||
      (HOST_MACHINE != EM_NONE && eh.e_machine != HOST_MACHINE)) {
    *why = "an ELF file for another kind of machine";
    return WFP_ENOTMODULE;
  }
  if (eh.e_ident[EI_VERSION] != EV_CURRENT || eh.e_version != EV_CURRENT ||
      eh.e_ehsize < sizeof eh) {
    *why = "a malformed ELF header";
    return WFP_ENOTMODULE;
  }
  if (eh.e_type != ET_DYN) {
    *why = "not a shared object (an ELF executable, object or core file)";
    return WFP_ENOTMODULE;
  }
  /* program headers: what dlopen maps */
  snprintf(place, placelen, "program headers");
  if (eh.e_phentsize != sizeof(ElfW(Phdr)) || eh.e_phnum == 0 ||
      eh.e_phnum == PN_XNUM) {
    *why = "malformed program headers";
    return WFP_ENOTMODULE;
  }
  if (!within(eh.e_phoff, (uint64_t)eh.e_phnum * sizeof(ElfW(Phdr)), size)) {
    *why = "the program headers lie past the end of the file (truncated?)";
    return WFP_ENOTMODULE;
  }
  /* each table in one read: a module is loaded often, a read is a system
  ** call */
  size_t phn = (size_t)eh.e_phnum * sizeof(ElfW(Phdr));
  ElfW(Phdr) *ph = malloc(phn);
  if (!ph) {
    *why = "out of memory";
    return WFP_ENOMEM;
  }
  if (!rd(ud, eh.e_phoff, ph, phn)) {
    free(ph);
    *why = "cannot be read";
    return WFP_EIO;
  }
  bool load = false, dynamic = false;
  int rc = WFP_OK;
  for (unsigned i = 0; i < eh.e_phnum && !rc; i++) {
    snprintf(place, placelen, "program header %u", i);
    rc = WFP_ENOTMODULE;
    if (ph[i].p_filesz && !within(ph[i].p_offset, ph[i].p_filesz, size))
      *why = "its segment reaches past the end of the file (truncated?)";
    else if (ph[i].p_type == PT_LOAD && ph[i].p_filesz > ph[i].p_memsz)
      *why = "a loadable segment larger in the file than in memory";
    else
      rc = WFP_OK;
    load |= ph[i].p_type == PT_LOAD;
    dynamic |= ph[i].p_type == PT_DYNAMIC;
  }
  free(ph);
  if (rc)
    return rc;
  if (!load || !dynamic) {
    snprintf(place, placelen, "program headers");
    *why = load ? "no dynamic segment" : "no loadable segment";
    return WFP_ENOTMODULE;
  }
  /* section headers: not mapped by dlopen, but a module whose sections lie
  ** past its end is truncated all the same */
  if (eh.e_shoff) {
    snprintf(place, placelen, "section headers");
    ElfW(Shdr) first;
    uint64_t shnum = eh.e_shnum;
    if (eh.e_shentsize != sizeof first || !within(eh.e_shoff, sizeof first, size)) {
      *why = "the section headers lie past the end of the file (truncated?)";
      return WFP_ENOTMODULE;
    }
    if (shnum == 0) { /* extended numbering: the count is in section 0 */
      if (!rd(ud, eh.e_shoff, &first, sizeof first)) {
        *why = "cannot be read";
        return WFP_EIO;
      }
      shnum = first.sh_size;
    }
    if (shnum > MAX_HEADERS || !within(eh.e_shoff, shnum * sizeof first, size)) {
      *why = "the section headers lie past the end of the file (truncated?)";
      return WFP_ENOTMODULE;
    }
    ElfW(Shdr) *sh = malloc((size_t)shnum * sizeof *sh + 1);
    if (!sh) {
      *why = "out of memory";
      return WFP_ENOMEM;
    }
    if (!rd(ud, eh.e_shoff, sh, (size_t)shnum * sizeof *sh)) {
      free(sh);
      *why = "cannot be read";
      return WFP_EIO;
    }
    for (uint64_t i = 0; i < shnum && !rc; i++)
      if (sh[i].sh_type != SHT_NOBITS && sh[i].sh_size &&
          !within(sh[i].sh_offset, sh[i].sh_size, size)) {
        snprintf(place, placelen, "section header %llu", (unsigned long long)i);
        *why = "its section reaches past the end of the file (truncated?)";
        rc = WFP_ENOTMODULE;
      }
    free(sh);
    if (rc)
      return rc;
  }
  place[0] = 0;
  return WFP_OK;
}

static bool fd_read(void *ud, uint64_t off, void *buf, size_t n) {
  int fd = *(int *)ud;
  size_t got = 0;
  while (got < n) {
    ssize_t r = pread(fd, (char *)buf + got, n - got, (off_t)(off + got));
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return false;
    got += (size_t)r;
  }
  return true;
}

/* Checks the file at path before it is mapped. */
static int check_file(const char *path, wfp_host_diag *diag) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return say(diag, WFP_EIO, path, "", "%s", strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return say(diag, WFP_EIO, path, "", "%s", strerror(e));
  }
  if (S_ISDIR(st.st_mode)) {
    close(fd);
    return say(diag, WFP_EIO, path, "", "is a directory");
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return say(diag, WFP_ENOTMODULE, path, "", "not a wfp module: not a regular file");
  }
  char place[64];
  const char *why = "";
  int rc = wfp__elf_check(fd_read, &fd, (uint64_t)st.st_size, place, sizeof place, &why);
  close(fd);
  if (rc == WFP_EIO || rc == WFP_ENOMEM)
    return say(diag, rc, path, place, "%s", why);
  if (rc)
    return say(diag, rc, path, place, "not a wfp module: %s", why);
  return WFP_OK;
}

/* ---- the descriptor ---- */

int wfp_module_load(const char *path, wfp_module **out, wfp_host_diag *diag) {
  if (!path || !out)
    return say(diag, WFP_EINVAL, path, "", "invalid argument");
  *out = NULL;
  int rc = check_file(path, diag);
  if (rc)
    return rc;
  /* wasm2c's generated code asserts that the runtime was initialized */
  wasm_rt_init();
  /* dlopen searches the library path for a name without '/' */
  char *full = malloc(strlen(path) + 3);
  if (!full)
    return say(diag, WFP_ENOMEM, path, "", "out of memory");
  sprintf(full, "%s%s", strchr(path, '/') ? "" : "./", path);
  void *dl = dlopen(full, RTLD_NOW | RTLD_LOCAL);
  free(full);
  if (!dl) {
    const char *why = dlerror();
    return say(diag, WFP_ENOTMODULE, path, "",
               "not a wfp module: cannot load it as a shared object (%s)",
               why ? why : "unknown reason");
  }
  wfp_module_desc_fn get = (wfp_module_desc_fn)dlsym(dl, WFP_MODULE_SYMBOL);
  if (!get) {
    dlclose(dl);
    return say(diag, WFP_ENOTMODULE, path, "",
               "not a wfp module: it has no %s symbol", WFP_MODULE_SYMBOL);
  }
  const wfp_module_desc *d = get();
  if (!d || d->struct_size < 8) {
    dlclose(dl);
    return say(diag, WFP_ENOTMODULE, path, "descriptor",
               "not a wfp module: its descriptor is empty");
  }
  if (d->abi_version != WFP_ABI_VERSION) {
    unsigned v = d->abi_version;
    dlclose(dl);
    return say(diag, WFP_EABI, path, "descriptor",
               "built for wfp module ABI version %u, this host supports %u; "
               "rebuild it with this wfp-aot",
               v, WFP_ABI_VERSION);
  }
  /* any size from the first ABI-1 descriptor's up: fields are appended */
  if (d->struct_size < WFP_MODULE_DESC_V1_SIZE || !d->program_hash ||
      strlen(d->program_hash) != 16 || !d->instantiate || !d->free_instance ||
      !d->run_step || !d->post_return || !d->fatal_message || !d->memory_bytes ||
      !d->set_fuel || !d->fuel_used || (d->nfuncs && !d->funcs) ||
      (d->nresources && !d->resources)) {
    dlclose(dl);
    return say(diag, WFP_ENOTMODULE, path, "descriptor",
               "not a wfp module: its descriptor is incomplete");
  }
  if (WFP_DESC_HAS(d, rt_layout) && d->rt_layout != wfp__rt_layout()) {
    unsigned long long theirs = (unsigned long long)d->rt_layout;
    dlclose(dl);
    return say(diag, WFP_EABI, path, "descriptor",
               "built for another wasm2c runtime layout (%016llx, this host's is "
               "%016llx): other WASM_RT_* options or another wasm-rt.h; build it "
               "with wfp-aot, or by hand with the options docs/cli.md gives",
               theirs, (unsigned long long)wfp__rt_layout());
  }
  bool steps = WFP_DESC_HAS(d, init_instance);
  if (steps && (!d->init_module || !d->alloc_instance || !d->init_instance)) {
    dlclose(dl);
    return say(diag, WFP_ENOTMODULE, path, "descriptor",
               "not a wfp module: its descriptor is incomplete");
  }
  wfp_module *m = calloc(1, sizeof *m);
  char *p = strdup(path);
  if (!m || !p) {
    free(m);
    free(p);
    dlclose(dl);
    return say(diag, WFP_ENOMEM, path, "", "out of memory");
  }
  m->dl = dl;
  m->d = d;
  m->path = p;
  m->steps = steps;
  m->resume_step = WFP_DESC_HAS(d, resume_step) ? d->resume_step : NULL;
  /* the canonical IR is compact JSON, where an input expression is
  ** spelt so and nothing else is (a string literal holding these bytes
  ** escapes its quotes) */
  m->input_on_resume =
      !d->ir || memmem(d->ir, d->ir_len, "{\"op\":\"input\"}", 14) != NULL;
  pthread_mutex_init(&m->lock, NULL);
  *out = m;
  return WFP_OK;
}

void wfp__module_discard(wfp_module *m) {
  pthread_mutex_lock(&m->lock);
  void **pool = m->pool;
  size_t n = m->npool;
  m->pool = NULL;
  m->npool = m->pool_cap = 0;
  pthread_mutex_unlock(&m->lock);
  for (size_t i = 0; i < n; i++)
    m->d->free_instance(pool[i]);
  free(pool);
}

void wfp_module_free(wfp_module *m) {
  if (!m)
    return;
  wfp__module_discard(m);
  pthread_mutex_destroy(&m->lock);
  dlclose(m->dl);
  free(m->path);
  free(m);
}

/* ---- instances ----
** A trap may happen while an instance is made (the runtime runs out of
** memory registering types or allocating memories and tables): it longjmps
** to the boundary here, so nothing between may hold a lock or own memory
** that only it would free. A module with the appended three-step functions
** is made step by step: its types under the host's lock, taken and
** released outside the boundary; a zeroed instance, which the host frees
** with free_instance whatever the filling did. */

typedef struct inst_call {
  const wfp_module_desc *d;
  void *inst;
} inst_call;

static void do_instantiate(void *arg) {
  inst_call *c = arg;
  c->inst = c->d->instantiate();
}

static void do_init_module(void *arg) {
  inst_call *c = arg;
  c->d->init_module();
}

static void do_init_instance(void *arg) {
  inst_call *c = arg;
  c->d->init_instance(c->inst);
}

/* one module's types at a time: the registry is process-wide, and two
** wfp_modules of one file share the .so's static type table */
static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;

/* The message of a failed instantiate (static storage), or NULL when
** memory ran out: the host's failure, not the program's. */
static const char *trap_text(int trap, bool oom) {
  if (oom || !trap)
    return NULL;
  switch (trap) {
  case WASM_RT_TRAP_OOB:
    return "creating an instance trapped: out-of-bounds memory access";
  case WASM_RT_TRAP_EXHAUSTION:
    return "creating an instance trapped: call stack exhausted";
  default:
    return "creating an instance trapped";
  }
}

/* A new instance, or NULL with *msg. Runs on any thread, outside every
** lock but the type registry's. */
static void *instantiate(wfp_module *m, const char **msg) {
  inst_call c = {m->d, NULL};
  bool oom = false;
  if (!m->steps) {
    /* a module of the first ABI-1 descriptor: one call, as it allows */
    int trap = wfp__rt_protect(do_instantiate, &c, &oom);
    if (trap || !c.inst) {
      *msg = trap_text(trap, oom);
      return NULL;
    }
    return c.inst;
  }
  if (!__atomic_load_n(&m->ready, __ATOMIC_ACQUIRE)) {
    pthread_mutex_lock(&init_lock);
    int trap = 0;
    if (!m->ready) {
      trap = wfp__rt_protect(do_init_module, &c, &oom);
      if (!trap)
        __atomic_store_n(&m->ready, true, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&init_lock);
    if (trap) {
      *msg = trap_text(trap, oom);
      return NULL;
    }
  }
  c.inst = m->d->alloc_instance();
  if (!c.inst) {
    *msg = trap_text(0, true);
    return NULL;
  }
  int trap = wfp__rt_protect(do_init_instance, &c, &oom);
  if (trap) {
    m->d->free_instance(c.inst);
    *msg = trap_text(trap, oom);
    return NULL;
  }
  return c.inst;
}

/* The pool keeps this many idle instances at most, each of at most this
** much linear memory: one grown by a large invocation is freed, not kept
** for the next (an instance's memory never shrinks). */
#define POOL_MAX 16
#define POOL_MEMORY_MAX (16u << 20)

void *wfp__module_take(wfp_module *m, uint64_t max_bytes, const char **msg) {
  for (;;) {
    pthread_mutex_lock(&m->lock);
    void *inst = m->npool ? m->pool[--m->npool] : NULL;
    pthread_mutex_unlock(&m->lock);
    if (!inst)
      return instantiate(m, msg);
    if (!max_bytes || m->d->memory_bytes(inst) <= max_bytes)
      return inst;
    /* grown past this step's memory limit by an earlier invocation */
    m->d->free_instance(inst);
  }
}

void wfp__module_give(wfp_module *m, void *inst) {
  if (!inst)
    return;
  if (m->d->memory_bytes(inst) <= POOL_MEMORY_MAX) {
    pthread_mutex_lock(&m->lock);
    bool kept = false;
    if (m->npool < POOL_MAX) {
      if (m->npool == m->pool_cap) {
        size_t cap = m->pool_cap ? m->pool_cap * 2 : 4;
        void **np = realloc(m->pool, cap * sizeof *np);
        if (np) {
          m->pool = np;
          m->pool_cap = cap;
        }
      }
      if (m->npool < m->pool_cap) {
        m->pool[m->npool++] = inst;
        kept = true;
      }
    }
    pthread_mutex_unlock(&m->lock);
    if (kept)
      return;
  }
  m->d->free_instance(inst);
}

void wfp__module_drop(wfp_module *m, void *inst) {
  if (inst)
    m->d->free_instance(inst);
}

const wfp_module_desc *wfp_module_descriptor_of(const wfp_module *m) {
  return m ? m->d : NULL;
}

const char *wfp_module_hash(const wfp_module *m) { return m ? m->d->program_hash : ""; }

const char *wfp_module_entry(const wfp_module *m) { return m ? m->d->entry : NULL; }

int wfp_module_find(const wfp_module *m, const char *name) {
  if (!m || !name)
    return -1;
  for (uint32_t i = 0; i < m->d->nfuncs; i++)
    if (strcmp(m->d->funcs[i].name, name) == 0)
      return (int)i;
  for (uint32_t i = 0; i < m->d->nfuncs; i++)
    if (strcmp(m->d->funcs[i].id, name) == 0)
      return (int)i;
  return -1;
}
