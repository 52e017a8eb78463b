"""Opening the database: WAL for one writer beside many readers, foreign keys on, migrated."""

from __future__ import annotations

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
    return sqlite_utils.Database(conn)


def now() -> str:
    """Timestamps are stored as UTC ISO strings with seconds precision and a Z."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def audit(db: sqlite_utils.Database, actor: str, action: str, detail: str = "") -> None:
    db["audit"].insert({"at": now(), "actor": actor, "action": action, "detail": detail})
