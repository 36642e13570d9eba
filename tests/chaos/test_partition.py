"""A worker cut off from the server for 30 s while its tasks run: they finish there and are
reported once the path is back, with the server's default ``worker_grace`` (60 s).

The worker is started by hand (``jupyter orch worker --server <proxy>``) and reaches the
server only through :class:`~support.proxy.CuttableProxy`; the test's client and event
stream talk to the server directly, so the server stays reachable for the user throughout.
"""

from __future__ import annotations

import collections
import time

import pytest

from support.proxy import CuttableProxy

CUT_SECONDS = 30.0  # how long the path stays broken: half the default worker_grace
TICKS, TICK = 12, 0.5  # each task prints a line every 0.5 s for ~6 s


@pytest.mark.timeout(300)
@pytest.mark.parametrize("how", ["blackhole", "refuse"])
def test_worker_cut_off_for_30s_finishes_its_tasks_and_reports_them(orch_factory, ledger, how):
    """What this proves, for a network partition (``blackhole``: nothing forwarded, nothing
    closed, new connections hang) and for a refused path (connections dropped, new ones
    refused): four tasks (2 shell, 2 function) run ~6 s on a worker with 4 slots; the path
    breaks while they run and stays broken at least 30 s, until the server has marked the
    worker disconnected and every task has recorded its completion on disk (they end on
    the worker during the cut). Meanwhile the server, reachable directly, still shows the
    tasks running. After the heal, with no setting changed from its default:

    - the same worker process is connected again under the same worker id;
    - every task is succeeded after one attempt, with its value, and its whole log
      (including the lines printed during the cut, none reported lost);
    - no task ran twice: each body started and completed exactly once.
    """
    server = orch_factory(workers=0).start()  # default worker_grace
    api = server.api()
    token = api.post("/workers/tokens", {"name": "behind-proxy"})["token"]
    proxy = CuttableProxy(server.port)
    worker = server.start_worker(token, "--name", "partitioned", "--slots", "4", "--cpus", "4", url=proxy.url)
    try:
        [worker_id] = server.wait_workers(1, timeout=120)
        client = server.client()
        futures = [
            client.submit_shell(ledger.shell(i, ticks=TICKS, tick=TICK), name=f"sh-{i}")
            if i % 2
            else client.submit(*ledger.call(i, ticks=TICKS, tick=TICK), name=f"fn-{i}")
            for i in range(4)
        ]
        for fut in futures:
            assert fut.accepted(60)
            server.wait_log(fut.id, "tick 1", timeout=120)

        with server.events("worker") as events:
            cut_at = time.monotonic()
            with proxy.partitioned(how):
                # the server gives up on the connection (ping timeout, or the dropped socket)
                events.wait(lambda e, ws: ws[worker_id]["state"] == "disconnected", timeout=120)
                server.wait_for_log("partitioned disconnected; it has 60 s to come back")  # the default
                # the tasks run on and end on the worker, cut off
                ledger.wait_completed([f.id for f in futures], timeout=120)
                # the user still sees them running: the worker has worker_grace to come back
                assert [api.get(f"/tasks/{f.id}")["state"] for f in futures] == ["running"] * 4
                assert api.get(f"/workers/{worker_id}")["state"] == "disconnected"
                # the cut's length is what is tested here, so it is a time, not an event
                time.sleep(max(0.0, CUT_SECONDS - (time.monotonic() - cut_at)))
            events.wait(lambda e, ws: ws[worker_id]["state"] == "connected", timeout=120)

        for fut in futures:
            assert fut.wait(120), f"{fut.name} was not reported after the cut"
        assert [f.result(0) for f in futures] == [0, None, 4, None]
        for fut in futures:
            detail = api.get(f"/tasks/{fut.id}")
            assert detail["state"] == "succeeded"
            assert [a["state"] for a in detail["attempts"]] == ["succeeded"], detail["attempts"]
            assert detail["worker_id"] == worker_id
            lines = [line["text"].strip() for line in api.get(f"/tasks/{fut.id}/logs")["lines"]]
            kind, index = fut.name.split("-")
            assert lines == [f"{kind} {index} started"] + [f"tick {i}" for i in range(1, TICKS + 1)], lines

        ids = {f.id for f in futures}
        assert collections.Counter(i for i, _ in ledger.starts()) == dict.fromkeys(ids, 1)
        assert collections.Counter(i for i, _ in ledger.completions()) == dict.fromkeys(ids, 1)
        # the same process came back, by itself, as the same worker
        assert worker.proc.poll() is None
        worker.wait_for_log("reconnected to", timeout=30)
        assert [(w["id"], w["state"]) for w in client.workers()] == [(worker_id, "connected")]
    finally:
        worker.stop()
        proxy.close()
