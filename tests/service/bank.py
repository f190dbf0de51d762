"""bank.py: the example of examples/service/bank.wfp under kills: random
transfers between five accounts, posted with idempotency keys while
wfp-host serve is killed with SIGKILL and restarted; transferTo debits and
publishes, the subscribed receive credits. At the end the money is all
there (every transfer debited once and credited once) and each account's
balance is what the transfers that went through say."""

import random
import time

from svc import SLOW, Service, check, passed, so, workdir

ACCOUNTS = ["ann", "bob", "cat", "dan", "eve"]


def main():
    rnd = random.Random(7)
    d = workdir("bank")
    s = Service(d, [so("bank")], args=["--subscribe", "transfers=receive"]).start()
    for a in ACCOUNTS:
        st, o = s.invoke("open", [a, 1000], wait=5000)
        check(o.get("output") == {"result": 1000}, "open %s: %s" % (a, o))
    transfers = []
    for k in range(120):
        src, dst = rnd.sample(ACCOUNTS, 2)
        transfers.append(("t%d" % k, src, dst, rnd.randrange(1, 400)))
    ids = {}
    kills = 0
    for n, (key, src, dst, amount) in enumerate(transfers):
        deadline = time.time() + 30 * SLOW
        while True:
            try:
                st, o = s.invoke("transferTo", [src, dst, amount],
                                 headers={"Idempotency-Key": key})
                check(st == 202, "transfer: %s %s" % (st, o))
                ids[key] = o["id"]
                break
            except OSError:
                # nothing killed it: a service that died on its own fails
                check(s.alive() and time.time() < deadline,
                      "the service died or stopped answering: %s" % s.stderr()[-3000:])
                time.sleep(0.01)
        if n % 12 == 5:
            time.sleep(rnd.uniform(0, 0.05))
            s.kill()
            kills += 1
            s.start()
    outs = s.wait_done(list(ids.values()))
    # the credits: one subscriber run per transfer that went through
    went = [t for t in transfers if outs[ids[t[0]]]["status"] == "done"]
    refused = [t for t in transfers if outs[ids[t[0]]]["status"] == "trapped"]
    check(all(outs[ids[t[0]]]["trap"] == "insufficient funds" for t in refused),
          "only refusals trap")
    deadline = time.time() + 60 * SLOW
    while True:
        with s.db() as db:
            pend = db.execute("select count(*) from wfp_invocations where status=0").fetchone()[0]
        if not pend or time.time() > deadline:
            break
        time.sleep(0.1)
    st, o = s.invoke("total", wait=5000)
    check(o["output"] == {"result": 5000}, "all the money is there: %s" % o)
    want = {a: 1000 for a in ACCOUNTS}
    for key, src, dst, amount in went:
        want[src] -= amount
        want[dst] += amount
    for a in ACCOUNTS:
        st, o = s.invoke("balance", [a], wait=5000)
        check(o["output"] == {"result": want[a]}, "%s: %s, want %d" % (a, o, want[a]))
    st, m = s.get("/v1/messages?topic=transfers")
    check(len(m["messages"]) == len(went), "one message per transfer")
    with s.db() as db:
        runs = db.execute("select count(*) from wfp_invocations where fn='receive' and "
                          "status=1").fetchone()[0]
    check(runs == len(went), "receive ran once per transfer: %d, %d" % (runs, len(went)))
    s.stop()
    passed("bank: %d transfers (%d refused), %d kills" % (len(transfers), len(refused), kills))


if __name__ == "__main__":
    main()
