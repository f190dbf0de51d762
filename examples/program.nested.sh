#!/bin/sh
# program.nested: a nested function that reads its parent's variable.
. "$(dirname "$0")/lib.sh"
build program.nested nested.so &&
{
    expect '{"result":42}' nested.so --ctx base=10
    expect '{"result":32}' nested.so --ctx base=0
}
finish
