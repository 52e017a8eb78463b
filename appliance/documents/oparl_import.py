"""Fetching an OParl meeting (server URL or a folder of saved OParl JSON) into a session.

I/O only; the reading is oparl.py. Timeouts and retries on every request; 404 for an empty list is read
as empty (a known server quirk); a file whose sha512/sha1 checksum does not match is refused and reported;
a rerun resumes: items and files already imported (by their OParl id) are skipped.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import sqlite_utils

from appliance.documents import DocumentError, jsonlimits, oparl, rules, service
from appliance.documents.blobs import Blobs
from appliance.store.db import now
from appliance.store.transaction import transaction

log = logging.getLogger(__name__)
MAX_JSON = 32 * 1024 * 1024
USER_AGENT = "Sitzungsbox-OParl/1"


class FetchError(DocumentError):
    pass


class Source(Protocol):
    def get_json(self, url: str) -> Any: ...
    def open(self, url: str) -> Iterator[bytes]: ...


class HttpSource:
    def __init__(self, timeout: float = 20, retries: int = 3, backoff: float = 0.5) -> None:
        self.timeout, self.retries, self.backoff = timeout, retries, backoff

    def _request(self, url: str):
        if not url.startswith(("http://", "https://")):
            raise FetchError(f"keine http(s)-Adresse: {url[:100]}")
        last: Exception | None = None
        for attempt in range(self.retries):
            try:
                req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})  # noqa: S310 - scheme checked
                return urllib.request.urlopen(req, timeout=self.timeout)  # noqa: S310 - http(s) checked above
            except urllib.error.HTTPError as exc:
                if exc.code == 404:
                    raise
                last = exc
                if exc.code < 500 and exc.code != 429:
                    break
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                last = exc
            time.sleep(self.backoff * 2 ** attempt)  # real servers answer 500 now and then
        raise FetchError(f"{url[:120]}: {last}")

    def get_json(self, url: str) -> Any:
        try:
            with self._request(url) as resp:
                data = resp.read(MAX_JSON + 1)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise FetchError(f"{url[:120]}: HTTP {exc.code}") from exc
        if len(data) > MAX_JSON:
            raise FetchError(f"{url[:120]}: Antwort zu groß")
        try:
            return json.loads(data)
        except ValueError as exc:
            raise FetchError(f"{url[:120]}: kein gültiges JSON ({exc})") from exc

    def open(self, url: str) -> Iterator[bytes]:
        try:
            resp = self._request(url)
        except urllib.error.HTTPError as exc:
            raise FetchError(f"{url[:120]}: HTTP {exc.code}") from exc
        with resp:
            yield from iter(lambda: resp.read(1 << 20), b"")


class DirSource:
    """A folder of saved OParl JSON (objects and list pages) and the files next to them."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.index: dict[str, Any] = {}
        self.problems: list[str] = []  # JSON files that are no readable OParl (jsonlimits: size, depth)
        for path in sorted(self.root.rglob("*.json")):
            rel = path.relative_to(self.root).as_posix()
            try:
                jsonlimits.check_size(path.stat().st_size, rel)
                obj = jsonlimits.loads(path.read_bytes(), rel)
            except OSError:
                continue
            except DocumentError as exc:
                self.problems.append(str(exc))
                continue
            found = False
            for o in (obj.get("data") if isinstance(obj, dict) and isinstance(obj.get("data"), list) else [obj]):
                if isinstance(o, dict) and isinstance(o.get("id"), str):
                    self.index[o["id"]] = o
                    found = True
            if not found:
                self.problems.append(f"{rel}: kein OParl-Objekt (keines mit einer „id“ als Text).")

    def meetings(self) -> list[str]:
        return [k for k, o in self.index.items() if oparl.kind(o) == "Meeting"]

    def get_json(self, url: str) -> Any:
        return self.index.get(url)

    def open(self, url: str) -> Iterator[bytes]:
        name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
        path = self.root / name
        if not name or "/" in name or name.startswith(".") or not path.is_file() or path.is_symlink():
            raise FetchError(f"Datei fehlt im Ordner: {name or url}")
        with open(path, "rb") as fh:
            yield from iter(lambda: fh.read(1 << 20), b"")


@dataclass
class Report:
    items: int = 0
    files: int = 0
    already: int = 0
    problems: list[str] = field(default_factory=list)


def begin(db: sqlite_utils.Database, session_id: int, source: str) -> int:
    with transaction(db):
        cur = db.execute("INSERT INTO doc_imports(session_id, source, state, started_at, updated_at)"
                         " VALUES (?, ?, 'running', ?, ?)", [session_id, source[:500], now(), now()])
    return cur.lastrowid


def _progress(db: sqlite_utils.Database, import_id: int | None, **values: Any) -> None:
    if import_id is None:
        return
    values["updated_at"] = now()
    if "problems" in values:
        values["problems"] = json.dumps(values["problems"][-200:], ensure_ascii=False)
    cols = ", ".join(f"{k} = ?" for k in values)
    with transaction(db):
        sql = f"UPDATE doc_imports SET {cols} WHERE id = ?"  # noqa: S608 - column names are ours
        db.execute(sql, [*values.values(), import_id])


def _paper(source: Source, consultation: Any, problems: list[str]) -> oparl.OPaper | None:
    if consultation is None:
        return None
    try:
        cons = source.get_json(consultation) if isinstance(consultation, str) else consultation
        paper = oparl.consultation_paper(cons)
        if isinstance(paper, str):
            paper = source.get_json(paper)
        return oparl.parse_paper(paper) if paper else None
    except (oparl.OParlError, DocumentError) as exc:
        problems.append(f"Vorlage zu {oparl.ref(consultation)}: {exc}")
        return None


def import_meeting(db: sqlite_utils.Database, blobs: Blobs, session_id: int, source: Source, meeting_url: str, *,
                   import_id: int | None = None, actor: str = "oparl") -> Report:
    report = Report()
    meeting = oparl.parse_meeting(source.get_json(meeting_url))
    report.problems += meeting.skipped
    plan: list[tuple[int | None, oparl.OFile]] = [(None, f) for f in meeting.files]
    for item in meeting.items:
        if item.heading:
            continue
        item_id = service.add_item(db, session_id, item.name, number=item.number, public=item.public,
                                   external_id=item.id, actor=actor)
        report.items += 1
        paper = _paper(source, item.consultation, report.problems)
        files = item.files + (paper.files if paper else [])
        plan += [(item_id, f) for f in files]
    _progress(db, import_id, total=len(plan), problems=report.problems)
    for n, (item_id, f) in enumerate(plan, 1):
        ext_id = f"{item_id}:{f.id}"
        exists = db.execute("SELECT 1 FROM doc_files WHERE session_id = ? AND external_id = ?",
                            [session_id, ext_id]).fetchone()
        if exists:
            report.already += 1
        else:
            try:
                name = rules.check_name(f.file_name[-rules.MAX_NAME_CHARS:])
                chunks = source.open(f.url)
                head = next(chunks, b"")
                kind = rules.kind_of(name, head[:8192])
                stored = blobs.put_chunks(_chain(head, chunks), rules.MAX_FILE, expect=f.checksums)
                service.add_file(db, session_id, name=name, stored=stored, mime=kind.mime, item_id=item_id,
                                 title=f.name, external_id=ext_id, actor=actor)
                report.files += 1
            except DocumentError as exc:
                report.problems.append(f"{f.name} ({f.url[:100]}): {exc}")
        _progress(db, import_id, done=n, problems=report.problems)
    return report


def _chain(head: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield head
    yield from rest


def run_logged(db_path: Path, state_dir: Path, session_id: int, url: str, import_id: int) -> None:
    """The clerk page's background import: never raises, records the outcome."""
    from appliance.store import open_db
    db = open_db(db_path, migrate=False)
    try:
        source: Source = HttpSource()
        report = import_meeting(db, service.blobs_for(state_dir), session_id, source, url, import_id=import_id)
        _progress(db, import_id, state="done", problems=report.problems)
    except Exception as exc:  # noqa: BLE001 - recorded for the clerk
        log.warning("OParl import %s failed: %s", import_id, exc)
        row = db.execute("SELECT problems FROM doc_imports WHERE id = ?", [import_id]).fetchone()
        problems = json.loads(row[0]) if row else []
        _progress(db, import_id, state="failed", problems=[*problems, f"Abbruch: {exc}"])
    finally:
        db.conn.close()
