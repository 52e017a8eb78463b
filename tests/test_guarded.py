"""Acts that affect the room are guarded (issue 12): activating a session, renewing its keys, wiping its documents,
chat or attendance record. Each shows one confirmation page (what happens to how many, counted from the
database) and does nothing on a POST that does not carry that page's token: no confirmation page, an old or
altered token, numbers that changed since, another login. Tables for the pure wording and token
(rules.guard), the counts (usecases.impact), the web pages through Flask's test client, and the command line.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from appliance.helper.client import NullHelper
from appliance.rules import guard
from appliance.sessions import service
from appliance.sessions.roster import MemberRow
from appliance.usecases import impact
from appliance.web import auth
from appliance.web.app import create_app
from tests.live_support import populate
from tests.test_clerk import confirm_token, install_pipeline, token

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "guarded-Test-pass-1"
def german(key: str, **values) -> str:
    from appliance.web import i18n

    text = i18n.load()["de"][key]
    return text.format(**values) if values else text


# --- the wording (pure) --------------------------------------------------------------------------------------

def activation(devices: int, admissions: int, active_id: int | None = 1) -> guard.Impact:
    return guard.Impact(guard.ACTIVATE, 2, "Hauptausschuss", active_id=active_id, active_title="12. Ratssitzung",
                        devices=devices, admissions=admissions)


@pytest.mark.parametrize(("impact", "lines"), [
    (activation(58, 41), ["Die laufende Sitzung „12. Ratssitzung“ wird beendet, „Hauptausschuss“ wird aktiv.",
                          "58 verbundene Geräte werden getrennt und müssen sich mit den Karten der neuen Sitzung neu "
                          "verbinden.", "41 Freigaben werden entzogen."]),
    (activation(1, 1), ["Die laufende Sitzung „12. Ratssitzung“ wird beendet, „Hauptausschuss“ wird aktiv.",
                        "1 verbundenes Gerät wird getrennt und muss sich mit den Karten der neuen Sitzung neu "
                        "verbinden.", "1 Freigabe wird entzogen."]),
    (activation(0, 0), ["Die laufende Sitzung „12. Ratssitzung“ wird beendet, „Hauptausschuss“ wird aktiv.",
                        "Es ist kein Gerät verbunden: niemand wird getrennt.", "Keine Freigabe wird entzogen."]),
    (activation(0, 0, active_id=None), ["Es ist keine Sitzung aktiv: niemand wird getrennt. Danach gelten die "
                                        "Karten von „Hauptausschuss“ im WLAN."]),
    (activation(0, 0, active_id=2), ["„Hauptausschuss“ ist bereits aktiv: niemand wird getrennt."]),
    (guard.Impact(guard.ROTATE, 1, "Rat", active_id=1, keys=62, devices=58, admissions=41),
     ["Die persönlichen Schlüssel (62) und der Gastschlüssel von „Rat“ werden ersetzt: Alle bisherigen Karten und "
      "Aushänge werden sofort ungültig.",
      "58 verbundene Geräte werden getrennt und müssen sich mit den neuen Karten neu verbinden.",
      "41 Freigaben werden entzogen.",
      "Danach müssen neue Karten gedruckt und verteilt werden. Tun Sie das nur, wenn eine Karte in falsche Hände "
      "geraten ist."]),
    (guard.Impact(guard.ROTATE, 1, "Rat", active_id=2, keys=3),
     ["Die persönlichen Schlüssel (3) und der Gastschlüssel von „Rat“ werden ersetzt: Alle bisherigen Karten und "
      "Aushänge werden sofort ungültig.", "„Rat“ ist nicht aktiv: kein Gerät wird getrennt.",
      "Keine Freigabe wird entzogen.",
      "Danach müssen neue Karten gedruckt und verteilt werden. Tun Sie das nur, wenn eine Karte in falsche Hände "
      "geraten ist."]),
    (guard.Impact(guard.WIPE_DOCUMENTS, 1, "Rat", files=0),
     ["„Rat“ hat keine nichtöffentlichen Dateien: Es wird keine Datei gelöscht.",
      "Niemand wird vom Netz getrennt; gelöschte Dateien kann danach niemand mehr öffnen."]),
    (guard.Impact(guard.WIPE_ALL_DOCUMENTS, 1, "Rat", files=12),
     ["Alle 12 Dateien von „Rat“ werden endgültig von der Box gelöscht, mit der ganzen Tagesordnung.",
      "Niemand wird vom Netz getrennt; gelöschte Dateien kann danach niemand mehr öffnen."]),
    (guard.Impact(guard.WIPE_CHAT, 1, "Rat", messages=1),
     ["1 Chat-Nachricht von „Rat“ wird endgültig gelöscht, dazu Stummschaltungen und Chat-Einstellungen.",
      "Niemand wird vom Netz getrennt."]),
    (guard.Impact(guard.WIPE_PRESENCE, 1, "Rat", intervals=7, people=5, corrections=2),
     ["Die Anwesenheitsdaten von „Rat“ werden endgültig gelöscht (Anwesenheitszeiträume: 7, Personen: 5, "
      "Korrekturen von Hand: 2). Die Anwesenheitsliste beginnt danach leer.", "Niemand wird vom Netz getrennt."]),
    (guard.Impact(guard.WIPE_PRESENCE, 1, "Rat"),
     ["„Rat“ hat keine Anwesenheitsdaten: Es wird nichts gelöscht.", "Niemand wird vom Netz getrennt."]),
])
def test_words_say_what_happens_to_how_many(impact, lines):
    assert guard.words(impact, german) == lines


def test_an_unknown_act_is_no_impact():
    with pytest.raises(ValueError, match="not a guarded act"):
        guard.Impact("reboot", 1, "Rat")


# --- the token (pure) ----------------------------------------------------------------------------------------

SECRET = b"k" * 32


@pytest.mark.parametrize(("shown", "now_shown", "checked", "bound", "now", "verdict"), [
    (activation(58, 41), 1000, activation(58, 41), "login-a", 1000 + 60, guard.Verdict.OK),
    (activation(58, 41), 1000, activation(59, 41), "login-a", 1060, guard.Verdict.CHANGED),  # a phone joined
    (activation(58, 41), 1000, activation(0, 0, active_id=2), "login-a", 1060, guard.Verdict.CHANGED),  # done
    (activation(58, 41), 1000, activation(58, 41), "login-b", 1060, guard.Verdict.CHANGED),  # another login
    (activation(58, 41), 1000, activation(58, 41), "login-a", 1000 + guard.MAX_AGE + 1, guard.Verdict.EXPIRED),
    (activation(58, 41), 5000, activation(58, 41), "login-a", 1000, guard.Verdict.EXPIRED),  # from the future
    (guard.Impact(guard.WIPE_DOCUMENTS, 1, "Rat", files=2), 1000, guard.Impact(guard.WIPE_ALL_DOCUMENTS, 1, "Rat",
                                                                               files=2), "login-a", 1060,
     guard.Verdict.CHANGED),  # the token of one wipe does not confirm another
])
def test_the_token_confirms_exactly_what_was_shown(shown, now_shown, checked, bound, now, verdict):
    tok = guard.sign(SECRET, shown, now_shown, "login-a")
    assert guard.check(SECRET, checked, tok, bound, now) is verdict


@pytest.mark.parametrize("tok", ["", "abc", "1000.", ".deadbeef", "x1000.deadbeef"])
def test_no_token_is_missing(tok):
    assert guard.check(SECRET, activation(1, 1), tok, "login-a", 1000) is guard.Verdict.MISSING


def test_an_altered_token_is_refused():
    tok = guard.sign(SECRET, activation(1, 1), 1000, "login-a")
    issued, mac = tok.split(".")
    flipped = mac[:-1] + ("0" if mac[-1] != "0" else "1")
    assert guard.check(SECRET, activation(1, 1), f"{issued}.{flipped}", "login-a", 1000) is guard.Verdict.CHANGED
    assert guard.check(SECRET, activation(1, 1), f"{int(issued) + 1}.{mac}", "login-a", 1001) is guard.Verdict.CHANGED
    assert guard.check(b"other", activation(1, 1), tok, "login-a", 1000) is guard.Verdict.CHANGED


# --- the counts (usecases.impact) -----------------------------------------------------------------------------

def second_session(db) -> service.Session:
    s = service.create_session(db, body="Hauptausschuss", title="Ausschuss im Dezember", day="2026-12-08")
    service.insert_members(db, s.id, [MemberRow("Erik Neu", "FDP", "member", True, "Hauptausschuss")])
    return s


def test_counts_come_from_connected_stations_and_live_admissions(cfg, db):
    live, ms = populate(cfg, db)  # 4 stations connected (Anna, Bernd, Carla, a guest), 3 admitted
    other = second_session(db)
    db.execute("INSERT INTO stations(mac, interface, keyid, connected) VALUES ('02:00:00:00:09:01', 'wlan0', ?, 0)",
               [ms["Dora"].keyid])  # gone already: not counted
    db.execute("INSERT INTO stations(mac, interface, keyid, connected) VALUES ('02:00:00:00:09:02', 'wlan0', "
               "'stale-keyid', 1)")  # a keyid of no session: not this session's
    db.execute("UPDATE admissions SET revoked_at = '2026-12-01T00:00:00Z' WHERE id = (SELECT MIN(id) FROM admissions)")
    found = impact.of(db, guard.ACTIVATE, other.id)
    assert (found.active_id, found.active_title, found.devices, found.admissions) == (live.id, live.title, 4, 2)
    assert found.switches and found.affects_room
    assert impact.of(db, guard.ACTIVATE, live.id).devices == 0  # already live: nobody is dropped
    rotation = impact.of(db, guard.ROTATE, live.id)
    assert (rotation.keys, rotation.devices, rotation.admissions, rotation.generation) == (4, 4, 2, 1)
    assert impact.of(db, guard.ROTATE, other.id).devices == 0  # not on the air
    with pytest.raises(service.SessionError):
        impact.of(db, guard.ACTIVATE, 999)


# --- the web pages -------------------------------------------------------------------------------------------

@pytest.fixture
def world(cfg, db, monkeypatch):
    """A live session (4 devices connected, 3 admitted) with chat, attendance and documents; a second session;
    a logged-in clerk; the radio, key file and firewall replaced by recorders."""
    live, ms = populate(cfg, db)
    other = second_session(db)
    for n in range(3):
        db.execute("INSERT INTO chat_messages(session_id, room, client_id, author_kind, author_member_id, "
                   "author_name, body, at) VALUES (?, 'all', ?, 'member', ?, 'Anna', 'Hallo', "
                   "'2026-12-01T18:00:00Z')", [live.id, f"c-{n}", ms["Anna"].id])
    for who in ("Anna", "Bernd"):
        db.execute("INSERT INTO presence_intervals(session_id, member_id, start, start_source) VALUES (?, ?, 1, 'x')",
                   [live.id, ms[who].id])
    for n, public in ((1, 1), (2, 0), (3, 0)):
        db.execute("INSERT INTO doc_files(session_id, name, title, sha256, size, mime, public, added_at) "
                   "VALUES (?, ?, ?, ?, 10, 'application/pdf', ?, '2026-12-01T00:00:00Z')",
                   [live.id, f"d{n}.pdf", f"d{n}", f"{n:064x}", public])
    auth.set_password(db, PASSWORD, actor="test")
    calls: list = []
    install_pipeline(monkeypatch, calls)
    app = create_app(cfg, helper=NullHelper(), testing=True)
    client = app.test_client()
    login = client.get("/clerk/login")
    assert client.post("/clerk/login", data={"csrf_token": token(login.text), "password": PASSWORD}).status_code == 302
    return {"app": app, "client": client, "live": live, "other": other, "calls": calls, "db": db}


def acts(w) -> dict[str, tuple[str, dict, str]]:
    """act -> (its URL, the fields its form sends, a sentence its confirmation page must show)."""
    live, other = w["live"].id, w["other"].id
    return {
        "activate": (f"/clerk/sessions/{other}/activate", {},
                     "4 verbundene Geräte werden getrennt und müssen sich mit den Karten der neuen Sitzung neu "
                     "verbinden. 3 Freigaben werden entzogen."),
        "rotate": (f"/clerk/sessions/{live}/rotate", {},
                   "4 verbundene Geräte werden getrennt und müssen sich mit den neuen Karten neu verbinden."),
        "wipe_documents": (f"/clerk/sessions/{live}/unterlagen/loeschen", {"what": "nonpublic"},
                           "2 nichtöffentliche Dateien von „12. Sitzung des Rates“ werden endgültig"),
        "wipe_all_documents": (f"/clerk/sessions/{live}/unterlagen/loeschen", {"what": "all"},
                               "Alle 3 Dateien von „12. Sitzung des Rates“ werden endgültig"),
        "wipe_chat": ("/clerk/chat/wipe", {}, "3 Chat-Nachrichten von „12. Sitzung des Rates“ werden endgültig"),
        "wipe_presence": ("/clerk/presence/wipe", {},
                          "(Anwesenheitszeiträume: 2, Personen: 2, Korrekturen von Hand: 0)"),
    }


TABLES = ("sessions", "members", "admissions", "stations", "audit", "chat_messages", "presence_intervals",
          "doc_files", "doc_items", "push_events")


def snapshot(db) -> dict:
    return {t: db.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall() for t in TABLES}  # noqa: S608


def impact_text(html: str) -> str:
    block = re.search(r'<div class="guard-impact"[^>]*>(.*?)</div>', html, re.S).group(1)
    return " ".join(re.sub(r"<[^>]+>", " ", block).split())


ACTS = ("activate", "rotate", "wipe_documents", "wipe_all_documents", "wipe_chat", "wipe_presence")


@pytest.mark.parametrize("act", ACTS)
def test_confirmation_page_counts_and_every_unconfirmed_post_changes_nothing(world, act, monkeypatch):
    client, db, calls = world["client"], world["db"], world["calls"]
    url, fields, sentence = acts(world)[act]
    page = client.get(url, query_string=fields)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert sentence in impact_text(page.text), impact_text(page.text)
    csrf, tok = token(page.text), confirm_token(page.text)
    before = snapshot(db)

    def refused(data: dict, message: str) -> None:
        resp = client.post(url, data={"csrf_token": csrf, **fields, **data})
        assert resp.status_code == 422, (data, resp.status_code)
        assert message in resp.text, data
        assert 'id="guard-error"' in resp.text and 'name="confirm_token"' in resp.text  # the page again
        assert snapshot(db) == before and calls == [], data

    refused({"confirm": "yes"}, "Bitte bestätigen Sie auf dieser Seite")  # a POST without the page
    refused({"confirm": "yes", "confirm_token": "stray"}, "Bitte bestätigen Sie auf dieser Seite")
    refused({"confirm_token": tok}, "Bitte bestätigen Sie zuerst mit dem Häkchen")  # a stray click: box not ticked
    issued, mac = tok.split(".")
    refused({"confirm": "yes", "confirm_token": f"{issued}.{mac[::-1]}"}, "hat sich etwas geändert")  # altered
    sid = world["other"].id if act == "activate" else world["live"].id
    old = guard.sign(world["app"].secret_key.encode(), impact.of(db, act, sid), int(time.time()) - guard.MAX_AGE - 5,
                     csrf)  # what the page showed, but shown too long ago
    refused({"confirm": "yes", "confirm_token": old}, "abgelaufen")
    # A device joins after the page was shown: its numbers no longer hold (only the device-counting acts).
    if act in ("activate", "rotate"):
        db.execute("INSERT INTO stations(mac, interface, keyid, connected) VALUES ('02:00:00:00:07:07', 'wlan0', "
                   "'guest', 1)")
        before = snapshot(db)
        refused({"confirm": "yes", "confirm_token": tok}, "hat sich etwas geändert")
        assert "5 verbundene Geräte" in client.post(url, data={"csrf_token": csrf, **fields}).text  # the new count


@pytest.mark.parametrize("act", ACTS)
def test_the_confirmed_act_runs_once_and_its_form_cannot_be_replayed(world, act):
    client, db, calls = world["client"], world["db"], world["calls"]
    url, fields, _sentence = acts(world)[act]
    page = client.get(url, query_string=fields)
    data = {"csrf_token": token(page.text), "confirm_token": confirm_token(page.text), "confirm": "yes", **fields}
    audit = db["audit"].count
    resp = client.post(url, data=data)
    assert resp.status_code in (302, 303), resp.text
    assert db["audit"].count > audit
    done = snapshot(db)
    calls.clear()
    # The same form again (back button, double submit): what it confirmed no longer holds (the session is live,
    # the key generation moved on, the files, messages, intervals are gone).
    replay = client.post(url, data=data)
    assert replay.status_code == 422 and "hat sich etwas geändert" in replay.text
    assert snapshot(db) == done and calls == []


def test_activation_switches_sessions_and_drops_the_old_devices(world):
    client, db, calls, live, other = (world[k] for k in ("client", "db", "calls", "live", "other"))
    url = f"/clerk/sessions/{other.id}/activate"
    session_page = client.get(f"/clerk/sessions/{other.id}").text
    assert f'href="{url}"' in session_page and f'action="{url}"' not in session_page  # a link, no one-click form
    page = client.get(url)
    assert "Die laufende Sitzung „12. Sitzung des Rates“ wird beendet, „Ausschuss im Dezember“ wird aktiv." in page.text
    resp = client.post(url, data={"csrf_token": token(page.text), "confirm_token": confirm_token(page.text),
                                  "confirm": "yes"})
    assert resp.status_code == 302
    assert service.active_session(db).id == other.id
    assert [c[0] for c in calls] == ["write_psk", "reload_keys", "revoke"] and calls[2][1] == live.id


def test_a_token_from_another_login_is_refused(world, cfg):
    client, db = world["client"], world["db"]
    url = f"/clerk/sessions/{world['other'].id}/activate"
    page = client.get(url)
    tok = confirm_token(page.text)
    second = world["app"].test_client()
    login = second.get("/clerk/login")
    second.post("/clerk/login", data={"csrf_token": token(login.text), "password": PASSWORD})
    csrf = token(second.get(url).text)
    resp = second.post(url, data={"csrf_token": csrf, "confirm_token": tok, "confirm": "yes"})
    assert resp.status_code == 422 and service.active_session(db).id == world["live"].id


def test_english_confirmation_page(world):
    url, fields, _ = acts(world)["activate"]
    page = world["client"].get(url, query_string={"lang": "en"})
    assert ("4 connected devices are disconnected and must reconnect with the cards of the new session."
            in impact_text(page.text))
    assert f'action="{url}?lang=en"' in page.text  # the POST keeps the language (web.links)


def test_without_a_live_session_the_chat_and_presence_wipes_lead_back(world):
    db, client = world["db"], world["client"]
    db.execute("UPDATE sessions SET active = 0")
    for url in ("/clerk/chat/wipe", "/clerk/presence/wipe"):
        resp = client.get(url)
        assert resp.status_code == 303 and resp.headers["Location"].endswith("/clerk/chat")


# --- the command line ----------------------------------------------------------------------------------------

@pytest.fixture
def conf(cfg, tmp_path):
    from appliance.config import to_toml

    path = tmp_path / "sitzungsbox.toml"
    path.write_text(to_toml(cfg))
    return str(path)


def test_cli_activation_warns_in_the_same_words_and_needs_ja(cfg, db, conf, monkeypatch, capsys):
    from appliance import cli
    from appliance.usecases import sessions as acts_mod

    live, _ms = populate(cfg, db)
    other = second_session(db)
    ran: list = []
    monkeypatch.setattr(acts_mod, "activate_session", lambda *a, **kw: ran.append(a[3]) or acts_mod.ActResult(
        a[3], f"Sitzung {a[3]} ist jetzt aktiv."))
    monkeypatch.setattr("builtins.input", lambda prompt: (_ for _ in ()).throw(EOFError))  # no terminal
    assert cli.main(["--config", conf, "session", "activate", str(other.id)]) == 2
    out, err = capsys.readouterr()
    assert "4 verbundene Geräte werden getrennt und müssen sich mit den Karten der neuen Sitzung neu verbinden." in out
    assert "3 Freigaben werden entzogen." in out and "--ja" in err and ran == []
    monkeypatch.setattr("builtins.input", lambda prompt: "ja")
    assert cli.main(["--config", conf, "session", "activate", str(other.id)]) == 0 and ran == [other.id]
    assert cli.main(["--config", conf, "session", "activate", str(other.id), "--ja"]) == 0
    # Nobody connected: nothing to warn about, no question.
    db.execute("UPDATE stations SET connected = 0")
    db.execute("UPDATE admissions SET revoked_at = '2026-12-01T00:00:00Z'")
    monkeypatch.setattr("builtins.input", lambda prompt: pytest.fail("asked although nobody is affected"))
    assert cli.main(["--config", conf, "session", "activate", str(other.id)]) == 0
    assert live.id != other.id


def test_cli_key_renewal_always_asks(cfg, db, conf, monkeypatch, capsys):
    from appliance import cli

    live, _ms = populate(cfg, db)
    monkeypatch.setattr("builtins.input", lambda prompt: "nein")
    assert cli.main(["--config", conf, "session", "rotate-keys"]) == 2
    assert service.get_session(db, live.id).key_generation == 1
    assert "Die persönlichen Schlüssel (4) und der Gastschlüssel" in capsys.readouterr().out


# --- no inline style: the Content-Security-Policy (style-src 'self') would block it ----------------------------

def test_no_template_carries_inline_style():
    templates = sorted((ROOT / "appliance" / "web" / "templates").rglob("*.html"))
    found = [f"{p.relative_to(ROOT)}:{n}" for p in templates
             for n, line in enumerate(p.read_text().splitlines(), 1) if re.search(r"\bstyle=|<style", line, re.I)]
    assert len(templates) > 20 and not found, found


def test_the_chat_print_view_has_its_stylesheet(world):
    resp = world["client"].get("/clerk/chat/print")
    assert resp.status_code == 200
    sheet = re.search(r'<link rel="stylesheet" href="([^"]+)"', resp.text).group(1)
    assert world["client"].get(sheet).status_code == 200
    assert "style-src 'self'" in resp.headers["Content-Security-Policy"]


def test_an_import_error_is_tied_to_its_field(world):
    client, live = world["client"], world["live"]
    page = client.get(f"/clerk/sessions/{live.id}")
    resp = client.post(f"/clerk/sessions/{live.id}/import", data={"csrf_token": token(page.text)},
                       content_type="multipart/form-data")
    assert resp.status_code == 422 and 'id="import-problems"' in resp.text
    field = re.search(r'<input type="file" id="csv"[^>]*>', resp.text).group(0)
    assert 'aria-describedby="csv-help import-problems"' in field and 'aria-invalid="true"' in field
