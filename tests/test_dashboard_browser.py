"""The technicians' dashboard in Debian's Chromium with 30 replayed clients: table, a graph and an alert
render (screenshot: tests/artifacts/dashboard.png), and the page works with JavaScript switched off."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from appliance.web import auth
from tests.conftest import need, need_binary
from tests.test_monitor_daemon import scenario, ticks

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PASSWORD = "tech-Browser-pass-77"


def test_dashboard_renders_table_graph_and_alert(cfg, db, artifacts):
    need_binary("chromium")
    need(Path(CHROMIUM).exists(), f"needs {CHROMIUM} (Debian package chromium)")
    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    from appliance.helper.client import NullHelper
    from appliance.web import serve

    mon, fake, _iw, clock, members, macs = scenario(cfg, db)
    clock.now -= 122  # two minutes of history for the graphs, ending now
    ticks(mon, clock, 1)
    fake.emit("<3>AP-REJECTED-MAX-STA 02:5b:00:00:99:99")
    ticks(mon, clock, 120)
    mon.close()
    fake.close()
    auth.set_password(db, PASSWORD, role=auth.TECHNICIAN)
    httpd = make_server("127.0.0.1", 0, serve.make_wsgi(mon.cfg, helper=NullHelper()), threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_port}"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                # No JavaScript at all: login, table, sorting and filtering are plain links and forms.
                context = browser.new_context(java_script_enabled=False, viewport={"width": 1400, "height": 1000},
                                              locale="de-DE")
                page = context.new_page()
                page.set_default_timeout(15_000)
                page.goto(f"{base}/technik/")
                assert page.url.startswith(f"{base}/technik/login")
                page.fill("#password", PASSWORD)
                page.click("button[type=submit]")
                page.wait_for_selector("table.clients")
                assert page.locator("table.clients tbody tr").count() == 30
                assert page.locator("table.clients tbody tr").first.get_attribute("data-mac") == macs[0]
                assert members[0].name in page.inner_text("table.clients")
                # a flat line (30 clients all along) has a zero-height box: count the lines, measure the SVG
                assert page.locator("figure.graph-clients svg polyline").count() >= 1
                assert page.locator("figure.graph-clients svg").is_visible()
                box = page.locator("figure.graph-clients svg").bounding_box()
                assert box["width"] > 200 and box["height"] > 80
                alert = page.locator("li.alert", has_text="Funkmodul wlan0 voll")
                assert alert.is_visible()
                page.click("a:has-text('Signal')")  # sort by signal, descending
                page.wait_for_url("**order=desc**")
                page.select_option("#class", "bad")
                page.click("form.filter button")
                page.wait_for_url("**class=bad**")
                assert page.locator("table.clients tbody tr").count() == 2
                page.goto(f"{base}/technik/")
                page.screenshot(path=str(artifacts / "dashboard.png"), full_page=True)
                context.close()
            finally:
                browser.close()
    finally:
        httpd.shutdown()
        thread.join(timeout=10)
    assert (artifacts / "dashboard.png").stat().st_size > 20_000
