"""The clerks' pages (Sitzungsdienst): sessions, member import, key cards, guest poster, key rotation, the room
screen's display links.

Thin views: the acts (activate, import, rotate) are usecases.sessions, the same functions the command line
calls; sessions.service reads, captive.qr/cards_pdf draw. Activation and key renewal affect the room: each
shows its confirmation page first (web.guard, the one pattern of every guarded act).
Every page needs a login (auth.login_required); every form carries the session CSRF token.
"""

from __future__ import annotations

import importlib
import itertools
import re
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, abort, current_app, flash, g, render_template, request
from markupsafe import Markup

from appliance.captive import codes, keys, qr
from appliance.config import Config
from appliance.rules import guard as rules_guard
from appliance.rules import roles as rules_roles
from appliance.sessions import roster, service
from appliance.usecases import displays as display_acts
from appliance.usecases import impact as count
from appliance.usecases import sessions as acts
from appliance.usecases import speakers as speakers_acts
from appliance.web import auth, csrf, guard, i18n, links

if TYPE_CHECKING:
    from appliance.captive import cards_pdf


def _cards():  # noqa: ANN202 - the module
    """The card printer, imported on first use: fpdf2 and fontTools are ~22 MB and 0.16 s of CPU in every web
    worker, and only the clerk's card pages need them."""
    return importlib.import_module("appliance.captive.cards_pdf")

bp = Blueprint("clerk", __name__, url_prefix="/clerk")
auth.register(bp)

MAX_CSV = roster.MAX_BYTES


@bp.app_context_processor
def _clerk_globals() -> dict:
    # Every template may render a form; the token is created on first use and kept in the session.
    return {"csrf_token": csrf.session_token}


def _cfg() -> Config:
    return current_app.config["SB"]


def no_store(resp: Response) -> Response:
    """Pages and files with keys must not stay in a browser or proxy cache."""
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Pragma"] = "no-cache"
    return resp


def _session_or_404(session_id: int) -> service.Session:
    try:
        return service.get_session(g.db, session_id)
    except service.SessionError:
        abort(404)


def normalize_day(text: str) -> str:
    """Accept German TT.MM.JJJJ besides ISO; anything else goes to the service, which names the problem."""
    text = text.strip()
    m = re.fullmatch(r"(\d{1,2})\.(\d{1,2})\.(\d{4})", text)
    if m:
        return f"{m.group(3)}-{int(m.group(2)):02d}-{int(m.group(1)):02d}"
    return text


def german_date(day: str) -> str:
    try:
        return date.fromisoformat(day).strftime("%d.%m.%Y")
    except ValueError:
        return day


def box_addresses(cfg: Config) -> tuple[str, str]:
    return f"http://{cfg.hostname}.local", f"http://{cfg.address}"


def session_line(s: service.Session) -> str:
    parts = [f"{s.body} – {s.title}", german_date(s.date)]
    if s.venue:
        parts.append(s.venue)
    return ", ".join(parts)


# --- sessions ---------------------------------------------------------------------------------


@bp.get("/")
@auth.login_required
def index():
    return links.redirect_to("clerk.sessions")


@bp.route("/sessions", methods=["GET", "POST"])
@auth.login_required
def sessions():
    problems: list[str] = []
    form = {"body": "", "title": "", "date": "", "venue": ""}
    status = 200
    if request.method == "POST":
        form = {k: request.form.get(k, "") for k in form}
        try:
            s = service.create_session(g.db, body=form["body"], title=form["title"], day=normalize_day(form["date"]),
                                       venue=form["venue"], ssid=_cfg().ssid, actor=g.actor)
        except service.SessionError as exc:
            problems = [p.strip() for p in str(exc).split(";") if p.strip()]
            status = 422
        else:
            flash(i18n.t("clerk.created", title=s.title, ssid=s.ssid), "ok")
            return links.redirect_to("clerk.session_page", session_id=s.id)
    rows = service.list_sessions(g.db)
    counts = {r["session_id"]: r["n"] for r in g.db.query(
        "SELECT session_id, COUNT(*) AS n FROM members GROUP BY session_id")}
    return render_template("clerk/sessions.html", sessions=rows, counts=counts, problems=problems, form=form,
                           german_date=german_date), status


@dataclass(frozen=True)
class FactionGroup:
    name: str
    members: list[service.Member]


def group_by_faction(members: list[service.Member]) -> list[FactionGroup]:
    ordered = sorted(members, key=lambda m: (m.faction == "", m.faction.casefold(), m.name.casefold()))
    return [FactionGroup(name, list(group)) for name, group in itertools.groupby(ordered, key=lambda m: m.faction)]


def _render_session(s: service.Session, *, import_problems: list[str] | None = None, status: int = 200,
                    display_problem: str = ""):
    links.set_here("clerk.session_page", session_id=s.id)  # also the answer to a refused import
    people = service.members(g.db, s.id)
    roles = Counter(m.role for m in people)
    return render_template(
        "clerk/session.html", s=s, groups=group_by_faction(people), total=len(people),
        voting=sum(1 for m in people if m.voting), roles=roles, import_problems=import_problems or [],
        german_date=german_date, displays=display_acts.for_session(g.db, s.id), local_time=local_time,
        display_problem=display_problem, chair_candidates=[m for m in people if m.role in rules_roles.CHAIR],
        chair_id=getattr(speakers_acts.state(g.db, s.id, now=time.time()), "chair_member_id", None),
    ), status


def local_time(stamp: str | None) -> str:
    """A stored UTC time (store.db.now) as the council's local date and time, '' for none."""
    if not stamp:
        return ""
    try:
        at = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return stamp
    return at.astimezone(ZoneInfo(_cfg().timezone)).strftime("%d.%m.%Y %H:%M")


@bp.get("/sessions/<int:session_id>")
@auth.login_required
def session_page(session_id: int):
    return _render_session(_session_or_404(session_id))


def _flash_result(result: acts.ActResult, ok_text: str) -> None:
    flash(ok_text, "ok")
    for message in result.errors:
        flash(i18n.t("clerk.keys.warning", msg=message), "error")


def _guarded(act: str, s: service.Session, endpoint: str):
    """The confirmation of `act` (web.guard): None when this POST confirms it, else the page to answer."""
    return guard.confirmed(count.of(g.db, act, s.id), action=links.link(endpoint, session_id=s.id),
                           back=links.link("clerk.session_page", session_id=s.id))


@bp.route("/sessions/<int:session_id>/activate", methods=["GET", "POST"])
@auth.login_required
def activate(session_id: int):
    refused = _guarded(rules_guard.ACTIVATE, _session_or_404(session_id), "clerk.activate")
    if refused is not None:
        return refused
    result = acts.activate_session(_cfg(), g.db, current_app.config["SB_HELPER"], session_id, actor=g.actor)
    _flash_result(result, i18n.t("clerk.session.activated", id=session_id))
    return links.redirect_to("clerk.session_page", session_id=session_id)


@bp.post("/sessions/<int:session_id>/import")
@auth.login_required
def import_csv(session_id: int):
    s = _session_or_404(session_id)
    upload = request.files.get("csv")
    if upload is None or not upload.filename:
        return _render_session(s, import_problems=[i18n.t("clerk.import.no_file")], status=422)
    data = upload.stream.read(MAX_CSV + 1)
    if len(data) > MAX_CSV:
        return _render_session(s, import_problems=[i18n.t("clerk.import.too_big")], status=413)
    try:
        result = acts.import_members(_cfg(), g.db, current_app.config["SB_HELPER"], session_id, data, actor=g.actor)
    except roster.RosterError as exc:
        return _render_session(s, import_problems=exc.problems, status=422)
    except service.SessionError as exc:
        return _render_session(s, import_problems=[str(exc)], status=422)
    _flash_result(result, i18n.t("clerk.import.done", n=result.count))
    return links.redirect_to("clerk.session_page", session_id=session_id)


# --- cards ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CardView:
    member: service.Member
    payload: str
    svg: Markup
    code: str = ""  # personal code as printed (captive.codes.display)


def _card_texts(cfg: Config, ssid: str) -> tuple[str, ...]:
    return (
        i18n.t("clerk.card.step1"),
        i18n.t("clerk.card.step2", ssid=ssid),
        i18n.t("clerk.card.step3", url=box_addresses(cfg)[0]),
        i18n.t("clerk.card.personal"),
        i18n.t("clerk.card.code_hint"),
    )


def _pdf_instructions(texts: tuple[str, ...]) -> tuple[str, ...]:
    """The steps, the code hint (the fourth step), then the note that the card is personal."""
    return (*texts[:3], *texts[4:], texts[3])


def _member_card(s: service.Session, m: service.Member) -> cards_pdf.Card:
    cfg = _cfg()
    faction = " · ".join(p for p in (m.faction, i18n.t(f"role.{m.role}")) if p)
    return _cards().Card(
        name=m.name, faction=faction, session_line=session_line(s), ssid=s.ssid, key=m.passphrase,
        payload=keys.wifi_payload(s.ssid, m.passphrase), addresses=box_addresses(cfg),
        instructions=_pdf_instructions(_card_texts(cfg, s.ssid)), heading=i18n.t("clerk.card.heading"),
        ssid_label=i18n.t("clerk.card.ssid"), key_label=i18n.t("clerk.card.key"),
        address_label=i18n.t("clerk.card.box"), code=codes.display(m.code),
        code_label=i18n.t("clerk.card.code"), glyph_notice=i18n.t("clerk.card.glyph_notice"),
    )


def _guest_card(s: service.Session) -> cards_pdf.Card:
    """The guest poster as a card: the guest key for guests and press, no name, no personal code."""
    return _cards().Card(
        name=i18n.t("clerk.poster.title"), faction="", session_line=session_line(s), ssid=s.ssid, key=s.guest_key,
        payload=keys.wifi_payload(s.ssid, s.guest_key), addresses=box_addresses(_cfg()),
        instructions=(i18n.t("clerk.poster.text"),), heading="", ssid_label=i18n.t("clerk.card.ssid"),
        key_label=i18n.t("clerk.card.key"), address_label=i18n.t("clerk.card.box"),
        glyph_notice=i18n.t("clerk.card.glyph_notice"),
    )


@bp.get("/sessions/<int:session_id>/cards")
@auth.login_required
def cards(session_id: int):
    s = _session_or_404(session_id)
    people = service.members(g.db, session_id)
    views = []
    for m in sorted(people, key=lambda m: (m.faction.casefold(), m.name.casefold())):
        payload = keys.wifi_payload(s.ssid, m.passphrase)
        # qr.svg escapes the label itself; the markup is ours, so Markup() is safe here.
        svg = Markup(qr.svg(payload, i18n.t("clerk.card.qr_label", name=m.name)))  # noqa: S704
        views.append(CardView(m, payload, svg, codes.display(m.code)))
    cfg = _cfg()
    return no_store(Response(render_template(
        "clerk/cards.html", s=s, cards=views, addresses=box_addresses(cfg), steps=_card_texts(cfg, s.ssid),
        session_line=session_line(s))))


@bp.get("/sessions/<int:session_id>/guest-poster")
@auth.login_required
def guest_poster(session_id: int):
    s = _session_or_404(session_id)
    payload = keys.wifi_payload(s.ssid, s.guest_key)
    svg = Markup(qr.svg(payload, i18n.t("clerk.poster.qr_label"), css_class="qr qr-poster"))  # noqa: S704
    return no_store(Response(render_template(
        "clerk/poster.html", s=s, svg=svg, addresses=box_addresses(_cfg()), session_line=session_line(s))))


def _member_of(session_id: int, member_id: int) -> service.Member:
    try:
        m = service.get_member(g.db, member_id)
    except service.SessionError:
        abort(404)
    if m.session_id != session_id:
        abort(404)
    return m


def _people(session_id: int) -> list[service.Member]:
    """In the order of the HTML card sheet: by faction, then name."""
    return sorted(service.members(g.db, session_id), key=lambda m: (m.faction.casefold(), m.name.casefold()))


def _pdf(build, mimetype: str, disposition: str) -> Response:
    """A PDF (or ZIP of PDFs) built now; without its font the box answers 503 with what to install."""
    try:
        resp = Response(build(), mimetype=mimetype)
    except _cards().FontMissing as exc:
        return no_store(Response(str(exc), status=503, mimetype="text/plain"))
    resp.headers["Content-Disposition"] = disposition
    return no_store(resp)


def _pdf_name(m: service.Member) -> str:
    return _cards().safe_filename(f"{m.id:04d} {m.name}")


@bp.get("/sessions/<int:session_id>/members/<int:member_id>/card.pdf")
@auth.login_required
def card_pdf(session_id: int, member_id: int):
    s = _session_or_404(session_id)
    m = _member_of(session_id, member_id)
    return _pdf(lambda: _cards().card_pdf(_member_card(s, m)), "application/pdf",
                f'inline; filename="wlan-karte-{_pdf_name(m)}"')


@bp.get("/sessions/<int:session_id>/cards.zip")
@auth.login_required
def cards_zip(session_id: int):
    s = _session_or_404(session_id)
    people = _people(session_id)
    return _pdf(lambda: _cards().cards_zip(_each_card_pdf(s, people)),
                "application/zip", f'attachment; filename="wlan-karten-sitzung-{s.id}.zip"')


def _each_card_pdf(s: service.Session, people: list[service.Member]):
    for m in people:
        yield _pdf_name(m), _cards().card_pdf(_member_card(s, m))
        # A card is ~0.1 s of CPU (font subsetting; more on a Pi): under gunicorn's gevent worker (time is
        # patched) sleep(0) lets the other requests and the push streams run between two cards.
        time.sleep(0)


@bp.get("/sessions/<int:session_id>/cards.pdf")
@auth.login_required
def cards_sheet(session_id: int):
    s = _session_or_404(session_id)
    people = _people(session_id)
    return _pdf(lambda: _cards().sheet_pdf([_member_card(s, m) for m in people], title=session_line(s),
                                            guest=_guest_card(s)),
                "application/pdf", f'inline; filename="wlan-karten-sitzung-{s.id}.pdf"')


@bp.get("/sessions/<int:session_id>/guest-poster.pdf")
@auth.login_required
def guest_poster_pdf(session_id: int):
    s = _session_or_404(session_id)
    return _pdf(lambda: _cards().poster_pdf(_guest_card(s)), "application/pdf",
                f'inline; filename="wlan-gaeste-sitzung-{s.id}.pdf"')


# --- key rotation -----------------------------------------------------------------------------


@bp.route("/sessions/<int:session_id>/rotate", methods=["GET", "POST"])
@auth.login_required
def rotate(session_id: int):
    refused = _guarded(rules_guard.ROTATE, _session_or_404(session_id), "clerk.rotate")
    if refused is not None:
        return refused
    result = acts.rotate_keys(_cfg(), g.db, current_app.config["SB_HELPER"], session_id, actor=g.actor)
    flash(result.message(), "ok" if result.ok else "error")
    return links.redirect_to("clerk.session_page", session_id=session_id)


# --- display links for the room screen (issue 13) ----------------------------------------------------------------


@bp.post("/sessions/<int:session_id>/displays")
@auth.login_required
def display_create(session_id: int):
    """A new display link: shown once on the page this POST answers (only its hash is kept), never redirected
    through the cookie session."""
    s = _session_or_404(session_id)
    try:
        display, token = display_acts.create_display(_cfg(), g.db, s.id, g.actor, request.form.get("label", ""))
    except display_acts.DisplayError as exc:
        return _render_session(s, display_problem=str(exc), status=422)
    links.set_here("clerk.session_page", session_id=s.id)
    path = links.bare("saal.screen", token=token)
    urls = [base + path for base in box_addresses(_cfg())]
    svg = Markup(qr.svg(urls[1], i18n.t("clerk.display.qr_label")))  # noqa: S704 - qr.svg escapes its label
    return no_store(Response(render_template("clerk/display_created.html", s=s, display=display, urls=urls,
                                             path=path, svg=svg)))


@bp.post("/sessions/<int:session_id>/displays/<int:display_id>/revoke")
@auth.login_required
def display_revoke(session_id: int, display_id: int):
    s = _session_or_404(session_id)
    display = display_acts.get(g.db, display_id)
    if display is None or display.session_id != s.id:
        abort(404)
    display_acts.revoke_display(_cfg(), g.db, display_id, g.actor)
    flash(i18n.t("clerk.display.revoked_done", name=display.label or i18n.t("clerk.display.unnamed", id=display.id)),
          "ok")
    return links.redirect_to("clerk.session_page", session_id=s.id, _anchor="displays")
