"""Presence state and intervals in SQLite: load a member's state, run the engine, write the result.

Any process may record an observation (the daemon for radio/DHCP/ARP, the web app for admissions and
clerk corrections): each is one short BEGIN IMMEDIATE transaction, so writers never interleave.
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass
from typing import Any

from appliance.presence.engine import Change, Device, MemberState, Obs, step, tick
from appliance.push import publish
from appliance.rules import roles
from appliance.store.transaction import transaction


def load(db: Any, session_id: int, member_id: int) -> MemberState:
    rows = db.execute("SELECT device, linked, last_seen, hold_until, source FROM presence_devices "
                      "WHERE session_id = ? AND member_id = ?", [session_id, member_id]).fetchall()
    devices = {r[0]: Device(bool(r[1]), float(r[2]), float(r[3]), r[4]) for r in rows}
    ov = db.execute("SELECT override FROM presence_state WHERE session_id = ? AND member_id = ?",
                    [session_id, member_id]).fetchone()
    open_ = db.execute("SELECT start FROM presence_intervals WHERE session_id = ? AND member_id = ? AND end IS NULL",
                       [session_id, member_id]).fetchone()
    return MemberState(devices, ov[0] if ov else None, open_ is not None, float(open_[0]) if open_ else None)


def _save(db: Any, session_id: int, member_id: int, old: MemberState, new: MemberState,
          changes: list[Change]) -> None:
    for key in set(old.devices) - set(new.devices):
        db.execute("DELETE FROM presence_devices WHERE session_id = ? AND member_id = ? AND device = ?",
                   [session_id, member_id, key])
    for key, d in new.devices.items():
        if old.devices.get(key) != d:
            db.execute("INSERT OR REPLACE INTO presence_devices(session_id, member_id, device, linked, last_seen, "
                       "hold_until, source) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       [session_id, member_id, key, int(d.linked), d.last_seen, d.hold_until, d.source])
    if new.override != old.override:
        db.execute("INSERT OR REPLACE INTO presence_state(session_id, member_id, override) VALUES (?, ?, ?)",
                   [session_id, member_id, new.override])
    for ch in changes:
        if ch.kind == "arrive":
            db.execute("INSERT INTO presence_intervals(session_id, member_id, start, start_source, corrected) "
                       "VALUES (?, ?, ?, ?, ?)", [session_id, member_id, ch.at, ch.source, int(ch.corrected)])
        else:
            db.execute("UPDATE presence_intervals SET end = ?, end_source = ?, corrected = corrected + ? "
                       "WHERE session_id = ? AND member_id = ? AND end IS NULL",
                       [ch.at, ch.source, int(ch.corrected), session_id, member_id])


def _announce(db: Any, session_id: int, member_id: int, changes: list[Change]) -> None:
    for ch in changes:
        payload = {"member_id": member_id, "change": ch.kind, "at": ch.at, "count": present_count(db, session_id)}
        publish(db, session_id, "presence.changed", payload, audience="clerks")
        publish(db, session_id, "presence.mine", {"present": ch.kind == "arrive"}, audience=f"member:{member_id}")
        publish(db, session_id, "presence.count", {"count": payload["count"]}, audience="all")


def record(db: Any, session_id: int, member_id: int, obs: Obs, grace: float) -> list[Change]:
    """Apply one observation for one member; returns the interval changes (already stored and pushed)."""
    def run() -> list[Change]:
        old = load(db, session_id, member_id)
        new, changes = step(old, obs, grace)
        _save(db, session_id, member_id, old, new, changes)
        return changes
    with transaction(db):
        changes = run()
    _announce(db, session_id, member_id, changes)
    return changes


def tick_session(db: Any, session_id: int, grace: float, now: float | None = None) -> list[tuple[int, Change]]:
    """Let time pass for every member with state (the daemon calls this every presence_interval)."""
    now = time.time() if now is None else now
    ids = [r[0] for r in db.execute("SELECT DISTINCT member_id FROM presence_devices WHERE session_id = ? "
                                    "UNION SELECT member_id FROM presence_intervals WHERE session_id = ? "
                                    "AND end IS NULL", [session_id, session_id]).fetchall()]
    out: list[tuple[int, Change]] = []
    for member_id in ids:
        def run(member_id: int = member_id) -> list[Change]:
            old = load(db, session_id, member_id)
            new, changes = tick(old, now, grace)
            if new != old:
                _save(db, session_id, member_id, old, new, changes)
            return changes
        with transaction(db):
            changes = run()
        _announce(db, session_id, member_id, changes)
        out += [(member_id, c) for c in changes]
    return out


def boot(db: Any, session_id: int, grace: float, now: float | None = None) -> None:
    """The daemon (re)started: every known device gets one more grace period to show up again."""
    now = time.time() if now is None else now
    ids = [r[0] for r in db.execute("SELECT DISTINCT member_id FROM presence_devices WHERE session_id = ?",
                                    [session_id]).fetchall()]
    for member_id in ids:
        record(db, session_id, member_id, Obs(now, "boot", source="boot"), grace)


def correct(db: Any, session_id: int, member_id: int, status: str, reason: str, actor: str, grace: float,
            at: float | None = None) -> list[Change]:
    reason = reason.strip()
    if not reason:
        raise ValueError("Bitte einen Grund für die Korrektur angeben.")
    if len(reason) > 500:
        raise ValueError("Der Grund ist zu lang (höchstens 500 Zeichen).")
    at = time.time() if at is None else at
    with transaction(db):  # the reason and the change it explains, together
        db.execute("INSERT INTO presence_corrections(session_id, member_id, at, status, reason, actor) "
                   "VALUES (?, ?, ?, ?, ?, ?)", [session_id, member_id, at, status, reason, actor])
        return record(db, session_id, member_id, Obs(at, "correct", source="clerk", status=status), grace)


def present_count(db: Any, session_id: int, voting_only: bool = False) -> int:
    """People present now in a role that counts for quorum (rules.roles.QUORUM); voting_only: with Stimmrecht."""
    marks, values = roles.sql_in(roles.QUORUM)
    sql = ("SELECT COUNT(*) FROM presence_intervals i JOIN members m ON m.id = i.member_id "  # noqa: S608
           f"WHERE i.session_id = ? AND i.end IS NULL AND m.role IN ({marks})")
    if voting_only:
        sql += " AND m.voting = 1"
    return int(db.execute(sql, [session_id, *values]).fetchone()[0])


@dataclass(frozen=True)
class Row:
    member_id: int
    name: str
    faction: str
    role: str
    voting: bool
    status: str  # present | left | absent (not come)
    first_arrival: float | None
    last_leaving: float | None
    seconds_present: float
    devices: int
    corrected: bool
    corrections: tuple[str, ...]


def attendance(db: Any, session_id: int, now: float | None = None) -> list[Row]:
    """The attendance list: one row per member of the session, in roster order."""
    now = time.time() if now is None else now
    members = db.execute("SELECT id, name, faction, role, voting FROM members WHERE session_id = ? ORDER BY id",
                         [session_id]).fetchall()
    out = []
    for mid, name, faction, role, voting in members:
        iv = db.execute("SELECT start, end, corrected FROM presence_intervals WHERE session_id = ? AND member_id = ? "
                        "ORDER BY start", [session_id, mid]).fetchall()
        devs = db.execute("SELECT linked, last_seen, hold_until FROM presence_devices WHERE session_id = ? "
                          "AND member_id = ?", [session_id, mid]).fetchall()
        corr = db.execute("SELECT status, reason FROM presence_corrections WHERE session_id = ? AND member_id = ? "
                          "ORDER BY id", [session_id, mid]).fetchall()
        is_open = any(e is None for _s, e, _c in iv)
        status = "present" if is_open else ("left" if iv else "absent")
        total = sum(((e if e is not None else now) - s) for s, e, _c in iv)
        ends = [e for _s, e, _c in iv if e is not None]
        out.append(Row(mid, name, faction, role, bool(voting), status, iv[0][0] if iv else None,
                       None if is_open or not ends else max(ends), max(total, 0.0), len(devs),
                       any(c for _s, _e, c in iv) or bool(corr), tuple(f"{s}: {r}" for s, r in corr)))
    return out


def quorum(rows: list[Row]) -> tuple[int, int, int]:
    """(voting members present, voting members, needed): more than half of the voting members (Stimmrecht
    and a role of rules.roles.QUORUM: a listed guest or staff entry marked as voting by mistake never counts)."""
    voting = [r for r in rows if r.voting and r.role in roles.QUORUM]
    present = sum(1 for r in voting if r.status == "present")
    return present, len(voting), len(voting) // 2 + 1


def fmt_time(ts: float | None) -> str:
    return time.strftime("%H:%M", time.localtime(ts)) if ts else ""


def fmt_duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes // 60}:{minutes % 60:02d}"


def to_csv(rows: list[Row]) -> str:
    """CSV for the minutes and the attendance allowance (German Excel reads ';')."""
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=";")
    w.writerow(["Name", "Fraktion", "Rolle", "Stimmrecht", "Status", "Erste Ankunft", "Letztes Gehen",
                "Anwesenheit (h:mm)", "Korrigiert", "Korrekturen"])
    labels = {"present": "anwesend", "left": "gegangen", "absent": "nicht erschienen"}
    for r in rows:
        w.writerow([_cell(r.name), _cell(r.faction), r.role, "ja" if r.voting else "nein", labels[r.status],
                    fmt_time(r.first_arrival), fmt_time(r.last_leaving), fmt_duration(r.seconds_present),
                    "ja" if r.corrected else "nein", _cell(" | ".join(r.corrections))])
    return buf.getvalue()


def _cell(text: str) -> str:
    # No formula injection when the clerk opens the file in a spreadsheet.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def wipe(db: Any, session_id: int) -> None:
    with transaction(db):  # all four tables or none: never intervals left without their corrections
        for table in ("presence_devices", "presence_state", "presence_intervals", "presence_corrections"):
            db.execute(f"DELETE FROM {table} WHERE session_id = ?", [session_id])  # noqa: S608 - fixed names
