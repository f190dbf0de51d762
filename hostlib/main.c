/*
** main.c: wfp-host, the host's command line. It builds the input and the
** environment from options, runs one invocation through the host library
** (wfp/host.h), and prints the output or a report. Exit codes: 0 done,
** 1 trap, 2 usage, 3 environment, 4 suspended (--stop-after).
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "wfp/host.h"

static const char usage_line[] = "usage: wfp-host [options] func.so";

static void help(void) {
  printf("%s\n\n"
         "Runs one invocation of a module built by wfp-aot and prints its\n"
         "output JSON on stdout.\n\n"
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
         "Other:\n"
         "  --help             print this help and exit\n"
         "  --version          print the version and exit\n\n"
         "Exit status: 0 done, 1 trap (or a refused checkpoint), 2 usage\n"
         "error, 3 environment error (unreadable file, not a wfp module, a\n"
         "module or checkpoint of another program), 4 suspended.\n",
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

static int write_checkpoint(wfp_invocation *inv, const char *path) {
  char *data = NULL;
  size_t len = 0;
  int rc = wfp_invocation_checkpoint(inv, &data, &len);
  if (rc) {
    fprintf(stderr, "wfp-host: error: cannot make a checkpoint: %s\n", wfp_strerror(rc));
    return 3;
  }
  rc = wfp__write_file_atomic(path, data, len, 0644);
  int e = errno;
  free(data);
  if (rc) {
    fprintf(stderr, "wfp-host: error: cannot write %s: %s\n", path, strerror(e));
    return 3;
  }
  return 0;
}

int main(int argc, char **argv) {
  const char *so = NULL, *input = NULL, *fn = NULL, *ckpt = NULL, *resume = NULL;
  const char *new_spec = NULL, *db = NULL, *key_file = NULL;
  uint64_t max_steps = 0, stop_after = 0, max_fuel = 0, fuel_slice = 0;
  bool trace = false, want_report = false;
  kv *ctx = calloc((size_t)argc + 1, sizeof *ctx);
  kv *args = calloc((size_t)argc + 1, sizeof *args);
  int nctx = 0, nargs = 0;
  int code = 2;
  char *in = NULL;
  wfp_module *m = NULL;
  wfp_env *env = NULL;
  wfp_invocation *inv = NULL;
  if (!ctx || !args) {
    fprintf(stderr, "wfp-host: error: out of memory\n");
    code = 3;
    goto out;
  }
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = NULL;
    if (a[0] != '-') {
      if (so) {
        code = usage_error("more than one module given ('%s')", a);
        goto out;
      }
      so = a;
      continue;
    }
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      help();
      code = 0;
      goto out;
    }
    if (strcmp(a, "--version") == 0) {
      printf("wfp-host %s (ABI version %u)\n", WFP_VERSION_STRING, WFP_ABI_VERSION);
      code = 0;
      goto out;
    }
    if (strcmp(a, "--trace") == 0) {
      trace = true;
      continue;
    }
    if (strcmp(a, "--report") == 0) {
      want_report = true;
      continue;
    }
    static const char *const valued[] = {"--ctx", "--input", "--fn", "--arg",
                                         "--new", "--max-steps", "--max-fuel", "--fuel-slice", "--checkpoint",
                                         "--stop-after", "--resume", "--db",
                                         "--checkpoint-key", NULL};
    const char *name = NULL;
    for (const char *const *q = valued; *q; q++) {
      size_t n = strlen(*q);
      if (strncmp(a, *q, n) == 0 && (a[n] == 0 || a[n] == '=')) {
        name = *q;
        if (a[n] == '=')
          v = a + n + 1;
        else if (i + 1 < argc)
          v = argv[++i];
        break;
      }
    }
    if (!name) {
      code = usage_error("unknown option '%s'", a);
      goto out;
    }
    if (!v) {
      code = usage_error("option '%s' needs a value", name);
      goto out;
    }
    if (strcmp(name, "--ctx") == 0) {
      int64_t x;
      if (!split_kv(v, &ctx[nctx]) ||
          !wfp__parse_i64(ctx[nctx].val, strlen(ctx[nctx].val), &x)) {
        code = usage_error("--ctx wants KEY=I64 (a decimal integer), not '%s'", v);
        goto out;
      }
      nctx++;
    } else if (strcmp(name, "--arg") == 0) {
      if (!split_kv(v, &args[nargs])) {
        code = usage_error("--arg wants NAME=VALUE, not '%s'", v);
        goto out;
      }
      nargs++;
    } else if (strcmp(name, "--input") == 0) {
      input = v;
    } else if (strcmp(name, "--new") == 0) {
      if (new_spec) {
        code = usage_error("%s", "one --new per invocation");
        goto out;
      }
      new_spec = v;
    } else if (strcmp(name, "--fn") == 0) {
      fn = v;
    } else if (strcmp(name, "--checkpoint") == 0) {
      ckpt = v;
    } else if (strcmp(name, "--db") == 0) {
      db = v;
    } else if (strcmp(name, "--resume") == 0) {
      resume = v;
    } else if (strcmp(name, "--checkpoint-key") == 0) {
      key_file = v;
    } else if (strcmp(name, "--max-steps") == 0) {
      if (!parse_u64(v, &max_steps) || max_steps == 0) {
        code = usage_error("--max-steps wants a positive integer, not '%s'", v);
        goto out;
      }
    } else if (strcmp(name, "--max-fuel") == 0) {
      if (!parse_u64(v, &max_fuel) || max_fuel == 0) {
        code = usage_error("--max-fuel wants a positive integer, not '%s'", v);
        goto out;
      }
    } else if (strcmp(name, "--fuel-slice") == 0) {
      if (!parse_u64(v, &fuel_slice) || fuel_slice == 0) {
        code = usage_error("--fuel-slice wants a positive integer, not '%s'", v);
        goto out;
      }
    } else if (strcmp(name, "--stop-after") == 0) {
      if (!parse_u64(v, &stop_after) || stop_after == 0) {
        code = usage_error("--stop-after wants a positive integer, not '%s'", v);
        goto out;
      }
    }
  }
  if (!so) {
    code = usage_error("%s", "no module given");
    goto out;
  }
  if (stop_after && !ckpt) {
    code = usage_error("%s", "--stop-after needs --checkpoint FILE to leave the invocation in");
    goto out;
  }
  if (key_file && !ckpt && !resume) {
    code = usage_error("%s", "--checkpoint-key signs --checkpoint files and checks --resume files: give one of them");
    goto out;
  }
  if (resume && (input || fn || nargs || nctx || new_spec)) {
    code = usage_error("%s", "--resume continues a checkpointed invocation: drop --input, --fn, --arg, --ctx and --new");
    goto out;
  }

  /* what a killed run left of its checkpoint writes goes */
  if (ckpt)
    wfp__remove_stale_temps(ckpt);
  char err[1024];
  wfp_host_diag hd;
  int rc = wfp_module_load(so, &m, &hd);
  if (rc) {
    fprintf(stderr, "wfp-host: error: %s: %s%s%s\n", so, hd.d.path, hd.d.path[0] ? ": " : "",
            hd.d.msg);
    code = 3;
    goto out;
  }
  env = wfp_env_new();
  if (!env) {
    fprintf(stderr, "wfp-host: error: out of memory\n");
    code = 3;
    goto out;
  }
  if (key_file) {
    char *key = NULL;
    size_t klen = 0;
    if (wfp__read_file(key_file, &key, &klen)) {
      fprintf(stderr, "wfp-host: error: cannot read the checkpoint key %s: %s\n", key_file,
              strerror(errno));
      code = 3;
      goto out;
    }
    rc = wfp_env_set_checkpoint_key(env, key, klen);
    free(key);
    if (rc) {
      fprintf(stderr,
              "wfp-host: error: the checkpoint key %s has %zu bytes; it needs at least 16 "
              "(32 random bytes are right)\n",
              key_file, klen);
      code = 3;
      goto out;
    }
  }
  if (db && (rc = wfp_env_open_db(env, db, err, sizeof err)) != 0) {
    fprintf(stderr, "wfp-host: error: %s\n", rc == WFP_ENOMEM ? "out of memory" : err);
    code = 3;
    goto out;
  }
  if (resume) {
    char *data = NULL;
    size_t len = 0;
    if (wfp__read_file(resume, &data, &len)) {
      fprintf(stderr, "wfp-host: error: cannot read %s: %s\n", resume, strerror(errno));
      code = 3;
      goto out;
    }
    rc = wfp_invocation_restore(m, env, data, len, &inv, &hd);
    free(data);
    if (rc) {
      fprintf(stderr, "wfp-host: %s: %s: %s%s%s\n", rc == WFP_ECORRUPT ? "trap" : "error",
              resume, hd.d.path, hd.d.path[0] ? ": " : "", hd.d.msg);
      code = rc == WFP_ECORRUPT ? 1 : 3;
      goto out;
    }
  } else {
    for (int i = 0; i < nctx; i++) {
      int64_t x = 0;
      wfp__parse_i64(ctx[i].val, strlen(ctx[i].val), &x);
      rc = wfp_env_ctx_setn(env, ctx[i].key, ctx[i].keylen, x);
      if (rc == WFP_EINVAL) {
        code = usage_error("%s", "--ctx: a key that is not valid UTF-8");
        goto out;
      }
      if (rc) {
        fprintf(stderr, "wfp-host: error: out of memory\n");
        code = 3;
        goto out;
      }
    }
    code = build_input(m, env, input, fn, args, nargs, new_spec, &in);
    if (code)
      goto out;
    rc = wfp_invocation_new(m, env, in, strlen(in), &inv);
    if (rc) {
      fprintf(stderr, "wfp-host: error: %s\n", wfp_strerror(rc));
      code = 3;
      goto out;
    }
  }
  if (trace)
    wfp_invocation_set_trace(inv, trace_line, NULL);
  /* a resumed invocation keeps the limits of its checkpoint; each one given
  ** again here replaces that one */
  uint64_t kept_fuel, kept_slice;
  wfp_invocation_fuel_limits(inv, &kept_fuel, &kept_slice);
  wfp_invocation_set_fuel(inv, max_fuel ? max_fuel : kept_fuel,
                          fuel_slice ? fuel_slice : kept_slice);
  if (max_steps)
    wfp_invocation_set_max_steps(inv, max_steps);
  max_steps = wfp_invocation_max_steps(inv);

  int status;
  for (;;) {
    if (wfp_invocation_steps(inv) > 0 && (rc = wfp_invocation_perform(inv)) != 0 &&
        rc != WFP_EINVAL) {
      fprintf(stderr, "wfp-host: error: %s\n", wfp_strerror(rc));
      code = 3;
      goto out;
    }
    if (max_steps && wfp_invocation_steps(inv) >= max_steps) {
      /* the limit ends the invocation as a trap */
      status = wfp_invocation_run(inv, max_steps);
      break;
    }
    status = wfp_invocation_step(inv);
    if (status < 0) {
      fprintf(stderr, "wfp-host: error: %s\n", wfp_strerror(status));
      code = 3;
      goto out;
    }
    if (status != WFP_PENDING)
      break;
    if (ckpt && (code = write_checkpoint(inv, ckpt)) != 0)
      goto out;
    if (stop_after && wfp_invocation_steps(inv) >= stop_after) {
      fprintf(stderr,
              "wfp-host: suspended after %llu steps; continue with --resume %s\n",
              (unsigned long long)wfp_invocation_steps(inv), ckpt);
      code = 4;
      goto out;
    }
  }
  if (want_report) {
    char *r = NULL;
    size_t rlen = 0;
    if ((rc = wfp_invocation_report(inv, env, &r, &rlen)) != 0) {
      fprintf(stderr, "wfp-host: error: %s\n", wfp_strerror(rc));
      code = 3;
      goto out;
    }
    fwrite(r, 1, rlen, stdout);
    fputc('\n', stdout);
    wfp_free(r);
  } else if (status == WFP_DONE) {
    printf("%s\n", wfp_invocation_output(inv));
  }
  if (status == WFP_TRAP)
    fprintf(stderr, "wfp-host: trap: %s\n", wfp_invocation_trap_message(inv));
  code = status == WFP_DONE ? 0 : 1;
out:
  fflush(stdout);
  wfp_invocation_free(inv);
  wfp_env_free(env);
  wfp_module_free(m);
  wfp_free(in);
  free(ctx);
  free(args);
  return code;
}
