"""The push channel (issue 4): the web side, and nothing else.

`GET /events` is the one server-sent-events stream per browser tab; static/js/live.js re-dispatches each
event as a DOM CustomEvent `sitzungsbox:<topic>`. Presence and chat pages have their own blueprints
(appliance.presence.views, appliance.chat.views), registered beside this one in create_app.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, g, request

from appliance.push import audience as push_audience
from appliance.push import events as push_events
from appliance.push import hub as push_hub
from appliance.web import i18n
from appliance.web.viewer import current_viewer

bp = Blueprint("live", __name__)


def parse_last_id(header: str | None, arg: str | None) -> int | None:
    """Last-Event-ID (the browser's automatic resume) wins over ?last_id= (the page's starting point)."""
    for raw in (header, arg):
        if raw is not None and raw.strip().isdigit() and len(raw.strip()) < 19:
            return int(raw.strip())
    return None


@bp.before_app_request
def _push_start() -> None:
    # Taken before the view reads anything: an event published while the page renders is then sent again
    # by the stream rather than lost (pages are built to apply an event twice harmlessly; ids dedupe).
    if request.method == "GET" and request.endpoint not in ("static", "live.events") and "db" in g:
        g.push_last_id = push_events.last_id(g.db)


@bp.app_context_processor
def _push_globals() -> dict:
    # The page's starting point for its stream: events after what was rendered into it.
    def push_last_id() -> int:
        if "push_last_id" not in g:
            g.push_last_id = push_events.last_id(g.db)
        return g.push_last_id
    def push_enabled() -> bool:
        """Only pages of admitted devices and clerks open a stream (anonymous ones would get 403)."""
        try:
            return "db" in g and current_viewer().kind != "anonymous"
        except Exception:  # an error page must render even if identification fails
            return False
    return {"push_last_id": push_last_id, "push_enabled": push_enabled}


@bp.get("/events")
def events():
    viewer = current_viewer()
    if viewer.kind == "anonymous" or viewer.session_id is None:
        # Not 200: EventSource gives up instead of reconnecting every few seconds.
        return Response(i18n.t("live.events_denied"), status=403, content_type="text/plain; charset=utf-8")
    cfg = current_app.config["SB"]
    hub = push_hub.get_hub(cfg.db_path, cfg.push_poll)
    after = parse_last_id(request.headers.get("Last-Event-ID"), request.args.get("last_id"))
    audiences = current_app.extensions[push_audience.EXT]
    body = push_hub.stream(hub, viewer, viewer.session_id, after, g.db, heartbeat=cfg.push_heartbeat,
                           visible=audiences.visible)
    resp = Response(body, content_type="text/event-stream; charset=utf-8")
    resp.headers["Cache-Control"] = "no-cache, no-store"
    resp.headers["X-Accel-Buffering"] = "no"
    return resp
