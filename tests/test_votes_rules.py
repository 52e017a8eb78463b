"""The vote rules (appliance.rules.votes) as tables: eligibility at the opening, casting while the vote is open
(arrivals, deputies), the majority presets with the statutory cases, the quorum status, Hare/Niemeyer, d'Hondt
and the election of one person on paper."""

from __future__ import annotations

import pytest

from appliance.rules import votes as v
from appliance.rules.votes import ELECTED, LOT, NONE, RUNOFF, Person

ANNA = Person(1, "member", name="Anna")
BERND_ABSENT = Person(2, "member", present=False, name="Bernd")
CARLA_NO_RIGHT = Person(3, "member", voting=False, name="Carla")
DORA_DEPUTY = Person(4, "deputy", voting=False, name="Dora")  # stands in for Bernd (absent)
EMIL_DEPUTY = Person(5, "deputy", name="Emil")  # stands in for Anna (present)
FRIDA_DEPUTY = Person(6, "deputy", name="Frida")  # recorded for nobody
GERD_DEPUTY = Person(7, "deputy", name="Gerd")  # second deputy for Bernd
STAFF = Person(8, "administration", name="Amt")
GUEST = Person(9, "guest", name="Presse")
HANNA = Person(10, "member", name="Hanna")  # conflicted
PEOPLE = (ANNA, BERND_ABSENT, CARLA_NO_RIGHT, DORA_DEPUTY, EMIL_DEPUTY, FRIDA_DEPUTY, GERD_DEPUTY, STAFF, GUEST,
          HANNA)
DEPUTIES = {4: 2, 5: 1, 7: 2}
CONFLICTED = {10}


def test_eligibility_at_the_opening():
    out = v.eligibility(PEOPLE, DEPUTIES, CONFLICTED)
    assert out.eligible == {1, 4}
    assert {pid: d.code for pid, d in out.refused.items()} == {
        2: "absent", 3: "no_voting_right", 5: "member_present", 6: "not_standing_in", 7: "stand_in_taken",
        8: "administration", 9: "guest", 10: "conflicted"}
    assert out.refused[10].text == "Hanna ist bei diesem Punkt befangen und nimmt an der Abstimmung nicht teil."


@pytest.mark.parametrize("people, deputies, conflicted, eligible", [
    ((), {}, (), set()),  # nobody on the list
    ((STAFF, GUEST), {}, (), set()),  # nobody eligible
    ((ANNA, HANNA), {}, {1, 10}, set()),  # all conflicted
    ((Person(2, "member", present=False, voting=False), DORA_DEPUTY), {4: 2}, (), set()),  # member without a vote
    ((ANNA, EMIL_DEPUTY), {5: 1}, {1}, set()),  # conflicted member present: the deputy does not vote for them
])
def test_eligibility_edges(people, deputies, conflicted, eligible):
    assert v.eligibility(people, deputies, conflicted).eligible == eligible


OPEN_ELIGIBLE = v.eligibility(PEOPLE, DEPUTIES, CONFLICTED).eligible  # {Anna, Dora for Bernd}
HERE = {1, 3, 4, 5, 6, 7, 8, 9, 10}  # as at the opening


@pytest.mark.parametrize("case, vote_open, person, present_now, voted, code", [
    ("eligible at the opening", True, 1, HERE, (), ""),
    ("vote closed", False, 1, HERE, (), "closed"),
    ("unknown device", True, None, HERE, (), "unknown"),
    ("eligible but has left", True, 1, HERE - {1}, (), "absent_now"),
    ("guest", True, 9, HERE, (), "guest"),
    ("administration", True, 8, HERE, (), "administration"),
    ("conflicted", True, 10, HERE, (), "conflicted"),
    ("absent member still away", True, 2, HERE, (), "absent"),
    # The case: Bernd arrives during the vote while Dora stands in for him since the opening.
    # Documented outcome: Dora keeps the ballot for this vote, Bernd does not vote in it (never both).
    ("member arrives, deputy stood in at the opening", True, 2, HERE | {2}, (), "deputy_votes"),
    ("the deputy keeps the ballot after the member arrives", True, 4, HERE | {2}, (), ""),
    ("a member who arrives during the vote may vote", True, 11, HERE | {11}, (), ""),
    ("a deputy arriving for an absent member may vote", True, 12, HERE | {12}, (), ""),
    ("a deputy arriving whose member has a ballot", True, 13, HERE | {13}, (), "member_present"),
    ("deputy stood in, member already voted (came and went)", True, 4, HERE, {2}, "member_voted"),
    ("member with a ballot leaves, their deputy tries to cast", True, 5, HERE - {1}, (), "member_has_ballot"),
    ("a lower-id deputy arrives for a member already stood in for", True, 0, HERE | {0}, (), "stand_in_taken"),
])
def test_may_cast(case, vote_open, person, present_now, voted, code):
    late_member = Person(11, "member", present=False, name="Ida")
    absent_member = Person(14, "member", present=False, name="Jan")
    late_deputy = Person(12, "deputy", present=False, name="Kai")  # for Jan (absent)
    late_deputy_for_anna = Person(13, "deputy", present=False, name="Lea")  # for Anna (has a ballot)
    late_deputy_for_bernd = Person(0, "deputy", present=False, name="Max")  # Dora stands in since the opening
    people = PEOPLE + (late_member, absent_member, late_deputy, late_deputy_for_anna, late_deputy_for_bernd)
    deputies = {**DEPUTIES, 12: 14, 13: 1, 0: 2}
    got = v.may_cast(vote_open, person, OPEN_ELIGIBLE, present_now, people, deputies, CONFLICTED, voted)
    assert got.code == code, case
    assert bool(got) == (code == "")


def test_the_arriving_member_is_told_why_in_german():
    d = v.may_cast(True, 2, OPEN_ELIGIBLE, HERE | {2}, PEOPLE, DEPUTIES, CONFLICTED)
    assert d.text == ("In dieser Abstimmung stimmt die bei der Eröffnung eingetragene Stellvertretung für Bernd; "
                      "ab der nächsten Abstimmung stimmt Bernd selbst.")


@pytest.mark.parametrize("preset, yes, no, abstain, statutory, accepted", [
    ("simple", 10, 9, 30, 0, True),
    ("simple", 10, 10, 0, 0, False),  # tie = rejected (§ 50 GO NRW)
    ("simple", 9, 10, 0, 0, False),
    ("simple", 1, 0, 40, 0, True),  # abstentions do not count
    ("simple", 0, 0, 41, 0, False),  # all abstain
    ("simple", 0, 0, 0, 0, False),  # nobody eligible / nobody voted
    ("two_thirds", 20, 10, 5, 0, True),  # exactly two thirds
    ("two_thirds", 19, 10, 0, 0, False),
    ("two_thirds", 2, 1, 0, 0, True),
    ("two_thirds", 0, 0, 7, 0, False),
    ("statutory", 26, 0, 24, 50, True),
    ("statutory", 25, 0, 0, 50, False),  # half is not a majority
    ("statutory", 26, 30, 0, 51, True),
    ("statutory", 25, 0, 0, 51, False),
    ("statutory", 0, 0, 0, 0, False),  # no statutory number given
])
def test_majority_presets(preset, yes, no, abstain, statutory, accepted):
    result = v.PRESETS[preset](yes, no, abstain, statutory)
    assert result.accepted is accepted
    assert result.code == preset
    assert result.text.endswith("angenommen." if accepted else "abgelehnt.")


def test_majority_sentences():
    assert v.simple(10, 10, 3).text == ("Ja 10, Nein 10, Enthaltungen 3; Enthaltungen zählen nicht. "
                                        "Stimmengleichheit (10 zu 10) gilt als Ablehnung: abgelehnt.")
    assert "niemand hat mit Ja oder Nein gestimmt" in v.simple(0, 0, 12).text
    assert "mindestens 20 Ja-Stimmen" in v.two_thirds(20, 10).text
    assert "mindestens 26 Ja-Stimmen" in v.statutory_majority(26, 0, 0, 51).text


@pytest.mark.parametrize("present, statutory, quorate, needed", [
    (26, 50, True, 26),
    (25, 50, False, 26),  # half is not more than half
    (26, 51, True, 26),
    (0, 51, False, 26),  # nobody eligible: informs, never blocks
])
def test_quorum(present, statutory, quorate, needed):
    q = v.quorum(frozenset(range(present)), statutory)
    assert (q.quorate, q.needed, q.present) == (quorate, needed, present)
    assert q.text.endswith("nicht beschlussfähig." if not quorate else ": beschlussfähig.")


def test_quorum_counts_the_eligible_set_conflicted_do_not_count():
    out = v.eligibility(PEOPLE, DEPUTIES, CONFLICTED)
    assert v.quorum(out.eligible, 3).present == 2  # Anna and Dora for Bernd; Hanna conflicted, Emil not


VOTES = {"A": 10000, "B": 6000, "C": 2500, "D": 1500}


def test_hare_niemeyer_known_result():
    d = v.hare_niemeyer(VOTES, 10)
    assert d.seats == {"A": 5, "B": 3, "C": 1, "D": 1}
    assert d.lot == () and d.lot_seats == 0
    assert "D: 1500 × 10 / 20000 = 0,7500 → 0 Sitz(e), Rest 0,7500" in d.steps
    assert d.steps[-1] == "Ergebnis: A 5, B 3, C 1, D 1."


def test_dhondt_known_result():
    d = v.dhondt(VOTES, 10)
    assert d.seats == {"A": 6, "B": 3, "C": 1, "D": 0}
    assert d.lot == ()
    assert d.steps[1] == "Sitz 1: A (Höchstzahl 10000,0000)"
    assert d.steps[-1] == "Ergebnis: A 6, B 3, C 1, D 0."


@pytest.mark.parametrize("method, votes, seats, decided, lot, lot_seats", [
    ("hare_niemeyer", {"A": 100, "B": 100}, 1, {"A": 0, "B": 0}, ("A", "B"), 1),
    ("hare_niemeyer", {"A": 300, "B": 100, "C": 100}, 3, {"A": 2, "B": 0, "C": 0}, ("B", "C"), 1),
    ("hare_niemeyer", {"A": 0, "B": 0}, 2, {"A": 0, "B": 0}, ("A", "B"), 2),
    ("dhondt", {"A": 100, "B": 100}, 1, {"A": 0, "B": 0}, ("A", "B"), 1),
    ("dhondt", {"A": 200, "B": 100, "C": 100}, 2, {"A": 1, "B": 0, "C": 0}, ("A", "B", "C"), 1),
    ("dhondt", {"A": 100, "B": 100}, 2, {"A": 1, "B": 1}, (), 0),  # a tie that fills exactly: no lot
])
def test_ties_are_flagged_for_a_lot(method, votes, seats, decided, lot, lot_seats):
    d = getattr(v, method)(votes, seats)
    assert (dict(d.seats), d.lot, d.lot_seats) == (decided, lot, lot_seats)
    assert any(line.startswith("Los erforderlich") for line in d.steps) == bool(lot)


@pytest.mark.parametrize("votes, no, runoff, outcome, elected, candidates", [
    ({"X": 26, "Y": 24}, 0, False, ELECTED, "X", ("X",)),
    ({"X": 25, "Y": 25}, 0, False, RUNOFF, None, ("X", "Y")),
    ({"X": 25, "Y": 20}, 6, False, RUNOFF, None, ("X", "Y")),  # no votes count as valid
    ({"X": 20, "Y": 15, "Z": 15}, 0, False, LOT, None, ("Y", "Z")),  # who enters the runoff
    ({"X": 10, "Y": 10, "Z": 10}, 0, False, LOT, None, ("X", "Y", "Z")),
    ({"X": 20, "Y": 19}, 0, True, ELECTED, "X", ("X",)),
    ({"X": 20, "Y": 20}, 0, True, LOT, None, ("X", "Y")),  # a tie in the runoff: lot due
    ({}, 0, False, NONE, None, ()),
])
def test_election_of_one_person(votes, no, runoff, outcome, elected, candidates):
    e = v.election(votes, no, runoff)
    assert (e.outcome, e.elected, e.candidates) == (outcome, elected, candidates)
    assert e.steps
