"""Hyperparameter searches in the engine, with workers through the in-memory link: trials
start as function tasks up to ``max_concurrent`` with their parameters in the assignment,
ASHA's stop decisions cancel trials, ended trials make room for new ones, the search ends
with the right best trial, bad requests name their field and store nothing, and a search
goes on after a restart from its stored state and its trials' stored metric points."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from jupyter_orch import serialization
from jupyter_orch.core import protocol
from jupyter_orch.core.errors import Conflict, Forbidden, SpecError
from jupyter_orch.core.records import TokenRow
from jupyter_orch.core.space import uniform
from jupyter_orch.engine import Engine

from support.enginelink import Link, hello, make_engine

TOKEN = TokenRow(id="t" * 26, name="test", scope="worker")
PAYLOAD, _ = serialization.dumps_call(print, (), {})


def msg(**header: Any) -> protocol.Message:
    return protocol.Message(header)


def request(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "tune",
        "space": {"lr": uniform(0.0, 1.0), "width": [8, 16]},
        "metric": "loss",
        "max_trials": 4,
        "max_concurrent": 3,
        "max_t": 9,
        "grace_period": 1,
        "reduction_factor": 3,
        "task": {"env": {"A": "1"}},
    }
    base.update(over)
    return base


async def assigns(link: Link, n: int) -> list[protocol.Message]:
    return [await link.next("assign") for _ in range(n)]


def report(engine: Engine, worker: Any, task_id: str, offset: int, step: int, loss: float) -> None:
    points = [[1000.0 + step, step, "training", {"loss": loss}]]
    engine.worker_message(
        worker, msg(type="metrics", task_id=task_id, attempt=1, offset=offset, points=points)
    )


def finish(engine: Engine, worker: Any, task_id: str) -> None:
    engine.worker_message(worker, msg(type="finished", task_id=task_id, attempt=1, ok=True))


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0.01)


@pytest.mark.asyncio
async def test_a_search_runs_trials_stops_the_worst_and_ends_with_the_best(tmp_path: Any) -> None:
    engine = make_engine(tmp_path, prefetch=0, prefetch_quick=0)
    await engine.start()
    try:
        link = Link()
        worker = engine.worker_hello(TOKEN, link, hello("w1", slots=8))
        events = engine.bus.subscribe(lambda e: e["type"] == "search")
        view = await engine.create_search("ann", request(), PAYLOAD)
        assert view["state"] == "running" and view["owner"] == "ann"
        assert view["counts"]["running"] == 3 and view["counts"]["total"] == 4
        first = await assigns(link, 3)
        assert link.sent.empty()  # max_concurrent: no fourth yet
        by_number = {}
        for a in first:
            trial = a["params"]
            assert set(trial) == {"lr", "width"}
            assert a["env"]["JUPYTER_ORCH_SEARCH_ID"] == view["id"] and a["env"]["A"] == "1"
            number = int(a["env"]["JUPYTER_ORCH_TRIAL"])
            assert a["name"].startswith(f"tune #{number} lr=")
            by_number[number] = a["task_id"]
            engine.worker_message(worker, msg(type="started", task_id=a["task_id"], attempt=1))
        row = await engine.get_row(by_number[0])
        assert row.spec.metadata["trial"]["search"] == view["id"]
        # the step-1 rung: 0.1 and 0.5 go on (fewer than 3 there), 0.9 is not in the best third
        report(engine, worker, by_number[0], 0, 1, 0.1)
        report(engine, worker, by_number[1], 0, 1, 0.5)
        report(engine, worker, by_number[2], 0, 1, 0.9)
        cancel = await link.next("cancel")
        assert cancel["task_id"] == by_number[2] and "stopped early by ASHA" in cancel["reason"]
        stopped = await engine.get_row(by_number[2])
        assert stopped.state.value == "cancelled" and "stopped early by ASHA" in (stopped.error or "")
        [fourth] = await assigns(link, 1)  # its slot went to the last trial
        assert fourth["env"]["JUPYTER_ORCH_TRIAL"] == "3"
        engine.worker_message(worker, msg(type="started", task_id=fourth["task_id"], attempt=1))
        report(engine, worker, fourth["task_id"], 0, 1, 0.3)  # 4 at the rung now: only the best goes on
        assert (await link.next("cancel"))["task_id"] == fourth["task_id"]
        for number, loss in ((0, 0.05), (1, 0.4)):
            report(engine, worker, by_number[number], 1, 9, loss)
        for task_id in (by_number[0], by_number[1]):
            finish(engine, worker, task_id)
        final = await engine.wait_search(view["id"], 5)
        assert final["state"] == "succeeded" and final["ended_at"]
        assert final["best"]["number"] == 0 and final["best"]["value"] == 0.05 and final["best"]["step"] == 9
        assert final["best"]["task_id"] == by_number[0]
        assert [t["number"] for t in final["trials"]][:2] == [0, 3]
        states = {t["number"]: t["state"] for t in final["trials"]}
        assert states == {0: "succeeded", 1: "succeeded", 2: "stopped", 3: "stopped"}
        last = None
        for _ in range(50):
            event = await asyncio.wait_for(events.get(), 1)
            assert event is not None and event["owner"] == "ann" and "trials" not in event["search"]
            last = event["search"]
            if last["state"] != "running":
                break
        assert last is not None and last["state"] == "succeeded" and last["best"]["number"] == 0
        listed = await engine.list_searches("ann")
        assert [s["id"] for s in listed] == [view["id"]] and listed[0]["state"] == "succeeded"
        assert await engine.list_searches("bob") == []
        with pytest.raises(Forbidden):
            await engine.describe_search(view["id"], "bob")
        with pytest.raises(Conflict):
            await engine.cancel_search(view["id"], "ann")
        events.close()
    finally:
        await engine.stop()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"space": {"lr": {"uniform": [1, 0]}}}, "space.lr"),
        ({"space": {}}, "space"),
        ({"metric": ""}, "metric"),
        ({"max_t": None}, "max_t"),
        ({"max_concurrent": 0}, "max_concurrent"),
        ({"mode": "best"}, "mode"),
        ({"task": {"resources": {"gpus": -1}}}, "task.resources"),
        ({"task": {"command": "ls"}}, "task.command"),
        ({"colour": 1}, "colour"),
    ],
)
async def test_a_bad_request_names_its_field_and_creates_nothing(
    tmp_path: Any, change: dict[str, Any], field: str
) -> None:
    engine = make_engine(tmp_path)
    await engine.start()
    try:
        with pytest.raises(SpecError) as info:
            await engine.create_search("ann", request(**change), PAYLOAD)
        assert info.value.field is not None and info.value.field.startswith(field)
        with pytest.raises(SpecError) as info:
            await engine.create_search("ann", request(), b"")
        assert info.value.field == "payload"
        assert await engine.list_searches() == []
        assert await engine.list_tasks() == []
    finally:
        await engine.stop()


@pytest.mark.asyncio
async def test_a_cancelled_search_cancels_its_running_trials(tmp_path: Any) -> None:
    engine = make_engine(tmp_path, prefetch=0, prefetch_quick=0)
    await engine.start()
    try:
        link = Link()
        worker = engine.worker_hello(TOKEN, link, hello("w1", slots=8))
        view = await engine.create_search("ann", request(max_concurrent=2), PAYLOAD)
        first = await assigns(link, 2)
        for a in first:
            engine.worker_message(worker, msg(type="started", task_id=a["task_id"], attempt=1))
        after = await engine.cancel_search(view["id"], "ann")
        assert after["state"] == "cancelled"
        cancels = {(await link.next("cancel"))["task_id"] for _ in first}
        assert cancels == {a["task_id"] for a in first}
        await settle()
        assert link.sent.empty()  # nothing new starts
        rows = [await engine.get_row(a["task_id"]) for a in first]
        assert {r.error for r in rows} == {"the search was cancelled"}
    finally:
        await engine.stop()


@pytest.mark.asyncio
async def test_a_search_goes_on_after_a_restart(tmp_path: Any) -> None:
    first = make_engine(tmp_path, worker_grace=30, prefetch=0, prefetch_quick=0)
    await first.start()
    link = Link()
    worker = first.worker_hello(TOKEN, link, hello("w1", slots=8))
    view = await first.create_search("ann", request(), PAYLOAD)
    by_number = {}
    for a in await assigns(link, 3):
        by_number[int(a["env"]["JUPYTER_ORCH_TRIAL"])] = a["task_id"]
        first.worker_message(worker, msg(type="started", task_id=a["task_id"], attempt=1))
    report(first, worker, by_number[0], 0, 1, 0.1)
    report(first, worker, by_number[1], 0, 1, 0.5)
    # a point kept in the metric store whose effect on the search was never saved: the
    # restarted server must replay it (and stop that trial then)
    first.reports.metrics.listeners.clear()
    report(first, worker, by_number[2], 0, 1, 0.9)
    await first.journal.flush()
    await first.stop()

    second = make_engine(tmp_path, worker_grace=30, prefetch=0, prefetch_quick=0)
    await second.start()
    try:
        mid = await second.describe_search(view["id"], "ann")
        assert mid["state"] == "running"
        states = {t["number"]: t["state"] for t in mid["trials"]}
        assert states[2] == "stopping" or states[2] == "stopped"
        assert states[0] == states[1] == "running" and states[3] == "running"  # its room went to #3
        link2 = Link()
        running = [{"task_id": by_number[n], "attempt": 1} for n in (0, 1, 2)]
        worker2 = second.worker_hello(TOKEN, link2, hello("w1", slots=8, running=running))
        assert (await link2.next("cancel"))["task_id"] == by_number[2]  # stopped while away
        fourth = await link2.next("assign")
        assert fourth["env"]["JUPYTER_ORCH_TRIAL"] == "3"
        second.worker_message(worker2, msg(type="started", task_id=fourth["task_id"], attempt=1))
        report(second, worker2, by_number[0], 1, 9, 0.05)
        report(second, worker2, fourth["task_id"], 0, 9, 0.01)  # past max_t: never stopped
        for task_id in (by_number[0], by_number[1], fourth["task_id"]):
            finish(second, worker2, task_id)
        final = await second.wait_search(view["id"], 5, "ann")
        assert final["state"] == "succeeded"
        assert final["best"]["number"] == 3 and final["best"]["value"] == 0.01
        assert {t["number"]: t["state"] for t in final["trials"]}[2] == "stopped"
    finally:
        await second.stop()


@pytest.mark.asyncio
async def test_a_search_whose_every_trial_failed_fails_saying_why(tmp_path: Any) -> None:
    engine = make_engine(tmp_path, prefetch=0, prefetch_quick=0)
    await engine.start()
    try:
        link = Link()
        worker = engine.worker_hello(TOKEN, link, hello("w1", slots=8))
        view = await engine.create_search(
            "ann", request(scheduler="random", max_trials=2, max_t=None), PAYLOAD
        )
        for a in await assigns(link, 2):
            engine.worker_message(
                worker,
                msg(
                    type="finished",
                    task_id=a["task_id"],
                    attempt=1,
                    ok=False,
                    error_kind="exception",
                    error="boom",
                ),
            )
        final = await engine.wait_search(view["id"], 5)
        assert (
            final["state"] == "failed" and "every trial failed" in final["error"] and "boom" in final["error"]
        )
        assert final["best"] is None and final["counts"]["failed"] == 2
    finally:
        await engine.stop()


@pytest.mark.asyncio
async def test_a_trials_value_without_a_decision_is_news_for_watchers(tmp_path: Any) -> None:
    """A random search decides nothing on a value, yet a view of it (the lab's trials
    table) learns the trial's new best from a search event."""
    engine = make_engine(tmp_path, prefetch=0, prefetch_quick=0)
    await engine.start()
    try:
        link = Link()
        worker = engine.worker_hello(TOKEN, link, hello("w1", slots=8))
        over = {"scheduler": "random", "max_t": None, "max_trials": 1, "max_concurrent": 1}
        view = await engine.create_search("ann", request(**over), PAYLOAD)
        [assign] = await assigns(link, 1)
        engine.worker_message(worker, msg(type="started", task_id=assign["task_id"], attempt=1))
        events = engine.bus.subscribe(lambda e: e["type"] == "search")
        report(engine, worker, assign["task_id"], 0, 1, 0.25)
        event = await asyncio.wait_for(events.get(), 5)
        assert event is not None and event["search"]["id"] == view["id"]
        assert event["search"]["state"] == "running" and event["search"]["best"]["value"] == 0.25
        events.close()
    finally:
        await engine.stop()
