"""The local provider's workers live and die with their server (issue 12, item 6), with
real ``jupyter orch serve`` processes and real worker processes:

- a server that stops normally stops its workers, their executors and their tasks'
  processes, and removes ``server.json`` and ``local-workers.json``;
- the workers of a server that was SIGKILLed (and not restarted) stop themselves after
  ``LocalProvider.orphan_timeout``, tasks included: nothing is left behind;
- a server restarted on another port after a SIGKILL adopts the workers, which follow it
  through ``server.json``: the running task finishes, once;
- adopted workers that do not reconnect within ``LocalProvider.adopt_grace`` are stopped
  (SIGTERM, then SIGKILL) and replaced; their tasks are retried, new ones run.

The SIGKILL-and-restart-on-the-same-port case (workers adopted, the running task
re-attached) is tests/engine/test_recovery.py::test_server_killed_mid_run_loses_nothing.
Every wait is on an event: a log line, a task event, a process exit.
"""

from __future__ import annotations

import os
import signal

import pytest

from support.orchserver import free_port, tagged_pids, wait_gone


def gated(tmp_path, name):
    """A shell command that says it started, then waits for the test to open its gate."""
    gate = tmp_path / f"{name}.go"
    return gate, f"echo started; while [ ! -e {gate} ]; do sleep 0.05; done; echo finished"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_server_that_stops_normally_takes_its_workers_tasks_and_files_with_it(orch_factory, tmp_path, sig):
    """SIGTERM, or SIGINT to a server without a terminal (JupyterHub stops single-user
    servers with SIGINT first): before, SIGINT ended the loop at once and no cleanup ran."""
    server = orch_factory(args=["--OrchApp.worker_grace=600", "--LocalProvider.stop_timeout=1"]).start()
    server.wait_workers()
    api = server.api()
    _, command = gated(tmp_path, "never")
    task = api.post("/tasks", {"kind": "shell", "command": command})
    server.wait_log(task["id"], "started")
    everything = tagged_pids(server.tag)  # the server, 2 workers, their executors, the task
    assert len(everything) >= 6, everything

    server.proc.send_signal(sig)
    assert server.proc.wait(60) == 0
    server.wait_for_log("Shutting down")  # the graceful path, extensions' stop included
    assert wait_gone(everything) == []
    assert not (server.data_dir / "server.json").exists()
    assert not (server.data_dir / "local-workers.json").exists()

    # its task ended with the server (not left to wait out the 600 s worker grace)
    server.start()
    done = server.api().get(f"/tasks/{task['id']}/wait", timeout=60)
    assert done["state"] == "failed" and done["error_kind"] == "worker_lost"
    assert "the server stopped, and its local workers with it" in done["error"]


def test_the_workers_of_a_killed_server_stop_after_the_orphan_timeout(orch_factory, tmp_path):
    server = orch_factory(args=["--LocalProvider.orphan_timeout=2"]).start()
    server.wait_workers()
    _, command = gated(tmp_path, "never")
    task = server.api().post("/tasks", {"kind": "shell", "command": command})
    server.wait_log(task["id"], "started")
    everything = tagged_pids(server.tag)

    server.stop(kill=True)  # nothing of the server's shutdown runs
    # the workers' own log lines (they share the server's output pipe)
    server.wait_for_log("no server came back within 2 s", timeout=90)
    assert wait_gone(everything) == []
    assert tagged_pids(server.tag) == []


def test_a_server_restarted_on_another_port_adopts_its_workers_which_follow_it(orch_factory, tmp_path):
    server = orch_factory(args=["--OrchApp.worker_grace=600"]).start()
    server.wait_workers()
    client = server.client()
    gate, command = gated(tmp_path, "run")
    running = client.submit_shell(command)
    assert running.accepted()
    server.wait_log(running.id, "started")
    workers = server.local_worker_pids()

    server.stop(kill=True)
    old_port, server.port = server.port, free_port()
    server.start()
    assert server.url.endswith(f":{server.port}") and server.port != old_port
    connected = server.wait_workers(2)
    assert "adopted 2 local worker(s)" in server.log_text()
    assert {w for w, info in connected.items() if info["state"] == "connected"} == set(workers)
    server.wait_for_log(f"the server is now at http://127.0.0.1:{server.port}")

    gate.touch()
    api = server.api()
    done = api.get(f"/tasks/{running.id}/wait", timeout=60)
    assert done["state"] == "succeeded"
    assert len(api.get(f"/tasks/{running.id}")["attempts"]) == 1  # re-attached, not run again
    assert server.client().submit_shell("echo after").result(60) is None


def test_adopted_workers_that_never_reconnect_are_stopped_and_replaced(orch_factory, tmp_path):
    server = orch_factory(
        args=[
            "--OrchApp.worker_grace=600",
            "--LocalProvider.adopt_grace=3",
            "--LocalProvider.stop_timeout=1",
            "--LocalProvider.restart_delay=0.2",
        ]
    ).start()
    server.wait_workers()
    api = server.api()
    marker = tmp_path / "first-attempt"
    command = f"if [ -e {marker} ]; then echo second attempt; else touch {marker}; echo first attempt; sleep 600; fi"
    task = api.post("/tasks", {"kind": "shell", "command": command, "retries": 1, "retry_backoff": 0.1})
    server.wait_log(task["id"], "first attempt")
    old = server.local_worker_pids()
    for pid in old.values():  # alive, but they will never reconnect (nor answer SIGTERM)
        os.kill(pid, signal.SIGSTOP)

    server.stop(kill=True)
    server.port = free_port()
    server.start()
    assert "adopted 2 local worker(s)" in server.log_text()
    server.wait_for_log("did not reconnect within 3 s", timeout=60)
    assert wait_gone(old.values()) == []  # SIGKILLed: a stopped process ignores SIGTERM

    done = server.api().get(f"/tasks/{task['id']}/wait", timeout=90)
    assert done["state"] == "succeeded"
    first, second = server.api().get(f"/tasks/{task['id']}")["attempts"]
    assert first["state"] == "lost" and first["worker_id"] in old
    assert "did not reconnect within 3 s after the server restarted" in first["error"]
    assert second["state"] == "succeeded" and second["worker_id"] not in old
    connected = server.wait_workers(2)
    assert not set(old) & {w for w, info in connected.items() if info["state"] == "connected"}
    assert server.client().submit_shell("echo after the restart").result(60) is None
