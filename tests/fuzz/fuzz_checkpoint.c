/*
** fuzz_checkpoint.c: the checkpoint reader (wfp_invocation_restore) on
** arbitrary bytes, against the module of state.program.json. Each input is
** tried as it is and, when it has a checkpoint's header line, once more
** re-signed (its SHA-256 recomputed), so that mutations reach the body and
** not only the checksum. A checkpoint that restores must be written back
** unchanged (restore, checkpoint, restore, checkpoint: the same bytes) and
** then run: its pending effect performed and a few steps taken, under small
** limits. Effects that wait or touch files (sleep_ms, db_query) are not
** performed: the environments have an in-memory database, so a checkpoint
** never names a file the fuzzer would open.
*/
#include <string.h>

#include <cjson/cJSON.h>

#include "fuzz.h"
#include "util.h"
#include "wfp/host.h"

static wfp_module *mod;
static wfp_env *env1, *env2;

#define MAGIC "WFPC1 "
#define HEADER_LEN (sizeof MAGIC - 1 + 64 + 1)

static wfp_env *new_env(void) {
  char err[512];
  wfp_env *e = wfp_env_new();
  if (!e || wfp_env_open_db(e, NULL, err, sizeof err)) {
    fprintf(stderr, "fuzz_checkpoint: cannot open a database: %s\n", e ? err : "");
    exit(1);
  }
  return e;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  const char *path = getenv("WFP_FUZZ_MODULE");
  if (!path || !*path)
    path = WFP_FUZZ_MODULE;
  wfp_host_diag hd;
  if (wfp_module_load(path, &mod, &hd)) {
    fprintf(stderr, "fuzz_checkpoint: %s: %s\n", path, hd.d.msg);
    exit(1);
  }
  env1 = new_env();
  env2 = new_env();
  return 0;
}

/* The effect a restored invocation waits on, from its pending JSON. */
static int safe_to_perform(const char *pending) {
  cJSON *j = cJSON_Parse(pending);
  FUZZ_CHECK(j, "the pending effect is not JSON: %s", pending);
  const cJSON *eff = cJSON_GetObjectItemCaseSensitive(j, "effect");
  FUZZ_CHECK(cJSON_IsString(eff), "the pending effect has no name: %s", pending);
  int ok = strcmp(eff->valuestring, "sleep-ms") != 0 &&
           strcmp(eff->valuestring, "db-query") != 0;
  cJSON_Delete(j);
  return ok;
}

/* Performs and steps a few times; the invocation ends, traps or waits. */
static void drive(wfp_invocation *inv) {
  wfp_invocation_set_fuel(inv, 100000, 1000);
  for (int k = 0; k < 6; k++) {
    const char *pending = wfp_invocation_pending_json(inv);
    if (!pending)
      return;
    if (!safe_to_perform(pending))
      return;
    int rc = wfp_invocation_perform(inv);
    FUZZ_CHECK(rc == 0 || rc == WFP_ENOMEM, "perform: %s", wfp_err_name(rc));
    if (rc)
      return;
    rc = wfp_invocation_step(inv);
    FUZZ_CHECK(rc == WFP_DONE || rc == WFP_TRAP || rc == WFP_PENDING || rc == WFP_ENOMEM,
               "step: %d", rc);
    if (rc == WFP_DONE) {
      const char *out = wfp_invocation_output(inv);
      cJSON *j = out ? cJSON_Parse(out) : NULL;
      FUZZ_CHECK(j, "the output is not JSON: %s", out ? out : "(none)");
      cJSON_Delete(j);
    }
    if (rc == WFP_TRAP)
      FUZZ_CHECK(wfp_invocation_trap_message(inv), "a trap without a message");
    if (rc != WFP_PENDING)
      return;
  }
}

static void try_restore(const char *data, size_t size) {
  wfp_host_diag hd;
  memset(&hd, 0, sizeof hd);
  wfp_invocation *inv = (wfp_invocation *)&inv; /* restore must set it */
  int rc = wfp_invocation_restore(mod, env1, data, size, &inv, &hd);
  FUZZ_CHECK(rc == 0 || rc == WFP_ECORRUPT || rc == WFP_EFOREIGN || rc == WFP_ENOMEM ||
                 rc == WFP_EIO,
             "restore returned %d (%s)", rc, wfp_err_name(rc));
  if (rc) {
    FUZZ_CHECK(inv == NULL, "a refused restore left an invocation");
    FUZZ_CHECK(rc == WFP_ENOMEM || (hd.d.msg && hd.d.msg[0]),
               "a refused restore without a message");
    return;
  }
  FUZZ_CHECK(inv, "restore succeeded without an invocation");
  FUZZ_CHECK(wfp_invocation_pending_json(inv), "a restored invocation waits on nothing");
  /* written back, read again, written again: the same bytes */
  char *c1 = NULL, *c2 = NULL;
  size_t n1 = 0, n2 = 0;
  rc = wfp_invocation_checkpoint(inv, &c1, &n1);
  FUZZ_CHECK(rc == 0 || rc == WFP_ENOMEM, "checkpoint: %s", wfp_err_name(rc));
  if (rc == 0) {
    wfp_invocation *again = NULL;
    rc = wfp_invocation_restore(mod, env2, c1, n1, &again, &hd);
    FUZZ_CHECK(rc == 0 || rc == WFP_ENOMEM, "a checkpoint just written is refused: %s",
               hd.d.msg ? hd.d.msg : "");
    if (rc == 0 && wfp_invocation_checkpoint(again, &c2, &n2) == 0) {
      if (n1 != n2 || memcmp(c1, c2, n1) != 0)
        fprintf(stderr, "first:\n%.*s\nsecond:\n%.*s\n", (int)n1, c1, (int)n2, c2);
      FUZZ_CHECK(n1 == n2 && memcmp(c1, c2, n1) == 0,
                 "a checkpoint restored and written again differs");
    }
    wfp_invocation_free(again);
  }
  wfp_free(c1);
  wfp_free(c2);
  drive(inv);
  wfp_invocation_free(inv);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  try_restore((const char *)data, size);
  if (size < HEADER_LEN || memcmp(data, MAGIC, sizeof MAGIC - 1) != 0 ||
      data[HEADER_LEN - 1] != '\n')
    return 0;
  char *copy = malloc(size);
  if (!copy)
    return 0;
  memcpy(copy, data, size);
  uint8_t sum[32];
  char hex[65];
  wfp__sha256_buf(copy + HEADER_LEN, size - HEADER_LEN, sum);
  wfp__hex(sum, 32, hex);
  if (memcmp(copy + sizeof MAGIC - 1, hex, 64) != 0) {
    memcpy(copy + sizeof MAGIC - 1, hex, 64);
    try_restore(copy, size);
  }
  free(copy);
  return 0;
}
