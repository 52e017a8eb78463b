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


def station_rates(prev: tuple, rx_bytes: int | None, tx_bytes: int | None, tx_packets: int | None,
                  tx_retries: int | None, seconds: float) -> tuple[int | None, int | None, float | None]:
    """(rx B/s, tx B/s, retries %) of one station between two readings `seconds` apart: what round(rate()) twice
    and ratio_percent(delta(retries), delta(packets)) give, in one call - the monitor needs it for every station
    every second. prev: (at, rx_bytes, tx_bytes, tx_packets, tx_retries) of the reading before (at is not used)."""
    if seconds <= 0:
        return None, None, None
    _, p_rx, p_tx, p_packets, p_retries = prev
    rx = tx = pct = None
    if rx_bytes is not None and p_rx is not None:
        rx = round((rx_bytes if rx_bytes < p_rx else rx_bytes - p_rx) / seconds)
    if tx_bytes is not None and p_tx is not None:
        tx = round((tx_bytes if tx_bytes < p_tx else tx_bytes - p_tx) / seconds)
    if tx_retries is not None and p_retries is not None and tx_packets is not None and p_packets is not None:
        d_packets = tx_packets if tx_packets < p_packets else tx_packets - p_packets
        if d_packets > 0:
            d_retries = tx_retries if tx_retries < p_retries else tx_retries - p_retries
            pct = round(min(100.0, 100.0 * d_retries / d_packets), 1)
    return rx, tx, pct
