"""Speakers benchmark (issue 13): the real gunicorn app (bench.chat.WebServer: `sitzungsbox web`, its gevent
workers, demo mode's `?as=<ip>` picks the device) with a council of N members, each with an admitted device.

Open at once: every member's start-page push stream (`/events` as that member's device; with --member-refetch,
the default, each one also does what the start page's live-reload.js does on every event: after 1 s and a
random further wait of up to 1 s (data-live-delay, data-live-jitter) it fetches `/wort` again, one fetch at a
time), the chair's console stream (the chair is a member the clerk named, on their own
device) and a room screen's stream (`/saal/<token>/events`, a display link). The member streams run in their
own process at `nice 10` (real phones bring their own CPUs), so the measuring loop is not slowed by them.

Then R members (R different devices) each POST /wort (a request to speak, device-bound CSRF token, no cookie)
spread evenly over one second, while the chair POSTs /vorsitz/weiter (call the next speaker) every
--call-every seconds until the queue is empty. Measured per request, from the moment its POST is sent:

- console: the chair's page does what live-reload.js does: an event on its stream → 200 ms later (events in
  between are gathered) GET /vorsitz → the page swaps in #console-live. Visible = the first console fetch that
  started after the request's own event arrived on the console's stream has come back (what the browser then
  shows), and that page must show the request (its queue row, or its name as the speaker or in the held list).
- room screen: saal.js: an event → 50 ms later GET /saal/<token>. Visible = the first screen fetch started
  after the request's event arrived on the screen's stream has come back; that page must show the request: its
  name (queue's first eight or the speaker), "und N weitere" while it is further back, or it was called and
  finished before (then the screen has moved past it).

p50/p99/max per screen and for "both" (the later of the two, per request); goal p99(both) ≤ 500 ms. The ratio
is our p99(both) over the p99 of bench.chat's real chat posts (a phone POSTs /chat/send, every one of N streams
receives it) measured in the same run with the same N. Memory: the web workers' RSS with E extra room-screen
streams open minus before, over E; then the same for E extra console streams (the chair's device's /events).

    python -m bench.speakers [--members 300] [--requests 100] [--runs 3]  ->  bench/results/speakers.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import re
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from appliance import config as config_mod
from appliance.config import Config
from appliance.usecases.speakers import CHANGED, CURRENT
from bench import chat
from bench.common import RESULTS, http, percentile, write_result

GOAL_P99_S = 0.5
CONSOLE_DELAY = 0.2  # live-reload.js: data-live-delay default (the console sets none)
SCREEN_DELAY = 0.05  # saal.js: soon()
MEMBER_DELAY = 1.0  # portal/_speakers.html: data-live-delay="1000"
MEMBER_JITTER = 1.0  # and data-live-jitter="1000": a random extra wait up to 1 s
LIVE_TOPICS = (CHANGED, CURRENT)  # the console's and the member block's data-live-reload (web/speakers.LIVE_TOPICS)
FACTIONS = ("SPD", "CDU", "Grüne", "FDP", "Linke", "FW")
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def member_ip(i: int) -> str:
    return f"10.78.{1 + i // 250}.{1 + i % 250}"


def member_name(i: int) -> str:
    return f"Ratsmitglied {i:03d}"  # fixed width: no name is a prefix of another


def prepare(n_members: int, **changes) -> tuple[chat.WebServer, str]:
    """A council of n_members (member 0 is the chair), each with an admitted device; a display link. Returns
    the (not yet started) server and the display's token."""
    from appliance.rules.viewer import Viewer
    from appliance.sessions import service
    from appliance.sessions.roster import MemberRow
    from appliance.store import open_db
    from appliance.store.db import now
    from appliance.usecases import displays
    from appliance.usecases import speakers as acts

    root = Path(tempfile.mkdtemp(prefix="sbspk-web-", dir="/tmp"))
    os.chmod(root, 0o711)  # noqa: S103 - the dropped web user must reach its state dir
    cfg = Config(state_dir=root / "state", run_dir=root / "run", helper_socket=root / "run" / "helper.sock",
                 leases_file=root / "state" / "dnsmasq.leases", hostapd_ctrl_dir=root / "hostapd",
                 web_bind="127.0.0.1", web_port=chat.free_port(), web_user="nobody", demo=True,
                 **changes).validate()
    db = open_db(cfg.db_path)
    s = service.create_session(db, body="Rat der Stadt", title="Lasttest Rednerliste", day="2026-12-07")
    service.insert_members(db, s.id, [MemberRow(member_name(i), FACTIONS[i % len(FACTIONS)], "member", True, "Rat")
                                      for i in range(n_members)])
    service.set_active(db, s.id)
    ms = {m.name: m for m in service.members(db, s.id)}
    devices = [(member_ip(i), f"02:5f:00:00:{i >> 8:02x}:{i & 0xff:02x}", ms[member_name(i)])
               for i in range(n_members)]
    cfg.leases_file.write_text("".join(f"0 {mac} {ip} * *\n" for ip, mac, _m in devices))
    with db.conn:
        for ip, mac, m in devices:
            db.execute("INSERT INTO stations(mac, interface, keyid, connected) VALUES (?, 'wlan0', ?, 1)",
                       [mac, m.keyid])
            db.execute("INSERT INTO admissions(session_id, mac, ip, member_id, kind, admitted_at) "
                       "VALUES (?, ?, ?, ?, 'member', ?)", [s.id, mac, ip, m.id, now()])
    assert acts.set_chair(db, Viewer("clerk", s.id), s.id, ms[member_name(0)].id, actor="bench")
    _display, token = displays.create_display(cfg, db, s.id, "bench", "Beamer")
    db.conn.close()
    if os.geteuid() == 0:
        for p in [cfg.state_dir, *cfg.state_dir.iterdir()]:
            os.chown(p, 65534, 65534)
    (root / "web.toml").write_text(config_mod.to_toml(cfg))
    return chat.WebServer(root, cfg, s.id, ms), token


# -- HTTP on loopback (HTTP/1.0: no chunked framing, the connection ends with the answer) -------------------


async def fetch(port: int, path: str, *, method: str = "GET", form: dict | None = None) -> tuple[int, str]:
    status, _head, body = await http(port, method, path, form)
    return status, body.decode(errors="replace")


@dataclass
class Stream:
    """One open push stream, as EventSource: every event with its arrival time."""

    events: list = field(default_factory=list)  # (arrived, id, topic, payload)
    writer: object = None


async def open_stream(port: int, path: str, on_event=None, headers: str = "") -> tuple[Stream, asyncio.Task]:
    """Connect, wait for the answer's headers, then read events in a task. headers: extra header lines, each
    ending in CRLF (a clerk's cookie)."""
    st = Stream()
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n{headers}\r\n".encode())
    await w.drain()
    head = await r.readuntil(b"\r\n\r\n")
    if b" 200 " not in head.split(b"\r\n", 1)[0]:
        raise RuntimeError(f"Stream {path}: {head[:80]!r}")
    st.writer = w

    async def read() -> None:
        buf = b""
        while True:
            chunk = await r.read(65536)
            if not chunk:
                return
            buf += chunk
            while b"\n\n" in buf:
                block, buf = buf.split(b"\n\n", 1)
                ev_id, data = None, None
                for line in block.split(b"\n"):
                    if line.startswith(b"id: "):
                        ev_id = int(line[4:])
                    elif line.startswith(b"data: "):
                        data = json.loads(line[6:])
                if data is not None:
                    ev = (time.time(), ev_id, data.get("topic"), data.get("payload") or {})
                    st.events.append(ev)
                    if on_event is not None:
                        on_event(ev)
    return st, asyncio.create_task(read())


class LiveReload:
    """What a page's script does on its events: gather them for `delay`, then fetch the page once; an event that
    arrives while a fetch is on its way schedules the next one (live-reload.js / saal.js)."""

    def __init__(self, port: int, path: str, delay: float, keep: bool = True, topics: tuple[str, ...] | None = None,
                 jitter: float = 0.0):
        self.port, self.path, self.delay, self.keep, self.topics = port, path, delay, keep, topics
        self.jitter = jitter
        self.busy = self.again = False  # live-reload.js: one fetch at a time, one more after it if asked
        self.pending: asyncio.Task | None = None
        self.fetches: list[tuple[float, float, int, str]] = []  # (started, ended, status, html)
        self.count = 0
        self.errors = 0
        self.tasks: set[asyncio.Task] = set()

    def on_event(self, ev) -> None:
        if ev is not None and self.topics is not None and ev[2] not in self.topics:
            return  # live-reload.js listens to the topics in data-live-reload only (saal.js: to every event)
        if self.pending is None:
            self.pending = asyncio.get_running_loop().create_task(self._later())
            self.tasks.add(self.pending)  # until its fetch came back
            self.pending.add_done_callback(self.tasks.discard)

    async def _later(self) -> None:
        await asyncio.sleep(self.delay + random.random() * self.jitter)
        self.pending = None  # as the scripts do: cleared when the timer fires, before the fetch
        if self.busy:
            self.again = True
            return
        self.busy = True
        started = time.time()
        try:
            status, html = await fetch(self.port, self.path)
        except OSError:
            self.errors += 1
            return
        finally:
            self.busy = False
            if self.again:
                self.again = False
                self.on_event(None)
        self.count += 1
        if status != 200:
            self.errors += 1
        if self.keep:
            self.fetches.append((started, time.time(), status, html))


# -- the members' phones, in their own process ------------------------------------------------------------


def _members_main(port: int, ips: list[str], start: int, refetch: bool, ready, stop, result) -> None:
    # Real phones bring their own CPUs; these share the box's, so they yield to it (as bench.onboarding does).
    os.nice(10)

    async def main() -> None:
        pages = [LiveReload(port, f"/wort?as={ip}", MEMBER_DELAY, keep=False, topics=LIVE_TOPICS, jitter=MEMBER_JITTER)
                 for ip in ips]
        streams = []
        for ip, page in zip(ips, pages, strict=True):
            streams.append(await open_stream(port, f"/events?as={ip}&last_id={start}",
                                             page.on_event if refetch else None))
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.05)
        for s, t in streams:  # the phones close their pages: no new refetch
            t.cancel()
            s.writer.close()
        late = [t for p in pages for t in p.tasks]
        if late:
            await asyncio.wait(late, timeout=30)  # the last refetches come back (or are cut off)
        cut = [t for t in late if not t.done()]
        for t in cut:
            t.cancel()
        if cut:
            await asyncio.wait(cut, timeout=5)
        result.put({"streams": len(streams), "events": sum(len(s.events) for s, _t in streams),
                    "refetches": sum(p.count for p in pages), "refetch_errors": sum(p.errors for p in pages),
                    "refetches_cut_off": len(cut)})
    asyncio.run(main())


# -- one run -----------------------------------------------------------------------------------------------


def _stats(lat: list[float]) -> dict:
    return {"n": len(lat), "p50_ms": round(percentile(lat, 50) * 1000, 1),
            "p99_ms": round(percentile(lat, 99) * 1000, 1), "max_ms": round(max(lat) * 1000, 1) if lat else None}


SCREEN_NAMES = re.compile(r'class="saal-q-name">([^<]*)<|id="saal-speaker">([^<]*)<')


def console_shows(html: str, rid: int, name: str) -> bool:
    live = html.split('id="forms-h"', 1)[0]  # the queue, the speech and the held list; not the forms' pickers
    return f'id="queue-{rid}"' in live or name in live


def screen_shows(html: str, name: str, ended_at: float | None, started: float) -> bool:
    names = {a or b for a, b in SCREEN_NAMES.findall(html)}
    return name in names or 'class="saal-more"' in html or (ended_at is not None and ended_at <= started)


def visible(reload: LiveReload, arrived: float | None, shows) -> float | None:
    """When the page showed the request: the end of the first fetch started after its event arrived (the one the
    script made for it), provided that page shows it."""
    if arrived is None:
        return None
    for started, ended, status, html in reload.fetches:
        if started >= arrived and status == 200:
            return ended if shows(html, started) else None
    return None


def run_once(n_members: int, n_requests: int, call_every: float, extra: int, refetch: bool) -> dict:
    from appliance.push import events as push_events

    load = os.getloadavg()[0]  # the machine may be shared: how busy it was when the run began
    server, token = prepare(n_members)
    server.start()
    ctx = multiprocessing.get_context("fork")
    try:
        db = server.db()
        start = push_events.last_id(db)
        db.conn.close()
        port = server.port
        chair_ip = member_ip(0)
        askers = list(range(1, n_requests + 1))
        ready, stop, result = ctx.Event(), ctx.Event(), ctx.Queue()
        phones = ctx.Process(target=_members_main, daemon=True,
                             args=(port, [member_ip(i) for i in range(1, n_members)], start, refetch, ready, stop,
                                   result))
        phones.start()
        if not ready.wait(120):
            raise RuntimeError("Die Mitglieder-Streams öffnen nicht")

        async def main() -> dict:
            # device-bound CSRF tokens: from each device's own start page, as its form would carry it
            tokens = {}
            for i in [0, *askers]:
                status, html = await fetch(port, f"/?as={member_ip(i)}")
                tokens[i] = TOKEN.search(html).group(1)
            console = LiveReload(port, f"/vorsitz?as={chair_ip}", CONSOLE_DELAY, topics=LIVE_TOPICS)
            screen = LiveReload(port, f"/saal/{token}", SCREEN_DELAY)
            c_stream, c_task = await open_stream(port, f"/events?as={chair_ip}&last_id={start}", console.on_event)
            s_stream, s_task = await open_stream(port, f"/saal/{token}/events?last_id={start}", screen.on_event)
            await asyncio.sleep(1.0)  # every worker settled with every stream open
            sent: dict[int, float] = {}
            statuses: dict[int, int] = {}

            async def ask(k: int, i: int, t0: float) -> None:
                await asyncio.sleep(max(0.0, t0 + k / n_requests - time.time()))
                sent[i] = time.time()
                statuses[i], _html = await fetch(port, f"/wort?as={member_ip(i)}", method="POST",
                                                 form={"csrf_token": tokens[i], "kind": "contribution"})

            calls = {"done": 0, "refused": 0}

            async def chair(asking: asyncio.Future) -> None:
                while True:
                    status, _h = await fetch(port, f"/vorsitz/weiter?as={chair_ip}", method="POST",
                                             form={"csrf_token": tokens[0]})
                    if status == 303:
                        calls["done"] += 1
                    else:
                        calls["refused"] += 1  # 409: nobody waiting (yet)
                        if asking.done():
                            return
                    await asyncio.sleep(call_every)

            t0 = time.time() + 0.05
            asking = asyncio.ensure_future(asyncio.gather(*(ask(k, i, t0) for k, i in enumerate(askers))))
            chairing = asyncio.create_task(chair(asking))
            await asking
            send_span = max(sent.values()) - min(sent.values())
            await chairing
            await asyncio.sleep(CONSOLE_DELAY + 1.0)  # the last refetches come back
            # memory: E extra room screens, then E extra consoles (the chair's device's stream)
            await asyncio.sleep(1.0)
            rss0 = server.rss()
            screens = [await open_stream(port, f"/saal/{token}/events") for _ in range(extra)]
            await asyncio.sleep(1.0)
            rss1 = server.rss()
            consoles = [await open_stream(port, f"/events?as={chair_ip}") for _ in range(extra)]
            await asyncio.sleep(1.0)
            rss2 = server.rss()
            for st, task in [*screens, *consoles, (c_stream, c_task), (s_stream, s_task)]:
                task.cancel()
                st.writer.close()
            return {"console": console, "screen": screen, "c_events": c_stream.events, "s_events": s_stream.events,
                    "sent": sent, "statuses": statuses, "calls": calls, "send_span": send_span,
                    "rss": (rss0, rss1, rss2)}

        out = asyncio.run(main())
        stop.set()
        phones_result = result.get(timeout=60)
        phones.join(10)
        db = server.db()
        rows = db.execute("SELECT r.id, m.name, r.state, r.ended_at FROM speakers_requests r "
                          "JOIN members m ON m.id = r.member_id WHERE r.session_id = ?", [server.session_id]).fetchall()
        db.conn.close()
    finally:
        server.close()
    by_name = {member_name(i): i for i in askers}
    first = {}  # (stream, rid) -> arrival of the request's own event
    for key, evs in (("c", out["c_events"]), ("s", out["s_events"])):
        for arrived, _id, topic, payload in evs:
            if topic == "speakers.changed" and payload.get("what") == "request":
                first.setdefault((key, payload.get("request_id")), arrived)
    lat_c, lat_s, lat_both, missing = [], [], [], []
    order: list[tuple[int, int]] = []  # (sent, ms after the first request; both-screens latency, ms)
    t_first = min(out["sent"].values())
    for rid, name, _state, ended_at in rows:
        t_sent = out["sent"][by_name[name]]
        c = visible(out["console"], first.get(("c", rid)),
                    lambda h, _t, rid=rid, name=name: console_shows(h, rid, name))
        s = visible(out["screen"], first.get(("s", rid)),
                    lambda h, t, name=name, ended_at=ended_at: screen_shows(h, name, ended_at, t))
        if c is None or s is None:
            missing.append({"request": rid, "name": name, "console": c is not None, "screen": s is not None})
            continue
        lat_c.append(c - t_sent)
        lat_s.append(s - t_sent)
        lat_both.append(max(c, s) - t_sent)
        order.append((round((t_sent - t_first) * 1000), round((max(c, s) - t_sent) * 1000)))
    rss0, rss1, rss2 = out["rss"]
    return {
        "load_avg_1min": round(load, 2),
        "requests": len(out["sent"]), "accepted": sum(1 for v in out["statuses"].values() if v == 303),
        "stored": len(rows), "send_span_s": round(out["send_span"], 3),
        "seen_on_console": len(lat_c), "seen_on_screen": len(lat_s), "missing": missing[:10],
        "console": _stats(lat_c), "screen": _stats(lat_s), "both": _stats(lat_both),
        "slowest_5": sorted(order, key=lambda x: -x[1])[:5],  # [sent at ms, latency ms]: a stall or a trend?
        "chair_calls": out["calls"]["done"], "chair_refused": out["calls"]["refused"],
        "console_fetches": out["console"].count, "screen_fetches": out["screen"].count,
        "member_phones": phones_result,
        "rss_before_mb": round(rss0 / 2**20, 1),
        "kib_per_screen_stream": round((rss1 - rss0) / max(extra, 1) / 1024, 1),
        "kib_per_console_stream": round((rss2 - rss1) / max(extra, 1) / 1024, 1),
    }


def spread(values: list[float]) -> dict:
    vals = [v for v in values if v is not None]
    return {"min": min(vals), "median": round(statistics.median(vals), 1), "max": max(vals)} if vals else {}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=300)
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--call-every", type=float, default=0.1, help="seconds between the chair's calls")
    ap.add_argument("--extra", type=int, default=50, help="extra streams opened for the memory figure")
    ap.add_argument("--no-member-refetch", dest="refetch", action="store_false",
                    help="member phones only hold their stream (no /wort refetch per event)")
    ap.add_argument("--chat-messages", type=int, default=20)
    ap.add_argument("--chat-burst", type=int, default=10)
    ap.add_argument("--out", type=Path, default=RESULTS / "speakers.json")
    args = ap.parse_args(argv)
    if not 0 < args.requests < args.members:
        ap.error("--requests muss kleiner sein als --members (Mitglied 0 ist der Vorsitz)")
    runs = []
    for _ in range(args.runs):
        ours = run_once(args.members, args.requests, args.call_every, args.extra, args.refetch)
        base = chat.bench_ours(args.members, args.chat_messages, args.chat_burst)
        ours["chat_posts_latency"] = base["posts_latency"]
        ours["ratio"] = round(ours["both"]["p99_ms"] / base["posts_latency"]["p99_ms"], 2)
        runs.append(ours)
    ok = all(r["both"]["p99_ms"] <= GOAL_P99_S * 1000 and r["seen_on_console"] == r["seen_on_screen"] == r["requests"]
             for r in runs)
    ratio = statistics.median(r["ratio"] for r in runs)
    figures = {
        "members": args.members, "requests": args.requests, "runs": len(runs), "call_every_s": args.call_every,
        "member_refetch": args.refetch, "extra_streams": args.extra,
        "spread": {
            "both_p50_ms": spread([r["both"]["p50_ms"] for r in runs]),
            "both_p99_ms": spread([r["both"]["p99_ms"] for r in runs]),
            "console_p99_ms": spread([r["console"]["p99_ms"] for r in runs]),
            "screen_p99_ms": spread([r["screen"]["p99_ms"] for r in runs]),
            "chat_posts_p99_ms": spread([r["chat_posts_latency"]["p99_ms"] for r in runs]),
            "ratio": spread([r["ratio"] for r in runs]),
            "kib_per_screen_stream": spread([r["kib_per_screen_stream"] for r in runs]),
            "kib_per_console_stream": spread([r["kib_per_console_stream"] for r in runs]),
        },
        "per_run": runs,
    }
    command = (f"python -m bench.speakers --members {args.members} --requests {args.requests} --runs {args.runs} "
               f"--call-every {args.call_every} --extra {args.extra}")
    command += "" if args.refetch else " --no-member-refetch"
    write_result(args.out, name="speakers", ratio=ratio,
                 goal=f"p99 request -> visible on the chair's console and the room screen <= "
                      f"{int(GOAL_P99_S * 1000)} ms; every request seen on both", ok=ok, figures=figures,
                 command=command)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
