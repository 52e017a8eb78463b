"""Every fetch from outside the box goes through here (today: OParl servers and their files).

The rule, in the order it is checked (`Gate`):

1. Scheme http or https; no user name or password in the URL; a host.
2. The origin (host and port) is allowed: the host of the URL the clerk gave, and the hosts the clerk adds
   explicitly ("weitere Server", `--server`; for servers that keep their files elsewhere). A host given
   without a port (or with the scheme's default port) is allowed on 80 and 443 (servers move from http to
   https); a host given with another port only on that port. Anything else — a file URL, a link or a
   redirect to another host or port — is refused before any name is resolved or any socket opened.
3. The name is resolved ONCE; every address is checked and the connection goes to a checked address (the
   Host header and the TLS server name stay the name): no second lookup that DNS rebinding could answer
   differently. Never: link-local (169.254.0.0/16, fe80::/10; cloud metadata lives there), multicast,
   unspecified, reserved, the box's own addresses (every local interface) and the session network
   (`Config.address`/`prefix`). Private networks (RFC 1918, fc00::/7, 100.64.0.0/10 and other non-global
   ranges) only when `Config.oparl_private_sources` is set (an OParl server inside the city network).
   Loopback only when that option is set AND the clerk wrote the loopback address literally (127.0.0.1,
   [::1], localhost) as the origin, and never on the box's own web port: a name that resolves to loopback
   is always refused, and so is every other loopback port than the one written.
4. Redirects are followed here, not by a library: at most `Limits.redirects`, each target checked by 1–3.
5. Sizes bounded (each JSON answer, each file; by Content-Length before reading and by counting while
   reading) and the number of requests bounded; each limit is refused with a German message naming it.

Only the standard library (http.client, ssl, socket); no proxy is used. Errors: `Refused` (the rule said no;
never retried, no socket was opened), `LimitExceeded` (a bound was reached), `NotFound` (HTTP 404),
`FetchError` (anything else, after retries).
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from urllib.parse import quote, urljoin, urlsplit

from appliance import netinfo
from appliance.config import Config

USER_AGENT = "Sitzungsbox-OParl/1"
REDIRECTS = {301, 302, 303, 307, 308}
DEFAULT_PORTS = {"http": 80, "https": 443}
LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class FetchError(ValueError):
    """A fetch failed (German message)."""


class Refused(FetchError):
    """The address rule refused a URL or an address: nothing was connected."""


class LimitExceeded(FetchError):
    """A size or count limit was reached (the message names the limit)."""


class TooManyRequests(LimitExceeded):
    """The request budget of the whole import is used up."""


class NotFound(FetchError):
    """HTTP 404 (real OParl servers answer it for empty lists, too)."""


@dataclass(frozen=True)
class Limits:
    json_bytes: int = 16 * 1024 * 1024
    file_bytes: int = 512 * 1024 * 1024
    redirects: int = 5
    requests: int = 20_000  # per import: pages, objects and files together
    timeout: float = 20.0
    retries: int = 3
    backoff: float = 0.5


def _mb(n: int) -> str:
    return f"{n / 2**20:.3g} MB" if n >= 2**20 else f"{n} Bytes"


@dataclass(frozen=True)
class Origin:
    host: str  # lower case, IDNA for non-ASCII names, IPv6 without brackets
    ports: frozenset[int]
    literal_loopback: bool  # the clerk wrote a loopback address or localhost


def _host_of(parts) -> str:
    try:
        host = parts.hostname
        _ = parts.port  # raises on a port that is no number or out of range
    except ValueError as exc:
        raise Refused(f"Ungültige Adresse (Port): {parts.geturl()[:100]}") from exc
    if not host:
        raise Refused(f"Adresse ohne Server: {parts.geturl()[:100]}")
    try:
        return host.encode("idna").decode("ascii").lower() if not host.isascii() else host.lower()
    except UnicodeError as exc:
        raise Refused(f"Ungültiger Servername: {host[:100]}") from exc


def _is_loopback_literal(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def split_url(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path with query) of an http(s) URL; Refused for anything else."""
    if any(ord(c) < 32 or ord(c) == 127 for c in url.strip()):
        raise Refused(f"Adresse mit Steuerzeichen: {url.strip()[:100]!r}")
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise Refused(f"Keine http(s)-Adresse: {url[:100]}")
    if parts.username is not None or parts.password is not None:
        raise Refused(f"Adressen mit Benutzername oder Passwort werden nicht abgerufen: {parts.hostname or ''}")
    host = _host_of(parts)
    port = parts.port or DEFAULT_PORTS[scheme]
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    # Real file URLs carry umlauts and spaces: sent percent-encoded (existing %XX escapes stay as they are).
    return scheme, host, port, quote(path, safe="/%?=&;:@!$'()*+,~-._")


def origin_of(text: str) -> Origin:
    """An allowed origin from the clerk's URL or a host the clerk adds ("ris.example", "ris.example:8443",
    "https://ris.example/oparl")."""
    text = text.strip()
    if "://" not in text:
        text = f"http://{text}"
    parts = urlsplit(text)
    scheme, host, port, _path = split_url(text)
    explicit = parts.port is not None and parts.port != DEFAULT_PORTS[scheme]
    ports = frozenset({port}) if explicit else frozenset(DEFAULT_PORTS.values())
    return Origin(host, ports, _is_loopback_literal(host))


def address_problem(ip: IPAddress, *, private_ok: bool, loopback_ok: bool, own: Iterable[str] = (),
                    session_net: ipaddress.IPv4Network | None = None) -> str | None:
    """Why this address may not be fetched from (German), or None. Pure."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_unspecified:
        return "unspezifizierte Adresse"
    if ip.is_loopback:
        return None if loopback_ok else "Loopback-Adresse (die Box selbst)"
    if str(ip) in set(own):
        return "eine eigene Adresse der Sitzungsbox"
    if session_net is not None and ip.version == 4 and ip in session_net:
        return f"im Sitzungsnetz {session_net}"
    if ip.is_link_local:
        return "link-lokale Adresse (169.254.0.0/16, fe80::/10)"
    if ip.is_multicast:
        return "Multicast-Adresse"
    if ip.is_reserved or (ip.version == 4 and ip == ipaddress.IPv4Address("255.255.255.255")):
        return "reservierte Adresse"
    if not ip.is_global:
        return None if private_ok else ("privates Netz (RFC 1918, fc00::/7, 100.64.0.0/10); erlaubt nur mit "
                                        "der Einstellung oparl_private_sources")
    return None


Resolver = Callable[[str, int], list[str]]


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"Server {host} nicht gefunden (Namensauflösung: {exc.args[-1] if exc.args else exc})") \
            from exc
    out: list[str] = []
    for info in infos:
        addr = str(info[4][0]).split("%", 1)[0]
        if addr not in out:
            out.append(addr)
    return out


@dataclass
class Gate:
    """Which URLs and addresses an import may fetch from (the rule in the module docstring)."""

    origins: list[Origin]
    private_ok: bool = False
    own: frozenset[str] = frozenset()
    session_net: ipaddress.IPv4Network | None = None
    web_port: int | None = None
    resolver: Resolver = system_resolver

    @classmethod
    def for_import(cls, cfg: Config, url: str, extra_hosts: Iterable[str] = (), *,
                   resolver: Resolver | None = None) -> Gate:
        origins = [origin_of(url)] + [origin_of(h) for h in extra_hosts if h.strip()]
        return cls(origins, private_ok=cfg.oparl_private_sources, own=frozenset(netinfo.all_ip_addresses()),
                   session_net=cfg.network, web_port=cfg.web_port, resolver=resolver or system_resolver)

    def origin(self, host: str, port: int) -> Origin:
        for o in self.origins:
            if o.host == host and port in o.ports:
                return o
        allowed = ", ".join(sorted({o.host for o in self.origins}))
        raise Refused(f"Server {host}:{port} ist nicht freigegeben (erlaubt: {allowed}; weitere Server "
                      "müssen ausdrücklich angegeben werden)")

    def check_url(self, url: str) -> tuple[str, str, int, str]:
        scheme, host, port, path = split_url(url)
        self.origin(host, port)
        return scheme, host, port, path

    def addresses(self, host: str, port: int) -> list[str]:
        """The checked addresses to connect to for host:port (resolved once); Refused if none passes."""
        origin = self.origin(host, port)
        loopback_ok = self.private_ok and origin.literal_loopback and port != self.web_port
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        candidates = [str(literal)] if literal is not None else self.resolver(host, port)
        good, reasons = [], []
        for text in candidates:
            try:
                ip = ipaddress.ip_address(text)
            except ValueError:
                reasons.append(f"{text}: keine IP-Adresse")
                continue
            why = address_problem(ip, private_ok=self.private_ok, loopback_ok=loopback_ok, own=self.own,
                                  session_net=self.session_net)
            if ip.is_loopback and port == self.web_port:
                why = "der Webdienst der Box selbst"
            if why:
                reasons.append(f"{ip}: {why}")
            else:
                good.append(str(ip))
        if not good:
            raise Refused(f"Adresse verweigert ({host}): {'; '.join(reasons) or 'keine Adresse'}")
        return good


@dataclass
class Fetcher:
    gate: Gate
    limits: Limits = field(default_factory=Limits)
    sleep: Callable[[float], None] = time.sleep
    requests: int = 0

    def _count(self) -> None:
        self.requests += 1
        if self.requests > self.limits.requests:
            raise TooManyRequests(f"Zu viele Anfragen an den Server (höchstens {self.limits.requests} je Import)")

    def _connect(self, scheme: str, host: str, port: int) -> http.client.HTTPConnection:
        addresses = self.gate.addresses(host, port)
        conn: http.client.HTTPConnection
        if scheme == "https":
            conn = http.client.HTTPSConnection(host, port, timeout=self.limits.timeout,
                                               context=ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(host, port, timeout=self.limits.timeout)

        def to_vetted(_address, timeout, source_address=None):
            last: OSError | None = None
            for ip in addresses:  # only checked addresses; the name is never looked up again
                try:
                    return socket.create_connection((ip, port), timeout, source_address)
                except OSError as exc:
                    last = exc
            raise last or OSError("keine Adresse")

        conn._create_connection = to_vetted  # type: ignore[attr-defined] - http.client's documented hook
        return conn

    def _once(self, url: str, accept: str) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse, str]:
        """One answer that is not a redirect, following at most limits.redirects; each hop checked."""
        for _hop in range(self.limits.redirects + 1):
            scheme, host, port, path = self.gate.check_url(url)
            self._count()
            conn = self._connect(scheme, host, port)
            try:
                conn.request("GET", path, headers={"User-Agent": USER_AGENT, "Accept": accept})
                resp = conn.getresponse()
            except BaseException:
                conn.close()
                raise
            if resp.status in REDIRECTS:
                location = resp.getheader("Location")
                conn.close()
                if not location:
                    raise FetchError(f"{url[:120]}: Weiterleitung ohne Ziel")
                url = urljoin(url, location.strip())
                continue
            return conn, resp, url
        raise LimitExceeded(f"{url[:120]}: zu viele Weiterleitungen (höchstens {self.limits.redirects})")

    def _get(self, url: str, accept: str) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        last: str = ""
        for attempt in range(self.limits.retries):
            try:
                conn, resp, final = self._once(url, accept)
            except (Refused, LimitExceeded):
                raise
            except (OSError, http.client.HTTPException) as exc:
                last = f"keine Verbindung ({type(exc).__name__}: {exc})"
            else:
                if resp.status == 200:
                    return conn, resp
                conn.close()
                if resp.status == 404:
                    raise NotFound(f"{final[:120]}: HTTP 404")
                last = f"HTTP {resp.status}"
                if resp.status < 500 and resp.status != 429:
                    break
            if attempt + 1 < self.limits.retries:
                self.sleep(self.limits.backoff * 2 ** attempt)  # real servers answer 500 now and then
        raise FetchError(f"{url[:120]}: {last}")

    def _body(self, url: str, resp: http.client.HTTPResponse, limit: int, what: str) -> Iterator[bytes]:
        length = resp.getheader("Content-Length")
        if length and length.strip().isdigit() and int(length) > limit:
            raise LimitExceeded(f"{url[:120]}: {what} zu groß ({_mb(int(length))}; höchstens {_mb(limit)})")
        total = 0
        while chunk := resp.read(1 << 20):
            total += len(chunk)
            if total > limit:
                raise LimitExceeded(f"{url[:120]}: {what} zu groß (höchstens {_mb(limit)})")
            yield chunk

    def get_bytes(self, url: str) -> bytes:
        """A JSON answer's bytes (at most limits.json_bytes). NotFound for 404."""
        conn, resp = self._get(url, "application/json")
        try:
            return b"".join(self._body(url, resp, self.limits.json_bytes, "JSON-Antwort"))
        except (OSError, http.client.HTTPException) as exc:
            raise FetchError(f"{url[:120]}: Verbindung abgebrochen ({exc})") from exc
        finally:
            conn.close()

    def stream(self, url: str, limit: int | None = None) -> Iterator[bytes]:
        """A file's bytes in chunks (at most limit, default limits.file_bytes)."""
        conn, resp = self._get(url, "*/*")
        try:
            yield from self._body(url, resp, limit or self.limits.file_bytes, "Datei")
        except (OSError, http.client.HTTPException) as exc:
            raise FetchError(f"{url[:120]}: Verbindung abgebrochen ({exc})") from exc
        finally:
            conn.close()
