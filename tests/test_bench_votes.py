"""bench/votes keeps working (a handful of members, one run; its timing goals live in docs/benchmarks.md).
Behaviour only, never timing: every member's cast is acknowledged with its own choice and stored exactly once,
the closed vote's result reaches the room screen, the castfloor baseline stores every cast of the same
schedule, and the result file has the shape every benchmark writes."""

from __future__ import annotations

import json

from tests.conftest import need_root


def test_small_votes_bench_counts_every_cast_once_and_shows_the_result_on_the_screen(tmp_path):
    need_root()  # the real web app drops to nobody
    from bench import votes

    out = tmp_path / "votes.json"
    votes.main(["--members", "8", "--runs", "1", "--out", str(out)])
    result = json.loads(out.read_text())
    assert set(result) == {"name", "ratio", "goal", "ok", "figures", "command"}
    assert result["name"] == "votes" and result["ratio"] > 0
    assert result["command"] == "python -m bench.votes --members 8 --runs 1"
    f = result["figures"]
    assert (f["members"], f["runs"]) == (8, 1)
    (run,) = f["per_run"]
    assert run["casts"] == run["acknowledged"] == 8 and run["statuses"] == {"200": 8}
    assert run["eligible"] == run["ballots_right"] == run["cast_count"] == run["log_casts"] == run["cast_keys"] == 8
    assert run["counted_once"] and run["ok"]["counted_once"]
    assert run["last_sent_after_open_ms"] <= votes.SPAN_S * 1000 + 200  # all within the second after the open
    assert run["cast_ack"]["n"] == 8
    assert run["close_to_screen_ms"] is not None  # the screen showed the result (its timing: the docs)
    # every phone held its stream: the opening and the close reached each of them, and each refetched its block
    assert run["member_phones"]["streams"] == 8 and run["member_phones"]["refetch_errors"] == 0
    assert run["member_phones"]["refetches"] >= 8
    base = run["baseline"]
    assert base["casts"] == base["acknowledged"] == base["stored"] == 8
    assert run["worker_cpu_ms_per_cast"] > 0 and base["cpu_ms_per_cast"] >= 0
    # the CPU also in units of the calibration workload measured in the same run (issue 15)
    unit = run["calibration"]["unit_cpu_ms"]
    assert run["worker_cpu_units_per_cast"] == round(run["worker_cpu_ms_per_cast"] / unit, 4)
    assert set(f["spread"]["cast_ack_p99_ms"]) == {"min", "median", "max"}
