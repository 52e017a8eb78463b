"""Bytes on the shared radio (issue 16): what the box actually sent per (session, file, kind), and the pacing
of bulk downloads while a session runs.

Counting: each web worker adds to one `Meter` in memory when a response ends (a body finished, or closed early
because the client went away: then what was handed over so far) and writes the sums to `doc_traffic` in one
`transaction(db)` every `flush_s` seconds or `flush_n` responses, whichever first (a worker killed loses at
most that). Sent means handed to the kernel: with sendfile, what os.sendfile accepted (fastsend reports it);
when the server reads the body, each chunk once the server asked for the next one or finished.

Pacing: one token bucket per worker shared by its whole-file and ZIP responses; viewer and range requests
never wait. `Bucket.reserve` and `should_pace` are pure (tested as tables); `Pacer` sleeps (a greenlet sleep
under gunicorn's gevent worker). Why in the app and not `tc` on the radio: tc sees TCP flows, not what a
request is; a member's keep-alive connection carries viewer ranges and whole files alike, and classifying
them would need marks set per response plus qdiscs on every radio through the root helper. Measured in
bench/pacing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from appliance.store import open_db, transaction

log = logging.getLogger(__name__)
KINDS = ("viewer", "range", "whole", "zip", "prefetch")
# Paced while a session runs. "prefetch": a device's background fetch of a whole viewer copy before the session
# starts (rules.prefetch); answered only before the start, and paced like whole files all the same.
BULK = frozenset({"whole", "zip", "prefetch"})


def kind_of(route: str, status: int) -> str:
    """route: "viewer" (the viewer's PDF route), "prefetch" (that route asked by a device's background fetch) or
    "download"; status 206: a range, 200: the whole file."""
    if route in ("viewer", "prefetch"):
        return route
    return "range" if status == 206 else "whole"


def should_pace(kind: str, session_running: bool, rate: int) -> bool:
    """Only bulk downloads, only while a session runs, only when a rate is set."""
    return kind in BULK and session_running and rate > 0


@dataclass
class Bucket:
    """Token bucket in bytes: `rate` per second, at most `burst` saved up; a reservation may go into debt, which
    the caller waits off, so concurrent responses are served in the order they asked."""

    rate: float
    burst: float
    tokens: float = 0.0
    at: float = 0.0

    def reserve(self, n: int, now: float) -> float:
        """Take n bytes at time `now`; returns how many seconds to wait before sending them."""
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.at) * self.rate)
        self.at = now
        self.tokens -= n
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


class Pacer:
    def __init__(self, kib_per_s: int, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        rate = kib_per_s * 1024
        self.bucket = Bucket(rate, burst=max(rate / 4, 256 * 1024), tokens=max(rate / 4, 256 * 1024), at=clock())
        self.clock, self.sleep = clock, sleep
        self.lock = threading.Lock()

    def pace(self, n: int) -> None:
        with self.lock:
            wait = self.bucket.reserve(n, self.clock())
        if wait > 0:
            self.sleep(wait)


CHUNK = 64 * 1024


def paced_file(fh, length: int, pacer: Pacer, done: Callable[[int], None]) -> Iterator[bytes]:
    """A paced body from an open file (no sendfile: the pacing needs the chunks); `done(sent)` at its end."""
    sent = 0
    try:
        left = length
        while left > 0:
            data = fh.read(min(CHUNK, left))
            if not data:
                break
            left -= len(data)
            pacer.pace(len(data))
            yield data
            sent += len(data)  # the server asked for more: the chunk went out
    finally:
        fh.close()
        done(sent)


class Meter:
    """Per-worker sums, written to doc_traffic in batches."""

    def __init__(self, db_path: Path, *, flush_s: float = 5.0, flush_n: int = 200,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.db_path, self.flush_s, self.flush_n, self.clock = db_path, flush_s, flush_n, clock
        self.sums: dict[tuple[int, int, str], list[int]] = {}
        self.pending = 0
        self.last = clock()
        self.lock = threading.Lock()
        self.timer: threading.Thread | None = None

    def add(self, session_id: int, file_id: int, kind: str, sent: int, *, requests: int = 1,
            opened: bool = False) -> None:
        if kind not in KINDS:
            raise ValueError(kind)
        with self.lock:
            row = self.sums.setdefault((session_id, file_id, kind), [0, 0, 0])
            row[0] += sent
            row[1] += requests
            row[2] += int(opened)
            self.pending += 1
            due = self.pending >= self.flush_n or self.clock() - self.last >= self.flush_s
        if due:
            self.flush()
        else:
            self._start_timer()

    def _start_timer(self) -> None:
        if self.timer is None or not self.timer.is_alive():
            # A quiet worker still writes within flush_s (under gevent: a greenlet).
            self.timer = threading.Thread(target=self._later, name="doc-traffic", daemon=True)
            self.timer.start()

    def _later(self) -> None:
        time.sleep(self.flush_s)
        self.flush()

    def take(self) -> dict[tuple[int, int, str], list[int]]:
        with self.lock:
            sums, self.sums, self.pending, self.last = self.sums, {}, 0, self.clock()
        return sums

    def flush(self, db=None) -> int:
        """Write and forget the sums; returns the rows written. Own connection unless one is given."""
        sums = self.take()
        if not sums:
            return 0
        own = db is None
        try:
            if own:
                db = open_db(self.db_path, migrate=False)
            write(db, sums)
        except Exception:  # noqa: BLE001 - counting must never break a download; keep the sums for next time
            log.exception("doc_traffic flush failed")
            with self.lock:
                for key, row in sums.items():
                    mine = self.sums.setdefault(key, [0, 0, 0])
                    for i in range(3):
                        mine[i] += row[i]
            return 0
        finally:
            if own and db is not None:
                db.conn.close()
        return len(sums)


def write(db, sums: dict[tuple[int, int, str], list[int]]) -> None:
    with transaction(db):
        db.conn.executemany(
            "INSERT INTO doc_traffic(session_id, file_id, kind, bytes, requests, opens)"
            " SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM sessions WHERE id = ?)"
            " ON CONFLICT(session_id, file_id, kind) DO UPDATE SET bytes = bytes + excluded.bytes,"
            " requests = requests + excluded.requests, opens = opens + excluded.opens",
            [(s, f, k, b, r, o, s) for (s, f, k), (b, r, o) in sums.items()])


@dataclass(frozen=True)
class Usage:
    """What the clerk's page shows for one session."""

    by_kind: dict[str, int]  # bytes per kind
    by_file: dict[int, dict[str, int]]  # file id -> kind -> bytes
    opens: dict[int, int]  # file id -> viewer opens (viewer and range requests from the first byte)
    viewer_bytes: dict[int, int]  # file id -> bytes of viewer and range requests

    @property
    def total(self) -> int:
        return sum(self.by_kind.values())


def usage(db, session_id: int) -> Usage:
    by_kind = dict.fromkeys(KINDS, 0)
    by_file: dict[int, dict[str, int]] = {}
    opens: dict[int, int] = {}
    vb: dict[int, int] = {}
    for fid, kind, n, o in db.execute("SELECT file_id, kind, bytes, opens FROM doc_traffic WHERE session_id = ?",
                                      [session_id]).fetchall():
        by_kind[kind] += n
        by_file.setdefault(fid, dict.fromkeys(KINDS, 0))[kind] += n
        if kind in ("viewer", "range"):
            opens[fid] = opens.get(fid, 0) + o
            vb[fid] = vb.get(fid, 0) + n
    return Usage(by_kind, by_file, opens, vb)


def saving(size: int, opens: int, viewer_bytes: int) -> int:
    """What whole downloads would have cost for the same opens, less what the viewer sent (never below 0)."""
    return max(0, size * opens - viewer_bytes)
