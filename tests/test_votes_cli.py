"""`sitzungsbox votes …` is the same act as the clerk's votes page and the chair's console: run once through the
command line (appliance.cli.main with a config file) and once by calling the use case as a clerk with actor "cli",
each in its own identically seeded world, the vote rows, the vote log and the push events come out the same
(ballot tokens and their random order aside). A refusal: one German line, exit status 2, nothing written."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from appliance import cli, votes_cli
from appliance.config import Config, to_toml
from appliance.documents import service as docs
from appliance.rules import votes as vr
from appliance.rules.viewer import Viewer
from appliance.sessions import service
from appliance.sessions.roster import MemberRow
from appliance.store import open_db
from appliance.usecases import speakers
from appliance.usecases import votes as acts
from tests.atomic_support import dump

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
                                          MemberRow("Carla Weber", "SPD", "member", True, "Rat"),
                                          MemberRow("Dora Klein", "SPD", "deputy", False, "Rat")])
        service.set_active(db, s.id)
        self.session = s.id
        self.members = {m.name.split()[0]: m.id for m in service.members(db, s.id)}
        self.item = docs.add_item(db, s.id, "Haushalt 2027", number="5")
        assert speakers.set_current_item(db, Viewer("clerk", s.id), s.id, self.item, actor="test")
        for name in ("Anna", "Bernd", "Dora"):  # Carla is away: Dora may stand in for her
            db.execute("INSERT INTO presence_intervals(session_id, member_id, start, start_source) "
                       "VALUES (?, ?, ?, 'wifi')", [s.id, self.members[name], T0 - 600])
        db.conn.close()

    def db(self):
        return open_db(self.cfg.db_path)

    def snapshot(self) -> dict:
        db = self.db()
        try:
            def rows(sql: str) -> list[tuple]:
                return [tuple(r) for r in db.execute(sql).fetchall()]

            log = []
            for actor, action, detail in rows("SELECT actor, action, detail FROM vote_log ORDER BY id"):
                d = json.loads(detail)
                d.pop("token", None)
                if "ballots" in d:  # random tokens in random order: who holds a ballot is what counts
                    d["ballots"] = sorted(b[1:] for b in d["ballots"])
                log.append((actor, action, d))
            return {
                "votes": rows("SELECT id, item_id, item_title, question, mode, rule, rule_params, state, attempt, "
                              "repeat_of, statutory, eligible, present, conflicted, quorate, yes, no, abstain, "
                              "by_hand, accepted, result_text, cancel_reason FROM votes ORDER BY id"),
                "ballots": sorted(rows("SELECT vote_id, member_id, name, faction, choice, by_clerk FROM vote_ballots"),
                                  key=repr),
                "factions": rows("SELECT * FROM vote_faction_counts ORDER BY vote_id, faction"),
                "deputies": rows("SELECT * FROM vote_deputies"),
                "conflicts": rows("SELECT session_id, item_id, member_id FROM vote_conflicts ORDER BY member_id"),
                "settings": rows("SELECT * FROM vote_settings"),
                "paper": rows("SELECT id, item_id, kind, title, input, outcome, steps FROM vote_paper ORDER BY id"),
                "log": log,
                "push": [(t, a, json.loads(p)) for t, a, p in
                         rows("SELECT topic, audience, payload FROM push_events WHERE topic LIKE 'votes.%' "
                              "ORDER BY id")],
            }
        finally:
            db.conn.close()


@pytest.fixture
def worlds(tmp_path, monkeypatch):
    monkeypatch.setattr(votes_cli, "clock", lambda: T0)
    return World(tmp_path / "cli"), World(tmp_path / "api")


def test_the_command_line_does_the_same_acts_as_the_web(worlds, capsys):
    line, api = worlds
    sid, m, item = line.session, line.members, line.item
    clerk = Viewer("clerk", sid)
    kw = {"now": T0, "actor": "cli"}
    steps = [
        (["deputy", str(sid), str(m["Dora"]), str(m["Carla"])],
         lambda db: acts.set_deputy(db, clerk, sid, m["Dora"], m["Carla"], **kw)),
        (["conflict", str(sid), "0", str(m["Bernd"])],
         lambda db: acts.set_conflicted(db, clerk, sid, 0, m["Bernd"], True, **kw)),
        (["conflict", str(sid), "0", str(m["Bernd"]), "--aufheben"],
         lambda db: acts.set_conflicted(db, clerk, sid, 0, m["Bernd"], False, **kw)),
        (["may-change", str(sid), "nein"], lambda db: acts.set_may_change(db, clerk, "Rat", False, session_id=sid,
                                                                          **kw)),
        (["open", str(sid), "--frage", "Dem Haushalt zustimmen?", "--art", "namentlich", "--regel", "zwei-drittel"],
         lambda db: acts.open_vote(db, clerk, sid, question="Dem Haushalt zustimmen?", mode="named",
                                   rule="two_thirds", **kw)),
        (["hand", str(sid), str(m["Anna"]), "ja"],
         lambda db: acts.enter_by_hand(db, clerk, sid, 1, m["Anna"], "yes", **kw)),
        (["hand", str(sid), str(m["Dora"]), "nein", "--abstimmung", "1"],
         lambda db: acts.enter_by_hand(db, clerk, sid, 1, m["Dora"], "no", **kw)),
        (["close", str(sid)], lambda db: acts.close_vote(db, clerk, sid, **kw)),
        (["repeat", str(sid), "1"], lambda db: acts.repeat_vote(db, clerk, sid, 1, **kw)),
        (["cancel", str(sid), "--grund", "Technische Störung"],
         lambda db: acts.cancel_vote(db, clerk, sid, reason="Technische Störung", **kw)),
        (["open", str(sid), "--frage", "Vertagen?", "--punkt", "0", "--regel", "eigene", "--bruch", "3/4",
          "--bezug", "gesetzlich", "--mehr-als"],
         lambda db: acts.open_vote(db, clerk, sid, question="Vertagen?", item_id=0, rule="custom",
                                   params=vr.Custom(3, 4, "statutory", True), **kw)),
        (["paper", str(sid), "mehrheit", "--titel", "Geheime Abstimmung", "--ja", "7", "--nein", "3",
          "--enthaltung", "1", "--regel", "gesetzlich"],
         lambda db: acts.record_paper(db, clerk, sid, "majority", title="Geheime Abstimmung", yes=7, no=3, abstain=1,
                                      rule="statutory", **kw)),
        (["paper", str(sid), "wahl", "--titel", "Vorsitz", "--stimmen", "Anna Schmidt=4", "--stimmen",
          "Bernd Müller=4", "--nein", "1"],
         lambda db: acts.record_paper(db, clerk, sid, "election", title="Vorsitz",
                                      counts={"Anna Schmidt": 4, "Bernd Müller": 4}, no=1, **kw)),
        (["paper", str(sid), "stichwahl", "--titel", "Vorsitz", "--stimmen", "Anna Schmidt=5", "--stimmen",
          "Bernd Müller=4", "--punkt", str(item)],
         lambda db: acts.record_paper(db, clerk, sid, "runoff", title="Vorsitz", item_id=item,
                                      counts={"Anna Schmidt": 5, "Bernd Müller": 4}, **kw)),
        (["paper", str(sid), "hare-niemeyer", "--titel", "Ausschuss", "--stimmen", "SPD=10", "--stimmen", "CDU=10",
          "--stimmen", "Grüne=5", "--sitze", "4"],
         lambda db: acts.record_paper(db, clerk, sid, "hare_niemeyer", title="Ausschuss",
                                      counts={"SPD": 10, "CDU": 10, "Grüne": 5}, seats=4, **kw)),
        (["paper", str(sid), "dhondt", "--titel", "Ausschuss", "--stimmen", "SPD=300", "--stimmen", "CDU=200",
          "--sitze", "5"],
         lambda db: acts.record_paper(db, clerk, sid, "dhondt", title="Ausschuss", counts={"SPD": 300, "CDU": 200},
                                      seats=5, **kw)),
    ]
    for args, call in steps:
        assert cli.main(["--config", str(line.conf), "votes", *args]) == 0, (args, capsys.readouterr().err)
        printed = capsys.readouterr().out.strip()
        db = api.db()
        try:
            out = call(db)
        finally:
            db.conn.close()
        assert out.ok and printed == out.text, (args, printed, out.text)
        assert line.snapshot() == api.snapshot(), args
    after = line.snapshot()
    assert all(actor == "cli" for actor, _a, _d in after["log"])
    assert [v[7] for v in after["votes"]] == ["closed", "cancelled", "open"]
    assert [p[2] for p in after["paper"]] == ["majority", "election", "runoff", "hare_niemeyer", "dhondt"]
    assert after["deputies"] == [(sid, m["Dora"], m["Carla"])] and after["conflicts"] == []


def test_list_minutes_and_refusals(worlds, capsys):
    line, _api = worlds
    sid, m, conf = line.session, line.members, str(line.conf)

    def run(*args: str) -> int:
        return cli.main(["--config", conf, "votes", *args])

    before = line.snapshot()
    db = line.db()
    try:
        raw = dump(db)
    finally:
        db.conn.close()
    # Refusals: one German line on stderr, exit 2, nothing written.
    assert run("deputy", str(sid), str(m["Anna"]), str(m["Carla"])) == 2
    assert capsys.readouterr().err == f"Fehler: {acts.TEXTS['not_deputy']}\n"
    assert run("hand", str(sid), str(m["Anna"]), "ja") == 2
    assert capsys.readouterr().err == f"Fehler: {acts.TEXTS['not_open']}\n"
    assert run("close", str(sid)) == 2 and acts.TEXTS["not_open"] in capsys.readouterr().err
    assert run("paper", str(sid), "dhondt", "--titel", "x", "--stimmen", "SPD=-1", "--sitze", "2") == 2
    assert capsys.readouterr().err == f"Fehler: {acts.TEXTS['bad_counts']}\n"
    assert run("paper", str(sid), "dhondt", "--titel", "x", "--stimmen", "SPD=1", "--stimmen", "SPD=2") == 2
    assert "nur einmal" in capsys.readouterr().err
    assert run("open", str(sid), "--frage", "x", "--regel", "eigene") == 2
    assert "Bitte geben Sie die Mehrheit an." in capsys.readouterr().err
    assert run("list", "999") == 2 and "Sitzung 999 gibt es nicht" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # argparse refuses it, in German, before anything runs
        run("hand", str(sid), str(m["Anna"]), "vielleicht")
    assert exc.value.code == 2
    capsys.readouterr()
    db = line.db()
    try:
        assert dump(db) == raw
    finally:
        db.conn.close()
    assert line.snapshot() == before
    # A named vote with a vote by hand, then the list and the minutes in three formats.
    assert run("open", str(sid), "--frage", "Dem Haushalt zustimmen?", "--art", "namentlich") == 0
    assert run("hand", str(sid), str(m["Bernd"]), "nein") == 0
    capsys.readouterr()
    assert run("list", str(sid)) == 0
    out = capsys.readouterr().out
    assert "[1] 5 Haushalt 2027 · Dem Haushalt zustimmen? · namentlich · läuft, 1 von 2 haben abgestimmt" in out
    assert "Noch nicht abgestimmt (1): Anna Schmidt" in out
    assert run("close", str(sid)) == 0
    assert run("paper", str(sid), "hare-niemeyer", "--titel", "Ausschuss", "--stimmen", "SPD=1", "--stimmen",
               "CDU=1", "--sitze", "1") == 0
    capsys.readouterr()
    assert run("minutes", str(sid)) == 0
    text = capsys.readouterr().out
    assert "Abstimmung 1: 5 Haushalt 2027" in text
    assert "Bernd Müller (CDU): Nein (vom Sitzungsdienst eingetragen)" in text
    assert "Anna Schmidt (SPD): nicht abgestimmt" in text and "CDU: 1 stimmberechtigt, Ja 0, Nein 1" in text
    assert "Los erforderlich" in text
    assert run("minutes", str(sid), "--format", "csv") == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out.lstrip("\ufeff")), delimiter=";"))
    assert rows[0]["Abstimmung"] == "1" and rows[0]["Nein"] == "1" and rows[0]["Von Hand eingetragen"] == "1"
    assert run("minutes", str(sid), "--format", "json") == 0
    data = json.loads(capsys.readouterr().out)
    db = line.db()
    try:
        assert data == json.loads(acts.minutes_json(acts.minutes(db, sid)))
    finally:
        db.conn.close()
