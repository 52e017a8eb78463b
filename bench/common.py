"""What every benchmark shares: nearest-rank percentiles and the result file's shape."""

from __future__ import annotations

import json
import statistics
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
