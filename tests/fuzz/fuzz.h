/*
** fuzz.h: what the fuzz targets share: the libFuzzer entry points and the
** check that turns a broken promise into a crash libFuzzer reports.
** Not a test framework: each target is one file with one entry point.
*/
#ifndef WFP_FUZZ_H
#define WFP_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

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

#endif /* WFP_FUZZ_H */
