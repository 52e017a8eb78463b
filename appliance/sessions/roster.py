"""Member list import from CSV: a pure parser with German messages naming the row.

All rows are checked before anything is stored, so a bad file imports nothing.
"""

from __future__ import annotations

import csv
import io
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
MAX_ROWS = 2000
MAX_FIELD = 200


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
        super().__init__("\n".join(problems))
        self.problems = problems


def _decode(data: bytes | str) -> str:
    if isinstance(data, str):
        return data
    for encoding in ("utf-8-sig", "cp1252"):  # Excel on German Windows saves cp1252
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise RosterError(["Die Datei ist keine Textdatei (weder UTF-8 noch Windows-1252)."])


def parse_members(data: bytes | str, default_body: str = "") -> list[MemberRow]:
    text = _decode(data)
    if not text.strip():
        raise RosterError(["Die Datei ist leer."])
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=";,\t")
    except csv.Error:
        dialect = csv.excel
        dialect.delimiter = ";" if text.count(";") > text.count(",") else ","
    reader = csv.reader(io.StringIO(text), dialect)
    header = next(reader, None) or []
    index: dict[str, int] = {}
    for pos, raw in enumerate(header):
        key = raw.strip().lower()
        for column, names in COLUMNS.items():
            if key in names:
                index[column] = pos
    missing = [c for c in ("name", "role") if c not in index]
    if missing:
        names = ", ".join(COLUMNS[c][1] if len(COLUMNS[c]) > 1 else COLUMNS[c][0] for c in missing)
        raise RosterError([f"Zeile 1: Spalte fehlt: {names}. Erwartet: Name; Fraktion; Rolle; Stimmrecht; Gremium"])

    rows: list[MemberRow] = []
    problems: list[str] = []
    seen: dict[tuple[str, str], int] = {}
    for lineno, record in enumerate(reader, start=2):
        if not any(cell.strip() for cell in record):
            continue
        if len(rows) + len(problems) >= MAX_ROWS:
            problems.append(f"Zeile {lineno}: mehr als {MAX_ROWS} Einträge – bitte die Liste aufteilen.")
            break

        def cell(column: str, record=record) -> str:
            pos = index.get(column)
            return record[pos].strip() if pos is not None and pos < len(record) else ""

        values = {c: cell(c) for c in COLUMNS}
        row_problems = []
        for column, value in values.items():
            if len(value) > MAX_FIELD:
                row_problems.append(f"{column} ist länger als {MAX_FIELD} Zeichen")
            if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
                row_problems.append(f"{column} enthält Steuerzeichen")
        if not values["name"]:
            row_problems.append("Name fehlt")
        role = ROLES.get(values["role"].lower())
        if role is None:
            row_problems.append(
                f"unbekannte Rolle „{values['role']}“ (erlaubt: Mitglied, Stellvertretung, Verwaltung, Gast)"
            )
        voting_raw = values["voting"].lower()
        if voting_raw in YES:
            voting = True
        elif voting_raw in NO:
            voting = False
        else:
            row_problems.append(f"Stimmrecht „{values['voting']}“ ist weder ja noch nein")
            voting = False
        body = values["body"] or default_body
        key = (values["name"].casefold(), body.casefold())
        if values["name"] and key in seen:
            row_problems.append(f"{values['name']} steht schon in Zeile {seen[key]}")
        if row_problems:
            problems.append(f"Zeile {lineno}: " + "; ".join(row_problems))
            continue
        seen[key] = lineno
        rows.append(MemberRow(values["name"], values["faction"], role, voting, body))
    if problems:
        raise RosterError(problems)
    if not rows:
        raise RosterError(["Die Datei enthält keine Mitglieder."])
    return rows
