"""The member's Wi-Fi card as PDF: one A6 card per member, the A4 sheet of four cards a page (the guest card on
its last page), the guest card alone as an A4 page, the ZIP of cards.

Why fpdf2 (not hand-written PDF, not reportlab):
- Names come in every script a council has: Turkish, Polish, Czech, Vietnamese, Greek, Cyrillic. That needs an
  embedded Unicode TrueType font with a ToUnicode map (text that prints, copies, searches and that pdftotext
  reads back); the base-14 fonts of the hand-written PDF know only WinAnsi and printed "Ay?e Y?lmaz".
- fpdf2 is pure Python and maintained; what it needs (Pillow, fonttools, defusedxml) has aarch64/cp311 wheels
  in uv.lock. It embeds a *subset* of the font (a card is tens of kB, not DejaVu's 700 kB) and measures strings
  with the font's real metrics, so wrapping and shrink-to-fit are exact. reportlab would do as well, but it is
  the larger toolkit (charts, graphics, its own accelerator) for a page of text and squares.

The font is Debian's DejaVu Sans (package fonts-dejavu-core: the Makefile's DEB_RUN and image/packages.txt),
found by path without Config (`font_paths`); if it is missing, `FontMissing` says in German what to install.

Scripts DejaVu lacks (CJK above all): the box ships no font for them — fonts-noto-cjk alone would add about
100 MB to the image for names a German council rarely prints. Right-to-left scripts (Arabic, Hebrew) have glyphs
in DejaVu but would need text shaping (HarfBuzz) to print in the right order. For both the card prints what it
can and, under the name, the notice `Card.glyph_notice`: print this card from the HTML card sheet, whose browser
has the fonts and the shaping. `unprintable(text)` names the characters.

Layout: nothing is clipped. Long names shrink (17 pt down to 12 pt), then wrap at spaces; the session line
(body, title, date, venue) wraps onto as many lines as it needs; if the card grows taller than the page, the QR
code shrinks (to 36 mm, modules still ~0.8 mm) and then all text by steps. The QR code is drawn as filled
rectangles from qr.matrix(): the same modules as on screen.

Speed: fpdf2 parses a font in ~0.2 s and subsets it at output. `_Doc` parses each font once per process and gives
every document fpdf2's own copy of it (`TTFFont.__deepcopy__`, made for its FPDFRecorder) with a fresh fontTools
font to subset: a card then costs ~0.1 s. That leans on fpdf2's internals (`fonts`, `ttfont`), hence the pin
below 2.9 in pyproject.toml: after an upgrade, tests/test_cards.py shows whether it still holds.

No date in the files: CreationDate is fixed (2000-01-01, as in the ZIP), so a card carries no hint of when keys
were printed.
"""

from __future__ import annotations

import copy
import io
import logging
import re
import unicodedata
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from fontTools.ttLib import TTFont
from fpdf import FPDF

from appliance.captive import qr

A6 = (105.0, 148.0)  # mm
A4 = (210.0, 297.0)
MARGIN_X = 12.0  # mm: room to cut the A4 sheet inexactly
MARGIN_Y = 10.0
PT = 25.4 / 72  # one point in mm
LEADING = 1.22  # line height / font size
QR_MIN = 36.0  # mm
FIXED_DATE = datetime(2000, 1, 1, tzinfo=UTC)

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"),)
FONT_FILES = {"sans": "DejaVuSans.ttf", "sans-bold": "DejaVuSans-Bold.ttf", "mono-bold": "DejaVuSansMono-Bold.ttf"}
FONT_MISSING = "Schriftart DejaVu fehlt: apt install fonts-dejavu-core"


class FontMissing(RuntimeError):
    """The DejaVu fonts are not installed (the message says what to install)."""


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
    glyph_notice: str = ("Hinweis: Einige Zeichen dieses Namens kann die Karte nicht drucken. "
                         "Bitte die Karte aus der Kartenübersicht im Browser drucken.")


# --- fonts ----------------------------------------------------------------------------------------


def font_paths(dirs: Iterable[Path] = FONT_DIRS) -> dict[str, Path]:
    """Style → TrueType file of DejaVu; FontMissing (German, with the package to install) if one is absent."""
    dirs = tuple(dirs)
    found = {}
    for style, filename in FONT_FILES.items():
        path = next((d / filename for d in dirs if (d / filename).is_file()), None)
        if path is None:
            raise FontMissing(FONT_MISSING)
        found[style] = path
    return found


@lru_cache(maxsize=1)
def _codepoints(path: Path) -> frozenset[int]:
    with TTFont(str(path), lazy=True) as font:
        return frozenset(font.getBestCmap())


def clean(text: str) -> str:
    """NFC (so "e" + combining marks becomes the precomposed letter the font has), without control characters."""
    return "".join(ch for ch in unicodedata.normalize("NFC", text) if ch >= " " and ch != "\x7f")


def unprintable(text: str, dirs: Iterable[Path] = FONT_DIRS) -> str:
    """The characters of `text` the card cannot print right: not in DejaVu Sans Bold, or right-to-left."""
    have = _codepoints(font_paths(dirs)["sans-bold"])
    out = []
    for ch in clean(text):
        if (ord(ch) not in have or unicodedata.bidirectional(ch) in ("R", "AL")) and ch not in out:
            out.append(ch)
    return "".join(out)


_UNUSED_TABLES = ("GDEF", "GPOS", "GSUB")


@lru_cache(maxsize=2)
def _parsed_fonts(fonts: tuple[tuple[str, Path], ...]) -> dict:
    """The fonts parsed once per process (fpdf2 reads every glyph's metrics: ~0.2 s of a card's 0.3 s)."""
    logging.getLogger("fontTools.subset").setLevel(logging.WARNING)  # fpdf2's subsetting logs each step at INFO
    prototype = FPDF(unit="mm")
    for style, path in fonts:
        prototype.add_font(style, "", str(path))
    return prototype.fonts


class _Doc(FPDF):
    def __init__(self, title: str, fonts: dict[str, Path]) -> None:
        super().__init__(unit="mm", format="A4")
        self.set_auto_page_break(False)
        self.set_margins(0, 0)
        self.set_title(title)
        self.set_producer("Sitzungsbox")
        self.set_creation_date(FIXED_DATE)
        self.set_lang("de")
        for key, parsed in _parsed_fonts(tuple(fonts.items())).items():
            # fpdf2's own copy (as its FPDFRecorder does) shares metrics and cmap and copies what a document
            # changes; the fontTools font is subset in place at output, so each document opens its own, without
            # the layout tables fpdf2 drops from the subset anyway (decoding them was most of a card's time).
            font = copy.deepcopy(parsed)
            font.ttfont = TTFont(str(parsed.ttffile))
            for tag in _UNUSED_TABLES:
                if tag in font.ttfont:
                    del font.ttfont[tag]
            self.fonts[key] = font


def _document(title: str) -> _Doc:
    return _Doc(title, font_paths())


# --- layout (pure given the font metrics) ----------------------------------------------------------


@dataclass
class _Text:
    text: str
    font: str
    size: float  # pt
    gray: float = 0.0
    indent: float = 0.0  # mm from the left edge of the text column
    same_line: bool = False  # on the baseline of the item before (label and value)

    @property
    def height(self) -> float:
        return 0.0 if self.same_line else self.size * LEADING * PT


@dataclass
class _Gap:
    height: float


@dataclass
class _Qr:
    payload: str
    height: float  # the square's side, quiet zone included


@dataclass
class Layout:
    """What one card draws, top to bottom; `height` is what it needs, `fits` whether the page has it."""

    items: list = field(default_factory=list)
    height: float = 0.0
    available: float = 0.0
    name_size: float = 0.0
    name_lines: int = 0

    @property
    def fits(self) -> bool:
        return self.height <= self.available + 1e-6


def _width(doc: FPDF, text: str, font: str, size: float) -> float:
    doc.set_font(font, size=size)
    return doc.get_string_width(text)


def _wrap(doc: FPDF, text: str, font: str, size: float, width: float) -> list[str]:
    """Greedy wrap at spaces; only a single word wider than the line is broken between characters."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}" if current else word
        if _width(doc, candidate, font, size) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        current = word
        while _width(doc, current, font, size) > width and len(current) > 1:
            cut = len(current) - 1
            while cut > 1 and _width(doc, current[:cut], font, size) > width:
                cut -= 1
            lines.append(current[:cut])
            current = current[cut:]
    if current:
        lines.append(current)
    return lines


def _fit_name(doc: FPDF, name: str, width: float, scale: float) -> tuple[float, list[str]]:
    """The largest size at which the name fits: one line from 17 pt to 12 pt, then two or three lines broken
    at spaces (never inside a word), and only as the last resort a word broken between characters."""
    def sizes(top: float, bottom: float):
        size = top
        while size >= bottom - 1e-9:
            yield size * scale
            size -= 0.5

    words = name.split()
    for max_lines, top, bottom in ((1, 17, 12), (2, 14, 9), (3, 11, 7)):
        for size in sizes(top, bottom):
            lines = _wrap(doc, name, "sans-bold", size, width)
            if len(lines) <= max_lines and " ".join(lines).split() == words:
                return size, lines
    size = 7 * scale
    return size, _wrap(doc, name, "sans-bold", size, width)


def _row(doc: FPDF, label: str, value: str, width: float, scale: float, top: float, bottom: float) -> list:
    """`label value` on one baseline, the value in monospace; if even `bottom` pt is too wide, the value goes
    on its own lines under the label."""
    label_size = 10 * scale
    offset = max(19.0, _width(doc, label, "sans", label_size) + 2.5)
    size = top * scale
    while size > bottom * scale and _width(doc, value, "mono-bold", size) > width - offset:
        size -= 0.5 * scale
    if _width(doc, value, "mono-bold", size) <= width - offset:
        return [_Text(label, "sans", label_size), _Text(value, "mono-bold", size, indent=offset, same_line=True)]
    size = 10 * scale
    return [_Text(label, "sans", label_size),
            *(_Text(line, "mono-bold", size) for line in _wrap(doc, value, "mono-bold", size, width))]


def layout(doc: FPDF, card: Card, size: tuple[float, float] = A6) -> Layout:
    """The first arrangement that fits the page: full size with the QR code shrinking step by step, then all
    text smaller. Nothing is dropped: if nothing fits (absurd input), the smallest arrangement is returned."""
    width, height = size
    qr_top = 46.0 if card.code else 52.0  # room for the code line; modules stay ~1 mm
    attempts = [(1.0, q) for q in _steps(qr_top, QR_MIN, 2.0)]
    attempts += [(s, QR_MIN) for s in _steps(0.95, 0.6, 0.05)]
    result = Layout()
    for scale, qr_size in attempts:
        result = _arrange(doc, card, width - 2 * MARGIN_X, scale, qr_size)
        result.available = height - 2 * MARGIN_Y
        if result.fits:
            break
    return result


def _steps(top: float, bottom: float, step: float) -> list[float]:
    out = []
    value = top
    while value >= bottom - 1e-9:
        out.append(round(value, 3))
        value -= step
    return out


def _arrange(doc: FPDF, card: Card, inner: float, scale: float, qr_size: float) -> Layout:
    items: list = []

    def para(text: str, font: str, size: float, gray: float = 0.0) -> None:
        items.extend(_Text(line, font, size * scale, gray) for line in _wrap(doc, clean(text), font, size * scale,
                                                                            inner))

    para(card.heading, "sans", 9, 0.3)
    items.append(_Gap(1.5 * scale))
    name_size, name_lines = _fit_name(doc, clean(card.name), inner, scale)
    items.extend(_Text(line, "sans-bold", name_size) for line in name_lines)
    if unprintable(" ".join((card.name, card.faction, card.session_line))):
        para(card.glyph_notice, "sans", 7.5, 0.2)
    if card.faction:
        para(card.faction, "sans", 11)
    para(card.session_line, "sans", 8.5)
    items.append(_Gap(1.5 * scale))
    items.append(_Qr(card.payload, qr_size))
    items.append(_Gap(1.5 * scale))
    para(f"{card.ssid_label} {card.ssid}", "sans", 10)
    items.extend(_row(doc, card.key_label, card.key, inner, scale, 13, 9))
    if card.code:
        # Under the Wi-Fi key: what the portal asks for where no radio of ours knows the phone.
        items.extend(_row(doc, card.code_label, card.code, inner, scale, 13, 9))
    para(f"{card.address_label} {'  ·  '.join(card.addresses)}", "sans", 8.5)
    items.append(_Gap(1.0 * scale))
    for paragraph in card.instructions:
        para(paragraph, "sans", 8, 0.15)
    total = sum(item.height for item in items)
    return Layout(items=items, height=total, name_size=name_size, name_lines=len(name_lines))


# --- drawing -------------------------------------------------------------------------------------


def _draw_qr(doc: FPDF, x: float, top: float, side: float, payload: str) -> None:
    """The code with its quiet zone inside the square (x, top)…(x+side, top+side): one rectangle per run."""
    cells = qr.matrix(payload)
    module = side / (len(cells) + 2 * qr.QUIET)
    doc.set_fill_color(0)
    for row_index, row in enumerate(cells):
        y = top + (row_index + qr.QUIET) * module
        for start, length in qr.runs(row):
            doc.rect(x + (start + qr.QUIET) * module, y, length * module, module, style="F")


def draw_card(doc: FPDF, card: Card, x0: float = 0.0, y0: float = 0.0, size: tuple[float, float] = A6,
              zoom: float = 1.0) -> Layout:
    """Draw one card into the box (x0, y0, size) of the current page; returns its layout.

    `zoom` draws the card's layout for size/zoom that much larger (2: the A6 guest card as an A4 page): text
    widths grow with the font size, so the lines break exactly as on the small card."""
    plan = layout(doc, card, (size[0] / zoom, size[1] / zoom))
    left = x0 + MARGIN_X * zoom
    y = y0 + MARGIN_Y * zoom
    baseline = y
    for item in plan.items:
        if isinstance(item, _Gap):
            y += item.height * zoom
        elif isinstance(item, _Qr):
            side = item.height * zoom
            _draw_qr(doc, x0 + (size[0] - side) / 2, y, side, item.payload)
            y += side
        else:
            if not item.same_line:
                baseline = y + item.size * zoom * PT * 0.95  # ascent of DejaVu is ~0.93 em
                y += item.height * zoom
            doc.set_font(item.font, size=item.size * zoom)
            doc.set_text_color(round(255 * item.gray))
            doc.text(left + item.indent * zoom, baseline, item.text)
    doc.set_text_color(0)
    return plan


def card_pdf(card: Card) -> bytes:
    """One member's card on one A6 page."""
    doc = _document(f"WLAN-Karte {clean(card.name)}")
    doc.add_page(format=A6)
    draw_card(doc, card)
    return bytes(doc.output())


def sheet_pdf(cards: Iterable[Card], title: str = "WLAN-Karten", guest: Card | None = None) -> bytes:
    """All cards on A4, four a page (2 × 2 A6, exactly the A4 page), with light cut lines between them; then the
    guest card, if given, as a last page of its own at twice the size (a table card for guests and press)."""
    doc = _document(clean(title))
    cell = (A4[0] / 2, A4[1] / 2)
    cards = list(cards)
    for index, card in enumerate(cards):
        slot = index % 4
        if slot == 0:
            doc.add_page(format=A4)
            doc.set_draw_color(180)
            doc.set_line_width(0.2)
            doc.set_dash_pattern(dash=2, gap=2)
            doc.line(cell[0], 0, cell[0], A4[1])
            doc.line(0, cell[1], A4[0], cell[1])
            doc.set_dash_pattern()
        draw_card(doc, card, (slot % 2) * cell[0], (slot // 2) * cell[1], cell)
    if guest is not None:
        doc.add_page(format=A4)
        draw_card(doc, guest, size=A4, zoom=2.0)
    if not cards and guest is None:
        doc.add_page(format=A4)
    return bytes(doc.output())


def poster_pdf(guest: Card) -> bytes:
    """The guest card alone, as an A4 page."""
    doc = _document(clean(guest.name or guest.heading))
    doc.add_page(format=A4)
    draw_card(doc, guest, size=A4, zoom=2.0)
    return bytes(doc.output())


# --- files ---------------------------------------------------------------------------------------

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
