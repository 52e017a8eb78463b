"""Document acts a clerk performs: wipe a session's documents, announce a late document (Tischvorlage)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlite_utils

from appliance.config import Config
from appliance.documents import DocumentError, bulk, service
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
    service.remove_orphans(db, blobs, result.orphans)
    return result


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
