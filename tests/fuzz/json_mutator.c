/*
** json_mutator.c: a structure-aware mutator for the targets whose input is
** a program (ir, codegen), on top of libFuzzer's byte mutations. Half of
** the mutations parse the input as JSON and change the tree: a subtree
** replaced by a copy of another (the program's own expressions, statements,
** names and functions recombined), an array element dropped, repeated or
** moved, a number or string set to another from the program or to an edge
** value, a node wrapped in a copy of an operation around it. Byte-level
** mutations alone rarely keep a program valid; these mostly do, so codegen
** sees programs no seed had. Only linked into libFuzzer builds.
*/
#include <string.h>

#include <cjson/cJSON.h>

#include "fuzz.h"

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
                               unsigned int seed);

/* xorshift: reproducible from libFuzzer's seed */
static uint64_t rng;
static uint32_t pick(uint32_t n) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return n ? (uint32_t)(rng % n) : 0;
}

#define MAX_NODES 4096
typedef struct nodes {
  cJSON *n[MAX_NODES];
  int count;
} nodes;

static void collect(cJSON *j, nodes *all) {
  if (all->count == MAX_NODES)
    return;
  all->n[all->count++] = j;
  for (cJSON *c = j->child; c; c = c->next)
    collect(c, all);
}

static int is_container(const cJSON *j) { return cJSON_IsArray(j) || cJSON_IsObject(j); }

/* Puts n in old's place in p (old is freed), with old's key when p is an
** object and none in an array. false, and nothing changed, when out of
** memory: the caller still owns n. */
static int put(cJSON *p, cJSON *old, cJSON *n) {
  char *key = NULL;
  if (cJSON_IsObject(p) && old->string && !(key = strdup(old->string)))
    return 0;
  if (!(n->type & cJSON_StringIsConst))
    cJSON_free(n->string);
  n->string = key;
  n->type &= ~cJSON_StringIsConst;
  return cJSON_ReplaceItemViaPointer(p, old, n);
}

/* Replaces old (anywhere under the root, not the root) with n. */
static int replace(nodes *all, cJSON *old, cJSON *n) {
  for (int i = 0; i < all->count; i++) {
    cJSON *p = all->n[i];
    if (!is_container(p))
      continue;
    for (cJSON *c = p->child; c; c = c->next)
      if (c == old)
        return put(p, old, n);
  }
  return 0;
}

static const char *const words[] = {
    "main", "x", "i64", "str", "json", "fn", "n", "", "add", "call", "lambda",
    "call_ref", "var", "ctx_get_i64", "concat", "json", "get_json", "while",
    "if", "return", "let", "set", "break", "db_query", "self_get", "self_set",
    "sleep_ms", "msg_send", "len", "input", "fn", "lit_json", "lit_i64"};
static const double numbers[] = {0, 1, -1, 2, 7, 31, 32, 33, 255, 256, 257, 65536,
                                 9007199254740992.0, -9007199254740992.0, 1e300, 0.5};

static int mutate_tree(cJSON *root) {
  static nodes all;
  all.count = 0;
  collect(root, &all);
  if (all.count < 2)
    return 0;
  cJSON *a = all.n[1 + pick((uint32_t)all.count - 1)];
  cJSON *b = all.n[pick((uint32_t)all.count)];
  switch (pick(7)) {
  case 0: { /* a replaced by a copy of b */
    if (a == b)
      return 0;
    cJSON *c = cJSON_Duplicate(b, 1);
    if (!c)
      return 0;
    if (!replace(&all, a, c)) {
      cJSON_Delete(c);
      return 0;
    }
    return 1;
  }
  case 1: /* an element of an array dropped */
    if (!cJSON_IsArray(b) || !b->child)
      return 0;
    cJSON_DeleteItemFromArray(b, (int)pick((uint32_t)cJSON_GetArraySize(b)));
    return 1;
  case 2: { /* an element repeated, or a copy of a inserted, into an array */
    if (!cJSON_IsArray(b))
      return 0;
    int n = cJSON_GetArraySize(b);
    cJSON *src = n && pick(2) ? cJSON_GetArrayItem(b, (int)pick((uint32_t)n)) : a;
    cJSON *c = cJSON_Duplicate(src, 1);
    if (!c)
      return 0;
    if (!(c->type & cJSON_StringIsConst))
      cJSON_free(c->string);
    c->string = NULL;
    c->type &= ~cJSON_StringIsConst;
    if (!cJSON_InsertItemInArray(b, (int)pick((uint32_t)n + 1), c)) {
      cJSON_Delete(c);
      return 0;
    }
    return 1;
  }
  case 3: { /* two elements of an array swapped */
    if (!cJSON_IsArray(b))
      return 0;
    int n = cJSON_GetArraySize(b);
    if (n < 2)
      return 0;
    cJSON *x = cJSON_GetArrayItem(b, (int)pick((uint32_t)n));
    cJSON *y = cJSON_GetArrayItem(b, (int)pick((uint32_t)n));
    if (x == y)
      return 0;
    /* by copies: cJSON 1.7.15 loses an item detached and inserted again */
    cJSON *cx = cJSON_Duplicate(x, 1), *cy = cJSON_Duplicate(y, 1);
    if (!cx || !cy || !put(b, x, cy)) {
      cJSON_Delete(cx);
      cJSON_Delete(cy);
      return 0;
    }
    if (!put(b, y, cx))
      cJSON_Delete(cx);
    return 1;
  }
  case 4: /* a number set to an edge value */
    if (!cJSON_IsNumber(a))
      return 0;
    cJSON_SetNumberValue(a, numbers[pick(sizeof numbers / sizeof numbers[0])]);
    return 1;
  case 5: /* a string set to another of the program, or to a word */
    if (!cJSON_IsString(a))
      return 0;
    if (cJSON_IsString(b) && pick(2))
      return cJSON_SetValuestring(a, b->valuestring) != NULL;
    return cJSON_SetValuestring(a, words[pick(sizeof words / sizeof words[0])]) != NULL;
  default: { /* a wrapped: a copy of b (an object) with one child that is
             ** an object replaced by a */
    if (!cJSON_IsObject(b) || a == b)
      return 0;
    cJSON *w = cJSON_Duplicate(b, 1);
    if (!w)
      return 0;
    cJSON *slot = NULL;
    int k = 0;
    for (cJSON *c = w->child; c; c = c->next)
      if (cJSON_IsObject(c) && pick((uint32_t)++k) == 0)
        slot = c;
    cJSON *inner = slot ? cJSON_Duplicate(a, 1) : NULL;
    if (!inner || !put(w, slot, inner)) {
      cJSON_Delete(inner);
      cJSON_Delete(w);
      return 0;
    }
    if (!replace(&all, a, w)) {
      cJSON_Delete(w); /* inner with it */
      return 0;
    }
    return 1;
  }
  }
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
                               unsigned int seed) {
  rng = (uint64_t)seed * 0x9E3779B97F4A7C15ull + 1;
  if (pick(2) == 0)
    return LLVMFuzzerMutate(data, size, max_size);
  cJSON *root = cJSON_ParseWithLength((const char *)data, size);
  if (!root)
    return LLVMFuzzerMutate(data, size, max_size);
  int changed = 0;
  for (int k = 1 + (int)pick(3); k > 0; k--)
    changed |= mutate_tree(root);
  char *text = changed ? cJSON_PrintUnformatted(root) : NULL;
  cJSON_Delete(root);
  size_t n = text ? strlen(text) : 0;
  if (!text || n > max_size) {
    cJSON_free(text);
    return LLVMFuzzerMutate(data, size, max_size);
  }
  memcpy(data, text, n);
  cJSON_free(text);
  return n;
}
