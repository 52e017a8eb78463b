"""`sitzungsbox daemon`: the box's unprivileged background process.

It records what the radios report (which station connected with which personal key) and announces the
box over mDNS. The web app never talks to sockets it does not need; it reads what this writes.
"""

from __future__ import annotations

import logging
import signal
import threading

from appliance.config import Config

log = logging.getLogger("sitzungsbox.daemon")


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
    # Retention of personal data: checked at start and then hourly.
    from appliance import retention
    while not stop.is_set():
        try:
            db = open_db(cfg.db_path, migrate=False)
            try:
                purged = retention.purge(db, cfg.retention_days)
            finally:
                db.conn.close()
            if purged:
                log.info("Personenbezogene Daten gelöscht (älter als %d Tage): Sitzungen %s, Zeilen %s",
                         cfg.retention_days, purged.sessions, purged.rows)
        except Exception:  # never let housekeeping take the radio and presence down
            log.exception("Löschfrist: Aufräumen fehlgeschlagen")
        stop.wait(3600)
    sdnotify.notify("STOPPING=1")
    watchdog.stop()
    presence.stop()
    radio.stop()
    if announcer:
        announcer.stop()
    return 0
