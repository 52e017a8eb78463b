"""`sitzungsbox import | documents check`: the clerk's command line for session documents (`sitzungsbox wipe`
is in appliance/cli.py: it wipes documents or the attendance record, through the use cases)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from appliance.config import Config
from appliance.documents import DocumentError, bulk, oparl, oparl_import, service


def add_parsers(sub) -> None:
    im = sub.add_parser("import", help="Unterlagen laden: Ordner/USB-Stick, ZIP, OParl-Sitzung (URL oder Ordner)")
    im.add_argument("session", type=int)
    im.add_argument("source", help="Ordner, .zip-Datei, OParl-Meeting-URL oder Ordner mit gespeichertem OParl-JSON")
    im.add_argument("--nichtoeffentlich", dest="nonpublic", action="store_true",
                    help="alle Dateien als nichtöffentlich (Ordner/ZIP)")
    im.add_argument("--tischvorlage", dest="late", action="store_true",
                    help="eine Datei als Tischvorlage nachreichen: wer sie lesen darf, erfährt es sofort")
    dc = sub.add_parser("documents", help="Unterlagen: gespeicherte Dateien prüfen")
    dc.add_argument("action", choices=("check",))


def _is_oparl_dir(path: Path) -> bool:
    return path.is_dir() and bool(oparl_import.DirSource(path).meetings())


def main(cfg: Config, args: argparse.Namespace) -> int:
    from appliance.store import open_db

    db = open_db(cfg.db_path)
    blobs = service.blobs_for(cfg.state_dir)
    try:
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
        return _import(db, blobs, args)
    except (DocumentError, oparl.OParlError, OSError) as exc:
        from appliance.cli import fail, os_message

        problems = getattr(exc, "problems", None) or [os_message(exc) if isinstance(exc, OSError) else str(exc)]
        # One line (appliance.cli.fail): every problem, separated by "; ".
        return fail(("nichts wurde importiert: " if args.command == "import" else "") + "; ".join(problems))
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
    return 0


def _import(db, blobs, args) -> int:
    src = args.source
    if src.startswith(("http://", "https://")) or _is_oparl_dir(Path(src)):
        source = oparl_import.HttpSource() if src.startswith("http") else oparl_import.DirSource(Path(src))
        urls = [src] if src.startswith("http") else source.meetings()  # type: ignore[union-attr]
        for url in urls:
            import_id = oparl_import.begin(db, args.session, url)
            print(f"OParl: {url}", flush=True)
            try:
                report = oparl_import.import_meeting(db, blobs, args.session, source, url, import_id=import_id)
            except Exception as exc:  # the clerk's page must not show it as running forever
                oparl_import._progress(db, import_id, state="failed", problems=[f"Abbruch: {exc}"])
                raise
            oparl_import._progress(db, import_id, state="done", problems=report.problems)
            print(f"  {report.items} Tagesordnungspunkte, {report.files} neue Dateien, "
                  f"{report.already} schon vorhanden (fortgesetzt)")
            for p in report.problems:
                print(f"  übersprungen: {p}")
        return 0
    path = Path(src)
    unreadable = oparl_import.DirSource(path).problems if path.is_dir() else []
    if unreadable:  # saved OParl JSON that is broken or past a limit: say so, not "type .json not allowed"
        raise oparl.OParlError("gespeichertes OParl-JSON nicht lesbar: " + "; ".join(unreadable))
    if path.is_dir():
        result = bulk.import_dir(db, blobs, args.session, path, public=not args.nonpublic, actor="cli")
    else:
        with open(path, "rb") as fh:
            result = bulk.import_zip(db, blobs, args.session, fh, public=not args.nonpublic, actor="cli")
    print(f"{result.files} Datei(en) in {result.items} Tagesordnungspunkten importiert.")
    for s in result.skipped:
        print(f"  übersprungen: {s}")
    return 0
