"""A server of its own for the contract tests, with objects to find, and its OpenAPI
document loaded by schemathesis.

The server has no workers (the static provider, and nobody starts one): nothing a fuzzer
submits ever runs, so a generated shell command never executes and no fuzzed request can
take the server's workers or their tokens away from the rest of the run.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.orchserver import OrchServer

WORKFLOW = "name: contract\ntasks:\n  - name: a\n    shell: echo a\n  - name: b\n    depends: [a]\n    shell: echo b\n"


@pytest.fixture(scope="module")
def contract_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrchServer]:
    server = OrchServer(tmp_path_factory.mktemp("contract"), workers=0, args=["--OrchApp.provider=static"])
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="module")
def seeded(contract_server: OrchServer) -> dict[str, list[str]]:
    """Real objects of each kind (path parameter name -> ids): generated ids that fit a
    route are swapped for these now and then, so answers about real objects are checked
    too, not only 404s."""
    api = contract_server.api()
    pending = api.post("/tasks", {"kind": "shell", "command": "echo pending", "name": "pending"})
    cancelled = api.post("/tasks", {"kind": "shell", "command": "echo cancelled", "name": "cancelled"})
    api.post(f"/tasks/{cancelled['id']}/cancel")
    run = api.post("/workflows", {"source": WORKFLOW, "filename": "contract.yaml"})
    schedule = api.post("/workflows/schedules", {"source": WORKFLOW, "cron": "0 3 * * *"})
    token = api.post("/workers/tokens", {"name": "contract"})
    return {
        "task_id": [pending["id"], cancelled["id"], *(s["task_id"] for s in run["steps"])],
        "run_id": [run["id"]],
        "schedule_id": [schedule["id"]],
        "token_id": [token["id"]],
    }
