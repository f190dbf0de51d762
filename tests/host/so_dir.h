/*
** so_dir.h: what the host tests that run compiled modules share: the
** directory of the modules (their argument) and loading one of them, a
** failed load failing the test with the loader's message.
*/
#ifndef WFP_TEST_SO_DIR_H
#define WFP_TEST_SO_DIR_H

#include <stdio.h>

static const char *so_dir;

static wfp_module *load(const char *name) {
  char p[4096];
  snprintf(p, sizeof p, "%s/%s", so_dir, name);
  wfp_module *m = NULL;
  wfp_host_diag hd;
  if (wfp_module_load(p, &m, &hd))
    fail_msg("cannot load %s: %s", p, hd.d.msg);
  return m;
}

#endif
