"""One A6 PDF card per member, written by hand: no PDF library on the box.

What a reader needs to know about the format choices:
- The three fonts are PDF standard fonts (Helvetica, Helvetica-Bold, Courier-Bold): every viewer has
  them, nothing is embedded. With /WinAnsiEncoding, bytes of cp1252 map to glyphs, so ä ö ü ß € and
  „ “ – render. Characters outside cp1252 become "?" rather than breaking the file.
- Literal strings escape ( ) and \\ ; streams are left uncompressed (a card is ~10 kB) so tests and
  people can grep them.
- The QR code is drawn as filled rectangles from qr.matrix(): the same modules as on screen.
- The xref table has fixed 20-byte entries with byte offsets; pdftotext/pdfinfo check it in the tests.
"""

from __future__ import annotations

import io
import re
import unicodedata
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass

from appliance.captive import qr

MM = 72 / 25.4
A6 = (105 * MM, 148 * MM)
MARGIN = 12 * MM

# Approximate Helvetica advance widths (1/1000 em) for line wrapping and name shrinking; exact
# metrics are not needed because every line keeps a safety margin.
_NARROW = set("ijlI.,:;!'|` ")
_SMALL = set("frt()[]-/\"")
_WIDE = set("mwMW")
_CAPS = set("ABCDEFGHKNOPQRSTUVXYZÄÖÜ&")


@dataclass(frozen=True)
class Card:
    name: str
    faction: str
    session_line: str
    ssid: str
    key: str
    payload: str
    addresses: tuple[str, ...]
    instructions: tuple[str, ...] = ()
    heading: str = "Ihr persönlicher WLAN-Zugang"
    ssid_label: str = "WLAN (SSID):"
    key_label: str = "Schlüssel:"
    address_label: str = "Sitzungsbox:"
    code: str = ""  # the member's personal code as printed (captive.codes.display); empty: no line
    code_label: str = "Persönlicher Code:"


def _char_width(ch: str) -> int:
    if ch in _NARROW:
        return 278
    if ch in _SMALL:
        return 333
    if ch in _WIDE:
        return 890
    if ch in _CAPS or ch.isupper():
        return 700
    return 556


def text_width(text: str, size: float, mono: bool = False) -> float:
    if mono:
        return len(text) * 600 * size / 1000  # Courier: every glyph 600/1000 em
    return sum(_char_width(ch) for ch in text) * size / 1000


def wrap(text: str, size: float, width: float) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}".strip()
        if current and text_width(candidate, size) > width:
            lines.append(current)
            current = word
        else:
            current = candidate
    if current:
        lines.append(current)
    return lines


def pdf_string(text: str) -> bytes:
    """A PDF literal string in WinAnsi (cp1252) bytes, with ( ) \\ escaped and controls dropped."""
    raw = "".join(ch for ch in text if ch >= " ").encode("cp1252", errors="replace")
    raw = raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
    return b"(" + raw + b")"


class _Page:
    def __init__(self) -> None:
        self.ops: list[bytes] = []

    def text(self, x: float, y: float, text: str, font: str = "F1", size: float = 10) -> None:
        self.ops.append(
            b"BT /%s %.2f Tf %.2f %.2f Td %s Tj ET" % (font.encode(), size, x, y, pdf_string(text)))

    def centered(self, y: float, text: str, page_w: float, font: str = "F1", size: float = 10) -> None:
        w = text_width(text, size, mono=font == "F3")
        self.text(max(MARGIN, (page_w - w) / 2), y, text, font, size)

    def gray(self, level: float) -> None:
        self.ops.append(b"%.2f g" % level)

    def qr(self, x: float, top: float, size: float, payload: str) -> None:
        """Draw the code with its quiet zone inside the square (x, top-size)…(x+size, top)."""
        cells = qr.matrix(payload)
        module = size / (len(cells) + 2 * qr.QUIET)
        self.gray(0)
        for row_index, row in enumerate(cells):
            y = top - (row_index + qr.QUIET + 1) * module
            for start, length in qr.runs(row):
                self.ops.append(b"%.3f %.3f %.3f %.3f re" % (
                    x + (start + qr.QUIET) * module, y, length * module, module))
        self.ops.append(b"f")

    def content(self) -> bytes:
        return b"\n".join(self.ops) + b"\n"


def build_pdf(pages: list[bytes], size: tuple[float, float] = A6, title: str = "") -> bytes:
    """Assemble a PDF from content streams: catalog, page tree, three standard fonts, xref."""
    fonts = ["Helvetica", "Helvetica-Bold", "Courier-Bold"]
    objects: list[bytes] = []  # object n is objects[n-1]
    n_fonts = len(fonts)
    first_page = 3 + n_fonts  # 1 catalog, 2 pages, 3.. fonts, then page/content pairs
    kids = " ".join(f"{first_page + 2 * i} 0 R" for i in range(len(pages)))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    for name in fonts:
        objects.append(
            f"<< /Type /Font /Subtype /Type1 /BaseFont /{name} /Encoding /WinAnsiEncoding >>".encode())
    font_res = " ".join(f"/F{i + 1} {3 + i} 0 R" for i in range(n_fonts))
    for i, stream in enumerate(pages):
        content_ref = first_page + 2 * i + 1
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {size[0]:.2f} {size[1]:.2f}] "
            f"/Resources << /Font << {font_res} >> >> /Contents {content_ref} 0 R >>".encode())
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"endstream")
    info = b"<< /Producer (Sitzungsbox)" + (b" /Title " + pdf_string(title) if title else b"") + b" >>"
    objects.append(info)

    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, len(objects), xref_at)
    return bytes(out)


def card_page(card: Card, size: tuple[float, float] = A6) -> bytes:
    width, height = size
    inner = width - 2 * MARGIN
    page = _Page()
    y = height - MARGIN - 4
    page.gray(0.3)
    page.text(MARGIN, y, card.heading, "F1", 9)
    page.gray(0)
    name_size = 17.0
    while name_size > 9 and text_width(card.name, name_size) > inner:
        name_size -= 0.5
    y -= 20
    page.text(MARGIN, y, card.name, "F2", name_size)
    if card.faction:
        y -= 14
        page.text(MARGIN, y, card.faction, "F1", 11)
    for line in wrap(card.session_line, 8.5, inner)[:2]:
        y -= 11
        page.text(MARGIN, y, line, "F1", 8.5)
    qr_size = (46 if card.code else 52) * MM  # room for the code line and its hint; modules stay ~1 mm
    qr_top = y - 6
    page.qr((width - qr_size) / 2, qr_top, qr_size, card.payload)
    y = qr_top - qr_size - 6
    page.text(MARGIN, y, f"{card.ssid_label} {card.ssid}", "F1", 10)
    y -= 16
    page.text(MARGIN, y, card.key_label, "F1", 10)
    key_size = 13.0
    while key_size > 8 and text_width(card.key, key_size, mono=True) > inner - 55:
        key_size -= 0.5
    page.text(MARGIN + 55, y, card.key, "F3", key_size)
    if card.code:
        # Under the Wi-Fi key: what the portal asks for where no radio of ours knows the phone.
        y -= 16
        page.text(MARGIN, y, card.code_label, "F1", 10)
        page.text(MARGIN + max(55, text_width(card.code_label, 10) + 6), y, card.code, "F3", 13)
    y -= 14
    page.text(MARGIN, y, f"{card.address_label} {'  ·  '.join(card.addresses)}", "F1", 8.5)
    y -= 4
    page.gray(0.15)
    for paragraph in card.instructions:
        for line in wrap(paragraph, 8, inner):
            y -= 10
            if y < MARGIN - 4:
                break
            page.text(MARGIN, y, line, "F1", 8)
    return page.content()


def card_pdf(card: Card) -> bytes:
    return build_pdf([card_page(card)], A6, title=f"WLAN-Karte {card.name}")


_TRANSLIT = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss"})


def safe_filename(stem: str, suffix: str = ".pdf", limit: int = 60) -> str:
    """ASCII only, no path separators: names survive every ZIP tool and USB stick (FAT32)."""
    text = unicodedata.normalize("NFKD", stem.translate(_TRANSLIT)).encode("ascii", "ignore").decode()
    text = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:limit].strip("-")
    return (text or "karte") + suffix


def cards_zip(files: Iterable[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files:
            # Fixed timestamp: the archive carries no hint of when keys were printed.
            info = zipfile.ZipInfo(name, date_time=(2000, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buffer.getvalue()
