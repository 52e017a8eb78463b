"""Password hashes: scrypt from the standard library, stored in werkzeug's text format.

`scrypt:<n>:<r>:<p>$<salt>$<hex>` is what werkzeug's generate_password_hash(method="scrypt") wrote for every box so
far, so existing hashes keep working; writing it here lets the command line and the use cases hash and check
without importing a web library. Never log a password or a hash.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string

N, R, P = 2**15, 8, 1  # werkzeug's scrypt defaults (32 MiB, ~0.1 s on a Raspberry Pi 4)
SALT_CHARS = string.ascii_letters + string.digits
SALT_LEN = 16


def _scrypt(password: str, salt: str, n: int, r: int, p: int) -> str:
    return hashlib.scrypt(password.encode(), salt=salt.encode(), n=n, r=r, p=p, maxmem=132 * n * r * p).hex()


def hash_password(password: str) -> str:
    salt = "".join(secrets.choice(SALT_CHARS) for _ in range(SALT_LEN))
    return f"scrypt:{N}:{R}:{P}${salt}${_scrypt(password, salt, N, R, P)}"


def check_password(stored: str, password: str) -> bool:
    """False for a wrong password and for anything that is not a scrypt hash of this format."""
    try:
        method, salt, expected = stored.split("$", 2)
        name, *args = method.split(":")
        n, r, p = map(int, args) if args else (N, R, P)
    except ValueError:
        return False
    if name != "scrypt" or n > 2**20 or r > 32 or p > 16:  # a hash we never wrote: no unbounded work
        return False
    return hmac.compare_digest(_scrypt(password, salt, n, r, p), expected)
