"""QR codes for Wi-Fi join cards: the module matrix, and an inline SVG drawn from it.

No image library: the SVG is one <path> (small, crisp at any print size) and the PDF writer
draws the same matrix as rectangles, so screen, print and PDF show the identical code.
"""

from __future__ import annotations

from html import escape

import qrcode
import qrcode.constants

# Quiet zone in modules. The standard asks for 4; scanners need it to find the code on a busy card.
QUIET = 4


def matrix(payload: str) -> list[list[bool]]:
    """Dark modules as True, without quiet zone. Error correction M: survives a crease or a thumb."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=0)
    code.add_data(payload)
    code.make(fit=True)
    return [[bool(cell) for cell in row] for row in code.get_matrix()]


def runs(row: list[bool]) -> list[tuple[int, int]]:
    """(start, length) of each horizontal run of dark modules: fewer shapes than one per module."""
    out: list[tuple[int, int]] = []
    start = None
    for x, dark in enumerate([*row, False]):
        if dark and start is None:
            start = x
        elif not dark and start is not None:
            out.append((start, x - start))
            start = None
    return out


def svg(payload: str, label: str = "WLAN-QR-Code", css_class: str = "qr") -> str:
    """Inline SVG; `label` names whose key this is (screen readers announce it, e.g. "WLAN-Schlüssel von …").

    Sized by CSS through the viewBox; shape-rendering crispEdges keeps module edges sharp for scanners.
    """
    cells = matrix(payload)
    size = len(cells) + 2 * QUIET
    parts = []
    for y, row in enumerate(cells):
        for x, length in runs(row):
            parts.append(f"M{x + QUIET} {y + QUIET}h{length}v1h-{length}z")
    label_attr = escape(label, quote=True)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{escape(css_class, quote=True)}" role="img" '
        f'aria-label="{label_attr}" viewBox="0 0 {size} {size}" shape-rendering="crispEdges">'
        f"<title>{escape(label)}</title>"
        f'<rect width="{size}" height="{size}" fill="#fff"/>'
        f'<path fill="#000" d="{"".join(parts)}"/></svg>'
    )
