"""Chat storage in SQLite: post (idempotent by client id), read a room in order, moderation, export, wipe.

Every post is one BEGIN IMMEDIATE transaction (duplicate check, mute, rate limit, insert), so two web
workers can never store the same client id twice or let a participant past the limit. The push event is
published after the commit: a browser that misses it still gets the message from the page or its resume.
"""

from __future__ import annotations

import csv
import hashlib
import io
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from appliance.chat import rules
from appliance.chat.rules import ChatError, Settings
from appliance.csvexport import cell as _cell
from appliance.push import events as push_events
from appliance.push import publish
from appliance.rules import roles
from appliance.store.db import audit
from appliance.store.transaction import transaction

GUEST_NAME = "Gast"
CLERK_NAME = "Sitzungsdienst"


@dataclass(frozen=True)
class Message:
    id: int
    room: str
    client_id: str
    author_kind: str
    author_member_id: int | None
    author_name: str
    body: str
    at: str  # UTC ISO, as stored
    hidden: bool
    author_key: str = ""

    def payload(self) -> dict:
        return {"msg": self.id, "room": self.room, "client_id": self.client_id, "author": self.author_name,
                "author_kind": self.author_kind, "body": self.body, "at": self.at, "time": fmt_time(self.at)}


COLS = "id, room, client_id, author_kind, author_member_id, author_name, body, at, hidden, author_key"


def _msg(row: tuple) -> Message:
    return Message(int(row[0]), row[1], row[2], row[3], row[4], row[5], row[6], row[7], bool(row[8]), row[9])


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


def fmt_time(at: str) -> str:
    try:
        return time.strftime("%H:%M", time.localtime(parse_iso(at)))
    except ValueError:
        return ""


def audience(room: str) -> str:
    return f"chat:{room}"


def settings(db: Any, session_id: int) -> Settings:
    row = db.execute("SELECT direct_messages, guests_write FROM chat_settings WHERE session_id = ?",
                     [session_id]).fetchone()
    return Settings(bool(row[0]), bool(row[1])) if row else Settings()


def set_settings(db: Any, session_id: int, new: Settings, actor: str) -> None:
    with transaction(db):
        db.execute("INSERT OR REPLACE INTO chat_settings(session_id, direct_messages, guests_write) "
                   "VALUES (?, ?, ?)", [session_id, int(new.direct_messages), int(new.guests_chat)])
        audit(db, actor, "chat.settings", f"session={session_id} dm={int(new.direct_messages)} "
                                          f"guests={int(new.guests_chat)}")


def is_muted(db: Any, session_id: int, who: str) -> bool:
    return db.execute("SELECT 1 FROM chat_mutes WHERE session_id = ? AND participant = ?",
                      [session_id, who]).fetchone() is not None


def dm_targets(db: Any, session_id: int) -> frozenset[int]:
    """rules.dm_targets of the session's list (only read for direct rooms)."""
    marks, values = roles.sql_in(roles.DIRECT_MESSAGE_TARGETS)
    return frozenset(int(r[0]) for r in db.execute(
        f"SELECT id FROM members WHERE session_id = ? AND role IN ({marks})",  # noqa: S608 - placeholders only
        [session_id, *values]).fetchall())


def _targets(db: Any, session_id: int, room: str) -> frozenset[int]:
    return dm_targets(db, session_id) if room.startswith("dm:") else frozenset()


def access(db: Any, viewer: Any, room: str) -> rules.Access:
    """rules.access with the session's settings, the viewer's mute and the direct-room targets looked up."""
    if viewer.session_id is None:
        return rules.NONE
    try:
        who = rules.participant(viewer)
    except ChatError:
        return rules.NONE
    sid = viewer.session_id
    return rules.access(viewer, room, settings(db, sid), is_muted(db, sid, who), _targets(db, sid, room))


def push_check(viewer: Any, room: str, db: Any) -> bool:
    """Push audience "chat:<room>" (registered in create_app): who may read the room gets its events."""
    # The hub asks for every chat event and stream: members reading their rooms need no lookup.
    if getattr(viewer, "kind", "") == "member" and room in ("all", "announce"):
        return True
    sid = getattr(viewer, "session_id", None)
    return sid is not None and rules.access(viewer, room, settings(db, sid), targets=_targets(db, sid, room)).read


def post(db: Any, viewer: Any, room: str, client_id: str, text: str, now: float | None = None,
         rate_count: int = rules.RATE_COUNT, rate_window: float = rules.RATE_WINDOW) -> tuple[Message, bool]:
    """Store a message; returns (message, created). A resend with a known client id returns the stored
    message unchanged (created False) and is never rate limited or published again."""
    sid = viewer.session_id
    if sid is None:
        raise ChatError("Zurzeit ist keine Sitzung aktiv.", 403)
    if not rules.valid_room(room):
        raise ChatError("Diesen Raum gibt es nicht.", 404)
    client_id = rules.check_client_id(client_id)
    who = rules.participant(viewer)
    now = time.time() if now is None else now

    def run() -> tuple[Message, bool]:
        row = db.execute(f"SELECT {COLS} FROM chat_messages WHERE session_id = ? AND client_id = ?",  # noqa: S608
                         [sid, client_id]).fetchone()
        if row is not None:
            old = _msg(row)
            if old.room != room or old.author_key != who:
                raise ChatError("Diese Nachrichtenkennung ist schon vergeben. Bitte die Seite neu laden.", 409)
            return old, False
        allowed = rules.access(viewer, room, settings(db, sid), is_muted(db, sid, who), _targets(db, sid, room))
        if not allowed.read:
            raise ChatError("Sie haben keinen Zugang zu diesem Raum.", 403)
        if not allowed.write:
            raise ChatError("Sie können in diesem Raum nicht schreiben (vom Sitzungsdienst stummgeschaltet "
                            "oder nur zum Lesen).", 403)
        body = rules.clean_body(text)
        if viewer.kind != "clerk":
            recent = [parse_iso(r[0]) for r in db.execute(
                "SELECT at FROM chat_messages WHERE session_id = ? AND author_key = ? ORDER BY id DESC LIMIT ?",
                [sid, who, rate_count]).fetchall()]
            if not rules.rate_ok(recent, now, rate_count, rate_window):
                raise ChatError(rules.rate_message(rate_count, rate_window), 429)
        cur = db.execute("INSERT INTO chat_messages(session_id, room, client_id, author_kind, author_member_id, "
                         "author_name, body, at, author_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         [sid, room, client_id, viewer.kind, _member_id(viewer), _name(viewer), body, iso(now), who])
        return Message(int(cur.lastrowid), room, client_id, viewer.kind, _member_id(viewer), _name(viewer), body,
                       iso(now), False, who), True

    with transaction(db):
        msg, created = run()
    if created:
        publish(db, sid, "chat.message", msg.payload(), audience(room))
    return msg, created


def _member_id(viewer: Any) -> int | None:
    return viewer.member.id if viewer.kind == "member" and viewer.member is not None else None


def _name(viewer: Any) -> str:
    if viewer.kind == "member" and viewer.member is not None:
        return viewer.member.name
    if viewer.kind == "clerk":
        return CLERK_NAME
    # A guest is known only by the device: the device key keeps two guests apart for rate and mute.
    tag = hashlib.sha256((viewer.mac or viewer.ip).encode()).hexdigest()[:4]
    return f"{GUEST_NAME} {tag}"


def author_participant(db: Any, session_id: int, msg_id: int) -> str | None:
    """The mute key of a message's author."""
    row = db.execute("SELECT author_key FROM chat_messages WHERE session_id = ? AND id = ?",
                     [session_id, msg_id]).fetchone()
    return row[0] if row and row[0] != "clerk" else None


def messages(db: Any, session_id: int, room: str, after: int = 0, limit: int = 200,
             include_hidden: bool = False) -> list[Message]:
    """A room's messages in order (the last `limit` after `after`)."""
    sql = f"SELECT {COLS} FROM chat_messages WHERE session_id = ? AND room = ? AND id > ?"  # noqa: S608
    if not include_hidden:
        sql += " AND hidden = 0"
    rows = db.execute(sql + " ORDER BY id DESC LIMIT ?", [session_id, room, after, limit]).fetchall()
    return [_msg(r) for r in reversed(rows)]


def mark_read(db: Any, viewer: Any, room: str, last_id: int) -> None:
    """The viewer has seen `room` up to message `last_id` (never moves back: an older page loaded late)."""
    sid = viewer.session_id
    who = rules.participant(viewer)
    with transaction(db):
        # Never beyond the room's last message: a mark from a page cannot hide messages still to come.
        db.execute("INSERT INTO chat_reads(session_id, participant, room, last_id, at) VALUES (?, ?, ?, MIN(?, "
                   "(SELECT COALESCE(MAX(id), 0) FROM chat_messages WHERE session_id = ? AND room = ?)), ?) "
                   "ON CONFLICT(session_id, participant, room) DO UPDATE SET "
                   "last_id = MAX(last_id, excluded.last_id), at = excluded.at",
                   [sid, who, room, int(last_id), sid, room, iso(time.time())])


def unread(db: Any, viewer: Any) -> dict[str, int]:
    """room -> messages by others since the viewer last read it, for every room the viewer may read."""
    sid = viewer.session_id
    if sid is None:
        return {}
    try:
        who = rules.participant(viewer)
    except ChatError:
        return {}
    rows = db.execute(
        "SELECT m.room, COUNT(*) FROM chat_messages m LEFT JOIN chat_reads r ON r.session_id = m.session_id "
        "AND r.participant = ? AND r.room = m.room WHERE m.session_id = ? AND m.hidden = 0 AND m.author_key != ? "
        "AND m.id > COALESCE(r.last_id, 0) GROUP BY m.room", [who, sid, who]).fetchall()
    return {room: n for room, n in rows if _readable(db, viewer, room)}


def _readable(db: Any, viewer: Any, room: str) -> bool:
    sid = viewer.session_id
    return rules.access(viewer, room, settings(db, sid), targets=_targets(db, sid, room)).read


def dm_rooms(db: Any, viewer: Any) -> list[str]:
    """The viewer's direct conversations that have messages, the latest first."""
    member = getattr(viewer, "member", None)
    if viewer.session_id is None or member is None:
        return []
    rows = db.execute("SELECT room FROM chat_messages WHERE session_id = ? AND hidden = 0 AND (room LIKE ? OR "
                      "room LIKE ?) GROUP BY room ORDER BY MAX(id) DESC",
                      [viewer.session_id, f"dm:{member.id}:%", f"dm:%:{member.id}"]).fetchall()
    return [r[0] for r in rows if member.id in (rules.dm_pair(r[0]) or ()) and _readable(db, viewer, r[0])]


def latest_announcement(db: Any, session_id: int) -> Message | None:
    rows = messages(db, session_id, "announce", limit=1)
    return rows[-1] if rows else None


def hide(db: Any, session_id: int, msg_id: int, actor: str, hidden: bool = True) -> Message:
    row = db.execute(f"SELECT {COLS} FROM chat_messages WHERE session_id = ? AND id = ?",  # noqa: S608
                     [session_id, msg_id]).fetchone()
    if row is None:
        raise ChatError("Diese Nachricht gibt es nicht.", 404)
    msg = _msg(row)
    with transaction(db):
        db.execute("UPDATE chat_messages SET hidden = ? WHERE id = ?", [int(hidden), msg_id])
        audit(db, actor, "chat.hide" if hidden else "chat.unhide", f"session={session_id} message={msg_id}")
        publish(db, session_id, "chat.hidden", {"msg": msg_id, "room": msg.room, "hidden": hidden},
                audience(msg.room))
    return msg


def mute(db: Any, session_id: int, who: str, actor: str, muted: bool = True) -> None:
    if not (who.startswith("member:") or who.startswith("device:")):
        raise ChatError("Unbekannte Person.")
    with transaction(db):
        if muted:
            db.execute("INSERT OR IGNORE INTO chat_mutes(session_id, participant, at) VALUES (?, ?, ?)",
                       [session_id, who, iso(time.time())])
        else:
            db.execute("DELETE FROM chat_mutes WHERE session_id = ? AND participant = ?", [session_id, who])
        audit(db, actor, "chat.mute" if muted else "chat.unmute", f"session={session_id} who={who}")


def mutes(db: Any, session_id: int) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in db.execute("SELECT participant, at FROM chat_mutes WHERE session_id = ? "
                                             "ORDER BY at", [session_id]).fetchall()]


EXPORT_ROOMS = ("announce", "all")  # the public rooms; faction rooms and direct messages stay private


def export_rows(db: Any, session_id: int) -> list[Message]:
    rows = db.execute(f"SELECT {COLS} FROM chat_messages WHERE session_id = ? AND room IN ('announce', 'all') "  # noqa: S608
                      "ORDER BY id", [session_id]).fetchall()
    return [_msg(r) for r in rows]


def to_csv(rows: list[Message]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=";")
    w.writerow(["Nr.", "Zeit (UTC)", "Raum", "Von", "Nachricht", "Ausgeblendet"])
    labels = {"all": "Alle", "announce": "Ansage"}
    for m in rows:
        w.writerow([m.id, m.at, labels.get(m.room, m.room), _cell(m.author_name), _cell(m.body),
                    "ja" if m.hidden else "nein"])
    return buf.getvalue()


def wipe(db: Any, session_id: int, actor: str) -> int:
    """Delete every chat message, mute, setting and read mark of the session and its chat push events."""
    with transaction(db):
        n = int(db.execute("SELECT COUNT(*) FROM chat_messages WHERE session_id = ?", [session_id]).fetchone()[0])
        for table in ("chat_messages", "chat_mutes", "chat_settings", "chat_reads"):
            db.execute(f"DELETE FROM {table} WHERE session_id = ?", [session_id])  # noqa: S608 - fixed names
        push_events.delete_session(db, session_id, "chat.")
        audit(db, actor, "chat.wipe", f"session={session_id} messages={n}")
    return n
