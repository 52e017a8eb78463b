"""Who is asking, for this request: the Flask side of appliance.rules.viewer.Viewer.

A member is known by the personal key of the device's Wi-Fi connection (captive.identify), never by a
cookie or a MAC. A clerk by the login session. Policies (which document, which chat room) take the Viewer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import g

from appliance.rules.viewer import Viewer

if TYPE_CHECKING:
    from appliance.captive.identify import Device


def current_viewer() -> Viewer:
    """The viewer of this request (cached on g). A clerk logged in from a phone on the session network is
    a clerk; otherwise the device decides: an admitted member, an admitted guest, or anonymous."""
    if "viewer" in g:
        return g.viewer
    from appliance.sessions import service
    from appliance.web import auth, portal

    def active_id() -> int | None:
        active = service.active_session(g.db)
        return active.id if active else None

    if auth.is_logged_in():
        viewer = Viewer("clerk", active_id())
    else:
        device = portal._device()
        # the session as identify read it with the device's rows (one statement, one snapshot)
        viewer = device_viewer(device, device.session_id if device.session_read else active_id())
    g.viewer = viewer
    return viewer


def device_viewer(device: Device, session_id: int | None) -> Viewer:
    """The viewer a device is (no clerk's login): an admitted member, an admitted guest, or anonymous. Also asked
    by appliance.web.fastpath, outside a request context."""
    if not device.admitted or session_id is None:
        return Viewer("anonymous", session_id, ip=device.ip, mac=device.mac)
    if device.kind == "member" and device.member is not None:
        return Viewer("member", session_id, device.member, True, device.ip, device.mac)
    return Viewer("guest", session_id, None, True, device.ip, device.mac)


def member_viewer() -> Viewer:
    """THE answer of every member page (start page, agenda, viewer, downloads, chat) to a device that is not
    let through yet (a guest before „Weiter“, a member's phone that skipped the portal, no active session):
    the same redirect to the portal, which says what to do. Clerks pass (their pages handle "no session")."""
    from flask import abort

    from appliance.web import links

    viewer = current_viewer()
    if not viewer.is_clerk and (viewer.kind == "anonymous" or viewer.session_id is None):
        abort(links.redirect_to("portal.portal"))
    return viewer
