"""Session documents for members and clerks (issue 3): agenda with files, downloads (Range, ETag), everything
as a streamed ZIP, title search, the in-page PDF viewer, late documents (Tischvorlagen) and the clerk's
upload, import, log and wipe pages.

Thin views: documents.policy decides who reads what (every route asks it through service.readable /
visible_agenda), documents.service writes, documents.httpfile plans the HTTP answer.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import zipfile
from collections.abc import Iterator
from datetime import datetime

from flask import Blueprint, Response, abort, current_app, flash, g, render_template, request
from werkzeug.wsgi import FileWrapper

from appliance import outside
from appliance.config import Config
from appliance.documents import DocumentError, bulk, fastsend, httpfile, jobs, rules, service, traffic
from appliance.documents.blobs import Blobs
from appliance.rules import guard as guard_rules
from appliance.rules import prefetch as prefetch_rules
from appliance.rules.viewer import Viewer
from appliance.sessions import service as sessions
from appliance.usecases import documents as doc_acts
from appliance.usecases import impact as count
from appliance.usecases import speakers as speakers_acts
from appliance.web import auth, forms, guard, i18n, links
from appliance.web.viewer import current_viewer, member_viewer

log = logging.getLogger(__name__)
bp = Blueprint("documents", __name__)
auth_required = auth.login_required
UPLOAD_LIMIT = 2 * 1024 * 1024 * 1024  # one browser upload (many files or a ZIP); files stream to disk


def _cfg() -> Config:
    return current_app.config["SB"]


def _blobs() -> Blobs:
    return service.blobs_for(_cfg().state_dir)


@bp.record_once
def _setup(state) -> None:
    app = state.app

    # Uploads may be bigger than the app-wide form limit. This must be set before anything reads the form
    # (the CSRF check does), so it runs first of all request hooks, and only for the two upload views.
    def _upload_limit() -> None:
        if request.endpoint in ("documents.clerk_upload", "documents.clerk_zip", "documents.clerk_file_replace"):
            request.max_content_length = UPLOAD_LIMIT

    app.before_request_funcs.setdefault(None, []).insert(0, _upload_limit)
    fastsend.install()  # big PDFs by os.sendfile under gunicorn's gevent worker (no-op elsewhere)


@bp.app_template_filter("doc_size")
def doc_size(n: int) -> str:
    if n >= 1024 * 1024:
        mb = f"{n / 1024 / 1024:.1f}"
        return i18n.t("docs.size_mb", n=mb.replace(".", ",") if g.get("lang") == "de" else mb)
    return i18n.t("docs.size_kb", n=max(1, round(n / 1024)))


def file_url(f: service.File, **kw) -> str:
    return links.link("documents.download", file_id=f.id, name=f.name, **kw)


def size_units() -> dict[str, str]:
    """doc_size's units with a {n} left in, and the decimal mark: documents.js writes a live entry's size alike."""
    return {"kb": i18n.t("docs.size_kb", n="{n}"), "mb": i18n.t("docs.size_mb", n="{n}"),
            "mark": "," if g.get("lang") == "de" else "."}


@bp.app_context_processor
def _doc_globals() -> dict:
    return {"doc_file_url": file_url, "doc_size_units": size_units}


# --- members ------------------------------------------------------------------------------------


def _member_viewer() -> Viewer:
    viewer = member_viewer()  # a device not let through yet: to the portal, as every member page
    if viewer.session_id is None:  # a clerk while no session is active
        abort(Response(render_template("error.html", message=i18n.t("docs.no_session"), code=404), 404))
    return viewer


def start_page_context() -> dict:
    """For portal/_documents.html: the counts the start page shows (viewer-filtered)."""
    viewer = current_viewer()
    if viewer.session_id is None or not (viewer.admitted or viewer.is_clerk):
        return {"count": 0}
    return {"count": len(service.visible_files(g.db, viewer, viewer.session_id))}


@bp.app_context_processor
def _start_globals() -> dict:
    return {"doc_start": start_page_context}


@bp.get("/unterlagen")
def agenda():
    viewer = _member_viewer()
    session = sessions.get_session(g.db, viewer.session_id)
    q = request.args.get("q", "").strip()[:100]
    entries = service.visible_agenda(g.db, viewer, session.id)
    hits = service.search(g.db, viewer, session.id, q) if q else None
    latest = max((f.id for e in entries for f in e.files), default=0)
    resp = Response(render_template("documents/agenda.html", session=session, entries=entries, q=q, hits=hits,
                                    latest=latest, viewer=viewer,
                                    fresh=service.new_versions(g.db, viewer, session.id),
                                    # for static/documents/prefetch.js, which fills in the numbers
                                    prefetch_words={
                                        "progress": i18n.t("docs.prefetch.progress", done="{done}", total="{total}",
                                                           size="{size}"),
                                        "skipped": i18n.t("docs.prefetch.skipped", n="{n}")}))
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/unterlagen/neu")
def since():
    """Late documents after `seit` the viewer may read (JSON): the page's fallback when no push channel."""
    viewer = _member_viewer()
    after = request.args.get("seit", type=int, default=0)
    out = [_notice(f) for f in service.visible_files(g.db, viewer, viewer.session_id) if f.id > after]
    resp = Response(json.dumps(out), mimetype="application/json")
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _notice(f: service.File, *, replaces: tuple[int, ...] = ()) -> dict:
    """replaces: the rows a new version replaced (service.late_notice): the text says so, the page drops them."""
    text = i18n.t("docs.updated_notice", title=f.title) if replaces else i18n.t("docs.new_notice", title=f.title)
    return {"file_id": f.id, "title": f.title, "name": f.name, "item_id": f.item_id, "late": f.late,
            # Without this request's state: the push channel sends a notice to every reader (the page adds its own).
            "url": links.bare("documents.download", file_id=f.id, name=f.name),
            "view_url": links.bare("documents.view", file_id=f.id), "size": f.size, "public": f.effective_public,
            "updated": bool(replaces), "replaces": list(replaces), "text": text}


def _readable_or_404(file_id: int) -> tuple[Viewer, service.File]:
    viewer = _member_viewer()
    f = service.readable(g.db, viewer, file_id)
    if f is None:
        # Same answer for "missing" and "not yours": a guessed URL learns nothing.
        abort(Response(render_template("error.html", message=i18n.t("docs.refused"), code=404), 404))
    return viewer, f


@bp.get("/unterlagen/ansehen/<int:file_id>")
def view(file_id: int):
    viewer, f = _readable_or_404(file_id)
    pdf = f.mime == "application/pdf"
    try:  # the viewer's bytes: viewer.js asks for the first and the last chunk at once (one round trip less)
        length = _blobs().path(service.viewer_copy(f)).stat().st_size if pdf else None
    except OSError:
        length = None
    # With the ETag and the length viewer.js finds a copy fetched before the session (documents/prefetch.js).
    etag = httpfile.etag(service.viewer_copy(f)) if length else ""
    resp = Response(render_template("documents/view.html", f=f, pdf=pdf, pdf_length=length, pdf_etag=etag,
                                    fresh=service.new_versions(g.db, viewer, f.session_id),
                                    # for static/documents/viewer.js, which fills in the numbers
                                    page_of=i18n.t("docs.viewer.page_of", page="{page}", pages="{pages}"),
                                    of_pages=i18n.t("docs.viewer.of", pages="{pages}")))
    resp.headers["Cache-Control"] = "no-store"
    return resp


class _Range:
    """A file limited to `length` bytes from its current position. gunicorn sends it with sendfile (it uses
    fileno(), the current offset and Content-Length; fastsend calls note_sent); other servers iterate read().
    `done(sent)` once, when the server closes it (documents.traffic counts)."""

    def __init__(self, fh, length: int, done=None) -> None:
        self.fh, self.left, self.done, self.sent = fh, length, done, 0

    def fileno(self) -> int:
        return self.fh.fileno()

    def note_sent(self, n: int) -> None:
        self.sent += n

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data = self.fh.read(n) if n else b""
        self.left -= len(data)
        self.sent += len(data)
        return data

    def seek(self, pos: int, whence: int = 0) -> int:
        return self.fh.seek(pos, whence)

    def tell(self) -> int:
        return self.fh.tell()

    def close(self) -> None:
        self.fh.close()
        done, self.done = self.done, None
        if done is not None:
            done(self.sent)


def _meter() -> traffic.Meter:
    """This worker's byte counts (documents.traffic), written to the database every few seconds."""
    ext = current_app.extensions
    if "sb_doc_traffic" not in ext:
        ext["sb_doc_traffic"] = traffic.Meter(_cfg().db_path)
    return ext["sb_doc_traffic"]


def _pacer() -> traffic.Pacer:
    """This worker's one bucket for all its paced responses."""
    ext = current_app.extensions
    if "sb_doc_pacer" not in ext:
        ext["sb_doc_pacer"] = traffic.Pacer(_cfg().docs_bulk_pace_kib or 1)
    return ext["sb_doc_pacer"]


def _counted_body(f: service.File, fh, p: httpfile.Plan, kind: str, session_running: bool):
    """The body of a file response, counted when it ends; whole files paced while a session runs."""
    meter = _meter()

    def done(sent: int) -> None:
        meter.add(f.session_id, f.id, kind, sent, opened=p.start == 0)

    if traffic.should_pace(kind, session_running, _cfg().docs_bulk_pace_kib):
        return traffic.paced_file(fh, p.length, _pacer(), done)
    wrapper = request.environ.get("wsgi.file_wrapper", FileWrapper)  # sendfile under gunicorn
    return wrapper(_Range(fh, p.length, done), 1 << 20)


@bp.route("/unterlagen/datei/<int:file_id>/<path:name>", methods=["GET", "HEAD"])
def download(file_id: int, name: str):
    viewer, f = _readable_or_404(file_id)
    return _send(viewer, f, f.sha256, "file", {
        "Content-Disposition": httpfile.content_disposition(f.name, attachment=request.args.get("dl") == "1"),
        "X-Frame-Options": "SAMEORIGIN",
        # sandbox for everything but PDFs (Chromium refuses to show a PDF in a sandboxed document).
        "Content-Security-Policy": "default-src 'none'; frame-ancestors 'self'"
                                   + ("" if f.mime == "application/pdf" else "; sandbox"),
    })


@bp.route("/unterlagen/<int:file_id>/pdf", methods=["GET", "HEAD"])
def viewer_data(file_id: int):
    """The bytes the page's PDF viewer (static/documents/viewer.js) fetches, range by range: the copy
    service.viewer_copy names (its copy made at import when there is one), never as an attachment, never in a frame.
    With `?vorab=1` a device's background fetch before the session (static/documents/prefetch.js): answered only
    while rules.prefetch allows it (else 409 with the reason), counted as traffic kind "prefetch", paced."""
    viewer, f = _readable_or_404(file_id)
    if f.mime != "application/pdf":
        abort(404)
    via = "viewer"
    if request.args.get("vorab") == "1":
        decision = _prefetch_decision(viewer)
        if not decision:
            return _prefetch_refused(decision)
        via = "prefetch"
    return _send(viewer, f, service.viewer_copy(f), via, {
        "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; sandbox",
    })


def _prefetch_decision(viewer: Viewer) -> prefetch_rules.Decision:
    session = sessions.get_session(g.db, viewer.session_id) if viewer.session_id is not None else None
    return prefetch_rules.may_prefetch(
        session_active=bool(session and session.active),
        current_item_id=speakers_acts.current_item_id(g.db, session.id) if session else None)


def _prefetch_refused(decision: prefetch_rules.Decision) -> Response:
    body = {"allowed": False, "code": decision.code, "reason": i18n.t(f"docs.prefetch.reason.{decision.code}")}
    resp = Response(json.dumps(body, ensure_ascii=False), status=409, mimetype="application/json")
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/unterlagen/vorab")
def prefetch_list():
    """What a device that opted in may fetch before the session (JSON for static/documents/prefetch.js): the PDFs
    this viewer may read (the read policy's agenda), the current item's first, each with its viewer-data URL,
    the byte length and ETag of the viewer's copy; `allowed` and the reason from rules.prefetch."""
    viewer = _member_viewer()
    decision = _prefetch_decision(viewer)
    session_id = viewer.session_id
    entries = service.visible_agenda(g.db, viewer, session_id)
    current = speakers_acts.current_item_id(g.db, session_id)
    out = []
    for f in prefetch_rules.order(((e.item.id if e.item else None, e.files) for e in entries), current):
        if f.mime != "application/pdf":
            continue
        sha = service.viewer_copy(f)
        try:
            length = _blobs().path(sha).stat().st_size
        except OSError:
            continue
        out.append({"id": f.id, "title": f.title, "url": links.link("documents.viewer_data", file_id=f.id, vorab=1),
                    "length": length, "etag": httpfile.etag(sha)})
    body = {"session_id": session_id, "allowed": decision.allowed, "code": decision.code,
            "reason": "" if decision else i18n.t(f"docs.prefetch.reason.{decision.code}"), "files": out,
            "bytes": sum(x["length"] for x in out)}
    resp = Response(json.dumps(body, ensure_ascii=False), mimetype="application/json")
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _send(viewer: Viewer, f: service.File, sha: str, via: str, extra: dict[str, str]):
    """The one place a stored file's bytes leave the box (downloads and the viewer): ETag, Range, the read log.
    `sha` is the blob to send: the file's own bytes, or for the viewer the copy service.viewer_copy names."""
    try:
        fh = open(_blobs().path(sha), "rb")  # noqa: SIM115 - closed by the WSGI server
    except FileNotFoundError:
        log.error("document blob missing: file %s", f.id)
        abort(500)
    size = f.size if sha == f.sha256 else os.fstat(fh.fileno()).st_size
    tag = httpfile.etag(sha)
    p = httpfile.plan(size, tag, method=request.method, range_header=request.headers.get("Range"),
                      if_none_match=request.headers.get("If-None-Match"), if_range=request.headers.get("If-Range"))
    headers = {
        "ETag": tag,
        "Accept-Ranges": "bytes",
        # Never cached by anything but the reader's own browser.
        "Cache-Control": "private, no-cache" if f.effective_public else "private, no-store",
        **extra,
    }
    if p.status in (304, 416):
        fh.close()
        if p.status == 304:
            return Response(status=304, headers=headers)
        return Response(status=416, headers={**headers, "Content-Range": p.content_range or ""})
    if p.start == 0 and request.method == "GET":
        service.log_download(g.db, viewer, f, via)  # one entry per reading, not per range
    fh.seek(p.start)
    if request.method == "HEAD":
        body = FileWrapper(_Range(fh, 0))
    else:
        route = via if via in ("viewer", "prefetch") else "download"
        body = _counted_body(f, fh, p, traffic.kind_of(route, p.status), viewer.session_id is not None)
    resp = Response(body, status=p.status, headers=headers, mimetype=f.mime, direct_passthrough=True)
    resp.content_length = p.length
    if p.content_range:
        resp.headers["Content-Range"] = p.content_range
    return resp


class _Sink:
    """What zipfile writes into while the response streams it out: no seeking, nothing kept."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        return out


def _arc_name(entry: service.AgendaEntry, f: service.File, used: set[str]) -> str:
    def clean(s: str) -> str:
        return "".join(c if c.isprintable() and c not in '/\\:*?"<>|' else "_" for c in s).strip()[:80]
    folder = "Sitzung" if entry.item is None else clean(f"{entry.item.position:02d} {entry.item.number} "
                                                        f"{entry.item.title}".replace("  ", " "))
    name = f"{folder}/{clean(f.name)}"
    base, dot, ext = name.rpartition(".")
    n = 2
    while name in used:
        name = f"{base} ({n}).{ext}" if dot else f"{name} ({n})"
        n += 1
    used.add(name)
    return name


def zip_stream(db_path, blobs: Blobs, viewer: Viewer, session_id: int, meter: traffic.Meter | None = None,
               pacer: traffic.Pacer | None = None) -> Iterator[bytes]:
    """Everything the viewer may read as one ZIP, produced while it is sent (constant memory). With a meter:
    the bytes the server took counted per file (traffic "zip"; the central directory as file 0) when the
    stream ends or is cut off; with a pacer: paced."""
    tally: dict[int, int] = {}
    parts = _zip_parts(db_path, blobs, viewer, session_id)
    try:
        for file_id, chunk in parts:
            if not chunk:
                continue
            if pacer is not None:
                pacer.pace(len(chunk))
            yield chunk
            tally[file_id] = tally.get(file_id, 0) + len(chunk)  # the server asked for more: it went out
    finally:
        parts.close()
        if meter is not None:
            for file_id, n in tally.items():
                meter.add(session_id, file_id, "zip", n, requests=int(file_id != 0))


def _zip_parts(db_path, blobs: Blobs, viewer: Viewer, session_id: int) -> Iterator[tuple[int, bytes]]:
    from appliance.store import open_db
    db = open_db(db_path, migrate=False)  # the request's connection is closed before the body streams
    try:
        entries = service.visible_agenda(db, viewer, session_id)
        sink = _Sink()
        used: set[str] = set()
        with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for entry in entries:
                for f in entry.files:
                    info = zipfile.ZipInfo(_arc_name(entry, f, used),
                                           datetime.fromisoformat(f.added_at.rstrip("Z")).timetuple()[:6])
                    service.log_download(db, viewer, f, "zip")
                    with open(blobs.path(f.sha256), "rb") as src, zf.open(info, "w", force_zip64=True) as dst:
                        for chunk in iter(lambda src=src: src.read(1 << 18), b""):
                            dst.write(chunk)
                            yield f.id, sink.take()
                    yield f.id, sink.take()
        yield 0, sink.take()
    finally:
        db.conn.close()


@bp.get("/unterlagen/alle.zip")
def all_zip():
    viewer = _member_viewer()
    session = sessions.get_session(g.db, viewer.session_id)
    name = f"Unterlagen {session.body} {session.title}.zip"
    paced = traffic.should_pace("zip", True, _cfg().docs_bulk_pace_kib)  # members' pages: a session runs
    resp = Response(zip_stream(_cfg().db_path, _blobs(), viewer, session.id, _meter(), _pacer() if paced else None),
                    mimetype="application/zip", direct_passthrough=True)
    resp.headers["Content-Disposition"] = httpfile.content_disposition(name, attachment=True)
    resp.headers["Cache-Control"] = "private, no-store"
    return resp


# --- clerks -------------------------------------------------------------------------------------


def _session_or_404(session_id: int) -> sessions.Session:
    try:
        return sessions.get_session(g.db, session_id)
    except sessions.SessionError:
        abort(404)


def _render_clerk(s: sessions.Session, problems: list[str] | None = None, status: int = 200):
    links.set_here("documents.clerk_page", session_id=s.id)  # also the answer to a refused form
    use = service.disk_use(g.db)
    jobs.reap(g.db, s.id)  # an import whose process died shows as failed, and the page stops reloading
    imports = jobs.recent(g.db, s.id)
    running = any(i["state"] == "running" for i in imports)
    resp = Response(render_template(
        "documents/clerk.html", s=s, entries=service.agenda(g.db, s.id), items=service.items(g.db, s.id),
        disk=use.get(s.id, 0), disk_all=sum(use.values()), log=service.downloads(g.db, s.id), imports=imports,
        running=running, problems=problems or [], max_mb=rules.MAX_FILE // 2**20, **_radio_view(s),
    ), status)
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _radio_view(s: sessions.Session) -> dict:
    """Bytes on the radio (issue 16): this worker's counts written first (other workers' within seconds)."""
    _meter().flush()
    use = traffic.usage(g.db, s.id)
    files = {f.id: f for f in service.files(g.db, s.id)}
    saved = {fid: traffic.saving(files[fid].size, n, use.viewer_bytes.get(fid, 0))
             for fid, n in use.opens.items() if fid in files}
    copies = {f.id: _blobs().path(f.optimised_sha256).stat().st_size for f in files.values()
              if service.optimised_copy(f) and _blobs().has(f.optimised_sha256)}
    return {"usage": use, "saved": saved, "saved_total": sum(saved.values()), "copies": copies,
            "hall_warn_bytes": _cfg().docs_hall_warn_mb * 2**20, "hall_warn_mb": _cfg().docs_hall_warn_mb,
            "traffic_files": [files[fid] for fid in sorted(use.by_file) if fid in files]}


@bp.post("/clerk/sessions/<int:session_id>/unterlagen/datei/<int:file_id>/optimieren")
@auth_required
def clerk_file_optimise(session_id: int, file_id: int):
    s = _session_or_404(session_id)
    f = _file_of(s, file_id)
    try:
        done = doc_acts.optimise_file(_cfg(), g.db, file_id, g.actor)
    except DocumentError as exc:
        return _render_clerk(s, [str(exc)], 422)
    sizes = {"title": f.title, "before": doc_size(done.before), "after": doc_size(done.after)}
    text = i18n.t("docs.clerk.optimised", **sizes) if done.kept else i18n.t("docs.clerk.optimise_useless", **sizes)
    return _done(s, text, f"cfile-{file_id}")


@bp.get("/clerk/sessions/<int:session_id>/unterlagen")
@auth_required
def clerk_page(session_id: int):
    return _render_clerk(_session_or_404(session_id))


@bp.post("/clerk/sessions/<int:session_id>/unterlagen/punkt")
@auth_required
def clerk_item(session_id: int):
    s = _session_or_404(session_id)
    try:
        service.add_item(g.db, s.id, request.form.get("title", ""), number=request.form.get("number", ""),
                         public=not request.form.get("nonpublic"), actor=g.actor)
    except DocumentError as exc:
        return _render_clerk(s, [str(exc)], 422)
    flash(i18n.t("docs.clerk.item_added"), "ok")
    return links.redirect_to("documents.clerk_page", session_id=s.id)


def _item_choice(s: sessions.Session) -> int | None:
    raw = request.form.get("item", "")
    if not raw:
        return None
    try:
        item_id = int(raw)
    except ValueError:
        raise DocumentError("Unbekannter Tagesordnungspunkt.") from None
    if item_id not in {i.id for i in service.items(g.db, s.id)}:
        raise DocumentError("Unbekannter Tagesordnungspunkt.")
    return item_id


@bp.post("/clerk/sessions/<int:session_id>/unterlagen/hochladen")
@auth_required
def clerk_upload(session_id: int):
    s = _session_or_404(session_id)
    uploads = [u for u in request.files.getlist("files") if u and u.filename]
    if not uploads:
        return _render_clerk(s, [i18n.t("docs.clerk.no_files")], 422)
    try:
        item_id = _item_choice(s)
    except DocumentError as exc:
        return _render_clerk(s, [str(exc)], 422)
    public = not request.form.get("nonpublic")
    late = request.form.get("late", "")
    if s.active and late not in ("1", "0"):  # while members read along, announcing is the clerk's explicit choice
        return _render_clerk(s, [i18n.t("docs.clerk.upload_choose")], 422)
    late = late == "1"
    entries = [bulk.Entry(None, u.filename or "", 0, lambda u=u: u.stream) for u in uploads]
    # Browser uploads carry no trustworthy size: the limit is the per-file maximum.
    entries = [bulk.Entry(None, e.name, rules.MAX_FILE, e.open) for e in entries]
    try:
        if late:  # stored and announced as one act, the same as `sitzungsbox import N datei --tischvorlage`
            result = doc_acts.announce_late_document(_cfg(), g.db, s.id, entries, g.actor, item_id=item_id,
                                                     public=public, notice=_notice)
        else:
            result = bulk.import_entries(g.db, _blobs(), s.id, entries, public=public, item_id=item_id,
                                         actor=g.actor)
    except bulk.BulkError as exc:
        return _render_clerk(s, exc.problems, 422)
    except DocumentError as exc:
        return _render_clerk(s, [str(exc)], 422)
    flash(i18n.t("docs.clerk.uploaded", n=result.files), "ok")
    _flash_result(result)
    return links.redirect_to("documents.clerk_page", session_id=s.id)


def _flash_result(result: bulk.Result) -> None:
    """What an import did besides adding: skipped as already present, replaced, flagged, left out."""
    for what in result.present[:50]:
        flash(i18n.t("docs.clerk.present", what=what), "ok")
    for what in result.replaced[:50]:
        flash(i18n.t("docs.clerk.replaced", what=what), "ok")
    for what, kinds in result.flagged[:50]:
        flash(i18n.t("docs.clerk.flagged", what=what, kinds=_pdf_kinds(kinds)), "error")
    for what, why in result.unprepared[:50]:  # served as delivered: no viewer's copy (documents/viewcopy.py)
        flash(i18n.t("docs.clerk.unprepared", what=what, why=why), "error")
    for what in result.skipped[:20]:
        flash(i18n.t("docs.clerk.skipped", what=what), "ok")


@bp.app_template_filter("pdf_kinds")
def _pdf_kinds(kinds) -> str:
    return ", ".join(i18n.t(f"docs.pdf.kind.{k}") for k in kinds)


@bp.post("/clerk/sessions/<int:session_id>/unterlagen/zip")
@auth_required
def clerk_zip(session_id: int):
    s = _session_or_404(session_id)
    upload = request.files.get("zip")
    if upload is None or not upload.filename:
        return _render_clerk(s, [i18n.t("docs.clerk.no_files")], 422)
    try:
        result = bulk.import_zip(g.db, _blobs(), s.id, upload.stream, public=not request.form.get("nonpublic"),
                                 actor=g.actor)
    except bulk.BulkError as exc:
        return _render_clerk(s, exc.problems, 422)
    flash(i18n.t("docs.clerk.zip_done", files=result.files, items=result.items), "ok")
    _flash_result(result)
    return links.redirect_to("documents.clerk_page", session_id=s.id)


@bp.post("/clerk/sessions/<int:session_id>/unterlagen/oparl")
@auth_required
def clerk_oparl(session_id: int):
    s = _session_or_404(session_id)
    url = request.form.get("url", "").strip()
    hosts = request.form.get("hosts", "").split()[:20]
    if not url.startswith(("http://", "https://")) or len(url) > 2000:
        return _render_clerk(s, [i18n.t("docs.clerk.oparl_bad_url")], 422)
    try:
        for text in [url, *hosts]:
            outside.origin_of(text)
    except outside.FetchError as exc:
        return _render_clerk(s, [str(exc)], 422)
    cfg = _cfg()
    job_id = jobs.begin(g.db, s.id, url)
    # A thread (a greenlet under gunicorn's gevent worker): the page shows progress from doc_imports; the job
    # names this process as its owner, so a dying worker leaves a failed job, not a running one.
    threading.Thread(target=_oparl_job, args=(cfg, s.id, url, hosts, job_id, g.actor),
                     name=f"oparl-{job_id}", daemon=True).start()
    flash(i18n.t("docs.clerk.oparl_started"), "ok")
    return links.redirect_to("documents.clerk_page", session_id=s.id)


def _oparl_job(cfg: Config, session_id: int, url: str, hosts: list[str], job_id: int, actor: str) -> None:
    """The background import: the same act as `sitzungsbox import N URL`; its outcome is in the job."""
    from appliance.store import open_db

    db = open_db(cfg.db_path, migrate=False)
    try:
        doc_acts.import_oparl(cfg, db, session_id, url, actor, extra_hosts=hosts, job_id=job_id)
    except Exception as exc:  # noqa: BLE001 - recorded in the job for the clerk
        log.warning("OParl import %s failed: %s", job_id, exc)
    finally:
        db.conn.close()


@bp.route("/clerk/sessions/<int:session_id>/unterlagen/loeschen", methods=["GET", "POST"])
@auth_required
def clerk_wipe(session_id: int):
    """GET: the confirmation page (web.guard) of the wipe the clerk chose; POST: the wipe, once confirmed."""
    s = _session_or_404(session_id)
    what = "all" if request.values.get("what") == "all" else "nonpublic"
    impact = count.of(g.db, guard_rules.WIPE_ALL_DOCUMENTS if what == "all" else guard_rules.WIPE_DOCUMENTS, s.id)
    refused = guard.confirmed(impact, action=links.link("documents.clerk_wipe", session_id=s.id),
                              back=links.link("documents.clerk_page", session_id=s.id), fields={"what": what})
    if refused is not None:
        return refused
    result = doc_acts.wipe_documents(_cfg(), g.db, s.id, g.actor, nonpublic_only=what != "all")
    flash(i18n.t("docs.clerk.wiped", n=result.removed, size=doc_size(result.freed)), "ok")
    return links.redirect_to("documents.clerk_page", session_id=s.id)


# --- correcting single items and files (issue 12): each form calls one use case ---------------------------


def _item_of(s: sessions.Session, item_id: int) -> service.Item:
    item = service.get_item(g.db, item_id)
    if item is None or item.session_id != s.id:
        abort(404)
    return item


def _file_of(s: sessions.Session, file_id: int) -> service.File:
    f = service.get_file(g.db, file_id)
    if f is None or f.session_id != s.id:
        abort(404)
    return f


def _done(s: sessions.Session, text: str, anchor: str | None = None):
    flash(text, "ok")
    return links.redirect_to("documents.clerk_page", session_id=s.id, _anchor=anchor)


@bp.post("/clerk/sessions/<int:session_id>/unterlagen/punkt/<int:item_id>")
@auth_required
def clerk_item_edit(session_id: int, item_id: int):
    s = _session_or_404(session_id)
    _item_of(s, item_id)
    try:
        doc_acts.edit_item(g.db, item_id, g.actor, title=request.form.get("title", ""),
                           number=request.form.get("number", ""), public=not request.form.get("nonpublic"))
    except DocumentError as exc:
        return _render_clerk(s, [str(exc)], 422)
    return _done(s, i18n.t("docs.clerk.saved"), f"citem-{item_id}")


@bp.post("/clerk/sessions/<int:session_id>/unterlagen/datei/<int:file_id>")
@auth_required
def clerk_file_edit(session_id: int, file_id: int):
    s = _session_or_404(session_id)
    _file_of(s, file_id)
    try:
        doc_acts.edit_file(g.db, file_id, g.actor, title=request.form.get("title", ""),
                           public=not request.form.get("nonpublic"))
    except DocumentError as exc:
        return _render_clerk(s, [str(exc)], 422)
    return _done(s, i18n.t("docs.clerk.saved"), f"cfile-{file_id}")


@bp.post("/clerk/sessions/<int:session_id>/unterlagen/datei/<int:file_id>/verschieben")
@auth_required
def clerk_file_move(session_id: int, file_id: int):
    s = _session_or_404(session_id)
    _file_of(s, file_id)
    try:
        doc_acts.move_file(g.db, file_id, _item_choice(s), g.actor)
    except DocumentError as exc:
        return _render_clerk(s, [str(exc)], 422)
    return _done(s, i18n.t("docs.clerk.moved"), f"cfile-{file_id}")


@bp.post("/clerk/sessions/<int:session_id>/unterlagen/reihenfolge")
@auth_required
def clerk_reorder(session_id: int):
    s = _session_or_404(session_id)
    step = {"up": -1, "down": 1}.get(request.form.get("step", ""))
    kind, raw = request.form.get("kind", ""), request.form.get("id", "")
    if step is None or kind not in ("item", "file") or not forms.is_row_id(raw):
        return _render_clerk(s, [i18n.t("docs.clerk.bad_request")], 422)
    if kind == "item":
        _item_of(s, int(raw))
        doc_acts.reorder(g.db, g.actor, item_id=int(raw), step=step)
    else:
        _file_of(s, int(raw))
        doc_acts.reorder(g.db, g.actor, file_id=int(raw), step=step)
    return links.redirect_to("documents.clerk_page", session_id=s.id, _anchor=f"c{kind}-{raw}")


@bp.post("/clerk/sessions/<int:session_id>/unterlagen/datei/<int:file_id>/ersetzen")
@auth_required
def clerk_file_replace(session_id: int, file_id: int):
    s = _session_or_404(session_id)
    f = _file_of(s, file_id)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _render_clerk(s, [i18n.t("docs.clerk.no_files")], 422)
    try:
        put = doc_acts.replace_file(_cfg(), g.db, file_id, upload.filename, upload.stream, g.actor)
    except DocumentError as exc:
        return _render_clerk(s, [str(exc)], 422)
    if put.view_problem:  # served as delivered: no viewer's copy (documents/viewcopy.py)
        flash(i18n.t("docs.clerk.unprepared", what=upload.filename, why=put.view_problem), "error")
    return _done(s, i18n.t("docs.clerk.replaced_one", title=f.title), f"cfile-{put.id}")


@bp.route("/clerk/sessions/<int:session_id>/unterlagen/datei/<int:file_id>/loeschen", methods=["GET", "POST"])
@auth_required
def clerk_file_delete(session_id: int, file_id: int):
    """GET asks (never deletes); the page's POST button deletes."""
    s = _session_or_404(session_id)
    f = _file_of(s, file_id)
    if request.method == "GET":
        return _confirm(s, i18n.t("docs.clerk.delete_file_q", title=f.title), i18n.t("docs.clerk.delete_file_hint"),
                        links.link("documents.clerk_file_delete", session_id=s.id, file_id=f.id))
    try:
        doc_acts.delete_file(_cfg(), g.db, file_id, g.actor)
    except DocumentError as exc:
        return _render_clerk(s, [str(exc)], 422)
    return _done(s, i18n.t("docs.clerk.deleted_file", title=f.title), "clerk-agenda")


@bp.route("/clerk/sessions/<int:session_id>/unterlagen/punkt/<int:item_id>/loeschen", methods=["GET", "POST"])
@auth_required
def clerk_item_delete(session_id: int, item_id: int):
    s = _session_or_404(session_id)
    item = _item_of(s, item_id)
    n = sum(1 for f in service.files(g.db, s.id) if f.item_id == item_id)
    label = f"{item.number} {item.title}".strip()
    if request.method == "GET":
        return _confirm(s, i18n.t("docs.clerk.delete_item_q", title=label), i18n.t("docs.clerk.delete_item_hint"),
                        links.link("documents.clerk_item_delete", session_id=s.id, item_id=item.id), files=n)
    try:
        doc_acts.delete_item(_cfg(), g.db, item_id, g.actor, with_files=request.form.get("with_files") == "1")
    except DocumentError as exc:
        return _render_clerk(s, [str(exc)], 422)
    return _done(s, i18n.t("docs.clerk.deleted_item", title=label), "clerk-agenda")


def _confirm(s: sessions.Session, question: str, hint: str, action: str, files: int = 0):
    resp = Response(render_template("clerk/doc_delete.html", s=s, question=question, hint=hint, action=action,
                                    files=files))
    resp.headers["Cache-Control"] = "no-store"
    return resp
