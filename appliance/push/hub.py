"""One hub per process feeds every open stream of that process.

Each web worker's hub (gevent: the thread below is a greenlet) sleeps on its wake socket (appliance.push.wake)
until a publisher in any process — this worker, the other one, the daemon, the command line — has committed a
push event, then reads the new push_events rows once and hands each to the queues of the streams that may see
it. A stream costs one queue; the database is read once per wake per process, not once per connection. With
nothing happening it reads only every `poll` seconds (Config.push_poll, a safety net for a wake that could not
be sent); the rows themselves stay the only truth, so a lost wake delays an event but never loses it.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from appliance.push import wake as wake_mod
from appliance.push.audience import is_pure, visible
from appliance.push.events import Event, last_id, since

log = logging.getLogger(__name__)
SEEN_MAX = 256  # audiences remembered per stream (a per-id audience per member or screen at most)
QUEUE_MAX = 2000  # a client this far behind is cut off; it resumes from its Last-Event-ID without a gap
READ_MAX = 500  # rows per read; a full read is followed by the next at once
# After a wake that found no new row, look again after these pauses (s): the wake may have come before the
# COMMIT it announces (a publisher inside a transaction that appliance.store.transaction did not open).
RECHECK = (0.01, 0.03, 0.1, 0.3)
_HUBS: dict[str, Hub] = {}
_HUBS_LOCK = threading.Lock()
Visible = Callable[[Any, str, Any], bool]  # (viewer, audience, db) -> bool: the app's Audiences.visible


class Subscriber:
    __slots__ = ("viewer", "session_id", "visible", "queue", "closed", "_seen")

    def __init__(self, viewer: Any, session_id: int, visible: Visible = visible) -> None:
        self.viewer = viewer
        self.session_id = session_id
        self.visible = visible  # the audience checks of the app this stream belongs to
        self.queue: queue.Queue[Event | None] = queue.Queue(QUEUE_MAX)
        self.closed = False
        self._seen: dict[str, bool] = {}  # answers for audiences that depend on the viewer alone (see may_see)

    def may_see(self, audience: str, db: Any) -> bool:
        """The audience check for this stream. A stream's viewer is fixed when it opens, and the built-in and
        per-id audiences ("all", "clerks", "member:<id>", "display:<id>": audience.PURE) are decided by the
        viewer alone: their answer is kept (a burst of casts publishes the same few audiences hundreds of
        times). A feature's audience (a chat room, a document) may change with the database: asked every time."""
        got = self._seen.get(audience)
        if got is None:
            got = bool(self.visible(self.viewer, audience, db))
            if is_pure(audience) and len(self._seen) < SEEN_MAX:
                self._seen[audience] = got
        return got

    def put(self, ev: Event | None) -> None:
        try:
            self.queue.put_nowait(ev)
        except queue.Full:
            self.closed = True


class Hub:
    def __init__(self, db_path: Path | str, poll: float = 1.0) -> None:
        self.db_path = str(db_path)
        self.poll = poll  # the safety net: read at least this often even without a wake
        self.subs: set[Subscriber] = set()
        # (session id, pure audience) -> the streams that see it: the answers are fixed per stream (may_see), so
        # a burst of casts (each publishing to the clerks and each room screen) does not ask every open stream
        # again for every event. Replaced, never changed in place, whenever a stream comes or goes.
        self._routes: dict[tuple[int, str], list[Subscriber]] = {}
        self.lock = threading.Lock()
        self.wake = threading.Event()  # in-process wake, for a hub without a socket
        self.stopped = threading.Event()
        self.last = 0
        self.polls = 0  # reads of push_events
        self.wakes = 0  # wakes received (datagrams, or the in-process event)
        self.listener: wake_mod.Listener | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Hub:
        from appliance.store import open_db

        self._db = open_db(self.db_path, migrate=False)
        directory = wake_mod.directory_of(self._db)
        if directory is not None:
            # Sockets of workers killed at the last stop (streams outlive gunicorn's graceful timeout) go now,
            # not with the first publish; live hubs just read once more.
            wake_mod.notify(directory)
            listener = wake_mod.Listener(directory)
            self.listener = listener if listener.open() else None
        # After the socket is bound: an event committed from here on either is at or below `last` (it comes
        # from each stream's backlog) or wakes this hub.
        self.last = last_id(self._db)
        self._thread = threading.Thread(target=self._run, name="push-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        self.wake.set()
        if self.listener is not None:
            self.listener.poke()
        if self._thread is not None:
            self._thread.join(5)
        if self.listener is not None:
            self.listener.close()
        with self.lock:
            subs, self.subs = list(self.subs), set()
        for s in subs:
            s.put(None)

    def subscribe(self, viewer: Any, session_id: int, visible: Visible = visible) -> Subscriber:
        sub = Subscriber(viewer, session_id, visible)
        with self.lock:
            self.subs.add(sub)
            self._routes = {}
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        with self.lock:
            self.subs.discard(sub)
            self._routes = {}

    @property
    def count(self) -> int:
        return len(self.subs)

    @property
    def listening(self) -> bool:
        """Woken through its socket (else only by this process's publishes and the safety net)."""
        return self.listener is not None and self.listener.sock is not None

    def _wait(self, timeout: float) -> bool:
        """Sleep until a wake or the timeout; True if woken."""
        if self.listening:
            woken = self.listener.wait(timeout)
        else:
            woken = self.wake.wait(timeout)
        if self.wake.is_set():  # poke() from this process, or stop()
            self.wake.clear()
            woken = True
        if woken:
            self.wakes += 1
        return woken

    def _run(self) -> None:
        rechecks: tuple[float, ...] = ()
        while not self.stopped.is_set():
            woken = self._wait(rechecks[0] if rechecks else self.poll)
            if self.stopped.is_set():
                break
            try:
                read = self.dispatch_new()
                while read == READ_MAX:  # a burst larger than one read: the rest now, not at the next wake
                    read = self.dispatch_new()
            except Exception:  # a locked or briefly missing database must not end every stream
                log.exception("Push-Verteiler: Lesen fehlgeschlagen")
                self.stopped.wait(1)
                continue
            if read or not (woken or rechecks):
                rechecks = ()
            elif woken:
                rechecks = RECHECK
            else:
                rechecks = rechecks[1:]

    def dispatch_new(self) -> int:
        """Read rows after self.last once and hand them to the matching streams; returns rows read."""
        self.polls += 1
        rows = since(self._db, self.last, limit=READ_MAX)
        if not rows:
            return 0
        with self.lock:
            subs, routes = list(self.subs), self._routes  # taken together: a route is of exactly these streams
        for ev in rows:
            if is_pure(ev.audience):
                route = routes.get((ev.session_id, ev.audience))
                if route is None:
                    route = routes[(ev.session_id, ev.audience)] = [
                        sub for sub in subs if sub.session_id == ev.session_id and sub.may_see(ev.audience, self._db)]
                for sub in route:
                    if not sub.closed:
                        sub.put(ev)
            else:
                for sub in subs:
                    if sub.session_id != ev.session_id or sub.closed:
                        continue
                    if sub.may_see(ev.audience, self._db):
                        sub.put(ev)
            self.last = ev.id
        return len(rows)


def get_hub(db_path: Path | str, poll: float = 1.0) -> Hub:
    """The process's hub for this database, started on first use (in the worker, after gevent patched it)."""
    key = str(db_path)
    with _HUBS_LOCK:
        hub = _HUBS.get(key)
        if hub is None or hub.stopped.is_set():
            hub = _HUBS[key] = Hub(key, poll).start()
        return hub


def poke(socketless_only: bool = False) -> None:
    """Wake this process's hubs now. publish() wakes every process's hubs through their sockets after COMMIT
    and pokes here only those that could not bind one (socketless_only)."""
    for hub in list(_HUBS.values()):
        if not hub.listening:
            hub.wake.set()
        elif not socketless_only:
            hub.listener.poke()


def stop_all() -> None:
    with _HUBS_LOCK:
        hubs = list(_HUBS.values())
        _HUBS.clear()
    for hub in hubs:
        hub.stop()


def sse(ev: Event) -> str:
    return f"id: {ev.id}\ndata: {ev.data()}\n\n"


def stream(hub: Hub, viewer: Any, session_id: int, after: int | None, db: Any,
           heartbeat: float = 15.0, visible: Visible = visible) -> Iterator[str]:
    """The text/event-stream for one browser tab: missed events since `after` first, then live ones.

    No gap, no duplicate: subscribe first, then read the backlog from the database; live events at or
    below the last id already sent are skipped. Must be called while `db` is open (inside the request);
    the returned iterator only waits on its queue. visible: the app's audience checks (Audiences.visible).
    """
    sub = hub.subscribe(viewer, session_id, visible)
    floor = hub.last if after is None else after
    backlog: list[Event] = []
    if after is not None:
        while True:
            chunk = since(db, floor if not backlog else backlog[-1].id, session_id, limit=1000)
            backlog.extend(chunk)
            if len(chunk) < 1000:
                break
    backlog = [ev for ev in backlog if visible(viewer, ev.audience, db)]
    if backlog:
        floor = max(floor, backlog[-1].id)
    return _gen(hub, sub, backlog, floor, heartbeat)


def _gen(hub: Hub, sub: Subscriber, backlog: list[Event], floor: int, heartbeat: float) -> Iterator[str]:
    try:
        # retry: how soon the browser reconnects; the comment flushes the headers at once.
        yield "retry: 2000\n: verbunden\n\n" + "".join(sse(ev) for ev in backlog)
        while not sub.closed:
            try:
                ev = sub.queue.get(timeout=heartbeat)
            except queue.Empty:
                yield ": hb\n\n"
                continue
            # Whatever else is already queued goes out in the same write: one syscall per batch, not per event.
            batch = [ev]
            while len(batch) < 200:
                try:
                    batch.append(sub.queue.get_nowait())
                except queue.Empty:
                    break
            out = []
            for item in batch:
                if item is None:
                    sub.closed = True
                    break
                if item.id > floor:
                    floor = item.id
                    out.append(sse(item))
            if out:
                yield "".join(out)
    finally:
        hub.unsubscribe(sub)
