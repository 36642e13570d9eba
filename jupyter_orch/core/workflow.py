"""Workflows, pure: a workflow file's data checked and turned into steps.

:func:`check` takes the parsed document (dicts and lists, as YAML or JSON gives them) and
returns every problem it finds, each with the path of the offending value (the loader turns
paths into file:line:column); :func:`build` gives the :class:`Workflow`, its ``matrix``
steps fanned out. Graph rules: names unique, dependencies known, no cycles (a cycle is
named, ``a → b → a``), templates refer to declared params and to upstream steps only.
Parameters are typed by their defaults and overridden at submit with :func:`apply_params`.
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .dag import ancestors as _ancestors
from .dag import find_cycle
from .errors import SpecError
from .params import PARAM_TYPES, Param, is_type, type_name
from .resources import Resources
from .searchrequests import STEP_KINDS, check_step_search
from .templates import TEMPLATE

Path = tuple[Any, ...]
KINDS = ("notebook", "function", "shell")
STEP_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_REF = re.compile(
    r"^(params)\.([A-Za-z_][A-Za-z0-9_]*)$|^(tasks)\.([A-Za-z0-9_.-]+?)\.outputs\.([A-Za-z_][A-Za-z0-9_]*)$|^run\.(id|dir)$"
)
STEP_FIELDS = ("resources", "retries", "retry_backoff", "image", "timeout", "env", "cache")


@dataclass(frozen=True)
class Problem:
    path: Path
    message: str
    key: bool = False  # the problem is the key at ``path`` (an unknown field), not its value

    def where(self) -> str:
        return ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in self.path).replace(".[", "[")


@dataclass(frozen=True)
class Step:
    name: str  # unique; matrix steps are ``base[k=v,...]``
    kind: str  # notebook | function | shell
    target: str  # the notebook path, ``module:function`` or the command line
    depends: tuple[str, ...] = ()  # names of steps (after matrix expansion)
    parameters: Mapping[str, Any] = field(default_factory=dict)
    resources: Resources = field(default_factory=Resources)
    retries: int = 0
    retry_backoff: float | None = None
    image: str | None = None
    timeout: float | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    cache: bool = False
    base: str = ""  # the step as written (== name unless fanned out by ``matrix``)
    matrix: Mapping[str, Any] = field(default_factory=dict)  # this expansion's values
    search: Mapping[str, Any] | None = None  # a search step: its checked search block


@dataclass(frozen=True)
class Workflow:
    name: str
    params: Mapping[str, Param]
    steps: tuple[Step, ...]
    description: str = ""

    def step(self, name: str) -> Step:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)


class WorkflowInvalid(SpecError):
    """A workflow with problems; ``problems`` lists every one of them."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{first.where() or 'workflow'}: {first.message}{more}", field=first.where() or None)


# ---------------------------------------------------------------------------- checking
def check(doc: Any, notebook_exists: Any = None) -> list[Problem]:
    """Every problem of a workflow document. ``notebook_exists(path) -> bool`` (when given)
    checks that notebook steps name files that are there."""
    problems: list[Problem] = []
    if not isinstance(doc, Mapping):
        return [Problem((), "a workflow is a mapping with name and tasks")]
    if not isinstance(doc.get("name"), str) or not doc.get("name", "").strip():
        problems.append(Problem(("name",), "the workflow needs a name (a non-empty string)"))
    params = _check_params(doc.get("params"), problems)
    defaults = doc.get("defaults")
    if isinstance(defaults, Mapping):
        _check_fields(defaults, ("defaults",), problems)
    tasks = doc.get("tasks")
    if not isinstance(tasks, list) or not tasks:
        problems.append(Problem(("tasks",), "tasks must be a non-empty list of steps"))
        return problems
    first_at: dict[str, int] = {}
    for i, step in enumerate(tasks):
        if not isinstance(step, Mapping):
            problems.append(Problem(("tasks", i), "a step is a mapping with a name"))
            continue
        name = step.get("name")
        if not isinstance(name, str) or not STEP_NAME.match(name):
            problems.append(
                Problem(
                    ("tasks", i, "name"),
                    f"step name {name!r} must start with a letter and use letters, digits, _ . -",
                )
            )
        elif name in first_at:
            problems.append(
                Problem(
                    ("tasks", i, "name"),
                    f"step name {name!r} is used twice (first by tasks[{first_at[name]}])",
                )
            )
        else:
            first_at[name] = i
        kinds = [k for k in KINDS if k in step]
        if len(kinds) != 1:
            has = " and ".join(kinds) if kinds else "none"
            problems.append(
                Problem(
                    ("tasks", i),
                    f"step {name!r} needs exactly one of notebook, function, shell (it has {has})",
                )
            )
        for kind in kinds:
            _check_target(kind, step[kind], ("tasks", i, kind), problems, notebook_exists)
        _check_fields(step, ("tasks", i), problems)
        _check_matrix(step.get("matrix"), ("tasks", i, "matrix"), problems)
        if "search" in step:
            _check_search(step, kinds, ("tasks", i), problems)
    names = set(first_at)
    graph: dict[str, list[str]] = {}
    for i, step in enumerate(tasks):
        if not isinstance(step, Mapping) or not isinstance(step.get("name"), str):
            continue
        deps = step.get("depends", [])
        if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
            problems.append(Problem(("tasks", i, "depends"), "depends must be a list of step names"))
            continue
        for j, dep in enumerate(deps):
            if dep not in names:
                hint = difflib.get_close_matches(dep, sorted(names), n=1)
                also = f"; did you mean {hint[0]!r}?" if hint else ""
                problems.append(
                    Problem(
                        ("tasks", i, "depends", j),
                        f"unknown dependency {dep!r} (no step has that name{also})",
                    )
                )
            elif dep == step["name"]:
                problems.append(Problem(("tasks", i, "depends", j), f"step {dep!r} cannot depend on itself"))
        graph.setdefault(step["name"], []).extend(d for d in deps if d in names and d != step["name"])
    cycle = find_cycle(graph)
    if cycle:
        i = first_at[cycle[0]]
        problems.append(Problem(("tasks", i, "depends"), "dependency cycle: " + " → ".join(cycle)))
    for i, step in enumerate(tasks):
        if isinstance(step, Mapping) and isinstance(step.get("name"), str):
            texts = list(_strings(step.get("parameters"), ("tasks", i, "parameters")))
            texts += [
                (("tasks", i, k), step[k]) for k in ("shell", "notebook") if isinstance(step.get(k), str)
            ]
            texts = [(path, text) for path, text in texts if "{{" in text]
            if not texts:
                continue
            # with a cycle, "upstream" means nothing; else only steps that use templates pay for it
            upstream = None if cycle else _ancestors(graph, step["name"])
            for path, text in texts:
                _check_templates(text, path, step["name"], params, upstream, problems)
    return problems


def _check_params(raw: Any, problems: list[Problem]) -> dict[str, Param]:
    params: dict[str, Param] = {}
    if raw is None:
        return params
    if not isinstance(raw, Mapping):
        problems.append(Problem(("params",), "params must be a mapping of name to default value"))
        return params
    for name, value in raw.items():
        path = ("params", name)
        if not isinstance(name, str) or not name.isidentifier():
            problems.append(Problem(path, f"param name {name!r} must be an identifier", key=True))
            continue
        if isinstance(value, Mapping) and "type" in value:
            kind, default = value.get("type"), value.get("default")
            if kind not in PARAM_TYPES:
                problems.append(
                    Problem(path + ("type",), f"param type {kind!r} is not one of {', '.join(PARAM_TYPES)}")
                )
                continue
            if default is not None and not is_type(default, kind):
                problems.append(Problem(path + ("default",), f"the default of {name} is not a {kind}"))
                continue
            params[name] = Param(name, kind, default, str(value.get("description") or ""))
        else:
            params[name] = Param(name, type_name(value), value)
    return params


def _check_fields(data: Mapping[str, Any], path: Path, problems: list[Problem]) -> None:
    if "resources" in data:
        try:
            Resources.from_dict(data["resources"])
        except SpecError as exc:
            sub = tuple((exc.field or "resources").split("."))
            problems.append(Problem(path + sub, exc.message))
    for key, kind in (("retries", int), ("timeout", (int, float)), ("retry_backoff", (int, float))):
        value = data.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, kind) or value < 0):
            problems.append(Problem(path + (key,), f"{key} must be a number, 0 or more"))
    env = data.get("env")
    if env is not None and not (isinstance(env, Mapping) and all(isinstance(k, str) for k in env)):
        problems.append(Problem(path + ("env",), "env must be a mapping of variable names to values"))


def _check_target(kind: str, value: Any, path: Path, problems: list[Problem], notebook_exists: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        problems.append(Problem(path, f"{kind} must be a non-empty string"))
    elif kind == "function" and not re.match(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$", value):
        problems.append(
            Problem(path, f"function {value!r} must be written module:function (e.g. mypkg.train:fit)")
        )
    elif kind == "notebook":
        if not value.endswith(".ipynb"):
            problems.append(Problem(path, f"notebook {value!r} must be an .ipynb file"))
        elif notebook_exists is not None and not TEMPLATE.search(value) and not notebook_exists(value):
            problems.append(
                Problem(path, f"notebook {value!r} does not exist (paths are relative to the workflow file)")
            )


def _check_matrix(matrix: Any, path: Path, problems: list[Problem]) -> None:
    if matrix is None:
        return
    if not isinstance(matrix, Mapping) or not matrix:
        problems.append(Problem(path, "matrix must map parameter names to lists of values"))
        return
    for key, values in matrix.items():
        if not isinstance(values, list) or not values:
            problems.append(Problem(path + (key,), f"matrix.{key} must be a non-empty list of values"))


def _check_search(step: Mapping[str, Any], kinds: list[str], path: Path, problems: list[Problem]) -> None:
    """A ``search:`` block: its trials are copies of the step with the trial's parameters."""
    where = path + ("search",)
    if kinds and kinds[0] not in STEP_KINDS:
        problems.append(
            Problem(
                where,
                f"search needs a function or notebook step (the trial's parameters are its inputs), not {kinds[0]}",
            )
        )
    for other in ("matrix", "cache"):
        if step.get(other):
            problems.append(Problem(where, f"search and {other} cannot be used on one step"))
    try:
        check_step_search(step["search"])
    except SpecError as exc:
        sub = tuple(exc.field.split(".", 1)) if exc.field else ()
        problems.append(Problem(where + sub, exc.message))


def _check_templates(
    text: str,
    path: Path,
    step: str,
    params: Mapping[str, Param],
    upstream: set[str] | None,
    problems: list[Problem],
) -> None:
    for ref in TEMPLATE.findall(text):
        m = _REF.match(ref)
        if m is None:
            problems.append(
                Problem(
                    path, f"{{{{ {ref} }}}} is not params.NAME, tasks.STEP.outputs.NAME, run.id or run.dir"
                )
            )
        elif m.group(1) and m.group(2) not in params:
            problems.append(
                Problem(path, f"{{{{ {ref} }}}}: no param {m.group(2)!r} is declared under params")
            )
        elif m.group(3) and upstream is not None and m.group(4) not in upstream:
            problems.append(
                Problem(
                    path,
                    f"{{{{ {ref} }}}}: step {m.group(4)!r} is not upstream of {step!r} (add it to depends)",
                )
            )


def _strings(value: Any, path: Path) -> Iterable[tuple[Path, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _strings(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, path + (i,))


# ---------------------------------------------------------------------------- building
def build(doc: Mapping[str, Any], notebook_exists: Any = None, *, checked: bool = False) -> Workflow:
    """The workflow of a document :func:`check` passes; raises :class:`WorkflowInvalid`.
    ``checked``: the caller has just checked it (a large file is not checked twice)."""
    problems = [] if checked else check(doc, notebook_exists)
    if problems:
        raise WorkflowInvalid(problems)
    params = _check_params(doc.get("params"), [])
    defaults = doc.get("defaults") or {}
    expanded: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for step in doc["tasks"]:
        expanded[step["name"]] = list(_fan_out(step["name"], step.get("matrix")))
    steps = []
    for step in doc["tasks"]:
        merged = {k: step[k] if k in step else defaults.get(k) for k in STEP_FIELDS}
        resources = {**(defaults.get("resources") or {}), **(step.get("resources") or {})}
        kind = next(k for k in KINDS if k in step)
        depends = tuple(name for dep in step.get("depends", []) for name, _ in expanded[dep])
        for name, values in expanded[step["name"]]:
            steps.append(
                Step(
                    name=name,
                    kind=kind,
                    target=step[kind],
                    depends=depends,
                    parameters={**(step.get("parameters") or {}), **values},
                    resources=Resources.from_dict(resources),
                    retries=int(merged["retries"] or 0),
                    retry_backoff=merged["retry_backoff"],
                    image=merged["image"],
                    timeout=merged["timeout"],
                    env={str(k): "" if v is None else str(v) for k, v in (merged["env"] or {}).items()},
                    cache=bool(merged["cache"]),
                    base=step["name"],
                    matrix=values,
                    search=check_step_search(step["search"]) if "search" in step else None,
                )
            )
    return Workflow(
        name=doc["name"], params=params, steps=tuple(steps), description=str(doc.get("description") or "")
    )


def _fan_out(name: str, matrix: Mapping[str, list[Any]] | None) -> Iterable[tuple[str, dict[str, Any]]]:
    if not matrix:
        yield name, {}
        return
    keys = list(matrix)
    for combo in itertools.product(*(matrix[k] for k in keys)):
        values = dict(zip(keys, combo, strict=True))
        yield f"{name}[{','.join(f'{k}={v}' for k, v in values.items())}]", values
