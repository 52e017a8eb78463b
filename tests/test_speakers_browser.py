"""The speakers list in Debian's Chromium (issue 13): three member phones, the chair's console and the room screen
(/saal/<token>, a display link) open at once. A member's request appears on the console and on the room screen
within a second (push channel + live-reload.js / saal.js), the chair calls it and
the member's open page says „Sie haben das Wort“; the console's timer counts down in the browser; a refused act
shows its German sentence and the page stays live. Screenshots of
the console at 1920×1080, of a member page and of the console at 360 px go to tests/artifacts/
(speakers-console.png, speakers-member.png, speakers-console-phone.png, speakers-saal.png at 1920×1080);
axe-core finds nothing on any of them.

Every page comes from 127.0.0.1, so the box's demo mode (`?as=<ip>`) gives each the identity of a device: Anna,
Bernd and Carla are members, Dora (a deputy) is the chair on her own phone — no login, no cookie.
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
from appliance.usecases import displays
from appliance.usecases import speakers as acts
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
    assert acts.set_chair(db, clerk, s.id, ms["Dora"].id)
    assert acts.set_current_item(db, clerk, s.id, top)
    _display, token = displays.create_display(cfg, db, s.id, "test", "Beamer")
    PresenceDaemon(cfg).round(db)
    app = serve.make_wsgi(cfg, helper=NullHelper())
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, name="sbx-speakers-web", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}", db, s, ms, token
    finally:
        hub_mod.stop_all()  # ends open streams so the server can shut down
        httpd.shutdown()
        thread.join(timeout=10)
        db.conn.close()


def axe(page) -> list:
    return page.evaluate(AXE_RUN, TAGS)


QUEUE_NAMES = "() => Array.from(document.querySelectorAll('#console-queue .queue-name')).map(e => e.textContent)"
SCREEN_NAMES = "() => Array.from(document.querySelectorAll('#saal-queue .saal-q-name')).map(e => e.textContent)"


def test_request_reaches_the_console_within_a_second_and_the_called_member_sees_it(server, artifacts):
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

            small = {"width": 360, "height": 740}
            anna = open_page(ANNA_IP, "/", small, True)
            bernd = open_page(BERND_IP, "/", small, True)
            carla = open_page(CARLA_IP, "/", small, True)
            console = open_page(DORA_IP, "/vorsitz", {"width": 1920, "height": 1080}, False)
            screen = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="de-DE").new_page()
            screen.add_init_script(path=str(AXE))
            screen.goto(f"{base}/saal/{token}")  # the projector: no identity, no login, only the display link
            for page in (anna, bernd, carla, console):
                wait_js(page, "() => document.body.getAttribute('data-live') === 'open'")
            wait_js(screen, "() => document.getElementById('saal').getAttribute('data-live') === 'open'")
            assert console.locator("h1").inner_text().startswith("Sitzungsleitung")
            assert "TOP 5" in anna.locator("#speakers-now").inner_text()

            # Calling with nobody waiting is refused on the console, in German; the page (now the answer to a
            # POST) keeps updating live from its own GET URL.
            console.click("#call-next")
            assert console.locator("#console-error").inner_text() == "Es wartet niemand auf der Rednerliste."
            wait_js(console, "() => document.body.getAttribute('data-live') === 'open'")
            # Bernd asks to speak: on the chair's console within a second, without reloading it.
            started = time.monotonic()
            bernd.click("#ask-contribution")
            wait_js(console, QUEUE_NAMES + ".length === 1", timeout=5)
            latency = time.monotonic() - started
            wait_js(screen, SCREEN_NAMES + ".length === 1", timeout=5)
            on_screen = time.monotonic() - started
            print(f"request → chair's console: {latency * 1000:.0f} ms, → room screen: {on_screen * 1000:.0f} ms")
            assert latency < 1.0, f"request → console took {latency:.3f} s"
            assert on_screen < 1.0, f"request → room screen took {on_screen:.3f} s"
            assert screen.evaluate(SCREEN_NAMES) == ["Bernd Müller"]
            assert console.evaluate(QUEUE_NAMES) == ["Bernd Müller"]
            assert "Sie stehen auf Platz 1." in bernd.locator("#speakers-live").inner_text()
            # Carla asks to the point of order: it lands first, also on Anna's open page.
            carla.click("#ask-point_of_order")
            wait_js(console, QUEUE_NAMES + ".join('|') === 'Carla Weber|Bernd Müller'", timeout=5)
            wait_js(screen, SCREEN_NAMES + ".join('|') === 'Carla Weber|Bernd Müller'", timeout=5)
            wait_js(anna, "() => document.querySelectorAll('#speakers-queue li').length === 2", timeout=5)

            # The chair calls: Carla has the floor on her own open page; the console's timer counts down.
            console.click("#call-next")
            wait_js(carla, "() => document.getElementById('speakers-you') !== null", timeout=5)
            wait_js(screen, "() => (document.getElementById('saal-speaker') || {}).textContent === 'Carla Weber'",
                    timeout=5)
            assert "Sie haben das Wort." in carla.locator("#speakers-you").inner_text()
            assert bernd.locator("#speakers-you").count() == 0
            first = console.locator("#timer-clock").inner_text()
            wait_js(console, "(t) => document.getElementById('timer-clock').textContent !== t", first, timeout=5)
            # Anna may now ask to intervene (someone else speaks): the button came with the live refresh.
            wait_js(anna, "() => document.getElementById('ask-intervention') !== null", timeout=5)
            anna.click("#ask-intervention")
            wait_js(console, "() => document.querySelector('#console-live [id^=admit-]') !== null", timeout=5)
            console.wait_for_selector("#speech-timer")

            # Layout at 360 px: nothing wider than the phone.
            assert anna.evaluate("document.documentElement.scrollWidth") <= 360
            console.screenshot(path=str(artifacts / "speakers-console.png"), full_page=False)
            screen.screenshot(path=str(artifacts / "speakers-saal.png"), full_page=False)
            anna.screenshot(path=str(artifacts / "speakers-member.png"), full_page=True)
            # The chair's own phone: the same console at 360 px, nothing wider than the screen.
            phone = open_page(DORA_IP, "/vorsitz", small, True)
            assert phone.locator("#console-queue .queue-name").all_inner_texts() == ["Bernd Müller"]
            assert phone.evaluate("document.documentElement.scrollWidth") <= 360
            phone.screenshot(path=str(artifacts / "speakers-console-phone.png"), full_page=True)
            for label, page in (("console", console), ("member", anna), ("speaker", carla), ("console 360", phone),
                                ("room screen", screen)):
                found = axe(page)
                assert not found, f"{label}: {found}"
        finally:
            browser.close()
    st = acts.state(db, s.id, now=time.time())
    assert st.speaking is not None and st.speaking.name == "Carla Weber"
