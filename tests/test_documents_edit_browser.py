"""Issue 12 in Debian's Chromium: a clerk renames, replaces, reorders and deletes documents on her laptop; a
member's phone, open on the agenda the whole time, shows the new title, „neue Fassung“ (she had opened the old
version), the new order and the deleted file gone — live through the push channel (documents.changed makes the
page fetch itself again), else after a reload. Screenshots: tests/artifacts/docedit-*.png.

The real app (serve.make_wsgi) runs under werkzeug on 127.0.0.1; the phone is a member by a station with her keyid
and a lease for 127.0.0.1 (as captive.identify finds members), as in tests/test_documents_browser.py.
"""

from __future__ import annotations

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
from tests.conftest import need, need_binary, wait_js

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
PDF = pdf_samples.pdf(b"%" + b"x" * 4000)
PDF_ANLAGE = pdf_samples.pdf(b"%" + b"y" * 3000)
PDF_NEU = pdf_samples.pdf(b"%" + b"z" * 5000)
MAC = "02:00:00:00:00:44"
PASSWORD = "browser-docedit-pass-1"


def test_clerk_corrects_documents_and_the_members_phone_follows(cfg, tmp_path, artifacts):
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
    docs.add_item(db, s.id, "Eröffnung", number="1")
    item = docs.add_item(db, s.id, "Haushalt 2027", number="2")
    blobs = docs.blobs_for(cfg.state_dir)
    fid = docs.add_file(db, s.id, name="haushalt.pdf", stored=blobs.put_bytes(PDF), mime="application/pdf",
                        item_id=item, title="Haushaltsentwurf")
    anlage = docs.add_file(db, s.id, name="anlage.pdf", stored=blobs.put_bytes(PDF_ANLAGE), mime="application/pdf",
                           item_id=item, title="Anlage Stellenplan")
    db["stations"].insert({"mac": MAC, "interface": "wlan0", "keyid": anna.keyid, "connected": 1,
                           "connected_at": "2026-12-01T18:00:00Z"}, replace=True)
    cfg.leases_file.parent.mkdir(parents=True, exist_ok=True)
    cfg.leases_file.write_text(f"{int(time.time()) + 3600} {MAC} 127.0.0.1 phone *\n")
    auth.set_password(db, PASSWORD)
    new_pdf = tmp_path / "Haushaltsentwurf v2.pdf"
    new_pdf.write_bytes(PDF_NEU)
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_port}"
    how: list[str] = []  # per change: "live" or "reload"

    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            phone_ctx = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True, locale="de-DE")
            phone = phone_ctx.new_page()
            phone.set_default_timeout(15_000)
            phone.goto(f"{base}/portal")  # admits the member's device
            phone.goto(f"{base}/unterlagen")
            phone.click(f"#file-{fid} a.doc-title")  # she opens the first version
            assert phone.request.get(base + phone.get_attribute("#pdf-viewer", "data-pdf-url")).body() == PDF
            phone.goto(f"{base}/unterlagen")
            wait_js(phone, "document.body.getAttribute('data-live') === 'open'", timeout=15)

            def member_sees(predicate: str, arg=None) -> None:
                """Wait for the phone's open page to show it live; else reload once and demand it."""
                try:
                    wait_js(phone, predicate, arg, timeout=8)
                    how.append("live")
                except AssertionError:
                    phone.reload()
                    wait_js(phone, predicate, arg, timeout=5)
                    how.append("reload")

            desk = browser.new_context(viewport={"width": 1280, "height": 900}, locale="de-DE")
            clerk = desk.new_page()
            clerk.set_default_timeout(15_000)
            clerk.goto(f"{base}/clerk/login")
            clerk.fill("#password", PASSWORD)
            clerk.click("button[type=submit]")
            clerk.goto(f"{base}/clerk/sessions/{s.id}/unterlagen")
            # One numbering: the item's own number, not "2. 1 Eröffnung".
            agenda = clerk.inner_text("#clerk-agenda")
            assert "1 Eröffnung" in agenda and "2. 1" not in agenda
            assert clerk.evaluate("getComputedStyle(document.getElementById('clerk-agenda')).listStyleType") == "none"

            # 1. rename
            clerk.click(f"#cfile-{fid} details summary")
            clerk.fill(f"#ef-title-{fid}", "Haushaltsentwurf (überarbeitet)")
            clerk.click(f"#cfile-{fid} form[action*='/datei/{fid}'] button[type=submit]")
            clerk.wait_for_selector(".flash")
            member_sees("() => (document.getElementById('agenda') || {}).innerText"
                        " && document.getElementById('agenda').innerText.includes('Haushaltsentwurf (überarbeitet)')")

            # 2. replace: she had opened the old version, so she sees „neue Fassung“
            clerk.click(f"#cfile-{fid} details summary")
            clerk.set_input_files(f"#er-file-{fid}", str(new_pdf))
            clerk.click(f"#cfile-{fid} form[action$='/ersetzen'] button[type=submit]")
            clerk.wait_for_selector(".flash")
            new = next(f for f in docs.files(db, s.id) if f.sha256 != docs.get_file(db, anlage).sha256)
            assert new.id != fid and new.title == "Haushaltsentwurf (überarbeitet)"
            member_sees("id => !!document.querySelector('#file-' + id + ' .badge.fresh')", new.id)
            assert "neue Fassung" in phone.inner_text(f"#file-{new.id}")
            assert phone.query_selector(f"#file-{fid}") is None

            # 3. reorder: the Anlage first
            clerk.click(f"#file-up-{anlage}")
            clerk.wait_for_selector(f"#cfile-{anlage}")
            member_sees("([a, b]) => { const ids = [...document.querySelectorAll('#item-' + " + str(item)
                        + " + ' li.doc-file')].map(li => li.id); return ids.join() === ['file-' + a, 'file-' + b]"
                        ".join(); }", [anlage, new.id])
            phone.screenshot(path=str(artifacts / "docedit-member-after-edits.png"), full_page=True)

            # 4. delete, asked on its own page
            clerk.click(f"#file-delete-{anlage}")
            assert "Datei „Anlage Stellenplan“ löschen?" in clerk.inner_text("h1")
            assert "Mitglieder sehen sie danach nicht mehr." in clerk.inner_text("main")
            assert docs.get_file(db, anlage) is not None  # the GET only asked
            clerk.screenshot(path=str(artifacts / "docedit-clerk-confirm-delete.png"), full_page=True)
            clerk.click("#confirm-delete")
            clerk.wait_for_selector(".flash")
            assert docs.get_file(db, anlage) is None
            clerk.screenshot(path=str(artifacts / "docedit-clerk-page.png"), full_page=True)
            member_sees("id => !document.getElementById('file-' + id)", anlage)
            phone.screenshot(path=str(artifacts / "docedit-member-after-delete.png"), full_page=True)

            # She opens the new version: the badge goes.
            phone.click(f"#file-{new.id} a.doc-title")
            assert "neue Fassung" in phone.inner_text("h1")
            assert phone.request.get(base + phone.get_attribute("#pdf-viewer", "data-pdf-url")).body() == PDF_NEU
            phone.goto(f"{base}/unterlagen")
            assert phone.query_selector(f"#file-{new.id} .badge.fresh") is None
            desk.close()
            phone_ctx.close()
            browser.close()
    finally:
        httpd.shutdown()
        db.conn.close()
    print("member page updated:", how)
    assert how == ["live"] * 4, how
