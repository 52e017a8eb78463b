"""captive.neighbours: one neighbour entry by netlink — parsing on replies recorded from a real kernel (6.18), and
in a network namespace of our own the same answers as /proc/net/arp, and the portal's spoofing check on top."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from appliance.captive import neighbours as nb
from tests.conftest import need_binary, need_root

ROOT = Path(__file__).resolve().parent.parent

# `ip neigh` entries on a bridge (ifindex 2): 10.88.1.2 reachable at 02:aa:00:00:00:fa; 10.88.9.9 none (ENOENT);
# 10.88.5.5 incomplete (nud incomplete: no MAC yet). Recorded with nb.request(2, ip, 7) on Linux 6.18.
REACHABLE = bytes.fromhex("4c0000001c00000007000000b91f0000020000000200000002000001080001000a5801020a00020002aa000000"
                          "fa00000800040000000000140003004e0000004e0000004e00000002000000")
MISSING = bytes.fromhex("380000000200000007000000b91f0000feffffff240000001e0001000700000000000000020000000200000000"
                        "000000080001000a580909")
INCOMPLETE = bytes.fromhex("400000001c00000007000000b91f0000020000000200000001000001080001000a5805050800040000000000"
                           "14000300aa1700003a0000003a00000001000000")


def test_request_asks_for_one_address_on_one_interface():
    msg = nb.request(2, "10.88.1.2", 7)
    length, kind, flags, seq, _pid = nb._HDR.unpack_from(msg)
    assert (length, kind, flags, seq) == (len(msg), nb.RTM_GETNEIGH, nb.NLM_F_REQUEST, 7)
    family, _p1, _p2, ifindex, _state, _f, _t = nb._NDMSG.unpack_from(msg, nb._HDR.size)
    assert (family, ifindex) == (socket.AF_INET, 2)
    assert msg[-8:] == bytes([8, 0, nb.NDA_DST, 0]) + socket.inet_aton("10.88.1.2")


def test_recorded_replies():
    assert nb.parse_reply(REACHABLE) == "02:aa:00:00:00:fa"
    assert nb.parse_reply(MISSING) is None  # ENOENT: no entry, as a line missing from /proc/net/arp
    assert nb.parse_reply(INCOMPLETE) is None  # not NUD_VALID: /proc/net/arp shows it without ATF_COM


def test_a_failed_entry_and_errors_other_than_no_entry():
    failed = bytearray(REACHABLE)
    failed[nb._HDR.size + 8:nb._HDR.size + 10] = (0x20).to_bytes(2, sys.byteorder)  # NUD_FAILED, MAC still there
    assert nb.parse_reply(bytes(failed)) is None
    einval = bytearray(MISSING)
    einval[16:20] = (-22).to_bytes(4, sys.byteorder, signed=True)
    with pytest.raises(nb.Unsupported):
        nb.parse_reply(bytes(einval))
    with pytest.raises(nb.Unsupported):
        nb.parse_reply(REACHABLE[:10])


def test_unknown_interface_is_unsupported_not_none():
    with pytest.raises(nb.Unsupported):
        nb.lookup("sbnb-none0", "10.88.1.2")


PROBE = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from appliance.captive import neighbours as nb, identify
    from appliance.config import Config
    from appliance.monitor.leases import arp_line_mac
    bridge, leases = sys.argv[1], Path(sys.argv[2])
    arp = Path("/proc/net/arp").read_text()
    ips = ["10.88.1.%d" % i for i in range(2, 42)] + ["10.88.9.9", "10.88.5.5"]
    out = {"netlink": {ip: nb.lookup(bridge, ip) for ip in ips}, "proc": {ip: arp_line_mac(arp, ip) for ip in ips}}
    cfg = Config(leases_file=leases, interface=bridge)
    def whole_table(*_a):
        raise AssertionError("read /proc/net/arp although netlink could answer")
    identify.leases_mod.arp_line_mac = whole_table
    out["lease_holder"] = identify.mac_for_ip(cfg, "10.88.1.2")   # neighbour names the lease's device
    out["spoofed"] = identify.mac_for_ip(cfg, "10.88.1.3")        # neighbour names another device
    print(json.dumps(out))
""")


def test_in_a_namespace_netlink_answers_as_proc_net_arp_and_catches_a_spoofer(tmp_path):
    need_root()
    need_binary("ip")
    ns, bridge = f"sbnb-{uuid.uuid4().hex[:6]}", "sbnbbr0"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        cmds = [f"link add {bridge} type bridge", f"link set {bridge} up", f"addr add 10.88.0.1/16 dev {bridge}",
                f"neigh add 10.88.5.5 dev {bridge} nud incomplete"]
        cmds += [f"neigh add 10.88.1.{i} lladdr 02:aa:00:00:01:{i:02x} dev {bridge} nud reachable"
                 for i in range(2, 42)]
        subprocess.run(["ip", "-n", ns, "-batch", "-"], input="\n".join(cmds) + "\n", text=True, check=True)
        leases = tmp_path / "leases"
        # 10.88.1.2's lease names the device the kernel talks to; 10.88.1.3's names another one (a spoofer took it).
        leases.write_text("4102444800 02:aa:00:00:01:02 10.88.1.2 * *\n4102444800 02:bb:00:00:00:03 10.88.1.3 * *\n")
        run = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", PROBE, bridge, str(leases)],
                             capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert run.returncode == 0, run.stderr
        out = json.loads(run.stdout)
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
    assert out["netlink"] == out["proc"]
    assert out["netlink"]["10.88.1.7"] == "02:aa:00:00:01:07"
    assert out["netlink"]["10.88.9.9"] is None and out["netlink"]["10.88.5.5"] is None
    assert out["lease_holder"] == "02:aa:00:00:01:02"
    assert out["spoofed"] is None
