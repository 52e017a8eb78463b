"""Import jobs (`doc_imports`): who runs one, how far it is, how it ended. The only writer of that table.

A job records its owner: the process running it (pid and that process's start time, so a reused pid is not
mistaken for it). `reap` marks a running job whose owner is gone as failed, with the reason; the clerk's
page and the command line call it before they show jobs, so an import killed by SIGKILL, a crashed worker
or a pulled plug shows as failed on the next look, and the page stops reloading.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import psutil
import sqlite_utils

from appliance.store.db import now
from appliance.store.transaction import transaction

MAX_PROBLEMS = 5000  # every skipped thing is listed; bounded by the import's own item and file limits
STALE_S = 600  # owner not inspectable (hidepid): a job silent this long is taken as dead


def _started(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None


def begin(db: sqlite_utils.Database, session_id: int, source: str) -> int:
    """A new running job owned by this process."""
    pid = os.getpid()
    with transaction(db):
        cur = db.execute("INSERT INTO doc_imports(session_id, source, state, started_at, updated_at, owner_pid,"
                         " owner_started) VALUES (?, ?, 'running', ?, ?, ?, ?)",
                         [session_id, source[:500], now(), now(), pid, _started(pid)])
    return cur.lastrowid


def _set(db: sqlite_utils.Database, job_id: int, values: dict[str, Any], where: str = "") -> bool:
    values = dict(values, updated_at=now())
    if "problems" in values:
        values["problems"] = json.dumps(list(values["problems"])[:MAX_PROBLEMS], ensure_ascii=False)
    if "summary" in values:
        values["summary"] = json.dumps(values["summary"], ensure_ascii=False)
    cols = ", ".join(f"{k} = ?" for k in values)
    with transaction(db):
        sql = f"UPDATE doc_imports SET {cols} WHERE id = ?{where}"  # noqa: S608 - column names are ours
        return db.execute(sql, [*values.values(), job_id]).rowcount > 0


def progress(db: sqlite_utils.Database, job_id: int | None, **values: Any) -> None:
    if job_id is not None:
        _set(db, job_id, values)


def finish(db: sqlite_utils.Database, job_id: int, problems: list[str], summary: dict) -> None:
    _set(db, job_id, {"state": "done", "problems": problems, "summary": summary})


def fail(db: sqlite_utils.Database, job_id: int, reason: str, problems: list[str] | None = None,
         summary: dict | None = None, *, only_running: bool = False) -> bool:
    """Failed, with the reason last in the list of problems (what was skipped before stays listed)."""
    row = db.execute("SELECT problems, summary FROM doc_imports WHERE id = ?", [job_id]).fetchone()
    if row is None:
        return False
    before = problems if problems is not None else json.loads(row[0])
    summary = dict(summary if summary is not None else json.loads(row[1] or "{}"), error=reason)
    return _set(db, job_id, {"state": "failed", "problems": [*before, f"Abbruch: {reason}"], "summary": summary},
                " AND state = 'running'" if only_running else "")


def owner_alive(pid: int | None, started: float | None, updated_at: str | None = None) -> bool:
    if not pid:
        return False
    try:
        proc = psutil.Process(pid)
        created = proc.create_time()
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:  # /proc mounted with hidepid: fall back to the job's last sign of life
        return _age(updated_at) < STALE_S
    return started is None or abs(created - started) < 1.0


def _age(stamp: str | None) -> float:
    from datetime import datetime

    if not stamp:
        return float("inf")
    try:
        return time.time() - datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return float("inf")


def reap(db: sqlite_utils.Database, session_id: int | None = None) -> list[int]:
    """Mark running jobs whose owner process is gone as failed; returns their ids."""
    sql = "SELECT id, owner_pid, owner_started, updated_at FROM doc_imports WHERE state = 'running'"
    args: list[Any] = []
    if session_id is not None:
        sql += " AND session_id = ?"
        args.append(session_id)
    dead = []
    for job_id, pid, started, updated in db.execute(sql, args).fetchall():
        if not owner_alive(pid, started, updated) and fail(
                db, job_id, f"der Importvorgang (Prozess {pid}) endete ohne Abschluss – erneut starten setzt fort",
                only_running=True):
            dead.append(job_id)
    return dead


def recent(db: sqlite_utils.Database, session_id: int, limit: int = 5) -> list[dict]:
    cur = db.execute("SELECT * FROM doc_imports WHERE session_id = ? ORDER BY id DESC LIMIT ?", [session_id, limit])
    cols = [c[0] for c in cur.description]
    out = []
    for row in cur.fetchall():
        r = dict(zip(cols, row, strict=True))
        r["problems"] = json.loads(r["problems"] or "[]")
        r["summary"] = json.loads(r.get("summary") or "{}")
        out.append(r)
    return out
