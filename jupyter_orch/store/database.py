"""Engine creation: URL normalisation and per-connection settings, and :class:`Database`,
the connections the store's parts share.

Owns how jupyter-orch talks to a database: SQLite files get WAL mode, foreign keys and a
busy timeout on every connection, and write transactions that take the write lock up
front (``BEGIN IMMEDIATE``) so concurrent writers wait instead of failing; PostgreSQL URLs
are pointed at psycopg 3. Everything else is passed to SQLAlchemy as is.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import StaticPool

from .failures import outages_as_unavailable

#: Execution option that makes a SQLite transaction start with ``BEGIN IMMEDIATE``.
IMMEDIATE = "orch_sqlite_immediate"

SQLITE_BUSY_TIMEOUT_MS = 10_000

CHUNK = 500  # ids per IN (...) clause

T = TypeVar("T")


def normalize_url(url: str | URL) -> URL:
    """``postgresql://`` and ``postgres://`` become ``postgresql+psycopg://`` (psycopg 3)."""
    if isinstance(url, str) and url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def is_sqlite_memory(url: URL) -> bool:
    database = url.database or ""
    return database in ("", ":memory:") or (database.startswith("file:") and "mode=memory" in database)


def make_engine(url: str | URL, *, echo: bool = False) -> Engine:
    """A SQLAlchemy engine for ``url`` with jupyter-orch's connection settings.

    For a SQLite file its parent directory is created. ``sqlite://`` (in memory) shares one
    connection between all users, which suits tests, not concurrent production use.
    """
    parsed = normalize_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, echo=echo, pool_pre_ping=True)

    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
    memory = is_sqlite_memory(parsed)
    if memory:
        kwargs["poolclass"] = StaticPool
    else:
        database = parsed.database or ""
        if not database.startswith("file:"):
            parent = os.path.dirname(os.path.abspath(database))
            os.makedirs(parent, exist_ok=True)
    engine = create_engine(parsed, echo=echo, **kwargs)
    _configure_sqlite(engine, wal=not memory)
    return engine


def _configure_sqlite(engine: Engine, *, wal: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy (below) emit BEGIN itself instead of pysqlite's implicit one.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            if wal:
                cursor.execute("PRAGMA journal_mode=WAL")
                # no checkpoint inside a commit (the engine may commit on its event loop):
                # SqlStore.checkpoint() runs them on the database thread instead
                cursor.execute("PRAGMA wal_autocheckpoint=0")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get(IMMEDIATE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    """``items`` in slices of at most ``size`` (one ``IN (...)`` clause each)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Database:
    """One database as the parts of the store use it: its SQLAlchemy engine and a connection
    per call, whose outages raise :class:`~jupyter_orch.core.errors.Unavailable`."""

    def __init__(self, url: str | URL, *, echo: bool = False) -> None:
        self.engine: Engine = make_engine(url, echo=echo)
        self.sqlite = self.engine.dialect.name == "sqlite"
        #: a SQLite file (not in memory): the engine's writes may use a connection of their own
        self.sqlite_file = self.sqlite and not is_sqlite_memory(self.engine.url)

    @contextmanager
    def connect(self, *, write: bool = False) -> Iterator[Connection]:
        """A connection from the pool; ``write``: on SQLite its transaction takes the write
        lock when it begins (``BEGIN IMMEDIATE``)."""
        with outages_as_unavailable(), self.engine.connect() as conn:
            if write and self.sqlite:
                conn.execution_options(**{IMMEDIATE: True})
            yield conn

    def checkpoint(self) -> None:
        """Fold SQLite's write-ahead log into the database (a no-op elsewhere)."""
        if self.sqlite:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    def dispose(self) -> None:
        self.engine.dispose()
