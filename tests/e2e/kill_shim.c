/*
** kill_shim.c: preloaded into wfp-host by kills.sh. Its fsync first sends
** the process the signal KILL_IN_FSYNC names: a kill that lands while a
** checkpoint's temporary file exists, every time, not by luck of timing.
*/
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

int fsync(int fd) {
  static int (*real)(int);
  if (!real)
    real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
  const char *sig = getenv("KILL_IN_FSYNC");
  if (sig && *sig)
    raise(atoi(sig));
  return real(fd);
}
