"""What a guarded act would do now, counted from the database (read only): the numbers of the clerk's
confirmation page and of the command line's question. The words and the token are rules.guard's.

activate        the live session that ends: its connected devices (its members' keyids and the guest keyid)
                and its live admissions (usecases.sessions.activate_session revokes exactly these)
rotate          the session's keys; its connected devices if it is live; its live admissions
wipe_documents  the files documents.service.delete_rows would remove (non-public, or all)
wipe_chat       the session's chat messages
wipe_presence   its attendance intervals (and whose), and the corrections made by hand
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlite_utils

from appliance.captive.keys import GUEST_KEYID
from appliance.documents import service as documents
from appliance.rules import guard
from appliance.sessions import service


def _one(db: sqlite_utils.Database, sql: str, params: Sequence) -> int:
    return int(db.execute(sql, list(params)).fetchone()[0])


def connected(db: sqlite_utils.Database, keyids: Sequence[str]) -> int:
    """Stations associated now with one of these keyids."""
    if not keyids:
        return 0
    marks = ",".join("?" for _ in keyids)
    return _one(db, f"SELECT COUNT(*) FROM stations WHERE connected = 1 AND keyid IN ({marks})",  # noqa: S608
                keyids)


def live_admissions(db: sqlite_utils.Database, session_id: int) -> int:
    return _one(db, "SELECT COUNT(*) FROM admissions WHERE session_id = ? AND revoked_at IS NULL", [session_id])


def _on_air(db: sqlite_utils.Database, session_id: int) -> list[str]:
    return [*(m.keyid for m in service.members(db, session_id)), GUEST_KEYID]


def of(db: sqlite_utils.Database, act: str, session_id: int) -> guard.Impact:
    """The impact of `act` on session `session_id`. SessionError if there is no such session."""
    s = service.get_session(db, session_id)
    live = service.active_session(db)
    base = {"act": act, "session_id": s.id, "title": s.title, "generation": s.key_generation,
            "active_id": live.id if live else None, "active_title": live.title if live else ""}
    if act == guard.ACTIVATE:
        if live is None or live.id == s.id:
            return guard.Impact(**base)
        return guard.Impact(**base, devices=connected(db, _on_air(db, live.id)),
                            admissions=live_admissions(db, live.id))
    if act == guard.ROTATE:
        return guard.Impact(**base, keys=len(service.members(db, s.id)),
                            devices=connected(db, _on_air(db, s.id)) if s.active else 0,
                            admissions=live_admissions(db, s.id))
    if act in (guard.WIPE_DOCUMENTS, guard.WIPE_ALL_DOCUMENTS):
        return guard.Impact(**base, files=documents.wipe_count(db, s.id,
                                                               nonpublic_only=act == guard.WIPE_DOCUMENTS))
    if act == guard.WIPE_CHAT:
        return guard.Impact(**base, messages=_one(db, "SELECT COUNT(*) FROM chat_messages WHERE session_id = ?",
                                                  [s.id]))
    if act == guard.WIPE_PRESENCE:
        intervals, people = db.execute(
            "SELECT COUNT(*), COUNT(DISTINCT member_id) FROM presence_intervals WHERE session_id = ?",
            [s.id]).fetchone()
        corrections = _one(db, "SELECT COUNT(*) FROM presence_corrections WHERE session_id = ?", [s.id])
        return guard.Impact(**base, intervals=int(intervals), people=int(people), corrections=corrections)
    raise ValueError(f"not a guarded act: {act}")
