"""api.py: the HTTP API of wfp-host serve (CONTRACT section 6) end to
end: starting invocations and waiting for them, their objects, the
message log, the context, resource instances, idempotency keys, limits,
every refusal as {"error": ...}, versions of one program side by side,
stopping with SIGTERM and SIGINT, one process per store."""

import json
import os
import signal

from svc import Service, check, fail, passed, so, workdir


def main():
    d = workdir("api")
    s = Service(d, [so("svc")], args=["--ctx", "n=41", "--ctx", "tally=0",
                                      "--max-fuel", "200000"]).start()
    st, o = s.get("/v1/health")
    check(st == 200 and o == {"ok": True}, "health: %s %s" % (st, o))

    # a synchronous call: 200 with the object
    st, o = s.invoke("main", wait=10000)
    check(st == 200, "POST ?wait: %s %s" % (st, o))
    check(o["status"] == "done" and o["output"] == {"result": 42}, "main: %s" % o)
    check(o["fn"] == "main" and len(o["program"]) == 16 and o["steps"] >= 1, "object: %s" % o)
    check(set(o) == {"id", "fn", "program", "status", "output", "steps"}, "members: %s" % o)
    first = o["id"]

    # without wait: 202, pending, then the same object on GET
    st, o = s.invoke("main")
    check(st == 202 and o["status"] == "pending" and len(o["id"]) == 16, "202: %s %s" % (st, o))
    done = s.wait_done([o["id"]])[o["id"]]
    check(done["output"] == {"result": 42}, "GET: %s" % done)
    st, again = s.get("/v1/invocations/" + o["id"])
    check(st == 200 and again == done, "GET again: %s" % again)

    # the message log: one per main, in order, with the sender
    st, m = s.get("/v1/messages?topic=results")
    check(st == 200, "messages: %s" % st)
    msgs = m["messages"]
    check(len(msgs) == 2 and [x["payload"] for x in msgs] == [42, 42], "messages: %s" % m)
    check(msgs[0]["invocation"] == first and msgs[0]["topic"] == "results", "sender: %s" % m)
    check(msgs[0]["seq"] < msgs[1]["seq"], "order: %s" % m)
    st, m2 = s.get("/v1/messages?topic=results&after=%d" % msgs[0]["seq"])
    check(m2["messages"] == msgs[1:], "after: %s" % m2)
    st, m3 = s.get("/v1/messages?topic=none")
    check(m3 == {"messages": []}, "no topic: %s" % m3)

    # arguments: by name and by position; types checked
    for args in ({"a": 2, "b": 3}, [2, 3]):
        st, o = s.invoke("add", args, wait=10000)
        check(st == 200 and o["output"] == {"result": 5}, "add %s: %s" % (args, o))
    st, o = s.invoke("greet", {"who": "wfp"}, wait=10000)
    check(o["output"] == {"result": "hi wfp"}, "greet: %s" % o)
    st, o = s.invoke("echo", [{"deep": [1, {"x": None}]}], wait=10000)
    check(o["output"] == {"deep": [1, {"x": None}]}, "echo: %s" % o)
    big = 9007199254740993  # not a double: kept exactly
    st, o = s.invoke("add", [big, 0], wait=10000)
    check(o["output"] == {"result": big}, "i64: %s" % o)

    refusals = [
        ({"fn": "add", "args": {"a": "x", "b": 1}}, 400, "$.args.a"),
        ({"fn": "add", "args": [1]}, 400, ""),
        ({"fn": "add", "args": {"c": 1}}, 400, ""),
        ({"fn": "greet", "args": [5]}, 400, ""),
        ({"fn": "nosuch"}, 404, "nosuch"),
        ({"fn": "add", "program": "0123456789abcdef"}, 404, "0123456789abcdef"),
        ({"fn": "add", "program": "xyz"}, 400, "program"),
        ({"fn": 5}, 400, "fn"),
        ({"fn": "add", "extra": 1}, 400, "extra"),
        ({"fn": "bump", "args": [1]}, 400, "instance"),
        ({"fn": "bump", "args": [1], "self": 999}, 404, "999"),
        ({"fn": "add", "args": [1, 2], "self": -1}, 400, "self"),
    ]
    for body, want, word in refusals:
        st, o = s.invoke(**body)
        check(st == want and isinstance(o, dict) and set(o) == {"error"},
              "%s: %s %s (want %d)" % (body, st, o, want))
        check(word in o["error"], "%s: %r lacks %r" % (body, o["error"], word))
    for body in (b"", b"{", b"[1]", b"nul", b'{"fn": "add"} x', b"\xff\xfe"):
        st, o = s.post("/v1/invocations", body)
        check(st == 400 and "error" in o, "%r: %s %s" % (body, st, o))
    st, o = s.post("/v1/invocations?wait=abc", {"fn": "add", "args": [1, 2]})
    check(st == 400, "wait=abc: %s" % st)

    # a trap: its message in the object
    st, o = s.invoke("boom", wait=10000)
    check(o["status"] == "trapped" and o["trap"] == "boom: <b>it went wrong</b> & more",
          "boom: %s" % o)
    check("output" not in o, "a trap has no output: %s" % o)
    st, o = s.invoke("spin", wait=20000)
    check(o["status"] == "trapped" and "fuel limit reached" in o["trap"], "spin: %s" % o)

    # idempotency: a retried POST is the same invocation, run once
    h = {"Idempotency-Key": "tally-once"}
    st1, a = s.invoke("tally", [5], headers=h)
    st2, b = s.invoke("tally", [5], headers=h)
    check(st1 == 202 and st2 == 202 and a["id"] == b["id"], "idempotency: %s %s" % (a, b))
    s.wait_done([a["id"]])
    st3, c = s.invoke("tally", [5], wait=5000, headers=h)
    check(st3 == 200 and c["id"] == a["id"] and c["output"] == {"result": 5}, "retry: %s" % c)
    st4, c2 = s.invoke("tally", [5], headers=h)
    check(st4 == 202 and c2 == {"id": a["id"], "status": "done"}, "retry, done: %s" % c2)
    st, ctx = s.get("/v1/context")
    check(st == 200 and ctx["tally"] == 5 and ctx["n"] == 41, "context: %s" % ctx)
    st, o = s.invoke("tally", [1], headers={"Idempotency-Key": "x" * 300})
    check(st == 400, "long key: %s" % st)

    # resource instances
    st, o = s.post("/v1/instances", {"resource": "Counter", "props": {"value": 10}})
    check(st == 201 and isinstance(o["handle"], int), "instance: %s %s" % (st, o))
    hnd = o["handle"]
    st, o = s.get("/v1/instances/%d" % hnd)
    check(st == 200 and o == {"handle": hnd, "resource": "Counter",
                              "props": {"value": 10, "label": ""}}, "GET instance: %s" % o)
    ids = []
    for k in range(4):
        st, o = s.invoke("bump", [k + 1], self=hnd)
        check(st == 202, "bump: %s %s" % (st, o))
        ids.append(o["id"])
    outs = s.wait_done(ids)
    # one at a time on the instance: no bump lost
    check(sorted(outs[i]["output"]["result"] for i in ids) == [11, 13, 16, 20],
          "bumps: %s" % outs)
    st, o = s.get("/v1/instances/%d" % hnd)
    check(o["props"]["value"] == 20, "after bumps: %s" % o)
    for body, want in (({"resource": "Nope"}, 404), ({"resource": "Counter", "props":
                       {"value": "x"}}, 400), ({"resource": "Counter", "props": {"nope": 1}},
                       400), ({"props": {}}, 400), ({"resource": 1}, 400),
                       ({"resource": "Counter", "props": [1]}, 400)):
        st, o = s.post("/v1/instances", body)
        check(st == want and "error" in o, "%s: %s %s" % (body, st, o))
    for path in ("/v1/instances/999", "/v1/instances/x", "/v1/invocations/0123456789abcdef",
                 "/v1/invocations/nope", "/v1/nothing", "/favicon.ico"):
        st, o = s.get(path)
        check(st == 404 and "error" in o, "%s: %s %s" % (path, st, o))
    st, o = s.request("DELETE", "/v1/context")
    check(st == 405 and "error" in o, "DELETE: %s %s" % (st, o))
    st, o = s.get("/v1/invocations")
    check(st == 405, "GET /v1/invocations: %s" % st)

    # a fan-out: its rows' writes commit with the query's step
    st, o = s.invoke("fan", wait=10000)
    check(o["output"] == [10, 20, 30], "fan: %s" % o)
    st, m = s.get("/v1/messages?topic=rows")
    check(sorted(x["payload"] for x in m["messages"]) == [1, 2, 3], "rows: %s" % m)
    check(all(x["invocation"] == o["id"] for x in m["messages"]), "rows' sender: %s" % m)
    st, ctx = s.get("/v1/context")
    check(ctx.get("fanned") in (1, 2, 3), "fanned: %s" % ctx)

    # the store's own tables are out of a program's reach
    st, o = s.invoke("steal", wait=10000)
    check(o["status"] == "trapped" and "wfp_context" in o["trap"] and
          "store" in o["trap"], "steal: %s" % o)

    # the status page and the metrics
    st, page = s.get("/")
    check(st == 200 and "<h1>wfp service</h1>" in page, "page: %s" % st)
    check("boom: &lt;b&gt;it went wrong&lt;/b&gt; &amp; more" in page, "trap on the page")
    st, met = s.get("/metrics")
    check(st == 200 and 'wfp_invocations{status="trapped"} 3' in met, "metrics: %s" % met)
    for name in ("wfp_steps_total", 'wfp_effects_total{kind="sleep_ms"}',
                 "wfp_step_latency_seconds_bucket", "wfp_commit_batch_size_bucket",
                 'wfp_function_invocations{fn="main",status="done"} 2'):
        check(name in met, "metrics lack %s" % name)

    # SIGTERM stops it cleanly; everything is there after a restart
    ctx_before = s.get("/v1/context")[1]
    msgs_before = s.get("/v1/messages")[1]
    rc = s.stop(signal.SIGTERM)
    check(rc == 0, "SIGTERM exit %s: %s" % (rc, s.stderr()))
    s.start()
    check(s.get("/v1/context")[1] == ctx_before, "context after a restart")
    check(s.get("/v1/messages")[1] == msgs_before, "messages after a restart")
    st, o = s.get("/v1/invocations/" + first)
    check(st == 200 and o["output"] == {"result": 42}, "old invocation: %s" % o)
    st, o = s.get("/v1/instances/%d" % hnd)
    check(o["props"]["value"] == 20, "instance after a restart: %s" % o)
    st, o = s.post("/v1/instances", {"resource": "Counter"})
    check(st == 201 and o["handle"] == hnd + 1, "handles go on: %s" % o)
    st, page = s.get("/")
    check("boom: &lt;b&gt;" in page, "the page remembers traps")
    # one process per store
    other = Service(d, [so("svc")])
    rc = other.start(expect_fail=True)
    check(rc == 3 and "in use" in other.stderr(), "second process: %s %s" %
          (rc, other.stderr()))
    rc = s.stop(signal.SIGINT)
    check(rc == 0, "SIGINT exit %s" % rc)
    log = s.stderr()
    check('"event":"start"' in log, "log: %s" % log)
    log_lines()
    versions()
    passed("api")


def log_lines():
    """The log's JSON lines stay JSON whatever the store's name holds."""
    d = workdir("log")
    s = Service(d, [so("svc")], store='a "quoted" \\ name.db').start()
    st, o = s.invoke("boom", wait=10000)
    check(o["status"] == "trapped", "boom: %s" % o)
    check(s.stop() == 0, "stop: %s" % s.stderr())
    events = [json.loads(l) for l in s.stderr().splitlines() if l.startswith("{")]
    check([e["event"] for e in events] == ["start", "end"], "events: %s" % events)
    check(events[0]["store"] == s.store, "the store's name: %s" % events[0])
    check(events[1]["trap"].startswith("boom: <b>"), "the trap: %s" % events[1])


def versions():
    """Two versions of one program: pending invocations keep theirs."""
    d = workdir("versions")
    s = Service(d, [so("version.v1")]).start()
    st, o = s.invoke("work", [1500])
    old = o["id"]
    st, prog1 = s.invoke("work", [0], wait=10000)
    v1 = prog1["program"]
    check(prog1["output"] == {"version": 1, "ms": 0}, "v1: %s" % prog1)
    s.kill()
    # a newer version is loaded beside it; the old one's invocation goes on
    s.sos = [so("version.v1"), so("version.v2")]
    s.start()
    st, o = s.invoke("work", [0], wait=10000)
    check(o["output"] == {"version": 2, "ms": 0, "fast": True} and o["program"] != v1,
          "new goes to v2: %s" % o)
    v2 = o["program"]
    st, o = s.invoke("work", [0], program=v1, wait=10000)
    check(o["output"] == {"version": 1, "ms": 0}, "program v1 by hash: %s" % o)
    st, o = s.invoke("added", wait=10000)
    check(o["output"] == {"result": 2} and o["program"] == v2, "added: %s" % o)
    st, o = s.invoke("added", program=v1)
    check(st == 404, "added in v1: %s %s" % (st, o))
    o = s.wait_done([old])[old]
    check(o["output"] == {"version": 1, "ms": 1500} and o["program"] == v1,
          "old one resumed with v1: %s" % o)
    # without v1 a pending v1 invocation waits in the store
    st, o = s.invoke("work", [60000], program=v1)
    waiting = o["id"]
    s.kill()
    s.sos = [so("version.v2")]
    s.start()
    st, o = s.get("/v1/invocations/" + waiting)
    check(o["status"] == "pending" and o["program"] == v1, "waits: %s" % o)
    check("wait in the store" in s.stderr(), "said: %s" % s.stderr())
    st, met = s.get("/metrics")
    check("wfp_waiting_for_program 1" in met, "metric: %s" % met)
    s.stop()


if __name__ == "__main__":
    main()
