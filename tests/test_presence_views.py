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
from tests.live_support import ANNA_IP, call, populate

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
