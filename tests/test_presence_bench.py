"""bench/presence keeps working (a few devices, short grace; the timing goals live in docs/benchmarks.md)."""

from __future__ import annotations

import json


def test_small_presence_bench_writes_the_result_file(tmp_path):
    from bench import presence

    out = tmp_path / "presence.json"
    presence.main(["--devices", "8", "--grace", "0.5", "--spread", "0.2", "--out", str(out)])
    result = json.loads(out.read_text())
    assert set(result) == {"name", "ratio", "goal", "ok", "figures", "command"}
    f = result["figures"]
    assert f["arrival"]["n"] == 8 and f["leaving"]["n"] == 8
    assert f["leaving"]["p50_s"] >= 0.5 - 0.1  # nobody leaves before the grace period is over
