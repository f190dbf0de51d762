#!/bin/sh
# program.orders: db_query on SQLite and the fan-out (a lambda per row).
. "$(dirname "$0")/lib.sh"
build program.orders orders.so &&
{
    expect '{"orders":2,"totals":[1400,1250]}' orders.so --ctx fee=50
    expect '{"status":"done","output":{"orders":2,"totals":[1400,1250]},"trap":null,"steps":6,"fuel":0,"ctx":{"fee":50},"messages":[{"topic":"lines","payload":{"item":"tea","total":1400}},{"topic":"lines","payload":{"item":"cake","total":1250}}],"properties":null}' \
        orders.so --ctx fee=50 --report
    # with a database file the rows stay from one run to the next
    rm -f "$WORK/orders.db"
    expect '{"orders":2,"totals":[1400,1250]}' orders.so --ctx fee=50 --db orders.db
    expect '{"orders":4,"totals":[1400,1250,1400,1250]}' orders.so --ctx fee=50 --db orders.db
}
finish
