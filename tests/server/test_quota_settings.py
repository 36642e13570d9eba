"""Quotas set in the server's configuration, seen by users over the REST API: a submit over
a quota of waiting tasks is refused with 429 and says why; a configuration that cannot
work stops the server at start, naming the setting."""

from __future__ import annotations

import json

import pytest

from support.identities import IDENTITY_ARGS, hub_users
from support.orchserver import OrchServer
from support.rawhttp import raw

USERS = hub_users(alice={}, bob={"groups": ["ml-team"]})


def test_a_submit_over_the_quota_of_waiting_tasks_is_refused_with_429(orch_factory) -> None:
    quotas = {"users": {"bob": {"queued": 1}}}
    server = orch_factory(
        workers=0, args=[*IDENTITY_ARGS, f"--OrchApp.quotas={json.dumps(quotas)}"], env=USERS
    )
    server.start()
    shell = {"kind": "shell", "command": "echo hi"}
    status, first = raw(server, "POST", "/tasks", shell, token="bob-token")
    assert status == 201 and first["state"] == "pending"  # no worker: it waits
    status, body = raw(server, "POST", "/tasks", shell, token="bob-token")
    assert status == 429 and body["error"] == "quota_exceeded"
    assert body["message"].startswith("you have 1 task(s) waiting, and 1 more would go over the quota of 1")
    status, listed = raw(server, "GET", "/tasks", token="bob-token")
    assert [t["id"] for t in listed["tasks"]] == [first["id"]]  # nothing of the refused one
    status, _ = raw(server, "POST", "/tasks", shell, token="alice-token")
    assert status == 201


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        (
            '--OrchApp.quotas={"users": {"bob": {"gpus": -1}}}',
            "c.OrchApp.quotas.users.bob.gpus must be a whole number",
        ),
        (
            '--OrchApp.weights={"groups": {"ml-team": "heavy"}}',
            "c.OrchApp.weights.groups.ml-team must be a number above 0",
        ),
    ],
)
def test_a_bad_quota_setting_stops_the_server_naming_it(tmp_path, setting: str, named: str) -> None:
    server = OrchServer(tmp_path, workers=0, args=[setting])
    try:
        with pytest.raises(RuntimeError) as info:
            server.start()
        assert named in str(info.value)
    finally:
        server.cleanup()
