"""The clerk's page and the command line do the same act: activate a session, import members, rotate keys.

Each act runs once through the web (Flask test client, logged-in clerk, CSRF token) and once through
`sitzungsbox session …` (appliance.cli.main with a config file), each in its own fresh, identically seeded
world: a database, the replaying radio (FakeHostapd on a real control socket) and a recording firewall helper
(handed out by appliance.helper.client.for_config, the one factory both interfaces use). Compared: the
database changes (random key material reduced to "changed or not"), the audit entries, the key file, the radio
commands in order and the firewall helper calls.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from appliance import cli
from appliance.config import Config, to_toml
from appliance.helper import client as helper_client
from appliance.netconf import render
from appliance.radio.fake import FakeHostapd
from appliance.sessions import service
from appliance.sessions.roster import MemberRow
from appliance.store import open_db
from tests.test_clerk import confirmed, login, set_pw, token

NEW_PEOPLE = "Name;Fraktion;Rolle;Stimmrecht\nErik Neu;FDP;Mitglied;ja\nFrieda Neu;Grüne;Stellvertretung;nein\n"


class RecordingHelper:
    """The firewall helper's API; records every call and changes nothing."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    def admit(self, mac: str, ip: str) -> None:
        self.calls.append(("admit", mac, ip))

    def revoke(self, mac: str, ip: str) -> None:
        self.calls.append(("revoke", mac, ip))


@dataclass
class World:
    cfg: Config
    conf: Path
    fake: FakeHostapd
    helper: RecordingHelper = field(default_factory=RecordingHelper)

    def db(self):
        return open_db(self.cfg.db_path)


def seed(world: World) -> None:
    """Session 1 (active, two members with a phone each, one guest phone, all admitted) and session 2."""
    db = world.db()
    a = service.create_session(db, body="Rat", title="Erste", day="2026-12-01")
    b = service.create_session(db, body="Rat", title="Zweite", day="2026-12-02")
    service.insert_members(db, a.id, [MemberRow("Anna Schmidt", "SPD", "member", True, "Rat"),
                                      MemberRow("Bernd Müller", "CDU", "member", True, "Rat")])
    service.insert_members(db, b.id, [MemberRow("Carla Weber", "SPD", "member", True, "Rat"),
                                      MemberRow("Dora Klein", "CDU", "deputy", False, "Rat")])
    service.set_active(db, a.id)
    render.write_psk(world.cfg, db)
    phones = [(f"02:00:00:00:01:0{i}", f"10.77.0.{10 + i}", m.keyid, m.id)
              for i, m in enumerate(service.members(db, a.id), start=1)]
    phones.append(("02:00:00:00:01:99", "10.77.0.99", "guest", None))
    for mac, ip, keyid, member_id in phones:
        db["stations"].insert({"mac": mac, "interface": "wlan0", "keyid": keyid, "connected": 1})
        db["admissions"].insert({"session_id": a.id, "mac": mac, "ip": ip, "member_id": member_id,
                                 "kind": "member" if member_id else "guest", "admitted_at": "2026-12-01T18:00:00Z"})
        world.fake.connect(mac, keyid=keyid)
    db.conn.close()


@pytest.fixture
def worlds(tmp_path, monkeypatch):
    made: dict[str, World] = {}
    for name in ("web", "cli"):
        base = tmp_path / name
        cfg = Config(state_dir=base / "state", run_dir=base / "run", helper_socket=base / "run" / "helper.sock",
                     leases_file=base / "state" / "dnsmasq.leases", hostapd_ctrl_dir=base / "hostapd").validate()
        cfg.hostapd_ctrl_dir.mkdir(parents=True)
        cfg.run_dir.mkdir(parents=True)
        conf = base / "sitzungsbox.toml"
        conf.write_text(to_toml(cfg))
        made[name] = World(cfg, conf, FakeHostapd(cfg.hostapd_ctrl_dir / "wlan0", psk_file=cfg.psk_file))
        seed(made[name])
    by_state = {w.cfg.state_dir: w for w in made.values()}
    # The one factory both the web app and the command line take their firewall helper from.
    monkeypatch.setattr(helper_client, "for_config", lambda cfg: by_state[cfg.state_dir].helper)
    yield made
    for w in made.values():
        w.fake.close()


def snapshot(world: World) -> dict:
    db = world.db()
    try:
        def rows(sql: str) -> list[dict]:
            cur = db.execute(sql)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

        return {
            "sessions": {r["id"]: r for r in rows("SELECT * FROM sessions")},
            "members": {r["id"]: r for r in rows("SELECT * FROM members")},
            "admissions": rows("SELECT * FROM admissions ORDER BY id"),
            "audit": rows("SELECT * FROM audit ORDER BY id"),
            "push": rows("SELECT topic, audience FROM push_events ORDER BY id"),
            "psk": world.cfg.psk_file.read_text() if world.cfg.psk_file.exists() else "",
        }
    finally:
        db.conn.close()


def changes(before: dict, after: dict) -> dict:
    """What the act did, without ids of time or chance: keys and codes are random, so only 'changed' counts."""
    def member_shape(m: dict) -> tuple:
        old = before["members"].get(m["id"])
        fresh = "new" if old is None else tuple(m[k] != old[k] for k in ("keyid", "passphrase", "code"))
        return (m["id"], m["session_id"], m["name"], m["faction"], m["role"], m["voting"], m["body"], fresh)

    names = {m["keyid"]: m["name"] for m in after["members"].values()}
    on_air = sorted(names.get(tok.removeprefix("keyid="), tok.removeprefix("keyid="))
                    for tok in after["psk"].split() if tok.startswith("keyid="))
    seen = max((a["id"] for a in before["audit"]), default=0)
    return {
        "sessions": [(s["id"], s["title"], s["active"], s["key_generation"],
                      s["guest_key"] != before["sessions"][s["id"]]["guest_key"])
                     for s in after["sessions"].values()],
        "members": sorted(member_shape(m) for m in after["members"].values()),
        "admissions": [(a["id"], a["session_id"], a["mac"], a["ip"], a["member_id"], a["kind"],
                        a["revoked_at"] is not None) for a in after["admissions"]],
        "audit": [(a["action"], a["detail"]) for a in after["audit"] if a["id"] > seen],
        "push": after["push"][len(before["push"]):],
        "on_air": on_air,
    }


def web_clerk(world: World):
    from appliance.web.app import create_app

    set_pw(world.cfg)
    app = create_app(world.cfg, testing=True)  # no helper given: create_app asks helper.client.for_config
    assert app.config["SB_HELPER"] is world.helper
    client = app.test_client()
    assert login(client).status_code == 302
    return client


def run_both(worlds: dict[str, World], web_act, cli_args: list[str]) -> tuple[dict, dict]:
    web, line = worlds["web"], worlds["cli"]
    client = web_clerk(web)
    results = {}
    for name, world in worlds.items():
        world.fake.commands_received.clear()
        world.helper.calls.clear()
        results[name] = snapshot(world)
    resp = web_act(client)
    assert resp.status_code == 302, resp.text
    assert cli.main(["--config", str(line.conf), "session", *cli_args]) == 0
    out = {}
    for name, world in worlds.items():
        out[name] = {"db": changes(results[name], snapshot(world)), "radio": list(world.fake.commands_received),
                     "helper": list(world.helper.calls)}
    return out["web"], out["cli"]


def test_activate_is_the_same_act_on_the_web_and_the_command_line(worlds, capsys):
    def act(client):  # the confirmation page, then confirmed; on the command line: --ja
        return confirmed(client, "/clerk/sessions/2/activate")

    web, line = run_both(worlds, act, ["activate", "2", "--ja"])
    assert web == line
    out = capsys.readouterr().out
    assert "Sitzung 2 ist jetzt aktiv." in out
    # The command line warned in the confirmation page's words: session 1's two phones and a guest's.
    assert "Die laufende Sitzung „Erste“ wird beendet, „Zweite“ wird aktiv." in out
    assert "3 verbundene Geräte werden getrennt" in out and "3 Freigaben werden entzogen." in out
    # And the act is the right one: session 2 live, its keys on the air, session 1's devices gone.
    assert [s[2] for s in web["db"]["sessions"]] == [0, 1]
    assert web["db"]["on_air"] == ["Carla Weber", "Dora Klein", "guest"]
    assert web["radio"] == ["RELOAD_WPA_PSK", "DEAUTHENTICATE 02:00:00:00:01:01", "DEAUTHENTICATE 02:00:00:00:01:02",
                            "DEAUTHENTICATE 02:00:00:00:01:99"]
    assert web["helper"] == [("revoke", "02:00:00:00:01:01", "10.77.0.11"),
                             ("revoke", "02:00:00:00:01:02", "10.77.0.12"),
                             ("revoke", "02:00:00:00:01:99", "10.77.0.99")]
    assert all(a[-1] for a in web["db"]["admissions"])
    assert web["db"]["audit"] == [("session.activate", "session=2 previous=1"),
                                  ("admission.revoke_session", "session=1 count=3")]


def test_import_is_the_same_act_on_the_web_and_the_command_line(worlds, tmp_path, capsys):
    csv = tmp_path / "neu.csv"
    csv.write_text(NEW_PEOPLE)

    def act(client):
        page = client.get("/clerk/sessions/1")
        return client.post("/clerk/sessions/1/import",
                           data={"csrf_token": token(page.text), "csv": (io.BytesIO(NEW_PEOPLE.encode()), "neu.csv")},
                           content_type="multipart/form-data")

    web, line = run_both(worlds, act, ["import-members", "1", str(csv)])
    assert web == line
    assert "2 Personen importiert." in capsys.readouterr().out
    # The live session's new keys are on the air at once; nobody lost a key, so nobody was dropped.
    assert [m[-1] for m in web["db"]["members"]].count("new") == 2
    assert {m[6] for m in web["db"]["members"] if m[-1] == "new"} == {"Rat"}  # the session's body by default
    assert web["db"]["on_air"] == ["Anna Schmidt", "Bernd Müller", "Erik Neu", "Frieda Neu", "guest"]
    assert web["radio"] == ["RELOAD_WPA_PSK"] and web["helper"] == []
    assert web["db"]["audit"] == [("members.import", "session=1 count=2")]


def test_rotation_is_the_same_act_on_the_web_and_the_command_line(worlds, capsys):
    def act(client):
        return confirmed(client, "/clerk/sessions/1/rotate")

    web, line = run_both(worlds, act, ["rotate-keys", "1", "--ja"])
    assert web == line
    assert "Alle Schlüssel erneuert. 3 Geräte wurden getrennt." in capsys.readouterr().out
    session_one = [m for m in web["db"]["members"] if m[1] == 1]
    assert all(m[-1] == (True, True, True) for m in session_one)
    assert all(m[-1] == (False, False, False) for m in web["db"]["members"] if m[1] == 2)
    assert web["db"]["sessions"][0][3:] == (2, True) and web["db"]["sessions"][1][3:] == (1, False)
    assert web["radio"] == ["RELOAD_WPA_PSK", "DEAUTHENTICATE 02:00:00:00:01:01", "DEAUTHENTICATE 02:00:00:00:01:02",
                            "DEAUTHENTICATE 02:00:00:00:01:99"]
    assert [c[0] for c in web["helper"]] == ["revoke"] * 3
    assert web["db"]["audit"] == [("keys.rotate", "session=1 generation=2 keys=3"),
                                  ("admission.revoke_session", "session=1 count=3")]


def test_cli_reports_a_radio_it_could_not_reach_and_exits_1(worlds, capsys):
    line = worlds["cli"]
    line.fake.close()  # the radio is gone: the database act is done, the clerk must learn the rest is not
    assert cli.main(["--config", str(line.conf), "session", "rotate-keys", "--ja"]) == 1
    out, err = capsys.readouterr()
    assert "Alle Schlüssel erneuert." in out
    assert "Achtung: Funkmodul wlan0 nicht erreichbar" in err
    db = line.db()
    assert service.get_session(db, 1).key_generation == 2
    db.conn.close()


def test_cli_refusal_is_one_line_on_stderr_with_status_2(worlds, tmp_path, capsys):
    line = worlds["cli"]
    bad = tmp_path / "bad.csv"
    bad.write_text("Name;Rolle\nDora Weiß;Bürgermeisterin\n;Mitglied\n")
    assert cli.main(["--config", str(line.conf), "session", "import-members", "1", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("Fehler: Zeile 2")
    assert cli.main(["--config", str(line.conf), "session", "activate", "9"]) == 2
    assert capsys.readouterr().err == "Fehler: Sitzung 9 gibt es nicht\n"
    assert line.fake.commands_received == [] and line.helper.calls == []
