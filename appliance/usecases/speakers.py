"""Running the session (issue 13): the chair's and the members' acts on the speakers list, and the one read
(`state`) that the chair's console, the member page and the room screen all render.

Each act is ONE `transaction(db)`: it reads what the rules need (inside the transaction: BEGIN IMMEDIATE, so two
members asking at the same moment queue and get distinct places), asks appliance.rules.speakers, and then writes
its rows, ONE audit entry and ONE push event together. A refusal returns an `Outcome` with the rule's German
sentence and code and writes nothing — no row, no audit entry, no event.

Who acts is a `rules.viewer.Viewer`: a member's device (asking, withdrawing), the chair (the member the clerk
named, on their own device: `rules.viewer.is_chair`) or a clerk (web login, or the command line as
`Viewer("clerk", N)`). The audit actor is `member:<id>` for a device (retention blanks the id later),
`chair member:<id>` for the chair, and the clerk's own actor string (`clerk@<ip>`, `cli`).

Push events (audience "all": every admitted device of the session and the clerks): `speakers.changed`
{"what": <act>, "item_id": <id>} and `agenda.current` {"item_id": <id or null>}. They carry ids and the act only,
never a name or a title: every open page fetches `state()` again, and that read decides what it shows — the
room screen asks with public_only=True and gets no names, factions or title for a non-public item. So an event
tells a guest device nothing a guest may not know, whatever the item.

Item 0 is the session's list when no agenda item is current (no agenda imported): it works like any item.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from appliance import csvexport
from appliance.push.events import publish
from appliance.rules import roles
from appliance.rules import speakers as sp
from appliance.rules.viewer import Viewer, is_chair
from appliance.store.db import audit
from appliance.store.db import now as iso_now
from appliance.store.transaction import transaction

CHANGED = "speakers.changed"
CURRENT = "agenda.current"
NO_ITEM = 0
# Bounds of the rules of procedure the clerk can set (a typo of 30000 s must not stop a timer for a day).
PROCEDURE_MAX = {"first_seconds": 3600, "later_seconds": 3600, "order_seconds": 3600, "intervention_seconds": 3600,
                 "warn_seconds": 600, "max_speeches": 99, "pro_contra": 1}
PROCEDURE_LABELS = {"first_seconds": "Redezeit", "later_seconds": "Redezeit weiterer Beiträge",
                    "order_seconds": "Redezeit zur Geschäftsordnung", "intervention_seconds": "Redezeit Zwischenfrage",
                    "warn_seconds": "Vorwarnzeit", "max_speeches": "Höchstzahl der Beiträge",
                    "pro_contra": "Für- und Gegenrede"}
NOT_CLERK = "Das darf nur der Sitzungsdienst."
MAX_ID = 2**63 - 1  # SQLite's INTEGER: a larger id from a form or the command line names nothing


def _fits(n: object) -> bool:
    return isinstance(n, int) and 0 <= n <= MAX_ID


@dataclass(frozen=True)
class Outcome:
    """What an act did, or why not (then nothing was written). text: German, for the person who acted."""

    ok: bool
    text: str
    code: str = ""  # refusal code (rules.speakers.REASONS; "not_clerk"); "" when done
    request_id: int | None = None

    def __bool__(self) -> bool:
        return self.ok


def _refused(d: sp.Decision) -> Outcome:
    return Outcome(False, d.text, d.code)


def _refuse(code: str, **values: object) -> Outcome:
    if code == "not_clerk":
        return Outcome(False, NOT_CLERK, code)
    return _refused(sp.refuse(code, **values))


# --- reading what the rules need --------------------------------------------------------------------------

REQUEST_COLS = ("r.id, r.member_id, r.kind, r.state, r.position, r.requested_at, r.started_at, r.ended_at, "
                "r.for_request, r.added_by, r.limit_seconds, r.extra_seconds, r.item_id, r.duration")


@dataclass(frozen=True)
class _Session:
    id: int
    body: str
    chair_member_id: int | None
    current_item_id: int | None
    announcement: str
    title: str


def _session(db: Any, session_id: int) -> _Session | None:
    if not _fits(session_id):
        return None
    row = db.execute("SELECT s.id, s.body, x.chair_member_id, x.current_item_id, COALESCE(x.announcement, ''), "
                     "s.title FROM sessions s LEFT JOIN speakers_session x ON x.session_id = s.id WHERE s.id = ?",
                     [session_id]).fetchone()
    return _Session(*row) if row else None


def _item_ok(db: Any, session_id: int, item_id: int) -> bool:
    if item_id == NO_ITEM:
        return True
    if not _fits(item_id):
        return False
    return db.execute("SELECT 1 FROM doc_items WHERE id = ? AND session_id = ?", [item_id, session_id]).fetchone() \
        is not None


def _list_item(s: _Session, item_id: int | None) -> int:
    """The list an act works on: the given item, else the one the room is on, else the session's list."""
    if item_id is not None:
        return item_id
    return s.current_item_id or NO_ITEM


def _request(row: tuple) -> sp.Request:
    return sp.Request(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8], row[9], row[10],
                      row[11])


def _procedure(db: Any, s: _Session, item_id: int) -> sp.Procedure:
    cols = ", ".join(sp.PROCEDURE_FIELDS)
    rows = db.execute(f"SELECT body IS NOT NULL, item_id IS NOT NULL, {cols} FROM speakers_procedure "  # noqa: S608
                      "WHERE body = ? OR (session_id = ? AND (item_id IS NULL OR item_id = ?))",
                      [s.body, s.id, item_id]).fetchall()
    layers: list[dict[str, Any]] = [{}, {}, {}]  # body, session, item
    for row in rows:
        layer = 0 if row[0] else (2 if row[1] else 1)
        layers[layer] = dict(zip(sp.PROCEDURE_FIELDS, row[2:], strict=True))
    return sp.procedure(*layers)


def _board(db: Any, s: _Session, item_id: int) -> tuple[sp.Board, sp.Request | None]:
    """The item's list for the rules, and the session's current speech (on whatever item)."""
    rows = db.execute(f"SELECT {REQUEST_COLS} FROM speakers_requests r "  # noqa: S608 - fixed columns
                      "WHERE r.session_id = ? AND (r.item_id = ? OR r.state = 'speaking')",
                      [s.id, item_id]).fetchall()
    requests = tuple(_request(r) for r in rows if r[12] == item_id)
    speaking = next((_request(r) for r in rows if r[3] == sp.SPEAKING), None)
    closed = db.execute("SELECT closed FROM speakers_lists WHERE session_id = ? AND item_id = ?",
                        [s.id, item_id]).fetchone()
    return sp.Board(requests, bool(closed and closed[0]), _procedure(db, s, item_id)), speaking


def _member(db: Any, member_id: int) -> Any:
    from appliance.sessions import service

    if not _fits(member_id):
        return None
    try:
        return service.get_member(db, member_id)
    except service.SessionError:
        return None


def _actor(viewer: Viewer, actor: str | None, chair: bool = False) -> str:
    if actor:
        return actor
    if viewer.is_member and viewer.member is not None:
        return f"{'chair ' if chair else ''}member:{viewer.member.id}"
    return viewer.kind


def _added_by(viewer: Viewer) -> str:
    return sp.BY_CLERK if viewer.is_clerk else sp.BY_CHAIR


def _changed(db: Any, session_id: int, what: str, item_id: int | None, **extra: int | None) -> None:
    publish(db, session_id, CHANGED, {"what": what, "item_id": item_id, **extra}, audience="all")


def _chair(viewer: Viewer, s: _Session) -> bool:
    return is_chair(viewer, s.id, s.chair_member_id)


def _touch_session(db: Any, session_id: int, **cols: Any) -> None:
    """Upsert the session's speakers_session row with these columns."""
    db.execute("INSERT INTO speakers_session(session_id, updated_at) VALUES (?, ?) "
               "ON CONFLICT(session_id) DO UPDATE SET updated_at = excluded.updated_at", [session_id, iso_now()])
    for col, value in cols.items():
        db.execute(f"UPDATE speakers_session SET {col} = ? WHERE session_id = ?", [value, session_id])  # noqa: S608


# --- the chair, the agenda, the announcement, the rules of procedure --------------------------------------


def set_chair(db: Any, viewer: Viewer, session_id: int, member_id: int | None, *,
              actor: str | None = None) -> Outcome:
    """The clerk names the chair of the session (None: nobody; the clerks keep the console either way)."""
    with transaction(db):
        s = _session(db, session_id)
        if s is None:
            return _refuse("no_session")
        if not viewer.is_clerk:
            return _refuse("not_clerk")
        name = ""
        if member_id is not None:
            m = _member(db, member_id)
            if m is None or m.session_id != session_id or m.role not in roles.CHAIR:
                return _refuse("no_member")
            name = m.name
        _touch_session(db, session_id, chair_member_id=member_id)
        audit(db, _actor(viewer, actor), "speakers.chair", f"session={session_id} member={member_id or '-'}")
        _changed(db, session_id, "chair", s.current_item_id)
    return Outcome(True, f"Sitzungsleitung: {name}." if name else "Keine Sitzungsleitung benannt.")


def set_current_item(db: Any, viewer: Viewer, session_id: int, item_id: int | None, *,
                     actor: str | None = None) -> Outcome:
    """The chair moves the room to an agenda item ("jetzt TOP 5"; None: no item). A running speech goes on."""
    with transaction(db):
        s = _session(db, session_id)
        if s is None:
            return _refuse("no_session")
        if not _chair(viewer, s):
            return _refuse("not_chair")
        if item_id is not None and (item_id == NO_ITEM or not _item_ok(db, session_id, item_id)):
            return _refuse("no_item")
        _touch_session(db, session_id, current_item_id=item_id)
        audit(db, _actor(viewer, actor, True), "agenda.current", f"session={session_id} item={item_id or '-'}")
        publish(db, session_id, CURRENT, {"item_id": item_id}, audience="all")
    return Outcome(True, "Aktueller Tagesordnungspunkt gesetzt." if item_id else "Kein Tagesordnungspunkt aktuell.")


def set_announcement(db: Any, viewer: Viewer, session_id: int, text: str, *, actor: str | None = None) -> Outcome:
    """The chair's announcement on the room screen ("" removes it)."""
    cleaned = sp.clean_announcement(text)
    if isinstance(cleaned, sp.Decision):
        return _refused(cleaned)
    with transaction(db):
        s = _session(db, session_id)
        if s is None:
            return _refuse("no_session")
        if not _chair(viewer, s):
            return _refuse("not_chair")
        _touch_session(db, session_id, announcement=cleaned)
        audit(db, _actor(viewer, actor, True), "speakers.announce", f"session={session_id} length={len(cleaned)}")
        _changed(db, session_id, "announcement", s.current_item_id)
    return Outcome(True, "Ansage gesetzt." if cleaned else "Ansage entfernt.")


def set_procedure(db: Any, viewer: Viewer, session_id: int, values: Mapping[str, int | bool | None], *,
                  item_id: int | None = None, for_body: bool = False, actor: str | None = None) -> Outcome:
    """The rules of procedure: the body's (for_body: every session of the session's body), the session's, or one
    item's override (item_id). None in `values` inherits from the layer above. Clerks only."""
    given: dict[str, int | None] = {}
    for key, value in values.items():
        if key not in sp.PROCEDURE_FIELDS:
            return _refuse("bad_value", what=key)
        if value is None:
            given[key] = None
            continue
        number = int(value)
        if not 0 <= number <= PROCEDURE_MAX[key] or (isinstance(value, float) and value != number):
            return _refuse("bad_value", what=PROCEDURE_LABELS[key])
        given[key] = number
    with transaction(db):
        s = _session(db, session_id)
        if s is None:
            return _refuse("no_session")
        if not viewer.is_clerk:
            return _refuse("not_clerk")
        if item_id is not None and (for_body or item_id == NO_ITEM or not _item_ok(db, session_id, item_id)):
            return _refuse("no_item")
        if for_body:
            where, key = "body = ?", [s.body]
            row = {"body": s.body}
        elif item_id is not None:
            where, key = "item_id = ?", [item_id]
            row = {"session_id": session_id, "item_id": item_id}
        else:
            where, key = "session_id = ? AND item_id IS NULL", [session_id]
            row = {"session_id": session_id}
        found = db.execute(f"SELECT id FROM speakers_procedure WHERE {where}", key).fetchone()  # noqa: S608
        if found is None:
            names = ", ".join([*row, *given])
            marks = ", ".join("?" for _ in [*row, *given])
            db.execute(f"INSERT INTO speakers_procedure({names}) VALUES ({marks})",  # noqa: S608 - checked names
                       [*row.values(), *given.values()])
        elif given:
            sets = ", ".join(f"{k} = ?" for k in given)
            db.execute(f"UPDATE speakers_procedure SET {sets} WHERE id = ?", [*given.values(), found[0]])  # noqa: S608
        scope = "body" if for_body else (f"item={item_id}" if item_id is not None else "session")
        audit(db, _actor(viewer, actor), "speakers.procedure",
              f"session={session_id} scope={scope} " + " ".join(f"{k}={v}" for k, v in given.items()))
        _changed(db, session_id, "procedure", item_id if item_id is not None else s.current_item_id)
    return Outcome(True, "Geschäftsordnung gespeichert.")


# --- asking to speak --------------------------------------------------------------------------------------


def _insert_request(db: Any, s: _Session, item_id: int, member_id: int, kind: str, for_request: int | None,
                    added_by: str, now: float) -> int:
    (top,) = db.execute("SELECT COALESCE(MAX(position), 0) FROM speakers_requests WHERE session_id = ? "
                        "AND item_id = ?", [s.id, item_id]).fetchone()
    cur = db.execute("INSERT INTO speakers_requests(session_id, item_id, member_id, kind, state, position, "
                     "for_request, added_by, requested_at) VALUES (?, ?, ?, ?, 'waiting', ?, ?, ?, ?)",
                     [s.id, item_id, member_id, kind, top + 1, for_request, added_by, now])
    return int(cur.lastrowid)


def request(db: Any, viewer: Viewer, session_id: int, kind: str = sp.CONTRIBUTION, *, item_id: int | None = None,
            now: float, actor: str | None = None) -> Outcome:
    """A member asks to speak from their own device (on the item the room is on, unless item_id)."""
    with transaction(db):
        s = _session(db, session_id)
        if s is None:
            return _refuse("no_session")
        item = _list_item(s, item_id)
        if not _item_ok(db, session_id, item):
            return _refuse("no_item")
        person = viewer.member if viewer.is_member and viewer.session_id == session_id else None
        if person is None and (viewer.is_member or viewer.is_clerk):  # a clerk adds by hand instead
            return _refuse("not_listed")
        board, speaking = _board(db, s, item)
        decision = sp.may_request(person, session_id, board, kind, speaking_now=speaking)
        if not decision:
            return _refused(decision)
        assert person is not None
        rid = _insert_request(db, s, item, person.id, kind, sp.for_request(kind, board, speaking), sp.BY_MEMBER, now)
        audit(db, _actor(viewer, actor), "speakers.request",
              f"session={session_id} item={item} request={rid} member={person.id} kind={kind}")
        _changed(db, session_id, "request", item, request_id=rid)
    return Outcome(True, f"{sp.KIND_NAMES[kind]} angenommen.", request_id=rid)


def add_by_hand(db: Any, viewer: Viewer, session_id: int, member_id: int, kind: str = sp.CONTRIBUTION, *,
                item_id: int | None = None, now: float, actor: str | None = None) -> Outcome:
    """The chair or clerk puts someone on the list (a raised hand, a member without a device)."""
    with transaction(db):
        s = _session(db, session_id)
        if s is None:
            return _refuse("no_session")
        if not _chair(viewer, s):
            return _refuse("not_chair")
        item = _list_item(s, item_id)
        if not _item_ok(db, session_id, item):
            return _refuse("no_item")
        person = _member(db, member_id)
        if person is None or person.session_id != session_id:
            return _refuse("no_member")
        board, speaking = _board(db, s, item)
        decision = sp.may_request(person, session_id, board, kind, speaking_now=speaking, by_hand=True)
        if not decision:
            return _refused(decision)
        by = _added_by(viewer)
        rid = _insert_request(db, s, item, person.id, kind, sp.for_request(kind, board, speaking), by, now)
        audit(db, _actor(viewer, actor, True), "speakers.add",
              f"session={session_id} item={item} request={rid} member={person.id} kind={kind}")
        _changed(db, session_id, "add", item, request_id=rid)
    return Outcome(True, f"{person.name}: {sp.KIND_NAMES[kind]} eingetragen.", request_id=rid)


def _one(db: Any, s: _Session, request_id: int) -> tuple[sp.Request, int] | None:
    if not _fits(request_id):
        return None
    row = db.execute(f"SELECT {REQUEST_COLS} FROM speakers_requests r WHERE r.id = ? AND r.session_id = ?",  # noqa: S608
                     [request_id, s.id]).fetchone()
    return (_request(row), row[12]) if row else None


def _session_request(db: Any, session_id: int, request_id: int) -> tuple[_Session, sp.Request, int] | Outcome:
    """(session, request, its item) for an act on one request, or the refusal when either is not there."""
    s = _session(db, session_id)
    if s is None:
        return _refuse("no_session")
    found = _one(db, s, request_id)
    if found is None:
        return _refuse("no_request")
    return s, *found


def _set_state(db: Any, request_id: int, state: str) -> None:
    db.execute("UPDATE speakers_requests SET state = ? WHERE id = ?", [state, request_id])


def withdraw(db: Any, viewer: Viewer, session_id: int, request_id: int, *, actor: str | None = None) -> Outcome:
    """A member withdraws their own waiting request (never another's)."""
    with transaction(db):
        found = _session_request(db, session_id, request_id)
        if isinstance(found, Outcome):
            return found
        s, r, item = found
        me = viewer.member.id if viewer.is_member and viewer.member and viewer.session_id == session_id else None
        decision = sp.may_withdraw(me, r)
        if not decision:
            return _refused(decision)
        _set_state(db, r.id, sp.WITHDRAWN)
        audit(db, _actor(viewer, actor), "speakers.withdraw", f"session={session_id} item={item} request={r.id}")
        _changed(db, session_id, "withdraw", item, request_id=r.id)
    return Outcome(True, "Wortmeldung zurückgezogen.", request_id=r.id)


def remove(db: Any, viewer: Viewer, session_id: int, request_id: int, *, actor: str | None = None) -> Outcome:
    """The chair takes a waiting request off the list."""
    with transaction(db):
        found = _session_request(db, session_id, request_id)
        if isinstance(found, Outcome):
            return found
        s, r, item = found
        decision = sp.may_remove(_chair(viewer, s), r)
        if not decision:
            return _refused(decision)
        _set_state(db, r.id, sp.REMOVED)
        audit(db, _actor(viewer, actor, True), "speakers.remove",
              f"session={session_id} item={item} request={r.id} member={r.member_id}")
        _changed(db, session_id, "remove", item, request_id=r.id)
    return Outcome(True, "Von der Rednerliste genommen.", request_id=r.id)


def decide_intervention(db: Any, viewer: Viewer, session_id: int, request_id: int, admit: bool, *,
                        actor: str | None = None) -> Outcome:
    """The chair admits an intervention (it comes right after the current speech) or refuses it."""
    with transaction(db):
        found = _session_request(db, session_id, request_id)
        if isinstance(found, Outcome):
            return found
        s, r, item = found
        decision = sp.may_decide_intervention(_chair(viewer, s), r)
        if not decision:
            return _refused(decision)
        _set_state(db, r.id, sp.ADMITTED if admit else sp.REFUSED)
        audit(db, _actor(viewer, actor, True), "speakers.admit" if admit else "speakers.refuse",
              f"session={session_id} item={item} request={r.id}")
        _changed(db, session_id, "admit" if admit else "refuse", item, request_id=r.id)
    return Outcome(True, "Zwischenfrage zugelassen." if admit else "Zwischenfrage nicht zugelassen.",
                   request_id=r.id)


def move(db: Any, viewer: Viewer, session_id: int, request_id: int, *, to: int | None = None, step: int = 0,
         actor: str | None = None) -> Outcome:
    """The chair moves a waiting request within its group: to place `to` (1-based) or `step` places (-1: up)."""
    with transaction(db):
        s = _session(db, session_id)
        if s is None:
            return _refuse("no_session")
        if not _chair(viewer, s):
            return _refuse("not_chair")
        found = _one(db, s, request_id)
        if found is None:
            return _refuse("no_request")
        r, item = found
        board, _speaking = _board(db, s, item)
        motion = sp.running_point_of_order(board.requests)
        mine = sp.group(r, motion)
        same = [q.id for q in sp.queue(board) if sp.group(q, motion) == mine]
        index = (to - 1) if to is not None else (same.index(r.id) + step if r.id in same else 0)
        positions = sp.move(board, r.id, max(0, index))
        if isinstance(positions, sp.Decision):
            return _refused(positions)
        for rid, position in positions.items():
            db.execute("UPDATE speakers_requests SET position = ? WHERE id = ?", [position, rid])
        audit(db, _actor(viewer, actor, True), "speakers.move",
              f"session={session_id} item={item} request={r.id} to={index + 1}")
        _changed(db, session_id, "move", item, request_id=r.id)
    return Outcome(True, "Reihenfolge geändert.", request_id=r.id)


def _end(db: Any, speech: sp.Request, now: float) -> None:
    started = speech.started_at if speech.started_at is not None else now
    db.execute("UPDATE speakers_requests SET state = 'done', ended_at = ?, duration = ? WHERE id = ?",
               [now, max(0.0, now - started), speech.id])


def call_next(db: Any, viewer: Viewer, session_id: int, *, item_id: int | None = None,
              request_id: int | None = None, now: float, actor: str | None = None) -> Outcome:
    """The chair gives the floor: ends the current speech (recording how long it was), starts the next of the
    queue (or `request_id`, out of turn) with its limit from the rules of procedure. What rules.speakers.lapsed
    names is removed: pro and contra of a point of order that stops running, interventions not admitted."""
    with transaction(db):
        s = _session(db, session_id)
        if s is None:
            return _refuse("no_session")
        if not _chair(viewer, s):
            return _refuse("not_chair")
        item = _list_item(s, item_id)
        if not _item_ok(db, session_id, item):
            return _refuse("no_item")
        board, speaking = _board(db, s, item)
        if request_id is not None:
            chosen = board.by_id(request_id)
            if chosen is None or chosen not in sp.queue(board):
                return _refuse("not_pending")
        else:
            chosen = sp.next_speaker(board)
        if chosen is None:
            return _refuse("queue_empty")
        ended = None
        if speaking is not None:
            _end(db, speaking, now)
            ended = speaking.id
            board = sp.Board(tuple(replace(r, state=sp.DONE) if r.id == speaking.id else r for r in board.requests),
                             board.closed, board.rules)
        for stale in sp.lapsed(board, chosen):
            _set_state(db, stale.id, sp.REMOVED)
        limit = sp.limit_for(chosen, board.requests, board.rules)
        db.execute("UPDATE speakers_requests SET state = 'speaking', started_at = ?, limit_seconds = ? WHERE id = ?",
                   [now, limit, chosen.id])
        audit(db, _actor(viewer, actor, True), "speakers.next",
              f"session={session_id} item={item} request={chosen.id} member={chosen.member_id} "
              f"ended={ended or '-'} limit={limit}")
        _changed(db, session_id, "next", item, request_id=chosen.id)
    name = _member(db, chosen.member_id)
    return Outcome(True, f"Das Wort hat {name.name if name else 'die nächste Person'}.", request_id=chosen.id)


def end_speech(db: Any, viewer: Viewer, session_id: int, *, now: float, actor: str | None = None) -> Outcome:
    """The chair ends the current speech without giving the floor to anyone (its duration is recorded)."""
    with transaction(db):
        s = _session(db, session_id)
        if s is None:
            return _refuse("no_session")
        if not _chair(viewer, s):
            return _refuse("not_chair")
        row = db.execute(f"SELECT {REQUEST_COLS} FROM speakers_requests r WHERE r.session_id = ? "  # noqa: S608
                         "AND r.state = 'speaking'", [session_id]).fetchone()
        if row is None:
            return _refuse("nobody_speaking")
        speech = _request(row)
        _end(db, speech, now)
        audit(db, _actor(viewer, actor, True), "speakers.end", f"session={session_id} item={row[12]} "
                                                               f"request={speech.id}")
        _changed(db, session_id, "end", row[12], request_id=speech.id)
    return Outcome(True, "Redebeitrag beendet.", request_id=speech.id)


def extend(db: Any, viewer: Viewer, session_id: int, seconds: int, *, actor: str | None = None) -> Outcome:
    """The chair gives the current speaker more time (seconds, may be negative to undo; never below 0 extra)."""
    if not -3600 <= int(seconds) <= 3600:
        return _refuse("bad_value", what="Verlängerung")
    with transaction(db):
        s = _session(db, session_id)
        if s is None:
            return _refuse("no_session")
        if not _chair(viewer, s):
            return _refuse("not_chair")
        row = db.execute("SELECT id, item_id FROM speakers_requests WHERE session_id = ? AND state = 'speaking'",
                         [session_id]).fetchone()
        if row is None:
            return _refuse("nobody_speaking")
        db.execute("UPDATE speakers_requests SET extra_seconds = MAX(0, extra_seconds + ?) WHERE id = ?",
                   [int(seconds), row[0]])
        audit(db, _actor(viewer, actor, True), "speakers.extend",
              f"session={session_id} item={row[1]} request={row[0]} seconds={int(seconds)}")
        _changed(db, session_id, "extend", row[1], request_id=row[0])
    return Outcome(True, "Redezeit verlängert." if seconds >= 0 else "Verlängerung zurückgenommen.", request_id=row[0])


def set_closed(db: Any, viewer: Viewer, session_id: int, closed: bool, *, item_id: int | None = None,
               actor: str | None = None) -> Outcome:
    """Close (Schluss der Rednerliste) or reopen the item's list; see rules.speakers for what closing means."""
    with transaction(db):
        s = _session(db, session_id)
        if s is None:
            return _refuse("no_session")
        if not _chair(viewer, s):
            return _refuse("not_chair")
        item = _list_item(s, item_id)
        if not _item_ok(db, session_id, item):
            return _refuse("no_item")
        db.execute("INSERT INTO speakers_lists(session_id, item_id, closed, changed_at) VALUES (?, ?, ?, ?) "
                   "ON CONFLICT(session_id, item_id) DO UPDATE SET closed = excluded.closed, "
                   "changed_at = excluded.changed_at", [session_id, item, int(closed), iso_now()])
        audit(db, _actor(viewer, actor, True), "speakers.close" if closed else "speakers.reopen",
              f"session={session_id} item={item}")
        _changed(db, session_id, "close" if closed else "reopen", item)
    return Outcome(True, "Rednerliste geschlossen." if closed else "Rednerliste wieder geöffnet.")


def close_list(db: Any, viewer: Viewer, session_id: int, **kw: Any) -> Outcome:
    return set_closed(db, viewer, session_id, True, **kw)


def reopen_list(db: Any, viewer: Viewer, session_id: int, **kw: Any) -> Outcome:
    return set_closed(db, viewer, session_id, False, **kw)


def wipe(db: Any, session_id: int, actor: str) -> int:
    """Delete what running the session left (the clerk after the minutes are written; retention does the same
    after `retention_days`): the speakers lists, requests, chair and announcement, the session's votes with their
    ballots, named lists, deputies, conflicts, paper ballots and vote log (usecases.votes.wipe), and their push
    events — one transaction, one audit entry. The rules of procedure stay. Returns how many requests were
    deleted."""
    from appliance.push import events as push_events
    from appliance.usecases import votes

    with transaction(db):
        (n,) = db.execute("SELECT COUNT(*) FROM speakers_requests WHERE session_id = ?", [session_id]).fetchone()
        for table in ("speakers_requests", "speakers_lists", "speakers_session"):
            db.execute(f"DELETE FROM {table} WHERE session_id = ?", [session_id])  # noqa: S608 - fixed names
        (n_votes,) = db.execute("SELECT COUNT(*) FROM votes WHERE session_id = ?", [session_id]).fetchone()
        vote_rows = votes.wipe(db, session_id, actor)
        events = push_events.delete_session(db, session_id, "speakers.")
        events += push_events.delete_session(db, session_id, "votes.")
        audit(db, actor, "speakers.wipe", f"session={session_id} requests={n} votes={n_votes} "
                                          f"vote_rows={vote_rows} events={events}")
    return int(n)


# --- the one read: what the console, the member page and the room screen show -----------------------------


def current_item_id(db: Any, session_id: int) -> int | None:
    """The agenda item the room is on (set by the chair: `set_current_item`), None before the session starts or
    when no item is current. One query; what rules.prefetch asks (has the session started?)."""
    s = _session(db, session_id)
    return s.current_item_id if s is not None else None


def viewer_is_chair(db: Any, viewer: Viewer, session_id: int) -> bool:
    """Does this viewer get the chair's console for the session (rules.viewer.is_chair over the stored chair)?"""
    s = _session(db, session_id)
    return s is not None and _chair(viewer, s)



@dataclass(frozen=True)
class Item:
    id: int
    number: str
    title: str
    public: bool


@dataclass(frozen=True)
class Speaker:
    """One request on the list, with who asked."""

    request_id: int
    member_id: int
    name: str
    faction: str
    kind: str
    kind_name: str  # German (rules.speakers.KIND_NAMES)
    state: str
    place: int | None  # 1-based place in the queue (None: not waiting to be called)
    spoke: int  # contributions this person has held on the item (incl. a running one)
    requested_at: float
    started_at: float | None
    ended_at: float | None
    duration: float | None
    for_request: int | None
    added_by: str
    item_id: int = NO_ITEM


@dataclass(frozen=True)
class State:
    """Everything the pages render. Fields are only ever added, never renamed (the room screen reads it)."""

    session_id: int
    item_id: int  # the list shown (0: the session's list without an item)
    item: Item | None  # that item (None for 0)
    current_item: Item | None  # the item the room is on
    chair_member_id: int | None
    chair_name: str
    announcement: str
    closed: bool
    rules: sp.Procedure
    speaking: Speaker | None  # the session's current speech (on whatever item)
    timer: sp.Timer | None
    queue: list[Speaker]  # in calling order
    pending: list[Speaker]  # interventions waiting for the chair's decision
    held: list[Speaker]  # speeches held on this item, in order (the minutes)
    running_point_of_order: int | None
    public_only: bool  # names, factions and the title of non-public items are left out
    now: float
    counts: dict[int, int] = field(default_factory=dict)  # member id -> contributions held on the item
    session_title: str = ""  # the session as the room screen heads it ("12. Sitzung des Rates")
    session_body: str = ""  # the body that meets ("Rat der Stadt")

    def mine(self, member_id: int) -> list[Speaker]:
        """A member's own open requests (queue, pending interventions, the running speech)."""
        out = [x for x in self.queue + self.pending if x.member_id == member_id]
        if self.speaking is not None and self.speaking.member_id == member_id:
            out.insert(0, self.speaking)
        return out

    def to_dict(self) -> dict:
        return asdict(self)


def _items(db: Any, session_id: int, ids: set[int]) -> dict[int, Item]:
    ids = {i for i in ids if i}
    if not ids:
        return {}
    marks = ", ".join("?" for _ in ids)
    rows = db.execute(f"SELECT id, number, title, public FROM doc_items WHERE session_id = ? AND id IN ({marks})",  # noqa: S608
                      [session_id, *ids]).fetchall()
    return {r[0]: Item(r[0], r[1], r[2], bool(r[3])) for r in rows}


def state(db: Any, session_id: int, item_id: int | None = None, *, now: float,
          public_only: bool = False) -> State | None:
    """The speakers list of `item_id` (default: the item the room is on) as the pages render it; None if there is
    no such session. Five queries whatever the size of the council. public_only: for the room screen and guests
    — no names or factions on a non-public item, no title of a non-public item."""
    s = _session(db, session_id)
    if s is None:
        return None
    item = _list_item(s, item_id)
    if not _fits(item):
        item = -1  # names no list: an empty one
    rows = db.execute(
        f"SELECT {REQUEST_COLS}, m.name, m.faction FROM speakers_requests r "  # noqa: S608 - fixed columns
        "JOIN members m ON m.id = r.member_id "
        "WHERE r.session_id = ? AND (r.item_id = ? OR r.state = 'speaking')", [session_id, item]).fetchall()
    closed = db.execute("SELECT closed FROM speakers_lists WHERE session_id = ? AND item_id = ?",
                        [session_id, item]).fetchone()
    rules = _procedure(db, s, item)
    speech_row = next((r for r in rows if r[3] == sp.SPEAKING), None)
    items = _items(db, session_id, {item, s.current_item_id or 0, speech_row[12] if speech_row else 0})
    chair_name = ""
    if s.chair_member_id is not None:
        m = db.execute("SELECT name FROM members WHERE id = ?", [s.chair_member_id]).fetchone()
        chair_name = m[0] if m else ""

    mine = [r for r in rows if r[12] == item]
    board = sp.Board(tuple(_request(r) for r in mine), bool(closed and closed[0]), rules)
    counts: dict[int, int] = {}
    for r in board.requests:
        if r.kind == sp.CONTRIBUTION and r.state in (sp.SPEAKING, sp.DONE):
            counts[r.member_id] = counts.get(r.member_id, 0) + 1
    order = sp.queue(board)
    places = {r.id: i for i, r in enumerate(order, start=1)}

    def hidden(item_of: int) -> bool:
        it = items.get(item_of)
        return public_only and it is not None and not it.public

    def speaker(row: tuple) -> Speaker:
        secret = hidden(row[12])
        return Speaker(row[0], 0 if secret else row[1], "" if secret else row[14], "" if secret else row[15],
                       row[2], sp.KIND_NAMES[row[2]], row[3], places.get(row[0]),
                       counts.get(row[1], 0) if row[12] == item else 0, row[5], row[6], row[7], row[13], row[8],
                       row[9], row[12])

    by_id = {r[0]: r for r in mine}
    speaking = speaker(speech_row) if speech_row else None
    timer = None
    if speech_row is not None and speech_row[6] is not None:
        timer = sp.timer(speech_row[10] or 0, speech_row[6], now, rules.warn_seconds, speech_row[11] or 0)

    def shown(it: Item | None) -> Item | None:
        if it is None or not public_only or it.public:
            return it
        return Item(it.id, it.number, "", False)

    held = sorted((r for r in mine if r[6] is not None and r[3] in (sp.DONE, sp.SPEAKING)), key=lambda r: (r[6], r[0]))
    running = sp.running_point_of_order(board.requests)
    return State(
        session_id=session_id, item_id=item, item=shown(items.get(item)),
        current_item=shown(items.get(s.current_item_id or 0)), chair_member_id=s.chair_member_id,
        chair_name=chair_name, announcement=s.announcement, closed=board.closed, rules=rules, speaking=speaking,
        timer=timer, queue=[speaker(by_id[r.id]) for r in order],
        pending=[speaker(by_id[r.id]) for r in sp.pending_interventions(board)],
        held=[speaker(r) for r in held], running_point_of_order=running.id if running else None,
        public_only=public_only, now=now, counts={} if hidden(item) else counts, session_title=s.title,
        session_body=s.body)


# --- the minutes ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MinutesRow:
    item_id: int
    item_number: str
    item_title: str
    order: int  # 1-based within the item
    name: str
    faction: str
    kind_name: str
    started_at: float
    duration: float | None  # None: still speaking


def minutes(db: Any, session_id: int) -> list[MinutesRow]:
    """Per item (in agenda order; the session's list without item first) the speeches held, in order, with start
    time and duration: what the clerk needs for the minutes."""
    rows = db.execute(
        "SELECT r.item_id, COALESCE(i.number, ''), COALESCE(i.title, ''), m.name, m.faction, r.kind, r.started_at, "
        "r.duration FROM speakers_requests r JOIN members m ON m.id = r.member_id "
        "LEFT JOIN doc_items i ON i.id = r.item_id "
        "WHERE r.session_id = ? AND r.started_at IS NOT NULL AND r.state IN ('done', 'speaking') "
        "ORDER BY COALESCE(i.position, -1), r.item_id, r.started_at, r.id", [session_id]).fetchall()
    out: list[MinutesRow] = []
    for r in rows:
        order = 1 if not out or out[-1].item_id != r[0] else out[-1].order + 1
        out.append(MinutesRow(r[0], r[1], r[2], order, r[3], r[4], sp.KIND_NAMES[r[5]], r[6], r[7]))
    return out


def minutes_csv(rows: list[MinutesRow], tz: str) -> str:
    """The minutes rows as CSV for a spreadsheet (appliance.csvexport), times in the council's zone."""
    zone = ZoneInfo(tz)

    def clock(ts: float) -> str:
        return datetime.fromtimestamp(ts, zone).strftime("%H:%M:%S")

    def span(seconds: float | None) -> str:
        if seconds is None:
            return "läuft"
        whole = round(seconds)
        return f"{whole // 60}:{whole % 60:02d}"

    return csvexport.write(
        ["TOP", "Titel", "Nr.", "Name", "Fraktion", "Art", "Redebeginn", "Dauer (min:s)"],
        ([r.item_number, r.item_title, r.order, r.name, r.faction, r.kind_name, clock(r.started_at),
          span(r.duration)] for r in rows))


def askable(db: Any, viewer: Viewer, session_id: int, *, item_id: int | None = None) -> dict[str, sp.Decision]:
    """For each kind of request, what `request()` would answer this viewer's device now (rules.speakers.
    may_request over the same rows): the member page offers only the kinds allowed. Reads only."""
    s = _session(db, session_id)
    if s is None:
        return {k: sp.refuse("no_session") for k in sp.KINDS}
    item = _list_item(s, item_id)
    if not _item_ok(db, session_id, item):
        return {k: sp.refuse("no_item") for k in sp.KINDS}
    person = viewer.member if viewer.is_member and viewer.session_id == session_id else None
    if person is None and (viewer.is_member or viewer.is_clerk):
        return {k: sp.refuse("not_listed") for k in sp.KINDS}
    board, speaking = _board(db, s, item)
    return {k: sp.may_request(person, session_id, board, k, speaking_now=speaking) for k in sp.KINDS}


# --- the procedural steps for the minutes ----------------------------------------------------------------

STEP_ACTIONS = ("agenda.current", "speakers.chair", "speakers.announce", "speakers.procedure", "speakers.request",
                "speakers.add", "speakers.withdraw", "speakers.remove", "speakers.admit", "speakers.refuse",
                "speakers.move", "speakers.next", "speakers.end", "speakers.extend", "speakers.close",
                "speakers.reopen", "speakers.wipe")


@dataclass(frozen=True)
class Step:
    at: float  # unix seconds
    who: str  # the member's name for a device or the chair; else the staff actor as recorded (clerk@ip, cli)
    chair: bool  # acted as the chair
    action: str  # one of STEP_ACTIONS (the pages name it through the catalogs: speakers.step.<action>)
    detail: str  # the audit entry's detail without the session


def steps(db: Any, session_id: int) -> list[Step]:
    """Every procedural step of the session from the audit log, oldest first: the clerk's record of how the
    session was run (who moved the room to which item, called, ended, closed …). Read only; the audit entries
    are written by the acts above."""
    marks = ", ".join("?" for _ in STEP_ACTIONS)
    rows = db.execute(
        f"SELECT at, actor, action, detail FROM audit WHERE action IN ({marks}) "  # noqa: S608 - fixed placeholders
        "AND (detail = ? OR detail LIKE ?) "
        "ORDER BY id",
        [*STEP_ACTIONS, f"session={session_id}", f"session={session_id} %"]).fetchall()
    ids = {int(a.rsplit(":", 1)[1]) for _at, a, _ac, _d in rows
           if a.rsplit(":", 1)[-1].isdigit() and a.split(":", 1)[0] in ("member", "chair member")}
    names = {}
    if ids:
        names = dict(db.execute(f"SELECT id, name FROM members WHERE id IN ({', '.join('?' for _ in ids)})",  # noqa: S608
                                sorted(ids)).fetchall())
    out = []
    for at, actor, action, detail in rows:
        head, _, num = actor.rpartition(":")
        who = names.get(int(num), actor) if num.isdigit() and head in ("member", "chair member") else actor
        when = datetime.strptime(at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=ZoneInfo("UTC")).timestamp()
        out.append(Step(when, who, head == "chair member", action, detail.split(" ", 1)[1] if " " in detail else ""))
    return out
