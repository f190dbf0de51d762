/*
** test_checkpoint.c: the checkpoint reader against damaged and forged
** checkpoints of real modules: every truncation and byte flip refused;
** every re-signed mutation of the body refused cleanly (the environment as
** it was) or restored into an invocation that runs; each field checked
** against the module; limits carried; HMAC keys. Usage: test_checkpoint
** SO_DIR (the e2e modules).
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "host_int.h"
#include "so_dir.h"

/* An environment with something in every part: a context key, a message,
** an instance (handle 1) of Account. */
static wfp_env *busy_env(wfp_module *m) {
  wfp_env *e = wfp_env_new();
  uint64_t h;
  assert_non_null(e);
  assert_int_equal(wfp_env_ctx_set(e, "seen", 5), 0);
  assert_int_equal(wfp__env_msg_add(e, "log", 3, "{\"hello\":[1,\"x\"]}", 17), 0);
  assert_int_equal(wfp_env_instance_new(e, m, "Account", &h), 0);
  assert_int_equal(h, 1);
  assert_int_equal(wfp_env_instance_set(e, h, "balance", "100"), 0);
  assert_int_equal(wfp_env_instance_set(e, h, "transactions", "3"), 0);
  return e;
}

/* A real checkpoint of bank-account's transferTo, pending on its step-th
** effect (2: self_set, 5: msg_send). */
static char *make_ckpt(wfp_module *m, int step, const void *key, size_t klen, size_t *len) {
  wfp_env *e = busy_env(m);
  if (key)
    assert_int_equal(wfp_env_set_checkpoint_key(e, key, klen), 0);
  wfp_invocation *inv = NULL;
  const char *in = "{\"fn\":\"transferTo\",\"args\":{\"amount\":25},\"self\":1}";
  assert_int_equal(wfp_invocation_new(m, e, in, strlen(in), &inv), 0);
  assert_int_equal(wfp_invocation_set_max_steps(inv, 40), 0);
  assert_int_equal(wfp_invocation_set_fuel(inv, 100000, 5000), 0);
  for (int k = 1;; k++) {
    assert_int_equal(wfp_invocation_step(inv), WFP_PENDING);
    if (k == step)
      break;
    assert_int_equal(wfp_invocation_perform(inv), 0);
  }
  char *data = NULL;
  assert_int_equal(wfp_invocation_checkpoint(inv, &data, len), 0);
  wfp_invocation_free(inv);
  wfp_env_free(e);
  return data;
}

/* The body of a checkpoint (after its header line). */
static const char *body_of(const char *ck, size_t len, size_t *blen) {
  const char *nl = memchr(ck, '\n', len);
  assert_non_null(nl);
  *blen = len - (size_t)(nl + 1 - ck);
  return nl + 1;
}

/* A checkpoint of body signed anew: a checksum, or a MAC under key. */
static char *sign(const char *body, size_t blen, const void *key, size_t klen, size_t *len) {
  uint8_t sum[32];
  char hex[65];
  if (key)
    wfp__hmac_sha256(key, klen, body, blen, sum);
  else
    wfp__sha256_buf(body, blen, sum);
  wfp__hex(sum, 32, hex);
  wfp__buf b;
  wfp__buf_init(&b);
  wfp__buf_adds(&b, key ? "WFPC1 hmac-sha256 " : "WFPC1 ");
  wfp__buf_adds(&b, hex);
  wfp__buf_addc(&b, '\n');
  wfp__buf_add(&b, body, blen);
  assert_false(b.oom);
  return wfp__buf_take(&b, len);
}

/* ck without what lies from the first `from` up to (not including) the
** next `upto` of its body, signed anew. */
static char *cut(const char *ck, size_t len, const char *from, const char *upto,
                 size_t *olen) {
  size_t blen;
  const char *body = body_of(ck, len, &blen);
  const char *a = strstr(body, from);
  const char *b = a ? strstr(a, upto) : NULL;
  if (!b)
    fail_msg("'%s' ... '%s' is not in the checkpoint", from, upto);
  wfp__buf nb;
  wfp__buf_init(&nb);
  wfp__buf_add(&nb, body, (size_t)(a - body));
  wfp__buf_add(&nb, b, blen - (size_t)(b - body));
  char *r = sign(nb.data, nb.len, NULL, 0, olen);
  wfp__buf_free(&nb);
  return r;
}

/* ck with the first `from` of its body replaced by `to`, signed anew. */
static char *forge(const char *ck, size_t len, const char *from, const char *to,
                   size_t *olen) {
  size_t blen;
  const char *body = body_of(ck, len, &blen);
  const char *at = strstr(body, from);
  if (!at)
    fail_msg("'%s' is not in the checkpoint", from);
  wfp__buf nb;
  wfp__buf_init(&nb);
  wfp__buf_add(&nb, body, (size_t)(at - body));
  wfp__buf_adds(&nb, to);
  wfp__buf_add(&nb, at + strlen(from), blen - (size_t)(at - body) - strlen(from));
  char *r = sign(nb.data, nb.len, NULL, 0, olen);
  wfp__buf_free(&nb);
  return r;
}

/* Everything an environment holds, as text, to see that it did not move. */
static char *snapshot(const wfp_env *e) {
  wfp__buf b;
  wfp__buf_init(&b);
  for (size_t i = 0; i < wfp_env_ctx_count(e); i++)
    wfp__buf_printf(&b, "ctx %s=%lld\n", wfp_env_ctx_key(e, i),
                    (long long)wfp_env_ctx_value(e, i));
  for (size_t i = 0; i < wfp_env_message_count(e); i++)
    wfp__buf_printf(&b, "msg %s %s\n", wfp_env_message_topic(e, i),
                    wfp_env_message_payload(e, i));
  for (size_t i = 0; i < wfp_env_instance_count(e); i++) {
    uint64_t h = wfp_env_instance_handle(e, i);
    wfp__buf_printf(&b, "inst %llu %s", (unsigned long long)h, wfp_env_instance_resource(e, h));
    for (size_t k = 0; k < wfp_env_instance_prop_count(e, h); k++)
      wfp__buf_printf(&b, " %s=%s", wfp_env_instance_prop_name(e, h, k),
                      wfp_env_instance_prop_value(e, h, k));
    wfp__buf_addc(&b, '\n');
  }
  wfp__buf_printf(&b, "next %llu db %s\n", (unsigned long long)e->next_handle,
                  e->db_path ? e->db_path : "-");
  return wfp__buf_take(&b, NULL);
}

/* An environment unlike any checkpoint's, to restore into. */
static wfp_env *other_env(wfp_module *m) {
  wfp_env *e = wfp_env_new();
  uint64_t h;
  assert_int_equal(wfp_env_ctx_set(e, "before", -7), 0);
  assert_int_equal(wfp__env_msg_add(e, "old", 3, "\"o\"", 3), 0);
  assert_int_equal(wfp_env_instance_new(e, m, "Account", &h), 0);
  assert_int_equal(wfp_env_instance_new(e, m, "Account", &h), 0);
  return e;
}

typedef struct outcome {
  int rc;
  char path[128];
  char msg[640];
  int status; /* after running a restored invocation */
} outcome;

/* Restores ck into a fresh busy environment: a refusal must leave it as it
** was; a restored invocation must run to its end. */
static outcome try_restore(wfp_module *m, const char *ck, size_t len, const void *key,
                           size_t klen) {
  outcome o;
  memset(&o, 0, sizeof o);
  wfp_env *e = other_env(m);
  if (key)
    assert_int_equal(wfp_env_set_checkpoint_key(e, key, klen), 0);
  char *before = snapshot(e);
  wfp_invocation *inv = NULL;
  wfp_host_diag hd;
  memset(&hd, 0x5a, sizeof hd);
  o.rc = wfp_invocation_restore(m, e, ck, len, &inv, &hd);
  if (o.rc) {
    assert_null(inv);
    assert_int_equal(hd.d.code, o.rc);
    assert_non_null(hd.d.msg);
    assert_non_null(hd.d.path);
    snprintf(o.path, sizeof o.path, "%s", hd.d.path);
    snprintf(o.msg, sizeof o.msg, "%s", hd.d.msg);
    char *after = snapshot(e);
    if (strcmp(before, after) != 0)
      fail_msg("a refused restore (%s) changed the environment:\n%s---\n%s", o.msg, before,
               after);
    free(after);
  } else {
    assert_non_null(inv);
    o.status = wfp_invocation_run(inv, 0);
    wfp_invocation_free(inv);
  }
  free(before);
  wfp_env_free(e);
  return o;
}

/* ---- damage: every cut and every flip, refused ---- */

static void truncations_and_flips_are_refused(void **state) {
  (void)state;
  wfp_module *m = load("bank-account.so");
  size_t len;
  char *ck = make_ckpt(m, 2, NULL, 0, &len);
  /* the untouched one restores and finishes */
  outcome o = try_restore(m, ck, len, NULL, 0);
  assert_int_equal(o.rc, 0);
  assert_int_equal(o.status, WFP_DONE);
  for (size_t n = 0; n < len; n++) {
    o = try_restore(m, ck, n, NULL, 0);
    if (o.rc != WFP_ECORRUPT)
      fail_msg("cut at %zu of %zu: %d", n, len, o.rc);
  }
  static const uint8_t masks[] = {0x01, 0x02, 0x20, 0x80, 0xff};
  for (size_t p = 0; p < len; p++)
    for (size_t k = 0; k < sizeof masks; k++) {
      ck[p] = (char)(ck[p] ^ masks[k]);
      o = try_restore(m, ck, len, NULL, 0);
      ck[p] = (char)(ck[p] ^ masks[k]);
      if (o.rc != WFP_ECORRUPT)
        fail_msg("byte %zu ^ %02x: %d", p, masks[k], o.rc);
      assert_non_null(strstr(o.msg, "invalid checkpoint: "));
    }
  free(ck);
  wfp_module_free(m);
}

/* ---- forgery: the body changed and signed anew ----
** Every byte of two real checkpoints replaced by characters that matter to
** JSON, every cut of the body: each is refused with a checkpoint fault or
** restores into an invocation that runs to a result (a changed digit of a
** balance is still a valid checkpoint); never a crash, a leak (ASan), or
** an environment half replaced. */
static void resigned_mutations_are_refused_or_run(void **state) {
  (void)state;
  wfp_module *m = load("bank-account.so");
  static const char subst[] = {'\0', '"', '\\', '0', '9', '-', '{', '}', '[', ']',
                               ',',  ':', 'x',  ' ', 'e', '.', (char)0xff, (char)0xc3};
  const uint8_t key[] = "0123456789abcdef0123456789abcdef";
  int accepted = 0, refused = 0;
  for (int which = 0; which < 2; which++) {
    bool keyed = which == 1;
    size_t len, blen;
    char *ck = make_ckpt(m, keyed ? 5 : 2, keyed ? key : NULL, 32, &len);
    const char *b = body_of(ck, len, &blen);
    char *body = malloc(blen);
    memcpy(body, b, blen);
    for (size_t p = 0; p <= blen; p++)
      for (size_t k = 0; k < (p < blen ? sizeof subst : 1); k++) {
        size_t n = p < blen ? blen : blen - 1; /* p == blen: cuts, below */
        char saved = p < blen ? body[p] : 0;
        if (p < blen) {
          if (body[p] == subst[k])
            continue;
          body[p] = subst[k];
        }
        size_t flen;
        char *f = sign(body, n, keyed ? key : NULL, 32, &flen);
        outcome o = try_restore(m, f, flen, keyed ? key : NULL, 32);
        free(f);
        if (p < blen)
          body[p] = saved;
        if (o.rc == 0) {
          accepted++;
          assert_true(o.status == WFP_DONE || o.status == WFP_TRAP);
        } else {
          refused++;
          if (o.rc != WFP_ECORRUPT && o.rc != WFP_EFOREIGN)
            fail_msg("byte %zu = %02x: code %d (%s)", p, (unsigned char)subst[k], o.rc, o.msg);
        }
      }
    /* every cut of the body, signed anew */
    for (size_t n = 0; n + 1 < blen; n++) {
      size_t flen;
      char *f = sign(body, n, keyed ? key : NULL, 32, &flen);
      outcome o = try_restore(m, f, flen, keyed ? key : NULL, 32);
      free(f);
      if (o.rc != WFP_ECORRUPT)
        fail_msg("body cut at %zu of %zu: %d", n, blen, o.rc);
    }
    free(body);
    free(ck);
  }
  /* both kinds happened: the test saw valid forgeries and refused ones */
  print_message("re-signed mutations: %d restored and ran, %d refused\n", accepted, refused);
  assert_true(accepted > 10 && refused > 1000);
  wfp_module_free(m);
}

/* ---- each field against the module ---- */

typedef struct forgery {
  const char *from, *to;
  int rc;
  const char *path; /* where the fault is reported */
} forgery;

static void fields_are_checked(void **state) {
  (void)state;
  wfp_module *m = load("bank-account.so");
  size_t len;
  char *ck2 = make_ckpt(m, 2, NULL, 0, &len); /* self_set balance 75 */
  size_t len5;
  char *ck5 = make_ckpt(m, 5, NULL, 0, &len5); /* msg_send */
  static const forgery cases[] = {
      {"\"kind\":6", "\"kind\":6.5", WFP_ECORRUPT, "$.effect.kind"},
      {"\"kind\":6", "\"kind\":1e300", WFP_ECORRUPT, "$.effect.kind"},
      {"\"kind\":6", "\"kind\":-1", WFP_ECORRUPT, "$.effect.kind"},
      {"\"kind\":6", "\"kind\":99999999999999999999", WFP_ECORRUPT, "$.effect.kind"},
      {"\"kind\":6", "\"kind\":\"6\"", WFP_ECORRUPT, "$.effect.kind"},
      {"\"kind\":6", "\"kind\":7", WFP_ECORRUPT, "$.effect.s0"},
      {"\"kind\":6", "\"kind\":5", WFP_ECORRUPT, "$.effect.s1"},
      {"\"s0\":\"balance\"", "\"s0\":\"owner\"", WFP_ECORRUPT, "$.effect.s0"},
      {"\"s1\":\"75\"", "\"s1\":\"\\\"x\\\"\"", WFP_ECORRUPT, "$.effect.s1"},
      {"\"s1\":\"75\"", "\"s1\":\"7 5\"", WFP_ECORRUPT, "$.effect.s1"},
      {"\"s2\":null", "\"s2\":\"{}\"", WFP_ECORRUPT, "$.effect.s2"},
      {"\"i\":\"0\"", "\"i\":\"5\"", WFP_ECORRUPT, "$.effect.i"},
      {"\"steps\":\"2\"", "\"steps\":\"0\"", WFP_ECORRUPT, "$.steps"},
      {"\"steps\":\"2\"", "\"steps\":\"-2\"", WFP_ECORRUPT, "$.steps"},
      {"\"steps\":\"2\"", "\"steps\":\"41\"", WFP_ECORRUPT, "$.steps"},
      {"\"steps\":\"2\"", "\"steps\":\"99999999999999999999\"", WFP_ECORRUPT, "$.steps"},
      {"\"fuel\":\"", "\"fuel\":\"100001", WFP_ECORRUPT, "$.fuel"},
      {"\"max_steps\":\"40\",", "", WFP_ECORRUPT, "$"},
      {"\"db\":null", "\"db\":null,\"db\":null", WFP_ECORRUPT, "$"},
      {"\"db\":null", "\"db\":\"relative.db\"", WFP_ECORRUPT, "$.db"},
      {"\"db\":null", "\"db\":\":memory:\"", WFP_ECORRUPT, "$.db"},
      {"\"version\":3", "\"version\":4", WFP_ECORRUPT, "$.version"},
      /* format 3's members: all of them, in range, and only in it */
      {"\"version\":3", "\"version\":2", WFP_ECORRUPT, "$"},
      {"\"row_steps\":\"0\",", "", WFP_ECORRUPT, "$"},
      {"\"row_steps\":\"0\"", "\"row_steps\":\"39\"", WFP_ECORRUPT, "$.steps"},
      {"\"row_steps\":\"0\"", "\"row_steps\":\"-1\"", WFP_ECORRUPT, "$.row_steps"},
      {"\"wake\":\"0\"", "\"wake\":\"5\"", WFP_ECORRUPT, "$.wake"},
      {"\"time_limit\":\"0\"", "\"time_limit\":\"x\"", WFP_ECORRUPT, "$.time_limit"},
      {"\"max_memory\":\"0\"", "\"max_memory\":0", WFP_ECORRUPT, "$.max_memory"},
      {"\"format\":\"wfp-checkpoint\"", "\"format\":\"other\"", WFP_ECORRUPT, "$.format"},
      {"\\\"fn\\\":\\\"transferTo\\\"", "\\\"fn\\\":\\\"nope\\\"", WFP_ECORRUPT, "$.input"},
      {"\\\"fn\\\":\\\"transferTo\\\"", "\\\"fn\\\":\\\"deposit\\\"", WFP_ECORRUPT, "$.state"},
      {"\\\"self\\\":1", "\\\"self\\\":2", WFP_ECORRUPT, "$.input"},
      {"\\\"self\\\":1", "\\\"self\\\":-1", WFP_ECORRUPT, "$.input"},
      {"\"input\":\"{", "\"input\":\"[{", WFP_ECORRUPT, "$.input"},
      {"\"resource\":\"Account\"", "\"resource\":\"Bank\"", WFP_ECORRUPT, "$.instances[0]"},
      {"[\"balance\",1,\"100\"]", "[\"balance\",2,\"100\"]", WFP_ECORRUPT,
       "$.instances[0].props[0]"},
      {"[\"balance\",1,\"100\"]", "[\"balance\",1,\"\\\"100\\\"\"]", WFP_ECORRUPT,
       "$.instances[0].props[0]"},
      {"[\"balance\",1,\"100\"]", "[\"owner\",1,\"100\"]", WFP_ECORRUPT,
       "$.instances[0].props[0]"},
      {",[\"transactions\",1,\"3\"]", "", WFP_ECORRUPT, "$.instances[0]"},
      {"\"handle\":\"1\"", "\"handle\":\"0\"", WFP_ECORRUPT, "$.instances[0]"},
      {"[\"seen\",\"5\"]", "[\"seen\",\"5\"],[\"seen\",\"6\"]", WFP_ECORRUPT, "$.ctx[1]"},
      {"[\"seen\",\"5\"]", "[\"seen\",5]", WFP_ECORRUPT, "$.ctx[0]"},
      {"[\"seen\",\"5\"]", "[\"se\\u0000en\",\"5\"]", WFP_ECORRUPT, "$.ctx[0]"},
      {"\"{\\\"hello\\\":[1,\\\"x\\\"]}\"", "\"{\\\"hello\\\":[1,\\\"x\\\"]\"", WFP_ECORRUPT,
       "$.messages[0]"},
      {"\"{\\\"hello\\\":[1,\\\"x\\\"]}\"", "\"{\\\"hello\\\":[1,\\\"x\\\"]}}\"", WFP_ECORRUPT,
       "$.messages[0]"},
      {"\"program\":\"", "\"program\":\"0", WFP_EFOREIGN, "$.program"},
      {"\"effect\":{", "\"effect\":{\"x\":1,", WFP_ECORRUPT, "$.effect"},
      {"{\"format\"", "{\"extra\":1,\"format\"", WFP_ECORRUPT, "$"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    size_t flen;
    char *f = forge(ck2, len, cases[i].from, cases[i].to, &flen);
    outcome o = try_restore(m, f, flen, NULL, 0);
    free(f);
    if (o.rc != cases[i].rc || strcmp(o.path, cases[i].path) != 0)
      fail_msg("case %zu (%s -> %s): code %d at '%s': %s", i, cases[i].from, cases[i].to,
               o.rc, o.path, o.msg);
  }
  /* the state: empty, another program's, damaged inside */
  char *s = strstr(ck2, "\"state\":\"");
  assert_non_null(s);
  s += 9;
  size_t slen = (size_t)(strchr(s, '"') - s);
  char st[512];
  assert_true(slen < sizeof st);
  memcpy(st, s, slen);
  st[slen] = 0;
  char to[600];
  size_t flen;
  const char *const bad_states[][2] = {
      /* an empty state would start the invocation over, repeating its
      ** effects */
      {"", "empty"},
      {"d2Zwcw==", "shorter than the state header"}, /* "wfps" */
  };
  for (size_t i = 0; i < 2; i++) {
    snprintf(to, sizeof to, "\"state\":\"%s\"", bad_states[i][0]);
    char from[600];
    snprintf(from, sizeof from, "\"state\":\"%s\"", st);
    char *f = forge(ck2, len, from, to, &flen);
    outcome o = try_restore(m, f, flen, NULL, 0);
    free(f);
    assert_int_equal(o.rc, WFP_ECORRUPT);
    assert_string_equal(o.path, "$.state");
    if (!strstr(o.msg, bad_states[i][1]))
      fail_msg("state '%s': %s", bad_states[i][0], o.msg);
  }
  /* one bit of the state's frames changed: its own checksum catches it */
  {
    char from[600];
    snprintf(from, sizeof from, "\"state\":\"%s\"", st);
    snprintf(to, sizeof to, "\"state\":\"%s\"", st);
    char *c = to + strlen("\"state\":\"") + 50; /* well inside the frames */
    *c = *c == 'A' ? 'B' : 'A';
    char *f = forge(ck2, len, from, to, &flen);
    outcome o = try_restore(m, f, flen, NULL, 0);
    free(f);
    assert_int_equal(o.rc, WFP_ECORRUPT);
    assert_string_equal(o.path, "$.state");
  }
  /* msg_send: the payload must be JSON within the depth limit */
  {
    char *f = forge(ck5, len5, "\"s1\":\"{", "\"s1\":\"x{", &flen);
    outcome o = try_restore(m, f, flen, NULL, 0);
    free(f);
    assert_int_equal(o.rc, WFP_ECORRUPT);
    assert_string_equal(o.path, "$.effect.s1");
    wfp__buf deep;
    wfp__buf_init(&deep);
    wfp__buf_adds(&deep, "\"s1\":\"");
    for (int d = 0; d < WFP_JSON_MAX_DEPTH + 1; d++)
      wfp__buf_addc(&deep, '[');
    for (int d = 0; d < WFP_JSON_MAX_DEPTH + 1; d++)
      wfp__buf_addc(&deep, ']');
    wfp__buf_adds(&deep, "\",\"s2\"");
    /* replace the whole payload operand */
    const char *p = strstr(ck5, "\"s1\":\"");
    const char *q = strstr(p, "\",\"s2\"");
    char *from = strndup(p, (size_t)(q - p) + 6);
    f = forge(ck5, len5, from, deep.data, &flen);
    o = try_restore(m, f, flen, NULL, 0);
    free(f);
    assert_int_equal(o.rc, WFP_ECORRUPT);
    assert_non_null(strstr(o.msg, "nested too deep"));
    /* at the limit it is fine */
    deep.len = 0;
    wfp__buf_adds(&deep, "\"s1\":\"");
    for (int d = 0; d < WFP_JSON_MAX_DEPTH; d++)
      wfp__buf_addc(&deep, '[');
    for (int d = 0; d < WFP_JSON_MAX_DEPTH; d++)
      wfp__buf_addc(&deep, ']');
    wfp__buf_adds(&deep, "\",\"s2\"");
    f = forge(ck5, len5, from, deep.data, &flen);
    o = try_restore(m, f, flen, NULL, 0);
    free(f);
    assert_int_equal(o.rc, 0);
    free(from);
    wfp__buf_free(&deep);
  }
  free(ck2);
  free(ck5);
  wfp_module_free(m);
}

/* A checkpoint names a database file: opened if it exists, never created
** (it used to be created where the checkpoint said). */
static void database_files_are_never_created(void **state) {
  (void)state;
  wfp_module *m = load("bank-account.so");
  size_t len, flen;
  char *ck = make_ckpt(m, 2, NULL, 0, &len);
  char dir[] = "/tmp/wfp-test-ckpt-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[256], to[300];
  snprintf(path, sizeof path, "%s/made-up.db", dir);
  snprintf(to, sizeof to, "\"db\":\"%s\"", path);
  char *f = forge(ck, len, "\"db\":null", to, &flen);
  outcome o = try_restore(m, f, flen, NULL, 0);
  assert_int_equal(o.rc, WFP_EIO);
  assert_string_equal(o.path, "$.db");
  assert_int_equal(access(path, F_OK), -1);
  /* an existing database is opened, and an environment with a database of
  ** its own keeps it */
  wfp_env *e = wfp_env_new();
  char err[256];
  assert_int_equal(wfp_env_open_db(e, path, err, sizeof err), 0);
  wfp_env_free(e);
  assert_int_equal(access(path, F_OK), 0);
  e = wfp_env_new();
  wfp_invocation *inv = NULL;
  assert_int_equal(wfp_invocation_restore(m, e, f, flen, &inv, NULL), 0);
  assert_non_null(e->db_path);
  assert_string_equal(e->db_path, path);
  wfp_invocation_free(inv);
  wfp_env_free(e);
  free(f);
  free(ck);
  unlink(path);
  rmdir(dir);
  wfp_module_free(m);
}

/* Every limit travels: a runaway stopped and restored still ends at its
** step limit (it used to run for ever), and the fuel limits hold. */
static void limits_are_carried(void **state) {
  (void)state;
  wfp_module *m = load("spin_forever.so");
  wfp_env *e = wfp_env_new();
  wfp_invocation *inv = NULL;
  assert_int_equal(wfp_invocation_new(m, e, "{}", 2, &inv), 0);
  assert_int_equal(wfp_invocation_set_max_steps(inv, 12), 0);
  assert_int_equal(wfp_invocation_set_fuel(inv, 0, 50), 0);
  assert_int_equal(wfp_invocation_set_time_limit(inv, 3600000), 0);
  assert_int_equal(wfp_invocation_set_memory_limit(inv, 64u << 20), 0);
  for (int k = 0; k < 5; k++) {
    assert_int_equal(wfp_invocation_step(inv), WFP_PENDING);
    assert_int_equal(wfp_invocation_perform(inv), 0);
  }
  assert_int_equal(wfp_invocation_step(inv), WFP_PENDING);
  char *ck;
  size_t len;
  assert_int_equal(wfp_invocation_checkpoint(inv, &ck, &len), 0);
  wfp_invocation_free(inv);
  wfp_env_free(e);

  e = wfp_env_new();
  assert_int_equal(wfp_invocation_restore(m, e, ck, len, &inv, NULL), 0);
  assert_int_equal(wfp_invocation_max_steps(inv), 12);
  assert_int_equal(wfp_invocation_time_limit(inv), 3600000);
  assert_int_equal(wfp_invocation_memory_limit(inv), 64u << 20);
  uint64_t mx, sl;
  wfp_invocation_fuel_limits(inv, &mx, &sl);
  assert_int_equal(mx, 0);
  assert_int_equal(sl, 50);
  assert_int_equal(wfp_invocation_run(inv, 0), WFP_TRAP);
  assert_string_equal(wfp_invocation_trap_message(inv), "step limit reached (12 steps)");
  assert_int_equal(wfp_invocation_steps(inv), 12);
  wfp_invocation_free(inv);
  /* a limit given again replaces the checkpoint's */
  assert_int_equal(wfp_invocation_restore(m, e, ck, len, &inv, NULL), 0);
  assert_int_equal(wfp_invocation_run(inv, 8), WFP_TRAP);
  assert_string_equal(wfp_invocation_trap_message(inv), "step limit reached (8 steps)");
  wfp_invocation_free(inv);
  /* fuel: its limit travels too */
  size_t flen;
  char *f = forge(ck, len, "\"fuel_max\":\"0\"", "\"fuel_max\":\"400\"", &flen);
  assert_int_equal(wfp_invocation_restore(m, e, f, flen, &inv, NULL), 0);
  assert_int_equal(wfp_invocation_run(inv, 0), WFP_TRAP);
  assert_string_equal(wfp_invocation_trap_message(inv), "fuel limit reached (400 units)");
  wfp_invocation_free(inv);
  free(f);
  /* a version-2 checkpoint (none of format 3's members) still reads: no
  ** time or memory limit; a version-1 one (no max_steps either): no limit */
  char *v2 = cut(ck, len, ",\"row_steps\"", ",\"effect\"", &flen);
  f = forge(v2, flen, "\"version\":3", "\"version\":2", &flen);
  assert_int_equal(wfp_invocation_restore(m, e, f, flen, &inv, NULL), 0);
  assert_int_equal(wfp_invocation_max_steps(inv), 12);
  assert_int_equal(wfp_invocation_time_limit(inv), 0);
  wfp_invocation_free(inv);
  char *g = forge(f, flen, "\"version\":2", "\"version\":1", &flen);
  free(f);
  f = forge(g, flen, "\"max_steps\":\"12\",", "", &flen);
  assert_int_equal(wfp_invocation_restore(m, e, f, flen, &inv, NULL), 0);
  assert_int_equal(wfp_invocation_max_steps(inv), 0);
  wfp_invocation_free(inv);
  free(v2);
  free(f);
  free(g);
  wfp_env_free(e);
  free(ck);
  wfp_module_free(m);
}

/* HMAC-SHA-256: a signed checkpoint restores with its key only; one
** without a MAC, re-signed with a plain checksum, or signed with another
** key is refused as tampered with. */
static void macs_are_checked(void **state) {
  (void)state;
  wfp_module *m = load("bank-account.so");
  const uint8_t key[] = "an example key of 32 bytes......";
  const uint8_t other[] = "another key of 32 bytes.........";
  size_t len, ulen, flen, blen;
  char *ck = make_ckpt(m, 2, key, 32, &len);
  char *plain = make_ckpt(m, 2, NULL, 0, &ulen);
  assert_memory_equal(ck, "WFPC1 hmac-sha256 ", 18);
  outcome o = try_restore(m, ck, len, key, 32);
  assert_int_equal(o.rc, 0);
  assert_int_equal(o.status, WFP_DONE);
  o = try_restore(m, ck, len, other, 32);
  assert_int_equal(o.rc, WFP_ECORRUPT);
  assert_non_null(strstr(o.msg, "MAC mismatch"));
  o = try_restore(m, ck, len, NULL, 0);
  assert_int_equal(o.rc, WFP_ECORRUPT);
  assert_non_null(strstr(o.msg, "resume it with its key"));
  o = try_restore(m, plain, ulen, key, 32);
  assert_int_equal(o.rc, WFP_ECORRUPT);
  assert_non_null(strstr(o.msg, "carries no MAC"));
  /* the signed body under a plain checksum: a downgrade, refused */
  const char *body = body_of(ck, len, &blen);
  char *f = sign(body, blen, NULL, 0, &flen);
  o = try_restore(m, f, flen, key, 32);
  assert_int_equal(o.rc, WFP_ECORRUPT);
  free(f);
  /* a changed body under the old MAC */
  f = malloc(len + 1);
  memcpy(f, ck, len);
  f[len] = 0;
  char *bal = strstr(f, "\"s1\":\"75\"");
  assert_non_null(bal);
  bal[6] = '9';
  o = try_restore(m, f, len, key, 32);
  assert_int_equal(o.rc, WFP_ECORRUPT);
  assert_non_null(strstr(o.msg, "MAC mismatch"));
  free(f);
  /* keys: at least 16 bytes; a long one works like its hash */
  wfp_env *e = wfp_env_new();
  assert_int_equal(wfp_env_set_checkpoint_key(e, "short", 5), WFP_EINVAL);
  uint8_t longkey[100];
  memset(longkey, 'k', sizeof longkey);
  assert_int_equal(wfp_env_set_checkpoint_key(e, longkey, sizeof longkey), 0);
  assert_int_equal(wfp_env_set_checkpoint_key(e, NULL, 0), 0);
  wfp_env_free(e);
  char *lk = make_ckpt(m, 2, longkey, sizeof longkey, &flen);
  o = try_restore(m, lk, flen, longkey, sizeof longkey);
  assert_int_equal(o.rc, 0);
  free(lk);
  free(ck);
  free(plain);
  wfp_module_free(m);
}

/* A checkpoint of another program: EFOREIGN naming both hashes. */
static void foreign_checkpoints_name_both_programs(void **state) {
  (void)state;
  wfp_module *m = load("bank-account.so"), *s = load("simple.so");
  size_t len;
  char *ck = make_ckpt(m, 2, NULL, 0, &len);
  wfp_env *e = wfp_env_new();
  wfp_invocation *inv = NULL;
  wfp_host_diag hd;
  assert_int_equal(wfp_invocation_restore(s, e, ck, len, &inv, &hd), WFP_EFOREIGN);
  assert_non_null(strstr(hd.d.msg, wfp_module_hash(m)));
  assert_non_null(strstr(hd.d.msg, wfp_module_hash(s)));
  assert_null(hd.d.file);
  assert_string_equal(hd.d.path, "$.program");
  char line[1024];
  wfp_diag_format(&hd.d, line, sizeof line);
  assert_non_null(strstr(line, "$.program: error: the checkpoint was written for program"));
  wfp_env_free(e);
  free(ck);
  wfp_module_free(m);
  wfp_module_free(s);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: test_checkpoint SO_DIR\n");
    return 2;
  }
  so_dir = argv[1];
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(truncations_and_flips_are_refused),
      cmocka_unit_test(resigned_mutations_are_refused_or_run),
      cmocka_unit_test(fields_are_checked),
      cmocka_unit_test(database_files_are_never_created),
      cmocka_unit_test(limits_are_carried),
      cmocka_unit_test(macs_are_checked),
      cmocka_unit_test(foreign_checkpoints_name_both_programs),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
