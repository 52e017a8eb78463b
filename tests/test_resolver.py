"""One answer to "which member is this device": the portal (captive.identify), the presence daemon and the
technicians' dashboard agree on the tricky cases, because all three ask appliance.rules.device.

Before, presence named a member from any live admission of the MAC alone and from a new admission row
whatever the station's key said, and the dashboard counted a MAC admitted at any IP and never named a
member admitted by code.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time

import pytest

from appliance.captive.identify import identify
from appliance.monitor import view
from appliance.presence import store
from appliance.presence.sources import PresenceDaemon
from appliance.sessions import service
from appliance.sessions.roster import MemberRow
from appliance.store.db import now

MAC = {k: f"02:5d:00:00:00:0{i}" for i, k in enumerate("ABGSCEN", start=1)}
IP = {"A": "10.77.0.10", "B": "10.77.0.31", "G": "10.77.0.12", "S": "10.77.0.13", "C": "10.77.0.14",
      "E": "10.77.0.15", "N": "10.77.0.16"}


@pytest.fixture
def scene(cfg, db, tmp_path):
    s = service.create_session(db, body="Rat", title="Sitzung", day="2026-11-24")
    service.insert_members(db, s.id, [
        MemberRow("Anna", "SPD", "member", True, ""), MemberRow("Bernd", "CDU", "member", True, ""),
        MemberRow("Carla", "SPD", "member", True, ""), MemberRow("Dora", "SPD", "deputy", False, ""),
        MemberRow("Eva", "", "guest", False, ""), MemberRow("Frank", "CDU", "member", True, ""),
    ])
    service.set_active(db, s.id)
    ms = {m.name: m for m in service.members(db, s.id)}

    def station(dev, keyid):
        db.execute("INSERT INTO stations(mac, interface, keyid, connected) VALUES (?, 'wlan0', ?, 1)",
                   [MAC[dev], keyid])

    def admit(dev, ip, who):
        db.execute("INSERT INTO admissions(session_id, mac, ip, member_id, kind, admitted_at) "
                   "VALUES (?, ?, ?, ?, ?, ?)",
                   [s.id, MAC[dev], ip, ms[who].id if who else None, "member" if who else "guest", now()])

    station("A", ms["Anna"].keyid)
    admit("A", "10.77.0.40", None)  # A: Anna's key; admitted once at another address (MAC-only match)
    admit("B", "10.77.0.11", "Bernd")  # B: external AP, Bernd's code at .11, now leased .31: nobody
    station("G", "guest")
    admit("G", IP["G"], "Carla")  # G: on the guest key; a code admission cannot overrule the key: a guest
    station("S", "m0000000000")  # S: a keyid nobody has any more (rotated away)
    admit("C", IP["C"], "Dora")  # C: external AP, Dora's code for exactly this pair
    station("E", ms["Eva"].keyid)
    admit("E", IP["E"], None)  # E: Eva, a listed guest, on her own key
    station("N", None)
    admit("N", IP["N"], "Frank")  # N: our radio reports no keyid: Frank's code for exactly this pair
    cfg.leases_file.parent.mkdir(parents=True, exist_ok=True)
    cfg.leases_file.write_text("".join(f"4102444800 {MAC[d]} {IP[d]} * *\n" for d in MAC))
    arp = tmp_path / "arp"
    arp.write_text("IP address       HW type     Flags       HW address            Mask     Device\n")
    return s, ms, arp


def portal_answer(cfg, db, arp, dev):
    d = identify(db, cfg, IP[dev], arp_path=arp)
    return d.kind, (d.member.name if d.member else None), d.admitted


EXPECTED = {"A": ("member", "Anna", False), "B": ("unknown", None, False), "G": ("guest", None, True),
            "S": ("unknown", None, False), "C": ("member", "Dora", True), "E": ("member", "Eva", True),
            "N": ("member", "Frank", True)}


def test_portal_answers(cfg, db, scene):
    _s, _ms, arp = scene
    assert {d: portal_answer(cfg, db, arp, d) for d in MAC} == EXPECTED


def test_presence_counts_exactly_whom_the_portal_names(cfg, db, scene):
    s, _ms, arp = scene
    PresenceDaemon(dataclasses.replace(cfg, presence_grace=30), clock=lambda: 1_000_000.0).round(db)
    present = {r.name for r in store.attendance(db, s.id, 1_000_001.0) if r.status == "present"}
    named = {portal_answer(cfg, db, arp, d)[1] for d in MAC} - {None}
    assert present == named == {"Anna", "Dora", "Eva", "Frank"}  # not Bernd (MAC alone), not Carla (guest key)
    assert store.present_count(db, s.id) == 3  # Eva is a listed guest: no quorum role


def test_presence_does_not_follow_a_mac_to_another_address(cfg, db, scene):
    """Bernd's code admitted (B, .11); the device keeps renewing its lease at .31: never Bernd."""
    s, ms, _arp = scene
    clock = [1_000_000.0]
    pd = PresenceDaemon(dataclasses.replace(cfg, presence_grace=30), clock=lambda: clock[0])
    for renewal in range(3):
        tmp = cfg.leases_file.with_suffix(".tmp")
        tmp.write_text("".join(f"{4102444800 + renewal} {MAC[d]} {IP[d]} * *\n" for d in MAC))
        os.replace(tmp, cfg.leases_file)
        pd.round(db)
        clock[0] += 5
    assert pd.leases[MAC["B"]] == 4102444802  # the renewals were read
    bernd = next(r for r in store.attendance(db, s.id, clock[0]) if r.member_id == ms["Bernd"].id)
    assert bernd.status == "absent" and bernd.devices == 0


def test_dashboard_gives_the_portals_answer(cfg, db, scene):
    _s, ms, arp = scene
    # The monitor's snapshot: the stations our radio reports, with the IP of their lease.
    keyids = {r[0]: r[1] for r in db.execute("SELECT mac, keyid FROM stations").fetchall()}
    clients = [{"mac": MAC[d], "keyid": keyids[MAC[d]], "ip": IP[d], "signal": -60} for d in "AGSEN"]
    db.execute("INSERT INTO monitor_state(key, at, value) VALUES ('snapshot', ?, ?)",
               [time.time(), json.dumps({"clients": clients, "interval_s": 1})])
    rows = {c["mac"]: c for c in view.dashboard_model(db)["clients"]}
    for d in "AGSEN":
        kind, name, admitted = portal_answer(cfg, db, arp, d)
        row = rows[MAC[d]]
        assert row["admitted"] == admitted, d
        assert row["member_id"] == (ms[name].id if name else None), d
        assert row["name"] == (name if admitted else None), d
    assert rows[MAC["E"]]["kind"] == "guest"  # a listed guest is shown as a guest
    assert rows[MAC["N"]]["kind"] == "member" and rows[MAC["N"]]["name"] == "Frank"
    assert (rows[MAC["A"]]["kind"], rows[MAC["A"]]["name"]) == ("member", None)  # not admitted at .10


def test_monitor_counts_admitted_pairs_not_macs(cfg, db, scene):
    """The network panel's admitted/captured counts match pairs, like the firewall and the rule."""
    from appliance.monitor.collector import Collector

    leased = {(MAC[d], IP[d]) for d in MAC}
    admitted, captured = Collector(cfg, runner=lambda argv: None)._admissions(leased)
    # Admitted pairs of the session: A at .40, B at .11, G, C, E, N; leased but not admitted: A .10, B .31, S.
    assert (admitted, captured) == (6, 3)
