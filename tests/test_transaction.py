"""The store's one transaction helper: all or nothing, nested as savepoints, and nothing writes around it."""

from __future__ import annotations

import ast
import sqlite3
from pathlib import Path

import pytest

from appliance.store import open_db, transaction

APPLIANCE = Path(__file__).resolve().parent.parent / "appliance"


@pytest.fixture
def tdb(tmp_path: Path):
    db = open_db(tmp_path / "t.db")
    db.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)")
    yield db
    db.conn.close()


def _rows(db) -> list[tuple]:
    return db.execute("SELECT k, v FROM t ORDER BY k").fetchall()


def test_autocommit_alone_is_not_atomic(tdb) -> None:
    """Why the helper exists: in autocommit mode `with conn:` keeps the first statement of a failed block."""
    with pytest.raises(sqlite3.IntegrityError), tdb.conn:
        tdb.execute("INSERT INTO t VALUES ('a', 1)")
        tdb.execute("INSERT INTO t VALUES ('a', 2)")
    assert _rows(tdb) == [("a", 1)]


def test_second_statement_failing_leaves_nothing(tdb) -> None:
    tdb.execute("INSERT INTO t VALUES ('x', 0)")
    with pytest.raises(sqlite3.IntegrityError), transaction(tdb):
        tdb.execute("INSERT INTO t VALUES ('a', 1)")
        tdb.execute("UPDATE t SET v = 9 WHERE k = 'x'")
        tdb.execute("INSERT INTO t VALUES ('a', 2)")
    assert _rows(tdb) == [("x", 0)]
    assert not tdb.conn.in_transaction


def test_any_exception_rolls_back(tdb) -> None:
    with pytest.raises(KeyboardInterrupt), transaction(tdb):
        tdb.execute("INSERT INTO t VALUES ('a', 1)")
        raise KeyboardInterrupt
    assert _rows(tdb) == []


def test_commit_is_visible_to_another_connection(tdb, tmp_path: Path) -> None:
    with transaction(tdb):
        tdb.execute("INSERT INTO t VALUES ('a', 1)")
        tdb.execute("INSERT INTO t VALUES ('b', 2)")
        other = sqlite3.connect(tmp_path / "t.db")
        assert other.execute("SELECT COUNT(*) FROM t").fetchone() == (0,)  # not before the commit
    assert other.execute("SELECT COUNT(*) FROM t").fetchone() == (2,)
    other.close()


def test_write_lock_is_taken_at_begin(tdb, tmp_path: Path) -> None:
    """BEGIN IMMEDIATE: a second writer queues at its own BEGIN instead of failing on a lock upgrade later."""
    other = sqlite3.connect(tmp_path / "t.db", timeout=0, isolation_level=None)
    with transaction(tdb):
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
    other.execute("BEGIN IMMEDIATE")
    other.execute("ROLLBACK")
    other.close()


def test_nested_block_is_a_savepoint(tdb) -> None:
    with transaction(tdb):
        tdb.execute("INSERT INTO t VALUES ('outer', 1)")
        with pytest.raises(sqlite3.IntegrityError), transaction(tdb):
            tdb.execute("INSERT INTO t VALUES ('inner', 2)")
            tdb.execute("INSERT INTO t VALUES ('outer', 3)")
        # the failed inner block undid only itself; the outer act goes on
        assert _rows(tdb) == [("outer", 1)]
        with transaction(tdb):
            tdb.execute("INSERT INTO t VALUES ('inner2', 4)")
    assert _rows(tdb) == [("inner2", 4), ("outer", 1)]


def test_nested_commit_waits_for_the_outer_act(tdb) -> None:
    with pytest.raises(RuntimeError), transaction(tdb):
        with transaction(tdb):
            tdb.execute("INSERT INTO t VALUES ('a', 1)")
        raise RuntimeError("outer fails after the inner block finished")
    assert _rows(tdb) == []


def test_sqlite_utils_writes_join_the_transaction(tdb) -> None:
    """sqlite-utils' table methods must not commit on their own inside our transaction."""
    with pytest.raises(RuntimeError), transaction(tdb):
        tdb["t"].insert({"k": "a", "v": 1})
        tdb["t"].insert_all([{"k": "b", "v": 2}, {"k": "c", "v": 3}])
        tdb["t"].update("a", {"v": 5})
        raise RuntimeError
    assert _rows(tdb) == []


def _sources() -> list[Path]:
    return sorted(APPLIANCE.rglob("*.py"))


def test_no_write_block_bypasses_the_helper() -> None:
    """No `with <db>.conn:` (not a transaction in autocommit mode), and no BEGIN outside the helper and the
    schema steps (which run as one executescript each)."""
    allowed_begin = {APPLIANCE / "store" / "transaction.py", APPLIANCE / "store" / "migrations.py"}
    offenders = []
    for path in _sources():
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.With | ast.AsyncWith):
                for item in node.items:
                    ctx = item.context_expr
                    if isinstance(ctx, ast.Attribute) and ctx.attr == "conn":
                        offenders.append(f"{path.relative_to(APPLIANCE)}:{node.lineno} with ….conn")
            if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and node.value.lstrip().upper().startswith(("BEGIN", "SAVEPOINT", "COMMIT", "ROLLBACK"))
                    and path not in allowed_begin):
                offenders.append(f"{path.relative_to(APPLIANCE)}:{node.lineno} {node.value[:20]!r}")
    assert offenders == []
