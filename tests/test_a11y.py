"""Accessibility (issue 12): axe-core over every page of every role, with data and without, at 1280×800 and
360×740, in Debian's Chromium: 0 violations of WCAG 2.1 A and AA.

axe-core is a test dependency from npm (package.json / package-lock.json; `make test` runs `npm ci`); the browser
context runs its script in each page it opens (Playwright's init script: Chromium's own, beside the page's CSP),
the box never serves it. The pages come from the real app (serve.make_wsgi under werkzeug on 127.0.0.1) in
demo mode, where `?as=<ip>` gives a page the identity of a member's or guest's device; clerks and technicians
log in through the login form. Which pages: every GET endpoint of the app is visited or named in SKIPPED with
the reason, so a new page cannot be forgotten.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from appliance.chat import rules as chat_rules
from appliance.config import Config
from appliance.presence.sources import PresenceDaemon
from appliance.push import hub as hub_mod
from appliance.rules.viewer import Viewer
from appliance.sessions import service
from appliance.store import open_db
from appliance.usecases import displays, votes
from appliance.web import auth
from tests.conftest import ROOT, need, need_binary
from tests.live_support import ANNA_IP, GUEST_IP
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS
from tests.test_links import NEW_GUEST_IP, NO_KEY_IP, WEB, _populate_all, _record_templates
from tests.test_monitor_daemon import scenario, ticks

pytestmark = pytest.mark.browser

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
VIEWPORTS = {"1280x800": {"width": 1280, "height": 800}, "360x740": {"width": 360, "height": 740}}
CLERK_PW, TECH_PW = "a11y-Clerk-pass-12", "a11y-Tech-pass-12"
UNKNOWN_IP = "10.77.0.99"  # a device the box does not know (no lease)

# GET endpoints that are no page (nothing for axe to read), each with the reason.
SKIPPED = {
    "static": "stylesheets, scripts and images: checked inside the pages that use them",
    "documents.viewer_data": "the PDF bytes the viewer reads (Range requests); the viewer page is checked",
    "portal.captive_api": "JSON (RFC 8908 captive-portal API)",
    "portal.healthz": "text/plain health check",
    "presence.count": "JSON for the room screen",
    "live.events": "the push stream (text/event-stream)",
    "saal.events": "the room screen's push stream (text/event-stream)",
    "metrics": "Prometheus text",
    "dashboard.api": "JSON",
    "dashboard.live": "the dashboard's live parts, swapped into /technik/ (checked there)",
    "dashboard.graph": "SVG image inside /technik/ (its text alternative is checked there)",
    "documents.since": "JSON, the agenda's fallback without the push channel",
    "documents.prefetch_list": "JSON, what a device may fetch ahead before the session (the agenda page is checked)",
    "documents.download": "a file download",
    "documents.all_zip": "a ZIP download",
    "clerk.cards_sheet": "PDF",
    "clerk.cards_zip": "ZIP",
    "clerk.card_pdf": "PDF",
    "clerk.guest_poster_pdf": "PDF",
    "presence.attendance_csv": "CSV",
    "chat.chat_csv": "CSV",
    "speakers.minutes_csv": "CSV",
    "votes_clerk.minutes_csv": "CSV",
    "votes_clerk.minutes_json": "JSON",
    "speakers.member_live": "the Wortmeldung block alone, swapped into / by live-reload.js (checked there)",
    "votes.member_live": "the Abstimmung block alone, swapped into / by live-reload.js (checked there)",
}

# Templates that are no page of their own, each with the reason.
NOT_A_PAGE = {
    "dashboard/live.html": "the dashboard's live parts for its script (dashboard.live): the same macros of "
                           "dashboard/_parts.html that /technik/ renders",
    "speakers/member_live.html": "the start page's Wortmeldung block for live-reload.js (speakers.member_live): "
                                 "the same portal/_speakers.html that / renders",
    "votes/member_live.html": "the start page's Abstimmung block for live-reload.js (votes.member_live): the same "
                              "portal/_votes.html that / renders",
}

AXE_RUN = """async (tags) => {
  const r = await axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});
  return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, url: v.helpUrl,
                                 targets: v.nodes.map(n => n.target.join(' '))}));
}"""


def _cfg(root: Path) -> Config:
    return Config(state_dir=root / "state", run_dir=root / "run", helper_socket=root / "run" / "helper.sock",
                  leases_file=root / "state" / "dnsmasq.leases", hostapd_ctrl_dir=root / "hostapd",
                  demo=True, push_poll=0.05).validate()


@dataclasses.dataclass
class Box:
    base: str
    cfg: Config
    db: object
    adapter: object  # the app's URL map, to name the endpoint of each page visited


@pytest.fixture
def serve_box():
    from werkzeug.serving import make_server

    from appliance.helper.client import NullHelper
    from appliance.web import serve

    started, apps = [], []

    def start(cfg: Config) -> Box:
        db = open_db(cfg.db_path)
        auth.set_password(db, CLERK_PW, actor="test")
        auth.set_password(db, TECH_PW, actor="test", role=auth.TECHNICIAN)
        app = _record_templates(serve.make_wsgi(cfg, helper=NullHelper()))
        apps.append(app)
        httpd = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=httpd.serve_forever, name="sbx-a11y-web", daemon=True)
        thread.start()
        started.append((httpd, thread, db))
        return Box(f"http://127.0.0.1:{httpd.server_port}", cfg, db, app.url_map.bind("127.0.0.1"))

    start.apps = apps
    yield start
    hub_mod.stop_all()  # ends open streams so the servers can shut down
    for httpd, thread, db in started:
        httpd.shutdown()
        thread.join(timeout=10)
        db.conn.close()


class Audit:
    """Runs axe on pages and keeps every violation and every endpoint visited."""

    def __init__(self) -> None:
        self.findings: list[str] = []
        self.endpoints: set[str] = set()
        self.pages = 0
        self.seen: set[tuple[str, str]] = set()  # (size and state, URL): a redirect to a page already checked
        self.refused: list[str] = []  # what the page's CSP refused (an inline style or script): unstyled pages

    def console(self, message) -> None:
        if "Content Security Policy" in message.text:
            self.refused.append(f"{message.location.get('url')}: {message.text[:200]}")

    def check(self, page, label: str) -> None:
        for v in page.evaluate(AXE_RUN, TAGS):
            targets = "; ".join(v["targets"][:8]) + (" …" if len(v["targets"]) > 8 else "")
            self.findings.append(f"{label} {page.url}\n    {v['id']} ({v['impact']}): {v['help']}\n"
                                 f"    targets: {targets}\n    {v['url']}")
        self.pages += 1

    def visit(self, page, box: Box, path: str, label: str) -> None:
        resp = page.goto(box.base + path)
        assert resp is not None and resp.status < 500, f"{path}: {resp and resp.status}"
        if "/login" in page.url and "/login" not in path:
            raise AssertionError(f"{label}: {path} asked for the login again ({page.url})")
        self.endpoints.add(box.adapter.match(urlsplit(path).path, method="GET")[0])
        seen = (label.split("]")[0], page.url)
        if seen not in self.seen:
            self.seen.add(seen)
            self.check(page, label)


def login(audit: Audit, page, box: Box, area: str, password: str, label: str, wrong: bool) -> None:
    """The login page (wrong: and its answer to a wrong password), then logged in."""
    audit.visit(page, box, f"/{area}/login", label)
    if wrong:
        page.fill("#password", "falsch")
        page.click("form button[type=submit]")
        page.wait_for_selector("#login-error")
        audit.check(page, f"{label} (wrong password)")
    page.fill("#password", password)
    page.click("form button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)


def member_pages(audit: Audit, page, box: Box, label: str, files: list[int], rooms: list[str],
                 ips: tuple[str, ...] = (ANNA_IP, GUEST_IP, NEW_GUEST_IP, NO_KEY_IP, UNKNOWN_IP)) -> None:
    """Every page a device sees: the portal in each state (ips: the devices whose portal differs), the start
    page, documents, the chat, an error."""
    for ip in ips:
        audit.visit(page, box, f"/portal?as={ip}", f"{label} portal {ip}")
        if ip == NO_KEY_IP:  # the personal-code form, then its answer to a wrong code
            page.fill("#member-code", "falsch")
            page.locator("#member-code").press("Enter")
            page.wait_for_selector("#code-error")
            audit.check(page, f"{label} portal {ip} (wrong code)")
    audit.visit(page, box, "/portal", f"{label} portal (demo, no device)")
    audit.visit(page, box, f"/portal?as={ANNA_IP}&lang=en", f"{label} portal en")
    for ip in (ANNA_IP, GUEST_IP):
        for path in ("/", "/unterlagen", "/chat"):
            audit.visit(page, box, f"{path}?as={ip}", f"{label} {ip}")
    for ip in (ANNA_IP, GUEST_IP):  # the chair's console: Anna chairs when there is data; the guest's 403 page
        audit.visit(page, box, f"/vorsitz?as={ip}", f"{label} console {ip}")
    for query in ("", "&q=Bernd", "&q=niemand"):  # the people for a direct message: all, found, none
        audit.visit(page, box, f"/chat/personen?as={ANNA_IP}{query}", f"{label} picker")
    for room in rooms:
        audit.visit(page, box, f"/chat?as={ANNA_IP}&room={room}", f"{label} chat {room}")
        if files and room == "all":
            assert page.locator("#chat-log li[data-msg]").count() > 0, "the chat with data shows no message"
    for file_id in files:
        audit.visit(page, box, f"/unterlagen/ansehen/{file_id}?as={ANNA_IP}", f"{label} file {file_id}")
    audit.visit(page, box, f"/unterlagen/ansehen/99999?as={ANNA_IP}", f"{label} error 404")


def clerk_pages(audit: Audit, page, box: Box, label: str, sessions: list[int], more: tuple[str, ...] = ()) -> None:
    for path in ("/clerk/", "/clerk/sessions", "/clerk/attendance", "/clerk/attendance/print", "/clerk/chat",
                 "/clerk/chat/print", "/clerk/chat/wipe", "/clerk/presence/wipe", "/vorsitz"):
        audit.visit(page, box, path, label)
    for sid in sessions:
        for sub in ("", "/cards", "/guest-poster", "/rotate", "/activate", "/unterlagen", "/unterlagen/loeschen",
                    "/unterlagen/loeschen?what=all", "/redner", "/abstimmungen", "/abstimmungen/protokoll"):
            audit.visit(page, box, f"/clerk/sessions/{sid}{sub}", label)
    for path in more:
        audit.visit(page, box, path, label)


def clerk_answers(audit: Audit, page, box: Box, label: str) -> None:
    """The pages that answer a clerk's form: refused with the problems named, then done with a note."""
    audit.visit(page, box, "/clerk/sessions", label)
    # Submitted as the button would (requestSubmit; a click's hit test misses on a phone-zoomed wide page).
    form = page.locator("form:has(#title)")
    with page.expect_navigation():
        form.evaluate("f => { f.noValidate = true; f.requestSubmit(); }")  # the server's answer to an empty form
    page.wait_for_selector("#session-problems")
    audit.check(page, f"{label} new session refused")
    page.fill("#body", "Rat der Stadt")
    page.fill("#title", "Zusatzsitzung")
    page.fill("#date", "2026-12-08")
    with page.expect_navigation():
        form.evaluate("f => f.requestSubmit()")
    page.wait_for_selector(".flash-ok")
    audit.check(page, f"{label} new session created")
    upload = page.locator("form:has(#csv)")
    for csv in (b"Name;Rolle\n;Mitglied\n", b"Name;Fraktion;Rolle\nAnna Schmidt;SPD;Mitglied\n"):
        page.set_input_files("#csv", files=[{"name": "liste.csv", "mimeType": "text/csv", "buffer": csv}])
        with page.expect_navigation():
            upload.evaluate("f => f.requestSubmit()")
        audit.check(page, f"{label} member list import")
    assert page.locator(".flash-ok").count() > 0, "the second list was not imported"
    # A display link for the room screen: the page that shows it once.
    page.fill("#display-label", "Beamer Ratssaal")
    with page.expect_navigation():
        page.locator("form:has(#display-label)").evaluate("f => f.requestSubmit()")
    page.wait_for_selector("#display-once")
    audit.check(page, f"{label} display link created")


def tech_pages(audit: Audit, page, box: Box, label: str, macs: list[str]) -> None:
    audit.visit(page, box, "/technik/", label)
    for mac in macs:
        assert page.locator("table.clients tbody tr").count() > 0 and page.locator("li.alert-group").count() > 0
        audit.visit(page, box, f"/technik/?mac={mac}&sort=signal&order=desc", label)


def _clerk_votes(db, data: dict) -> None:
    """The clerk's votes page and minutes with data (issue 14): a deputy standing in, a conflict, a closed named
    vote with a vote entered by hand, paper ballots with and without a lot."""
    s, ms = data["s"], data["ms"]
    clerk, now = Viewer("clerk", s.id), time.time()
    assert votes.set_deputy(db, clerk, s.id, ms["Dora"].id, ms["Carla"].id, now=now)
    assert votes.set_conflicted(db, clerk, s.id, None, ms["Carla"].id, True, now=now)
    for m in (ms["Anna"], ms["Bernd"]):  # present (tests.test_links' data may have them present already)
        db.execute("INSERT OR IGNORE INTO presence_intervals(session_id, member_id, start, start_source) "
                   "VALUES (?, ?, ?, 'wifi')", [s.id, m.id, now - 60])
    opened = votes.open_vote(db, clerk, s.id, question="Dem Haushalt zustimmen?", now=now, mode="named")
    if opened:  # (another feature's data may hold a vote open)
        votes.enter_by_hand(db, clerk, s.id, opened.vote_id, ms["Anna"].id, "yes", now=now)
        votes.close_vote(db, clerk, s.id, now=now + 1)
    votes.record_paper(db, clerk, s.id, "election", title="Vorsitz Ausschuss", now=now, counts={"A": 3, "B": 3})
    votes.record_paper(db, clerk, s.id, "hare_niemeyer", title="Ausschuss", now=now, counts={"SPD": 2, "CDU": 1},
                       seats=3)


def with_data(root: Path, start) -> tuple[Box, dict]:
    """A monitor with two minutes of history and alerts, then populate's session with members, items, files (a
    Tischvorlage among them), chat rooms and messages, and presence."""
    cfg = _cfg(root)
    db = open_db(cfg.db_path)
    mon, fake, _iw, clock, _members, macs = scenario(cfg, db)
    clock.now -= 62
    ticks(mon, clock, 1)
    fake.emit("<3>AP-REJECTED-MAX-STA 02:5b:00:00:99:99")
    ticks(mon, clock, 60)
    mon.close()
    fake.close()
    data = _populate_all(cfg, db)
    _clerk_votes(db, data)
    PresenceDaemon(cfg).round(db)
    db.conn.close()
    box = start(dataclasses.replace(cfg, radios=mon.cfg.radios))
    ms = data["ms"]
    files = [r[0] for r in box.db.execute("SELECT id FROM doc_files ORDER BY id").fetchall()]
    rooms = ["all", "announce", "faction:SPD", chat_rules.dm_room(ms["Anna"].id, ms["Bernd"].id)]
    sessions = [s.id for s in service.list_sessions(box.db)]
    sid = data["s"].id
    item = box.db.execute("SELECT id FROM doc_items WHERE session_id = ? ORDER BY id", [sid]).fetchone()[0]
    asked = (f"/clerk/sessions/{sid}/unterlagen/datei/{files[0]}/loeschen",  # the questions before a deletion
             f"/clerk/sessions/{sid}/unterlagen/punkt/{item}/loeschen")
    # The room screen: the active session's, one waiting for its session, a revoked and an unknown link.
    screens = [f"/saal/{displays.create_display(cfg, box.db, i, 'test', 'Beamer')[1]}" for i in sessions]
    gone, token = displays.create_display(cfg, box.db, sid, "test")
    displays.revoke_display(cfg, box.db, gone.id, "test")
    screens += [f"/saal/{token}", "/saal/unbekannt"]
    return box, {"files": files, "rooms": rooms, "sessions": sessions, "macs": macs[:1], "asked": asked,
                 "screens": screens}


def test_every_page_of_every_role_has_no_wcag21_aa_violations(serve_box, tmp_path):
    need_binary("chromium")
    need(Path(CHROMIUM).exists(), f"needs {CHROMIUM} (Debian package chromium)")
    need(AXE.exists(), f"needs {AXE.relative_to(ROOT)} (make test installs it: npm ci --ignore-scripts)")
    from playwright.sync_api import sync_playwright

    audit = Audit()
    full, data = with_data(tmp_path / "full", serve_box)
    empty = serve_box(_cfg(tmp_path / "empty"))
    contexts: list = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            tabs: dict = {}

            def tab(box: Box, size: str, area: str | None = None, password: str = "", label: str = ""):
                """One context per box, role and size, kept for every state: a staff login starts a new cookie
                session (rotation), and the two boxes share the host 127.0.0.1 and so their cookies."""
                key = (box.base, area, size)
                for other, idle in tabs.items():  # one page at work: no other page's polls or stream meanwhile
                    if other != key and idle.url != "about:blank":
                        idle.goto("about:blank")
                if key in tabs:
                    return tabs[key]
                viewport = VIEWPORTS[size]
                phone = {"is_mobile": True, "has_touch": True} if viewport["width"] < 600 else {}
                context = browser.new_context(viewport=viewport, locale="de-DE", **phone)
                context.set_default_timeout(15_000)
                context.add_init_script(path=str(AXE))  # in every page and frame, before the page's own scripts
                contexts.append(context)
                page = tabs[key] = context.new_page()
                page.on("console", audit.console)
                if area:  # the login's error page is the same on both boxes: checked on the first
                    login(audit, page, box, area, password, label, wrong=box is empty)
                return page

            # Without data: no session at all, then an empty one (no members, items or messages). The box knows
            # no device: every address gets the same portal.
            for size in VIEWPORTS:
                label = f"[{size}, no session]"
                member_pages(audit, tab(empty, size), empty, label, [], [], ips=(ANNA_IP,))
                clerk_pages(audit, tab(empty, size, "clerk", CLERK_PW, label), empty, label, [])
                tech_pages(audit, tab(empty, size, "technik", TECH_PW, label), empty, label, [])
            s = service.create_session(empty.db, body="Rat", title="Leere Sitzung", day="2026-12-07")
            service.set_active(empty.db, s.id)
            for size in VIEWPORTS:
                label = f"[{size}, empty session]"
                member_pages(audit, tab(empty, size), empty, label, [], ["all"], ips=(ANNA_IP,))
                clerk_pages(audit, tab(empty, size, "clerk"), empty, label, [s.id])
            # With data.
            for size in VIEWPORTS:
                label = f"[{size}, with data]"
                member_pages(audit, tab(full, size), full, label, data["files"], data["rooms"])
                clerk = tab(full, size, "clerk", CLERK_PW, label)
                clerk_pages(audit, clerk, full, label, data["sessions"], data["asked"])
                clerk_answers(audit, clerk, full, label)
                tech_pages(audit, tab(full, size, "technik", TECH_PW, label), full, label, data["macs"])
                for path in data["screens"]:  # no login, as the projector opens it (at 1920×1080: test_saal_browser)
                    audit.visit(page=tab(full, size), box=full, path=path, label=f"{label} room screen")
            while contexts:
                contexts.pop().close()
            # Negative control: the same audit finds what a page gets wrong.
            control, context = Audit(), browser.new_context()
            context.add_init_script(path=str(AXE))
            page = context.new_page()
            page.set_content('<html lang="de"><title>x</title><main><h1>x</h1><input id="n"></main></html>')
            control.check(page, "control")
            assert "label (critical)" in "".join(control.findings) and "targets: #n" in "".join(control.findings), \
                control.findings
            context.close()
        finally:
            browser.close()
    endpoints = {r.endpoint for r in full.adapter.map.iter_rules() if "GET" in r.methods}
    forgotten = endpoints - audit.endpoints - set(SKIPPED)
    assert not forgotten, f"GET endpoints neither checked nor in SKIPPED (with a reason): {sorted(forgotten)}"
    assert not set(SKIPPED) - endpoints, f"SKIPPED names endpoints that no longer exist: {set(SKIPPED) - endpoints}"
    rendered = set().union(*(app.templates_loaded for app in serve_box.apps))
    templates = {str(p.relative_to(WEB / "templates")) for p in (WEB / "templates").rglob("*.html")}
    unchecked = templates - rendered - set(NOT_A_PAGE)
    assert not unchecked, f"templates no checked page rendered: {sorted(unchecked)}"
    assert not list((ROOT / "appliance").rglob("axe*")), "axe-core is a test dependency: the box never serves it"
    assert not audit.refused, "the CSP refused parts of pages:\n" + "\n".join(sorted(set(audit.refused)))
    assert not audit.findings, f"{len(audit.findings)} WCAG 2.1 A/AA violations on {audit.pages} pages:\n" + \
        "\n".join(audit.findings)
