/*
** program.c: the public face of the front end (wfp/ir.h): the program
** handle, its diagnostics, and the load pipeline parse -> IDs -> check ->
** lift -> emit. Each stage is in its own file.
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir_ast.h"

#define DEFAULT_MAX_DIAGS 20
/* Diagnostic slots allocated with the program, so that a load that runs
** out of memory can still say so. */
#define FIRST_DIAGS 8

wfp_program *wfp_program_new(const wfp_ir_opts *opts) {
  wfp_program *p = calloc(1, sizeof *p);
  if (!p)
    return NULL;
  p->diags = calloc(FIRST_DIAGS, sizeof *p->diags);
  if (!p->diags) {
    free(p);
    return NULL;
  }
  p->diags_cap = FIRST_DIAGS;
  p->oom_type.kind = WFP_T_ERROR;
  wfp__arena_init(&p->arena);
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
  free(p->funcs);
  free(p->resources);
  free(p->diags);
  free(p->tvars);
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
      /* the report would be incomplete: the load fails as out of memory */
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

/* ---- arena allocation with the failure recorded ---- */

void *wfp__ir_alloc(wfp_program *p, size_t n) {
  void *r = wfp__arena_alloc(&p->arena, n);
  if (!r)
    p->oom = true;
  return r;
}

char *wfp__ir_strndup(wfp_program *p, const char *s, size_t n) {
  char *r = wfp__arena_strndup(&p->arena, s, n);
  if (!r)
    p->oom = true;
  return r;
}

char *wfp__ir_strdup(wfp_program *p, const char *s) {
  return wfp__ir_strndup(p, s, strlen(s));
}

static char *vprintf_arena(wfp_program *p, const char *fmt, va_list ap) {
  va_list aq;
  va_copy(aq, ap);
  int n = vsnprintf(NULL, 0, fmt, aq);
  va_end(aq);
  char *r = n < 0 ? NULL : wfp__ir_alloc(p, (size_t)n + 1);
  if (r)
    vsnprintf(r, (size_t)n + 1, fmt, ap);
  else
    p->oom = true;
  return r;
}

char *wfp__ir_printf(wfp_program *p, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *r = vprintf_arena(p, fmt, ap);
  va_end(ap);
  return r;
}

const char *wfp__ir_text(wfp_program *p, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *r = vprintf_arena(p, fmt, ap);
  va_end(ap);
  return r ? r : "";
}

/* A stage's answer, out of memory first: a stage that ran out goes on
** safely to its end but its result is not to be trusted. */
static int stage(wfp_program *p, int rc) {
  return p->oom ? WFP_ENOMEM : rc;
}

static int load(wfp_program *p, const char *text, size_t len) {
  int rc = stage(p, wfp__ir_parse(p, text, len));
  if (rc == WFP_OK || rc == WFP_EPROGRAM) {
    /* IDs and the checker also run on a program with faults, to report as
    ** many as the bound allows; IDs need a complete parse */
    int rc2 = rc == WFP_OK ? stage(p, wfp__ir_assign_ids(p)) : WFP_OK;
    if (rc2 == WFP_ENOMEM)
      return rc2;
    int rc3 = stage(p, wfp__ir_check(p));
    if (rc3 == WFP_ENOMEM)
      return rc3;
    if (rc || rc2 || rc3)
      return WFP_EPROGRAM;
    rc = stage(p, wfp__ir_lift(p));
    if (rc)
      return rc;
    rc = stage(p, wfp__ir_emit(p));
  }
  return rc;
}

static int finish(wfp_program *p, int rc) {
  /* a stage may return ENOMEM or an internal error without a diagnostic;
  ** out of memory is said even when the diagnostics are full (it takes the
  ** last slot: the slots allocated with the program are always there) */
  bool said = false;
  for (size_t i = 0; i < p->ndiags; i++)
    if (p->diags[i].code == rc)
      said = true;
  if (rc != WFP_OK && (p->ndiags == 0 || (rc == WFP_ENOMEM && !said))) {
    if (p->ndiags == p->diags_cap || p->ndiags >= p->opts.max_diags)
      p->ndiags--;
    wfp_diag *d = &p->diags[p->ndiags++];
    memset(d, 0, sizeof *d);
    d->code = rc;
    d->file = p->file ? p->file : "<memory>";
    d->path = "";
    d->msg = wfp_strerror(rc);
  }
  /* internal errors are reported as such even among user faults */
  for (size_t i = 0; rc != WFP_ENOMEM && i < p->ndiags; i++)
    if (p->diags[i].code == WFP_EINTERNAL)
      rc = WFP_EINTERNAL;
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
  if (rc == WFP_ENOMEM || (rc && errno == ENOMEM))
    return finish(p, WFP_ENOMEM);
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
