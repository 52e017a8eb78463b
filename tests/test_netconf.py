"""Rendered network configuration: content, real static checks (nft -c, dnsmasq --test, hostapd parse),
negative controls so the checks are not vacuous, multi-radio, and atomic rewrite on key rotation."""

from __future__ import annotations

import ipaddress
import os
import stat
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from appliance.config import Radio
from appliance.netconf import checks, render
from appliance.netconf.dnsmasq import dhcp_pool_size, render_dnsmasq_conf
from appliance.netconf.hostapd import render_hostapd_conf, render_wpa_psk
from appliance.netconf.nftables import render_ruleset
from appliance.sessions import roster, service
from tests.conftest import need_binary, need_root

CSV = """Name;Fraktion;Rolle;Stimmrecht
Anna Becker;SPD;Mitglied;ja
Bernd Dahl;CDU;Mitglied;ja
Cem Öztürk;Grüne;Stellvertretung;nein
Dora Engel;;Verwaltung;nein
"""


@pytest.fixture
def session(db):
    s = service.create_session(db, body="Rat der Stadt", title="Ratssitzung", day="2026-03-12")
    service.insert_members(db, s.id, roster.parse_members(CSV))
    service.set_active(db, s.id)
    return service.get_session(db, s.id)


def psk_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln and not ln.startswith("#")]


# --- content -----------------------------------------------------------------------------------------

def test_wpa_psk_has_every_member_and_guest(db, cfg, session):
    members = service.members(db, session.id)
    text = render.render_all(cfg, session, members, ctrl_group=0)["wpa_psk"]
    lines = psk_lines(text)
    assert len(lines) == len(members) + 1
    for m in members:
        assert f"keyid={m.keyid} 00:00:00:00:00:00 {m.passphrase}" in lines
    assert f"keyid=guest 00:00:00:00:00:00 {session.guest_key}" in lines
    # keyids are opaque: hostapd logs them, names must never appear.
    assert "Becker" not in text


def test_no_session_locks_the_radio(cfg):
    a, b = psk_lines(render_wpa_psk(None, [])), psk_lines(render_wpa_psk(None, []))
    assert len(a) == 1 and a[0].startswith("keyid=locked 00:00:00:00:00:00 ")
    assert a != b  # a fresh random key nobody knows
    conf = render_hostapd_conf(cfg, Radio(), None, Path("/x/wpa_psk"), 0)
    assert f"ssid={cfg.ssid}\n" in conf


def test_bad_passphrase_is_refused_without_echoing_it(cfg):
    class S:
        ssid, guest_key = "Sitzung-1", "short"
    with pytest.raises(ValueError) as err:
        render_wpa_psk(S(), [])
    assert "short" not in str(err.value)


def test_hostapd_conf_content(cfg, session):
    conf = render_hostapd_conf(cfg, cfg.radios[0], session, Path("/p/wpa_psk"), ctrl_group="sitzungsbox")
    opts = dict(ln.split("=", 1) for ln in conf.splitlines() if ln and not ln.startswith("#"))
    assert opts["ssid"] == session.ssid
    assert opts["ap_isolate"] == "1"
    assert opts["wpa"] == "2" and opts["wpa_key_mgmt"] == "WPA-PSK" and opts["rsn_pairwise"] == "CCMP"
    assert opts["wpa_psk_file"] == "/p/wpa_psk"
    assert "wpa_passphrase" not in opts  # the keys live only in the psk file
    assert opts["max_num_sta"] == str(cfg.radios[0].max_stations)
    assert opts["ctrl_interface"] == str(cfg.hostapd_ctrl_dir)
    assert opts["ctrl_interface_group"] == "sitzungsbox"
    assert opts["country_code"] == "DE" and opts["ieee80211d"] == "1"
    assert "ieee80211ac" not in opts and "bridge" not in opts


def test_dnsmasq_conf_defaults(cfg):
    conf = render_dnsmasq_conf(cfg, "")
    lines = conf.splitlines()
    assert "interface=wlan0" in lines and "bind-interfaces" in lines
    assert f"address=/#/{cfg.address}" in lines and "no-resolv" in lines
    assert "no-ping" in lines and "dhcp-authoritative" in lines
    assert f"dhcp-leasefile={cfg.leases_file}" in lines
    assert f"dhcp-option=option:router,{cfg.address}" in lines
    assert "log-dhcp" not in lines
    assert not any("114" in ln for ln in lines)  # captive-portal API off by default
    assert any(ln.startswith("host-record=sitzungsbox,") for ln in lines)
    rng = next(ln for ln in lines if ln.startswith("dhcp-range="))
    start, end, mask, lease = rng.removeprefix("dhcp-range=").split(",")
    assert ipaddress.IPv4Network(f"0.0.0.0/{mask}").prefixlen == cfg.prefix
    assert lease == cfg.lease_time
    # A large hall: 300 devices must get an address.
    assert int(ipaddress.IPv4Address(end)) - int(ipaddress.IPv4Address(start)) + 1 >= 300
    assert dhcp_pool_size(cfg) >= 300


def test_dnsmasq_option_114_only_when_configured(cfg):
    url = "https://box.example.org/api/captive"
    conf = render_dnsmasq_conf(replace(cfg, captive_api_url=url), "")
    assert f'dhcp-option=114,"{url}"' in conf.splitlines()
    with pytest.raises(ValueError):
        render_dnsmasq_conf(replace(cfg, captive_api_url='x" evil'), "")


def test_ruleset_default_has_no_passthrough(cfg):
    rules = render_ruleset(cfg)
    assert rules.index("table inet sitzungsbox {}") < rules.index("delete table inet sitzungsbox")
    assert "masquerade" not in rules
    assert "@admitted accept" in rules
    assert 'oifname "eth0"' not in rules
    assert f'iifname "wlan0" tcp dport 80 redirect to :{cfg.web_port}' in rules
    assert 'iifname "wlan0" oifname "wlan0" drop' in rules
    assert "table bridge sitzungsbox_isolation" in rules


def test_ruleset_passthrough(cfg):
    rules = render_ruleset(replace(cfg, internet_passthrough=True, uplink="eth0"))
    assert 'oifname "eth0" masquerade' in rules
    assert 'iifname "wlan0" oifname "eth0" ether saddr . ip saddr @admitted accept' in rules
    # Passthrough without an uplink renders nothing that forwards.
    assert "masquerade" not in render_ruleset(replace(cfg, internet_passthrough=True))


def test_hostapd_output_classifier():
    ok_out = "nl80211: 'nl80211' generic netlink not found\nFailed to initialize driver 'nl80211'\n"
    assert checks.classify_hostapd_output(1, ok_out) == (True, [])
    bad = "Line 8: unknown configuration item 'bogus'\n1 errors found in configuration file '/x'\n"
    ok, errors = checks.classify_hostapd_output(1, bad)
    assert not ok and errors[0] == "Line 8: unknown configuration item 'bogus'"
    assert checks.classify_hostapd_output(1, "Segmentation fault")[0] is False


# --- real tools --------------------------------------------------------------------------------------

def files_on_disk(cfg) -> list[str]:
    return sorted(p.name for p in [*cfg.netconf_dir.iterdir(), *cfg.psk_file.parent.iterdir()])


@pytest.fixture
def written(cfg, db, session):
    return {p.name: p for p in render.write_all(cfg, db, ctrl_group=0)}


def test_static_checks_pass_with_real_tools(cfg, written):
    need_root()
    need_binary("nft", "dnsmasq", "hostapd", "ip")
    results = render.run_checks(cfg, written.values())
    assert len(results) == 5
    for result in results:
        assert result.ok and not result.skipped, (result.name, result.detail, result.output)
    # the throwaway namespaces are gone
    ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert checks.NETNS_PREFIX not in ns


def test_passthrough_ruleset_loads(cfg):
    need_root()
    need_binary("nft", "ip")
    result = checks.check_nft(render_ruleset(replace(cfg, internet_passthrough=True, uplink="eth0")))
    assert result.ok, result.output


def test_ruleset_reloads_idempotently_in_netns(cfg):
    """Loading twice (the boot unit and a later session change) must work: the delete/recreate idiom."""
    need_root()
    need_binary("nft", "ip")
    rules = render_ruleset(cfg)
    with checks.throwaway_netns() as ns:
        for _ in range(2):
            proc = subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=rules, text=True,
                                  capture_output=True, timeout=15)
            assert proc.returncode == 0, proc.stderr
        listing = subprocess.run(["ip", "netns", "exec", ns, "nft", "list", "tables"], capture_output=True,
                                 text=True, timeout=15).stdout
    assert listing.split("\n").count("table inet sitzungsbox") == 1


def test_nft_check_catches_broken_ruleset(cfg):
    need_root()
    need_binary("nft", "ip")
    broken = render_ruleset(cfg).replace("chain forward {", "chain fwd {")  # `fwd` is a keyword in nft 1.0.6
    result = checks.check_nft(broken)
    assert not result.ok and not result.skipped
    assert "Error" in result.output


def test_dnsmasq_check_catches_broken_file(cfg, tmp_path):
    need_binary("dnsmasq")
    bad = tmp_path / "dnsmasq.conf"
    bad.write_text(render_dnsmasq_conf(cfg, "") + "dhcp-range=nonsense\n")
    result = checks.check_dnsmasq(bad)
    assert not result.ok and not result.skipped


def test_hostapd_check_catches_broken_file(cfg, written, tmp_path):
    need_root()
    need_binary("hostapd", "ip")
    text = written["hostapd-wlan0.conf"].read_text()
    bad = tmp_path / "hostapd-wlan0.conf"
    bad.write_text(text + "bogus_option=1\nwpa_passphrase=abc\n")
    result = checks.check_hostapd(bad)
    assert not result.ok
    assert any("unknown configuration item 'bogus_option'" in e for e in result.errors)
    assert any("errors found in configuration file" in e for e in result.errors)
    # A group that does not exist is a config error too (the image creates `sitzungsbox` via sysusers).
    bad.write_text(text.replace("ctrl_interface_group=0", "ctrl_interface_group=no-such-group-sbxa"))
    result = checks.check_hostapd(bad)
    assert not result.ok and "no-such-group-sbxa" in result.errors[0]
    # The check never left a control socket in the configured directory.
    assert not cfg.hostapd_ctrl_dir.exists()


def test_ip_batch_check(cfg, written, tmp_path):
    need_root()
    need_binary("ip")
    assert written["ip.batch"].read_text().splitlines() == [
        "link set dev wlan0 up", f"address replace {cfg.address}/{cfg.prefix} dev wlan0"]
    assert checks.check_ip_batch(written["ip.batch"], cfg.interface).ok
    bad = tmp_path / "ip.batch"
    bad.write_text("address replace 10.77.0.1/99 dev wlan0\n")
    assert not checks.check_ip_batch(bad, cfg.interface).ok


def test_wpa_psk_check(tmp_path, written):
    assert checks.check_wpa_psk(written["wpa_psk"]).ok
    bad = tmp_path / "wpa_psk"
    bad.write_text(written["wpa_psk"].read_text() + "keyid=x 00:00:00:00:00:00 short\n")
    result = checks.check_wpa_psk(bad)
    assert not result.ok and "short" not in result.detail


# --- multi-radio, writing, rotation ------------------------------------------------------------------

def test_two_radios_share_one_psk_file(cfg, db, session):
    cfg2 = replace(cfg, interface="br0", radios=(
        Radio(interface="wlan0", hw_mode="g", channel=6, bridge="br0"),
        Radio(interface="wlan1", hw_mode="a", channel=36, max_stations=64, bridge="br0"),
    ))
    files = render.render_all(cfg2, session, service.members(db, session.id), ctrl_group=0)
    assert set(files) == {"hostapd-wlan0.conf", "hostapd-wlan1.conf", "wpa_psk", "dnsmasq.conf", "nftables.nft",
                          "ip.batch"}
    psk = f"wpa_psk_file={cfg.psk_file}"
    g, a = files["hostapd-wlan0.conf"].splitlines(), files["hostapd-wlan1.conf"].splitlines()
    assert psk in g and psk in a
    assert "hw_mode=g" in g and "hw_mode=a" in a and "ieee80211ac=1" in a and "ieee80211ac=1" not in g
    assert "bridge=br0" in g and "bridge=br0" in a and "max_num_sta=64" in a
    assert f"ssid={session.ssid}" in g and f"ssid={session.ssid}" in a
    assert "interface=br0" in files["dnsmasq.conf"].splitlines()
    assert render.config_warnings(cfg2) == []
    assert render.config_warnings(replace(cfg2, radios=(*cfg2.radios, Radio(interface="wlan2"))))


def test_two_radio_files_parse_in_hostapd(cfg, db, session):
    need_root()
    need_binary("hostapd", "ip")
    cfg2 = replace(cfg, interface="br0", radios=(
        Radio(interface="wlan0", bridge="br0"), Radio(interface="wlan1", hw_mode="a", channel=36, bridge="br0")))
    paths = render.write_all(cfg2, db, ctrl_group=0)
    results = [checks.check_hostapd(p) for p in paths if p.name.startswith("hostapd-")]
    assert len(results) == 2 and all(r.ok for r in results), [r.output for r in results]


def test_write_all_modes_and_no_leftovers(cfg, written):
    assert stat.S_IMODE(written["wpa_psk"].stat().st_mode) == 0o640
    assert stat.S_IMODE(written["dnsmasq.conf"].stat().st_mode) == 0o644
    assert files_on_disk(cfg) == sorted(written)


def test_rotation_rewrites_with_no_old_key_left(cfg, db, session, written):
    old = [m.passphrase for m in service.members(db, session.id)] + [session.guest_key]
    old_inode = written["wpa_psk"].stat().st_ino
    service.replace_keys(db, session.id)
    render.write_all(cfg, db, ctrl_group=0)
    new_psk = written["wpa_psk"].read_text()
    assert written["wpa_psk"].stat().st_ino != old_inode  # replaced by rename, not rewritten in place
    everything = "".join(p.read_text() for p in cfg.netconf_dir.iterdir())
    for secret in old:
        assert secret not in everything
    for m in service.members(db, session.id):
        assert f"keyid={m.keyid} 00:00:00:00:00:00 {m.passphrase}" in new_psk
    assert files_on_disk(cfg) == sorted(written)  # no .tmp files


def test_failed_write_keeps_old_file(cfg, written, monkeypatch):
    before = written["wpa_psk"].read_text()

    def boom(fd):
        raise OSError("Platte voll")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError):
        render.write_atomic(written["wpa_psk"], "neu\n", 0o640)
    assert written["wpa_psk"].read_text() == before
    assert files_on_disk(cfg) == sorted(written)


def test_stale_radio_file_removed(cfg, db, session, written):
    cfg2 = replace(cfg, radios=(Radio(interface="wlan1"),))
    render.write_all(cfg2, db, ctrl_group=0)
    assert not (cfg.netconf_dir / "hostapd-wlan0.conf").exists()
    assert (cfg.netconf_dir / "hostapd-wlan1.conf").exists()


def test_main_writes_and_summarises(cfg, db, session, capsys):
    rc = render.main(cfg, check=False, ctrl_group=0)
    out = capsys.readouterr().out
    assert rc == 0
    assert f"WLAN {session.ssid}" in out and "4 persönliche Schlüssel" in out
    assert cfg.psk_file.exists()
    for m in service.members(db, session.id):
        assert m.passphrase not in out


def test_main_with_checks(cfg, db, session, capsys):
    need_root()
    need_binary("nft", "dnsmasq", "hostapd", "ip")
    assert render.main(cfg, check=True, ctrl_group=0) == 0
    out = capsys.readouterr().out
    assert out.count("in Ordnung") == 5 and "FEHLER" not in out


def test_main_without_session_locks(cfg, db, capsys):
    assert render.main(cfg, check=False, ctrl_group=0) == 0
    assert "WLAN gesperrt" in capsys.readouterr().out
    assert psk_lines(cfg.psk_file.read_text())[0].startswith("keyid=locked ")


def test_netconf_waits_for_the_interface_with_a_deadline(cfg, db, session, capsys):
    """At boot the radio's interface comes when its driver has loaded: netconf --wait waits for it, and says
    clearly when it never comes (QEMU's Pi 4 has no radio, tests/test_image_qemu.py sees the message)."""
    assert render.interface_exists("lo") and not render.interface_exists("sbx-fehlt0")
    seen = iter([False, False, True])
    assert render.wait_for_interface("wlan0", 5, exists=lambda _name: next(seen))  # comes on the third look
    assert not render.wait_for_interface("sbx-fehlt0", 0.3)
    missing = replace(cfg, interface="sbx-fehlt0")
    assert render.main(missing, ctrl_group=0, wait=0.3) == 2
    assert "Die Schnittstelle sbx-fehlt0 ist nach 0.3 s nicht da" in capsys.readouterr().err
