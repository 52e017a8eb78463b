"""Every POST route of the app, sent hostile forms: nothing, each field missing, wrong-typed fields (text for
numbers, huge strings, non-UTF-8 bytes, lists for scalars, empty and absent files), extra and duplicated fields,
a wrong or missing CSRF token, a JSON body. Never a 500, and a refusal is German text, not Werkzeug's English.

The routes come from Flask's URL map, so a new POST route fails here until FIELDS says what its form holds;
the fields a view reads (request.form / request.files in its source) must be in FIELDS too.
"""

from __future__ import annotations

import inspect
import io
import re
import zipfile

import pytest
from flask import request
from werkzeug.routing import Rule

from appliance.chat import store as chat
from appliance.documents import bulk
from appliance.documents import service as documents_service
from appliance.helper.client import NullHelper
from appliance.rules.viewer import Viewer
from appliance.usecases import speakers
from appliance.web import auth, csrf
from appliance.web.app import create_app
from tests.hostile.harness import Staff, alert_text
from tests.live_support import ANNA_IP, populate

CLERK_PW = "routes-clerk-password-1"
TECH_PW = "routes-tech-password-1"
BOX = "http://10.77.0.1"


class Upload:
    """A file field's value: fresh bytes for every request (Werkzeug closes what it sent)."""

    def __init__(self, data: bytes, name: str) -> None:
        self.data, self.name = data, name

    def value(self):
        return io.BytesIO(self.data), self.name


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("TOP 1 Haushalt/vorlage.txt", "Haushalt 2027\n")
    return buf.getvalue()


CSV = Upload(b"Name;Rolle\nErika Neu;Mitglied\n", "liste.csv")
# The valid form of each POST endpoint. Values are what a browser sends; no value is an http(s) URL (the OParl
# form would start a download); the guarded acts (web.guard) get a wrong confirmation token, so they never run.
FIELDS: dict[str, dict[str, object]] = {
    "portal.portal_continue": {"code": "ABCD-EFGH"},
    "clerk.login": {"password": "falsch", "next": "/clerk/sessions"},
    "clerk.logout": {},
    "clerk.sessions": {"body": "Rat", "title": "Test", "date": "01.02.2027", "venue": "Saal"},
    "clerk.activate": {"confirm": "yes", "confirm_token": "falsch"},
    "clerk.import_csv": {"csv": CSV},
    "clerk.rotate": {"confirm": "yes", "confirm_token": "falsch"},
    "documents.clerk_item": {"title": "Haushalt", "number": "3", "nonpublic": "1"},
    "documents.clerk_upload": {"files": Upload(b"Tagesordnung\n", "tagesordnung.txt"), "item": "", "nonpublic": "",
                               "late": "0"},
    "documents.clerk_zip": {"zip": Upload(_zip(), "unterlagen.zip"), "nonpublic": ""},
    "documents.clerk_item_edit": {"title": "Haushalt 2027", "number": "4", "nonpublic": ""},
    "documents.clerk_file_edit": {"title": "Vorlage", "nonpublic": ""},
    "documents.clerk_file_move": {"item": "1"},
    "documents.clerk_reorder": {"step": "up", "kind": "item", "id": "1"},
    "documents.clerk_file_replace": {"file": Upload(b"Neue Fassung\n", "vorlage.txt")},
    "documents.clerk_file_optimise": {},  # no fields: the file is in the URL (Ghostscript on a text file: refused)
    "documents.clerk_file_delete": {"confirm": "yes", "confirm_token": "falsch"},
    "documents.clerk_item_delete": {"confirm": "yes", "confirm_token": "falsch", "with_files": "1"},
    "chat.chat_read": {"room": "all", "last_id": "1"},
    "documents.clerk_oparl": {"url": "ftp://oparl.invalid/meeting/1", "hosts": "files.oparl.invalid"},
    "documents.clerk_wipe": {"confirm": "yes", "confirm_token": "falsch", "what": "all"},
    "chat.chat_send": {"room": "all", "body": "Hallo", "client_id": "fuzz-0000-0001", "back": "clerk"},
    "chat.chat_hide": {"msg": "1", "hidden": "1"},
    "chat.chat_mute": {"who": "member:1", "msg": "1", "muted": "1"},
    "chat.chat_settings": {"direct_messages": "1", "guests_chat": "0"},
    "chat.chat_wipe": {"confirm": "yes", "confirm_token": "falsch"},
    "chat.presence_wipe": {"confirm": "yes", "confirm_token": "falsch"},
    "presence.correct": {"member_id": "1", "status": "present", "reason": "Test"},
    "clerk.display_create": {"label": "Beamer Ratssaal"},
    "clerk.display_revoke": {},  # no fields: the display is in the URL
    "dashboard.login": {"password": "falsch", "next": "/technik/"},
    "dashboard.logout": {},
    # issue 13: the member's Wortmeldung, the chair's console (Anna chairs in `world`), the clerk naming the chair
    "speakers.ask": {"kind": "contribution"},
    "speakers.withdraw": {"request": "1"},
    "speakers.set_item": {"item": "1"},
    "speakers.call_next": {"request": ""},
    "speakers.end_speech": {},
    "speakers.extend": {"seconds": "60"},
    "speakers.decide": {"request": "1", "admit": "1"},
    "speakers.move": {"request": "1", "step": "up"},
    "speakers.remove": {"request": "1"},
    "speakers.add": {"member": "2", "kind": "contribution"},
    "speakers.close_or_reopen": {"closed": "1"},
    "speakers.announce": {"text": "Pause"},
    "speakers.procedure": {"scope": "item", "item": "1", "first_seconds": "240", "later_seconds": "",
                           "order_seconds": "", "intervention_seconds": "", "warn_seconds": "", "max_speeches": "",
                           "pro_contra": "1"},
    "speakers.name_chair": {"member": "1"},
    # issue 14: the clerk's votes page (web.votes_clerk)
    "votes_clerk.deputy": {"deputy": "4", "member": "3"},
    "votes_clerk.conflict": {"item": "1", "member": "2", "conflicted": "1"},
    "votes_clerk.may_change": {"allowed": "0"},
    "votes_clerk.hand": {"vote": "1", "member": "1", "choice": "yes"},
    "votes_clerk.paper": {"kind": "dhondt", "title": "Ausschuss", "item": "1", "name": ["SPD", "CDU"],
                          "count": ["10", "7"], "seats": "3", "yes": "", "no": "", "abstain": "", "rule": "custom",
                          "num": "3", "den": "4", "base": "cast", "strict": "1"},
    # issue 14: the member's cast (the contract of web.votes), the chair's vote panel on the console
    "votes.cast": {"vote_id": "1", "member_id": "1", "choice": "yes", "key": "fuzz00000000001"},
    "votes.open_vote": {"question": "Zustimmen?", "mode": "named", "rule": "custom", "num": "2", "den": "3",
                        "base": "cast", "strict": "1"},
    "votes.countdown": {"seconds": "30"},
    "votes.close": {"vote": "1"},
    "votes.cancel": {"vote": "1", "reason": "Unruhe"},
    "votes.repeat": {"vote": "1"},
    "votes.conflicted": {"member": "2", "item": "1", "conflicted": "1"},
}
# Fields read outside the view's own source (helpers it calls).
INDIRECT = {"documents.clerk_upload": {"item"}, "documents.clerk_file_move": {"item"}}
# None: the world's session
IDS = {"session_id": None, "item_id": "1", "file_id": "1", "member_id": "1", "display_id": "1"}
WRONG: list[tuple[str, object]] = [
    ("Text statt Zahl", "abc"),
    ("leer", ""),
    ("riesig", "x" * 200_000),
    ("über der Feldgrenze", "x" * 600_000),
    ("negativ", "-1"),
    ("zu große Zahl", "9" * 40),
    ("Gleitkomma", "1e999"),
    ("Nullbyte", "a\x00b"),
    ("Vollbreite Ziffern", "１２"),
    ("Richtungsumkehr", "\u202eevil"),
    ("Skript", "<script>alert(1)</script>"),
    ("Liste", ["1", "member:1"]),
    ("Datei statt Text", Upload(b"", "leer.txt")),
]
ENGLISH = ("Bad Request", "The browser (or proxy)", "Method Not Allowed", "Not Found", "Internal Server Error",
           "Request Entity Too Large", "Unauthorized", "Forbidden")


def post_rules(app) -> list[Rule]:
    return sorted((r for r in app.url_map.iter_rules() if "POST" in (r.methods or ())), key=lambda r: r.rule)


def view_fields(app, endpoint: str) -> set[str]:
    view = inspect.unwrap(app.view_functions[endpoint])
    view = getattr(view, "func", view)  # the login views are functools.partial
    source = inspect.getsource(view)
    found = set(re.findall(r"request\.(?:form|files)\.(?:get|getlist)\(\s*\"(\w+)\"", source))
    found |= set(re.findall(r"request\.(?:form|files)\[\s*\"(\w+)\"\s*\]", source))
    found |= set(re.findall(r"\"(\w+)\" in request\.(?:form|files)", source))
    return found - {"csrf_token", "lang"}


@pytest.fixture(params=["aktive Sitzung", "keine aktive Sitzung"])
def world(cfg, db, request):
    s, ms = populate(cfg, db)
    auth.set_password(db, CLERK_PW)
    auth.set_password(db, TECH_PW, role=auth.TECHNICIAN)
    chat.post(db, Viewer("member", s.id, ms["Anna"], True, ANNA_IP), "all", "seed-0000-0001", "Guten Morgen")
    blobs = documents_service.blobs_for(cfg.state_dir)  # item 1 with file 1, for the routes that name them
    item = documents_service.add_item(db, s.id, "Haushalt", number="1", actor="test")
    bulk.import_entries(db, blobs, s.id, [bulk.Entry(None, "vorlage.txt", 6, lambda: io.BytesIO(b"Text.\n"))],
                        item_id=item, actor="test")
    assert speakers.set_chair(db, Viewer("clerk", s.id), s.id, ms["Anna"].id)  # the console's POSTs run as Anna
    if request.param == "keine aktive Sitzung":
        db.execute("UPDATE sessions SET active = 0")
    app = create_app(cfg, helper=NullHelper(), testing=True)
    return app, s, ms


def _form(values: dict[str, object]) -> dict:
    out = {}
    for key, value in values.items():
        if isinstance(value, Upload):
            out[key] = value.value()
        elif isinstance(value, list):
            out[key] = [v.value() if isinstance(v, Upload) else v for v in value]
        else:
            out[key] = value
    return out


def variants(fields: dict[str, object]):
    """(label, form fields, extra request arguments) of every hostile form for one endpoint."""
    yield "keine Felder", {}, {}
    yield "gültig", dict(fields), {}
    for name in fields:
        yield f"ohne {name}", {k: v for k, v in fields.items() if k != name}, {}
        for label, value in WRONG:
            yield f"{name}: {label}", {**fields, name: value}, {}
        yield f"nur {name}, ungültig", {name: "abc"}, {}
        yield f"{name}: leere Datei", {**fields, name: Upload(b"", "")}, {}
        yield f"{name}: doppelt", {**fields, name: [Upload(b"a", "a.txt"), "zwei"]}, {}
    yield "zusätzliches Feld", {**fields, "zzz": "1", "__class__": "x"}, {}


def _raw(path: str, token: str, body_fields: dict[str, object]) -> tuple[bytes, str]:
    """A form with bytes that are not UTF-8 in every value (what a mis-set browser or a fuzzer sends)."""
    parts = [f"csrf_token={token}".encode()]
    parts += [name.encode() + b"=%FF%FE%80" + b"\xff" for name in body_fields]
    return b"&".join(parts), "application/x-www-form-urlencoded"


def _who(rule: Rule) -> str:
    if rule.rule.startswith("/technik"):
        return "tech"
    if rule.rule.startswith("/clerk"):
        return "clerk"
    return "device"


def test_every_post_route_is_in_the_table(world):
    app, *_ = world
    endpoints = {r.endpoint for r in post_rules(app)}
    assert endpoints == set(FIELDS), f"POST routes without a form in FIELDS: {endpoints - set(FIELDS)}; " \
                                     f"entries without a route: {set(FIELDS) - endpoints}"
    for endpoint in endpoints:
        missing = view_fields(app, endpoint) - set(FIELDS[endpoint]) - INDIRECT.get(endpoint, set())
        assert not missing, f"{endpoint} reads {missing}: add them to FIELDS"


def test_no_post_route_answers_500_and_refusals_are_german(world):
    app, s, ms = world
    staff = {"clerk": Staff(app, "/clerk/", CLERK_PW), "tech": Staff(app, "/technik/", TECH_PW)}
    with app.test_request_context():
        device_token = csrf.device_token(ANNA_IP)
    failures: list[str] = []
    requests = 0

    def send(rule: Rule, who: str, label: str, form: dict, **kw) -> None:
        nonlocal requests
        path = rule.rule
        for arg in rule.arguments:
            path = re.sub(rf"<(?:\w+:)?{arg}>", IDS[arg] or str(s.id), path)
        if who == "device":
            client = app.test_client(use_cookies=False)
            kw.setdefault("environ_base", {"REMOTE_ADDR": ANNA_IP})
            kw.setdefault("base_url", BOX)
        else:
            client = staff[who].client
            if rule.endpoint.endswith(".login"):  # wrong passwords from elsewhere: the staff's own IP stays unthrottled
                kw.setdefault("environ_base", {"REMOTE_ADDR": "192.0.2.7"})
        requests += 1
        try:
            resp = client.post(path, **kw) if "data" in kw else client.post(path, data=form, **kw)
        except Exception as exc:  # testing=True: a 500 arrives as the exception itself
            failures.append(f"{path} [{who}] {label}: 500 ({type(exc).__name__}: {str(exc)[:120]})")
            return
        if resp.status_code >= 500:
            failures.append(f"{path} [{who}] {label}: {resp.status_code}")
        elif resp.status_code >= 400 and resp.mimetype == "text/html":
            english = [w for w in ENGLISH if w in resp.text]
            if english or not alert_text(resp.text) or '<html lang="de"' not in resp.text:
                failures.append(f"{path} [{who}] {label}: {resp.status_code} without a German message {english}")
        if rule.endpoint.endswith(".logout"):
            staff[who].login()

    for rule in post_rules(app):
        fields = FIELDS[rule.endpoint]
        both = rule.endpoint in ("chat.chat_send", "votes.cast") or rule.rule.startswith("/vorsitz")  # devices, clerks
        whos = ["device", "clerk"] if both else [_who(rule)]
        for who in whos:
            token = device_token if who == "device" else staff[who].token()
            for label, form, kw in variants(fields):
                token = device_token if who == "device" else staff[who].token()
                send(rule, who, label, {**_form(form), "csrf_token": token}, **kw)
            if rule.endpoint == "chat.chat_send":
                send(rule, who, "JSON-Antwort", {**_form(fields), "csrf_token": token},
                     headers={"X-Sitzungsbox-Chat": "1"})
            send(rule, who, "falsches CSRF", {**_form(fields), "csrf_token": "falsch"})
            send(rule, who, "ohne CSRF", _form(fields))
            send(rule, who, "CSRF doppelt", {**_form(fields), "csrf_token": ["falsch", token]})
            body, ctype = _raw(rule.rule, token, fields)
            send(rule, who, "kein UTF-8", {}, data=body, content_type=ctype)
            send(rule, who, "JSON statt Formular", {}, data=b'{"csrf_token": "' + token.encode() + b'"}',
                 content_type="application/json")
            send(rule, who, "kaputtes multipart", {},
                 data=b"--x\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n" + token.encode(),
                 content_type="multipart/form-data; boundary=x")
    assert requests > 500
    assert not failures, f"{len(failures)} of {requests} requests failed:\n" + "\n".join(failures[:80])


def test_a_missing_field_is_a_german_400_naming_it(cfg, db):
    """The tester's case: the moderation form without its fields was a 500."""
    populate(cfg, db)
    auth.set_password(db, CLERK_PW)
    app = create_app(cfg, helper=NullHelper(), testing=True)

    @app.get("/_probe")
    def probe():  # a view that indexes a missing argument: Werkzeug's BadRequestKeyError, worded by the app
        return request.args["gibt-es-nicht"]

    clerk = Staff(app, "/clerk/", CLERK_PW)
    for path, form, field in (("/clerk/chat/mute", {}, "msg"), ("/clerk/chat/mute", {"msg": "9" * 40}, "msg"),
                              ("/clerk/chat/hide", {"msg": "１"}, "msg"),
                              ("/clerk/attendance/correct", {"status": "present"}, "member_id")):
        resp = clerk.client.post(path, data={**form, "csrf_token": clerk.token()})
        assert resp.status_code == 400, (path, form)
        assert f"Im Formular fehlt das Feld „{field}“ oder es ist ungültig." in alert_text(resp.text)
    resp = clerk.client.get("/_probe")
    assert resp.status_code == 400 and "Feld „gibt-es-nicht“" in alert_text(resp.text)
    resp = clerk.client.get("/_probe?lang=en")
    assert resp.status_code == 400 and "form field “gibt-es-nicht” is missing" in alert_text(resp.text)
    resp = clerk.client.put("/clerk/chat/mute")
    assert resp.status_code == 405 and "So lässt sich diese Seite nicht aufrufen" in resp.text
    assert "Method Not Allowed" not in resp.text


QUERY = ("lang", "room", "seit", "q", "mac", "as", "next", "last_id", "sort", "order", "class", "radio", "dl")
GET_VALUES = ("abc", "9" * 40, "-1", "x" * 5000, "a\x00b", "%FF%FE", "１２", "<script>", "../../etc/passwd",
              "faction:CDU", "dm:1:1")
HEADERS = {"Range": "bytes=99999999999999999999-", "If-None-Match": "\x00" * 100, "If-Range": "x" * 5000,
           "Last-Event-ID": "9" * 40, "Accept-Language": "xx;q=abc," * 200}


def test_no_get_route_answers_500_for_hostile_queries(world):
    """Every GET route (the stream /events and static files aside), with each query argument the views read set
    to hostile values, and hostile headers: never a 500."""
    app, s, _ms = world
    clerk, tech = Staff(app, "/clerk/", CLERK_PW), Staff(app, "/technik/", TECH_PW)
    values = {**IDS, "session_id": str(s.id), "name": "x/../../y", "filename": "x"}
    failures, requests = [], 0
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if "GET" not in (rule.methods or ()) or rule.endpoint in ("static", "live.events"):
            continue
        path = rule.rule
        for arg in rule.arguments:
            path = re.sub(rf"<(?:\w+:)?{arg}>", values.get(arg, "1"), path)  # a new argument: 1 fits int and str
        client = tech.client if path.startswith("/technik") else clerk.client if path.startswith("/clerk") else \
            app.test_client(use_cookies=False)
        extra = {} if client in (clerk.client, tech.client) else {"base_url": BOX,
                                                                   "environ_base": {"REMOTE_ADDR": ANNA_IP}}
        raw = "&".join(f"{name}=%FF%FE%C0%AF%00" for name in QUERY)  # bytes that are not UTF-8, sent as they are
        for value in GET_VALUES:
            for query in ({name: value for name in QUERY}, {QUERY[len(value) % len(QUERY)]: value}, raw):
                requests += 1
                try:
                    resp = client.get(path, query_string=query, headers=HEADERS, **extra)
                except Exception as exc:  # testing=True: a 500 arrives as the exception itself
                    failures.append(f"GET {path} {value[:20]!r}: 500 ({type(exc).__name__}: {str(exc)[:120]})")
                    continue
                if resp.status_code >= 500:
                    failures.append(f"GET {path} {value[:20]!r}: {resp.status_code}")
    assert requests > 300
    assert not failures, f"{len(failures)} of {requests} requests failed:\n" + "\n".join(failures[:80])
