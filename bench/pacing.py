"""Pacing benchmark (issue 16): does pacing bulk downloads keep the viewer quick on a shared radio?

The real web app (`sitzungsbox web`: gunicorn, gevent workers, unprivileged) serves a PDF on loopback, once
with bulk pacing (`docs_bulk_pace_kib` from Config, per worker) and once without (0), in the same run. The
radio is modelled on the client side: every client reads its socket through ONE shared byte clock of
`--link-mb` MB/s (the hall's ~30 MB/s airtime, shared by all devices, roughly round robin between them;
TCP back-pressure carries the limit to the server). `--bulk` clients fetch the whole file over and over
(people saving the ZIP or the PDF) while one viewer client fetches `--ranges` ranges of 256 KiB one after
the other, as PDF.js does when a member turns pages. Measured: the time per range request.

`ratio` = range p95 without pacing / range p95 with pacing (how many times quicker the viewer is).

    python -m bench.pacing [--bulk 20] [--ranges 30] [--size-mb 20] [--link-mb 30]  ->  bench/results/pacing.json
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import RESULTS, ROOT, summarise, write_result
from bench.downloads import free_port, make_pdf, prepare, stop, wait_port

GOAL_RATIO = 2.0  # the viewer's p95 at least twice as quick with pacing
GOAL_P95_S = 0.5  # a 256 KiB page range within half a second while 20 devices download
RANGE = 256 * 1024


class Link:
    """The shared radio: reads are served one after the other at `rate` bytes/s (FIFO over all clients)."""

    def __init__(self, rate: float) -> None:
        self.rate, self.free_at = rate, 0.0

    async def take(self, n: int) -> None:
        now = time.monotonic()
        start = max(now, self.free_at)
        self.free_at = start + n / self.rate
        if self.free_at > now:
            await asyncio.sleep(self.free_at - now)


async def fetch(port: int, path: str, link: Link, rng: tuple[int, int] | None = None,
                got: list[int] | None = None) -> tuple[int, int]:
    """One GET on a fresh connection through the shared link; `got[0]` grows as bytes arrive."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 16)
    hdr = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    if rng:
        hdr += f"Range: bytes={rng[0]}-{rng[1]}\r\n"
    writer.write((hdr + "\r\n").encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status, n = int(head.split(b" ", 2)[1]), 0
    try:
        while True:
            chunk = await reader.read(1 << 16)
            if not chunk:
                break
            n += len(chunk)
            await link.take(len(chunk))
            if got is not None:
                got[0] += len(chunk)
    finally:
        writer.close()
    return status, n


async def phase(port: int, path: str, size: int, bulk: int, ranges: int, link_mb: float) -> dict:
    link = Link(link_mb * 1e6)
    stop_at: list[bool] = [False]
    bulk_bytes = [0]
    errors: list[str] = []

    async def downloader() -> None:
        while not stop_at[0]:
            status, _ = await fetch(port, path, link, got=bulk_bytes)
            if status != 200:
                errors.append(f"bulk {status}")
                return

    tasks = [asyncio.create_task(downloader()) for _ in range(bulk)]
    await asyncio.sleep(1.0)  # the downloads are under way, the radio is full
    t0, b_start = time.perf_counter(), bulk_bytes[0]
    times = []
    for k in range(ranges):
        a = (k * 7 * RANGE) % (size - RANGE)
        t = time.perf_counter()
        status, n = await fetch(port, path, link, (a, a + RANGE - 1))
        times.append(time.perf_counter() - t)
        if status != 206 or n != RANGE:
            errors.append(f"range {a}: {status} {n}")
    wall = time.perf_counter() - t0
    b0 = bulk_bytes[0] - b_start
    stop_at[0] = True
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"range": summarise(times), "range_times_s": [round(t, 3) for t in times],
             "bulk_mb_per_s": round(b0 / wall / 1e6, 1), "errors": len(errors),
            "first_errors": errors[:5]}


def serve_and_measure(work: Path, data: bytes, pace_kib: int, args) -> tuple[dict, int]:
    port = free_port()
    web_user = "nobody" if os.geteuid() == 0 else pwd.getpwuid(os.getuid()).pw_name
    cfg, fid, _ = prepare(work, data, port, web_user, pace_kib=pace_kib)
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        for p in [cfg.state_dir, *cfg.state_dir.rglob("*")]:
            os.chown(p, nobody.pw_uid, nobody.pw_gid, follow_symlinks=False)
    from appliance.config import to_toml
    toml = work / "sb.toml"
    toml.write_text(to_toml(cfg))
    web = subprocess.Popen([sys.executable, "-m", "appliance.cli", "--config", str(toml), "web"],
                           stdout=subprocess.DEVNULL, stderr=open(work / "web.log", "wb"),  # noqa: SIM115
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        wait_port(port, web)
        path = f"/unterlagen/datei/{fid}/haushalt.pdf"
        for _ in range(2 * cfg.web_workers):  # the workers have booted and answered once (their imports)
            asyncio.run(fetch(port, path, Link(1e12), (0, 0)))
        return asyncio.run(phase(port, path, len(data), args.bulk, args.ranges, args.link_mb)), cfg.web_workers
    finally:
        stop(web)


def run(args, out: Path | None) -> dict:
    from appliance.config import Config

    rate = args.pace_kib if args.pace_kib is not None else Config().docs_bulk_pace_kib
    data = make_pdf(args.size_mb * 2**20)
    figures: dict = {"bulk_clients": args.bulk, "ranges": args.ranges, "range_kib": RANGE // 1024,
                     "file_mb": args.size_mb, "link_mb_per_s": args.link_mb, "pace_kib_per_worker": rate}
    for name, pace in (("unpaced", 0), ("paced", rate)):
        work = Path(tempfile.mkdtemp(prefix=f"sbd-pacing-{name}-"))
        work.chmod(0o755)
        try:
            figures[name], figures["web_workers"] = serve_and_measure(work, data, pace, args)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    slow, quick = figures["unpaced"]["range"]["p95_s"], figures["paced"]["range"]["p95_s"]
    ratio = round(slow / quick, 2) if quick else 0.0
    ok = (ratio >= GOAL_RATIO and quick <= GOAL_P95_S
          and figures["paced"]["errors"] == 0 and figures["unpaced"]["errors"] == 0)
    command = (f"python -m bench.pacing --bulk {args.bulk} --ranges {args.ranges} --size-mb {args.size_mb}"
               f" --link-mb {args.link_mb}")
    goal = {"ratio_min": GOAL_RATIO, "paced_range_p95_s_max": GOAL_P95_S}
    if out is None:
        return {"name": "pacing", "ratio": ratio, "goal": goal, "ok": ok, "figures": figures, "command": command}
    return write_result(out, "pacing", ratio, goal, ok, figures, command)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bulk", type=int, default=20)
    ap.add_argument("--ranges", type=int, default=30)
    ap.add_argument("--size-mb", type=int, default=20)
    ap.add_argument("--link-mb", type=float, default=30.0)
    ap.add_argument("--pace-kib", type=int, default=None, help="default: Config's docs_bulk_pace_kib")
    ap.add_argument("--out", type=Path, default=RESULTS / "pacing.json")
    args = ap.parse_args(argv)
    return 0 if run(args, args.out)["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
