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
  /* duplicates, found through maps: ids, then names against given ids */
  int rc = WFP_OK;
  wfp__map ids, names;
  wfp__map_init(&ids, false);
  wfp__map_init(&names, false);
  for (int i = 0; i < p->nfuncs; i++) {
    wfp_func *f = p->funcs[i];
    void *old = NULL;
    if (wfp__map_put(&ids, f->id, f, false, &old)) {
      rc = WFP_ENOMEM;
      goto out;
    }
    wfp_func *g = old;
    if (!g)
      continue;
    const char *gn = g->is_lambda ? "a lambda" : g->name;
    if (f->id_given)
      wfp__diag(p, WFP_EPROGRAM, wfp__ir_text(p, "%s.id", f->path),
                "duplicate id '%s' (also the id of %s%s%s)", f->id,
                g->is_lambda ? "" : "'", gn, g->is_lambda ? "" : "'");
    else
      wfp__diag(p, WFP_EPROGRAM, f->path,
                "the id assigned to this function, '%s', is already taken "
                "by %s%s%s",
                f->id, g->is_lambda ? "" : "'", gn, g->is_lambda ? "" : "'");
    rc = WFP_EPROGRAM;
  }
  /* an id that is also another function's name would make calls ambiguous */
  for (int i = 0; i < p->nfuncs; i++) {
    wfp_func *g = p->funcs[i];
    if (!g->is_lambda && g->name && wfp__map_put(&names, g->name, g, false, NULL)) {
      rc = WFP_ENOMEM;
      goto out;
    }
  }
  for (int i = 0; i < p->nfuncs; i++) {
    wfp_func *f = p->funcs[i];
    if (!f->id_given)
      continue;
    wfp_func *g = wfp__map_get(&names, f->id);
    if (g && g != f) {
      wfp__diag(p, WFP_EPROGRAM, wfp__ir_text(p, "%s.id", f->path),
                "id '%s' is also the name of function '%s'", f->id, g->name);
      rc = WFP_EPROGRAM;
    }
  }
out:
  wfp__map_free(&ids);
  wfp__map_free(&names);
  return rc;
}
