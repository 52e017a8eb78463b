"""Presence acts a clerk performs: wipe the attendance record of a session."""

from __future__ import annotations

from typing import Any

from appliance.presence import store as presence_store
from appliance.push import events as push_events
from appliance.store.db import audit
from appliance.store.transaction import transaction


def wipe_presence(cfg: Any, db: Any, session_id: int, actor: str) -> int:
    """Delete the session's presence devices, states, intervals and corrections, and its presence push events
    (they name members: who arrived, who left), with one audit entry, in one transaction. Returns how many
    attendance intervals were deleted. cfg: unused, kept so every act has the same shape."""
    with transaction(db):
        (intervals,) = db.execute("SELECT COUNT(*) FROM presence_intervals WHERE session_id = ?",
                                  [session_id]).fetchone()
        presence_store.wipe(db, session_id)
        events = push_events.delete_session(db, session_id, "presence.")
        audit(db, actor, "presence.wipe", f"session={session_id} intervals={intervals} events={events}")
    return int(intervals)
