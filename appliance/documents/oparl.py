"""OParl 1.0 / 1.1 reader: pure functions from JSON bytes and parsed JSON to typed records. No HTTP here
(oparl_import does the fetching, through appliance.outside).

Structure comes from the data, never from titles: every AgendaItem is an item (also "A Öffentliche
Sitzung"), `public` decides who reads it, `order` (or the list order) its place, `number` its number.

Real servers' quirks handled here, each named where it is handled:
- properties are either a URL string or the embedded object (spec: both allowed) → `ref()` / `obj()`;
- lists come as a bare JSON array or as a paged list object `{"data": [...], "links": {"next": ...}}`
  (both read everywhere a list can appear) → `entries()`; `links.next` pointing back is a loop → refused;
- "N/A", "", "-" and null stand for "missing" (several vendors) → `text()`;
- `type` missing on embedded objects (SD.NET list items, others) → the record kind is taken from context;
- AgendaItem without `public` (OParl 1.0 servers, e.g. SD.NET RIM) → public: OParl only publishes public
  data; the importer notes how many items lacked it (the title is never read for this);
- `order` counted from 1 or missing → agenda order is list order, `order` only sorts when all items have it;
- AgendaItem files: `auxiliaryFile` (1.1) and `resolutionFile` (1.0 and 1.1);
- Consultation embedded in a Paper has no `paper` (its parent is the paper) → `consultation_paper(…, parent)`;
- File without `fileName` (SD.NET) → derived from the accessUrl's last path part or the name;
- `sha1Checksum` (1.0, deprecated in 1.1) and `sha512Checksum` (1.1); `size` as string or missing;
- line breaks and runs of spaces inside names;
- hostile JSON: nested deeper than MAX_DEPTH or bigger than the caller's limit → refused before parsing
  (`load_json`, an O(n) scan without recursion), so a RecursionError can never happen.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any
from urllib.parse import unquote, urlsplit

MISSING = {"", "n/a", "na", "-", "null", "none", "k.a.", "k. a."}
MAX_DEPTH = 64  # real OParl answers nest 5–7 levels
MAX_JSON = 16 * 1024 * 1024
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_BRACKETS = bytes(range(256)).translate(None, b"[]{}")  # every byte but the brackets: deleted by translate
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


class OParlError(ValueError):
    pass


def json_depth(data: bytes) -> int:
    """How deep the brackets of a JSON text nest, strings left out. O(n), no recursion."""
    brackets = _STRING.sub(b"", data).translate(None, _BRACKETS)
    return max(accumulate(_STEP[b] for b in brackets), default=0)


def load_json(data: bytes | str, what: str, *, max_bytes: int = MAX_JSON, max_depth: int = MAX_DEPTH) -> Any:
    """Parse one JSON answer or file with limits; OParlError with a German message naming the limit."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if len(raw) > max_bytes:
        raise OParlError(f"{what}: JSON zu groß ({size_text(len(raw))}; höchstens {size_text(max_bytes)})")
    if json_depth(raw) > max_depth:
        raise OParlError(f"{what}: JSON zu tief verschachtelt (höchstens {max_depth} Ebenen)")
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise OParlError(f"{what}: kein gültiges JSON (Zeile {exc.lineno}, Spalte {exc.colno})") from None
    except RecursionError:  # not reachable after the depth scan; kept so that it can never escape
        raise OParlError(f"{what}: JSON zu tief verschachtelt (höchstens {max_depth} Ebenen)") from None
    except ValueError:  # bad encoding, absurdly long numbers
        raise OParlError(f"{what}: kein gültiges JSON") from None


def size_text(n: int) -> str:
    return f"{n / 2**20:.3g} MB" if n >= 2**20 else f"{n} Bytes"


@dataclass(frozen=True)
class OFile:
    id: str
    name: str
    file_name: str
    mime: str
    access_url: str
    download_url: str | None
    size: int | None
    sha512: str | None
    sha1: str | None

    @property
    def url(self) -> str:
        return self.download_url or self.access_url

    @property
    def checksums(self) -> dict[str, str]:
        out = {}
        if self.sha512:
            out["sha512"] = self.sha512
        elif self.sha1:
            out["sha1"] = self.sha1
        return out


@dataclass(frozen=True)
class OAgendaItem:
    id: str
    number: str
    name: str
    public: bool
    order: int | None
    consultation: str | dict | None
    files: list[OFile] = field(default_factory=list)
    public_given: bool = True  # False: the source did not say (OParl 1.0); taken as public


@dataclass(frozen=True)
class OMeeting:
    id: str
    name: str
    start: str | None
    items: list[OAgendaItem]
    files: list[OFile]  # invitation, auxiliaryFile, …: documents of the whole meeting
    skipped: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class OPaper:
    id: str
    name: str
    reference: str
    files: list[OFile]


def text(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    s = " ".join(str(value).split())
    return None if s.casefold() in MISSING else s


def ref(value: Any) -> str | None:
    """A reference: the URL itself or the embedded object's id."""
    if isinstance(value, dict):
        return text(value.get("id"))
    return text(value)


def kind(obj: Any) -> str | None:
    """'Meeting', 'File', … from `type` (1.0 and 1.1 URLs alike); None if missing."""
    if not isinstance(obj, dict):
        return None
    t = text(obj.get("type"))
    return t.rstrip("/").rsplit("/", 1)[-1] if t else None


def label(obj: Any) -> str:
    """How a source object is named in a report: number and name, else its id."""
    if isinstance(obj, dict):
        name = " ".join(p for p in (text(obj.get("number")), text(obj.get("name")) or text(obj.get("fileName")))
                        if p)
        return (name or ref(obj) or "ohne Namen")[:160]
    return (text(obj) or repr(obj))[:160]


def _int(value: Any) -> int | None:
    try:
        n = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return n if n >= 0 else None


def _hex(value: Any, length: int) -> str | None:
    s = text(value)
    return s.lower() if s and re.fullmatch(rf"[0-9a-fA-F]{{{length}}}", s) else None


def is_list_object(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("data"), list)


def entries(value: Any) -> tuple[list[Any], str | None]:
    """The entries of a list-valued property or answer in either OParl shape, and the next page's URL.

    A bare JSON array → its entries; a paged list object → `data` and `links.next` (None on the last page);
    one embedded object or one URL where a list was expected → a list of it; null/missing → empty.
    Entries are returned as they are (objects or URL strings): the caller resolves URLs and names what it
    cannot use. A page whose `links.next` is its own `links.self` is a loop: OParlError."""
    if value is None or value == "":
        return [], None
    if isinstance(value, list):
        return list(value), None
    if is_list_object(value):
        links = value.get("links") if isinstance(value.get("links"), dict) else {}
        nxt = text(links.get("next"))
        if nxt and nxt == text(links.get("self")):
            raise OParlError(f"Die Listenseite {nxt[:120]} nennt sich selbst als nächste Seite (Schleife).")
        return list(value["data"]), nxt
    return [value], None


def list_page(obj: Any) -> tuple[list[Any], str | None]:
    """One page of an OParl list answer: its entries and the next page's URL (links.next), None on the last."""
    if not isinstance(obj, list) and not is_list_object(obj):
        raise OParlError("Die Antwort ist keine OParl-Liste (data fehlt).")
    return entries(obj)


def parse_file(obj: Any, skipped: list[str] | None = None) -> OFile | None:
    """A File object; None (and a note in skipped) if it has no usable URL."""
    reason = file_problem(obj)
    if reason:
        if skipped is not None:
            skipped.append(f"Datei „{label(obj)}“: {reason}")
        return None
    fid = ref(obj) or ""
    access, download = text(obj.get("accessUrl")), text(obj.get("downloadUrl"))
    url = download or access or ""
    file_name = text(obj.get("fileName")) or unquote(urlsplit(url).path.rsplit("/", 1)[-1]) or ""
    name = text(obj.get("name")) or file_name or "Datei"
    if not file_name or "." not in file_name:
        mime = (text(obj.get("mimeType")) or "").lower()
        ext = {"application/pdf": "pdf", "image/png": "png", "image/jpeg": "jpg", "text/plain": "txt"}.get(mime, "")
        file_name = f"{file_name or 'datei'}.{ext}" if ext else (file_name or "datei")
    return OFile(fid, name, file_name, (text(obj.get("mimeType")) or "application/octet-stream").lower(),
                 access or url, download, _int(obj.get("size")), _hex(obj.get("sha512Checksum"), 128),
                 _hex(obj.get("sha1Checksum"), 40))


def file_problem(obj: Any) -> str | None:
    if not isinstance(obj, dict):
        return "nur als Verweis, nicht eingebettet"
    if kind(obj) not in (None, "File"):
        return f"kein File-Objekt, sondern {kind(obj)}"
    if not text(obj.get("accessUrl")) and not text(obj.get("downloadUrl")):
        return "ohne accessUrl und downloadUrl"
    return None


def _files(values: Any, skipped: list[str]) -> list[OFile]:
    found, _next = entries(values)
    return [f for f in (parse_file(v, skipped) for v in found) if f is not None]


def parse_agenda_item(raw: Any, fallback_id: str) -> tuple[OAgendaItem | None, str | None]:
    """One AgendaItem (its own files not included: see item_file_lists) or the reason it cannot be one."""
    if not isinstance(raw, dict):
        return None, "nur als Verweis, nicht eingebettet"
    if kind(raw) not in (None, "AgendaItem"):
        return None, f"kein AgendaItem, sondern {kind(raw)}"
    name = text(raw.get("name")) or ""
    number = text(raw.get("number")) or ""
    if not name and not number:
        return None, "weder Name noch Nummer"
    public = raw.get("public")
    given = isinstance(public, bool)
    return OAgendaItem(ref(raw) or fallback_id, number, name or f"TOP {number}", public if given else True,
                       _int(raw.get("order")), raw.get("consultation"), [], given), None


ITEM_FILES = ("auxiliaryFile", "resolutionFile")
MEETING_FILES = ("invitation", "resultsProtocol", "verbatimProtocol", "auxiliaryFile")
PAPER_FILES = ("mainFile", "auxiliaryFile")


def agenda_order(items: list[dict]) -> list[dict]:
    """`order` (from 0 or 1, vendors differ) only decides when every item has one; else the list order."""
    if items and all(_int(d.get("order")) is not None for d in items):
        return sorted(items, key=lambda d: _int(d.get("order")) or 0)
    return list(items)


def check_meeting(obj: Any) -> dict:
    if not isinstance(obj, dict):
        raise OParlError("Die Antwort ist kein OParl-Objekt (kein JSON-Objekt).")
    k = kind(obj)
    if k is not None and k != "Meeting":
        raise OParlError(f"Das ist keine Sitzung (Meeting), sondern {k}.")
    if not ref(obj) or "agendaItem" not in obj and "name" not in obj:
        raise OParlError("Das Objekt hat weder id noch Tagesordnung: keine OParl-Sitzung.")
    items = obj.get("agendaItem")
    if items is not None and not isinstance(items, list) and not is_list_object(items):
        raise OParlError("agendaItem ist keine Liste.")
    return obj


def parse_meeting(obj: Any) -> OMeeting:
    """A meeting with everything embedded (a saved answer, a test): what is only referenced by URL is named
    in `skipped`; the importer fetches those instead."""
    check_meeting(obj)
    skipped: list[str] = []
    found, _next = entries(obj.get("agendaItem"))
    dicts = []
    for raw in found:
        if isinstance(raw, dict):
            dicts.append(raw)
        else:
            skipped.append(f"Tagesordnungspunkt „{label(raw)}“: nur als Verweis, nicht eingebettet")
    items: list[OAgendaItem] = []
    for n, raw in enumerate(agenda_order(dicts)):
        item, why = parse_agenda_item(raw, f"{ref(obj)}#{n}")
        if item is None:
            skipped.append(f"Tagesordnungspunkt „{label(raw)}“: {why}")
            continue
        files = [f for key in ITEM_FILES for f in _files(raw.get(key), skipped)]
        items.append(OAgendaItem(item.id, item.number, item.name, item.public, item.order, item.consultation,
                                 dedupe(files), item.public_given))
    files = [f for key in MEETING_FILES for f in _files(obj.get(key), skipped)]
    return OMeeting(ref(obj) or "", text(obj.get("name")) or "Sitzung", text(obj.get("start")), items,
                    dedupe(files), skipped)


def dedupe(files: list[OFile]) -> list[OFile]:
    seen, out = set(), []
    for f in files:
        if f.id not in seen:
            seen.add(f.id)
            out.append(f)
    return out


def check_paper(obj: Any) -> dict:
    if not isinstance(obj, dict) or (kind(obj) not in (None, "Paper")):
        raise OParlError("Das ist keine Vorlage (Paper).")
    return obj


def parse_paper(obj: Any) -> OPaper:
    check_paper(obj)
    skipped: list[str] = []
    files = [f for key in PAPER_FILES for f in _files(obj.get(key), skipped)]
    return OPaper(ref(obj) or "", text(obj.get("name")) or "Vorlage", text(obj.get("reference")) or "",
                  dedupe(files))


def consultation_paper(obj: Any, parent: Any = None) -> str | dict | None:
    """A Consultation's paper: URL or embedded Paper; a consultation embedded in a paper (real servers omit
    `paper` there) belongs to that parent."""
    if isinstance(obj, dict) and obj.get("paper"):
        return obj.get("paper")
    return parent
