#!/bin/sh
# examples.sh: the examples of examples/ run end to end through the real
# .so and the real host, with the outputs examples/README.md promises.
. "$(dirname "$0")/lib.sh"

run 0 "$WFP_HOST" "$SO/simple.so" --ctx n=41 && out_is '{"result":42}'
run 0 "$WFP_HOST" "$SO/simple.so" --ctx n=-1 && out_is '{"result":0}'
run 0 "$WFP_HOST" "$SO/simple.so" --ctx n=41 --report &&
    out_is '{"status":"done","output":{"result":42},"trap":null,"steps":3,"ctx":{"n":41},"messages":[{"topic":"results","payload":42}]}'
run 0 "$WFP_HOST" "$SO/converter.so" --ctx celsius=100 && out_is '{"celsius":100,"fahrenheit":212}'
run 0 "$WFP_HOST" "$SO/converter.so" --ctx celsius=-40 && out_is '{"celsius":-40,"fahrenheit":-40}'
run 0 "$WFP_HOST" "$SO/converter.so" --ctx celsius=37 && out_is '{"celsius":37,"fahrenheit":98}'
run 0 "$WFP_HOST" "$SO/accumulator.so" --ctx a=1 --ctx b=2 --ctx c=3 && out_is '{"sum":6,"doubled":12}'
run 0 "$WFP_HOST" "$SO/accumulator.so" --ctx a=1 --ctx b=2 --ctx c=3 --report &&
    out_is '{"status":"done","output":{"sum":6,"doubled":12},"trap":null,"steps":6,"ctx":{"a":1,"b":2,"c":3,"sum":6,"doubled":12},"messages":[]}'
run 0 "$WFP_HOST" "$SO/nested.so" --ctx base=10 && out_is '{"result":42}'
# a missing context key is a trap, not a crash
run 1 "$WFP_HOST" "$SO/simple.so" && err_has "context key 'n' is not set"
# the entry function can be named explicitly, by name and by stable id
run 0 "$WFP_HOST" "$SO/simple.so" --fn main --ctx n=1 && out_is '{"result":2}'
finish
