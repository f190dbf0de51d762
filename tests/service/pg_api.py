"""pg_api.py: the service on a PostgreSQL store, two or three hosts at once
(CONTRACT sections 6 and 7): the same HTTP API on every host, a GET on any
host sees the invocations, messages, context and instances of all; a method
posted to one host runs on the host that holds its instance; an
Idempotency-Key names one invocation whichever host is asked; ?wait on
another host's invocation; db_query in PostgreSQL's SQL inside the store's
transaction (a subscriber's writes once each), what a program may not run
there; fencing (a host paused past its lease drops what another host took
over); migrations (hosts starting at once on a new database, a newer
schema refused); a clean stop hands a host's invocations over; the store
unreachable."""

import atexit
import os
import signal
import threading
import time

import pg
from pg import kill_all
from svc import SLOW, Service, check, passed, so, workdir


# short, for the takeovers to be quick; longer in a sanitized build
LEASE = 1000 * SLOW


def host(d, name, url, extra=()):
    hd = os.path.join(d, name)
    os.makedirs(hd, exist_ok=True)
    h = Service(hd, [so("svc")], args=["--ctx", "n=5", "--lease-ms", str(LEASE),
                                        "--subscribe", "events=onEvent"] + list(extra))
    h.store = url
    return h


def main():
    pg.skip_without()
    d = workdir("pg_api")

    # migrations: three hosts starting at once on a new database make the
    # schema once (an advisory lock), and all of them serve
    url = pg.new_db("pg_api")
    # the third host's URL holds a password (the cluster trusts the socket):
    # logs show it as ***
    secret = url.replace("postgresql:///", "postgresql://wfp:s3cret@/")
    hosts = [host(d, "h%d" % k, u) for k, u in enumerate([url, url, secret])]
    atexit.register(kill_all, hosts)
    ths = [threading.Thread(target=h.start) for h in hosts]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    for h in hosts:
        check(h.port, "a host did not start: %s" % h.stderr())
    check(pg.psql(url, "select value from wfp.wfp_meta where key = 'schema_version'").strip()
          == "2", "schema version")
    a, b, c = hosts
    check(c.stop() == 0, "c stops: %s" % c.stderr())
    check("s3cret" not in c.stderr() and "postgresql://wfp:***@/" in c.stderr(),
          "the password is not logged: %s" % c.stderr())

    # the same API on every host
    for h in (a, b):
        st, o = h.get("/v1/health")
        check(st == 200 and o == {"ok": True}, "health: %s %s" % (st, o))

    # posted on a, seen from b: the object, the message, the context
    st, o = a.invoke("main", wait=5000)
    check(st == 200 and o["output"] == {"result": 6}, "main on a: %s %s" % (st, o))
    st, ob = b.get("/v1/invocations/%s" % o["id"])
    check(st == 200 and ob == o, "the same object on b: %s %s" % (st, ob))
    st, m = b.get("/v1/messages?topic=results")
    check(st == 200 and m["messages"] == [{"seq": 1, "topic": "results", "payload": 6,
                                           "invocation": o["id"]}], "messages on b: %s" % m)
    st, ctx = b.get("/v1/context")
    check(ctx == {"n": 5}, "context on b: %s" % ctx)
    # a trap on b, read on a
    st, o = b.invoke("boom", wait=5000)
    check(o["status"] == "trapped", "boom: %s" % o)
    st, oa = a.get("/v1/invocations/%s" % o["id"])
    check(oa == o and "boom" in oa["trap"], "the trap on a: %s" % oa)
    # a's status page lists b's trap once it read the store again (every
    # half lease), escaped
    deadline = time.time() + 10 * SLOW
    while True:
        st, page = a.get("/")
        if "&lt;b&gt;it went wrong&lt;/b&gt;" in page or time.time() > deadline:
            break
        time.sleep(0.1)
    check(o["id"] in page and "&lt;b&gt;it went wrong&lt;/b&gt;" in page,
          "b's trap on a's status page")
    st, o = a.get("/v1/invocations/0123456789abcdef")
    check(st == 404, "unknown id: %s %s" % (st, o))
    # ctx writes on one host, reads on the other
    st, o = a.invoke("tally", [3], wait=5000)
    check(o["status"] == "trapped" and "tally" in o["trap"], "tally unset: %s" % o)

    # instances: handles from blocks of their own, methods run where the
    # instance is held, its properties seen everywhere
    st, ia = a.post("/v1/instances", {"resource": "Counter", "props": {"value": 10}})
    st2, ib = b.post("/v1/instances", {"resource": "Counter", "props": {"value": 100}})
    check(st == 201 and st2 == 201 and ia["handle"] != ib["handle"],
          "two hosts, two handles: %s %s" % (ia, ib))
    st, o = b.invoke("bump", [5], wait=5000, self=ia["handle"])
    check(st == 200 and o["output"] == {"result": 15}, "a's instance bumped via b: %s %s" %
          (st, o))
    st, o = a.invoke("bump", [1], wait=5000, self=ib["handle"])
    check(st == 200 and o["output"] == {"result": 101}, "b's instance via a: %s %s" % (st, o))
    for h in (a, b):
        st, i = h.get("/v1/instances/%d" % ia["handle"])
        check(i["props"]["value"] == 15, "instance on every host: %s" % i)
    st, o = a.get("/v1/instances/999999")
    check(st == 404, "unknown instance: %s" % st)
    st, o = b.invoke("bump", [1], self=999999)
    check(st == 404, "a method on an unknown instance: %s %s" % (st, o))

    # one Idempotency-Key, one invocation, whichever host is asked
    st, o1 = a.invoke("nap", [200], headers={"Idempotency-Key": "k1"})
    st2, o2 = b.invoke("nap", [200], headers={"Idempotency-Key": "k1"})
    check(st == 202 and st2 == 202 and o1["id"] == o2["id"], "one key: %s %s" % (o1, o2))

    # ?wait on another host's invocation, GET and POST
    st, o = a.invoke("nap", [300])
    st, w = b.get("/v1/invocations/%s?wait=5000" % o["id"])
    check(st == 200 and w["status"] == "done" and w["output"] == {"result": 300},
          "GET ?wait on b for a's: %s %s" % (st, w))
    st, o = b.invoke("nap", [300], headers={"Idempotency-Key": "k2"})
    st, w = a.invoke("nap", [300], wait=5000, headers={"Idempotency-Key": "k2"})
    check(st == 200 and w["id"] == o["id"] and w["status"] == "done",
          "POST ?wait on a, b's key: %s %s" % (st, w))

    # db_query in the store's database: a subscriber's writes once each,
    # read back by a query posted to the other host; ? placeholders
    for n in (1, 2, 3):
        st, o = (a if n % 2 else b).invoke("publish", [n], wait=5000)
        check(o["status"] == "done", "publish: %s" % o)
    deadline = time.time() + 20 * SLOW
    while True:
        st, o = b.invoke("seen", wait=5000)
        check(o["status"] == "done", "seen: %s" % o)
        if len(o["output"]) >= 3 or time.time() > deadline:
            break
        time.sleep(0.1)
    check(o["output"] == [{"n": 1}, {"n": 2}, {"n": 3}], "the subscriber's rows: %s" % o)
    # a fan-out over rows of PostgreSQL
    st, o = a.invoke("fan", wait=5000)
    check(o["status"] == "done" and o["output"] == [10, 20, 30], "fan: %s" % o)
    st, m = b.get("/v1/messages?topic=rows")
    check([x["payload"] for x in m["messages"]] == [1, 2, 3], "rows' messages: %s" % m)
    # the store's tables are not the program's
    st, o = a.invoke("steal", wait=5000)
    check(o["status"] == "trapped" and "wfp_context" in o["trap"] and "store" in o["trap"],
          "steal: %s" % o)
    st, o = a.invoke("peek", wait=5000)
    check(o["status"] == "trapped" and "sqlite_master" in o["trap"], "peek: %s" % o)

    # fencing: a host paused past its lease (its connections idle: only
    # sleepers) has its invocations taken over; when it goes on, their
    # next records fail their fence and it drops them, and keeps serving
    naps = [a.invoke("nap", [2 * LEASE])[1]["id"] for _ in range(3)]
    # their sleeps committed: a's committer is idle, no transaction open
    ids = ",".join("'%s'" % i for i in naps)
    deadline = time.time() + 10 * SLOW
    while int(pg.psql(url, "select count(*) from wfp.wfp_invocations where id in (%s) and "
                           "deadline_ms is not null" % ids)) < 3 and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)
    a.proc.send_signal(signal.SIGSTOP)
    outs = b.wait_done(naps, timeout=30)
    for i in naps:
        check(outs[i]["output"] == {"result": 2 * LEASE} and outs[i]["steps"] == 2,
              "nap taken over from the paused host: %s" % outs[i])
    a.proc.send_signal(signal.SIGCONT)
    lost = lambda: int([l for l in a.get("/metrics")[1].splitlines()
                        if l.startswith("wfp_cluster_lost_total ")][0].split()[1])
    deadline = time.time() + 20 * SLOW
    while lost() < 3 and time.time() < deadline:
        time.sleep(0.05)
    check(lost() == 3, "the paused host dropped the 3 taken over at their fence: %d" % lost())
    check("lease had lapsed" in a.stderr(), "the paused host saw its lease lapse")
    for i in naps:
        st, o = a.get("/v1/invocations/%s" % i)
        check(o == outs[i], "ended once, as the other host ended it: %s %s" % (o, outs[i]))
    st, o = a.invoke("add", [2, 3], wait=5000)
    check(o.get("output") == {"result": 5}, "the paused host serves on: %s" % o)

    # a clean stop lets go of what a host holds: another takes it at once
    # (no lease to wait for)
    naps = [a.invoke("nap", [1500])[1]["id"] for _ in range(3)]
    time.sleep(0.3)
    before = b.get("/metrics")[1]
    check(a.stop(signal.SIGTERM) == 0, "a stops: %s" % a.stderr())
    outs = b.wait_done(naps, timeout=30)
    for i in naps:
        check(outs[i]["status"] == "done" and outs[i]["output"] == {"result": 1500},
              "nap taken over: %s" % outs[i])
    after = b.get("/metrics")[1]
    claimed = lambda t: int([l for l in t.splitlines()
                             if l.startswith("wfp_cluster_claimed_total ")][0].split()[1])
    check(claimed(after) >= claimed(before) + 3, "b claimed a's naps")
    check(b.stop() == 0, "b stops: %s" % b.stderr())

    # the committer's connection cut while requests come in: the host
    # stops (exit 3, the store named), and every request it took is
    # answered (a sanitized build checks none is left behind)
    h = host(d, "cut", url)
    h.start()
    atexit.register(kill_all, [h])
    stop_posting = []
    answers = []

    def poster():
        while not stop_posting:
            try:
                st, o = h.invoke("add", [1, 2], wait=1000)
                answers.append(st)
            except (OSError, ValueError):
                break

    ths = [threading.Thread(target=poster) for _ in range(4)]
    for t in ths:
        t.start()
    time.sleep(0.3)
    pg.psql(url, "select pg_terminate_backend(pid) from pg_stat_activity where "
                 "application_name = 'wfp-host writer' and datname = current_database()")
    try:
        rc = h.proc.wait(timeout=30 * SLOW)
    finally:
        stop_posting.append(1)
        for t in ths:
            t.join()
    h.proc.stdout.close()
    check(rc == 3 and "the store failed" in h.stderr(), "writer cut: %s %s" % (rc, h.stderr()))
    check(answers and set(answers) <= {200, 503}, "answers while cut: %s" % set(answers))

    # a store of a newer wfp-host is refused, naming both versions
    pg.psql(url, "update wfp.wfp_meta set value = '99' where key = 'schema_version'")
    h = host(d, "newer", url)
    rc = h.start(expect_fail=True)
    check(rc == 3 and "schema version 99" in h.stderr(), "newer schema: %s %s" %
          (rc, h.stderr()))
    # an unreachable store: exit 3, one line naming it
    h = host(d, "away", "postgresql:///nowhere?host=%s&user=wfp" % os.path.join(d, "nosock"))
    rc = h.start(expect_fail=True)
    err = h.stderr()
    check(rc == 3 and err.startswith("wfp-host: error: cannot connect to the store") and
          err.count("\n") == 1, "unreachable: %s %r" % (rc, err))
    passed("pg_api")


if __name__ == "__main__":
    main()
