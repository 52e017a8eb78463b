"""Display links for the room screen (issue 13): the clerk's acts, and the reads the screen needs.

- `create_display`: a new link for a session. The token (secrets.token_urlsafe, 256 bits) is returned once, to
  be shown to the clerk; only its SHA-256 is stored (a random token needs no slow hash; the staff login
  sessions are kept the same way). Never logged, never in the audit entry (that names the display's id).
- `revoke_display`: the link stops working at once: its page answers 410, and the event `display.revoked` (for
  that display only: audience `display:<id>`) ends its open stream (web.saal) and makes its script reload.
Each is one transaction with one audit entry (and, for revoking, its push event). The rule whether a link is a
live display of the active session is rules.display.standing.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from appliance.push import publish
from appliance.rules.display import Display
from appliance.sessions import service
from appliance.store.db import audit, now
from appliance.store.transaction import transaction

TOKEN_BYTES = 32
LABEL_MAX = 80
SEEN_EVERY = 30  # seconds: the screen's visits are recorded at most this often (a meta refresh every 10 s)
REVOKED_TOPIC = "display.revoked"


class DisplayError(ValueError):
    """A refused act, in German."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def audience(display_id: int) -> str:
    """The push audience of one display (push.audience.visible: only that display receives it)."""
    return f"display:{display_id}"


def _display(row: Any) -> Display:
    return Display(int(row[0]), int(row[1]), row[2], row[3], row[4], row[5])


def create_display(cfg: Any, db: Any, session_id: int, actor: str, label: str = "") -> tuple[Display, str]:
    """A new display link for the session; returns the display and its token (shown once, stored hashed).
    cfg: unused, kept so every act has the same shape."""
    label = " ".join(label.split())
    if len(label) > LABEL_MAX:
        raise DisplayError(f"Bezeichnung zu lang (höchstens {LABEL_MAX} Zeichen)")
    service.get_session(db, session_id)  # SessionError when there is none
    token = secrets.token_urlsafe(TOKEN_BYTES)
    with transaction(db):
        cur = db.execute("INSERT INTO displays(session_id, token_sha256, label, created_at) VALUES (?, ?, ?, ?)",
                         [session_id, token_hash(token), label, now()])
        display_id = int(cur.lastrowid)
        audit(db, actor, "display.create", f"session={session_id} display={display_id}")
    return get(db, display_id), token


def revoke_display(cfg: Any, db: Any, display_id: int, actor: str) -> Display:
    """Revoke a display link (again: nothing happens); its open screen learns it at once.
    cfg: unused, kept so every act has the same shape."""
    display = get(db, display_id)
    if display is None:
        raise DisplayError(f"Anzeige {display_id} gibt es nicht")
    if display.revoked:
        return display
    with transaction(db):
        db.execute("UPDATE displays SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", [now(), display_id])
        audit(db, actor, "display.revoke", f"session={display.session_id} display={display_id}")
        publish(db, display.session_id, REVOKED_TOPIC, {"display": display_id}, audience=audience(display_id))
    return get(db, display_id)  # type: ignore[return-value]


# --- reads and the screen's own bookkeeping -------------------------------------------------------------------


def get(db: Any, display_id: int) -> Display | None:
    row = db.execute("SELECT id, session_id, label, created_at, last_seen, revoked_at FROM displays WHERE id = ?",
                     [display_id]).fetchone()
    return _display(row) if row else None


def find(db: Any, token: str) -> Display | None:
    """The display a token opens (revoked ones too: they answer 410, not 404), or None."""
    if not token or len(token) > 200:
        return None
    row = db.execute("SELECT id, session_id, label, created_at, last_seen, revoked_at FROM displays "
                     "WHERE token_sha256 = ?", [token_hash(token)]).fetchone()
    return _display(row) if row else None


def for_session(db: Any, session_id: int) -> list[Display]:
    rows = db.execute("SELECT id, session_id, label, created_at, last_seen, revoked_at FROM displays "
                      "WHERE session_id = ? ORDER BY id", [session_id]).fetchall()
    return [_display(r) for r in rows]


def mark_seen(db: Any, display_id: int, at: datetime | None = None) -> bool:
    """The screen fetched its page or opened its stream: one statement, at most every SEEN_EVERY seconds."""
    at = at or datetime.now(UTC)
    stamp = at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    before = (at - timedelta(seconds=SEEN_EVERY)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    cur = db.execute("UPDATE displays SET last_seen = ? WHERE id = ? AND (last_seen IS NULL OR last_seen < ?)",
                     [stamp, display_id, before])
    return cur.rowcount > 0
