/* bench_proc.c: times whole commands by fork/exec: the wall time of each run
** and, for `wfp-aot --time`, the stage times it prints on stderr; it is a
** fallback for hyperfine, not a replacement (no shell, no outlier analysis). */
/*
** usage: wfp-bench-proc spawn RUNS CMD [ARG...]   median wall time (ms)
**        wfp-bench-proc aot RUNS CMD [ARG...]     the same, plus the median
**                                                 of each "wfp-aot: STAGE
**                                                 X ms" line on stderr
** The command's stdout goes to /dev/null; a run that fails stops everything.
** One untimed warm-up run first, so that page-cache misses are not counted.
** "%N" in an argument becomes the run's number (0: the warm-up, then 1 to
** RUNS), so that each run can compile a program of its own.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof v[0], cmp_d);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Runs argv once; its stderr (when errbuf) into errbuf; *ms its wall time,
** *cpu_ms the user + system time of it and its children (wait4), which a
** busy machine inflates less than the wall time. 0 on exit status 0. */
static int run_once(char **argv, char *errbuf, size_t errcap, double *ms,
                    double *cpu_ms) {
  int fds[2] = {-1, -1};
  if (errbuf && pipe(fds) != 0)
    return -1;
  double t0 = now_ms();
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    int dn = open("/dev/null", O_WRONLY);
    if (dn >= 0)
      dup2(dn, 1);
    if (errbuf) {
      dup2(fds[1], 2);
      close(fds[0]);
      close(fds[1]);
    }
    execvp(argv[0], argv);
    _exit(127);
  }
  size_t len = 0;
  if (errbuf) {
    close(fds[1]);
    for (;;) {
      ssize_t r = read(fds[0], errbuf + len, errcap - 1 - len);
      if (r < 0 && errno == EINTR)
        continue;
      if (r <= 0)
        break;
      len += (size_t)r;
      if (len == errcap - 1)
        break; /* more than expected: the rest is not needed */
    }
    close(fds[0]);
    errbuf[len] = 0;
  }
  int st;
  struct rusage ru;
  while (wait4(pid, &st, 0, &ru) < 0)
    if (errno != EINTR)
      return -1;
  *ms = now_ms() - t0;
  *cpu_ms = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
            (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

enum { MAX_RUNS = 1000, MAX_STAGES = 8, MAX_ARGS = 64 };

/* cmd with "%N" replaced by run in each argument, into argv (bufs holds the
** arguments that changed). */
static void subst(char **cmd, int run, char **argv, char bufs[][512]) {
  int i = 0;
  for (; cmd[i] && i < MAX_ARGS - 1; i++) {
    const char *at = strstr(cmd[i], "%N");
    if (!at) {
      argv[i] = cmd[i];
      continue;
    }
    snprintf(bufs[i], 512, "%.*s%d%s", (int)(at - cmd[i]), cmd[i], run, at + 2);
    argv[i] = bufs[i];
  }
  argv[i] = NULL;
}

int main(int argc, char **argv) {
  if (argc < 4 || (strcmp(argv[1], "spawn") != 0 && strcmp(argv[1], "aot") != 0)) {
    fprintf(stderr, "usage: wfp-bench-proc spawn|aot RUNS CMD [ARG...]\n");
    return 2;
  }
  int aot = strcmp(argv[1], "aot") == 0;
  int runs = atoi(argv[2]);
  if (runs < 1 || runs > MAX_RUNS) {
    fprintf(stderr, "wfp-bench-proc: RUNS must be in 1..%d\n", MAX_RUNS);
    return 2;
  }
  char **cmd = argv + 3;
  if (argc - 3 >= MAX_ARGS) {
    fprintf(stderr, "wfp-bench-proc: at most %d arguments\n", MAX_ARGS - 1);
    return 2;
  }
  static char *run_argv[MAX_ARGS];
  static char bufs[MAX_ARGS][512];
  static double wall[MAX_RUNS], cpu[MAX_RUNS], stage[MAX_STAGES][MAX_RUNS];
  static char names[MAX_STAGES][32];
  int nstages = 0;
  char err[8192];
  double ms, cms;
  subst(cmd, 0, run_argv, bufs);
  if (run_once(run_argv, aot ? err : NULL, sizeof err, &ms, &cms) != 0) {
    fprintf(stderr, "wfp-bench-proc: the command failed: %s\n", aot ? err : cmd[0]);
    return 1;
  }
  for (int r = 0; r < runs; r++) {
    subst(cmd, r + 1, run_argv, bufs);
    if (run_once(run_argv, aot ? err : NULL, sizeof err, &wall[r], &cpu[r]) != 0) {
      fprintf(stderr, "wfp-bench-proc: the command failed: %s\n", aot ? err : cmd[0]);
      return 1;
    }
    if (!aot)
      continue;
    /* lines "wfp-aot: <stage name> <ms> ms"; the name may hold spaces */
    int k = 0;
    for (char *line = strtok(err, "\n"); line; line = strtok(NULL, "\n")) {
      if (strncmp(line, "wfp-aot: ", 9) != 0 || k >= MAX_STAGES)
        continue;
      char *end = line + strlen(line);
      if (end - line < 12 || strcmp(end - 3, " ms") != 0)
        continue;
      end[-3] = 0;
      char *num = strrchr(line, ' ');
      if (!num)
        continue;
      stage[k][r] = strtod(num + 1, NULL);
      while (num > line + 9 && num[-1] == ' ')
        num--;
      *num = 0;
      if (r == 0)
        snprintf(names[k], sizeof names[k], "%s", line + 9);
      k++;
    }
    if (r == 0)
      nstages = k;
    else if (k != nstages) {
      fprintf(stderr, "wfp-bench-proc: the stage lines changed between runs\n");
      return 1;
    }
  }
  printf("runs %d\n", runs);
  printf("wall_ms_median %.3f\n", median(wall, runs));
  printf("wall_ms_min %.3f\n", wall[0]); /* sorted by median() */
  printf("cpu_ms_median %.3f\n", median(cpu, runs));
  for (int k = 0; k < nstages; k++) {
    /* "front end" -> stage_front_end_ms_median: one word per key */
    for (char *p = names[k]; *p; p++)
      if (*p == ' ')
        *p = '_';
    printf("stage_%s_ms_median %.3f\n", names[k], median(stage[k], runs));
  }
  return 0;
}
