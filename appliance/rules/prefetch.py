"""Fetching documents onto a device before the session (issue 16): may a device that opted in fetch the viewer's
copies in the background now, and in which order. Pure; tested as tables in tests/test_prefetch.py.

While members arrive the radio is idle: a device may fetch whole viewer copies, one at a time and at the lowest
priority, so that in the session its documents open from its own storage. Once the session has *started*,
nothing bulky may compete with the pages members look at: the box refuses (409) and the device stops.

"Started" is the chair's act: the room is on an agenda item (`speakers_session.current_item_id` is set,
`usecases.speakers.set_current_item`, push topic `agenda.current`). A session that is merely active (the clerk
activated it hours before, members arrive) has not started. When the chair clears the current item again (a
break, the end of the agenda), prefetching is allowed again: the hall is not looking at an item then.

Which files: only what the read policy (documents.policy, via service.visible_agenda) lets this viewer read —
the list is built from the viewer's agenda, never from all files — and only PDFs (the viewer reads only those).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

ALLOWED = "allowed"
NO_SESSION = "no_session"  # no active session, or the viewer belongs to another one
STARTED = "started"  # the chair has moved the room to an agenda item
# Why prefetching is not allowed now (catalog keys docs.prefetch.reason.<code>, German by default).
REASONS = (NO_SESSION, STARTED)

T = TypeVar("T")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    code: str  # ALLOWED or one of REASONS

    def __bool__(self) -> bool:
        return self.allowed


def may_prefetch(*, session_active: bool, current_item_id: int | None) -> Decision:
    """Before the session starts (active, no current item): allowed. Otherwise refused, with the reason."""
    if not session_active:
        return Decision(False, NO_SESSION)
    if current_item_id is not None:
        return Decision(False, STARTED)
    return Decision(True, ALLOWED)


def order(entries: Iterable[tuple[int | None, Sequence[T]]], current_item_id: int | None) -> list[T]:
    """The files to fetch, in order: those of the current item first (if one is set), then the agenda's in its
    order. `entries`: (item id or None for the session's own documents, its files) in agenda order."""
    entries = list(entries)
    first = [f for item, files in entries if current_item_id is not None and item == current_item_id for f in files]
    rest = [f for item, files in entries if current_item_id is None or item != current_item_id for f in files]
    return first + rest

