/*
** program.c: the public face of the front end (wfp/ir.h): the program
** handle, its diagnostics, and the load pipeline parse -> IDs -> check ->
** lift -> emit. Each stage is in its own file.
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ir_ast.h"

#define DEFAULT_MAX_DIAGS 20

wfp_program *wfp_program_new(const wfp_ir_opts *opts) {
  wfp_program *p = calloc(1, sizeof *p);
  if (!p)
    return NULL;
  wfp__arena_init(&p->arena);
  /* room for the first diagnostics and the file's name now, so that a load
  ** that runs out of memory can still say so, naming the file */
  p->diags_cap = 8;
  p->diags = calloc(p->diags_cap, sizeof *p->diags);
  if (!p->diags || !wfp__arena_alloc(&p->arena, 1)) {
    wfp_program_free(p);
    return NULL;
  }
  if (opts) {
    size_t n = opts->size < sizeof p->opts ? opts->size : sizeof p->opts;
    memcpy(&p->opts, opts, n);
  }
  p->opts.size = sizeof p->opts;
  if (!p->opts.max_diags)
    p->opts.max_diags = DEFAULT_MAX_DIAGS;
  p->entry_explicit = p->opts.entry != NULL;
  p->entry_name = p->opts.entry ? p->opts.entry : "main";
  p->status = WFP_EINVAL; /* not loaded */
  return p;
}

void wfp_program_free(wfp_program *p) {
  if (!p)
    return;
  cJSON_Delete(p->doc);
  free(p->funcs);
  free(p->resources);
  free(p->diags);
  free(p->ir_text);
  wfp__arena_free(&p->arena);
  free(p);
}

static int add_diag(wfp_program *p, int code, const char *path, int line,
                    int col, const char *fmt, va_list ap) {
  if (p->ndiags >= p->opts.max_diags) {
    p->dropped++;
    return code;
  }
  if (p->ndiags == p->diags_cap) {
    size_t cap = p->diags_cap ? p->diags_cap * 2 : 8;
    wfp_diag *nd = realloc(p->diags, cap * sizeof *nd);
    if (!nd) {
      p->oom = true;
      return code;
    }
    p->diags = nd;
    p->diags_cap = cap;
  }
  char msg[1024];
  vsnprintf(msg, sizeof msg, fmt, ap);
  wfp_diag *d = &p->diags[p->ndiags++];
  d->code = code;
  d->file = p->file;
  d->path = path ? wfp__arena_strdup(&p->arena, path) : "";
  if (!d->path)
    d->path = "";
  d->line = line;
  d->col = col;
  d->msg = wfp__arena_strdup(&p->arena, msg);
  if (!d->msg)
    d->msg = "out of memory";
  return code;
}

int wfp__diag(wfp_program *p, int code, const char *path, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  add_diag(p, code, path, 0, 0, fmt, ap);
  va_end(ap);
  return code;
}

int wfp__diag_at(wfp_program *p, int code, int line, int col, const char *fmt,
                 ...) {
  va_list ap;
  va_start(ap, fmt);
  add_diag(p, code, NULL, line, col, fmt, ap);
  va_end(ap);
  return code;
}

bool wfp__diag_full(const wfp_program *p) {
  return p->ndiags >= p->opts.max_diags;
}

/* A stage that ran out of memory may have left the tree incomplete (NULL
** where a node was due): no stage runs after it. */
static bool oom(const wfp_program *p) { return p->oom || p->arena.oom; }

static int load(wfp_program *p, const char *text, size_t len) {
  int rc = wfp__ir_parse(p, text, len);
  if (oom(p))
    return WFP_ENOMEM;
  if (rc == WFP_OK || rc == WFP_EPROGRAM) {
    /* IDs and the checker also run on a program with faults, to report as
    ** many as the bound allows; IDs need a complete parse */
    int rc2 = rc == WFP_OK ? wfp__ir_assign_ids(p) : WFP_OK;
    if (rc2 == WFP_ENOMEM || oom(p))
      return WFP_ENOMEM;
    int rc3 = wfp__ir_check(p);
    if (rc3 == WFP_ENOMEM || oom(p))
      return WFP_ENOMEM;
    if (rc || rc2 || rc3)
      return WFP_EPROGRAM;
    rc = wfp__ir_lift(p);
    if (rc || oom(p))
      return oom(p) ? WFP_ENOMEM : rc;
    rc = wfp__ir_emit(p);
  }
  return rc;
}

/* Out of memory anywhere in a load: one diagnostic says so, made without
** allocating (over the last one when there is no room). */
static void oom_diag(wfp_program *p) {
  for (size_t i = 0; i < p->ndiags; i++)
    if (p->diags[i].code == WFP_ENOMEM)
      return;
  size_t i = p->ndiags < p->diags_cap && p->ndiags < p->opts.max_diags ? p->ndiags++
                                                                      : p->ndiags - 1;
  wfp_diag *d = &p->diags[i];
  memset(d, 0, sizeof *d);
  d->code = WFP_ENOMEM;
  d->file = p->file ? p->file : "<memory>";
  d->path = "";
  d->msg = "out of memory";
}

static int finish(wfp_program *p, int rc) {
  /* a stage may return an internal error without a diagnostic */
  if (rc != WFP_OK && rc != WFP_ENOMEM && p->ndiags == 0) {
    wfp__diag(p, rc, "", "%s", wfp_strerror(rc));
  }
  /* internal errors are reported as such even among user faults */
  for (size_t i = 0; i < p->ndiags; i++)
    if (p->diags[i].code == WFP_EINTERNAL)
      rc = WFP_EINTERNAL;
  /* an allocation that failed anywhere makes the result incomplete, and
  ** the stages that follow it may have seen its effects as faults */
  if (oom(p))
    rc = WFP_ENOMEM;
  if (rc == WFP_ENOMEM)
    oom_diag(p);
  p->status = rc;
  return rc;
}

int wfp_program_load_mem(wfp_program *p, const char *name, const char *text,
                         size_t len) {
  if (!p || (!text && len) || p->status != WFP_EINVAL || p->file)
    return WFP_EINVAL;
  p->file = wfp__arena_strdup(&p->arena, name ? name : "<memory>");
  if (!p->file)
    return finish(p, WFP_ENOMEM);
  return finish(p, load(p, text ? text : "", len));
}

int wfp_program_load_file(wfp_program *p, const char *path) {
  if (!p || !path || p->status != WFP_EINVAL || p->file)
    return WFP_EINVAL;
  p->file = wfp__arena_strdup(&p->arena, path);
  if (!p->file)
    return finish(p, WFP_ENOMEM);
  char *text = NULL;
  size_t len = 0;
  int rc = wfp__read_file(path, &text, &len);
  if (rc == WFP_ENOMEM)
    return finish(p, rc);
  if (rc) {
    wfp__diag(p, WFP_EIO, "", "cannot read the file: %s", strerror(errno));
    p->status = WFP_EIO;
    return WFP_EIO;
  }
  rc = finish(p, load(p, text, len));
  free(text);
  return rc;
}

size_t wfp_program_diag_count(const wfp_program *p) { return p ? p->ndiags : 0; }

const wfp_diag *wfp_program_diag(const wfp_program *p, size_t i) {
  return p && i < p->ndiags ? &p->diags[i] : NULL;
}

size_t wfp_program_diag_dropped(const wfp_program *p) { return p ? p->dropped : 0; }

const char *wfp_program_hash(const wfp_program *p) {
  return p && p->status == WFP_OK ? p->hash : "";
}

int wfp_program_function_count(const wfp_program *p) {
  return p && p->status == WFP_OK ? p->nfuncs : 0;
}

const char *wfp_program_function_name(const wfp_program *p, int i) {
  return p && p->status == WFP_OK && i >= 0 && i < p->nfuncs ? p->funcs[i]->name
                                                             : NULL;
}

const char *wfp_program_function_id(const wfp_program *p, int i) {
  return p && p->status == WFP_OK && i >= 0 && i < p->nfuncs ? p->funcs[i]->id
                                                             : NULL;
}

const char *wfp_program_entry(const wfp_program *p) {
  return p ? p->entry_name : NULL;
}

int wfp_program_has_entry(const wfp_program *p) {
  return p && p->status == WFP_OK && p->entry != NULL;
}
