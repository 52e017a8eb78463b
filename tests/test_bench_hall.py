"""The hall benchmark keeps working (4 phones, a 2 MB PDF, one run); its goals live in docs/benchmarks.md.
Behaviour only, never timing: the viewer's ranges are the ones PDF.js asks for, and they move fewer bytes
over the shaped radio than whole downloads."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import need_binary, need_root


def test_plan_reads_the_linearization_and_asks_for_the_first_page_and_the_main_xref(tmp_path):
    need_binary("qpdf")
    from bench import hall

    data = hall.linearize(hall.make_pdf(40, 3 * 2**20), tmp_path)
    lin = hall.lin_params(data[:hall.CHUNK])
    assert lin["L"] == len(data) and lin["N"] == 40
    assert hall.CHUNK < lin["E"] < 3 * hall.CHUNK  # page 1 (one ~78 kB image) right after the header
    assert len(data) - 50_000 < lin["Prev"] < len(data)  # the main xref is at the end
    plan = hall.viewer_plan(lin)
    # main xref first (PDF.js reads every xref section first), then the chunks up to /E; chunk-aligned.
    assert plan[0][0] == lin["Prev"] // hall.CHUNK * hall.CHUNK and plan[0][1] == len(data) - 1
    assert plan[1] == (hall.CHUNK, -(-lin["E"] // hall.CHUNK) * hall.CHUNK - 1)
    with pytest.raises(ValueError):
        hall.lin_params(hall.make_pdf(2, 10_000)[:hall.CHUNK])  # not linearized
    # With object streams the first-page xref is an xref stream: /Prev sits in its dictionary.
    subprocess.run(["qpdf", "--linearize", "--object-streams=generate", str(tmp_path / "plain.pdf"),
                    str(tmp_path / "objstm.pdf")], check=True, timeout=60)
    packed = (tmp_path / "objstm.pdf").read_bytes()
    assert len(packed) - 20_000 < hall.lin_params(packed[:hall.CHUNK])["Prev"] < len(packed)


@pytest.mark.net
def test_small_hall_runs_and_the_viewer_moves_fewer_bytes_than_whole_downloads(tmp_path):
    need_root()
    need_binary("dnsmasq", "nft", "busybox", "setpriv", "tc", "qpdf")
    from bench import hall

    out = tmp_path / "hall.json"
    hall.main(["--clients", "4", "--size-mb", "2", "--pages", "30", "--runs", "1", "--prefix", "sbhallt",
               "--nice", "0", "--out", str(out)])  # nice 0: os.nice would stay with the test process
    result = json.loads(out.read_text())
    assert set(result) == {"name", "ratio", "goal", "ok", "figures", "command"}
    f = result["figures"]
    assert f["admitted_in_firewall"] == 4
    (viewer,), (base,) = f["viewer"], f["baseline"]
    assert viewer["n_failed"] == 0 and base["n_failed"] == 0
    assert viewer["first_page"]["n"] == 4 and base["first_page"]["n"] == 4
    assert base["air_bytes"] >= 4 * f["pdf"]["bytes"]  # every baseline phone got the whole file
    assert viewer["air_bytes"] < base["air_bytes"] / 5
    # What the phones received went over the shaped qdisc (plus TCP/IP headers): the cross-check holds.
    for phase in (viewer, base):
        assert phase["air_bytes"] <= phase["tc_sent"]["bytes"] <= phase["air_bytes"] * 1.2
    assert result["ratio"] == round(base["air_bytes"] / viewer["air_bytes"], 1)
