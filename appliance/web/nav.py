"""The members' way around the box: the navigation of every member page (Start, Tagesordnung, Chat, drawn by
templates/_member_nav.html) and the way on from an error page. Plain links built by links.link(), so they keep
`lang` and the demo's `as` and work in captive mini-browsers without JS or cookies."""

from __future__ import annotations

from flask import g, request

from appliance.web import i18n, links

# (endpoint of the link, the endpoints that belong to its section)
SECTIONS = (
    ("portal.home", ("portal.home",)),
    ("documents.agenda", ("documents.agenda", "documents.view")),
    ("chat.chat_page", ("chat.chat_page", "chat.chat_send", "chat.picker")),
)


def _labels() -> dict[str, str]:
    return {"portal.home": i18n.t("nav.start"), "documents.agenda": i18n.t("nav.agenda"),
            "chat.chat_page": i18n.t("nav.chat")}


def _viewer():
    from appliance.web.viewer import current_viewer

    try:
        return current_viewer() if "db" in g else None
    except Exception:  # noqa: BLE001 - an error page must render even if identification fails
        return None


def chat_unread_total() -> int:
    """New chat messages for the viewer in every room they read (the start page and the nav show it)."""
    from appliance.chat import store as chat

    viewer = _viewer()
    if viewer is None or viewer.kind not in ("member", "guest"):
        return 0
    return sum(chat.unread(g.db, viewer).values())


def member_nav() -> list[dict]:
    """The navigation entries for a device that is let through (members and guests); none for anyone else
    (the portal before „Weiter“, clerks on their own pages). `current` is the aria-current value: "page" on
    the page itself, "true" inside its section (a document in the viewer, the member picker)."""
    viewer = _viewer()
    if viewer is None or viewer.kind not in ("member", "guest") or viewer.session_id is None:
        return []
    here = request.endpoint
    out, labels = [], _labels()
    for endpoint, section in SECTIONS:
        current = "page" if here == endpoint else ("true" if here in section else None)
        unread = chat_unread_total() if endpoint == "chat.chat_page" else 0
        out.append({"url": links.link(endpoint), "label": labels[endpoint], "current": current, "unread": unread,
                    "id": "nav-" + endpoint.split(".")[0]})
    return out


RETRY = {"csrf", "413", "429", "500", "503"}  # the same page again may work


def error_ways(code: int | str | None) -> list[tuple[str, str]]:
    """(url, text) of the ways on from an error page: the page again where that may help, then the start page
    (a device let through), the portal (anyone else on the session network) or the staff area's start page."""
    ways = []
    if str(code) in RETRY and (request.method == "GET" or "link_here" in g):
        ways.append((links.here(), i18n.t("error.way.again")))
    area = links._fallback_endpoint()
    viewer = _viewer()
    if area != "portal.home":
        ways.append((links.link(area), i18n.t("error.way.staff")))
    elif viewer is not None and viewer.kind in ("member", "guest", "clerk"):
        ways.append((links.link("portal.home"), i18n.t("error.way.start")))
    else:
        ways.append((links.link("portal.portal"), i18n.t("error.way.portal")))
    return ways


def template_globals() -> dict:
    return {"member_nav": member_nav, "error_ways": error_ways, "chat_unread_total": chat_unread_total}
