/*
** aot.c: the compilation pipeline behind wfp-aot: front end, codegen,
** wasm2c, the descriptor glue, the system C compiler, and the outputs,
** written atomically and only when everything succeeded. It runs external
** tools with posix_spawnp (no shell) in a private temporary directory, each
** in a process group of its own, so that a cancellation kills them all.
*/
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ir_ast.h"
#include "util.h"
#include "wfp/abi.h"
#include "wfp/aot.h"
#include "wfp/codegen.h"

extern char **environ;

/* embedded at build time (aot/CMakeLists.txt) */
extern const unsigned char wfp__abi_h[];
extern const size_t wfp__abi_h_len;
/* wfp's own wasm-rt.h (include/wfp/wasm-rt.h): the module is compiled
** against it, never against another one the system may have */
extern const unsigned char wfp__wasm_rt_h[];
extern const size_t wfp__wasm_rt_h_len;
extern const unsigned char wfp__function_wit[];
extern const size_t wfp__function_wit_len;

#define MAX_DEPTH "10000" /* Wasm call depth before "call stack exhausted" */
#define MAX_JOBS 8        /* tools running at once */

#define MAX_UNITS 64 /* the C's translation units: part A, the chunks, the glue */
/* the files wfp-aot makes in the temporary directory: a dozen of its own,
** and a source, an object and a log per unit. Their paths are kept in
** fixed buffers (tpath), so that naming them never allocates. */
#define NTMP (16 + 3 * MAX_UNITS)

struct wfp_aot {
  wfp_aot_opts o;
  wfp_program *prog;
  wfp__arena arena;
  wfp_diag *diags; /* our own, after the program's */
  size_t ndiags, cap;
  bool oom; /* an allocation failed: the compilation gives WFP_ENOMEM */
  double secs[WFP_AOT_STAGE_COUNT];
  char tmp[256];
  /* paths in the temporary directory, and its -I flag: never allocated,
  ** so that the directory can always be removed */
  char tmp_names[NTMP][24];
  char tmp_paths[NTMP][320];
  int ntmp;
  char inc_flag[300];
  bool used;
  char **env; /* the tools' environment: ours, with TMPDIR = tmp */
  /* cancellation (wfp_aot_cancel, from a signal handler): the flag, and
  ** the running tools, each the leader of its process group (0: none) */
  volatile sig_atomic_t cancel;
  volatile pid_t pids[MAX_JOBS];
  /* the C's translation units, and how many objects the cache gave */
  int units, reused;
  long own; /* the index of the program's first function (codegen), or -1 */
};

void wfp_aot_cancel(wfp_aot *a) {
  if (!a)
    return;
  a->cancel = 1;
  for (int i = 0; i < MAX_JOBS; i++) {
    pid_t p = a->pids[i];
    if (p > 0)
      kill(-p, SIGKILL);
  }
}

/* The code of a cancelled compilation, with its one diagnostic. */
static int cancelled(wfp_aot *a);

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

wfp_aot *wfp_aot_new(const wfp_aot_opts *opts) {
  wfp_aot *a = calloc(1, sizeof *a);
  if (!a)
    return NULL;
  if (opts) {
    size_t n = opts->size < sizeof a->o ? opts->size : sizeof a->o;
    memcpy(&a->o, opts, n);
  } else {
    a->o.opt_level = -1;
  }
  a->o.size = sizeof a->o;
  a->own = -1;
  if (a->o.opt_level < 0 || a->o.opt_level > 3)
    a->o.opt_level = 2;
  wfp__arena_init(&a->arena);
  /* room for the first diagnostics now, so that a compilation that runs
  ** out of memory can still say so */
  a->cap = 8;
  a->diags = calloc(a->cap, sizeof *a->diags);
  if (!a->diags || !wfp__arena_alloc(&a->arena, 1)) {
    wfp_aot_free(a);
    return NULL;
  }
  return a;
}

void wfp_aot_free(wfp_aot *a) {
  if (!a)
    return;
  wfp_program_free(a->prog);
  free(a->diags);
  wfp__arena_free(&a->arena);
  free(a);
}

static int adiag(wfp_aot *a, int code, const char *path, const char *fmt, ...)
    WFP__PRINTF(4, 5);
static int adiag(wfp_aot *a, int code, const char *path, const char *fmt, ...) {
  if (a->ndiags == a->cap) {
    size_t cap = a->cap ? a->cap * 2 : 8;
    wfp_diag *nd = realloc(a->diags, cap * sizeof *nd);
    if (!nd) {
      a->oom = true;
      return code;
    }
    a->diags = nd;
    a->cap = cap;
  }
  char msg[1536];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  wfp_diag *d = &a->diags[a->ndiags++];
  memset(d, 0, sizeof *d);
  d->code = code;
  d->file = a->prog && a->prog->file ? a->prog->file : "";
  d->path = wfp__arena_strdup(&a->arena, path ? path : "");
  d->msg = wfp__arena_strdup(&a->arena, msg);
  if (!d->path)
    d->path = "";
  if (!d->msg)
    d->msg = "out of memory";
  return code;
}

static int cancelled(wfp_aot *a) {
  static const char msg[] = "interrupted: the compilation was cancelled";
  if (!a->ndiags || strcmp(a->diags[a->ndiags - 1].msg, msg) != 0)
    adiag(a, WFP_ECANCELED, "", "%s", msg);
  return WFP_ECANCELED;
}

/* Out of memory: one diagnostic says so, made without allocating (over
** the last one when there is no room). Returns WFP_ENOMEM. */
static int nomem(wfp_aot *a) {
  a->oom = true;
  for (size_t i = 0; i < a->ndiags; i++)
    if (a->diags[i].code == WFP_ENOMEM)
      return WFP_ENOMEM;
  wfp_diag *d = &a->diags[a->ndiags < a->cap ? a->ndiags++ : a->ndiags - 1];
  memset(d, 0, sizeof *d);
  d->code = WFP_ENOMEM;
  d->file = a->prog && a->prog->file ? a->prog->file : "wfp-aot";
  d->path = "";
  d->msg = "out of memory";
  return WFP_ENOMEM;
}

size_t wfp_aot_diag_count(const wfp_aot *a) {
  return a ? wfp_program_diag_count(a->prog) + a->ndiags : 0;
}

const wfp_diag *wfp_aot_diag(const wfp_aot *a, size_t i) {
  if (!a)
    return NULL;
  size_t np = wfp_program_diag_count(a->prog);
  if (i < np)
    return wfp_program_diag(a->prog, i);
  i -= np;
  return i < a->ndiags ? &a->diags[i] : NULL;
}

size_t wfp_aot_diag_dropped(const wfp_aot *a) {
  return a ? wfp_program_diag_dropped(a->prog) : 0;
}

double wfp_aot_stage_seconds(const wfp_aot *a, wfp_aot_stage s) {
  return a && s >= 0 && s < WFP_AOT_STAGE_COUNT ? a->secs[s] : 0;
}

void wfp_aot_cache_stats(const wfp_aot *a, int *units, int *reused) {
  if (units)
    *units = a ? a->units : 0;
  if (reused)
    *reused = a ? a->reused : 0;
}

const char *wfp_aot_program_hash(const wfp_aot *a) {
  return a ? wfp_program_hash(a->prog) : "";
}

/* ---- temporary directory ---- */

/* The path of a file in the temporary directory: the same buffer for the
** same name, as long as the wfp_aot lives. */
static const char *tpath(wfp_aot *a, const char *name) {
  int i = 0;
  while (i < a->ntmp && strcmp(a->tmp_names[i], name) != 0)
    i++;
  if (i == a->ntmp) {
    WFP_ASSERT(a->ntmp < NTMP && strlen(name) < sizeof a->tmp_names[0]);
    snprintf(a->tmp_names[a->ntmp++], sizeof a->tmp_names[0], "%s", name);
  }
  snprintf(a->tmp_paths[i], sizeof a->tmp_paths[i], "%s/%s", a->tmp, name);
  return a->tmp_paths[i];
}

static int make_tmp(wfp_aot *a) {
  const char *base = getenv("TMPDIR");
  if (!base || !*base)
    base = "/tmp";
  snprintf(a->tmp, sizeof a->tmp, "%s/wfp-aot-XXXXXX", base);
  if (!mkdtemp(a->tmp)) {
    int e = errno;
    a->tmp[0] = 0;
    return adiag(a, WFP_EIO, "", "cannot create a temporary directory in %s: %s",
                 base, strerror(e));
  }
  return WFP_OK;
}

/* Removes the temporary directory and everything in it: our files and
** whatever the tools left there (it is their TMPDIR). No tool runs then. */
static void remove_tmp(wfp_aot *a) {
  if (!a->tmp[0])
    return;
  DIR *d = opendir(a->tmp);
  if (d) {
    char path[512];
    for (struct dirent *e; (e = readdir(d));) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
        continue;
      snprintf(path, sizeof path, "%s/%s", a->tmp, e->d_name);
      unlink(path);
    }
    closedir(d);
  }
  rmdir(a->tmp);
  a->tmp[0] = 0;
}

/* The tools' environment: ours, with TMPDIR pointing into the temporary
** directory (what they leave behind goes with it). NULL when out of memory. */
static char **tool_env(wfp_aot *a) {
  if (a->env)
    return a->env;
  size_t n = 0;
  while (environ[n])
    n++;
  char **env = wfp__arena_alloc(&a->arena, (n + 2) * sizeof *env);
  char *tmpdir = wfp__arena_printf(&a->arena, "TMPDIR=%s", a->tmp);
  if (!env || !tmpdir)
    return NULL;
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (strncmp(environ[i], "TMPDIR=", 7) != 0)
      env[k++] = environ[i];
  env[k++] = tmpdir;
  env[k] = NULL;
  a->env = env;
  return env;
}

/* ---- running tools ---- */

/* Splits a command string at spaces (no quoting: $CC is a program and
** perhaps some flags). -1 when out of memory. */
static int split_words(wfp_aot *a, const char *s, const char **argv, int max) {
  int n = 0;
  const char *p = s;
  while (*p && n < max) {
    while (*p == ' ' || *p == '\t')
      p++;
    if (!*p)
      break;
    const char *q = p;
    while (*q && *q != ' ' && *q != '\t')
      q++;
    if (!(argv[n++] = wfp__arena_strndup(&a->arena, p, (size_t)(q - p))))
      return -1;
    p = q;
  }
  return n;
}

/* The first lines of a tool's log, for the diagnostic. */
static const char *log_head(wfp_aot *a, const char *log) {
  char *data = NULL;
  size_t len = 0;
  if (wfp__read_file(log, &data, &len) || !len) {
    free(data);
    return "(no output)";
  }
  size_t cut = len < 800 ? len : 800;
  int lines = 0;
  for (size_t i = 0; i < cut; i++)
    if (data[i] == '\n' && ++lines == 6) {
      cut = i;
      break;
    }
  while (cut && (data[cut - 1] == '\n' || data[cut - 1] == ' '))
    cut--;
  const char *r = wfp__arena_strndup(&a->arena, data, cut);
  free(data);
  return r ? r : "";
}

static int write_tmp(wfp_aot *a, const char *name, const void *data, size_t len) {
  int rc = wfp__write_file_atomic(tpath(a, name), data, len, 0600);
  if (rc == WFP_ENOMEM)
    return nomem(a);
  if (rc)
    return adiag(a, WFP_EIO, "", "cannot write %s: %s", tpath(a, name), strerror(errno));
  return WFP_OK;
}

/* ---- the descriptor glue ---- */

static void c_string(wfp__buf *b, const char *s, size_t n) {
  wfp__buf_addc(b, '"');
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      wfp__buf_addc(b, '\\');
      wfp__buf_addc(b, (char)c);
    } else if (c >= 0x20 && c < 0x7f && c != '?') {
      wfp__buf_addc(b, (char)c);
    } else {
      /* octal escapes end by themselves, unlike \x */
      char e[5] = {'\\', (char)('0' + (c >> 6)), (char)('0' + ((c >> 3) & 7)),
                   (char)('0' + (c & 7)), 0};
      wfp__buf_adds(b, e);
    }
    if (i && i % 100 == 0 && i + 1 < n)
      wfp__buf_adds(b, "\"\n  \"");
  }
  wfp__buf_addc(b, '"');
}

static void c_opt_string(wfp__buf *b, const char *s) {
  if (s)
    c_string(b, s, strlen(s));
  else
    wfp__buf_adds(b, "NULL");
}

static int ty_code(wfp_type *t) {
  t = wfp__type_find(t);
  switch (t ? t->kind : WFP_T_VOID) {
  case WFP_T_I64: return WFP_TY_I64;
  case WFP_T_STR: return WFP_TY_STR;
  case WFP_T_JSON: return WFP_TY_JSON;
  case WFP_T_FN: return WFP_TY_FN;
  case WFP_T_VAR: return t->want_fn ? WFP_TY_FN : WFP_TY_VOID;
  default: return WFP_TY_VOID;
  }
}

static const char glue_code[] =
    "#define EXPORT __attribute__((visibility(\"default\")))\n"
    "\n"
    "/* the module's function types (what call_indirect checks a callee\n"
    "** against) are registered once per process, before any instance. A\n"
    "** trap (out of memory) may stop that or an instantiate midway: no\n"
    "** pthread_once, which a trap would leave locked for good, and an\n"
    "** instance the host can free whatever its filling did (abi.h) */\n"
    "static int module_ready;\n"
    "\n"
    "static void init_module(void) {\n"
    "  if (__atomic_load_n(&module_ready, __ATOMIC_ACQUIRE))\n"
    "    return;\n"
    "  Z_wfp_init_module();\n"
    "  __atomic_store_n(&module_ready, 1, __ATOMIC_RELEASE);\n"
    "}\n"
    "\n"
    "static void *inst_alloc(void) {\n"
    "  return calloc(1, sizeof(Z_wfp_instance_t));\n"
    "}\n"
    "\n"
    "static void inst_init(void *p) {\n"
    "  Z_wfp_instantiate(p);\n"
    "}\n"
    "\n"
    "/* the three at once, for hosts of the first ABI-1 descriptor */\n"
    "static void *inst_new(void) {\n"
    "  init_module();\n"
    "  void *i = inst_alloc();\n"
    "  if (i)\n"
    "    inst_init(i);\n"
    "  return i;\n"
    "}\n"
    "\n"
    "static void inst_free(void *p) {\n"
    "  if (!p)\n"
    "    return;\n"
    "  Z_wfp_free(p);\n"
    "  free(p);\n"
    "}\n"
    "\n"
    "static uint32_t rd32(const uint8_t *p) {\n"
    "  uint32_t v;\n"
    "  memcpy(&v, p, 4);\n"
    "  return v;\n"
    "}\n"
    "\n"
    "/* (ptr, len) of guest memory at off, checked against its size */\n"
    "static int lift(const wasm_rt_memory_t *m, const uint8_t *at, wfp_abi_bytes *b) {\n"
    "  uint32_t p = rd32(at), n = rd32(at + 4);\n"
    "  if ((uint64_t)p + n > m->size)\n"
    "    return -1;\n"
    "  b->ptr = m->data + p;\n"
    "  b->len = n;\n"
    "  return 0;\n"
    "}\n"
    "\n"
    "/* copies input, state and a string into one allocation of the guest:\n"
    "** their guest addresses in at[0..2]; -1 when they do not fit */\n"
    "static int copy_in(Z_wfp_instance_t *I, const char *input, uint32_t input_len,\n"
    "                   const uint8_t *state, uint32_t state_len, const char *s,\n"
    "                   uint32_t s_len, uint32_t at[3]) {\n"
    "  uint32_t a = (input_len + 7u) & ~7u, b = (state_len + 7u) & ~7u;\n"
    "  uint64_t total = (uint64_t)a + b + s_len;\n"
    "  if (total > 0x7fffffffu)\n"
    "    return -1;\n"
    "  uint32_t base = Z_wfpZ_cabi_realloc(I, 0, 0, 8, (uint32_t)total);\n"
    "  wasm_rt_memory_t *m = Z_wfpZ_memory(I);\n"
    "  if ((uint64_t)base + total > m->size)\n"
    "    return -1;\n"
    "  if (input_len)\n"
    "    memcpy(m->data + base, input, input_len);\n"
    "  if (state_len)\n"
    "    memcpy(m->data + base + a, state, state_len);\n"
    "  if (s_len)\n"
    "    memcpy(m->data + base + a + b, s, s_len);\n"
    "  at[0] = base;\n"
    "  at[1] = base + a;\n"
    "  at[2] = base + a + b;\n"
    "  return 0;\n"
    "}\n"
    "\n"
    "static int lift_step(Z_wfp_instance_t *I, uint32_t r, wfp_abi_step *out);\n"
    "\n"
    "/* the guest address of the guest's own copy of the state it wrote last\n"
    "** when state is byte for byte that (the guest then neither copies nor\n"
    "** compares it again), else 0: the state is copied in */\n"
    "static uint32_t own_state(Z_wfp_instance_t *I, const uint8_t *state, uint32_t len) {\n"
    "  if (!len)\n"
    "    return 0;\n"
    "  uint32_t r = Z_wfpZ_wfp_last_state(I);\n"
    "  const wasm_rt_memory_t *m = Z_wfpZ_memory(I);\n"
    "  if ((uint64_t)r + 8 > m->size)\n"
    "    return 0;\n"
    "  uint32_t p = rd32(m->data + r), n = rd32(m->data + r + 4);\n"
    "  if (!p || n != len || (uint64_t)p + n > m->size || memcmp(m->data + p, state, n) != 0)\n"
    "    return 0;\n"
    "  return p;\n"
    "}\n"
    "\n"
    "static int run_step(void *inst, uint64_t ctx, const char *input, uint32_t input_len,\n"
    "                    const uint8_t *state, uint32_t state_len, int has_resume,\n"
    "                    const char *resume, uint32_t resume_len, wfp_abi_step *out) {\n"
    "  Z_wfp_instance_t *I = inst;\n"
    "  uint32_t at[3], own = own_state(I, state, state_len);\n"
    "  if (copy_in(I, input, input_len, state, own ? 0 : state_len, resume, resume_len, at))\n"
    "    return -1;\n"
    "  uint32_t r = Z_wfpZ_runZ2Dstep(I, ctx, at[0], input_len, own ? own : at[1], state_len,\n"
    "                                 has_resume ? 1u : 0u, at[2], resume_len);\n"
    "  return lift_step(I, r, out);\n"
    "}\n"
    "\n"
    "/* resume-step: the resume value typed (WFP_RESUME_*): none, an i64 in v,\n"
    "** or JSON text copied in like run-step's */\n"
    "static int resume_step(void *inst, uint64_t ctx, const char *input, uint32_t input_len,\n"
    "                       const uint8_t *state, uint32_t state_len, uint32_t kind,\n"
    "                       int64_t v, const char *json, uint32_t json_len,\n"
    "                       wfp_abi_step *out) {\n"
    "  Z_wfp_instance_t *I = inst;\n"
    "  uint32_t at[3], own = own_state(I, state, state_len);\n"
    "  if (kind != WFP_RESUME_JSON)\n"
    "    json_len = 0;\n"
    "  if (copy_in(I, input, input_len, state, own ? 0 : state_len, json, json_len, at))\n"
    "    return -1;\n"
    "  uint64_t pay = kind == WFP_RESUME_JSON ? (uint64_t)at[2] : (uint64_t)v;\n"
    "  uint32_t r = Z_wfpZ_resumeZ2Dstep(I, ctx, at[0], input_len, own ? own : at[1],\n"
    "                                    state_len, kind, pay, json_len);\n"
    "  return lift_step(I, r, out);\n"
    "}\n"
    "\n"
    "/* the step-result at guest address r, lifted into *out */\n"
    "static int lift_step(Z_wfp_instance_t *I, uint32_t r, wfp_abi_step *out) {\n"
    "  wasm_rt_memory_t *m;\n"
    "  m = Z_wfpZ_memory(I);\n"
    "  if ((uint64_t)r + WFP_RA_SIZE > m->size)\n"
    "    return -1;\n"
    "  const uint8_t *ra = m->data + r;\n"
    "  memset(out, 0, sizeof *out);\n"
    "  out->kind = ra[WFP_RA_TAG];\n"
    "  if (out->kind == WFP_STEP_DONE || out->kind == WFP_STEP_TRAP)\n"
    "    return lift(m, ra + WFP_RA_TEXT, &out->text);\n"
    "  if (out->kind != WFP_STEP_PENDING)\n"
    "    return -1;\n"
    "  out->effect = ra[WFP_RA_EFFECT];\n"
    "  int bad = lift(m, ra + WFP_RA_STATE, &out->state);\n"
    "  switch (out->effect) {\n"
    "  case WFP_EFFECT_CTX_GET_I64: case WFP_EFFECT_SELF_GET:\n"
    "    bad |= lift(m, ra + WFP_RA_ARG0, &out->s0);\n"
    "    break;\n"
    "  case WFP_EFFECT_CTX_SET_I64:\n"
    "    bad |= lift(m, ra + WFP_RA_ARG0, &out->s0);\n"
    "    memcpy(&out->i, ra + WFP_RA_ARG1, 8);\n"
    "    break;\n"
    "  case WFP_EFFECT_MSG_SEND: case WFP_EFFECT_SELF_SET:\n"
    "    bad |= lift(m, ra + WFP_RA_ARG0, &out->s0) | lift(m, ra + WFP_RA_ARG1, &out->s1);\n"
    "    break;\n"
    "  case WFP_EFFECT_SLEEP_MS:\n"
    "    memcpy(&out->i, ra + WFP_RA_ARG0, 8);\n"
    "    break;\n"
    "  case WFP_EFFECT_DB_QUERY:\n"
    "    bad |= lift(m, ra + WFP_RA_ARG0, &out->s0) | lift(m, ra + WFP_RA_ARG1, &out->s1);\n"
    "    out->has_s2 = ra[WFP_RA_OPT];\n"
    "    if (out->has_s2)\n"
    "      bad |= lift(m, ra + WFP_RA_OPT_STR, &out->s2);\n"
    "    break;\n"
    "  case WFP_EFFECT_YIELD:\n"
    "    break;\n"
    "  default:\n"
    "    return -1;\n"
    "  }\n"
    "  return bad ? -1 : 0;\n"
    "}\n"
    "\n"
    "static void post_return(void *inst) {\n"
    "  /* the two exports' post-returns are the same function */\n"
    "  Z_wfpZ_cabi_post_runZ2Dstep(inst, 0);\n"
    "}\n"
    "\n"
    "static const char *fatal_message(void *inst) {\n"
    "  uint32_t p = Z_wfpZ_wfp_fatal_message(inst);\n"
    "  wasm_rt_memory_t *m = Z_wfpZ_memory(inst);\n"
    "  if (!p || p >= m->size || !memchr(m->data + p, 0, m->size - p))\n"
    "    return \"\";\n"
    "  return (const char *)m->data + p;\n"
    "}\n"
    "\n"
    "static size_t memory_bytes(void *inst) {\n"
    "  return Z_wfpZ_memory(inst)->size;\n"
    "}\n"
    "\n"
    "static void set_fuel(void *inst, int64_t budget) {\n"
    "  Z_wfpZ_wfp_set_fuel(inst, (u64)budget);\n"
    "}\n"
    "\n"
    "static int64_t fuel_used(void *inst) {\n"
    "  return (int64_t)Z_wfpZ_wfp_fuel_used(inst);\n"
    "}\n"
    "\n"
    "static const wfp_module_desc desc = {\n"
    "  WFP_ABI_VERSION, sizeof(wfp_module_desc), WFP_COMPILER_VERSION, WFP_PROGRAM_HASH,\n"
    "  ir, sizeof ir - 1, WFP_ENTRY, sizeof funcs / sizeof funcs[0] - 1, funcs,\n"
    "  sizeof resources / sizeof resources[0] - 1, resources,\n"
    "  inst_new, inst_free, run_step, post_return, fatal_message, memory_bytes,\n"
    "  set_fuel, fuel_used, WFP_RT_LAYOUT, init_module, inst_alloc, inst_init,\n"
    "  resume_step};\n"
    "\n"
    "EXPORT const wfp_module_desc *wfp_module_descriptor(void) { return &desc; }\n";

static char *make_glue(wfp_aot *a, size_t *len) {
  const wfp_program *p = a->prog;
  wfp__buf b;
  wfp__buf_init(&b);
  wfp__buf_printf(&b,
                  "/* the descriptor of wfp program %s: generated by wfp-aot */\n"
                  "#include <stddef.h>\n#include <stdint.h>\n#include <stdlib.h>\n"
                  "#include <string.h>\n\n"
                  "#include \"abi.h\"\n#include \"module.h\"\n\n",
                  p->hash);
  wfp__buf_printf(&b, "#define WFP_COMPILER_VERSION \"%s\"\n", WFP_VERSION_STRING);
  wfp__buf_printf(&b, "#define WFP_PROGRAM_HASH \"%s\"\n", p->hash);
  wfp__buf_adds(&b, "#define WFP_ENTRY ");
  c_opt_string(&b, p->entry ? p->entry->name : NULL);
  wfp__buf_adds(&b, "\n\nstatic const char ir[] =\n  ");
  c_string(&b, p->ir_text, p->ir_len);
  wfp__buf_adds(&b, ";\n\n");
  for (int i = 0; i < p->nfuncs; i++) {
    const wfp_func *f = p->funcs[i];
    int n = f->ncaps + f->nparams;
    if (!n)
      continue;
    wfp__buf_printf(&b, "static const char *const f%d_names[] = {", i);
    for (int k = 0; k < n; k++) {
      wfp_var *v = k < f->ncaps ? f->caps[k] : f->params[k - f->ncaps];
      c_string(&b, v->name, strlen(v->name));
      wfp__buf_adds(&b, ", ");
    }
    wfp__buf_printf(&b, "};\nstatic const uint8_t f%d_types[] = {", i);
    for (int k = 0; k < n; k++) {
      wfp_var *v = k < f->ncaps ? f->caps[k] : f->params[k - f->ncaps];
      wfp__buf_printf(&b, "%d, ", ty_code(v->type));
    }
    wfp__buf_adds(&b, "};\n");
  }
  wfp__buf_adds(&b, "\nstatic const wfp_abi_func funcs[] = {\n");
  for (int i = 0; i < p->nfuncs; i++) {
    const wfp_func *f = p->funcs[i];
    int n = f->ncaps + f->nparams;
    wfp__buf_adds(&b, "  {");
    c_string(&b, f->name, strlen(f->name));
    wfp__buf_adds(&b, ", ");
    c_string(&b, f->id, strlen(f->id));
    if (n)
      wfp__buf_printf(&b, ", %d, %d, f%d_names, f%d_types, %d, ", n, f->ncaps, i, i,
                      ty_code(f->ret));
    else
      wfp__buf_printf(&b, ", 0, 0, NULL, NULL, %d, ", ty_code(f->ret));
    c_opt_string(&b, f->resource ? f->resource->name : NULL);
    wfp__buf_adds(&b, ", ");
    c_opt_string(&b, f->parent ? f->parent->name : NULL);
    wfp__buf_adds(&b, "},\n");
  }
  wfp__buf_adds(&b, "  {0}};\n\n");
  for (int i = 0; i < p->nresources; i++) {
    const wfp_resource *r = p->resources[i];
    wfp__buf_printf(&b, "static const char *const r%d_props[] = {", i);
    for (int k = 0; k < r->nprops; k++) {
      c_string(&b, r->prop_names[k], strlen(r->prop_names[k]));
      wfp__buf_adds(&b, ", ");
    }
    wfp__buf_printf(&b, "NULL};\nstatic const uint8_t r%d_types[] = {", i);
    for (int k = 0; k < r->nprops; k++)
      wfp__buf_printf(&b, "%d, ",
                      r->prop_types[k] == WFP_T_STR    ? WFP_TY_STR
                      : r->prop_types[k] == WFP_T_JSON ? WFP_TY_JSON
                                                       : WFP_TY_I64);
    wfp__buf_printf(&b, "0};\nstatic const char *const r%d_methods[] = {", i);
    for (int k = 0; k < r->nmethods; k++) {
      c_string(&b, r->methods[k], strlen(r->methods[k]));
      wfp__buf_adds(&b, ", ");
    }
    wfp__buf_adds(&b, "NULL};\n");
  }
  wfp__buf_adds(&b, "static const wfp_abi_resource resources[] = {\n");
  for (int i = 0; i < p->nresources; i++) {
    const wfp_resource *r = p->resources[i];
    wfp__buf_adds(&b, "  {");
    c_string(&b, r->name, strlen(r->name));
    wfp__buf_printf(&b, ", %d, r%d_props, r%d_types, %d, r%d_methods},\n", r->nprops,
                    i, i, r->nmethods, i);
  }
  wfp__buf_adds(&b, "  {0}};\n\n");
  wfp__buf_adds(&b, glue_code);
  if (b.oom) {
    wfp__buf_free(&b);
    return NULL;
  }
  return wfp__buf_take(&b, len);
}

/* ---- the C in translation units: in parallel, and cached ----
** gcc -O2 spends most of wfp-aot's time on wasm2c's output, one translation
** unit of a few thousand lines, most of it the guest runtime, the same in
** every program. It is split at function boundaries: part A keeps
** everything but the function definitions and the data (prelude,
** instantiation, exports); the data segments and init_memories are a unit
** of their own; the definitions go to chunks, each a unit of its own made
** of the prelude, the prototypes its code names and its definitions.
** Definitions and prototypes lose "static" to link across the units
** (-fvisibility=hidden keeps them inside the .so). A chunk ends where its
** content says (after a definition whose text hashes to 0 modulo 4, once
** the chunk has CHUNK_MIN lines; at CHUNK_MAX lines at the latest), so a
** change in one function moves no other chunk's boundary and leaves its
** text as it was: its object comes from the cache (cache_key). The
** patterns are those of wasm2c 1.0.32: when they are not found, the file
** is compiled whole, as one unit. */

#define CHUNK_MIN 400
#define CHUNK_MAX 1500
/* the program's own functions in smaller chunks: a change to one of them
** compiles little more than it (each chunk costs a run of the compiler
** and its prelude, about 30 ms; the runtime's chunks are compiled once) */
#define CHUNK_MIN_OWN 150

typedef struct line {
  const char *p;
  size_t n;
} line;

static bool starts(const line *l, const char *pre) {
  size_t k = strlen(pre);
  return l->n >= k && memcmp(l->p, pre, k) == 0;
}

/* A function's prototype or definition starts at L[i] when the line begins
** with one of wasm2c's function types; its header may wrap over several
** lines (wasm2c wraps long parameter lists). Returns the line that ends the
** header, with ';' (a prototype, *def false) or '{' (a definition, *def
** true), or -1 when L[i] starts neither. */
static long fn_header(const line *L, size_t n, size_t i, bool *def) {
  static const char *const types[] = {"static u32 w2c_", "static u64 w2c_",
                                      "static f32 w2c_", "static f64 w2c_",
                                      "static void w2c_", NULL};
  bool t = false;
  for (const char *const *q = types; *q && !t; q++)
    t = starts(&L[i], *q);
  if (!t)
    return -1;
  /* wasm2c puts eight parameters or so on a line: a function of the most
  ** parameters the checker allows (1,000) has a header of some 125 lines;
  ** far beyond that, it is not what we know */
  for (size_t j = i; j < n && j < i + 1024; j++) {
    char last = L[j].n ? L[j].p[L[j].n - 1] : 0;
    if (last == ';' || last == '{') {
      *def = last == '{';
      return (long)j;
    }
  }
  return -1;
}

static void add_line(wfp__buf *b, const line *l, bool drop_static) {
  if (drop_static && starts(l, "static "))
    wfp__buf_add(b, l->p + 7, l->n - 7);
  else
    wfp__buf_add(b, l->p, l->n);
  wfp__buf_addc(b, '\n');
}

static bool ident_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '_';
}

/* The first occurrence of needle (m bytes, m > 0) in hay (n bytes), or NULL. */
static const char *find_bytes(const char *hay, size_t n, const char *needle, size_t m) {
  for (const char *p = hay, *end = hay + n; (size_t)(end - p) >= m; p++) {
    p = memchr(p, needle[0], (size_t)(end - p) - m + 1);
    if (!p)
      return NULL;
    if (memcmp(p, needle, m) == 0)
      return p;
  }
  return NULL;
}

/* True when the identifier name (n bytes) occurs in text as a whole word. */
static bool names(const char *text, size_t len, const char *name, size_t n) {
  for (const char *p = text, *end = text + len; p + n <= end;) {
    const char *q = find_bytes(p, (size_t)(end - p), name, n);
    if (!q)
      return false;
    bool before = q > text && ident_char(q[-1]);
    bool after = q + n < end && ident_char(q[n]);
    if (!before && !after)
      return true;
    p = q + 1;
  }
  return false;
}

/* FNV-1a of the lines [from, to]: where the content cuts a chunk */
static uint32_t lines_hash(const line *L, int from, int to) {
  uint32_t h = 2166136261u;
  for (int k = from; k <= to; k++)
    for (size_t i = 0; i < L[k].n; i++)
      h = (h ^ (unsigned char)L[k].p[i]) * 16777619u;
  return h;
}

/* Writes part_a.c, data.c (when *data) and chunk_0.c .. chunk_<n-1>.c;
** returns n, or 0 when the file does not look as expected (the caller
** compiles module.c whole), or an error (with its diagnostic): out of
** memory, or the temporary directory failing. own is the index of the
** program's first function (wfp_cg_opts.first_own; -1: unknown): a chunk
** starts there, so that the runtime's chunks before it hold nothing of
** the program. */
static int split_module(wfp_aot *a, long own, bool *data) {
  char *text = NULL;
  size_t len = 0;
  int rc = wfp__read_file(tpath(a, "module.c"), &text, &len);
  if (rc)
    return rc == WFP_ENOMEM ? nomem(a) : 0;
  size_t nl = 0;
  for (size_t i = 0; i < len; i++)
    nl += text[i] == '\n';
  line *L = calloc(nl + 1, sizeof *L);
  int *def_start = calloc(nl + 1, sizeof *def_start);
  int *def_end = calloc(nl + 1, sizeof *def_end);
  int *def_chunk = calloc(nl + 1, sizeof *def_chunk);
  int *proto_start = calloc(nl + 1, sizeof *proto_start);
  int *proto_end = calloc(nl + 1, sizeof *proto_end);
  int nchunks = 0, ok = 0;
  wfp__buf A, P, C, D;
  wfp__buf_init(&A);
  wfp__buf_init(&P);
  wfp__buf_init(&C);
  wfp__buf_init(&D);
  *data = false;
  if (!L || !def_start || !def_end || !def_chunk || !proto_start || !proto_end) {
    ok = nomem(a);
    goto out;
  }
  size_t n = 0;
  for (size_t i = 0, st = 0; i < len; i++)
    if (text[i] == '\n') {
      L[n].p = text + st;
      L[n].n = i - st;
      n++;
      st = i + 1;
    }
  int prelude_end = -1, ndefs = 0, nprotos = 0;
  /* the data segments and init_memories, which loads them: lines
  ** [data_from, data_to] */
  int data_from = -1, mem_from = -1, data_to = -1;
  for (size_t i = 0; i < n; i++) {
    if (prelude_end < 0 && starts(&L[i], "static bool s_module_initialized"))
      prelude_end = (int)i;
    if (prelude_end < 0)
      continue;
    if (data_from < 0 && starts(&L[i], "static const u8 data_segment_data_"))
      data_from = (int)i;
    if (mem_from < 0 && starts(&L[i], "static void init_memories(") && L[i].n &&
        L[i].p[L[i].n - 1] == '{') {
      mem_from = (int)i;
      size_t j = i + 1;
      while (j < n && !(L[j].n == 1 && L[j].p[0] == '}'))
        j++;
      if (j < n)
        data_to = (int)j;
      i = j;
      continue;
    }
    bool def;
    long h = fn_header(L, n, i, &def);
    if (h < 0)
      continue;
    if (!def) {
      proto_start[nprotos] = (int)i;
      proto_end[nprotos++] = (int)h;
      i = (size_t)h;
      continue;
    }
    size_t j = (size_t)h + 1;
    while (j < n && !(L[j].n == 1 && L[j].p[0] == '}'))
      j++;
    if (j == n)
      goto out;
    def_start[ndefs] = (int)i;
    def_end[ndefs] = (int)j;
    ndefs++;
    i = j;
  }
  if (prelude_end < 0 || ndefs < 2)
    goto out;
  if (data_from < 0 || data_from > mem_from)
    data_from = mem_from;
  if (data_to < 0)
    data_from = mem_from = -1;
  /* the chunks: cut where the content says, and before the program's
  ** first function. At most MAX_UNITS - 4 chunks (with part A, the data
  ** and the glue's two): the last takes what remains */
  for (int d = 0, lines = 0; d < ndefs; d++) {
    if (d == own && lines > 0 && nchunks < MAX_UNITS - 5) {
      nchunks++;
      lines = 0;
    }
    def_chunk[d] = nchunks;
    lines += def_end[d] - def_start[d] + 1;
    /* in the program's part, by the hash of the definition's first line
    ** (its name and signature): a change inside a function does not move
    ** the cut after it. (The low bits of FNV-1a follow the parity of the
    ** bytes: a higher one.) */
    bool mine = own >= 0 && d >= own;
    uint32_t hash = lines_hash(L, def_start[d], mine ? def_start[d] : def_end[d]);
    bool cut = (mine ? lines >= CHUNK_MIN_OWN && (hash >> 13) % 2 == 0
                     : lines >= CHUNK_MIN && hash % 4 == 0) ||
               lines >= CHUNK_MAX;
    if ((cut && nchunks < MAX_UNITS - 5) || d == ndefs - 1) {
      nchunks++;
      lines = 0;
    }
  }
  /* the data: a unit of its own, the prelude, the segments and
  ** init_memories, which part A declares. Part A is then the same in
  ** programs that differ in a literal, and its object comes from the cache */
  if (data_from >= 0) {
    for (int i = 0; i < prelude_end; i++)
      add_line(&D, &L[i], false);
    for (int i = data_from; i <= data_to; i++)
      add_line(&D, &L[i], i == mem_from);
    if (D.oom) {
      ok = nomem(a);
      goto out;
    }
    if ((rc = write_tmp(a, "data.c", D.data, D.len))) {
      ok = rc;
      goto out;
    }
    *data = true;
  }
  /* part A: all but the definitions and the data */
  for (int i = 0, d = 0; i < (int)n; i++) {
    if (d < ndefs && i == def_start[d]) {
      i = def_end[d++];
      continue;
    }
    if (i == data_from) {
      const line *h = &L[mem_from];
      wfp__buf_add(&A, h->p + 7, h->n - 9); /* no "static ", no " {" */
      wfp__buf_adds(&A, ";\n");
      i = data_to;
      continue;
    }
    bool proto = false;
    long h = i < prelude_end ? -1 : fn_header(L, n, (size_t)i, &proto);
    if (h >= 0) {
      for (long k = i; k <= h; k++)
        add_line(&A, &L[k], k == i);
      i = (int)h;
    } else {
      add_line(&A, &L[i], starts(&L[i], "static u32 func_types["));
    }
  }
  if (A.oom) {
    ok = nomem(a);
    goto out;
  }
  if ((rc = write_tmp(a, "part_a.c", A.data, A.len))) {
    ok = rc;
    goto out;
  }
  /* the chunks: the prelude, the table of function types, the
  ** prototypes the chunk names, its definitions */
  for (int c = 0, d = 0; c < nchunks; c++) {
    wfp__buf_free(&C);
    wfp__buf_init(&C);
    for (; d < ndefs && def_chunk[d] == c; d++)
      for (int k = def_start[d]; k <= def_end[d]; k++)
        add_line(&C, &L[k], k == def_start[d]);
    wfp__buf_free(&P);
    wfp__buf_init(&P);
    for (int i = 0; i < prelude_end; i++)
      add_line(&P, &L[i], false);
    wfp__buf_adds(&P, "extern u32 func_types[];\n");
    for (int p = 0; p < nprotos; p++) {
      const line *h = &L[proto_start[p]];
      const char *nm = find_bytes(h->p, h->n, "w2c_", 4);
      const char *paren = nm ? memchr(nm, '(', h->n - (size_t)(nm - h->p)) : NULL;
      if (!paren || !names(C.data, C.len, nm, (size_t)(paren - nm)))
        continue;
      for (int k = proto_start[p]; k <= proto_end[p]; k++)
        add_line(&P, &L[k], k == proto_start[p]);
    }
    wfp__buf_add(&P, C.data, C.len);
    if (C.oom || P.oom) {
      ok = nomem(a);
      goto out;
    }
    char name[32];
    snprintf(name, sizeof name, "chunk_%d.c", c);
    if ((rc = write_tmp(a, name, P.data, P.len))) {
      ok = rc;
      goto out;
    }
  }
  ok = nchunks;
out:
  wfp__buf_free(&A);
  wfp__buf_free(&P);
  wfp__buf_free(&C);
  wfp__buf_free(&D);
  free(L);
  free(def_start);
  free(def_end);
  free(def_chunk);
  free(proto_start);
  free(proto_end);
  free(text);
  return ok;
}

/* The glue in two units: glue_code.c, the code of glue_code, the same in
** every program, whose object comes from the cache; glue_tables.c, the
** program's tables and its descriptor, small. glue is make_glue's text,
** whose glue_code part is split where the descriptor starts: the
** functions the descriptor names lose "static" in glue_code.c and are
** declared in glue_tables.c. Returns true when both were written; false
** when glue_code does not look as expected (the caller compiles glue.c
** whole), or on an error (*rc set, with its diagnostic). */
static bool split_glue(wfp_aot *a, const char *glue, size_t glen, int *rc) {
  static const char marker[] = "static const wfp_module_desc desc = {";
  static const char *const tables[] = {"ir", "funcs", "resources", "WFP_PROGRAM_HASH",
                                       "WFP_ENTRY", NULL};
  const char *code = find_bytes(glue, glen, glue_code, sizeof glue_code - 1);
  const char *desc = code ? find_bytes(code, sizeof glue_code - 1, marker, sizeof marker - 1)
                          : NULL;
  *rc = WFP_OK;
  if (!desc)
    return false;
  size_t clen = (size_t)(desc - code);
  const char *dend = find_bytes(desc, (size_t)(glue + glen - desc), "};", 2);
  if (!dend)
    return false;
  /* the code part must not name what the tables define */
  for (const char *const *t = tables; *t; t++)
    if (names(code, clen, *t, strlen(*t)))
      return false;
  /* lines of the code part, with "static " dropped where a function the
  ** descriptor names is defined; its header (up to its '{') becomes a
  ** prototype in the tables unit */
  wfp__buf C, T, P;
  wfp__buf_init(&C);
  wfp__buf_init(&T);
  wfp__buf_init(&P);
  bool ok = false;
  const char *init = desc + sizeof marker - 1;
  char *drop = calloc(clen + 1, 1); /* drop[i]: the line at i loses "static " */
  if (!drop) {
    *rc = nomem(a);
    goto out;
  }
  for (const char *q = init; q < dend;) {
    while (q < dend && (*q == ' ' || *q == '\n' || *q == ','))
      q++;
    const char *e = q;
    while (e < dend && *e != ',')
      e++;
    const char *te = e;
    while (te > q && (te[-1] == ' ' || te[-1] == '\n'))
      te--;
    size_t n = (size_t)(te - q);
    bool fn = n > 0 && ((*q >= 'a' && *q <= 'z') || *q == '_');
    for (size_t k = 0; k < n && fn; k++)
      fn = ident_char(q[k]);
    if (fn && !(n == 2 && memcmp(q, "ir", 2) == 0) && !(n == 5 && memcmp(q, "funcs", 5) == 0) &&
        !(n == 9 && memcmp(q, "resources", 9) == 0)) {
      /* its definition: a line "static ... name(" */
      bool found = false;
      for (const char *l = code; l < code + clen && !found;) {
        const char *le = memchr(l, '\n', (size_t)(code + clen - l));
        if (!le)
          break;
        const char *nm = find_bytes(l, (size_t)(le - l), q, n);
        if (strncmp(l, "static ", 7) == 0 && nm && nm[n] == '(' && !ident_char(nm[-1]) &&
            find_bytes(l, (size_t)(le - l), "=", 1) == NULL) {
          found = true;
          drop[l - code] = 1;
          /* the header, to its '{' */
          const char *h = l + 7, *he = h;
          while (he < code + clen && *he != '{')
            he++;
          if (he == code + clen || he == h)
            break;
          wfp__buf_add(&P, h, (size_t)(he - h));
          while (P.len && P.data[P.len - 1] == ' ')
            P.len--;
          wfp__buf_adds(&P, ";\n");
        }
        l = le + 1;
      }
      if (!found)
        goto out;
    }
    q = e;
  }
  /* glue_code.c: make_glue's includes, no program, the code */
  wfp__buf_adds(&C, "/* the code of the descriptor glue: generated by wfp-aot */\n"
                    "#include <stddef.h>\n#include <stdint.h>\n#include <stdlib.h>\n"
                    "#include <string.h>\n\n#include \"abi.h\"\n#include \"module.h\"\n\n");
  for (const char *l = code; l < code + clen;) {
    const char *le = memchr(l, '\n', (size_t)(code + clen - l));
    const char *end = le ? le + 1 : code + clen;
    if (drop[l - code])
      wfp__buf_add(&C, l + 7, (size_t)(end - l - 7));
    else
      wfp__buf_add(&C, l, (size_t)(end - l));
    l = end;
  }
  /* glue_tables.c: glue.c without the code part, with the code's macros
  ** and the prototypes */
  wfp__buf_add(&T, glue, (size_t)(code - glue));
  for (const char *l = code; l < code + clen;) {
    const char *le = memchr(l, '\n', (size_t)(code + clen - l));
    const char *end = le ? le + 1 : code + clen;
    if (strncmp(l, "#define ", 8) == 0)
      wfp__buf_add(&T, l, (size_t)(end - l));
    l = end;
  }
  wfp__buf_add(&T, P.data, P.len);
  wfp__buf_add(&T, desc, (size_t)(glue + glen - desc));
  if (C.oom || T.oom || P.oom) {
    *rc = nomem(a);
    goto out;
  }
  if ((*rc = write_tmp(a, "glue_code.c", C.data, C.len)) ||
      (*rc = write_tmp(a, "glue_tables.c", T.data, T.len)))
    goto out;
  ok = true;
out:
  free(drop);
  wfp__buf_free(&C);
  wfp__buf_free(&T);
  wfp__buf_free(&P);
  return ok;
}

/* Appends the temporary file from to the temporary file to. */
static int append_tmp(wfp_aot *a, const char *to, const char *from) {
  char *x = NULL, *y = NULL;
  size_t xl = 0, yl = 0;
  int rc = wfp__read_file(tpath(a, to), &x, &xl);
  if (!rc)
    rc = wfp__read_file(tpath(a, from), &y, &yl);
  char *z = rc ? NULL : malloc(xl + yl + 1);
  if (z) {
    memcpy(z, x, xl);
    memcpy(z + xl, y, yl);
    rc = write_tmp(a, to, z, xl + yl);
  } else if (rc == WFP_ENOMEM || !rc) {
    rc = nomem(a);
  } else {
    rc = adiag(a, WFP_EIO, "", "cannot read %s: %s", tpath(a, from), strerror(errno));
  }
  free(x);
  free(y);
  free(z);
  return rc;
}

/* ---- the object cache ----
** The objects of translation units, kept by content in a directory: an
** object's name is the SHA-256 of the compiler command (its words but the
** temporary -I), the identity of the compiler's program (size, time and
** inode of the file it runs), the headers every unit may include and the
** unit's text. An entry is written atomically (a temporary file, then a
** rename): concurrent wfp-aot runs that make the same object write the
** same bytes, and a reader sees a whole object or none. trim_cache keeps
** it within a size, the least recently used out first. */

/* mkdir -p, for the cache's directory; true when it exists at the end */
static bool make_dirs(const char *path) {
  char p[1024];
  size_t n = strlen(path);
  if (n == 0 || n >= sizeof p)
    return false;
  memcpy(p, path, n + 1);
  for (size_t i = 1; i <= n; i++)
    if (p[i] == '/' || p[i] == 0) {
      char c = p[i];
      p[i] = 0;
      if (mkdir(p, 0755) != 0 && errno != EEXIST)
        return false;
      p[i] = c;
    }
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The cache directory: opts.cache_dir, else $WFP_CACHE_DIR, else
** $XDG_CACHE_HOME/wfp, else $HOME/.cache/wfp; with the format's version
** below it. NULL (no cache) when the one chosen is empty or cannot be
** made. */
static const char *cache_dir(wfp_aot *a) {
  const char *d = a->o.cache_dir;
  const char *base = NULL;
  if (!d)
    d = getenv("WFP_CACHE_DIR");
  if (!d) {
    const char *x = getenv("XDG_CACHE_HOME");
    const char *h = getenv("HOME");
    if (x && *x == '/')
      base = wfp__arena_printf(&a->arena, "%s/wfp", x);
    else if (h && *h)
      base = wfp__arena_printf(&a->arena, "%s/.cache/wfp", h);
    d = base;
  }
  if (!d || !*d)
    return NULL;
  const char *dir = wfp__arena_printf(&a->arena, "%s/objects-1", d);
  return dir && make_dirs(dir) ? dir : NULL;
}

/* The cache's size limit: $WFP_CACHE_MAX, bytes or a number with K, M or
** G (powers of 1024); 0 for none; CACHE_MAX when unset or empty. Returns
** false when it is not a size. */
#define CACHE_MAX (256ull << 20)
static bool cache_max(unsigned long long *max) {
  const char *v = getenv("WFP_CACHE_MAX");
  *max = CACHE_MAX;
  if (!v || !*v)
    return true;
  char *end;
  errno = 0;
  if (*v < '0' || *v > '9')
    return false;
  unsigned long long n = strtoull(v, &end, 10);
  int shift = 0;
  if (*end == 'K' || *end == 'k')
    shift = 10;
  else if (*end == 'M' || *end == 'm')
    shift = 20;
  else if (*end == 'G' || *end == 'g')
    shift = 30;
  if (shift)
    end++;
  if (errno || *end || n > (~0ull >> shift))
    return false;
  *max = n << shift;
  return true;
}

typedef struct entry {
  struct timespec t;
  unsigned long long size;
  char name[96];
} entry;

static int older(const void *x, const void *y) {
  const entry *a = x, *b = y;
  if (a->t.tv_sec != b->t.tv_sec)
    return a->t.tv_sec < b->t.tv_sec ? -1 : 1;
  return a->t.tv_nsec < b->t.tv_nsec ? -1 : a->t.tv_nsec > b->t.tv_nsec;
}

/* Keeps the cache within max bytes (0: no limit): when its objects take
** more, the least recently used go (an object's time is when it was
** written or last reused) until they take three quarters of max; a
** temporary file an hour old (a run that died while writing) goes too.
** Another run may link an object removed meanwhile: its link fails and it
** compiles every unit again, as for any object that does not link. */
static int trim_cache(wfp_aot *a, const char *dir, unsigned long long max) {
  DIR *d = opendir(dir);
  if (!d)
    return WFP_OK;
  entry *e = NULL;
  size_t n = 0, cap = 0;
  unsigned long long total = 0;
  time_t stale = time(NULL) - 3600;
  int rc = WFP_OK;
  for (struct dirent *de; (de = readdir(d));) {
    size_t k = strlen(de->d_name);
    struct stat st;
    if (k >= sizeof e->name || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) ||
        !S_ISREG(st.st_mode))
      continue;
    if (strstr(de->d_name, ".tmp.")) {
      if (st.st_mtime < stale)
        unlinkat(dirfd(d), de->d_name, 0);
      continue;
    }
    if (k < 3 || strcmp(de->d_name + k - 2, ".o") != 0)
      continue;
    total += (unsigned long long)st.st_size;
    if (n == cap) {
      size_t c = cap ? 2 * cap : 64;
      entry *ne = realloc(e, c * sizeof *e);
      if (!ne) {
        rc = nomem(a);
        goto out;
      }
      e = ne;
      cap = c;
    }
    e[n].t = st.st_mtim;
    e[n].size = (unsigned long long)st.st_size;
    memcpy(e[n].name, de->d_name, k + 1);
    n++;
  }
  if (!max || total <= max)
    goto out;
  qsort(e, n, sizeof *e, older);
  for (size_t i = 0; i < n && total > max / 4 * 3; i++)
    if (unlinkat(dirfd(d), e[i].name, 0) == 0 || errno == ENOENT)
      total -= e[i].size;
out:
  free(e);
  closedir(d);
  return rc;
}

/* Finds the program a command runs as exec would: a name with a slash as
** it is, another in $PATH's directories. */
static bool find_program(const char *prog, struct stat *st) {
  if (strchr(prog, '/'))
    return stat(prog, st) == 0;
  const char *path = getenv("PATH");
  char full[1024];
  for (const char *p = path ? path : ""; *p;) {
    const char *e = strchr(p, ':');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    if (n && n + strlen(prog) + 2 < sizeof full) {
      memcpy(full, p, n);
      full[n] = '/';
      strcpy(full + n + 1, prog);
      if (stat(full, st) == 0 && S_ISREG(st->st_mode) && access(full, X_OK) == 0)
        return true;
    }
    p += n + (e ? 1 : 0);
  }
  return false;
}

/* The identity of the program a command runs: the file PATH finds. */
static void program_identity(const char *prog, wfp__sha256 *h) {
  struct stat st;
  bool found = find_program(prog, &st);
  char id[96];
  int k = found ? snprintf(id, sizeof id, "%lld %lld %llu\n", (long long)st.st_size,
                           (long long)st.st_mtime, (unsigned long long)st.st_ino)
                : snprintf(id, sizeof id, "?\n");
  wfp__sha256_update(h, id, (size_t)k);
}

/* The C compiler when neither the options nor $CC name one: clang where
** it is installed, else the system's cc. Measured side by side
** (bench/README.md, "The C compiler"), clang's code runs compute-heavy
** programs markedly faster than gcc's and steps at the same speed, at
** about the same compile time; the differential tests run under both. */
static const char *default_cc(void) {
  struct stat st;
  return find_program("clang", &st) ? "clang" : "cc";
}

/* A tool running in the background: its output goes to a log in the
** temporary directory; the first lines make the diagnostic on failure. */
typedef struct job {
  const char *const *argv;
  const char *log;  /* file name in the temporary directory */
  const char *what; /* "wasm2c", "the C compiler" */
  const char *hint; /* what to do when it cannot run */
  pid_t pid;
  int slot; /* its place in a->pids */
} job;

static int spawn_job(wfp_aot *a, job *j) {
  j->pid = -1;
  if (a->cancel)
    return cancelled(a);
  char **env = tool_env(a);
  if (!env)
    return adiag(a, WFP_ENOMEM, "", "out of memory");
  posix_spawn_file_actions_t fa;
  int rc = posix_spawn_file_actions_init(&fa);
  if (rc)
    return rc == ENOMEM ? nomem(a) : adiag(a, WFP_ETOOLCHAIN, "", "cannot run %s: %s",
                                           j->what, strerror(rc));
  /* a process group of its own: a cancellation kills what it runs too (the
  ** C compiler's cc1, as, ld), and a terminal's ^C reaches us, not it */
  posix_spawnattr_t at;
  bool at_made = false;
  /* each action is an allocation: a tool never runs with its output or
  ** input where they should not be */
  if (!(rc = posix_spawn_file_actions_addopen(&fa, 1, tpath(a, j->log),
                                              O_WRONLY | O_CREAT | O_TRUNC, 0600)) &&
      !(rc = posix_spawn_file_actions_adddup2(&fa, 1, 2)) &&
      !(rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)) &&
      !(rc = posix_spawnattr_init(&at)) && (at_made = true) &&
      !(rc = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP)) &&
      !(rc = posix_spawnattr_setpgroup(&at, 0)))
    rc = posix_spawnp(&j->pid, j->argv[0], &fa, &at, (char *const *)j->argv, env);
  if (at_made)
    posix_spawnattr_destroy(&at);
  posix_spawn_file_actions_destroy(&fa);
  if (rc == ENOMEM) {
    j->pid = -1;
    return nomem(a);
  }
  if (rc != 0) {
    j->pid = -1;
    return adiag(a, WFP_ETOOLCHAIN, "", "cannot run %s '%s': %s%s", j->what, j->argv[0],
                 strerror(rc), j->hint);
  }
  a->pids[j->slot] = j->pid;
  /* a cancellation that came before the pid was known */
  if (a->cancel)
    kill(-j->pid, SIGKILL);
  return WFP_OK;
}

/* Waits for the job; a failure is reported unless quiet (when parallel
** jobs fail alike, one message is enough). */
static int wait_job(wfp_aot *a, job *j, bool quiet) {
  if (j->pid < 0)
    return a->cancel ? WFP_ECANCELED : WFP_ETOOLCHAIN;
  /* wait without reaping, forget the pid, then reap: until then the pid
  ** (and its group's id) cannot be reused, so a cancellation never kills
  ** another process's group */
  siginfo_t si;
  int st;
  while (waitid(P_PID, (id_t)j->pid, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR)
    ;
  a->pids[j->slot] = 0;
  while (waitpid(j->pid, &st, 0) < 0)
    if (errno != EINTR)
      return adiag(a, WFP_ETOOLCHAIN, "", "%s: %s", j->what, strerror(errno));
  if (a->cancel)
    return cancelled(a);
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
    return WFP_OK;
  if (quiet)
    return WFP_ETOOLCHAIN;
  if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
    return adiag(a, WFP_ETOOLCHAIN, "", "cannot run %s '%s'%s", j->what, j->argv[0], j->hint);
  return adiag(a, WFP_ETOOLCHAIN, "", "%s '%s' failed (%s %d): %s", j->what, j->argv[0],
               WIFEXITED(st) ? "exit status" : "signal",
               WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), log_head(a, tpath(a, j->log)));
}

/* Runs one tool to its end. */
static int run_tool(wfp_aot *a, const char *const *argv, const char *log,
                    const char *what, const char *hint) {
  job j = {argv, log, what, hint, -1, 0};
  int rc = spawn_job(a, &j);
  return rc ? rc : wait_job(a, &j, false);
}

/* ---- outputs ---- */

/* The outputs appear together or not at all. Each is prepared first
** (where it goes; all the allocating), before any work; once everything
** succeeded, each is written to a temporary file beside it, and only then
** are they all renamed into place. */
typedef struct output {
  const char *path;
  const char *what;
  wfp__staged st;
  bool prepared;
} output;

enum { OUT_IR, OUT_WASM, OUT_WIT, OUT_C0, OUT_SO = OUT_C0 + 5, OUT_COUNT };
static const char *const c_names[] = {"module.c", "module.h", "glue.c", "abi.h", "wasm-rt.h"};

static int prepare_outputs(wfp_aot *a, output *outs) {
  const wfp_aot_opts *o = &a->o;
  memset(outs, 0, sizeof *outs * OUT_COUNT);
  outs[OUT_IR] = (output){o->emit_ir, "IR", {0}, false};
  outs[OUT_WASM] = (output){o->emit_wasm, "Wasm", {0}, false};
  outs[OUT_WIT] = (output){o->emit_wit, "WIT", {0}, false};
  for (int i = 0; i < 5 && o->emit_c; i++) {
    const char *p = wfp__arena_printf(&a->arena, "%s/%s", o->emit_c, c_names[i]);
    if (!p)
      return nomem(a);
    outs[OUT_C0 + i] = (output){p, "C source", {0}, false};
  }
  outs[OUT_SO] = (output){o->output, "module", {0}, false};
  for (int i = 0; i < OUT_COUNT; i++) {
    if (!outs[i].path)
      continue;
    int rc = wfp__file_prepare(&outs[i].st, outs[i].path);
    if (rc == WFP_ENOMEM)
      return nomem(a);
    if (rc)
      return adiag(a, WFP_EIO, "", "cannot write %s %s: %s", outs[i].what, outs[i].path,
                   strerror(errno));
    outs[i].prepared = true;
  }
  return WFP_OK;
}

static void discard_outputs(output *outs) {
  for (int i = 0; i < OUT_COUNT; i++)
    if (outs[i].prepared)
      wfp__file_discard(&outs[i].st);
}

/* Writes every prepared output (data[i], len[i]), then renames them all. */
static int publish(wfp_aot *a, output *outs, const void *const *data, const size_t *len) {
  for (int i = 0; i < OUT_COUNT; i++) {
    if (outs[i].prepared &&
        wfp__file_write(&outs[i].st, data[i], len[i], i == OUT_SO ? 0755 : 0644))
      return adiag(a, WFP_EIO, "", "cannot write %s %s: %s", outs[i].what, outs[i].path,
                   strerror(errno));
  }
  int rc = WFP_OK;
  for (int i = 0; i < OUT_COUNT; i++) {
    if (!outs[i].prepared)
      continue;
    outs[i].prepared = false;
    if (rc)
      wfp__file_discard(&outs[i].st);
    else if (wfp__file_commit(&outs[i].st))
      rc = adiag(a, WFP_EIO, "", "cannot write %s %s: %s", outs[i].what, outs[i].path,
                 strerror(errno));
  }
  return rc;
}

static int compile(wfp_aot *a) {
  const wfp_aot_opts *o = &a->o;
  int rc;
  double t0 = now();
  /* front end (already loaded by the caller) */
  if (a->prog->status != WFP_OK)
    return a->prog->status;
  bool want_wasm = o->output || o->emit_wasm || o->emit_c;
  bool want_c = o->output || o->emit_c;
  unsigned char *wasm = NULL;
  size_t wlen = 0;
  char *glue = NULL;
  size_t glen = 0;
  char *irtext = NULL;
  size_t irlen = 0;
  char *so = NULL;
  size_t solen = 0;
  char *csrc[2] = {NULL, NULL};
  size_t clen[2] = {0, 0};
  bool made_dir = false;
  output outs[OUT_COUNT];
  if ((rc = prepare_outputs(a, outs)))
    goto out;
  if (o->emit_ir && wfp_program_ir_json(a->prog, 1, &irtext, &irlen)) {
    rc = nomem(a);
    goto out;
  }
  if (want_wasm) {
    t0 = now();
    a->own = -1;
    wfp_cg_opts co = {sizeof co, o->opt_level, &a->own};
    wfp_diag *cd = NULL;
    rc = wfp_codegen(a->prog, &co, &wasm, &wlen, &cd);
    a->secs[WFP_AOT_CODEGEN] = now() - t0;
    if (rc) {
      const char *path = cd ? cd->path : "", *msg = cd ? cd->msg : wfp_strerror(rc);
      if (rc == WFP_EUNSUPPORTED)
        adiag(a, rc, path, "%s (this stage does not exist yet for it)", msg);
      else
        adiag(a, rc, path, "codegen: %s", msg);
      wfp_free(cd);
      goto out;
    }
  }
  if (want_c) {
    if (a->cancel) {
      rc = cancelled(a);
      goto out;
    }
    if ((rc = make_tmp(a)))
      goto out;
    if ((rc = write_tmp(a, "module.wasm", wasm, wlen)))
      goto out;
    const char *w2c = getenv("WFP_WASM2C");
    const char *argv[] = {w2c && *w2c ? w2c : "wasm2c", "-n", "wfp", "-o",
                          tpath(a, "module.c"), tpath(a, "module.wasm"), NULL};
    t0 = now();
    rc = run_tool(a, argv, "wasm2c.log", "wasm2c", " (install Debian's wabt package)");
    a->secs[WFP_AOT_WASM2C] = now() - t0;
    if (rc)
      goto out;
    glue = make_glue(a, &glen);
    if (!glue) {
      rc = nomem(a);
      goto out;
    }
    if ((rc = write_tmp(a, "glue.c", glue, glen)) ||
        (rc = write_tmp(a, "abi.h", wfp__abi_h, wfp__abi_h_len)) ||
        (rc = write_tmp(a, "wasm-rt.h", wfp__wasm_rt_h, wfp__wasm_rt_h_len)))
      goto out;
    /* what --emit-c copies, read before the C compiler's long run */
    for (int i = 0; i < 2 && o->emit_c; i++) {
      if ((rc = wfp__read_file(tpath(a, c_names[i]), &csrc[i], &clen[i]))) {
        rc = rc == WFP_ENOMEM ? nomem(a)
                              : adiag(a, WFP_EIO, "", "cannot read %s: %s",
                                      tpath(a, c_names[i]), strerror(errno));
        goto out;
      }
    }
  }
  if (o->output) {
    const char *cc = o->cc;
    if (!cc || !*cc)
      cc = getenv("CC");
    if (!cc || !*cc)
      cc = default_cc();
    const char *base[32];
    int nb = split_words(a, cc, base, 16);
    if (nb < 0) {
      rc = nomem(a);
      goto out;
    }
    if (nb == 0) {
      rc = adiag(a, WFP_EUSAGE, "", "the C compiler command is empty");
      goto out;
    }
    static const char *const olev[] = {"-O0", "-O1", "-O2", "-O3"};
    base[nb++] = olev[o->opt_level];
    base[nb++] = "-fPIC";
    base[nb++] = "-fvisibility=hidden";
    base[nb++] = "-DNDEBUG";
    /* no unwind tables (a tenth of the module): nothing unwinds through
    ** the module's frames, a trap leaves them by longjmp */
    base[nb++] = "-fno-asynchronous-unwind-tables";
    /* explicit bounds checks and call-depth counting, no signal handlers:
    ** the runtime in the host is built the same way (hostlib/wasm_rt.c) */
    base[nb++] = "-DWASM_RT_MEMCHECK_SIGNAL_HANDLER=0";
    base[nb++] = "-DWASM_RT_USE_STACK_DEPTH_COUNT=1";
    base[nb++] = "-DWASM_RT_MAX_CALL_STACK_DEPTH=" MAX_DEPTH;
    base[nb++] = "-w";
    /* the key of the cache: everything above, not the temporary -I */
    wfp__sha256 kh;
    wfp__sha256_init(&kh);
    wfp__sha256_update(&kh, "wfp-aot object 1\n", 17);
    for (int q = 0; q < nb; q++) {
      wfp__sha256_update(&kh, base[q], strlen(base[q]));
      wfp__sha256_update(&kh, "\n", 1);
    }
    program_identity(base[0], &kh);
    wfp__sha256_update(&kh, wfp__abi_h, wfp__abi_h_len);
    wfp__sha256_update(&kh, wfp__wasm_rt_h, wfp__wasm_rt_h_len);
    snprintf(a->inc_flag, sizeof a->inc_flag, "-I%s", a->tmp);
    base[nb++] = a->inc_flag;
    t0 = now();
    /* the units: part A and the chunks (or module.c whole), the glue; their
    ** names in fixed buffers (a failed allocation cannot lose one) */
    char src[MAX_UNITS][24], obj[MAX_UNITS][24], logs[MAX_UNITS][24];
    const char *cached[MAX_UNITS];
    char key[MAX_UNITS][65];
    bool data = false;
    int nch = split_module(a, a->own, &data), nu = 0;
    if (nch < 0) {
      rc = nch;
      goto out;
    }
    if (nch > 0) {
      snprintf(src[nu++], sizeof src[0], "part_a.c");
      if (data)
        snprintf(src[nu++], sizeof src[0], "data.c");
      for (int c = 0; c < nch; c++)
        snprintf(src[nu++], sizeof src[0], "chunk_%d.c", c);
    } else {
      snprintf(src[nu++], sizeof src[0], "module.c");
    }
    if (nch > 0 && split_glue(a, glue, glen, &rc)) {
      snprintf(src[nu++], sizeof src[0], "glue_code.c");
      /* the glue's tables join the data, the other unit each program
      ** changes: one run of the C compiler less */
      if (!data)
        snprintf(src[nu++], sizeof src[0], "glue_tables.c");
      else if ((rc = append_tmp(a, "data.c", "glue_tables.c")))
        goto out;
    } else if (rc) {
      goto out;
    } else {
      snprintf(src[nu++], sizeof src[0], "glue.c");
    }
    const char *dir = cache_dir(a);
    if (a->arena.oom) {
      rc = nomem(a);
      goto out;
    }
    unsigned long long max = 0;
    if (dir && !cache_max(&max)) {
      rc = adiag(a, WFP_EUSAGE, "", "WFP_CACHE_MAX '%s' is not a size (bytes, or a number "
                 "with K, M or G)", getenv("WFP_CACHE_MAX"));
      goto out;
    }
    char *mh = NULL;
    size_t mhlen = 0;
    if (dir && (rc = wfp__read_file(tpath(a, "module.h"), &mh, &mhlen))) {
      if (rc == WFP_ENOMEM) {
        rc = nomem(a);
        goto out;
      }
      dir = NULL;
    }
    if (mh)
      wfp__sha256_update(&kh, mh, mhlen);
    free(mh);
    a->units = nu;
    for (int u = 0; u < nu; u++) {
      snprintf(obj[u], sizeof obj[0], "%.*s.o", (int)(strlen(src[u]) - 2), src[u]);
      snprintf(logs[u], sizeof logs[0], "cc_%d.log", u);
      cached[u] = NULL;
      key[u][0] = 0;
      char *t = NULL;
      size_t tl = 0;
      if (!dir)
        continue;
      if ((rc = wfp__read_file(tpath(a, src[u]), &t, &tl))) {
        if (rc == WFP_ENOMEM) {
          rc = nomem(a);
          goto out;
        }
        continue;
      }
      wfp__sha256 h = kh;
      wfp__sha256_update(&h, t, tl);
      free(t);
      uint8_t d[32];
      wfp__sha256_final(&h, d);
      wfp__hex(d, sizeof d, key[u]);
      const char *p = wfp__arena_printf(&a->arena, "%s/%s.o", dir, key[u]);
      if (!p) {
        rc = nomem(a);
        goto out;
      }
      if (access(p, R_OK) == 0) {
        cached[u] = p;
        a->reused++;
        /* used now: the last the trimming removes */
        utimensat(AT_FDCWD, p, NULL, 0);
      }
    }
    /* compile what the cache does not hold, as many at once as there are
    ** processors, then link; when a link with objects of the cache fails,
    ** once more with every unit compiled afresh */
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int par = ncpu < 1 ? 1 : ncpu > MAX_JOBS ? MAX_JOBS : (int)ncpu;
    for (int attempt = 0;; attempt++) {
      job jobs[MAX_UNITS];
      const char *argvs[MAX_UNITS][40];
      int uncached[MAX_UNITS], nt = 0;
      for (int u = 0; u < nu; u++)
        if (!cached[u])
          uncached[nt++] = u;
      rc = WFP_OK;
      int started = 0, waited = 0;
      for (int k = 0; k < nt && rc == WFP_OK; k++) {
        /* a free slot: the job started par jobs ago is waited for */
        if (k - waited >= par) {
          int r = wait_job(a, &jobs[waited++], false);
          if (r) {
            rc = r;
            break;
          }
        }
        const char **v = argvs[k];
        int n = 0;
        for (int q = 0; q < nb; q++)
          v[n++] = base[q];
        v[n++] = "-c";
        v[n++] = "-o";
        v[n++] = tpath(a, obj[uncached[k]]);
        v[n++] = tpath(a, src[uncached[k]]);
        v[n] = NULL;
        jobs[k].argv = v;
        jobs[k].log = logs[uncached[k]];
        jobs[k].what = "the C compiler";
        jobs[k].hint = " (set CC, or install gcc)";
        jobs[k].slot = k % par;
        rc = spawn_job(a, &jobs[k]);
        started++;
      }
      /* when one failed, the others fail alike: one message is enough */
      while (waited < started) {
        int r = wait_job(a, &jobs[waited++], rc != WFP_OK);
        if (r && rc == WFP_OK)
          rc = r;
      }
      if (rc == WFP_OK) {
        const char *argv[MAX_UNITS + 48];
        int n = 0;
        for (int q = 0; q < nb; q++)
          argv[n++] = base[q];
        argv[n++] = "-shared";
        argv[n++] = "-o";
        argv[n++] = tpath(a, "func.so");
        for (int u = 0; u < nu; u++)
          argv[n++] = cached[u] ? cached[u] : tpath(a, obj[u]);
        argv[n++] = "-lm";
        argv[n] = NULL;
        bool quiet = attempt == 0 && a->reused > 0;
        job lj = {argv, "ld.log", "the C compiler", " (set CC, or install gcc)", -1, 0};
        rc = spawn_job(a, &lj);
        if (!rc) {
          rc = wait_job(a, &lj, quiet);
          if (rc && quiet && !a->cancel) {
            /* an object of the cache did not link: compile them all */
            for (int u = 0; u < nu; u++)
              cached[u] = NULL;
            a->reused = 0;
            continue;
          }
        }
      }
      break;
    }
    /* the new objects to the cache: a failure to write one is no failure
    ** of the compilation (it is only a cache), but out of memory is */
    bool wrote = false;
    for (int u = 0; rc == WFP_OK && dir && u < nu; u++) {
      if (cached[u] || !key[u][0])
        continue;
      wrote = true;
      char *t = NULL;
      size_t tl = 0;
      const char *p = wfp__arena_printf(&a->arena, "%s/%s.o", dir, key[u]);
      int r = p ? wfp__read_file(tpath(a, obj[u]), &t, &tl) : WFP_ENOMEM;
      if (r == WFP_OK)
        r = wfp__write_file_atomic(p, t, tl, 0644);
      free(t);
      if (r == WFP_ENOMEM)
        rc = nomem(a);
    }
    if (rc == WFP_OK && wrote)
      rc = trim_cache(a, dir, max);
    a->secs[WFP_AOT_CC] = now() - t0;
    if (rc)
      goto out;
    if ((rc = wfp__read_file(tpath(a, "func.so"), &so, &solen))) {
      rc = rc == WFP_ENOMEM ? nomem(a)
                            : adiag(a, WFP_EIO, "", "cannot read the compiled module: %s",
                                    strerror(errno));
      goto out;
    }
  }
  /* everything succeeded: write the outputs, all or none */
  if (a->cancel) {
    rc = cancelled(a);
    goto out;
  }
  if (a->oom || a->arena.oom) {
    rc = nomem(a);
    goto out;
  }
  if (o->emit_c) {
    if (mkdir(o->emit_c, 0755) == 0) {
      made_dir = true;
    } else if (errno != EEXIST) {
      rc = adiag(a, WFP_EIO, "", "cannot create %s: %s", o->emit_c, strerror(errno));
      goto out;
    }
  }
  const void *data[OUT_COUNT] = {irtext, wasm, wfp__function_wit, csrc[0], csrc[1], glue,
                                 wfp__abi_h, wfp__wasm_rt_h, so};
  size_t len[OUT_COUNT] = {irlen, wlen, wfp__function_wit_len, clen[0], clen[1], glen,
                           wfp__abi_h_len, wfp__wasm_rt_h_len, solen};
  rc = publish(a, outs, data, len);
out:
  discard_outputs(outs);
  if (rc && made_dir)
    rmdir(o->emit_c); /* it was made for this compilation */
  remove_tmp(a);
  free(wasm);
  free(glue);
  free(irtext);
  free(so);
  free(csrc[0]);
  free(csrc[1]);
  /* a diagnostic lost for want of memory makes the failure that one */
  if (rc && (a->oom || a->arena.oom))
    rc = nomem(a);
  return rc;
}

static int start(wfp_aot *a) {
  if (!a || a->used)
    return WFP_EINVAL;
  a->used = true;
  wfp_ir_opts io = {sizeof io, a->o.entry, a->o.max_diags};
  a->prog = wfp_program_new(&io);
  return a->prog ? WFP_OK : nomem(a);
}

int wfp_aot_compile_file(wfp_aot *a, const char *path) {
  int rc = start(a);
  if (rc)
    return rc;
  double t0 = now();
  rc = wfp_program_load_file(a->prog, path);
  a->secs[WFP_AOT_FRONTEND] = now() - t0;
  return rc ? rc : compile(a);
}

int wfp_aot_compile_mem(wfp_aot *a, const char *name, const char *text, size_t len) {
  int rc = start(a);
  if (rc)
    return rc;
  double t0 = now();
  rc = wfp_program_load_mem(a->prog, name, text, len);
  a->secs[WFP_AOT_FRONTEND] = now() - t0;
  return rc ? rc : compile(a);
}
