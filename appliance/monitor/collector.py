"""One sample of the whole box: radios, clients, network, health. Thin I/O around the pure parsers.

Sources per tick (all read-only, none needs a capability):
- each radio's hostapd control socket (group sitzungsbox): STATUS, the station table (STA-FIRST/NEXT),
  and the events received since the last tick (ATTACHed: AP-REJECTED-MAX-STA is counted);
- `iw dev <if> station dump` / `survey dump` (retries, busy %, noise) and, once a minute, `iw dev <if>
  scan dump` - the cached results only, never a new scan;
- the dnsmasq lease file, /proc, /sys, statvfs, and the helper and web sockets (are they up?).
Missing tools or files leave their fields None ("n/a" on the dashboard), never a made-up value.
"""

from __future__ import annotations

import logging
import socket
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from appliance.config import Config, Radio
from appliance.monitor import counters, iw, leases
from appliance.monitor.classify import Thresholds, busy_class, load_class, signal_class
from appliance.monitor.hostapd import RadioStatus, parse_status, sta_counters
from appliance.monitor.system import SystemReader, disk_usage, run_text
from appliance.radio.ctrl import HostapdCtrl, RadioError

log = logging.getLogger(__name__)

Runner = Callable[[list[str]], "str | None"]
SCAN_EVERY_S = 60.0
SERVICES_EVERY_S = 5.0
REJECT_WINDOW_S = 60.0


@dataclass
class _RadioState:
    ctrl: HostapdCtrl | None = None
    retry_at: float = 0.0
    rejected_total: int = 0
    rejected_times: list[float] = field(default_factory=list)
    prev_survey: iw.Survey | None = None
    neighbours: list[dict] = field(default_factory=list)
    scan_at: float | None = None
    scanned_at: float = -1e9


@dataclass
class _StaPrev:
    at: float
    rx_bytes: int | None
    tx_bytes: int | None
    tx_packets: int | None
    tx_retries: int | None


class Collector:
    def __init__(self, cfg: Config, *, runner: Runner | None = None, system: SystemReader | None = None,
                 ctrl_factory: Callable[[Path], HostapdCtrl] | None = None, clock: Callable[[], float] = time.time,
                 db_path: Path | None = None, iw_binary: str = "iw") -> None:
        self.cfg = cfg
        self.t = Thresholds.from_config(cfg)
        self.runner = runner or run_text
        self.system = system or SystemReader()
        local = cfg.run_dir / "monitor"
        self.ctrl_factory = ctrl_factory or (lambda p: HostapdCtrl(p, local_dir=local, timeout=1.0))
        self.clock = clock
        self.db_path = db_path if db_path is not None else cfg.db_path
        self.iw = iw_binary
        self.radios: dict[str, _RadioState] = {r.interface: _RadioState() for r in cfg.radios}
        self._sta_prev: dict[str, _StaPrev] = {}
        self._if_prev: dict[str, tuple[float, int, int]] = {}
        self._services: dict[str, bool | None] = {}
        self._services_at = -1e9
        self._leases_stamp: tuple | None = None
        self._leases: list[leases.Lease] = []

    # -- hostapd --------------------------------------------------------------------------------------
    def _ctrl(self, radio: Radio, now: float) -> HostapdCtrl | None:
        st = self.radios[radio.interface]
        if st.ctrl is not None:
            return st.ctrl
        if now < st.retry_at:
            return None
        ctrl = self.ctrl_factory(self.cfg.hostapd_ctrl_dir / radio.interface)
        try:
            ctrl.open()
            ctrl.attach()  # a second monitor beside the radio daemon's: hostapd serves several
        except RadioError as exc:
            ctrl.close()
            st.retry_at = now + 5.0
            log.debug("Funkmodul %s nicht erreichbar: %s", radio.interface, exc)
            return None
        st.ctrl = ctrl
        return ctrl

    def _drop(self, radio: Radio, now: float) -> None:
        st = self.radios[radio.interface]
        if st.ctrl is not None:
            st.ctrl.close()
        st.ctrl, st.retry_at = None, now + 5.0

    def _hostapd(self, radio: Radio, now: float) -> tuple[bool, RadioStatus, list]:
        st = self.radios[radio.interface]
        ctrl = self._ctrl(radio, now)
        if ctrl is None:
            return False, RadioStatus(), []
        try:
            while (ev := ctrl.next_event(0)) is not None:
                if ev.kind == "rejected_max_sta":
                    st.rejected_total += 1
                    st.rejected_times.append(now)
            reply = ctrl.command("STATUS")
            # FakeHostapd (demo) and very old builds answer UNKNOWN COMMAND: fall back to the config.
            status = parse_status(reply) if "=" in reply else RadioStatus()
            stations = ctrl.stations()
        except RadioError as exc:
            log.warning("Funkmodul %s: %s", radio.interface, exc)
            self._drop(radio, now)
            return False, RadioStatus(), []
        st.rejected_times = [t for t in st.rejected_times if now - t < REJECT_WINDOW_S]
        return True, status, stations

    # -- one tick -------------------------------------------------------------------------------------
    def sample(self) -> dict:
        now = self.clock()
        radios, clients = [], []
        seen: set[str] = set()
        lease_by_mac = {lease.mac: lease for lease in self._read_leases(now)}
        for radio in self.cfg.radios:
            r, cl = self._radio(radio, now, lease_by_mac)
            radios.append(r)
            clients.extend(cl)
            seen.update(c["mac"] for c in cl)
        for mac in list(self._sta_prev):
            if mac not in seen:
                del self._sta_prev[mac]  # gone: a reconnect starts its counters afresh
        # weak links first; unknown signal after the measured ones
        clients.sort(key=lambda c: (c["signal"] is None, c["signal"] if c["signal"] is not None else 0, c["mac"]))
        return {"at": now, "interval_s": self.cfg.monitor_interval_ms / 1000, "radios": radios,
                "clients": clients, "network": self._network(now), "health": self._health(now)}

    def _radio(self, radio: Radio, now: float, lease_by_mac: dict[str, leases.Lease]) -> tuple[dict, list[dict]]:
        st = self.radios[radio.interface]
        reachable, status, stations = self._hostapd(radio, now)
        dump = {s.mac: s for s in iw.parse_station_dump(self.runner([self.iw, "dev", radio.interface, "station",
                                                                        "dump"]) or "")}
        survey = iw.in_use(iw.parse_survey_dump(self.runner([self.iw, "dev", radio.interface, "survey", "dump"])
                                                or ""))
        busy = iw.busy_percent(st.prev_survey, survey)
        st.prev_survey = survey or st.prev_survey
        channel = status.channel or radio.channel
        if now - st.scanned_at >= SCAN_EVERY_S:
            st.scanned_at = now
            text = self.runner([self.iw, "dev", radio.interface, "scan", "dump"])
            if text is not None:
                own = {status.bssid.lower()} if status.bssid else set()
                st.neighbours = [{"bssid": b.bssid, "ssid": b.ssid, "signal": b.signal, "channel": b.channel}
                                 for b in iw.neighbours_on_channel(iw.parse_scan_dump(text), channel, own)]
                st.scan_at = now
        clients = []
        for sta in stations:
            if not sta.authorized:
                continue  # mid-handshake or kicked (hostapd lists it with empty flags until REMOVE)
            clients.append(self._client(radio.interface, sta, dump.get(sta.mac), now, lease_by_mac.get(sta.mac)))
        n = len(clients)
        return {
            "interface": radio.interface, "reachable": reachable, "state": status.state,
            "channel": channel, "frequency": status.frequency, "width_mhz": status.width_mhz,
            "ssid": status.ssid or self.cfg.ssid, "clients": n, "max_stations": radio.max_stations,
            "load_class": load_class(n, radio.max_stations, self.t),
            "rejected_total": st.rejected_total, "rejected_recent": len(st.rejected_times),
            "busy_pct": busy if busy is not None else status.chan_util_pct,
            "busy_class": busy_class(busy if busy is not None else status.chan_util_pct, self.t),
            "noise_dbm": survey.noise if survey else None,
            "neighbours": st.neighbours, "scan_at": st.scan_at,
        }, clients

    def _client(self, interface: str, sta, dumped: iw.IwStation | None, now: float,
                lease: leases.Lease | None) -> dict:
        c = sta_counters(sta)
        signal = sta.signal if sta.signal is not None else (dumped.signal if dumped else None)
        tx_packets = dumped.tx_packets if dumped and dumped.tx_packets is not None else c.tx_packets
        retries = dumped.tx_retries if dumped else None  # hostapd has none; brcmfmac's dump neither
        prev = self._sta_prev.get(sta.mac)
        dt = now - prev.at if prev else 0.0
        retries_pct = None
        rx_bps = tx_bps = None
        if prev is not None and dt > 0:
            retries_pct = counters.ratio_percent(counters.delta(prev.tx_retries, retries),
                                                 counters.delta(prev.tx_packets, tx_packets))
            rx_bps = counters.rate(prev.rx_bytes, c.rx_bytes, dt)
            tx_bps = counters.rate(prev.tx_bytes, c.tx_bytes, dt)
        self._sta_prev[sta.mac] = _StaPrev(now, c.rx_bytes, c.tx_bytes, tx_packets, retries)
        tx_mbps = c.tx_bitrate_mbps or (dumped.tx_bitrate_mbps if dumped else None)
        rx_mbps = c.rx_bitrate_mbps or (dumped.rx_bitrate_mbps if dumped else None)
        inactive = sta.inactive_msec if sta.inactive_msec is not None else (dumped.inactive_ms if dumped else None)
        connected = sta.connected_time if sta.connected_time is not None else (dumped.connected_s if dumped else None)
        return {
            "mac": sta.mac, "interface": interface, "keyid": sta.keyid, "ip": lease.ip if lease else None,
            "device": lease.hostname if lease else None,  # the name the device gave DHCP, if any
            "signal": signal, "signal_class": signal_class(signal, self.t),
            "tx_mbps": tx_mbps, "rx_mbps": rx_mbps,
            # reported: the driver counts retries at all (else "n/a" on the dashboard, never 0)
            "retries_reported": retries is not None, "tx_retries": retries, "retries_pct": retries_pct,
            "inactive_ms": inactive, "connected_s": connected,
            "rx_bytes": c.rx_bytes, "tx_bytes": c.tx_bytes,
            "rx_bps": round(rx_bps) if rx_bps is not None else None,
            "tx_bps": round(tx_bps) if tx_bps is not None else None,
        }

    # -- network --------------------------------------------------------------------------------------
    def _read_leases(self, now: float) -> list[leases.Lease]:
        path = self.cfg.leases_file
        try:
            st = path.stat()
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
            if stamp != self._leases_stamp:
                self._leases = leases.parse_leases(path.read_text(errors="replace"))
                self._leases_stamp = stamp
        except OSError:
            self._leases, self._leases_stamp = [], None
        return leases.active_leases(self._leases, now, self.cfg.dhcp_start, self.cfg.dhcp_end)

    def _admissions(self, active: set[tuple[str, str]]) -> tuple[int | None, int | None]:
        """(admitted, captured): live admissions of the active session; captured = leased (MAC, IP) pairs not
        admitted. Pairs, as the firewall and rules.device match them: a MAC admitted at another IP is captured."""
        try:
            conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=2)
        except sqlite3.Error:
            return None, None
        try:
            rows = conn.execute(
                "SELECT DISTINCT a.mac, a.ip FROM admissions a JOIN sessions s ON s.id = a.session_id "
                "WHERE s.active = 1 AND a.revoked_at IS NULL").fetchall()
        except sqlite3.Error:
            return None, None
        finally:
            conn.close()
        admitted = {(mac.lower(), ip) for mac, ip in rows}
        return len(admitted), len(active - admitted)

    def _network(self, now: float) -> dict:
        active = self._read_leases(now)
        size = leases.pool_size(self.cfg.dhcp_start, self.cfg.dhcp_end)
        admitted, captured = self._admissions({(lease.mac, lease.ip) for lease in active})
        interfaces = {}
        for name, cnt in self.system.net_dev().items():
            prev = self._if_prev.get(name)
            dt = now - prev[0] if prev else 0.0
            rx = counters.rate(prev[1], cnt.rx_bytes, dt) if prev else None
            tx = counters.rate(prev[2], cnt.tx_bytes, dt) if prev else None
            self._if_prev[name] = (now, cnt.rx_bytes, cnt.tx_bytes)
            if name == "lo":
                continue
            interfaces[name] = {"rx_bytes": cnt.rx_bytes, "tx_bytes": cnt.tx_bytes,
                                "rx_bps": round(rx) if rx is not None else None,
                                "tx_bps": round(tx) if tx is not None else None}
        uplink = self.cfg.uplink
        return {
            "pool_size": size, "leases_active": len(active), "pool_pct": round(100 * len(active) / size, 1),
            "admitted": admitted, "captured": captured, "interfaces": interfaces,
            "uplink": {"interface": uplink or None,
                       "state": (self.system.operstate(uplink) or "missing") if uplink else "none"},
        }

    # -- box health -----------------------------------------------------------------------------------
    def _health(self, now: float) -> dict:
        mem = self.system.memory()
        disk = disk_usage(self.cfg.state_dir)
        throttled = self.system.throttled()
        if now - self._services_at >= SERVICES_EVERY_S:
            self._services_at = now
            self._services = self._check_services()
        self._services["hostapd"] = (all(st.ctrl is not None for st in self.radios.values())
                                     if self.radios else None)
        load = self.system.loadavg()
        return {
            "cpu_pct": self.system.cpu_percent(),
            "load": list(load) if load else None,
            "mem_total_kb": mem[0] if mem else None, "mem_available_kb": mem[1] if mem else None,
            "mem_pct": round(100 * (mem[0] - mem[1]) / mem[0], 1) if mem and mem[0] else None,
            "disk_total": disk[0] if disk else None, "disk_used": disk[1] if disk else None,
            "disk_pct": round(100 * disk[1] / disk[0], 1) if disk and disk[0] else None,
            "temp_c": self.system.temperature(),
            "throttled": ({"raw": f"0x{throttled.raw:x}", "now": list(throttled.now),
                           "since_boot": list(throttled.since_boot)} if throttled else None),
            "services": dict(self._services),
        }

    def _check_services(self) -> dict[str, bool | None]:
        procs = self.system.processes()
        return {
            # the demo runs neither dnsmasq nor the helper: "n/a", not "down" (which would raise an alert)
            "dnsmasq": None if self.cfg.demo else "dnsmasq" in procs,
            "web": _tcp_open("127.0.0.1" if self.cfg.web_bind in ("0.0.0.0", "") else self.cfg.web_bind,
                             self.cfg.web_port),
            "helper": None if self.cfg.demo else _unix_open(self.cfg.helper_socket),
        }

    def close(self) -> None:
        for st in self.radios.values():
            if st.ctrl is not None:
                st.ctrl.close()
                st.ctrl = None


def _tcp_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _unix_open(path: Path, timeout: float = 0.5) -> bool:
    # connect and close: the helper treats an empty connection as nothing to do
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(path))
            return True
    except OSError:
        return False
