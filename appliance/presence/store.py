"""Presence state and intervals in SQLite: load a member's state, run the engine, write the result.

Any process may record an observation (the daemon for radio/DHCP/ARP, the web app for admissions and
clerk corrections): each is one short BEGIN IMMEDIATE transaction, so writers never interleave.
"""

from __future__ import annotations

import time
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from appliance.config import Config
from appliance.presence.engine import Change, Device, MemberState, Obs, held_since, next_change, step, tick
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


def states(db: Any, session_id: int) -> dict[int, MemberState]:
    """Every member with presence state (a remembered device or an open interval), three queries in all."""
    args = [session_id]
    devices: dict[int, dict[str, Device]] = {}
    for mid, key, linked, seen, hold, source in db.execute(
            "SELECT member_id, device, linked, last_seen, hold_until, source FROM presence_devices "
            "WHERE session_id = ?", args):
        devices.setdefault(mid, {})[key] = Device(bool(linked), float(seen), float(hold), source)
    opened = dict(db.execute("SELECT member_id, start FROM presence_intervals WHERE session_id = ? AND end IS NULL",
                             args))
    overrides = dict(db.execute("SELECT member_id, override FROM presence_state WHERE session_id = ?", args))
    return {mid: MemberState(devices.get(mid, {}), overrides.get(mid), mid in opened,
                             float(opened[mid]) if mid in opened else None)
            for mid in sorted(set(devices) | set(opened))}


@dataclass
class TickMemo:
    """What the last tick learnt, kept by the caller (the daemon) between ticks: while the database is as it
    was then (`PRAGMA data_version` for other connections' commits, `total_changes` for this one's), the
    earliest moment any member's state can change by time alone still holds, and ticks before it read nothing."""
    mark: tuple | None = None
    due_at: float | None = None  # None: only an observation can change anyone


def tick_session(db: Any, session_id: int, grace: float, now: float | None = None,
                 memo: TickMemo | None = None) -> list[tuple[int, Change]]:
    """Let time pass for every member with state (the daemon calls this every presence_interval).

    One read of all states; a transaction only for the members whose moment has come (engine.next_change:
    a grace period or a restart's hold ran out, a device long gone to forget). With nobody due, nothing is
    written. Inside the transaction the member's state is loaded again: another process may have recorded an
    observation since the read, and the engine decides on what is stored then. With a `memo`, a tick while
    nothing was written since the last one and before its earliest moment costs one PRAGMA and no read."""
    now = time.time() if now is None else now
    mark = (session_id, grace, db.execute("PRAGMA data_version").fetchone()[0], db.conn.total_changes)
    if memo is not None and memo.mark == mark and (memo.due_at is None or now < memo.due_at):
        return []
    due, later = [], []
    for mid, st in states(db, session_id).items():
        at = next_change(st, now, grace)
        if at is not None:
            (due if at <= now else later).append((mid, at))
    if memo is not None:  # after our own writes the states are new: the next tick reads them again
        memo.mark, memo.due_at = (None if due else mark), min((at for _m, at in later), default=None)
    out: list[tuple[int, Change]] = []
    for member_id, _at in due:
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
        changes = record(db, session_id, member_id, Obs(at, "correct", source="clerk", status=status), grace)
        if not changes:  # the status stands, but the correction itself is news to the member and the clerks
            present = load(db, session_id, member_id).present
            publish(db, session_id, "presence.changed", {"member_id": member_id, "change": "corrected", "at": at,
                                                         "count": present_count(db, session_id)}, audience="clerks")
            publish(db, session_id, "presence.mine", {"present": present}, audience=f"member:{member_id}")
        return changes


def present_count(db: Any, session_id: int, voting_only: bool = False) -> int:
    """People present now in a role that counts for quorum (rules.roles.QUORUM); voting_only: with Stimmrecht."""
    marks, values = roles.sql_in(roles.QUORUM)
    sql = ("SELECT COUNT(*) FROM presence_intervals i JOIN members m ON m.id = i.member_id "  # noqa: S608
           f"WHERE i.session_id = ? AND i.end IS NULL AND m.role IN ({marks})")
    if voting_only:
        sql += " AND m.voting = 1"
    return int(db.execute(sql, [session_id, *values]).fetchone()[0])


@dataclass(frozen=True)
class Correction:
    at: float
    status: str  # present | absent | auto
    reason: str
    actor: str


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
    corrections: tuple[Correction, ...]
    # The rules still count the member only by the grace period: the last evidence ("zuletzt gesehen vor N min").
    held_since: float | None = None


STATUSES = ("present", "left", "absent")


def attendance(db: Any, session_id: int, now: float | None = None,
               grace: float = Config.presence_grace) -> list[Row]:
    """The attendance list: one row per member of the session, in roster order (see `arrange` for the page's
    order). Five queries for the whole list, whatever its length: the clerk's page reloads it on every change.
    grace: the daemon's (Config.presence_grace), to tell "still held by the grace period" from "left"."""
    now = time.time() if now is None else now
    args = [session_id]
    members = db.execute("SELECT id, name, faction, role, voting FROM members WHERE session_id = ? ORDER BY id",
                         args).fetchall()
    intervals: dict[int, list[tuple]] = {}
    for mid, start, end, corrected in db.execute("SELECT member_id, start, end, corrected FROM presence_intervals "
                                                 "WHERE session_id = ? ORDER BY start", args):
        intervals.setdefault(mid, []).append((start, end, corrected))
    devices: dict[int, dict[str, Device]] = {}
    for mid, key, linked, seen, hold, source in db.execute(
            "SELECT member_id, device, linked, last_seen, hold_until, source FROM presence_devices "
            "WHERE session_id = ?", args):
        devices.setdefault(mid, {})[key] = Device(bool(linked), float(seen), float(hold), source)
    overrides = dict(db.execute("SELECT member_id, override FROM presence_state WHERE session_id = ?", args))
    corrections: dict[int, list[Correction]] = {}
    for mid, at, status, reason, actor in db.execute("SELECT member_id, at, status, reason, actor FROM "
                                                     "presence_corrections WHERE session_id = ? ORDER BY id", args):
        corrections.setdefault(mid, []).append(Correction(float(at), status, reason, actor))
    out = []
    for mid, name, faction, role, voting in members:
        iv = intervals.get(mid, [])
        open_ = next((s for s, e, _c in iv if e is None), None)
        is_open = any(e is None for _s, e, _c in iv)
        status = "present" if is_open else ("left" if iv else "absent")
        total = sum(((e if e is not None else now) - s) for s, e, _c in iv)
        ends = [e for _s, e, _c in iv if e is not None]
        devs = devices.get(mid, {})
        state = MemberState(devs, overrides.get(mid), is_open, float(open_) if open_ is not None else None)
        corr = tuple(corrections.get(mid, ()))
        out.append(Row(mid, name, faction, role, bool(voting), status, iv[0][0] if iv else None,
                       None if is_open or not ends else max(ends), max(total, 0.0), len(devs),
                       any(c for _s, _e, c in iv) or bool(corr), corr, held_since(state, now, grace)))
    return out


class Quorum(NamedTuple):
    present: int  # voting members present
    voting: int  # voting members
    needed: int  # present members needed for quorum

    @property
    def reached(self) -> bool:
        return self.present >= self.needed


def quorum(rows: list[Row]) -> Quorum:
    """(voting members present, voting members, needed): more than half of the voting members (Stimmrecht
    and a role of rules.roles.QUORUM: a listed guest or staff entry marked as voting by mistake never counts).
    `.reached` is the status the chair sees."""
    voting = [r for r in rows if r.voting and r.role in roles.QUORUM]
    present = sum(1 for r in voting if r.status == "present")
    return Quorum(present, len(voting), len(voting) // 2 + 1)


# --- order and filters of the list (pure) ----------------------------------------------------------------

_FOLD = str.maketrans({"ä": "a", "ö": "o", "ü": "u", "ß": "ss", "ẞ": "ss"})


def german_key(text: str) -> tuple[str, str]:
    """Sort key for names as a German list orders them (DIN 5007-1, as in a dictionary): case ignored, ä as a,
    ö as o, ü as u, ß as ss, other accents dropped (é as e); ties broken by the exact text, so "Muller" and
    "Müller" always come out in the same order. No locale and no ICU: the same on every box."""
    folded = unicodedata.normalize("NFKD", text.casefold().translate(_FOLD))
    base = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return " ".join(base.split()), text


SORTS = ("name", "faction", "status", "arrival")


def arrange(rows: list[Row], sort: str = "name", descending: bool = False, faction: str | None = None,
            status: str | None = None) -> list[Row]:
    """The rows the clerk asked for: filtered by faction ("" = without a faction) and status, sorted by one
    of SORTS (then by name). Unknown values fall back to all rows, by name."""
    shown = [r for r in rows if (faction is None or r.faction == faction) and (status is None or r.status == status)]
    by_name = sorted(shown, key=lambda r: (german_key(r.name), r.member_id))
    if sort == "faction":
        key = lambda r: german_key(r.faction) if r.faction else ("\uffff", "")  # noqa: E731 - without last
    elif sort == "status":
        key = lambda r: STATUSES.index(r.status)  # noqa: E731
    elif sort == "arrival":
        key = lambda r: (r.first_arrival is None, r.first_arrival or 0.0)  # noqa: E731 - not come: last
    else:
        return by_name[::-1] if descending else by_name
    return sorted(by_name, key=key, reverse=descending)  # stable: by name within equal keys


def factions(rows: list[Row]) -> list[str]:
    """The factions on the list, in German order ("" for members without one, last)."""
    names = {r.faction for r in rows}
    return sorted(names - {""}, key=german_key) + ([""] if "" in names else [])


# --- the member's own line --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Mine:
    present: bool
    correction: Correction | None  # the clerk's latest correction of this member, if any


def member_status(db: Any, session_id: int, member_id: int) -> Mine:
    """What the member's start page shows: present or not, and whether the clerk set it (three small queries,
    not the whole list: every member page asks)."""
    open_ = db.execute("SELECT 1 FROM presence_intervals WHERE session_id = ? AND member_id = ? AND end IS NULL",
                       [session_id, member_id]).fetchone()
    row = db.execute("SELECT at, status, reason, actor FROM presence_corrections WHERE session_id = ? AND "
                     "member_id = ? ORDER BY id DESC LIMIT 1", [session_id, member_id]).fetchone()
    return Mine(open_ is not None, Correction(float(row[0]), row[1], row[2], row[3]) if row else None)


# --- times as people read them -------------------------------------------------------------------------

def local(ts: float, tz: str) -> datetime:
    """A unix time in the box's configured zone (Config.timezone), never the system's."""
    return datetime.fromtimestamp(ts, ZoneInfo(tz))


def fmt_time(ts: float | None, tz: str) -> str:
    return local(ts, tz).strftime("%H:%M") if ts else ""


def fmt_datetime(ts: float, tz: str) -> str:
    """German date and time for the minutes: 24.11.2026, 19:42."""
    return local(ts, tz).strftime("%d.%m.%Y, %H:%M")


def fmt_duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes // 60}:{minutes % 60:02d}"


def wipe(db: Any, session_id: int) -> None:
    with transaction(db):  # all four tables or none: never intervals left without their corrections
        for table in ("presence_devices", "presence_state", "presence_intervals", "presence_corrections"):
            db.execute(f"DELETE FROM {table} WHERE session_id = ?", [session_id])  # noqa: S608 - fixed names
