"""Activating a session needs the confirmation (issue 12), in Debian's Chromium (Playwright, sync API).

The clerk prepares next week's committee while tonight's council meeting is live with phones connected. The
button „Diese Sitzung aktivieren“ leads to the confirmation page, which names the running session and how many
devices and admissions it would cost; „Zurück“ changes nothing; ticking the box and confirming switches the
session. Screenshots at 1280×800 and 360×740 in tests/artifacts/, and one of a clerk form whose check box sits
beside its label (asserted by the boxes' positions).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.sessions import service
from appliance.sessions.roster import MemberRow
from tests.conftest import need, need_binary
from tests.live_support import populate

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PASSWORD = "guarded-browser-pass-7"
SIZES = {"desktop": (1280, 800), "phone": (360, 740)}


@pytest.fixture
def box(cfg, db):
    """The real app (serve.make_wsgi) under werkzeug; tonight's session live with 4 phones, 3 of them admitted."""
    need_binary("chromium")
    need(Path(CHROMIUM).exists(), f"needs {CHROMIUM} (Debian package chromium)")
    import threading

    from werkzeug.serving import make_server

    from appliance.helper.client import NullHelper
    from appliance.web import auth, serve

    live, _ms = populate(cfg, db)
    committee = service.create_session(db, body="Hauptausschuss", title="Ausschuss am 8. Dezember",
                                       day="2026-12-08")
    service.insert_members(db, committee.id, [MemberRow("Erik Neu", "FDP", "member", True, "Hauptausschuss")])
    auth.set_password(db, PASSWORD, actor="test")
    httpd = make_server("127.0.0.1", 0, serve.make_wsgi(cfg, helper=NullHelper()), threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, name="sbx-guarded-web", daemon=True)
    thread.start()
    try:
        yield {"base": f"http://127.0.0.1:{httpd.server_port}", "live": live, "committee": committee}
    finally:
        httpd.shutdown()
        thread.join(timeout=10)


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


def logged_in(browser, base: str, size: tuple[int, int]):
    context = browser.new_context(viewport={"width": size[0], "height": size[1]}, locale="de-DE")
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{base}/clerk/login")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/clerk/sessions")
    return context, page


def same_line(page, box_selector: str, label_selector: str) -> None:
    """The check box and its label share one line: their vertical extents overlap, the label to the right."""
    box, label = page.locator(box_selector).bounding_box(), page.locator(label_selector).bounding_box()
    assert box and label
    assert label["x"] >= box["x"] + box["width"], (box, label)
    assert box["y"] < label["y"] + label["height"] and label["y"] < box["y"] + box["height"], (box, label)


def no_inline_style_blocked(page) -> None:
    """Nothing on the page carries a style attribute or block that the CSP (style-src 'self') would drop."""
    assert page.evaluate("() => document.querySelectorAll('[style], style').length") == 0


@pytest.mark.parametrize("screen", SIZES)
def test_activating_a_session_needs_the_confirmation(box, browser, artifacts, db, screen):
    base, live, committee = box["base"], box["live"], box["committee"]
    context, page = logged_in(browser, base, SIZES[screen])
    try:
        page.goto(f"{base}/clerk/sessions/{committee.id}")
        page.get_by_role("link", name="Diese Sitzung aktivieren").click()
        page.wait_for_selector("#guard-impact")
        impact = page.inner_text("#guard-impact")
        assert "Die laufende Sitzung „12. Sitzung des Rates“ wird beendet" in impact
        assert ("4 verbundene Geräte werden getrennt und müssen sich mit den Karten der neuen Sitzung neu "
                "verbinden.") in impact
        assert "3 Freigaben werden entzogen." in impact
        assert service.active_session(db).id == live.id  # the click only showed what would happen
        no_inline_style_blocked(page)
        same_line(page, "#confirm", "label[for=confirm]")
        # Touch targets: the box's line, the buttons.
        for selector in ("#guard-submit", "#guard-back"):
            assert page.locator(selector).bounding_box()["height"] >= 44, selector
        page.screenshot(path=str(artifacts / f"guarded-activate-confirm-{screen}.png"), full_page=True)

        # A stray click on the button does nothing: the browser wants the box ticked first.
        page.click("#guard-submit")
        assert page.url.endswith(f"/clerk/sessions/{committee.id}/activate")
        assert service.active_session(db).id == live.id

        # Back: nothing changed.
        page.click("#guard-back")
        page.wait_for_url(f"{base}/clerk/sessions/{committee.id}")
        assert service.active_session(db).id == live.id
        assert page.locator("#activate-link").is_visible()

        # Again, and this time confirmed.
        page.click("#activate-link")
        page.wait_for_selector("#guard-impact")
        page.check("#confirm")
        page.click("#guard-submit")
        page.wait_for_selector("#session-active")
        assert service.active_session(db).id == committee.id
        assert f"Sitzung {committee.id} ist jetzt aktiv." in page.inner_text("main")
        page.screenshot(path=str(artifacts / f"guarded-activate-done-{screen}.png"), full_page=True)
    finally:
        context.close()


def test_clerk_forms_put_labels_beside_their_boxes(box, browser, artifacts):
    base, live = box["base"], box["live"]
    context, page = logged_in(browser, base, SIZES["desktop"])
    try:
        page.goto(f"{base}/clerk/sessions/{live.id}/unterlagen")
        no_inline_style_blocked(page)
        for box_id in ("up-nonpublic", "up-late", "zip-nonpublic", "item-nonpublic", "wipe-np", "wipe-all"):
            same_line(page, f"#{box_id}", f"label[for={box_id}]")
        # Text fields and selects: usable size, text no smaller than 16 px (no zoom on iOS).
        for selector in ("#item", "#item-number", "#item-title", "#oparl-url", "#oparl-hosts"):
            field = page.locator(selector)
            assert field.bounding_box()["height"] >= 44, selector
            assert float(field.evaluate("e => getComputedStyle(e).fontSize").removesuffix("px")) >= 16, selector
        # Focus is visible: a keyboard user sees where they are.
        page.focus("#item-title")
        page.keyboard.press("Tab")
        assert page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle") != "none"
        page.locator("#up-nonpublic").scroll_into_view_if_needed()
        page.locator("form[aria-labelledby=upload-h]").screenshot(path=str(artifacts / "guarded-form-checkboxes.png"))
        # A label around its box (the chat settings): one line, as tall as a touch target.
        page.goto(f"{base}/clerk/chat")
        label = page.locator("label:has(> input[name=direct_messages])").bounding_box()
        check = page.locator("input[name=direct_messages]").bounding_box()
        assert 44 <= label["height"] < 2 * 44 and label["y"] <= check["y"] <= label["y"] + label["height"]
    finally:
        context.close()
