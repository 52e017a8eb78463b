"""PDF files for the tests, real and hostile, written here (no binary fixtures): a one-page document whose only
content stream carries `payload` (so sizes and hashes differ at will), and its broken or active variants."""

from __future__ import annotations

import io
import os


def pdf(payload: bytes = b"", *, catalog: bytes = b"", page: bytes = b"", extra: list[bytes] | None = None) -> bytes:
    """A valid PDF 1.7 with a classic cross-reference table. catalog / page: more entries for those
    dictionaries; extra: more objects (numbered from 5 on)."""
    objs = [b"<< /Type /Catalog /Pages 2 0 R " + catalog + b">>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R " + page + b">>",
            b"<< /Length %d >>\nstream\n" % len(payload) + payload + b"\nendstream",
            *(extra or [])]
    return write(objs)


def write(objs: list[bytes]) -> bytes:
    """Objects 1…n (1: the catalog) as a PDF file with a classic cross-reference table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for n, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


def sized(size: int) -> bytes:
    """A valid PDF of about `size` bytes of incompressible content (like scanned pages), unique every call."""
    return pdf(os.urandom(max(0, size - 600)))


def text(s: str) -> bytes:
    return pdf(b"BT /F1 12 Tf 72 720 Td (" + s.encode("latin-1") + b") Tj ET")


def truncated(size: int = 20_000) -> bytes:
    """Cut off in the middle, as an interrupted copy leaves it."""
    data = sized(size)
    return data[: len(data) // 2]


JS_OPEN = pdf(b"x", catalog=b"/OpenAction << /S /JavaScript /JS (app.alert\\(1\\)) >>")
JS_ESCAPED = pdf(b"x", page=b"/AA << /O 5 0 R >>", extra=[b"<< /S /J#61vaScript /J#53 (app.alert\\(2\\)) >>"])
LAUNCH = pdf(b"x", catalog=b"/OpenAction << /S /Launch /F (cmd.exe) >>")
EMBEDDED = pdf(b"x", catalog=b"/Names << /EmbeddedFiles << /Names [(a.exe) 5 0 R] >> >>",
               extra=[b"<< /Type /Filespec /F (a.exe) /EF << /F 6 0 R >> >>",
                      b"<< /Type /EmbeddedFile /Length 2 >>\nstream\nMZ\nendstream"])
NO_PAGES = (pdf(b"x").replace(b"/Kids [3 0 R] /Count 1", b"/Kids [] /Count 0      "))


def encrypted(user_password: str = "geheim") -> bytes:  # noqa: S107 - a test file's password
    """Encrypted with RC4 (pypdf can write it without a crypto library); "" opens without a password."""
    from pypdf import PdfReader, PdfWriter

    w = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf(b"x"))))
    w.encrypt(user_password, "eigentuemer", algorithm="RC4-128")
    buf = io.BytesIO()
    w.write(buf)
    return buf.getvalue()


def pages(n: int, size: int, links: int = 10) -> bytes:
    """A big document: n pages, each with incompressible content and `links` link annotations (URI actions, which
    are not active content), about `size` bytes in all."""
    per = max(0, size // n - 200 * links - 300)
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [" + b" ".join(b"%d 0 R" % (3 + i * (2 + links)) for i in range(n))
            + b"] /Count %d >>" % n]
    for i in range(n):
        first = 3 + i * (2 + links)
        annots = b" ".join(b"%d 0 R" % (first + 2 + k) for k in range(links))
        objs.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents %d 0 R /Annots [%s] >>"
                    % (first + 1, annots))
        body = os.urandom(per)
        objs.append(b"<< /Length %d >>\nstream\n" % len(body) + body + b"\nendstream")
        objs += [b"<< /Type /Annot /Subtype /Link /Rect [0 0 10 10] /A << /S /URI /URI (https://rat.example/%d/%d) >>"
                 b" >>" % (i, k) for k in range(links)]
    return write(objs)


def scan(px: int = 1200, pages: int = 1) -> bytes:
    """'Scanned' pages: a blocky noise image at ~250 dpi each (what Ghostscript's /ebook brings down to 150 dpi)."""
    from fpdf import FPDF
    from PIL import Image
    pdf = FPDF()
    for _ in range(pages):
        pdf.add_page()
        img = Image.frombytes("L", (px // 4, px // 4), os.urandom(px * px // 16)).resize((px, px))
        buf = io.BytesIO()
        img.save(buf, "PNG")
        pdf.image(buf, x=10, y=10, w=120)
    return bytes(pdf.output())
