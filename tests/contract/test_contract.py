"""The API against its OpenAPI document, fuzzed by schemathesis on a real server: for every
operation, valid and invalid requests (its examples, coverage and fuzzing phases, positive
and negative data), and every answer checked by every built-in check (no 5xx; status code,
content type, headers and body as documented; invalid data refused and valid data
accepted; a 405 with ``Allow``; credentials not ignored).

Nothing is left out silently: the checks left out for an operation are in
``EXCLUDED_CHECKS`` and answers the document states in words rather than in JSON Schema
in ``BY_DESIGN``, each with its reason. The WebSocket routes are not operations of
the document (``x-websockets``); their HTTP side is tested in
``tests/server/test_websocket_routes.py``.

No operation is left out. None stops the server; the one that could take something away
from the rest of the run, ``DELETE /workers/tokens/{token_id}``, runs on a server of its
own without workers (conftest.py), where the only tokens are the API token it is never
shown (its id is in no answer) and the seeded one it may revoke. Submitted tasks never run
there, so generated shell commands never execute. The stateful phase (requests chained
through the ids answers carry) is left to runs by hand: it takes minutes. By hand against
a running server, with the same exclusions: see ``tests/contract/schemathesis.toml``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import CHECKS
from schemathesis.core.failures import FailureGroup

from jupyter_orch.server import openapi
from jupyter_orch.server.app import API

# the document the server serves (tests/server/test_openapi.py holds them equal), read at
# collection time; the requests go to the contract server's URL
schema = schemathesis.openapi.from_dict(openapi.document())

ROUTE_ID = re.compile(r"[0-9a-z]{26}")
LONG_POLLS = ("timeout", "wait")  # seconds a request may wait for a task or run to end

# (method, path) -> {check name: why it does not apply there}
EXCLUDED_CHECKS: dict[tuple[str, str], dict[str, str]] = {
    ("POST", "/workflows"): {
        "positive_data_acceptance": "a workflow's text (`source`) or document (`workflow`) is checked for "
        "its steps, dependencies, templates and params beyond what JSON Schema can say: a generated one "
        "is almost never a workflow; the 400 names every problem (tests/workflows test them)",
    },
    ("POST", "/workflows/schedules"): {
        "positive_data_acceptance": "as POST /workflows, and `cron` must be a cron expression "
        "(tests/engine/test_schedules.py)",
    },
    ("POST", "/searches"): {
        "positive_data_acceptance": "a search's space (each distribution's arguments: low below high, "
        "a positive loguniform range ...) and its settings together (grace_period at most max_t, a "
        "grid for scheduler grid, a printable metric name) are checked beyond what JSON Schema can "
        "say; the 400 names the field (tests/engine/test_search_engine.py)",
    },
    ("GET", "/timeline"): {
        "positive_data_acceptance": "`since` must come before `until` and the window span 31 days at "
        "most: a relation between two parameters JSON Schema cannot say; the 400 names `since` "
        "(tests/server/test_timeline.py)",
    },
    ("GET", "/tasks/{task_id}/metrics"): {
        "positive_data_acceptance": "a metric `name` must be printable text (Python's str.isprintable: "
        "no unassigned, private-use, format or separator characters but the space), which a JSON "
        "Schema pattern cannot say; the 400 names the field (tests/server/test_task_metrics.py)",
    },
}


def _items(body: Any) -> list[Any]:
    if isinstance(body, dict) and isinstance(body.get("tasks"), list):
        return list(body["tasks"])
    return [body]


_ACCEPTED_IDS: set[str] = set()  # task ids the server accepted earlier in this run


def _resubmission(case: Any, response: Any) -> bool:
    ids = [item.get("id") for item in _items(case.body) if isinstance(item, dict)]
    return response.status_code == 201 and bool(ids) and all(i in _ACCEPTED_IDS for i in ids)


def _remember_accepted(case: Any, response: Any) -> None:
    if case.operation.path == "/tasks" and case.method.upper() == "POST" and response.status_code == 201:
        answer = response.json()
        _ACCEPTED_IDS.update(t["id"] for t in answer.get("tasks", [answer]))


# Answers the document states in words, not in JSON Schema: (failure kind, operation,
# predicate(case, response), the rule).
BY_DESIGN: list[tuple[str, str, Callable[[Any, Any], bool], str]] = [
    (
        "AcceptedNegativeData",
        "POST /tasks",
        _resubmission,
        "a task id submitted before answers the stored task (an idempotent submit, see `id`): "
        "what only a new task is asked for (its payload) is not asked again",
    ),
]


def _explained(case: Any, response: Any, failure: BaseException) -> bool:
    label = f"{case.method.upper()} {case.operation.path}"
    return any(
        type(failure).__name__ == kind and label == operation and matches(case, response)
        for kind, operation, matches, _ in BY_DESIGN
    )


def _use_seeded_ids(case: Any, seeded: dict[str, list[str]]) -> None:
    """Now and then (deterministically, by the generated id) a real object's id instead of
    a generated one that has the same shape."""
    for name, value in list((case.path_parameters or {}).items()):
        ids = seeded.get(name)
        if ids and isinstance(value, str) and ROUTE_ID.fullmatch(value):
            pick = int(hashlib.sha256(value.encode()).hexdigest(), 16)
            if pick % 2:
                case.path_parameters[name] = ids[pick // 2 % len(ids)]


def _shorten_long_polls(case: Any) -> None:
    """A valid wait (up to an hour; 30 s when not given) on a task that never ends (no
    workers here) would hold the request that long: waits within the documented range
    become 0.1 s, and a long poll without one gets 0.1 s (both still valid)."""
    if case.operation.path.endswith("/wait") and "timeout" not in (case.query or {}):
        case.query = {**(case.query or {}), "timeout": 0.1}
    for name in LONG_POLLS:
        value = (case.query or {}).get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            continue
        try:
            seconds = float(value)
        except ValueError:
            continue
        if 0.1 < seconds <= 3600:
            case.query[name] = "0.1" if isinstance(value, str) else 0.1


@schema.parametrize()
@settings(
    max_examples=25,
    derandomize=True,  # the same cases every run: a failure here is a finding, not a fluke
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_follows_its_document(case: Any, contract_server: Any, seeded: dict[str, list[str]]) -> None:
    _use_seeded_ids(case, seeded)
    _shorten_long_polls(case)
    excluded = EXCLUDED_CHECKS.get((case.method.upper(), case.operation.path), {})
    checks = [c for c in CHECKS.get_all() if c.__name__ not in excluded]
    transport = {
        "base_url": contract_server.url + API,
        "headers": {"Authorization": f"Bearer {contract_server.token}"},
        "timeout": 60,
    }
    response = case.call(**transport)
    try:
        case.validate_response(
            response, checks=checks, headers=transport["headers"], transport_kwargs=transport
        )
    except FailureGroup as group:
        if not all(_explained(case, response, f) for f in group.exceptions):
            raise
    finally:
        _remember_accepted(case, response)


def test_the_exclusions_name_real_operations_and_checks() -> None:
    """An exclusion that names nothing real would hide nothing, silently: each names an
    operation of the document and a check schemathesis has."""
    operations = {
        (method.upper(), path)
        for path, item in openapi.document()["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }
    names = {c.__name__ for c in CHECKS.get_all()}
    for (method, path), checks in EXCLUDED_CHECKS.items():
        assert (method, path) in operations, (method, path)
        assert set(checks) <= names, checks
    for _, operation, _, _ in BY_DESIGN:
        method, path = operation.split(" ", 1)
        assert (method, path) in operations, operation


def test_the_cli_configuration_excludes_the_same_checks() -> None:
    """tests/contract/schemathesis.toml (for a run by hand) leaves out what this test does."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]

    config = tomllib.loads((Path(__file__).parent / "schemathesis.toml").read_text())
    cli = {
        (op["include-method"], op["include-path"]): {
            name for name, check in op["checks"].items() if check.get("enabled") is False
        }
        for op in config["operations"]
    }
    assert cli == {key: set(checks) for key, checks in EXCLUDED_CHECKS.items()}
