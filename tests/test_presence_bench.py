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


def test_idle_tick_bench_reports_cpu_and_writes_nothing(tmp_path, capsys):
    from bench import presence_idle

    for flags in ([], ["--no-memo"]):
        assert presence_idle.main(["--members", "12", "--ticks", "5", *flags]) == 0
        result = json.loads(capsys.readouterr().out)
        assert result["members"] == 12 and result["memo"] == (not flags)
        assert result["rows_changed"] == 0 and result["cpu_ms_per_tick"] >= 0
