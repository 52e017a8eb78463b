"""Personal Wi-Fi keys and the Wi-Fi QR payload.

Keys and SSIDs use only [A-Za-z0-9_-]: the ZXing reading (backslash escapes) and the WPA3 spec's
reading (percent encoding) of a WIFI: payload then agree on every phone.
"""

from __future__ import annotations

import re
import secrets

SAFE_RE = re.compile(r"^[A-Za-z0-9_-]+$")
# No look-alikes (0/O, 1/l/I): members may have to type the key from the card.
KEY_ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
GUEST_KEYID = "guest"


def new_passphrase(length: int = 16) -> str:
    """16 characters of a 56-letter alphabet: ~93 bits, far beyond offline-guessable for WPA2."""
    return "".join(secrets.choice(KEY_ALPHABET) for _ in range(length))


def new_keyid() -> str:
    """An opaque keyid for hostapd's wpa_psk_file: hostapd logs it, so it never carries a name."""
    return "m" + secrets.token_hex(5)


def wifi_payload(ssid: str, passphrase: str, hidden: bool = False) -> str:
    """The join payload phone cameras understand (iOS 11+, Android 10+)."""
    for label, value in (("SSID", ssid), ("Schlüssel", passphrase)):
        if not SAFE_RE.match(value):
            raise ValueError(f"{label} darf nur A-Z, a-z, 0-9, _ und - enthalten")
    if not 8 <= len(passphrase) <= 63:
        raise ValueError("WPA2-Schlüssel müssen 8 bis 63 Zeichen haben")
    return f"WIFI:T:WPA;S:{ssid};P:{passphrase};{'H:true;' if hidden else ''};"
