"""Workflow runs, pure: a :class:`~.workflow.Workflow` turned into the tasks of one run, the
run's state from its steps' states, and the cache key of a step.

A step becomes one task. Its spec carries ``metadata["step"]``: the run, the step's name,
``refs`` (each upstream step a template names, by its name as written, to its task id, or
to the list of its tasks' ids when ``matrix`` fanned it out) and ``context`` (the run's
params and ``run.id``/``run.dir``). The worker fills the templates in from that and the
upstream results it receives with the assignment (:mod:`jupyter_orch.worker.steps`): the
server never unpickles a result. Payloads are JSON: a notebook step's the notebook itself,
its parameters and kernel; a function step's ``module:function`` and its parameters.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import SpecError
from .ids import new_id
from .records import RunRow
from .spec import RetryPolicy, TaskSpec
from .states import TaskState
from .templates import TEMPLATE
from .workflow import Step, Workflow

RUN_STATES = ("running", "succeeded", "failed", "cancelled")


@dataclass
class RunPlan:
    run: RunRow
    specs: list[TaskSpec]
    payloads: dict[str, bytes]


def plan_run(
    workflow: Workflow,
    values: Mapping[str, Any],
    *,
    owner: str,
    run_dir: str,
    notebooks: Mapping[str, Any],
    source: str = "",
    sys_path: Iterable[str] = (),
    run_id: str | None = None,
    now: float = 0.0,
    schedule_id: str | None = None,
) -> RunPlan:
    """The run's record and its steps as task specs with payloads. ``notebooks`` maps each
    notebook step's path (as written in the file) to the notebook's JSON."""
    run_id = run_id or new_id()
    by_base: dict[str, list[Step]] = {}
    for step in workflow.steps:
        by_base.setdefault(step.base, []).append(step)
    ids = {step.name: new_id() for step in workflow.steps}
    context = {"params": dict(values), "run": {"id": run_id, "dir": run_dir}}
    specs: list[TaskSpec] = []
    payloads: dict[str, bytes] = {}
    steps_view: list[dict[str, Any]] = []
    for step in workflow.steps:
        refs, named = _references(step, by_base, ids)
        referenced_params = {k: values.get(k) for k in sorted(named)}
        depends = [ids[d] for d in step.depends]
        for target in refs.values():  # a template may name an ancestor that is not a direct dependency
            for task_id in target if isinstance(target, list) else [target]:
                if task_id not in depends:
                    depends.append(task_id)
        payload = _payload(step, notebooks, list(sys_path))
        code = hashlib.sha256()
        for part in (step.kind, step.target, payload or b"", _canonical(referenced_params)):
            code.update(part if isinstance(part, bytes) else part.encode())
            code.update(b"\0")
        spec = TaskSpec(
            kind=step.kind,
            id=ids[step.name],
            name=step.name,
            owner=owner,
            resources=step.resources,
            image=step.image,
            retry=RetryPolicy(retries=step.retries, backoff=step.retry_backoff or 1.0),
            timeout=step.timeout,
            env={**step.env, "ORCH_RUN_DIR": run_dir, "ORCH_RUN_ID": run_id},
            command=step.target if step.kind == "shell" else None,
            depends=tuple(depends),
            metadata={
                "step": {
                    "run": run_id,
                    "workflow": workflow.name,
                    "name": step.name,
                    "refs": refs,
                    "context": context,
                    "cache": step.cache,
                    "code": code.hexdigest(),
                    **({"search": dict(step.search)} if step.search else {}),
                }
            },
        )
        specs.append(spec)
        if payload is not None:
            payloads[spec.id] = payload
        steps_view.append(
            {
                "name": step.name,
                "base": step.base,
                "kind": step.kind,
                "target": step.target,
                "task_id": spec.id,
                "depends": list(step.depends),
                "cache": step.cache,
                **({"search": True} if step.search else {}),
            }
        )
    run = RunRow(
        id=run_id,
        name=workflow.name,
        owner=owner,
        state="running",
        params=dict(values),
        steps=steps_view,
        created_at=now,
        updated_at=now,
        source=source,
        run_dir=run_dir,
        schedule_id=schedule_id,
    )
    return RunPlan(run, specs, payloads)


def _references(
    step: Step, by_base: Mapping[str, list[Step]], ids: Mapping[str, str]
) -> tuple[dict[str, Any], set[str]]:
    """The upstream steps and the params the step's templates name."""
    refs: dict[str, Any] = {}
    params: set[str] = set()
    for text in _strings([step.parameters, step.target]):
        for ref in TEMPLATE.findall(text):
            parts = ref.split(".")
            if parts[0] == "params" and len(parts) == 2:
                params.add(parts[1])
            elif parts[0] == "tasks" and len(parts) >= 4:
                base = ".".join(parts[1:-2])
                expanded = by_base.get(base)
                if expanded:
                    names = [ids[s.name] for s in expanded]
                    refs[base] = names if expanded[0].matrix else names[0]
    return refs, params


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)


def _payload(step: Step, notebooks: Mapping[str, Any], sys_path: list[str]) -> bytes | None:
    body: dict[str, Any]
    if step.kind == "notebook":
        notebook = notebooks.get(step.target)
        if not isinstance(notebook, Mapping):
            raise SpecError(f"step {step.name}: notebook {step.target} was not sent", field="files")
        body = {
            "notebook": dict(notebook),
            "parameters": dict(step.parameters),
            "kernel": None,
            "name": step.target,
        }
        return json.dumps(body, separators=(",", ":")).encode()
    if step.kind == "function":
        body = {"function": step.target, "parameters": dict(step.parameters), "sys_path": sys_path}
        return json.dumps(body, separators=(",", ":")).encode()
    return None


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


# ---------------------------------------------------------------------------- state
@dataclass
class RunProgress:
    """What a run's state follows from, kept up to date step by step (no scan per change)."""

    remaining: set[str] = field(default_factory=set)  # steps not finished
    failed: set[str] = field(default_factory=set)
    cancelled: set[str] = field(default_factory=set)
    upstream_failed: set[str] = field(default_factory=set)

    def record(self, task_id: str, state: TaskState) -> None:
        for bucket in (self.remaining, self.failed, self.cancelled, self.upstream_failed):
            bucket.discard(task_id)
        if state == TaskState.FAILED:
            self.failed.add(task_id)
        elif state == TaskState.CANCELLED:
            self.cancelled.add(task_id)
        elif state == TaskState.UPSTREAM_FAILED:
            self.upstream_failed.add(task_id)
        elif not state.terminal:
            self.remaining.add(task_id)

    @property
    def state(self) -> str:
        if self.remaining:
            return "running"
        if self.failed:
            return "failed"
        if self.cancelled:
            return "cancelled"
        return "failed" if self.upstream_failed else "succeeded"


# ---------------------------------------------------------------------------- caching
def cache_key(code: str, upstream: Mapping[str, str]) -> str:
    """A step's cache key: its code digest (kind, notebook or function or command, payload,
    the params it names) and, by upstream step name, a digest of each result it receives."""
    h = hashlib.sha256(code.encode())
    for name in sorted(upstream):
        h.update(b"\0" + name.encode() + b"\0" + upstream[name].encode())
    return h.hexdigest()


def result_digest(result: bytes | memoryview | None, kind: str) -> str:
    """What a step passes on, as a digest: a notebook's recorded outputs (the executed
    notebook itself differs run to run in its timings), another step's result bytes."""
    if not result:
        return "none"
    if kind == "notebook":
        try:
            outputs = json.loads(bytes(result)).get("outputs") or {}
        except (ValueError, AttributeError):
            outputs = None
        return hashlib.sha256(_canonical(outputs).encode()).hexdigest()
    return hashlib.sha256(result).hexdigest()
