"""The clerk's attendance page in Debian's Chromium: a member leaves and the open page's quorum status changes
colour (computed style), shape and words without a reload; the print page for 69 people is at most two A4 pages
with "Stand:" and page numbers (Playwright page.pdf, read back with pdfinfo and pdftotext).

Screenshots and the PDF go to tests/artifacts/ (attendance-*.png, attendance-print.pdf).
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest

from appliance.presence import store
from appliance.presence.engine import Obs
from appliance.presence.sources import PresenceDaemon
from appliance.push import hub as hub_mod
from appliance.sessions import service
from appliance.sessions.roster import MemberRow
from appliance.store import open_db
from appliance.web import auth
from tests.conftest import need, need_binary
from tests.live_support import ANNA_IP, BERND_IP, MACS, populate
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.browser
PASSWORD = "attendance-browser-42"
GRACE = 600.0

# The WCAG relative luminance and contrast of two computed CSS colours ("rgb(r, g, b)").
CONTRAST_JS = """(el) => {
  const s = getComputedStyle(el);
  const lum = (c) => { const [r, g, b] = c.match(/\\d+/g).slice(0, 3).map(Number).map(v => {
      v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const a = lum(s.color), b = lum(s.backgroundColor);
  return {color: s.color, background: s.backgroundColor,
          contrast: (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)};
}"""


@pytest.fixture
def box(cfg):
    need_binary("chromium", "pdfinfo", "pdftotext")
    need(Path(CHROMIUM).exists(), f"needs {CHROMIUM} (Debian package chromium)")
    from werkzeug.serving import make_server

    from appliance.helper.client import NullHelper
    from appliance.web import serve

    cfg = dataclasses.replace(cfg, demo=True, presence_grace=GRACE)
    db = open_db(cfg.db_path)
    s, ms = populate(cfg, db)
    auth.set_password(db, PASSWORD, actor="test")
    PresenceDaemon(cfg).round(db)  # Anna's, Bernd's and Carla's phones are connected
    app = serve.make_wsgi(cfg, helper=NullHelper())
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, name="sbp-attendance-web", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}", db, s, ms
    finally:
        hub_mod.stop_all()
        httpd.shutdown()
        thread.join(timeout=10)
        db.conn.close()


def _login(browser, base):
    page = browser.new_context(viewport={"width": 1280, "height": 900}, locale="de-DE").new_page()
    page.goto(f"{base}/clerk/login")
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    return page


def test_quorum_status_changes_colour_and_text_when_a_member_leaves(box, artifacts):
    from playwright.sync_api import expect, sync_playwright

    base, db, s, ms = box
    # Carla is marked absent by the clerk: Anna and Bernd are 2 of 3 voting members, exactly the 2 needed.
    store.correct(db, s.id, ms["Carla"].id, "absent", "Gerät verliehen", "clerk@test", GRACE)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = _login(browser, base)
            page.goto(f"{base}/clerk/attendance")
            expect(page.locator("body")).to_have_attribute("data-live", "open", timeout=10_000)
            quorum = page.locator("#quorum")
            expect(quorum).to_have_class(re.compile(r"\bquorum-ok\b"))
            expect(quorum.locator(".quorum-state")).to_have_text("Beschlussfähig")
            expect(quorum.locator(".quorum-detail")).to_contain_text("Kein Spielraum")  # 2 present, 2 needed
            before = quorum.evaluate(CONTRAST_JS)
            assert before["background"] == "rgb(30, 107, 46)" and before["contrast"] >= 4.5, before
            assert quorum.locator("svg circle").count() == 1 and quorum.locator("svg polygon").count() == 0
            page.screenshot(path=str(artifacts / "attendance-quorate.png"), full_page=True)

            # Bernd's phone leaves the Wi-Fi: the rules still count him for the grace period, and say since when.
            now = time.time()
            store.record(db, s.id, ms["Bernd"].id, Obs(now, "disconnect", MACS[BERND_IP], "hostapd"), GRACE)
            page.reload()
            bernd = page.locator(f'tr[data-member="{ms["Bernd"].id}"]')
            expect(bernd).to_contain_text("zuletzt gesehen vor weniger als 1 min")
            expect(bernd).to_have_class("att-present")
            expect(quorum.locator(".quorum-state")).to_have_text("Beschlussfähig")
            page.screenshot(path=str(artifacts / "attendance-held.png"), full_page=True)

            # The grace period runs out (the daemon's tick): he has left, and the open page turns without a reload.
            page.evaluate("window.__sameDocument = true")
            store.tick_session(db, s.id, GRACE, now + GRACE + 1)
            expect(quorum).to_have_class(re.compile(r"\bquorum-no\b"), timeout=10_000)
            expect(quorum.locator(".quorum-state")).to_have_text("Nicht beschlussfähig")
            expect(quorum.locator(".quorum-detail")).to_contain_text("1 von 3")
            expect(bernd).to_have_class("att-left")
            after = quorum.evaluate(CONTRAST_JS)
            assert after["background"] == "rgb(164, 22, 26)" and after["contrast"] >= 4.5, after
            assert after["background"] != before["background"]
            assert quorum.locator("svg polygon").count() == 1 and quorum.locator("svg circle").count() == 0
            assert page.evaluate("window.__sameDocument") is True  # pushed, not reloaded
            page.screenshot(path=str(artifacts / "attendance-not-quorate.png"), full_page=True)

            # Without JS the reloaded page says the same.
            nojs = browser.new_context(java_script_enabled=False, locale="de-DE")
            plain = nojs.new_page()
            plain.goto(f"{base}/clerk/login")
            plain.fill("input[name=password]", PASSWORD)
            plain.click("form button[type=submit]")
            plain.goto(f"{base}/clerk/attendance?sort=status")
            assert plain.locator("#quorum .quorum-state").inner_text() == "Nicht beschlussfähig"
            assert plain.locator("#quorum").evaluate(CONTRAST_JS)["background"] == "rgb(164, 22, 26)"
            plain.select_option("#f-status", "present")
            plain.click(".att-filter button[type=submit]")
            assert plain.locator("tbody tr").count() == 1 and "status=present" in plain.url
        finally:
            browser.close()


def test_the_member_sees_on_their_open_page_that_the_clerk_marked_them_absent(box, artifacts):
    from playwright.sync_api import expect, sync_playwright

    base, db, s, ms = box
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            anna = browser.new_context(viewport={"width": 390, "height": 844}, locale="de-DE").new_page()
            anna.goto(f"{base}/?as={ANNA_IP}")
            expect(anna.locator("body")).to_have_attribute("data-live", "open", timeout=10_000)
            expect(anna.locator("#presence-mine")).to_have_text("Sie sind als anwesend erfasst.")
            assert anna.locator("#presence-correction").count() == 0
            at = time.time()
            store.correct(db, s.id, ms["Anna"].id, "absent", "Telefon im Saal, sie nicht", "clerk@test", GRACE, at)
            expect(anna.locator("#presence-mine")).to_have_text("Sie sind zurzeit nicht als anwesend erfasst.",
                                                                timeout=10_000)
            hhmm = store.fmt_time(at, "Europe/Berlin")
            expect(anna.locator("#presence-correction")).to_have_text(
                f"Vom Sitzungsdienst als abwesend eingetragen um {hhmm}.")
            anna.screenshot(path=str(artifacts / "attendance-member-corrected.png"), full_page=True)
        finally:
            browser.close()


FACTIONS = ("SPD", "CDU", "Grüne", "FDP", "Die Linke", "AfD", "")
GIVEN = ("Anja", "Björn", "Cem", "Dörte", "Emil", "Frauke", "Günther", "Hülya", "Ingo", "Jörg", "Karin")
FAMILY = ("Özdemir", "Müller-Lüdenscheidt", "Schäfer", "Weiß", "Becker", "Yılmaz", "von der Heide", "Hoffmann",
          "Zimmermann", "Krüger", "Ahrens", "Nowak", "Ünal")


def test_print_page_for_69_people_is_two_a4_pages_with_stand_and_page_numbers(box, artifacts, tmp_path):
    from playwright.sync_api import sync_playwright

    base, db, s, ms = box
    rows = [MemberRow(f"{GIVEN[i % len(GIVEN)]} {FAMILY[i % len(FAMILY)]} {i:02d}", FACTIONS[i % len(FACTIONS)],
                      "member" if i % 9 else "deputy", bool(i % 9), "Rat") for i in range(65)]
    service.insert_members(db, s.id, rows)
    people = service.members(db, s.id)
    assert len(people) == 69
    now = time.time()
    for i, m in enumerate(people[4:]):
        if i % 3:
            store.record(db, s.id, m.id, Obs(now - 3600 + i * 20, "connect", f"02:77:00:00:00:{i:02x}", "hostapd"),
                         GRACE)
    for m in people[4:10]:
        store.correct(db, s.id, m.id, "absent", "hat die Sitzung um 20 Uhr verlassen", "clerk@test", GRACE)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = _login(browser, base)
            page.goto(f"{base}/clerk/attendance/print")
            assert page.locator("tbody tr").count() == 69
            pdf = artifacts / "attendance-print.pdf"
            page.pdf(path=str(pdf), format="A4", prefer_css_page_size=True)
            page.emulate_media(media="print")
            page.screenshot(path=str(artifacts / "attendance-print.png"), full_page=True)
        finally:
            browser.close()
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, timeout=30, check=True).stdout
    pages = int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))
    assert 1 <= pages <= 2, info
    assert re.search(r"^Page size:\s+59[45]\.\d+ x 841\.\d+ pts \(A4\)", info, re.M), info
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, timeout=30,
                          check=True).stdout
    per_page = text.split("\f")
    assert re.search(r"Stand: \d\d\.\d\d\.\d{4}, \d\d:\d\d", per_page[0])
    for n in range(1, pages + 1):
        assert re.search(rf"\b{n}\s*/\s*{pages}\s*$", per_page[n - 1].rstrip()), f"no page number on page {n}"
    # At least 40 rows on a full page; every person once; role and voting right in words.
    assert len(re.findall(r"^\s*\d+\s+\S", per_page[0], re.M)) >= 40
    assert all(f"{i:02d}" in text for i in range(65))
    assert "Stellvertretung" in text and "Mitglied" in text and " nein " in text and " ja " in text
    assert "Vom Sitzungsdienst als abwesend eingetragen um" in text
