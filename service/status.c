/*
** status.c: what the service says about itself: counts of invocations per
** function and status (loaded from the store at start, kept as they end),
** the recent traps, step latency; as a page for a person (GET /: HTML, no
** external assets) and as Prometheus text (GET /metrics). Not here: the
** API (api.c).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svc.h"

static const double lat_bounds[SVC_LAT_BUCKETS] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                                   0.005,  0.01,    0.025,  0.05,  0.1,
                                                   0.25,   0.5,     1,      2.5};

static const char *const effect_names[WFP_EFFECT_COUNT] = {
    "ctx_get_i64", "ctx_set_i64", "msg_send", "sleep_ms",
    "db_query",    "self_get",    "self_set", "yield"};

static const char *const status_names[3] = {"pending", "done", "trapped"};

/* ---- counting ---- */

static svc_fn_count *fn_slot(svc_stats *st, const char *fn) {
  for (size_t i = 0; i < st->nfns; i++)
    if (strcmp(st->fns[i].fn, fn) == 0)
      return &st->fns[i];
  if (st->nfns == st->fns_cap) {
    size_t cap = st->fns_cap ? st->fns_cap * 2 : 16;
    svc_fn_count *n = realloc(st->fns, cap * sizeof *n);
    if (!n)
      return NULL;
    st->fns = n;
    st->fns_cap = cap;
  }
  svc_fn_count *c = &st->fns[st->nfns];
  memset(c, 0, sizeof *c);
  if (!(c->fn = strdup(fn)))
    return NULL;
  st->nfns++;
  return c;
}

void wfp_svc_count_add(svc *S, const char *fn, int status, uint64_t n) {
  svc_fn_count *c = status >= 0 && status < 3 ? fn_slot(&S->stats, fn) : NULL;
  if (c)
    c->n[status] += n;
}

void wfp_svc_count(svc *S, const char *fn, int from, int to) {
  svc_fn_count *c = fn_slot(&S->stats, fn);
  if (!c)
    return;
  if (from >= 0 && from < 3 && c->n[from])
    c->n[from]--;
  if (to >= 0 && to < 3)
    c->n[to]++;
}

void wfp_svc_trap_note(svc *S, const char *id, const char *fn, const char *msg, int64_t at) {
  svc_stats *st = &S->stats;
  svc_trap *t = &st->traps[st->trap_at];
  free(t->fn);
  free(t->msg);
  snprintf(t->id, sizeof t->id, "%s", id);
  t->fn = strdup(fn);
  t->msg = strdup(msg);
  t->at_ms = at;
  st->trap_at = (st->trap_at + 1) % SVC_TRAPS_KEPT;
  if (st->ntraps < SVC_TRAPS_KEPT)
    st->ntraps++;
}

void wfp_svc_latency(svc *S, double s) {
  svc_stats *st = &S->stats;
  int b = 0;
  while (b < SVC_LAT_BUCKETS && s > lat_bounds[b])
    b++;
  st->lat[b]++;
  st->lat_sum += s;
  st->lat_n++;
}

void wfp_svc_stats_free(svc_stats *st) {
  for (size_t i = 0; i < st->nfns; i++)
    free(st->fns[i].fn);
  free(st->fns);
  for (int i = 0; i < SVC_TRAPS_KEPT; i++) {
    free(st->traps[i].fn);
    free(st->traps[i].msg);
  }
  memset(st, 0, sizeof *st);
}

/* The traps from the newest: the i-th (0 newest), or NULL. */
static const svc_trap *trap_at(const svc_stats *st, size_t i) {
  if (i >= st->ntraps)
    return NULL;
  return &st->traps[(st->trap_at + SVC_TRAPS_KEPT - 1 - i) % SVC_TRAPS_KEPT];
}

/* ---- /metrics ---- */

static void label(wfp__buf *b, const char *s) {
  for (; *s; s++) {
    if (*s == '\\' || *s == '"')
      wfp__buf_addc(b, '\\');
    if (*s == '\n') {
      wfp__buf_adds(b, "\\n");
      continue;
    }
    wfp__buf_addc(b, *s);
  }
}

void wfp_svc_metrics(svc *S, wfp_http_req *req) {
  svc_stats *st = &S->stats;
  wfp__buf b;
  wfp__buf_init(&b);
  uint64_t tot[3] = {0, 0, 0};
  for (size_t i = 0; i < st->nfns; i++)
    for (int k = 0; k < 3; k++)
      tot[k] += st->fns[i].n[k];
  wfp__buf_adds(&b, "# HELP wfp_invocations Invocations in the store, by status.\n"
                    "# TYPE wfp_invocations gauge\n");
  for (int k = 0; k < 3; k++)
    wfp__buf_printf(&b, "wfp_invocations{status=\"%s\"} %llu\n", status_names[k],
                    (unsigned long long)tot[k]);
  wfp__buf_adds(&b, "# HELP wfp_function_invocations Invocations in the store, by function "
                    "and status.\n# TYPE wfp_function_invocations gauge\n");
  for (size_t i = 0; i < st->nfns; i++)
    for (int k = 0; k < 3; k++) {
      wfp__buf_adds(&b, "wfp_function_invocations{fn=\"");
      label(&b, st->fns[i].fn);
      wfp__buf_printf(&b, "\",status=\"%s\"} %llu\n", status_names[k],
                      (unsigned long long)st->fns[i].n[k]);
    }
  wfp__buf_printf(&b,
                  "# HELP wfp_live_invocations Invocations running or suspended in this "
                  "process.\n# TYPE wfp_live_invocations gauge\nwfp_live_invocations %zu\n"
                  "# HELP wfp_waiting_for_program Pending invocations whose program no "
                  "module given is.\n# TYPE wfp_waiting_for_program gauge\n"
                  "wfp_waiting_for_program %llu\n",
                  S->nlive, (unsigned long long)st->waiting_program);
  wfp__buf_printf(&b,
                  "# HELP wfp_steps_total Steps taken since start (rows of fan-outs "
                  "included).\n# TYPE wfp_steps_total counter\nwfp_steps_total %llu\n",
                  (unsigned long long)st->steps);
  wfp__buf_adds(&b, "# HELP wfp_effects_total Effects since start, by kind.\n"
                    "# TYPE wfp_effects_total counter\n");
  for (int k = 0; k < WFP_EFFECT_COUNT; k++)
    wfp__buf_printf(&b, "wfp_effects_total{kind=\"%s\"} %llu\n", effect_names[k],
                    (unsigned long long)st->effects[k]);
  wfp__buf_printf(&b,
                  "# HELP wfp_messages_total Messages committed since start.\n"
                  "# TYPE wfp_messages_total counter\nwfp_messages_total %llu\n",
                  (unsigned long long)st->messages);
  wfp__buf_adds(&b, "# HELP wfp_step_latency_seconds From an invocation let go on (started, "
                    "or its last record committed) to its next step's end.\n"
                    "# TYPE wfp_step_latency_seconds histogram\n");
  uint64_t cum = 0;
  for (int i = 0; i <= SVC_LAT_BUCKETS; i++) {
    cum += st->lat[i];
    if (i < SVC_LAT_BUCKETS)
      wfp__buf_printf(&b, "wfp_step_latency_seconds_bucket{le=\"%g\"} %llu\n", lat_bounds[i],
                      (unsigned long long)cum);
    else
      wfp__buf_printf(&b, "wfp_step_latency_seconds_bucket{le=\"+Inf\"} %llu\n",
                      (unsigned long long)cum);
  }
  wfp__buf_printf(&b, "wfp_step_latency_seconds_sum %.9f\nwfp_step_latency_seconds_count %llu\n",
                  st->lat_sum, (unsigned long long)st->lat_n);
  uint64_t txns = 0, ops = 0, hist[SVC_BATCH_BUCKETS + 1];
  double secs = 0;
  memset(hist, 0, sizeof hist);
  if (S->com)
    wfp_svc_committer_stats(S->com, &txns, &ops, hist, SVC_BATCH_BUCKETS + 1, &secs);
  wfp__buf_adds(&b, "# HELP wfp_commit_batch_size Records per transaction (group commit).\n"
                    "# TYPE wfp_commit_batch_size histogram\n");
  cum = 0;
  for (int i = 0; i <= SVC_BATCH_BUCKETS; i++) {
    cum += hist[i];
    if (i < SVC_BATCH_BUCKETS)
      wfp__buf_printf(&b, "wfp_commit_batch_size_bucket{le=\"%llu\"} %llu\n",
                      1ull << i, (unsigned long long)cum);
    else
      wfp__buf_printf(&b, "wfp_commit_batch_size_bucket{le=\"+Inf\"} %llu\n",
                      (unsigned long long)cum);
  }
  wfp__buf_printf(&b,
                  "wfp_commit_batch_size_sum %llu\nwfp_commit_batch_size_count %llu\n"
                  "# HELP wfp_commit_seconds_total Time spent in transactions, their sync "
                  "included.\n# TYPE wfp_commit_seconds_total counter\n"
                  "wfp_commit_seconds_total %.6f\n",
                  (unsigned long long)ops, (unsigned long long)txns, secs);
  wfp_svc_cluster_metrics(S, &b); /* several hosts: leases, claims, takeovers */
  if (S->http) {
    wfp__buf_adds(&b, "# HELP wfp_http_responses_total Responses, by class.\n"
                      "# TYPE wfp_http_responses_total counter\n");
    for (int k = 1; k <= 5; k++)
      wfp__buf_printf(&b, "wfp_http_responses_total{class=\"%dxx\"} %llu\n", k,
                      (unsigned long long)wfp_http_count(S->http, k));
    wfp__buf_printf(&b,
                    "# HELP wfp_http_connections Connections open.\n"
                    "# TYPE wfp_http_connections gauge\nwfp_http_connections %u\n",
                    wfp_http_connections(S->http));
  }
  if (b.oom)
    wfp_http_error(req, 500, "out of memory");
  else
    wfp_http_respond(req, 200, "text/plain; version=0.0.4", b.data, b.len);
  wfp__buf_free(&b);
}

/* ---- GET / ---- */

static void html(wfp__buf *b, const char *s) {
  for (; *s; s++) {
    switch (*s) {
    case '<': wfp__buf_adds(b, "&lt;"); break;
    case '>': wfp__buf_adds(b, "&gt;"); break;
    case '&': wfp__buf_adds(b, "&amp;"); break;
    case '"': wfp__buf_adds(b, "&quot;"); break;
    case '\'': wfp__buf_adds(b, "&#39;"); break;
    default: wfp__buf_addc(b, *s);
    }
  }
}

static void when(wfp__buf *b, int64_t ms_ago) {
  if (ms_ago < 0)
    ms_ago = 0;
  if (ms_ago < 1000)
    wfp__buf_printf(b, "%lld ms", (long long)ms_ago);
  else if (ms_ago < 120000)
    wfp__buf_printf(b, "%lld s", (long long)(ms_ago / 1000));
  else if (ms_ago < 7200000)
    wfp__buf_printf(b, "%lld min", (long long)(ms_ago / 60000));
  else
    wfp__buf_printf(b, "%lld h", (long long)(ms_ago / 3600000));
}

#define LIVE_SHOWN 50

void wfp_svc_status_page(svc *S, wfp_http_req *req) {
  svc_stats *st = &S->stats;
  int64_t now = wfp_svc_now_ms();
  wfp__buf b;
  wfp__buf_init(&b);
  wfp__buf_adds(&b,
                "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                "<meta name=\"viewport\" content=\"width=device-width\">"
                "<title>wfp service</title><style>"
                "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1b1f24;"
                "background:#f6f7f9}"
                "h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}"
                ".sub{color:#57606a}"
                ".cards{display:flex;gap:12px;margin-top:16px}"
                ".card{background:#fff;border:1px solid #d0d7de;border-radius:6px;"
                "padding:10px 16px;min-width:110px}"
                ".card b{display:block;font-size:24px}"
                ".pending b{color:#9a6700}.done b{color:#1a7f37}.trapped b{color:#cf222e}"
                "table{border-collapse:collapse;background:#fff;border:1px solid #d0d7de}"
                "th,td{text-align:left;padding:4px 12px;border-bottom:1px solid #eaeef2}"
                "th{background:#f0f2f5}td.n{text-align:right;font-variant-numeric:"
                "tabular-nums}code{font:12px ui-monospace,monospace}"
                ".trap-message{color:#cf222e}</style></head><body>\n");
  wfp__buf_adds(&b, "<h1>wfp service</h1><div class=\"sub\">store <code>");
  html(&b, S->store_path ? S->store_path : "");
  wfp__buf_adds(&b, "</code> &middot; up ");
  when(&b, now - S->started_ms);
  wfp__buf_adds(&b, " &middot; modules:");
  for (int i = 0; i < S->nmods; i++) {
    wfp__buf_adds(&b, " <code>");
    html(&b, S->mods[i].hash);
    wfp__buf_adds(&b, "</code> (");
    html(&b, S->mods[i].path);
    wfp__buf_addc(&b, ')');
  }
  wfp__buf_adds(&b, "</div>\n");
  uint64_t tot[3] = {0, 0, 0};
  for (size_t i = 0; i < st->nfns; i++)
    for (int k = 0; k < 3; k++)
      tot[k] += st->fns[i].n[k];
  wfp__buf_adds(&b, "<div class=\"cards\" id=\"totals\">");
  for (int k = 0; k < 3; k++)
    wfp__buf_printf(&b, "<div class=\"card %s\"><b id=\"total-%s\">%llu</b>%s</div>",
                    status_names[k], status_names[k], (unsigned long long)tot[k],
                    status_names[k]);
  wfp__buf_printf(&b, "<div class=\"card\"><b id=\"live\">%zu</b>in this process</div></div>\n",
                  S->nlive);
  wfp__buf_adds(&b, "<h2>Per function</h2><table id=\"functions\"><tr><th>function</th>"
                    "<th>pending</th><th>done</th><th>trapped</th></tr>\n");
  for (size_t i = 0; i < st->nfns; i++) {
    wfp__buf_adds(&b, "<tr><td><code>");
    html(&b, st->fns[i].fn);
    wfp__buf_printf(&b, "</code></td><td class=\"n\">%llu</td><td class=\"n\">%llu</td>"
                        "<td class=\"n\">%llu</td></tr>\n",
                    (unsigned long long)st->fns[i].n[0], (unsigned long long)st->fns[i].n[1],
                    (unsigned long long)st->fns[i].n[2]);
  }
  wfp__buf_adds(&b, "</table>\n<h2>Recent traps</h2><table id=\"traps\"><tr><th>when</th>"
                    "<th>invocation</th><th>function</th><th>message</th></tr>\n");
  for (size_t i = 0; i < st->ntraps; i++) {
    const svc_trap *t = trap_at(st, i);
    wfp__buf_adds(&b, "<tr><td>");
    when(&b, now - t->at_ms);
    wfp__buf_adds(&b, " ago</td><td><code>");
    html(&b, t->id);
    wfp__buf_adds(&b, "</code></td><td><code>");
    html(&b, t->fn ? t->fn : "");
    wfp__buf_adds(&b, "</code></td><td class=\"trap-message\">");
    html(&b, t->msg ? t->msg : "");
    wfp__buf_adds(&b, "</td></tr>\n");
  }
  if (!st->ntraps)
    wfp__buf_adds(&b, "<tr><td colspan=\"4\">none</td></tr>\n");
  wfp__buf_printf(&b, "</table>\n<h2>Live invocations</h2><table id=\"live-invocations\">"
                      "<tr><th>invocation</th><th>function</th><th>started by</th>"
                      "<th>age</th></tr>\n");
  size_t shown = 0;
  for (svc_inv *si = S->live; si && shown < LIVE_SHOWN; si = si->next, shown++) {
    wfp__buf_adds(&b, "<tr><td><code>");
    html(&b, si->id);
    wfp__buf_adds(&b, "</code></td><td><code>");
    html(&b, si->fn);
    wfp__buf_adds(&b, "</code></td><td>");
    html(&b, si->origin);
    wfp__buf_adds(&b, "</td><td>");
    when(&b, now - si->created_ms);
    wfp__buf_adds(&b, "</td></tr>\n");
  }
  if (S->nlive > shown)
    wfp__buf_printf(&b, "<tr><td colspan=\"4\">and %zu more</td></tr>\n", S->nlive - shown);
  else if (!S->nlive)
    wfp__buf_adds(&b, "<tr><td colspan=\"4\">none</td></tr>\n");
  wfp__buf_adds(&b, "</table>\n<p class=\"sub\">JSON: <code>/v1/invocations/ID</code>, "
                    "<code>/v1/messages</code>, <code>/v1/context</code>; Prometheus: "
                    "<a href=\"/metrics\">/metrics</a></p></body></html>\n");
  if (b.oom)
    wfp_http_error(req, 500, "out of memory");
  else
    wfp_http_respond(req, 200, "text/html; charset=utf-8", b.data, b.len);
  wfp__buf_free(&b);
}
