"""The orphan watchdog of local workers (``--orphan-timeout``, ``--parent-pid``), on its own
with a clock the test moves: a worker stops only once it has had no server for the whole
timeout *and* the server that started it is gone. The real-process version (a SIGKILLed
server's workers exit) is in test_local_provider.py."""

from __future__ import annotations

import os

from jupyter_orch.worker.watchdog import OrphanWatchdog


class Worker:
    def __init__(self) -> None:
        self.connected = False
        self.stopped: list[str] = []


def watchdog(worker: Worker, parent_pid: int) -> OrphanWatchdog:
    return OrphanWatchdog(30, lambda: worker.connected, worker.stopped.append, parent_pid)


def test_a_worker_whose_server_process_lives_never_stops_itself() -> None:
    worker = Worker()
    dog = watchdog(worker, os.getppid())  # its parent: alive
    assert not any(dog.check(now) for now in (0, 31, 3600, 86400))
    assert worker.stopped == []


def test_an_orphan_stops_after_the_timeout_without_a_server_and_a_connection_resets_it() -> None:
    worker = Worker()
    dog = watchdog(worker, os.getppid() + 10_000_000)  # not its parent (any more): it died
    assert not dog.check(100)  # the count starts
    assert not dog.check(129)
    worker.connected = True  # a server came back (a restarted one adopted it)
    assert not dog.check(131)
    worker.connected = False  # and went again: a new count
    assert not dog.check(140)
    assert not dog.check(169)
    assert dog.check(170)
    [why] = worker.stopped
    assert why.startswith("no server came back within 30 s after the one that started this worker")
    assert "--orphan-timeout" in why
