"""Hyperparameter search on a real server with real local workers: ``client.search`` runs
trials as tasks (their parameters as keyword arguments), ASHA stops some early, the search
ends with the trial of the smallest loss among those that ran to the end, each trial's
metrics are readable, and another user can neither read nor cancel it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import cloudpickle
import pytest

from jupyter_orch import serialization
from jupyter_orch.core.errors import Forbidden, NotFound, SpecError
from jupyter_orch.core.space import uniform

from support.identities import IDENTITY_ARGS, hub_users
from support.orchserver import EventStream, OrchServer

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # its functions go to workers by value


def curve(a: float, b: float) -> float:
    """A learning curve: the loss falls towards ``a``, from ``a + b``."""
    import time

    import jupyter_orch

    loss = a + b
    for step in range(27):
        loss = a + b / (step + 1)
        jupyter_orch.report(step=step, loss=loss)
        time.sleep(0.03)
    return loss


def test_a_search_runs_stops_trials_early_and_finds_the_best(orch: OrchServer) -> None:
    client = orch.client()
    search = client.search(
        curve,
        {"a": uniform(0, 1), "b": [0.5, 2.0]},
        metric="loss",
        max_t=27,
        max_trials=24,
        max_concurrent=2,
        name="curve",
    )
    assert search.state == "running" and search.id
    best = search.result(timeout=240)
    assert search.state == "succeeded"
    trials = search.trials()
    assert len(trials) == 24
    states = {t["state"] for t in trials}
    assert states <= {"succeeded", "stopped"}, trials
    stopped = [t for t in trials if t["state"] == "stopped"]
    assert stopped and all("stopped early by ASHA" in (t["reason"] or "") for t in stopped)
    completed = [t for t in trials if t["state"] == "succeeded"]
    winner = min(completed, key=lambda t: t["last"])
    assert best is not None
    assert best["number"] == winner["number"] and best["task_id"] == winner["task_id"]
    assert best["value"] == pytest.approx(winner["params"]["a"] + winner["params"]["b"] / 27)
    assert best["step"] == 26 and set(best["params"]) == {"a", "b"}
    # each trial is a task with its parameters as keyword arguments and its metrics kept
    task = client.api.get(f"/tasks/{winner['task_id']}")
    assert task["name"].startswith(f"curve #{winner['number']} a=")
    assert client.future(winner["task_id"]).result(timeout=30) == pytest.approx(best["value"])
    series = client.metrics(winner["task_id"])
    assert series is not None
    loss = client.api.get(f"/tasks/{winner['task_id']}/metrics", name="loss")
    assert loss["series"][0]["count"] == 27
    # ASHA stopped them: their tasks were cancelled with its reason, before the end
    first_stop = client.api.get(f"/tasks/{stopped[0]['task_id']}")
    assert first_stop["state"] == "cancelled" and "stopped early by ASHA" in first_stop["error"]
    assert stopped[0]["step"] < 26
    # the listing and the text and HTML views
    assert search.id in [s["id"] for s in client.searches()]
    assert "<table>" in search._repr_html_() and f"#{winner['number']}" in repr(search)


def test_a_bad_search_is_refused_naming_the_field(orch: OrchServer) -> None:
    client = orch.client()
    with pytest.raises(SpecError) as info:
        client.search(curve, {"a": {"uniform": [1, 0]}}, metric="loss", max_t=3, max_trials=2)
    assert info.value.field == "space.a"
    with pytest.raises(SpecError):  # the helpers check here already
        uniform(1, 0)
    with pytest.raises(SpecError) as info:
        client.search(curve, {"a": uniform(0, 1)}, metric="loss", max_trials=2)
    assert info.value.field == "max_t"


def orch_cli(server: OrchServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, JUPYTER_ORCH_URL=server.url, JUPYTER_ORCH_TOKEN=server.token, COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "jupyter_orch", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_the_cli_lists_searches_and_one_searchs_trials(orch: OrchServer) -> None:
    client = orch.client()
    search = client.search(
        curve,
        {"a": [0.25, 0.75], "b": [1.0]},
        metric="loss",
        scheduler="grid",
        max_concurrent=2,
        name="gridded",
    )
    best = search.result(timeout=120)
    assert best is not None and best["params"] == {"a": 0.25, "b": 1.0}
    listed = orch_cli(orch, "searches")
    assert listed.returncode == 0, listed.stderr
    assert search.id in listed.stdout and "gridded" in listed.stdout and "loss (min)" in listed.stdout
    one = orch_cli(orch, "searches", search.id)
    assert one.returncode == 0, one.stderr
    lines = [line for line in one.stdout.splitlines() if line.strip()]
    assert "best #0" in lines[0] and "0.25" in lines[2] and "0.75" in lines[3]  # best first
    as_json = json.loads(orch_cli(orch, "searches", search.id, "--json").stdout)
    assert as_json["id"] == search.id and [t["number"] for t in as_json["trials"]] == [0, 1]


USERS = hub_users(alice={}, bob={}, carol={"scopes": ["custom:orch:read-all"]})


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory):
    server = OrchServer(tmp_path_factory.mktemp("searchaccess"), workers=1, args=IDENTITY_ARGS, env=USERS)
    try:
        server.start()
        server.wait_workers()
        yield server
    finally:
        server.cleanup()


def request() -> dict[str, Any]:
    import base64

    payload, _ = serialization.dumps_call(curve, (), {})
    return {
        "name": "alices",
        "space": {"a": uniform(0, 1), "b": [1.0]},
        "metric": "loss",
        "scheduler": "random",
        "max_trials": 2,
        "max_concurrent": 1,
        "payload": base64.b64encode(payload).decode(),
    }


def test_another_users_search_is_refused(hub: OrchServer) -> None:
    alice, bob, carol = (hub.api(f"{u}-token") for u in ("alice", "bob", "carol"))
    bobs_events = EventStream(hub.ws("/events?types=search", "bob-token"))
    alices_events = EventStream(hub.ws("/events?types=search", "alice-token"))
    search = alice.post("/searches", request())
    assert search["owner"] == "alice"
    for path in (f"/searches/{search['id']}", f"/searches/{search['id']}/wait?timeout=0"):
        with pytest.raises((Forbidden, NotFound)):
            bob.get(path)
    with pytest.raises((Forbidden, NotFound)):
        bob.post(f"/searches/{search['id']}/cancel")
    assert bob.get("/searches")["searches"] == []
    with pytest.raises(Forbidden, match="custom:orch:read-all"):
        bob.get("/searches?owner=alice")
    assert carol.get(f"/searches/{search['id']}")["id"] == search["id"]  # the right to read all
    assert [s["id"] for s in carol.get("/searches?owner=alice")["searches"]] == [search["id"]]
    with pytest.raises(Forbidden):
        carol.post(f"/searches/{search['id']}/cancel")  # reading all is not changing
    # bob does not see its events either, nor its trials' tasks
    assert all(t["owner"] != "alice" for t in bob.get("/tasks")["tasks"])
    done = alice.get(f"/searches/{search['id']}/wait?timeout=60")
    assert done["state"] == "succeeded" and done["counts"]["succeeded"] == 2
    ended = alices_events.wait(lambda e, _: e["type"] == "search" and e["search"]["state"] != "running")
    assert ended["search"]["id"] == search["id"] and ended["owner"] == "alice"
    # bob's stream: the first search event he gets is of his own search, none of alice's
    bobs = bob.post("/searches", request())
    first = bobs_events.wait(lambda e, _: e["type"] == "search")
    assert first["search"]["id"] == bobs["id"]
    bob.post(f"/searches/{bobs['id']}/cancel")
    bobs_events.ws.close()
    alices_events.ws.close()
