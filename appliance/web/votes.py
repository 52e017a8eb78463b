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
from collections.abc import Callable

from flask import Blueprint, Response, abort, current_app, g, render_template, request, session

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


def _shown(v: acts.Vote | None, session_id: int, db=None) -> bool:
    """An open vote always; a finished one while the room is still on its item."""
    if v is None:
        return False
    return v.state == "open" or (v.item_id or None) == speakers.current_item_id(g.db if db is None else db,
                                                                                 session_id)


@bp.app_template_filter("vote_choice")
def vote_choice(choice: str | None) -> str:
    return i18n.t(f"votes.choice.{choice}") if choice in vr.CHOICES else i18n.t("votes.not_voted")


@bp.app_template_filter("vote_left")
def vote_left(closes_at: float | None) -> int | None:
    """Whole seconds until a countdown ends (0 once it ran out), None without a countdown."""
    return None if closes_at is None else max(0, int(closes_at - _now() + 0.999))


# --- the member's start page ------------------------------------------------------------------------------


def block_inputs(db, viewer: Viewer, now: float) -> dict | None:
    """What the member's block shows, read without Flask (member_context and appliance.web.fastpath): the vote to
    show (open, or the last one while the room is on its item), the member's own ballot and what they may do.
    None without a session or for a device not let through."""
    if viewer.session_id is None or viewer.kind not in ("member", "guest"):
        return None
    me = viewer.member.id if viewer.is_member and viewer.member is not None else None
    st = acts.state(db, viewer.session_id, now=now, member_id=me, public_only=me is None)
    if st is None:
        return None
    v = st.current if _shown(st.current, viewer.session_id, db) else None
    return {"v": v, "mine": st.mine if v is not None else None, "me": me}


def _block_context(inputs: dict, token: str, key: str, error: str) -> dict:
    return {**inputs, "token": token, "key": key, "error": error, "topics": MEMBER_TOPICS, "delay": MEMBER_DELAY_MS,
            "jitter": MEMBER_JITTER_MS, "choices": vr.CHOICES}


def member_context() -> dict | None:
    """For portal/_votes.html (block_inputs, and the form's token, a fresh idempotency key, a refusal)."""
    viewer = current_viewer()
    inputs = block_inputs(g.db, viewer, _now())
    if inputs is None:
        return None
    return _block_context(inputs, _token(viewer), secrets.token_hex(8), g.get("vote_error", ""))


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


def json_text(outcome: acts.Outcome) -> str:
    if outcome:
        body = {"ok": True, "choice": outcome.choice, "text": outcome.text, "vote_id": outcome.vote_id}
    else:
        body = {"ok": False, "code": outcome.code, "text": outcome.text}
    return json.dumps(body, separators=(",", ":"), sort_keys=True) + "\n"


def _json(outcome: acts.Outcome, status: int = 200) -> Response:
    return _no_store(Response(json_text(outcome), status=status, mimetype="application/json"))


def json_cast(db, viewer: Viewer, field: Callable[[str], str], expected_token: str, lang: str,
              now: float) -> tuple[acts.Outcome, int]:
    """The cast as a JSON client gets it (Accept: application/json), without Flask: shared by cast() and
    appliance.web.fastpath. field(name): the form field's first value, or ""."""
    if not expected_token or not hmac.compare_digest(field("csrf_token"), expected_token):
        return acts.Outcome(False, i18n.text(lang, "error.csrf"), "csrf"), 400
    try:
        vote_id, member_id = id_of(field("vote_id"), "vote_id"), id_of(field("member_id"), "member_id")
    except forms.FieldError:
        return acts.Outcome(False, i18n.text(lang, "votes.bad_field"), "field"), 400
    outcome = acts.cast(db, viewer, viewer.session_id or 0, vote_id, member_id, field("choice"), field("key"),
                        now=now)
    return outcome, 200 if outcome else _status(outcome)


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


# --- the block alone (GET /abstimmung): every phone refetches it when a vote opens or closes -------------------
#
# 300 phones ask within ~1.3 s of the opening, in the same workers as the casts. The page differs between them only
# in the member's situation (may they vote, what they chose, why not), the language and four values per request:
# the device-bound CSRF token, the fresh idempotency key, the member's id and, in demo mode, the device (`?as=`) in
# the links. So the rendered page is kept per situation with stand-ins for those four (BlockCache) and each request
# puts its own values in: what a phone gets is the page the template renders for it (tests/test_votes_fastpath.py
# compares both), without running the template 300 times. A vote with a countdown is never kept (its seconds).

STAND_IN = "sbxStandIn"  # the stand-ins' prefix: plain ASCII that neither Jinja nor url_for changes
STAND_INS = {"token": f"{STAND_IN}Token", "key": f"{STAND_IN}Key", "me": f"{STAND_IN}Me", "as": f"{STAND_IN}As"}
BLOCKS = "sitzungsbox.vote_blocks"  # app.extensions key of the app's BlockCache


class BlockCache:
    """Rendered blocks with stand-ins, by block_key; cleared whole when full (a vote has a handful of situations)."""

    MAX = 256

    def __init__(self) -> None:
        self._pages: dict[tuple, str] = {}
        self.hits = self.misses = 0

    def get(self, key: tuple) -> str | None:
        page = self._pages.get(key)
        if page is None:
            self.misses += 1
        else:
            self.hits += 1
        return page

    def put(self, key: tuple, page: str) -> None:
        if len(self._pages) >= self.MAX:
            self._pages.clear()
        self._pages[key] = page


def block_key(inputs: dict | None, lang: str, sticky: dict[str, str]) -> tuple | None:
    """What the block's page depends on besides the four per-request values; None: not to be kept (a countdown
    runs, or a text of the vote contains the stand-ins' prefix)."""
    links_state = tuple((k, STAND_INS["as"] if k == "as" else val) for k, val in sticky.items())
    if inputs is None:
        return (lang, links_state, None)
    v, mine = inputs["v"], inputs["mine"]
    if v is None:
        shown: object = None
    elif v.closes_at is not None:
        return None
    elif v.state == "open":  # the open block shows no count: casts by others do not change it
        shown = ("open", v.id, v.mode, v.question, v.item_title)
    else:
        shown = repr(v)  # finished: the whole result
    situation = None if mine is None else (mine.may, mine.reason, mine.choice, mine.by_clerk)
    if STAND_IN in repr((shown, situation)):
        return None
    return (lang, links_state, shown, situation, inputs["me"] is None)


def fill(page: str, token: str, key: str, me: int | None, as_: str | None) -> str:
    """A kept page with this request's values (none of them needs escaping: hex, digits, an IPv4 address)."""
    page = page.replace(STAND_INS["token"], token).replace(STAND_INS["key"], key)
    if me is not None:
        page = page.replace(STAND_INS["me"], str(me))
    if as_ is not None:
        page = page.replace(STAND_INS["as"], as_)
    return page


def _render_block(inputs: dict | None) -> str:
    """The block's page rendered with the stand-ins (inside the request)."""
    if inputs is None:
        return render_template("votes/member_live.html", votes_member=lambda: None)
    ctx = _block_context({**inputs, "me": STAND_INS["me"] if inputs["me"] is not None else None},
                         STAND_INS["token"], STAND_INS["key"], "")
    sticky = links.state()
    if "as" in sticky:
        g._link_state = {**sticky, "as": STAND_INS["as"]}
    try:
        return render_template("votes/member_live.html", votes_member=lambda: ctx)
    finally:
        g.pop("_link_state", None)


def blocks() -> BlockCache:
    return current_app.extensions.setdefault(BLOCKS, BlockCache())


@bp.get("/abstimmung")
def member_live():
    """The start page's Abstimmung block alone, for live-reload.js on every member's open start page."""
    viewer = member_viewer()
    inputs = block_inputs(g.db, viewer, _now())
    sticky = links.state()
    key = block_key(inputs, g.lang, sticky)
    if key is None:  # not to be kept: the template with this request's own values
        ctx = None if inputs is None else _block_context(inputs, _token(viewer), secrets.token_hex(8), "")
        return _no_store(Response(render_template("votes/member_live.html", votes_member=lambda: ctx)))
    cache = blocks()
    page = cache.get(key)
    if page is None:
        page = _render_block(inputs)
        cache.put(key, page)
    token = _token(viewer) if inputs is not None else ""
    me = inputs["me"] if inputs is not None else None
    return _no_store(Response(fill(page, token, secrets.token_hex(8), me, sticky.get("as"))))


ID = re.compile(r"[0-9]{1,19}")


def id_of(value: str, name: str) -> int:
    raw = value.strip()
    if not ID.fullmatch(raw) or int(raw) > forms.MAX_ID:
        raise forms.FieldError(name)
    return int(raw)


def _id_field(name: str) -> int:
    return id_of(request.form.get(name, ""), name)


@bp.post("/abstimmung")
@csrf.device_bound
def cast():
    """A member casts (or changes) their vote from their own device (the contract: module docstring)."""
    if _wants_json():
        # JSON: no redirect for a device not let through, the use case's refusal (not a member / no session) in
        # the answer. appliance.web.fastpath answers most of these before Flask, with the same json_cast.
        viewer = current_viewer()
        expected = session.get("csrf", "") if viewer.is_clerk else csrf.device_token(viewer.ip)
        outcome, status = json_cast(g.db, viewer, lambda name: request.form.get(name, ""), expected, g.lang, _now())
        return _json(outcome, status)
    # A page: a device not let through goes to the portal, as on every member page.
    viewer = member_viewer()
    if not _token_ok(viewer):
        abort(400, description="csrf")
    vote_id, member_id = _id_field("vote_id"), _id_field("member_id")
    choice = request.form.get("choice", "")
    key = request.form.get("key", "")
    outcome = acts.cast(g.db, viewer, viewer.session_id or 0, vote_id, member_id, choice, key, now=_now())
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
