#!/bin/sh
# program.accumulator: context reads and writes.
. "$(dirname "$0")/lib.sh"
build program.accumulator accumulator.so &&
{
    expect '{"sum":6,"doubled":12}' accumulator.so --ctx a=1 --ctx b=2 --ctx c=3
    expect '{"status":"done","output":{"sum":6,"doubled":12},"trap":null,"steps":6,"fuel":0,"ctx":{"a":1,"b":2,"c":3,"sum":6,"doubled":12},"messages":[],"properties":null}' \
        accumulator.so --ctx a=1 --ctx b=2 --ctx c=3 --report
}
finish
