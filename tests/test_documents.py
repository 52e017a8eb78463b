"""Document mirror: storage, hostile inputs, the read policy, HTTP semantics and the routes."""

from __future__ import annotations

import hashlib
import io
import re
import stat
import zipfile

import pytest
from flask import g

from appliance.documents import DocumentError, bulk, httpfile, policy, rules, service
from appliance.documents import blobs as blobs_mod
from appliance.rules.viewer import Viewer
from appliance.sessions import roster
from appliance.sessions import service as sessions
from tests import pdf_samples
from tests.test_clerk import confirmed

PDF = pdf_samples.pdf(b"x" * 3000)
PDF2 = pdf_samples.sized(200_000)
MEMBERS = """Name;Fraktion;Rolle;Stimmrecht;Gremium
Anna Schmidt;SPD;Mitglied;ja;Rat der Stadt
Dora Vertretung;SPD;Stellvertretung;nein;Rat der Stadt
Ulla Verwaltung;;Verwaltung;nein;Kämmerei
Otto Ausschuss;CDU;Mitglied;ja;Bauausschuss
Gerd Gast;;Gast;nein;Rat der Stadt
"""


@pytest.fixture
def setup(cfg, db):
    s = sessions.create_session(db, body="Rat der Stadt", title="Sitzung", day="2026-12-01", ssid="Sitzung")
    sessions.insert_members(db, s.id, roster.parse_members(MEMBERS))
    sessions.set_active(db, s.id)
    people = {m.name: m for m in sessions.members(db, s.id)}
    blobs = service.blobs_for(cfg.state_dir)
    pub = service.add_item(db, s.id, "Haushalt", number="1")
    np_ = service.add_item(db, s.id, "Personal", number="2", public=False)
    ids = {}
    for name, data, item, public in (("haushalt.pdf", PDF, pub, True), ("vermerk.pdf", PDF2, np_, True),
                                     ("anlage-np.pdf", PDF2[:-10] + b"%%EOF\n", pub, False)):
        n, kind, stored = service.store_upload(blobs, name, io.BytesIO(data))
        ids[name] = service.add_file(db, s.id, name=n, stored=stored, mime=kind.mime, item_id=item, public=public)
    return {"s": s, "people": people, "blobs": blobs, "ids": ids}


def member_viewer(m, sid) -> Viewer:
    return Viewer("member", sid, m, True, "10.77.0.20", "02:00:00:00:00:01")


# --- storage -----------------------------------------------------------------------------------


def test_blobs_are_content_addressed_atomic_and_deduplicated(tmp_path):
    b = blobs_mod.Blobs(tmp_path / "d")
    one = b.put_bytes(PDF)
    two = b.put_bytes(PDF)
    assert one.sha256 == hashlib.sha256(PDF).hexdigest() and one.new and not two.new
    assert b.path(one.sha256).read_bytes() == PDF
    assert list((tmp_path / "d" / "tmp").iterdir()) == []
    with pytest.raises(blobs_mod.TooLarge, match="größer als"):
        b.put_chunks([b"a" * 1024] * 3, max_size=2048)
    with pytest.raises(DocumentError, match="Prüfsumme"):
        b.put_chunks([PDF2], expect={"sha1": "0" * 40})
    assert list(b.all()) == [one.sha256] and list((tmp_path / "d" / "tmp").iterdir()) == []


def test_integrity_check_finds_missing_corrupt_and_orphans(setup, db):
    blobs = setup["blobs"]
    assert service.check(db, blobs) == []
    f = service.get_file(db, setup["ids"]["haushalt.pdf"])
    p = blobs.path(f.sha256)
    p.write_bytes(b"%PDF-tampered")
    orphan = blobs.put_bytes(b"nobody")
    problems = service.check(db, blobs)
    assert f"beschädigt (Prüfsumme falsch): {f.sha256}" in problems
    assert f"nicht verwendet: {orphan.sha256}" in problems
    p.unlink()
    assert f"fehlt: {f.sha256}" in service.check(db, blobs)


# --- hostile inputs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "msg"), [
    ("../etc/passwd.pdf", "Pfad"), ("a..b.pdf", ".."), ("..", ".."), ("bad\x07name.pdf", "Steuerzeichen"),
    ("zeile\nzwei.pdf", "Steuerzeichen"), ("rtl\u202etxt.pdf", "Steuerzeichen"), ("x" * 300 + ".pdf", "zu lang"),
    ("ä" * 150 + ".pdf", "zu lang"), ("", "keinen Namen"), ("a/b.pdf", "Pfad")])
def test_bad_names_are_refused(name, msg):
    with pytest.raises(DocumentError, match=re.escape(msg)):
        rules.check_name(name)


@pytest.mark.parametrize(("name", "head", "msg"), [
    ("x.exe", b"MZ", "Dateityp nicht erlaubt"), ("x.pdf", b"<html>", "kein PDF"),
    ("x.png", b"%PDF-1.4", "kein PNG"), ("x.txt", b"\x00\x01", "kein Text"), ("noext", b"%PDF-", "nicht erlaubt")])
def test_wrong_types_are_refused(name, head, msg):
    with pytest.raises(DocumentError, match=msg):
        rules.kind_of(name, head)


def test_folder_names_become_items():
    assert rules.folder_item("TOP 3 Haushalt") == ("3", "Haushalt", True)
    assert rules.folder_item("NÖ 4 Personalsache") == ("4", "Personalsache", False)
    assert rules.folder_item("Nichtöffentlich - 5. Grundstück") == ("5", "Grundstück", False)
    assert rules.folder_item("Anlagen") == ("", "Anlagen", True)


def _zip(entries: list[tuple[str, bytes]], *, symlink: str | None = None, level: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=level) as zf:
        for name, data in entries:
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return buf.getvalue()


def _nothing_left(db, blobs, sid, before_blobs):
    assert service.files(db, sid) == [] and service.items(db, sid) == []
    assert set(blobs.all()) == before_blobs
    tmp = blobs.root / "tmp"
    assert not tmp.exists() or list(tmp.iterdir()) == []


@pytest.mark.parametrize(("data", "msg"), [
    (_zip([("ok.pdf", PDF), ("../../evil.pdf", PDF)]), "Pfad"),
    (_zip([("/abs.pdf", PDF)]), "absolut"),
    (_zip([("ok.pdf", PDF)], symlink="link.pdf"), "symbolischer Link"),
    (_zip([("bomb.txt", b"0" * (20 << 20))], level=zipfile.ZIP_DEFLATED), "ZIP-Bombe"),
    (_zip([("ok.pdf", PDF), ("TOP 1/fake.pdf", b"MZ not a pdf")]), "kein PDF"),
    (_zip([("ok.pdf", PDF), ("prog.exe", b"MZ")]), "nicht erlaubt"),
    (_zip([("ctl\x01.pdf", PDF)]), "Steuerzeichen"),
    (_zip([("TOP 1/" + "y" * 200 + ".pdf", PDF)]), "zu lang"),
    (b"PK\x03\x04 not really a zip", "kein lesbares ZIP"),
])
def test_hostile_zips_are_refused_and_leave_nothing(cfg, db, data, msg):
    s = sessions.create_session(db, body="Rat", title="S", day="2026-12-01", ssid="Sitzung")
    blobs = service.blobs_for(cfg.state_dir)
    keep = blobs.put_bytes(b"already here")  # an existing blob must survive a refused import
    with pytest.raises(bulk.BulkError) as err:
        bulk.import_zip(db, blobs, s.id, io.BytesIO(data))
    assert msg in str(err.value)
    _nothing_left(db, blobs, s.id, {keep.sha256})


def test_oversize_file_is_refused(cfg, db, monkeypatch):
    s = sessions.create_session(db, body="Rat", title="S", day="2026-12-01", ssid="Sitzung")
    blobs = service.blobs_for(cfg.state_dir)
    monkeypatch.setattr(rules, "MAX_FILE", 100_000)
    with pytest.raises(bulk.BulkError, match="größer als"):
        bulk.import_zip(db, blobs, s.id, io.BytesIO(_zip([("big.pdf", PDF2)])))
    entries = [bulk.Entry(None, "big.pdf", rules.MAX_FILE, lambda: io.BytesIO(PDF2))]
    with pytest.raises(bulk.BulkError, match="größer als"):
        bulk.import_entries(db, blobs, s.id, entries)
    _nothing_left(db, blobs, s.id, set())


def test_zip_and_folder_import(cfg, db, tmp_path):
    s = sessions.create_session(db, body="Rat", title="S", day="2026-12-01", ssid="Sitzung")
    blobs = service.blobs_for(cfg.state_dir)
    data = _zip([("Einladung.pdf", PDF), ("TOP 1 Haushalt/Vorlage.pdf", PDF2), ("NÖ 2 Personal/Vermerk.pdf", PDF),
                 ("__MACOSX/._x", b"junk")])
    r = bulk.import_zip(db, blobs, s.id, io.BytesIO(data))
    assert (r.files, r.items) == (3, 2) and r.skipped
    agenda = service.agenda(db, s.id)
    assert [(e.item.title if e.item else None, [f.name for f in e.files]) for e in agenda] == [
        (None, ["Einladung.pdf"]), ("Haushalt", ["Vorlage.pdf"]), ("Personal", ["Vermerk.pdf"])]
    assert agenda[2].item.public is False
    # Einladung and Vermerk are the same bytes; one-page originals are their own viewer's copy (issue 16)
    assert len({f.sha256 for f in service.files(db, s.id)}) == 2 and len(set(blobs.all())) == 2
    assert all(f.view_sha256 == f.sha256 for f in service.files(db, s.id))
    assert set(blobs.all()) == service.referenced(db)
    # a folder with a symlink is refused as a whole
    (tmp_path / "usb" / "TOP 3").mkdir(parents=True)
    (tmp_path / "usb" / "TOP 3" / "a.pdf").write_bytes(PDF)
    (tmp_path / "usb" / "link.pdf").symlink_to("/etc/passwd")
    with pytest.raises(bulk.BulkError, match="Link"):
        bulk.import_dir(db, blobs, s.id, tmp_path / "usb")
    (tmp_path / "usb" / "link.pdf").unlink()
    assert bulk.import_dir(db, blobs, s.id, tmp_path / "usb").files == 1


# --- policy ---------------------------------------------------------------------------------------


def test_policy_matrix(setup):
    sid, p = setup["s"].id, setup["people"]
    body = "Rat der Stadt"
    cases = {
        "Anna Schmidt": True, "Dora Vertretung": True, "Ulla Verwaltung": True,
        "Otto Ausschuss": False,  # member of another body
        "Gerd Gast": False,  # named guest role
    }
    for name, entitled in cases.items():
        v = member_viewer(p[name], sid)
        assert policy.may_read(v, sid, body, item_public=False) is entitled, name
        assert policy.may_read(v, sid, body) is True, name
    guest = Viewer("guest", sid, None, True, "10.77.0.30")
    anon = Viewer("anonymous", sid, None, False, "10.77.0.31")
    clerk = Viewer("clerk", sid)
    assert policy.may_read(guest, sid, body) and not policy.may_read(guest, sid, body, file_public=False)
    assert not policy.may_read(anon, sid, body)
    assert policy.may_read(clerk, sid, body, item_public=False)
    # another session's documents: never, even for an entitled member
    assert not policy.may_read(member_viewer(p["Anna Schmidt"], sid), sid + 1, body)
    not_admitted = Viewer("member", sid, p["Anna Schmidt"], False)
    assert not policy.may_read(not_admitted, sid, body)


def test_visible_agenda_hides_nonpublic_items_entirely(setup, db):
    sid = setup["s"].id
    guest = Viewer("guest", sid, None, True, "10.77.0.30")
    seen = service.visible_agenda(db, guest, sid)
    assert [e.item.title for e in seen] == ["Haushalt"]
    assert [f.name for f in seen[0].files] == ["haushalt.pdf"]
    anna = member_viewer(setup["people"]["Anna Schmidt"], sid)
    assert len(service.visible_files(db, anna, sid)) == 3
    assert [f.name for f in service.search(db, guest, sid, "haus")] == ["haushalt.pdf"]
    assert service.search(db, guest, sid, "vermerk") == [] and len(service.search(db, anna, sid, "Vermerk")) == 1


# --- HTTP ---------------------------------------------------------------------------------------


def test_range_and_etag_plan():
    tag = httpfile.etag("a" * 64)
    assert httpfile.plan(100, tag).status == 200
    assert httpfile.plan(100, tag, if_none_match=tag).status == 304
    assert httpfile.plan(100, tag, if_none_match=f'W/{tag}, "x"').status == 304
    p = httpfile.plan(100, tag, range_header="bytes=10-19")
    assert (p.status, p.start, p.length, p.content_range) == (206, 10, 10, "bytes 10-19/100")
    assert httpfile.plan(100, tag, range_header="bytes=90-").length == 10
    assert httpfile.plan(100, tag, range_header="bytes=-5").start == 95
    assert httpfile.plan(100, tag, range_header="bytes=95-200").length == 5
    assert httpfile.plan(100, tag, range_header="bytes=100-").status == 416
    assert httpfile.plan(100, tag, range_header="bytes=0-1,5-6").status == 200
    assert httpfile.plan(100, tag, range_header="bytes=0-1", if_range='"old"').status == 200


def test_content_disposition_rfc6266():
    cd = httpfile.content_disposition("Übersicht Haushalt 2027 (Entwurf).pdf", attachment=True)
    assert cd == ("attachment; filename=\"Ubersicht Haushalt 2027 (Entwurf).pdf\"; "
                  "filename*=UTF-8''%C3%9Cbersicht%20Haushalt%202027%20%28Entwurf%29.pdf")
    assert httpfile.content_disposition('a"b;c.pdf', attachment=False).startswith('inline; filename="a_b_c.pdf"')


# --- routes -------------------------------------------------------------------------------------


@pytest.fixture
def app_as(cfg, setup):
    from appliance.helper.client import NullHelper
    from appliance.web.app import create_app

    app = create_app(cfg, helper=NullHelper(), testing=True)
    who: dict = {"viewer": None}

    def _as_viewer():
        if who["viewer"] is not None:
            g.viewer = who["viewer"]
    app.before_request_funcs.setdefault(None, []).append(_as_viewer)

    def use(viewer):
        who["viewer"] = viewer
        return app.test_client()
    return use


def test_routes_follow_the_policy(setup, app_as, db):
    sid, ids = setup["s"].id, setup["ids"]
    anna = member_viewer(setup["people"]["Anna Schmidt"], sid)
    guest = Viewer("guest", sid, None, True, "10.77.0.30")
    c = app_as(anna)
    page = c.get("/unterlagen").get_data(as_text=True)
    assert "Personal" in page and "vermerk.pdf" in page and "nichtöffentlich" in page
    r = c.get(f"/unterlagen/datei/{ids['vermerk.pdf']}/vermerk.pdf")
    assert r.status_code == 200 and r.data == PDF2 and r.mimetype == "application/pdf"
    assert r.headers["Accept-Ranges"] == "bytes" and "private, no-store" in r.headers["Cache-Control"]
    etag = r.headers["ETag"]
    assert c.get(f"/unterlagen/datei/{ids['vermerk.pdf']}/x", headers={"If-None-Match": etag}).status_code == 304
    part = c.get(f"/unterlagen/datei/{ids['vermerk.pdf']}/x", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.data == PDF2[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(PDF2)}"
    log = service.downloads(db, sid)
    assert [(r["who"], r["via"]) for r in log] == [("Anna Schmidt", "file")]  # ranges and 304s are not new reads
    z = zipfile.ZipFile(io.BytesIO(c.get("/unterlagen/alle.zip").data))
    assert len(z.namelist()) == 3 and z.read([n for n in z.namelist() if n.endswith("vermerk.pdf")][0]) == PDF2

    g_ = app_as(guest)
    page = g_.get("/unterlagen").get_data(as_text=True)
    assert "haushalt.pdf" in page and "Personal" not in page and "vermerk" not in page and "anlage-np" not in page
    for name in ("vermerk.pdf", "anlage-np.pdf"):
        r = g_.get(f"/unterlagen/datei/{ids[name]}/{name}")
        assert r.status_code == 404 and b"nicht freigegeben" in r.data
        assert g_.get(f"/unterlagen/ansehen/{ids[name]}").status_code == 404
    assert g_.get("/unterlagen/datei/99999/x.pdf").status_code == 404
    z = zipfile.ZipFile(io.BytesIO(g_.get("/unterlagen/alle.zip").data))
    assert [n.rsplit("/", 1)[1] for n in z.namelist()] == ["haushalt.pdf"]
    assert "„vermerk“: 0" in g_.get("/unterlagen?q=vermerk").get_data(as_text=True)
    assert [d["name"] for d in g_.get("/unterlagen/neu?seit=0").json] == ["haushalt.pdf"]
    assert g_.get(f"/unterlagen/neu?seit={ids['anlage-np.pdf']}").json == []
    anon = app_as(Viewer("anonymous", sid, None, False, "10.77.0.40"))
    # Not let through yet: the one answer of every member page, the portal (tests/test_member_pages.py).
    for path in ("/unterlagen", f"/unterlagen/datei/{ids['haushalt.pdf']}/haushalt.pdf"):
        r = anon.get(path)
        assert r.status_code == 302 and r.headers["Location"].endswith("/portal")
    assert [r["via"] for r in service.downloads(db, sid)].count("zip") == 2  # Anna's two non-public in the ZIP


def test_clerk_upload_and_wipe(setup, app_as, db, cfg):
    from appliance.web import auth
    sid = setup["s"].id
    c = app_as(None)
    auth.set_password(db, "pw-for-this-test-1")
    tok = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/clerk/login").get_data(as_text=True)).group(1)
    c.post("/clerk/login", data={"csrf_token": tok, "password": "pw-for-this-test-1"})
    page = c.get(f"/clerk/sessions/{sid}/unterlagen").get_data(as_text=True)
    tok = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = c.post(f"/clerk/sessions/{sid}/unterlagen/hochladen", data={
        "csrf_token": tok, "late": "1", "files": [(io.BytesIO(PDF + b"1"), "tisch.pdf"),
                                                  (io.BytesIO(pdf_samples.pdf(b"2")), "zwei.pdf")]},
        content_type="multipart/form-data")
    assert r.status_code == 302
    late = [f for f in service.files(db, sid) if f.late]
    assert sorted(f.name for f in late) == ["tisch.pdf", "zwei.pdf"]
    r = c.post(f"/clerk/sessions/{sid}/unterlagen/hochladen", data={
        "csrf_token": tok, "late": "0", "files": [(io.BytesIO(PDF), "ok.pdf"), (io.BytesIO(b"MZ"), "boese.pdf")]},
        content_type="multipart/form-data")
    assert r.status_code == 422 and "kein PDF" in r.get_data(as_text=True)
    assert "ok.pdf" not in [f.name for f in service.files(db, sid)]
    r = c.post(f"/clerk/sessions/{sid}/unterlagen/loeschen", data={"csrf_token": tok, "what": "nonpublic"})
    assert r.status_code == 422  # not confirmed
    np_sha = service.get_file(db, setup["ids"]["vermerk.pdf"]).sha256
    r = c.post(f"/clerk/sessions/{sid}/unterlagen/loeschen",
               data={"csrf_token": tok, "what": "nonpublic", "confirm": "yes"})
    assert r.status_code == 422  # ticked, but without the confirmation page's token
    assert len(service.files(db, sid)) == 5
    page = c.get(f"/clerk/sessions/{sid}/unterlagen/loeschen?what=nonpublic").get_data(as_text=True)
    assert "2 nichtöffentliche Dateien von „Sitzung“ werden endgültig von der Box gelöscht" in page
    r = confirmed(c, f"/clerk/sessions/{sid}/unterlagen/loeschen", what="nonpublic")
    assert r.status_code == 302
    assert sorted(f.name for f in service.files(db, sid)) == ["haushalt.pdf", "tisch.pdf", "zwei.pdf"]
    assert not setup["blobs"].has(np_sha)
    page = c.get(f"/clerk/sessions/{sid}/unterlagen/loeschen?what=all").get_data(as_text=True)
    assert "Alle 3 Dateien von „Sitzung“ werden endgültig von der Box gelöscht" in page
    confirmed(c, f"/clerk/sessions/{sid}/unterlagen/loeschen", what="all")
    assert service.files(db, sid) == [] and list(setup["blobs"].all()) == []


def test_cli_import_check_and_wipe(cfg, db, tmp_path, capsys):
    from appliance import cli
    from appliance.config import to_toml

    s = sessions.create_session(db, body="Rat", title="S", day="2026-12-01", ssid="Sitzung")
    conf = tmp_path / "sb.toml"
    conf.write_text(to_toml(cfg))
    usb = tmp_path / "usb"
    (usb / "NÖ 2 Personal").mkdir(parents=True)
    (usb / "Einladung.pdf").write_bytes(PDF)
    (usb / "NÖ 2 Personal" / "Vermerk.pdf").write_bytes(PDF2)
    assert cli.main(["--config", str(conf), "import", str(s.id), str(usb)]) == 0
    assert "2 Datei(en) in 1 Tagesordnungspunkten" in capsys.readouterr().out
    assert cli.main(["--config", str(conf), "documents", "check"]) == 0
    (usb / "evil.exe").write_bytes(b"MZ")
    assert cli.main(["--config", str(conf), "import", str(s.id), str(usb)]) == 2
    assert "nichts wurde importiert" in capsys.readouterr().err
    assert len(service.files(db, s.id)) == 2
    assert cli.main(["--config", str(conf), "wipe", str(s.id), "--ja"]) == 0
    assert [f.name for f in service.files(db, s.id)] == ["Einladung.pdf"]
    assert cli.main(["--config", str(conf), "documents", "check"]) == 0
