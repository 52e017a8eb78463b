"""Pure parsers on the recorded (wired-8021x) and constructed (keyid-session) hostapd traffic."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.radio import events
from appliance.radio.events import RecordLine, format_record, parse_event, parse_recording, parse_sta

REC = Path(__file__).resolve().parent.parent / "appliance" / "radio" / "recordings"


def lines(name: str) -> list[RecordLine]:
    return parse_recording((REC / name).read_text())


def test_real_recording_events_have_level_prefix_and_no_keyid():
    evs = [parse_event(x.text) for x in lines("wired-8021x.txt") if x.direction == "EVENT"]
    connected = [e for e in evs if e.kind == "connected"]
    assert connected and all(e.mac == "02:00:00:00:00:01" and e.keyid is None and e.level == 3 for e in connected)
    assert any(e.kind == "disconnected" for e in evs)
    # EAP progress events are kept but typed "other"
    eap = [e for e in evs if e.name == "CTRL-EVENT-EAP-PROPOSED-METHOD"]
    assert eap and eap[0].kind == "other" and eap[0].params == {"vendor": "0", "method": "1"}


def test_real_sta_block_is_authorized_without_radio_fields():
    replies = [x.text for x in lines("wired-8021x.txt") if x.direction == "REPLY"]
    blocks = [parse_sta(r) for r in replies]
    sta = next(b for b in blocks if b is not None)
    assert sta.mac == "02:00:00:00:00:01"
    assert sta.flags == ("AUTHORIZED",) and sta.authorized
    assert sta.keyid is None and sta.signal is None and sta.rx_rate_kbps is None  # driver=wired: no rates
    assert sta.raw["dot1xAuthSessionUserName"] == "alice"
    # empty STA-FIRST/STA-NEXT answers, FAIL and OK are "no station"
    assert parse_sta("") is None and parse_sta("FAIL\n") is None and parse_sta("OK\n") is None


def test_real_recording_shows_event_before_reply_on_reload():
    recs = lines("wired-8021x.txt")
    i = next(n for n, x in enumerate(recs) if x.direction == "SEND" and x.text == "RELOAD_WPA_PSK")
    assert recs[i + 1].direction == "EVENT" and "AP-STA-DISCONNECTED" in recs[i + 1].text
    assert recs[i + 2] == RecordLine(recs[i + 2].at, "REPLY", "OK\n")


def test_keyid_session_events():
    evs = [parse_event(x.text) for x in lines("keyid-session.txt") if x.direction == "EVENT"]
    kinds = [e.kind for e in evs]
    for k in ("enabled", "connected", "psk_mismatch", "rejected_max_sta", "disconnected", "disabled"):
        assert k in kinds
    con = {e.mac: e.keyid for e in evs if e.kind == "connected"}
    assert con["5a:1e:33:90:4c:01"] == "m1a2b3c4d5"
    assert con["ce:44:19:02:b7:3a"] == "guest"
    assert con["02:00:00:00:00:0c"] is None  # keyless wpa_psk_file line: no keyid=


def test_keyid_session_sta_blocks():
    stas = {s.mac: s for s in (parse_sta(x.text) for x in lines("keyid-session.txt") if x.direction == "REPLY") if s}
    a = stas["5a:1e:33:90:4c:01"]
    assert a.keyid == "m1a2b3c4d5" and a.signal == -58 and a.connected_time == 48 and a.inactive_msec == 120
    assert a.rx_rate_kbps == 65_000 and a.tx_rate_kbps == 72_000  # 100 kbit/s units, "mcs 7" ignored
    assert "AUTHORIZED" in a.flags and "WMM" in a.flags
    b = stas["a6:02:7d:11:e0:5f"]
    assert b.signal is None  # signal=0: brcmfmac's "not reported"
    assert b.rx_rate_kbps == 130_000
    assert stas["02:00:00:00:00:0c"].keyid is None


@pytest.mark.parametrize("msg,kind,mac,keyid,level", [
    ("<3>AP-STA-CONNECTED 02:00:00:00:00:01 keyid=m1a2b3c4d5", "connected", "02:00:00:00:00:01", "m1a2b3c4d5", 3),
    ("AP-STA-CONNECTED 02:00:00:00:00:01", "connected", "02:00:00:00:00:01", None, None),
    ("<2>AP-STA-CONNECTED 02:AA:00:00:00:01 ip_addr=10.0.0.5 keyid=k", "connected", "02:aa:00:00:00:01", "k", 2),
    ("<3>AP-STA-DISCONNECTED 02:00:00:00:00:01", "disconnected", "02:00:00:00:00:01", None, 3),
    ("<3>AP-ENABLED ", "enabled", None, None, 3),
    ("<4>SOMETHING-NEW x=1", "other", None, None, 4),
])
def test_parse_event_cases(msg, kind, mac, keyid, level):
    ev = parse_event(msg)
    assert (ev.kind, ev.mac, ev.keyid, ev.level) == (kind, mac, keyid, level)


def test_parse_event_empty_and_is_event():
    assert parse_event("") is None and parse_event("<3>") is None
    assert events.is_event("<3>AP-ENABLED ") and not events.is_event("OK\n") and not events.is_event("")


def test_record_format_roundtrip_keeps_newlines_backslashes_and_trailing_space():
    original = [RecordLine(0.5, "EVENT", "<3>AP-ENABLED "), RecordLine(1.25, "REPLY", "a\\b\nc=d\n"),
                RecordLine(2.0, "REPLY", "")]
    text = "# c\n" + "\n".join(format_record(x) for x in original)
    assert parse_recording(text) == original


def test_parse_recording_rejects_garbage():
    with pytest.raises(ValueError, match="Zeile 2"):
        parse_recording("# ok\nnonsense\n")


def test_normalize_mac():
    assert events.normalize_mac(" 02:AB:00:00:00:01 ") == "02:ab:00:00:00:01"
    for bad in ("02:00:00:00:00", "02-00-00-00-00-01", "02:00:00:00:00:01; rm", ""):
        with pytest.raises(ValueError):
            events.normalize_mac(bad)
