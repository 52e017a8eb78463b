"""Presence and chat in the virtual venue: the real box (dnsmasq, nftables, helper, daemon with CAP_NET_RAW for
scapy's ARP probes, gunicorn web app) and client namespaces that really talk DHCP, ARP, HTTP and SSE.

Runs in file order like a session: members arrive → they chat (SSE inside the client namespaces) → one
reconnects with Last-Event-ID → the web process is killed and restarted → a client's link goes down and the
member leaves after the (short) grace period.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from appliance.sessions import service
from tests.conftest import poll

pytestmark = pytest.mark.net
REPO = Path(__file__).resolve().parent.parent
GRACE = 3.0
MEMBERS = """Name;Fraktion;Rolle;Stimmrecht;Gremium
Anna Schmidt;SPD;Mitglied;ja;Rat
Bernd Müller;CDU;Mitglied;ja;Rat
"""
# Runs inside a client namespace: prints every chat event of the stream as one JSON line.
READER = r"""
import json, sys
from appliance.push.sseclient import SSEClient
host, port, last = sys.argv[1], int(sys.argv[2]), sys.argv[3]
c = SSEClient(host, port, last_id=None if last == "-" else int(last), timeout=30).connect()
print(json.dumps({"status": c.status}), flush=True)
while True:
    ev = c.next()
    data = ev.json()
    if data["topic"].startswith("chat."):
        print(json.dumps({"id": ev.id, "topic": data["topic"], "body": data["payload"].get("body")}), flush=True)
"""


@pytest.fixture(scope="module")
def box(venue_factory):
    b = venue_factory("sbp", 2, members=MEMBERS, title="Live-Sitzung", daemon_caps=("net_raw",),
                      nft_table="sitzungsbox", presence_grace=GRACE, presence_interval=0.2, push_heartbeat=2.0,
                      chat_rate_count=100)
    b.readers = []
    try:
        yield b
    finally:
        for p in b.readers:
            if p.poll() is None:
                p.kill()
                p.wait(5)


def q(box, sql: str, args=()):
    db = box.db()
    try:
        return db.execute(sql, list(args)).fetchall()
    finally:
        db.conn.close()


def members(box) -> dict[str, service.Member]:
    db = box.db()
    try:
        return {m.name.split()[0]: m for m in service.members(db, box.session_id)}
    finally:
        db.conn.close()


def present(box) -> set[str]:
    return {r[0].split()[0] for r in q(box, "SELECT m.name FROM presence_intervals i JOIN members m "
                                            "ON m.id = i.member_id WHERE i.end IS NULL")}


def reader(box, i: int, last: int | None) -> subprocess.Popen:
    ns = box.venue.client_ns(i)
    p = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", READER, box.cfg.address,
                          str(box.cfg.web_port), "-" if last is None else str(last)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO, text=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    box.readers.append(p)
    assert json.loads(p.stdout.readline()) == {"status": 200}, p.stderr.read() if p.poll() is not None else ""
    return p


def read_n(p: subprocess.Popen, n: int) -> list[dict]:
    return [json.loads(p.stdout.readline()) for _ in range(n)]  # the reader's socket timeout bounds this


def stop(p: subprocess.Popen) -> None:
    p.kill()
    p.wait(5)


def post(box, i: int, body: str, room: str = "all") -> int:
    """The no-JS way from inside client i: GET the room page, POST its form. Returns the HTTP status."""
    url = f"http://{box.cfg.address}/chat?room={room}"
    page = box.venue.http(i, url).text
    tok = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    cid = re.search(r'name="client_id" value="([^"]+)"', page).group(1)
    from urllib.parse import urlencode

    data = urlencode({"csrf_token": tok, "room": room, "client_id": cid, "body": body})
    return box.venue.http(i, f"http://{box.cfg.address}/chat/send", method="POST", data=data,
                          headers={"Content-Type": "application/x-www-form-urlencoded"}).status


def last_event(box) -> int:
    return q(box, "SELECT coalesce(MAX(id), 0) FROM push_events")[0][0]


def test_radio_dhcp_portal_and_arp_make_members_present(box):
    ms = members(box)
    for i, who in ((1, "Anna"), (2, "Bernd")):
        mac = box.venue.client_mac(i)
        box.fake.connect(mac, ms[who].keyid)  # replayed hostapd: the phone joined with its personal key
        box.wait_station(mac, ms[who].keyid)
        box.venue.dhcp(i)  # real DHCP from the client namespace
        assert who.split()[0] in box.venue.http(i, box.cfg.portal_url).text  # admitted, greeted
    poll(lambda: present(box) == {"Anna", "Bernd"}, 10, "Anna und Bernd anwesend")
    # Quiet devices are probed with real ARP (scapy in the daemon, CAP_NET_RAW) and answer from their namespace.
    poll(lambda: q(box, "SELECT 1 FROM presence_devices WHERE source = 'arp' AND device = ?",
                       [box.venue.client_mac(1)]), 15, "ARP-Antwort von Client 1")


def test_two_clients_chat_and_each_receives_the_others_messages_in_order(box):
    start = last_event(box)
    r1, r2 = reader(box, 1, start), reader(box, 2, start)
    script = [(1, "Guten Morgen"), (2, "Hallo Anna"), (1, "Antrag 3 zuerst?"), (2, "Einverstanden"),
              (1, "<b>Danke</b> & tschüss")]
    for i, text in script:
        assert post(box, i, text) == 303
    got1, got2 = read_n(r1, len(script)), read_n(r2, len(script))
    assert [e["body"] for e in got1] == [t for _i, t in script] == [e["body"] for e in got2]
    assert [e["id"] for e in got1] == sorted(e["id"] for e in got1) == [e["id"] for e in got2]
    stop(r1)
    stop(r2)


def test_a_client_that_reconnects_gets_exactly_what_it_missed(box):
    start = last_event(box)
    r = reader(box, 1, start)
    assert post(box, 2, "vor der Trennung") == 303
    seen = read_n(r, 1)
    stop(r)  # the phone loses the stream
    missed = ["verpasst 1", "verpasst 2", "verpasst 3"]
    for text in missed:
        assert post(box, 2, text) == 303
    again = reader(box, 1, seen[-1]["id"])  # sends Last-Event-ID
    got = read_n(again, 3)
    assert [e["body"] for e in got] == missed
    assert post(box, 2, "danach") == 303
    assert read_n(again, 1)[0]["body"] == "danach"  # nothing in between, nothing twice
    stop(again)


def test_killed_and_restarted_web_process_loses_no_acknowledged_message(box):
    assert post(box, 1, "bestätigt vor dem Absturz") == 303  # 303: stored and acknowledged
    web = box.procs["web"]
    children = subprocess.run(["pgrep", "-P", str(web.pid)], capture_output=True, text=True).stdout.split()
    web.send_signal(signal.SIGKILL)
    web.wait(5)
    for pid in children:  # gunicorn's worker of the killed master (started by us)
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass
    cli = [sys.executable, "-m", "appliance.cli", "--config", str(box.venue.write_config())]
    box.procs["web"] = box.venue.run_in_box([*cli, "web"], name="web-restarted")
    box.venue.wait_listening(box.cfg.web_port, timeout=30, proc=box.procs["web"])
    page = poll(lambda: box.venue.http(2, f"http://{box.cfg.address}/chat?room=all").text, 10, "Chatseite")
    assert "bestätigt vor dem Absturz" in page and "Guten Morgen" in page
    assert q(box, "SELECT COUNT(*) FROM chat_messages WHERE body = 'bestätigt vor dem Absturz'")[0][0] == 1


def test_link_down_makes_the_member_leave_after_the_grace_period(box):
    box.venue.link_down(2)
    t0 = time.monotonic()
    poll(lambda: present(box) == {"Anna"}, GRACE + 10, "Bernd gegangen")
    took = time.monotonic() - t0
    assert took >= GRACE - 1.5, took  # the grace period kept him present for a while (last evidence ≤ now)
    row = q(box, "SELECT i.end, i.end_source FROM presence_intervals i JOIN members m ON m.id = i.member_id "
                 "WHERE m.name LIKE 'Bernd%' AND i.end IS NOT NULL")
    assert row and row[0][1] in ("grace", "arp")  # the failed probe or the running clock ends it
    assert "Anna" in present(box)  # her device still answers ARP
