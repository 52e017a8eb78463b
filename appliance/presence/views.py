"""Attendance pages: the clerk's live list (grouped by faction, quorum, corrections, CSV, print) and the
member's own status. Personal data: clerks see the list, a member only their own line.
Blueprint "presence", registered in create_app."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, flash, g, render_template, request

from appliance.presence import store
from appliance.sessions import service
from appliance.web import auth, forms, i18n, links
from appliance.web.viewer import current_viewer

bp = Blueprint("presence", __name__)


def _grace() -> float:
    return current_app.config["SB"].presence_grace


def _active_or_none():
    return service.active_session(g.db)


def _groups(rows: list[store.Row]) -> list[tuple[str, dict[str, list[store.Row]]]]:
    by: dict[str, dict[str, list[store.Row]]] = {}
    for r in rows:
        group = by.setdefault(r.faction or i18n.t("att.no_faction"), {"present": [], "left": [], "absent": []})
        group[r.status].append(r)
    return sorted(by.items())


@bp.get("/clerk/attendance")
@auth.login_required
def attendance():
    s = _active_or_none()
    if s is None:
        return render_template("live/attendance.html", session=None)
    rows = store.attendance(g.db, s.id)
    present, voting, needed = store.quorum(rows)
    return render_template("live/attendance.html", session=s, groups=_groups(rows), present=present,
                           voting=voting, needed=needed, members=rows, fmt_time=store.fmt_time,
                           fmt_duration=store.fmt_duration)


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


@bp.get("/clerk/attendance.csv")
@auth.login_required
def attendance_csv():
    s = _active_or_none()
    if s is None:
        return links.redirect_to("presence.attendance")
    body = "\ufeff" + store.to_csv(store.attendance(g.db, s.id))  # BOM: Excel opens UTF-8 correctly
    return Response(body, content_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="anwesenheit-{s.date}.csv"'})


@bp.get("/clerk/attendance/print")
@auth.login_required
def attendance_print():
    s = _active_or_none()
    if s is None:
        return links.redirect_to("presence.attendance")
    rows = store.attendance(g.db, s.id)
    return render_template("live/attendance_print.html", session=s, rows=rows, quorum=store.quorum(rows),
                           fmt_time=store.fmt_time, fmt_duration=store.fmt_duration)


@bp.get("/presence/count")
def count():
    """For the room screen: the number of members present (no names)."""
    s = _active_or_none()
    n = store.present_count(g.db, s.id) if s else 0
    return {"count": n}


def my_status() -> bool | None:
    """The member's own status for their start page (None for non-members)."""
    v = current_viewer()
    if not v.is_member or v.session_id is None:
        return None
    return any(r.member_id == v.member.id and r.status == "present" for r in store.attendance(g.db, v.session_id))


@bp.app_context_processor
def _presence_globals() -> dict:
    return {"presence_mine": my_status}
