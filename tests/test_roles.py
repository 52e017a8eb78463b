"""The named role sets (appliance.rules.roles) are the only role lists: the roster, the schema, quorum,
non-public reading, chat and the dashboard all use them."""

from __future__ import annotations

import re
from pathlib import Path

from appliance.presence import store
from appliance.rules import roles
from appliance.sessions import roster
from appliance.store.steps import m0001_core

ROOT = Path(__file__).resolve().parent.parent / "appliance"


def test_sets_are_made_of_known_roles_and_match_the_roster_and_schema():
    assert set(roster.ROLES.values()) == roles.ALL
    check = re.search(r"role TEXT NOT NULL CHECK \(role IN \(([^)]*)\)\)", m0001_core.SQL).group(1)
    assert {r.strip().strip("'") for r in check.split(",")} == roles.ALL
    for name in ("QUORUM", "NONPUBLIC_READERS", "NONPUBLIC_BY_LISTING", "DIRECT_MESSAGE_TARGETS", "FACTION_ROOM",
                 "SHOWN_AS_GUEST"):
        assert getattr(roles, name) <= roles.ALL, name
    assert roles.NONPUBLIC_BY_LISTING <= roles.NONPUBLIC_READERS
    assert roles.GUEST not in roles.QUORUM | roles.NONPUBLIC_READERS | roles.DIRECT_MESSAGE_TARGETS
    assert roles.sql_in(frozenset({"deputy", "member"})) == ("?, ?", ["deputy", "member"])


def test_no_module_keeps_its_own_role_list():
    """A literal pair of role names in code (a tuple, a set, an SQL IN list) is a rule of its own."""
    role = r"""['"](?:member|deputy|administration|guest)['"]"""
    pattern = re.compile(role + r"\s*,\s*" + role)
    allowed = {ROOT / "rules" / "roles.py", ROOT / "store" / "steps" / "m0001_core.py"}
    offenders = [f"{p.relative_to(ROOT)}:{n}" for p in ROOT.rglob("*.py") if p not in allowed
                 for n, line in enumerate(p.read_text().splitlines(), 1)
                 if pattern.search(line) and "kind" not in line]
    assert offenders == []


def _row(name, role, voting, status):
    return store.Row(0, name, "", role, voting, status, None, None, 0.0, 0, False, ())


def test_quorum_counts_only_voting_people_in_a_quorum_role():
    rows = [_row("A", "member", True, "present"), _row("B", "deputy", True, "absent"),
            _row("C", "guest", True, "present"), _row("D", "administration", True, "present"),
            _row("E", "member", False, "present")]
    assert store.quorum(rows) == (1, 2, 2)


def test_present_count_uses_the_quorum_set(cfg, db):
    from appliance.sessions import service
    from appliance.sessions.roster import MemberRow

    s = service.create_session(db, body="Rat", title="S", day="2026-11-24")
    service.insert_members(db, s.id, [MemberRow(n, "", r, v, "") for n, r, v in (
        ("A", "member", True), ("B", "deputy", False), ("C", "guest", False), ("D", "administration", False))])
    for m in service.members(db, s.id):
        db.execute("INSERT INTO presence_intervals(session_id, member_id, start, start_source) VALUES (?, ?, 1, 'x')",
                   [s.id, m.id])
    assert store.present_count(db, s.id) == 2 and store.present_count(db, s.id, voting_only=True) == 1


def test_faction_room_follows_the_set():
    from types import SimpleNamespace

    from appliance.chat import rules as chat_rules

    for role in sorted(roles.ALL):
        person = SimpleNamespace(id=1, session_id=1, faction="SPD", role=role)
        viewer = SimpleNamespace(kind="member", member=person, admitted=True, session_id=1)
        expected = role in roles.FACTION_ROOM
        assert chat_rules.access(viewer, "faction:SPD", chat_rules.Settings()).read == expected, role
