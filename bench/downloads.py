"""Downloads benchmark: many tablets fetching the session packet from the box at once.

The real web app (`sitzungsbox web`: gunicorn, gevent workers, unprivileged) and, as the baseline in the
same run, Debian's nginx (started here with a config written here, `sendfile on`, as many workers as the
app) serve the same 20 MB PDF on loopback. N concurrent clients (asyncio, one socket each): half fetch the
whole file, half fetch it as 1 MB ranges (what PDF viewers do), each range checked. Throughput is all bytes
received / wall time; the web process's memory is the peak of the summed RSS of gunicorn and its workers.

    python -m bench.downloads [--clients 300] [--size-mb 20]   ->  bench/results/downloads.json
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
GOAL_RATIO = 0.9
GOAL_RSS_MB = 150
RANGE = 1 << 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"Server beendet (rc={proc.returncode})")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"niemand lauscht auf Port {port}")


def make_pdf(size: int) -> bytes:
    """A real one-page PDF (the box refuses what a reader cannot open) of `size` bytes: its content stream is
    incompressible, like scanned pages."""
    head = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>"]
    fixed = len(head) + sum(len(o) + 20 for o in objs) + 260  # objects, xref and trailer, roughly
    body = os.urandom(max(0, size - fixed))
    objs.append(b"<< /Length %d >>\nstream\n" % len(body) + body + b"\nendstream")
    out, offsets = bytearray(head), []
    for n, o in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + o + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 5\n0000000000 65535 f \n" + b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size 5 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def prepare(work: Path, data: bytes, port: int, web_user: str, pace_kib: int = 0):
    """A box state: active session, one admitted member on 127.0.0.1 (station + lease + admission), the PDF.
    pace_kib: the bulk pacing (0 here: this bench measures serving speed; bench/pacing measures pacing)."""
    from appliance.config import Config
    from appliance.documents import service as docs
    from appliance.sessions import roster, service
    from appliance.store import open_db
    from appliance.store.db import now

    cfg = Config(state_dir=work / "state", run_dir=work / "run", helper_socket=work / "run" / "helper.sock",
                 leases_file=work / "state" / "dnsmasq.leases", hostapd_ctrl_dir=work / "hostapd",
                 web_bind="127.0.0.1", web_port=port, web_user=web_user, demo=True,
                 docs_bulk_pace_kib=pace_kib).validate()
    db = open_db(cfg.db_path)
    s = service.create_session(db, body="Rat", title="Bench", day="2026-12-01", ssid=cfg.ssid)
    service.insert_members(db, s.id, roster.parse_members("Name;Rolle\nAnna Bench;Mitglied\n"))
    service.set_active(db, s.id)
    m = service.members(db, s.id)[0]
    mac = "02:00:00:00:00:99"
    with db.conn:
        db.execute("INSERT INTO stations(mac, interface, keyid, connected, connected_at) VALUES (?, 'wlan0', ?, 1, ?)",
                   [mac, m.keyid, now()])
        db.execute("INSERT INTO admissions(session_id, mac, ip, member_id, kind, admitted_at)"
                   " VALUES (?, ?, '127.0.0.1', ?, 'member', ?)", [s.id, mac, m.id, now()])
    cfg.leases_file.write_text(f"{int(time.time()) + 86400} {mac} 127.0.0.1 tablet *\n")
    item = docs.add_item(db, s.id, "Haushalt")
    blobs = docs.blobs_for(cfg.state_dir)
    stored = blobs.put_bytes(data)
    fid = docs.add_file(db, s.id, name="haushalt.pdf", stored=stored, mime="application/pdf", item_id=item)
    db.conn.close()
    return cfg, fid, blobs.path(stored.sha256)


async def fetch(port: int, path: str, rng: tuple[int, int] | None) -> tuple[int, bytes | None, int]:
    """One GET on a fresh connection; returns (status, body-or-None, bytes). Bodies of ranges are kept."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    hdr = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    if rng:
        hdr += f"Range: bytes={rng[0]}-{rng[1]}\r\n"
    writer.write((hdr + "\r\n").encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    keep = rng is not None
    parts, n = [], 0
    while True:
        chunk = await reader.read(1 << 20)
        if not chunk:
            break
        n += len(chunk)
        if keep:
            parts.append(chunk)
    writer.close()
    return status, (b"".join(parts) if keep else None), n


async def client(i: int, port: int, path: str, data: bytes, errors: list[str]) -> int:
    size = len(data)
    if i % 2 == 0:
        status, _, n = await fetch(port, path, None)
        if status != 200 or n != size:
            errors.append(f"client {i}: whole {status} {n}/{size}")
        return n
    total = 0
    start = (i * 7919 * RANGE) % size  # viewers start anywhere
    for k in range(size // RANGE):
        a = (start + k * RANGE) % size
        b = min(a + RANGE, size) - 1
        status, body, n = await fetch(port, path, (a, b))
        if status != 206 or body != data[a:b + 1]:
            errors.append(f"client {i}: range {a}-{b} {status}")
        total += n
    return total


async def load(port: int, path: str, data: bytes, clients: int) -> dict:
    errors: list[str] = []
    t0 = time.perf_counter()
    got = await asyncio.gather(*(client(i, port, path, data, errors) for i in range(clients)))
    wall = time.perf_counter() - t0
    return {"seconds": round(wall, 3), "bytes": sum(got), "mb_per_s": round(sum(got) / wall / 2**20, 1),
            "errors": len(errors), "first_errors": errors[:5]}


def rss_tree_kb(pid: int) -> int:
    total = 0
    pids = [pid]
    try:
        pids += [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


class Sampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_kb, self.stop = pid, 0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak_kb = max(self.peak_kb, rss_tree_kb(self.pid))
            self.stop.wait(0.05)


NGINX_CONF = """worker_processes {workers};
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 2048; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 5;
    client_body_temp_path {work}/tmp;
    proxy_temp_path {work}/tmp;
    fastcgi_temp_path {work}/tmp;
    uwsgi_temp_path {work}/tmp;
    scgi_temp_path {work}/tmp;
    types {{ application/pdf pdf; }}
    server {{
        listen 127.0.0.1:{port};
        root {root};
        etag on;
    }}
}}
"""


def start_nginx(work: Path, root: Path, port: int, workers: int) -> subprocess.Popen:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    (work / "tmp").mkdir(exist_ok=True)
    conf = work / "nginx.conf"
    conf.write_text(NGINX_CONF.format(workers=workers, work=work, port=port, root=root))
    return subprocess.Popen([nginx, "-c", str(conf), "-p", str(work)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run(clients: int, size_mb: int, out: Path | None) -> dict:
    work = Path(tempfile.mkdtemp(prefix="sbd-bench-"))
    work.chmod(0o755)
    procs: list[subprocess.Popen] = []
    try:
        data = make_pdf(size_mb * 2**20)
        web_port, nginx_port = free_port(), free_port()
        web_user = "nobody" if os.geteuid() == 0 else pwd.getpwuid(os.getuid()).pw_name
        cfg, fid, blob = prepare(work, data, web_port, web_user)
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            for p in [cfg.state_dir, *cfg.state_dir.rglob("*")]:
                os.chown(p, nobody.pw_uid, nobody.pw_gid, follow_symlinks=False)
        from appliance.config import to_toml
        toml = work / "sb.toml"
        toml.write_text(to_toml(cfg))
        web = subprocess.Popen([sys.executable, "-m", "appliance.cli", "--config", str(toml), "web"],
                               stdout=subprocess.DEVNULL, stderr=open(work / "web.log", "wb"),  # noqa: SIM115
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
        procs.append(web)
        wait_port(web_port, web)
        www = work / "www"
        www.mkdir()
        www.chmod(0o755)
        shutil.copyfile(blob, www / "haushalt.pdf")
        (www / "haushalt.pdf").chmod(0o644)
        nginx = start_nginx(work, www, nginx_port, cfg.web_workers)
        procs.append(nginx)
        wait_port(nginx_port, nginx)
        app_path = f"/unterlagen/datei/{fid}/haushalt.pdf"
        # Warm-up and a correctness check of the whole file through the app.
        status, _, n = asyncio.run(fetch(web_port, app_path, None))
        if status != 200 or n != len(data):
            raise RuntimeError(f"App liefert die Datei nicht: {status} {n} ({(work / 'web.log').read_text()[-500:]})")
        whole = subprocess.run(["curl", "-s", f"http://127.0.0.1:{web_port}{app_path}"], capture_output=True,
                               check=False).stdout
        checksum_ok = hashlib.sha256(whole).digest() == hashlib.sha256(data).digest()
        base = asyncio.run(load(nginx_port, "/haushalt.pdf", data, clients))
        sampler = Sampler(web.pid)
        sampler.start()
        app = asyncio.run(load(web_port, app_path, data, clients))
        sampler.stop.set()
        sampler.join()
        ratio = round(app["mb_per_s"] / base["mb_per_s"], 3) if base["mb_per_s"] else 0.0
        peak_mb = round(sampler.peak_kb / 1024, 1)
        result = {
            "name": "downloads",
            "ratio": ratio,
            "goal": {"ratio_min": GOAL_RATIO, "web_peak_rss_mb_max": GOAL_RSS_MB},
            "ok": ratio >= GOAL_RATIO and peak_mb <= GOAL_RSS_MB and app["errors"] == 0 and checksum_ok,
            "figures": {"clients": clients, "file_mb": size_mb, "web_workers": cfg.web_workers,
                        "nginx": base, "app": app, "web_peak_rss_mb": peak_mb, "checksum_ok": checksum_ok},
            "command": f"python -m bench.downloads --clients {clients} --size-mb {size_mb}",
        }
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(result, indent=2) + "\n")
        return result
    finally:
        for p in reversed(procs):
            stop(p)
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=300)
    ap.add_argument("--size-mb", type=int, default=20)
    ap.add_argument("--out", type=Path, default=RESULTS / "downloads.json")
    args = ap.parse_args(argv)
    result = run(args.clients, args.size_mb, args.out)
    print(json.dumps(result, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
