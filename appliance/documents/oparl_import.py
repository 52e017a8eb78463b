"""Fetching an OParl meeting (server URL or a folder of saved OParl JSON) into a session.

I/O only; the reading is oparl.py, every outside request goes through appliance.outside (its address rule,
redirects, sizes, timeouts, retries). 404 for an empty list is read as empty (a known server quirk); a file
whose sha512/sha1 checksum does not match is refused and reported; a rerun resumes: items and files already
imported (by their OParl id) are not fetched again.

Nothing is dropped in silence: every agenda item, consultation, paper and file the meeting names is either
imported (`Report.arrived`) or listed by name with its reason (`Report.skipped`); `Report.found` counts what
the source held. Lists are read in both OParl shapes (bare array, paged object) wherever they appear, and
their pages are followed (a `next` pointing back is refused). Limits (items, files, pages, JSON depth and
size, requests, redirects, file size) refuse the import with a German message naming the limit.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import sqlite_utils

from appliance import outside
from appliance.config import Config
from appliance.documents import DocumentError, jobs, oparl, rules, service, viewcopy
from appliance.documents.blobs import Blobs
from appliance.outside import FetchError, LimitExceeded

log = logging.getLogger(__name__)

ITEM, CONSULTATION, PAPER, FILE, JSON_FILE = "Tagesordnungspunkt", "Beratung", "Vorlage", "Datei", "JSON-Datei"
KINDS = (ITEM, CONSULTATION, PAPER, FILE)
CODES = {ITEM: "item", CONSULTATION: "consultation", PAPER: "paper", FILE: "file", JSON_FILE: "json"}
__all__ = ["FetchError", "LimitExceeded"]


@dataclass(frozen=True)
class ImportLimits:
    items: int = 1000  # agenda items of one meeting (real: 10–70)
    files: int = 5000  # files of one meeting with its papers (real: up to a few hundred)
    pages: int = 200  # pages of one list
    json_files: int = 20_000  # .json files in one folder
    json_bytes: int = oparl.MAX_JSON
    json_depth: int = oparl.MAX_DEPTH


class Source(Protocol):
    def get_json(self, url: str) -> Any: ...  # None: not there (HTTP 404, not in the folder)
    def open(self, url: str) -> Iterator[bytes]: ...


class HttpSource:
    """An OParl server, through appliance.outside (the clerk's URL decides which hosts may be fetched)."""

    def __init__(self, fetcher: outside.Fetcher, limits: ImportLimits | None = None) -> None:
        self.fetcher, self.limits = fetcher, limits or ImportLimits()

    @classmethod
    def for_url(cls, cfg: Config, url: str, extra_hosts: Iterable[str] = (), *,
                limits: outside.Limits | None = None, resolver: outside.Resolver | None = None) -> HttpSource:
        gate = outside.Gate.for_import(cfg, url, extra_hosts, resolver=resolver)
        return cls(outside.Fetcher(gate, limits or outside.Limits(file_bytes=rules.MAX_FILE)))

    def get_json(self, url: str) -> Any:
        try:
            data = self.fetcher.get_bytes(url)
        except outside.NotFound:
            return None
        return oparl.load_json(data, url[:120], max_bytes=self.limits.json_bytes, max_depth=self.limits.json_depth)

    def open(self, url: str) -> Iterator[bytes]:
        return self.fetcher.stream(url, rules.MAX_FILE)


def looks_like_oparl_dir(path: Path) -> bool:
    """A folder holding .json files is read as saved OParl (a documents folder has no .json: not allowed)."""
    return path.is_dir() and next((p for p in path.rglob("*.json") if p.is_file()), None) is not None


class DirSource:
    """A folder of saved OParl JSON (objects, list pages in both shapes) and the files next to them.

    Every object with an id is indexed, also embedded ones (a Consultation inside a Paper: its parent is
    remembered, since real servers leave out `paper` there). Unreadable .json files are listed in
    `unreadable` (name and reason), never skipped in silence."""

    def __init__(self, root: Path, limits: ImportLimits | None = None) -> None:
        self.root = Path(root)
        self.limits = limits or ImportLimits()
        self.index: dict[str, dict] = {}
        self.parent: dict[str, dict] = {}  # embedded object id → the object it is embedded in
        self.unreadable: list[tuple[str, str]] = []
        self.files: dict[str, Path | None] = {}  # file name → path (None: the name occurs twice)
        paths = sorted(self.root.rglob("*"))
        json_paths = [p for p in paths if p.suffix.lower() == ".json" and p.is_file() and not p.is_symlink()]
        if len(json_paths) > self.limits.json_files:
            raise LimitExceeded(f"Zu viele JSON-Dateien im Ordner ({len(json_paths)}; höchstens "
                                f"{self.limits.json_files})")
        for path in paths:
            if path.is_file() and not path.is_symlink() and path.suffix.lower() != ".json":
                self.files[path.name] = None if path.name in self.files else path
        for path in json_paths:
            rel = str(path.relative_to(self.root))
            try:
                if path.stat().st_size > self.limits.json_bytes:
                    raise oparl.OParlError(f"{rel}: JSON zu groß (höchstens {self.limits.json_bytes / 2**20:g} MB)")
                obj = oparl.load_json(path.read_bytes(), rel, max_bytes=self.limits.json_bytes,
                                      max_depth=self.limits.json_depth)
            except OSError as exc:
                self.unreadable.append((rel, f"nicht lesbar ({exc.strerror or exc})"))
                continue
            except oparl.OParlError as exc:
                self.unreadable.append((rel, str(exc).removeprefix(f"{rel}: ")))
                continue
            self._add(obj, top=True)

    def _add(self, obj: Any, top: bool) -> None:
        """Index obj and everything embedded in it; iterative (depth is bounded by load_json anyway)."""
        stack: list[tuple[Any, dict | None, bool]] = [(obj, None, top)]
        while stack:
            value, parent, is_top = stack.pop()
            if isinstance(value, list):
                stack.extend((v, parent, is_top) for v in reversed(value))
                continue
            if not isinstance(value, dict):
                continue
            oid = oparl.text(value.get("id")) if isinstance(value.get("id"), str) else None
            if oparl.is_list_object(value):
                links = value.get("links") if isinstance(value.get("links"), dict) else {}
                if oparl.text(links.get("self")):
                    self.index.setdefault(oparl.text(links.get("self")) or "", value)
                stack.extend((v, parent, is_top) for v in reversed(value["data"]))
                continue
            if oid:
                if is_top or oid not in self.index:
                    self.index[oid] = value
                if parent is not None and oparl.kind(parent) == "Paper":
                    self.parent.setdefault(oid, parent)
            for v in value.values():
                if isinstance(v, (dict, list)):
                    stack.append((v, value if oid else parent, False))

    def meetings(self) -> list[str]:
        return [k for k, o in self.index.items() if oparl.kind(o) == "Meeting"]

    def get_json(self, url: str) -> Any:
        return self.index.get(url)

    def parent_of(self, object_id: str) -> dict | None:
        return self.parent.get(object_id)

    def consultations_of(self, meeting_id: str) -> list[dict]:
        """Consultations in the folder that name this meeting (the link real servers give from the paper)."""
        return [o for o in self.index.values() if oparl.kind(o) == "Consultation"
                and oparl.ref(o.get("meeting")) == meeting_id]

    def open(self, url: str) -> Iterator[bytes]:
        name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
        if not name or name.startswith(".") or name not in self.files:
            raise FetchError(f"Datei fehlt im Ordner: {name or url[:100]}")
        path = self.files[name]
        if path is None:
            raise FetchError(f"Datei „{name}“ liegt mehrfach im Ordner: nicht eindeutig")
        return _read(path)


def _read(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        yield from iter(lambda: fh.read(1 << 20), b"")


@dataclass
class Report:
    """What the source held, what arrived, what was skipped (by name, with the reason)."""

    meeting: str = ""
    found: Counter = field(default_factory=Counter)
    arrived: Counter = field(default_factory=Counter)
    skipped: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, name, reason)
    notes: list[str] = field(default_factory=list)
    files: int = 0  # new files stored by this run
    already: int = 0  # files there from an earlier run (resumed)
    present: list[str] = field(default_factory=list)  # their names: a re-import says what it left as it was

    NAMED = 50  # names listed of the files already there; beyond that a count

    def arrive(self, kind: str) -> None:
        self.found[kind] += 1
        self.arrived[kind] += 1

    def skip(self, kind: str, name: str, reason: str) -> None:
        self.found[kind] += 1
        self.skipped.append((kind, " ".join(str(name).split())[:160], reason))

    @property
    def items(self) -> int:
        return self.arrived[ITEM]

    @property
    def problems(self) -> list[str]:
        return [f"{kind} „{name}“: {reason}" for kind, name, reason in self.skipped]

    def skipped_count(self, kind: str) -> int:
        return sum(1 for k, _n, _r in self.skipped if k == kind)

    def summary(self) -> dict:
        """For the job record: per kind (code: item, consultation, paper, file, json) found, arrived, skipped."""
        counts = [{"kind": CODES[k], "found": self.found[k], "arrived": self.arrived[k],
                   "skipped": self.skipped_count(k)} for k in CODES if self.found[k]]
        return {"meeting": self.meeting, "counts": counts, "new_files": self.files, "already": self.already,
                "notes": self.notes + self.present_lines()}

    def present_lines(self) -> list[str]:
        """„bereits vorhanden: <name>“ for each file an earlier run stored (the first NAMED, then a count)."""
        out = [f"bereits vorhanden: {name}" for name in self.present[:self.NAMED]]
        if len(self.present) > self.NAMED:
            out.append(f"… und {len(self.present) - self.NAMED} weitere bereits vorhanden")
        return out

    def lines(self) -> list[str]:
        """The report in German, one line each: per kind found / arrived / skipped, then notes."""
        out = []
        for kind in (*KINDS, JSON_FILE):
            if self.found[kind]:
                out.append(f"{kind}: {self.found[kind]} in der Quelle, {self.arrived[kind]} übernommen, "
                           f"{self.skipped_count(kind)} übersprungen")
        out.append(f"{self.files} Datei(en) neu gespeichert, {self.already} schon vorhanden (fortgesetzt)")
        return out + self.present_lines() + self.notes


class _Import:
    def __init__(self, db: sqlite_utils.Database, blobs: Blobs, session_id: int, source: Source,
                 job_id: int | None, actor: str, limits: ImportLimits) -> None:
        self.db, self.blobs, self.session_id, self.source = db, blobs, session_id, source
        self.job_id, self.actor, self.limits = job_id, actor, limits
        self.report = Report()

    # --- reading the source -------------------------------------------------------------------

    def get(self, url: str) -> Any:
        """An object or list answer; None if it is not there. A limit reached or a refused JSON aborts."""
        return self.source.get_json(url)

    def collect(self, value: Any, kind: str) -> list[dict]:
        """The objects of a list-valued property in either shape, pages followed, URLs fetched. What cannot
        be read is skipped by name (and counted as found); the returned objects are the caller's to count."""
        out: list[dict] = []
        seen_pages: set[str] = set()
        queue: list[Any] = []
        found, nxt = oparl.entries(value)
        queue.extend(found)
        while True:
            while queue:
                entry = queue.pop(0)
                if isinstance(entry, dict):
                    out.append(entry)
                    continue
                url = oparl.text(entry) if isinstance(entry, str) else None
                if not url:
                    self.report.skip(kind, repr(entry)[:80], "weder Objekt noch Verweis")
                    continue
                try:
                    obj = self.get(url)
                except (FetchError, oparl.OParlError) as exc:
                    if isinstance(exc, LimitExceeded):
                        raise
                    self.report.skip(kind, url, str(exc))
                    continue
                if obj is None:
                    self.report.skip(kind, url, "nicht gefunden (HTTP 404 oder nicht im Ordner)")
                elif isinstance(obj, list) or oparl.is_list_object(obj):
                    more, more_next = oparl.entries(obj)  # a URL standing for a whole list
                    queue.extend(more)
                    if more_next:
                        if nxt:
                            self.report.skip(kind, more_next, "zweite Seitenfolge in einer Liste nicht gelesen")
                        else:
                            nxt = more_next
                elif isinstance(obj, dict):
                    out.append(obj)
                else:
                    self.report.skip(kind, url, "kein OParl-Objekt")
                if len(out) > self.limits.files:
                    raise LimitExceeded(f"Zu viele Einträge in einer Liste (höchstens {self.limits.files})")
            if not nxt:
                return out
            if nxt in seen_pages:
                raise oparl.OParlError(f"Die Liste verweist mit links.next zurück auf die schon gelesene Seite "
                                       f"{nxt[:120]} (Schleife).")
            seen_pages.add(nxt)
            if len(seen_pages) > self.limits.pages:
                raise LimitExceeded(f"Zu viele Listenseiten (höchstens {self.limits.pages} je Liste)")
            page = self.get(nxt)
            if page is None:
                self.report.skip(kind, nxt, "Listenseite nicht gefunden: ihre Einträge fehlen")
                return out
            found, nxt = oparl.list_page(page)
            queue.extend(found)

    def files_of(self, obj: dict, keys: tuple[str, ...]) -> list[oparl.OFile]:
        out: list[oparl.OFile] = []
        for key in keys:
            for raw in self.collect(obj.get(key), FILE):
                why = oparl.file_problem(raw)
                if why:
                    self.report.skip(FILE, oparl.label(raw), why)
                    continue
                f = oparl.parse_file(raw)
                if f is not None:
                    out.append(f)
        return out

    # --- the meeting --------------------------------------------------------------------------

    def run(self, meeting_url: str) -> Report:
        raw = self.get(meeting_url)
        if raw is None:
            raise FetchError(f"Sitzung nicht gefunden: {meeting_url[:120]}")
        meeting = oparl.check_meeting(raw)
        mid = oparl.ref(meeting) or meeting_url
        self.report.meeting = oparl.text(meeting.get("name")) or mid
        raw_items = self.collect(meeting.get("agendaItem"), ITEM)
        if len(raw_items) > self.limits.items:
            raise LimitExceeded(f"Zu viele Tagesordnungspunkte ({len(raw_items)}; höchstens {self.limits.items})")
        plan: list[tuple[int | None, oparl.OFile]] = [(None, f) for f in self.files_of(meeting, oparl.MEETING_FILES)]
        by_item: dict[str, list[dict]] = {}
        related = getattr(self.source, "consultations_of", None)
        for cons in related(mid) if related else []:
            by_item.setdefault(oparl.ref(cons.get("agendaItem")) or "", []).append(cons)
        seen_cons: set[str] = set()
        papers: dict[str, str] = {}  # paper id → the item it was attached to
        missing_public = 0
        for n, raw_item in enumerate(oparl.agenda_order(raw_items)):
            item, why = oparl.parse_agenda_item(raw_item, f"{mid}#{n}")
            if item is None:
                self.report.skip(ITEM, oparl.label(raw_item), why or "")
                continue
            try:
                title = item.name if len(item.name) <= 500 else item.name[:499] + "…"
                item_id = service.add_item(self.db, self.session_id, title, number=item.number, public=item.public,
                                           external_id=item.id, actor=self.actor)
            except DocumentError as exc:
                self.report.skip(ITEM, oparl.label(raw_item), str(exc))
                continue
            self.report.arrive(ITEM)
            missing_public += not item.public_given
            plan += [(item_id, f) for f in self.files_of(raw_item, oparl.ITEM_FILES)]
            # `consultation` (1.0, 1.1); `consultations` (drafts before 1.0, still served by some vendors)
            consultations = [c for key in ("consultation", "consultations")
                             for c in self.collect(raw_item.get(key), CONSULTATION)]
            consultations += by_item.get(item.id, [])
            for cons in consultations:
                cid = oparl.ref(cons) or repr(cons)[:80]
                if cid in seen_cons:
                    continue
                seen_cons.add(cid)
                plan += self.consultation(cons, cid, item, item_id, papers)
        for cid in (oparl.ref(c) or "" for cs in by_item.values() for c in cs):
            if cid not in seen_cons:  # in the folder, naming this meeting, but no agenda item of it
                seen_cons.add(cid)
                self.report.skip(CONSULTATION, cid, "gehört zu keinem Tagesordnungspunkt dieser Sitzung")
                parent = self.source_parent(cid)
                pid = oparl.ref(parent) if parent else None
                if pid and pid not in papers:
                    papers[pid] = ""
                    self.report.skip(PAPER, oparl.label(parent), "keinem Tagesordnungspunkt dieser Sitzung zugeordnet")
        if missing_public:
            self.report.notes.append(
                f"{missing_public} Tagesordnungspunkt(e) ohne Angabe „public“ (OParl 1.0): als öffentlich "
                "übernommen – OParl veröffentlicht nur Öffentliches. Bei Bedarf im Sitzungsdienst ändern.")
        self.download(self.unique(plan))
        return self.report

    def source_parent(self, object_id: str) -> dict | None:
        parent_of = getattr(self.source, "parent_of", None)
        return parent_of(object_id) if parent_of else None

    def consultation(self, cons: dict, cid: str, item: oparl.OAgendaItem, item_id: int,
                     papers: dict[str, str]) -> list[tuple[int | None, oparl.OFile]]:
        """A consultation of an agenda item: its paper's files go to the item."""
        paper_ref = oparl.consultation_paper(cons, self.source_parent(cid))
        if paper_ref is None:
            self.report.skip(CONSULTATION, cid, "ohne Vorlage (paper fehlt)")
            return []
        paper_id = oparl.ref(paper_ref) or ""
        if paper_id in papers:  # the same paper twice in one meeting: its files stay with the first item
            self.report.arrive(CONSULTATION)
            self.report.notes.append(f"Vorlage {paper_id[-60:]} auch bei TOP {item.number or item.name[:40]}: "
                                     "Dateien nur beim ersten Punkt")
            return []
        try:
            paper = self.get(paper_ref) if isinstance(paper_ref, str) else paper_ref
            if paper is None:
                raise FetchError("nicht gefunden (HTTP 404 oder nicht im Ordner)")
            oparl.check_paper(paper)
        except (FetchError, oparl.OParlError) as exc:
            if isinstance(exc, LimitExceeded):
                raise
            self.report.skip(CONSULTATION, cid, f"Vorlage nicht lesbar: {exc}")
            self.report.skip(PAPER, paper_id or str(paper_ref)[:120], str(exc))
            papers[paper_id] = ""
            return []
        papers[paper_id] = item.id
        self.report.arrive(CONSULTATION)
        self.report.arrive(PAPER)
        return [(item_id, f) for f in self.files_of(paper, oparl.PAPER_FILES)]

    def unique(self, plan: list[tuple[int | None, oparl.OFile]]) -> list[tuple[int | None, oparl.OFile]]:
        seen, out = set(), []
        for item_id, f in plan:
            if (item_id, f.id) not in seen:
                seen.add((item_id, f.id))
                out.append((item_id, f))
        if len(out) > self.limits.files:
            raise LimitExceeded(f"Zu viele Dateien ({len(out)}; höchstens {self.limits.files} je Sitzung)")
        return out

    # --- the files ----------------------------------------------------------------------------

    def download(self, plan: list[tuple[int | None, oparl.OFile]]) -> None:
        db, report = self.db, self.report
        jobs.progress(db, self.job_id, total=len(plan), problems=report.problems)
        for n, (item_id, f) in enumerate(plan, 1):
            ext_id = f"{item_id}:{f.id}"
            exists = db.execute("SELECT 1 FROM doc_files WHERE session_id = ? AND external_id = ?",
                                [self.session_id, ext_id]).fetchone()
            if exists:
                report.already += 1
                report.present.append(" ".join(f.file_name.split())[:160])
                report.arrive(FILE)
            else:
                try:
                    name = rules.check_name(f.file_name[-rules.MAX_NAME_CHARS:])
                    chunks = self.source.open(f.url)
                    head = next(chunks, b"")
                    kind = rules.kind_of(name, head[:8192])
                    stored = self.blobs.put_chunks(_chain(head, chunks), rules.MAX_FILE, expect=f.checksums)
                    put = service.put_file(db, self.session_id, name=name, stored=stored, mime=kind.mime,
                                           item_id=item_id, title=f.name, external_id=ext_id, actor=self.actor)
                    if put.view_problem:  # kept and served as it came; the clerk is told
                        report.notes.append(viewcopy.sentence(name, put.view_problem))
                    report.files += 1
                    report.arrive(FILE)
                except outside.TooManyRequests:  # the import's budget, not this file's
                    raise
                except (DocumentError, FetchError) as exc:
                    report.skip(FILE, f"{f.name} ({f.url[:100]})", str(exc))
            jobs.progress(db, self.job_id, done=n, problems=report.problems)


def _chain(head: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield head
    yield from rest


def import_meeting(db: sqlite_utils.Database, blobs: Blobs, session_id: int, source: Source, meeting_url: str, *,
                   import_id: int | None = None, actor: str = "oparl", limits: ImportLimits | None = None) -> Report:
    """Import one meeting; raises FetchError / OParlError / LimitExceeded when the whole import cannot go on
    (what arrived until then stays: a rerun resumes)."""
    return _Import(db, blobs, session_id, source, import_id, actor, limits or ImportLimits()).run(meeting_url)


def source_for(cfg: Config, source: str, extra_hosts: Iterable[str] = (),
               resolver: outside.Resolver | None = None) -> tuple[Source, list[str], list[tuple[str, str]]]:
    """(the source, its meeting URLs, unreadable .json files) for a URL or a folder of saved OParl JSON."""
    if source.strip().lower().startswith(("http://", "https://")):
        return HttpSource.for_url(cfg, source.strip(), extra_hosts, resolver=resolver), [source.strip()], []
    folder = DirSource(Path(source))
    meetings = folder.meetings()
    if not meetings:
        why = "; ".join(f"{name}: {reason}" for name, reason in folder.unreadable[:5])
        raise DocumentError(f"Im Ordner {os.fspath(source)} ist keine OParl-Sitzung (Meeting)"
                            + (f" – nicht lesbar: {why}" if why else "."))
    return folder, meetings, folder.unreadable
