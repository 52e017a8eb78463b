"""One poller per process feeds every open stream of that process.

Each web worker (gevent: the thread below is a greenlet) reads new push_events rows once per poll interval
and hands each to the queues of the streams that may see it. Events published by another worker or by the
daemon arrive the same way, so no process needs to know about the others. A stream costs one queue; the
database is read once per interval per process, not once per connection.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from appliance.push.audience import is_pure, visible
from appliance.push.events import Event, last_id, since

log = logging.getLogger(__name__)
SEEN_MAX = 256  # audiences remembered per stream (a per-id audience per member or screen at most)
QUEUE_MAX = 2000  # a client this far behind is cut off; it resumes from its Last-Event-ID without a gap
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
    def __init__(self, db_path: Path | str, poll: float = 0.05) -> None:
        self.db_path = str(db_path)
        self.poll = poll
        self.subs: set[Subscriber] = set()
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.stopped = threading.Event()
        self.last = 0
        self.polls = 0
        self._thread: threading.Thread | None = None

    def start(self) -> Hub:
        from appliance.store import open_db

        self._db = open_db(self.db_path, migrate=False)
        self.last = last_id(self._db)  # before any subscriber: older events come from each stream's backlog
        self._thread = threading.Thread(target=self._run, name="push-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        self.wake.set()
        if self._thread is not None:
            self._thread.join(5)
        with self.lock:
            subs, self.subs = list(self.subs), set()
        for s in subs:
            s.put(None)

    def subscribe(self, viewer: Any, session_id: int, visible: Visible = visible) -> Subscriber:
        sub = Subscriber(viewer, session_id, visible)
        with self.lock:
            self.subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        with self.lock:
            self.subs.discard(sub)

    @property
    def count(self) -> int:
        return len(self.subs)

    def _run(self) -> None:
        while not self.stopped.is_set():
            self.wake.wait(self.poll)
            self.wake.clear()
            try:
                self.dispatch_new()
            except Exception:  # a locked or briefly missing database must not end every stream
                log.exception("Push-Verteiler: Lesen fehlgeschlagen")
                self.stopped.wait(1)

    def dispatch_new(self) -> int:
        """Read rows after self.last once and hand them to the matching streams; returns rows read."""
        self.polls += 1
        rows = since(self._db, self.last, limit=500)
        if not rows:
            return 0
        with self.lock:
            subs = list(self.subs)
        for ev in rows:
            for sub in subs:
                if sub.session_id != ev.session_id or sub.closed:
                    continue
                if sub.may_see(ev.audience, self._db):
                    sub.put(ev)
            self.last = ev.id
        return len(rows)


def get_hub(db_path: Path | str, poll: float = 0.05) -> Hub:
    """The process's hub for this database, started on first use (in the worker, after gevent patched it)."""
    key = str(db_path)
    with _HUBS_LOCK:
        hub = _HUBS.get(key)
        if hub is None or hub.stopped.is_set():
            hub = _HUBS[key] = Hub(key, poll).start()
        return hub


def poke() -> None:
    """Wake this process's hubs now (called by publish)."""
    for hub in list(_HUBS.values()):
        hub.wake.set()


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
