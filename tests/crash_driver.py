"""Crash-test driver (tests/test_crash.py): runs one act in a forked child that the test kills with SIGKILL.

Started once per test module as `python -m tests.crash_driver`; it imports the product once and then, per
request on stdin (one JSON object a line), forks a child that opens the real database file the way the app
does (`appliance.store.open_db`: WAL) and performs the act. Forking keeps a run at a few milliseconds of
overhead instead of the ~0.5 s a fresh interpreter needs, so a test can afford hundreds of kills.

The child appends marks to a file, each `<name> <time.monotonic()>` written with one os.write (so a mark is
either there or not when the child dies): `ready` (database open, about to act), `begin` and `commit` (from
SQLite's trace callback, just before the statement runs), `end` (act returned) or `error <text>`.

Requests:  {"run": act, "db": path, "root": tmp dir, "session": id, "target": id, "marks": path, "stall": s}
           -> {"pid": child pid}
           {"reap": pid} -> {"pid": pid, "signal": n or null, "code": n or null}
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from appliance.config import Config
from appliance.helper.client import NullHelper
from appliance.store import open_db
from appliance.usecases import documents as doc_acts
from appliance.usecases import sessions as session_acts


def config(root: Path) -> Config:
    """The same layout as tests/conftest.py's cfg fixture, without radios (no hostapd in this test)."""
    return replace(Config(
        state_dir=root / "state",
        run_dir=root / "run",
        helper_socket=root / "run" / "helper.sock",
        leases_file=root / "state" / "dnsmasq.leases",
        hostapd_ctrl_dir=root / "hostapd",
    ), radios=()).validate()


def roster_csv(n: int) -> str:
    return "Name;Rolle\n" + "".join(f"Neu {i:04d};Mitglied\n" for i in range(n))


def prepare(req: dict, cfg: Config, db: Any):
    """The use case as a function of nothing, its inputs made before `ready` (the kills time the act alone).
    The radios and the firewall are the ones a test has: none (cfg.radios empty) and NullHelper."""
    act, sid = req["run"], req["session"]
    if act == "rotate":
        return lambda: session_acts.rotate_keys(cfg, db, NullHelper(), sid, "crash")
    if act == "import":
        data = roster_csv(req["n"]).encode()
        return lambda: session_acts.import_members(cfg, db, NullHelper(), sid, data, "crash")
    if act == "activate":
        return lambda: session_acts.activate_session(cfg, db, NullHelper(), req["target"], "crash")
    if act == "wipe":
        return lambda: doc_acts.wipe_documents(cfg, db, sid, "crash", nonpublic_only=False)
    raise ValueError(act)


def child(req: dict) -> None:
    fd = os.open(req["marks"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def mark(name: str) -> None:
        os.write(fd, f"{name} {time.monotonic():.6f}\n".encode())

    cfg = config(Path(req["root"]))
    db = open_db(req["db"], migrate=False)
    stall = float(req.get("stall", 0))

    def trace(sql: str) -> None:
        word = sql.lstrip()[:6].upper()
        if word.startswith("BEGIN"):
            mark("begin")
        elif word.startswith("COMMIT"):
            mark("commit")
        elif stall and db.conn.in_transaction:
            # A slow card: each statement inside the transaction waits first, so kills land between the
            # act's statements (activation's three statements take a fraction of a millisecond otherwise).
            time.sleep(stall)

    act = prepare(req, cfg, db)
    db.conn.set_trace_callback(trace)
    mark("ready")
    act()
    mark("end")


def main() -> None:
    print(json.dumps({"driver": os.getpid()}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        if "reap" in req:
            pid, status = os.waitpid(req["reap"], 0)
            print(json.dumps({"pid": pid, "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
                              "code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None}), flush=True)
            continue
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                child(req)
            except BaseException as exc:  # noqa: BLE001 - reported through the marks and the exit code
                with open(req["marks"], "a") as fh:
                    fh.write(f"error {exc!r}\n")
                code = 1
            os._exit(code)  # no atexit, no flushing of buffers inherited from the driver
        print(json.dumps({"pid": pid}), flush=True)


if __name__ == "__main__":
    main()
