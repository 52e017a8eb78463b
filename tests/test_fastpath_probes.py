"""appliance.web.fastpath answers the phones' connectivity probes (a GET for a host that is not the box) without
Flask's request: every answer must be the captive hook's, byte for byte, for every probe of
docs/connectivity-probes.md, for a device let through and one that is not, in demo mode too. The two-world method
of tests/test_votes_fastpath.py: world F through the fast path (and it must have answered), world V through the
Flask app alone."""

from __future__ import annotations

import pytest

from tests.test_probes import ROWS
from tests.test_votes_fastpath import BERND_IP, STRANGER_IP, World, same

ANNA_IP = "10.77.0.10"
OUTSIDE = [(row.host, row.path) for row in ROWS] + [("example.org", "/"), ("www.msftconnecttest.com", "/redirect"),
                                                     ("EXAMPLE.org:8080", "/irgendwas?x=1")]


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):
    root = tmp_path_factory.mktemp("probes")
    f, v = World(root / "f"), World(root / "v")
    yield f, v
    f.db.conn.close()
    v.db.conn.close()


@pytest.mark.parametrize(("host", "path"), OUTSIDE)
def test_a_device_let_through_gets_the_online_answer_from_the_fast_path(worlds, host, path):
    f, v = worlds
    status, headers, body = same(f, v, path, BERND_IP, host=host)
    assert status in (200, 204, 302)
    if status == 302:  # an unknown page or Microsoft's redirect probe: to the box, never the portal
        assert ("Location", "http://10.77.0.1/") in headers


@pytest.mark.parametrize(("host", "path"), OUTSIDE[:4] + OUTSIDE[-3:])
def test_a_captive_device_is_sent_to_the_portal_by_the_fast_path(worlds, host, path):
    f, v = worlds
    status, headers, _body = same(f, v, path, STRANGER_IP, host=host)
    assert status == 302 and ("Location", f.cfg.portal_url) in headers


def test_what_the_fast_path_leaves_to_flask(worlds):
    f, v = worlds
    host = "connectivitycheck.gstatic.com"
    same(f, v, "/generate_204", ANNA_IP, host=host, headers={"Cookie": "a=b"}, fast=False)  # a cookie
    same(f, v, "/generate_204", ANNA_IP, method="POST", host=host, fast=False)  # not a GET
    same(f, v, "/gen%C3%A9rate_204", ANNA_IP, host=host, fast=False)  # a path that is not ASCII
    same(f, v, "/", ANNA_IP, host="10.77.0.1", fast=False)  # the box itself: its pages are Flask's


def test_demo_mode_takes_the_device_from_as(tmp_path):
    f, v = World(tmp_path / "f", demo=True), World(tmp_path / "v", demo=True)
    try:
        host = "connectivitycheck.gstatic.com"
        assert same(f, v, f"/generate_204?as={BERND_IP}", "127.0.0.1", host=host)[0] == 204
        assert same(f, v, f"/generate_204?as={STRANGER_IP}", "127.0.0.1", host=host)[0] == 302
        assert same(f, v, "/generate_204?as=kein-geraet", "127.0.0.1", host=host)[0] == 302
    finally:
        f.db.conn.close()
        v.db.conn.close()
