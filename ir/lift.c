/*
** lift.c: lambda lifting. The checker already found every function's
** captures and what each reference site passes for them; lifting names the
** lambdas, gives captured parameters names that clash with nothing, and
** fixes the order of the lifted program. Nesting stays as metadata.
*/
#include <string.h>

#include "ir_ast.h"

static bool func_name_taken(wfp_program *p, const char *name) {
  for (int i = 0; i < p->nfuncs; i++)
    if (p->funcs[i]->name && strcmp(p->funcs[i]->name, name) == 0)
      return true;
  return false;
}

static bool local_name_taken(wfp_func *f, const wfp_var *self, const char *name) {
  for (int i = 0; i < f->nlocals; i++)
    if (f->locals[i] != self && strcmp(f->locals[i]->name, name) == 0)
      return true;
  return false;
}

int wfp__ir_lift(wfp_program *p) {
  /* lambdas: "<enclosing named function>$lambda<rank>" */
  for (int i = 0; i < p->nfuncs; i++) {
    wfp_func *f = p->funcs[i];
    if (!f->is_lambda)
      continue;
    const wfp_func *a = f->parent;
    while (a && a->is_lambda)
      a = a->parent;
    const char *base = a && a->name ? a->name : "lambda";
    char *name = NULL;
    for (int k = 0; k < 1000000; k++) {
      name = k ? wfp__arena_printf(&p->arena, "%s$lambda%d$%d", base,
                                   f->lambda_ordinal, k)
               : wfp__arena_printf(&p->arena, "%s$lambda%d", base,
                                   f->lambda_ordinal);
      if (!name)
        return WFP_ENOMEM;
      if (!func_name_taken(p, name))
        break;
    }
    f->name = name;
  }
  /* captured parameters keep their variable's name unless the function has
  ** a variable of that name of its own (it shadowed the outer one) */
  for (int i = 0; i < p->nfuncs; i++) {
    wfp_func *f = p->funcs[i];
    for (int c = 0; c < f->ncaps; c++) {
      wfp_var *v = f->caps[c];
      if (!local_name_taken(f, v, v->name))
        continue;
      const char *base = v->name;
      for (int k = 1;; k++) {
        char *n = wfp__arena_printf(&p->arena, "%s$%d", base, k);
        if (!n)
          return WFP_ENOMEM;
        if (!local_name_taken(f, v, n)) {
          v->name = n;
          break;
        }
      }
    }
  }
  /* p->funcs already is the lifted order: each function, then the lambdas
  ** it contains in document order */
  for (int i = 0; i < p->nfuncs; i++)
    p->funcs[i]->index = i;
  return WFP_OK;
}
