"""Every internal URL and redirect of the box, built in one place, with the state that must survive a click.

Members' phones open the box in captive-portal mini-browsers that keep no cookies. What a page must pass on
to the next one therefore travels in the URL, and only these parameters are *sticky* (carried by every link,
form action and redirect built here):

- `lang` — only when the member chose it (`?lang=` or a form field `lang`, as i18n.pick_language reads it);
  a language guessed from Accept-Language needs no carrying, the next request guesses the same;
- `as` — the demo's virtual device (`?as=<ip>`, portal.client_ip), only when `cfg.demo` and a valid IPv4.

Everything else a link needs (room, next, q, dl …) is a parameter of `link()`. URLs are built by Flask's
`url_for`, which encodes every query value and puts exactly one `?` before them: no hand-built query string,
no `path + "?" + …`, so no `/chat?room=all?lang=en`.

- `link(endpoint, **params)` — templates and views; `params` override the sticky state (`lang=None` drops it),
  `_anchor=` adds a fragment, `as_=` stands for `as` (a Python keyword);
- `redirect_to(endpoint, **params)` — the same URL as a redirect (`_code=`, 302 unless given);
- `here(**params)` — the current page again with some parameters changed (the language switch);
- `state_fields()` — the sticky state as hidden inputs, for GET forms (a browser drops the query of a GET
  form's action); POST forms keep it in their action URL;
- `link_state()` — the sticky state as a query string (`<body data-link-state>`), for the page's scripts;
- `bare(endpoint, **params)` — without the state: for URLs sent to other people (push notices), whose own
  page adds its state (static/documents/documents.js).

Static assets (`url_for('static', …)`) stay plain.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlencode

from flask import current_app, g, has_request_context, redirect, request, url_for
from markupsafe import Markup
from werkzeug.wrappers import Response

STICKY = ("lang", "as")


def _ipv4(value: str | None) -> str | None:
    try:
        return str(ipaddress.IPv4Address(value or ""))
    except ValueError:
        return None


def state() -> dict[str, str]:
    """The sticky state of this request (empty outside a request)."""
    if not has_request_context():
        return {}
    cached = g.get("_link_state")  # read once per request: a page builds dozens of links from the same request
    if cached is not None:
        return dict(cached)
    from appliance.web import forms, i18n

    out: dict[str, str] = {}
    chosen = request.args.get("lang") or forms.peek("lang")  # also on the error page about an unreadable body
    if chosen in i18n.LANGS:
        out["lang"] = chosen
    if current_app.config["SB"].demo:
        device = _ipv4(request.args.get("as"))
        if device:
            out["as"] = device
    g._link_state = dict(out)
    return out


def _params(params: dict[str, Any], sticky: bool) -> dict[str, Any]:
    if "as_" in params:
        params["as"] = params.pop("as_")
    merged = {**(state() if sticky else {}), **params}
    return {k: v for k, v in merged.items() if v is not None}


def _one_question_mark(url: str) -> str:
    """url_for leaves `?` in query values as RFC 3986 allows; captive mini-browsers and log readers do not all
    agree, so a value's `?` is written %3F (form decoding reads both the same): one `?` per URL, always."""
    path, sep, rest = url.partition("?")
    if not sep:
        return url
    q, hash_, fragment = rest.partition("#")
    return f"{path}?{q.replace('?', '%3F')}{hash_}{fragment}"


def link(endpoint: str, **params: Any) -> str:
    """The URL of an endpoint of this app, with the request's sticky state; `params` override it."""
    return _one_question_mark(url_for(endpoint, **_params(params, sticky=True)))


def bare(endpoint: str, **params: Any) -> str:
    """The URL of an endpoint without this request's state: for URLs that go to other people."""
    return _one_question_mark(url_for(endpoint, **_params(params, sticky=False)))


def redirect_to(endpoint: str, _code: int = 302, **params: Any) -> Response:
    return redirect(link(endpoint, **params), _code)


def set_here(endpoint: str, **params: Any) -> None:
    """For a page rendered by a POST (a form with errors): the GET page that `here()` points to."""
    g.link_here = (endpoint, params)


def _fallback_endpoint() -> str:
    from appliance.rules.login import ROLES

    for role in ROLES.values():
        if request.path.startswith(role.area):
            return role.home
    return "portal.home"


def here(**params: Any) -> str:
    """The current page with `params` changed, keeping its other query parameters and the sticky state.

    A page answered to a POST, or to a path no endpoint matches, has no URL of its own to repeat: there the
    page named by set_here(), else the area's start page."""
    if "link_here" in g:
        endpoint, base = g.link_here
        return link(endpoint, **{**base, **params})
    rule = request.url_rule
    if request.endpoint and rule is not None and "GET" in (rule.methods or ()):
        current = {**request.args.to_dict(), **(request.view_args or {})}
        return link(request.endpoint, **{**current, **params})
    return link(_fallback_endpoint(), **params)


def state_fields() -> Markup:
    """Hidden inputs with the sticky state, for GET forms."""
    field = Markup('<input type="hidden" name="{}" value="{}">')
    return Markup("").join(field.format(k, v) for k, v in state().items())


def link_state() -> str:
    return urlencode(state())


def template_globals() -> dict[str, Any]:
    return {"link": link, "here": here, "state_fields": state_fields, "link_state": link_state}
