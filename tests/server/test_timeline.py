"""``GET /timeline`` on a real server with a real local worker and three users: each sees
their own attempts in full, another user's on a shared worker as busy time only (no task
id, name or owner), someone who reads everything sees all; running attempts have no end;
the window selects; bad parameters name the field."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from jupyter_orch.core.errors import SpecError

from support.identities import IDENTITY_ARGS, hub_users
from support.orchserver import OrchServer
from support.rawhttp import raw

USERS = hub_users(alice={}, bob={}, carol={"scopes": ["custom:orch:read-all"]})


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory):
    server = OrchServer(tmp_path_factory.mktemp("timeline"), workers=1, args=IDENTITY_ARGS, env=USERS)
    try:
        server.start()
        server.wait_workers()
        yield server
    finally:
        server.cleanup()


def shell(api, name: str, command: str) -> str:
    return api.post("/tasks", {"kind": "shell", "name": name, "command": command})["id"]


def wait_done(api, task_id: str) -> dict:
    """The task once ended (the wait endpoint: a long poll, as its owner)."""
    view = api.get(f"/tasks/{task_id}/wait", timeout=60)
    assert view["state"] in ("succeeded", "failed", "cancelled"), view
    return view


def wait_printed(hub: OrchServer, token: str, task_id: str, text: str) -> None:
    """Follow the task's log as its owner until a line holds ``text``."""
    ws = hub.ws(f"/tasks/{task_id}/logs/follow", token)
    ws.settimeout(60)
    try:
        while True:
            msg = json.loads(ws.recv())
            assert msg["type"] != "end", f"task {task_id} ended without printing {text!r}"
            if msg["type"] == "lines" and any(text in line["text"] for line in msg["lines"]):
                return
    finally:
        ws.close()


def test_each_user_sees_their_own_spans_and_others_only_as_busy_time(hub: OrchServer, tmp_path: Path) -> None:
    alice, bob, carol = (hub.api(f"{u}-token") for u in ("alice", "bob", "carol"))
    before = time.time()
    done = shell(alice, "alices-done", "echo done")
    assert wait_done(alice, done)["state"] == "succeeded"
    gate = tmp_path / "go"
    running = shell(bob, "bobs-running", f"echo started; while [ ! -e {gate} ]; do sleep 0.05; done")
    wait_printed(hub, "bob-token", running, "started")
    try:
        seen = alice.get("/timeline", since=before - 1)
        [worker] = seen["workers"]
        spans = {s["name"]: s for s in seen["spans"] if s["mine"]}
        mine = spans["alices-done"]
        assert mine["task_id"] == done and mine["owner"] == "alice" and mine["state"] == "succeeded"
        assert mine["worker_id"] == worker["id"] and mine["attempt"] == 1
        assert before - 1 <= mine["started_at"] <= mine["ended_at"] <= seen["now"]
        [others] = [s for s in seen["spans"] if not s["mine"]]
        assert others == {**others, "task_id": None, "name": None, "owner": None, "state": "running"}
        assert others["ended_at"] is None and others["worker_id"] == worker["id"]
        # bob sees his own running span, and alice's only as busy time
        bobs = bob.get("/timeline", since=before - 1)["spans"]
        assert {(s["name"], s["mine"]) for s in bobs} == {("bobs-running", True), (None, False)}
        # carol reads everything: both, in full
        carols = {s["name"]: s for s in carol.get("/timeline", since=before - 1)["spans"]}
        assert carols["alices-done"]["owner"] == "alice" and carols["bobs-running"]["owner"] == "bob"
        assert all(s["mine"] for s in carols.values())
        # a window after alice's task ended leaves it out; the running one is still in it
        later = alice.get("/timeline", since=mine["ended_at"] + 0.001)["spans"]
        assert [s["state"] for s in later] == ["running"]
        assert alice.get("/timeline", since=before - 1, limit=1)["truncated"] is True
    finally:
        gate.touch()
        assert wait_done(bob, running)["state"] == "succeeded"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"since": "yesterday"}, "since"),
        ({"until": "nan"}, "until"),
        ({"since": 200.0, "until": 100.0}, "since"),
        ({"since": 0, "until": 100 * 86400}, "since"),
        ({"limit": 0}, "limit"),
    ],
)
def test_a_bad_window_is_refused_naming_the_parameter(hub: OrchServer, query: dict, field: str) -> None:
    with pytest.raises(SpecError) as info:
        hub.api("alice-token").get("/timeline", **query)
    assert info.value.field == field


@pytest.mark.parametrize(
    "query",
    ["since=", "since=%ff%fe", "since=1e400", "until=-1", f"since={'9' * 5000}", "limit=abc", "limit=%00"],
)
def test_an_empty_huge_or_non_utf8_parameter_is_a_400_not_a_500(hub: OrchServer, query: str) -> None:
    status, body = raw(hub, "GET", f"/timeline?{query}", token="alice-token")
    assert status == 400, body
    # tornado refuses bytes that are not UTF-8 before the handler reads them (no field then)
    assert body.get("field") in ("since", "until", "limit") or "%ff" in query, body


def test_no_token_sees_nothing(hub: OrchServer) -> None:
    status, _ = raw(hub, "GET", "/timeline", token="mallory-token")
    assert status in (401, 403)
