"""Who may read which agenda item and file: the one place that decides. Pure functions.

Every route (agenda page, download, ZIP, search, the live notice) asks here. Rules:
- clerks read everything;
- public items and files: every admitted viewer of that session (members and guests);
- non-public: members of the session's body, their deputies and the named administration staff (all three
  named in the session's member list with their role), never guests or anonymous devices;
- a viewer only ever reads the session they belong to (the active one).
"""

from __future__ import annotations

from appliance.rules import roles
from appliance.rules.viewer import Viewer

ENTITLED_ROLES = roles.NONPUBLIC_READERS


def _same_body(member_body: str, session_body: str) -> bool:
    # An empty body in the list means "this session's body" (CLI imports without the column).
    return not member_body.strip() or member_body.strip().casefold() == session_body.strip().casefold()


def entitled_nonpublic(viewer: Viewer, session_id: int, session_body: str) -> bool:
    """May this viewer read the non-public part of this session?"""
    if viewer.is_clerk:
        return True
    if not (viewer.is_member and viewer.admitted and viewer.session_id == session_id):
        return False
    m = viewer.member
    assert m is not None
    if m.session_id != session_id or m.role not in ENTITLED_ROLES:
        return False
    # Administration staff are entitled by being named in this session's list; members and deputies must
    # belong to the body that meets.
    return m.role in roles.NONPUBLIC_BY_LISTING or _same_body(m.body, session_body)


def may_read(viewer: Viewer, session_id: int, session_body: str, *, item_public: bool = True,
             file_public: bool = True) -> bool:
    """May this viewer read a file (or item: file_public=True) of this session?"""
    if viewer.is_clerk:
        return True
    if viewer.kind not in ("member", "guest") or not viewer.admitted or viewer.session_id != session_id:
        return False
    if item_public and file_public:
        return True
    return entitled_nonpublic(viewer, session_id, session_body)


def who(viewer: Viewer) -> str:
    """How the download log names the reader."""
    if viewer.is_clerk:
        return "Sitzungsdienst"
    if viewer.is_member and viewer.member is not None:
        return viewer.member.name
    return f"{viewer.kind} {viewer.ip}"
