"""SIGKILL of the server with 1,000 tasks in flight, on SQLite and on PostgreSQL.

The smaller, step-by-step version (one running task re-attached after a kill) is
``tests/engine/test_recovery.py::test_server_killed_mid_run_loses_nothing``; this one kills
the server in the middle of a stream of 1,000 tasks and counts what happened to each.
"""

from __future__ import annotations

import collections
import threading
from pathlib import Path
from typing import Any

import pytest

from jupyter_orch.core import protocol

from .conftest import Ledger, wait_until
from support.proxy import CuttableProxy

TASKS = 1000
WORKERS = 3
SLOTS = 3
KILL_AFTER = 250  # tasks seen succeeding on the events stream before the kill
IN_FLIGHT = 400  # submitted right before the kill, while it lands
AFTER_KILL = 100  # submitted while the server is down


def _submit(client: Any, ledger: Ledger, index: int, gate: Path | None = None, priority: int = 0) -> Any:
    """Every other task is a shell task, the rest function tasks; every 10th works a little
    (a few ticks of output) so that some are mid-run whenever the kill lands."""
    ticks, tick = (3, 0.05) if index % 10 == 0 and gate is None else (0, 0.0)
    common = {"cpus": 0.25, "retries": 1, "retry_backoff": 0.1, "priority": priority}
    if index % 2:
        return client.submit_shell(ledger.shell(index, gate, ticks, tick), name=f"sh-{index}", **common)
    return client.submit(*ledger.call(index, gate, ticks, tick), name=f"fn-{index}", **common)


@pytest.mark.timeout(480)
@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_sigkill_with_1000_tasks_in_flight_loses_nothing_and_runs_nothing_twice(
    orch_factory, ledger, tmp_path, request, database
):
    """What this proves, with a real ``jupyter orch serve`` and 3 local workers of 3 slots:

    The server is SIGKILLed (no shutdown code runs) once 250 tasks have succeeded according
    to the events stream, while 400 submits are being sent (the server has accepted the
    first of them), and 100 more are submitted while it is down; at that moment tasks are
    in every state: done, running (6 of them held running by gates), sent ahead and
    waiting on a worker, pending in the queue, submitted but not yet acknowledged (in
    most runs), and queued in the client. It is restarted on the same data dir and database;
    the workers, which outlived it, reconnect.

    - **0 lost**: every one of the 1,000 futures is accepted and ends succeeded with the
      right value (each function task returns ``index ** 2``), in particular every id the
      client had been told was accepted before the kill.
    - **0 run twice to completion**: each body appends its task id to ``done.log`` as its
      last act; every id is there exactly once, under the attempt number the server
      reports as the succeeded one. Three tasks were running at the kill and completed
      while the server was down (their gate opened after the kill, and their completion
      was seen on disk before the restart): their workers kept the reports and sent them
      on reconnect, and the server took them: one attempt each, not run again.
    - **attempts are accounted for**: a task has at most 2 attempts; an attempt before the
      last one ended ``lost`` (never ``failed``), and one that the server says ended
      ``not_started`` never started its body (no line in ``starts.log``); every body
      start belongs to an attempt the server knows.
    - the 3 workers that outlived the server are adopted (same ids), and the three gated
      tasks still running at the restart are re-attached and finish there, one attempt each.
    """
    db_url = request.getfixturevalue("pg_url") if database == "postgresql" else None
    server = orch_factory(
        workers=WORKERS,
        db_url=db_url,
        args=[f"--LocalProvider.slots_per_worker={SLOTS}", "--LocalProvider.cpus_per_worker=4"],
    ).start()
    server.wait_workers(WORKERS, timeout=120)
    workers_before = set(server.local_worker_pids())
    client = server.client()
    gates = tmp_path / "gates"
    gates.mkdir()
    down_gate, across_gate = gates / "down", gates / "across"

    futures: list[Any] = []
    with server.events("task") as events:
        # gated first (and ahead in the queue): 3 finish while the server is down, 3 after
        gated_down = [_submit(client, ledger, i, down_gate, priority=1) for i in range(3)]
        gated_across = [_submit(client, ledger, i, across_gate, priority=1) for i in range(3, 6)]
        futures += gated_down + gated_across
        first = TASKS - len(futures) - IN_FLIGHT - AFTER_KILL
        futures += [_submit(client, ledger, i) for i in range(6, 6 + first)]
        gated_ids = {f.id for f in gated_down + gated_across}
        running: set[str] = set()
        succeeded: set[str] = set()

        def ready_to_kill(event: dict[str, Any], _: Any) -> bool:
            if event.get("type") == "task":
                task = event["task"]
                if task["state"] == "running" and task["id"] in gated_ids:
                    running.add(task["id"])
                elif task["state"] == "succeeded":
                    succeeded.add(task["id"])
            return running == gated_ids and len(succeeded) >= KILL_AFTER

        events.wait(ready_to_kill, timeout=240)

    # the kill lands while a second batch is being submitted; the last ones go while it is down
    sent_some, killed = threading.Event(), threading.Event()
    late: list[Any] = []
    start = 6 + first

    def submit_more() -> None:
        for n, i in enumerate(range(start, start + IN_FLIGHT + AFTER_KILL)):
            if n == IN_FLIGHT // 4:
                sent_some.set()
            if n == IN_FLIGHT:
                killed.wait(60)
            late.append(_submit(client, ledger, i))

    submitter = threading.Thread(target=submit_more)
    submitter.start()
    assert sent_some.wait(60)
    assert late[0].accepted(60)  # the server is taking the second batch: now
    server.stop(kill=True)
    killed.set()
    accepted_at_kill = {f.id for f in [*futures, *list(late)] if f.accepted(timeout=0)}
    submitter.join(60)
    futures += late
    assert len(futures) == TASKS and len({f.id for f in futures}) == TASKS

    # the workers run on: the three down-gated tasks complete while no server listens
    down_gate.touch()
    ledger.wait_completed([f.id for f in gated_down], timeout=120)

    server.start(timeout=120)
    server.wait_workers(WORKERS, timeout=120)
    assert set(server.local_worker_pids()) == workers_before  # the same workers, adopted
    across_gate.touch()

    for fut in futures:
        fut.wait(300)
    not_succeeded = {f.id: f.status for f in futures if f.status != "succeeded"}
    assert not not_succeeded, (
        f"{len(not_succeeded)} task(s) did not succeed: {dict(list(not_succeeded.items())[:10])}"
    )
    assert accepted_at_kill, "no task had been accepted when the kill landed"
    for fut in futures:
        expected = None if fut.name.startswith("sh-") else int(fut.name[3:]) ** 2
        assert fut.result(0) == expected, fut.name

    # the server's account, from the restarted server
    views = {t["id"]: t for t in server.api().get("/tasks", limit=TASKS)["tasks"]}
    assert set(views) == {f.id for f in futures}
    assert all(v["state"] == "succeeded" for v in views.values())
    assert accepted_at_kill <= set(views)  # what the client was told was accepted, explicitly
    retried = {i: server.api().get(f"/tasks/{i}")["attempts"] for i, v in views.items() if v["attempt"] > 1}

    # the bodies' own account
    completions = ledger.completions()
    twice = {i: n for i, n in collections.Counter(i for i, _ in completions).items() if n > 1}
    assert not twice, (
        f"{len(twice)} task(s) ran to completion more than once, e.g. {dict(list(twice.items())[:5])}"
    )
    assert {i for i, _ in completions} == set(views)
    assert all(views[i]["attempt"] == a for i, a in completions), "a completion under another attempt"
    starts = set(ledger.starts())
    assert all(a <= views[i]["attempt"] for i, a in starts), "a body started under an unknown attempt"
    for task_id, attempts in retried.items():
        assert len(attempts) <= 2, attempts
        *earlier, last = attempts
        assert last["state"] == "succeeded"
        for attempt in earlier:
            assert attempt["state"] == "lost", attempt
            if attempt["error_kind"] == "not_started":
                assert (task_id, attempt["number"]) not in starts, attempt

    # those the workers finished while the server was down were reported, not run again
    for fut in gated_down + gated_across:
        assert views[fut.id]["attempt"] == 1, server.api().get(f"/tasks/{fut.id}")["attempts"]
        lines = [line["text"].strip() for line in server.api().get(f"/tasks/{fut.id}/logs")["lines"]]
        assert lines == [f"{'sh' if fut.name.startswith('sh') else 'fn'} {fut.name[3:]} started"], lines


@pytest.mark.timeout(300)
def test_an_attempt_bounced_before_a_kill_does_not_use_up_a_retry(orch_factory, tmp_path):
    """A task with ``retries=1`` whose first attempt never reached its worker (the
    assignment went down with the connection: ``not_started``, which is not a try) runs;
    the server is SIGKILLed and restarted while it runs; that run fails. The one retry
    the task asked for is still due: a third attempt runs and succeeds."""
    server = orch_factory(workers=0).start()
    api = server.api()
    token = api.post("/workers/tokens", {"name": "behind-proxy"})["token"]
    proxy = CuttableProxy(server.port)
    worker = server.start_worker(token, "--name", "bounced", url=proxy.url)
    first, gate = tmp_path / "first-run", tmp_path / "gate"
    command = (
        f"if [ -e {first} ]; then echo second run; exit 0; fi; touch {first}; echo first run; "
        f"while [ ! -e {gate} ]; do sleep 0.05; done; exit 1"
    )
    try:
        [worker_id] = server.wait_workers(1, timeout=120)
        with server.events() as events:
            proxy.blackhole()  # the assignment goes into the partition...
            task = api.post(
                "/tasks", {"kind": "shell", "command": command, "retries": 1, "retry_backoff": 0.1}
            )
            events.wait(lambda e, _: e["type"] == "task" and e["task"]["state"] == "scheduled", timeout=60)
            # the assignment leaves once it is stored: wait until it is in the partition (a cut
            # before that leaves it to the reconnected worker, a first attempt like any other)
            assert proxy.wait_held(task["id"].encode(), 60)
            proxy.refuse()  # ...and is lost with the connection
            events.wait(lambda e, ws: ws[worker_id]["state"] == "disconnected", timeout=60)
            proxy.heal()
        server.wait_log(task["id"], "first run", timeout=120)
        attempts = api.get(f"/tasks/{task['id']}")["attempts"]
        assert [(a["state"], a["error_kind"]) for a in attempts] == [
            ("lost", "not_started"),
            ("running", None),
        ]

        server.stop(kill=True)
        server.start(timeout=120)
        server.wait_workers(1, timeout=120)
        gate.touch()  # the second attempt, the first real run, fails
        done = server.api().get(f"/tasks/{task['id']}/wait", timeout=120)
        attempts = server.api().get(f"/tasks/{task['id']}")["attempts"]
        assert [a["state"] for a in attempts][:2] == ["lost", "failed"], attempts
        # the restarted server counts the not_started attempt as no retry (it is rebuilt from
        # the stored attempts; before that fix it was kept only in memory and the task failed)
        assert done["state"] == "succeeded", (done["state"], done["error"], attempts)
        assert [a["state"] for a in attempts] == ["lost", "failed", "succeeded"]
        logs = server.api().get(f"/tasks/{task['id']}/logs")["lines"]
        assert [line["text"].strip() for line in logs] == ["second run"]
    finally:
        worker.stop()
        proxy.close()


class ProtocolWorker:
    """The worker's side of the protocol, spoken by the test so that it can hold a report
    at an exact moment. Like ``jupyter orch worker`` (``worker/outbox.py``) it keeps each
    ``finished`` report until the server acknowledges it, and lists and resends the kept
    ones when it says hello again."""

    def __init__(self, server: Any, token: str) -> None:
        self.server, self.token = server, token
        self.reports: dict[tuple[str, int], dict[str, Any]] = {}
        self.acks: list[list[tuple[str, int]]] = []  # the items of each ack, as they came

    def connect(self) -> None:
        self.ws = self.server.ws("/workers/connect", token=self.token)
        hello = {"type": "hello", "worker_id": "chaos-protocol-worker", "name": "protocol-worker"}
        hello.update(slots=2, cpus=4, finished=list(self.reports.values()))
        self.ws.send(protocol.encode(hello))
        assert self.recv("welcome").type == "welcome"
        for key in list(self.reports):
            self._send_report(key)

    def recv(self, *types: str) -> protocol.Message:
        while True:
            frame = self.ws.recv()
            for msg in protocol.decode_all(frame):
                if msg.type == "ack":
                    items = [
                        (str(t), int(a)) for t, a in msg.get("items") or [[msg["task_id"], msg["attempt"]]]
                    ]
                    self.acks.append(items)
                    for key in items:
                        self.reports.pop(key, None)
                if msg.type in types:
                    return msg

    def finish(self, task_id: str, attempt: int = 1) -> None:
        self.reports[(task_id, attempt)] = {
            "type": "finished", "task_id": task_id, "attempt": attempt, "ok": True, "exit_code": 0,
        }  # fmt: skip
        self._send_report((task_id, attempt))

    def _send_report(self, key: tuple[str, int]) -> None:
        self.ws.send_binary(protocol.encode(self.reports[key], [("result", b"")]))


@pytest.mark.postgres
@pytest.mark.timeout(300)
def test_a_report_is_acknowledged_only_once_its_outcome_is_stored(orch_factory, pg_url):
    """The worker drops a report when the server acknowledges it, so an acknowledged
    outcome must be in the database: if the server is then killed, nobody has it else.

    The test holds two task rows locked in PostgreSQL to stop the server's commits at
    chosen moments: the commit of task A's outcome waits on A's row while B's report
    arrives (B's outcome goes in the next batch); A's lock is released, then that next
    batch waits on B's row. Only A may be acknowledged now. The server is SIGKILLed there,
    restarted, and the worker says hello again (well within ``worker_grace``) with the
    reports it still holds: both tasks must end succeeded after one attempt each (neither
    lost nor run again)."""
    from sqlalchemy import create_engine, text

    server = orch_factory(workers=0, db_url=pg_url).start()
    api = server.api()
    worker = ProtocolWorker(server, api.post("/workers/tokens", {"name": "protocol"})["token"])
    worker.connect()
    a, b = (api.post("/tasks", {"kind": "shell", "command": "true", "name": n})["id"] for n in "ab")
    assigned = {worker.recv("assign")["task_id"] for _ in range(2)}
    assert assigned == {a, b}

    db = create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    lock_a, lock_b = db.connect(), db.connect()
    try:

        def lock(conn: Any, task_id: str) -> int:
            conn.execute(text("BEGIN"))
            conn.execute(text("SELECT id FROM orch_tasks WHERE id = :id FOR UPDATE"), {"id": task_id})
            return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())

        def stored_state(task_id: str) -> str:
            with db.connect() as conn:  # sees what is committed, nothing else
                query = text("SELECT state FROM orch_tasks WHERE id = :id")
                return str(conn.execute(query, {"id": task_id}).scalar_one())

        def server_waits_on(pid: int) -> bool:
            with db.connect() as conn:
                query = text("SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))")
                return bool(conn.execute(query, {"pid": pid}).scalar_one())

        pid_a, pid_b = lock(lock_a, a), lock(lock_b, b)
        with server.events("task") as events:
            worker.finish(a)
            wait_until(lambda: server_waits_on(pid_a), 60, "the commit of A's outcome to wait on A's row")
            worker.finish(b)  # its outcome waits for the next batch
            events.wait(
                lambda e, _: (
                    e["type"] == "task" and e["task"]["id"] == b and e["task"]["state"] == "succeeded"
                )
            )
        lock_a.execute(text("ROLLBACK"))  # A's batch commits; the next one waits on B's row
        wait_until(lambda: server_waits_on(pid_b), 60, "the commit of B's outcome to wait on B's row")
        worker.recv("ack")
        acked = [key for items in worker.acks for key in items]
        assert (a, 1) in acked
        unstored = [key for key in acked if stored_state(key[0]) != "succeeded"]
        assert not unstored, f"acknowledged but not stored: {unstored}"

        server.stop(kill=True)
    finally:
        lock_a.close()
        lock_b.close()
        db.dispose()
    server.start(timeout=120)
    worker.connect()  # hello with the reports it still holds, then sends them again
    for task_id in (a, b):
        done = server.api().get(f"/tasks/{task_id}/wait", timeout=60)
        attempts = server.api().get(f"/tasks/{task_id}")["attempts"]
        assert (done["state"], len(attempts)) == ("succeeded", 1), (done, attempts)
