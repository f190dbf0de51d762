/*
** util.h: internal helpers shared by the wfp libraries (never installed).
** Arena, growable byte buffer, JSON text helpers, SHA-256, UTF-8, file I/O.
** Nothing here knows about the IR, codegen or the host.
*/
#ifndef WFP_COMMON_UTIL_H
#define WFP_COMMON_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wfp/wfp.h"

#if defined(__GNUC__)
#define WFP__PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define WFP__PRINTF(a, b)
#endif

/* Internal invariant: a bug in wfp if it fails. Untrusted input never reaches one. */
#define WFP_ASSERT(c)                                                          \
  do {                                                                         \
    if (!(c))                                                                  \
      wfp__assert_fail(#c, __FILE__, __LINE__);                                \
  } while (0)
void wfp__assert_fail(const char *what, const char *file, int line);

/* ---- arena: many small allocations freed at once ---- */

typedef struct wfp__arena_chunk wfp__arena_chunk;
typedef struct wfp__arena {
  wfp__arena_chunk *head;
  size_t used; /* bytes used in head */
  size_t cap;  /* capacity of head */
  bool oom;    /* sticky: an allocation failed (its owner reports WFP_ENOMEM) */
} wfp__arena;

void wfp__arena_init(wfp__arena *a);
void wfp__arena_free(wfp__arena *a);
/* Zeroed, 16-byte aligned; NULL only on out-of-memory. */
void *wfp__arena_alloc(wfp__arena *a, size_t n);
char *wfp__arena_strndup(wfp__arena *a, const char *s, size_t n);
char *wfp__arena_strdup(wfp__arena *a, const char *s);
char *wfp__arena_printf(wfp__arena *a, const char *fmt, ...) WFP__PRINTF(2, 3);

/* ---- buf: a growable byte string, always NUL-terminated when non-empty ---- */

typedef struct wfp__buf {
  char *data;
  size_t len;
  size_t cap;
  bool oom; /* sticky: an append failed; data holds what fit */
} wfp__buf;

void wfp__buf_init(wfp__buf *b);
void wfp__buf_free(wfp__buf *b);
bool wfp__buf_reserve(wfp__buf *b, size_t extra);
void wfp__buf_add(wfp__buf *b, const void *p, size_t n);
void wfp__buf_adds(wfp__buf *b, const char *s);
void wfp__buf_addc(wfp__buf *b, char c);
void wfp__buf_printf(wfp__buf *b, const char *fmt, ...) WFP__PRINTF(2, 3);
void wfp__buf_add_i64(wfp__buf *b, int64_t v);
/* Appends s as a JSON string literal (quotes and escapes). */
void wfp__buf_add_jstr(wfp__buf *b, const char *s, size_t n);
/* Takes the data out (caller frees with free); the buffer is reset. */
char *wfp__buf_take(wfp__buf *b, size_t *len);

/* Formats v in decimal into out (at least 21 bytes); returns the length. */
size_t wfp__fmt_i64(char *out, int64_t v);
/* Parses a whole decimal integer (optional '-', no '+', no spaces, no
** leading zeros except "0") into *v; false on syntax or overflow. */
bool wfp__parse_i64(const char *s, size_t n, int64_t *v);

/* Command lines: whether argv[*i] is one of the options in names (NULL
** ended, each taking a value as "--name=V" or "--name V"). Returns the
** name matched, or NULL; *value is the value, or NULL when a separate one
** is missing (the option was the last argument); *i moves past a separate
** value. */
const char *wfp__opt_valued(const char *const *names, int argc, char **argv, int *i,
                            const char **value);

/* ---- base64 (RFC 4648, with padding) ---- */
void wfp__buf_add_base64(wfp__buf *b, const void *p, size_t n);
/* Decodes exactly; false on any character, padding or length error. */
bool wfp__base64_decode(const char *s, size_t n, wfp__buf *out);

/* ---- JSON ---- */
/* True when s[0..n) is one JSON value (RFC 8259 grammar, white space around
** it) nesting at most max_depth (<= 4096) arrays and objects. It allocates
** nothing: a reader that failed on text this accepts ran out of memory.
** String contents are not checked beyond their escapes (as cJSON reads
** them: a \u escape of a lone surrogate is refused). */
bool wfp__json_valid(const char *s, size_t n, int max_depth);

/* ---- UTF-8 ---- */
/* True when s[0..n) is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF). */
bool wfp__utf8_valid(const char *s, size_t n);

/* ---- SHA-256 ---- */
typedef struct wfp__sha256 {
  uint32_t h[8];
  uint64_t total;
  uint8_t block[64];
  size_t fill;
} wfp__sha256;
void wfp__sha256_init(wfp__sha256 *s);
void wfp__sha256_update(wfp__sha256 *s, const void *p, size_t n);
void wfp__sha256_final(wfp__sha256 *s, uint8_t out[32]);
void wfp__sha256_buf(const void *p, size_t n, uint8_t out[32]);
/* HMAC-SHA-256 (RFC 2104) of msg under key (any length). */
void wfp__hmac_sha256(const void *key, size_t klen, const void *msg, size_t n,
                      uint8_t out[32]);
/* a[0..n) == b[0..n), in a time that does not depend on where they differ
** (for comparing MACs). */
bool wfp__equal_ct(const void *a, const void *b, size_t n);
/* Lowercase hex of n bytes into out (2n+1 bytes). */
void wfp__hex(const uint8_t *p, size_t n, char *out);

/* ---- files ---- */
/* Reads a whole file (NUL-terminated; caller frees). 0, WFP_ENOMEM, or
** WFP_EIO with errno set. */
int wfp__read_file(const char *path, char **data, size_t *len);
/* Writes data to path atomically: a temporary file in the same directory
** (path.tmp. and six random characters), fsync, rename. A reader never
** sees a half-written file, and on failure nothing is left behind.
** SIGINT, SIGTERM, SIGHUP, SIGQUIT and SIGXFSZ are held (blocked in the
** calling thread) while the temporary file exists, so that they leave none
** either; only SIGKILL or a crash can, which wfp__remove_stale_temps
** cleans. 0, WFP_ENOMEM or WFP_EIO (errno set). */
int wfp__write_file_atomic(const char *path, const void *data, size_t len, int mode);
/* Removes the temporary files that writes of path left when their process
** was killed: path.tmp.?????? files that no live writer holds (a writer
** locks its file with flock). Returns how many, or -1 when the directory
** cannot be read. */
int wfp__remove_stale_temps(const char *path);

/* The same in steps, for outputs that appear together or not at all:
** prepare each (where it goes, and every allocation: creates nothing),
** write each (a synced temporary file beside it: allocates nothing), then
** commit each (a rename: allocates nothing), or discard them all. stage
** is prepare and write. A path that is not a regular file (a terminal,
** /dev/stdout) is written at commit, from data, which must live until
** then. prepare and stage: 0, WFP_ENOMEM, WFP_EIO (errno set); write and
** commit: 0 or WFP_EIO. Commit and discard release s; a failed prepare or
** stage leaves nothing to release; after a failed write, discard s. The
** signals above are held from the write of the first temporary file to the
** commit or discard of the last (in the calling thread). */
typedef struct wfp__staged {
  char *tmp; /* the temporary file's name, or NULL when written at commit */
  char *dst; /* where it goes */
  bool written;
  const void *data;
  size_t len;
} wfp__staged;
int wfp__file_prepare(wfp__staged *s, const char *path);
int wfp__file_write(wfp__staged *s, const void *data, size_t len, int mode);
int wfp__file_stage(wfp__staged *s, const char *path, const void *data, size_t len,
                    int mode);
int wfp__file_commit(wfp__staged *s);
void wfp__file_discard(wfp__staged *s);

#endif /* WFP_COMMON_UTIL_H */
