"""The body ``Client.submit_workflow`` sends for a workflow given as a mapping: the notebooks
it names are read where the client runs and sent along (a team-mode service reads no one's
disk, so a notebook left behind would be a run that cannot start)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jupyter_orch.client.runs import request_for


def test_a_mappings_notebooks_travel_with_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "steps").mkdir()
    nb = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "steps" / "prep.ipynb").write_text(json.dumps(nb))
    monkeypatch.chdir(tmp_path)
    workflow = {
        "name": "w",
        "tasks": [
            {"name": "a", "notebook": "steps/prep.ipynb"},
            {"name": "b", "notebook": "steps/prep.ipynb", "depends": ["a"]},
            {"name": "c", "notebook": "{{ params.which }}.ipynb"},  # chosen by the server
            {"name": "d", "notebook": "missing.ipynb"},  # named by the server's own check
            {"name": "e", "shell": "true"},
        ],
    }
    body = request_for(workflow, {"which": "x"})
    assert body["files"] == {"steps/prep.ipynb": nb}
    assert body["workflow"] == workflow and body["params"] == {"which": "x"}
