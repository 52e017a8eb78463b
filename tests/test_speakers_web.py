"""The speakers pages through the web (issue 13): the members' Wortmeldung block on the start page, the chair's
console (/vorsitz) and the clerk's chair, minutes CSV and print page. Each act: its status, its German refusal on
the page, and nothing written when refused. Members' phones keep no cookies: requests come without them, the
device is known by its address (tests.live_support.populate admits Anna, Bernd and a guest)."""

from __future__ import annotations

import io
import re
import time

import pytest

from appliance.documents import bulk
from appliance.documents import service as docs
from appliance.helper.client import NullHelper
from appliance.rules.viewer import Viewer
from appliance.sessions import service
from appliance.sessions.roster import MemberRow
from appliance.store.db import now as iso_now
from appliance.usecases import speakers as acts
from appliance.web.app import create_app
from tests.conftest import logged_in_clerk
from tests.live_support import ANNA_IP, BERND_IP, GUEST_IP, call, populate, token_in


@pytest.fixture
def box(cfg, db):
    """Anna and Bernd (members, admitted), a guest; TOP 1 „Haushalt“ with a document. No chair named yet."""
    s, ms = populate(cfg, db)
    top1 = docs.add_item(db, s.id, "Haushalt", number="1", actor="test")
    blobs = docs.blobs_for(cfg.state_dir)
    bulk.import_entries(db, blobs, s.id, [bulk.Entry(None, "vorlage.txt", 6, lambda: io.BytesIO(b"Text.\n"))],
                        item_id=top1, actor="test")
    app = create_app(cfg, helper=NullHelper(), testing=True)
    return app, s, ms, top1


def rows(db, sid):
    return db.execute("SELECT member_id, kind, state FROM speakers_requests WHERE session_id = ? ORDER BY id",
                      [sid]).fetchall()


def page(app, ip, path="/"):
    r = call(app, path, ip)
    return r, r.get_data(as_text=True)


def post(app, ip, path, data, from_page="/"):
    """A device's form: the device-bound token from the page it was served on, no cookie."""
    _r, html = page(app, ip, from_page)
    return call(app, path, ip, method="POST", data={"csrf_token": token_in(html), **data})


def chair(db, s, member):
    assert acts.set_chair(db, Viewer("clerk", s.id), s.id, member.id, actor="test")


# -- the member's start page -------------------------------------------------------------------------------


def test_member_asks_sees_place_and_withdraws_without_javascript(db, box):
    app, s, ms, _top1 = box
    r, html = page(app, ANNA_IP)
    assert r.status_code == 200 and 'id="wort"' in html
    assert 'data-live-reload="speakers.changed agenda.current"' in html  # live with JS
    assert 'id="ask-contribution"' in html and 'id="ask-point_of_order"' in html
    assert 'id="ask-intervention"' not in html and 'id="ask-pro"' not in html  # nobody speaks, no motion runs
    r = post(app, ANNA_IP, "/wort", {"kind": "contribution"})
    assert r.status_code == 303 and r.headers["Location"].endswith("/#wort")
    assert rows(db, s.id) == [(ms["Anna"].id, "contribution", "waiting")]
    r = post(app, BERND_IP, "/wort", {"kind": "contribution"})
    _r, html = page(app, BERND_IP)
    assert "Sie stehen auf Platz 2." in html and 'id="ask-contribution"' not in html  # already on the list
    assert "Anna Schmidt (SPD)" in html  # the queue, read-only
    rid = db.execute("SELECT id FROM speakers_requests WHERE member_id = ?", [ms["Bernd"].id]).fetchone()[0]
    r = post(app, BERND_IP, "/wort/zurueck", {"request": str(rid)})
    assert r.status_code == 303
    assert rows(db, s.id)[1] == (ms["Bernd"].id, "contribution", "withdrawn")
    _r, html = page(app, BERND_IP)
    assert 'id="ask-contribution"' in html and "Platz" not in html
    # the block alone, what live-reload.js refetches on every phone when the list changes: no chat, no presence
    r, live = page(app, ANNA_IP, "/wort")
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    assert 'id="speakers-live"' in live and "Sie stehen auf Platz 1." in live and 'id="chat-link"' not in live
    assert 'data-live-url="/wort"' in html


def test_guest_sees_the_list_read_only_and_is_refused_in_german(db, box):
    app, s, ms, _top1 = box
    acts.request(db, Viewer("member", s.id, ms["Anna"], True, ANNA_IP), s.id, now=time.time())
    r, html = page(app, GUEST_IP)
    assert r.status_code == 200 and "Anna Schmidt" in html
    assert 'id="speakers-ask"' not in html and 'id="speakers-readonly"' in html and "withdraw-" not in html
    before = rows(db, s.id)
    r = post(app, GUEST_IP, "/wort", {"kind": "contribution"}, "/chat")  # a hand-made form: the token of its chat page
    assert r.status_code == 403
    assert "Gäste können sich nicht zu Wort melden." in r.get_data(as_text=True)
    assert rows(db, s.id) == before


def test_a_member_cannot_withdraw_another_members_request(db, box):
    app, s, ms, _top1 = box
    out = acts.request(db, Viewer("member", s.id, ms["Anna"], True, ANNA_IP), s.id, now=time.time())
    r = post(app, BERND_IP, "/wort/zurueck", {"request": str(out.request_id)})
    assert r.status_code == 403
    assert "Sie können nur Ihre eigene Wortmeldung zurückziehen." in r.get_data(as_text=True)
    assert rows(db, s.id) == [(ms["Anna"].id, "contribution", "waiting")]


def test_administration_staff_device_reads_the_list_and_is_added_by_hand_only(cfg, db, box):
    """A member of the administration on the list, with a device: no buttons (the rules refuse them), a word on
    how they get the floor; their hand-made POST is refused and writes nothing."""
    app, s, _ms, _top1 = box
    service.insert_members(db, s.id, [MemberRow("Erik Amt", "", "administration", False, "Rat")])
    erik = next(m for m in service.members(db, s.id) if m.name == "Erik Amt")
    ip, mac = "10.77.0.20", "02:5c:00:00:00:20"
    with open(cfg.leases_file, "a") as f:
        f.write(f"0 {mac} {ip} * *\n")
    db.execute("INSERT INTO stations(mac, interface, keyid, connected) VALUES (?, 'wlan0', ?, 1)", [mac, erik.keyid])
    db.execute("INSERT INTO admissions(session_id, mac, ip, member_id, kind, admitted_at) VALUES (?, ?, ?, ?, "
               "'member', ?)", [s.id, mac, ip, erik.id, iso_now()])
    r, html = page(app, ip)
    assert r.status_code == 200 and "Willkommen, Erik Amt" in html
    assert 'id="speakers-ask"' not in html and "Die Sitzungsleitung setzt Sie bei Bedarf" in html
    r = call(app, "/wort", ip, method="POST", data={"csrf_token": token_in(page(app, ip, "/chat")[1]),
                                                      "kind": "contribution"})
    assert r.status_code == 403 and "Nur Mitglieder und Stellvertretungen" in r.get_data(as_text=True)
    assert rows(db, s.id) == []


def test_closed_list_offers_no_contribution_and_refuses_it(db, box):
    app, s, ms, _top1 = box
    acts.close_list(db, Viewer("clerk", s.id), s.id)
    _r, html = page(app, ANNA_IP)
    assert 'id="speakers-closed"' in html and 'id="ask-contribution"' not in html
    assert 'id="ask-point_of_order"' in html  # a point of order is how the room answers the closing
    r = post(app, ANNA_IP, "/wort", {"kind": "contribution"})
    assert r.status_code == 409 and "Die Rednerliste ist geschlossen." in r.get_data(as_text=True)
    assert rows(db, s.id) == []


def test_start_page_shows_the_rooms_item_with_its_documents(db, box):
    app, s, _ms, top1 = box
    _r, html = page(app, ANNA_IP)
    assert "Kein Tagesordnungspunkt aufgerufen" in html
    acts.set_current_item(db, Viewer("clerk", s.id), s.id, top1)
    _r, html = page(app, ANNA_IP)
    now = re.search(r'id="speakers-now">(.*?)</p>', html, re.S).group(1)
    assert "TOP 1" in now and "Haushalt" in now
    file_id = db.execute("SELECT id FROM doc_files").fetchone()[0]
    assert f'href="/unterlagen/ansehen/{file_id}"' in html  # one tap away
    assert f"/unterlagen#item-{top1}" in html


# -- the chair's console -----------------------------------------------------------------------------------


CONSOLE_POSTS = {"/vorsitz/top": {"item": ""}, "/vorsitz/weiter": {}, "/vorsitz/ende": {},
                 "/vorsitz/verlaengern": {"seconds": "60"}, "/vorsitz/zwischenfrage": {"request": "1", "admit": "1"},
                 "/vorsitz/verschieben": {"request": "1", "step": "up"}, "/vorsitz/entfernen": {"request": "1"},
                 "/vorsitz/eintragen": {"member": "1", "kind": "contribution"}, "/vorsitz/liste": {"closed": "1"},
                 "/vorsitz/ansage": {"text": "Pause"},
                 "/vorsitz/geschaeftsordnung": {"scope": "session", "first_seconds": "60"}}


def test_console_is_403_in_german_for_a_member_who_is_not_the_chair_and_its_acts_change_nothing(db, box):
    app, s, ms, _top1 = box
    chair(db, s, ms["Anna"])
    acts.request(db, Viewer("member", s.id, ms["Anna"], True, ANNA_IP), s.id, now=time.time())
    for ip in (BERND_IP, GUEST_IP):
        r, html = page(app, ip, "/vorsitz")
        assert r.status_code == 403 and "Dieses Gerät gehört nicht der Sitzungsleitung." in html
        assert "call-next" not in html
    before = (rows(db, s.id), db.execute("SELECT COUNT(*) FROM audit").fetchone())
    for path, data in CONSOLE_POSTS.items():
        r = post(app, BERND_IP, path, data)  # Bernd's own valid device token (from his start page)
        assert r.status_code == 403, path
        assert "Sitzungsleitung" in r.get_data(as_text=True)
    assert (rows(db, s.id), db.execute("SELECT COUNT(*) FROM audit").fetchone()) == before


def test_the_chair_runs_the_list_from_their_own_device(db, box):
    app, s, ms, top1 = box
    chair(db, s, ms["Anna"])
    r, html = page(app, ANNA_IP)
    assert 'id="speakers-console-link"' in html  # the chair's way to the console
    r, html = page(app, ANNA_IP, "/vorsitz")
    assert r.status_code == 200 and 'id="console-empty"' in html
    assert r.headers["Cache-Control"] == "no-store"
    assert 'data-live-reload="speakers.changed agenda.current"' in html
    assert 'id="procedure-form"' not in html  # the rules of procedure are the clerk's
    # jetzt TOP 1
    r = post(app, ANNA_IP, "/vorsitz/top", {"item": str(top1)}, "/vorsitz")
    assert r.status_code == 303 and r.headers["Location"].endswith("/vorsitz")
    assert acts.state(db, s.id, now=time.time()).current_item.id == top1
    # Bernd asks; the console shows him with faction and how often he spoke
    post(app, BERND_IP, "/wort", {"kind": "contribution"})
    _r, html = page(app, ANNA_IP, "/vorsitz")
    rid = acts.state(db, s.id, now=time.time()).queue[0].request_id
    row = re.search(rf'<tr id="queue-{rid}".*?</tr>', html, re.S).group(0)
    assert "Bernd Müller" in row and "(CDU)" in row
    assert re.search(r"Beiträge zum Punkt: </span>0</td>", row)  # how often he spoke on the item
    # call next: Bernd has the floor, on his page and on the console with the timer
    r = post(app, ANNA_IP, "/vorsitz/weiter", {}, "/vorsitz")
    assert r.status_code == 303
    _r, html = page(app, BERND_IP)
    assert "Sie haben das Wort." in html
    _r, html = page(app, ANNA_IP, "/vorsitz")
    assert 'id="speech-timer"' in html and re.search(r'id="timer-clock">(4:5\d|5:00)<', html)
    assert 'id="ask-intervention"' in page(app, ANNA_IP)[1]  # the others may now ask to intervene
    # extend and end
    r = post(app, ANNA_IP, "/vorsitz/verlaengern", {"seconds": "60"}, "/vorsitz")
    assert r.status_code == 303
    assert re.search(r'id="timer-clock">(5:5\d|6:00)<', page(app, ANNA_IP, "/vorsitz")[1])
    r = post(app, ANNA_IP, "/vorsitz/ende", {}, "/vorsitz")
    assert r.status_code == 303 and acts.state(db, s.id, now=time.time()).speaking is None
    # ending again is refused in German, and nothing changes
    r = post(app, ANNA_IP, "/vorsitz/ende", {}, "/vorsitz")
    assert r.status_code == 409 and "Gerade spricht niemand." in r.get_data(as_text=True)
    # the rules of procedure from a member's device: refused (clerks only)
    r = post(app, ANNA_IP, "/vorsitz/geschaeftsordnung", {"scope": "session", "first_seconds": "60"}, "/vorsitz")
    assert r.status_code == 403 and "Sitzungsdienst" in r.get_data(as_text=True)
    assert acts.state(db, s.id, now=time.time()).rules.first_seconds == 300


def test_interventions_reorder_remove_add_close_announce(db, box):
    app, s, ms, _top1 = box
    chair(db, s, ms["Anna"])
    clerk = Viewer("clerk", s.id)
    for name in ("Bernd", "Carla"):
        assert acts.add_by_hand(db, clerk, s.id, ms[name].id, now=time.time())
    r = post(app, ANNA_IP, "/vorsitz/weiter", {}, "/vorsitz")  # Bernd speaks
    assert acts.state(db, s.id, now=time.time()).speaking.name == "Bernd Müller"
    # an intervention from Anna's phone (the chair is a member too) waits for the chair
    assert post(app, ANNA_IP, "/wort", {"kind": "intervention"}).status_code == 303
    st = acts.state(db, s.id, now=time.time())
    (pending,) = st.pending
    html = page(app, ANNA_IP, "/vorsitz")[1]
    assert f'id="admit-{pending.request_id}"' in html and f'id="refuse-{pending.request_id}"' in html
    r = post(app, ANNA_IP, "/vorsitz/zwischenfrage", {"request": str(pending.request_id), "admit": "1"}, "/vorsitz")
    assert r.status_code == 303
    assert acts.state(db, s.id, now=time.time()).queue[0].request_id == pending.request_id
    # add Dora by hand, move her up past Carla, then remove Carla
    r = post(app, ANNA_IP, "/vorsitz/eintragen", {"member": str(ms["Dora"].id), "kind": "contribution"}, "/vorsitz")
    assert r.status_code == 303
    names = [x.name for x in acts.state(db, s.id, now=time.time()).queue]
    assert names == ["Anna Schmidt", "Carla Weber", "Dora Klein"]
    dora = acts.state(db, s.id, now=time.time()).queue[2].request_id
    assert post(app, ANNA_IP, "/vorsitz/verschieben", {"request": str(dora), "step": "up"}, "/vorsitz").status_code \
        == 303
    names = [x.name for x in acts.state(db, s.id, now=time.time()).queue]
    assert names == ["Anna Schmidt", "Dora Klein", "Carla Weber"]
    carla = acts.state(db, s.id, now=time.time()).queue[2].request_id
    assert post(app, ANNA_IP, "/vorsitz/entfernen", {"request": str(carla)}, "/vorsitz").status_code == 303
    assert [x.name for x in acts.state(db, s.id, now=time.time()).queue] == ["Anna Schmidt", "Dora Klein"]
    # adding Dora again is refused in German, nothing written
    before = rows(db, s.id)
    r = post(app, ANNA_IP, "/vorsitz/eintragen", {"member": str(ms["Dora"].id), "kind": "contribution"}, "/vorsitz")
    assert r.status_code == 409 and "Dora Klein steht mit dieser Wortmeldung bereits auf der Liste." in \
        r.get_data(as_text=True)
    assert rows(db, s.id) == before
    # close, reopen, announce
    assert post(app, ANNA_IP, "/vorsitz/liste", {"closed": "1"}, "/vorsitz").status_code == 303
    html = page(app, ANNA_IP, "/vorsitz")[1]
    assert "Rednerliste geschlossen" in html and "Rednerliste wieder öffnen" in html
    assert post(app, ANNA_IP, "/vorsitz/liste", {"closed": "0"}, "/vorsitz").status_code == 303
    assert not acts.state(db, s.id, now=time.time()).closed
    assert post(app, ANNA_IP, "/vorsitz/ansage", {"text": "Pause bis 20 Uhr"}, "/vorsitz").status_code == 303
    assert acts.state(db, s.id, now=time.time()).announcement == "Pause bis 20 Uhr"
    r = post(app, ANNA_IP, "/vorsitz/ansage", {"text": "x" * 501}, "/vorsitz")
    assert r.status_code == 409 and "Die Ansage ist zu lang" in r.get_data(as_text=True)
    assert acts.state(db, s.id, now=time.time()).announcement == "Pause bis 20 Uhr"


def test_timer_shows_warning_and_overrun_in_words_not_colour_alone(db, box):
    app, s, ms, _top1 = box
    chair(db, s, ms["Anna"])
    clerk = Viewer("clerk", s.id)
    acts.add_by_hand(db, clerk, s.id, ms["Bernd"].id, now=time.time())
    acts.call_next(db, clerk, s.id, now=time.time() - 290)  # 5 min limit, 10 s left: within the 30 s warning
    html = page(app, ANNA_IP, "/vorsitz")[1]
    timer = re.search(r'<p id="speech-timer".*?</p>', html, re.S).group(0)
    assert "timer-warn" in timer and "Redezeit endet gleich" in timer and re.search(r">0:(0\d|10)<", timer)
    db.execute("UPDATE speakers_requests SET started_at = ? WHERE state = 'speaking'", [time.time() - 330])
    timer = re.search(r'<p id="speech-timer".*?</p>', page(app, ANNA_IP, "/vorsitz")[1], re.S).group(0)
    assert "timer-over" in timer and "Redezeit überschritten" in timer and re.search(r">-0:3\d<", timer)


def test_clerk_names_the_chair_runs_the_console_and_sets_the_rules(cfg, db, box):
    _app, s, ms, top1 = box
    c, token = logged_in_clerk(cfg, db, f"/clerk/sessions/{s.id}")
    html = c.get(f"/clerk/sessions/{s.id}").get_data(as_text=True)
    assert 'id="chair-member"' in html and 'id="console-link"' in html and 'id="minutes-link"' in html
    r = c.post(f"/clerk/sessions/{s.id}/vorsitz", data={"csrf_token": token, "member": str(ms["Carla"].id)})
    assert r.status_code == 303
    assert acts.state(db, s.id, now=time.time()).chair_member_id == ms["Carla"].id
    html = c.get(f"/clerk/sessions/{s.id}").get_data(as_text=True)
    assert f'<option value="{ms["Carla"].id}" selected>' in html
    # the clerk's login always has the console
    html = c.get("/vorsitz").get_data(as_text=True)
    assert 'id="procedure-form"' in html and "Carla Weber" in html
    r = c.post("/vorsitz/geschaeftsordnung", data={"csrf_token": token, "scope": "session", "first_seconds": "240",
                                                    "max_speeches": "2"})
    assert r.status_code == 303
    rules = acts.state(db, s.id, now=time.time()).rules
    assert (rules.first_seconds, rules.max_speeches, rules.later_seconds) == (240, 2, 180)
    # the rules for the item the room is on only
    acts.set_current_item(db, Viewer("clerk", s.id), s.id, top1)
    html = c.get("/vorsitz").get_data(as_text=True)
    assert f'name="item" value="{top1}"' in html
    r = c.post("/vorsitz/geschaeftsordnung", data={"csrf_token": token, "scope": "item", "item": str(top1),
                                                    "first_seconds": "120"})
    assert r.status_code == 303
    assert acts.state(db, s.id, now=time.time()).rules.first_seconds == 120
    assert acts.state(db, s.id, acts.NO_ITEM, now=time.time()).rules.first_seconds == 240  # the session's
    # clear the chair
    r = c.post(f"/clerk/sessions/{s.id}/vorsitz", data={"csrf_token": token, "member": ""})
    assert r.status_code == 303 and acts.state(db, s.id, now=time.time()).chair_member_id is None
    # a guest on the list cannot chair: refused, nothing changed
    r = c.post(f"/clerk/sessions/{s.id}/vorsitz", data={"csrf_token": token, "member": "999"}, follow_redirects=True)
    assert "Diese Person steht nicht auf der Liste dieser Sitzung." in r.get_data(as_text=True)
    assert acts.state(db, s.id, now=time.time()).chair_member_id is None


def test_minutes_csv_and_print_page(cfg, db, box):
    _app, s, ms, top1 = box
    clerk = Viewer("clerk", s.id)
    acts.set_current_item(db, clerk, s.id, top1)
    acts.add_by_hand(db, clerk, s.id, ms["Bernd"].id, now=1_800_000_000.0)
    acts.call_next(db, clerk, s.id, now=1_800_000_000.0)
    acts.end_speech(db, clerk, s.id, now=1_800_000_125.0)
    c, _token = logged_in_clerk(cfg, db, f"/clerk/sessions/{s.id}")
    r = c.get(f"/clerk/sessions/{s.id}/redner.csv")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    text = r.get_data().decode("utf-8-sig")
    assert text.splitlines()[0].startswith("TOP;Titel;Nr.;Name")
    assert "1;Haushalt;1;Bernd Müller;CDU;Wortmeldung;" in text and ";2:05" in text
    html = c.get(f"/clerk/sessions/{s.id}/redner").get_data(as_text=True)
    assert "Bernd Müller" in html and "2:05" in html and "TOP 1" in html
    # The procedural steps from the audit log, in order, each named: the clerk's record of how it was run.
    steps = html[html.index('id="steps"'):]
    found = [t for t in ("Tagesordnungspunkt aufgerufen", "auf die Rednerliste gesetzt", "Wort erteilt", "Rede beendet")
             if t in steps]
    assert found == ["Tagesordnungspunkt aufgerufen", "auf die Rednerliste gesetzt", "Wort erteilt", "Rede beendet"]
    assert [steps.index(t) for t in found] == sorted(steps.index(t) for t in found)
    assert [st.action for st in acts.steps(db, s.id)][-4:] == ["agenda.current", "speakers.add", "speakers.next",
                                                               "speakers.end"]
    assert all(st.detail and not st.detail.startswith("session=") for st in acts.steps(db, s.id))
    assert acts.steps(db, s.id + 1) == []  # another session's steps are not this one's
    # without a login: no minutes
    anon = create_app(cfg, helper=NullHelper(), testing=True).test_client()
    assert anon.get(f"/clerk/sessions/{s.id}/redner.csv").status_code in (302, 303)


def test_guest_sees_no_names_and_no_title_of_a_non_public_item(db, box):
    app, s, ms, _top1 = box
    secret = docs.add_item(db, s.id, "Grundstücksangelegenheit", number="6", public=False, actor="test")
    clerk = Viewer("clerk", s.id)
    acts.set_current_item(db, clerk, s.id, secret)
    acts.add_by_hand(db, clerk, s.id, ms["Bernd"].id, now=time.time())
    _r, html = page(app, GUEST_IP)
    assert "TOP 6" in html and "Grundstücksangelegenheit" not in html and "Bernd Müller" not in html
    assert 'id="speakers-item-docs"' not in html
    _r, html = page(app, ANNA_IP)  # members read the non-public item
    assert "Grundstücksangelegenheit" in html and "Bernd Müller" in html and 'id="speakers-item-docs"' in html


def test_askable_is_what_request_would_answer(db, box):
    """The member page's buttons come from usecases.speakers.askable: for each kind, the rules' answer that
    request() would give — checked here against request() itself, kind by kind."""
    _app, s, ms, _top1 = box
    anna = Viewer("member", s.id, ms["Anna"], True, ANNA_IP)
    bernd = Viewer("member", s.id, ms["Bernd"], True, BERND_IP)
    guest = Viewer("guest", s.id, None, True, GUEST_IP)
    assert {k: d.code for k, d in acts.askable(db, guest, s.id).items()} == dict.fromkeys(acts.sp.KINDS, "guest")
    codes = {k: d.code for k, d in acts.askable(db, anna, s.id).items()}
    assert codes == {"contribution": "", "point_of_order": "", "pro": "no_point_of_order",
                     "contra": "no_point_of_order", "intervention": "no_speech"}
    acts.request(db, bernd, s.id, "point_of_order", now=time.time())
    acts.call_next(db, Viewer("clerk", s.id), s.id, now=time.time())  # Bernd's point of order runs
    before = {k: bool(d) for k, d in acts.askable(db, anna, s.id).items()}
    assert before == {"contribution": True, "point_of_order": True, "pro": True, "contra": True,
                      "intervention": True}
    assert not acts.askable(db, bernd, s.id)["pro"]  # the mover speaks neither for nor against
    for kind, allowed in before.items():
        assert bool(acts.request(db, anna, s.id, kind, now=time.time())) == allowed, kind
    assert not any(acts.askable(db, anna, s.id).values())  # each kind once; pro and contra: one of them per motion


def test_refuse_an_intervention_move_down_and_take_back_an_extension(db, box):
    app, s, ms, _top1 = box
    chair(db, s, ms["Anna"])
    clerk = Viewer("clerk", s.id)
    for name in ("Bernd", "Carla", "Dora"):
        acts.add_by_hand(db, clerk, s.id, ms[name].id, now=time.time())
    assert post(app, ANNA_IP, "/vorsitz/weiter", {}, "/vorsitz").status_code == 303  # Bernd speaks
    out = acts.request(db, Viewer("member", s.id, ms["Anna"], True, ANNA_IP), s.id, "intervention", now=time.time())
    r = post(app, ANNA_IP, "/vorsitz/zwischenfrage", {"request": str(out.request_id), "admit": "0"}, "/vorsitz")
    assert r.status_code == 303
    st = acts.state(db, s.id, now=time.time())
    assert st.pending == [] and [x.name for x in st.queue] == ["Carla Weber", "Dora Klein"]
    # deciding again is refused in German; nothing changes
    r = post(app, ANNA_IP, "/vorsitz/zwischenfrage", {"request": str(out.request_id), "admit": "1"}, "/vorsitz")
    assert r.status_code == 409 and "Über diese Zwischenfrage ist bereits entschieden." in r.get_data(as_text=True)
    assert acts.state(db, s.id, now=time.time()).queue[0].name == "Carla Weber"
    carla = st.queue[0].request_id
    assert post(app, ANNA_IP, "/vorsitz/verschieben", {"request": str(carla), "step": "down"}, "/vorsitz") \
        .status_code == 303
    assert [x.name for x in acts.state(db, s.id, now=time.time()).queue] == ["Dora Klein", "Carla Weber"]
    assert post(app, ANNA_IP, "/vorsitz/verlaengern", {"seconds": "60"}, "/vorsitz").status_code == 303
    assert post(app, ANNA_IP, "/vorsitz/verlaengern", {"seconds": "-30"}, "/vorsitz").status_code == 303
    assert acts.state(db, s.id, now=time.time()).timer.limit == 300 + 30
    r = post(app, ANNA_IP, "/vorsitz/verlaengern", {"seconds": "zehn"}, "/vorsitz")
    assert r.status_code == 400 and "seconds" in r.get_data(as_text=True)
