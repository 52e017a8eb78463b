"""Who is this client? IP → MAC → connected station's keyid → member of the active session.

The person comes from the keyid hostapd reported for the currently connected station (the member's
personal Wi-Fi key). Where no radio of ours reports one (external access points), from a live admission that
the member's personal code created for exactly this (MAC, IP) in the active session (captive.codes). The
MAC is merely the link between the IP the web app sees and those rows: phones randomise it, so it is never
used as anybody's identity on its own.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from appliance.captive import admission
from appliance.captive.keys import GUEST_KEYID
from appliance.config import Config
from appliance.monitor import leases as leases_mod
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


def mac_for_ip(cfg: Config, ip: str, arp_path: Path = PROC_ARP, cache: LeaseCache = LEASES) -> str | None:
    lease = cache.lease_for_ip(cfg.leases_file, ip, now=time.time())
    if lease is not None:
        return lease.mac
    # External access points, static addresses or a lease file not yet written: the kernel's ARP table.
    try:
        text = Path(arp_path).read_text(errors="replace")
    except OSError:
        return None
    return leases_mod.arp_mac_for_ip(leases_mod.parse_proc_arp(text), ip)


def station_keyid(db: sqlite_utils.Database, mac: str) -> str | None:
    row = db.execute("SELECT keyid FROM stations WHERE mac = ? AND connected = 1", [mac]).fetchone()
    return row[0] if row and row[0] else None


def code_member(db: sqlite_utils.Database, mac: str, ip: str) -> service.Member | None:
    """The member a personal code admitted this very (MAC, IP) pair as, while that admission is live and its
    session active. Another IP on the same MAC, a revoked admission or an old session name nobody."""
    row = db.execute(
        "SELECT a.member_id FROM admissions a JOIN sessions s ON s.id = a.session_id AND s.active = 1 "
        "JOIN members m ON m.id = a.member_id AND m.session_id = a.session_id "
        "WHERE a.mac = ? AND a.ip = ? AND a.revoked_at IS NULL AND a.member_id IS NOT NULL LIMIT 1",
        [mac.lower(), ip]).fetchone()
    return service.get_member(db, int(row[0])) if row else None


def identify(db: sqlite_utils.Database, cfg: Config, ip: str, arp_path: Path = PROC_ARP) -> Device:
    mac = mac_for_ip(cfg, ip, arp_path)
    if mac is None:
        return Device(ip, None, "unknown", None, False)
    admitted = admission.is_admitted(db, mac, ip)
    keyid = station_keyid(db, mac)
    if keyid is None:
        # No hostapd of ours saw it (external AP, cable, or the daemon lags): a member only if their personal
        # code admitted this pair; else a guest with a Continue step (and the code field).
        member = code_member(db, mac, ip) if admitted else None
        if member is not None:
            return Device(ip, mac, "member", member, admitted)
        return Device(ip, mac, "unknown", None, admitted)
    if keyid == GUEST_KEYID:
        return Device(ip, mac, "guest", None, admitted, keyid)
    member = service.member_by_keyid(db, keyid)
    active = service.active_session(db)
    if member is None or active is None or member.session_id != active.id:
        # A stale keyid (rotated away, or another session's card): never greet anybody by it.
        return Device(ip, mac, "unknown", None, admitted, keyid)
    return Device(ip, mac, "member", member, admitted, keyid)
