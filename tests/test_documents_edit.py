"""Clerks correct single items and files (issue 12): the use cases in usecases.documents (each one transaction
with one audit entry and one push event), the „neue Fassung“ record, and the clerk's web forms."""

from __future__ import annotations

import html
import io
import json
import re

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
    stored = docs.blobs_for(cfg.state_dir)
    assert stored.has(new.sha256) and set(stored.all()) == docs.referenced(db)  # originals and viewer's copies
    assert len(docs.referenced(db)) == 2  # one-page PDFs: their own viewer's copy


def test_no_push_while_the_session_is_not_active(cfg, db):
    s = sessions.create_session(db, body="Rat", title="Vorbereitung", day="2026-12-01", ssid=cfg.ssid)
    item = docs.add_item(db, s.id, "Eröffnung", number="1")
    acts.edit_item(db, item, "clerk", title="Begrüßung", number="1", public=True)
    assert events(db) == [] and last_audit(db)[0] == "documents.edit_item"


# --- the clerk's page ------------------------------------------------------------------------------------------


@pytest.fixture
def app_as(cfg):
    """A client of its own app that sees every request as `viewer` (None: as the request itself says)."""
    from flask import g

    from appliance.helper.client import NullHelper
    from appliance.web.app import create_app

    def use(viewer):
        app = create_app(cfg, helper=NullHelper(), testing=True)
        if viewer is not None:
            app.before_request_funcs.setdefault(None, []).append(lambda: setattr(g, "viewer", viewer))
        return app.test_client()
    return use


@pytest.fixture
def clerk(app_as, db, council):
    from appliance.web import auth

    c = app_as(None)
    auth.set_password(db, "pw-for-this-test-1")
    tok = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/clerk/login").get_data(as_text=True))[1]
    c.post("/clerk/login", data={"csrf_token": tok, "password": "pw-for-this-test-1"})
    page = c.get(f"/clerk/sessions/{council[0].id}/unterlagen").get_data(as_text=True)
    return c, re.search(r'name="csrf_token" value="([^"]+)"', page)[1]


def text(r) -> str:
    return html.unescape(r.get_data(as_text=True))


def test_clerk_edits_reorders_and_moves(clerk, db, council):
    c, tok = clerk
    s, one, two, a, b = council
    base = f"/clerk/sessions/{s.id}/unterlagen"
    page = text(c.get(base))
    # one numbering only: the item's own number in a plain list (no "2. 1 Eröffnung")
    assert '<ul class="clerk-agenda" id="clerk-agenda"' in page and '<ol class="agenda" id="clerk-agenda"' not in page
    assert '<span class="num">1</span> Eröffnung' in page
    r = c.post(f"{base}/punkt/{two}", data={"csrf_token": tok, "title": "Haushalt 2027", "number": "3"})
    assert r.status_code == 302 and r.headers["Location"].endswith(f"#citem-{two}")
    assert (docs.get_item(db, two).title, docs.get_item(db, two).number) == ("Haushalt 2027", "3")
    r = c.post(f"{base}/datei/{a}", data={"csrf_token": tok, "title": "", "nonpublic": "1"})
    assert r.status_code == 422 and "braucht einen Titel" in text(r)
    c.post(f"{base}/datei/{a}", data={"csrf_token": tok, "title": "Entwurf", "nonpublic": "1"})
    assert (docs.get_file(db, a).title, docs.get_file(db, a).public) == ("Entwurf", False)
    c.post(f"{base}/reihenfolge", data={"csrf_token": tok, "kind": "file", "id": str(b), "step": "up"})
    assert [f.id for e in docs.agenda(db, s.id) if e.item and e.item.id == two for f in e.files] == [b, a]
    c.post(f"{base}/reihenfolge", data={"csrf_token": tok, "kind": "item", "id": str(two), "step": "up"})
    assert [i.id for i in docs.items(db, s.id)] == [two, one]
    assert c.post(f"{base}/reihenfolge", data={"csrf_token": tok, "kind": "x", "id": "1", "step": "up"}
                  ).status_code == 422
    c.post(f"{base}/datei/{a}/verschieben", data={"csrf_token": tok, "item": str(one)})
    assert docs.get_file(db, a).item_id == one
    assert c.post(f"{base}/datei/{a}", data={"title": "ohne Token"}).status_code == 400  # CSRF


def test_delete_asks_first_and_never_on_get(clerk, db, council, cfg):
    c, tok = clerk
    s, one, two, a, b = council
    base = f"/clerk/sessions/{s.id}/unterlagen"
    r = c.get(f"{base}/datei/{a}/loeschen")
    assert r.status_code == 200
    assert '<h1 id="confirm-q">Datei „a“ löschen?</h1>\n<p>Mitglieder sehen sie danach nicht mehr.</p>' in text(r)
    assert docs.get_file(db, a) is not None  # a GET deletes nothing
    assert c.post(f"{base}/datei/{a}/loeschen", data={}).status_code == 400  # no CSRF token: refused
    r = c.post(f"{base}/datei/{a}/loeschen", data={"csrf_token": tok})
    assert r.status_code == 302 and docs.get_file(db, a) is None
    r = c.get(f"{base}/punkt/{two}/loeschen")
    assert "mit Dateien löschen (1)" in text(r) and docs.get_item(db, two) is not None
    r = c.post(f"{base}/punkt/{two}/loeschen", data={"csrf_token": tok})
    assert r.status_code == 422 and "mit Dateien" in text(r) and docs.get_item(db, two) is not None
    c.post(f"{base}/punkt/{two}/loeschen", data={"csrf_token": tok, "with_files": "1"})
    assert docs.get_item(db, two) is None and docs.get_file(db, b) is None
    assert c.get(f"{base}/datei/{b}/loeschen").status_code == 404


def test_upload_while_active_needs_an_explicit_choice(clerk, db, council):
    c, tok = clerk
    s = council[0]
    base = f"/clerk/sessions/{s.id}/unterlagen"
    page = text(c.get(base))
    assert 'name="late" value="1" required>' in page and 'name="late" value="0" required>' in page
    assert "checked" not in page.split('id="up-announce"')[1].split("</fieldset>")[0]  # no default
    up = lambda **form: c.post(f"{base}/hochladen", content_type="multipart/form-data",  # noqa: E731
                               data={"csrf_token": tok, "files": [(io.BytesIO(PDF3), "Einladung.pdf")], **form})
    r = up()
    assert r.status_code == 422 and "Bitte wählen" in text(r) and len(docs.files(db, s.id)) == 2
    assert up(late="0").status_code == 302
    assert events(db, "document") == []  # added without an announcement
    assert not next(f for f in docs.files(db, s.id) if f.name == "Einladung.pdf").late


def test_replace_on_the_page_and_the_members_badge(clerk, db, council, app_as):
    c, tok = clerk
    s, _one, two, a, _b = council
    anna = member(db, s)
    phone = app_as(anna)
    assert phone.get(f"/unterlagen/datei/{a}/a.pdf").status_code == 200
    assert "neue Fassung" not in text(phone.get("/unterlagen"))
    r = c.post(f"/clerk/sessions/{s.id}/unterlagen/datei/{a}/ersetzen", content_type="multipart/form-data",
               data={"csrf_token": tok, "file": (io.BytesIO(PDF3), "a2.pdf")})
    assert r.status_code == 302
    (new,) = [f for f in docs.files(db, s.id) if f.name == "a2.pdf"]
    page = text(phone.get("/unterlagen"))
    assert f'id="file-{new.id}"' in page and "neue Fassung" in page.split(f'id="file-{new.id}"')[1].split("</li>")[0]
    assert "neue Fassung" in text(phone.get(f"/unterlagen/ansehen/{new.id}"))
    assert "neue Fassung" not in text(app_as(member(db, s, 1)).get("/unterlagen"))  # Bernd never opened it
    phone.get(f"/unterlagen/datei/{new.id}/a2.pdf")
    assert "neue Fassung" not in text(phone.get("/unterlagen"))


def test_cli_list_rename_move_delete(cfg, db, council, tmp_path, capsys):
    from appliance import cli
    from appliance.config import to_toml

    s, one, two, a, b = council
    conf = tmp_path / "sb.toml"
    conf.write_text(to_toml(cfg))
    run = lambda *argv: cli.main(["--config", str(conf), "documents", *map(str, argv)])  # noqa: E731
    assert run("list", s.id) == 0
    out = capsys.readouterr().out
    assert f"Punkt {two}: 2 Haushalt" in out and f"  Datei {a}: a [a.pdf]" in out
    assert run("rename", "--punkt", two, "Haushalt 2027", "--nummer", "3") == 0
    assert (docs.get_item(db, two).number, docs.get_item(db, two).title) == ("3", "Haushalt 2027")
    assert run("rename", "--datei", a, "Entwurf") == 0 and docs.get_file(db, a).title == "Entwurf"
    assert run("move", a, one) == 0 and docs.get_file(db, a).item_id == one
    capsys.readouterr()
    assert run("delete", "--punkt", one) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("Fehler: Der Tagesordnungspunkt enthält noch 1 Datei(en)")
    assert run("delete", "--datei", a) == 0 and docs.get_file(db, a) is None
    assert run("delete", "--punkt", two, "--mit-dateien") == 0 and docs.get_item(db, two) is None
    assert run("delete", "--datei", 9999) == 2 and capsys.readouterr().err.startswith("Fehler: Diese Datei")
    actions = [r[0] for r in db.execute("SELECT action FROM audit WHERE actor = 'cli' ORDER BY id")]
    assert actions == ["documents.edit_item", "documents.edit_file", "documents.move_file",
                       "documents.delete_file", "documents.delete_item"]


def test_an_item_made_nonpublic_leaves_the_guests_page_at_once(clerk, db, council, app_as):
    from appliance.push import audience

    c, tok = clerk
    s, _one, two, a, _b = council
    guest = app_as(Viewer("guest", s.id, None, True, "10.77.0.30"))
    assert f'id="file-{a}"' in text(guest.get("/unterlagen"))
    c.post(f"/clerk/sessions/{s.id}/unterlagen/punkt/{two}",
           data={"csrf_token": tok, "title": "Haushalt", "number": "2", "nonpublic": "1"})
    page = text(guest.get("/unterlagen"))
    assert f'id="file-{a}"' not in page and "Haushalt" not in page
    assert "Haushalt" in text(app_as(member(db, s)).get("/unterlagen"))  # entitled members keep it
    # the open pages learn it from an event that names nothing and reaches every admitted viewer
    (row,) = db.execute("SELECT audience, payload FROM push_events WHERE topic = ?", [acts.CHANGED]).fetchall()
    assert row == ("all", json.dumps({"what": "item", "item_id": two}, separators=(",", ":")))
    assert audience.visible(Viewer("guest", s.id, None, True, "10.77.0.30"), row[0])
