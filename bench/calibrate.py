"""A fixed calibration workload, so CPU figures travel between machines (issue 15).

Every benchmark that reports CPU runs `measure()` in the same run and reports its CPU also in *calibration units*
(`in_units`): CPU seconds divided by the CPU seconds one unit of this workload took on the same machine, in the
same minute. A figure in units from this machine compares with one from a Pi 4 or a faster laptop, where
milliseconds would not: the box's work is the same kind of work as the unit's.

The unit is single-threaded CPython doing what the box does most: JSON, dicts and strings, a regular expression
over text, and SQLite statements in a transaction (in memory: CPU, not the disk). It is fixed: changing it breaks
every comparison with earlier figures, so `VERSION` goes up if it ever must change.

    python -m bench.calibrate        # prints the unit's CPU ms on this machine (best and spread of 5)
"""

from __future__ import annotations

import json
import re
import sqlite3
import statistics
import time

VERSION = 1
_LINE = re.compile(r"(\w+):\s+(\S+)")
_TEXT = "\n".join(f"\tsignal:  -{40 + i % 50} dBm\n\ttx retries:  {i * 7}\n\ttx bytes:  {i * 1301}" for i in range(200))


def unit() -> int:
    """One calibration unit of work; returns a checksum so nothing is optimised away."""
    total = 0
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
    for round_ in range(20):
        rows = [{"mac": f"02:00:00:00:{i >> 8:02x}:{i & 0xff:02x}", "signal": -40 - i % 50, "n": i * round_}
                for i in range(300)]
        blob = json.dumps(rows)
        total += len(json.loads(blob))
        total += sum(len(m) for m in _LINE.findall(_TEXT))
        text = "".join(f"<li>{r['mac']} {r['signal']}</li>" for r in rows)
        total += len(text)
        conn.execute("BEGIN")
        conn.executemany("INSERT OR REPLACE INTO t(k, v) VALUES (?, ?)", [(i, r["mac"]) for i, r in enumerate(rows)])
        conn.execute("COMMIT")
        total += conn.execute("SELECT count(*) FROM t WHERE v LIKE '02:00:00:00:00:%'").fetchone()[0]
    conn.close()
    return total


def measure(runs: int = 5) -> dict:
    """The unit's CPU ms on this machine now: best (the figure to divide by) and the spread of `runs`."""
    unit()  # warm: imports, regex and sqlite caches
    times = []
    for _ in range(runs):
        t = time.process_time()
        unit()
        times.append((time.process_time() - t) * 1000)
    return {"version": VERSION, "unit_cpu_ms": round(min(times), 3),
            "spread_ms": {"min": round(min(times), 3), "median": round(statistics.median(times), 3),
                          "max": round(max(times), 3)}, "runs": runs}


def in_units(cpu_ms: float, calibration: dict) -> float:
    """CPU ms measured on this machine, in calibration units (per the same period the ms are per)."""
    return round(cpu_ms / calibration["unit_cpu_ms"], 4)


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
