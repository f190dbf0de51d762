/*
** version.c: the version the shared library reports at run time, which can
** differ from the header a program was compiled with (WFP_VERSION_HEX).
** Built into libwfp only: the commands are static and know their version.
*/
#include "wfp/wfp.h"

unsigned wfp_version(void) { return WFP_VERSION_HEX; }
const char *wfp_version_string(void) { return WFP_VERSION_STRING; }
