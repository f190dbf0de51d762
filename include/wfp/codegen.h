/*
** codegen.h: lowering a checked, lifted program (ir.h) to an optimized core
** WebAssembly module with the Binaryen C API. The module is the core of a
** component of wit/function.wit (canonical ABI). No C, no files, no .so here.
*/
#ifndef WFP_CODEGEN_H
#define WFP_CODEGEN_H

#include "wfp/ir.h"
#include "wfp/wfp.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
** Options. Set size to sizeof(wfp_cg_opts); zero what you do not set.
**   opt_level  Binaryen optimization level 0..3; -1 means 2
**   first_own  when not NULL, receives after a success the index of the
**              module's first function that is not the guest runtime's
**              (the runtime's come first; wasm2c names the function of
**              index N w2c_fN unless exported), or -1 when there is none
*/
typedef struct wfp_cg_opts {
  size_t size;
  int opt_level;
  long *first_own;
} wfp_cg_opts;

/*
** Lowers the program p (loaded successfully) to a core module. On success
** *wasm is a buffer the caller frees with wfp_free and *len its size.
** Returns 0, or
**   WFP_EUNSUPPORTED  the program uses something this version cannot lower
**                     yet
**   WFP_ELIMIT        the program's constant data does not fit a module's
**                     memory (256 MiB)
**   WFP_EINTERNAL     the generated module failed Binaryen validation: a
**                     bug in wfp, never the user's fault
**   WFP_EINVAL, WFP_ENOMEM
** When diag is not NULL, *diag is NULL after a success and, after a
** failure, one diagnostic saying why (its path the JSON path of the
** construct, or ""), in one block with its strings that the caller frees
** with wfp_free (NULL after WFP_EINVAL, which has no program to speak of,
** or when even that block could not be allocated). Binaryen's
** optimize level is process-global: do not run two codegens at once on
** several threads.
*/
WFP_API int wfp_codegen(const wfp_program *p, const wfp_cg_opts *opts,
                        unsigned char **wasm, size_t *len, wfp_diag **diag);

#ifdef __cplusplus
}
#endif
#endif /* WFP_CODEGEN_H */
