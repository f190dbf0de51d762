/*
** ir.h: the wfp front end. Reads a program (IR version 1, JSON), checks every
** rule of the IR, assigns stable content-hash IDs, lifts nested functions and
** lambdas, and writes the canonical IR. It does not generate code (codegen.h).
*/
#ifndef WFP_IR_H
#define WFP_IR_H

#include "wfp/wfp.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A loaded program. Opaque; create with wfp_program_new, free with wfp_program_free. */
typedef struct wfp_program wfp_program;

/*
** Options for loading. Set size to sizeof(wfp_ir_opts) so that later
** versions can append fields; zero every field you do not set.
**   entry      the function an invocation runs when its input names none.
**              NULL means "main", which a program need not have (a program
**              of resource methods has none); a name given here must exist.
**   max_diags  how many faults one load reports before it stops (0: 20).
*/
typedef struct wfp_ir_opts {
  size_t size;
  const char *entry;
  unsigned max_diags;
} wfp_ir_opts;

/*
** Creates an empty program. opts may be NULL (defaults); it is copied, but
** the entry string is borrowed and must outlive the program.
** Returns NULL only when out of memory. Free with wfp_program_free.
*/
WFP_API wfp_program *wfp_program_new(const wfp_ir_opts *opts);

/* Frees the program and everything it owns. NULL is a no-op. */
WFP_API void wfp_program_free(wfp_program *p);

/*
** Loads the program in the file at path: parse, check, assign IDs, lift.
** A program can be loaded once. Returns
**   0               the program is valid;
**   WFP_EIO         the file could not be read (one diagnostic, errno text);
**   WFP_ESYNTAX     the file is not JSON (one diagnostic with line and column);
**   WFP_EPROGRAM    the program breaks a rule of the IR (one diagnostic per
**                   fault, up to max_diags: structural faults first, then
**                   names and types);
**   WFP_ENOMEM, WFP_EINVAL (p NULL or already loaded).
** path is copied.
*/
WFP_API int wfp_program_load_file(wfp_program *p, const char *path);

/*
** As wfp_program_load_file, for a program held in memory. name is what
** diagnostics call the input (NULL: "<memory>"); text need not be
** NUL-terminated and is not kept.
*/
WFP_API int wfp_program_load_mem(wfp_program *p, const char *name,
                                 const char *text, size_t len);

/* Number of diagnostics of the last load, and diagnostic i (borrowed, valid
** until the program is freed; NULL when i is out of range). */
WFP_API size_t wfp_program_diag_count(const wfp_program *p);
WFP_API const wfp_diag *wfp_program_diag(const wfp_program *p, size_t i);
/* Faults found beyond max_diags and not reported. */
WFP_API size_t wfp_program_diag_dropped(const wfp_program *p);

/*
** The program hash: 16 lowercase hex digits, the first 64 bits of SHA-256
** of the canonical IR text (docs/ir.md). Borrowed; "" before a good load.
*/
WFP_API const char *wfp_program_hash(const wfp_program *p);

/*
** The canonical IR of a loaded program: IDs assigned, nested functions and
** lambdas lifted. pretty != 0 indents it for people; 0 gives the compact
** canonical text that the program hash is computed from. On success *out
** is a NUL-terminated string the caller frees with wfp_free, and *len (if
** not NULL) its length. Returns 0, WFP_EINVAL (not loaded), WFP_ENOMEM.
*/
WFP_API int wfp_program_ir_json(const wfp_program *p, int pretty, char **out,
                                size_t *len);

/* Functions of the lifted program, in order. Strings are borrowed. */
WFP_API int wfp_program_function_count(const wfp_program *p);
WFP_API const char *wfp_program_function_name(const wfp_program *p, int i);
WFP_API const char *wfp_program_function_id(const wfp_program *p, int i);
/* The entry function's name as chosen (borrowed), and whether it exists. */
WFP_API const char *wfp_program_entry(const wfp_program *p);
WFP_API int wfp_program_has_entry(const wfp_program *p);

#ifdef __cplusplus
}
#endif
#endif /* WFP_IR_H */
