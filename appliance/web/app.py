"""The Flask application factory. Configuration comes in; nothing global is read at import time."""

from __future__ import annotations

import queue
import secrets
from typing import Any

from flask import Flask, g, render_template, request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.exceptions import BadRequestKeyError, HTTPException

from appliance.config import Config
from appliance.store import open_db
from appliance.web import csrf, forms, i18n, links, nav

MAX_UPLOAD = 64 * 1024 * 1024
MAX_FORM_PARTS = 1000  # files and fields in one form: more is refused whole (413), before any file is stored
MAX_FORM_FIELD = 500_000  # bytes of one text field (a chat message is 1000 characters, a title 500)
POOL_MAX = 32  # idle SQLite connections kept per worker
POOL = "sitzungsbox.db_pool"  # app.extensions key of the Pool
# On every answer (after_request; appliance.web.fastpath sets the same)
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Content-Security-Policy",
     "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'"),
)


def secret_key(db) -> str:
    """Generated once per box and kept in the database; never printed or logged."""
    row = db.execute("SELECT value FROM settings WHERE key = 'secret_key'").fetchone()
    if row:
        return row[0]
    key = secrets.token_hex(32)
    db.execute("INSERT OR IGNORE INTO settings(key, value) VALUES ('secret_key', ?)", [key])
    return db.execute("SELECT value FROM settings WHERE key = 'secret_key'").fetchone()[0]


class ClerkSessions(SecureCookieSessionInterface):
    """Flask's signed cookie session (the clerks' login), with its signing serializer built once per key instead of
    on every request: building it was a tenth of a member's cast, most of whose requests carry no cookie at all.
    Same keys, salt, derivation and digest; a changed secret key or fallback list builds a new one."""

    def __init__(self) -> None:
        self._cached: tuple[tuple, Any] | None = None

    def get_signing_serializer(self, app: Flask):
        stamp = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        cached = self._cached
        if cached is not None and cached[0] == stamp:
            return cached[1]
        serializer = super().get_signing_serializer(app)
        self._cached = (stamp, serializer)
        return serializer


class Pool:
    """A worker's SQLite connections, reused between requests (one request holds one at a time): opening SQLite
    and setting its pragmas was a fifth of a portal request's cost when a hall joins at once. Shared by the Flask
    requests and appliance.web.fastpath (app.extensions[POOL])."""

    def __init__(self, path: Any) -> None:
        self.path = path
        self._idle: queue.SimpleQueue = queue.SimpleQueue()

    def take(self) -> Any:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            return open_db(self.path, migrate=False)

    def give(self, db: Any) -> None:
        if db.conn.in_transaction:  # a failed request must not hand a half transaction to the next one
            db.conn.rollback()
        if self._idle.qsize() < POOL_MAX:
            self._idle.put(db)
        else:
            db.conn.close()


def create_app(cfg: Config, *, helper: Any = None, testing: bool = False) -> Flask:
    """helper: the firewall helper client (HelperClient, or NullHelper in demo mode and unit tests)."""
    app = Flask(__name__)
    app.session_interface = ClerkSessions()
    i18n.load()  # the UI text, read once per process; a broken catalog stops the start, not a request
    db = open_db(cfg.db_path)  # migrates once, here
    app.secret_key = secret_key(db)
    db.conn.close()
    if helper is None:
        from appliance.helper.client import for_config
        helper = for_config(cfg)
    app.config.update(
        SB=cfg,
        SB_HELPER=helper,
        TESTING=testing,
        MAX_CONTENT_LENGTH=MAX_UPLOAD,
        MAX_FORM_PARTS=MAX_FORM_PARTS,
        MAX_FORM_MEMORY_SIZE=MAX_FORM_FIELD,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_NAME="sitzungsbox_clerk",
    )

    pool = app.extensions[POOL] = Pool(cfg.db_path)

    @app.before_request
    def _per_request() -> None:
        g.lang = i18n.pick_language()
        g.db = pool.take()

    @app.teardown_request
    def _close(_exc) -> None:
        db_ = g.pop("db", None)
        if db_ is not None:
            pool.give(db_)

    # The captive hook must run before CSRF: probes and foreign hosts never reach views.
    from appliance.web import portal
    app.register_blueprint(portal.bp)
    app.before_request(csrf.protect)
    from appliance.chat import views as chat_views
    from appliance.presence import views as presence_views
    from appliance.web import clerk, dashboard, documents, live, saal, speakers, votes
    for module in (clerk, documents, live, chat_views, presence_views, dashboard, saal, speakers, votes):
        app.register_blueprint(module.bp)
    from appliance.web import votes_clerk
    app.register_blueprint(votes_clerk.bp)

    # Push audiences beyond the built-in ones, each decided by the feature that owns it; this app's own.
    from appliance.chat import store as chat_store
    from appliance.documents import service as documents_service
    from appliance.push.audience import EXT, Audiences
    audiences = app.extensions[EXT] = Audiences()
    audiences.register("chat", chat_store.push_check)
    audiences.register("doc", documents_service.push_check)

    @app.context_processor
    def _globals() -> dict:
        return {
            "t": i18n.t,
            "lang": g.get("lang", "de"),
            "other_lang": "en" if g.get("lang", "de") == "de" else "de",
            "box": cfg,
            **links.template_globals(),  # link(), here(), state_fields(), link_state(): every internal URL
            **nav.template_globals(),  # member_nav(), error_ways(): the members' way around
        }

    @app.errorhandler(HTTPException)
    def _error(exc: HTTPException):
        # Always German (or English) from the catalogs, never Werkzeug's English descriptions.
        code = exc.code or 500
        kind = "csrf" if exc.description == "csrf" else code
        if exc.description == "csrf":
            message = i18n.t("error.csrf")
        elif isinstance(exc, forms.FieldError | BadRequestKeyError):
            field = exc.field if isinstance(exc, forms.FieldError) else str(exc.args[0] if exc.args else "?")
            message = i18n.t("error.field", field=field[:40])
        elif code == 413:  # the request as a whole, a field, or the number of parts: the limits named
            message = i18n.t("error.413") + " " + i18n.t("error.limits", mb=MAX_UPLOAD // 2**20, parts=MAX_FORM_PARTS,
                                                         kb=MAX_FORM_FIELD // 1000)
        elif i18n.has(f"error.{code}"):
            message = i18n.t(f"error.{code}")
        else:
            message = i18n.t("error.other", code=code)
        return render_template("error.html", message=message, code=code, kind=kind), code

    @app.after_request
    def _headers(resp):
        for name, value in SECURITY_HEADERS:
            resp.headers.setdefault(name, value)
        if request.path.startswith(("/clerk", "/portal")):
            resp.headers.setdefault("Cache-Control", "no-store")
        return resp

    # The cast and the vote block's refetch of a vote's opening second, answered before Flask (same answers).
    from appliance.web import fastpath
    fastpath.install(app, pool, SECURITY_HEADERS)
    return app
