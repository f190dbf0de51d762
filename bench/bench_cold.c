/* bench_cold.c: in-process cold start of a module through the host library:
** dlopen + descriptor, instantiate, run to done, free, dlclose, repeated; it
** does not measure process start-up (bench/run.sh times that separately). */
/*
** usage: wfp-bench-cold MODULE.so RUNS [BASELINE]
** Runs the module's main with ctx n=41 (examples/program.simple.json gives
** {"result":42}). Prints the cold start (load + run: what it takes to get
** the result), first run and median, and the phases (load = dlopen + dlsym
** + descriptor checks; run = instantiate + every step; free = instance,
** environment, dlclose, outside the cold start) in microseconds, and whether
** dlclose really unmapped the .so (else later runs would not be cold); the
** cold start up to the first step (load + the first instance + its first
** step: cold_step_us_*).
** Then, with the module loaded once, RUNS new instances (alloc_instance +
** init_instance of its descriptor, each freed apart): the fresh instance;
** and RUNS times the whole life of one (new, its first step, freed:
** inst_cycle_us_median), which shows what a cheaper new instance leaves
** to its first step.
** BASELINE, the output of an earlier run (another build of the host
** library, say), adds a line "ratio KEY BEFORE AFTER AFTER/BEFORE" for
** each of the figures above that both runs have.
*/
#include <dlfcn.h>
#include <stdint.h>
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

/* The figure named key in the file of an earlier run, or -1. */
static double baseline_of(const char *path, const char *key) {
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  char line[256], name[128];
  double v = -1, x;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "%127s %lf", name, &x) == 2 && strcmp(name, key) == 0)
      v = x;
  fclose(f);
  return v;
}

/* One first step of inst: main with ctx 1; returns its step kind. */
static uint32_t first_step(const wfp_module_desc *d, void *inst) {
  wfp_abi_step out;
  if (d->run_step(inst, 1, "{}", 2, NULL, 0, 0, NULL, 0, &out) != 0)
    return WFP_STEP_TRAP;
  d->post_return(inst);
  return out.kind;
}

int main(int argc, char **argv) {
  if (argc != 3 && argc != 4) {
    fprintf(stderr, "usage: wfp-bench-cold MODULE.so RUNS [BASELINE]\n");
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
  const char *baseline = argc == 4 ? argv[3] : NULL;
  static double total[MAX_RUNS], load[MAX_RUNS], run[MAX_RUNS], fre[MAX_RUNS],
      cold_step[MAX_RUNS];
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
    /* the first step makes the invocation's instance */
    int rc = wfp_invocation_step(inv);
    double t1s = now_us();
    if (rc == WFP_PENDING)
      rc = wfp_invocation_run(inv, 0);
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
    cold_step[r] = t1s - t0;
    /* outside the timed region: is the .so still mapped? */
    void *still = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
    if (still) {
      unloaded = 0;
      dlclose(still);
    }
  }
  /* a new instance of a loaded module, the module's types registered
  ** once: what a step pays when no idle instance is at hand */
  static double inst_new[MAX_RUNS], inst_free[MAX_RUNS], inst_cycle[MAX_RUNS];
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
    /* the whole life of a new instance: what its first step pays for
    ** pages it touches first is counted too */
    for (int r = 0; r < runs; r++) {
      double t0 = now_us();
      void *inst = d->alloc_instance();
      if (!inst) {
        fprintf(stderr, "wfp-bench-cold: out of memory\n");
        return 1;
      }
      d->init_instance(inst);
      uint32_t kind = first_step(d, inst);
      d->free_instance(inst);
      inst_cycle[r] = now_us() - t0;
      if (kind != WFP_STEP_PENDING) {
        fprintf(stderr, "wfp-bench-cold: the first step did not suspend (%u)\n", kind);
        return 1;
      }
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
  printf("cold_step_us_first %.1f\n", cold_step[0]);
  printf("cold_step_us_median %.1f\n", median(cold_step, runs));
  printf("inst_cycle_us_median %.2f\n", median(inst_cycle, runs));
  if (baseline) {
    /* the medians just printed, read back by name */
    static const struct {
      const char *key;
      double *v;
    } rows[] = {{"cold_step_us_median", cold_step}, {"median_us", total},
                {"inst_new_us_median", inst_new}, {"inst_free_us_median", inst_free},
                {"inst_cycle_us_median", inst_cycle}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
      double before = baseline_of(baseline, rows[i].key);
      /* sorted above: the median is in place */
      double after = median(rows[i].v, runs);
      if (before > 0)
        printf("ratio %s %.2f %.2f %.2fx\n", rows[i].key, before, after, after / before);
    }
  }
  return 0;
}
