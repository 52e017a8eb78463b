"""Pure parsers of the monitor on real recorded outputs (tests/fixtures/monitoring/README.md says where
each comes from) and on constructed brcmfmac-like output and counter resets."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from appliance.monitor import counters, hostapd, iw, leases, system
from appliance.radio.events import parse_sta

FIX = Path(__file__).parent / "fixtures" / "monitoring"


def read(name: str) -> str:
    return (FIX / name).read_text()


def test_station_dump_recorded_mac80211():
    stations = iw.parse_station_dump(read("iw-station-dump_netdata_station_dump.txt"))
    assert [s.mac for s in stations] == ["7e:0d:a5:a6:91:2b", "fa:50:db:c1:1c:18", "a7:2f:9e:d3:f0:34"]
    first, second, third = stations
    assert first.interface == "wlp1s0" and first.inactive_ms == 58264
    assert (first.rx_bytes, first.tx_bytes, first.tx_packets, first.tx_retries) == (89675, 6918, 30, 1)
    assert first.signal == -44  # `-44 [-51, -44] dBm`: the combined value, not a chain's
    assert first.tx_bitrate_mbps == 65.0 and first.rx_bitrate_mbps == 130.0  # `65.0 MBit/s MCS 7`
    assert first.connected_s == 796 and first.authorized is True
    assert second.rx_bitrate_mbps == 1.0  # legacy rate, no MCS
    # the third block is indented with spaces, has `(unknown)` as tx bitrate and an HE rate
    assert third.signal == -87 and third.tx_bitrate_mbps is None and third.rx_bitrate_mbps == 17.2
    assert third.tx_retries == 0 and third.connected_s == 2215


def test_station_dump_brcmfmac_has_no_retries_and_signal_zero_is_no_reading():
    a, b = iw.parse_station_dump(read("iw-station-dump_brcmfmac.txt"))
    assert a.tx_retries is None  # "n/a", never a fake 0
    assert a.signal is None  # `signal: 0 dBm`
    assert a.tx_bitrate_mbps == 72.2  # a rate without MCS
    assert b.signal == -79 and b.tx_retries is None


def test_station_dump_flags_and_values_iw_could_not_read():
    # constructed: iw's shapes for a station mid-handshake and for values the driver did not give
    text = ("Station 02:00:00:00:00:aa (on wlan1)\n\tinactive time:\t4 ms\n\tsignal:  \t(unknown)\n"
            "\ttx bitrate:\t(unknown)\n\trx bitrate:\t6.0 MBit/s\n\tauthorized:\tno\n"
            "\tconnected time:\t0 seconds\n"
            "Station 02:00:00:00:00:bb (on wlan1)\n\trx bytes:\t12\n\tsignal avg:\t0 dBm\n")
    a, b = iw.parse_station_dump(text)
    assert (a.mac, a.interface, a.inactive_ms, a.connected_s) == ("02:00:00:00:00:aa", "wlan1", 4, 0)
    assert a.signal is None and a.tx_bitrate_mbps is None and a.rx_bitrate_mbps == 6.0
    assert a.authorized is False
    assert b.rx_bytes == 12 and b.signal is None and b.authorized is None  # no flag line: not known
    assert b.tx_retries is None and b.tx_packets is None
    assert iw.parse_station_dump("") == [] and iw.parse_station_dump("garbage\n\trx bytes: 5\n") == []


def _reference_station_dump(text: str) -> list[tuple]:
    """The same fields read the slow, obvious way (line by line, key and value split at the first colon), to hold
    the one-findall parse against."""
    ints = {"inactive time": "inactive_ms", "rx bytes": "rx_bytes", "tx bytes": "tx_bytes",
            "tx packets": "tx_packets", "tx retries": "tx_retries", "signal": "signal",
            "connected time": "connected_s"}
    out: list[dict] = []
    for line in text.splitlines():
        if line.startswith("Station "):
            out.append({"mac": line.split()[1].lower(), "interface": line.split("(on ")[1].rstrip(")")})
            continue
        key, _, value = line.strip().partition(":")
        words = value.split()
        if not out or not words:
            continue
        if key in ints:
            try:
                out[-1][ints[key]] = int(words[0]) or (None if key == "signal" else 0)
            except ValueError:
                pass
        elif key in ("tx bitrate", "rx bitrate") and len(words) > 1 and words[1] == "MBit/s":
            out[-1][key.replace(" ", "_") + "_mbps"] = float(words[0])
        elif key == "authorized":
            out[-1]["authorized"] = words[0] == "yes"
    return [tuple(d.get(f, None) for f in iw.IwStation.__slots__) for d in out]


def test_station_dump_parse_agrees_with_a_line_by_line_reading():
    from appliance.monitor.replay import IwReplay

    replay = IwReplay("wlan0")
    for i in range(40):
        replay.add(f"02:5b:00:00:00:{i:02x}", -40 - i, 5.0, brcmfmac=i % 7 == 0, authorized=i % 5 != 0)
    replay(["iw", "dev", "wlan0", "station", "dump"])
    # every field present, one a word where iw prints a number: the field-by-field way, that field unknown
    word = read("iw-station-dump_netdata_station_dump.txt").split("Station fa:")[0].replace(
        "tx retries:\t1", "tx retries:\tn")
    texts = [read("iw-station-dump_netdata_station_dump.txt"), read("iw-station-dump_brcmfmac.txt"),
             replay(["iw", "dev", "wlan0", "station", "dump"]), word]
    for text in texts:
        fast = [tuple(getattr(s, f) for f in iw.IwStation.__slots__) for s in iw.parse_station_dump(text)]
        assert fast == _reference_station_dump(text)
        assert fast and all(len(set(row) - {None}) > 8 for row in fast)  # the fields were found, not all None
    (worded,) = iw.parse_station_dump(word)
    assert worded.tx_retries is None and worded.tx_packets == 30 and worded.signal == -44


def test_replayed_station_dump_has_the_recorded_shape():
    """IwReplay (tests, demo, bench) prints what the recorded dumps print: same lines, so the same parse."""
    from appliance.monitor.replay import IwReplay

    rec_mac80211 = iw.parse_station_dump(read("iw-station-dump_netdata_station_dump.txt"))[0]
    rec_brcm = iw.parse_station_dump(read("iw-station-dump_brcmfmac.txt"))[0]
    replay = IwReplay("wlan0")
    replay.add("02:5b:00:00:00:01", -44)
    replay.add("02:5b:00:00:00:02", 0, brcmfmac=True)
    text = replay(["iw", "dev", "wlan0", "station", "dump"])
    mac80211, brcm = iw.parse_station_dump(text)

    def known(sta):
        return {name for name in iw.IwStation.__slots__ if getattr(sta, name) is not None}

    assert known(mac80211) == known(rec_mac80211)
    assert known(brcm) == known(rec_brcm)
    n_lines = len(read("iw-station-dump_netdata_station_dump.txt").split("Station fa:")[0].splitlines())
    assert len(text.split("Station 02:5b:00:00:00:02")[0].splitlines()) == n_lines
    # the replay renders its blocks printf-style (quicker); the text is the templates' own
    from appliance.monitor import replay as replay_mod

    for sta in replay.stations.values():
        template = replay_mod._BRCMFMAC if sta.brcmfmac else replay_mod._MAC80211
        block = template.format(mac=sta.mac, ifname="wlan0", rx_bytes=sta.rx_bytes, rx_packets=sta.rx_packets,
                                tx_bytes=sta.tx_bytes, tx_packets=sta.tx_packets, tx_retries=sta.tx_retries,
                                signal=sta.signal, authorized="yes")
        assert block in text


def test_survey_busy_percent_from_deltas_and_after_reset():
    s1 = iw.in_use(iw.parse_survey_dump(read("iw-survey-dump_1.txt")))
    s2 = iw.in_use(iw.parse_survey_dump(read("iw-survey-dump_2.txt")))
    reset = iw.in_use(iw.parse_survey_dump(read("iw-survey-dump_reset.txt")))
    assert s1.frequency == 2412 and s1.noise == -92 and s1.active_ms == 1268462
    assert len(iw.parse_survey_dump(read("iw-survey-dump_1.txt"))) == 3  # other channels are not "in use"
    assert iw.busy_percent(None, s1) == round(100 * 374235 / 1268462, 1)  # first dump: since the start
    assert iw.busy_percent(s1, s2) == 80.0  # Δbusy 800 / Δactive 1000
    assert iw.busy_percent(s2, reset) == 25.0  # counters went down: counted from 0, never negative
    assert iw.busy_percent(s2, s2) is None  # no time passed: no claim


def test_scan_dump_recorded_and_neighbours_on_our_channel():
    bsses = iw.parse_scan_dump(read("iw-scan_jc_centos-7.7_iw-scan2.out"))
    assert len(bsses) == 1
    b = bsses[0]
    assert b.bssid == "xx:xx:xx:xx:3e:41" and b.frequency == 2412 and b.channel == 1
    assert b.signal == -54.0 and b.ssid == "Troubleshooting" and b.last_seen_ms == 1410
    assert iw.neighbours_on_channel(bsses, 1) == [b]
    assert iw.neighbours_on_channel(bsses, 6) == []
    assert iw.neighbours_on_channel(bsses, 1, own={"xx:xx:xx:xx:3e:41"}) == []


def test_iw_dev_ssid_with_spaces_and_width():
    (info,) = iw.parse_iw_info(read("iw-dev_netdata_iw_dev_ap_ssid_with_spaces.txt"))
    assert info.interface == "wlp1s0" and info.ssid == "My AP 1"
    assert (info.channel, info.frequency, info.width_mhz, info.txpower_dbm) == (1, 2412, 20, 20.0)


def test_hostapd_status_recorded():
    st = hostapd.parse_status(read("hostapd_cli-status_wifi-presence.txt"))
    assert st.state == "ENABLED" and st.channel == 52 and st.frequency == 5260
    assert st.width_mhz == 40  # vht_oper_chwidth=0 with a secondary channel
    assert st.num_sta == 5 and st.bssid == "aa:bb:cc:ee:12:34"
    assert st.ssid == "\U0001f31d"  # printf-escaped UTF-8 decoded
    assert st.chan_util_pct == round(100 * 96 / 255, 1)


def test_hostapd_sta_recorded_counters():
    sta = parse_sta(read("hostapd_cli-sta_wifi-presence.txt"))
    c = hostapd.sta_counters(sta)
    assert sta.signal == -64 and c.rx_bytes == 13716568000 and c.tx_packets == 110847
    assert c.tx_bitrate_mbps == 324.0 and c.rx_bitrate_mbps == 6.0  # 100 kbit/s units


def test_hostapd_sta_signal_zero_is_none():
    sta = parse_sta("b8:27:eb:11:22:33\nflags=[AUTH][ASSOC][AUTHORIZED]\nsignal=0\nrx_rate_info=0\n")
    assert sta.signal is None and hostapd.sta_counters(sta).rx_bitrate_mbps is None


def test_leases_pool_use_recorded():
    parsed = leases.parse_leases(read("dnsmasq.leases_netdata"))
    assert len(parsed) == 12  # the v6 block after `duid` is skipped
    active = leases.active_leases(parsed, now=1560300000, start="192.168.0.1", end="192.168.0.254")
    assert sorted(lease.ip for lease in active) == [f"192.168.0.{i}" for i in range(1, 6)]
    assert leases.active_leases(parsed, now=1560300537) == []  # all expired
    # the pool filter apart (the monitor applies it once per lease-file change): same answer
    pooled = leases.in_pool(parsed, "192.168.0.1", "192.168.0.254")
    assert leases.active_leases(pooled, now=1560300000) == active
    assert leases.in_pool(parsed, None, None) == parsed
    from_3 = leases.in_pool(parsed, "192.168.0.3", None)
    assert from_3 and all(ipaddress.IPv4Address(lease.ip) >= ipaddress.IPv4Address("192.168.0.3") for lease in from_3)
    assert len(from_3) < len(parsed)
    infinite = leases.parse_leases(read("dnsmasq.leases_google-dnsmasq_exporter"))
    assert [lease.ip for lease in leases.active_leases(infinite, now=2e9)] == ["10.10.10.11"]  # expiry 0
    # until the next expiry the active leases stay as they are (the monitor filters again only then)
    first = leases.next_expiry(pooled, now=1560300000)
    assert 1560300000 < first == min(lease.expiry for lease in active)
    assert leases.active_leases(pooled, now=first - 1) == active
    assert len(leases.active_leases(pooled, now=first)) < len(active)
    assert leases.next_expiry(infinite, now=2e9) == float("inf")  # only an infinite lease is left
    assert leases.pool_size("10.77.0.10", "10.77.255.250") == 65521


def test_proc_and_sys_with_injected_roots():
    r = system.SystemReader(proc=FIX / "proc", sys=FIX / "sys", vcgencmd=None)
    assert r.cpu_percent() is None  # first reading: no interval
    cur = system.parse_proc_stat(read("proc/stat_2"))
    prev = system.parse_proc_stat(read("proc/stat"))
    assert system.cpu_percent(prev, cur) == 60.0  # Δtotal 200, Δidle 80
    assert r.loadavg() == (0.52, 0.41, 0.30)
    assert r.memory() == (3884428, 2912324)
    dev = r.net_dev()
    assert dev["wlan0"].rx_bytes == 5000000 and dev["wlan0"].tx_bytes == 90000000 and dev["eth0"].tx_packets == 800
    assert r.temperature() == 81.2
    thr = r.throttled()
    assert thr.raw == 0x50005 and thr.now == ("undervoltage", "throttled")
    assert thr.since_boot == ("undervoltage", "throttled") and thr.undervoltage_now
    assert r.operstate("eth0") == "up" and r.operstate("nope") is None
    assert {"dnsmasq", "hostapd"} <= r.processes()


def test_throttled_both_formats():
    assert system.parse_throttled("throttled=0x0").now == ()
    assert system.parse_throttled("throttled=0x80008").since_boot == ("soft_temp_limit",)
    sysfs = system.parse_throttled("80000")
    assert sysfs.since_boot == ("soft_temp_limit",) and sysfs.now == ()
    assert system.parse_throttled("garbage!") is None


def test_counter_resets():
    assert counters.delta(None, 5) is None
    assert counters.delta(10, 15) == 5
    assert counters.delta(1000, 20) == 20  # reconnect / driver reload: from 0
    assert counters.rate(100, 300, 2.0) == 100.0
    assert counters.ratio_percent(5, 50) == 10.0
    assert counters.ratio_percent(3, 0) is None  # nothing sent: no claim


def test_station_rates_agree_with_the_single_counter_functions():
    cases = [((0.0, 1000, 5000, 200, 10), (3000, 5000, 300, 30), 2.0),  # traffic, no tx bytes
             ((0.0, 1000, 5000, 200, 10), (20, 40, 30, 1), 1.0),  # every counter reset (reconnect, reload)
             ((0.0, None, 5000, 200, None), (3000, None, 200, 4), 1.0),  # brcmfmac: no retries; nothing sent
             ((0.0, 1000, 5000, 200, 10), (3000, 6000, 300, 30), 0.0)]  # no time passed: no claim
    for prev, (rx, tx, packets, retries), dt in cases:
        _, p_rx, p_tx, p_packets, p_retries = prev
        rx_bps, tx_bps = counters.rate(p_rx, rx, dt), counters.rate(p_tx, tx, dt)
        expected = (round(rx_bps) if rx_bps is not None else None, round(tx_bps) if tx_bps is not None else None,
                    counters.ratio_percent(counters.delta(p_retries, retries), counters.delta(p_packets, packets))
                    if dt > 0 else None)
        assert counters.station_rates(prev, rx, tx, packets, retries, dt) == expected
    assert counters.station_rates((0.0, 1000, 5000, 200, 10), 3000, 5000, 300, 30, 2.0) == (1000, 0, 20.0)
    assert counters.station_rates((0.0, 1000, 5000, 200, 10), 1001, 5000, 300, 30, 3.0)[0] == 0  # 0.33 B/s
