/*
** lift.c: lambda lifting. The checker already found every function's
** captures and what each reference site passes for them; lifting names the
** lambdas, gives captured parameters names that clash with nothing, and
** fixes the order of the lifted program. Nesting stays as metadata.
*/
#include <stdint.h>
#include <string.h>

#include "ir_ast.h"

/* Counts of names in a map (the count is the value, as an integer). */
static size_t count_of(const wfp__map *m, const char *name) {
  return (size_t)(uintptr_t)wfp__map_get(m, name);
}

static int count_add(wfp__map *m, const char *name, int d) {
  size_t n = count_of(m, name) + (size_t)d;
  return wfp__map_put(m, name, (void *)(uintptr_t)n, true, NULL);
}

/* A name for a variable of a function whose names are counted in names:
** base$1 (or $2, ...), the first one no variable has; the counts follow. */
static int fresh_name(wfp_program *p, wfp__map *names, const char *base, const char **out) {
  for (int k = 1;; k++) {
    char *n = wfp__ir_printf(p, "%s$%d", base, k);
    if (!n)
      return WFP_ENOMEM;
    if (count_of(names, n) == 0) {
      int rc = count_add(names, base, -1);
      if (!rc)
        rc = count_add(names, n, 1);
      if (!rc)
        *out = n;
      return rc;
    }
  }
}

/* Renames the captured parameters of f that a variable of f's own shadows:
** name$1 (or $2, ...), a name no other variable of f has. */
static int rename_captures(wfp_program *p, wfp_func *f) {
  wfp__map names;
  wfp__map_init(&names, false);
  int rc = WFP_OK;
  for (int i = 0; i < f->nlocals && !rc; i++)
    rc = count_add(&names, f->locals[i]->name, 1);
  for (int c = 0; c < f->ncaps && !rc; c++) {
    wfp_var *v = f->caps[c];
    /* v itself is one of the locals with its name */
    if (count_of(&names, v->name) <= 1)
      continue;
    rc = fresh_name(p, &names, v->name, &v->name);
  }
  wfp__map_free(&names);
  return rc;
}

/* A variable that a nested function reads is passed at each site that
** names the nested function (lifted IR spells it as a var reference). If a
** let of the same function has that name too, a site inside the let's scope
** would read the let instead: so such lets get a lifted name of their own,
** name$1 (or $2, ...). Parameters keep theirs (callers pass arguments by
** parameter name), and the source form keeps every name as written. */
static int rename_shadowing_lets(wfp_program *p, wfp_func *f) {
  wfp__map names, passed;
  wfp__map_init(&names, false);
  wfp__map_init(&passed, false);
  int rc = WFP_OK;
  for (int i = 0; i < f->nlocals && !rc; i++) {
    const wfp_var *v = f->locals[i];
    rc = count_add(&names, v->name, 1);
    if (!rc && v->referenced_by_nested)
      rc = count_add(&passed, v->name, 1);
  }
  for (int i = 0; i < f->nlocals && !rc; i++) {
    wfp_var *v = f->locals[i];
    if (v->is_param || v->is_capture || count_of(&names, v->name) <= 1 ||
        count_of(&passed, v->name) == 0)
      continue;
    rc = fresh_name(p, &names, v->name, &v->lifted_name);
  }
  wfp__map_free(&passed);
  wfp__map_free(&names);
  return rc;
}

int wfp__ir_lift(wfp_program *p) {
  /* the names taken, lambdas' included as they get theirs */
  wfp__map taken;
  wfp__map_init(&taken, false);
  int rc = WFP_OK;
  for (int i = 0; i < p->nfuncs && !rc; i++)
    if (p->funcs[i]->name)
      rc = wfp__map_put(&taken, p->funcs[i]->name, p->funcs[i], false, NULL);
  /* lambdas: "<enclosing named function>$lambda<rank>" */
  for (int i = 0; i < p->nfuncs && !rc; i++) {
    wfp_func *f = p->funcs[i];
    if (!f->is_lambda)
      continue;
    const wfp_func *a = f->parent;
    while (a && a->is_lambda)
      a = a->parent;
    const char *base = a && a->name ? a->name : "lambda";
    char *name = NULL;
    for (int k = 0;; k++) {
      name = k ? wfp__ir_printf(p, "%s$lambda%d$%d", base, f->lambda_ordinal, k)
               : wfp__ir_printf(p, "%s$lambda%d", base, f->lambda_ordinal);
      if (!name) {
        rc = WFP_ENOMEM;
        break;
      }
      if (!wfp__map_get(&taken, name))
        break;
    }
    if (!rc) {
      f->name = name;
      rc = wfp__map_put(&taken, name, f, false, NULL);
    }
  }
  wfp__map_free(&taken);
  /* captured parameters keep their variable's name unless the function has
  ** a variable of that name of its own (it shadowed the outer one) */
  for (int i = 0; i < p->nfuncs && !rc; i++)
    if (p->funcs[i]->ncaps)
      rc = rename_captures(p, p->funcs[i]);
  for (int i = 0; i < p->nfuncs && !rc; i++)
    rc = rename_shadowing_lets(p, p->funcs[i]);
  if (rc)
    return rc;
  /* p->funcs already is the lifted order: each function, then the lambdas
  ** it contains in document order */
  for (int i = 0; i < p->nfuncs; i++)
    p->funcs[i]->index = i;
  return WFP_OK;
}
