"""Personal data (presence, chat) is deleted a fixed time after its session; the session itself stays."""

from __future__ import annotations

from datetime import date

from appliance import retention
from appliance.sessions import roster, service


def _session_with_personal_data(db, day: str) -> int:
    s = service.create_session(db, body="Rat", title=f"Sitzung {day}", day=day)
    service.insert_members(db, s.id, roster.parse_members("Name;Rolle\nAnna Schmidt;Mitglied\n"))
    m = service.members(db, s.id)[0]
    db.execute("INSERT INTO presence_intervals(session_id, member_id, start, end, start_source)"
               " VALUES (?, ?, 1.0, 2.0, 'radio')", [s.id, m.id])
    db.execute("INSERT INTO chat_messages(session_id, room, client_id, author_kind, author_member_id, author_name,"
               " author_key, body, at) VALUES (?, 'all', 'c1', 'member', ?, 'Anna Schmidt', ?, 'Hallo',"
               " '2026-01-01T00:00:00Z')", [s.id, m.id, f"member:{m.id}"])
    return s.id


def _counts(db, sid: int) -> tuple[int, int]:
    return (db.execute("SELECT COUNT(*) FROM presence_intervals WHERE session_id = ?", [sid]).fetchone()[0],
            db.execute("SELECT COUNT(*) FROM chat_messages WHERE session_id = ?", [sid]).fetchone()[0])


def test_old_sessions_lose_presence_and_chat_recent_and_active_ones_keep_them(db):
    old = _session_with_personal_data(db, "2026-01-10")
    recent = _session_with_personal_data(db, "2026-02-05")
    active_old = _session_with_personal_data(db, "2026-01-01")
    service.set_active(db, active_old)
    assert retention.purge(db, 30, today=date(2026, 2, 20)) == [old]
    assert _counts(db, old) == (0, 0)
    assert _counts(db, recent) == (1, 1) and _counts(db, active_old) == (1, 1)
    assert service.get_session(db, old).title == "Sitzung 2026-01-10"  # the session and members stay
    assert db.execute("SELECT COUNT(*) FROM audit WHERE action = 'personal-data.purge'").fetchone()[0] == 1
    assert retention.purge(db, 30, today=date(2026, 2, 20)) == []  # nothing left to do
