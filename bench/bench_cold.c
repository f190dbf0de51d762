/* bench_cold.c: in-process cold start of a module through the host library:
** dlopen + descriptor, instantiate, run to done, free, dlclose, repeated; it
** does not measure process start-up (bench/run.sh times that separately). */
/*
** usage: wfp-bench-cold MODULE.so RUNS
** Runs the module's main with ctx n=41 (examples/program.simple.json gives
** {"result":42}). Prints the cold start (load + run: what it takes to get
** the result), first run and median, and the phases (load = dlopen + dlsym
** + descriptor checks; run = instantiate + every step; free = instance,
** environment, dlclose, outside the cold start) in microseconds, and whether
** dlclose really unmapped the .so (else later runs would not be cold).
** Then, with the module loaded once, RUNS new instances (alloc_instance +
** init_instance of its descriptor, each freed apart): the fresh instance.
*/
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wfp/host.h"

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof v[0], cmp_d);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

enum { MAX_RUNS = 10000 };

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: wfp-bench-cold MODULE.so RUNS\n");
    return 2;
  }
  const char *path = argv[1];
  int runs = atoi(argv[2]);
  if (runs < 1 || runs > MAX_RUNS) {
    fprintf(stderr, "wfp-bench-cold: RUNS must be in 1..%d\n", MAX_RUNS);
    return 2;
  }
  /* a path without '/' would make dlopen search the library path */
  if (!strchr(path, '/')) {
    fprintf(stderr, "wfp-bench-cold: give the module's path with a '/'\n");
    return 2;
  }
  static double total[MAX_RUNS], load[MAX_RUNS], run[MAX_RUNS], fre[MAX_RUNS];
  int unloaded = 1;
  for (int r = 0; r < runs; r++) {
    wfp_host_diag hd;
    wfp_module *m = NULL;
    wfp_env *e = NULL;
    wfp_invocation *inv = NULL;
    double t0 = now_us();
    if (wfp_module_load(path, &m, &hd)) {
      char line[1024];
      wfp_diag_format(&hd.d, line, sizeof line);
      fprintf(stderr, "wfp-bench-cold: %s\n", line);
      return 3;
    }
    double t1 = now_us();
    e = wfp_env_new();
    if (!e || wfp_env_ctx_set(e, "n", 41) || wfp_invocation_new(m, e, "{}", 2, &inv)) {
      fprintf(stderr, "wfp-bench-cold: out of memory\n");
      return 1;
    }
    int rc = wfp_invocation_run(inv, 0);
    double t2 = now_us();
    if (rc != WFP_DONE || strcmp(wfp_invocation_output(inv), "{\"result\":42}") != 0) {
      const char *o = rc == WFP_DONE ? wfp_invocation_output(inv)
                                     : wfp_invocation_trap_message(inv);
      fprintf(stderr, "wfp-bench-cold: unexpected result %d: %s\n", rc, o ? o : "");
      return 1;
    }
    wfp_invocation_free(inv);
    wfp_env_free(e);
    wfp_module_free(m);
    double t3 = now_us();
    /* the cold start is what it takes to get the result: dlopen,
    ** instantiate, run to done. Tearing down is reported apart. */
    total[r] = t2 - t0;
    load[r] = t1 - t0;
    run[r] = t2 - t1;
    fre[r] = t3 - t2;
    /* outside the timed region: is the .so still mapped? */
    void *still = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
    if (still) {
      unloaded = 0;
      dlclose(still);
    }
  }
  /* a new instance of a loaded module, the module's types registered
  ** once: what a step pays when no idle instance is at hand */
  static double inst_new[MAX_RUNS], inst_free[MAX_RUNS];
  {
    wfp_host_diag hd;
    wfp_module *m = NULL;
    if (wfp_module_load(path, &m, &hd)) {
      char line[1024];
      wfp_diag_format(&hd.d, line, sizeof line);
      fprintf(stderr, "wfp-bench-cold: %s\n", line);
      return 3;
    }
    const wfp_module_desc *d = wfp_module_descriptor_of(m);
    if (!WFP_DESC_HAS(d, init_instance)) {
      fprintf(stderr, "wfp-bench-cold: the module has no init_instance\n");
      return 3;
    }
    d->init_module();
    for (int r = 0; r < runs; r++) {
      double t0 = now_us();
      void *inst = d->alloc_instance();
      if (!inst) {
        fprintf(stderr, "wfp-bench-cold: out of memory\n");
        return 1;
      }
      d->init_instance(inst);
      double t1 = now_us();
      d->free_instance(inst);
      double t2 = now_us();
      inst_new[r] = t1 - t0;
      inst_free[r] = t2 - t1;
    }
    wfp_module_free(m);
  }
  double first = total[0], first_load = load[0], first_run = run[0],
         first_free = fre[0];
  printf("runs %d\n", runs);
  printf("first_us %.1f\n", first);
  printf("first_load_us %.1f\n", first_load);
  printf("first_run_us %.1f\n", first_run);
  printf("first_free_us %.1f\n", first_free);
  printf("median_us %.1f\n", median(total, runs));
  printf("median_load_us %.1f\n", median(load, runs));
  printf("median_run_us %.1f\n", median(run, runs));
  printf("median_free_us %.1f\n", median(fre, runs));
  printf("unloaded_each_time %s\n", unloaded ? "yes" : "no");
  printf("inst_new_us_first %.2f\n", inst_new[0]);
  printf("inst_new_us_median %.2f\n", median(inst_new, runs));
  printf("inst_free_us_median %.2f\n", median(inst_free, runs));
  return 0;
}
