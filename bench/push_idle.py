"""Idle push benchmark (issue 15): CPU of the web workers with N open streams and nothing happening.

The real `sitzungsbox web` (gunicorn, cfg.web_workers gevent workers, dropped to nobody; bench.chat.WebServer)
twice per round in the same run: once as shipped (hubs woken by publishers, the poll only a safety net every
`push_poll` = the Config default) and once as the baseline with `push_poll` = 0.05 s, the 50 ms poll every
worker ran before issue 15 (with nothing published no wake ever fires, so that server idles exactly as the old
code did). For each: the workers' CPU (user + system, psutil) over a quiet window with no stream (no hub runs
yet), then over a window with N streams open (every worker's hub runs, every stream waits for its heartbeat).

    python -m bench.push_idle [--clients 300] [--window 20] [--rounds 2]  ->  bench/results/push_idle.json
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import psutil

from appliance.config import Config
from appliance.push.sseclient import SSEClient
from bench import calibrate
from bench.chat import WebServer, guest_ip
from bench.common import RESULTS, write_result

BASELINE_POLL = 0.05  # push_poll before issue 15
GOAL_RATIO = 0.5  # idle CPU with streams, shipped / baseline
GOAL_PCT = 0.3  # % of one core for all web workers with the streams open: a slice of the idle box's 1 %


def _cpu(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        t = p.cpu_times()
        total += t.user + t.system
    return total


def _window(procs: list[psutil.Process], seconds: float) -> float:
    """% of one core the processes used over a quiet window."""
    start_cpu, start = _cpu(procs), time.monotonic()
    time.sleep(seconds)
    return round(100 * (_cpu(procs) - start_cpu) / (time.monotonic() - start), 3)


def measure(poll: float, clients: int, window: float, heartbeat: float, warmup: float = 3.0) -> dict:
    web = WebServer.prepare(clients, push_poll=poll, push_heartbeat=heartbeat).start()
    streams: list[SSEClient] = []
    try:
        workers = web.workers()
        time.sleep(warmup)
        empty = _window(workers, window)
        for i in range(clients):
            c = SSEClient("127.0.0.1", web.port, f"/events?as={guest_ip(i)}&last_id=0").connect()
            assert c.status == 200, c.status
            assert c.next(comments=True).comment  # the connect comment: the stream is held by a worker's hub
            streams.append(c)
        hubs = len(list((web.cfg.state_dir / "sitzungsbox.db-wake").glob("*.sock")))
        time.sleep(warmup)
        with_streams = _window(workers, window)
        return {"push_poll_s": poll, "workers": len(workers), "hubs_with_socket": hubs,
                "idle_pct_no_streams": empty, "idle_pct_streams": with_streams}
    finally:
        for c in streams:
            c.close()
        web.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=300)
    ap.add_argument("--window", type=float, default=20.0, help="seconds of quiet measured per phase")
    ap.add_argument("--rounds", type=int, default=2, help="baseline and shipped server, alternating")
    ap.add_argument("--heartbeat", type=float, default=Config().push_heartbeat, help="push_heartbeat of both")
    ap.add_argument("--out", type=Path, default=RESULTS / "push_idle.json")
    args = ap.parse_args(argv)
    shipped_poll = Config().push_poll
    cal = calibrate.measure()  # same run: the CPU figures also in calibration units (issue 15)
    runs: dict[str, list[dict]] = {"baseline": [], "shipped": []}
    for _ in range(args.rounds):
        runs["baseline"].append(measure(BASELINE_POLL, args.clients, args.window, args.heartbeat))
        runs["shipped"].append(measure(shipped_poll, args.clients, args.window, args.heartbeat))

    def median(name: str, key: str) -> float:
        return round(statistics.median(r[key] for r in runs[name]), 3)

    figures = {"clients": args.clients, "window_s": args.window, "rounds": args.rounds, "heartbeat_s": args.heartbeat,
               "shipped_pct_streams": median("shipped", "idle_pct_streams"),
               "baseline_pct_streams": median("baseline", "idle_pct_streams"),
               "shipped_pct_no_streams": median("shipped", "idle_pct_no_streams"),
               "baseline_pct_no_streams": median("baseline", "idle_pct_no_streams"),
               "runs": runs}
    # % of one core = CPU ms per 1000 ms: in calibration units per second, comparable across machines
    figures["calibration"] = cal
    figures["units_per_s"] = {key: calibrate.in_units(10 * figures[key], cal) for key in (
        "shipped_pct_streams", "baseline_pct_streams", "shipped_pct_no_streams", "baseline_pct_no_streams")}
    base = figures["baseline_pct_streams"]
    ratio = round(figures["shipped_pct_streams"] / base, 3) if base > 0 else 0.0
    ok = ratio <= GOAL_RATIO and figures["shipped_pct_streams"] <= GOAL_PCT
    write_result(args.out, name="push_idle", ratio=ratio,
                 goal=f"web workers idle with the streams open <= {GOAL_PCT} % of one core and <= {GOAL_RATIO}x "
                      f"the same run's {int(BASELINE_POLL * 1000)} ms poll",
                 ok=ok, figures=figures,
                 command=f"python -m bench.push_idle --clients {args.clients} --window {args.window:g} "
                         f"--rounds {args.rounds} --heartbeat {args.heartbeat:g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
