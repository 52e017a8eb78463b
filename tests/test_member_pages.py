"""Members find their way (issue 12): one navigation on every member page, error pages in words with a way on,
one answer for a device that is not let through yet, and a chat that shows the conversation first, rooms as a
compact list with unread counts, direct messages through a member picker and a notice for a muted member.

Flask test client, no cookies (as a captive mini-browser); the browser layout at 360 px is
tests/test_member_layout_browser.py.
"""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlsplit

import pytest
from flask import abort

from appliance.chat import rules as chat_rules
from appliance.chat import store as chat
from appliance.documents import service as documents
from appliance.helper.client import NullHelper
from appliance.push import hub as hub_mod
from appliance.rules.viewer import Viewer
from appliance.sessions import service
from appliance.sessions.roster import MemberRow
from appliance.web import i18n
from appliance.web.app import create_app
from tests import pdf_samples
from tests.live_support import ANNA_IP, BERND_IP, GUEST_IP, MACS, call, populate, token_in

NEW_GUEST_IP, NEW_GUEST_MAC = "10.77.0.14", "02:5c:00:00:00:05"  # a guest's phone before „Weiter“
STRANGER_IP = "10.77.0.99"  # no lease: the box does not know the device
FACTIONS = ("SPD", "CDU", "GRÜNE", "FDP", "")


class Nav(HTMLParser):
    """The member navigation of a page: [(text, href, aria-current)], and where things are in the page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.navs = 0
        self.items: list[list] = []
        self._in = False
        self._a: list | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "nav" and "member-nav" in (a.get("class") or ""):
            self.navs += 1
            self._in = True
        elif tag == "a" and self._in:
            self._a = ["", a.get("href"), a.get("aria-current")]

    def handle_endtag(self, tag):
        if tag == "nav":
            self._in = False
        elif tag == "a" and self._a is not None:
            self._a[0] = self._a[0].strip()
            self.items.append(self._a)
            self._a = None

    def handle_data(self, data):
        if self._a is not None:
            self._a[0] += data


def nav_of(html: str) -> Nav:
    n = Nav()
    n.feed(html)
    return n


@pytest.fixture
def box(cfg, db):
    s, ms = populate(cfg, db)
    chat.set_settings(db, s.id, chat_rules.Settings(direct_messages=True), "test")
    # A council's worth of people for the picker: 60 more, in four factions and none.
    service.insert_members(db, s.id, [MemberRow(f"Ratsmitglied {i:02d} Mustermann-Lüdenscheidt", FACTIONS[i % 5],
                                                "member", True, "Rat") for i in range(60)])
    blobs = documents.blobs_for(cfg.state_dir)
    n, kind, stored = documents.store_upload(blobs, "haushalt.pdf", io.BytesIO(pdf_samples.pdf(b"x" * 2000)))
    fid = documents.add_file(db, s.id, name=n, stored=stored, mime=kind.mime)
    with open(cfg.leases_file, "a") as f:
        f.write(f"0 {NEW_GUEST_MAC} {NEW_GUEST_IP} * *\n")
    db.execute("INSERT INTO stations(mac, interface, keyid, connected) VALUES (?, 'wlan0', 'guest', 1)",
               [NEW_GUEST_MAC])
    app = create_app(cfg, helper=NullHelper(), testing=True)
    yield {"app": app, "s": s, "ms": ms, "file": fid, "db": db}
    hub_mod.stop_all()


def get(box, path, ip=ANNA_IP, **kw):
    return call(box["app"], path, ip, **kw)


def html(box, path, ip=ANNA_IP) -> str:
    r = get(box, path, ip)
    assert r.status_code == 200, (path, r.status_code, r.headers.get("Location"))
    return r.get_data(as_text=True)


# --- the navigation --------------------------------------------------------------------------------------

def member_pages(box) -> dict[str, str | None]:
    """Every member page -> the nav entry it marks as current."""
    return {"/": "Start", "/unterlagen": "Tagesordnung", "/unterlagen?q=haus": "Tagesordnung",
            f"/unterlagen/ansehen/{box['file']}": "Tagesordnung", "/chat": "Chat", "/chat?room=faction:SPD": "Chat",
            "/chat/personen": "Chat", "/chat/personen?q=lüden": "Chat", "/portal": None}


def test_every_member_page_has_one_nav_with_the_current_page_marked(box):
    for path, current in member_pages(box).items():
        nav = nav_of(html(box, path))
        assert nav.navs == 1, path
        assert [i[0].split()[0] for i in nav.items] == ["Start", "Tagesordnung", "Chat"], path
        assert [urlsplit(i[1]).path for i in nav.items] == ["/", "/unterlagen", "/chat"], path
        marked = [(i[0].split()[0], i[2]) for i in nav.items if i[2]]
        if current is None:
            assert marked == [], path
        else:
            expected = "page" if urlsplit(path).path in ("/", "/unterlagen", "/chat") else "true"
            assert marked == [(current, expected)], path


def test_the_nav_keeps_the_language_and_a_guest_gets_it_too(box):
    nav = nav_of(html(box, "/unterlagen?lang=en"))
    assert [i[0] for i in nav.items] == ["Start", "Agenda", "Chat"]
    assert all(dict(parse_qsl(urlsplit(i[1]).query)) == {"lang": "en"} for i in nav.items)
    for path in ("/", "/unterlagen", "/chat"):
        assert nav_of(html(box, path, GUEST_IP)).navs == 1, path


# --- one answer for a device that is not let through yet --------------------------------------------------

def member_routes(box) -> list[str]:
    f = box["file"]
    return ["/", "/unterlagen", "/unterlagen?q=x", f"/unterlagen/ansehen/{f}", f"/unterlagen/datei/{f}/haushalt.pdf",
            "/unterlagen/alle.zip", "/unterlagen/neu?seit=0", "/chat", "/chat?room=all", "/chat/personen"]


@pytest.mark.parametrize("who", ["guest before Weiter", "unknown device"])
def test_a_device_not_let_through_gets_the_portal_from_every_member_page(box, who):
    ip = NEW_GUEST_IP if who == "guest before Weiter" else STRANGER_IP
    for path in member_routes(box):
        for lang in ("", "en"):
            url = path + (("&" if "?" in path else "?") + "lang=en" if lang else "")
            r = get(box, url, ip)
            assert r.status_code == 302, (url, r.status_code)
            location = urlsplit(r.headers["Location"])
            assert location.path == "/portal", url
            assert dict(parse_qsl(location.query)) == ({"lang": "en"} if lang else {}), url
    portal = html(box, "/portal", ip)
    assert nav_of(portal).navs == 0  # nothing to navigate to before „Weiter“


def test_after_weiter_the_same_pages_open(box):
    page = html(box, "/portal", NEW_GUEST_IP)
    r = get(box, "/portal/continue", NEW_GUEST_IP, method="POST", data={"csrf_token": token_in(page)})
    assert r.status_code == 303
    for path in ("/", "/unterlagen", "/chat"):
        assert nav_of(html(box, path, NEW_GUEST_IP)).navs == 1


# --- error pages ------------------------------------------------------------------------------------------

def _abort_app(box):
    app = box["app"]

    def boom(code: int):
        abort(code)
    app.add_url_rule("/test-abort/<int:code>", "test_abort", boom)
    return app


def ways(page: str) -> list[tuple[str, str]]:
    block = re.search(r'<ul class="error-ways" id="error-ways">(.*?)</ul>', page, re.S).group(1)
    found = re.findall(r'href="([^"]+)"[^>]*>(.*?)</a>', block)
    return [(urlsplit(h).path, re.sub(r"<[^>]+>", "", t)) for h, t in found]


@pytest.mark.parametrize("code", [400, 403, 404, 405, 413, 429, 500])
def test_error_pages_say_what_happened_in_words_and_show_a_way_on(box, code):
    app = _abort_app(box)
    with app.test_request_context():
        words, again, start, portal = (i18n.t(f"error.{code}"), i18n.t("error.way.again"), i18n.t("error.way.start"),
                                       i18n.t("error.way.portal"))
    for ip, home in ((ANNA_IP, ("/", start)), (STRANGER_IP, ("/portal", portal))):
        r = call(app, f"/test-abort/{code}", ip)
        page = r.get_data(as_text=True)
        assert r.status_code == code
        assert words in page and f"Fehler {code}<" not in page and f"Fehlercode {code}" in page
        expected = ([("/test-abort/" + str(code), again)] if str(code) in ("413", "429", "500") else []) + [home]
        assert ways(page) == expected, (ip, code)
        assert (nav_of(page).navs == 1) == (ip == ANNA_IP)  # a member's error page keeps the navigation
    en = call(app, f"/test-abort/{code}?lang=en", ANNA_IP).get_data(as_text=True)
    assert "Sorry, that did not work" in en and ("/?lang=en", "To the start page") in [
        (urlsplit(h).path + "?" + urlsplit(h).query, t) for h, t in re.findall(r'href="([^"]+)"[^>]*>([^<]+)</a>', en)]


def test_the_csrf_page_and_the_document_refusal_have_a_way_on(box):
    r = get(box, "/portal/continue", NEW_GUEST_IP, method="POST", data={"csrf_token": "forged"})
    page = r.get_data(as_text=True)
    assert r.status_code == 400 and "Das Formular ist abgelaufen" in page
    assert ways(page)[-1] == ("/portal", "Zur Anmeldeseite des Sitzungs-WLANs")
    r = get(box, "/unterlagen/ansehen/99999")
    page = r.get_data(as_text=True)
    assert r.status_code == 404 and "nicht freigegeben" in page and ways(page) == [("/", "Zur Startseite")]
    assert nav_of(page).navs == 1
    clerk = call(box["app"], "/clerk/no-such-page", ANNA_IP)
    assert clerk.status_code == 404 and ways(clerk.get_data(as_text=True)) == [("/clerk/sessions", "Zur Übersicht")]


# --- the chat ---------------------------------------------------------------------------------------------

def test_the_conversation_comes_before_the_rooms_and_no_wall_of_direct_links(box):
    page = html(box, "/chat")
    assert page.index('id="chat-log"') < page.index('id="chat-form"') < page.index('id="chat-rooms"')
    assert page.count(i18n.load()["de"]["chat.room.dm"].split("{")[0]) == 0  # no "Direkt mit …" without a talk
    assert 'id="chat-picker-link"' in page
    rooms = re.search(r'id="chat-rooms".*?</nav>', page, re.S).group(0)
    assert len(re.findall(r"<li>", rooms)) == 3  # announcements, everyone, own faction
    # A direct conversation with messages is listed (and only with the one person).
    anna, bernd = (Viewer("member", box["s"].id, box["ms"][n], True, ip, MACS[ip])
                   for n, ip in (("Anna", ANNA_IP), ("Bernd", BERND_IP)))
    room = chat_rules.dm_room(anna.member.id, bernd.member.id)
    chat.post(box["db"], bernd, room, "dm-bernd-000001", "Kurze Frage zu TOP 3")
    rooms = re.search(r'id="chat-rooms".*?</nav>', html(box, "/chat"), re.S).group(0)
    assert "Direkt mit Bernd Müller" in rooms and rooms.count("Direkt mit") == 1
    # Without direct messages: no picker.
    chat.set_settings(box["db"], box["s"].id, chat_rules.Settings(direct_messages=False), "test")
    assert 'id="chat-picker-link"' not in html(box, "/chat")
    assert get(box, "/chat/personen").status_code == 404


def test_the_picker_groups_by_faction_and_filters_by_name(box):
    page = html(box, "/chat/personen")
    groups = re.findall(r'<h2 id="pg-\d+">([^<]+)</h2>', page)
    assert groups == ["Ohne Fraktion", "CDU", "FDP", "GRÜNE", "SPD"]  # the session's order (faction, name)
    people = re.findall(r'<li data-name="[^"]*"><a href="([^"]+)">([^<]+)</a>', page)
    assert len(people) == 63 and "Anna Schmidt" not in [p[1] for p in people]  # everyone but oneself
    bernd = next(h for h, n in people if n == "Bernd Müller")
    me, him = box["ms"]["Anna"].id, box["ms"]["Bernd"].id
    assert dict(parse_qsl(urlsplit(bernd.replace("&amp;", "&")).query)) == {"room": chat_rules.dm_room(me, him)}
    found = html(box, "/chat/personen?q=m%C3%BCller")
    assert re.findall(r'<a href="[^"]+">([^<]+)</a></li>', found) == ["Bernd Müller"]
    assert "1 von 63 Personen" in found
    none = html(box, "/chat/personen?q=niemand")
    assert '<p id="picker-none">' in none and 'class="picker-group"' not in none
    assert html(box, "/chat/personen?q=ratsmitglied+07").count('class="picker-group"') == 1
    # The filter form works without JS: a GET form that keeps the language.
    en = html(box, "/chat/personen?lang=en")
    assert re.search(r'<form method="get" action="/chat/personen\?lang=en"', en)
    assert '<input type="hidden" name="lang" value="en">' in en
    assert get(box, "/chat/personen", GUEST_IP).status_code == 404  # guests write nobody directly


def unread_line(page: str) -> str | None:
    m = re.search(r'<p id="chat-unread"><strong>([^<]+)</strong>', page)
    return m.group(1) if m else None


def test_unread_counts_go_up_with_a_message_and_down_after_reading(box):
    db, s, ms = box["db"], box["s"], box["ms"]
    bernd = Viewer("member", s.id, ms["Bernd"], True, BERND_IP, MACS[BERND_IP])
    anna = Viewer("member", s.id, ms["Anna"], True, ANNA_IP, MACS[ANNA_IP])
    html(box, "/chat?room=all")  # Anna has read everything
    assert unread_line(html(box, "/")) is None
    chat.post(db, bernd, "all", "unread-bernd-01", "Hallo")
    assert unread_line(html(box, "/")) == "1 neue Nachricht im Chat"
    chat.post(db, bernd, "all", "unread-bernd-02", "Noch da?")
    room = chat_rules.dm_room(ms["Anna"].id, ms["Bernd"].id)
    chat.post(db, bernd, room, "unread-bernd-03", "Unter uns")
    chat.post(db, anna, "all", "unread-anna-001", "Ja")  # one's own message is never new
    start = html(box, "/")
    assert unread_line(start) == "3 neue Nachrichten im Chat"
    assert [i[0] for i in nav_of(start).items][2] == "Chat 3 neu"
    faction = html(box, "/chat?room=faction:SPD")
    rooms = dict(re.findall(r'<li><a href="[^"]+"(?: aria-current="page")?>([^<]+)</a> <span class="count">([^<]+)<',
                            faction))
    assert rooms == {"Alle": "2 neu", "Direkt mit Bernd Müller": "1 neu"}
    assert re.search(r'Bernd Müller</a> <span class="count">1 neu<', html(box, "/chat/personen?q=bernd"))
    html(box, "/chat?room=all")
    assert unread_line(html(box, "/")) == "1 neue Nachricht im Chat"
    html(box, "/chat?" + "room=" + room)
    assert unread_line(html(box, "/")) is None
    # A hidden message is not new; another reader has their own count; a guest's is kept by device.
    assert sum(chat.unread(db, bernd).values()) == 1  # Anna's "Ja"
    guest = Viewer("guest", s.id, None, True, GUEST_IP, MACS[GUEST_IP])
    chat.post(db, Viewer("clerk", s.id), "announce", "unread-clerk-01", "Pause bis 19 Uhr")
    assert chat.unread(db, guest) == {"announce": 1}
    assert unread_line(html(box, "/", GUEST_IP)) == "1 neue Nachricht im Chat"
    html(box, "/chat?room=announce", GUEST_IP)
    assert chat.unread(db, guest) == {}


def test_a_muted_member_is_told(box):
    db, s, ms = box["db"], box["s"], box["ms"]
    assert 'id="chat-muted"' not in html(box, "/chat")
    chat.mute(db, s.id, f"member:{ms['Anna'].id}", "clerk")
    page = html(box, "/chat")
    assert 'id="chat-muted"' in page and "Der Sitzungsdienst hat Sie stummgeschaltet" in page
    assert 'id="chat-form"' not in page and 'id="chat-readonly"' in page
    assert "The session office has muted you" in html(box, "/chat?lang=en")
    assert 'id="chat-muted"' not in html(box, "/chat", BERND_IP)
    chat.mute(db, s.id, f"member:{ms['Anna'].id}", "clerk", muted=False)
    assert 'id="chat-muted"' not in html(box, "/chat")


def test_read_marks_never_move_back_and_retention_knows_them(box):
    db, s, ms = box["db"], box["s"], box["ms"]
    anna = Viewer("member", s.id, ms["Anna"], True, ANNA_IP, MACS[ANNA_IP])
    bernd = Viewer("member", s.id, ms["Bernd"], True, BERND_IP, MACS[BERND_IP])
    ids = [chat.post(db, bernd, "all", f"marks-bernd-{i:04d}", f"Nachricht {i}")[0].id for i in range(3)]
    chat.mark_read(db, anna, "all", ids[2])
    chat.mark_read(db, anna, "all", ids[0])  # an older page loaded late
    assert db.execute("SELECT last_id FROM chat_reads WHERE participant = ?",
                      [f"member:{ms['Anna'].id}"]).fetchone()[0] == ids[2]
    from appliance import retention
    assert "chat_reads" in retention.SESSION_TABLES


def test_the_page_s_script_marks_live_messages_read_never_beyond_the_room(box):
    db, s, ms = box["db"], box["s"], box["ms"]
    bernd = Viewer("member", s.id, ms["Bernd"], True, BERND_IP, MACS[BERND_IP])
    page = html(box, "/chat?room=all")
    form = re.search(r'<form method="post" action="([^"]+)" id="chat-read" hidden>', page).group(1)
    msg, _ = chat.post(db, bernd, "all", "read-bernd-0001", "Live angekommen")
    assert unread_line(html(box, "/")) == "1 neue Nachricht im Chat"
    data = {"csrf_token": token_in(page), "room": "all", "last_id": str(msg.id + 1000)}
    assert get(box, form, BERND_IP, method="POST", data=data).status_code == 400  # another device's token
    assert get(box, form, method="POST", data=data).status_code == 204
    assert unread_line(html(box, "/")) is None
    later, _ = chat.post(db, bernd, "all", "read-bernd-0002", "Danach")  # the mark did not run ahead
    assert chat.unread(db, Viewer("member", s.id, ms["Anna"], True, ANNA_IP, MACS[ANNA_IP])) == {"all": 1}
    # A room the device may not read is not marked.
    assert get(box, form, method="POST", data=data | {"room": "faction:CDU"}).status_code == 204
    assert db.execute("SELECT COUNT(*) FROM chat_reads WHERE room = 'faction:CDU'").fetchone()[0] == 0
    assert later.id > msg.id
