#!/bin/sh
# program.simple: context read, arithmetic, a message, a json result.
. "$(dirname "$0")/lib.sh"
build program.simple simple.so &&
{
    expect '{"result":42}' simple.so --ctx n=41
    expect '{"status":"done","output":{"result":42},"trap":null,"steps":3,"fuel":0,"ctx":{"n":41},"messages":[{"topic":"results","payload":42}],"properties":null}' \
        simple.so --ctx n=41 --report
    expect_trap "context key 'n' is not set" simple.so
}
finish
