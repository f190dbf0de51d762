"""crash.py: the crash test. Invocations that sleep, send messages, write
the context and a table of the store's database, and run through a
subscriber, posted while wfp-host serve is killed with SIGKILL at random
moments and restarted on the same store, again and again. At the end every
accepted invocation finished exactly once with the right output, every
message is in the log once and its subscriber ran once, every counter
(the context, an instance, a table) is exact.

Usage: crash.py [--jobs N] [--kills K] [--fsync full|normal|off] [--seed S]
(ctest runs a shorter variant; bench/README.md records the long one)."""

import argparse
import random
import sqlite3
import threading
import time

from svc import SLOW, Service, check, fail, passed, so, workdir


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--fsync", default="full")
    ap.add_argument("--seed", type=int, default=int(time.time()))
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    print("crash: seed %d, %d invocations, %d kills, --fsync %s" %
          (a.seed, a.jobs, a.kills, a.fsync))
    d = workdir("crash")
    s = Service(d, [so("crash")], args=["--ctx", "count=0", "--subscribe", "jobs=onJob",
                                        "--fsync", a.fsync]).start()
    st, o = s.invoke("setup", wait=10000)
    check(o.get("output") == {"result": 1}, "setup: %s" % o)
    st, o = s.post("/v1/instances", {"resource": "Counter"})
    handle = o["handle"]

    # the work: a quarter are bumps on the counter, the rest jobs
    plan = []
    for k in range(a.jobs):
        if k % 4 == 3:
            plan.append(("bump", [k], {"self": handle}))
        else:
            plan.append(("job", [k, rnd.randrange(0, 40)], {}))
    ids = {}
    lock = threading.Lock()
    # posting spans the kills: some land between a POST and its answer
    pace = a.kills * 0.3 * SLOW / max(a.jobs, 1)
    state = {"posted": 0, "stop": False, "retries": 0}

    def client():
        """Posts every planned invocation, each with its own idempotency
        key, retrying through kills until one answer arrives."""
        crnd = random.Random(a.seed + 1)
        for k, (fn, args, more) in enumerate(plan):
            time.sleep(crnd.uniform(0, 2 * pace))
            key = "crash-%d" % k
            # a kill and a restart take far less: past this the service
            # died on its own, or hangs
            deadline = time.time() + 60 * SLOW
            while True:
                if time.time() > deadline:
                    state["error"] = "POST %s: no answer for %d s: %s" % (
                        key, 60 * SLOW, s.stderr()[-3000:])
                    return
                try:
                    st, o = s.invoke(fn, args, headers={"Idempotency-Key": key}, **more)
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
                    pass  # killed meanwhile: the same key again
                state["retries"] += 1
                time.sleep(0.01)

    t = threading.Thread(target=client, daemon=True)
    t.start()
    kills = 0
    t0 = time.time()
    while kills < a.kills or t.is_alive():
        time.sleep(rnd.uniform(0.1, 0.5) * SLOW)
        if kills >= a.kills and t.is_alive():
            continue
        if kills < a.kills:
            s.kill()
            kills += 1
            s.start()
        if "error" in state:
            break
    t.join()
    if "error" in state:
        fail(state["error"])
    check(len(ids) == a.jobs, "every invocation was accepted: %d" % len(ids))
    outs = s.wait_done(list(ids.values()), timeout=120)
    elapsed = time.time() - t0

    # every accepted invocation: done once, with its output
    bumps = []
    for k, (fn, args, more) in enumerate(plan):
        o = outs[ids["crash-%d" % k]]
        check(o["status"] == "done", "%s: %s" % (k, o))
        if fn == "job":
            check(o["output"] == {"result": 2 * k}, "job %d: %s" % (k, o))
        else:
            bumps.append(o["output"]["result"])
    nbumps = len(bumps)
    njobs = a.jobs - nbumps
    # one at a time on the counter, each read-modify-write of the context
    # exactly once: the bumps saw 1, 2, ..., B
    check(sorted(bumps) == list(range(1, nbumps + 1)), "bumps: %s" % sorted(bumps)[:20])
    st, ctx = s.get("/v1/context")
    check(ctx["count"] == nbumps, "context count %s, %d bumps" % (ctx["count"], nbumps))
    st, inst = s.get("/v1/instances/%d" % handle)
    check(inst["props"]["value"] == nbumps, "instance %s, %d bumps" % (inst, nbumps))
    st, m = s.get("/v1/messages?topic=jobs")
    got = sorted(x["payload"]["i"] for x in m["messages"])
    check(got == sorted(k for k, p in enumerate(plan) if p[0] == "job"),
          "each job's message once (%d messages, %d jobs)" % (len(got), njobs))
    st, m = s.get("/v1/messages?topic=bumps")
    check(len(m["messages"]) == nbumps, "each bump's message once")
    # the subscriber ran once per message (its invocations end too)
    deadline = time.time() + 60 * SLOW
    while True:
        with s.db() as db:
            pend = db.execute("select count(*) from wfp_invocations where status=0").fetchone()[0]
        if not pend or time.time() > deadline:
            break
        time.sleep(0.1)
    check(s.stop() == 0, "the last stop: %s" % s.stderr())
    with sqlite3.connect(s.store) as db:
        one = lambda q: db.execute(q).fetchone()[0]
        check(one("select count(*) from wfp_invocations where status != 1") == 0,
              "every invocation done: %s" % db.execute(
                  "select id, fn, status, trap from wfp_invocations where status != 1 "
                  "limit 5").fetchall())
        check(one("select count(*) from wfp_invocations where origin='http'") == a.jobs + 1,
              "one invocation per key")
        check(one("select count(*) from wfp_idempotency") == a.jobs, "keys")
        check(one("select count(*) from wfp_invocations where fn='onJob'") == njobs,
              "one subscriber invocation per message")
        seen = [r[0] for r in db.execute("select i from seen order by i")]
        check(seen == sorted(k for k, p in enumerate(plan) if p[0] == "job"),
              "the subscriber's writes once each (%d rows, %d jobs)" % (len(seen), njobs))
        check(one("select n from totals where k='jobs'") == njobs, "the jobs' counter")
    passed("crash: %d invocations (%d jobs, %d bumps) and %d subscriber runs, %d kills, "
           "%d retried posts, %.1f s" % (a.jobs, njobs, nbumps, njobs, kills, state["retries"],
                                         elapsed))


if __name__ == "__main__":
    main()
