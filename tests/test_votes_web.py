"""Votes through the web (issue 14): the member's Abstimmung block and cast (POST /abstimmung, the contract the
load benchmark and the venue test use: fields, 303 / 403 / 409 / 400, JSON answers), the chair's vote panel on
/vorsitz (open, countdown, close, cancel, repeat, conflicted; 403 for anyone else) and the room screen (never a
tally while open; the result after the close; no question of a vote on a non-public item). Refusals write
nothing. Members' phones keep no cookies: requests come without them, the device is known by its address
(tests.live_support.populate admits Anna, Bernd and a guest)."""

from __future__ import annotations

import json
import re
import time

import pytest

from appliance.documents import service as docs
from appliance.helper.client import NullHelper
from appliance.rules.viewer import Viewer
from appliance.usecases import displays, speakers
from appliance.usecases import votes as acts
from appliance.web import csrf
from appliance.web.app import create_app
from tests.conftest import logged_in_clerk
from tests.live_support import ANNA_IP, BERND_IP, GUEST_IP, call, populate, token_in


def arrive(db, sid, *mids):
    for mid in mids:
        db.execute("INSERT INTO presence_intervals(session_id, member_id, start, start_source) "
                   "VALUES (?, ?, ?, 'wifi')", [sid, mid, time.time() - 600])


@pytest.fixture
def box(cfg, db):
    """Anna (SPD) and Bernd (CDU) present and admitted, Carla (SPD) absent; a guest. TOP 1 „Haushalt“ public and
    TOP 2 „Grundstück“ non-public; the room is on TOP 1; Anna chairs on her own phone."""
    s, ms = populate(cfg, db)
    top1 = docs.add_item(db, s.id, "Haushalt", number="1", actor="test")
    top2 = docs.add_item(db, s.id, "Grundstück", number="2", public=False, actor="test")
    clerk = Viewer("clerk", s.id)
    assert speakers.set_chair(db, clerk, s.id, ms["Anna"].id, actor="test")
    assert speakers.set_current_item(db, clerk, s.id, top1, actor="test")
    arrive(db, s.id, ms["Anna"].id, ms["Bernd"].id)
    _display, token = displays.create_display(cfg, db, s.id, "test", "Beamer")
    app = create_app(cfg, helper=NullHelper(), testing=True)
    return app, s, ms, {"top1": top1, "top2": top2, "screen": f"/saal/{token}", "clerk": clerk}


def device_token(app, ip: str) -> str:
    """The device-bound CSRF token a page would carry for this address (a hand-made form)."""
    with app.test_request_context():
        return csrf.device_token(ip)


def page(app, ip, path="/"):
    r = call(app, path, ip)
    return r, r.get_data(as_text=True)


def form_of(html: str) -> dict:
    """The hidden fields of the vote form on a page."""
    part = html[html.index('id="vote-form"'):]
    part = part[:part.index("</form>")]
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', part))


def cast(app, ip, choice, **override):
    _r, html = page(app, ip)
    data = {**form_of(html), "choice": choice, **override}
    return call(app, "/abstimmung", ip, method="POST", data=data)


def ballots(db, vid):
    return db.execute("SELECT member_id, choice FROM vote_ballots WHERE vote_id = ? ORDER BY member_id",
                      [vid]).fetchall()


def log_count(db):
    return db.execute("SELECT COUNT(*) FROM vote_log").fetchone()[0]


def opened(db, s, w, **kw) -> int:
    out = acts.open_vote(db, w["clerk"], s.id, question=kw.pop("question", "Dem Haushalt zustimmen?"),
                         now=time.time(), **kw)
    assert out.ok, out.text
    return out.vote_id


# -- the member ----------------------------------------------------------------------------------------------


def test_member_sees_the_open_vote_casts_without_javascript_and_changes(db, box):
    app, s, ms, w = box
    r, html = page(app, ANNA_IP)
    assert r.status_code == 200 and 'id="abstimmung"' not in html  # no vote: no block, only its live frame
    assert 'id="votes-live" data-live-reload="votes.changed" data-live-url="/abstimmung"' in html
    assert 'data-live-delay="200" data-live-jitter="1300"' in html  # 300 phones do not ask at once
    vid = opened(db, s, w)
    r, html = page(app, ANNA_IP)
    assert 'id="abstimmung"' in html and "Dem Haushalt zustimmen?" in html and "Zu: 1 Haushalt" in html
    fields = form_of(html)
    assert fields["vote_id"] == str(vid) and fields["member_id"] == str(ms["Anna"].id)
    assert re.fullmatch(r"[0-9a-f]{16}", fields["key"]) and fields["csrf_token"]
    assert form_of(page(app, ANNA_IP)[1])["key"] != fields["key"]  # a fresh idempotency key per render
    for c, label in (("yes", "Ja"), ("no", "Nein"), ("abstain", "Enthaltung")):
        assert f'name="choice" value="{c}" id="vote-{c}"' in html and f">{label}</button>" in html
    assert "<script" not in html[html.index('id="vote-form"'):html.index("</form>", html.index('id="vote-form"'))]
    r = cast(app, ANNA_IP, "yes")
    assert r.status_code == 303 and r.headers["Location"].endswith("/#abstimmung")
    assert (ms["Anna"].id, "yes") in ballots(db, vid)
    _r, html = page(app, ANNA_IP)
    assert "Ihre Stimme: Ja" in html and "bis zum Schluss der Abstimmung ändern" in html
    assert 'id="vote-yes" class="button-big vote-yes vote-chosen"' in html
    r = cast(app, ANNA_IP, "no")
    assert r.status_code == 303
    assert (ms["Anna"].id, "no") in ballots(db, vid)
    assert "Ihre Stimme: Nein" in page(app, ANNA_IP)[1]
    assert db.execute("SELECT cast_count FROM votes WHERE id = ?", [vid]).fetchone() == (1,)
    # the block alone, what live-reload.js refetches: no chat, no speakers
    r, live = page(app, ANNA_IP, "/abstimmung")
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    assert 'id="votes-live"' in live and "Ihre Stimme: Nein" in live and 'id="wort"' not in live


def test_a_retry_with_the_same_key_is_counted_once(db, box):
    app, s, ms, w = box
    vid = opened(db, s, w)
    _r, html = page(app, BERND_IP)
    data = {**form_of(html), "choice": "yes"}
    for _ in range(3):
        assert call(app, "/abstimmung", BERND_IP, method="POST", data=data).status_code == 303
    assert db.execute("SELECT cast_count FROM votes WHERE id = ?", [vid]).fetchone() == (1,)
    assert len([a for a, _d in acts.log(db, s.id) if a == "cast"]) == 1


def test_json_answers(db, box):
    app, s, ms, w = box
    vid = opened(db, s, w)
    _r, html = page(app, ANNA_IP)
    data = {**form_of(html), "choice": "abstain"}
    r = call(app, "/abstimmung", ANNA_IP, method="POST", data=data, headers={"Accept": "application/json"})
    assert r.status_code == 200 and r.mimetype == "application/json"
    assert r.get_json() == {"ok": True, "choice": "abstain", "text": "Ihre Stimme: Enthaltung", "vote_id": vid}
    r = call(app, "/abstimmung", ANNA_IP, method="POST", data={**data, "member_id": str(ms["Bernd"].id)},
             headers={"Accept": "application/json"})
    assert r.status_code == 403 and r.get_json()["code"] == "not_own" and r.get_json()["ok"] is False
    assert "anderen Mitglied" in r.get_json()["text"]
    r = call(app, "/abstimmung", ANNA_IP, method="POST", data={**data, "csrf_token": "falsch"},
             headers={"Accept": "application/json"})
    assert r.status_code == 400 and r.get_json()["ok"] is False and r.get_json()["code"] == "csrf"
    r = call(app, "/abstimmung", ANNA_IP, method="POST", data={**data, "choice": "vielleicht", "key": "k" * 16},
             headers={"Accept": "application/json"})
    assert r.status_code == 409 and r.get_json()["code"] == "bad_choice"
    # a device the box has not let through: no redirect to the portal for a JSON client, a refusal
    r = call(app, "/abstimmung", "10.77.0.99", method="POST",
             data={**data, "csrf_token": device_token(app, "10.77.0.99"), "key": "u" * 16},
             headers={"Accept": "application/json"})
    assert r.status_code == 403 and r.get_json()["code"] == "not_member"
    # a form field that is no number
    r = call(app, "/abstimmung", ANNA_IP, method="POST", data={**data, "vote_id": "abc"},
             headers={"Accept": "application/json"})
    assert r.status_code == 400 and r.get_json()["code"] == "field"
    assert db.execute("SELECT choice FROM vote_ballots WHERE member_id = ?", [ms["Anna"].id]).fetchone() == \
        ("abstain",)
    acts.close_vote(db, w["clerk"], s.id, now=time.time())
    r = call(app, "/abstimmung", ANNA_IP, method="POST", data={**data, "key": "k" * 16},
             headers={"Accept": "application/json"})
    assert r.status_code == 409 and r.get_json() == {"ok": False, "code": "closed",
                                                     "text": "Diese Abstimmung ist nicht geöffnet."}


def test_refusals_are_german_and_write_nothing(db, box):
    app, s, ms, w = box
    vid = opened(db, s, w)
    _r, anna_html = page(app, ANNA_IP)
    anna_form = form_of(anna_html)
    before, logged = ballots(db, vid), log_count(db)
    # another member's id on Anna's device
    r = call(app, "/abstimmung", ANNA_IP, method="POST",
             data={**anna_form, "member_id": str(ms["Bernd"].id), "choice": "yes"})
    assert r.status_code == 403
    assert "Dieses Gerät gehört zu einem anderen Mitglied" in r.get_data(as_text=True)
    assert 'id="vote-error"' in r.get_data(as_text=True)
    # a guest: sees that a vote runs, has no form; a hand-made POST is refused
    r, html = page(app, GUEST_IP)
    assert "Abstimmung läuft" in html and 'id="vote-form"' not in html and 'id="vote-guest"' in html
    r = call(app, "/abstimmung", GUEST_IP, method="POST",
             data={"csrf_token": device_token(app, GUEST_IP), "vote_id": str(vid), "member_id": str(ms["Anna"].id),
                   "choice": "yes", "key": "g" * 16})
    assert r.status_code == 403 and "Gäste stimmen nicht ab." in r.get_data(as_text=True)
    # a wrong CSRF token
    r = call(app, "/abstimmung", ANNA_IP, method="POST", data={**anna_form, "csrf_token": "falsch", "choice": "yes"})
    assert r.status_code == 400
    assert ballots(db, vid) == before and log_count(db) == logged  # nothing written by any of them
    # after the close
    assert acts.close_vote(db, w["clerk"], s.id, now=time.time())
    closed_ballots, logged = ballots(db, vid), log_count(db)
    r = call(app, "/abstimmung", ANNA_IP, method="POST", data={**anna_form, "choice": "yes"})
    assert r.status_code == 409 and "Diese Abstimmung ist nicht geöffnet." in r.get_data(as_text=True)
    assert ballots(db, vid) == closed_ballots and log_count(db) == logged


def test_a_member_who_may_not_vote_sees_the_reason_instead_of_buttons(db, box, cfg):
    app, s, ms, w = box
    acts.set_conflicted(db, w["clerk"], s.id, w["top1"], ms["Bernd"].id, True, now=time.time())
    opened(db, s, w)
    _r, html = page(app, BERND_IP)
    assert 'id="vote-form"' not in html
    assert "Bernd Müller ist bei diesem Punkt befangen" in html


def test_no_change_allowed_shows_the_vote_without_buttons(db, box):
    app, s, ms, w = box
    assert acts.set_may_change(db, w["clerk"], "", False, session_id=s.id, now=time.time())
    vid = opened(db, s, w)
    assert cast(app, ANNA_IP, "yes").status_code == 303
    _r, html = page(app, ANNA_IP)
    assert "Ihre Stimme: Ja" in html and 'id="vote-form"' not in html
    assert "die Geschäftsordnung erlaubt keine Änderung" in html
    _r, html0 = page(app, ANNA_IP)
    r = call(app, "/abstimmung", ANNA_IP, method="POST",
             data={"csrf_token": token_in(html0), "vote_id": str(vid), "member_id": str(ms["Anna"].id),
                   "choice": "no", "key": "n" * 16})
    assert r.status_code == 409
    assert (ms["Anna"].id, "yes") in ballots(db, vid)


def test_the_block_in_english(db, box):
    app, s, ms, w = box
    opened(db, s, w)
    _r, html = page(app, ANNA_IP, "/?lang=en")
    assert "Vote in progress" in html and ">Yes</button>" in html and ">Abstain</button>" in html
    fields = form_of(html)
    r = call(app, "/abstimmung?lang=en", ANNA_IP, method="POST", data={**fields, "choice": "no"})
    assert r.status_code == 303 and "lang=en" in r.headers["Location"]
    assert "Your vote: No" in page(app, ANNA_IP, "/?lang=en")[1]


# -- the chair's console -------------------------------------------------------------------------------------


def console_post(app, ip, path, data):
    _r, html = page(app, ip, "/vorsitz")
    return call(app, path, ip, method="POST", data={"csrf_token": token_in(html), **data})


def test_the_chair_opens_counts_closes_and_repeats_on_the_console(db, box):
    app, s, ms, w = box
    r, html = page(app, ANNA_IP, "/vorsitz")
    assert r.status_code == 200 and 'id="vote-open-form"' in html
    assert ">Haushalt</textarea>" in html  # the question prefilled from the room's item
    r = console_post(app, ANNA_IP, "/vorsitz/abstimmung",
                     {"question": "Dem Haushalt 2027 zustimmen?", "mode": "named", "rule": "simple"})
    assert r.status_code == 303 and r.headers["Location"].endswith("/vorsitz#abstimmung")
    st = acts.state(db, s.id, now=time.time())
    assert st.current.state == "open" and st.current.mode == "named" and st.current.eligible == 2
    _r, html = page(app, ANNA_IP, "/vorsitz")
    assert "0 von 2 haben abgestimmt" in html  # the quorum status at the opening: 2 of 3 statutory members
    assert "Beschlussfähig: 2 Stimmberechtigte anwesend, nötig sind 2 (gesetzliche Mitgliederzahl 3)." in html
    assert 'data-live-reload="votes.changed votes.progress"' in html
    assert cast(app, BERND_IP, "no").status_code == 303
    assert "1 von 2 haben abgestimmt" in page(app, ANNA_IP, "/vorsitz")[1]
    r = console_post(app, ANNA_IP, "/vorsitz/abstimmung/countdown", {"seconds": "30"})
    assert r.status_code == 303
    assert re.search(r"Die Abstimmung schließt in (30|29) Sekunden.", page(app, ANNA_IP, "/vorsitz")[1])
    r = console_post(app, ANNA_IP, "/vorsitz/abstimmung/schliessen", {"vote": str(st.current.id)})
    assert r.status_code == 303
    _r, html = page(app, ANNA_IP, "/vorsitz")
    assert "Abgelehnt" in html and 'id="vote-named"' in html and "Bernd Müller" in html
    assert 'id="vote-repeat"' in html
    # a second close of the same vote: refused in German on the console, nothing written
    logged = log_count(db)
    r = console_post(app, ANNA_IP, "/vorsitz/abstimmung/schliessen", {"vote": str(st.current.id)})
    assert r.status_code == 409 and "Diese Abstimmung ist nicht geöffnet." in r.get_data(as_text=True)
    assert log_count(db) == logged
    r = console_post(app, ANNA_IP, "/vorsitz/abstimmung/wiederholen", {"vote": str(st.current.id)})
    assert r.status_code == 303
    again = acts.state(db, s.id, now=time.time()).current
    assert again.state == "open" and again.attempt == 2 and again.repeat_of == st.current.id
    r = console_post(app, ANNA_IP, "/vorsitz/abstimmung/abbrechen", {"vote": str(again.id), "reason": "Unruhe"})
    assert r.status_code == 303
    _r, html = page(app, ANNA_IP, "/vorsitz")
    assert "Abstimmung abgebrochen" in html and "Grund: Unruhe" in html
    assert [v.state for v in acts.votes(db, s.id)] == ["closed", "cancelled"]


def test_custom_rule_and_conflicted_from_the_console(db, box):
    app, s, ms, w = box
    r = console_post(app, ANNA_IP, "/vorsitz/abstimmung/befangen",
                     {"member": str(ms["Bernd"].id), "item": str(w["top1"]), "conflicted": "1"})
    assert r.status_code == 303
    assert db.execute("SELECT member_id FROM vote_conflicts").fetchall() == [(ms["Bernd"].id,)]
    r = console_post(app, ANNA_IP, "/vorsitz/abstimmung",
                     {"question": "Satzung ändern?", "mode": "open", "rule": "custom", "num": "3", "den": "4",
                      "base": "statutory", "strict": "1"})
    assert r.status_code == 303
    v = acts.state(db, s.id, now=time.time()).current
    assert v.eligible == 1 and v.conflicted == 1 and "mehr als 3/4 der gesetzlichen Mitgliederzahl" in v.rule_words
    # a custom majority the rules refuse: the German sentence, nothing opened
    acts.cancel_vote(db, w["clerk"], s.id, now=time.time())
    n = db.execute("SELECT COUNT(*) FROM votes").fetchone()[0]
    r = console_post(app, ANNA_IP, "/vorsitz/abstimmung",
                     {"question": "x", "mode": "open", "rule": "custom", "num": "5", "den": "4", "base": "cast"})
    assert r.status_code == 409 and "Die Mehrheit muss ein Bruch" in r.get_data(as_text=True)
    assert 'id="vote-console-error"' in r.get_data(as_text=True)
    assert db.execute("SELECT COUNT(*) FROM votes").fetchone()[0] == n


def test_only_the_chair_or_a_clerk_runs_a_vote(db, box, cfg):
    app, s, ms, w = box
    r, html = page(app, BERND_IP, "/vorsitz")
    assert r.status_code == 403
    for path, data in (("/vorsitz/abstimmung", {"question": "x", "mode": "open", "rule": "simple"}),
                       ("/vorsitz/abstimmung/countdown", {"seconds": "10"})):
        r = call(app, path, BERND_IP, method="POST", data={"csrf_token": token_in(page(app, BERND_IP)[1]), **data})
        assert r.status_code == 403
    assert db.execute("SELECT COUNT(*) FROM votes").fetchone()[0] == 0
    clerk, token = logged_in_clerk(cfg, db, "/vorsitz")
    r = clerk.post("/vorsitz/abstimmung", data={"csrf_token": token, "question": "Vom Sitzungsdienst?",
                                                 "mode": "open", "rule": "two_thirds"})
    assert r.status_code == 303
    assert acts.state(db, s.id, now=time.time()).current.question == "Vom Sitzungsdienst?"
    assert 'id="vote-progress"' in clerk.get("/vorsitz").get_data(as_text=True)


# -- the room screen -----------------------------------------------------------------------------------------


def test_room_screen_shows_the_count_never_the_tally_while_open_then_the_result(db, box):
    app, s, ms, w = box
    screen = w["screen"]
    html = call(app, screen, "10.77.0.200").get_data(as_text=True)
    assert 'id="saal-vote"' not in html
    vid = opened(db, s, w, mode="named")
    cast(app, ANNA_IP, "yes")
    cast(app, BERND_IP, "no")
    cast(app, BERND_IP, "yes")  # changed
    html = call(app, screen, "10.77.0.200").get_data(as_text=True)
    assert "Abstimmung läuft" in html and "2 von 2 Stimmen abgegeben" in html and "Dem Haushalt zustimmen?" in html
    for leak in ('id="vote-counts"', 'id="vote-factions"', 'id="vote-named"', "vote-count-yes", "Angenommen",
                 "Abgelehnt"):
        assert leak not in html
    assert acts.close_vote(db, w["clerk"], s.id, now=time.time(), vote_id=vid)
    html = call(app, screen, "10.77.0.200").get_data(as_text=True)
    assert 'id="vote-count-yes">2<' in html and 'id="vote-count-no">0<' in html
    assert "Angenommen" in html and 'id="vote-factions"' in html
    for name, faction in (("Anna Schmidt", "SPD"), ("Bernd Müller", "CDU")):
        assert f'{name}</span> <span class="vote-n-faction">{faction}</span> <span class="vote-n-choice">Ja' in html
    # the next item: the result leaves the screen
    speakers.set_current_item(db, w["clerk"], s.id, w["top2"], actor="test")
    assert 'id="saal-vote"' not in call(app, screen, "10.77.0.200").get_data(as_text=True)


def test_room_screen_hides_the_question_of_a_non_public_item(db, box):
    app, s, ms, w = box
    speakers.set_current_item(db, w["clerk"], s.id, w["top2"], actor="test")
    vid = opened(db, s, w, question="Grundstück an Firma X verkaufen?", mode="named")
    html = call(app, w["screen"], "10.77.0.200").get_data(as_text=True)
    assert 'id="saal-vote"' in html and "Grundstück an Firma X" not in html and "0 von 2 Stimmen" in html
    cast(app, ANNA_IP, "yes")
    assert acts.close_vote(db, w["clerk"], s.id, now=time.time(), vote_id=vid)
    html = call(app, w["screen"], "10.77.0.200").get_data(as_text=True)
    assert "Grundstück an Firma X" not in html and "Anna Schmidt" not in html and 'id="vote-count-yes">1<' in html
    # the guest on the start page sees it as the hall does; members see the question
    assert "Grundstück an Firma X" not in page(app, GUEST_IP)[1]
    assert "Grundstück an Firma X" in page(app, ANNA_IP)[1]


def test_progress_reaches_the_screen_and_the_chair_but_not_the_phones(db, box):
    app, s, ms, w = box
    before = db.execute("SELECT COALESCE(MAX(id), 0) FROM push_events").fetchone()[0]
    opened(db, s, w)
    cast(app, BERND_IP, "yes")
    evs = db.execute("SELECT topic, audience, payload FROM push_events WHERE id > ? ORDER BY id", [before]).fetchall()
    progress = {a for t, a, _p in evs if t == acts.PROGRESS}
    assert progress == {"clerks", f"member:{ms['Anna'].id}"} | {
        f"display:{d}" for (d,) in db.execute("SELECT id FROM displays")}
    assert json.loads(next(p for t, _a, p in evs if t == acts.PROGRESS))["cast"] == 1
