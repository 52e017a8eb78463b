"""dnsmasq lease file and /proc/net/arp parsers, on text in the real formats."""

from __future__ import annotations

from appliance.monitor import leases

# dnsmasq 2.90 lease file: v4 leases, then (with DHCPv6 enabled) the server DUID line and v6 leases
# whose second field is the IAID, not a MAC. Expiry 0 = infinite lease. Uppercase MAC as some tools write.
LEASES = """\
1764010800 02:5b:00:00:00:01 10.77.0.10 anna-iphone 01:02:5b:00:00:00:01
0 02:5B:00:00:00:02 10.77.0.11 * *
1764010900 08:00:27:61:3c:ee 10.77.0.12 * *
1764010000 08:00:27:aa:bb:cc 10.77.0.13 old-laptop *
duid 00:01:00:01:2f:1c:6b:4e:08:00:27:61:3c:ee
1764010800 1234567 fd00::2 android-1 00:03:00:01:08:00:27:61:3c:ee

garbage line
1764010800 06-aa:bb:cc:dd:ee:ff 10.77.0.14 token-ring *
"""

# /proc/net/arp: header, a complete entry, an incomplete one (flags 0x0, zero MAC), a second interface.
ARP = """\
IP address       HW type     Flags       HW address            Mask     Device
10.77.0.20       0x1         0x2         02:5B:00:00:00:20     *        wlan0
10.77.0.21       0x1         0x0         00:00:00:00:00:00     *        wlan0
192.0.2.1        0x1         0x2         02:fc:00:00:00:05     *        eth0
"""


def test_parse_leases_skips_v6_duid_and_junk():
    parsed = leases.parse_leases(LEASES)
    assert [lease.ip for lease in parsed] == ["10.77.0.10", "10.77.0.11", "10.77.0.12", "10.77.0.13"]
    first, infinite = parsed[0], parsed[1]
    assert first == leases.Lease(1764010800, "02:5b:00:00:00:01", "10.77.0.10", "anna-iphone",
                                 "01:02:5b:00:00:00:01")
    assert infinite.mac == "02:5b:00:00:00:02"  # lowercased
    assert infinite.hostname is None and infinite.client_id is None
    assert infinite.expiry == 0 and not infinite.expired(now=4_000_000_000)
    assert parsed[3].expired(now=1764010001)


def test_lease_for_ip():
    parsed = leases.parse_leases(LEASES)
    assert leases.lease_for_ip(parsed, "10.77.0.12").mac == "08:00:27:61:3c:ee"
    assert leases.lease_for_ip(parsed, "10.77.0.99") is None
    # An expired lease is not trusted when the time is given.
    assert leases.lease_for_ip(parsed, "10.77.0.13", now=1764010500) is None
    assert leases.lease_for_ip(parsed, "10.77.0.13", now=1764009000).mac == "08:00:27:aa:bb:cc"


def test_lease_for_ip_prefers_newest_and_infinite():
    text = "100 02:00:00:00:00:01 10.77.0.30 * *\n200 02:00:00:00:00:02 10.77.0.30 * *\n"
    assert leases.lease_for_ip(leases.parse_leases(text), "10.77.0.30").mac == "02:00:00:00:00:02"
    text += "0 02:00:00:00:00:03 10.77.0.30 * *\n"
    assert leases.lease_for_ip(leases.parse_leases(text), "10.77.0.30").mac == "02:00:00:00:00:03"


def test_parse_proc_arp_skips_incomplete():
    entries = leases.parse_proc_arp(ARP)
    assert entries == [
        leases.ArpEntry("10.77.0.20", "02:5b:00:00:00:20", "wlan0"),
        leases.ArpEntry("192.0.2.1", "02:fc:00:00:00:05", "eth0"),
    ]
    assert leases.arp_mac_for_ip(entries, "10.77.0.20") == "02:5b:00:00:00:20"
    assert leases.arp_mac_for_ip(entries, "10.77.0.21") is None


def test_empty_inputs():
    assert leases.parse_leases("") == []
    assert leases.parse_proc_arp("") == []
