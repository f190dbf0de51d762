/* kernel.c: bench/kernel.json by hand in C, the compute baseline: nested
** loops of i64 arithmetic (a Collatz count) with no fuel, no suspension and
** no bounds; run.sh builds it with the C compiler wfp-aot runs. Never shipped. */
#include <stdint.h>

#define EXPORT __attribute__((visibility("default")))

/* The total number of Collatz steps of 1..n, as bench/kernel.json counts
** them: x odd -> 3x + 1, x even -> x >> 1 (arithmetic), until x is 1. */
EXPORT int64_t kernel(int64_t n) {
  int64_t total = 0;
  for (int64_t a = 1; a <= n; a++) {
    int64_t x = a;
    while (x != 1) {
      if (x & 1)
        x = x * 3 + 1;
      else
        x = x >> 1;
      total++;
    }
  }
  return total;
}
