"""Thresholds from the Config and the colour classes the dashboard and the alerts share (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from appliance.config import Config


@dataclass(frozen=True)
class Thresholds:
    signal_good: int = -67
    signal_fair: int = -75
    signal_poor: int = -85
    weak_signal: int = -75
    retries_pct: int = 20
    busy_poor: int = 50
    busy_bad: int = 70
    radio_near_pct: int = 80
    dhcp_pct: int = 90
    hot_c: int = 80
    disk_pct: int = 90
    alert_after_s: int = 5

    @classmethod
    def from_config(cls, cfg: Config) -> Thresholds:
        return cls(cfg.monitor_signal_good_dbm, cfg.monitor_signal_fair_dbm, cfg.monitor_signal_poor_dbm,
                   cfg.monitor_weak_signal_dbm, cfg.monitor_retries_pct, cfg.monitor_busy_poor_pct,
                   cfg.monitor_busy_bad_pct, cfg.monitor_radio_near_pct, cfg.monitor_dhcp_pct, cfg.monitor_hot_c,
                   cfg.monitor_disk_pct, cfg.monitor_alert_after_s)


def signal_class(dbm: int | float | None, t: Thresholds) -> str:
    """good / fair / poor / bad, or unknown when the driver gave no reading (brcmfmac: signal 0)."""
    if dbm is None:
        return "unknown"
    if dbm >= t.signal_good:
        return "good"
    if dbm >= t.signal_fair:
        return "fair"
    if dbm >= t.signal_poor:
        return "poor"
    return "bad"


def busy_class(pct: float | None, t: Thresholds) -> str:
    if pct is None:
        return "unknown"
    if pct > t.busy_bad:
        return "bad"
    if pct >= t.busy_poor:
        return "poor"
    return "good"


def load_class(clients: int, max_stations: int, t: Thresholds) -> str:
    if max_stations <= 0:
        return "unknown"
    if clients >= max_stations:
        return "bad"
    if 100 * clients >= t.radio_near_pct * max_stations:
        return "poor"
    return "good"
