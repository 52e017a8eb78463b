"""CPU of one idle presence tick: N members present (a linked device each, an open interval), nothing due.

    python -m bench.presence_idle [--members 300] [--ticks 200] [--no-memo]   ->  prints JSON (no results file)

In-process: `store.tick_session` on a file database in WAL mode, as the daemon calls it every
presence_interval. Reports CPU (process time) per tick, the share of one core at the daemon's interval, and
how many rows the ticks changed (`total_changes`; nothing is due, so it should be 0).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from appliance.config import Config
from appliance.presence import store
from appliance.presence.engine import Obs
from appliance.sessions import service
from appliance.sessions.roster import MemberRow
from appliance.store import open_db
from bench import calibrate


def run(members: int, ticks: int, work: Path, grace: float = 60.0, remember: bool = True) -> dict:
    cfg = Config(state_dir=work / "state", run_dir=work / "run", leases_file=work / "state" / "leases").validate()
    db = open_db(cfg.db_path)
    try:
        s = service.create_session(db, body="Rat", title="Messung", day="2026-12-01")
        service.insert_members(db, s.id, [MemberRow(f"Mitglied {i:03d}", f"F{i % 6}", "member", True, "Rat")
                                          for i in range(members)])
        service.set_active(db, s.id)
        now = time.time()
        for i, m in enumerate(service.members(db, s.id)):
            store.record(db, s.id, m.id, Obs(now, "connect", f"02:be:{(i >> 8) & 255:02x}:{i & 255:02x}:00:01",
                                             "hostapd"), grace)
        before = db.conn.total_changes
        memo = store.TickMemo() if remember else None  # as the daemon keeps it between ticks
        t0, c0 = time.perf_counter(), time.process_time()
        for n in range(ticks):
            store.tick_session(db, s.id, grace, now=now + 1 + n * cfg.presence_interval, memo=memo)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        changed = db.conn.total_changes - before
    finally:
        db.conn.close()
    per_tick = cpu / ticks
    return {"members": members, "ticks": ticks, "memo": remember, "cpu_ms_per_tick": round(per_tick * 1000, 3),
            "wall_ms_per_tick": round(wall / ticks * 1000, 3),
            "core_percent_at_interval": round(100 * per_tick / cfg.presence_interval, 3),
            "interval_s": cfg.presence_interval, "rows_changed": changed}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Anwesenheit: CPU eines ruhigen Ticks")
    p.add_argument("--members", type=int, default=300)
    p.add_argument("--ticks", type=int, default=200)
    p.add_argument("--no-memo", action="store_true", help="every tick reads all states (no TickMemo)")
    args = p.parse_args(argv)
    cal = calibrate.measure()  # same run: the tick's CPU also in calibration units (issue 15)
    with tempfile.TemporaryDirectory(prefix="sbp-idle-") as tmp:
        out = run(args.members, args.ticks, Path(tmp), remember=not args.no_memo)
    out["calibration"] = cal
    out["units_per_tick"] = calibrate.in_units(out["cpu_ms_per_tick"], cal)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
