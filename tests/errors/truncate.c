/*
** truncate.c: loads every corpus and example file cut at every 7th length
** and checks that the front end never crashes and always explains a refusal.
** It does not check which diagnostic comes out; the sanitizers do the rest.
*/
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wfp/ir.h"

/* 7 is prime and small: cuts land in every kind of token across the files */
#define STEP 7

static int failures;
static long loads;

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcmp(s + a - b, suffix) == 0;
}

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  while (buf) {
    size_t got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (n < cap)
      break;
    cap *= 2;
    char *nb = realloc(buf, cap);
    if (!nb)
      free(buf);
    buf = nb;
  }
  fclose(f);
  *len = n;
  return buf;
}

/* One load of the first len bytes. The prefix is copied into a buffer of
** exactly len bytes, with no NUL after it, so that AddressSanitizer sees any
** read past the length the front end was given. */
static void load_prefix(const char *name, const char *text, size_t len) {
  char *buf = malloc(len ? len : 1);
  wfp_program *p = wfp_program_new(NULL);
  if (!buf || !p) {
    printf("FAIL %s: out of memory\n", name);
    failures++;
    free(buf);
    wfp_program_free(p);
    return;
  }
  memcpy(buf, text, len);
  int rc = wfp_program_load_mem(p, name, buf, len);
  loads++;
  if (rc != 0) {
    int explained = 0;
    for (size_t i = 0; i < wfp_program_diag_count(p); i++) {
      const wfp_diag *d = wfp_program_diag(p, i);
      if (d && d->msg && d->msg[0])
        explained = 1;
    }
    if (!explained) {
      printf("FAIL %s cut at %zu: %s without a diagnostic message\n", name, len,
             wfp_err_name(rc));
      failures++;
    }
    /* a cut file is the user's fault; an internal error is the front end's */
    if (rc != WFP_ESYNTAX && rc != WFP_EPROGRAM) {
      printf("FAIL %s cut at %zu: load returned %s, not ESYNTAX or EPROGRAM\n",
             name, len, wfp_err_name(rc));
      failures++;
    }
  }
  wfp_program_free(p);
  free(buf);
}

static int run_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) {
    printf("FAIL: cannot open %s: %s\n", dir, strerror(errno));
    failures++;
    return 0;
  }
  int files = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (!ends_with(de->d_name, ".json"))
      continue;
    size_t n = strlen(dir) + strlen(de->d_name) + 2;
    char *path = malloc(n);
    if (!path)
      break;
    snprintf(path, n, "%s/%s", dir, de->d_name);
    size_t len = 0;
    char *text = slurp(path, &len);
    if (!text) {
      printf("FAIL %s: cannot read it\n", path);
      failures++;
    } else {
      for (size_t cut = 0; cut < len; cut += STEP)
        load_prefix(de->d_name, text, cut);
      files++;
    }
    free(text);
    free(path);
  }
  closedir(d);
  return files;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: truncate DIR...\n");
    return 2;
  }
  int files = 0;
  for (int i = 1; i < argc; i++) {
    int n = run_dir(argv[i]);
    /* an empty directory would make the test pass without testing */
    if (n == 0) {
      printf("FAIL: no *.json files in %s\n", argv[i]);
      failures++;
    }
    files += n;
  }
  printf("%d files, %ld loads, %d failure%s\n", files, loads, failures,
         failures == 1 ? "" : "s");
  return failures ? 1 : 0;
}
