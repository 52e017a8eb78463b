"""Personal member codes (captive.codes): shape, uniqueness, the schema step for existing members, rotation,
and the per-device throttle."""

from __future__ import annotations

import sqlite3

import pytest

from appliance.captive import codes
from appliance.sessions import service
from appliance.sessions.roster import MemberRow
from appliance.store import migrations, open_db

NAMES = ("Anna Schmidt", "Bernd Müller", "Carla Weber")


def make_session(db, names=NAMES, active=True, title="Sitzung"):
    s = service.create_session(db, body="Rat der Stadt", title=title, day="2026-11-24")
    service.insert_members(db, s.id, [MemberRow(n, "SPD", "member", True, "Rat") for n in names])
    if active:
        service.set_active(db, s.id)
    return s, service.members(db, s.id)


def test_code_shape_display_and_normalise():
    code = codes.new_code()
    assert len(code) == 8 and set(code) <= set(codes.CODE_ALPHABET)
    # No look-alikes and nothing a person must type in a particular case.
    assert not set("0O1Il") & set(codes.CODE_ALPHABET) and codes.CODE_ALPHABET == codes.CODE_ALPHABET.upper()
    assert codes.display("K7PDM3QX") == "K7PD-M3QX" == codes.EXAMPLE
    for typed in ("K7PD-M3QX", "k7pd-m3qx", " k7pd m3qx ", "K7PDM3QX", "k7pd–m3qx"):
        assert codes.normalise(typed) == "K7PDM3QX", typed
    for bad in ("", "K7PD-M3Q", "K7PD-M3QXX", "K0PD-M3QX", "K7PD-M3Q!", "K7PD-M3QI", "x" * 5000):
        assert codes.normalise(bad) is None, bad


def test_new_codes_are_distinct_and_avoid_taken():
    taken = set(codes.new_codes(50))
    fresh = codes.new_codes(200, taken)
    assert len(set(fresh)) == 200 and not set(fresh) & taken


def test_members_get_unique_codes_and_are_found_only_in_their_session(db):
    s1, first = make_session(db, title="Eins")
    s2, second = make_session(db, names=("Dora Klein",), title="Zwei")  # activating it deactivates s1
    everyone = first + second
    assert all(m.code and codes.normalise(m.code) == m.code for m in everyone)
    assert len({m.code for m in everyone}) == len(everyone)
    anna = first[0]
    assert service.member_by_code(db, s1.id, codes.display(anna.code).lower()) == anna
    assert service.member_by_code(db, s2.id, anna.code) is None  # another session's card
    assert service.member_by_code(db, s1.id, "") is None and service.member_by_code(db, s1.id, "K7PD-M3QX") is None
    # The column is UNIQUE: a code names one member box-wide.
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("UPDATE members SET code = ? WHERE id = ?", [anna.code, second[0].id])


def test_rotation_replaces_every_code_at_once(db):
    s, before = make_session(db)
    service.replace_keys(db, s.id)
    after = {m.id: m for m in service.members(db, s.id)}
    for m in before:
        assert after[m.id].code != m.code and after[m.id].code
        assert service.member_by_code(db, s.id, m.code) is None  # the old card's code is dead
        assert service.member_by_code(db, s.id, after[m.id].code).id == m.id


def test_schema_step_gives_existing_members_codes(tmp_path):
    """A box updated from schema 5: members imported before have codes right after the migration, and a row
    inserted without one (an older writer) gets one from the trigger: no NULL codes in use."""
    conn = sqlite3.connect(tmp_path / "old.db", isolation_level=None)
    for version, script in migrations.MIGRATIONS:
        if version < 6:
            conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {version};\nCOMMIT;")
    conn.execute("INSERT INTO sessions(body, title, date, ssid, guest_key, active, created_at) "
                 "VALUES ('Rat', 'Alt', '2026-01-01', 'Sitzung', 'g', 1, 'now')")
    for i in range(40):
        conn.execute("INSERT INTO members(session_id, name, role, keyid, passphrase, created_at) "
                     "VALUES (1, ?, 'member', ?, 'p', 'now')", [f"M{i}", f"k{i}"])
    conn.close()
    db = open_db(tmp_path / "old.db")
    assert db.execute("PRAGMA user_version").fetchone()[0] >= 6
    found = [m.code for m in service.members(db, 1)]
    assert len(found) == 40 and all(codes.normalise(c) == c for c in found) and len(set(found)) == 40
    db.execute("INSERT INTO members(session_id, name, role, keyid, passphrase, created_at) "
               "VALUES (1, 'Spät', 'member', 'k-late', 'p', 'now')")
    late = db.execute("SELECT code FROM members WHERE keyid = 'k-late'").fetchone()[0]
    assert codes.normalise(late) == late and late not in found
    assert db.execute("SELECT count(*) FROM members WHERE code IS NULL").fetchone() == (0,)


def test_throttle_five_tries_then_a_growing_wait():
    now = [1000.0]
    t = codes.Throttle(free=5, base=5.0, cap=60.0, clock=lambda: now[0])
    dev = ("ip:10.77.0.12", "mac:02:5b:00:00:00:03")
    for _ in range(4):
        t.failed(dev)
        assert t.wait(dev) == 0
    assert t.failed(dev) == 5 and t.wait(dev) == pytest.approx(5.0)
    # A new address alone does not reset the count: the MAC still carries it (and vice versa).
    assert t.wait(("ip:10.77.0.50", "mac:02:5b:00:00:00:03")) == pytest.approx(5.0)
    assert t.wait(("ip:10.77.0.13", "mac:02:5b:00:00:00:04")) == 0  # another device is not held up
    now[0] += 5
    t.failed(dev)
    assert t.wait(dev) == pytest.approx(10.0)
    now[0] += 10
    t.failed(dev)
    assert t.wait(dev) == pytest.approx(20.0)
    for _ in range(5):
        now[0] += 100
        t.failed(dev)
    assert t.wait(dev) == pytest.approx(60.0)  # capped
    t.succeeded(dev)
    assert t.wait(dev) == 0
    # Quiet for longer than `forget`: the count starts again.
    for _ in range(4):
        t.failed(dev)
    now[0] += 10_000
    t.failed(dev)
    assert t.wait(dev) == 0


def test_throttle_memory_is_bounded():
    now = [0.0]
    t = codes.Throttle(clock=lambda: now[0], max_entries=100)
    for i in range(1000):
        now[0] += 1
        t.failed((f"ip:{i}",))
    assert len(t._tries) <= 100
