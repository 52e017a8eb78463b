"""Each use case is one act: all of its database writes commit together with its one audit entry, or none do.

The failure is made on purpose at the act's last statement (a temporary trigger that aborts the audit insert,
or the push event after the rows): the whole database must then read exactly as before (every table, dumped),
and the radio and the firewall helper must not have been told anything.
"""

from __future__ import annotations

import io
import sqlite3

import pytest

from appliance.captive.identify import Device
from appliance.documents import bulk
from appliance.documents import service as documents
from appliance.helper.client import NullHelper
from appliance.netconf import render
from appliance.radio import control
from appliance.sessions import service
from appliance.sessions.roster import MemberRow
from appliance.usecases import documents as doc_acts
from appliance.usecases import portal as portal_acts
from appliance.usecases import presence as presence_acts
from appliance.usecases import sessions as acts
from tests import pdf_samples

PDF = pdf_samples.pdf(b"x" * 3000)
PDF2 = pdf_samples.pdf(b"y" * 4000)
CSV = b"Name;Fraktion;Rolle;Stimmrecht\nErik Neu;FDP;Mitglied;ja\n"


def dump(db) -> list[str]:
    """Every table's rows and the schema, as SQL text."""
    return list(db.conn.iterdump())


def fail_on_insert(db, table: str) -> None:
    db.execute(f"CREATE TEMP TRIGGER fail_{table} BEFORE INSERT ON main.{table} "  # noqa: S608 - test names
               "BEGIN SELECT RAISE(ABORT, 'kaputt'); END")


@pytest.fixture
def radio(monkeypatch):
    """The adapters after the commit, recording (nothing may reach them when the act failed)."""
    calls: list = []
    monkeypatch.setattr(render, "write_psk", lambda cfg, db: calls.append("write_psk"))
    monkeypatch.setattr(control, "reload_keys", lambda cfg, db, revoked: calls.append(("reload", sorted(revoked))))
    return calls


@pytest.fixture
def two_sessions(db):
    a = service.create_session(db, body="Rat", title="Erste", day="2026-12-01")
    b = service.create_session(db, body="Rat", title="Zweite", day="2026-12-02")
    service.insert_members(db, a.id, [MemberRow("Anna Schmidt", "SPD", "member", True, "Rat")])
    service.insert_members(db, b.id, [MemberRow("Carla Weber", "SPD", "member", True, "Rat")])
    service.set_active(db, a.id)
    anna = service.members(db, a.id)[0]
    db["admissions"].insert({"session_id": a.id, "mac": "02:00:00:00:00:01", "ip": "10.77.0.11",
                             "member_id": anna.id, "kind": "member", "admitted_at": "2026-12-01T18:00:00Z"})
    return a, b


def test_activate_is_all_or_nothing(cfg, db, two_sessions, radio):
    a, b = two_sessions
    helper = NullHelper()
    fail_on_insert(db, "audit")
    before = dump(db)
    with pytest.raises(sqlite3.IntegrityError, match="kaputt"):
        acts.activate_session(cfg, db, helper, b.id, actor="test")
    assert dump(db) == before
    assert [s.id for s in service.list_sessions(db) if s.active] == [a.id]  # never none, never two
    assert radio == [] and helper.calls == []


def test_activate_switches_in_one_step_and_one_entry(cfg, db, two_sessions, radio):
    a, b = two_sessions
    helper = NullHelper()
    seen = db.execute("SELECT MAX(id) FROM audit").fetchone()[0]
    result = acts.activate_session(cfg, db, helper, b.id, actor="test")
    assert result.ok and result.text == f"Sitzung {b.id} ist jetzt aktiv."
    assert [s.id for s in service.list_sessions(db) if s.active] == [b.id]
    anna = service.members(db, a.id)[0]
    assert radio == ["write_psk", ("reload", sorted([anna.keyid, "guest"]))]
    assert helper.calls == [("revoke", "02:00:00:00:00:01", "10.77.0.11")]
    entries = db.execute("SELECT action, detail FROM audit WHERE id > ?", [seen]).fetchall()
    assert entries == [("session.activate", f"session={b.id} previous={a.id}"),
                       ("admission.revoke_session", f"session={a.id} count=1")]


def test_activate_unknown_session_changes_nothing(cfg, db, two_sessions, radio):
    before = dump(db)
    with pytest.raises(service.SessionError):
        acts.activate_session(cfg, db, NullHelper(), 99, actor="test")
    assert dump(db) == before and radio == []


def test_import_is_all_or_nothing(cfg, db, two_sessions, radio):
    a, _b = two_sessions
    fail_on_insert(db, "audit")
    before = dump(db)
    with pytest.raises(sqlite3.IntegrityError):
        acts.import_members(cfg, db, NullHelper(), a.id, CSV, actor="test")
    assert dump(db) == before and radio == []


def test_import_pushes_keys_only_for_the_live_session(cfg, db, two_sessions, radio):
    a, b = two_sessions
    result = acts.import_members(cfg, db, NullHelper(), b.id, CSV, actor="test")
    assert result.count == 1 and result.ok and radio == []
    acts.import_members(cfg, db, NullHelper(), a.id, CSV, actor="test")
    assert radio == ["write_psk", ("reload", [])]
    assert [m.body for m in service.members(db, a.id)] == ["Rat", "Rat"]  # the session's body by default


def test_rotation_is_all_or_nothing(cfg, db, two_sessions, radio):
    a, _b = two_sessions
    helper = NullHelper()
    fail_on_insert(db, "audit")
    before = dump(db)
    with pytest.raises(sqlite3.IntegrityError):
        acts.rotate_keys(cfg, db, helper, a.id, actor="test")
    assert dump(db) == before and radio == [] and helper.calls == []


def test_rotation_of_a_session_not_on_the_air_leaves_the_radios_alone(cfg, db, two_sessions, radio):
    _a, b = two_sessions
    result = acts.rotate_keys(cfg, db, NullHelper(), b.id, actor="test")
    assert result.ok and result.generation == 2 and radio == []  # the live guests keep the guest key
    assert db.execute("SELECT action FROM audit ORDER BY id DESC LIMIT 1").fetchone()[0] == "keys.rotate"


def test_rotation_without_an_active_session_is_refused(cfg, db, radio):
    with pytest.raises(service.SessionError, match="keine Sitzung aktiv"):
        acts.rotate_keys(cfg, db, NullHelper(), None, actor="test")


# --- documents ----------------------------------------------------------------------------------


def _entry(name: str, data: bytes) -> bulk.Entry:
    return bulk.Entry(None, name, len(data), lambda: io.BytesIO(data))


@pytest.fixture
def with_documents(cfg, db, two_sessions):
    a, _b = two_sessions
    blobs = documents.blobs_for(cfg.state_dir)
    bulk.import_entries(db, blobs, a.id, [_entry("Einladung.pdf", PDF)], public=True, actor="test")
    bulk.import_entries(db, blobs, a.id, [_entry("Vermerk.pdf", PDF2)], public=False, actor="test")
    return a, blobs


def test_wipe_documents_is_all_or_nothing(cfg, db, with_documents):
    a, blobs = with_documents
    fail_on_insert(db, "audit")
    before, stored = dump(db), sorted(blobs.all())
    with pytest.raises(sqlite3.IntegrityError):
        doc_acts.wipe_documents(cfg, db, a.id, "test", nonpublic_only=False)
    assert dump(db) == before and sorted(blobs.all()) == stored  # no bytes gone either


def test_wipe_documents_nonpublic_then_all(cfg, db, with_documents):
    a, blobs = with_documents
    (vermerk,) = [f for f in documents.files(db, a.id) if f.name == "Vermerk.pdf"]
    own = sum(blobs.path(h).stat().st_size for h in documents.hashes(vermerk))  # with the viewer's copy, if any
    result = doc_acts.wipe_documents(cfg, db, a.id, "test")
    assert result.removed == 1 and result.freed == own >= len(PDF2)
    assert [f.name for f in documents.files(db, a.id)] == ["Einladung.pdf"]
    assert doc_acts.wipe_documents(cfg, db, a.id, "test", nonpublic_only=False).removed == 1
    assert list(blobs.all()) == []
    assert [r[0] for r in db.execute("SELECT detail FROM audit WHERE action = 'documents.wipe' ORDER BY id")] == [
        f"session={a.id} nonpublic_only=1 files=1", f"session={a.id} nonpublic_only=0 files=1"]


def test_late_document_without_its_notice_is_not_stored(cfg, db, two_sessions):
    a, _b = two_sessions
    blobs = documents.blobs_for(cfg.state_dir)
    fail_on_insert(db, "push_events")  # the notice is the act's last statement
    before = dump(db)
    with pytest.raises(sqlite3.IntegrityError):
        doc_acts.announce_late_document(cfg, db, a.id, [_entry("Tischvorlage.pdf", PDF)], "test")
    assert dump(db) == before and list(blobs.all()) == []


def test_late_document_is_stored_and_announced_to_its_readers(cfg, db, two_sessions):
    a, b = two_sessions
    result = doc_acts.announce_late_document(cfg, db, a.id, [_entry("Tischvorlage.pdf", PDF)], "test",
                                             public=False)
    (fid,) = result.file_ids
    f = documents.get_file(db, fid)
    assert f.late and not f.public
    events = db.execute("SELECT topic, audience, payload FROM push_events").fetchall()
    assert [(t, au) for t, au, _ in events] == [("document", f"doc:{fid}")]
    assert f'"view_url":"/unterlagen/ansehen/{fid}"' in events[0][2]
    # A session that is not live gets the file but no notice: nobody is reading it now.
    doc_acts.announce_late_document(cfg, db, b.id, [_entry("Nachtrag.pdf", PDF2)], "test")
    assert db.execute("SELECT COUNT(*) FROM push_events").fetchone()[0] == 1


# --- presence -----------------------------------------------------------------------------------


@pytest.fixture
def with_presence(db, two_sessions):
    from appliance.push import publish

    a, _b = two_sessions
    anna = service.members(db, a.id)[0]
    db.execute("INSERT INTO presence_devices(session_id, member_id, device, linked, last_seen) VALUES (?, ?, ?, 1, 1)",
               [a.id, anna.id, "02:00:00:00:00:01"])
    db.execute("INSERT INTO presence_intervals(session_id, member_id, start, start_source) VALUES (?, ?, 1, 'radio')",
               [a.id, anna.id])
    publish(db, a.id, "presence.mine", {"present": True}, audience=f"member:{anna.id}")
    publish(db, a.id, "presence.changed", {"member_id": anna.id}, audience="clerks")
    publish(db, a.id, "chat.message", {"body": "Hallo"})
    return a


def test_wipe_presence_is_all_or_nothing(cfg, db, with_presence):
    fail_on_insert(db, "audit")
    before = dump(db)
    with pytest.raises(sqlite3.IntegrityError):
        presence_acts.wipe_presence(cfg, db, with_presence.id, "test")
    assert dump(db) == before


def test_wipe_presence_takes_the_events_that_name_members_along(cfg, db, with_presence):
    assert presence_acts.wipe_presence(cfg, db, with_presence.id, "test") == 1
    for table in ("presence_devices", "presence_intervals"):
        assert db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0  # noqa: S608
    assert [r[0] for r in db.execute("SELECT topic FROM push_events")] == ["chat.message"]
    assert db.execute("SELECT action, detail FROM audit ORDER BY id DESC LIMIT 1").fetchone() == (
        "presence.wipe", f"session={with_presence.id} intervals=1 events=2")


# --- the portal's personal code -----------------------------------------------------------------


def _stranger(ip: str = "10.77.0.50", mac: str = "02:00:00:00:00:50") -> Device:
    return Device(ip, mac, "unknown", None, False)


def test_personal_code_admission_is_all_or_nothing(cfg, db, two_sessions):
    a, _b = two_sessions
    anna = service.members(db, a.id)[0]
    helper = NullHelper()
    fail_on_insert(db, "audit")
    before = dump(db)
    with pytest.raises(sqlite3.IntegrityError):  # a failure is not mistaken for "someone was quicker"
        portal_acts.enter_personal_code(cfg, db, helper, _stranger(), anna.code, throttle=portal_acts.codes.Throttle())
    assert dump(db) == before and helper.calls == []


def test_personal_code_outcomes(cfg, db, two_sessions):
    a, _b = two_sessions
    anna = service.members(db, a.id)[0]
    helper, throttle = NullHelper(), portal_acts.codes.Throttle(free=2)

    def enter(typed: str, device: Device | None = None):
        return portal_acts.enter_personal_code(cfg, db, helper, device or _stranger(), typed, throttle=throttle)

    assert enter("").status == portal_acts.EMPTY
    assert enter("zu kurz").status == portal_acts.MALFORMED
    assert enter("AAAA-AAAA").status == portal_acts.WRONG
    assert enter("AAAA-AAAB").status == portal_acts.WRONG
    waiting = enter(anna.code)
    assert waiting.status == portal_acts.WAIT and waiting.seconds >= 1  # even the right code waits now
    other = _stranger("10.77.0.51", "02:00:00:00:00:51")
    named = Device("10.77.0.52", "02:00:00:00:00:52", "member", anna, False, keyid=anna.keyid)
    assert enter(anna.code, named).status == portal_acts.NOT_FOR_DEVICE  # its Wi-Fi key names it already
    outcome = enter(anna.code.lower(), other)
    assert outcome.ok and outcome.member.id == anna.id
    assert helper.calls == [("admit", "02:00:00:00:00:51", "10.77.0.51")]
    assert db.execute("SELECT action FROM audit ORDER BY id DESC LIMIT 1").fetchone()[0] == "admission.code"


# --- the command line calls the same acts -------------------------------------------------------


def _conf(cfg, tmp_path):
    from appliance.config import to_toml

    conf = tmp_path / "sb.toml"
    conf.write_text(to_toml(cfg))
    return str(conf)


def test_cli_late_document_is_stored_and_announced(cfg, db, two_sessions, tmp_path, capsys):
    from appliance import cli

    a, _b = two_sessions
    pdf = tmp_path / "Tischvorlage Haushalt.pdf"
    pdf.write_bytes(PDF)
    assert cli.main(["--config", _conf(cfg, tmp_path), "import", str(a.id), str(pdf), "--tischvorlage"]) == 0
    assert "1 Tischvorlage(n) hinzugefügt." in capsys.readouterr().out
    (f,) = documents.files(db, a.id)
    assert f.late and f.public
    assert db.execute("SELECT topic, audience FROM push_events").fetchall() == [("document", f"doc:{f.id}")]
    assert cli.main(["--config", _conf(cfg, tmp_path), "import", str(a.id), str(tmp_path), "--tischvorlage"]) == 2
    assert "eine Tischvorlage ist eine einzelne Datei" in capsys.readouterr().err


def test_cli_wipe_presence_and_documents(cfg, db, with_presence, tmp_path, capsys):
    from appliance import cli

    conf = _conf(cfg, tmp_path)
    sid = str(with_presence.id)
    assert cli.main(["--config", conf, "wipe", sid, "--anwesenheit", "--ja"]) == 0
    assert "Anwesenheitsdaten gelöscht (1 Zeiträume)." in capsys.readouterr().out
    assert db.execute("SELECT COUNT(*) FROM presence_intervals").fetchone()[0] == 0
    assert cli.main(["--config", conf, "wipe", sid, "--ja"]) == 0
    assert "0 Datei(en) gelöscht" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # one thing at a time
        cli.main(["--config", conf, "wipe", sid, "--alle", "--anwesenheit"])
    assert cli.main(["--config", conf, "wipe", "99", "--ja"]) == 2
    actions = [r[0] for r in db.execute("SELECT action FROM audit WHERE actor = 'cli' ORDER BY id")]
    assert actions == ["presence.wipe", "documents.wipe"]
