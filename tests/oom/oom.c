/*
** oom.c: fault injection in process: each allocation of the front end,
** codegen, the aot driver or the host fails in turn (README.md says how
** and what passes). It tests error paths; it is not a benchmark.
*/
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "failalloc.h"
#include "util.h"
#include "wfp/aot.h"
#include "wfp/codegen.h"
#include "wfp/host.h"
#include "wfp/ir.h"
#include "wfp/loop.h"
#include "wfp/text.h"

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_LSAN 1
#endif
#endif
#ifdef HAVE_LSAN
#include <sanitizer/common_interface_defs.h>
#include <sanitizer/lsan_interface.h>
#endif

/* The harness's own memory bypasses the countdown. */
void *__real_realloc(void *p, size_t n);

/* ---- a transcript: everything a run lets a caller observe ---- */

typedef struct str {
  char *p;
  size_t n, cap;
} str;

static void sfree(str *s) {
  free(s->p);
  memset(s, 0, sizeof *s);
}

static void sreserve(str *s, size_t n) {
  if (s->n + n + 1 <= s->cap)
    return;
  size_t cap = s->cap ? s->cap : 256;
  while (cap < s->n + n + 1)
    cap *= 2;
  char *p = __real_realloc(s->p, cap);
  if (!p)
    abort(); /* the harness itself is out of memory: nothing to test */
  s->p = p;
  s->cap = cap;
}

static void sadd(str *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sadd(str *s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0)
    abort();
  sreserve(s, (size_t)n);
  va_start(ap, fmt);
  vsnprintf(s->p + s->n, (size_t)n + 1, fmt, ap);
  va_end(ap);
  s->n += (size_t)n;
}

/* bytes as they are, NUL included */
static void saddn(str *s, const char *p, size_t n) {
  sreserve(s, n);
  if (n)
    memcpy(s->p + s->n, p, n);
  s->n += n;
  s->p[s->n] = 0;
}

static bool seq(const str *a, const str *b) {
  return a->n == b->n && (a->n == 0 || memcmp(a->p, b->p, a->n) == 0);
}

/* A run that broke a rule says why here (set by the scenario), and
** returns BROKEN. */
#define BROKEN (-1000)
static char why[2048];

static int broken(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int broken(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  return BROKEN;
}

/* ---- files ---- */

/* A whole file, read around the countdown (it may run while armed). */
static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  str s = {0};
  char buf[65536];
  size_t n;
  if (!f) {
    fprintf(stderr, "oom: cannot read %s: %s\n", path, strerror(errno));
    exit(2);
  }
  while ((n = fread(buf, 1, sizeof buf, f)) > 0)
    saddn(&s, buf, n);
  fclose(f);
  sadd(&s, "%s", "");
  *len = s.n;
  return s.p;
}

/* Names in dir (sorted, one per line) into s; false when dir is missing. */
static bool list_dir(const char *dir, str *s) {
  DIR *d = opendir(dir);
  if (!d)
    return false;
  char names[64][256];
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    if (n < 64)
      snprintf(names[n++], sizeof names[0], "%s", e->d_name);
  }
  closedir(d);
  qsort(names, (size_t)n, sizeof names[0], (int (*)(const void *, const void *))strcmp);
  for (int i = 0; i < n; i++)
    sadd(s, "%s\n", names[i]);
  return true;
}

/* Removes the files in dir and dir itself (one level deep, and the
** directories one level down: what an aot run writes). */
static void rm_tree(const char *dir) {
  DIR *d = opendir(dir);
  if (!d)
    return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    struct stat st;
    if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
      rm_tree(p);
    else
      unlink(p);
  }
  closedir(d);
  rmdir(dir);
}

/* ---- the front end ---- */

typedef struct ir_case {
  const char *path;
  char *text;
  size_t len;
  bool from_file;
} ir_case;

/* The diagnostics of a load; WFP_ENOMEM must come with one that says so. */
static int check_diags(const wfp_program *p, int rc, str *t) {
  char line[2048];
  bool said_oom = false;
  for (size_t i = 0; i < wfp_program_diag_count(p); i++) {
    const wfp_diag *d = wfp_program_diag(p, i);
    wfp_diag_format(d, line, sizeof line);
    sadd(t, "diag %s\n", line);
    said_oom |= d->code == WFP_ENOMEM && strstr(line, "out of memory") != NULL;
  }
  if (rc == WFP_ENOMEM && !said_oom)
    return broken("WFP_ENOMEM from the load without an 'out of memory' diagnostic");
  if (rc != WFP_OK && wfp_program_diag_count(p) == 0)
    return broken("load failed (%s) without a diagnostic", wfp_err_name(rc));
  return rc;
}

static int run_ir(void *arg, str *t) {
  ir_case *c = arg;
  wfp_ir_opts o = {sizeof o, NULL, 0};
  wfp_program *p = wfp_program_new(&o);
  if (!p)
    return WFP_ENOMEM;
  int rc = c->from_file ? wfp_program_load_file(p, c->path)
                        : wfp_program_load_mem(p, c->path, c->text, c->len);
  sadd(t, "load %s\n", wfp_err_name(rc));
  rc = check_diags(p, rc, t);
  if (rc == WFP_OK) {
    sadd(t, "hash %s entry %s %d\n", wfp_program_hash(p), wfp_program_entry(p),
         wfp_program_has_entry(p));
    for (int i = 0; i < wfp_program_function_count(p); i++)
      sadd(t, "fn %s %s\n", wfp_program_function_name(p, i), wfp_program_function_id(p, i));
    for (int pretty = 0; pretty <= 1 && rc == WFP_OK; pretty++) {
      char *ir = NULL;
      size_t n = 0;
      rc = wfp_program_ir_json(p, pretty, &ir, &n);
      if (rc == WFP_OK) {
        if (strlen(ir) != n)
          rc = broken("wfp_program_ir_json: the length is not the string's");
        saddn(t, ir, n);
        wfp_free(ir);
      } else if (ir) {
        rc = broken("wfp_program_ir_json failed (%s) and set *out", wfp_err_name(rc));
      }
    }
  }
  wfp_program_free(p);
  return rc;
}

/* ---- the text syntax ---- */

/* A text program parsed (its diagnostics, or its IR and canonical layout),
** then the IR loaded and written back as text and as JavaScript. */
static int run_text(void *arg, str *t) {
  ir_case *c = arg;
  wfp_text *x = wfp_text_new(0);
  if (!x)
    return WFP_ENOMEM;
  wfp_program *p = NULL;
  char *out = NULL;
  size_t n = 0;
  int rc = wfp_text_parse(x, c->path, c->text, c->len);
  sadd(t, "parse %s\n", wfp_err_name(rc));
  bool said_oom = false;
  char line[2048];
  for (size_t i = 0; i < wfp_text_diag_count(x); i++) {
    wfp_diag_format(wfp_text_diag(x, i), line, sizeof line);
    sadd(t, "diag %s\n", line);
    said_oom |= wfp_text_diag(x, i)->code == WFP_ENOMEM;
  }
  if (rc == WFP_ESYNTAX && wfp_text_diag_count(x) == 0)
    rc = broken("WFP_ESYNTAX without a diagnostic");
  if (rc == WFP_ESYNTAX && said_oom)
    rc = broken("WFP_ESYNTAX with an 'out of memory' diagnostic");
  if (rc)
    goto out;
  const char *ir = wfp_text_ir(x, &n);
  if (!ir) {
    rc = broken("a successful parse without IR");
    goto out;
  }
  saddn(t, ir, n);
  if ((rc = wfp_text_format(x, &out, &n)) != WFP_OK)
    goto out;
  sadd(t, "\nformat:\n");
  saddn(t, out, n);
  wfp_free(out);
  out = NULL;
  if (!(p = wfp_program_new(NULL))) {
    rc = WFP_ENOMEM;
    goto out;
  }
  rc = wfp_program_load_mem(p, c->path, ir, strlen(ir));
  sadd(t, "load %s\n", wfp_err_name(rc));
  if (rc)
    goto out;
  if ((rc = wfp_program_to_text(p, &out, &n)) != WFP_OK)
    goto out;
  sadd(t, "text:\n");
  saddn(t, out, n);
  wfp_free(out);
  out = NULL;
  if ((rc = wfp_program_to_js(p, c->path, &out, &n)) != WFP_OK)
    goto out;
  sadd(t, "js %zu bytes\n", n);
  saddn(t, out, n);
out:
  if (rc != WFP_OK && out)
    rc = broken("%s and *out set", wfp_err_name(rc));
  wfp_free(out);
  wfp_program_free(p);
  wfp_text_free(x);
  return rc;
}

/* ---- codegen ---- */

typedef struct cg_case {
  wfp_program *p;
  int opt;
} cg_case;

static int run_codegen(void *arg, str *t) {
  cg_case *c = arg;
  wfp_cg_opts o = {sizeof o, c->opt, NULL};
  wfp_diag *e = (wfp_diag *)&o; /* what codegen does not set shows */
  unsigned char *wasm = NULL;
  size_t n = 0;
  int rc = wfp_codegen(c->p, &o, &wasm, &n, &e);
  if (rc == WFP_OK) {
    if (e)
      return broken("wfp_codegen succeeded and left a diagnostic");
    sadd(t, "wasm %zu bytes\n", n);
    saddn(t, (const char *)wasm, n);
    wfp_free(wasm);
    return rc;
  }
  if (wasm)
    return broken("wfp_codegen failed (%s) and set *wasm", wfp_err_name(rc));
  if (e == (wfp_diag *)&o)
    return broken("wfp_codegen failed (%s) and did not set *diag", wfp_err_name(rc));
  /* out of memory, the diagnostic itself may be missing (codegen.h) */
  if (!e && rc != WFP_ENOMEM)
    return broken("wfp_codegen returned %s without a diagnostic", wfp_err_name(rc));
  if (e && e->code != rc)
    return broken("wfp_codegen returned %s, its diagnostic says code %d", wfp_err_name(rc),
                  e->code);
  if (e && rc == WFP_ENOMEM && !strstr(e->msg, "out of memory"))
    return broken("wfp_codegen: WFP_ENOMEM with the message '%s'", e->msg);
  sadd(t, "codegen %s: %s\n", wfp_err_name(rc), e ? e->msg : "out of memory");
  wfp_free(e);
  return rc;
}

/* ---- the aot pipeline, to the .so ---- */

typedef struct aot_case {
  const char *name;
  char *text;
  size_t len;
  const char *work; /* outputs go to work/out, temporaries to work/tmp */
  bool warm;        /* the object cache (work/cache) kept from run to run,
                    ** else emptied before each: objects made and stored */
} aot_case;

static int run_aot(void *arg, str *t) {
  aot_case *c = arg;
  char out[4096], tmp[4096], so[4200], ir[4200], wasm[4200], wit[4200], cdir[4200];
  char cache[4096];
  snprintf(out, sizeof out, "%s/out", c->work);
  snprintf(tmp, sizeof tmp, "%s/tmp", c->work);
  snprintf(cache, sizeof cache, "%s/cache", c->work);
  rm_tree(out);
  rm_tree(tmp);
  if (!c->warm)
    rm_tree(cache);
  if (mkdir(out, 0755) != 0 || mkdir(tmp, 0755) != 0) {
    fprintf(stderr, "oom: cannot create %s: %s\n", out, strerror(errno));
    exit(2);
  }
  setenv("TMPDIR", tmp, 1);
  snprintf(so, sizeof so, "%s/func.so", out);
  snprintf(ir, sizeof ir, "%s/ir.json", out);
  snprintf(wasm, sizeof wasm, "%s/core.wasm", out);
  snprintf(wit, sizeof wit, "%s/func.wit", out);
  snprintf(cdir, sizeof cdir, "%s/c", out);
  wfp_aot_opts o;
  memset(&o, 0, sizeof o);
  o.size = sizeof o;
  o.output = so;
  o.opt_level = 0;
  o.emit_ir = ir;
  o.emit_wasm = wasm;
  o.emit_c = cdir;
  o.emit_wit = wit;
  o.cache_dir = cache;
  wfp_aot *a = wfp_aot_new(&o);
  int rc;
  if (!a) {
    rc = WFP_ENOMEM;
  } else {
    rc = wfp_aot_compile_mem(a, c->name, c->text, c->len);
    sadd(t, "compile %s hash %s\n", wfp_err_name(rc), wfp_aot_program_hash(a));
    if (rc == WFP_OK) {
      /* cold: every unit compiled; warm: every object from the cache */
      int units = 0, reused = 0;
      wfp_aot_cache_stats(a, &units, &reused);
      sadd(t, "units %d reused %d\n", units, reused);
    }
    bool said_oom = false;
    char line[2048];
    for (size_t i = 0; i < wfp_aot_diag_count(a); i++) {
      const wfp_diag *d = wfp_aot_diag(a, i);
      wfp_diag_format(d, line, sizeof line);
      sadd(t, "diag %s\n", line);
      said_oom |= d->code == WFP_ENOMEM && strstr(line, "out of memory") != NULL;
    }
    if (rc == WFP_ENOMEM && !said_oom)
      rc = broken("WFP_ENOMEM from the compilation without an 'out of memory' diagnostic");
    else if (rc != WFP_OK && wfp_aot_diag_count(a) == 0)
      rc = broken("compilation failed (%s) without a diagnostic", wfp_err_name(rc));
    wfp_aot_free(a);
  }
  /* what is left on disk */
  str left = {0}, tmpleft = {0}, cached = {0};
  list_dir(out, &left);
  list_dir(tmp, &tmpleft);
  if (tmpleft.n && rc != BROKEN)
    rc = broken("temporary files left behind: %.*s", (int)tmpleft.n, tmpleft.p);
  /* the cache holds whole objects only, named by their key */
  char objs[4200];
  snprintf(objs, sizeof objs, "%s/objects-1", cache);
  list_dir(objs, &cached);
  for (size_t i = 0, st = 0; i < cached.n && rc != BROKEN; i++)
    if (cached.p[i] == '\n') {
      if (i - st != 66 || memcmp(cached.p + i - 2, ".o", 2) != 0)
        rc = broken("the object cache holds %.*s", (int)(i - st), cached.p + st);
      st = i + 1;
    }
  sfree(&cached);
  if (rc == WFP_OK) {
    /* the outputs, all of them, whole */
    static const char *const files[] = {"ir.json",    "core.wasm", "func.wit",
                                        "c/module.c", "c/module.h", "c/glue.c",
                                        "c/abi.h",    "c/wasm-rt.h"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
      char p[4400];
      snprintf(p, sizeof p, "%s/%s", out, files[i]);
      size_t n = 0;
      char *d = slurp(p, &n);
      sadd(t, "file %s %zu\n", files[i], n);
      saddn(t, d, n);
      free(d);
    }
    struct stat st;
    if (stat(so, &st) != 0 || st.st_size == 0)
      rc = broken("compiled, but %s is missing or empty", so);
    sadd(t, "left %.*s", (int)left.n, left.p);
  } else if (left.n && rc != BROKEN) {
    rc = broken("a failed compilation left files behind: %.*s", (int)left.n, left.p);
  }
  sfree(&left);
  sfree(&tmpleft);
  return rc;
}

/* ---- the host ---- */

typedef struct host_case {
  const char *so;
  const char *work;
} host_case;

static void on_trace(void *ud, const char *line) { sadd(ud, "trace %s\n", line); }

static void dump_env(const wfp_env *e, str *t) {
  for (size_t i = 0; i < wfp_env_ctx_count(e); i++)
    sadd(t, "ctx %s=%lld\n", wfp_env_ctx_key(e, i), (long long)wfp_env_ctx_value(e, i));
  for (size_t i = 0; i < wfp_env_message_count(e); i++)
    sadd(t, "msg %s %s\n", wfp_env_message_topic(e, i), wfp_env_message_payload(e, i));
  for (size_t i = 0; i < wfp_env_instance_count(e); i++) {
    uint64_t h = wfp_env_instance_handle(e, i);
    sadd(t, "instance %llu %s\n", (unsigned long long)h, wfp_env_instance_resource(e, h));
    for (size_t k = 0; k < wfp_env_instance_prop_count(e, h); k++)
      sadd(t, "  %s=%s\n", wfp_env_instance_prop_name(e, h, k),
           wfp_env_instance_prop_value(e, h, k));
  }
}

/* A checkpoint's body, without what differs from run to run: the time
** the invocation started, and so the header's checksum. */
static void add_checkpoint(str *t, const char *ck, size_t n) {
  const char *body = memchr(ck, '\n', n);
  body = body ? body + 1 : ck;
  size_t at = t->n;
  saddn(t, body, n - (size_t)(body - ck));
  char *s = strstr(t->p + at, "\"started\":\"");
  for (s = s ? s + 11 : NULL; s && *s >= '0' && *s <= '9'; s++)
    *s = 'T';
}

/* Steps inv to its end: every pending effect is shown, checkpointed and
** performed; at step restore_at the invocation is checkpointed, freed, and
** restored in a new environment, which replaces *env. */
static int drive(wfp_module *m, wfp_env **env, wfp_invocation **invp, uint64_t restore_at,
                 str *t) {
  for (;;) {
    wfp_invocation *inv = *invp;
    int st = wfp_invocation_step(inv);
    if (st < 0)
      return st;
    sadd(t, "step %llu: %d fuel %llu\n", (unsigned long long)wfp_invocation_steps(inv), st,
         (unsigned long long)wfp_invocation_fuel_used(inv));
    if (st == WFP_DONE) {
      sadd(t, "output %s\n", wfp_invocation_output(inv));
      return WFP_OK;
    }
    if (st == WFP_TRAP)
      return broken("the invocation trapped: %s", wfp_invocation_trap_message(inv));
    const char *pj = wfp_invocation_pending_json(inv);
    if (!pj)
      return WFP_ENOMEM; /* pending, so only memory can be missing */
    sadd(t, "pending %s\n", pj);
    char *ck = NULL;
    size_t cklen = 0;
    int rc = wfp_invocation_checkpoint(inv, &ck, &cklen);
    if (rc)
      return rc;
    sadd(t, "checkpoint %zu bytes\n", cklen);
    if (wfp_invocation_steps(inv) == restore_at) {
      add_checkpoint(t, ck, cklen);
      wfp_env *e2 = wfp_env_new();
      wfp_invocation *r = NULL;
      wfp_host_diag hd;
      memset(&hd, 0, sizeof hd);
      rc = e2 ? wfp_invocation_restore(m, e2, ck, cklen, &r, &hd) : WFP_ENOMEM;
      wfp_free(ck);
      if (rc) {
        wfp_env_free(e2);
        if (rc == WFP_ENOMEM)
          return rc;
        return broken("restore: %s: %s", wfp_err_name(rc), hd.d.msg ? hd.d.msg : "");
      }
      wfp_invocation_set_trace(r, on_trace, t);
      wfp_invocation_free(inv);
      wfp_env_free(*env);
      *env = e2;
      *invp = inv = r;
      sadd(t, "restored\n");
    } else {
      wfp_free(ck);
    }
    rc = wfp_invocation_perform(inv);
    if (rc)
      return rc;
  }
}

static int run_host(void *arg, str *t) {
  host_case *c = arg;
  wfp_module *m = NULL;
  wfp_env *env = NULL;
  wfp_invocation *inv = NULL;
  char err[512] = "";
  wfp_host_diag hd;
  memset(&hd, 0, sizeof hd);
  int rc = wfp_module_load(c->so, &m, &hd);
  if (rc) {
    if (rc == WFP_ENOMEM && !(hd.d.msg && strstr(hd.d.msg, "out of memory")))
      rc = broken("wfp_module_load: WFP_ENOMEM with the message '%s'",
                  hd.d.msg ? hd.d.msg : "");
    goto out;
  }
  sadd(t, "module %s entry %s\n", wfp_module_hash(m), wfp_module_entry(m));
  if (!(env = wfp_env_new())) {
    rc = WFP_ENOMEM;
    goto out;
  }
  /* enough keys to grow the context's index */
  for (int i = 0; i < 20 && rc == WFP_OK; i++) {
    char key[32];
    snprintf(key, sizeof key, "k%d", i);
    rc = wfp_env_ctx_set(env, key, i);
  }
  if (rc || (rc = wfp_env_ctx_set(env, "n", 7)))
    goto out;
  char db[4200];
  snprintf(db, sizeof db, "%s/oom.db", c->work);
  if ((rc = wfp_env_open_db(env, db, err, sizeof err)))
    goto out;

  /* main: every effect but self, a checkpoint at each step, a restore */
  static const char input[] = "{\"args\":{\"tag\":\"oom\"}}";
  if ((rc = wfp_invocation_new(m, env, input, sizeof input - 1, &inv)))
    goto out;
  wfp_invocation_set_trace(inv, on_trace, t);
  wfp_invocation_set_fuel(inv, 0, 1); /* a yield at every loop iteration */
  if ((rc = drive(m, &env, &inv, 4, t)))
    goto out;
  dump_env(env, t);
  wfp_invocation_free(inv);
  inv = NULL;

  /* a method on an instance, through wfp_invocation_run */
  uint64_t h = 0;
  if ((rc = wfp_env_instance_new(env, m, "Counter", &h)) ||
      (rc = wfp_env_instance_set(env, h, "value", "5")) ||
      (rc = wfp_env_instance_set(env, h, "label", "\"ab\"")) ||
      (rc = wfp_env_instance_set(env, h, "meta", "{\"q\": [1, 2]}")))
    goto out;
  char in2[128];
  snprintf(in2, sizeof in2, "{\"fn\":\"bump\",\"args\":{\"by\":3},\"self\":%llu}",
           (unsigned long long)h);
  if ((rc = wfp_invocation_new(m, env, in2, strlen(in2), &inv)))
    goto out;
  rc = wfp_invocation_run(inv, 100);
  if (rc < 0)
    goto out;
  if (rc != WFP_DONE) {
    rc = broken("bump did not finish: %s", wfp_invocation_trap_message(inv));
    goto out;
  }
  sadd(t, "bump %s after %llu steps\n", wfp_invocation_output(inv),
       (unsigned long long)wfp_invocation_steps(inv));
  dump_env(env, t);
  rc = WFP_OK;
out:
  wfp_invocation_free(inv);
  wfp_env_free(env);
  wfp_module_free(m);
  return rc;
}

/* ---- the countdown loop ---- */

/* Which run a crash happened in, said before the process dies. */
static const char *volatile cur_label = "";
static volatile unsigned long cur_k;
static const char *volatile cur_mode = "";

static void say_where(void) {
  char msg[4400];
  int n = snprintf(msg, sizeof msg, "FAIL %s: the process died with allocation %lu failing (%s)\n",
                   cur_label, cur_k, cur_mode);
  if (n > 0 && write(2, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1) < 0)
    return;
}

#ifndef HAVE_LSAN
static void on_fatal(int sig) {
  say_where();
  signal(sig, SIG_DFL);
  raise(sig);
}
#endif

static void watch_crashes(void) {
#ifdef HAVE_LSAN
  __sanitizer_set_death_callback(say_where);
#else
  static const int sigs[] = {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL};
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
    signal(sigs[i], on_fatal);
#endif
}

typedef int (*scenario)(void *arg, str *t);

static struct {
  unsigned long stride, only;
  bool once, persist;
  bool quiet;
  bool keep_going; /* report every failing k, one line each */
  bool verbose;    /* say what each run gave */
  unsigned long leaks_every; /* LSan's check (slow: it scans the heap) every N runs */
} opt = {1, 0, true, true, false, false, false, 1024};

static int leaks_found(void) {
#ifdef HAVE_LSAN
  /* a leak stays leaked, and every later check would report it again:
  ** after the first one, the checks stop (the process fails anyway) */
  static bool leak_seen;
  if (leak_seen)
    return 0;
  leak_seen = __lsan_do_recoverable_leak_check() != 0;
  if (leak_seen)
    fprintf(stderr, "oom: no more leak checks in this process after this leak\n");
  return leak_seen;
#else
  return 0;
#endif
}

/* Runs one scenario under every countdown; 0 when every run kept the rules. */
static int inject(const char *label, scenario fn, void *arg, int want) {
  str ref = {0};
  fa_arm(FA_COUNT, 0);
  int rc0 = fn(arg, &ref);
  unsigned long total = fa_disarm();
  if (rc0 != want) {
    fprintf(stderr, "FAIL %s: without failures it gives %s, not %s%s%s\n%.*s", label,
            wfp_err_name(rc0), wfp_err_name(want), rc0 == BROKEN ? ": " : "",
            rc0 == BROKEN ? why : "", (int)ref.n, ref.p);
    sfree(&ref);
    return 1;
  }
  if (leaks_found()) {
    fprintf(stderr, "FAIL %s: leaks without failures\n", label);
    return 1;
  }
  int bad = 0;
  unsigned long runs = 0, enomem = 0, recovered = 0, unchecked_from = 0;
  for (int pass = 0; pass < 2 && (!bad || opt.keep_going); pass++) {
    fa_mode mode = pass == 0 ? FA_ONCE : FA_PERSIST;
    if ((mode == FA_ONCE && !opt.once) || (mode == FA_PERSIST && !opt.persist))
      continue;
    const char *mname = mode == FA_ONCE ? "once" : "from";
    for (unsigned long k = opt.only ? opt.only : 1;; k += opt.stride) {
      if (!unchecked_from)
        unchecked_from = k;
      str t = {0};
      why[0] = 0;
      cur_label = label;
      cur_k = k;
      cur_mode = mname;
      fa_arm(mode, k);
      int rc = fn(arg, &t);
      fa_disarm();
      unsigned long failed = fa_failures();
      runs++;
      const char *fault = NULL;
      if (rc == BROKEN)
        fault = why;
      else if (!failed && (rc != rc0 || !seq(&t, &ref)))
        fault = "no allocation failed, yet the result differs";
      else if (failed && rc == WFP_ENOMEM)
        enomem++;
      else if (failed && rc == rc0 && seq(&t, &ref))
        recovered++;
      else if (failed)
        fault = rc == rc0 ? "an allocation failed, the call succeeded, and the result differs"
                          : "an allocation failed, and the error is not WFP_ENOMEM";
      /* leaks stay leaked: one check covers the runs since the last one */
      bool last = (bad && !opt.keep_going) || !failed || opt.only;
      char leak[160];
      if (!fault && (last || runs % opt.leaks_every == 0)) {
        if (leaks_found()) {
          snprintf(leak, sizeof leak,
                   "leaked memory in a run from allocation %lu to this one (LSan's "
                   "report above; --leaks-every 1 names the run)",
                   unchecked_from);
          fault = leak;
        }
        unchecked_from = 0;
      }
      if (opt.verbose)
        printf("%s: allocation %lu failing (%s): %s%s\n", label, k, mname, wfp_err_name(rc),
               failed && !fault && rc != WFP_ENOMEM ? " (recovered)" : "");
      if (fault && opt.keep_going) {
        fprintf(stderr, "FAIL %s: allocation %lu failing (%s): %s (returned %s)\n", label, k,
                mname, fault, wfp_err_name(rc));
        bad = 1;
        fault = NULL;
      }
      if (fault) {
        fprintf(stderr,
                "FAIL %s: allocation %lu failing (%s): %s (returned %s)\n"
                "--- this run:\n%.*s\n--- without failures:\n%.*s\n",
                label, k, mname, fault, wfp_err_name(rc), (int)t.n, t.p, (int)ref.n, ref.p);
        bad = 1;
      }
      sfree(&t);
      if ((bad && !opt.keep_going) || !failed || opt.only)
        break;
    }
  }
  if (!opt.quiet || bad)
    printf("%s %s: %lu allocations, %lu runs: %lu out of memory, %lu recovered\n",
           bad ? "FAIL" : "ok", label, total, runs, enomem, recovered);
  fflush(stdout);
  sfree(&ref);
  return bad;
}

static void usage(void) {
  fprintf(stderr,
          "usage: oom [--stride N] [--k K] [--once|--persist] [--keep-going] [--verbose]\n"
          "           [--leaks-every N] SCENARIO ARGS...\n"
          "  ir FILE...            load each program from memory, print its IR\n"
          "  ir-file FILE...       the same, loading from the file\n"
          "  text FILE.wfp...      parse each text program, format it, load its IR,\n"
          "                        write it back as text and as JavaScript\n"
          "  codegen FILE...       lower each program to Wasm\n"
          "  aot WORKDIR FILE...   compile each program to a .so with every --emit-*\n"
          "  host WORKDIR SO       load, run with every effect, checkpoint, restore\n"
          "WFP_OOM_STRIDE overrides the default stride (1: every allocation).\n");
  exit(2);
}

int main(int argc, char **argv) {
  int i = 1;
  const char *env_stride = getenv("WFP_OOM_STRIDE");
  for (; i < argc && argv[i][0] == '-'; i++) {
    if (strcmp(argv[i], "--stride") == 0 && i + 1 < argc) {
      opt.stride = strtoul(argv[++i], NULL, 10);
    } else if (strcmp(argv[i], "--k") == 0 && i + 1 < argc) {
      opt.only = strtoul(argv[++i], NULL, 10);
    } else if (strcmp(argv[i], "--leaks-every") == 0 && i + 1 < argc) {
      opt.leaks_every = strtoul(argv[++i], NULL, 10);
    } else if (strcmp(argv[i], "--verbose") == 0) {
      opt.verbose = true;
    } else if (strcmp(argv[i], "--keep-going") == 0) {
      opt.keep_going = true;
    } else if (strcmp(argv[i], "--once") == 0) {
      opt.persist = false;
    } else if (strcmp(argv[i], "--persist") == 0) {
      opt.once = false;
    } else {
      usage();
    }
  }
  if (env_stride && *env_stride)
    opt.stride = strtoul(env_stride, NULL, 10);
  if (opt.stride == 0 || opt.leaks_every == 0 || i >= argc)
    usage();
  const char *what = argv[i++];
  int bad = 0;
  watch_crashes();
  if (strcmp(what, "ir") == 0 || strcmp(what, "ir-file") == 0) {
    for (; i < argc; i++) {
      ir_case c = {argv[i], NULL, 0, strcmp(what, "ir-file") == 0};
      c.text = slurp(argv[i], &c.len);
      /* the program's verdict without failures is what every run must give */
      wfp_program *p = wfp_program_new(NULL);
      int want = wfp_program_load_mem(p, argv[i], c.text, c.len);
      wfp_program_free(p);
      char label[4200];
      snprintf(label, sizeof label, "%s %s", what, argv[i]);
      bad |= inject(label, run_ir, &c, want);
      free(c.text);
    }
  } else if (strcmp(what, "text") == 0) {
    for (; i < argc; i++) {
      ir_case c = {argv[i], NULL, 0, false};
      c.text = slurp(argv[i], &c.len);
      /* the verdict without failures is what every run must give */
      str ignored = {0};
      int want = run_text(&c, &ignored);
      sfree(&ignored);
      char label[4200];
      snprintf(label, sizeof label, "text %s", argv[i]);
      bad |= inject(label, run_text, &c, want);
      free(c.text);
    }
  } else if (strcmp(what, "codegen") == 0) {
    for (; i < argc; i++) {
      size_t len;
      char *text = slurp(argv[i], &len);
      wfp_program *p = wfp_program_new(NULL);
      if (wfp_program_load_mem(p, argv[i], text, len)) {
        fprintf(stderr, "oom: %s is not a valid program\n", argv[i]);
        return 2;
      }
      cg_case c = {p, 0};
      char label[4200];
      snprintf(label, sizeof label, "codegen %s", argv[i]);
      bad |= inject(label, run_codegen, &c, WFP_OK);
      wfp_program_free(p);
      free(text);
    }
  } else if (strcmp(what, "aot") == 0 && i < argc) {
    const char *work = argv[i++];
    for (; i < argc; i++) {
      aot_case c = {argv[i], NULL, 0, work, false};
      c.text = slurp(argv[i], &c.len);
      char label[4200];
      snprintf(label, sizeof label, "aot %s (no object cached)", argv[i]);
      bad |= inject(label, run_aot, &c, WFP_OK);
      /* then with every object in the cache: the last run left them */
      c.warm = true;
      str ignored = {0};
      if (run_aot(&c, &ignored) != WFP_OK) {
        fprintf(stderr, "oom: %s does not compile\n", argv[i]);
        return 2;
      }
      sfree(&ignored);
      snprintf(label, sizeof label, "aot %s (every object cached)", argv[i]);
      bad |= inject(label, run_aot, &c, WFP_OK);
      free(c.text);
    }
  } else if (strcmp(what, "host") == 0 && i + 1 < argc) {
    /* db_query's SQLite allocates through the countdown too */
    if (fa_hook_sqlite()) {
      fprintf(stderr, "oom: cannot set SQLite's allocator\n");
      return 2;
    }
    host_case c = {argv[i + 1], argv[i]};
    char label[4200];
    snprintf(label, sizeof label, "host %s", argv[i + 1]);
    bad |= inject(label, run_host, &c, WFP_OK);
  } else {
    usage();
  }
  return bad;
}
