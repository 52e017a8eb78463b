"""The two requests of a vote's opening second, answered before Flask (issue 14): a member's JSON cast
(`POST /abstimmung`, `Accept: application/json`) and the vote block's refetch (`GET /abstimmung`) — and the phones'
connectivity probes (a GET for a host that is not the box: `portal.captive_answer`, the captive hook's answer;
issue 15, a hall's onboarding burst is mostly probes).

When a vote opens, 300 phones cast within a second and refetch their block 0.2–1.5 s later, in the same gevent
workers (which never preempt: a cast waits for whatever runs before it). Through Flask each of these cost ~1.5 ms
of CPU, of which the request context, the cookie session, the URL map, the hooks and the response object were a
third. This WSGI layer (`app.wsgi_app`, so gunicorn, the test client and every test go through it) answers them
with exactly what the Flask views answer, from the same parts:

- the device: the one resolver (`captive.identify.identify` → `web.viewer.device_viewer`), the address as
  `portal.client_ip` takes it (demo mode's `?as=`);
- the language as `i18n.pick_language` picks it (`?lang=`, the form's `lang`, else Accept-Language), the refusal
  texts from the catalogs, the security headers of `create_app` and `Vary: Cookie`;
- the cast: `web.votes.json_cast` (the device-bound CSRF token, the id fields, `usecases.votes.cast`);
- the refetch: `web.votes.block_inputs` and a page the template rendered for the same situation
  (`web.votes.BlockCache`), with this request's token, key, member and device put in.

Anything else goes to Flask unchanged, before anything is read from the database: a request with a cookie (a
clerk's login), for a host that is not the box (the captive hook's), a form post without JSON, a body that is not a
small ASCII urlencoded form, a query or field that is not ASCII, a device not let through (the portal redirect), a
refetch whose page is not kept yet (Flask renders it and keeps it). A failure inside is answered by Flask's error
handling, as a view's would be. tests/test_votes_fastpath.py checks every answer against the Flask view's.
"""

from __future__ import annotations

import io
import ipaddress
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

from flask import Flask, Response, g
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import HTTP_STATUS_CODES, parse_accept_header

from appliance.captive import probes
from appliance.captive.identify import identify
from appliance.web import csrf, i18n, portal
from appliance.web import votes as votes_web
from appliance.web.viewer import device_viewer

PATH = "/abstimmung"
FORM = "application/x-www-form-urlencoded"
MAX_BODY = 4096  # a cast's form is ~150 bytes; larger ones go to Flask (its limits, its answers)
MAX_FIELDS = 16
Answer = tuple[int, str, bytes]  # status, content type, body


def install(app: Flask, pool: Any, headers: Iterable[tuple[str, str]]) -> FastPath:
    """Put the fast path in front of the app's WSGI callable (create_app)."""
    fast = FastPath(app, pool, headers)
    app.wsgi_app = fast  # type: ignore[method-assign]
    return fast


def _first(pairs: list[tuple[str, str]]) -> Callable[[str], str | None]:
    got: dict[str, str] = {}
    for name, value in pairs:
        got.setdefault(name, value)
    return got.get


class FastPath:
    def __init__(self, app: Flask, pool: Any, headers: Iterable[tuple[str, str]]) -> None:
        self.app = app
        self.flask = app.wsgi_app
        self.cfg = app.config["SB"]
        self.pool = pool
        self.headers = [*headers, ("Vary", "Cookie")]  # Flask's session was asked (no clerk): it says Vary
        self.answered = 0  # requests answered here (tests, bench.castprofile)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if not environ.get("HTTP_COOKIE"):
            try:
                probe = self._probe(environ) if environ.get("REQUEST_METHOD") == "GET" else None
                answer = self._answer(environ) if probe is None and environ.get("PATH_INFO") == PATH else None
            except Exception as exc:  # as a view's or the hook's failure: Flask's error page (and its logging)
                return self._failed(environ, start_response, exc)
            if probe is not None:
                self.answered += 1
                for name, value in self.headers[:-1]:  # the security headers; the hook never asks the session
                    probe.headers.setdefault(name, value)
                return probe(environ, start_response)
            if answer is not None:
                self.answered += 1
                status, content_type, body = answer
                start_response(f"{status} {HTTP_STATUS_CODES[status].upper()}",
                               [("Content-Type", content_type), ("Content-Length", str(len(body))),
                                ("Cache-Control", "no-store"), *self.headers])
                return [body]
        return self.flask(environ, start_response)

    def _answer(self, environ: dict) -> Answer | None:
        method = environ.get("REQUEST_METHOD")
        if method == "POST":
            if "application/json" not in environ.get("HTTP_ACCEPT", ""):
                return None  # the form post: its page answers come from Flask
        elif method != "GET":
            return None
        host = environ.get("HTTP_HOST", "")
        if not host or not portal.is_box_host(self.cfg, probes.normalise_host(host)):
            return None  # the captive hook's
        query = environ.get("QUERY_STRING", "")
        if not query.isascii():
            return None
        args = parse_qsl(query, keep_blank_values=True)
        if len(args) > MAX_FIELDS or not all(v.isascii() for _n, v in args):
            return None
        arg = _first(args)
        field: Callable[[str], str | None] = lambda _name: None  # noqa: E731 - a GET has no form
        if method == "POST":
            pairs = self._form(environ)
            if pairs is None:
                return None
            field = _first(pairs)
        # i18n.pick_language and links.state, from the same values
        chosen = arg("lang") or field("lang")
        lang = chosen if chosen in i18n.LANGS else (
            parse_accept_header(environ.get("HTTP_ACCEPT_LANGUAGE"), LanguageAccept).best_match(i18n.LANGS) or "de")
        sticky: dict[str, str] = {"lang": chosen} if chosen in i18n.LANGS else {}
        ip = environ.get("REMOTE_ADDR") or ""
        if self.cfg.demo:  # portal.client_ip
            try:
                ip = sticky["as"] = str(ipaddress.IPv4Address(arg("as") or ""))
            except ValueError:
                pass
        db = self.pool.take()
        try:
            device = identify(db, self.cfg, ip)
            viewer = device_viewer(device, device.session_id)
            if method == "POST":
                outcome, status = votes_web.json_cast(
                    db, viewer, lambda name: field(name) or "", csrf.device_token_for(self.app.secret_key, viewer.ip),
                    lang, time.time())
                return status, "application/json", votes_web.json_text(outcome).encode()
            if viewer.kind == "anonymous" or viewer.session_id is None:
                return None  # member_viewer's redirect to the portal
            inputs = votes_web.block_inputs(db, viewer, time.time())
            key = votes_web.block_key(inputs, lang, sticky)
            cache = self.app.extensions.get(votes_web.BLOCKS)
            page = cache.get(key) if key is not None and cache is not None else None
            if page is None:
                return None  # Flask renders it (and keeps it)
            token = csrf.device_token_for(self.app.secret_key, viewer.ip) if inputs is not None else ""
            me = inputs["me"] if inputs is not None else None
            return 200, "text/html; charset=utf-8", votes_web.fill(page, token, secrets.token_hex(8), me,
                                                                   sticky.get("as")).encode()
        finally:
            self.pool.give(db)

    def _probe(self, environ: dict) -> Response | None:
        """A GET for a host that is not the box — the phones' connectivity probes, a hall of them when a session
        starts — answered as portal.captive_hook answers it (`portal.captive_answer`), without Flask's request."""
        host = probes.normalise_host(environ.get("HTTP_HOST", ""))
        if not host or portal.is_box_host(self.cfg, host):
            return None
        path, query = environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", "")
        if not path.isascii() or not query.isascii() or environ.get("SCRIPT_NAME"):
            return None
        ip = environ.get("REMOTE_ADDR") or ""
        if self.cfg.demo:  # portal.client_ip
            try:
                ip = str(ipaddress.IPv4Address(_first(parse_qsl(query, keep_blank_values=True))("as") or ""))
            except ValueError:
                pass
        db = self.pool.take()
        try:
            device = identify(db, self.cfg, ip)
        finally:
            self.pool.give(db)
        return portal.captive_answer(self.cfg, device, host, path or "/")

    def _form(self, environ: dict) -> list[tuple[str, str]] | None:
        """The POST's fields, if its body is a small ASCII urlencoded form; else None, the body left for Flask."""
        if environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower() != FORM:
            return None
        raw = environ.get("CONTENT_LENGTH", "")
        if not raw.isdigit() or int(raw) > MAX_BODY or environ.get("HTTP_TRANSFER_ENCODING"):
            return None
        body = environ["wsgi.input"].read(int(raw)) if int(raw) else b""
        environ["wsgi.input"] = io.BytesIO(body)  # Flask reads it again if the request goes on to it
        if len(body) != int(raw) or not body.isascii():
            return None
        pairs = parse_qsl(body.decode("ascii"), keep_blank_values=True)
        if len(pairs) > MAX_FIELDS or not all(v.isascii() for _n, v in pairs):
            return None
        return pairs

    def _failed(self, environ: dict, start_response: Callable, exc: Exception) -> Iterable[bytes]:
        with self.app.request_context(environ):
            g.lang = i18n.pick_language()
            response = self.app.handle_exception(exc)
        return response(environ, start_response)
