/* bench_limit.c: times the physical-limit stepper (limit_stepper.c) driven
** across its .so boundary by the smallest host loop: two state buffers that
** swap, an integer answer per key; it asserts no time, only the result. */
/*
** usage: wfp-bench-limit LIMIT.so N K RUNS
** The stepper reads "n" once, then "k" N times and ends with N*K, as
** bench/loop.json does. One short untimed warm-up run, then RUNS timed
** runs; prints "key value" lines (ns per step: median, min, max).
*/
#include <dlfcn.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef int (*step_fn)(const void *state, uint32_t len, int64_t resume, void *out,
                       int64_t *result);
typedef uint32_t (*size_fn)(void);

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* One invocation: ns per step, or -1 when the result is wrong. */
static double one_run(step_fn step, uint32_t size, int64_t n, int64_t k, uint64_t *steps) {
  /* the host's copy of the state, and where the next one is written */
  _Alignas(16) unsigned char a[64] = {0}, b[64] = {0};
  unsigned char *cur = a, *next = b;
  uint32_t len = 0;
  int64_t resume = 0, result = 0;
  const int64_t answer[3] = {0, n, k}; /* by key */
  uint64_t count = 0;
  double t0 = now_ns();
  for (;;) {
    int r = step(cur, len, resume, next, &result);
    count++;
    if (r == 0)
      break;
    unsigned char *t = cur;
    cur = next;
    next = t;
    len = size;
    resume = answer[r];
  }
  double t1 = now_ns();
  if (result != n * k) {
    fprintf(stderr, "wfp-bench-limit: wrong result %" PRId64 ", expected %" PRId64 "\n", result,
            n * k);
    return -1;
  }
  *steps = count;
  return (t1 - t0) / (double)count;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: wfp-bench-limit LIMIT.so N K RUNS\n");
    return 2;
  }
  int64_t n = strtoll(argv[2], NULL, 10), k = strtoll(argv[3], NULL, 10);
  int runs = atoi(argv[4]);
  if (n < 1 || runs < 1 || runs > 100) {
    fprintf(stderr, "wfp-bench-limit: N and RUNS must be positive (RUNS <= 100)\n");
    return 2;
  }
  void *dl = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  step_fn step = dl ? (step_fn)dlsym(dl, "limit_step") : NULL;
  size_fn size = dl ? (size_fn)dlsym(dl, "limit_state_size") : NULL;
  if (!step || !size || size() > 64) {
    fprintf(stderr, "wfp-bench-limit: %s: not a limit stepper (%s)\n", argv[1],
            dl ? "no limit_step" : dlerror());
    return 3;
  }
  uint64_t steps = 0;
  if (one_run(step, size(), n / 10 > 0 ? n / 10 : 1, k, &steps) < 0)
    return 1;
  double ns[100];
  for (int r = 0; r < runs; r++)
    if ((ns[r] = one_run(step, size(), n, k, &steps)) < 0)
      return 1;
  qsort(ns, (size_t)runs, sizeof ns[0], cmp_d);
  printf("module %s\n", argv[1]);
  printf("steps %" PRIu64 "\n", steps);
  printf("runs %d\n", runs);
  printf("ns_per_step_median %.2f\n", ns[runs / 2]);
  printf("ns_per_step_min %.2f\n", ns[0]);
  printf("ns_per_step_max %.2f\n", ns[runs - 1]);
  dlclose(dl);
  return 0;
}
