"""One sample of the whole box: radios, clients, network, health. Thin I/O around the pure parsers.

Sources per tick (all read-only, none needs a capability):
- `iw dev <if> station dump`: every station's counters in ONE call per radio (signal, rx/tx bytes and
  packets, tx retries/failed, bitrates, inactive and connected time), whatever the number of stations;
- each radio's hostapd control socket (group sitzungsbox): STATUS and the events received since the last
  tick (ATTACHed: AP-STA-CONNECTED gives a joining station's keyid, AP-REJECTED-MAX-STA is counted);
- `iw dev <if> survey dump` (busy %, noise) and, once a minute, `iw dev <if> scan dump` - the cached
  results only, never a new scan;
- the dnsmasq lease file, /proc, /sys, statvfs, and the helper and web sockets (are they up?).
Missing tools or files leave their fields None ("n/a" on the dashboard), never a made-up value.

What hostapd alone knows about a station - its keyid (which member) and whether it is AUTHORIZED - rarely
changes, so it is NOT read every tick (STA-FIRST/STA-NEXT is one round trip per station: 300 stations were
301 round trips a second). It is kept per radio as `facts` and refreshed
- from the events at once (AP-STA-CONNECTED <mac> keyid=..., AP-STA-DISCONNECTED);
- by `STA <mac>` for a station the dump shows that hostapd's facts do not know (events lost), or that the
  kernel calls authorized while the facts do not (at most every RECHECK_S per station);
- from the radio daemon's `stations` table (appliance.radio.daemon, the other listener to hostapd's events: keyid
  and connected per MAC) on every (re)connect to the control socket and every TABLE_EVERY_S as a safety net (a
  monitor that lost events, e.g. hostapd dropped them on a full socket buffer, is right again within that
  time). A row is taken only for a station of the dump, connected on this interface, and recorded for the
  kernel's current association (`connected_at` no earlier than the dump's connected time says the association
  began, less SEED_SLACK_S): a row of an older association (both listeners lost a reconnect, or the radio daemon
  is down) is not. A station the rows lack or that disagrees with the facts is asked with `STA <mac>`;
- by a walk of the whole table (STA-FIRST/NEXT) instead when the database cannot be read or has no connected
  station of this interface at all (no radio daemon), and when more than LOOKUPS_PER_TICK stations would be
  asked at once. So at 300 stations the first tick is one SELECT, not 301 round trips.
Without a station dump (`iw` missing, or the radio is no nl80211 device - the virtual venue's bridge) the
table is walked every tick as before and hostapd's STA blocks are the counters.
"""

from __future__ import annotations

import logging
import socket
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from appliance.config import Config, Radio
from appliance.monitor import counters, iw, leases
from appliance.monitor.classify import Thresholds, busy_class, load_class, signal_class
from appliance.monitor.hostapd import RadioStatus, parse_status, sta_counters
from appliance.monitor.system import SystemReader, disk_usage, run_text
from appliance.radio.ctrl import HostapdCtrl, RadioError
from appliance.radio.events import Station

log = logging.getLogger(__name__)

Runner = Callable[[list[str]], "str | None"]
SCAN_EVERY_S = 60.0
SERVICES_EVERY_S = 5.0
REJECT_WINDOW_S = 60.0
TABLE_EVERY_S = 60.0  # hostapd's whole station table (keyid, flags) at least this often: the safety net
RECHECK_S = 5.0  # a station the kernel calls authorized and hostapd's facts do not: asked again at most this often
LOOKUPS_PER_TICK = 16  # more unknown stations in one tick than this: walk the table once instead of STA <mac> each
SEED_SLACK_S = 5.0  # a `stations` row may be this much older than the kernel's association start (whole seconds, the
# event's own delay) and still count as this association's


@dataclass
class _Fact:
    """What hostapd said of one station, and when: the rarely changing part (not re-read every tick)."""
    keyid: str | None
    authorized: bool
    at: float


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
    facts: dict[str, _Fact] = field(default_factory=dict)  # mac -> hostapd's keyid/authorized
    table_at: float = -1e9  # last walk of hostapd's whole station table


# A station's counters of the tick before: (at, rx_bytes, tx_bytes, tx_packets, tx_retries) - a tuple, as
# counters.station_rates takes it (300 are made a second)
_StaPrev = tuple


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
        self._sta_prev: dict[str, _StaPrev] = {}  # the last tick's stations: whoever is not in it starts afresh
        self._sta_now: dict[str, _StaPrev] = {}  # this tick's, filled by _clients
        self._if_prev: dict[str, tuple[float, int, int]] = {}
        self._services: dict[str, bool | None] = {}
        self._services_at = -1e9
        self._leases_stamp: tuple | None = None
        self._leases: list[leases.Lease] = []  # the pool's leases of the file as last read
        # (until, active leases, the same by MAC): until the next expiry they stay so (a change of the file resets it)
        self._active: tuple[float, list[leases.Lease], dict[str, leases.Lease]] | None = None
        self._active_since = 0.0  # when they were filtered (a clock that went back filters again)
        self._pairs: set[tuple[str, str]] = set()  # their (MAC, IP) pairs, as the admissions are matched
        self._ro: sqlite3.Connection | None = None  # read-only, for the admissions

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
        st.table_at = -1e9  # events may have been missed while not attached: walk the table first
        return ctrl

    def _drop(self, radio: Radio, now: float) -> None:
        st = self.radios[radio.interface]
        if st.ctrl is not None:
            st.ctrl.close()
        st.ctrl, st.retry_at = None, now + 5.0

    def _hostapd(self, radio: Radio, now: float) -> tuple[bool, RadioStatus]:
        """Events since the last tick (they keep the station facts current) and STATUS: two cheap reads."""
        st = self.radios[radio.interface]
        ctrl = self._ctrl(radio, now)
        if ctrl is None:
            return False, RadioStatus()
        try:
            while (ev := ctrl.next_event(0)) is not None:
                if ev.kind == "rejected_max_sta":
                    st.rejected_total += 1
                    st.rejected_times.append(now)
                elif ev.kind == "connected" and ev.mac:
                    # hostapd sends it when the station becomes AUTHORIZED, with its keyid (none: a plain line)
                    st.facts[ev.mac] = _Fact(ev.keyid, True, now)
                elif ev.kind == "disconnected" and ev.mac:
                    st.facts.pop(ev.mac, None)
            reply = ctrl.command("STATUS")
        except RadioError as exc:
            log.warning("Funkmodul %s: %s", radio.interface, exc)
            self._drop(radio, now)
            return False, RadioStatus()
        st.rejected_times = [t for t in st.rejected_times if now - t < REJECT_WINDOW_S]
        # FakeHostapd (demo) and very old builds answer UNKNOWN COMMAND: fall back to the config.
        return True, parse_status(reply) if "=" in reply else RadioStatus()

    def _facts(self, radio: Radio, now: float, dump: dict[str, iw.IwStation] | None) -> list[Station] | None:
        """Bring the station facts up to date as the module docstring says. Returns hostapd's STA blocks when
        the whole table was walked this tick (always without a dump), else None. Costs nothing per tick for
        known stations: one round trip per unknown station, the walk only when due."""
        st = self.radios[radio.interface]
        ctrl = st.ctrl
        table = None
        if ctrl is not None:
            try:
                known = st.facts.get  # a known, authorized station (nearly all, every tick) costs one lookup
                ask = [] if dump is None else [mac for mac, d in dump.items()
                                              if (f := known(mac)) is None or (not f.authorized and _ask(f, d, now))]
                if dump is not None and now - st.table_at >= TABLE_EVERY_S:
                    seeded = self._seed(radio.interface, dump)  # mac -> keyid, None: walk the table instead
                    if seeded is not None:
                        st.table_at = now
                        old, st.facts = st.facts, {mac: _Fact(keyid, True, now) for mac, keyid in seeded.items()}
                        ask = []
                        for mac in dump:
                            f = old.get(mac)
                            if f is not None and f.at >= now:
                                continue  # from this tick's events: newer than any row
                            if mac not in seeded or (f is not None and (f.keyid, f.authorized) != (seeded[mac], True)):
                                ask.append(mac)  # the rows lack it, or they and the monitor's own events disagree
                        st.facts.update((mac, f) for mac, f in old.items() if f.at >= now)
                if dump is None or now - st.table_at >= TABLE_EVERY_S or len(ask) > LOOKUPS_PER_TICK:
                    table = ctrl.stations()
                    st.table_at = now
                    st.facts = {sta.mac: _Fact(sta.keyid, sta.authorized, now) for sta in table}
                else:
                    for mac in ask:  # FAIL (hostapd does not know it): not a client of ours, asked again later
                        sta = ctrl.station(mac)
                        st.facts[mac] = _Fact(sta.keyid, sta.authorized, now) if sta else _Fact(None, False, now)
            except RadioError as exc:
                log.warning("Funkmodul %s: %s", radio.interface, exc)
                self._drop(radio, now)
                table = None
        if dump is not None:
            # gone from the kernel: forget (a fact from this tick's events may be newer than the dump: keep it)
            for mac in st.facts.keys() - dump.keys():
                if st.facts[mac].at < now:
                    del st.facts[mac]
        return table

    def _seed(self, interface: str, dump: dict[str, iw.IwStation]) -> dict[str, str | None] | None:
        """The radio daemon's facts of this tick's stations, from the `stations` table: one SELECT instead of
        hostapd's table walk. None when the database cannot be read or records no connected station of this
        interface while the dump has some (no radio daemon): walk instead. A row recorded before the kernel's
        current association began (less SEED_SLACK_S; connected_at is wall-clock UTC, so is the comparison) is
        left out - the station is asked - as is one the dump has no connected time for."""
        try:
            rows = self._ro_conn().execute(
                "SELECT mac, keyid, connected_at FROM stations WHERE interface = ? AND connected = 1",
                [interface]).fetchall()
        except sqlite3.Error:
            self._close_ro()
            return None
        if not rows and dump:
            return None
        wall = time.time()
        out = {}
        for mac, keyid, connected_at in rows:
            d = dump.get(mac)
            if d is None or d.connected_s is None or not connected_at:
                continue
            try:
                at = datetime.fromisoformat(connected_at).timestamp()
            except ValueError:
                continue
            if at >= wall - d.connected_s - SEED_SLACK_S:
                out[mac] = keyid
        return out

    # -- one tick -------------------------------------------------------------------------------------
    def sample(self) -> dict:
        now = self.clock()
        radios, clients = [], []
        lease_by_mac = self._read_leases(now)[1]
        self._sta_now = {}
        for radio in self.cfg.radios:
            r, cl = self._radio(radio, now, lease_by_mac)
            radios.append(r)
            clients.extend(cl)
        self._sta_prev = self._sta_now  # who is gone is forgotten: a reconnect starts its counters afresh
        # weak links first; unknown signal after the measured ones
        clients.sort(key=lambda c: (c["signal"] is None, c["signal"] if c["signal"] is not None else 0, c["mac"]))
        return {"at": now, "interval_s": self.cfg.monitor_interval_ms / 1000, "radios": radios,
                "clients": clients, "network": self._network(now), "health": self._health(now)}

    def _radio(self, radio: Radio, now: float, lease_by_mac: dict[str, leases.Lease]) -> tuple[dict, list[dict]]:
        st = self.radios[radio.interface]
        reachable, status = self._hostapd(radio, now)
        text = self.runner([self.iw, "dev", radio.interface, "station", "dump"])
        dump = {s.mac: s for s in iw.parse_station_dump(text)} if text is not None else None
        table = self._facts(radio, now, dump)
        reachable = reachable and st.ctrl is not None
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
        if dump is None:  # hostapd's STA blocks of this tick's walk are the counters (no retries in them)
            dump = {sta.mac: _as_dumped(sta, radio.interface) for sta in table or []}
        clients = self._clients(radio.interface, dump, st.facts, now, lease_by_mac)
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

    def _clients(self, interface: str, dump: dict[str, iw.IwStation], facts: dict[str, _Fact], now: float,
                 lease_by_mac: dict[str, leases.Lease]) -> list[dict]:
        """The dashboard rows of a radio's clients. The loop runs for every station every tick, so what it needs
        is bound to locals once, the rates come in one call (counters.station_rates) and this tick's counters are
        kept as a tuple for the next."""
        t, fact_of, lease_of, prev_of = self.t, facts.get, lease_by_mac.get, self._sta_prev.get
        keep, rates = self._sta_now, counters.station_rates
        out = []
        for mac, d in dump.items():
            fact = fact_of(mac)
            # hostapd decides who is a client; without a fact (hostapd unreachable) the kernel's flag does
            if not (fact.authorized if fact is not None else d.authorized is True):
                continue  # mid-handshake or kicked (hostapd lists it with empty flags until REMOVE)
            rx_bytes, tx_bytes, retries = d.rx_bytes, d.tx_bytes, d.tx_retries  # retries None: brcmfmac, hostapd
            prev = prev_of(mac)
            rx_bps, tx_bps, retries_pct = (rates(prev, rx_bytes, tx_bytes, d.tx_packets, retries, now - prev[0])
                                           if prev is not None else (None, None, None))
            keep[mac] = (now, rx_bytes, tx_bytes, d.tx_packets, retries)
            lease = lease_of(mac)
            out.append({
                "mac": mac, "interface": interface, "keyid": fact.keyid if fact is not None else None,
                "ip": lease.ip if lease else None,
                "device": lease.hostname if lease else None,  # the name the device gave DHCP, if any
                "signal": d.signal, "signal_class": signal_class(d.signal, t),
                "tx_mbps": d.tx_bitrate_mbps or None, "rx_mbps": d.rx_bitrate_mbps or None,
                # reported: the driver counts retries at all (else "n/a" on the dashboard, never 0)
                "retries_reported": retries is not None, "tx_retries": retries, "retries_pct": retries_pct,
                "inactive_ms": d.inactive_ms, "connected_s": d.connected_s,
                "rx_bytes": rx_bytes, "tx_bytes": tx_bytes, "rx_bps": rx_bps, "tx_bps": tx_bps,
            })
        return out

    # -- network --------------------------------------------------------------------------------------
    def _read_leases(self, now: float) -> tuple[list[leases.Lease], dict[str, leases.Lease]]:
        """The active leases of the pool, and by MAC. Read again when the file changed, filtered again when one of
        them ran out (leases.next_expiry): not once a tick for 300 leases that did not change."""
        path = self.cfg.leases_file
        try:
            st = path.stat()
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
            if stamp != self._leases_stamp:
                self._leases = leases.in_pool(leases.parse_leases(path.read_text(errors="replace")),
                                              self.cfg.dhcp_start, self.cfg.dhcp_end)
                self._leases_stamp, self._active = stamp, None
        except OSError:
            self._leases, self._leases_stamp, self._active = [], None, None
        if self._active is None or now >= self._active[0] or now < self._active_since:
            active = leases.active_leases(self._leases, now)
            self._active = (leases.next_expiry(active, now), active, {lease.mac: lease for lease in active})
            self._active_since = now
            self._pairs = {(lease.mac, lease.ip) for lease in active}
        return self._active[1], self._active[2]

    def _admissions(self, active: set[tuple[str, str]]) -> tuple[int | None, int | None]:
        """(admitted, captured): live admissions of the active session; captured = leased (MAC, IP) pairs not
        admitted. Pairs, as the firewall and rules.device match them: a MAC admitted at another IP is captured.
        One read-only connection for the collector's life (opening one reads the whole schema again: ~1 ms a
        tick); after an error it is closed and opened again next tick."""
        try:
            rows = self._ro_conn().execute(
                "SELECT DISTINCT a.mac, a.ip FROM admissions a JOIN sessions s ON s.id = a.session_id "
                "WHERE s.active = 1 AND a.revoked_at IS NULL").fetchall()
        except sqlite3.Error:
            self._close_ro()
            return None, None
        admitted = {(mac.lower(), ip) for mac, ip in rows}
        return len(admitted), len(active - admitted)

    def _ro_conn(self) -> sqlite3.Connection:
        if self._ro is None:
            self._ro = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=2)
        return self._ro

    def _close_ro(self) -> None:
        if self._ro is not None:
            self._ro.close()
            self._ro = None

    def _network(self, now: float) -> dict:
        active = self._read_leases(now)[0]
        size = leases.pool_size(self.cfg.dhcp_start, self.cfg.dhcp_end)
        admitted, captured = self._admissions(self._pairs)
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
        self._close_ro()
        for st in self.radios.values():
            if st.ctrl is not None:
                st.ctrl.close()
                st.ctrl = None


def _as_dumped(sta: Station, interface: str) -> iw.IwStation:
    """hostapd's STA block as the dump's record, for a radio without a station dump (hostapd prints no retries)."""
    c = sta_counters(sta)
    return iw.IwStation(sta.mac, interface, sta.inactive_msec, c.rx_bytes, c.tx_bytes, c.tx_packets, None, sta.signal,
                        c.tx_bitrate_mbps, c.rx_bitrate_mbps, sta.connected_time, sta.authorized)


def _ask(fact: _Fact | None, dumped: iw.IwStation, now: float) -> bool:
    """Ask hostapd about a station of the dump? Yes when it is unknown, or when the kernel calls it authorized
    and the facts did not (the AP-STA-CONNECTED was lost), then at most every RECHECK_S."""
    if fact is None:
        return True
    return not fact.authorized and dumped.authorized is not False and now - fact.at >= RECHECK_S


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
