"""The stored form of a sample (appliance.monitor.snapshot): clients in columns, read back as the collector made
them; the old form (a list of dicts) still reads; rows of other shapes are stored as they are."""

from __future__ import annotations

import json

from appliance.monitor import snapshot


def client(i: int, **extra) -> dict:
    return {"mac": f"02:5b:00:00:00:{i:02x}", "interface": "wlan0", "keyid": None if i % 2 else f"k{i}",
            "ip": f"10.77.1.{i}", "signal": None if i == 3 else -40 - i, "tx_mbps": 65.0, "retries_reported": i != 3,
            "retries_pct": None, "rx_bps": 5000 * i, **extra}


def test_clients_are_stored_in_columns_and_read_back_whole():
    snap = {"at": 1765000000.5, "interval_s": 1.0, "radios": [{"interface": "wlan0", "clients": 5}],
            "clients": [client(i) for i in range(1, 6)], "network": {"pool_pct": 2.0}, "health": {"load": [0.1]}}
    text = snapshot.encode(snap)
    stored = json.loads(text)
    assert stored["clients"]["fields"] == list(snap["clients"][0])
    assert len(stored["clients"]["rows"]) == 5 and stored["clients"]["rows"][2][4] is None  # i == 3: no signal
    assert snapshot.decode(text) == snap
    assert len(text) < len(json.dumps(snap, separators=(",", ":")))
    assert isinstance(snap["clients"], list)  # the caller's sample is not changed


def test_no_clients_other_shapes_and_the_old_form():
    empty = {"at": 1.0, "clients": []}
    assert snapshot.decode(snapshot.encode(empty)) == empty
    assert snapshot.decode(snapshot.encode({"at": 1.0})) == {"at": 1.0}
    # rows of different shapes (never from the collector, but a sample is a sample): stored as they are
    mixed = {"clients": [client(1), client(2, extra=True)]}
    assert isinstance(json.loads(snapshot.encode(mixed))["clients"], list)
    assert snapshot.decode(snapshot.encode(mixed)) == mixed
    renamed = {"clients": [client(1), {("other" if k == "ip" else k): v for k, v in client(2).items()}]}
    assert snapshot.decode(snapshot.encode(renamed)) == renamed
    one_key = {"clients": [{"mac": "a"}, {"mac": "b"}]}
    assert snapshot.decode(snapshot.encode(one_key)) == one_key
    # written before the columns: a list of dicts reads as it is
    old = {"clients": [{"mac": "02:5b:00:00:00:01", "ip": "10.77.1.1"}], "interval_s": 1}
    assert snapshot.decode(json.dumps(old)) == old
