"""The kernel's neighbour entry for one IPv4 address, asked by netlink (RTM_GETNEIGH for one address on one
interface, `ip neigh get`'s request; Linux >= 5.0).

Why not /proc/net/arp: the portal asks on every request from a phone, and that file is the whole table printed
as text by the kernel — with a hall of 300 phones, each request paid for 300 lines (in a 200-phone onboarding
burst reading it was about a fifth of the web's CPU). The netlink answer is one entry.

`lookup` answers the MAC (lower case), None when the kernel has no usable entry (none, incomplete or failed, as
/proc/net/arp's ATF_COM), or raises `Unsupported` when the question cannot be asked here (an old kernel, no such
interface, no netlink): the caller then reads /proc/net/arp as before. The message building and parsing are pure
and tested on bytes recorded from a real kernel (tests/test_neighbours.py)."""

from __future__ import annotations

import errno
import itertools
import socket
import struct

RTM_NEWNEIGH, RTM_GETNEIGH = 28, 30
NLMSG_ERROR = 2
NLM_F_REQUEST = 0x1
NDA_DST, NDA_LLADDR = 1, 2
# NUD_VALID (include/net/neighbour.h): the states /proc/net/arp marks complete (ATF_COM).
NUD_VALID = 0x80 | 0x40 | 0x02 | 0x10 | 0x04 | 0x08  # PERMANENT NOARP REACHABLE PROBE STALE DELAY
_HDR = struct.Struct("=IHHII")  # nlmsghdr: len, type, flags, seq, pid
_NDMSG = struct.Struct("=BBHiHBB")  # ndmsg: family, pad1, pad2, ifindex, state, flags, type
_RTA = struct.Struct("=HH")  # rtattr: len, type
_seq = itertools.count(1)


class Unsupported(Exception):
    """The kernel cannot answer this question here; read /proc/net/arp instead."""


def request(ifindex: int, ip: str, seq: int) -> bytes:
    """Pure: the RTM_GETNEIGH request for `ip` on interface `ifindex`."""
    attr = _RTA.pack(_RTA.size + 4, NDA_DST) + socket.inet_aton(ip)
    body = _NDMSG.pack(socket.AF_INET, 0, 0, ifindex, 0, 0, 0) + attr
    return _HDR.pack(_HDR.size + len(body), RTM_GETNEIGH, NLM_F_REQUEST, seq, 0) + body


def parse_reply(data: bytes) -> str | None:
    """Pure: the kernel's answer to `request` → the MAC of a complete entry, or None (no entry, or one that is
    incomplete or failed). Raises Unsupported for errors other than "no such entry"."""
    if len(data) < _HDR.size:
        raise Unsupported("kurze Antwort")
    length, kind, _flags, _seq_no, _pid = _HDR.unpack_from(data)
    if kind == NLMSG_ERROR:
        (code,) = struct.unpack_from("=i", data, _HDR.size)
        if -code == errno.ENOENT:
            return None
        raise Unsupported(errno.errorcode.get(-code, str(-code)))
    if kind != RTM_NEWNEIGH or length > len(data):
        raise Unsupported(f"unerwartete Antwort {kind}")
    _family, _p1, _p2, _ifindex, state, _nflags, _ntype = _NDMSG.unpack_from(data, _HDR.size)
    if not state & NUD_VALID:
        return None
    offset = _HDR.size + _NDMSG.size
    while offset + _RTA.size <= length:
        rta_len, rta_type = _RTA.unpack_from(data, offset)
        if rta_len < _RTA.size:
            break
        if rta_type == NDA_LLADDR and rta_len == _RTA.size + 6:
            mac = data[offset + _RTA.size:offset + rta_len].hex(":")
            return None if mac == "00:00:00:00:00:00" else mac
        offset += (rta_len + 3) & ~3
    return None


def lookup(interface: str, ip: str) -> str | None:
    """The MAC the kernel holds for `ip` on `interface` (None: no complete entry); Unsupported when it cannot
    be asked here."""
    try:
        ifindex = socket.if_nametoindex(interface)
    except OSError as exc:
        raise Unsupported(f"keine Schnittstelle {interface}") from exc
    seq = next(_seq)
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE) as s:
            s.settimeout(1.0)  # the kernel answers inside sendto; this only bounds a kernel that never does
            s.sendto(request(ifindex, ip, seq), (0, 0))
            while True:
                data = s.recv(4096)
                if len(data) >= _HDR.size and _HDR.unpack_from(data)[3] == seq:
                    return parse_reply(data)
    except (OSError, ValueError) as exc:
        raise Unsupported(str(exc)) from exc
