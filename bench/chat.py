"""Push/chat benchmark: N concurrent push clients on loopback against the real gunicorn app (serve.py's path,
cfg.web_workers gevent workers), and a minimal asyncio push server as the baseline in the same run.

For each server: N clients hold an SSE stream; then M messages go to everyone, one after another, each
stamped with its send time. Measured: per-delivery latency (send -> a client parsed it) p50/p99/max, the
delivery rate when a burst of messages goes out at once, and the server's memory per connection (RSS with
N idle streams minus RSS before them, over N).

Our messages are stored push events (publish(): SQLite, read by each worker's single poller) and, measured
separately (`posts_latency`), real chat posts: a member's phone POSTs /chat/send (CSRF, rate limit, SQLite
commit, push) and every client receives the message. The baseline just fans out in memory what it is handed,
the floor of what any server can do.

    python -m bench.chat [--clients 300] [--messages 50]  ->  bench/results/chat.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil

from appliance import config as config_mod
from appliance.config import Config
from bench.common import percentile, write_result

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
GOAL_P99_S = 0.2
GOAL_RATIO = 0.5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def guest_ip(i: int) -> str:
    return f"10.77.{1 + i // 250}.{1 + i % 250}"


@dataclass
class WebServer:
    """The real `sitzungsbox web` (gunicorn, gevent workers) on loopback in demo mode: `?as=<ip>` picks
    which of the prepared devices a request comes from, everything else is the production path."""

    root: Path
    cfg: Config
    session_id: int
    members: dict
    proc: subprocess.Popen | None = None

    @classmethod
    def prepare(cls, n_guests: int, *, workers: int = 2, **changes) -> WebServer:
        from appliance.sessions import service
        from appliance.sessions.roster import MemberRow
        from appliance.store import open_db
        from appliance.store.db import now

        root = Path(tempfile.mkdtemp(prefix="sbp-web-", dir="/tmp"))
        os.chmod(root, 0o711)  # noqa: S103 - the dropped web user must reach its state dir
        cfg = Config(state_dir=root / "state", run_dir=root / "run", helper_socket=root / "run" / "helper.sock",
                     leases_file=root / "state" / "dnsmasq.leases", hostapd_ctrl_dir=root / "hostapd",
                     web_bind="127.0.0.1", web_port=free_port(), web_user="nobody", demo=True,
                     web_workers=workers, **changes).validate()
        db = open_db(cfg.db_path)
        s = service.create_session(db, body="Rat", title="Lasttest", day="2026-11-24")
        service.insert_members(db, s.id, [MemberRow("Anna Schmidt", "SPD", "member", True, "Rat"),
                                          MemberRow("Bernd Müller", "CDU", "member", True, "Rat")])
        service.set_active(db, s.id)
        ms = {m.name.split()[0]: m for m in service.members(db, s.id)}
        devices = [("10.77.0.10", "02:5d:00:00:00:01", ms["Anna"]), ("10.77.0.11", "02:5d:00:00:00:02", ms["Bernd"])]
        devices += [(guest_ip(i), f"02:5e:00:00:{i >> 8:02x}:{i & 0xff:02x}", None) for i in range(n_guests)]
        cfg.leases_file.write_text("".join(f"0 {mac} {ip} * *\n" for ip, mac, _m in devices))
        with db.conn:
            for ip, mac, m in devices:
                db.execute("INSERT INTO stations(mac, interface, keyid, connected) VALUES (?, 'wlan0', ?, 1)",
                           [mac, m.keyid if m else "guest"])
                db.execute("INSERT INTO admissions(session_id, mac, ip, member_id, kind, admitted_at) "
                           "VALUES (?, ?, ?, ?, ?, ?)", [s.id, mac, ip, m.id if m else None,
                                                          "member" if m else "guest", now()])
        db.conn.close()
        if os.geteuid() == 0:
            for p in [cfg.state_dir, *cfg.state_dir.iterdir()]:
                os.chown(p, 65534, 65534)
        (root / "web.toml").write_text(config_mod.to_toml(cfg))
        return cls(root, cfg, s.id, ms)

    @property
    def port(self) -> int:
        return self.cfg.web_port

    def start(self, timeout: float = 30) -> WebServer:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        log = open(self.root / "web.log", "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen([sys.executable, "-m", "appliance.cli", "--config", str(self.root / "web.toml"),
                                      "web"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as resp:  # noqa: S310
                    if resp.read() == b"ok":
                        return self
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Web-Anwendung startet nicht: {self.log()[-1500:]}")
            try:
                self.proc.wait(0.1)
            except subprocess.TimeoutExpired:
                pass

    def log(self) -> str:
        path = self.root / "web.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def workers(self) -> list[psutil.Process]:
        assert self.proc is not None
        return psutil.Process(self.proc.pid).children()

    def rss(self) -> int:
        return sum(p.memory_info().rss for p in self.workers())

    def kill(self, sig: int = 9) -> None:
        """Kill the master and its workers at once (a crash, not a shutdown)."""
        if self.proc is None:
            return
        procs = [*self.workers(), psutil.Process(self.proc.pid)]
        for p in procs:
            try:
                p.send_signal(sig)
            except psutil.NoSuchProcess:
                pass
        self.proc.wait(15)
        psutil.wait_procs(procs, timeout=10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def db(self):
        from appliance.store import open_db
        return open_db(self.cfg.db_path, migrate=False)


# -- baseline: the smallest asyncio SSE fan-out server ---------------------------------------------------

BASELINE_SERVER = r'''
import asyncio, sys
clients = set()
async def handle(reader, writer):
    head = await reader.readuntil(b"\r\n\r\n")
    if head.startswith(b"POST"):
        n = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0].split(b":")[1])
        body = await reader.readexactly(n)
        frame = b"data: " + body + b"\n\n"
        for w in list(clients):
            w.write(frame)
        writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"); await writer.drain(); writer.close()
        return
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n: ok\n\n")
    clients.add(writer)
    try:
        await reader.read()
    finally:
        clients.discard(writer)
async def main():
    srv = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]), backlog=1024)
    print("ready", flush=True)
    async with srv:
        await srv.serve_forever()
asyncio.run(main())
'''


STAMP = b'"t":'  # publish(): the payload carries the send time; real posts carry it in the text
POST_STAMP = b'"body":"bench '


def _stamp(block: bytes) -> float | None:
    for key in (STAMP, POST_STAMP):
        i = block.find(key)
        if i >= 0:
            j = i + len(key)
            while block[j:j + 1] == b" ":  # json.dumps writes '"t": 1.2'
                j += 1
            k = j
            while k < len(block) and block[k:k + 1] in b"0123456789.":
                k += 1
            return float(block[j:k])
    return None


async def _client(port: int, path: str, got: list, expect: int, ready: asyncio.Event, counter: list) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n".encode())
    await writer.drain()
    await reader.readuntil(b"\r\n\r\n")
    counter[0] += 1
    if counter[0] == counter[1]:
        ready.set()
    buf = b""
    n = 0
    while n < expect:
        chunk = await reader.read(65536)
        if not chunk:
            break
        buf += chunk
        while b"\n\n" in buf:
            block, buf = buf.split(b"\n\n", 1)
            t = _stamp(block)
            if t is not None:
                got.append(time.time() - t)
                n += 1
    writer.close()


def _run_clients(port: int, paths: list[str], expect: int, send, timeout: float = 120) -> tuple[list[float], float]:
    """Connect every client, call send() (a coroutine factory) once all are connected; returns latencies and
    the wall time of the sending phase until the last delivery."""
    async def main() -> tuple[list[float], float]:
        got: list[float] = []
        ready = asyncio.Event()
        counter = [0, len(paths)]
        tasks = [asyncio.create_task(_client(port, p, got, expect, ready, counter)) for p in paths]
        await asyncio.wait_for(ready.wait(), 60)
        t0 = time.time()
        await send()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout)
        return got, time.time() - t0
    return asyncio.run(main())


def _stats(lat: list[float]) -> dict:
    return {"n": len(lat), "p50_ms": round(percentile(lat, 50) * 1000, 2),
            "p99_ms": round(percentile(lat, 99) * 1000, 2), "max_ms": round(max(lat) * 1000, 2) if lat else None}


def bench_ours(n: int, messages: int, burst: int) -> dict:
    from appliance.push import publish

    server = WebServer.prepare(n, chat_rate_count=1000).start()
    try:
        idle_rss = server.rss()
        db = server.db()
        start = publish(db, server.session_id, "bench.start", {})
        paths = [f"/events?as={guest_ip(i)}&last_id={start}" for i in range(n)]

        async def spaced() -> None:
            for k in range(messages):
                publish(db, server.session_id, "chat.message", {"k": k, "t": time.time()})
                await asyncio.sleep(0.05)

        async def mem_then_spaced() -> None:
            await asyncio.sleep(1.0)  # let both workers settle with every stream open
            rss_holder.append(server.rss())
            await spaced()
        rss_holder: list[int] = []
        lat, _ = _run_clients(server.port, paths, messages, mem_then_spaced)
        start = publish(db, server.session_id, "bench.start", {})
        paths = [f"/events?as={guest_ip(i)}&last_id={start}" for i in range(n)]

        async def burst_send() -> None:
            for k in range(burst):
                publish(db, server.session_id, "chat.message", {"k": k, "t": time.time()})
        _lat2, wall = _run_clients(server.port, paths, burst, burst_send)
        # Real chat posts: Anna's phone POSTs to /chat/send (CSRF, rate limit, SQLite, push), everyone reads.
        db.execute("INSERT OR REPLACE INTO chat_settings(session_id, direct_messages, guests_write) VALUES (?, 0, 1)",
                   [server.session_id])
        start = publish(db, server.session_id, "bench.start", {})
        paths = [f"/events?as={guest_ip(i)}&last_id={start}" for i in range(n)]
        page = urllib.request.urlopen(f"http://127.0.0.1:{server.port}/chat?room=all&as=10.77.0.10",  # noqa: S310
                                      timeout=10).read().decode()
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)

        async def real_posts() -> None:
            for k in range(messages):
                body = urllib.parse.urlencode({"csrf_token": token, "room": "all", "client_id": f"bench-post-{k:06d}",
                                               "body": f"bench {time.time()!r}"}).encode()
                r, w = await asyncio.open_connection("127.0.0.1", server.port)
                w.write(b"POST /chat/send?as=10.77.0.10 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                        b"X-Sitzungsbox-Chat: 1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                        b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
                await w.drain()
                status = (await r.readline()).split()[1]
                await r.read()
                w.close()
                if status != b"201":
                    raise RuntimeError(f"Chat-Post abgelehnt: {status!r}")
                await asyncio.sleep(0.05)
        post_lat, _ = _run_clients(server.port, paths, messages, real_posts)
        db.conn.close()
        return {"latency": _stats(lat), "posts_latency": _stats(post_lat),
                "burst_rate_per_s": round(n * burst / wall, 1),
                "rss_idle_mb": round(idle_rss / 2**20, 1), "rss_streams_mb": round(rss_holder[0] / 2**20, 1),
                "kib_per_connection": round((rss_holder[0] - idle_rss) / n / 1024, 1),
                "workers": len(server.workers())}
    finally:
        server.close()


def bench_baseline(n: int, messages: int, burst: int) -> dict:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", BASELINE_SERVER, str(port)], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        idle = psutil.Process(proc.pid).memory_info().rss

        async def post(k: int) -> None:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            body = json.dumps({"k": k, "t": time.time()}).encode()
            w.write(b"POST /publish HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            await w.drain()
            await r.read()
            w.close()

        rss_holder: list[int] = []

        async def spaced() -> None:
            await asyncio.sleep(1.0)
            rss_holder.append(psutil.Process(proc.pid).memory_info().rss)
            for k in range(messages):
                await post(k)
                await asyncio.sleep(0.05)
        lat, _ = _run_clients(port, ["/"] * n, messages, spaced)

        async def burst_send() -> None:
            for k in range(burst):
                await post(k)
        _l, wall = _run_clients(port, ["/"] * n, burst, burst_send)
        return {"latency": _stats(lat), "burst_rate_per_s": round(n * burst / wall, 1),
                "kib_per_connection": round((rss_holder[0] - idle) / n / 1024, 1)}
    finally:
        proc.terminate()
        proc.wait(5)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=300)
    ap.add_argument("--messages", type=int, default=40)
    ap.add_argument("--burst", type=int, default=100)
    ap.add_argument("--out", type=Path, default=RESULTS / "chat.json")
    args = ap.parse_args(argv)
    base = bench_baseline(args.clients, args.messages, args.burst)
    ours = bench_ours(args.clients, args.messages, args.burst)
    ratio = round(ours["burst_rate_per_s"] / base["burst_rate_per_s"], 3)
    ok = ours["latency"]["p99_ms"] <= GOAL_P99_S * 1000 and ratio >= GOAL_RATIO
    result = {"name": "chat", "ratio": ratio,
              "goal": f"p99 <= {int(GOAL_P99_S * 1000)} ms and >= {GOAL_RATIO}x the asyncio baseline's rate",
              "ok": ok, "figures": {"clients": args.clients, "ours": ours, "baseline": base},
              "command": f"python -m bench.chat --clients {args.clients} --messages {args.messages} "
                         f"--burst {args.burst}"}
    write_result(args.out, **result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
