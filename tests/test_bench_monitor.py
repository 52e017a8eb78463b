"""The monitor benchmark keeps working (a few stations, a second or two); its goal lives in docs/benchmarks.md."""

from __future__ import annotations

import json

from appliance.monitor import iw


def test_small_monitor_bench_runs_and_writes_the_result_file(tmp_path):
    from bench import monitor

    out = tmp_path / "monitor.json"
    monitor.main(["--counts", "4,12", "--seconds", "2", "--runs", "1", "--out", str(out)])
    result = json.loads(out.read_text())
    assert set(result) == {"name", "ratio", "goal", "ok", "figures", "command"}
    f = result["figures"]
    assert set(f["summary"]) == {"replay", "exec"} and len(f["samples"]) == 4
    assert set(f["summary"]["replay"]["12_stations"]) == {"cpu_pct_of_one_core", "ms_per_tick", "units_per_tick"}
    (cal,) = f["calibration"]["runs"]  # bench.calibrate's unit, measured once per run
    assert f["calibration"]["version"] == cal["version"] and cal["unit_cpu_ms"] > 0
    for s in f["samples"]:
        assert s["clients_seen"] == s["stations"] and s["ticks"] >= 1
        # ms per tick also in calibration units: the same figure divided by the run's unit
        assert s["calibration_unit_cpu_ms"] == cal["unit_cpu_ms"]
        assert abs(s["units_per_tick"] - s["ms_per_tick"] / cal["unit_cpu_ms"]) < 1e-3
        # the first tick takes the keyids from the radio daemon's `stations` table: ATTACH and STATUS, no walk...
        assert s["first_tick_round_trips"]["ctrl"] == 2
        # ...then every tick is STATUS and two `iw` calls, whatever the number of stations
        assert s["later_ticks_ctrl_commands"] == [1] and s["later_ticks_subprocesses"] == [2]


def test_exec_iw_prints_the_dumps_written_beforehand(tmp_path):
    from bench.monitor import ExecIw, write_iw_dumps

    write_iw_dumps(tmp_path, stations=3, ticks=2)
    run = ExecIw(tmp_path)
    first = iw.parse_station_dump(run(["iw", "dev", "wlan0", "station", "dump"]))
    second = iw.parse_station_dump(run(["iw", "dev", "wlan0", "station", "dump"]))
    assert len(first) == len(second) == 3
    assert [b.tx_packets - a.tx_packets for a, b in zip(first, second, strict=True)] == [100, 100, 100]
    assert iw.in_use(iw.parse_survey_dump(run(["iw", "dev", "wlan0", "survey", "dump"]))).busy_ms > 0
    assert run(["iw", "dev", "wlan0", "scan", "dump"]) == ""
    assert run(["iw", "dev", "wlan0", "info"]) is None
