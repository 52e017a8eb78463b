"""Retention of personal data: presence and chat are deleted a fixed number of days after their session.

Clerks can wipe earlier (per session, on the attendance and chat pages); this is the floor that needs nobody
to remember. The session itself, its members and the audit log stay: the minutes refer to them.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from appliance.store.transaction import transaction


def expired_sessions(db: Any, days: int, today: date) -> list[int]:
    """Sessions held more than `days` days ago that still hold presence or chat data; never the active one."""
    cutoff = (today - timedelta(days=days)).isoformat()
    rows = db.execute(
        "SELECT id FROM sessions WHERE active = 0 AND date < ? AND ("
        " EXISTS (SELECT 1 FROM presence_intervals p WHERE p.session_id = sessions.id)"
        " OR EXISTS (SELECT 1 FROM presence_devices d WHERE d.session_id = sessions.id)"
        " OR EXISTS (SELECT 1 FROM chat_messages c WHERE c.session_id = sessions.id)) ORDER BY id",
        [cutoff],
    ).fetchall()
    return [r[0] for r in rows]


def purge(db: Any, days: int, today: date | None = None) -> list[int]:
    """Delete presence and chat of every expired session; returns their ids."""
    from appliance.chat import store as chat_store
    from appliance.presence import store as presence_store
    from appliance.store.db import audit

    done = []
    for session_id in expired_sessions(db, days, today or date.today()):
        with transaction(db):
            presence_store.wipe(db, session_id)
            chat_store.wipe(db, session_id, actor="retention")
            audit(db, "retention", "personal-data.purge", f"session={session_id} days={days}")
        done.append(session_id)
    return done
