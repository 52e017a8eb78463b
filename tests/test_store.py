"""The database: WAL, foreign keys, migrations in order, a failing step changes nothing."""

from __future__ import annotations

import sqlite3

import pytest

from appliance.store import migrations, open_db


def test_fresh_database_is_migrated_to_the_last_step_in_wal_mode(tmp_path):
    db = open_db(tmp_path / "x.db")
    assert db.execute("PRAGMA user_version").fetchone()[0] == migrations.MIGRATIONS[-1][0]
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert {"sessions", "members", "stations", "admissions", "audit", "settings"} <= set(db.table_names())


def test_failing_step_leaves_schema_and_version_unchanged(tmp_path, monkeypatch):
    db = open_db(tmp_path / "x.db")
    version = db.execute("PRAGMA user_version").fetchone()[0]
    bad = [*migrations.MIGRATIONS, (version + 1, "CREATE TABLE new_one (x); CREATE TABLE sessions (y);")]
    monkeypatch.setattr(migrations, "MIGRATIONS", bad)
    with pytest.raises(sqlite3.Error):
        migrations.apply(db.conn)
    assert db.execute("PRAGMA user_version").fetchone()[0] == version
    assert "new_one" not in db.table_names()
    assert not db.conn.in_transaction


def test_database_created_by_root_belongs_to_the_state_directory_owner(tmp_path):
    """On a fresh card a root unit (netconf, firstboot) opens the database first; the unprivileged services
    must still be able to write it (found booting the card in QEMU's Pi 4: the daemon got 'readonly')."""
    import os

    if os.geteuid() != 0:
        pytest.skip("needs root (chown)")
    state = tmp_path / "state"
    state.mkdir()
    os.chown(state, 4242, 4343)
    db = open_db(state / "sitzungsbox.db")
    db.conn.close()
    st = (state / "sitzungsbox.db").stat()
    assert (st.st_uid, st.st_gid) == (4242, 4343)
    # A root-owned directory (tests, the demo) leaves the file as it is.
    db = open_db(tmp_path / "root.db")
    db.conn.close()
    assert (tmp_path / "root.db").stat().st_uid == 0
