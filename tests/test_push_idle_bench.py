"""bench/push_idle keeps working (a handful of streams, short windows; its goals live in docs/benchmarks.md)."""

from __future__ import annotations

import json

from tests.conftest import need_root


def test_small_push_idle_bench_writes_the_result_file(tmp_path):
    need_root()  # the real web app drops to nobody
    from bench import push_idle

    out = tmp_path / "push_idle.json"
    push_idle.main(["--clients", "4", "--window", "0.5", "--rounds", "1", "--out", str(out)])
    result = json.loads(out.read_text())
    assert set(result) == {"name", "ratio", "goal", "ok", "figures", "command"} and result["name"] == "push_idle"
    (base,), (shipped,) = result["figures"]["runs"]["baseline"], result["figures"]["runs"]["shipped"]
    assert base["push_poll_s"] == 0.05 and shipped["push_poll_s"] == 1.0
    assert 1 <= shipped["hubs_with_socket"] <= shipped["workers"] == 2
    f = result["figures"]  # the CPU also in calibration units, measured in the same run (issue 15)
    assert f["calibration"]["unit_cpu_ms"] > 0
    assert f["units_per_s"]["shipped_pct_streams"] == round(10 * f["shipped_pct_streams"]
                                                            / f["calibration"]["unit_cpu_ms"], 4)
