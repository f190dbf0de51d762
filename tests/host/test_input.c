/*
** test_input.c: building an invocation's input with the library alone, as
** a batch line or a service request will (wfp_input_*), against real
** compiled modules: strict JSON with the fault's offset, the depth limit,
** arguments typed by their parameters, names and values never cut, the
** instance a method runs on; and the report of an invocation.
** Usage: test_input DIR (the directory of the end-to-end modules).
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wfp/host.h"

static const char *so_dir;

/* a string literal and its length */
#define S(lit) lit, strlen(lit)

typedef struct fx {
  wfp_module *m;
  wfp_env *e;
  wfp_input *in;
  char *text;
  size_t len;
} fx;

static int open_module(void **state, const char *name) {
  fx *f = calloc(1, sizeof *f);
  char path[4096];
  wfp_host_diag hd;
  snprintf(path, sizeof path, "%s/%s", so_dir, name);
  if (wfp_module_load(path, &f->m, &hd)) {
    fprintf(stderr, "cannot load %s: %s\n", path, hd.d.msg);
    free(f);
    return -1;
  }
  f->e = wfp_env_new();
  f->in = wfp_input_new(f->m);
  *state = f;
  return f->e && f->in ? 0 : -1;
}

static int setup_hostcli(void **state) { return open_module(state, "hostcli.so"); }
static int setup_closures(void **state) { return open_module(state, "closures.so"); }

static int teardown(void **state) {
  fx *f = *state;
  wfp_free(f->text);
  wfp_input_free(f->in);
  wfp_env_free(f->e);
  wfp_module_free(f->m);
  free(f);
  return 0;
}

/* a fresh builder for the next case */
static void renew(fx *f) {
  wfp_input_free(f->in);
  f->in = wfp_input_new(f->m);
  assert_non_null(f->in);
}

/* finishes the builder: 0 and the text, or the refusal */
static int finish(fx *f) {
  wfp_free(f->text);
  f->text = NULL;
  return wfp_input_finish(f->in, f->e, &f->text, &f->len);
}

static void text_is(fx *f, const char *want) {
  assert_non_null(f->text);
  if (strcmp(f->text, want) != 0)
    fail_msg("input: got '%s', expected '%s'", f->text, want);
  assert_int_equal(f->len, strlen(want));
}

/* the last call failed with WFP_EUSAGE, at path, with msg holding want */
static void refused(fx *f, int rc, const char *path, const char *want) {
  const wfp_diag *d = wfp_input_diag(f->in);
  if (rc != WFP_EUSAGE)
    fail_msg("expected a refusal holding '%s', got %d (%s)", want, rc, d ? d->msg : "-");
  assert_non_null(d);
  assert_int_equal(d->code, WFP_EUSAGE);
  assert_string_equal(d->file, "input");
  if (path)
    assert_string_equal(d->path, path);
  if (!strstr(d->msg, want))
    fail_msg("refusal: got '%s', expected it to hold '%s'", d->msg, want);
}

/* runs the finished input to its end; returns the output or trap (static) */
static const char *run(fx *f) {
  static char out[4096];
  wfp_invocation *inv = NULL;
  assert_int_equal(wfp_invocation_new(f->m, f->e, f->text, f->len, &inv), 0);
  int st = wfp_invocation_run(inv, 100);
  snprintf(out, sizeof out, "%s",
           st == WFP_DONE ? wfp_invocation_output(inv) : wfp_invocation_trap_message(inv));
  wfp_invocation_free(inv);
  return out;
}

/* ---- a function name and JSON arguments, no command line ---- */

static void from_fn_and_json_args(void **state) {
  fx *f = *state;
  assert_int_equal(wfp_input_set_fn(f->in, "types"), 0);
  const char *args = " {\"n\": 9007199254740993, \"s\": \"a\\u0000b\", \"j\": {\"k\": [1, 2.50]}} ";
  assert_int_equal(wfp_input_set_args(f->in, args, strlen(args)), 0);
  assert_int_equal(finish(f), 0);
  assert_null(wfp_input_diag(f->in));
  /* as given: numbers keep every digit, strings their escapes */
  text_is(f, "{\"fn\":\"types\",\"args\":{\"n\": 9007199254740993, \"s\": \"a\\u0000b\", "
             "\"j\": {\"k\": [1, 2.50]}}}");
  assert_string_equal(run(f), "{\"n\":9007199254740993,\"s\":\"a\\u0000b\",\"j\":{\"k\":[1,2.50]}}");
  /* arguments as an array, in parameter order */
  renew(f);
  assert_int_equal(wfp_input_set_fn(f->in, "types"), 0);
  assert_int_equal(wfp_input_set_args(f->in, S("[-1, \"\", null]")), 0);
  assert_int_equal(finish(f), 0);
  text_is(f, "{\"fn\":\"types\",\"args\":[-1, \"\", null]}");
  assert_string_equal(run(f), "{\"n\":-1,\"s\":\"\",\"j\":null}");
  /* an unknown function is refused before anything runs */
  renew(f);
  assert_int_equal(wfp_input_set_fn(f->in, "nope"), 0);
  refused(f, finish(f), "$.fn", "no function 'nope' in this module");
  /* arguments that are not an object or an array */
  renew(f);
  refused(f, wfp_input_set_args(f->in, "7", 1), "$.args",
          "the arguments must be a JSON object or array, not '7'");
}

/* ---- strict JSON ---- */

static void json_is_strict(void **state) {
  fx *f = *state;
  static const struct {
    const char *text, *why;
  } bad[] = {
      {"{\"a\":1} x", "text after the value, at byte 8"},
      {"{\"a\":01}", "a number with a leading zero, at byte 5"},
      {"{\"a\":-}", "not a JSON value, at byte 5"},
      {"{\"a\":1.}", "a number without digits after '.', at byte 7"},
      {"{\"a\":1e}", "a number without digits in its exponent, at byte 7"},
      {"{\"a\":+1}", "not a JSON value, at byte 5"},
      {"{\"a\":tru}", "not a JSON value, at byte 5"},
      {"{\"a\":\"\xff\"}", "invalid UTF-8 in a string, at byte 6"},
      {"{\"a\":\"\xc0\xaf\"}", "invalid UTF-8 in a string, at byte 6"},
      {"{\"a\":\"\xed\xa0\x80\"}", "invalid UTF-8 in a string, at byte 6"},
      {"{\"a\":\"\\ud800\"}", "a lone high surrogate, at byte 6"},
      {"{\"a\":\"\\udc00\"}", "a lone low surrogate, at byte 6"},
      {"{\"a\":\"\\x\"}", "an invalid escape, at byte 6"},
      {"{\"a\":\"\\u12g4\"}", "an invalid \\u escape, at byte 6"},
      {"{\"a\":\"\t\"}", "a control character in a string (escape it), at byte 6"},
      {"{\"a\":\"x}", "unterminated string, at byte 8"},
      {"{\"a\":[1,]}", "not a JSON value, at byte 8"},
      {"{\"a\":[1 2]}", "expected ',' or ']', at byte 8"},
      {"{\"a\" 1}", "expected ':', at byte 5"},
      {"{a:1}", "expected a string key, at byte 1"},
      {"{\"a\":1", "unexpected end of the text, at byte 6"},
      {"", "unexpected end of the text, at byte 0"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    renew(f);
    int rc = wfp_input_set_json(f->in, bad[i].text, strlen(bad[i].text));
    refused(f, rc, "", "the input: '");
    refused(f, rc, "", bad[i].why);
  }
  /* a NUL after the value is text after it too */
  renew(f);
  refused(f, wfp_input_set_json(f->in, "{\"a\":1}\0", 8), "", "text after the value, at byte 7");
  /* what RFC 8259 allows passes, as given */
  static const char good[] = " {\"a\": [-0, 0.5e-3, 1E+2, 123456789012345678901234567890, true, "
                             "false, null, \"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\xc3\xa9\"],"
                             "\r\n\t\"\": {}} ";
  renew(f);
  assert_int_equal(wfp_input_set_json(f->in, good, strlen(good)), 0);
  assert_int_equal(finish(f), 0);
  text_is(f, good);
  renew(f);
  refused(f, wfp_input_set_json(f->in, "[1]", 3), "", "the input must be a JSON object, not '[1]'");
}

/* nesting: an input may nest WFP_JSON_MAX_DEPTH arrays and objects, and
** what goes inside it counts the levels around it */
static char *nested(int depth, const char *pre, const char *post) {
  size_t n = strlen(pre) + strlen(post) + 2 * (size_t)depth + 2;
  char *s = malloc(n);
  size_t k = 0;
  k += (size_t)sprintf(s, "%s", pre);
  for (int i = 0; i < depth; i++)
    s[k++] = '[';
  s[k++] = '1';
  for (int i = 0; i < depth; i++)
    s[k++] = ']';
  sprintf(s + k, "%s", post);
  return s;
}

static void depth_is_limited(void **state) {
  fx *f = *state;
  assert_int_equal(WFP_JSON_MAX_DEPTH, 256);
  /* the input object and 255 arrays: 256 levels */
  char *ok = nested(255, "{\"a\":", "}"), *deep = nested(256, "{\"a\":", "}");
  assert_int_equal(wfp_input_set_json(f->in, ok, strlen(ok)), 0);
  refused(f, wfp_input_set_json(f->in, deep, strlen(deep)), "",
          "nests too deep: more than 256 levels (WFP_JSON_MAX_DEPTH), at byte 260");
  free(ok);
  free(deep);
  /* an argument sits in "args" in the input: 254 levels of its own */
  renew(f);
  char *arg = nested(254, "", "");
  assert_int_equal(wfp_input_set_fn(f->in, "types"), 0);
  assert_int_equal(wfp_input_add_arg(f->in, "n", 1, "1", 1), 0);
  assert_int_equal(wfp_input_add_arg(f->in, "s", 1, "x", 1), 0);
  assert_int_equal(wfp_input_add_arg(f->in, "j", 1, arg, strlen(arg)), 0);
  assert_int_equal(finish(f), 0);
  free(arg);
  /* which the guest reads back whole */
  const char *out = run(f);
  assert_int_equal(strncmp(out, "{\"n\":1,\"s\":\"x\",\"j\":[[[", 22), 0);
  renew(f);
  arg = nested(255, "", "");
  assert_int_equal(wfp_input_set_fn(f->in, "types"), 0);
  assert_int_equal(wfp_input_add_arg(f->in, "j", 1, arg, strlen(arg)), 0);
  refused(f, finish(f), "$.args.j",
          "argument 'j': '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[...' "
          "nests too deep: with the input around it, more than 256 levels "
          "(WFP_JSON_MAX_DEPTH), at byte 254");
  free(arg);
  /* whole arguments: one level inside the input, 255 of their own */
  renew(f);
  arg = nested(255, "", "");
  assert_int_equal(wfp_input_set_args(f->in, arg, strlen(arg)), 0);
  free(arg);
  arg = nested(256, "", "");
  refused(f, wfp_input_set_args(f->in, arg, strlen(arg)), "$.args",
          "nests too deep: with the input around them, more than 256 levels");
  free(arg);
}

/* ---- arguments as text, typed by their parameters ---- */

static void text_arguments_convert(void **state) {
  fx *f = *state;
  assert_int_equal(wfp_input_set_fn(f->in, "types"), 0);
  assert_int_equal(wfp_input_add_arg(f->in, S("n"), S("-9223372036854775808")), 0);
  assert_int_equal(wfp_input_add_arg(f->in, S("s"), S("a \"q\" \\ \xc3\xa9\n")), 0);
  assert_int_equal(wfp_input_add_arg(f->in, S("j"), S(" [1, {\"b\": null}] ")), 0);
  assert_int_equal(finish(f), 0);
  text_is(f, "{\"fn\":\"types\",\"args\":{\"n\":-9223372036854775808,\"s\":\"a \\\"q\\\" \\\\ "
             "\xc3\xa9\\n\",\"j\":[1, {\"b\": null}]}}");
  assert_string_equal(run(f), "{\"n\":-9223372036854775808,\"s\":\"a \\\"q\\\" \\\\ \xc3\xa9\\n\","
                              "\"j\":[1,{\"b\":null}]}");
  static const struct {
    const char *name, *text, *why;
  } bad[] = {
      {"n", "01", "argument 'n': '01' is not an i64 (a decimal integer)"},
      {"n", "1x", "argument 'n': '1x' is not an i64"},
      {"n", " 1", "argument 'n': ' 1' is not an i64"},
      {"n", "9223372036854775808", "argument 'n': '9223372036854775808' is not an i64"},
      {"s", "a\xff", "argument 's': 'a?' is not valid UTF-8 text"},
      {"j", "01", "argument 'j': '01' is not JSON (a number with a leading zero, at byte 0)"},
      {"j", "{} x", "argument 'j': '{} x' is not JSON (text after the value, at byte 3)"},
      {"j", "\"\xff\"", "argument 'j': '\"?\"' is not JSON (invalid UTF-8 in a string, at byte 1)"},
      {"j", "", "argument 'j': '' is not JSON (unexpected end of the text, at byte 0)"},
      {"zz", "1", "function 'types' has no parameter 'zz'"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    renew(f);
    assert_int_equal(wfp_input_set_fn(f->in, "types"), 0);
    assert_int_equal(wfp_input_add_arg(f->in, bad[i].name, strlen(bad[i].name), bad[i].text,
                                       strlen(bad[i].text)), 0);
    char path[16];
    snprintf(path, sizeof path, "$.args.%s", bad[i].name);
    refused(f, finish(f), path, bad[i].why);
  }
  /* added to an "args" object given whole: the last of one name wins, the
  ** rest of the input stays */
  renew(f);
  const char *base = "{\"fn\":\"types\",\"args\":{\"n\":1,\"s\":\"x\",\"j\":null},\"extra\":[1]}";
  assert_int_equal(wfp_input_set_json(f->in, base, strlen(base)), 0);
  assert_int_equal(wfp_input_add_arg(f->in, "n", 1, "5", 1), 0);
  assert_int_equal(wfp_input_add_arg(f->in, "n", 1, "6", 1), 0);
  assert_int_equal(finish(f), 0);
  text_is(f, "{\"fn\":\"types\",\"extra\":[1],\"args\":{\"s\":\"x\",\"j\":null,\"n\":6}}");
  /* not to an array */
  renew(f);
  assert_int_equal(wfp_input_set_fn(f->in, "types"), 0);
  assert_int_equal(wfp_input_set_args(f->in, S("[1, \"x\", 2]")), 0);
  assert_int_equal(wfp_input_add_arg(f->in, "n", 1, "5", 1), 0);
  refused(f, finish(f), "$.args", "an argument by name cannot be added to an \"args\" array");
  /* a whole input alone goes as given; with a function set, its "fn" goes */
  renew(f);
  base = "{ \"fn\" : \"echo\", \"args\" : [\"z\"] }";
  assert_int_equal(wfp_input_set_json(f->in, base, strlen(base)), 0);
  assert_int_equal(finish(f), 0);
  text_is(f, base);
  assert_int_equal(wfp_input_set_fn(f->in, "types"), 0);
  assert_int_equal(finish(f), 0);
  text_is(f, "{\"args\":[\"z\"],\"fn\":\"types\"}");
}

/* names, keys and values of any length, whole */
static void nothing_is_cut(void **state) {
  fx *f = *state;
  char name[301], value[2001];
  memset(name, 'p', 300);
  name[300] = 0;
  memset(value, 's', 2000);
  value[2000] = 0;
  assert_int_equal(wfp_input_set_fn(f->in, "longParam"), 0);
  assert_int_equal(wfp_input_add_arg(f->in, name, 300, value, 2000), 0);
  assert_int_equal(finish(f), 0);
  assert_string_equal(run(f), "{\"result\":2000}");
  /* a name one byte off is no parameter; the message quotes 64 bytes */
  renew(f);
  assert_int_equal(wfp_input_set_fn(f->in, "longParam"), 0);
  assert_int_equal(wfp_input_add_arg(f->in, name, 299, "x", 1), 0);
  refused(f, finish(f), NULL,
          "function 'longParam' has no parameter "
          "'pppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp...'");
  /* a property value of 2,000 bytes */
  renew(f);
  char spec[2100];
  snprintf(spec, sizeof spec, "Box:s=%s,n=-3", value);
  assert_int_equal(wfp_input_set_new(f->in, spec, strlen(spec)), 0);
  assert_int_equal(wfp_input_set_fn(f->in, "show"), 0);
  assert_int_equal(finish(f), 0);
  text_is(f, "{\"fn\":\"show\",\"self\":1}");
  assert_int_equal(strlen(wfp_env_instance_get(f->e, 1, "s")), 2002);
  assert_string_equal(wfp_env_instance_get(f->e, 1, "n"), "-3");
  /* a context key of 600 bytes */
  char key[600];
  memset(key, 'k', sizeof key);
  assert_int_equal(wfp_env_ctx_setn(f->e, key, sizeof key, 7), 0);
  assert_int_equal(strlen(wfp_env_ctx_key(f->e, 0)), 600);
  assert_int_equal(wfp_env_ctx_setn(f->e, "\xff", 1, 7), WFP_EINVAL);
}

/* ---- instances and methods ---- */

static void methods_and_instances(void **state) {
  fx *f = *state;
  assert_int_equal(wfp_input_set_fn(f->in, "show"), 0);
  refused(f, finish(f), "$.self",
          "'show' is a method of 'Box': give the instance it runs on (\"self\", or --new Box)");
  assert_int_equal(wfp_input_set_new(f->in, S("Box:n=3,s=hi,j=[{}]")), 0);
  assert_int_equal(finish(f), 0);
  text_is(f, "{\"fn\":\"show\",\"self\":1}");
  assert_string_equal(run(f), "{\"n\":3,\"s\":\"hi\",\"j\":[{}]}");
  /* an instance that exists, by its handle */
  renew(f);
  assert_int_equal(wfp_input_set_fn(f->in, "show"), 0);
  assert_int_equal(wfp_input_set_self(f->in, 1), 0);
  assert_int_equal(finish(f), 0);
  text_is(f, "{\"fn\":\"show\",\"self\":1}");
  /* faults of the instance */
  static const struct {
    const char *fn, *spec, *why;
  } bad[] = {
      {"types", "Box", "'types' is not a method of 'Box'"},
      {"show", "Nope", "this module has no resource 'Nope'"},
      {"show", "Box:zz=1", "resource 'Box' has no property 'zz'"},
      {"show", "Box:n", "an instance is RESOURCE[:PROP=VALUE,...], not 'Box:n'"},
      {"show", "Box:=1", "an instance is RESOURCE[:PROP=VALUE,...], not 'Box:=1'"},
      {"show", ":n=1", "an instance is RESOURCE[:PROP=VALUE,...], not ':n=1'"},
      {"show", "Box:n=x", "property 'n': 'x' is not an i64 (a decimal integer)"},
      {"show", "Box:j={", "property 'j': '{' is not JSON"},
  };
  size_t before = wfp_env_instance_count(f->e);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    renew(f);
    assert_int_equal(wfp_input_set_fn(f->in, bad[i].fn), 0);
    int rc = wfp_input_set_new(f->in, bad[i].spec, strlen(bad[i].spec));
    if (!rc)
      rc = finish(f);
    refused(f, rc, "$.self", bad[i].why);
  }
  /* a refused input creates no instance */
  assert_int_equal(wfp_env_instance_count(f->e), before);
  renew(f);
  assert_int_equal(wfp_input_set_self(f->in, 0), WFP_EINVAL);
}

/* a function value, as an output shows it */
static void function_values(void **state) {
  fx *f = *state;
  int dbl = wfp_module_find(f->m, "double");
  assert_true(dbl >= 0);
  char v[128];
  snprintf(v, sizeof v, "{\"fn\": \"%s\", \"args\": []}", wfp_module_descriptor_of(f->m)->funcs[dbl].id);
  assert_int_equal(wfp_input_set_fn(f->in, "apply"), 0);
  assert_int_equal(wfp_input_add_arg(f->in, "f", 1, v, strlen(v)), 0);
  assert_int_equal(wfp_input_add_arg(f->in, "x", 1, "21", 2), 0);
  assert_int_equal(finish(f), 0);
  assert_string_equal(run(f), "{\"result\":42}");
  renew(f);
  assert_int_equal(wfp_input_set_fn(f->in, "apply"), 0);
  assert_int_equal(wfp_input_add_arg(f->in, S("f"), S("{\"fn\": 1, \"args\": []}")), 0);
  refused(f, finish(f), "$.args.f", "argument 'f': '{\"fn\": 1, \"args\": []}' is not a function value");
}

/* ---- the report ---- */

static void report(void **state) {
  fx *f = *state;
  assert_int_equal(wfp_input_set_fn(f->in, "ticks"), 0);
  assert_int_equal(wfp_input_add_arg(f->in, "n", 1, "2", 1), 0);
  assert_int_equal(finish(f), 0);
  assert_int_equal(wfp_env_ctx_set(f->e, "k\"", -1), 0);
  wfp_invocation *inv = NULL;
  assert_int_equal(wfp_invocation_new(f->m, f->e, f->text, f->len, &inv), 0);
  char *r = NULL;
  size_t n = 0;
  assert_int_equal(wfp_invocation_step(inv), WFP_PENDING);
  assert_int_equal(wfp_invocation_report(inv, f->e, &r, &n), 0);
  assert_string_equal(r, "{\"status\":\"pending\",\"output\":null,\"trap\":null,\"steps\":1,"
                         "\"fuel\":0,\"ctx\":{\"k\\\"\":-1},\"messages\":[],\"properties\":null}");
  assert_int_equal(n, strlen(r));
  wfp_free(r);
  assert_int_equal(wfp_invocation_run(inv, 0), WFP_DONE);
  assert_int_equal(wfp_invocation_report(inv, f->e, &r, NULL), 0);
  assert_string_equal(r, "{\"status\":\"done\",\"output\":{\"result\":2},\"trap\":null,\"steps\":3,"
                         "\"fuel\":2,\"ctx\":{\"k\\\"\":-1},\"messages\":[{\"topic\":\"tick\","
                         "\"payload\":0},{\"topic\":\"tick\",\"payload\":1}],\"properties\":null}");
  wfp_free(r);
  assert_int_equal(wfp_invocation_report(inv, NULL, &r, NULL), WFP_EINVAL);
  wfp_invocation_free(inv);
  /* a trap, on an instance */
  renew(f);
  assert_int_equal(wfp_input_set_fn(f->in, "show"), 0);
  assert_int_equal(wfp_input_set_new(f->in, S("Box:s=q")), 0);
  assert_int_equal(finish(f), 0);
  wfp_env *other = wfp_env_new();
  assert_int_equal(wfp_invocation_new(f->m, other, f->text, f->len, &inv), 0);
  assert_int_equal(wfp_invocation_run(inv, 0), WFP_TRAP);
  assert_int_equal(wfp_invocation_report(inv, other, &r, NULL), 0);
  assert_string_equal(r, "{\"status\":\"trap\",\"output\":null,\"trap\":\"self_get: there is no "
                         "resource instance 1\",\"steps\":2,\"fuel\":0,\"ctx\":{},\"messages\":[],"
                         "\"properties\":null}");
  wfp_free(r);
  wfp_invocation_free(inv);
  wfp_env_free(other);
  assert_int_equal(wfp_invocation_new(f->m, f->e, f->text, f->len, &inv), 0);
  assert_int_equal(wfp_invocation_run(inv, 0), WFP_DONE);
  assert_int_equal(wfp_invocation_report(inv, f->e, &r, NULL), 0);
  assert_non_null(strstr(r, ",\"properties\":{\"n\":0,\"s\":\"q\",\"j\":null}}"));
  wfp_free(r);
  wfp_invocation_free(inv);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: test_input DIR\n");
    return 2;
  }
  so_dir = argv[1];
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(from_fn_and_json_args, setup_hostcli, teardown),
      cmocka_unit_test_setup_teardown(json_is_strict, setup_hostcli, teardown),
      cmocka_unit_test_setup_teardown(depth_is_limited, setup_hostcli, teardown),
      cmocka_unit_test_setup_teardown(text_arguments_convert, setup_hostcli, teardown),
      cmocka_unit_test_setup_teardown(nothing_is_cut, setup_hostcli, teardown),
      cmocka_unit_test_setup_teardown(methods_and_instances, setup_hostcli, teardown),
      cmocka_unit_test_setup_teardown(function_values, setup_closures, teardown),
      cmocka_unit_test_setup_teardown(report, setup_hostcli, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
