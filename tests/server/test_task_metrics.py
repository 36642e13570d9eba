"""Task metrics on a real server, reported by a worker driven by hand over the real worker
WebSocket (``support/fakeworker.py``): stored once and served as series (downsampled) or
records; resent after a reconnect from the welcome's ``metric_offsets``; on ``/events``
only when asked for (``?metrics=1``) and only to whoever may see the task; on a task's
log follow with ``?metrics=1``; every bad query parameter a 400 naming it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import websocket

from jupyter_orch.client.http import HttpApi
from jupyter_orch.core.errors import SpecError

from support.fakeworker import FakeWorker, events
from support.identities import IDENTITY_ARGS, hub_users
from support.orchserver import OrchServer
from support.rawhttp import raw

USERS = hub_users(
    alice={}, bob={}, carol={"scopes": ["custom:orch:read-all"]}, dana={"scopes": ["custom:orch:admin"]}
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrchServer]:
    orch = OrchServer(
        tmp_path_factory.mktemp("metrics"),
        workers=0,
        args=[*IDENTITY_ARGS, "--OrchApp.provider=static", "--OrchApp.worker_grace=20"],
        env=USERS,
    )
    try:
        orch.start()
        yield orch
    finally:
        orch.cleanup()


@pytest.fixture(scope="module")
def worker_token(server: OrchServer) -> str:
    return str(api(server, "dana").post("/workers/tokens", {"name": "by-hand", "shared": True})["token"])


@pytest.fixture
def worker(server: OrchServer, worker_token: str) -> Iterator[FakeWorker]:
    fake = FakeWorker(server, worker_token)
    yield fake
    fake.close()


def api(server: OrchServer, user: str) -> HttpApi:
    return server.api(f"{user}-token")


def point(step: int | None, group: str = "training", **values: Any) -> list[Any]:
    return [1000.0 + (step or 0), step, group, values or {"loss": 1.0 / (1 + (step or 0))}]


def submit(server: OrchServer, user: str = "alice", **fields: Any) -> str:
    return str(api(server, user).post("/tasks", {"kind": "shell", "command": "true", **fields})["id"])


def eventually(check: Callable[[], Any], timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            assert value, "not in time"
            return value
        time.sleep(0.05)


def stored(server: OrchServer, task_id: str, n: int, attempt: int = 1) -> list[dict[str, Any]]:
    """The task's records once the attempt has ``n`` points."""

    def check() -> list[dict[str, Any]] | None:
        records = api(server, "alice").get(f"/tasks/{task_id}/metrics", format="records", attempt=attempt)
        return records["records"] if len(records["records"]) >= n else None

    return list(eventually(check))


def test_reported_points_are_served_as_series_and_records(server: OrchServer, worker: FakeWorker) -> None:
    task_id = submit(server)
    assert worker.take() == (task_id, 1)
    worker.metrics(task_id, 1, 0, [point(0, loss=3.0), point(1, "validation", acc=0.5), point(2, loss=1.0)])
    worker.metrics(
        task_id, 1, 3, [point(None, loss=float("nan"))][:0] + [[1003.0, None, "training", {"loss": None}]]
    )
    records = stored(server, task_id, 4)
    assert records[1] == {
        "attempt": 1,
        "offset": 1,
        "ts": 1001.0,
        "step": 1,
        "group": "validation",
        "acc": 0.5,
    }
    assert records[3] == {
        "attempt": 1,
        "offset": 3,
        "ts": 1003.0,
        "step": None,
        "group": "training",
        "loss": None,
    }
    worker.finish(task_id, 1)
    alice = api(server, "alice")
    assert alice.get(f"/tasks/{task_id}/wait", timeout=30)["state"] == "succeeded"

    answer = alice.get(f"/tasks/{task_id}/metrics")
    assert {k: answer[k] for k in ("task_id", "attempts", "groups", "names")} == {
        "task_id": task_id,
        "attempts": [1],
        "groups": ["training", "validation"],
        "names": ["loss", "acc"],
    }
    loss, acc = answer["series"]
    assert loss == {
        "name": "loss",
        "group": "training",
        "attempt": None,
        "x": [0, 2, 3],  # a point without a step has its offset as x
        "y": [3.0, 1.0, None],  # a NaN reported is a gap
        "count": 3,
        "downsampled": False,
        "last": None,
        "min": 1.0,
        "max": 3.0,
    }
    assert (acc["group"], acc["x"], acc["y"]) == ("validation", [1], [0.5])
    only = alice.get(f"/tasks/{task_id}/metrics", group="validation", per_attempt="true")
    assert [(s["name"], s["attempt"]) for s in only["series"]] == [("acc", 1)]
    assert alice.get(f"/tasks/{task_id}/metrics", name=["acc", "nothing"])["series"] == [acc]
    page = alice.get(f"/tasks/{task_id}/metrics", format="records", limit=3)
    assert [r["offset"] for r in page["records"]] == [0, 1, 2] and page["next"] == "1:2"
    rest = alice.get(f"/tasks/{task_id}/metrics", format="records", limit=3, after=page["next"])
    assert [r["offset"] for r in rest["records"]] == [3] and rest["next"] is None
    # the store's files sit beside the logs
    assert (server.data_dir / "metrics" / task_id / "1.jsonl").is_file()


def test_a_long_series_is_downsampled_keeping_its_ends(server: OrchServer, worker: FakeWorker) -> None:
    task_id = submit(server)
    worker.take()
    for start in range(0, 10_000, 2500):
        worker.metrics(task_id, 1, start, [point(i, loss=(i % 97) / 97) for i in range(start, start + 2500)])
    worker.finish(task_id, 1)
    alice = api(server, "alice")
    assert alice.get(f"/tasks/{task_id}/wait", timeout=30)["state"] == "succeeded"
    [small] = alice.get(f"/tasks/{task_id}/metrics", max_points=100)["series"]
    assert len(small["x"]) == len(small["y"]) == 100
    assert (small["x"][0], small["x"][-1]) == (0, 9999)
    assert (small["count"], small["downsampled"]) == (10_000, True)
    assert (small["min"], small["max"], small["last"]) == (0.0, 96 / 97, (9999 % 97) / 97)
    [default] = alice.get(f"/tasks/{task_id}/metrics")["series"]
    assert len(default["x"]) == 1000
    [whole] = alice.get(f"/tasks/{task_id}/metrics", max_points=100_000)["series"]
    assert whole["x"] == list(range(10_000)) and not whole["downsampled"]


def test_points_resent_after_a_reconnect_are_kept_once(
    server: OrchServer, worker: FakeWorker, worker_token: str
) -> None:
    task_id = submit(server)
    worker.take()
    worker.metrics(task_id, 1, 0, [point(0), point(1), point(2)])
    stored(server, task_id, 3)
    worker.close()  # the connection drops; the task goes on
    again = FakeWorker(
        server, worker_token, worker_id=worker.id, running=[{"task_id": task_id, "attempt": 1}]
    )
    try:
        assert again.welcome["metric_offsets"] == [[task_id, 1, 3]]
        assert again.welcome["log_offsets"] == [[task_id, 1, 0]]
        mark = len(server.lines)
        again.metrics(task_id, 1, 1, [point(1), point(2), point(3), point(4)])  # resent from an older offset
        again.metrics(task_id, 1, 8, [point(8)])  # 3 points lost while away: a gap
        again.metrics(task_id, 1, 9, [["not", "a", "point"], point(10), [1.0, 2, "training", {"ts": 1}]])
        records = stored(server, task_id, 7)
        assert [r["step"] for r in records] == [0, 1, 2, 3, 4, 8, 10]
        server.wait_for_log("were lost while its worker was away", start=mark)
        server.wait_for_log("dropped 2 malformed metric point(s)", start=mark)
        again.finish(task_id, 1)
        assert api(server, "alice").get(f"/tasks/{task_id}/wait", timeout=30)["state"] == "succeeded"
    finally:
        again.close()


def _until(ws: websocket.WebSocket, kind: str, task_id: str) -> tuple[dict[str, Any], list[str]]:
    """Read events until one of ``kind`` about ``task_id``; it and the kinds of all read before."""
    ws.settimeout(30)
    seen = []
    while True:
        event = json.loads(ws.recv())
        if event["type"] == kind and event.get("task_id") == task_id:
            return event, seen
        seen.append(event["type"])


def test_events_carry_metrics_only_when_asked_and_only_to_who_may_see_them(
    server: OrchServer, worker: FakeWorker
) -> None:
    plain = events(server, "alice-token", "types=task,log")
    asked = events(server, "alice-token", "types=task&metrics=1")
    by_type = events(server, "alice-token", "types=task,metrics")
    reader = events(server, "carol-token", "metrics=1")  # custom:orch:read-all
    bob = events(server, "bob-token", "types=task&metrics=1")
    try:
        task_id = submit(server)
        worker.take()
        worker.metrics(task_id, 1, 0, [point(0), point(1)])
        worker.log(task_id, 1, 0, "after the points")
        _, before = _until(plain, "log", task_id)
        assert "metrics" not in before  # the sidebar is not flooded
        for ws in (asked, by_type, reader):
            event, _ = _until(ws, "metrics", task_id)
            assert {k: event[k] for k in ("attempt", "owner", "offset", "points")} == {
                "attempt": 1,
                "owner": "alice",
                "offset": 0,
                "points": [point(0), point(1)],
            }
        worker.finish(task_id, 1)
        bobs = submit(server, "bob")
        assert worker.take() == (bobs, 1)
        worker.metrics(bobs, 1, 0, [point(5)])
        event = json.loads(bob.recv())
        while event["type"] != "metrics":
            assert event["type"] == "task" and event["task"]["owner"] == "bob"
            event = json.loads(bob.recv())
        assert event["task_id"] == bobs  # alice's came before and were not his to see
        worker.finish(bobs, 1)
    finally:
        for ws in (plain, asked, by_type, reader, bob):
            ws.close()
    with pytest.raises(SpecError) as refused:
        api(server, "alice").websocket("/events?metrics=maybe")
    assert refused.value.field == "metrics"


def _follow(ws: websocket.WebSocket, until: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    ws.settimeout(30)
    got = []
    while True:
        msg = json.loads(ws.recv())
        got.append(msg)
        if until(msg) or msg["type"] == "end":
            return got


def test_the_log_follow_carries_metrics_when_asked(server: OrchServer, worker: FakeWorker) -> None:
    task_id = submit(server, retries=1, retry_backoff=0.01)
    worker.take()
    worker.metrics(task_id, 1, 0, [point(0), point(1), point(2)])
    worker.log(task_id, 1, 0, "first line")
    stored(server, task_id, 3)
    follow = server.ws(f"/tasks/{task_id}/logs/follow?metrics=1", token="alice-token")
    lines_only = server.ws(f"/tasks/{task_id}/logs/follow", token="alice-token")
    try:
        first = _follow(follow, lambda m: m["type"] == "metrics")
        assert [m["type"] for m in first] == ["state", "lines", "metrics"]  # the stored points first
        assert first[-1] == {
            "type": "metrics",
            "attempt": 1,
            "offset": 0,
            "points": [point(0), point(1), point(2)],
        }
        worker.metrics(task_id, 1, 2, [point(2), point(3)])  # a resend of one, then a new one
        live = _follow(follow, lambda m: m["type"] == "metrics")
        assert live[-1] == {"type": "metrics", "attempt": 1, "offset": 3, "points": [point(3)]}
        worker.finish(task_id, 1, ok=False)  # retried: the follow switches to attempt 2
        assert worker.take() == (task_id, 2)
        worker.metrics(task_id, 2, 0, [point(0, loss=9.0)])
        retried = _follow(follow, lambda m: m["type"] == "metrics")
        assert retried[-1] == {"type": "metrics", "attempt": 2, "offset": 0, "points": [point(0, loss=9.0)]}
        worker.log(task_id, 2, 0, "second attempt")
        worker.finish(task_id, 2)
        rest = _follow(follow, lambda m: False)
        assert [m for m in rest if m["type"] == "lines"][0]["lines"][0]["text"] == "second attempt"
        assert rest[-1]["type"] == "end" and rest[-1]["task"]["state"] == "succeeded"
        plain = _follow(lines_only, lambda m: False)
        assert plain[-1]["type"] == "end" and not [m for m in plain if m["type"] == "metrics"]
    finally:
        follow.close()
        lines_only.close()
    with pytest.raises(SpecError) as refused:
        api(server, "alice").websocket(f"/tasks/{task_id}/logs/follow?metrics=2")
    assert refused.value.field == "metrics"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("attempt=0", "attempt"),
        ("attempt=one", "attempt"),
        ("group=", "group"),
        ("group=bad%20group", "group"),
        ("group=" + "g" * 65, "group"),
        ("name=", "name"),
        ("name=ts", "name"),
        ("name=a%09b", "name"),
        ("name=loss&name=" + "n" * 101, "name"),
        ("max_points=0", "max_points"),
        ("max_points=100001", "max_points"),
        ("max_points=many", "max_points"),
        ("per_attempt=yes", "per_attempt"),
        ("format=csv", "format"),
        ("format=records&limit=0", "limit"),
        ("format=records&limit=10001", "limit"),
        ("format=records&after=1", "after"),
        ("format=records&after=a:b", "after"),
    ],
)
def test_every_bad_query_parameter_is_a_400_naming_it(server: OrchServer, query: str, field: str) -> None:
    task_id = submit(server)
    status, body = raw(server, "GET", f"/tasks/{task_id}/metrics?{query}", token="alice-token")
    assert (status, body["error"], body["field"]) == (400, "invalid", field), body


def test_unknown_tasks_and_attempts_are_404s_and_anothers_task_a_403(server: OrchServer) -> None:
    task_id = submit(server)
    status, body = raw(server, "GET", "/tasks/0123456789abcdefghjkmnpqrs/metrics", token="alice-token")
    assert status == 404
    status, body = raw(server, "GET", f"/tasks/{task_id}/metrics?attempt=2", token="alice-token")
    assert (status, body["field"]) == (404, "attempt")
    status, body = raw(server, "GET", f"/tasks/{task_id}/metrics", token="bob-token")
    assert status == 403
    status, body = raw(server, "GET", f"/tasks/{task_id}/metrics", token="carol-token")
    assert status == 200 and body["series"] == [] and body["attempts"] == []
