"""`sitzungsbox monitor`: samples the box once per interval and writes what the dashboard reads.

Unprivileged (user sitzungsbox, no capabilities): everything it reads is readable by that user. One
sample, one short transaction (snapshot + points + alerts); the web app only reads. Once a minute the
seconds are averaged into minutes and old points are dropped.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Callable

from appliance.config import Config
from appliance.monitor import alerts, snapshot, timeseries
from appliance.monitor.classify import Thresholds
from appliance.monitor.collector import Collector
from appliance.store import open_db
from appliance.store.transaction import transaction

log = logging.getLogger("sitzungsbox.monitor")


class Monitor:
    def __init__(self, cfg: Config, collector: Collector | None = None, clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.clock = clock
        self.collector = collector or Collector(cfg, clock=clock)
        self.tracker = alerts.Tracker(cfg.monitor_alert_after_s)
        self.t = Thresholds.from_config(cfg)
        self.db = open_db(cfg.db_path)
        self._last_clients = -1e9
        self._last_minute: float | None = None
        self.last: dict | None = None

    def tick(self) -> dict:
        snap = self.collector.sample()
        now = snap["at"]
        with_clients = now - self._last_clients >= timeseries.CLIENT_EVERY_S
        if with_clients:
            self._last_clients = now
        due = self.tracker.due(alerts.evaluate(snap, self.t), now)
        minute = int(now) // 60
        with transaction(self.db):
            self.db.execute("INSERT OR REPLACE INTO monitor_state (key, at, value) VALUES ('snapshot', ?, ?)",
                            [now, snapshot.encode(snap)])
            timeseries.write(self.db, now, timeseries.from_snapshot(snap, with_clients))
            alerts.persist(self.db, due, now)
            if self._last_minute is None or minute != self._last_minute:
                since = self._last_minute * 60 if self._last_minute is not None else None
                timeseries.downsample(self.db, now, since)
                timeseries.prune(self.db, now)
                self._last_minute = minute
        self.last = snap
        return snap

    def run(self, stop: threading.Event) -> None:
        period = self.cfg.monitor_interval_ms / 1000
        next_at = time.monotonic()
        while not stop.is_set():
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - one bad sample must not end the monitoring
                log.exception("Messung fehlgeschlagen")
            next_at += period
            delay = next_at - time.monotonic()
            if delay < 0:  # fell behind (suspend, overload): do not burst to catch up
                next_at, delay = time.monotonic(), 0
            stop.wait(delay)

    def close(self) -> None:
        self.collector.close()
        self.db.conn.close()


def main(cfg: Config, once: bool = False) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    mon = Monitor(cfg)
    try:
        if once:
            print(json.dumps(mon.tick(), indent=2, ensure_ascii=False))
            return 0
        log.info("Überwachung läuft (alle %d ms, %d Funkmodul(e))", cfg.monitor_interval_ms, len(cfg.radios))
        from appliance import sdnotify
        sdnotify.notify("READY=1")
        # Watchdog: ping only while samples keep coming (a hung `iw` or database lock stops them).
        stale_after = max(10.0, 5 * cfg.monitor_interval_ms / 1000)
        watchdog = sdnotify.Watchdog(
            lambda: mon.last is not None and mon.clock() - mon.last["at"] < stale_after).start()
        try:
            mon.run(stop)
        finally:
            watchdog.stop()
    finally:
        mon.close()
    return 0
