"""systemd's notify protocol (sd_notify(3)) without a dependency: READY=1, WATCHDOG=1, STATUS=, STOPPING=1.

A service with `Type=notify` is "started" only once it sends READY=1, so units ordered after it start
when it really serves. With `WatchdogSec=` systemd kills and restarts a service that stops pinging:
the Watchdog thread pings only while the service's own health check passes, so a hung web worker
or a stuck sampling loop is restarted, not just a dead process.

Outside systemd (no $NOTIFY_SOCKET) every call is a cheap no-op.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import urllib.request
from collections.abc import Callable

log = logging.getLogger("sitzungsbox.sdnotify")


def notify(message: str, env: dict[str, str] | None = None) -> bool:
    """Send one datagram to $NOTIFY_SOCKET; True if sent. Abstract sockets are spelled with a leading '@'."""
    addr = (env if env is not None else os.environ).get("NOTIFY_SOCKET", "")
    if not addr:
        return False
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.sendto(message.encode(), addr)
    except OSError as exc:  # systemd gone or socket not reachable: never fatal for the service
        log.debug("sd_notify fehlgeschlagen: %s", exc)
        return False
    return True


def watchdog_interval(env: dict[str, str] | None = None, pid: int | None = None) -> float | None:
    """Seconds between pings (half of WatchdogSec, as sd_watchdog_enabled(3) advises) or None if off.

    WATCHDOG_PID, when set, names the process the watchdog is meant for; a child that inherited the
    environment must not ping on its parent's behalf.
    """
    e = env if env is not None else os.environ
    try:
        usec = int(e.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    wpid = e.get("WATCHDOG_PID")
    if wpid and wpid.isdigit() and int(wpid) != (pid if pid is not None else os.getpid()):
        return None
    return usec / 2_000_000


def http_ok(url: str, timeout: float = 2.0) -> Callable[[], bool]:
    """A health check: GET url answers 200 within timeout (loopback only; no proxy)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def check() -> bool:
        try:
            with opener.open(url, timeout=timeout) as resp:  # noqa: S310 - fixed http://127.0.0.1 URL
                return resp.status == 200
        except OSError:
            return False

    return check


class Watchdog:
    """Background thread: every interval, run `check`; ping WATCHDOG=1 only if it passed."""

    def __init__(self, check: Callable[[], bool], interval: float | None = None,
                 send: Callable[[str], bool] = notify) -> None:
        self.check, self.send = check, send
        self.interval = interval if interval is not None else watchdog_interval()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.pings = 0
        self.failures = 0

    def beat(self) -> bool:
        """One round (public for tests): check, then ping if healthy."""
        try:
            healthy = bool(self.check())
        except Exception:  # noqa: BLE001 - a crashing check counts as unhealthy, never kills the thread
            log.exception("Gesundheitsprüfung fehlgeschlagen")
            healthy = False
        if healthy:
            self.send("WATCHDOG=1")
            self.pings += 1
        else:
            self.failures += 1
            log.warning("Gesundheitsprüfung nicht bestanden: kein Watchdog-Signal an systemd")
        return healthy

    def start(self) -> Watchdog:
        if self.interval is None:
            return self
        self._thread = threading.Thread(target=self._run, name="sd-watchdog", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        assert self.interval is not None
        while not self._stop.wait(self.interval):
            self.beat()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
