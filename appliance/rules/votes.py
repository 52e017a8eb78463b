"""Votes as pure rules: who is eligible when a vote opens, who may still cast while it is open, the majority
presets, the quorum status at the opening, seat distributions and the election of one person on paper. Plain data
in, a decision out; no SQL, no Flask, no clock. Every refusal and every result is a German sentence under a stable
code (REASONS, RESULTS) the web can translate; computations for the minutes come as a list of German lines.

Eligibility at the opening (`eligibility`), decided here, in this order:
    guest, administration      never vote
    no voting right            a member without the voting flag (Stimmrecht)
    absent                     not present when the vote opens
    conflicted                 declared befangen on this item: neither votes nor counts for quorum
    deputy                     votes only when recorded as standing in for a member (`deputies`: deputy id ->
                               member id) and that member is absent at the opening: the member votes, never both.
                               A deputy votes with the voting right of the member they stand in for (the deputy's
                               own flag does not matter). A present but conflicted member is present: their
                               deputy does not vote for them (Befangenheit is personal, not an absence).
                               Two deputies for one member: the lower id stands in, the other is refused.

While the vote is open (`may_cast`): who was eligible at the opening votes if still present. Someone who was not
is judged by the state now — a member who arrives during the vote may vote. A deputy and their arriving member:
the deputy who stood in at the opening keeps the ballot for this whole vote, the arriving member does not vote
in it (one ballot per seat; the deputy may already have cast, and an acknowledged vote is never taken back); the
member votes again from the next vote on. Conversely a deputy never votes for a member who has a ballot in this
vote. `voted` (who has cast) keeps this true when people come and go: neither votes if the other has cast.

Majorities (§ 50 GO NRW; verify the current text): votes cast are yes + no, abstentions do not count; a tie is
rejected; nobody voting yes or no is rejected.
    simple       more yes than no
    two_thirds   yes at least two thirds of yes + no
    statutory    yes more than half of the statutory members (abstentions and absent members count as not yes)

Quorum (§ 49 GO NRW): more than half of the statutory members present — counted as the seats that have a vote at
the opening (the eligible set: members present, deputies standing in; conflicted do not count). It informs the
chair; it never blocks a vote (the body counts as quorate until its lack of quorum is established).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction

from appliance.rules import roles
from appliance.rules.refusal import ALLOWED, Decision

REASONS: dict[str, str] = {
    "guest": "Gäste stimmen nicht ab.",
    "administration": "Die Verwaltung stimmt nicht ab.",
    "no_voting_right": "{name} hat kein Stimmrecht.",
    "absent": "{name} war bei der Eröffnung der Abstimmung nicht anwesend.",
    "absent_now": "{name} ist nicht anwesend: wer den Saal verlassen hat, gibt keine Stimme ab.",
    "conflicted": "{name} ist bei diesem Punkt befangen und nimmt an der Abstimmung nicht teil.",
    "not_standing_in": "{name} ist als Stellvertretung für niemanden eingetragen.",
    "member_present": "Das vertretene Mitglied ist anwesend und stimmt selbst ab; die Stellvertretung stimmt nicht.",
    "member_has_ballot": "Das vertretene Mitglied hat in dieser Abstimmung selbst eine Stimme; die "
                         "Stellvertretung stimmt nicht.",
    "stand_in_taken": "Für dieses Mitglied stimmt bereits eine andere Stellvertretung ab.",
    "deputy_votes": "In dieser Abstimmung stimmt die bei der Eröffnung eingetragene Stellvertretung für {name}; "
                    "ab der nächsten Abstimmung stimmt {name} selbst.",
    "member_voted": "Das vertretene Mitglied hat in dieser Abstimmung bereits selbst abgestimmt.",
    "closed": "Diese Abstimmung ist nicht geöffnet.",
    "unknown": "Diese Person steht nicht auf der Liste dieser Sitzung.",
}


def refuse(code: str, **values: object) -> Decision:
    return Decision(False, code, REASONS[code].format(**values))


@dataclass(frozen=True)
class Person:
    """A person on the session's list as the vote rules need them."""

    id: int
    role: str
    voting: bool = True  # the voting flag (Stimmrecht), per person
    present: bool = True  # present when the vote opens
    name: str = ""


@dataclass(frozen=True)
class Eligibility:
    eligible: frozenset[int]
    refused: Mapping[int, Decision] = field(default_factory=dict)  # person id -> why not


def _name(p: Person) -> str:
    return p.name or f"Person {p.id}"


def eligibility(people: Sequence[Person], deputies: Mapping[int, int] = {},  # noqa: B006 (read only)
                conflicted: Collection[int] = ()) -> Eligibility:
    """Who votes when the vote opens (module docstring), and for everyone else why not."""
    by_id = {p.id: p for p in people}
    eligible: set[int] = set()
    refused: dict[int, Decision] = {}
    taken: set[int] = set()  # members a deputy already stands in for
    for p in sorted(people, key=lambda p: (p.role == roles.DEPUTY, p.id)):
        name = _name(p)
        if p.role == roles.GUEST or p.role not in roles.ALL:
            why = refuse("guest")
        elif p.role == roles.ADMINISTRATION:
            why = refuse("administration")
        elif p.role == roles.MEMBER and not p.voting:
            why = refuse("no_voting_right", name=name)
        elif not p.present:
            why = refuse("absent", name=name)
        elif p.id in conflicted:
            why = refuse("conflicted", name=name)
        elif p.role == roles.MEMBER:
            why = ALLOWED
        else:  # a deputy, present, not conflicted
            member = by_id.get(deputies.get(p.id, -1))
            if member is None:
                why = refuse("not_standing_in", name=name)
            elif member.present:
                why = refuse("member_present")
            elif not member.voting:
                why = refuse("no_voting_right", name=_name(member))
            elif member.id in taken:
                why = refuse("stand_in_taken")
            else:
                taken.add(member.id)
                why = ALLOWED
        if why:
            eligible.add(p.id)
        else:
            refused[p.id] = why
    return Eligibility(frozenset(eligible), refused)


def may_cast(vote_open: bool, person_id: int | None, eligible_at_open: Collection[int],
             present_now: Collection[int], people: Sequence[Person], deputies: Mapping[int, int] = {},  # noqa: B006
             conflicted: Collection[int] = (), voted: Collection[int] = ()) -> Decision:
    """May this person cast (or change) a ballot now? (module docstring: arrivals, deputies)."""
    if not vote_open:
        return refuse("closed")
    by_id = {p.id: p for p in people}
    person = by_id.get(person_id) if person_id is not None else None
    if person is None:
        return refuse("unknown")
    name = _name(person)
    stands_in_for = deputies.get(person.id) if person.role == roles.DEPUTY else None
    my_deputies = {d for d, m in deputies.items() if m == person.id}
    if person.id in eligible_at_open:
        if person.id not in present_now:
            return refuse("absent_now", name=name)
        if stands_in_for is not None and stands_in_for in voted:
            return refuse("member_voted")
        return ALLOWED
    now = [replace(p, present=p.id in present_now) for p in people]
    decision = eligibility(now, deputies, conflicted).refused.get(person.id, ALLOWED)
    if not decision:
        return decision
    if person.role == roles.MEMBER and my_deputies & (set(eligible_at_open) | set(voted)):
        return refuse("deputy_votes", name=name)
    if stands_in_for is not None:
        if stands_in_for in eligible_at_open or stands_in_for in voted:
            return refuse("member_has_ballot")
        seat = {d for d, m in deputies.items() if m == stands_in_for and d != person.id}
        if seat & (set(eligible_at_open) | set(voted)):
            return refuse("stand_in_taken")
    return ALLOWED


# --- majorities -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    accepted: bool
    code: str  # the preset
    text: str  # the computation, in German, for the minutes


def _counts(yes: int, no: int, abstain: int) -> str:
    return f"Ja {yes}, Nein {no}, Enthaltungen {abstain}"


def _nobody(code: str, yes: int, no: int, abstain: int) -> Result:
    return Result(False, code, f"{_counts(yes, no, abstain)}: niemand hat mit Ja oder Nein gestimmt, "
                               "der Antrag ist abgelehnt.")


def simple(yes: int, no: int, abstain: int = 0, statutory: int = 0) -> Result:
    """Simple majority of the votes cast; abstentions not counted; a tie is rejected (§ 50 GO NRW)."""
    if yes + no == 0:
        return _nobody("simple", yes, no, abstain)
    head = f"{_counts(yes, no, abstain)}; Enthaltungen zählen nicht."
    if yes > no:
        return Result(True, "simple", f"{head} {yes} Ja-Stimmen sind mehr als {no} Nein-Stimmen: angenommen.")
    if yes == no:
        return Result(False, "simple", f"{head} Stimmengleichheit ({yes} zu {no}) gilt als Ablehnung: abgelehnt.")
    return Result(False, "simple", f"{head} {yes} Ja-Stimmen sind nicht mehr als {no} Nein-Stimmen: abgelehnt.")


def two_thirds(yes: int, no: int, abstain: int = 0, statutory: int = 0) -> Result:
    """At least two thirds of the votes cast (yes + no) are yes; abstentions not counted."""
    if yes + no == 0:
        return _nobody("two_thirds", yes, no, abstain)
    cast = yes + no
    need = -(-2 * cast // 3)  # the smallest whole number >= 2/3 of the votes cast
    ok = 3 * yes >= 2 * cast
    return Result(ok, "two_thirds", f"{_counts(yes, no, abstain)}; Enthaltungen zählen nicht. Abgegeben {cast}, "
                                    f"zwei Drittel verlangen mindestens {need} Ja-Stimmen; {yes} Ja-Stimmen: "
                                    f"{'angenommen' if ok else 'abgelehnt'}.")


def statutory_majority(yes: int, no: int, abstain: int = 0, statutory: int = 0) -> Result:
    """More than half of the statutory members (gesetzliche Mitgliederzahl) vote yes."""
    if statutory <= 0:
        return Result(False, "statutory", f"{_counts(yes, no, abstain)}: keine gesetzliche Mitgliederzahl "
                                          "angegeben, die Mehrheit kann nicht festgestellt werden: abgelehnt.")
    need = statutory // 2 + 1
    ok = yes >= need
    return Result(ok, "statutory", f"{_counts(yes, no, abstain)}. Gesetzliche Mitgliederzahl {statutory}, "
                                   f"die Mehrheit verlangt mindestens {need} Ja-Stimmen; {yes} Ja-Stimmen: "
                                   f"{'angenommen' if ok else 'abgelehnt'}.")


PRESETS: dict[str, Callable[..., Result]] = {
    "simple": simple, "two_thirds": two_thirds, "statutory": statutory_majority}
RULES = (*PRESETS, "custom")
CHOICES = ("yes", "no", "abstain")
CHOICE_NAMES = {"yes": "Ja", "no": "Nein", "abstain": "Enthaltung"}
BASES = {"cast": "der abgegebenen Stimmen (Ja und Nein)", "statutory": "der gesetzlichen Mitgliederzahl"}


@dataclass(frozen=True)
class Custom:
    """A majority the rules of procedure set themselves: yes must reach num/den of the base (at least, or more
    than when strict). base "cast": yes + no (abstentions not counted); "statutory": the statutory members."""

    num: int
    den: int
    base: str = "cast"
    strict: bool = False

    def check(self) -> str:
        """'' when usable, else a German sentence."""
        if self.base not in BASES:
            return "Unbekannte Bezugsgröße der Mehrheit."
        if not (0 < self.num <= self.den <= 1000):
            return "Die Mehrheit muss ein Bruch zwischen 0 und 1 sein (z. B. 3/4)."
        return ""

    def words(self) -> str:
        return f"{'mehr als' if self.strict else 'mindestens'} {self.num}/{self.den} {BASES[self.base]}"


def custom(yes: int, no: int, abstain: int = 0, statutory: int = 0, *, rule: Custom) -> Result:
    """yes against num/den of the base (Custom)."""
    base = yes + no if rule.base == "cast" else statutory
    if base <= 0:
        return Result(False, "custom", f"{_counts(yes, no, abstain)}: Bezugsgröße 0, der Antrag ist abgelehnt.")
    need = Fraction(rule.num * base, rule.den)
    ok = yes > need if rule.strict else yes >= need
    return Result(ok, "custom", f"{_counts(yes, no, abstain)}. Verlangt: {rule.words()} ({_fmt(need)} von "
                                f"{base}); {yes} Ja-Stimmen: {'angenommen' if ok else 'abgelehnt'}.")


def decide(rule: str, yes: int, no: int, abstain: int, statutory: int, params: Custom | None = None) -> Result:
    """The result of a vote under its rule (a preset, or custom with its params)."""
    if rule == "custom":
        if params is None or params.check():
            raise ValueError("custom rule without usable params")
        return custom(yes, no, abstain, statutory, rule=params)
    return PRESETS[rule](yes, no, abstain, statutory)


def tally(choices: Sequence[tuple[str, str | None]]) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """(faction, choice or None) per ballot -> totals {yes,no,abstain} and the same per faction ('' for none)."""
    total = dict.fromkeys(CHOICES, 0)
    per: dict[str, dict[str, int]] = {}
    for faction, choice in choices:
        row = per.setdefault(faction, dict.fromkeys(CHOICES, 0))
        if choice in total:
            total[choice] += 1
            row[choice] += 1
    return total, per


def replay(entries: Sequence[tuple[str, Mapping]]) -> dict[int, dict]:
    """The results the vote log describes, worked out again from the log alone: (action, detail) in log order ->
    vote id -> {"state", "yes", "no", "abstain", "factions", "accepted"}. A cast counts with its ballot's last
    choice; a closed vote's result is decided by its rule as logged at the opening."""
    votes: dict[int, dict] = {}
    ballots: dict[int, dict[str, tuple[str, str | None]]] = {}  # vote -> token -> (faction, choice)
    for action, d in entries:
        vid = d.get("vote_id")
        if action == "open":
            votes[vid] = {"state": "open", "rule": d["rule"], "statutory": d["statutory"],
                          "params": d.get("params") or None, "accepted": None}
            ballots[vid] = {b[0]: (b[1], None) for b in d.get("ballots", ())}  # [token, faction, ...]
        elif action == "cast" and vid in votes:
            ballots[vid][d["token"]] = (d.get("faction", ""), d["choice"])
        elif action in ("close", "cancel") and vid in votes:
            v = votes[vid]
            if action == "cancel":
                v["state"] = "cancelled"
                continue
            total, per = tally(list(ballots[vid].values()))
            v.update(total, factions=per, state="closed")
            params = Custom(**v["params"]) if v["params"] else None
            v["accepted"] = decide(v["rule"], total["yes"], total["no"], total["abstain"], v["statutory"],
                                   params).accepted
    for v in votes.values():
        v.pop("params", None)
        v.pop("rule", None)
        v.pop("statutory", None)
    return votes


# --- quorum -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Quorum:
    quorate: bool
    present: int  # voting seats present at the opening (the eligible set)
    needed: int
    text: str


def quorum(eligible: Collection[int], statutory: int) -> Quorum:
    """The quorum status at the opening; it informs, never blocks (module docstring)."""
    needed = statutory // 2 + 1
    present = len(eligible)
    ok = present >= needed
    return Quorum(ok, present, needed, f"{present} stimmberechtigte Mitglieder anwesend (Befangene nicht "
                                       f"mitgezählt), gesetzliche Mitgliederzahl {statutory}, beschlussfähig ab "
                                       f"{needed}: {'beschlussfähig' if ok else 'nicht beschlussfähig'}.")


# --- seat distributions and elections ---------------------------------------------------------------------


@dataclass(frozen=True)
class Distribution:
    seats: Mapping[str, int]  # seats decided by the computation
    lot: tuple[str, ...] = ()  # parties tied for the seats left: a lot is due
    lot_seats: int = 0  # how many seats the lot decides
    steps: tuple[str, ...] = ()  # German lines for the minutes


def _fmt(x: Fraction) -> str:
    return f"{float(x):.4f}".replace(".", ",")


def _award(ranked: list[tuple[Fraction, str]], free: int) -> tuple[list[str], list[str]]:
    """The `free` best of ranked (value, party); returns (winners, tied parties sharing the last places)."""
    ranked = sorted(ranked, key=lambda vp: -vp[0])
    if free <= 0:
        return [], []
    if free >= len(ranked):
        return [p for _v, p in ranked], []
    last = ranked[free - 1][0]
    above = [p for v, p in ranked if v > last]
    tied = [p for v, p in ranked if v == last]
    if len(above) + len(tied) == free:
        return above + tied, []
    return above, tied


def _lot_line(tied: list[str], n: int) -> str:
    return f"Los erforderlich: {n} Sitz(e) zwischen {', '.join(tied)} (gleicher Wert)."


def hare_niemeyer(votes: Mapping[str, int], seats: int) -> Distribution:
    """Largest remainder (Hare/Niemeyer): each party votes × seats / all votes, the whole parts first, the seats
    left by the largest remainders; equal remainders at the boundary: a lot."""
    total = sum(votes.values())
    steps = [f"Hare/Niemeyer: {seats} Sitze, {total} Stimmen insgesamt."]
    if total == 0:
        steps.append(_lot_line(list(votes), seats))
        return Distribution({p: 0 for p in votes}, tuple(votes), seats, tuple(steps))
    quota = {p: Fraction(v * seats, total) for p, v in votes.items()}
    out = {p: int(q) for p, q in quota.items()}
    for p, q in quota.items():
        steps.append(f"{p}: {votes[p]} × {seats} / {total} = {_fmt(q)} → {out[p]} Sitz(e), Rest {_fmt(q - out[p])}")
    free = seats - sum(out.values())
    winners, tied = _award([(q - out[p], p) for p, q in quota.items()], free)
    for p in winners:
        out[p] += 1
    steps.append(f"Nach Resten zu verteilen: {free}; vergeben an: {', '.join(winners) or 'niemanden'}.")
    if tied:
        steps.append(_lot_line(tied, free - len(winners)))
    steps.append("Ergebnis: " + ", ".join(f"{p} {n}" for p, n in out.items()) + ".")
    return Distribution(out, tuple(tied), free - len(winners) if tied else 0, tuple(steps))


def dhondt(votes: Mapping[str, int], seats: int) -> Distribution:
    """d'Hondt: the seats go to the highest quotients votes / 1, 2, 3, …; equal quotients at the boundary: a lot."""
    steps = [f"d'Hondt: {seats} Sitze, Höchstzahlen Stimmen / 1, 2, 3, …"]
    ranked = [(Fraction(v, d), p) for p, v in votes.items() for d in range(1, seats + 1)]
    ranked = [(q, p) for q, p in ranked if q > 0]
    winners, tied = _award(ranked, seats)
    out = {p: 0 for p in votes}
    for i, p in enumerate(winners, 1):
        out[p] += 1
        steps.append(f"Sitz {i}: {p} (Höchstzahl {_fmt(Fraction(votes[p], out[p]))})")
    lot_seats = seats - len(winners)
    if tied:
        steps.append(_lot_line(sorted(set(tied), key=list(votes).index), lot_seats))
    steps.append("Ergebnis: " + ", ".join(f"{p} {n}" for p, n in out.items()) + ".")
    lot = tuple(sorted(set(tied), key=list(votes).index))
    return Distribution(out, lot, lot_seats if tied else 0, tuple(steps))


ELECTED, RUNOFF, LOT, NONE = "elected", "runoff", "lot", "none"


@dataclass(frozen=True)
class Election:
    outcome: str  # ELECTED, RUNOFF (between `candidates`), LOT (among `candidates`), NONE
    elected: str | None = None
    candidates: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()


def election(votes: Mapping[str, int], no: int = 0, runoff: bool = False) -> Election:
    """One person on paper. First ballot: elected with more than half of the valid votes (votes for candidates
    plus `no`; invalid ballots are not passed in), else a runoff between the two leading (a tie for a place in
    the runoff: a lot decides who enters it). Runoff (runoff=True): most votes wins; a tie: a lot is due."""
    ranked = sorted(votes.items(), key=lambda cv: -cv[1])
    valid = sum(votes.values()) + no
    steps = [f"Gültige Stimmen {valid}: " + ", ".join(f"{c} {v}" for c, v in ranked)
             + (f", Nein {no}" if no else "") + "."]
    if not ranked or valid == 0:
        steps.append("Keine gültigen Stimmen: niemand ist gewählt.")
        return Election(NONE, steps=tuple(steps))
    top, best = ranked[0]
    if runoff:
        tied = [c for c, v in ranked if v == best]
        if len(tied) > 1:
            steps.append(f"Stichwahl: Stimmengleichheit zwischen {', '.join(tied)}; Los erforderlich.")
            return Election(LOT, None, tuple(tied), tuple(steps))
        steps.append(f"Stichwahl: {top} hat die meisten Stimmen und ist gewählt.")
        return Election(ELECTED, top, (top,), tuple(steps))
    if 2 * best > valid:
        steps.append(f"{top} hat mit {best} mehr als die Hälfte von {valid} und ist gewählt.")
        return Election(ELECTED, top, (top,), tuple(steps))
    steps.append(f"Niemand hat mehr als die Hälfte von {valid} Stimmen.")
    if len(ranked) < 2:
        return Election(NONE, steps=tuple(steps))
    second = ranked[1][1]
    if best == second:
        tied = [c for c, v in ranked if v == best]
        if len(tied) == 2:
            steps.append(f"Stichwahl zwischen {tied[0]} und {tied[1]}.")
            return Election(RUNOFF, None, tuple(tied), tuple(steps))
    else:
        tied = [c for c, v in ranked if v == second]
        if len(tied) == 1:
            steps.append(f"Stichwahl zwischen {top} und {tied[0]}.")
            return Election(RUNOFF, None, (top, tied[0]), tuple(steps))
    steps.append(f"Stimmengleichheit um den Platz in der Stichwahl zwischen {', '.join(tied)}; Los erforderlich.")
    return Election(LOT, None, tuple(tied), tuple(steps))
