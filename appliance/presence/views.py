"""Attendance pages: the clerk's live list (one table, sorted and filtered by GET links, the quorum status,
corrections, CSV and print for the minutes) and the member's own status. Personal data: clerks see the list,
a member only their own line. Blueprint "presence", registered in create_app.

Times are the box's configured local time (Config.timezone), texts come from the catalogs in the clerk's
language (German unless English was chosen): the CSV and the print page go into the minutes as they are."""

from __future__ import annotations

import time
from datetime import date

from flask import Blueprint, Response, current_app, flash, g, render_template, request

from appliance import csvexport
from appliance.presence import store
from appliance.sessions import service
from appliance.web import auth, forms, i18n, links
from appliance.web.viewer import current_viewer

bp = Blueprint("presence", __name__)


def _cfg():
    return current_app.config["SB"]


def _grace() -> float:
    return _cfg().presence_grace


def _active_or_none():
    return service.active_session(g.db)


def _rows(session_id: int, now: float) -> list[store.Row]:
    return store.attendance(g.db, session_id, now, _grace())


def _day(iso_day: str) -> str:
    try:
        return date.fromisoformat(iso_day).strftime("%d.%m.%Y")
    except ValueError:
        return iso_day


def _view_args() -> dict:
    """The list's order and filters from the query; anything unknown means the default (all, by name)."""
    sort = request.args.get("sort", "name")
    sort = sort if sort in store.SORTS else "name"
    status = request.args.get("status") or None
    status = status if status in store.STATUSES else None
    faction = request.args.get("faction")  # "" is a real filter value only as "-" (without a faction)
    faction = "" if faction == "-" else (faction or None)
    return {"sort": sort, "descending": request.args.get("order") == "desc", "faction": faction, "status": status}


def _helpers(tz: str, now: float) -> dict:
    def time_of(ts: float | None) -> str:
        return store.fmt_time(ts, tz)

    def seen_ago(ts: float) -> str:
        minutes = int(max(now - ts, 0) // 60)
        return i18n.t("att.seen_ago", minutes=minutes) if minutes else i18n.t("att.seen_just_now")

    return {"fmt_time": time_of, "fmt_duration": store.fmt_duration, "seen_ago": seen_ago,
            "stand": store.fmt_datetime(now, tz)}


@bp.get("/clerk/attendance")
@auth.login_required
def attendance():
    s = _active_or_none()
    if s is None:
        return render_template("live/attendance.html", session=None)
    now = time.time()
    rows = _rows(s.id, now)
    args = _view_args()
    if args["faction"] is not None and args["faction"] not in {r.faction for r in rows}:
        args["faction"] = None
    shown = store.arrange(rows, **args)
    # The faction as the links carry it: "-" for "without a faction", None for "all".
    faction_arg = "-" if args["faction"] == "" else args["faction"]
    return render_template("live/attendance.html", session=s, rows=shown, total=len(rows), quorum=store.quorum(rows),
                           members=store.arrange(rows), factions=store.factions(rows), statuses=store.STATUSES,
                           faction_arg=faction_arg, **args, **_helpers(_cfg().timezone, now))


@bp.post("/clerk/attendance/correct")
@auth.login_required
def correct():
    s = _active_or_none()
    if s is None:
        return links.redirect_to("presence.attendance")
    member_id = forms.row_id("member_id")  # a tampered form: 400 naming the field
    try:
        member = service.get_member(g.db, member_id)
        if member.session_id != s.id:
            raise ValueError(i18n.t("att.not_in_session"))
        status = request.form.get("status", "")
        if status not in ("present", "absent", "auto"):
            raise ValueError(i18n.t("att.pick_status"))
        store.correct(g.db, s.id, member_id, status, request.form.get("reason", ""), g.get("actor", "clerk"),
                      _grace())
    except (ValueError, LookupError) as exc:
        flash(str(exc) if str(exc) else i18n.t("form.invalid"), "error")
        return links.redirect_to("presence.attendance", _code=303)
    flash(i18n.t("att.saved"), "status")
    return links.redirect_to("presence.attendance", _code=303)


def correction_text(c: store.Correction, tz: str) -> str:
    """One correction as the minutes and the member read it: what the clerk set, when."""
    return i18n.t(f"att.corrected_{c.status}", time=store.fmt_time(c.at, tz))


@bp.get("/clerk/attendance.csv")
@auth.login_required
def attendance_csv():
    s = _active_or_none()
    if s is None:
        return links.redirect_to("presence.attendance")
    tz, now = _cfg().timezone, time.time()
    rows = store.arrange(_rows(s.id, now))
    header = [i18n.t("att.name"), i18n.t("att.faction"), i18n.t("att.role"), i18n.t("att.voting"),
              i18n.t("att.status"), i18n.t("att.arrival"), i18n.t("att.leaving"), i18n.t("att.duration_hm"),
              i18n.t("att.corrected_col"), i18n.t("att.corrections"), i18n.t("att.stand")]
    yes, no = i18n.t("att.yes"), i18n.t("att.no")
    stand = store.fmt_datetime(now, tz)
    body = csvexport.write(header, ([
        r.name, r.faction, i18n.t(f"role.{r.role}"), yes if r.voting else no, i18n.t(f"att.{r.status}"),
        store.fmt_time(r.first_arrival, tz), store.fmt_time(r.last_leaving, tz), store.fmt_duration(r.seconds_present),
        yes if r.corrected else no,
        " | ".join(f"{correction_text(c, tz)}: {c.reason}" for c in r.corrections), stand] for r in rows))
    filename = f"anwesenheit-{s.date}.csv"
    return Response(body, content_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@bp.get("/clerk/attendance/print")
@auth.login_required
def attendance_print():
    s = _active_or_none()
    if s is None:
        return links.redirect_to("presence.attendance")
    tz, now = _cfg().timezone, time.time()
    rows = store.arrange(_rows(s.id, now))
    notes = [(r, [correction_text(c, tz) + ": " + c.reason for c in r.corrections]) for r in rows if r.corrections]
    return render_template("live/attendance_print.html", session=s, day=_day(s.date), rows=rows,
                           quorum=store.quorum(rows), notes=notes, **_helpers(tz, now))


@bp.get("/presence/count")
def count():
    """For the room screen: the number of members present (no names)."""
    s = _active_or_none()
    n = store.present_count(g.db, s.id) if s else 0
    return {"count": n}


def my_status() -> dict | None:
    """The member's own status for their start page (None for non-members): present or not, and the clerk's
    latest correction of it ("Vom Sitzungsdienst als abwesend eingetragen um 19:42")."""
    v = current_viewer()
    if not v.is_member or v.session_id is None:
        return None
    mine = store.member_status(g.db, v.session_id, v.member.id)
    c = mine.correction
    return {"present": mine.present, "correction": correction_text(c, _cfg().timezone) if c else None}


@bp.app_context_processor
def _presence_globals() -> dict:
    return {"presence_mine": my_status}
