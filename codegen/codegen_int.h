/*
** codegen_int.h: what the code generator's files share (never installed).
** The guest runtime's Wasm is built from guest/rt.c and embedded at build
** time (rt_wasm.c, generated); lower.c reads it and adds the program.
*/
#ifndef WFP_CODEGEN_INT_H
#define WFP_CODEGEN_INT_H

#include <stddef.h>

#include "ir_ast.h"
#include "wfp/codegen.h"

extern const unsigned char wfp__rt_wasm[];
extern const size_t wfp__rt_wasm_len;

#endif /* WFP_CODEGEN_INT_H */
