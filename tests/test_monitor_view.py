"""monitor.view.alert_groups, the read side of alerts, as a table: one group per kind with its count, the most
severe group first, then the newest; device alerts named through the rows the device rule produced."""

from __future__ import annotations

import pytest

from appliance.monitor import alerts, view

MAC_A, MAC_B, MAC_C = "02:5b:00:00:00:0a", "02:5b:00:00:00:0b", "02:5b:00:00:00:0c"


def alert(i: int, kind: str, subject: str, severity: str, started: float, ended: float | None = None) -> dict:
    return {"id": i, "kind": kind, "subject": subject, "severity": severity, "message": "…", "value": 1.0,
            "started_at": started, "ended_at": ended}


ROWS = [
    alert(1, "hot", "box", "warning", 300),
    alert(2, "weak_signal", MAC_A, "warning", 100),
    alert(3, "weak_signal", MAC_B, "critical", 50),
    alert(4, "channel_busy", "wlan0", "warning", 200),
    alert(5, "service_down", "web", "critical", 10),
    alert(6, "weak_signal", MAC_C, "warning", 20, ended=30),
    alert(7, "high_retries", MAC_A, "warning", 400, ended=410),
]
WHO = {MAC_A: {"name": "Anna", "kind": "member", "admitted": True, "device": "phone-a", "connected": True},
       MAC_B: {"name": None, "kind": "guest", "admitted": True, "connected": True}}


def test_groups_most_severe_first_then_newest_with_counts():
    g = view.alert_groups(ROWS, WHO)
    assert [(x["kind"], x["severity"], x["count"]) for x in g["open"]] == [
        ("weak_signal", "critical", 2),  # critical (one of its subjects is), newest 100
        ("service_down", "critical", 1),  # critical, newest 10
        ("hot", "warning", 1),  # warning, newest 300
        ("channel_busy", "warning", 1),  # warning, newest 200
    ]
    weak = g["open"][0]
    assert [a["subject"] for a in weak["entries"]] == [MAC_B, MAC_A]  # the critical subject first
    assert weak["critical"] == 1 and weak["newest"] == 100
    assert [(x["kind"], x["count"]) for x in g["ended"]] == [("high_retries", 1), ("weak_signal", 1)]


@pytest.mark.parametrize(("subject", "name", "who", "connected"), [
    (MAC_A, "Anna", "member", True),  # a member's admitted device: her name
    (MAC_B, None, "guest", True),  # a guest: no name
    (MAC_C, None, None, False),  # gone and unknown: the MAC only, no link
])
def test_device_alerts_are_named_by_the_rows_of_the_device_rule(subject, name, who, connected):
    g = view.alert_groups(ROWS, WHO)
    items = [a for grp in g["open"] + g["ended"] for a in grp["entries"] if a["subject"] == subject]
    assert items and all(a["target"] == "device" and a["name"] == name and a["who"] == who
                         and a["connected"] is connected for a in items)


def test_every_kind_has_a_subject_type_and_severities_match_the_schema(db):
    assert set(alerts.KINDS) == set(alerts.SUBJECTS)
    sql = db.execute("SELECT sql FROM sqlite_master WHERE name = 'monitor_alerts'").fetchone()[0]
    for sev in alerts.SEVERITIES:
        assert f"'{sev}'" in sql
    g = view.alert_groups(ROWS, {})
    assert {a["target"] for grp in g["open"] for a in grp["entries"]} == {"device", "service", "box", "radio"}
