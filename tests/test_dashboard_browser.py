"""The technicians' dashboard in Debian's Chromium with 30 replayed clients: table, a graph and an alert
render (screenshot: tests/artifacts/dashboard.png), and the page works with JavaScript switched off; with
JavaScript it follows the monitor live while the search box keeps what is typed and the focus
(tests/artifacts/dashboard-1280x800.png, dashboard-360x740.png)."""

from __future__ import annotations

import os
import threading
import time
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
                assert page.locator("#refresh").is_visible() and not page.locator("#live-toggle").is_visible()
                # the graphs are images drawn on the box (loading=lazy loads at once without JS)
                page.click("nav.tech-nav a[href='#history']")
                page.wait_for_load_state("load")
                assert page.locator("#graph-clients").evaluate("img => img.naturalWidth") > 0
                box = page.locator("#graph-clients").bounding_box()
                assert box["width"] > 200 and box["height"] > 50
                # alerts: one line per kind; opening it (a <details>, no JS) shows the device, linked to its row
                group = page.locator("li.alert-group[data-kind='weak_signal']")
                assert group.is_visible() and "2" in group.locator("summary .n").inner_text()
                assert not group.locator("ul.alert-items").is_visible()
                group.locator("summary").click()
                link = group.locator("ul.alert-items a", has_text=members[0].name)
                link.click()
                assert page.url.endswith("#dev-" + macs[0].replace(":", "-"))
                assert page.locator("tr:target").get_attribute("data-mac") == macs[0]
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


def set_devices(cfg, macs: list[str], prefix: str, now: float) -> None:
    """The lease file with other host names: the next snapshot shows them in the table."""
    tmp = cfg.leases_file.with_suffix(".tmp")
    tmp.write_text("".join(f"{int(now) + 3600} {mac} 10.77.1.{i + 1} {prefix}-{i + 1} *\n"
                           for i, mac in enumerate(macs)))
    os.replace(tmp, cfg.leases_file)


def test_live_updates_keep_what_is_typed_and_the_focus(cfg, db, artifacts):
    need_binary("chromium")
    need(Path(CHROMIUM).exists(), f"needs {CHROMIUM} (Debian package chromium)")
    from playwright.sync_api import expect, sync_playwright
    from werkzeug.serving import make_server

    from appliance.helper.client import NullHelper
    from appliance.web import serve

    mon, fake, _iw, clock, members, macs = scenario(cfg, db)
    clock.now -= 62
    ticks(mon, clock, 1)
    fake.emit("<3>AP-REJECTED-MAX-STA 02:5b:00:00:99:99")
    ticks(mon, clock, 60)
    auth.set_password(db, PASSWORD, role=auth.TECHNICIAN)
    httpd = make_server("127.0.0.1", 0, serve.make_wsgi(mon.cfg, helper=NullHelper()), threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_port}"

    def snapshot(prefix: str) -> None:  # the monitor's next second, with the devices renamed
        set_devices(mon.cfg, macs, prefix, time.time())
        clock.now = float(int(time.time()))
        ticks(mon, clock, 1)

    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="de-DE")
                page = context.new_page()
                page.set_default_timeout(15_000)
                problems: list[str] = []
                page.on("pageerror", lambda e: problems.append(str(e)))
                page.on("console", lambda m: problems.append(m.text) if m.type == "error" and "404" not in m.text
                        else None)  # the browser's own /favicon.ico: not ours
                page.on("response", lambda r: problems.append(r.url) if r.status >= 400 and "favicon" not in r.url
                        else None)
                page.goto(f"{base}/technik/")
                page.fill("#password", PASSWORD)
                page.click("button[type=submit]")
                page.wait_for_selector("table.clients")
                assert page.locator("#live-toggle").is_visible()  # the script runs (pause: WCAG 2.2.2)
                # overview and alerts on the first screen, the graphs one click away (and no 6,800 px down)
                assert page.locator("#overview").bounding_box()["y"] < 300
                assert page.locator("#alerts").bounding_box()["y"] < 800
                assert page.locator("nav.tech-nav a[href='#history']").is_visible()
                assert page.locator("#history").bounding_box()["y"] < 3200
                page.screenshot(path=str(artifacts / "dashboard-1280x800.png"))
                stamp = page.inner_text("[data-live-part=status]")
                page.locator("li.alert-group[data-kind='weak_signal'] summary").click()  # a group opened

                page.click("#q")
                page.keyboard.type("Mitgl")
                snapshot("tablet")
                expect(page.locator("table.clients tbody")).to_contain_text("tablet-1")
                page.keyboard.type("ied 0")
                snapshot("laptop")
                expect(page.locator("table.clients tbody")).to_contain_text("laptop-1")

                assert page.input_value("#q") == "Mitglied 0"  # every key typed is still there
                assert page.evaluate("document.activeElement.id") == "q"  # and the caret, at its end
                assert page.evaluate("document.activeElement.selectionStart") == len("Mitglied 0")
                assert "tablet-" not in page.inner_text("table.clients tbody")  # the table did change, twice
                assert page.inner_text("[data-live-part=status]") != stamp
                assert page.locator("#alerts-weak_signal").get_attribute("open") is not None  # still open
                assert page.locator("table.clients tbody tr").count() == 30  # typing alone filters nothing
                page.keyboard.press("Enter")  # the GET form: the search goes into the URL
                page.wait_for_url("**q=Mitglied+0**")
                assert page.input_value("#q") == "Mitglied 0"
                names = page.locator("table.clients tbody tr td:first-child").all_inner_texts()
                assert names and all(n.startswith("Mitglied 0") for n in names)
                snapshot("phone")  # live updates keep the applied search
                expect(page.locator("table.clients tbody")).to_contain_text("phone-1")
                assert page.locator("table.clients tbody tr").count() == len(names)
                # a link inside a part that is swapped keeps the keyboard focus
                link_id = "l-dev-" + macs[0].replace(":", "-")
                page.focus(f"#{link_id}")
                snapshot("desk")
                expect(page.locator("table.clients tbody")).to_contain_text("desk-1")
                assert page.evaluate("document.activeElement.id") == link_id
                # the updates can be paused (WCAG 2.2.2) and resumed
                page.click("#live-toggle")
                expect(page.locator("#live-toggle")).to_have_text("Live-Aktualisierung fortsetzen")
                expect(page.locator("#live-note")).to_have_text("Angehalten")
                snapshot("pad")
                page.click("#live-toggle")
                expect(page.locator("table.clients tbody")).to_contain_text("pad-1")
                assert problems == []

                page.set_viewport_size({"width": 360, "height": 740})
                page.goto(f"{base}/technik/")
                page.wait_for_selector("table.clients")
                assert page.evaluate("document.documentElement.scrollWidth") <= 360  # only the table scrolls
                assert page.locator("#q").bounding_box()["width"] <= 360
                page.screenshot(path=str(artifacts / "dashboard-360x740.png"))
                context.close()
            finally:
                browser.close()
    finally:
        httpd.shutdown()
        thread.join(timeout=10)
        mon.close()
        fake.close()
    assert (artifacts / "dashboard-1280x800.png").stat().st_size > 20_000
