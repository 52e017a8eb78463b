"""`sitzungsbox daemon`: the box's unprivileged background process.

It records what the radios report (which station connected with which personal key) and announces the
box over mDNS. The web app never talks to sockets it does not need; it reads what this writes.

Its main loop is the box's housekeeping tick (`Housekeeping.tick`, about once a second): it closes the votes
whose countdown ran out (usecases.votes.close_due: the close's push event brings the result to the room screen
and the phones even when no page asks), and runs retention at the start and then hourly.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from appliance.config import Config

log = logging.getLogger("sitzungsbox.daemon")

TICK_SECONDS = 1.0  # a countdown's close reaches the room screen at most this late (plus the push's delay)
RETENTION_SECONDS = 3600.0


class Housekeeping:
    """The periodic acts of the daemon on one database connection (opened on first use, reopened after an
    error). `tick()` never raises: housekeeping must not take the radio and presence down."""

    def __init__(self, cfg: Config, *, retention: bool = True, clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.retention = retention
        self.clock = clock
        self.next_retention = 0.0  # at the first tick
        self._db: Any = None

    def _open(self) -> Any:
        if self._db is None:
            from appliance.store import open_db
            self._db = open_db(self.cfg.db_path, migrate=False)
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.conn.close()
            self._db = None

    def tick(self) -> list[int]:
        """Close the votes due now; run retention when its hour came. Returns the ids of the votes closed."""
        from appliance import retention
        from appliance.usecases import votes

        now = self.clock()
        closed: list[int] = []
        try:
            closed = votes.close_due(self._open(), now)
            if closed:
                log.info("Countdown abgelaufen: Abstimmung(en) %s geschlossen", closed)
        except Exception:
            log.exception("Abstimmungen: Schließen nach Countdown fehlgeschlagen")
            self.close()
        if self.retention and now >= self.next_retention:
            self.next_retention = now + RETENTION_SECONDS
            try:
                purged = retention.purge(self._open(), self.cfg.retention_days)
                if purged:
                    log.info("Personenbezogene Daten gelöscht (älter als %d Tage): Sitzungen %s, Zeilen %s",
                             self.cfg.retention_days, purged.sessions, purged.rows)
            except Exception:
                log.exception("Löschfrist: Aufräumen fehlgeschlagen")
                self.close()
        return closed


def main(cfg: Config, announce: bool = True) -> int:
    from appliance.radio.daemon import RadioDaemon

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    # Migrate once, before the threads: radio and presence each open the database, and two first-time
    # migrations racing on a fresh state dir killed one of them ("table settings already exists").
    from appliance.store import open_db
    open_db(cfg.db_path).conn.close()
    radio = RadioDaemon(cfg, cfg.db_path)
    radio.start()
    from appliance.presence.sources import PresenceDaemon, make_prober
    presence = PresenceDaemon(cfg, prober=make_prober(cfg)).start()
    announcer = None
    if announce and not cfg.demo:
        from appliance.mdns import Announcer
        announcer = Announcer(cfg)
        try:
            announcer.start()
        except OSError as exc:  # the address may not exist yet; the radios matter more
            log.warning("mDNS-Ankündigung nicht möglich: %s", exc)
            announcer = None
    log.info("Sitzungsbox-Dienst läuft (%d Funkmodul(e))", len(cfg.radios))
    from appliance import sdnotify
    sdnotify.notify("READY=1\nSTATUS=Funk-Ereignisse und Anwesenheit laufen")
    # Watchdog: ping only while the worker threads live; a dead thread gets the service restarted.
    watchdog = sdnotify.Watchdog(lambda: all(t.is_alive() for t in [*radio._threads, presence._thread] if t)).start()
    # Housekeeping: votes whose countdown ran out every second; retention at start and then hourly.
    house = Housekeeping(cfg)
    while not stop.is_set():
        house.tick()
        stop.wait(TICK_SECONDS)
    house.close()
    sdnotify.notify("STOPPING=1")
    watchdog.stop()
    presence.stop()
    radio.stop()
    if announcer:
        announcer.stop()
    return 0
