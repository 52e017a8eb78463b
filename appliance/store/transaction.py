"""The store's one transaction helper: every write of more than one statement goes through it.

The connection runs in autocommit mode (`isolation_level=None`), so `with conn:` opens no transaction and a
failure after the first statement would leave that statement's rows. `transaction(db)` opens one with
`BEGIN IMMEDIATE`: the write lock is taken at the start, so two writers queue on busy_timeout instead of one
failing with SQLITE_BUSY when it upgrades a read snapshot to a write.

Nesting is allowed and becomes a SAVEPOINT. A use case (activate a session) is built from smaller writes
(the flag, the audit row, a push event) that are transactions on their own elsewhere; nested, they commit
only with the outer act, and an inner block that fails undoes just itself before the exception travels on.
sqlite-utils (>= 4) does the same in its own `atomic()`, so its table methods inside join this transaction.

`after_commit(db, key, fn)` runs fn once what was written so far is visible to other connections: at once
outside a transaction, after the outermost COMMIT of `transaction(db)` inside one (once per key, never after a
ROLLBACK). The push channel wakes the stream workers of other processes with it (`appliance.push.wake`): a wake
sent before COMMIT would make them read nothing.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)
_names = itertools.count(1)
# Callbacks waiting for the COMMIT of the outermost transaction(db) on a connection, by id(connection): an entry
# exists only while that block runs (sqlite3 connections take no weak references), so an id is never reused here.
_after_commit: dict[int, dict[str, Callable[[], None]]] = {}


def after_commit(db: Any, key: str, fn: Callable[[], None]) -> None:
    """Run fn when the rows written so far are committed (once per key and transaction; dropped on ROLLBACK).

    Outside a transaction: now. Inside one that `transaction(db)` did not open (a bare BEGIN, sqlite-utils'
    own `atomic()` at the top): also now, as that COMMIT cannot be seen from here; callers must cope with
    running early (the push hub looks again shortly after a wake that found nothing).
    """
    waiting = _after_commit.get(id(db.conn))
    if waiting is not None and db.conn.in_transaction:
        waiting.setdefault(key, fn)
        return
    _run(fn)


def _run(fn: Callable[[], None]) -> None:
    try:
        fn()
    except Exception:  # the rows are committed: a failing follow-up must not make the act look failed
        log.exception("Nach dem Speichern: Folgeschritt fehlgeschlagen")


@contextmanager
def transaction(db: Any) -> Iterator[Any]:
    """All statements in the block commit together or not at all (db: sqlite_utils.Database)."""
    conn = db.conn
    if conn.in_transaction:
        name = f"sbx_{next(_names)}"
        conn.execute(f"SAVEPOINT {name}")
        try:
            yield db
        except BaseException:
            # An error such as SQLITE_FULL may already have rolled back everything, savepoint included.
            if conn.in_transaction:
                conn.execute(f"ROLLBACK TO {name}")
                conn.execute(f"RELEASE {name}")
            raise
        conn.execute(f"RELEASE {name}")
        return
    conn.execute("BEGIN IMMEDIATE")
    waiting = _after_commit[id(conn)] = {}
    try:
        yield db
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        _after_commit.pop(id(conn), None)
    for fn in waiting.values():
        _run(fn)
