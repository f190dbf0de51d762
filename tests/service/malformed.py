"""malformed.py: what a client can throw at the service's HTTP server:
garbage bytes, bodies over the limit (refused from their Content-Length
before they are read), huge headers and URLs, a client that sends its
request slowly (slowloris), too many connections, pipelined and kept-alive
requests, Expect: 100-continue. Each refusal is a JSON {"error": ...}
with its 4xx (or 503), and the service goes on."""

import json
import random
import socket
import time

from svc import SLOW, Service, check, parse_response, passed, raw_exchange, so, workdir


def error_of(raw, want):
    st, hdrs, body = parse_response(raw)
    check(st == want, "status %s, not %s: %r" % (st, want, raw[:300]))
    check(hdrs.get("content-type") == "application/json", "type: %s" % hdrs)
    o = json.loads(body)
    check(set(o) == {"error"} and o["error"], "body: %r" % body)
    return o["error"], hdrs


def random_json(rnd, depth=0):
    k = rnd.randrange(9 if depth < 3 else 6)
    if k == 0:
        return None
    if k == 1:
        return rnd.choice([True, False])
    if k == 2:
        return rnd.choice([0, -1, 7, 2**63 - 1, -2**63, 2**63, 2**70, 1.5, -0.0, 1e308])
    if k in (3, 4, 5):
        return rnd.choice(["", "x", "add", "\u0000", "\udbff", "\u00e9t\u00e9", "a" * 300,
                           "Counter", "0123456789abcdef", "%00", "../../etc"])
    if k in (6, 7):
        return [random_json(rnd, depth + 1) for _ in range(rnd.randrange(4))]
    return {rnd.choice(["fn", "args", "self", "program", "a", "b", "who", "doc", "by", "",
                        "resource", "props", "value"]): random_json(rnd, depth + 1)
            for _ in range(rnd.randrange(5))}


def random_inputs(s):
    """No input crashes the service: random invocations and instances
    (members of every type, the right names among them), random bytes in
    place of a request, and requests with bytes flipped. Each answer is a
    2xx or a 4xx with {"error": ...}; a sanitized build aborts on a fault."""
    seed = int(time.time())
    rnd = random.Random(seed)
    fns = ["add", "greet", "echo", "boom", "main", "bump", "get", "tally", "nope", 1, None]
    for i in range(300):
        body = random_json(rnd)
        if isinstance(body, dict) and rnd.random() < 0.7:
            if rnd.random() < 0.5:
                body["fn"] = rnd.choice(fns)
            else:
                body["resource"] = "Counter"
        path = rnd.choice(["/v1/invocations", "/v1/invocations?wait=50", "/v1/instances"])
        text = json.dumps(body)
        if rnd.random() < 0.2:  # cut short
            text = text[:rnd.randrange(len(text) + 1)]
        st, o = s.post(path, text)
        check(st in (200, 201, 202, 400, 404), "seed %d, %s %s: %s %s" % (seed, path, text, st, o))
        check(isinstance(o, dict) and (st < 300 or set(o) == {"error"}),
              "seed %d, %s: %s" % (seed, text, o))
    good = (b"POST /v1/invocations?wait=50 HTTP/1.1\r\nHost: x\r\nContent-Length: 33\r\n"
            b"Idempotency-Key: k\r\n\r\n" b'{"fn":"add","args":{"a":1,"b":2}}')
    for i in range(150):
        if i % 3 == 0:
            data = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 200)))
        else:
            b = bytearray(good)
            for _ in range(rnd.randrange(1, 6)):
                b[rnd.randrange(len(b))] = rnd.randrange(256)
            data = bytes(b)
        sk = socket.create_connection(("127.0.0.1", s.port), timeout=10 * SLOW)
        try:
            sk.sendall(data)
            sk.shutdown(socket.SHUT_WR)  # no more: the server answers or closes now
            got = b""
            while True:
                b = sk.recv(65536)
                if not b:
                    break
                got += b
        except ConnectionResetError:
            got = b""
        finally:
            sk.close()
        if got:
            st = parse_response(got)[0]
            check(st in (100, 200, 202, 400, 404, 405, 413, 414, 431),
                  "seed %d, %r: %r" % (seed, data, got[:200]))
    check(s.alive(), "the service is alive after random input (seed %d)" % seed)


def main():
    d = workdir("malformed")
    s = Service(d, [so("svc")], args=["--max-body", "4096", "--request-timeout", "700",
                                      "--idle-timeout", "1500", "--max-connections",
                                      "8"]).start()
    p = s.port

    # garbage: 400, the connection closes
    for junk in (b"\x00\x01\x02garbage\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                 b"GET /v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
                 b"POST /v1/invocations HTTP/1.1\r\nTransfer-Encoding: bogus\r\n\r\n",
                 b"\xff" * 2000 + b"\r\n\r\n", b"GET /v1/health HTTP/1.1\r\nBad Header\r\n\r\n"):
        msg, hdrs = error_of(raw_exchange(p, junk), 400)
        check(hdrs.get("connection") == "close", "closes: %s" % hdrs)

    # a body over the limit: 413 from its Content-Length, before the body
    raw = raw_exchange(p, b"POST /v1/invocations HTTP/1.1\r\nHost: x\r\n"
                          b"Content-Length: 100000000\r\n\r\n{")
    msg, _ = error_of(raw, 413)
    check("4096" in msg, "names the limit: %s" % msg)
    # the same sent in chunks: refused as it grows
    chunk = b"1000\r\n" + b" " * 4096 + b"\r\n"
    raw = raw_exchange(p, b"POST /v1/invocations HTTP/1.1\r\nHost: x\r\n"
                          b"Transfer-Encoding: chunked\r\n\r\n" + chunk + chunk)
    error_of(raw, 413)
    st, o = s.post("/v1/invocations", '{"fn":"echo","args":["' + "x" * 5000 + '"]}')
    check(st == 413 and "error" in o, "client 413: %s" % st)

    # headers and URLs too large
    raw = raw_exchange(p, b"GET /v1/health HTTP/1.1\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n")
    error_of(raw, 431)
    raw = raw_exchange(p, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n")
    error_of(raw, 414)

    # slowloris: a request that does not arrive in time gets 408 and the
    # connection closes; the service goes on meanwhile
    sk = socket.create_connection(("127.0.0.1", p), timeout=10 * SLOW)
    sk.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
    t0 = time.time()
    st, o = s.get("/v1/health")
    check(st == 200, "health while slow: %s" % st)
    got = b""
    try:
        while True:
            b = sk.recv(4096)
            if not b:
                break
            got += b
            sk.sendall(b"X")  # a byte now and then does not keep it alive
            time.sleep(0.05)
    except (ConnectionResetError, BrokenPipeError):
        pass
    sk.close()
    error_of(got, 408)
    check(time.time() - t0 < 10 * SLOW, "closed within its timeout")
    # an idle kept-alive connection closes without an answer
    sk = socket.create_connection(("127.0.0.1", p), timeout=10 * SLOW)
    check(sk.recv(10) == b"", "idle connection closed")
    sk.close()

    # keep-alive and pipelining: three requests in one write, three answers
    # in order on one connection
    reqs = (b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /v1/invocations?wait=5000 HTTP/1.1\r\nHost: x\r\nContent-Length: 33\r\n\r\n"
            b'{"fn":"add","args":{"a":1,"b":2}}'
            b"GET /v1/nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    raw = raw_exchange(p, reqs)
    answers = []
    while raw:
        st, hdrs, body = parse_response(raw)
        answers.append((st, json.loads(body)))
        head_len = raw.index(b"\r\n\r\n") + 4
        raw = raw[head_len + int(hdrs["content-length"]):]
    check([a[0] for a in answers] == [200, 200, 404], "pipelined: %s" % answers)
    check(answers[1][1]["output"] == {"result": 3}, "pipelined POST: %s" % answers)
    # HTTP/1.0 closes unless asked to keep alive
    raw = raw_exchange(p, b"GET /v1/health HTTP/1.0\r\n\r\n")
    check(parse_response(raw)[0] == 200, "1.0: %r" % raw)
    # Expect: 100-continue is answered before the body is sent
    sk = socket.create_connection(("127.0.0.1", p), timeout=10 * SLOW)
    body = b'{"fn":"add","args":[20,22]}'
    sk.sendall(b"POST /v1/invocations?wait=5000 HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
               b"Content-Length: %d\r\n\r\n" % len(body))
    cont = sk.recv(100)
    check(cont.startswith(b"HTTP/1.1 100 Continue"), "100: %r" % cont)
    sk.sendall(body)
    got = b""
    while b"\r\n\r\n" not in got or not got.rstrip().endswith(b"}"):
        got += sk.recv(4096)
    sk.close()
    st, _, b = parse_response(got)
    check(st == 200 and json.loads(b)["output"] == {"result": 42}, "after 100: %r" % got)

    # too many connections: the ninth gets 503 and goes (once the server
    # saw the earlier connections close: only the metrics' own is open)
    for _ in range(200):
        if "wfp_http_connections 1\n" in s.get("/metrics")[1]:
            break
        time.sleep(0.02)
    def hold():
        """A connection the server has taken and answered on, or None when
        it was refused (the metrics' connection may not be closed yet)."""
        h = socket.create_connection(("127.0.0.1", p), timeout=10 * SLOW)
        h.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        while not got.endswith(b"}"):
            b = h.recv(4096)
            if not b:
                break
            got += b
        if got.startswith(b"HTTP/1.1 200"):
            return h
        check(got.startswith(b"HTTP/1.1 503"), "held: %r" % got)
        h.close()
        time.sleep(0.05)
        return None

    held = []
    for _ in range(100):
        if len(held) == 8:
            break
        h = hold()
        if h:
            held.append(h)
    check(len(held) == 8, "eight connections held")
    raw = raw_exchange(p, b"")
    error_of(raw, 503)
    for h in held:
        h.close()
    time.sleep(0.2)

    random_inputs(s)

    # through all of it: the service goes on
    st, o = s.invoke("add", [1, 1], wait=5000)
    check(st == 200 and o["output"] == {"result": 2}, "after: %s %s" % (st, o))
    rc = s.stop()
    check(rc == 0, "exit %s: %s" % (rc, s.stderr()))
    passed("malformed")


if __name__ == "__main__":
    main()
