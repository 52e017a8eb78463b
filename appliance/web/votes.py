"""Votes in the browser (issue 14): the members' Abstimmung block on their start page, the chair's vote panel on the
console (`/vorsitz`) and the vote on the room screen (`/saal/<token>`). Blueprint "votes", registered in create_app.

Thin views, as appliance.web.speakers: each POST calls exactly ONE act of appliance.usecases.votes and answers with
a redirect (303), or — refused — with the page again and the act's German sentence (`Outcome.text`) in an alert; a
refusal writes nothing. Every page is plain HTML forms (no JavaScript, no cookie, no new tab needed); with
JavaScript, static/js/live-reload.js refetches the live parts when the push channel says so.

The member's cast, a contract the load benchmark and the venue test rely on:
    POST /abstimmung (votes.cast), form fields csrf_token (the device-bound token), vote_id, member_id (the
    member the form was drawn for: the use case refuses another member's id, not_own), choice (yes|no|abstain),
    key (the idempotency key: a fresh random one per rendered form; a retry with the same key is counted once).
    Done: 303 to /#abstimmung. Refused: the start page with the German sentence, 403 for guest / not_member /
    not_own, 409 for everything else; a wrong CSRF token 400. With `Accept: application/json`: 200
    {"ok": true, "choice", "text", "vote_id"} or the same status with {"ok": false, "code", "text"}.
Who casts is whoever current_viewer() resolves (the device's personal key), never the form.

Push: `votes.changed` (audience all) refetches every page's vote part; `votes.progress` (clerks, each room screen,
the chair) refetches only the count on the console and the room screen. Members' phones refetch with a delay and a
random jitter (data-live-delay, data-live-jitter) so that 300 phones do not ask in the same instant; the console
and the room screen refetch at once (the result is on the screen within a second of the close).

What the room screen shows comes from `state(public_only=True)`: while a vote is open only how many have voted,
never a tally (the use case has none before the close); after the close the counts, per faction, the result and
for named votes each member's vote. A finished vote stays on the screen and on the start page while the room is on
its item.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
import time

from flask import Blueprint, Response, abort, g, render_template, request, session

from appliance.rules import roles
from appliance.rules import votes as vr
from appliance.rules.viewer import Viewer
from appliance.sessions import service
from appliance.usecases import speakers
from appliance.usecases import votes as acts
from appliance.web import csrf, forms, i18n, links
from appliance.web.viewer import current_viewer, member_viewer

bp = Blueprint("votes", __name__)

MEMBER_TOPICS = acts.CHANGED  # a member's phone: open, close, cancel, countdown, repeat (never each cast)
COUNT_TOPICS = f"{acts.CHANGED} {acts.PROGRESS}"  # the console's and the room screen's count
FORBIDDEN = frozenset({"guest", "not_member", "not_own", "not_chair", "not_clerk"})  # refusals answered with 403
COUNTDOWNS = (10, 30)  # the console's countdown buttons, seconds
MEMBER_DELAY_MS, MEMBER_JITTER_MS = 200, 1300  # a phone refetches 0.2–1.5 s after votes.changed


def _now() -> float:
    return time.time()


def _status(outcome: acts.Outcome) -> int:
    return 403 if outcome.code in FORBIDDEN else 409


def _no_store(resp: Response) -> Response:
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _token(viewer: Viewer) -> str:
    return csrf.session_token() if viewer.is_clerk else csrf.device_token(viewer.ip)


def _token_ok(viewer: Viewer) -> bool:
    """Clerks: the session token; devices (no cookies in captive mini-browsers): the device-bound one."""
    sent = request.form.get("csrf_token", "")
    expected = session.get("csrf", "") if viewer.is_clerk else csrf.device_token(viewer.ip)
    return bool(expected) and hmac.compare_digest(sent, expected)


def _check_token(viewer: Viewer) -> None:
    if not _token_ok(viewer):
        abort(400, description="csrf")


def _shown(v: acts.Vote | None, session_id: int) -> bool:
    """An open vote always; a finished one while the room is still on its item."""
    if v is None:
        return False
    return v.state == "open" or (v.item_id or None) == speakers.current_item_id(g.db, session_id)


@bp.app_template_filter("vote_choice")
def vote_choice(choice: str | None) -> str:
    return i18n.t(f"votes.choice.{choice}") if choice in vr.CHOICES else i18n.t("votes.not_voted")


@bp.app_template_filter("vote_left")
def vote_left(closes_at: float | None) -> int | None:
    """Whole seconds until a countdown ends (0 once it ran out), None without a countdown."""
    return None if closes_at is None else max(0, int(closes_at - _now() + 0.999))


# --- the member's start page ------------------------------------------------------------------------------


def member_context() -> dict | None:
    """For portal/_votes.html: the vote to show (open, or the last one while the room is on its item), the
    member's own ballot and what they may do. None without a session or for a device not let through."""
    viewer = current_viewer()
    if viewer.session_id is None or viewer.kind not in ("member", "guest"):
        return None
    me = viewer.member.id if viewer.is_member and viewer.member is not None else None
    st = acts.state(g.db, viewer.session_id, now=_now(), member_id=me, public_only=me is None)
    if st is None:
        return None
    v = st.current if _shown(st.current, viewer.session_id) else None
    return {"v": v, "mine": st.mine if v is not None else None, "me": me, "token": _token(viewer),
            "key": secrets.token_hex(8), "error": g.get("vote_error", ""), "topics": MEMBER_TOPICS,
            "delay": MEMBER_DELAY_MS, "jitter": MEMBER_JITTER_MS, "choices": vr.CHOICES}


def console_context() -> dict | None:
    """For votes/_console.html inside the chair's console (speakers/console.html): the current vote (open, else
    the last one), the item the room is on, the people who may be marked conflicted on it."""
    viewer = current_viewer()
    sid = viewer.session_id
    if sid is None:
        return None
    st = acts.state(g.db, sid, now=_now())
    if st is None:
        return None
    item_id = speakers.current_item_id(g.db, sid)
    room = speakers.state(g.db, sid, now=_now()).current_item
    question = (room.title if room is not None else "") or ""
    people = [m for m in service.members(g.db, sid) if m.role in (roles.MEMBER, roles.DEPUTY)]
    return {"v": st.current, "now": st.now, "token": _token(viewer), "error": g.get("vote_error", ""),
            "topics": acts.CHANGED, "count_topics": COUNT_TOPICS, "question": question, "item_id": item_id or "",
            "room": room, "people": people, "modes": acts.MODES, "rules": vr.RULES, "bases": tuple(vr.BASES),
            "countdowns": COUNTDOWNS}


def screen_context(session_id: int) -> acts.Vote | None:
    """For saal/_votes.html: the vote the hall may see (state with public_only: no question, title or names on a
    non-public item; no tally before the close), or None."""
    st = acts.state(g.db, session_id, now=_now(), public_only=True)
    if st is None or not _shown(st.current, session_id):
        return None
    return st.current


@bp.app_context_processor
def _globals() -> dict:
    return {"votes_member": member_context, "votes_console": console_context, "votes_screen": screen_context}


def _wants_json() -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _json(outcome: acts.Outcome, status: int = 200) -> Response:
    if outcome:
        body = {"ok": True, "choice": outcome.choice, "text": outcome.text, "vote_id": outcome.vote_id}
    else:
        body = {"ok": False, "code": outcome.code, "text": outcome.text}
    return _no_store(Response(json.dumps(body, separators=(",", ":"), sort_keys=True) + "\n",
                              status=status, mimetype="application/json"))


def _home_again(outcome: acts.Outcome) -> tuple[str, int]:
    """The start page with the refusal in its Abstimmung block."""
    from appliance.web import portal

    if current_viewer().is_clerk:  # a clerk's login has no start page with a vote block: the sentence alone
        code = _status(outcome)
        return render_template("error.html", message=outcome.text, code=code), code
    links.set_here("portal.home")
    g.vote_error = outcome.text  # member_context() puts it into the block
    s = service.active_session(g.db)
    return render_template("portal/home.html", session=s, device=portal._device(),
                           portal_url=links.link("portal.portal")), _status(outcome)


@bp.get("/abstimmung")
def member_live():
    """The start page's Abstimmung block alone, for live-reload.js on every member's open start page."""
    member_viewer()
    return _no_store(Response(render_template("votes/member_live.html")))


ID = re.compile(r"[0-9]{1,19}")


def _id_field(name: str) -> int:
    raw = request.form.get(name, "").strip()
    if not ID.fullmatch(raw) or int(raw) > forms.MAX_ID:
        raise forms.FieldError(name)
    return int(raw)


@bp.post("/abstimmung")
@csrf.device_bound
def cast():
    """A member casts (or changes) their vote from their own device (the contract: module docstring)."""
    as_json = _wants_json()
    # A page: a device not let through goes to the portal, as on every member page. JSON: no redirect, the use
    # case's refusal (not a member / no session) in the answer.
    viewer = current_viewer() if as_json else member_viewer()
    if not _token_ok(viewer):
        if as_json:
            return _json(acts.Outcome(False, i18n.t("error.csrf"), "csrf"), 400)
        abort(400, description="csrf")
    try:
        vote_id, member_id = _id_field("vote_id"), _id_field("member_id")
    except forms.FieldError as exc:
        if as_json:
            return _json(acts.Outcome(False, i18n.t("votes.bad_field"), "field"), 400)
        raise exc
    choice = request.form.get("choice", "")
    key = request.form.get("key", "")
    outcome = acts.cast(g.db, viewer, viewer.session_id or 0, vote_id, member_id, choice, key, now=_now())
    if as_json:
        return _json(outcome, 200 if outcome else _status(outcome))
    if not outcome:
        return _home_again(outcome)
    return links.redirect_to("portal.home", _code=303, _anchor="abstimmung")


# --- the chair's console ----------------------------------------------------------------------------------


def _act() -> tuple[Viewer, int]:
    from appliance.web import speakers as speakers_web

    viewer = speakers_web._chair_viewer()
    _check_token(viewer)
    return viewer, viewer.session_id or 0


def _done(viewer: Viewer, outcome: acts.Outcome):
    if not outcome:
        from appliance.web import speakers as speakers_web

        g.vote_error = outcome.text  # console_context() puts it into the vote panel
        return speakers_web._console(viewer, "", _status(outcome))
    return links.redirect_to("speakers.console", _code=303, _anchor="abstimmung")


def _small_int(name: str, digits: int = 4) -> int:
    raw = request.form.get(name, "").strip()
    if not re.fullmatch(rf"[0-9]{{1,{digits}}}", raw):
        raise forms.FieldError(name)
    return int(raw)


def _actor() -> str | None:
    return g.get("actor")


@bp.post("/vorsitz/abstimmung")
@csrf.device_bound
def open_vote():
    """Open a vote on the room's item: question, mode (open / named), rule (a preset, or custom with num/den of
    the base, strict: more than)."""
    viewer, sid = _act()
    mode = request.form.get("mode", "open")
    rule = request.form.get("rule", "simple")
    if mode not in acts.MODES:
        raise forms.FieldError("mode")
    if rule not in vr.RULES:
        raise forms.FieldError("rule")
    params = None
    if rule == "custom":
        base = request.form.get("base", "cast")
        if base not in vr.BASES:
            raise forms.FieldError("base")
        strict = request.form.get("strict", "")
        if strict not in ("", "0", "1"):
            raise forms.FieldError("strict")
        params = vr.Custom(_small_int("num"), _small_int("den"), base, strict == "1")
    return _done(viewer, acts.open_vote(g.db, viewer, sid, question=request.form.get("question", ""), now=_now(),
                                        mode=mode, rule=rule, params=params, actor=_actor()))


@bp.post("/vorsitz/abstimmung/countdown")
@csrf.device_bound
def countdown():
    """Close the open vote in `seconds`."""
    viewer, sid = _act()
    return _done(viewer, acts.set_countdown(g.db, viewer, sid, _small_int("seconds"), now=_now(), actor=_actor()))


@bp.post("/vorsitz/abstimmung/schliessen")
@csrf.device_bound
def close():
    """Close the vote the form was drawn for, now."""
    viewer, sid = _act()
    return _done(viewer, acts.close_vote(g.db, viewer, sid, now=_now(), vote_id=_id_field("vote"), actor=_actor()))


@bp.post("/vorsitz/abstimmung/abbrechen")
@csrf.device_bound
def cancel():
    """Cancel the vote the form was drawn for (a reason for the minutes)."""
    viewer, sid = _act()
    return _done(viewer, acts.cancel_vote(g.db, viewer, sid, now=_now(), reason=request.form.get("reason", ""),
                                          vote_id=_id_field("vote"), actor=_actor()))


@bp.post("/vorsitz/abstimmung/wiederholen")
@csrf.device_bound
def repeat():
    """Open a closed or cancelled vote again (both attempts stay in the minutes)."""
    viewer, sid = _act()
    return _done(viewer, acts.repeat_vote(g.db, viewer, sid, _id_field("vote"), now=_now(), actor=_actor()))


@bp.post("/vorsitz/abstimmung/befangen")
@csrf.device_bound
def conflicted():
    """Mark a member conflicted (conflicted=1) or no longer (0) on the item the form was drawn for (empty: the
    votes without an item)."""
    viewer, sid = _act()
    flag = request.form.get("conflicted", "")
    if flag not in ("0", "1"):
        raise forms.FieldError("conflicted")
    item = _id_field("item") if request.form.get("item", "").strip() else None
    return _done(viewer, acts.set_conflicted(g.db, viewer, sid, item, _id_field("member"), flag == "1", now=_now(),
                                             actor=_actor()))
