"""Many files at once: a ZIP (browser or CLI) or a folder / USB stick (CLI). All or nothing: every entry is
checked first (paths, links, sizes, bombs), then stored; any refusal leaves no row and no new blob behind.

Layout: files at the top become documents of the whole session; each top folder becomes an agenda item
('TOP 3 Haushalt', 'NÖ 4 Personalsache' → non-public; rules.folder_item).
"""

from __future__ import annotations

import os
import stat
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import sqlite_utils

from appliance.documents import DocumentError, rules, service
from appliance.documents.blobs import Blobs, Stored
from appliance.store.transaction import transaction

NOISE = {"__MACOSX", ".DS_Store", "Thumbs.db", "desktop.ini"}


@dataclass(frozen=True)
class Entry:
    folder: str | None
    name: str
    size: int
    open: Callable[[], BinaryIO]


@dataclass
class Result:
    files: int = 0  # new rows (added or replacing an older version)
    items: int = 0  # new items
    file_ids: list[int] = field(default_factory=list)  # the new rows
    skipped: list[str] = field(default_factory=list)  # left out: system and hidden files
    present: list[str] = field(default_factory=list)  # "bereits vorhanden": the same bytes under the same item
    replaced: list[str] = field(default_factory=list)  # "ersetzt": same name, new bytes; one current version
    replaces: dict[int, tuple[int, ...]] = field(default_factory=dict)  # new row among file_ids → rows it replaced
    flagged: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)  # PDFs with active content (kept,
    #                                                        marked): (name, pdfcheck kinds)
    orphans: list[str] = field(default_factory=list)  # bytes of replaced rows: removed after the commit
    unprepared: list[tuple[str, str]] = field(default_factory=list)  # PDFs without a viewer's copy: (name, why)


class BulkError(DocumentError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _split(path: str) -> tuple[str | None, str]:
    parts = rules.check_path(path)
    return (parts[0] if len(parts) > 1 else None), parts[-1]


def zip_entries(zf: zipfile.ZipFile, skipped: list[str]) -> list[Entry]:
    infos = zf.infolist()
    if len(infos) > rules.MAX_ZIP_ENTRIES:
        raise BulkError([f"Das ZIP enthält {len(infos)} Einträge; höchstens {rules.MAX_ZIP_ENTRIES} sind erlaubt."])
    problems: list[str] = []
    entries: list[Entry] = []
    total = 0
    for info in infos:
        name = info.filename
        shown = name[:80].encode("unicode_escape").decode()
        if any(p in NOISE for p in name.split("/")):
            skipped.append(f"{shown} (Systemdatei)")
            continue
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            problems.append(f"„{shown}“ ist ein symbolischer Link – Links werden nicht angenommen.")
            continue
        if info.is_dir():
            try:
                rules.check_path(name)
            except DocumentError as exc:
                problems.append(str(exc))
            continue
        if info.flag_bits & 0x1:
            problems.append(f"„{shown}“ ist verschlüsselt – bitte ohne Passwort packen.")
            continue
        try:
            folder, base = _split(name)
        except DocumentError as exc:
            problems.append(str(exc))
            continue
        if info.file_size > rules.MAX_FILE:
            problems.append(f"„{shown}“ ist größer als {rules.MAX_FILE // 2**20} MB.")
            continue
        if info.file_size > 1 << 20 and info.file_size > rules.MAX_ZIP_RATIO * max(info.compress_size, 1):
            problems.append(f"„{shown}“ ist verdächtig stark gepackt (ZIP-Bombe?) und wird abgelehnt.")
            continue
        total += info.file_size
        entries.append(Entry(folder, base, info.file_size, lambda info=info: zf.open(info)))
    if total > rules.MAX_ZIP_TOTAL:
        problems.append(f"Das ZIP würde entpackt {total // 2**20} MB ergeben; höchstens "
                        f"{rules.MAX_ZIP_TOTAL // 2**20} MB sind erlaubt.")
    if problems:
        raise BulkError(problems)
    return entries


def dir_entries(root: Path, skipped: list[str]) -> list[Entry]:
    """A folder or USB stick; symbolic links are refused, not followed."""
    problems: list[str] = []
    entries: list[Entry] = []
    root = Path(root)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        rel_dir = Path(dirpath).relative_to(root)
        for d in list(dirnames):
            if (Path(dirpath) / d).is_symlink():
                problems.append(f"„{rel_dir / d}“ ist ein symbolischer Link – Links werden nicht angenommen.")
                dirnames.remove(d)
            elif d in NOISE or d.startswith("."):
                dirnames.remove(d)
        for fn in sorted(filenames):
            path = Path(dirpath) / fn
            rel = (rel_dir / fn).as_posix()
            if fn in NOISE or fn.startswith("."):
                skipped.append(f"{rel} (System- oder versteckte Datei)")
                continue
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode) or not stat.S_ISREG(st.st_mode):
                problems.append(f"„{rel}“ ist ein Link oder keine normale Datei.")
                continue
            try:
                folder, base = _split(rel)
            except DocumentError as exc:
                problems.append(str(exc))
                continue
            entries.append(Entry(folder, base, st.st_size, lambda path=path: open(path, "rb")))
            if len(entries) > rules.MAX_ZIP_ENTRIES:  # the same limit as a ZIP's; stop walking a huge stick
                raise BulkError([f"Der Ordner enthält mehr als {rules.MAX_ZIP_ENTRIES} Dateien; höchstens "
                                 f"{rules.MAX_ZIP_ENTRIES} sind erlaubt."])
    if problems:
        raise BulkError(problems)
    return entries


@dataclass
class Staged:
    """Entries whose bytes are stored (blobs) but that have no rows yet."""

    stored: list[tuple[Entry, str, rules.Kind, Stored]] = field(default_factory=list)
    new_blobs: list[str] = field(default_factory=list)
    pdf: dict[str, service.Checked] = field(default_factory=dict)  # sha256 → what the check found, the viewer's copy


def store_entries(db: sqlite_utils.Database, blobs: Blobs, entries: list[Entry]) -> Staged:
    """Check and store the bytes of every entry, outside any transaction (a big upload must not hold the write
    lock). BulkError with every problem; then no new blob is left behind."""
    staged = Staged()
    problems: list[str] = []
    try:
        for e in entries:
            try:
                with e.open() as fh:
                    name, kind, s = service.store_upload(blobs, e.name, fh, min(rules.MAX_FILE, e.size))
            except (zipfile.BadZipFile, zlib.error, EOFError):  # zipfile's words are English: ours name the entry
                problems.append(f"„{e.name}“ ist im ZIP beschädigt (Daten oder Prüfsumme falsch).")
                continue
            except NotImplementedError:  # "That compression method is not supported" (e.g. Deflate64)
                problems.append(f"„{e.name}“ ist mit einem Verfahren gepackt, das die Box nicht lesen kann – bitte "
                                "als normales ZIP packen.")
                continue
            except (DocumentError, OSError) as exc:
                problems.append(f"{e.name}: {exc}" if e.name not in str(exc) else str(exc))
                continue
            if s.new:
                staged.new_blobs.append(s.sha256)
            staged.stored.append((e, name, kind, s))
    except BaseException:  # anything unforeseen: the bytes stored so far go again, then it goes on up
        discard(db, blobs, staged)
        raise
    # Every PDF checked in one child process (documents/pdfcheck.py): one a reader cannot open is refused.
    pdfs = {s.sha256: (shown(e, name), s.path) for e, name, kind, s in staged.stored
            if kind.mime == service.PDF and s.path is not None}
    if pdfs and not problems:
        passed: dict[str, tuple[str, ...]] = {}
        for (sha, (what, _path)), res in zip(pdfs.items(), service.check_pdfs([p for _w, p in pdfs.values()]),
                                             strict=True):
            if res.ok:
                passed[sha] = res.active_content
            else:
                problems.append(f"{what}: {res.problem}")
        if not problems:  # the viewer's linearized copies, in one more child (documents/viewcopy.py)
            originals = {s.sha256: s for _e, _n, _k, s in staged.stored}
            copies = service.view_copies(blobs, [originals[sha] for sha in passed])
            for (sha, active), view in zip(passed.items(), copies, strict=True):
                staged.pdf[sha] = service.Checked(active, view.view_sha256, view.view_new, view.view_problem)
                if view.view_new and view.view_sha256:
                    staged.new_blobs.append(view.view_sha256)
    if problems:
        discard(db, blobs, staged)
        raise BulkError(problems)
    return staged


def shown(e: Entry, name: str) -> str:
    return f"{e.folder}/{name}" if e.folder else name


def write_rows(db: sqlite_utils.Database, session_id: int, staged: Staged, *, public: bool = True,
               late: bool = False, item_id: int | None = None, actor: str = "clerk",
               skipped: list[str] | None = None) -> Result:
    """The items and files of stored entries, in one transaction (nested: in the caller's). Idempotent: a
    folder finds its item again (service.find_item), the same bytes under the same item are reported as present,
    the same name with new bytes replaces the old version (service.put_file). The caller removes result.orphans
    after its commit (remove_orphans)."""
    folders: dict[str, int] = {}
    result = Result(skipped=list(skipped or []))
    # One transaction: a failure at the tenth file leaves no item, file or audit row of the first nine.
    with transaction(db):
        for e, name, kind, s in staged.stored:
            target = item_id
            if e.folder is not None:
                if e.folder not in folders:
                    number, title, item_public = rules.folder_item(e.folder)
                    found = service.find_item(db, session_id, title, number=number, public=item_public and public)
                    if found is None:
                        found = service.add_item(db, session_id, title, number=number,
                                                 public=item_public and public, actor=actor)
                        result.items += 1
                    folders[e.folder] = found
                target = folders[e.folder]
            put = service.put_file(db, session_id, name=name, stored=s, mime=kind.mime, item_id=target,
                                   public=public, late=late, actor=actor,
                                   checked=staged.pdf.get(s.sha256, service.Checked()))
            what = shown(e, name)
            if put.outcome == service.PRESENT:
                result.present.append(what)
                continue
            result.files += 1
            result.file_ids.append(put.id)
            if put.outcome == service.REPLACED:
                result.replaced.append(what)
                result.replaces[put.id] = put.replaced
                result.orphans += put.orphans
            checked = staged.pdf.get(s.sha256)
            if checked and checked.active:
                result.flagged.append((what, checked.active))
            if put.view_problem:
                result.unprepared.append((what, put.view_problem))
    return result


def discard(db: sqlite_utils.Database, blobs: Blobs, staged: Staged) -> None:
    """After a failed write: the new bytes no row refers to go again."""
    refs = service.referenced(db)
    for sha in staged.new_blobs:
        if sha not in refs:
            blobs.remove(sha)


def import_entries(db: sqlite_utils.Database, blobs: Blobs, session_id: int, entries: list[Entry], *,
                   public: bool = True, late: bool = False, item_id: int | None = None, actor: str = "clerk",
                   skipped: list[str] | None = None) -> Result:
    """Store every entry, then write the rows. item_id: put top-level files under this item."""
    staged = store_entries(db, blobs, entries)
    try:
        result = write_rows(db, session_id, staged, public=public, late=late, item_id=item_id, actor=actor,
                            skipped=skipped)
    except BaseException:
        discard(db, blobs, staged)
        raise
    service.remove_orphans(db, blobs, [*result.orphans, *staged.new_blobs])  # and copies of files already there
    return result


def import_zip(db: sqlite_utils.Database, blobs: Blobs, session_id: int, fh: BinaryIO, **kw) -> Result:
    skipped: list[str] = []
    try:
        with zipfile.ZipFile(fh) as zf:
            entries = zip_entries(zf, skipped)
            if not entries:
                raise BulkError(["Das ZIP enthält keine Dateien."])
            return import_entries(db, blobs, session_id, entries, skipped=skipped, **kw)
    except NotImplementedError as exc:  # zipfile: "That compression method is not supported" (e.g. Deflate64)
        raise BulkError(["Das ZIP ist mit einem Verfahren gepackt, das die Box nicht lesen kann – bitte als "
                         "normales ZIP packen."]) from exc
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        raise BulkError(["Die Datei ist kein lesbares ZIP (beschädigt, unvollständig oder gar kein ZIP)."]) from exc


def import_dir(db: sqlite_utils.Database, blobs: Blobs, session_id: int, root: Path, **kw) -> Result:
    skipped: list[str] = []
    entries = dir_entries(root, skipped)
    if not entries:
        raise BulkError([f"Im Ordner {root} sind keine Dateien."])
    return import_entries(db, blobs, session_id, entries, skipped=skipped, **kw)
