#!/bin/sh
# program.bank-account: an account resource, its validation traps, and a
# transfer of 25 from account A (balance 100) to account B (balance 10): A
# runs transferTo, which publishes the transfer; B runs receive with the
# amount read from that message.
. "$(dirname "$0")/lib.sh"
build program.bank-account account.so &&
{
    expect '{"result":100}' account.so --new Account:balance=100,transactions=0 --fn getBalance
    expect '{"result":150}' account.so --new Account:balance=100,transactions=0 --fn deposit --arg amount=50
    expect '{"result":70}' account.so --new Account:balance=100,transactions=0 --fn withdraw --arg amount=30
    expect_trap "insufficient funds" account.so --new Account:balance=100,transactions=0 --fn withdraw --arg amount=500
    expect_trap "deposit amount must be positive" account.so --new Account:balance=100,transactions=0 --fn deposit --arg amount=0
    # the transfer: the debit and its message on account A
    expect '{"status":"done","output":{"result":75},"trap":null,"steps":6,"fuel":0,"ctx":{},"messages":[{"topic":"transfers","payload":{"amount":25,"from_balance":75}}],"properties":{"balance":75,"transactions":1}}' \
        account.so --new Account:balance=100,transactions=0 --fn transferTo --arg amount=25 --report
    amount=$(sed -n 's/.*"payload":{"amount":\([0-9]*\),.*/\1/p' <<EOT
$got
EOT
)
    # the credit on account B, with the amount the message carried
    expect '{"status":"done","output":{"result":35},"trap":null,"steps":5,"fuel":0,"ctx":{},"messages":[],"properties":{"balance":35,"transactions":1}}' \
        account.so --new Account:balance=10,transactions=0 --fn receive --arg "amount=$amount" --report
    # a failed debit sends nothing
    expect_trap "insufficient funds" account.so --new Account:balance=10,transactions=0 --fn transferTo --arg amount=25
}
finish
