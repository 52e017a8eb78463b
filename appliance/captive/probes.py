"""Which operating-system connectivity probe is this request, and what does the real service answer?

Pure: no Flask, no I/O. The web layer asks `classify(host, path)` for every request whose Host is not
the box; an admitted device then gets `online_response(probe)` (plus `online_headers(probe)`) byte for
byte, a captive one a 302.

docs/connectivity-probes.md is the source of truth: one row per probe with host, path, the exact online
answer, what the client checks, and where that comes from. tests/test_probes.py reads that table and
checks every row against this module and through the web app, so the table and the code cannot drift.

What the clients check, in short (details and sources in the table):
- Android (AOSP NetworkStack) and its vendor builds: exactly HTTP 204 on a `generate_204` / `gen_204`
  URL. Chrome/ChromeOS also take a 200 with an empty body, Android never a 200 with a body.
- Apple: the Success page. Windows NCSI: the file contains `Microsoft Connect Test` / `Microsoft NCSI`.
- Firefox: status 200 and a body *equal* to `captivedetect.canonicalContent`.
- NetworkManager (GNOME, Arch, Debian, Fedora, Ubuntu, openSUSE): an `X-NetworkManager-Status: online`
  header line wins at once; otherwise the body must *start with* the configured `response=` (default
  `NetworkManager is online`). Ubuntu's and openSUSE's configs set no `response=` and their servers send
  `204` + that header and no body, so answering them with the default body would work too, but the box
  sends what their servers send.
- Kindle: the page contains the wifistub UUID.
"""

from __future__ import annotations

from dataclasses import dataclass

APPLE_SUCCESS = "<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>"
FIREFOX_CANONICAL = '<meta http-equiv="refresh" content="0;url=https://support.mozilla.org/kb/captive-portal"/>'
FIREFOX_SUCCESS = "success\n"
MS_CONNECT_TEST = "Microsoft Connect Test"
MS_NCSI = "Microsoft NCSI"
# NetworkManager's default `response=` (NM_CONFIG_DEFAULT_CONNECTIVITY_RESPONSE); Arch's server adds "\n".
NM_ONLINE = "NetworkManager is online\n"
NM_STATUS_HEADER = ("X-NetworkManager-Status", "online")
FEDORA_OK = "OK"
# Amazon's S3 probe page as recorded by PacketFence (go/httpdispatcher/proxy.go); the Kindle (and
# Amazon's AVS SDK) only look for the UUID in it.
KINDLE_UUID = "81ce4465-7167-4dcb-835b-dcc9e44c112a"
KINDLE_STUB = (
    '<!DOCTYPE html PUBLIC "-//W3C//DTD HTML 4.01//EN" "http://www.w3.org/TR/html4/strict.dtd">\n'
    "<html>\n"
    "<head>\n"
    "<title>Kindle Reachability Probe Page</title>\n"
    '<META http-equiv="Content-Type" content="text/html; charset=iso-8859-1">\n'
    f"<!--{KINDLE_UUID} created with python 2.5 uuid.uuid4()-->\n"
    "</head>\n"
    '<body bgcolor="#ffffff" text="#000000">\n'
    f"{KINDLE_UUID}\n"
    "</body>\n"
    "</html>\n"
    "\n"
)

# Apple has probed these hosts over the years (older iOS used random paths on the odd domains).
APPLE_HOSTS = frozenset({
    "captive.apple.com", "www.apple.com", "www.appleiphonecell.com", "www.airport.us", "www.ibook.info",
    "www.itools.info", "www.thinkdifferent.us",
})
APPLE_PATHS = ("/hotspot-detect.html", "/library/test/success.html")
MS_CONNECT_HOSTS = frozenset({"www.msftconnecttest.com", "ipv6.msftconnecttest.com", "msftconnecttest.com"})
MS_NCSI_HOSTS = frozenset({"www.msftncsi.com", "ipv6.msftncsi.com", "msftncsi.com"})
FIREFOX_HOSTS = frozenset({"detectportal.firefox.com"})
# Android vendors (Xiaomi, the China overlay of AOSP, ChromeOS fallbacks, ...) point generate_204 at many
# hosts; the path alone is a reliable sign: no real site serves content there.
GOOGLE_204_PATHS = frozenset({"/generate_204", "/gen_204"})
# Everything else is a host *and* path pair: these hosts are real sites (fedoraproject.org, Amazon S3)
# or may become ones, and every name resolves to the box, so a member's ordinary page must not be
# taken for a probe.
EXACT: dict[tuple[str, str], tuple[str, str]] = {
    ("nmcheck.gnome.org", "/check_network_status.txt"): ("linux", "nm_online"),
    ("ping.archlinux.org", "/nm-check.txt"): ("linux", "nm_online"),
    ("network-test.debian.org", "/nm"): ("linux", "nm_online"),
    ("fedoraproject.org", "/static/hotspot.txt"): ("linux", "fedora_ok"),
    ("connectivity-check.ubuntu.com", "/"): ("linux", "nm_status_204"),
    ("conncheck.opensuse.org", "/"): ("linux", "nm_status_204"),
    ("spectrum.s3.amazonaws.com", "/kindle-wifi/wifistub.html"): ("kindle", "kindle_stub"),
}


@dataclass(frozen=True)
class Probe:
    os: str  # android | apple | windows | firefox | linux | kindle
    name: str  # which answer, a key of _ANSWERS


def normalise_host(host: str) -> str:
    """Lowercase, without port and without the trailing dot of a fully qualified name."""
    host = (host or "").strip().lower()
    if host.startswith("["):  # [v6]:port
        end = host.find("]")
        return host[1:end] if end > 0 else host
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def classify(host: str, path: str) -> Probe | None:
    """The probe a request for http://<host><path> is, or None for any other URL."""
    host = normalise_host(host)
    path = (path or "/").split("?", 1)[0].split("#", 1)[0] or "/"
    lower = path.lower()
    if lower in GOOGLE_204_PATHS:
        return Probe("android", "204")
    exact = EXACT.get((host, lower))
    if exact is not None:
        return Probe(*exact)
    if host in APPLE_HOSTS:
        if lower in APPLE_PATHS or (host == "captive.apple.com" and lower in ("/", "/index.html")):
            return Probe("apple", "apple_success")
        # Pre-iOS-7 probes: random /xxxx/yyyy/zzzz.html paths on Apple's probe domains.
        if host != "www.apple.com" and lower.endswith(".html"):
            return Probe("apple", "apple_success")
        return None
    if host in MS_CONNECT_HOSTS:
        if lower == "/connecttest.txt":
            return Probe("windows", "ms_connect")
        if lower == "/redirect":
            return Probe("windows", "ms_redirect")
        return None
    if host in MS_NCSI_HOSTS and lower == "/ncsi.txt":
        return Probe("windows", "ms_ncsi")
    if host in FIREFOX_HOSTS:
        if lower == "/canonical.html":
            return Probe("firefox", "ff_canonical")
        if lower == "/success.txt":
            return Probe("firefox", "ff_success")
    return None


_ANSWERS: dict[str, tuple[int, str, str]] = {
    "204": (204, "text/plain", ""),
    "apple_success": (200, "text/html", APPLE_SUCCESS),
    "ms_connect": (200, "text/plain", MS_CONNECT_TEST),
    "ms_ncsi": (200, "text/plain", MS_NCSI),
    # Windows opens its browser at /redirect once it has seen a portal; the real service redirects to
    # an MSN page. Offline, the caller adds `Location:` pointing at the box's start page.
    "ms_redirect": (302, "text/plain", ""),
    "ff_canonical": (200, "text/html", FIREFOX_CANONICAL),
    "ff_success": (200, "text/plain", FIREFOX_SUCCESS),
    "nm_online": (200, "text/plain", NM_ONLINE),
    "nm_status_204": (204, "text/plain", ""),
    "fedora_ok": (200, "text/plain", FEDORA_OK),
    "kindle_stub": (200, "text/html", KINDLE_STUB),
}

_HEADERS: dict[str, dict[str, str]] = {
    "nm_status_204": dict([NM_STATUS_HEADER]),
}


def online_response(probe: Probe) -> tuple[int, str, str]:
    """(status, content type, body) exactly as the real service answers when the internet works."""
    return _ANSWERS[probe.name]


def online_headers(probe: Probe) -> dict[str, str]:
    """Headers the real service sends that the client reads (NetworkManager's status header), else {}."""
    return dict(_HEADERS.get(probe.name, {}))
