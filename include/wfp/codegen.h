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
*/
typedef struct wfp_cg_opts {
  size_t size;
  int opt_level;
} wfp_cg_opts;

/* What went wrong, when wfp_codegen fails. Caller-owned. */
typedef struct wfp_cg_error {
  int code;       /* the WFP_E* code returned */
  char path[256]; /* JSON path of the construct, or "" */
  char msg[512];
} wfp_cg_error;

/*
** Lowers the program p (loaded successfully) to a core module. On success
** *wasm is a buffer the caller frees with wfp_free and *len its size.
** Returns 0, or
**   WFP_EUNSUPPORTED  the program uses something this version cannot lower
**                     yet (err names the op and where)
**   WFP_EINTERNAL     the generated module failed Binaryen validation: a
**                     bug in wfp, never the user's fault
**   WFP_EINVAL, WFP_ENOMEM
** err may be NULL. Binaryen's optimize level is process-global: do not run
** two codegens at once on several threads.
*/
WFP_API int wfp_codegen(const wfp_program *p, const wfp_cg_opts *opts,
                        unsigned char **wasm, size_t *len, wfp_cg_error *err);

#ifdef __cplusplus
}
#endif
#endif /* WFP_CODEGEN_H */
