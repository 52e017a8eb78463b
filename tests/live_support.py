"""Shared setup for the issue-4 tests (push, presence, chat): a session with three admitted devices."""

from __future__ import annotations

import os
import re

from appliance.sessions import service
from appliance.sessions.roster import MemberRow
from appliance.store.db import now

ANNA_IP, BERND_IP, GUEST_IP, CARLA_IP = "10.77.0.10", "10.77.0.11", "10.77.0.12", "10.77.0.13"
MACS = {ANNA_IP: "02:5c:00:00:00:01", BERND_IP: "02:5c:00:00:00:02", GUEST_IP: "02:5c:00:00:00:03",
        CARLA_IP: "02:5c:00:00:00:04"}


def populate(cfg, db, admit: bool = True):
    """Anna (SPD) and Bernd (CDU) vote, Carla (SPD) votes but is not here, Dora is a deputy; a guest."""
    s = service.create_session(db, body="Rat der Stadt", title="12. Sitzung des Rates", day="2026-11-24",
                               venue="Rathaus")
    service.insert_members(db, s.id, [
        MemberRow("Anna Schmidt", "SPD", "member", True, "Rat"),
        MemberRow("Bernd Müller", "CDU", "member", True, "Rat"),
        MemberRow("Carla Weber", "SPD", "member", True, "Rat"),
        MemberRow("Dora Klein", "SPD", "deputy", False, "Rat"),
    ])
    service.set_active(db, s.id)
    ms = {m.name.split()[0]: m for m in service.members(db, s.id)}
    cfg.leases_file.parent.mkdir(parents=True, exist_ok=True)
    lines = "".join(f"0 {mac} {ip} * *\n" for ip, mac in MACS.items())
    tmp = cfg.leases_file.with_suffix(".tmp")
    tmp.write_text(lines)
    os.replace(tmp, cfg.leases_file)
    stations = [(MACS[ANNA_IP], ms["Anna"].keyid), (MACS[BERND_IP], ms["Bernd"].keyid), (MACS[GUEST_IP], "guest"),
                (MACS[CARLA_IP], ms["Carla"].keyid)]
    for mac, keyid in stations:
        db.execute("INSERT INTO stations(mac, interface, keyid, connected) VALUES (?, 'wlan0', ?, 1)", [mac, keyid])
    if admit:
        for ip, who in ((ANNA_IP, "Anna"), (BERND_IP, "Bernd"), (GUEST_IP, None)):
            db.execute("INSERT INTO admissions(session_id, mac, ip, member_id, kind, admitted_at) "
                       "VALUES (?, ?, ?, ?, ?, ?)",
                       [s.id, MACS[ip], ip, ms[who].id if who else None, "member" if who else "guest", now()])
    return s, ms


def call(app, path, ip, method="GET", **kw):
    client = app.test_client(use_cookies=False)
    return client.open(path, method=method, base_url="http://10.77.0.1", environ_base={"REMOTE_ADDR": ip}, **kw)


def token_in(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
