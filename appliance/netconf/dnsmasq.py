"""dnsmasq configuration: DHCP for the session network and a DNS that answers every name with the box.

Every name resolving to the box is what makes the phones' connectivity probes (generate_204,
hotspot-detect.html, connecttest.txt) reach the portal; the box is offline, so there is nothing
upstream to ask.
"""

from __future__ import annotations

import ipaddress
import re

from appliance.config import Config

LOCAL_DOMAIN = "home.arpa"  # RFC 8375: the special-use domain for local networks


def dhcp_pool_size(cfg: Config) -> int:
    return int(ipaddress.IPv4Address(cfg.dhcp_end)) - int(ipaddress.IPv4Address(cfg.dhcp_start)) + 1


def render_dnsmasq_conf(cfg: Config, pid_file: str | None = None) -> str:
    """`pid_file` None or "" disables the pid file (systemd tracks the process; Debian's default
    /var/run/dnsmasq.pid would clash with a second instance)."""
    net = cfg.network
    fqdn = f"{cfg.hostname}.{LOCAL_DOMAIN}"
    lines = [
        "# Sitzungsbox: erzeugt von `sitzungsbox netconf` – Änderungen werden überschrieben.",
        f"interface={cfg.interface}",
        # Bind only the client interface's addresses: never answer on the uplink or the host's other nets.
        "bind-interfaces",
        "except-interface=lo",
        # Offline: no upstream servers, no /etc/hosts of the build machine.
        "no-resolv",
        "no-hosts",
        # Every name -> the box, so the OS probes land on the portal.
        f"address=/#/{cfg.address}",
        # ... and every name is local: AAAA queries get an empty answer (NOERROR, no data) instead of
        # REFUSED, which some resolvers retry or treat as a broken network.
        "local=/#/",
        # The box's own name, with a PTR record for the reverse lookup.
        f"domain={LOCAL_DOMAIN}",
        f"host-record={cfg.hostname},{fqdn},{cfg.address}",
        # DHCP
        f"dhcp-range={cfg.dhcp_start},{cfg.dhcp_end},{net.netmask},{cfg.lease_time}",
        f"dhcp-lease-max={dhcp_pool_size(cfg)}",
        # The only DHCP server on this network: answer clients that remember a lease from elsewhere at once.
        "dhcp-authoritative",
        # The default ping check before each offer holds every lease ~3 s; the whole hall joining at once
        # would queue behind it. Conflicts cannot arise: the box is the only address giver here.
        "no-ping",
        # Clients that ask for it (RFC 4039; Android's and systemd's clients) get the lease in one exchange:
        # no window between offer and request in which another phone of a burst takes the address.
        "dhcp-rapid-commit",
        f"dhcp-leasefile={cfg.leases_file}",
        # Phones treat a Wi-Fi without router or DNS as unusable and may not even probe it: always hand out
        # the box as both. Without internet_passthrough nftables forwards nothing, so this leaks nothing.
        f"dhcp-option=option:router,{cfg.address}",
        f"dhcp-option=option:dns-server,{cfg.address}",
    ]
    if cfg.captive_api_url:
        if not re.fullmatch(r"https?://[\x21-\x7e]+", cfg.captive_api_url) or '"' in cfg.captive_api_url:
            raise ValueError(f"captive_api_url ist keine gültige URL: {cfg.captive_api_url!r}")
        # RFC 8910/8908 captive-portal API (option 114): only with an HTTPS URL the phones trust.
        lines.append(f'dhcp-option=114,"{cfg.captive_api_url}"')
    lines.append(f"pid-file={pid_file or ''}")
    # No log-dhcp: per-lease logs would put every member's MAC address into the journal.
    return "\n".join(lines) + "\n"
