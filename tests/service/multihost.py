"""multihost.py: the multi-host crash test (CONTRACT section 7). Three
wfp-host serve processes on one PostgreSQL store (the throwaway cluster of
the service.pg fixture, a database of this test's own). Clients post
invocations that sleep, send messages, write the context, an instance and
a table of the store's database, and run through a subscriber, to all
three hosts; mid run one host is killed with SIGKILL (and started again
later), and another is paused with SIGSTOP past its lease and let go on
with SIGCONT: it must not commit what another host took over meanwhile.
At the end every accepted invocation finished exactly once with the right
output, every message is in the log once and its subscriber ran once,
every counter (the context, the instance, the table) is exact, and every
host answers the same for any invocation and for the message log.

Usage: multihost.py [--jobs N] [--lease-ms L] [--seed S]"""

import argparse
import atexit
import os
import random
import signal
import threading
import time

import pg
from pg import kill_all
from svc import SLOW, Service, check, fail, passed, so, workdir


def metric(host, name):
    st, text = host.get("/metrics")
    check(st == 200, "metrics: %s" % st)
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    fail("no metric %s" % name)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=2000)
    ap.add_argument("--lease-ms", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    a = ap.parse_args()
    pg.skip_without()
    rnd = random.Random(a.seed)
    lease = a.lease_ms * SLOW
    print("multihost: seed %d, %d invocations, 3 hosts, --lease-ms %d" % (a.seed, a.jobs, lease))
    url = pg.new_db("multihost")
    d = workdir("multihost")
    args = ["--ctx", "count=0", "--subscribe", "jobs=onJob", "--lease-ms", str(lease)]
    hosts = []
    atexit.register(kill_all, hosts)
    for k in range(3):
        hd = os.path.join(d, "host%d" % k)
        os.makedirs(hd)
        h = Service(hd, [so("multihost")], args=args)
        h.store = url
        hosts.append(h)
        h.start()

    st, o = hosts[0].invoke("setup", wait=10000)
    check(o.get("output") == {"result": 1}, "setup: %s" % o)
    st, o = hosts[1].post("/v1/instances", {"resource": "Counter", "props": {"value": 0}})
    check(st == 201, "instance: %s %s" % (st, o))
    handle = o["handle"]

    # the work: one in eight a bump on the counter, the rest jobs
    plan = []
    for k in range(a.jobs):
        if k % 8 == 7:
            plan.append(("bump", [k], {"self": handle}))
        else:
            plan.append(("job", [k, rnd.randrange(0, 50)], {}))
    ids = {}
    lock = threading.Lock()
    state = {"posted": 0, "retries": 0}
    down = set()  # hosts not to post to now (killed, paused)

    def client(c, nclients):
        """Posts its share of the plan, each with an idempotency key, to the
        hosts in turn; a host that fails or does not answer in time gets the
        same key posted to the next one."""
        turn = c
        for k in range(c, len(plan), nclients):
            fn, fargs, more = plan[k]
            key = "mh-%d" % k
            while True:
                turn += 1
                h = hosts[turn % 3]
                if turn % 3 in down or not h.alive():
                    continue
                try:
                    st, o = h.invoke(fn, fargs, headers={"Idempotency-Key": key}, **more)
                    if st == 202:
                        with lock:
                            if key in ids and ids[key] != o["id"]:
                                state["error"] = "key %s: two ids %s %s" % (key, ids[key],
                                                                             o["id"])
                            ids[key] = o["id"]
                            state["posted"] += 1
                        break
                    if st != 503:
                        state["error"] = "POST %s: %s %s" % (key, st, o)
                        return
                except (OSError, ValueError, TypeError):
                    pass  # killed, paused: the same key to another host
                with lock:
                    state["retries"] += 1
                time.sleep(0.01)

    def request_timeout():
        # a paused host answers nothing: the clients give up on it soon
        return 2

    for h in hosts:
        orig = h.request
        h.request = (lambda orig: lambda m, p, body=None, headers=None, timeout=None:
                     orig(m, p, body=body, headers=headers,
                          timeout=timeout or request_timeout()))(orig)

    t0 = time.time()
    clients = [threading.Thread(target=client, args=(c, 4)) for c in range(4)]
    for t in clients:
        t.start()

    def posted():
        with lock:
            return state["posted"]

    def wait_posted(n):
        while posted() < n and any(t.is_alive() for t in clients) and "error" not in state:
            time.sleep(0.02)

    # SIGKILL host 0 a third of the way in
    wait_posted(a.jobs // 3)
    down.add(0)
    hosts[0].kill()
    killed_at = posted()
    # SIGSTOP host 1 half way: its lease lapses, others take its work over
    wait_posted(a.jobs // 2)
    down.add(1)
    hosts[1].proc.send_signal(signal.SIGSTOP)
    paused_at = posted()
    time.sleep(2.5 * lease / 1000.0)
    hosts[1].proc.send_signal(signal.SIGCONT)
    down.discard(1)
    # host 0 again (a new host id on the same store)
    hosts[0].start()
    down.discard(0)
    for t in clients:
        t.join()
    if "error" in state:
        fail(state["error"])
    check(len(ids) == a.jobs, "every invocation was accepted: %d" % len(ids))
    print("posted: kill at %d, pause at %d, %d retried posts, %.1f s" %
          (killed_at, paused_at, state["retries"], time.time() - t0))

    # the paused host: it went on (its lease renewed, what was taken over
    # dropped at its fence), or it stopped when the server had ended its
    # open transaction (exit 3, naming the store): either way nothing of
    # it commits twice
    went_on = False
    t1 = time.time()
    while hosts[1].alive() and time.time() < t1 + 30 * SLOW:
        try:
            st, o = hosts[1].invoke("total", wait=5000)
            if st == 200:
                went_on = True
                break
        except (OSError, ValueError):
            time.sleep(0.1)
    paused_went_on = went_on
    if not paused_went_on:
        rc = hosts[1].proc.wait()
        check(rc == 3 and "the store" in hosts[1].stderr(),
              "the paused host stopped with %s: %s" % (rc, hosts[1].stderr()[-2000:]))
        hosts[1].proc.stdout.close()
        hosts[1].start()  # and its operator starts it again
    else:
        while "lease had lapsed" not in hosts[1].stderr() and time.time() < t1 + 10 * SLOW:
            time.sleep(0.05)
        check("lease had lapsed" in hosts[1].stderr(), "host 1 saw its lease lapse: %s" %
              hosts[1].stderr()[-2000:])

    t1 = time.time()
    while True:
        pend = int(pg.psql(url, "select count(*) from wfp.wfp_invocations where status = 0"))
        if not pend or time.time() > t1 + 120 * SLOW:
            break
        time.sleep(0.1)
    if pend:
        fail("%d invocations still pending; e.g. %s; hosts %s" % (pend, pg.psql(
            url, "select id, fn, self, owner, epoch, effect, deadline_ms, steps, "
                 "updated_ms from wfp.wfp_invocations where status = 0 limit 10"),
            pg.psql(url, "select id, lease_until_ms, "
                         "(extract(epoch from clock_timestamp()) * 1000)::bigint "
                         "from wfp.wfp_hosts")))
    print("all ended %.1f s after the last post" % (time.time() - t1))
    outs = hosts[2].wait_done(list(ids.values()), timeout=120)
    elapsed = time.time() - t0

    # every accepted invocation: done once, with its output
    bumps = []
    for k, (fn, fargs, more) in enumerate(plan):
        o = outs[ids["mh-%d" % k]]
        check(o["status"] == "done", "%s: %s" % (k, o))
        if fn == "job":
            check(o["output"] == {"result": 2 * k}, "job %d: %s" % (k, o))
        else:
            bumps.append(o["output"]["result"])
    nbumps = len(bumps)
    jobs = sorted(k for k, p in enumerate(plan) if p[0] == "job")
    # one at a time on the counter whichever host ran it, each
    # read-modify-write of the context exactly once: 1, 2, ..., B
    check(sorted(bumps) == list(range(1, nbumps + 1)), "bumps: %s" % sorted(bumps)[:20])

    # every host sees everything: the same objects, context, log, instance
    sample = [ids["mh-%d" % k] for k in rnd.sample(range(a.jobs), 20)]
    for h in hosts:
        for i in sample:
            st, o = h.get("/v1/invocations/%s" % i)
            check(st == 200 and o == outs[i], "host %d, %s: %s %s" % (hosts.index(h), i, st, o))
        st, ctx = h.get("/v1/context")
        check(ctx.get("count") == nbumps, "context count %s, %d bumps" % (ctx, nbumps))
        st, inst = h.get("/v1/instances/%d" % handle)
        check(inst["props"]["value"] == nbumps, "instance %s, %d bumps" % (inst, nbumps))
        st, m = h.get("/v1/messages?topic=jobs")
        got = sorted(x["payload"]["i"] for x in m["messages"])
        check(got == jobs, "each job's message once (%d messages, %d jobs)" % (len(got), len(jobs)))
        seqs = [x["seq"] for x in m["messages"]]
        check(seqs == sorted(seqs) and len(set(seqs)) == len(seqs), "messages in order")
        st, m = h.get("/v1/messages?topic=bumps")
        check(len(m["messages"]) == nbumps, "each bump's message once")

    taken = sum(metric(h, "wfp_cluster_claimed_total") for h in hosts)

    for k, h in enumerate(hosts):
        rc = h.stop()
        check(rc == 0, "host %d stopped with %s: %s" % (k, rc, h.stderr()[-2000:]))

    one = lambda q: int(pg.psql(url, q))
    check(one("select count(*) from wfp.wfp_invocations where status != 1") == 0,
          "every invocation done: %s" % pg.psql(
              url, "select id, fn, status, trap from wfp.wfp_invocations where status != 1 "
                   "limit 5"))
    check(one("select count(*) from wfp.wfp_invocations where origin = 'http' and fn in "
              "('job', 'bump')") == a.jobs, "one invocation per key")
    check(one("select count(*) from wfp.wfp_idempotency") == a.jobs, "keys")
    check(one("select count(*) from wfp.wfp_invocations where fn = 'onJob'") == len(jobs),
          "one subscriber invocation per message")
    seen = [int(x) for x in pg.psql(url, "select i from wfp_program.seen order by i").split()]
    check(seen == jobs, "the subscriber's writes once each (%d rows, %d jobs)" %
          (len(seen), len(jobs)))
    check(one("select n from wfp_program.totals where k = 'jobs'") == len(jobs),
          "the jobs' counter")
    check(one("select count(*) from wfp.wfp_messages") == len(jobs) + nbumps, "the log")
    passed("multihost: %d invocations (%d jobs, %d bumps) and %d subscriber runs on 3 hosts, "
           "one killed, one paused for %.1f s with a %d ms lease (%s); %d claimed by another "
           "host; %.1f s" % (a.jobs, len(jobs), nbumps, len(jobs), 2.5 * lease / 1000.0, lease,
                             "went on" if paused_went_on else "stopped, started again",
                             taken, elapsed))


if __name__ == "__main__":
    main()
