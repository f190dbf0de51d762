"""svc.py: what the service's tests share: starting the real wfp-host
serve in a temporary directory on port 0 (its 'listening on' line gives
the port), a small HTTP client, stopping with a signal or SIGKILL, and the
compiled test programs. Not a test itself.

Environment: WFP_HOST (the wfp-host binary), SO (the directory of the
test programs' .so files), WORK (a scratch directory)."""

import http.client
import json
import os
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

HOST = os.environ.get("WFP_HOST", "wfp-host")
SO = os.environ.get("SO", ".")
WORK = os.environ.get("WORK", tempfile.gettempdir())
# a sanitized build is slower: waits scale
SLOW = 4 if os.environ.get("ASAN_OPTIONS") or os.environ.get("TSAN_OPTIONS") else 1


def so(name):
    return os.path.join(SO, name + ".so")


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


_dirs = []


def workdir(name):
    """A directory of the test's own; removed when the test passes
    (passed()), kept to look at when it fails."""
    os.makedirs(WORK, exist_ok=True)
    d = tempfile.mkdtemp(prefix=name + ".", dir=WORK)
    _dirs.append(d)
    return d


def passed(what):
    import shutil
    for d in _dirs:
        shutil.rmtree(d, ignore_errors=True)
    print(what + ": ok")


class Service:
    """One wfp-host serve process at a time on one store."""

    def __init__(self, dirname, sos, args=(), store="wfp-store.db"):
        self.dir = dirname
        self.sos = list(sos)
        self.args = list(args)
        self.store = os.path.join(dirname, store)
        self.proc = None
        self.port = None
        self.starts = 0

    def start(self, extra=(), expect_fail=False):
        self.starts += 1
        self.errpath = os.path.join(self.dir, "stderr.%d.txt" % self.starts)
        err = open(self.errpath, "w")
        cmd = [HOST, "serve", "--listen", "127.0.0.1:0", "--store", self.store,
               "--workers", "2"] + self.args + list(extra) + self.sos
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, cwd=self.dir)
        err.close()
        line = b""
        deadline = time.time() + 30 * SLOW
        while not line.endswith(b"\n"):
            left = deadline - time.time()
            if left <= 0:
                self.proc.kill()
                fail("no 'listening on' line within %ds: %s" % (30 * SLOW, self.stderr()))
            r, _, _ = select.select([self.proc.stdout], [], [], left)
            if r:
                ch = os.read(self.proc.stdout.fileno(), 1)
                if not ch:
                    break
                line += ch
        if expect_fail:
            self.proc.wait(timeout=30 * SLOW)
            return self.proc.returncode
        text = line.decode()
        check(text.startswith("listening on http://127.0.0.1:"),
              "unexpected first line %r: %s" % (text, self.stderr()))
        self.port = int(text.strip().rsplit(":", 1)[1])
        return self

    def stderr(self):
        try:
            with open(self.errpath) as f:
                return f.read()
        except OSError:
            return ""

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc.stdout.close()

    def stop(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=30 * SLOW)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            fail("the service did not stop on %s" % sig)
        self.proc.stdout.close()
        return rc

    def alive(self):
        return self.proc and self.proc.poll() is None

    def request(self, method, path, body=None, headers=None, timeout=30):
        """(status, parsed JSON or text)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout * SLOW)
        try:
            data = body if body is None or isinstance(body, (bytes, str)) else json.dumps(body)
            conn.request(method, path, body=data, headers=headers or {})
            r = conn.getresponse()
            raw = r.read()
            ctype = r.getheader("Content-Type", "")
            if ctype.startswith("application/json"):
                return r.status, json.loads(raw)
            return r.status, raw.decode()
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body, **kw):
        return self.request("POST", path, body=body, **kw)

    def invoke(this, fn, args=None, wait=None, headers=None, **more):
        """POST /v1/invocations; more: "self", "program" ("this": a member
        may be called self)."""
        body = {"fn": fn}
        if args is not None:
            body["args"] = args
        body.update(more)
        path = "/v1/invocations" + ("?wait=%d" % wait if wait is not None else "")
        return this.post(path, body, headers=headers)

    def wait_done(self, ids, timeout=60):
        """Polls until every id ended; returns {id: object}."""
        out = {}
        deadline = time.time() + timeout * SLOW
        pending = list(ids)
        while pending:
            still = []
            for i in pending:
                st, o = self.get("/v1/invocations/%s?wait=2000" % i)
                check(st == 200, "GET %s: %s %s" % (i, st, o))
                if o["status"] == "pending":
                    still.append(i)
                else:
                    out[i] = o
            pending = still
            if pending and time.time() > deadline:
                fail("%d invocations still pending after %ds (e.g. %s)" %
                     (len(pending), timeout * SLOW, pending[0]))
        return out

    def db(self):
        """The store, read directly (WAL: fine beside a running service)."""
        return sqlite3.connect("file:%s?mode=ro" % self.store, uri=True, timeout=30)


def raw_exchange(port, data, timeout=5, read_all=True):
    """Sends bytes on a fresh connection; returns what came back."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout * SLOW)
    try:
        if data:
            s.sendall(data)
        chunks = []
        while True:
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            if not b:
                break
            chunks.append(b)
            if not read_all:
                break
        return b"".join(chunks)
    finally:
        s.close()


def parse_response(raw):
    """(status, headers dict, body bytes) of the first response in raw."""
    head, _, rest = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    n = int(hdrs.get("content-length", "0"))
    return status, hdrs, rest[:n]
