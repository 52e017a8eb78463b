"""Time series in SQLite: one-second points for the last hour, minute averages for the last day.

Written by the monitor daemon only (one writer), read by the web app. Per-client signal is written every
`CLIENT_EVERY_S` seconds, not every tick: 300 stations at 1 Hz would be a million rows an hour on an SD card.
"""

from __future__ import annotations

import math

SECOND, MINUTE = 1, 60
KEEP = {SECOND: 3600, MINUTE: 86400}
CLIENT_EVERY_S = 10


def write(db, ts: float, values: dict[str, float | None]) -> int:
    """Insert one second's points (None values are skipped: no reading is not a zero). Caller commits."""
    second = int(ts)
    rows = [(name, SECOND, second, float(v)) for name, v in values.items()
            if v is not None and not (isinstance(v, float) and math.isnan(v))]
    getattr(db, "conn", db).executemany(
        "INSERT OR REPLACE INTO monitor_points (series, res, ts, value) VALUES (?, ?, ?, ?)", rows)
    return len(rows)


def downsample(db, until: float, since: float | None = None) -> None:
    """Average every complete minute in [since, until) of one-second points into minute points."""
    end = int(until) // MINUTE * MINUTE
    start = int(since) // MINUTE * MINUTE if since is not None else end - KEEP[SECOND]
    db.execute(
        "INSERT OR REPLACE INTO monitor_points (series, res, ts, value) "
        "SELECT series, ?, (ts / ?) * ?, avg(value) FROM monitor_points "
        "WHERE res = ? AND ts >= ? AND ts < ? GROUP BY series, ts / ?",
        [MINUTE, MINUTE, MINUTE, SECOND, start, end, MINUTE])


def prune(db, now: float) -> None:
    for res, keep in KEEP.items():
        db.execute("DELETE FROM monitor_points WHERE res = ? AND ts < ?", [res, int(now) - keep])


def read(db, series: str, since: float, until: float | None = None, res: int | None = None) -> list[tuple[int, float]]:
    """Points of one series; the resolution follows the span unless given (seconds within the last hour)."""
    if res is None:
        newest = db.execute("SELECT max(ts) FROM monitor_points WHERE res = ?", [SECOND]).fetchone()[0] or 0
        res = SECOND if since >= newest - KEEP[SECOND] else MINUTE
    args: list = [series, res, int(since)]
    sql = "SELECT ts, value FROM monitor_points WHERE series = ? AND res = ? AND ts >= ?"
    if until is not None:
        sql += " AND ts <= ?"
        args.append(int(until))
    return [(int(a), float(b)) for a, b in db.execute(sql + " ORDER BY ts", args).fetchall()]


def series_names(db, prefix: str) -> list[str]:
    return [s for (s,) in db.execute("SELECT DISTINCT series FROM monitor_points WHERE series LIKE ? AND res = ?",
                                     [prefix.replace("%", "") + "%", SECOND]).fetchall()]


def from_snapshot(snap: dict, with_clients: bool) -> dict[str, float | None]:
    """The series one sample feeds."""
    v: dict[str, float | None] = {"clients": len(snap.get("clients", []))}
    for r in snap.get("radios", []):
        v[f"clients:{r['interface']}"] = r.get("clients")
        v[f"busy:{r['interface']}"] = r.get("busy_pct")
    net = snap.get("network", {})
    v["dhcp_pct"] = net.get("pool_pct")
    v["admitted"] = net.get("admitted")
    for name, cnt in (net.get("interfaces") or {}).items():
        v[f"rx_bps:{name}"] = cnt.get("rx_bps")
        v[f"tx_bps:{name}"] = cnt.get("tx_bps")
    h = snap.get("health", {})
    v["temp"] = h.get("temp_c")
    v["cpu"] = h.get("cpu_pct")
    v["mem"] = h.get("mem_pct")
    if with_clients:
        for c in snap.get("clients", []):
            v[f"signal:{c['mac']}"] = c.get("signal")
    return v
