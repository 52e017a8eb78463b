"""The viewer's copy of a PDF (issue 16): made at import by Debian's qpdf through every entry path
(clerk upload, ZIP, folder on the command line, OParl), stored as a blob of its own; the original's bytes stay
what downloads, the ZIP and OParl's checksums are about. A PDF qpdf cannot prepare is reported in German and
served as it came; the copies live and die with their files."""

from __future__ import annotations

import hashlib
import html
import io
import json
import os
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

from appliance import cli
from appliance.config import to_toml
from appliance.documents import bulk, oparl_import, pdfcheck, service, viewcopy
from appliance.rules.viewer import Viewer
from appliance.sessions import roster
from appliance.sessions import service as sessions
from appliance.usecases import documents as acts
from tests import pdf_samples
from tests.conftest import logged_in_clerk, need_binary

pytestmark = pytest.mark.usefixtures("qpdf")

# Several pages, each page's dictionary right before its ~60 kB of content (as many producers write): the page
# dictionaries lie spread over the file, what PDF.js pays for (see documents/viewcopy.py).
HAUSHALT = pdf_samples.pages(6, 400_000, links=1)
VERMERK = pdf_samples.pages(5, 300_000, links=1)
# The catalog's /Pages names a page, not a page tree. pypdf (and so pdfcheck, and readers) show the one page;
# qpdf cannot rewrite it and exits 2.
NO_PAGE_TREE = pdf_samples.write([b"<< /Type /Catalog /Pages 3 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                                  b"<< /Type /Page /MediaBox [0 0 595 842] /Contents 4 0 R >>",
                                  b"<< /Length 23 >>\nstream\nBT /F1 12 Tf (x) Tj ET\nendstream"])
SENTENCE = "ließ sich nicht für die schnelle Ansicht aufbereiten"


@pytest.fixture
def qpdf():
    need_binary("qpdf")


@pytest.fixture
def session(db):
    s = sessions.create_session(db, body="Rat der Stadt", title="Sitzung", day="2026-12-01", ssid="Sitzung")
    sessions.insert_members(db, s.id, roster.parse_members("Name;Rolle\nAnna Schmidt;Mitglied\n"))
    sessions.set_active(db, s.id)
    return s


def dicts_together(path: Path) -> bool:
    """Measured with pypdf, not with the module's own qpdf reading: the page dictionaries lie in one 64 kB chunk,
    or in a chunk per 50 pages (qpdf's object streams hold 100 objects; a page's annotations share them)."""
    return _chunks_with_page_dicts(path) <= max(1, _page_count(path) // 50)


def assert_copy(cfg, f: service.File, original: bytes) -> None:
    """The row's original is the bytes that came, untouched; the viewer reads a copy of them whose page dictionaries
    lie together, with the same pages."""
    blobs = service.blobs_for(cfg.state_dir)
    assert f.sha256 == hashlib.sha256(original).hexdigest() and blobs.path(f.sha256).read_bytes() == original
    assert blobs.verify(f.sha256) and f.size == len(original)
    assert f.view_sha256 and f.view_sha256 != f.sha256 and service.viewer_copy(f) == f.view_sha256
    assert blobs.verify(f.view_sha256) and dicts_together(blobs.path(f.view_sha256))
    assert not dicts_together(blobs.path(f.sha256))
    assert _page_count(blobs.path(f.view_sha256)) == _page_count(blobs.path(f.sha256))
    assert f.view_sha256 in service.referenced(db_of(cfg))


def db_of(cfg):
    from appliance.store import open_db

    return open_db(cfg.db_path)


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def member_client(cfg, db, session):
    from flask import g

    from appliance.helper.client import NullHelper
    from appliance.web.app import create_app

    app = create_app(cfg, helper=NullHelper(), testing=True)
    anna = sessions.members(db, session.id)[0]

    def _as_member():
        g.viewer = Viewer("member", session.id, anna, True, "10.77.0.20", "02:00:00:00:00:01")
    app.before_request_funcs.setdefault(None, []).append(_as_member)
    return app.test_client()


# --- the module ----------------------------------------------------------------------------------


def test_qpdf_reason_names_qpdf_s_words_without_our_paths():
    err = ("WARNING: /s/documents/tmp/up-1: file is damaged\n"
           "qpdf: /s/documents/ab/abcd (offset 115): no pages found while calculating linearization data\n")
    assert viewcopy.qpdf_reason(err, "/s/documents/ab/abcd") == \
        "qpdf meldet „(offset 115): no pages found while calculating linearization data“"
    assert viewcopy.sentence("Vorlage.pdf", "nach 60 s abgebrochen (Zeitgrenze)") == (
        "„Vorlage.pdf“ ließ sich nicht für die schnelle Ansicht aufbereiten: nach 60 s abgebrochen (Zeitgrenze) – "
        "die Ansicht zeigt die Datei wie geliefert (lädt langsamer).")


def test_page_places_read_qpdf_s_words():
    """Recorded `qpdf --show-pages` / `--show-xref` (qpdf 11.3): a page inside an object stream lies where its
    stream lies."""
    pages = "page 1: 5 0 R\n  content:\n    25 0 R\npage 2: 6 0 R\n  content:\n    26 0 R\n"
    xref = ("1/0: uncompressed; offset = 15\n5/0: compressed; stream = 1, index = 3\n"
            "6/0: uncompressed; offset = 900000\n")
    assert viewcopy.page_places(pages, xref) == [15, 900000]
    assert not viewcopy.together([15, 900000]) and viewcopy.together([15, 60000]) and not viewcopy.together([])
    assert viewcopy.together([0, 150 * 1024] + [100] * 148)  # 150 pages: 150 kB of dictionaries is together


def test_a_copy_an_already_compact_file_and_a_damaged_one_in_one_child(tmp_path):
    plain, broken = tmp_path / "plain.pdf", tmp_path / "broken.pdf"
    plain.write_bytes(HAUSHALT)
    broken.write_bytes(NO_PAGE_TREE)
    out = tmp_path / "out"
    made, bad = viewcopy.prepare_files([plain, broken], out)
    assert made.copy is not None and made.copy.parent == out and dicts_together(made.copy) and not made.already
    assert not dicts_together(plain) and _page_count(made.copy) == 6
    assert plain.read_bytes() == HAUSHALT  # the original is never touched
    assert bad.copy is None and bad.problem == "qpdf findet darin keine Seiten (Seitenbaum beschädigt)"
    assert list(out.iterdir()) == [made.copy]
    # the same original gives the same copy, byte for byte (--deterministic-id): content-addressed copies dedupe
    (again,) = viewcopy.prepare_files([plain], tmp_path / "out2")
    assert again.copy.read_bytes() == made.copy.read_bytes()
    (already,) = viewcopy.prepare_files([made.copy], tmp_path / "out3")
    assert already.already and already.copy is None and not list((tmp_path / "out3").iterdir())


def test_a_qpdf_that_hangs_is_stopped_and_reported(tmp_path):
    slow = tmp_path / "qpdf"
    slow.write_text("#!/bin/sh\nsleep 30\n")
    slow.chmod(0o755)
    (tmp_path / "a.pdf").write_bytes(HAUSHALT)
    t0 = time.monotonic()
    (res,) = viewcopy.prepare_files([tmp_path / "a.pdf"], tmp_path / "out", qpdf=str(slow), file_seconds=0.5)
    assert time.monotonic() - t0 < 10
    assert res.copy is None and res.problem == "nach 0,5 s abgebrochen (Zeitgrenze)"


def test_without_qpdf_the_original_is_served_and_the_reason_named(tmp_path):
    (tmp_path / "a.pdf").write_bytes(HAUSHALT)
    (res,) = viewcopy.prepare_files([tmp_path / "a.pdf"], tmp_path / "out", qpdf=str(tmp_path / "kein-qpdf"))
    assert res.copy is None and res.problem == "qpdf fehlt auf der Box (apt install qpdf)"


def test_the_damaged_pdf_passes_pdfcheck():
    """Why it stands for "qpdf rejects, the box keeps": pdfcheck (pypdf) opens it, as readers do."""
    assert pdfcheck.check(NO_PAGE_TREE).ok and pdfcheck.check(HAUSHALT).ok


# --- every entry path --------------------------------------------------------------------------


def test_clerk_upload_makes_a_copy_and_downloads_and_the_zip_keep_the_original(cfg, db, session):
    c, tok = logged_in_clerk(cfg, db, f"/clerk/sessions/{session.id}/unterlagen")
    r = c.post(f"/clerk/sessions/{session.id}/unterlagen/hochladen", data={
        "csrf_token": tok, "late": "0", "files": [(io.BytesIO(HAUSHALT), "Haushalt.pdf"),
                                             (io.BytesIO(NO_PAGE_TREE), "Kaputt.pdf")]},
        content_type="multipart/form-data", follow_redirects=True)
    page = html.unescape(r.get_data(as_text=True))
    assert r.status_code == 200 and f"„Kaputt.pdf“ {SENTENCE}: qpdf findet darin keine Seiten" in page
    assert f"„Haushalt.pdf“ {SENTENCE}" not in page
    good, bad = sorted(service.files(db, session.id), key=lambda f: f.name)
    assert good.name == "Haushalt.pdf" and bad.name == "Kaputt.pdf"
    assert_copy(cfg, good, HAUSHALT)
    assert bad.view_sha256 is None and service.viewer_copy(bad) == bad.sha256  # served as it came
    m = member_client(cfg, db, session)
    for f, data in ((good, HAUSHALT), (bad, NO_PAGE_TREE)):
        got = m.get(f"/unterlagen/datei/{f.id}/{f.name}")
        assert got.status_code == 200 and got.data == data and hashlib.sha256(got.data).hexdigest() == f.sha256
    blobs = service.blobs_for(cfg.state_dir)
    for f in (good, bad):  # the viewer's own route reads the copy (the original when there is none)
        assert m.get(f"/unterlagen/{f.id}/pdf").data == blobs.path(service.viewer_copy(f)).read_bytes()
    assert m.get(f"/unterlagen/{good.id}/pdf").data != HAUSHALT
    z = zipfile.ZipFile(io.BytesIO(m.get("/unterlagen/alle.zip").data))
    inside = {n.rsplit("/", 1)[-1]: z.read(n) for n in z.namelist()}
    assert inside == {"Haushalt.pdf": HAUSHALT, "Kaputt.pdf": NO_PAGE_TREE}


def test_zip_and_folder_on_the_command_line(cfg, db, session, tmp_path, capsys):
    conf = tmp_path / "box.toml"
    conf.write_text(to_toml(cfg))
    (tmp_path / "z.zip").write_bytes(zip_bytes({"TOP 1 Haushalt/Haushalt.pdf": HAUSHALT, "Kaputt.pdf": NO_PAGE_TREE}))
    assert cli.main(["--config", str(conf), "import", str(session.id), str(tmp_path / "z.zip")]) == 0
    out = capsys.readouterr().out
    assert f"„Kaputt.pdf“ {SENTENCE}: qpdf findet darin keine Seiten" in out and "Haushalt.pdf“" not in out
    usb = tmp_path / "usb" / "NÖ 2 Personal"
    usb.mkdir(parents=True)
    (usb / "Vermerk.pdf").write_bytes(VERMERK)
    assert cli.main(["--config", str(conf), "import", str(session.id), str(tmp_path / "usb")]) == 0
    by_name = {f.name: f for f in service.files(db, session.id)}
    assert_copy(cfg, by_name["Haushalt.pdf"], HAUSHALT)
    assert_copy(cfg, by_name["Vermerk.pdf"], VERMERK)
    assert by_name["Kaputt.pdf"].view_sha256 is None
    capsys.readouterr()
    assert cli.main(["--config", str(conf), "documents", "check"]) == 0  # the copies are known, none unused
    assert "nicht verwendet" not in capsys.readouterr().out


def test_oparl_keeps_the_original_its_checksum_describes(cfg, db, session, tmp_path):
    meeting = json.loads((Path(__file__).parent / "fixtures/oparl/Meeting-01.json").read_text())
    meeting["invitation"]["sha512Checksum"] = hashlib.sha512(HAUSHALT).hexdigest()
    (tmp_path / "meeting.json").write_text(json.dumps(meeting))
    (tmp_path / "57739.pdf").write_bytes(HAUSHALT)
    result = acts.import_oparl(cfg, db, session.id, str(tmp_path), "cli")
    (f,) = service.files(db, session.id)
    assert result.reports[0].files == 1
    assert_copy(cfg, f, HAUSHALT)
    stored = service.blobs_for(cfg.state_dir).path(f.sha256).read_bytes()
    assert hashlib.sha512(stored).hexdigest() == meeting["invitation"]["sha512Checksum"]  # still verifiable
    m = member_client(cfg, db, session)
    assert hashlib.sha512(m.get(f"/unterlagen/datei/{f.id}/{f.name}").data).hexdigest() == \
        meeting["invitation"]["sha512Checksum"]


def test_oparl_reports_a_pdf_qpdf_cannot_prepare(cfg, db, session, tmp_path):
    meeting = json.loads((Path(__file__).parent / "fixtures/oparl/Meeting-01.json").read_text())
    meeting["invitation"]["sha512Checksum"] = hashlib.sha512(NO_PAGE_TREE).hexdigest()
    (tmp_path / "meeting.json").write_text(json.dumps(meeting))
    (tmp_path / "57739.pdf").write_bytes(NO_PAGE_TREE)
    src = oparl_import.DirSource(tmp_path)
    report = oparl_import.import_meeting(db, service.blobs_for(cfg.state_dir), session.id, src, meeting["id"])
    assert report.files == 1 and any(SENTENCE in line and "keine Seiten" in line for line in report.lines())
    (f,) = service.files(db, session.id)
    assert f.view_sha256 is None and service.viewer_copy(f) == f.sha256


def test_an_original_with_its_page_dictionaries_together_is_its_own_copy(cfg, db, session, tmp_path):
    (made,) = viewcopy.prepare_files([_write(tmp_path / "a.pdf", HAUSHALT)], tmp_path / "out")
    fast = made.copy.read_bytes()
    blobs = service.blobs_for(cfg.state_dir)
    bulk.import_entries(db, blobs, session.id, [bulk.Entry(None, "Schnell.pdf", len(fast), lambda: io.BytesIO(fast))])
    (f,) = service.files(db, session.id)
    assert f.view_sha256 == f.sha256 and service.viewer_copy(f) == f.sha256 and list(blobs.all()) == [f.sha256]
    assert service.hashes(f) == [f.sha256]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# --- the copies live and die with their files ---------------------------------------------------


def test_replace_delete_and_wipe_take_the_copies_along(cfg, db, session):
    blobs = service.blobs_for(cfg.state_dir)
    item = service.add_item(db, session.id, "Personal", number="2", public=False)

    def put(name: str, data: bytes, item_id=None) -> None:
        bulk.import_entries(db, blobs, session.id, [bulk.Entry(None, name, len(data), lambda: io.BytesIO(data))],
                            item_id=item_id)

    put("Haushalt.pdf", HAUSHALT)
    (f,) = service.files(db, session.id)
    put("Haushalt.pdf", HAUSHALT)  # the same bytes again: present, and no stray copy
    assert sorted(blobs.all()) == sorted(service.hashes(f))
    put_ = acts.replace_file(cfg, db, f.id, "Haushalt neu.pdf", io.BytesIO(VERMERK), "clerk")
    new = service.get_file(db, put_.id)
    assert_copy(cfg, new, VERMERK)
    assert sorted(blobs.all()) == sorted(service.hashes(new))  # the old original and its copy are gone
    acts.delete_file(cfg, db, new.id, "clerk")
    assert list(blobs.all()) == []
    put("Vermerk.pdf", VERMERK, item)
    put("Haushalt.pdf", HAUSHALT)
    assert len(list(blobs.all())) == 4
    acts.wipe_documents(cfg, db, session.id, "clerk", nonpublic_only=True)
    (left,) = service.files(db, session.id)
    assert sorted(blobs.all()) == sorted(service.hashes(left))
    acts.wipe_documents(cfg, db, session.id, "clerk", nonpublic_only=False)
    assert list(blobs.all()) == []


def test_a_failed_import_leaves_no_copy_behind(cfg, db, session):
    blobs = service.blobs_for(cfg.state_dir)
    entries = [bulk.Entry(None, "Haushalt.pdf", len(HAUSHALT), lambda: io.BytesIO(HAUSHALT))]
    staged = bulk.store_entries(db, blobs, entries)
    assert len(staged.new_blobs) == 2  # the original and its copy
    bulk.discard(db, blobs, staged)
    assert list(blobs.all()) == []


def test_documents_check_verifies_the_copies(cfg, db, session):
    blobs = service.blobs_for(cfg.state_dir)
    bulk.import_entries(db, blobs, session.id, [bulk.Entry(None, "H.pdf", len(HAUSHALT), lambda: io.BytesIO(HAUSHALT))])
    (f,) = service.files(db, session.id)
    assert service.check(db, blobs) == []
    path = blobs.path(f.view_sha256)
    os.chmod(path, 0o640)
    path.write_bytes(path.read_bytes() + b"\n% tampered\n")
    assert service.check(db, blobs) == [f"beschädigt (Prüfsumme falsch): {f.view_sha256}"]


# --- files imported before copies were made ---------------------------------------------------------


def test_prepare_makes_the_copies_of_older_files(cfg, db, session, tmp_path, capsys):
    blobs = service.blobs_for(cfg.state_dir)
    for name, data in (("Haushalt.pdf", HAUSHALT), ("Kaputt.pdf", NO_PAGE_TREE), ("Notiz.txt", b"Notiz\n")):
        n, kind, stored = service.store_upload(blobs, name, io.BytesIO(data))
        service.put_file(db, session.id, name=n, stored=stored, mime=kind.mime, pdf_active=())  # as before issue 16
    assert all(f.view_sha256 is None for f in service.files(db, session.id))
    assert len(list(blobs.all())) == 3
    conf = tmp_path / "box.toml"
    conf.write_text(to_toml(cfg))
    assert cli.main(["--config", str(conf), "documents", "prepare", str(session.id)]) == 1
    out = capsys.readouterr().out
    assert f"„Kaputt.pdf“ {SENTENCE}: qpdf findet darin keine Seiten" in out
    assert "1 PDF-Datei(en) für die schnelle Ansicht aufbereitet, 0 waren es schon, 1 nicht aufbereitet." in out
    by_name = {f.name: f for f in service.files(db, session.id)}
    assert_copy(cfg, by_name["Haushalt.pdf"], HAUSHALT)
    assert by_name["Kaputt.pdf"].view_sha256 is None and by_name["Notiz.txt"].view_sha256 is None
    assert cli.main(["--config", str(conf), "documents", "prepare"]) == 1  # again: only the one it cannot do
    assert "0 PDF-Datei(en) für die schnelle Ansicht aufbereitet" in capsys.readouterr().out
    assert cli.main(["--config", str(conf), "documents", "prepare", "999"]) == 2


def test_a_big_pdf_is_prepared_quickly(tmp_path):
    """20 MB, 500 pages, 5,000 link annotations (as in test_pdfcheck)."""
    p = tmp_path / "haushalt.pdf"
    p.write_bytes(pdf_samples.pages(500, 20 << 20))
    t0 = time.monotonic()
    (result,) = viewcopy.prepare_files([p], tmp_path / "out")
    took = time.monotonic() - t0
    print(f"20 MB / 500 pages: {took:.2f} s with the child's start; page dictionaries in "
          f"{_chunks_with_page_dicts(result.copy)} chunks (original: {_chunks_with_page_dicts(p)})")
    assert result.copy is not None and dicts_together(result.copy)
    assert took < 15  # see the module text for the development machine; generous for a loaded CI box


def test_an_encrypted_pdf_gets_a_copy_without_a_deterministic_id(tmp_path):
    """qpdf cannot derive the /ID of an encrypted file (its own words: "deterministic ID and file encryption");
    a PDF openable without a password (pdfcheck lets it in) still gets its copy."""
    from pypdf import PdfWriter

    w = PdfWriter()
    w.add_blank_page(200, 200)
    w.encrypt(user_password="", owner_password="geheim", algorithm="RC4-128")
    buf = io.BytesIO()
    w.write(buf)
    p = _write(tmp_path / "enc.pdf", buf.getvalue())
    assert pdfcheck.check(p).ok
    (result,) = viewcopy.prepare_files([p], tmp_path / "out")
    assert (result.copy is not None and _page_count(result.copy) == 1) or result.already


def test_a_replacement_qpdf_cannot_prepare_is_reported_on_the_clerk_page(cfg, db, session):
    blobs = service.blobs_for(cfg.state_dir)
    bulk.import_entries(db, blobs, session.id, [bulk.Entry(None, "H.pdf", len(HAUSHALT), lambda: io.BytesIO(HAUSHALT))])
    (f,) = service.files(db, session.id)
    c, tok = logged_in_clerk(cfg, db, f"/clerk/sessions/{session.id}/unterlagen")
    r = c.post(f"/clerk/sessions/{session.id}/unterlagen/datei/{f.id}/ersetzen",
               data={"csrf_token": tok, "file": (io.BytesIO(NO_PAGE_TREE), "Neu.pdf")},
               content_type="multipart/form-data", follow_redirects=True)
    page = html.unescape(r.get_data(as_text=True))
    assert r.status_code == 200 and f"„Neu.pdf“ {SENTENCE}: qpdf findet darin keine Seiten" in page
    (new,) = service.files(db, session.id)
    assert new.view_sha256 is None and sorted(blobs.all()) == [new.sha256]  # the old original and copy are gone


def _page_count(path: Path) -> int:
    from pypdf import PdfReader

    return len(PdfReader(str(path)).pages)


def _chunks_with_page_dicts(path: Path, chunk: int = 65536) -> int:
    """In how many of PDF.js's 64 kB range chunks the page dictionaries lie (PDF.js fetches every one on opening)."""
    from pypdf import PdfReader

    r = PdfReader(str(path))
    where = set()
    for page in r.pages:
        num, gen = page.indirect_reference.idnum, page.indirect_reference.generation
        off = r.xref[0][r.xref_objStm[num][0]] if num in r.xref_objStm else r.xref[gen][num]
        where.add(off // chunk)
    return len(where)


def test_what_linearization_does_to_the_page_dictionaries(tmp_path):
    """Why the copy is not linearized (viewcopy's module text; a 60-page file here, 300 there): linearized (qpdf,
    with object streams or without) the page dictionaries stay spread one per page part, and PDF.js fetches each
    on opening; the box's copy has them in one chunk. An original that is linearized gets the copy too."""
    from tests.test_viewer_browser import many_pages

    src = _write(tmp_path / "flach.pdf", many_pages(60, dicts_first=False))
    lin, lin_os = tmp_path / "lin.pdf", tmp_path / "lin-os.pdf"
    subprocess.run(["qpdf", "--linearize", str(src), str(lin)], check=True)
    subprocess.run(["qpdf", "--linearize", "--object-streams=generate", str(src), str(lin_os)], check=True)
    (copy,) = viewcopy.prepare_files([src], tmp_path / "out")
    (of_lin,) = viewcopy.prepare_files([lin], tmp_path / "out2")
    assert [_chunks_with_page_dicts(p) for p in (src, lin, lin_os, copy.copy, of_lin.copy)] == [60, 60, 60, 1, 1]
