#!/bin/sh
# program.state-machine: a str property and transition rules.
. "$(dirname "$0")/lib.sh"
build program.state-machine machine.so &&
{
    expect '{"ok":1,"state":"running","errors":0}' machine.so --new Machine:state=idle,errors=0 --fn start
    expect '{"ok":1,"state":"paused","errors":0}' machine.so --new Machine:state=running,errors=0 --fn pause
    expect '{"ok":1,"state":"running","errors":2}' machine.so --new Machine:state=paused,errors=2 --fn resume
    expect '{"ok":1,"state":"stopped","errors":0}' machine.so --new Machine:state=paused,errors=0 --fn stop
    expect '{"ok":0,"state":"stopped","errors":1}' machine.so --new Machine:state=stopped,errors=0 --fn start
    expect '{"state":"paused","errors":3}' machine.so --new Machine:state=paused,errors=3 --fn getState
    expect '{"status":"done","output":{"ok":0,"state":"idle","errors":1},"trap":null,"steps":5,"fuel":0,"ctx":{},"messages":[{"topic":"errors","payload":{"method":"pause","state":"idle","errors":1,"message":"cannot pause while idle"}}],"properties":{"state":"idle","errors":1}}' \
        machine.so --new Machine:state=idle,errors=0 --fn pause --report
}
finish
