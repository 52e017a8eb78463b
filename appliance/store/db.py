"""Opening the database: WAL for one writer beside many readers, foreign keys on, migrated."""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils

from appliance.store import migrations


def open_db(path: Path | str, migrate: bool = True) -> sqlite_utils.Database:
    if migrate and str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=10, isolation_level=None, check_same_thread=False)
    # WAL + NORMAL: one writer beside many readers, durable across app crashes. journal_mode is stored in
    # the file, so only the opener that migrates (once per process) needs to set it.
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=10000")
    if migrate:
        conn.execute("PRAGMA journal_mode=WAL")
        migrations.apply(conn)
        if str(path) != ":memory:":
            owned_like_its_directory(Path(path))
    return sqlite_utils.Database(conn)


def owned_like_its_directory(path: Path) -> None:
    """A database that root created (on a fresh card the first opener is a root unit: netconf, firstboot)
    belongs to whoever owns the state directory (tmpfiles.d: sitzungsbox); else the unprivileged services
    find it read-only. SQLite itself gives the -wal/-shm files the database file's owner."""
    if os.geteuid() != 0:
        return
    st, parent = path.stat(), path.parent.stat()
    if st.st_uid == 0 and parent.st_uid != 0:
        os.chown(path, parent.st_uid, parent.st_gid)
        for extra in (Path(f"{path}-wal"), Path(f"{path}-shm")):
            if extra.exists() and extra.stat().st_uid == 0:
                os.chown(extra, parent.st_uid, parent.st_gid)


def now() -> str:
    """Timestamps are stored as UTC ISO strings with seconds precision and a Z."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def audit(db: sqlite_utils.Database, actor: str, action: str, detail: str = "") -> None:
    # Plain SQL: sqlite-utils' insert() reads the table's schema on every call (~0.2 ms of an admission).
    db.execute("INSERT INTO audit(at, actor, action, detail) VALUES (?, ?, ?, ?)", [now(), actor, action, detail])
