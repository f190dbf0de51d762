/*
** json.h: the one strict JSON scanner the wfp libraries share (never
** installed): RFC 8259 exactly as the guest reads it, with a depth limit
** and the byte offset of a fault. It scans text in place, or builds a tree
** in an arena. Not here: writing JSON (util.h), cJSON's lenient reading.
*/
#ifndef WFP_COMMON_JSON_H
#define WFP_COMMON_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

/*
** 0 when s[0..n) is one JSON value (white space around it allowed) with at
** most max_depth arrays and objects nested, else WFP_ESYNTAX with the byte
** offset of the fault in *at and what it is in *why (static text; too deep
** is wfp__json_too_deep itself). Strict: UTF-8, no raw control characters
** in strings, valid escapes without lone surrogates, numbers without a
** leading zero or '+', nothing after the value.
*/
int wfp__json_check(const char *s, size_t n, unsigned max_depth, size_t *at,
                    const char **why);
extern const char wfp__json_too_deep[];

/* The index after the white space at s[i]. */
size_t wfp__json_ws(const char *s, size_t i, size_t n);
/* On checked text (WFP_JSON_MAX_DEPTH deep at most): the index after the
** value at s[i], or 0. */
size_t wfp__json_skip(const char *s, size_t i, size_t n);
/* The string literal at s[i]: appends its decoded bytes (U+0000 included)
** to out (when not NULL); the index after it, or 0 when malformed. */
size_t wfp__json_string(const char *s, size_t i, size_t n, wfp__buf *out);

/* One member of a checked object: offsets of its key (the literal, quotes
** included) and of its value. */
typedef struct wfp__json_mem {
  size_t key, key_end, val, val_end;
} wfp__json_mem;
/* The member after s[i] (i: the '{' or the ',' or white space before it);
** returns the index after it and its white space, or 0 at the end. */
size_t wfp__json_member(const char *s, size_t i, size_t n, wfp__json_mem *m);
/* Does the member's key decode to key[0..kn)? */
bool wfp__json_key_is(const char *s, const wfp__json_mem *m, const char *key, size_t kn);

/* ---- the tree ---- */

enum { WFP__J_NULL, WFP__J_FALSE, WFP__J_TRUE, WFP__J_NUM, WFP__J_STR, WFP__J_ARR, WFP__J_OBJ };

/* A value. Strings keep their exact decoded bytes and length (U+0000
** included; NUL-terminated as well), numbers their text: nothing goes
** through a double. Everything lives in the arena of wfp__json_parse. */
typedef struct wfp__jv wfp__jv;
struct wfp__jv {
  int type;        /* WFP__J_* */
  const char *s;   /* STR: the decoded bytes; NUM: the text (not terminated) */
  size_t n;        /* their length */
  const char *key; /* the member's decoded name, in an object */
  size_t keylen;
  wfp__jv *first, *next; /* arrays and objects: the elements, in order */
  size_t count;
};

/* Parses s[0..n) (as wfp__json_check checks it) into a tree allocated in a.
** 0 and *out; WFP_ESYNTAX with *at and *why; WFP_ENOMEM. */
int wfp__json_parse(const char *s, size_t n, unsigned max_depth, wfp__arena *a,
                    wfp__jv **out, size_t *at, const char **why);

#endif /* WFP_COMMON_JSON_H */
