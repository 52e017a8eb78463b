"""Retention of personal data: every row that names a member or a device goes a fixed number of days after it
was made (`retention_days`, run hourly by the daemon). Clerks can wipe earlier (per session, on the attendance
and chat pages); this is the floor that needs nobody to remember.

What names a person or a device, and what retention does with it (tests/test_retention.py lists every table
and column of the schema and fails on any it does not know):

Per session — everything of a session held before `today - retention_days` (never the active one) goes:
- presence_devices, presence_state, presence_intervals, presence_corrections (member ids, device MACs, the
  clerk's IP in `actor`, free-text reasons);
- chat_messages, chat_mutes, chat_settings, chat_reads (member ids, names, `device:<mac>` keys, `dm:<a>:<b>` rooms);
- push_events of the session (payloads with member ids, arrival and leave times, names; `member:<id>` audiences);
- admissions (MAC, IP, member id), doc_downloads (member id, name or `guest <ip>`) and doc_reads (which member
  opened which file: the „neue Fassung“ badge).
- speakers_requests (who asked to speak, when, for how long), speakers_lists and speakers_session (the chair's
  member id, the room screen's announcement text); the session's rules of procedure (speakers_procedure) name
  nobody and stay.
- the votes (issue 14), all of them, through the votes' own purge (usecases.votes.wipe, inside this run's one
  transaction; the append-only vote_log lets its rows go only while a vote_log_purge row names the purge, which
  goes again with them): votes (question, item title, result, cancel reason — free text that may name someone),
  vote_ballots (named votes: member id and name; every ballot: faction, choice, deputy's seat), vote_cast_keys,
  vote_faction_counts, vote_deputies (who stood in for whom), vote_conflicts (who was befangen on which item),
  vote_paper (election candidates' names, counts, steps) and vote_log (the whole history: named casts name the
  member, the opening lists the eligible of a named vote, conflicts and deputies name members, actors may hold
  a clerk's address). Nothing vote-related of an expired session stays: the minutes were exported from the box
  (print, CSV, JSON) long before the limit, and what the law keeps is kept in the minutes, not on the box. Only
  vote_settings stays: per body, "may a cast vote be changed" names nobody.
- members: name, faction, role, voting and body stay (the minutes and the attendance list refer to them);
  their key material goes: keyid and passphrase are replaced by fresh random values nobody ever received,
  the personal code is removed (NULL marks a member whose key material is gone). Such a session can only
  be activated again after its keys are rotated (new cards).
- the session row itself stays (title, date, venue, body; its shared guest key names nobody).

By age — rows not bound to a session, older than the same limit (midnight UTC of `today - retention_days`):
- stations that disconnected before the limit (MAC, keyid); connected ones are live and stay;
- monitor_points (per-device series are named `signal:<mac>`), monitor_state (the snapshot lists clients'
  MACs, IPs and keyids), monitor_alerts (a device's MAC as subject and in the message);
- login_throttle (failed staff logins by client address), by their last failure;
- push_events whose session no longer exists or is not active, by their time;
- audit rows stay (what was done, when, by which role), but MACs, IPv4 addresses and member ids
  (`member=<id>`, `member:<id>`, `device:<mac>`) in their actor and detail are blanked.

All deletes of one run commit together in one transaction, with one audit entry naming what went.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from appliance.captive import keys
from appliance.store.db import audit
from appliance.store.transaction import transaction
from appliance.usecases import votes

# Session-bound tables whose rows of an expired session are deleted outright.
SESSION_TABLES = ("presence_devices", "presence_state", "presence_intervals", "presence_corrections",
                  "chat_messages", "chat_mutes", "chat_settings", "chat_reads", "push_events", "admissions",
                  "doc_downloads", "doc_reads", "speakers_requests", "speakers_lists", "speakers_session")
# The votes' session-bound tables (ballots, cast keys and faction counts hang on `votes`): usecases.votes.wipe
# deletes them, the append-only vote_log included.
VOTE_TABLES = ("votes", "vote_deputies", "vote_conflicts", "vote_paper", "vote_log")

MAC_RE = re.compile(r"\b[0-9A-Fa-f]{2}(?:[:-][0-9A-Fa-f]{2}){5}\b")
IPV4_RE = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
MEMBER_RE = re.compile(r"\bmember([=:])\d+")
# Cheap pre-filter in SQL for audit rows that may hold one of the above (GLOB is case-sensitive).
_AUDIT_SUSPECT = ("actor GLOB '*[0-9].[0-9]*.[0-9]*.[0-9]*' OR detail GLOB '*[0-9].[0-9]*.[0-9]*.[0-9]*' "
                  "OR detail GLOB '*[0-9A-Fa-f][0-9A-Fa-f][:-][0-9A-Fa-f][0-9A-Fa-f][:-]*' "
                  "OR actor GLOB '*[0-9A-Fa-f][0-9A-Fa-f][:-][0-9A-Fa-f][0-9A-Fa-f][:-]*' "
                  "OR detail GLOB '*member[=:][0-9]*'")


@dataclass
class Purge:
    """What one run removed: the sessions whose personal data went, and rows per table."""

    sessions: list[int] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.sessions) or any(self.rows.values())

    def add(self, table: str, n: int) -> None:
        if n:
            self.rows[table] = self.rows.get(table, 0) + n


def scrub(text: str) -> str:
    """Text without MACs, IPv4 addresses and member ids (for audit rows past the limit)."""
    text = MAC_RE.sub("[MAC]", text)
    text = IPV4_RE.sub("[IP]", text)
    return MEMBER_RE.sub(r"member\1–", text)


def cutoff(days: int, today: date) -> tuple[str, float, str]:
    """(the day before which sessions expire, its midnight UTC as unix time and as the store's ISO text)."""
    day = today - timedelta(days=days)
    moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return day.isoformat(), moment.timestamp(), moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def expired_sessions(db: Any, days: int, today: date) -> list[int]:
    """Sessions held before the limit that still hold personal data; never the active one."""
    day, _ts, _iso = cutoff(days, today)
    held = " OR ".join(f"EXISTS (SELECT 1 FROM {t} x WHERE x.session_id = sessions.id)"  # noqa: S608
                       for t in SESSION_TABLES + VOTE_TABLES)
    rows = db.execute(
        f"SELECT id FROM sessions WHERE active = 0 AND date < ? AND ({held}"  # noqa: S608 - fixed names
        " OR EXISTS (SELECT 1 FROM members m WHERE m.session_id = sessions.id AND m.code IS NOT NULL)) ORDER BY id",
        [day]).fetchall()
    return [r[0] for r in rows]


def _delete(db: Any, report: Purge, table: str, where: str, params: list) -> None:
    report.add(table, db.execute(f"DELETE FROM {table} WHERE {where}", params).rowcount)  # noqa: S608


def purge(db: Any, days: int, today: date | None = None) -> Purge:
    """Delete (or blank) every row past the limit that names a member or a device; see the module docstring."""
    today = today or datetime.now(UTC).date()
    _day, ts, iso = cutoff(days, today)
    report = Purge()
    with transaction(db):
        for sid in expired_sessions(db, days, today):
            for table in SESSION_TABLES:
                _delete(db, report, table, "session_id = ?", [sid])
            report.add("votes (all tables)", votes.wipe(db, sid, "retention"))
            retired = 0
            for (member_id,) in db.execute("SELECT id FROM members WHERE session_id = ? AND code IS NOT NULL",
                                           [sid]).fetchall():
                db.execute("UPDATE members SET keyid = ?, passphrase = ?, code = NULL WHERE id = ?",
                           [keys.new_keyid(), keys.new_passphrase(), member_id])
                retired += 1
            report.add("members (key material)", retired)
            report.sessions.append(sid)
        _delete(db, report, "push_events", "at < ? AND session_id NOT IN (SELECT id FROM sessions WHERE active = 1)",
                [iso])
        _delete(db, report, "stations", "connected = 0 AND COALESCE(disconnected_at, connected_at, '') < ?", [iso])
        _delete(db, report, "monitor_points", "ts < ?", [int(ts)])
        _delete(db, report, "monitor_state", "at < ?", [ts])
        _delete(db, report, "monitor_alerts", "COALESCE(ended_at, started_at) < ?", [ts])
        _delete(db, report, "login_throttle", "last_at < ?", [ts])
        blanked = 0
        for row_id, actor, detail in db.execute(
                f"SELECT id, actor, detail FROM audit WHERE at < ? AND ({_AUDIT_SUSPECT})", [iso]).fetchall():  # noqa: S608
            clean = (scrub(actor), scrub(detail))
            if clean != (actor, detail):
                db.execute("UPDATE audit SET actor = ?, detail = ? WHERE id = ?", [*clean, row_id])
                blanked += 1
        report.add("audit (blanked)", blanked)
        if report:
            counts = " ".join(f"{t.split()[0]}={n}" for t, n in sorted(report.rows.items()))
            audit(db, "retention", "personal-data.purge",
                  f"days={days} sessions={','.join(map(str, report.sessions)) or '-'} {counts}")
    return report
