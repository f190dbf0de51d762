/*
** main.c: wfp-host, the host's command line: flags only. It builds the
** environment and the input from options and runs one invocation in a
** loop of the host library (wfp/loop.h; --checkpoint is its commit hook),
** or, with --batch, hands the lines to wfp_batch_run. Exit codes: 0 done,
** 1 trap, 2 usage, 3 environment, 4 suspended (--stop-after).
*/
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"
#include "wfp/host.h"
#include "wfp/loop.h"

/* Where an installed wfp-host finds the service module, relative to its
** own directory: hostlib/CMakeLists.txt sets it from the install layout;
** another target built from this file (a test's) gets the usual one. */
#ifndef WFP_SERVICE_RELDIR
#define WFP_SERVICE_RELDIR "../lib/wfp"
#endif

static const char usage_line[] =
    "usage: wfp-host [options] func.so\n"
    "       wfp-host [options] --batch FILE func.so\n"
    "       wfp-host serve [options] func.so [func.so ...]";

static void help(void) {
  printf("%s\n\n"
         "Runs one invocation of a module built by wfp-aot and prints its\n"
         "output JSON on stdout; with --batch, one invocation per line of\n"
         "FILE, all at once in one host. 'wfp-host serve' runs an HTTP service\n"
         "over a durable store ('wfp-host serve --help').\n\n"
         "Input:\n"
         "  --input JSON       the invocation's input: {\"fn\": .., \"args\": ..}\n"
         "  --fn NAME          the function to run (a name or a stable id;\n"
         "                     default: the module's entry, usually main)\n"
         "  --arg NAME=VALUE   an argument, converted to the parameter's type:\n"
         "                     i64 a decimal integer, str the text as is,\n"
         "                     json JSON text (repeatable)\n"
         "  --ctx KEY=I64      a context value (repeatable)\n"
         "  --new RESOURCE[:PROP=VALUE,...]\n"
         "                     create an instance of a resource, with these\n"
         "                     properties (converted to their types like\n"
         "                     --arg; the rest start at 0, \"\" or null), and\n"
         "                     run the method on it\n"
         "Running:\n"
         "  --max-steps N      end the invocation with a trap after N steps\n"
         "  --max-fuel N       end it with a trap after N units of fuel (one per\n"
         "                     loop iteration, per call and per 1,000 SQLite\n"
         "                     instructions; a step yields after 1,000,000 at\n"
         "                     most, so others may run)\n"
         "  --fuel-slice N     the most fuel one step may use before it yields\n"
         "                     (default 1,000,000)\n"
         "  --max-time MS      end it with a trap MS milliseconds (wall clock)\n"
         "                     after it started\n"
         "  --max-memory BYTES end it with a trap when a step would grow its\n"
         "                     linear memory past BYTES\n"
         "  --workers N        threads that run steps (default: one per core)\n"
         "  --db PATH          the SQLite database db_query runs on (created\n"
         "                     when missing; default: an empty in-memory one)\n"
         "  --trace            print every step and effect as a JSON line on\n"
         "                     stderr\n"
         "  --report           print one JSON object instead of the output:\n"
         "                     status, output, trap, steps, fuel, ctx, messages,\n"
         "                     the properties of the instance it ran on\n"
         "Suspending and resuming:\n"
         "  --checkpoint FILE  after every pending step, write the whole\n"
         "                     pending invocation to FILE (atomically; a\n"
         "                     database write may repeat after a kill:\n"
         "                     docs/cli.md)\n"
         "  --stop-after N     stop when N steps have run (counting steps\n"
         "                     before a resume), leaving the checkpoint, and\n"
         "                     exit with status 4\n"
         "  --resume FILE      continue the invocation checkpointed in FILE\n"
         "  --checkpoint-key FILE\n"
         "                     sign --checkpoint files with the key in FILE\n"
         "                     (HMAC-SHA-256) and resume only files signed with\n"
         "                     it\n"
         "Many invocations (--batch):\n"
         "  --batch FILE       one invocation per line of FILE ('-': standard\n"
         "                     input), each line an input object; prints one\n"
         "                     line per input line, in order: {\"line\": N,\n"
         "                     \"output\": ...} or {\"line\": N, \"trap\": \"...\"};\n"
         "                     --ctx, --db and the limits apply to each line,\n"
         "                     --new makes one instance their methods run on\n"
         "  --concurrency N    invocations alive at once (the rest wait)\n"
         "Other:\n"
         "  --help             print this help and exit\n"
         "  --version          print the version and exit\n\n"
         "Exit status: 0 done (every line, with --batch), 1 trap (any line;\n"
         "or a refused checkpoint), 2 usage error, 3 environment error\n"
         "(unreadable file, not a wfp module, a module or checkpoint of\n"
         "another program), 4 suspended.\n",
         usage_line);
}

static int usage_error(const char *fmt, const char *a) {
  fprintf(stderr, "wfp-host: ");
  fprintf(stderr, fmt, a);
  fprintf(stderr, "\n%s\nTry 'wfp-host --help'.\n", usage_line);
  return 2;
}

typedef struct kv {
  const char *key;
  size_t keylen;
  const char *val;
} kv;

static bool split_kv(const char *s, kv *out) {
  const char *eq = strchr(s, '=');
  if (!eq || eq == s)
    return false;
  out->key = s;
  out->keylen = (size_t)(eq - s);
  out->val = eq + 1;
  return true;
}

static bool parse_u64(const char *s, uint64_t *v) {
  int64_t x;
  if (!wfp__parse_i64(s, strlen(s), &x) || x < 0)
    return false;
  *v = (uint64_t)x;
  return true;
}

static void trace_line(void *ud, const char *line) {
  (void)ud;
  fprintf(stderr, "%s\n", line);
}

/* The input from --input, --fn, --arg and --new (which creates the
** instance in env). Returns an exit code (0 fine) and the text in *out
** (free with wfp_free). */
static int build_input(const wfp_module *m, wfp_env *env, const char *input, const char *fn,
                       const kv *args, int nargs, const char *new_spec, char **out) {
  *out = NULL;
  wfp_input *b = wfp_input_new(m);
  if (!b) {
    fprintf(stderr, "wfp-host: error: out of memory\n");
    return 3;
  }
  int rc = input ? wfp_input_set_json(b, input, strlen(input)) : 0;
  if (!rc && fn)
    rc = wfp_input_set_fn(b, fn);
  for (int i = 0; !rc && i < nargs; i++)
    rc = wfp_input_add_arg(b, args[i].key, args[i].keylen, args[i].val, strlen(args[i].val));
  if (!rc && new_spec)
    rc = wfp_input_set_new(b, new_spec, strlen(new_spec));
  if (!rc)
    rc = wfp_input_finish(b, env, out, NULL);
  int code = 0;
  if (rc == WFP_ENOMEM) {
    fprintf(stderr, "wfp-host: error: out of memory\n");
    code = 3;
  } else if (rc) {
    const wfp_diag *d = wfp_input_diag(b);
    code = usage_error("%s", d ? d->msg : wfp_strerror(rc));
  }
  wfp_input_free(b);
  return code;
}

/* --checkpoint and --stop-after: the commit hook of the loop. After every
** step that suspends, before its effect: the checkpoint, and maybe a stop. */
typedef struct ckpt_hook {
  wfp_invocation *inv;
  const char *path;
  uint64_t stop_after;
  int code; /* an exit code when writing failed */
} ckpt_hook;

static void on_commit(void *ud, const wfp_commit_record *r, wfp_commit_cb cb) {
  ckpt_hook *h = ud;
  if (r->inv != h->inv || r->phase != WFP_COMMIT_STEP) {
    cb(r->inv, 0);
    return;
  }
  char *data = NULL;
  size_t len = 0;
  int rc = wfp_invocation_checkpoint(r->inv, &data, &len);
  if (rc) {
    fprintf(stderr, "wfp-host: error: cannot make a checkpoint: %s\n", wfp_strerror(rc));
    h->code = 3;
    cb(r->inv, rc);
    return;
  }
  rc = wfp__write_file_atomic(h->path, data, len, 0644);
  int e = errno;
  free(data);
  if (rc) {
    fprintf(stderr, "wfp-host: error: cannot write %s: %s\n", h->path,
            rc == WFP_ENOMEM ? "out of memory" : strerror(e));
    h->code = 3;
    cb(r->inv, WFP_EIO);
    return;
  }
  cb(r->inv, h->stop_after && r->steps >= h->stop_after ? WFP_PENDING : 0);
}

static void on_done(wfp_invocation *inv, int status, void *data) {
  (void)inv;
  *(int *)data = status;
}

typedef struct opts {
  const char *so, *input, *fn, *ckpt, *resume, *new_spec, *db, *key_file, *batch;
  uint64_t max_steps, stop_after, max_fuel, fuel_slice, max_time, max_memory;
  uint64_t workers, concurrency;
  bool trace, report;
  kv *ctx, *args;
  int nctx, nargs;
} opts;

/* Parses argv into o: 0, or the exit code (2 usage; 0 for --help and
** --version, with done set). */
static int parse(int argc, char **argv, opts *o, bool *done) {
  *done = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = NULL;
    if (a[0] != '-') {
      if (o->so)
        return usage_error("more than one module given ('%s')", a);
      o->so = a;
      continue;
    }
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      help();
      *done = true;
      return 0;
    }
    if (strcmp(a, "--version") == 0) {
      printf("wfp-host %s (ABI version %u)\n", WFP_VERSION_STRING, WFP_ABI_VERSION);
      *done = true;
      return 0;
    }
    if (strcmp(a, "--trace") == 0) {
      o->trace = true;
      continue;
    }
    if (strcmp(a, "--report") == 0) {
      o->report = true;
      continue;
    }
    static const char *const valued[] = {
        "--ctx",        "--input",      "--fn",         "--arg",          "--new",
        "--max-steps",  "--max-fuel",   "--fuel-slice", "--checkpoint",   "--stop-after",
        "--resume",     "--db",         "--checkpoint-key", "--batch",    "--workers",
        "--concurrency", "--max-time",  "--max-memory", NULL};
    const char *name = wfp__opt_valued(valued, argc, argv, &i, &v);
    if (!name)
      return usage_error("unknown option '%s'", a);
    if (!v)
      return usage_error("option '%s' needs a value", name);
    static const struct {
      const char *name;
      size_t off;
    } counts[] = {{"--max-steps", offsetof(opts, max_steps)},
                  {"--max-fuel", offsetof(opts, max_fuel)},
                  {"--fuel-slice", offsetof(opts, fuel_slice)},
                  {"--stop-after", offsetof(opts, stop_after)},
                  {"--max-time", offsetof(opts, max_time)},
                  {"--max-memory", offsetof(opts, max_memory)},
                  {"--workers", offsetof(opts, workers)},
                  {"--concurrency", offsetof(opts, concurrency)}};
    bool counted = false;
    for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++)
      if (strcmp(name, counts[k].name) == 0) {
        uint64_t *dst = (uint64_t *)((char *)o + counts[k].off);
        bool small = strcmp(name, "--workers") == 0 || strcmp(name, "--concurrency") == 0;
        if (!parse_u64(v, dst) || *dst == 0 || (small && *dst > 100000)) {
          char msg[128];
          snprintf(msg, sizeof msg, "%s wants a positive integer%s, not '%%s'", name,
                   small ? " (at most 100000)" : "");
          return usage_error(msg, v);
        }
        counted = true;
      }
    if (counted)
      continue;
    if (strcmp(name, "--ctx") == 0) {
      int64_t x;
      if (!split_kv(v, &o->ctx[o->nctx]) ||
          !wfp__parse_i64(o->ctx[o->nctx].val, strlen(o->ctx[o->nctx].val), &x))
        return usage_error("--ctx wants KEY=I64 (a decimal integer), not '%s'", v);
      o->nctx++;
    } else if (strcmp(name, "--arg") == 0) {
      if (!split_kv(v, &o->args[o->nargs]))
        return usage_error("--arg wants NAME=VALUE, not '%s'", v);
      o->nargs++;
    } else if (strcmp(name, "--new") == 0) {
      if (o->new_spec)
        return usage_error("%s", "one --new per invocation");
      o->new_spec = v;
    } else {
      static const struct {
        const char *name;
        size_t off;
      } texts[] = {{"--input", offsetof(opts, input)},
                   {"--fn", offsetof(opts, fn)},
                   {"--checkpoint", offsetof(opts, ckpt)},
                   {"--db", offsetof(opts, db)},
                   {"--resume", offsetof(opts, resume)},
                   {"--checkpoint-key", offsetof(opts, key_file)},
                   {"--batch", offsetof(opts, batch)}};
      for (size_t k = 0; k < sizeof texts / sizeof texts[0]; k++)
        if (strcmp(name, texts[k].name) == 0)
          *(const char **)((char *)o + texts[k].off) = v;
    }
  }
  if (!o->so)
    return usage_error("%s", "no module given");
  if (o->batch) {
    static const struct {
      const char *name;
      size_t off;
    } single[] = {{"--input", offsetof(opts, input)},
                  {"--fn", offsetof(opts, fn)},
                  {"--checkpoint", offsetof(opts, ckpt)},
                  {"--resume", offsetof(opts, resume)},
                  {"--checkpoint-key", offsetof(opts, key_file)}};
    for (size_t k = 0; k < sizeof single / sizeof single[0]; k++)
      if (*(const char **)((char *)o + single[k].off))
        return usage_error("%s runs one invocation: --batch takes its inputs from the lines "
                           "of FILE", single[k].name);
    if (o->nargs)
      return usage_error("%s", "--arg runs one invocation: --batch takes its inputs from the "
                               "lines of FILE");
    if (o->trace || o->report || o->stop_after)
      return usage_error("%s runs one invocation: --batch prints one line per input line",
                         o->trace ? "--trace" : o->report ? "--report" : "--stop-after");
    return 0;
  }
  if (o->concurrency)
    return usage_error("%s", "--concurrency caps the invocations of a --batch");
  if (o->stop_after && !o->ckpt)
    return usage_error("%s", "--stop-after needs --checkpoint FILE to leave the invocation in");
  if (o->key_file && !o->ckpt && !o->resume)
    return usage_error("%s", "--checkpoint-key signs --checkpoint files and checks --resume "
                             "files: give one of them");
  if (o->resume && (o->input || o->fn || o->nargs || o->nctx || o->new_spec))
    return usage_error("%s", "--resume continues a checkpointed invocation: drop --input, "
                             "--fn, --arg, --ctx and --new");
  return 0;
}

static int oom(void) {
  fprintf(stderr, "wfp-host: error: out of memory\n");
  return 3;
}

/* --batch: the lines of FILE through wfp_batch_run. */
static int run_batch(const opts *o, wfp_module *m, wfp_env *env) {
  int fd = 0;
  if (strcmp(o->batch, "-") != 0 && (fd = open(o->batch, O_RDONLY | O_CLOEXEC)) < 0) {
    fprintf(stderr, "wfp-host: error: cannot read %s: %s\n", o->batch, strerror(errno));
    return 3;
  }
  uint64_t self = 0;
  if (o->new_spec) {
    /* one instance, shared by the lines: the methods of its resource run
    ** on it unless a line names another "self" */
    wfp_input *b = wfp_input_new(m);
    uint64_t h = 0;
    int rc = b ? wfp_input_set_new(b, o->new_spec, strlen(o->new_spec)) : WFP_ENOMEM;
    if (!rc)
      rc = wfp_input_new_instance(b, env, &h);
    int code = 0;
    if (rc == WFP_ENOMEM)
      code = oom();
    else if (rc)
      code = usage_error("%s", wfp_input_diag(b) ? wfp_input_diag(b)->msg : wfp_strerror(rc));
    wfp_input_free(b);
    if (code) {
      if (fd)
        close(fd);
      return code;
    }
    self = h;
  }
  wfp_batch_opts bo;
  memset(&bo, 0, sizeof bo);
  bo.size = sizeof bo;
  bo.workers = (unsigned)o->workers;
  bo.concurrency = (unsigned)o->concurrency;
  bo.max_steps = o->max_steps;
  bo.max_fuel = o->max_fuel;
  bo.fuel_slice = o->fuel_slice;
  bo.max_time_ms = o->max_time;
  bo.max_memory = o->max_memory;
  bo.self = self;
  int rc = wfp_batch_run(m, env, &bo, fd, stdout, NULL);
  int e = errno;
  if (fd)
    close(fd);
  if (rc == WFP_DONE)
    return 0;
  if (rc == WFP_TRAP)
    return 1;
  if (rc == WFP_EIO)
    fprintf(stderr, "wfp-host: error: %s: %s\n", o->batch, strerror(e));
  else
    fprintf(stderr, "wfp-host: error: %s\n", wfp_strerror(rc));
  return 3;
}

/* One invocation in a loop: to its end, or suspended by --stop-after. */
static int run_one(const opts *o, wfp_env *env, wfp_invocation *inv) {
  if (o->trace)
    wfp_invocation_set_trace(inv, trace_line, NULL);
  /* a resumed invocation keeps the limits of its checkpoint; each one given
  ** again here replaces that one */
  uint64_t kept_fuel, kept_slice;
  wfp_invocation_fuel_limits(inv, &kept_fuel, &kept_slice);
  wfp_invocation_set_fuel(inv, o->max_fuel ? o->max_fuel : kept_fuel,
                          o->fuel_slice ? o->fuel_slice : kept_slice);
  if (o->max_steps)
    wfp_invocation_set_max_steps(inv, o->max_steps);
  if (o->max_time)
    wfp_invocation_set_time_limit(inv, o->max_time);
  if (o->max_memory)
    wfp_invocation_set_memory_limit(inv, o->max_memory);
  wfp_loop_opts lo;
  memset(&lo, 0, sizeof lo);
  lo.size = sizeof lo;
  lo.workers = (unsigned)o->workers;
  wfp_loop *loop = NULL;
  int rc = wfp_loop_new(&lo, env, &loop);
  if (rc) {
    fprintf(stderr, "wfp-host: error: %s\n", wfp_strerror(rc));
    return 3;
  }
  ckpt_hook hook = {inv, o->ckpt, o->stop_after, 0};
  if (o->ckpt)
    wfp_loop_set_commit(loop, on_commit, &hook);
  int status = WFP_EINTERNAL;
  rc = wfp_loop_start(loop, inv, on_done, &status);
  if (!rc)
    wfp_loop_run(loop, WFP_RUN_DEFAULT);
  wfp_loop_free(loop);
  if (rc) {
    fprintf(stderr, "wfp-host: error: %s\n", wfp_strerror(rc));
    return 3;
  }
  if (hook.code)
    return hook.code;
  if (status == WFP_PENDING) {
    fprintf(stderr, "wfp-host: suspended after %llu steps; continue with --resume %s\n",
            (unsigned long long)wfp_invocation_steps(inv), o->ckpt);
    return 4;
  }
  if (status < 0) {
    fprintf(stderr, "wfp-host: error: %s\n", wfp_strerror(status));
    return 3;
  }
  if (o->report) {
    char *r = NULL;
    size_t rlen = 0;
    if ((rc = wfp_invocation_report(inv, env, &r, &rlen)) != 0) {
      fprintf(stderr, "wfp-host: error: %s\n", wfp_strerror(rc));
      return 3;
    }
    fwrite(r, 1, rlen, stdout);
    fputc('\n', stdout);
    wfp_free(r);
  } else if (status == WFP_DONE) {
    printf("%s\n", wfp_invocation_output(inv));
  }
  if (status == WFP_TRAP)
    fprintf(stderr, "wfp-host: trap: %s\n", wfp_invocation_trap_message(inv));
  return status == WFP_DONE ? 0 : 1;
}

/* wfp-host serve: the service is a module of its own (wfp-service.so,
** beside wfp-host in a build, in LIBDIR/wfp once installed), loaded only
** here: a plain run maps no HTTP parser and no SQLite. */
static int serve(int argc, char **argv) {
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) {
    fprintf(stderr, "wfp-host: error: cannot find where wfp-host is: %s\n", strerror(errno));
    return 3;
  }
  exe[n] = 0;
  char *slash = strrchr(exe, '/');
  if (slash)
    *slash = 0;
  static const char *const places[] = {"", "/" WFP_SERVICE_RELDIR};
  char path[PATH_MAX + 64];
  void *h = NULL;
  char why[PATH_MAX + 512] = "";
  for (size_t i = 0; i < sizeof places / sizeof places[0] && !h; i++) {
    snprintf(path, sizeof path, "%s%s/wfp-service.so", exe, places[i]);
    if (access(path, R_OK) != 0)
      continue;
    if (!(h = dlopen(path, RTLD_NOW | RTLD_LOCAL))) {
      const char *e = dlerror();
      snprintf(why, sizeof why, "%.*s", (int)(sizeof why - 1), e ? e : path);
    }
  }
  if (!h) {
    fprintf(stderr, "wfp-host: error: cannot load the service module: %s\n",
            why[0] ? why : "wfp-service.so is not installed beside wfp-host");
    return 3;
  }
  int (*fn)(int, char **) = (int (*)(int, char **))dlsym(h, "wfp_serve_main");
  if (!fn) {
    fprintf(stderr, "wfp-host: error: %s is not a wfp service module\n", path);
    return 3;
  }
  /* the module stays loaded until the process ends */
  return fn(argc, argv);
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "serve") == 0)
    return serve(argc - 1, argv + 1);
  opts o;
  memset(&o, 0, sizeof o);
  o.ctx = calloc((size_t)argc + 1, sizeof *o.ctx);
  o.args = calloc((size_t)argc + 1, sizeof *o.args);
  int code = 2;
  char *in = NULL;
  wfp_module *m = NULL;
  wfp_env *env = NULL;
  wfp_invocation *inv = NULL;
  bool done = false;
  if (!o.ctx || !o.args) {
    code = oom();
    goto out;
  }
  if ((code = parse(argc, argv, &o, &done)) != 0 || done)
    goto out;
  /* what a killed run left of its checkpoint writes goes */
  if (o.ckpt)
    wfp__remove_stale_temps(o.ckpt);
  char err[1024];
  wfp_host_diag hd;
  int rc = wfp_module_load(o.so, &m, &hd);
  if (rc) {
    fprintf(stderr, "wfp-host: error: %s: %s%s%s\n", o.so, hd.d.path,
            hd.d.path[0] ? ": " : "", hd.d.msg);
    code = 3;
    goto out;
  }
  if (!(env = wfp_env_new())) {
    code = oom();
    goto out;
  }
  if (o.key_file) {
    char *key = NULL;
    size_t klen = 0;
    if ((rc = wfp__read_file(o.key_file, &key, &klen)) != 0) {
      fprintf(stderr, "wfp-host: error: cannot read the checkpoint key %s: %s\n", o.key_file,
              rc == WFP_ENOMEM ? "out of memory" : strerror(errno));
      code = 3;
      goto out;
    }
    rc = wfp_env_set_checkpoint_key(env, key, klen);
    free(key);
    if (rc) {
      fprintf(stderr,
              "wfp-host: error: the checkpoint key %s has %zu bytes; it needs at least 16 "
              "(32 random bytes are right)\n",
              o.key_file, klen);
      code = 3;
      goto out;
    }
  }
  if (o.db && (rc = wfp_env_open_db(env, o.db, err, sizeof err)) != 0) {
    fprintf(stderr, "wfp-host: error: %s\n", rc == WFP_ENOMEM ? "out of memory" : err);
    code = 3;
    goto out;
  }
  for (int i = 0; i < o.nctx; i++) {
    int64_t x = 0;
    wfp__parse_i64(o.ctx[i].val, strlen(o.ctx[i].val), &x);
    rc = wfp_env_ctx_setn(env, o.ctx[i].key, o.ctx[i].keylen, x);
    if (rc == WFP_EINVAL) {
      code = usage_error("%s", "--ctx: a key that is not valid UTF-8");
      goto out;
    }
    if (rc) {
      code = oom();
      goto out;
    }
  }
  if (o.batch) {
    code = run_batch(&o, m, env);
    goto out;
  }
  if (o.resume) {
    char *data = NULL;
    size_t len = 0;
    if ((rc = wfp__read_file(o.resume, &data, &len)) != 0) {
      fprintf(stderr, "wfp-host: error: cannot read %s: %s\n", o.resume,
              rc == WFP_ENOMEM ? "out of memory" : strerror(errno));
      code = 3;
      goto out;
    }
    rc = wfp_invocation_restore(m, env, data, len, &inv, &hd);
    free(data);
    if (rc) {
      fprintf(stderr, "wfp-host: %s: %s: %s%s%s\n", rc == WFP_ECORRUPT ? "trap" : "error",
              o.resume, hd.d.path, hd.d.path[0] ? ": " : "", hd.d.msg);
      code = rc == WFP_ECORRUPT ? 1 : 3;
      goto out;
    }
  } else {
    code = build_input(m, env, o.input, o.fn, o.args, o.nargs, o.new_spec, &in);
    if (code)
      goto out;
    rc = wfp_invocation_new(m, env, in, strlen(in), &inv);
    if (rc) {
      fprintf(stderr, "wfp-host: error: %s\n", wfp_strerror(rc));
      code = 3;
      goto out;
    }
  }
  code = run_one(&o, env, inv);
out:
  fflush(stdout);
  wfp_invocation_free(inv);
  wfp_env_free(env);
  wfp_module_free(m);
  wfp_free(in);
  free(o.ctx);
  free(o.args);
  return code;
}
