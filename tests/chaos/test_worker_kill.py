"""``kill -9`` of a local worker in the middle of a task (issue 12, item 5).

The local provider sees its worker process die; the attempt on it must end at once as
lost, with the provider's reason (the signal), and the retry must run on the worker that
replaces it, instead of the task waiting out ``worker_grace``. The grace here is 600 s and
this test's own timeout far lower: if it passes, the grace was not waited out.
"""

from __future__ import annotations

import os
import re
import signal

import psutil
import pytest


def _task_event(task_id, predicate):
    return lambda e, _: e.get("type") == "task" and e["task"]["id"] == task_id and predicate(e["task"])


@pytest.mark.timeout(150)  # far below the 600 s worker grace
def test_a_killed_local_worker_ends_its_attempt_at_once_and_the_retry_succeeds(orch_factory, tmp_path):
    server = orch_factory(args=["--OrchApp.worker_grace=600", "--LocalProvider.restart_delay=0.2"]).start()
    server.wait_workers()
    api = server.api()
    marker = tmp_path / "first-attempt"
    command = (
        f"if [ -e {marker} ]; then echo second attempt; "
        f"else echo $$ > {marker}; echo first attempt; exec sleep 600; fi"
    )
    task = api.post("/tasks", {"kind": "shell", "command": command, "retries": 1, "retry_backoff": 0.1})
    server.wait_log(task["id"], "first attempt")
    victim = api.get(f"/tasks/{task['id']}")["worker_id"]
    pid = server.local_worker_pids()[victim]

    with server.events("task") as events:
        os.kill(pid, signal.SIGKILL)
        # the first attempt ends and the task goes back to pending for its retry, now
        events.wait(_task_event(task["id"], lambda t: t["state"] == "pending"), timeout=120)
        retried = events.wait(_task_event(task["id"], lambda t: t["state"] == "succeeded"), timeout=120)
    assert retried["task"]["attempt"] == 2

    detail = api.get(f"/tasks/{task['id']}")
    first, second = detail["attempts"]
    assert first["state"] == "lost" and first["error_kind"] == "worker_lost"
    assert re.fullmatch(
        rf"worker local-\d was lost while running this task: its process \(pid {pid}\) was killed by SIGKILL",
        first["error"],
    ), first["error"]
    assert second["state"] == "succeeded" and second["worker_id"] != victim
    assert [line["text"].strip() for line in api.get(f"/tasks/{task['id']}/logs")["lines"]] == [
        "second attempt"
    ]
    # the provider replaced the dead worker
    server.wait_workers(2)
    # and the first attempt's process died with its worker: it does not run on beside its retry
    sleeper = int(marker.read_text())
    gone, alive = psutil.wait_procs(
        [psutil.Process(sleeper)] if psutil.pid_exists(sleeper) else [], timeout=30
    )
    assert not alive, f"the first attempt's process {sleeper} outlived its worker"
