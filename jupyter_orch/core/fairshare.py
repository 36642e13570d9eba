"""Quotas and fair share across users, for one orchestrator serving a whole hub.

- **Quotas** (:class:`Quota`) cap what a user, and each of their groups, holds at once: GPUs,
  GPUs of a type (``{"A100": 4}``: GPUs whose model names it), tasks running, tasks queued.
  A task that would go over one waits, and says which in one sentence ("waiting: your group
  ml-team uses 8 of its 8 GPUs").
- **Fair share** orders the users whose tasks compete for the same free capacity: the one
  whose recent use, divided by their weight, is the smallest goes first, and every task
  placed counts against its user for the rest of the round, so equal users take turns and a
  user of weight 2 gets two turns to one. Recent use is GPU-seconds (CPU-seconds for
  CPU-only tasks) that decay by half every ``half_life`` seconds (:class:`Usage`), plus
  what a user holds right now: a heavy user never starves a light one, and yesterday's heavy
  use stops counting against them (Slurm's and Kueue's fair sharing, without their trees).
- Priorities still come first: within a user, a higher priority goes first; across users,
  fair share decides within each priority.

Pure: times are arguments, and the engine gives what is held now (:class:`Holdings`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import SpecError
from .queue import PendingTask
from .records import AttemptSpan
from .resources import Gpu

QUOTA_KEYS = ("gpus", "gpu_types", "running", "queued")
DEFAULT_HALF_LIFE = 24 * 3600.0
QUANTUM = 300.0  # seconds of use a task placed in a round counts for, while its round lasts


@dataclass(frozen=True)
class Quota:
    gpus: int | None = None  # GPUs held at once
    gpu_types: Mapping[str, int] = field(default_factory=dict)  # GPUs whose model names the key
    running: int | None = None  # tasks placed (scheduled or running) at once
    queued: int | None = None  # tasks waiting at once (refused at submit beyond)

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Quota:
        """From configuration; a bad value is a :class:`SpecError` naming ``where.key``."""
        if not isinstance(data, Mapping):
            raise SpecError(f"{where} must be an object with any of {', '.join(QUOTA_KEYS)}", field=where)
        unknown = sorted(str(k) for k in data if k not in QUOTA_KEYS)
        if unknown:
            raise SpecError(
                f"{where}.{unknown[0]} is not a quota; known: {', '.join(QUOTA_KEYS)}", field=where
            )
        types = data.get("gpu_types") or {}
        if not isinstance(types, Mapping):
            raise SpecError(f"{where}.gpu_types must map GPU types to counts", field=f"{where}.gpu_types")
        return cls(
            gpus=_count(data.get("gpus"), f"{where}.gpus"),
            gpu_types={str(k): _count(v, f"{where}.gpu_types.{k}") or 0 for k, v in types.items()},
            running=_count(data.get("running"), f"{where}.running"),
            queued=_count(data.get("queued"), f"{where}.queued"),
        )


def _count(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SpecError(f"{where} must be a whole number of at least 0, not {value!r}", field=where)
    return value


def weight_value(value: Any, where: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise SpecError(f"{where} must be a number above 0, not {value!r}", field=where)
    return float(value)


@dataclass(frozen=True)
class Shares:
    """The settings: quotas and weights per user and per group, and how fast use decays."""

    users: Mapping[str, Quota] = field(default_factory=dict)
    groups: Mapping[str, Quota] = field(default_factory=dict)
    default: Quota = field(default_factory=Quota)  # a user's, unless ``users`` names them
    user_weights: Mapping[str, float] = field(default_factory=dict)
    group_weights: Mapping[str, float] = field(default_factory=dict)
    half_life: float = DEFAULT_HALF_LIFE

    @classmethod
    def from_config(cls, quotas: Mapping[str, Any], weights: Mapping[str, Any], half_life: float) -> Shares:
        """From ``{"default": {...}, "users": {name: {...}}, "groups": {name: {...}}}`` and
        ``{"users": {name: w}, "groups": {name: w}}``; errors name the setting."""
        unknown = sorted(set(quotas) - {"default", "users", "groups"}) + sorted(
            set(weights) - {"users", "groups"}
        )
        if unknown:
            raise SpecError(
                f"{unknown[0]} is not a section; quotas have default, users, groups; weights users, groups"
            )
        return cls(
            users={
                str(k): Quota.from_dict(v, f"quotas.users.{k}") for k, v in _section(quotas, "users").items()
            },
            groups={
                str(k): Quota.from_dict(v, f"quotas.groups.{k}")
                for k, v in _section(quotas, "groups").items()
            },
            default=Quota.from_dict(quotas.get("default") or {}, "quotas.default"),
            user_weights={
                str(k): weight_value(v, f"weights.users.{k}") for k, v in _section(weights, "users").items()
            },
            group_weights={
                str(k): weight_value(v, f"weights.groups.{k}") for k, v in _section(weights, "groups").items()
            },
            half_life=weight_value(half_life, "usage_half_life"),
        )

    def weight(self, owner: str, groups: Iterable[str]) -> float:
        """A user's own weight, else the largest of their groups', else 1."""
        if owner in self.user_weights:
            return self.user_weights[owner]
        return max((self.group_weights[g] for g in groups if g in self.group_weights), default=1.0)

    def quotas(self, owner: str, groups: Iterable[str]) -> list[tuple[str | None, Quota]]:
        """The quotas a user's task counts against: theirs (group None), then each group's."""
        out: list[tuple[str | None, Quota]] = [(None, self.users.get(owner, self.default))]
        out += [(g, self.groups[g]) for g in sorted(groups) if g in self.groups]
        return out

    @property
    def limits_queued(self) -> bool:
        return any(q.queued is not None for q in (self.default, *self.users.values(), *self.groups.values()))


def _section(config: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = config.get(key) or {}
    if not isinstance(value, Mapping):
        raise SpecError(f"{key} must be an object of names", field=key)
    return value


class Usage:
    """Recent use per user: GPU-seconds and CPU-seconds, halved every ``half_life`` seconds."""

    def __init__(self, half_life: float = DEFAULT_HALF_LIFE) -> None:
        self.half_life = half_life
        self._use: dict[str, tuple[float, float, float]] = {}  # owner -> (gpu s, cpu s, as of)

    def _decayed(self, owner: str, now: float) -> tuple[float, float]:
        gpu, cpu, at = self._use.get(owner, (0.0, 0.0, now))
        factor = 0.5 ** (max(0.0, now - at) / self.half_life)
        return gpu * factor, cpu * factor

    def add(self, owner: str, gpu_seconds: float, cpu_seconds: float, now: float) -> None:
        gpu, cpu = self._decayed(owner, now)
        self._use[owner] = (gpu + gpu_seconds, cpu + cpu_seconds, now)

    def of(self, owner: str, now: float) -> tuple[float, float]:
        """(GPU-seconds, CPU-seconds) as of ``now``."""
        return self._decayed(owner, now)

    def restore(self, spans: Iterable[AttemptSpan], now: float) -> None:
        """Recent use read back from stored attempts (after a restart): each attempt's run
        decayed as if it had been counted while it ran. CPU-seconds are taken as its run
        time (the stored attempts do not say how many CPUs their task had). Attempts still
        running are left out: they count when they end, as every attempt does."""
        h = self.half_life
        for span in spans:
            if span.running or span.ended <= span.started:
                continue
            # the integral of 0.5 ** ((now - t) / h) from started to ended
            seconds = h / math.log(2) * (0.5 ** ((now - span.ended) / h) - 0.5 ** ((now - span.started) / h))
            self.add(span.owner, seconds * span.gpus, seconds, now)


@dataclass
class Held:
    """What a user or a group holds now."""

    tasks: int = 0
    gpus: int = 0
    models: list[str] = field(default_factory=list)  # the model of each GPU held
    cpus: float = 0.0

    def of_type(self, gpu_type: str) -> int:
        return sum(1 for m in self.models if _is_type(m, gpu_type))


def _is_type(model: str, gpu_type: str) -> bool:
    """As a task's ``gpu_type`` names GPUs: a whole word of the model ("A100", not "A10")."""
    return Gpu(index=0, uuid="", model=model).matches(gpu_type)


@dataclass
class Holdings:
    """Who holds what now: tasks placed on workers, per user and per group."""

    users: dict[str, Held] = field(default_factory=dict)
    groups: dict[str, Held] = field(default_factory=dict)

    def add(self, owner: str, groups: Iterable[str], cpus: float, models: Sequence[str]) -> None:
        for held in (
            self.users.setdefault(owner, Held()),
            *(self.groups.setdefault(g, Held()) for g in groups),
        ):
            held.tasks += 1
            held.gpus += len(models)
            held.models.extend(models)
            held.cpus += cpus


class FairShare:
    """One scheduling round's view: the settings, recent use as of ``now`` and what is held.
    :func:`jupyter_orch.core.scheduler.schedule` asks it the order of users and whether a
    task may take GPUs now, and tells it what it placed."""

    def __init__(self, shares: Shares, usage: Usage, holdings: Holdings, now: float) -> None:
        self.shares = shares
        self.usage = usage
        self.holdings = holdings
        self.now = now

    def start(self, owner: str, groups: Iterable[str], gpus: bool) -> float:
        """Where a user starts in this round's order: recent use plus what they hold, per weight."""
        gpu_s, cpu_s = self.usage.of(owner, self.now)
        held = self.holdings.users.get(owner) or Held()
        use = gpu_s + held.gpus * QUANTUM if gpus else cpu_s + held.cpus * QUANTUM
        return use / self.shares.weight(owner, groups)

    def step(self, task: PendingTask) -> float:
        """How far placing ``task`` moves its user back in this round's order."""
        r = task.resources
        return (r.gpus if r.gpus else r.cpus) * QUANTUM / self.shares.weight(task.owner, task.groups)

    def blocked(self, task: PendingTask, models: Sequence[str]) -> str | None:
        """Why ``task`` may not take the GPUs of ``models`` now (a quota), or None."""
        for group, quota in self.shares.quotas(task.owner, task.groups):
            held = (self.holdings.groups if group else self.holdings.users).get(group or task.owner) or Held()
            who, has = ("you", "your") if group is None else (f"your group {group}", "its")
            uses = "use" if group is None else "uses"
            runs = "run" if group is None else "runs"
            if quota.running is not None and held.tasks + 1 > quota.running:
                return f"waiting: {who} {runs} {held.tasks} of {has} {quota.running} tasks at once"
            if quota.gpus is not None and models and held.gpus + len(models) > quota.gpus:
                return f"waiting: {who} {uses} {held.gpus} of {has} {quota.gpus} GPUs"
            for gpu_type, limit in sorted(quota.gpu_types.items()):
                taking = sum(1 for m in models if _is_type(m, gpu_type))
                if taking and held.of_type(gpu_type) + taking > limit:
                    return f"waiting: {who} {uses} {held.of_type(gpu_type)} of {has} {limit} {gpu_type} GPUs"
        return None

    def took(self, task: PendingTask, models: Sequence[str]) -> None:
        self.holdings.add(task.owner, task.groups, task.resources.cpus, models)

    def recent_gpu_hours(self, owner: str) -> float:
        return self.usage.of(owner, self.now)[0] / 3600

    def in_line(self, ordered: Iterable[PendingTask], task_id: str) -> str | None:
        """Why one GPU task waits for capacity (see :meth:`places`); None when it is not
        queued or wants no GPU."""
        return self.places(ordered, only=task_id).get(task_id)

    def places(
        self, ordered: Iterable[PendingTask], *, limit: int | None = None, only: str | None = None
    ) -> dict[str, str]:
        """Why each queued GPU task waits for capacity, in one sentence: a quota it would go
        over, else its place among the queued tasks that want the same GPUs (``ordered``:
        the queue in this round's fair order) and its owner's recent use. Past ``limit``
        tasks ahead the place is not counted exactly ("at least N ahead"), so the sentence
        of a task far back stays the same while the line moves. ``only``: just that task."""
        out: dict[str, str] = {}
        untyped = 0  # GPU tasks seen so far that take any GPU
        typed: dict[str, int] = {}  # ... and those that want one type, by type
        for task in ordered:
            r = task.resources
            if not r.gpus:
                continue
            kind = (r.gpu_type or "").lower()
            if only is None or task.id == only:
                ahead = untyped + (typed.get(kind, 0) if kind else sum(typed.values()))
                out[task.id] = self._waits(task, ahead, limit)
                if only is not None:
                    break
            if kind:
                typed[kind] = typed.get(kind, 0) + 1
            else:
                untyped += 1
        return out

    def _waits(self, task: PendingTask, ahead: int, limit: int | None) -> str:
        r = task.resources
        # over a quota, a free GPU would not start it either: that is the reason to give
        over = self.blocked(task, [r.gpu_type or ""] * r.gpus)
        if over is not None:
            return over
        kind = f"{r.gpu_type} GPUs" if r.gpu_type else "GPUs"
        use = f"(fair share: your recent use is {self.recent_gpu_hours(task.owner):.1f} GPU-hours)"
        if limit is not None and ahead >= limit:
            return f"waiting: at least {limit} tasks ahead in line for {kind} {use}"
        return f"waiting: {_ordinal(ahead + 1)} in line for {kind} {use}"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
