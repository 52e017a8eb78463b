"""OParl reader (pure) on the spec examples and vendor quirks; an import from a local OParl server."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import tomllib
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from appliance import outside
from appliance.documents import jobs, oparl, oparl_import, service
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
    # Every AgendaItem is an item, the part headings too ("A Öffentliche Sitzung" has number A): structure
    # comes from the data, never from titles. Without `public` (OParl 1.0) an item is public (OParl only
    # publishes public data) and says that the source did not tell.
    raw = items[0]["agendaItem"]
    assert [i.number for i in m.items] == [oparl.text(r.get("number")) for r in raw]
    assert [(i.number, i.name) for i in m.items][:1] == [("A", "Öffentliche Sitzung")]
    assert ("B", "Nichtöffentliche Sitzung") in [(i.number, i.name) for i in m.items]
    assert all(i.public and not i.public_given for i in m.items)
    assert all("\n" not in i.name for i in m.items)
    with_files = [i for i in m.items if i.files]
    assert with_files and all(f.file_name.endswith(".pdf") and f.size is None and f.checksums == {}
                              for i in with_files for f in i.files)


def test_quirky_meeting():
    m = oparl.parse_meeting(load("quirky-meeting.json"))
    assert m.start is None  # "N/A"
    assert [(i.number, i.name, i.public) for i in m.items] == [
        ("1", "Eröffnung", True), ("2", "Haushalt 2027", True), ("", "Nichtöffentliche Sitzung", True),
        ("7", "Personalangelegenheit Amtsleitung", True)]
    assert [i.public_given for i in m.items] == [False, True, False, False]
    assert m.files[0].size == 1234 and m.files[0].checksums == {}
    assert any("ohne accessUrl" in s for s in m.skipped) and any("nur als Verweis" in s for s in m.skipped)


def test_an_item_whose_title_looks_like_a_heading_is_an_item():
    """The tester's case: a public item with a number that announces decisions of the closed part."""
    meeting = {"id": "m", "name": "Rat", "agendaItem": [
        {"id": "a1", "number": "11", "name": "Nichtöffentliche Sitzung", "public": False},
        {"id": "a2", "number": "12", "name": "Bekanntgabe der in nichtöffentlicher Sitzung gefassten Beschlüsse",
         "public": True},
        {"id": "a3", "number": "13", "name": "Öffentlicher Teil", "public": True}]}
    m = oparl.parse_meeting(meeting)
    assert [(i.number, i.public) for i in m.items] == [("11", False), ("12", True), ("13", True)]
    assert m.skipped == []


@pytest.mark.parametrize("bad", [None, [], "x", {"type": "https://schema.oparl.org/1.1/Paper", "id": "p"},
                                 {"agendaItem": "nope", "id": "m", "name": "x"}, {"foo": 1}])
def test_malformed_meeting_is_refused(bad):
    with pytest.raises(oparl.OParlError):
        oparl.parse_meeting(bad)


def test_list_shapes_and_self_loop():
    assert oparl.list_page([{"id": "a"}, "u"]) == ([{"id": "a"}, "u"], None)  # a bare array
    assert oparl.list_page({"data": [{"id": "a"}], "links": {"next": "p2"}}) == ([{"id": "a"}], "p2")
    assert oparl.entries({"id": "f"}) == ([{"id": "f"}], None)  # one object where a list was expected
    assert oparl.entries(None) == ([], None)
    with pytest.raises(oparl.OParlError, match="Schleife"):
        oparl.list_page({"data": [], "links": {"next": "u", "self": "u"}})
    with pytest.raises(oparl.OParlError):
        oparl.list_page({"nodata": 1})


@pytest.mark.parametrize(("data", "needle"), [
    (b"[" * 100_000 + b"]" * 100_000, "JSON zu tief verschachtelt (höchstens 64 Ebenen)"),
    (b'{"a": ' * 65 + b"1" + b"}" * 65, "JSON zu tief verschachtelt (höchstens 64 Ebenen)"),
    (b"x" * 20, "kein gültiges JSON (Zeile 1, Spalte 1)"),
    (b'{"a": 1 ' + b" " * 2000, "JSON zu groß (2008 Bytes; höchstens 1000 Bytes)"),
])
def test_json_limits_refuse_in_german(data, needle):
    with pytest.raises(oparl.OParlError) as err:
        oparl.load_json(data, "antwort.json", max_bytes=1000 if b"1 " in data else 10**6)
    assert needle in str(err.value) and str(err.value).startswith("antwort.json: ")


def test_json_depth_ignores_brackets_in_strings_and_allows_64():
    assert oparl.json_depth(b'["[[[[", {"a": "]]\\"}, "\\"]"]') == 2
    assert oparl.json_depth(b"[" * 64 + b"]" * 64) == 64 and oparl.load_json(b"[" * 64 + b"]" * 64, "x")


# --- a local OParl server ------------------------------------------------------------------------

PDF_A = pdf_samples.pdf(b"% Vorlage Haushalt\n" + b"A" * 5000)
PDF_B = pdf_samples.pdf(b"% Anlage\n" + b"B" * 3000)
PDF_NP = pdf_samples.pdf(b"% vertraulich\n" + b"N" * 2000)


SHA1_B = hashlib.sha1(PDF_B, usedforsecurity=False).hexdigest()


class OParlServer:
    """A local OParl server (loopback). extra: more routes (path → bytes), redirects: path → Location,
    hold: paths that answer only after `release` is set (a slow server). Records every path and Host header."""

    def __init__(self, extra: dict[str, bytes] | None = None, redirects: dict[str, str] | None = None,
                 hold: set[str] | None = None) -> None:
        self.hits: dict[str, int] = {}
        self.hosts: list[str] = []
        self.fail_once = {"/oparl/paper/1"}  # a 500 first: retried
        self.extra, self.redirects, self.hold = extra or {}, redirects or {}, hold or set()
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def do_GET(self):  # noqa: N802
                outer.hits[self.path] = outer.hits.get(self.path, 0) + 1
                outer.hosts.append(self.headers.get("Host", ""))
                if self.path in outer.fail_once:
                    outer.fail_once.discard(self.path)
                    self.send_error(500)
                    return
                if self.path in outer.redirects:
                    self.send_response(302)
                    self.send_header("Location", outer.redirects[self.path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.path in outer.hold:
                    outer.release.wait(60)
                body = {**outer.routes(), **outer.extra}.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except OSError:  # the client went away (a killed import)
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
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
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def local(cfg):
    """The test's own OParl server runs on loopback: allowed only with the option, for the literal origin."""
    return replace(cfg, oparl_private_sources=True)


FAST = outside.Limits(timeout=5, retries=3, backoff=0.01)


def test_import_from_local_oparl_server_into_a_session(cfg, db):
    s = sessions.create_session(db, body="Rat der Stadt", title="Sitzung", day="2026-12-01", ssid="Sitzung")
    srv = OParlServer()
    blobs = service.blobs_for(cfg.state_dir)
    try:
        url = f"{srv.base}/oparl/meeting/1"
        src = oparl_import.HttpSource.for_url(local(cfg), url, limits=FAST)
        import_id = jobs.begin(db, s.id, url)
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


# --- fetching is confined (appliance.outside) -------------------------------------------------------


def pdf(tag: str) -> bytes:
    return pdf_samples.pdf(b"% " + tag.encode() + b"\n" + tag.encode() * 100)


def meeting_with_files(base: str, files: list[dict], items: list[dict] | None = None) -> bytes:
    return json.dumps({"id": f"{base}/oparl/meeting/9", "type": "https://schema.oparl.org/1.1/Meeting",
                       "name": "Rat", "agendaItem": items or [
                           {"id": f"{base}/oparl/ai/91", "number": "1", "name": "Haushalt", "public": True,
                            "auxiliaryFile": files}]}).encode()


@pytest.fixture
def connects(monkeypatch):
    """Every address any socket in this process connects to."""
    seen: list[tuple] = []
    real = socket.socket.connect

    def record(self, address):
        seen.append(address)
        return real(self, address)

    monkeypatch.setattr(socket.socket, "connect", record)
    return seen


@pytest.fixture
def box_port():
    """A listener standing for the box's own web port on loopback: it must never be connected to."""
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(5)
    lst.settimeout(0.2)
    yield lst.getsockname()[1], lst
    lst.close()


def test_a_redirect_to_the_box_and_a_metadata_address_are_refused_before_any_connection(cfg, db, connects,
                                                                                        box_port):
    port, listener = box_port
    s = sessions.create_session(db, body="Rat", title="S", day="2026-12-01", ssid="Sitzung")
    srv = OParlServer(redirects={"/files/metrics.pdf": f"http://127.0.0.1:{port}/metrics",
                                 "/files/moved.pdf": "/files/b.pdf"})
    b = srv.base
    srv.extra["/oparl/meeting/9"] = meeting_with_files(b, [
        {"id": f"{b}/f/1", "name": "Metriken", "fileName": "m.pdf", "accessUrl": f"{b}/files/metrics.pdf"},
        {"id": f"{b}/f/2", "name": "Metadaten", "fileName": "x.pdf",
         "accessUrl": "http://169.254.169.254/latest/meta-data/x.pdf"},
        {"id": f"{b}/f/3", "name": "Umgezogen", "fileName": "b.pdf", "accessUrl": f"{b}/files/moved.pdf"}])
    try:
        url = f"{b}/oparl/meeting/9"
        box = replace(local(cfg), web_port=port)
        report = oparl_import.import_meeting(db, service.blobs_for(cfg.state_dir), s.id,
                                             oparl_import.HttpSource.for_url(box, url, limits=FAST), url)
    finally:
        srv.close()
    assert report.arrived["Datei"] == 1 and [f.title for f in service.files(db, s.id)] == ["Umgezogen"]
    problems = "\n".join(report.problems)
    assert f"Server 127.0.0.1:{port} ist nicht freigegeben" in problems and "Metriken" in problems
    assert "Server 169.254.169.254:80 ist nicht freigegeben" in problems and "Metadaten" in problems
    assert srv.hits.get("/files/metrics.pdf") == 1  # the redirect was read, its target never asked
    assert not [a for a in connects if a[1] == port or a[0] == "169.254.169.254"], connects
    with pytest.raises(TimeoutError):
        listener.accept()  # nobody knocked at the box's port
    assert report.found["Datei"] == 3 == report.arrived["Datei"] + len(report.skipped)


def test_explicitly_added_hosts_still_obey_the_address_rule(cfg, connects):
    def resolve(host, port):
        return {"ris.example": ["93.184.216.34"], "meta.example": ["169.254.169.254"],
                "intern.example": ["10.1.2.3"], "rebind.example": ["127.0.0.1"]}[host]

    for target, why in [("http://169.254.169.254/x", "link-lokale Adresse"),
                        ("http://meta.example/x", "link-lokale Adresse"),
                        ("http://intern.example/x", "privates Netz"),
                        ("http://rebind.example:81/x", "Loopback-Adresse"),
                        (f"http://{cfg.address}/x", "eine eigene Adresse der Sitzungsbox"
                         if cfg.address in outside.netinfo.all_ip_addresses() else "Sitzungsnetz"),
                        ("http://10.77.3.4/x", "im Sitzungsnetz 10.77.0.0/16"),
                        ("http://[ff02::1]/x", "Multicast"), ("http://0.0.0.0/x", "unspezifiziert"),
                        ("http://[::ffff:127.0.0.1]/x", "Loopback-Adresse")]:
        hosts = ["169.254.169.254", "meta.example", "intern.example", "rebind.example:81", cfg.address,
                 "10.77.3.4", "[ff02::1]", "0.0.0.0", "[::ffff:127.0.0.1]"]
        gate = outside.Gate.for_import(local(cfg) if "rebind" in target else cfg, "https://ris.example/oparl",
                                       hosts, resolver=resolve)
        fetcher = outside.Fetcher(gate, FAST)
        with pytest.raises(outside.Refused) as err:
            fetcher.get_bytes(target)
        assert why in str(err.value), (target, str(err.value))
    assert connects == []
    # Private networks are allowed with the option (an OParl server inside the city network).
    gate = outside.Gate.for_import(local(cfg), "http://intern.example/oparl", resolver=resolve)
    assert gate.addresses("intern.example", 80) == ["10.1.2.3"]
    # Userinfo and other schemes are refused outright.
    for bad in ("http://user:pw@ris.example/", "ftp://ris.example/", "file:///etc/passwd"):
        with pytest.raises(outside.Refused):
            outside.Fetcher(outside.Gate.for_import(cfg, "https://ris.example/", resolver=resolve)).get_bytes(bad)


def test_the_name_is_resolved_once_and_the_checked_address_is_connected_with_the_name_as_host(cfg, connects):
    srv = OParlServer(extra={"/x": b"[]"})
    port = srv.httpd.server_port
    calls: list[str] = []

    def resolve(host, p):
        calls.append(host)
        return ["127.0.0.1"]

    try:
        gate = outside.Gate.for_import(local(cfg), f"http://localhost:{port}/x", resolver=resolve)
        assert outside.Fetcher(gate, FAST).get_bytes(f"http://localhost:{port}/x") == b"[]"
    finally:
        srv.close()
    assert calls == ["localhost"] and ("127.0.0.1", port) in connects
    assert srv.hosts == [f"localhost:{port}"]
    # Without the option even the literal loopback origin is refused.
    with pytest.raises(outside.Refused, match="Loopback"):
        outside.Fetcher(outside.Gate.for_import(cfg, f"http://127.0.0.1:{port}/x"), FAST).get_bytes(
            f"http://127.0.0.1:{port}/x")
    # And the box's own web port never, whatever the clerk writes.
    with pytest.raises(outside.Refused, match="Webdienst der Box"):
        url = f"http://127.0.0.1:{cfg.web_port}/metrics"
        outside.Fetcher(outside.Gate.for_import(local(cfg), url), FAST).get_bytes(url)


def test_limits_are_refused_with_messages_naming_them(cfg):
    srv = OParlServer(redirects={f"/r{i}": f"/r{i + 1}" for i in range(10)},
                      extra={"/big": b"[" + b"1," * 600 + b"1]", "/file.pdf": pdf("x") * 20})
    try:
        gate = outside.Gate.for_import(local(cfg), srv.base)
        small = outside.Fetcher(gate, outside.Limits(json_bytes=1000, file_bytes=1000, redirects=3, requests=6,
                                                     timeout=5, backoff=0.01))
        with pytest.raises(outside.LimitExceeded, match=r"zu viele Weiterleitungen \(höchstens 3\)"):
            small.get_bytes(f"{srv.base}/r0")
        with pytest.raises(outside.LimitExceeded, match=r"JSON-Antwort zu groß .*höchstens 1000 Bytes"):
            small.get_bytes(f"{srv.base}/big")
        with pytest.raises(outside.LimitExceeded, match=r"Datei zu groß .*höchstens 1000 Bytes"):
            list(small.stream(f"{srv.base}/file.pdf"))
        with pytest.raises(outside.TooManyRequests, match=r"höchstens 6 je Import"):
            small.get_bytes(f"{srv.base}/big")
    finally:
        srv.close()


def test_the_option_for_private_sources(tmp_path):
    from appliance.config import Config, ConfigError, from_mapping, to_toml

    assert Config().oparl_private_sources is False
    assert from_mapping({"oparl_private_sources": True}).oparl_private_sources is True
    assert from_mapping(tomllib.loads(to_toml(from_mapping({"oparl_private_sources": True})))).oparl_private_sources
    with pytest.raises(ConfigError, match="oparl_private_sources muss true oder false sein"):
        from_mapping({"oparl_private_sources": "ja"})
    with pytest.raises(ConfigError, match="unbekannte Einstellung"):
        from_mapping({"oparl_private_source": True})


def test_file_urls_with_umlauts_and_spaces_are_sent_encoded(cfg):
    srv = OParlServer(extra={"/files/Anlage%20%C3%84rger.pdf": pdf("ä")})
    try:
        url = f"{srv.base}/files/Anlage Ärger.pdf"
        fetcher = outside.Fetcher(outside.Gate.for_import(local(cfg), url), FAST)
        assert b"".join(fetcher.stream(url)) == pdf("ä")
    finally:
        srv.close()


def test_the_box_own_interface_addresses_are_refused_even_in_private_mode(cfg, connects):
    import ipaddress

    own = sorted(a for a in outside.netinfo.all_ip_addresses() if not ipaddress.ip_address(a).is_loopback
                 and not ipaddress.ip_address(a).is_link_local)
    if not own:
        pytest.skip("this machine has no non-loopback address")
    host = f"[{own[0]}]" if ":" in own[0] else own[0]
    gate = outside.Gate.for_import(local(cfg), f"http://{host}:8081/oparl")
    with pytest.raises(outside.Refused, match="eine eigene Adresse der Sitzungsbox"):
        outside.Fetcher(gate, FAST).get_bytes(f"http://{host}:8081/oparl")
    assert connects == []
