"""argv for the few nft/conntrack calls the helper makes, and a parser for `nft -j list set`.

Pure: the only inputs are a table name from the box's own config and an already validated (mac, ip).
"""

from __future__ import annotations

import json

SET_NAME = "admitted"


def element_argv(nft: str, verb: str, table: str, mac: str, ip: str) -> list[str]:
    """`nft add|delete element inet <table> admitted { <mac> . <ip> }` as separate argv words (no shell)."""
    if verb not in ("add", "delete"):
        raise ValueError(verb)
    return [nft, verb, "element", "inet", table, SET_NAME, "{", f"{mac} . {ip}", "}"]


def list_set_argv(nft: str, table: str, json_output: bool = False) -> list[str]:
    return [nft, *(["-j"] if json_output else []), "list", "set", "inet", table, SET_NAME]


def conntrack_argv(conntrack: str, ip: str) -> list[str]:
    # Flows from the client; without this an established connection would outlive the revoke.
    return [conntrack, "-D", "-s", ip]


def parse_set_elements(text: str) -> set[tuple[str, str]]:
    """(mac, ip) pairs of an `ether_addr . ipv4_addr` set from `nft -j list set` output.

    nft 1.0.6 prints each element as {"concat": [mac, ip]}; a set with a timeout wraps it in
    {"elem": {"val": {"concat": ...}, ...}}. An empty set has no "elem" key at all.
    """
    out: set[tuple[str, str]] = set()
    for obj in json.loads(text).get("nftables", []):
        nft_set = obj.get("set") if isinstance(obj, dict) else None
        if not nft_set:
            continue
        for elem in nft_set.get("elem", []):
            if isinstance(elem, dict) and "elem" in elem:
                elem = elem["elem"].get("val", {})
            concat = elem.get("concat") if isinstance(elem, dict) else None
            if isinstance(concat, list) and len(concat) == 2:
                out.add((str(concat[0]).lower(), str(concat[1])))
    return out
