"""The scheduler policy, the SQL store and the log store are traitlets Types: a deployment
names its own subclass in the configuration and the server uses it."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent


def test_configured_policy_store_and_log_store_are_the_ones_used(orch_factory):
    server = orch_factory(
        workers=2,
        env={"PYTHONPATH": str(HERE)},
        args=[
            "--OrchApp.scheduler_policy_class=swappable_parts.LastWorkerFirst",
            "--OrchApp.store_class=swappable_parts.LoudStore",
            "--OrchApp.log_store_class=swappable_parts.LoudLogStore",
        ],
    ).start()
    workers = server.wait_workers(2, timeout=120)
    api = server.api()
    task = api.post("/tasks", {"kind": "shell", "command": "echo through the parts"})
    done = api.get(f"/tasks/{task['id']}/wait", timeout=120)
    assert done["state"] == "succeeded"
    assert done["worker_id"] == max(workers)  # where LastWorkerFirst puts every task
    lines = [line["text"].strip() for line in api.get(f"/tasks/{task['id']}/logs")["lines"]]
    assert lines == ["through the parts"]
    log = server.log_text()
    assert "swappable: store LoudStore migrated" in log
    assert "swappable: placement scored a worker" in log
    assert f"swappable: log store kept 1 line(s) of {task['id']}" in log


def test_a_class_of_the_wrong_kind_is_refused_naming_the_option():
    import pytest
    from traitlets import TraitError

    from jupyter_orch.server.app import OrchApp

    for option in ("scheduler_policy_class", "store_class", "log_store_class"):
        with pytest.raises(TraitError, match=option):
            OrchApp(**{option: dict})
