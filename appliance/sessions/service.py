"""Sessions, members and their keys in the database: reads and the plain row writes.

The acts a person performs with these rows (activate a session, import members, rotate keys) are
appliance.usecases.sessions: they call the row writes below inside their one transaction, write the one
audit entry and then tell the radios and the firewall. Nothing else calls set_active, insert_members or
replace_keys outside tests and the virtual venue's setup: on their own they change the database only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

import sqlite_utils

from appliance.captive import codes, keys
from appliance.sessions.roster import MemberRow
from appliance.store.db import audit, now
from appliance.store.transaction import transaction


class SessionError(ValueError):
    pass


@dataclass(frozen=True)
class Session:
    id: int
    body: str
    title: str
    date: str
    venue: str
    ssid: str
    guest_key: str
    key_generation: int
    active: bool


@dataclass(frozen=True)
class Member:
    id: int
    session_id: int
    name: str
    faction: str
    role: str
    voting: bool
    body: str
    keyid: str
    passphrase: str
    code: str = ""  # personal code for the portal (captive.codes), stored without the dash


def _rows(db: sqlite_utils.Database, sql: str, params: list | tuple = ()) -> list[dict]:
    """Plain SQL for reads on hot paths: sqlite-utils' table objects introspect the schema on every use."""
    cur = db.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _session(row: dict) -> Session:
    return Session(
        row["id"], row["body"], row["title"], row["date"], row["venue"], row["ssid"],
        row["guest_key"], row["key_generation"], bool(row["active"]),
    )


def _member(row: dict) -> Member:
    return Member(
        row["id"], row["session_id"], row["name"], row["faction"], row["role"], bool(row["voting"]),
        row["body"], row["keyid"], row["passphrase"], row.get("code") or "",
    )


def create_session(db: sqlite_utils.Database, *, body: str, title: str, day: str, venue: str = "",
                   ssid: str = "Sitzung", actor: str = "clerk") -> Session:
    body, title, venue = body.strip(), title.strip(), venue.strip()
    problems = []
    if not body:
        problems.append("Gremium fehlt")
    if not title:
        problems.append("Titel fehlt")
    try:
        date.fromisoformat(day)
    except (TypeError, ValueError):
        problems.append(f"Datum „{day}“ ist kein Datum (JJJJ-MM-TT)")
    for label, value in (("Gremium", body), ("Titel", title), ("Ort", venue)):
        if len(value) > 200 or re.search(r"[\x00-\x1f\x7f]", value):
            problems.append(f"{label} ist zu lang oder enthält Steuerzeichen")
    if problems:
        raise SessionError("; ".join(problems))
    with transaction(db):
        sid = db["sessions"].insert({
            "body": body, "title": title, "date": day, "venue": venue, "ssid": ssid,
            "guest_key": keys.new_passphrase(), "key_generation": 1, "active": 0, "created_at": now(),
        }).last_pk
        audit(db, actor, "session.create", f"session={sid}")
    return get_session(db, sid)


def get_session(db: sqlite_utils.Database, session_id: int) -> Session:
    rows = _rows(db, "SELECT * FROM sessions WHERE id = ?", [session_id])
    if not rows:
        raise SessionError(f"Sitzung {session_id} gibt es nicht")
    return _session(rows[0])


def list_sessions(db: sqlite_utils.Database) -> list[Session]:
    return [_session(r) for r in _rows(db, "SELECT * FROM sessions ORDER BY date DESC, id DESC")]


def active_session(db: sqlite_utils.Database) -> Session | None:
    rows = _rows(db, "SELECT * FROM sessions WHERE active = 1 LIMIT 1")
    return _session(rows[0]) if rows else None


def set_active(db: sqlite_utils.Database, session_id: int) -> Session | None:
    """Make `session_id` the one active session (rows only, one transaction); returns the previously active one.

    The partial unique index sessions_one_active forbids two active rows; both updates commit together, so
    no reader ever sees none either."""
    with transaction(db):
        get_session(db, session_id)
        previous = active_session(db)
        db.execute("UPDATE sessions SET active = 0 WHERE active = 1 AND id != ?", [session_id])
        db.execute("UPDATE sessions SET active = 1 WHERE id = ?", [session_id])
    return previous


def insert_members(db: sqlite_utils.Database, session_id: int, rows: list[MemberRow]) -> int:
    """Adds all rows in one transaction (rows only); each member gets a fresh personal key and code.
    SessionError when a name is already in the session: then nothing is added."""
    with transaction(db):
        get_session(db, session_id)
        existing = {(m.name.casefold(), m.body.casefold()) for m in members(db, session_id)}
        clashes = [r.name for r in rows if (r.name.casefold(), r.body.casefold()) in existing]
        if clashes:
            raise SessionError("Schon in dieser Sitzung: " + ", ".join(clashes[:10]))
        stamp = now()
        fresh = codes.new_codes(len(rows), _taken_codes(db))
        db["members"].insert_all(
            {
                "session_id": session_id, "name": r.name, "faction": r.faction, "role": r.role,
                "voting": int(r.voting), "body": r.body, "keyid": keys.new_keyid(),
                "passphrase": keys.new_passphrase(), "code": code, "created_at": stamp,
            }
            for r, code in zip(rows, fresh, strict=True)
        )
    return len(rows)


def members(db: sqlite_utils.Database, session_id: int) -> list[Member]:
    return [_member(r) for r in _rows(db, "SELECT * FROM members WHERE session_id = ? ORDER BY faction, name",
                                       [session_id])]


def get_member(db: sqlite_utils.Database, member_id: int) -> Member:
    rows = _rows(db, "SELECT * FROM members WHERE id = ?", [member_id])
    if not rows:
        raise SessionError(f"Mitglied {member_id} gibt es nicht")
    return _member(rows[0])


def members_named(db: sqlite_utils.Database, session_id: int, keyid: str | None, ids: list[int]) -> list[Member]:
    """The members of `session_id` with this keyid or one of these ids (a device's candidates, one statement)."""
    marks = ",".join("?" for _ in ids) or "NULL"
    return [_member(r) for r in _rows(db, f"SELECT * FROM members WHERE session_id = ? AND "  # noqa: S608
                                          f"(keyid = ? OR id IN ({marks}))", [session_id, keyid, *ids])]


def _taken_codes(db: sqlite_utils.Database) -> set[str]:
    return {r[0] for r in db.execute("SELECT code FROM members WHERE code IS NOT NULL")}


def member_by_code(db: sqlite_utils.Database, session_id: int, typed: str) -> Member | None:
    """The member of `session_id` whose personal code this is (typed in any case, with or without the dash);
    None for a malformed code, a code of another session or an old code replaced by replace_keys."""
    code = codes.normalise(typed)
    if code is None:
        return None
    rows = _rows(db, "SELECT * FROM members WHERE code = ? AND session_id = ? LIMIT 1", [code, session_id])
    return _member(rows[0]) if rows else None


def member_by_keyid(db: sqlite_utils.Database, keyid: str) -> Member | None:
    rows = _rows(db, "SELECT * FROM members WHERE keyid = ? LIMIT 1", [keyid])
    return _member(rows[0]) if rows else None


def replace_keys(db: sqlite_utils.Database, session_id: int) -> list[str]:
    """New passphrases, keyids and personal codes for everyone and a new guest key; returns the revoked
    keyids.

    New keyids too: a station still associated under an old keyid can then never be mistaken for
    the member's new card. New codes: an old card's code stops working at once (the use case
    usecases.sessions.rotate_keys also revokes the admissions made with them). Rows only.
    """
    with transaction(db):
        session = get_session(db, session_id)
        people = members(db, session_id)
        old = [m.keyid for m in people]
        fresh = codes.new_codes(len(people), _taken_codes(db))
        for member, code in zip(people, fresh, strict=True):
            db["members"].update(member.id, {"keyid": keys.new_keyid(), "passphrase": keys.new_passphrase(),
                                             "code": code})
        db["sessions"].update(session_id, {
            "guest_key": keys.new_passphrase(), "key_generation": session.key_generation + 1})
    return [*old, keys.GUEST_KEYID]
