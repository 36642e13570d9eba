"""Writing the engine's batches of changes: :class:`BatchWriter` stores a folded
:class:`~.batches.Batch` in one transaction, with one bulk statement per table.

On a SQLite file the batch goes through a connection of the writer's own, straight to the
DBAPI (:mod:`.sqlite_fast`); elsewhere through SQLAlchemy Core on a pooled connection.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table, bindparam, insert, select, update

from ..core.records import Change
from . import sqlite_fast
from .batches import Batch
from .convert import (
    attempt_to_columns,
    blob_to_columns,
    cache_to_columns,
    run_to_columns,
    search_to_columns,
    task_to_columns,
    task_to_update_columns,
    worker_to_columns,
)
from .database import Database, chunks
from .failures import outages_as_unavailable
from .models import ATTEMPTS, BLOBS, RUNS, SEARCHES, STEP_CACHE, TASKS, WORKERS

# the name the store's write warnings have always been logged under
log = logging.getLogger("jupyter_orch.store.repository")

_UPDATES: dict[tuple[str, tuple[str, ...]], Any] = {}


def _update_statement(table: Table, columns: tuple[str, ...]) -> Any:
    """The UPDATE for these columns, built once (SQLAlchemy then reuses its compiled form)."""
    key = (table.name, columns)
    statement = _UPDATES.get(key)
    if statement is None:
        pk_names = [c.name for c in table.primary_key.columns]
        statement = update(table).where(*(table.c[name] == bindparam(f"pk_{name}") for name in pk_names))
        _UPDATES[key] = statement
    return statement


def _update_by_pk(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """One UPDATE ... WHERE pk = ? executed for many rows; each row sets all its other columns."""
    pk_names = [c.name for c in table.primary_key.columns]
    statement = _update_statement(table, tuple(rows[0]))
    params = []
    for row in rows:
        values = {k: v for k, v in row.items() if k not in pk_names}
        values.update({f"pk_{name}": row[name] for name in pk_names})
        params.append(values)
    result = conn.execute(statement, params)
    if conn.dialect.supports_sane_multi_rowcount and 0 <= result.rowcount < len(params):
        log.warning(
            "%s: %d of %d updated rows were not found", table.name, len(params) - result.rowcount, len(params)
        )


def _upsert(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert the rows that are new, update those already there (single-column primary key)."""
    (pk,) = table.primary_key.columns
    existing: set[Any] = set()
    for chunk in chunks([r[pk.name] for r in rows]):
        existing.update(conn.scalars(select(pk).where(pk.in_(chunk))))
    new = [r for r in rows if r[pk.name] not in existing]
    old = [r for r in rows if r[pk.name] in existing]
    if new:
        conn.execute(insert(table), new)
    if old:
        _update_by_pk(conn, table, old)


_BLOB_UPSERTS: dict[str, Any] = {}


def _blob_upsert_statement(dialect: str) -> Any:
    """INSERT ... ON CONFLICT (key) DO UPDATE for SQLite and PostgreSQL, built once."""
    statement = _BLOB_UPSERTS.get(dialect)
    if statement is None:
        names = ("size", "task_id", "kind", "created_at", "data")
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            lite = sqlite_insert(BLOBS)
            statement = lite.on_conflict_do_update(
                index_elements=["key"], set_={c: lite.excluded[c] for c in names}
            )
        else:
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            pg = pg_insert(BLOBS)
            statement = pg.on_conflict_do_update(
                index_elements=["key"], set_={c: pg.excluded[c] for c in names}
            )
        _BLOB_UPSERTS[dialect] = statement
    return statement


def _upsert_blobs(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert blobs, replacing any with the same key, in one statement where the database
    can (SQLite and PostgreSQL both have ON CONFLICT)."""
    name = conn.dialect.name
    if name in ("sqlite", "postgresql"):
        conn.execute(_blob_upsert_statement(name), rows)
    else:
        _upsert(conn, BLOBS, rows)


def _insert_attempts(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert attempts; one already there is overwritten (a batch retried after its
    connection broke during COMMIT may have been stored after all)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        statement = pg_insert(ATTEMPTS)
        columns = {c: statement.excluded[c] for c in rows[0] if c not in ("task_id", "number")}
        conn.execute(
            statement.on_conflict_do_update(index_elements=["task_id", "number"], set_=columns), rows
        )
    else:
        conn.execute(insert(ATTEMPTS), rows)


def _warn_missing(table: Table, expected: int, matched: int) -> None:
    if 0 <= matched < expected:
        log.warning("%s: %d of %d updated rows were not found", table.name, expected - matched, expected)


class BatchWriter:
    """Stores the engine's batches of changes in ``db``, each in one transaction.

    ``write_busy_ms``: milliseconds a commit waits for another process's write lock on a
    SQLite file before the database counts as unavailable.
    """

    def __init__(self, db: Database, write_busy_ms: int) -> None:
        self.db = db
        self.write_busy_ms = write_busy_ms
        # a SQLite file: writes go through one connection of their own (_apply_raw)
        self._raw_writes = db.sqlite_file
        self._writer: Any = None
        self._writer_busy = -1  # the busy timeout (ms) set on the writer connection
        self._write_lock = threading.Lock()

    def apply(self, changes: Sequence[Change], *, wait: bool = True) -> None:
        """Write a batch of changes in one transaction (see :meth:`.SqlStore.apply`)."""
        if not changes:
            return
        batch = Batch.fold(changes)
        if self._raw_writes:
            with outages_as_unavailable():
                self._apply_raw(batch, wait)
            return
        with outages_as_unavailable():
            self._apply_core(batch)

    def close(self) -> None:
        """Close the writer's own connection (a later batch opens a new one)."""
        with self._write_lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None

    def _apply_core(self, batch: Batch) -> None:
        tasks, attempts = TASKS, ATTEMPTS
        with self.db.connect(write=True) as conn, conn.begin():
            if self.db.sqlite:
                self._apply_sqlite(sqlite_fast.cursor_of(conn), batch)
                return
            if batch.task_inserts:
                conn.execute(insert(tasks), [task_to_columns(r) for r in batch.task_inserts])
            if batch.task_updates:
                rows = [task_to_update_columns(r) for r in batch.task_updates.values()]
                _update_by_pk(conn, tasks, rows)
            if batch.attempt_inserts:
                _insert_attempts(conn, [attempt_to_columns(r) for r in batch.attempt_inserts])
            if batch.attempt_updates:
                rows = [attempt_to_columns(r) for r in batch.attempt_updates.values()]
                _update_by_pk(conn, attempts, rows)
            if batch.workers:
                _upsert(conn, WORKERS, [worker_to_columns(w) for w in batch.workers.values()])
            if batch.blobs:
                now = time.time()
                _upsert_blobs(conn, [blob_to_columns(b, now) for b in batch.blobs.values()])
            if batch.runs:
                _upsert(conn, RUNS, [run_to_columns(r) for r in batch.runs.values()])
            if batch.searches:
                _upsert(conn, SEARCHES, [search_to_columns(r) for r in batch.searches.values()])
            if batch.cache:
                _upsert(conn, STEP_CACHE, [cache_to_columns(c) for c in batch.cache.values()])

    def _apply_raw(self, batch: Batch, wait: bool = True) -> None:
        """A SQLite file: the batch on the writer's own connection, in one
        ``BEGIN IMMEDIATE`` ... ``COMMIT`` (no pool checkout or events per commit). SQLite
        takes one writer at a time anyway; the lock makes concurrent callers wait their turn
        here instead of inside one another's transaction."""
        with self._write_lock:
            if self._writer is None:
                self._writer = self.db.engine.raw_connection()
                self._writer_busy = -1
            cursor = self._writer.dbapi_connection.cursor()
            busy = self.write_busy_ms if wait else 0
            if busy != self._writer_busy:
                sqlite_fast.execute(cursor, f"PRAGMA busy_timeout={busy}")
                self._writer_busy = busy
            sqlite_fast.execute(cursor, "BEGIN IMMEDIATE")
            try:
                self._apply_sqlite(cursor, batch)
                sqlite_fast.execute(cursor, "COMMIT")
            except BaseException:
                with contextlib.suppress(Exception):
                    cursor.execute("ROLLBACK")
                raise

    @staticmethod
    def _apply_sqlite(cursor: sqlite3.Cursor, batch: Batch) -> None:
        """The same writes as :meth:`_apply_core`, through the DBAPI (see :mod:`.sqlite_fast`)."""
        if batch.task_inserts:
            sqlite_fast.insert_rows(cursor, TASKS, [task_to_columns(r) for r in batch.task_inserts])
        if batch.task_updates:
            rows = [task_to_update_columns(r) for r in batch.task_updates.values()]
            _warn_missing(TASKS, len(rows), sqlite_fast.update_rows(cursor, TASKS, rows))
        if batch.attempt_inserts:  # an upsert: a batch retried after a lost connection may be there
            sqlite_fast.upsert_rows(cursor, ATTEMPTS, [attempt_to_columns(r) for r in batch.attempt_inserts])
        if batch.attempt_updates:
            rows = [attempt_to_columns(r) for r in batch.attempt_updates.values()]
            _warn_missing(ATTEMPTS, len(rows), sqlite_fast.update_rows(cursor, ATTEMPTS, rows))
        if batch.workers:
            sqlite_fast.upsert_rows(cursor, WORKERS, [worker_to_columns(w) for w in batch.workers.values()])
        if batch.blobs:
            now = time.time()
            sqlite_fast.upsert_rows(cursor, BLOBS, [blob_to_columns(b, now) for b in batch.blobs.values()])
        if batch.runs:
            sqlite_fast.upsert_rows(cursor, RUNS, [run_to_columns(r) for r in batch.runs.values()])
        if batch.searches:
            rows = [search_to_columns(r) for r in batch.searches.values()]
            sqlite_fast.upsert_rows(cursor, SEARCHES, rows)
        if batch.cache:
            sqlite_fast.upsert_rows(cursor, STEP_CACHE, [cache_to_columns(c) for c in batch.cache.values()])
