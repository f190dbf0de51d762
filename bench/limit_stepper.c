/* limit_stepper.c: the physical limit of an effect round trip, a .so whose
** step copies its live values in and out and takes an integer resume, and
** does nothing else; bench/loop.json's work by hand. Never shipped. */
/*
** limit_step(state, len, resume, out, result): state holds the live values
** of the last pending step (len 0 on the first step), resume the integer
** the host answered with. The step writes its live values to out and
** returns the key it waits for (LIMIT_KEY_N, LIMIT_KEY_K), or LIMIT_DONE
** with *result. No validation, no text, no allocation: a lower bound on
** what any stepper across a .so boundary can cost, not a design.
*/
#include <stdint.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))

enum { LIMIT_DONE = 0, LIMIT_KEY_N = 1, LIMIT_KEY_K = 2 };

/* The live values at a suspension and where it was, one 8-byte word each:
** n, s, i, point (LIMIT_KEY_N or LIMIT_KEY_K). Read and written a word at
** a time: a copy of the whole as one struct lets gcc move it in 16-byte
** halves that straddle its own 8-byte stores (a store-forwarding stall of
** some 10 ns per step, a cost of that code, not of a step). */
enum { NWORDS = 4 };

EXPORT uint32_t limit_state_size(void) { return NWORDS * 8u; }

static int64_t rd(const void *p, int k) {
  int64_t v;
  memcpy(&v, (const char *)p + 8 * k, 8);
  return v;
}

static void wr(void *p, int k, int64_t v) { memcpy((char *)p + 8 * k, &v, 8); }

EXPORT int limit_step(const void *state, uint32_t len, int64_t resume, void *out,
                      int64_t *result) {
  int64_t n, s, i;
  if (len != NWORDS * 8u) {
    wr(out, 3, LIMIT_KEY_N);
    return LIMIT_KEY_N;
  }
  n = rd(state, 0);
  s = rd(state, 1);
  i = rd(state, 2);
  if (rd(state, 3) == LIMIT_KEY_N) {
    n = resume;
    s = 0;
    i = 0;
  } else {
    s += resume;
    i++;
  }
  if (i < n) {
    wr(out, 0, n);
    wr(out, 1, s);
    wr(out, 2, i);
    wr(out, 3, LIMIT_KEY_K);
    return LIMIT_KEY_K;
  }
  *result = s;
  return LIMIT_DONE;
}
