"""Plain records the engine keeps in memory and the store persists.

They are the contract between the engine and any store implementation: the store turns
them into rows and back, the engine never sees a database object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .spec import TaskSpec
from .states import AttemptState, TaskState


@dataclass
class TaskRow:
    spec: TaskSpec
    state: TaskState = TaskState.PENDING
    seq: int = 0
    created_at: float = 0.0
    updated_at: float = 0.0
    attempt: int = 0  # number of the current (latest) attempt; 0 = never placed
    worker_id: str | None = None
    gpus: tuple[int, ...] = ()
    payload_key: str | None = None
    payload_size: int = 0
    result_key: str | None = None
    result_size: int = 0
    error: str | None = None
    error_kind: str | None = None
    traceback: str | None = None
    reason: str | None = None  # why it is pending, in words
    started_at: float | None = None
    ended_at: float | None = None
    retry_at: float | None = None  # earliest time of the next automatic retry

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def owner(self) -> str:
        return self.spec.owner


@dataclass
class AttemptRow:
    task_id: str
    number: int  # 1, 2, ...
    state: AttemptState = AttemptState.SCHEDULED
    worker_id: str | None = None
    gpus: tuple[int, ...] = ()
    scheduled_at: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    exit_code: int | None = None
    error: str | None = None
    error_kind: str | None = None


@dataclass
class WorkerRow:
    id: str
    name: str
    provider: str = "static"
    token_id: str | None = None
    hostname: str = ""
    state: str = "connected"  # connected | disconnected | gone
    info: dict[str, Any] = field(default_factory=dict)  # hello: slots, cpus, memory, gpus, labels, ...
    connected_at: float | None = None
    last_seen: float | None = None


@dataclass
class TokenRow:
    """A credential the server issued. ``scope`` is ``worker`` (a worker connects with it)
    or ``api`` (a kernel, script or CLI calls the REST API with it as ``owner``)."""

    id: str
    name: str
    scope: str = "worker"
    owner: str = ""
    provider: str = "static"
    created_at: float = 0.0
    revoked_at: float | None = None
    group: str = ""  # a worker token for a group: its workers run the group's members' tasks

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


@dataclass
class RunRow:
    """One run of a workflow. ``steps`` lists its steps (name, base, kind, target, task_id,
    depends by name, cache) in the file's order; their states are their tasks'."""

    id: str
    name: str
    owner: str = ""
    state: str = "running"  # running | succeeded | failed | cancelled
    params: dict[str, Any] = field(default_factory=dict)
    steps: list[dict[str, Any]] = field(default_factory=list)
    created_at: float = 0.0
    updated_at: float = 0.0
    ended_at: float | None = None
    source: str = ""  # the workflow file's name as submitted
    run_dir: str = ""  # ORCH_RUN_DIR of its steps
    schedule_id: str | None = None


@dataclass
class SearchRow:
    """One hyperparameter search. ``request`` holds its config, space and the trial task
    template (without the payload, stored once at ``payload_key``); ``search_state`` is
    :meth:`jupyter_orch.core.search.SearchState.to_dict`."""

    id: str
    name: str
    owner: str = ""
    state: str = "running"  # running | succeeded | failed | cancelled
    request: dict[str, Any] = field(default_factory=dict)
    search_state: dict[str, Any] = field(default_factory=dict)
    payload_key: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0
    ended_at: float | None = None


@dataclass
class ScheduleRow:
    """A workflow registered to run on a cron expression. ``workflow`` holds what a run
    needs: the file's text and name and the notebooks it names (``files``)."""

    id: str
    name: str
    cron: str
    owner: str = ""
    workflow: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    last_fired_at: float | None = None  # the cron time it last fired for
    last_run_id: str | None = None


# --- changes the engine hands to the store, applied in one transaction per batch ---------
# Each carries a snapshot taken on the engine's thread: the store never sees a row the
# engine is still mutating.


@dataclass(frozen=True)
class InsertTask:
    row: TaskRow


@dataclass(frozen=True)
class UpdateTask:
    row: TaskRow


@dataclass(frozen=True)
class InsertAttempt:
    row: AttemptRow


@dataclass(frozen=True)
class UpdateAttempt:
    row: AttemptRow


@dataclass(frozen=True)
class UpsertWorker:
    row: WorkerRow


@dataclass(frozen=True)
class InsertBlob:
    key: str
    size: int
    task_id: str | None
    kind: str  # payload | result | error | log
    data: bytes | memoryview | None = None  # a small blob kept in the database itself


@dataclass(frozen=True)
class SaveRun:
    row: RunRow


@dataclass(frozen=True)
class SaveSearch:
    row: SearchRow


@dataclass(frozen=True)
class SaveCacheEntry:
    """A succeeded cacheable step: later runs with the same key reuse its result."""

    key: str
    task_id: str
    result_key: str | None
    result_size: int
    created_at: float


Change = (
    InsertTask
    | UpdateTask
    | InsertAttempt
    | UpdateAttempt
    | UpsertWorker
    | InsertBlob
    | SaveRun
    | SaveSearch
    | SaveCacheEntry
)


@dataclass(frozen=True)
class UsageTotals:
    """What one user's task attempts used within a period (``jupyter orch admin usage``)."""

    owner: str
    gpu_seconds: float  # each attempt's run time within the period, times its GPUs
    task_seconds: float  # each attempt's run time within the period
    attempts: int  # attempts that ran within the period


@dataclass(frozen=True)
class TimelineSpan:
    """An attempt as the GPU timeline draws it: which task, whose, on which worker and GPUs,
    from when to when (``ended_at`` None: still running)."""

    task_id: str
    name: str
    owner: str
    attempt: int
    state: str  # the attempt's: running, succeeded, failed, cancelled, lost, preempted
    worker_id: str | None
    gpus: tuple[int, ...]
    started_at: float
    ended_at: float | None


@dataclass(frozen=True)
class AttemptSpan:
    """An attempt's run within a period: whose, how many GPUs, from when to when."""

    owner: str
    gpus: int
    started: float
    ended: float
    running: bool = False  # not ended yet: ``ended`` is the period's end
