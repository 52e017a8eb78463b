from appliance import netinfo


def test_loopback_has_127_0_0_1():
    assert "127.0.0.1" in netinfo.ipv4_addresses("lo")
    assert netinfo.has_address("lo", "127.0.0.1")


def test_missing_interface_has_no_addresses():
    assert netinfo.ipv4_addresses("nosuchif0") == []
