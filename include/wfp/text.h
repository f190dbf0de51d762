/*
** text.h: wfp's text syntax (.wfp files, docs/language.md). Parses text into
** IR version 1 with a map from JSON paths back to lines and columns, prints
** a loaded program as text or as JavaScript, and formats text files.
** It does not check programs (ir.h does) nor compile them (aot.h).
*/
#ifndef WFP_TEXT_H
#define WFP_TEXT_H

#include "wfp/ir.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A parsed text program. Opaque; wfp_text_new / wfp_text_free. */
typedef struct wfp_text wfp_text;

/* Creates an empty parser. NULL only when out of memory. max_diags as in
** wfp_ir_opts (0: 20). */
WFP_API wfp_text *wfp_text_new(unsigned max_diags);
/* Frees the parser and everything it owns. NULL is a no-op. */
WFP_API void wfp_text_free(wfp_text *t);

/*
** Parses a program written in text syntax. name is what diagnostics call
** the input (NULL: "<memory>"; copied); text need not be NUL-terminated and
** is copied. One parse per wfp_text. Returns
**   0             the text is well formed: wfp_text_ir gives its IR;
**   WFP_ESYNTAX   one diagnostic per fault (FILE:LINE:COL), up to max_diags;
**   WFP_EIO       (wfp_text_parse_file) the file could not be read;
**   WFP_ENOMEM, WFP_EINVAL.
** Well formed is not valid: the IR still has to pass the checker
** (wfp_program_load_mem), whose faults wfp_text_locate places in the text.
*/
WFP_API int wfp_text_parse(wfp_text *t, const char *name, const char *text,
                           size_t len);
WFP_API int wfp_text_parse_file(wfp_text *t, const char *path);

/* Diagnostics of the parse (borrowed; valid until wfp_text_free). */
WFP_API size_t wfp_text_diag_count(const wfp_text *t);
WFP_API const wfp_diag *wfp_text_diag(const wfp_text *t, size_t i);
WFP_API size_t wfp_text_diag_dropped(const wfp_text *t);

/* The IR of a well-formed parse: compact JSON, NUL-terminated, borrowed
** (valid until wfp_text_free); NULL before a successful parse. */
WFP_API const char *wfp_text_ir(const wfp_text *t, size_t *len);

/*
** The text position of a JSON path of the IR ("$.functions[0].body[2].expr.b"):
** the place the node was written, or, for a path the parse did not make,
** that of its nearest enclosing node. Returns 1 and sets *line and *col
** (1-based, columns in characters), or 0 when t has no parse.
*/
WFP_API int wfp_text_locate(const wfp_text *t, const char *path, int *line,
                            int *col);

/*
** Copies a diagnostic of the checker (or of wfp_aot) on this text's IR into
** *out with its line and column set from its JSON path, so that
** wfp_diag_format writes "FILE:LINE:COL: error: MSG", and the JSON paths
** the message names ("first at $.functions[0]") become lines ("first at
** line 1"). Strings are borrowed from in and from t (valid until
** wfp_text_free). A diagnostic without a path is copied unchanged.
*/
WFP_API void wfp_text_map_diag(const wfp_text *t, const wfp_diag *in,
                               wfp_diag *out);

/*
** The parsed text in canonical layout, comments and single blank lines
** kept: what wfp-aot --fmt writes. *out is NUL-terminated, freed by the
** caller with wfp_free. Returns 0, WFP_EINVAL (no successful parse), WFP_ENOMEM.
*/
WFP_API int wfp_text_format(const wfp_text *t, char **out, size_t *len);

/*
** wfp-aot --fmt: parses the file at path into t (a new wfp_text) and, when
** its canonical layout differs, writes that back to path atomically.
** *changed (if not NULL) tells whether it did. Returns 0, WFP_ESYNTAX
** (nothing written; diagnostics in t), WFP_EIO (unreadable, or not
** written: errno set), WFP_ENOMEM, WFP_EINVAL.
*/
WFP_API int wfp_text_format_file(wfp_text *t, const char *path, int *changed);

/*
** A loaded program (wfp_program_load_*) in text syntax, as written (not
** lifted): compiled back, it gives the same canonical IR and the same IDs.
** *out is freed with wfp_free. Returns 0, WFP_EINVAL (not loaded), WFP_ENOMEM.
*/
WFP_API int wfp_program_to_text(const wfp_program *p, char **out, size_t *len);

/*
** A loaded program as an ES module of JavaScript: the lifted program, each
** function a generator that yields its effects, with the value semantics of
** wfp (64-bit integers, JSON as text) in the module. The host module
** wfp-run.mjs (installed with wfp) runs it in Node. source names the
** program in the module's header (NULL: none). *out is freed with wfp_free.
** Returns 0, WFP_EINVAL (not loaded), WFP_ENOMEM.
*/
WFP_API int wfp_program_to_js(const wfp_program *p, const char *source,
                              char **out, size_t *len);

/*
** wfp_program_to_text / wfp_program_to_js written to the file at path,
** atomically. Returns 0, WFP_EIO (errno set), WFP_ENOMEM, WFP_EINVAL.
*/
WFP_API int wfp_program_write_text(const wfp_program *p, const char *path);
WFP_API int wfp_program_write_js(const wfp_program *p, const char *source,
                                 const char *path);

#ifdef __cplusplus
}
#endif
#endif /* WFP_TEXT_H */
