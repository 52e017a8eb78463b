"""QR codes and PDF cards: the code decodes to the exact join payload, text with umlauts comes out,
and one member's PDF carries no other member's secret."""

from __future__ import annotations

import io
import re
import subprocess
import zipfile
from pathlib import Path

import pytest
from conftest import need_binary

from appliance.captive import cards_pdf, codes, keys, qr
from appliance.sessions import roster, service

ADDRESSES = ("http://sitzungsbox.local", "http://10.77.0.1")


def make_card(name: str = "Jürgen Groß-Äßmann (Sprecher)", key: str = "abcdEFGH2345wxyz") -> cards_pdf.Card:
    return cards_pdf.Card(
        name=name, faction="Bündnis 90/Die Grünen · Mitglied", session_line="Rat der Stadt – Ratssitzung, 12.03.2026",
        ssid="Sitzung-7", key=key, payload=keys.wifi_payload("Sitzung-7", key), addresses=ADDRESSES,
        instructions=("Kamera-App öffnen, den QR-Code scannen und „Verbinden“ tippen.",), code="K7PD-M3QX",
    )


def pdftotext(path: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, timeout=30,
                          check=True).stdout


def decode_qr(pdf: Path) -> list[str]:
    """Render the page and read every QR code on it (zbarimg exits 4 when it finds none)."""
    prefix = pdf.with_suffix("")
    subprocess.run(["pdftoppm", "-r", "150", "-png", str(pdf), str(prefix)], check=True, timeout=30)
    pngs = sorted(pdf.parent.glob(prefix.name + "-*.png"))
    assert pngs, "pdftoppm rendered nothing"
    out = subprocess.run(["zbarimg", "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", *map(str, pngs)],
                         capture_output=True, text=True, timeout=30)
    return [line for line in out.stdout.splitlines() if line]


def test_matrix_and_svg_shape():
    payload = keys.wifi_payload("Sitzung-3", "k" * 16)
    cells = qr.matrix(payload)
    assert len(cells) == len(cells[0]) >= 21 and all(isinstance(c, bool) for row in cells for c in row)
    # The three finder patterns: 7x7 squares with a dark border in three corners.
    for top, left in ((0, 0), (0, len(cells) - 7), (len(cells) - 7, 0)):
        assert all(cells[top][left + i] and cells[top + 6][left + i] for i in range(7))
    svg = qr.svg(payload, "WLAN-Schlüssel von Anna <Schmidt> & Co")
    size = len(cells) + 2 * qr.QUIET
    assert svg.startswith("<svg") and f'viewBox="0 0 {size} {size}"' in svg
    assert svg.count("<path") == 1 and 'role="img"' in svg
    assert 'aria-label="WLAN-Schlüssel von Anna &lt;Schmidt&gt; &amp; Co"' in svg
    assert "<Schmidt>" not in svg
    # Every dark module is drawn, and only those: the runs add up to the matrix.
    drawn = sum(int(n) for n in re.findall(r"h(\d+)v", svg))
    assert drawn == sum(c for row in cells for c in row)


def test_runs():
    assert qr.runs([True, True, False, True]) == [(0, 2), (3, 1)]
    assert qr.runs([False, False]) == []


def test_pdf_string_escapes_and_winansi():
    assert cards_pdf.pdf_string("a(b)c\\") == b"(a\\(b\\)c\\\\)"
    assert cards_pdf.pdf_string("Müßig – „ja“") == b"(M\xfc\xdfig \x96 \x84ja\x93)"
    assert cards_pdf.pdf_string("日本\n") == b"(??)"  # outside cp1252: replaced, never a broken file


def test_safe_filename_is_ascii():
    assert cards_pdf.safe_filename("0042 Jürgen Groß/../Öz") == "0042-Juergen-Gross-Oez.pdf"
    assert cards_pdf.safe_filename("日本") == "karte.pdf"


def test_pdf_structure_xref_offsets_point_at_objects():
    data = cards_pdf.card_pdf(make_card())
    assert data.startswith(b"%PDF-1.4") and data.rstrip().endswith(b"%%EOF")
    xref_at = int(re.search(rb"startxref\n(\d+)\n", data).group(1))
    assert data[xref_at:xref_at + 4] == b"xref"
    entries = re.findall(rb"(\d{10}) 00000 n \n", data[xref_at:])
    for number, offset in enumerate(entries, start=1):
        assert data[int(offset):].startswith(b"%d 0 obj" % number)


def test_pdf_text_and_qr_decode(tmp_path):
    need_binary("pdftotext", "pdftoppm", "zbarimg", "pdfinfo")
    card = make_card()
    path = tmp_path / "card.pdf"
    path.write_bytes(cards_pdf.card_pdf(card))
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, timeout=30)
    assert info.returncode == 0 and "Syntax Error" not in info.stderr, info.stderr
    assert re.search(r"^Pages:\s+1$", info.stdout, re.M)
    text = pdftotext(path)
    for expected in ("Jürgen Groß-Äßmann (Sprecher)", "Bündnis 90/Die Grünen", "Sitzung-7", "abcdEFGH2345wxyz",
                     "http://sitzungsbox.local", "http://10.77.0.1", "„Verbinden“", "Rat der Stadt – Ratssitzung",
                     "Persönlicher Code: K7PD-M3QX"):
        assert expected in text, expected
    assert decode_qr(path) == ["WIFI:T:WPA;S:Sitzung-7;P:abcdEFGH2345wxyz;;"]


def test_zip_of_session_pdfs_one_per_member_without_foreign_secrets(tmp_path, cfg, db, monkeypatch):
    need_binary("pdftotext", "pdftoppm", "zbarimg")
    from test_clerk import RecordingHelper, set_pw

    from appliance.web.app import create_app

    s = service.create_session(db, body="Rat der Stadt", title="Ratssitzung", day="2026-03-12")
    rows = roster.parse_members("Name;Fraktion;Rolle;Stimmrecht\nÖzlem Çelik;SPD;Mitglied;ja\n"
                                "Jürgen Weiß;CDU;Mitglied;ja\nAnna (Nina) Weiss;FDP;Stellvertretung;nein\n")
    service.insert_members(db, s.id, rows)
    people = service.members(db, s.id)
    set_pw(cfg, "pw-for-cards")
    app = create_app(cfg, helper=RecordingHelper(), testing=True)
    client = app.test_client()
    page = client.get("/clerk/login")
    tok = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    assert client.post("/clerk/login", data={"csrf_token": tok, "password": "pw-for-cards"}).status_code == 302

    resp = client.get(f"/clerk/sessions/{s.id}/cards.zip")
    assert resp.status_code == 200 and resp.mimetype == "application/zip"
    assert resp.headers["Cache-Control"] == "no-store"
    archive = zipfile.ZipFile(io.BytesIO(resp.data))
    names = archive.namelist()
    assert len(names) == len(people) == 3 and len(set(names)) == 3
    assert all(n.isascii() and re.fullmatch(r"[A-Za-z0-9-]+\.pdf", n) for n in names)
    secrets_of = {m.id: m.passphrase for m in people}
    codes_of = {m.id: codes.display(m.code) for m in people}
    for m in people:
        name = next(n for n in names if n.startswith(f"{m.id:04d}-"))
        data = archive.read(name)
        path = tmp_path / name
        path.write_bytes(data)
        text = pdftotext(path)
        assert m.name in text and m.passphrase in text
        # The personal code under the Wi-Fi key, with its hint.
        assert re.search(r"Schlüssel:.*\n\s*Persönlicher Code:\s+" + codes_of[m.id], text), text
        assert "Fragt die Seite nach einem Code" in text
        for other_id, other_key in secrets_of.items():
            if other_id != m.id:
                assert other_key.encode() not in data and other_key not in text
                assert codes_of[other_id].encode() not in data
        assert s.guest_key.encode() not in data
        assert decode_qr(path) == [keys.wifi_payload(s.ssid, m.passphrase)]


@pytest.mark.parametrize("name", ["A", "Prof. Dr. Hans-Joachim Freiherr von und zu Gutenberg-Schwanstein (parteilos)"])
def test_long_and_short_names_still_decode(tmp_path, name):
    need_binary("pdftotext", "pdftoppm", "zbarimg")
    path = tmp_path / "c.pdf"
    path.write_bytes(cards_pdf.card_pdf(make_card(name=name, key="Z" * 63)))
    assert decode_qr(path) == [keys.wifi_payload("Sitzung-7", "Z" * 63)]
    assert name in pdftotext(path).replace("\n", " ") or name.split()[0] in pdftotext(path)


def test_html_card_sheet_shows_each_members_code_under_the_key(cfg, db, monkeypatch):
    from test_clerk import RecordingHelper, set_pw

    from appliance.web.app import create_app

    s = service.create_session(db, body="Rat der Stadt", title="Ratssitzung", day="2026-03-12")
    rows = roster.parse_members("Name;Fraktion;Rolle;Stimmrecht\n"
                                "Özlem Çelik;SPD;Mitglied;ja\nJürgen Weiß;CDU;Mitglied;ja\n")
    service.insert_members(db, s.id, rows)
    set_pw(cfg, "pw-for-cards")
    client = create_app(cfg, helper=RecordingHelper(), testing=True).test_client()
    tok = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/clerk/login").text).group(1)
    client.post("/clerk/login", data={"csrf_token": tok, "password": "pw-for-cards"})
    html = client.get(f"/clerk/sessions/{s.id}/cards").text
    people = service.members(db, s.id)
    for m in people:
        card = re.search(rf'<article class="card" id="card-{m.id}".*?</article>', html, re.S).group(0)
        assert re.search(r"<dd class=\"mono key\">" + re.escape(m.passphrase) + r"</dd>\s*<dt>Persönlicher Code:</dt>"
                         r"<dd class=\"mono key code\">" + codes.display(m.code) + "</dd>", card), card
        assert "Fragt die Seite nach einem Code" in card
        assert all(codes.display(o.code) not in card for o in people if o.id != m.id)
