/*
** fuzz_codegen.c: code generation on every program the front end accepts.
** The input is a program (JSON); one the checker refuses is dropped. An
** accepted program must lower to a module that Binaryen reads back and
** validates: a validation failure, a refusal or a Binaryen abort is a wfp
** bug (CONTRACT section 2: every invalid program is refused by the front
** end, so codegen sees only valid ones). Every program is lowered at -O0;
** one in eight (by a hash of its bytes, so a run is reproducible) at -O1
** too. wfp_codegen validates before it optimizes, so -O0 finds what is
** wfp's; -O1 runs Binaryen's optimizer over the whole module, guest
** runtime included, and costs ten times as much.
*/
#include <string.h>

#include <binaryen-c.h>

#include "fuzz.h"
#include "wfp/codegen.h"
#include "wfp/ir.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  return 0;
}

/* The bytes are a module Binaryen itself accepts. */
static void check_module(const unsigned char *wasm, size_t len, int level) {
  FUZZ_CHECK(len >= 8 && memcmp(wasm, "\0asm", 4) == 0, "-O%d: not a Wasm module", level);
  BinaryenModuleRef m = BinaryenModuleRead((char *)wasm, len);
  FUZZ_CHECK(m, "-O%d: Binaryen cannot read the module", level);
  FUZZ_CHECK(BinaryenModuleValidate(m), "-O%d: the module read back is invalid", level);
  BinaryenModuleDispose(m);
}

static uint32_t fnv(const uint8_t *p, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++)
    h = (h ^ p[i]) * 16777619u;
  return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  wfp_program *p = wfp_program_new(NULL);
  if (!p)
    return 0;
  if (wfp_program_load_mem(p, "fuzz.json", (const char *)data, size) != 0) {
    wfp_program_free(p);
    return -1; /* not a valid program: keep it out of the corpus */
  }
  int top = (fnv(data, size) & 7) == 0 ? 1 : 0;
  for (int level = 0; level <= top; level++) {
    wfp_cg_opts o;
    memset(&o, 0, sizeof o);
    o.size = sizeof o;
    o.opt_level = level;
    unsigned char *wasm = NULL;
    size_t len = 0;
    wfp_diag *err = NULL;
    int rc = wfp_codegen(p, &o, &wasm, &len, &err);
    if (rc == WFP_ENOMEM) {
      wfp_free(err);
      continue;
    }
    FUZZ_CHECK(rc == 0, "-O%d: codegen refused a valid program: %s: %s: %s", level,
               wfp_err_name(rc), err ? err->path : "", err ? err->msg : "");
    check_module(wasm, len, level);
    wfp_free(wasm);
  }
  wfp_program_free(p);
  return 0;
}
