"""Storing and reading push events. SQLite is the hub's source of truth: every process (web workers, the
daemon, the CLI) publishes by inserting a row and, once it is committed, waking every web worker's hub
(appliance.push.wake), which streams the new rows out."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from appliance.push import audience as audience_mod
from appliance.push import wake
from appliance.store.db import now
from appliance.store.transaction import after_commit

TOPIC_MAX = 64
PAYLOAD_MAX = 64 * 1024


@dataclass(frozen=True)
class Event:
    id: int
    session_id: int
    topic: str
    audience: str
    payload: str  # JSON text, sent as is

    def data(self) -> str:
        """The SSE data line: topic and payload in one JSON object (one `message` handler in the browser)."""
        return f'{{"topic":{json.dumps(self.topic)},"payload":{self.payload}}}'


def publish(db: Any, session_id: int, topic: str, payload: dict, audience: str = "all") -> int:
    """Store an event for a session's browsers; returns its id (the SSE id). Never blocks on browsers."""
    if not isinstance(session_id, int) or isinstance(session_id, bool):
        raise ValueError("session_id muss eine Zahl sein")
    if not topic or len(topic) > TOPIC_MAX or not all(c.isalnum() or c in "._-" for c in topic):
        raise ValueError(f"ungültiges Thema {topic!r}")
    audience_mod.check(audience)
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    if not text.startswith("{"):
        raise ValueError("payload muss ein dict sein")
    if len(text) > PAYLOAD_MAX:
        raise ValueError("payload zu groß")
    cur = db.execute(
        "INSERT INTO push_events(session_id, topic, audience, payload, at) VALUES (?, ?, ?, ?, ?)",
        [session_id, topic, audience, text, now()],
    )
    event_id = int(cur.lastrowid)
    # Inside transaction(db) the hubs are woken after its COMMIT (once, however many events it published):
    # woken earlier they would read nothing and wait for the next wake or their slow safety-net poll.
    after_commit(db, "push.wake", lambda: _wake(db))
    return event_id


def _wake(db: Any) -> None:
    from appliance.push import hub  # the hub reads events through this module

    wake.notify(wake.directory_of(db))
    hub.poke(socketless_only=True)


def _event(row: tuple) -> Event:
    return Event(int(row[0]), int(row[1]), row[2], row[3], row[4])


def since(db: Any, last_id: int, session_id: int | None = None, limit: int = 1000) -> list[Event]:
    """Events after last_id in id order (all sessions, or one)."""
    if session_id is None:
        rows = db.execute(
            "SELECT id, session_id, topic, audience, payload FROM push_events WHERE id > ? ORDER BY id LIMIT ?",
            [last_id, limit],
        ).fetchall()
    else:
        rows = db.execute(
            "SELECT id, session_id, topic, audience, payload FROM push_events WHERE session_id = ? AND id > ? "
            "ORDER BY id LIMIT ?",
            [session_id, last_id, limit],
        ).fetchall()
    return [_event(r) for r in rows]


def last_id(db: Any) -> int:
    row = db.execute("SELECT MAX(id) FROM push_events").fetchone()
    return int(row[0] or 0)


def delete_session(db: Any, session_id: int, topic_prefix: str = "") -> int:
    """Retention: drop a session's events (or those of one feature). Ids are never reused (AUTOINCREMENT)."""
    cur = db.execute("DELETE FROM push_events WHERE session_id = ? AND topic LIKE ? || '%'",
                     [session_id, topic_prefix])
    return cur.rowcount
