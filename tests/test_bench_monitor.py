"""The monitor benchmark keeps working (a few stations, two seconds); its goal lives in docs/benchmarks.md."""

from __future__ import annotations

import json


def test_small_monitor_bench_runs_and_writes_the_result_file(tmp_path):
    from bench import monitor

    out = tmp_path / "monitor.json"
    monitor.main(["--stations", "20", "--seconds", "2", "--out", str(out)])
    result = json.loads(out.read_text())
    assert set(result) == {"name", "ratio", "goal", "ok", "figures", "command"}
    f = result["figures"]
    assert f["clients_seen"] == 20 and f["ticks"] >= 1
    assert f["hostapd_sta_commands"] >= 20  # the stations really were walked over the control socket
