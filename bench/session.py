"""Session benchmark (issue 15): a compressed council session on the whole box — 300 devices arrive over minutes,
sit through chat, document downloads, the speakers list and a vote with every stream open, and leave — with the
box's CPU per process and phase, its RSS over time, the errors and every delivery counted.

The box, each part a real process of its own, measured with psutil every few seconds:
- the web: `sitzungsbox web` (gunicorn master + 2 gevent workers, dropped to nobody, demo mode so `?as=<ip>` picks
  the device; bench.chat.WebServer);
- the daemon: `sitzungsbox daemon` as nobody (radio events into `stations`, presence from radio, leases and
  admissions, the housekeeping tick), attached to a FakeHostapd — the radio — in this process;
- the monitor: bench.sessionmonitor, what `sitzungsbox monitor` runs at 1 Hz, as nobody; `iw`'s dumps follow the
  FakeHostapd's stations (written here each second, read by a `cat` subprocess per call).
The phones are one asyncio process at nice 10 (real phones bring their own CPUs), driven by this process; neither
is counted. Per device on arrival, as on the real box: hostapd reports the station with its member's keyid (the
daemon records it), dnsmasq's lease file gets its line, the phone loads the portal (which admits it), its start
page (the device's form token) and holds the start page's push stream; like live-reload.js it refetches its vote
block on `votes.changed` and its speakers block on the speakers topics. The clerk's console holds a stream too.

Phases (the 20-minute session; `--minutes` scales it, `--hours` repeats the cycle idle…votes for a soak):
baseline (box up, nothing connected: the same-run baseline) · arrivals (spread over 80 % of the phase) · idle
(everything connected, nothing happening: the idle goal, after a settle) · chat (members post to the room; every
message must reach every stream) · downloads (a few members fetch the session PDF whole and as ranges) · speakers
(requests from phones, the chair's calls as use cases) · votes (open, every member casts within a second, close) ·
leaving (phones close their stream and leave the radio; presence marks them away after the grace).

    python -m bench.session [--devices 300] [--minutes 20 | --hours 2.5]  ->  bench/results/session.json
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bench import calibrate, chat, speakers, votes
from bench.common import RESULTS, ROOT, http, percentile, write_result
from bench.sessionmonitor import IW_KINDS

GOAL_IDLE_PCT = 1.0  # % of one core: the whole box, every device connected, every stream open, nothing happening
GOAL_STEADY_PCT = 15.0  # % of one core: the whole box over the session's cycle (idle, chat, downloads, speakers, votes)
GOAL_RSS_MB_PER_H = 1.0  # growth of the box's RSS after warm-up, MB per hour of session
TEMPLATE_MIN = {"baseline": 2.0, "arrivals": 4.0, "idle": 4.0, "chat": 2.0, "downloads": 1.5, "speakers": 2.0,
                "votes": 2.0, "leaving": 2.5}  # the 20-minute session
CYCLE = ("idle", "chat", "downloads", "speakers", "votes")
NOBODY = 65534
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
LOG_ERROR = re.compile(r"Traceback|\bERROR\b|\bCRITICAL\b|\[ERROR\]")


def member_ip(i: int) -> str:
    return votes.member_ip(i)


def member_mac(i: int) -> str:
    return f"02:5f:00:00:{i >> 8:02x}:{i & 0xff:02x}"


@dataclass
class Phase:
    name: str
    cycle: int
    seconds: float

    @property
    def label(self) -> str:
        return self.name if self.cycle <= 1 else f"{self.name}#{self.cycle}"


def timeline(minutes: float, hours: float | None = None) -> list[Phase]:
    """The phases in order. Minutes scale the 20-minute template; hours keep its lengths and repeat the cycle."""
    if hours:
        fixed = (TEMPLATE_MIN["baseline"] + TEMPLATE_MIN["arrivals"] + TEMPLATE_MIN["leaving"]) * 60
        cycle = sum(TEMPLATE_MIN[p] for p in CYCLE) * 60
        cycles, scale = max(1, round((hours * 3600 - fixed) / cycle)), 1.0
    else:
        cycles, scale = 1, minutes / 20
    out = [Phase("baseline", 1, TEMPLATE_MIN["baseline"] * 60 * scale),
           Phase("arrivals", 1, TEMPLATE_MIN["arrivals"] * 60 * scale)]
    for c in range(1, cycles + 1):
        out += [Phase(p, c, TEMPLATE_MIN[p] * 60 * scale) for p in CYCLE]
    return [*out, Phase("leaving", 1, TEMPLATE_MIN["leaving"] * 60 * scale)]


def delivery(sent: set, received: list[set]) -> dict:
    """What should have reached each stream (every item of `sent`) against what did."""
    expected = len(sent) * len(received)
    delivered = sum(len(sent & got) for got in received)
    return {"expected": expected, "delivered": delivered, "missing": expected - delivered,
            "complete": delivered == expected}


# -- the box ---------------------------------------------------------------------------------------------------------


class Box:
    """The box's processes on one fresh state dir: web, daemon, monitor; the FakeHostapd radio and the iw dumps."""

    def __init__(self, n: int, grace: float, doc_mb: float) -> None:
        self.password = "bench-" + secrets.token_hex(8)  # the clerk's, for this run's fresh database only
        from appliance import config as config_mod
        from appliance.config import Config, Radio
        from appliance.documents import service as docs
        from appliance.rules.viewer import Viewer
        from appliance.sessions import service
        from appliance.sessions.roster import MemberRow
        from appliance.store import open_db
        from appliance.usecases import login
        from appliance.usecases import speakers as speaker_acts
        from bench.downloads import make_pdf

        self.n = n
        self.root = Path(tempfile.mkdtemp(prefix="sbsession-", dir="/tmp"))
        os.chmod(self.root, 0o711)  # noqa: S103 - the dropped box users must reach their state dir
        r = self.root
        self.cfg = Config(state_dir=r / "state", run_dir=r / "run", helper_socket=r / "run" / "helper.sock",
                          leases_file=r / "state" / "dnsmasq.leases", hostapd_ctrl_dir=r / "hostapd",
                          web_bind="127.0.0.1", web_port=chat.free_port(), web_user="nobody", demo=True,
                          presence_grace=grace, radios=(Radio(interface="wlan0", max_stations=max(n + 10, 10)),)
                          ).validate()
        db = open_db(self.cfg.db_path)
        s = service.create_session(db, body="Rat der Stadt", title="Lasttest Sitzung", day="2026-12-07")
        service.insert_members(db, s.id, [MemberRow(votes.member_name(i), votes.FACTIONS[i % len(votes.FACTIONS)],
                                                    "member", True, "Rat") for i in range(n)])
        service.set_active(db, s.id)
        by_name = {m.name: m for m in service.members(db, s.id)}
        self.members = [by_name[votes.member_name(i)] for i in range(n)]
        assert speaker_acts.set_chair(db, Viewer("clerk", s.id), s.id, self.members[0].id, actor="bench")
        login.set_password(db, self.password)
        blobs = docs.blobs_for(self.cfg.state_dir)
        self.doc = make_pdf(int(doc_mb * 2**20))
        stored = blobs.put_bytes(self.doc)
        item = docs.add_item(db, s.id, "Haushalt 2027")
        fid = docs.add_file(db, s.id, name="haushalt.pdf", stored=stored, mime="application/pdf", item_id=item)
        self.doc_path = f"/unterlagen/datei/{fid}/haushalt.pdf"
        db.conn.close()
        self.session_id = s.id
        self.cfg.leases_file.write_text("")
        self.cfg.run_dir.mkdir(parents=True, exist_ok=True)
        self.iw_dir = r / "iw"
        self.iw_dir.mkdir()
        if os.geteuid() == 0:
            for p in [self.cfg.state_dir, *self.cfg.state_dir.rglob("*"), self.cfg.run_dir]:
                os.chown(p, NOBODY, NOBODY, follow_symlinks=False)
        self.toml = r / "web.toml"  # the name WebServer.start reads
        self.toml.write_text(config_mod.to_toml(self.cfg))
        self.toml.chmod(0o644)
        self.web = chat.WebServer(r, self.cfg, s.id, by_name)
        self.fake = None
        self.daemon: subprocess.Popen | None = None
        self.monitor: subprocess.Popen | None = None
        self.leases: dict[str, str] = {}
        self._stop = threading.Event()
        self._iw_thread: threading.Thread | None = None

    def _spawn(self, argv: list[str], name: str) -> subprocess.Popen:
        """A box process as the box runs it: unprivileged (nobody when we are root), its log in the state dir."""
        drop = {"user": NOBODY, "group": NOBODY, "extra_groups": []} if os.geteuid() == 0 else {}
        with open(self.root / f"{name}.log", "ab") as log:
            return subprocess.Popen([sys.executable, *argv], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                    env={**os.environ, "PYTHONPATH": str(ROOT)}, **drop)

    def start(self) -> None:
        from appliance.monitor.replay import FollowingIw, StatusFakeHostapd

        self.fake = StatusFakeHostapd(self.cfg.hostapd_ctrl_dir / "wlan0", interface="wlan0")
        os.chmod(self.fake.socket_path, 0o666)  # noqa: S103 - the radio's socket: hostapd's group, here everyone
        self.web.start()
        iw = FollowingIw(self.fake, "wlan0")

        def write_dumps() -> None:  # what `iw` would print now; the monitor's `cat` reads it
            while not self._stop.is_set():
                for kind in IW_KINDS:
                    tmp = self.iw_dir / f".{kind}"
                    tmp.write_text(iw(["iw", "dev", "wlan0", kind, "dump"]) or "")
                    os.replace(tmp, self.iw_dir / kind)
                self._stop.wait(1.0)

        self._iw_thread = threading.Thread(target=write_dumps, name="iw-dumps", daemon=True)
        self._iw_thread.start()
        self.daemon = self._spawn(["-m", "appliance.cli", "--config", str(self.toml), "daemon"], "daemon")
        self.monitor = self._spawn(["-m", "bench.sessionmonitor", "--config", str(self.toml), "--iw-dir",
                                    str(self.iw_dir)], "monitor")
        # up when the daemon's radio thread and the monitor have attached (hostapd counts the ATTACHes)
        deadline = time.monotonic() + 30
        while sum(c.startswith("ATTACH") for c in self.fake.commands_received) < 2:
            if time.monotonic() > deadline or self.daemon.poll() is not None or self.monitor.poll() is not None:
                raise RuntimeError(f"Dienst/Überwachung starten nicht: {self.log('daemon')[-800:]} "
                                   f"{self.log('monitor')[-800:]}")
            time.sleep(0.05)

    def processes(self) -> dict[str, psutil.Process]:
        """pid -> process of every box process now (gunicorn's workers by pid: a restarted one is a new one)."""
        out: dict[str, psutil.Process] = {}
        for name, proc in (("daemon", self.daemon), ("monitor", self.monitor)):
            if proc is not None and proc.poll() is None:
                out[name] = psutil.Process(proc.pid)
        if self.web.proc is not None and self.web.proc.poll() is None:
            out["web master"] = psutil.Process(self.web.proc.pid)
            for w in self.web.workers():
                out[f"web worker pid {w.pid}"] = w
        return out

    def log(self, name: str) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def db(self):
        from appliance.store import open_db

        return open_db(self.cfg.db_path, migrate=False)

    def write_leases(self) -> None:
        """dnsmasq rewrites its whole lease file on every change (through a temporary file)."""
        tmp = self.cfg.leases_file.with_name(".leases.tmp")
        tmp.write_text("".join(line + "\n" for line in self.leases.values()))
        os.replace(tmp, self.cfg.leases_file)

    def died(self) -> list[str]:
        return [name for name, p in (("web", self.web.proc), ("daemon", self.daemon), ("monitor", self.monitor))
                if p is None or p.poll() is not None]

    def stop(self) -> None:
        self._stop.set()
        for proc in (self.monitor, self.daemon):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        self.web.stop()
        if self.fake is not None:
            self.fake.close()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


# -- measuring -------------------------------------------------------------------------------------------------------


class Sampler(threading.Thread):
    """Every `every` s (and at every phase boundary): each box process's CPU seconds (user + system; the monitor's
    with its reaped `cat` children) and RSS. Processes are named by role; gunicorn's workers by order of appearance."""

    def __init__(self, box: Box, every: float) -> None:
        super().__init__(daemon=True, name="sampler")
        self.box, self.every = box, every
        self.t0 = time.monotonic()
        self.samples: list[dict] = []
        self.marks: list[tuple[str, int]] = []  # (phase label, index of its first sample)
        self.names: dict[int, str] = {}  # pid -> stable name
        self.last_cpu: dict[str, float] = {}  # a process that ended keeps its last reading
        self._lock = threading.Lock()
        self._quit = threading.Event()

    def _role(self, key: str, p: psutil.Process) -> str:
        if not key.startswith("web worker"):
            return key
        if p.pid not in self.names:
            self.names[p.pid] = f"web worker {sum(1 for n in self.names.values() if n.startswith('web worker')) + 1}"
        return self.names[p.pid]

    def take(self, mark: str | None = None) -> None:
        with self._lock:  # the thread's samples and the bench's marks, one at a time
            cpu, rss = dict(self.last_cpu), {}
            for key, p in self.box.processes().items():
                name = self._role(key, p)
                try:
                    with p.oneshot():
                        t = p.cpu_times()
                        used = t.user + t.system + (t.children_user + t.children_system if name == "monitor" else 0)
                        rss[name] = p.memory_info().rss
                except psutil.Error:
                    continue
                cpu[name] = used
            self.last_cpu = cpu
            self.samples.append({"t": time.monotonic() - self.t0, "cpu": cpu, "rss": rss})
            if mark is not None:
                self.marks.append((mark, len(self.samples) - 1))

    def run(self) -> None:
        while not self._quit.wait(self.every):
            self.take()

    def stop(self) -> None:
        self._quit.set()
        self.join(10)


def cpu_between(a: dict, b: dict, cal: dict) -> dict:
    """Box CPU between two samples: % of one core per process and in total, and the total in calibration units/s."""
    wall = b["t"] - a["t"]
    per = {name: round(100 * (b["cpu"][name] - a["cpu"].get(name, 0.0)) / wall, 3) for name in sorted(b["cpu"])}
    total_s = sum(b["cpu"].values()) - sum(a["cpu"].get(n, 0.0) for n in b["cpu"])
    return {"wall_s": round(wall, 1), "box_pct": round(100 * total_s / wall, 3),
            "units_per_s": calibrate.in_units(1000 * total_s / wall, cal), "per_process_pct": per,
            "rss_mb": {name: round(v / 2**20, 1) for name, v in sorted(b["rss"].items())},
            "box_rss_mb": round(sum(b["rss"].values()) / 2**20, 1)}


def rss_growth(samples: list[dict], process: str | None = None) -> float:
    """Least-squares slope of the box's total RSS (or one process's) over time, MB per hour."""
    pts = [(s["t"] / 3600, (s["rss"].get(process, 0) if process else sum(s["rss"].values())) / 2**20)
           for s in samples]
    if len(pts) < 2:
        return 0.0
    mx, my = statistics.fmean(x for x, _ in pts), statistics.fmean(y for _, y in pts)
    den = sum((x - mx) ** 2 for x, _ in pts)
    return round(sum((x - mx) * (y - my) for x, y in pts) / den, 3) if den else 0.0


# -- the phones (their own process, nice 10) --------------------------------------------------------------------------


class Phone:
    """One member's phone: its form token, its start page's stream and what arrived on it, its two live blocks."""

    def __init__(self, port: int, i: int) -> None:
        self.i, self.ip = i, member_ip(i)
        self.token = ""
        self.stream: speakers.Stream | None = None
        self.task: asyncio.Task | None = None
        self.left = False
        self.dropped = False
        self.chat: set[str] = set()
        self.votes: list[tuple[str, int]] = []
        self.present: list[bool] = []
        self.speakers_events = 0
        self.vote_block = speakers.LiveReload(port, f"/abstimmung?as={self.ip}", votes.MEMBER_DELAY, keep=False,
                                              topics=votes.MEMBER_TOPICS, jitter=votes.MEMBER_JITTER)
        self.word_block = speakers.LiveReload(port, f"/wort?as={self.ip}", speakers.MEMBER_DELAY, keep=False,
                                              topics=speakers.LIVE_TOPICS, jitter=speakers.MEMBER_JITTER)

    def on_event(self, ev) -> None:
        _arrived, _id, topic, payload = ev
        if topic == "chat.message":
            self.chat.add(payload.get("client_id"))
        elif topic == "votes.changed" and payload.get("what") in ("open", "close"):
            self.votes.append((payload["what"], payload.get("vote_id")))
        elif topic == "presence.mine":
            self.present.append(bool(payload.get("present")))
        elif topic in speakers.LIVE_TOPICS:
            self.speakers_events += 1
        self.vote_block.on_event(ev)
        self.word_block.on_event(ev)

    def summary(self) -> dict:
        return {"i": self.i, "chat": sorted(self.chat), "votes": self.votes, "present": self.present,
                "speakers_events": self.speakers_events, "events": len(self.stream.events) if self.stream else 0,
                "dropped": self.dropped, "refetches": self.vote_block.count + self.word_block.count,
                "refetch_errors": self.vote_block.errors + self.word_block.errors}


class Phones:
    """The hall in one asyncio loop; commands come from the bench over a pipe, each answered when done."""

    def __init__(self, port: int, n: int, password: str) -> None:
        self.port, self.password = port, password
        self.phones = [Phone(port, i) for i in range(n)]
        self.statuses: dict[str, dict[str, int]] = {}  # request kind -> status -> count
        self.failures: list[str] = []
        self.arrivals: set[asyncio.Task] = set()
        self.clerk: speakers.Stream | None = None
        self.clerk_task: asyncio.Task | None = None

    def count(self, kind: str, status: int, ok: tuple[int, ...]) -> bool:
        by = self.statuses.setdefault(kind, {})
        by[str(status)] = by.get(str(status), 0) + 1
        if status not in ok:
            self.failures.append(f"{kind}: {status}")
        return status in ok

    async def clerk_console(self, start: int) -> dict:
        """The clerk logs in (cookie session) and holds the console's stream: presence changes arrive there."""
        status, head, body = await http(self.port, "GET", "/clerk/login")
        cookie = _cookie(head)
        token = TOKEN.search(body.decode(errors="replace")).group(1)
        form = {"csrf_token": token, "password": self.password}
        status, head, _b = await http(self.port, "POST", "/clerk/login", form, headers=f"Cookie: {cookie}\r\n")
        self.count("clerk login", status, (302, 303))
        cookie = _cookie(head) or cookie
        self.clerk, self.clerk_task = await speakers.open_stream(self.port, f"/events?last_id={start}",
                                                                 headers=f"Cookie: {cookie}\r\n")
        return {"ok": True}

    async def arrive(self, i: int, last_id: int) -> dict:
        ph = self.phones[i]
        try:
            status, _h, _b = await http(self.port, "GET", f"/portal?as={ph.ip}")  # admits the member's device
            self.count("portal", status, (200,))
            status, _h, page = await http(self.port, "GET", f"/?as={ph.ip}")
            self.count("start page", status, (200,))
            ph.token = TOKEN.search(page.decode(errors="replace")).group(1)
            ph.stream, ph.task = await speakers.open_stream(self.port, f"/events?as={ph.ip}&last_id={last_id}",
                                                            ph.on_event)
        except (OSError, RuntimeError, AttributeError) as exc:
            self.failures.append(f"arrive {i}: {exc!r}")
        return {}

    async def sync(self) -> dict:
        if self.arrivals:
            await asyncio.wait(self.arrivals, timeout=120)
        return {"streams": sum(1 for p in self.phones if p.task is not None and not p.task.done())}

    async def chat(self, posts: list[tuple[int, str]], spacing: float) -> dict:
        for i, client_id in posts:
            ph = self.phones[i]
            try:
                status, _h, _b = await http(self.port, "POST", f"/chat/send?as={ph.ip}",
                                            {"csrf_token": ph.token, "room": "all", "client_id": client_id,
                                             "body": f"Wortmeldung {client_id}"}, headers="X-Sitzungsbox-Chat: 1\r\n")
                self.count("chat post", status, (201,))
            except OSError as exc:
                self.failures.append(f"chat {client_id}: {exc!r}")
            await asyncio.sleep(spacing)
        return {}

    async def downloads(self, who: list[int], path: str, size: int, ranges: int) -> dict:
        """Each reader fetches the whole PDF, then `ranges` ranges of 256 KiB (a viewer paging)."""
        moved = [0]

        async def one(i: int) -> None:
            ph = self.phones[i]
            status, _h, body = await http(self.port, "GET", f"{path}?as={ph.ip}")
            if self.count("download", status, (200,)) and len(body) != size:
                self.failures.append(f"download {i}: {len(body)} of {size} bytes")
            moved[0] += len(body)
            for k in range(ranges):
                a = (k * 7919 * 4096) % max(1, size - 2**18)
                status, _h, body = await http(self.port, "GET", f"{path}?as={ph.ip}",
                                              headers=f"Range: bytes={a}-{a + 2**18 - 1}\r\n")
                if self.count("range", status, (206,)) and len(body) != 2**18:
                    self.failures.append(f"range {i}: {len(body)} bytes")
                moved[0] += len(body)

        results = await asyncio.gather(*(one(i) for i in who), return_exceptions=True)
        self.failures += [f"download: {r!r}" for r in results if isinstance(r, BaseException)]
        return {"bytes": moved[0]}

    async def speak(self, asks: list[int], spacing: float) -> dict:
        for i in asks:
            ph = self.phones[i]
            try:
                status, _h, _b = await http(self.port, "POST", f"/wort?as={ph.ip}",
                                            {"csrf_token": ph.token, "kind": "contribution"})
                self.count("speaker request", status, (303,))
            except OSError as exc:
                self.failures.append(f"speak {i}: {exc!r}")
            await asyncio.sleep(spacing)
        return {}

    async def cast(self, vote_id: int, plan: list[tuple[int, int, str]], t0: float) -> dict:
        casts = [(f"/abstimmung?as={self.phones[i].ip}",
                  {"csrf_token": self.phones[i].token, "vote_id": vote_id, "member_id": mid, "choice": choice,
                   "key": secrets.token_hex(12)}) for i, mid, choice in plan]
        answers = await votes.burst(self.port, casts, t0)
        acked = 0
        for a, (_path, form) in zip(answers, casts, strict=True):
            if self.count("cast", a["status"], (200,)) and a["answer"] and a["answer"].get("choice") == form["choice"]:
                acked += 1
        lat = [a["answered"] - a["sent"] for a in answers if a["status"] == 200]
        return {"casts": len(casts), "acknowledged": acked,
                "p99_ms": round(percentile(lat, 99) * 1000, 1) if lat else None}

    async def settle(self, timeout: float) -> dict:
        """Until every live block's refetch has come back (what a phase leaves behind is not the next one's)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not any(b.tasks for p in self.phones for b in (p.vote_block, p.word_block)):
                return {"settled": True}
            await asyncio.sleep(0.1)
        return {"settled": False}

    async def leave(self, i: int) -> dict:
        ph = self.phones[i]
        ph.left = True
        if ph.task is not None:
            ph.dropped = ph.task.done()  # ended before the phone left: the server closed it
            ph.task.cancel()
            ph.stream.writer.close()
        return {}

    def report(self) -> dict:
        clerk = []
        if self.clerk is not None:
            clerk = [(p.get("member_id"), p.get("change")) for _a, _id, topic, p in self.clerk.events
                     if topic == "presence.changed"]
        if self.clerk_task is not None:
            self.clerk_task.cancel()
        for ph in self.phones:
            if ph.task is not None and not ph.left:
                ph.dropped = ph.task.done()
        return {"phones": [p.summary() for p in self.phones], "statuses": self.statuses,
                "failures": self.failures, "clerk_presence": clerk,
                "clerk_dropped": self.clerk_task is not None and self.clerk_task.done() and
                not self.clerk_task.cancelled()}


def _cookie(head: str) -> str:
    m = re.search(r"(?im)^set-cookie:\s*([^;\r\n]+)", head)
    return m.group(1) if m else ""


def _phones_main(conn, port: int, n: int, password: str) -> None:
    os.nice(10)  # real phones bring their own CPUs; these share the box's, so they yield to it

    async def main() -> None:
        hall = Phones(port, n, password)
        inbox: asyncio.Queue = asyncio.Queue()
        loop = asyncio.get_running_loop()
        loop.add_reader(conn.fileno(), lambda: inbox.put_nowait(conn.recv()))
        tasks: set[asyncio.Task] = set()

        async def handle(cid: int, name: str, args: tuple) -> None:
            try:
                result = await getattr(hall, name)(*args)
            except Exception as exc:  # noqa: BLE001 - reported to the bench, which counts it as an error
                hall.failures.append(f"{name}: {exc!r}")
                result = {"error": repr(exc)}
            conn.send((cid, result))

        while True:
            cid, name, args = await inbox.get()
            if name == "report":
                conn.send((cid, hall.report()))
                return
            task = loop.create_task(handle(cid, name, args))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            if name == "arrive":
                hall.arrivals.add(task)

    asyncio.run(main())


class Hall:
    """The bench's end of the pipe: send a command, or call one and wait for its answer."""

    def __init__(self, port: int, n: int, password: str) -> None:
        ctx = multiprocessing.get_context("spawn")  # no inherited threads or database connections
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_phones_main, args=(child, port, n, password), daemon=True)
        self.proc.start()
        self.next_id = 0
        self.answers: dict[int, dict] = {}

    def send(self, name: str, *args) -> int:
        self.next_id += 1
        self.conn.send((self.next_id, name, args))
        return self.next_id

    def wait(self, cid: int, timeout: float = 300) -> dict:
        deadline = time.monotonic() + timeout
        while cid not in self.answers:
            if not self.conn.poll(max(0.0, deadline - time.monotonic())):
                raise RuntimeError(f"Die Telefone antworten nicht (Befehl {cid})")
            got, result = self.conn.recv()
            self.answers[got] = result
        return self.answers.pop(cid)

    def call(self, name: str, *args, timeout: float = 300) -> dict:
        return self.wait(self.send(name, *args), timeout)

    def close(self) -> None:
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()


# -- the session -----------------------------------------------------------------------------------------------------


@dataclass
class Run:
    box: Box
    hall: Hall
    sampler: Sampler
    rng: random.Random
    args: argparse.Namespace
    facts: dict = field(default_factory=dict)

    def until(self, t: float) -> None:
        time.sleep(max(0.0, t - time.monotonic()))

    def db(self):
        return self.box.db()


def phase_baseline(run: Run, ph: Phase, t0: float) -> None:
    run.until(t0 + ph.seconds)


def phase_arrivals(run: Run, ph: Phase, t0: float) -> None:
    from appliance.push import events as push_events

    box, n = run.box, run.box.n
    order = list(range(n))
    run.rng.shuffle(order)
    expiry = int(time.time()) + 12 * 3600
    waits: list[float] = []
    db = run.db()
    try:
        run.hall.call("clerk_console", push_events.last_id(db))
        for k, i in enumerate(order):
            run.until(t0 + 0.8 * ph.seconds * k / n)
            mac, keyid = member_mac(i), box.members[i].keyid
            start = push_events.last_id(db)  # the phone's stream resumes from before its arrival
            box.leases[mac] = f"{expiry} {mac} {member_ip(i)} * *"
            box.write_leases()
            t = time.monotonic()
            box.fake.connect(mac, keyid)  # hostapd: AP-STA-CONNECTED <mac> keyid=<member's key>
            deadline = t + 10
            while db.execute("SELECT connected FROM stations WHERE mac = ?", [mac]).fetchone() != (1,):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Station {mac} nicht vom Dienst erfasst")
                time.sleep(0.01)
            waits.append(time.monotonic() - t)
            run.hall.send("arrive", i, start)
        run.facts["arrivals"] = {"station_recorded": {"p50_ms": round(percentile(waits, 50) * 1000, 1),
                                                      "max_ms": round(max(waits) * 1000, 1)},
                                 "streams_open": run.hall.call("sync")["streams"]}
        deadline = time.monotonic() + max(30.0, ph.seconds)
        while (present := db.execute("SELECT COUNT(*) FROM presence_intervals WHERE session_id = ? AND end IS NULL",
                                     [box.session_id]).fetchone()[0]) < n and time.monotonic() < deadline:
            time.sleep(0.1)
        run.facts["arrivals"]["present_after_s"] = round(time.monotonic() - t0, 1)
        run.facts["arrivals"]["present"] = present
    finally:
        db.conn.close()
    run.until(t0 + ph.seconds)


def phase_idle(run: Run, ph: Phase, t0: float) -> None:
    settle = min(20.0, 0.2 * ph.seconds)  # the arrivals' replays and refetches die down first
    run.until(t0 + settle)
    run.sampler.take(mark=f"{ph.label} (measured)")
    run.until(t0 + ph.seconds)


def phase_chat(run: Run, ph: Phase, t0: float) -> None:
    m = run.args.messages
    posts = [(run.rng.randrange(run.box.n), f"session-c{ph.cycle}-{k:05d}") for k in range(m)]  # chat.rules: 8-64 chars
    run.facts.setdefault("chat_sent", []).extend(cid for _i, cid in posts)
    run.hall.call("chat", posts, 0.7 * ph.seconds / max(1, m), timeout=ph.seconds + 120)
    run.until(t0 + ph.seconds)


def phase_downloads(run: Run, ph: Phase, t0: float) -> None:
    who = run.rng.sample(range(run.box.n), min(run.args.readers, run.box.n))
    got = run.hall.call("downloads", who, run.box.doc_path, len(run.box.doc), 4, timeout=ph.seconds + 300)
    run.facts.setdefault("downloads", []).append({"readers": len(who), "bytes": got.get("bytes"),
                                                  "took_s": round(time.monotonic() - t0, 1)})
    run.until(t0 + ph.seconds)


def phase_speakers(run: Run, ph: Phase, t0: float) -> None:
    from appliance.rules.viewer import Viewer
    from appliance.usecases import speakers as acts

    sid = run.box.session_id
    asks = run.rng.sample(range(1, run.box.n), min(run.args.requests, run.box.n - 1))
    ask = run.hall.send("speak", asks, 0.3 * ph.seconds / max(1, len(asks)))
    clerk = Viewer("clerk", sid)
    calls = refused = 0
    db = run.db()
    try:
        run.until(t0 + 0.1 * ph.seconds)
        for k in range(len(asks)):  # the chair gives the floor, one after the other
            run.until(t0 + 0.1 * ph.seconds + 0.6 * ph.seconds * k / len(asks))
            if acts.call_next(db, clerk, sid, now=time.time(), actor="bench"):
                calls += 1
            else:
                refused += 1
        run.hall.wait(ask, timeout=ph.seconds + 60)
        for _ in range(len(asks)):  # whoever the pacing left waiting
            if not acts.call_next(db, clerk, sid, now=time.time(), actor="bench"):
                break
            calls += 1
        acts.end_speech(db, clerk, sid, now=time.time(), actor="bench")
    finally:
        db.conn.close()
    run.facts.setdefault("speakers", []).append({"requests": len(asks), "calls": calls, "refused_calls": refused})
    run.until(t0 + ph.seconds)


def phase_votes(run: Run, ph: Phase, t0: float) -> None:
    from appliance.rules.viewer import Viewer
    from appliance.usecases import votes as acts

    sid, n = run.box.session_id, run.box.n
    clerk = Viewer("clerk", sid)
    db = run.db()
    try:
        t_open = time.time()
        opened = acts.open_vote(db, clerk, sid, question=f"Beschluss {ph.cycle}", now=t_open)
        if not opened:
            raise RuntimeError(opened.text)
        vid = opened.vote_id
        plan = [(i, run.box.members[i].id, votes.CHOICES[i % 3]) for i in range(n)]
        answer = run.hall.call("cast", vid, plan, t_open + 0.2, timeout=ph.seconds + 120)
        # counted before the close: an open vote forgets who cast what when it ends (usecases.votes)
        ballots = dict(db.execute("SELECT member_id, choice FROM vote_ballots WHERE vote_id = ?", [vid]).fetchall())
        cast_count, = db.execute("SELECT cast_count FROM votes WHERE id = ?", [vid]).fetchone()
        right = sum(1 for _i, mid, choice in plan if ballots.get(mid) == choice)
        run.until(t0 + 0.6 * ph.seconds)
        closed = acts.close_vote(db, clerk, sid, now=time.time(), vote_id=vid)
        if not closed:
            raise RuntimeError(closed.text)
    finally:
        db.conn.close()
    run.facts.setdefault("votes", []).append({"vote_id": vid, **answer, "ballots_right": right,
                                              "cast_count": cast_count,
                                              "counted_once": right == cast_count == len(ballots) == n})
    run.until(t0 + ph.seconds)


def phase_leaving(run: Run, ph: Phase, t0: float) -> None:
    box, n = run.box, run.box.n
    run.hall.call("settle", 30.0)
    order = list(range(n))
    run.rng.shuffle(order)
    for k, i in enumerate(order):
        run.until(t0 + 0.4 * ph.seconds * k / n)
        run.hall.send("leave", i)  # the phone closes its page, then leaves the radio
        box.fake.disconnect(member_mac(i))
    db = run.db()
    try:
        deadline = time.monotonic() + ph.seconds + box.cfg.presence_grace + 30
        while (still := db.execute("SELECT COUNT(*) FROM presence_intervals WHERE session_id = ? AND end IS NULL",
                                   [box.session_id]).fetchone()[0]) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        db.conn.close()
    run.facts["leaving"] = {"still_present": still, "all_away_after_s": round(time.monotonic() - t0, 1)}
    run.until(t0 + ph.seconds)


PHASES = {"baseline": phase_baseline, "arrivals": phase_arrivals, "idle": phase_idle, "chat": phase_chat,
          "downloads": phase_downloads, "speakers": phase_speakers, "votes": phase_votes, "leaving": phase_leaving}


def session(args: argparse.Namespace, phases: list[Phase]) -> dict:
    """Run the session; returns the raw material: samples and marks, the phones' report, facts, logs."""
    leaving = next(p for p in phases if p.name == "leaving")
    grace = max(1.0, 0.3 * leaving.seconds)  # compressed like the session: leaving is seen within the phase
    box = Box(args.devices, grace, args.doc_mb)
    hall = Hall(box.cfg.web_port, args.devices, box.password)  # before the box's threads: nothing of them is inherited
    try:
        box.start()
        sampler = Sampler(box, args.sample_every)
        run = Run(box, hall, sampler, random.Random(15), args)
        os.nice(10)  # the bench's own work (radio, dumps, orchestration) yields to the box, as the phones do
        sampler.take(mark="start")
        sampler.start()
        for ph in phases:
            sampler.take(mark=ph.label)
            PHASES[ph.name](run, ph, time.monotonic())
            print(f"{time.strftime('%H:%M:%S')} {ph.label} fertig", file=sys.stderr, flush=True)
        sampler.take(mark="end")
        sampler.stop()
        died = box.died()
        report = hall.call("report", timeout=60)
        db = box.db()
        try:
            intervals = db.execute("SELECT COUNT(*), COUNT(end) FROM presence_intervals WHERE session_id = ?",
                                   [box.session_id]).fetchone()
        finally:
            db.conn.close()
        box.stop()
        logs = {name: box.log(name) for name in ("web", "daemon", "monitor")}
        return {"samples": sampler.samples, "marks": sampler.marks, "report": report, "facts": run.facts,
                "intervals": intervals, "died": died, "logs": logs, "grace": grace}
    finally:
        hall.close()
        box.close()


def figures_of(raw: dict, phases: list[Phase], cal: dict) -> dict:
    samples, marks = raw["samples"], raw["marks"]
    idx = dict(marks)
    labels = [m for m, _i in marks]
    per_phase = {}
    for k, (label, i) in enumerate(marks[:-1]):
        if label == "start":
            continue
        j = marks[k + 1][1]
        per_phase[label] = cpu_between(samples[i], samples[j], cal)
    cycle_labels = [p.label for p in phases if p.name in CYCLE]
    first, after = cycle_labels[0], next(p.label for p in phases if p.name == "leaving")
    steady = cpu_between(samples[idx[first]], samples[idx[after]], cal)
    idle = per_phase["idle (measured)"]
    # RSS growth after warm-up: from the first idle on (with several cycles: from the second, when every act has run
    # once), to the start of leaving
    warm = next((p.label for p in phases if p.name == "idle" and p.cycle == 2), first)
    fit = samples[idx[warm]:idx[after] + 1]
    report = raw["report"]
    phones = report["phones"]
    sent = set(raw["facts"].get("chat_sent", []))
    vote_ids = [v["vote_id"] for v in raw["facts"].get("votes", [])]
    vote_events = {(what, vid) for vid in vote_ids for what in ("open", "close")}
    n = len(phones)
    clerk = report["clerk_presence"]
    arrived = {m for m, c in clerk if c == "arrive"}
    left = {m for m, c in clerk if c == "leave"}
    deliveries = {
        "chat": {"messages": len(sent), "streams": n, **delivery(sent, [set(p["chat"]) for p in phones])},
        "votes": {"votes": len(vote_ids), **delivery(vote_events, [set(map(tuple, p["votes"])) for p in phones]),
                  "counted_once": all(v["counted_once"] for v in raw["facts"].get("votes", []))},
        "presence": {"own_arrival_on_phone": sum(1 for p in phones if True in p["present"]),
                     "clerk_saw_arrive": len(arrived), "clerk_saw_leave": len(left),
                     "intervals_opened": raw["intervals"][0], "intervals_closed": raw["intervals"][1]},
        "speakers_events_per_phone": {"min": min((p["speakers_events"] for p in phones), default=0),
                                      "max": max((p["speakers_events"] for p in phones), default=0)},
    }
    pres = deliveries["presence"]
    pres["complete"] = (pres["own_arrival_on_phone"] == pres["clerk_saw_arrive"] == pres["clerk_saw_leave"]
                        == pres["intervals_opened"] == pres["intervals_closed"] == n)
    log_errors = {name: [line for line in text.splitlines() if LOG_ERROR.search(line)][:5] +
                  ([f"... {c - 5} more"] if (c := sum(1 for line in text.splitlines() if LOG_ERROR.search(line))) > 5
                   else []) for name, text in raw["logs"].items()}
    worker_names = {name for s in samples for name in s["cpu"] if name.startswith("web worker")}
    http_failures = report["failures"]
    errors = {"http_and_phones": len(http_failures), "first": http_failures[:10],
              "stream_drops": sum(1 for p in phones if p["dropped"]) + int(report["clerk_dropped"]),
              "refetch_errors": sum(p["refetch_errors"] for p in phones),
              "log_error_lines": {k: v for k, v in log_errors.items() if v},
              "processes_died": raw["died"], "worker_restarts": max(0, len(worker_names) - 2)}
    errors["total"] = (errors["http_and_phones"] + errors["stream_drops"] + errors["refetch_errors"]
                       + sum(1 for v in log_errors.values() for _ in v) + len(raw["died"]) + errors["worker_restarts"])
    step = max(1, len(samples) // 200)
    rss_series = [[round(s["t"], 1), round(sum(s["rss"].values()) / 2**20, 1),
                   {k: round(v / 2**20, 1) for k, v in sorted(s["rss"].items())}] for s in samples[::step]]
    return {
        "baseline": per_phase["baseline"], "idle": idle, "steady": steady, "phases": per_phase,
        "phase_order": [m for m in labels if m not in ("start", "end")],
        "rss": {"growth_mb_per_h": rss_growth(fit), "fit_from": warm, "fit_to": after, "fit_samples": len(fit),
                "growth_mb_per_h_per_process": {name: rss_growth(fit, name) for name in sorted(fit[-1]["rss"])},
                # the quiet part alone: growth that no request explains
                "idle_growth_mb_per_h": rss_growth(samples[idx["idle (measured)"]:idx[cycle_labels[1]] + 1]),
                "box_mb_start": rss_series[0][1], "box_mb_end": rss_series[-1][1],
                "series_t_s_box_mb_per_process": rss_series},
        "deliveries": deliveries, "errors": errors,
        "acts": {k: v for k, v in raw["facts"].items() if k != "chat_sent"},
        "requests": report["statuses"],
        "refetches": sum(p["refetches"] for p in phones),
        "presence_grace_s": raw["grace"],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=300)
    ap.add_argument("--minutes", type=float, default=20.0, help="the whole session (the 20-minute plan scaled)")
    ap.add_argument("--hours", type=float, help="soak: keep the phase lengths and repeat the cycle for this long")
    ap.add_argument("--messages", type=int, default=60, help="chat messages per cycle")
    ap.add_argument("--requests", type=int, default=20, help="requests to speak per cycle")
    ap.add_argument("--readers", type=int, default=10, help="members downloading the PDF per cycle")
    ap.add_argument("--doc-mb", type=float, default=5.0)
    ap.add_argument("--sample-every", type=float, default=2.0, help="seconds between CPU/RSS samples")
    ap.add_argument("--out", type=Path, default=RESULTS / "session.json")
    args = ap.parse_args(argv)
    if args.devices < 2:
        ap.error("--devices muss mindestens 2 sein (Mitglied 0 ist der Vorsitz)")
    phases = timeline(args.minutes, args.hours)
    load0 = os.getloadavg()[0]
    cal = calibrate.measure()  # before the box runs: the unit on a machine this busy
    raw = session(args, phases)
    cal_after = calibrate.measure()
    f = figures_of(raw, phases, cal)
    f = {"devices": args.devices, "minutes": round(sum(p.seconds for p in phases) / 60, 2),
         "cycles": max(p.cycle for p in phases), "sample_every_s": args.sample_every,
         "load_avg_1min": {"start": round(load0, 2), "end": round(os.getloadavg()[0], 2)},
         "calibration": {"unit_cpu_ms": cal["unit_cpu_ms"], "before": cal, "after": cal_after}, **f}
    d = f["deliveries"]
    goals = {
        "idle_pct_le_1": f["idle"]["box_pct"] <= GOAL_IDLE_PCT,
        "steady_pct_le_15": f["steady"]["box_pct"] <= GOAL_STEADY_PCT,
        "rss_growth_le_1_mb_per_h": f["rss"]["growth_mb_per_h"] <= GOAL_RSS_MB_PER_H,
        "zero_errors": f["errors"]["total"] == 0,
        "everything_delivered": d["chat"]["complete"] and d["votes"]["complete"] and d["votes"]["counted_once"]
        and d["presence"]["complete"],
    }
    f["goals_met"] = goals
    base = f["baseline"]["box_pct"]
    ratio = round(f["idle"]["box_pct"] / base, 3) if base > 0 else 0.0
    command = f"python -m bench.session --devices {args.devices} " + (
        f"--hours {args.hours:g}" if args.hours else f"--minutes {args.minutes:g}")
    write_result(args.out, name="session", ratio=ratio,
                 goal=f"whole box (web, daemon, monitor) idle with every device connected and every stream open <= "
                      f"{GOAL_IDLE_PCT:g} % of one core; steady state over the session's cycle <= "
                      f"{GOAL_STEADY_PCT:g} %; RSS growth after warm-up <= {GOAL_RSS_MB_PER_H:g} MB/h; zero errors; "
                      f"every chat message, vote and presence change delivered. ratio = idle connected / the same "
                      f"box idle with nothing connected (same run)", ok=all(goals.values()), figures=f, command=command)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
