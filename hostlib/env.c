/*
** env.c: an invocation's environment: the context (a typed key/value map
** kept in insertion order with a hash index) and the messages sent.
*/
#include <stdlib.h>
#include <string.h>

#include "host_int.h"

wfp_env *wfp_env_new(void) { return calloc(1, sizeof(wfp_env)); }

void wfp__env_clear(wfp_env *e) {
  for (size_t i = 0; i < e->nctx; i++)
    free(e->ctx[i].key);
  for (size_t i = 0; i < e->nmsgs; i++) {
    free(e->msgs[i].topic);
    free(e->msgs[i].payload);
  }
  free(e->ctx);
  free(e->index);
  free(e->msgs);
  memset(e, 0, sizeof *e);
}

void wfp_env_free(wfp_env *e) {
  if (!e)
    return;
  wfp__env_clear(e);
  free(e);
}

static uint32_t hash(const char *s, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++)
    h = (h ^ (unsigned char)s[i]) * 16777619u;
  return h;
}

/* Index of key in e->ctx, or -1; *slot: where it is or would go. */
static long find(const wfp_env *e, const char *key, size_t n, size_t *slot) {
  if (!e->index_cap)
    return -1;
  size_t mask = e->index_cap - 1;
  for (size_t s = hash(key, n) & mask;; s = (s + 1) & mask) {
    uint32_t v = e->index[s];
    if (v == 0) {
      if (slot)
        *slot = s;
      return -1;
    }
    const char *k = e->ctx[v - 1].key;
    if (strncmp(k, key, n) == 0 && k[n] == 0) {
      if (slot)
        *slot = s;
      return (long)v - 1;
    }
  }
}

static int reindex(wfp_env *e, size_t cap) {
  uint32_t *ix = calloc(cap, sizeof *ix);
  if (!ix)
    return WFP_ENOMEM;
  free(e->index);
  e->index = ix;
  e->index_cap = cap;
  for (size_t i = 0; i < e->nctx; i++) {
    size_t slot;
    find(e, e->ctx[i].key, strlen(e->ctx[i].key), &slot);
    e->index[slot] = (uint32_t)i + 1;
  }
  return WFP_OK;
}

int wfp__env_ctx_setn(wfp_env *e, const char *key, size_t n, int64_t v) {
  long i = find(e, key, n, NULL);
  if (i >= 0) {
    e->ctx[i].v = v;
    return WFP_OK;
  }
  if ((e->nctx + 1) * 2 > e->index_cap &&
      reindex(e, e->index_cap ? e->index_cap * 2 : 16))
    return WFP_ENOMEM;
  if (e->nctx == e->ctx_cap) {
    size_t cap = e->ctx_cap ? e->ctx_cap * 2 : 8;
    ctx_ent *nc = realloc(e->ctx, cap * sizeof *nc);
    if (!nc)
      return WFP_ENOMEM;
    e->ctx = nc;
    e->ctx_cap = cap;
  }
  char *k = malloc(n + 1);
  if (!k)
    return WFP_ENOMEM;
  memcpy(k, key, n);
  k[n] = 0;
  e->ctx[e->nctx].key = k;
  e->ctx[e->nctx].v = v;
  e->nctx++;
  size_t slot;
  find(e, key, n, &slot);
  e->index[slot] = (uint32_t)e->nctx;
  return WFP_OK;
}

int wfp_env_ctx_set(wfp_env *e, const char *key, int64_t v) {
  if (!e || !key)
    return WFP_EINVAL;
  return wfp__env_ctx_setn(e, key, strlen(key), v);
}

int wfp__env_ctx_getn(const wfp_env *e, const char *key, size_t n, int64_t *v) {
  long i = find(e, key, n, NULL);
  if (i < 0)
    return WFP_EINVAL;
  *v = e->ctx[i].v;
  return WFP_OK;
}

int wfp_env_ctx_get(const wfp_env *e, const char *key, int64_t *v) {
  if (!e || !key || !v)
    return WFP_EINVAL;
  return wfp__env_ctx_getn(e, key, strlen(key), v);
}

size_t wfp_env_ctx_count(const wfp_env *e) { return e ? e->nctx : 0; }
const char *wfp_env_ctx_key(const wfp_env *e, size_t i) {
  return e && i < e->nctx ? e->ctx[i].key : NULL;
}
int64_t wfp_env_ctx_value(const wfp_env *e, size_t i) {
  return e && i < e->nctx ? e->ctx[i].v : 0;
}

int wfp__env_msg_add(wfp_env *e, const char *topic, size_t tn, const char *payload,
                     size_t pn) {
  if (e->nmsgs == e->msgs_cap) {
    size_t cap = e->msgs_cap ? e->msgs_cap * 2 : 8;
    msg_ent *nm = realloc(e->msgs, cap * sizeof *nm);
    if (!nm)
      return WFP_ENOMEM;
    e->msgs = nm;
    e->msgs_cap = cap;
  }
  char *t = malloc(tn + 1), *p = malloc(pn + 1);
  if (!t || !p) {
    free(t);
    free(p);
    return WFP_ENOMEM;
  }
  memcpy(t, topic, tn);
  t[tn] = 0;
  memcpy(p, payload, pn);
  p[pn] = 0;
  e->msgs[e->nmsgs].topic = t;
  e->msgs[e->nmsgs].payload = p;
  e->nmsgs++;
  return WFP_OK;
}

size_t wfp_env_message_count(const wfp_env *e) { return e ? e->nmsgs : 0; }
const char *wfp_env_message_topic(const wfp_env *e, size_t i) {
  return e && i < e->nmsgs ? e->msgs[i].topic : NULL;
}
const char *wfp_env_message_payload(const wfp_env *e, size_t i) {
  return e && i < e->nmsgs ? e->msgs[i].payload : NULL;
}
