"""The store's one transaction helper: every write of more than one statement goes through it.

The connection runs in autocommit mode (`isolation_level=None`), so `with conn:` opens no transaction and a
failure after the first statement would leave that statement's rows. `transaction(db)` opens one with
`BEGIN IMMEDIATE`: the write lock is taken at the start, so two writers queue on busy_timeout instead of one
failing with SQLITE_BUSY when it upgrades a read snapshot to a write.

Nesting is allowed and becomes a SAVEPOINT. A use case (activate a session) is built from smaller writes
(the flag, the audit row, a push event) that are transactions on their own elsewhere; nested, they commit
only with the outer act, and an inner block that fails undoes just itself before the exception travels on.
sqlite-utils (>= 4) does the same in its own `atomic()`, so its table methods inside join this transaction.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_names = itertools.count(1)


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
    try:
        yield db
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
