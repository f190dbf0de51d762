/*
** aot.h: ahead-of-time compilation of a wfp program to a native .so:
** front end (ir.h), codegen to core Wasm (codegen.h), wasm2c, and the system
** C compiler. This is what wfp-aot runs; it does not load or run modules.
*/
#ifndef WFP_AOT_H
#define WFP_AOT_H

#include "wfp/wfp.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
** Options. Set size to sizeof(wfp_aot_opts); zero what you do not set.
** Strings are borrowed for the life of the wfp_aot.
**   output     the .so to write; NULL builds no .so (check, emit only)
**   entry      as wfp_ir_opts.entry
**   opt_level  Binaryen and C optimization level 0..3; -1 means 2
**   cc         the C compiler; NULL means $CC, or "clang" when it is on
**              PATH, else "cc"
**   emit_ir    write the canonical IR (indented JSON) here
**   emit_wasm  write the optimized core module here
**   emit_c     write the wasm2c output and the descriptor glue in this directory
**   emit_wit   write the program's WIT world here
**   max_diags  as wfp_ir_opts.max_diags
**   cache_dir  the directory of the object cache (the C's translation
**              units compiled once, kept by content); NULL means
**              $WFP_CACHE_DIR, else $XDG_CACHE_HOME/wfp, else
**              $HOME/.cache/wfp; "" means no cache
** Every output is written atomically, and only when the whole compilation
** succeeded: a failed compilation writes nothing.
*/
typedef struct wfp_aot_opts {
  size_t size;
  const char *output;
  const char *entry;
  int opt_level;
  const char *cc;
  const char *emit_ir;
  const char *emit_wasm;
  const char *emit_c;
  const char *emit_wit;
  unsigned max_diags;
  const char *cache_dir;
} wfp_aot_opts;

/* The stages a compilation times (wfp_aot_stage_seconds). */
typedef enum wfp_aot_stage {
  WFP_AOT_FRONTEND = 0, /* parse, check, IDs, lift */
  WFP_AOT_CODEGEN,      /* Binaryen: build, validate, optimize, write */
  WFP_AOT_WASM2C,
  WFP_AOT_CC,
  WFP_AOT_STAGE_COUNT
} wfp_aot_stage;

/* One compilation. Opaque; wfp_aot_new / wfp_aot_free. */
typedef struct wfp_aot wfp_aot;

/* opts is copied (its strings are borrowed). NULL only when out of memory. */
WFP_API wfp_aot *wfp_aot_new(const wfp_aot_opts *opts);
/* Frees everything the compilation owns; its outputs stay. NULL is a no-op. */
WFP_API void wfp_aot_free(wfp_aot *a);

/*
** Compiles the program in the file at path (or held in memory: name is
** what messages call it, text need not be NUL-terminated). One compilation
** per wfp_aot. Returns 0, or
**   WFP_EPROGRAM / WFP_ESYNTAX   the program was refused (diagnostics say why)
**   WFP_EIO                      an input or output file failed
**   WFP_ETOOLCHAIN               wasm2c or the C compiler failed
**   WFP_EINTERNAL                a wfp bug (invalid Wasm was generated)
**   WFP_ECANCELED                wfp_aot_cancel was called
**   WFP_ENOMEM, WFP_EINVAL
** Every failure leaves at least one diagnostic. The external tools run in
** a private temporary directory (also their TMPDIR), removed before the
** call returns, whatever the outcome.
*/
WFP_API int wfp_aot_compile_file(wfp_aot *a, const char *path);
WFP_API int wfp_aot_compile_mem(wfp_aot *a, const char *name, const char *text,
                                size_t len);

/*
** Cancels the compilation: async-signal-safe, for a SIGINT or SIGTERM
** handler (or another thread). The tools the compilation runs (wasm2c, the
** C compiler, and what they run: each runs in a process group of its own)
** are killed at once; the compile call then returns WFP_ECANCELED, having
** removed its temporary directory and written nothing. Codegen, which runs
** in the process, is not interrupted: the call returns when it ends. Once
** the outputs are being written, they are all written (the call returns
** 0). a may be NULL.
*/
WFP_API void wfp_aot_cancel(wfp_aot *a);

/* Diagnostics of the compilation (borrowed; valid until wfp_aot_free). */
WFP_API size_t wfp_aot_diag_count(const wfp_aot *a);
WFP_API const wfp_diag *wfp_aot_diag(const wfp_aot *a, size_t i);
/* Faults found beyond max_diags and not reported. */
WFP_API size_t wfp_aot_diag_dropped(const wfp_aot *a);

/* Wall-clock seconds a stage took (0 when it did not run). */
WFP_API double wfp_aot_stage_seconds(const wfp_aot *a, wfp_aot_stage stage);
/* The translation units of the module's C, and how many of their objects
** came from the cache (both 0 when no C was compiled). Either may be NULL. */
WFP_API void wfp_aot_cache_stats(const wfp_aot *a, int *units, int *reused);
/* The program hash of a compiled program (borrowed; "" before success). */
WFP_API const char *wfp_aot_program_hash(const wfp_aot *a);

#ifdef __cplusplus
}
#endif
#endif /* WFP_AOT_H */
