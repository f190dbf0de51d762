#!/bin/sh
# db.sh: db_query on real SQLite through the real host: statements with
# bound parameters (i64 exactly, text, real, null), every column type in
# the rows, the fan-out (each: a lambda with captures or a named function,
# once per row as its own invocation, nested fan-outs included), faults
# as traps, --db files shared between processes and carried by checkpoints,
# the authorizer (a program's own database and nothing else: no file of
# the host is attached or written), fuel and result limits, text with U+0000.
. "$(dirname "$0")/lib.sh"

so=$SO/db.so

# the default database: empty, in memory, private to the process
run 0 "$WFP_HOST" "$so" --fn setup && out_is '[{"n":3}]'
run 1 "$WFP_HOST" "$so" --fn bad && err_has "db_query: no such table: nope"

run 0 "$WFP_HOST" "$so" --ctx min=20 &&
    out_is '[{"name":"Ada","age":36},{"name":"Bob","age":25},{"name":"Cy \"q\" é","age":9223372036854775807}]'
run 0 "$WFP_HOST" "$so" --ctx min=30 && out_is '[{"name":"Ada","age":36},{"name":"Cy \"q\" é","age":9223372036854775807}]'
# integer, text, real, null and blob (base64) columns
run 0 "$WFP_HOST" "$so" --fn all &&
    out_is '[{"id":1,"name":"Ada","age":36,"score":1.5,"pic":"AP8Q"},{"id":2,"name":"Bob","age":25,"score":null,"pic":null},{"id":3,"name":"Cy \"q\" é","age":9223372036854775807,"score":null,"pic":null}]'

# fan-out: a lambda capturing a string, run per row; its messages are the
# invocation's
run 0 "$WFP_HOST" "$so" --fn fan --report &&
    out_is '{"status":"done","output":["hi Ada","hi Bob","hi Cy \"q\" é"],"trap":null,"steps":8,"fuel":1,"ctx":{},"messages":[{"topic":"row","payload":"Ada"},{"topic":"row","payload":"Bob"},{"topic":"row","payload":"Cy \"q\" é"}],"properties":null}'
run 0 "$WFP_HOST" "$so" --fn ages && out_is '[36,25,9223372036854775807]'
# a row's function that suspends and queries again
run 0 "$WFP_HOST" "$so" --fn nested && out_is '[[{"n":2}],[{"n":1}],[{"n":0}]]'

# faults: a trap naming the query's fault, never a crash
run 1 "$WFP_HOST" "$so" --fn two && err_has "db_query: the SQL text holds more than one statement"
run 1 "$WFP_HOST" "$so" --fn arity && err_has "db_query: 0 parameters given, the statement has 1"
run 1 "$WFP_HOST" "$so" --fn rowTrap && err_has "db_query each, row 1: too old"
# the limits hold inside a fan-out: each row's invocation gets them
run 1 "$WFP_HOST" "$so" --fn nested --max-steps 3 && err_has "step limit reached"

# a database file: what one process writes, the next one reads
db=$WORK/t.db
rm -f "$db"
run 0 "$WFP_HOST" "$so" --fn setup --db "$db" && out_is '[{"n":3}]'
[ -s "$db" ] || fail "--db did not create the database file"
run 1 "$WFP_HOST" "$so" --fn bad --db "$db" && err_has "no such table: nope"
python3 - "$db" <<'PY' || fail "the rows are not in the database file"
import sqlite3, sys
rows = sqlite3.connect(sys.argv[1]).execute("select name, age from users order by id").fetchall()
assert rows == [("Ada", 36), ("Bob", 25), ('Cy "q" é', 9223372036854775807)], rows
PY
run 3 "$WFP_HOST" "$so" --fn setup --db "$WORK/no/such/dir/t.db" && err_has "cannot open the database"

# SQLite is loaded at the first database use: without it, a query traps
# naming why, --db is an environment error, and programs that never query
# run as ever
run 1 env WFP_SQLITE=/nonexistent/libsqlite3.so.0 "$WFP_HOST" "$so" --fn setup &&
    err_has "db_query: cannot load SQLite: /nonexistent/libsqlite3.so.0"
run 3 env WFP_SQLITE=/nonexistent/libsqlite3.so.0 "$WFP_HOST" "$so" --fn setup --db "$db" &&
    err_has "cannot load SQLite"
run 0 env WFP_SQLITE=/nonexistent/libsqlite3.so.0 "$WFP_HOST" "$SO/simple.so" --ctx n=1 &&
    out_is '{"result":2}'

# a program works on its own database: nothing attached, no file written,
# no setting changed; each refusal is a trap naming it
h=$SO/hostcli.so
in_work() { (cd "$WORK" && "$@"); } # the program's file names are relative
rm -f "$WORK/attached.db" "$WORK/copy.db" "$WORK/own.db"
run 1 in_work "$WFP_HOST" "$h" --fn attach &&
    err_has "trap: db_query: ATTACH is not allowed: a program works on its own database only"
run 1 in_work "$WFP_HOST" "$h" --fn vacuumInto && err_has "trap: db_query: VACUUM INTO is not allowed"
run 1 in_work "$WFP_HOST" "$h" --fn vacuumInto --db "$WORK/own.db" && err_has "VACUUM INTO is not allowed"
[ ! -e "$WORK/attached.db" ] || fail "ATTACH created $WORK/attached.db"
[ ! -e "$WORK/copy.db" ] || fail "VACUUM INTO wrote $WORK/copy.db"
run 1 "$WFP_HOST" "$h" --fn setVersion &&
    err_has "db_query: PRAGMA user_version is not allowed: a program may read it, not set it"

# SQL runs on fuel: a runaway query ends, under the budget of a query or
# what --max-fuel leaves, and its work shows in the fuel used
run 1 timeout 60 "$WFP_HOST" "$h" --fn runaway &&
    err_has "trap: db_query: the query ran out of fuel: it may use 10000 units (one per 1000 SQLite instructions)"
run 1 timeout 60 "$WFP_HOST" "$h" --fn runaway --max-fuel 500 --report &&
    err_has "trap: fuel limit reached (500 units)" &&
    grep -qF '"fuel":500,' "$WORK/out" || fail "the query's fuel is not counted: $(cat "$WORK/out")"
# an endless result set ends at the limit of an answer, not of memory
run 1 timeout 60 "$WFP_HOST" "$h" --fn endless &&
    err_has "trap: db_query: the result is larger than 16777216 bytes, the most one query may return"
# and so do the results of a fan-out (200 rows, 100 kB each)
run 1 timeout 60 "$WFP_HOST" "$h" --fn bigFan &&
    err_has "trap: db_query each: the results are larger than 16777216 bytes, the most one query may return"
# a str parameter is bound whole, U+0000 included
run 0 "$WFP_HOST" "$h" --input '{"fn":"echo","args":{"s":"a\u0000b"}}' &&
    out_is '[{"s":"a\u0000b","h":"610062"}]'

# a checkpoint names its database file: resumed in another process, from
# another directory, the query runs on the same file
ck=$WORK/ck
rm -f "$ck"
run 0 "$WFP_HOST" "$so" --fn fan --db "$db" --report && cp "$WORK/out" "$WORK/straight"
run 4 "$WFP_HOST" "$so" --fn fan --db "$db" --checkpoint "$ck" --stop-after 7
(cd / && "$WFP_HOST" "$so" --resume "$ck" --report) >"$WORK/out" 2>"$WORK/err" ||
    fail "resume with the checkpoint's database failed: $(cat "$WORK/err")"
cmp -s "$WORK/out" "$WORK/straight" || fail "resumed fan-out: $(cat "$WORK/out")"
finish
