#!/bin/sh
# syscalls.sh: a step round trip makes no system call. The same program
# runs with 10 and with 20000 loop iterations (one ctx_get_i64 effect, so
# one step, each) under strace; the big run makes the system calls of the
# small one and, at most, one poll of the loop per 500 steps (the loop
# looks at timers and I/O once per time slice of steps, a few milliseconds).
. "$(dirname "$0")/lib.sh"

count() {
    strace -f -qq -o "$WORK/trace" "$WFP_HOST" "$SO/spin.so" --ctx "n=$1" --ctx k=1 >/dev/null 2>&1 ||
        fail "spin.so n=$1 failed under strace"
    wc -l <"$WORK/trace"
}

if [ -n "${SANITIZE:-}" ]; then
    # the sanitizers' own runtime maps memory as it goes, and LeakSanitizer
    # cannot run under ptrace: the count means something in a plain build
    echo "skipped: this is a sanitizer build ($SANITIZE); the plain build runs this test"
    exit 77
fi
if ! command -v strace >/dev/null 2>&1; then
    fail "strace is not installed (scripts/setup-debian.sh installs it)"
    finish
fi
small=$(count 10)
big=$(count 20000)
if [ "$big" -gt $((small + 20000 / 500)) ]; then
    fail "20000 steps made $big system calls, 10 steps made $small: steps make system calls"
fi
echo "system calls: $small for 10 steps, $big for 20000"
finish
