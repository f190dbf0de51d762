/*
** fuzz.h: what the fuzz targets share: the libFuzzer entry points, the
** check that turns a broken promise into a crash libFuzzer reports, and
** the state checksum that the state target forges.
** Not a test framework: each target is one file with one entry point.
*/
#ifndef WFP_FUZZ_H
#define WFP_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wfp/abi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A promise of the library broken: abort, so that libFuzzer (or the replay
** driver) reports the input. Kept in every build, unlike assert(). */
#define FUZZ_CHECK(c, ...)                                                     \
  do {                                                                         \
    if (!(c)) {                                                                \
      fprintf(stderr, "%s:%d: fuzz check failed: %s: ", __FILE__, __LINE__,    \
              #c);                                                             \
      fprintf(stderr, __VA_ARGS__);                                            \
      fputc('\n', stderr);                                                     \
      abort();                                                                 \
    }                                                                          \
  } while (0)

/* The state checksum (wfp_state_sum of wfp/abi.h), which is no MAC: the
** fuzzer and the tests forge it as anyone could. n >= 32. */
static inline uint64_t fuzz_state_sum(const uint8_t *p, uint32_t n) {
  return wfp_state_sum(p, n);
}

/* Writes the checksum a state of n >= 32 bytes must carry into it. */
static inline void fuzz_state_resign(uint8_t *p, uint32_t n) {
  uint64_t sum = fuzz_state_sum(p, n);
  memcpy(p + 16, &sum, 8);
}

#endif /* WFP_FUZZ_H */
