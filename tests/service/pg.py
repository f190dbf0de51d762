"""pg.py: a throwaway PostgreSQL cluster for the service's tests on a
PostgreSQL store: initdb and pg_ctl into a temporary directory, listening
on a Unix socket there only (no TCP, no system service), as an unprivileged
user when run as root (initdb refuses root). Used as a ctest fixture:

  pg.py start DIR   makes and starts the cluster in DIR, writes DIR/url
                    (exit 77, saying why, when PostgreSQL is not installed)
  pg.py stop DIR    stops it (immediate) and removes DIR

and by the tests: url() is the fixture's URL; new_db(name) makes a fresh
database in it and gives its URL."""

import glob
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time


def bindir():
    """The directory of initdb and pg_ctl, or None."""
    for d in [os.environ.get("WFP_PG_BINDIR", "")] + sorted(
            glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if d and os.path.exists(os.path.join(d, "initdb")) and \
                os.path.exists(os.path.join(d, "pg_ctl")):
            return d
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return os.path.dirname(on_path)
    return None


def _user():
    """Who runs the server: this user, or when root an unprivileged one."""
    if os.getuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            pass
    return None


def _run(cmd, user, **kw):
    if user:
        cmd = ["runuser", "-u", user.pw_name, "--"] + cmd
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw)


def start(d):
    b = bindir()
    if not b:
        print("skipped: PostgreSQL's initdb and pg_ctl were not found "
              "(Debian: apt-get install postgresql)")
        return 77
    user = _user()
    if os.getuid() == 0 and not user:
        print("skipped: running as root and no unprivileged user to run PostgreSQL as")
        return 77
    if os.path.exists(d):
        stop(d)
    os.makedirs(d)
    data, sock = os.path.join(d, "data"), os.path.join(d, "sock")
    os.makedirs(sock)
    if user:
        for p in (d, sock):
            os.chown(p, user.pw_uid, user.pw_gid)
    os.chmod(d, 0o755)
    r = _run([os.path.join(b, "initdb"), "-D", data, "-U", "wfp", "--auth=trust",
              "-E", "UTF8", "--no-locale", "--no-sync"], user, cwd=d)
    if r.returncode != 0:
        print("initdb failed:\n" + r.stdout.decode(errors="replace"))
        return 1
    # a test cluster: nothing is synced (the tests kill hosts, not the
    # database); enough connections for several hosts of 3-4 each
    opts = ("-k %s -c listen_addresses='' -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=100" % sock)
    r = _run([os.path.join(b, "pg_ctl"), "-D", data, "-l", os.path.join(d, "server.log"),
              "-o", opts, "-w", "-t", "60", "start"], user, cwd=d)
    if r.returncode != 0:
        log = ""
        try:
            with open(os.path.join(d, "server.log")) as f:
                log = f.read()
        except OSError:
            pass
        print("pg_ctl start failed:\n" + r.stdout.decode(errors="replace") + log)
        return 1
    url = "postgresql:///postgres?host=%s&user=wfp" % sock
    with open(os.path.join(d, "url"), "w") as f:
        f.write(url + "\n")
    print("PostgreSQL started: " + url)
    return 0


def stop(d):
    b = bindir()
    data = os.path.join(d, "data")
    if b and os.path.exists(os.path.join(data, "postmaster.pid")):
        _run([os.path.join(b, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop"],
             _user(), cwd=d)
    shutil.rmtree(d, ignore_errors=True)
    return 0


def fixture_dir():
    return os.environ.get("PGFIX", "")


def url():
    """The fixture's URL, or None when it is not running (skipped)."""
    try:
        with open(os.path.join(fixture_dir(), "url")) as f:
            return f.read().strip()
    except OSError:
        return None


def psql(u, sql):
    """Runs SQL through libpq's psql; its output (tuples only, unaligned)."""
    b = bindir()
    exe = os.path.join(b, "psql") if b and os.path.exists(os.path.join(b, "psql")) else "psql"
    r = subprocess.run([exe, "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-d", u,
                        "-c", sql], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode != 0:
        raise RuntimeError("psql: %s" % r.stderr.decode(errors="replace").strip())
    return r.stdout.decode()


def new_db(name):
    """A fresh database (dropped first if a failed run left it); its URL."""
    base = url()
    db = "%s_%d" % (name, os.getpid())
    psql(base, 'DROP DATABASE IF EXISTS "%s"' % db)
    psql(base, 'CREATE DATABASE "%s"' % db)
    return base.replace("postgresql:///postgres?", "postgresql:///%s?" % db)


def kill_all(services):
    """At exit, also after a failure: no host outlives its test (nor the
    cluster the fixture stops)."""
    for s in services:
        if s.proc and s.proc.poll() is None:
            try:
                s.proc.send_signal(signal.SIGCONT)
                s.proc.kill()
                s.proc.wait()
            except OSError:
                pass


def skip_without():
    """Exits 77 (skipped) when the fixture has no cluster."""
    if not url():
        print("skipped: no PostgreSQL cluster (see service.pg.start)")
        sys.exit(77)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("start", "stop"):
        print("usage: pg.py start|stop DIR", file=sys.stderr)
        sys.exit(2)
    sys.exit(start(sys.argv[2]) if sys.argv[1] == "start" else stop(sys.argv[2]))
