"""The daemon's housekeeping tick (appliance.daemon.Housekeeping): a vote whose countdown ran out is closed by
the tick itself — counted, its result stored and pushed to the room — without any page reading the vote; the
tick survives a broken database and retention still runs at the start and hourly."""

from __future__ import annotations

import json

from appliance import daemon, retention
from appliance.push.events import since
from appliance.rules.viewer import Viewer
from appliance.sessions import service
from appliance.sessions.roster import MemberRow
from appliance.usecases import votes

T0 = 1_800_000_000.0


def _countdown_running(db):
    """A council of three in the room; a vote open with a 10 s countdown from T0; two yes, one no."""
    s = service.create_session(db, body="Rat", title="Sitzung", day="2026-12-07")
    service.insert_members(db, s.id, [MemberRow(n, f, "member", True, "Rat") for n, f in
                                      (("Anna Schmidt", "SPD"), ("Bernd Müller", "SPD"), ("Carla Weber", "CDU"))])
    service.set_active(db, s.id)
    clerk = Viewer("clerk", s.id)
    ms = service.members(db, s.id)
    for m in ms:
        db.execute("INSERT INTO presence_intervals(session_id, member_id, start, start_source) "
                   "VALUES (?, ?, ?, 'wifi')", [s.id, m.id, T0 - 600])
    vid = votes.open_vote(db, clerk, s.id, question="Zustimmen?", now=T0).vote_id
    for i, (m, choice) in enumerate(zip(ms, ("yes", "yes", "no"), strict=True)):
        assert votes.cast(db, Viewer("member", s.id, m, True), s.id, vid, m.id, choice, f"key-{i:012d}",
                          now=T0 + 1).ok
    assert votes.set_countdown(db, clerk, s.id, 10, now=T0 + 2).ok
    return s, vid


def _vote_row(db, vid):
    return db.execute("SELECT state, yes, no, abstain, accepted, closed_at FROM votes WHERE id = ?",
                      [vid]).fetchone()


def test_the_tick_closes_a_vote_whose_countdown_ran_out(cfg, db):
    s, vid = _countdown_running(db)
    before = db.execute("SELECT COALESCE(MAX(id), 0) FROM push_events").fetchone()[0]
    clock = [T0 + 5]
    house = daemon.Housekeeping(cfg, retention=False, clock=lambda: clock[0])
    try:
        assert house.tick() == []  # still counting down: nothing happens
        assert _vote_row(db, vid)[0] == "open"
        clock[0] = T0 + 12.5
        assert house.tick() == [vid]
        # Closed by the tick, without any read of the vote: the result is stored and pushed to everyone.
        assert _vote_row(db, vid) == ("closed", 2, 1, 0, 1, T0 + 12.5)
        pushed = [(e.topic, e.audience, json.loads(e.payload)) for e in since(db, before, s.id)]
        assert ("votes.changed", "all", {"what": "close", "vote_id": vid}) in pushed
        assert [a for a, d in votes.log(db, s.id)][-1] == "close"
        assert votes.log(db, s.id)[-1][1]["yes"] == 2
        # The open vote's member-vote link is gone with the close, as at the chair's close.
        assert db.execute("SELECT COUNT(*) FROM vote_ballots WHERE vote_id = ? AND member_id IS NOT NULL",
                          [vid]).fetchone() == (0,)
        assert house.tick() == []  # closed once
    finally:
        house.close()


def test_the_tick_survives_a_broken_database_and_recovers(cfg, db, monkeypatch):
    _s, vid = _countdown_running(db)
    house = daemon.Housekeeping(cfg, retention=False, clock=lambda: T0 + 20)
    calls = []

    def broken(db_, now):
        calls.append(now)
        raise RuntimeError("disk I/O error")

    try:
        monkeypatch.setattr(votes, "close_due", broken)
        assert house.tick() == [] and calls == [T0 + 20]  # logged, not raised
        monkeypatch.undo()
        assert house.tick() == [vid]
    finally:
        house.close()


def test_retention_runs_at_the_first_tick_and_then_hourly(cfg, db, monkeypatch):
    runs = []
    monkeypatch.setattr(retention, "purge", lambda db_, days: runs.append(days) or retention.Purge())
    clock = [T0]
    house = daemon.Housekeeping(cfg, clock=lambda: clock[0])
    try:
        house.tick()
        clock[0] = T0 + 1800
        house.tick()
        clock[0] = T0 + 3600
        house.tick()
    finally:
        house.close()
    assert runs == [cfg.retention_days, cfg.retention_days]  # retention's own tests cover what it deletes
