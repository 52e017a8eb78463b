"""bench/downloads still runs (tiny: 4 clients, 2 MB); not timed — numbers come from `python -m bench.downloads`."""

from __future__ import annotations

from tests.conftest import need_binary


def test_downloads_bench_runs(tmp_path):
    need_binary("nginx", "curl")
    from bench import downloads

    out = tmp_path / "downloads.json"
    result = downloads.run(clients=4, size_mb=2, out=out)
    figures = result["figures"]
    assert out.exists() and result["name"] == "downloads"
    assert figures["checksum_ok"] and figures["app"]["errors"] == 0 and figures["nginx"]["errors"] == 0
    assert figures["app"]["bytes"] == figures["nginx"]["bytes"] > 0
    assert figures["web_peak_rss_mb"] > 0
