"""Presence sources, read by the daemon: hostapd stations (written by the radio daemon), dnsmasq leases, the
portal's admissions, and ARP probes for quiet devices (scapy, only here in the daemon, never the web app).

The MAC is only a device key: the member is looked up from the station's keyid or the admission each time.
Diffing is pure (station_changes, lease_changes); PresenceDaemon is the thin I/O loop around it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appliance.config import Config
from appliance.monitor.leases import parse_leases
from appliance.presence import store
from appliance.presence.engine import Obs

log = logging.getLogger("sitzungsbox.presence")

StationSnap = dict[str, tuple[str | None, bool]]  # mac -> (keyid, connected)


def station_changes(prev: StationSnap, cur: StationSnap) -> list[tuple[str, str | None, str]]:
    """(mac, keyid, 'connect'|'disconnect') for what changed between two snapshots of `stations`."""
    out = []
    for mac, (keyid, connected) in cur.items():
        before = prev.get(mac)
        if connected and (before is None or not before[1] or before[0] != keyid):
            out.append((mac, keyid, "connect"))
        elif not connected and before is not None and before[1]:
            out.append((mac, before[0], "disconnect"))
    for mac, (keyid, connected) in prev.items():
        if connected and mac not in cur:
            out.append((mac, keyid, "disconnect"))
    return out


def lease_changes(prev: dict[str, int], cur: dict[str, int]) -> list[str]:
    """MACs whose lease is new or was renewed (expiry moved): the device just talked DHCP to us."""
    return [mac for mac, expiry in cur.items() if prev.get(mac) != expiry]


class ScapyArp:
    """Broadcast ARP who-has for a few IPs on the client interface; needs CAP_NET_RAW."""

    def __init__(self, iface: str, timeout: float = 1.0) -> None:
        self.iface, self.timeout = iface, timeout

    def probe(self, targets: dict[str, str]) -> set[str]:
        """targets: ip -> expected mac; returns the IPs answered by that MAC."""
        from scapy.all import ARP, Ether, conf, srp  # heavy (1.3 s): imported on first probe only

        conf.verb = 0
        pkts = [Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(pdst=ip) for ip in targets]
        answered, _ = srp(pkts, iface=self.iface, timeout=self.timeout, verbose=0)
        return {r.psrc for _s, r in answered if targets.get(r.psrc, "").lower() == r.hwsrc.lower()}


class PresenceDaemon:
    """Runs in `sitzungsbox daemon`: every interval diff the sources, record observations, tick grace."""

    def __init__(self, cfg: Config, prober: Any = None, probe_every: float | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.grace = cfg.presence_grace
        self.interval = cfg.presence_interval
        # Probe a quiet device a few times within its grace, so a vanished one is noticed in time.
        self.probe_every = probe_every if probe_every is not None else max(1.0, self.grace / 3)
        self.prober = prober
        self.clock = clock
        self.stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self.stations: StationSnap = {}
        self.leases: dict[str, int] = {}
        self.lease_mtime = 0.0
        self.last_admission = 0
        self.last_probe = 0.0
        self.session_id: int | None = None
        self.rounds = 0

    def start(self) -> PresenceDaemon:
        self._thread = threading.Thread(target=self._run, name="presence", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        from appliance.store import open_db

        db = open_db(self.cfg.db_path)
        try:
            while not self.stop_event.is_set():
                try:
                    self.round(db)
                except Exception:
                    log.exception("Anwesenheit: Durchlauf fehlgeschlagen")
                self.stop_event.wait(self.interval)
        finally:
            db.conn.close()

    def _member_of(self, db: Any, session_id: int, mac: str, keyid: str | None) -> int | None:
        if keyid:
            row = db.execute("SELECT id FROM members WHERE keyid = ? AND session_id = ?",
                             [keyid, session_id]).fetchone()
            if row:
                return int(row[0])
        row = db.execute("SELECT member_id FROM admissions WHERE mac = ? AND session_id = ? AND revoked_at IS NULL "
                         "AND member_id IS NOT NULL ORDER BY id DESC LIMIT 1", [mac, session_id]).fetchone()
        return int(row[0]) if row else None

    def round(self, db: Any) -> None:
        """One pass over every source (public for tests and the benchmark)."""
        self.rounds += 1
        now = self.clock()
        row = db.execute("SELECT id FROM sessions WHERE active = 1").fetchone()
        if row is None:
            self.session_id = None
            return
        sid = int(row[0])
        if sid != self.session_id:
            self.session_id = sid
            self.stations, self.leases, self.lease_mtime = {}, {}, 0.0
            store.boot(db, sid, self.grace, now)  # (re)start: known devices get one grace to reappear
        cur = {r[0]: (r[1], bool(r[2])) for r in db.execute("SELECT mac, keyid, connected FROM stations")}
        for mac, keyid, kind in station_changes(self.stations, cur):
            member = self._member_of(db, sid, mac, keyid)
            if member is not None:
                store.record(db, sid, member, Obs(now, kind, mac, "hostapd"), self.grace)
        self.stations = cur
        self._leases(db, sid, now)
        self._admissions(db, sid, now)
        if self.prober is not None and now - self.last_probe >= self.probe_every:
            self.last_probe = now
            self._probe(db, sid, now)
        store.tick_session(db, sid, self.grace, now)

    def _leases(self, db: Any, sid: int, now: float) -> None:
        path = Path(self.cfg.leases_file)
        try:
            mtime = path.stat().st_mtime
            if mtime == self.lease_mtime:
                return
            text = path.read_text()
        except OSError:
            return
        self.lease_mtime = mtime
        cur = {lease.mac: lease.expiry for lease in parse_leases(text)}
        for mac in lease_changes(self.leases, cur):
            member = self._member_of(db, sid, mac, self.stations.get(mac, (None, False))[0])
            if member is not None:
                store.record(db, sid, member, Obs(now, "seen", mac, "dhcp"), self.grace)
        self.leases = cur

    def _admissions(self, db: Any, sid: int, now: float) -> None:
        rows = db.execute("SELECT id, mac, member_id FROM admissions WHERE id > ? AND session_id = ? "
                          "AND member_id IS NOT NULL AND revoked_at IS NULL ORDER BY id",
                          [self.last_admission, sid]).fetchall()
        for adm_id, mac, member in rows:
            store.record(db, sid, int(member), Obs(now, "seen", mac, "portal"), self.grace)
            self.last_admission = adm_id

    def _probe(self, db: Any, sid: int, now: float) -> None:
        quiet = db.execute("SELECT member_id, device FROM presence_devices WHERE session_id = ? "
                           "AND last_seen < ?", [sid, now - self.probe_every]).fetchall()
        ips = {}
        for row in db.execute("SELECT mac, ip FROM admissions WHERE session_id = ? AND revoked_at IS NULL", [sid]):
            ips[row[0]] = row[1]
        targets = {ips[dev]: dev for _m, dev in quiet if dev in ips}
        for mac, lease_ip in self._lease_ips().items():
            if mac in {d for _m, d in quiet} and lease_ip not in targets:
                targets[lease_ip] = mac
        if not targets:
            return
        try:
            answered = self.prober.probe(targets)
        except (PermissionError, OSError) as exc:
            log.warning("ARP-Proben nicht möglich (CAP_NET_RAW fehlt?): %s; nur Funk und DHCP zählen", exc)
            self.prober = None
            return
        for member, dev in quiet:
            ip = next((i for i, m in targets.items() if m == dev), None)
            if ip is None:
                continue
            kind = "seen" if ip in answered else "lost"
            store.record(db, sid, int(member), Obs(now, kind, dev, "arp"), self.grace)

    def _lease_ips(self) -> dict[str, str]:
        try:
            return {lease.mac: lease.ip for lease in parse_leases(Path(self.cfg.leases_file).read_text())}
        except OSError:
            return {}


def make_prober(cfg: Config) -> Any:
    """scapy ARP on the client interface when we may send raw frames, else none (radio and DHCP still count)."""
    if os.geteuid() != 0 and not _has_net_raw():
        log.info("Kein CAP_NET_RAW: Anwesenheit ohne ARP-Proben (Funk, DHCP und Portal zählen)")
        return None
    return ScapyArp(cfg.interface)


def _has_net_raw() -> bool:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) & (1 << 13))  # CAP_NET_RAW
    except OSError:
        pass
    return False
