"""Announce the box over mDNS (zeroconf): `<hostname>.local` and an `_http._tcp` service.

Only on the clients' address, never on other interfaces (the box may have an uplink).
"""

from __future__ import annotations

import socket

from zeroconf import IPVersion, ServiceInfo, Zeroconf

from appliance.config import Config


class Announcer:
    def __init__(self, cfg: Config, port: int = 80):
        self.cfg = cfg
        self.port = port
        self.zc: Zeroconf | None = None
        self.info = ServiceInfo(
            "_http._tcp.local.",
            f"{cfg.box_name}._http._tcp.local.",
            addresses=[socket.inet_aton(cfg.address)],
            port=port,
            properties={"path": "/"},
            server=f"{cfg.hostname}.local.",
        )

    def start(self) -> None:
        self.zc = Zeroconf(interfaces=[self.cfg.address], ip_version=IPVersion.V4Only)
        self.zc.register_service(self.info)

    def stop(self) -> None:
        if self.zc is not None:
            self.zc.unregister_service(self.info)
            self.zc.close()
            self.zc = None


def browse(address: str, timeout: float = 3.0, service: str = "_http._tcp.local.") -> list[dict]:
    """Find services from a client's point of view (used by tests and `make venue`)."""
    import threading

    from zeroconf import ServiceBrowser, ServiceStateChange

    found: list[dict] = []
    done = threading.Event()
    zc = Zeroconf(interfaces=[address], ip_version=IPVersion.V4Only)

    def on_change(zeroconf, service_type, name, state_change):
        if state_change is not ServiceStateChange.Added:
            return
        info = zeroconf.get_service_info(service_type, name, timeout=int(timeout * 1000))
        if info:
            found.append({
                "name": name,
                "server": info.server,
                "addresses": [socket.inet_ntoa(a) for a in info.addresses],
                "port": info.port,
            })
            done.set()

    browser = ServiceBrowser(zc, service, handlers=[on_change])
    try:
        done.wait(timeout)
    finally:
        browser.cancel()
        zc.close()
    return found


if __name__ == "__main__":  # python -m appliance.mdns <client-address>: print what a client sees
    import json
    import sys

    print(json.dumps(browse(sys.argv[1])))
