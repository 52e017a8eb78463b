"""Who may receive an event: the one place that decides it (pure apart from registered checks)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from appliance.rules import roles

BUILTIN = ("all", "members", "clerks")
PREFIXED = ("member", "faction")
_REGISTERED: dict[str, Callable[[Any, str, Any], bool]] = {}
AUDIENCE_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}(:.{1,200})?$", re.S)


class AudienceError(ValueError):
    pass


def register_audience(prefix: str, fn: Callable[[Any, str, Any], bool]) -> None:
    """Another feature decides `<prefix>:<value>` audiences: fn(viewer, value, db) -> bool."""
    if prefix in BUILTIN or prefix in PREFIXED or not re.fullmatch(r"[a-z][a-z0-9_-]{0,31}", prefix):
        raise AudienceError(f"Zielgruppe {prefix!r} ist vergeben oder ungültig")
    _REGISTERED[prefix] = fn


def check(audience: str) -> str:
    """Validate an audience at publish time, so a typo fails loudly instead of reaching nobody."""
    if not AUDIENCE_RE.match(audience):
        raise AudienceError(f"ungültige Zielgruppe {audience!r}")
    prefix, sep, value = audience.partition(":")
    if not sep:
        if prefix not in BUILTIN:
            raise AudienceError(f"unbekannte Zielgruppe {audience!r}")
    elif prefix == "member":
        if not value.isdigit():
            raise AudienceError(f"member:<id> erwartet eine Zahl: {audience!r}")
    elif prefix not in PREFIXED and prefix not in _REGISTERED:
        raise AudienceError(f"unbekannte Zielgruppe {audience!r} (register_audience fehlt?)")
    return audience


def visible(viewer: Any, audience: str, db: Any = None) -> bool:
    """May this viewer (appliance.web.viewer.Viewer) receive an event for `audience`?

    Clerks get 'all', 'members' and 'clerks' but not a member's private events or a faction's room; a
    registered prefix decides for itself. Anonymous devices get nothing.
    """
    kind = getattr(viewer, "kind", "anonymous")
    if kind == "anonymous":
        return False
    clerk = kind == "clerk"
    member = getattr(viewer, "member", None) if kind == "member" else None
    prefix, sep, value = audience.partition(":")
    if not sep:
        if prefix == "all":
            return clerk or bool(getattr(viewer, "admitted", False))
        if prefix == "members":
            return clerk or member is not None
        if prefix == "clerks":
            return clerk
        return False
    if prefix == "member":
        return member is not None and str(member.id) == value
    if prefix == "faction":
        return (member is not None and bool(member.faction) and member.faction == value
                and member.role in roles.FACTION_ROOM)
    fn = _REGISTERED.get(prefix)
    if fn is None:
        return False
    try:
        return bool(fn(viewer, value, db))
    except Exception:  # a broken check must never leak an event: deny
        return False
