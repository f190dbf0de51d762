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

#include <cjson/cJSON.h>

#include "host_int.h"
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
         "                     loop iteration and per call; a step yields after\n"
         "                     1,000,000 at most, so others may run)\n"
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
         "                     pending invocation to FILE (atomically)\n"
         "  --stop-after N     stop when N steps have run (counting steps\n"
         "                     before a resume), leaving the checkpoint, and\n"
         "                     exit with status 4\n"
         "  --resume FILE      continue the invocation checkpointed in FILE\n"
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

static int out_of_memory(void) {
  fprintf(stderr, "wfp-host: error: out of memory\n");
  return 3;
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

/* The report: one JSON object on stdout. Returns an exit code: 3 when it
** could not be made (nothing is printed then). */
static int report(wfp_invocation *inv, wfp_env *env, int status) {
  wfp__buf b;
  wfp__buf_init(&b);
  wfp__buf_adds(&b, "{\"status\":");
  wfp__buf_adds(&b, status == WFP_DONE ? "\"done\"" : "\"trap\"");
  wfp__buf_adds(&b, ",\"output\":");
  const char *out = wfp_invocation_output(inv);
  wfp__buf_adds(&b, out ? out : "null");
  wfp__buf_adds(&b, ",\"trap\":");
  const char *t = wfp_invocation_trap_message(inv);
  if (t)
    wfp__buf_add_jstr(&b, t, strlen(t));
  else
    wfp__buf_adds(&b, "null");
  wfp__buf_printf(&b, ",\"steps\":%llu,\"fuel\":%llu,\"ctx\":{",
                  (unsigned long long)wfp_invocation_steps(inv),
                  (unsigned long long)wfp_invocation_fuel_used(inv));
  for (size_t i = 0; i < wfp_env_ctx_count(env); i++) {
    if (i)
      wfp__buf_addc(&b, ',');
    const char *k = wfp_env_ctx_key(env, i);
    wfp__buf_add_jstr(&b, k, strlen(k));
    wfp__buf_addc(&b, ':');
    wfp__buf_add_i64(&b, wfp_env_ctx_value(env, i));
  }
  wfp__buf_adds(&b, "},\"messages\":[");
  for (size_t i = 0; i < wfp_env_message_count(env); i++) {
    if (i)
      wfp__buf_addc(&b, ',');
    const char *topic = wfp_env_message_topic(env, i);
    wfp__buf_adds(&b, "{\"topic\":");
    wfp__buf_add_jstr(&b, topic, strlen(topic));
    wfp__buf_adds(&b, ",\"payload\":");
    wfp__buf_adds(&b, wfp_env_message_payload(env, i));
    wfp__buf_addc(&b, '}');
  }
  wfp__buf_adds(&b, "],\"properties\":");
  uint64_t self = wfp_invocation_self(inv);
  if (self && wfp_env_instance_resource(env, self)) {
    wfp__buf_addc(&b, '{');
    for (size_t i = 0; i < wfp_env_instance_prop_count(env, self); i++) {
      if (i)
        wfp__buf_addc(&b, ',');
      const char *n = wfp_env_instance_prop_name(env, self, i);
      wfp__buf_add_jstr(&b, n, strlen(n));
      wfp__buf_addc(&b, ':');
      wfp__buf_adds(&b, wfp_env_instance_prop_value(env, self, i));
    }
    wfp__buf_addc(&b, '}');
  } else {
    wfp__buf_adds(&b, "null");
  }
  wfp__buf_adds(&b, "}\n");
  if (b.oom) {
    wfp__buf_free(&b);
    return out_of_memory();
  }
  fwrite(b.data, 1, b.len, stdout);
  wfp__buf_free(&b);
  return 0;
}

/* VALUE of NAME=VALUE as JSON text of type ty into *out (malloc). Returns
** an exit code: 0, 2 with a usage error printed, 3 out of memory. An i64
** takes a decimal integer, a str the text as is, a json JSON text. */
static int typed_value(const char *what, const char *name, const char *v, uint8_t ty,
                       char **out) {
  char msg[512];
  *out = NULL;
  if (ty == WFP_TY_I64) {
    int64_t x;
    if (wfp__parse_i64(v, strlen(v), &x))
      return (*out = strdup(v)) ? 0 : out_of_memory();
    snprintf(msg, sizeof msg, "%s %s: '%s' is not an i64 (a decimal integer)", what, name, v);
  } else if (ty == WFP_TY_STR) {
    wfp__buf b;
    wfp__buf_init(&b);
    wfp__buf_add_jstr(&b, v, strlen(v));
    if (b.oom) {
      wfp__buf_free(&b);
      return out_of_memory();
    }
    return (*out = wfp__buf_take(&b, NULL)) ? 0 : out_of_memory();
  } else if (ty == WFP_TY_JSON) {
    cJSON *t;
    if (wfp__json_parse(v, strlen(v), &t) == WFP_ENOMEM)
      return out_of_memory();
    cJSON_Delete(t);
    if (t)
      return (*out = strdup(v)) ? 0 : out_of_memory();
    snprintf(msg, sizeof msg, "%s %s: '%s' is not JSON", what, name, v);
  } else if (ty == WFP_TY_FN) {
    /* a function value in its JSON form, as an invocation outputs it */
    cJSON *t;
    if (wfp__json_parse(v, strlen(v), &t) == WFP_ENOMEM)
      return out_of_memory();
    bool ok = cJSON_IsString(cJSON_GetObjectItemCaseSensitive(t, "fn")) &&
              cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(t, "args"));
    cJSON_Delete(t);
    if (ok)
      return (*out = strdup(v)) ? 0 : out_of_memory();
    snprintf(msg, sizeof msg,
             "%s %s: '%s' is not a function value ({\"fn\": \"<id>\", \"args\": [captured values]})",
             what, name, v);
  } else {
    snprintf(msg, sizeof msg, "%s %s: a value of this type cannot be given", what, name);
  }
  return usage_error("%s", msg);
}

/* --new RESOURCE[:PROP=VALUE,...]: creates the instance. Returns an exit
** code (0 fine) and its handle. */
static int new_instance(const wfp_module *m, wfp_env *env, const char *spec,
                        uint64_t *handle) {
  const char *colon = strchr(spec, ':');
  char res[256];
  snprintf(res, sizeof res, "%.*s", (int)(colon ? (size_t)(colon - spec) : strlen(spec)), spec);
  const wfp_module_desc *d = wfp_module_descriptor_of(m);
  const wfp_abi_resource *r = NULL;
  for (uint32_t i = 0; i < d->nresources; i++)
    if (strcmp(d->resources[i].name, res) == 0)
      r = &d->resources[i];
  if (!r)
    return usage_error("--new: this module has no resource '%s'", res);
  if (wfp_env_instance_new(env, m, res, handle))
    return out_of_memory();
  const char *p = colon ? colon + 1 : NULL;
  while (p && *p) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    char item[1024];
    snprintf(item, sizeof item, "%.*s", (int)len, p);
    char *eq = strchr(item, '=');
    if (!eq || eq == item)
      return usage_error("--new wants RESOURCE:PROP=VALUE,..., not '%s'", spec);
    *eq = 0;
    int k = -1;
    for (uint32_t q = 0; q < r->nprops; q++)
      if (strcmp(r->prop_names[q], item) == 0)
        k = (int)q;
    if (k < 0) {
      char msg[1536];
      snprintf(msg, sizeof msg, "--new: resource '%s' has no property '%s'", res, item);
      return usage_error("%s", msg);
    }
    char *json;
    int code = typed_value("--new", item, eq + 1, r->prop_types[k], &json);
    if (code)
      return code;
    int rc = wfp_env_instance_set(env, *handle, item, json);
    free(json);
    if (rc) {
      fprintf(stderr, "wfp-host: error: %s\n", wfp_strerror(rc));
      return 3;
    }
    p = end ? end + 1 : NULL;
  }
  return 0;
}

/* Adds item (NULL when its creation ran out of memory) to obj; false, with
** the item freed, when either ran out of memory. */
static bool add_item(cJSON *obj, const char *key, cJSON *item) {
  if (item && cJSON_AddItemToObject(obj, key, item))
    return true;
  cJSON_Delete(item);
  return false;
}

/* Builds the input text from --input, --fn, --arg and --new (self).
** Returns an exit code (0 fine) and the text in *out (malloc). */
static int build_input(const wfp_module *m, const char *input, const char *fn,
                       kv *args, int nargs, uint64_t self, const char *self_res,
                       char **out) {
  *out = NULL;
  cJSON *j = NULL;
  if (input ? wfp__json_parse(input, strlen(input), &j) == WFP_ENOMEM
            : !(j = cJSON_CreateObject()))
    return out_of_memory();
  if (input && !fn && nargs == 0 && !self) {
    bool ok = cJSON_IsObject(j);
    cJSON_Delete(j);
    if (!ok)
      return usage_error("--input must be a JSON object, not '%s'", input);
    *out = strdup(input);
    return *out ? 0 : out_of_memory();
  }
  if (!cJSON_IsObject(j)) {
    cJSON_Delete(j);
    return usage_error("--input must be a JSON object, not '%s'", input);
  }
  if (fn) {
    cJSON_DeleteItemFromObjectCaseSensitive(j, "fn");
    if (!add_item(j, "fn", cJSON_CreateString(fn))) {
      cJSON_Delete(j);
      return out_of_memory();
    }
  }
  const cJSON *fv = cJSON_GetObjectItemCaseSensitive(j, "fn");
  const char *fname = cJSON_IsString(fv) ? fv->valuestring : wfp_module_entry(m);
  if (nargs) {
    int fi = fname ? wfp_module_find(m, fname) : -1;
    if (fi < 0) {
      char name[256];
      snprintf(name, sizeof name, "%s", fname ? fname : "");
      cJSON_Delete(j);
      if (!fname)
        return usage_error("%s", "--arg needs --fn: this module has no entry function");
      return usage_error("no function '%s' in this module", name);
    }
    const wfp_abi_func *f = &wfp_module_descriptor_of(m)->funcs[fi];
    cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "args");
    if (!a) {
      a = cJSON_CreateObject();
      if (!add_item(j, "args", a)) {
        cJSON_Delete(j);
        return out_of_memory();
      }
    } else if (!cJSON_IsObject(a)) {
      cJSON_Delete(j);
      return usage_error("%s", "--arg cannot add to an \"args\" array given with --input");
    }
    for (int i = 0; i < nargs; i++) {
      int k = -1;
      for (uint32_t p = 0; p < f->nparams; p++)
        if (strlen(f->param_names[p]) == args[i].keylen &&
            strncmp(f->param_names[p], args[i].key, args[i].keylen) == 0)
          k = (int)p;
      char name[256];
      snprintf(name, sizeof name, "%.*s", (int)args[i].keylen, args[i].key);
      if (k < 0) {
        char msg[512];
        snprintf(msg, sizeof msg, "function '%s' has no parameter '%s'", f->name, name);
        cJSON_Delete(j);
        return usage_error("%s", msg);
      }
      char *json;
      int code = typed_value("--arg", name, args[i].val, f->param_types[k], &json);
      if (code) {
        cJSON_Delete(j);
        return code;
      }
      cJSON *node = cJSON_CreateRaw(json);
      free(json);
      cJSON_DeleteItemFromObjectCaseSensitive(a, name);
      if (!add_item(a, name, node)) {
        cJSON_Delete(j);
        return out_of_memory();
      }
    }
  } else if (fname && wfp_module_find(m, fname) < 0) {
    char name[256];
    snprintf(name, sizeof name, "%s", fname); /* fname may live in j */
    cJSON_Delete(j);
    return usage_error("no function '%s' in this module", name);
  }
  if (self) {
    cJSON_DeleteItemFromObjectCaseSensitive(j, "self");
    if (!add_item(j, "self", cJSON_CreateNumber((double)self))) {
      cJSON_Delete(j);
      return out_of_memory();
    }
  }
  /* a method runs on an instance of its resource */
  int fi = fname ? wfp_module_find(m, fname) : -1;
  if (fi >= 0) {
    const wfp_abi_func *f = &wfp_module_descriptor_of(m)->funcs[fi];
    char msg[512];
    msg[0] = 0;
    if (f->resource && !self && !cJSON_GetObjectItemCaseSensitive(j, "self"))
      snprintf(msg, sizeof msg,
               "'%s' is a method of '%s': give the instance it runs on (--new %s)",
               f->name, f->resource, f->resource);
    else if (self && (!f->resource || strcmp(f->resource, self_res) != 0))
      snprintf(msg, sizeof msg, "--new %s: '%s' is not a method of '%s'", self_res,
               f->name, self_res);
    if (msg[0]) {
      cJSON_Delete(j);
      return usage_error("%s", msg);
    }
  }
  *out = cJSON_PrintUnformatted(j);
  cJSON_Delete(j);
  return *out ? 0 : out_of_memory();
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
  if (rc == WFP_ENOMEM)
    return out_of_memory();
  if (rc) {
    fprintf(stderr, "wfp-host: error: cannot write %s: %s\n", path, strerror(e));
    return 3;
  }
  return 0;
}

int main(int argc, char **argv) {
  const char *so = NULL, *input = NULL, *fn = NULL, *ckpt = NULL, *resume = NULL;
  const char *new_spec = NULL, *db = NULL;
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
                                         "--stop-after", "--resume", "--db", NULL};
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
  if (resume && (input || fn || nargs || nctx || new_spec)) {
    code = usage_error("%s", "--resume continues a checkpointed invocation: drop --input, --fn, --arg, --ctx and --new");
    goto out;
  }

  char err[1024];
  int rc = wfp_module_load(so, &m, err, sizeof err);
  if (rc) {
    fprintf(stderr, "wfp-host: error: %s\n", rc == WFP_ENOMEM ? "out of memory" : err);
    code = 3;
    goto out;
  }
  env = wfp_env_new();
  if (!env) {
    fprintf(stderr, "wfp-host: error: out of memory\n");
    code = 3;
    goto out;
  }
  if (db && (rc = wfp_env_open_db(env, db, err, sizeof err)) != 0) {
    fprintf(stderr, "wfp-host: error: %s\n", rc == WFP_ENOMEM ? "out of memory" : err);
    code = 3;
    goto out;
  }
  if (resume) {
    char *data = NULL;
    size_t len = 0;
    if ((rc = wfp__read_file(resume, &data, &len)) != 0) {
      if (rc == WFP_ENOMEM)
        code = out_of_memory();
      else
        fprintf(stderr, "wfp-host: error: cannot read %s: %s\n", resume, strerror(errno));
      code = 3;
      goto out;
    }
    rc = wfp_invocation_restore(m, env, data, len, &inv, err, sizeof err);
    free(data);
    if (rc == WFP_ECORRUPT) {
      fprintf(stderr, "wfp-host: trap: %s: %s\n", resume, err);
      code = 1;
      goto out;
    }
    if (rc) {
      fprintf(stderr, "wfp-host: error: %s: %s\n", resume,
              rc == WFP_EFOREIGN || rc == WFP_EIO ? err : wfp_strerror(rc));
      code = 3;
      goto out;
    }
  } else {
    for (int i = 0; i < nctx; i++) {
      char key[512];
      snprintf(key, sizeof key, "%.*s", (int)ctx[i].keylen, ctx[i].key);
      int64_t x = 0;
      wfp__parse_i64(ctx[i].val, strlen(ctx[i].val), &x);
      if (wfp_env_ctx_set(env, key, x)) {
        fprintf(stderr, "wfp-host: error: out of memory\n");
        code = 3;
        goto out;
      }
    }
    uint64_t self = 0;
    char self_res[256] = "";
    if (new_spec) {
      code = new_instance(m, env, new_spec, &self);
      if (code)
        goto out;
      snprintf(self_res, sizeof self_res, "%s", wfp_env_instance_resource(env, self));
    }
    code = build_input(m, input, fn, args, nargs, self, self_res, &in);
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
  /* a resumed invocation keeps its fuel limits unless given new ones */
  if (!resume || max_fuel || fuel_slice)
    wfp_invocation_set_fuel(inv, max_fuel, fuel_slice);
  wfp_invocation_set_max_steps(inv, max_steps);

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
      if (status < 0) {
        fprintf(stderr, "wfp-host: error: %s\n", wfp_strerror(status));
        code = 3;
        goto out;
      }
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
    if ((code = report(inv, env, status)) != 0)
      goto out;
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
  free(in);
  free(ctx);
  free(args);
  return code;
}
