"""Interface addresses. netifaces is unmaintained (no wheels for new Pythons on arm64), so it stays
behind this one module with psutil as the fallback."""

from __future__ import annotations

import socket

try:  # pragma: no cover - depends on the platform's wheels
    import netifaces
except ImportError:  # pragma: no cover
    netifaces = None


def ipv4_addresses(interface: str) -> list[str]:
    if netifaces is not None:
        try:
            return [a["addr"] for a in netifaces.ifaddresses(interface).get(netifaces.AF_INET, [])]
        except ValueError:  # no such interface
            return []
    import psutil

    return [a.address for a in psutil.net_if_addrs().get(interface, []) if a.family == socket.AF_INET]


def has_address(interface: str, address: str) -> bool:
    return address in ipv4_addresses(interface)


def all_ipv4_addresses() -> set[str]:
    """Every IPv4 address on every interface, from ONE getifaddrs() call. Asking per interface costs a full
    enumeration each: with the 400 ports of a busy bridge that was seconds of CPU."""
    import psutil

    return {a.address for addrs in psutil.net_if_addrs().values() for a in addrs if a.family == socket.AF_INET}


def all_ip_addresses() -> set[str]:
    """Every IPv4 and IPv6 address on every interface (IPv6 without its %zone), from one getifaddrs() call."""
    import psutil

    return {a.address.split("%", 1)[0] for addrs in psutil.net_if_addrs().values() for a in addrs
            if a.family in (socket.AF_INET, socket.AF_INET6)}
