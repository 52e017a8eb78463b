"""Several radios, and external access points instead of radios (issue 6).

- Three radios (on-board 2.4 GHz, a 5 GHz USB adapter, a second 2.4 GHz adapter) rendered by the real
  `sitzungsbox netconf --check`: every hostapd file passes hostapd's own parser, all share one network name,
  one key file (same keys on every radio), the country and the client bridge.
- External-AP mode in the virtual venue: no hostapd at all (`radios = []`), the box serves DHCP, DNS, portal
  and presence on the bridge; a member gets in by the personal code from the card in the real portal form,
  and her presence comes from DHCP and ARP alone.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from appliance.config import Config, Radio, from_mapping, to_toml
from appliance.netconf import render
from appliance.sessions import roster, service
from appliance.store import open_db
from tests.conftest import need_binary, need_root, poll

MEMBERS = """Name;Fraktion;Rolle;Stimmrecht
Anna Becker;SPD;Mitglied;ja
Bernd Dahl;CDU;Mitglied;ja
"""

RADIOS = (
    Radio(interface="wlan0", hw_mode="g", channel=6, max_stations=10, bridge="br0"),  # Pi on-board (brcmfmac)
    Radio(interface="wlan1", hw_mode="a", channel=36, max_stations=64, bridge="br0"),  # mt7612u / mt7921au
    Radio(interface="wlan2", hw_mode="g", channel=1, max_stations=64, bridge="br0"),
)


def _opts(text: str) -> dict[str, str]:
    return dict(ln.split("=", 1) for ln in text.splitlines() if "=" in ln and not ln.startswith("#"))


def _state_cfg(tmp: Path, **changes) -> Config:
    return Config(state_dir=tmp / "state", run_dir=tmp / "run", helper_socket=tmp / "run" / "helper.sock",
                  leases_file=tmp / "state" / "dnsmasq.leases", hostapd_ctrl_dir=tmp / "hostapd",
                  **changes).validate()


def test_three_radios_rendered_and_each_passes_hostapds_check(tmp_path, capsys):
    need_root()  # hostapd's check runs in a throwaway namespace
    need_binary("hostapd", "ip", "nft", "dnsmasq")
    cfg = _state_cfg(tmp_path, interface="br0", radios=RADIOS)
    db = open_db(cfg.db_path)
    s = service.create_session(db, body="Rat der Stadt", title="Ratssitzung", day="2026-12-01", ssid=cfg.ssid)
    service.insert_members(db, s.id, roster.parse_members(MEMBERS))
    service.set_active(db, s.id)
    db.conn.close()
    # `sitzungsbox netconf --check` as the netconf unit runs it; ctrl_interface_group root (0) because this
    # host has no group sitzungsbox (the image has it from sysusers.d).
    rc = render.main(cfg, check=True, ctrl_group=0)
    out, err = capsys.readouterr()
    assert rc == 0, out + err
    for r in RADIOS:
        assert f"Prüfung hostapd (hostapd-{r.interface}.conf): in Ordnung" in out, out
    assert "3 Funkmodul(e)" in out and "Warnung" not in err
    files = {r.interface: _opts((cfg.netconf_dir / f"hostapd-{r.interface}.conf").read_text()) for r in RADIOS}
    # One network: same name, same key file (every member's key works on every radio), same country, one bridge.
    for key in ("ssid", "wpa_psk_file", "country_code", "bridge", "wpa_key_mgmt", "rsn_pairwise"):
        assert len({o[key] for o in files.values()}) == 1, key
    assert files["wlan0"]["wpa_psk_file"] == str(cfg.psk_file)
    assert [files[r.interface]["channel"] for r in RADIOS] == ["6", "36", "1"]
    assert files["wlan1"]["hw_mode"] == "a" and files["wlan1"].get("ieee80211ac") == "1"
    assert files["wlan1"]["max_num_sta"] == "64" and files["wlan0"]["max_num_sta"] == "10"


def test_a_radio_off_the_bridge_is_warned_about(tmp_path):
    cfg = _state_cfg(tmp_path, interface="br0", radios=(*RADIOS[:2], Radio(interface="wlan2")))
    from appliance.netconf.render import config_warnings

    assert config_warnings(cfg) == ["Funkmodul wlan2 hängt nicht an der Brücke br0: Geräte dort bekommen keine Adresse"]


def test_external_ap_mode_round_trips_through_toml(tmp_path):
    import tomllib

    cfg = _state_cfg(tmp_path, radios=())
    assert from_mapping(tomllib.loads(to_toml(cfg))).radios == ()


# --- external access points in the virtual venue ---------------------------------------------------------

@pytest.fixture(scope="module")
def ext_box(venue_factory):
    # radios=(): the clients arrive over external APs bridged into wlan0, no hostapd, no fake radio. CAP_NET_RAW
    # as the unit grants it: the daemon's ARP probes of quiet devices. Short grace and probe period so a
    # leaving device is noticed within seconds (the box uses 10 minutes).
    box = venue_factory("sbi", 2, members=MEMBERS, radios=(), daemon_caps=("net_raw",), presence_grace=4.0,
                        presence_interval=0.1)
    return box.venue, box.cfg, box.session_id


def _db_query(cfg: Config, sql: str, args=()) -> list:
    db = open_db(cfg.db_path, migrate=False)
    try:
        return db.execute(sql, list(args)).fetchall()
    finally:
        db.conn.close()


def test_external_ap_client_gets_box_services_and_the_portal(ext_box):
    venue, cfg, _sid = ext_box
    lease = venue.dhcp(2)
    assert lease.router == cfg.address and lease.dns == (cfg.address,)
    r = venue.http(2, "http://connectivitycheck.gstatic.com/generate_204")
    assert r.status == 302 and "/portal" in r.headers["location"]
    page = venue.http(2, f"http://{cfg.address}/portal")
    # Unknown to any radio of ours: the one-tap guest step, in German.
    assert page.status == 200 and "Weiter" in page.text
    assert _db_query(cfg, "SELECT count(*) FROM stations") == [(0,)]


def test_member_admitted_via_portal_is_present_from_dhcp_and_arp_alone(ext_box):
    """No hostapd anywhere: the member types the personal code from her card into the real portal form (no
    cookie, the device-bound token), is greeted by name, and her presence is kept by DHCP and ARP (the daemon
    probes the quiet device), and ends when the device leaves the hall."""
    from appliance.captive import codes
    from appliance.presence.store import attendance

    venue, cfg, sid = ext_box
    lease = venue.dhcp(1)
    mac = venue.client_mac(1)
    db = open_db(cfg.db_path, migrate=False)
    try:
        anna = next(m for m in service.members(db, sid) if m.name == "Anna Becker")
    finally:
        db.conn.close()
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    # Generous timeouts: the whole suite shares two cores with the venue's daemons.
    got = venue.http(1, cfg.portal_url, timeout=20)
    assert got.status == 200, got.error
    page = got.text
    assert "Persönlicher Code (steht auf Ihrer Karte)" in page and "Weiter" in page
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page).group(1)
    # A typo first: refused in German, nothing opened.
    r = venue.http(1, f"http://{cfg.address}/portal/continue", method="POST",
                   data=f"csrf_token={token}&code=ABCD-EFGH", headers=form, timeout=20)
    assert r.status == 422 and "Dieser Code ist nicht gültig" in r.text
    assert (mac, lease.ip) not in venue.nft_set()
    # The code as printed on her card.
    r = venue.http(1, f"http://{cfg.address}/portal/continue", method="POST",
                   data=f"csrf_token={token}&code={codes.display(anna.code)}", headers=form, timeout=20)
    assert r.status == 303, r.error or r.text
    assert (mac, lease.ip) in venue.nft_set()
    assert "Willkommen, Anna Becker" in venue.http(1, cfg.portal_url, timeout=20).text
    assert venue.http(1, "http://connectivitycheck.gstatic.com/generate_204").status == 204
    assert _db_query(cfg, "SELECT member_id, kind FROM admissions WHERE mac = ? AND revoked_at IS NULL",
                     [mac]) == [(anna.id, "member")]

    def status() -> str:
        db = open_db(cfg.db_path, migrate=False)
        try:
            return next(r.status for r in attendance(db, sid) if r.member_id == anna.id)
        finally:
            db.conn.close()

    poll(lambda: status() == "present", 10, "anwesend nach der Freigabe")
    # A DHCP renewal (the phone re-joins the AP) is evidence too.
    venue.dhcp(1)
    poll(lambda: _db_query(cfg, "SELECT source FROM presence_devices WHERE session_id = ? AND member_id = ?",
                            [sid, anna.id]) in ([("dhcp",)], [("arp",)]), 10, "DHCP als Quelle")
    # Quiet phone: the ARP probe answers for it, beyond the grace period.
    poll(lambda: _db_query(cfg, "SELECT source FROM presence_devices WHERE session_id = ? AND member_id = ?",
                            [sid, anna.id]) == [("arp",)], 15, "ARP als Quelle")
    assert status() == "present"
    assert _db_query(cfg, "SELECT count(*) FROM stations") == [(0,)]  # never a hostapd event
    # The phone leaves (link down): ARP goes unanswered, and after the grace she is marked as left.
    venue.link_down(1)
    poll(lambda: status() == "left", 20, "abgemeldet nach dem Gehen")
    ends = _db_query(cfg, "SELECT end_source FROM presence_intervals WHERE session_id = ? AND member_id = ?",
                     [sid, anna.id])
    assert ends and all(e[0] in ("arp", "grace", "dhcp") for e in ends), ends


def test_external_ap_config_has_no_hostapd_files(ext_box):
    _venue, cfg, _sid = ext_box
    assert not list(cfg.netconf_dir.glob("hostapd-*.conf"))
    assert replace(cfg, radios=()).radios == ()
