"""Fetching documents ahead before the session (issue 16), in Debian's Chromium at a phone's size: Anna opts in on
the agenda page („Unterlagen vorab auf dieses Gerät laden“); the viewer copies of the three PDFs she may read land
in IndexedDB (compared by SHA-256 with the box's blobs); opening one in the viewer draws page 1 with not a single
request to the viewer-data route. Then, with one fetch held in flight, the chair moves the room to an item
(usecases.speakers.set_current_item): the push event `agenda.current` stops the device — the fetch under way
finishes, no new one starts — and the box would answer 409 anyway. axe-core finds nothing on the page with the
control. Screenshot: tests/artifacts/prefetch-agenda.png.

The served app and the member's phone as in tests/test_viewer_browser.py (station + lease for 127.0.0.1).
"""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import pytest

from appliance.documents import service as docs
from appliance.push import hub as hub_mod
from appliance.rules.viewer import Viewer
from appliance.sessions import roster
from appliance.sessions import service as sessions
from appliance.store import open_db
from appliance.usecases import speakers as acts
from tests.conftest import need, need_binary, poll, wait_js
from tests.test_a11y import AXE, AXE_RUN, TAGS
from tests.test_viewer_browser import ARGS, CHROMIUM, MAC, many_pages, wait_for_page

pytestmark = pytest.mark.browser

STORED = """async () => {
  const db = await new Promise((ok, bad) => { const r = indexedDB.open("sitzungsbox-unterlagen");
                                              r.onsuccess = () => ok(r.result); r.onerror = () => bad(r.error); });
  if (!db.objectStoreNames.contains("viewer-copies")) return {};
  const recs = await new Promise((ok, bad) => {
    const r = db.transaction("viewer-copies").objectStore("viewer-copies").getAll();
    r.onsuccess = () => ok(r.result); r.onerror = () => bad(r.error); });
  db.close();
  const out = {};
  for (const rec of recs) {
    const d = new Uint8Array(await crypto.subtle.digest("SHA-256", rec.bytes));
    out[rec.id] = {etag: rec.etag, length: rec.bytes.byteLength,
                   sha256: Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("")};
  }
  return out;
}"""


@pytest.fixture
def box(cfg):
    need_binary("chromium")
    need(Path(CHROMIUM).exists(), f"needs {CHROMIUM}")
    need(AXE.exists(), "needs node_modules/axe-core (make test: npm ci --ignore-scripts)")
    from werkzeug.serving import make_server

    from appliance.helper.client import NullHelper
    from appliance.web import serve

    db = open_db(cfg.db_path)
    s = sessions.create_session(db, body="Rat", title="Sitzung", day="2026-12-01", ssid=cfg.ssid)
    sessions.insert_members(db, s.id, roster.parse_members("Name;Rolle;Gremium\nAnna Schmidt;Mitglied;Rat\n"))
    sessions.set_active(db, s.id)
    anna = sessions.members(db, s.id)[0]
    blobs = docs.blobs_for(cfg.state_dir)
    one = docs.add_item(db, s.id, "Bebauungsplan", number="1")
    two = docs.add_item(db, s.id, "Personal", number="2", public=False)
    files = []
    for n, (item, public) in enumerate(((one, True), (one, False), (two, True))):
        data = many_pages(4 + n, seed=n)
        files.append(docs.add_file(db, s.id, name=f"vorlage-{n}.pdf", stored=blobs.put_bytes(data),
                                   mime="application/pdf", item_id=item, title=f"Vorlage {n}", public=public))
    db["stations"].insert({"mac": MAC, "interface": "wlan0", "keyid": anna.keyid, "connected": 1,
                           "connected_at": "2026-12-01T18:00:00Z"}, replace=True)
    cfg.leases_file.parent.mkdir(parents=True, exist_ok=True)
    cfg.leases_file.write_text(f"{int(time.time()) + 3600} {MAC} 127.0.0.1 phone *\n")
    httpd = make_server("127.0.0.1", 0, serve.make_wsgi(cfg, helper=NullHelper()), threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, name="sbx-prefetch-web", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}", db, s, files, one, blobs
    finally:
        hub_mod.stop_all()
        httpd.shutdown()
        thread.join(timeout=10)
        db.conn.close()


def test_opt_in_fetches_ahead_the_viewer_opens_from_the_device_and_the_start_stops_it(box, artifacts):
    from playwright.sync_api import sync_playwright

    base, db, s, files, first_item, blobs = box
    expected = {str(fid): hashlib.sha256(blobs.path(docs.viewer_copy(docs.get_file(db, fid))).read_bytes()).hexdigest()
                for fid in files}
    data_requests: list[str] = []  # every request to a viewer-data route, as the browser made it
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            ctx = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True,
                                      locale="de-DE")
            ctx.add_init_script(path=str(AXE))
            page = ctx.new_page()
            page.set_default_timeout(20_000)
            page.on("request", lambda r: data_requests.append(r.url)
                    if "/pdf" in r.url and "/unterlagen/" in r.url else None)
            page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text
                    or (m.type == "error" and not m.text.startswith("Failed to load resource")) else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(f"{base}/portal")  # admits Anna's phone
            page.goto(f"{base}/unterlagen")
            wait_js(page, "() => !document.getElementById('prefetch').hidden")
            wait_js(page, "() => document.body.getAttribute('data-live') === 'open'")
            assert page.is_visible("#prefetch-on") and not page.is_checked("#prefetch-on")
            assert not data_requests  # nothing is fetched before the member opts in

            # Opt in: the three files arrive, one at a time, into IndexedDB.
            page.check("#prefetch-on")
            wait_js(page, "() => document.getElementById('prefetch').dataset.state === 'done'", timeout=30)
            stored = page.evaluate(STORED)
            assert {k: v["sha256"] for k, v in stored.items()} == expected
            assert len(data_requests) == 3 and all(u.endswith("?vorab=1") for u in data_requests), data_requests
            status = page.inner_text("#prefetch-status")
            assert status.startswith("Auf diesem Gerät: 3 von 3 Dateien,") and "Fertig." in status, status
            assert page.evaluate("() => localStorage.getItem('sitzungsbox.vorab')") == "1"
            page.screenshot(path=str(artifacts / "prefetch-agenda.png"), full_page=True)
            found = page.evaluate(AXE_RUN, TAGS)
            assert not found, found

            # The viewer: page 1 from the device, not one request to the viewer-data route.
            before = len(data_requests)
            page.goto(f"{base}/unterlagen/ansehen/{files[1]}")
            drawn = wait_for_page(page, 1)
            assert drawn["label"] == "Seite 1 von 5"
            assert page.get_attribute("#pdf-viewer", "data-source") == "device"
            assert len(data_requests) == before, data_requests[before:]
            assert wait_for_page(page, 1)  # still nothing asked
            page.click("#pdf-next")
            assert wait_for_page(page, 2)["label"] == "Seite 2 von 5"
            assert len(data_requests) == before

            # Back on the agenda: a reload keeps the choice and fetches nothing already here.
            page.goto(f"{base}/unterlagen")
            wait_js(page, "() => document.getElementById('prefetch').dataset.state === 'done'")
            assert page.is_checked("#prefetch-on") and len(data_requests) == before

            # Delete, then opt in again with the first fetch held in flight; the chair starts the session.
            page.click("#prefetch-delete")
            wait_js(page, "() => document.getElementById('prefetch').dataset.state === 'deleted'")
            assert page.evaluate(STORED) == {} and not page.is_checked("#prefetch-on")
            # The box answers the first fetch at once (it is under way before the start); its response is held
            # in the browser until the chair has started the session.
            held = []
            page.route(lambda url: url.endswith("/pdf?vorab=1"), lambda route: held.append((route, route.fetch())))
            page.evaluate("() => document.addEventListener('sitzungsbox:agenda.current',"
                          " () => { document.body.dataset.agendaCurrent = 'seen'; })")
            wait_js(page, "() => document.body.getAttribute('data-live') === 'open'")
            page.check("#prefetch-on")
            poll(lambda: page.wait_for_timeout(50) or held, 10, "the first fetch ahead")
            asked = len(data_requests)
            assert held[0][1].status == 200
            assert acts.set_current_item(db, Viewer("clerk", s.id), s.id, first_item)
            wait_js(page, "() => document.body.dataset.agendaCurrent === 'seen'")
            route, response = held[0]
            route.fulfill(response=response)  # the fetch under way may finish ...
            wait_js(page, "() => document.getElementById('prefetch').dataset.state === 'stopped'", timeout=20)
            assert len(held) == 1 and len(data_requests) == asked  # ... and no new one started
            assert "Die Sitzung hat begonnen" in page.inner_text("#prefetch-status")
            assert list(page.evaluate(STORED)) == [str(files[0])]  # the one that was under way
            # A reload after the start: the list says not allowed, nothing is fetched.
            page.goto(f"{base}/unterlagen")
            wait_js(page, "() => document.getElementById('prefetch').dataset.state === 'refused'")
            assert len(data_requests) == asked
            assert "Die Sitzung hat begonnen" in page.inner_text("#prefetch-status")
            assert not problems, problems
            ctx.close()
        finally:
            browser.close()



def test_what_does_not_fit_the_storage_budget_is_skipped(box):
    """navigator.storage.estimate() leaves room for the first file only: the others are skipped, not fetched."""
    from playwright.sync_api import sync_playwright

    base, db, s, files, first_item, blobs = box
    sizes = [blobs.path(docs.viewer_copy(docs.get_file(db, fid))).stat().st_size for fid in files]
    room = sizes[0] + min(sizes[1:]) // 2
    data_requests: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            ctx = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True, locale="de-DE")
            ctx.add_init_script(f"navigator.storage.estimate = async () => ({{quota: {room}, usage: 0}});")
            page = ctx.new_page()
            page.on("request", lambda r: data_requests.append(r.url) if "/pdf" in r.url else None)
            page.goto(f"{base}/portal")
            page.goto(f"{base}/unterlagen")
            wait_js(page, "() => !document.getElementById('prefetch').hidden")
            page.check("#prefetch-on")
            wait_js(page, "() => document.getElementById('prefetch').dataset.state === 'done'", timeout=30)
            assert list(page.evaluate(STORED)) == [str(files[0])]
            assert len(data_requests) == 1, data_requests
            status = page.inner_text("#prefetch-status")
            assert "1 von 3 Dateien" in status and "2 Dateien passten nicht" in status, status
            ctx.close()
        finally:
            browser.close()
