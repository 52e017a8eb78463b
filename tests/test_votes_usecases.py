"""The votes' acts (appliance.usecases.votes): eligibility fixed at the opening, one ballot per seat, casts with
idempotency keys, changes, arrivals and deputies, hand entry, countdown, cancel and repeat, the append-only log,
the member-vote link dropped at the close of an open vote, paper ballots, and the log replaying to the results."""

from __future__ import annotations

import json
import sqlite3
import threading

import pytest

from appliance.documents import service as docs
from appliance.push.events import since
from appliance.rules import votes as vr
from appliance.rules.viewer import Viewer
from appliance.sessions import service
from appliance.sessions.roster import MemberRow
from appliance.store import open_db
from appliance.usecases import speakers
from appliance.usecases import votes as acts
from tests.atomic_support import dump

T0 = 1_800_000_000.0


def arrive(db, sid: int, *mids: int, at: float = T0 - 600) -> None:
    for mid in mids:
        db.execute("INSERT INTO presence_intervals(session_id, member_id, start, start_source) "
                   "VALUES (?, ?, ?, 'wifi')", [sid, mid, at])


def leave(db, sid: int, mid: int, at: float) -> None:
    db.execute("UPDATE presence_intervals SET end = ?, end_source = 'wifi' WHERE session_id = ? AND member_id = ? "
               "AND end IS NULL", [at, sid, mid])


@pytest.fixture
def council(db):
    """Rat: Anna, Bernd (SPD), Carla, Dirk (CDU), Emil (Grüne) vote; Fritz votes, absent; Dora deputy (SPD);
    Erik administration; Presse guest. Two items: TOP 5 public, TOP 6 non-public. Carla chairs."""
    s = service.create_session(db, body="Rat der Stadt", title="12. Sitzung", day="2026-12-07", venue="Rathaus")
    service.insert_members(db, s.id, [
        MemberRow("Anna Schmidt", "SPD", "member", True, "Rat"),
        MemberRow("Bernd Müller", "SPD", "member", True, "Rat"),
        MemberRow("Carla Weber", "CDU", "member", True, "Rat"), MemberRow("Dirk Berg", "CDU", "member", True, "Rat"),
        MemberRow("Emil Grün", "Grüne", "member", True, "Rat"), MemberRow("Fritz Alt", "Grüne", "member", True, "Rat"),
        MemberRow("Dora Klein", "Grüne", "deputy", False, "Rat"),
        MemberRow("Erik Amt", "", "administration", False, "Rat"), MemberRow("Presse Lokal", "", "guest", False, "")])
    service.set_active(db, s.id)
    ms = {m.name.split()[0]: m for m in service.members(db, s.id)}
    top5 = docs.add_item(db, s.id, "Haushalt 2027", number="5")
    top6 = docs.add_item(db, s.id, "Grundstück", number="6", public=False)
    clerk = Viewer("clerk", s.id)
    assert speakers.set_chair(db, clerk, s.id, ms["Carla"].id, actor="clerk")
    assert speakers.set_current_item(db, clerk, s.id, top5, actor="clerk")
    arrive(db, s.id, *(ms[n].id for n in ("Anna", "Bernd", "Carla", "Dirk", "Emil", "Dora", "Erik", "Presse")))
    v = {n: Viewer("member", s.id, m, True, f"10.77.0.{30 + i}") for i, (n, m) in enumerate(ms.items())}
    v["guest"] = Viewer("guest", s.id, None, True, "10.77.0.99")
    v["clerk"] = clerk
    return s, ms, v, top5, top6


def key(n: int) -> str:
    return f"k{n:015d}"


def opened(db, s, v, **kw) -> int:
    out = acts.open_vote(db, v.get("Carla"), s.id, question=kw.pop("question", "Dem Haushalt zustimmen?"),
                         now=kw.pop("now", T0), **kw)
    assert out.ok, out.text
    return out.vote_id


def vote_log(db, sid):
    return acts.log(db, sid)


def test_opening_fixes_one_ballot_per_eligible_seat_and_reports_quorum(db, council):
    s, ms, v, top5, _ = council
    before = db.execute("SELECT COALESCE(MAX(id), 0) FROM push_events").fetchone()[0]
    vid = opened(db, s, v)
    ballots = db.execute("SELECT member_id, eligible_at_open, choice FROM vote_ballots WHERE vote_id = ?",
                         [vid]).fetchall()
    assert sorted(m for m, _e, _c in ballots) == sorted(ms[n].id for n in ("Anna", "Bernd", "Carla", "Dirk", "Emil"))
    row = db.execute("SELECT item_id, item_title, statutory, eligible, quorum_needed, quorate, state FROM votes "
                     "WHERE id = ?", [vid]).fetchone()
    assert row == (top5, "5 Haushalt 2027", 6, 5, 4, 1, "open")
    evs = [(e.topic, e.audience, json.loads(e.payload)) for e in since(db, before, s.id)]
    assert evs == [("votes.changed", "all", {"what": "open", "vote_id": vid})]
    (action, detail), = vote_log(db, s.id)
    assert action == "open" and detail["eligible"] == 5 and detail["statutory"] == 6
    assert not any(isinstance(b, list) and len(b) > 2 for b in detail["ballots"])  # an open vote: tokens only


def test_a_second_vote_cannot_open_while_one_runs_and_nobody_but_the_chair_opens(db, council):
    s, _ms, v, *_ = council
    assert acts.open_vote(db, v["Anna"], s.id, question="x", now=T0).code == "not_chair"
    assert acts.open_vote(db, v["guest"], s.id, question="x", now=T0).code == "not_chair"
    opened(db, s, v)
    assert acts.open_vote(db, v["clerk"], s.id, question="y", now=T0).code == "vote_open"
    assert acts.open_vote(db, v["clerk"], s.id, question="  ", now=T0).code == "no_question"
    assert db.execute("SELECT COUNT(*) FROM votes").fetchone()[0] == 1


def test_cast_change_and_idempotent_retry(db, council):
    s, ms, v, *_ = council
    vid = opened(db, s, v)
    a = ms["Anna"].id
    assert acts.cast(db, v["Anna"], s.id, vid, a, "yes", key(1), now=T0 + 1).text == "Ihre Stimme: Ja"
    assert acts.cast(db, v["Anna"], s.id, vid, a, "yes", key(1), now=T0 + 2).ok  # a retry: acknowledged again
    assert acts.cast(db, v["Anna"], s.id, vid, a, "no", key(2), now=T0 + 3).text == "Ihre Stimme: Nein"
    again = acts.cast(db, v["Anna"], s.id, vid, a, "yes", key(1), now=T0 + 4)  # the old retry arrives late
    assert again.ok and again.choice == "yes"
    assert db.execute("SELECT choice FROM vote_ballots WHERE vote_id = ? AND member_id = ?", [vid, a]).fetchone() \
        == ("no",)  # a late retry of an earlier tap does not undo the change
    assert db.execute("SELECT cast_count FROM votes WHERE id = ?", [vid]).fetchone() == (1,)
    casts = [d for a_, d in vote_log(db, s.id) if a_ == "cast"]
    assert [c["choice"] for c in casts] == ["yes", "no"]
    assert all("member_id" not in c and "name" not in c for c in casts)


def test_refusals_write_nothing(db, council):
    s, ms, v, _top5, _ = council
    vid = opened(db, s, v)
    before = dump(db)
    cases = {
        "guest": acts.cast(db, v["guest"], s.id, vid, ms["Anna"].id, "yes", key(1), now=T0),
        "not_own": acts.cast(db, v["Bernd"], s.id, vid, ms["Anna"].id, "yes", key(2), now=T0),
        "absent": acts.cast(db, v["Fritz"], s.id, vid, ms["Fritz"].id, "yes", key(3), now=T0),
        "administration": acts.cast(db, v["Erik"], s.id, vid, ms["Erik"].id, "yes", key(4), now=T0),
        "guest_listed": acts.cast(db, v["Presse"], s.id, vid, ms["Presse"].id, "yes", key(5), now=T0),
        "bad_choice": acts.cast(db, v["Anna"], s.id, vid, ms["Anna"].id, "maybe", key(6), now=T0),
        "bad_key": acts.cast(db, v["Anna"], s.id, vid, ms["Anna"].id, "yes", "", now=T0),
        "no_vote": acts.cast(db, v["Anna"], s.id, vid + 99, ms["Anna"].id, "yes", key(7), now=T0),
        "not_deputy_stand_in": acts.cast(db, v["Dora"], s.id, vid, ms["Dora"].id, "yes", key(8), now=T0),
    }
    codes = {k: o.code for k, o in cases.items()}
    assert codes == {"guest": "guest", "not_own": "not_own", "absent": "absent", "administration": "administration",
                     "guest_listed": "guest", "bad_choice": "bad_choice", "bad_key": "bad_key", "no_vote": "no_vote",
                     "not_deputy_stand_in": "not_standing_in"}, codes
    assert all(o.text for o in cases.values())
    assert dump(db) == before


def test_conflicted_member_neither_votes_nor_counts(db, council):
    s, ms, v, top5, _ = council
    assert acts.set_conflicted(db, v["clerk"], s.id, top5, ms["Dirk"].id, True, now=T0).ok
    vid = opened(db, s, v)
    assert acts.cast(db, v["Dirk"], s.id, vid, ms["Dirk"].id, "yes", key(1), now=T0).code == "conflicted"
    assert db.execute("SELECT eligible, conflicted FROM votes WHERE id = ?", [vid]).fetchone() == (4, 1)
    acts.close_vote(db, v["Carla"], s.id, now=T0 + 5)
    st = acts.state(db, s.id, now=T0 + 6)
    assert st.current.conflicted_names == ["Dirk Berg"]


def test_deputy_votes_for_absent_member_and_keeps_the_ballot_when_the_member_arrives(db, council):
    s, ms, v, *_ = council
    assert acts.set_deputy(db, v["clerk"], s.id, ms["Dora"].id, ms["Fritz"].id, now=T0).ok
    assert acts.set_deputy(db, v["Anna"], s.id, ms["Dora"].id, ms["Fritz"].id, now=T0).code == "not_clerk"
    assert acts.set_deputy(db, v["clerk"], s.id, ms["Anna"].id, ms["Fritz"].id, now=T0).code == "not_deputy"
    vid = opened(db, s, v)
    assert acts.cast(db, v["Dora"], s.id, vid, ms["Dora"].id, "no", key(1), now=T0 + 1).ok
    arrive(db, s.id, ms["Fritz"].id, at=T0 + 2)
    fritz = acts.cast(db, v["Fritz"], s.id, vid, ms["Fritz"].id, "yes", key(2), now=T0 + 3)
    assert fritz.code == "deputy_votes"
    assert acts.close_vote(db, v["Carla"], s.id, now=T0 + 4).ok
    faction = dict((f, (y, n)) for f, y, n in db.execute(
        "SELECT faction, yes, no FROM vote_faction_counts WHERE vote_id = ?", [vid]))
    assert faction["Grüne"] == (0, 1)


def test_an_arriving_member_may_vote_and_a_leaver_may_not(db, council):
    s, ms, v, *_ = council
    vid = opened(db, s, v)
    arrive(db, s.id, ms["Fritz"].id, at=T0 + 1)
    assert acts.cast(db, v["Fritz"], s.id, vid, ms["Fritz"].id, "yes", key(1), now=T0 + 2).ok
    leave(db, s.id, ms["Anna"].id, T0 + 3)
    assert acts.cast(db, v["Anna"], s.id, vid, ms["Anna"].id, "yes", key(2), now=T0 + 4).code == "absent_now"
    assert db.execute("SELECT eligible, cast_count FROM votes WHERE id = ?", [vid]).fetchone() == (6, 1)


def test_no_change_when_the_body_forbids_it(db, council):
    s, ms, v, *_ = council
    assert acts.set_may_change(db, v["clerk"], "", False, session_id=s.id, now=T0).ok
    vid = opened(db, s, v)
    a = ms["Anna"].id
    assert acts.cast(db, v["Anna"], s.id, vid, a, "yes", key(1), now=T0).ok
    assert acts.cast(db, v["Anna"], s.id, vid, a, "no", key(2), now=T0).code == "no_change"
    assert acts.cast(db, v["Anna"], s.id, vid, a, "yes", key(3), now=T0).ok  # the same again is no change


def test_close_counts_by_rule_and_drops_the_member_link_of_an_open_vote(db, council):
    s, ms, v, *_ = council
    vid = opened(db, s, v)
    for i, (n, c) in enumerate((("Anna", "yes"), ("Bernd", "yes"), ("Carla", "no"), ("Dirk", "no"))):
        assert acts.cast(db, v[n], s.id, vid, ms[n].id, c, key(i), now=T0 + 1).ok
    assert acts.cast(db, v["Emil"], s.id, vid, ms["Emil"].id, "abstain", key(9), now=T0 + 1).ok
    out = acts.close_vote(db, v["Carla"], s.id, now=T0 + 10)
    assert out.ok and "Stimmengleichheit" in out.text
    row = db.execute("SELECT state, yes, no, abstain, accepted FROM votes WHERE id = ?", [vid]).fetchone()
    assert row == ("closed", 2, 2, 1, 0)  # a tie is rejected (§ 50 GO NRW)
    assert db.execute("SELECT COUNT(*) FROM vote_ballots WHERE vote_id = ? AND (member_id IS NOT NULL OR name IS "
                      "NOT NULL)", [vid]).fetchone() == (0,)
    assert db.execute("SELECT COUNT(*) FROM vote_cast_keys").fetchone() == (0,)
    assert sorted(db.execute("SELECT faction, yes, no, abstain FROM vote_faction_counts WHERE vote_id = ?",
                             [vid]).fetchall()) == [("CDU", 0, 2, 0), ("Grüne", 0, 0, 1), ("SPD", 2, 0, 0)]
    assert acts.cast(db, v["Emil"], s.id, vid, ms["Emil"].id, "yes", key(10), now=T0 + 11).code == "closed"


def test_named_vote_keeps_the_names(db, council):
    s, ms, v, *_ = council
    vid = opened(db, s, v, mode="named")
    assert acts.cast(db, v["Anna"], s.id, vid, ms["Anna"].id, "yes", key(1), now=T0).ok
    assert acts.enter_by_hand(db, v["clerk"], s.id, vid, ms["Bernd"].id, "no", now=T0).ok
    assert acts.enter_by_hand(db, v["Carla"], s.id, vid, ms["Bernd"].id, "no", now=T0).code == "not_clerk"
    acts.close_vote(db, v["clerk"], s.id, now=T0 + 5)
    st = acts.state(db, s.id, now=T0 + 6)
    named = {n.name: (n.choice, n.by_clerk) for n in st.current.named}
    assert named["Anna Schmidt"] == ("yes", False) and named["Bernd Müller"] == ("no", True)
    assert named["Emil Grün"] == (None, False)
    assert st.current.by_hand == 1


def test_tally_never_shows_while_open_and_non_public_items_hide_the_question(db, council):
    s, ms, v, _top5, top6 = council
    vid = opened(db, s, v, item_id=top6, mode="named", question="Verkauf an X?")
    acts.cast(db, v["Anna"], s.id, vid, ms["Anna"].id, "yes", key(1), now=T0)
    st = acts.state(db, s.id, now=T0 + 1, public_only=True)
    assert st.current.yes is None and st.current.cast == 1 and st.current.factions == []
    assert st.current.question == "" and st.current.item_title == "" and st.current.hidden
    acts.close_vote(db, v["Carla"], s.id, now=T0 + 2)
    st = acts.state(db, s.id, now=T0 + 3, public_only=True)
    assert st.current.yes == 1 and st.current.named == []


def test_countdown_closes_on_the_next_read(db, council):
    s, ms, v, *_ = council
    vid = opened(db, s, v)
    assert acts.set_countdown(db, v["Carla"], s.id, 10, now=T0).ok
    assert acts.cast(db, v["Anna"], s.id, vid, ms["Anna"].id, "yes", key(1), now=T0 + 9).ok
    assert acts.cast(db, v["Bernd"], s.id, vid, ms["Bernd"].id, "yes", key(2), now=T0 + 10).code == "closed"
    st = acts.state(db, s.id, now=T0 + 10.5)
    assert st.current.state == "closed" and st.current.yes == 1 and st.current.accepted is True
    assert acts.close_due(db, T0 + 11) == []


def test_cancel_and_repeat_keep_both_attempts(db, council):
    s, ms, v, *_ = council
    vid = opened(db, s, v)
    acts.cast(db, v["Anna"], s.id, vid, ms["Anna"].id, "yes", key(1), now=T0)
    assert acts.repeat_vote(db, v["Carla"], s.id, vid, now=T0).code == "still_open"
    assert acts.cancel_vote(db, v["Carla"], s.id, now=T0 + 1, reason="Technische Störung").ok
    again = acts.repeat_vote(db, v["Carla"], s.id, vid, now=T0 + 2)
    assert again.ok and again.vote_id != vid
    assert db.execute("SELECT id, state, attempt, repeat_of FROM votes ORDER BY id").fetchall() == [
        (vid, "cancelled", 1, None), (again.vote_id, "open", 2, vid)]
    assert [a for a, _d in vote_log(db, s.id)] == ["open", "cast", "cancel", "open", "repeat"]


def test_vote_log_is_append_only(db, council):
    s, _ms, v, *_ = council
    opened(db, s, v)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("UPDATE vote_log SET actor = 'x'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("DELETE FROM vote_log")
    assert acts.wipe(db, s.id, "retention") > 0
    assert db.execute("SELECT COUNT(*) FROM vote_log").fetchone() == (0,)
    # The purge row went with the log: the session's log is append-only again.
    assert db.execute("SELECT COUNT(*) FROM vote_log_purge").fetchone() == (0,)
    opened(db, s, v, now=T0 + 100)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("DELETE FROM vote_log")


def test_paper_ballots(db, council):
    s, _ms, v, *_ = council
    out = acts.record_paper(db, v["clerk"], s.id, "election", title="Wahl Ausschussvorsitz", now=T0,
                            counts={"Anna Schmidt": 3, "Carla Weber": 3}, no=0)
    assert out.ok and "Stichwahl" in out.text
    out = acts.record_paper(db, v["clerk"], s.id, "hare_niemeyer", title="Ausschuss", now=T0,
                            counts={"SPD": 10, "CDU": 10, "Grüne": 5}, seats=4)
    assert out.ok
    bad = acts.record_paper(db, v["clerk"], s.id, "dhondt", title="x", now=T0, counts={"SPD": -1}, seats=3)
    assert bad.code == "bad_counts"
    assert acts.record_paper(db, v["Carla"], s.id, "dhondt", title="x", now=T0, counts={"A": 1}, seats=1).code \
        == "not_clerk"
    ps = acts.papers(db, s.id)
    assert [p.kind for p in ps] == ["election", "hare_niemeyer"]
    assert ps[1].outcome["lot"] == ["SPD", "CDU"] and ps[1].outcome["lot_seats"] == 1


def test_two_devices_casting_at_once_both_count(cfg, db, council):
    s, ms, v, *_ = council
    vid = opened(db, s, v)
    errors = []

    def go(name: str, n: int) -> None:
        conn = open_db(cfg.db_path)
        try:
            assert acts.cast(conn, v[name], s.id, vid, ms[name].id, "yes", key(n), now=T0).ok
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
        finally:
            conn.close()

    threads = [threading.Thread(target=go, args=(n, i)) for i, n in enumerate(("Anna", "Bernd", "Dirk", "Emil"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert db.execute("SELECT cast_count FROM votes WHERE id = ?", [vid]).fetchone() == (4,)


def test_the_log_of_a_whole_session_replays_to_the_stored_results(db, council):
    s, ms, v, top5, top6 = council
    # 1: simple, open; 2: named, two thirds, a change; 3: cancelled; 4: its repeat, statutory; 5: custom 3/4
    plan = [
        ({"mode": "open"}, {"Anna": "yes", "Bernd": "no", "Carla": "yes", "Emil": "abstain"}, "close"),
        ({"mode": "named", "rule": "two_thirds", "item_id": top6}, {"Anna": "no", "Bernd": "yes", "Dirk": "yes"},
         "close"),
        ({"mode": "open", "rule": "statutory"}, {"Anna": "yes"}, "cancel"),
        (None, {"Anna": "yes", "Bernd": "yes", "Carla": "yes", "Dirk": "yes"}, "close"),
        ({"mode": "open", "rule": "custom", "params": vr.Custom(3, 4)}, {"Anna": "yes", "Bernd": "yes", "Dirk": "no"},
         "close"),
    ]
    t = T0
    last = None
    for spec, casts, end in plan:
        t += 60
        if spec is None:
            last = acts.repeat_vote(db, v["Carla"], s.id, last, now=t).vote_id
        else:
            last = opened(db, s, v, now=t, **spec)
        for i, (n, c) in enumerate(casts.items()):
            assert acts.cast(db, v[n], s.id, last, ms[n].id, c, key(int(t) + i), now=t + 1).ok
        if spec and spec.get("mode") == "named":
            assert acts.cast(db, v["Anna"], s.id, last, ms["Anna"].id, "yes", key(int(t) + 99), now=t + 2).ok
        getattr(acts, f"{end}_vote")(db, v["Carla"], s.id, now=t + 5)
    replayed = vr.replay(vote_log(db, s.id))
    stored = {vid: {"state": st, "yes": y, "no": n, "abstain": a, "accepted": None if acc is None else bool(acc)}
              for vid, st, y, n, a, acc in db.execute("SELECT id, state, yes, no, abstain, accepted FROM votes")}
    for vid, want in stored.items():
        got = replayed[vid]
        assert got["state"] == want["state"] and got["accepted"] == want["accepted"]
        if want["state"] == "closed":
            assert (got["yes"], got["no"], got["abstain"]) == (want["yes"], want["no"], want["abstain"])
            factions = {f: {"yes": y, "no": n, "abstain": a} for f, y, n, a in db.execute(
                "SELECT faction, yes, no, abstain FROM vote_faction_counts WHERE vote_id = ?", [vid])}
            assert got["factions"] == factions
    assert [stored[k]["accepted"] for k in sorted(stored)] == [True, True, None, True, False]


def _mine_on_the_whole_list(db, sid: int, vid: int, member_id: int, now: float) -> tuple[bool, str]:
    """What each member's view of the open vote said before it shared the cast's fast path: the rules asked on
    the whole list of people, ballots, deputies and conflicts."""
    vote = acts._vote(db, sid, vid)
    people = acts._people(db, sid)
    ballots = db.execute("SELECT member_id, eligible_at_open, choice FROM vote_ballots WHERE vote_id = ? AND "
                         "member_id IS NOT NULL", [vid]).fetchall()
    d = vr.may_cast(acts._is_open(vote, now), member_id, {m for m, e, _c in ballots if e},
                    {p.id for p in people if p.present}, people, acts._deputies(db, sid),
                    acts._conflicted(db, sid, vote.item_id), {m for m, _e, c in ballots if c})
    return d.ok, d.text


def test_each_members_view_of_the_open_vote_agrees_with_the_rules_on_the_whole_list(db, council):
    """`state(member_id=…).mine` — every phone's refetch of its vote block — takes the cast's fast path for an
    eligible ballot holder; for everyone, at every step, it says what the rules say on the whole list."""
    s, ms, v, top5, _ = council
    assert acts.set_deputy(db, v["clerk"], s.id, ms["Dora"].id, ms["Fritz"].id, now=T0).ok
    assert acts.set_conflicted(db, v["clerk"], s.id, top5, ms["Emil"].id, True, now=T0).ok
    vid = opened(db, s, v)

    def agree(now: float) -> None:
        for name, m in ms.items():
            mine = acts.state(db, s.id, now=now, member_id=m.id).mine
            assert (mine.may, mine.reason) == _mine_on_the_whole_list(db, s.id, vid, m.id, now), (name, now)

    agree(T0 + 1)  # eligible holders, the deputy for absent Fritz, conflicted Emil, staff, a guest
    assert acts.cast(db, v["Dora"], s.id, vid, ms["Dora"].id, "no", key(1), now=T0 + 2).ok
    assert acts.cast(db, v["Anna"], s.id, vid, ms["Anna"].id, "yes", key(2), now=T0 + 2).ok
    arrive(db, s.id, ms["Fritz"].id, at=T0 + 3)  # his deputy has voted: he may not
    leave(db, s.id, ms["Bernd"].id, T0 + 3)  # a holder who left: absent_now
    agree(T0 + 4)
    assert acts.state(db, s.id, now=T0 + 4, member_id=ms["Bernd"].id).mine.may is False
    assert acts.close_vote(db, v["Carla"], s.id, now=T0 + 5).ok
    assert acts.state(db, s.id, now=T0 + 6, member_id=ms["Anna"].id).mine.may is False
