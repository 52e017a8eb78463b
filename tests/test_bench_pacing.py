"""bench/pacing still runs (tiny: 3 downloads, 3 ranges, 2 MB); not timed — numbers come from
`python -m bench.pacing`."""

from __future__ import annotations

import argparse


def test_pacing_bench_runs(tmp_path):
    from bench import pacing

    out = tmp_path / "pacing.json"
    args = argparse.Namespace(bulk=3, ranges=3, size_mb=2, link_mb=30.0, pace_kib=None)
    result = pacing.run(args, out)
    figures = result["figures"]
    assert out.exists() and result["name"] == "pacing" and result["command"].startswith("python -m bench.pacing")
    for phase in ("paced", "unpaced"):
        assert figures[phase]["errors"] == 0 and figures[phase]["range"]["n"] == 3
    assert figures["pace_kib_per_worker"] > 0
