"""Presence sources, read by the daemon: hostapd stations (written by the radio daemon), dnsmasq leases, the
portal's admissions, and ARP probes for quiet devices (scapy, only here in the daemon, never the web app).

The MAC is only a device key. Which member a device is comes from the one device rule
(appliance.rules.device, read through captive.identify.Records once per round), exactly as the portal
decides it: the keyid of the station's association, else a live code admission of exactly (MAC, IP) in the
active session; never an admission matched by MAC alone. What each source contributes:

- hostapd (the `stations` table): connect → the station with its keyid, and the IP of its DHCP lease if any;
  disconnect → the station as it was while connected, so the leave goes to whoever the device was.
- DHCP lease new or renewed → the lease's (MAC, IP) with the station of that MAC.
- a new admission row → its MAC at its current IP (the lease's, else the row's) with the station of that MAC.
- ARP answer for a quiet device → the probed (IP, MAC) pair; counted for the member only if the rule still
  names that member for it (a MAC now at another IP, a revoked code admission or a rotated key do not).

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

from appliance.captive.identify import Records
from appliance.config import Config
from appliance.monitor.leases import parse_leases
from appliance.presence import store
from appliance.presence.engine import Obs
from appliance.rules import device as rule

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
        self.lease_ip: dict[str, str] = {}  # mac -> ip of its current lease
        self.lease_mtime = 0.0
        self.last_admission = 0
        self.last_probe = 0.0
        self.session_id: int | None = None
        self.rounds = 0
        self.tick_memo = store.TickMemo()  # the idle tick reads nothing until something is written or due

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

    def _record(self, db: Any, sid: int, who: rule.Identity, obs: Obs) -> None:
        if who.kind == "member" and who.member is not None:
            store.record(db, sid, who.member.id, obs, self.grace)

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
            self.stations, self.leases, self.lease_ip, self.lease_mtime = {}, {}, {}, 0.0
            store.boot(db, sid, self.grace, now)  # (re)start: known devices get one grace to reappear
        records = Records(db)
        cur = {mac: (st.keyid, st.connected) for mac, st in records.stations.items()}
        fresh_leases = self._read_leases()
        if fresh_leases is not None:
            self.lease_ip = {mac: ip for mac, (_exp, ip) in fresh_leases.items()}
        for mac, keyid, kind in station_changes(self.stations, cur):
            # connect: the station now; disconnect: the station as it was while connected (its keyid then).
            who = records.resolve(mac, self.lease_ip.get(mac), rule.Station(keyid, True))
            self._record(db, sid, who, Obs(now, kind, mac, "hostapd"))
        self.stations = cur
        if fresh_leases is not None:
            cur_leases = {mac: expiry for mac, (expiry, _ip) in fresh_leases.items()}
            for mac in lease_changes(self.leases, cur_leases):
                self._record(db, sid, records.resolve(mac, self.lease_ip.get(mac)), Obs(now, "seen", mac, "dhcp"))
            self.leases = cur_leases
        self._admissions(db, sid, now, records)
        if self.prober is not None and now - self.last_probe >= self.probe_every:
            self.last_probe = now
            self._probe(db, sid, now, records)
        store.tick_session(db, sid, self.grace, now, self.tick_memo)

    def _read_leases(self) -> dict[str, tuple[int, str]] | None:
        """mac -> (expiry, ip) when the lease file changed since the last read, else None."""
        path = Path(self.cfg.leases_file)
        try:
            mtime = path.stat().st_mtime
            if mtime == self.lease_mtime:
                return None
            text = path.read_text()
        except OSError:
            return None
        self.lease_mtime = mtime
        return {lease.mac: (lease.expiry, lease.ip) for lease in parse_leases(text)}

    def _admissions(self, db: Any, sid: int, now: float, records: Records) -> None:
        rows = db.execute("SELECT id, mac, ip, member_id FROM admissions WHERE id > ? AND session_id = ? "
                          "AND revoked_at IS NULL ORDER BY id", [self.last_admission, sid]).fetchall()
        for adm_id, mac, ip, member in rows:
            # The row itself is evidence (it may be newer than the round's records), for the device where it is
            # now: a device that has since moved to another lease is no longer named by it.
            row = rule.Admission(mac, ip, sid, int(member) if member is not None else None)
            who = records.resolve(mac, self.lease_ip.get(mac.lower(), ip), admissions=[row])
            self._record(db, sid, who, Obs(now, "seen", mac, "portal"))
            self.last_admission = adm_id

    def _probe(self, db: Any, sid: int, now: float, records: Records) -> None:
        quiet = db.execute("SELECT member_id, device FROM presence_devices WHERE session_id = ? "
                           "AND last_seen < ?", [sid, now - self.probe_every]).fetchall()
        ips = {}
        for row in db.execute("SELECT mac, ip FROM admissions WHERE session_id = ? AND revoked_at IS NULL", [sid]):
            ips[row[0]] = row[1]
        targets = {ips[dev]: dev for _m, dev in quiet if dev in ips}
        for mac, lease_ip in self.lease_ip.items():
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
            if records.resolve(dev, ip).member_id != int(member):
                continue  # the rule no longer names this member for the pair: no evidence either way
            kind = "seen" if ip in answered else "lost"
            store.record(db, sid, int(member), Obs(now, kind, dev, "arp"), self.grace)


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
