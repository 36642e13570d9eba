"""``SqlStore``: the engine's only door to the database.

Owns applying the engine's batches of changes (:mod:`jupyter_orch.core.records`) in one
transaction with bulk statements, the read queries the API needs, tokens and schema
migration. Sync and thread-safe: every call uses its own connection from the pool;
nothing else is shared between calls. Row <-> record conversion is in :mod:`.convert`.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from alembic import command
from alembic.migration import MigrationContext
from sqlalchemy import Connection, Engine, Table, bindparam, func, insert, or_, select, update

from jupyter_orch.core.ids import new_id
from jupyter_orch.core.records import (
    AttemptRow,
    Change,
    InsertAttempt,
    InsertBlob,
    InsertTask,
    RunRow,
    SaveCacheEntry,
    SaveRun,
    TaskRow,
    TokenRow,
    UpdateAttempt,
    UpdateTask,
    UpsertWorker,
    WorkerRow,
)
from jupyter_orch.core.states import TERMINAL, TaskState

from . import sqlite_fast
from .convert import (
    attempt_from_row,
    attempt_to_columns,
    blob_to_columns,
    task_from_row,
    task_to_columns,
    task_to_update_columns,
    token_from_row,
    worker_from_row,
    worker_to_columns,
)
from .database import IMMEDIATE, is_sqlite_memory, make_engine
from .failures import outages_as_unavailable
from .migrations import alembic_config
from .models import ATTEMPTS, BLOBS, RUNS, STEP_CACHE, TASKS, TOKENS, WORKERS, TaskModel
from .workflows import WorkflowTables, cache_to_columns, run_to_columns

log = logging.getLogger(__name__)

ACTIVE_STATES = tuple(s.value for s in TaskState if s not in TERMINAL)
TOKEN_PREFIX = "orch_"
_CHUNK = 500  # ids per IN (...) clause

T = TypeVar("T")


def hash_secret(secret: str) -> str:
    """What the database keeps of a token: its SHA-256, hex."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _chunks(items: Sequence[T], size: int = _CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _Batch:
    """A batch of changes folded so that each row is written once, with its last snapshot.

    A row inserted in the batch and updated later in it is inserted with the later values.
    Two inserts of one key are both kept: the database refuses the second.
    """

    def __init__(self) -> None:
        self.task_inserts: list[TaskRow] = []
        self.task_updates: dict[str, TaskRow] = {}
        self.attempt_inserts: list[AttemptRow] = []
        self.attempt_updates: dict[tuple[str, int], AttemptRow] = {}
        self.workers: dict[str, WorkerRow] = {}
        self.blobs: dict[str, InsertBlob] = {}
        self.runs: dict[str, RunRow] = {}
        self.cache: dict[str, SaveCacheEntry] = {}

    @classmethod
    def fold(cls, changes: Sequence[Change]) -> _Batch:
        batch = cls()
        inserted_tasks: dict[str, int] = {}
        inserted_attempts: dict[tuple[str, int], int] = {}
        for change in changes:
            if isinstance(change, InsertTask):
                task_id = change.row.id
                batch.task_updates.pop(task_id, None)
                inserted_tasks[task_id] = len(batch.task_inserts)
                batch.task_inserts.append(change.row)
            elif isinstance(change, UpdateTask):
                task_id = change.row.id
                if task_id in inserted_tasks:
                    batch.task_inserts[inserted_tasks[task_id]] = change.row
                else:
                    batch.task_updates[task_id] = change.row
            elif isinstance(change, InsertAttempt):
                key = (change.row.task_id, change.row.number)
                batch.attempt_updates.pop(key, None)
                inserted_attempts[key] = len(batch.attempt_inserts)
                batch.attempt_inserts.append(change.row)
            elif isinstance(change, UpdateAttempt):
                key = (change.row.task_id, change.row.number)
                if key in inserted_attempts:
                    batch.attempt_inserts[inserted_attempts[key]] = change.row
                else:
                    batch.attempt_updates[key] = change.row
            elif isinstance(change, UpsertWorker):
                batch.workers[change.row.id] = change.row
            elif isinstance(change, InsertBlob):
                batch.blobs[change.key] = change
            elif isinstance(change, SaveRun):
                batch.runs[change.row.id] = change.row
            elif isinstance(change, SaveCacheEntry):
                batch.cache[change.key] = change
            else:
                raise TypeError(f"not a store change: {change!r}")
        return batch


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
    for chunk in _chunks([r[pk.name] for r in rows]):
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
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        else:
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        base = dialect_insert(BLOBS)
        columns = {c: base.excluded[c] for c in ("size", "task_id", "kind", "created_at", "data")}
        statement = _BLOB_UPSERTS[dialect] = base.on_conflict_do_update(index_elements=["key"], set_=columns)
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


class SqlStore(WorkflowTables):
    """Persistence for the engine on any SQLAlchemy database (SQLite and PostgreSQL tested)."""

    def __init__(self, url: str, *, echo: bool = False, write_busy_timeout: float = 2.0) -> None:
        """``write_busy_timeout``: seconds an engine commit waits for another process's write
        lock on a SQLite file before the database counts as unavailable."""
        self.url = url
        self.write_busy_ms = max(0, int(write_busy_timeout * 1000))
        self.engine: Engine = make_engine(url, echo=echo)
        self._sqlite = self.engine.dialect.name == "sqlite"
        # a SQLite file: engine writes go through one connection of their own (_apply_raw)
        self._raw_writes = self._sqlite and not is_sqlite_memory(self.engine.url)
        self._writer: Any = None
        self._writer_busy = -1  # the busy timeout (ms) set on the writer connection
        self._write_lock = threading.Lock()

    @property
    def local_commits(self) -> bool:
        """Commits are local and take a fraction of a millisecond (SQLite): the engine may
        run small ones on its event loop. Checkpoints then come from :meth:`checkpoint`."""
        return self._sqlite

    def checkpoint(self) -> None:
        """Fold SQLite's write-ahead log into the database (a no-op elsewhere)."""
        if self._sqlite:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    def __repr__(self) -> str:
        return f"SqlStore({self.engine.url.render_as_string(hide_password=True)!r})"

    # --- lifecycle ---------------------------------------------------------------------------

    def migrate(self) -> None:
        """Bring the schema to the newest revision (a no-op when it is there already)."""
        config = alembic_config()
        with self._connect(write=True) as conn, conn.begin():
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    def revision(self) -> str | None:
        """The schema revision the database is at; None before the first migrate()."""
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def close(self) -> None:
        with self._write_lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        self.engine.dispose()

    @contextmanager
    def _connect(self, *, write: bool = False) -> Iterator[Connection]:
        with outages_as_unavailable(), self.engine.connect() as conn:
            if write and self._sqlite:
                conn.execution_options(**{IMMEDIATE: True})
            yield conn

    # --- writes ------------------------------------------------------------------------------

    def apply(self, changes: Sequence[Change], *, wait: bool = True) -> None:
        """Write a batch of changes in one transaction: all of it is stored, or none of it.

        Rows are written with one executemany per kind of change, in the order tasks,
        attempts, workers, blobs; a row changed several times is written once, as last seen.
        An unreachable, locked or full database raises :class:`Unavailable`; anything else
        is about the data. ``wait=False``: a SQLite file locked by another writer fails at
        once instead of after the busy timeout (the engine's commits on its event loop).
        """
        if not changes:
            return
        batch = _Batch.fold(changes)
        if self._raw_writes:
            with outages_as_unavailable():
                self._apply_raw(batch, wait)
            return
        with outages_as_unavailable():
            self._apply_core(batch)

    def _apply_core(self, batch: _Batch) -> None:
        tasks, attempts = TASKS, ATTEMPTS
        with self._connect(write=True) as conn, conn.begin():
            if self._sqlite:
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
            if batch.cache:
                _upsert(conn, STEP_CACHE, [cache_to_columns(c) for c in batch.cache.values()])

    def _apply_raw(self, batch: _Batch, wait: bool = True) -> None:
        """A SQLite file: the batch on the store's own writer connection, in one
        ``BEGIN IMMEDIATE`` ... ``COMMIT`` (no pool checkout or events per commit). SQLite
        takes one writer at a time anyway; the lock makes concurrent callers wait their turn
        here instead of inside one another's transaction."""
        with self._write_lock:
            if self._writer is None:
                self._writer = self.engine.raw_connection()
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
    def _apply_sqlite(cursor: sqlite3.Cursor, batch: _Batch) -> None:
        """The same writes as :meth:`apply`, through the DBAPI (see :mod:`.sqlite_fast`)."""
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
        if batch.cache:
            sqlite_fast.upsert_rows(cursor, STEP_CACHE, [cache_to_columns(c) for c in batch.cache.values()])

    # --- tasks -------------------------------------------------------------------------------

    def load_active(self) -> list[TaskRow]:
        """Tasks not in a terminal state (pending, scheduled, running), in submit order."""
        t = TASKS
        query = select(t).where(t.c.state.in_(ACTIVE_STATES)).order_by(t.c.seq)
        with self._connect() as conn:
            return [task_from_row(r._mapping) for r in conn.execute(query)]

    def next_seq(self) -> int:
        """The sequence number for the next submitted task: max(seq) + 1, 1 when empty."""
        with self._connect() as conn:
            current = conn.execute(select(func.max(TaskModel.seq))).scalar()
        return int(current or 0) + 1

    def max_task_id(self) -> str | None:
        """The largest task id stored (ids sort by creation time); None when empty."""
        with self._connect() as conn:
            return conn.execute(select(func.max(TASKS.c.id))).scalar()

    def get_task(self, task_id: str) -> TaskRow | None:
        t = TASKS
        with self._connect() as conn:
            row = conn.execute(select(t).where(t.c.id == task_id)).first()
        return task_from_row(row._mapping) if row is not None else None

    def get_tasks(self, ids: Sequence[str]) -> dict[str, TaskRow]:
        """The tasks among ``ids`` that exist, by id."""
        t = TASKS
        out: dict[str, TaskRow] = {}
        unique = list(dict.fromkeys(ids))
        with self._connect() as conn:
            for chunk in _chunks(unique):
                for r in conn.execute(select(t).where(t.c.id.in_(chunk))):
                    row = task_from_row(r._mapping)
                    out[row.id] = row
        return out

    def get_attempts(self, task_id: str) -> list[AttemptRow]:
        a = ATTEMPTS
        query = select(a).where(a.c.task_id == task_id).order_by(a.c.number)
        with self._connect() as conn:
            return [attempt_from_row(r._mapping) for r in conn.execute(query)]

    def not_started_counts(self, task_ids: Sequence[str]) -> dict[str, int]:
        """How many attempts of each task ended ``not_started`` (sent ahead, never begun,
        placed again): they use up no retry. Tasks with none are left out."""
        a = ATTEMPTS
        out: dict[str, int] = {}
        with self._connect() as conn:
            for chunk in _chunks(list(dict.fromkeys(task_ids))):
                query = (
                    select(a.c.task_id, func.count())
                    .where(a.c.task_id.in_(chunk), a.c.error_kind == "not_started")
                    .group_by(a.c.task_id)
                )
                out.update({task_id: int(n) for task_id, n in conn.execute(query)})
        return out

    def list_tasks(
        self,
        *,
        owner: str | None = None,
        states: Sequence[str] | None = None,
        search: str | None = None,
        limit: int = 100,
        before_seq: int | None = None,
    ) -> list[TaskRow]:
        """Newest first (highest seq). ``search`` matches a substring of name or id, any case;
        ``before_seq`` pages on: pass the ``seq`` of the last task of the previous page."""
        t = TASKS
        query = select(t)
        if owner is not None:
            query = query.where(t.c.owner == owner)
        if states is not None:
            query = query.where(t.c.state.in_([TaskState(s).value for s in states]))
        if search:
            query = query.where(
                or_(t.c.name.icontains(search, autoescape=True), t.c.id.icontains(search, autoescape=True))
            )
        if before_seq is not None:
            query = query.where(t.c.seq < before_seq)
        query = query.order_by(t.c.seq.desc()).limit(max(0, limit))
        with self._connect() as conn:
            return [task_from_row(r._mapping) for r in conn.execute(query)]

    def count_by_state(self, owner: str | None = None) -> dict[str, int]:
        """Number of tasks in each state; every state is a key, 0 when none."""
        query = select(TaskModel.state, func.count()).group_by(TaskModel.state)
        if owner is not None:
            query = query.where(TaskModel.owner == owner)
        counts = {s.value: 0 for s in TaskState}
        with self._connect() as conn:
            for state, n in conn.execute(query):
                counts[state] = int(n)
        return counts

    # --- workers -----------------------------------------------------------------------------

    def list_workers(self) -> list[WorkerRow]:
        w = WORKERS
        with self._connect() as conn:
            return [worker_from_row(r._mapping) for r in conn.execute(select(w).order_by(w.c.name, w.c.id))]

    def get_worker(self, worker_id: str) -> WorkerRow | None:
        w = WORKERS
        with self._connect() as conn:
            row = conn.execute(select(w).where(w.c.id == worker_id)).first()
        return worker_from_row(row._mapping) if row is not None else None

    # --- tokens ------------------------------------------------------------------------------

    def create_token(
        self, name: str, *, scope: str = "worker", owner: str = "", provider: str = "static"
    ) -> tuple[TokenRow, str]:
        """A new token and its secret. The secret is shown once: only its hash is stored."""
        if scope not in ("worker", "api"):
            raise ValueError(f"token scope must be 'worker' or 'api', not {scope!r}")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = TokenRow(
            id=new_id(), name=name, scope=scope, owner=owner, provider=provider, created_at=time.time()
        )
        values = {
            "id": row.id,
            "name": row.name,
            "scope": row.scope,
            "owner": row.owner,
            "provider": row.provider,
            "secret_hash": hash_secret(secret),
            "created_at": row.created_at,
            "revoked_at": None,
        }
        with self._connect(write=True) as conn, conn.begin():
            conn.execute(insert(TOKENS), values)
        return row, secret

    def find_token(self, secret: str) -> TokenRow | None:
        """The token whose secret this is, revoked or not (check ``.revoked``); None if unknown."""
        if not secret:
            return None
        t = TOKENS
        with self._connect() as conn:
            row = conn.execute(select(t).where(t.c.secret_hash == hash_secret(secret))).first()
        return token_from_row(row._mapping) if row is not None else None

    def revoke_token(self, token_id: str) -> bool:
        """Revoke a token (idempotent: an already revoked one keeps its time); False if unknown."""
        t = TOKENS
        with self._connect(write=True) as conn, conn.begin():
            exists = conn.execute(select(t.c.id).where(t.c.id == token_id)).first() is not None
            if exists:
                conn.execute(
                    update(t)
                    .where(t.c.id == token_id, t.c.revoked_at.is_(None))
                    .values(revoked_at=time.time())
                )
        return exists

    def list_tokens(self, scope: str | None = None) -> list[TokenRow]:
        t = TOKENS
        query = select(t).order_by(t.c.created_at, t.c.id)
        if scope is not None:
            query = query.where(t.c.scope == scope)
        with self._connect() as conn:
            return [token_from_row(r._mapping) for r in conn.execute(query)]

    # --- blobs -------------------------------------------------------------------------------

    def get_blob(self, key: str) -> bytes:
        """A blob kept in the database (``InsertBlob`` with data); KeyError if there is none."""
        b = BLOBS
        with self._connect() as conn:
            data = conn.scalar(select(b.c.data).where(b.c.key == key))
        if data is None:
            raise KeyError(key)
        return bytes(data)

    def blob_keys(self, task_id: str) -> list[str]:
        b = BLOBS
        with self._connect() as conn:
            return list(conn.scalars(select(b.c.key).where(b.c.task_id == task_id).order_by(b.c.key)))
