"""Properties of the task spec gate, with hypothesis: any JSON a user can send is either a
spec the database can store or a SpecError naming a field; never another exception."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jupyter_orch.core import limits
from jupyter_orch.core.errors import SpecError, TooLarge
from jupyter_orch.core.spec import KINDS, TaskSpec

# every string a JSON decoder can produce, lone surrogates and NUL included
any_text = st.text(st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF), max_size=40)
json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | any_text
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=20,
)
fields = st.sampled_from(sorted(TaskSpec._KEYS) + ["bogus"])
task_like = st.dictionaries(fields, json_values, max_size=8).map(lambda d: {"kind": "shell", **d})

clean_text = st.text(st.characters(codec="utf-8", exclude_characters="\0"), min_size=1, max_size=30)
valid_tasks = st.fixed_dictionaries(
    {"kind": st.just("shell"), "command": clean_text.filter(str.strip)},
    optional={
        "name": st.text(st.characters(codec="utf-8", exclude_characters="\0"), max_size=limits.MAX_NAME),
        "priority": st.integers(-limits.MAX_PRIORITY, limits.MAX_PRIORITY),
        "retries": st.integers(0, limits.MAX_RETRIES),
        "timeout": st.floats(0.001, 1e9),
        "env": st.dictionaries(
            st.from_regex(r"[A-Z_][A-Z0-9_]{0,10}", fullmatch=True), clean_text, max_size=5
        ),
        "metadata": st.dictionaries(clean_text, st.integers() | clean_text | st.booleans(), max_size=5),
        "resources": st.fixed_dictionaries(
            {},
            optional={
                "cpus": st.floats(0, 64),
                "gpus": st.integers(0, 8),
                "memory": st.sampled_from(["1Gi", "512Mi", 1024, "8G"]),
                "labels": st.dictionaries(
                    st.from_regex(r"[a-z][a-z0-9]{0,10}", fullmatch=True), clean_text, max_size=4
                ),
            },
        ),
    },
)


def storable(value: Any) -> bool:
    """What the store keeps: UTF-8 text without NUL, finite numbers."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return "\0" not in value
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(storable(k) and storable(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(storable(v) for v in value)
    return True


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(task_like)
def test_any_input_is_a_storable_spec_or_an_error_naming_its_field(data: dict[str, Any]) -> None:
    try:
        spec = TaskSpec.from_dict(data, owner="ann")
    except (SpecError, TooLarge) as exc:
        assert exc.message
        return
    stored = spec.to_dict()
    assert storable(stored), stored
    json.dumps(stored, allow_nan=False).encode("utf-8")  # what the store writes
    assert limits.json_size(stored["metadata"]) <= limits.MAX_METADATA_BYTES
    assert abs(spec.priority) <= limits.MAX_PRIORITY and spec.retry.retries <= limits.MAX_RETRIES


@settings(max_examples=200, deadline=None)
@given(valid_tasks)
def test_valid_specs_pass_and_round_trip(data: dict[str, Any]) -> None:
    spec = TaskSpec.from_dict(data, owner="ann")
    assert spec.kind in KINDS
    again = TaskSpec.from_dict(spec.to_dict(), owner="ann")
    assert again == spec
    assert TaskSpec.from_dict(spec.to_dict(), owner="ann", stored=True) == spec


@settings(max_examples=200, deadline=None)
@given(any_text)
def test_the_json_gate_refuses_text_that_is_not_unicode(text: str) -> None:
    """Any body: lone surrogates are refused naming where they are; NUL passes this gate
    (a notebook may hold one) and is refused by each text field's own check."""
    body = json.dumps({"name": text})  # escapes every character, surrogates included
    try:
        value = limits.loads_limited(body)
    except SpecError as exc:
        assert exc.field == "name" and "surrogate" in exc.message
        assert not storable(text.replace("\0", ""))
        return
    assert value == {"name": text} and storable(text.replace("\0", ""))
