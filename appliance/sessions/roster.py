"""Member list import from CSV: a pure parser with German messages naming the row.

All rows are checked before anything is stored, so a bad file imports nothing.

Limits (each refusal names it and the row): the file's size (MAX_BYTES), the number of rows (MAX_ROWS), the
length of one line (MAX_LINE) and of one field (MAX_FIELD). The csv module's own limit (a field of more than
131072 characters, `field larger than field limit`) is never reached: a physical line is checked first, and a
quoted field that spans lines is caught and worded the same way.

Quirks of real files, named where they are handled:
- Excel on German Windows saves "CSV (Trennzeichen-getrennt)" as cp1252 with `;`; "CSV UTF-8" adds a BOM;
  "Unicode-Text" is UTF-16 with a BOM and tabs. All three are read.
- The delimiter is the one the header line uses most (`;`, `,` or tab), not csv.Sniffer's guess: a row with an
  unquoted comma in a name would otherwise change the guess, and the message would blame the wrong column.
- A name with an unquoted comma in a comma-separated file gives its row one column too many: that row is
  refused with the real cause, not a complaint about the role that the shift put into the role column.
- An Excel workbook (.xlsx, a ZIP) or any file with NUL bytes is not a CSV; the message says how to save one.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass

ROLES = {
    # accepted spellings -> stored role
    "member": "member", "mitglied": "member", "ratsmitglied": "member",
    "deputy": "deputy", "stellvertretung": "deputy", "vertreter": "deputy", "vertreterin": "deputy",
    "stellvertreter": "deputy", "stellvertreterin": "deputy",
    "administration": "administration", "verwaltung": "administration",
    "guest": "guest", "gast": "guest", "presse": "guest",
}
YES = {"ja", "j", "yes", "y", "1", "true", "x", "wahr"}
NO = {"nein", "n", "no", "0", "false", "", "falsch"}
COLUMNS = {
    "name": ("name",),
    "faction": ("faction", "fraktion"),
    "role": ("role", "rolle", "funktion"),
    "voting": ("voting", "stimmrecht", "stimmberechtigt"),
    "body": ("body", "gremium"),
}
LABELS = {"name": "Name", "faction": "Fraktion", "role": "Rolle", "voting": "Stimmrecht", "body": "Gremium"}
MAX_BYTES = 2 * 1024 * 1024  # the whole file; a council of 2000 with long names is 200 KB
MAX_ROWS = 2000
MAX_LINE = 2000  # characters of one line: five full fields and their separators fit
MAX_FIELD = 200
MAX_PROBLEMS = 20  # messages shown; a file with more is the wrong file, not a file to fix line by line
SHOWN = 40  # characters of a refused value quoted back


@dataclass(frozen=True)
class MemberRow:
    name: str
    faction: str
    role: str
    voting: bool
    body: str


class RosterError(ValueError):
    """Carries every problem found, each naming its row, so the clerk can fix the file at once."""

    def __init__(self, problems: list[str]):
        if len(problems) > MAX_PROBLEMS:
            problems = [*problems[:MAX_PROBLEMS],
                        f"… und {len(problems) - MAX_PROBLEMS} weitere Fehler (höchstens {MAX_PROBLEMS} Meldungen)."]
        super().__init__("\n".join(problems))
        self.problems = problems


def shown(value: str) -> str:
    """A value from the file, quoted back safely: no control or direction characters, at most SHOWN long."""
    clean = "".join("�" if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c for c in value)
    return clean if len(clean) <= SHOWN else clean[:SHOWN] + "…"


def _decode(data: bytes | str) -> str:
    if isinstance(data, str):
        return data
    if len(data) > MAX_BYTES:
        raise RosterError([f"Die Datei ist zu groß ({len(data) // 1024} KB; höchstens {MAX_BYTES // 2**20} MB). "
                           "Ist es wirklich die Mitgliederliste?"])
    if data.startswith(b"PK\x03\x04"):
        raise RosterError(["Das ist eine Excel-Arbeitsmappe (oder ein ZIP), keine CSV-Datei. In Excel: "
                           "„Speichern unter“ → „CSV (Trennzeichen-getrennt)“ oder „CSV UTF-8“."])
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # Excel's "Unicode-Text"
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    elif b"\0" not in data:
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            first_bad = exc.start
        if re.search(rb"\xc3[\x80-\xbf]", data):  # "Ã¼": an ü in UTF-8 among Windows-1252 text
            line = data[:first_bad].count(b"\n") + 1
            raise RosterError([f"Zeile {line}: die Datei mischt UTF-8 und Windows-1252 (Umlaute erscheinen als "
                               "„Ã¼“). Bitte in einer Kodierung speichern, in Excel als „CSV UTF-8“."])
        try:
            return data.decode("cp1252")  # Excel on German Windows saves cp1252 (Latin-1 with €, „ “)
        except UnicodeDecodeError:
            pass
    raise RosterError(["Die Datei ist keine Textdatei (weder UTF-8 noch Windows-1252, oder sie enthält "
                       "Nullbytes). Bitte als CSV speichern."])


def _same_name(name: str) -> str:
    """What makes two names the same person: case, Unicode forms (Ａ = A, ü = u + ¨) and invisible characters
    (zero-width space) do not count."""
    visible = "".join(c for c in unicodedata.normalize("NFKC", name) if unicodedata.category(c) != "Cf")
    return " ".join(visible.casefold().split())


def _delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in (";", ",", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ";"


def _long_lines(text: str) -> list[str]:
    problems = []
    for lineno, line in enumerate(io.StringIO(text, newline=""), start=1):
        line = line.rstrip("\r\n")
        if len(line) > MAX_LINE:
            problems.append(f"Zeile {lineno} ist zu lang ({len(line)} Zeichen; höchstens {MAX_LINE} Zeichen "
                            "pro Zeile).")
    return problems


def _records(text: str, delimiter: str):
    """(line number, cells) of every record; a csv.Error becomes a RosterError naming the line."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar='"', doublequote=True,
                        strict=True)
    start = 1
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            line = reader.line_num or start
            if "field larger than field limit" in str(exc):
                raise RosterError([f"Zeile {start}: ein Feld ist zu lang (höchstens {MAX_FIELD} Zeichen) – "
                                   "fehlt ein schließendes Anführungszeichen?"]) from None
            raise RosterError([f"Zeile {line}: die Zeile ist kein gültiges CSV – fehlt ein Anführungszeichen?"]) \
                from None
        yield start, record
        start = reader.line_num + 1


def parse_members(data: bytes | str, default_body: str = "") -> list[MemberRow]:
    text = _decode(data)
    if len(text) > MAX_BYTES:
        raise RosterError([f"Die Datei ist zu groß (höchstens {MAX_BYTES // 2**20} MB)."])
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        raise RosterError(["Die Datei ist leer."])
    long_lines = _long_lines(text)
    if long_lines:
        raise RosterError(long_lines)
    delimiter = _delimiter(next(io.StringIO(text, newline="")))
    records = _records(text, delimiter)
    _, header = next(records, (1, []))
    index: dict[str, int] = {}
    for pos, raw in enumerate(header):
        key = raw.strip().lower()
        for column, names in COLUMNS.items():
            if key in names:
                if column in index:
                    raise RosterError([f"Zeile 1: die Spalte „{LABELS[column]}“ steht zweimal in der Kopfzeile."])
                index[column] = pos
    missing = [c for c in ("name", "role") if c not in index]
    if missing:
        names = ", ".join(COLUMNS[c][1] if len(COLUMNS[c]) > 1 else COLUMNS[c][0] for c in missing)
        raise RosterError([f"Zeile 1: Spalte fehlt: {names}. Erwartet: Name; Fraktion; Rolle; Stimmrecht; Gremium"])
    width = len(header)

    rows: list[MemberRow] = []
    problems: list[str] = []
    seen: dict[tuple[str, str], int] = {}
    for lineno, record in records:
        if not any(cell.strip() for cell in record):
            continue
        if len(rows) + len(problems) >= MAX_ROWS:
            problems.append(f"Zeile {lineno}: mehr als {MAX_ROWS} Einträge (höchstens {MAX_ROWS} Zeilen) – "
                            "bitte die Liste aufteilen.")
            break
        if len(record) > width and any(cell.strip() for cell in record[width:]):
            hint = " – enthält ein Name ein Komma? Dann den Namen in Anführungszeichen setzen." \
                if delimiter == "," else "."
            problems.append(f"Zeile {lineno} hat {len(record)} Spalten statt {width}{hint}")
            continue

        def cell(column: str, record=record) -> str:
            pos = index.get(column)
            return record[pos].strip() if pos is not None and pos < len(record) else ""

        values = {c: cell(c) for c in COLUMNS}
        row_problems = []
        for column, value in values.items():
            if len(value) > MAX_FIELD:
                row_problems.append(f"Feld „{LABELS[column]}“ ist zu lang (höchstens {MAX_FIELD} Zeichen)")
            if any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in value):
                row_problems.append(f"Feld „{LABELS[column]}“ enthält Steuerzeichen")
            elif any(unicodedata.bidirectional(ch) in ("LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI",
                                                       "PDI") for ch in value):
                row_problems.append(f"Feld „{LABELS[column]}“ enthält Zeichen, die die Schreibrichtung umkehren")
        if row_problems:  # the values are not fit to be quoted back
            problems.append(f"Zeile {lineno}: " + "; ".join(row_problems))
            continue
        if not values["name"]:
            row_problems.append("Name fehlt")
        role = ROLES.get(values["role"].lower())
        if role is None:
            row_problems.append(
                f"unbekannte Rolle „{shown(values['role'])}“ (erlaubt: Mitglied, Stellvertretung, Verwaltung, Gast)"
            )
        voting_raw = values["voting"].lower()
        if voting_raw in YES:
            voting = True
        elif voting_raw in NO:
            voting = False
        else:
            row_problems.append(f"Stimmrecht „{shown(values['voting'])}“ ist weder ja noch nein")
            voting = False
        body = values["body"] or default_body
        key = (_same_name(values["name"]), body.casefold())
        if values["name"] and key in seen:
            row_problems.append(f"{shown(values['name'])} steht schon in Zeile {seen[key]}")
        if row_problems:
            problems.append(f"Zeile {lineno}: " + "; ".join(row_problems))
            continue
        seen[key] = lineno
        rows.append(MemberRow(unicodedata.normalize("NFC", values["name"]), values["faction"], role, voting, body))
    if problems:
        raise RosterError(problems)
    if not rows:
        raise RosterError(["Die Datei enthält keine Mitglieder."])
    return rows
