"""Deltas of kernel and driver counters that may restart at 0.

Counters reset when a station reconnects (hostapd's per-station bytes), when a driver reloads (survey
times, iw retries) or when an interface is recreated (/proc/net/dev). A counter that went *down* is
taken as restarted from 0, so the delta is its current value: never a negative rate, never a huge
wrapped one.
"""

from __future__ import annotations


def delta(prev: int | float | None, cur: int | float | None) -> int | float | None:
    if cur is None:
        return None
    if prev is None:
        return None  # first reading: no interval yet
    if cur < prev:
        return cur  # reset (reconnect, driver reload): counted from 0
    return cur - prev


def rate(prev: int | float | None, cur: int | float | None, seconds: float) -> float | None:
    d = delta(prev, cur)
    if d is None or seconds <= 0:
        return None
    return d / seconds


def ratio_percent(d_part: int | float | None, d_total: int | float | None) -> float | None:
    """e.g. Δretries/Δtx_packets; None when there was nothing to divide by (no traffic: no claim)."""
    if d_part is None or d_total is None or d_total <= 0:
        return None
    return round(min(100.0, 100.0 * d_part / d_total), 1)
