/*
** failalloc.h: the allocation countdown of the fault-injection tests.
** Linked with -Wl,--wrap=malloc,... it sees every allocation the wfp
** libraries make (and cJSON's, through its hooks); it is test-only code.
*/
#ifndef WFP_TESTS_FAILALLOC_H
#define WFP_TESTS_FAILALLOC_H

#include <stdbool.h>
#include <stddef.h>

typedef enum fa_mode {
  FA_COUNT,   /* count allocations, fail none */
  FA_ONCE,    /* fail the k-th allocation only */
  FA_PERSIST, /* fail the k-th and every later one */
} fa_mode;

/* Starts counting allocations from 0; in FA_ONCE and FA_PERSIST mode the
** k-th one (k >= 1) fails. Routes cJSON through the countdown too. */
void fa_arm(fa_mode mode, unsigned long k);
/* Stops injecting (allocations still succeed afterwards) and returns how
** many allocations were counted since fa_arm. */
unsigned long fa_disarm(void);
/* How many allocations were made to fail since fa_arm. */
unsigned long fa_failures(void);
/* Allocations counted since fa_arm. */
unsigned long fa_count(void);
/* Routes SQLite's allocations through the countdown too (before SQLite is
** first used in the process). 0, or -1 when SQLite refused. */
int fa_hook_sqlite(void);

#endif /* WFP_TESTS_FAILALLOC_H */
