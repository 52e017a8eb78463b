"""QR codes and PDF cards: the code decodes to the exact join payload, text with umlauts comes out,
and one member's PDF carries no other member's secret."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
import unicodedata
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT, need_binary

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


# Names in six scripts and languages: the bug was "Ay?e Y?lmaz" from fonts without these glyphs.
NAMES = {
    "turkish": "Ayşe Yılmaz",
    "polish": "Łukasz Żółć",
    "greek": "Γιώργος Παπαδόπουλος",
    "cyrillic": "Анна Иванова",
    "vietnamese": "Nguyễn Thị Minh Khai",
    "czech": "Jiří Dvořák",
}
SESSION = "Rat der Stadt – Ratssitzung, Donnerstag, 12. März 2026, Großer Saal"


def script_card(name: str, key: str = "abcdEFGH2345wxyz", session_line: str = SESSION) -> cards_pdf.Card:
    return cards_pdf.Card(
        name=name, faction="Çevre Listesi · Mitglied", session_line=session_line, ssid="Sitzung-7", key=key,
        payload=keys.wifi_payload("Sitzung-7", key), addresses=ADDRESSES,
        instructions=("Kamera-App öffnen, den QR-Code scannen und „Verbinden“ tippen.",
                      "Fragt die Seite nach einem Code, den persönlichen Code eingeben.",
                      "Diese Karte ist persönlich: nicht weitergeben."), code="K7PD-M3QX",
    )


def normalised(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def text_lines(path: Path, *crop: float, page: int = 0) -> list[str]:
    """pdftotext in reading order (optionally of one page, of the area x, y, w, h in points), lines normalised."""
    area = [a for flag, v in zip(("-x", "-y", "-W", "-H"), crop, strict=False) for a in (flag, str(round(v)))]
    pages = ["-f", str(page), "-l", str(page)] if page else []
    out = subprocess.run(["pdftotext", *pages, *area, str(path), "-"], capture_output=True, text=True, timeout=30,
                         check=True).stdout
    return [normalised(line) for line in out.splitlines() if line.strip()]


def assert_fonts_embedded(path: Path) -> None:
    out = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, timeout=30, check=True).stdout
    rows = [line.split() for line in out.splitlines()[2:] if line.strip()]
    assert rows, out
    for row in rows:
        emb, sub, uni = row[-5:-2]
        assert (emb, sub, uni) == ("yes", "yes", "yes"), out  # embedded, a subset, with a ToUnicode map
        assert "DejaVu" in row[0], out


def assert_words_inside(path: Path, margin: float = 8.5) -> None:
    """Every word lies on its page, at least `margin` points (3 mm) inside every edge: nothing clipped."""
    out = subprocess.run(["pdftotext", "-bbox", str(path), "-"], capture_output=True, text=True, timeout=30,
                         check=True).stdout
    pages = out.split("<page ")[1:]
    assert pages
    for page in pages:
        width, height = map(float, re.match(r'width="([\d.]+)" height="([\d.]+)"', page).groups())
        words = re.findall(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)<', page)
        assert words
        for x0, y0, x1, y1, word in words:
            assert margin <= float(x0) and float(x1) <= width - margin, (word, x0, x1, width)
            assert margin <= float(y0) and float(y1) <= height - margin, (word, y0, y1, height)


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


def test_clean_normalises_and_unprintable_names_what_the_font_lacks():
    assert cards_pdf.clean("Nguye\u0302\u0303n\x07") == "Nguyễn"  # combining marks → the precomposed letter
    assert cards_pdf.unprintable("Ayşe Yılmaz, Łukasz Żółć, Γιώργος, Анна, Nguyễn Thị, Jiří Dvořák – „ok“ €") == ""
    assert cards_pdf.unprintable("山田 太郎") == "山田太郎"  # no CJK font on the box
    assert cards_pdf.unprintable("שלום") == "שלום"  # right to left: DejaVu has the glyphs, not the shaping


def test_font_lookup_without_config_and_german_error(tmp_path):
    paths = cards_pdf.font_paths()
    assert paths["sans"].name == "DejaVuSans.ttf" and paths["sans-bold"].name == "DejaVuSans-Bold.ttf"
    with pytest.raises(cards_pdf.FontMissing, match=r"^Schriftart DejaVu fehlt: apt install fonts-dejavu-core$"):
        cards_pdf.font_paths([tmp_path])


def test_font_package_is_installed_by_make_and_the_image():
    deb_run = re.search(r"^DEB_RUN := (.*)$", (ROOT / "Makefile").read_text(), re.M).group(1).split()
    assert "fonts-dejavu-core" in deb_run
    assert "fonts-dejavu-core" in (ROOT / "image/packages.txt").read_text().split()


def test_safe_filename_is_ascii():
    assert cards_pdf.safe_filename("0042 Jürgen Groß/../Öz") == "0042-Juergen-Gross-Oez.pdf"
    assert cards_pdf.safe_filename("日本") == "karte.pdf"


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
    text = normalised(pdftotext(path))
    assert name in text and "Z" * 32 in text.replace(" ", "")  # the longest key, on lines of its own
    assert_words_inside(path)


@pytest.mark.parametrize("script", sorted(NAMES))
def test_card_prints_names_in_every_script(tmp_path, artifacts, script):
    """The issue's proof: each card's text read back by pdftotext is the name exactly, the fonts are embedded,
    and the QR code rendered by pdftoppm decodes to exactly the payload."""
    need_binary("pdftotext", "pdftoppm", "zbarimg", "pdffonts", "pdfinfo")
    name = NAMES[script]
    key = f"key{script}2345"
    path = tmp_path / f"{script}.pdf"
    path.write_bytes(cards_pdf.card_pdf(script_card(name, key)))
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, timeout=30)
    assert info.returncode == 0 and "Syntax Error" not in info.stderr, info.stderr
    assert re.search(r"^Pages:\s+1$", info.stdout, re.M) and "2000" in info.stdout  # fixed date, not today's
    lines = text_lines(path)
    assert name in lines, lines  # a line of its own, every letter right
    assert "Çevre Listesi · Mitglied" in lines and SESSION in " ".join(lines)  # wrapped at spaces only
    assert "Hinweis" not in " ".join(lines)
    assert_fonts_embedded(path)
    assert_words_inside(path)
    assert decode_qr(path) == [keys.wifi_payload("Sitzung-7", key)]
    if script == "greek":
        shutil.copy(next(tmp_path.glob(f"{script}-*.png")), artifacts / "card-greek.png")


def test_long_session_line_and_long_name_are_never_clipped(tmp_path):
    need_binary("pdftotext", "pdftoppm", "zbarimg")
    title = ("Sondersitzung zum Haushalt 2027 und zur Beteiligung der Bürgerinnen und Bürger an der Planung des "
             "neuen Rathausplatzes")
    title = (title + " und der Markthalle")[:120]
    assert len(title) == 120
    session_line = f"Rat der Stadt Mönchengladbach – {title}, Donnerstag, 12. März 2026, Großer Sitzungssaal"
    spaced = "Anna-Katharina Müller-Lüdenscheidt-Wolkenstein von Hohenberg"
    one_word = "Maximiliane Hohenzollern-Sigmaringen-Wittelsbach-Oberbayerns"
    assert len(spaced) == len(one_word) == 60
    for index, name in enumerate((spaced, one_word)):
        card = script_card(name, session_line=session_line)
        plan = cards_pdf.layout(cards_pdf._document("t"), card)
        assert plan.fits and plan.name_size >= 7, (plan.height, plan.available)
        path = tmp_path / f"long{index}.pdf"
        path.write_bytes(cards_pdf.card_pdf(card))
        text = normalised(" ".join(text_lines(path)))
        assert name in text and session_line in text, text
        assert_words_inside(path)
        assert decode_qr(path) == [card.payload]


def test_a4_sheet_four_cards_a_page(tmp_path):
    need_binary("pdftotext", "pdftoppm", "zbarimg", "pdffonts", "pdfinfo")
    cards = [script_card(name, f"key{script}2345") for script, name in sorted(NAMES.items())]
    path = tmp_path / "sheet.pdf"
    path.write_bytes(cards_pdf.sheet_pdf(cards, title="WLAN-Karten Ratssitzung"))
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, timeout=30, check=True).stdout
    assert re.search(r"^Pages:\s+2$", info, re.M) and re.search(r"^Page size:\s+595.* x 841.* pts \(A4\)", info, re.M)
    # Each quarter of a page holds one card, in order: left to right, top to bottom.
    half_w, half_h = 595.28 / 2, 841.89 / 2
    for index, card in enumerate(cards):
        page, slot = divmod(index, 4)
        lines = text_lines(path, (slot % 2) * half_w, (slot // 2) * half_h, half_w, half_h, page=page + 1)
        assert card.name in lines and SESSION in " ".join(lines), (card.name, lines)
        assert all(other.name not in lines for other in cards if other is not card)
    assert_fonts_embedded(path)
    assert_words_inside(path)
    assert sorted(decode_qr(path)) == sorted(card.payload for card in cards)


def test_zip_of_cards_in_every_script(tmp_path):
    need_binary("pdftotext", "pdftoppm", "zbarimg")
    cards = [script_card(name, f"key{script}2345") for script, name in sorted(NAMES.items())]
    files = [(cards_pdf.safe_filename(f"{i:04d} {c.name}"), cards_pdf.card_pdf(c)) for i, c in enumerate(cards)]
    archive = zipfile.ZipFile(io.BytesIO(cards_pdf.cards_zip(files)))
    assert archive.namelist() == [name for name, _ in files] and len(set(archive.namelist())) == len(cards)
    for (filename, _), card in zip(files, cards, strict=True):
        path = tmp_path / filename
        path.write_bytes(archive.read(filename))
        assert card.name in text_lines(path)
        assert decode_qr(path) == [card.payload]


def test_name_in_a_script_without_font_gets_a_notice_and_still_a_working_code(tmp_path):
    need_binary("pdftotext", "pdftoppm", "zbarimg")
    card = script_card("山田 太郎")
    path = tmp_path / "cjk.pdf"
    path.write_bytes(cards_pdf.card_pdf(card))
    text = normalised(" ".join(text_lines(path)))
    assert normalised(card.glyph_notice) in text and "Kartenübersicht im Browser" in text
    assert decode_qr(path) == [card.payload]


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


def _clerk_client(cfg):
    from test_clerk import RecordingHelper, set_pw

    from appliance.web.app import create_app

    set_pw(cfg, "pw-for-cards")
    client = create_app(cfg, helper=RecordingHelper(), testing=True).test_client()
    tok = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/clerk/login").text).group(1)
    assert client.post("/clerk/login", data={"csrf_token": tok, "password": "pw-for-cards"}).status_code == 302
    return client


def test_clerk_sheet_pdf_has_every_member_and_answers_503_without_the_font(tmp_path, cfg, db, monkeypatch):
    need_binary("pdftotext", "pdftoppm", "zbarimg")
    from appliance.web.app import create_app

    s = service.create_session(db, body="Δημοτικό Συμβούλιο", title="Ratssitzung", day="2026-03-12", venue="Saal")
    rows = roster.parse_members("Name;Fraktion;Rolle;Stimmrecht\n" + "".join(
        f"{name};Liste {script};Mitglied;ja\n" for script, name in sorted(NAMES.items())))
    service.insert_members(db, s.id, rows)
    people = service.members(db, s.id)
    anonymous = create_app(cfg, helper=None, testing=True).test_client()
    for url in (f"/clerk/sessions/{s.id}/cards.pdf", f"/clerk/sessions/{s.id}/guest-poster.pdf"):
        assert anonymous.get(url).status_code == 302  # login first
    client = _clerk_client(cfg)
    assert f"/clerk/sessions/{s.id}/cards.pdf" in client.get(f"/clerk/sessions/{s.id}").text
    resp = client.get(f"/clerk/sessions/{s.id}/cards.pdf")
    assert resp.status_code == 200 and resp.mimetype == "application/pdf"
    assert resp.headers["Cache-Control"] == "no-store" and resp.headers["Content-Disposition"].isascii()
    path = tmp_path / "sheet.pdf"
    path.write_bytes(resp.data)
    # Six members on two pages of four, then the guest card (handbook A2: "dasselbe PDF, letzte Seite").
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, timeout=30, check=True).stdout
    assert re.search(r"^Pages:\s+3$", info, re.M)
    members_text = " ".join(text_lines(path, page=1) + text_lines(path, page=2))
    assert all(m.name in members_text for m in people) and "Δημοτικό Συμβούλιο – Ratssitzung" in members_text
    assert s.guest_key not in members_text and "Hinweis" not in members_text
    guest_text = " ".join(text_lines(path, page=3))
    assert "WLAN für Gäste und Presse" in guest_text and s.guest_key in guest_text
    assert all(m.name not in guest_text and m.passphrase not in guest_text for m in people)
    guest_payload = keys.wifi_payload(s.ssid, s.guest_key)
    payloads = [guest_payload, *(keys.wifi_payload(s.ssid, m.passphrase) for m in people)]
    assert sorted(decode_qr(path)) == sorted(payloads)
    assert_words_inside(path)
    # The guest card alone, linked from the poster page.
    assert f"/clerk/sessions/{s.id}/guest-poster.pdf" in client.get(f"/clerk/sessions/{s.id}/guest-poster").text
    resp = client.get(f"/clerk/sessions/{s.id}/guest-poster.pdf")
    assert resp.status_code == 200 and resp.mimetype == "application/pdf"
    assert resp.headers["Cache-Control"] == "no-store"
    poster = tmp_path / "poster.pdf"
    poster.write_bytes(resp.data)
    assert decode_qr(poster) == [guest_payload] and s.guest_key in " ".join(text_lines(poster))

    def no_font(*_args):
        raise cards_pdf.FontMissing(cards_pdf.FONT_MISSING)

    monkeypatch.setattr(cards_pdf, "font_paths", no_font)
    for url in (f"/clerk/sessions/{s.id}/cards.pdf", f"/clerk/sessions/{s.id}/cards.zip",
                f"/clerk/sessions/{s.id}/guest-poster.pdf",
                f"/clerk/sessions/{s.id}/members/{people[0].id}/card.pdf"):
        resp = client.get(url)
        assert resp.status_code == 503 and resp.text == "Schriftart DejaVu fehlt: apt install fonts-dejavu-core"


def test_a_web_worker_loads_the_card_printer_only_when_cards_are_printed(tmp_path):
    """fpdf2 and fontTools (~22 MB per worker) stay out of a worker that never printed a card; the first card
    page loads them."""
    probe = (
        "import sys\n"
        "from appliance.config import Config\n"
        "from appliance.helper.client import NullHelper\n"
        "from appliance.web.app import create_app\n"
        f"app = create_app(Config(state_dir=__import__('pathlib').Path({str(tmp_path)!r})).validate(), "
        "helper=NullHelper())\n"
        "print(sorted(m for m in ('fpdf', 'fontTools') if m in sys.modules))\n"
        "from appliance.web import clerk\n"
        "clerk._cards()\n"
        "print(sorted(m for m in ('fpdf', 'fontTools') if m in sys.modules))\n")
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split("\n")[:2] == ["[]", "['fontTools', 'fpdf']"]
