"""What a database failure means for the engine: the database is unavailable for now
(:class:`~jupyter_orch.core.errors.Unavailable`: retry later, answer 503), or this data
cannot be stored (any other exception: the change that carries it is refused).

Connection-level errors (refused, dropped, restarting server), a locked or read-only
SQLite file and a full disk are "unavailable"; a constraint or a value the database
refuses is about the data. Text the database cannot hold (NUL characters, lone
surrogates) from workers is made storable before it is written (:func:`storable_text`).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

from sqlalchemy import exc as sa_exc

from ..core.errors import Unavailable

# SQLite reports data and schema problems as OperationalError too: these are not outages
_SQLITE_NOT_OUTAGE = ("no such table", "no such column", "syntax error", "has no column", "too many")
_SQLITE_OUTAGE = (
    "database is locked",
    "database table is locked",
    "disk i/o error",
    "unable to open database",
    "database or disk is full",
    "readonly database",
    "database disk image is malformed",
)


def is_outage(error: BaseException) -> bool:
    """Whether ``error`` says the database cannot be reached or written now (not that the
    data is wrong)."""
    if isinstance(error, (sa_exc.DisconnectionError, sa_exc.TimeoutError)):
        return True
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, (sa_exc.OperationalError, sa_exc.InterfaceError)):
        text = str(error.orig if error.orig is not None else error).lower()
        if any(marker in text for marker in _SQLITE_OUTAGE):
            return True
        return not any(marker in text for marker in _SQLITE_NOT_OUTAGE)
    return False


def describe(error: BaseException) -> str:
    """The database's own words, one line."""
    orig = getattr(error, "orig", None)
    text = str(orig if orig is not None else error).strip().splitlines()
    return text[0] if text else type(error).__name__


@contextlib.contextmanager
def outages_as_unavailable() -> Iterator[None]:
    """Re-raise an outage as :class:`Unavailable` (503 for the API, retry for the journal)."""
    try:
        yield
    except Unavailable:
        raise
    except Exception as error:
        if is_outage(error):
            raise Unavailable(f"the database is unavailable: {describe(error)}") from error
        raise


def storable_text(value: str | None) -> str | None:
    """Text any database stores: NUL characters and lone surrogates (which a worker's error
    message may carry) replaced with U+FFFD."""
    if value is None:
        return None
    if "\0" in value:
        value = value.replace("\0", "\ufffd")
    if not value.isascii():
        value = _SURROGATE.sub("\ufffd", value)
    return value


_SURROGATE = re.compile("[\ud800-\udfff]")
