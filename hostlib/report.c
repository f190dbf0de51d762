/*
** report.c: the report of an invocation, one JSON object for people and
** scripts (wfp-host --report): how it ended, its output or trap, steps,
** fuel, its messages, and its environment. It changes nothing.
*/
#include <string.h>

#include "host_int.h"

int wfp_invocation_report(const wfp_invocation *inv, const wfp_env *env, char **out,
                          size_t *len) {
  if (!inv || !env || !out)
    return WFP_EINVAL;
  const char *output = wfp_invocation_output(inv), *trap = wfp_invocation_trap_message(inv);
  wfp__buf b;
  wfp__buf_init(&b);
  wfp__buf_adds(&b, "{\"status\":");
  wfp__buf_adds(&b, output ? "\"done\"" : trap ? "\"trap\"" : "\"pending\"");
  wfp__buf_adds(&b, ",\"output\":");
  wfp__buf_adds(&b, output ? output : "null");
  wfp__buf_adds(&b, ",\"trap\":");
  if (trap)
    wfp__buf_add_jstr(&b, trap, strlen(trap));
  else
    wfp__buf_adds(&b, "null");
  wfp__buf_printf(&b, ",\"steps\":%llu,\"fuel\":%llu,\"ctx\":{",
                  (unsigned long long)wfp_invocation_steps(inv),
                  (unsigned long long)wfp_invocation_fuel_used(inv));
  for (size_t i = 0; i < wfp_env_ctx_count(env); i++) {
    if (i)
      wfp__buf_addc(&b, ',');
    const char *k = wfp_env_ctx_key(env, i);
    wfp__buf_add_jstr(&b, k, strlen(k));
    wfp__buf_addc(&b, ':');
    wfp__buf_add_i64(&b, wfp_env_ctx_value(env, i));
  }
  wfp__buf_adds(&b, "},\"messages\":[");
  for (size_t i = 0; i < wfp_invocation_message_count(inv); i++) {
    if (i)
      wfp__buf_addc(&b, ',');
    const char *topic = wfp_invocation_message_topic(inv, i);
    wfp__buf_adds(&b, "{\"topic\":");
    wfp__buf_add_jstr(&b, topic, strlen(topic));
    wfp__buf_adds(&b, ",\"payload\":");
    wfp__buf_adds(&b, wfp_invocation_message_payload(inv, i));
    wfp__buf_addc(&b, '}');
  }
  wfp__buf_adds(&b, "],\"properties\":");
  uint64_t self = wfp_invocation_self(inv);
  if (self && wfp_env_instance_resource(env, self)) {
    wfp__buf_addc(&b, '{');
    for (size_t i = 0; i < wfp_env_instance_prop_count(env, self); i++) {
      if (i)
        wfp__buf_addc(&b, ',');
      const char *n = wfp_env_instance_prop_name(env, self, i);
      wfp__buf_add_jstr(&b, n, strlen(n));
      wfp__buf_addc(&b, ':');
      wfp__buf_adds(&b, wfp_env_instance_prop_value(env, self, i));
    }
    wfp__buf_addc(&b, '}');
  } else {
    wfp__buf_adds(&b, "null");
  }
  wfp__buf_addc(&b, '}');
  if (b.oom) {
    wfp__buf_free(&b);
    return WFP_ENOMEM;
  }
  *out = wfp__buf_take(&b, len);
  return WFP_OK;
}
