#!/bin/sh
# program.converter: i64 arithmetic and a json template.
. "$(dirname "$0")/lib.sh"
build program.converter converter.so &&
{
    expect '{"celsius":100,"fahrenheit":212}' converter.so --ctx celsius=100
    expect '{"celsius":-40,"fahrenheit":-40}' converter.so --ctx celsius=-40
    expect '{"celsius":37,"fahrenheit":98}' converter.so --ctx celsius=37
}
finish
