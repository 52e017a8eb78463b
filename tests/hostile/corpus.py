"""The cases. Each names what it is, builds its input lazily (some are megabytes) and says what the box must
answer: the German words of the refusal, or `accept` (taken, and harmless)."""

from __future__ import annotations

import io
import json
import os
import stat
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

HEADER = "Name;Fraktion;Rolle;Stimmrecht;Gremium\n"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


@dataclass(frozen=True)
class Case:
    kind: str  # csv | upload | zip | json | chat | form
    name: str
    make: Callable[[], object]
    words: tuple[str, ...] = ()  # German words the refusal contains (all of them)
    accept: bool = False  # a valid input: taken, and shown or stored harmlessly
    cli: bool = True  # also through the command line (where the kind has one)
    web: bool = True  # also through the web form (where the kind has one)

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.name}"


def _csv(text: str, encoding: str = "utf-8") -> Callable[[], bytes]:
    return lambda: text.encode(encoding)


def _rows(n: int, role: str = "Mitglied") -> str:
    return "".join(f"Person {i};SPD;{role};ja;Rat\n" for i in range(n))


CSV = [
    Case("csv", "1 MB field", lambda: (HEADER + "A" * (1 << 20) + ";SPD;Mitglied;ja;Rat\n").encode(),
         ("Zeile 2", "zu lang", "höchstens 2000 Zeichen")),
    Case("csv", "field of 300 characters", _csv(HEADER + "B" * 300 + ";SPD;Mitglied;ja;Rat\n"),
         ("Zeile 2", "Feld „Name“ ist zu lang", "höchstens 200 Zeichen")),
    Case("csv", "faction of 201 characters", _csv(HEADER + "Anna;" + "F" * 201 + ";Mitglied;ja;Rat\n"),
         ("Feld „Fraktion“ ist zu lang",)),
    Case("csv", "line of 5000 characters", _csv(HEADER + "Anna;SPD;Mitglied;ja;Rat" + ";" * 4980 + "\n"),
         ("Zeile 2 ist zu lang", "höchstens 2000 Zeichen pro Zeile")),
    Case("csv", "100 000 rows", _csv(HEADER + _rows(100_000)[:1_900_000]), ("mehr als 2000", "höchstens 2000 Zeilen")),
    Case("csv", "3 MB file", _csv(HEADER + ("Anna;SPD;Mitglied;ja;Rat" + " " * 1000 + "\n") * 3000),
         ("2 MB",)),
    Case("csv", "unquoted comma in a name",
         _csv("Name,Fraktion,Rolle,Stimmrecht,Gremium\nAnna,SPD,Mitglied,ja,Rat\nBernd,SPD,Mitglied,ja,Rat\n"
              "Müller, Hans,CDU,Mitglied,ja,Rat\n"),
         ("Zeile 4 hat 6 Spalten statt 5", "Komma", "Anführungszeichen")),
    Case("csv", "NUL bytes", _csv(HEADER + "An\x00na;SPD;Mitglied;ja;Rat\n"), ("Nullbytes",)),
    Case("csv", "Windows-1252 from Excel", _csv(HEADER + "Jürgen Groß;CDU;Mitglied;ja;Rat\n", "cp1252"),
         accept=True),
    Case("csv", "UTF-8 with BOM", _csv(HEADER + "Jürgen Groß;CDU;Mitglied;ja;Rat\n", "utf-8-sig"), accept=True),
    Case("csv", "UTF-16 Unicode-Text with tabs", _csv((HEADER + "Jürgen Groß;CDU;Mitglied;ja;Rat\n")
                                                      .replace(";", "\t"), "utf-16"), accept=True),
    Case("csv", "CRLF line ends", _csv((HEADER + "Jürgen Groß;CDU;Mitglied;ja;Rat\n").replace("\n", "\r\n")),
         accept=True),
    Case("csv", "UTF-8 and Windows-1252 mixed",
         lambda: (HEADER + "Jürgen;CDU;Mitglied;ja;Rat\n").encode() + "Groß;CDU;Mitglied;ja;Rat\n".encode("cp1252"),
         ("Zeile 3", "mischt UTF-8 und Windows-1252")),
    Case("csv", "Excel workbook instead of CSV", lambda: b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 200,
         ("Excel-Arbeitsmappe", "CSV")),
    Case("csv", "binary garbage", lambda: bytes(range(256)) * 8, ("keine Textdatei",)),
    Case("csv", "formula injection in a name", _csv(HEADER + "=cmd|' /C calc'!A0;SPD;Mitglied;ja;Rat\n"
                                                    "@SUM(1+1);SPD;Mitglied;ja;Rat\n"), accept=True),
    Case("csv", "escape sequence in a name", _csv(HEADER + "Anna\x1b[31m;SPD;Mitglied;ja;Rat\n"),
         ("Zeile 2", "Feld „Name“ enthält Steuerzeichen")),
    Case("csv", "line break in a quoted name", _csv(HEADER + '"Anna\nSchmidt";SPD;Mitglied;ja;Rat\n'),
         ("Steuerzeichen",)),
    Case("csv", "right-to-left override", _csv(HEADER + "Anna\u202eadrO;SPD;Mitglied;ja;Rat\n"),
         ("Schreibrichtung",)),
    Case("csv", "empty file", lambda: b"", ("leer",)),
    Case("csv", "only whitespace", _csv(" \n\n\t\n"), ("leer",)),
    Case("csv", "only the header", _csv(HEADER), ("keine Mitglieder",)),
    Case("csv", "duplicate names", _csv(HEADER + "Anna Schmidt;SPD;Mitglied;ja;Rat\n"
                                        "anna schmidt;SPD;Mitglied;ja;Rat\n"),
         ("Zeile 3", "steht schon in Zeile 2")),
    Case("csv", "duplicate with a zero-width space", _csv(HEADER + "Anna;SPD;Mitglied;ja;Rat\n"
                                                          "An\u200bna;SPD;Mitglied;ja;Rat\n"),
         ("steht schon in Zeile 2",)),
    Case("csv", "duplicate in full-width letters", _csv(HEADER + "Anna;SPD;Mitglied;ja;Rat\n"
                                                        "Ａｎｎａ;SPD;Mitglied;ja;Rat\n"),
         ("steht schon in Zeile 2",)),
    Case("csv", "unknown role", _csv(HEADER + "Anna;SPD;Kaiserin;ja;Rat\n"), ("unbekannte Rolle „Kaiserin“",)),
    Case("csv", "role column missing", _csv("Name;Fraktion\nAnna;SPD\n"), ("Spalte fehlt", "rolle")),
    Case("csv", "column twice in the header", _csv("Name;Rolle;Name\nAnna;Mitglied;Bernd\n"), ("zweimal",)),
    Case("csv", "unterminated quote", _csv(HEADER + '"Anna;SPD;Mitglied;ja;Rat\n'), ("Anführungszeichen",)),
    Case("csv", "quoted field over 100 000 lines", _csv(HEADER + '"' + "A\n" * 100_000 + '";SPD;Mitglied;ja;Rat\n'),
         ("Feld ist zu lang", "höchstens 200 Zeichen")),
    Case("csv", "3000 bad rows", _csv(HEADER + _rows(3000, role="Chef")), ("weitere Fehler",)),
    Case("csv", "a long hostile role quoted back", _csv(HEADER + "Anna;SPD;" + "<script>" * 20 + ";ja;Rat\n"),
         ("unbekannte Rolle", "…")),
]


def _upload(name: str, data: bytes) -> Callable[[], list[tuple[str, bytes]]]:
    return lambda: [(name, data)]


UPLOADS = [
    Case("upload", "zero bytes", _upload("leer.pdf", b""), ("kein PDF",)),
    Case("upload", "text named .pdf", _upload("vorlage.pdf", b"Das ist kein PDF\n"), ("kein PDF",)),
    Case("upload", "HTML named .png", _upload("bild.png", b"<html><script>alert(1)</script>"), ("kein PNG",)),
    Case("upload", "name of 200 characters", _upload("x" * 196 + ".pdf", PDF), ("zu lang", "160 Zeichen")),
    Case("upload", "name of 300 bytes", _upload("ü" * 150 + ".pdf", PDF), ("zu lang",), cli=False),  # ext4: 255
    Case("upload", "path traversal", _upload("../../etc/passwd.txt", b"root:x:0:0\n"), ("Pfad",), cli=False),
    Case("upload", "dots in the name", _upload("a..b.txt", b"hallo\n"), ("„..“",)),
    Case("upload", "bell in the name", _upload("a\x07b.txt", b"hallo\n"), ("Steuerzeichen",)),
    Case("upload", "right-to-left override in the name", _upload("rechnung\u202efdp.txt", b"hallo\n"),
         ("Steuerzeichen",)),
    # Werkzeug's multipart parser reads a backslash in filename="…" as an escape: over the web it never arrives.
    Case("upload", "backslash in the name", _upload("TOP 1\\vorlage.txt", b"hallo\n"), ("Pfad",), web=False),
    # A name on disk that is not UTF-8 (a stick written by an old system); browsers always send UTF-8.
    Case("upload", "name not in UTF-8", _upload(os.fsdecode(b"Bericht \xe4\xf6.txt"), b"hallo\n"), ("UTF-8",),
         web=False),
    Case("upload", "executable", _upload("virus.exe", b"MZ\x90\x00"), ("Dateityp nicht erlaubt",)),
    Case("upload", "2500 files at once", lambda: [(f"datei-{i}.txt", b"x\n") for i in range(2500)],
         ("Dateien", "öchstens")),  # web: "Höchstens … 1000 Dateien", command line: "höchstens 2000"
    Case("upload", "decomposed umlaut", _upload("Übersicht.txt".replace("Ü", "U\u0308"), b"hallo\n"), accept=True),
]


def _zip(entries: list[tuple[str | zipfile.ZipInfo, bytes]], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return buf.getvalue()


def _symlink() -> bytes:
    info = zipfile.ZipInfo("TOP 1/link.pdf")
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return _zip([(info, b"/etc/passwd"), ("TOP 1/vorlage.pdf", PDF)])


def _encrypted() -> bytes:
    data = _zip([("geheim.pdf", PDF)], zipfile.ZIP_STORED)
    # The "encrypted" flag in the local header and the central directory (what a real encrypted entry sets).
    local = data.index(b"PK\x03\x04")
    central = data.index(b"PK\x01\x02")
    out = bytearray(data)
    out[local + 6] |= 1
    out[central + 8] |= 1
    return bytes(out)


def _deflate64() -> bytes:
    """A good PDF, then an entry packed with Deflate64 (method 9: Windows Explorer's choice above 2 GB), which
    Python's zipfile cannot unpack."""
    data = bytearray(_zip([("TOP 1/a.pdf", PDF), ("TOP 1/b.pdf", PDF + b"%b\n")], zipfile.ZIP_STORED))
    local = data.index(b"PK\x03\x04", data.index(b"PK\x03\x04") + 4)
    central = data.index(b"PK\x01\x02", data.index(b"PK\x01\x02") + 4)
    data[local + 8:local + 10] = (9).to_bytes(2, "little")
    data[central + 10:central + 12] = (9).to_bytes(2, "little")
    return bytes(data)


def _corrupt() -> bytes:
    """A good entry, then one whose deflated bytes are damaged (a bad download)."""
    data = bytearray(_zip([("TOP 1/a.pdf", PDF), ("TOP 1/b.pdf", PDF + bytes(range(256)) * 16)]))
    second = data.index(b"PK\x03\x04", data.index(b"PK\x03\x04") + 4)
    start = second + 30 + len("TOP 1/b.pdf")
    for i in range(start + 20, start + 60):
        data[i] ^= 0x5A
    return bytes(data)


def _bomb() -> bytes:
    # 50 MB of zeros in ~50 KB: a ratio of ~1000 (real PDFs ~1.1).
    return _zip([("bombe.txt", b"\0" * (50 << 20))])


def _many(n: int) -> bytes:
    return _zip([(f"TOP 1/datei-{i:05d}.txt", b"x") for i in range(n)], zipfile.ZIP_STORED)


ZIPS = [
    Case("zip", "zip slip", lambda: _zip([("../../evil.txt", b"boom\n")]), ("„..“",)),
    Case("zip", "absolute path", lambda: _zip([("/etc/cron.d/evil.txt", b"boom\n")]), ("absolut",)),
    Case("zip", "backslash path", lambda: _zip([("..\\..\\evil.txt", b"boom\n")]), ("Rückstrich",)),
    Case("zip", "symbolic link", _symlink, ("symbolischer Link",)),
    Case("zip", "bomb", _bomb, ("ZIP-Bombe",)),
    Case("zip", "nested zip", lambda: _zip([("innen.zip", _zip([("a.pdf", PDF)]))]), ("Dateityp nicht erlaubt",)),
    Case("zip", "10 000 entries", lambda: _many(10_000), ("10000 Einträge", "höchstens 2000")),
    Case("zip", "encrypted entry", _encrypted, ("verschlüsselt",)),
    Case("zip", "not a zip", lambda: b"Das ist kein ZIP\n" * 10, ("kein lesbares ZIP",)),
    Case("zip", "cut in half", lambda: _zip([("a.pdf", PDF + bytes(range(256)) * 64)], zipfile.ZIP_STORED)[:8000],
         ("kein lesbares ZIP",)),
    Case("zip", "Deflate64 after a good entry", _deflate64, ("Verfahren", "normales ZIP")),
    Case("zip", "damaged data after a good entry", _corrupt, ("„b.pdf“ ist im ZIP beschädigt",)),
    Case("zip", "empty zip", lambda: _zip([]), ("keine Dateien",)),
    Case("zip", "only macOS noise", lambda: _zip([("__MACOSX/._a.pdf", b"x"), (".DS_Store", b"x")]),
         ("keine Dateien",)),
    Case("zip", "control character in a name", lambda: _zip([("TOP 1/a\x1bb.pdf", PDF)]), ("Steuerzeichen",)),
    Case("zip", "fake PDF inside", lambda: _zip([("TOP 1/vorlage.pdf", b"kein pdf")]), ("kein PDF",)),
    Case("zip", "one bad among good", lambda: _zip([("TOP 1/a.pdf", PDF), ("TOP 2/b.pdf", PDF),
                                                    ("TOP 3/c.exe", b"MZ")]), ("Dateityp nicht erlaubt",)),
    Case("zip", "name of 300 characters", lambda: _zip([("TOP 1/" + "n" * 300 + ".pdf", PDF)]), ("zu lang",)),
]


MEETING = "https://oparl.example/meeting/1"


def _meeting(**extra) -> dict:
    return {"id": MEETING, "type": "https://schema.oparl.org/1.1/Meeting", "name": "Ratssitzung",
            "agendaItem": [{"id": MEETING + "/ai/1", "number": "1", "name": "Haushalt", "public": True}], **extra}


def _json_dir(files: dict[str, bytes]) -> Callable[[], dict[str, bytes]]:
    return lambda: files


def _deep(n: int) -> bytes:
    return b'{"id": "' + MEETING.encode() + b'", "type": "https://schema.oparl.org/1.1/Meeting", "x": ' + \
        b"[" * n + b"]" * n + b"}"


JSON = [
    Case("json", "nesting 100 000 deep", _json_dir({"meeting.json": _deep(100_000)}),
         ("meeting.json", "verschachtelt", "höchstens 64 Ebenen")),
    Case("json", "nesting 500 deep", _json_dir({"meeting.json": _deep(500)}), ("verschachtelt",)),
    Case("json", "a 20 MB string", lambda: {"meeting.json": json.dumps(_meeting(name="A" * (20 << 20))).encode()},
         ("meeting.json", "zu groß", "höchstens 16 MB")),
    Case("json", "agendaItem is a string", _json_dir({"meeting.json": json.dumps(_meeting(agendaItem="x")).encode()}),
         ("agendaItem ist keine Liste",)),
    Case("json", "id is a number", _json_dir({"meeting.json": json.dumps({**_meeting(), "id": 5}).encode()}),
         ("keine OParl-Sitzung",)),
    Case("json", "not JSON", _json_dir({"meeting.json": b"{das ist kein json"}),
         ("meeting.json", "kein gültiges JSON")),
    Case("json", "UTF-16 (RFC 8259 allows it)",
         _json_dir({"meeting.json": json.dumps(_meeting(name="Groß")).encode("utf-16")}), accept=True),
    Case("json", "not UTF-8 at all", _json_dir({"meeting.json": b'{"id": "\xff\xfe\x00\x81"'}),
         ("meeting.json", "nicht lesbar")),
    Case("json", "a file outside the folder", _json_dir({"meeting.json": json.dumps(_meeting(auxiliaryFile=[
        {"id": MEETING + "/f/1", "type": "https://schema.oparl.org/1.1/File", "name": "passwd",
         "fileName": "passwd.txt", "accessUrl": "file:///etc/passwd"}])).encode()}), accept=True),
    Case("json", "agenda item title of 1 MB", _json_dir({"meeting.json": json.dumps(_meeting(agendaItem=[
        {"id": MEETING + "/ai/1", "number": "1", "name": "T" * (1 << 20)}])).encode()}), accept=True),  # cut
]


CHAT = [
    Case("chat", "100 000 characters", lambda: {"body": "x" * 100_000}, ("zu lang", "höchstens 1000")),
    Case("chat", "1001 characters", lambda: {"body": "y" * 1001}, ("zu lang", "höchstens 1000")),
    Case("chat", "only control characters", lambda: {"body": "\x00\x07\x1b\x7f"}, ("Nachricht eingeben",)),
    Case("chat", "only zero-width characters", lambda: {"body": "\u200b\u200c\u200d\ufeff"}, ("Nachricht eingeben",)),
    Case("chat", "empty", lambda: {"body": ""}, ("Nachricht eingeben",)),
    Case("chat", "script tags", lambda: {"body": '<script>alert(1)</script><img src=x onerror=alert(2)>'}, accept=True),
    Case("chat", "right-to-left override", lambda: {"body": "Hallo \u202eollaH"}, accept=True),  # stored without it
    Case("chat", "client_id with a path", lambda: {"client_id": "../../etc/passwd"}, ("kennung",)),
    Case("chat", "client_id of 1000 characters", lambda: {"client_id": "a" * 1000}, ("kennung",)),
    Case("chat", "someone else's client_id", lambda: {"client_id": "seed-0000-0001"}, ("kennung",)),
    Case("chat", "another faction's room", lambda: {"room": "faction:CDU"}, ("Raum",)),
    Case("chat", "a made-up room", lambda: {"room": "admin\x00"}, ("Raum",)),
    Case("chat", "announcements as a member", lambda: {"room": "announce"}, ("Raum",)),
]


FORMS = [
    Case("form", "wrong CSRF token", lambda: {"csrf": "falsch"}, ("Formular ist abgelaufen",)),
    Case("form", "no CSRF token", lambda: {"csrf": None}, ("Formular ist abgelaufen",)),
    Case("form", "CSRF token twice, the wrong one first", lambda: {"csrf": "doppelt"}, ("Formular ist abgelaufen",)),
    Case("form", "file under another field name", lambda: {"field": "datei"}, ("Bitte wählen Sie eine CSV-Datei",)),
    Case("form", "extra and duplicated fields", lambda: {"extra": True}, accept=True),
    Case("form", "two files in one field", lambda: {"twice": True}, accept=True),
    Case("form", "moderation without its fields", lambda: {"path": "/clerk/chat/mute"}, ("Im Formular fehlt",
                                                                                             "„msg“")),
    Case("form", "correction for nobody", lambda: {"path": "/clerk/attendance/correct", "member_id": "abc"},
         ("Im Formular fehlt", "„member_id“")),
    Case("form", "session title of 100 000 characters", lambda: {"path": "/clerk/sessions", "title": "T" * 100_000},
         ("zu lang",)),
    Case("form", "password of 1 MB", lambda: {"path": "/clerk/login", "password": "p" * (1 << 20)},
         ("zu groß", "500 KB Text pro Feld")),
    Case("form", "1500 files in one upload", lambda: {"path": "upload", "files": 1500}, ("zu groß", "1000 Dateien")),
]

ALL = CSV + UPLOADS + ZIPS + JSON + CHAT + FORMS
