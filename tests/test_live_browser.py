"""Chat and attendance in Debian's Chromium: two member pages, a message typed on one appears on the other
(push channel + chat.js); the clerk's attendance page shows both members present.

Both pages come from 127.0.0.1, so the box's demo mode (`?as=<ip>`) gives each the identity of a device.
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pytest

from appliance.presence.sources import PresenceDaemon
from appliance.push import hub as hub_mod
from appliance.store import open_db
from appliance.web import auth
from tests.conftest import need, need_binary
from tests.live_support import ANNA_IP, BERND_IP, populate
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.browser
PASSWORD = "live-browser-pass-42"


@pytest.fixture
def server(cfg):
    need_binary("chromium")
    need(Path(CHROMIUM).exists(), f"needs {CHROMIUM} (Debian package chromium)")
    from werkzeug.serving import make_server

    from appliance.helper.client import NullHelper
    from appliance.web import serve

    cfg = dataclasses.replace(cfg, demo=True, presence_grace=60)
    db = open_db(cfg.db_path)
    populate(cfg, db)
    auth.set_password(db, PASSWORD, actor="test")
    PresenceDaemon(cfg).round(db)  # the radio says Anna's, Bernd's and Carla's phones are connected
    app = serve.make_wsgi(cfg, helper=NullHelper())
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, name="sbp-browser-web", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        hub_mod.stop_all()  # ends open streams so the server can shut down
        httpd.shutdown()
        thread.join(timeout=10)
        db.conn.close()


def test_message_typed_on_one_page_appears_on_the_other_and_attendance_shows_both(server):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            anna = browser.new_context().new_page()
            bernd = browser.new_context().new_page()
            anna.goto(f"{server}/chat?room=all&as={ANNA_IP}")
            bernd.goto(f"{server}/chat?room=all&as={BERND_IP}")
            for page in (anna, bernd):
                expect(page.locator("body")).to_have_attribute("data-live", "open", timeout=10_000)
            anna.fill("#chat-body", "Hallo Bernd, <b>Antrag</b> 3?")
            anna.click("#chat-form button[type=submit]")
            expect(bernd.locator("#chat-log .chat-body")).to_have_text(["Hallo Bernd, <b>Antrag</b> 3?"],
                                                                       timeout=10_000)
            expect(anna.locator("#chat-log li[data-msg]")).to_have_count(1, timeout=10_000)  # confirmed once
            bernd.fill("#chat-body", "Ja, gern.")
            bernd.press("#chat-body", "Enter")  # a newline only; the button sends
            bernd.click("#chat-form button[type=submit]")
            expect(anna.locator("#chat-log .chat-body")).to_have_text(["Hallo Bernd, <b>Antrag</b> 3?", "Ja, gern."],
                                                                      timeout=10_000)
            assert anna.evaluate("window.sitzungsboxChat.outbox().length") == 0
            assert bernd.locator("#chat-log b").count() == 0  # text, never markup

            clerk = browser.new_context().new_page()
            clerk.goto(f"{server}/clerk/login")
            clerk.fill("input[name=password]", PASSWORD)
            clerk.click("form button[type=submit]")
            clerk.goto(f"{server}/clerk/attendance")
            present = clerk.locator("tr.att-present td:first-child")
            expect(present).to_have_count(3)  # Carla's phone is connected too (live_support)
            names = " ".join(present.all_inner_texts())
            assert "Anna Schmidt" in names and "Bernd Müller" in names
        finally:
            browser.close()
