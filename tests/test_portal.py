"""The portal through the Flask test client (client IP via REMOTE_ADDR), and the real gunicorn server."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from appliance import config as config_mod
from appliance.captive import codes
from appliance.helper.client import HelperError
from appliance.sessions import service
from appliance.sessions.roster import MemberRow
from appliance.store import open_db
from appliance.web.app import create_app
from tests.conftest import ROOT, need_root

ANNA_IP, GUEST_IP, UNKNOWN_IP, STRANGER_IP = "10.77.0.10", "10.77.0.11", "10.77.0.12", "10.77.0.99"


class FakeHelper:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self.fail = False

    def admit(self, mac: str, ip: str) -> None:
        self.calls.append(("admit", mac, ip))
        if self.fail:
            raise HelperError("Helfer nicht erreichbar (Test)")

    def revoke(self, mac: str, ip: str) -> None:
        self.calls.append(("revoke", mac, ip))


def _populate(cfg, db, active=True):
    s = service.create_session(db, body="Rat der Stadt", title="12. Sitzung des Rates", day="2026-11-24",
                               venue="Rathaus, Ratssaal")
    service.insert_members(db, s.id, [MemberRow("Anna Schmidt", "SPD", "member", True, "Rat")])
    if active:
        service.set_active(db, s.id)
    anna = service.members(db, s.id)[0]
    cfg.leases_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = cfg.leases_file.with_suffix(".tmp")
    tmp.write_text(f"0 02:5b:00:00:00:01 {ANNA_IP} anna *\n"
                   f"0 02:5b:00:00:00:02 {GUEST_IP} * *\n"
                   f"0 02:5b:00:00:00:03 {UNKNOWN_IP} * *\n")
    os.replace(tmp, cfg.leases_file)
    # What the radio daemon writes for AP-STA-CONNECTED <mac> keyid=<id>.
    for mac, keyid in (("02:5b:00:00:00:01", anna.keyid), ("02:5b:00:00:00:02", "guest")):
        db.execute("INSERT INTO stations(mac, interface, keyid, connected) VALUES (?, 'wlan0', ?, 1)", [mac, keyid])
    return s


@pytest.fixture
def helper():
    return FakeHelper()


@pytest.fixture
def make_app(cfg, db, helper):

    def build(active=True, **changes):
        _populate(cfg, db, active=active)
        return create_app(dataclasses.replace(cfg, **changes), helper=helper, testing=True)
    return build


@pytest.fixture
def app(make_app):
    return make_app()


def call(app, path, ip, method="GET", host="10.77.0.1", **kw):
    # A fresh client without a cookie jar each time: captive mini-browsers keep nothing.
    client = app.test_client(use_cookies=False)
    return client.open(path, method=method, base_url=f"http://{host}", environ_base={"REMOTE_ADDR": ip}, **kw)


def token_in(html: str) -> str:
    return re.search(r'name="csrf_token" value="([0-9a-f]+)"', html).group(1)


def live_admissions(db):
    return db.execute("SELECT mac, ip, kind FROM admissions WHERE revoked_at IS NULL ORDER BY id").fetchall()


def test_member_greeted_by_name_and_admitted_without_cookies(app, db, helper):
    resp = call(app, "/portal", ANNA_IP)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "Willkommen, Anna Schmidt" in html
    for fact in ("Rat der Stadt", "12. Sitzung des Rates", "24.11.2026", "Rathaus, Ratssaal", "Sie sind verbunden"):
        assert fact in html
    assert "Set-Cookie" not in resp.headers
    assert resp.headers["Cache-Control"] == "no-store"
    assert helper.calls == [("admit", "02:5b:00:00:00:01", ANNA_IP)]
    assert live_admissions(db) == [("02:5b:00:00:00:01", ANNA_IP, "member")]
    again = call(app, "/portal", ANNA_IP)  # second visit, still no cookie: still known, admitted once
    assert "Willkommen, Anna Schmidt" in again.get_data(as_text=True) and "Set-Cookie" not in again.headers
    assert len(helper.calls) == 1


def test_portal_in_english(app):
    html = call(app, "/portal?lang=en", ANNA_IP).get_data(as_text=True)
    assert "Welcome, Anna Schmidt" in html and '<html lang="en">' in html


def test_english_choice_survives_continue(app):
    html = call(app, "/portal?lang=en", GUEST_IP).get_data(as_text=True)
    assert 'action="/portal/continue?lang=en"' in html and "Continue" in html
    resp = call(app, "/portal/continue?lang=en", GUEST_IP, method="POST", data={"csrf_token": token_in(html)})
    assert resp.headers["Location"] == "/portal?lang=en"
    assert "You are connected." in call(app, resp.headers["Location"], GUEST_IP).get_data(as_text=True)


def test_guest_continue_with_device_token(app, db, helper):
    page = call(app, "/portal", GUEST_IP)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Anna" not in html
    assert 'action="/portal/continue"' in html and "<script" not in html
    assert helper.calls == [] and "Set-Cookie" not in page.headers
    assert call(app, "/", GUEST_IP).headers["Location"] == "/portal"
    resp = call(app, "/portal/continue", GUEST_IP, method="POST", data={"csrf_token": token_in(html)})
    assert resp.status_code == 303 and resp.headers["Location"] == "/portal"
    assert helper.calls == [("admit", "02:5b:00:00:00:02", GUEST_IP)]
    after = call(app, "/portal", GUEST_IP).get_data(as_text=True)
    assert "Sie sind verbunden" in after and "csrf_token" not in after
    home = call(app, "/", GUEST_IP)
    assert home.status_code == 200 and "12. Sitzung des Rates" in home.get_data(as_text=True)


def test_continue_without_or_with_foreign_token_refused(app, db, helper):
    other_token = token_in(call(app, "/portal", UNKNOWN_IP).get_data(as_text=True))
    for data in ({}, {"csrf_token": "0" * 32}, {"csrf_token": other_token}):
        resp = call(app, "/portal/continue", GUEST_IP, method="POST", data=data)
        assert resp.status_code == 400
        assert "Das Formular ist abgelaufen" in resp.get_data(as_text=True)
    assert helper.calls == [] and live_admissions(db) == []


def test_unknown_device_continues_like_a_guest(app, db):
    html = call(app, "/portal", UNKNOWN_IP).get_data(as_text=True)
    assert "Willkommen im Sitzungsnetz" in html
    call(app, "/portal/continue", UNKNOWN_IP, method="POST", data={"csrf_token": token_in(html)})
    assert live_admissions(db) == [("02:5b:00:00:00:03", UNKNOWN_IP, "guest")]


def test_after_admission_probes_online_other_device_captured(app):
    probe = ("/hotspot-detect.html", "captive.apple.com")
    assert call(app, probe[0], ANNA_IP, host=probe[1]).status_code == 302
    call(app, "/portal", ANNA_IP)
    online = call(app, probe[0], ANNA_IP, host=probe[1])
    assert online.status_code == 200 and "<BODY>Success</BODY>" in online.get_data(as_text=True)
    assert call(app, "/generate_204", ANNA_IP, host="connectivitycheck.gstatic.com").status_code == 204
    captured = call(app, probe[0], GUEST_IP, host=probe[1])
    assert (captured.status_code, captured.headers["Location"]) == (302, "http://10.77.0.1/portal")


def test_captive_api(app):
    resp = call(app, "/api/captive", ANNA_IP)
    assert resp.mimetype == "application/captive+json"
    assert json.loads(resp.data) == {"captive": True, "user-portal-url": "http://10.77.0.1/portal"}
    call(app, "/portal", ANNA_IP)
    body = json.loads(call(app, "/api/captive", ANNA_IP).data)
    assert body["captive"] is False and body["user-portal-url"] == "http://10.77.0.1/portal"
    assert json.loads(call(app, "/api/captive", GUEST_IP).data)["captive"] is True


def test_home_redirects_until_admitted(app):
    assert call(app, "/", ANNA_IP).headers["Location"] == "/portal"
    call(app, "/portal", ANNA_IP)
    html = call(app, "/", ANNA_IP).get_data(as_text=True)
    assert "Willkommen, Anna Schmidt" in html and "Tagesordnung und Unterlagen" in html


def test_box_names_are_the_box(app):
    for host in ("sitzungsbox", "sitzungsbox.local", "localhost:8080", "127.0.0.1:8080", "10.77.0.1:80"):
        assert call(app, "/healthz", STRANGER_IP, host=host).get_data(as_text=True) == "ok", host


def test_no_active_session_said_politely(make_app, helper):
    app = make_app(active=False)
    resp = call(app, "/portal", ANNA_IP)
    assert resp.status_code == 200 and "keine Sitzung aktiv" in resp.get_data(as_text=True)
    assert helper.calls == []


def test_device_not_found(app):
    resp = call(app, "/portal", STRANGER_IP)
    assert resp.status_code == 200 and "Gerät nicht erkannt" in resp.get_data(as_text=True)


def test_helper_failure_shows_german_503(app, db, helper):
    helper.fail = True
    resp = call(app, "/portal", ANNA_IP)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 503
    assert "nicht möglich" in html and "Sitzungsdienst" in html and "Traceback" not in html
    assert live_admissions(db) == []
    assert call(app, "/hotspot-detect.html", ANNA_IP, host="captive.apple.com").status_code == 302


def test_demo_as_parameter_only_in_demo(make_app):
    app = make_app(demo=True)
    html = call(app, f"/portal?as={ANNA_IP}", "127.0.0.1").get_data(as_text=True)
    assert "Willkommen, Anna Schmidt" in html
    guest = call(app, f"/portal?as={GUEST_IP}", "127.0.0.1").get_data(as_text=True)
    assert f'action="/portal/continue?as={GUEST_IP}"' in guest


def test_as_parameter_ignored_outside_demo(app, helper):
    html = call(app, f"/portal?as={ANNA_IP}", STRANGER_IP).get_data(as_text=True)
    assert "Anna" not in html and "Gerät nicht erkannt" in html
    assert helper.calls == []


# --- the real server ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _uids(pid: int) -> list[int]:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return [int(x) for x in line.split()[1:]]
    raise AssertionError("no Uid line")


def test_real_gunicorn_drops_root_and_serves():
    need_root()
    # Not under pytest's 0700 tmp dir: the dropped user must reach its state dir.
    root = Path(tempfile.mkdtemp(prefix="sbxp-web-", dir="/tmp"))
    os.chmod(root, 0o711)  # noqa: S103 - traversable for the dropped user, not listable
    port = _free_port()
    cfg = config_mod.Config(
        state_dir=root / "state", run_dir=root / "run", helper_socket=root / "run" / "helper.sock",
        leases_file=root / "state" / "dnsmasq.leases", hostapd_ctrl_dir=root / "hostapd",
        web_bind="127.0.0.1", web_port=port, web_user="sbxp-no-such-user",
    ).validate()
    (root / "web.toml").write_text(config_mod.to_toml(cfg))
    # A live admission (written as root, like an earlier run would) that the startup resync must retry.
    db = open_db(cfg.db_path)
    s = service.create_session(db, body="Rat", title="Sitzung", day="2026-11-24")
    service.set_active(db, s.id)
    db.execute("INSERT INTO admissions(session_id, mac, ip, kind, admitted_at) "
               "VALUES (?, '02:5b:00:00:00:01', '10.77.0.10', 'guest', '2026-11-24T18:00:00Z')", [s.id])
    db.conn.close()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "appliance.cli", "--config", str(root / "web.toml"), "web"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline, body, error = time.monotonic() + 30, None, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:  # noqa: S310
                    body = resp.read().decode()
                    break
            except OSError as exc:
                error = exc
                try:
                    proc.wait(timeout=0.1)  # the poll interval doubles as the check that it is still up
                except subprocess.TimeoutExpired:
                    pass
        assert body == "ok", f"no answer from gunicorn ({error}); rc={proc.poll()}"
        workers = psutil.Process(proc.pid).children()
        assert workers, "gunicorn runs no worker"
        for pid in [proc.pid, *(w.pid for w in workers)]:
            assert all(uid != 0 for uid in _uids(pid)), (pid, _uids(pid))
        assert _uids(proc.pid)[0] == 65534  # fell back to nobody
        assert (root / "state" / "sitzungsbox.db").stat().st_uid == 65534
    finally:
        proc.terminate()
        try:
            out, _ = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        shutil.rmtree(root, ignore_errors=True)
    text = out.decode(errors="replace")
    assert "läuft als 'nobody'" in text
    assert "Freigaben konnten nicht erneuert werden" in text  # helper down: logged, server still started
    assert "GET /healthz" in text


# --- the personal code: members behind external access points (no station keyid) ---------------------

CODE_LABEL = "Persönlicher Code (steht auf Ihrer Karte)"


def anna_of(db):
    return service.members(db, service.active_session(db).id)[0]


def send_code(app, ip, code, path="/portal/continue"):
    page = call(app, "/portal", ip).get_data(as_text=True)
    return call(app, path, ip, method="POST", data={"csrf_token": token_in(page), "code": code})


def test_device_without_keyid_sees_the_labelled_code_field(app):
    html = call(app, "/portal", UNKNOWN_IP).get_data(as_text=True)
    assert "Weiter" in html and CODE_LABEL in html and "<script" not in html
    field = re.search(r'<label for="member-code">([^<]+)</label>', html)
    assert field and field.group(1) == CODE_LABEL and 'id="member-code" name="code"' in html
    assert html.count('name="csrf_token"') == 2  # the guest step and the code: both device-bound


def test_devices_named_by_a_wifi_key_see_no_code_field(app):
    assert CODE_LABEL not in call(app, "/portal", GUEST_IP).get_data(as_text=True)
    assert CODE_LABEL not in call(app, "/portal", ANNA_IP).get_data(as_text=True)


def test_valid_code_admits_the_device_as_the_member_and_greets_her(app, db, helper, caplog):
    anna = anna_of(db)
    typed = codes.display(anna.code).lower().replace("-", " ")  # any case, with a space: as people type
    with caplog.at_level("INFO"):
        resp = send_code(app, UNKNOWN_IP, typed)
    assert resp.status_code == 303 and resp.headers["Location"] == "/portal"
    assert "Set-Cookie" not in resp.headers
    assert helper.calls == [("admit", "02:5b:00:00:00:03", UNKNOWN_IP)]
    rows = db.execute("SELECT mac, ip, kind, member_id FROM admissions WHERE revoked_at IS NULL").fetchall()
    assert rows == [("02:5b:00:00:00:03", UNKNOWN_IP, "member", anna.id)]
    html = call(app, "/portal", UNKNOWN_IP).get_data(as_text=True)
    assert "Willkommen, Anna Schmidt" in html and CODE_LABEL not in html
    home = call(app, "/", UNKNOWN_IP).get_data(as_text=True)
    assert "Willkommen, Anna Schmidt" in home
    assert anna.code not in caplog.text and codes.display(anna.code) not in caplog.text


def test_wrong_code_refused_in_german_and_logged_without_the_code(app, db, helper, caplog):
    with caplog.at_level("INFO"):
        resp = send_code(app, UNKNOWN_IP, "ABCD-EFGH")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert "Dieser Code ist nicht gültig" in html and 'role="alert"' in html and 'aria-invalid="true"' in html
    assert 'aria-describedby="code-hint code-error"' in html
    assert helper.calls == [] and live_admissions(db) == []
    assert "Fehlversuch" in caplog.text and "ABCD" not in caplog.text
    # Not a code at all (wrong length, a letter codes never have): said so, not counted as a guess.
    html = send_code(app, UNKNOWN_IP, "12345").get_data(as_text=True)
    assert "8 Zeichen" in html and "K7PD-M3QX" in html
    assert "Bitte geben Sie den persönlichen Code" in send_code(app, UNKNOWN_IP, "  ").get_data(as_text=True)


def test_code_guessing_is_throttled_per_device(app, db, helper):
    now = [100.0]
    app.extensions["sb_code_throttle"] = codes.Throttle(free=5, base=5.0, clock=lambda: now[0])
    for _ in range(5):
        assert send_code(app, UNKNOWN_IP, "ABCD-EFGH").status_code == 422
    resp = send_code(app, UNKNOWN_IP, anna_of(db).code)  # even the right code waits now
    assert resp.status_code == 429 and resp.headers["Retry-After"] == "5"
    assert "Zu viele falsche Versuche. Bitte warten Sie 5 Sekunden" in resp.get_data(as_text=True)
    assert live_admissions(db) == []
    now[0] += 5
    assert send_code(app, UNKNOWN_IP, anna_of(db).code).status_code == 303
    assert live_admissions(db) == [("02:5b:00:00:00:03", UNKNOWN_IP, "member")]


def test_code_of_an_inactive_session_is_refused(app, db, helper):
    other = service.create_session(db, body="Ausschuss", title="Andere Sitzung", day="2026-11-25")
    service.insert_members(db, other.id, [MemberRow("Carla Weber", "CDU", "member", True, "Ausschuss")])
    carla = service.members(db, other.id)[0]
    resp = send_code(app, UNKNOWN_IP, carla.code)
    assert resp.status_code == 422 and "Dieser Code ist nicht gültig" in resp.get_data(as_text=True)
    assert helper.calls == [] and live_admissions(db) == []


def test_old_code_dead_after_rotation(app, db):
    anna = anna_of(db)
    service.replace_keys(db, anna.session_id)
    assert send_code(app, UNKNOWN_IP, anna.code).status_code == 422
    assert send_code(app, UNKNOWN_IP, anna_of(db).code).status_code == 303


def test_device_with_a_keyid_never_uses_a_code(app, db, helper):
    """A phone on the guest key (or a personal key) is named by that key: a code posted anyway changes
    nothing, so nobody can turn a guest-key phone into a member's by a lifted code."""
    token = token_in(call(app, "/portal", GUEST_IP).get_data(as_text=True))
    resp = call(app, "/portal/continue", GUEST_IP, method="POST", data={"csrf_token": token, "code": anna_of(db).code})
    assert resp.status_code == 303 and helper.calls == [] and live_admissions(db) == []
    assert "Anna" not in call(app, "/portal", GUEST_IP).get_data(as_text=True)


def test_code_needs_the_device_bound_token(app, db, helper):
    foreign = token_in(call(app, "/portal", GUEST_IP).get_data(as_text=True))
    for data in ({"code": anna_of(db).code}, {"code": anna_of(db).code, "csrf_token": foreign}):
        assert call(app, "/portal/continue", UNKNOWN_IP, method="POST", data=data).status_code == 400
    assert live_admissions(db) == []


def test_code_input_is_escaped(app):
    evil = '"><script>alert(1)</script>'
    html = send_code(app, UNKNOWN_IP, evil).get_data(as_text=True)
    assert "<script>alert(1)" not in html and "&lt;script&gt;" in html


def test_guest_who_then_gives_the_code_becomes_the_member_and_is_present(app, cfg, db, helper):
    """Tapped "Weiter" first: the code still names her, on the same firewall element, and the presence
    daemon names her from the new admission row."""
    from appliance.presence.sources import PresenceDaemon
    from appliance.presence.store import attendance

    html = call(app, "/portal", UNKNOWN_IP).get_data(as_text=True)
    call(app, "/portal/continue", UNKNOWN_IP, method="POST", data={"csrf_token": token_in(html)})
    presence = PresenceDaemon(cfg, clock=lambda: 1000.0)
    presence.round(db)  # the guest row: nobody present
    connected = call(app, "/portal", UNKNOWN_IP).get_data(as_text=True)
    assert "Sie sind verbunden" in connected and CODE_LABEL in connected
    anna = anna_of(db)
    assert send_code(app, UNKNOWN_IP, anna.code).status_code == 303
    assert live_admissions(db) == [("02:5b:00:00:00:03", UNKNOWN_IP, "member")]
    assert helper.calls == [("admit", "02:5b:00:00:00:03", UNKNOWN_IP)]  # the element was already there
    assert "Willkommen, Anna Schmidt" in call(app, "/portal", UNKNOWN_IP).get_data(as_text=True)
    presence.round(db)
    assert next(r.status for r in attendance(db, anna.session_id) if r.member_id == anna.id) == "present"


def test_code_field_in_english(app):
    html = call(app, "/portal?lang=en", UNKNOWN_IP).get_data(as_text=True)
    assert "Personal code (printed on your card)" in html and 'action="/portal/continue?lang=en"' in html
