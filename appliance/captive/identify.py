"""Who is this client? The adapter that reads what the one device rule (appliance.rules.device) needs.

IP → MAC (DHCP lease, checked against the kernel's neighbour entry; else that entry) → the `stations` row of
that MAC, the live admissions of that (MAC, IP), the active session's members → rules.device.resolve. The
person comes from the keyid hostapd reported for the connected station (the member's personal Wi-Fi key);
where no radio of ours reports one (external access points), from a live admission that the member's personal
code created for exactly this (MAC, IP) in the active session (captive.codes). The MAC is merely the link
between the IP the web app sees and those rows: phones randomise it, so it is never used as anybody's identity
on its own.

The presence daemon and the technicians' dashboard ask the same rule through `Records` (read once per round
or page, then resolve many devices without further queries).
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from appliance.captive import neighbours
from appliance.config import Config
from appliance.monitor import leases as leases_mod
from appliance.rules import device as rule
from appliance.sessions import service

log = logging.getLogger(__name__)
PROC_ARP = Path("/proc/net/arp")


@dataclass(frozen=True)
class Device:
    ip: str
    mac: str | None  # lowercase; None when neither the lease file nor ARP knows the IP
    kind: str  # 'member' | 'guest' | 'unknown'
    member: service.Member | None
    admitted: bool
    keyid: str | None = None  # the connected station's keyid; None: no radio of ours knows the device
    # The active session's id as read with the device's rows (one snapshot); session_read False: not read here
    # (a Device built by hand), ask sessions.service.active_session.
    session_id: int | None = None
    session_read: bool = False


class LeaseCache:
    """The lease file's text, re-read only when it changed. dnsmasq replaces it by rename, so the inode
    changes too; (inode, mtime_ns, size) catches both rename and in-place rewrites.

    While a hall joins, the file changes with nearly every request: so a lookup does not parse the whole
    file but finds the one line with the address (a C-speed substring search) and parses only that."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: dict[Path, tuple[tuple[int, int, int], str]] = {}

    def text(self, path: Path) -> str:
        try:
            st = os.stat(path)
        except OSError:
            return ""
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        with self._lock:
            cached = self._files.get(path)
            if cached and cached[0] == stamp:
                return cached[1]
        try:
            text = Path(path).read_text(errors="replace")
        except OSError:
            return ""
        with self._lock:
            self._files[path] = (stamp, text)
        return text

    def get(self, path: Path) -> list[leases_mod.Lease]:
        return leases_mod.parse_leases(self.text(path))

    def lease_for_ip(self, path: Path, ip: str, now: float) -> leases_mod.Lease | None:
        text = self.text(path)
        lines = []
        start = text.find(f" {ip} ")
        while start != -1:
            begin = text.rfind("\n", 0, start) + 1
            end = text.find("\n", start)
            lines.append(text[begin:end if end != -1 else len(text)])
            start = text.find(f" {ip} ", end) if end != -1 else -1
        return leases_mod.lease_for_ip(leases_mod.parse_leases("\n".join(lines)), ip, now=now)


LEASES = LeaseCache()


def _neighbour(cfg: Config, ip: str, arp_path: Path) -> str | None:
    """The kernel's neighbour entry for `ip`: one netlink answer for the clients' interface; /proc/net/arp (the whole
    table as text) where netlink cannot be asked, and always when a test names another file."""
    if arp_path == PROC_ARP:
        try:
            return neighbours.lookup(cfg.interface, ip)
        except neighbours.Unsupported:
            pass
    try:
        return leases_mod.arp_line_mac(Path(arp_path).read_text(errors="replace"), ip)
    except OSError:
        return None


def mac_for_ip(cfg: Config, ip: str, arp_path: Path = PROC_ARP, cache: LeaseCache = LEASES) -> str | None:
    """The device behind an address: the MAC of its DHCP lease — but only if the kernel's neighbour entry for
    the address (where the box's answers go) names the same device. A phone that takes another member's address
    keeps its own MAC: its TCP handshake made the box's neighbour entry point to it, while the lease names the
    other member's device; such a request is nobody's (None), never the lease holder's (on Wi-Fi with a key
    per station a MAC cannot be taken over, an IP address can). Without a lease (external access points,
    static addresses, a lease file not yet written) the neighbour entry alone."""
    neighbour = _neighbour(cfg, ip, arp_path)
    lease = cache.lease_for_ip(cfg.leases_file, ip, now=time.time())
    if lease is None:
        return neighbour
    if neighbour is not None and neighbour != lease.mac.lower():
        log.warning("Adresse %s wird von einem anderen Gerät benutzt als dem, das sie per DHCP erhielt: "
                    "nicht erkannt", ip)
        return None
    return lease.mac


def roster(db: sqlite_utils.Database) -> rule.Roster | None:
    """The active session's members for the rule (None: no session is active)."""
    active = service.active_session(db)
    return rule.Roster.of(active.id, service.members(db, active.id)) if active is not None else None


def station(db: sqlite_utils.Database, mac: str) -> rule.Station | None:
    row = db.execute("SELECT keyid, connected FROM stations WHERE mac = ?", [mac.lower()]).fetchone()
    return rule.Station(row[0] or None, bool(row[1])) if row else None


def _admission(row: tuple) -> rule.Admission:
    return rule.Admission(row[0], row[1], int(row[2]), int(row[3]) if row[3] is not None else None, row[4] is not None)


def admissions_of(db: sqlite_utils.Database, mac: str, ip: str) -> list[rule.Admission]:
    """The live admissions of exactly this (MAC, IP)."""
    rows = db.execute("SELECT mac, ip, session_id, member_id, revoked_at FROM admissions "
                      "WHERE mac = ? AND ip = ? AND revoked_at IS NULL", [mac.lower(), ip]).fetchall()
    return [_admission(r) for r in rows]


# Everything one device can be named by, in one statement (the portal's hot path: every member request asks it):
# its station row, its live admissions for exactly (MAC, IP), the active session's id. Tagged rows: 's' station,
# 'a' admission, 'x' the active session.
_INPUTS = ("SELECT 's', keyid, connected, NULL, NULL FROM stations WHERE mac = ? "
           "UNION ALL SELECT 'a', ip, session_id, member_id, revoked_at FROM admissions "
           "WHERE mac = ? AND ip = ? AND revoked_at IS NULL "
           "UNION ALL SELECT 'x', id, NULL, NULL, NULL FROM (SELECT id FROM sessions WHERE active = 1 LIMIT 1)")


def resolve(db: sqlite_utils.Database, mac: str | None, ip: str | None) -> rule.Identity:
    """The rule's answer for one device, read from the database now (the portal's hot path: only the rows
    this device can be named by, not the whole member list; two statements)."""
    return _resolve(db, mac, ip)[0]


def _resolve(db: sqlite_utils.Database, mac: str | None, ip: str | None) -> tuple[rule.Identity, int | None]:
    """resolve, and the active session's id read in the same statement."""
    if mac is None:
        active = service.active_session(db)
        return rule.resolve(None, ip, None, (), None), active.id if active is not None else None
    mac = mac.lower()
    sta, found, active_id = None, [], None
    for tag, a, b, c, d in db.execute(_INPUTS, [mac, mac, ip or ""]).fetchall():
        if tag == "s":
            sta = rule.Station(a or None, bool(b))
        elif tag == "a":
            if ip:
                found.append(rule.Admission(mac, a, int(b), int(c) if c is not None else None, d is not None))
        else:
            active_id = int(a)
    people = None
    if active_id is not None:
        wanted = [a.member_id for a in found if a.member_id is not None]
        keyid = sta.keyid if sta is not None else None
        people = rule.Roster.of(active_id, service.members_named(db, active_id, keyid, wanted))
    return rule.resolve(mac, ip, sta, found, people), active_id


class Records:
    """Everything the rule reads, loaded once (the presence daemon per round, the dashboard per page): the
    active session's members, every live admission and every station row. `resolve` then costs no query.
    The members are read at the first `resolve` that needs them: a presence round in which no station, lease
    or admission changed resolves nobody and so does not build the roster (300 members: most of its cost)."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db
        self.admissions: dict[tuple[str, str], list[rule.Admission]] = {}
        for row in db.execute("SELECT mac, ip, session_id, member_id, revoked_at FROM admissions "
                              "WHERE revoked_at IS NULL").fetchall():
            adm = _admission(row)
            self.admissions.setdefault((adm.mac.lower(), adm.ip), []).append(adm)
        self.stations = {r[0].lower(): rule.Station(r[1] or None, bool(r[2]))
                         for r in db.execute("SELECT mac, keyid, connected FROM stations").fetchall()}

    @functools.cached_property
    def roster(self) -> rule.Roster | None:
        return roster(self._db)

    def resolve(self, mac: str | None, ip: str | None, station: rule.Station | None = None,
                admissions: list[rule.Admission] | None = None) -> rule.Identity:
        """station: the association as the caller saw it (a snapshot); default: the `stations` row.
        admissions: rows the caller holds besides the loaded ones (a row newer than this load)."""
        if mac is None:
            return rule.resolve(None, ip, None, (), self.roster)
        mac = mac.lower()
        found = station if station is not None else self.stations.get(mac)
        rows = self.admissions.get((mac, ip or ""), []) + list(admissions or [])
        return rule.resolve(mac, ip, found, rows, self.roster)


def identify(db: sqlite_utils.Database, cfg: Config, ip: str, arp_path: Path = PROC_ARP) -> Device:
    mac = mac_for_ip(cfg, ip, arp_path)
    who, active_id = _resolve(db, mac, ip)
    return Device(ip, mac, who.kind, who.member, who.admitted, who.keyid, active_id, True)
