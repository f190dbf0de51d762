/*
** two_modules.c: two different .so files loaded side by side in one host
** process; traps in one leave the other (and itself) working; thousands of
** invocations in a row leak nothing (the sanitizer build checks that).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wfp/host.h"

static int failures;

#define CHECK(c, ...)                                                          \
  do {                                                                         \
    if (!(c)) {                                                                \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                     \
      fprintf(stderr, __VA_ARGS__);                                            \
      fprintf(stderr, "\n");                                                   \
      failures++;                                                              \
    }                                                                          \
  } while (0)

/* Runs input on m with ctx n=v; returns the status, output or message in out. */
static int run(wfp_module *m, const char *input, int64_t n, char *out, size_t len) {
  wfp_env *e = wfp_env_new();
  wfp_invocation *inv = NULL;
  int rc = -1;
  if (!e || wfp_env_ctx_set(e, "n", n) ||
      wfp_invocation_new(m, e, input, strlen(input), &inv)) {
    fprintf(stderr, "setup failed\n");
    exit(2);
  }
  rc = wfp_invocation_run(inv, 1000);
  const char *s = rc == WFP_DONE ? wfp_invocation_output(inv)
                                 : wfp_invocation_trap_message(inv);
  snprintf(out, len, "%s", s ? s : "(none)");
  wfp_invocation_free(inv);
  wfp_env_free(e);
  return rc;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: two_modules simple.so traps.so\n");
    return 2;
  }
  char out[512];
  wfp_host_diag hd;
  wfp_module *a = NULL, *b = NULL;
  if (wfp_module_load(argv[1], &a, &hd) || wfp_module_load(argv[2], &b, &hd)) {
    char line[1024];
    wfp_diag_format(&hd.d, line, sizeof line);
    fprintf(stderr, "load: %s\n", line);
    return 2;
  }
  CHECK(strcmp(wfp_module_hash(a), wfp_module_hash(b)) != 0, "two programs, one hash");
  CHECK(run(a, "{}", 41, out, sizeof out) == WFP_DONE && strcmp(out, "{\"result\":42}") == 0,
        "simple: %s", out);
  static const char *const traps[] = {
      "{\"fn\":\"divide\",\"args\":{\"a\":1,\"b\":0}}",
      "{\"fn\":\"deep\",\"args\":{\"n\":1000000}}",
      "{\"fn\":\"refuse\",\"args\":{\"why\":\"x\"}}",
      "{\"fn\":\"needs_ctx\"}",
  };
  static const char *const msgs[] = {"integer division by zero", "call stack exhausted",
                                     "refused on purpose", "context key 'absent' is not set"};
  for (int round = 0; round < 3; round++)
    for (int k = 0; k < 4; k++) {
      CHECK(run(b, traps[k], 0, out, sizeof out) == WFP_TRAP && strcmp(out, msgs[k]) == 0,
            "trap %d: %s", k, out);
      /* the other module, and the trapping one, still work */
      CHECK(run(a, "{}", k, out, sizeof out) == WFP_DONE, "simple after a trap: %s", out);
      CHECK(run(b, "{\"fn\":\"divide\",\"args\":{\"a\":9,\"b\":3}}", 0, out, sizeof out) ==
                    WFP_DONE &&
                strcmp(out, "{\"result\":3}") == 0,
            "traps.so after its trap: %s", out);
    }
  /* many invocations, and many traps, in a row */
  for (int i = 0; i < 20000; i++) {
    int rc = run(a, "{}", i, out, sizeof out);
    char want[64];
    snprintf(want, sizeof want, "{\"result\":%d}", i + 1);
    if (rc != WFP_DONE || strcmp(out, want) != 0) {
      CHECK(0, "invocation %d: %s", i, out);
      break;
    }
    if (i % 10 == 0 && run(b, traps[i % 4], 0, out, sizeof out) != WFP_TRAP) {
      CHECK(0, "trap %d did not trap: %s", i, out);
      break;
    }
  }
  wfp_module_free(a);
  wfp_module_free(b);
  if (failures)
    return 1;
  printf("two modules side by side: all checks passed\n");
  return 0;
}
