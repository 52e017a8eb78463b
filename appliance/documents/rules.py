"""What the box accepts as a document: names, types, sizes. Pure functions; refusals in German."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from appliance.documents import DocumentError

MAX_NAME_CHARS = 160
MAX_NAME_BYTES = 255  # ext4's limit for one name, and what ZIP tools handle
MAX_FILE = 512 * 1024 * 1024  # a double budget runs to 1,500 pages
MAX_ZIP_TOTAL = 4 * 1024 * 1024 * 1024
MAX_ZIP_ENTRIES = 2000
MAX_ZIP_RATIO = 200  # compressed → uncompressed; real PDFs compress ~1.1×, text ~5×; bombs 1000×+


@dataclass(frozen=True)
class Kind:
    mime: str
    label: str


# Extension → (type, magic check). The content decides, not the name: a .pdf that is not a PDF is refused.
KINDS: dict[str, Kind] = {
    "pdf": Kind("application/pdf", "PDF"),
    "png": Kind("image/png", "PNG-Bild"),
    "jpg": Kind("image/jpeg", "JPEG-Bild"),
    "jpeg": Kind("image/jpeg", "JPEG-Bild"),
    "txt": Kind("text/plain; charset=utf-8", "Text"),
    "csv": Kind("text/csv; charset=utf-8", "CSV"),
    "odt": Kind("application/vnd.oasis.opendocument.text", "OpenDocument-Text"),
    "ods": Kind("application/vnd.oasis.opendocument.spreadsheet", "OpenDocument-Tabelle"),
    "docx": Kind("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "Word-Dokument"),
    "xlsx": Kind("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "Excel-Tabelle"),
    "pptx": Kind("application/vnd.openxmlformats-officedocument.presentationml.presentation", "PowerPoint"),
}
ALLOWED_LIST = "PDF, PNG, JPEG, TXT, CSV, ODT, ODS, DOCX, XLSX, PPTX"


def check_name(name: str) -> str:
    """One file name (no folders). Returns it NFC-normalised or raises DocumentError."""
    shown = repr(name[:60]) if any(unicodedata.category(c) in ("Cc", "Cs") for c in name) else f"„{name[:60]}“"
    if not name or not name.strip():
        raise DocumentError("Die Datei hat keinen Namen.")
    if any(unicodedata.category(c) == "Cs" for c in name):  # bytes from disk that are not UTF-8 (surrogateescape)
        raise DocumentError(f"Der Dateiname {shown} ist kein UTF-8-Text (alte Kodierung?) und wird abgelehnt.")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in name):
        raise DocumentError(f"Der Dateiname {shown} enthält Steuerzeichen und wird abgelehnt.")
    if "/" in name or "\\" in name or name in (".", "..") or ".." in name.split("."):
        raise DocumentError(f"Der Dateiname {shown} enthält „..“ oder einen Pfad und wird abgelehnt.")
    if ".." in name:
        raise DocumentError(f"Der Dateiname {shown} enthält „..“ und wird abgelehnt.")
    name = unicodedata.normalize("NFC", name.strip())
    if len(name) > MAX_NAME_CHARS or len(name.encode()) > MAX_NAME_BYTES:
        raise DocumentError(f"Der Dateiname {shown}… ist zu lang (höchstens {MAX_NAME_CHARS} Zeichen).")
    return name


def check_path(path: str) -> list[str]:
    """A relative path inside a ZIP or folder: every part checked; absolute paths refused."""
    if path.startswith(("/", "\\")) or (len(path) > 1 and path[1] == ":"):
        raise DocumentError(f"Der Pfad „{path[:60]}“ ist absolut und wird abgelehnt.")
    if "\\" in path:
        raise DocumentError(f"Der Pfad „{path[:60]}“ enthält einen Rückstrich und wird abgelehnt.")
    parts = [p for p in path.split("/") if p not in ("",)]
    if not parts:
        raise DocumentError("Leerer Pfad.")
    return [check_name(p) for p in parts]


def extension(name: str) -> str:
    return name.rsplit(".", 1)[1].lower() if "." in name else ""


def kind_of(name: str, head: bytes) -> Kind:
    """The type of a file from its name and first bytes; refuses unknown types and mismatches."""
    ext = extension(name)
    kind = KINDS.get(ext)
    if kind is None:
        raise DocumentError(f"„{name}“: Dateityp nicht erlaubt. Erlaubt sind {ALLOWED_LIST}.")
    ok = {
        "pdf": head.startswith(b"%PDF-"),
        "png": head.startswith(b"\x89PNG\r\n\x1a\n"),
        "jpg": head.startswith(b"\xff\xd8\xff"),
        "jpeg": head.startswith(b"\xff\xd8\xff"),
        "odt": head.startswith(b"PK\x03\x04"),
        "ods": head.startswith(b"PK\x03\x04"),
        "docx": head.startswith(b"PK\x03\x04"),
        "xlsx": head.startswith(b"PK\x03\x04"),
        "pptx": head.startswith(b"PK\x03\x04"),
    }.get(ext)
    if ext in ("txt", "csv"):
        ok = b"\0" not in head and _utf8_prefix(head)
    if not ok:
        raise DocumentError(f"„{name}“ ist laut Inhalt kein {kind.label}. Bitte die richtige Datei wählen.")
    return kind


def _utf8_prefix(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3  # a character cut at the end of the sample is fine
    return True


def title_from_name(name: str) -> str:
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return stem.replace("_", " ").strip() or name


def folder_item(folder: str) -> tuple[str, str, bool]:
    """A ZIP/USB folder name as an agenda item: 'TOP 3 Haushalt' → ('3', 'Haushalt', public);
    'NÖ 2 Personalsache' or 'nichtöffentlich …' → non-public."""
    text = " ".join(folder.split())
    public = True
    low = text.casefold()
    for marker in ("nichtöffentlich", "nicht öffentlich", "nö ", "nö-", "nö_", "nö."):
        if low.startswith(marker):
            public = False
            text = text[len(marker):].strip(" -_.:")
            break
    if text.casefold().startswith("top"):
        text = text[3:].strip(" -_.:")
    number, _, rest = text.partition(" ")
    if number and number[0].isdigit():
        return number.rstrip("."), rest.strip(" -_:") or text, public
    return "", text, public
