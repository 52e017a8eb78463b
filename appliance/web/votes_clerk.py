"""The clerk's votes page per session (issue 14): who stands in for whom, who is conflicted (befangen) on which item,
the body's may-change setting, votes entered by hand for members whose device failed, paper ballots counted by the
box, the list of the session's votes — and their minutes as print page, CSV and JSON. Blueprint "votes_clerk",
registered in create_app. (The members', the chair's and the room screen's vote pages are web.votes.)

Thin views: each POST calls exactly ONE act of appliance.usecases.votes as the clerk (`Viewer("clerk", N)`, the
audit actor of the login) and answers with a redirect (303) to the page and the act's German sentence as a note,
or — refused — with the page again, the act's German sentence in an alert and the form as it was sent; a refusal
writes nothing. A form that is not what the page offers (a missing field, a number that is no number) is the app's
German 400 naming the field (web.forms). Every page needs the clerk's login (auth.login_required) and every form
carries the session's CSRF token (csrf.protect), as on the other clerk pages.
"""

from __future__ import annotations

import time
from datetime import datetime
from itertools import zip_longest
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, abort, current_app, flash, g, render_template, request

from appliance.documents import service as documents
from appliance.rules import roles
from appliance.rules import votes as vr
from appliance.rules.viewer import Viewer
from appliance.sessions import service
from appliance.usecases import votes as acts
from appliance.web import auth, forms, links

bp = Blueprint("votes_clerk", __name__, url_prefix="/clerk/sessions/<int:session_id>")

FORBIDDEN = frozenset({"not_clerk", "not_chair"})
STATE = frozenset({"not_open", "closed", "vote_open", "still_open", "no_vote", "no_change", "absent_now",
                   "deputy_votes", "member_voted", "member_has_ballot", "stand_in_taken"})
PAPER_ROWS = 8  # empty rows the paper forms offer (a refused form comes back with its own rows)
MAX_ROWS = 200  # rows a paper form may send
NUMBER_DIGITS = 7  # more digits: no count the act accepts (it refuses above 100 000)
SEAT_KINDS = ("hare_niemeyer", "dhondt")
ELECTION_KINDS = ("election", "runoff")


def _now() -> float:
    return time.time()


@bp.app_template_filter("vote_time")
def vote_time(ts: float | None) -> str:
    """A time of the minutes in the council's zone (HH:MM:SS)."""
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, ZoneInfo(current_app.config["SB"].timezone)).strftime("%H:%M:%S")


def _no_store(resp: Response) -> Response:
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Pragma"] = "no-cache"
    return resp


def _session_or_404(session_id: int) -> service.Session:
    try:
        return service.get_session(g.db, session_id)
    except service.SessionError:
        abort(404)


def _clerk(session_id: int) -> tuple[service.Session, Viewer]:
    s = _session_or_404(session_id)
    return s, Viewer("clerk", s.id)


def _actor() -> str | None:
    return g.get("actor")


def _status(outcome: acts.Outcome) -> int:
    if outcome.code in FORBIDDEN:
        return 403
    return 409 if outcome.code in STATE else 422


# --- the page ---------------------------------------------------------------------------------------------


def _page(s: service.Session, *, error: str = "", where: str = "", status: int = 200) -> Response:
    """The votes page; refused: with the act's sentence and (paper ballots) the form as it was sent."""
    links.set_here("votes_clerk.page", session_id=s.id)
    now = _now()
    st = acts.state(g.db, s.id, now=now)
    rec = acts.records(g.db, s.id)
    people = sorted(service.members(g.db, s.id), key=lambda m: (m.name.casefold(), m.id))
    by_id = {m.id: m for m in people}
    current = st.current if st is not None else None
    running = current if current is not None and current.state == "open" else None
    sent = request.form if request.method == "POST" and where == "paper" else None  # refilled after a refusal
    raw_item = sent.get("item", "") if sent is not None else ""
    resp = Response(render_template(
        "clerk/votes.html", s=s, error=error, where=where, rec=rec, by_id=by_id, running=running,
        waiting=acts.waiting(g.db, s.id, running.id) if running else [],
        items=documents.items(g.db, s.id), deputies=[m for m in people if m.role == roles.DEPUTY],
        seats=[m for m in people if m.role == roles.MEMBER and m.voting],
        voters=[m for m in people if m.role in roles.QUORUM], people=people,
        votes=acts.votes(g.db, s.id), papers=acts.papers(g.db, s.id), rules=vr.RULES, bases=tuple(vr.BASES),
        sent=sent, sent_item=int(raw_item) if forms.is_row_id(raw_item) else None,
        current_item=(rec.current_item_id or 0) if rec else 0,
        rows=_sent_rows(sent) if sent is not None else [("", "")] * PAPER_ROWS), status)
    return _no_store(resp)


def _sent_rows(sent) -> list[tuple[str, str]]:
    pairs = list(zip_longest(sent.getlist("name")[:MAX_ROWS], sent.getlist("count")[:MAX_ROWS], fillvalue=""))
    return pairs + [("", "")] * max(0, PAPER_ROWS - len(pairs))


@bp.get("/abstimmungen")
@auth.login_required
def page(session_id: int):
    return _page(_session_or_404(session_id))


def _done(s: service.Session, outcome: acts.Outcome, where: str, anchor: str = ""):
    if not outcome:
        return _page(s, error=outcome.text, where=where, status=_status(outcome))
    flash(outcome.text, "ok")
    return links.redirect_to("votes_clerk.page", _code=303, session_id=s.id, _anchor=anchor or where)


def _optional_id(name: str) -> int | None:
    return forms.row_id(name) if request.form.get(name, "").strip() else None


def _flag(name: str) -> bool:
    value = request.form.get(name, "")
    if value not in ("0", "1"):
        raise forms.FieldError(name)
    return value == "1"


@bp.post("/abstimmungen/vertretung")
@auth.login_required
def deputy(session_id: int):
    """Record whom a deputy stands in for (an empty choice: nobody)."""
    s, clerk = _clerk(session_id)
    return _done(s, acts.set_deputy(g.db, clerk, s.id, forms.row_id("deputy"), _optional_id("member"), now=_now(),
                                    actor=_actor()), "deputies")


@bp.post("/abstimmungen/befangen")
@auth.login_required
def conflict(session_id: int):
    """Mark (conflicted=1) or unmark (0) a member as conflicted on an item (item 0: votes without item)."""
    s, clerk = _clerk(session_id)
    return _done(s, acts.set_conflicted(g.db, clerk, s.id, forms.row_id("item"), forms.row_id("member"),
                                        _flag("conflicted"), now=_now(), actor=_actor()), "conflicts")


@bp.post("/abstimmungen/aenderung")
@auth.login_required
def may_change(session_id: int):
    """The body's rule of procedure: may members change their vote until the close (allowed=1) or not (0)?"""
    s, clerk = _clerk(session_id)
    return _done(s, acts.set_may_change(g.db, clerk, s.body, _flag("allowed"), session_id=s.id, now=_now(),
                                        actor=_actor()), "setting")


@bp.post("/abstimmungen/hand")
@auth.login_required
def hand(session_id: int):
    """Enter a member's vote given by hand (their device failed); marked as entered by the clerk."""
    s, clerk = _clerk(session_id)
    choice = request.form.get("choice", "")
    return _done(s, acts.enter_by_hand(g.db, clerk, s.id, forms.row_id("vote"), forms.row_id("member"), choice,
                                       now=_now(), actor=_actor()), "running")


def _number(raw: str | None, blank: int = 0) -> int:
    """A count as typed; blank: `blank`; anything that is no count: -1, which the act refuses in German."""
    text = (raw or "").strip()
    if not text:
        return blank
    if text.isascii() and text.isdigit() and len(text) <= NUMBER_DIGITS:
        return int(text)
    return -1


def _counts() -> dict[str, int]:
    """The rows name/count of a paper form (rows left empty are skipped; a name twice is no form the page sends)."""
    out: dict[str, int] = {}
    names, numbers = request.form.getlist("name"), request.form.getlist("count")
    if len(names) > MAX_ROWS or len(numbers) > MAX_ROWS:
        raise forms.FieldError("name")
    for name, raw in zip_longest(names, numbers, fillvalue=""):
        key = " ".join(name.split())
        if not key and not raw.strip():
            continue
        if key in out:
            raise forms.FieldError("name")
        out[key] = _number(raw, blank=-1)
    return out


def _custom() -> vr.Custom | None:
    if request.form.get("rule", "") != "custom":
        return None
    return vr.Custom(_number(request.form.get("num")), _number(request.form.get("den")),
                     request.form.get("base", ""), request.form.get("strict", "") == "1")


@bp.post("/abstimmungen/stimmzettel")
@auth.login_required
def paper(session_id: int):
    """Enter what a ballot box gave: kind majority (yes/no/abstain under a rule), election or runoff (name and
    count rows, Nein), hare_niemeyer or dhondt (list and votes rows, seats). The box computes, step by step."""
    s, clerk = _clerk(session_id)
    kind = request.form.get("kind", "")
    outcome = acts.record_paper(
        g.db, clerk, s.id, kind, title=request.form.get("title", ""), now=_now(), counts=_counts(),
        yes=_number(request.form.get("yes")), no=_number(request.form.get("no")),
        abstain=_number(request.form.get("abstain")), rule=request.form.get("rule", "simple"), params=_custom(),
        seats=_number(request.form.get("seats")), item_id=_optional_id("item"), actor=_actor())
    return _done(s, outcome, "paper", f"paper-{outcome.vote_id}" if outcome else "")


# --- the minutes ------------------------------------------------------------------------------------------


@bp.get("/abstimmungen/protokoll")
@auth.login_required
def minutes_print(session_id: int):
    s = _session_or_404(session_id)
    return _no_store(Response(render_template("clerk/votes_minutes.html", s=s, m=acts.minutes(g.db, s.id))))


def _download(body: str, mimetype: str, name: str) -> Response:
    resp = Response(body, mimetype=mimetype)
    resp.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return _no_store(resp)


@bp.get("/abstimmungen.csv")
@auth.login_required
def minutes_csv(session_id: int):
    s = _session_or_404(session_id)
    body = acts.minutes_csv(acts.minutes(g.db, s.id), current_app.config["SB"].timezone)
    return _download(body, "text/csv", f"abstimmungen-{s.date}.csv")


@bp.get("/abstimmungen.json")
@auth.login_required
def minutes_json(session_id: int):
    s = _session_or_404(session_id)
    return _download(acts.minutes_json(acts.minutes(g.db, s.id)), "application/json", f"abstimmungen-{s.date}.json")
