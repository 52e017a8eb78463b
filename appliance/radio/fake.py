"""FakeHostapd: a virtual radio that speaks hostapd's control protocol on a real Unix datagram socket.

Used by the tests, by `sitzungsbox fake-hostapd` and by the demo. It answers like hostapd 2.10 does
(see recordings/wired-8021x.txt): `PONG\\n`, `OK\\n`, `FAIL\\n`, `UNKNOWN COMMAND\\n`, an empty datagram
for "no (further) station", STA blocks `<mac>\\nkey=value\\n...`, and events `<3>AP-STA-...` without a
trailing newline, sent to ATTACHed clients only, and - like hostapd - *before* the reply of the command
that caused them (DEAUTHENTICATE, RELOAD_WPA_PSK).

API:
    fake = FakeHostapd(socket_path, psk_file=None)    # starts serving at once (a daemon thread)
    fake.connect(mac, keyid=None, **sta_fields)        # station joins: table + AP-STA-CONNECTED
    fake.connect(mac, keyid, announce=False)           # ... but the event is lost (hostapd drops events to a
                                                       #     monitor whose socket buffer is full)
    fake.disconnect(mac)                               # station leaves: AP-STA-DISCONNECTED
    fake.emit("<3>AP-REJECTED-MAX-STA 02:...")         # any raw event
    fake.replay(path_or_lines, speed=1.0)              # play a recording (blocking); speed=0: at once
    fake.commands_received                             # every command text received, in order
    fake.close()

    demo_replay(keyids, macs=None, guest_keyid="guest", guests=1, arrival_s=900, leavers=2, seed=1)
        -> Iterator[RecordLine]: a plausible session: members (some with a phone *and* a tablet)
        arrive spread over `arrival_s` seconds, `leavers` members leave again later, `guests` guest
        devices join with `guest_keyid`. `macs` maps keyid -> MAC for the first device of a keyid;
        other MACs are random locally administered ones (phones randomise MACs). Feed it to
        `fake.replay(...)` or write it with `events.format_record`.

RELOAD_WPA_PSK re-reads `psk_file` (hostapd's wpa_psk_file format) and drops stations whose keyid is
no longer in it, as 2.10 drops stations whose PSK is gone (hostapd_ctrl_iface_kick_mismatch_psk_sta_iter).
"""

from __future__ import annotations

import logging
import random
import select
import signal
import socket
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from appliance.radio.events import RecordLine, is_mac, parse_event, parse_recording, parse_sta

log = logging.getLogger(__name__)


def read_psk_keyids(path: Path) -> set[str]:
    """keyids of a wpa_psk_file: lines `[keyid=<id>] [vlanid=<n>] <MAC> <passphrase>`; # comments."""
    out: set[str] = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        for token in line.split():
            if token.startswith("keyid="):
                out.add(token[len("keyid="):])
    return out


def _default_fields(aid: int, keyid: str | None, rng: random.Random) -> dict[str, str]:
    # The shape of an nl80211 WPA2-PSK STA block (hostapd_ctrl_iface_sta_mib(), field list abridged).
    rate = rng.choice([650, 1300, 1733, 2400, 5850])
    fields = {
        "flags": "[AUTH][ASSOC][AUTHORIZED][WMM][HT]",
        "aid": str(aid),
        "capability": "0x1431",
        "listen_interval": "10",
        "supported_rates": "82 84 8b 96 0c 12 18 24 30 48 60 6c",
        "timeout_next": "NULLFUNC POLL",
        "wpa": "2",
        "AKMSuiteSelector": "00-0f-ac-2",
        "hostapdWPAPTKState": "11",
        "hostapdWPAPTKGroupState": "0",
        "rx_packets": str(rng.randint(50, 5000)),
        "tx_packets": str(rng.randint(50, 5000)),
        "rx_bytes": str(rng.randint(10_000, 2_000_000)),
        "tx_bytes": str(rng.randint(10_000, 9_000_000)),
        "inactive_msec": str(rng.randint(0, 4000)),
        "signal": str(rng.randint(-82, -45)),
        "rx_rate_info": f"{rate} mcs 7",
        "tx_rate_info": f"{rate} mcs 7 shortGI",
        "connected_time": "0",
    }
    if keyid:
        fields["keyid"] = keyid
    return fields


class FakeHostapd:
    def __init__(self, socket_path: Path | str, psk_file: Path | str | None = None, seed: int = 0) -> None:
        self.socket_path = Path(socket_path)
        self.psk_file = Path(psk_file) if psk_file else None
        self.commands_received: list[str] = []
        self._stations: dict[str, dict[str, str]] = {}  # insertion order = hostapd's list order
        self._connected_at: dict[str, float] = {}
        self._attached: set[str] = set()
        self._lock = threading.RLock()
        self._rng = random.Random(seed)
        self._next_aid = 1
        self._stop = threading.Event()
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        self.socket_path.unlink(missing_ok=True)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(self.socket_path))
        self._thread = threading.Thread(target=self._serve, name=f"fake-hostapd {self.socket_path.name}",
                                        daemon=True)
        self._thread.start()

    # --- station table ---------------------------------------------------------------------------
    @property
    def stations(self) -> dict[str, dict[str, str]]:
        with self._lock:
            return {mac: dict(f) for mac, f in self._stations.items()}

    def connect(self, mac: str, keyid: str | None = None, *, announce: bool = True, **sta_fields: object) -> None:
        mac = mac.lower()
        with self._lock:
            fields = _default_fields(self._next_aid, keyid, self._rng)
            self._next_aid += 1
            fields.update({k: str(v) for k, v in sta_fields.items()})
            self._stations[mac] = fields
            self._connected_at[mac] = time.monotonic()
        if announce:
            self.emit(f"<3>AP-STA-CONNECTED {mac}" + (f" keyid={keyid}" if keyid else ""))

    def disconnect(self, mac: str) -> bool:
        mac = mac.lower()
        with self._lock:
            known = self._stations.pop(mac, None) is not None
            self._connected_at.pop(mac, None)
        if known:
            self.emit(f"<3>AP-STA-DISCONNECTED {mac}")
        return known

    def emit(self, event: str) -> None:
        """Send a raw event (`<3>AP-...`, no newline, as hostapd does) to every attached client."""
        with self._lock:
            targets = list(self._attached)
        for addr in targets:
            try:
                self._sock.sendto(event.encode(), addr)
            except OSError:
                # hostapd, too, forgets monitors it cannot reach
                with self._lock:
                    self._attached.discard(addr)

    def _block(self, mac: str) -> str:
        fields = dict(self._stations[mac])
        if "connected_time" in fields and mac in self._connected_at:
            fields["connected_time"] = str(int(time.monotonic() - self._connected_at[mac]))
        return mac + "\n" + "".join(f"{k}={v}\n" for k, v in fields.items())

    # --- protocol --------------------------------------------------------------------------------
    def handle(self, cmd: str, addr: str) -> str:
        with self._lock:
            self.commands_received.append(cmd)
        word, _, arg = cmd.strip().partition(" ")
        arg = arg.strip().lower()
        with self._lock:
            if word == "PING":
                return "PONG\n"
            if word == "ATTACH":
                self._attached.add(addr)
                return "OK\n"
            if word == "DETACH":
                if addr not in self._attached:
                    return "FAIL\n"
                self._attached.discard(addr)
                return "OK\n"
            if word == "STA-FIRST":
                return self._block(next(iter(self._stations))) if self._stations else ""
            if word == "STA-NEXT":
                macs = list(self._stations)
                if arg not in macs:
                    return "FAIL\n"
                i = macs.index(arg)
                return self._block(macs[i + 1]) if i + 1 < len(macs) else ""
            if word == "STA":
                return self._block(arg) if arg in self._stations else "FAIL\n"
            if word == "RELOAD_WPA_PSK":
                return self._reload()
            if word == "DEAUTHENTICATE":
                if not is_mac(arg):
                    return "FAIL\n"
                self.disconnect(arg)  # event first, then OK - the order hostapd uses
                return "OK\n"
        return "UNKNOWN COMMAND\n"

    def _reload(self) -> str:
        if self.psk_file is None:
            return "OK\n"
        try:
            valid = read_psk_keyids(self.psk_file)
        except OSError:
            return "FAIL\n"  # hostapd: "Reloading WPA-PSK passwords failed"
        for mac, fields in list(self._stations.items()):
            if fields.get("keyid") and fields["keyid"] not in valid:
                self.disconnect(mac)
        return "OK\n"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._sock], [], [], 0.1)
                if not ready:
                    continue
                data, addr = self._sock.recvfrom(65536)
            except (OSError, ValueError):
                if self._stop.is_set():
                    return
                continue
            if not addr:  # an unbound client cannot get an answer (hostapd ignores it as well)
                continue
            reply = self.handle(data.decode("utf-8", errors="replace"), addr)
            try:
                self._sock.sendto(reply.encode(), addr)
            except OSError:
                pass

    # --- replay ----------------------------------------------------------------------------------
    def replay(self, source: Path | str | Iterable[RecordLine], speed: float = 1.0) -> int:
        """Play a recording: EVENTs are emitted (and change the table), STA blocks in REPLYs refresh it.

        Times are honoured relative to the first line, divided by `speed`; speed=0 plays all at once.
        Returns the number of events emitted; stops early when the fake is closed.
        """
        lines = parse_recording(Path(source).read_text()) if isinstance(source, (str, Path)) else source
        start = time.monotonic()
        first: float | None = None
        emitted = 0
        for line in lines:
            if first is None:
                first = line.at
            if speed > 0:
                due = start + (line.at - first) / speed
                if self._stop.wait(max(0.0, due - time.monotonic())):
                    break
            elif self._stop.is_set():
                break
            if line.direction == "EVENT":
                self._apply_event(line.text)
                emitted += 1
            elif line.direction == "REPLY":
                sta = parse_sta(line.text)
                if sta is not None:
                    with self._lock:
                        self._stations[sta.mac] = dict(sta.raw)
                        self._connected_at.setdefault(sta.mac, time.monotonic())
        return emitted

    def _apply_event(self, text: str) -> None:
        ev = parse_event(text)
        if ev is not None and ev.mac and ev.kind == "connected":
            with self._lock:
                fields = _default_fields(self._next_aid, ev.keyid, self._rng)
                self._next_aid += 1
                self._stations[ev.mac] = fields
                self._connected_at[ev.mac] = time.monotonic()
        elif ev is not None and ev.mac and ev.kind == "disconnected":
            with self._lock:
                self._stations.pop(ev.mac, None)
                self._connected_at.pop(ev.mac, None)
        self.emit(text)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._sock.close()
        self.socket_path.unlink(missing_ok=True)

    def __enter__(self) -> FakeHostapd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _random_mac(rng: random.Random) -> str:
    # locally administered, unicast: what a phone's randomised per-network MAC looks like
    first = (rng.randrange(256) | 0x02) & 0xFE
    return ":".join(f"{b:02x}" for b in [first, *(rng.randrange(256) for _ in range(5))])


def demo_replay(keyids: Sequence[str], macs: dict[str, str] | None = None, *, guest_keyid: str | None = "guest",
                guests: int = 1, arrival_s: float = 900.0, leavers: int = 2, seed: int = 1) -> Iterator[RecordLine]:
    """A plausible session as recording lines (see the module docstring)."""
    rng = random.Random(seed)
    macs = dict(macs or {})
    arrivals: list[tuple[float, str, str]] = []
    for keyid in keyids:
        t = rng.betavariate(2, 3) * arrival_s  # most arrive in the quarter hour before the start
        arrivals.append((t, macs.get(keyid) or _random_mac(rng), keyid))
        if rng.random() < 0.3:  # a tablet as well
            arrivals.append((t + rng.uniform(5, 120), _random_mac(rng), keyid))
    if guest_keyid:
        for _ in range(guests):
            arrivals.append((rng.uniform(0.2, 1.0) * arrival_s, _random_mac(rng), guest_keyid))
    arrivals.sort()
    lines = [RecordLine(t, "EVENT", f"<3>AP-STA-CONNECTED {mac} keyid={keyid}") for t, mac, keyid in arrivals]
    member_devices = [(t, mac) for t, mac, keyid in arrivals if keyid != guest_keyid]
    for t, mac in rng.sample(member_devices, min(leavers, len(member_devices))):
        lines.append(RecordLine(max(t, arrival_s) + rng.uniform(600, 3600), "EVENT", f"<3>AP-STA-DISCONNECTED {mac}"))
    lines.sort(key=lambda line: line.at)
    yield from lines


def main(socket_path: Path, psk_file: Path | None = None, replay: Path | None = None, speed: float = 1.0) -> int:
    """`sitzungsbox fake-hostapd`: serve until SIGTERM/SIGINT, optionally playing a recording."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        fake = FakeHostapd(socket_path, psk_file=psk_file)
    except OSError as exc:
        print(f"Fehler: Socket {socket_path} kann nicht angelegt werden: {exc}")
        return 2
    print(f"virtuelles Funkmodul (Demo) auf {socket_path}", flush=True)
    if replay is not None:
        try:
            parse_recording(Path(replay).read_text())
        except (OSError, ValueError) as exc:
            print(f"Fehler: Aufzeichnung {replay} nicht lesbar: {exc}")
            fake.close()
            return 2
        threading.Thread(target=fake.replay, args=(replay, speed), daemon=True).start()
    try:
        while not stop.wait(1.0):
            pass
    finally:
        fake.close()
    return 0

