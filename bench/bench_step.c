/* bench_step.c: times the effect round trip of a module (a wfp .so or the
** native baseline) driven in process by the host library's own loop
** (wfp_invocation_run); it asserts no time, only that the output is right. */
/*
** usage: wfp-bench-step MODULE.so N K RUNS [run-step]
** The module's main reads ctx "n" once, then ctx "k" N times and returns
** {"result": N*K}. One short warm-up run (caches, branch predictors, the
** instance) is not counted; then RUNS timed runs. Prints "key value" lines.
** With run-step, every step goes through the module's run_step, the resume
** value as JSON text, as for a module built before resume_step; else
** through resume_step where the module has it (the host's choice).
*/
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wfp/host.h"

#include "host_int.h"

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* One invocation; returns its ns per step, or a negative value on failure. */
static double one_run(wfp_module *m, int64_t n, int64_t k, uint64_t *steps) {
  wfp_env *e = wfp_env_new();
  wfp_invocation *inv = NULL;
  double r = -1;
  if (!e || wfp_env_ctx_set(e, "n", n) || wfp_env_ctx_set(e, "k", k) ||
      wfp_invocation_new(m, e, "{}", 2, &inv)) {
    fprintf(stderr, "wfp-bench-step: out of memory\n");
    goto out;
  }
  double t0 = now_ns();
  int rc = wfp_invocation_run(inv, 0);
  double t1 = now_ns();
  if (rc != WFP_DONE) {
    const char *msg = wfp_invocation_trap_message(inv);
    fprintf(stderr, "wfp-bench-step: the invocation ended with %d: %s\n", rc,
            msg ? msg : "");
    goto out;
  }
  char want[64];
  snprintf(want, sizeof want, "{\"result\":%" PRId64 "}", n * k);
  const char *got = wfp_invocation_output(inv);
  if (strcmp(got, want) != 0) {
    fprintf(stderr, "wfp-bench-step: wrong output %s, expected %s\n", got, want);
    goto out;
  }
  *steps = wfp_invocation_steps(inv);
  r = (t1 - t0) / (double)*steps;
out:
  wfp_invocation_free(inv);
  wfp_env_free(e);
  return r;
}

int main(int argc, char **argv) {
  if ((argc != 5 && argc != 6) || (argc == 6 && strcmp(argv[5], "run-step") != 0)) {
    fprintf(stderr, "usage: wfp-bench-step MODULE.so N K RUNS [run-step]\n");
    return 2;
  }
  int64_t n = strtoll(argv[2], NULL, 10), k = strtoll(argv[3], NULL, 10);
  int runs = atoi(argv[4]);
  if (n < 1 || runs < 1 || runs > 100) {
    fprintf(stderr, "wfp-bench-step: N and RUNS must be positive (RUNS <= 100)\n");
    return 2;
  }
  wfp_host_diag hd;
  wfp_module *m = NULL;
  if (wfp_module_load(argv[1], &m, &hd)) {
    char line[1024];
    wfp_diag_format(&hd.d, line, sizeof line);
    fprintf(stderr, "wfp-bench-step: %s\n", line);
    return 3;
  }
  if (argc == 6)
    m->resume_step = NULL;
  printf("path %s\n", m->resume_step ? "resume-step" : "run-step");
  uint64_t steps = 0;
  if (one_run(m, n / 10 > 0 ? n / 10 : 1, k, &steps) < 0) {
    wfp_module_free(m);
    return 1;
  }
  double ns[100];
  for (int r = 0; r < runs; r++) {
    ns[r] = one_run(m, n, k, &steps);
    if (ns[r] < 0) {
      wfp_module_free(m);
      return 1;
    }
  }
  qsort(ns, (size_t)runs, sizeof ns[0], cmp_d);
  printf("module %s\n", argv[1]);
  printf("steps %" PRIu64 "\n", steps);
  printf("runs %d\n", runs);
  printf("ns_per_step_median %.2f\n", ns[runs / 2]);
  printf("ns_per_step_min %.2f\n", ns[0]);
  printf("ns_per_step_max %.2f\n", ns[runs - 1]);
  wfp_module_free(m);
  return 0;
}
