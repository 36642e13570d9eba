"""Checkpoints end to end: a real task saves one, fails, and its retry starts from it; the
API lists what was saved (attempt, step, size, metadata)."""

from __future__ import annotations

import sys
from pathlib import Path

import cloudpickle
import pytest

from jupyter_orch.core.errors import NotFound

from support.rawhttp import raw

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # its functions go to workers by value


def train(scratch: str) -> dict:
    """A training run that checkpoints, and dies once before it is done."""
    import os

    from jupyter_orch import checkpoint

    found = checkpoint.restore_latest()
    start = found.step if found else 0
    weights = os.path.join(scratch, f"weights-{os.environ['JUPYTER_ORCH_ATTEMPT']}.bin")
    with open(weights, "wb") as f:
        f.write(os.urandom(64))
    checkpoint.save(weights, {"lr": 0.1, "from": start}, step=start + 5)
    if found is None:
        raise RuntimeError("the node went away")
    with open(found.file, "rb") as f:
        restored = len(f.read())
    return {"resumed_at": start, "restored_bytes": restored, "where": os.environ["JUPYTER_ORCH_CHECKPOINTS"]}


def test_a_retry_resumes_from_the_checkpoint_and_the_api_lists_both(orch, tmp_path: Path) -> None:
    client = orch.client()
    fut = client.submit(train, str(tmp_path), retries=1, retry_backoff=0.1)
    out = fut.result(90)
    assert out["resumed_at"] == 5 and out["restored_bytes"] == 64
    assert out["where"].endswith(f"/checkpoints/{fut.id}")
    listed = orch.api().get(f"/tasks/{fut.id}/checkpoints")
    assert listed["url"] == out["where"]
    got = [(c["attempt"], c["step"], c["size"], c["metadata"]) for c in listed["checkpoints"]]
    assert got == [(1, 5, 64, {"lr": 0.1, "from": 0}), (2, 10, 64, {"lr": 0.1, "from": 5})]
    assert fut.checkpoints() == listed["checkpoints"]


def test_a_task_without_checkpoints_lists_none_and_an_unknown_one_is_404(orch) -> None:
    fut = orch.client().submit(sum, [1, 2])
    assert fut.result(60) == 3
    assert orch.api().get(f"/tasks/{fut.id}/checkpoints")["checkpoints"] == []
    with pytest.raises(NotFound):
        orch.api().get("/tasks/00000000000000000000000000/checkpoints")
    status, _ = raw(orch, "GET", f"/tasks/{fut.id}/checkpoints", token="wrong")
    assert status in (401, 403)
