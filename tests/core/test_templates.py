"""Templates in workflow steps."""

from __future__ import annotations

import pytest

from jupyter_orch.core.errors import SpecError
from jupyter_orch.core.templates import render

CONTEXT = {
    "params": {"rows": 2000, "lr": 0.1},
    "tasks": {
        "prepare": {"outputs": {"data_path": "/runs/r1/data.npz", "shape": [10, 2]}},
        "a.b": {"outputs": {"x": 1}},
    },
    "run": {"id": "r1", "dir": "/runs/r1"},
}


def test_a_whole_template_keeps_the_type_and_a_partial_one_is_text():
    got = render(
        {
            "rows": "{{ params.rows }}",
            "data": "{{tasks.prepare.outputs.data_path}}",
            "cmd": "--lr {{ params.lr }} --out {{ run.dir }}/x",
            "shape": "{{ tasks.prepare.outputs.shape }}",
            "nested": ["{{ run.id }}", 3],
            "dotted": "{{ tasks.a.b.outputs.x }}",
        },  # fmt: skip
        CONTEXT,
    )
    assert got == {"rows": 2000, "data": "/runs/r1/data.npz", "cmd": "--lr 0.1 --out /runs/r1/x",
                   "shape": [10, 2], "nested": ["r1", 3], "dotted": 1}  # fmt: skip


def test_a_missing_value_names_the_reference_and_the_field():
    with pytest.raises(SpecError) as info:
        render({"data": "{{ tasks.prepare.outputs.nope }}"}, CONTEXT)
    assert "step 'prepare' recorded no output 'nope'" in str(info.value)
    assert info.value.field == "parameters.data"
    with pytest.raises(SpecError, match="nothing is called 'params.epochs'"):
        render("{{ params.epochs }}", CONTEXT)
