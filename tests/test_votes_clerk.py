"""The clerk's votes page through the web (issue 14, web.votes_clerk): each form stores what it says (the same act
as usecases.votes), a refusal answers with the act's German sentence and stores nothing, the minutes print page
has the named list and the per-faction counts, the CSV and JSON downloads parse and match the use case's minutes,
and a member's device reaches none of it (tests.live_support.populate: Anna and Bernd admitted; Carla absent;
Dora a deputy)."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

from appliance.documents import service as docs
from appliance.helper.client import NullHelper
from appliance.rules.viewer import Viewer
from appliance.usecases import speakers
from appliance.usecases import votes as acts
from appliance.web.app import create_app
from tests.atomic_support import dump
from tests.conftest import logged_in_clerk
from tests.live_support import ANNA_IP, call, populate

T0 = 1_800_000_000.0


def arrive(db, sid: int, *mids: int) -> None:
    for mid in mids:
        db.execute("INSERT INTO presence_intervals(session_id, member_id, start, start_source) "
                   "VALUES (?, ?, ?, 'wifi')", [sid, mid, T0 - 600])


@pytest.fixture
def box(cfg, db):
    """populate's session with TOP 1 „Haushalt“ (the room's item) and TOP 2; Anna, Bernd and Dora present; the
    clerk logged in on the votes page."""
    s, ms = populate(cfg, db)
    top1 = docs.add_item(db, s.id, "Haushalt", number="1", actor="test")
    top2 = docs.add_item(db, s.id, "Schulbau", number="2", actor="test")
    assert speakers.set_current_item(db, Viewer("clerk", s.id), s.id, top1, actor="test")
    arrive(db, s.id, ms["Anna"].id, ms["Bernd"].id, ms["Dora"].id)
    c, token = logged_in_clerk(cfg, db, f"/clerk/sessions/{s.id}/abstimmungen")
    return c, token, s, ms, top1, top2


def url(s, tail: str = "") -> str:
    return f"/clerk/sessions/{s.id}/abstimmungen{tail}"


def alert(html: str) -> str:
    m = re.search(r'<p class="flash flash-error" role="alert" id="votes-error">(.*?)</p>', html, re.S)
    return m.group(1) if m else ""


def test_the_session_page_links_the_votes_page_which_shows_every_part(cfg, db, box):
    c, _token, s, _ms, _top1, _top2 = box
    assert f'href="{url(s)}"' in c.get(f"/clerk/sessions/{s.id}").get_data(as_text=True)
    r = c.get(url(s))
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    html = r.get_data(as_text=True)
    for part in ('id="running"', 'id="running-none"', 'id="deputies"', 'id="deputy-', 'id="conflict-form"',
                 'id="setting-form"', 'id="paper-majority"', 'id="paper-election"', 'id="paper-seats"',
                 'id="votes-none"', 'id="papers-none"', 'id="votes-minutes-link"'):
        assert part in html, part
    assert "Stimmen bis zum Schluss änderbar" in html
    assert c.get("/clerk/sessions/999/abstimmungen").status_code == 404


def test_deputy_form_records_and_clears_and_a_refusal_stores_nothing(cfg, db, box):
    c, token, s, ms, *_ = box
    dora, carla = ms["Dora"].id, ms["Carla"].id
    r = c.post(url(s, "/vertretung"), data={"csrf_token": token, "deputy": str(dora), "member": str(carla)})
    assert r.status_code == 303 and r.headers["Location"].endswith(f"{url(s)}#deputies")
    assert acts.records(db, s.id).deputies == {dora: carla}
    html = c.get(url(s)).get_data(as_text=True)
    assert "Dora Klein vertritt Carla Weber." in html  # the act's sentence as a note
    assert f'<option value="{carla}" selected>' in html
    before = dump(db)
    r = c.post(url(s, "/vertretung"), data={"csrf_token": token, "deputy": str(ms["Anna"].id), "member": str(carla)})
    assert r.status_code == 422
    assert alert(r.get_data(as_text=True)) == acts.TEXTS["not_deputy"]
    assert dump(db) == before
    r = c.post(url(s, "/vertretung"), data={"csrf_token": token, "deputy": str(dora), "member": ""})
    assert r.status_code == 303 and acts.records(db, s.id).deputies == {}


def test_conflict_form_marks_and_unmarks_per_item(cfg, db, box):
    c, token, s, ms, top1, top2 = box
    bernd = ms["Bernd"].id
    r = c.post(url(s, "/befangen"), data={"csrf_token": token, "item": str(top2), "member": str(bernd),
                                          "conflicted": "1"})
    assert r.status_code == 303
    assert acts.records(db, s.id).conflicts == {top2: [bernd]}
    html = c.get(url(s)).get_data(as_text=True)
    assert f'id="conflict-{top2}-{bernd}"' in html and "Bernd Müller ist als befangen vermerkt." in html
    before = dump(db)
    r = c.post(url(s, "/befangen"), data={"csrf_token": token, "item": "999", "member": str(bernd),
                                          "conflicted": "1"})
    assert r.status_code == 422 and alert(r.get_data(as_text=True)) == acts.TEXTS["no_item"]
    assert dump(db) == before
    r = c.post(url(s, "/befangen"), data={"csrf_token": token, "item": str(top2), "member": str(bernd),
                                          "conflicted": "0"})
    assert r.status_code == 303 and acts.records(db, s.id).conflicts == {}
    # a conflict on the room's item counts at the next opening
    c.post(url(s, "/befangen"), data={"csrf_token": token, "item": str(top1), "member": str(bernd), "conflicted": "1"})
    out = acts.open_vote(db, Viewer("clerk", s.id), s.id, question="Haushalt?", now=T0)
    assert out.ok and db.execute("SELECT eligible, conflicted FROM votes WHERE id = ?", [out.vote_id]).fetchone() \
        == (1, 1)


def test_may_change_setting(cfg, db, box):
    c, token, s, *_ = box
    assert acts.records(db, s.id).may_change is True
    r = c.post(url(s, "/aenderung"), data={"csrf_token": token, "allowed": "0"})
    assert r.status_code == 303 and acts.records(db, s.id).may_change is False
    assert 'id="may-change-0" name="allowed" value="0" checked' in c.get(url(s)).get_data(as_text=True)
    before = dump(db)
    r = c.post(url(s, "/aenderung"), data={"csrf_token": token, "allowed": "vielleicht"})
    assert r.status_code == 400 and "allowed" in r.get_data(as_text=True)
    assert dump(db) == before


def test_hand_entry_for_a_member_whose_device_failed(cfg, db, box):
    c, token, s, ms, *_ = box
    vid = acts.open_vote(db, Viewer("clerk", s.id), s.id, question="Haushalt beschließen?", now=T0,
                         mode="named").vote_id
    html = c.get(url(s)).get_data(as_text=True)
    assert 'id="running-vote"' in html and "Haushalt beschließen?" in html
    assert f'id="waiting-{ms["Anna"].id}"' in html and f'id="waiting-{ms["Bernd"].id}"' in html
    assert f'id="waiting-{ms["Carla"].id}"' not in html  # absent at the opening: no ballot
    r = c.post(url(s, "/hand"), data={"csrf_token": token, "vote": str(vid), "member": str(ms["Bernd"].id),
                                      "choice": "no"})
    assert r.status_code == 303 and r.headers["Location"].endswith("#running")
    assert db.execute("SELECT choice, by_clerk FROM vote_ballots WHERE vote_id = ? AND member_id = ?",
                      [vid, ms["Bernd"].id]).fetchone() == ("no", 1)
    html = c.get(url(s)).get_data(as_text=True)
    assert f'id="waiting-{ms["Bernd"].id}"' not in html and "Stimme eingetragen: Nein" in html
    before = dump(db)
    for form, text in (({"member": str(ms["Carla"].id), "choice": "yes"}, "Carla Weber war bei der Eröffnung"),
                       ({"member": str(ms["Anna"].id), "choice": "vielleicht"}, acts.TEXTS["bad_choice"]),
                       ({"member": "999", "choice": "yes"}, acts.TEXTS["no_member"])):
        r = c.post(url(s, "/hand"), data={"csrf_token": token, "vote": str(vid), **form})
        assert r.status_code in (409, 422) and text in alert(r.get_data(as_text=True)), form
    assert dump(db) == before
    acts.close_vote(db, Viewer("clerk", s.id), s.id, now=T0 + 10)
    r = c.post(url(s, "/hand"), data={"csrf_token": token, "vote": str(vid), "member": str(ms["Anna"].id),
                                      "choice": "yes"})
    assert r.status_code == 409 and alert(r.get_data(as_text=True)) == "Diese Abstimmung ist nicht geöffnet."


def _paper(c, token, s, **form):
    data = {"csrf_token": token, "title": "Wahl", **form}
    return c.post(url(s, "/stimmzettel"), data=data)


def test_paper_ballots_are_computed_with_their_steps(cfg, db, box):
    c, token, s, _ms, top1, _top2 = box
    r = _paper(c, token, s, kind="majority", item=str(top1), yes="10", no="5", abstain="2", rule="two_thirds")
    assert r.status_code == 303
    (p,) = acts.papers(db, s.id)
    assert r.headers["Location"].endswith(f"#paper-{p.id}")
    assert p.kind == "majority" and p.input["yes"] == 10 and p.outcome == {"accepted": True}
    r = _paper(c, token, s, kind="majority", yes="3", no="1", rule="custom", num="3", den="4", base="cast",
               strict="1")
    assert r.status_code == 303 and acts.papers(db, s.id)[-1].outcome == {"accepted": False}
    r = _paper(c, token, s, kind="election", name=["Anna Schmidt", "Carla Weber", ""], count=["7", "7", ""], no="1")
    assert r.status_code == 303
    assert acts.papers(db, s.id)[-1].outcome["outcome"] == "runoff"
    r = _paper(c, token, s, kind="runoff", name=["Anna Schmidt", "Carla Weber"], count=["8", "8"])
    runoff = acts.papers(db, s.id)[-1]
    assert r.status_code == 303 and runoff.outcome["outcome"] == "lot"
    r = _paper(c, token, s, kind="hare_niemeyer", name=["SPD", "CDU", "Grüne"], count=["10", "10", "5"], seats="4")
    hare = acts.papers(db, s.id)[-1]
    assert r.status_code == 303 and hare.outcome["lot"] == ["SPD", "CDU"]
    r = _paper(c, token, s, kind="dhondt", name=["SPD", "CDU"], count=["300", "200"], seats="5")
    assert r.status_code == 303 and acts.papers(db, s.id)[-1].outcome["seats"] == {"SPD": 3, "CDU": 2}
    html = c.get(url(s)).get_data(as_text=True)
    for p in (runoff, hare):
        block = html[html.index(f'id="paper-{p.id}"'):]
        block = block[:block.index("</section>")]
        assert f'id="paper-{p.id}-lot"' in block and "Los erforderlich" in block
        assert all(line in block for line in p.steps)
    assert "Ergebnis: SPD 3, CDU 2." in html
    assert html.count('class="warning" role="note"') == 2  # a lot only where one is due


@pytest.mark.parametrize(("form", "code"), [
    ({"kind": "majority", "yes": "abc", "no": "1"}, "bad_counts"),
    ({"kind": "majority", "yes": "1", "rule": "custom", "num": "5", "den": "4"}, "bad_rule"),
    ({"kind": "election", "name": ["Anna"], "count": [""]}, "bad_counts"),
    ({"kind": "election", "name": [""], "count": [""]}, "no_candidates"),
    ({"kind": "dhondt", "name": ["SPD"], "count": ["10"], "seats": ""}, "bad_seats"),
    ({"kind": "lotto"}, "bad_paper"),
    ({"kind": "majority", "title": " "}, "no_question"),
])
def test_bad_paper_input_is_refused_in_german_and_nothing_is_stored(cfg, db, box, form, code):
    c, token, s, *_ = box
    before = dump(db)
    r = _paper(c, token, s, **form)
    html = r.get_data(as_text=True)
    assert r.status_code == 422
    text = alert(html)
    assert text and (text == acts.TEXTS.get(code) or code == "bad_rule"), text
    assert dump(db) == before
    if form.get("yes") == "abc":  # the form comes back as it was sent
        assert 'id="majority-yes" name="yes" value="abc"' in html


def test_a_name_twice_is_no_form_the_page_sends(cfg, db, box):
    c, token, s, *_ = box
    r = _paper(c, token, s, kind="dhondt", name=["SPD", "SPD"], count=["1", "2"], seats="2")
    assert r.status_code == 400 and acts.papers(db, s.id) == []


def _named_vote(db, s, ms) -> int:
    clerk = Viewer("clerk", s.id)
    assert acts.set_conflicted(db, clerk, s.id, None, ms["Dora"].id, True, now=T0).ok  # not eligible anyway
    vid = acts.open_vote(db, clerk, s.id, question="Dem Haushalt zustimmen?", now=T0, mode="named").vote_id
    anna = Viewer("member", s.id, ms["Anna"], True, ANNA_IP)
    assert acts.cast(db, anna, s.id, vid, ms["Anna"].id, "yes", "key-0000-0001", now=T0 + 1).ok
    assert acts.enter_by_hand(db, clerk, s.id, vid, ms["Bernd"].id, "no", now=T0 + 2).ok
    assert acts.close_vote(db, clerk, s.id, now=T0 + 5).ok
    return vid


def test_minutes_print_page_has_the_named_list_and_per_faction_counts(cfg, db, box):
    c, _token, s, ms, *_ = box
    vid = _named_vote(db, s, ms)
    acts.open_vote(db, Viewer("clerk", s.id), s.id, question="Vertagen?", now=T0 + 20)
    acts.cancel_vote(db, Viewer("clerk", s.id), s.id, now=T0 + 30, reason="Technische Störung")
    acts.record_paper(db, Viewer("clerk", s.id), s.id, "dhondt", title="Ausschuss", now=T0 + 40,
                      counts={"SPD": 10, "CDU": 10}, seats=1)
    r = c.get(url(s, "/protokoll"))
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    html = r.get_data(as_text=True)
    block = html[html.index(f'id="vote-{vid}"'):html.index(f'id="vote-{vid + 1}"')]
    assert "Dem Haushalt zustimmen?" in block and "1 Haushalt" in block and "namentlich" in block
    named = block[block.index(f'id="vote-{vid}-named"'):]
    assert re.search(r"<td>Anna Schmidt</td><td>SPD</td><td>Ja</td>", named)
    assert re.search(r"<td>Bernd Müller</td><td>CDU</td><td>Nein \(vom Sitzungsdienst eingetragen\)</td>", named)
    factions = block[block.index(f'id="vote-{vid}-factions"'):]
    assert "<td>SPD</td><td>1</td><td>1</td><td>0</td><td>0</td>" in factions
    assert "<td>CDU</td><td>1</td><td>0</td><td>1</td><td>0</td>" in factions
    assert "Ja 1, Nein 1, Enthaltungen 0" in block and "abgelehnt" in block  # a tie
    assert "einfache Mehrheit" in block and "2 stimmberechtigt" in block
    assert re.search(r"Von Hand eingetragen</th><td>1</td>", block)
    assert "Technische Störung" in html and "abgebrochen" in html
    assert "Los erforderlich" in html and "d&#39;Hondt" in html


def test_csv_and_json_downloads_match_the_minutes(cfg, db, box):
    c, _token, s, ms, *_ = box
    vid = _named_vote(db, s, ms)
    r = c.get(f"/clerk/sessions/{s.id}/abstimmungen.csv")
    assert r.status_code == 200 and r.mimetype == "text/csv" and r.headers["Cache-Control"] == "no-store"
    assert r.headers["Content-Disposition"] == f'attachment; filename="abstimmungen-{s.date}.csv"'
    text = r.get_data().decode("utf-8-sig")
    assert text == acts.minutes_csv(acts.minutes(db, s.id), cfg.timezone).lstrip("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text), delimiter=";"))
    assert rows[0]["Abstimmung"] == str(vid) and rows[0]["Ja"] == "1" and rows[0]["Ergebnis"] == "abgelehnt"
    assert {(x["Name"], x["Stimme"], x["Von Hand eingetragen"]) for x in rows if x["Name"]} == {
        ("Anna Schmidt", "Ja", ""), ("Bernd Müller", "Nein", "ja")}
    r = c.get(f"/clerk/sessions/{s.id}/abstimmungen.json")
    assert r.status_code == 200 and r.mimetype == "application/json" and r.headers["Cache-Control"] == "no-store"
    assert r.headers["Content-Disposition"] == f'attachment; filename="abstimmungen-{s.date}.json"'
    data = json.loads(r.get_data(as_text=True))
    assert data == json.loads(acts.minutes_json(acts.minutes(db, s.id)))
    (v,) = data["votes"]
    assert (v["yes"], v["no"], v["by_hand"]) == (1, 1, 1) and {n["name"] for n in v["named"]} == {
        "Anna Schmidt", "Bernd Müller"}


def test_a_members_device_reaches_no_clerk_votes_page(cfg, db, box):
    _c, _token, s, ms, top1, _top2 = box
    app = create_app(cfg, helper=NullHelper(), testing=True)
    for tail in ("", "/protokoll", ".csv", ".json"):
        r = call(app, f"/clerk/sessions/{s.id}/abstimmungen{tail}", ANNA_IP)
        assert r.status_code in (302, 303) and "/clerk/login" in r.headers["Location"], tail
    before = dump(db)
    page = call(app, "/", ANNA_IP).get_data(as_text=True)
    device_token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    for tail, form in (("/vertretung", {"deputy": str(ms["Dora"].id), "member": str(ms["Carla"].id)}),
                       ("/befangen", {"item": str(top1), "member": str(ms["Bernd"].id), "conflicted": "1"}),
                       ("/aenderung", {"allowed": "0"}),
                       ("/stimmzettel", {"kind": "majority", "title": "x", "yes": "1"})):
        r = call(app, url(s, tail), ANNA_IP, method="POST", data={"csrf_token": device_token, **form})
        assert r.status_code in (302, 303, 400, 403), (tail, r.status_code)
    assert dump(db) == before
    # signed out, a clerk's browser is sent to the login too
    anon = create_app(cfg, helper=NullHelper(), testing=True).test_client()
    r = anon.get(url(s))
    assert r.status_code in (302, 303) and "/clerk/login" in r.headers["Location"]

