"""A member in Debian's Chromium: opens the agenda, opens a PDF, sees a Tischvorlage appear without reloading.

The real app (serve.make_wsgi) runs under werkzeug on 127.0.0.1; the phone is a member by a station with her
keyid and a lease for 127.0.0.1 (as captive.identify finds members). The clerk adds the late document through
the clerk's upload route while the page is open.
"""

from __future__ import annotations

import io
import re
import threading
import time
from pathlib import Path

import pytest

from appliance.documents import service as docs
from appliance.sessions import roster
from appliance.sessions import service as sessions
from appliance.store import open_db
from appliance.web import auth
from tests import pdf_samples
from tests.conftest import need, need_binary

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
PDF = pdf_samples.pdf(b"%" + b"x" * 4000)
MAC = "02:00:00:00:00:43"
PASSWORD = "browser-docs-pass-1"


def test_member_reads_agenda_pdf_and_sees_a_late_document(cfg):
    need_binary("chromium")
    need(Path(CHROMIUM).exists(), f"needs {CHROMIUM}")
    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    from appliance.helper.client import NullHelper
    from appliance.web import serve

    app = serve.make_wsgi(cfg, helper=NullHelper())
    db = open_db(cfg.db_path)
    s = sessions.create_session(db, body="Rat", title="Sitzung", day="2026-12-01", ssid=cfg.ssid)
    sessions.insert_members(db, s.id, roster.parse_members("Name;Rolle;Gremium\nAnna Schmidt;Mitglied;Rat\n"))
    sessions.set_active(db, s.id)
    anna = sessions.members(db, s.id)[0]
    item = docs.add_item(db, s.id, "Haushalt 2027", number="1")
    blobs = docs.blobs_for(cfg.state_dir)
    fid = docs.add_file(db, s.id, name="haushalt.pdf", stored=blobs.put_bytes(PDF), mime="application/pdf",
                        item_id=item, title="Haushaltsentwurf")
    db["stations"].insert({"mac": MAC, "interface": "wlan0", "keyid": anna.keyid, "connected": 1,
                           "connected_at": "2026-12-01T18:00:00Z"}, replace=True)
    cfg.leases_file.parent.mkdir(parents=True, exist_ok=True)
    cfg.leases_file.write_text(f"{int(time.time()) + 3600} {MAC} 127.0.0.1 phone *\n")
    auth.set_password(db, PASSWORD)
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_port}"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            ctx = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True, locale="de-DE")
            page = ctx.new_page()
            page.set_default_timeout(15_000)
            page.goto(f"{base}/portal")  # admits the member's device
            page.goto(f"{base}/")
            page.click("#docs-open")
            assert "Haushalt 2027" in page.inner_text("#agenda")
            page.click(f"#file-{fid} a.doc-title")
            frame_src = page.get_attribute("#doc-frame", "src")
            pdf = page.request.get(base + frame_src)
            assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf" and pdf.body() == PDF
            page.go_back()
            page.wait_for_selector("#agenda")

            # The clerk adds a Tischvorlage from her laptop while the member's page stays open.
            clerk = app.test_client()
            token = re.search(r'name="csrf_token" value="([^"]+)"', clerk.get("/clerk/login").get_data(True))[1]
            clerk.post("/clerk/login", data={"csrf_token": token, "password": PASSWORD})
            token = re.search(r'name="csrf_token" value="([^"]+)"',
                              clerk.get(f"/clerk/sessions/{s.id}/unterlagen").get_data(True))[1]
            r = clerk.post(f"/clerk/sessions/{s.id}/unterlagen/hochladen", content_type="multipart/form-data",
                           data={"csrf_token": token, "late": "1", "item": str(item),
                                 "files": [(io.BytesIO(PDF + b"late"), "Tischvorlage Änderungsantrag.pdf")]})
            assert r.status_code == 302
            late = next(f for f in docs.files(db, s.id) if f.late)
            page.wait_for_selector(f"#file-{late.id}", timeout=20_000)  # push channel, or the page's fallback
            assert "Neue Tischvorlage: Tischvorlage Änderungsantrag" in page.inner_text("#doc-notices")
            assert page.url.endswith("/unterlagen")  # no reload happened
            ctx.close()
            browser.close()
    finally:
        httpd.shutdown()
        db.conn.close()
