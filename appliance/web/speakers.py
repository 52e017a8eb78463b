"""Running the session (issue 13) in the browser: the members' Wortmeldung block on their start page, the chair's
console (`/vorsitz`) and the clerk's minutes. Blueprint "speakers", registered in create_app.

Thin views: each POST calls exactly ONE act of appliance.usecases.speakers and answers with a redirect (303) to
its page, or — refused — with the page again and the act's German sentence (`Outcome.text`, the domain language
as in the chat) in an alert; a refusal writes nothing. Every page is plain HTML forms (works without JavaScript);
with it, static/js/live-reload.js refetches the page's live part (`data-live-reload="speakers.changed
agenda.current"`) when the push channel says the list or the room's item changed, and static/js/speakers.js
counts the speech timer down between refreshes.

Who: members are known by their device (viewer.current_viewer; no cookie: forms carry the device-bound CSRF
token), the chair is the member the clerk named (`usecases.speakers.viewer_is_chair`) on their own device, or a
logged-in clerk (session CSRF token). A device that may not run the session gets a German 403 page, for the
console and for each of its POSTs.
"""

from __future__ import annotations

import hmac
import re
import time

from flask import Blueprint, Response, abort, current_app, g, render_template, request, session

from appliance.documents import service as documents
from appliance.rules import roles
from appliance.rules import speakers as sp
from appliance.rules.viewer import Viewer
from appliance.sessions import service
from appliance.usecases import speakers as acts
from appliance.web import auth, csrf, forms, i18n, links
from appliance.web.viewer import current_viewer, member_viewer

bp = Blueprint("speakers", __name__)

LIVE_TOPICS = f"{acts.CHANGED} {acts.CURRENT}"  # what the pages' live parts listen for (live-reload.js)
FORBIDDEN = frozenset({"not_chair", "not_clerk", "guest", "not_listed", "not_own"})  # refusals answered with 403
EXTEND_STEPS = (60, 30, -30)  # the console's buttons: seconds more (or back)
MEMBER_KINDS = (sp.CONTRIBUTION, sp.POINT_OF_ORDER, sp.PRO, sp.CONTRA, sp.INTERVENTION)  # the buttons' order
NEVER_ASKS = frozenset({"guest", "not_listed"})  # refusals that mean: this device never asks (a read-only list)


def _now() -> float:
    return time.time()


def clock(seconds: float | None) -> str:
    """Seconds as m:ss (negative: -m:ss), for the timer and the minutes."""
    if seconds is None:
        return ""
    whole = round(abs(seconds))
    return f"{'-' if seconds < 0 else ''}{whole // 60}:{whole % 60:02d}"


@bp.app_template_filter("speech_clock")
def speech_clock(seconds: float | None) -> str:
    return clock(seconds)


@bp.app_template_filter("speech_time")
def speech_time(ts: float | None) -> str:
    if ts is None:
        return ""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime.fromtimestamp(ts, ZoneInfo(current_app.config["SB"].timezone)).strftime("%H:%M:%S")


def _token(viewer: Viewer) -> str:
    return csrf.session_token() if viewer.is_clerk else csrf.device_token(viewer.ip)


def _check_token(viewer: Viewer) -> None:
    """Clerks: the session token; devices (no cookies in captive mini-browsers): the device-bound one."""
    if viewer.is_clerk:
        expected = session.get("csrf", "")
        if not expected or not hmac.compare_digest(request.form.get("csrf_token", ""), expected):
            abort(400, description="csrf")
    else:
        csrf.check_device_token(viewer.ip)


def _forbidden() -> Response:
    return Response(render_template("error.html", message=i18n.t("speakers.not_chair"), code=403), 403)


def _status(outcome: acts.Outcome) -> int:
    return 403 if outcome.code in FORBIDDEN else 409


def _no_store(resp: Response) -> Response:
    resp.headers["Cache-Control"] = "no-store"
    return resp


# --- the member's start page ------------------------------------------------------------------------------


def _item_files(viewer: Viewer, item_id: int | None) -> list:
    if not item_id or viewer.session_id is None:
        return []
    entry = next((e for e in documents.visible_agenda(g.db, viewer, viewer.session_id)
                  if e.item is not None and e.item.id == item_id), None)
    return entry.files if entry else []


def member_context() -> dict | None:
    """For portal/_speakers.html: the room's item with its documents, the list, the member's own requests and
    what they may ask for now. None when there is nothing to show (no session, a device not let through)."""
    viewer = current_viewer()
    if viewer.session_id is None or viewer.kind not in ("member", "guest"):
        return None
    st = acts.state(g.db, viewer.session_id, now=_now(), public_only=not viewer.is_member)
    if st is None:
        return None
    me = viewer.member.id if viewer.is_member else None
    answers = acts.askable(g.db, viewer, viewer.session_id)  # the rules' answer per kind: offer only what they take
    may_ask = not any(d.code in NEVER_ASKS for d in answers.values())  # guests; staff are added by hand
    return {"st": st, "me": me, "mine": st.mine(me) if me else [], "may_ask": may_ask,
            "kinds": [k for k in MEMBER_KINDS if answers[k]],
            "files": _item_files(viewer, st.current_item.id if st.current_item else None),
            "token": _token(viewer), "error": g.get("speak_error", ""), "topics": LIVE_TOPICS,
            "chair": acts.viewer_is_chair(g.db, viewer, viewer.session_id)}


@bp.app_context_processor
def _member_globals() -> dict:
    return {"speakers_member": member_context}


def _home_again(outcome: acts.Outcome) -> tuple[str, int]:
    """The start page with the refusal in its Wortmeldung block."""
    from appliance.web import portal

    links.set_here("portal.home")
    g.speak_error = outcome.text  # member_context() puts it into the Wortmeldung block
    s = service.active_session(g.db)
    return render_template("portal/home.html", session=s, device=portal._device(),
                           portal_url=links.link("portal.portal")), _status(outcome)


@bp.get("/wort")
def member_live():
    """The start page's Wortmeldung block alone, for live-reload.js on every member's open start page: a light
    refetch (no chat, presence or document counts) when the list changes — each event reaches every phone."""
    member_viewer()
    return _no_store(Response(render_template("speakers/member_live.html")))


@bp.post("/wort")
@csrf.device_bound
def ask():
    """A member asks to speak (kind: contribution, point of order, pro, contra, intervention)."""
    viewer = member_viewer()
    _check_token(viewer)
    kind = request.form.get("kind", "")
    if kind not in sp.KINDS:
        raise forms.FieldError("kind")
    outcome = acts.request(g.db, viewer, viewer.session_id or 0, kind, now=_now(), actor=g.get("actor"))
    if not outcome:
        return _home_again(outcome)
    return links.redirect_to("portal.home", _code=303, _anchor="wort")


@bp.post("/wort/zurueck")
@csrf.device_bound
def withdraw():
    """A member withdraws their own waiting request."""
    viewer = member_viewer()
    _check_token(viewer)
    outcome = acts.withdraw(g.db, viewer, viewer.session_id or 0, forms.row_id("request"), actor=g.get("actor"))
    if not outcome:
        return _home_again(outcome)
    return links.redirect_to("portal.home", _code=303, _anchor="wort")


# --- the chair's console ----------------------------------------------------------------------------------


def _chair_viewer() -> Viewer:
    """The viewer of a console page or act: the chair or a clerk of the active session; anyone else gets the
    German 403 page (a device not let through: the portal, as on every member page)."""
    viewer = member_viewer()
    if viewer.session_id is None:
        abort(_no_store(Response(render_template("error.html", message=i18n.t("speakers.no_session"), code=404),
                                 404)))
    if not acts.viewer_is_chair(g.db, viewer, viewer.session_id):
        abort(_forbidden())
    return viewer


def _agenda_items(viewer: Viewer) -> list:
    return [e.item for e in documents.visible_agenda(g.db, viewer, viewer.session_id) if e.item is not None]


def _console(viewer: Viewer, error: str = "", status: int = 200):
    links.set_here("speakers.console")
    sid = viewer.session_id
    st = acts.state(g.db, sid, now=_now())
    people = [m for m in service.members(g.db, sid) if m.role in roles.SPEAKERS_BY_HAND]
    resp = Response(render_template(
        "speakers/console.html", st=st, error=error, token=_token(viewer), items=_agenda_items(viewer),
        people=people, kinds=MEMBER_KINDS, steps=EXTEND_STEPS, topics=LIVE_TOPICS, clerk=viewer.is_clerk,
        fields=sp.PROCEDURE_FIELDS), status)
    return _no_store(resp)


@bp.get("/vorsitz")
def console():
    return _console(_chair_viewer())


def _done(viewer: Viewer, outcome: acts.Outcome):
    if not outcome:
        return _console(viewer, outcome.text, _status(outcome))
    return links.redirect_to("speakers.console", _code=303)


def _act() -> tuple[Viewer, int]:
    viewer = _chair_viewer()
    _check_token(viewer)
    return viewer, viewer.session_id or 0


def _optional_id(name: str) -> int | None:
    return forms.row_id(name) if request.form.get(name, "").strip() else None


def _actor() -> str | None:
    return g.get("actor")


@bp.post("/vorsitz/top")
@csrf.device_bound
def set_item():
    """Move the room to an agenda item ("jetzt TOP 5"); an empty choice: no item."""
    viewer, sid = _act()
    return _done(viewer, acts.set_current_item(g.db, viewer, sid, _optional_id("item"), actor=_actor()))


@bp.post("/vorsitz/weiter")
@csrf.device_bound
def call_next():
    """Give the floor to the next in the queue (or to `request`, out of turn)."""
    viewer, sid = _act()
    return _done(viewer, acts.call_next(g.db, viewer, sid, request_id=_optional_id("request"), now=_now(),
                                        actor=_actor()))


@bp.post("/vorsitz/ende")
@csrf.device_bound
def end_speech():
    viewer, sid = _act()
    return _done(viewer, acts.end_speech(g.db, viewer, sid, now=_now(), actor=_actor()))


@bp.post("/vorsitz/verlaengern")
@csrf.device_bound
def extend():
    viewer, sid = _act()
    raw = request.form.get("seconds", "").strip()
    if not re.fullmatch(r"-?[0-9]{1,4}", raw):
        raise forms.FieldError("seconds")
    return _done(viewer, acts.extend(g.db, viewer, sid, int(raw), actor=_actor()))


@bp.post("/vorsitz/zwischenfrage")
@csrf.device_bound
def decide():
    """Admit (admit=1) or refuse (admit=0) an intervention."""
    viewer, sid = _act()
    admit = request.form.get("admit", "")
    if admit not in ("0", "1"):
        raise forms.FieldError("admit")
    return _done(viewer, acts.decide_intervention(g.db, viewer, sid, forms.row_id("request"), admit == "1",
                                                  actor=_actor()))


@bp.post("/vorsitz/verschieben")
@csrf.device_bound
def move():
    """Move a waiting request one place up or down within its group."""
    viewer, sid = _act()
    step = {"up": -1, "down": 1}.get(request.form.get("step", ""))
    if step is None:
        raise forms.FieldError("step")
    return _done(viewer, acts.move(g.db, viewer, sid, forms.row_id("request"), step=step, actor=_actor()))


@bp.post("/vorsitz/entfernen")
@csrf.device_bound
def remove():
    viewer, sid = _act()
    return _done(viewer, acts.remove(g.db, viewer, sid, forms.row_id("request"), actor=_actor()))


@bp.post("/vorsitz/eintragen")
@csrf.device_bound
def add():
    """Put a listed person on the list by hand (a raised hand)."""
    viewer, sid = _act()
    kind = request.form.get("kind", sp.CONTRIBUTION)
    if kind not in sp.KINDS:
        raise forms.FieldError("kind")
    return _done(viewer, acts.add_by_hand(g.db, viewer, sid, forms.row_id("member"), kind, now=_now(),
                                          actor=_actor()))


@bp.post("/vorsitz/liste")
@csrf.device_bound
def close_or_reopen():
    """Close (closed=1, Schluss der Rednerliste) or reopen (closed=0) the list of the room's item."""
    viewer, sid = _act()
    closed = request.form.get("closed", "")
    if closed not in ("0", "1"):
        raise forms.FieldError("closed")
    return _done(viewer, acts.set_closed(g.db, viewer, sid, closed == "1", actor=_actor()))


@bp.post("/vorsitz/ansage")
@csrf.device_bound
def announce():
    viewer, sid = _act()
    return _done(viewer, acts.set_announcement(g.db, viewer, sid, request.form.get("text", ""), actor=_actor()))


@bp.post("/vorsitz/geschaeftsordnung")
@csrf.device_bound
def procedure():
    """The rules of procedure for the session or for the item the form names (the room's item when it was drawn;
    clerks — the use case refuses others). An empty field inherits from the level above."""
    viewer, sid = _act()
    scope = request.form.get("scope", "")
    if scope not in ("session", "item"):
        raise forms.FieldError("scope")
    values: dict[str, int | None] = {}
    for name in sp.PROCEDURE_FIELDS:
        raw = request.form.get(name, "").strip()
        if raw and (not raw.isascii() or not raw.isdigit() or len(raw) > 6):
            raise forms.FieldError(name)
        values[name] = int(raw) if raw else None
    item = forms.row_id("item") if scope == "item" else None  # the item the form was drawn for
    return _done(viewer, acts.set_procedure(g.db, viewer, sid, values, item_id=item, actor=_actor()))


# --- the clerk: the chair and the minutes -----------------------------------------------------------------


def _session_or_404(session_id: int) -> service.Session:
    try:
        return service.get_session(g.db, session_id)
    except service.SessionError:
        abort(404)


@bp.post("/clerk/sessions/<int:session_id>/vorsitz")
@auth.login_required
def name_chair(session_id: int):
    """The clerk names the session's chair (an empty choice: nobody)."""
    from flask import flash

    s = _session_or_404(session_id)
    outcome = acts.set_chair(g.db, Viewer("clerk", s.id), s.id, _optional_id("member"), actor=_actor())
    flash(outcome.text, "ok" if outcome else "error")
    return links.redirect_to("clerk.session_page", _code=303, session_id=s.id, _anchor="chair")


@bp.get("/clerk/sessions/<int:session_id>/redner.csv")
@auth.login_required
def minutes_csv(session_id: int):
    s = _session_or_404(session_id)
    body = acts.minutes_csv(acts.minutes(g.db, s.id), current_app.config["SB"].timezone)
    resp = Response(body, mimetype="text/csv")
    resp.headers["Content-Disposition"] = f'attachment; filename="rednerliste-{s.date}.csv"'
    return _no_store(resp)


@bp.get("/clerk/sessions/<int:session_id>/redner")
@auth.login_required
def minutes_print(session_id: int):
    s = _session_or_404(session_id)
    rows = acts.minutes(g.db, s.id)
    return _no_store(Response(render_template("speakers/minutes.html", s=s, rows=rows, steps=acts.steps(g.db, s.id))))
