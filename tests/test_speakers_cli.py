"""`sitzungsbox speakers …` is the same act as the chair's console: run once through the command line
(appliance.cli.main with a config file) and once by calling the use case as a clerk, each in its own identically
seeded world, the speakers rows, the audit entries and the push events come out the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from appliance import cli, speakers_cli
from appliance.config import Config, to_toml
from appliance.documents import service as docs
from appliance.rules.viewer import Viewer
from appliance.sessions import service
from appliance.sessions.roster import MemberRow
from appliance.store import open_db
from appliance.usecases import speakers as acts

T0 = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC


class World:
    def __init__(self, base: Path) -> None:
        self.cfg = Config(state_dir=base / "state", run_dir=base / "run", helper_socket=base / "run" / "helper.sock",
                          leases_file=base / "state" / "dnsmasq.leases", hostapd_ctrl_dir=base / "hostapd").validate()
        self.conf = base / "sitzungsbox.toml"
        self.conf.parent.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(to_toml(self.cfg))
        db = self.db()
        s = service.create_session(db, body="Rat", title="Sitzung", day="2027-01-15")
        service.insert_members(db, s.id, [MemberRow("Anna Schmidt", "SPD", "member", True, "Rat"),
                                          MemberRow("Bernd Müller", "CDU", "member", True, "Rat"),
                                          MemberRow("Carla Weber", "SPD", "member", True, "Rat")])
        service.set_active(db, s.id)
        self.session = s.id
        self.members = {m.name.split()[0]: m.id for m in service.members(db, s.id)}
        self.item = docs.add_item(db, s.id, "Haushalt 2027", number="5")
        db.conn.close()

    def db(self):
        return open_db(self.cfg.db_path)

    def snapshot(self) -> dict:
        db = self.db()
        try:
            def rows(sql: str) -> list[tuple]:
                return [tuple(r) for r in db.execute(sql).fetchall()]

            return {
                "requests": rows("SELECT member_id, kind, state, position, for_request, added_by, requested_at, "
                                 "started_at, ended_at, duration, limit_seconds, extra_seconds FROM speakers_requests "
                                 "ORDER BY id"),
                "session": rows("SELECT chair_member_id, current_item_id, announcement FROM speakers_session"),
                "lists": rows("SELECT session_id, item_id, closed FROM speakers_lists"),
                "procedure": rows("SELECT * FROM speakers_procedure"),
                "audit": rows("SELECT actor, action, detail FROM audit WHERE action LIKE 'speakers.%' "
                              "OR action = 'agenda.current' ORDER BY id"),
                "push": [(t, a, json.loads(p)) for t, a, p in
                         rows("SELECT topic, audience, payload FROM push_events ORDER BY id")],
            }
        finally:
            db.conn.close()


@pytest.fixture
def worlds(tmp_path, monkeypatch):
    clock = {"now": T0}
    monkeypatch.setattr(speakers_cli, "clock", lambda: clock["now"])
    return World(tmp_path / "cli"), World(tmp_path / "api"), clock


def test_the_command_line_does_the_same_acts(worlds, capsys):
    line, api, clock = worlds
    sid = line.session
    m, item = line.members, line.item
    clerk = Viewer("clerk", sid)
    steps = [
        (["chair", "set", str(sid), str(m["Carla"])],
         lambda db: acts.set_chair(db, clerk, sid, m["Carla"], actor="cli")),
        (["current", str(sid), str(item)], lambda db: acts.set_current_item(db, clerk, sid, item, actor="cli")),
        (["rules", str(sid), "--erste", "240", "--fuer-gegen", "nein"],
         lambda db: acts.set_procedure(db, clerk, sid, {"first_seconds": 240, "pro_contra": 0}, actor="cli")),
        (["add", str(sid), str(m["Anna"])],
         lambda db: acts.add_by_hand(db, clerk, sid, m["Anna"], now=T0, actor="cli")),
        (["add", str(sid), str(m["Bernd"]), "--art", "go"],
         lambda db: acts.add_by_hand(db, clerk, sid, m["Bernd"], "point_of_order", now=T0, actor="cli")),
        (["move", str(sid), "1", "1"], lambda db: acts.move(db, clerk, sid, 1, to=1, actor="cli")),
        (["next", str(sid)], lambda db: acts.call_next(db, clerk, sid, now=T0, actor="cli")),
        (["extend", str(sid), "30"], lambda db: acts.extend(db, clerk, sid, 30, actor="cli")),
        (["close", str(sid)], lambda db: acts.close_list(db, clerk, sid, actor="cli")),
        (["announce", str(sid), "Pause bis 11 Uhr"],
         lambda db: acts.set_announcement(db, clerk, sid, "Pause bis 11 Uhr", actor="cli")),
        (["next", str(sid)], lambda db: acts.call_next(db, clerk, sid, now=T0, actor="cli")),
        (["reopen", str(sid)], lambda db: acts.reopen_list(db, clerk, sid, actor="cli")),
        (["end", str(sid)], lambda db: acts.end_speech(db, clerk, sid, now=T0, actor="cli")),
    ]
    for args, call in steps:
        clock["now"] = T0
        assert cli.main(["--config", str(line.conf), "speakers", *args]) == 0, capsys.readouterr().err
        db = api.db()
        try:
            assert call(db).ok
        finally:
            db.conn.close()
        assert line.snapshot() == api.snapshot(), args
    after = line.snapshot()
    assert [a[1] for a in after["audit"]] == [
        "speakers.chair", "agenda.current", "speakers.procedure", "speakers.add", "speakers.add", "speakers.move",
        "speakers.next", "speakers.extend", "speakers.close", "speakers.announce", "speakers.next",
        "speakers.reopen", "speakers.end"]
    assert all(a[0] == "cli" for a in after["audit"])
    assert [r[:3] for r in after["requests"]] == [(m["Anna"], "contribution", "done"),
                                                  (m["Bernd"], "point_of_order", "done")]


def test_list_export_and_refusals(worlds, capsys):
    line, _api, clock = worlds
    sid, m, conf = line.session, line.members, str(line.conf)

    def run(*args: str) -> int:
        return cli.main(["--config", conf, "speakers", *args])

    assert run("members", str(sid)) == 0
    assert f"{m['Anna']}\tAnna Schmidt\tSPD\tmember" in capsys.readouterr().out
    assert run("current", str(sid), str(line.item)) == 0
    run("add", str(sid), str(m["Anna"]))
    run("add", str(sid), str(m["Bernd"]))
    capsys.readouterr()
    # A refusal: one German line, exit 2, nothing done.
    before = line.snapshot()
    assert run("add", str(sid), str(m["Anna"])) == 2
    assert capsys.readouterr().err == "Fehler: Anna Schmidt steht mit dieser Wortmeldung bereits auf der Liste.\n"
    assert run("next", "999") == 2 and "Sitzung 999 gibt es nicht" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # argparse refuses it, in German, before anything runs
        run("add", str(sid), str(2**70))
    assert exc.value.code == 2 and "MITGLIED-ID: keine gültige Nummer" in capsys.readouterr().err
    assert run("list", str(sid), "777") == 2
    assert capsys.readouterr().err == "Fehler: Diesen Tagesordnungspunkt gibt es in dieser Sitzung nicht.\n"
    assert line.snapshot() == before
    clock["now"] = T0
    run("next", str(sid))
    clock["now"] = T0 + 65
    assert run("list", str(sid)) == 0
    out = capsys.readouterr().out
    assert "TOP 5 Haushalt 2027 · Rednerliste offen" in out
    assert "Es spricht: Anna Schmidt (SPD), Wortmeldung, seit 1:05, noch 3:55" in out
    assert "  1. [2] Bernd Müller (CDU) – Wortmeldung – bisher 0×" in out
    clock["now"] = T0 + 125
    run("next", str(sid))
    capsys.readouterr()
    assert run("export", str(sid), "--csv") == 0
    text = capsys.readouterr().out
    assert "5;Haushalt 2027;1;Anna Schmidt;SPD;Wortmeldung;09:00:00;2:05" in text
    assert "5;Haushalt 2027;2;Bernd Müller;CDU;Wortmeldung;09:02:05;läuft" in text
    assert run("wipe", str(sid), "--ja") == 0 and "2 Wortmeldungen gelöscht." in capsys.readouterr().out
    assert line.snapshot()["requests"] == []
