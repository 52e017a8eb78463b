"""The storage floor of a cast (bench/votes' baseline): a minimal asyncio HTTP server, stdlib only, that stores
each `POST /abstimmung` in SQLite with the box's durability settings (appliance/store/db.py: WAL,
synchronous=NORMAL; one `BEGIN IMMEDIATE` transaction per cast, the idempotency key unique) and answers 200 JSON.

No identity, no rules, no push: what is left is HTTP parsing, one transaction with fsync behaviour as on the box,
and the answer — the least any server that stores votes durably has to do. One process, one event loop, the
writes one after another (SQLite has one writer anyway).

    python -m bench.castfloor --db /tmp/x.db --port 8099   # prints "ready" once it listens
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import time
import urllib.parse

SCHEMA = ("CREATE TABLE IF NOT EXISTS casts(key TEXT PRIMARY KEY, vote_id INTEGER NOT NULL, member_id INTEGER NOT NULL,"
          " choice TEXT NOT NULL, at REAL NOT NULL)")


def open_store(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=10, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=10000")
    conn.execute(SCHEMA)
    return conn


def store(conn: sqlite3.Connection, form: dict[str, str]) -> tuple[int, dict]:
    try:
        vote_id, member_id = int(form.get("vote_id", "")), int(form.get("member_id", ""))
    except ValueError:
        return 400, {"ok": False, "code": "field", "text": "bad field"}
    choice, key = form.get("choice", ""), form.get("key", "")
    if choice not in ("yes", "no", "abstain") or not 8 <= len(key) <= 64:
        return 409, {"ok": False, "code": "bad_choice", "text": "bad choice or key"}
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("INSERT INTO casts(key, vote_id, member_id, choice, at) VALUES (?, ?, ?, ?, ?) "
                     "ON CONFLICT(key) DO NOTHING", [key, vote_id, member_id, choice, time.time()])
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return 200, {"ok": True, "choice": choice, "text": "stored", "vote_id": vote_id}


async def handle(conn: sqlite3.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path, _version = lines[0].split(" ", 2)
        length = 0
        for line in lines[1:]:
            name, _sep, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        body = await reader.readexactly(length) if length else b""
        if method == "POST" and path.split("?", 1)[0] == "/abstimmung":
            form = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode()).items()}
            status, answer = store(conn, form)
        else:
            status, answer = 404, {"ok": False, "code": "not_found", "text": "not found"}
        data = json.dumps(answer).encode()
        writer.write(f"HTTP/1.0 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n"
                     f"Connection: close\r\n\r\n".encode() + data)
        await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


async def serve(db: str, host: str, port: int) -> None:
    conn = open_store(db)
    server = await asyncio.start_server(lambda r, w: handle(conn, r, w), host, port, backlog=1024)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args(argv)
    asyncio.run(serve(args.db, args.host, args.port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
