"""The speakers list's acts (appliance.usecases.speakers): each act writes its rows, one audit entry (actor,
action) and one push event (topic, audience, payload) in one transaction; a refusal writes nothing; the one read
`state()` is what the console, the member page and the room screen render; the minutes export."""

from __future__ import annotations

import json
import threading

import pytest

from appliance.documents import service as docs
from appliance.push.events import since
from appliance.rules.viewer import Viewer
from appliance.sessions import service
from appliance.sessions.roster import MemberRow
from appliance.store import open_db
from appliance.usecases import speakers as acts
from tests.atomic_support import dump
from tests.live_support import ANNA_IP, BERND_IP, GUEST_IP, MACS, populate

T0 = 1_800_000_000.0  # the session's clock: every act gets `now` explicitly


@pytest.fixture
def room(cfg, db):
    """The council: Anna, Bernd, Carla (members), Dora (deputy), Erik (administration), Presse (listed guest);
    two agenda items (TOP 5 public, TOP 6 non-public); Carla chairs."""
    s, ms = populate(cfg, db)
    service.insert_members(db, s.id, [MemberRow("Erik Amt", "", "administration", False, "Rat"),
                                      MemberRow("Presse Lokal", "", "guest", False, "")])
    ms = {m.name.split()[0]: m for m in service.members(db, s.id)}
    top5 = docs.add_item(db, s.id, "Haushalt 2027", number="5")
    top6 = docs.add_item(db, s.id, "Grundstücksangelegenheit", number="6", public=False)
    clerk = Viewer("clerk", s.id)
    assert acts.set_chair(db, clerk, s.id, ms["Carla"].id, actor="clerk@10.77.0.2")
    assert acts.set_current_item(db, clerk, s.id, top5, actor="clerk@10.77.0.2")
    v = {name: Viewer("member", s.id, m, True, f"10.77.0.{30 + i}", f"02:5c:00:00:01:{i:02x}")
         for i, (name, m) in enumerate(ms.items())}
    v["Anna"] = Viewer("member", s.id, ms["Anna"], True, ANNA_IP, MACS[ANNA_IP])
    v["Bernd"] = Viewer("member", s.id, ms["Bernd"], True, BERND_IP, MACS[BERND_IP])
    v["guest"] = Viewer("guest", s.id, None, True, GUEST_IP, MACS[GUEST_IP])
    v["clerk"] = clerk
    return s, ms, v, top5, top6


def last_audit(db) -> tuple[str, str, str]:
    return db.execute("SELECT actor, action, detail FROM audit ORDER BY id DESC LIMIT 1").fetchone()


def events(db, sid: int, after: int = 0) -> list[tuple[str, str, dict]]:
    return [(e.topic, e.audience, json.loads(e.payload)) for e in since(db, after, sid)]


def mark(db) -> tuple[int, int]:
    """(last audit id, last push event id): what an act adds comes after these."""
    return (db.execute("SELECT COALESCE(MAX(id), 0) FROM audit").fetchone()[0],
            db.execute("SELECT COALESCE(MAX(id), 0) FROM push_events").fetchone()[0])


def one_act(db, sid: int, before: tuple[int, int]) -> tuple[tuple[str, str, str], tuple[str, str, dict]]:
    """The act added exactly one audit entry and one push event: return both."""
    audits = db.execute("SELECT actor, action, detail FROM audit WHERE id > ?", [before[0]]).fetchall()
    evs = events(db, sid, before[1])
    assert len(audits) == 1 and len(evs) == 1, (audits, evs)
    return audits[0], evs[0]


def request_rows(db, sid: int) -> list[tuple]:
    return db.execute("SELECT id, member_id, kind, state, position, added_by FROM speakers_requests "
                      "WHERE session_id = ? ORDER BY id", [sid]).fetchall()


# -- each act: rows, audit entry, push event --------------------------------------------------------------


def test_request_writes_the_row_one_audit_entry_and_one_event(db, room):
    s, ms, v, top5, _ = room
    before = mark(db)
    out = acts.request(db, v["Anna"], s.id, now=T0)
    assert out.ok and out.text == "Wortmeldung angenommen."
    assert request_rows(db, s.id) == [(out.request_id, ms["Anna"].id, "contribution", "waiting", 1, "member")]
    (actor, action, detail), (topic, audience, payload) = one_act(db, s.id, before)
    assert (actor, action) == (f"member:{ms['Anna'].id}", "speakers.request")
    assert f"item={top5}" in detail and f"member={ms['Anna'].id}" in detail and "kind=contribution" in detail
    assert (topic, audience) == ("speakers.changed", "all")
    assert payload == {"what": "request", "item_id": top5, "request_id": out.request_id}
    assert "Anna" not in json.dumps(payload)  # names only through state(), which decides what each page sees


CHAIR_ACTS = [
    # (name, act(db, viewer, s, ms, top5, rid) -> Outcome, audit action, topic, payload "what")
    ("remove", lambda db, v, s, ms, top, rid: acts.remove(db, v, s.id, rid), "speakers.remove", "remove"),
    ("close", lambda db, v, s, ms, top, rid: acts.close_list(db, v, s.id), "speakers.close", "close"),
    ("reopen", lambda db, v, s, ms, top, rid: acts.reopen_list(db, v, s.id), "speakers.reopen", "reopen"),
    ("next", lambda db, v, s, ms, top, rid: acts.call_next(db, v, s.id, now=T0 + 10), "speakers.next", "next"),
    ("add", lambda db, v, s, ms, top, rid: acts.add_by_hand(db, v, s.id, ms["Erik"].id, now=T0 + 3),
     "speakers.add", "add"),
    ("move", lambda db, v, s, ms, top, rid: acts.move(db, v, s.id, rid, to=1), "speakers.move", "move"),
    ("announce", lambda db, v, s, ms, top, rid: acts.set_announcement(db, v, s.id, "Pause bis 11 Uhr"),
     "speakers.announce", "announcement"),
]


@pytest.mark.parametrize(("name", "act", "action", "what"), CHAIR_ACTS, ids=[c[0] for c in CHAIR_ACTS])
@pytest.mark.parametrize("who", ["chair", "clerk"])
def test_chair_acts(db, room, name, act, action, what, who):
    s, ms, v, top5, _ = room
    acts.request(db, v["Anna"], s.id, now=T0)
    rid = acts.request(db, v["Bernd"], s.id, now=T0 + 1).request_id
    viewer = v["Carla"] if who == "chair" else v["clerk"]
    # Another member may not do it, and doing nothing writes nothing.
    snapshot = dump(db)
    refused = act(db, v["Anna"], s, ms, top5, rid)
    assert not refused.ok and refused.code == "not_chair" and refused.text == "Das darf nur die Sitzungsleitung."
    assert dump(db) == snapshot
    before = mark(db)
    out = act(db, viewer, s, ms, top5, rid)
    assert out.ok, out.text
    (actor, got_action, detail), (topic, audience, payload) = one_act(db, s.id, before)
    assert got_action == action and f"session={s.id}" in detail
    assert actor == (f"chair member:{ms['Carla'].id}" if who == "chair" else "clerk")
    assert (topic, audience, payload["what"]) == ("speakers.changed", "all", what)
    assert payload["item_id"] == top5


def test_set_chair_and_current_item_are_the_clerks_and_the_chairs(db, room):
    s, ms, v, top5, top6 = room
    snapshot = dump(db)
    assert acts.set_chair(db, v["Carla"], s.id, ms["Anna"].id).code == "not_clerk"  # the chair names nobody
    assert acts.set_chair(db, v["clerk"], s.id, ms["Presse"].id).code == "no_member"  # a guest never chairs
    assert acts.set_current_item(db, v["Anna"], s.id, top6).code == "not_chair"
    assert acts.set_current_item(db, v["Carla"], s.id, 999_999).code == "no_item"
    assert dump(db) == snapshot
    before = mark(db)
    assert acts.set_current_item(db, v["Carla"], s.id, top6).ok
    (actor, action, detail), event = one_act(db, s.id, before)
    assert (actor, action, detail) == (f"chair member:{ms['Carla'].id}", "agenda.current",
                                       f"session={s.id} item={top6}")
    assert event == ("agenda.current", "all", {"item_id": top6})
    before = mark(db)
    assert acts.set_chair(db, v["clerk"], s.id, ms["Anna"].id, actor="clerk@10.77.0.2").ok
    (actor, action, detail), event = one_act(db, s.id, before)
    assert (actor, action, detail) == ("clerk@10.77.0.2", "speakers.chair", f"session={s.id} member={ms['Anna'].id}")
    assert event[:2] == ("speakers.changed", "all") and event[2]["what"] == "chair"
    # The console moved: Anna runs the session now, Carla no longer.
    assert acts.set_current_item(db, v["Anna"], s.id, top5).ok
    assert acts.set_current_item(db, v["Carla"], s.id, top5).code == "not_chair"


def test_withdraw_only_ones_own(db, room):
    s, ms, v, *_ = room
    rid = acts.request(db, v["Anna"], s.id, now=T0).request_id
    snapshot = dump(db)
    for who in ("Bernd", "guest", "clerk"):
        out = acts.withdraw(db, v[who], s.id, rid)
        assert not out.ok and out.code == "not_own", who
    assert dump(db) == snapshot
    before = mark(db)
    assert acts.withdraw(db, v["Anna"], s.id, rid).ok
    (actor, action, _d), (_t, _a, payload) = one_act(db, s.id, before)
    assert (actor, action, payload["what"]) == (f"member:{ms['Anna'].id}", "speakers.withdraw", "withdraw")
    assert request_rows(db, s.id)[0][3] == "withdrawn"
    assert acts.withdraw(db, v["Anna"], s.id, rid).code == "not_pending"


def test_refusals_write_nothing(db, room):
    s, ms, v, top5, _ = room
    acts.request(db, v["Anna"], s.id, now=T0)
    snapshot = dump(db)
    refusals = [
        (acts.request(db, v["guest"], s.id, now=T0), "guest"),
        (acts.request(db, v["Presse"], s.id, now=T0), "guest"),
        (acts.request(db, v["Erik"], s.id, now=T0), "not_listed"),  # staff: by hand only
        (acts.request(db, v["Anna"], s.id, now=T0), "already"),
        (acts.request(db, v["Anna"], s.id, "pro", now=T0), "no_point_of_order"),
        (acts.request(db, v["Anna"], s.id, "intervention", now=T0), "no_speech"),
        (acts.request(db, v["Anna"], s.id, "speech", now=T0), "unknown_kind"),
        (acts.request(db, v["Anna"], s.id, item_id=999_999, now=T0), "no_item"),
        (acts.request(db, v["Anna"], 999_999, now=T0), "no_session"),
        (acts.call_next(db, v["Carla"], s.id, request_id=999_999, now=T0), "not_pending"),
        (acts.end_speech(db, v["Carla"], s.id, now=T0), "nobody_speaking"),
        (acts.extend(db, v["Carla"], s.id, 60), "nobody_speaking"),
        (acts.set_announcement(db, v["Carla"], s.id, "x" * 501), "too_long"),
        (acts.set_procedure(db, v["clerk"], s.id, {"first_seconds": -5}), "bad_value"),
        (acts.set_procedure(db, v["clerk"], s.id, {"speed": 1}), "bad_value"),
        (acts.set_procedure(db, v["Carla"], s.id, {"first_seconds": 60}), "not_clerk"),
        (acts.add_by_hand(db, v["Carla"], s.id, ms["Presse"].id, now=T0), "not_by_hand"),
        (acts.add_by_hand(db, v["Carla"], s.id, 999_999, now=T0), "no_member"),
        # ids no SQLite integer can hold (a hostile form) name nothing, they do not crash
        (acts.add_by_hand(db, v["Carla"], s.id, 2**70, now=T0), "no_member"),
        (acts.remove(db, v["Carla"], s.id, -(2**70)), "no_request"),
        (acts.request(db, v["Anna"], s.id, item_id=2**70, now=T0), "no_item"),
        (acts.set_current_item(db, v["Carla"], s.id, 2**64), "no_item"),
        (acts.call_next(db, v["Carla"], 2**64, now=T0), "no_session"),
    ]
    for out, code in refusals:
        assert not out.ok and out.code == code and out.text, (code, out)
    assert dump(db) == snapshot
    assert acts.state(db, 2**64, now=T0) is None and acts.state(db, s.id, 2**64, now=T0).queue == []


def test_two_members_asking_at_once_get_distinct_places(cfg, db, room):
    s, ms, v, top5, _ = room
    barrier = threading.Barrier(4)
    results: dict[str, acts.Outcome] = {}

    def ask(name: str) -> None:
        own = open_db(cfg.db_path)  # each device's request is its own web request: its own connection
        try:
            barrier.wait()
            results[name] = acts.request(own, v[name], s.id, now=T0)
        finally:
            own.conn.close()

    threads = [threading.Thread(target=ask, args=(n,)) for n in ("Anna", "Bernd", "Dora", "Erik")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(results[n].ok for n in ("Anna", "Bernd", "Dora")) and results["Erik"].code == "not_listed"
    positions = [r[4] for r in request_rows(db, s.id)]
    assert sorted(positions) == [1, 2, 3]
    st = acts.state(db, s.id, now=T0)
    assert [x.place for x in st.queue] == [1, 2, 3]


# -- a session worked through ------------------------------------------------------------------------------


def test_point_of_order_lands_first_and_the_chair_works_through_the_list(db, room):
    s, ms, v, top5, _ = room
    acts.set_procedure(db, v["clerk"], s.id, {"first_seconds": 240, "later_seconds": 120, "order_seconds": 90})
    a = acts.request(db, v["Anna"], s.id, now=T0).request_id
    b = acts.request(db, v["Bernd"], s.id, now=T0 + 1).request_id
    d = acts.request(db, v["Dora"], s.id, "point_of_order", now=T0 + 2).request_id
    assert [x.request_id for x in acts.state(db, s.id, now=T0 + 3).queue] == [d, a, b]
    # The point of order is called; Anna asks to speak for it, Bernd against; Dora, who moved it, may not.
    assert acts.call_next(db, v["Carla"], s.id, now=T0 + 10).request_id == d
    assert acts.request(db, v["Dora"], s.id, "contra", now=T0 + 11).code == "own_motion"
    pro = acts.request(db, v["Anna"], s.id, "pro", now=T0 + 12).request_id
    contra = acts.request(db, v["Bernd"], s.id, "contra", now=T0 + 13).request_id
    st = acts.state(db, s.id, now=T0 + 40)
    assert st.speaking.request_id == d and st.running_point_of_order == d
    assert (st.timer.limit, st.timer.remaining, st.timer.warning) == (90, 60.0, False)
    assert [x.request_id for x in st.queue] == [pro, contra, a, b]
    assert acts.call_next(db, v["Carla"], s.id, now=T0 + 70).request_id == pro
    # The chair goes on with the contributions: the contra lapses with its motion.
    assert acts.call_next(db, v["Carla"], s.id, request_id=a, now=T0 + 100).request_id == a
    assert dict((r[0], r[3]) for r in request_rows(db, s.id))[contra] == "removed"
    st = acts.state(db, s.id, now=T0 + 345)
    assert st.speaking.name == "Anna Schmidt" and st.timer.limit == 240
    assert (st.timer.remaining, st.timer.overrun) == (-5.0, True)
    assert [x.request_id for x in st.queue] == [b]
    # An intervention to Anna's speech waits for the chair, then comes right after it.
    i = acts.request(db, v["Bernd"], s.id, "intervention", now=T0 + 346).request_id
    assert [x.request_id for x in acts.state(db, s.id, now=T0 + 347).pending] == [i]
    assert acts.decide_intervention(db, v["Anna"], s.id, i, True).code == "not_chair"
    assert acts.decide_intervention(db, v["Carla"], s.id, i, True).ok
    assert [x.request_id for x in acts.state(db, s.id, now=T0 + 348).queue] == [i, b]
    acts.extend(db, v["Carla"], s.id, 60)
    assert acts.state(db, s.id, now=T0 + 348).timer.remaining == 52.0
    assert acts.call_next(db, v["Carla"], s.id, now=T0 + 350).request_id == i
    # The chair closes the list: no new contribution, a point of order still; Anna's second speech is shorter.
    assert acts.close_list(db, v["Carla"], s.id).ok
    assert acts.request(db, v["Dora"], s.id, now=T0 + 351).code == "closed"
    assert acts.add_by_hand(db, v["Carla"], s.id, ms["Dora"].id, now=T0 + 351).code == "closed"
    assert acts.request(db, v["Dora"], s.id, "point_of_order", now=T0 + 352).ok
    assert acts.reopen_list(db, v["Carla"], s.id).ok
    assert acts.request(db, v["Anna"], s.id, now=T0 + 353).ok
    acts.call_next(db, v["Carla"], s.id, now=T0 + 360)  # Dora's second point of order
    acts.call_next(db, v["Carla"], s.id, now=T0 + 370)  # Bernd
    acts.call_next(db, v["Carla"], s.id, now=T0 + 410)  # Anna again
    st = acts.state(db, s.id, now=T0 + 410)
    assert st.speaking.name == "Anna Schmidt" and st.timer.limit == 120 and st.speaking.spoke == 2
    assert acts.end_speech(db, v["Carla"], s.id, now=T0 + 440).ok
    st = acts.state(db, s.id, now=T0 + 440)
    assert st.speaking is None and st.queue == []
    assert [(x.name, x.kind, x.duration) for x in st.held] == [
        ("Dora Klein", "point_of_order", 60.0), ("Anna Schmidt", "pro", 30.0), ("Anna Schmidt", "contribution", 250.0),
        ("Bernd Müller", "intervention", 10.0), ("Dora Klein", "point_of_order", 10.0),
        ("Bernd Müller", "contribution", 40.0), ("Anna Schmidt", "contribution", 30.0)]
    assert st.counts == {ms["Anna"].id: 2, ms["Bernd"].id: 1}


def test_max_speeches_per_member_and_item(db, room):
    s, ms, v, top5, top6 = room
    acts.set_procedure(db, v["clerk"], s.id, {"max_speeches": 1}, item_id=top5)
    acts.request(db, v["Anna"], s.id, now=T0)
    acts.call_next(db, v["Carla"], s.id, now=T0 + 1)
    acts.end_speech(db, v["Carla"], s.id, now=T0 + 2)
    out = acts.request(db, v["Anna"], s.id, now=T0 + 3)
    assert out.code == "max_reached" and "Anna Schmidt" in out.text
    assert acts.request(db, v["Anna"], s.id, item_id=top6, now=T0 + 3).ok  # the override is the item's only


def test_procedure_layers_body_session_item(db, room):
    s, ms, v, top5, top6 = room
    acts.set_procedure(db, v["clerk"], s.id, {"first_seconds": 420, "warn_seconds": 60}, for_body=True)
    acts.set_procedure(db, v["clerk"], s.id, {"later_seconds": 150})
    acts.set_procedure(db, v["clerk"], s.id, {"first_seconds": 200}, item_id=top6)
    assert acts.state(db, s.id, top5, now=T0).rules == acts.sp.Procedure(420, 150, 180, 120, 60, 0, True)
    assert acts.state(db, s.id, top6, now=T0).rules.first_seconds == 200
    other = service.create_session(db, body="Rat der Stadt", title="13. Sitzung", day="2026-12-15")
    assert acts.state(db, other.id, now=T0).rules.first_seconds == 420  # the body's rules for every session
    acts.set_procedure(db, v["clerk"], s.id, {"first_seconds": None}, item_id=top6)  # back to inheriting
    assert acts.state(db, s.id, top6, now=T0).rules.first_seconds == 420


# -- what each page may see --------------------------------------------------------------------------------


def test_state_for_the_room_screen_hides_names_on_a_non_public_item(db, room):
    s, ms, v, top5, top6 = room
    acts.set_announcement(db, v["Carla"], s.id, "Pause bis 11 Uhr")
    acts.request(db, v["Anna"], s.id, now=T0)
    acts.call_next(db, v["Carla"], s.id, now=T0 + 5)
    acts.request(db, v["Bernd"], s.id, now=T0 + 6)
    public = acts.state(db, s.id, now=T0 + 10, public_only=True)
    assert public.item.title == "Haushalt 2027" and public.announcement == "Pause bis 11 Uhr"
    assert public.speaking.name == "Anna Schmidt" and public.queue[0].faction == "CDU"
    assert public.chair_name == "Carla Weber" and public.timer.remaining == 295.0
    assert (public.session_title, public.session_body) == ("12. Sitzung des Rates", "Rat der Stadt")
    acts.set_current_item(db, v["Carla"], s.id, top6)
    acts.request(db, v["Bernd"], s.id, now=T0 + 20)
    acts.call_next(db, v["Carla"], s.id, now=T0 + 30)
    members = acts.state(db, s.id, now=T0 + 31)
    screen = acts.state(db, s.id, now=T0 + 31, public_only=True)
    assert members.speaking.name == "Bernd Müller" and members.item.title == "Grundstücksangelegenheit"
    assert screen.item.title == "" and screen.current_item.title == "" and screen.item.number == "6"
    assert (screen.speaking.name, screen.speaking.faction, screen.speaking.member_id) == ("", "", 0)
    assert screen.timer is not None and screen.counts == {}
    assert "Bernd" not in json.dumps(screen.to_dict()) and "Grundst" not in json.dumps(screen.to_dict())


def test_state_is_a_few_queries_for_a_large_council(cfg, db):
    s = service.create_session(db, body="Rat", title="Groß", day="2026-12-01")
    service.insert_members(db, s.id, [MemberRow(f"Mitglied {i:03d}", "SPD", "member", True, "Rat")
                                      for i in range(300)])
    service.set_active(db, s.id)
    members = service.members(db, s.id)
    clerk = Viewer("clerk", s.id)
    for i, m in enumerate(members[:120]):
        assert acts.request(db, Viewer("member", s.id, m, True), s.id, now=T0 + i).ok
    acts.call_next(db, clerk, s.id, now=T0 + 200)
    statements: list[str] = []
    db.conn.set_trace_callback(statements.append)
    try:
        st = acts.state(db, s.id, now=T0 + 201)
    finally:
        db.conn.set_trace_callback(None)
    assert len(st.queue) == 119 and st.queue[0].place == 1 and st.speaking.name == "Mitglied 000"
    assert len(statements) <= 6, statements


def test_member_sees_own_place(db, room):
    s, ms, v, *_ = room
    acts.request(db, v["Anna"], s.id, now=T0)
    acts.request(db, v["Bernd"], s.id, now=T0 + 1)
    st = acts.state(db, s.id, now=T0 + 2)
    assert [(x.name, x.place) for x in st.mine(ms["Bernd"].id)] == [("Bernd Müller", 2)]
    assert st.mine(ms["Dora"].id) == []


# -- the minutes -------------------------------------------------------------------------------------------


def test_minutes_rows_and_csv(db, room):
    s, ms, v, top5, top6 = room
    acts.request(db, v["Anna"], s.id, now=T0)
    acts.request(db, v["Bernd"], s.id, now=T0 + 1)
    acts.call_next(db, v["Carla"], s.id, now=T0 + 60)
    acts.call_next(db, v["Carla"], s.id, now=T0 + 185)
    acts.end_speech(db, v["Carla"], s.id, now=T0 + 200)
    acts.set_current_item(db, v["Carla"], s.id, top6)
    acts.add_by_hand(db, v["Carla"], s.id, ms["Erik"].id, now=T0 + 300)
    acts.call_next(db, v["Carla"], s.id, now=T0 + 301)
    rows = acts.minutes(db, s.id)
    assert [(r.item_number, r.order, r.name, r.duration) for r in rows] == [
        ("5", 1, "Anna Schmidt", 125.0), ("5", 2, "Bernd Müller", 15.0), ("6", 1, "Erik Amt", None)]
    text = acts.minutes_csv(rows, "Europe/Berlin")
    assert text.startswith("\ufeffTOP;Titel;Nr.;Name;Fraktion;Art;Redebeginn;Dauer (min:s)\r\n")
    # T0 is 2027-01-15 08:00:00 UTC: 09:01:00 in Berlin (winter time).
    assert "5;Haushalt 2027;1;Anna Schmidt;SPD;Wortmeldung;09:01:00;2:05\r\n" in text
    assert "6;Grundstücksangelegenheit;1;Erik Amt;;Wortmeldung;09:05:01;läuft\r\n" in text


def test_wipe_removes_the_sessions_speakers_data(db, room):
    s, ms, v, *_ = room
    from appliance.usecases import votes

    acts.request(db, v["Anna"], s.id, now=T0)
    acts.close_list(db, v["Carla"], s.id)
    # the session also voted: a named vote (cancelled), a conflict, a paper election — all in the vote log
    assert votes.set_conflicted(db, v["clerk"], s.id, None, ms["Bernd"].id, True, now=T0).ok
    assert votes.open_vote(db, v["clerk"], s.id, question="Zustimmen?", mode="named", now=T0).ok
    assert votes.cancel_vote(db, v["clerk"], s.id, now=T0 + 1).ok
    assert votes.record_paper(db, v["clerk"], s.id, "election", title="Wahl", now=T0 + 2,
                              counts={"Anna Schmidt": 3}).ok
    assert acts.wipe(db, s.id, "clerk") == 1
    for table in ("speakers_requests", "speakers_lists", "speakers_session", "votes", "vote_conflicts",
                  "vote_paper", "vote_log", "vote_log_purge"):
        assert db.execute(f"SELECT COUNT(*) FROM {table} WHERE session_id = ?", [s.id]).fetchone()[0] == 0  # noqa: S608
    assert not [e for e in since(db, 0, s.id) if e.topic.startswith(("speakers.", "votes."))]
    assert last_audit(db)[1] == "speakers.wipe" and " votes=1 " in last_audit(db)[2]


def test_move_by_steps_and_refusing_an_intervention(db, room):
    s, ms, v, top5, top6 = room
    a = acts.request(db, v["Anna"], s.id, now=T0).request_id
    b = acts.request(db, v["Bernd"], s.id, now=T0 + 1).request_id
    d = acts.request(db, v["Dora"], s.id, now=T0 + 2).request_id
    assert acts.move(db, v["Carla"], s.id, d, step=-1).ok
    assert [x.request_id for x in acts.state(db, s.id, now=T0).queue] == [a, d, b]
    assert acts.move(db, v["Carla"], s.id, a, step=5).ok  # past the end: the last place
    assert [x.request_id for x in acts.state(db, s.id, now=T0).queue] == [d, b, a]
    acts.call_next(db, v["Carla"], s.id, now=T0 + 10)  # Dora speaks
    i = acts.request(db, v["Anna"], s.id, "intervention", now=T0 + 11).request_id
    assert acts.move(db, v["Carla"], s.id, i, to=1).code == "not_movable"  # waits for the chair's decision
    assert acts.decide_intervention(db, v["Carla"], s.id, i, False).text == "Zwischenfrage nicht zugelassen."
    st = acts.state(db, s.id, now=T0 + 12)
    assert st.pending == [] and [x.request_id for x in st.queue] == [b, a]
    assert acts.decide_intervention(db, v["Carla"], s.id, i, True).code == "not_waiting"
    # Anna may ask again after the refusal; undecided when the floor moves on, the request lapses.
    again = acts.request(db, v["Anna"], s.id, "intervention", now=T0 + 13).request_id
    acts.call_next(db, v["Carla"], s.id, now=T0 + 20)
    assert dict((r[0], r[3]) for r in request_rows(db, s.id))[again] == "removed"
    assert acts.state(db, s.id, now=T0 + 21).pending == []


def test_viewer_is_chair_reads_the_named_chair(db, room):
    s, ms, v, *_ = room
    assert acts.viewer_is_chair(db, v["Carla"], s.id) and acts.viewer_is_chair(db, v["clerk"], s.id)
    assert not acts.viewer_is_chair(db, v["Anna"], s.id) and not acts.viewer_is_chair(db, v["guest"], s.id)
    assert not acts.viewer_is_chair(db, v["Carla"], 999_999)
    assert acts.set_procedure(db, v["clerk"], s.id, {"first_seconds": 60}, item_id=1, for_body=True).code == "no_item"
