"""The technicians' dashboard through Flask's test client: its own login, what it shows for a replayed
session of 30 devices, sorting and filtering without JS, the JSON API and /metrics as Prometheus text."""

from __future__ import annotations

import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from appliance.web import auth
from tests.test_monitor_daemon import scenario, ticks

TECH_PW = "tech-Pass-word-0815"
CLERK_PW = "clerk-Pass-word-4711"


@pytest.fixture
def setup(cfg, db):
    mon, fake, iw, clock, members, macs = scenario(cfg, db)
    ticks(mon, clock, 1)
    fake.emit("<3>AP-REJECTED-MAX-STA 02:5b:00:00:99:99")
    ticks(mon, clock, 7)
    mon.close()
    fake.close()
    auth.set_password(db, TECH_PW, role=auth.TECHNICIAN)
    auth.set_password(db, CLERK_PW)
    from appliance.web.app import create_app
    app = create_app(mon.cfg, testing=True)
    yield app, members, macs


def token(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def login(client, path: str, password: str):
    page = client.get(path)
    return client.post(path, data={"password": password, "csrf_token": token(page.text)})


def test_no_default_password_and_a_separate_role(cfg, db):
    from appliance.web.app import create_app
    client = create_app(cfg, testing=True).test_client()
    r = client.get("/technik/")
    assert r.status_code == 302 and r.headers["Location"].startswith("/technik/login")
    page = client.get("/technik/login")
    assert "sitzungsbox set-password --role techniker" in page.text and 'type="password"' not in page.text
    auth.set_password(db, CLERK_PW)
    auth.set_password(db, TECH_PW, role=auth.TECHNICIAN)
    assert login(client, "/technik/login", CLERK_PW).status_code == 401  # the clerk's password is not ours
    assert login(client, "/clerk/login", CLERK_PW).status_code == 302
    assert client.get("/clerk/sessions").status_code == 200
    assert client.get("/technik/").status_code == 302  # a clerk sees no dashboard
    tech = create_app(cfg, testing=True).test_client()
    assert login(tech, "/technik/login", TECH_PW).status_code == 302
    assert tech.get("/technik/").status_code == 200
    r = tech.get("/clerk/sessions")
    assert r.status_code == 302 and "/clerk/login" in r.headers["Location"]  # a technician sees no clerk pages
    # a new technician password ends every technician session
    auth.set_password(db, "another-one-12345", role=auth.TECHNICIAN)
    assert tech.get("/technik/").status_code == 302


def test_dashboard_shows_clients_radio_network_health_graphs_alerts(setup):
    app, members, macs = setup
    client = app.test_client()
    login(client, "/technik/login", TECH_PW)
    r = client.get("/technik/")
    assert r.status_code == 200
    html = r.text
    assert '<meta http-equiv="refresh"' in html and "<script" not in html
    rows = re.findall(r'<tr class="sig-(\w+)" data-mac="([0-9a-f:]+)">', html)
    assert len(rows) == 30
    assert [m for _, m in rows[:2]] == macs[:2] and rows[0][0] == "bad"  # weak links first
    assert rows[-1] == ("unknown", macs[3])
    assert members[0].name in html  # admitted: named through the keyid
    assert members[19].name not in html  # not admitted (second half): no name yet
    assert "nicht freigeschaltet" in html
    row_brcm = html.split(f'data-mac="{macs[3]}"')[1].split("</tr>")[0]
    assert "n/a" in row_brcm and "0 %" not in row_brcm  # no retries reported: never a fake 0
    assert "40.0 %" in html.split(f'data-mac="{macs[2]}"')[1].split("</tr>")[0]
    assert "30 / 30" in html and "75.0 %" in html  # radio at its limit, channel busy
    assert 'id="pool">30 / 65521' in html and 'id="admitted">15 / 15' in html
    assert html.count("<svg") >= 5 and "<polyline" in html
    assert "Schwaches Signal" in html and "voll: 30 von 30" in html and "Unterspannung" in html
    assert "Dienst läuft nicht: Web-Anwendung" in html


def test_sort_and_filter_by_query_parameters(setup):
    app, members, macs = setup
    client = app.test_client()
    login(client, "/technik/login", TECH_PW)
    html = client.get("/technik/?class=bad").text
    assert re.findall(r'data-mac="([0-9a-f:]+)">', html) == macs[:2]
    html = client.get(f"/technik/?q={members[0].name}").text
    assert re.findall(r'data-mac="([0-9a-f:]+)">', html) == [macs[0]]
    html = client.get("/technik/?sort=signal&order=desc").text
    found = re.findall(r'data-mac="([0-9a-f:]+)">', html)
    assert found[-1] == macs[3] and set(found[-3:-1]) == set(macs[:2])  # no reading stays last
    html = client.get("/technik/?sort=ip").text
    assert re.findall(r'data-mac="([0-9a-f:]+)">', html)[:3] == macs[:3]
    assert client.get("/technik/?sort=;drop&class=<x>").status_code == 200  # bad input: defaults


def test_json_api_and_graph(setup):
    app, _members, macs = setup
    client = app.test_client()
    assert client.get("/technik/api").status_code == 302
    login(client, "/technik/login", TECH_PW)
    data = client.get("/technik/api").get_json()
    assert len(data["clients"]) == 30 and data["snapshot"]["radios"][0]["rejected_total"] == 1
    assert any(a["kind"] == "radio_full" for a in data["alerts"])
    assert client.post("/technik/api").status_code in (400, 405)  # read-only
    svg = client.get(f"/technik/graph/signal.svg?mac={macs[0]}")
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml" and "<polyline" in svg.text
    assert client.get("/technik/graph/nope.svg").status_code == 404


def test_metrics_parse_as_prometheus_text_and_stay_off_the_session_network(setup):
    app, _members, macs = setup
    client = app.test_client()
    r = client.get("/metrics")  # loopback (the box itself, or a scraper through an SSH tunnel)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    value = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    assert value[("sitzungsbox_radio_clients", (("interface", "wlan0"),))] == 30
    assert value[("sitzungsbox_radio_rejected_total", (("interface", "wlan0"),))] == 1
    assert value[("sitzungsbox_clients_by_signal", (("class", "bad"),))] == 2
    assert value[("sitzungsbox_dhcp_leases", ())] == 30
    assert value[("sitzungsbox_throttled", (("flag", "undervoltage"), ("when", "now")))] == 1
    assert value[("sitzungsbox_service_up", (("service", "web"),))] == 0
    assert families["sitzungsbox_radio_rejected"].type == "counter"
    assert not any(mac in r.text for mac in macs)  # no devices, no people in a scrape
    phone = client.get("/metrics", base_url="http://10.77.0.1", environ_overrides={"REMOTE_ADDR": "10.77.1.5"})
    assert phone.status_code == 403
