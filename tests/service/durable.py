"""durable.py: what survives a stop or a kill of wfp-host serve: a sleep
keeps its deadline, idempotency keys hold across restarts, subscribers
run once per message, schedules once per tick, db_query writes in the
store's database commit with their step, a damaged record ends its
invocation with a trap instead of stopping the service, and --db on
another file works (at-least-once)."""

import os
import sqlite3
import time

from svc import SLOW, Service, check, passed, so, workdir


def row(s, inv_id, cols):
    with s.db() as db:
        return db.execute("select %s from wfp_invocations where id=?" % cols,
                          (inv_id,)).fetchone()


def sleeps_keep_their_deadline():
    d = workdir("deadline")
    s = Service(d, [so("svc")]).start()
    st, o = s.invoke("nap", [4000])
    i = o["id"]
    deadline = None
    for _ in range(100):
        deadline = row(s, i, "deadline_ms")[0]
        if deadline:
            break
        time.sleep(0.02)
    check(deadline, "the sleep's deadline is in the store")
    time.sleep(1.0)
    s.kill()
    # down for a while: a sleep started over would end 1.5 s late
    time.sleep(1.5)
    s.start()
    check(row(s, i, "deadline_ms")[0] == deadline, "the deadline did not move")
    o = s.wait_done([i])[i]
    check(o["output"] == {"result": 4000}, "nap: %s" % o)
    ended = row(s, i, "ended_ms")[0]
    check(ended >= deadline, "woke at its deadline, not before")
    check(ended < deadline + 1400 * SLOW, "woke at its deadline (%d ms late)" %
          (ended - deadline))
    # a deadline that passed while it was down: it wakes at once
    st, o = s.invoke("nap", [300])
    time.sleep(0.1)
    s.kill()
    time.sleep(0.5)
    s.start()
    o = s.wait_done([o["id"]], timeout=10)
    s.stop()


def idempotency_across_restarts():
    d = workdir("idem")
    s = Service(d, [so("svc")], args=["--ctx", "tally=0"]).start()
    h = {"Idempotency-Key": "order-17"}
    st, a = s.invoke("tally", [7], headers=h)
    s.kill()
    s.start()
    st, b = s.invoke("tally", [7], headers=h, wait=5000)
    check(b["id"] == a["id"] and b["output"] == {"result": 7}, "same: %s %s" % (a, b))
    check(s.get("/v1/context")[1]["tally"] == 7, "ran once")
    s.stop()


def subscribers_once_per_message():
    d = workdir("subs")
    s = Service(d, [so("svc")], args=["--subscribe", "events=onEvent"]).start()
    ids = []
    for n in range(1, 41):
        st, o = s.invoke("publish", [n])
        ids.append(o["id"])
        if n % 10 == 0:
            s.kill()
            s.start()
    s.wait_done(ids)
    # the subscribers' invocations finish too
    deadline = time.time() + 30 * SLOW
    while True:
        st, o = s.invoke("seen", wait=5000)
        got = [r["n"] for r in o["output"]]
        if len(got) >= 40 or time.time() > deadline:
            break
        time.sleep(0.1)
    check(got == list(range(1, 41)), "each message once: %s" % got)
    st, m = s.get("/v1/messages?topic=events")
    check(len(m["messages"]) == 40, "messages: %d" % len(m["messages"]))
    with s.db() as db:
        subs = db.execute("select count(*) from wfp_invocations where origin = "
                          "'subscriber events=onEvent'").fetchone()[0]
        cur = db.execute("select seq from wfp_cursors").fetchone()[0]
    check(subs == 40, "one invocation per message: %d" % subs)
    check(cur == m["messages"][-1]["seq"], "the cursor is past the last message")
    # a subscriber added later starts with the messages sent from then on
    s.stop()
    s.args = ["--subscribe", "events=onEvent", "--subscribe", "other=echo"]
    s.start()
    st, o = s.invoke("publish", [41], wait=5000)
    with s.db() as db:
        new = db.execute("select count(*) from wfp_invocations where origin = "
                         "'subscriber other=echo'").fetchone()[0]
    check(new == 1, "a new subscriber: %d invocations" % new)
    # a subscriber must take one json parameter
    bad = Service(workdir("subs-bad"), [so("svc")], args=["--subscribe", "events=add"])
    rc = bad.start(expect_fail=True)
    check(rc == 2 and "one json parameter" in bad.stderr(), "bad subscriber: %s" %
          bad.stderr())
    s.stop()


def schedules_once_per_tick():
    d = workdir("every")
    s = Service(d, [so("svc")], args=["--every", "300ms=tick"]).start()
    time.sleep(1.6)
    s.kill()
    time.sleep(1.0)  # ticks missed while down run once
    s.start()
    time.sleep(1.0)
    s.stop()
    with s.db() as db:
        due = db.execute("select next_due_ms from wfp_schedules").fetchone()[0]
    check(due > int(time.time() * 1000) - 300, "the next tick is ahead")
    # a tick stopped midway (its query committed with its step, its
    # message not sent yet) ends in a service without the schedule
    s.args = []
    s.start()
    deadline = time.time() + 20 * SLOW
    while True:
        with s.db() as db:
            pending = db.execute("select count(*) from wfp_invocations where status=0"
                                 ).fetchone()[0]
        if not pending or time.time() > deadline:
            break
        time.sleep(0.05)
    s.stop()
    with s.db() as db:
        n_inv = db.execute("select count(*) from wfp_invocations where origin = "
                           "'every 300ms=tick' and status=1").fetchone()[0]
        n_all = db.execute("select count(*) from wfp_invocations").fetchone()[0]
        n_rows = db.execute("select count(*) from ticks").fetchone()[0]
        n_msgs = db.execute("select count(*) from wfp_messages where topic='ticks'").fetchone()[0]
    check(n_inv >= 4 and n_all == n_inv, "ticks ran and ended: %d of %d" % (n_inv, n_all))
    # each tick's invocation ran once: its row and message once each
    check(n_rows == n_inv and n_msgs == n_inv,
          "once per tick: %d invocations, %d rows, %d messages" % (n_inv, n_rows, n_msgs))
    bad = Service(workdir("every-bad"), [so("svc")], args=["--every", "10x=tick"])
    rc = bad.start(expect_fail=True)
    check(rc == 2 and "DURATION" in bad.stderr(), "bad duration: %s" % bad.stderr())


def damaged_record_traps():
    d = workdir("damaged")
    s = Service(d, [so("svc")]).start()
    st, o = s.invoke("nap", [60000])
    i = o["id"]
    for _ in range(100):
        if row(s, i, "state")[0]:
            break
        time.sleep(0.02)
    s.kill()
    with sqlite3.connect(s.store) as db:
        state = bytearray(db.execute("select state from wfp_invocations where id=?",
                                     (i,)).fetchone()[0])
        state[-1] ^= 0xff
        db.execute("update wfp_invocations set state=? where id=?", (bytes(state), i))
    s.start()
    o = s.wait_done([i])[i]
    check(o["status"] == "trapped" and "damaged" in o["trap"], "damaged: %s" % o)
    st, o = s.invoke("add", [1, 2], wait=5000)
    check(o["output"] == {"result": 3}, "the service goes on")
    s.stop()


def another_database():
    d = workdir("otherdb")
    other = os.path.join(d, "user.db")
    s = Service(d, [so("svc")], args=["--db", other,
                                      "--subscribe", "events=onEvent"]).start()
    st, o = s.invoke("publish", [5], wait=5000)
    deadline = time.time() + 20 * SLOW
    while time.time() < deadline:
        st, o = s.invoke("seen", wait=5000)
        if o["output"]:
            break
        time.sleep(0.1)
    check(o["output"] == [{"n": 5}], "seen: %s" % o)
    s.stop()
    with sqlite3.connect(other) as db:
        check(db.execute("select n from seen").fetchall() == [(5,)], "the rows are in --db")
    with sqlite3.connect(s.store) as db:
        check(not db.execute("select name from sqlite_master where name='seen'").fetchall(),
              "and not in the store")


def stop_under_load():
    d = workdir("stop")
    s = Service(d, [so("svc")]).start()
    ids = [s.invoke("nap", [800])[1]["id"] for _ in range(50)]
    time.sleep(0.2)
    check(s.stop() == 0, "SIGTERM: %s" % s.stderr())
    s.args = ["--fsync", "normal"]
    s.start()
    outs = s.wait_done(ids)
    check(all(o["output"] == {"result": 800} for o in outs.values()), "all finished")
    s.stop()
    s.args = ["--fsync", "off"]
    s.start()
    st, o = s.invoke("add", [2, 2], wait=5000)
    check(o["output"] == {"result": 4}, "fsync off: %s" % o)
    s.stop()


def main():
    sleeps_keep_their_deadline()
    idempotency_across_restarts()
    subscribers_once_per_message()
    schedules_once_per_tick()
    damaged_record_traps()
    another_database()
    stop_under_load()
    passed("durable")


if __name__ == "__main__":
    main()
