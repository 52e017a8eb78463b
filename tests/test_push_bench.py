"""bench/chat keeps working (a handful of clients; its timing goals live in docs/benchmarks.md)."""

from __future__ import annotations

import json

from tests.conftest import need_root


def test_small_chat_bench_writes_the_result_file(tmp_path):
    need_root()  # the real web app drops to nobody
    from bench import chat

    out = tmp_path / "chat.json"
    chat.main(["--clients", "5", "--messages", "3", "--burst", "3", "--out", str(out)])
    result = json.loads(out.read_text())
    assert set(result) == {"name", "ratio", "goal", "ok", "figures", "command"}
    f = result["figures"]
    assert f["ours"]["latency"]["n"] == 15 and f["baseline"]["latency"]["n"] == 15
    assert f["ours"]["workers"] == 2
