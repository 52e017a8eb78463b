"""Alerts: which conditions hold in a sample (pure), and their start/end in the database.

A condition becomes an alert only after it held `alert_after_s` (one weak reading while a phone turns
in a pocket is no alert); it ends at the first sample where it no longer holds.
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance.monitor.classify import Thresholds

# Every kind evaluate() can raise, and what its subject is: a device (MAC), a radio (interface), the DHCP pool,
# the box or a service. The dashboard groups by kind (one line each) and links each subject to its place.
SUBJECTS = {"weak_signal": "device", "high_retries": "device", "channel_busy": "radio", "radio_full": "radio",
            "radio_near_full": "radio", "dhcp_pool": "network", "undervoltage": "box", "hot": "box",
            "disk_full": "box", "service_down": "service"}
KINDS = tuple(SUBJECTS)
SEVERITIES = ("critical", "warning")  # most severe first; the schema allows no other (m0004_monitor)
SERVICE_NAMES = {"hostapd": "hostapd (Funk)", "dnsmasq": "dnsmasq (DHCP/DNS)", "web": "Web-Anwendung",
                 "helper": "Firewall-Helfer"}


@dataclass(frozen=True)
class Condition:
    kind: str
    subject: str
    severity: str  # warning / critical
    message: str  # German; the subject is a radio, a device (MAC, never a person) or the box
    value: float | None = None


def evaluate(snap: dict, t: Thresholds) -> list[Condition]:
    out: list[Condition] = []
    for c in snap.get("clients", []):
        if c.get("signal") is not None and c["signal"] < t.weak_signal:
            out.append(Condition("weak_signal", c["mac"], "critical" if c["signal"] < t.signal_poor else "warning",
                                 f"Schwaches Signal: Gerät {c['mac']} an {c['interface']} mit {c['signal']} dBm",
                                 c["signal"]))
        if c.get("retries_pct") is not None and c["retries_pct"] >= t.retries_pct:
            out.append(Condition("high_retries", c["mac"], "warning",
                                 f"Viele Wiederholungen: Gerät {c['mac']} {c['retries_pct']:.0f} %",
                                 c["retries_pct"]))
    for r in snap.get("radios", []):
        iface = r["interface"]
        if r.get("busy_pct") is not None and r["busy_pct"] > t.busy_bad:
            out.append(Condition("channel_busy", iface, "warning",
                                 f"Kanal {r.get('channel')} ({iface}) zu {r['busy_pct']:.0f} % belegt", r["busy_pct"]))
        n, mx = r.get("clients", 0), r.get("max_stations", 0)
        if mx and (n >= mx or r.get("rejected_recent")):
            out.append(Condition("radio_full", iface, "critical",
                                 f"Funkmodul {iface} voll: {n} von {mx} Geräten, "
                                 f"{r.get('rejected_recent', 0)} abgewiesen in der letzten Minute", n))
        elif mx and 100 * n >= t.radio_near_pct * mx:
            out.append(Condition("radio_near_full", iface, "warning",
                                 f"Funkmodul {iface} fast voll: {n} von {mx} Geräten", n))
    net = snap.get("network", {})
    if net.get("pool_pct") is not None and net["pool_pct"] >= t.dhcp_pct:
        out.append(Condition("dhcp_pool", "dhcp", "critical",
                             f"DHCP-Adressbereich zu {net['pool_pct']:.0f} % belegt "
                             f"({net.get('leases_active')} von {net.get('pool_size')})", net["pool_pct"]))
    h = snap.get("health", {})
    thr = h.get("throttled") or {}
    if "undervoltage" in thr.get("now", []):
        out.append(Condition("undervoltage", "box", "critical",
                             "Unterspannung: Netzteil zu schwach oder Kabel zu lang", None))
    if h.get("temp_c") is not None and h["temp_c"] >= t.hot_c:
        out.append(Condition("hot", "box", "critical" if h["temp_c"] >= t.hot_c + 5 else "warning",
                             f"Box zu heiß: {h['temp_c']:.0f} °C", h["temp_c"]))
    if h.get("disk_pct") is not None and h["disk_pct"] >= t.disk_pct:
        out.append(Condition("disk_full", "box", "warning", f"Speicher zu {h['disk_pct']:.0f} % voll", h["disk_pct"]))
    for name, up in (h.get("services") or {}).items():
        if up is False:
            out.append(Condition("service_down", name, "critical",
                                 f"Dienst läuft nicht: {SERVICE_NAMES.get(name, name)}", None))
    return out


class Tracker:
    """Debounces conditions (pure apart from the timestamps handed in)."""

    def __init__(self, after_s: float) -> None:
        self.after_s = after_s
        self.pending: dict[tuple[str, str], float] = {}

    def due(self, conditions: list[Condition], now: float) -> list[Condition]:
        """Conditions that have held long enough to be (or stay) alerts."""
        current = {(c.kind, c.subject): c for c in conditions}
        for key in list(self.pending):
            if key not in current:
                del self.pending[key]
        out = []
        for key, cond in current.items():
            first = self.pending.setdefault(key, now)
            if now - first >= self.after_s:
                out.append(cond)
        return out


def persist(db, due: list[Condition], now: float) -> None:
    """Open alerts for new conditions, update open ones whose severity, message or value changed (a weak phone
    that keeps its -88 dBm is not rewritten every second: with 300 stations that was a hundred UPDATEs a tick),
    end those that no longer hold. Caller commits."""
    open_rows = {(k, s): (i, sev, msg, val) for i, k, s, sev, msg, val in db.execute(
        "SELECT id, kind, subject, severity, message, value FROM monitor_alerts WHERE ended_at IS NULL").fetchall()}
    wanted = {(c.kind, c.subject): c for c in due}
    for key, (alert_id, *_) in open_rows.items():
        if key not in wanted:
            db.execute("UPDATE monitor_alerts SET ended_at = ? WHERE id = ?", [now, alert_id])
    for key, c in wanted.items():
        row = open_rows.get(key)
        if row is None:
            db.execute("INSERT INTO monitor_alerts (kind, subject, severity, message, value, started_at) "
                       "VALUES (?, ?, ?, ?, ?, ?)", [c.kind, c.subject, c.severity, c.message, c.value, now])
        elif row[1:] != (c.severity, c.message, c.value):
            db.execute("UPDATE monitor_alerts SET message = ?, value = ?, severity = ? WHERE id = ?",
                       [c.message, c.value, c.severity, row[0]])


def recent(db, limit: int = 100) -> list[dict]:
    """Open alerts first, then the most recent ended ones."""
    cur = db.execute("SELECT id, kind, subject, severity, message, value, started_at, ended_at FROM monitor_alerts "
                     "ORDER BY ended_at IS NOT NULL, started_at DESC LIMIT ?", [limit])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
