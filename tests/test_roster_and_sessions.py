"""Member list import and session keys."""

from __future__ import annotations

import pytest

from appliance.captive import keys
from appliance.sessions import service
from appliance.sessions.roster import RosterError, parse_members

GOOD = """Name;Fraktion;Rolle;Stimmrecht;Gremium
Anna Schmidt;SPD;Mitglied;ja;Rat
Bernd Müller;CDU;Stellvertretung;nein;Rat
Carla Öztürk;;Verwaltung;nein;Rat
"""


def test_parse_good_csv_german_headers_and_cp1252():
    rows = parse_members(GOOD.encode("cp1252"))
    assert [r.name for r in rows] == ["Anna Schmidt", "Bernd Müller", "Carla Öztürk"]
    assert [r.role for r in rows] == ["member", "deputy", "administration"]
    assert [r.voting for r in rows] == [True, False, False]


def test_parse_english_comma_csv():
    rows = parse_members("name,faction,role,voting,body\nA B,X,member,yes,Council\n")
    assert rows[0].faction == "X" and rows[0].voting


def test_bad_rows_named_and_nothing_half_imported(db):
    bad = GOOD + "Dora;Grüne;Bürgermeisterin;ja;Rat\n;SPD;Mitglied;ja;Rat\nAnna Schmidt;SPD;Mitglied;vielleicht;Rat\n"
    with pytest.raises(RosterError) as err:
        parse_members(bad)
    text = str(err.value)
    assert "Zeile 5: unbekannte Rolle „Bürgermeisterin“" in text
    assert "Zeile 6: Name fehlt" in text
    assert "Zeile 7: Stimmrecht „vielleicht“" in text and "steht schon in Zeile 2" in text
    assert db["members"].count == 0


def test_missing_column_and_empty_file():
    with pytest.raises(RosterError, match="Spalte fehlt: rolle"):
        parse_members("Name;Fraktion\nA;B\n")
    with pytest.raises(RosterError, match="leer"):
        parse_members(b"")
    with pytest.raises(RosterError, match="keine Textdatei"):
        parse_members(b"\x00\x81\x8d\x8f\x90\x9d")


def test_control_characters_refused():
    with pytest.raises(RosterError, match="Zeile 2: Feld „Name“ enthält Steuerzeichen"):
        parse_members("Name;Rolle\nA\x07B;Mitglied\n")


def test_limits_are_named_with_their_row():
    with pytest.raises(RosterError) as err:
        parse_members("Name;Rolle\nA;Mitglied\n" + "B" * 300 + ";Mitglied\n")
    assert err.value.problems == ["Zeile 3: Feld „Name“ ist zu lang (höchstens 200 Zeichen)"]
    with pytest.raises(RosterError, match="Zeile 2 ist zu lang .*höchstens 2000 Zeichen pro Zeile"):
        parse_members("Name;Rolle\n" + "B" * (1 << 20) + ";Mitglied\n")
    # A quoted field running over many short lines reaches the csv module's own limit: worded the same way.
    with pytest.raises(RosterError, match="Zeile 2: ein Feld ist zu lang \\(höchstens 200 Zeichen\\)"):
        parse_members('Name;Rolle\n"' + "A\n" * 100_000 + '";Mitglied\n')
    with pytest.raises(RosterError, match="Zeile 2002: mehr als 2000 Einträge \\(höchstens 2000 Zeilen\\)"):
        parse_members("Name;Rolle\n" + "".join(f"P{i};Mitglied\n" for i in range(100_000)))
    with pytest.raises(RosterError, match="zu groß .*höchstens 2 MB"):
        parse_members(b"Name;Rolle\n" + b"Person;Mitglied\n" * 200_000)


def test_unquoted_comma_in_a_name_names_the_real_cause():
    text = "Name,Fraktion,Rolle,Stimmrecht,Gremium\nA,SPD,Mitglied,ja,Rat\nB,SPD,Mitglied,ja,Rat\n" \
           "Müller, Hans,CDU,Mitglied,ja,Rat\n"
    with pytest.raises(RosterError) as err:
        parse_members(text)
    assert err.value.problems == ["Zeile 4 hat 6 Spalten statt 5 – enthält ein Name ein Komma? Dann den Namen in "
                                  "Anführungszeichen setzen."]
    quoted = text.replace("Müller, Hans", '"Müller, Hans"')
    assert parse_members(quoted)[-1].name == "Müller, Hans"
    # Excel's trailing empty cells are no extra columns.
    assert len(parse_members("Name;Rolle\nA;Mitglied;;\n")) == 1


def test_encodings_excel_writes():
    rows = [("Jürgen Groß", "Mitglied")]
    text = "Name;Rolle\n" + "".join(f"{n};{r}\n" for n, r in rows)
    for data in (text.encode("cp1252"), text.encode("utf-8"), text.encode("utf-8-sig"), text.encode("utf-16"),
                 text.replace(";", "\t").encode("utf-16"), text.replace("\n", "\r\n").encode("cp1252")):
        assert parse_members(data)[0].name == "Jürgen Groß", data[:20]
    with pytest.raises(RosterError, match="Zeile 3: die Datei mischt UTF-8 und Windows-1252"):
        parse_members("Name;Rolle\nJürgen;Mitglied\n".encode() + "Groß;Mitglied\n".encode("cp1252"))
    with pytest.raises(RosterError, match="Excel-Arbeitsmappe"):
        parse_members(b"PK\x03\x04" + b"\0" * 100)


def test_hostile_cells():
    with pytest.raises(RosterError, match="Schreibrichtung"):
        parse_members("Name;Rolle\nAnna\u202eSchmidt;Mitglied\n")
    with pytest.raises(RosterError, match="Zeile 2: die Zeile ist kein gültiges CSV"):
        parse_members('Name;Rolle\n"Anna;Mitglied\n')
    with pytest.raises(RosterError, match="„Name“ steht zweimal"):
        parse_members("Name;Rolle;Name\nA;Mitglied;B\n")
    with pytest.raises(RosterError) as err:  # the same person in another Unicode form or with a hidden character
        parse_members("Name;Rolle\nAnna;Mitglied\nAn\u200bna;Mitglied\nＡｎｎａ;Mitglied\n")
    assert [p.split(":")[0] for p in err.value.problems] == ["Zeile 3", "Zeile 4"]
    with pytest.raises(RosterError) as err:  # many bad rows: a short list, not a page per row
        parse_members("Name;Rolle\n" + "".join(f"P{i};Chef\n" for i in range(500)))
    assert len(err.value.problems) == 21 and "weitere Fehler" in err.value.problems[-1]


def test_session_members_keys_and_rotation(db):
    s = service.create_session(db, body="Rat der Stadt", title="3. Sitzung", day="2026-12-01", venue="Kulturzentrum")
    assert s.ssid == "Sitzung"
    service.insert_members(db, s.id, parse_members(GOOD))
    ms = service.members(db, s.id)
    assert len({m.keyid for m in ms}) == 3 and all(keys.SAFE_RE.match(m.passphrase) for m in ms)
    assert service.member_by_keyid(db, ms[0].keyid).name == ms[0].name
    with pytest.raises(service.SessionError, match="Schon in dieser Sitzung"):
        service.insert_members(db, s.id, parse_members(GOOD))
    revoked = service.replace_keys(db, s.id)
    assert set(revoked) == {m.keyid for m in ms} | {keys.GUEST_KEYID}
    after = service.members(db, s.id)
    assert not {m.keyid for m in after} & set(revoked)
    assert not {m.passphrase for m in after} & {m.passphrase for m in ms}
    assert service.get_session(db, s.id).key_generation == 2


def test_bad_session_input(db):
    with pytest.raises(service.SessionError, match="Datum"):
        service.create_session(db, body="Rat", title="X", day="1.12.2026")
    with pytest.raises(service.SessionError, match="Titel fehlt"):
        service.create_session(db, body="Rat", title=" ", day="2026-12-01")


def test_only_one_active_session(db):
    a = service.create_session(db, body="Rat", title="A", day="2026-12-01")
    b = service.create_session(db, body="Rat", title="B", day="2026-12-02")
    service.set_active(db, a.id)
    service.set_active(db, b.id)
    assert service.active_session(db).id == b.id


def test_wifi_payload():
    assert keys.wifi_payload("Sitzung-3", "abcdEFGH2345") == "WIFI:T:WPA;S:Sitzung-3;P:abcdEFGH2345;;"
    with pytest.raises(ValueError):
        keys.wifi_payload("Sitzung 3", "abcdEFGH2345")
    with pytest.raises(ValueError):
        keys.wifi_payload("S", "short")
