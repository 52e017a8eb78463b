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


def test_attendance_needs_login_and_shows_groups_quorum(app):
    assert call(app, "/clerk/attendance", ANNA_IP).status_code == 302
    c = clerk_client(app)
    html = c.get("/clerk/attendance").text
    assert "beschlussfähig" in html and "3 von 3 stimmberechtigten" in html and "nötig sind 2" in html
    assert html.index("<h2 id=\"f-1\">CDU") < html.index("SPD")
    assert "Dora Klein" in html and "nicht erschienen" in html


def test_correction_needs_reason_and_is_marked_everywhere(app):
    s, ms = app.sb
    c = clerk_client(app)
    tok = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/clerk/attendance").text).group(1)
    bad = c.post("/clerk/attendance/correct", data={"csrf_token": tok, "member_id": ms["Dora"].id,
                                                    "status": "present", "reason": ""}, follow_redirects=True)
    assert "Grund" in bad.text
    ok = c.post("/clerk/attendance/correct", data={"csrf_token": tok, "member_id": ms["Dora"].id,
                                                   "status": "present", "reason": "ohne Handy da"},
                follow_redirects=True)
    assert "Korrektur gespeichert" in ok.text and "korrigiert" in ok.text
    csv_text = c.get("/clerk/attendance.csv").data.decode("utf-8-sig")
    dora = next(line for line in csv_text.splitlines() if line.startswith("Dora"))
    assert ";anwesend;" in dora and "present: ohne Handy da" in dora
    printed = c.get("/clerk/attendance/print").text
    assert "* present: ohne Handy da" in printed
    # Without the session's CSRF token nothing changes.
    assert c.post("/clerk/attendance/correct", data={"member_id": ms["Anna"].id, "status": "absent",
                                                     "reason": "x"}).status_code == 400


def test_member_sees_own_status_and_room_count(app):
    html = call(app, "/", ANNA_IP).get_data(as_text=True)
    assert "Sie sind als anwesend erfasst." in html and "Bernd" not in html
    assert call(app, "/presence/count", ANNA_IP).get_json() == {"count": 3}
