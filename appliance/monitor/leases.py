"""Pure parsers for dnsmasq's lease file and the kernel's ARP table.

dnsmasq lease file, one lease a line (dnsmasq src/lease.c, lease_update_file):
    <expiry epoch> <mac> <ip> <hostname or *> <client-id or *>
Quirks handled here:
- expiry 0 means an infinite lease (static `dhcp-host=...,infinite`);
- with DHCPv6 a `duid <server duid>` line follows the v4 leases, and v6 leases read
  `<expiry> <iaid> <ipv6> <hostname> <client duid>`: the second field is no MAC, so they are skipped;
- the MAC field may carry a hardware-type prefix for non-Ethernet clients (`06-aa:bb:...`): skipped too,
  nftables matches Ethernet addresses only.

/proc/net/arp:
    IP address  HW type  Flags  HW address  Mask  Device
Incomplete entries (flags 0x0, MAC 00:00:00:00:00:00) are skipped.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_ZERO_MAC = "00:00:00:00:00:00"


@dataclass(frozen=True)
class Lease:
    expiry: int  # epoch seconds; 0 = never expires
    mac: str  # lowercase
    ip: str
    hostname: str | None
    client_id: str | None

    def expired(self, now: float) -> bool:
        return self.expiry != 0 and self.expiry <= now


@dataclass(frozen=True)
class ArpEntry:
    ip: str
    mac: str
    device: str


def _ipv4(text: str) -> str | None:
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        return None


def parse_leases(text: str) -> list[Lease]:
    leases = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[0] == "duid":
            continue
        expiry, mac, ip = fields[0], fields[1].lower(), _ipv4(fields[2])
        if not expiry.isdigit() or ip is None or not _MAC_RE.match(mac):
            continue
        hostname = fields[3] if fields[3] != "*" else None
        client_id = fields[4] if len(fields) > 4 and fields[4] != "*" else None
        leases.append(Lease(int(expiry), mac, ip, hostname, client_id))
    return leases


def lease_for_ip(leases: list[Lease], ip: str, now: float | None = None) -> Lease | None:
    """The lease holding `ip`; with `now`, expired ones are ignored. The newest wins if several remain."""
    found = [lease for lease in leases if lease.ip == ip and (now is None or not lease.expired(now))]
    if not found:
        return None
    # 0 (infinite) sorts last on purpose: an infinite lease outranks any dated one.
    return max(found, key=lambda lease: float("inf") if lease.expiry == 0 else lease.expiry)


def parse_proc_arp(text: str) -> list[ArpEntry]:
    entries = []
    for line in text.splitlines()[1:]:  # first line is the column header
        fields = line.split()
        if len(fields) < 6:
            continue
        ip, flags, mac, device = _ipv4(fields[0]), fields[2], fields[3].lower(), fields[5]
        # ATF_COM (0x2) marks a completed entry; incomplete ones carry the zero MAC.
        if ip is None or mac == _ZERO_MAC or not _MAC_RE.match(mac):
            continue
        try:
            if not int(flags, 16) & 0x2:
                continue
        except ValueError:
            continue
        entries.append(ArpEntry(ip, mac, device))
    return entries


def arp_line_mac(text: str, ip: str) -> str | None:
    """The completed entry for one address in /proc/net/arp's text (None: none), without parsing the other
    lines: a request's hot path reads the table for its own address only."""
    start = text.find(f"\n{ip} ")
    if start == -1:
        return None
    end = text.find("\n", start + 1)
    line = text[start + 1:end if end != -1 else len(text)]
    return arp_mac_for_ip(parse_proc_arp("header\n" + line), ip)


def arp_mac_for_ip(entries: list[ArpEntry], ip: str) -> str | None:
    for entry in entries:
        if entry.ip == ip:
            return entry.mac
    return None


def pool_size(start: str, end: str) -> int:
    """Addresses in a dnsmasq `dhcp-range=<start>,<end>` (both ends included)."""
    return int(ipaddress.IPv4Address(end)) - int(ipaddress.IPv4Address(start)) + 1


def in_pool(leases: list[Lease], start: str | None, end: str | None) -> list[Lease]:
    """The leases inside the pool `start`..`end` (either open): static or out-of-range entries do not use it up.
    Separate from `active_leases` so a reader can filter once per lease-file change, not once per second."""
    lo = int(ipaddress.IPv4Address(start)) if start else None
    hi = int(ipaddress.IPv4Address(end)) if end else None
    if lo is None and hi is None:
        return list(leases)
    out = []
    for lease in leases:
        n = int(ipaddress.IPv4Address(lease.ip))
        if (lo is None or n >= lo) and (hi is None or n <= hi):
            out.append(lease)
    return out


def active_leases(leases: list[Lease], now: float, start: str | None = None, end: str | None = None) -> list[Lease]:
    """Unexpired leases, one per IP (dnsmasq keeps at most one line per address), optionally only those inside
    the pool: static or out-of-range entries do not use it up."""
    lo = int(ipaddress.IPv4Address(start)) if start else None
    hi = int(ipaddress.IPv4Address(end)) if end else None
    by_ip: dict[str, Lease] = {}
    for lease in leases:
        if lease.expired(now):
            continue
        if lo is not None or hi is not None:
            n = int(ipaddress.IPv4Address(lease.ip))
            if (lo is not None and n < lo) or (hi is not None and n > hi):
                continue
        by_ip[lease.ip] = lease
    return list(by_ip.values())


def next_expiry(leases: list[Lease], now: float) -> float:
    """When the next of these leases runs out (after `now`): until then, and while the file is unchanged, the
    active leases stay the same and need not be filtered again. Infinite leases (expiry 0) never do."""
    return min((lease.expiry for lease in leases if lease.expiry > now), default=float("inf"))
