"""Nothing from an OParl source is dropped in silence: every agenda item, consultation, paper and file arrives or
is listed by name with its reason, on the command line (exit 1 unless --uebersprungene-ok) and in the job; both
list shapes are read wherever a list appears; hostile JSON is refused in German; an import whose process dies is
shown as failed and the clerk's page stops reloading."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import replace

import pytest

from appliance import cli
from appliance.config import to_toml
from appliance.documents import jobs, oparl_import, service
from appliance.sessions import service as sessions
from tests.conftest import ROOT, poll
from tests.test_oparl import FAST, OParlServer, local, pdf


def _session(db):
    return sessions.create_session(db, body="Rat", title="S", day="2026-12-01", ssid="Sitzung")


def _conf(cfg, tmp_path, **changes):
    conf = tmp_path / "sb.toml"
    conf.write_text(to_toml(replace(cfg, **changes)))
    return conf


def paged_meeting(b: str) -> dict[str, bytes]:
    """agendaItem as a paged list object over two pages; files as a paged object and as a bare array; a
    consultation list given by URL as a bare array; an item only referenced by URL."""
    item2 = {"id": f"{b}/ai/2", "number": "2", "name": "Bekanntgabe der in nichtöffentlicher Sitzung gefassten "
             "Beschlüsse", "public": True, "consultation": f"{b}/cons/2"}
    return {
        "/meeting": json.dumps({
            "id": f"{b}/meeting", "name": "Rat", "type": "https://schema.oparl.org/1.1/Meeting",
            "agendaItem": {"data": [{"id": f"{b}/ai/1", "number": "1", "name": "Eröffnung", "public": True,
                                     "auxiliaryFile": {"data": [{"id": f"{b}/f/1", "name": "Eins",
                                                                 "accessUrl": f"{b}/files/1.pdf"}],
                                                       "links": {}}}],
                           "links": {"next": f"{b}/items?page=2"}},
            "invitation": [{"id": f"{b}/f/inv", "name": "Einladung", "accessUrl": f"{b}/files/inv.pdf"}],
        }).encode(),
        "/items?page=2": json.dumps({"data": [item2, f"{b}/ai/3"], "links": {"self": f"{b}/items?page=2"}}).encode(),
        "/ai/3": json.dumps({"id": f"{b}/ai/3", "number": "3", "name": "Nichtöffentliche Sitzung",
                             "public": False}).encode(),
        "/cons/2": json.dumps({"id": f"{b}/cons/2", "paper": f"{b}/paper/2"}).encode(),
        "/paper/2": json.dumps({"id": f"{b}/paper/2", "name": "Beschlüsse",
                                "mainFile": {"id": f"{b}/f/2", "name": "Zwei", "accessUrl": f"{b}/files/2.pdf"},
                                "auxiliaryFile": [{"id": f"{b}/f/3", "name": "Drei",
                                                   "accessUrl": f"{b}/files/3.pdf"}]}).encode(),
        "/files/1.pdf": pdf("1"), "/files/2.pdf": pdf("2"), "/files/3.pdf": pdf("3"), "/files/inv.pdf": pdf("i"),
    }


def test_both_list_shapes_pages_and_references_are_read_over_http(cfg, db):
    s = _session(db)
    srv = OParlServer()
    srv.extra.update(paged_meeting(srv.base))
    try:
        url = f"{srv.base}/meeting"
        report = oparl_import.import_meeting(db, service.blobs_for(cfg.state_dir), s.id,
                                             oparl_import.HttpSource.for_url(local(cfg), url, limits=FAST), url)
    finally:
        srv.close()
    assert report.skipped == []
    assert [(i.number, i.title, i.public) for i in service.items(db, s.id)] == [
        ("1", "Eröffnung", True),
        ("2", "Bekanntgabe der in nichtöffentlicher Sitzung gefassten Beschlüsse", True),
        ("3", "Nichtöffentliche Sitzung", False)]
    assert sorted(f.title for f in service.files(db, s.id)) == ["Drei", "Einladung", "Eins", "Zwei"]
    assert dict(report.found) == {"Tagesordnungspunkt": 3, "Beratung": 1, "Vorlage": 1, "Datei": 4}
    assert report.found == report.arrived


def test_a_pagination_loop_is_refused(cfg, db):
    s = _session(db)
    srv = OParlServer()
    b = srv.base
    srv.extra.update({
        "/meeting": json.dumps({"id": f"{b}/meeting", "name": "Rat",
                                "agendaItem": {"data": [], "links": {"next": f"{b}/p2"}}}).encode(),
        "/p2": json.dumps({"data": [{"id": "x", "name": "A"}], "links": {"next": f"{b}/p3"}}).encode(),
        "/p3": json.dumps({"data": [], "links": {"next": f"{b}/p2"}}).encode()})
    try:
        with pytest.raises(oparl_import.oparl.OParlError, match=r"zurück auf die schon gelesene Seite .*Schleife"):
            oparl_import.import_meeting(db, service.blobs_for(cfg.state_dir), s.id,
                                        oparl_import.HttpSource.for_url(local(cfg), f"{b}/meeting", limits=FAST),
                                        f"{b}/meeting")
    finally:
        srv.close()


def saved_folder(tmp_path, consultations_shape: str = "array"):
    """A folder of saved OParl JSON: the meeting, its consultations in a separate file (a bare JSON array or a
    paged object), the papers, and the files named like their URLs' last parts."""
    root = tmp_path / "usb"
    root.mkdir()
    b = "https://ris.example/oparl"
    meeting = {"id": f"{b}/meeting/1", "type": "https://schema.oparl.org/1.1/Meeting", "name": "Rat",
               "agendaItem": [{"id": f"{b}/ai/{n}", "number": str(n), "name": f"Punkt {n}", "public": True,
                               "consultation": f"{b}/cons/{n}"} for n in (1, 2)]}
    cons = [{"id": f"{b}/cons/{n}", "type": "https://schema.oparl.org/1.1/Consultation", "paper": f"{b}/paper/{n}",
             "meeting": f"{b}/meeting/1", "agendaItem": f"{b}/ai/{n}"} for n in (1, 2)]
    papers = [{"id": f"{b}/paper/{n}", "type": "https://schema.oparl.org/1.1/Paper", "name": f"Vorlage {n}",
               "mainFile": {"id": f"{b}/file/{n}", "name": f"Vorlage {n}", "accessUrl": f"{b}/files/v{n}.pdf"}}
              for n in (1, 2)]
    (root / "meeting.json").write_text(json.dumps(meeting))
    (root / "consultations.json").write_text(json.dumps(cons if consultations_shape == "array" else
                                                        {"data": cons, "links": {}}))
    (root / "papers.json").write_text(json.dumps({"data": papers, "links": {}}))
    for n in (1, 2):
        (root / f"v{n}.pdf").write_bytes(pdf(f"v{n}"))
    return root


@pytest.mark.parametrize("shape", ["array", "paged"])
def test_a_folder_whose_consultations_are_a_bare_array_loses_no_file(cfg, db, tmp_path, shape):
    s = _session(db)
    src = oparl_import.DirSource(saved_folder(tmp_path, shape))
    report = oparl_import.import_meeting(db, service.blobs_for(cfg.state_dir), s.id, src, src.meetings()[0])
    assert report.skipped == [] and report.files == 2
    assert sorted(f.title for f in service.files(db, s.id)) == ["Vorlage 1", "Vorlage 2"]


def test_cli_exit_codes_and_skipped_things_named(cfg, db, tmp_path, capsys):
    s = _session(db)
    conf = _conf(cfg, tmp_path)
    root = saved_folder(tmp_path)
    assert cli.main(["--config", str(conf), "import", str(s.id), str(root)]) == 0
    out = capsys.readouterr().out
    assert "Tagesordnungspunkt: 2 in der Quelle, 2 übernommen, 0 übersprungen" in out
    assert "Datei: 2 in der Quelle, 2 übernommen, 0 übersprungen" in out
    # A file missing from the folder and a JSON file nested 100 000 deep: listed, exit 1 ...
    (root / "v2.pdf").unlink()
    (root / "deep.json").write_bytes(b"[" * 100_000 + b"]" * 100_000)
    s2 = _session(db)
    assert cli.main(["--config", str(conf), "import", str(s2.id), str(root)]) == 1
    got = capsys.readouterr()
    assert "übersprungen: Datei „Vorlage 2 (https://ris.example/oparl/files/v2.pdf)“: Datei fehlt im Ordner: v2.pdf" \
        in got.out
    assert "übersprungen: JSON-Datei „deep.json“: JSON zu tief verschachtelt (höchstens 64 Ebenen)" in got.out
    assert "Traceback" not in got.err and "--uebersprungene-ok" in got.err
    # ... unless the clerk accepts it.
    assert cli.main(["--config", str(conf), "import", str(s2.id), str(root), "--uebersprungene-ok"]) == 0
    capsys.readouterr()
    # Only the deep file: one German line, exit 2, no traceback.
    only = tmp_path / "stick"
    only.mkdir()
    (only / "sitzung.json").write_bytes(b"[" * 100_000 + b"]" * 100_000)
    assert cli.main(["--config", str(conf), "import", str(s.id), str(only)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("Fehler: OParl-Import abgebrochen: ")
    assert "sitzung.json: JSON zu tief verschachtelt (höchstens 64 Ebenen)" in err


def test_a_deep_or_refused_answer_fails_the_job_with_one_german_line(cfg, db, tmp_path, capsys):
    s = _session(db)
    srv = OParlServer(extra={"/deep": b"[" * 100_000 + b"]" * 100_000})
    try:
        conf = _conf(cfg, tmp_path, oparl_private_sources=True)
        assert cli.main(["--config", str(conf), "import", str(s.id), f"{srv.base}/deep"]) == 2
        err = capsys.readouterr().err
        assert err == f"Fehler: OParl-Import abgebrochen: {srv.base}/deep: JSON zu tief verschachtelt (höchstens 64 " \
                      "Ebenen)\n"
        # Without the option the loopback server is refused: also a failed job, never 'läuft'.
        conf = _conf(cfg, tmp_path)
        assert cli.main(["--config", str(conf), "import", str(s.id), f"{srv.base}/deep"]) == 2
        assert "Loopback-Adresse" in capsys.readouterr().err
    finally:
        srv.close()
    states = [(j["state"], j["problems"][-1]) for j in jobs.recent(db, s.id)]
    assert [st for st, _ in states] == ["failed", "failed"]
    assert "Abbruch:" in states[0][1] and "Loopback" in states[0][1] and "64 Ebenen" in states[1][1]


def test_a_killed_import_is_shown_failed_and_the_page_stops_reloading(cfg, db, tmp_path, capsys):
    from tests.test_clerk import login, set_pw

    s = _session(db)
    srv = OParlServer(hold={"/files/1.pdf"})
    srv.extra.update(paged_meeting(srv.base))
    conf = _conf(cfg, tmp_path, oparl_private_sources=True)
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from appliance import cli; sys.exit(cli.main("
                             "sys.argv[1:]))", "--config", str(conf), "import", str(s.id), f"{srv.base}/meeting"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        poll(lambda: srv.hits.get("/files/1.pdf"), 30, "the import reaches the held file")
        job = jobs.recent(db, s.id)[0]
        assert job["state"] == "running" and job["owner_pid"] == proc.pid
        from appliance.web.app import create_app
        from tests.test_clerk import RecordingHelper

        client = create_app(cfg, helper=RecordingHelper(), testing=True).test_client()
        set_pw(cfg)
        login(client)
        page = client.get(f"/clerk/sessions/{s.id}/unterlagen").text
        assert 'http-equiv="refresh"' in page  # running: the page follows it
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)

        def failed():
            text = client.get(f"/clerk/sessions/{s.id}/unterlagen").text  # the page itself finds the dead owner
            return text if 'data-state="failed"' in text else None

        page = poll(failed, 5, "the killed import shows as failed")
        assert 'http-equiv="refresh"' not in page
        assert f"Prozess {proc.pid}) endete ohne Abschluss" in page
        assert jobs.recent(db, s.id)[0]["state"] == "failed"
        # A new import resumes: the items already there are not doubled, the files arrive.
        srv.release.set()
        assert cli.main(["--config", str(conf), "import", str(s.id), f"{srv.base}/meeting"]) == 0
        assert len(service.items(db, s.id)) == 3 and len(service.files(db, s.id)) == 4
        assert 'http-equiv="refresh"' not in client.get(f"/clerk/sessions/{s.id}/unterlagen").text
        capsys.readouterr()
        assert cli.main(["--config", str(conf), "documents", "imports", str(s.id)]) == 0
        listing = capsys.readouterr().out.splitlines()
        assert listing[0].endswith(": fertig, 4 von 4 Dateien") and ": abgebrochen, " in listing[1]
    finally:
        if proc.poll() is None:
            proc.kill()
        srv.close()


def test_the_clerk_page_runs_the_same_act_and_shows_what_arrived(cfg, db):
    from appliance.web.app import create_app
    from tests.test_clerk import RecordingHelper, login, set_pw, token

    s = _session(db)
    srv = OParlServer()
    srv.extra.update(paged_meeting(srv.base))
    srv.extra["/ai/3"] = b"[" * 100_000 + b"]" * 100_000  # one item the server answers with hostile JSON
    box = local(cfg)
    client = create_app(box, helper=RecordingHelper(), testing=True).test_client()
    set_pw(box)
    login(client)
    page = f"/clerk/sessions/{s.id}/unterlagen"
    try:
        resp = client.post(f"{page}/oparl", data={"csrf_token": token(client.get(page).text),
                                                  "url": f"{srv.base}/meeting", "hosts": "ftp://dateien.example"})
        assert resp.status_code == 422 and "Keine http(s)-Adresse: ftp://dateien.example" in resp.text
        resp = client.post(f"{page}/oparl", data={"csrf_token": token(client.get(page).text),
                                                  "url": f"{srv.base}/meeting", "hosts": "dateien.example"})
        assert resp.status_code == 302

        def finished():
            text = client.get(page).text
            return text if 'data-state="done"' in text else None

        done = poll(finished, 20, "import done")
    finally:
        srv.close()
    assert 'http-equiv="refresh"' not in done
    assert "Tagesordnungspunkte: 3 in der Quelle, 2 übernommen, 1 übersprungen" in done
    assert "Dateien: 4 in der Quelle, 4 übernommen, 0 übersprungen" in done
    assert f"Tagesordnungspunkt „{srv.base}/ai/3“: {srv.base}/ai/3: JSON zu tief verschachtelt (höchstens 64 " \
           "Ebenen)" in done.replace("&#34;", '"')
    row = db.execute("SELECT actor, action FROM audit WHERE action = 'documents.oparl_import'").fetchall()
    assert len(row) == 1
