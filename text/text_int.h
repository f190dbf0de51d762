/*
** text_int.h: what the files of the text library share: the parser handle,
** the notes (comments, blank lines) the formatter keeps, and the printer.
** Internal: never installed. The printer reads IR as a cJSON tree.
*/
#ifndef WFP_TEXT_INT_H
#define WFP_TEXT_INT_H

#include <stdbool.h>

#include "util.h"
#include "wfp/text.h"

struct cJSON;

/* Comments and a blank line that the formatter keeps with an IR node: a
** statement, a function, a resource, a property, or (path + "#end") the
** end of a block, ("#eof") the end of the file. */
typedef struct wfp__note {
  const char *path;
  const char **lead; /* comments on their own lines before the node */
  int nlead;
  const char *trail; /* a comment after the node on its last line */
  bool blank;        /* a blank line before the node (and its comments) */
  bool gap;          /* a blank line between the comments and the node */
} wfp__note;

typedef struct wfp__notes {
  wfp__note *v;
  size_t n;
} wfp__notes;

/* The note of path, or NULL (notes sorted by path). */
const wfp__note *wfp__notes_find(const wfp__notes *ns, const char *path);

/* A position of the text, for a JSON path of the IR. */
typedef struct wfp__tpos {
  const char *path;
  int line, col;
} wfp__tpos;

struct wfp_text {
  wfp__arena arena;
  unsigned max_diags;
  const char *file;
  wfp_diag *diags;
  size_t ndiags, diags_cap, dropped;
  bool oom; /* a diagnostic could not be kept: the parse gives WFP_ENOMEM */
  int status; /* WFP_EINVAL before a parse */
  bool used;
  struct cJSON *doc; /* the IR, as parsed */
  char *ir;          /* compact JSON of doc (malloc) */
  size_t irlen;
  wfp__tpos *pos; /* sorted by path */
  size_t npos;
  wfp__notes notes;
};

/* Adds a diagnostic at a text position (code WFP_ESYNTAX). */
void wfp__text_diag(wfp_text *t, int line, int col, const char *fmt, ...)
    WFP__PRINTF(4, 5);

/* parse.c: text -> t->doc, t->pos, t->notes. 0, WFP_ESYNTAX, WFP_ENOMEM. */
int wfp__text_parse(wfp_text *t, const char *src, size_t len);

/* Reads a JSON value (the text of a lit_json) into a cJSON tree whose
** numbers are raw text, keys in order. NULL on malformed text or no memory. */
struct cJSON *wfp__text_json_value(const char *s, size_t n);

/* print.c: writes the program prog (IR as cJSON, as written or as parsed)
** in canonical text layout; notes may be NULL. false when out of memory. */
bool wfp__text_print(const struct cJSON *prog, const wfp__notes *notes,
                     wfp__buf *out);

/* Words that the text reserves: a name spelled like one is written #name. */
bool wfp__text_reserved(const char *s);
/* Names of built-in calls (len, input, sleep, get_i64, ...). */
bool wfp__text_builtin(const char *s);
/* The JSON path of a member: base.key, or base["key"] for other keys. */
char *wfp__text_kpath(wfp__arena *a, const char *base, const char *key);

#endif /* WFP_TEXT_INT_H */
