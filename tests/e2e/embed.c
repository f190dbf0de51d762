/*
** embed.c: the example of docs/embedding.md, built against the installed
** library through pkg-config: compile a program held in memory, run it,
** read the output, the messages and the context back.
*/
#include <stdio.h>
#include <string.h>

#include <wfp/aot.h>
#include <wfp/host.h>

static const char program[] =
    "{\"version\": 1, \"functions\": [{\"name\": \"main\", \"params\": [], \"body\": ["
    "{\"op\": \"let\", \"name\": \"n\", \"expr\": {\"op\": \"ctx_get_i64\", \"key\": \"n\"}},"
    "{\"op\": \"expr\", \"expr\": {\"op\": \"msg_send\", \"topic\": \"seen\","
    " \"payload\": {\"op\": \"var\", \"name\": \"n\"}}},"
    "{\"op\": \"expr\", \"expr\": {\"op\": \"ctx_set_i64\", \"key\": \"twice\","
    " \"value\": {\"op\": \"mul\", \"a\": {\"op\": \"var\", \"name\": \"n\"}, \"b\": {\"op\": \"lit_i64\", \"value\": 2}}}},"
    "{\"op\": \"return\", \"expr\": {\"op\": \"add\", \"a\": {\"op\": \"var\", \"name\": \"n\"},"
    " \"b\": {\"op\": \"lit_i64\", \"value\": 1}}}]}]}";

int main(int argc, char **argv) {
  const char *so = argc > 1 ? argv[1] : "embedded.so";
  printf("wfp %s\n", wfp_version_string());

  /* compile: the same pipeline as wfp-aot */
  wfp_aot_opts opts = {sizeof opts};
  opts.output = so;
  opts.opt_level = -1; /* the default, -O2 */
  wfp_aot *c = wfp_aot_new(&opts);
  int rc = c ? wfp_aot_compile_mem(c, "embedded", program, strlen(program)) : WFP_ENOMEM;
  if (rc) {
    char line[1024];
    for (size_t i = 0; i < wfp_aot_diag_count(c); i++) {
      wfp_diag_format(wfp_aot_diag(c, i), line, sizeof line);
      fprintf(stderr, "%s\n", line);
    }
    wfp_aot_free(c);
    return wfp_exit_code(rc);
  }
  printf("compiled program %s\n", wfp_aot_program_hash(c));
  wfp_aot_free(c);

  /* run: load the module, set the context, step until done */
  wfp_host_diag hd;
  wfp_module *m = NULL;
  if (wfp_module_load(so, &m, &hd)) {
    char line[1024];
    wfp_diag_format(&hd.d, line, sizeof line); /* file, place, message */
    fprintf(stderr, "%s\n", line);
    return wfp_exit_code(hd.d.code);
  }
  wfp_env *env = wfp_env_new();
  wfp_invocation *inv = NULL;
  if (!env || wfp_env_ctx_set(env, "n", 41) ||
      wfp_invocation_new(m, env, "{}", 2, &inv)) {
    fprintf(stderr, "out of memory\n");
    return 3;
  }
  int status = wfp_invocation_run(inv, 1000);
  if (status == WFP_DONE)
    printf("output %s\n", wfp_invocation_output(inv));
  else
    printf("trap %s\n", wfp_invocation_trap_message(inv));
  for (size_t i = 0; i < wfp_env_message_count(env); i++)
    printf("message %s %s\n", wfp_env_message_topic(env, i), wfp_env_message_payload(env, i));
  int64_t twice = 0;
  wfp_env_ctx_get(env, "twice", &twice);
  printf("ctx twice %lld, steps %llu\n", (long long)twice,
         (unsigned long long)wfp_invocation_steps(inv));
  wfp_invocation_free(inv);
  wfp_env_free(env);
  wfp_module_free(m);
  return status == WFP_DONE ? 0 : 1;
}
