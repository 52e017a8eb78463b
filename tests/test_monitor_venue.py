"""The technicians' dashboard in the virtual venue, and /metrics reached by the box's uplink address.

Venue part (root): the whole appliance plus `sitzungsbox monitor` (unprivileged) in the box namespace, an
uplink veth into a `wan` namespace where the city's monitoring sits. Clients lease, one member is
admitted, the others stay captured, they move a known number of bytes; then the dashboard's JSON API and
/metrics - fetched from the wan side by the uplink address - show exactly the leases dnsmasq handed out,
the admitted/captured split and bridge counters that grew at least by those bytes.

Flask part (no root): the captive hook treats every address configured on the box as a box host.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from appliance import netinfo
from appliance.monitor import leases as leases_mod
from appliance.monitor import snapshot as stored
from appliance.sessions import service
from appliance.web import auth, portal
from tests.conftest import need_binary

MEMBERS = "Name;Fraktion;Rolle\nAnna Schmidt;SPD;Mitglied\nBernd Müller;CDU;Mitglied\n"
TECH_PW = "venue-tech-password-7"  # this test's throwaway database only
WAN_NS = "sbmwan"
UPLINK = "up0"
UPLINK_IP, SCRAPER_IP = "10.78.0.2", "10.78.0.1"
PING_COUNT, PING_SIZE = 40, 1400
N_CLIENTS = 3

# Run inside the wan namespace: the technician/scraper logs in at the uplink address and prints the JSON
# API and /metrics. Standard library only (it runs with the venv's python, but needs nothing of ours).
SCRAPE = r"""
import http.cookiejar, json, re, sys, urllib.parse, urllib.request
base, password = sys.argv[1:3]
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
form = opener.open(base + "/technik/login", timeout=5).read().decode()
token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
opener.open(base + "/technik/login", urllib.parse.urlencode({"csrf_token": token, "password": password}).encode(),
            timeout=5)
api = json.loads(opener.open(base + "/technik/api", timeout=5).read())
metrics = urllib.request.urlopen(base + "/metrics", timeout=5).read().decode()
print(json.dumps({"api": api, "metrics": metrics}))
"""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=15, check=check)


def _wan_down() -> None:
    if Path(f"/run/netns/{WAN_NS}").exists():
        _ip("netns", "del", WAN_NS, check=False)


def _uplink(venue) -> None:
    """The uplink: a veth from the box into a namespace standing in for the city's network. Made before the web
    app starts, as on the box, where the uplink is up before the services."""
    _wan_down()
    _ip("netns", "add", WAN_NS)
    _ip("-n", venue.box_ns, "link", "add", UPLINK, "type", "veth", "peer", "name", "eth0", "netns", WAN_NS)
    _ip("-n", venue.box_ns, "addr", "add", f"{UPLINK_IP}/24", "dev", UPLINK)
    _ip("-n", venue.box_ns, "link", "set", UPLINK, "up")
    _ip("-n", WAN_NS, "addr", "add", f"{SCRAPER_IP}/24", "dev", "eth0")
    _ip("-n", WAN_NS, "link", "set", "eth0", "up")
    _ip("-n", WAN_NS, "link", "set", "lo", "up")


@pytest.fixture(scope="module")
def box(venue_factory):
    try:
        yield venue_factory("sbm", N_CLIENTS, members=MEMBERS, title="Überwachung", before_start=_uplink,
                            monitor=True, nft_table="sitzungsbox", uplink=UPLINK,
                            seed=lambda db, _sid, _cfg: auth.set_tech_password(db, TECH_PW))
    finally:
        _wan_down()


def snapshot(box) -> dict | None:
    """What the monitor last wrote (read straight from the database: cheap to poll)."""
    db = box.db()
    try:
        row = db.execute("SELECT value FROM monitor_state WHERE key = 'snapshot'").fetchone()
    finally:
        db.conn.close()
    return stored.decode(row[0]) if row else None


def poll(predicate, what: str, box, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        mon = box.procs["monitor"]
        if mon.poll() is not None:
            raise AssertionError(f"monitor ended (rc={mon.returncode}) while waiting for {what}: "
                                 f"{box.venue._log_tail('monitor')}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last snapshot: {json.dumps(snapshot(box))[:1500]}")
        try:
            mon.wait(0.1)  # a bounded wait instead of a sleep
        except subprocess.TimeoutExpired:
            pass


def scrape(box, host: str = UPLINK_IP) -> tuple[dict, dict]:
    """(JSON API, {(metric, labels): value}) as the city's monitoring gets them over the uplink."""
    r = subprocess.run(["ip", "netns", "exec", WAN_NS, sys.executable, "-c", SCRAPE,
                        f"http://{host}:{box.cfg.web_port}", TECH_PW],
                       capture_output=True, text=True, timeout=30, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    values = {(s.name, tuple(sorted(s.labels.items()))): s.value
              for f in text_string_to_metric_families(out["metrics"]) for s in f.samples}
    return out["api"], values


def wlan0(snap: dict | None) -> dict:
    return ((snap or {}).get("network", {}).get("interfaces") or {}).get("wlan0") or {}


@pytest.mark.net
def test_monitor_runs_unprivileged_in_the_box(box):
    pid = box.procs["monitor"].pid
    poll(lambda: snapshot(box), "the monitor's first sample", box)
    status = Path(f"/proc/{pid}/status").read_text()
    uids = re.search(r"^Uid:\s+(\d+)\s+(\d+)\s+(\d+)", status, re.M).groups()
    assert "0" not in uids
    assert re.search(r"^CapEff:\s+0+$", status, re.M) and re.search(r"^CapBnd:\s+0+$", status, re.M)
    box_ns = Path(f"/run/netns/{box.venue.box_ns}").stat()
    assert (os.stat(f"/proc/{pid}/ns/net").st_ino, os.stat(f"/proc/{pid}/ns/net").st_dev) == (box_ns.st_ino,
                                                                                          box_ns.st_dev)


@pytest.mark.net
def test_pool_use_and_admitted_vs_captured_match_what_the_clients_did(box):
    v, cfg = box.venue, box.cfg
    for i in v.indices:
        v.dhcp(i)
    db = box.db()
    try:
        anna = next(m for m in service.members(db, box.session_id) if m.name == "Anna Schmidt")
    finally:
        db.conn.close()
    # Client 1 joins with Anna's card and opens the portal: admitted. Client 2 joins with the guest key but
    # never taps "Weiter", client 3 is unknown: both stay captured.
    box.fake.connect(v.client_mac(1), anna.keyid)
    box.fake.connect(v.client_mac(2), "guest")
    box.wait_station(v.client_mac(1), anna.keyid)
    assert "Anna Schmidt" in v.http(1, cfg.portal_url).text
    assert v.http(2, "http://captive.apple.com/hotspot-detect.html").status == 302

    # What dnsmasq itself recorded: one lease per client, all in the pool.
    handed_out = leases_mod.active_leases(leases_mod.parse_leases(cfg.leases_file.read_text()), time.time(),
                                          cfg.dhcp_start, cfg.dhcp_end)
    assert {lease.mac for lease in handed_out} == {v.client_mac(i) for i in v.indices}
    n = len(handed_out)

    def settled():
        net = (snapshot(box) or {}).get("network", {})
        return net.get("leases_active") == n and net.get("admitted") == 1 and net.get("captured") == n - 1

    poll(settled, "pool and admission figures", box)
    api, metrics = scrape(box)
    net = api["snapshot"]["network"]
    assert (net["leases_active"], net["pool_size"]) == (n, leases_mod.pool_size(cfg.dhcp_start, cfg.dhcp_end))
    assert (net["admitted"], net["captured"]) == (1, n - 1)
    assert net["uplink"] == {"interface": UPLINK, "state": "up"}
    assert metrics[("sitzungsbox_dhcp_leases", ())] == n
    assert metrics[("sitzungsbox_clients_admitted", ())] == 1
    assert metrics[("sitzungsbox_clients_captured", ())] == n - 1
    assert metrics[("sitzungsbox_uplink_up", (("interface", UPLINK),))] == 1
    # The radio's two stations as clients: Anna named (admitted), the guest device without a name yet.
    by_mac = {c["mac"]: c for c in api["clients"]}
    assert set(by_mac) == {v.client_mac(1), v.client_mac(2)}
    assert by_mac[v.client_mac(1)]["name"] == "Anna Schmidt" and by_mac[v.client_mac(1)]["ip"] == v.client_ip(1)
    assert by_mac[v.client_mac(2)]["name"] is None and by_mac[v.client_mac(2)]["admitted"] is False


@pytest.mark.net
def test_bridge_counters_grow_by_at_least_the_bytes_the_clients_moved(box):
    v, cfg = box.venue, box.cfg
    if v.lease(1) is None:
        for i in v.indices:
            v.dhcp(i)
    api, _ = scrape(box)
    base = api["snapshot"]["network"]["interfaces"]["wlan0"]
    # Client 2 (captured, ICMP to the box is allowed) pings with a known payload: the box receives and sends
    # PING_COUNT x PING_SIZE bytes of payload at least. Client 1 (admitted) downloads pages from the box.
    r = v.client_exec(2, ["busybox", "ping", "-A", "-q", "-c", str(PING_COUNT), "-s", str(PING_SIZE), "-W", "2",
                          cfg.address], timeout=30)
    assert f"{PING_COUNT} packets received" in r.stdout, r
    downloaded = 0
    for _ in range(5):
        r = v.client_exec(1, ["curl", "-sS", "--noproxy", "*", "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
                              "--max-time", "5", f"http://{cfg.address}/portal"], timeout=10)
        code, size = r.stdout.split()
        assert code == "200", r
        downloaded += int(size)
    assert downloaded > 0
    want_rx = base["rx_bytes"] + PING_COUNT * PING_SIZE
    want_tx = base["tx_bytes"] + PING_COUNT * PING_SIZE + downloaded

    poll(lambda: wlan0(snapshot(box)).get("rx_bytes", 0) >= want_rx and wlan0(snapshot(box)).get("tx_bytes", 0)
         >= want_tx, "the bridge counters to grow", box)
    api, metrics = scrape(box)
    now = api["snapshot"]["network"]["interfaces"]["wlan0"]
    assert now["rx_bytes"] >= want_rx and now["tx_bytes"] >= want_tx
    assert metrics[("sitzungsbox_interface_receive_bytes_total", (("interface", "wlan0"),))] >= want_rx
    assert metrics[("sitzungsbox_interface_transmit_bytes_total", (("interface", "wlan0"),))] >= want_tx
    assert UPLINK in api["snapshot"]["network"]["interfaces"]  # every interface of the box namespace


@pytest.mark.net
def test_uplink_address_reaches_the_app_but_foreign_names_stay_captive(box):
    port = box.cfg.web_port

    def get(host_header: str) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", WAN_NS, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                               "--noproxy", "*", "--max-time", "5", "-H", f"Host: {host_header}",
                               f"http://{UPLINK_IP}:{port}/metrics"], capture_output=True, text=True, timeout=10)

    assert get(f"{UPLINK_IP}:{port}").stdout == "200"
    assert get("example.org").stdout == "302"
    # The session network still gets no metrics, even by the box's own address.
    assert box.venue.http(3, f"http://{box.cfg.address}/metrics").status in (302, 403)


# --- Flask: the box host rule ---------------------------------------------------------------------------


def _real_addresses() -> set[str]:
    out = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, timeout=5).stdout
    return set(re.findall(r"\binet (\d+\.\d+\.\d+\.\d+)/", out))


def test_local_addresses_are_every_address_of_the_box(monkeypatch):
    need_binary("ip")
    monkeypatch.setattr(portal, "_local_cache", None)
    assert portal.local_addresses() == frozenset(_real_addresses())
    assert "127.0.0.1" in portal.local_addresses()
    # Cached: a new address shows up only after the refresh interval.
    calls = []
    monkeypatch.setattr(netinfo, "all_ipv4_addresses", lambda: calls.append(1) or {"192.0.2.99"})
    t0 = time.monotonic()
    assert "192.0.2.99" not in portal.local_addresses(t0)
    assert calls == []
    assert "192.0.2.99" in portal.local_addresses(t0 + portal.LOCAL_ADDRESSES_TTL_S + 1)
    assert calls == [1]  # one enumeration of all interfaces, not one per interface


def test_probe_names_never_list_the_interfaces(cfg, monkeypatch):
    # The hot path (every captive probe) must not enumerate interfaces: names are never box addresses.
    monkeypatch.setattr(portal, "local_addresses", lambda now=None: pytest.fail("interfaces listed"))
    assert not portal.is_box_host(cfg, "connectivitycheck.gstatic.com")
    assert portal.is_box_host(cfg, cfg.address)


def test_request_by_another_local_address_is_not_redirected(cfg, db, monkeypatch):
    from appliance.web.app import create_app

    monkeypatch.setattr(portal, "_local_cache", None)
    others = sorted(a for a in portal.local_addresses() if not ipaddress.ip_address(a).is_loopback)
    if not others:  # a machine with loopback only: an uplink address as the box would have one
        monkeypatch.setattr(portal, "_local_cache", (time.monotonic(), frozenset({"127.0.0.1", "192.0.2.2"})))
        others = ["192.0.2.2"]
    uplink = others[0]
    client = create_app(cfg, testing=True).test_client()
    # The city's scraper on the uplink side (not in the session network, no station, not admitted).
    scraper = {"REMOTE_ADDR": "198.51.100.7"}
    r = client.get("/metrics", base_url=f"http://{uplink}:{cfg.web_port}", environ_overrides=scraper)
    assert r.status_code == 200 and r.text.startswith("# HELP sitzungsbox_monitor_up")
    r = client.get("/metrics", base_url="http://example.org", environ_overrides=scraper)
    assert r.status_code == 302 and r.headers["Location"] == cfg.portal_url
    # A captive phone: a foreign name is still sent to the portal; by the box's address it gets the app,
    # which itself sends it to the portal and never serves it metrics.
    phone = {"REMOTE_ADDR": "10.77.1.5"}
    r = client.get("/generate_204", base_url="http://connectivitycheck.gstatic.com", environ_overrides=phone)
    assert r.status_code == 302 and r.headers["Location"] == cfg.portal_url
    assert client.get("/metrics", base_url=f"http://{uplink}", environ_overrides=phone).status_code == 403
