/*
** test_resume.c: the typed resume path (the descriptor's resume_step: an i64
** as 8 bytes, none as nothing) against the text path (run_step, the resume
** as JSON), on real compiled modules: the same reports and trace lines,
** errors included; a checkpoint taken on one path resumed on the other; a
** typed i64 where an effect returns nothing; the instance a run holds
** across its steps. Usage: test_resume SO_DIR.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "host_int.h"
#include "so_dir.h"

/* The trace of a run: every line, one after the other. */
typedef struct trace {
  char text[65536];
  size_t len;
} trace;

static void on_trace(void *ud, const char *line) {
  trace *t = ud;
  int n = snprintf(t->text + t->len, sizeof t->text - t->len, "%s\n", line);
  assert_true(n > 0 && (size_t)n < sizeof t->text - t->len);
  t->len += (size_t)n;
}

/* Runs input on m with the context keys/values (ctx: "k=v" pairs, NULL
** ended) and, when instance is set, one instance of that resource first;
** typed chooses the path. The report in rep, the trace in tr. */
static void run(wfp_module *m, bool typed, const char *input, const char *const *ctx,
                const char *instance, char *rep, size_t n, trace *tr) {
  int (*saved)(void *, uint64_t, const char *, uint32_t, const uint8_t *, uint32_t,
               uint32_t, int64_t, const char *, uint32_t, wfp_abi_step *) = m->resume_step;
  assert_non_null(saved); /* the modules of this build have it */
  if (!typed)
    m->resume_step = NULL; /* as for a module built before resume_step */
  wfp_env *e = wfp_env_new();
  assert_non_null(e);
  for (const char *const *c = ctx; c && *c; c++) {
    const char *eq = strchr(*c, '=');
    assert_non_null(eq);
    assert_int_equal(wfp_env_ctx_setn(e, *c, (size_t)(eq - *c), strtoll(eq + 1, NULL, 10)), 0);
  }
  if (instance) {
    uint64_t h = 0;
    assert_int_equal(wfp_env_instance_new(e, m, instance, &h), 0);
    assert_int_equal(wfp_env_instance_set(e, h, "balance", "100"), 0);
  }
  wfp_invocation *inv = NULL;
  assert_int_equal(wfp_invocation_new(m, e, input, strlen(input), &inv), 0);
  memset(tr, 0, sizeof *tr);
  wfp_invocation_set_trace(inv, on_trace, tr);
  int st = wfp_invocation_run(inv, 1000);
  assert_true(st == WFP_DONE || st == WFP_TRAP);
  char *r = NULL;
  assert_int_equal(wfp_invocation_report(inv, e, &r, NULL), 0);
  snprintf(rep, n, "%s", r);
  wfp_free(r);
  wfp_invocation_free(inv);
  wfp_env_free(e);
  m->resume_step = saved;
}

static void same_both_ways(const char *so, const char *input, const char *const *ctx,
                           const char *instance, const char *want) {
  wfp_module *m = load(so);
  static char typed[8192], text[8192];
  static trace tt, tx;
  run(m, true, input, ctx, instance, typed, sizeof typed, &tt);
  run(m, false, input, ctx, instance, text, sizeof text, &tx);
  assert_string_equal(typed, text);
  /* the trace shows the resume value as text on both paths */
  assert_string_equal(tt.text, tx.text);
  if (!strstr(typed, want))
    fail_msg("%s %s: the report %s lacks %s", so, input, typed, want);
  wfp_module_free(m);
}

static void results_are_the_same(void **st) {
  (void)st;
  const char *const simple[] = {"n=41", NULL};
  same_both_ways("simple.so", "{}", simple, NULL, "\"output\":{\"result\":42}");
  const char *const acc[] = {"a=1", "b=2", "c=3", NULL};
  same_both_ways("accumulator.so", "{}", acc, NULL, "\"doubled\":12");
  const char *const conv[] = {"celsius=-40", NULL};
  same_both_ways("converter.so", "{}", conv, NULL, "\"fahrenheit\":-40");
  /* the i64 range's ends cross typed as they are */
  const char *const big[] = {"n=9223372036854775806", NULL};
  same_both_ways("simple.so", "{}", big, NULL, "9223372036854775807");
  /* self-get and self-set resume with JSON text on both */
  same_both_ways("bank-account.so", "{\"fn\":\"deposit\",\"args\":[5],\"self\":1}", NULL,
                 "Account", "\"status\":\"done\"");
}

static void errors_and_edges_are_the_same(void **st) {
  (void)st;
  /* an unset key: the host resumes with {"error": ...}, a trap */
  same_both_ways("simple.so", "{}", NULL, NULL,
                 "\"trap\":\"context key 'n' is not set\"");
  const char *const acc[] = {"a=1", NULL};
  same_both_ways("accumulator.so", "{}", acc, NULL, "context key 'b' is not set");
  /* i64 addition wraps, after a value that crossed typed */
  const char *const big[] = {"n=9223372036854775807", NULL};
  same_both_ways("simple.so", "{}", big, NULL, "{\"result\":-9223372036854775808}");
}

/* Steps until the invocation is pending on a ctx-get-i64 after `after`
** performed effects; returns it. */
static wfp_invocation *pending_after(wfp_module *m, wfp_env *e, int after) {
  wfp_invocation *inv = NULL;
  assert_int_equal(wfp_invocation_new(m, e, "{}", 2, &inv), 0);
  assert_int_equal(wfp_invocation_step(inv), WFP_PENDING);
  for (int i = 0; i < after; i++) {
    assert_int_equal(wfp_invocation_perform(inv), 0);
    assert_int_equal(wfp_invocation_step(inv), WFP_PENDING);
  }
  return inv;
}

static void checkpoints_cross_paths(void **st) {
  (void)st;
  wfp_module *m = load("accumulator.so");
  int (*typed)(void *, uint64_t, const char *, uint32_t, const uint8_t *, uint32_t, uint32_t,
               int64_t, const char *, uint32_t, wfp_abi_step *) = m->resume_step;
  for (int way = 0; way < 2; way++) {
    /* stopped on one path after a value crossed, resumed on the other */
    m->resume_step = way ? typed : NULL;
    wfp_env *e = wfp_env_new();
    assert_int_equal(wfp_env_ctx_set(e, "a", 10), 0);
    assert_int_equal(wfp_env_ctx_set(e, "b", 20), 0);
    assert_int_equal(wfp_env_ctx_set(e, "c", 30), 0);
    wfp_invocation *inv = pending_after(m, e, 2);
    char *ck = NULL;
    size_t n = 0;
    assert_int_equal(wfp_invocation_checkpoint(inv, &ck, &n), 0);
    wfp_invocation_free(inv);
    wfp_env_free(e);
    m->resume_step = way ? NULL : typed;
    wfp_env *e2 = wfp_env_new();
    wfp_invocation *back = NULL;
    wfp_host_diag d;
    assert_int_equal(wfp_invocation_restore(m, e2, ck, n, &back, &d), 0);
    wfp_free(ck);
    assert_int_equal(wfp_invocation_run(back, 100), WFP_DONE);
    assert_string_equal(wfp_invocation_output(back), "{\"sum\":60,\"doubled\":120}");
    int64_t v = 0;
    assert_int_equal(wfp_env_ctx_get(e2, "sum", &v), 0);
    assert_int_equal(v, 60);
    wfp_invocation_free(back);
    wfp_env_free(e2);
  }
  m->resume_step = typed;
  wfp_module_free(m);
}

static void typed_i64_where_nothing_is_returned_traps(void **st) {
  (void)st;
  wfp_module *m = load("simple.so");
  wfp_env *e = wfp_env_new();
  assert_int_equal(wfp_env_ctx_set(e, "n", 1), 0);
  /* pending on msg-send, which returns nothing; a typed i64 is a fault */
  wfp_invocation *inv = pending_after(m, e, 1);
  assert_int_equal(inv->effect, WFP_EFFECT_MSG_SEND);
  wfp__resume_i64(inv, 5);
  inv->pending = false; /* what wfp_invocation_perform does after it */
  assert_int_equal(wfp_invocation_step(inv), WFP_TRAP);
  assert_string_equal(wfp_invocation_trap_message(inv),
                      "invalid resume value for an effect without a result: an i64, "
                      "which this effect does not return");
  wfp_invocation_free(inv);
  /* and none where ctx-get-i64 needs its integer */
  inv = pending_after(m, e, 0);
  assert_int_equal(inv->effect, WFP_EFFECT_CTX_GET_I64);
  wfp__resume_none(inv);
  inv->pending = false;
  assert_int_equal(wfp_invocation_step(inv), WFP_TRAP);
  assert_string_equal(wfp_invocation_trap_message(inv),
                      "invalid step: resuming ctx_get_i64 without a resume value");
  wfp_invocation_free(inv);
  wfp_env_free(e);
  wfp_module_free(m);
}

/* wfp_effect_complete_i64 of a ctx-get-i64 goes typed; its text, asked
** for by a trace, is the one the text path sends. */
static void typed_text_is_the_hosts_text(void **st) {
  (void)st;
  wfp_module *m = load("simple.so");
  wfp_env *e = wfp_env_new();
  wfp_invocation *inv = pending_after(m, e, 0);
  wfp__resume_i64(inv, -9223372036854775807LL - 1);
  assert_int_equal(wfp__resume_text(inv), 0);
  assert_int_equal(inv->resume.len, strlen("{\"i64\":-9223372036854775808}"));
  assert_memory_equal(inv->resume.data, "{\"i64\":-9223372036854775808}", inv->resume.len);
  assert_true(inv->resume_typed);
  /* text written later (an error) is no longer typed */
  wfp__resume_error(inv, "no");
  assert_false(inv->resume_typed);
  inv->pending = false;
  assert_int_equal(wfp_invocation_step(inv), WFP_TRAP);
  assert_string_equal(wfp_invocation_trap_message(inv), "no");
  wfp_invocation_free(inv);
  wfp_env_free(e);
  wfp_module_free(m);
}

/* A descriptor that ends before resume_step: the host does not read it. */
static void older_descriptors_have_no_resume_step(void **st) {
  (void)st;
  wfp_module *m = load("simple.so");
  wfp_module_desc old = *m->d;
  assert_true(WFP_DESC_HAS(&old, resume_step));
  old.struct_size = (uint32_t)offsetof(wfp_module_desc, resume_step);
  assert_false(WFP_DESC_HAS(&old, resume_step));
  assert_true(WFP_DESC_HAS(&old, init_instance));
  wfp_module_free(m);
}

/* wfp_invocation_run holds one instance across its steps and gives it
** back at the end: the pool has it, and the next run steps on it. */
static void a_run_gives_its_instance_back(void **st) {
  (void)st;
  wfp_module *m = load("accumulator.so");
  wfp__module_discard(m);
  wfp_env *e = wfp_env_new();
  assert_int_equal(wfp_env_ctx_set(e, "a", 1), 0);
  assert_int_equal(wfp_env_ctx_set(e, "b", 2), 0);
  assert_int_equal(wfp_env_ctx_set(e, "c", 3), 0);
  for (int round = 0; round < 2; round++) {
    wfp_invocation *inv = NULL;
    assert_int_equal(wfp_invocation_new(m, e, "{}", 2, &inv), 0);
    assert_int_equal(wfp_invocation_run(inv, 100), WFP_DONE);
    assert_true(wfp_invocation_steps(inv) > 3);
    assert_null(inv->held);
    assert_int_equal(m->npool, 1);
    wfp_invocation_free(inv);
  }
  /* a run that ends in the guest's trap (an unset key) gives it back too */
  wfp_env *empty = wfp_env_new();
  wfp_invocation *inv = NULL;
  assert_int_equal(wfp_invocation_new(m, empty, "{}", 2, &inv), 0);
  assert_int_equal(wfp_invocation_run(inv, 100), WFP_TRAP);
  assert_null(inv->held);
  assert_int_equal(m->npool, 1);
  wfp_invocation_free(inv);
  wfp_env_free(empty);
  wfp_env_free(e);
  wfp_module_free(m);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: test_resume SO_DIR\n");
    return 2;
  }
  so_dir = argv[1];
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(results_are_the_same),
      cmocka_unit_test(errors_and_edges_are_the_same),
      cmocka_unit_test(checkpoints_cross_paths),
      cmocka_unit_test(typed_i64_where_nothing_is_returned_traps),
      cmocka_unit_test(typed_text_is_the_hosts_text),
      cmocka_unit_test(older_descriptors_have_no_resume_step),
      cmocka_unit_test(a_run_gives_its_instance_back),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
