/*
** fuzz_ir.c: the front end on arbitrary bytes: JSON reader, checker, IDs,
** lifting (wfp_program_load_mem) and the canonical IR printer. Promises
** checked beyond "no crash, no leak": a refusal explains itself, and the
** canonical IR of an accepted program is a valid program that loads back
** to the same text and hash (docs/ir.md, sections 18 and 19).
*/
#include <string.h>

#include "fuzz.h"
#include "wfp/ir.h"

static const char *const NAME = "fuzz.json";

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  return 0;
}

static void check_refusal(const wfp_program *p, int rc) {
  size_t n = wfp_program_diag_count(p);
  FUZZ_CHECK(n >= 1, "load failed (%s) without a diagnostic", wfp_err_name(rc));
  for (size_t i = 0; i < n; i++) {
    const wfp_diag *d = wfp_program_diag(p, i);
    FUZZ_CHECK(d && d->msg && d->msg[0], "diagnostic %zu has no message", i);
    FUZZ_CHECK(d->file && strcmp(d->file, NAME) == 0, "diagnostic %zu names no file", i);
    FUZZ_CHECK(d->path, "diagnostic %zu has no path", i);
    if (rc == WFP_ESYNTAX)
      FUZZ_CHECK(d->line >= 1 && d->col >= 1, "syntax error at %d:%d", d->line, d->col);
    char line[1024];
    FUZZ_CHECK(wfp_diag_format(d, line, sizeof line) > 0, "empty formatted diagnostic");
  }
  FUZZ_CHECK(wfp_program_diag(p, n) == NULL, "diagnostic past the end");
  FUZZ_CHECK(strcmp(wfp_program_hash(p), "") == 0, "a refused program has a hash");
}

/* The canonical text loads back to itself: same text, same hash. */
static void check_reload(const wfp_program *p, const char *text, size_t len) {
  wfp_program *q = wfp_program_new(NULL);
  if (!q)
    return;
  int rc = wfp_program_load_mem(q, "canonical.json", text, len);
  if (rc == WFP_ENOMEM) {
    wfp_program_free(q);
    return;
  }
  if (rc != 0) {
    const wfp_diag *d = wfp_program_diag(q, 0);
    fprintf(stderr, "canonical IR:\n%.*s\n", (int)len, text);
    FUZZ_CHECK(rc == 0, "the canonical IR does not load back: %s: %s",
               d && d->path ? d->path : "", d && d->msg ? d->msg : "");
  }
  char *again = NULL;
  size_t alen = 0;
  if (wfp_program_ir_json(q, 0, &again, &alen) == 0) {
    if (alen != len || memcmp(again, text, len) != 0)
      fprintf(stderr, "first:\n%.*s\nsecond:\n%.*s\n", (int)len, text, (int)alen, again);
    FUZZ_CHECK(alen == len && memcmp(again, text, len) == 0,
               "the canonical IR is not a fixed point");
    FUZZ_CHECK(strcmp(wfp_program_hash(p), wfp_program_hash(q)) == 0,
               "hash %s became %s on reload", wfp_program_hash(p), wfp_program_hash(q));
  }
  wfp_free(again);
  wfp_program_free(q);
}

static void check_accepted(const wfp_program *p) {
  FUZZ_CHECK(wfp_program_diag_count(p) == 0, "a valid program has diagnostics");
  const char *h = wfp_program_hash(p);
  FUZZ_CHECK(strlen(h) == 16 && strspn(h, "0123456789abcdef") == 16, "hash '%s'", h);
  int nf = wfp_program_function_count(p);
  for (int i = 0; i < nf; i++) {
    FUZZ_CHECK(wfp_program_function_name(p, i) && wfp_program_function_id(p, i),
               "function %d has no name or id", i);
    FUZZ_CHECK(wfp_program_function_id(p, i)[0], "function %d has an empty id", i);
  }
  if (wfp_program_has_entry(p))
    FUZZ_CHECK(wfp_program_entry(p), "an entry without a name");
  char *pretty = NULL, *compact = NULL;
  size_t plen = 0, clen = 0;
  int rc = wfp_program_ir_json(p, 1, &pretty, &plen);
  FUZZ_CHECK(rc == 0 || rc == WFP_ENOMEM, "pretty IR: %s", wfp_err_name(rc));
  rc = wfp_program_ir_json(p, 0, &compact, &clen);
  FUZZ_CHECK(rc == 0 || rc == WFP_ENOMEM, "compact IR: %s", wfp_err_name(rc));
  if (compact) {
    FUZZ_CHECK(strlen(compact) == clen, "compact IR length");
    check_reload(p, compact, clen);
  }
  if (pretty) {
    FUZZ_CHECK(strlen(pretty) == plen, "pretty IR length");
    /* the indented form is the same program */
    wfp_program *q = wfp_program_new(NULL);
    rc = q ? wfp_program_load_mem(q, "pretty.json", pretty, plen) : WFP_ENOMEM;
    FUZZ_CHECK(rc == 0 || rc == WFP_ENOMEM, "the indented IR does not load back: %s",
               wfp_err_name(rc));
    if (rc == 0)
      FUZZ_CHECK(strcmp(wfp_program_hash(p), wfp_program_hash(q)) == 0,
                 "the indented IR has another hash");
    wfp_program_free(q);
  }
  wfp_free(pretty);
  wfp_free(compact);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  wfp_program *p = wfp_program_new(NULL);
  if (!p)
    return 0;
  int rc = wfp_program_load_mem(p, NAME, (const char *)data, size);
  FUZZ_CHECK(rc == 0 || rc == WFP_ESYNTAX || rc == WFP_EPROGRAM || rc == WFP_ENOMEM,
             "load returned %d (%s)", rc, wfp_err_name(rc));
  if (rc == 0)
    check_accepted(p);
  else if (rc != WFP_ENOMEM)
    check_refusal(p, rc);
  /* a program loads once */
  FUZZ_CHECK(wfp_program_load_mem(p, NAME, "{}", 2) == WFP_EINVAL, "a second load");
  wfp_program_free(p);
  return 0;
}
