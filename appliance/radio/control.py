"""Commands to the radios after a key change (architecture step 7: rotation -> reload -> deauth)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from appliance.config import Config
from appliance.radio.ctrl import HostapdCtrl, RadioError

log = logging.getLogger(__name__)


class RadiosUnreachable(RadioError):
    """Some radios did not take the new keys; `dropped` lists what the reachable ones disconnected."""

    def __init__(self, interfaces: list[str], dropped: list[str]):
        super().__init__("Funkmodul(e) nicht erreichbar: " + ", ".join(interfaces))
        self.interfaces = interfaces
        self.dropped = dropped


def reload_keys(cfg: Config, db, revoked_keyids: Iterable[str], timeout: float = 2.0) -> list[str]:
    """RELOAD_WPA_PSK on every radio, then DEAUTHENTICATE its connected stations with a revoked keyid.

    hostapd 2.10 already drops stations whose PSK is gone on reload; the explicit deauth covers a
    passphrase that survived under another keyid. Returns the MACs asked to leave. The stations
    table is left to the daemon, which sees the AP-STA-DISCONNECTED events. A radio that cannot be
    reached is logged and skipped; the others are still reloaded, then RadiosUnreachable is raised so
    the clerk learns that the old keys may still work there.
    """
    revoked = set(revoked_keyids)
    dropped: list[str] = []
    unreachable: list[str] = []
    for radio in cfg.radios:
        iface = radio.interface
        # Read the victims before the reload: the reload's own kicks may reach the table first.
        victims = [mac for mac, keyid in db.execute(
            "SELECT mac, keyid FROM stations WHERE interface = ? AND connected = 1 ORDER BY mac", [iface]).fetchall()
            if keyid in revoked]
        try:
            with HostapdCtrl(cfg.hostapd_ctrl_dir / iface, local_dir=cfg.run_dir, timeout=timeout) as ctrl:
                ctrl.reload_wpa_psk()
                for mac in victims:
                    ctrl.deauthenticate(mac)
                    dropped.append(mac)
        except RadioError as exc:
            log.error("Schlüssel auf Funkmodul %s nicht neu geladen: %s", iface, exc)
            unreachable.append(iface)
    if unreachable:
        raise RadiosUnreachable(unreachable, dropped)
    return dropped
