"""Document acts a clerk performs: wipe a session's documents, announce a late document (Tischvorlage), import
an OParl meeting, and correct single items and files (issue 12: edit, move, reorder, replace, delete)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import sqlite_utils

from appliance.config import Config
from appliance.documents import DocumentError, bulk, optimise, service, viewcopy
from appliance.store.db import audit
from appliance.store.transaction import transaction


@dataclass(frozen=True)
class WipeResult:
    session_id: int
    removed: int
    freed: int  # bytes

    def message(self) -> str:
        return f"{self.removed} Datei(en) gelöscht, {self.freed / 2**20:.1f} MB freigegeben."


def wipe_documents(cfg: Config, db: sqlite_utils.Database, session_id: int, actor: str, *,
                   nonpublic_only: bool = True) -> WipeResult:
    """Delete the session's non-public files and items (default) or all its documents, with one audit entry in
    one transaction; then the bytes no other session still uses (data protection: the bytes go now).
    DocumentError (nothing changed) if there is no such session."""
    blobs = service.blobs_for(cfg.state_dir)
    with transaction(db):
        if service.session_body(db, session_id) is None:
            raise DocumentError(f"Sitzung {session_id} gibt es nicht.")
        removed, shas = service.delete_rows(db, session_id, nonpublic_only=nonpublic_only)
        audit(db, actor, "documents.wipe", f"session={session_id} nonpublic_only={int(nonpublic_only)} "
                                           f"files={removed}")
    still = service.referenced(db)
    freed = sum(blobs.remove(sha) for sha in shas if sha not in still)
    return WipeResult(session_id, removed, freed)


def announce_late_document(cfg: Config, db: sqlite_utils.Database, session_id: int, entries: list[bulk.Entry],
                           actor: str, *, item_id: int | None = None, public: bool = True,
                           notice: Callable[[service.File], dict] | None = None) -> bulk.Result:
    """Add late documents (Tischvorlagen) and tell every entitled connected reader, as one act.

    The bytes are stored first, outside the transaction (a big file must not hold the write lock); then the
    file rows, their audit entries and one push notice per file (audience doc:<id>: only who may read it)
    commit together: no stored Tischvorlage without its notice, no notice of a file that is not there.
    Notices go out only while the session is active. notice: how the web words the notice (its language,
    its URLs; called with replaces=(old ids) for a new version of a file of the same name); default
    service.late_notice. Idempotent like every import: the same bytes under the same item are not added again
    and get no notice (result.present). BulkError/DocumentError: nothing was added.
    """
    from appliance.push import publish
    from appliance.sessions import service as sessions

    blobs = service.blobs_for(cfg.state_dir)
    staged = bulk.store_entries(db, blobs, entries)
    try:
        with transaction(db):
            try:
                session = sessions.get_session(db, session_id)
            except sessions.SessionError as exc:
                raise DocumentError(str(exc)) from exc
            result = bulk.write_rows(db, session_id, staged, public=public, late=True, item_id=item_id,
                                     actor=actor)
            if session.active:
                for fid in result.file_ids:
                    f = service.get_file(db, fid)
                    say = notice or service.late_notice
                    text = say(f, replaces=result.replaces[fid]) if fid in result.replaces else say(f)
                    publish(db, session_id, "document", text, audience=f"doc:{fid}")
    except BaseException:
        bulk.discard(db, blobs, staged)
        raise
    service.remove_orphans(db, blobs, [*result.orphans, *staged.new_blobs])  # and copies of files already there
    return result


# --- correcting single items and files (issue 12) ---------------------------------------------------------
# Each act: its row writes (documents.service), one audit entry and one push event in one transaction. The
# event "documents.changed" names no title (audience "all"): every open agenda page fetches itself again, and
# that fetch passes documents.policy, so a file turned non-public vanishes from guests' pages and a renamed one
# shows its new title only to who may read it.

CHANGED = "documents.changed"


def _changed(db: sqlite_utils.Database, session_id: int, what: str, ids: dict[str, int | list[int] | None]) -> None:
    from appliance.push import publish
    from appliance.sessions import service as sessions

    try:
        active = sessions.get_session(db, session_id).active
    except sessions.SessionError:
        active = False
    if active:
        publish(db, session_id, CHANGED, {"what": what, **ids}, audience="all")


def edit_item(db: sqlite_utils.Database, item_id: int, actor: str, *, title: str, number: str,
              public: bool) -> service.Item:
    """Rename, renumber or change the visibility of an agenda item; returns the item as it is now.
    Non-public at once: its files vanish from every open page of who may no longer read them."""
    with transaction(db):
        old = service.edit_item(db, item_id, title=title, number=number, public=public)
        audit(db, actor, "documents.edit_item", f"session={old.session_id} item={item_id} public={int(public)}"
                                                + (" title" if old.title != " ".join(title.split()) else "")
                                                + (" number" if old.number != " ".join(number.split()) else ""))
        _changed(db, old.session_id, "item", {"item_id": item_id})
        new = service.get_item(db, item_id)
    assert new is not None
    return new


def edit_file(db: sqlite_utils.Database, file_id: int, actor: str, *, title: str, public: bool) -> service.File:
    """Rename a file or change its visibility; returns the file as it is now."""
    with transaction(db):
        old = service.edit_file(db, file_id, title=title, public=public)
        audit(db, actor, "documents.edit_file", f"session={old.session_id} file={file_id} public={int(public)}"
                                                + (" title" if old.title != " ".join(title.split()) else ""))
        _changed(db, old.session_id, "file", {"file_id": file_id})
        new = service.get_file(db, file_id)
    assert new is not None
    return new


def move_file(db: sqlite_utils.Database, file_id: int, item_id: int | None, actor: str) -> service.File:
    """Put a file under another agenda item (None: documents of the whole session), at its end."""
    with transaction(db):
        old = service.move_file(db, file_id, item_id)
        audit(db, actor, "documents.move_file", f"session={old.session_id} file={file_id} "
                                                f"from={old.item_id or '-'} to={item_id or '-'}")
        _changed(db, old.session_id, "file", {"file_id": file_id})
        new = service.get_file(db, file_id)
    assert new is not None
    return new


def reorder(db: sqlite_utils.Database, actor: str, *, item_id: int | None = None, file_id: int | None = None,
            step: int) -> bool:
    """Move an item (among the session's items) or a file (among its item's files) `step` places: -1 up, +1 down.
    False (nothing written): it is already first or last."""
    if (item_id is None) == (file_id is None):
        raise ValueError("reorder: item_id or file_id")
    table, row_id, kind = ("doc_items", item_id, "item") if item_id is not None else ("doc_files", file_id, "file")
    assert row_id is not None
    with transaction(db):
        moved = service.shift(db, table, row_id, step)
        if not moved:
            return False
        sid = (service.get_item(db, row_id) if kind == "item" else service.get_file(db, row_id)).session_id
        audit(db, actor, "documents.reorder", f"session={sid} {kind}={row_id} step={step:+d}")
        _changed(db, sid, kind, {f"{kind}_id": row_id})
    return True


@dataclass(frozen=True)
class Optimised:
    before: int  # bytes of the original
    after: int  # bytes of Ghostscript's copy
    kept: bool  # False: not smaller, nothing kept


def optimise_file(cfg: Config, db: sqlite_utils.Database, file_id: int, actor: str) -> Optimised:
    """Store a smaller copy of a PDF beside its original (for the viewer in the hall; the original stays for
    download and checksum). Ghostscript runs outside the transaction; a copy that is not smaller is dropped."""
    f = service.get_file(db, file_id)
    if f is None or f.mime != "application/pdf":
        raise DocumentError("Nur von PDF-Dateien lässt sich eine optimierte Kopie speichern.")
    blobs = service.blobs_for(cfg.state_dir)
    (blobs.root / "tmp").mkdir(parents=True, exist_ok=True)
    out = Path(tempfile.mkdtemp(dir=blobs.root / "tmp", prefix="gs-")) / "copy.pdf"
    try:
        size = optimise.ghostscript(blobs.path(f.sha256), out, timeout=cfg.docs_optimise_timeout_s)
        if size >= f.size:
            return Optimised(f.size, size, kept=False)
        (packed,) = viewcopy.prepare_files([out], out.parent)  # its page dictionaries together, as at import
        if packed.copy is not None:
            out, size = packed.copy, packed.copy.stat().st_size
        with open(out, "rb") as fh:
            stored = blobs.put_file(fh)
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)
    try:
        with transaction(db):
            if not service.set_optimised(db, f, stored.sha256):
                raise DocumentError("Die Datei wurde inzwischen ersetzt oder gelöscht.")
            audit(db, actor, "documents.optimise_file", f"session={f.session_id} file={f.id} {f.size}->{size}")
    except BaseException:
        service.remove_orphans(db, blobs, [stored.sha256])  # nothing half-kept
        raise
    service.remove_orphans(db, blobs, [f.optimised_sha256] if f.optimised_sha256 else [])
    return Optimised(f.size, size, kept=True)


def delete_file(cfg: Config, db: sqlite_utils.Database, file_id: int, actor: str) -> service.File:
    """Delete one file; members no longer see it. Its bytes go after the commit unless another row uses them."""
    with transaction(db):
        f = service.delete_file(db, file_id)
        audit(db, actor, "documents.delete_file", f"session={f.session_id} file={file_id}")
        _changed(db, f.session_id, "file", {"file_id": file_id})
    service.remove_orphans(db, service.blobs_for(cfg.state_dir), service.hashes(f))
    return f


def delete_item(cfg: Config, db: sqlite_utils.Database, item_id: int, actor: str, *,
                with_files: bool = False) -> tuple[service.Item, list[service.File]]:
    """Delete an agenda item. With files only when the clerk said so ("mit Dateien"); otherwise an item that
    still has files is refused (DocumentError, nothing changed)."""
    with transaction(db):
        item, gone = service.delete_item(db, item_id, with_files=with_files)
        audit(db, actor, "documents.delete_item", f"session={item.session_id} item={item_id} files={len(gone)}")
        _changed(db, item.session_id, "item", {"item_id": item_id, "file_ids": [f.id for f in gone]})
    service.remove_orphans(db, service.blobs_for(cfg.state_dir), [sha for f in gone for sha in service.hashes(f)])
    return item, gone


def replace_file(cfg: Config, db: sqlite_utils.Database, file_id: int, name: str, fh: BinaryIO,
                 actor: str) -> service.Put:
    """A new version of a file (any name; type checked as for every upload): it takes the old row's place,
    title, visibility and order (service.put_file with replaces=); members who had opened the old version see
    „neue Fassung“. The bytes are stored and checked first, outside the transaction; on any refusal they go
    again. DocumentError if the bytes are the same as the old version's or another file's of this item."""
    blobs = service.blobs_for(cfg.state_dir)
    old = service.get_file(db, file_id)
    if old is None:
        raise DocumentError("Diese Datei gibt es nicht (mehr).")
    name, kind, stored = service.store_upload(blobs, name, fh)
    checked = None
    try:
        checked = service.pdf_check(stored, kind.mime)  # and the viewer's copy (view_problem: put.view_problem)
        with transaction(db):
            put = service.put_file(db, old.session_id, name=name, stored=stored, mime=kind.mime, item_id=old.item_id,
                                   title=old.title, public=old.public, late=old.late, checked=checked,
                                   actor=actor, replaces=file_id)
            if put.outcome == service.PRESENT:
                raise DocumentError("Diese Fassung ist schon da: die Datei ist unverändert." if put.id == file_id
                                    else "Genau diese Datei liegt schon unter diesem Tagesordnungspunkt.")
            _changed(db, old.session_id, "file", {"file_id": put.id, "replaces": list(put.replaced)})
    except BaseException:
        if stored.new and stored.sha256 not in service.referenced(db):
            blobs.remove(stored.sha256)
        if checked is not None and checked.view_new and checked.view_sha256:
            service.remove_orphans(db, blobs, [checked.view_sha256])
        raise
    service.remove_orphans(db, blobs, put.orphans)
    return put


@dataclass(frozen=True)
class OParlResult:
    reports: list  # oparl_import.Report, one per meeting
    job_ids: list[int]

    @property
    def complete(self) -> bool:
        """Everything in the source arrived (nothing skipped)."""
        return not any(r.skipped for r in self.reports)


def import_oparl(cfg: Config, db: sqlite_utils.Database, session_id: int, source: str, actor: str, *,
                 extra_hosts: tuple[str, ...] | list[str] = (), job_id: int | None = None,
                 resolver=None) -> OParlResult:
    """Import an OParl meeting (its URL: fetched under appliance.outside's rule, from the URL's host and the
    extra hosts the clerk named) or every meeting in a folder of saved OParl JSON, as import jobs.

    Each meeting is one job (doc_imports; job_id: the one the web page already created): its progress, what
    was skipped and why, and at the end its summary and one audit entry. If the import cannot go on
    (refused address, limit, broken answer, any crash) the job is marked failed with the reason and the
    error is raised (German message); what arrived stays, and a new import of the same meeting resumes.
    A job whose process dies is marked failed by jobs.reap."""
    from appliance.documents import jobs, oparl_import

    if service.session_body(db, session_id) is None:
        raise DocumentError(f"Sitzung {session_id} gibt es nicht.")
    blobs = service.blobs_for(cfg.state_dir)
    jobs.reap(db, session_id)
    reports, ids = [], []
    try:
        src, meetings, unreadable = oparl_import.source_for(cfg, source, extra_hosts, resolver=resolver)
    except BaseException as exc:
        if job_id is not None:
            jobs.fail(db, job_id, _reason(exc))
        raise
    for n, url in enumerate(meetings):
        jid = job_id if (job_id is not None and n == 0) else jobs.begin(db, session_id, url)
        ids.append(jid)
        report = None
        try:
            report = oparl_import.import_meeting(db, blobs, session_id, src, url, import_id=jid, actor=actor)
            if n == 0:
                for name, reason in unreadable:
                    report.skip(oparl_import.JSON_FILE, name, reason)
            with transaction(db):
                jobs.finish(db, jid, report.problems, report.summary())
                audit(db, actor, "documents.oparl_import",
                      f"session={session_id} job={jid} items={report.arrived['Tagesordnungspunkt']}/"
                      f"{report.found['Tagesordnungspunkt']} files={report.arrived['Datei']}/"
                      f"{report.found['Datei']} skipped={len(report.skipped)}")
        except BaseException as exc:
            jobs.fail(db, jid, _reason(exc))
            raise
        reports.append(report)
    return OParlResult(reports, ids)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "abgebrochen (Strg+C)"
    if isinstance(exc, ValueError | OSError) and str(exc):  # our German messages (DocumentError, FetchError, …)
        return str(exc)
    return f"unerwarteter Fehler ({type(exc).__name__})"
