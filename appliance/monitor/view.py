"""The read side: what the dashboard, the JSON API and /metrics show, built from what the daemon wrote.

Which member a client is comes from the one device rule (appliance.rules.device via captive.identify.Records),
the same answer the portal gives: each client of the snapshot is a connected station (MAC, keyid) with the IP
of its lease; the keyid names the member (the guest key a guest), else a live code admission of exactly that
(MAC, IP) in the active session. The MAC identifies a device row, never a person. Listed guests
(rules.roles.SHOWN_AS_GUEST) are shown as guests, and a name only once the device is admitted.

Alerts are shown as `alert_groups`: one group per kind with its count, the most severe first, then the newest;
a device alert carries the same name as the device's row (or, for a device gone since, the same rule over its
stored station and admission).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from appliance.captive.identify import Records
from appliance.monitor import alerts, snapshot
from appliance.rules import device as rule
from appliance.rules import roles

SORT_KEYS = ("signal", "name", "radio", "tx", "rx", "retries", "inactive", "connected", "ip")
CLASSES = ("good", "fair", "poor", "bad", "unknown")
STALE_AFTER_S = 10


def load_snapshot(db) -> dict | None:
    row = db.execute("SELECT at, value FROM monitor_state WHERE key = 'snapshot'").fetchone()
    if row is None:
        return None
    snap = snapshot.decode(row[1])
    snap.setdefault("at", row[0])
    snap["age_s"] = round(max(0.0, time.time() - row[0]), 1)
    snap["stale"] = snap["age_s"] > max(STALE_AFTER_S, 5 * snap.get("interval_s", 1))
    return snap


def enrich(clients: list[dict], records: Records) -> list[dict]:
    """Name (once admitted), kind, member id and admission of each client row."""
    out = []
    for c in clients:
        row = dict(c)
        who = records.resolve(c["mac"], c.get("ip"), rule.Station(c.get("keyid") or None, True))
        row["admitted"] = who.admitted
        row["member_id"] = who.member_id
        if who.member is not None:
            row["kind"] = "guest" if who.member.role in roles.SHOWN_AS_GUEST else "member"
        else:
            row["kind"] = who.kind
        # The name only once the device is admitted: before that, a keyid alone is no confirmed person.
        row["name"] = who.member.name if who.member is not None and who.admitted else None
        out.append(row)
    return out


@dataclass(frozen=True)
class TableQuery:
    sort: str = "signal"
    desc: bool = False
    q: str = ""
    cls: str = ""
    radio: str = ""

    @classmethod
    def from_args(cls, args) -> TableQuery:
        sort = args.get("sort", "signal")
        klass = args.get("class", "")
        return cls(sort if sort in SORT_KEYS else "signal", args.get("order") == "desc",
                   (args.get("q") or "").strip()[:64], klass if klass in CLASSES else "",
                   (args.get("radio") or "")[:15])


def _key(sort: str):
    def none_last(v, desc: bool = False):
        return (v is None, v if v is not None else 0)

    return {
        "signal": lambda c: none_last(c.get("signal")),
        "name": lambda c: (c.get("name") is None, (c.get("name") or "").casefold(), c["mac"]),
        "radio": lambda c: (c.get("interface") or "", c["mac"]),
        "tx": lambda c: none_last(c.get("tx_mbps")),
        "rx": lambda c: none_last(c.get("rx_mbps")),
        "retries": lambda c: none_last(c.get("retries_pct")),
        "inactive": lambda c: none_last(c.get("inactive_ms")),
        "connected": lambda c: none_last(c.get("connected_s")),
        "ip": lambda c: (c.get("ip") is None, tuple(int(p) for p in (c.get("ip") or "0.0.0.0").split("."))),
    }[sort]


def table(clients: list[dict], query: TableQuery) -> list[dict]:
    """Filter and sort (pure). Default: weak links first; rows without a reading go last either way."""
    rows = clients
    if query.q:
        needle = query.q.casefold()
        rows = [c for c in rows if any(needle in (c.get(k) or "").casefold()
                                       for k in ("name", "ip", "mac", "device", "interface"))]
    if query.cls:
        rows = [c for c in rows if c.get("signal_class") == query.cls]
    if query.radio:
        rows = [c for c in rows if c.get("interface") == query.radio]
    key = _key(query.sort)
    known = [c for c in rows if not key(c)[0]]
    unknown = [c for c in rows if key(c)[0]]
    return sorted(known, key=key, reverse=query.desc) + unknown


def _rank(severity: str | None) -> int:
    return alerts.SEVERITIES.index(severity) if severity in alerts.SEVERITIES else len(alerts.SEVERITIES)


def _grouped(items: list[dict]) -> list[dict]:
    by_kind: dict[str, list[dict]] = {}
    for a in items:
        by_kind.setdefault(a["kind"], []).append(a)
    groups = []
    for kind, rows in by_kind.items():
        rows.sort(key=lambda a: (_rank(a["severity"]), -(a["started_at"] or 0), a["subject"]))
        groups.append({"kind": kind, "severity": rows[0]["severity"], "count": len(rows),
                       "newest": max(a["started_at"] or 0 for a in rows),
                       "critical": sum(a["severity"] == "critical" for a in rows), "entries": rows})
    groups.sort(key=lambda g: (_rank(g["severity"]), -g["newest"], g["kind"]))
    return groups


def alert_groups(rows: list[dict], who: dict[str, dict]) -> dict[str, list[dict]]:
    """Alerts as a person reads them (pure): one group per kind with its count, the most severe group first
    (critical, warning, info), then the newest; in a group the most severe and newest subject first. Open
    and ended alerts apart. who: MAC -> the device's row (enrich(): name, kind, admitted; `connected` when it
    is in the current snapshot), so a device alert names the member, never only a MAC."""
    out: dict[str, list[dict]] = {"open": [], "ended": []}
    parts: dict[str, list[dict]] = {"open": [], "ended": []}
    for a in rows:
        item = dict(a)
        item["target"] = alerts.SUBJECTS.get(a["kind"], "box")
        if item["target"] == "device":
            d = who.get(a["subject"]) or {}
            item.update(name=d.get("name"), who=d.get("kind"), admitted=bool(d.get("admitted")),
                        device=d.get("device"), connected=bool(d.get("connected")))
        parts["open" if a["ended_at"] is None else "ended"].append(item)
    for state, items in parts.items():
        out[state] = _grouped(items)
    return out


def _device_subjects(rows: list[dict], clients: list[dict], records: Records) -> dict[str, dict]:
    """Who each device alert's MAC is: its row in the snapshot, else (gone since) the same rule over the
    stored station and a live admission of that MAC."""
    who = {c["mac"]: {**c, "connected": True} for c in clients}
    for a in rows:
        mac = a["subject"]
        if alerts.SUBJECTS.get(a["kind"]) != "device" or mac in who:
            continue
        ip = next((ip for (m, ip) in records.admissions if m == mac.lower()), None)
        found = records.resolve(mac, ip)
        named = found.member is not None and found.admitted
        kind = ("guest" if found.member.role in roles.SHOWN_AS_GUEST else "member") if found.member else found.kind
        who[mac] = {"name": found.member.name if named else None, "kind": kind, "admitted": found.admitted,
                    "connected": False}
    return who


def dashboard_model(db) -> dict:
    """Everything the page and the JSON API show."""
    rows = alerts.recent(db)
    records = Records(db)
    snap = load_snapshot(db)
    clients = enrich(snap.get("clients", []), records) if snap is not None else []
    groups = alert_groups(rows, _device_subjects(rows, clients, records))
    return {"snapshot": snap, "clients": clients, "alerts": rows, "alert_groups": groups}
