"""Every member page fits a 360 px phone (issue 12), in Debian's Chromium, with JavaScript on and off.

The session is filled the way real ones are: file names of 100+ characters without a space, long agenda titles,
double names with titles, a long faction name, a pasted URL in the chat, a direct conversation with a long name.
Each page is loaded at 360×740 (a phone, as captive mini-browsers open it) and must not be wider than the
screen: `document.documentElement.scrollWidth <= 360` and no element's right edge beyond 360. Screenshots go to
tests/artifacts/. The live case: a Tischvorlage announced while the agenda is open arrives by push with its
badge and size at once, and fits.

The app runs in demo mode so `?as=<ip>` gives the page the identity of a member's phone (appliance/web/links.py).
"""

from __future__ import annotations

import dataclasses
import io
import threading
from pathlib import Path

import pytest

from appliance.chat import rules as chat_rules
from appliance.chat import store as chat
from appliance.documents import bulk
from appliance.documents import service as documents
from appliance.push import hub as hub_mod
from appliance.rules.viewer import Viewer
from appliance.sessions import service
from appliance.sessions.roster import MemberRow
from appliance.store import open_db
from appliance.usecases import documents as doc_acts
from tests import pdf_samples
from tests.conftest import need, need_binary
from tests.live_support import BERND_IP, MACS, populate
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.browser
WIDTH, HEIGHT = 360, 740
LONG_IP, LONG_MAC = "10.77.0.30", "02:5c:00:00:00:30"
LONG_NAME = "Prof. Dr. Maximiliane-Theresia von Hohenzollern-Sigmaringen-Lüdenscheidt"
OTHER_NAME = "Hans-Joachim Müller-Westernhagen-Oberhausen-Sterkrade"
FACTION = "BÜNDNIS 90/DIE GRÜNEN-Ratsfraktion"
FILES = (  # name, item, bytes
    ("2026-11-24_Beschlussvorlage_BV-2026-0815_Neubau_Grundschule_Am_Lindenhof_Anlage_3_Kostenschätzung_final_v2.pdf",
     0, pdf_samples.pdf(b"x" * 3000)),
    ("Anlage_1_Stellungnahme_des_Umwelt-und-Klimaschutzausschusses_zur_Fortschreibung_des_Lärmaktionsplans_Stufe_4"
     ".pdf", 0, pdf_samples.pdf(b"y" * 2000)),
    ("Haushaltssatzung2027_Entwurf_Gesamtergebnisplan_Teilfinanzpläne_inkl_Stellenplan_und_Investitionsprogramm.txt",
     1, b"Haushalt\n" * 200),
)
LATE = ("2026-11-24_Tischvorlage_TV-2026-0042_Änderungsantrag_der_Fraktion_BÜNDNIS_90_DIE_GRÜNEN_zu_TOP_7_"
        "Radverkehrskonzept_Fassung_vom_24-11-2026_1830.pdf")
URL = "https://www.ratsinformationssystem.example.de/vorlagen/BV-2026-0815/anlagen/Anlage_3_Kostenschaetzung_final_v2"

# Elements whose right edge is beyond the screen, and how wide the document is.
OVERFLOW_JS = """(width) => {
  const bad = [];
  for (const el of document.querySelectorAll('body *')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    if (r.right > width + 0.5) {
      bad.push(`${el.tagName.toLowerCase()}#${el.id}.${el.className} right=${Math.round(r.right)}`);
    }
  }
  return {scrollWidth: document.documentElement.scrollWidth, bad: bad.slice(0, 15)};
}"""


def fill(cfg, db) -> dict:
    s, ms = populate(cfg, db)
    db.execute("UPDATE sessions SET title = ?, body = ?, venue = ? WHERE id = ?",
               ["37. öffentliche und nichtöffentliche Sitzung des Ausschusses für Stadtentwicklung, Umwelt, "
                "Klimaschutz und Mobilität", "Ausschuss für Stadtentwicklung, Umwelt, Klimaschutz und Mobilität",
                "Großer Sitzungssaal im Verwaltungsgebäude Technisches Rathaus, Raum 2.114", s.id])
    service.insert_members(db, s.id, [MemberRow(LONG_NAME, FACTION, "member", True, ""),  # this body
                                      MemberRow(OTHER_NAME, FACTION, "member", True, "Rat")]
                           + [MemberRow(f"Ratsmitglied {i:02d} Mustermann-Lüdenscheidt", f"Fraktion {i % 4}",
                                        "member", True, "Rat") for i in range(30)])
    people = {m.name: m for m in service.members(db, s.id)}
    me, other = people[LONG_NAME], people[OTHER_NAME]
    db.execute("INSERT INTO stations(mac, interface, keyid, connected) VALUES (?, 'wlan0', ?, 1)",
               [LONG_MAC, me.keyid])
    with open(cfg.leases_file, "a") as f:
        f.write(f"0 {LONG_MAC} {LONG_IP} * *\n")
    chat.set_settings(db, s.id, chat_rules.Settings(direct_messages=True, guests_chat=True), "test")
    them = Viewer("member", s.id, other, True, "10.77.0.31", "02:5c:00:00:00:31")
    bernd = Viewer("member", s.id, ms["Bernd"], True, BERND_IP, MACS[BERND_IP])
    chat.post(db, them, "all", "layout-0000001", f"Die Kostenschätzung steht hier: {URL}")
    chat.post(db, bernd, "all", "layout-0000002", "Donaudampfschifffahrtsgesellschaftskapitänsmützenabzeichen" * 3)
    chat.post(db, them, f"faction:{FACTION}", "layout-0000003", "Vorbesprechung um 17:30 Uhr im Fraktionsraum")
    dm = chat_rules.dm_room(me.id, other.id)
    chat.post(db, them, dm, "layout-0000004", f"Siehe {URL}")
    chat.post(db, Viewer("clerk", s.id), "announce", "layout-0000005",
              f"Bitte beachten Sie die Tischvorlage zu TOP 7: {LATE}")
    items = [documents.add_item(db, s.id, "Neubau der Grundschule Am Lindenhof einschließlich Dreifachsporthalle, "
                                "Mensa und Außenanlagen – Baubeschluss und Finanzierungsvereinbarung", number="7.1.3"),
             documents.add_item(db, s.id, "Haushaltssatzung und Haushaltsplan 2027/2028", number="12", public=False)]
    blobs = documents.blobs_for(cfg.state_dir)
    ids = []
    for name, item, data in FILES:
        n, kind, stored = documents.store_upload(blobs, name, io.BytesIO(data))
        ids.append(documents.add_file(db, s.id, name=n, stored=stored, mime=kind.mime, item_id=items[item],
                                      public=item == 0))
    return {"s": s, "items": items, "files": ids, "dm": dm}


@pytest.fixture
def server(cfg):
    need_binary("chromium")
    need(Path(CHROMIUM).exists(), f"needs {CHROMIUM} (Debian package chromium)")
    from werkzeug.serving import make_server

    from appliance.helper.client import NullHelper
    from appliance.web import serve

    cfg = dataclasses.replace(cfg, demo=True)
    db = open_db(cfg.db_path)
    data = fill(cfg, db)
    app = serve.make_wsgi(cfg, helper=NullHelper())
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, name="sbx-layout-web", daemon=True)
    thread.start()
    try:
        yield {"base": f"http://127.0.0.1:{httpd.server_port}", "cfg": cfg, "db": db, **data}
    finally:
        hub_mod.stop_all()
        httpd.shutdown()
        thread.join(timeout=10)
        db.conn.close()


def pages(srv) -> dict[str, str]:
    pdf, _pdf2, txt = srv["files"]
    return {
        "portal": "/portal", "start": "/", "agenda": "/unterlagen", "search": "/unterlagen?q=Beschlussvorlage",
        "viewer-pdf": f"/unterlagen/ansehen/{pdf}", "viewer-text": f"/unterlagen/ansehen/{txt}",
        "chat": "/chat", "chat-faction": f"/chat?room=faction:{FACTION}", "chat-direct": f"/chat?room={srv['dm']}",
        "picker": "/chat/personen", "picker-search": "/chat/personen?q=m%C3%BCller", "error": "/unterlagen/ansehen/999",
    }


def with_device(path: str) -> str:
    return path + ("&" if "?" in path else "?") + f"as={LONG_IP}"


def fits(page) -> None:
    found = page.evaluate(OVERFLOW_JS, WIDTH)
    assert found["scrollWidth"] <= WIDTH and not found["bad"], (page.url, found)


@pytest.fixture
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def phone(browser, js: bool):
    ctx = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT}, is_mobile=True, has_touch=True,
                              locale="de-DE", java_script_enabled=js)
    page = ctx.new_page()
    page.set_default_timeout(15_000)
    return ctx, page


@pytest.mark.parametrize("js", [True, False], ids=["js", "nojs"])
def test_every_member_page_fits_360_px(server, chromium, artifacts, js):
    ctx, page = phone(chromium, js)
    try:
        page.goto(server["base"] + with_device("/portal"))  # lets the member's phone through
        for name, path in pages(server).items():
            resp = page.goto(server["base"] + with_device(path))
            assert resp is not None and resp.status == (404 if name == "error" else 200), (name, resp and resp.status)
            page.screenshot(path=str(artifacts / f"member-360-{name}-{'js' if js else 'nojs'}.png"), full_page=True)
            fits(page)
            if name != "portal":
                assert page.locator("nav.member-nav a").count() == 3, name
        # The chat on a phone: the conversation and the form are on the first screen.
        page.goto(server["base"] + with_device("/chat"))
        form_top = page.locator("#chat-form button[type=submit]").bounding_box()
        assert form_top is not None and form_top["y"] + form_top["height"] <= HEIGHT, form_top
        assert page.locator("#chat-rooms").bounding_box()["y"] > form_top["y"]
    finally:
        ctx.close()


def test_the_picker_filters_as_one_types(server, chromium, artifacts):
    ctx, page = phone(chromium, True)
    try:
        page.goto(server["base"] + with_device("/portal"))
        page.goto(server["base"] + with_device("/chat/personen"))
        page.fill("#picker-q", "westernhagen")
        visible = page.locator(".picker-people li:visible")
        assert visible.count() == 1 and OTHER_NAME in visible.inner_text()
        assert page.locator(".picker-group:visible").count() == 1
        assert page.inner_text("#picker-count").startswith("1 von ")
        page.fill("#picker-q", "niemand hier")
        assert page.locator("#picker-none").is_visible()
        page.fill("#picker-q", "")
        assert page.locator(".picker-people li:visible").count() > 30
        fits(page)
    finally:
        ctx.close()


def test_a_live_tischvorlage_arrives_with_badge_and_size_and_fits(server, chromium, artifacts):
    from playwright.sync_api import expect

    ctx, page = phone(chromium, True)
    try:
        page.goto(server["base"] + with_device("/portal"))
        page.goto(server["base"] + with_device("/unterlagen"))
        expect(page.locator("body")).to_have_attribute("data-live", "open", timeout=10_000)
        data = pdf_samples.pdf(b"z" * 5000)
        # The clerk's act (the same as `sitzungsbox import N file --tischvorlage`): the notice is
        # service.late_notice, built without a web request.
        result = doc_acts.announce_late_document(server["cfg"], server["db"], server["s"].id,
                                                 [bulk.Entry(None, LATE, len(data), lambda: io.BytesIO(data))],
                                                 "clerk", item_id=server["items"][0])
        (fid,) = result.file_ids
        entry = page.locator(f"#file-{fid}")
        expect(entry).to_be_visible(timeout=20_000)
        f = documents.get_file(server["db"], fid)
        expect(entry.locator(".badge.late")).to_have_text("Tischvorlage")
        expect(entry).to_contain_text(f"{LATE} · {max(1, round(f.size / 1024))} kB")
        expect(entry.locator("a[download]")).to_have_text("Herunterladen")
        assert entry.locator("a.doc-title").inner_text() == f.title
        page.screenshot(path=str(artifacts / "member-360-agenda-live-tischvorlage.png"), full_page=True)
        fits(page)
        # After a reload the server draws the same entry.
        page.reload()
        expect(page.locator(f"#file-{fid} .badge.late")).to_have_text("Tischvorlage")
        expect(page.locator(f"#file-{fid}")).to_contain_text(f"{LATE} · {max(1, round(f.size / 1024))} kB")
    finally:
        ctx.close()


def test_a_message_seen_live_is_not_new_later(server, chromium):
    from playwright.sync_api import expect

    from tests.conftest import poll

    db, s = server["db"], server["s"]
    people = {m.name: m for m in service.members(db, s.id)}
    me = Viewer("member", s.id, people[LONG_NAME], True, LONG_IP, LONG_MAC)
    them = Viewer("member", s.id, people[OTHER_NAME], True, "10.77.0.31", "02:5c:00:00:00:31")
    ctx, page = phone(chromium, True)
    try:
        page.goto(server["base"] + with_device("/portal"))
        page.goto(server["base"] + with_device("/chat?room=all"))
        expect(page.locator("body")).to_have_attribute("data-live", "open", timeout=10_000)
        assert "all" not in chat.unread(db, me)
        msg, _ = chat.post(db, them, "all", "layout-live-0001", "Gerade eben geschrieben")
        expect(page.locator(f"#m-{msg.id}")).to_be_visible(timeout=10_000)
        poll(lambda: "all" not in chat.unread(db, me), 10, "the message seen live is marked read")
        fits(page)
    finally:
        ctx.close()
