"""appliance.web.fastpath answers the cast (POST /abstimmung, Accept: application/json) and the vote block's
refetch (GET /abstimmung) before Flask: every answer must be the one the Flask view gives.

Two identical worlds (the same council, devices and acts, each with its own database and so its own secret key):
world F goes through the app as gunicorn serves it (the fast path in front), world V through the Flask app alone
(`FastPath.flask`, the app's WSGI callable without the fast path). The same requests, in the same order, must get
the same status, headers and body — the per-request values (CSRF token, idempotency key) aside, which are checked
to be the device's own and fresh. And world F must have answered them on the fast path (`answered`), else the
comparison would prove nothing.
"""

from __future__ import annotations

import re
import time

import pytest

from appliance.config import Config
from appliance.documents import service as docs
from appliance.helper.client import NullHelper
from appliance.rules.viewer import Viewer
from appliance.store import open_db
from appliance.usecases import speakers
from appliance.usecases import votes as acts
from appliance.web import csrf
from appliance.web.app import create_app
from appliance.web.fastpath import FastPath
from tests.live_support import ANNA_IP, BERND_IP, CARLA_IP, GUEST_IP, populate

JSON = {"Accept": "application/json"}
STRANGER_IP = "10.77.0.99"  # a lease-less, unadmitted device


class World:
    def __init__(self, root, demo: bool = False) -> None:
        self.cfg = Config(state_dir=root / "state", run_dir=root / "run", helper_socket=root / "run" / "helper.sock",
                          leases_file=root / "state" / "dnsmasq.leases", hostapd_ctrl_dir=root / "hostapd",
                          demo=demo).validate()
        self.db = open_db(self.cfg.db_path)
        self.s, self.ms = populate(self.cfg, self.db)
        self.top1 = docs.add_item(self.db, self.s.id, "Haushalt", number="1", actor="test")
        self.clerk = Viewer("clerk", self.s.id)
        assert speakers.set_current_item(self.db, self.clerk, self.s.id, self.top1, actor="test")
        for mid in (self.ms["Anna"].id, self.ms["Bernd"].id):
            self.db.execute("INSERT INTO presence_intervals(session_id, member_id, start, start_source) "
                            "VALUES (?, ?, ?, 'wifi')", [self.s.id, mid, time.time() - 600])
        self.app = create_app(self.cfg, helper=NullHelper(), testing=True)
        self.fast: FastPath = self.app.wsgi_app

    def token(self, ip: str) -> str:
        with self.app.test_request_context():
            return csrf.device_token(ip)

    def open_vote(self, **kw) -> int:
        out = acts.open_vote(self.db, self.clerk, self.s.id, question="Dem Haushalt zustimmen?", now=time.time(), **kw)
        assert out.ok, out.text
        return out.vote_id


@pytest.fixture
def worlds(tmp_path):
    f, v = World(tmp_path / "f"), World(tmp_path / "v")
    yield f, v
    f.db.conn.close()
    v.db.conn.close()


def _request(world: World, fast: bool, path: str, ip: str, method: str = "GET", host: str = "10.77.0.1", **kw):
    app = world.app
    if not fast:
        app.wsgi_app = world.fast.flask
    try:
        client = app.test_client(use_cookies=False)
        return client.open(path, method=method, base_url=f"http://{host}", environ_base={"REMOTE_ADDR": ip}, **kw)
    finally:
        app.wsgi_app = world.fast


TOKEN = re.compile(r'name="csrf_token" value="([^"]*)"')
KEY = re.compile(r'name="key" value="([^"]*)"')


def _normal(world: World, ip: str, body: str) -> tuple[str, list[str]]:
    """The body with this request's token and key replaced; the keys found."""
    for token in TOKEN.findall(body):
        assert token == world.token(ip)  # the device's own token, nobody else's
    keys = KEY.findall(body)
    assert all(re.fullmatch(r"[0-9a-f]{16}", k) for k in keys)
    return KEY.sub('name="key" value="KEY"', TOKEN.sub('name="csrf_token" value="TOKEN"', body)), keys


def same(f: World, v: World, path: str, ip: str, method: str = "GET", *, fast: bool = True, form: dict | None = None,
         token_ip: str | None = None, **kw):
    """The request in both worlds (a form: each world's own CSRF token unless given); the answers must match. fast:
    world F must answer it on the fast path. Returns world F's answer."""
    answers, seen_keys = [], []
    for world, through_fast in ((f, True), (v, False)):
        data = None
        if form is not None:
            data = {"csrf_token": world.token(token_ip or ip), **form}
        before = world.fast.answered
        r = _request(world, through_fast, path, ip, method, data=data, **kw)
        assert world.fast.answered == before + (1 if through_fast and fast else 0), (path, ip, method, form)
        body, keys = _normal(world, token_ip or ip, r.get_data(as_text=True))
        seen_keys += keys
        answers.append((r.status_code, sorted(r.headers.items()), body))
    assert answers[0] == answers[1]
    assert len(seen_keys) == len(set(seen_keys))  # a fresh idempotency key on every page
    return answers[0]


def refetch(f: World, v: World, path: str, ip: str, **kw):
    """GET the block: the first ask of a situation renders it in Flask (and keeps it), the next is answered ahead."""
    first = same(f, v, path, ip, fast=False, **kw) if not kw.pop("kept", False) else None
    again = same(f, v, path, ip, **kw)
    if first is not None:
        assert first == again
    return again


def cast_form(w: World, member: str, choice: str, key: str, **override) -> dict:
    return {"vote_id": "1", "member_id": str(w.ms[member].id), "choice": choice, "key": key, **override}


def test_the_refetch_is_the_flask_page_in_every_situation(worlds):
    f, v = worlds
    status, headers, body = refetch(f, v, "/abstimmung", ANNA_IP)  # no vote
    assert status == 200 and ("Cache-Control", "no-store") in headers and 'id="abstimmung"' not in body
    assert ("Vary", "Cookie") in headers and ("X-Frame-Options", "DENY") in headers
    for w in worlds:
        assert w.open_vote() == 1
    _s, _h, body = refetch(f, v, "/abstimmung", ANNA_IP)  # eligible: the form
    assert 'id="vote-form"' in body and f'name="member_id" value="{f.ms["Anna"].id}"' in body
    _s, _h, body = refetch(f, v, "/abstimmung", BERND_IP, kept=True)  # the same page, Bernd's values put in
    assert f'name="member_id" value="{f.ms["Bernd"].id}"' in body
    _s, _h, body = refetch(f, v, "/abstimmung", GUEST_IP)  # a guest: no form
    assert 'id="vote-guest"' in body and 'id="vote-form"' not in body
    refetch(f, v, "/abstimmung?lang=en", ANNA_IP)  # English, chosen: the links keep it
    _s, _h, body = refetch(f, v, "/abstimmung", ANNA_IP, headers={"Accept-Language": "en"})  # English, guessed
    assert "Vote in progress" in body
    same(f, v, "/abstimmung", ANNA_IP, "POST", form=cast_form(f, "Anna", "yes", "a" * 16), headers=JSON)
    _s, _h, body = refetch(f, v, "/abstimmung", ANNA_IP)  # voted: the choice and the change buttons
    assert "Ihre Stimme: Ja" in body and "vote-chosen" in body
    for w in worlds:
        assert acts.close_vote(w.db, w.clerk, w.s.id, now=time.time())
    _s, _h, body = refetch(f, v, "/abstimmung", ANNA_IP)  # closed: the result
    assert 'id="vote-outcome"' in body and 'id="vote-form"' not in body
    # not let through: the portal redirect, from Flask
    same(f, v, "/abstimmung", CARLA_IP, fast=False)
    same(f, v, "/abstimmung", STRANGER_IP, fast=False)


def test_a_member_who_may_not_vote_gets_the_reason(worlds):
    f, v = worlds
    for w in worlds:
        assert acts.set_conflicted(w.db, w.clerk, w.s.id, w.top1, w.ms["Bernd"].id, True, now=time.time())
        w.open_vote()
    _s, _h, body = refetch(f, v, "/abstimmung", BERND_IP)
    assert "befangen" in body and 'id="vote-form"' not in body
    status, _h, body = same(f, v, "/abstimmung", BERND_IP, "POST", form=cast_form(f, "Bernd", "yes", "b" * 16),
                            headers=JSON)
    assert status == 409 and '"code":"conflicted"' in body


def test_every_cast_answer_is_the_flask_answer(worlds):
    f, v = worlds
    for w in worlds:
        w.open_vote()

    def post(ip, form, *, headers=JSON, fast=True, **kw):
        return same(f, v, "/abstimmung", ip, "POST", form=form, headers=headers, fast=fast, **kw)

    status, headers, body = post(ANNA_IP, cast_form(f, "Anna", "yes", "a" * 16))  # accepted
    assert status == 200 and body == '{"choice":"yes","ok":true,"text":"Ihre Stimme: Ja","vote_id":1}\n'
    assert ("Content-Type", "application/json") in headers and ("Cache-Control", "no-store") in headers
    assert post(ANNA_IP, cast_form(f, "Anna", "yes", "a" * 16))[0] == 200  # the same tap again: counted once
    assert post(ANNA_IP, cast_form(f, "Anna", "no", "c" * 16))[2].startswith('{"choice":"no"')  # changed
    refusals = [
        (ANNA_IP, cast_form(f, "Bernd", "yes", "d" * 16), 403, "not_own"),  # another member's id
        (GUEST_IP, cast_form(f, "Anna", "yes", "e" * 16), 403, "guest"),
        (STRANGER_IP, cast_form(f, "Anna", "yes", "f" * 16), 403, "not_member"),  # not let through
        (ANNA_IP, cast_form(f, "Anna", "vielleicht", "g" * 16), 409, "bad_choice"),
        (ANNA_IP, cast_form(f, "Anna", "yes", "kurz"), 409, "bad_key"),
        (ANNA_IP, cast_form(f, "Anna", "yes", "h" * 16, vote_id="abc"), 400, "field"),  # garbled
        (ANNA_IP, cast_form(f, "Anna", "yes", "h" * 16, vote_id=" 1 "), 200, ""),  # stripped, as the view does
        (ANNA_IP, {k: x for k, x in cast_form(f, "Anna", "yes", "i" * 16).items() if k != "member_id"}, 400, "field"),
        (ANNA_IP, cast_form(f, "Anna", "yes", "j" * 16, vote_id="99"), 409, "no_vote"),
        (ANNA_IP, cast_form(f, "Anna", "yes", "k" * 16, csrf_token="falsch"), 400, "csrf"),
        (ANNA_IP, cast_form(f, "Anna", "yes", "l" * 16, csrf_token=f.token(BERND_IP)), 400, "csrf"),  # another's
    ]
    for ip, form, want, code in refusals:
        status, _h, body = post(ip, form)
        assert status == want and f'"code":"{code}"' in body if code else status == want, (form, body)
    # the language of the refusal texts: Accept-Language, ?lang=, the form's lang
    _s, _h, body = post(ANNA_IP, cast_form(f, "Anna", "yes", "m" * 16, csrf_token="x"),
                        headers={**JSON, "Accept-Language": "en-GB,en;q=0.9"})
    assert "Ihre" not in body and '"code":"csrf"' in body
    en = post(ANNA_IP, cast_form(f, "Anna", "yes", "n" * 16, csrf_token="x", lang="en"))[2]
    assert en == body
    assert same(f, v, "/abstimmung?lang=en", ANNA_IP, "POST", form=cast_form(f, "Anna", "yes", "o" * 16,
                                                                              csrf_token="x"), headers=JSON)[2] == en
    assert post(ANNA_IP, cast_form(f, "Anna", "yes", "o" * 16, csrf_token="x"))[2] != en  # German by default
    # the form post (a page answer) and anything not a small ASCII urlencoded form: Flask's, unchanged
    status, _h, _b = post(ANNA_IP, cast_form(f, "Anna", "abstain", "p" * 16), headers={}, fast=False)
    assert status == 303
    post(ANNA_IP, cast_form(f, "Anna", "ä", "q" * 16), fast=False)
    post(ANNA_IP, cast_form(f, "Anna", "no", "r" * 16), fast=False, headers={**JSON, "Cookie": "x=1"})
    post(ANNA_IP, {"pad": "x" * 5000, **cast_form(f, "Anna", "no", "s" * 16)}, fast=False)
    # after the close
    for w in worlds:
        assert acts.close_vote(w.db, w.clerk, w.s.id, now=time.time())
    status, _h, body = post(ANNA_IP, cast_form(f, "Anna", "yes", "t" * 16))
    assert status == 409 and '"code":"closed"' in body
    # both worlds counted the same casts
    counts = [w.db.execute("SELECT cast_count, yes, no, abstain FROM votes WHERE id = 1").fetchone() for w in worlds]
    assert counts[0] == counts[1] and counts[0][0] == 1


def test_a_foreign_host_is_the_captive_hooks(worlds):
    f, v = worlds
    for w in worlds:
        w.open_vote()
    refetch(f, v, "/abstimmung", ANNA_IP)  # kept: the box's own host is answered ahead
    status, _h, _b = same(f, v, "/abstimmung", ANNA_IP, host="captive.apple.com")  # the probes' fast path
    assert status == 302  # an admitted device asking a probe's host for something else: to the box
    status, _h, _b = same(f, v, "/abstimmung", STRANGER_IP, "POST", host="example.org", headers=JSON, fast=False,
                          form=cast_form(f, "Anna", "yes", "a" * 16))
    assert status == 302  # a device not let through: to the portal, never a cast
    status, _h, _b = same(f, v, "/abstimmung", ANNA_IP, "POST", host="example.org", headers=JSON, fast=False,
                          form=cast_form(f, "Anna", "yes", "a" * 16))
    assert status == 302


def test_demo_devices_keep_their_address_in_the_links(tmp_path):
    f, v = World(tmp_path / "f", demo=True), World(tmp_path / "v", demo=True)
    for w in (f, v):
        w.open_vote()
    _s, _h, body = refetch(f, v, f"/abstimmung?as={ANNA_IP}", "127.0.0.1", token_ip=ANNA_IP)
    assert f"/abstimmung?as={ANNA_IP}" in body and 'id="vote-form"' in body
    _s, _h, body = refetch(f, v, f"/abstimmung?as={BERND_IP}", "127.0.0.1", token_ip=BERND_IP, kept=True)
    assert f"/abstimmung?as={BERND_IP}" in body and ANNA_IP not in body  # the kept page, Bernd's address put in
    _s, _h, body = refetch(f, v, f"/abstimmung?lang=en&as={BERND_IP}", "127.0.0.1", token_ip=BERND_IP)
    assert f"lang=en&amp;as={BERND_IP}" in body
    status, _h, body = same(f, v, f"/abstimmung?as={BERND_IP}", "127.0.0.1", "POST", token_ip=BERND_IP,
                            form=cast_form(f, "Bernd", "no", "a" * 16), headers=JSON)
    assert status == 200 and '"choice":"no"' in body
    status, _h, body = same(f, v, f"/abstimmung?as={BERND_IP}", "127.0.0.1", "POST", token_ip=ANNA_IP,
                            form=cast_form(f, "Bernd", "no", "b" * 16), headers=JSON)
    assert status == 400 and '"code":"csrf"' in body  # Anna's token on Bernd's device
    for w in (f, v):
        w.db.conn.close()


def test_a_countdown_or_a_question_with_the_stand_ins_is_never_kept(worlds):
    """A running countdown changes the page every second, and a text with the stand-ins' prefix would have it
    replaced: both are rendered by Flask on every ask, never kept."""
    f, v = worlds
    at = time.time() - 0.5  # the same end in both worlds, half a second from a change of the seconds shown
    for w in worlds:
        w.open_vote()
        assert acts.set_countdown(w.db, w.clerk, w.s.id, 30, now=at)
    for _ in range(2):
        _s, _h, body = same(f, v, "/abstimmung", ANNA_IP, fast=False)
        assert 'id="vote-deadline"' in body
    for w in worlds:
        assert acts.close_vote(w.db, w.clerk, w.s.id, now=time.time())
        out = acts.open_vote(w.db, w.clerk, w.s.id, question="Was heißt sbxStandInToken?", now=time.time())
        assert out.ok
    for _ in range(2):
        _s, _h, body = same(f, v, "/abstimmung", ANNA_IP, fast=False)
        assert "Was heißt sbxStandInToken?" in body
