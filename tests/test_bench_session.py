"""bench/session keeps working (6 phones, a 36-second session; its goals and figures live in docs/benchmarks.md).
Behaviour only, never timing: every chat message reaches every phone's stream, each vote's opening and close reach
every phone and every cast is counted once, each arrival and departure reaches the clerk's console and the
presence record, nothing fails, and the result has the shape every benchmark writes — with the CPU of each box
process per phase and in calibration units."""

from __future__ import annotations

import json

from tests.conftest import need_root


def test_a_lost_delivery_is_counted_as_missing():
    from bench.session import delivery

    assert delivery({"a", "b"}, [{"a", "b"}, {"a", "b", "other"}]) == {
        "expected": 4, "delivered": 4, "missing": 0, "complete": True}
    lost = delivery({"a", "b"}, [{"a", "b"}, {"a"}, set()])
    assert (lost["expected"], lost["delivered"], lost["missing"], lost["complete"]) == (6, 3, 3, False)


def test_the_timeline_is_a_20_minute_session_scaled_or_a_soak_of_repeated_cycles():
    from bench.session import CYCLE, timeline

    full = timeline(20)
    assert [p.name for p in full] == ["baseline", "arrivals", *CYCLE, "leaving"]
    assert round(sum(p.seconds for p in full)) == 20 * 60
    assert round(sum(p.seconds for p in timeline(1)), 6) == 60
    soak = timeline(20, hours=2.5)
    cycles = max(p.cycle for p in soak)
    assert cycles >= 10 and [p.label for p in soak if p.name == "votes"][-1] == f"votes#{cycles}"
    assert abs(sum(p.seconds for p in soak) - 2.5 * 3600) < 0.1 * 3600


def test_small_session_bench_delivers_everything_and_measures_every_box_process(tmp_path):
    need_root()  # the box's processes drop to nobody
    from bench import session

    out = tmp_path / "session.json"
    session.main(["--devices", "6", "--minutes", "0.6", "--messages", "4", "--requests", "3", "--readers", "2",
                  "--doc-mb", "1", "--sample-every", "0.5", "--out", str(out)])
    result = json.loads(out.read_text())
    assert set(result) == {"name", "ratio", "goal", "ok", "figures", "command"} and result["name"] == "session"
    assert result["command"] == "python -m bench.session --devices 6 --minutes 0.6"
    f = result["figures"]
    d = f["deliveries"]
    assert d["chat"] == {"messages": 4, "streams": 6, "expected": 24, "delivered": 24, "missing": 0, "complete": True}
    assert (d["votes"]["votes"], d["votes"]["expected"], d["votes"]["delivered"]) == (1, 12, 12)
    assert d["votes"]["counted_once"]
    (vote,) = f["acts"]["votes"]
    assert vote["casts"] == vote["acknowledged"] == vote["ballots_right"] == vote["cast_count"] == 6
    p = d["presence"]
    assert p["complete"] and p["clerk_saw_arrive"] == p["clerk_saw_leave"] == p["intervals_closed"] == 6
    assert f["errors"]["total"] == 0, f["errors"]
    assert f["goals_met"]["zero_errors"] and f["goals_met"]["everything_delivered"]
    assert f["acts"]["arrivals"]["streams_open"] == 6 and f["acts"]["leaving"]["still_present"] == 0
    assert f["requests"]["chat post"] == {"201": 4} and f["requests"]["speaker request"] == {"303": 3}
    processes = {"web master", "web worker 1", "web worker 2", "daemon", "monitor"}
    assert f["phase_order"] == ["baseline", "arrivals", "idle", "idle (measured)", "chat", "downloads", "speakers",
                                "votes", "leaving"]
    for phase in (f["baseline"], f["idle"], f["steady"], *f["phases"].values()):
        assert set(phase["per_process_pct"]) == processes and set(phase["rss_mb"]) == processes
        assert abs(phase["box_pct"] - sum(phase["per_process_pct"].values())) < 0.01  # the box is these processes
    assert f["steady"]["box_pct"] > 0 and f["steady"]["units_per_s"] > 0  # the monitor alone ticks every second
    assert f["calibration"]["unit_cpu_ms"] > 0 and f["calibration"]["after"]["version"] == 1
    assert result["ratio"] == round(f["idle"]["box_pct"] / f["baseline"]["box_pct"], 3)
    assert len(f["rss"]["series_t_s_box_mb_per_process"]) > 10 and f["rss"]["box_mb_start"] > 0
    assert set(f["rss"]["growth_mb_per_h_per_process"]) == processes and "idle_growth_mb_per_h" in f["rss"]
