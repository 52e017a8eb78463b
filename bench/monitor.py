"""Monitor benchmark: what `sitzungsbox monitor` costs per tick at 1 Hz with 30 and with 300 stations (no root).

The radio is a FakeHostapd (in this process) with the stations associated, on a real Unix datagram socket; the
lease file (one lease per station), /proc, /sys and the SQLite database are real. The monitor runs in a child
process that measures its own rusage over the window. Per run, in the same run:

0. each child first fills the `stations` table as the radio daemon (which runs beside the monitor on the box) does
   on attaching - its own sync_stations from the FakeHostapd's table - before its window, so not counted: the
   monitor takes the keyids from it instead of walking hostapd's table (collector docstring);
1. baseline: the same child, same imports and database, idle for the window (no sampling);
2. for each station count and each way of running `iw`, the child samples at 1 Hz and writes snapshot, series
   and alerts:
   - `replay`: IwReplay answers `iw` in-process (its text generation is counted as monitor CPU; no fork);
   - `exec`: every `iw` call is a real subprocess (`cat` of a dump IwReplay wrote beforehand, one per tick), as
     the box runs `iw`: the child's fork/exec and pipe reading count, and the subprocesses' own CPU
     (RUSAGE_CHILDREN) is added - `cat` stands for `iw`, whose own formatting work is not measured.

cpu % = (monitor CPU - baseline CPU) / wall time, in % of one core; ms per tick = the same CPU / ticks;
growth = ms per tick at the most stations / at the fewest, within one run. Each run also measures the calibration
unit (bench.calibrate.measure, in this process, before its children) and gives ms per tick in its units as well
(`units_per_tick`: a figure that compares across machines). The child counts its control-socket
commands and subprocesses per tick (a tap on HostapdCtrl, a counting runner). Goals (issue 15): at 300
stations <= 1 % of one core, and growth from 30 to 300 stations < 2x; every station in every sample.

    python -m bench.monitor [--counts 30,300] [--seconds 30] [--runs 3] [--modes replay,exec]
        ->  bench/results/monitor.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

from bench.calibrate import in_units, measure
from bench.common import write_result

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
GOAL_PCT = 1.0
GOAL_GROWTH = 2.0
IW_KINDS = ("station", "survey", "scan")


class ExecIw:
    """`iw` as a real subprocess: the k-th `iw dev <if> <kind> dump` prints `<kind>.<k>` of `folder` (written by
    write_iw_dumps), through the monitor's own subprocess adapter (system.run_text)."""

    def __init__(self, folder: Path) -> None:
        from appliance.monitor.system import run_text

        self.folder = folder
        self.run_text = run_text
        self.count = dict.fromkeys(IW_KINDS, 0)
        self.files = {kind: len(list(folder.glob(f"{kind}.*"))) for kind in IW_KINDS}

    def __call__(self, argv: list[str]) -> str | None:
        kind = argv[-2]
        if kind not in self.count or not self.files[kind]:
            return None
        k = self.count[kind] % self.files[kind]  # past the last file: from the first (a counter reset)
        self.count[kind] += 1
        return self.run_text(["cat", str(self.folder / f"{kind}.{k}")])


def write_iw_dumps(folder: Path, stations: int, ticks: int, interface: str = "wlan0") -> None:
    """What IwReplay prints for `stations` stations over `ticks` ticks, one file per call (ExecIw reads them)."""
    from appliance.monitor.replay import IwReplay, mac_of

    folder.mkdir(parents=True, exist_ok=True)
    iw = IwReplay(interface, busy_pct=35)
    for i in range(stations):
        iw.add(mac_of(i + 1), -50 - i % 40, 3.0)
    for k in range(ticks):
        for kind in ("station", "survey"):
            (folder / f"{kind}.{k}").write_text(iw(["iw", "dev", interface, kind, "dump"]) or "")
    (folder / "scan.0").write_text("")


def _child(cfg_path: Path, mode: str, seconds: float, stations: int, iw_mode: str, iw_dir: Path | None) -> int:
    import psutil

    from appliance.config import load
    from appliance.monitor.collector import Collector
    from appliance.monitor.daemon import Monitor
    from appliance.monitor.replay import IwReplay, mac_of
    from appliance.radio.ctrl import HostapdCtrl

    cfg = load(cfg_path)
    if iw_mode == "exec":
        assert iw_dir is not None
        iw = ExecIw(iw_dir)
    else:
        iw = IwReplay(cfg.radios[0].interface, busy_pct=35)
        for i in range(stations):
            iw.add(mac_of(i + 1), -50 - i % 40, 3.0)
    ticks: list[dict[str, int]] = []  # per tick: control-socket commands and subprocesses

    def tap(direction: str, _text: str) -> None:
        if direction == "SEND" and ticks:
            ticks[-1]["ctrl"] += 1

    def runner(argv: list[str]) -> str | None:
        if ticks:
            ticks[-1]["subprocesses"] += 1
        return iw(argv)

    # the radio daemon runs beside the monitor on the box and has recorded the associated stations (its own
    # sync_stations from hostapd's table, as on attaching): before the window, so not counted
    from appliance.radio.daemon import sync_stations
    from appliance.store import open_db

    db = open_db(cfg.db_path)
    # every child's hall associated 60 s ago (what the replay's `connected time` says): the rows of an earlier child
    # of this setup would be older than that association, and the monitor would rightly not trust them
    db.execute("DELETE FROM stations")
    db.conn.commit()
    with HostapdCtrl(cfg.hostapd_ctrl_dir / cfg.radios[0].interface, local_dir=cfg.run_dir, timeout=5.0) as ctrl:
        sync_stations(db, cfg.radios[0].interface, ctrl.stations())
    # the FakeHostapd's connected time grows from the setup, the replay's `connected time` is always 60 s: the rows
    # say what the replay says (associated 60 s ago), else they would look older than the association, rightly untrusted
    db.execute("UPDATE stations SET connected_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-60 seconds')")
    db.conn.commit()
    db.conn.close()
    local = cfg.run_dir / "monitor"
    collector = Collector(cfg, runner=runner,
                          ctrl_factory=lambda p: HostapdCtrl(p, local_dir=local, timeout=1.0, tap=tap))
    sample = collector.sample

    def counted_sample() -> dict:
        ticks.append({"ctrl": 0, "subprocesses": 0})
        return sample()

    collector.sample = counted_sample  # type: ignore[method-assign]
    mon = Monitor(cfg, collector)
    stop = threading.Event()
    t0 = time.monotonic()
    r0, c0 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    if mode == "monitor":
        timer = threading.Timer(seconds, stop.set)
        timer.start()
        mon.run(stop)
    else:
        stop.wait(seconds)
    wall = time.monotonic() - t0
    r1, c1 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    clients = len(mon.last["clients"]) if mon.last else 0
    mon.close()
    later = ticks[1:]
    print(json.dumps({
        "mode": mode, "wall_s": wall, "ticks": len(ticks), "clients": clients,
        "cpu_s": (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime),
        "children_cpu_s": (c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime),
        "rss_mb": psutil.Process().memory_info().rss / 2**20,
        "first_tick": ticks[0] if ticks else None,
        "later_ticks_ctrl": sorted({t["ctrl"] for t in later}),
        "later_ticks_subprocesses": sorted({t["subprocesses"] for t in later}),
    }))
    return 0


class _Setup:
    """One station count: config, database, lease file, the FakeHostapd and (for `exec`) the dumps."""

    def __init__(self, stations: int, seconds: float, dumps: bool) -> None:
        from appliance.config import Config, Radio, to_toml
        from appliance.monitor.replay import IwReplay, StatusFakeHostapd, populate

        self.stations = stations
        self.work = Path(tempfile.mkdtemp(prefix=f"sbx-bench-monitor-{stations}-"))
        w = self.work
        cfg = replace(Config(), state_dir=w / "state", run_dir=w / "run", leases_file=w / "state" / "leases",
                      hostapd_ctrl_dir=w / "hostapd", helper_socket=w / "run" / "helper.sock",
                      radios=(Radio(interface="wlan0", max_stations=max(stations, 10)),), web_port=1).validate()
        self.cfg_path = w / "sitzungsbox.toml"
        self.cfg_path.write_text(to_toml(cfg))
        self.fake = StatusFakeHostapd(cfg.hostapd_ctrl_dir / "wlan0")
        macs = populate(self.fake, IwReplay(), stations, weak=0, brcmfmac=0, retrying=0)
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        expiry = int(time.time()) + 24 * 3600
        cfg.leases_file.write_text("".join(f"{expiry} {mac} 10.77.{i // 250}.{i % 250 + 2} * *\n"
                                           for i, mac in enumerate(macs)))
        self.iw_dir = w / "iw"
        if dumps:
            write_iw_dumps(self.iw_dir, stations, int(seconds) + 5)

    def child(self, mode: str, seconds: float, iw_mode: str) -> dict:
        proc = subprocess.run([sys.executable, "-m", "bench.monitor", "--child", mode, "--config", str(self.cfg_path),
                               "--seconds", str(seconds), "--counts", str(self.stations), "--modes", iw_mode,
                               "--iw-dir", str(self.iw_dir)],
                              capture_output=True, text=True, timeout=seconds + 120, cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        if proc.returncode != 0:
            raise RuntimeError(f"{mode}/{iw_mode}/{self.stations}: rc={proc.returncode}: {proc.stderr[-800:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def close(self) -> None:
        self.fake.close()
        shutil.rmtree(self.work, ignore_errors=True)


def _spread(values: list[float]) -> dict[str, float]:
    return {"min": round(min(values), 2), "median": round(statistics.median(values), 2), "max": round(max(values), 2)}


def _spread4(values: list[float]) -> dict[str, float]:
    return {"min": round(min(values), 4), "median": round(statistics.median(values), 4),
            "max": round(max(values), 4)}


def run(counts: list[int], seconds: float, runs: int, modes: list[str]) -> dict:
    setups = {n: _Setup(n, seconds, "exec" in modes) for n in counts}
    samples: list[dict] = []
    calibrations: list[dict] = []
    try:
        for r in range(runs):
            cal = measure()  # the machine's speed in this run, before its children (bench.calibrate)
            calibrations.append(cal)
            base = setups[max(counts)].child("baseline", seconds, modes[0])
            for iw_mode in modes:
                for n in counts:
                    m = setups[n].child("monitor", seconds, iw_mode)
                    cpu = m["cpu_s"] + m["children_cpu_s"] - base["cpu_s"] - base["children_cpu_s"]
                    ms_per_tick = 1000 * cpu / max(1, m["ticks"])
                    samples.append({
                        "run": r + 1, "iw": iw_mode, "stations": n, "ticks": m["ticks"], "clients_seen": m["clients"],
                        "baseline_cpu_s": round(base["cpu_s"] + base["children_cpu_s"], 3),
                        "monitor_cpu_s": round(m["cpu_s"], 3), "subprocess_cpu_s": round(m["children_cpu_s"], 3),
                        "wall_s": round(m["wall_s"], 2),
                        "cpu_pct_of_one_core": round(100 * cpu / m["wall_s"], 3),
                        "ms_per_tick": round(ms_per_tick, 3),
                        "units_per_tick": in_units(ms_per_tick, cal), "calibration_unit_cpu_ms": cal["unit_cpu_ms"],
                        "rss_mb": round(m["rss_mb"], 1), "baseline_rss_mb": round(base["rss_mb"], 1),
                        "first_tick_round_trips": m["first_tick"],
                        "later_ticks_ctrl_commands": m["later_ticks_ctrl"],
                        "later_ticks_subprocesses": m["later_ticks_subprocesses"],
                    })
                    print(json.dumps(samples[-1]), file=sys.stderr, flush=True)
    finally:
        for s in setups.values():
            s.close()
    lo, hi = min(counts), max(counts)
    summary: dict[str, dict] = {}
    for iw_mode in modes:
        per = {n: [s for s in samples if s["iw"] == iw_mode and s["stations"] == n] for n in counts}
        growth = [b["ms_per_tick"] / a["ms_per_tick"]
                  for a, b in zip(per[lo], per[hi], strict=True) if a["ms_per_tick"] > 0]
        summary[iw_mode] = {
            **{f"{n}_stations": {"cpu_pct_of_one_core": _spread([s["cpu_pct_of_one_core"] for s in per[n]]),
                                 "ms_per_tick": _spread([s["ms_per_tick"] for s in per[n]]),
                                 "units_per_tick": _spread4([s["units_per_tick"] for s in per[n]])} for n in counts},
            f"growth_{lo}_to_{hi}": _spread(growth) if growth else None,
        }
        med_pct = statistics.median(s["cpu_pct_of_one_core"] for s in per[hi])
        med_growth = statistics.median(growth) if growth else float("inf")
        summary[iw_mode]["goals_met"] = {f"cpu_pct_at_{hi}_le_{GOAL_PCT}": med_pct <= GOAL_PCT,
                                         f"growth_lt_{GOAL_GROWTH}": med_growth < GOAL_GROWTH}
    return {"counts": counts, "seconds": seconds, "runs": runs, "machine": f"{os.cpu_count()} CPUs, "
            f"{platform.processor() or platform.machine()}, Python {platform.python_version()}",
            "calibration": {"version": calibrations[0]["version"] if calibrations else None, "runs": calibrations},
            "summary": summary, "samples": samples}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Kosten der Überwachung bei 1 Hz")
    p.add_argument("--counts", default="30,300", help="Stationszahlen, mit Komma getrennt")
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--modes", default="replay,exec", help="replay (iw im Prozess) und/oder exec (iw als Prozess)")
    p.add_argument("--out", type=Path, default=RESULTS / "monitor.json")
    p.add_argument("--child", choices=("baseline", "monitor"), help=argparse.SUPPRESS)
    p.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--iw-dir", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    counts = sorted({int(c) for c in args.counts.split(",")})
    modes = [m for m in args.modes.split(",") if m]
    if args.child:
        return _child(args.config, "idle" if args.child == "baseline" else "monitor", args.seconds, counts[0],
                      modes[0], args.iw_dir)
    f = run(counts, args.seconds, args.runs, modes)
    hi = max(counts)
    everyone = all(s["clients_seen"] == s["stations"] and s["ticks"] >= args.seconds - 2 for s in f["samples"])
    # the goal is judged on the first mode (replay: the method of the earlier figures); the others are reported
    main_mode = f["summary"][modes[0]]
    ok = everyone and all(main_mode["goals_met"].values())
    result = {
        "name": "monitor",
        "ratio": main_mode[f"{hi}_stations"]["cpu_pct_of_one_core"]["median"],
        "goal": f"Überwachung bei 1 Hz mit {hi} Stationen ≤ {GOAL_PCT} % eines Kerns über der Leerlauf-Basislinie "
                f"(gleicher Lauf, Median von {args.runs} Läufen, iw {modes[0]}), Kosten je Messung von {min(counts)} "
                f"zu {hi} Stationen < {GOAL_GROWTH}×, jede Station in jeder Messung",
        "ok": ok,
        "figures": f,
        "command": ".venv/bin/python -m bench.monitor " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    write_result(args.out, **result)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
