"""The monitor of bench/session: what `sitzungsbox monitor` runs (appliance.monitor.daemon.Monitor at the configured
interval, its own hostapd control socket, lease file, /proc, /sys, SQLite), with `iw` answered by a real subprocess
that prints the dump the session bench wrote a moment ago (`cat`, as bench/monitor's `exec` mode): the venue has no
nl80211 radio, so the station and survey dumps follow the FakeHostapd's stations, written by the bench each second.

Kept apart from bench/session so the measured process imports what the real monitor imports, nothing of the bench.

    python -m bench.sessionmonitor --config <toml> --iw-dir <dir>     (started by bench/session, as nobody)
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path

IW_KINDS = ("station", "survey")  # `scan dump` (once a minute): no cached scan results in the venue


def file_iw(folder: Path):
    """A runner for the Collector: `iw dev <if> <kind> dump` -> `cat <folder>/<kind>` through the monitor's own
    subprocess adapter (fork/exec and the pipe cost what a real `iw` call's do; its netlink work is not in it)."""
    from appliance.monitor.system import run_text

    def runner(argv: list[str]) -> str | None:
        kind = argv[-2] if len(argv) >= 2 else ""
        if kind not in IW_KINDS or not (folder / kind).exists():
            return None
        return run_text(["cat", str(folder / kind)])

    return runner


def main(argv: list[str] | None = None) -> int:
    from appliance.config import load
    from appliance.monitor.collector import Collector
    from appliance.monitor.daemon import Monitor
    from appliance.monitor.system import SystemReader

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, required=True)
    ap.add_argument("--iw-dir", type=Path, required=True)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    cfg = load(args.config)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    mon = Monitor(cfg, Collector(cfg, runner=file_iw(args.iw_dir), system=SystemReader(vcgencmd=None)))
    try:
        mon.run(stop)
    finally:
        mon.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
