"""The roles a person on a session's member list can have, and the named sets every rule asks.

A role is stored per member (`members.role`, imported from the clerk's list: appliance.sessions.roster).
Whether someone counts for quorum, may read the non-public part or may be written to directly is decided
here once, by name; SQL that filters by role builds its IN list from these sets (`sql_in`), never from a
literal list of its own.
"""

from __future__ import annotations

MEMBER = "member"  # Mitglied of the body that meets
DEPUTY = "deputy"  # Stellvertretung: sits in for a member
ADMINISTRATION = "administration"  # named administration staff (Verwaltung)
GUEST = "guest"  # named guests on the list (press, experts): no rights beyond the public part

ALL = frozenset({MEMBER, DEPUTY, ADMINISTRATION, GUEST})  # the schema's CHECK allows exactly these

# Counted in the room's attendance count (presence.store.present_count); the vote itself also needs the
# member's voting flag (Stimmrecht), which is per member, not per role.
QUORUM = frozenset({MEMBER, DEPUTY})
# May read non-public items and files (documents.policy): members and deputies of the body that meets and the
# administration staff named in the session's list (DOMAIN: "members of that body, their deputies, named
# administration staff"); never listed guests.
NONPUBLIC_READERS = frozenset({MEMBER, DEPUTY, ADMINISTRATION})
# Among them, entitled by being named on the list alone, whatever body they belong to.
NONPUBLIC_BY_LISTING = frozenset({ADMINISTRATION})
# Offered and accepted as the other side of a direct chat room (chat.rules) and named in the chat.
DIRECT_MESSAGE_TARGETS = frozenset({MEMBER, DEPUTY})
# Read and write their faction's room (chat.rules): "the faction's members and deputies".
FACTION_ROOM = frozenset({MEMBER, DEPUTY})
# Ask to speak from their own device (rules.speakers): "members and deputies"; the voting flag does not matter
# (a deputy sitting in, a co-opted citizen in a committee speaks too).
SPEAKERS = frozenset({MEMBER, DEPUTY})
# May be put on the speakers list by the chair or clerk (a raised hand): also the administration staff, who
# speak when the chair gives them the floor. Never listed guests.
SPEAKERS_BY_HAND = frozenset({MEMBER, DEPUTY, ADMINISTRATION})
# May be named chair of a session (Vorsitz: the mayor, a committee's chair or their deputy): a member of the body.
CHAIR = frozenset({MEMBER, DEPUTY})
# Listed people the technicians' dashboard shows as guests, not as members (monitor.view).
SHOWN_AS_GUEST = frozenset({GUEST})


def sql_in(roles: frozenset[str]) -> tuple[str, list[str]]:
    """("?, ?", [roles...]) for `role IN (...)`: placeholders and their values, in a stable order."""
    values = sorted(roles)
    return ", ".join("?" for _ in values), values
