"""Presence through the database: the daemon's sources (stations, leases, admissions, ARP), intervals,
corrections, the attendance list, CSV, quorum; events on the push channel."""

from __future__ import annotations

import dataclasses
import json
import os

from appliance.presence import store
from appliance.presence.sources import PresenceDaemon, lease_changes, station_changes
from appliance.push.events import since
from tests.live_support import ANNA_IP, BERND_IP, MACS, populate


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class FakeArp:
    def __init__(self) -> None:
        self.answering: set[str] = set()
        self.asked: list[dict] = []

    def probe(self, targets):
        self.asked.append(dict(targets))
        return {ip for ip in targets if ip in self.answering}


def test_pure_diffs():
    assert station_changes({}, {"m1": ("k1", True)}) == [("m1", "k1", "connect")]
    assert station_changes({"m1": ("k1", True)}, {"m1": ("k1", False)}) == [("m1", "k1", "disconnect")]
    assert station_changes({"m1": ("k1", True)}, {}) == [("m1", "k1", "disconnect")]
    assert station_changes({"m1": ("k1", True)}, {"m1": ("k2", True)}) == [("m1", "k2", "connect")]
    assert lease_changes({"a": 10}, {"a": 10, "b": 5}) == ["b"]
    assert lease_changes({"a": 10}, {"a": 20}) == ["a"]


def test_daemon_round_makes_members_present_and_absent_after_grace(cfg, db):
    s, ms = populate(cfg, db, admit=False)
    db.execute("UPDATE stations SET connected = 0")
    cfg.leases_file.write_text("")  # nobody has talked DHCP yet
    clock, arp = Clock(), FakeArp()
    pd = PresenceDaemon(dataclasses.replace(cfg, presence_grace=30), prober=arp, probe_every=10, clock=clock)
    pd.round(db)
    assert store.present_count(db, s.id) == 0
    # Anna's phone joins with her key (hostapd) -> present at once.
    db.execute("UPDATE stations SET connected = 1 WHERE mac = ?", [MACS[ANNA_IP]])
    clock.t += 1
    pd.round(db)
    rows = {r.name: r for r in store.attendance(db, s.id, clock.t)}
    assert rows["Anna Schmidt"].status == "present" and rows["Anna Schmidt"].devices == 1
    assert rows["Bernd Müller"].status == "absent"
    # Bernd's device is admitted by the portal (no station change): present too.
    db.execute("INSERT INTO admissions(session_id, mac, ip, member_id, kind, admitted_at) VALUES (?, ?, ?, ?, "
               "'member', 'x')", [s.id, MACS[BERND_IP], BERND_IP, ms["Bernd"].id])
    clock.t += 1
    pd.round(db)
    assert store.present_count(db, s.id) == 2
    arrived_at = clock.t
    # Bernd's device goes quiet: ARP probes answered keep him; once unanswered, he leaves after the grace
    # period, recorded at his last evidence.
    arp.answering = {BERND_IP}
    clock.t += 11
    pd.round(db)
    assert any(BERND_IP in t for t in arp.asked)
    last_answer = clock.t
    arp.answering = set()
    for _ in range(5):
        clock.t += 10
        pd.round(db)
    rows = {r.name: r for r in store.attendance(db, s.id, clock.t)}
    assert rows["Bernd Müller"].status == "left"
    assert rows["Bernd Müller"].first_arrival == arrived_at and rows["Bernd Müller"].last_leaving == last_answer
    # The clerks were told on the push channel; Bernd got his own status.
    topics = [(e.topic, e.audience) for e in since(db, 0, s.id)]
    assert ("presence.changed", "clerks") in topics and ("presence.mine", f"member:{ms['Bernd'].id}") in topics


def test_daemon_restart_keeps_intervals(cfg, db):
    s, _ms = populate(cfg, db, admit=False)
    clock = Clock()
    g = dataclasses.replace(cfg, presence_grace=30)
    PresenceDaemon(g, clock=clock).round(db)  # all three member stations are connected
    assert store.present_count(db, s.id) == 3
    clock.t += 100
    again = PresenceDaemon(g, clock=clock)  # the daemon restarts; stations still connected
    again.round(db)
    clock.t += 100
    again.round(db)
    n = db.execute("SELECT COUNT(*) FROM presence_intervals WHERE session_id = ?", [s.id]).fetchone()[0]
    assert n == 3 and store.present_count(db, s.id) == 3  # one interval each, no split


def test_corrections_csv_and_quorum(cfg, db):
    s, ms = populate(cfg, db, admit=False)
    clock = Clock()
    PresenceDaemon(dataclasses.replace(cfg, presence_grace=30), clock=clock).round(db)
    store.correct(db, s.id, ms["Carla"].id, "absent", "Gerät verliehen, selbst nicht da", "clerk", 30, clock.t + 5)
    rows = store.attendance(db, s.id, clock.t + 10)
    present, voting, needed = store.quorum(rows)
    assert (present, voting, needed) == (2, 3, 2)
    assert store.quorum(rows).reached
    carla = next(r for r in rows if r.member_id == ms["Carla"].id)
    assert carla.status == "left" and carla.corrected
    assert [(c.at, c.status, c.reason, c.actor) for c in carla.corrections] == [
        (clock.t + 5, "absent", "Gerät verliehen, selbst nicht da", "clerk")]
    mine = store.member_status(db, s.id, ms["Carla"].id)
    assert not mine.present and mine.correction == carla.corrections[0]
    assert store.member_status(db, s.id, ms["Anna"].id) == store.Mine(True, None)
    try:
        store.correct(db, s.id, ms["Carla"].id, "present", "  ", "clerk", 30)
    except ValueError as exc:
        assert "Grund" in str(exc)
    else:
        raise AssertionError("a correction without a reason must be refused")
    assert os.path.exists(cfg.db_path)


def test_german_order_of_names():
    """DIN 5007-1: case and accents ignored, ä as a, ö as o, ü as u, ß as ss; locale-free."""
    names = ["Zoe Ziegler", "Özil Öztürk", "anna Adler", "Äneas Ärmel", "Otto Ober", "Ulla Ufer", "Üwe Übel",
             "Émile Eber", "Straße Sepp", "Strasse Sepp", "Bernd Müller", "Bernd Muller", "Bernd Mueller"]
    assert sorted(names, key=store.german_key) == [
        "Äneas Ärmel", "anna Adler", "Bernd Mueller", "Bernd Muller", "Bernd Müller", "Émile Eber", "Otto Ober",
        "Özil Öztürk", "Strasse Sepp", "Straße Sepp", "Ulla Ufer", "Üwe Übel", "Zoe Ziegler"]


def _r(mid, name, faction, status, arrival=None):
    return store.Row(mid, name, faction, "member", True, status, arrival, None, 0.0, 0, False, ())


def test_arrange_sorts_and_filters():
    rows = [_r(1, "Zora", "SPD", "present", 30.0), _r(2, "Ömer", "CDU", "absent"), _r(3, "Anna", "", "left", 10.0),
            _r(4, "Bea", "Grüne", "present", 20.0)]
    names = lambda rs: [r.name for r in rs]  # noqa: E731
    assert names(store.arrange(rows)) == ["Anna", "Bea", "Ömer", "Zora"]
    assert names(store.arrange(rows, descending=True)) == ["Zora", "Ömer", "Bea", "Anna"]
    assert names(store.arrange(rows, "faction")) == ["Ömer", "Bea", "Zora", "Anna"]  # without a faction: last
    assert names(store.arrange(rows, "status")) == ["Bea", "Zora", "Anna", "Ömer"]  # present, left, absent
    assert names(store.arrange(rows, "arrival")) == ["Anna", "Bea", "Zora", "Ömer"]  # not come: last
    assert names(store.arrange(rows, "arrival", descending=True)) == ["Ömer", "Zora", "Bea", "Anna"]
    assert names(store.arrange(rows, faction="SPD")) == ["Zora"]
    assert names(store.arrange(rows, faction="")) == ["Anna"]
    assert names(store.arrange(rows, status="present")) == ["Bea", "Zora"]
    assert names(store.arrange(rows, "nonsense")) == ["Anna", "Bea", "Ömer", "Zora"]
    assert store.factions(rows) == ["CDU", "Grüne", "SPD", ""]


def test_a_quiet_device_is_held_with_its_last_evidence_until_the_grace_runs_out(cfg, db):
    s, ms = populate(cfg, db, admit=False)
    clock = Clock()
    pd = PresenceDaemon(dataclasses.replace(cfg, presence_grace=600), clock=clock)
    pd.round(db)
    anna = ms["Anna"].id
    row = lambda: next(r for r in store.attendance(db, s.id, clock.t, 600) if r.member_id == anna)  # noqa: E731
    assert row().status == "present" and row().held_since is None
    db.execute("UPDATE stations SET connected = 0 WHERE mac = ?", [MACS[ANNA_IP]])
    clock.t += 5
    pd.round(db)
    gone = clock.t
    clock.t += 240
    pd.round(db)
    assert row().status == "present" and row().held_since == gone  # "zuletzt gesehen vor 4 min"
    clock.t += 400
    pd.round(db)
    assert row().status == "left" and row().held_since is None and row().last_leaving == gone


def test_local_time_is_the_configured_zone_not_the_system_s():
    ts = 1_795_000_000.0  # 2026-11-18 11:06:40 UTC, 12:06 in Berlin (CET)
    assert store.fmt_time(ts, "Europe/Berlin") == "12:06" and store.fmt_time(ts, "UTC") == "11:06"
    assert store.fmt_datetime(ts, "Europe/Berlin") == "18.11.2026, 12:06"
    assert store.fmt_time(1_785_000_000.0, "Europe/Berlin") == "19:20"  # 2026-07-25 17:20 UTC: summer time
    assert store.fmt_time(None, "Europe/Berlin") == ""


def test_a_correction_that_keeps_the_status_still_tells_the_member_and_the_clerks(cfg, db):
    s, ms = populate(cfg, db, admit=False)
    PresenceDaemon(dataclasses.replace(cfg, presence_grace=30)).round(db)  # Anna is present by her phone
    last = max(e.id for e in since(db, 0, s.id))
    assert store.correct(db, s.id, ms["Anna"].id, "present", "bestätigt", "clerk", 30) == []
    topics = [(e.topic, e.audience, json.loads(e.payload).get("present")) for e in since(db, last, s.id)]
    assert ("presence.mine", f"member:{ms['Anna'].id}", True) in topics
    assert ("presence.changed", "clerks", None) in topics


def _many_present(cfg, db, n: int = 40, grace: float = 60.0):
    from appliance.presence.engine import Obs
    from appliance.sessions import service
    from appliance.sessions.roster import MemberRow

    s = service.create_session(db, body="Rat", title="Ruhe", day="2026-12-01")
    service.insert_members(db, s.id, [MemberRow(f"Mitglied {i:03d}", "F", "member", True, "Rat") for i in range(n)])
    ms = service.members(db, s.id)
    for i, m in enumerate(ms):
        store.record(db, s.id, m.id, Obs(1000.0, "connect", f"02:be:00:00:{i:02x}:01", "hostapd"), grace)
    return s, ms


def test_an_idle_tick_with_everyone_present_writes_nothing(cfg, db):
    s, _ms = _many_present(cfg, db)
    wal = cfg.db_path.with_name(cfg.db_path.name + "-wal")
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    changes, wal_size = db.conn.total_changes, wal.stat().st_size
    sent: list[str] = []
    db.conn.set_trace_callback(sent.append)
    try:
        for n in range(20):
            assert store.tick_session(db, s.id, 60.0, now=1001.0 + n / 2) == []
    finally:
        db.conn.set_trace_callback(None)
    assert not [q for q in sent if q.lstrip().upper().startswith(("BEGIN", "INSERT", "UPDATE", "DELETE"))]
    assert len(sent) <= 20 * 4  # a few reads per tick, however many members
    assert db.conn.total_changes == changes  # no row touched
    memo, sent[:] = store.TickMemo(), []
    db.conn.set_trace_callback(sent.append)
    try:
        for n in range(20):
            assert store.tick_session(db, s.id, 60.0, now=1020.0 + n / 2, memo=memo) == []
    finally:
        db.conn.set_trace_callback(None)
    assert len(sent) == 4 + 19  # with the daemon's memo: one full read, then one PRAGMA a tick
    assert wal.stat().st_size == wal_size  # and not even an empty commit reached the log


def test_the_tick_closes_a_member_exactly_when_the_grace_runs_out(cfg, db):
    from appliance.presence.engine import Obs

    s, ms = _many_present(cfg, db, n=5)
    gone = ms[2].id
    store.record(db, s.id, gone, Obs(1100.0, "disconnect", "02:be:00:00:02:01", "hostapd"), 60.0)
    assert store.tick_session(db, s.id, 60.0, now=1159.5) == []  # still within the grace period
    assert store.member_status(db, s.id, gone).present
    closed = store.tick_session(db, s.id, 60.0, now=1160.0)  # last evidence + grace: due now, as before
    assert [(mid, c.kind, c.at, c.source) for mid, c in closed] == [(gone, "leave", 1100.0, "grace")]
    assert not store.member_status(db, s.id, gone).present
    assert sum(r.status == "present" for r in store.attendance(db, s.id, 1160.0, 60.0)) == 4
    assert store.tick_session(db, s.id, 60.0, now=1200.0) == []  # device still remembered, nothing due
    changes = db.conn.total_changes
    store.tick_session(db, s.id, 60.0, now=1220.0)  # gone 2 × grace: the device is forgotten
    assert db.conn.total_changes == changes + 1
    assert store.attendance(db, s.id, 1220.0, 60.0)[2].devices == 0


def test_with_a_memo_the_tick_still_sees_other_connections_writes_and_closes_on_time(cfg, db):
    from appliance.presence.engine import Obs
    from appliance.store import open_db

    s, ms = _many_present(cfg, db, n=5)
    memo = store.TickMemo()
    assert store.tick_session(db, s.id, 60.0, now=1001.0, memo=memo) == []
    assert memo.due_at is None  # everyone linked: only an observation can change anyone
    web = open_db(cfg.db_path, migrate=False)  # another process (the web app) records a departure
    try:
        store.record(web, s.id, ms[1].id, Obs(1010.0, "disconnect", "02:be:00:00:01:01", "hostapd"), 60.0)
    finally:
        web.conn.close()
    assert store.tick_session(db, s.id, 60.0, now=1011.0, memo=memo) == []
    assert memo.due_at == 1070.0  # read again: the grace of that member runs out at last evidence + grace
    assert store.tick_session(db, s.id, 60.0, now=1069.5, memo=memo) == []
    closed = store.tick_session(db, s.id, 60.0, now=1070.0, memo=memo)
    assert [(mid, c.kind, c.at) for mid, c in closed] == [(ms[1].id, "leave", 1010.0)]
    # Our own write (this connection) is noticed too: a departure recorded here is closed on time.
    store.record(db, s.id, ms[3].id, Obs(1080.0, "disconnect", "02:be:00:00:03:01", "hostapd"), 60.0)
    assert store.tick_session(db, s.id, 60.0, now=1081.0, memo=memo) == []
    closed = store.tick_session(db, s.id, 60.0, now=1140.0, memo=memo)
    assert [(mid, c.kind, c.at) for mid, c in closed] == [(ms[3].id, "leave", 1080.0)]


def test_a_round_in_which_nothing_changed_reads_no_members_and_writes_nothing(cfg, db):
    s, ms = populate(cfg, db, admit=False)
    clock = Clock()
    pd = PresenceDaemon(cfg, clock=clock)
    pd.round(db)
    pd.round(db)
    changes, sent = db.conn.total_changes, []
    db.conn.set_trace_callback(sent.append)
    try:
        for _ in range(5):
            clock.t += 0.5
            pd.round(db)
    finally:
        db.conn.set_trace_callback(None)
    assert db.conn.total_changes == changes
    assert not [q for q in sent if "FROM members" in q or q.upper().startswith(("BEGIN", "INSERT", "UPDATE"))]
