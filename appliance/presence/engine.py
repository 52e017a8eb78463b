"""Who counts as present: the ONE place with the rules, as pure functions over observations.

A member is present while any of their devices counts, or the clerk says so. A device counts while it is
linked (hostapd reports it associated, or DHCP/ARP/the portal just saw it) or within the grace period after
its last evidence — sleeping phones drop off the Wi-Fi for minutes and must not "leave". The device key is
a MAC only as a *device*; which member it is comes from the one device rule (rules.device: the personal key's
keyid, else a code admission of exactly that MAC and IP), never from the MAC alone.

Leaving is recorded at the last evidence (when the phone really went), detected grace seconds later.
A box restart ("boot") keeps every device counting for one more grace period from the boot, so a short
outage does not split everyone's attendance; devices that do not come back leave at their last evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

KINDS = ("connect", "disconnect", "seen", "lost", "boot", "correct")


@dataclass(frozen=True)
class Obs:
    at: float  # unix time
    kind: str  # one of KINDS
    device: str = ""  # device key (MAC); empty for boot/correct
    source: str = ""  # hostapd | dhcp | arp | portal | clerk | boot
    status: str = ""  # correct: present | absent | auto


@dataclass(frozen=True)
class Device:
    linked: bool
    last_seen: float
    hold_until: float = 0.0
    source: str = ""


@dataclass(frozen=True)
class MemberState:
    devices: dict[str, Device] = field(default_factory=dict)
    override: str | None = None  # clerk correction: 'present' | 'absent' | None (devices decide)
    present: bool = False
    since: float | None = None  # start of the current interval


@dataclass(frozen=True)
class Change:
    kind: str  # 'arrive' | 'leave'
    at: float
    source: str
    corrected: bool = False


def counts(dev: Device, now: float, grace: float) -> bool:
    return dev.linked or now < dev.last_seen + grace or now < dev.hold_until


def last_evidence(state: MemberState) -> float | None:
    return max((d.last_seen for d in state.devices.values()), default=None)


def should_be_present(state: MemberState, now: float, grace: float) -> bool:
    if state.override == "present":
        return True
    if state.override == "absent":
        return False
    return any(counts(d, now, grace) for d in state.devices.values())


def held_since(state: MemberState, now: float, grace: float) -> float | None:
    """The last evidence of a member who still counts as present only because the grace period (or a restart's
    hold) has not run out: no device is linked now and the clerk has not decided. The attendance page shows
    it as "zuletzt gesehen vor N min" — the rules are still deciding whether the member left. None otherwise
    (a linked device, a clerk's override, not present, or the grace already over and the leave due)."""
    if state.override is not None or not state.present:
        return None
    if any(d.linked for d in state.devices.values()):
        return None
    if not should_be_present(state, now, grace):
        return None
    return last_evidence(state)


def _settle(state: MemberState, now: float, grace: float, source: str, corrected: bool = False
            ) -> tuple[MemberState, list[Change]]:
    want = should_be_present(state, now, grace)
    if want == state.present:
        return state, []
    if want:
        return replace(state, present=True, since=now), [Change("arrive", now, source, corrected)]
    # Leaving: at the last evidence, unless the clerk says "absent now" (then now), never before arrival.
    at = now if corrected else (last_evidence(state) or now)
    at = max(at, state.since or at)
    return replace(state, present=False, since=None), [Change("leave", min(at, now), source, corrected)]


def step(state: MemberState, obs: Obs, grace: float) -> tuple[MemberState, list[Change]]:
    """Apply one observation; returns the new state and the interval changes it causes (0 or 1)."""
    if obs.kind not in KINDS:
        raise ValueError(f"unbekannte Beobachtung {obs.kind!r}")
    devices = dict(state.devices)
    if obs.kind in ("connect", "seen"):
        old = devices.get(obs.device)
        devices[obs.device] = Device(True, max(obs.at, old.last_seen if old else obs.at),
                                     old.hold_until if old else 0.0, obs.source or obs.kind)
    elif obs.kind in ("disconnect", "lost"):
        old = devices.get(obs.device)
        if old is None:
            return state, []
        # hostapd's disconnect is itself evidence of the moment; a failed ARP probe is not.
        seen = obs.at if obs.kind == "disconnect" else old.last_seen
        devices[obs.device] = Device(False, max(seen, old.last_seen), old.hold_until, obs.source or obs.kind)
    elif obs.kind == "boot":
        devices = {k: Device(False, d.last_seen, obs.at + grace, d.source) for k, d in devices.items()}
    elif obs.kind == "correct":
        if obs.status not in ("present", "absent", "auto"):
            raise ValueError(f"unbekannte Korrektur {obs.status!r}")
        override = None if obs.status == "auto" else obs.status
        new = replace(state, devices=devices, override=override)
        return _settle(new, obs.at, grace, "clerk", corrected=obs.status != "auto")
    return _settle(replace(state, devices=devices), obs.at, grace, obs.source or obs.kind)


def tick(state: MemberState, now: float, grace: float) -> tuple[MemberState, list[Change]]:
    """Time passing: a grace period may run out. Forgets devices long gone (no evidence for 2 × grace)."""
    devices = {k: d for k, d in state.devices.items() if counts(d, now, 2 * grace)}
    new = replace(state, devices=devices) if len(devices) != len(state.devices) else state
    # Settle against the full state first: the leave time needs the last evidence of forgotten devices too.
    settled, changes = _settle(replace(state, devices=state.devices), now, grace, "grace")
    return replace(settled, devices=new.devices), changes


def next_change(state: MemberState, now: float, grace: float) -> float | None:
    """When time alone next changes this state: the earliest t >= now at which `tick(state, t, grace)` does
    something (a grace period or a restart's hold runs out and the member leaves; a device long gone is
    forgotten). `now` itself if a tick is already due; None if only an observation can change the state
    (a linked device keeps its member present, a clerk's override stands, nobody to forget).
    The daemon's tick asks this and opens a transaction only for members whose moment has come."""
    at: list[float] = []
    unlinked = [d for d in state.devices.values() if not d.linked]
    # A device is forgotten once it no longer counts for 2 × grace (see `tick`).
    at += [max(d.last_seen + 2 * grace, d.hold_until) for d in unlinked]
    if state.override is not None:
        if (state.override == "present") != state.present:
            at.append(now)
    elif state.present:
        if not any(d.linked for d in state.devices.values()):
            # Present only by grace or hold: leaves when the last of them runs out (at once without devices).
            at.append(max((max(d.last_seen + grace, d.hold_until) for d in unlinked), default=now))
    elif should_be_present(state, now, grace):
        at.append(now)  # counts but not yet present: arrives at the next tick
    return max(min(at), now) if at else None


def replay(observations: list[Obs], grace: float, until: float | None = None,
           start: MemberState | None = None) -> tuple[MemberState, list[Change]]:
    """Run a sequence of observations (sorted by time), ticking between them; for tests and recovery."""
    state, out = start or MemberState(), []
    for obs in sorted(observations, key=lambda o: o.at):
        if until is not None and obs.at > until:
            break
        state, ch = tick(state, obs.at, grace)
        out += ch
        state, ch = step(state, obs, grace)
        out += ch
    if until is not None:
        state, ch = tick(state, until, grace)
        out += ch
    return state, out
