"""Retention: after `retention_days` no row names a member or a device any more (appliance.retention).

The schema test below knows every table and column of the real migrated database. A column that can hold a
member id, a MAC, an IP, a member's name or key material is classified; a table or column nobody classified
fails the test, so a new feature cannot keep personal data past the limit unnoticed. Every table with such a
column is filled with rows older and newer than the limit; after a run no old value survives anywhere (also
inside JSON and free text, found by MAC/IPv4 regexes) and every new row is untouched.
"""

from __future__ import annotations

import json
import re
from datetime import date

from appliance import retention
from appliance.sessions import roster, service

TODAY, DAYS = date(2026, 2, 20), 30  # the limit: midnight UTC of 2026-01-21
OLD_DAY, NEW_DAY = "2026-01-10", "2026-02-15"
OLD_ISO, NEW_ISO = "2026-01-10T18:00:00.000000Z", "2026-02-15T18:00:00.000000Z"
OLD_TS, NEW_TS = 1768068000.0, 1771178400.0  # the same two moments as unix time
OLD_MAC, NEW_MAC = "02:01:00:00:00:01", "02:02:00:00:00:01"
OLD_IP, NEW_IP = "10.77.1.10", "10.77.2.10"
OLD_IDS, NEW_IDS = (77701, 77702), (88801, 88802)
OLD_NAME, NEW_NAME = "Olga Alt", "Nina Neu"

# What each column can hold: member (a member id), mac, ip, text (free text or JSON that may embed names,
# member ids, MACs, IPs), key (a member's key material), name (a member's name), "" (nothing personal).
SCHEMA: dict[str, dict[str, str]] = {
    "settings": {"key": "", "value": ""},  # passwords (hashed) and login sessions: no member, device, IP
    "sessions": {"id": "", "body": "", "title": "", "date": "", "venue": "", "ssid": "",
                 "guest_key": "", "key_generation": "", "active": "", "created_at": ""},  # shared guest key
    "members": {"id": "", "session_id": "", "name": "name", "faction": "", "role": "", "voting": "", "body": "",
                "keyid": "key", "passphrase": "key", "created_at": "", "code": "key"},
    "stations": {"mac": "mac", "interface": "", "keyid": "key", "connected": "", "connected_at": "",
                 "disconnected_at": ""},
    "admissions": {"id": "", "session_id": "", "mac": "mac", "ip": "ip", "member_id": "member", "kind": "",
                   "admitted_at": "", "revoked_at": ""},
    "audit": {"id": "", "at": "", "actor": "text", "action": "", "detail": "text"},
    "doc_items": {"id": "", "session_id": "", "number": "", "title": "", "public": "", "position": "",
                  "external_id": "", "created_at": ""},
    "doc_files": {"id": "", "session_id": "", "item_id": "", "name": "", "title": "", "sha256": "", "size": "",
                  "mime": "", "public": "", "late": "", "external_id": "", "added_at": "", "pdf_active": "",
                  "position": "", "view_sha256": "", "optimised_sha256": ""},
    "doc_traffic": {"session_id": "", "file_id": "", "kind": "", "bytes": "", "requests": "", "opens": ""},
    "doc_reads": {"session_id": "", "member_id": "member", "file_id": "", "stale": "", "at": ""},
    "doc_downloads": {"id": "", "session_id": "", "file_id": "", "file_title": "", "who": "text",
                      "member_id": "member", "via": "", "at": ""},
    "doc_imports": {"id": "", "session_id": "", "source": "", "state": "", "done": "", "total": "", "problems": "",
                    "started_at": "", "updated_at": "", "owner_pid": "", "owner_started": "", "summary": ""},
    "push_events": {"id": "", "session_id": "", "topic": "", "audience": "text", "payload": "text", "at": ""},
    "presence_devices": {"session_id": "", "member_id": "member", "device": "mac", "linked": "", "last_seen": "",
                         "hold_until": "", "source": ""},
    "presence_state": {"session_id": "", "member_id": "member", "override": ""},
    "presence_intervals": {"id": "", "session_id": "", "member_id": "member", "start": "", "end": "",
                           "start_source": "", "end_source": "", "corrected": ""},
    "presence_corrections": {"id": "", "session_id": "", "member_id": "member", "at": "", "status": "",
                             "reason": "text", "actor": "text"},
    "chat_messages": {"id": "", "session_id": "", "room": "text", "client_id": "", "author_kind": "",
                      "author_member_id": "member", "author_name": "text", "body": "text", "at": "", "hidden": "",
                      "author_key": "text"},
    "chat_mutes": {"session_id": "", "participant": "text", "at": ""},
    "chat_settings": {"session_id": "", "direct_messages": "", "guests_write": ""},  # per session, with its chat
    "chat_reads": {"session_id": "", "participant": "text", "room": "text", "last_id": "", "at": ""},
    "monitor_points": {"series": "text", "res": "", "ts": "", "value": ""},
    "monitor_state": {"key": "", "at": "", "value": "text"},
    "monitor_alerts": {"id": "", "kind": "", "subject": "text", "severity": "", "message": "text", "value": "",
                       "started_at": "", "ended_at": ""},
    "login_throttle": {"role": "", "ip": "ip", "failures": "", "last_at": ""},  # failed staff logins by address
    # the room screen's display links: a hashed token, the clerk's name for a projector, times; no person, device
    # or address (the screen is seen by its link, never by its IP)
    "displays": {"id": "", "session_id": "", "token_sha256": "", "label": "", "created_at": "", "last_seen": "",
                 "revoked_at": ""},
    # Running the session (issue 13): requests name members; the chair and the announcement may.
    "speakers_session": {"session_id": "", "chair_member_id": "member", "current_item_id": "",
                         "announcement": "text", "updated_at": ""},
    "speakers_procedure": {"id": "", "body": "", "session_id": "", "item_id": "", "first_seconds": "",
                           "later_seconds": "", "order_seconds": "", "intervention_seconds": "", "warn_seconds": "",
                           "max_speeches": "", "pro_contra": ""},  # rules of procedure: nobody named
    "speakers_lists": {"session_id": "", "item_id": "", "closed": "", "changed_at": ""},  # with the requests
    "speakers_requests": {"id": "", "session_id": "", "item_id": "", "member_id": "member", "kind": "", "state": "",
                          "position": "", "for_request": "", "added_by": "", "requested_at": "", "started_at": "",
                          "ended_at": "", "duration": "", "limit_seconds": "", "extra_seconds": ""},
    # Votes (issue 14): everything of an expired session goes (usecases.votes.wipe inside the run).
    "votes": {"id": "", "session_id": "", "item_id": "", "item_title": "text", "question": "text", "mode": "",
              "rule": "", "rule_params": "", "state": "", "may_change": "", "attempt": "", "repeat_of": "",
              "statutory": "", "eligible": "", "present": "", "conflicted": "", "quorum_needed": "", "quorate": "",
              "opened_at": "", "closes_at": "", "closed_at": "", "yes": "", "no": "", "abstain": "", "by_hand": "",
              "accepted": "", "result_text": "text", "cancel_reason": "text", "cast_count": ""},
    "vote_ballots": {"id": "", "vote_id": "", "token": "", "member_id": "member", "name": "name", "faction": "",
                     "stands_in_for": "member", "eligible_at_open": "", "choice": "", "by_clerk": "", "cast_at": ""},
    # a device's idempotency key, tied to a ballot (and so, while the vote is open, to its member)
    "vote_cast_keys": {"vote_id": "", "key": "text", "ballot_id": "", "choice": ""},
    "vote_faction_counts": {"vote_id": "", "faction": "", "eligible": "", "yes": "", "no": "", "abstain": ""},
    "vote_deputies": {"session_id": "", "deputy_id": "member", "member_id": "member"},
    "vote_conflicts": {"session_id": "", "item_id": "", "member_id": "member", "marked_at": ""},
    "vote_settings": {"body": "", "may_change": ""},  # per body: may a vote be changed; nobody named, stays
    "vote_paper": {"id": "", "session_id": "", "item_id": "", "item_title": "text", "kind": "", "title": "text",
                   "input": "text", "outcome": "text", "steps": "text", "recorded_at": ""},  # candidates' names
    "vote_log": {"id": "", "session_id": "", "vote_id": "", "at": "", "actor": "text", "action": "",
                 "detail": "text"},
    "vote_log_purge": {"session_id": "", "by": "text"},  # who purges (a clerk's address): only during a wipe
}
KEPT = {"members"}  # rows stay (names for the minutes); their key material is checked separately
BLANKED = {"audit"}  # rows stay, personal parts blanked


def schema(db) -> dict[str, list[str]]:
    tables = [r[0] for r in db.execute("SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'table' "
                                       "AND name NOT LIKE 'sqlite_%'").fetchall()]
    return {t: [r[1] for r in db.execute(f"PRAGMA table_info({t})").fetchall()] for t in tables}


def test_every_table_and_column_is_classified(db):
    actual = {t: sorted(cols) for t, cols in schema(db).items()}
    known = {t: sorted(cols) for t, cols in SCHEMA.items()}
    assert actual == known, "a table or column is not classified in tests/test_retention.py SCHEMA: decide " \
                            "whether it can name a member or a device and make retention remove it"


class Fill:
    """Rows written for the test, each remembered as old (must go) or new (must stay unchanged)."""

    def __init__(self, db) -> None:
        self.db = db
        self.rows: list[tuple[str, str, dict]] = []

    def put(self, age: str, table: str, **cols) -> None:
        names = ", ".join(cols)
        marks = ", ".join("?" for _ in cols)
        self.db.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", list(cols.values()))  # noqa: S608
        self.rows.append((age, table, cols))

    def exists(self, table: str, cols: dict) -> bool:
        where = " AND ".join(f"{c} IS ?" for c in cols)
        sql = f"SELECT COUNT(*) FROM {table} WHERE {where}"  # noqa: S608 - names from this test
        return self.db.execute(sql, list(cols.values())).fetchone()[0] > 0


def fill(db) -> tuple[Fill, dict[str, int], dict[int, tuple]]:
    f = Fill(db)
    sids = {}
    for age, day, ids, name, mac, ip in (("old", OLD_DAY, OLD_IDS, OLD_NAME, OLD_MAC, OLD_IP),
                                         ("new", NEW_DAY, NEW_IDS, NEW_NAME, NEW_MAC, NEW_IP)):
        sid = service.create_session(db, body="Rat", title=f"Sitzung {day}", day=day).id
        sids[age] = sid
        at, ts = (OLD_ISO, OLD_TS) if age == "old" else (NEW_ISO, NEW_TS)
        for i, mid in enumerate(ids):
            db.execute("INSERT INTO members(id, session_id, name, role, voting, keyid, passphrase, created_at) "
                       "VALUES (?, ?, ?, 'member', 1, ?, ?, ?)",
                       [mid, sid, f"{name} {i}" if i else name, f"k{mid}", f"pass{mid}word", at])
        m, m2 = ids
        f.put(age, "admissions", session_id=sid, mac=mac, ip=ip, member_id=m, kind="member", admitted_at=at)
        f.put(age, "doc_downloads", session_id=sid, file_title="TOP 1", who=name, member_id=m, via="file", at=at)
        f.put(age, "doc_downloads", session_id=sid, file_title="TOP 1", who=f"guest {ip}", via="zip", at=at)
        f.put(age, "doc_reads", session_id=sid, member_id=m, file_id=1, stale=1, at=at)
        f.put(age, "push_events", session_id=sid, topic="presence.changed", audience="clerks", at=at,
              payload=json.dumps({"member_id": m, "change": "arrive", "at": ts, "count": 1}))
        f.put(age, "push_events", session_id=sid, topic="presence.mine", audience=f"member:{m}", at=at,
              payload=json.dumps({"present": True}))
        f.put(age, "push_events", session_id=sid, topic="chat.message", audience=f"chat:dm:{m}:{m2}", at=at,
              payload=json.dumps({"author": name, "body": f"bin da ({mac})"}))
        f.put(age, "presence_devices", session_id=sid, member_id=m, device=mac, linked=1, last_seen=ts)
        f.put(age, "presence_state", session_id=sid, member_id=m, override="present")
        f.put(age, "presence_intervals", session_id=sid, member_id=m, start=ts, end=ts + 60, start_source="hostapd")
        f.put(age, "presence_corrections", session_id=sid, member_id=m2, at=ts, status="present",
              reason=f"{name} ohne Handy", actor=f"clerk@{ip}")
        f.put(age, "chat_messages", session_id=sid, room=f"dm:{m}:{m2}", client_id="c-0001", author_kind="member",
              author_member_id=m, author_name=name, body="Hallo", at=at, author_key=f"member:{m}")
        f.put(age, "chat_messages", session_id=sid, room="all", client_id="c-0002", author_kind="guest",
              author_name="Gast 1a2b", body=f"meine IP ist {ip}", at=at, author_key=f"device:{mac}")
        f.put(age, "chat_mutes", session_id=sid, participant=f"device:{mac}", at=at)
        f.put(age, "chat_mutes", session_id=sid, participant=f"member:{m2}", at=at)
        f.put(age, "chat_settings", session_id=sid, direct_messages=1, guests_write=1)
        f.put(age, "chat_reads", session_id=sid, participant=f"device:{mac}", room=f"dm:{m}:{m2}", last_id=1, at=at)
        f.put(age, "speakers_session", session_id=sid, chair_member_id=m2, announcement=f"{name} hat Geburtstag",
              updated_at=at)
        f.put(age, "speakers_lists", session_id=sid, item_id=0, closed=1, changed_at=at)
        f.put(age, "speakers_requests", session_id=sid, item_id=0, member_id=m, kind="contribution", state="done",
              position=1, added_by="member", requested_at=ts, started_at=ts + 5, ended_at=ts + 65, duration=60.0)
        db.execute("INSERT INTO speakers_procedure(session_id, first_seconds) VALUES (?, 240)", [sid])  # stays
        # Votes: a closed named vote (names kept for the minutes), its ballots, counts and log; a running open
        # vote with a cast key; a deputy, a conflict, a paper election naming the candidates.
        vid = 100 if age == "old" else 200
        f.put(age, "votes", id=vid, session_id=sid, item_title=f"TOP 7 Abberufung {name}",
              question=f"{name} abberufen?", mode="named", rule="simple", state="closed", may_change=1,
              statutory=2, eligible=2, opened_at=ts, closed_at=ts + 30, yes=1, no=1, abstain=0,
              accepted=0, result_text="1 Ja, 1 Nein: Stimmengleichheit, abgelehnt.", cancel_reason="")
        f.put(age, "votes", id=vid + 1, session_id=sid, question="Vertagen?", mode="open", rule="simple",
              state="cancelled", may_change=1, statutory=2, opened_at=ts + 60, closed_at=ts + 70,
              cancel_reason=f"{name} meldet Störung", repeat_of=vid)
        f.put(age, "vote_ballots", id=vid, vote_id=vid, token=f"t{vid}a", member_id=m, name=name, faction="SPD",
              eligible_at_open=1, choice="yes", cast_at=ts + 5)
        f.put(age, "vote_ballots", id=vid + 1, vote_id=vid, token=f"t{vid}b", member_id=m2, name=f"{name} 1",
              faction="SPD", stands_in_for=m, eligible_at_open=1, choice="no", by_clerk=1, cast_at=ts + 6)
        f.put(age, "vote_ballots", id=vid + 2, vote_id=vid + 1, token=f"t{vid}c", member_id=m, faction="SPD",
              eligible_at_open=1, choice="abstain", cast_at=ts + 65)
        f.put(age, "vote_cast_keys", vote_id=vid + 1, key=f"key-{mac}", ballot_id=vid + 2, choice="abstain")
        f.put(age, "vote_faction_counts", vote_id=vid, faction="SPD", eligible=2, yes=1, no=1, abstain=0)
        f.put(age, "vote_deputies", session_id=sid, deputy_id=m2, member_id=m)
        f.put(age, "vote_conflicts", session_id=sid, item_id=0, member_id=m2, marked_at=ts)
        f.put(age, "vote_paper", session_id=sid, kind="election", title=f"Wahl: {name}", item_title="TOP 8",
              input=json.dumps({"counts": {name: 2}, "no": 0}), outcome=json.dumps({"elected": name}),
              steps=f"{name}: 2 Stimmen\nGewählt: {name}", recorded_at=ts)
        f.put(age, "vote_log", session_id=sid, vote_id=vid, at=ts, actor=f"clerk@{ip}", action="open",
              detail=json.dumps({"ballots": [[f"t{vid}a", "SPD", m, name]], "conflicted": [m2]}))
        f.put(age, "vote_log", session_id=sid, vote_id=vid, at=ts + 5, actor=f"member:{m}", action="cast",
              detail=json.dumps({"member_id": m, "name": name, "choice": "yes"}))
        f.put(age, "vote_log", session_id=sid, at=ts, actor="clerk", action="deputy",
              detail=json.dumps({"deputy_id": m2, "member_id": m}))
        # a purge row is gone when its wipe commits; a stray one (it may hold a clerk's address) goes too
        f.put(age, "vote_log_purge", session_id=sid, by=f"clerk@{ip}")
        # Not bound to a session: by age.
        f.put(age, "push_events", session_id=999, topic="presence.changed", audience="clerks", at=at,
              payload=json.dumps({"member_id": m}))
        f.put(age, "stations", mac=mac, interface="wlan0", keyid=f"k{m}", connected=0, connected_at=at,
              disconnected_at=at)
        f.put(age, "monitor_points", series=f"signal:{mac}", res=60, ts=int(ts), value=-60.0)
        f.put(age, "monitor_state", key=f"snapshot-{age}", at=ts,
              value=json.dumps({"clients": [{"mac": mac, "ip": ip, "keyid": f"k{m}"}]}))
        f.put(age, "monitor_alerts", kind="weak_signal", subject=mac, severity="warning",
              message=f"Schwaches Signal: {mac} ({ip})", started_at=ts, ended_at=ts + 5)
        f.put(age, "login_throttle", role="clerk", ip=ip, failures=json.dumps([ts]), last_at=ts)
        f.put(age, "audit", at=at, actor=f"clerk@{ip}", action="chat.mute",
              detail=f"session={sid} who=member:{m} admission=3 member={m2} device:{mac}")
    # A station still connected since long ago is live: it stays.
    f.put("new", "stations", mac="02:02:00:00:00:99", interface="wlan0", keyid="k88802", connected=1,
          connected_at=OLD_ISO)
    keys = {r[0]: tuple(r[1:]) for r in db.execute("SELECT id, keyid, passphrase, code FROM members").fetchall()}
    return f, sids, keys


def test_nothing_that_names_a_member_or_device_survives_the_limit(db):
    f, sids, keys_before = fill(db)
    personal = {t for t, cols in SCHEMA.items() if any(cols.values())}
    filled = {(age, t) for age, t, _ in f.rows}
    # Every table that can name someone is exercised with an old and a new row.
    assert {t for t in personal - KEPT if ("old", t) not in filled or ("new", t) not in filled} == set()

    report = retention.purge(db, DAYS, today=TODAY)
    assert report.sessions == [sids["old"]]

    for age, table, cols in f.rows:
        assert f.exists(table, cols) == (age == "new"), (age, table, cols)
    # No old member id, MAC, IP or name anywhere: in id columns, and inside any text or JSON of any table.
    old_ids = {str(i) for i in OLD_IDS}
    for table, cols in schema(db).items():
        for col in cols:
            kind = SCHEMA[table][col]
            for (value,) in db.execute(f"SELECT {col} FROM {table}").fetchall():  # noqa: S608 - from the schema
                if kind == "member":
                    assert str(value) not in old_ids, (table, col, value)
                if isinstance(value, str):
                    macs = {m.lower() for m in retention.MAC_RE.findall(value)}
                    ips = set(retention.IPV4_RE.findall(value))
                    assert OLD_MAC not in macs and OLD_IP not in ips, (table, col, value)
                    if kind == "text":
                        assert not any(i in value for i in old_ids) and OLD_NAME not in value, (table, col, value)
    # Audit rows stay (what happened, when) with the personal parts blanked; new ones are untouched.
    old_audit = db.execute("SELECT actor, detail FROM audit WHERE at = ?", [OLD_ISO]).fetchone()
    assert old_audit == ("clerk@[IP]", f"session={sids['old']} who=member:– admission=3 member=– device:[MAC]")
    # Members stay for the minutes, without key material; the recent session's keep theirs.
    after = {r[0]: tuple(r[1:]) for r in db.execute("SELECT id, keyid, passphrase, code FROM members").fetchall()}
    for mid in OLD_IDS:
        keyid, passphrase, code = after[mid]
        assert keyid != keys_before[mid][0] and passphrase != keys_before[mid][1] and code is None
    for mid in NEW_IDS:
        assert after[mid] == keys_before[mid]
    assert {m.name for m in service.members(db, sids["old"])} == {OLD_NAME, f"{OLD_NAME} 1"}
    # The votes of the old session are gone entirely (the append-only log too); the recent session keeps all.
    for table in ("votes", "vote_deputies", "vote_conflicts", "vote_paper", "vote_log", "vote_log_purge"):
        counts = dict(db.execute(f"SELECT session_id, COUNT(*) FROM {table} GROUP BY session_id").fetchall())  # noqa: S608
        assert sids["old"] not in counts and counts.get(sids["new"]), (table, counts)
    # The rules of procedure name nobody: both sessions keep theirs.
    assert db.execute("SELECT COUNT(*) FROM speakers_procedure WHERE first_seconds = 240").fetchone()[0] == 2
    # One audit entry for the run, naming what went; a second run finds nothing.
    entries = db.execute("SELECT detail FROM audit WHERE action = 'personal-data.purge'").fetchall()
    assert len(entries) == 1 and f"sessions={sids['old']}" in entries[0][0]
    assert not retention.purge(db, DAYS, today=TODAY)
    assert db.execute("SELECT COUNT(*) FROM audit WHERE action = 'personal-data.purge'").fetchone()[0] == 1


def test_one_transaction_a_failure_deletes_nothing(db, monkeypatch):
    f, _sids, _keys = fill(db)

    def broken(*_a, **_k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(retention, "audit", broken)
    try:
        retention.purge(db, DAYS, today=TODAY)
    except RuntimeError:
        pass
    assert all(f.exists(t, cols) for _age, t, cols in f.rows)


def test_scrub():
    assert retention.scrub("clerk@10.77.0.5 member=12 who=member:7 device:02:AB:00:00:00:01 session=3") == \
        "clerk@[IP] member=– who=member:– device:[MAC] session=3"


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


def test_the_active_session_keeps_everything_however_old(db):
    old = _session_with_personal_data(db, "2026-01-10")
    recent = _session_with_personal_data(db, "2026-02-05")
    active_old = _session_with_personal_data(db, "2026-01-01")
    service.set_active(db, active_old)
    code = service.members(db, active_old)[0].code
    assert retention.purge(db, 30, today=date(2026, 2, 20)).sessions == [old]
    assert _counts(db, old) == (0, 0)
    assert _counts(db, recent) == (1, 1) and _counts(db, active_old) == (1, 1)
    assert service.members(db, active_old)[0].code == code and code
    assert service.get_session(db, old).title == "Sitzung 2026-01-10"  # the session and members stay
    assert re.fullmatch(r"m[0-9a-f]{10}", service.members(db, old)[0].keyid)
