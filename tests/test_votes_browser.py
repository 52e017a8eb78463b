"""A named vote in Debian's Chromium (issue 14): the chair (Dora, a deputy, on her own device) opens a named vote
on the console; three member phones at 360 px (Anna, Bernd, Carla) see it appear without a reload, vote with the
plain form, and Bernd changes his vote; the room screen counts („3 von 3 Stimmen abgegeben“) and never shows a
tally while the vote is open; after the close it shows the result within a second: the counts, per faction and
per name. Repeated with a 10 s countdown, the vote counts down on the console and the screen and closes by
itself at the deadline (the pages' fetch at the deadline closes it). Screenshots go to tests/artifacts/
(votes-member.png, votes-member-result.png, votes-console-open.png, votes-console-phone.png, votes-console-result.png,
votes-saal-open.png, votes-saal-result.png); axe-core finds nothing on the member page with the open vote, the
console with the open vote and with the result, and the room screen during and after the vote.

Every page comes from 127.0.0.1, so the box's demo mode (`?as=<ip>`) gives each the identity of a device — no
login, no cookie; the projector opens only its display link.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import pytest

from appliance.documents import service as docs
from appliance.presence.sources import PresenceDaemon
from appliance.push import hub as hub_mod
from appliance.rules.viewer import Viewer
from appliance.store import open_db
from appliance.store.db import now as iso_now
from appliance.usecases import displays, speakers
from appliance.usecases import votes as acts
from tests.conftest import need, need_binary, wait_js
from tests.live_support import ANNA_IP, BERND_IP, CARLA_IP, MACS, populate
from tests.test_a11y import AXE, AXE_RUN, TAGS
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.browser
DORA_IP, DORA_MAC = "10.77.0.14", "02:5c:00:00:00:05"


@pytest.fixture
def server(cfg):
    need_binary("chromium")
    need(Path(CHROMIUM).exists(), f"needs {CHROMIUM} (Debian package chromium)")
    need(AXE.exists(), "needs node_modules/axe-core (make test: npm ci --ignore-scripts)")
    from werkzeug.serving import make_server

    from appliance.helper.client import NullHelper
    from appliance.web import serve

    cfg = dataclasses.replace(cfg, demo=True, presence_grace=60)
    db = open_db(cfg.db_path)
    s, ms = populate(cfg, db)
    # Carla's and Dora's phones are let through too (populate admits Anna, Bernd and a guest).
    with open(cfg.leases_file, "a") as f:
        f.write(f"0 {DORA_MAC} {DORA_IP} * *\n")
    db.execute("INSERT INTO stations(mac, interface, keyid, connected) VALUES (?, 'wlan0', ?, 1)",
               [DORA_MAC, ms["Dora"].keyid])
    for ip, mac, who in ((CARLA_IP, MACS[CARLA_IP], "Carla"), (DORA_IP, DORA_MAC, "Dora")):
        db.execute("INSERT INTO admissions(session_id, mac, ip, member_id, kind, admitted_at) "
                   "VALUES (?, ?, ?, ?, 'member', ?)", [s.id, mac, ip, ms[who].id, iso_now()])
    clerk = Viewer("clerk", s.id)
    top = docs.add_item(db, s.id, "Haushalt 2027", number="5", actor="test")
    assert speakers.set_chair(db, clerk, s.id, ms["Dora"].id)
    assert speakers.set_current_item(db, clerk, s.id, top)
    _display, token = displays.create_display(cfg, db, s.id, "test", "Beamer")
    PresenceDaemon(cfg).round(db)  # Anna, Bernd, Carla (and Dora) present: three members with a vote
    app = serve.make_wsgi(cfg, helper=NullHelper())
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, name="sbx-votes-web", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}", db, s, ms, token
    finally:
        hub_mod.stop_all()  # ends open streams so the server can shut down
        httpd.shutdown()
        thread.join(timeout=10)
        db.conn.close()


def text(page, selector: str) -> str:
    return page.evaluate("(s) => (document.querySelector(s) || {}).textContent || ''", selector)


LIVE = "() => document.body.getAttribute('data-live') === 'open'"
NAMED = """() => Array.from(document.querySelectorAll('#vote-named li')).map(li =>
  [li.querySelector('.vote-n-name').textContent, (li.querySelector('.vote-n-faction') || {}).textContent || '',
   li.querySelector('.vote-n-choice').textContent].join('|'))"""
FACTIONS = """() => Array.from(document.querySelectorAll('#vote-factions tbody tr')).map(tr =>
  Array.from(tr.children).map(c => c.textContent.trim()).join('|'))"""


def test_named_vote_three_phones_console_and_room_screen(server, artifacts):
    from playwright.sync_api import sync_playwright

    base, db, s, ms, token = server
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            def open_page(ip: str, path: str, viewport: dict, phone: bool):
                ctx = browser.new_context(viewport=viewport, locale="de-DE", is_mobile=phone, has_touch=phone)
                ctx.add_init_script(path=str(AXE))
                page = ctx.new_page()
                page.goto(f"{base}{path}?as={ip}")
                return page

            def axe_clean(page, label: str) -> None:
                found = page.evaluate(AXE_RUN, TAGS)
                assert not found, f"{label}: {found}"

            small = {"width": 360, "height": 740}
            phones = {name: open_page(ip, "/", small, True)
                      for name, ip in (("Anna", ANNA_IP), ("Bernd", BERND_IP), ("Carla", CARLA_IP))}
            console = open_page(DORA_IP, "/vorsitz", {"width": 1920, "height": 1080}, False)
            screen = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="de-DE").new_page()
            screen.add_init_script(path=str(AXE))
            screen.goto(f"{base}/saal/{token}")  # the projector: only the display link
            for page in (*phones.values(), console):
                wait_js(page, LIVE)
            wait_js(screen, "() => document.getElementById('saal').getAttribute('data-live') === 'open'")
            assert phones["Anna"].locator("#abstimmung").count() == 0  # no vote yet

            # The chair opens a named vote; the question comes prefilled from the room's item.
            assert console.input_value("#vote-question-input") == "Haushalt 2027"
            console.fill("#vote-question-input", "Dem Haushalt 2027 zustimmen?")
            console.check("#vote-mode-named")
            console.click("#vote-open")
            console.wait_for_selector("#vote-progress")
            wait_js(console, LIVE)
            assert "Beschlussfähig" in text(console, "#vote-quorum")
            assert text(console, "#vote-progress") == "0 von 3 haben abgestimmt"
            # Each phone shows it without a reload (votes.changed, a jittered refetch); the screen counts.
            for page in phones.values():
                wait_js(page, "() => document.getElementById('vote-form') !== null", timeout=5)
            wait_js(screen, "() => (document.getElementById('saal-vote-progress') || {}).textContent === "
                            "'0 von 3 Stimmen abgegeben'", timeout=5)
            anna = phones["Anna"]
            assert "Dem Haushalt 2027 zustimmen?" in text(anna, "#abstimmung")
            assert anna.evaluate("document.documentElement.scrollWidth") <= 360
            heights = anna.evaluate("() => ['yes','no','abstain'].map(c => "
                                    "document.getElementById('vote-' + c).getBoundingClientRect().height)")
            assert min(heights) >= 48, heights  # large touch targets
            anna.screenshot(path=str(artifacts / "votes-member.png"), full_page=True)
            axe_clean(anna, "member page, open vote")
            console.screenshot(path=str(artifacts / "votes-console-open.png"), full_page=True)
            axe_clean(console, "console, open vote")
            # The chair's own phone: the same panel at 360 px, nothing wider than the screen.
            chair_phone = open_page(DORA_IP, "/vorsitz", small, True)
            assert text(chair_phone, "#vote-progress") == "0 von 3 haben abgestimmt"
            assert chair_phone.evaluate("document.documentElement.scrollWidth") <= 360
            chair_phone.screenshot(path=str(artifacts / "votes-console-phone.png"), full_page=True)
            axe_clean(chair_phone, "console at 360 px, open vote")
            chair_phone.context.close()

            # Three phones vote with the plain form; Bernd changes his vote.
            for name, choice, label in (("Anna", "yes", "Ja"), ("Bernd", "no", "Nein"), ("Carla", "yes", "Ja"),
                                        ("Bernd", "abstain", "Enthaltung")):
                page = phones[name]
                page.wait_for_selector(f"#vote-{choice}")
                page.click(f"#vote-{choice}")
                wait_js(page, "(t) => (document.getElementById('vote-mine') || {}).textContent === t",
                        f"Ihre Stimme: {label}", timeout=5)
            assert "bis zum Schluss der Abstimmung ändern" in text(phones["Bernd"], "#abstimmung")
            wait_js(screen, "() => (document.getElementById('saal-vote-progress') || {}).textContent === "
                            "'3 von 3 Stimmen abgegeben'", timeout=5)
            wait_js(console, "() => (document.getElementById('vote-progress') || {}).textContent === "
                             "'3 von 3 haben abgestimmt'", timeout=5)
            # Never a tally on the screen while the vote is open.
            for selector in ("#vote-counts", "#vote-factions", "#vote-named", "#vote-outcome"):
                assert screen.locator(selector).count() == 0, selector
            screen.screenshot(path=str(artifacts / "votes-saal-open.png"), full_page=False)
            axe_clean(screen, "room screen, open vote")

            # The chair closes: the result on the room screen within a second.
            started = time.monotonic()
            console.click("#vote-close")
            wait_js(screen, "() => document.getElementById('vote-outcome') !== null", timeout=5)
            latency = time.monotonic() - started
            print(f"close → result on the room screen: {latency * 1000:.0f} ms")
            assert latency < 1.0, f"close → room screen took {latency:.3f} s"
            assert text(screen, "#vote-outcome").strip() == "Angenommen"
            assert [text(screen, f"#vote-count-{c}") for c in ("yes", "no", "abstain")] == ["2", "0", "1"]
            assert screen.evaluate(FACTIONS) == ["CDU|0|0|1|0", "SPD|2|0|0|0"]
            assert screen.evaluate(NAMED) == ["Anna Schmidt|SPD|Ja", "Bernd Müller|CDU|Enthaltung",
                                              "Carla Weber|SPD|Ja"]
            assert screen.evaluate("document.documentElement.scrollHeight") <= 1080  # nothing scrolls
            screen.screenshot(path=str(artifacts / "votes-saal-result.png"), full_page=False)
            axe_clean(screen, "room screen, result")
            console.wait_for_selector("#vote-repeat")
            assert text(console, "#vote-outcome").strip() == "Angenommen"
            console.screenshot(path=str(artifacts / "votes-console-result.png"), full_page=True)
            axe_clean(console, "console, result")
            chair_phone = open_page(DORA_IP, "/vorsitz", small, True)
            assert chair_phone.evaluate("document.documentElement.scrollWidth") <= 360  # the open form, the result
            axe_clean(chair_phone, "console at 360 px, result and the form to open a vote")
            chair_phone.context.close()
            # The phones show the result too (votes.changed), Anna her own vote no longer as a form.
            wait_js(anna, "() => document.getElementById('vote-outcome') !== null", timeout=5)
            assert anna.locator("#vote-form").count() == 0
            assert anna.evaluate("document.documentElement.scrollWidth") <= 360  # the tables fit the phone
            assert anna.evaluate("() => Math.max(...Array.from(document.querySelectorAll('#abstimmung table')).map("
                                 "e => e.getBoundingClientRect().right)) <= "
                                 "document.getElementById('abstimmung').getBoundingClientRect().right")
            anna.screenshot(path=str(artifacts / "votes-member-result.png"), full_page=True)
            axe_clean(anna, "member page, result")

            # Repeated with a countdown of 10 s: it counts down on the console and the screen, and closes by
            # itself (the console's and the screen's fetch at the deadline closes it; the phones follow).
            console.click("#vote-repeat")
            console.wait_for_selector("#vote-countdown-10")
            wait_js(console, LIVE)
            wait_js(screen, "() => (document.getElementById('saal-vote-progress') || {}).textContent === "
                            "'0 von 3 Stimmen abgegeben'", timeout=5)
            wait_js(anna, "() => document.getElementById('vote-form') !== null", timeout=5)
            console.click("#vote-countdown-10")
            console.wait_for_selector("#vote-deadline")
            wait_js(screen, "() => /schließt in [0-9]+ Sekunden/.test(("
                            "document.getElementById('saal-vote-deadline') || {}).textContent || '')", timeout=5)
            first = text(screen, "#saal-vote-deadline")
            wait_js(screen, "(t) => (document.getElementById('saal-vote-deadline') || {}).textContent !== t",
                    first, timeout=5)  # the screen counts down by itself
            anna.wait_for_selector("#vote-yes")
            anna.click("#vote-yes")
            wait_js(screen, "() => document.getElementById('vote-outcome') !== null", timeout=15)
            assert [text(screen, f"#vote-count-{c}") for c in ("yes", "no", "abstain")] == ["1", "0", "0"]
            wait_js(console, "() => document.getElementById('vote-repeat') !== null", timeout=5)
            wait_js(anna, "() => document.getElementById('vote-form') === null", timeout=5)
        finally:
            browser.close()
    first, second = acts.votes(db, s.id)
    assert (first.state, first.mode, first.yes, first.no, first.abstain, first.accepted) == \
        ("closed", "named", 2, 0, 1, True)
    assert (second.state, second.attempt, second.repeat_of, second.yes) == ("closed", 2, first.id, 1)
    assert second.closed_at - second.opened_at >= 10  # closed by its countdown, not before


def test_a_council_of_62_named_result_fits_the_room_screen(cfg, artifacts):
    """The demo's size: 62 members in six factions, a named vote closed — counts, factions and every name on one
    1920×1080 screen without scrolling or clipping, axe-core clean (votes-saal-62.png)."""
    need_binary("chromium")
    need(Path(CHROMIUM).exists(), f"needs {CHROMIUM} (Debian package chromium)")
    need(AXE.exists(), "needs node_modules/axe-core (make test: npm ci --ignore-scripts)")
    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    from appliance.helper.client import NullHelper
    from appliance.sessions import service
    from appliance.sessions.roster import MemberRow
    from appliance.web import serve

    db = open_db(cfg.db_path)
    s = service.create_session(db, body="Rat der Stadt", title="12. Sitzung des Rates", day="2026-12-07",
                               venue="Ratssaal")
    factions = ("CDU", "SPD", "Bündnis 90/Die Grünen", "FDP", "Die Linke", "Freie Wähler")
    service.insert_members(db, s.id, [MemberRow(f"Mitglied{i:02d} Schmidt-Weber", factions[i % 6],
                                                "member", True, "Rat") for i in range(62)])
    service.set_active(db, s.id)
    members = service.members(db, s.id)
    for m in members[:60]:
        db.execute("INSERT INTO presence_intervals(session_id, member_id, start, start_source) "
                   "VALUES (?, ?, ?, 'wifi')", [s.id, m.id, time.time() - 600])
    clerk = Viewer("clerk", s.id)
    top = docs.add_item(db, s.id, "Haushaltssatzung 2027", number="5", actor="test")
    assert speakers.set_current_item(db, clerk, s.id, top)
    vote = acts.open_vote(db, clerk, s.id, question="Der Haushaltssatzung 2027 zustimmen?", now=time.time(),
                          mode="named")
    for i, m in enumerate(members[:58]):
        me = Viewer("member", s.id, m, True, f"10.77.1.{i + 1}")
        assert acts.cast(db, me, s.id, vote.vote_id, m.id, ("yes", "no", "abstain")[i % 3], f"key-62-{i:04d}",
                         now=time.time())
    assert acts.close_vote(db, clerk, s.id, now=time.time())
    _display, token = displays.create_display(cfg, db, s.id, "test", "Beamer")
    httpd = make_server("127.0.0.1", 0, serve.make_wsgi(cfg, helper=NullHelper()), threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, name="sbx-votes-62", daemon=True)
    thread.start()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="de-DE").new_page()
                page.add_init_script(path=str(AXE))
                page.goto(f"http://127.0.0.1:{httpd.server_port}/saal/{token}")
                page.wait_for_selector("#vote-named")
                assert page.locator("#vote-named li").count() == 60
                assert page.locator("#vote-factions tbody tr").count() == 6
                bottom, shown = page.evaluate("() => [Math.max(...Array.from(document.querySelectorAll("
                                              "'#vote-named li, #vote-factions, #vote-counts')).map(e => "
                                              "e.getBoundingClientRect().bottom)), "
                                              "document.getElementById('saal-vote').getBoundingClientRect().bottom]")
                assert bottom <= min(shown, 1080), f"the result runs below its box ({bottom:.0f} > {shown:.0f} px)"
                clipped = page.evaluate("() => Array.from(document.querySelectorAll('.vote-n-choice')).filter(e => "
                                        "e.getBoundingClientRect().right > e.parentElement.getBoundingClientRect()"
                                        ".right + 0.5 || e.getBoundingClientRect().right > 1920 || "
                                        "e.scrollWidth > e.clientWidth + 1).length")
                assert clipped == 0, f"{clipped} choices cut off"
                page.screenshot(path=str(artifacts / "votes-saal-62.png"), full_page=False)
                found = page.evaluate(AXE_RUN, TAGS)
                assert not found, found
            finally:
                browser.close()
    finally:
        hub_mod.stop_all()
        httpd.shutdown()
        thread.join(timeout=10)
        db.conn.close()
