"""Prometheus text exposition (format 0.0.4) of the last sample, for a city's existing monitoring (pure).

Aggregates per radio, interface and the box only: no MACs, no names - a scrape must not become a
list of who sat in the session.
"""

from __future__ import annotations

import re

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _label(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(v: float | int | bool) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    return repr(float(v)) if isinstance(v, float) else str(v)


class _Out:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self._declared: set[str] = set()

    def add(self, name: str, kind: str, help_: str, value, labels: dict[str, str] | None = None) -> None:
        if value is None:
            return  # no reading: absent, not 0
        assert re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", name)
        if name not in self._declared:
            self._declared.add(name)
            self.lines.append(f"# HELP {name} {help_}")
            self.lines.append(f"# TYPE {name} {kind}")
        lab = ""
        if labels:
            lab = "{" + ",".join(f'{k}="{_label(v)}"' for k, v in labels.items()) + "}"
        self.lines.append(f"{name}{lab} {_num(value)}")


def render(model: dict) -> str:
    """model: view.dashboard_model(db). Metrics of one name stay together, as the format requires."""
    o = _Out()
    snap = model.get("snapshot")
    o.add("sitzungsbox_monitor_up", "gauge", "1 when the monitor daemon has written a fresh sample",
          0 if snap is None or snap.get("stale") else 1)
    if snap is None:
        return "\n".join(o.lines) + "\n"
    o.add("sitzungsbox_monitor_sample_age_seconds", "gauge", "Age of the last sample", snap.get("age_s"))
    radios = snap.get("radios", [])
    for r in radios:
        o.add("sitzungsbox_radio_clients", "gauge", "Associated clients per radio", r.get("clients"),
              {"interface": r["interface"]})
    for r in radios:
        o.add("sitzungsbox_radio_max_clients", "gauge", "Expected maximum of clients per radio",
              r.get("max_stations"), {"interface": r["interface"]})
    for r in radios:
        o.add("sitzungsbox_radio_rejected_total", "counter", "Clients rejected because the radio was full "
              "(AP-REJECTED-MAX-STA) since the monitor started", r.get("rejected_total"), {"interface": r["interface"]})
    for r in radios:
        o.add("sitzungsbox_radio_channel_busy_percent", "gauge", "Channel busy time share of the last interval",
              r.get("busy_pct"), {"interface": r["interface"]})
    for r in radios:
        o.add("sitzungsbox_radio_noise_dbm", "gauge", "Noise floor", r.get("noise_dbm"), {"interface": r["interface"]})
    for r in radios:
        o.add("sitzungsbox_radio_up", "gauge", "1 when the radio's hostapd answers", r.get("reachable"),
              {"interface": r["interface"]})
    for r in radios:
        o.add("sitzungsbox_radio_neighbours", "gauge", "Other networks on the radio's channel (last scan)",
              len(r.get("neighbours") or []), {"interface": r["interface"]})
    by_class: dict[str, int] = {}
    for c in model.get("clients", []):
        by_class[c.get("signal_class", "unknown")] = by_class.get(c.get("signal_class", "unknown"), 0) + 1
    for cls in ("good", "fair", "poor", "bad", "unknown"):
        o.add("sitzungsbox_clients_by_signal", "gauge", "Clients per signal class", by_class.get(cls, 0),
              {"class": cls})
    net = snap.get("network", {})
    o.add("sitzungsbox_dhcp_leases", "gauge", "Active DHCP leases in the pool", net.get("leases_active"))
    o.add("sitzungsbox_dhcp_pool_size", "gauge", "Addresses in the DHCP pool", net.get("pool_size"))
    o.add("sitzungsbox_clients_admitted", "gauge", "Devices admitted through the portal", net.get("admitted"))
    o.add("sitzungsbox_clients_captured", "gauge", "Devices with a lease, not admitted", net.get("captured"))
    ifaces = net.get("interfaces") or {}
    for name, cnt in ifaces.items():
        o.add("sitzungsbox_interface_receive_bytes_total", "counter", "Bytes received", cnt.get("rx_bytes"),
              {"interface": name})
    for name, cnt in ifaces.items():
        o.add("sitzungsbox_interface_transmit_bytes_total", "counter", "Bytes sent", cnt.get("tx_bytes"),
              {"interface": name})
    up = net.get("uplink") or {}
    if up.get("interface"):
        o.add("sitzungsbox_uplink_up", "gauge", "1 when the uplink interface is up", up.get("state") == "up",
              {"interface": up["interface"]})
    h = snap.get("health", {})
    o.add("sitzungsbox_cpu_percent", "gauge", "CPU use of the box", h.get("cpu_pct"))
    if h.get("load"):
        o.add("sitzungsbox_load1", "gauge", "Load average over 1 minute", h["load"][0])
    o.add("sitzungsbox_memory_used_percent", "gauge", "Memory in use", h.get("mem_pct"))
    o.add("sitzungsbox_disk_used_percent", "gauge", "State file system in use", h.get("disk_pct"))
    o.add("sitzungsbox_temperature_celsius", "gauge", "SoC temperature", h.get("temp_c"))
    thr = h.get("throttled")
    if thr is not None:
        for flag in ("undervoltage", "freq_capped", "throttled", "soft_temp_limit"):
            o.add("sitzungsbox_throttled", "gauge", "Raspberry Pi throttling flags (get_throttled)",
                  flag in thr.get("now", []), {"flag": flag, "when": "now"})
            o.add("sitzungsbox_throttled", "gauge", "", flag in thr.get("since_boot", []),
                  {"flag": flag, "when": "since_boot"})
    for name, state in (h.get("services") or {}).items():
        o.add("sitzungsbox_service_up", "gauge", "1 when the service answers", state, {"service": name})
    open_alerts = [a for a in model.get("alerts", []) if a.get("ended_at") is None]
    o.add("sitzungsbox_alerts_open", "gauge", "Open alerts", len(open_alerts))
    return "\n".join(o.lines) + "\n"
