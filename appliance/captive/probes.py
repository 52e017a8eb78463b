"""Which operating-system connectivity probe is this request, and what does the real service answer?

Pure: no Flask, no I/O. The web layer asks `classify(host, path)` for every request whose Host is not
the box; an admitted device then gets `online_response(probe)` byte for byte, a captive one a 302.

The bodies are the ones the real services send and the clients compare against:
- Android / ChromeOS / Chrome: any `generate_204` / `gen_204` answers HTTP 204 with no body; every
  other status (also 200) means "portal" (Chromium network-portal-detection design doc).
- Apple: `<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>` (what
  captive.apple.com/hotspot-detect.html returns; the same constant is used by e.g. kiwix-hotspot's and
  WROLPi's portals, found with the search tool).
- Windows NCSI: `Microsoft Connect Test` (connecttest.txt, Windows 10+), `Microsoft NCSI` (ncsi.txt,
  Windows 7/8), both text/plain without a trailing newline (Microsoft "Captive portals" docs).
- Firefox: `captivedetect.canonicalContent` in Firefox's all.js is
  `<meta http-equiv="refresh" content="0;url=https://support.mozilla.org/kb/captive-portal"/>`;
  `network.connectivity-service` fetches success.txt and expects `success\\n`.
"""

from __future__ import annotations

from dataclasses import dataclass

APPLE_SUCCESS = "<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>"
FIREFOX_CANONICAL = '<meta http-equiv="refresh" content="0;url=https://support.mozilla.org/kb/captive-portal"/>'
FIREFOX_SUCCESS = "success\n"
MS_CONNECT_TEST = "Microsoft Connect Test"
MS_NCSI = "Microsoft NCSI"

# Apple has probed these hosts over the years (older iOS used random paths on the odd domains).
APPLE_HOSTS = frozenset({
    "captive.apple.com", "www.apple.com", "www.appleiphonecell.com", "www.airport.us", "www.ibook.info",
    "www.itools.info", "www.thinkdifferent.us",
})
APPLE_PATHS = ("/hotspot-detect.html", "/library/test/success.html")
MS_CONNECT_HOSTS = frozenset({"www.msftconnecttest.com", "ipv6.msftconnecttest.com", "msftconnecttest.com"})
MS_NCSI_HOSTS = frozenset({"www.msftncsi.com", "msftncsi.com"})
FIREFOX_HOSTS = frozenset({"detectportal.firefox.com"})
# Android vendors (Samsung, Xiaomi, Huawei builds, ChromeOS) point generate_204 at many hosts;
# the path alone is a reliable sign: no real site serves content there.
GOOGLE_204_PATHS = frozenset({"/generate_204", "/gen_204"})


@dataclass(frozen=True)
class Probe:
    os: str  # android | apple | windows | firefox
    name: str  # which answer: 204 | apple_success | ms_connect | ms_ncsi | ms_redirect | ff_canonical | ff_success


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
}


def online_response(probe: Probe) -> tuple[int, str, str]:
    """(status, content type, body) exactly as the real service answers when the internet works."""
    return _ANSWERS[probe.name]
