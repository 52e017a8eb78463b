"""Waking the push hubs of every process: one Unix datagram socket per hub, one tiny datagram per publish.

Each web worker's hub (appliance.push.hub) binds a socket in the database's wake directory `<database>-wake/`
(beside its -wal and -shm files, so every process that can write the database finds it without configuration,
and a test's database has its own) and sleeps on it. `publish` (appliance.push.events), in whatever process it
runs — a web worker, the daemon, the command line — sends one byte to every socket there once its transaction
has COMMITTED (appliance.store.transaction.after_commit). The hub wakes, empties its socket and reads the new
rows. Its poll stays only as a slow safety net (Config.push_poll) for a wake that could not be sent.

Sending never blocks and never fails the publisher: a full socket (EAGAIN) already has a wake waiting, a socket
whose hub died (ECONNREFUSED) is deleted, one we may not write (EACCES: a publisher running as another user)
is skipped. The sockets belong to the web user; the daemon runs as that user and root may write any, so in
the box's units every publisher reaches every hub.

Why not inotify on the WAL file: it fires on every write to the database — the monitor's once-a-second samples,
presence, logins — so idle hubs would still wake and read all the time, checkpoints recreate the file under the
watch, and a gevent worker would need the inotify descriptor made cooperative. A datagram says exactly "a push
event was committed" and costs the publisher one sendto per hub (two workers: two).
"""

from __future__ import annotations

import atexit
import logging
import os
import secrets
import socket
import weakref
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
SUFFIX = ".sock"
SUN_PATH_MAX = 100  # sockaddr_un holds 108 bytes; longer paths (deep test directories) go through the dir's fd


def directory_for(db_path: Path | str) -> Path:
    """The wake directory of a database file."""
    return Path(f"{db_path}-wake")


def directory_of(db: Any) -> Path | None:
    """The wake directory of an open database (sqlite_utils.Database); None for an in-memory one."""
    try:
        return _DIRS[db]
    except (KeyError, TypeError):
        pass
    found = None
    for _seq, name, path in db.conn.execute("PRAGMA database_list").fetchall():
        if name == "main" and path:
            found = directory_for(path)
    try:
        _DIRS[db] = found
    except TypeError:  # not weakly referable: asked again next time
        pass
    return found


_DIRS: weakref.WeakKeyDictionary[Any, Path | None] = weakref.WeakKeyDictionary()


def _address(directory: Path, dir_fd: int, name: str) -> str:
    path = f"{directory}/{name}"
    return path if len(os.fsencode(path)) <= SUN_PATH_MAX else f"/proc/self/fd/{dir_fd}/{name}"


def notify(directory: Path | None) -> int:
    """Wake every hub listening in `directory`; returns how many sockets took (or already had) a wake."""
    if directory is None:
        return 0
    try:
        names = [n for n in os.listdir(directory) if n.endswith(SUFFIX)]
    except OSError:  # no hub has ever listened here (or we may not look): the safety-net poll remains
        return 0
    if not names:
        return 0
    woken = 0
    dir_fd = -1  # opened only for addresses too long for sockaddr_un
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)  # also under gevent: EAGAIN raises instead of waiting
            for name in names:
                address = f"{directory}/{name}"
                if len(os.fsencode(address)) > SUN_PATH_MAX:
                    if dir_fd < 0:
                        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                    address = f"/proc/self/fd/{dir_fd}/{name}"
                try:
                    sock.sendto(b"!", address)
                    woken += 1
                except BlockingIOError:  # its queue is full: it has wakes enough
                    woken += 1
                except ConnectionRefusedError:  # its hub died without removing it
                    try:
                        os.unlink(directory / name)
                    except OSError:
                        pass
                except OSError:  # gone meanwhile, or not ours to write
                    pass
    except OSError as exc:
        log.debug("Push-Wecken: %s", exc)
    finally:
        if dir_fd >= 0:
            os.close(dir_fd)
    return woken


class Listener:
    """A hub's own socket: wait() returns early when woken. open() False: no socket, the hub only polls."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.pid = os.getpid()
        self.name = f"{self.pid}-{secrets.token_hex(4)}{SUFFIX}"
        self.sock: socket.socket | None = None
        self._dir_fd = -1
        self.address = ""

    def open(self) -> bool:
        try:
            self.directory.mkdir(mode=0o750, exist_ok=True)
            self._dir_fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            self.address = _address(self.directory, self._dir_fd, self.name)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            try:
                sock.bind(self.address)
            except OSError:
                sock.close()
                raise
        except OSError as exc:
            log.warning("Push: kein Wecksocket in %s (%s); neue Ereignisse erst beim nächsten Nachsehen",
                        self.directory, exc)
            self.close()
            return False
        self.sock = sock
        _remove_at_exit(self)
        return True

    def wait(self, timeout: float) -> bool:
        """Sleep until woken or timeout; True if woken. Every wake queued meanwhile is taken with it."""
        sock = self.sock
        if sock is None:
            return False
        try:
            sock.settimeout(timeout)
            sock.recv(64)
        except (TimeoutError, BlockingIOError):  # BlockingIOError: timeout 0, nothing there
            return False
        except OSError as exc:  # never expected: give the socket up rather than spin on it
            log.warning("Push: Wecksocket unbrauchbar (%s); neue Ereignisse erst beim nächsten Nachsehen", exc)
            self.close()
            return False
        try:
            sock.settimeout(0.0)
            while True:
                sock.recv(64)
        except OSError:  # BlockingIOError: empty
            pass
        return True

    def poke(self) -> None:
        """Wake this listener (stop() uses it to end the wait at once)."""
        if self.sock is None:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.setblocking(False)
                sock.sendto(b"!", self.address)
        except OSError:
            pass

    def close(self) -> None:
        _OPEN.discard(self)
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self._dir_fd >= 0:
            try:
                os.unlink(self.name, dir_fd=self._dir_fd)
            except OSError:
                pass
            os.close(self._dir_fd)
            self._dir_fd = -1


_OPEN: set[Listener] = set()


def _remove_at_exit(listener: Listener) -> None:
    """A worker that exits normally (gunicorn's graceful stop) takes its socket files with it; a killed one
    leaves them to the next publisher (ECONNREFUSED: deleted)."""
    if not _OPEN:
        atexit.unregister(_exit)
        atexit.register(_exit)
    _OPEN.add(listener)


def _exit() -> None:
    for listener in list(_OPEN):
        if listener.pid == os.getpid():  # not a forked child's copy
            try:
                os.unlink(listener.directory / listener.name)
            except OSError:
                pass
