"""The hall benchmark keeps working (4 phones, a 2 MB PDF, one run); its goals live in docs/benchmarks.md.
Behaviour only, never timing: the viewer's ranges are the ones PDF.js asks for, and they move fewer bytes
over the shaped radio than whole downloads."""

from __future__ import annotations

import json

import pytest

from tests.conftest import need_binary, need_root


def test_the_plan_is_what_pdfjs_asks_for_and_the_viewer_copy_makes_it_small(tmp_path):
    """The box's PDF.js (in Node) on the bench's document: on the original (page dictionaries spread) it reads
    a chunk per page before page 1; on the copy the import makes (documents/viewcopy.py) a few chunks."""
    need_binary("qpdf", "node")
    from appliance.documents import viewcopy
    from bench import hall

    src = tmp_path / "paket.pdf"
    src.write_bytes(hall.make_pdf(60, 4 * 2**20))
    (made,) = viewcopy.prepare_files([src], tmp_path / "out")
    assert made.copy is not None
    size = made.copy.stat().st_size
    pages, plan = hall.pdfjs_plan(made.copy)
    asked = [r for rnd in plan for r in rnd]
    assert pages == 60 and 1 <= len(plan) <= 6
    assert all(a % hall.CHUNK == 0 and (b + 1) % hall.CHUNK == 0 or b == size - 1 for a, b in asked)
    first_page = hall.CHUNK + sum(b - a + 1 for a, b in asked)
    assert first_page < size / 20, (first_page, size)
    pages, spread = hall.pdfjs_plan(src)
    # a chunk for every page dictionary (16 kB each of a 70 kB page here; 64 kB chunks read nearly everything)
    assert sum(b - a + 1 for rnd in spread for a, b in rnd) > 10 * first_page


@pytest.mark.net
def test_small_hall_runs_and_the_viewer_moves_fewer_bytes_than_whole_downloads(tmp_path):
    need_root()
    need_binary("dnsmasq", "nft", "busybox", "setpriv", "tc", "qpdf", "node")
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
