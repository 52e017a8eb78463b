"""The room screen (issue 13): `/saal/<token>` for the projector in the hall. No login, no cookie.

A display link (usecases.displays: the clerk creates and revokes it on the session page) opens the screen of its
session. It is its own kind of viewer (rules.viewer.Viewer kind 'display'), never the device's or a clerk's
login, so a clerk's laptop on the projector shows exactly what the hall may see. Shown: the session (body, title,
date), the current agenda item, the current speaker with the countdown, the next speakers, the announcement, the
number of members present. Never a non-public item, its speakers or its documents (rules.display.public), never
the chat.

Live: `static/saal/saal.js` opens `/saal/<token>/events` (the push stream as the display: only 'all' and its own
'display:<id>' events, push.audience.visible) and fetches the page again when an event arrives (the HTML stays
the one truth), within a second; the countdown runs in the browser from (started_at, limit, the server's clock
in the page), so no event per second. Without JavaScript the page refreshes itself every REFRESH_S seconds
(a <noscript> meta refresh: a projector page nobody types into). A revoked link answers 410, an unknown one
404, each with a German page; a revoked display's open stream is ended by its `display.revoked` event.

What is running in the session comes from the speakers core (usecases.speakers.state): `room_state()` below is
THE one place that reads it. Its push events (`speakers.changed`, `agenda.current`, audience 'all') name no one:
the screen fetches itself again and this read decides what it shows.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from flask import Blueprint, Response, current_app, g, render_template, request

from appliance.presence import store as presence_store
from appliance.push import audience as push_audience
from appliance.push import events as push_events
from appliance.push import hub as push_hub
from appliance.rules import display as rules
from appliance.rules.viewer import Viewer
from appliance.sessions import service
from appliance.usecases import displays, speakers
from appliance.web import i18n
from appliance.web.live import parse_last_id

bp = Blueprint("saal", __name__)

REFRESH_S = 10  # without JavaScript: the page reloads itself this often
SAFETY_S = 60  # with JavaScript: fetched again this often even without an event (a missed one, a new session)
QUEUE_SHOWN = 8  # next speakers listed; more are counted ("und 3 weitere")
WARN_S = 30  # the countdown turns amber this many seconds before the end (unless the rules of procedure say)
LONG_NAME = 24  # characters: a longer speaker's name gets smaller type on three lines (saal.css .saal-long)


def room_state(db, session_id: int) -> rules.Room:
    """ADAPTER to the speakers core: what is running in the session — the item the room is on, the current
    speech with its timer (limit including extensions), the queue in calling order, whether the list is closed,
    the chair's announcement — as rules.display.Room. The one place that reads usecases.speakers.state, asked
    with public_only=True (no title of a non-public item, no names on it); rules.display.public then blanks a
    non-public item altogether. A speech or request whose name the core withheld (on a non-public item) is left
    out rather than shown nameless."""
    state = speakers.state(db, session_id, now=time.time(), public_only=True)
    if state is None:
        return rules.Room()
    item = state.item
    speaker = None
    s = state.speaking
    if s is not None and s.name:
        limit = state.timer.limit if state.timer is not None and state.timer.limit else None
        speaker = rules.Speaker(s.name, s.faction, s.kind, s.started_at, limit)
    queue = tuple(rules.Speaker(q.name, q.faction, q.kind) for q in state.queue if q.name)
    return rules.Room(
        item=rules.Item(item.number, item.title, item.public) if item is not None else None,
        speaker=speaker, queue=queue, closed=state.closed, announcement=state.announcement,
        warn_s=state.rules.warn_seconds,
    )


def _no_store(resp: Response) -> Response:
    resp.headers["Cache-Control"] = "no-store"  # the token is in the URL; the page changes all the time
    return resp


def _gone(standing: str) -> Response:
    code = 410 if standing == rules.REVOKED else 404
    html = render_template("saal/gone.html", message=i18n.t(f"saal.{standing}"), code=code)
    return _no_store(Response(html, status=code))


def _lookup(token: str) -> tuple[rules.Display | None, str]:
    display = displays.find(g.db, token)
    active = service.active_session(g.db)
    return display, rules.standing(display, active.id if active else None)


@bp.get("/saal/<token>")
def screen(token: str):
    display, standing = _lookup(token)
    if display is None or standing in (rules.UNKNOWN, rules.REVOKED):
        return _gone(standing)
    displays.mark_seen(g.db, display.id)
    session = service.get_session(g.db, display.session_id)
    live = standing == rules.LIVE
    room = rules.public(room_state(g.db, session.id)) if live else rules.Room()
    now = time.time()
    speaker = room.speaker
    left = rules.remaining(speaker.started_at, speaker.limit_s, now) if speaker else None
    queue = room.queue[:QUEUE_SHOWN]
    html = render_template(
        "saal/screen.html", session=session, room=room, live=live, now=now, left=left,
        clock=rules.clock(left), queue=queue, more=len(room.queue) - len(queue),
        warn_s=WARN_S if room.warn_s is None else room.warn_s,
        present=presence_store.present_count(g.db, session.id) if live else None,
        refresh_s=REFRESH_S, safety_s=SAFETY_S, token=token, long_name=LONG_NAME,
        push_last=push_events.last_id(g.db),
    )
    return _no_store(Response(html))


@bp.get("/saal/<token>/events")
def events(token: str):
    """The push stream of one room screen: as the display, never as the device or a login."""
    display, standing = _lookup(token)
    if display is None or standing != rules.LIVE:
        # Not 200: EventSource gives up instead of reconnecting; the page's own fetch shows why.
        code = 410 if standing == rules.REVOKED else 404
        return _no_store(Response(i18n.t(f"saal.{standing}"), status=code, content_type="text/plain; charset=utf-8"))
    displays.mark_seen(g.db, display.id)
    viewer = Viewer("display", display.session_id, display_id=display.id)
    cfg = current_app.config["SB"]
    hub = push_hub.get_hub(cfg.db_path, cfg.push_poll)
    after = parse_last_id(request.headers.get("Last-Event-ID"), request.args.get("last_id"))
    audiences = current_app.extensions[push_audience.EXT]
    body = push_hub.stream(hub, viewer, display.session_id, after, g.db, heartbeat=cfg.push_heartbeat,
                           visible=audiences.visible)
    resp = Response(_until_revoked(body), content_type="text/event-stream; charset=utf-8")
    resp.headers["Cache-Control"] = "no-cache, no-store"
    resp.headers["X-Accel-Buffering"] = "no"
    return resp


def _until_revoked(body: Iterator[str]) -> Iterator[str]:
    """The stream, ended right after it carried this display's `display.revoked` (only ever sent to it)."""
    marker = f'"topic":"{displays.REVOKED_TOPIC}"'
    try:
        for chunk in body:
            yield chunk
            if marker in chunk:
                return
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
