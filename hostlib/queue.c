/*
** queue.c: the loop's bookkeeping: intrusive queues of invocations (an
** invocation is in one at a time), the request slots that outlive their
** invocations, and the actors' table (who holds each resource instance,
** who waits for it). The scheduling that uses them: loop.c.
*/
#include <stdlib.h>
#include <string.h>

#include "host_int.h"

/* ---- queues: intrusive, one per invocation at a time ---- */

void wfp__q_push(wfp__queue *q, wfp_invocation *inv) {
  inv->next = NULL;
  inv->prev = q->tail;
  if (q->tail)
    q->tail->next = inv;
  else
    q->head = inv;
  q->tail = inv;
  q->n++;
}

void wfp__q_remove(wfp__queue *q, wfp_invocation *inv) {
  if (inv->prev)
    inv->prev->next = inv->next;
  else
    q->head = inv->next;
  if (inv->next)
    inv->next->prev = inv->prev;
  else
    q->tail = inv->prev;
  inv->prev = inv->next = NULL;
  q->n--;
}

wfp_invocation *wfp__q_pop(wfp__queue *q) {
  wfp_invocation *inv = q->head;
  if (inv)
    wfp__q_remove(q, inv);
  return inv;
}

void wfp__tops_add(wfp_loop *l, wfp_invocation *inv) {
  inv->tnext = NULL;
  inv->tprev = l->tops.tail;
  if (l->tops.tail)
    l->tops.tail->tnext = inv;
  else
    l->tops.head = inv;
  l->tops.tail = inv;
  l->tops.n++;
}

void wfp__tops_remove(wfp_loop *l, wfp_invocation *inv) {
  if (inv->tprev)
    inv->tprev->tnext = inv->tnext;
  else
    l->tops.head = inv->tnext;
  if (inv->tnext)
    inv->tnext->tprev = inv->tprev;
  else
    l->tops.tail = inv->tprev;
  inv->tprev = inv->tnext = NULL;
  l->tops.n--;
}

/* ---- requests: slots that live as long as the loop ----
** A completed request goes to the back of the free list, and a slot is
** handed out again only when more than REQ_REUSE_MIN others wait before
** it: a stale second completion finds a free slot (WFP_EINVAL), never
** freed memory and, but after many completions, never another effect. */

#define REQ_SLAB 64
#define REQ_REUSE_MIN 64

wfp_effect_req *wfp__req_new(wfp_loop *l, wfp_invocation *inv) {
  if (l->nfree <= REQ_REUSE_MIN) {
    wfp_effect_req *slab = calloc(REQ_SLAB, sizeof *slab);
    wfp_effect_req **ns = slab ? realloc(l->slabs, (l->nslabs + 1) * sizeof *ns) : NULL;
    if (ns) {
      l->slabs = ns;
      l->slabs[l->nslabs++] = slab;
      for (size_t i = 0; i < REQ_SLAB; i++) {
        slab[i].loop = l;
        wfp__req_release(l, &slab[i]);
      }
    } else {
      free(slab);
      if (!l->nfree)
        return NULL;
    }
  }
  wfp_effect_req *r = l->free_reqs;
  l->free_reqs = r->next;
  if (!l->free_reqs)
    l->free_tail = NULL;
  l->nfree--;
  r->next = NULL;
  r->inv = inv;
  r->state = WFP__REQ_WAITING;
  return r;
}

void wfp__req_release(wfp_loop *l, wfp_effect_req *req) {
  req->state = WFP__REQ_FREE;
  req->inv = NULL;
  req->next = NULL;
  if (l->free_tail)
    l->free_tail->next = req;
  else
    l->free_reqs = req;
  l->free_tail = req;
  l->nfree++;
}

/* ---- actors: one invocation at a time per resource instance ---- */

wfp__actor *wfp__actor_slot(wfp_loop *l, uint64_t handle, bool add) {
  if (add && (l->nactors + 1) * 2 > l->actors_cap) {
    size_t cap = l->actors_cap ? l->actors_cap * 2 : 16;
    wfp__actor *na = calloc(cap, sizeof *na);
    if (!na)
      return NULL;
    for (size_t i = 0; i < l->actors_cap; i++) {
      wfp__actor *a = &l->actors[i];
      if (!a->handle)
        continue;
      size_t k = (size_t)(a->handle * 0x9E3779B97F4A7C15ull) & (cap - 1);
      while (na[k].handle)
        k = (k + 1) & (cap - 1);
      na[k] = *a;
    }
    free(l->actors);
    l->actors = na;
    l->actors_cap = cap;
  }
  if (!l->actors_cap)
    return NULL;
  size_t mask = l->actors_cap - 1;
  for (size_t k = (size_t)(handle * 0x9E3779B97F4A7C15ull) & mask;; k = (k + 1) & mask) {
    wfp__actor *a = &l->actors[k];
    if (a->handle == handle)
      return a;
    if (!a->handle) {
      if (!add)
        return NULL;
      a->handle = handle;
      l->nactors++;
      return a;
    }
  }
}

bool wfp__actor_acquire(wfp_loop *l, wfp_invocation *inv, bool *oom) {
  *oom = false;
  if (!inv->self)
    return true;
  wfp__actor *a = wfp__actor_slot(l, inv->self, true);
  if (!a) {
    *oom = true;
    return false;
  }
  if (!a->owner) {
    a->owner = inv;
    return true;
  }
  inv->where = WFP__L_ACTOR;
  wfp__q_push(&a->waiting, inv);
  return false;
}

wfp_invocation *wfp__actor_release(wfp_loop *l, wfp_invocation *inv) {
  wfp__actor *a = inv->self ? wfp__actor_slot(l, inv->self, false) : NULL;
  if (!a)
    return NULL;
  if (a->owner == inv) {
    a->owner = wfp__q_pop(&a->waiting);
    return a->owner;
  }
  if (inv->where == WFP__L_ACTOR)
    wfp__q_remove(&a->waiting, inv);
  return NULL;
}
