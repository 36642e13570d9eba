"""When the database refuses part of a batch, or is unavailable: one submit's bad data fails
that submit only, the engine holds exactly what is stored, and nothing accepted is lost.

The failures are real: a SQLite trigger that refuses one task's row, a blob folder that
cannot be written, a database file another process holds locked."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from jupyter_orch.core.errors import SpecError, Unavailable
from jupyter_orch.core.records import TokenRow
from jupyter_orch.core.spec import TaskSpec
from jupyter_orch.core.states import TaskState
from jupyter_orch.engine import Engine, EngineConfig
from jupyter_orch.store import FileBlobStore, FileLogStore, SqlStore

from support.dblock import Locker
from support.enginelink import Link, hello

TOKEN = TokenRow(id="t" * 26, name="test", scope="worker")
POISON = """
CREATE TRIGGER poison BEFORE INSERT ON orch_tasks WHEN NEW.name = 'poison'
BEGIN SELECT RAISE(ABORT, 'the poison row is refused'); END;
"""


def make(tmp_path: Path, **config: Any) -> Engine:
    store = SqlStore(f"sqlite:///{tmp_path / 'orch.sqlite'}", write_busy_timeout=0.2)
    store.migrate()
    with sqlite3.connect(tmp_path / "orch.sqlite") as conn:
        conn.executescript(POISON)
    return Engine(
        store,
        FileBlobStore(str(tmp_path / "blobs")),
        FileLogStore(str(tmp_path / "logs")),
        EngineConfig(**config),
    )


@pytest_asyncio.fixture
async def engine(tmp_path: Path):
    e = make(tmp_path)
    await e.start()
    yield e
    await e.stop()


def shell(name: str, command: str = "true", **fields: Any) -> TaskSpec:
    return TaskSpec.from_dict({"kind": "shell", "command": command, "name": name, **fields}, owner="ann")


def stored_names(engine: Engine) -> set[str]:
    return {r.spec.name or "" for r in engine.store.list_tasks(limit=1000)}


@pytest.mark.asyncio
async def test_a_refused_row_fails_its_own_submit_only_and_frees_the_slot(engine: Engine) -> None:
    link = Link()
    engine.worker_hello(TOKEN, link, hello("w1", slots=1))
    events = engine.bus.subscribe(lambda e: e["type"] == "task")
    # one loop turn, one commit: the poison row is placed on the only slot before the commit
    batch = [engine.submit_nowait([shell(name)], {}) for name in ("poison", "good-1", "good-2")]
    assert all(b is not None for b in batch)
    poison, good1, good2 = batch
    assert poison is not None and good1 is not None and good2 is not None
    assert poison.fresh[0].state == TaskState.SCHEDULED  # it took the slot
    with pytest.raises(SpecError, match="the database refused task .*the poison row is refused"):
        await engine.committed(poison)
    await engine.committed(good1)
    await engine.committed(good2)
    assert stored_names(engine) == {"good-1", "good-2"}
    poison_id = poison.fresh[0].id
    assert poison_id not in engine.tasks and engine.queue.get(poison_id) is None
    # the slot the poison held went to the next task: the worker hears of good-1, never of it
    assign = await link.next("assign")
    assert assign["task_id"] == good1.fresh[0].id
    assert all(w.running.keys() <= {good1.fresh[0].id} for w in engine.workers.values())
    seen = []
    while not events.queue.empty():
        seen.append(events.queue.get_nowait())
    assert poison_id not in {e["task"]["id"] for e in seen}  # nobody was shown it
    assert good1.fresh[0].id in {e["task"]["id"] for e in seen}


@pytest.mark.asyncio
async def test_a_result_that_cannot_be_written_fails_its_task_and_no_row_names_it(
    engine: Engine, tmp_path: Path
) -> None:
    (tmp_path / "blobs" / "results").write_text("a file where the results folder should be")
    link = Link()
    worker = engine.worker_hello(TOKEN, link, hello("w1", slots=2))
    big, small = await engine.submit([shell("big"), shell("small")], {})
    for _ in range(2):
        await link.next("assign")
    big_result = b"x" * (engine.config.inline_blob_limit + 1)  # goes to the blob store
    engine.worker_message(worker, _finished(big.id, result=big_result))
    engine.worker_message(worker, _finished(small.id, result=b"small"))  # kept in the database
    ack = await link.next("ack")
    assert sorted(i[0] for i in ack["items"]) == sorted([big.id, small.id])
    await engine.journal.flush()
    stored_big = engine.store.get_task(big.id)
    assert stored_big is not None and stored_big.state == TaskState.FAILED
    assert stored_big.error_kind == "store"
    assert "could not write results/" in (stored_big.error or "")
    assert stored_big.result_key is None  # no row names a blob that is not there
    assert engine.store.get_attempts(big.id)[-1].state.value == "failed"
    stored_small = engine.store.get_task(small.id)
    assert stored_small is not None and stored_small.state == TaskState.SUCCEEDED
    assert await engine.result_bytes(stored_small) == b"small"


@pytest.mark.asyncio
async def test_a_payload_that_cannot_be_written_is_refused_with_503(engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "blobs" / "payloads").write_text("not a folder")
    spec = TaskSpec.from_dict({"kind": "function", "name": "fn"}, owner="ann")
    with pytest.raises(Unavailable, match="could not write payloads/"):
        await engine.submit([spec], {spec.id: b"p" * (engine.config.inline_blob_limit + 1)})
    assert spec.id not in engine.tasks
    assert engine.store.get_task(spec.id) is None
    [ok] = await engine.submit([shell("after")], {})  # the rest goes on
    assert engine.store.get_task(ok.id) is not None


@pytest.mark.asyncio
async def test_while_the_database_is_locked_submits_get_503_and_outcomes_wait_to_be_stored(
    engine: Engine, tmp_path: Path
) -> None:
    link = Link()
    worker = engine.worker_hello(TOKEN, link, hello("w1", slots=1))
    [running] = await engine.submit([shell("running")], {})
    await link.next("assign")
    with Locker(tmp_path / "orch.sqlite"):
        with pytest.raises(Unavailable, match="the database is unavailable: database is locked"):
            await engine.submit([shell("refused")], {})
        assert not any(r.spec.name == "refused" for r in engine.tasks.values())
        engine.worker_message(worker, _finished(running.id))
        assert running.state == TaskState.SUCCEEDED  # announced ...
        await asyncio.sleep(0.5)  # several retries fail meanwhile
        assert engine.journal.outage is not None
        assert not [m for m in _drain(link) if m.type == "ack"]  # ... not acknowledged: not stored
    ack = await link.next("ack")  # the lock is gone: the retry stores it, then the worker hears
    assert ack["items"] == [[running.id, 1]]
    assert engine.journal.outage is None
    stored = engine.store.get_task(running.id)
    assert stored is not None and stored.state == TaskState.SUCCEEDED
    assert "refused" not in stored_names(engine)
    [after] = await engine.submit([shell("after")], {})
    assert (await link.next("assign"))["task_id"] == after.id


def _finished(task_id: str, result: bytes | None = None) -> Any:
    from jupyter_orch.core import protocol

    blobs = [("result", result)] if result is not None else []
    return protocol.decode(
        protocol.encode({"type": "finished", "task_id": task_id, "attempt": 1, "ok": True}, blobs or None)
    )


def _drain(link: Link) -> list[Any]:
    out = []
    while not link.sent.empty():
        out.append(link.sent.get_nowait())
    return out
