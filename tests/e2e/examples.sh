#!/bin/sh
# examples.sh: the examples of examples/ run end to end through the real
# .so and the real host, with the outputs examples/README.md promises.
. "$(dirname "$0")/lib.sh"

run 0 "$WFP_HOST" "$SO/simple.so" --ctx n=41 && out_is '{"result":42}'
run 0 "$WFP_HOST" "$SO/simple.so" --ctx n=-1 && out_is '{"result":0}'
run 0 "$WFP_HOST" "$SO/simple.so" --ctx n=41 --report &&
    out_is '{"status":"done","output":{"result":42},"trap":null,"steps":3,"fuel":0,"ctx":{"n":41},"messages":[{"topic":"results","payload":42}],"properties":null}'
run 0 "$WFP_HOST" "$SO/converter.so" --ctx celsius=100 && out_is '{"celsius":100,"fahrenheit":212}'
run 0 "$WFP_HOST" "$SO/converter.so" --ctx celsius=-40 && out_is '{"celsius":-40,"fahrenheit":-40}'
run 0 "$WFP_HOST" "$SO/converter.so" --ctx celsius=37 && out_is '{"celsius":37,"fahrenheit":98}'
run 0 "$WFP_HOST" "$SO/accumulator.so" --ctx a=1 --ctx b=2 --ctx c=3 && out_is '{"sum":6,"doubled":12}'
run 0 "$WFP_HOST" "$SO/accumulator.so" --ctx a=1 --ctx b=2 --ctx c=3 --report &&
    out_is '{"status":"done","output":{"sum":6,"doubled":12},"trap":null,"steps":6,"fuel":0,"ctx":{"a":1,"b":2,"c":3,"sum":6,"doubled":12},"messages":[],"properties":null}'
run 0 "$WFP_HOST" "$SO/nested.so" --ctx base=10 && out_is '{"result":42}'
# a missing context key is a trap, not a crash
run 1 "$WFP_HOST" "$SO/simple.so" && err_has "context key 'n' is not set"
# the entry function can be named explicitly
run 0 "$WFP_HOST" "$SO/simple.so" --fn main --ctx n=1 && out_is '{"result":2}'

# resources: methods run on the instance --new creates
c=$SO/resource.so
run 0 "$WFP_HOST" "$c" --new Counter:value=10 --fn getValue && out_is '{"result":10}'
run 0 "$WFP_HOST" "$c" --new Counter:value=10 --fn increment && out_is '{"result":11}'
run 0 "$WFP_HOST" "$c" --new Counter:value=10 --fn add --arg amount=5 --report &&
    out_is '{"status":"done","output":{"result":15},"trap":null,"steps":4,"fuel":0,"ctx":{},"messages":[],"properties":{"value":15}}'
run 0 "$WFP_HOST" "$c" --new Counter --fn increment && out_is '{"result":1}'
a=$SO/bank-account.so
run 0 "$WFP_HOST" "$a" --new Account:balance=100,transactions=0 --fn deposit --arg amount=50 && out_is '{"result":150}'
run 0 "$WFP_HOST" "$a" --new Account:balance=100,transactions=0 --fn transferTo --arg amount=25 --report &&
    out_is '{"status":"done","output":{"result":75},"trap":null,"steps":6,"fuel":0,"ctx":{},"messages":[{"topic":"transfers","payload":{"amount":25,"from_balance":75}}],"properties":{"balance":75,"transactions":1}}'
run 1 "$WFP_HOST" "$a" --new Account:balance=100,transactions=0 --fn withdraw --arg amount=500 &&
    err_has "trap: insufficient funds"
run 1 "$WFP_HOST" "$a" --new Account:balance=100,transactions=0 --fn deposit --arg amount=0 &&
    err_has "trap: deposit amount must be positive"
m=$SO/state-machine.so
run 0 "$WFP_HOST" "$m" --new Machine:state=idle,errors=0 --fn start && out_is '{"ok":1,"state":"running","errors":0}'
run 0 "$WFP_HOST" "$m" --new Machine:state=idle,errors=0 --fn pause --report &&
    out_is '{"status":"done","output":{"ok":0,"state":"idle","errors":1},"trap":null,"steps":5,"fuel":0,"ctx":{},"messages":[{"topic":"errors","payload":{"method":"pause","state":"idle","errors":1,"message":"cannot pause while idle"}}],"properties":{"state":"idle","errors":1}}'
run 0 "$WFP_HOST" "$m" --new 'Machine:state=paused,errors=3' --fn getState && out_is '{"state":"paused","errors":3}'
# a method without its instance, or on another resource's: usage errors
run 2 "$WFP_HOST" "$c" --fn increment && err_has "give the instance it runs on (\"self\", or --new Counter)"
run 2 "$WFP_HOST" "$a" --new Account --fn nope && err_has "no function 'nope'"
run 2 "$WFP_HOST" "$c" --new Account --fn increment && err_has "no resource 'Account'"
run 2 "$WFP_HOST" "$c" --new Counter:valu=1 --fn increment && err_has "has no property 'valu'"
run 2 "$WFP_HOST" "$c" --new Counter:value=x --fn increment && err_has "'x' is not an i64"
# an instance named in --input that does not exist: the method traps
run 1 "$WFP_HOST" "$c" --input '{"fn":"increment","self":7}' && err_has "there is no resource instance 7"
# db_query and its fan-out: an in-memory database per run, a file that keeps
# the rows between runs
o=$SO/orders.so
run 0 "$WFP_HOST" "$o" --ctx fee=50 && out_is '{"orders":2,"totals":[1400,1250]}'
run 0 "$WFP_HOST" "$o" --ctx fee=50 --report &&
    out_is '{"status":"done","output":{"orders":2,"totals":[1400,1250]},"trap":null,"steps":6,"fuel":0,"ctx":{"fee":50},"messages":[{"topic":"lines","payload":{"item":"tea","total":1400}},{"topic":"lines","payload":{"item":"cake","total":1250}}],"properties":null}'
rm -f "$WORK/orders.db"
run 0 "$WFP_HOST" "$o" --ctx fee=50 --db "$WORK/orders.db" && out_is '{"orders":2,"totals":[1400,1250]}'
run 0 "$WFP_HOST" "$o" --ctx fee=50 --db "$WORK/orders.db" && out_is '{"orders":4,"totals":[1400,1250,1400,1250]}'
finish
