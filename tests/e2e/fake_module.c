/*
** fake_module.c: shared objects that are not wfp modules, for the host's
** refusals: with -DWFP_FAKE_ABI=N a descriptor of another ABI version,
** without it no descriptor at all.
*/
#include "wfp/abi.h"

#ifdef WFP_FAKE_ABI
static const wfp_module_desc desc = {WFP_FAKE_ABI, sizeof(wfp_module_desc)};
__attribute__((visibility("default"))) const wfp_module_desc *wfp_module_descriptor(void);
const wfp_module_desc *wfp_module_descriptor(void) { return &desc; }
#else
__attribute__((visibility("default"))) int not_wfp(void);
int not_wfp(void) { return 42; }
#endif
