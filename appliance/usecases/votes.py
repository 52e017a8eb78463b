"""Votes (issue 14): the chair's, the members' and the clerk's acts, and the one read (`state`) the member page,
the chair's console and the room screen render, and the minutes.

Open and named votes are cast on the members' own devices; secret votes and elections stay on paper and the
clerk enters the counts (`record_paper`): the box computes and explains. Who may vote is rules.votes (eligibility
at the opening, may_cast while open); who may run a vote is rules.viewer.is_chair (the chair on their device, or a
clerk).

Each act is ONE `transaction(db)` (BEGIN IMMEDIATE: casts queue, none is lost), reads what the rules need inside
it, then writes its rows, ONE `vote_log` entry (append-only: the schema's triggers refuse updates and deletes)
and its push events. A refusal returns an `Outcome` with a German sentence and a code and writes nothing.

Data kept to what the law needs: when an OPEN vote closes, its ballots lose member id and name and the cast keys
go; what stays is each ballot's faction and choice (and the per-faction counts). The log never held the member
of an open vote's ballot: casts are logged under the ballot's random token, with actor "member". Named votes keep
and log the names.

Push: `votes.changed` {"what", "vote_id"} to every device of the session (open, close, cancel, repeat — a page
fetches `state` again); `votes.progress` {"vote_id", "cast", "eligible"} on each cast, only to those who show the
count: the clerks, the room screens and the chair (a burst of 300 casts does not fan out to 300 phones).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from appliance import csvexport
from appliance.push.events import publish
from appliance.rules import roles
from appliance.rules import votes as vr
from appliance.rules.viewer import Viewer, is_chair
from appliance.store.transaction import transaction

CHANGED = "votes.changed"
PROGRESS = "votes.progress"
MODES = ("open", "named")  # electronic; "paper" is record_paper's
MODE_NAMES = {"open": "offen", "named": "namentlich", "paper": "geheim / Stimmzettel"}
RULE_NAMES = {"simple": "einfache Mehrheit (Stimmengleichheit: abgelehnt)",
              "two_thirds": "Zwei-Drittel-Mehrheit der abgegebenen Stimmen",
              "statutory": "Mehrheit der gesetzlichen Mitgliederzahl", "custom": "Mehrheit nach Geschäftsordnung"}
PAPER_KINDS = ("majority", "election", "runoff", "hare_niemeyer", "dhondt")
PAPER_NAMES = {"majority": "Abstimmung mit Stimmzetteln", "election": "Wahl (ein Amt)", "runoff": "Stichwahl",
               "hare_niemeyer": "Sitzverteilung Hare/Niemeyer", "dhondt": "Sitzverteilung d'Hondt"}
QUESTION_MAX = 500
KEY_MAX = 64
COUNTDOWN_MAX = 600
MAX_ID = 2**63 - 1

TEXTS = {
    "no_session": "Diese Sitzung gibt es nicht.",
    "not_chair": "Das darf nur der Vorsitz oder der Sitzungsdienst.",
    "not_clerk": "Das darf nur der Sitzungsdienst.",
    "not_member": "Abstimmen können nur Mitglieder von ihrem eigenen Gerät aus.",
    "not_own": "Dieses Gerät gehört zu einem anderen Mitglied: abstimmen kann jedes Mitglied nur für sich.",
    "no_vote": "Diese Abstimmung gibt es nicht.",
    "vote_open": "Es läuft bereits eine Abstimmung; schließen oder abbrechen Sie diese zuerst.",
    "not_open": "Diese Abstimmung ist nicht geöffnet.",
    "still_open": "Die Abstimmung läuft noch; wiederholen lässt sie sich erst nach dem Schließen oder Abbrechen.",
    "no_question": "Bitte geben Sie die Frage ein, über die abgestimmt wird.",
    "too_long": "Die Frage ist zu lang (höchstens 500 Zeichen).",
    "bad_mode": "Unbekannte Art der Abstimmung.",
    "bad_rule": "Unbekannte Mehrheitsregel.",
    "bad_choice": "Bitte wählen Sie Ja, Nein oder Enthaltung.",
    "bad_key": "Die Stimme kam ohne gültige Kennung an; bitte laden Sie die Seite neu.",
    "no_change": "Sie haben bereits abgestimmt; die Geschäftsordnung erlaubt keine Änderung.",
    "bad_countdown": "Der Countdown muss zwischen 1 und 600 Sekunden liegen.",
    "no_member": "Diese Person steht nicht auf der Liste dieser Sitzung.",
    "not_deputy": "Als Stellvertretung lässt sich nur eintragen, wer als Stellvertretung auf der Liste steht.",
    "not_seat": "Vertreten werden können nur Mitglieder mit Stimmrecht.",
    "no_item": "Diesen Tagesordnungspunkt gibt es nicht.",
    "bad_paper": "Unbekannte Art der Stimmzettel-Auswertung.",
    "bad_counts": "Bitte geben Sie die Stimmen als ganze Zahlen von 0 bis 100000 ein.",
    "no_candidates": "Bitte geben Sie mindestens einen Namen mit Stimmenzahl ein.",
    "bad_seats": "Die Zahl der Sitze muss zwischen 1 und 200 liegen.",
}


def _fits(n: object) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= MAX_ID


@dataclass(frozen=True)
class Outcome:
    """What an act did, or why not (then nothing was written). text: German, for the person who acted."""

    ok: bool
    text: str
    code: str = ""
    vote_id: int | None = None
    choice: str | None = None  # a cast: the choice now recorded

    def __bool__(self) -> bool:
        return self.ok


def _refuse(code: str, **values: object) -> Outcome:
    if code in TEXTS:
        return Outcome(False, TEXTS[code], code)
    return _refused(vr.refuse(code, **values))


def _refused(d: vr.Decision) -> Outcome:
    return Outcome(False, d.text, d.code)


def _log(db: Any, session_id: int, vote_id: int | None, now: float, actor: str, action: str, **detail: Any) -> None:
    db.execute("INSERT INTO vote_log(session_id, vote_id, at, actor, action, detail) VALUES (?, ?, ?, ?, ?, ?)",
               [session_id, vote_id, now, actor, action,
                json.dumps({"vote_id": vote_id, **detail}, ensure_ascii=False, sort_keys=True)])


def _actor(viewer: Viewer, actor: str | None) -> str:
    if actor:
        return actor
    if viewer.is_clerk:
        return "clerk"
    return "chair" if viewer.is_member else viewer.kind


def _changed(db: Any, session_id: int, what: str, vote_id: int) -> None:
    publish(db, session_id, CHANGED, {"what": what, "vote_id": vote_id}, audience="all")


# --- reading what the rules need --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Session:
    id: int
    body: str
    chair_member_id: int | None
    current_item_id: int | None


def _session(db: Any, session_id: int) -> _Session | None:
    if not _fits(session_id):
        return None
    row = db.execute("SELECT s.id, s.body, x.chair_member_id, x.current_item_id FROM sessions s "
                     "LEFT JOIN speakers_session x ON x.session_id = s.id WHERE s.id = ?", [session_id]).fetchone()
    return _Session(*row) if row else None


def _people(db: Any, session_id: int) -> list[vr.Person]:
    present = {r[0] for r in db.execute("SELECT member_id FROM presence_intervals WHERE session_id = ? AND end IS "
                                        "NULL", [session_id])}
    return [vr.Person(mid, role, bool(voting), mid in present, name) for mid, role, voting, name in db.execute(
        "SELECT id, role, voting, name FROM members WHERE session_id = ? ORDER BY id", [session_id])]


def _deputies(db: Any, session_id: int) -> dict[int, int]:
    return dict(db.execute("SELECT deputy_id, member_id FROM vote_deputies WHERE session_id = ?", [session_id]))


def _conflicted(db: Any, session_id: int, item_id: int | None) -> set[int]:
    return {r[0] for r in db.execute("SELECT member_id FROM vote_conflicts WHERE session_id = ? AND item_id = ?",
                                     [session_id, item_id or 0])}


def _statutory(db: Any, session_id: int) -> int:
    """Statutory members (gesetzliche Mitgliederzahl): the members with voting right on the session's list."""
    return int(db.execute("SELECT COUNT(*) FROM members WHERE session_id = ? AND role = ? AND voting = 1",
                          [session_id, roles.MEMBER]).fetchone()[0])


def _may_change(db: Any, body: str) -> bool:
    row = db.execute("SELECT may_change FROM vote_settings WHERE body = ?", [body]).fetchone()
    return bool(row[0]) if row else True


@dataclass(frozen=True)
class _Vote:
    id: int
    session_id: int
    item_id: int | None
    mode: str
    rule: str
    rule_params: str
    state: str
    may_change: bool
    statutory: int
    closes_at: float | None
    attempt: int
    question: str
    item_title: str
    eligible: int


VOTE_COLS = ("id, session_id, item_id, mode, rule, rule_params, state, may_change, statutory, closes_at, attempt, "
             "question, item_title, eligible")


def _vote(db: Any, session_id: int, vote_id: int | None) -> _Vote | None:
    """The vote by id, or (vote_id None) the session's open one."""
    if vote_id is None:
        row = db.execute(f"SELECT {VOTE_COLS} FROM votes WHERE session_id = ? AND state = 'open'",  # noqa: S608
                         [session_id]).fetchone()
    elif not _fits(vote_id):
        return None
    else:
        row = db.execute(f"SELECT {VOTE_COLS} FROM votes WHERE id = ? AND session_id = ?",  # noqa: S608
                         [vote_id, session_id]).fetchone()
    return _Vote(*row[:7], bool(row[7]), *row[8:]) if row else None


def _params(v: _Vote) -> vr.Custom | None:
    return vr.Custom(**json.loads(v.rule_params)) if v.rule_params else None


def _item(db: Any, session_id: int, item_id: int | None) -> tuple[str, bool] | None:
    """(title as the minutes name it, public) of an item of the session; None if it is not one."""
    if not item_id:
        return ("", True)
    row = db.execute("SELECT number, title, public FROM doc_items WHERE id = ? AND session_id = ?",
                     [item_id, session_id]).fetchone() if _fits(item_id) else None
    if row is None:
        return None
    return (f"{row[0]} {row[1]}".strip(), bool(row[2]))


def _publish_progress(db: Any, s: _Session, vote_id: int, cast: int, eligible: int) -> None:
    payload = {"vote_id": vote_id, "cast": cast, "eligible": eligible}
    publish(db, s.id, PROGRESS, payload, audience="clerks")
    for (display_id,) in db.execute("SELECT id FROM displays WHERE session_id = ? AND revoked_at IS NULL", [s.id]):
        publish(db, s.id, PROGRESS, payload, audience=f"display:{display_id}")
    if s.chair_member_id is not None:
        publish(db, s.id, PROGRESS, payload, audience=f"member:{s.chair_member_id}")


# --- the chair: open, countdown, close, cancel, repeat ----------------------------------------------------


def _check_rule(rule: str, params: vr.Custom | None) -> Outcome | None:
    if rule not in vr.RULES:
        return _refuse("bad_rule")
    if rule == "custom":
        problem = "Bitte geben Sie die Mehrheit an." if params is None else params.check()
        if problem:
            return Outcome(False, problem, "bad_rule")
    return None


def open_vote(db: Any, viewer: Viewer, session_id: int, *, question: str, now: float, mode: str = "open",
              rule: str = "simple", params: vr.Custom | None = None, item_id: int | None = None,
              repeat_of: int | None = None, actor: str | None = None) -> Outcome:
    """Open a vote on the item (default: the item the room is on). Eligibility is fixed now (rules.votes): one
    ballot per eligible seat. The quorum status is recorded and shown; it never blocks."""
    question = " ".join((question or "").split())
    with transaction(db):
        s = _clerk_session(db, viewer, session_id, chair_too=True)
        if isinstance(s, Outcome):
            return s
        if not question:
            return _refuse("no_question")
        if len(question) > QUESTION_MAX:
            return _refuse("too_long")
        if mode not in MODES:
            return _refuse("bad_mode")
        if (bad := _check_rule(rule, params)) is not None:
            return bad
        item_id = s.current_item_id if item_id is None else (item_id or None)
        item = _item(db, s.id, item_id)
        if item is None:
            return _refuse("no_item")
        if _vote(db, s.id, None) is not None:
            return _refuse("vote_open")
        people = _people(db, s.id)
        deputies = _deputies(db, s.id)
        conflicted = _conflicted(db, s.id, item_id)
        who = vr.eligibility(people, deputies, conflicted)
        statutory = _statutory(db, s.id)
        q = vr.quorum(who.eligible, statutory)
        present = sum(1 for p in people if p.present and p.role in roles.QUORUM and
                      (p.voting or p.role == roles.DEPUTY))
        attempt = 1
        if repeat_of is not None:
            attempt = int(db.execute("SELECT attempt FROM votes WHERE id = ?", [repeat_of]).fetchone()[0]) + 1
        cur = db.execute(
            "INSERT INTO votes(session_id, item_id, item_title, question, mode, rule, rule_params, state, may_change,"
            " attempt, repeat_of, statutory, eligible, present, conflicted, quorum_needed, quorate, opened_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 'open', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [s.id, item_id, item[0], question, mode, rule, json.dumps(asdict(params)) if params else "",
             int(_may_change(db, s.body)), attempt, repeat_of, statutory, len(who.eligible), present,
             len({c for c in conflicted if any(p.id == c for p in people)}), q.needed, int(q.quorate), now])
        vote_id = int(cur.lastrowid)
        by_id = {p.id: p for p in people}
        factions = dict(db.execute("SELECT id, faction FROM members WHERE session_id = ?", [s.id]))
        ballots = []
        for pid in sorted(who.eligible, key=lambda _p: secrets.randbits(32)):  # ballot ids say nothing
            token = secrets.token_hex(8)
            name = by_id[pid].name if mode == "named" else None
            seat = deputies.get(pid) if by_id[pid].role == roles.DEPUTY else None
            db.execute("INSERT INTO vote_ballots(vote_id, token, member_id, name, faction, stands_in_for, "
                       "eligible_at_open) VALUES (?, ?, ?, ?, ?, ?, 1)",
                       [vote_id, token, pid, name, factions.get(pid, ""), seat])
            ballots.append([token, factions.get(pid, ""), *([pid, name] if mode == "named" else [])])
        _log(db, s.id, vote_id, now, _actor(viewer, actor), "open", mode=mode, rule=rule,
             params=asdict(params) if params else None, statutory=statutory, question=question, item_id=item_id,
             eligible=len(who.eligible), quorate=q.quorate, repeat_of=repeat_of, ballots=sorted(ballots),
             conflicted=sorted(conflicted))
        _changed(db, s.id, "open", vote_id)
    return Outcome(True, f"Abstimmung geöffnet: {q.text}", vote_id=vote_id)


def set_countdown(db: Any, viewer: Viewer, session_id: int, seconds: int, *, now: float,
                  actor: str | None = None) -> Outcome:
    """Close the open vote in `seconds`: casts end at the deadline, `close_due` closes it then."""
    with transaction(db):
        s = _clerk_session(db, viewer, session_id, chair_too=True)
        if isinstance(s, Outcome):
            return s
        if not isinstance(seconds, int) or not 1 <= seconds <= COUNTDOWN_MAX:
            return _refuse("bad_countdown")
        v = _vote(db, s.id, None)
        if v is None:
            return _refuse("not_open")
        db.execute("UPDATE votes SET closes_at = ? WHERE id = ?", [now + seconds, v.id])
        _log(db, s.id, v.id, now, _actor(viewer, actor), "countdown", seconds=seconds)
        _changed(db, s.id, "countdown", v.id)
    return Outcome(True, f"Die Abstimmung schließt in {seconds} Sekunden.", vote_id=v.id)


def _finish(db: Any, s: _Session, v: _Vote, now: float, actor: str) -> vr.Result:
    rows = db.execute("SELECT faction, choice, by_clerk FROM vote_ballots WHERE vote_id = ?", [v.id]).fetchall()
    total, per = vr.tally([(f, c) for f, c, _b in rows])
    eligible_per: dict[str, int] = {}
    for f, _c, _b in rows:
        eligible_per[f] = eligible_per.get(f, 0) + 1
    result = vr.decide(v.rule, total["yes"], total["no"], total["abstain"], v.statutory, _params(v))
    by_hand = sum(1 for _f, c, b in rows if b and c)
    db.execute("UPDATE votes SET state = 'closed', closed_at = ?, yes = ?, no = ?, abstain = ?, by_hand = ?, "
               "accepted = ?, result_text = ? WHERE id = ?",
               [now, total["yes"], total["no"], total["abstain"], by_hand, int(result.accepted), result.text, v.id])
    for faction, c in per.items():
        db.execute("INSERT INTO vote_faction_counts(vote_id, faction, eligible, yes, no, abstain) "
                   "VALUES (?, ?, ?, ?, ?, ?)", [v.id, faction, eligible_per[faction], c["yes"], c["no"],
                                                 c["abstain"]])
    _forget_members(db, v)
    _log(db, s.id, v.id, now, actor, "close", **total, accepted=result.accepted, by_hand=by_hand,
         factions={f: per[f] for f in sorted(per)})
    _changed(db, s.id, "close", v.id)
    return result


def _running(db: Any, viewer: Viewer, session_id: int, vote_id: int | None) -> tuple[_Session, _Vote] | Outcome:
    """The session and its open vote (by id, or the open one) for the chair's acts on it; else the refusal."""
    s = _clerk_session(db, viewer, session_id, chair_too=True)
    if isinstance(s, Outcome):
        return s
    v = _vote(db, s.id, vote_id)
    if v is None:
        return _refuse("no_vote" if vote_id is not None else "not_open")
    if v.state != "open":
        return _refuse("not_open")
    return s, v


def _forget_members(db: Any, v: _Vote) -> None:
    """An open vote that ends (closed or cancelled): its cast keys go, and its ballots lose member and name —
    faction and choice stay. A named vote keeps the names (the minutes record each member's vote)."""
    db.execute("DELETE FROM vote_cast_keys WHERE vote_id = ?", [v.id])
    if v.mode == "open":
        db.execute("UPDATE vote_ballots SET member_id = NULL, name = NULL, stands_in_for = NULL WHERE vote_id = ?",
                   [v.id])


def close_vote(db: Any, viewer: Viewer, session_id: int, *, now: float, vote_id: int | None = None,
               actor: str | None = None) -> Outcome:
    """Close the open vote now: count, apply the rule, keep the per-faction counts (and, for named votes, the
    names); drop the member-vote link of an open vote."""
    with transaction(db):
        found = _running(db, viewer, session_id, vote_id)
        if isinstance(found, Outcome):
            return found
        s, v = found
        result = _finish(db, s, v, now, _actor(viewer, actor))
    return Outcome(True, result.text, vote_id=v.id)


def close_due(db: Any, now: float) -> list[int]:
    """Close every open vote whose countdown has run out (the daemon's tick and every read of `state`)."""
    due = db.execute("SELECT session_id, id FROM votes WHERE state = 'open' AND closes_at IS NOT NULL AND "
                     "closes_at <= ?", [now]).fetchall()
    closed = []
    for session_id, vote_id in due:
        with transaction(db):
            s = _session(db, session_id)
            v = _vote(db, session_id, vote_id)
            if s is None or v is None or v.state != "open":
                continue  # another process closed it first
            _finish(db, s, v, now, "countdown")
            closed.append(vote_id)
    return closed


def cancel_vote(db: Any, viewer: Viewer, session_id: int, *, now: float, reason: str = "",
                vote_id: int | None = None, actor: str | None = None) -> Outcome:
    """Cancel the open vote (a disturbance, a wrong question): no result; its ballots stay in the log. An open
    vote's member-vote link goes as at a close."""
    reason = " ".join((reason or "").split())[:QUESTION_MAX]
    with transaction(db):
        found = _running(db, viewer, session_id, vote_id)
        if isinstance(found, Outcome):
            return found
        s, v = found
        db.execute("UPDATE votes SET state = 'cancelled', closed_at = ?, cancel_reason = ? WHERE id = ?",
                   [now, reason, v.id])
        _forget_members(db, v)
        _log(db, s.id, v.id, now, _actor(viewer, actor), "cancel", reason=reason)
        _changed(db, s.id, "cancel", v.id)
    return Outcome(True, "Die Abstimmung wurde abgebrochen.", vote_id=v.id)


def repeat_vote(db: Any, viewer: Viewer, session_id: int, vote_id: int, *, now: float,
                actor: str | None = None) -> Outcome:
    """Open the vote again with the same question, mode and rule (both attempts stay in the log and minutes);
    eligibility is decided anew at this opening."""
    with transaction(db):
        s = _clerk_session(db, viewer, session_id, chair_too=True)
        if isinstance(s, Outcome):
            return s
        v = _vote(db, s.id, vote_id)
        if v is None or v.mode == "paper":
            return _refuse("no_vote")
        if v.state == "open":
            return _refuse("still_open")
        out = open_vote(db, viewer, s.id, question=v.question, now=now, mode=v.mode, rule=v.rule,
                        params=_params(v), item_id=v.item_id or 0, repeat_of=v.id, actor=actor)
        if out:
            _log(db, s.id, out.vote_id, now, _actor(viewer, actor), "repeat", of=v.id)
    return out


# --- casting ---------------------------------------------------------------------------------------------


def _is_open(v: _Vote, now: float) -> bool:
    return v.state == "open" and (v.closes_at is None or now < v.closes_at)


BALLOT_ROW = "SELECT id, token, choice, eligible_at_open, stands_in_for FROM vote_ballots WHERE vote_id = ? AND " \
             "member_id = ?"


# A member's view of their ballot (every phone's refetch): by_clerk, then BALLOT_ROW's columns, in one read.
MINE_ROW = BALLOT_ROW.replace("SELECT ", "SELECT by_clerk, ", 1)


def _holder_decision(db: Any, v: _Vote, person_id: int, now: float, row: tuple | None) -> vr.Decision | None:
    """The fast path (two small reads): the rules' answer for an eligible ballot holder (`row`: BALLOT_ROW of
    the person); None for anyone else — an arrival, a deputy whose member came — who is judged on the whole
    list. Shared by the cast and by each member's view of the vote (`_mine`: every phone's refetch)."""
    if row is None or not row[3]:
        return None
    role_row = db.execute("SELECT role, voting, name, EXISTS (SELECT 1 FROM presence_intervals WHERE session_id = ? "
                          "AND member_id = ? AND end IS NULL) FROM members WHERE id = ?",
                          [v.session_id, person_id, person_id]).fetchone()
    present = bool(role_row[3])
    me = vr.Person(person_id, role_row[0], bool(role_row[1]), present, role_row[2])
    deputies = {person_id: row[4]} if row[4] is not None else {}
    voted = set()
    if row[4] is not None and db.execute("SELECT 1 FROM vote_ballots WHERE vote_id = ? AND member_id = ? AND "
                                         "choice IS NOT NULL", [v.id, row[4]]).fetchone():
        voted.add(row[4])
    return vr.may_cast(_is_open(v, now), person_id, {person_id}, {person_id} if present else set(), [me],
                       deputies, (), voted)


def _ballot_for(db: Any, v: _Vote, person_id: int, now: float) -> tuple[int, str, str | None] | vr.Decision:
    """The person's ballot (id, token, choice) if the rules let them cast now; else the rules' refusal. An
    eligible ballot holder still present is the fast path (`_holder_decision`); anyone else is judged on the
    whole list."""
    row = db.execute(BALLOT_ROW, [v.id, person_id]).fetchone()
    d = _holder_decision(db, v, person_id, now, row)
    if d is not None:
        return (row[0], row[1], row[2]) if d else d
    people = _people(db, v.session_id)
    ballots = db.execute("SELECT member_id, eligible_at_open, choice FROM vote_ballots WHERE vote_id = ? AND "
                         "member_id IS NOT NULL", [v.id]).fetchall()
    d = vr.may_cast(_is_open(v, now), person_id, {m for m, e, _c in ballots if e},
                    {p.id for p in people if p.present}, people, _deputies(db, v.session_id),
                    _conflicted(db, v.session_id, v.item_id), {m for m, _e, c in ballots if c})
    if not d:
        return d
    if row is not None:
        return (row[0], row[1], row[2])
    member = db.execute("SELECT name, faction, role FROM members WHERE id = ?", [person_id]).fetchone()
    seat = _deputies(db, v.session_id).get(person_id) if member[2] == roles.DEPUTY else None
    token = secrets.token_hex(8)
    cur = db.execute("INSERT INTO vote_ballots(vote_id, token, member_id, name, faction, stands_in_for, "
                     "eligible_at_open) VALUES (?, ?, ?, ?, ?, ?, 0)",
                     [v.id, token, person_id, member[0] if v.mode == "named" else None, member[1], seat])
    db.execute("UPDATE votes SET eligible = eligible + 1 WHERE id = ?", [v.id])
    return (int(cur.lastrowid), token, None)


def _record(db: Any, s: _Session, v: _Vote, person_id: int, choice: str, key: str, now: float, *,
            by_clerk: bool, actor: str) -> Outcome:
    """Shared by cast and enter_by_hand, inside their transaction."""
    if choice not in vr.CHOICES:
        return _refuse("bad_choice")
    if key:
        seen = db.execute("SELECT choice FROM vote_cast_keys WHERE vote_id = ? AND key = ?", [v.id, key]).fetchone()
        if seen is not None:  # a retry of an acknowledged cast: the same answer, nothing counted again
            return Outcome(True, f"Ihre Stimme: {vr.CHOICE_NAMES[seen[0]]}", vote_id=v.id, choice=seen[0])
    got = _ballot_for(db, v, person_id, now)
    if isinstance(got, vr.Decision):
        return _refused(got)
    ballot_id, token, before = got
    if before is not None and before != choice and not v.may_change and not by_clerk:
        return _refuse("no_change")
    faction = db.execute("UPDATE vote_ballots SET choice = ?, by_clerk = ?, cast_at = ? WHERE id = ? RETURNING faction",
                         [choice, int(by_clerk), now, ballot_id]).fetchone()[0]
    if key:
        db.execute("INSERT INTO vote_cast_keys(vote_id, key, ballot_id, choice) VALUES (?, ?, ?, ?)",
                   [v.id, key, ballot_id, choice])
    named = {"member_id": person_id, "name": db.execute("SELECT name FROM members WHERE id = ?",
                                                        [person_id]).fetchone()[0]} if v.mode == "named" else {}
    _log(db, s.id, v.id, now, actor, "cast", token=token, choice=choice, faction=faction, by_clerk=by_clerk,
         change=before is not None, **named)
    if before is None:
        cast, eligible = (int(x) for x in db.execute("UPDATE votes SET cast_count = cast_count + 1 WHERE id = ? "
                                                       "RETURNING cast_count, eligible", [v.id]).fetchone())
        _publish_progress(db, s, v.id, cast, eligible)
    return Outcome(True, f"Ihre Stimme: {vr.CHOICE_NAMES[choice]}", vote_id=v.id, choice=choice)


def cast(db: Any, viewer: Viewer, session_id: int, vote_id: int, member_id: int, choice: str, key: str, *,
         now: float) -> Outcome:
    """A member casts (or changes) their vote from their own device. member_id is whom the request names: only
    the device of that member (the one resolver: the viewer) may cast it. key: the idempotency key of this tap —
    a retry with the same key is acknowledged again and never counted twice."""
    if not isinstance(key, str) or not (8 <= len(key) <= KEY_MAX) or not key.isascii() or not key.isprintable():
        return _refuse("bad_key")
    with transaction(db):
        s = _session(db, session_id)
        if s is None:
            return _refuse("no_session")
        if viewer.kind == "guest":
            return _refuse("guest")
        if not viewer.is_member or viewer.member is None or viewer.session_id != s.id \
                or viewer.member.session_id != s.id:
            return _refuse("not_member")
        if viewer.member.id != member_id:
            return _refuse("not_own")
        v = _vote(db, s.id, vote_id)
        if v is None or v.mode == "paper":
            return _refuse("no_vote")
        return _record(db, s, v, member_id, choice, key, now, by_clerk=False, actor="member" if v.mode == "open"
                       else f"member:{member_id}")


def enter_by_hand(db: Any, viewer: Viewer, session_id: int, vote_id: int, member_id: int, choice: str, *,
                  now: float, actor: str | None = None) -> Outcome:
    """The clerk records a member's vote given by hand (a dead phone): the same rules as a cast, marked."""
    with transaction(db):
        s = _session(db, session_id)
        if s is None:
            return _refuse("no_session")
        if not viewer.is_clerk:
            return _refuse("not_clerk")
        v = _vote(db, s.id, vote_id)
        if v is None or v.mode == "paper":
            return _refuse("no_vote")
        if not _fits(member_id) or db.execute("SELECT 1 FROM members WHERE id = ? AND session_id = ?",
                                              [member_id, s.id]).fetchone() is None:
            return _refuse("no_member")
        out = _record(db, s, v, member_id, choice, "", now, by_clerk=True, actor=_actor(viewer, actor))
    if out:
        return Outcome(True, f"Stimme eingetragen: {vr.CHOICE_NAMES[choice]}", vote_id=out.vote_id, choice=choice)
    return out


# --- the clerk's records: deputies, conflicts, the body's setting ----------------------------------------


def _clerk_session(db: Any, viewer: Viewer, session_id: int, chair_too: bool = False) -> _Session | Outcome:
    s = _session(db, session_id)
    if s is None:
        return _refuse("no_session")
    if chair_too:
        if not is_chair(viewer, s.id, s.chair_member_id):
            return _refuse("not_chair")
    elif not viewer.is_clerk:
        return _refuse("not_clerk")
    return s


def _listed(db: Any, session_id: int, member_id: object) -> tuple[str, bool, str] | None:
    if not _fits(member_id):
        return None
    row = db.execute("SELECT role, voting, name FROM members WHERE id = ? AND session_id = ?",
                     [member_id, session_id]).fetchone()
    return (row[0], bool(row[1]), row[2]) if row else None


def set_deputy(db: Any, viewer: Viewer, session_id: int, deputy_id: int, member_id: int | None, *, now: float,
               actor: str | None = None) -> Outcome:
    """The clerk records that a deputy stands in for a member (None: for nobody). It takes effect at the next
    opening of a vote (rules.votes.eligibility)."""
    with transaction(db):
        s = _clerk_session(db, viewer, session_id)
        if isinstance(s, Outcome):
            return s
        dep = _listed(db, s.id, deputy_id)
        if dep is None:
            return _refuse("no_member")
        if dep[0] != roles.DEPUTY:
            return _refuse("not_deputy")
        if member_id is None:
            db.execute("DELETE FROM vote_deputies WHERE session_id = ? AND deputy_id = ?", [s.id, deputy_id])
            text = f"{dep[2]} vertritt niemanden."
        else:
            mem = _listed(db, s.id, member_id)
            if mem is None:
                return _refuse("no_member")
            if mem[0] != roles.MEMBER or not mem[1]:
                return _refuse("not_seat")
            db.execute("INSERT INTO vote_deputies(session_id, deputy_id, member_id) VALUES (?, ?, ?) "
                       "ON CONFLICT(session_id, deputy_id) DO UPDATE SET member_id = excluded.member_id",
                       [s.id, deputy_id, member_id])
            text = f"{dep[2]} vertritt {mem[2]}."
        _log(db, s.id, None, now, _actor(viewer, actor), "deputy", deputy_id=deputy_id, member_id=member_id)
    return Outcome(True, text)


def set_conflicted(db: Any, viewer: Viewer, session_id: int, item_id: int | None, member_id: int, conflicted: bool,
                   *, now: float, actor: str | None = None) -> Outcome:
    """The clerk or the chair marks a member conflicted (befangen) on an item (None/0: votes without item); it
    counts from the next opening of a vote on that item."""
    with transaction(db):
        s = _clerk_session(db, viewer, session_id, chair_too=True)
        if isinstance(s, Outcome):
            return s
        if _item(db, s.id, item_id) is None:
            return _refuse("no_item")
        who = _listed(db, s.id, member_id)
        if who is None:
            return _refuse("no_member")
        if conflicted:
            db.execute("INSERT OR IGNORE INTO vote_conflicts(session_id, item_id, member_id, marked_at) "
                       "VALUES (?, ?, ?, ?)", [s.id, item_id or 0, member_id, now])
        else:
            db.execute("DELETE FROM vote_conflicts WHERE session_id = ? AND item_id = ? AND member_id = ?",
                       [s.id, item_id or 0, member_id])
        _log(db, s.id, None, now, _actor(viewer, actor), "conflict", item_id=item_id or 0, member_id=member_id,
             conflicted=conflicted)
    return Outcome(True, f"{who[2]} ist {'als befangen vermerkt' if conflicted else 'nicht mehr befangen'}.")


def set_may_change(db: Any, viewer: Viewer, body: str, allowed: bool, *, session_id: int, now: float,
                   actor: str | None = None) -> Outcome:
    """The body's rules of procedure: may a member change a cast vote until the close? (from the next vote)"""
    with transaction(db):
        s = _clerk_session(db, viewer, session_id)
        if isinstance(s, Outcome):
            return s
        db.execute("INSERT INTO vote_settings(body, may_change) VALUES (?, ?) ON CONFLICT(body) DO UPDATE SET "
                   "may_change = excluded.may_change", [body or s.body, int(allowed)])
        _log(db, s.id, None, now, _actor(viewer, actor), "setting", body=body or s.body, may_change=allowed)
    return Outcome(True, "Stimmen dürfen bis zum Schluss geändert werden." if allowed
                   else "Abgegebene Stimmen können nicht mehr geändert werden.")


@dataclass(frozen=True)
class Records:
    """What the clerk recorded for the session's votes, as their page shows it."""

    deputies: dict[int, int]  # deputy id -> the member they stand in for
    conflicts: dict[int, list[int]]  # item id (0: votes without item) -> members marked conflicted
    may_change: bool  # the body's setting (rules of procedure)
    current_item_id: int | None  # the item the room is on (default of the forms)


def records(db: Any, session_id: int) -> Records | None:
    """The clerk's records of the session: deputies, conflicts per item, the body's may-change setting."""
    s = _session(db, session_id)
    if s is None:
        return None
    conflicts: dict[int, list[int]] = {}
    for item_id, member_id in db.execute("SELECT item_id, member_id FROM vote_conflicts WHERE session_id = ? "
                                         "ORDER BY item_id, member_id", [s.id]):
        conflicts.setdefault(item_id, []).append(member_id)
    return Records(_deputies(db, s.id), conflicts, _may_change(db, s.body), s.current_item_id)


# --- paper ballots ---------------------------------------------------------------------------------------


def _count(n: object) -> int | None:
    return n if isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= 100_000 else None


def record_paper(db: Any, viewer: Viewer, session_id: int, kind: str, *, title: str, now: float,
                 counts: dict[str, int] | None = None, yes: int = 0, no: int = 0, abstain: int = 0,
                 rule: str = "simple", params: vr.Custom | None = None, seats: int = 0,
                 item_id: int | None = None, actor: str | None = None) -> Outcome:
    """The clerk enters what the ballot box gave; the box applies the rule and writes the computation for the
    minutes. kind: majority (yes/no/abstain under `rule`), election / runoff (counts per candidate, `no` for
    Nein votes), hare_niemeyer / dhondt (counts per list, `seats`)."""
    title = " ".join((title or "").split())[:QUESTION_MAX]
    with transaction(db):
        s = _clerk_session(db, viewer, session_id)
        if isinstance(s, Outcome):
            return s
        if kind not in PAPER_KINDS:
            return _refuse("bad_paper")
        if not title:
            return _refuse("no_question")
        item_id = s.current_item_id if item_id is None else (item_id or None)
        item = _item(db, s.id, item_id)
        if item is None:
            return _refuse("no_item")
        statutory = _statutory(db, s.id)
        if kind == "majority":
            if any(_count(n) is None for n in (yes, no, abstain)):
                return _refuse("bad_counts")
            if (bad := _check_rule(rule, params)) is not None:
                return bad
            res = vr.decide(rule, yes, no, abstain, statutory, params)
            entered: dict[str, Any] = {"yes": yes, "no": no, "abstain": abstain, "rule": rule,
                                       "params": asdict(params) if params else None, "statutory": statutory}
            outcome: dict[str, Any] = {"accepted": res.accepted}
            lines = [RULE_NAMES[rule] + (f": {params.words()}" if params else ""), res.text]
        else:
            counts = {" ".join(str(k).split())[:200]: v for k, v in (counts or {}).items() if str(k).strip()}
            if not counts:
                return _refuse("no_candidates")
            if any(_count(n) is None for n in (*counts.values(), no)):
                return _refuse("bad_counts")
            entered = {"counts": counts}
            if kind in ("election", "runoff"):
                e = vr.election(counts, no=no, runoff=kind == "runoff")
                entered["no"] = no
                outcome = {"outcome": e.outcome, "elected": e.elected, "candidates": list(e.candidates)}
                lines = list(e.steps)
            else:
                if not isinstance(seats, int) or not 1 <= seats <= 200:
                    return _refuse("bad_seats")
                dist = (vr.hare_niemeyer if kind == "hare_niemeyer" else vr.dhondt)(counts, seats)
                entered["seats"] = seats
                outcome = {"seats": dict(dist.seats), "lot": list(dist.lot), "lot_seats": dist.lot_seats}
                lines = list(dist.steps)
        cur = db.execute("INSERT INTO vote_paper(session_id, item_id, item_title, kind, title, input, outcome, steps, "
                         "recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         [s.id, item_id, item[0], kind, title, json.dumps(entered, ensure_ascii=False),
                          json.dumps(outcome, ensure_ascii=False), "\n".join(lines), now])
        paper_id = int(cur.lastrowid)
        _log(db, s.id, None, now, _actor(viewer, actor), "paper", paper_id=paper_id, kind=kind, input=entered,
             outcome=outcome)
    return Outcome(True, lines[-1], vote_id=paper_id)


# --- the one read -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NamedVote:
    member_id: int | None
    name: str
    faction: str
    choice: str | None  # None: did not vote
    by_clerk: bool


@dataclass(frozen=True)
class FactionCount:
    faction: str
    eligible: int
    yes: int
    no: int
    abstain: int


@dataclass(frozen=True)
class Vote:
    """A vote as the pages render it. Tallies only once closed (never while open: `cast` is the count)."""

    id: int
    item_id: int | None
    item_title: str
    question: str
    mode: str
    rule: str
    rule_words: str
    state: str
    attempt: int
    repeat_of: int | None
    statutory: int
    eligible: int
    present: int
    conflicted: int
    quorum_needed: int
    quorate: bool
    opened_at: float
    closes_at: float | None
    closed_at: float | None
    cast: int
    may_change: bool
    yes: int | None = None
    no: int | None = None
    abstain: int | None = None
    by_hand: int | None = None
    accepted: bool | None = None
    result_text: str = ""
    cancel_reason: str = ""
    factions: list[FactionCount] = field(default_factory=list)
    named: list[NamedVote] = field(default_factory=list)  # named votes, closed: each member's vote
    conflicted_names: list[str] = field(default_factory=list)
    hidden: bool = False  # public_only and a non-public item: no question, no title, no names

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Mine:
    """The viewing member's view of the open vote: may they cast, and what they cast."""

    may: bool
    reason: str
    choice: str | None
    by_clerk: bool = False


@dataclass(frozen=True)
class State:
    session_id: int
    current: Vote | None  # the open vote, else the last one closed or cancelled
    mine: Mine | None
    now: float

    def to_dict(self) -> dict:
        return asdict(self)


VOTE_READ = ("id, item_id, item_title, question, mode, rule, rule_params, state, attempt, repeat_of, statutory, "
             "eligible, present, conflicted, quorum_needed, quorate, opened_at, closes_at, closed_at, cast_count, "
             "may_change, yes, no, abstain, by_hand, accepted, result_text, cancel_reason")


def _rule_words(rule: str, params: str) -> str:
    if rule == "custom" and params:
        return f"{RULE_NAMES[rule]}: {vr.Custom(**json.loads(params)).words()}"
    return RULE_NAMES[rule]


def _read_vote(db: Any, row: tuple, public_only: bool) -> Vote:
    (vid, item_id, item_title, question, mode, rule, params, state_, attempt, repeat_of, statutory, eligible,
     present, conflicted, needed, quorate, opened_at, closes_at, closed_at, cast_n, may_change, yes, no, abstain,
     by_hand, accepted, result_text, cancel_reason) = row
    public = True
    if item_id:
        r = db.execute("SELECT public FROM doc_items WHERE id = ?", [item_id]).fetchone()
        public = bool(r[0]) if r else True
    hidden = public_only and not public
    factions, named, conflicted_names = [], [], []
    if state_ == "closed":
        factions = [FactionCount(*r) for r in db.execute(
            "SELECT faction, eligible, yes, no, abstain FROM vote_faction_counts WHERE vote_id = ? ORDER BY faction",
            [vid])]
        if mode == "named" and not hidden:
            named = [NamedVote(m, n or "", f, c, bool(b)) for m, n, f, c, b in db.execute(
                "SELECT member_id, name, faction, choice, by_clerk FROM vote_ballots WHERE vote_id = ? "
                "ORDER BY name COLLATE NOCASE, id", [vid])]
    if not hidden:
        # Only the opening's conflicted list: its detail also lists everyone eligible, which every refetch of every
        # phone would otherwise decode whole.
        opened = db.execute("SELECT json_extract(detail, '$.conflicted') FROM vote_log WHERE vote_id = ? AND "
                            "action = 'open'", [vid]).fetchone()
        ids = json.loads(opened[0]) if opened and opened[0] is not None else []
        if ids:
            marks = ", ".join("?" for _ in ids)
            conflicted_names = [n for (n,) in db.execute(
                f"SELECT name FROM members WHERE id IN ({marks}) ORDER BY name", ids)]  # noqa: S608
    return Vote(vid, item_id, "" if hidden else item_title, "" if hidden else question, mode, rule,
                _rule_words(rule, params), state_, attempt, repeat_of, statutory, eligible, present, conflicted,
                needed, bool(quorate), opened_at, closes_at, closed_at, cast_n, bool(may_change), yes, no, abstain,
                by_hand, None if accepted is None else bool(accepted), result_text, cancel_reason, factions, named,
                conflicted_names, hidden)


def _mine(db: Any, v: Vote, session_id: int, member_id: int, now: float) -> Mine:
    """v: a vote of session_id (as state read it)."""
    ballot = db.execute(MINE_ROW, [v.id, member_id]).fetchone()
    row = (ballot[3], ballot[0]) if ballot else None  # (choice, by_clerk)
    if v.state != "open":
        return Mine(False, TEXTS["not_open"], row[0] if row else None, bool(row[1]) if row else False)
    vote = _vote(db, session_id, v.id)
    assert vote is not None
    d = _holder_decision(db, vote, member_id, now, ballot[1:] if ballot else None)
    if d is None:  # not an eligible ballot holder: judged on the whole list, as a cast would be
        people = _people(db, vote.session_id)
        ballots = db.execute("SELECT member_id, eligible_at_open, choice FROM vote_ballots WHERE vote_id = ? AND "
                             "member_id IS NOT NULL", [v.id]).fetchall()
        d = vr.may_cast(_is_open(vote, now), member_id, {m for m, e, _c in ballots if e},
                        {p.id for p in people if p.present}, people, _deputies(db, vote.session_id),
                        _conflicted(db, vote.session_id, vote.item_id), {m for m, _e, c in ballots if c})
    choice = row[0] if row else None
    if d and choice is not None and not vote.may_change:
        return Mine(False, TEXTS["no_change"], choice, bool(row[1]))
    return Mine(d.ok, d.text, choice, bool(row[1]) if row else False)


def state(db: Any, session_id: int, *, now: float, member_id: int | None = None,
          public_only: bool = False) -> State | None:
    """The open vote (else the last finished one) as the pages show it, and for a member their own ballot. A
    countdown that ran out is closed first (the same act as the daemon's tick). public_only: the room screen
    and guests — a vote on a non-public item shows no question, title or names."""
    if not _fits(session_id):
        return None
    if db.execute("SELECT 1 FROM votes WHERE session_id = ? AND state = 'open' AND closes_at <= ?",
                  [session_id, now]).fetchone():
        close_due(db, now)
    if db.execute("SELECT 1 FROM sessions WHERE id = ?", [session_id]).fetchone() is None:
        return None
    row = db.execute(f"SELECT {VOTE_READ} FROM votes WHERE session_id = ? ORDER BY state = 'open' DESC, id DESC "  # noqa: S608
                     "LIMIT 1", [session_id]).fetchone()
    current = _read_vote(db, row, public_only) if row else None
    mine = _mine(db, current, session_id, member_id, now) if current is not None and member_id is not None else None
    return State(session_id, current, mine, now)


def votes(db: Any, session_id: int, *, public_only: bool = False) -> list[Vote]:
    """Every electronic vote of the session, in order (the clerk's list and the minutes)."""
    return [_read_vote(db, r, public_only) for r in db.execute(
        f"SELECT {VOTE_READ} FROM votes WHERE session_id = ? ORDER BY id", [session_id])]  # noqa: S608


def waiting(db: Any, session_id: int, vote_id: int) -> list[tuple[int, str]]:
    """Who has a ballot in the open vote and has not cast yet (the clerk's hand entry; the chair asks)."""
    return [(m, n) for m, n in db.execute(
        "SELECT b.member_id, m.name FROM vote_ballots b JOIN members m ON m.id = b.member_id JOIN votes v ON "
        "v.id = b.vote_id WHERE b.vote_id = ? AND v.session_id = ? AND v.state = 'open' AND b.choice IS NULL "
        "ORDER BY m.name COLLATE NOCASE", [vote_id, session_id])]


# --- minutes ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Paper:
    id: int
    item_title: str
    kind: str
    kind_name: str
    title: str
    input: dict
    outcome: dict
    steps: list[str]
    recorded_at: float


def papers(db: Any, session_id: int) -> list[Paper]:
    return [Paper(i, t, k, PAPER_NAMES[k], ti, json.loads(inp), json.loads(out), st.split("\n"), at)
            for i, t, k, ti, inp, out, st, at in db.execute(
                "SELECT id, item_title, kind, title, input, outcome, steps, recorded_at FROM vote_paper "
                "WHERE session_id = ? ORDER BY id", [session_id])]


@dataclass(frozen=True)
class Minutes:
    votes: list[Vote]
    papers: list[Paper]

    def to_dict(self) -> dict:
        return asdict(self)


def minutes(db: Any, session_id: int) -> Minutes:
    return Minutes(votes(db, session_id), papers(db, session_id))


def _clock(ts: float | None, tz: str) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, ZoneInfo(tz)).strftime("%H:%M:%S")


MINUTES_HEADER = ("Abstimmung", "Versuch", "Wiederholung von", "TOP", "Frage", "Art", "Mehrheitsregel", "Eröffnet",
                  "Geschlossen", "Status", "Gesetzliche Mitgliederzahl", "Anwesend", "Stimmberechtigt", "Befangen",
                  "Beschlussfähig", "Ja", "Nein", "Enthaltung", "Von Hand eingetragen", "Ergebnis", "Fraktion",
                  "Name", "Stimme")
STATE_NAMES = {"open": "läuft", "closed": "geschlossen", "cancelled": "abgebrochen"}


def minutes_csv(m: Minutes, tz: str) -> str:
    """One line per vote (totals), then one per faction and, for named votes, one per member; then the paper
    ballots (appliance.csvexport: spreadsheet-safe cells, times in the council's zone)."""
    rows: list[list[object]] = []
    for v in m.votes:
        result = "" if v.accepted is None else ("angenommen" if v.accepted else "abgelehnt")
        head = [v.id, v.attempt, v.repeat_of or "", v.item_title, v.question, MODE_NAMES[v.mode], v.rule_words,
                _clock(v.opened_at, tz), _clock(v.closed_at, tz), STATE_NAMES[v.state], v.statutory, v.present,
                v.eligible, v.conflicted, "ja" if v.quorate else "nein"]
        rows.append([*head, "" if v.yes is None else v.yes, "" if v.no is None else v.no,
                     "" if v.abstain is None else v.abstain, v.by_hand or 0, result, "", "", ""])
        rows += [[*head, f.yes, f.no, f.abstain, "", "", f.faction or "(ohne Fraktion)", "", ""] for f in v.factions]
        rows += [[*head, "", "", "", "ja" if n.by_clerk else "", "", n.faction, n.name,
                  vr.CHOICE_NAMES.get(n.choice or "", "nicht abgestimmt")] for n in v.named]
    for p in m.papers:
        rows.append([f"S{p.id}", "", "", p.item_title, p.title, p.kind_name, "", _clock(p.recorded_at, tz), "", "",
                     "", "", "", "", "", "", "", "", "", " / ".join(p.steps), "", "", ""])
    return csvexport.write(MINUTES_HEADER, rows)


def minutes_json(m: Minutes) -> str:
    return json.dumps(m.to_dict(), ensure_ascii=False, indent=1)


def log(db: Any, session_id: int) -> list[tuple[str, dict]]:
    """The vote log of the session in order, as (action, detail): what `rules.votes.replay` reads."""
    return [(a, json.loads(d)) for a, d in db.execute(
        "SELECT action, detail FROM vote_log WHERE session_id = ? ORDER BY id", [session_id])]


def wipe(db: Any, session_id: int, by: str) -> int:
    """Delete the session's votes and their log (retention; the clerk's wipe with usecases.speakers.wipe): the
    purge row names who did it while the log's rows go, and goes with them, so the log of the session is
    append-only again afterwards (and no clerk's address outlives the wipe); the caller's audit entry records
    the wipe."""
    with transaction(db):
        db.execute("INSERT OR REPLACE INTO vote_log_purge(session_id, by) VALUES (?, ?)", [session_id, by])
        n = db.execute("DELETE FROM vote_log WHERE session_id = ?", [session_id]).rowcount
        for table in ("vote_paper", "vote_conflicts", "vote_deputies", "votes"):  # ballots go with their vote
            n += db.execute(f"DELETE FROM {table} WHERE session_id = ?", [session_id]).rowcount  # noqa: S608
        db.execute("DELETE FROM vote_log_purge WHERE session_id = ?", [session_id])
    return n

