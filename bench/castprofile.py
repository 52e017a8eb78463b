"""CPU per cast and per vote-block refetch through the WSGI app in this process (no server, no network): the
figure bench/votes' ratio is made of, without the machine's noise. `python -m bench.castprofile [--members 300]
[--profile cast|refetch]` prints ms of CPU per request (best of --rounds); --profile prints cProfile's top."""

from __future__ import annotations

import argparse
import cProfile
import pstats
import secrets
import time

from bench import votes as bv


def setup(n: int):
    from appliance.helper.client import NullHelper
    from appliance.rules.viewer import Viewer
    from appliance.store import open_db
    from appliance.usecases import votes as acts
    from appliance.web.app import create_app

    server, _token = bv.prepare(n)
    app = create_app(server.cfg, helper=NullHelper())
    client = app.test_client()
    ips = [bv.member_ip(i) for i in range(n)]
    tokens = {}
    for ip in ips:
        page = client.get(f"/?as={ip}").get_data(as_text=True)
        tokens[ip] = bv.TOKEN.search(page).group(1)
    db = open_db(server.cfg.db_path, migrate=False)
    opened = acts.open_vote(db, Viewer("clerk", server.session_id), server.session_id, question="Haushalt",
                            now=time.time())
    db.conn.close()
    mids = [server.members[bv.member_name(i)].id for i in range(n)]
    return client, ips, tokens, opened.vote_id, mids


def casts(client, ips, tokens, vid, mids, k0: int) -> float:
    t = time.process_time()
    for k, (ip, mid) in enumerate(zip(ips, mids, strict=True)):
        r = client.post(f"/abstimmung?as={ip}", headers={"Accept": "application/json"},
                        data={"csrf_token": tokens[ip], "vote_id": vid, "member_id": mid,
                              "choice": bv.CHOICES[(k + k0) % 3], "key": secrets.token_hex(12)})
        assert r.status_code == 200, r.get_data(as_text=True)
    return (time.process_time() - t) * 1000 / len(ips)


def refetches(client, ips) -> float:
    t = time.process_time()
    for ip in ips:
        r = client.get(f"/abstimmung?as={ip}")
        assert r.status_code == 200
    return (time.process_time() - t) * 1000 / len(ips)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--members", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--profile", choices=("cast", "refetch"))
    a = ap.parse_args(argv)
    client, ips, tokens, vid, mids = setup(a.members)
    if a.profile:
        prof = cProfile.Profile()
        prof.enable()
        casts(client, ips, tokens, vid, mids, 1) if a.profile == "cast" else refetches(client, ips)
        prof.disable()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(45)
        return 0
    c = [casts(client, ips, tokens, vid, mids, r) for r in range(a.rounds)]
    f = [refetches(client, ips) for _ in range(a.rounds)]
    print(f"cast CPU ms: best {min(c):.3f} all {[round(x, 3) for x in c]}")
    print(f"refetch CPU ms: best {min(f):.3f} all {[round(x, 3) for x in f]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
