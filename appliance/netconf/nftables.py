"""The nftables ruleset: who may reach what on the session network.

Everyone on the client interface gets DHCP, DNS, mDNS, ICMP and the portal (port 80 is redirected to
the web port). Only admitted devices — `mac . ip` pairs in the set `admitted`, added and removed by the
helper alone — reach the box's services directly and, with internet_passthrough, the uplink.
Clients never reach each other: dropped in the inet forward chain (routed) and in a bridge table
(frames bridged between ports of the client bridge: radios, external APs).

nft 1.0.6 traps: a rule right before `}` needs a newline or `;`; `fwd` is a keyword (chains are named
`forward`). Reloading `nft -f` this file replaces both tables atomically: the `table X {}` +
`delete table X` idiom works whether or not the table exists. Reloading empties `admitted`: the
helper re-adds live admissions from the database.
"""

from __future__ import annotations

from appliance.config import Config


def _q(name: str) -> str:
    # Interface names are validated ([A-Za-z0-9_.-]{1,15}); quoting keeps nft from reading them as keywords.
    return f'"{name}"'


def render_ruleset(cfg: Config) -> str:
    iface = _q(cfg.interface)
    passthrough = bool(cfg.internet_passthrough and cfg.uplink)
    t = cfg.nft_table
    out = [
        "#!/usr/sbin/nft -f",
        "# Sitzungsbox: erzeugt von `sitzungsbox netconf` – Änderungen werden überschrieben.",
        "# Idempotent: create (no-op if present), delete, recreate – one atomic transaction.",
        f"table inet {t} {{}}",
        f"delete table inet {t}",
        f"table bridge {t}_isolation {{}}",
        f"delete table bridge {t}_isolation",
        "",
        f"table inet {t} {{",
        "\t# Admitted devices: the helper adds/removes `mac . ip` (both must match: no spoofing the IP alone).",
        "\tset admitted {",
        "\t\ttype ether_addr . ipv4_addr",
        "\t}",
        "",
        "\tchain prerouting {",
        "\t\ttype nat hook prerouting priority dstnat; policy accept;",
    ]
    if passthrough:
        out.append(f"\t\t# Passthrough: admitted devices reach web servers elsewhere on port 80 unchanged.\n"
                   f"\t\tiifname {iface} ether saddr . ip saddr @admitted ip daddr != {cfg.address} accept")
    out += [
        "\t\t# Port 80 -> the web app: the portal for everyone, the box's pages for admitted devices.",
        f"\t\tiifname {iface} tcp dport 80 redirect to :{cfg.web_port}",
        "\t}",
        "",
        "\tchain input {",
        "\t\ttype filter hook input priority filter; policy accept;",
        "\t\t# Only the client interface is gated; the uplink and a service port stay as the host has them.",
        f"\t\tiifname != {iface} accept",
        "\t\tct state established,related accept",
        "\t\tct state invalid drop",
        "\t\tudp dport 67 accept",
        "\t\tudp dport 53 accept",
        "\t\ttcp dport 53 accept",
        "\t\tudp dport 5353 accept",
        "\t\t# IPv4 ping and IPv6 neighbour discovery.",
        "\t\tmeta l4proto { icmp, ipv6-icmp } accept",
        "\t\t# The portal, reached through the port-80 redirect only (ct status dnat): for everyone.",
        f"\t\ttcp dport {cfg.web_port} ct status dnat accept",
        "\t\t# Admitted devices: every service of the box, the web port directly included.",
        "\t\tether saddr . ip saddr @admitted accept",
        "\t\tdrop",
        "\t}",
        "",
        "\tchain forward {",
        "\t\ttype filter hook forward priority filter; policy drop;",
        "\t\t# Client to client through the box: never.",
        f"\t\tiifname {iface} oifname {iface} drop",
        "\t\tct state established,related accept",
    ]
    if passthrough:
        out += [
            "\t\t# internet_passthrough: admitted devices only.",
            f"\t\tiifname {iface} oifname {_q(cfg.uplink)} ether saddr . ip saddr @admitted accept",
        ]
    out.append("\t}")
    if passthrough:
        out += [
            "",
            "\tchain postrouting {",
            "\t\ttype nat hook postrouting priority srcnat; policy accept;",
            f"\t\toifname {_q(cfg.uplink)} masquerade",
            "\t}",
        ]
    out += [
        "}",
        "",
        f"# Frames bridged between ports of the client bridge {cfg.interface} (radios, external APs; in the venue:",
        "# veths) never reach another client; frames to and from the box itself pass input/output, not forward.",
        "# The whole bridge forward hook drops: `meta ibrname` would scope it to one bridge, but it needs",
        "# CONFIG_NFT_BRIDGE_META, which some kernels (the CI VM's) lack; the box has no other bridge.",
        f"table bridge {t}_isolation {{",
        "\tchain forward {",
        "\t\ttype filter hook forward priority filter; policy drop;",
        "\t}",
        "}",
    ]
    return "\n".join(out) + "\n"
