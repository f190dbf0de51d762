/*
** module.c: loading a .so: dlopen, the one descriptor symbol, its version
** and shape, and the instance every step of the module's invocations uses.
*/
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "host_int.h"

static int fail(char *err, size_t n, int code, const char *fmt, const char *a,
                const char *b) {
  if (err && n)
    snprintf(err, n, fmt, a, b);
  return code;
}

int wfp_module_load(const char *path, wfp_module **out, char *err, size_t errlen) {
  if (!path || !out)
    return fail(err, errlen, WFP_EINVAL, "%s%s", "invalid argument", "");
  *out = NULL;
  struct stat st;
  if (stat(path, &st) != 0)
    return fail(err, errlen, WFP_EIO, "%s: %s", path, strerror(errno));
  if (S_ISDIR(st.st_mode))
    return fail(err, errlen, WFP_EIO, "%s: %s", path, "is a directory");
  /* dlopen searches the library path for a name without '/' */
  char *full = malloc(strlen(path) + 3);
  if (!full)
    return fail(err, errlen, WFP_ENOMEM, "%s%s", "out of memory", "");
  sprintf(full, "%s%s", strchr(path, '/') ? "" : "./", path);
  void *dl = dlopen(full, RTLD_NOW | RTLD_LOCAL);
  free(full);
  if (!dl) {
    const char *why = dlerror();
    return fail(err, errlen, WFP_ENOTMODULE,
                "%s is not a wfp module: cannot load it as a shared object (%s)",
                path, why ? why : "unknown reason");
  }
  wfp_module_desc_fn get = (wfp_module_desc_fn)dlsym(dl, WFP_MODULE_SYMBOL);
  if (!get) {
    dlclose(dl);
    return fail(err, errlen, WFP_ENOTMODULE,
                "%s is not a wfp module: it has no %s symbol", path,
                WFP_MODULE_SYMBOL);
  }
  const wfp_module_desc *d = get();
  if (!d || d->struct_size < 8) {
    dlclose(dl);
    return fail(err, errlen, WFP_ENOTMODULE,
                "%s is not a wfp module: its descriptor is empty%s", path, "");
  }
  if (d->abi_version != WFP_ABI_VERSION) {
    char v[64];
    snprintf(v, sizeof v, "%u, this host supports %u", d->abi_version,
             WFP_ABI_VERSION);
    dlclose(dl);
    return fail(err, errlen, WFP_EABI,
                "%s was built for wfp module ABI version %s; rebuild it with "
                "this wfp-aot",
                path, v);
  }
  if (d->struct_size < sizeof(wfp_module_desc) || !d->program_hash ||
      !d->instantiate || !d->free_instance || !d->run_step || !d->post_return ||
      !d->fatal_message || !d->memory_bytes || !d->set_fuel || !d->fuel_used ||
      (d->nfuncs && !d->funcs)) {
    dlclose(dl);
    return fail(err, errlen, WFP_ENOTMODULE,
                "%s is not a wfp module: its descriptor is incomplete%s", path, "");
  }
  wfp_module *m = calloc(1, sizeof *m);
  char *p = strdup(path);
  if (!m || !p) {
    free(m);
    free(p);
    dlclose(dl);
    return fail(err, errlen, WFP_ENOMEM, "%s%s", "out of memory", "");
  }
  m->dl = dl;
  m->d = d;
  m->path = p;
  *out = m;
  return WFP_OK;
}

void wfp__module_discard(wfp_module *m) {
  if (m->inst)
    m->d->free_instance(m->inst);
  m->inst = NULL;
}

void wfp_module_free(wfp_module *m) {
  if (!m)
    return;
  wfp__module_discard(m);
  dlclose(m->dl);
  free(m->path);
  free(m);
}

typedef struct inst_call {
  const wfp_module_desc *d;
  void *inst;
} inst_call;

static void do_instantiate(void *arg) {
  inst_call *c = arg;
  c->inst = c->d->instantiate();
}

void *wfp__module_instance(wfp_module *m, const char **msg) {
  if (m->inst)
    return m->inst;
  inst_call c = {m->d, NULL};
  bool oom = false;
  int trap = wfp__rt_protect(do_instantiate, &c, &oom);
  if (trap) {
    /* what the trapped instantiation left half made (abi.h) */
    m->d->free_instance(NULL);
    c.inst = NULL;
  }
  if (!c.inst) {
    *msg = "out of memory creating an instance";
    return NULL;
  }
  m->inst = c.inst;
  return m->inst;
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
