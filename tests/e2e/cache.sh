#!/bin/sh
# cache.sh: wfp-aot's object cache. A second compilation of the same program
# takes every C unit from the cache and gives a module that runs alike; a
# variant that changes one literal compiles only what changed; two runs at
# once on an empty cache both succeed and leave only whole entries; an entry
# spoiled on disk is compiled again (the module still builds and runs); the
# cache keeps within WFP_CACHE_MAX, the least recently used going first; it
# works alike with clang; an empty WFP_CACHE_DIR uses no cache.
. "$(dirname "$0")/lib.sh"

cache=$WORK/cache
rm -rf "$cache"
prog=$EXAMPLES/program.simple.json

# units USED REUSED: the --time line of the last run says REUSED of USED
reused() {
    sed -n 's/^wfp-aot: cache *\([0-9]*\) of \([0-9]*\) C units reused$/\1 \2/p' "$WORK/err"
}

run 0 env WFP_CACHE_DIR="$cache" "$WFP_AOT" --time "$prog" -o "$WORK/a.so"
set -- $(reused)
[ "$#" = 2 ] || fail "first run: no cache line in --time's output"
[ "${1:-x}" = 0 ] || fail "first run: $1 units reused from an empty cache"
total=${2:-0}
[ "$total" -ge 3 ] || fail "first run: only $total C units"
n=$(find "$cache" -name '*.o' | wc -l)
[ "$n" = "$total" ] || fail "the cache holds $n objects after $total units"

run 0 env WFP_CACHE_DIR="$cache" "$WFP_AOT" --time "$prog" -o "$WORK/b.so"
set -- $(reused)
[ "${1:-x}" = "$total" ] || fail "second run: ${1:-no} units of $total reused"
run 0 "$WFP_HOST" "$WORK/b.so" --ctx n=41
out_is '{"result":42}'

# a variant: one literal changed, the runtime's units come from the cache
sed 's/"value": 1}/"value": 1001}/' "$prog" >"$WORK/variant.json"
grep -q '"value": 1001}' "$WORK/variant.json" || fail "could not make the variant"
run 0 env WFP_CACHE_DIR="$cache" "$WFP_AOT" --time "$WORK/variant.json" -o "$WORK/v.so"
set -- $(reused)
[ "${1:-0}" -ge 1 ] && [ "${1:-0}" -lt "${2:-0}" ] ||
    fail "variant: ${1:-no} of ${2:-?} units reused (some, not all)"
# what a literal changes: the data (with the glue's tables) and the chunk
# of the program's functions; the runtime's units and the glue's code are
# reused
[ $((${2:-0} - ${1:-0})) -le 2 ] ||
    fail "variant: $((${2:-0} - ${1:-0})) units compiled again, not at most 2"
run 0 "$WFP_HOST" "$WORK/v.so" --ctx n=41
out_is '{"result":1042}'

# two at once on an empty cache
rm -rf "$cache"
env WFP_CACHE_DIR="$cache" "$WFP_AOT" "$prog" -o "$WORK/c1.so" 2>"$WORK/err1" &
p1=$!
env WFP_CACHE_DIR="$cache" "$WFP_AOT" "$prog" -o "$WORK/c2.so" 2>"$WORK/err2" &
p2=$!
wait $p1 || fail "concurrent run 1 failed: $(head -3 "$WORK/err1")"
wait $p2 || fail "concurrent run 2 failed: $(head -3 "$WORK/err2")"
left=$(find "$cache" -name '*.tmp.*' | wc -l)
[ "$left" = 0 ] || fail "$left temporary files left in the cache"
for so in c1 c2; do
    run 0 "$WFP_HOST" "$WORK/$so.so" --ctx n=41
    out_is '{"result":42}'
done

# every entry spoiled: the link fails, every unit is compiled again
for o in "$cache"/*/*.o; do
    printf 'not an object' >"$o"
done
run 0 env WFP_CACHE_DIR="$cache" "$WFP_AOT" --time "$prog" -o "$WORK/d.so"
set -- $(reused)
[ "${1:-x}" = 0 ] || fail "spoiled cache: ${1:-no} units reused"
run 0 "$WFP_HOST" "$WORK/d.so" --ctx n=41
out_is '{"result":42}'

# a size limit: over it, the least recently used objects go until the
# cache holds three quarters of it; what the last run used stays
objects() { find "$cache" -name '*.o' -exec cat {} + | wc -c; }
rm -rf "$cache"
run 0 env WFP_CACHE_DIR="$cache" "$WFP_AOT" "$prog" -o "$WORK/f.so"
one=$(objects)
[ "$one" -gt 0 ] || fail "no objects in the cache"
max=$((one * 3 / 2))
for v in 1 2 3 4; do
    sed "s/\"value\": 1}/\"value\": 20$v}/" "$prog" >"$WORK/v$v.json"
    run 0 env WFP_CACHE_DIR="$cache" WFP_CACHE_MAX="$max" "$WFP_AOT" "$WORK/v$v.json" -o "$WORK/v$v.so"
    size=$(objects)
    [ "$size" -le "$max" ] || fail "the cache holds $size bytes, over WFP_CACHE_MAX=$max"
done
run 0 "$WFP_HOST" "$WORK/v4.so" --ctx n=41
out_is '{"result":245}'
# the first variant's own objects were the oldest: it compiles them again;
# the last one's all stay
run 0 env WFP_CACHE_DIR="$cache" WFP_CACHE_MAX="$max" "$WFP_AOT" --time "$WORK/v4.json" -o "$WORK/v4.so"
set -- $(reused)
[ "${1:-x}" = "${2:-y}" ] || fail "after trimming: ${1:-no} of ${2:-?} units of the last run reused"
run 0 env WFP_CACHE_DIR="$cache" WFP_CACHE_MAX="$max" "$WFP_AOT" --time "$WORK/v1.json" -o "$WORK/v1.so"
set -- $(reused)
[ "${1:-0}" -lt "${2:-0}" ] || fail "after trimming: the oldest variant's objects are all still there"
run 2 env WFP_CACHE_DIR="$cache" WFP_CACHE_MAX=12X "$WFP_AOT" "$prog" -o "$WORK/g.so"
err_has "WFP_CACHE_MAX '12X' is not a size"

# another compiler: its own objects, reused alike
if command -v clang >/dev/null 2>&1; then
    rm -rf "$cache"
    run 0 env CC=clang WFP_CACHE_DIR="$cache" "$WFP_AOT" --time "$prog" -o "$WORK/h1.so"
    set -- $(reused)
    [ "${1:-x}" = 0 ] || fail "clang: ${1:-no} units reused from an empty cache"
    run 0 env CC=clang WFP_CACHE_DIR="$cache" "$WFP_AOT" --time "$WORK/variant.json" -o "$WORK/h2.so"
    set -- $(reused)
    [ $((${2:-0} - ${1:-0})) -le 2 ] || fail "clang variant: ${1:-no} of ${2:-?} units reused"
    run 0 "$WFP_HOST" "$WORK/h2.so" --ctx n=41
    out_is '{"result":1042}'
fi

# no cache
rm -rf "$cache"
run 0 env WFP_CACHE_DIR= HOME="$WORK/home" XDG_CACHE_HOME= "$WFP_AOT" --time "$prog" -o "$WORK/e.so"
[ ! -e "$WORK/home" ] || fail "an empty WFP_CACHE_DIR still wrote a cache"
set -- $(reused)
[ "${1:-x}" = 0 ] || fail "no cache: ${1:-no} units reused"

finish
