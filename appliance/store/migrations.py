"""Explicit, numbered schema migrations. Append only: never edit a released step."""

from __future__ import annotations

import importlib
import pkgutil
import sqlite3

from appliance.store import steps as steps_pkg


def _load() -> list[tuple[int, str]]:
    """Every step module in appliance/store/steps, ordered by VERSION; a number may not repeat.

    One file per step lets features add their tables without touching each other's."""
    steps = []
    for info in pkgutil.iter_modules(steps_pkg.__path__):
        if info.name.startswith("m"):
            mod = importlib.import_module(f"{steps_pkg.__name__}.{info.name}")
            steps.append((mod.VERSION, mod.SQL))
    steps.sort()
    versions = [v for v, _ in steps]
    if len(set(versions)) != len(versions) or versions[:1] != [1]:
        raise RuntimeError(f"Schemaschritte doppelt oder ohne Schritt 1: {versions}")
    return steps


MIGRATIONS: list[tuple[int, str]] = _load()


def apply(conn: sqlite3.Connection) -> int:
    """Bring the schema up to date; returns the resulting version."""
    (current,) = conn.execute("PRAGMA user_version").fetchone()
    for version, script in MIGRATIONS:
        if version <= current:
            continue
        # One transaction per step: a failing step leaves the schema and its version as they were.
        try:
            conn.executescript(f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {version};\nCOMMIT;")
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        current = version
    return current
