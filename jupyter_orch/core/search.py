"""The state machine of one hyperparameter search: which trials to start, which to stop
early (asynchronous successive halving, ASHA), and which trial is best.

The server holds one :class:`SearchState` per search and persists it with
:meth:`SearchState.to_dict`. It starts the trials that :meth:`SearchState.next_trials` plans
as tasks (and says so with :meth:`~SearchState.started`), feeds each trial task's metric
points in order to :meth:`~SearchState.on_points`, cancels the tasks the returned
:class:`Decision` s name, and reports every trial task's end to :meth:`~SearchState.ended`.
Pure: no I/O, no clock, no randomness beyond the space's seeded sampling, so a state rebuilt
from its JSON decides exactly as the one that wrote it.

**Schedulers.** ``grid`` runs every combination of a grid space; ``random`` runs
``max_trials`` trials of any space; neither stops a trial early. ``asha`` runs trials like
``random`` and stops the unpromising ones early.

**ASHA** (Li et al. 2018, "A System for Massively Parallel Hyperparameter Tuning",
Algorithm 2), in its stopping form (Ray Tune's ``AsyncHyperBandScheduler``, Determined's
``adaptive_asha`` with ``stop_once``), one bracket. The rungs are the steps
``grace_period * reduction_factor**k`` below ``max_t`` (k = 0, 1, ...). A trial's x is its
point's ``step``, or the point's offset in the attempt when the step is None. The first
value of the metric at an x at or past a rung's step is recorded for that trial at that
rung (once; a point past several rungs is recorded at each of them, lowest first). Then,
with ``n`` values recorded at that rung so far, this one included, and η the reduction
factor:

- the value is None (a NaN, an infinity, a gap): the trial stops (it can never be in the
  best part of a rung; it is recorded as the worst value there);
- ``n < η``: the trial goes on;
- otherwise it goes on only if it is among the best ``floor(n / η)`` values recorded there
  (ties with the ``floor(n / η)``-th best go on too), and stops otherwise.

Why: Algorithm 2 promotes from a rung the configurations in the top ``floor(n / η)`` of the
``n`` it holds, judged against what is there when a worker asks for a job (asynchronous:
later arrivals never take a promotion back). While ``n < η`` that top is empty and the paper
promotes nobody, but it discards nobody either: it grows the bottom rung and the
configuration waits at its rung to be promoted once more results arrive. A trial here
cannot wait paused (it is a running task), so the choice is to stop it (forever, which the
paper never does on fewer than η results) or let it go on: it goes on. From the η-th value
on, a trial goes on exactly when the paper would have it in the promotable set at that
moment. Ray instead compares to a percentile of the values recorded before it, and
Determined to ``max(floor(n / η), 1)``: both stop the second trial of a rung when it is
worse than the first, on one result. A trial at or past ``max_t`` has finished its budget
and is never stopped (its values are still recorded at the rungs it passed).

**Best.** A trial's score is the best value of the metric it reported at any step (Nones
skipped), and ``best`` is the trial with the best score (the lowest trial number on a
tie). Ray Tune ranks by the last value by default and Determined by the searcher metric
of each validation; the best step is chosen here because a task can checkpoint every step
(``jupyter_orch.checkpoint``), so the best step's model is what a user keeps and what
early stopping on a validation loss would give, and because a trial that diverges late
(its last value a NaN) still says how good it was. The last value is in :meth:`table`
too. For the monotone curves ASHA is meant for, the two agree.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from .errors import IllegalTransition, NotFound, SpecError
from .metrics import Point, check_group, check_name
from .space import Constant, Grid, Space, parse_space

SCHEDULERS = ("asha", "random", "grid")
MODES = ("min", "max")
MAX_TRIALS = 10_000
MAX_CONCURRENT = 1_000
MAX_REDUCTION = 100
MAX_STEP = 2**53
ENDINGS = ("succeeded", "failed", "cancelled", "stopped")
"""What :meth:`SearchState.ended` takes: a task's end, or ``stopped`` for a stop it asked."""
TRIAL_STATES = ("planned", "running", "stopping", *ENDINGS)
"""A trial's states: planned (not started yet), running, stopping (a stop was decided, its
task has not ended yet), then one of :data:`ENDINGS`."""
STATE_VERSION = 1


def _whole(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SpecError(f"{name} must be a whole number from {low} to {high}, not {value!r:.60}", field=name)
    return value


@dataclass(frozen=True)
class SearchConfig:
    """How a search runs; checked when made (:class:`SpecError` naming the field)."""

    metric: str
    mode: str = "min"  # "min": lower is better; "max": higher is better
    scheduler: str = "asha"  # "asha" | "random" | "grid"
    max_trials: int | None = None  # required unless the space is a grid (then: all of it)
    max_concurrent: int = 8
    max_t: int | None = None  # ASHA: the largest step a trial runs to (required for asha)
    grace_period: int = 1  # ASHA: the first rung's step; no trial is stopped before it
    reduction_factor: float = 3  # ASHA: η; the best 1/η of a rung go on
    group: str | None = None  # only points of this metric group count (None: any group)
    seed: int = 0  # the space's sampling

    _KEYS = (
        "metric",
        "mode",
        "scheduler",
        "max_trials",
        "max_concurrent",
        "max_t",
        "grace_period",
        "reduction_factor",
        "group",
        "seed",
    )

    def __post_init__(self) -> None:
        check_name(self.metric, "metric")
        if self.mode not in MODES:
            raise SpecError(f"mode must be 'min' or 'max', not {self.mode!r:.60}", field="mode")
        if self.scheduler not in SCHEDULERS:
            raise SpecError(
                f"scheduler must be one of {', '.join(SCHEDULERS)}, not {self.scheduler!r:.60}",
                field="scheduler",
            )
        if self.max_trials is not None:
            _whole(self.max_trials, "max_trials", 1, MAX_TRIALS)
        _whole(self.max_concurrent, "max_concurrent", 1, MAX_CONCURRENT)
        if self.max_t is None:
            if self.scheduler == "asha":
                raise SpecError(
                    "asha needs max_t: the largest step a trial reports (e.g. its number of epochs)",
                    field="max_t",
                )
        else:
            _whole(self.max_t, "max_t", 1, MAX_STEP)
        _whole(self.grace_period, "grace_period", 1, MAX_STEP)
        if self.max_t is not None and self.grace_period > self.max_t:
            raise SpecError(
                f"grace_period ({self.grace_period}) must be at most max_t ({self.max_t})",
                field="grace_period",
            )
        eta = self.reduction_factor
        if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not 1 < eta <= MAX_REDUCTION:
            raise SpecError(
                f"reduction_factor must be a number above 1 and at most {MAX_REDUCTION}, not {eta!r:.60}",
                field="reduction_factor",
            )
        if self.group is not None:
            check_group(self.group, "group")
        _whole(self.seed, "seed", -MAX_STEP, MAX_STEP)

    @classmethod
    def from_dict(cls, raw: object) -> SearchConfig:
        if not isinstance(raw, Mapping):
            raise SpecError(f"a search config is a mapping, not {type(raw).__name__}", field="search")
        for key in raw:
            if key not in cls._KEYS:
                raise SpecError(
                    f"unknown search setting {key!r:.60}; known: {', '.join(cls._KEYS)}",
                    field=key if isinstance(key, str) and key.isprintable() else "search",
                )
        if "metric" not in raw:
            raise SpecError("name the metric to optimise, e.g. metric='val_loss'", field="metric")
        return cls(**{key: raw[key] for key in cls._KEYS if key in raw})

    def to_dict(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self._KEYS}

    @property
    def milestones(self) -> tuple[float, ...]:
        """ASHA's rungs: the steps ``grace_period * η**k`` below ``max_t`` (none unless asha)."""
        if self.scheduler != "asha" or self.max_t is None:
            return ()
        out: list[float] = []
        k = 0
        while (m := self.grace_period * self.reduction_factor**k) < self.max_t:
            out.append(m)
            k += 1
        return tuple(out)

    def better(self, a: float, b: float) -> bool:
        """``a`` is strictly better than ``b``."""
        return a < b if self.mode == "min" else a > b


@dataclass(frozen=True)
class TrialPlan:
    """A trial to start now: its number (from 0) and parameters."""

    number: int
    params: dict[str, Any]


@dataclass(frozen=True)
class Decision:
    """Something the server is to do to a trial's task; ``action`` is ``"stop"`` (cancel the
    task; then report ``ended(task_id, "stopped")`` or ``"cancelled"``)."""

    action: str
    task_id: str
    number: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class BestTrial:
    """The best trial so far: its best ``value`` of the metric and the ``step`` it had it at."""

    number: int
    params: dict[str, Any]
    task_id: str | None
    value: float
    step: int | None
    state: str


@dataclass
class _Trial:
    number: int
    params: dict[str, Any]
    task_id: str | None = None
    state: str = "planned"
    last: float | None = None  # the last value of the metric (None: a NaN or a gap)
    best: float | None = None  # the best value, Nones skipped
    best_step: int | None = None
    step: int | None = None  # the x of the last value
    rung: int = -1  # the highest rung (index) it has a value recorded at
    attempt: int = 0
    next_offset: int = 0  # points of `attempt` before this offset were seen already
    reason: str | None = None  # why it was stopped


def _num(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def _as_value(raw: object) -> float | None:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
        return None
    return raw


class SearchState:
    """One search's trials, rungs and decisions. Made from a checked config and space
    (:class:`SpecError` when they do not go together), or rebuilt by :meth:`from_dict`."""

    def __init__(self, config: SearchConfig, space: Space | Mapping[str, Any]) -> None:
        self.config = config
        self.space = parse_space(space)
        if config.scheduler == "grid" and not self.space.is_grid():
            sampled = [n for n, d in self.space.dims if not isinstance(d, (Grid, Constant))]
            raise SpecError(
                f"grid search needs a space of lists and constants; it samples {', '.join(sampled)}: "
                f"use scheduler='random' or 'asha' to sample",
                field="scheduler",
            )
        self.total = self.space.count(config.max_trials)  # SpecError on max_trials
        if self.total > MAX_TRIALS:
            raise SpecError(
                f"the grid has {self.total} combinations, more than {MAX_TRIALS}: set max_trials",
                field="max_trials",
            )
        self.milestones = config.milestones
        self._trials: list[_Trial] = []
        self._by_task: dict[str, _Trial] = {}
        self._rungs: list[list[tuple[int, float | None]]] = [[] for _ in self.milestones]

    # --- starting ---------------------------------------------------------------------------

    def next_trials(self, running_now: int) -> list[TrialPlan]:
        """The trials that may start now: first those planned before and not started yet
        (asking twice gives the same plans), then new ones, while fewer than
        ``max_concurrent`` run and ``max_trials`` (or the grid) is not used up.
        ``running_now``: the search's trial tasks not ended yet, as the caller counts them
        (queued ones included); the larger of it and this state's own count is used."""
        active = sum(1 for t in self._trials if t.state in ("running", "stopping"))
        slots = self.config.max_concurrent - max(running_now, active)
        out: list[TrialPlan] = []
        for t in self._trials:
            if slots <= 0:
                return out
            if t.state == "planned":
                out.append(TrialPlan(t.number, dict(t.params)))
                slots -= 1
        while slots > 0 and len(self._trials) < self.total:
            number = len(self._trials)
            t = _Trial(number, self.space.trial(number, self.config.seed))
            self._trials.append(t)
            out.append(TrialPlan(number, dict(t.params)))
            slots -= 1
        return out

    def started(self, number: int, task_id: str) -> None:
        """Trial ``number`` (planned by :meth:`next_trials`) runs as task ``task_id``."""
        if not 0 <= number < len(self._trials):
            raise IllegalTransition(f"trial {number} was never planned")
        t = self._trials[number]
        if t.task_id == task_id:
            return  # said twice
        if t.state != "planned":
            raise IllegalTransition(f"trial {number} runs already as task {t.task_id}, not {task_id}")
        if task_id in self._by_task:
            raise IllegalTransition(f"task {task_id} is trial {self._by_task[task_id].number} already")
        t.task_id, t.state = task_id, "running"
        self._by_task[task_id] = t

    # --- running ----------------------------------------------------------------------------

    def _trial(self, task_id: str) -> _Trial:
        t = self._by_task.get(task_id)
        if t is None:
            raise NotFound(f"task {task_id} is no trial of this search")
        return t

    def on_points(
        self, task_id: str, points: Iterable[tuple[int, Point]], *, attempt: int = 0
    ) -> list[Decision]:
        """Feed task ``task_id``'s metric points as ``(offset, point)`` pairs, in order:
        ``offset`` the point's number in the task's ``attempt`` (from 0, as stored), ``point``
        ``[ts, step | None, group, {name: value | None}]``. Points seen already (an offset
        below the next one expected of the attempt, or an older attempt) are skipped, so
        feeding the same points again changes nothing. Returns the trials to stop (at most
        this one)."""
        t = self._trial(task_id)
        if attempt < t.attempt:
            return []
        if attempt > t.attempt:  # a retry: its points are numbered from 0 again
            t.attempt, t.next_offset = attempt, 0
        out: list[Decision] = []
        metric, group = self.config.metric, self.config.group
        for offset, point in points:
            if offset < t.next_offset:
                continue
            t.next_offset = offset + 1
            _ts, step, grp, values = point
            if (group is not None and grp != group) or metric not in values:
                continue
            value = _as_value(values[metric])
            x = offset if step is None else int(step)
            t.step, t.last = x, value
            if value is not None and (t.best is None or self.config.better(value, t.best)):
                t.best, t.best_step = value, x
            if t.state == "running":
                decision = self._climb(t, x, value)
                if decision is not None:
                    out.append(decision)
        return out

    def _climb(self, t: _Trial, x: int, value: float | None) -> Decision | None:
        """Record ``value`` at every rung ``x`` reaches that ``t`` has no value at yet, and
        judge it there (see the module's docstring)."""
        while t.rung + 1 < len(self.milestones) and x >= self.milestones[t.rung + 1]:
            t.rung += 1
            rung = self._rungs[t.rung]
            rung.append((t.number, value))
            if self.config.max_t is not None and x >= self.config.max_t:
                continue  # its budget is done: recorded for the others, never stopped
            reason = self._judge(rung, value, x, self.milestones[t.rung])
            if reason is not None:
                t.state, t.reason = "stopping", reason
                assert t.task_id is not None
                return Decision("stop", t.task_id, t.number, reason)
        return None

    def _key(self, value: float) -> float:
        return value if self.config.mode == "min" else -value

    def _judge(
        self, rung: list[tuple[int, float | None]], value: float | None, x: int, milestone: float
    ) -> str | None:
        """Why the trial stops at this rung, or None when it goes on."""
        eta, metric = self.config.reduction_factor, self.config.metric
        n = len(rung)
        if value is None:
            return (
                f"stopped early by ASHA at step {x}: {metric} is NaN or missing at the "
                f"step-{_num(milestone)} rung, so it cannot be in the best 1/{_num(eta)} there"
            )
        if n < eta:
            return None
        keep = math.floor(n / eta)
        keys = sorted(self._key(v) for _, v in rung if v is not None)
        if len(keys) < keep:
            return None
        cutoff = keys[keep - 1]
        if self._key(value) <= cutoff:
            return None
        cutoff_value = cutoff if self.config.mode == "min" else -cutoff
        return (
            f"stopped early by ASHA at step {x}: {metric} {value:.4g} is not in the best "
            f"1/{_num(eta)} of {n} trials at the step-{_num(milestone)} rung "
            f"(cutoff {cutoff_value:.4g}, {'lower' if self.config.mode == 'min' else 'higher'} is better)"
        )

    def ended(self, task_id: str, state: str) -> None:
        """Trial task ``task_id`` ended: ``succeeded``, ``failed``, ``cancelled`` or
        ``stopped``. After a stop this search decided, any end but ``succeeded`` counts as
        ``stopped``; ``stopped`` it did not decide counts as ``cancelled``. Saying it again
        changes nothing."""
        if state not in ENDINGS:
            raise SpecError(f"a trial ends {', '.join(ENDINGS)}, not {state!r:.60}", field="state")
        t = self._trial(task_id)
        if t.state in ENDINGS:
            return
        if t.state == "stopping":
            t.state = "succeeded" if state == "succeeded" else "stopped"
        else:
            t.state = "cancelled" if state == "stopped" else state

    # --- reading ----------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        """No trial can start and none is planned or running."""
        return len(self._trials) >= self.total and all(t.state in ENDINGS for t in self._trials)

    @property
    def best(self) -> BestTrial | None:
        """The trial with the best value of the metric at any of its steps (see the module's
        docstring); None before any value."""
        scored = [t for t in self._trials if t.best is not None]
        if not scored:
            return None
        t = min(scored, key=lambda t: (self._key(t.best or 0.0), t.number))
        assert t.best is not None
        return BestTrial(t.number, dict(t.params), t.task_id, t.best, t.best_step, t.state)

    def table(self) -> list[dict[str, Any]]:
        """A row per trial, best first (trials without a value last, by number): number,
        task_id, params, state, best, best_step, last, step (the last one's), rung (the step
        of the highest ASHA rung it reached, or None) and reason (why it was stopped)."""
        rows = sorted(
            self._trials,
            key=lambda t: (t.best is None, self._key(t.best) if t.best is not None else 0.0, t.number),
        )
        return [
            {
                "number": t.number,
                "task_id": t.task_id,
                "params": dict(t.params),
                "state": t.state,
                "best": t.best,
                "best_step": t.best_step,
                "last": t.last,
                "step": t.step,
                "rung": self.milestones[t.rung] if t.rung >= 0 else None,
                "reason": t.reason,
            }
            for t in rows
        ]

    @property
    def recorded(self) -> int:
        """How many values the ASHA rungs hold (it grows when a trial reaches a rung)."""
        return sum(len(rung) for rung in self._rungs)

    def counts(self) -> dict[str, int]:
        """Trials per state, and ``total``: the trials the search runs at most."""
        out = dict.fromkeys(TRIAL_STATES, 0)
        for t in self._trials:
            out[t.state] += 1
        out["total"] = self.total
        return out

    # --- persistence ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-able; :meth:`from_dict` rebuilds a state that decides the same."""
        return {
            "version": STATE_VERSION,
            "config": self.config.to_dict(),
            "space": self.space.to_dict(),
            "trials": [asdict(t) for t in self._trials],
            "rungs": [[[number, value] for number, value in rung] for rung in self._rungs],
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> SearchState:
        if not isinstance(raw, Mapping) or raw.get("version") != STATE_VERSION:
            raise SpecError(f"not a search state of version {STATE_VERSION}", field="state")
        if "config" not in raw or "space" not in raw:
            raise SpecError("a malformed search state: it has no config or no space", field="state")
        state = cls(SearchConfig.from_dict(raw["config"]), raw["space"])
        try:
            trials = [_Trial(**t) for t in raw["trials"]]
            rungs = [[(int(number), _as_value(value)) for number, value in rung] for rung in raw["rungs"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise SpecError(f"a malformed search state: {exc}", field="state") from None
        if len(rungs) != len(state.milestones) or [t.number for t in trials] != list(range(len(trials))):
            raise SpecError("a malformed search state: its rungs or trials do not fit", field="state")
        for t in trials:
            if t.state not in TRIAL_STATES:
                raise SpecError(f"a malformed search state: trial state {t.state!r:.60}", field="state")
            t.params = dict(t.params)
        state._trials = trials
        state._by_task = {t.task_id: t for t in trials if t.task_id is not None}
        state._rungs = rungs
        return state
