"""The list of speakers in the virtual venue (prefix sbspk; issue 13): the real appliance in network namespaces.

Clients 1–3 are the members Anna, Bernd and Carla, client 4 is Dora, whom the clerk named chair (her own phone
shows the console), client 5 a guest. Each device gets its identity the way a phone in the hall does: the
replayed radio says which personal key it joined with, real DHCP gives it its address, and every request below
is curl from inside its own network namespace (no cookies: forms carry the device-bound CSRF token of a page the
device was served). Runs in file order, like a session: everyone arrives → three members ask, the point of order
goes first → a member tries to withdraw another's request → a guest asks → the chair calls, the timer runs, the
speech ends with its duration recorded → the chair closes the list and a new contribution is refused.
"""

from __future__ import annotations

import re
import time
from urllib.parse import urlencode

import pytest

from appliance.rules.viewer import Viewer
from appliance.sessions import service
from appliance.usecases import speakers as acts
from tests.conftest import poll

pytestmark = pytest.mark.net
MEMBERS = """Name;Fraktion;Rolle;Stimmrecht;Gremium
Anna Schmidt;SPD;Mitglied;ja;Rat
Bernd Müller;CDU;Mitglied;ja;Rat
Carla Weber;Grüne;Mitglied;ja;Rat
Dora Vogel;FDP;Mitglied;ja;Rat
"""
WHO = {1: "Anna", 2: "Bernd", 3: "Carla", 4: "Dora"}
CHAIR, GUEST = 4, 5
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def seed(db, sid: int, _cfg) -> None:
    """The clerk has named Dora chair of this session (the clerk's form is tested in test_speakers_web)."""
    dora = next(m for m in service.members(db, sid) if m.name == "Dora Vogel")
    assert acts.set_chair(db, Viewer("clerk", sid), sid, dora.id, actor="venue")


@pytest.fixture(scope="module")
def box(venue_factory):
    return venue_factory("sbspk", 5, members=MEMBERS, title="Ratssitzung", seed=seed, nft_table="sbspk")


def url(box, path: str) -> str:
    return f"http://{box.cfg.address}{path}"


def members(box) -> dict[str, service.Member]:
    db = box.db()
    try:
        return {m.name.split()[0]: m for m in service.members(db, box.session_id)}
    finally:
        db.conn.close()


def state(box, now: float | None = None) -> acts.State:
    db = box.db()
    try:
        return acts.state(db, box.session_id, now=time.time() if now is None else now)
    finally:
        db.conn.close()


def requests(box) -> list[tuple]:
    """Every request row as stored: (id, member's first name, kind, state, started_at, ended_at, duration)."""
    db = box.db()
    try:
        return [tuple(r) for r in db.execute(
            "SELECT r.id, m.name, r.kind, r.state, r.started_at, r.ended_at, r.duration FROM speakers_requests r "
            "JOIN members m ON m.id = r.member_id WHERE r.session_id = ? ORDER BY r.id", [box.session_id])]
    finally:
        db.conn.close()


def audit_actions(box) -> list[str]:
    db = box.db()
    try:
        return [r[0] for r in db.execute("SELECT action FROM audit WHERE action LIKE 'speakers.%' ORDER BY id")]
    finally:
        db.conn.close()


def get(box, i: int, path: str):
    return box.venue.http(i, url(box, path))


def form(box, i: int, path: str, data: dict, page: str = "/"):
    """What the device's browser does: open `page`, send its form with the page's device-bound token."""
    tok = TOKEN.search(get(box, i, page).text).group(1)
    return box.venue.http(i, url(box, path), method="POST", data=urlencode({"csrf_token": tok, **data}),
                          headers={"Content-Type": "application/x-www-form-urlencoded"})


def console(box) -> str:
    r = get(box, CHAIR, "/vorsitz")
    assert r.status == 200, r.status
    return r.text


def console_queue(html: str) -> list[str]:
    """The console's queue as the chair reads it: names in calling order."""
    return re.findall(r'<span class="queue-name">([^<]+)</span>', html)


def test_phones_get_their_member_from_radio_and_dhcp_and_the_guest_is_let_through(box):
    ms = members(box)
    v = box.venue
    for i, who in WHO.items():
        box.fake.connect(v.client_mac(i), ms[who].keyid)  # replayed hostapd: joined with the personal key
        box.wait_station(v.client_mac(i), ms[who].keyid)
        v.dhcp(i)  # real DHCP from inside the namespace
        assert f"{ms[who].name}" in v.http(i, box.cfg.portal_url).text  # greeted by name
    box.fake.connect(v.client_mac(GUEST), "guest")
    box.wait_station(v.client_mac(GUEST), "guest")
    v.dhcp(GUEST)
    page = v.http(GUEST, box.cfg.portal_url).text
    tok = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page).group(1)
    r = v.http(GUEST, url(box, "/portal/continue"), method="POST", data=f"csrf_token={tok}",
               headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status in (302, 303)
    # Each member's start page offers the Wortmeldung; Dora's also leads to the console, nobody else's does.
    for i in WHO:
        home = get(box, i, "/").text
        assert 'id="ask-contribution"' in home
        assert ('id="speakers-console-link"' in home) == (i == CHAIR), i
    assert get(box, 1, "/vorsitz").status == 403  # a member who is not the chair gets no console
    assert 'id="console-empty"' in console(box)


def test_three_members_ask_and_the_point_of_order_lands_first(box):
    assert form(box, 1, "/wort", {"kind": "contribution"}).status == 303  # Anna
    assert form(box, 2, "/wort", {"kind": "contribution"}).status == 303  # Bernd
    assert form(box, 3, "/wort", {"kind": "point_of_order"}).status == 303  # Carla, last to ask
    assert [(r[1], r[2], r[3]) for r in requests(box)] == [
        ("Anna Schmidt", "contribution", "waiting"), ("Bernd Müller", "contribution", "waiting"),
        ("Carla Weber", "point_of_order", "waiting")]
    st = state(box)
    assert [(q.name, q.kind, q.place) for q in st.queue] == [
        ("Carla Weber", "point_of_order", 1), ("Anna Schmidt", "contribution", 2),
        ("Bernd Müller", "contribution", 3)]
    # The chair's console, over HTTP from Dora's phone, shows the same order with the factions.
    html = console(box)
    assert console_queue(html) == ["Carla Weber", "Anna Schmidt", "Bernd Müller"]
    carla_row = re.search(rf'<tr id="queue-{st.queue[0].request_id}".*?</tr>', html, re.S).group(0)
    assert "(Grüne)" in carla_row
    # Each member's own page says where they stand.
    assert "Sie stehen auf Platz 1." in get(box, 3, "/").text
    assert "Sie stehen auf Platz 2." in get(box, 1, "/").text
    assert "Sie stehen auf Platz 3." in get(box, 2, "/").text
    assert audit_actions(box) == ["speakers.chair", *["speakers.request"] * 3]  # the clerk's naming, then one per act


def test_a_member_cannot_withdraw_another_members_request(box):
    before, audited = requests(box), audit_actions(box)
    anna = next(r for r in before if r[1] == "Anna Schmidt")
    r = form(box, 2, "/wort/zurueck", {"request": str(anna[0])})  # Bernd's phone, Anna's request
    assert r.status == 403
    assert "Sie können nur Ihre eigene Wortmeldung zurückziehen." in r.text
    assert requests(box) == before and audit_actions(box) == audited  # nothing changed, nothing audited
    assert "Sie stehen auf Platz 2." in get(box, 1, "/").text  # Anna is still on the list


def test_a_guests_request_is_refused_in_german_and_writes_nothing(box):
    before, audited = requests(box), audit_actions(box)
    home = get(box, GUEST, "/").text
    assert "Carla Weber" in home and 'id="speakers-readonly"' in home and 'id="ask-contribution"' not in home
    r = form(box, GUEST, "/wort", {"kind": "contribution"}, page="/chat")  # a hand-made form: its chat page's token
    assert r.status == 403 and "Gäste können sich nicht zu Wort melden." in r.text
    assert requests(box) == before and audit_actions(box) == audited


def test_the_chair_calls_the_timer_runs_and_the_speech_is_recorded(box):
    t0 = time.time()
    assert form(box, CHAIR, "/vorsitz/weiter", {}, page="/vorsitz").status == 303
    t1 = time.time()
    st = state(box)
    assert st.speaking is not None and st.speaking.name == "Carla Weber" and st.speaking.kind == "point_of_order"
    assert t0 <= st.speaking.started_at <= t1  # the timer started when the chair called
    assert [q.name for q in st.queue] == ["Anna Schmidt", "Bernd Müller"]
    assert st.timer.limit == st.rules.order_seconds  # a point of order's limit from the rules of procedure
    # The countdown as the chair's console renders it from the server's clock: it falls while she speaks.
    html = console(box)
    assert "Carla Weber" in re.search(r'id="speech-name">.*?</p>', html, re.S).group(0)
    started = float(re.search(r'id="speech-timer"[^>]*data-started="([0-9.]+)"', html, re.S).group(1))
    assert started == pytest.approx(st.speaking.started_at)
    first = re.search(r'id="timer-clock">([0-9]+):([0-9]{2})<', html)
    first_s = int(first.group(1)) * 60 + int(first.group(2))
    assert st.rules.order_seconds - 2 <= first_s <= st.rules.order_seconds

    def lower() -> int | None:
        m = re.search(r'id="timer-clock">([0-9]+):([0-9]{2})<', console(box))
        s = int(m.group(1)) * 60 + int(m.group(2))
        return s if s < first_s else None
    assert poll(lower, 10, "Countdown läuft") < first_s
    # The same timer in the shared state: remaining = limit - (now - started_at), at any two moments.
    early, late = state(box, now=started + 5).timer, state(box, now=started + 65).timer
    assert early.remaining - late.remaining == pytest.approx(60) and early.remaining == st.timer.limit - 5
    # End the speech: its duration is recorded from the server's clock, and the console lists it as held.
    t2 = time.time()
    assert form(box, CHAIR, "/vorsitz/ende", {}, page="/vorsitz").status == 303
    t3 = time.time()
    carla = next(r for r in requests(box) if r[1] == "Carla Weber")
    _id, _name, _kind, done, started_at, ended_at, duration = carla
    assert done == "done" and t2 <= ended_at <= t3
    assert duration == pytest.approx(ended_at - started_at) and t2 - t1 <= duration <= t3 - t0
    assert state(box).speaking is None
    held = re.search(r'<section class="console-held".*?</section>', console(box), re.S).group(0)
    assert "Carla Weber" in held
    # The next call gives the floor to the first contribution, in the order the members asked.
    assert form(box, CHAIR, "/vorsitz/weiter", {}, page="/vorsitz").status == 303
    st = state(box)
    assert st.speaking.name == "Anna Schmidt" and [q.name for q in st.queue] == ["Bernd Müller"]
    assert st.timer.limit == st.rules.first_seconds
    assert audit_actions(box)[4:] == ["speakers.next", "speakers.end", "speakers.next"]


def test_the_chair_closes_the_list_and_a_new_contribution_is_refused_in_german(box):
    assert form(box, CHAIR, "/vorsitz/liste", {"closed": "1"}, page="/vorsitz").status == 303
    assert state(box).closed
    assert 'class="list-state list-closed"' in console(box)
    home = get(box, 3, "/").text  # Carla: no contribution button on a closed list
    assert 'id="speakers-closed"' in home and 'id="ask-contribution"' not in home
    before = requests(box)
    r = form(box, 3, "/wort", {"kind": "contribution"})  # her hand-made (or stale) form
    assert r.status == 409 and "Die Rednerliste ist geschlossen." in r.text
    assert requests(box) == before
    # Bernd, already on the list, keeps his place: closing stops new names, not the queue.
    assert [q.name for q in state(box).queue] == ["Bernd Müller"]
    assert audit_actions(box)[-1] == "speakers.close"
