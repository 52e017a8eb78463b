"""A real published OParl export (tests/fixtures/oparl/huertgenwald: one meeting of the Gemeinde Hürtgenwald with
its papers) imported through the real folder import and through a local HTTP server: every agenda item,
consultation, paper and file of the source is counted — arrived + listed as skipped with a reason == in the
source, the numbers taken from the JSON itself, not from the importer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from appliance.documents import oparl_import, service
from appliance.sessions import service as sessions
from tests.test_oparl import FAST, OParlServer, local, pdf

FIX = Path(__file__).parent / "fixtures" / "oparl" / "huertgenwald"
HOST = "https://sdnetrim.kdvz-frechen.de"


def source_json() -> tuple[dict, list[dict]]:
    meeting = json.loads((FIX / "meeting-334.json").read_text(encoding="utf-8"))
    papers = json.loads((FIX / "papers-page-1.json").read_text(encoding="utf-8"))["data"]
    return meeting, papers


def file_objects(value) -> list[dict]:
    """Every File object in value (walked without the importer's help)."""
    out, stack = [], [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            if str(v.get("type", "")).endswith("/File"):
                out.append(v)
            else:
                stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return out


def in_source() -> dict[str, int]:
    meeting, papers = source_json()
    items = meeting["agendaItem"]
    consultations = {i["consultation"] for i in items if i.get("consultation")}
    linked = [p for p in papers if any(c["id"] in consultations for c in p["consultation"])]
    files = {f["id"] for f in file_objects(meeting) + file_objects(linked)}
    return {"Tagesordnungspunkt": len(items), "Beratung": len(consultations), "Vorlage": len(linked),
            "Datei": len(files)}


def test_the_fixture_is_what_its_readme_says():
    assert in_source() == {"Tagesordnungspunkt": 14, "Beratung": 7, "Vorlage": 7, "Datei": 15}


def check_counts(report, db, session_id) -> None:
    expected = in_source()
    for kind, n in expected.items():
        skipped = report.skipped_count(kind)
        assert report.found[kind] == n, (kind, report.found[kind], n)
        assert report.arrived[kind] + skipped == n, (kind, report.problems)
    assert report.skipped == []  # all of it arrives
    items = service.items(db, session_id)
    assert len(items) == expected["Tagesordnungspunkt"]
    meeting, _ = source_json()
    assert [i.number for i in items] == [a["number"].strip() for a in meeting["agendaItem"]]
    assert len(service.files(db, session_id)) == expected["Datei"]
    assert any("ohne Angabe „public“" in n for n in report.notes)  # OParl 1.0: said, not guessed from titles


def test_real_meeting_through_the_folder_import(cfg, db, tmp_path):
    s = sessions.create_session(db, body="Gemeinde Hürtgenwald", title="WTL", day="2007-01-30", ssid="Sitzung")
    folder = tmp_path / "stick"
    folder.mkdir()
    for name in ("meeting-334.json", "papers-page-1.json"):
        (folder / name).write_bytes((FIX / name).read_bytes())
    meeting, papers = source_json()
    for f in file_objects(meeting) + file_objects(papers):
        (folder / f["accessUrl"].rsplit("/", 1)[1]).write_bytes(pdf(f["id"][-8:]))
    src = oparl_import.DirSource(folder)
    assert src.meetings() == [meeting["id"]]
    report = oparl_import.import_meeting(db, service.blobs_for(cfg.state_dir), s.id, src, meeting["id"])
    check_counts(report, db, s.id)


@pytest.fixture
def server():
    meeting, papers = source_json()
    srv = OParlServer()

    def here(obj) -> bytes:
        return json.dumps(obj, ensure_ascii=False).replace(HOST, srv.base).encode()

    def path(url: str) -> str:
        return url.removeprefix(HOST)

    srv.extra[path(meeting["id"])] = here(meeting)
    for p in papers:
        srv.extra[path(p["id"])] = here(p)
        for c in p["consultation"]:  # the consultation answer: the embedded one plus its paper
            srv.extra[path(c["id"])] = here({**c, "paper": p["id"]})
    for f in file_objects(meeting) + file_objects(papers):
        for key in ("accessUrl", "downloadUrl"):
            srv.extra[path(f[key])] = pdf(f["id"][-8:])
    yield srv
    srv.close()


def test_real_meeting_through_a_local_http_server(cfg, db, server):
    s = sessions.create_session(db, body="Gemeinde Hürtgenwald", title="WTL", day="2007-01-30", ssid="Sitzung")
    meeting, _ = source_json()
    url = meeting["id"].replace(HOST, server.base)
    report = oparl_import.import_meeting(db, service.blobs_for(cfg.state_dir), s.id,
                                         oparl_import.HttpSource.for_url(local(cfg), url, limits=FAST), url)
    check_counts(report, db, s.id)
    # A rerun resumes: nothing fetched twice, nothing added.
    before = sum(n for p, n in server.hits.items() if "/files/" in p)
    again = oparl_import.import_meeting(db, service.blobs_for(cfg.state_dir), s.id,
                                        oparl_import.HttpSource.for_url(local(cfg), url, limits=FAST), url)
    assert again.files == 0 and again.already == 15 and again.skipped == []
    assert sum(n for p, n in server.hits.items() if "/files/" in p) == before
    # ... and says, by name, what it left as it was (command line and the job record the clerk's page shows).
    named = [line for line in again.lines() if line.startswith("bereits vorhanden: ")]
    assert len(named) == 15 and sorted(named) == sorted(f"bereits vorhanden: {n}" for n in again.present)
    assert [n for n in again.summary()["notes"] if n.startswith("bereits vorhanden: ")] == named
