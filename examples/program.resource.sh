#!/bin/sh
# program.resource: the Counter resource, self.value read and written.
. "$(dirname "$0")/lib.sh"
build program.resource counter.so &&
{
    expect '{"result":10}' counter.so --new Counter:value=10 --fn getValue
    expect '{"result":11}' counter.so --new Counter:value=10 --fn increment
    expect '{"result":15}' counter.so --new Counter:value=10 --fn add --arg amount=5
    expect '{"status":"done","output":{"result":11},"trap":null,"steps":4,"fuel":0,"ctx":{},"messages":[],"properties":{"value":11}}' \
        counter.so --new Counter:value=10 --fn increment --report
}
finish
