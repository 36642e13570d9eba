"""Identifiers: time-ordered, URL-safe, 26 characters (the ULID layout).

Clients may choose a task's id themselves (so a submit can be retried safely and
futures exist before the server answers); ``is_valid_id`` is the rule the server checks.
"""

from __future__ import annotations

import os
import re
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case
_ID_RE = re.compile(r"^[0-9a-hjkmnp-tv-z]{26}$")


def new_id(now: float | None = None) -> str:
    """A new id: 48 bits of milliseconds then 80 random bits, so ids sort by creation."""
    ms = int((time.time() if now is None else now) * 1000)
    value = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def is_valid_id(value: object) -> bool:
    return isinstance(value, str) and bool(_ID_RE.fullmatch(value))  # fullmatch: "$" allows a final "\n"
