"""The real command line with hostile arguments: every refusal is one German line "Fehler: …" on stderr and
exit status 2, never a traceback. Each case runs `python -m appliance.cli` in a subprocess with a config of its
own (commands that need root, a radio or the network are not run here; their argument errors are)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from appliance import cli
from appliance.config import Config, to_toml
from appliance.sessions import service
from appliance.store import open_db

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def box(tmp_path: Path) -> Path:
    """A config file; its database holds session 1 (not active). Returns the folder with the test files."""
    cfg = Config(state_dir=tmp_path / "state", run_dir=tmp_path / "run", helper_socket=tmp_path / "run" / "h.sock",
                 leases_file=tmp_path / "state" / "dnsmasq.leases", hostapd_ctrl_dir=tmp_path / "hostapd").validate()
    (tmp_path / "box.toml").write_text(to_toml(cfg))
    db = open_db(cfg.db_path)
    service.create_session(db, body="Rat", title="Sitzung", day="2026-12-01")
    db.conn.close()
    (tmp_path / "bad.csv").write_text("Name;Rolle\nAnna\x1b[31m;Mitglied\n")
    (tmp_path / "huge.csv").write_bytes(b"Name;Rolle\n" + b"A" * (3 << 20) + b";Mitglied\n")
    (tmp_path / "kein.zip").write_bytes(b"PK\x05\x06" + b"\0" * 10)
    (tmp_path / "leer").mkdir()
    (tmp_path / "alt").mkdir()  # a stick written by an old system: a name that is not UTF-8
    (tmp_path / "alt" / os.fsdecode(b"Bericht \xe4\xf6.pdf")).write_bytes(b"%PDF-1.4\n%%EOF\n")
    (tmp_path / "garbage.toml").write_text("state_dir = [unclosed\n")
    (tmp_path / "unknown.toml").write_text('gibt_es_nicht = "x"\n')
    return tmp_path


def run(box: Path, *args: str, config: str = "box.toml") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "appliance.cli", "--config", str(box / config), *args],
                          capture_output=True, text=True, timeout=60, cwd=box, stdin=subprocess.DEVNULL,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "LANG": "C.UTF-8"})


def assert_refused(proc: subprocess.CompletedProcess, *words: str) -> None:
    lines = proc.stderr.splitlines()
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert len(lines) == 1 and lines[0].startswith("Fehler: "), proc.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


CASES = [
    (("session", "import-members", "abc", "x.csv"), ("keine ganze Zahl", "abc")),
    (("session", "import-members", "-1", "bad.csv"), ("Sitzung -1 gibt es nicht",)),
    (("session", "import-members", "99999999999999999999999", "bad.csv"), ("gibt es nicht",)),
    (("session", "import-members", "1", "/gibt/es/nicht.csv"), ("gibt es nicht",)),
    (("session", "import-members", "1", "leer"), ("ist ein Ordner",)),
    (("session", "import-members", "1", "zeile\numbruch\x1b.csv"), ("zeile umbruch",)),
    (("session", "import-members", "99", "bad.csv"), ("Sitzung 99 gibt es nicht",)),
    (("session", "import-members", "1", os.fsdecode(b"/gibt/\xff\xfe.csv")), ("gibt es nicht",)),
    (("import", "1", "alt"), ("nichts wurde importiert", "kein UTF-8-Text")),
    (("session", "import-members", "1", "bad.csv"), ("Zeile 2", "Steuerzeichen")),
    (("session", "import-members", "1", "huge.csv"), ("zu groß", "höchstens 2 MB")),
    (("session", "import-members", "1"), ("es fehlt: csv",)),
    (("session", "create", "--body", "", "--title", "", "--date", "gestern"), ("Datum",)),
    (("session", "create", "--body", "Rat"), ("es fehlt",)),
    (("session", "activate", "999"), ("Sitzung 999 gibt es nicht",)),
    (("session", "rotate-keys"), ("keine Sitzung aktiv",)),
    (("session", "bogus"), ("ungültige Auswahl",)),
    (("session",), ("es fehlt: action",)),
    (("wipe", "999", "--ja"), ("Sitzung 999 gibt es nicht",)),
    (("wipe", "1"), ("Eingabe endete",)),  # stdin closed: no answer to "really?"
    (("wipe", "x"), ("keine ganze Zahl",)),
    (("wipe", "1", "--alle", "--anwesenheit"), ("nicht zusammen mit",)),
    (("import", "999", "leer"), ("Sitzung 999 gibt es nicht",)),
    (("import", "1", "/gibt/es/nicht"), ("/gibt/es/nicht", "gibt es nicht")),
    (("import", "1", "kein.zip"), ("nichts wurde importiert", "ZIP")),
    (("import", "1", "leer"), ("nichts wurde importiert", "keine Dateien")),
    (("import", "1", "leer", "--tischvorlage"), ("einzelne Datei",)),
    (("documents", "bogus"), ("ungültige Auswahl",)),
    (("documents", "imports", "abc"), ("keine ganze Zahl",)),
    (("import", "1", "http://127.0.0.1:1/oparl/meeting/1"), ("Loopback",)),  # refused before any connection
    (("import", "1", "http://169.254.169.254/latest/meta-data"), ("169.254.169.254",)),
    (("setup", "--stdin"), ()),  # no answers on stdin (or the box counts as set up already): refused either way
    (("session", "create", "--body", "Rat", "--title", "T\x1b[2J", "--date", "2026-12-01"), ("Steuerzeichen",)),
    (("set-password", "--role", "chef"), ("ungültige Auswahl",)),
    (("netconf", "--wait", "bald"), ("keine Zahl",)),
    (("fake-hostapd",), ("es fehlt: --socket",)),
    (("monitor", "--gibt-es-nicht"), ("unbekannte Angaben",)),
    (("gibt-es-nicht",), ("ungültige Auswahl",)),
    ((), ("es fehlt: command",)),
]


IDS = [" ".join(a)[:50].encode("utf-8", "replace").decode() or "(nichts)" for a, _ in CASES]


@pytest.mark.parametrize(("args", "words"), CASES, ids=IDS)
def test_hostile_arguments_one_german_line(box, args, words):
    assert_refused(run(box, *args), *words)


def test_broken_configuration_and_database(box):
    assert_refused(run(box, "session", "list", config="gibt-es-nicht.toml"), "Konfiguration", "fehlt")
    assert_refused(run(box, "session", "list", config="garbage.toml"), "Konfiguration", "kein gültiges TOML")
    assert_refused(run(box, "session", "list", config="unknown.toml"), "unbekannte Einstellung")
    (box / "state" / "sitzungsbox.db").write_bytes(b"kein SQLite " * 1000)
    for suffix in ("-wal", "-shm"):
        (box / "state" / f"sitzungsbox.db{suffix}").unlink(missing_ok=True)
    assert_refused(run(box, "session", "list"), "Datenbank", "nicht lesbar")


def test_an_unexpected_error_is_one_line_and_the_traceback_needs_debug(box, monkeypatch, capsys):
    def broken(_cfg, _args):
        raise KeyError("intern\nzweite Zeile")

    monkeypatch.setattr(cli, "_session_cmd", broken)
    assert cli.main(["--config", str(box / "box.toml"), "session", "list"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unerwarteter Fehler (KeyError)" in err and "--debug" in err
    assert "Traceback" not in err and "intern" not in err  # details are for the log, not the clerk
    with pytest.raises(KeyError):
        cli.main(["--debug", "--config", str(box / "box.toml"), "session", "list"])


def test_a_command_stopping_with_a_message_refuses_like_the_others(box, monkeypatch, capsys):
    def stops(_cfg, _args):
        raise SystemExit("Rechte konnten nicht abgegeben werden.\nZweite Zeile")

    monkeypatch.setattr(cli, "_session_cmd", stops)
    assert cli.main(["--config", str(box / "box.toml"), "session", "list"]) == 2
    assert capsys.readouterr().err == "Fehler: Rechte konnten nicht abgegeben werden. Zweite Zeile\n"


def test_the_traceback_of_an_unexpected_error_goes_to_the_system_log(box, monkeypatch, capsys):
    def broken(_cfg, _args):
        raise ZeroDivisionError("intern")

    log = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    log.bind(str(box / "log.sock"))
    log.settimeout(5)
    monkeypatch.setattr(cli, "SYSLOG", str(box / "log.sock"))
    monkeypatch.setattr(cli, "_session_cmd", broken)
    try:
        assert cli.main(["--config", str(box / "box.toml"), "session", "list"]) == 2
        entry = log.recv(65536).decode()
    finally:
        log.close()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "journalctl -t sitzungsbox" in err and "Traceback" not in err
    assert "sitzungsbox: unerwarteter Fehler in session" in entry
    assert "Traceback" in entry and "ZeroDivisionError: intern" in entry
