"""page.py: the status page (GET /) in a real browser: headless Chromium
loads it from the running service, its DOM shows the counts, a trapped
invocation's message (escaped, as text) and a live invocation; and a
screenshot of it is a PNG of the window's size in which the trap message's
red is drawn. Exits 77 (skipped) when Chromium is not installed."""

import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

from svc import SLOW, Service, check, fail, passed, so, workdir

W, H = 1100, 800
RED = (0xCF, 0x22, 0x2E)  # .trap-message in status.c


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


def browse(exe, url, extra):
    profile = tempfile.mkdtemp(prefix="chromium.", dir=os.environ.get("WORK"))
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--disable-dev-shm-usage", "--user-data-dir=" + profile,
           "--window-size=%d,%d" % (W, H)] + extra + [url]
    try:
        r = subprocess.run(cmd, capture_output=True, timeout=120 * SLOW)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    if r.returncode != 0:
        fail("chromium exited %d: %s" % (r.returncode, r.stderr.decode(errors="replace")[-2000:]))
    return r.stdout.decode(errors="replace")


def png_pixels(path):
    """(width, height, rows of RGB tuples) of an 8-bit RGB or RGBA PNG."""
    data = open(path, "rb").read()
    check(data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG")
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    w, h, depth, ctype, _, _, interlace = ihdr
    check(depth == 8 and ctype in (2, 6) and interlace == 0, "PNG kind %s" % (ihdr,))
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append([tuple(line[x * bpp:x * bpp + 3]) for x in range(w)])
        prev = line
    return w, h, rows


def main():
    exe = chromium()
    if not exe:
        print("skipped: Chromium is not installed (Debian: apt-get install chromium)")
        sys.exit(77)
    d = workdir("page")
    s = Service(d, [so("svc")]).start()
    st, trapped = s.invoke("boom", wait=10000)
    check(trapped["status"] == "trapped", "boom: %s" % trapped)
    st, ok = s.invoke("add", [1, 2], wait=10000)
    st, live = s.invoke("nap", [600000])
    url = "http://127.0.0.1:%d/" % s.port

    dom = browse(exe, url, ["--dump-dom"])
    check("<h1>wfp service</h1>" in dom, "the page: %s" % dom[:500])
    msg = "boom: &lt;b&gt;it went wrong&lt;/b&gt; &amp; more"
    m = re.search(r'<table id="traps">.*?</table>', dom, re.S)
    check(m and ('<td class="trap-message">%s</td>' % msg) in m.group(0) and
          trapped["id"] in m.group(0), "the trap in the traps table: %s" % (m and m.group(0)))
    check("<b>it went wrong</b>" not in dom, "the message is text, not markup")
    check('id="total-trapped">1<' in dom and 'id="total-done">1<' in dom and
          'id="total-pending">1<' in dom, "totals: %s" % re.findall(r'id="total-\w+">\d+<', dom))
    m = re.search(r'<table id="live-invocations">.*?</table>', dom, re.S)
    check(m and live["id"] in m.group(0), "the live invocation is listed")
    m = re.search(r'<table id="functions">.*?</table>', dom, re.S)
    check(m and "<code>boom</code>" in m.group(0), "per function")

    shot = os.path.join(d, "page.png")
    browse(exe, url, ["--screenshot=" + shot, "--hide-scrollbars"])
    w, h, rows = png_pixels(shot)
    check((w, h) == (W, H), "screenshot size %dx%d" % (w, h))
    colors = {}
    for r in rows:
        for p in r:
            colors[p] = colors.get(p, 0) + 1
    bg = max(colors, key=colors.get)
    check(colors[bg] < w * h * 0.97, "the screenshot is not blank")
    near = lambda p, q: all(abs(x - y) <= 40 for x, y in zip(p, q))
    red = sum(n for p, n in colors.items() if near(p, RED))
    check(red >= 20, "the trap message's red is drawn (%d pixels)" % red)
    s.stop()
    passed("page (%d colors, %d red pixels)" % (len(colors), red))


if __name__ == "__main__":
    main()
