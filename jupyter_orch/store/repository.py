"""``SqlStore``: the engine's only door to the database, built from parts that each own a
concern and share one :class:`~.database.Database`:

- :class:`~.writer.BatchWriter`: the engine's batches of changes (:mod:`jupyter_orch.core.records`),
  each in one transaction with bulk statements;
- :class:`~.tasks.TaskTables`: tasks, attempts and the blobs kept in the database;
- :class:`~.workflows.RunTables`: workflow runs and the step cache;
- :class:`~.searches.SearchTable`: hyperparameter searches;
- :class:`~.schedules.ScheduleTable`, :class:`~.tokens.TokenTable`, :class:`~.workers.WorkerTable`.

``SqlStore`` adds schema migration and delegates the rest. Sync and thread-safe: every call
uses its own connection from the pool (engine writes to a SQLite file use the writer's
own); nothing else is shared between calls. Row <-> record conversion is in :mod:`.convert`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from alembic import command
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from ..core.records import (
    AttemptRow,
    AttemptSpan,
    Change,
    RunRow,
    SaveCacheEntry,
    ScheduleRow,
    SearchRow,
    TaskRow,
    TimelineSpan,
    TokenRow,
    UsageTotals,
    WorkerRow,
)
from .database import Database
from .migrations import alembic_config
from .schedules import ScheduleTable
from .searches import SearchTable
from .tasks import ACTIVE_STATES, TaskTables
from .tokens import TOKEN_PREFIX, TokenTable, hash_secret
from .workers import WorkerTable
from .workflows import RunTables
from .writer import BatchWriter

__all__ = ["ACTIVE_STATES", "TOKEN_PREFIX", "SqlStore", "hash_secret"]


class SqlStore:
    """Persistence for the engine on any SQLAlchemy database (SQLite and PostgreSQL tested)."""

    def __init__(self, url: str, *, echo: bool = False, write_busy_timeout: float = 2.0) -> None:
        """``write_busy_timeout``: seconds an engine commit waits for another process's write
        lock on a SQLite file before the database counts as unavailable."""
        self.url = url
        self.db = Database(url, echo=echo)
        self.engine: Engine = self.db.engine
        self.writer = BatchWriter(self.db, max(0, int(write_busy_timeout * 1000)))
        self.tasks = TaskTables(self.db)
        self.runs = RunTables(self.db)
        self.schedules = ScheduleTable(self.db)
        self.searches = SearchTable(self.db)
        self.tokens = TokenTable(self.db)
        self.workers = WorkerTable(self.db)

    @property
    def write_busy_ms(self) -> int:
        return self.writer.write_busy_ms

    @property
    def local_commits(self) -> bool:
        """Commits are local and take a fraction of a millisecond (SQLite): the engine may
        run small ones on its event loop. Checkpoints then come from :meth:`checkpoint`."""
        return self.db.sqlite

    def checkpoint(self) -> None:
        """Fold SQLite's write-ahead log into the database (a no-op elsewhere)."""
        self.db.checkpoint()

    def __repr__(self) -> str:
        return f"SqlStore({self.engine.url.render_as_string(hide_password=True)!r})"

    # --- lifecycle ---------------------------------------------------------------------------

    def migrate(self) -> None:
        """Bring the schema to the newest revision (a no-op when it is there already)."""
        config = alembic_config()
        with self.db.connect(write=True) as conn, conn.begin():
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    def revision(self) -> str | None:
        """The schema revision the database is at; None before the first migrate()."""
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def close(self) -> None:
        self.writer.close()
        self.db.dispose()

    # --- writes ------------------------------------------------------------------------------

    def apply(self, changes: Sequence[Change], *, wait: bool = True) -> None:
        """Write a batch of changes in one transaction: all of it is stored, or none of it.

        Rows are written with one executemany per kind of change, in the order tasks,
        attempts, workers, blobs; a row changed several times is written once, as last seen.
        An unreachable, locked or full database raises :class:`Unavailable`; anything else
        is about the data. ``wait=False``: a SQLite file locked by another writer fails at
        once instead of after the busy timeout (the engine's commits on its event loop).
        """
        self.writer.apply(changes, wait=wait)

    # --- tasks -------------------------------------------------------------------------------

    def load_active(self) -> list[TaskRow]:
        """Tasks not in a terminal state (pending, scheduled, running), in submit order."""
        return self.tasks.load_active()

    def next_seq(self) -> int:
        """The sequence number for the next submitted task: max(seq) + 1, 1 when empty."""
        return self.tasks.next_seq()

    def max_task_id(self) -> str | None:
        """The largest task id stored (ids sort by creation time); None when empty."""
        return self.tasks.max_task_id()

    def get_task(self, task_id: str) -> TaskRow | None:
        return self.tasks.get_task(task_id)

    def get_tasks(self, ids: Sequence[str]) -> dict[str, TaskRow]:
        """The tasks among ``ids`` that exist, by id."""
        return self.tasks.get_tasks(ids)

    def get_attempts(self, task_id: str) -> list[AttemptRow]:
        return self.tasks.get_attempts(task_id)

    def not_started_counts(self, task_ids: Sequence[str]) -> dict[str, int]:
        """How many attempts of each task ended ``not_started`` (sent ahead, never begun,
        placed again): they use up no retry. Tasks with none are left out."""
        return self.tasks.not_started_counts(task_ids)

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
        return self.tasks.list_tasks(
            owner=owner, states=states, search=search, limit=limit, before_seq=before_seq
        )

    def count_by_state(self, owner: str | None = None) -> dict[str, int]:
        """Number of tasks in each state; every state is a key, 0 when none."""
        return self.tasks.count_by_state(owner)

    def attempt_spans(self, since: float, until: float) -> list[AttemptSpan]:
        """Every attempt that ran between the two times, cut to them."""
        return self.tasks.attempt_spans(since, until)

    def timeline(self, since: float, until: float, limit: int) -> list[TimelineSpan]:
        """The attempts that ran between the two times, the latest ``limit`` by start."""
        return self.tasks.timeline(since, until, limit)

    def usage_between(self, since: float, until: float) -> list[UsageTotals]:
        """Per owner, the GPU- and task-seconds of their attempts between the two times."""
        return self.tasks.usage_between(since, until)

    # --- workers -----------------------------------------------------------------------------

    def list_workers(self) -> list[WorkerRow]:
        return self.workers.list_workers()

    def get_worker(self, worker_id: str) -> WorkerRow | None:
        return self.workers.get_worker(worker_id)

    # --- tokens ------------------------------------------------------------------------------

    def create_token(
        self, name: str, *, scope: str = "worker", owner: str = "", provider: str = "static", group: str = ""
    ) -> tuple[TokenRow, str]:
        """A new token and its secret. The secret is shown once: only its hash is stored."""
        return self.tokens.create_token(name, scope=scope, owner=owner, provider=provider, group=group)

    def find_token(self, secret: str) -> TokenRow | None:
        """The token whose secret this is, revoked or not (check ``.revoked``); None if unknown."""
        return self.tokens.find_token(secret)

    def revoke_token(self, token_id: str) -> bool:
        """Revoke a token (idempotent: an already revoked one keeps its time); False if unknown."""
        return self.tokens.revoke_token(token_id)

    def list_tokens(self, scope: str | None = None) -> list[TokenRow]:
        return self.tokens.list_tokens(scope)

    # --- blobs -------------------------------------------------------------------------------

    def get_blob(self, key: str) -> bytes:
        """A blob kept in the database (``InsertBlob`` with data); KeyError if there is none."""
        return self.tasks.get_blob(key)

    def blob_keys(self, task_id: str) -> list[str]:
        return self.tasks.blob_keys(task_id)

    # --- runs and the step cache -------------------------------------------------------------

    def get_run(self, run_id: str) -> RunRow | None:
        return self.runs.get_run(run_id)

    def list_runs(
        self,
        *,
        owner: str | None = None,
        states: Sequence[str] | None = None,
        limit: int = 100,
        before: str | None = None,
    ) -> list[RunRow]:
        """Runs newest first (ids sort by creation time)."""
        return self.runs.list_runs(owner=owner, states=states, limit=limit, before=before)

    def load_active_runs(self) -> list[RunRow]:
        return self.runs.load_active_runs()

    def get_cache_entry(self, key: str) -> SaveCacheEntry | None:
        return self.runs.get_cache_entry(key)

    # --- searches ----------------------------------------------------------------------------

    def get_search(self, search_id: str) -> SearchRow | None:
        return self.searches.get_search(search_id)

    def list_searches(
        self, *, owner: str | None = None, states: Sequence[str] | None = None, limit: int = 100
    ) -> list[SearchRow]:
        """Searches newest first."""
        return self.searches.list_searches(owner=owner, states=states, limit=limit)

    def load_active_searches(self) -> list[SearchRow]:
        return self.searches.load_active_searches()

    # --- schedules ---------------------------------------------------------------------------

    def create_schedule(
        self, name: str, cron: str, workflow: dict[str, Any], params: dict[str, Any], *, owner: str = ""
    ) -> ScheduleRow:
        return self.schedules.create_schedule(name, cron, workflow, params, owner=owner)

    def list_schedules(self, owner: str | None = None) -> list[ScheduleRow]:
        return self.schedules.list_schedules(owner)

    def get_schedule(self, schedule_id: str) -> ScheduleRow | None:
        return self.schedules.get_schedule(schedule_id)

    def delete_schedule(self, schedule_id: str) -> bool:
        return self.schedules.delete_schedule(schedule_id)

    def mark_schedule_fired(self, schedule_id: str, fired_at: float, run_id: str | None) -> None:
        self.schedules.mark_schedule_fired(schedule_id, fired_at, run_id)
