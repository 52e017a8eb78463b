"""Room chat rules as pure functions: which rooms exist, who may read or write which room (ONE function,
`access`), text cleaning, client ids and the rate limit. No database, no Flask: storage and views call these.

Rooms:
    all                 everyone admitted in the session (guests only if the session lets guests chat)
    announce            the clerk's announcements: everyone reads, only the clerk writes (shown as a banner)
    faction:<name>      the faction's members and deputies (rules.roles.FACTION_ROOM)
    dm:<a>:<b>          two people (ids a < b) the page offers each other: both on the session's list in a role
                        of rules.roles.DIRECT_MESSAGE_TARGETS, only if the session allows direct messages
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from appliance.rules import roles

BODY_MAX = 1000
RATE_COUNT = 5  # at most this many messages ...
RATE_WINDOW = 10.0  # ... per participant within this many seconds
CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
ROOM_RE = re.compile(r"^(all|announce|faction:.{1,100}|dm:[0-9]{1,12}:[0-9]{1,12})$", re.S)


class ChatError(ValueError):
    """A message that cannot be accepted; str() is the German text shown to the person."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Settings:
    direct_messages: bool = False
    guests_chat: bool = False  # guests read and write the everyone-room (default: announcements only)


@dataclass(frozen=True)
class Access:
    read: bool
    write: bool


NONE = Access(False, False)


def dm_room(a: int, b: int) -> str:
    if a == b:
        raise ChatError("Eine Direktnachricht an sich selbst ist nicht möglich.")
    lo, hi = sorted((int(a), int(b)))
    return f"dm:{lo}:{hi}"


def dm_pair(room: str) -> tuple[int, int] | None:
    if not room.startswith("dm:"):
        return None
    _dm, a, b = room.split(":")
    return int(a), int(b)


def valid_room(room: str) -> bool:
    if not ROOM_RE.match(room):
        return False
    pair = dm_pair(room)
    return pair is None or pair[0] < pair[1]


def dm_targets(members: Sequence[Any], session_id: int | None) -> frozenset[int]:
    """The ids of the people on the session's list that direct rooms may join (others in `members` ignored)."""
    return frozenset(m.id for m in members
                     if m.session_id == session_id and m.role in roles.DIRECT_MESSAGE_TARGETS)


def access(viewer: Any, room: str, settings: Settings, muted: bool = False,
           targets: Collection[int] = frozenset()) -> Access:
    """THE decision who may read and write a room (viewer: appliance.rules.viewer.Viewer).

    Clerks moderate the public rooms (everyone, announcements) but do not read faction rooms or direct
    messages: those are the members' own. Muted participants still read but cannot write.
    targets: `dm_targets` of the viewer's session — a direct room exists only between two of them, exactly
    the rooms `rooms_for` offers (never with an id from another session, a guest or administration entry,
    or oneself).
    """
    if not valid_room(room):
        return NONE
    kind = getattr(viewer, "kind", "anonymous")
    member = getattr(viewer, "member", None)
    if kind == "clerk":
        return Access(True, True) if room in ("all", "announce") else NONE
    if kind == "member" and member is not None:
        if room == "announce":
            return Access(True, False)
        if room == "all":
            ok = True
        elif room.startswith("faction:"):
            ok = bool(member.faction) and member.role in roles.FACTION_ROOM and room == f"faction:{member.faction}"
        else:
            pair = dm_pair(room)
            ok = (settings.direct_messages and pair is not None and member.id in pair
                  and all(p in targets for p in pair))
        return Access(ok, ok and not muted)
    if kind == "guest" and getattr(viewer, "admitted", False):
        if room == "announce":
            return Access(True, False)
        if room == "all" and settings.guests_chat:
            return Access(True, not muted)
    return NONE


def rooms_for(viewer: Any, settings: Settings, members: Sequence[Any] = ()) -> list[str]:
    """The rooms to list for a viewer, in display order (members: the session's list, in display order;
    direct messages: one per other person `access` lets the viewer write to directly)."""
    out = [r for r in ("announce", "all") if access(viewer, r, settings).read]
    member = getattr(viewer, "member", None)
    if getattr(viewer, "kind", "") == "member" and member is not None:
        if member.faction and access(viewer, f"faction:{member.faction}", settings).read:
            out.append(f"faction:{member.faction}")
        if settings.direct_messages:
            targets = dm_targets(members, getattr(viewer, "session_id", None))
            out += [dm_room(member.id, m.id) for m in members
                    if m.id != member.id and access(viewer, dm_room(member.id, m.id), settings, targets=targets).read]
    return out


def participant(viewer: Any) -> str:
    """Who wrote: a member by id, a guest by their device (guests have no other identity), the clerk."""
    kind = getattr(viewer, "kind", "anonymous")
    if kind == "member" and viewer.member is not None:
        return f"member:{viewer.member.id}"
    if kind == "clerk":
        return "clerk"
    if kind == "guest":
        return f"device:{viewer.mac or viewer.ip}"
    raise ChatError("Nur freigeschaltete Geräte der Sitzung können schreiben.", 403)


def clean_body(text: str) -> str:
    """Strip, normalise, drop control characters (keep line breaks); refuse empty or too long text.

    HTML is NOT removed here: text is stored as written and escaped wherever it is shown.
    """
    text = unicodedata.normalize("NFC", (text or "").replace("\r\n", "\n").replace("\r", "\n"))
    text = "".join(c for c in text if c == "\n" or unicodedata.category(c)[0] != "C" or c == "\t")
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    if not text:
        raise ChatError("Bitte eine Nachricht eingeben.")
    if len(text) > BODY_MAX:
        raise ChatError(f"Die Nachricht ist zu lang ({len(text)} Zeichen, höchstens {BODY_MAX}).")
    return text


def check_client_id(client_id: str) -> str:
    if not CLIENT_ID_RE.match(client_id or ""):
        raise ChatError("Ungültige Nachrichtenkennung. Bitte die Seite neu laden und erneut senden.")
    return client_id


def rate_ok(recent: Sequence[float], now: float, count: int = RATE_COUNT, window: float = RATE_WINDOW) -> bool:
    """recent: times (unix) of this participant's earlier messages. True if one more is allowed now."""
    return sum(1 for t in recent if now - t < window) < count


def rate_message(count: int = RATE_COUNT, window: float = RATE_WINDOW) -> str:
    return (f"Sie schreiben gerade sehr schnell. Bitte warten Sie einige Sekunden und senden Sie dann erneut "
            f"(höchstens {count} Nachrichten in {window:g} Sekunden).")
