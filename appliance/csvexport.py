"""CSV files that people open in a spreadsheet (German Excel, LibreOffice): pure text building, no I/O.

- `;` separates the fields: German Excel reads `,` as the decimal comma and would put a whole line in one cell;
- the text starts with a UTF-8 byte order mark, or Excel reads „Müller“ as Windows-1252;
- a cell that begins with `=`, `+`, `-`, `@`, a tab or a carriage return is read as a formula (CSV injection,
  OWASP): such a cell gets a leading `'`, which the spreadsheet shows as text. Names, reasons and chat messages
  come from people and from imported lists, so every text cell goes through `cell()`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

BOM = "\ufeff"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(text: str) -> str:
    """A text cell that a spreadsheet shows as text, never runs as a formula."""
    return "'" + text if text[:1] in FORMULA_START else text


def write(header: Iterable[str], rows: Iterable[Iterable[object]], bom: bool = True) -> str:
    """The CSV text (`;`, CRLF line ends as RFC 4180 and Excel expect); str cells pass through `cell()`."""
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=";")
    w.writerow([cell(h) for h in header])
    for row in rows:
        w.writerow([cell(v) if isinstance(v, str) else v for v in row])
    return (BOM if bom else "") + buf.getvalue()
