"""Who may receive an event: the one place that decides it (pure apart from the checks features register).

Two halves, so that every process can publish but only the web app decides:
- which audiences exist is static (BUILTIN, PREFIXED, FEATURES): `check` validates at publish time in any process
  (web worker, daemon, command line), with or without an app;
- who sees a feature's audience ("chat:<room>", "doc:<file id>") is a check function the app registers in
  create_app on its own `Audiences` (app.extensions[EXT]); nothing registers itself at import time, and two apps
  (or two tests) never share registrations.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

BUILTIN = ("all", "members", "clerks")
# "member:<id>": one member; "display:<id>": one room screen (usecases.displays: its link was revoked).
# A faction's events go to its chat room ("chat:faction:<name>"), decided by chat.rules.
PREFIXED = ("member", "display")
FEATURES = ("chat", "doc")  # "<prefix>:<value>" decided by a check registered in create_app
EXT = "sitzungsbox.audiences"  # app.extensions key of the app's Audiences
AUDIENCE_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}(:.{1,200})?$", re.S)

Check = Callable[[Any, str, Any], bool]  # fn(viewer, value, db) -> may this viewer see "<prefix>:<value>"?


class AudienceError(ValueError):
    pass


def check(audience: str) -> str:
    """Validate an audience at publish time, so a typo fails loudly instead of reaching nobody."""
    if not AUDIENCE_RE.match(audience):
        raise AudienceError(f"ungültige Zielgruppe {audience!r}")
    prefix, sep, value = audience.partition(":")
    if not sep:
        if prefix not in BUILTIN:
            raise AudienceError(f"unbekannte Zielgruppe {audience!r}")
    elif prefix in ("member", "display"):
        if not value.isdigit():
            raise AudienceError(f"{prefix}:<id> erwartet eine Zahl: {audience!r}")
    elif prefix not in PREFIXED and prefix not in FEATURES:
        raise AudienceError(f"unbekannte Zielgruppe {audience!r} (fehlt in audience.FEATURES?)")
    return audience


def is_pure(audience: str) -> bool:
    """Whether `visible` decides this audience from the viewer alone (built-in and per-id audiences: no check a
    feature registered, no database): the hub may remember its answer for a stream's fixed viewer."""
    prefix, sep, _value = audience.partition(":")
    return prefix in BUILTIN if not sep else prefix in PREFIXED


def visible(viewer: Any, audience: str, db: Any = None, checks: dict[str, Check] | None = None) -> bool:
    """May this viewer (appliance.rules.viewer.Viewer) receive an event for `audience`?

    Clerks get 'all', 'members' and 'clerks' but not a member's private events; a feature's
    prefix is decided by its check in `checks` (none registered: nobody). Anonymous devices get nothing.
    A room screen (kind 'display') is no person: 'all' and its own 'display:<id>', nothing else — no
    member's, no clerk's, no chat room's, no document's event (it would be shown to the whole hall).
    """
    kind = getattr(viewer, "kind", "anonymous")
    if kind == "anonymous":
        return False
    if kind == "display":
        own = getattr(viewer, "display_id", None)
        return audience == "all" or (own is not None and audience == f"display:{own}")
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
    fn = (checks or {}).get(prefix)
    if fn is None:
        return False
    try:
        return bool(fn(viewer, value, db))
    except Exception:  # a broken check must never leak an event: deny
        return False


class Audiences:
    """One app's audience checks: the built-in audiences plus what its features registered."""

    def __init__(self, features: tuple[str, ...] = FEATURES) -> None:
        self.features = frozenset(features)
        self._checks: dict[str, Check] = {}

    def register(self, prefix: str, fn: Check) -> None:
        """The feature owning `prefix` decides "<prefix>:<value>" audiences: fn(viewer, value, db) -> bool."""
        if prefix in BUILTIN or prefix in PREFIXED or prefix not in self.features:
            raise AudienceError(f"Zielgruppe {prefix!r} ist vergeben oder nicht in FEATURES")
        if prefix in self._checks:
            raise AudienceError(f"Zielgruppe {prefix!r} ist schon registriert")
        self._checks[prefix] = fn

    def visible(self, viewer: Any, audience: str, db: Any = None) -> bool:
        return visible(viewer, audience, db, self._checks)
