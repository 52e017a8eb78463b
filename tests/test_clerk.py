"""Clerk pages through Flask's test client: login, sessions, CSV import, cards, key rotation."""

from __future__ import annotations

import io
import re

import pytest

from appliance.sessions import service
from appliance.usecases import sessions as acts
from appliance.web import auth
from appliance.web.app import create_app

PASSWORD = "test-Pass-word-4711"
GOOD_CSV = """Name;Fraktion;Rolle;Stimmrecht;Gremium
Anna Schmidt;SPD;Mitglied;ja;Rat
Bernd Müller;CDU;Stellvertretung;nein;Rat
Jürgen Groß;CDU;Mitglied;ja;Rat
""".encode("cp1252")
BAD_CSV = """Name;Fraktion;Rolle;Stimmrecht
Dora Weiß;Grüne;Bürgermeisterin;ja
;SPD;Mitglied;ja
""".encode()


class RecordingHelper:
    def __init__(self) -> None:
        self.calls: list[tuple] = []


@pytest.fixture
def app(cfg):
    application = create_app(cfg, helper=RecordingHelper(), testing=True)
    return application


@pytest.fixture
def client(app):
    return app.test_client()


def token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "form without CSRF token"
    return match.group(1)


def set_pw(cfg, password: str = PASSWORD) -> None:
    from appliance.store import open_db

    db = open_db(cfg.db_path)
    auth.set_password(db, password, actor="test")
    db.conn.close()


def login(client, password: str = PASSWORD, ip: str = "127.0.0.1"):
    page = client.get("/clerk/login", environ_base={"REMOTE_ADDR": ip})
    return client.post("/clerk/login", data={"csrf_token": token(page.text), "password": password},
                       environ_base={"REMOTE_ADDR": ip})


@pytest.fixture
def clerk(client, cfg):
    set_pw(cfg)
    resp = login(client)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/clerk/sessions")
    return client


def csrf_of(client, path: str = "/clerk/sessions") -> str:
    return token(client.get(path).text)


def confirm_token(html: str) -> str:
    match = re.search(r'name="confirm_token" value="([^"]+)"', html)
    assert match, "confirmation page without its token"
    return match.group(1)


def confirmed(client, path: str, **fields):
    """A guarded act as the clerk does it: its confirmation page (GET), then the box ticked and confirmed."""
    page = client.get(path, query_string=fields)
    assert page.status_code == 200, page.text
    return client.post(path, data={"csrf_token": token(page.text), "confirm_token": confirm_token(page.text),
                                   "confirm": "yes", **fields})


def new_session(clerk, db, **overrides) -> service.Session:
    form = {"body": "Rat der Stadt", "title": "Ratssitzung", "date": "12.03.2026", "venue": "Ratssaal"}
    form.update(overrides)
    resp = clerk.post("/clerk/sessions", data={**form, "csrf_token": csrf_of(clerk)})
    assert resp.status_code == 302, resp.text
    return service.list_sessions(db)[0]


def upload(clerk, session_id: int, data: bytes, name: str = "liste.csv"):
    tok = csrf_of(clerk, f"/clerk/sessions/{session_id}")
    return clerk.post(f"/clerk/sessions/{session_id}/import",
                      data={"csrf_token": tok, "csv": (io.BytesIO(data), name)},
                      content_type="multipart/form-data")


# --- login ------------------------------------------------------------------------------------


def test_every_clerk_page_requires_login(client, db):
    s = service.create_session(db, body="Rat", title="T", day="2026-01-01")
    for path in ("/clerk/", "/clerk/sessions", f"/clerk/sessions/{s.id}", f"/clerk/sessions/{s.id}/cards",
                 f"/clerk/sessions/{s.id}/guest-poster", f"/clerk/sessions/{s.id}/cards.zip",
                 f"/clerk/sessions/{s.id}/rotate", f"/clerk/sessions/{s.id}/activate",
                 f"/clerk/sessions/{s.id}/unterlagen/loeschen", "/clerk/chat/wipe", "/clerk/presence/wipe"):
        resp = client.get(path)
        assert resp.status_code == 302, path
        assert "/clerk/login" in resp.headers["Location"], path


def test_no_default_password_login_page_explains_set_password(client, db):
    page = client.get("/clerk/login")
    assert page.status_code == 200
    assert "sitzungsbox set-password" in page.text
    assert "kein Standardpasswort" in page.text
    assert 'type="password"' not in page.text  # nothing to type into: there is no password yet
    with client.session_transaction() as sess:  # a valid token, as if a form had been shown
        sess["csrf"] = "known-token"
    for guess in ("admin", "secret", "sitzungsbox", "password", ""):
        resp = client.post("/clerk/login", data={"csrf_token": "known-token", "password": guess})
        assert resp.status_code in (401, 429)  # refused; the fifth guess is also throttled
    assert client.get("/clerk/sessions").status_code == 302
    assert not auth.has_password(db)


def test_login_form_is_labelled_and_wrong_password_refused(client, cfg):
    set_pw(cfg)
    page = client.get("/clerk/login")
    assert '<label for="password">Passwort</label>' in page.text
    assert 'autocomplete="current-password"' in page.text
    resp = login(client, "falsch")
    assert resp.status_code == 401
    assert "Das Passwort ist falsch." in resp.text
    assert client.get("/clerk/sessions").status_code == 302


def test_login_rotates_session_and_logout_ends_it_server_side(client, cfg):
    set_pw(cfg)
    before = token(client.get("/clerk/login").text)
    assert login(client).status_code == 302
    after = csrf_of(client)
    assert after != before  # a token planted before login is worthless afterwards
    stolen = client.get_cookie("sitzungsbox_clerk").value
    resp = client.post("/clerk/logout", data={"csrf_token": after})
    assert resp.status_code == 302
    # Replaying the old signed cookie does not bring the session back.
    client.set_cookie("sitzungsbox_clerk", stolen)
    assert client.get("/clerk/sessions").status_code == 302


def test_new_password_ends_existing_sessions(clerk, cfg):
    assert clerk.get("/clerk/sessions").status_code == 200
    set_pw(cfg, "another-one-2")
    assert clerk.get("/clerk/sessions").status_code == 302


def test_login_throttled_per_ip(app, client, cfg):
    set_pw(cfg)
    now = [1000.0]
    app.config[auth.CLOCK] = lambda: now[0]
    for attempt in range(5):
        resp = login(client, f"wrong{attempt}", ip="192.0.2.7")
    assert resp.status_code == 429
    assert "Zu viele Fehlversuche" in resp.text and "60 Sekunden" in resp.text
    # Even the right password waits now …
    resp = login(client, PASSWORD, ip="192.0.2.7")
    assert resp.status_code == 429
    # … but another address is not locked out by this one.
    other = app.test_client()
    assert login(other, PASSWORD, ip="192.0.2.8").status_code == 302
    now[0] += 61
    assert login(client, PASSWORD, ip="192.0.2.7").status_code == 302


def test_set_password_cmd_prints_once_and_stores_only_a_hash(cfg, capsys, client):
    assert auth.set_password_cmd(cfg) == 0
    out = capsys.readouterr().out
    password = re.search(r"^\s{4}(\S+)$", out, re.M).group(1)
    assert "nur jetzt angezeigt" in out
    assert len(password.replace("-", "")) == 16
    from appliance.store import open_db

    db = open_db(cfg.db_path)
    stored = db.execute("SELECT value FROM settings WHERE key = 'password:clerk'").fetchone()[0]
    audit = " ".join(r["detail"] + r["action"] for r in db["audit"].rows)
    assert stored.startswith("scrypt:") and password not in stored and password not in audit
    assert auth.ensure_password(db) is None  # exists already: not replaced
    db.conn.close()
    assert login(client, password).status_code == 302


def test_ensure_password_creates_only_once(db):
    first = auth.ensure_password(db)
    assert first and auth.check_password(db, first)
    assert auth.ensure_password(db) is None
    assert auth.check_password(db, first)


@pytest.mark.parametrize("target,ok", [
    ("/clerk/sessions/3", True), ("//evil.example/clerk/", False), ("http://evil.example/clerk/x", False),
    ("/portal", False), ("/clerk/login", False), ("/clerk/\\evil", False),
])
def test_next_is_never_an_open_redirect(app, target, ok):
    with app.test_request_context():
        assert (auth.safe_next(target) == target) is ok


# --- CSRF -------------------------------------------------------------------------------------


def test_post_without_csrf_token_is_refused_in_german(clerk, db):
    resp = clerk.post("/clerk/sessions", data={"body": "Rat", "title": "X", "date": "2026-01-01"})
    assert resp.status_code == 400
    assert "Das Formular ist abgelaufen" in resp.text
    resp = clerk.post("/clerk/sessions", data={"body": "Rat", "title": "X", "date": "2026-01-01",
                                               "csrf_token": "forged"})
    assert resp.status_code == 400
    assert db["sessions"].count == 0


def test_every_form_carries_the_csrf_token(clerk, db):
    s = new_session(clerk, db)
    for path in ("/clerk/sessions", f"/clerk/sessions/{s.id}", f"/clerk/sessions/{s.id}/rotate"):
        html = clerk.get(path).text
        forms = re.findall(r"<form[^>]*>.*?</form>", html, re.S)
        assert forms, path
        for form in forms:
            assert 'name="csrf_token"' in form, (path, form[:80])


# --- sessions and import ----------------------------------------------------------------------


def test_create_session_bad_date_shows_german_error_and_keeps_input(clerk, db):
    resp = clerk.post("/clerk/sessions", data={"csrf_token": csrf_of(clerk), "body": "Hauptausschuss",
                                               "title": "Haushalt 2027", "date": "morgen", "venue": "Saal B"})
    assert resp.status_code == 422
    assert "Datum „morgen“ ist kein Datum" in resp.text
    assert 'value="Hauptausschuss"' in resp.text and 'value="Haushalt 2027"' in resp.text
    assert 'value="Saal B"' in resp.text and 'value="morgen"' in resp.text
    assert db["sessions"].count == 0


def test_create_session_with_german_date_and_list(clerk, db):
    s = new_session(clerk, db)
    assert s.date == "2026-03-12" and s.ssid == "Sitzung"
    page = clerk.get("/clerk/sessions").text
    assert "12.03.2026" in page and "Ratssitzung" in page


def test_csv_upload_good_then_bad_imports_nothing(clerk, db):
    s = new_session(clerk, db)
    resp = upload(clerk, s.id, GOOD_CSV)
    assert resp.status_code == 302
    assert db["members"].count == 3
    page = clerk.get(f"/clerk/sessions/{s.id}").text
    assert "3 Personen importiert" in page
    assert "3 Personen, davon 2 stimmberechtigt" in page
    # Grouped by faction: CDU's group lists its two members before SPD's.
    assert page.index(">CDU") < page.index("Bernd Müller") < page.index("Jürgen Groß") < page.index(">SPD")
    assert "Stellvertretung" in page

    resp = upload(clerk, s.id, BAD_CSV)
    assert resp.status_code == 422
    assert "nichts wurde importiert" in resp.text
    assert "Zeile 2: unbekannte Rolle „Bürgermeisterin“" in resp.text
    assert "Zeile 3: Name fehlt" in resp.text
    assert db["members"].count == 3

    resp = upload(clerk, s.id, GOOD_CSV)  # same people again: refused as a whole
    assert resp.status_code == 422 and "Schon in dieser Sitzung" in resp.text
    assert db["members"].count == 3


def test_csv_upload_too_big_or_missing(clerk, db):
    s = new_session(clerk, db)
    resp = upload(clerk, s.id, b"Name;Rolle\n" + b"x" * (2 * 1024 * 1024 + 10))
    assert resp.status_code == 413 and "größer als 2 MB" in resp.text
    tok = csrf_of(clerk, f"/clerk/sessions/{s.id}")
    resp = clerk.post(f"/clerk/sessions/{s.id}/import", data={"csrf_token": tok}, content_type="multipart/form-data")
    assert resp.status_code == 422 and "Bitte wählen Sie eine CSV-Datei aus." in resp.text
    assert db["members"].count == 0


def test_activate(clerk, db, monkeypatch):
    pushed = []
    monkeypatch.setattr(acts, "_push_keys", lambda cfg, db_, revoked=(): pushed.append(1) or (1, 0, []))
    s = new_session(clerk, db)
    resp = clerk.post(f"/clerk/sessions/{s.id}/activate", data={"csrf_token": csrf_of(clerk)})
    assert resp.status_code == 422 and service.active_session(db) is None and pushed == []  # not confirmed
    resp = confirmed(clerk, f"/clerk/sessions/{s.id}/activate")
    assert resp.status_code == 302
    assert service.active_session(db).id == s.id
    assert pushed == [1]
    assert "Diese Sitzung ist aktiv" in clerk.get(f"/clerk/sessions/{s.id}").text


# --- cards and poster -------------------------------------------------------------------------


def test_cards_page_lists_every_member_with_a_qr_and_the_fallback_key(clerk, db, cfg):
    s = new_session(clerk, db)
    upload(clerk, s.id, GOOD_CSV)
    resp = clerk.get(f"/clerk/sessions/{s.id}/cards")
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    html = resp.text
    cards = re.findall(r'<article class="card".*?</article>', html, re.S)
    people = service.members(db, s.id)
    assert len(cards) == len(people) == 3
    for m in people:
        card = next(c for c in cards if f'data-member-id="{m.id}"' in c)
        assert m.name in card and m.passphrase in card and s.ssid in card
        assert f'role="img" aria-label="WLAN-Schlüssel von {m.name}"' in card
        assert card.count("<path") == 1
        assert f"http://{cfg.hostname}.local" in card and f"http://{cfg.address}" in card
        # No other member's key on this card.
        assert all(o.passphrase not in card for o in people if o.id != m.id)
    assert s.guest_key not in html


def test_guest_poster_shows_the_guest_key_only(clerk, db):
    s = new_session(clerk, db)
    upload(clerk, s.id, GOOD_CSV)
    resp = clerk.get(f"/clerk/sessions/{s.id}/guest-poster")
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    assert s.guest_key in resp.text and 'role="img"' in resp.text
    assert all(m.passphrase not in resp.text for m in service.members(db, s.id))


def test_card_pdf_of_another_session_is_404(clerk, db):
    a = new_session(clerk, db, title="A")
    upload(clerk, a.id, GOOD_CSV)
    b = new_session(clerk, db, title="B")
    member = service.members(db, a.id)[0]
    assert clerk.get(f"/clerk/sessions/{b.id}/members/{member.id}/card.pdf").status_code == 404
    resp = clerk.get(f"/clerk/sessions/{a.id}/members/{member.id}/card.pdf")
    assert resp.status_code == 200 and resp.mimetype == "application/pdf"
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["Content-Disposition"].isascii()


# --- key rotation -----------------------------------------------------------------------------


def install_pipeline(monkeypatch, calls: list, *, fail_netconf: bool = False):
    """The adapters the rotation calls, recording: file writer, radio control and the admissions."""
    from appliance.captive import admission
    from appliance.netconf import render
    from appliance.radio import control

    def write_psk(cfg, db):
        calls.append(("write_psk", [m.passphrase for m in service.members(db, service.active_session(db).id)]
                      if service.active_session(db) else []))
        if fail_netconf:
            raise OSError("read-only")
        return ["hostapd-wlan0.conf", "wpa_psk"]

    def reload_keys(cfg, db, revoked):
        calls.append(("reload_keys", sorted(revoked)))
        return ["02:00:00:00:00:01", "02:00:00:00:00:02"]

    def revoke_session_devices(db, helper, session_id):
        calls.append(("revoke", session_id))
        return 5

    monkeypatch.setattr(render, "write_psk", write_psk)
    monkeypatch.setattr(control, "reload_keys", reload_keys)
    monkeypatch.setattr(admission, "revoke_session_devices", revoke_session_devices)


def test_rotation_requires_confirmation_then_runs_the_pipeline(clerk, db, monkeypatch):
    calls: list = []
    install_pipeline(monkeypatch, calls)
    s = new_session(clerk, db)
    upload(clerk, s.id, GOOD_CSV)
    service.set_active(db, s.id)
    old = {m.id: (m.keyid, m.passphrase) for m in service.members(db, s.id)}

    page = clerk.get(f"/clerk/sessions/{s.id}/rotate")
    assert page.status_code == 200 and "Ich habe verstanden" in page.text
    assert page.headers["Cache-Control"] == "no-store"
    resp = clerk.post(f"/clerk/sessions/{s.id}/rotate",
                      data={"csrf_token": token(page.text), "confirm_token": confirm_token(page.text)})
    assert resp.status_code == 422 and "Bitte bestätigen Sie" in resp.text
    assert calls == [] and {m.id: (m.keyid, m.passphrase) for m in service.members(db, s.id)} == old

    resp = clerk.post(f"/clerk/sessions/{s.id}/rotate", data={"csrf_token": token(page.text), "confirm": "yes",
                                                              "confirm_token": confirm_token(page.text)})
    assert resp.status_code == 302
    new = {m.id: (m.keyid, m.passphrase) for m in service.members(db, s.id)}
    assert all(new[i][0] != old[i][0] and new[i][1] != old[i][1] for i in old)
    assert [c[0] for c in calls] == ["write_psk", "reload_keys", "revoke"]
    assert set(calls[0][1]) == {p for _, p in new.values()}  # files written from the new keys
    assert calls[1][1] == sorted([k for k, _ in old.values()] + ["guest"])
    assert calls[2][1] == s.id
    page = clerk.get(f"/clerk/sessions/{s.id}").text
    assert "Alle Schlüssel erneuert. 2 Geräte wurden getrennt. Bitte neue Karten drucken." in page
    assert service.get_session(db, s.id).key_generation == 2


def test_rotation_reports_a_failing_step_and_still_revokes(cfg, db, monkeypatch):
    calls: list = []
    install_pipeline(monkeypatch, calls, fail_netconf=True)
    s = service.create_session(db, body="Rat", title="T", day="2026-01-01")
    service.set_active(db, s.id)
    db["stations"].insert({"mac": "02:00:00:00:00:09", "interface": "wlan0", "keyid": "guest", "connected": 1})
    result = acts.rotate_keys(cfg, db, RecordingHelper(), None, "test")
    assert [c[0] for c in calls] == ["write_psk", "revoke"]  # no radio reload of stale files
    assert not result.ok and "Netzkonfiguration" in result.message()
    assert result.devices_disconnected == 1 and result.admissions_revoked == 5
    assert result.generation == 2


def test_rotation_message_grammar():
    assert acts.rotation_text(1) == "Alle Schlüssel erneuert. 1 Gerät wurde getrennt. Bitte neue Karten drucken."
