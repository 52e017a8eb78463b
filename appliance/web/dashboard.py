"""The technicians' dashboard (issue 5): /technik (own role, web.auth), a read-only JSON API and /metrics.

Thin views over appliance.monitor.view: the daemon (`sitzungsbox monitor`) samples, this only reads.
The page works without JavaScript: sorting and filtering are links and a GET form whose values stay in the
URL, "Aktualisieren" reloads that URL on demand, the graphs are SVG drawn on the box (lazy <img>). There is no
meta refresh: it wiped the search box while a technician typed.

Live without reloading: static/dashboard/dashboard.js fetches `/technik/live` (the same query) every
REFRESH_S seconds and swaps the parts whose HTML changed; the filter form is no part, so typing and focus
survive. Why a poll and not the push channel (/events): the snapshot changes every second, and a push event
per second in push_events would grow that table by 3,600 rows an hour that every hub reads and no member may
see; the stream is also per session and per viewer (members, guests, clerks), while technicians work before
any session is active. A poll of the one snapshot row costs a read per technician tab (there are one or two),
pauses while the tab is hidden, and keeps the HTML rendered by the same macros as the page.
"""

from __future__ import annotations

import functools
import ipaddress
import time

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    jsonify,
    render_template,
    request,
)

from appliance.config import Config
from appliance.monitor import graphs, metrics, timeseries, view
from appliance.monitor.classify import Thresholds
from appliance.web import auth, i18n, links

bp = Blueprint("dashboard", __name__, url_prefix="/technik")
auth.register(bp, auth.TECHNICIAN)  # /technik/login and /technik/logout: the one staff login, for this role
REFRESH_S = 2  # dashboard.js polls the live parts this often (the monitor samples once a second)
GRAPH_EVERY_S = 15  # graphs (lazy <img>) are fetched again when this many seconds of snapshots have passed
GRAPH_SPAN_S = 15 * 60



def _cfg() -> Config:
    return current_app.config["SB"]


@bp.after_request
def _no_store(resp):
    resp.headers.setdefault("Cache-Control", "no-store")
    return resp


# --- pages ----------------------------------------------------------------------------------------------


def _graph(name: str, mac: str | None = None) -> str:
    now = time.time()
    since = now - GRAPH_SPAN_S
    db = g.db
    t = Thresholds.from_config(_cfg())
    svg = functools.partial(graphs.svg, no_data=i18n.t("tech.g.no_data"))
    if name == "clients":
        series = {i18n.t("tech.g.clients"): timeseries.read(db, "clients", since)}
        for s in sorted(timeseries.series_names(db, "clients:")):
            series[s.split(":", 1)[1]] = timeseries.read(db, s, since)
        return svg(i18n.t("tech.g.clients"), series, since=since, until=now, y_min=0)
    if name == "busy":
        series = {s.split(":", 1)[1]: timeseries.read(db, s, since)
                  for s in sorted(timeseries.series_names(db, "busy:"))}
        return svg(i18n.t("tech.g.busy"), series, "%", since, now, 0, 100,
                   bands=[(0, t.busy_poor, "good"), (t.busy_poor, t.busy_bad, "poor"), (t.busy_bad, 100, "bad")])
    if name == "temp":
        return svg(i18n.t("tech.g.temp"), {"SoC": timeseries.read(db, "temp", since)}, "°", since, now,
                   y_min=30, y_max=90, bands=[(t.hot_c, 90, "bad")])
    if name == "traffic":
        iface = _cfg().interface
        pts = {f"{iface} {d}": [(ts, v * 8 / 1000) for ts, v in timeseries.read(db, f"{d}_bps:{iface}", since)]
               for d in ("rx", "tx")}
        return svg(i18n.t("tech.g.traffic"), pts, "", since, now, y_min=0)
    if name == "signal" and mac:
        return svg(f"{i18n.t('tech.g.signal')} {mac}", {mac: timeseries.read(db, f"signal:{mac}", since)},
                   "", since, now, -95, -30,
                   bands=[(t.signal_good, -30, "good"), (t.signal_fair, t.signal_good, "fair"),
                          (t.signal_poor, t.signal_fair, "poor"), (-95, t.signal_poor, "bad")])
    abort(404)


def _page_args(query: view.TableQuery, **extra) -> dict[str, str]:
    """The page's own query (search, filter, sort, selected device): what a reload or a poll must keep."""
    args = {"q": query.q, "class": query.cls, "radio": query.radio, "sort": query.sort,
            "order": "desc" if query.desc else "asc", **extra}
    return {k: v for k, v in args.items() if v}


def _sort_url(query: view.TableQuery, key: str) -> str:
    desc = query.sort == key and not query.desc
    args = {**_page_args(query), "sort": key, "order": "desc" if desc else "asc"}
    return links.link("dashboard.index", _anchor="clients", **args)


def _context() -> dict:
    """What the page and its live parts show, for this request's query."""
    model = view.dashboard_model(g.db)
    snap = model["snapshot"]
    query = view.TableQuery.from_args(request.args)
    rows = view.table(model["clients"], query)
    known_macs = {c["mac"] for c in model["clients"]}
    chosen = request.args.get("mac")
    mac = chosen if chosen in known_macs else (rows[0]["mac"] if rows else None)
    # The graphs' URLs change every GRAPH_EVERY_S of snapshots, so the script reloads them that often.
    version = int(snap["at"] // GRAPH_EVERY_S) if snap is not None else 0
    titles = {"clients": i18n.t("tech.g.clients"), "busy": i18n.t("tech.g.busy"), "temp": i18n.t("tech.g.temp"),
              "traffic": i18n.t("tech.g.traffic")}
    graph_list = [{"name": n, "title": title, "url": links.link("dashboard.graph", name=n, v=version)}
                  for n, title in titles.items()]
    if mac is not None:
        graph_list.append({"name": "signal", "title": f"{i18n.t('tech.g.signal')} {mac}",
                           "url": links.link("dashboard.graph", name="signal", mac=mac, v=version)})
    page_args = _page_args(query, mac=chosen if chosen in known_macs else None)
    return {"m": model, "snap": snap, "rows": rows, "query": query, "mac": mac, "graph_list": graph_list,
            "shown": {r["mac"] for r in rows}, "classes": view.CLASSES, "refresh": REFRESH_S,
            "sort_url": lambda k: _sort_url(query, k),
            "row_url": lambda m: links.link("dashboard.index", _anchor="history", **{**page_args, "mac": m}),
            "poll_url": links.link("dashboard.live", **page_args)}


@bp.get("/")
@auth.technician_required
def index():
    return render_template("dashboard/index.html", **_context())


@bp.get("/live")
@auth.technician_required
def live():
    """The page's live parts alone, for dashboard.js (same query as the page)."""
    return render_template("dashboard/live.html", **_context())


@bp.get("/graph/<name>.svg")
@auth.technician_required
def graph(name: str):
    return Response(_graph(name, request.args.get("mac")), mimetype="image/svg+xml")


@bp.get("/api")
@auth.technician_required
def api():
    """Read-only JSON of what the page shows."""
    model = view.dashboard_model(g.db)
    return jsonify({"snapshot": model["snapshot"], "clients": model["clients"], "alerts": model["alerts"],
                    "alert_groups": model["alert_groups"]})


def _metrics_allowed() -> bool:
    """The session network's devices never; loopback, the uplink side (the city's monitoring) and a
    logged-in technician yes."""
    if auth.is_logged_in(auth.TECHNICIAN):
        return True
    try:
        ip = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    return ip.is_loopback or ip not in _cfg().network


def metrics_view():
    if not _metrics_allowed():
        abort(403)
    return Response(metrics.render(view.dashboard_model(g.db)), content_type=metrics.CONTENT_TYPE)


# /metrics sits at the root, where scrapers look, outside this blueprint's /technik prefix.
bp.record_once(lambda state: state.app.add_url_rule("/metrics", "metrics", metrics_view))


@bp.app_template_filter("tech_time")
def tech_time(epoch: float | None) -> str:
    if epoch is None:
        return "–"
    return time.strftime("%H:%M:%S", time.localtime(epoch))


@bp.app_template_filter("dev_id")
def dev_id(mac: str) -> str:
    """The id of a device's table row (`#dev-02-5b-…`), the target of its alerts' links."""
    return "dev-" + mac.replace(":", "-")
