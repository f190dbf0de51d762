/*
** run_corpus.c: loads every NNN-what.json of the error corpus with the front
** end and checks that it is refused with the diagnostic its .expect names.
** It does not compile anything (no codegen) and does not check valid programs.
*/
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wfp/ir.h"

/* What one .expect file says. Empty strings mean "not given". */
typedef struct expect {
  char path[512];
  char msg[512];
  char entry[128];
  int line, col; /* 0: not given */
} expect;

static int failures;

static void fail(const char *name, const char *fmt, const char *a,
                 const char *b) {
  failures++;
  printf("FAIL %s: ", name);
  printf(fmt, a, b);
  printf("\n");
}

static char *join(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *s = malloc(n);
  if (s)
    snprintf(s, n, "%s/%s", dir, name);
  return s;
}

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcmp(s + a - b, suffix) == 0;
}

static void chomp(char *s) {
  size_t n = strlen(s);
  while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
    s[--n] = 0;
}

/* Copies the value of "key: value" into out; 1 when line has that key. */
static int take(const char *line, const char *key, char *out, size_t cap) {
  size_t k = strlen(key);
  if (strncmp(line, key, k) != 0 || line[k] != ':' || line[k + 1] != ' ')
    return 0;
  snprintf(out, cap, "%s", line + k + 2);
  return 1;
}

/* Reads a .expect file. Returns NULL when it is fine, else what is wrong
** with it (an unknown key or a missing one is the corpus's own bug, and
** would otherwise make a case pass or fail for the wrong reason). */
static const char *read_expect(const char *file, expect *e) {
  memset(e, 0, sizeof *e);
  FILE *f = fopen(file, "r");
  if (!f)
    return "cannot open the .expect file";
  char line[1024], num[32];
  const char *bad = NULL;
  while (!bad && fgets(line, sizeof line, f)) {
    chomp(line);
    if (!line[0])
      continue;
    if (take(line, "path", e->path, sizeof e->path) ||
        take(line, "message", e->msg, sizeof e->msg) ||
        take(line, "entry", e->entry, sizeof e->entry))
      continue;
    if (take(line, "line", num, sizeof num))
      e->line = atoi(num);
    else if (take(line, "col", num, sizeof num))
      e->col = atoi(num);
    else
      bad = "unknown line in the .expect file (keys: path, line, col, message, entry)";
  }
  fclose(f);
  if (bad)
    return bad;
  if (!e->msg[0])
    return "the .expect file has no 'message:' line";
  if (!e->path[0] && (e->line <= 0 || e->col <= 0))
    return "the .expect file needs 'path:' or both 'line:' and 'col:'";
  if (e->path[0] && (e->line || e->col))
    return "the .expect file gives both a path and a line/col";
  return NULL;
}

static int matches(const wfp_diag *d, const expect *e) {
  if (!d->msg || !strstr(d->msg, e->msg))
    return 0;
  if (e->path[0])
    return d->path && strcmp(d->path, e->path) == 0;
  return d->line == e->line && d->col == e->col;
}

static void describe_expect(const expect *e, char *buf, size_t n) {
  if (e->path[0])
    snprintf(buf, n, "path '%s', message containing '%s'", e->path, e->msg);
  else
    snprintf(buf, n, "line %d col %d, message containing '%s'", e->line, e->col,
             e->msg);
}

static void run_case(const char *dir, const char *name) {
  char *json = join(dir, name);
  size_t base = strlen(name) - strlen(".json");
  char *ename = malloc(base + sizeof ".expect");
  if (!json || !ename) {
    fail(name, "%s%s", "out of memory", "");
    free(json);
    free(ename);
    return;
  }
  memcpy(ename, name, base);
  strcpy(ename + base, ".expect");
  char *epath = join(dir, ename);
  expect e;
  const char *bad = epath ? read_expect(epath, &e) : "out of memory";
  if (bad) {
    fail(name, "%s (%s)", bad, ename);
    goto out;
  }
  wfp_ir_opts o;
  memset(&o, 0, sizeof o);
  o.size = sizeof o;
  o.entry = e.entry[0] ? e.entry : NULL;
  wfp_program *p = wfp_program_new(&o);
  if (!p) {
    fail(name, "%s%s", "out of memory", "");
    goto out;
  }
  int rc = wfp_program_load_file(p, json);
  char want[1200];
  describe_expect(&e, want, sizeof want);
  if (rc != WFP_EPROGRAM && rc != WFP_ESYNTAX) {
    char got[64];
    snprintf(got, sizeof got, "%s (%d)", rc ? wfp_err_name(rc) : "accepted", rc);
    fail(name, "expected a refusal (EPROGRAM or ESYNTAX) with %s; got %s", want,
         got);
  } else {
    size_t n = wfp_program_diag_count(p);
    int found = 0;
    for (size_t i = 0; i < n && !found; i++) {
      const wfp_diag *d = wfp_program_diag(p, i);
      found = matches(d, &e);
      /* the contract says diagnostics name the file: the one we loaded */
      if (found && (!d->file || strcmp(d->file, json) != 0)) {
        fail(name, "diagnostic names file '%s', not '%s'",
             d->file ? d->file : "(null)", json);
        found = 1;
      }
    }
    if (!found) {
      fail(name, "expected %s%s; got:", want, "");
      for (size_t i = 0; i < n; i++) {
        char line[2048];
        wfp_diag_format(wfp_program_diag(p, i), line, sizeof line);
        printf("    %s\n", line);
      }
      if (n == 0)
        printf("    (no diagnostics)\n");
    }
  }
  wfp_program_free(p);
out:
  free(json);
  free(ename);
  free(epath);
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: run_corpus CORPUS_DIR\n");
    return 2;
  }
  const char *dir = argv[1];
  DIR *d = opendir(dir);
  if (!d) {
    fprintf(stderr, "run_corpus: cannot open %s: %s\n", dir, strerror(errno));
    return 2;
  }
  char **names = NULL;
  size_t n = 0, cap = 0;
  int orphans = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (ends_with(de->d_name, ".expect")) {
      /* an .expect without its .json is a renamed or deleted case */
      char *j = join(dir, de->d_name);
      if (j) {
        strcpy(j + strlen(j) - strlen(".expect"), ".json");
        FILE *f = fopen(j, "r");
        if (f)
          fclose(f);
        else {
          printf("FAIL %s: no .json next to it\n", de->d_name);
          orphans++;
        }
        free(j);
      }
      continue;
    }
    if (!ends_with(de->d_name, ".json"))
      continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 64;
      char **nn = realloc(names, cap * sizeof *nn);
      if (!nn)
        return 2;
      names = nn;
    }
    names[n] = strdup(de->d_name);
    if (!names[n])
      return 2;
    n++;
  }
  closedir(d);
  failures += orphans;
  if (n == 0) {
    printf("FAIL: no *.json cases in %s\n", dir);
    return 1;
  }
  /* sorted, so that the output reads in corpus order on every system */
  qsort(names, n, sizeof *names, cmp_names);
  for (size_t i = 0; i < n; i++) {
    run_case(dir, names[i]);
    free(names[i]);
  }
  free(names);
  printf("%zu cases, %d failure%s\n", n, failures, failures == 1 ? "" : "s");
  return failures ? 1 : 0;
}
