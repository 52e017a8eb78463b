"""OParl 1.0 / 1.1 reader: pure functions from parsed JSON to typed records. No HTTP here (oparl_import).

Real servers' quirks handled here, each named where it is handled:
- properties are either a URL string or the embedded object (spec: both allowed) → `ref()` / `obj()`;
- "N/A", "", "-" and null stand for "missing" (several vendors) → `text()`;
- `type` missing on embedded objects (SD.NET list items, others) → the record kind is taken from context;
- AgendaItem without `public` (OParl 1.0 servers, e.g. SD.NET RIM) → the part headings "A Öffentliche
  Sitzung" / "B Nichtöffentliche Sitzung" decide, else public (OParl only publishes public data);
- `order` counted from 1 or missing → agenda order is list order, `order` only sorts when all items have it;
- AgendaItem files: `auxiliaryFile` (1.1) and `resolutionFile` (1.0 and 1.1);
- File without `fileName` (SD.NET) → derived from the accessUrl's last path part or the name;
- `sha1Checksum` (1.0, deprecated in 1.1) and `sha512Checksum` (1.1); `size` as string or missing;
- line breaks and runs of spaces inside names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

MISSING = {"", "n/a", "na", "-", "null", "none", "k.a.", "k. a."}
NONPUBLIC_HEADING = re.compile(r"\bnicht\s*öffentlich|\bnichtöffentlich|\bnö\b", re.I)
PUBLIC_HEADING = re.compile(r"^(öffentlich(e|er)?\s+(sitzung|teil)|öffentlicher teil)", re.I)


class OParlError(ValueError):
    pass


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
    heading: bool = False  # a part heading ("A Öffentliche Sitzung"): no item of its own


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


def kind(obj: dict) -> str | None:
    """'Meeting', 'File', … from `type` (1.0 and 1.1 URLs alike); None if missing."""
    t = text(obj.get("type"))
    return t.rstrip("/").rsplit("/", 1)[-1] if t else None


def _int(value: Any) -> int | None:
    try:
        n = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return n if n >= 0 else None


def _hex(value: Any, length: int) -> str | None:
    s = text(value)
    return s.lower() if s and re.fullmatch(rf"[0-9a-fA-F]{{{length}}}", s) else None


def parse_file(obj: Any, skipped: list[str] | None = None) -> OFile | None:
    """A File object; None (and a note in skipped) if it has no usable URL."""
    if not isinstance(obj, dict):
        if skipped is not None:
            skipped.append(f"Datei-Verweis ohne eingebettete Daten: {str(obj)[:120]}")
        return None
    fid = ref(obj) or ""
    access, download = text(obj.get("accessUrl")), text(obj.get("downloadUrl"))
    if not access and not download:
        if skipped is not None:
            skipped.append(f"Datei ohne accessUrl: {text(obj.get('name')) or fid}")
        return None
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


def _files(values: Any, skipped: list[str]) -> list[OFile]:
    if values is None:
        return []
    if not isinstance(values, list):
        values = [values]
    return [f for f in (parse_file(v, skipped) for v in values) if f is not None]


def parse_meeting(obj: Any) -> OMeeting:
    if not isinstance(obj, dict):
        raise OParlError("Die Antwort ist kein OParl-Objekt (kein JSON-Objekt).")
    k = kind(obj)
    if k is not None and k != "Meeting":
        raise OParlError(f"Das ist keine Sitzung (Meeting), sondern {k}.")
    if not ref(obj) or "agendaItem" not in obj and "name" not in obj:
        raise OParlError("Das Objekt hat weder id noch Tagesordnung: keine OParl-Sitzung.")
    skipped: list[str] = []
    raw_items = obj.get("agendaItem") or []
    if not isinstance(raw_items, list):
        raise OParlError("agendaItem ist keine Liste.")
    items: list[OAgendaItem] = []
    nonpublic_part = False
    dicts = []
    for raw in raw_items:
        if isinstance(raw, dict):
            dicts.append(raw)
        else:
            skipped.append(f"Tagesordnungspunkt nur als Verweis, nicht eingebettet: {str(raw)[:120]}")
    # `order` (from 0 or 1, vendors differ) only decides when every item has one; else the list order.
    if dicts and all(_int(d.get("order")) is not None for d in dicts):
        dicts.sort(key=lambda d: _int(d.get("order")) or 0)
    for raw in dicts:
        name = text(raw.get("name")) or ""
        number = text(raw.get("number")) or ""
        files = _files(raw.get("auxiliaryFile"), skipped) + _files(raw.get("resolutionFile"), skipped)
        heading = not files and not raw.get("consultation") and bool(
            NONPUBLIC_HEADING.search(name) or PUBLIC_HEADING.match(name))
        if heading:
            nonpublic_part = bool(NONPUBLIC_HEADING.search(name))
        public = raw.get("public")
        if not isinstance(public, bool):
            public = not nonpublic_part
        if not name and not number:
            skipped.append(f"Tagesordnungspunkt ohne Namen: {ref(raw)}")
            continue
        items.append(OAgendaItem(ref(raw) or f"{ref(obj)}#{len(items)}", number, name or number, public,
                                 _int(raw.get("order")), raw.get("consultation"), files, heading))
    files = []
    for key in ("invitation", "auxiliaryFile", "resultsProtocol", "verbatimProtocol"):
        files += _files(obj.get(key), skipped)
    return OMeeting(ref(obj) or "", text(obj.get("name")) or "Sitzung", text(obj.get("start")), items,
                    _dedupe(files), skipped)


def _dedupe(files: list[OFile]) -> list[OFile]:
    seen, out = set(), []
    for f in files:
        if f.id not in seen:
            seen.add(f.id)
            out.append(f)
    return out


def parse_paper(obj: Any) -> OPaper:
    if not isinstance(obj, dict) or (kind(obj) not in (None, "Paper")):
        raise OParlError("Das ist keine Vorlage (Paper).")
    skipped: list[str] = []
    files = _files(obj.get("mainFile"), skipped) + _files(obj.get("auxiliaryFile"), skipped)
    return OPaper(ref(obj) or "", text(obj.get("name")) or "Vorlage", text(obj.get("reference")) or "",
                  _dedupe(files))


def consultation_paper(obj: Any) -> str | dict | None:
    """A Consultation's paper: URL or embedded Paper."""
    if isinstance(obj, dict):
        return obj.get("paper")
    return None


def list_page(obj: Any) -> tuple[list[dict], str | None]:
    """One page of an OParl list: its objects and the next page's URL (links.next), None on the last."""
    if isinstance(obj, list):  # some servers answer a bare array
        return [o for o in obj if isinstance(o, dict)], None
    if not isinstance(obj, dict) or not isinstance(obj.get("data"), list):
        raise OParlError("Die Antwort ist keine OParl-Liste (data fehlt).")
    links = obj.get("links") if isinstance(obj.get("links"), dict) else {}
    nxt = text(links.get("next"))
    if nxt and nxt == text(links.get("self")):
        nxt = None  # a server pointing next at itself would loop forever
    return [o for o in obj["data"] if isinstance(o, dict)], nxt
