#!/bin/sh
# check_wraps.sh: every allocating C library function that the wfp
# libraries and commands call must be one the fault-injection test wraps
# (tests/oom/CMakeLists.txt, WFP_OOM_WRAPPED), or an allocation site would
# never fail under test. cJSON allocates through hooks that the test sets,
# so nothing may set hooks of its own.
# Usage: check_wraps.sh "WRAPPED NAMES" ARCHIVE-OR-OBJECT...
set -eu
wrapped=$1
shift
allocating="malloc calloc realloc reallocarray strdup strndup __strdup __strndup
  realpath canonicalize_file_name get_current_dir_name getcwd asprintf vasprintf
  open_memstream open_wmemstream getline getdelim posix_memalign aligned_alloc
  memalign valloc pvalloc wcsdup tempnam scandir glob
  posix_spawn_file_actions_addopen posix_spawn_file_actions_adddup2
  posix_spawn_file_actions_addclose cJSON_InitHooks"
used=$(nm --undefined-only "$@" 2>/dev/null | awk 'NF >= 2 {print $NF}' | sort -u)
bad=0
for f in $allocating; do
    if echo "$used" | grep -qx "$f"; then
        case " $wrapped " in
        *" $f "*) echo "wrapped: $f" ;;
        *) echo "FAIL: the wfp code calls $f, which the fault-injection test does not wrap"
           bad=1 ;;
        esac
    fi
done
exit $bad
