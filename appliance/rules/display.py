"""The room screen (issue 13): is this display link live, and what may a screen in the hall show. Pure.

A display is a projector's browser opened with a link the clerk created (`/saal/<token>`): no login, no cookie,
no member. It is a viewer of its own kind (rules.viewer.Viewer kind 'display'): the push audiences give it only
'all' and its own 'display:<id>' (push.audience.visible); the screen shows only what anyone in the public gallery
may see. Tested as tables in tests/test_saal.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

LIVE = "live"  # the link of the active session: the screen shows it
WAITING = "waiting"  # a link of a session that is not active (yet): the screen names the session and waits
REVOKED = "revoked"  # revoked by the clerk: 410
UNKNOWN = "unknown"  # no such link: 404
REFUSED = (UNKNOWN, REVOKED, WAITING)  # what a screen or its stream is told instead (catalog keys saal.<standing>)
# A speaker's request, as the room screen names it (catalog keys saal.kind.<kind>).
KINDS = ("contribution", "point_of_order", "pro", "contra", "intervention")


@dataclass(frozen=True)
class Display:
    id: int
    session_id: int
    label: str
    created_at: str
    last_seen: str | None = None
    revoked_at: str | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


def standing(display: Display | None, active_session_id: int | None) -> str:
    """Is this display link a live display of the active session? LIVE, WAITING, REVOKED or UNKNOWN."""
    if display is None:
        return UNKNOWN
    if display.revoked:
        return REVOKED
    if active_session_id is not None and display.session_id == active_session_id:
        return LIVE
    return WAITING


@dataclass(frozen=True)
class Item:
    """An agenda item as the room may see it."""
    number: str
    title: str
    public: bool


@dataclass(frozen=True)
class Speaker:
    name: str
    faction: str = ""
    kind: str = "contribution"  # contribution | point_of_order | pro | contra | intervention
    started_at: float | None = None  # unix time the speech began (the current speaker)
    limit_s: int | None = None  # the speech's time limit in seconds (None: no limit)


@dataclass(frozen=True)
class Room:
    """What the room screen shows of the running session (from the speakers core's state)."""
    item: Item | None = None
    speaker: Speaker | None = None
    queue: tuple[Speaker, ...] = ()
    closed: bool = False  # Schluss der Rednerliste
    announcement: str = ""
    nonpublic: bool = False  # set by public(): the session is in its non-public part
    warn_s: int | None = None  # the countdown warns this long before the end (rules of procedure; None: default)


def public(room: Room) -> Room:
    """What a screen in the hall may show: during a non-public item nothing of the item, its speakers or its
    queue (who speaks in a non-public part is not public either) — only that the part is non-public. The
    announcement is the chair's word to the room and stays."""
    if room.item is not None and not room.item.public:
        return Room(announcement=room.announcement, nonpublic=True)
    return replace(room, nonpublic=False)


def remaining(started_at: float | None, limit_s: int | None, now: float) -> int | None:
    """Seconds left of the current speech (negative: over time); None without a running timer."""
    if started_at is None or limit_s is None:
        return None
    return math.ceil(started_at + limit_s - now)  # as static/saal/saal.js counts: Math.ceil


def clock(seconds: int | None) -> str:
    """'4:05', '-0:12' (over time), '' without a timer. The room screen's countdown, as the script writes it."""
    if seconds is None:
        return ""
    sign = "-" if seconds < 0 else ""
    s = abs(seconds)
    return f"{sign}{s // 60}:{s % 60:02d}"
