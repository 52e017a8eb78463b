"""The whole box in a virtual venue: real dnsmasq and nftables, the real helper, daemon and web app, client
namespaces on a bridge standing in for the radio, and a FakeHostapd replaying hostapd's protocol.

One venue for the module (setup ~3 s); the tests run in file order and build on each other, like a session:
leases → captive probes → a member connects and is greeted → admitted → isolation → a guest → rotation.
"""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from appliance.sessions import roster, service
from appliance.web import auth
from tests.test_probes import ROWS

pytestmark = pytest.mark.net

MEMBERS = """Name;Fraktion;Rolle;Stimmrecht;Gremium
Anna Schmidt;SPD;Mitglied;ja;Rat
Bernd Müller;CDU;Mitglied;ja;Rat
Çiğdem Öztürk;Grüne;Mitglied;ja;Rat
"""
DNS_RCODES = r"""
import socket, struct, sys
server, name = sys.argv[1:3]
for qtype, label in ((1, "A"), (28, "AAAA")):
    q = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0" + struct.pack(">HH", qtype, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    s.sendto(struct.pack(">HHHHHH", 7, 0x0100, 1, 0, 0, 0) + q, (server, 53))
    r = s.recv(1500)
    print(label, struct.unpack(">H", r[2:4])[0] & 0xF, struct.unpack(">H", r[6:8])[0])
"""
PASSWORD = "venue-test-password-1"  # set for this test's throwaway database only
# Every probe of docs/connectivity-probes.md (the table tests/test_probes.py reads), through the real network.
PROBES = ROWS


@pytest.fixture(scope="module")
def box(venue_factory):
    return venue_factory("sbxv", 4, members=MEMBERS, title="Virtuelle Sitzung", nft_table="sitzungsbox",
                         seed=lambda db, _sid, _cfg: auth.set_password(db, PASSWORD))


def members(box) -> dict[str, service.Member]:
    db = box.db()
    try:
        return {m.name: m for m in service.members(db, box.session_id)}
    finally:
        db.conn.close()


def probe(box, i: int, host: str, path: str):
    # DNS in the client answers every name with the box, so http://<probe host>/ goes to the box's port 80.
    return box.venue.http(i, f"http://{host}{path}", timeout=5)


def test_every_client_gets_a_lease_and_dns_points_at_the_box(box):
    cfg = box.cfg
    for i in box.venue.indices:
        lease = box.venue.dhcp(i)
        assert ipaddress.IPv4Address(lease.ip) in cfg.network and lease.ip != cfg.address
        assert cfg.address in lease.dns and lease.router == cfg.address
    for name in ("captive.apple.com", cfg.hostname, f"{cfg.hostname}.home.arpa"):
        out = box.venue.client_exec(1, ["getent", "ahostsv4", name]).stdout
        assert out.split()[0] == cfg.address, name
    # AAAA: an empty answer (NOERROR), not REFUSED, so phones do not retry or call the network broken.
    r = box.venue.client_exec(1, [sys.executable, "-c", DNS_RCODES, cfg.address, "captive.apple.com"])
    assert r.stdout.split() == ["A", "0", "1", "AAAA", "0", "0"], r
    # The web app reads the same lease file dnsmasq writes: IP -> MAC for every client.
    leases = cfg.leases_file.read_text()
    for i in box.venue.indices:
        assert f"{box.venue.client_mac(i)} {box.venue.client_ip(i)} " in leases


@pytest.mark.parametrize("row", PROBES, ids=str)
def test_unadmitted_client_gets_the_captive_answer(box, row):
    r = probe(box, 2, row.host, row.path)
    assert r.status == 302, r
    assert r.headers["location"] == box.cfg.portal_url


def test_member_is_greeted_by_name_without_login_or_cookie(box):
    anna = members(box)["Anna Schmidt"]
    mac = box.venue.client_mac(1)
    box.fake.connect(mac, anna.keyid)  # what hostapd says when the phone joins with Anna's card
    box.wait_station(mac, anna.keyid)
    r = box.venue.http(1, box.cfg.portal_url)
    assert r.status == 200
    assert "Anna Schmidt" in r.text
    assert "set-cookie" not in r.headers
    # Admitted on that page load: the firewall set holds exactly this device.
    assert (mac, box.venue.client_ip(1)) in box.venue.nft_set()
    # A second visit, again without any cookie, still knows her.
    assert "Anna Schmidt" in box.venue.http(1, f"http://{box.cfg.address}/").text


@pytest.mark.parametrize("row", PROBES, ids=str)
def test_admitted_probes_answer_online_while_another_client_stays_captive(box, row):
    """The exact online answer of the table (status, body, content type, headers) for an admitted device."""
    r = probe(box, 1, row.host, row.path)
    assert (r.status, r.body.decode()) == (row.status, row.body), row
    if row.body:
        assert r.headers["content-type"].split(";")[0] == row.content_type, row
    for name, value in row.headers.items():
        assert r.headers.get(name.lower()) == value, (row, name)
    assert probe(box, 2, row.host, row.path).status == 302


def test_rfc8908_api_tells_each_client_its_state(box):
    a = json.loads(box.venue.http(1, f"http://{box.cfg.address}/api/captive").body)
    b = json.loads(box.venue.http(2, f"http://{box.cfg.address}/api/captive").body)
    assert a["captive"] is False and b["captive"] is True


def test_only_admitted_clients_reach_the_box_services_directly(box):
    direct = f"http://{box.cfg.address}:{box.cfg.web_port}/healthz"
    assert box.venue.http(1, direct, timeout=3).status == 200
    assert box.venue.http(2, direct, timeout=2).status == 0  # dropped by nftables, not answered


def test_clients_cannot_reach_each_other(box):
    v = box.venue
    # Control: the box answers ping from both, so a failure below is isolation, not a dead link.
    for i in (1, 2):
        assert v.client_exec(i, ["busybox", "ping", "-c1", "-W1", box.cfg.address]).returncode == 0
    assert v.client_exec(1, ["busybox", "ping", "-c1", "-W1", v.client_ip(2)]).returncode != 0
    # Isolated at layer 2 already (the bridge table, as on a box without br_netfilter): client 2 does not
    # even answer client 1's ARP request, while the box does.
    def arp(target: str) -> str:
        return v.client_exec(1, ["busybox", "arping", "-c1", "-w1", "-I", "eth0", target]).stdout

    assert "Received 1 response" in arp(box.cfg.address)
    assert "Received 0 response" in arp(v.client_ip(2))
    server = subprocess.Popen(["ip", "netns", "exec", v.client_ns(2), "busybox", "nc", "-l", "-p", "9000"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        r = v.client_exec(1, ["busybox", "nc", "-w", "2", v.client_ip(2), "9000"], input="x", timeout=10)
        assert r.returncode != 0
    finally:
        server.kill()
        server.wait()


def test_guest_continues_with_one_tap_and_is_admitted(box):
    mac = box.venue.client_mac(3)
    box.fake.connect(mac, "guest")
    box.wait_station(mac, "guest")
    page = box.venue.http(3, box.cfg.portal_url).text
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page).group(1)
    assert probe(box, 3, "connectivitycheck.gstatic.com", "/generate_204").status == 302
    r = box.venue.http(3, f"http://{box.cfg.address}/portal/continue", method="POST", data=f"csrf_token={token}",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status in (302, 303)
    assert probe(box, 3, "connectivitycheck.gstatic.com", "/generate_204").status == 204
    # The same token replayed from another device is refused.
    r = box.venue.http(4, f"http://{box.cfg.address}/portal/continue", method="POST", data=f"csrf_token={token}",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 400


def test_box_is_announced_over_mdns_to_clients(box):
    v = box.venue
    r = v.client_exec(1, [sys.executable, "-m", "appliance.mdns", v.client_ip(1)], timeout=20,
                      env={"PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    found = json.loads(r.stdout or "[]")
    assert any(s["server"] == f"{box.cfg.hostname}.local." and box.cfg.address in s["addresses"] for s in found), r


def test_web_app_and_daemon_never_run_as_root(box):
    for name in ("web", "daemon"):
        status = Path(f"/proc/{box.procs[name].pid}/status").read_text()
        uids = re.search(r"^Uid:\s+(\d+)\s+(\d+)\s+(\d+)", status, re.M).groups()
        assert "0" not in uids, (name, uids)
    # gunicorn's worker too.
    children = Path(f"/proc/{box.procs['web'].pid}/task/{box.procs['web'].pid}/children").read_text().split()
    for pid in children:
        assert re.search(r"^Uid:\s+0\s", Path(f"/proc/{pid}/status").read_text(), re.M) is None


CLERK = r"""
import http.cookiejar, re, sys, urllib.parse, urllib.request
base, password, sid = sys.argv[1:4]
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
def field(html, name):
    return re.search(r'name="' + name + r'" value="([^"]+)"', html).group(1)
def post(url, **form):
    return opener.open(base + url, urllib.parse.urlencode(form).encode()).read().decode()
post("/clerk/login", csrf_token=field(opener.open(base + "/clerk/login").read().decode(), "csrf_token"),
     password=password, next="/clerk/")
# Key renewal is guarded: the confirmation page (GET) says what happens and carries the token for what it showed.
shown = opener.open(base + f"/clerk/sessions/{sid}/rotate").read().decode()
page = post(f"/clerk/sessions/{sid}/rotate", csrf_token=field(shown, "csrf_token"),
            confirm_token=field(shown, "confirm_token"), confirm="yes")
print(re.search(r"Alle Schlüssel erneuert[^<]*", page).group(0))
"""


def test_key_rotation_by_the_clerk_drops_revoked_members(box):
    v, cfg = box.venue, box.cfg
    before = members(box)
    anna_mac = v.client_mac(1)
    old_psk = cfg.psk_file.read_text()
    # The clerk works from a laptop on the session network (client 4), through the real web app.
    r = v.client_exec(4, [sys.executable, "-c", CLERK, f"http://{cfg.address}", PASSWORD, str(box.session_id)],
                      timeout=30, env={"PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    assert r.returncode == 0, r.stderr
    assert "2 Geräte wurden getrennt" in r.stdout  # Anna and the guest
    # The radio was told to re-read the keys and to drop Anna's phone.
    assert "RELOAD_WPA_PSK" in box.fake.commands_received
    assert anna_mac not in box.fake.stations
    box.wait_station(anna_mac, None, connected=False)
    # Old cards stop working: no old passphrase or keyid is left in hostapd's key file.
    new_psk = cfg.psk_file.read_text()
    for m in before.values():
        assert m.passphrase not in new_psk and f"keyid={m.keyid} " not in new_psk
    assert old_psk != new_psk
    # The firewall let go of every admitted device of the session: probes are captive again.
    assert v.nft_set() == set()
    assert probe(box, 1, "captive.apple.com", "/hotspot-detect.html").status == 302
    assert probe(box, 3, "connectivitycheck.gstatic.com", "/generate_204").status == 302


def test_switching_session_swaps_keys_without_restarting_the_radio(box):
    db = box.db()
    try:
        other = service.create_session(db, body="Hauptausschuss", title="2. Sitzung", day="2026-12-02",
                                       ssid=box.cfg.ssid)
        service.insert_members(db, other.id, roster.parse_members("Name;Rolle\nDora Klein;Mitglied\n"))
        old = service.members(db, box.session_id)
        bernd = next(m for m in old if m.name == "Bernd Müller")
        box.fake.connect(box.venue.client_mac(2), bernd.keyid)
        box.wait_station(box.venue.client_mac(2), bernd.keyid)
        from appliance.helper.client import HelperClient
        from appliance.usecases.sessions import activate_session

        result = activate_session(replace(box.cfg), db, HelperClient(box.cfg.helper_socket), other.id, "test")
        assert result.errors == ()
        psk = box.cfg.psk_file.read_text()
        assert f"keyid={service.members(db, other.id)[0].keyid} " in psk
        assert all(f"keyid={m.keyid} " not in psk for m in old)
        assert box.venue.client_mac(2) not in box.fake.stations  # Bernd's phone was dropped
    finally:
        db.conn.close()
