"""Scheduled workflows with a clock the test moves: a real SQLite store and a real engine
(no workers: a run made stays pending, which is all these tests look at)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from typing import Any

import pytest
import pytest_asyncio
from croniter import croniter

from jupyter_orch.core.errors import Forbidden, SpecError
from jupyter_orch.engine import Engine, EngineConfig
from jupyter_orch.engine.schedules import Schedules
from jupyter_orch.store import FileBlobStore, FileLogStore, SqlStore

DAILY = "0 3 * * *"
FLOW = """\
name: nightly
params:
  n: 1
tasks:
  - name: hello
    shell: echo hello
  - name: after
    depends: [hello]
    shell: echo after
"""
DAY = 86400.0


class Clock:
    """Starts at the wall clock's now (the store stamps ``created_at`` with it) and moves
    only when the test says so."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def next_fire(cron: str, after: float) -> float:
    start = datetime.fromtimestamp(after, tz=timezone.utc)
    return float(croniter(cron, start).get_next(datetime).timestamp())


@pytest_asyncio.fixture
async def setup(tmp_path: Any):
    store = SqlStore(f"sqlite:///{tmp_path / 'orch.sqlite'}")
    store.migrate()
    engine = Engine(
        store, FileBlobStore(str(tmp_path / "blobs")), FileLogStore(str(tmp_path / "logs")), EngineConfig()
    )
    await engine.start()
    clock = Clock()
    runs = tmp_path / "runs"

    def prepare(run_id: str) -> str:
        path = runs / run_id
        path.mkdir(parents=True)
        return str(path)

    schedules = Schedules(engine, store, prepare, clock=clock)
    yield schedules, engine, clock
    await schedules.stop()
    await engine.stop()
    store.close()


async def scheduled_runs(engine: Engine, schedule_id: str) -> list[dict[str, Any]]:
    return [r for r in await engine.list_runs() if r["schedule_id"] == schedule_id]


def body(**extra: Any) -> dict[str, Any]:
    return {"source": FLOW, "filename": "nightly.yaml", "cron": DAILY, **extra}


@pytest.mark.asyncio
async def test_fires_once_at_its_time_and_not_again_until_the_next(setup):
    schedules, engine, clock = setup
    added = await schedules.add(body(params={"n": 2}), "ann")
    first = next_fire(DAILY, added["created_at"])
    assert added["name"] == "nightly" and added["owner"] == "ann" and added["next_at"] == first
    assert added["last_fired_at"] is None and added["params"] == {"n": 2}

    clock.now = first - 1
    made, following = await schedules.tick()
    assert made == [] and following == first

    clock.now = first + 30
    made, following = await schedules.tick()
    assert len(made) == 1 and following == first + DAY
    runs = await scheduled_runs(engine, added["id"])
    assert [r["id"] for r in runs] == made
    run = await engine.describe_run(made[0])
    assert run["owner"] == "ann" and run["params"] == {"n": 2} and run["name"] == "nightly"
    assert [s["name"] for s in run["steps"]] == ["hello", "after"]

    assert (await schedules.tick())[0] == []  # the same moment again: nothing
    clock.now = first + 45
    assert (await schedules.tick())[0] == []  # later in the firing minute: nothing either
    view = (await schedules.views("ann"))[0]
    assert view["last_fired_at"] == first and view["last_run_id"] == made[0]
    assert view["next_at"] == first + DAY
    assert await schedules.views("bob") == []


@pytest.mark.asyncio
async def test_five_missed_firings_make_one_run_for_the_latest(setup):
    schedules, engine, clock = setup
    added = await schedules.add(body(), "ann")
    first = next_fire(DAILY, added["created_at"])
    clock.now = first + 4 * DAY + 3600  # down across 5 firing times
    made, _ = await schedules.tick()
    assert len(made) == 1
    assert len(await scheduled_runs(engine, added["id"])) == 1
    view = (await schedules.views())[0]
    assert view["last_fired_at"] == first + 4 * DAY  # the latest missed time, not the first
    assert (await schedules.tick())[0] == []


@pytest.mark.asyncio
async def test_a_removed_schedule_fires_no_more(setup):
    schedules, engine, clock = setup
    added = await schedules.add(body(), "ann")
    first = next_fire(DAILY, added["created_at"])
    clock.now = first + 1
    assert len((await schedules.tick())[0]) == 1
    with pytest.raises(Forbidden, match="another user"):
        await schedules.remove(added["id"], "bob")
    await schedules.remove(added["id"], "ann")
    clock.now = first + 3 * DAY
    assert (await schedules.tick())[0] == []
    assert len(await scheduled_runs(engine, added["id"])) == 1
    assert await schedules.views() == []


@pytest.mark.asyncio
async def test_bad_requests_are_refused_with_nothing_stored(setup):
    schedules, _, _ = setup
    with pytest.raises(SpecError, match="not a cron expression") as info:
        await schedules.add(body(cron="at three"), "ann")
    assert info.value.field == "cron"
    with pytest.raises(SpecError) as info:
        await schedules.add({"source": FLOW}, "ann")
    assert info.value.field == "cron"
    bad_file = "name: x\ntasks:\n  - name: a\n    shel: echo\n  - name: a\n    shell: echo\n"
    with pytest.raises(SpecError) as info:
        await schedules.add(body(source=bad_file), "ann")
    assert info.value.details and len(info.value.details) >= 2
    assert all(d.startswith("nightly.yaml:") for d in info.value.details)
    with pytest.raises(SpecError, match="param n must be an int") as info:
        await schedules.add(body(params={"n": "many"}), "ann")
    assert info.value.field == "params.n"
    assert await schedules.views() == []


@pytest.mark.asyncio
async def test_a_schedule_that_no_longer_plans_is_reported_and_others_still_fire(setup):
    schedules, engine, clock = setup
    good = await schedules.add(body(), "ann")
    # stored before its params were checked (an older server): it cannot plan any more
    broken = await engine.journal.run(
        lambda: schedules.store.create_schedule(
            "broken", DAILY, {"source": FLOW, "filename": "b.yaml"}, {"n": "many"}, owner="ann"
        )
    )
    first = next_fire(DAILY, max(good["created_at"], broken.created_at))
    clock.now = first + 1
    made, _ = await schedules.tick()
    assert len(made) == 1 and len(await scheduled_runs(engine, good["id"])) == 1
    views = {v["id"]: v for v in await schedules.views()}
    assert "param n must be an int" in views[broken.id]["last_error"]
    assert views[broken.id]["last_fired_at"] == first and views[broken.id]["last_run_id"] is None
    assert views[good["id"]]["last_error"] is None
    assert (await schedules.tick())[0] == []  # marked fired: not tried again every tick


@pytest.mark.asyncio
async def test_the_running_loop_fires_when_woken_after_the_clock_moved(setup):
    schedules, engine, clock = setup
    added = await schedules.add(body(), "ann")
    sub = engine.bus.subscribe(lambda e: e["type"] == "run" and e["run"]["schedule_id"] == added["id"])
    schedules.start()
    clock.now = next_fire(DAILY, added["created_at"]) + 1
    schedules.wake()
    event = await asyncio.wait_for(sub.get(), 10)
    assert event is not None and event["run"]["state"] == "running"
    views = await schedules.views()
    assert views[0]["last_run_id"] == event["run"]["id"]
    await schedules.stop()
