"""CPU per cast and per vote-block refetch, one request at a time (no burst, no queueing): the figure bench/votes'
ratio is made of, with less of the machine's noise.

    python -m bench.castprofile [--members 300] [--rounds 3]   # in-process through the WSGI app (Flask test client)
    python -m bench.castprofile --profile cast|refetch          # cProfile's top of 300 requests in-process
    python -m bench.castprofile --server                        # through the real gunicorn server of bench.votes:
                                                                # the workers' CPU over 300 sequential requests each

Prints ms of CPU per request (in-process: best of --rounds)."""

from __future__ import annotations

import argparse
import cProfile
import pstats
import secrets
import time

from bench import calibrate
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


def server(n: int) -> None:
    """The same requests over HTTP/1.0 against `sitzungsbox web` (bench.votes.prepare), one at a time; /healthz
    is the floor of any request through gunicorn and the app's hooks."""
    import asyncio

    from appliance.rules.viewer import Viewer
    from appliance.usecases import votes as acts

    srv, _token = bv.prepare(n)
    srv.start()
    try:
        port, ips = srv.port, [bv.member_ip(i) for i in range(n)]

        async def run() -> None:
            tokens = {}
            for ip in ips:
                _status, page = await bv.request(port, f"/?as={ip}")
                tokens[ip] = bv.TOKEN.search(page).group(1)
            db = bv._db(srv)
            vid = acts.open_vote(db, Viewer("clerk", srv.session_id), srv.session_id, question="Haushalt",
                                 now=time.time()).vote_id
            db.conn.close()
            mids = [srv.members[bv.member_name(i)].id for i in range(n)]
            await asyncio.sleep(0.5)
            plans = (("healthz", [("/healthz", None, "")] * n),
                     ("cast", [(f"/abstimmung?as={ip}", {"csrf_token": tokens[ip], "vote_id": vid, "member_id": m,
                                                         "choice": "yes", "key": secrets.token_hex(12)},
                                "application/json") for ip, m in zip(ips, mids, strict=True)]),
                     ("refetch", [(f"/abstimmung?as={ip}", None, "") for ip in ips]))
            for label, reqs in plans:
                cpu0 = bv._cpu(srv.workers())
                for path, form, accept in reqs:
                    status, _body = await bv.request(port, path, form, accept)
                    assert status == 200, (label, status)
                print(f"{label} worker CPU ms/request: {(bv._cpu(srv.workers()) - cpu0) * 1000 / len(reqs):.3f}")

        asyncio.run(run())
    finally:
        srv.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--members", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--profile", choices=("cast", "refetch"))
    ap.add_argument("--server", action="store_true")
    a = ap.parse_args(argv)
    if a.server:
        server(a.members)
        return 0
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
    cal = calibrate.measure()  # the same figures in units of the calibration workload (issue 15)
    print(f"calibration unit {cal['unit_cpu_ms']} ms: cast {calibrate.in_units(min(c), cal)} units, "
          f"refetch {calibrate.in_units(min(f), cal)} units")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
