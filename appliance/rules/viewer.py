"""Who is asking, as plain data: the one answer every member-facing rule (documents, chat, push) is given.

A member is known by the personal key of the device's Wi-Fi connection (captive.identify), never by a cookie or
a MAC; a clerk by the login session; a room screen (kind 'display') by the display link it was opened with
(rules.display, web.saal): it is no person and sees only what the public gallery may see. Working that out for
a request is the web layer's job (appliance.web.viewer.current_viewer); the rules only read the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only the annotation: the rules never reach the store
    from appliance.sessions.service import Member


@dataclass(frozen=True)
class Viewer:
    kind: str  # 'member' | 'guest' | 'clerk' | 'display' | 'anonymous'
    session_id: int | None  # the active session the viewer belongs to (None: no active session)
    member: Member | None = None  # for kind 'member'
    admitted: bool = False  # the device is let through the firewall (members and guests)
    ip: str = ""
    mac: str | None = None
    display_id: int | None = None  # for kind 'display': the display link (rules.display.Display.id)

    @property
    def is_member(self) -> bool:
        return self.kind == "member" and self.member is not None

    @property
    def is_clerk(self) -> bool:
        return self.kind == "clerk"

    @property
    def is_display(self) -> bool:
        return self.kind == "display" and self.display_id is not None


def is_chair(viewer: Viewer, session_id: int, chair_member_id: int | None) -> bool:
    """THE answer to "may this viewer run the session" (the chair's console, calling speakers, reordering).

    Clerks always may (their login). Otherwise the member the clerk named chair of this session, known like
    every member by the device's personal key (rules.device): the chair has no password of their own and
    no login — their own device is the console. A guest, another member, or the chair's device in another
    session may not.
    """
    if viewer.is_clerk:
        return True
    return (viewer.is_member and chair_member_id is not None and viewer.session_id == session_id
            and viewer.member is not None and viewer.member.id == chair_member_id
            and viewer.member.session_id == session_id)
