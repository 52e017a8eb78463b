"""Room chat: rules (who reads/writes which room), storage (idempotent resend, order, rate limit, hidden,
muted), hostile text rendered safely, the no-JS pages with device-bound CSRF, clerk moderation/export/wipe."""

from __future__ import annotations

import dataclasses
import re

import pytest

from appliance.chat import rules
from appliance.chat import store as chat
from appliance.chat.rules import ChatError, Settings
from appliance.helper.client import NullHelper
from appliance.presence.sources import PresenceDaemon
from appliance.push import Audiences
from appliance.push import hub as hub_mod
from appliance.push.events import since
from appliance.rules.viewer import Viewer
from appliance.web import auth
from tests.live_support import ANNA_IP, BERND_IP, GUEST_IP, MACS, call, populate, token_in
from tests.test_clerk import confirmed

PASSWORD = "chat-test-password-1"
HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>&amp; {{ 7*7 }}'


def viewers(s, ms):
    anna = Viewer("member", s.id, ms["Anna"], True, ANNA_IP, MACS[ANNA_IP])
    bernd = Viewer("member", s.id, ms["Bernd"], True, BERND_IP, MACS[BERND_IP])
    dora = Viewer("member", s.id, ms["Dora"], True, "10.77.0.20", "02:5c:00:00:00:09")  # SPD deputy
    guest = Viewer("guest", s.id, None, True, GUEST_IP, MACS[GUEST_IP])
    clerk = Viewer("clerk", s.id)
    return anna, bernd, dora, guest, clerk


# -- pure rules --------------------------------------------------------------------------------------------

def test_access_is_decided_in_one_function(cfg, db):
    s, ms = populate(cfg, db)
    anna, bernd, dora, guest, clerk = viewers(s, ms)
    off, on = Settings(), Settings(direct_messages=True, guests_chat=True)
    a = rules.access
    # Everyone-room: members and the clerk; guests only when the session lets guests chat.
    assert a(anna, "all", off) == rules.Access(True, True)
    assert a(guest, "all", off) == rules.NONE and a(guest, "all", on) == rules.Access(True, True)
    # Announcements: everyone reads, only the clerk writes.
    assert a(guest, "announce", off) == a(anna, "announce", off) == rules.Access(True, False)
    assert a(clerk, "announce", off) == rules.Access(True, True)
    # Faction rooms: own faction only (deputies too); never guests, never the clerk.
    assert a(anna, "faction:SPD", off).write and a(dora, "faction:SPD", off).write
    assert a(bernd, "faction:SPD", off) == rules.NONE
    assert a(guest, "faction:SPD", on) == a(clerk, "faction:SPD", on) == rules.NONE
    # Direct messages: only the two, only when allowed.
    room = rules.dm_room(ms["Bernd"].id, ms["Anna"].id)
    targets = rules.dm_targets(list(ms.values()), s.id)
    assert a(anna, room, off, targets=targets) == rules.NONE
    assert a(anna, room, on, targets=targets).write and a(bernd, room, on, targets=targets).write
    assert a(dora, room, on, targets=targets) == rules.NONE and a(clerk, room, on, targets=targets) == rules.NONE
    assert a(anna, room, on) == rules.NONE  # no targets known: no direct room
    # Muted: still reads, cannot write.
    assert a(anna, "all", off, muted=True) == rules.Access(True, False)
    # Malformed rooms are no rooms.
    for bad in ("", "faction:", "dm:2:1", "dm:1:1", "all ", "secret"):
        assert a(anna, bad, on) == rules.NONE
    assert a(Viewer("anonymous", s.id), "announce", on) == rules.NONE


@dataclasses.dataclass(frozen=True)
class Person:
    id: int
    role: str
    faction: str = "SPD"
    session_id: int = 1


def test_direct_rooms_only_with_people_the_page_offers():
    """A direct room needs both sides on the viewer's session list in a DIRECT_MESSAGE_TARGETS role: never an
    id of another session, a listed guest or staff entry, an id nobody has, or oneself."""
    me, other, deputy = Person(1, "member"), Person(2, "member"), Person(3, "deputy")
    staff, listed_guest = Person(4, "administration", ""), Person(5, "guest", "")
    session = [me, other, deputy, staff, listed_guest]
    elsewhere = Person(9, "member", session_id=2)  # a member of another session
    targets = rules.dm_targets(session + [elsewhere], 1)
    assert targets == {1, 2, 3}
    on = Settings(direct_messages=True)
    v = Viewer("member", 1, me, True, "10.77.0.10", "02:00:00:00:00:01")
    table = [
        (2, True), (3, True), (4, False), (5, False), (9, False), (77, False),
    ]
    for other_id, ok in table:
        room = rules.dm_room(me.id, other_id)
        assert rules.access(v, room, on, targets=targets) == rules.Access(ok, ok), other_id
    assert rules.access(v, "dm:1:1", on, targets=targets) == rules.NONE  # oneself: no room
    # What the page lists is exactly what access allows.
    offered = [r for r in rules.rooms_for(v, on, session + [elsewhere]) if r.startswith("dm:")]
    assert offered == ["dm:1:2", "dm:1:3"]
    assert rules.rooms_for(v, Settings(), session) == ["announce", "all", "faction:SPD"]
    # Staff and listed guests neither get direct rooms nor a faction room.
    staff_v = Viewer("member", 1, Person(4, "administration", "SPD"), True, "10.77.0.14")
    assert rules.rooms_for(staff_v, on, session) == ["announce", "all"]
    assert rules.access(staff_v, "dm:2:4", on, targets=targets) == rules.NONE
    assert rules.access(staff_v, "faction:SPD", on, targets=targets) == rules.NONE


def test_direct_room_with_someone_not_offered_is_refused_when_posting(cfg, db):
    s, ms = populate(cfg, db)
    anna, *_ = viewers(s, ms)
    chat.set_settings(db, s.id, Settings(direct_messages=True), "test")
    assert chat.post(db, anna, rules.dm_room(ms["Anna"].id, ms["Bernd"].id), "dm-anna-00001", "Hallo")[1]
    from appliance.sessions import service
    from appliance.sessions.roster import MemberRow

    other = service.create_session(db, body="Rat", title="Andere", day="2026-11-25")
    service.insert_members(db, other.id, [MemberRow("Xaver Fremd", "SPD", "member", True, "Rat")])
    stranger = service.members(db, other.id)[0]
    with pytest.raises(ChatError) as exc:
        chat.post(db, anna, rules.dm_room(ms["Anna"].id, stranger.id), "dm-anna-00002", "Hallo")
    assert exc.value.status == 403
    assert not chat.access(db, anna, rules.dm_room(ms["Anna"].id, stranger.id)).read


def test_push_audience_follows_the_same_rule(cfg, db):
    s, ms = populate(cfg, db)
    anna, bernd, _dora, guest, clerk = viewers(s, ms)
    audiences = Audiences()
    audiences.register("chat", chat.push_check)  # as create_app does
    visible = audiences.visible
    assert visible(bernd, "chat:all", db) and visible(clerk, "chat:all", db) and not visible(guest, "chat:all", db)
    assert visible(anna, "chat:faction:SPD", db) and not visible(bernd, "chat:faction:SPD", db)
    assert not visible(clerk, "chat:faction:SPD", db) and visible(guest, "chat:announce", db)
    chat.set_settings(db, s.id, Settings(guests_chat=True), "test")
    assert visible(guest, "chat:all", db)


def test_clean_body_and_rate_rule():
    assert rules.clean_body("  Hallo\r\nWelt\x00\x07  ") == "Hallo\nWelt"
    for bad in ("", "   \n ", "x" * (rules.BODY_MAX + 1)):
        with pytest.raises(ChatError):
            rules.clean_body(bad)
    assert rules.rate_ok([0, 1, 2, 3], 5.0) and not rules.rate_ok([0, 1, 2, 3, 4], 5.0)
    assert rules.rate_ok([0, 1, 2, 3, 4], 10.5)  # the oldest fell out of the window
    assert "warten" in rules.rate_message()


# -- storage ------------------------------------------------------------------------------------------------

def test_resend_with_same_client_id_is_stored_once_and_order_is_kept(cfg, db):
    s, ms = populate(cfg, db)
    anna, bernd, *_ = viewers(s, ms)
    m1, created1 = chat.post(db, anna, "all", "client-aaaa-0001", "erste", now=100.0)
    m2, _ = chat.post(db, bernd, "all", "client-bbbb-0001", "zweite", now=100.5)
    again, created2 = chat.post(db, anna, "all", "client-aaaa-0001", "erste (nochmal)", now=101.0)
    assert created1 and not created2 and again == m1 and again.body == "erste"
    m3, _ = chat.post(db, anna, "all", "client-aaaa-0002", "dritte", now=102.0)
    assert [m.body for m in chat.messages(db, s.id, "all")] == ["erste", "zweite", "dritte"]
    assert m1.id < m2.id < m3.id
    # One push event per stored message, none for the resend.
    assert [e.topic for e in since(db, 0, s.id) if e.topic.startswith("chat.")] == ["chat.message"] * 3
    # Someone else cannot take over a client id.
    with pytest.raises(ChatError) as exc:
        chat.post(db, bernd, "all", "client-aaaa-0001", "fremd", now=103.0)
    assert exc.value.status == 409
    with pytest.raises(ChatError):
        chat.post(db, anna, "all", "bad id!", "x")


def test_rate_limit_has_a_german_message_and_resends_are_not_counted(cfg, db):
    s, ms = populate(cfg, db)
    anna, bernd, *_ = viewers(s, ms)
    for i in range(rules.RATE_COUNT):
        chat.post(db, anna, "all", f"rate-anna-{i:04d}", f"n{i}", now=200.0 + i * 0.1)
    with pytest.raises(ChatError) as exc:
        chat.post(db, anna, "all", "rate-anna-9999", "zu schnell", now=200.9)
    assert exc.value.status == 429 and "warten" in str(exc.value)
    chat.post(db, anna, "all", "rate-anna-0000", "n0", now=200.9)  # a resend is fine
    chat.post(db, bernd, "all", "rate-bernd-0000", "andere Person", now=200.9)  # per participant
    chat.post(db, anna, "all", "rate-anna-9999", "später", now=200.0 + rules.RATE_WINDOW + 1)


def test_hidden_and_muted(cfg, db):
    s, ms = populate(cfg, db)
    anna, bernd, _d, guest, clerk = viewers(s, ms)
    m, _ = chat.post(db, bernd, "all", "hide-0000-0001", "unpassend")
    chat.hide(db, s.id, m.id, "clerk@test")
    assert chat.messages(db, s.id, "all") == []
    assert chat.messages(db, s.id, "all", include_hidden=True)[0].hidden
    assert since(db, 0, s.id)[-1].topic == "chat.hidden"
    chat.mute(db, s.id, chat.author_participant(db, s.id, m.id), "clerk@test")
    with pytest.raises(ChatError) as exc:
        chat.post(db, bernd, "all", "mute-0000-0001", "trotzdem")
    assert exc.value.status == 403 and "stummgeschaltet" in str(exc.value)
    chat.post(db, anna, "all", "mute-0000-0002", "Anna darf")
    audit = [r[0] for r in db.execute("SELECT action FROM audit ORDER BY id").fetchall()]
    assert "chat.hide" in audit and "chat.mute" in audit
    # Guests cannot write the everyone-room by default, nor announcements, ever; members no faction of others.
    for who, room in ((guest, "all"), (guest, "announce"), (anna, "announce"), (bernd, "faction:SPD")):
        with pytest.raises(ChatError):
            chat.post(db, who, room, f"deny-{who.kind}-{len(room):04d}", "x")
    chat.post(db, clerk, "announce", "announce-00001", "Pause bis 11 Uhr")
    assert chat.latest_announcement(db, s.id).body == "Pause bis 11 Uhr"


# -- web pages -----------------------------------------------------------------------------------------------

@pytest.fixture
def app(cfg, db):
    from appliance.web.app import create_app

    s, ms = populate(cfg, db)
    auth.set_password(db, PASSWORD, actor="test")
    a = create_app(cfg, helper=NullHelper(), testing=True)
    a.sb = (s, ms)
    yield a
    hub_mod.stop_all()


def clerk_client(app):
    c = app.test_client()
    tok = token_in(c.get("/clerk/login").text)
    c.post("/clerk/login", data={"csrf_token": tok, "password": PASSWORD})
    return c


def form_of(html: str) -> dict:
    return {"csrf_token": token_in(html), "room": re.search(r'name="room" value="([^"]*)"', html).group(1),
            "client_id": re.search(r'name="client_id" value="([^"]+)"', html).group(1)}


def test_member_chats_without_js_and_hostile_text_is_escaped(app):
    page = call(app, "/chat", ANNA_IP)
    assert page.status_code == 200 and "set-cookie" not in page.headers
    assert 'id="chat-form"' in page.text and "Fraktion SPD" in page.text
    data = form_of(page.text) | {"body": HOSTILE}
    r = call(app, "/chat/send", ANNA_IP, "POST", data=data)
    assert r.status_code == 303 and "#m-" in r.headers["Location"]
    # The same form submitted twice (double tap, reload) stays one message.
    assert call(app, "/chat/send", ANNA_IP, "POST", data=data).status_code == 303
    html = call(app, "/chat?room=all", BERND_IP).text
    assert html.count('class="chat-body"') == 1
    assert "<script>alert(1)</script>" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&amp;amp;" in html and "{{ 7*7 }}" in html
    # Bernd (CDU) cannot open the SPD room; a guest sees announcements only.
    assert call(app, "/chat?room=faction:SPD", BERND_IP).status_code == 403
    g = call(app, "/chat", GUEST_IP)
    assert g.status_code == 200 and "chat-form" not in g.text and "Ansagen" in g.text
    assert call(app, "/chat?room=all", GUEST_IP).status_code == 403


def test_form_post_needs_the_device_token_and_keeps_text_on_errors(app):
    page = call(app, "/chat", ANNA_IP).text
    data = form_of(page) | {"body": "Hallo"}
    # Another device's token (or none) is refused.
    assert call(app, "/chat/send", BERND_IP, "POST", data=data).status_code == 400
    assert call(app, "/chat/send", ANNA_IP, "POST", data=data | {"csrf_token": ""}).status_code == 400
    long = "ä" * (rules.BODY_MAX + 5)
    r = call(app, "/chat/send", ANNA_IP, "POST", data=data | {"body": long})
    assert r.status_code == 400 and "zu lang" in r.text and long in r.text  # nothing lost
    js = call(app, "/chat/send", ANNA_IP, "POST", data=data, headers={"X-Sitzungsbox-Chat": "1"})
    assert js.status_code == 201 and js.json["message"]["body"] == "Hallo"
    again = call(app, "/chat/send", ANNA_IP, "POST", data=data, headers={"X-Sitzungsbox-Chat": "1"})
    assert again.status_code == 200 and again.json["created"] is False
    assert again.json["message"]["msg"] == js.json["message"]["msg"]


def test_clerk_moderates_announces_exports_and_wipes(app, db):
    s, ms = app.sb
    page = call(app, "/chat", BERND_IP).text
    call(app, "/chat/send", BERND_IP, "POST", data=form_of(page) | {"body": "=HYPERLINK(\"x\") Störung"})
    c = clerk_client(app)
    assert call(app, "/clerk/chat", ANNA_IP).status_code == 302  # members are no clerks
    html = c.get("/clerk/chat").text
    tok = token_in(html)
    msg_id = int(re.search(r'name="msg" value="(\d+)"', html).group(1))
    c.post("/clerk/chat/hide", data={"csrf_token": tok, "msg": msg_id, "hidden": "1"})
    c.post("/clerk/chat/mute", data={"csrf_token": tok, "who": f"member:{ms['Bernd'].id}"})
    html = c.get("/clerk/chat").text
    assert "ausgeblendet" in html and "Stummschaltung aufheben" in html
    assert "Störung" not in call(app, "/chat?room=all", ANNA_IP).text
    # Announcement with the clerk's session token; shown as a banner on the start page.
    c.post("/chat/send", data={"csrf_token": tok, "room": "announce", "client_id": "announce-test-1",
                               "body": "Sitzung geht um 19 Uhr weiter", "back": "clerk"})
    assert "Sitzung geht um 19 Uhr weiter" in call(app, "/", GUEST_IP).text
    # Settings: guests may chat now.
    c.post("/clerk/chat/settings", data={"csrf_token": tok, "guests_chat": "1"})
    assert call(app, "/chat?room=all", GUEST_IP).status_code == 200
    csv_text = c.get("/clerk/chat.csv").get_data(as_text=True)
    assert "'=HYPERLINK" in csv_text and "Ansage" in csv_text and "ja" in csv_text
    assert "Sitzung geht um 19 Uhr weiter" in c.get("/clerk/chat/print").text
    # Another session's chat and attendance, which no wipe of this session may touch.
    other = other_session_with_chat_and_presence(db)
    kept = rows_of_session(db, other)

    def mine(table):
        return db.execute(f"SELECT COUNT(*) FROM {table} WHERE session_id = ?", [s.id]).fetchone()[0]  # noqa: S608

    PresenceDaemon(cfg_of(app)).round(db)  # attendance of this session, with its push events
    assert mine("chat_messages") == 2 and mine("chat_mutes") == 1 and mine("chat_settings") == 1
    assert mine("presence_intervals") == 3
    # Wipe needs the confirmation, then everything of the session's chat is gone.
    c.post("/clerk/chat/wipe", data={"csrf_token": tok})
    c.post("/clerk/chat/wipe", data={"csrf_token": tok, "confirm": "yes"})  # no confirmation page: refused
    assert mine("chat_messages") == 2
    page = c.get("/clerk/chat/wipe")
    assert "2 Chat-Nachrichten von „12. Sitzung des Rates“ werden endgültig gelöscht" in page.text
    assert confirmed(c, "/clerk/chat/wipe").status_code == 303
    assert (mine("chat_messages"), mine("chat_mutes"), mine("chat_settings")) == (0, 0, 0)
    assert not [e for e in since(db, 0, s.id) if e.topic.startswith("chat.")]
    assert [e for e in since(db, 0, s.id) if e.topic.startswith("presence.")]  # the chat wipe leaves attendance
    assert chat.settings(db, s.id) == Settings()  # guests no longer chat
    assert "Chat gelöscht (2 Nachrichten)" in c.get("/clerk/chat").text
    c.post("/clerk/presence/wipe", data={"csrf_token": tok, "confirm": "yes"})
    assert mine("presence_intervals") == 3
    assert "(Anwesenheitszeiträume: 3, Personen: 3, Korrekturen von Hand: 0)" in c.get("/clerk/presence/wipe").text
    assert confirmed(c, "/clerk/presence/wipe").status_code == 303
    for table in ("presence_devices", "presence_state", "presence_intervals", "presence_corrections"):
        assert mine(table) == 0, table
    assert not [e for e in since(db, 0, s.id) if e.topic.startswith("presence.")]
    actions = [r[0] for r in db.execute("SELECT action FROM audit").fetchall()]
    assert "chat.wipe" in actions and "presence.wipe" in actions
    assert rows_of_session(db, other) == kept  # the other session: every row as it was


def cfg_of(app):
    return app.config["SB"]


def other_session_with_chat_and_presence(db) -> int:
    from appliance.push import publish
    from appliance.sessions import service
    from appliance.sessions.roster import MemberRow

    o = service.create_session(db, body="Ausschuss", title="Andere Sitzung", day="2026-11-20")
    service.insert_members(db, o.id, [MemberRow("Olga Andere", "SPD", "member", True, "Ausschuss")])
    m = service.members(db, o.id)[0]
    db.execute("INSERT INTO chat_messages(session_id, room, client_id, author_kind, author_member_id, author_name, "
               "author_key, body, at) VALUES (?, 'all', 'other-0001', 'member', ?, 'Olga', ?, 'x', "
               "'2026-11-20T10:00:00Z')",
               [o.id, m.id, f"member:{m.id}"])
    db.execute("INSERT INTO chat_mutes(session_id, participant, at) VALUES (?, ?, 'x')", [o.id, f"member:{m.id}"])
    chat.set_settings(db, o.id, Settings(direct_messages=True), "test")
    db.execute("INSERT INTO presence_intervals(session_id, member_id, start, start_source) VALUES (?, ?, 1, 'x')",
               [o.id, m.id])
    publish(db, o.id, "chat.message", {"msg": 1}, "chat:all")
    publish(db, o.id, "presence.changed", {"member_id": m.id}, "clerks")
    return o.id


def rows_of_session(db, sid: int) -> dict[str, list]:
    return {t: db.execute(f"SELECT * FROM {t} WHERE session_id = ? ORDER BY rowid", [sid]).fetchall()  # noqa: S608
            for t in ("chat_messages", "chat_mutes", "chat_settings", "presence_intervals", "push_events")}
