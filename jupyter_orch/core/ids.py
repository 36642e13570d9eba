"""Identifiers: time-ordered, URL-safe, 26 characters (the ULID layout).

Clients may choose a task's id themselves (so a submit can be retried safely and
futures exist before the server answers); ``is_valid_id`` is the rule the server checks.
"""

from __future__ import annotations

import os
import re
import threading
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case
_ID_RE = re.compile(r"^[0-9a-hjkmnp-tv-z]{26}$")
_lock = threading.Lock()
_last = 0  # the last id this process made, as a number


def new_id(now: float | None = None) -> str:
    """A new id: 48 bits of milliseconds then 80 random bits, so ids sort by creation.

    Without ``now``, ids made by this process only grow: within one millisecond (or if the
    clock steps back) the next id is the last one plus one, as ULID's monotonic mode does.
    The server relies on that to skip a database lookup for a fresh id."""
    global _last
    if now is not None:
        return _encode((int(now * 1000) << 80) | int.from_bytes(os.urandom(10), "big"))
    ms = int(time.time() * 1000)
    with _lock:
        value = (ms << 80) | int.from_bytes(os.urandom(10), "big")
        if value <= _last:
            value = _last + 1
        _last = value
    return _encode(value)


def _encode(value: int) -> str:
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def is_valid_id(value: object) -> bool:
    return isinstance(value, str) and bool(_ID_RE.fullmatch(value))  # fullmatch: "$" allows a final "\n"


def blob_key(kind: str, task_id: str) -> str:
    """Where a task's payload/result/error lives in the blob store (sharded folders); the
    client uses it too, when it writes a payload into the store itself."""
    return f"{kind}/{task_id[-2:]}/{task_id}"
