/*
** regress.c: unit tests of the library fixes the fuzz targets led to, each
** through the public host API on the module of state.program.json (the
** inputs that found them are in corpus/; this says what was wrong).
** Only in builds without WFP_BUILD_FUZZ (cmocka).
*/
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "fuzz.h"
#include "util.h"
#include "wfp/host.h"

static wfp_module *mod;

/* wfp_invocation_restore, its message copied into err. */
static int restore(wfp_env *e, const char *data, size_t len, wfp_invocation **inv, char *err,
                   size_t errlen) {
  wfp_host_diag hd;
  memset(&hd, 0, sizeof hd);
  int rc = wfp_invocation_restore(mod, e, data, len, inv, &hd);
  snprintf(err, errlen, "%s", rc && hd.d.msg ? hd.d.msg : "");
  return rc;
}

static int load_module(void **state) {
  (void)state;
  wfp_host_diag hd;
  int rc = wfp_module_load(WFP_FUZZ_MODULE, &mod, &hd);
  if (rc)
    fprintf(stderr, "%s: %s\n", WFP_FUZZ_MODULE, hd.d.msg);
  return rc;
}

static int free_module(void **state) {
  (void)state;
  wfp_module_free(mod);
  return 0;
}

/* Runs main until its lambda sends its first message: then main's frame
** holds s (str "héllo"), j (json) and f (a fn value). Returns the
** checkpoint (wfp_free). */
static char *checkpoint_at_msg_send(size_t *len) {
  wfp_env *e = wfp_env_new();
  assert_non_null(e);
  assert_int_equal(wfp_env_ctx_set(e, "n", 5), 0);
  wfp_invocation *inv = NULL;
  assert_int_equal(wfp_invocation_new(mod, e, "{}", 2, &inv), 0);
  char *ck = NULL;
  for (int k = 0; k < 10 && !ck; k++) {
    assert_int_equal(wfp_invocation_step(inv), WFP_PENDING);
    if (strstr(wfp_invocation_pending_json(inv), "\"msg-send\""))
      assert_int_equal(wfp_invocation_checkpoint(inv, &ck, len), 0);
    else
      assert_int_equal(wfp_invocation_perform(inv), 0);
  }
  assert_non_null(ck);
  wfp_invocation_free(inv);
  wfp_env_free(e);
  return ck;
}

/* The JSON body of a checkpoint file. */
static cJSON *body_of(const char *ck, size_t len) {
  const char *nl = memchr(ck, '\n', len);
  assert_non_null(nl);
  cJSON *j = cJSON_ParseWithLength(nl + 1, len - (size_t)(nl + 1 - ck));
  assert_non_null(j);
  return j;
}

/* body as a checkpoint file, its SHA-256 computed: what anyone who can
** write the file can do. Frees body; the result is freed with free. */
static char *sign(cJSON *body, size_t *out_len) {
  char *text = cJSON_PrintUnformatted(body);
  assert_non_null(text);
  uint8_t sum[32];
  char hex[65];
  wfp__sha256_buf(text, strlen(text), sum);
  wfp__hex(sum, 32, hex);
  wfp__buf f;
  wfp__buf_init(&f);
  wfp__buf_printf(&f, "WFPC1 %s\n%s", hex, text);
  assert_false(f.oom);
  cJSON_free(text);
  cJSON_Delete(body);
  return wfp__buf_take(&f, out_len);
}

/* The checkpoint with `from` replaced by `to` (same length) inside its
** state bytes, the state's checksum and the file's SHA-256 recomputed. */
static char *forge(const char *ck, size_t len, const char *from, const char *to,
                   size_t *out_len) {
  cJSON *j = body_of(ck, len);
  cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "state");
  assert_true(cJSON_IsString(st));
  wfp__buf raw;
  wfp__buf_init(&raw);
  assert_true(wfp__base64_decode(st->valuestring, strlen(st->valuestring), &raw));
  size_t n = strlen(from);
  assert_int_equal(strlen(to), n);
  char *at = memmem(raw.data, raw.len, from, n);
  assert_non_null(at);
  memcpy(at, to, n);
  fuzz_state_resign((uint8_t *)raw.data, (uint32_t)raw.len);
  wfp__buf b64;
  wfp__buf_init(&b64);
  wfp__buf_add_base64(&b64, raw.data, raw.len);
  assert_false(b64.oom);
  cJSON_SetValuestring(st, b64.data);
  wfp__buf_free(&raw);
  wfp__buf_free(&b64);
  return sign(j, out_len);
}

/* Restores, performs the msg-send, takes one step: its result, and the
** trap message (copied into msg) when it traps. */
static int resume_once(const char *ck, size_t len, char *msg, size_t msglen) {
  wfp_env *e = wfp_env_new();
  assert_non_null(e);
  wfp_invocation *inv = NULL;
  char err[512] = "";
  int rc = restore(e, ck, len, &inv, err, sizeof err);
  if (rc)
    fprintf(stderr, "restore: %s\n", err);
  assert_int_equal(rc, 0);
  assert_int_equal(wfp_invocation_perform(inv), 0);
  rc = wfp_invocation_step(inv);
  msg[0] = 0;
  if (rc == WFP_TRAP)
    snprintf(msg, msglen, "%s", wfp_invocation_trap_message(inv));
  wfp_invocation_free(inv);
  wfp_env_free(e);
  return rc;
}

/* The forging itself changes nothing: the same state re-signed resumes. */
static void resigned_state_resumes(void **state) {
  (void)state;
  size_t len, flen;
  char *ck = checkpoint_at_msg_send(&len);
  char *f = forge(ck, len, "null", "null", &flen);
  char msg[512];
  assert_int_equal(resume_once(f, flen, msg, sizeof msg), WFP_PENDING);
  wfp_free(ck);
  free(f);
}

/* A json value of the state that is not JSON was used as it was: main
** returned it inside its output, which was then not JSON
** (corpus/state/regress-json-value-not-json). */
static void forged_json_value_is_refused(void **state) {
  (void)state;
  size_t len, flen;
  char *ck = checkpoint_at_msg_send(&len);
  char *f = forge(ck, len, "null", "nllu", &flen);
  char msg[512];
  assert_int_equal(resume_once(f, flen, msg, sizeof msg), WFP_TRAP);
  assert_true(strncmp(msg, "invalid state:", 14) == 0);
  wfp_free(ck);
  free(f);
  /* and white space where the guest writes none */
  ck = checkpoint_at_msg_send(&len);
  f = forge(ck, len, "[1,", "[ 1", &flen);
  assert_int_equal(resume_once(f, flen, msg, sizeof msg), WFP_TRAP);
  assert_true(strncmp(msg, "invalid state:", 14) == 0);
  wfp_free(ck);
  free(f);
}

/* Likewise a str value that is not UTF-8. */
static void forged_str_value_is_refused(void **state) {
  (void)state;
  size_t len, flen;
  char *ck = checkpoint_at_msg_send(&len);
  char *f = forge(ck, len, "h\xc3\xa9llo", "h\xc3(llo", &flen);
  char msg[512];
  assert_int_equal(resume_once(f, flen, msg, sizeof msg), WFP_TRAP);
  assert_true(strncmp(msg, "invalid state:", 14) == 0);
  wfp_free(ck);
  free(f);
}

/* A checkpoint whose input has a "self" that is no handle was refused
** with WFP_EINVAL, a code restore does not document, and no message
** (corpus/checkpoint/regress-self-not-a-handle). */
static void restore_refuses_self_not_a_handle(void **state) {
  (void)state;
  size_t len, flen;
  char *ck = checkpoint_at_msg_send(&len);
  cJSON *j = body_of(ck, len);
  cJSON_ReplaceItemInObjectCaseSensitive(j, "input", cJSON_CreateString("{\"self\":0}"));
  char *f = sign(j, &flen);
  wfp_env *e = wfp_env_new();
  wfp_invocation *inv = (wfp_invocation *)&inv;
  char err[512] = "";
  assert_int_equal(restore(e, f, flen, &inv, err, sizeof err),
                   WFP_ECORRUPT);
  assert_null(inv);
  assert_non_null(strstr(err, "self"));
  wfp_env_free(e);
  wfp_free(ck);
  free(f);
}

/* Restores body signed; the code, with the message in err. */
static int restore_signed(cJSON *body, char *err, size_t errlen) {
  size_t flen;
  char *f = sign(body, &flen);
  wfp_env *e = wfp_env_new();
  wfp_invocation *inv = NULL;
  err[0] = 0;
  int rc = restore(e, f, flen, &inv, err, errlen);
  wfp_invocation_free(inv);
  wfp_env_free(e);
  free(f);
  return rc;
}

/* A checkpoint's JSON operands were taken as they were and printed raw:
** an effect whose payload is not JSON made wfp_invocation_pending_json
** (and the trace) not JSON (corpus/checkpoint/regress-each-not-json), and
** so did a message whose payload is not JSON, in the report. An effect
** kind beyond int64_t was converted before its range was checked (UBSan). */
static void restore_checks_json_operands(void **state) {
  (void)state;
  size_t len;
  char *ck = checkpoint_at_msg_send(&len);
  char err[512];
  /* the checkpoint as it is restores */
  assert_int_equal(restore_signed(body_of(ck, len), err, sizeof err), 0);
  cJSON *j = body_of(ck, len);
  cJSON *eff = cJSON_GetObjectItemCaseSensitive(j, "effect");
  cJSON_ReplaceItemInObjectCaseSensitive(eff, "s1", cJSON_CreateString("[1,"));
  assert_int_equal(restore_signed(j, err, sizeof err), WFP_ECORRUPT);
  assert_non_null(strstr(err, "not JSON"));
  /* db-query's each */
  j = body_of(ck, len);
  eff = cJSON_GetObjectItemCaseSensitive(j, "effect");
  cJSON_ReplaceItemInObjectCaseSensitive(eff, "kind", cJSON_CreateNumber(WFP_EFFECT_DB_QUERY));
  cJSON_ReplaceItemInObjectCaseSensitive(eff, "s1", cJSON_CreateString("[]"));
  cJSON_ReplaceItemInObjectCaseSensitive(eff, "s2", cJSON_CreateString("{\"fn\":\"a\""));
  assert_int_equal(restore_signed(j, err, sizeof err), WFP_ECORRUPT);
  /* a message sent before */
  j = body_of(ck, len);
  cJSON *m = cJSON_CreateArray();
  cJSON_AddItemToArray(m, cJSON_CreateString("t"));
  cJSON_AddItemToArray(m, cJSON_CreateString("nope"));
  cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(j, "messages"), m);
  assert_int_equal(restore_signed(j, err, sizeof err), WFP_ECORRUPT);
  /* an effect kind no integer type holds */
  j = body_of(ck, len);
  eff = cJSON_GetObjectItemCaseSensitive(j, "effect");
  cJSON_ReplaceItemInObjectCaseSensitive(eff, "kind", cJSON_CreateNumber(1e300));
  assert_int_equal(restore_signed(j, err, sizeof err), WFP_ECORRUPT);
  wfp_free(ck);
}

/* Runs greet with input text; the result, and the output or trap message
** in out. */
static int greet(const char *input, char *out, size_t outlen) {
  wfp_env *e = wfp_env_new();
  assert_non_null(e);
  assert_int_equal(wfp_env_ctx_set(e, "n", 5), 0);
  wfp_invocation *inv = NULL;
  assert_int_equal(wfp_invocation_new(mod, e, input, strlen(input), &inv), 0);
  int rc = wfp_invocation_run(inv, 100);
  const char *r = rc == WFP_DONE ? wfp_invocation_output(inv) : wfp_invocation_trap_message(inv);
  snprintf(out, outlen, "%s", r ? r : "");
  wfp_invocation_free(inv);
  wfp_env_free(e);
  return rc;
}

/* The guest reads JSON strings eight plain bytes at a time since the state
** checks above: every special byte (quote, backslash, control character,
** start of a multi-byte character, a byte that is no UTF-8) is still seen
** at each of the sixteen positions around a word. */
static void json_strings_at_every_offset(void **state) {
  (void)state;
  static const struct {
    const char *raw, *decoded; /* decoded NULL: the input is refused */
  } cases[] = {{"\\\"", "\\\""}, {"\\\\", "\\\\"}, {"\\n", "\\n"},
               {"\xc3\xa9", "\xc3\xa9"}, {"\\u00e9", "\xc3\xa9"},
               {"\x01", NULL}, {"\x1f", NULL}, {"\xff", NULL}, {"\xc3", NULL},
               {"\"", NULL}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
    for (int k = 0; k < 16; k++) {
      char input[256], out[512], want[256];
      snprintf(input, sizeof input,
               "{\"fn\":\"greet\",\"args\":{\"who\":\"%.*s%sxyz\",\"opts\":{\"x\":1}}}", k,
               "abcdefghijklmnop", cases[c].raw);
      int rc = greet(input, out, sizeof out);
      if (!cases[c].decoded) {
        assert_int_equal(rc, WFP_TRAP);
        continue;
      }
      assert_int_equal(rc, WFP_DONE);
      snprintf(want, sizeof want, "{\"hi\":\"%.*s%sxyz\"", k, "abcdefghijklmnop",
               cases[c].decoded);
      if (strncmp(out, want, strlen(want)) != 0)
        fail_msg("case %zu at %d: %s, want %s...", c, k, out, want);
    }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(resigned_state_resumes),
      cmocka_unit_test(forged_json_value_is_refused),
      cmocka_unit_test(forged_str_value_is_refused),
      cmocka_unit_test(restore_refuses_self_not_a_handle),
      cmocka_unit_test(restore_checks_json_operands),
      cmocka_unit_test(json_strings_at_every_offset),
  };
  return cmocka_run_group_tests(tests, load_module, free_module);
}
