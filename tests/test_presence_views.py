"""Attendance pages: clerk-only list grouped by faction with quorum, correction with reason, CSV and print;
a member sees only their own status."""

from __future__ import annotations

import dataclasses
import re

import pytest

from appliance.helper.client import NullHelper
from appliance.presence.sources import PresenceDaemon
from appliance.push import hub as hub_mod
from appliance.web import auth
from tests.live_support import ANNA_IP, BERND_IP, call, populate

PASSWORD = "presence-test-password-1"


@pytest.fixture
def app(cfg, db):
    from appliance.web.app import create_app

    s, ms = populate(cfg, db)
    auth.set_password(db, PASSWORD, actor="test")
    PresenceDaemon(dataclasses.replace(cfg, presence_grace=30)).round(db)  # Anna, Bernd, Carla connected
    a = create_app(cfg, helper=NullHelper(), testing=True)
    a.sb = (s, ms)
    yield a
    hub_mod.stop_all()


def clerk_client(app):
    c = app.test_client()
    page = c.get("/clerk/login")
    tok = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    c.post("/clerk/login", data={"csrf_token": tok, "password": PASSWORD})
    return c


def test_attendance_needs_login_and_shows_one_table_and_the_quorum_status(app):
    assert call(app, "/clerk/attendance", ANNA_IP).status_code == 302
    c = clerk_client(app)
    html = c.get("/clerk/attendance").text
    quorum = re.search(r'<div id="quorum" class="quorum quorum-ok" role="status">(.*?)</div>\s*</div>', html, re.S)
    assert quorum and "Beschlussfähig" in quorum.group(1) and "<svg" in quorum.group(1)
    assert "3 von 3 stimmberechtigten" in html and "nötig sind 2" in html and "1 mehr als nötig" in html
    assert html.count("<table") == 1 and "<h2 id=\"f-1\">" not in html  # one table, faction as a column
    assert names_in(html) == ["Anna Schmidt", "Bernd Müller", "Carla Weber", "Dora Klein"]
    assert "abwesend" in _row_of(html, app.sb[1]["Dora"].id) and "Stellvertretung" in html


def names_in(html: str) -> list[str]:
    return re.findall(r'<tr class="att-\w+" data-member="\d+">\s*<td>([^<(]+?)\s*(?:<|$)', html)


def _row_of(html: str, member_id: int) -> str:
    """The attendance table row of one member."""
    return re.search(rf'<tr class="att-(\w+)" data-member="{member_id}">(.*?)</tr>', html, re.S).group(0)


def test_correction_needs_reason_and_is_marked_everywhere(app, db):
    s, ms = app.sb
    dora = ms["Dora"].id
    c = clerk_client(app)
    page = c.get("/clerk/attendance").text
    assert 'class="att-absent"' in _row_of(page, dora) and "korrigiert" not in _row_of(page, dora)
    tok = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    bad = c.post("/clerk/attendance/correct", data={"csrf_token": tok, "member_id": dora,
                                                    "status": "present", "reason": "  "}, follow_redirects=True)
    # Refused with the reason why, and nothing stored or changed.
    assert "Bitte einen Grund für die Korrektur angeben." in bad.text
    assert db.execute("SELECT COUNT(*) FROM presence_corrections").fetchone()[0] == 0
    assert 'class="att-absent"' in _row_of(bad.text, dora)
    ok = c.post("/clerk/attendance/correct", data={"csrf_token": tok, "member_id": dora,
                                                   "status": "present", "reason": "ohne Handy da"},
                follow_redirects=True)
    assert "Korrektur gespeichert" in ok.text
    # Stored for Dora with its reason and status, and her interval is open and marked corrected.
    (stored,) = db.execute("SELECT member_id, status, reason, actor FROM presence_corrections").fetchall()
    assert stored[:3] == (dora, "present", "ohne Handy da") and stored[3].startswith("clerk")
    assert db.execute("SELECT corrected FROM presence_intervals WHERE member_id = ? AND end IS NULL",
                      [dora]).fetchone() == (1,)
    # Shown for Dora (and nobody else) as present and corrected.
    row = _row_of(ok.text, dora)
    assert 'class="att-present"' in row and "(korrigiert)" in row and "anwesend" in row
    assert all("korrigiert" not in _row_of(ok.text, ms[n].id) for n in ("Anna", "Bernd", "Carla"))
    csv_text = c.get("/clerk/attendance.csv").data.decode("utf-8-sig")
    line = next(line for line in csv_text.splitlines() if line.startswith("Dora"))
    assert ";anwesend;" in line and ";ja;Vom Sitzungsdienst als anwesend eingetragen um " in line
    assert line.split(";")[9].endswith(": ohne Handy da")
    printed = c.get("/clerk/attendance/print").text
    assert re.search(r"<li>Dora Klein: Vom Sitzungsdienst als anwesend eingetragen um \d\d:\d\d: ohne Handy da</li>",
                     printed)
    # Without the session's CSRF token nothing changes.
    assert c.post("/clerk/attendance/correct", data={"member_id": ms["Anna"].id, "status": "absent",
                                                     "reason": "x"}).status_code == 400
    assert db.execute("SELECT COUNT(*) FROM presence_corrections").fetchone()[0] == 1


def test_member_sees_own_status_and_room_count(app):
    html = call(app, "/", ANNA_IP).get_data(as_text=True)
    assert "Sie sind als anwesend erfasst." in html and "Bernd" not in html
    assert call(app, "/presence/count", ANNA_IP).get_json() == {"count": 3}


def _more_members(app, db):
    """Two more people: an umlaut name (sorted as O) without a faction, and a faction that starts like a formula."""
    from appliance.sessions import service
    from appliance.sessions.roster import MemberRow

    s, _ms = app.sb
    service.insert_members(db, s.id, [MemberRow("Ömer Öztürk", "", "member", True, "Rat"),
                                      MemberRow("Äneas Arnold", "=HYPERLINK(1)", "guest", False, "Rat")])


def test_sort_and_filter_by_links_and_a_get_form(app, db):
    _more_members(app, db)
    c = clerk_client(app)
    assert names_in(c.get("/clerk/attendance").text) == [
        "Äneas Arnold", "Anna Schmidt", "Bernd Müller", "Carla Weber", "Dora Klein", "Ömer Öztürk"]
    assert names_in(c.get("/clerk/attendance?order=desc").text)[0] == "Ömer Öztürk"
    assert names_in(c.get("/clerk/attendance?sort=faction").text) == [
        "Äneas Arnold", "Bernd Müller", "Anna Schmidt", "Carla Weber", "Dora Klein", "Ömer Öztürk"]
    by_status = names_in(c.get("/clerk/attendance?sort=status").text)
    assert by_status[:3] == ["Anna Schmidt", "Bernd Müller", "Carla Weber"] and by_status[-1] == "Ömer Öztürk"
    page = c.get("/clerk/attendance?faction=SPD&status=present&sort=name").text
    assert names_in(page) == ["Anna Schmidt", "Carla Weber"] and "2 von 6 Personen angezeigt" in page
    # The quorum is the whole council's, whatever the filter shows.
    assert "3 von 4 stimmberechtigten" in page
    # The headings are links that keep the filters and turn the order round; the form keeps sort and language.
    heads = dict(re.findall(r'<a href="(/clerk/attendance\?[^"]+)">([^<]+)</a>', page))
    name_link = next(url for url, label in heads.items() if label == "Name")
    assert query_of(name_link) == {"sort": "name", "order": "desc", "faction": "SPD", "status": "present"}
    arrival_link = next(url for url, label in heads.items() if label == "Erste Ankunft")
    assert query_of(arrival_link) == {"sort": "arrival", "faction": "SPD", "status": "present"}
    assert 'aria-sort="ascending"' in page and '<option value="SPD" selected>' in page
    english = c.get("/clerk/attendance?lang=en&faction=SPD").text
    assert 'type="hidden" name="lang" value="en"' in english and "Quorate" in english
    urls = re.findall(r'href="(/clerk/attendance[^"]*)"', english)
    assert len(urls) == 8 and all("lang=en" in url for url in urls if "lang=de" not in url)  # but the switch
    # Unknown values are the plain list, not an error.
    assert names_in(c.get("/clerk/attendance?sort=evil&status=x&faction=nope").text)[0] == "Äneas Arnold"
    assert names_in(c.get("/clerk/attendance?faction=-").text) == ["Ömer Öztürk"]  # without a faction
    assert '<option value="-">ohne Fraktion</option>' in page


def query_of(url: str) -> dict[str, str]:
    from urllib.parse import parse_qsl, urlsplit

    return dict(parse_qsl(urlsplit(url.replace("&amp;", "&")).query))


def _berlin(ts: float) -> str:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime.fromtimestamp(ts, ZoneInfo("Europe/Berlin")).strftime("%H:%M")


def test_csv_for_excel_in_german_with_local_time(app, db):
    _more_members(app, db)
    s, ms = app.sb
    c = clerk_client(app)
    resp = c.get("/clerk/attendance.csv")
    raw = resp.data
    assert raw.startswith("\ufeff".encode()) and resp.headers["Content-Type"] == "text/csv; charset=utf-8"
    lines = raw.decode("utf-8-sig").splitlines()
    assert lines[0] == ("Name;Fraktion;Rolle;Stimmrecht;Status;Erste Ankunft;Letztes Gehen;Anwesenheit (h:mm);"
                        "Korrigiert;Korrekturen;Stand")
    assert [line.split(";")[0] for line in lines[1:]] == [
        "Äneas Arnold", "Anna Schmidt", "Bernd Müller", "Carla Weber", "Dora Klein", "Ömer Öztürk"]
    start = db.execute("SELECT start FROM presence_intervals WHERE member_id = ?", [ms["Anna"].id]).fetchone()[0]
    anna = lines[2].split(";")
    assert anna[1:6] == ["SPD", "Mitglied", "ja", "anwesend", _berlin(start)]
    assert lines[5].split(";")[1:5] == ["SPD", "Stellvertretung", "nein", "abwesend"]
    assert lines[1].split(";")[1:3] == ["'=HYPERLINK(1)", "Gast"]  # a formula stays text
    assert re.fullmatch(r"\d\d\.\d\d\.\d{4}, \d\d:\d\d", anna[10])
    text = "\n".join(lines)
    assert not re.search(r"\d{4}-\d\d-\d\d|\d\d:\d\d:\d\d|member|deputy|present|absent", text)


def test_print_page_for_the_minutes(app, db):
    s, ms = app.sb
    c = clerk_client(app)
    store_correct(app, db, ms["Carla"].id, "absent", "=Gerät verliehen")
    page = c.get("/clerk/attendance/print").text
    assert "24.11.2026" in page and "2026-11-24" not in page
    assert re.search(r"Stand: \d\d\.\d\d\.\d{4}, \d\d:\d\d", page)
    heads = re.findall(r'<th scope="col"[^>]*>([^<]+)</th>', page)
    assert heads == ["Nr.", "Name", "Fraktion", "Rolle", "Stimmrecht", "Status", "Ankunft", "Gegangen", "Dauer",
                     "Korr."]
    assert re.search(r"<strong>Beschlussfähig</strong> –\s+Beschlussfähigkeit: 2 von 3", page)
    assert re.search(r"<li>Carla Weber: Vom Sitzungsdienst als abwesend eingetragen um \d\d:\d\d: "
                     r"=Gerät verliehen</li>", page)
    assert "<style" not in page and " style=" not in page  # the CSP allows stylesheets only
    assert 'href="/static/attendance.css"' in page


def store_correct(app, db, member_id, status, reason, at=None):
    from appliance.presence import store

    s, _ms = app.sb
    store.correct(db, s.id, member_id, status, reason, "clerk@test", 600, at)


def test_the_member_sees_that_the_clerk_corrected_their_status(app, db):
    s, ms = app.sb
    before = call(app, "/", ANNA_IP).get_data(as_text=True)
    assert "Vom Sitzungsdienst" not in before
    at = db.execute("SELECT start FROM presence_intervals WHERE member_id = ?", [ms["Anna"].id]).fetchone()[0] + 60
    store_correct(app, db, ms["Anna"].id, "absent", "hat den Saal verlassen", at)
    html = call(app, "/", ANNA_IP).get_data(as_text=True)
    assert "Sie sind zurzeit nicht als anwesend erfasst." in html
    assert f"Vom Sitzungsdienst als abwesend eingetragen um {_berlin(at)}." in html
    assert "hat den Saal verlassen" not in html  # the reason is for the minutes
    english = call(app, "/?lang=en", ANNA_IP).get_data(as_text=True)
    assert f"Marked absent by the clerk&#39;s office at {_berlin(at)}." in english
    assert "Vom Sitzungsdienst" not in call(app, "/", BERND_IP).get_data(as_text=True)  # only her own


def test_a_quiet_member_shows_when_last_seen_while_the_grace_holds(app, db):
    import time

    s, ms = app.sb
    db.execute("UPDATE presence_devices SET linked = 0, last_seen = ? WHERE member_id = ?",
               [time.time() - 5 * 60 - 10, ms["Bernd"].id])
    page = clerk_client(app).get("/clerk/attendance").text
    bernd = _row_of(page, ms["Bernd"].id)
    assert 'class="att-present"' in bernd and "zuletzt gesehen vor 5 min" in bernd
    assert "zuletzt gesehen" not in _row_of(page, ms["Anna"].id)
    english = clerk_client(app).get("/clerk/attendance?lang=en").text
    assert "last seen 5 min ago" in _row_of(english, ms["Bernd"].id)
