"""The room screen (issue 13): display links (create, revoke: one transaction, one audit entry each), the rule
whether a link is live, what the screen may show (never a non-public item, its speakers, the chat), the display
as a push viewer (only 'all' and its own events; its stream ends when the link is revoked)."""

from __future__ import annotations

import dataclasses
import logging
import re
import time

import pytest

from appliance.chat import store as chat
from appliance.documents import service as documents_service
from appliance.push import hub as hub_mod
from appliance.push import publish, visible
from appliance.push.events import since
from appliance.rules import display as rules
from appliance.rules.viewer import Viewer
from appliance.sessions import service
from appliance.usecases import displays
from appliance.web import saal
from tests.conftest import logged_in_clerk
from tests.live_support import ANNA_IP, call, populate
from tests.test_push import read_events

NOW = 1_800_000_000.0


# --- rules, as tables ------------------------------------------------------------------------------------------

def _d(session_id: int = 1, revoked: bool = False) -> rules.Display:
    return rules.Display(7, session_id, "Beamer", "2026-12-07T10:00:00.000000Z",
                         revoked_at="2026-12-07T11:00:00.000000Z" if revoked else None)


@pytest.mark.parametrize(("display", "active", "expected"), [
    (None, 1, rules.UNKNOWN),
    (None, None, rules.UNKNOWN),
    (_d(1), 1, rules.LIVE),
    (_d(1), 2, rules.WAITING),  # another session runs: this screen names its own and waits
    (_d(1), None, rules.WAITING),
    (_d(1, revoked=True), 1, rules.REVOKED),  # revoked beats live
    (_d(1, revoked=True), None, rules.REVOKED),
])
def test_standing(display, active, expected):
    assert rules.standing(display, active) == expected


PUBLIC = rules.Item("5", "Bebauungsplan Nord", True)
SECRET = rules.Item("12", "Grundstücksankauf Müllerstraße", False)
SPEAKER = rules.Speaker("Anna Schmidt", "SPD", "contribution", NOW - 10, 300)
QUEUE = (rules.Speaker("Bernd Müller", "CDU"), rules.Speaker("Carla Weber", "SPD", "point_of_order"))


@pytest.mark.parametrize(("room", "expected"), [
    (rules.Room(), rules.Room()),
    (rules.Room(PUBLIC, SPEAKER, QUEUE, True, "Pause bis 15 Uhr"), rules.Room(PUBLIC, SPEAKER, QUEUE, True,
                                                                             "Pause bis 15 Uhr")),
    # A non-public item: neither it, nor who speaks, nor who waits; the chair's announcement stays.
    (rules.Room(SECRET, SPEAKER, QUEUE, True, "Bitte den Saal verlassen"),
     rules.Room(announcement="Bitte den Saal verlassen", nonpublic=True)),
    (rules.Room(SECRET), rules.Room(nonpublic=True)),
])
def test_public_shows_nothing_of_a_nonpublic_item(room, expected):
    assert rules.public(room) == expected


@pytest.mark.parametrize(("started", "limit", "now", "left", "text"), [
    (None, 300, NOW, None, ""),
    (NOW, None, NOW, None, ""),
    (NOW, 300, NOW, 300, "5:00"),
    (NOW, 300, NOW + 0.2, 300, "5:00"),  # ceil: a second counts until it is over
    (NOW, 300, NOW + 55.5, 245, "4:05"),
    (NOW, 300, NOW + 300, 0, "0:00"),
    (NOW, 300, NOW + 312, -12, "-0:12"),
    (NOW, 60, NOW + 200, -140, "-2:20"),
])
def test_remaining_and_clock(started, limit, now, left, text):
    assert rules.remaining(started, limit, now) == left
    assert rules.clock(left) == text


def test_a_display_sees_only_all_and_its_own_events(cfg, db):
    s, ms = populate(cfg, db)
    screen = Viewer("display", s.id, display_id=7)
    expected = {"all": True, "display:7": True, "display:8": False, "members": False, "clerks": False,
                f"member:{ms['Anna'].id}": False, "chat:all": False, "chat:announce": False, "doc:1": False}
    checks = {"chat": lambda *a: True, "doc": lambda *a: True}  # even checks that let everybody through
    assert {a: visible(screen, a, db, checks) for a in expected} == expected
    # and no other viewer gets a display's event
    for other in (Viewer("clerk", s.id), Viewer("member", s.id, ms["Anna"], True),
                  Viewer("display", s.id, display_id=8)):
        assert not visible(other, "display:7", db, checks)


# --- the acts --------------------------------------------------------------------------------------------------

def _audit(db) -> list[tuple]:
    return [tuple(r) for r in db.execute("SELECT actor, action, detail FROM audit ORDER BY id").fetchall()]


def test_create_display_stores_only_the_hash_and_audits(cfg, db, caplog):
    s, _ms = populate(cfg, db)
    before = _audit(db)
    caplog.set_level(logging.DEBUG)
    display, token = displays.create_display(cfg, db, s.id, "clerk@10.77.0.2", "  Beamer   Ratssaal ")
    assert len(token) >= 43 and display.label == "Beamer Ratssaal" and display.session_id == s.id
    assert not display.revoked and display.last_seen is None
    assert _audit(db)[len(before):] == [("clerk@10.77.0.2", "display.create", f"session={s.id} display={display.id}")]
    dump = "\n".join(str(tuple(r)) for t in ("displays", "audit", "settings", "push_events")
                     for r in db.execute(f"SELECT * FROM {t}").fetchall())  # noqa: S608 - our table names
    assert token not in dump and displays.token_hash(token) in dump
    assert token not in caplog.text
    assert displays.find(db, token) == display
    assert displays.find(db, token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert displays.find(db, "") is None and displays.find(db, "x" * 5000) is None
    other, token2 = displays.create_display(cfg, db, s.id, "clerk")
    assert token2 != token and other.id != display.id
    assert displays.for_session(db, s.id) == [display, other]


def test_create_display_refuses_a_long_label_and_an_unknown_session(cfg, db):
    s, _ms = populate(cfg, db)
    before = _audit(db)
    with pytest.raises(displays.DisplayError, match="zu lang"):
        displays.create_display(cfg, db, s.id, "clerk", "x" * 81)
    with pytest.raises(service.SessionError):
        displays.create_display(cfg, db, s.id + 99, "clerk")
    assert _audit(db) == before and displays.for_session(db, s.id) == []


def test_revoke_display_audits_once_and_tells_only_that_screen(cfg, db):
    s, _ms = populate(cfg, db)
    display, token = displays.create_display(cfg, db, s.id, "clerk")
    kept, _ = displays.create_display(cfg, db, s.id, "clerk")
    last = max([e.id for e in since(db, 0)] or [0])
    before = _audit(db)
    revoked = displays.revoke_display(cfg, db, display.id, "clerk@10.77.0.2")
    assert revoked.revoked and displays.find(db, token) == revoked
    assert rules.standing(revoked, s.id) == rules.REVOKED
    assert _audit(db)[len(before):] == [("clerk@10.77.0.2", "display.revoke", f"session={s.id} display={display.id}")]
    (ev,) = since(db, last)
    assert (ev.topic, ev.audience, ev.session_id) == ("display.revoked", f"display:{display.id}", s.id)
    # again: nothing more happens
    displays.revoke_display(cfg, db, display.id, "clerk")
    assert len(_audit(db)) == len(before) + 1 and len(since(db, last)) == 1
    assert not displays.get(db, kept.id).revoked
    with pytest.raises(displays.DisplayError):
        displays.revoke_display(cfg, db, 9999, "clerk")


def test_mark_seen_at_most_every_thirty_seconds(cfg, db):
    from datetime import UTC, datetime, timedelta

    s, _ms = populate(cfg, db)
    display, _ = displays.create_display(cfg, db, s.id, "clerk")
    t0 = datetime(2026, 12, 7, 13, 0, tzinfo=UTC)
    assert displays.mark_seen(db, display.id, t0)
    assert not displays.mark_seen(db, display.id, t0 + timedelta(seconds=29))
    assert displays.mark_seen(db, display.id, t0 + timedelta(seconds=31))
    assert displays.get(db, display.id).last_seen == "2026-12-07T13:00:31.000000Z"


# --- the pages -------------------------------------------------------------------------------------------------

@pytest.fixture
def box(cfg, db):
    from appliance.helper.client import NullHelper
    from appliance.web.app import create_app

    s, ms = populate(cfg, db)
    app = create_app(dataclasses.replace(cfg, push_heartbeat=0.3), helper=NullHelper(), testing=True)
    yield app, s, ms
    hub_mod.stop_all()


PROJECTOR = "10.77.0.250"  # a laptop the box does not know: not admitted, no login


def test_the_screen_needs_no_login_and_sets_no_cookie(box, cfg, db):
    app, s, _ms = box
    _display, token = displays.create_display(cfg, db, s.id, "clerk")
    resp = call(app, f"/saal/{token}", PROJECTOR)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "Set-Cookie" not in resp.headers
    assert resp.headers["Cache-Control"] == "no-store"
    assert "12. Sitzung des Rates" in html and "Rat der Stadt" in html and "24.11.2026" in html
    assert 'id="saal-item"' in html and "Noch kein Tagesordnungspunkt aufgerufen" in html  # the empty adapter
    assert '<noscript><meta http-equiv="refresh" content="10"></noscript>' in html  # without JavaScript
    assert f"/saal/{token}/events?last_id=" in html
    assert displays.find(db, token).last_seen is not None
    en = call(app, f"/saal/{token}?lang=en", PROJECTOR).get_data(as_text=True)
    assert "No agenda item called yet" in en and '<html lang="en">' in en


def test_unknown_and_revoked_links_get_a_german_page_and_no_stream(box, cfg, db):
    app, s, _ms = box
    display, token = displays.create_display(cfg, db, s.id, "clerk")
    for path in ("/saal/unbekannt", f"/saal/{token}x"):
        resp = call(app, path, PROJECTOR)
        assert resp.status_code == 404 and "Diesen Anzeige-Link gibt es nicht" in resp.get_data(as_text=True)
        assert "12. Sitzung" not in resp.get_data(as_text=True)
        assert call(app, path + "/events", PROJECTOR).status_code == 404
    displays.revoke_display(cfg, db, display.id, "clerk")
    resp = call(app, f"/saal/{token}", PROJECTOR)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 410 and "widerrufen" in html and "12. Sitzung" not in html
    assert call(app, f"/saal/{token}/events", PROJECTOR).status_code == 410


def test_a_link_of_an_inactive_session_waits_and_shows_nothing_running(box, cfg, db, monkeypatch):
    app, s, _ms = box
    other = service.create_session(db, body="Bauausschuss", title="3. Sitzung", day="2026-12-10")
    _display, token = displays.create_display(cfg, db, other.id, "clerk")
    monkeypatch.setattr(saal, "room_state", lambda db, sid: rules.Room(PUBLIC, SPEAKER, QUEUE))
    resp = call(app, f"/saal/{token}", PROJECTOR)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "3. Sitzung" in html and "noch nicht aktiv" in html
    assert "Anna Schmidt" not in html and "Bebauungsplan" not in html and "data-waiting" in html
    assert call(app, f"/saal/{token}/events", PROJECTOR).status_code == 404


def test_a_nonpublic_item_never_appears_on_the_screen(box, cfg, db, monkeypatch):
    """By content: the non-public item's title, its speaker and queue, its files and the chat are not on the page;
    the same room with a public item shows them (so the test fails when the screen stops showing anything)."""
    app, s, ms = box
    _display, token = displays.create_display(cfg, db, s.id, "clerk")
    item = documents_service.add_item(db, s.id, SECRET.title, number="12", public=False, actor="test")
    chat.post(db, Viewer("member", s.id, ms["Anna"], True, ANNA_IP), "all", "saal-0000-0001", "Geheimes Chatwort")
    state = {"room": rules.Room(SECRET, SPEAKER, QUEUE, False, "Bitte den Saal verlassen")}
    monkeypatch.setattr(saal, "room_state", lambda db, sid: state["room"])
    html = call(app, f"/saal/{token}", PROJECTOR).get_data(as_text=True)
    for secret in ("Grundstücksankauf", "Müllerstraße", "Anna Schmidt", "Bernd Müller", "Carla Weber", "4:5",
                   "Geheimes Chatwort", f"/unterlagen/{item}"):
        assert secret not in html, secret
    assert "Nichtöffentlicher Teil der Sitzung" in html and "Bitte den Saal verlassen" in html
    state["room"] = rules.Room(PUBLIC, SPEAKER, QUEUE, False, "Bitte den Saal verlassen")
    html = call(app, f"/saal/{token}", PROJECTOR).get_data(as_text=True)
    for shown in ("Bebauungsplan Nord", "Anna Schmidt", "Bernd Müller", "Carla Weber", "Zur Geschäftsordnung"):
        assert shown in html, shown
    assert "Nichtöffentlicher Teil" not in html and "Geheimes Chatwort" not in html
    timer = re.search(r'id="saal-timer"[^>]*data-started="([\d.]+)" data-limit="300">(-?\d+:\d\d)<', html)
    assert timer and abs(float(timer.group(1)) - SPEAKER.started_at) < 1e-6


def test_the_queue_shows_eight_and_counts_the_rest(box, cfg, db, monkeypatch):
    app, s, _ms = box
    _display, token = displays.create_display(cfg, db, s.id, "clerk")
    queue = tuple(rules.Speaker(f"Person Nummer{i:02d}", "SPD") for i in range(11))
    monkeypatch.setattr(saal, "room_state", lambda db, sid: rules.Room(PUBLIC, None, queue, True))
    html = call(app, f"/saal/{token}", PROJECTOR).get_data(as_text=True)
    assert [n for n in re.findall(r"Person Nummer(\d\d)", html)] == [f"{i:02d}" for i in range(8)]
    assert "und 3 weitere" in html and "Die Rednerliste ist geschlossen" in html and "Zurzeit spricht niemand" in html


def test_the_display_stream_carries_only_public_events_and_ends_when_revoked(box, cfg, db):
    app, s, ms = box
    display, token = displays.create_display(cfg, db, s.id, "clerk")
    start = max([e.id for e in since(db, 0)] or [0])
    resp = call(app, f"/saal/{token}/events?last_id={start}", PROJECTOR, buffered=False)
    assert resp.status_code == 200 and resp.mimetype == "text/event-stream"
    publish(db, s.id, "presence.changed", {"who": "Anna"}, audience="clerks")
    publish(db, s.id, "presence.mine", {"present": True}, audience=f"member:{ms['Anna'].id}")
    chat.post(db, Viewer("member", s.id, ms["Anna"], True, ANNA_IP), "all", "saal-0000-0002", "Chatwort")
    public_id = publish(db, s.id, "presence.count", {"count": 2}, audience="all")
    (ev,) = read_events(resp, 1)
    assert ev.id == public_id and ev.json()["topic"] == "presence.count"
    displays.revoke_display(cfg, db, display.id, "clerk")
    (ev,) = read_events(resp, 1)
    assert ev.json() == {"topic": "display.revoked", "payload": {"display": display.id}}
    with pytest.raises(StopIteration):  # the stream ends; the browser's reconnect then gets 410
        read_events(resp, 1)
    resp.close()


# --- the clerk's page ------------------------------------------------------------------------------------------

def test_the_clerk_creates_shows_once_and_revokes_a_display_link(cfg, db):
    s, _ms = populate(cfg, db)
    c, tok = logged_in_clerk(cfg, db, f"/clerk/sessions/{s.id}")
    page = c.get(f"/clerk/sessions/{s.id}").get_data(as_text=True)
    assert "Noch keine Anzeige-Links." in page
    assert c.post(f"/clerk/sessions/{s.id}/displays", data={"label": "Beamer"}).status_code == 400  # no CSRF
    resp = c.post(f"/clerk/sessions/{s.id}/displays", data={"csrf_token": tok, "label": "Beamer Ratssaal"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and resp.headers["Cache-Control"].startswith("no-store")
    token = re.search(r"http://10\.77\.0\.1/saal/([A-Za-z0-9_-]{43})<", html).group(1)
    assert displays.find(db, token).label == "Beamer Ratssaal"
    assert 'role="img"' in html or "<svg" in html  # the QR code
    page = c.get(f"/clerk/sessions/{s.id}").get_data(as_text=True)
    assert "Beamer Ratssaal" in page and token not in page and "noch nie" in page  # shown once, never again
    assert call(c.application, f"/saal/{token}", PROJECTOR).status_code == 200
    page = c.get(f"/clerk/sessions/{s.id}").get_data(as_text=True)
    assert "noch nie" not in page
    refused = c.post(f"/clerk/sessions/{s.id}/displays", data={"csrf_token": tok, "label": "x" * 81})
    assert refused.status_code == 422 and "zu lang" in refused.get_data(as_text=True)
    display = displays.find(db, token)
    other = service.create_session(db, body="Rat", title="Andere", day="2026-12-01")
    assert c.post(f"/clerk/sessions/{other.id}/displays/{display.id}/revoke",
                  data={"csrf_token": tok}).status_code == 404  # not this session's link
    resp = c.post(f"/clerk/sessions/{s.id}/displays/{display.id}/revoke", data={"csrf_token": tok})
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/clerk/sessions/{s.id}#displays")
    assert displays.find(db, token).revoked
    page = c.get(f"/clerk/sessions/{s.id}").get_data(as_text=True)
    assert "widerrufen" in page and "Beamer Ratssaal" in page
    assert call(c.application, f"/saal/{token}", PROJECTOR).status_code == 410
    hub_mod.stop_all()


def test_the_access_log_never_shows_a_display_token(cfg):
    """gunicorn logs paths; the web service's logger cuts the token out of /saal/<token> (and of the request line,
    should a log format ever name it)."""
    from datetime import timedelta

    from gunicorn.config import Config as GunicornConfig

    from appliance.web import accesslog, serve

    token = "mFdTJcxWZrsC4OznCBg7on9xNbIqbSkkM-guWN-kd50"
    options = serve.gunicorn_options(cfg)
    gcfg = GunicornConfig()
    for key in ("logger_class", "access_log_format"):
        gcfg.set(key, options[key])
    assert gcfg.logger_class is accesslog.RedactingLogger

    class Resp:
        status, headers, sent = "200 OK", [], 12

    for path, shown in ((f"/saal/{token}", "/saal/…"), (f"/saal/{token}/events", "/saal/…/events"),
                        ("/unterlagen", "/unterlagen"), ("/saal", "/saal")):
        env = {"REQUEST_METHOD": "GET", "RAW_URI": f"{path}?last_id=3", "SERVER_PROTOCOL": "HTTP/1.1",
               "PATH_INFO": path, "REMOTE_ADDR": "10.77.0.250"}
        atoms = gcfg.logger_class(gcfg).atoms(Resp(), [], env, timedelta(milliseconds=5))
        assert atoms["U"] == shown and token not in atoms["r"] and atoms["r"].endswith(" HTTP/1.1")
        assert token not in options["access_log_format"] % atoms


# --- with the speakers core (usecases.speakers: the chair's acts, state()) -----------------------------------------

def _members(s, ms):
    return {n: Viewer("member", s.id, m, True, f"10.77.0.{40 + i}") for i, (n, m) in enumerate(ms.items())}


def test_the_screen_shows_what_the_chair_runs_and_nothing_of_a_nonpublic_item(box, cfg, db):
    """The real acts, no adapter replaced: the chair moves to a public item, members ask, the chair gives the
    floor and extends; the screen follows. Then a non-public item with its own requests: nothing of it shows."""
    from appliance.usecases import speakers

    app, s, ms = box
    _display, token = displays.create_display(cfg, db, s.id, "clerk")
    clerk, dev = Viewer("clerk", s.id), _members(s, ms)
    public = documents_service.add_item(db, s.id, "Bebauungsplan Nord", number="5", actor="test")
    secret = documents_service.add_item(db, s.id, "Grundstücksankauf Müllerstraße", number="12", public=False,
                                        actor="test")
    now = time.time()
    assert speakers.set_current_item(db, clerk, s.id, public)
    for name in ("Anna", "Bernd", "Carla"):
        assert speakers.request(db, dev[name], s.id, now=now), name
    assert speakers.request(db, dev["Dora"], s.id, speakers.sp.POINT_OF_ORDER, now=now)
    assert speakers.call_next(db, clerk, s.id, now=now)  # the point of order goes first
    assert speakers.extend(db, clerk, s.id, 60)
    assert speakers.set_announcement(db, clerk, s.id, "Pause um 16 Uhr")
    html = call(app, f"/saal/{token}", PROJECTOR).get_data(as_text=True)
    assert re.search(r'id="saal-item"><span class="saal-number">5</span> Bebauungsplan Nord<', html)
    assert re.search(r'id="saal-speaker">Dora Klein<', html) and "Zur Geschäftsordnung" in html
    assert re.findall(r'class="saal-q-name">([^<]+)<', html) == ["Anna Schmidt", "Bernd Müller", "Carla Weber"]
    st = speakers.state(db, s.id, now=now)
    limit = st.timer.limit
    assert limit == st.rules.order_seconds + 60
    assert re.search(rf'id="saal-timer"[^>]*data-limit="{limit}"', html) and "Pause um 16 Uhr" in html
    # The non-public part: its own requests and a running speech there; the screen names none of it.
    assert speakers.set_current_item(db, clerk, s.id, secret)
    assert speakers.request(db, dev["Bernd"], s.id, now=now)
    assert speakers.call_next(db, clerk, s.id, now=now)
    html = call(app, f"/saal/{token}", PROJECTOR).get_data(as_text=True)
    for hidden in ("Grundstücksankauf", "Müllerstraße", "Bernd Müller", "Anna Schmidt", "Carla Weber", "Dora Klein",
                   "saal-timer", "Bebauungsplan"):
        assert hidden not in html, hidden
    assert "Nichtöffentlicher Teil der Sitzung" in html and "Pause um 16 Uhr" in html
