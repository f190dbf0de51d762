/* bench_kernel.c: times the compute kernel (bench/kernel.json compiled by
** wfp-aot, and the same in C, kernel.c) in process: the wfp module through
** the host library with fuel on, the C function called directly. */
/*
** usage: wfp-bench-kernel WFP.so KERNEL_C.so N RUNS
** Both count the Collatz steps of 1..N; their results must agree. One
** untimed warm-up run of each, then RUNS timed runs alternating between the
** two (so that a busy moment of the machine hits both); prints "key value"
** lines: medians and minimums in ms, the wfp invocation's steps and fuel.
*/
#include <dlfcn.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wfp/host.h"

typedef int64_t (*kernel_fn)(int64_t n);

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* One invocation of the wfp kernel; its ms, or -1 when it failed or its
** output is not want. */
static double wfp_run(wfp_module *m, int64_t n, int64_t want, uint64_t *steps,
                      uint64_t *fuel) {
  char input[96], expect[64];
  snprintf(input, sizeof input, "{\"args\":{\"n\":%" PRId64 "}}", n);
  snprintf(expect, sizeof expect, "{\"result\":%" PRId64 "}", want);
  wfp_env *e = wfp_env_new();
  wfp_invocation *inv = NULL;
  double r = -1;
  if (!e || wfp_invocation_new(m, e, input, strlen(input), &inv)) {
    fprintf(stderr, "wfp-bench-kernel: out of memory\n");
    goto out;
  }
  double t0 = now_ms();
  int rc = wfp_invocation_run(inv, 0);
  double t1 = now_ms();
  if (rc != WFP_DONE || strcmp(wfp_invocation_output(inv), expect) != 0) {
    const char *msg = wfp_invocation_trap_message(inv);
    fprintf(stderr, "wfp-bench-kernel: wfp ended with %d (%s), expected %s\n", rc,
            rc == WFP_DONE ? wfp_invocation_output(inv) : msg ? msg : "", expect);
    goto out;
  }
  *steps = wfp_invocation_steps(inv);
  *fuel = wfp_invocation_fuel_used(inv);
  r = t1 - t0;
out:
  wfp_invocation_free(inv);
  wfp_env_free(e);
  return r;
}

static double c_run(kernel_fn k, int64_t n, int64_t *result) {
  double t0 = now_ms();
  *result = k(n);
  return now_ms() - t0;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: wfp-bench-kernel WFP.so KERNEL_C.so N RUNS\n");
    return 2;
  }
  int64_t n = strtoll(argv[3], NULL, 10);
  int runs = atoi(argv[4]);
  if (n < 1 || n > 100000000 || runs < 1 || runs > 100) {
    fprintf(stderr, "wfp-bench-kernel: N in 1..1e8 and RUNS in 1..100\n");
    return 2;
  }
  wfp_host_diag hd;
  wfp_module *m = NULL;
  if (wfp_module_load(argv[1], &m, &hd)) {
    char line[1024];
    wfp_diag_format(&hd.d, line, sizeof line);
    fprintf(stderr, "wfp-bench-kernel: %s\n", line);
    return 3;
  }
  void *dl = dlopen(argv[2], RTLD_NOW | RTLD_LOCAL);
  kernel_fn k = dl ? (kernel_fn)dlsym(dl, "kernel") : NULL;
  if (!k) {
    fprintf(stderr, "wfp-bench-kernel: %s: no kernel (%s)\n", argv[2],
            dl ? "no symbol" : dlerror());
    wfp_module_free(m);
    return 3;
  }
  int64_t want = 0;
  uint64_t steps = 0, fuel = 0;
  c_run(k, n / 10 > 0 ? n / 10 : 1, &want);
  if (wfp_run(m, n / 10 > 0 ? n / 10 : 1, want, &steps, &fuel) < 0)
    return 1;
  double tw[100], tc[100];
  for (int r = 0; r < runs; r++) {
    tc[r] = c_run(k, n, &want);
    if ((tw[r] = wfp_run(m, n, want, &steps, &fuel)) < 0)
      return 1;
  }
  qsort(tw, (size_t)runs, sizeof tw[0], cmp_d);
  qsort(tc, (size_t)runs, sizeof tc[0], cmp_d);
  printf("result %" PRId64 "\n", want);
  printf("wfp_steps %" PRIu64 "\n", steps);
  printf("wfp_fuel %" PRIu64 "\n", fuel);
  printf("wfp_ms_median %.3f\n", tw[runs / 2]);
  printf("wfp_ms_min %.3f\n", tw[0]);
  printf("c_ms_median %.3f\n", tc[runs / 2]);
  printf("c_ms_min %.3f\n", tc[0]);
  wfp_module_free(m);
  dlclose(dl);
  return 0;
}
