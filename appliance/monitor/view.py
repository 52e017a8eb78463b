"""The read side: what the dashboard, the JSON API and /metrics show, built from what the daemon wrote.

People are named ONLY through the keyid hostapd reported (sessions: the member whose personal key the
device used; the guest key -> "Gast"). The MAC identifies a device row, never a person.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from appliance.captive.keys import GUEST_KEYID
from appliance.sessions import service

SORT_KEYS = ("signal", "name", "radio", "tx", "rx", "retries", "inactive", "connected", "ip")
CLASSES = ("good", "fair", "poor", "bad", "unknown")
STALE_AFTER_S = 10


def load_snapshot(db) -> dict | None:
    row = db.execute("SELECT at, value FROM monitor_state WHERE key = 'snapshot'").fetchone()
    if row is None:
        return None
    snap = json.loads(row[1])
    snap["age_s"] = round(max(0.0, time.time() - row[0]), 1)
    snap["stale"] = snap["age_s"] > max(STALE_AFTER_S, 5 * snap.get("interval_s", 1))
    return snap


def people(db) -> dict[str, tuple[str, str]]:
    """keyid -> (display name, kind) for the active session."""
    active = service.active_session(db)
    out: dict[str, tuple[str, str]] = {GUEST_KEYID: ("Gast", "guest")}
    if active is not None:
        for m in service.members(db, active.id):
            out[m.keyid] = (m.name, "guest" if m.role == "guest" else "member")
    return out


def admitted_macs(db) -> set[str]:
    return {mac for (mac,) in db.execute(
        "SELECT DISTINCT a.mac FROM admissions a JOIN sessions s ON s.id = a.session_id "
        "WHERE s.active = 1 AND a.revoked_at IS NULL").fetchall()}


def enrich(clients: list[dict], names: dict[str, tuple[str, str]], admitted: set[str]) -> list[dict]:
    """Name (once admitted), kind and admission of each client row."""
    out = []
    for c in clients:
        row = dict(c)
        row["admitted"] = c["mac"] in admitted
        known = names.get(c.get("keyid") or "")
        row["kind"] = known[1] if known else "unknown"
        # The name only once the device is admitted: before that, a keyid alone is no confirmed person.
        row["name"] = known[0] if known and row["admitted"] else None
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


def dashboard_model(db) -> dict:
    """Everything the page and the JSON API show."""
    from appliance.monitor import alerts

    snap = load_snapshot(db)
    names = people(db)
    admitted = admitted_macs(db)
    if snap is None:
        return {"snapshot": None, "clients": [], "alerts": alerts.recent(db)}
    clients = enrich(snap.get("clients", []), names, admitted)
    return {"snapshot": snap, "clients": clients, "alerts": alerts.recent(db)}
