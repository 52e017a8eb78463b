"""Presence rules as pure functions over event sequences."""

from __future__ import annotations

import pytest

from appliance.presence.engine import Device, MemberState, Obs, held_since, next_change, replay, step, tick

G = 60.0  # grace period
A, B = "02:aa:00:00:00:01", "02:bb:00:00:00:02"  # two devices of the same member


def kinds(changes):
    return [(c.kind, c.at) for c in changes]


def test_arrive_then_leave_after_grace_recorded_at_last_evidence():
    state, ch = replay([Obs(100, "connect", A, "hostapd"), Obs(200, "disconnect", A, "hostapd")], G, until=259)
    assert kinds(ch) == [("arrive", 100)] and state.present
    state, ch = replay([Obs(100, "connect", A), Obs(200, "disconnect", A)], G, until=261)
    assert kinds(ch) == [("arrive", 100), ("leave", 200)] and not state.present


def test_sleep_and_wake_within_grace_is_one_interval():
    obs = [Obs(100, "connect", A), Obs(150, "disconnect", A), Obs(190, "connect", A)]  # asleep 40 s < grace
    state, ch = replay(obs, G, until=1000)
    assert kinds(ch) == [("arrive", 100)] and state.present


def test_sleep_longer_than_grace_splits_the_interval():
    obs = [Obs(100, "connect", A), Obs(150, "disconnect", A), Obs(400, "connect", A)]
    _state, ch = replay(obs, G, until=500)
    assert kinds(ch) == [("arrive", 100), ("leave", 150), ("arrive", 400)]


def test_two_devices_member_stays_while_either_counts():
    obs = [Obs(100, "connect", A), Obs(120, "connect", B), Obs(200, "disconnect", A), Obs(500, "disconnect", B)]
    state, ch = replay(obs, G, until=550)
    assert kinds(ch) == [("arrive", 100)]
    assert state.present and set(state.devices) == {B}  # B is in its grace; A, gone 2 × grace, is forgotten
    _state, ch = replay(obs, G, until=561)
    assert kinds(ch) == [("arrive", 100), ("leave", 500)]


def test_quiet_device_lost_by_arp_leaves_at_its_last_evidence():
    obs = [Obs(100, "seen", A, "dhcp"), Obs(300, "seen", A, "arp"), Obs(400, "lost", A, "arp")]
    _state, ch = replay(obs, G, until=359)
    assert kinds(ch) == [("arrive", 100)]
    _state, ch = replay(obs, G, until=461)
    assert kinds(ch) == [("arrive", 100), ("leave", 300)]


def test_clerk_correction_overrides_devices_until_reset():
    obs = [Obs(100, "correct", status="present", source="clerk")]  # phone at home, member is here
    state, ch = replay(obs, G, until=5000)
    assert kinds(ch) == [("arrive", 100)] and ch[0].corrected and state.present
    obs += [Obs(200, "connect", A), Obs(300, "correct", status="absent"), Obs(310, "connect", A)]
    state, ch = replay(obs, G, until=400)
    assert kinds(ch) == [("arrive", 100), ("leave", 300)] and ch[1].corrected and not state.present
    obs += [Obs(500, "correct", status="auto")]  # back to the devices: A is linked
    _state, ch = replay(obs, G, until=600)
    assert kinds(ch)[-1] == ("arrive", 500)


def test_box_restart_in_the_middle_keeps_devices_that_come_back():
    before, ch = replay([Obs(100, "connect", A), Obs(100, "connect", B)], G, until=1000)
    assert kinds(ch) == [("arrive", 100)]
    # The box is down from 1000 to 1100; on boot nothing is linked any more.
    after, ch = replay([Obs(1100, "boot", source="boot"), Obs(1130, "connect", A)], G, until=2000, start=before)
    assert ch == [] and after.present  # A came back within the grace after boot: one interval
    gone, ch = replay([Obs(1100, "boot", source="boot")], G, until=1161, start=before)
    assert kinds(ch) == [("leave", 100)] and not gone.present  # nothing came back: left at the last evidence


def test_disconnect_of_unknown_device_and_bad_input():
    state, ch = step(MemberState(), Obs(1, "disconnect", A), G)
    assert ch == [] and state == MemberState()
    with pytest.raises(ValueError):
        step(MemberState(), Obs(1, "teleport", A), G)
    with pytest.raises(ValueError):
        step(MemberState(), Obs(1, "correct", status="maybe"), G)


def test_held_since_names_the_last_evidence_while_the_grace_still_holds_a_member():
    """"zuletzt gesehen vor N min": only while the rules still count a member whose devices are all quiet."""
    linked, _ = replay([Obs(100, "connect", A)], G, until=200)
    assert held_since(linked, 200, G) is None  # a linked device: simply present
    quiet, _ = replay([Obs(100, "connect", A), Obs(130, "disconnect", A)], G, until=150)
    assert quiet.present and held_since(quiet, 150, G) == 130  # gone from the Wi-Fi, still counted
    two, _ = replay([Obs(100, "connect", A), Obs(110, "connect", B), Obs(120, "disconnect", A)], G, until=150)
    assert held_since(two, 150, G) is None  # the other device is still linked
    left, _ = replay([Obs(100, "connect", A), Obs(130, "disconnect", A)], G, until=130 + G + 1)
    assert not left.present and held_since(left, 130 + G + 1, G) is None  # the grace ran out: left
    clerk, _ = replay([Obs(100, "connect", A), Obs(130, "disconnect", A), Obs(140, "correct", status="present")],
                      G, until=150)
    assert held_since(clerk, 150, G) is None  # the clerk decided
    booted, _ = replay([Obs(100, "connect", A), Obs(1100, "boot", source="boot")], G, until=1110)
    assert booted.present and held_since(booted, 1110, G) == 100  # after a restart: held, seen before it


# --- when time alone next changes a state (the daemon ticks only members whose moment has come) -------------

NEXT = [
    # (what, state, now, next change)
    ("linked device: only an observation can change it",
     MemberState({A: Device(True, 100)}, None, True, 100), 500, None),
    ("away, grace runs out at last evidence + grace",
     MemberState({A: Device(False, 200)}, None, True, 100), 210, 260),
    ("two away devices: the later one keeps the member",
     MemberState({A: Device(False, 200), B: Device(False, 230)}, None, True, 100), 210, 290),
    ("a restart's hold outlasts the grace",
     MemberState({A: Device(False, 200, hold_until=400)}, None, True, 100), 210, 400),
    ("one linked, one away: the away one is forgotten after 2 × grace, nobody leaves",
     MemberState({A: Device(True, 100), B: Device(False, 200)}, None, True, 100), 210, 320),
    ("left, device still remembered: forgotten after 2 × grace",
     MemberState({A: Device(False, 200)}, None, False, None), 270, 320),
    ("left long ago, nothing remembered",
     MemberState({}, None, False, None), 270, None),
    ("clerk says present, member is: stands",
     MemberState({}, "present", True, 100), 270, None),
    ("clerk says absent, member still open: due now",
     MemberState({A: Device(True, 100)}, "absent", True, 100), 270, 270),
    ("present without any device or override: due now",
     MemberState({}, None, True, 100), 270, 270),
    ("deadline already passed: due now, not in the past",
     MemberState({A: Device(False, 200)}, None, True, 100), 300, 300),
    ("counts but not present: arrives at the next tick",
     MemberState({A: Device(False, 200)}, None, False, None), 230, 230),
]


@pytest.mark.parametrize(("what", "state", "now", "expected"), NEXT, ids=[n[0] for n in NEXT])
def test_next_change(what, state, now, expected):
    assert next_change(state, now, G) == expected


@pytest.mark.parametrize(("what", "state", "now", "expected"), NEXT, ids=[n[0] for n in NEXT])
def test_next_change_is_exactly_when_tick_first_does_something(what, state, now, expected):
    """The promise the daemon relies on: ticking before next_change changes nothing, ticking at it does."""
    times = [now + x / 2 for x in range(0, 2 * 400)]
    first = next((t for t in times if tick(state, t, G)[0] != state), None)
    assert first == expected
