"""OParl reader (pure) on the spec examples and vendor quirks; an import from a local OParl server."""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from appliance.documents import oparl, oparl_import, service
from appliance.sessions import service as sessions
from tests import pdf_samples

FIX = Path(__file__).parent / "fixtures" / "oparl"


def load(name: str):
    return json.loads((FIX / name).read_text(encoding="utf-8"))


def test_spec_meeting_11():
    m = oparl.parse_meeting(load("Meeting-01.json"))
    assert m.name == "4. Sitzung des Finanzausschusses"
    assert [(i.number, i.name, i.public) for i in m.items] == [("10.1", "Satzungsänderung für Ausschreibungen", True)]
    assert m.items[0].consultation == "https://oparl.example.org/consultation/1034"
    # invitation, protocols and auxiliary files all carry the same id in the example: deduplicated.
    assert [f.file_name for f in m.files] == ["einladung.pdf"]
    f = m.files[0]
    assert f.url == "https://oparl.example.org/files/download/57739.pdf"
    assert f.checksums == {"sha1": "da39a3ee5e6b4b0d3255bfef95601890afd80709"} and f.size == 82930


def test_spec_paper_and_file():
    p = oparl.parse_paper(load("Paper-01.json"))
    assert p.reference == "1234/2014"
    assert [f.file_name for f in p.files] == ["anlage_1_zur_anfrage.pdf", "anlage.pdf"]
    f = oparl.parse_file(load("File-01.json"))
    assert f is not None and f.mime == "application/pdf" and f.name == "Anlage 1 zur Anfrage"


def test_sdnet_10_list_page_quirks():
    items, nxt = oparl.list_page(load("sdnet-1.0-meeting-page.json"))
    assert nxt.endswith("meeting?page=2") and len(items) == 3
    m = oparl.parse_meeting(items[0])
    headings = [i for i in m.items if i.heading]
    assert [(h.number, h.name) for h in headings] == [("A", "Öffentliche Sitzung"), ("B", "Nichtöffentliche Sitzung")]
    regular = [i for i in m.items if not i.heading]
    # 1.0 without `public`: the part heading decides.
    assert [(i.number, i.public) for i in regular][-3:] == [("7.", True), ("8.", False), ("9.", False)]
    assert all("\n" not in i.name for i in m.items)
    with_files = [i for i in regular if i.files]
    assert with_files and all(f.file_name.endswith(".pdf") and f.size is None and f.checksums == {}
                              for i in with_files for f in i.files)


def test_quirky_meeting():
    m = oparl.parse_meeting(load("quirky-meeting.json"))
    assert m.start is None  # "N/A"
    assert [(i.number, i.name, i.public, i.heading) for i in m.items] == [
        ("1", "Eröffnung", True, False), ("2", "Haushalt 2027", True, False),
        ("", "Nichtöffentliche Sitzung", False, True), ("7", "Personalangelegenheit Amtsleitung", False, False)]
    assert m.files[0].size == 1234 and m.files[0].checksums == {}
    assert any("ohne accessUrl" in s for s in m.skipped) and any("nur als Verweis" in s for s in m.skipped)


@pytest.mark.parametrize("bad", [None, [], "x", {"type": "https://schema.oparl.org/1.1/Paper", "id": "p"},
                                 {"agendaItem": "nope", "id": "m", "name": "x"}, {"foo": 1}])
def test_malformed_meeting_is_refused(bad):
    with pytest.raises(oparl.OParlError):
        oparl.parse_meeting(bad)


def test_list_page_stops_on_self_loop_and_refuses_non_lists():
    assert oparl.list_page({"data": [], "links": {"next": "u", "self": "u"}}) == ([], None)
    with pytest.raises(oparl.OParlError):
        oparl.list_page({"nodata": 1})


# --- a local OParl server ------------------------------------------------------------------------

PDF_A = pdf_samples.pdf(b"% Vorlage Haushalt\n" + b"A" * 5000)
PDF_B = pdf_samples.pdf(b"% Anlage\n" + b"B" * 3000)
PDF_NP = pdf_samples.pdf(b"% vertraulich\n" + b"N" * 2000)


SHA1_B = hashlib.sha1(PDF_B, usedforsecurity=False).hexdigest()


class OParlServer:
    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        self.fail_once = {"/oparl/paper/1"}  # a 500 first: retried
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def do_GET(self):  # noqa: N802
                outer.hits[self.path] = outer.hits.get(self.path, 0) + 1
                if self.path in outer.fail_once:
                    outer.fail_once.discard(self.path)
                    self.send_error(500)
                    return
                body = outer.routes().get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def routes(self) -> dict[str, bytes]:
        b = self.base
        meeting = {
            "id": f"{b}/oparl/meeting/1", "type": "https://schema.oparl.org/1.1/Meeting", "name": "Rat",
            "invitation": {"id": f"{b}/oparl/file/inv", "name": "Einladung", "fileName": "einladung.pdf",
                           "accessUrl": f"{b}/files/b.pdf", "sha1Checksum": SHA1_B},
            "agendaItem": [
                {"id": f"{b}/oparl/ai/1", "number": "1", "name": "Haushalt", "public": True,
                 "consultation": f"{b}/oparl/consultation/1"},
                {"id": f"{b}/oparl/ai/2", "number": "2", "name": "Personal", "public": False,
                 "auxiliaryFile": [
                     {"id": f"{b}/oparl/file/np", "name": "Vermerk", "fileName": "vermerk.pdf",
                      "accessUrl": f"{b}/files/np.pdf", "sha512Checksum": hashlib.sha512(PDF_NP).hexdigest()},
                     {"id": f"{b}/oparl/file/bad", "name": "Manipuliert", "fileName": "x.pdf",
                      "accessUrl": f"{b}/files/a.pdf", "sha512Checksum": "0" * 128},
                     {"id": f"{b}/oparl/file/gone", "name": "Fehlt", "accessUrl": f"{b}/files/gone.pdf"}]},
            ]}
        return {
            "/oparl/meeting/1": json.dumps(meeting).encode(),
            "/oparl/consultation/1": json.dumps({"id": f"{b}/oparl/consultation/1",
                                                 "paper": f"{b}/oparl/paper/1"}).encode(),
            "/oparl/paper/1": json.dumps({"id": f"{b}/oparl/paper/1", "name": "Haushalt 2027",
                                          "mainFile": {"id": f"{b}/oparl/file/a", "name": "Vorlage Haushalt",
                                                       "accessUrl": f"{b}/files/a.pdf",
                                                       "downloadUrl": f"{b}/files/a.pdf"}}).encode(),
            "/files/a.pdf": PDF_A, "/files/b.pdf": PDF_B, "/files/np.pdf": PDF_NP,
        }

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_import_from_local_oparl_server_into_a_session(cfg, db):
    s = sessions.create_session(db, body="Rat der Stadt", title="Sitzung", day="2026-12-01", ssid="Sitzung")
    srv = OParlServer()
    blobs = service.blobs_for(cfg.state_dir)
    try:
        src = oparl_import.HttpSource(timeout=5, retries=3, backoff=0.01)
        url = f"{srv.base}/oparl/meeting/1"
        import_id = oparl_import.begin(db, s.id, url)
        report = oparl_import.import_meeting(db, blobs, s.id, src, url, import_id=import_id)
        assert report.items == 2 and report.files == 3
        assert any("Prüfsumme (sha512) stimmt nicht" in p and "Manipuliert" in p for p in report.problems)
        assert any("Fehlt" in p and "404" in p for p in report.problems)
        files = {f.title: f for f in service.files(db, s.id)}
        assert set(files) == {"Einladung", "Vorlage Haushalt", "Vermerk"}
        assert files["Vermerk"].effective_public is False and files["Vorlage Haushalt"].effective_public
        assert blobs.path(files["Vorlage Haushalt"].sha256).read_bytes() == PDF_A
        assert hashlib.sha256(PDF_NP).hexdigest() == files["Vermerk"].sha256
        row = db.execute("SELECT total, done FROM doc_imports WHERE id = ?", [import_id]).fetchone()
        assert row == (5, 5)
        # Resumed: a rerun fetches no file twice and adds nothing.
        before = dict(srv.hits)
        again = oparl_import.import_meeting(db, blobs, s.id, src, url)
        assert again.files == 0 and again.already == 3
        assert srv.hits["/files/a.pdf"] == before["/files/a.pdf"] + 1  # only the refused one again
        assert len(service.files(db, s.id)) == 3 and service.check(db, blobs) == []
    finally:
        srv.close()


def test_import_from_a_folder_of_saved_oparl_json(cfg, db, tmp_path):
    s = sessions.create_session(db, body="Rat", title="S", day="2026-12-01", ssid="Sitzung")
    meeting = load("Meeting-01.json")
    meeting["invitation"]["sha1Checksum"] = hashlib.sha1(PDF_B, usedforsecurity=False).hexdigest()
    (tmp_path / "meeting.json").write_text(json.dumps(meeting))
    (tmp_path / "57739.pdf").write_bytes(PDF_B)
    src = oparl_import.DirSource(tmp_path)
    assert src.meetings() == [meeting["id"]]
    report = oparl_import.import_meeting(db, service.blobs_for(cfg.state_dir), s.id, src, meeting["id"])
    assert report.files == 1 and report.items == 1
    assert any("consultation" in p or "Vorlage" in p for p in report.problems) or report.problems == []
