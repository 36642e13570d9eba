"""Properties of the workflow file gate, with hypothesis: a valid file (any DAG) loads with
no problem; any text at all is either a workflow or problems located at a line and
column, never another exception."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jupyter_orch.core.errors import SpecError
from jupyter_orch.workflows import loader


@st.composite
def dags(draw: st.DrawFn) -> dict[str, Any]:
    """A workflow of shell steps whose dependencies point only backwards (so no cycle)."""
    n = draw(st.integers(1, 25))
    steps = []
    for i in range(n):
        depends = draw(st.lists(st.integers(0, i - 1), unique=True, max_size=3)) if i else []
        step: dict[str, Any] = {"name": f"s{i}", "shell": f"echo {i}"}
        if depends:
            step["depends"] = [f"s{d}" for d in depends]
        if draw(st.booleans()):
            step["retries"] = draw(st.integers(0, 3))
        steps.append(step)
    return {"name": draw(st.from_regex(r"[a-z][a-z0-9-]{0,15}", fullmatch=True)), "tasks": steps}


@settings(max_examples=100, deadline=None)
@given(dags(), st.sampled_from(["yaml", "json"]))
def test_every_dag_loads_without_a_problem(doc: dict[str, Any], style: str) -> None:
    text = yaml.safe_dump(doc, sort_keys=False) if style == "yaml" else __import__("json").dumps(doc)
    workflow, _ = loader.loads(text, "flow.yaml")
    assert [s.name for s in workflow.steps] == [t["name"] for t in doc["tasks"]]


def located(exc: loader.WorkflowFileInvalid) -> None:
    assert exc.problems
    for problem in exc.problems:
        assert problem.line >= 1 and problem.column >= 1 and problem.message
        assert problem.format("flow.yaml").startswith(f"flow.yaml:{problem.line}:{problem.column}: ")


def check_any(text: str) -> None:
    try:
        loader.loads(text, "flow.yaml")
    except loader.WorkflowFileInvalid as exc:
        located(exc)
    except SpecError as exc:  # the text itself is not text (a lone surrogate) or too large
        assert exc.field == "source"


yamlish = st.text(st.sampled_from(list("abc-:[]{}&*!|>'\"#\n\t ,0123456789")) | st.characters(), max_size=200)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(yamlish)
def test_any_text_is_a_workflow_or_located_problems(text: str) -> None:
    check_any(text)


any_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=25,
)
near_valid = dags().flatmap(
    lambda doc: st.tuples(
        st.just(doc), st.integers(0, len(doc["tasks"]) - 1), st.text(max_size=10), any_values
    )
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(near_valid)
def test_a_valid_file_with_one_field_broken_is_located(case: tuple[Any, int, str, Any]) -> None:
    doc, index, key, value = case
    doc["tasks"][index][key or "name"] = value
    check_any(yaml.safe_dump(doc, sort_keys=False))
