"""The member-facing captive portal: OS probe answers, the greeting, admission and the start page.

No login and no cookies: every request is tied to a person through the client IP → MAC → the keyid of
the connected station (captive.identify). Captive mini-browsers (iOS CNA, Android's login app) keep
nothing between visits, so nothing here relies on state in the browser. Behind external access points no
radio of ours reports a keyid: there the member types the personal code from the card (captive.codes) into
the same no-JS form, and the admission it creates names the member for that device.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import time
from datetime import date

from flask import Blueprint, Response, current_app, g, render_template, request
from werkzeug.utils import redirect  # needs no app context (web.fastpath answers probes without one)

from appliance import netinfo
from appliance.captive import admission, codes, probes
from appliance.captive.identify import Device, identify
from appliance.config import Config
from appliance.helper.client import HelperError
from appliance.sessions import service
from appliance.usecases import portal as code_act
from appliance.web import csrf, i18n, links

log = logging.getLogger(__name__)
bp = Blueprint("portal", __name__)


def _cfg() -> Config:
    return current_app.config["SB"]


def client_ip() -> str:
    """The client's IPv4 address; in demo mode `?as=<ip>` shows the portal as a virtual device."""
    cfg = _cfg()
    if cfg.demo:
        asked = request.args.get("as", "")
        try:
            return str(ipaddress.IPv4Address(asked))
        except ValueError:
            pass
    return request.remote_addr or ""


LOCAL_ADDRESSES_TTL_S = 300.0  # addresses change rarely (an uplink's DHCP); listing them costs a syscall each
_local_cache: tuple[float, frozenset[str]] | None = None


def local_addresses(now: float | None = None) -> frozenset[str]:
    """Every IPv4 address configured on the box itself (all interfaces of its network namespace).

    A city's monitoring scrapes /metrics by the box's uplink address: that Host is the box, not a foreign
    site. Nothing is opened by this: a captive device could send any box Host header anyway, and the views
    decide by the device, not by the Host. Cached per process, refreshed every few minutes.
    """
    global _local_cache
    now = time.monotonic() if now is None else now
    if _local_cache is None or now - _local_cache[0] >= LOCAL_ADDRESSES_TTL_S:
        _local_cache = (now, frozenset(netinfo.all_ipv4_addresses()))
    return _local_cache[1]


def _is_ipv4(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


def is_box_host(cfg: Config, host: str) -> bool:
    """The box's names, and any of its own IPv4 addresses. The address list is only consulted for IPv4
    literals: OS probes and foreign sites use names, so the hot path never lists interfaces."""
    return host in box_hosts(cfg) or (_is_ipv4(host) and host in local_addresses())


def box_hosts(cfg: Config) -> frozenset[str]:
    return frozenset({cfg.address, cfg.hostname, f"{cfg.hostname}.local", "localhost", "127.0.0.1", "::1"})


def _device() -> Device:
    if "device" not in g:
        g.device = identify(g.db, _cfg(), client_ip())
    return g.device


def _helper_failed(exc: Exception) -> tuple[str, int]:
    log.warning("admission failed: %s", exc)
    return render_template("error.html", message=i18n.t("portal.helper_error"), code=503), 503


@bp.before_app_request
def captive_hook():
    """Everything addressed to another host is an OS probe or a foreign URL: never served as content."""
    host = probes.normalise_host(request.host)
    if not host or is_box_host(_cfg(), host):
        return None
    return captive_answer(_cfg(), _device(), host, request.path)


def captive_answer(cfg: Config, device: Device, host: str, path: str) -> Response:
    """The answer to a request for a host that is not the box (the captive hook's; web.fastpath gives probes the
    same without Flask's request). Admitted devices get the real online answer to a known probe (so phones keep
    the Wi-Fi as their route), anything else goes to the box. Captive devices get 302 to the portal for every
    path and method: a 200 for a probe would tell the phone it is online and hide the portal."""
    if not device.admitted:
        return redirect(cfg.portal_url, 302, Response=Response)
    probe = probes.classify(host, path)
    if probe is None or probe.name == "ms_redirect":
        return redirect(f"http://{cfg.address}/", 302, Response=Response)
    status, content_type, body = probes.online_response(probe)
    resp = Response(body, status=status, content_type=content_type)
    resp.headers.update(probes.online_headers(probe))  # NetworkManager reads X-NetworkManager-Status
    resp.headers["Cache-Control"] = "no-cache, no-store"
    return resp


@bp.app_template_filter("portal_date")
def portal_date(value: str) -> str:
    """ISO date as Germans write it (24.11.2026); English pages keep ISO."""
    try:
        day = date.fromisoformat(value)
    except (TypeError, ValueError):
        return value or ""
    return day.strftime("%d.%m.%Y") if g.get("lang", "de") == "de" else day.isoformat()


def _session_or_none():
    return service.active_session(g.db)


def code_throttle() -> codes.Throttle:
    """Wrong personal codes per device, for the life of this worker (one per app)."""
    return current_app.extensions.setdefault("sb_code_throttle", codes.Throttle())


def _may_use_code(device: Device) -> bool:
    return code_act.may_use_code(device)


def _portal_ctx(session, device: Device) -> dict:
    return {"session": session, "device": device, "continue_url": links.link("portal.portal_continue"),
            "start_url": links.link("portal.home"), "demo_example": None, "token": None,
            "code_form": False, "code_error": None, "code_value": "", "code_example": codes.EXAMPLE}


def _guest_page(session, device: Device, code_error: str | None = None, code_value: str = "",
                status: int = 200) -> Response:
    links.set_here("portal.portal")  # also the answer to the code form's POST
    ctx = _portal_ctx(session, device)
    ctx["token"] = csrf.device_token(device.ip)
    ctx.update(code_form=_may_use_code(device), code_error=code_error, code_value=code_value[:40])
    state = "guest_connected" if device.admitted else "guest"
    return Response(render_template("portal/portal.html", state=state, **ctx), status=status)


@bp.get("/portal")
def portal():
    cfg = _cfg()
    session = _session_or_none()
    device = _device()
    ctx = _portal_ctx(session, device)
    if session is None:
        return render_template("portal/portal.html", state="no_session", **ctx)
    if device.mac is None:
        if cfg.demo:
            ctx["demo_example"] = links.link("portal.portal", as_=cfg.dhcp_start)
        return render_template("portal/portal.html", state="no_device", **ctx)
    if device.kind == "member":
        if not device.admitted:
            # Members are let through on this very load: when iOS re-probes after the page has loaded,
            # it sees Success and offers "Fertig".
            try:
                admission.admit(g.db, current_app.config["SB_HELPER"], device, session)
            except HelperError as exc:
                return _helper_failed(exc)
        return render_template("portal/portal.html", state="member", **ctx)
    if device.admitted and not _may_use_code(device):
        return render_template("portal/portal.html", state="guest_connected", **ctx)
    return _guest_page(session, device)


@bp.post("/portal/continue")
@csrf.device_bound
def portal_continue():
    ip = client_ip()
    # The token is bound to the IP the form was served to: a form lifted to another device is refused.
    csrf.check_device_token(ip)
    session = _session_or_none()
    device = _device()
    if "code" in request.form:
        # A device named by its Wi-Fi key (or without a session) never uses a code: the portal shows why.
        return _enter_code(session, device, request.form.get("code", ""))
    if session is not None and device.mac is not None and not device.admitted:
        try:
            admission.admit(g.db, current_app.config["SB_HELPER"], device, session)
        except HelperError as exc:
            return _helper_failed(exc)
    return links.redirect_to("portal.portal", _code=303)


def _enter_code(session: service.Session, device: Device, typed: str):
    """A member's personal code from the portal form: usecases.portal decides, this page words the outcome."""
    outcome = code_act.enter_personal_code(_cfg(), g.db, current_app.config["SB_HELPER"], device, typed,
                                           throttle=code_throttle())
    if outcome.status == code_act.WAIT:
        resp = _guest_page(session, device, i18n.t("portal.code_wait", seconds=outcome.seconds), typed, status=429)
        resp.headers["Retry-After"] = str(outcome.seconds)
        return resp
    if outcome.status == code_act.EMPTY:
        return _guest_page(session, device, i18n.t("portal.code_empty"), status=422)
    if outcome.status == code_act.MALFORMED:
        return _guest_page(session, device, i18n.t("portal.code_malformed", example=codes.EXAMPLE), typed, 422)
    if outcome.status == code_act.WRONG:
        return _guest_page(session, device, i18n.t("portal.code_wrong"), typed, status=422)
    if outcome.status == code_act.HELPER_FAILED:
        return render_template("error.html", message=i18n.t("portal.helper_error"), code=503), 503
    return links.redirect_to("portal.portal", _code=303)  # admitted, or a device that never uses a code


@bp.get("/")
def home():
    from appliance.web.viewer import member_viewer

    member_viewer()  # not let through yet: to the portal, as every member page
    device = _device()
    session = _session_or_none()
    return render_template("portal/home.html", session=session, device=device, portal_url=links.link("portal.portal"))


@bp.get("/api/captive")
def captive_api():
    """RFC 8908 captive-portal API (DHCP option 114 points here when the box has a trusted cert)."""
    cfg = _cfg()
    device = _device()
    body = {"captive": not device.admitted, "user-portal-url": cfg.portal_url}
    if device.admitted:
        body["venue-info-url"] = f"http://{cfg.address}/"
    resp = Response(json.dumps(body), content_type="application/captive+json")
    resp.headers["Cache-Control"] = "private, no-store"
    return resp


@bp.get("/healthz")
def healthz():
    return Response("ok", content_type="text/plain")
