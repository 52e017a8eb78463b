"""The hostile corpus (tests/hostile/corpus.py) through the real web forms (Flask's test client) and the real
command line (`python -m appliance.cli` in a subprocess): each input is refused with a German message naming
what is wrong (the limit, the row, the file), nothing is stored half (row counts and stored blobs unchanged), no
500, no traceback; or, for the valid ones, taken and shown harmlessly.

Paths: member lists → clerk import form / `session import-members`; single files → clerk upload form /
`import N <folder>`; ZIPs → clerk ZIP form / `import N <zip>`; saved OParl JSON → `import N <folder>` (the web
takes OParl only as a URL: another test's part); chat → the member's chat form (and its JSON answer); tampered
forms → the web only.
"""

from __future__ import annotations

import csv
import io
import json
import secrets

import pytest

from appliance.chat import store as chat
from appliance.config import to_toml
from appliance.helper.client import NullHelper
from appliance.rules.viewer import Viewer
from appliance.sessions import service
from appliance.web import auth, csrf
from appliance.web.app import create_app
from tests.hostile import corpus
from tests.hostile.corpus import Case
from tests.hostile.harness import Staff, alert_text, assert_cli_refused, run_cli, snapshot
from tests.live_support import ANNA_IP, BERND_IP, populate

PASSWORD = "hostile-clerk-password-1"
BOX = "http://10.77.0.1"


class Box:
    def __init__(self, cfg, db, tmp_path) -> None:
        self.cfg, self.db, self.tmp = cfg, db, tmp_path
        self.live, self.ms = populate(cfg, db)  # session 1: active, members, admitted devices
        self.spare = service.create_session(db, body="Rat", title="Importziel", day="2026-12-02")  # not active
        auth.set_password(db, PASSWORD)
        bernd = Viewer("member", self.live.id, self.ms["Bernd"], True, BERND_IP)
        chat.post(db, bernd, "all", "seed-0000-0001", "Guten Morgen")
        self.config = tmp_path / "box.toml"
        self.config.write_text(to_toml(cfg))
        self.app = create_app(cfg, helper=NullHelper(), testing=True)
        self.clerk = Staff(self.app, "/clerk/", PASSWORD)

    def state(self) -> dict:
        return snapshot(self.db, self.cfg.state_dir)

    def post_clerk(self, path: str, data: dict):
        return self.clerk.client.post(path, data={**data, "csrf_token": self.clerk.token()},
                                      content_type="multipart/form-data")

    def cli(self, *args: str):
        return run_cli(self.config, *args)


@pytest.fixture
def box(cfg, db, tmp_path) -> Box:
    return Box(cfg, db, tmp_path)


def by_kind(kind: str, cli: bool = False) -> list:
    """The cases of one kind for the command line (cli=True) or the web form."""
    return [pytest.param(c, id=c.name) for c in corpus.ALL if c.kind == kind and (c.cli if cli else c.web)]


def assert_web_refused(resp, before: dict, box: Box, case: Case) -> None:
    assert resp.status_code < 500
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.text[:500])
    message = alert_text(resp.text)
    for word in case.words:
        assert word in message, (word, message[:1000])
    assert box.state() == before, "a refused input changed the database or the stored files"


# --- member lists -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", by_kind("csv"))
def test_member_list_web(box, case):
    before = box.state()
    resp = box.post_clerk(f"/clerk/sessions/{box.spare.id}/import", {"csv": (io.BytesIO(case.make()), "liste.csv")})
    if case.accept:
        assert resp.status_code == 302, alert_text(resp.text)
        assert box.state()["rows"]["members"] > before["rows"]["members"]
        return
    assert_web_refused(resp, before, box, case)


@pytest.mark.parametrize("case", by_kind("csv", cli=True))
def test_member_list_cli(box, case):
    path = box.tmp / "liste.csv"
    path.write_bytes(case.make())
    before = box.state()
    proc = box.cli("session", "import-members", str(box.spare.id), str(path))
    if case.accept:
        assert proc.returncode == 0 and not proc.stderr, proc.stderr
        assert box.state()["rows"]["members"] > before["rows"]["members"]
        return
    assert_cli_refused(proc, *case.words)
    assert box.state() == before


def test_exports_defuse_formulas_in_names(box):
    """Names that start like a spreadsheet formula are taken as names, and the attendance and chat exports
    (opened in Excel) do not run them."""
    case = next(c for c in corpus.CSV if c.name == "formula injection in a name")
    resp = box.post_clerk(f"/clerk/sessions/{box.live.id}/import", {"csv": (io.BytesIO(case.make()), "liste.csv")})
    assert resp.status_code == 302
    cells = csv_cells(box.clerk.client.get("/clerk/attendance.csv").text)
    assert "'=cmd|' /C calc'!A0" in cells and "'@SUM(1+1)" in cells
    assert not any(c.startswith(("=", "@", "+")) for c in cells)
    anna = Viewer("member", box.live.id, box.ms["Anna"], True, ANNA_IP)
    chat.post(box.db, anna, "all", "formel-0000-0001", '=HYPERLINK("http://evil")')
    cells = csv_cells(box.clerk.client.get("/clerk/chat.csv").text)
    assert """'=HYPERLINK("http://evil")""" in cells
    assert not any(c.startswith(("=", "@", "+")) for c in cells)


def csv_cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=";") for cell in row]


# --- single files --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", by_kind("upload"))
def test_upload_web(box, case):
    files = [(io.BytesIO(data), name) for name, data in case.make()]
    before = box.state()
    resp = box.post_clerk(f"/clerk/sessions/{box.live.id}/unterlagen/hochladen", {"files": files, "late": "0"})
    if case.accept:
        assert resp.status_code == 302, alert_text(resp.text)
        assert box.state()["rows"]["doc_files"] == before["rows"]["doc_files"] + 1
        return
    assert_web_refused(resp, before, box, case)


@pytest.mark.parametrize("case", by_kind("upload", cli=True))
def test_upload_cli(box, case):
    folder = box.tmp / "stick"
    folder.mkdir()
    for name, data in case.make():
        (folder / name).write_bytes(data)
    files = sorted(folder.iterdir())
    # A folder (or USB stick), and a single file as a Tischvorlage: the two ways files come in on the command line.
    for args in [(str(folder),)] + ([(str(files[0]), "--tischvorlage")] if len(files) == 1 else []):
        before = box.state()
        proc = box.cli("import", str(box.live.id), *args)
        if case.accept:  # the second way finds the same bytes already there ("bereits vorhanden")
            assert proc.returncode == 0, proc.stderr
            assert box.state()["rows"]["doc_files"] == 1
            continue
        assert_cli_refused(proc, *case.words)
        assert box.state() == before


# --- ZIPs ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", by_kind("zip"))
def test_zip_web(box, case):
    before = box.state()
    resp = box.post_clerk(f"/clerk/sessions/{box.live.id}/unterlagen/zip",
                          {"zip": (io.BytesIO(case.make()), "unterlagen.zip")})
    assert_web_refused(resp, before, box, case)


@pytest.mark.parametrize("case", by_kind("zip", cli=True))
def test_zip_cli(box, case):
    path = box.tmp / "unterlagen.zip"
    path.write_bytes(case.make())
    before = box.state()
    assert_cli_refused(box.cli("import", str(box.live.id), str(path)), *case.words)
    assert box.state() == before


# --- saved OParl JSON ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", by_kind("json", cli=True))
def test_saved_oparl_json_cli(box, case):
    folder = box.tmp / "oparl"
    folder.mkdir()
    for name, data in case.make().items():
        (folder / name).write_bytes(data)
    before = box.state()
    proc = box.cli("import", str(box.live.id), str(folder))
    if case.accept:  # 1: imported, but something was skipped (named on stdout)
        assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stderr
        assert box.state()["blobs"] == before["blobs"], "a file outside the folder was stored"
        longest = box.db.execute("SELECT MAX(LENGTH(title)) FROM doc_items").fetchone()[0] or 0
        assert longest <= 500, "a title past the limit was stored"
        return
    assert_cli_refused(proc, *case.words)
    assert box.state() == before
    running = box.db.execute("SELECT COUNT(*) FROM doc_imports WHERE state = 'running'").fetchone()[0]
    assert running == 0, "a refused import is shown as running forever"


# --- chat ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("as_json", [False, True], ids=["Formular", "JSON"])
@pytest.mark.parametrize("case", by_kind("chat"))
def test_chat_payload(box, case, as_json):
    client = box.app.test_client(use_cookies=False)
    with box.app.test_request_context():
        token = csrf.device_token(ANNA_IP)
    form = {"room": "all", "body": "Hallo", "client_id": f"anna-{secrets.token_hex(6)}", "csrf_token": token,
            **case.make()}
    before = box.state()
    resp = client.post("/chat/send", data=form, base_url=BOX, environ_base={"REMOTE_ADDR": ANNA_IP},
                       headers={"X-Sitzungsbox-Chat": "1"} if as_json else {})
    assert resp.status_code < 500
    if case.accept:
        assert resp.status_code in (201, 303)
        page = client.get("/chat?room=all", base_url=BOX, environ_base={"REMOTE_ADDR": ANNA_IP}).text
        assert "<script>alert(1)" not in page and "<img src=x" not in page and "\u202e" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page or "Hallo ollaH" in page
        return
    assert 400 <= resp.status_code < 500
    message = resp.get_json()["error"] if as_json else alert_text(resp.text)
    for word in case.words:
        assert word in message, (word, message)
    assert box.state() == before


# --- tampered forms ------------------------------------------------------------------------------------------


GOOD_LIST = b"Name;Rolle\nErika Neu;Mitglied\n"


@pytest.mark.parametrize("case", by_kind("form"))
def test_tampered_form(box, case):
    spec = case.make()
    before = box.state()
    path = spec.get("path", f"/clerk/sessions/{box.spare.id}/import")
    token = box.clerk.token()
    if path.endswith("/import"):
        field = spec.get("field", "csv")
        data: dict = {field: (io.BytesIO(GOOD_LIST), "liste.csv")}
        if spec.get("twice"):
            data[field] = [(io.BytesIO(GOOD_LIST), "liste.csv"), (io.BytesIO(b"x"), "zwei.csv")]
        if spec.get("extra"):
            data.update({"zzz": "1", "session_id": "999", "actor": "root"})
    elif path == "/clerk/sessions":
        data = {"body": "Rat", "title": spec["title"], "date": "2026-12-03", "venue": ""}
    elif path == "/clerk/login":
        data = {"password": spec["password"]}
    elif path == "upload":
        path = f"/clerk/sessions/{box.live.id}/unterlagen/hochladen"
        data = {"files": [(io.BytesIO(b"x\n"), f"datei-{i}.txt") for i in range(spec["files"])]}
    else:
        data = {k: v for k, v in spec.items() if k != "path"}
    csrf_value = spec.get("csrf", token)
    if csrf_value == "doppelt":
        data["csrf_token"] = ["falsch", token]
    elif csrf_value is not None:
        data["csrf_token"] = csrf_value
    client = box.clerk.client
    if path == "/clerk/login":
        client = box.app.test_client()
        data["csrf_token"] = token  # its own session has none: the size limit answers first
    resp = client.post(path, data=data, content_type="multipart/form-data")
    assert resp.status_code < 500
    if case.accept:
        assert resp.status_code == 302, alert_text(resp.text)
        assert box.state()["rows"]["members"] == before["rows"]["members"] + 1
        return
    assert_web_refused(resp, before, box, case)


def test_corpus_size():
    assert len(corpus.ALL) >= 60
    assert {c.kind for c in corpus.ALL} == {"csv", "upload", "zip", "json", "chat", "form"}
    assert len({c.id for c in corpus.ALL}) == len(corpus.ALL)
    json.dumps([c.id for c in corpus.ALL])
