"""The `sitzungsbox` command line. Each subcommand lives in the module named for what it does."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import re
import sqlite3
import stat
import sys
from pathlib import Path

from appliance import config as config_mod

MAX_LINE = 2000  # characters of the one error line
SYSLOG = "/dev/log"  # where the traceback of an unexpected error goes (the journal reads it)


def one_line(text: str) -> str:
    """A message for stderr as one line: no line breaks or control characters (they come from files and
    arguments), at most MAX_LINE characters."""
    flat = " ".join("".join(" " if (ord(c) < 32 or 0x7f <= ord(c) < 0xa0 or c in "\u2028\u2029") else c
                            for c in text).split())
    return flat if len(flat) <= MAX_LINE else flat[:MAX_LINE] + "…"


def fail(message: str) -> int:
    """Every refusal of every command: one line "Fehler: …" on stderr, exit status 2 (nothing was done)."""
    print(one_line(f"Fehler: {message}"), file=sys.stderr)
    return 2


_ERRNO = {
    errno.ENOENT: "gibt es nicht", errno.EACCES: "keine Berechtigung", errno.EPERM: "nicht erlaubt",
    errno.EISDIR: "ist ein Ordner, keine Datei", errno.ENOTDIR: "ist kein Ordner",
    errno.ENOSPC: "kein Platz mehr auf dem Datenträger", errno.EROFS: "Datenträger ist schreibgeschützt",
    errno.ENAMETOOLONG: "Name zu lang", errno.ELOOP: "zu viele symbolische Links",
}


def os_message(exc: OSError) -> str:
    """An OSError in German: what (errno) and which file; Python's English text only for rare errors."""
    what = _ERRNO.get(exc.errno or 0) or exc.strerror or type(exc).__name__
    return f"{exc.filename}: {what}" if exc.filename else what


class GermanParser(argparse.ArgumentParser):
    """argparse's refusals (bad numbers, missing or unknown arguments) as one German line with exit status 2,
    not its English usage block."""

    _WORDS = (
        (r"invalid int value: (.*)", r"keine ganze Zahl: \1"),
        (r"invalid float value: (.*)", r"keine Zahl: \1"),
        (r"invalid choice: (.*) \(choose from (.*)\)", r"ungültige Auswahl: \1 (möglich: \2)"),
        (r"the following arguments are required: (.*)", r"es fehlt: \1"),
        (r"unrecognized arguments: (.*)", r"unbekannte Angaben: \1"),
        (r"expected one argument", r"erwartet einen Wert"),
        (r"not allowed with argument (.*)", r"nicht zusammen mit \1"),
        (r"argument (\S+): ", r"\1: "),
    )

    def error(self, message: str):  # type: ignore[override]
        for pattern, german in self._WORDS:
            message = re.sub(pattern, german, message)
        print(one_line(f"Fehler: {self.prog}: {message} (Hilfe: {self.prog} --help)"), file=sys.stderr)
        raise SystemExit(2)


def _german(key: str, **values: object) -> str:
    """A text of the German catalog: the command line words its questions as the clerk's pages do."""
    from appliance.web import i18n

    text = i18n.load()[i18n.SOURCE][key]
    return text.format(**values) if values else text


def _confirmed(db, act: str, session_id: int, yes: bool, *, always: bool = False) -> bool:
    """The command line's guard (rules.guard): what the act would do, in the words of the confirmation page,
    when it affects anyone in the room (or `always`); then ask, unless --ja. SessionError: no such session."""
    from appliance.rules import guard
    from appliance.usecases import impact

    found = impact.of(db, act, session_id)
    if not (always or found.affects_room):
        return True
    for line in guard.words(found, _german):
        print(line)
    if yes:
        return True
    try:
        answer = input("Fortfahren? [ja/nein] ")
    except EOFError:
        answer = ""
    if answer.strip().lower() == "ja":
        return True
    print("Fehler: nicht bestätigt, nichts geändert (ohne Rückfrage: --ja).", file=sys.stderr)
    return False


def _session_cmd(cfg: config_mod.Config, args: argparse.Namespace) -> int:
    """Exit 0: done; 1: the database act is done but a radio or firewall step failed (named on stderr);
    2: nothing was done (the error on stderr)."""
    from appliance.helper import client
    from appliance.sessions import roster, service
    from appliance.store import open_db
    from appliance.usecases import sessions as acts

    db = open_db(cfg.db_path)
    try:
        result = None
        if args.action == "create":
            s = service.create_session(db, body=args.body, title=args.title, day=args.date, venue=args.venue,
                                       ssid=cfg.ssid, actor="cli")
            print(f"Sitzung {s.id} angelegt: {s.title} ({s.date}), WLAN {s.ssid}")
        elif args.action == "list":
            for s in service.list_sessions(db):
                print(f"{s.id}\t{'*' if s.active else ' '}\t{s.date}\t{s.body}\t{s.title}\t{s.ssid}")
        elif args.action == "import-members":
            with open(args.csv, "rb") as fh:  # no more than the parser accepts: it names the limit
                data = fh.read(roster.MAX_BYTES + 1)
            result = acts.import_members(cfg, db, client.for_config(cfg), args.session, data, actor="cli")
        elif args.action == "activate":
            if not _confirmed(db, "activate", args.session, args.yes):
                return 2
            result = acts.activate_session(cfg, db, client.for_config(cfg), args.session, actor="cli")
        elif args.action == "rotate-keys":
            live = service.active_session(db)
            target = args.session if args.session is not None else (live.id if live else None)
            if target is not None and not _confirmed(db, "rotate", target, args.yes, always=True):
                return 2
            result = acts.rotate_keys(cfg, db, client.for_config(cfg), args.session, actor="cli")
    except roster.RosterError as exc:
        return fail("; ".join(exc.problems))
    except service.SessionError as exc:
        return fail(str(exc))
    except OSError as exc:
        return fail(os_message(exc))
    finally:
        db.conn.close()
    if result is None:
        return 0
    print(result.text)
    for error in result.errors:
        print(f"Achtung: {error}", file=sys.stderr)
    return 0 if result.ok else 1


def _wipe_cmd(cfg: config_mod.Config, args: argparse.Namespace) -> int:
    """`sitzungsbox wipe N`: the same acts as the clerk's delete buttons (usecases.documents / .presence)."""
    from appliance.documents import DocumentError
    from appliance.sessions import service
    from appliance.store import open_db
    from appliance.usecases import documents, presence

    what = {"all": "ALLE Unterlagen", "presence": "die Anwesenheitsdaten (wer wann da war)"}.get(
        args.what, "die nichtöffentlichen Unterlagen")
    db = open_db(cfg.db_path)
    try:
        service.get_session(db, args.session)
        act = {"all": "wipe_all_documents", "presence": "wipe_presence"}.get(args.what, "wipe_documents")
        _confirmed(db, act, args.session, yes=True, always=True)  # what goes, in the clerk page's words
        if not args.yes:
            answer = input(f"{what} von Sitzung {args.session} endgültig löschen? [ja/nein] ")
            if answer.strip().lower() != "ja":
                print("Nichts gelöscht.")
                return 1
        if args.what == "presence":
            n = presence.wipe_presence(cfg, db, args.session, actor="cli")
            print(f"Anwesenheitsdaten gelöscht ({n} Zeiträume).")
        else:
            result = documents.wipe_documents(cfg, db, args.session, actor="cli",
                                              nonpublic_only=args.what != "all")
            print(result.message())
    except (service.SessionError, DocumentError) as exc:
        return fail(str(exc))
    except OSError as exc:
        return fail(os_message(exc))
    finally:
        db.conn.close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = GermanParser(prog="sitzungsbox", description="Sitzungsbox – das Sitzungsnetz für Ratssitzungen")
    p.add_argument("--config", type=Path, help="Konfigurationsdatei (Standard: /etc/sitzungsbox/sitzungsbox.toml)")
    p.add_argument("--debug", action="store_true", help="bei einem unerwarteten Fehler den Python-Traceback zeigen")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("demo", help="Demo: 62-köpfiger Rat, virtuelles Funkmodul, Web auf 127.0.0.1")
    sub.add_parser("web", help="Web-Anwendung (Portal, Mitglieder, Sitzungsdienst)")
    sub.add_parser("helper", help="privilegierter Helfer: Firewall-Freigaben (nur admit/revoke)")
    sub.add_parser("daemon", help="Funk-Ereignisse von hostapd und mDNS-Ankündigung")
    mo = sub.add_parser("monitor", help="Überwachung für die Technik-Ansicht: Funk, Geräte, Netz, Box (ohne root)")
    mo.add_argument("--once", action="store_true", help="eine Messung schreiben und als JSON ausgeben")
    nc = sub.add_parser("netconf", help="Netzkonfiguration der aktiven Sitzung schreiben")
    nc.add_argument("--check", action="store_true", help="erzeugte Dateien mit nft/dnsmasq/hostapd prüfen")
    nc.add_argument("--wait", type=float, default=0, metavar="S",
                    help="bis zu S Sekunden auf die Schnittstelle warten (beim Start: Funktreiber, Brücke)")
    fh = sub.add_parser("fake-hostapd", help="virtuelles Funkmodul: spielt aufgezeichnetes hostapd-Protokoll ab")
    fh.add_argument("--socket", type=Path, required=True)
    fh.add_argument("--psk-file", type=Path)
    fh.add_argument("--replay", type=Path, help="aufgezeichnete Sitzung, die abgespielt wird")
    from appliance.documents import cli as documents_cli
    documents_cli.add_parsers(sub)
    from appliance import speakers_cli
    speakers_cli.add_parsers(sub)
    from appliance import votes_cli
    votes_cli.add_parsers(sub)
    wp = sub.add_parser("wipe", help="nach der Sitzung löschen: nichtöffentliche Unterlagen (Standard), alle "
                                     "Unterlagen oder die Anwesenheitsdaten")
    wp.add_argument("session", type=int)
    which = wp.add_mutually_exclusive_group()
    which.add_argument("--alle", dest="what", action="store_const", const="all", default="nonpublic",
                       help="alle Unterlagen der Sitzung")
    which.add_argument("--anwesenheit", dest="what", action="store_const", const="presence",
                       help="die Anwesenheitsdaten der Sitzung statt der Unterlagen")
    wp.add_argument("--ja", dest="yes", action="store_true", help="ohne Rückfrage")
    sp = sub.add_parser("set-password", help="neues Passwort für den Sitzungsdienst erzeugen und einmal anzeigen")
    sp.add_argument("--role", choices=("sitzungsdienst", "techniker"), default="sitzungsdienst",
                    help="für wen: Sitzungsdienst (Standard) oder Technik-Ansicht")

    sub.add_parser("firstboot", help="Ersteinrichtung: Einrichtungscode erzeugen und auf der Konsole zeigen")
    gd = sub.add_parser("grow-data", help="Datenpartition bis zum Ende der Karte vergrößern (root, beim Start)")
    gd.add_argument("device", nargs="?", default="/dev/disk/by-label/sbx-data")
    sub.add_parser("setup-code", help="den Einrichtungscode der Ersteinrichtung anzeigen (root)")
    su = sub.add_parser("setup", help="Ersteinrichtung: Code, WLAN-Ländercode und eigenes Passwort (root)")
    su.add_argument("--land", help="WLAN-Ländercode, z. B. DE")
    su.add_argument("--stdin", action="store_true", help="Antworten zeilenweise von der Standardeingabe")

    ses = sub.add_parser("session", help="Sitzungen verwalten")
    sa = ses.add_subparsers(dest="action", required=True)
    c = sa.add_parser("create")
    c.add_argument("--body", required=True)
    c.add_argument("--title", required=True)
    c.add_argument("--date", required=True)
    c.add_argument("--venue", default="")
    sa.add_parser("list")
    im = sa.add_parser("import-members", help="Mitgliederliste (CSV) importieren; bei aktiver Sitzung sofort ins WLAN")
    im.add_argument("session", type=int)
    im.add_argument("csv", type=Path)
    ac = sa.add_parser("activate", help="Sitzung aktivieren: ihre Schlüssel ersetzen die der vorigen im Funkmodul")
    ac.add_argument("session", type=int)
    ac.add_argument("--ja", dest="yes", action="store_true",
                    help="ohne Rückfrage, auch wenn dabei Geräte der laufenden Sitzung getrennt werden")
    rk = sa.add_parser("rotate-keys", help="alle Schlüssel und Codes einer Sitzung erneuern (alte Karten ungültig)")
    rk.add_argument("session", type=int, nargs="?", help="Sitzung (Standard: die aktive)")
    rk.add_argument("--ja", dest="yes", action="store_true", help="ohne Rückfrage")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one command. Its refusals are one German line on stderr and exit status 2; so is an unexpected
    exception (its kind named; the traceback in the system log, and on the terminal only with --debug)."""
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except KeyboardInterrupt:
        print("Abgebrochen.", file=sys.stderr)
        return 130
    except SystemExit as exc:  # a command that stops with a message (serve: privileges) refuses like the others
        if isinstance(exc.code, str):
            return fail(exc.code)
        raise
    except EOFError:
        return fail("Die Eingabe endete, bevor eine Antwort kam (ohne Rückfrage: --ja).")
    except config_mod.ConfigError as exc:
        return fail(f"Konfiguration: {exc}")
    except OSError as exc:
        return fail(os_message(exc))
    except sqlite3.DatabaseError as exc:
        if args.debug:
            raise
        why = "gerade gesperrt (schreibt ein anderer Vorgang?)" if "locked" in str(exc) else \
            "nicht lesbar (beschädigt oder keine SQLite-Datenbank?)"
        return fail(f"Die Datenbank ist {why}")
    except Exception as exc:
        if args.debug:
            raise
        logged = _log_details(args.command)
        return fail(f"unerwarteter Fehler ({type(exc).__name__}) in „{args.command}“ – Einzelheiten "
                    + ("im Systemprotokoll (journalctl -t sitzungsbox) oder " if logged else "")
                    + "mit sitzungsbox --debug …")


def _log_details(command: str) -> bool:
    """The traceback of the exception being handled, to the system log (the journal), not the terminal.
    False when there is no system log (a container without /dev/log)."""
    from logging.handlers import SysLogHandler

    try:
        if not stat.S_ISSOCK(os.stat(SYSLOG).st_mode):
            return False
        handler = SysLogHandler(address=SYSLOG)
    except OSError:
        return False
    handler.handleError = lambda _record: None  # type: ignore[method-assign]  # never "Logging error" on stderr
    handler.ident = "sitzungsbox: "
    details = logging.getLogger("appliance.cli.unexpected")
    details.propagate = False
    details.addHandler(handler)
    try:
        details.error("unerwarteter Fehler in %s", command, exc_info=True)
    finally:
        details.removeHandler(handler)
        handler.close()
    return True


MAX_ID = 2**63 - 1  # SQLite's INTEGER


def _run(args: argparse.Namespace) -> int:
    session = getattr(args, "session", None)
    if isinstance(session, int) and not 0 < session <= MAX_ID:
        return fail(f"Sitzung {str(session)[:30]} gibt es nicht")
    if args.command == "grow-data":  # runs before the data partition (and the config on it) is mounted
        from appliance import growdata
        return growdata.main([args.device])
    try:
        cfg = config_mod.load(args.config)
    except config_mod.ConfigError as exc:
        return fail(f"Konfiguration: {exc}")
    cmd = args.command
    if cmd == "session":
        return _session_cmd(cfg, args)
    if cmd == "demo":
        from appliance import demo
        return demo.main(cfg)
    if cmd == "web":
        from appliance.web import serve
        return serve.main(cfg)
    if cmd == "wipe":
        return _wipe_cmd(cfg, args)
    if cmd in ("import", "documents"):
        from appliance.documents import cli as documents_cli
        return documents_cli.main(cfg, args)
    if cmd == "speakers":
        from appliance import speakers_cli
        return speakers_cli.main(cfg, args)
    if cmd == "votes":
        from appliance import votes_cli
        return votes_cli.main(cfg, args)
    if cmd == "helper":
        from appliance.helper import server
        return server.main(cfg)
    if cmd == "monitor":
        from appliance.monitor import daemon as monitor_daemon
        return monitor_daemon.main(cfg, once=args.once)
    if cmd == "daemon":
        from appliance import daemon
        return daemon.main(cfg)
    if cmd == "netconf":
        from appliance.netconf import render
        return render.main(cfg, check=args.check, wait=args.wait)
    if cmd == "fake-hostapd":
        from appliance.radio import fake
        return fake.main(args.socket, psk_file=args.psk_file, replay=args.replay)
    if cmd in ("firstboot", "setup-code", "setup"):
        from appliance import firstboot
        if cmd == "firstboot":
            return firstboot.firstboot(cfg)
        if cmd == "setup-code":
            return firstboot.setup_code_cmd(cfg)
        return firstboot.setup_cmd(cfg, args.config or config_mod.DEFAULT_PATH, args.land, from_stdin=args.stdin)
    if cmd == "set-password":
        from appliance.web import auth
        if args.role == "techniker":
            return auth.set_password_cmd(cfg, role="techniker")
        return auth.set_password_cmd(cfg)
    return 2


if __name__ == "__main__":
    sys.exit(main())
