"""The speakers list (Rednerliste) as pure rules: who may ask to speak, in which order the floor is given, the
limits of the rules of procedure and the speech timer. Plain data in, a decision out; no SQL, no Flask, no clock
(every time is passed in). appliance.usecases.speakers reads the rows, asks these rules and writes.

Kinds of request:
    contribution     Wortmeldung: the ordinary queue, in order of request (the chair may reorder)
    point_of_order   Antrag zur Geschäftsordnung: taken out of turn, ahead of every contribution
    pro / contra     one speaker for and one against the running point of order (if the rules provide it)
    intervention     Zwischenfrage / Kurzintervention to a speech: waits for the chair's admission, then comes
                     right after the current speech; not admitted when the floor moves on, it lapses

Who may ask (decided here, documented in docs/architecture.md): members and deputies on the session's list
(roles.SPEAKERS), whatever their voting flag (a deputy sitting in, a co-opted citizen in a committee speaks too).
Administration staff speak when the chair gives them the floor: the chair or clerk puts them on the list by
hand (roles.SPEAKERS_BY_HAND); they do not ask from their device. Guests never: the public does not speak in a
council session.

Order of the queue (`queue`): admitted interventions, then pro and contra of the running point of order (the
motion being debated is finished first: taking another motion in between would orphan them), then points of
order, then contributions; within each group by position (request order, changed by the chair's reorder).

Closing the list (Schluss der Rednerliste): no new contributions, neither asked nor added by hand (reopen
first); who is already waiting keeps their place; points of order, pro/contra and interventions are still
possible — a point of order is how the room reacts to the closing itself.

Every refusal is a sentence of REASONS (German, the domain language) under a stable code the web can translate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from appliance.rules import roles
from appliance.rules.refusal import ALLOWED, Decision

CONTRIBUTION, POINT_OF_ORDER, PRO, CONTRA, INTERVENTION = (
    "contribution", "point_of_order", "pro", "contra", "intervention")
KINDS = (CONTRIBUTION, POINT_OF_ORDER, PRO, CONTRA, INTERVENTION)
KIND_NAMES = {CONTRIBUTION: "Wortmeldung", POINT_OF_ORDER: "Antrag zur Geschäftsordnung", PRO: "Fürrede",
              CONTRA: "Gegenrede", INTERVENTION: "Zwischenfrage/Kurzintervention"}

WAITING, ADMITTED, SPEAKING, DONE, WITHDRAWN, REMOVED, REFUSED = (
    "waiting", "admitted", "speaking", "done", "withdrawn", "removed", "refused")
STATES = (WAITING, ADMITTED, SPEAKING, DONE, WITHDRAWN, REMOVED, REFUSED)
OPEN = frozenset({WAITING, ADMITTED, SPEAKING})  # a request still in play (the schema's unique index agrees)
PENDING = frozenset({WAITING, ADMITTED})  # not yet called: may be withdrawn, removed, reordered

# Who added a request (speakers_requests.added_by).
BY_MEMBER, BY_CHAIR, BY_CLERK = "member", "chair", "clerk"

REASONS: dict[str, str] = {
    "guest": "Gäste können sich nicht zu Wort melden.",
    "not_listed": "Nur Mitglieder und Stellvertretungen dieser Sitzung können sich zu Wort melden.",
    "not_by_hand": "{name} kann nicht auf die Rednerliste gesetzt werden (nur Mitglieder, Stellvertretungen und "
                   "die Verwaltung dieser Sitzung).",
    "unknown_kind": "Diese Art der Wortmeldung gibt es nicht.",
    "already": "Sie stehen mit dieser Wortmeldung bereits auf der Liste.",
    "already_by_hand": "{name} steht mit dieser Wortmeldung bereits auf der Liste.",
    "closed": "Die Rednerliste ist geschlossen.",
    "max_reached": "Zu diesem Punkt sind höchstens {max} Wortbeiträge je Person vorgesehen; {name} hat sie "
                   "bereits gehabt.",
    "no_pro_contra": "Nach dieser Geschäftsordnung gibt es zu Anträgen zur Geschäftsordnung keine Für- und "
                     "Gegenrede.",
    "no_point_of_order": "Für- und Gegenrede gibt es nur, während ein Antrag zur Geschäftsordnung beraten wird.",
    "pro_contra_taken": "Die {side} zu diesem Antrag zur Geschäftsordnung ist bereits vergeben.",
    "own_motion": "Wer den Antrag zur Geschäftsordnung gestellt hat, hält nicht zugleich Für- oder Gegenrede.",
    "no_speech": "Gerade spricht niemand: eine Zwischenfrage ist nicht möglich.",
    "own_speech": "Eine Zwischenfrage an sich selbst ist nicht möglich.",
    "not_chair": "Das darf nur die Sitzungsleitung.",
    "not_own": "Sie können nur Ihre eigene Wortmeldung zurückziehen.",
    "not_pending": "Diese Wortmeldung ist nicht mehr auf der Liste.",
    "not_intervention": "Nur Zwischenfragen und Kurzinterventionen werden zugelassen oder abgelehnt.",
    "not_waiting": "Über diese Zwischenfrage ist bereits entschieden.",
    "queue_empty": "Es wartet niemand auf der Rednerliste.",
    "nobody_speaking": "Gerade spricht niemand.",
    "no_session": "Diese Sitzung gibt es nicht.",
    "no_item": "Diesen Tagesordnungspunkt gibt es in dieser Sitzung nicht.",
    "no_member": "Diese Person steht nicht auf der Liste dieser Sitzung.",
    "no_request": "Diese Wortmeldung gibt es nicht.",
    "bad_value": "{what} ist keine gültige Angabe.",
    "too_long": "Die Ansage ist zu lang ({length} Zeichen, höchstens {max}).",
    "not_movable": "Diese Wortmeldung kann nicht verschoben werden.",
}

ANNOUNCEMENT_MAX = 500


def refuse(code: str, **values: object) -> Decision:
    return Decision(False, code, REASONS[code].format(**values) if values else REASONS[code])


@dataclass(frozen=True)
class Procedure:
    """The rules of procedure in force (seconds; 0 = no limit / unlimited)."""

    first_seconds: int = 300  # a member's first contribution on an item
    later_seconds: int = 180  # each further contribution on the same item
    order_seconds: int = 180  # a point of order, and each pro / contra speech
    intervention_seconds: int = 120  # Zwischenfrage / Kurzintervention
    warn_seconds: int = 30  # the timer warns this long before the end
    max_speeches: int = 0  # contributions per member and item (0: no maximum)
    pro_contra: bool = True  # a point of order takes one speaker for and one against


PROCEDURE_FIELDS = tuple(f.name for f in fields(Procedure))


def procedure(*layers: Mapping[str, Any] | None) -> Procedure:
    """The rules in force: the defaults, overridden by each layer in turn (body, session, item); a missing or None
    value inherits from the layer above."""
    out = Procedure()
    for layer in layers:
        if not layer:
            continue
        given = {k: (bool(v) if k == "pro_contra" else int(v)) for k, v in layer.items()
                 if k in PROCEDURE_FIELDS and v is not None}
        out = replace(out, **given)
    return out


@dataclass(frozen=True)
class Request:
    """A speakers_requests row as the rules need it."""

    id: int
    member_id: int
    kind: str
    state: str
    position: int
    requested_at: float = 0.0
    started_at: float | None = None
    ended_at: float | None = None
    for_request: int | None = None
    added_by: str = BY_MEMBER
    limit_seconds: int | None = None
    extra_seconds: int = 0


@dataclass(frozen=True)
class Board:
    """One speakers list: its requests (all states, any order) and whether it is closed."""

    requests: tuple[Request, ...] = ()
    closed: bool = False
    rules: Procedure = Procedure()

    def by_id(self, request_id: int) -> Request | None:
        return next((r for r in self.requests if r.id == request_id), None)


# --- who may ask ------------------------------------------------------------------------------------------


def may_request(person: Any, session_id: int, board: Board, kind: str, *, speaking_now: Request | None = None,
                by_hand: bool = False) -> Decision:
    """May `person` (a member row: .id, .role, .session_id, .name; None: a guest or unknown device) be put on the
    list with this kind of request? by_hand: the chair or clerk adds them (a raised hand).
    speaking_now: the session's current speech (an intervention addresses it)."""
    if kind not in KINDS:
        return refuse("unknown_kind")
    if person is None:
        return refuse("guest")
    if getattr(person, "session_id", None) != session_id:
        return refuse("not_listed")
    allowed = roles.SPEAKERS_BY_HAND if by_hand else roles.SPEAKERS
    if person.role not in allowed:
        if person.role == roles.GUEST and not by_hand:
            return refuse("guest")
        return refuse("not_by_hand", name=person.name) if by_hand else refuse("not_listed")
    name = getattr(person, "name", "")
    if any(r.member_id == person.id and r.kind == kind and r.state in OPEN for r in board.requests):
        return refuse("already_by_hand", name=name) if by_hand else refuse("already")
    if kind == CONTRIBUTION:
        if board.closed:
            return refuse("closed")
        rules = board.rules
        if rules.max_speeches and speeches(board.requests, person.id) >= rules.max_speeches:
            return refuse("max_reached", max=rules.max_speeches, name=name)
    elif kind in (PRO, CONTRA):
        if not board.rules.pro_contra:
            return refuse("no_pro_contra")
        motion = running_point_of_order(board.requests)
        if motion is None:
            return refuse("no_point_of_order")
        if motion.member_id == person.id:
            return refuse("own_motion")
        if any(r.kind == kind and r.for_request == motion.id and r.state in (OPEN | {DONE}) for r in board.requests):
            return refuse("pro_contra_taken", side="Fürrede" if kind == PRO else "Gegenrede")
    elif kind == INTERVENTION:
        if speaking_now is None:
            return refuse("no_speech")
        if speaking_now.member_id == person.id:
            return refuse("own_speech")
    return ALLOWED


def for_request(kind: str, board: Board, speaking_now: Request | None) -> int | None:
    """What a new request refers to: pro/contra → the running point of order, intervention → the current speech."""
    if kind in (PRO, CONTRA):
        motion = running_point_of_order(board.requests)
        return motion.id if motion else None
    if kind == INTERVENTION:
        return speaking_now.id if speaking_now else None
    return None


def speeches(requests: Iterable[Request], member_id: int) -> int:
    """Contributions this member has held or is holding on the item (what the maximum and the second-speech limit
    count; points of order, pro/contra and interventions do not)."""
    return sum(1 for r in requests if r.member_id == member_id and r.kind == CONTRIBUTION
               and r.state in (SPEAKING, DONE))


# --- who may undo -----------------------------------------------------------------------------------------


def may_withdraw(member_id: int | None, request: Request) -> Decision:
    """A member withdraws only their own request, and only while it waits (or is admitted)."""
    if member_id is None or request.member_id != member_id:
        return refuse("not_own")
    if request.state not in PENDING:
        return refuse("not_pending")
    return ALLOWED


def may_remove(is_chair: bool, request: Request) -> Decision:
    """The chair (or clerk) takes anyone's waiting request off the list."""
    if not is_chair:
        return refuse("not_chair")
    if request.state not in PENDING:
        return refuse("not_pending")
    return ALLOWED


def may_decide_intervention(is_chair: bool, request: Request) -> Decision:
    if not is_chair:
        return refuse("not_chair")
    if request.kind != INTERVENTION:
        return refuse("not_intervention")
    if request.state != WAITING:
        return refuse("not_waiting")
    return ALLOWED


# --- order ------------------------------------------------------------------------------------------------


def speaking(requests: Iterable[Request]) -> Request | None:
    return next((r for r in requests if r.state == SPEAKING), None)


def running_point_of_order(requests: Iterable[Request]) -> Request | None:
    """The point of order being debated: the latest speech begun on the item, skipping pro, contra and
    interventions, if it was a point of order. It stops running when anything else is given the floor."""
    started = sorted((r for r in requests if r.started_at is not None), key=lambda r: (r.started_at, r.id))
    for r in reversed(started):
        if r.kind in (PRO, CONTRA, INTERVENTION):
            continue
        return r if r.kind == POINT_OF_ORDER else None
    return None


def group(request: Request, motion: Request | None) -> int | None:
    """The request's place in the queue's order (None: not in the queue)."""
    if request.kind == INTERVENTION:
        return 0 if request.state == ADMITTED else None
    if request.state != WAITING:
        return None
    if request.kind in (PRO, CONTRA):
        return 1 if motion is not None and request.for_request == motion.id else None
    return 2 if request.kind == POINT_OF_ORDER else 3


def queue(board: Board) -> list[Request]:
    """The requests that will be called, in the order they will be called (see the module docstring)."""
    motion = running_point_of_order(board.requests)
    ranked = [(g, r) for r in board.requests if (g := group(r, motion)) is not None]
    ranked.sort(key=lambda gr: (gr[0], gr[1].kind == CONTRA, gr[1].position, gr[1].id))
    return [r for _g, r in ranked]


def pending_interventions(board: Board) -> list[Request]:
    """Interventions waiting for the chair's decision, oldest first."""
    return sorted((r for r in board.requests if r.kind == INTERVENTION and r.state == WAITING),
                  key=lambda r: (r.requested_at, r.id))


def next_speaker(board: Board) -> Request | None:
    q = queue(board)
    return q[0] if q else None


def lapsed(board: Board, called: Request) -> list[Request]:
    """What lapses (is removed) once `called` has the floor: waiting pro/contra whose point of order stops
    running, and interventions the chair has not admitted — they addressed a speech that is over now."""
    after = tuple(replace(r, started_at=float("inf")) if r.id == called.id else r for r in board.requests)
    motion = running_point_of_order(after)
    return [r for r in board.requests if r.state == WAITING and r.id != called.id and (
        r.kind == INTERVENTION
        or (r.kind in (PRO, CONTRA) and (motion is None or r.for_request != motion.id)))]


def move(board: Board, request_id: int, to_index: int) -> dict[int, int] | Decision:
    """The chair moves a waiting request to place `to_index` (0-based) among the requests of its own group
    (points of order among themselves, contributions among themselves). Returns the new positions
    {request id: position} of that group — the positions it had, dealt out in the new order, so no other
    request moves — or a refusal."""
    motion = running_point_of_order(board.requests)
    target = board.by_id(request_id)
    if target is None:
        return refuse("no_request")
    g = group(target, motion)
    if g is None or g == 0:
        return refuse("not_movable")
    members = [r for r in queue(board) if group(r, motion) == g]
    order = [r for r in members if r.id != request_id]
    order.insert(max(0, min(to_index, len(order))), target)
    positions = sorted(r.position for r in members)
    if len(set(positions)) != len(positions):  # never expected; keep the new order strict anyway
        positions = list(range(positions[0], positions[0] + len(positions)))
    return {r.id: p for r, p in zip(order, positions, strict=True)}


# --- the timer --------------------------------------------------------------------------------------------


def limit_for(request: Request, requests: Sequence[Request], rules: Procedure) -> int:
    """The speech limit (seconds, 0: none) for `request` when it starts: a later contribution gets the shorter
    limit once the member has spoken on the item before."""
    if request.kind == CONTRIBUTION:
        before = sum(1 for r in requests if r.id != request.id and r.member_id == request.member_id
                     and r.kind == CONTRIBUTION and r.state in (SPEAKING, DONE))
        return rules.first_seconds if before == 0 else rules.later_seconds
    if request.kind == INTERVENTION:
        return rules.intervention_seconds
    return rules.order_seconds


@dataclass(frozen=True)
class Timer:
    elapsed: float  # seconds since the speech began
    limit: int  # seconds allowed including extensions (0: no limit)
    remaining: float | None  # None without a limit; negative when over
    warning: bool  # within the warning time before the end
    overrun: bool  # past the limit


def timer(limit: int, started_at: float, now: float, warn: int, extra: int = 0) -> Timer:
    """The speech timer as a pure function of (limit, started_at, now): what the chair's console and the room
    screen count down from."""
    elapsed = max(0.0, now - started_at)
    if not limit:
        return Timer(elapsed, 0, None, False, False)
    total = limit + extra
    remaining = total - elapsed
    return Timer(elapsed, total, remaining, 0 <= remaining <= warn, remaining < 0)


def clean_announcement(text: str) -> str | Decision:
    """The room screen's announcement: one paragraph, trimmed; refused when too long."""
    text = " ".join("".join(c if c.isprintable() else " " for c in (text or "")).split())
    if len(text) > ANNOUNCEMENT_MAX:
        return refuse("too_long", length=len(text), max=ANNOUNCEMENT_MAX)
    return text
