"""Issue 16 in Debian's Chromium at a phone's size: a member opens a 300-page, ~20 MB PDF in the box's viewer
(PDF.js from static/vendor/pdfjs). The first page is drawn on the canvas (its pixels are read back) after less
than 10 % of the file has left the box, and jumping to page 280 fetches only ranges: no whole-file answer ever.

The file is written here (no qpdf needed): 300 pages, each an incompressible 66 kB noise image and its page
number, a flat page tree, the xref table at the end. What PDF.js costs depends on where the page *dictionaries*
are: on opening it reads the last page (checkLastPage) and fetches every kid of the top-level /Pages node. So
the file keeps its page dictionaries together at the start ("dicts first", what `qpdf --object-streams=generate`
achieves for any file by packing them into object streams). Measured with PDF.js 6.5 (bytes read until page 1
is drawn, 64 KiB chunks): dictionaries first 186 kB, page-by-page packed by qpdf into object streams 142 kB; the
page-by-page file as it is (as many producers write) ~19.7 MB, the whole file; the same linearized by `qpdf
--linearize` ~19.7 MB as well (qpdf flattens the tree and puts each page dictionary in its page's part; PDF.js
uses the linearization only for the first page, and then reads the last). With the viewer's 16 KiB chunks the
packed file costs ~95 kB. With qpdf installed the test also runs "as imported": the page-by-page file uploaded
through the box's import (documents.bulk), which makes the viewer's copy (documents/viewcopy.py).

The bytes are counted on the server (what the viewer-data route sent) and checked against the browser's own
Content-Length sums. Screenshots: tests/artifacts/viewer-page-1-<case>.png, viewer-page-280-<case>.png.
Also: a browser too old for PDF.js keeps the download; a CCITT G4 scan is drawn by the JS fallback (no wasm).
"""

from __future__ import annotations

import io
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from appliance.documents import service as docs
from appliance.sessions import roster
from appliance.sessions import service as sessions
from appliance.store import open_db
from tests.conftest import need, need_binary, wait_js

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
MAC = "02:00:00:00:00:44"
PAGES = 300
IMAGE_W, IMAGE_H = 256, 88  # 67,584 bytes of RGB noise a page: 300 pages ~ 20 MB


def many_pages(pages: int = PAGES, seed: int = 16, *, dicts_first: bool = True) -> bytes:
    """A plain PDF of `pages` A4 pages, each with its own noise image (random bytes, so nothing compresses) and
    its number in Helvetica (a standard font, not embedded); a flat page tree, the xref table last. dicts_first:
    the page dictionaries together after the catalog, else each before its page's content and image."""
    import random

    rnd = random.Random(seed)
    objs: dict[int, bytes] = {}
    # 1 catalog, 2 page tree, 3 font; page i: 4+3i page, 5+3i content, 6+3i image
    kids = " ".join(f"{4 + 3 * i} 0 R" for i in range(pages))
    objs[1] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objs[2] = f"<< /Type /Pages /Count {pages} /Kids [{kids}] >>".encode()
    objs[3] = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
    for i in range(pages):
        page, content, image = 4 + 3 * i, 5 + 3 * i, 6 + 3 * i
        objs[page] = (f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents {content} 0 R"
                      f" /Resources << /Font << /F1 3 0 R >> /XObject << /Im{i} {image} 0 R >> >> >>").encode()
        text = (f"q 515 0 0 177 40 600 cm /Im{i} Do Q 0 0 0 rg 60 300 200 120 re f"
                f" BT /F1 48 Tf 60 480 Td (Seite {i + 1}) Tj ET").encode()
        objs[content] = b"<< /Length %d >>\nstream\n" % len(text) + text + b"\nendstream"
        noise = rnd.randbytes(IMAGE_W * IMAGE_H * 3)
        objs[image] = (b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceRGB"
                       b" /BitsPerComponent 8 /Length %d >>\nstream\n" % (IMAGE_W, IMAGE_H, len(noise))
                       + noise + b"\nendstream")
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    order = sorted(objs, key=lambda n: (n > 3 and (n - 4) % 3 != 0, n)) if dicts_first else sorted(objs)
    for n in order:
        offsets[n] = out.tell()
        out.write(b"%d 0 obj\n" % n + objs[n] + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1))
    for n in sorted(objs):
        out.write(b"%010d 00000 n \n" % offsets[n])
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref))
    return out.getvalue()


class Counting:
    """WSGI middleware: the body bytes each viewer-data response sent, as the server counted them."""

    def __init__(self, app, prefix: str) -> None:
        self.app, self.prefix, self.sent = app, prefix, []

    def __call__(self, environ, start_response):
        if not environ.get("PATH_INFO", "").startswith(self.prefix):
            return self.app(environ, start_response)
        seen = {}

        def start(status, headers, exc_info=None):
            seen["status"] = int(status.split()[0])
            return start_response(status, headers, exc_info)

        def body():
            n = 0
            result = self.app(environ, start)
            try:
                for chunk in result:
                    n += len(chunk)
                    yield chunk
            finally:
                if hasattr(result, "close"):
                    result.close()
                self.sent.append((seen.get("status"), environ.get("HTTP_RANGE"), n))
        return body()


def canvas_ink(page) -> dict:
    return page.evaluate("""() => {
        const c = document.getElementById("pdf-canvas");
        if (!c || !c.width) return {w: 0, h: 0, ink: 0, page: null};
        const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
        let ink = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i] < 230 || d[i + 1] < 230 || d[i + 2] < 230) ink++;
        return {w: c.width, h: c.height, ink, page: c.dataset.page || null, label: c.getAttribute("aria-label")};
    }""")


def wait_for_page(page, n: int, deadline_s: float = 30) -> dict:
    """Poll until page n is drawn with visible ink (non-white pixels), or fail at the deadline."""
    end = time.monotonic() + deadline_s
    while True:
        got = canvas_ink(page)
        if got["page"] == str(n) and got["ink"] > got["w"] * got["h"] * 0.05:
            return got
        assert time.monotonic() < end, f"page {n} not drawn within {deadline_s} s: {got}"
        page.wait_for_timeout(100)


def _box(cfg, data: bytes, imported: bool = False):
    """The real app under werkzeug on 127.0.0.1 with one non-public PDF; the phone is Anna's (station + lease).
    imported: through the clerk's import path (the viewer's copy made); else stored as it is."""
    from werkzeug.serving import make_server

    from appliance.helper.client import NullHelper
    from appliance.web import serve

    db = open_db(cfg.db_path)
    s = sessions.create_session(db, body="Rat", title="Sitzung", day="2026-12-01", ssid=cfg.ssid)
    sessions.insert_members(db, s.id, roster.parse_members("Name;Rolle;Gremium\nAnna Schmidt;Mitglied;Rat\n"))
    sessions.set_active(db, s.id)
    anna = sessions.members(db, s.id)[0]
    item = docs.add_item(db, s.id, "Bebauungsplan", number="1")
    blobs = docs.blobs_for(cfg.state_dir)
    if imported:
        from appliance.documents import bulk

        bulk.import_entries(db, blobs, s.id, [bulk.Entry(None, "bplan.pdf", len(data), lambda: io.BytesIO(data))],
                            item_id=item, public=False)
        (f,) = docs.files(db, s.id)
        assert f.view_sha256 and f.view_sha256 != f.sha256  # the viewer reads the copy, not these bytes
        fid = f.id
    else:
        fid = docs.add_file(db, s.id, name="bplan.pdf", stored=blobs.put_bytes(data), mime="application/pdf",
                            item_id=item, title="Bebauungsplan mit Anlagen", public=False)
    db["stations"].insert({"mac": MAC, "interface": "wlan0", "keyid": anna.keyid, "connected": 1,
                           "connected_at": "2026-12-01T18:00:00Z"}, replace=True)
    cfg.leases_file.parent.mkdir(parents=True, exist_ok=True)
    cfg.leases_file.write_text(f"{int(time.time()) + 3600} {MAC} 127.0.0.1 phone *\n")
    data_path = f"/unterlagen/{fid}/pdf"
    app = Counting(serve.make_wsgi(cfg, helper=NullHelper()), data_path)
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_port}"
    return db, fid, app, httpd, base, data_path


@pytest.mark.parametrize("case", ["dicts-first", "as-imported"])
def test_member_reads_a_300_page_pdf_by_ranges(cfg, tmp_path, artifacts, case):
    need_binary("chromium")
    need(Path(CHROMIUM).exists(), f"needs {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    if case == "dicts-first":
        data = many_pages()
    else:
        if shutil.which("qpdf") is None:
            pytest.skip("needs Debian's qpdf")
        data = many_pages(dicts_first=False)  # as a producer wrote it; the import makes the viewer's copy
    assert 18_000_000 < len(data) < 23_000_000
    db, fid, app, httpd, base, data_path = _box(cfg, data, imported=case == "as-imported")
    seen: list[tuple[int, str | None, int]] = []  # (status, Range asked, Content-Length) as the browser saw them
    problems: list[str] = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            ctx = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True,
                                      device_scale_factor=2, locale="de-DE")
            page = ctx.new_page()
            page.set_default_timeout(20_000)
            page.on("response", lambda r: seen.append((r.status, r.request.headers.get("range"),
                                                       int(r.headers.get("content-length", 0))))
                    if r.url.split("?")[0].endswith(data_path) else None)
            page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text
                    or (m.type == "error" and not m.text.startswith("Failed to load resource")) else None)
            page.on("response", lambda r: problems.append(f"{r.status} {r.url}")
                    if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(f"{base}/portal")  # admits the member's device
            page.goto(f"{base}/unterlagen/ansehen/{fid}")
            first = wait_for_page(page, 1)
            assert first["label"] == f"Seite 1 von {PAGES}"
            assert 600 <= first["w"] <= 720  # fits the 360 px screen at 2 device pixels per px
            page.screenshot(path=str(artifacts / f"viewer-page-1-{case}.png"))
            # every range the browser has seen answered is counted by the server, and the other way round
            # (page.wait_for_timeout lets Playwright deliver the browser's response events meanwhile)
            end = time.monotonic() + 10
            while not (app.sent and len(seen) == len(app.sent)):
                assert time.monotonic() < end, (app.sent, seen)
                page.wait_for_timeout(50)
            sent_first = sum(n for _, _, n in app.sent)
            assert sent_first == sum(n for *_, n in seen), (app.sent, seen)
            assert sent_first < len(data) // 10, f"{sent_first} of {len(data)} bytes for page 1 ({app.sent})"
            assert app.sent and all(st == 206 and rng for st, rng, _ in app.sent), app.sent
            if case == "as-imported" and shutil.which("node"):  # bench/hall replays what this browser asked for
                from bench import hall

                copy = docs.blobs_for(cfg.state_dir).path(docs.viewer_copy(docs.get_file(db, fid)))
                _pages, plan = hall.pdfjs_plan(copy, hall.CHUNK)
                asked = sorted(rng for _, rng, _ in app.sent)
                assert asked == sorted([f"bytes=0-{hall.CHUNK - 1}"] + [f"bytes={a}-{b}" for r in plan for a, b in r])

            # Jump to page 280 with the page number field: only ranges again.
            before = len(app.sent)
            page.fill("#pdf-page", "280")
            page.press("#pdf-page", "Enter")
            late = wait_for_page(page, 280)
            assert late["label"] == f"Seite 280 von {PAGES}"
            page.screenshot(path=str(artifacts / f"viewer-page-280-{case}.png"))
            jumped = app.sent[before:]
            assert jumped and all(st == 206 and rng and rng.startswith("bytes=") for st, rng, _ in jumped), jumped
            assert sum(n for *_, n in app.sent) < len(data) // 5
            assert not [x for x in seen if x[0] == 200], "a whole-file answer"

            # Keyboard: the page area turns pages with the arrow keys; the buttons have names.
            page.focus("#pdf-scroll")
            page.keyboard.press("ArrowLeft")
            assert wait_for_page(page, 279)["label"] == f"Seite 279 von {PAGES}"
            assert page.get_attribute("#pdf-next", "aria-label") == "Nächste Seite"
            assert not problems, problems
            ctx.close()
            browser.close()
    finally:
        httpd.shutdown()
        db.conn.close()
    print(f"{case}: PDF of {len(data)} bytes: page 1 after {sent_first} bytes"
          f" ({100 * sent_first / len(data):.1f} %), {len(app.sent)} ranges in all", file=os.sys.stderr)


def test_a_browser_too_old_for_pdfjs_keeps_the_download(cfg):
    """A mini-browser without what PDF.js 6 needs (here: no Promise.withResolvers, as in WebViews before Chrome 119
    or iOS 17.4) gets the notice and the download link, nothing broken and no whole-file fetch by the viewer."""
    need_binary("chromium")
    need(Path(CHROMIUM).exists(), f"needs {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    db, fid, app, httpd, base, data_path = _box(cfg, many_pages(12))
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            ctx = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True, locale="de-DE")
            ctx.add_init_script("delete Promise.withResolvers")
            page = ctx.new_page()
            page.set_default_timeout(20_000)
            page.goto(f"{base}/portal")
            page.goto(f"{base}/unterlagen/ansehen/{fid}")
            wait_js(page, "document.getElementById('pdf-status').textContent.includes('nicht anzeigen')")
            assert page.is_visible("#doc-download") and not page.is_visible("#pdf-canvas")
            assert not page.is_visible("#pdf-next")
            assert all(st == 206 for st, _, _ in app.sent), app.sent
            ctx.close()
            browser.close()
    finally:
        httpd.shutdown()
        db.conn.close()


def ccitt_scan_pdf() -> bytes:
    """One page with a CCITT G4 image, as scanners write them (Pillow's libtiff encodes it; the raw strip goes
    into the PDF). PDF.js 6 decodes CCITT and JBIG2 in WebAssembly or, as here, in its plain-JS fallback."""
    from PIL import Image, ImageDraw

    w, h = 400, 150  # one TIFF strip
    img = Image.new("1", (w, h), 1)
    ImageDraw.Draw(img).rectangle((40, 30, 360, 120), fill=0)
    buf = io.BytesIO()
    img.save(buf, "TIFF", compression="group4")
    tif = Image.open(io.BytesIO(buf.getvalue()))
    (offset,), (count,) = tif.tag_v2[273], tif.tag_v2[279]
    g4 = buf.getvalue()[offset:offset + count]
    black_is_1 = "true" if tif.tag_v2.get(262, 0) == 1 else "false"  # TIFF photometric: 1 = BlackIsZero
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Count 1 /Kids [3 0 R] >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 400 150] /Contents 4 0 R"
            b" /Resources << /XObject << /Scan 5 0 R >> >> >>"]
    content = b"q 400 0 0 150 0 0 cm /Scan Do Q"
    objs.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
    objs.append(b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray"
                b" /BitsPerComponent 1 /Filter /CCITTFaxDecode /DecodeParms << /K -1 /Columns %d /Rows %d"
                b" /BlackIs1 %s >> /Length %d >>\nstream\n" % (w, h, w, h, black_is_1.encode(), len(g4))
                + g4 + b"\nendstream")
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n")
    offsets = []
    for n, body in enumerate(objs, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % n + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1))
    out.write(b"".join(b"%010d 00000 n \n" % o for o in offsets))
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref))
    return out.getvalue()


def test_a_scanned_page_is_drawn_without_webassembly(cfg):
    """The CSP allows no WebAssembly: a CCITT G4 scan decodes in PDF.js's vendored JS fallback, loaded from the box."""
    need_binary("chromium")
    need(Path(CHROMIUM).exists(), f"needs {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    db, fid, app, httpd, base, data_path = _box(cfg, ccitt_scan_pdf())
    fetched: list[str] = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            ctx = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True, locale="de-DE")
            ctx.on("request", lambda r: fetched.append(r.url))
            page = ctx.new_page()
            page.set_default_timeout(20_000)
            page.goto(f"{base}/portal")
            page.goto(f"{base}/unterlagen/ansehen/{fid}")
            drawn = wait_for_page(page, 1)
            # the black box fills 60 % of the image; blank (undecoded) would be white or nothing
            assert 0.4 < drawn["ink"] / (drawn["w"] * drawn["h"]) < 0.6, drawn
            centre, corner = page.evaluate("""() => {
                const c = document.getElementById("pdf-canvas"), g = c.getContext("2d");
                const at = (x, y) => Array.from(g.getImageData(x, y, 1, 1).data.slice(0, 3));
                return [at(c.width / 2, c.height / 2), at(4, 4)];
            }""")
            assert max(centre) < 60 and min(corner) > 200, (centre, corner)  # black box on white, not inverted
            assert any(u.endswith("/static/vendor/pdfjs/wasm/jbig2_nowasm_fallback.js") for u in fetched), fetched
            assert not [u for u in fetched if u.endswith(".wasm")]
            ctx.close()
            browser.close()
    finally:
        httpd.shutdown()
        db.conn.close()
