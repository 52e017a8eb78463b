"""The technicians' dashboard (issue 5): /technik (own role, web.auth), a read-only JSON API and /metrics.

Thin views over appliance.monitor.view: the daemon (`sitzungsbox monitor`) samples, this only reads.
The page works without JavaScript: sorting and filtering are links and a GET form, a meta refresh keeps
it live, the graphs are SVG drawn on the box.
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
from markupsafe import Markup

from appliance.config import Config
from appliance.monitor import graphs, metrics, timeseries, view
from appliance.monitor.classify import Thresholds
from appliance.web import auth, i18n, links

bp = Blueprint("dashboard", __name__, url_prefix="/technik")
auth.register(bp, auth.TECHNICIAN)  # /technik/login and /technik/logout: the one staff login, for this role
REFRESH_S = 5
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


def _sort_url(query: view.TableQuery, key: str) -> str:
    desc = query.sort == key and not query.desc
    args = {k: v for k, v in {"sort": key, "order": "desc" if desc else "asc", "q": query.q,
                              "class": query.cls, "radio": query.radio}.items() if v}
    return links.link("dashboard.index", _anchor="clients", **args)


@bp.get("/")
@auth.technician_required
def index():
    model = view.dashboard_model(g.db)
    query = view.TableQuery.from_args(request.args)
    rows = view.table(model["clients"], query)
    mac = request.args.get("mac") or (rows[0]["mac"] if rows else None)
    known_macs = {c["mac"] for c in model["clients"]}
    # graphs.svg escapes every text it draws (titles, names, labels), so its output is safe markup
    graphs_svg = {n: Markup(_graph(n)) for n in ("clients", "busy", "temp", "traffic")}  # noqa: S704
    if mac in known_macs:
        graphs_svg["signal"] = Markup(_graph("signal", mac))  # noqa: S704
    return render_template("dashboard/index.html", m=model, snap=model["snapshot"], rows=rows, query=query,
                           sort_url=lambda k: _sort_url(query, k), graphs=graphs_svg, refresh=REFRESH_S,
                           classes=view.CLASSES)


@bp.get("/graph/<name>.svg")
@auth.technician_required
def graph(name: str):
    return Response(_graph(name, request.args.get("mac")), mimetype="image/svg+xml")


@bp.get("/api")
@auth.technician_required
def api():
    """Read-only JSON of what the page shows."""
    model = view.dashboard_model(g.db)
    return jsonify({"snapshot": model["snapshot"], "clients": model["clients"], "alerts": model["alerts"]})


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
