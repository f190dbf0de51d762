/*
** trap_module.c: a hand-written module for the host's trap paths. Its step
** calls wasm_rt_trap with the code its input names, as wasm2c's generated
** code does on an out-of-bounds access, a division by zero, unreachable
** code or call-stack exhaustion; after an "unreachable" trap it reports a
** fatal message as the guest runtime would. Built three ways: as a module
** of the first ABI-1 descriptor (the default), of today's with room for
** later fields (WFP_TRAP_FULL), or cut short of the first (WFP_TRAP_SHORT).
*/
#include <stdlib.h>
#include <string.h>

#include <wfp/wasm-rt.h>

#include "wfp/abi.h"

typedef struct inst {
  int steps;
  char fatal[64];
} inst;

static void *inst_new(void) { return calloc(1, sizeof(inst)); }
static void inst_free(void *p) { free(p); }

static int run_step(void *p, uint64_t ctx, const char *input, uint32_t input_len,
                    const uint8_t *state, uint32_t state_len, int has_resume,
                    const char *resume, uint32_t resume_len, wfp_abi_step *out) {
  inst *I = p;
  (void)ctx, (void)state, (void)state_len, (void)has_resume, (void)resume,
      (void)resume_len;
  I->steps++;
  static const struct {
    const char *name;
    wasm_rt_trap_t code;
  } traps[] = {{"oob", WASM_RT_TRAP_OOB},
               {"div", WASM_RT_TRAP_DIV_BY_ZERO},
               {"overflow", WASM_RT_TRAP_INT_OVERFLOW},
               {"unreachable", WASM_RT_TRAP_UNREACHABLE},
               {"exhaustion", WASM_RT_TRAP_EXHAUSTION}};
  for (size_t i = 0; i < sizeof traps / sizeof traps[0]; i++)
    if (memmem(input, input_len, traps[i].name, strlen(traps[i].name))) {
      if (traps[i].code == WASM_RT_TRAP_UNREACHABLE)
        strcpy(I->fatal, "out of memory");
      wasm_rt_trap(traps[i].code);
    }
  static const char ok[] = "{\"result\":\"fine\"}";
  memset(out, 0, sizeof *out);
  out->kind = WFP_STEP_DONE;
  out->text.ptr = (const uint8_t *)ok;
  out->text.len = sizeof ok - 1;
  return 0;
}

static void post_return(void *p) { (void)p; }
static const char *fatal_message(void *p) { return ((inst *)p)->fatal; }
static size_t memory_bytes(void *p) {
  (void)p;
  return 0;
}
static void set_fuel(void *p, int64_t budget) {
  (void)p;
  (void)budget;
}
static int64_t fuel_used(void *p) {
  (void)p;
  return 0;
}

static const wfp_abi_func funcs[] = {{"main", "0000000000000000", 0, 0, NULL, NULL,
                                      WFP_TY_STR, NULL, NULL}};

#if defined(WFP_TRAP_FULL)
/* Today's descriptor with every appended field, inside a larger struct as
** a later ABI-1 module would have it (fields appended after today's): the
** host reads what it knows. */
static void init_module(void) {}
static void *inst_alloc(void) { return calloc(1, sizeof(inst)); }
static void inst_init(void *p) { (void)p; }
static const struct {
  wfp_module_desc d;
  void *later[8];
} desc_ext = {{WFP_ABI_VERSION, sizeof desc_ext, "test", "7472617073000000", "{}", 2,
               "main", 1, funcs, 0, NULL, inst_new, inst_free, run_step, post_return,
               fatal_message, memory_bytes, set_fuel, fuel_used, WFP_RT_LAYOUT,
               init_module, inst_alloc, inst_init},
              {NULL}};
#define DESC (&desc_ext.d)
#else
/* The first ABI-1 descriptor (up to fuel_used): a module built before any
** field was appended. WFP_TRAP_SHORT cuts it shorter than that. */
#ifdef WFP_TRAP_SHORT
#define SIZE (WFP_MODULE_DESC_V1_SIZE - sizeof(void *))
#else
#define SIZE WFP_MODULE_DESC_V1_SIZE
#endif
static const wfp_module_desc desc = {
    WFP_ABI_VERSION, SIZE, "test", "7472617073000000", "{}", 2,
    "main", 1, funcs, 0, NULL, inst_new, inst_free, run_step, post_return,
    fatal_message, memory_bytes, set_fuel, fuel_used, 0, NULL, NULL, NULL};
#define DESC (&desc)
#endif

__attribute__((visibility("default"))) const wfp_module_desc *wfp_module_descriptor(void);
const wfp_module_desc *wfp_module_descriptor(void) { return DESC; }
