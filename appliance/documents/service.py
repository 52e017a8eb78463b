"""Agenda items and files of a session: the only writer of the doc_* tables. Short transactions; the bytes
go to blobs first, the row after, so a row never points at a missing file."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import sqlite_utils

from appliance.documents import DocumentError, pdfcheck, policy, rules, viewcopy
from appliance.documents.blobs import Blobs, Stored
from appliance.rules.viewer import Viewer
from appliance.store.db import audit, now
from appliance.store.transaction import transaction

HEAD = 8192
PDF = "application/pdf"
# What put_file did with one file: a new row; nothing (the same bytes are already under this item); a new row
# that replaced the row(s) of the same name under this item (one current version).
ADDED, PRESENT, REPLACED = "added", "present", "replaced"


@dataclass(frozen=True)
class Put:
    id: int  # the new row, or for PRESENT the row that already holds these bytes
    outcome: str  # ADDED | PRESENT | REPLACED
    replaced: tuple[int, ...] = ()  # REPLACED: the ids of the rows this one replaced (now gone)
    orphans: tuple[str, ...] = ()  # hashes of replaced rows no row uses any more: remove after the commit
    view_problem: str | None = None  # German: why the viewer reads the original (no viewer's copy)


@dataclass(frozen=True)
class Checked:
    """What the entry checks made of one stored PDF: pdfcheck's findings and the viewer's copy (issue 16)."""

    active: tuple[str, ...] = ()  # pdfcheck's names of active content
    view_sha256: str | None = None  # the viewer's copy (the original's hash if it needs none); None: original
    view_new: bool = False  # the copy's bytes are new on disk: they go again if no row comes to use them
    view_problem: str | None = None  # German: why there is no copy (reported to the clerk; the original is served)


@dataclass(frozen=True)
class Item:
    id: int
    session_id: int
    number: str
    title: str
    public: bool
    position: int


@dataclass(frozen=True)
class File:
    id: int
    session_id: int
    item_id: int | None
    name: str
    title: str
    sha256: str
    size: int
    mime: str
    public: bool
    late: bool
    added_at: str
    item_public: bool = True
    pdf_active: tuple[str, ...] = ()  # what pdfcheck found (JavaScript, launch, …): kept, marked for the clerk
    position: int = 0  # order among the files of its item (then id)
    view_sha256: str | None = None  # the blob the viewer reads (its copy); None: the original (viewer_copy)
    optimised_sha256: str | None = None  # the clerk's smaller copy for the hall (issue 16), beside the original

    @property
    def effective_public(self) -> bool:
        return self.public and self.item_public


@dataclass(frozen=True)
class AgendaEntry:
    item: Item | None  # None: documents of the whole session (invitation, …)
    files: list[File]


def blobs_for(state_dir: Path) -> Blobs:
    return Blobs(Path(state_dir) / "documents")


def _rows(db: sqlite_utils.Database, sql: str, params: list | tuple = ()) -> list[dict]:
    cur = db.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _item(r: dict) -> Item:
    return Item(r["id"], r["session_id"], r["number"], r["title"], bool(r["public"]), r["position"])


FILE_SQL = """SELECT f.*, COALESCE(i.public, 1) AS item_public FROM doc_files f
              LEFT JOIN doc_items i ON i.id = f.item_id"""


def _file(r: dict) -> File:
    return File(r["id"], r["session_id"], r["item_id"], r["name"], r["title"], r["sha256"], r["size"], r["mime"],
                bool(r["public"]), bool(r["late"]), r["added_at"], bool(r["item_public"]),
                tuple(k for k in (r.get("pdf_active") or "").split(",") if k), r.get("position") or 0,
                r.get("view_sha256") or None, r.get("optimised_sha256"))


def viewer_copy(f: File) -> str:
    """The blob (SHA-256) the in-page PDF viewer reads of this file, range by range: the clerk's optimised copy
    when there is one (smaller, see optimised_copy), else the viewer's copy made at import (view_sha256: page
    dictionaries packed together, see documents/viewcopy), else the original. Downloads and the ZIP never ask
    this: they serve the original bytes (f.sha256), which OParl's checksums describe."""
    return optimised_copy(f) or f.view_sha256 or f.sha256


def hashes(f: File) -> list[str]:
    """Every blob of a file: the original, its viewer's copy and the clerk's optimised copy (all go when no row
    uses them)."""
    return list(dict.fromkeys(filter(None, [f.sha256, f.view_sha256, f.optimised_sha256])))


def session_body(db: sqlite_utils.Database, session_id: int) -> str | None:
    row = db.execute("SELECT body FROM sessions WHERE id = ?", [session_id]).fetchone()
    return row[0] if row else None


# --- writing ------------------------------------------------------------------------------------


def add_item(db: sqlite_utils.Database, session_id: int, title: str, *, number: str = "", public: bool = True,
             external_id: str | None = None, actor: str = "clerk") -> int:
    title = " ".join(title.split())
    if not title:
        raise DocumentError("Der Tagesordnungspunkt braucht einen Titel.")
    if len(title) > 500:
        raise DocumentError("Der Titel ist zu lang (höchstens 500 Zeichen).")
    if session_body(db, session_id) is None:
        raise DocumentError(f"Sitzung {session_id} gibt es nicht.")
    with transaction(db):
        if external_id:
            row = db.execute("SELECT id FROM doc_items WHERE session_id = ? AND external_id = ?",
                             [session_id, external_id]).fetchone()
            if row:
                return row[0]
        (pos,) = db.execute("SELECT COALESCE(MAX(position), 0) + 1 FROM doc_items WHERE session_id = ?",
                            [session_id]).fetchone()
        cur = db.execute(
            "INSERT INTO doc_items(session_id, number, title, public, position, external_id, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [session_id, " ".join(number.split())[:20], title, int(public), pos, external_id, now()])
        audit(db, actor, "documents.item", f"session={session_id} item={cur.lastrowid}")
    return cur.lastrowid


def find_item(db: sqlite_utils.Database, session_id: int, title: str, *, number: str = "",
              public: bool = True) -> int | None:
    """The item a ZIP/folder import made (or a clerk typed) with this number, title and visibility: a re-import
    puts its files there again instead of making a second item. A different visibility is a different item
    (a folder now marked non-public must not land its files under a public item)."""
    row = db.execute("SELECT id FROM doc_items WHERE session_id = ? AND number = ? AND title = ? AND public = ?"
                     " ORDER BY id LIMIT 1", [session_id, " ".join(number.split())[:20], " ".join(title.split()),
                                              int(public)]).fetchone()
    return row[0] if row else None


def store_upload(blobs: Blobs, name: str, fh: BinaryIO, max_size: int = rules.MAX_FILE,
                 expect: dict[str, str] | None = None) -> tuple[str, rules.Kind, Stored]:
    """Check name and type from the first bytes, then store the stream. Raises DocumentError; on any refusal
    nothing is stored."""
    name = rules.check_name(name)
    head = fh.read(HEAD)
    kind = rules.kind_of(name, head)
    stored = blobs.put_chunks(itertools.chain([head], iter(lambda: fh.read(1 << 20), b"")), max_size,
                              expect=expect)
    return name, kind, stored


def check_pdfs(paths: list[Path]) -> list[pdfcheck.PdfCheck]:
    """The PDF check of stored files, in one child process (pdfcheck.check_files: bounded in time and memory,
    never in the web worker's own interpreter)."""
    return pdfcheck.check_files(paths)


def view_copies(blobs: Blobs, originals: list[Stored]) -> list[Checked]:
    """The viewer's copies of checked PDFs, in one child process (viewcopy.prepare_files: Debian's
    qpdf, bounded in time and memory), each stored as a blob of its own. Only view_* fields are set; a PDF qpdf
    cannot prepare keeps its original for the viewer and a German view_problem for the clerk."""
    paths = [s.path for s in originals if s.path is not None]
    if len(paths) != len(originals):
        raise ValueError("view_copies: stored files only")
    out: list[Checked] = []
    for s, res in zip(originals, viewcopy.prepare_files(paths, blobs.root / "tmp"), strict=True):
        if res.already:
            out.append(Checked(view_sha256=s.sha256))
        elif res.copy is not None:
            copy = blobs.adopt(res.copy)
            out.append(Checked(view_sha256=copy.sha256, view_new=copy.new))
        else:
            out.append(Checked(view_problem=res.problem))
    return out


def _checked(stored: Stored, mime: str, pdf_active: tuple[str, ...] | None) -> Checked | None:
    """Every PDF row is checked: by the caller for a whole batch (bulk), else here (OParl, single files).
    A PDF a reader cannot open is refused, and its new bytes go again; one that passes gets its viewer's copy.
    None: the caller checked (pdf_active), or nothing to check."""
    if pdf_active is not None or mime != PDF or stored.path is None:
        return None
    result = check_pdfs([stored.path])[0]
    if not result.ok:
        if stored.new:
            stored.path.unlink(missing_ok=True)
        raise DocumentError(result.problem or pdfcheck.BROKEN)
    view = view_copies(Blobs(stored.path.parent.parent), [stored])[0]  # the store the bytes are in: <root>/xx/sha
    return Checked(result.active_content, view.view_sha256, view.view_new, view.view_problem)


def put_file(db: sqlite_utils.Database, session_id: int, *, name: str, stored: Stored, mime: str,
             item_id: int | None = None, title: str = "", public: bool = True, late: bool = False,
             external_id: str | None = None, pdf_active: tuple[str, ...] | None = None,
             actor: str = "clerk", replaces: int | None = None, checked: Checked | None = None) -> Put:
    """One file under an item (None: the whole session). Idempotent: the same bytes under the same item are not
    stored again (PRESENT, with the row that has them). The same name with other bytes replaces the old row
    (REPLACED): members see one current version; the download log keeps the old row's id and title (who read
    the old version). OParl files (external_id) are found by that id only and never replaced by name.
    pdf_active / checked: the caller's pdfcheck result (checked: with the viewer's copy, service.view_copies);
    neither: checked and given the viewer's copy here (outside the transaction when not nested; a copy no row came
    to use goes again). A PDF row gets the viewer's copy as view_sha256 (PRESENT: a row without one gets it now).
    replaces: a row of this item the clerk replaces by this file whatever its name (usecases.documents.replace_file).
    A replacement takes the old row's place in the order, and members who had opened the old version see
    „neue Fassung“ (doc_reads.stale) until they open the new one."""
    own = None if checked is not None else _checked(stored, mime, pdf_active)
    checked = checked or own or Checked(pdf_active or ())
    try:
        with transaction(db):
            return _put_rows(db, session_id, name=name, stored=stored, mime=mime, item_id=item_id, title=title,
                             public=public, late=late, external_id=external_id, checked=checked, actor=actor,
                             replaces=replaces)
    finally:
        if own is not None and own.view_new and own.view_sha256:
            remove_orphans(db, Blobs(stored.path.parent.parent), [own.view_sha256])  # type: ignore[union-attr]


def _put_rows(db: sqlite_utils.Database, session_id: int, *, name: str, stored: Stored, mime: str,
              item_id: int | None, title: str, public: bool, late: bool, external_id: str | None, checked: Checked,
              actor: str, replaces: int | None) -> Put:
    """put_file's rows, inside its transaction."""
    active, view, problem = checked.active, checked.view_sha256, checked.view_problem
    if item_id is not None:
        row = db.execute("SELECT session_id FROM doc_items WHERE id = ?", [item_id]).fetchone()
        if row is None or row[0] != session_id:
            raise DocumentError("Diesen Tagesordnungspunkt gibt es in der Sitzung nicht.")
    if external_id:
        row = db.execute("SELECT id FROM doc_files WHERE session_id = ? AND external_id = ?",
                         [session_id, external_id]).fetchone()
        if row:
            return Put(row[0], PRESENT)
        old: list[tuple[int, str, str | None]] = []
    else:
        row = db.execute("SELECT id, view_sha256 FROM doc_files WHERE session_id = ? AND item_id IS ? AND"
                         " sha256 = ? ORDER BY id LIMIT 1", [session_id, item_id, stored.sha256]).fetchone()
        if row:
            if view and row[1] is None:  # imported before copies were made: the same bytes' copy now
                db.execute("UPDATE doc_files SET view_sha256 = ? WHERE sha256 = ? AND view_sha256 IS NULL",
                           [view, stored.sha256])
            return Put(row[0], PRESENT)
        old = [(r[0], r[1], r[2]) for r in db.execute(
            "SELECT id, sha256, view_sha256 FROM doc_files WHERE session_id = ? AND item_id IS ? AND (name = ?"
            " AND external_id IS NULL OR id IS ?) ORDER BY id", [session_id, item_id, name, replaces])]
    if replaces is not None and replaces not in {i for i, _, _ in old}:
        raise DocumentError("Diese Datei gibt es unter diesem Tagesordnungspunkt nicht.")
    (pos,) = db.execute(
        f"SELECT {'MIN(position)' if old else 'COALESCE(MAX(position), 0) + 1'} FROM doc_files"  # noqa: S608
        f" WHERE {'id IN (' + ','.join('?' * len(old)) + ')' if old else 'session_id = ? AND item_id IS ?'}",
        [i for i, _, _ in old] if old else [session_id, item_id]).fetchone()
    cur = db.execute(
        "INSERT INTO doc_files(session_id, item_id, name, title, sha256, size, mime, public, late, external_id,"
        " pdf_active, added_at, position, view_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [session_id, item_id, name, " ".join((title or rules.title_from_name(name)).split())[:500],
         stored.sha256, stored.size, mime, int(public), int(late), external_id, ",".join(active), now(), pos,
         view])
    new_id = cur.lastrowid
    if not old:
        audit(db, actor, "documents.file", f"session={session_id} file={new_id} late={int(late)}"
                                           + (f" pdf_active={','.join(active)}" if active else ""))
        return Put(new_id, ADDED, view_problem=problem)
    db.execute(f"DELETE FROM doc_files WHERE id IN ({','.join('?' * len(old))})",  # noqa: S608 - placeholders
               [i for i, _, _ in old])
    _reads_to_new_version(db, [i for i, _, _ in old], new_id)
    audit(db, actor, "documents.replace", f"session={session_id} file={new_id} late={int(late)} replaced="
                                          + ",".join(str(i) for i, _, _ in old)
                                          + (f" pdf_active={','.join(active)}" if active else ""))
    gone = {sha for _, orig, copy in old for sha in (orig, copy) if sha and not db.execute(
        "SELECT 1 FROM doc_files WHERE sha256 = ? OR view_sha256 = ? LIMIT 1", [sha, sha]).fetchone()}
    return Put(new_id, REPLACED, tuple(i for i, _, _ in old), tuple(sorted(gone)), problem)


def _reads_to_new_version(db: sqlite_utils.Database, old_ids: list[int], new_id: int) -> None:
    """Who had opened an old version now has an unread new one (stale): the „neue Fassung“ badge."""
    marks = ",".join("?" * len(old_ids))
    db.execute(f"UPDATE OR REPLACE doc_reads SET file_id = ?, stale = 1 WHERE file_id IN ({marks})",  # noqa: S608
               [new_id, *old_ids])


def pdf_check(stored: Stored, mime: str) -> Checked:
    """put_file's PDF check and viewer's copy, for a caller that stores outside its transaction (both may take
    seconds); pass the result as put_file(checked=). The copy (view_new) is the caller's to remove on failure."""
    return _checked(stored, mime, None) or Checked()


def edit_item(db: sqlite_utils.Database, item_id: int, *, title: str, number: str, public: bool) -> Item:
    """Row write (inside the caller's transaction): an item's title, number and visibility."""
    title = " ".join(title.split())
    if not title:
        raise DocumentError("Der Tagesordnungspunkt braucht einen Titel.")
    if len(title) > 500:
        raise DocumentError("Der Titel ist zu lang (höchstens 500 Zeichen).")
    if len(" ".join(number.split())) > 20:
        raise DocumentError("Die Nummer ist zu lang (höchstens 20 Zeichen).")
    old = get_item(db, item_id)
    if old is None:
        raise DocumentError("Diesen Tagesordnungspunkt gibt es nicht.")
    db.execute("UPDATE doc_items SET title = ?, number = ?, public = ? WHERE id = ?",
               [title, " ".join(number.split()), int(public), item_id])
    return old


def edit_file(db: sqlite_utils.Database, file_id: int, *, title: str, public: bool) -> File:
    """Row write (inside the caller's transaction): a file's title and visibility. Returns the row before."""
    title = " ".join(title.split())
    if not title:
        raise DocumentError("Die Datei braucht einen Titel.")
    if len(title) > 500:
        raise DocumentError("Der Titel ist zu lang (höchstens 500 Zeichen).")
    old = get_file(db, file_id)
    if old is None:
        raise DocumentError("Diese Datei gibt es nicht.")
    db.execute("UPDATE doc_files SET title = ?, public = ? WHERE id = ?", [title, int(public), file_id])
    return old


def move_file(db: sqlite_utils.Database, file_id: int, item_id: int | None) -> File:
    """Row write: the file goes to the end of another item (None: the whole session). Returns the row before."""
    f = get_file(db, file_id)
    if f is None:
        raise DocumentError("Diese Datei gibt es nicht.")
    if item_id is not None:
        target = get_item(db, item_id)
        if target is None or target.session_id != f.session_id:
            raise DocumentError("Diesen Tagesordnungspunkt gibt es in der Sitzung nicht.")
    if item_id == f.item_id:
        raise DocumentError("Die Datei liegt schon unter diesem Tagesordnungspunkt.")
    (pos,) = db.execute("SELECT COALESCE(MAX(position), 0) + 1 FROM doc_files WHERE session_id = ? AND item_id IS ?",
                        [f.session_id, item_id]).fetchone()
    db.execute("UPDATE doc_files SET item_id = ?, position = ? WHERE id = ?", [item_id, pos, file_id])
    return f


def shift(db: sqlite_utils.Database, table: str, row_id: int, step: int) -> bool:
    """Row write: move an item (table doc_items) or a file (doc_files, among its item's files) `step` places
    (-1 up, +1 down; clamped). The list is renumbered 1..n. False: it is already first/last."""
    if table == "doc_items":
        row = db.execute("SELECT session_id FROM doc_items WHERE id = ?", [row_id]).fetchone()
        if row is None:
            raise DocumentError("Diesen Tagesordnungspunkt gibt es nicht.")
        ids = [r[0] for r in db.execute("SELECT id FROM doc_items WHERE session_id = ? ORDER BY position, id", row)]
    elif table == "doc_files":
        row = db.execute("SELECT session_id, item_id FROM doc_files WHERE id = ?", [row_id]).fetchone()
        if row is None:
            raise DocumentError("Diese Datei gibt es nicht.")
        ids = [r[0] for r in db.execute("SELECT id FROM doc_files WHERE session_id = ? AND item_id IS ?"
                                        " ORDER BY position, id", row)]
    else:
        raise ValueError(table)
    at = ids.index(row_id)
    to = max(0, min(len(ids) - 1, at + step))
    if to == at:
        return False
    ids.insert(to, ids.pop(at))
    for pos, i in enumerate(ids, 1):
        db.execute(f"UPDATE {table} SET position = ? WHERE id = ? AND position IS NOT ?",  # noqa: S608 - fixed
                   [pos, i, pos])
    return True


def delete_file(db: sqlite_utils.Database, file_id: int) -> File:
    """Row write: one file (and who had opened it). Its bytes go after the commit if no row uses them."""
    f = get_file(db, file_id)
    if f is None:
        raise DocumentError("Diese Datei gibt es nicht (mehr).")
    db.execute("DELETE FROM doc_reads WHERE file_id = ?", [file_id])
    db.execute("DELETE FROM doc_files WHERE id = ?", [file_id])
    return f


def delete_item(db: sqlite_utils.Database, item_id: int, *, with_files: bool) -> tuple[Item, list[File]]:
    """Row write: an item; with its files only if with_files (else refused while it has any)."""
    item = get_item(db, item_id)
    if item is None:
        raise DocumentError("Diesen Tagesordnungspunkt gibt es nicht (mehr).")
    gone = [f for f in files(db, item.session_id) if f.item_id == item_id]
    if gone and not with_files:
        raise DocumentError(f"Der Tagesordnungspunkt enthält noch {len(gone)} Datei(en): bitte „mit Dateien“ "
                            "bestätigen oder die Dateien vorher verschieben.")
    for f in gone:
        delete_file(db, f.id)
    db.execute("DELETE FROM doc_items WHERE id = ?", [item_id])
    return item, gone


def add_file(db: sqlite_utils.Database, session_id: int, *, name: str, stored: Stored, mime: str,
             item_id: int | None = None, title: str = "", public: bool = True, late: bool = False,
             external_id: str | None = None, pdf_active: tuple[str, ...] | None = None,
             actor: str = "clerk") -> int:
    """put_file, for callers that need only the row id (a replaced file's old bytes are left to blobs.gc)."""
    return put_file(db, session_id, name=name, stored=stored, mime=mime, item_id=item_id, title=title,
                    public=public, late=late, external_id=external_id, pdf_active=pdf_active, actor=actor).id


def remove_orphans(db: sqlite_utils.Database, blobs: Blobs, shas: list[str] | tuple[str, ...]) -> int:
    """After a commit that replaced files: the old bytes no row uses any more go (bytes freed)."""
    if not shas:
        return 0
    still = referenced(db)
    return sum(blobs.remove(sha) for sha in set(shas) if sha not in still)


# --- reading ------------------------------------------------------------------------------------


def get_item(db: sqlite_utils.Database, item_id: int) -> Item | None:
    rows = _rows(db, "SELECT * FROM doc_items WHERE id = ?", [item_id])
    return _item(rows[0]) if rows else None


def items(db: sqlite_utils.Database, session_id: int) -> list[Item]:
    return [_item(r) for r in _rows(db, "SELECT * FROM doc_items WHERE session_id = ? ORDER BY position, id",
                                     [session_id])]


def files(db: sqlite_utils.Database, session_id: int) -> list[File]:
    return [_file(r) for r in _rows(db, FILE_SQL + " WHERE f.session_id = ? ORDER BY f.id", [session_id])]


def get_file(db: sqlite_utils.Database, file_id: int) -> File | None:
    rows = _rows(db, FILE_SQL + " WHERE f.id = ?", [file_id])
    return _file(rows[0]) if rows else None


def agenda(db: sqlite_utils.Database, session_id: int) -> list[AgendaEntry]:
    by_item: dict[int | None, list[File]] = {}
    for f in sorted(files(db, session_id), key=lambda f: (f.position, f.id)):
        by_item.setdefault(f.item_id, []).append(f)
    out = [AgendaEntry(None, by_item[None])] if by_item.get(None) else []
    out += [AgendaEntry(i, by_item.get(i.id, [])) for i in items(db, session_id)]
    return out


def visible_agenda(db: sqlite_utils.Database, viewer: Viewer, session_id: int) -> list[AgendaEntry]:
    """The agenda as this viewer may see it: non-public items vanish entirely (not even their titles)."""
    body = session_body(db, session_id) or ""
    out = []
    for entry in agenda(db, session_id):
        item_public = entry.item.public if entry.item else True
        if not policy.may_read(viewer, session_id, body, item_public=item_public):
            continue
        out.append(AgendaEntry(entry.item, [f for f in entry.files if policy.may_read(
            viewer, session_id, body, item_public=f.item_public, file_public=f.public)]))
    return out


def readable(db: sqlite_utils.Database, viewer: Viewer, file_id: int) -> File | None:
    """The file if this viewer may read it; None both for 'missing' and 'refused' decisions' callers
    that must not tell them apart use this."""
    f = get_file(db, file_id)
    if f is None:
        return None
    body = session_body(db, f.session_id) or ""
    ok = policy.may_read(viewer, f.session_id, body, item_public=f.item_public, file_public=f.public)
    return f if ok else None


def visible_files(db: sqlite_utils.Database, viewer: Viewer, session_id: int) -> list[File]:
    return [f for e in visible_agenda(db, viewer, session_id) for f in e.files]


def search(db: sqlite_utils.Database, viewer: Viewer, session_id: int, query: str) -> list[File]:
    """Title search (case-insensitive, every word must occur in title, name or the item's title)."""
    words = [w.casefold() for w in query.split()][:8]
    if not words:
        return []
    titles = {i.id: f"{i.number} {i.title}" for i in items(db, session_id)}
    hits = []
    for f in visible_files(db, viewer, session_id):
        text = f"{f.title} {f.name} {titles.get(f.item_id, '')}".casefold()
        if all(w in text for w in words):
            hits.append(f)
    return hits


def log_download(db: sqlite_utils.Database, viewer: Viewer, f: File, via: str) -> None:
    """Every non-public read is recorded for the clerk (who, when); public reads are not. A member's read of any
    file is remembered in doc_reads (for „neue Fassung“ after a replacement; shown to nobody)."""
    member = viewer.member.id if viewer.is_member and viewer.member else None
    if f.effective_public and member is None:
        return
    with transaction(db):
        if member is not None:
            db.execute("INSERT INTO doc_reads(session_id, member_id, file_id, stale, at) VALUES (?, ?, ?, 0, ?)"
                       " ON CONFLICT(member_id, file_id) DO UPDATE SET stale = 0, at = excluded.at",
                       [f.session_id, member, f.id, now()])
        if f.effective_public:
            return
        db.execute("INSERT INTO doc_downloads(session_id, file_id, file_title, who, member_id, via, at)"
                   " VALUES (?, ?, ?, ?, ?, ?, ?)",
                   [f.session_id, f.id, f.title, policy.who(viewer),
                    viewer.member.id if viewer.member else None, via, now()])


def new_versions(db: sqlite_utils.Database, viewer: Viewer, session_id: int) -> set[int]:
    """The files of which this member opened an earlier version and not yet this one („neue Fassung“)."""
    if not (viewer.is_member and viewer.member):
        return set()
    return {r[0] for r in db.execute("SELECT file_id FROM doc_reads WHERE session_id = ? AND member_id = ?"
                                     " AND stale = 1", [session_id, viewer.member.id])}


def downloads(db: sqlite_utils.Database, session_id: int, limit: int = 500) -> list[dict]:
    return _rows(db, "SELECT * FROM doc_downloads WHERE session_id = ? ORDER BY id DESC LIMIT ?",
                 [session_id, limit])


def disk_use(db: sqlite_utils.Database) -> dict[int, int]:
    """Bytes per session (each distinct file counted once per session)."""
    return {r["session_id"]: r["n"] for r in _rows(
        db, "SELECT session_id, SUM(size) AS n FROM (SELECT DISTINCT session_id, sha256, size FROM doc_files)"
            " GROUP BY session_id")}


def referenced(db: sqlite_utils.Database) -> set[str]:
    """Every blob a row uses: originals and the viewer's copies."""
    return {r[0] for r in db.execute(
        "SELECT sha256 FROM doc_files UNION SELECT view_sha256 FROM doc_files WHERE view_sha256 IS NOT NULL"
        " UNION SELECT optimised_sha256 FROM doc_files WHERE optimised_sha256 IS NOT NULL").fetchall()}


# --- the viewer's copies of files imported before them (issue 16) -----------------------------------------


@dataclass
class Prepared:
    made: int = 0  # originals that got a viewer's copy
    already: int = 0  # originals whose page dictionaries lie together already
    problems: list[tuple[str, str]] = field(default_factory=list)  # (file name, why): served as they are


def without_view(db: sqlite_utils.Database, session_id: int | None = None) -> list[tuple[str, str]]:
    """(sha256, a name) of the PDFs whose rows have no viewer's copy yet, oldest first."""
    return [(r[0], r[1]) for r in db.execute(
        "SELECT sha256, MIN(name) FROM doc_files WHERE mime = ? AND view_sha256 IS NULL AND (? IS NULL OR"
        " session_id = ?) GROUP BY sha256 ORDER BY MIN(id)", [PDF, session_id, session_id])]


def prepare_views(db: sqlite_utils.Database, blobs: Blobs, session_id: int | None = None, *,
             batch: int = 20) -> Prepared:
    """The viewer's copies of PDFs imported before copies were made (`sitzungsbox documents prepare`), a batch per
    child process. Each original's rows get their copy in one statement; a file qpdf cannot prepare stays as it is
    (NULL: the viewer reads the original) and is named with the reason. Run again, it tries those again."""
    done = Prepared()
    todo = [(sha, name) for sha, name in without_view(db, session_id) if blobs.has(sha)]
    for start in range(0, len(todo), batch):
        part = todo[start:start + batch]
        made: list[str] = []
        for (sha, name), view in zip(part, view_copies(blobs, [Stored(sha, 0, False, blobs.path(sha))
                                                               for sha, _ in part]), strict=True):
            if view.view_sha256 is None:
                done.problems.append((name, view.view_problem or "unbekannter Fehler"))
                continue
            db.execute("UPDATE doc_files SET view_sha256 = ? WHERE sha256 = ? AND view_sha256 IS NULL",
                       [view.view_sha256, sha])
            if view.view_sha256 == sha:
                done.already += 1
            else:
                done.made += 1
                made.append(view.view_sha256)
        remove_orphans(db, blobs, made)  # rows deleted meanwhile: their copy goes again
    return done

def optimised_copy(f: File) -> str | None:
    """The hash of the file's optimised copy (smaller, for the viewer in the hall), or None: read the original.
    The original stays what downloads, ZIPs and checksums serve."""
    return f.optimised_sha256


def set_optimised(db: sqlite_utils.Database, f: File, sha256: str | None) -> bool:
    """Row write: the file's optimised copy, if the file still holds the bytes the copy was made from."""
    return db.execute("UPDATE doc_files SET optimised_sha256 = ? WHERE id = ? AND sha256 = ?",
                      [sha256, f.id, f.sha256]).rowcount == 1


# --- wiping and checking ------------------------------------------------------------------------


def delete_rows(db: sqlite_utils.Database, session_id: int, *, nonpublic_only: bool) -> tuple[int, set[str]]:
    """Rows only: the session's non-public files (and non-public items), or all its documents and imports.
    Returns (files removed, their hashes); the caller (usecases.documents.wipe_documents) removes the bytes
    no other session uses after its commit."""
    where = _wipe_where(nonpublic_only)
    with transaction(db):
        shas = {sha for r in db.execute(
            f"SELECT sha256, view_sha256, optimised_sha256 FROM doc_files WHERE {where}",  # noqa: S608
            [session_id, session_id]) for sha in r if sha}
        removed = db.execute(f"DELETE FROM doc_files WHERE {where}",  # noqa: S608 - fixed text
                             [session_id, session_id]).rowcount
        if nonpublic_only:
            db.execute("DELETE FROM doc_items WHERE session_id = ? AND public = 0", [session_id])
        else:
            db.execute("DELETE FROM doc_items WHERE session_id = ?", [session_id])
            db.execute("DELETE FROM doc_imports WHERE session_id = ?", [session_id])
        # Who read a file that is gone is nobody's business any more.
        db.execute("DELETE FROM doc_reads WHERE session_id = ? AND file_id NOT IN "
                   "(SELECT id FROM doc_files WHERE session_id = ?)", [session_id, session_id])
    return removed, shas


def _wipe_where(nonpublic_only: bool) -> str:
    """The files a wipe deletes (two parameters: the session id twice)."""
    return ("session_id = ? AND (public = 0 OR item_id IN (SELECT id FROM doc_items WHERE session_id = ?"
            " AND public = 0))") if nonpublic_only else "session_id = ? AND ? IS NOT NULL"


def wipe_count(db: sqlite_utils.Database, session_id: int, *, nonpublic_only: bool) -> int:
    """How many files delete_rows would remove now (the clerk's confirmation page)."""
    sql = f"SELECT COUNT(*) FROM doc_files WHERE {_wipe_where(nonpublic_only)}"  # noqa: S608 - fixed text
    return int(db.execute(sql, [session_id, session_id]).fetchone()[0])


def push_check(viewer: Viewer, value: str, db: sqlite_utils.Database) -> bool:
    """Push audience "doc:<file id>" (registered in create_app): only viewers who may read that file get the
    notice."""
    try:
        return readable(db, viewer, int(value)) is not None
    except ValueError:
        return False


def late_notice(f: File, *, replaces: tuple[int, ...] = ()) -> dict:
    """The push notice of a late document (Tischvorlage) without a web request: the box's own paths.
    replaces: the rows a new version of the same name replaced (the text says "aktualisiert"; the page drops
    them)."""
    from urllib.parse import quote

    return {"file_id": f.id, "title": f.title, "name": f.name, "item_id": f.item_id, "late": f.late,
            "url": f"/unterlagen/datei/{f.id}/{quote(f.name)}", "view_url": f"/unterlagen/ansehen/{f.id}",
            "size": f.size, "updated": bool(replaces), "replaces": list(replaces), "public": f.effective_public,
            "text": f"Tischvorlage aktualisiert: {f.title}" if replaces else f"Neue Tischvorlage: {f.title}"}


def check(db: sqlite_utils.Database, blobs: Blobs) -> list[str]:
    """Integrity: every referenced blob exists with the right hash; unreferenced blobs are named."""
    problems = []
    refs = referenced(db)
    for sha in sorted(refs):
        if not blobs.has(sha):
            problems.append(f"fehlt: {sha}")
        elif not blobs.verify(sha):
            problems.append(f"beschädigt (Prüfsumme falsch): {sha}")
    problems += [f"nicht verwendet: {sha}" for sha in blobs.all() if sha not in refs]
    return problems
