"""Personal member codes: the way in for a member whose phone the box cannot name by its Wi-Fi key.

With external access points (config `radios = []`) no hostapd of ours reports `keyid=`, so the portal
cannot tell whose phone it is. The member then types the short code printed on the card under the Wi-Fi
key. A valid code of the active session admits that one (MAC, IP) pair as the member; identify() names
the member from that admission row, never from the MAC. Still no login, no password, no cookie.

Codes are 8 characters from the upper-case part of keys.KEY_ALPHABET (no 0/O, 1/I/l look-alikes):
32^8 ≈ 10^12 codes against a few dozen members, and the portal lets a device try only a few times
(Throttle). Stored without the dash, shown grouped ("K7PD-M3QX"), typed in any case, with or without
spaces and dashes.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from appliance.captive.keys import KEY_ALPHABET

CODE_ALPHABET = "".join(ch for ch in KEY_ALPHABET if not ch.islower())
CODE_LENGTH = 8
GROUP = 4
EXAMPLE = "K7PD-M3QX"  # the shape of a code, shown next to the portal's field
_IGNORED = " -–—._\t"  # what people type between groups


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def new_codes(count: int, taken: Iterable[str] = ()) -> list[str]:
    """`count` distinct fresh codes that are not in `taken` (the column is UNIQUE across all sessions)."""
    seen = set(taken)
    out: list[str] = []
    while len(out) < count:
        code = new_code()
        if code not in seen:
            seen.add(code)
            out.append(code)
    return out


def display(code: str) -> str:
    """As printed on the card: groups of four joined by a dash."""
    return "-".join(code[i:i + GROUP] for i in range(0, len(code), GROUP))


def normalise(text: str) -> str | None:
    """What a person typed → the stored form, or None when it cannot be a code at all (wrong length or a
    character that never occurs in codes). Case, spaces and dashes do not matter."""
    cleaned = "".join(ch for ch in (text or "")[:64] if ch not in _IGNORED).upper()
    if len(cleaned) != CODE_LENGTH or any(ch not in CODE_ALPHABET for ch in cleaned):
        return None
    return cleaned


def sql_random_code() -> str:
    """The same kind of code as an SQLite expression (random() is evaluated anew at every call): lets the
    schema step give existing members codes inside its own transaction."""
    char = f"substr('{CODE_ALPHABET}', 1 + abs(random() % {len(CODE_ALPHABET)}), 1)"
    return " || ".join([char] * CODE_LENGTH)


@dataclass
class _Tries:
    failures: int = 0
    blocked_until: float = 0.0
    last: float = 0.0


class Throttle:
    """Wrong codes per device: `free` tries, then a wait that doubles with each further miss (capped).

    Keyed by every handle of the device (its IP and its MAC), so neither a new DHCP address nor a new
    random MAC alone resets the count. In memory of the one web worker: a restart forgives, which costs an
    attacker far more time than it gains. Quiet entries are forgotten after `forget` seconds.
    """

    def __init__(self, free: int = 5, base: float = 5.0, cap: float = 300.0, forget: float = 900.0,
                 clock: Callable[[], float] = time.monotonic, max_entries: int = 20000) -> None:
        self.free, self.base, self.cap, self.forget = free, base, cap, forget
        self.clock, self.max_entries = clock, max_entries
        self._lock = threading.Lock()
        self._tries: dict[str, _Tries] = {}

    def wait(self, handles: Iterable[str]) -> float:
        """Seconds until these handles may try again (0: now)."""
        now = self.clock()
        with self._lock:
            found = [self._tries[h].blocked_until - now for h in handles if h in self._tries]
        return max([0.0, *found])

    def failed(self, handles: Iterable[str]) -> int:
        """Count a wrong code; returns the device's number of misses."""
        now = self.clock()
        worst = 0
        with self._lock:
            if len(self._tries) >= self.max_entries:
                self._prune(now)
            for h in handles:
                if not h:
                    continue
                tries = self._tries.setdefault(h, _Tries())
                if now - tries.last > self.forget:
                    tries.failures = 0
                tries.failures += 1
                tries.last = now
                if tries.failures >= self.free:
                    delay = min(self.cap, self.base * 2 ** (tries.failures - self.free))
                    tries.blocked_until = max(tries.blocked_until, now + delay)
                worst = max(worst, tries.failures)
        return worst

    def succeeded(self, handles: Iterable[str]) -> None:
        with self._lock:
            for h in handles:
                self._tries.pop(h, None)

    def _prune(self, now: float) -> None:
        for h in [h for h, t in self._tries.items() if now - t.last > self.forget and t.blocked_until <= now]:
            del self._tries[h]
        if len(self._tries) >= self.max_entries:  # a flood of handles: forget the oldest half
            for h in sorted(self._tries, key=lambda k: self._tries[k].last)[: len(self._tries) // 2]:
                del self._tries[h]
