/*
** map.c: the front end's hash maps, names (or pointers) to nodes, so lookups
** stay constant-time on programs of a million elements. No deletion.
*/
#include <stdlib.h>
#include <string.h>

#include "ir_ast.h"

struct wfp__map_slot {
  const void *key; /* NULL: empty */
  void *val;
  uint64_t hash;
};

static uint64_t hash_str(const char *s) {
  /* FNV-1a */
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211ull;
  }
  return h;
}

static uint64_t hash_ptr(const void *p) {
  uint64_t h = (uint64_t)(uintptr_t)p;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

void wfp__map_init(wfp__map *m, bool ptr_keys) {
  memset(m, 0, sizeof *m);
  m->ptr_keys = ptr_keys;
}

void wfp__map_free(wfp__map *m) {
  free(m->slots);
  m->slots = NULL;
  m->cap = m->n = 0;
}

static bool same(const wfp__map *m, const struct wfp__map_slot *s, const void *key,
                 uint64_t h) {
  if (m->ptr_keys)
    return s->key == key;
  return s->hash == h && strcmp(s->key, key) == 0;
}

static struct wfp__map_slot *find(const wfp__map *m, const void *key, uint64_t h) {
  size_t mask = m->cap - 1;
  for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
    struct wfp__map_slot *s = &m->slots[i];
    if (!s->key || same(m, s, key, h))
      return s;
  }
}

void *wfp__map_get(const wfp__map *m, const void *key) {
  if (!m->n)
    return NULL;
  uint64_t h = m->ptr_keys ? hash_ptr(key) : hash_str(key);
  struct wfp__map_slot *s = find(m, key, h);
  return s->key ? s->val : NULL;
}

static bool grow(wfp__map *m) {
  size_t cap = m->cap ? m->cap * 2 : 16;
  struct wfp__map_slot *ns = calloc(cap, sizeof *ns);
  if (!ns)
    return false;
  wfp__map old = *m;
  m->slots = ns;
  m->cap = cap;
  for (size_t i = 0; i < old.cap; i++)
    if (old.slots[i].key)
      *find(m, old.slots[i].key, old.slots[i].hash) = old.slots[i];
  free(old.slots);
  return true;
}

int wfp__map_put(wfp__map *m, const void *key, void *val, bool replace,
                 void **old) {
  if (old)
    *old = NULL;
  /* at most half full: probes stay short */
  if ((m->n + 1) * 2 > m->cap && !grow(m))
    return WFP_ENOMEM;
  uint64_t h = m->ptr_keys ? hash_ptr(key) : hash_str(key);
  struct wfp__map_slot *s = find(m, key, h);
  if (s->key) {
    if (old)
      *old = s->val;
    if (replace)
      s->val = val;
    return WFP_OK;
  }
  s->key = key;
  s->val = val;
  s->hash = h;
  m->n++;
  return WFP_OK;
}
