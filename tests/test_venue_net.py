"""The virtual venue library on its own (tests/venue/net.py) with the product's dnsmasq and nftables files:
namespaces, leases, hijacking DNS, gating, clean teardown."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from appliance.config import Config, from_mapping
from appliance.helper.client import HelperClient
from appliance.netconf.dnsmasq import render_dnsmasq_conf
from appliance.netconf.nftables import render_ruleset
from tests.conftest import need_binary, need_root
from tests.venue.net import (
    UDHCPC_HOOK,
    Venue,
    VenueError,
    client_mac,
    config_toml,
    parse_curl_include,
    parse_lease_record,
)

pytestmark = pytest.mark.net


def test_client_mac_is_deterministic_unicast() -> None:
    assert client_mac(1) == "02:00:00:00:00:01"
    assert client_mac(300) == "02:00:00:00:01:2c"


def test_parse_lease_record() -> None:
    text = ("ip=10.77.0.23\nmask=23\nrouter=10.77.0.1\ndns=10.77.0.1 10.77.0.2\nlease=3600\n"
            "opt114=687474703a2f2f31302e37372e302e312f706f7274616c\nserverid=10.77.0.1\nt=1795551656.35\n")
    lease = parse_lease_record("sbxc1", text)
    assert (lease.ip, lease.mask, lease.router, lease.dns) == ("10.77.0.23", "23", "10.77.0.1",
                                                               ("10.77.0.1", "10.77.0.2"))
    assert lease.captive_url == "http://10.77.0.1/portal"
    assert lease.lease_seconds == 3600 and lease.at == pytest.approx(1795551656.35)


def test_parse_curl_include_skips_continue() -> None:
    raw = (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 302 FOUND\r\nLocation: http://10.77.0.1/portal\r\n"
           b"Content-Length: 3\r\n\r\nabc")
    assert parse_curl_include(raw) == (302, {"location": "http://10.77.0.1/portal", "content-length": "3"}, b"abc")
    assert parse_curl_include(b"HTTP/1.0 204 No Content\r\n\r\n") == (204, {}, b"")
    assert parse_curl_include(b"garbage")[0] == 0


def test_config_toml_roundtrip(venue_cfg: Config) -> None:
    import tomllib

    assert from_mapping(tomllib.loads(config_toml(venue_cfg))) == venue_cfg


def test_bad_prefix_is_refused(tmp_path: Path) -> None:
    with pytest.raises(VenueError):
        Venue(tmp_path, 1, prefix="much-too-long")


def _host_state() -> tuple[str, str]:
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    return links, hashlib.sha256(Path("/etc/resolv.conf").read_bytes()).hexdigest()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def _assert_gone(v: Venue, pids: list[int]) -> None:
    assert not [ns for ns in v.namespaces() if Path("/run/netns", ns).exists()]
    assert not [ns for ns in v.namespaces() if Path("/etc/netns", ns).exists()]
    assert not [p for p in pids if _alive(p)]


@pytest.fixture
def venue_cfg(tmp_path: Path) -> Config:
    return Config(state_dir=tmp_path / "state", run_dir=tmp_path / "run", leases_file=tmp_path / "state" / "leases",
                  helper_socket=tmp_path / "run" / "helper.sock", web_port=8080).validate()


def test_venue_smoke(tmp_path: Path, venue_cfg: Config) -> None:
    need_root()
    need_binary("ip", "dnsmasq", "nft", "busybox", "curl", "setpriv")
    links_before, resolv_before = _host_state()
    v = Venue(tmp_path / "venue", 3, prefix=f"sbxv{os.getpid() % 1000}", cfg=venue_cfg)
    pids: list[int] = []
    cleanup: list[Path] = []
    try:
        with v:
            # The product's own files, as `sitzungsbox netconf` renders them (the bridge is named like its wlan0).
            v.load_nft(render_ruleset(venue_cfg))
            v.start_dnsmasq(render_dnsmasq_conf(venue_cfg))
            leases = [v.dhcp(i) for i in v.indices]
            net = venue_cfg.network
            lo, hi = IPv4Address(venue_cfg.dhcp_start), IPv4Address(venue_cfg.dhcp_end)
            assert len({lease.ip for lease in leases}) == 3
            for i, lease in zip(v.indices, leases, strict=True):
                assert lo <= IPv4Address(lease.ip) <= hi, lease
                assert lease.router == venue_cfg.address and lease.dns == (venue_cfg.address,)
                assert v.client_ip(i) == lease.ip
                # The address sits on the client's eth0 with its deterministic MAC.
                addr = v.client_exec(i, ["ip", "-o", "addr", "show", "dev", "eth0"]).stdout
                assert f"{lease.ip}/{net.prefixlen}" in addr
                link = v.client_exec(i, ["ip", "-o", "link", "show", "dev", "eth0"]).stdout
                assert v.client_mac(i) in link
                # dnsmasq recorded the lease against that MAC.
                assert f"{v.client_mac(i)} {lease.ip}" in v.dnsmasq_lease_files["dnsmasq"].read_text()
                # Every name resolves to the box, via the namespace's own resolv.conf.
                assert v.resolv_conf(i).read_text().strip() == f"nameserver {venue_cfg.address}"
                got = v.client_exec(i, ["getent", "hosts", "connectivitycheck.gstatic.com"])
                assert got.stdout.split()[0] == venue_cfg.address
                ns = v.client_exec(i, ["busybox", "nslookup", "-type=a", "captive.apple.com"]).stdout
                assert f"Address: {venue_cfg.address}" in ns.split("Name:", 1)[1]

            # A web server as `nobody` in the box behind the nft redirect (port 80 -> web_port).
            # pytest's tmp dirs are 0700; nobody needs a readable document root.
            www = Path(tempfile.mkdtemp(prefix="sbxv-www-"))
            cleanup.append(www)
            www.chmod(0o755)
            (www / "hotspot-detect.html").write_text("Venue-Portal\n")
            srv = v.run_in_box(["busybox", "httpd", "-f", "-p", str(venue_cfg.web_port), "-h", str(www)],
                               user="nobody", name="httpd")
            v.wait_listening(venue_cfg.web_port, timeout=10, proc=srv)
            assert Path(f"/proc/{srv.pid}/status").read_text().split("Uid:")[1].split()[0] == "65534"
            status, headers, body = v.http(1, "http://captive.apple.com/hotspot-detect.html", timeout=3)
            assert (status, body) == (200, b"Venue-Portal\n")
            assert v.nft_set() == set()

            # The web port itself is only for admitted devices (the others reach it through port 80 alone).
            direct = f"http://{venue_cfg.address}:{venue_cfg.web_port}/hotspot-detect.html"
            assert v.http(3, direct, timeout=1).status == 0
            # The real helper inside the box admits client 3: now it reaches the web port directly, client 2
            # still does not; until the helper revokes it again.
            v.start_helper()
            HelperClient(venue_cfg.helper_socket).admit(v.client_mac(3), v.client_ip(3))
            assert v.nft_set() == {(v.client_mac(3), v.client_ip(3))}
            assert v.http(3, direct, timeout=3).status == 200
            assert v.http(2, direct, timeout=1).status == 0
            assert v.http(2, f"http://{venue_cfg.address}/hotspot-detect.html", timeout=3).status == 200
            HelperClient(venue_cfg.helper_socket).revoke(v.client_mac(3), v.client_ip(3))
            assert v.nft_set() == set()
            assert v.http(3, direct, timeout=1).status == 0
            assert v.http(3, f"http://{venue_cfg.address}/hotspot-detect.html", timeout=3).status == 200

            # Unplugging a client cuts it off; the others keep working.
            v.link_down(1)
            assert v.http(1, "http://captive.apple.com/hotspot-detect.html", timeout=1).status == 0
            assert v.http(2, "http://captive.apple.com/hotspot-detect.html", timeout=3).status == 200

            assert _host_state() == (links_before, resolv_before)
            pids = [pid for _, pid, _ in v.processes()]
            assert all(running for _, _, running in v.processes())
        _assert_gone(v, pids)
    finally:
        v.down()
        for d in cleanup:
            shutil.rmtree(d, ignore_errors=True)
    assert _host_state() == (links_before, resolv_before)


def test_partial_failure_cleans_up(tmp_path: Path, venue_cfg: Config) -> None:
    need_root()
    need_binary("ip", "dnsmasq")
    v = Venue(tmp_path / "venue", 2, prefix=f"sbxw{os.getpid() % 1000}", cfg=venue_cfg)
    with pytest.raises(VenueError, match="dnsmasq"):
        with v:
            v.start_dnsmasq("interface=wlan0\nbogus-option=1\n")
    _assert_gone(v, [])
    v.down()  # idempotent


def test_hook_refuses_outside_a_namespace(tmp_path: Path) -> None:
    need_root()
    need_binary("ip")
    hook = tmp_path / "hook.sh"
    hook.write_text(UDHCPC_HOOK)
    hook.chmod(0o755)
    res = subprocess.run([str(hook), "bound"], env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "ip": "10.77.0.9",
                                                    "interface": "sbx-none", "dns": "10.77.0.1",
                                                    "SBX_LEASE_DIR": str(tmp_path)},
                         capture_output=True, text=True, timeout=10)
    assert res.returncode == 1 and "Namespace" in res.stderr
    # Claiming a namespace one is not in does not help either.
    ns = f"sbxw{os.getpid() % 1000}x"
    subprocess.run(["ip", "netns", "add", ns], check=True, timeout=10)
    try:
        res = subprocess.run([str(hook), "bound"], env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "ip": "10.77.0.9",
                                                        "interface": "sbx-none", "SBX_NS": ns,
                                                        "SBX_LEASE_DIR": str(tmp_path)},
                             capture_output=True, text=True, timeout=10)
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False, timeout=10)
    assert res.returncode == 1
    assert list(tmp_path.iterdir()) == [hook]
    assert not Path("/etc/netns", ns).exists()
