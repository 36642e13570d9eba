"""Task metrics end to end: a function task on a real local worker reports with
``jupyter_orch.report``, and the SDK reads what it reported with ``Future.metrics()``."""

from __future__ import annotations

import sys
from typing import Any

import cloudpickle

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test module


def train(steps: int) -> str:
    import jupyter_orch

    for i in range(steps):
        jupyter_orch.report(step=i, loss=1.0 / (i + 1), lr=0.1)
        if i % 10 == 9:
            jupyter_orch.report(step=i, group="validation", acc=i / steps)
    jupyter_orch.report(loss=float("nan"))  # no step: its offset is its x; a NaN is a gap
    return "trained"


def test_a_function_task_reports_and_the_sdk_reads_it(orch: Any) -> None:
    client = orch.client()
    fut = client.submit(train, 50)
    assert fut.result(timeout=60) == "trained"
    records = fut.metrics()
    assert len(records) == 50 + 5 + 1  # all there once the result is
    assert records[0] == {
        "attempt": 1,
        "offset": 0,
        "ts": records[0]["ts"],
        "step": 0,
        "group": "training",
        "loss": 1.0,
        "lr": 0.1,
    }
    assert [r["acc"] for r in fut.metrics(group="validation")] == [0.18, 0.38, 0.58, 0.78, 0.98]
    assert records[-1]["step"] is None and records[-1]["loss"] is None
    frame = fut.metrics(frame=True, names=["loss"])
    assert len(frame) == 51 and frame["loss"].iloc[49] == 1 / 50
    series = orch.api().get(f"/tasks/{fut.id}/metrics", max_points=10)["series"]
    loss = next(s for s in series if s["name"] == "loss")
    assert (loss["count"], len(loss["x"]), loss["x"][0], loss["downsampled"]) == (51, 10, 0, True)
