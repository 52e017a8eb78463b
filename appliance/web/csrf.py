"""CSRF protection for every POST.

Clerks keep a normal cookie session: a random token lives in it and in each form.
Phones in captive mini-browsers keep no cookies: their forms carry a token bound by HMAC to the
device's IP address, so a form can only be replayed by the same device it was served to.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from flask import abort, current_app, request, session

EXEMPT_ATTR = "_csrf_device_bound"


def session_token() -> str:
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def device_token(ip: str) -> str:
    return device_token_for(current_app.secret_key, ip)


def device_token_for(secret_key: str | bytes, ip: str) -> str:
    """device_token with the app's secret key given (appliance.web.fastpath answers outside a request context)."""
    key = secret_key.encode() if isinstance(secret_key, str) else secret_key
    return hmac.new(key, f"device:{ip}".encode(), hashlib.sha256).hexdigest()[:32]


def device_bound(view):
    """Mark a view whose POST is checked against device_token() instead of the cookie session."""
    setattr(view, EXEMPT_ATTR, True)
    return view


def check_device_token(ip: str) -> None:
    if not hmac.compare_digest(request.form.get("csrf_token", ""), device_token(ip)):
        abort(400, description="csrf")


def protect() -> None:
    """before_request hook: refuse any POST without the right session token."""
    if request.method != "POST":
        return
    view = current_app.view_functions.get(request.endpoint or "")
    if view is not None and getattr(view, EXEMPT_ATTR, False):
        return
    expected = session.get("csrf")
    if not expected or not hmac.compare_digest(request.form.get("csrf_token", ""), expected):
        abort(400, description="csrf")
