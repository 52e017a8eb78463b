"""The speakers list rules (appliance.rules.speakers) as tables: who may ask, in which order the floor is given,
closing the list, maxima and limits, points of order with pro/contra, interventions, withdrawing, the timer,
and the one chair rule (rules.viewer.is_chair)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from appliance.rules import speakers as sp
from appliance.rules.speakers import (
    ADMITTED,
    CONTRA,
    CONTRIBUTION,
    DONE,
    INTERVENTION,
    POINT_OF_ORDER,
    PRO,
    REFUSED,
    REMOVED,
    SPEAKING,
    WAITING,
    WITHDRAWN,
    Board,
    Procedure,
    Request,
)
from appliance.rules.viewer import Viewer, is_chair

SID = 1


@dataclass(frozen=True)
class Person:
    id: int
    role: str = "member"
    name: str = "Anna Schmidt"
    session_id: int = SID
    faction: str = "SPD"
    voting: bool = True


ANNA, BERND, CARLA = Person(1), Person(2, name="Bernd Müller"), Person(3, name="Carla Weber")
DEPUTY_NO_VOTE = Person(4, "deputy", "Dora Klein", voting=False)
STAFF = Person(5, "administration", "Erik Amt")
LISTED_GUEST = Person(6, "guest", "Presse")
ELSEWHERE = Person(7, session_id=2)


def req(id: int, member: int, kind: str = CONTRIBUTION, state: str = WAITING, position: int | None = None,
        started: float | None = None, for_request: int | None = None, requested: float = 0.0) -> Request:
    assert kind in sp.KINDS and state in sp.STATES, (kind, state)  # catches a state passed as the kind
    return Request(id, member, kind, state, id if position is None else position, requested, started,
                   for_request=for_request)


def codes(*decisions: sp.Decision) -> list[str]:
    return [d.code for d in decisions]


# -- who may ask ------------------------------------------------------------------------------------------

SPEECH = req(90, 3, state=SPEAKING, started=100.0)  # Carla is speaking

ASK = [
    # (who, board, kind, by_hand, speaking_now, expected code ("" = allowed))
    (ANNA, Board(), CONTRIBUTION, False, None, ""),
    (DEPUTY_NO_VOTE, Board(), CONTRIBUTION, False, None, ""),  # deputies speak, with or without a vote
    (None, Board(), CONTRIBUTION, False, None, "guest"),  # a guest device: always refused
    (LISTED_GUEST, Board(), CONTRIBUTION, False, None, "guest"),  # a guest on the list too
    (LISTED_GUEST, Board(), CONTRIBUTION, True, None, "not_by_hand"),  # and not by hand either
    (STAFF, Board(), CONTRIBUTION, False, None, "not_listed"),  # staff do not ask from their device ...
    (STAFF, Board(), CONTRIBUTION, True, None, ""),  # ... the chair gives them the floor by hand
    (ELSEWHERE, Board(), CONTRIBUTION, False, None, "not_listed"),  # a member of another session
    (ANNA, Board(), "speech", False, None, "unknown_kind"),
    # one open request per member and kind
    (ANNA, Board((req(10, 1),)), CONTRIBUTION, False, None, "already"),
    (ANNA, Board((req(10, 1),)), CONTRIBUTION, True, None, "already_by_hand"),
    (ANNA, Board((req(10, 1, state=SPEAKING, started=1.0),)), CONTRIBUTION, False, None, "already"),
    (ANNA, Board((req(10, 1, state=DONE, started=1.0),)), CONTRIBUTION, False, None, ""),  # spoke: may ask again
    (ANNA, Board((req(10, 1, state=WITHDRAWN),)), CONTRIBUTION, False, None, ""),
    (ANNA, Board((req(10, 1),)), POINT_OF_ORDER, False, None, ""),  # another kind is another request
    (BERND, Board((req(10, 1),)), CONTRIBUTION, False, None, ""),
    # closed list: no new contributions, by no one; points of order still
    (ANNA, Board(closed=True), CONTRIBUTION, False, None, "closed"),
    (ANNA, Board(closed=True), CONTRIBUTION, True, None, "closed"),
    (ANNA, Board(closed=True), POINT_OF_ORDER, False, None, ""),
    # the maximum of contributions per member and item
    (ANNA, Board((req(10, 1, state=DONE, started=1.0),), rules=Procedure(max_speeches=1)), CONTRIBUTION, False,
     None, "max_reached"),
    (ANNA, Board((req(10, 1, state=DONE, started=1.0),), rules=Procedure(max_speeches=2)), CONTRIBUTION, False,
     None, ""),
    (ANNA, Board((req(10, 1, POINT_OF_ORDER, DONE, started=1.0),), rules=Procedure(max_speeches=1)),
     CONTRIBUTION, False, None, ""),  # a point of order is not a contribution
    (ANNA, Board((req(10, 1, state=DONE, started=1.0),), rules=Procedure(max_speeches=0)), CONTRIBUTION, False,
     None, ""),  # 0: no maximum
    # pro and contra only while a point of order runs
    (ANNA, Board(), PRO, False, None, "no_point_of_order"),
    (ANNA, Board((req(10, 2, POINT_OF_ORDER),)), PRO, False, None, "no_point_of_order"),  # not yet taken
    (ANNA, Board((req(10, 2, POINT_OF_ORDER, SPEAKING, started=5.0),)), PRO, False, None, ""),
    (ANNA, Board((req(10, 2, POINT_OF_ORDER, DONE, started=5.0),)), CONTRA, False, None, ""),
    (ANNA, Board((req(10, 2, POINT_OF_ORDER, DONE, started=5.0), req(11, 3, state=DONE, started=9.0))), PRO, False,
     None, "no_point_of_order"),  # a contribution was called since: the motion is over
    (BERND, Board((req(10, 2, POINT_OF_ORDER, DONE, started=5.0),)), CONTRA, False, None, "own_motion"),
    (ANNA, Board((req(10, 2, POINT_OF_ORDER, DONE, started=5.0), req(11, 3, PRO, for_request=10))), PRO, False,
     None, "pro_contra_taken"),  # one speaker for
    (ANNA, Board((req(10, 2, POINT_OF_ORDER, DONE, started=5.0), req(11, 3, PRO, DONE, 11, 6.0, 10))), CONTRA,
     False, None, ""),  # the contra side is still free
    (ANNA, Board((req(10, 2, POINT_OF_ORDER, DONE, started=5.0),), rules=Procedure(pro_contra=False)), PRO, False,
     None, "no_pro_contra"),
    # interventions address the current speech
    (ANNA, Board(), INTERVENTION, False, None, "no_speech"),
    (ANNA, Board((SPEECH,)), INTERVENTION, False, SPEECH, ""),
    (CARLA, Board((SPEECH,)), INTERVENTION, False, SPEECH, "own_speech"),
]


@pytest.mark.parametrize(("who", "board", "kind", "by_hand", "now_speaking", "expected"), ASK)
def test_who_may_ask(who, board, kind, by_hand, now_speaking, expected):
    d = sp.may_request(who, SID, board, kind, speaking_now=now_speaking, by_hand=by_hand)
    assert d.code == expected and bool(d) == (expected == "")
    if expected:  # every refusal is a German sentence from the one table
        assert d.text and d.text[-1] in ".)" and d.text.startswith(sp.REASONS[expected].split("{")[0][:12])


def test_every_reason_is_a_german_sentence():
    for code, text in sp.REASONS.items():
        assert text[:1].isupper() or text.startswith("{"), code
        assert text.rstrip(")").endswith(".") or text.endswith(")."), code
    assert sp.refuse("max_reached", max=2, name="Anna").text.startswith("Zu diesem Punkt sind höchstens 2")


def test_a_refusal_names_the_guest_in_german():
    d = sp.may_request(None, SID, Board(), CONTRIBUTION)
    assert (d.ok, d.code, d.text) == (False, "guest", "Gäste können sich nicht zu Wort melden.")


# -- the order of the floor --------------------------------------------------------------------------------

QUEUES = [
    # (requests, expected ids in calling order)
    ((req(1, 1), req(2, 2), req(3, 3)), [1, 2, 3]),  # request order
    ((req(1, 1, position=5), req(2, 2, position=5)), [1, 2]),  # a tie in position: the older request first
    ((req(1, 1, position=7), req(2, 2, position=3)), [2, 1]),  # the chair's reorder
    ((req(1, 1), req(2, 2), req(3, 3, POINT_OF_ORDER)), [3, 1, 2]),  # a point of order jumps the queue
    ((req(1, 1, POINT_OF_ORDER), req(2, 2, POINT_OF_ORDER)), [1, 2]),  # points of order among themselves
    # during a point of order: contra and pro (pro first) before other motions and contributions
    ((req(1, 1), req(2, 2, POINT_OF_ORDER, DONE, started=5.0), req(3, 3, CONTRA, for_request=2),
      req(4, 4, PRO, for_request=2), req(5, 5, POINT_OF_ORDER)), [4, 3, 5, 1]),
    # pro/contra of a motion that is over are not called
    ((req(1, 1), req(2, 2, POINT_OF_ORDER, DONE, started=5.0), req(3, 3, PRO, for_request=2),
      req(6, 6, state=DONE, started=8.0)), [1]),
    # interventions: only admitted ones, right after the current speech
    ((req(1, 1), req(2, 2, state=SPEAKING, started=1.0), req(3, 3, INTERVENTION, for_request=2),
      req(4, 4, INTERVENTION, ADMITTED, for_request=2), req(5, 5, POINT_OF_ORDER)), [4, 5, 1]),
    ((req(1, 1, state=WITHDRAWN), req(2, 2, state=REMOVED), req(3, 3, state=DONE, started=1.0),
      req(4, 4, INTERVENTION, REFUSED)), []),
]


@pytest.mark.parametrize(("requests", "order"), QUEUES)
def test_queue_order(requests, order):
    board = Board(tuple(requests))
    assert [r.id for r in sp.queue(board)] == order
    assert (sp.next_speaker(board).id if order else None) == (order[0] if order else None)


def test_a_closed_list_keeps_who_is_waiting():
    board = Board((req(1, 1), req(2, 2)), closed=True)
    assert [r.id for r in sp.queue(board)] == [1, 2]


def test_pending_interventions_wait_for_the_chair():
    board = Board((req(1, 1, state=SPEAKING, started=1.0), req(2, 2, INTERVENTION, requested=5.0, for_request=1),
                   req(3, 3, INTERVENTION, requested=3.0, for_request=1), req(4, 4, INTERVENTION, ADMITTED)))
    assert [r.id for r in sp.pending_interventions(board)] == [3, 2]
    chair = is_chair(Viewer("clerk", SID), SID, None)
    assert sp.may_decide_intervention(chair, board.by_id(2))
    assert sp.may_decide_intervention(False, board.by_id(2)).code == "not_chair"
    assert sp.may_decide_intervention(chair, board.by_id(4)).code == "not_waiting"
    assert sp.may_decide_intervention(chair, board.by_id(1)).code == "not_intervention"


def test_running_point_of_order_and_what_lapses_when_the_floor_moves_on():
    motion = req(2, 2, POINT_OF_ORDER, DONE, started=5.0)
    pro = req(3, 3, PRO, DONE, started=6.0, for_request=2)
    contra = req(4, 4, CONTRA, for_request=2)
    board = Board((req(1, 1), motion, pro, contra))
    assert sp.running_point_of_order(board.requests) == motion  # pro spoke: still running
    assert sp.lapsed(board, contra) == []  # contra called: the motion goes on
    assert sp.lapsed(board, board.by_id(1)) == [contra]  # a contribution called: contra lapses
    assert sp.running_point_of_order((motion, req(5, 5, INTERVENTION, DONE, started=7.0))) == motion
    # An intervention the chair has not admitted lapses when the floor moves on; an admitted one is called.
    asked, admitted = req(6, 6, INTERVENTION, for_request=2), req(7, 7, INTERVENTION, ADMITTED, for_request=2)
    board = Board((req(1, 1), motion, asked, admitted))
    assert sp.lapsed(board, admitted) == [asked] and sp.lapsed(board, board.by_id(1)) == [asked]
    assert sp.running_point_of_order(()) is None


MOVES = [
    # (requests, moved id, to index, expected positions or refusal code)
    ((req(1, 1, position=10), req(2, 2, position=20), req(3, 3, position=30)), 3, 0, {3: 10, 1: 20, 2: 30}),
    ((req(1, 1, position=10), req(2, 2, position=20), req(3, 3, position=30)), 1, 9, {2: 10, 3: 20, 1: 30}),
    ((req(1, 1, position=10), req(2, 2, position=20), req(3, 3, POINT_OF_ORDER, position=30)), 2, 0,
     {2: 10, 1: 20}),  # only within its own group: the point of order does not move
    ((req(1, 1), req(2, 2, state=DONE, started=1.0)), 2, 0, "not_movable"),
    ((req(1, 1), req(2, 2, INTERVENTION, ADMITTED)), 2, 1, "not_movable"),
    ((req(1, 1),), 99, 0, "no_request"),
]


@pytest.mark.parametrize(("requests", "moved", "to", "expected"), MOVES)
def test_reorder(requests, moved, to, expected):
    result = sp.move(Board(tuple(requests)), moved, to)
    if isinstance(expected, str):
        assert isinstance(result, sp.Decision) and result.code == expected
    else:
        assert result == expected


# -- withdrawing and removing ------------------------------------------------------------------------------

UNDO = [
    # (member asking, is chair, request, withdraw code, remove code)
    (1, False, req(10, 1), "", "not_chair"),  # one's own: yes; removing needs the chair
    (2, False, req(10, 1), "not_own", "not_chair"),  # another member's: never
    (None, False, req(10, 1), "not_own", "not_chair"),  # a guest
    (None, True, req(10, 1), "not_own", ""),  # the chair (clerk) removes, does not withdraw for someone
    (1, False, req(10, 1, state=SPEAKING, started=1.0), "not_pending", "not_chair"),
    (1, True, req(10, 1, state=DONE, started=1.0), "not_pending", "not_pending"),
    (1, False, req(10, 1, INTERVENTION, ADMITTED), "", "not_chair"),
]


@pytest.mark.parametrize(("member", "chair", "wanted", "withdraw", "remove"), UNDO)
def test_withdraw_and_remove(member, chair, wanted, withdraw, remove):
    assert codes(sp.may_withdraw(member, wanted), sp.may_remove(chair, wanted)) == [withdraw, remove]


# -- limits and the timer ----------------------------------------------------------------------------------

RULES = Procedure(first_seconds=300, later_seconds=180, order_seconds=120, intervention_seconds=60)
LIMITS = [
    # (request, the item's other requests, expected limit)
    (req(1, 1), (), 300),  # first contribution
    (req(2, 1), (req(1, 1, state=DONE, started=1.0),), 180),  # the second speech is shorter
    (req(2, 1), (req(1, 1, state=WITHDRAWN),), 300),  # a withdrawn request was no speech
    (req(2, 1), (req(1, 2, state=DONE, started=1.0),), 300),  # someone else's speech does not count
    (req(2, 1), (req(1, 1, POINT_OF_ORDER, DONE, started=1.0),), 300),  # nor a point of order
    (req(3, 1, POINT_OF_ORDER), (), 120),
    (req(3, 1, PRO), (), 120),
    (req(3, 1, INTERVENTION), (), 60),
]


@pytest.mark.parametrize(("wanted", "others", "limit"), LIMITS)
def test_speech_limits(wanted, others, limit):
    assert sp.limit_for(wanted, (*others, wanted), RULES) == limit


TIMERS = [
    # (limit, started, now, warn, extra) -> (remaining, warning, overrun)
    ((300, 1000.0, 1000.0, 30, 0), (300.0, False, False)),
    ((300, 1000.0, 1269.0, 30, 0), (31.0, False, False)),
    ((300, 1000.0, 1270.0, 30, 0), (30.0, True, False)),  # the warning starts exactly 30 s before the end
    ((300, 1000.0, 1300.0, 30, 0), (0.0, True, False)),
    ((300, 1000.0, 1301.5, 30, 0), (-1.5, False, True)),  # overrun
    ((300, 1000.0, 1301.5, 30, 60), (58.5, False, False)),  # the chair extended by a minute
    ((0, 1000.0, 5000.0, 30, 0), (None, False, False)),  # no limit: no countdown
    ((300, 1000.0, 990.0, 30, 0), (300.0, False, False)),  # a clock step back never counts negative time
]


@pytest.mark.parametrize(("args", "expected"), TIMERS)
def test_timer(args, expected):
    t = sp.timer(*args)
    assert (t.remaining, t.warning, t.overrun) == expected


def test_procedure_layers_override_in_order():
    body = {"first_seconds": 240, "max_speeches": 2}
    session = {"first_seconds": None, "later_seconds": 120, "pro_contra": 0}
    item = {"max_speeches": 0}
    p = sp.procedure(body, session, None, item)
    assert p == Procedure(first_seconds=240, later_seconds=120, max_speeches=0, pro_contra=False)
    assert sp.procedure() == Procedure(300, 180, 180, 120, 30, 0, True)


def test_announcement_is_cleaned_and_bounded():
    assert sp.clean_announcement("  Pause\nbis 11\x00 Uhr  ") == "Pause bis 11 Uhr"
    too_long = sp.clean_announcement("x" * (sp.ANNOUNCEMENT_MAX + 1))
    assert isinstance(too_long, sp.Decision) and too_long.code == "too_long"


# -- the chair ---------------------------------------------------------------------------------------------

CHAIRS = [
    # (viewer, session, chair member id, expected)
    (Viewer("clerk", SID), SID, None, True),  # the clerk's login always has the console
    (Viewer("member", SID, ANNA, True), SID, 1, True),  # the named member on their own device
    (Viewer("member", SID, BERND, True), SID, 1, False),  # another member
    (Viewer("member", SID, ANNA, True), SID, None, False),  # nobody named
    (Viewer("member", 2, ELSEWHERE, True), SID, 7, False),  # a device of another session
    (Viewer("guest", SID, None, True), SID, 1, False),
    (Viewer("anonymous", SID), SID, 1, False),
]


@pytest.mark.parametrize(("viewer", "session", "chair", "expected"), CHAIRS)
def test_is_chair(viewer, session, chair, expected):
    assert is_chair(viewer, session, chair) is expected
