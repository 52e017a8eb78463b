"""Attendance pages: the clerk's live list (grouped by faction, quorum, corrections, CSV, print) and the
member's own status. Personal data: clerks see the list, a member only their own line.
Blueprint "presence", registered in create_app."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, flash, g, redirect, render_template, request, url_for

from appliance.presence import store
from appliance.sessions import service
from appliance.web import auth, i18n
from appliance.web.viewer import current_viewer

bp = Blueprint("presence", __name__)

i18n.register({
    "att.title": ("Anwesenheit", "Attendance"),
    "att.present": ("anwesend", "present"),
    "att.left": ("gegangen", "left"),
    "att.absent": ("nicht erschienen", "not come"),
    "att.quorum": ("Beschlussfähigkeit: {present} von {voting} stimmberechtigten Mitgliedern anwesend, "
                   "nötig sind {needed}.", "Quorum: {present} of {voting} voting members present, {needed} needed."),
    "att.quorum_ok": ("beschlussfähig", "quorate"),
    "att.quorum_no": ("nicht beschlussfähig", "not quorate"),
    "att.name": ("Name", "Name"),
    "att.status": ("Status", "Status"),
    "att.arrival": ("Erste Ankunft", "First arrival"),
    "att.leaving": ("Letztes Gehen", "Last leaving"),
    "att.duration": ("Anwesenheit", "Time present"),
    "att.devices": ("Geräte", "Devices"),
    "att.corrected": ("korrigiert", "corrected"),
    "att.correct": ("Korrigieren", "Correct"),
    "att.reason": ("Grund (wird protokolliert)", "Reason (recorded)"),
    "att.set_present": ("anwesend setzen", "set present"),
    "att.set_absent": ("abwesend setzen", "set absent"),
    "att.set_auto": ("automatisch (Geräte)", "automatic (devices)"),
    "att.csv": ("CSV herunterladen", "Download CSV"),
    "att.print": ("Druckansicht für die Niederschrift", "Printable page for the minutes"),
    "att.saved": ("Korrektur gespeichert.", "Correction saved."),
    "att.no_faction": ("ohne Fraktion", "no faction"),
    "att.mine_present": ("Sie sind als anwesend erfasst.", "You are recorded as present."),
    "att.mine_absent": ("Sie sind zurzeit nicht als anwesend erfasst.", "You are not recorded as present."),
    "att.count": ("{n} Mitglieder anwesend", "{n} members present"),
    "att.no_session": ("Keine aktive Sitzung.", "No active session."),
})


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
        return redirect(url_for("presence.attendance"))
    try:
        member_id = int(request.form.get("member_id", ""))
        member = service.get_member(g.db, member_id)
        if member.session_id != s.id:
            raise ValueError("Mitglied gehört nicht zur aktiven Sitzung.")
        status = request.form.get("status", "")
        if status not in ("present", "absent", "auto"):
            raise ValueError("Bitte anwesend, abwesend oder automatisch wählen.")
        store.correct(g.db, s.id, member_id, status, request.form.get("reason", ""), g.get("actor", "clerk"),
                      _grace())
    except (ValueError, LookupError) as exc:
        flash(str(exc) if str(exc) else "Ungültige Eingabe.", "error")
        return redirect(url_for("presence.attendance")), 303
    flash(i18n.t("att.saved"), "status")
    return redirect(url_for("presence.attendance"), 303)


@bp.get("/clerk/attendance.csv")
@auth.login_required
def attendance_csv():
    s = _active_or_none()
    if s is None:
        return redirect(url_for("presence.attendance"))
    body = "\ufeff" + store.to_csv(store.attendance(g.db, s.id))  # BOM: Excel opens UTF-8 correctly
    return Response(body, content_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="anwesenheit-{s.date}.csv"'})


@bp.get("/clerk/attendance/print")
@auth.login_required
def attendance_print():
    s = _active_or_none()
    if s is None:
        return redirect(url_for("presence.attendance"))
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
