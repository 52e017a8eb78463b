"""Which member is this device: THE rule, used by the portal, the presence daemon and the technicians' dashboard.

Plain records in, one answer out (no SQL, no sockets; the adapter that reads the records is
appliance.captive.identify). A device is a MAC, and where known the IP it uses. Its person is, in order:

1. **The keyid of its Wi-Fi association** (a connected station of one of our radios): hostapd reports which
   personal key the device used. A keyid of a member of the active session names that member; the guest
   key names a guest; any other keyid (rotated away, another session's card) names nobody, and no code
   admission can overrule a keyid: a device on the guest key stays a guest.
2. Only when no radio of ours reports a keyid (external access points, cable, or the radio daemon lags):
   **a live admission that a personal code created for exactly this (MAC, IP) in the active session.**
   The same MAC at another IP, a revoked admission, one of another session or of a member who is no longer
   on the active list name nobody.
3. Otherwise the device is unknown (the portal offers guests their Continue step and the code field).

Never by MAC alone: phones randomise MACs per network (iOS 18 may rotate them during a session), and a
MAC is easy to spoof. A device that changes its MAC is a new device: named again at once by its keyid (the
key stays the same), or, behind an external access point, only after its code is entered again.

`admitted` says whether the device is let through for the active session: a live admission for exactly
this (MAC, IP) of the active session. A live row left over from another session admits nobody (the
firewall is resynchronised when a session is activated; admission.admit replaces such a row).

What each caller knows, and how it maps to the inputs:
- portal (captive.identify): the request's IP → MAC from the DHCP lease or ARP → the `stations` row of that
  MAC and the live admissions of that (MAC, IP).
- presence daemon (presence.sources), by source:
  radio connect  – the station with its keyid; the IP from the DHCP lease of that MAC, if any (needed only
                   when the station has no keyid);
  radio leave    – the station as it was while connected (its keyid before the disconnect), so the leave is
                   booked to whoever the device was;
  DHCP lease     – the lease's (MAC, IP) and the station of that MAC;
  admission      – the new admission row, the MAC's current IP (its lease's, else the row's) and station;
  ARP answer     – the probed (IP, MAC) pair and the station of that MAC.
  With no IP (no lease yet) only a keyid can name the member.
- monitor (monitor.view): each client of the snapshot is a connected station (MAC, keyid) with the IP of
  its lease.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from appliance.captive.keys import GUEST_KEYID  # pure: the session's shared guest key


@dataclass(frozen=True)
class Station:
    """A radio association (a `stations` row, a monitor snapshot client)."""

    keyid: str | None
    connected: bool = True


@dataclass(frozen=True)
class Admission:
    """An `admissions` row: the pair the firewall lets through, for whom, in which session."""

    mac: str
    ip: str
    session_id: int
    member_id: int | None  # None: a guest admission
    revoked: bool = False


@dataclass(frozen=True)
class Roster:
    """The active session as the rule needs it: its members by keyid and by id (any objects with `.id`)."""

    session_id: int
    by_keyid: Mapping[str, Any]
    by_id: Mapping[int, Any]

    @classmethod
    def of(cls, session_id: int, members: Iterable[Any]) -> Roster:
        people = list(members)
        return cls(session_id, {m.keyid: m for m in people}, {m.id: m for m in people})


@dataclass(frozen=True)
class Identity:
    kind: str  # 'member' | 'guest' | 'unknown'
    member: Any = None  # the roster's member object, for kind 'member'
    admitted: bool = False
    keyid: str | None = None  # the connected station's keyid; None: no radio of ours knows the device
    by: str = ""  # why: 'keyid' | 'guest-key' | 'code' | 'stale-keyid' | 'no-mac' | 'nothing'

    @property
    def member_id(self) -> int | None:
        return self.member.id if self.member is not None else None


def _norm(mac: str | None) -> str | None:
    return mac.strip().lower() if mac else None


def resolve(mac: str | None, ip: str | None, station: Station | None, admissions: Iterable[Admission],
            roster: Roster | None) -> Identity:
    """Who this device is (see the module docstring).

    mac/ip: the device; ip None when no lease or ARP entry knows it (then no admission can match).
    station: the radio association of this MAC (connected or not; None: no radio of ours has seen it).
    admissions: admission rows the caller found for this device; only a live one for exactly (mac, ip) of
    the active session counts, whatever else is passed. roster: the active session, None if none is active.
    """
    mac = _norm(mac)
    if mac is None:
        return Identity("unknown", by="no-mac")
    live = None
    if ip and roster is not None:
        live = next((a for a in admissions if not a.revoked and _norm(a.mac) == mac and a.ip == ip
                     and a.session_id == roster.session_id), None)
    admitted = live is not None
    keyid = station.keyid if station is not None and station.connected and station.keyid else None
    if keyid is None:
        member = roster.by_id.get(live.member_id) if live is not None and live.member_id is not None else None
        if member is not None:
            return Identity("member", member, admitted, None, "code")
        return Identity("unknown", None, admitted, None, "nothing")
    if keyid == GUEST_KEYID:
        return Identity("guest", None, admitted, keyid, "guest-key")
    member = roster.by_keyid.get(keyid) if roster is not None else None
    if member is None:
        # A stale keyid (rotated away, or another session's card): never greet anybody by it.
        return Identity("unknown", None, admitted, keyid, "stale-keyid")
    return Identity("member", member, admitted, keyid, "keyid")
