"""Tools for showing that a write is all or nothing: the whole database as plain data, a statement made to fail,
the writes an act performs, and the database as it was when each of its transactions began.

All of it works on the act's own connection (sqlite_utils.Database) with TEMP triggers and Python functions
registered on that connection: nothing is left in the database file, and `dump` sees only the product's tables.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

OPS = ("INSERT", "UPDATE", "DELETE")
_names = itertools.count(1)


def tables(db: Any) -> list[str]:
    """The database's own tables (PRAGMA table_list), without SQLite's internal sqlite_* tables."""
    conn = getattr(db, "conn", db)
    rows = conn.execute("PRAGMA main.table_list").fetchall()
    return sorted(r[1] for r in rows if r[2] == "table" and not r[1].startswith("sqlite_"))


def _key(row: tuple) -> tuple:
    # NULLs and mixed types sort too: by (type name, value) per column.
    return tuple((type(v).__name__, v) for v in row)


def dump(db: Any) -> dict[str, list[tuple]]:
    """Every row of every table, sorted: two dumps are equal exactly when the databases hold the same data."""
    conn = getattr(db, "conn", db)
    return {t: sorted(conn.execute(f'SELECT * FROM "{t}"').fetchall(), key=_key)  # noqa: S608 - our names
            for t in tables(conn)}


def diff(before: dict[str, list[tuple]], after: dict[str, list[tuple]]) -> dict[str, tuple[list, list]]:
    """Per changed table: (rows only before, rows only after) - for readable assertion messages."""
    out = {}
    for t in sorted(set(before) | set(after)):
        a, b = before.get(t, []), after.get(t, [])
        if a != b:
            out[t] = ([r for r in a if r not in b][:5], [r for r in b if r not in a][:5])
    return out


@contextmanager
def fail_on(db: Any, table: str, op: str, at: int = 1) -> Iterator[None]:
    """Make the `at`-th row-level `op` (INSERT|UPDATE|DELETE) on `table` fail with RAISE(ABORT, 'injected')
    (sqlite3.IntegrityError), every earlier one succeeding. A TEMP trigger, dropped afterwards."""
    if op not in OPS:
        raise ValueError(op)
    conn = getattr(db, "conn", db)
    name = f"sbx_fail_{next(_names)}"
    when = ""
    if at > 1:
        seen = [0]

        def count() -> int:
            seen[0] += 1
            return seen[0]

        conn.create_function(f"{name}_n", 0, count)
        when = f" WHEN {name}_n() >= {int(at)}"
    conn.execute(f'CREATE TEMP TRIGGER {name} BEFORE {op} ON "{table}"{when} '
                 "BEGIN SELECT RAISE(ABORT, 'injected'); END")
    try:
        yield
    finally:
        conn.execute(f"DROP TRIGGER IF EXISTS temp.{name}")


@dataclass
class Recording:
    """What an act did: each row-level write (table, op, transaction number, inside a transaction?) in order,
    and the database as it was when each outermost transaction began (snapshots[k - 1] for transaction k)."""
    writes: list[tuple[str, str, int, bool]] = field(default_factory=list)
    snapshots: list[dict[str, list[tuple]]] = field(default_factory=list)

    @staticmethod
    def label(table: str, op: str, txn: int, inside: bool) -> str:
        """'table OP', with ' #k' for a write in the act's k-th transaction (k > 1)."""
        return f"{table} {op}" + (f" #{txn}" if inside and txn > 1 else "")

    def labels(self) -> list[str]:
        """The label of each write, in the order of their first occurrence."""
        return list(dict.fromkeys(self.label(*w) for w in self.writes))

    def outside(self) -> list[str]:
        """Labels of the writes made outside any transaction (autocommit: each one on its own)."""
        return sorted({self.label(*w) for w in self.writes if not w[3]})

    def target(self, label: str) -> tuple[int, int]:
        """For the last write with this label: (its number among all writes to that table with that op, counted
        from the act's start as fail_on counts them; the transaction it belongs to)."""
        table, op = label.split()[:2]
        same = [w for w in self.writes if (w[0], w[1]) == (table, op)]
        at = max(i for i, w in enumerate(same, 1) if self.label(*w) == label)
        return at, same[at - 1][2]


def _db_file(conn: sqlite3.Connection) -> str:
    return next(r[2] for r in conn.execute("PRAGMA database_list").fetchall() if r[1] == "main")


@contextmanager
def recording(db: Any, writes: bool = True) -> Iterator[Recording]:
    """Record the act's writes (TEMP triggers calling back into Python) and, at each outermost BEGIN, a dump of
    the committed database read through a second connection (the trace callback runs before the BEGIN)."""
    conn = getattr(db, "conn", db)
    rec = Recording()
    reader = sqlite3.connect(_db_file(conn), isolation_level=None)

    def trace(sql: str) -> None:
        if sql.lstrip().upper().startswith("BEGIN"):
            rec.snapshots.append(dump(reader))

    def wrote(table: str, op: str) -> None:
        rec.writes.append((table, op, len(rec.snapshots), conn.in_transaction))

    names = []
    if writes:
        conn.create_function("sbx_wrote", 2, wrote)
        for t in tables(conn):
            for op in OPS:
                name = f"sbx_rec_{next(_names)}"
                conn.execute(f'CREATE TEMP TRIGGER {name} BEFORE {op} ON "{t}" '
                             f"BEGIN SELECT sbx_wrote('{t}', '{op}'); END")
                names.append(name)
    conn.set_trace_callback(trace)
    try:
        yield rec
    finally:
        conn.set_trace_callback(None)
        for name in names:
            conn.execute(f"DROP TRIGGER IF EXISTS temp.{name}")
        reader.close()
