"""Staff login, the web side, for every role (appliance.rules.login: the clerks' Sitzungsdienst, the technicians'
Technik, and whatever role comes next): one login view, one logout, one `required(role)` decorator.

Passwords, server-side sessions and the throttle (shared by all worker processes, in SQLite) are the use case's
(appliance.usecases.login); this module only reads the form, keeps the session id in the signed cookie under the
role's key, and renders the one login template.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from flask import Blueprint, current_app, g, redirect, render_template, request, session

from appliance.config import Config
from appliance.rules.login import CLERK, ROLES, TECHNICIAN, Role
from appliance.usecases import login as logins
from appliance.usecases.login import check_password, ensure_password, has_password, new_password, set_password
from appliance.web import i18n, links

__all__ = ["CLERK", "ROLES", "TECHNICIAN", "Role", "check_password", "ensure_password", "has_password",
           "is_logged_in", "login_required", "new_password", "register", "required", "safe_next", "set_password",
           "set_password_cmd", "technician_required"]

CLOCK = "SB_CLOCK"  # app.config key: the throttle's clock (epoch seconds); tests inject one, no sleeps


def set_password_cmd(cfg: Config, role: str = CLERK.name) -> int:
    """`sitzungsbox set-password [--role techniker]`: print a fresh password once, on the terminal only."""
    from appliance.store import open_db

    chosen = ROLES[role]
    db = open_db(cfg.db_path)
    try:
        password = new_password()
        set_password(db, password, actor="cli", role=chosen)
    finally:
        db.conn.close()
    print(f"Neues Passwort für {chosen.cli_label} (wird nur jetzt angezeigt – bitte sicher notieren):")
    print()
    print(f"    {password}")
    print()
    print(f"Anmeldung im Browser unter {chosen.login_path}. Alle bisherigen {chosen.cli_sessions} wurden beendet.")
    sys.stdout.flush()
    return 0


# --- Flask glue -------------------------------------------------------------------------------------------------


def is_logged_in(role: Role = CLERK) -> bool:
    return logins.session_valid(g.db, session.get(role.cookie_key), role)


def required(role: Role) -> Callable:
    """Decorator for a role's pages: without a valid session, to its login page (and back after it)."""
    def decorator(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            if not is_logged_in(role):
                if session.get(role.cookie_key):
                    session.pop(role.cookie_key, None)
                    session["login_note"] = "login.expired"
                wanted = None
                if request.method == "GET":
                    wanted = request.full_path if request.query_string else request.path
                return links.redirect_to(role.login_endpoint, next=wanted)
            g.actor = f"{role.actor}@{request.remote_addr or '?'}"
            return view(*args, **kwargs)

        return wrapped

    return decorator


login_required = required(CLERK)
technician_required = required(TECHNICIAN)


def safe_next(target: str | None, role: Role = CLERK) -> str:
    """Only the role's own pages: never an absolute or protocol-relative URL (open redirect), never the login."""
    fallback = links.link(role.home)
    if not target:
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith(role.area) or target.startswith("//") \
            or "\\" in target or parts.path.startswith(role.login_path):
        return fallback
    return target


def _clock() -> float:
    return current_app.config.get(CLOCK, time.time)()


def _login(role: Role):
    db = g.db
    ip = request.remote_addr or "?"
    error, status = None, 200
    note = session.pop("login_note", None)
    if request.method == "POST":
        result = logins.attempt(db, role, ip, request.form.get("password", ""), _clock(),
                                replaces=session.get(role.cookie_key))
        if result.ok:
            session.clear()  # session rotation: nothing from before the login survives, new CSRF token too
            session[role.cookie_key] = result.sid
            return redirect(safe_next(request.form.get("next"), role))
        error = i18n.t("login.throttled", seconds=result.wait) if result.wait else i18n.t("login.wrong")
        status = 429 if result.wait else 401
    elif is_logged_in(role):
        return redirect(safe_next(request.args.get("next"), role))
    return render_template(
        "auth/login.html", role=role, error=error, note=i18n.t(note) if note else None,
        has_password=has_password(db, role), next=request.values.get("next", ""),
    ), status


def _logout(role: Role):
    logins.end_session(g.db, session.get(role.cookie_key), role)
    session.pop(role.cookie_key, None)
    if not any(other.cookie_key in session for other in ROLES.values()):
        session.clear()  # signed out of everything: nothing of the session stays behind
    session["login_note"] = "logout.done"
    return links.redirect_to(role.login_endpoint)


def register(bp: Blueprint, role: Role = CLERK) -> None:
    """The role's /login and /logout on its blueprint (endpoints <blueprint>.login and .logout)."""
    if bp.name != role.blueprint:
        raise ValueError(f"role {role.name} logs in on blueprint {role.blueprint!r}, not {bp.name!r}")
    bp.add_url_rule("/login", "login", functools.partial(_login, role), methods=["GET", "POST"])
    bp.add_url_rule("/logout", "logout", functools.partial(_logout, role), methods=["POST"])


# Old names kept for callers outside the web layer's control (demo, venue, tests).
def has_tech_password(db) -> bool:
    return has_password(db, TECHNICIAN)


def set_tech_password(db, password: str, actor: str = "cli") -> None:
    set_password(db, password, actor, TECHNICIAN)
