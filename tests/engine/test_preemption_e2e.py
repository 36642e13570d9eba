"""Priority preemption on a real server with one worker slot: a task of higher priority
evicts a preemptible one, which checkpoints, ends its attempt ``preempted`` (no retry
used) and resumes from its checkpoint once the slot is free again."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cloudpickle
import pytest

from support.orchserver import OrchServer

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # its functions go to workers by value


def train(scratch: str) -> dict:
    """A training loop that reports, checkpoints when asked to stop, and resumes: the
    first attempt runs until it is stopped, a resumed one does five more steps."""
    import json
    import os
    import time

    import jupyter_orch
    from jupyter_orch import checkpoint

    found = checkpoint.restore_latest()
    start = found.metadata["step"] + 1 if found else 0
    print(f"starting at step {start}", flush=True)
    for step in range(start, start + 5 if found else 100_000):
        jupyter_orch.report(step=step, loss=1.0 / (step + 1))
        if jupyter_orch.should_preempt():
            path = os.path.join(scratch, "state.json")
            with open(path, "w") as f:
                json.dump({"step": step}, f)
            checkpoint.save(path, {"step": step}, step=step)
            return {"stopped_at": step}
        time.sleep(0.02)
    return {"resumed_from": start, "attempt": int(os.environ["JUPYTER_ORCH_ATTEMPT"])}


@pytest.fixture
def one_slot(orch_factory) -> OrchServer:
    server = orch_factory(
        "preempt", workers=1, args=["--OrchApp.preemption=True", "--OrchApp.preemption_grace=20"]
    )
    server.start()
    server.wait_workers()
    return server


def test_a_higher_priority_task_evicts_a_preemptible_one_which_resumes(
    one_slot: OrchServer, tmp_path: Path
) -> None:
    client = one_slot.client()
    low = client.submit(train, str(tmp_path), preemptible=True, name="low")  # no retries asked for
    low.accepted()
    one_slot.wait_log(low.id, "starting at step 0")
    urgent = client.submit(sum, [1, 2], priority=10, name="urgent")
    assert urgent.result(60) == 3
    out = low.result(90)
    stopped_at = json.loads((tmp_path / "state.json").read_text())["step"]
    assert out == {"resumed_from": stopped_at + 1, "attempt": 2}

    attempts = one_slot.api().get(f"/tasks/{low.id}")["attempts"]
    assert [a["state"] for a in attempts] == ["preempted", "succeeded"]
    assert attempts[0]["error_kind"] == "preempted"
    assert attempts[0]["error"] == f"preempted for task {urgent.id} of priority 10 (stopped in time)"
    ran = one_slot.api().get(f"/tasks/{urgent.id}")["attempts"][0]
    assert attempts[0]["ended_at"] <= ran["started_at"] <= attempts[1]["started_at"]


def test_a_task_that_will_not_stop_is_killed_after_the_grace_and_still_preempted(orch_factory) -> None:
    server = orch_factory(
        "kill", workers=1, args=["--OrchApp.preemption=True", "--OrchApp.preemption_grace=1"]
    )
    server.start()
    server.wait_workers()
    client = server.client()
    # SIGTERM ignored by the shell and its children: only SIGKILL ends it
    stubborn = client.submit_shell(
        "trap '' TERM; echo attempt $JUPYTER_ORCH_ATTEMPT; sleep 600", preemptible=True, name="stubborn"
    )
    stubborn.accepted()
    server.wait_log(stubborn.id, "attempt 1")
    urgent = client.submit_shell("echo urgent", priority=5)
    assert urgent.result(60) is None
    server.wait_events(
        lambda e, _: (
            e.get("type") == "task"
            and e["task"]["id"] == stubborn.id
            and e["task"]["attempt"] == 2
            and e["task"]["state"] == "running"
        ),
        types="task",
    )
    first = server.api().get(f"/tasks/{stubborn.id}")["attempts"][0]
    assert first["state"] == "preempted"
    assert first["error"] == (
        f"preempted for task {urgent.id} of priority 5 (killed: it did not stop within its 1 s grace)"
    )
    stubborn.cancel()
