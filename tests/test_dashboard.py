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
    assert 'http-equiv="refresh"' not in html  # it wiped the search box while a technician typed
    assert not re.search(r"<script(?![^>]*\bsrc=)", html) and " style=" not in html  # CSP: no inline script/style
    rows = re.findall(r'<tr class="sig-(\w+)" id="dev-[0-9a-f-]+"(?: aria-current="true")? data-mac="([0-9a-f:]+)">',
                      html)
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
    graphs = re.findall(r'<img id="graph-(\w+)" src="([^"]+)" alt="[^"]+" width="600" height="160" loading="lazy">',
                        html)
    assert [n for n, _ in graphs] == ["clients", "busy", "temp", "traffic", "signal"]
    for _name, src in graphs:
        svg = client.get(src.replace("&amp;", "&"))
        assert svg.mimetype == "image/svg+xml" and "<polyline" in svg.text
    for kind in ("Schwaches Signal", "Funkmodul voll", "Unterspannung", "Dienst läuft nicht"):
        assert f"<strong>{kind}</strong>" in html
    # the page reads top down: overview, alerts, clients, then graphs, radios, network and box
    order = [html.index(f'<section id="{s}"') for s in ("overview", "alerts", "clients", "history", "radios",
                                                          "network", "health")]
    assert order == sorted(order)


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


GONE = "02:5b:00:00:77:77"  # a device that left before this snapshot


def alerts_part(html: str) -> str:
    return html.split('data-live-part="alerts">')[1].split("</section>")[0]


def groups(html: str) -> list[tuple[str, str, str]]:
    """(severity, kind, count text) of each open alert group, in page order."""
    part = alerts_part(html).split('id="alerts-ended"')[0]
    return re.findall(r'<li class="alert-group sev-(\w+)" data-kind="(\w+)">.*?<span class="n">([^<]+)</span>',
                      part, re.S)


def test_alerts_one_line_per_kind_most_severe_first_named_and_linked_to_the_row(setup, db):
    app, members, macs = setup
    # an older warning, the newest warning and an ended one beside what the replay raised
    db.execute("INSERT INTO monitor_alerts (kind, subject, severity, message, value, started_at, ended_at) "
               "VALUES ('high_retries', ?, 'warning', 'x', 30, 1, NULL), ('disk_full', 'box', 'warning', 'x', 91, "
               "9e9, NULL), ('weak_signal', ?, 'warning', 'x', -80, 5, 6)", [macs[5], GONE])
    db.conn.commit()
    client = app.test_client()
    login(client, "/technik/login", TECH_PW)
    html = client.get("/technik/").text
    found = groups(html)
    kinds = [k for _, k, _ in found]
    assert len(kinds) == len(set(kinds))  # one line per kind
    severities = [sev for sev, _, _ in found]
    assert severities == sorted(severities, key=["critical", "warning"].index)  # most severe first
    assert severities[0] == "critical" and kinds.index("disk_full") == severities.index("warning")  # then newest
    by_kind = {k: n for _, k, n in found}
    assert by_kind["weak_signal"] == "2 betroffen" and by_kind["service_down"] == "2 betroffen"
    assert by_kind["high_retries"] == "2 betroffen" and by_kind["radio_full"] == "1 betroffen"
    assert "Offen: 6 kritisch, 5 Warnungen" in html
    part = alerts_part(html)
    # named by member, linked to the device's row on this page (which exists)
    weak = part.split('data-kind="weak_signal"')[1].split("</details>")[0]
    assert members[0].name in weak and members[1].name in weak
    assert f'href="#dev-{macs[0].replace(":", "-")}"' in weak
    assert f'<tr class="sig-bad" id="dev-{macs[0].replace(":", "-")}"' in html
    # in a group the newest of the same severity first: macs[2] (now) before macs[5] (epoch 1)
    retries = part.split('data-kind="high_retries"')[1].split("</details>")[0]
    assert retries.index(macs[2].replace(":", "-")) < retries.index(macs[5].replace(":", "-"))
    # ended ones apart, below, collapsed; a device no longer connected says so instead of a dead link
    ended = part.split('id="alerts-ended"')[1]
    assert "Beendete Meldungen (1)" in ended and GONE in ended and GONE not in html.split('data-live-part="rows"')[1]
    assert "#dev-" + GONE.replace(":", "-") not in ended
    assert "nicht mehr verbunden" in ended
    assert re.search(r"<details [^>]*open", part) is None  # works without JS: <details>, closed


def test_alert_of_a_filtered_out_row_links_to_the_page_that_shows_it(setup):
    app, _members, macs = setup
    client = app.test_client()
    login(client, "/technik/login", TECH_PW)
    html = client.get("/technik/?class=bad&lang=en").text  # only the two weak rows
    retries = alerts_part(html).split('data-kind="high_retries"')[1].split("</details>")[0]
    href = re.search(r'href="([^"]+)"', retries).group(1).replace("&amp;", "&")
    anchor = "dev-" + macs[2].replace(":", "-")
    assert href.startswith("/technik/?") and href.endswith("#" + anchor) and "lang=en" in href
    target = client.get(href.split("#")[0]).text
    assert f'id="{anchor}" aria-current="true"' in target  # the row is there, marked, and its graph shown
    assert re.search(rf'id="graph-signal" src="/technik/graph/signal.svg\?[^"]*mac={macs[2]}&amp;', target)


def test_no_js_refresh_keeps_the_search_and_the_script_polls_the_same_query(setup):
    app, members, macs = setup
    client = app.test_client()
    login(client, "/technik/login", TECH_PW)
    name = members[0].name
    html = client.get(f"/technik/?q={name}&class=bad&sort=ip&order=desc").text
    assert 'http-equiv="refresh"' not in html
    assert f'<input type="search" id="q" name="q" value="{name}">' in html
    refresh = re.search(r'<a href="([^"]+)" id="refresh">Aktualisieren</a>', html).group(1).replace("&amp;", "&")
    poll = re.search(r'data-poll="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert poll.startswith("/technik/live?")
    for url in (refresh, poll):
        assert "q=Mitglied+00" in url and "class=bad" in url and "sort=ip" in url and "order=desc" in url
    # the refreshed page has the same search, the poll answers only the live parts for the same rows
    again = client.get(refresh).text
    assert f'value="{name}"' in again and re.findall(r'data-mac="([0-9a-f:]+)">', again) == [macs[0]]
    live = client.get(poll)
    assert live.status_code == 200 and live.headers["Cache-Control"] == "no-store"
    parts = re.findall(r'data-live-part="(\w+)"', live.text)
    assert parts == ["status", "overview", "alerts", "count", "rows", "graphs", "radios", "network", "health"]
    assert set(parts) == set(re.findall(r'data-live-part="(\w+)"', html))  # every part of the page, no form
    assert "<form" not in live.text and "<input" not in live.text
    assert re.findall(r'data-mac="([0-9a-f:]+)">', live.text) == [macs[0]]
    assert client.get("/technik/live", follow_redirects=False).status_code == 200
    anon = app.test_client().get("/technik/live")
    assert anon.status_code == 302 and "/technik/login" in anon.headers["Location"]


def test_stale_and_missing_readings_are_said_once_not_every_poll(setup, db):
    app, _members, _macs = setup
    client = app.test_client()
    login(client, "/technik/login", TECH_PW)
    db.execute("UPDATE monitor_state SET at = at - 600 WHERE key = 'snapshot'")
    db.conn.commit()
    first, second = client.get("/technik/live").text, client.get("/technik/live").text
    status = re.search(r'data-live-part="status">(.*?)</span>\s*<div', first, re.S).group(1)
    assert 'id="stale"' in status and status in second  # same text on every poll: announced once
    db.execute("DELETE FROM monitor_state")
    db.conn.commit()
    assert 'id="no-data"' in client.get("/technik/").text


def test_field_guide_explains_every_alert_line_the_page_shows():
    """docs/feldhandbuch.md B6 names each alert kind by the German line the page shows."""
    from pathlib import Path

    from babel.messages.pofile import read_po

    from appliance.monitor import alerts

    root = Path(__file__).resolve().parent.parent
    with (root / "appliance/web/translations/de/LC_MESSAGES/messages.po").open("rb") as f:
        de = {m.id: m.string for m in read_po(f) if m.id}
    guide = (root / "docs/feldhandbuch.md").read_text().split("### B6.")[1].split("\n### ")[0]
    missing = [k for k in alerts.KINDS if f"„{de['tech.kind.' + k]}“" not in guide]
    assert not missing, missing
