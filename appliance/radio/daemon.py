"""RadioDaemon: keeps the `stations` table in step with every radio's hostapd (the only writer of it).

One thread per radio, attached to `<hostapd_ctrl_dir>/<interface>`:
- on every (re)attach: `stations()` -> upsert the AUTHORIZED ones as connected, mark this interface's
  other connected rows as disconnected (events missed while we were away are repaired here);
- then events: AP-STA-CONNECTED -> connected=1 with keyid; AP-STA-DISCONNECTED -> connected=0;
- a quiet socket is PINGed; no PONG (hostapd restarted: our connected socket now points at a dead
  inode) or a missing socket -> reconnect with exponential backoff.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from appliance.config import Config, Radio
from appliance.radio.ctrl import HostapdCtrl, RadioError
from appliance.radio.events import Event, Station
from appliance.store import open_db
from appliance.store.db import now
from appliance.store.transaction import transaction

log = logging.getLogger(__name__)


def _ago(seconds: int) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def sync_stations(db, interface: str, stations: list[Station]) -> None:
    """Make the table match hostapd's list for one interface."""
    listed = set()
    with transaction(db):
        for sta in stations:
            # Not AUTHORIZED: still in the 4-way handshake (no keyid yet), or kicked - after DEAUTHENTICATE
            # hostapd 2.10 keeps listing the entry with `flags=` empty and `timeout_next=REMOVE` (seen live).
            if not sta.authorized:
                continue
            listed.add(sta.mac)
            row = db.execute("SELECT interface, keyid, connected FROM stations WHERE mac = ?", [sta.mac]).fetchone()
            if row == (interface, sta.keyid, 1):
                continue  # already known as connected: keep its connected_at
            since = _ago(sta.connected_time) if sta.connected_time is not None else now()
            db.execute(
                "INSERT INTO stations (mac, interface, keyid, connected, connected_at, disconnected_at) "
                "VALUES (?, ?, ?, 1, ?, NULL) ON CONFLICT(mac) DO UPDATE SET interface = excluded.interface, "
                "keyid = excluded.keyid, connected = 1, connected_at = excluded.connected_at, disconnected_at = NULL",
                [sta.mac, interface, sta.keyid, since],
            )
        stale = [mac for (mac,) in db.execute(
            "SELECT mac FROM stations WHERE interface = ? AND connected = 1", [interface]).fetchall()
            if mac not in listed]
        for mac in stale:
            db.execute("UPDATE stations SET connected = 0, disconnected_at = ? WHERE mac = ?", [now(), mac])


def apply_event(db, interface: str, ev: Event) -> bool:
    """Apply one event to the table; True when it changed something we track."""
    if ev.mac is None:
        return False
    if ev.kind == "connected":
        with transaction(db):
            db.execute(
                "INSERT INTO stations (mac, interface, keyid, connected, connected_at, disconnected_at) "
                "VALUES (?, ?, ?, 1, ?, NULL) ON CONFLICT(mac) DO UPDATE SET interface = excluded.interface, "
                "keyid = excluded.keyid, connected = 1, connected_at = excluded.connected_at, disconnected_at = NULL",
                [ev.mac, interface, ev.keyid, now()],
            )
        return True
    if ev.kind == "disconnected":
        # Only this interface's row: a phone roaming to the other radio may already be connected there.
        with transaction(db):
            db.execute("UPDATE stations SET connected = 0, disconnected_at = ? "
                       "WHERE mac = ? AND interface = ? AND connected = 1", [now(), ev.mac, interface])
        return True
    return False


class RadioDaemon:
    def __init__(self, cfg: Config, db_path: Path | str, ping_interval: float = 5.0,
                 backoff: tuple[float, float] = (0.2, 10.0), timeout: float = 2.0) -> None:
        self.cfg = cfg
        self.db_path = db_path
        self.ping_interval = ping_interval
        self.backoff = backoff
        self.timeout = timeout
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._cond = threading.Condition()
        # progress counters, for tests and the status page
        self.events_processed = 0
        self.syncs = 0
        self.attached: dict[str, bool] = {r.interface: False for r in cfg.radios}

    def start(self) -> RadioDaemon:
        self._stop.clear()
        for radio in self.cfg.radios:
            t = threading.Thread(target=self._run, args=(radio,), name=f"radio {radio.interface}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)
        self._threads.clear()

    def __enter__(self) -> RadioDaemon:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_until(self, predicate, timeout: float = 5.0) -> bool:
        """Block until predicate(self) holds (re-checked whenever the daemon made progress)."""
        end = time.monotonic() + timeout
        with self._cond:
            while not predicate(self):
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def _progress(self, **changes: int) -> None:
        with self._cond:
            for name, delta in changes.items():
                setattr(self, name, getattr(self, name) + delta)
            self._cond.notify_all()

    def _set_attached(self, iface: str, value: bool) -> None:
        with self._cond:
            self.attached[iface] = value
            self._cond.notify_all()

    def _run(self, radio: Radio) -> None:
        iface = radio.interface
        path = self.cfg.hostapd_ctrl_dir / iface
        db = open_db(self.db_path)
        delay = self.backoff[0]
        warned = False
        try:
            while not self._stop.is_set():
                try:
                    with HostapdCtrl(path, local_dir=self.cfg.run_dir, timeout=self.timeout) as ctrl:
                        ctrl.attach()
                        sync_stations(db, iface, ctrl.stations())
                        log.info("Funkmodul %s verbunden", iface)
                        warned = False
                        delay = self.backoff[0]
                        self._set_attached(iface, True)
                        self._progress(syncs=1)
                        self._listen(ctrl, db, iface)
                except RadioError as exc:
                    if not warned:
                        log.warning("%s; neuer Versuch läuft", exc)
                        warned = True
                finally:
                    self._set_attached(iface, False)
                if self._stop.wait(delay):
                    break
                delay = min(delay * 2, self.backoff[1])
        finally:
            db.conn.close()

    def _listen(self, ctrl: HostapdCtrl, db, iface: str) -> None:
        last = time.monotonic()
        while not self._stop.is_set():
            ev = ctrl.next_event(timeout=min(0.5, self.ping_interval))
            if ev is not None:
                last = time.monotonic()
                if apply_event(db, iface, ev):
                    self._progress(events_processed=1)
                continue
            if time.monotonic() - last >= self.ping_interval:
                if not ctrl.ping():
                    raise RadioError(f"Funkmodul {iface}: hostapd antwortet nicht mehr (Neustart?)")
                last = time.monotonic()
