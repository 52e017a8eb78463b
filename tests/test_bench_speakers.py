"""bench/speakers keeps working (a handful of members, one run; its timing goal lives in docs/benchmarks.md).
Behaviour only, never timing: every request to speak is stored and reaches the chair's console and the room
screen (its event on each stream, then a page that shows it), the chair works through the whole queue, and the
result file has the shape every benchmark writes."""

from __future__ import annotations

import json

from tests.conftest import need_root


def test_small_speakers_bench_sees_every_request_on_both_screens(tmp_path):
    need_root()  # the real web app drops to nobody
    from bench import speakers

    out = tmp_path / "speakers.json"
    speakers.main(["--members", "8", "--requests", "5", "--runs", "1", "--extra", "2", "--chat-messages", "2",
                   "--chat-burst", "2", "--out", str(out)])
    result = json.loads(out.read_text())
    assert set(result) == {"name", "ratio", "goal", "ok", "figures", "command"}
    assert result["name"] == "speakers" and result["ratio"] > 0
    assert result["command"].startswith("python -m bench.speakers --members 8 --requests 5 --runs 1")
    f = result["figures"]
    assert (f["members"], f["requests"], f["runs"]) == (8, 5, 1)
    (run,) = f["per_run"]
    assert run["requests"] == run["accepted"] == run["stored"] == 5  # 5 members, 5 POSTs, 5 rows
    assert run["seen_on_console"] == run["seen_on_screen"] == 5 and run["missing"] == []
    assert run["console"]["n"] == run["screen"]["n"] == run["both"]["n"] == 5
    assert run["chair_calls"] == 5  # the chair called each of them, then found the queue empty
    # every other member's phone held its stream and got every event (5 requests + 5 calls)
    assert run["member_phones"]["streams"] == 7 and run["member_phones"]["events"] == 7 * 10
    assert run["chat_posts_latency"]["n"] == 8 * 2  # the chat baseline ran in the same run
    assert {"kib_per_screen_stream", "kib_per_console_stream"} <= set(run)
    assert set(f["spread"]["both_p99_ms"]) == {"min", "median", "max"}
