"""Importing the same thing twice (issue 11): the same bytes under the same item are stored once and reported as
"bereits vorhanden"; the same name with new bytes replaces the old version ("ersetzt"). Through the real clerk
form (Flask test client), the use case and `sitzungsbox import`."""

from __future__ import annotations

import html
import io
import json
import zipfile

import pytest

from appliance.documents import bulk, service
from appliance.sessions import roster
from appliance.sessions import service as sessions
from tests import pdf_samples
from tests.conftest import logged_in_clerk

EINLADUNG = pdf_samples.text("Einladung")
VORLAGE = pdf_samples.text("Vorlage Haushalt")
VORLAGE_NEU = pdf_samples.text("Vorlage Haushalt, neue Fassung")
VERMERK = pdf_samples.text("Vermerk")


@pytest.fixture
def session(db):
    s = sessions.create_session(db, body="Rat der Stadt", title="Sitzung", day="2026-12-01", ssid="Sitzung")
    sessions.insert_members(db, s.id, roster.parse_members("Name;Rolle\nAnna Schmidt;Mitglied\n"))
    return s


@pytest.fixture
def clerk(cfg, db, session):
    """A logged-in clerk's test client and CSRF token."""
    return logged_in_clerk(cfg, db, f"/clerk/sessions/{session.id}/unterlagen")


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def state(db, cfg, sid):
    """What a re-import must leave as it was: rows (id, item, name, hash), items, stored blobs."""
    files = sorted((f.id, f.item_id, f.name, f.sha256) for f in service.files(db, sid))
    items = sorted((i.id, i.number, i.title, i.public) for i in service.items(db, sid))
    return files, items, sorted(service.blobs_for(cfg.state_dir).all())


def page_text(c, sid) -> str:
    return html.unescape(c.get(f"/clerk/sessions/{sid}/unterlagen").get_data(as_text=True))


LAYOUT = {"Einladung.pdf": EINLADUNG, "TOP 1 Haushalt/Vorlage.pdf": VORLAGE, "NÖ 2 Personal/Vermerk.pdf": VERMERK}


def test_the_same_zip_twice_through_the_clerk_form(clerk, db, cfg, session):
    c, tok = clerk
    data = zip_bytes(LAYOUT)
    r = c.post(f"/clerk/sessions/{session.id}/unterlagen/zip",
               data={"csrf_token": tok, "zip": (io.BytesIO(data), "a.zip")}, content_type="multipart/form-data")
    assert r.status_code == 302
    first = state(db, cfg, session.id)
    assert len(first[0]) == 3 and len(first[1]) == 2
    page_text(c, session.id)  # the first import's messages
    r = c.post(f"/clerk/sessions/{session.id}/unterlagen/zip",
               data={"csrf_token": tok, "zip": (io.BytesIO(data), "a.zip")}, content_type="multipart/form-data")
    assert r.status_code == 302
    assert state(db, cfg, session.id) == first  # no new row, no new item, no new blob
    page = page_text(c, session.id)
    assert "0 Datei(en) in 0 neuen Punkten importiert." in page
    for name in LAYOUT:
        assert f"Bereits vorhanden, nicht noch einmal gespeichert: {name}" in page


def test_the_same_upload_twice_and_a_new_version(clerk, db, cfg, session):
    c, tok = clerk
    item = service.add_item(db, session.id, "Haushalt", number="1")

    def upload(data: bytes, name: str, **form):
        return c.post(f"/clerk/sessions/{session.id}/unterlagen/hochladen",
                      data={"csrf_token": tok, "item": str(item), "files": [(io.BytesIO(data), name)], **form},
                      content_type="multipart/form-data")

    assert upload(VORLAGE, "Vorlage.pdf").status_code == 302
    page_text(c, session.id)
    first = state(db, cfg, session.id)
    assert upload(VORLAGE, "Vorlage.pdf").status_code == 302
    assert state(db, cfg, session.id) == first
    assert "Bereits vorhanden, nicht noch einmal gespeichert: Vorlage.pdf" in page_text(c, session.id)
    # The same bytes under another name, same item: still the same document.
    assert upload(VORLAGE, "Vorlage (Kopie).pdf").status_code == 302
    assert state(db, cfg, session.id) == first
    # Under another item it is another document (the blob is shared).
    other = service.add_item(db, session.id, "Bau", number="2")
    c.post(f"/clerk/sessions/{session.id}/unterlagen/hochladen",
           data={"csrf_token": tok, "item": str(other), "files": [(io.BytesIO(VORLAGE), "Vorlage.pdf")]},
           content_type="multipart/form-data")
    assert [f.item_id for f in service.files(db, session.id)] == [item, other]
    page_text(c, session.id)

    # A new version: the same name, new bytes under the same item.
    old = service.files(db, session.id)[0]
    assert upload(VORLAGE_NEU, "Vorlage.pdf").status_code == 302
    now = [f for f in service.files(db, session.id) if f.item_id == item]
    assert [f.name for f in now] == ["Vorlage.pdf"] and now[0].id != old.id  # one current version
    assert service.blobs_for(cfg.state_dir).path(now[0].sha256).read_bytes() == VORLAGE_NEU
    assert "Ersetzt durch die neue Fassung: Vorlage.pdf" in page_text(c, session.id)
    # The old bytes stay: item 2 still uses them.
    assert service.blobs_for(cfg.state_dir).has(old.sha256)
    audit = [r[0] for r in db.execute("SELECT action FROM audit WHERE action LIKE 'documents.%' ORDER BY id")]
    assert audit[-1] == "documents.replace"


def test_replacing_removes_old_bytes_and_keeps_the_log(cfg, db, session):
    blobs = service.blobs_for(cfg.state_dir)
    item = service.add_item(db, session.id, "Personal", number="3", public=False)

    def put(data: bytes) -> bulk.Result:
        entry = bulk.Entry(None, "Vermerk.pdf", len(data), lambda: io.BytesIO(data))
        return bulk.import_entries(db, blobs, session.id, [entry], item_id=item)

    put(VERMERK)
    old = service.files(db, session.id)[0]
    anna = sessions.members(db, session.id)[0]
    from appliance.rules.viewer import Viewer
    service.log_download(db, Viewer("member", session.id, anna, True, "10.77.0.20"), old, "file")
    result = put(VORLAGE_NEU)
    assert result.replaced == ["Vermerk.pdf"] and result.files == 1 and result.present == []
    (new,) = service.files(db, session.id)
    assert new.id != old.id and new.sha256 != old.sha256
    assert not blobs.has(old.sha256) and not blobs.has(old.view_sha256)  # unreferenced: gone, with the copy
    assert sorted(blobs.all()) == sorted(service.hashes(new))
    log = service.downloads(db, session.id)  # who read the OLD version stays on record, under its own id
    assert [(r["file_id"], r["file_title"], r["who"]) for r in log] == [(old.id, "Vermerk", "Anna Schmidt")]
    again = put(VORLAGE_NEU)
    assert again.present == ["Vermerk.pdf"] and again.files == 0 and again.replaced == []


def test_a_late_document_again_and_updated(cfg, db, session):
    from appliance.usecases import documents as acts

    sessions.set_active(db, session.id)

    def late(data: bytes) -> bulk.Result:
        entry = bulk.Entry(None, "Tischvorlage.pdf", len(data), lambda: io.BytesIO(data))
        return acts.announce_late_document(cfg, db, session.id, [entry], "clerk")

    def notices() -> list[dict]:
        return [json.loads(r[0]) for r in db.execute("SELECT payload FROM push_events WHERE topic = 'document'")]

    assert late(VORLAGE).files == 1 and len(notices()) == 1
    again = late(VORLAGE)
    assert again.present == ["Tischvorlage.pdf"] and again.files == 0
    assert len(notices()) == 1 and len(service.files(db, session.id)) == 1  # no second row, no second notice
    updated = late(VORLAGE_NEU)
    assert updated.replaced == ["Tischvorlage.pdf"]
    (f,) = service.files(db, session.id)
    last = notices()[-1]
    assert last["file_id"] == f.id and last["updated"] is True and "aktualisiert" in last["text"]
    assert last["replaces"] == [notices()[0]["file_id"]] and notices()[0]["replaces"] == []
    assert sorted(service.blobs_for(cfg.state_dir).all()) == sorted(service.hashes(f))  # the original, its copy


def test_the_same_folder_and_zip_twice_on_the_command_line(cfg, db, session, tmp_path, capsys):
    from appliance import cli
    from appliance.config import to_toml

    conf = tmp_path / "sb.toml"
    conf.write_text(to_toml(cfg))
    usb = tmp_path / "usb"
    for rel, data in LAYOUT.items():
        (usb / rel).parent.mkdir(parents=True, exist_ok=True)
        (usb / rel).write_bytes(data)

    def run(source) -> str:
        assert cli.main(["--config", str(conf), "import", str(session.id), str(source)]) == 0
        return capsys.readouterr().out

    assert "3 Datei(en) in 2 Tagesordnungspunkten importiert." in run(usb)
    first = state(db, cfg, session.id)
    out = run(usb)
    assert "0 Datei(en) in 0 Tagesordnungspunkten importiert." in out
    for name in LAYOUT:
        assert f"bereits vorhanden: {name}" in out
    assert state(db, cfg, session.id) == first
    # The same documents as a ZIP: the folders find their items, nothing new.
    zpath = tmp_path / "a.zip"
    zpath.write_bytes(zip_bytes(LAYOUT))
    out = run(zpath)
    assert out.count("bereits vorhanden:") == 3 and state(db, cfg, session.id) == first
    # A new version in the folder: replaced, the rest skipped.
    (usb / "TOP 1 Haushalt" / "Vorlage.pdf").write_bytes(VORLAGE_NEU)
    out = run(usb)
    assert "ersetzt: TOP 1 Haushalt/Vorlage.pdf" in out and out.count("bereits vorhanden:") == 2
    files, items, blobs = state(db, cfg, session.id)
    assert len(files) == 3 and items == first[1] and len(blobs) == 3  # one-page originals: their own viewer's copies
    assert service.blobs_for(cfg.state_dir).path(
        next(f for f in service.files(db, session.id) if f.name == "Vorlage.pdf").sha256).read_bytes() == VORLAGE_NEU
    # A Tischvorlage twice on the command line.
    tv = tmp_path / "Tischvorlage.pdf"
    tv.write_bytes(pdf_samples.text("Tischvorlage"))
    for expect in ("1 Tischvorlage(n) hinzugefügt.", "bereits vorhanden: Tischvorlage.pdf"):
        assert cli.main(["--config", str(conf), "import", str(session.id), str(tv), "--tischvorlage"]) == 0
        assert expect in capsys.readouterr().out
    assert len(service.files(db, session.id)) == 4


def test_a_nonpublic_folder_does_not_land_in_a_public_item(cfg, db, session):
    """Finding the item again respects its visibility: NÖ files never join a public item of the same name."""
    blobs = service.blobs_for(cfg.state_dir)
    service.add_item(db, session.id, "Personal", number="2")  # public, typed by the clerk
    data = zip_bytes({"NÖ 2 Personal/Vermerk.pdf": VERMERK})
    bulk.import_zip(db, blobs, session.id, io.BytesIO(data))
    (f,) = service.files(db, session.id)
    assert not f.effective_public


def test_a_new_version_of_a_tischvorlage_through_the_clerk_form_says_aktualisiert(clerk, db, cfg, session):
    c, tok = clerk
    sessions.set_active(db, session.id)

    def late(data: bytes):
        return c.post(f"/clerk/sessions/{session.id}/unterlagen/hochladen",
                      data={"csrf_token": tok, "late": "1", "files": [(io.BytesIO(data), "Antrag.pdf")]},
                      content_type="multipart/form-data")

    for data in (VORLAGE, VORLAGE, VORLAGE_NEU):
        assert late(data).status_code == 302
    texts = [json.loads(r[0])["text"] for r in db.execute("SELECT payload FROM push_events WHERE topic = 'document'"
                                                          " ORDER BY id")]
    assert texts == ["Neue Tischvorlage: Antrag", "Tischvorlage aktualisiert: Antrag"]
    assert [f.name for f in service.files(db, session.id)] == ["Antrag.pdf"]
    assert "Ersetzt durch die neue Fassung: Antrag.pdf" in page_text(c, session.id)
