"""What every benchmark shares: nearest-rank percentiles and the result file's shape."""

from __future__ import annotations

import asyncio
import json
import statistics
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): always a measured value, never an interpolation."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil without floats drifting
    return ordered[int(rank) - 1]


def summarise(durations: list[float], *qs: int) -> dict[str, float | int]:
    """n, the requested percentiles (default p50 and p95), max and mean, in seconds."""
    out: dict[str, float | int] = {"n": len(durations)}
    for q in qs or (50, 95):
        out[f"p{q}_s"] = round(percentile(durations, q), 4)
    out["max_s"] = round(max(durations), 4) if durations else 0.0
    out["mean_s"] = round(statistics.fmean(durations), 4) if durations else 0.0
    return out


def write_result(out: Path, name: str, ratio: float, goal: str, ok: bool, figures: dict, command: str) -> dict:
    """bench/results/<name>.json: name, ratio, goal, ok, figures, command (see docs/benchmarks.md)."""
    result = {"name": name, "ratio": ratio, "goal": goal, "ok": ok, "figures": figures, "command": command}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return result


async def http(port: int, method: str, path: str, form: dict | None = None,
               headers: str = "") -> tuple[int, str, bytes]:
    """One request to 127.0.0.1:`port` on its own connection (HTTP/1.0: the answer ends with the connection, no
    chunked framing): status, head, body. `headers`: extra header lines, each ending in CRLF."""
    r, w = await asyncio.open_connection("127.0.0.1", port)
    body = urllib.parse.urlencode(form).encode() if form is not None else b""
    head = f"{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n{headers}"
    if form is not None:
        head += f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n"
    w.write(head.encode() + b"\r\n" + body)
    await w.drain()
    raw = await r.read()
    w.close()
    head_b, _sep, rest = raw.partition(b"\r\n\r\n")
    status = int(head_b.split(b" ", 2)[1]) if head_b else 0
    return status, head_b.decode("latin-1"), rest
