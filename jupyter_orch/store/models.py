"""SQLAlchemy 2 declarative models: the database schema of jupyter-orch.

This module owns the table layout only. Conversions between rows and the engine's
records live in :mod:`.convert`, :mod:`.workflows` and :mod:`.schedules`; schema changes
go through the Alembic migrations in ``jupyter_orch/store/migrations`` (a test checks both agree).
Times are floats of unix seconds; enums are stored as their string values.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Deterministic constraint names, so migrations (and SQLite batch mode) can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID = String(26)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, float: Double}


class TaskModel(Base):
    __tablename__ = "orch_tasks"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True, index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    owner: Mapped[str] = mapped_column(String(255), default="")  # indexed by (owner, seq)
    state: Mapped[str] = mapped_column(String(32))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    depends: Mapped[list[Any]] = mapped_column(JSON)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    worker_id: Mapped[str | None] = mapped_column(String(64))
    gpus: Mapped[list[Any]] = mapped_column(JSON)
    payload_key: Mapped[str | None] = mapped_column(String(255))
    payload_size: Mapped[int] = mapped_column(BigInteger, default=0)
    result_key: Mapped[str | None] = mapped_column(String(255))
    result_size: Mapped[int] = mapped_column(BigInteger, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    error_kind: Mapped[str | None] = mapped_column(String(64))
    traceback: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Double)
    updated_at: Mapped[float] = mapped_column(Double)
    started_at: Mapped[float | None] = mapped_column(Double)
    ended_at: Mapped[float | None] = mapped_column(Double)
    retry_at: Mapped[float | None] = mapped_column(Double)

    __table_args__ = (
        Index("ix_orch_tasks_owner_seq", "owner", "seq"),
        Index("ix_orch_tasks_state", "state"),
    )


class AttemptModel(Base):
    __tablename__ = "orch_attempts"

    task_id: Mapped[str] = mapped_column(
        ID, ForeignKey("orch_tasks.id", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[str] = mapped_column(String(32))
    worker_id: Mapped[str | None] = mapped_column(String(64))
    gpus: Mapped[list[Any]] = mapped_column(JSON)
    scheduled_at: Mapped[float | None] = mapped_column(Double)
    started_at: Mapped[float | None] = mapped_column(Double)
    ended_at: Mapped[float | None] = mapped_column(Double)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    error_kind: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (Index("ix_orch_attempts_ended_at", "ended_at"),)  # the GPU timeline's window


class WorkerModel(Base):
    __tablename__ = "orch_workers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    provider: Mapped[str] = mapped_column(String(64))
    token_id: Mapped[str | None] = mapped_column(String(64))
    hostname: Mapped[str] = mapped_column(String(255), default="")
    state: Mapped[str] = mapped_column(String(32))
    info: Mapped[dict[str, Any]] = mapped_column(JSON)
    connected_at: Mapped[float | None] = mapped_column(Double)
    last_seen: Mapped[float | None] = mapped_column(Double)


class TokenModel(Base):
    __tablename__ = "orch_tokens"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    scope: Mapped[str] = mapped_column(String(16))
    owner: Mapped[str] = mapped_column(String(255), default="")
    provider: Mapped[str] = mapped_column(String(64))
    # a worker token for a group: its workers run the tasks of the group's members
    group_name: Mapped[str | None] = mapped_column(String(255))  # empty or NULL: none
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[float] = mapped_column(Double)
    revoked_at: Mapped[float | None] = mapped_column(Double)


class BlobModel(Base):
    __tablename__ = "orch_blobs"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    task_id: Mapped[str | None] = mapped_column(ID, index=True)
    kind: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[float] = mapped_column(Double)
    # small blobs live here instead of in the blob store (one row insert instead of a file)
    data: Mapped[bytes | None] = mapped_column(LargeBinary)


class RunModel(Base):
    __tablename__ = "orch_runs"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    owner: Mapped[str] = mapped_column(String(255), default="")
    state: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    steps: Mapped[list[Any]] = mapped_column(JSON)
    created_at: Mapped[float] = mapped_column(Double)
    updated_at: Mapped[float] = mapped_column(Double)
    ended_at: Mapped[float | None] = mapped_column(Double)
    source: Mapped[str] = mapped_column(Text, default="")
    run_dir: Mapped[str] = mapped_column(Text, default="")
    schedule_id: Mapped[str | None] = mapped_column(ID)

    __table_args__ = (
        Index("ix_orch_runs_owner_id", "owner", "id"),
        Index("ix_orch_runs_state", "state"),
    )


class SearchModel(Base):
    """Hyperparameter searches: their request and the search state (JSON)."""

    __tablename__ = "orch_searches"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    owner: Mapped[str] = mapped_column(String(255), default="")
    state: Mapped[str] = mapped_column(String(32))
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    search_state: Mapped[dict[str, Any]] = mapped_column(JSON)
    payload_key: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[float] = mapped_column(Double)
    updated_at: Mapped[float] = mapped_column(Double)
    ended_at: Mapped[float | None] = mapped_column(Double)

    __table_args__ = (
        Index("ix_orch_searches_owner_id", "owner", "id"),
        Index("ix_orch_searches_state", "state"),
    )


class StepCacheModel(Base):
    """Succeeded cacheable workflow steps by cache key (code, params, upstream results)."""

    __tablename__ = "orch_step_cache"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    task_id: Mapped[str] = mapped_column(ID)
    result_key: Mapped[str | None] = mapped_column(String(255))
    result_size: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[float] = mapped_column(Double)


class ScheduleModel(Base):
    __tablename__ = "orch_schedules"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    owner: Mapped[str] = mapped_column(String(255), default="")
    cron: Mapped[str] = mapped_column(String(255))
    workflow: Mapped[dict[str, Any]] = mapped_column(JSON)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[float] = mapped_column(Double)
    last_fired_at: Mapped[float | None] = mapped_column(Double)
    last_run_id: Mapped[str | None] = mapped_column(ID)


# The tables, typed as such, for Core statements.
TASKS = cast(Table, TaskModel.__table__)
ATTEMPTS = cast(Table, AttemptModel.__table__)
WORKERS = cast(Table, WorkerModel.__table__)
TOKENS = cast(Table, TokenModel.__table__)
BLOBS = cast(Table, BlobModel.__table__)
RUNS = cast(Table, RunModel.__table__)
STEP_CACHE = cast(Table, StepCacheModel.__table__)
SEARCHES = cast(Table, SearchModel.__table__)
SCHEDULES = cast(Table, ScheduleModel.__table__)
