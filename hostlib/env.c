/*
** env.c: an invocation's environment: the context (a typed key/value map
** kept in insertion order with a hash index), the messages sent, and the
** resource instances with their typed properties.
*/
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "host_int.h"

wfp_env *wfp_env_new(void) { return calloc(1, sizeof(wfp_env)); }

static void free_insts(wfp_env *e) {
  for (size_t i = 0; i < e->ninsts; i++) {
    inst_ent *in = &e->insts[i];
    for (size_t k = 0; k < in->nprops; k++) {
      free(in->props[k].name);
      free(in->props[k].json);
    }
    free(in->props);
    free(in->resource);
  }
  free(e->insts);
}

void wfp__env_clear(wfp_env *e) {
  free_insts(e);
  for (size_t i = 0; i < e->nctx; i++)
    free(e->ctx[i].key);
  for (size_t i = 0; i < e->nmsgs; i++) {
    free(e->msgs[i].topic);
    free(e->msgs[i].payload);
  }
  free(e->ctx);
  free(e->index);
  free(e->msgs);
  /* the database is not the invocation's state: it stays open */
  struct sqlite3 *db = e->db;
  char *db_path = e->db_path;
  memset(e, 0, sizeof *e);
  e->db = db;
  e->db_path = db_path;
}

void wfp_env_free(wfp_env *e) {
  if (!e)
    return;
  wfp__env_close_db(e);
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

int wfp_env_ctx_setn(wfp_env *e, const char *key, size_t len, int64_t v) {
  if (!e || (!key && len) || !wfp__utf8_valid(key ? key : "", len))
    return WFP_EINVAL;
  return wfp__env_ctx_setn(e, key ? key : "", len, v);
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

/* ---- resource instances ---- */

int wfp__cjson_parse(const char *text, size_t n, cJSON **out) {
  *out = cJSON_ParseWithLength(text, n);
  if (*out)
    return WFP_OK;
  /* cJSON says only "no": text it reads when memory suffices is text it
  ** failed on for want of memory */
  return wfp__json_valid(text, n, CJSON_NESTING_LIMIT) ? WFP_ENOMEM : WFP_EINVAL;
}

int wfp__json_of_type(const char *text, size_t n, uint8_t ty, char **compact) {
  *compact = NULL;
  cJSON *j;
  int rc = wfp__cjson_parse(text, n, &j);
  if (rc)
    return rc;
  bool ok = true;
  wfp__buf b;
  wfp__buf_init(&b);
  if (ty == WFP_TY_I64) {
    /* exactly: cJSON keeps doubles */
    size_t s = 0, e = n;
    while (s < e && strchr(" \t\r\n", text[s]))
      s++;
    while (e > s && strchr(" \t\r\n", text[e - 1]))
      e--;
    int64_t v;
    ok = cJSON_IsNumber(j) && wfp__parse_i64(text + s, e - s, &v);
    if (ok)
      wfp__buf_add_i64(&b, v);
  } else if (ty == WFP_TY_STR) {
    ok = cJSON_IsString(j);
    if (ok)
      wfp__buf_add_jstr(&b, j->valuestring, strlen(j->valuestring));
  } else {
    /* white space out, everything else (numbers too) as written */
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
      char c = text[i];
      if (in_str) {
        wfp__buf_addc(&b, c);
        if (c == '\\' && i + 1 < n)
          wfp__buf_addc(&b, text[++i]);
        else if (c == '"')
          in_str = false;
      } else if (c == '"') {
        in_str = true;
        wfp__buf_addc(&b, c);
      } else if (!strchr(" \t\r\n", c)) {
        wfp__buf_addc(&b, c);
      }
    }
  }
  cJSON_Delete(j);
  if (!ok) {
    wfp__buf_free(&b);
    return WFP_EINVAL;
  }
  if (b.oom) {
    wfp__buf_free(&b);
    return WFP_ENOMEM;
  }
  *compact = wfp__buf_take(&b, NULL);
  return *compact ? WFP_OK : WFP_ENOMEM;
}

inst_ent *wfp__env_instance(const wfp_env *e, uint64_t handle) {
  for (size_t i = 0; e && i < e->ninsts; i++)
    if (e->insts[i].handle == handle)
      return &e->insts[i];
  return NULL;
}

prop_ent *wfp__env_prop(const inst_ent *in, const char *name, size_t n) {
  for (size_t i = 0; in && i < in->nprops; i++)
    if (strncmp(in->props[i].name, name, n) == 0 && in->props[i].name[n] == 0)
      return &in->props[i];
  return NULL;
}

inst_ent *wfp__env_instance_add(wfp_env *e, uint64_t handle, const char *resource) {
  if (e->ninsts == e->insts_cap) {
    size_t cap = e->insts_cap ? e->insts_cap * 2 : 4;
    inst_ent *ni = realloc(e->insts, cap * sizeof *ni);
    if (!ni)
      return NULL;
    e->insts = ni;
    e->insts_cap = cap;
  }
  char *r = strdup(resource);
  if (!r)
    return NULL;
  inst_ent *in = &e->insts[e->ninsts++];
  memset(in, 0, sizeof *in);
  in->handle = handle;
  in->resource = r;
  if (handle >= e->next_handle)
    e->next_handle = handle + 1;
  return in;
}

int wfp__env_prop_add(inst_ent *in, const char *name, uint8_t ty, const char *json) {
  prop_ent *np = realloc(in->props, (in->nprops + 1) * sizeof *np);
  if (!np)
    return WFP_ENOMEM;
  in->props = np;
  char *n = strdup(name), *j = strdup(json);
  if (!n || !j) {
    free(n);
    free(j);
    return WFP_ENOMEM;
  }
  in->props[in->nprops].name = n;
  in->props[in->nprops].type = ty;
  in->props[in->nprops].json = j;
  in->nprops++;
  return WFP_OK;
}

int wfp_env_instance_new(wfp_env *e, const wfp_module *m, const char *resource,
                         uint64_t *handle) {
  if (!e || !m || !resource || !handle)
    return WFP_EINVAL;
  const wfp_module_desc *d = wfp_module_descriptor_of(m);
  const wfp_abi_resource *r = NULL;
  for (uint32_t i = 0; i < d->nresources; i++)
    if (strcmp(d->resources[i].name, resource) == 0)
      r = &d->resources[i];
  if (!r)
    return WFP_EINVAL;
  if (!e->next_handle)
    e->next_handle = 1;
  inst_ent *in = wfp__env_instance_add(e, e->next_handle, resource);
  if (!in)
    return WFP_ENOMEM;
  for (uint32_t k = 0; k < r->nprops; k++) {
    uint8_t ty = r->prop_types[k];
    const char *zero = ty == WFP_TY_I64 ? "0" : ty == WFP_TY_STR ? "\"\"" : "null";
    if (wfp__env_prop_add(in, r->prop_names[k], ty, zero))
      return WFP_ENOMEM;
  }
  *handle = in->handle;
  return WFP_OK;
}

int wfp_env_instance_restore(wfp_env *e, const wfp_module *m, const char *resource,
                             uint64_t handle) {
  if (!e || !m || !resource || !handle || handle > (1ull << 53) ||
      wfp__env_instance(e, handle))
    return WFP_EINVAL;
  uint64_t next = e->next_handle;
  e->next_handle = handle;
  uint64_t h = 0;
  int rc = wfp_env_instance_new(e, m, resource, &h);
  /* the next new one comes after every handle there is */
  if (next > e->next_handle)
    e->next_handle = next;
  return rc;
}

int wfp_env_instance_set(wfp_env *e, uint64_t handle, const char *prop,
                         const char *json) {
  inst_ent *in = wfp__env_instance(e, handle);
  prop_ent *p = prop ? wfp__env_prop(in, prop, strlen(prop)) : NULL;
  if (!p || !json)
    return WFP_EINVAL;
  char *c;
  int rc = wfp__json_of_type(json, strlen(json), p->type, &c);
  if (rc)
    return rc;
  free(p->json);
  p->json = c;
  return WFP_OK;
}

const char *wfp_env_instance_get(const wfp_env *e, uint64_t handle, const char *prop) {
  prop_ent *p = prop ? wfp__env_prop(wfp__env_instance(e, handle), prop, strlen(prop)) : NULL;
  return p ? p->json : NULL;
}

size_t wfp_env_instance_count(const wfp_env *e) { return e ? e->ninsts : 0; }

uint64_t wfp_env_instance_handle(const wfp_env *e, size_t i) {
  return e && i < e->ninsts ? e->insts[i].handle : 0;
}

const char *wfp_env_instance_resource(const wfp_env *e, uint64_t handle) {
  inst_ent *in = wfp__env_instance(e, handle);
  return in ? in->resource : NULL;
}

size_t wfp_env_instance_prop_count(const wfp_env *e, uint64_t handle) {
  inst_ent *in = wfp__env_instance(e, handle);
  return in ? in->nprops : 0;
}

const char *wfp_env_instance_prop_name(const wfp_env *e, uint64_t handle, size_t i) {
  inst_ent *in = wfp__env_instance(e, handle);
  return in && i < in->nprops ? in->props[i].name : NULL;
}

const char *wfp_env_instance_prop_value(const wfp_env *e, uint64_t handle, size_t i) {
  inst_ent *in = wfp__env_instance(e, handle);
  return in && i < in->nprops ? in->props[i].json : NULL;
}
