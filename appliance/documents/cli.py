"""`sitzungsbox import | documents …`: the clerk's command line for session documents (`sitzungsbox wipe`
is in appliance/cli.py: it wipes documents or the attendance record, through the use cases).

`documents prepare [N]` makes the viewer's copies of PDFs imported before copies were made at import
(issue 16). `documents list | rename | move | delete` are the same acts as the clerk's documents page
(usecases.documents): same rows, same audit entry, same live update of open member pages. Errors: one German line
on stderr, exit 2."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from appliance.config import Config
from appliance.documents import DocumentError, bulk, oparl, oparl_import, pdfcheck, service, viewcopy


def add_parsers(sub) -> None:
    im = sub.add_parser("import", help="Unterlagen laden: Ordner/USB-Stick, ZIP, OParl-Sitzung (URL oder Ordner)")
    im.add_argument("session", type=int)
    im.add_argument("source", help="Ordner, .zip-Datei, OParl-Meeting-URL oder Ordner mit gespeichertem OParl-JSON")
    im.add_argument("--nichtoeffentlich", dest="nonpublic", action="store_true",
                    help="alle Dateien als nichtöffentlich (Ordner/ZIP)")
    im.add_argument("--tischvorlage", dest="late", action="store_true",
                    help="eine Datei als Tischvorlage nachreichen: wer sie lesen darf, erfährt es sofort")
    im.add_argument("--server", dest="servers", action="append", default=[], metavar="HOST",
                    help="OParl: weiterer Server, von dem geladen werden darf (z. B. wenn die Dateien auf einem "
                         "anderen Server liegen); mehrfach möglich")
    im.add_argument("--uebersprungene-ok", "--skipped-ok", dest="skipped_ok", action="store_true",
                    help="OParl: Exit-Code 0, auch wenn einzelne Punkte oder Dateien übersprungen wurden")
    dc = sub.add_parser("documents", help="Unterlagen: prüfen, Importe anzeigen, einzelne Punkte und Dateien "
                                          "korrigieren")
    acts = dc.add_subparsers(dest="action", required=True, metavar="AKTION")
    acts.add_parser("check", help="gespeicherte Dateien prüfen (SHA-256)")
    op = acts.add_parser("prepare", help="PDFs, die vor der schnellen Ansicht importiert wurden, für die schnelle "
                                          "Ansicht aufbereiten (Seitenverzeichnis gebündelt; das Original bleibt)")
    op.add_argument("session", type=int, nargs="?", help="nur diese Sitzung (weglassen: alle)")
    im = acts.add_parser("imports", help="die Importe einer Sitzung")
    im.add_argument("session", type=int, nargs="?")
    ls = acts.add_parser("list", help="Tagesordnungspunkte und Dateien einer Sitzung mit ihren Nummern (IDs)")
    ls.add_argument("session", type=int)
    rn = acts.add_parser("rename", help="Titel (und Nummer) eines Punkts oder einer Datei ändern")
    _target(rn)
    rn.add_argument("title", help="der neue Titel")
    rn.add_argument("--nummer", dest="number", help="Punkt: die neue Nummer (z. B. 3 a)")
    mv = acts.add_parser("move", help="eine Datei unter einen anderen Tagesordnungspunkt legen")
    mv.add_argument("file", type=int, metavar="DATEI-ID")
    mv.add_argument("item", type=int, nargs="?", metavar="PUNKT-ID", help="weglassen: zur ganzen Sitzung")
    rm = acts.add_parser("delete", help="eine Datei oder einen Tagesordnungspunkt löschen")
    _target(rm)
    rm.add_argument("--mit-dateien", dest="with_files", action="store_true",
                    help="Punkt: auch seine Dateien löschen")


def _target(p: argparse.ArgumentParser) -> None:
    one = p.add_mutually_exclusive_group(required=True)
    one.add_argument("--datei", dest="file", type=int, metavar="ID", help="die Datei (ID aus documents list)")
    one.add_argument("--punkt", dest="item", type=int, metavar="ID", help="der Punkt (ID aus documents list)")


def _is_oparl(src: str) -> bool:
    return src.startswith(("http://", "https://")) or oparl_import.looks_like_oparl_dir(Path(src))


def main(cfg: Config, args: argparse.Namespace) -> int:
    from appliance.store import open_db

    db = open_db(cfg.db_path)
    blobs = service.blobs_for(cfg.state_dir)
    try:
        if args.command == "documents" and args.action == "imports":
            return _imports(db, args.session)
        if args.command == "documents" and args.action == "prepare":
            return _prepare(db, blobs, args.session)
        if args.command == "documents" and args.action != "check":
            return _correct(cfg, db, args)
        if args.command == "documents":
            problems = service.check(db, blobs)
            for p in problems:
                print(p)
            n = len(service.referenced(db))
            print(f"{n} Datei(en) geprüft, {len(problems)} Problem(e).")
            return 1 if any(not p.startswith("nicht verwendet") for p in problems) else 0
        if service.session_body(db, args.session) is None:
            print(f"Fehler: Sitzung {args.session} gibt es nicht.", file=sys.stderr)
            return 2
        if args.late:
            return _late(cfg, db, args)
        return _import(cfg, db, blobs, args)
    except (DocumentError, oparl.OParlError, oparl_import.FetchError) as exc:
        from appliance.cli import fail

        if args.command == "import" and _is_oparl(args.source):  # one line: what arrived stays, a rerun resumes
            return fail(f"OParl-Import abgebrochen: {exc}")
        if args.command == "documents":  # one line
            return fail(str(exc))
        problems = getattr(exc, "problems", None) or [str(exc)]
        # One line (appliance.cli.fail): every problem, separated by "; ".
        return fail(("nichts wurde importiert: " if args.command == "import" else "") + "; ".join(problems))
    except OSError as exc:
        from appliance.cli import fail, os_message

        return fail(os_message(exc))
    finally:
        db.conn.close()


def _late(cfg: Config, db, args) -> int:
    """One file as a Tischvorlage: the same act as the web upload with "Tischvorlage" ticked."""
    from appliance.usecases import documents as acts

    path = Path(args.source)
    if not path.is_file():
        raise DocumentError(f"{path}: eine Tischvorlage ist eine einzelne Datei.")
    entry = bulk.Entry(None, path.name, path.stat().st_size, lambda: open(path, "rb"))
    result = acts.announce_late_document(cfg, db, args.session, [entry], actor="cli", public=not args.nonpublic)
    print(f"{result.files} Tischvorlage(n) hinzugefügt.")
    _report(result)
    return 0


def _report(result: bulk.Result) -> None:
    """What an import did besides adding (the web page flashes the same lines)."""
    for s in result.present:
        print(f"  bereits vorhanden: {s}")
    for s in result.replaced:
        print(f"  ersetzt: {s}")
    for s, kinds in result.flagged:
        print(f"  Achtung, aktive Inhalte ({', '.join(pdfcheck.LABELS.get(k, k) for k in kinds)}) – "
              f"gespeichert und markiert: {s}")
    for s, why in result.unprepared:
        print(f"  {viewcopy.sentence(s, why)}")


def _import(cfg: Config, db, blobs, args) -> int:
    src = args.source
    if _is_oparl(src):
        return _oparl(cfg, db, args)
    path = Path(src)
    if path.is_dir():
        result = bulk.import_dir(db, blobs, args.session, path, public=not args.nonpublic, actor="cli")
    else:
        with open(path, "rb") as fh:
            result = bulk.import_zip(db, blobs, args.session, fh, public=not args.nonpublic, actor="cli")
    print(f"{result.files} Datei(en) in {result.items} Tagesordnungspunkten importiert.")
    for s in result.skipped:
        print(f"  übersprungen: {s}")
    _report(result)
    return 0


def _oparl(cfg: Config, db, args) -> int:
    """The same act as the clerk page's OParl form. Exit 0: everything arrived; 1: something was skipped
    (listed by name and reason; --uebersprungene-ok makes it 0); 2: the import could not go on."""
    from appliance.usecases import documents as acts

    result = acts.import_oparl(cfg, db, args.session, args.source, "cli", extra_hosts=args.servers)
    for report in result.reports:
        print(f"OParl: {report.meeting}")
        for line in report.lines():
            print(f"  {line}")
        for line in report.problems:
            print(f"  übersprungen: {line}")
    if result.complete or args.skipped_ok:
        return 0
    print("Nicht alles wurde übernommen (siehe „übersprungen“). Mit --uebersprungene-ok ist das kein Fehler.",
          file=sys.stderr)
    return 1


def _prepare(db, blobs, session_id: int | None) -> int:
    """The viewer's copies of PDFs imported before issue 16 (service.prepare_views). Exit 1: some could
    not be prepared (named; they are served as they came)."""
    if session_id is not None and service.session_body(db, session_id) is None:
        raise DocumentError(f"Sitzung {session_id} gibt es nicht.")
    done = service.prepare_views(db, blobs, session_id)
    for name, why in done.problems:
        print(f"  {viewcopy.sentence(name, why)}")
    print(f"{done.made} PDF-Datei(en) für die schnelle Ansicht aufbereitet, {done.already} waren es schon, "
          f"{len(done.problems)} nicht aufbereitet.")
    return 1 if done.problems else 0


def _imports(db, session_id: int | None) -> int:
    """The import jobs of a session, newest first; jobs whose process died are marked failed first."""
    from appliance.documents import jobs

    if session_id is None:
        print("Fehler: bitte die Sitzung angeben: sitzungsbox documents imports N", file=sys.stderr)
        return 2
    jobs.reap(db, session_id)
    states = {"running": "läuft", "done": "fertig", "failed": "abgebrochen"}
    for job in jobs.recent(db, session_id, limit=20):
        print(f"{job['id']}: {job['source']}: {states.get(job['state'], job['state'])}, "
              f"{job['done']} von {job['total']} Dateien")
        for p in job["problems"]:
            print(f"  {p}")
    return 0


def _correct(cfg: Config, db, args) -> int:
    """list, rename, move, delete: one use case each; a refusal is one German line (raised as DocumentError)."""
    from appliance.usecases import documents as acts

    if args.action == "list":
        if service.session_body(db, args.session) is None:
            raise DocumentError(f"Sitzung {args.session} gibt es nicht.")
        for entry in service.agenda(db, args.session):
            it = entry.item
            if it is not None:
                hidden = "" if it.public else " (nichtöffentlich)"
                print(f"Punkt {it.id}: {f'{it.number} ' if it.number else ''}{it.title}{hidden}")
            else:
                print("Zur ganzen Sitzung:")
            for f in entry.files:
                hidden = "" if f.public else " (nichtöffentlich)"
                print(f"  Datei {f.id}: {f.title} [{f.name}]{hidden}")
        return 0
    if args.action == "rename" and args.file is not None:
        f = service.get_file(db, args.file)
        if f is None:
            raise DocumentError(f"Datei {args.file} gibt es nicht.")
        acts.edit_file(db, f.id, "cli", title=args.title, public=f.public)
        print(f"Datei {f.id} heißt jetzt „{' '.join(args.title.split())}“.")
    elif args.action == "rename":
        it = service.get_item(db, args.item)
        if it is None:
            raise DocumentError(f"Tagesordnungspunkt {args.item} gibt es nicht.")
        new = acts.edit_item(db, it.id, "cli", title=args.title,
                             number=it.number if args.number is None else args.number, public=it.public)
        print(f"Punkt {it.id} heißt jetzt „{f'{new.number} ' if new.number else ''}{new.title}“.")
    elif args.action == "move":
        acts.move_file(db, args.file, args.item, "cli")
        print(f"Datei {args.file} verschoben.")
    elif args.file is not None:
        f = acts.delete_file(cfg, db, args.file, "cli")
        print(f"Datei {f.id} „{f.title}“ gelöscht.")
    else:
        it, gone = acts.delete_item(cfg, db, args.item, "cli", with_files=args.with_files)
        print(f"Punkt {it.id} „{it.title}“ gelöscht" + (f", mit {len(gone)} Datei(en)." if gone else "."))
    return 0
