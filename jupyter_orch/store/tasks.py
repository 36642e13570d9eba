"""The store's reads of tasks, their attempts and the blobs kept in the database with them
(all written in the engine's batches, see :mod:`.writer`)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, or_, select

from ..core.records import AttemptRow, AttemptSpan, TaskRow, TimelineSpan, UsageTotals
from ..core.states import TERMINAL, TaskState
from .convert import attempt_from_row, task_from_row
from .database import Database, chunks
from .models import ATTEMPTS, BLOBS, TASKS, TaskModel

ACTIVE_STATES = tuple(s.value for s in TaskState if s not in TERMINAL)


class TaskTables:
    """Queries of the tasks, attempts and blobs tables of ``db``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # --- tasks -------------------------------------------------------------------------------

    def load_active(self) -> list[TaskRow]:
        """Tasks not in a terminal state (pending, scheduled, running), in submit order."""
        t = TASKS
        query = select(t).where(t.c.state.in_(ACTIVE_STATES)).order_by(t.c.seq)
        with self.db.connect() as conn:
            return [task_from_row(r._mapping) for r in conn.execute(query)]

    def next_seq(self) -> int:
        """The sequence number for the next submitted task: max(seq) + 1, 1 when empty."""
        with self.db.connect() as conn:
            current = conn.execute(select(func.max(TaskModel.seq))).scalar()
        return int(current or 0) + 1

    def max_task_id(self) -> str | None:
        """The largest task id stored (ids sort by creation time); None when empty."""
        with self.db.connect() as conn:
            return conn.execute(select(func.max(TASKS.c.id))).scalar()

    def get_task(self, task_id: str) -> TaskRow | None:
        t = TASKS
        with self.db.connect() as conn:
            row = conn.execute(select(t).where(t.c.id == task_id)).first()
        return task_from_row(row._mapping) if row is not None else None

    def get_tasks(self, ids: Sequence[str]) -> dict[str, TaskRow]:
        """The tasks among ``ids`` that exist, by id."""
        t = TASKS
        out: dict[str, TaskRow] = {}
        unique = list(dict.fromkeys(ids))
        with self.db.connect() as conn:
            for chunk in chunks(unique):
                for r in conn.execute(select(t).where(t.c.id.in_(chunk))):
                    row = task_from_row(r._mapping)
                    out[row.id] = row
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
        with self.db.connect() as conn:
            return [task_from_row(r._mapping) for r in conn.execute(query)]

    def count_by_state(self, owner: str | None = None) -> dict[str, int]:
        """Number of tasks in each state; every state is a key, 0 when none."""
        query = select(TaskModel.state, func.count()).group_by(TaskModel.state)
        if owner is not None:
            query = query.where(TaskModel.owner == owner)
        counts = {s.value: 0 for s in TaskState}
        with self.db.connect() as conn:
            for state, n in conn.execute(query):
                counts[state] = int(n)
        return counts

    # --- attempts ----------------------------------------------------------------------------

    def get_attempts(self, task_id: str) -> list[AttemptRow]:
        a = ATTEMPTS
        query = select(a).where(a.c.task_id == task_id).order_by(a.c.number)
        with self.db.connect() as conn:
            return [attempt_from_row(r._mapping) for r in conn.execute(query)]

    def not_started_counts(self, task_ids: Sequence[str]) -> dict[str, int]:
        """How many attempts of each task ended ``not_started`` (sent ahead, never begun,
        placed again) or ``preempted`` (stopped for a task of higher priority, queued again):
        they use up no retry. Tasks with none are left out."""
        a = ATTEMPTS
        out: dict[str, int] = {}
        with self.db.connect() as conn:
            for chunk in chunks(list(dict.fromkeys(task_ids))):
                query = (
                    select(a.c.task_id, func.count())
                    .where(a.c.task_id.in_(chunk), a.c.error_kind.in_(("not_started", "preempted")))
                    .group_by(a.c.task_id)
                )
                out.update({task_id: int(n) for task_id, n in conn.execute(query)})
        return out

    def attempt_spans(self, since: float, until: float) -> list[AttemptSpan]:
        """Every attempt that ran between ``since`` and ``until``, cut to the period (one
        still running: up to ``until``): its owner, GPUs and run time."""
        a, t = ATTEMPTS, TASKS
        query = (
            select(t.c.owner, a.c.gpus, a.c.started_at, a.c.ended_at)
            .select_from(a.join(t, a.c.task_id == t.c.id))
            .where(a.c.started_at.is_not(None), a.c.started_at < until)
            .where(or_(a.c.ended_at.is_(None), a.c.ended_at > since))
        )
        with self.db.connect() as conn:
            return [
                AttemptSpan(
                    owner,
                    len(gpus or ()),
                    max(since, started),
                    min(until, until if ended is None else ended),
                    running=ended is None,
                )
                for owner, gpus, started, ended in conn.execute(query)
            ]

    def timeline(self, since: float, until: float, limit: int) -> list[TimelineSpan]:
        """The attempts that ran between ``since`` and ``until`` (one still running too),
        the latest ``limit`` by start."""
        a, t = ATTEMPTS, TASKS
        query = (
            select(
                a.c.task_id,
                t.c.name,
                t.c.owner,
                a.c.number,
                a.c.state,
                a.c.worker_id,
                a.c.gpus,
                a.c.started_at,
                a.c.ended_at,
            )  # fmt: skip
            .select_from(a.join(t, a.c.task_id == t.c.id))
            .where(a.c.started_at.is_not(None), a.c.started_at < until)
            .where(or_(a.c.ended_at.is_(None), a.c.ended_at > since))
            .order_by(a.c.started_at.desc())
            .limit(limit)
        )
        with self.db.connect() as conn:
            return [
                TimelineSpan(
                    task_id,
                    name or task_id,
                    owner,
                    number,
                    state,
                    worker_id,
                    tuple(int(g) for g in gpus or ()),
                    started,
                    ended,
                )  # fmt: skip
                for task_id, name, owner, number, state, worker_id, gpus, started, ended in conn.execute(
                    query
                )
            ]

    def usage_between(self, since: float, until: float) -> list[UsageTotals]:
        """Per owner, what their task attempts used between ``since`` and ``until``: each
        attempt's run time within the period, and that times its GPUs. Owners with no
        attempt in the period are left out."""
        totals: dict[str, list[float]] = {}
        for span in self.attempt_spans(since, until):
            seconds = max(0.0, span.ended - span.started)
            entry = totals.setdefault(span.owner, [0.0, 0.0, 0])
            entry[0] += seconds * span.gpus
            entry[1] += seconds
            entry[2] += 1
        return [UsageTotals(o, g, s, int(n)) for o, (g, s, n) in sorted(totals.items())]

    # --- blobs -------------------------------------------------------------------------------

    def get_blob(self, key: str) -> bytes:
        """A blob kept in the database (``InsertBlob`` with data); KeyError if there is none."""
        b = BLOBS
        with self.db.connect() as conn:
            data = conn.scalar(select(b.c.data).where(b.c.key == key))
        if data is None:
            raise KeyError(key)
        return bytes(data)

    def blob_keys(self, task_id: str) -> list[str]:
        b = BLOBS
        with self.db.connect() as conn:
            return list(conn.scalars(select(b.c.key).where(b.c.task_id == task_id).order_by(b.c.key)))
