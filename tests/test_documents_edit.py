"""Clerks correct single items and files (issue 12): the use cases in usecases.documents (each one transaction
with one audit entry and one push event), the „neue Fassung“ record, and the clerk's web forms."""

from __future__ import annotations

import io
import json

import pytest

from appliance.documents import DocumentError
from appliance.documents import service as docs
from appliance.rules.viewer import Viewer
from appliance.sessions import roster
from appliance.sessions import service as sessions
from appliance.usecases import documents as acts
from tests import pdf_samples

PDF = pdf_samples.pdf(b"a" * 3000)
PDF2 = pdf_samples.pdf(b"b" * 3000)
PDF3 = pdf_samples.pdf(b"c" * 3000)


@pytest.fixture
def council(cfg, db):
    s = sessions.create_session(db, body="Rat", title="Sitzung", day="2026-12-01", ssid=cfg.ssid)
    sessions.insert_members(db, s.id, roster.parse_members("Name;Rolle;Gremium\nAnna Schmidt;Mitglied;Rat\n"
                                                           "Bernd Graf;Mitglied;Rat\n"))
    sessions.set_active(db, s.id)
    blobs = docs.blobs_for(cfg.state_dir)
    one = docs.add_item(db, s.id, "Eröffnung", number="1")
    two = docs.add_item(db, s.id, "Haushalt", number="2")
    a = docs.add_file(db, s.id, name="a.pdf", stored=blobs.put_bytes(PDF), mime="application/pdf", item_id=two)
    b = docs.add_file(db, s.id, name="b.pdf", stored=blobs.put_bytes(PDF2), mime="application/pdf", item_id=two)
    return s, one, two, a, b


def events(db, topic=acts.CHANGED) -> list[dict]:
    return [json.loads(r[0]) for r in db.execute("SELECT payload FROM push_events WHERE topic = ? ORDER BY id",
                                                 [topic])]


def last_audit(db) -> tuple[str, str]:
    return db.execute("SELECT action, detail FROM audit ORDER BY id DESC LIMIT 1").fetchone()


def member(db, s, n=0) -> Viewer:
    return Viewer("member", s.id, sessions.members(db, s.id)[n], True, "10.77.0.20")


def test_edit_item_and_file(db, council):
    s, one, two, a, _b = council
    item = acts.edit_item(db, two, "clerk", title="  Haushalt   2027 ", number="2 a", public=False)
    assert (item.title, item.number, item.public) == ("Haushalt 2027", "2 a", False)
    assert last_audit(db) == ("documents.edit_item", f"session={s.id} item={two} public=0 title number")
    assert events(db)[-1] == {"what": "item", "item_id": two}
    # non-public at once: a guest no longer sees the item or its files
    guest = Viewer("guest", s.id, None, True, "10.77.0.30")
    assert [e.item.id for e in docs.visible_agenda(db, guest, s.id) if e.item] == [one]
    f = acts.edit_file(db, a, "clerk", title="Entwurf", public=True)
    assert f.title == "Entwurf" and last_audit(db)[0] == "documents.edit_file"
    with pytest.raises(DocumentError, match="Titel"):
        acts.edit_file(db, a, "clerk", title="  ", public=True)
    assert docs.get_file(db, a).title == "Entwurf"


def test_move_and_reorder(db, council):
    s, one, two, a, b = council
    files = lambda item: [f.id for e in docs.agenda(db, s.id) if e.item and e.item.id == item for f in e.files]  # noqa: E731
    assert files(two) == [a, b]
    assert acts.reorder(db, "clerk", file_id=b, step=-1) and files(two) == [b, a]
    assert not acts.reorder(db, "clerk", file_id=b, step=-1)  # already first: nothing written
    assert last_audit(db) == ("documents.reorder", f"session={s.id} file={b} step=-1")
    assert acts.reorder(db, "clerk", item_id=two, step=-1)
    assert [i.id for i in docs.items(db, s.id)] == [two, one]
    acts.move_file(db, a, one, "clerk")
    assert files(one) == [a] and files(two) == [b]
    assert last_audit(db) == ("documents.move_file", f"session={s.id} file={a} from={two} to={one}")
    acts.move_file(db, b, None, "clerk")
    assert docs.get_file(db, b).item_id is None
    with pytest.raises(DocumentError, match="schon"):
        acts.move_file(db, a, one, "clerk")


def test_delete_file_and_item(cfg, db, council):
    s, one, two, a, b = council
    blobs = docs.blobs_for(cfg.state_dir)
    sha = docs.get_file(db, a).sha256
    acts.delete_file(cfg, db, a, "clerk")
    assert docs.get_file(db, a) is None and not blobs.has(sha)
    assert last_audit(db) == ("documents.delete_file", f"session={s.id} file={a}")
    with pytest.raises(DocumentError, match="mit Dateien"):
        acts.delete_item(cfg, db, two, "clerk")
    assert docs.get_item(db, two) is not None and docs.get_file(db, b) is not None
    item, gone = acts.delete_item(cfg, db, two, "clerk", with_files=True)
    assert [f.id for f in gone] == [b] and docs.get_item(db, two) is None and docs.get_file(db, b) is None
    assert events(db)[-1] == {"what": "item", "item_id": two, "file_ids": [b]}
    acts.delete_item(cfg, db, one, "clerk")  # empty: no confirmation needed
    assert docs.items(db, s.id) == []


def test_replace_marks_a_new_version_for_who_read_the_old(cfg, db, council):
    s, _one, two, a, b = council
    anna, bernd = member(db, s, 0), member(db, s, 1)
    docs.log_download(db, anna, docs.get_file(db, a), "file")  # public: not in the clerk's log, but remembered
    assert docs.downloads(db, s.id) == []
    put = acts.replace_file(cfg, db, a, "Neue Fassung.pdf", io.BytesIO(PDF3), "clerk")
    new = docs.get_file(db, put.id)
    assert put.replaced == (a,) and docs.get_file(db, a) is None
    assert (new.title, new.name, new.item_id) == ("a", "Neue Fassung.pdf", two)
    assert [f.id for e in docs.agenda(db, s.id) if e.item for f in e.files] == [new.id, b]  # same place
    assert docs.new_versions(db, anna, s.id) == {new.id} and docs.new_versions(db, bernd, s.id) == set()
    assert last_audit(db)[0] == "documents.replace"
    assert events(db)[-1] == {"what": "file", "file_id": new.id, "replaces": [a]}
    docs.log_download(db, anna, new, "file")
    assert docs.new_versions(db, anna, s.id) == set()
    with pytest.raises(DocumentError, match="unverändert"):
        acts.replace_file(cfg, db, new.id, "x.pdf", io.BytesIO(PDF3), "clerk")
    with pytest.raises(DocumentError, match="schon unter"):
        acts.replace_file(cfg, db, new.id, "x.pdf", io.BytesIO(PDF2), "clerk")
    # refused: the stored bytes went again, nothing else changed
    assert docs.blobs_for(cfg.state_dir).has(new.sha256) and len(list(docs.blobs_for(cfg.state_dir).all())) == 2


def test_no_push_while_the_session_is_not_active(cfg, db):
    s = sessions.create_session(db, body="Rat", title="Vorbereitung", day="2026-12-01", ssid=cfg.ssid)
    item = docs.add_item(db, s.id, "Eröffnung", number="1")
    acts.edit_item(db, item, "clerk", title="Begrüßung", number="1", public=True)
    assert events(db) == [] and last_audit(db)[0] == "documents.edit_item"
