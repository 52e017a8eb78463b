import tomllib

import pytest

from appliance import config
from appliance.config import Config, ConfigError, Radio


def test_defaults_are_valid_and_sized_for_300_devices():
    cfg = Config().validate()
    import ipaddress
    size = int(ipaddress.IPv4Address(cfg.dhcp_end)) - int(ipaddress.IPv4Address(cfg.dhcp_start)) + 1
    assert size >= 300


def test_roundtrip_through_toml(tmp_path):
    cfg = Config(state_dir=tmp_path, demo=True, radios=(Radio("wlan0"), Radio("wlan1", hw_mode="a", channel=36)))
    again = config.from_mapping(tomllib.loads(config.to_toml(cfg)))
    assert again == cfg


def test_unknown_key_and_bad_values_refused(tmp_path):
    with pytest.raises(ConfigError, match="unbekannte Einstellung: wlan_pasword"):
        config.from_mapping({"wlan_pasword": "x"})
    with pytest.raises(ConfigError, match="liegt nicht im Netz"):
        config.from_mapping({"dhcp_end": "10.99.0.1"})
    with pytest.raises(ConfigError, match="Ländercode"):
        config.from_mapping({"country": "de"})
    for zone in ("Europe/Berlinn", "../etc/passwd", "", 1):
        with pytest.raises(ConfigError, match="Zeitzone"):
            config.from_mapping({"timezone": zone})
    assert config.from_mapping({"timezone": "Europe/Vienna"}).timezone == "Europe/Vienna"
    bad = tmp_path / "bad.toml"
    bad.write_text("state_dir = \n")
    with pytest.raises(ConfigError):
        config.load(bad)
    with pytest.raises(ConfigError, match="fehlt"):
        config.load(tmp_path / "missing.toml")


def test_state_dir_moves_derived_paths(tmp_path):
    cfg = config.from_mapping({"state_dir": str(tmp_path), "run_dir": str(tmp_path / "run")})
    assert cfg.leases_file == tmp_path / "dnsmasq.leases"
    assert cfg.helper_socket == tmp_path / "run" / "helper.sock"


def test_document_radio_options():
    cfg = config.from_mapping({"docs_bulk_pace_kib": 0, "docs_hall_warn_mb": 50})
    assert (cfg.docs_bulk_pace_kib, cfg.docs_hall_warn_mb) == (0, 50)
    assert Config().docs_bulk_pace_kib > 0  # pacing on by default
    for key, value in (("docs_bulk_pace_kib", -1), ("docs_hall_warn_mb", 0), ("docs_optimise_timeout_s", 5)):
        with pytest.raises(ConfigError, match=key):
            config.from_mapping({key: value})
