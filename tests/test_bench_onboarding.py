"""The onboarding benchmark keeps working (a small burst); its timing goals live in docs/benchmarks.md."""

from __future__ import annotations

import json

import pytest

from tests.conftest import need_binary, need_root

pytestmark = pytest.mark.net


def test_small_burst_runs_every_step_and_writes_the_result_file(tmp_path):
    need_root()
    need_binary("dnsmasq", "nft", "busybox", "setpriv")
    from bench import onboarding

    out = tmp_path / "onboarding.json"
    onboarding.main(["--clients", "10", "--runs", "1", "--prefix", "sbxq", "--out", str(out)])
    result = json.loads(out.read_text())
    assert set(result) == {"name", "ratio", "goal", "ok", "figures", "command"}
    assert result["figures"]["runs"] == 1
    assert result["ratio"] == result["figures"]["spread"]["ratio"]["median"]
    f = result["figures"]["per_run"][0]
    assert f["baseline_failed"] == [] and f["onboarding_failed"] == []
    assert f["admitted_in_firewall"] == 10  # every phone ended up admitted by the real helper
    for step in ("lease", "probe", "portal", "admission", "total"):
        assert f[f"onboarding_{step}"]["n"] == 10
    assert result["ratio"] == round(f["onboarding_total"]["p95_s"] / f["baseline_lease"]["p95_s"], 3)
    assert f["verdict"]["ratio"] == result["ratio"]
    assert result["ok"] == f["verdict"]["ok"]
    # the box's CPU also in calibration units, measured in the same run (issue 15)
    assert f["calibration"]["unit_cpu_ms"] > 0
    assert f["onboarding_box_cpu_units"] == round(1000 * f["onboarding_cpu_s"]["box_total"]
                                                  / f["calibration"]["unit_cpu_ms"], 4)
