"""HTTP semantics for serving stored files: ETag/If-None-Match, single Range, Content-Disposition with
RFC 6266 filename*. Pure functions: the view applies the plan."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import quote

RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass(frozen=True)
class Plan:
    status: int  # 200, 206, 304, 416
    start: int = 0
    length: int = 0
    content_range: str | None = None


def etag(sha256: str) -> str:
    # The content's hash is a perfect strong validator: the same ETag means the same bytes.
    return f'"{sha256[:32]}"'


def _etag_matches(header: str, tag: str) -> bool:
    if header.strip() == "*":
        return True
    return any(t.strip().removeprefix("W/") == tag for t in header.split(","))


def plan(size: int, tag: str, *, method: str = "GET", range_header: str | None = None,
         if_none_match: str | None = None, if_range: str | None = None) -> Plan:
    if if_none_match and _etag_matches(if_none_match, tag):
        return Plan(304)
    if not range_header or method not in ("GET", "HEAD"):
        return Plan(200, 0, size)
    if if_range is not None and if_range.strip() != tag:
        return Plan(200, 0, size)  # the client's copy is stale: send it all
    m = RANGE_RE.match(range_header.replace(" ", ""))
    if not m or (not m.group(1) and not m.group(2)):
        # Several ranges or nonsense: RFC 9110 lets a server ignore Range and send the whole file.
        return Plan(200, 0, size)
    first, last = m.group(1), m.group(2)
    if first == "":
        n = int(last)  # suffix: the last n bytes
        if n == 0:
            return Plan(416, content_range=f"bytes */{size}")
        start, end = max(0, size - n), size - 1
    else:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
        if start >= size or (last and int(last) < start):
            return Plan(416, content_range=f"bytes */{size}")
    return Plan(206, start, end - start + 1, f"bytes {start}-{end}/{size}")


def content_disposition(name: str, *, attachment: bool) -> str:
    """RFC 6266: an ASCII fallback filename= for old clients and the real name as filename*=UTF-8''."""
    kind = "attachment" if attachment else "inline"
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    ascii_name = re.sub(r'[^A-Za-z0-9._ ()+-]', "_", ascii_name).strip() or "datei"
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"
