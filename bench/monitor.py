"""Monitor benchmark: what `sitzungsbox monitor` costs at 1 Hz with 300 stations (no root needed).

The radio is a FakeHostapd with 300 associated stations on a real Unix datagram socket (STATUS, ATTACH,
STA-FIRST/NEXT x 300 per tick); `iw` is replayed (IwReplay: a 300-station dump and a survey each tick);
/proc, /sys, the lease file (300 leases) and the SQLite database are real. The monitor runs in a child
process, measured by its own rusage over the window, twice in the same run:

1. baseline: the same child, same imports and database, idle for the window (no sampling);
2. monitor: the child samples at 1 Hz and writes snapshot, series and alerts.

`ratio` = (monitor CPU - baseline CPU) / wall time, in % of one core. Goal: <= 3 %.

    python -m bench.monitor [--stations 300] [--seconds 30]  ->  bench/results/monitor.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

from bench.common import write_result

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
GOAL_PCT = 3.0


def _child(cfg_path: Path, mode: str, seconds: float, stations: int) -> int:
    import psutil

    from appliance.config import load
    from appliance.monitor.collector import Collector
    from appliance.monitor.daemon import Monitor
    from appliance.monitor.replay import IwReplay, mac_of

    cfg = load(cfg_path)
    iw = IwReplay(cfg.radios[0].interface, busy_pct=35)
    for i in range(stations):
        iw.add(mac_of(i + 1), -50 - i % 40, 3.0)
    mon = Monitor(cfg, Collector(cfg, runner=iw))
    stop = threading.Event()
    t0, r0 = time.monotonic(), resource.getrusage(resource.RUSAGE_SELF)
    if mode == "monitor":
        timer = threading.Timer(seconds, stop.set)
        timer.start()
        mon.run(stop)
    else:
        stop.wait(seconds)
    wall, r1 = time.monotonic() - t0, resource.getrusage(resource.RUSAGE_SELF)
    ticks = mon.db.execute("SELECT count(*) FROM monitor_points WHERE series = 'clients' AND res = 1").fetchone()[0]
    clients = len(mon.last["clients"]) if mon.last else 0
    mon.close()
    print(json.dumps({"mode": mode, "wall_s": wall, "cpu_s": (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime),
                      "rss_mb": psutil.Process().memory_info().rss / 2**20, "ticks": ticks, "clients": clients}))
    return 0


def run(stations: int, seconds: float) -> dict:
    from appliance.config import Config, Radio, to_toml
    from appliance.monitor.replay import IwReplay, StatusFakeHostapd, populate

    work = Path(tempfile.mkdtemp(prefix="sbx-bench-monitor-"))
    cfg = replace(Config(), state_dir=work / "state", run_dir=work / "run", leases_file=work / "state" / "leases",
                  hostapd_ctrl_dir=work / "hostapd", helper_socket=work / "run" / "helper.sock",
                  radios=(Radio(interface="wlan0", max_stations=max(stations, 10)),), web_port=1).validate()
    cfg_path = work / "sitzungsbox.toml"
    cfg_path.write_text(to_toml(cfg))
    fake = StatusFakeHostapd(cfg.hostapd_ctrl_dir / "wlan0")
    try:
        macs = populate(fake, IwReplay(), stations, weak=0, brcmfmac=0, retrying=0)
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        expiry = int(time.time()) + 3600
        cfg.leases_file.write_text("".join(f"{expiry} {mac} 10.77.{i // 250}.{i % 250 + 2} * *\n"
                                           for i, mac in enumerate(macs)))
        out = {}
        for mode in ("baseline", "monitor"):
            proc = subprocess.run([sys.executable, "-m", "bench.monitor", "--child", mode, "--config", str(cfg_path),
                                   "--seconds", str(seconds), "--stations", str(stations)],
                                  capture_output=True, text=True, timeout=seconds + 120, cwd=ROOT,
                                  env={**os.environ, "PYTHONPATH": str(ROOT)})
            if proc.returncode != 0:
                raise RuntimeError(f"{mode}: rc={proc.returncode}: {proc.stderr[-800:]}")
            out[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
        sta_cmds = sum(1 for c in fake.commands_received if c.startswith("STA"))
    finally:
        fake.close()
        shutil.rmtree(work, ignore_errors=True)
    base, mon = out["baseline"], out["monitor"]
    return {
        "stations": stations, "seconds": seconds,
        "baseline_cpu_s": round(base["cpu_s"], 3), "monitor_cpu_s": round(mon["cpu_s"], 3),
        "monitor_wall_s": round(mon["wall_s"], 2), "ticks": mon["ticks"], "clients_seen": mon["clients"],
        "cpu_pct_of_one_core": round(100 * (mon["cpu_s"] - base["cpu_s"]) / mon["wall_s"], 2),
        "ms_per_tick": round(1000 * (mon["cpu_s"] - base["cpu_s"]) / max(1, mon["ticks"]), 2),
        "baseline_rss_mb": round(base["rss_mb"], 1), "monitor_rss_mb": round(mon["rss_mb"], 1),
        "hostapd_sta_commands": sta_cmds,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Kosten der Überwachung bei 1 Hz")
    p.add_argument("--stations", type=int, default=300)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--out", type=Path, default=RESULTS / "monitor.json")
    p.add_argument("--child", choices=("baseline", "monitor"), help=argparse.SUPPRESS)
    p.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return _child(args.config, "idle" if args.child == "baseline" else "monitor", args.seconds, args.stations)
    f = run(args.stations, args.seconds)
    ok = f["cpu_pct_of_one_core"] <= GOAL_PCT and f["clients_seen"] == args.stations and f["ticks"] >= args.seconds - 2
    result = {
        "name": "monitor",
        "ratio": f["cpu_pct_of_one_core"],
        "goal": f"Überwachung bei 1 Hz mit {args.stations} Stationen ≤ {GOAL_PCT} % eines Kerns über der "
                "Leerlauf-Basislinie (gleicher Lauf), jede Station in jeder Messung",
        "ok": ok,
        "figures": f,
        "command": ".venv/bin/python -m bench.monitor " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    write_result(args.out, **result)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
