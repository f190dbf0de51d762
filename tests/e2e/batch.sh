#!/bin/sh
# batch.sh: many invocations in one host (CONTRACT section 5) through the
# real wfp-host: --batch's lines and exit codes, invalid lines, streaming
# output, sleeps and fan-outs that wait together instead of in turn, an
# endless loop that does not hold the others up, one invocation at a time
# on a resource instance, --concurrency, --workers. Time bounds are loose
# (a second and more of slack): they tell waiting together from waiting in
# turn, not fast from slow.
. "$(dirname "$0")/lib.sh"

rt=$SO/runtime.so
ms() { date +%s%3N; }

# the lines, in order, one per input line; a line that is no valid input
# is a trap line naming the fault; exit 1 when any trapped
printf '{}\n{"fn":"main"}\nnot json\n\n{"fn":"nope"}\n[1]\n{"fn":"main","self":-3}\n' >"$WORK/in"
run 1 "$WFP_HOST" --batch "$WORK/in" "$SO/simple.so" --ctx n=41
cat >"$WORK/want" <<'EOF'
{"line":1,"output":{"result":42}}
{"line":2,"output":{"result":42}}
{"line":3,"trap":"the input: 'not json' is not JSON (not a JSON value, at byte 0)"}
{"line":4,"trap":"the input: '' is not JSON (unexpected end of the text, at byte 0)"}
{"line":5,"trap":"no function 'nope' in this program"}
{"line":6,"trap":"the input must be a JSON object, not '[1]'"}
{"line":7,"trap":"the input: \"self\" is not a handle (a positive integer)"}
EOF
cmp -s "$WORK/out" "$WORK/want" || fail "lines: $(diff "$WORK/want" "$WORK/out")"
# all done: 0; standard input; a last line without its newline; \r\n lines
printf '{}\r\n{"fn":"main"}' | run 0 "$WFP_HOST" "$SO/simple.so" --batch - --ctx n=1 &&
    out_is "$(printf '{"line":1,"output":{"result":2}}\n{"line":2,"output":{"result":2}}')"
# no lines: no output, exit 0
run 0 "$WFP_HOST" --batch /dev/null "$SO/simple.so" && out_is ""
# usage and environment errors
run 2 "$WFP_HOST" --batch "$WORK/in" "$SO/simple.so" --input '{}' && err_has "--input runs one invocation"
run 2 "$WFP_HOST" --batch "$WORK/in" "$SO/simple.so" --trace && err_has "--trace runs one invocation"
run 2 "$WFP_HOST" --batch "$WORK/in" "$SO/simple.so" --workers 0 && err_has "--workers wants a positive integer"
run 2 "$WFP_HOST" "$SO/simple.so" --concurrency 2 && err_has "--concurrency caps the invocations of a --batch"
run 3 "$WFP_HOST" --batch "$WORK/missing" "$SO/simple.so" && first_err_line_has "cannot read $WORK/missing"
run 3 "$WFP_HOST" --batch "$WORK/in" "$WORK/in" && first_err_line_has "not a wfp module"
run 2 "$WFP_HOST" --batch "$WORK/in" "$SO/resource.so" --new Nope && err_has "no resource 'Nope'"

# streaming: a line's result comes out before the next line goes in
if ! python3 - "$WFP_HOST" "$SO/simple.so" <<'EOF'
import subprocess, sys, select
p = subprocess.Popen([sys.argv[1], sys.argv[2], "--batch", "-", "--ctx", "n=5"],
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
for k in (1, 2, 3):
    p.stdin.write("{}\n")
    p.stdin.flush()
    ready, _, _ = select.select([p.stdout], [], [], 30)
    if not ready:
        sys.exit(f"line {k}: no result while the input stays open")
    line = p.stdout.readline()
    if line != '{"line":%d,"output":{"result":6}}\n' % k:
        sys.exit(f"line {k}: {line!r}")
p.stdin.close()
sys.exit(p.wait())
EOF
then
    fail "--batch does not stream its results"
fi

# a fan-out of 50 rows that sleep 100 ms each waits 0.1 s, not 5 s
t0=$(ms)
run 0 "$WFP_HOST" "$rt" --fn fanSleep --arg n=50 --arg ms=100 &&
    out_is "[$(seq -s, 1 50)]"
t=$(($(ms) - t0))
[ "$t" -lt 2500 ] || fail "50 rows sleeping 100 ms took $t ms"
echo "fan-out of 50 rows x 100 ms: $t ms"

# 1,000 invocations that sleep 1 s each: about a second in all
python3 -c 'print("\n".join(["{\"fn\":\"nap\",\"args\":[1000]}"] * 1000))' >"$WORK/naps"
t0=$(ms)
run 0 "$WFP_HOST" --batch "$WORK/naps" "$rt"
t=$(($(ms) - t0))
[ "$(grep -c '"output":{"result":1000}' "$WORK/out")" -eq 1000 ] || fail "naps: $(head -3 "$WORK/out")"
[ "$(sed -n '1000p' "$WORK/out")" = '{"line":1000,"output":{"result":1000}}' ] || fail "naps: out of order"
[ "$t" -lt 3000 ] || fail "1000 invocations sleeping 1 s took $t ms"
echo "1000 invocations x sleep 1 s: $t ms"

# an endless loop ends at --max-fuel; the others finish meanwhile
printf '{"fn":"forever"}\n{"fn":"nap","args":[10]}\n{"fn":"work","args":[100]}\n' >"$WORK/in"
run 1 "$WFP_HOST" --batch "$WORK/in" "$rt" --max-fuel 20000000 --workers 2
head -1 "$WORK/out" | grep -qF '{"line":1,"trap":"fuel limit reached (20000000 units)"}' ||
    fail "endless: $(head -1 "$WORK/out")"
grep -qF '{"line":2,"output":{"result":10}}' "$WORK/out" || fail "endless: $(cat "$WORK/out")"
# ... and at --max-steps, or at --max-time, with the others done
run 1 "$WFP_HOST" --batch "$WORK/in" "$rt" --max-steps 5 --fuel-slice 1000 &&
    grep -qF '{"line":1,"trap":"step limit reached (5 steps)"}' "$WORK/out" ||
    fail "endless by steps: $(cat "$WORK/out")"
run 1 "$WFP_HOST" --batch "$WORK/in" "$rt" --max-time 300 &&
    grep -qF '{"line":1,"trap":"time limit reached (300 ms)"}' "$WORK/out" ||
    fail "endless by time: $(cat "$WORK/out")"
grep -qF '{"line":3,"output":' "$WORK/out" || fail "endless by time: $(cat "$WORK/out")"
# a sleep longer than the time limit ends at the limit
t0=$(ms)
run 1 "$WFP_HOST" "$rt" --fn nap --arg ms=60000 --max-time 200 && err_has "trap: time limit reached (200 ms)"
[ $(($(ms) - t0)) -lt 30000 ] || fail "a 60 s sleep under --max-time 200 waited it out"
# memory: a string doubled past the limit
run 1 "$WFP_HOST" "$rt" --fn grow --arg n=30 --max-memory 4194304 &&
    err_has "trap: memory limit reached (4194304 bytes)"
run 0 "$WFP_HOST" "$rt" --fn grow --arg n=10 --max-memory 4194304 && out_is '{"result":32768}'

# one invocation at a time on a resource instance: each read, sleep and
# write happens alone, so none is lost, in the order the lines came
for w in 1 3; do
    python3 -c 'print("\n".join("{\"fn\":\"slowAdd\",\"args\":{\"who\":%d,\"ms\":20}}" % i for i in range(1, 21)))' >"$WORK/adds"
    run 0 "$WFP_HOST" --batch "$WORK/adds" "$rt" --new Tally:n=100 --workers "$w"
    python3 -c 'print("\n".join("{\"line\":%d,\"output\":{\"result\":%d}}" % (i, 100 + i) for i in range(1, 21)))' >"$WORK/want"
    cmp -s "$WORK/out" "$WORK/want" || fail "actor ($w workers): $(diff "$WORK/want" "$WORK/out" | head -5)"
done

# --concurrency: at most N alive; the rest wait (6 naps of 300 ms, 2 at a
# time, take three rounds at least)
python3 -c 'print("\n".join(["{\"fn\":\"nap\",\"args\":[300]}"] * 6))' >"$WORK/in"
t0=$(ms)
run 0 "$WFP_HOST" --batch "$WORK/in" "$rt" --concurrency 2
t=$(($(ms) - t0))
[ "$t" -ge 880 ] || fail "--concurrency 2: six 300 ms sleeps took $t ms"
[ "$(wc -l <"$WORK/out")" -eq 6 ] || fail "--concurrency 2: $(cat "$WORK/out")"

# many steps on four threads: every line the same result
python3 -c 'print("\n".join(["{\"fn\":\"work\",\"args\":[5000]}"] * 200))' >"$WORK/in"
run 0 "$WFP_HOST" --batch "$WORK/in" "$rt" --workers 4
[ "$(sort -u -t: -k3 "$WORK/out" | wc -l)" -eq 1 ] || fail "work: different results"
[ "$(wc -l <"$WORK/out")" -eq 200 ] || fail "work: $(wc -l <"$WORK/out") lines"
finish
