#!/bin/sh
# threads.sh: one host, several worker threads, many invocations of every
# kind at once (compute that yields often, sleeps, fan-outs, queries, one
# resource instance, the shared context), each line with the result it has
# alone. No timing: the ThreadSanitizer build runs it to find data races.
. "$(dirname "$0")/lib.sh"

rt=$SO/runtime.so
python3 - >"$WORK/in" <<'PY'
kinds = ['{"fn":"work","args":[30000]}', '{"fn":"fanWork","args":[4,2000]}',
         '{"fn":"nap","args":[2]}', '{"fn":"fanSleep","args":[3,1]}',
         '{"fn":"slowAdd","args":{"who":1,"ms":1}}', '{"fn":"bump"}']
print("\n".join(kinds[i % len(kinds)] for i in range(300)))
PY
run 0 "$WFP_HOST" --batch "$WORK/in" "$rt" --workers 4 --fuel-slice 500 --new Tally:n=0 --ctx hits=0
[ "$(wc -l <"$WORK/out")" -eq 300 ] || fail "$(wc -l <"$WORK/out") lines for 300"
# each kind, its result alone: the same on every line of it
for k in 1 2 3 4; do
    want=$(sed -n "${k}p" "$WORK/out" | sed 's/^{"line":[0-9]*,//')
    got=$(awk -v k="$k" 'NR % 6 == k % 6' "$WORK/out" | sed 's/^{"line":[0-9]*,//' | sort -u)
    [ "$got" = "$want" ] || fail "kind $k: $(echo "$got" | head -3)"
done
# slowAdd: one at a time on the instance, in line order: 1, 2, ..., 50
awk 'NR % 6 == 5' "$WORK/out" | sed 's/.*"result":\([0-9]*\)}}$/\1/' >"$WORK/adds"
seq 1 50 | cmp -s - "$WORK/adds" || fail "slowAdd: $(head -3 "$WORK/adds")"
# bump: every line read and wrote the shared context (no lost line)
[ "$(awk 'NR % 6 == 0' "$WORK/out" | grep -c '"output":{"result":')" -eq 50 ] || fail "bump"
# the same alone
batched=$(sed -n 2p "$WORK/out" | sed 's/^{"line":2,"output"://; s/}$//')
run 0 "$WFP_HOST" "$rt" --fn fanWork --arg n=4 --arg k=2000 --workers 3 && out_is "$batched"
finish
