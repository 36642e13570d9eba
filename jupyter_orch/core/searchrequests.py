"""Searches as they are asked for and shown, pure: a ``POST /searches`` request checked, a
workflow step's ``search:`` block checked, each trial's task spec (an SDK search's trial is a
``function`` task running the search's pickled call; a workflow step's trial is a copy of
the step with the trial's parameters), the search as the API shows it, and what a search
step ends as once its search has ended.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import limits
from .errors import SpecError, TooLarge
from .ids import new_id
from .limits import MAX_NAME
from .records import SearchRow
from .search import SearchConfig, SearchState, TrialPlan
from .spec import TaskSpec

SEARCH_STATES = ("running", "succeeded", "failed", "cancelled")
TASK_KEYS = ("resources", "image", "priority", "timeout", "env", "retries", "retry_backoff", "preemptible")
REQUEST_KEYS = ("name", "space", "task", *SearchConfig._KEYS)
STEP_KEYS = ("space", *SearchConfig._KEYS)  # a workflow step's search: block
STEP_KINDS = ("function", "notebook")  # the step kinds that take parameters
TRIAL_NAME = 100  # characters of a trial's name


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    text = str(value)
    return text if len(text) <= 16 else text[:15] + "…"


def trial_name(search_name: str, number: int, params: Mapping[str, Any]) -> str:
    """``"<search name> #<n> lr=0.01 ..."``, short."""
    text = f"{search_name} #{number} " + " ".join(f"{k}={_short(v)}" for k, v in params.items())
    return text if len(text) <= TRIAL_NAME else text[: TRIAL_NAME - 1] + "…"


# ---------------------------------------------------------------------------- checking
def check_request(request: object, payload: bytes | None, max_payload: int) -> dict[str, Any]:
    """The request checked (:class:`SpecError` naming the field), as it is stored: name,
    config, space (as parsed) and the trial task template."""
    if not isinstance(request, Mapping):
        raise SpecError("a search request is a JSON object", field="search")
    for key in request:
        if key not in REQUEST_KEYS:
            raise SpecError(
                f"{key!s:.60} is not a known search field; known: {', '.join(REQUEST_KEYS)}",
                field=str(key)[:60],
            )
    name = request.get("name") or "search"
    if not isinstance(name, str) or len(name) > MAX_NAME - 20:
        raise SpecError(f"name must be a string of at most {MAX_NAME - 20} characters", field="name")
    limits.check_text(name, "name")
    config = SearchConfig.from_dict({k: request[k] for k in SearchConfig._KEYS if k in request})
    if "space" not in request:
        raise SpecError("a search needs a space: {name: distribution or list}", field="space")
    state = SearchState(config, request["space"])  # checks the space with the config
    task = request.get("task") or {}
    if not isinstance(task, Mapping):
        raise SpecError("task must be an object of task options", field="task")
    for key in task:
        if key not in TASK_KEYS:
            raise SpecError(f"task.{key!s:.60} is not a known trial task option", field=f"task.{key!s:.60}")
    try:
        TaskSpec.from_dict({"kind": "function", **task})
    except SpecError as exc:
        raise SpecError(str(exc), field=f"task.{exc.field}" if exc.field else "task") from None
    if not payload:
        raise SpecError("a search needs its function's payload (base64 of the pickled call)", field="payload")
    if len(payload) > max_payload:
        raise TooLarge(f"payload of {len(payload)} bytes is over the limit of {max_payload}", field="payload")
    return {
        "name": name,
        "config": config.to_dict(),
        "space": state.space.to_dict(),
        "task": dict(task),
    }


def check_step_search(raw: object) -> dict[str, Any]:
    """A workflow step's ``search:`` block checked (:class:`SpecError` naming the field
    inside the block): ``{"config": {...}, "space": {...}}`` as it is kept in the step."""
    if not isinstance(raw, Mapping):
        raise SpecError("search must be a mapping with space and metric (and how to search)")
    for key in raw:
        if key not in STEP_KEYS:
            raise SpecError(
                f"unknown search setting {key!s:.60}; known: {', '.join(STEP_KEYS)}",
                field=str(key)[:60],
            )
    if "space" not in raw:
        raise SpecError("a search needs a space: {name: list or distribution}", field="space")
    config = SearchConfig.from_dict({k: raw[k] for k in SearchConfig._KEYS if k in raw})
    state = SearchState(config, raw["space"])
    return {"config": config.to_dict(), "space": state.space.to_dict()}


# ---------------------------------------------------------------------------- trials
def function_trial(row: SearchRow, plan: TrialPlan) -> TaskSpec:
    """An SDK search's trial: a ``function`` task with the request's task options; the
    worker passes ``metadata["trial"]["params"]`` as keyword arguments of the call."""
    task = dict(row.request.get("task") or {})
    env = {
        **dict(task.pop("env", None) or {}),
        "JUPYTER_ORCH_SEARCH_ID": row.id,
        "JUPYTER_ORCH_TRIAL": str(plan.number),
    }
    return TaskSpec.from_dict(
        {
            "kind": "function",
            **task,
            "env": env,
            "name": trial_name(row.name, plan.number, plan.params),
            "metadata": {
                "trial": {"search": row.id, "number": plan.number, "params": plan.params},
                "function": row.name,
            },
        },
        owner=row.owner,
        stored=True,
    )


def step_trial(step_spec: TaskSpec, row: SearchRow, plan: TrialPlan) -> TaskSpec:
    """A workflow step's trial: the step's task as planned (kind, resources, environment,
    dependencies, templates), a new id, the trial's parameters over the step's. Its
    ``metadata["step"]`` names no run: the trial is the search's, not a step of the run."""
    step = step_spec.metadata.get("step") or {}
    name = trial_name(row.name, plan.number, plan.params)
    return dataclasses.replace(
        step_spec,
        id=new_id(),
        name=name,
        env={
            **step_spec.env,
            "JUPYTER_ORCH_SEARCH_ID": row.id,
            "JUPYTER_ORCH_TRIAL": str(plan.number),
        },
        metadata={
            "step": {
                "workflow": step.get("workflow"),
                "name": name,
                "refs": step.get("refs") or {},
                "context": step.get("context") or {},
            },
            "trial": {"search": row.id, "number": plan.number, "params": plan.params},
        },
    )


# ---------------------------------------------------------------------------- showing
def search_view(row: SearchRow, state: SearchState | None, *, trials: bool = True) -> dict[str, Any]:
    """A search as the API shows it (``trials``: with its table of trials, best first)."""
    best = state.best if state is not None else None
    view: dict[str, Any] = {
        "id": row.id,
        "name": row.name,
        "owner": row.owner,
        "state": row.state,
        "config": dict(row.request.get("config") or {}),
        "space": dict(row.request.get("space") or {}),
        "task": dict(row.request.get("task") or {}),
        "counts": state.counts() if state is not None else {},
        "best": None
        if best is None
        else {
            "number": best.number,
            "params": best.params,
            "task_id": best.task_id,
            "value": best.value,
            "step": best.step,
            "state": best.state,
        },
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "ended_at": row.ended_at,
        "error": row.request.get("error"),
        "step": dict(row.request["step"]) if isinstance(row.request.get("step"), Mapping) else None,
    }
    if trials:
        view["trials"] = state.table() if state is not None else []
    return view


def progress_text(row: SearchRow, state: SearchState) -> str:
    """A search step's reason while its search runs: trials running and ended, the best."""
    counts = state.counts()
    running = counts["running"] + counts["stopping"]
    ended = sum(counts[k] for k in ("succeeded", "failed", "cancelled", "stopped"))
    text = f"searching (search {row.id}): {running} trial(s) running, {ended} of {counts['total']} ended"
    best = state.best
    if best is not None:
        text += f"; best {state.config.metric} {best.value:g} (trial #{best.number})"
    return text


@dataclass(frozen=True)
class StepOutcome:
    """What a search step ends as: ``state`` succeeded (with the best finished trial's task,
    whose result becomes the step's), failed or cancelled, and why."""

    state: str
    text: str
    task_id: str | None = None


def step_outcome(row: SearchRow, state: SearchState | None) -> StepOutcome:
    """The search step's end from its ended search. The step passes on the outputs of the
    trial with the best value among those that ran to the end (a trial ASHA stopped has no
    outputs); with none, the step fails and says why."""
    if row.state == "cancelled":
        return StepOutcome("cancelled", f"its search {row.id} was cancelled")
    error = row.request.get("error")
    if row.state == "failed" or state is None:
        return StepOutcome("failed", f"its search {row.id} failed: {error or 'its state was lost'}")
    metric = state.config.metric
    finished = [t for t in state.table() if t["state"] == "succeeded" and t["task_id"]]
    scored = [t for t in finished if t["best"] is not None]  # the table is best first
    if not scored:
        why = (
            f"no trial that ran to the end reported {metric}"
            if finished
            else "no trial ran to the end (each failed, was stopped or was cancelled)"
        )
        return StepOutcome("failed", f"its search {row.id} found no best trial: {why}")
    best = scored[0]
    params = " ".join(f"{k}={_short(v)}" for k, v in best["params"].items())
    text = (
        f"search {row.id}: trial #{best['number']} was best of {len(state.table())} "
        f"({metric} {best['best']:g} at step {best['best_step']}; {params}); its outputs are this step's"
    )
    return StepOutcome("succeeded", text, best["task_id"])
