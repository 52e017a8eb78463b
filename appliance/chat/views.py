"""Chat pages (blueprint "chat", registered in create_app). Work without JS: one page per room with its messages
and a plain form. static/js/chat.js enhances them (live messages from the push channel, background posting,
offline outbox).

Members and guests keep no cookies: their form carries the device-bound CSRF token (as the portal's);
clerks use their session token. Access is decided only by appliance.chat.rules.access (via store.access).
"""

from __future__ import annotations

import dataclasses
import hmac
import itertools
import secrets

from flask import Blueprint, Response, abort, current_app, g, render_template, request, session

from appliance.chat import rules
from appliance.chat import store as chat
from appliance.chat.rules import ChatError
from appliance.rules import guard as guard_rules
from appliance.rules import roles
from appliance.sessions import service
from appliance.usecases import impact as count
from appliance.usecases import presence as presence_acts
from appliance.web import auth, csrf, forms, guard, i18n, links
from appliance.web.viewer import current_viewer, member_viewer

bp = Blueprint("chat", __name__)


def room_label(room: str, names: dict[int, str], me: int | None = None) -> str:
    if room in ("all", "announce"):
        return i18n.t(f"chat.room.{room}")
    if room.startswith("faction:"):
        return i18n.t("chat.room.faction", name=room.split(":", 1)[1])
    pair = rules.dm_pair(room) or (0, 0)
    other = pair[1] if pair[0] == me else pair[0]
    return i18n.t("chat.room.dm", name=names.get(other, "?"))


def _member_names(session_id: int) -> dict[int, str]:
    return {m.id: m.name for m in service.members(g.db, session_id) if m.role in roles.DIRECT_MESSAGE_TARGETS}


def _wants_json() -> bool:
    return request.headers.get("X-Sitzungsbox-Chat") == "1"


def _room_list(viewer, room: str, settings, names: dict[int, str], me: int | None) -> list[tuple]:
    """(room, label, unread) for the compact room list: the fixed rooms, then the direct conversations that
    have messages (and the one open now); everyone else is reached through the member picker."""
    members = service.members(g.db, viewer.session_id)
    fixed = rules.rooms_for(viewer, dataclasses.replace(settings, direct_messages=False), members)
    direct = chat.dm_rooms(g.db, viewer) if settings.direct_messages else []
    if room.startswith("dm:") and room not in direct and chat.access(g.db, viewer, room).read:
        direct.insert(0, room)
    counts = chat.unread(g.db, viewer)
    return [(r, room_label(r, names, me), 0 if r == room else counts.get(r, 0)) for r in fixed + direct]


def _page(viewer, room: str, error: str = "", text: str = "", status: int = 200):
    links.set_here("chat.chat_page", room=room)  # also the answer to a refused POST
    sid = viewer.session_id
    if sid is None:
        return render_template("live/chat.html", session=None, error=error), status
    settings = chat.settings(g.db, sid)
    names = _member_names(sid)
    me = viewer.member.id if viewer.is_member else None
    rooms = _room_list(viewer, room, settings, names, me)
    picker = viewer.is_member and settings.direct_messages
    allowed = chat.access(g.db, viewer, room)
    muted = not viewer.is_clerk and chat.is_muted(g.db, sid, rules.participant(viewer))
    if not allowed.read:
        status = status if status != 200 else 403
        return render_template("live/chat.html", session=sid, rooms=rooms, room=room, allowed=allowed,
                               error=error or i18n.t("chat.no_access"), msgs=[], text="", label="",
                               client_id="", token="", action="", picker=picker, muted=muted), status
    msgs = chat.messages(g.db, sid, room)
    if msgs and request.method == "GET":
        chat.mark_read(g.db, viewer, room, msgs[-1].id)
    token = csrf.session_token() if viewer.is_clerk else csrf.device_token(viewer.ip)
    return render_template(
        "live/chat.html", session=sid, rooms=rooms, room=room, label=room_label(room, names, me), allowed=allowed,
        msgs=msgs, error=error, text=text, client_id=secrets.token_urlsafe(12), picker=picker, muted=muted,
        token=token, action=links.link("chat.chat_send"), read_action=links.link("chat.chat_read"),
        body_max=rules.BODY_MAX,
    ), status


@bp.get("/chat")
def chat_page():
    viewer = member_viewer()  # not let through yet: to the portal, as every member page
    default = "announce" if viewer.kind == "guest" and not chat.access(g.db, viewer, "all").read else "all"
    return _page(viewer, request.args.get("room", default))


def _matches(name: str, q: str) -> bool:
    return all(part in name.casefold() for part in q.casefold().split())


@bp.get("/chat/personen")
def picker():
    """Direct messages: the people of the session grouped by faction, filtered by name (a GET form; with JS,
    static/js/picker.js filters as one types)."""
    viewer = member_viewer()
    sid = viewer.session_id
    if sid is None or not viewer.is_member or not chat.settings(g.db, sid).direct_messages:
        return render_template("error.html", message=i18n.t("chat.picker.off"), code=404), 404
    q = request.args.get("q", "").strip()[:60]
    members = service.members(g.db, sid)
    targets = rules.dm_targets(members, sid)
    me = viewer.member.id
    counts = chat.unread(g.db, viewer)
    people = [(m, rules.dm_room(me, m.id)) for m in members if m.id != me and m.id in targets]
    shown = [(m, r, counts.get(r, 0)) for m, r in people if not q or _matches(m.name, q)]
    groups = [(faction or i18n.t("chat.picker.no_faction"), list(rows))
              for faction, rows in itertools.groupby(shown, key=lambda x: x[0].faction)]
    return render_template("live/chat_picker.html", groups=groups, q=q, total=len(people), shown=len(shown),
                           count_template=i18n.t("chat.picker.count", n="{n}", total=len(people)))  # picker.js


@bp.post("/chat/send")
@csrf.device_bound
def chat_send():
    viewer = current_viewer()
    if viewer.is_clerk:
        expected = session.get("csrf", "")
        if not expected or not hmac.compare_digest(request.form.get("csrf_token", ""), expected):
            abort(400, description="csrf")
    elif viewer.kind in ("member", "guest"):
        csrf.check_device_token(viewer.ip)
    else:
        abort(403)
    room = request.form.get("room", "")
    text = request.form.get("body", "")
    try:
        cfg = current_app.config["SB"]
        msg, created = chat.post(g.db, viewer, room, request.form.get("client_id", ""), text,
                                 rate_count=cfg.chat_rate_count, rate_window=cfg.chat_rate_window)
    except ChatError as exc:
        if _wants_json():
            return {"ok": False, "error": str(exc)}, exc.status
        return _page(viewer, room, error=str(exc), text=text, status=exc.status)
    if _wants_json():
        return {"ok": True, "created": created, "message": msg.payload()}, 201 if created else 200
    if viewer.is_clerk and request.form.get("back") == "clerk":
        return links.redirect_to("chat.chat_clerk", _code=303)
    return links.redirect_to("chat.chat_page", _code=303, room=room, _anchor=f"m-{msg.id}")


@bp.post("/chat/gelesen")
@csrf.device_bound
def chat_read():
    """static/js/chat.js: the messages that arrived while the page was open and visible have been seen."""
    viewer = current_viewer()
    if viewer.kind not in ("member", "guest"):
        return Response(status=204)
    csrf.check_device_token(viewer.ip)
    room = request.form.get("room", "")
    last = request.form.get("last_id", type=int) or 0
    if 0 < last <= forms.MAX_ID and chat.access(g.db, viewer, room).read:
        chat.mark_read(g.db, viewer, room, last)
    return Response(status=204)


# -- clerk ---------------------------------------------------------------------------------------------------

def _actor() -> str:
    return g.get("actor", "clerk")


def _active():
    return service.active_session(g.db)


def _clerk_back(msg: str, category: str = "status"):
    from flask import flash

    flash(msg, category)
    return links.redirect_to("chat.chat_clerk", _code=303)


@bp.get("/clerk/chat")
@auth.login_required
def chat_clerk():
    s = _active()
    if s is None:
        return render_template("live/chat_clerk.html", session=None)
    names = {m.id: m.name for m in service.members(g.db, s.id)}
    return render_template(
        "live/chat_clerk.html", session=s, settings=chat.settings(g.db, s.id),
        msgs=chat.messages(g.db, s.id, "all", include_hidden=True, limit=500),
        announcements=chat.messages(g.db, s.id, "announce", limit=20),
        mutes=chat.mutes(g.db, s.id), muted={p for p, _ in chat.mutes(g.db, s.id)},
        who_label=lambda p: names.get(int(p.split(":")[1]), p) if p.startswith("member:") else p.split(":")[0],
        client_id=secrets.token_urlsafe(12), body_max=rules.BODY_MAX,
    )


@bp.post("/clerk/chat/hide")
@auth.login_required
def chat_hide():
    s = _active()
    if s is None:
        return _clerk_back(i18n.t("att.no_session"), "error")
    msg_id = forms.row_id("msg")  # a tampered form: 400 naming the field
    try:
        chat.hide(g.db, s.id, msg_id, _actor(), request.form.get("hidden") != "0")
    except ChatError as exc:
        return _clerk_back(str(exc), "error")
    return _clerk_back(i18n.t("chat.clerk.saved"))


@bp.post("/clerk/chat/mute")
@auth.login_required
def chat_mute():
    s = _active()
    if s is None:
        return _clerk_back(i18n.t("att.no_session"), "error")
    # Who: named by the form ("who"), or as the author of a message ("msg"); neither is a tampered form (400).
    who = request.form.get("who", "") or chat.author_participant(g.db, s.id, forms.row_id("msg")) or ""
    try:
        chat.mute(g.db, s.id, who, _actor(), request.form.get("muted") != "0")
    except ChatError as exc:
        return _clerk_back(str(exc), "error")
    return _clerk_back(i18n.t("chat.clerk.saved"))


@bp.post("/clerk/chat/settings")
@auth.login_required
def chat_settings():
    s = _active()
    if s is None:
        return _clerk_back(i18n.t("att.no_session"), "error")
    chat.set_settings(g.db, s.id, rules.Settings(request.form.get("direct_messages") == "1",
                                                 request.form.get("guests_chat") == "1"), _actor())
    return _clerk_back(i18n.t("chat.clerk.saved"))


def _guarded_wipe(s, act: str, endpoint: str):
    """The confirmation (web.guard) of a wipe of the live session `s`: None when this POST confirms it, else the
    answer (the confirmation page, or back to the moderation page when no session is live)."""
    if s is None:
        return _clerk_back(i18n.t("att.no_session"), "error")
    return guard.confirmed(count.of(g.db, act, s.id), action=links.link(endpoint),
                           back=links.link("chat.chat_clerk"))


@bp.route("/clerk/chat/wipe", methods=["GET", "POST"])
@auth.login_required
def chat_wipe():
    s = _active()
    refused = _guarded_wipe(s, guard_rules.WIPE_CHAT, "chat.chat_wipe")
    if refused is not None:
        return refused
    n = chat.wipe(g.db, s.id, _actor())
    return _clerk_back(i18n.t("chat.clerk.wiped", n=n))


@bp.route("/clerk/presence/wipe", methods=["GET", "POST"])
@auth.login_required
def presence_wipe():
    s = _active()
    refused = _guarded_wipe(s, guard_rules.WIPE_PRESENCE, "chat.presence_wipe")
    if refused is not None:
        return refused
    presence_acts.wipe_presence(current_app.config["SB"], g.db, s.id, _actor())
    return _clerk_back(i18n.t("chat.clerk.presence_wiped"))


@bp.get("/clerk/chat.csv")
@auth.login_required
def chat_csv():
    s = _active()
    if s is None:
        return links.redirect_to("chat.chat_clerk")
    body = "\ufeff" + chat.to_csv(chat.export_rows(g.db, s.id))
    return Response(body, content_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="chat-{s.date}.csv"'})


@bp.get("/clerk/chat/print")
@auth.login_required
def chat_print():
    s = _active()
    if s is None:
        return links.redirect_to("chat.chat_clerk")
    return render_template("live/chat_print.html", session=s, rows=chat.export_rows(g.db, s.id),
                           fmt_time=chat.fmt_time)


def latest_announcement():
    v = current_viewer()
    if v.session_id is None or v.kind == "anonymous":
        return None
    return chat.latest_announcement(g.db, v.session_id)


@bp.app_context_processor
def _chat_globals() -> dict:
    return {"chat_announcement": latest_announcement, "fmt_chat_time": chat.fmt_time}
