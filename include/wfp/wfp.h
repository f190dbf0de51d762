/*
** wfp.h: what every wfp library shares: version, error codes, diagnostics.
** Included by the other public headers; it declares no stage's API itself.
** Not here: the IR (ir.h), codegen (codegen.h), the host (host.h), the .so ABI (abi.h).
*/
#ifndef WFP_WFP_H
#define WFP_WFP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define WFP_API __attribute__((visibility("default")))
#else
#define WFP_API
#endif

/* The version lives here and nowhere else (CMake reads it from this file). */
#define WFP_VERSION_MAJOR 0
#define WFP_VERSION_MINOR 1
#define WFP_VERSION_PATCH 0
#define WFP_VERSION_STRING "0.1.0"
#define WFP_VERSION_HEX                                                        \
  ((WFP_VERSION_MAJOR << 16) | (WFP_VERSION_MINOR << 8) | WFP_VERSION_PATCH)

/* Returns WFP_VERSION_HEX of the library actually linked. */
WFP_API unsigned wfp_version(void);
/* Returns WFP_VERSION_STRING of the library actually linked (static storage). */
WFP_API const char *wfp_version_string(void);

/*
** Every error a wfp library returns, defined once. Functions return int:
** 0 on success, a negative WFP_E* code on failure. The table generates both
** the enum and wfp_strerror().
*/
#define WFP_ERR_MAP(XX)                                                        \
  XX(NOMEM, "out of memory")                                                   \
  XX(INVAL, "invalid argument")                                                \
  XX(IO, "file could not be read or written")                                  \
  XX(SYNTAX, "malformed JSON")                                                 \
  XX(PROGRAM, "the program was refused")                                       \
  XX(UNSUPPORTED, "not supported by this version of wfp")                      \
  XX(TOOLCHAIN, "an external tool failed")                                     \
  XX(NOTMODULE, "not a wfp module")                                            \
  XX(ABI, "module ABI version mismatch")                                       \
  XX(FOREIGN, "belongs to another program")                                    \
  XX(CORRUPT, "truncated or tampered data")                                    \
  XX(TRAP, "the invocation trapped")                                           \
  XX(LIMIT, "a limit was reached")                                             \
  XX(USAGE, "usage error")                                                     \
  XX(INTERNAL, "internal error (a wfp bug)")                                  \
  XX(CANCELED, "cancelled")

typedef enum wfp_errno {
  WFP_OK = 0,
#define WFP__ERR_ENUM(name, text) WFP__ERRNUM_##name,
  WFP__ERR_FIRST = 0,
  WFP_ERR_MAP(WFP__ERR_ENUM) WFP__ERR_COUNT
#undef WFP__ERR_ENUM
} wfp_errno;

/* The public codes are the negated positions in WFP_ERR_MAP (WFP_ENOMEM == -1). */
#define WFP_ENOMEM (-WFP__ERRNUM_NOMEM)
#define WFP_EINVAL (-WFP__ERRNUM_INVAL)
#define WFP_EIO (-WFP__ERRNUM_IO)
#define WFP_ESYNTAX (-WFP__ERRNUM_SYNTAX)
#define WFP_EPROGRAM (-WFP__ERRNUM_PROGRAM)
#define WFP_EUNSUPPORTED (-WFP__ERRNUM_UNSUPPORTED)
#define WFP_ETOOLCHAIN (-WFP__ERRNUM_TOOLCHAIN)
#define WFP_ENOTMODULE (-WFP__ERRNUM_NOTMODULE)
#define WFP_EABI (-WFP__ERRNUM_ABI)
#define WFP_EFOREIGN (-WFP__ERRNUM_FOREIGN)
#define WFP_ECORRUPT (-WFP__ERRNUM_CORRUPT)
#define WFP_ETRAP (-WFP__ERRNUM_TRAP)
#define WFP_ELIMIT (-WFP__ERRNUM_LIMIT)
#define WFP_EUSAGE (-WFP__ERRNUM_USAGE)
#define WFP_EINTERNAL (-WFP__ERRNUM_INTERNAL)
#define WFP_ECANCELED (-WFP__ERRNUM_CANCELED)

/* Text for a WFP_E* code (static storage; "unknown error" for anything else). */
WFP_API const char *wfp_strerror(int code);
/* The code's name without prefix, e.g. "EPROGRAM" (static storage). */
WFP_API const char *wfp_err_name(int code);

/*
** The process exit code the contract gives an error: 1 refused program or
** trap, 2 usage, 3 environment (I/O, toolchain, foreign or non-wfp files).
*/
WFP_API int wfp_exit_code(int code);

/*
** One diagnostic: where and what. Strings are borrowed from the object that
** reported the diagnostic and live as long as it does.
**   file  the input file name as given ("<memory>" for in-memory input)
**   path  the JSON path of the fault ("$.functions[2].body[0]"), or ""
**   line, col  1-based source position for syntax errors, else 0
*/
typedef struct wfp_diag {
  int code;
  const char *file;
  const char *path;
  int line;
  int col;
  const char *msg;
} wfp_diag;

/*
** Writes the diagnostic as one line without newline into buf (always
** NUL-terminated when n > 0): "FILE:LINE:COL: error: MSG" for syntax
** errors, "FILE: PATH: error: MSG" otherwise. Returns the length it would
** have written, like snprintf.
*/
WFP_API int wfp_diag_format(const wfp_diag *d, char *buf, size_t n);

/* Frees memory that a wfp function documented as "free with wfp_free". */
WFP_API void wfp_free(void *p);

#ifdef __cplusplus
}
#endif
#endif /* WFP_WFP_H */
