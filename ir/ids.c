/*
** ids.c: stable content-hash IDs. A function's ID is the first 64 bits of
** SHA-256 over the canonical JSON of its content (docs/ir.md, "IDs"). It
** runs before the checker, so calls may name a function by its ID.
*/
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ir_ast.h"

static int hash_func(wfp_program *p, wfp_func *f) {
  cJSON *j = wfp__func_to_json(p, f, false);
  if (!j)
    return WFP_ENOMEM;
  size_t len = 0;
  char *text = wfp__json_canonical(j, &len);
  cJSON_Delete(j);
  if (!text)
    return WFP_ENOMEM;
  uint8_t h[32];
  wfp__sha256_buf(text, len, h);
  free(text);
  wfp__hex(h, 8, f->id);
  return WFP_OK;
}

int wfp__ir_assign_ids(wfp_program *p) {
  /* named functions first: a lambda's ID includes its enclosing function's */
  for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i < p->nfuncs; i++) {
      wfp_func *f = p->funcs[i];
      if (f->id_given || f->is_lambda != (pass == 1))
        continue;
      int rc = hash_func(p, f);
      if (rc)
        return rc;
    }
  int rc = WFP_OK;
  for (int i = 0; i < p->nfuncs; i++)
    for (int j = 0; j < i; j++) {
      wfp_func *f = p->funcs[i], *g = p->funcs[j];
      if (strcmp(f->id, g->id) != 0)
        continue;
      const char *gn = g->is_lambda ? "a lambda" : g->name;
      if (f->id_given)
        wfp__diag(p, WFP_EPROGRAM,
                  wfp__arena_printf(&p->arena, "%s.id", f->path),
                  "duplicate id '%s' (also the id of %s%s%s)", f->id,
                  g->is_lambda ? "" : "'", gn, g->is_lambda ? "" : "'");
      else
        wfp__diag(p, WFP_EPROGRAM, f->path,
                  "the id assigned to this function, '%s', is already taken "
                  "by %s%s%s",
                  f->id, g->is_lambda ? "" : "'", gn, g->is_lambda ? "" : "'");
      rc = WFP_EPROGRAM;
      break;
    }
  /* an id that is also another function's name would make calls ambiguous */
  for (int i = 0; i < p->nfuncs; i++) {
    wfp_func *f = p->funcs[i];
    if (!f->id_given)
      continue;
    for (int j = 0; j < p->nfuncs; j++) {
      wfp_func *g = p->funcs[j];
      if (g != f && !g->is_lambda && g->name && strcmp(g->name, f->id) == 0) {
        wfp__diag(p, WFP_EPROGRAM,
                  wfp__arena_printf(&p->arena, "%s.id", f->path),
                  "id '%s' is also the name of function '%s'", f->id, g->name);
        rc = WFP_EPROGRAM;
      }
    }
  }
  return rc;
}
