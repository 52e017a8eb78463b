"""The monitor daemon against a replayed hostapd control socket (FakeHostapd + STATUS), a replayed `iw`
and recorded /proc and /sys trees: the right clients, classes and alerts, with start and end."""

from __future__ import annotations

import json
import socket
import time
from dataclasses import replace
from pathlib import Path

from appliance.captive import admission
from appliance.captive.identify import Device
from appliance.config import Radio
from appliance.helper.client import NullHelper
from appliance.monitor import alerts, snapshot, timeseries
from appliance.monitor.collector import Collector
from appliance.monitor.daemon import Monitor
from appliance.monitor.replay import IwReplay, StatusFakeHostapd, populate
from appliance.monitor.system import SystemReader
from appliance.sessions import roster, service

FIX = Path(__file__).parent / "fixtures" / "monitoring"
N = 30


class Clock:
    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


def scenario(cfg, db, n: int = N, max_stations: int = N, busy_pct: float = 75.0):
    """A session with n devices on one radio: 20 members, the rest guests; half of them admitted.
    Returns (monitor, fake, iw, clock, members, macs); the caller closes monitor and fake."""
    # The web port: bound by this test but never listening, so no other program on the machine (a demo, another
    # test run) can make "web" look up.
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    cfg = replace(cfg, radios=(Radio(interface="wlan0", max_stations=max_stations),), web_bind="127.0.0.1",
                  web_port=closed.getsockname()[1]).validate()
    session = service.create_session(db, body="Rat", title="Monitor", day="2026-12-01", ssid=cfg.ssid)
    csv = "Name;Rolle\n" + "".join(f"Mitglied {i:02d};Mitglied\n" for i in range(20))
    service.insert_members(db, session.id, roster.parse_members(csv))
    service.set_active(db, session.id)
    members = service.members(db, session.id)
    keyids = [m.keyid for m in members] + ["guest"] * (n - len(members))
    fake = StatusFakeHostapd(cfg.hostapd_ctrl_dir / "wlan0", interface="wlan0")
    iw = IwReplay("wlan0", busy_pct=busy_pct, scan=(FIX / "iw-scan_jc_centos-7.7_iw-scan2.out").read_text())
    macs = populate(fake, iw, n, keyids)
    clock = Clock()
    cfg.leases_file.parent.mkdir(parents=True, exist_ok=True)
    cfg.leases_file.write_text("".join(f"{int(clock.now) + 3600} {mac} 10.77.1.{i + 1} phone-{i + 1} *\n"
                                       for i, mac in enumerate(macs)))
    active = service.active_session(db)
    by_keyid = {m.keyid: m for m in members}
    for i, mac in enumerate(macs[: n // 2]):
        member = by_keyid.get(keyids[i])
        admission.admit(db, NullHelper(), Device(f"10.77.1.{i + 1}", mac, "member" if member else "guest", member,
                                                 False), active)
    system = SystemReader(proc=FIX / "proc", sys=FIX / "sys", vcgencmd=None)
    collector = Collector(cfg, runner=iw, system=system, clock=clock)
    mon = Monitor(cfg, collector, clock=clock)
    mon.closed_web_port = closed  # held as long as the monitor lives
    return mon, fake, iw, clock, members, macs


def ticks(mon: Monitor, clock: Clock, k: int) -> dict:
    snap = {}
    for _ in range(k):
        snap = mon.tick()
        clock.now += 1
    return snap


def open_alerts(db) -> dict[tuple[str, str], dict]:
    return {(a["kind"], a["subject"]): a for a in alerts.recent(db) if a["ended_at"] is None}


def test_daemon_reports_clients_classes_and_alerts(cfg, db):
    mon, fake, iw, clock, members, macs = scenario(cfg, db)
    try:
        ticks(mon, clock, 1)  # the monitor attaches to hostapd
        fake.emit("<3>AP-REJECTED-MAX-STA 02:5b:00:00:99:99")  # a 31st phone turned away
        snap = ticks(mon, clock, 6)  # > monitor_alert_after_s (5 s)
        clients = snap["clients"]
        assert len(clients) == N
        # weak links first: the two -88 dBm stations, the driver without a reading last
        assert [c["mac"] for c in clients[:2]] == macs[:2]
        assert {c["signal_class"] for c in clients[:2]} == {"bad"}
        assert clients[-1]["mac"] == macs[3] and clients[-1]["signal"] is None
        assert clients[-1]["signal_class"] == "unknown" and clients[-1]["retries_reported"] is False
        by_mac = {c["mac"]: c for c in clients}
        assert by_mac[macs[2]]["retries_pct"] == 40.0
        assert by_mac[macs[10]]["retries_pct"] == 2.0 and by_mac[macs[10]]["tx_mbps"] is not None
        assert by_mac[macs[0]]["ip"] == "10.77.1.1" and by_mac[macs[0]]["device"] == "phone-1"
        assert by_mac[macs[0]]["keyid"] == members[0].keyid
        (radio,) = snap["radios"]
        assert radio["clients"] == N and radio["max_stations"] == N and radio["load_class"] == "bad"
        assert radio["channel"] == 6 and radio["width_mhz"] == 20 and radio["reachable"]
        assert radio["rejected_total"] == 1 and radio["busy_pct"] == 75.0 and radio["busy_class"] == "bad"
        assert radio["noise_dbm"] == -92
        assert radio["neighbours"] == []  # the recorded neighbour is on channel 1, we are on 6
        net = snap["network"]
        assert net["leases_active"] == N and net["admitted"] == N // 2 and net["captured"] == N - N // 2
        h = snap["health"]
        assert h["temp_c"] == 81.2 and h["throttled"]["now"] == ["undervoltage", "throttled"]
        assert h["services"]["dnsmasq"] is True and h["services"]["hostapd"] is True
        assert h["services"]["web"] is False  # nothing listens on the web port in this test
        got = open_alerts(db)
        assert ("weak_signal", macs[0]) in got and got[("weak_signal", macs[0])]["severity"] == "critical"
        assert ("weak_signal", macs[1]) in got
        assert ("high_retries", macs[2]) in got
        assert ("radio_full", "wlan0") in got and ("channel_busy", "wlan0") in got
        assert ("hot", "box") in got and ("undervoltage", "box") in got and ("service_down", "web") in got
        assert ("weak_signal", macs[3]) not in got  # no reading is not a weak signal
        assert not any(k == "high_retries" and s == macs[3] for k, s in got)  # n/a is not 0, nor an alert
        assert ("dhcp_pool", "dhcp") not in got

        # The weak phone walks closer: its alert ends, with an end time; the others stay open.
        fake.disconnect(macs[0])
        iw.remove(macs[0])
        ticks(mon, clock, 1)
        ended = [a for a in alerts.recent(db) if a["kind"] == "weak_signal" and a["subject"] == macs[0]]
        assert len(ended) == 1 and ended[0]["ended_at"] is not None and ended[0]["ended_at"] > ended[0]["started_at"]
        assert ("weak_signal", macs[1]) in open_alerts(db)

        # The driver restarts its counters: no negative or absurd rates.
        iw.reset()
        snap = ticks(mon, clock, 2)
        for c in snap["clients"]:
            assert c["retries_pct"] is None or 0 <= c["retries_pct"] <= 100
        assert 0 <= snap["radios"][0]["busy_pct"] <= 100

        # One sample serves every reader: the snapshot and the series are in the database.
        row = db.execute("SELECT value FROM monitor_state WHERE key = 'snapshot'").fetchone()
        assert json.loads(row[0])["clients"]["fields"][0] == "mac"  # stored in columns (monitor.snapshot)
        assert snapshot.decode(row[0])["clients"] == json.loads(json.dumps(snap["clients"]))  # read back whole
        assert len(snapshot.decode(row[0])["clients"]) == N - 1
        pts = timeseries.read(db, "clients", clock.now - 60)
        assert len(pts) == 10 and pts[0][1] == N and pts[-1][1] == N - 1
        assert timeseries.read(db, f"signal:{macs[1]}", clock.now - 60)  # per-client signal, every 10 s
    finally:
        mon.close()
        fake.close()


def test_an_admission_counts_in_the_next_tick(cfg, db):
    """The collector reads admissions through one connection it keeps open: what commits between two ticks is
    in the second (and a database that goes away is "n/a", then read again once it is back)."""
    mon, fake, _iw, clock, _members, macs = scenario(cfg, db, n=6, max_stations=10)
    try:
        assert ticks(mon, clock, 1)["network"]["admitted"] == 3
        admission.admit(db, NullHelper(), Device("10.77.1.6", macs[5], "guest", None, False),
                        service.active_session(db))
        assert ticks(mon, clock, 1)["network"]["admitted"] == 4
        mon.collector.db_path = cfg.db_path.with_name("gone.db")
        mon.collector._close_ro()
        assert ticks(mon, clock, 1)["network"]["admitted"] is None
        mon.collector.db_path = cfg.db_path
        assert ticks(mon, clock, 1)["network"]["admitted"] == 4
    finally:
        mon.close()
        fake.close()


def test_brief_condition_is_no_alert(cfg, db):
    mon, fake, iw, clock, _members, macs = scenario(cfg, db, n=3, max_stations=10, busy_pct=10)
    try:
        ticks(mon, clock, 2)  # weak for 2 s only
        fake.disconnect(macs[0])
        iw.remove(macs[0])
        ticks(mon, clock, 6)
        assert not [a for a in alerts.recent(db) if a["subject"] == macs[0]]
        assert ("weak_signal", macs[1]) in open_alerts(db)
    finally:
        mon.close()
        fake.close()


def test_open_alerts_are_rewritten_only_when_they_change(db):
    weak = alerts.Condition("weak_signal", "02:5b:00:00:00:01", "warning", "Schwaches Signal: -80 dBm", -80)
    busy = alerts.Condition("channel_busy", "wlan0", "warning", "Kanal 6 (wlan0) zu 75 % belegt", 75.0)

    def changes(due, now):
        before = db.conn.total_changes
        with db.conn:
            alerts.persist(db, due, now)
        return db.conn.total_changes - before

    assert changes([weak, busy], 100.0) == 2  # both opened
    assert changes([weak, busy], 101.0) == 0  # the same severity, message and value: nothing written
    worse = replace(weak, severity="critical", message="Schwaches Signal: -88 dBm", value=-88)
    assert changes([worse, busy], 102.0) == 1  # one changed: one UPDATE
    assert changes([worse, replace(busy, value=76.0)], 103.0) == 1  # a value alone counts as a change too
    assert changes([worse], 104.0) == 1  # the channel is quiet again: ended
    got = {(a["kind"], a["subject"]): a for a in alerts.recent(db)}
    assert got[("weak_signal", weak.subject)]["severity"] == "critical" and got[("weak_signal", weak.subject)][
        "value"] == -88 and got[("weak_signal", weak.subject)]["ended_at"] is None
    assert got[("channel_busy", "wlan0")]["value"] == 76.0 and got[("channel_busy", "wlan0")]["ended_at"] == 104.0


def test_downsampling_and_retention(db):
    t0 = 1_800_000_000  # a minute boundary (divisible by 60)
    with db.conn:
        timeseries.write(db, t0 - 1, {"x": 100.0})
        for s in range(120):
            timeseries.write(db, t0 + s, {"x": float(s), "gone": None})
        timeseries.downsample(db, t0 + 120, since=t0)
    minutes = timeseries.read(db, "x", t0, res=timeseries.MINUTE)
    assert minutes == [(t0, 29.5), (t0 + 60, 89.5)]
    assert timeseries.read(db, "gone", t0, res=timeseries.SECOND) == []  # no reading: no point
    with db.conn:
        timeseries.prune(db, t0 + 3600 + 30)
    assert [ts for ts, _ in timeseries.read(db, "x", 0, res=timeseries.SECOND)][0] == t0 + 30
    with db.conn:
        timeseries.prune(db, t0 + 86400 + 30)
    assert timeseries.read(db, "x", 0, res=timeseries.MINUTE) == [(t0 + 60, 89.5)]


def test_unreachable_radio_is_reported_not_fatal(cfg, db):
    collector = Collector(cfg, runner=lambda argv: None, system=SystemReader(proc=FIX / "proc", sys=FIX / "nope",
                                                                               vcgencmd=None))
    snap = collector.sample()
    (radio,) = snap["radios"]
    assert radio["reachable"] is False and radio["clients"] == 0 and radio["busy_pct"] is None
    assert snap["health"]["services"]["hostapd"] is False and snap["health"]["temp_c"] is None
    cond = {(c.kind, c.subject) for c in alerts.evaluate(snap, collector.t)}
    assert ("service_down", "hostapd") in cond
