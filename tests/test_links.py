"""Links keep their state (issue 11): one helper (appliance/web/links.py) builds every internal URL and redirect,
carries the member's chosen language and the demo's virtual device, and never writes a malformed query.

(a) the helper itself; (b) a crawl of every member-facing page as a member (and a guest) in English and, in a
demo-mode app, as a virtual device: every link, form and source on every page keeps the state and leads
somewhere the device may go, and the crawl reaches every GET endpoint a member can reach and renders every
member-facing template; (c) the chat's no-JS post round trip; (d) the code builds no URL by hand.
"""

from __future__ import annotations

import dataclasses
import io
import re
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import pytest
from flask import g

from appliance.chat import rules as chat_rules
from appliance.chat import store as chat
from appliance.documents import service as documents
from appliance.helper.client import NullHelper
from appliance.presence.sources import PresenceDaemon
from appliance.push import hub as hub_mod
from appliance.rules.viewer import Viewer
from appliance.usecases import speakers, votes
from appliance.web import links
from appliance.web.app import create_app
from tests import pdf_samples
from tests.live_support import ANNA_IP, GUEST_IP, MACS, call, populate, token_in

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "appliance" / "web"
NEW_GUEST_IP, NEW_GUEST_MAC = "10.77.0.14", "02:5c:00:00:00:05"  # a guest's phone not yet let through
NO_KEY_IP, NO_KEY_MAC = "10.77.0.15", "02:5c:00:00:00:06"  # behind an external access point: no keyid, a code form
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")  # 1×1 PNG


# --- (a) the helper -----------------------------------------------------------------------------------

@pytest.fixture
def bare_app(cfg):
    return create_app(cfg, helper=NullHelper(), testing=True)


@pytest.fixture
def demo_app(cfg):
    return create_app(dataclasses.replace(cfg, demo=True), helper=NullHelper(), testing=True)


def malformed(url: str) -> str | None:
    """Why this URL's query is malformed, or None."""
    if url.count("?") > 1:
        return "more than one ?"
    for bad in ("&&", "?&", "&#", "?#"):
        if bad in url:
            return f"contains {bad}"
    if url.endswith(("?", "&")):
        return "ends in ? or &"
    return None


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query, keep_blank_values=True)


def test_link_carries_the_chosen_language_once_and_encodes_every_parameter(bare_app):
    with bare_app.test_request_context("/chat?lang=en&room=all"):
        url = links.link("chat.chat_page", room="faction:A&B ü?x=1")
        assert url.startswith("/chat?") and malformed(url) is None
        assert query(url) == {"lang": ["en"], "room": ["faction:A&B ü?x=1"]}
        assert links.link("chat.chat_page", room="all", _anchor="m-7").endswith("#m-7")
        assert links.link("documents.view", file_id=3) == "/unterlagen/ansehen/3?lang=en"
        assert links.link("portal.portal", lang="de") == "/portal?lang=de"  # a parameter overrides the state
        assert links.link("portal.portal", lang=None) == "/portal"  # None drops it
        assert links.bare("documents.view", file_id=3) == "/unterlagen/ansehen/3"
        resp = links.redirect_to("chat.chat_page", _code=303, room="all", _anchor="m-1")
        assert resp.status_code == 303 and resp.headers["Location"] == "/chat?lang=en&room=all#m-1"
        assert str(links.state_fields()) == '<input type="hidden" name="lang" value="en">'
        assert links.link_state() == "lang=en"


def test_state_only_when_chosen(bare_app):
    # A language guessed from the browser needs no carrying: the next request guesses the same.
    with bare_app.test_request_context("/portal", headers={"Accept-Language": "en"}):
        bare_app.preprocess_request()
        assert g.lang == "en" and links.link("portal.portal") == "/portal" and links.state() == {}
    with bare_app.test_request_context("/portal?lang=fr"):  # no such language: nothing to carry
        assert links.link("portal.portal") == "/portal" and str(links.state_fields()) == ""
    with bare_app.test_request_context("/portal/continue", method="POST", data={"lang": "en"}):
        assert links.link("portal.portal") == "/portal?lang=en"  # the form field chose it
    with bare_app.test_request_context("/chat?room=all"):
        assert links.link("chat.chat_page", room="all") == "/chat?room=all"
    with bare_app.app_context():  # outside a request (a notice built for the push channel): no state
        assert links.state() == {}


def test_as_only_in_demo_mode_and_only_an_address(bare_app, demo_app):
    with bare_app.test_request_context(f"/portal?as={ANNA_IP}&lang=en"):
        assert links.link("portal.home") == "/?lang=en"
    with demo_app.test_request_context(f"/portal?as={ANNA_IP}&lang=en"):
        assert query(links.link("chat.chat_page", room="all")) == {"as": [ANNA_IP], "lang": ["en"], "room": ["all"]}
        assert query(links.link("portal.portal", as_="10.77.0.50"))["as"] == ["10.77.0.50"]
    with demo_app.test_request_context("/portal?as=10.77.0.10%26x%3D1"):
        assert links.link("portal.home") == "/"


def test_here_is_the_same_page_with_its_parameters(bare_app, demo_app):
    with demo_app.test_request_context(f"/chat?room=faction:SPD&as={ANNA_IP}"):
        bare_app_url = links.here(lang="en")
        assert urlsplit(bare_app_url).path == "/chat"
        assert query(bare_app_url) == {"as": [ANNA_IP], "lang": ["en"], "room": ["faction:SPD"]}
    with bare_app.test_request_context("/unterlagen/ansehen/4?lang=en"):
        bare_app.preprocess_request()
        assert links.here(lang="de") == "/unterlagen/ansehen/4?lang=de"
    with bare_app.test_request_context("/chat/send?lang=en", method="POST"):  # a POST: the page it names
        links.set_here("chat.chat_page", room="all")
        assert links.here(lang="de") == "/chat?lang=de&room=all"
    with bare_app.test_request_context("/no/such/page?lang=en"):
        assert links.here(lang="de") == "/?lang=de"
    with bare_app.test_request_context("/clerk/sessions/1/import?lang=en", method="POST"):
        assert links.here(lang="de") == "/clerk/sessions?lang=de"


# --- (b) the crawl ------------------------------------------------------------------------------------

def _populate_all(cfg, db) -> dict:
    """populate()'s session with every kind of member page filled: chat rooms (direct messages on, guests
    chat), a message, documents under items (PDF, image, text, non-public, late) and one without an item."""
    s, ms = populate(cfg, db)
    chat.set_settings(db, s.id, chat_rules.Settings(direct_messages=True, guests_chat=True), "test")
    anna = Viewer("member", s.id, ms["Anna"], True, ANNA_IP, MACS[ANNA_IP])
    chat.post(db, anna, "all", "links-anna-00001", "Guten Morgen")
    chat.post(db, anna, "faction:SPD", "links-anna-00002", "Fraktion")
    blobs = documents.blobs_for(cfg.state_dir)
    pub = documents.add_item(db, s.id, "Haushalt & Finanzen", number="1")
    np_ = documents.add_item(db, s.id, "Personal", number="2", public=False)
    files = (("haushalt plan.pdf", pdf_samples.pdf(b"x" * 3000), pub, True, False),
             ("lageplan.png", PNG, pub, True, False),
             ("vermerk.txt", "Vermerk über die Sitzung\n".encode(), np_, False, False),
             ("nachtrag #1.pdf", pdf_samples.pdf(b"nachtrag"), None, True, True))
    for name, data, item, public, late in files:
        n, kind, stored = documents.store_upload(blobs, name, io.BytesIO(data))
        documents.add_file(db, s.id, name=n, stored=stored, mime=kind.mime, item_id=item, public=public, late=late)
    # The speakers list in play (issue 13): Anna chairs from her phone, the room is on TOP 1, Bernd speaks, Carla
    # waits, Anna asks to intervene (the chair's console and the start page's Wortmeldung block in every state).
    clerk = Viewer("clerk", s.id)
    speakers.set_chair(db, clerk, s.id, ms["Anna"].id)
    speakers.set_current_item(db, clerk, s.id, pub)
    speakers.add_by_hand(db, clerk, s.id, ms["Bernd"].id, now=time.time())
    speakers.add_by_hand(db, clerk, s.id, ms["Carla"].id, now=time.time())
    speakers.call_next(db, clerk, s.id, now=time.time())
    speakers.request(db, anna, s.id, "intervention", now=time.time())
    with open(cfg.leases_file, "a") as f:
        f.write(f"0 {NEW_GUEST_MAC} {NEW_GUEST_IP} * *\n0 {NO_KEY_MAC} {NO_KEY_IP} * *\n")
    db.execute("INSERT INTO stations(mac, interface, keyid, connected) VALUES (?, 'wlan0', 'guest', 1)",
               [NEW_GUEST_MAC])
    # A named vote on the room's item, closed (issue 14): its result on the start page, the chair's console and
    # the room screen (the open vote's form and count: tests/test_votes_browser.py). Anna and Bernd are present.
    PresenceDaemon(cfg).round(db)
    vote = votes.open_vote(db, clerk, s.id, question="Dem Haushalt zustimmen?", now=time.time(), mode="named")
    assert vote, vote.text
    assert votes.cast(db, anna, s.id, vote.vote_id, ms["Anna"].id, "yes", "links-vote-0001", now=time.time())
    assert votes.enter_by_hand(db, clerk, s.id, vote.vote_id, ms["Bernd"].id, "no", now=time.time())
    assert votes.close_vote(db, clerk, s.id, now=time.time())
    return {"s": s, "ms": ms}


def _record_templates(app):
    """app.templates_loaded: every template loaded (extends and include load through get_template too)."""
    app.templates_loaded = set()
    original = app.jinja_env.get_template

    def recording(name, *args, **kw):
        app.templates_loaded.add(name if isinstance(name, str) else name.name)
        return original(name, *args, **kw)
    app.jinja_env.get_template = recording
    return app


@pytest.fixture
def apps(cfg, db):
    data = _populate_all(cfg, db)
    plain = create_app(cfg, helper=NullHelper(), testing=True)
    demo = create_app(dataclasses.replace(cfg, demo=True), helper=NullHelper(), testing=True)
    yield _record_templates(plain), _record_templates(demo), data
    hub_mod.stop_all()


class Page(HTMLParser):
    """Every URL a page points to: (tag, attribute, url, extra) with extra = the form's method and fields, or
    whether an <a> is the language switch."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lang: str | None = None
        self.urls: list[tuple[str, str, str, dict]] = []
        self._form: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang")
        if tag == "form":
            self._form = {"method": (a.get("method") or "get").lower(), "fields": [], "action": a.get("action", "")}
            self.urls.append((tag, "action", a.get("action", ""), self._form))
        if tag in ("input", "textarea", "select") and self._form is not None and a.get("name"):
            self._form["fields"].append((a["name"], a.get("value") or "", a.get("type") or tag))
        for name, value in attrs:
            if value is None:
                continue
            pointing = name in ("href", "src", "action") and tag != "form"
            if pointing or (name.startswith("data-") and value.startswith("/")):
                switch = tag == "a" and "lang" in (a.get("class") or "").split()
                self.urls.append((tag, name, value, {"switch": switch}))

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


STAFF_AREAS = ("/clerk", "/technik", "/metrics")
# GET endpoints outside the staff areas that no page links, each with the reason.
NOT_LINKED = {
    "portal.captive_api": "RFC 8908 API: the phone's OS asks it (DHCP option 114), no page links it",
    "portal.healthz": "the service manager's health check",
    "presence.count": "the room screen's JSON, not a member page",
    "saal.screen": "the room screen: opened on the projector with its display link, which no page carries",
    "saal.events": "the room screen's push stream (its script opens it)",
}
# Templates no member page renders (saal/: the room screen, opened with a display link; test_saal.py).
STAFF_TEMPLATES = ("clerk/", "dashboard/", "auth/", "saal/", "documents/clerk.html", "live/attendance.html",
                   "live/attendance_print.html", "live/chat_clerk.html", "live/chat_print.html",
                   "speakers/minutes.html")


def member_endpoints(app) -> set[str]:
    return {r.endpoint for r in app.url_map.iter_rules()
            if "GET" in r.methods and r.endpoint != "static" and not r.rule.startswith(STAFF_AREAS)} - set(NOT_LINKED)


def member_templates() -> set[str]:
    root = WEB / "templates"
    names = {str(p.relative_to(root)) for p in root.rglob("*.html")}
    return {n for n in names if not n.startswith(STAFF_TEMPLATES)}


class Crawl:
    """Follow every internal GET link from the start pages, as one device, and check each URL and page."""

    def __init__(self, app, ip: str, state: dict[str, str], remote: str) -> None:
        self.app, self.ip, self.state, self.remote = app, ip, state, remote
        self.problems: list[str] = []
        self.endpoints: set[str] = set()
        self.seen: set[str] = set()
        self.adapter = app.url_map.bind("10.77.0.1")

    def start(self, path: str) -> str:
        return path + "?" + urlencode(self.state) if self.state else path

    def check_url(self, where: str, url: str) -> bool:
        """True when the URL is an internal one to follow."""
        why = malformed(url)
        if why:
            self.problems.append(f"{where}: {url!r} is malformed ({why})")
        parts = urlsplit(url)
        if parts.scheme or parts.netloc or not parts.path.startswith("/"):
            if not url.startswith("#"):
                self.problems.append(f"{where}: {url!r} is not a path inside the box")
            return False
        if parts.path.startswith("/static/"):
            if parts.query:
                self.problems.append(f"{where}: static {url!r} carries a query")
            return False
        q = dict(parse_qsl(parts.query))
        for key, value in self.state.items():
            if q.get(key) != value:
                self.problems.append(f"{where}: {url!r} lost {key}={value}")
        return True

    def fetch(self, url: str, where: str) -> None:
        if url in self.seen:
            return
        self.seen.add(url)
        path = urlsplit(url).path
        try:
            endpoint, _ = self.adapter.match(path, method="GET")
        except Exception as exc:  # noqa: BLE001 - a link to nowhere is a finding, not a crash
            self.problems.append(f"{where}: {url!r} matches no GET endpoint ({exc.__class__.__name__})")
            return
        self.endpoints.add(endpoint)
        resp = self.open(url)
        try:
            if resp.status_code >= 400:  # 403 (no access), 404 (a link to nothing), anything else
                self.problems.append(f"{where}: {url!r} answers {resp.status_code}")
                return
            if resp.status_code in (301, 302, 303, 307, 308):
                self.problems.append(f"{where}: {url!r} redirects to {resp.headers.get('Location')!r}")
                return
            if endpoint == "live.events":
                return  # a stream: its status is the answer; its body never ends
            if resp.mimetype == "text/html":
                self.page(url, resp.get_data(as_text=True))
            else:
                resp.get_data()
        finally:
            resp.close()

    def open(self, url: str):
        return call(self.app, url, self.remote, buffered=False)

    def page(self, url: str, html: str) -> None:
        page = parse(html)
        want = self.state.get("lang", "de")
        if page.lang != want:
            self.problems.append(f"{url}: <html lang={page.lang!r}>, not {want!r}")
        todo = []
        for tag, attr, target, extra in page.urls:
            where = f"{url} <{tag} {attr}>"
            if extra.get("switch"):
                # The language switch: the same page (path, room, q …) in the other language, `as` kept; it may
                # name what the page chose by default (the room of a bare /chat).
                q = dict(parse_qsl(urlsplit(target).query))
                here = dict(parse_qsl(urlsplit(url).query))
                other = "de" if want == "en" else "en"
                if malformed(target) or q.pop("lang", None) != other or urlsplit(target).path != urlsplit(url).path \
                        or any(q.get(k) != v for k, v in here.items() if k != "lang"):
                    self.problems.append(f"{where}: language switch {target!r} from {url!r}")
                continue
            if tag == "form":
                if not self.check_url(where, target):
                    continue
                if extra["method"] == "get":
                    # A browser drops a GET form's action query: the state must be in the form's fields.
                    fields, radios = [], set()
                    for n, v, kind in extra["fields"]:
                        if kind == "submit" or (kind == "radio" and n in radios):
                            continue  # a browser sends one choice of a radio group
                        radios.update([n] if kind == "radio" else [])
                        fields.append((n, v))
                    got = dict(fields)
                    for key, value in self.state.items():
                        if got.get(key) != value:
                            self.problems.append(f"{where}: GET form lacks the field {key}={value}")
                    fields = [(n, v or "Haushalt") if n == "q" else (n, v) for n, v in fields]
                    todo.append((urlsplit(target).path + "?" + urlencode(fields), where))
                continue
            if self.check_url(where, target):
                todo.append((target.split("#")[0], where))
        for target, where in todo:
            self.fetch(target, where)


def crawl(app, ip: str, state: dict[str, str], remote: str) -> Crawl:
    c = Crawl(app, ip, state, remote)
    for path in ("/portal", "/"):
        c.fetch(c.start(path), "start")
    return c


PERSONAS = {"member": ANNA_IP, "guest": GUEST_IP, "new guest": NEW_GUEST_IP, "no key": NO_KEY_IP}
MODES = ["english", "demo", "demo english"]


def run_crawl(apps, persona: str, mode: str) -> Crawl:
    plain, demo, _data = apps
    ip = PERSONAS[persona]
    state = {"lang": "en"} if "english" in mode else {}
    if mode.startswith("demo"):
        app, state, remote = demo, {"as": ip, **state}, "127.0.0.1"  # the demo is opened from the box itself
    else:
        app, remote = plain, ip
    c = Crawl(app, ip, state, remote)
    if persona in ("new guest", "no key"):
        # Not let through yet: the portal (its forms' actions checked by the crawl), then its first form's POST
        # ("Weiter") lets the phone through, and the redirect keeps the state.
        c.fetch(c.start("/portal"), "start")
        html = call(app, c.start("/portal"), remote).get_data(as_text=True)
        form = next(u for u in parse(html).urls if u[0] == "form")
        resp = call(app, form[2], remote, "POST", data={"csrf_token": token_in(html)})
        location = resp.headers.get("Location", "")
        if resp.status_code != 303 or dict(parse_qsl(urlsplit(location).query)) != state:
            c.problems.append(f"portal continue: {resp.status_code} to {location!r}")
        c.seen.clear()
    for path in ("/portal", "/"):
        c.fetch(c.start(path), "start")
    return c


@pytest.mark.parametrize("persona", list(PERSONAS))
@pytest.mark.parametrize("mode", MODES)
def test_every_link_on_every_member_page_keeps_language_and_device(apps, persona, mode):
    c = run_crawl(apps, persona, mode)
    assert not c.problems, "\n".join(c.problems)
    assert len(c.seen) > 8  # the crawl went somewhere
    if persona == "member":
        # The member reaches every member-facing GET endpoint: a page that drops the state cannot hide.
        assert c.endpoints == member_endpoints(c.app), (sorted(member_endpoints(c.app) - c.endpoints),
                                                        sorted(c.endpoints - member_endpoints(c.app)))


def test_the_crawls_render_every_member_facing_template(apps):
    """Each crawl above checks what it renders; together they render every template outside the staff areas,
    so a template whose links drop the state is always crawled."""
    for persona in PERSONAS:
        c = run_crawl(apps, persona, "demo english")
        assert not c.problems, "\n".join(c.problems)
    call(apps[1], f"/unterlagen/ansehen/99999?as={ANNA_IP}", "127.0.0.1")  # error.html: test_error_page_...
    missing = member_templates() - apps[1].templates_loaded
    assert not missing, f"templates no crawl rendered: {sorted(missing)}"


def test_error_page_keeps_the_state(apps):
    _plain, demo, _data = apps
    html = call(demo, f"/unterlagen/ansehen/99999?as={ANNA_IP}&lang=en", "127.0.0.1").get_data(as_text=True)
    page = parse(html)
    assert page.lang == "en"
    (switch,) = [u[2] for u in page.urls if u[3].get("switch")]
    assert urlsplit(switch).path == "/unterlagen/ansehen/99999"
    assert dict(parse_qsl(urlsplit(switch).query)) == {"as": ANNA_IP, "lang": "de"}


def test_the_crawl_finds_a_template_that_drops_the_state(apps, tmp_path):
    """Negative control: the same crawl with one template linking by hand fails."""
    plain, _demo, _data = apps
    source = (WEB / "templates" / "portal" / "_live.html").read_text()
    broken = source.replace("{{ link('chat.chat_page') }}", "/chat")
    assert broken != source
    from jinja2 import ChoiceLoader, DictLoader
    plain.jinja_loader  # noqa: B018 - created on first use; the override goes in front of it
    plain.jinja_env.loader = ChoiceLoader([DictLoader({"portal/_live.html": broken}), plain.jinja_env.loader])
    c = crawl(plain, ANNA_IP, {"lang": "en"}, ANNA_IP)
    assert any("'/chat' lost lang=en" in p for p in c.problems), c.problems


# --- (c) the chat without JavaScript -----------------------------------------------------------------

@pytest.mark.parametrize("demo_mode", [False, True])
def test_chat_post_without_js_keeps_room_and_language(apps, demo_mode):
    plain, demo, _data = apps
    app, remote = (demo, "127.0.0.1") if demo_mode else (plain, ANNA_IP)
    state = {"as": ANNA_IP, "lang": "en"} if demo_mode else {"lang": "en"}
    room = "faction:SPD"
    page = call(app, "/chat?" + urlencode({**state, "room": room}), remote).get_data(as_text=True)
    form = next(u for u in parse(page).urls if u[0] == "form")
    fields = {n: v for n, v, _ in form[3]["fields"]} | {"body": "Antrag & Frage?"}
    assert fields["room"] == room
    resp = call(app, form[2], remote, "POST", data=fields)
    assert resp.status_code == 303
    location = resp.headers["Location"]
    assert malformed(location) is None and "#m-" in location
    assert dict(parse_qsl(urlsplit(location).query)) == {**state, "room": room}
    back = call(app, location.split("#")[0], remote)
    assert back.status_code == 200 and parse(back.get_data(as_text=True)).lang == "en"
    assert "Antrag &amp; Frage?" in back.get_data(as_text=True)
    # A refused post renders the page again: its language switch goes to the room's page, not to /chat/send.
    too_long = {"body": "x" * (chat_rules.BODY_MAX + 1), "client_id": "links-too-long"}
    refused = call(app, form[2], remote, "POST", data=fields | too_long)
    assert refused.status_code == 400
    (switch,) = [u[2] for u in parse(refused.get_data(as_text=True)).urls if u[3].get("switch")]
    assert urlsplit(switch).path == "/chat"
    assert dict(parse_qsl(urlsplit(switch).query)) == {**state, "lang": "de", "room": room}


def test_the_tester_s_redirect_is_gone(apps):
    plain, _demo, _data = apps
    page = call(plain, "/chat?room=all&lang=en", ANNA_IP).get_data(as_text=True)
    resp = call(plain, "/chat/send?lang=en", ANNA_IP, "POST",
                data={"csrf_token": token_in(page), "room": "all", "client_id": "links-0003", "body": "Hallo"})
    assert resp.headers["Location"].startswith("/chat?lang=en&room=all#m-")
    assert "?room=all?lang=en" not in resp.headers["Location"]


# --- (d) nothing builds an internal URL by hand --------------------------------------------------------

VIEW_SOURCES = [*sorted(WEB.glob("*.py")), ROOT / "appliance" / "chat" / "views.py",
                ROOT / "appliance" / "presence" / "views.py"]
# redirect() calls that are not to an endpoint of this app, each with the reason.
REDIRECTS_ALLOWED = {
    ("portal.py", "redirect(cfg.portal_url, 302, Response=Response)"):
        "a foreign host: to the box's absolute portal URL",
    ("portal.py", 'redirect(f"http://{cfg.address}/", 302, Response=Response)'):
        "an admitted device on a foreign host: to the box",
    ("auth.py", 'redirect(safe_next(request.form.get("next"), role))'): "back to the checked page before login",
    ("auth.py", 'redirect(safe_next(request.args.get("next"), role))'): "back to the checked page before login",
    ("links.py", "redirect(link(endpoint, **params), _code)"): "the helper itself",
}


def test_views_build_every_url_through_the_helper():
    problems = []
    for path in VIEW_SOURCES:
        text = path.read_text()
        if path.name != "links.py":
            problems += [f"{path.name}: url_for( outside links.py" for _ in re.finditer(r"\burl_for\(", text)]
        for m in re.finditer(r"(?<![\w.])redirect\([^\n]*\)", text):
            call_text = m.group(0)
            if not any(path.name == f and call_text.startswith(c) for f, c in REDIRECTS_ALLOWED):
                problems.append(f"{path.name}: {call_text}")
        if path.name != "links.py":  # its docstring names what it prevents
            problems += [f"{path.name}: hand-built query {m.group(0)!r}"
                         for m in re.finditer(r"""["']\?[a-z_]+=|\+ ["']\?|&lang=|["']&[a-z_]+=""", text)]
    assert not problems, "\n".join(problems)


def test_templates_and_scripts_build_no_url_by_hand():
    problems = []
    for path in sorted((WEB / "templates").rglob("*.html")):
        text = path.read_text()
        problems += [f"{path.name}: {m.group(0)}" for m in re.finditer(r"url_for\('(?!static')[^)]*\)", text)]
        problems += [f"{path.name}: {m.group(0)}" for m in re.finditer(r"""(?:href|action|src)="(?:\?|/)[^"]*""", text)]
        problems += [f"{path.name}: {m.group(0)}" for m in re.finditer(r"\?[a-z_]+=\{\{|&[a-z_]+=\{\{", text)]
    for path in sorted((WEB / "static").rglob("*.js")):
        text = path.read_text()
        glued = re.finditer(r"""["'][?&][a-z_]*=?["']\s*\+|\+\s*["'][?&]""", text)
        problems += [f"{path.name}: {m.group(0)}" for m in glued]
    assert not problems, "\n".join(problems)


def test_push_notices_carry_no_state_of_the_request_that_made_them(apps, db):
    """A late document's notice goes to every reader: built in the clerk's (English) request it must not
    carry the clerk's language; the reader's page adds its own state (documents.js)."""
    plain, _demo, data = apps
    from appliance.web import documents as doc_views

    with plain.test_request_context("/clerk/sessions/1/unterlagen/hochladen?lang=en", method="POST"):
        f = documents.visible_files(db, Viewer("clerk", data["s"].id), data["s"].id)[0]
        notice = doc_views._notice(f)
    assert "lang" not in notice["url"] and "lang" not in notice["view_url"] and "?" not in notice["view_url"]



# --- (e) the staff pages -------------------------------------------------------------------------------

class StaffCrawl(Crawl):
    """The same crawl from a staff login (its cookie kept, as a laptop's browser keeps it)."""

    def __init__(self, app, state: dict[str, str], client) -> None:
        super().__init__(app, "10.77.0.200", state, "10.77.0.200")
        self.client = client

    def open(self, url: str):
        return self.client.get(url, base_url="http://10.77.0.1", environ_base={"REMOTE_ADDR": self.remote},
                               buffered=False)


def _staff_client(app, db, role: str):
    from appliance.rules import login as login_rules
    from appliance.usecases import login

    r = login_rules.ROLES[role]
    login.set_password(db, f"pw-{role}-for-this-test", role=r)
    c = app.test_client()
    env = {"base_url": "http://10.77.0.1", "environ_base": {"REMOTE_ADDR": "10.77.0.200"}}
    html = c.get(r.login_path, **env).get_data(as_text=True)
    resp = c.post(r.login_path, data={"csrf_token": token_in(html), "password": f"pw-{role}-for-this-test"}, **env)
    assert resp.status_code in (302, 303), (role, resp.status_code)
    return c


STAFF_STARTS = {"sitzungsdienst": ("/clerk/sessions",), "techniker": ("/technik/",)}


@pytest.mark.parametrize("mode", ["german", "english", "demo"])
@pytest.mark.parametrize("role", list(STAFF_STARTS))
def test_every_link_on_every_staff_page_answers(apps, db, role, mode):
    """Every link, form target and data URL a clerk or technician is shown, followed from that page, answers (no
    4xx, no 5xx, no redirect), keeps the chosen language, and is well formed — in demo mode too."""
    plain, demo, data = apps
    app = demo if mode == "demo" else plain
    state = {"lang": "en"} if mode == "english" else {}
    c = StaffCrawl(app, state, _staff_client(app, db, role))
    sid = data["s"].id
    starts = STAFF_STARTS[role] + ((f"/clerk/sessions/{sid}", f"/clerk/sessions/{sid}/unterlagen")
                                   if role == "sitzungsdienst" else ())
    for path in starts:
        c.fetch(c.start(path), "start")
    assert c.problems == [], "\n".join(c.problems)
    area = "/clerk" if role == "sitzungsdienst" else "/technik"
    staff_endpoints = {r.endpoint for r in app.url_map.iter_rules()
                       if "GET" in r.methods and r.rule.startswith(area) and "login" not in r.endpoint}
    assert len(c.endpoints & staff_endpoints) >= len(staff_endpoints) // 2, sorted(staff_endpoints - c.endpoints)
