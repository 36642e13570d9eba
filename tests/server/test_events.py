"""The WebSocket streams: task events in order, and a task's log followed live."""

from __future__ import annotations

import json


def test_events_show_every_state_in_order(orch):
    ws = orch.ws("/events?types=task")
    hello = json.loads(ws.recv())
    assert hello["type"] == "hello" and len(hello["workers"]) == 2
    task = orch.api().post("/tasks", {"kind": "shell", "command": "echo hi"})
    states = []
    while not states or states[-1] != "succeeded":
        event = json.loads(ws.recv())
        if event["type"] == "task" and event["task"]["id"] == task["id"]:
            states.append(event["task"]["state"])
    ws.close()
    assert states == ["pending", "scheduled", "running", "succeeded"]


def test_log_follow_streams_lines_while_the_task_runs(orch, tmp_path):
    gate = tmp_path / "gate"
    command = f"echo first; while [ ! -e {gate} ]; do sleep 0.05; done; echo second >&2"
    task = orch.api().post("/tasks", {"kind": "shell", "command": command})
    ws = orch.ws(f"/tasks/{task['id']}/logs/follow")
    seen = []
    while "first" not in seen:
        msg = json.loads(ws.recv())
        if msg["type"] == "lines":
            seen += [line["text"].strip() for line in msg["lines"]]
    assert seen == ["first"]  # arrived live, before the task could finish
    gate.touch()
    end = None
    while end is None:
        msg = json.loads(ws.recv())
        if msg["type"] == "lines":
            seen += [(line["stream"], line["text"].strip()) for line in msg["lines"]]
        elif msg["type"] == "end":
            end = msg["task"]
    assert seen == ["first", ("stderr", "second")]
    assert end["state"] == "succeeded"


def test_log_follow_of_a_finished_task_replays_and_ends(orch):
    task = orch.api().post("/tasks", {"kind": "shell", "command": "printf 'a\\nb\\n'"})
    orch.api().get(f"/tasks/{task['id']}/wait", timeout=30)
    ws = orch.ws(f"/tasks/{task['id']}/logs/follow")
    state = json.loads(ws.recv())  # where the task stands, first
    assert state["type"] == "state" and state["task"]["state"] == "succeeded"
    first = json.loads(ws.recv())
    assert [line["text"].strip() for line in first["lines"]] == ["a", "b"]
    assert json.loads(ws.recv())["type"] == "end"


def test_log_follow_opened_as_a_quick_task_ends_still_shows_its_lines(orch):
    # the task ends while the follower reads the log so far: lines and end come anyway
    # (a race: each round has a chance of opening the stream in that window)
    for round_ in range(25):
        task = orch.api().post("/tasks", {"kind": "shell", "command": f"echo round {round_}"})
        ws = orch.ws(f"/tasks/{task['id']}/logs/follow")
        texts, end = [], None
        while end is None:
            msg = json.loads(ws.recv())
            if msg["type"] == "lines":
                texts += [line["text"].strip() for line in msg["lines"]]
            elif msg["type"] == "end":
                end = msg["task"]
        ws.close()
        assert (texts, end["state"]) == ([f"round {round_}"], "succeeded")


def test_worker_events_say_which_task_holds_a_slot_as_it_starts_and_ends(orch_factory, tmp_path):
    """Not only at heartbeats (here a minute apart): the sidebar's workers view follows
    slots as tasks come and go."""
    orch = orch_factory(workers=1, args=["--OrchApp.heartbeat_interval=60"]).start()
    orch.wait_workers(1)
    gate = tmp_path / "slot-gate"
    ws = orch.ws("/events?types=worker")
    ws.settimeout(20)
    json.loads(ws.recv())  # hello
    task = orch.api().post(
        "/tasks", {"kind": "shell", "command": f"while [ ! -e {gate} ]; do sleep 0.05; done"}
    )

    def worker_event_where(check):
        while True:
            event = json.loads(ws.recv())
            if event["type"] == "worker" and check(event["worker"]):
                return event["worker"]

    held = worker_event_where(lambda w: task["id"] in w["running"])
    assert held["slots_used"] == 1
    gate.touch()
    freed = worker_event_where(lambda w: w["id"] == held["id"] and task["id"] not in w["running"])
    assert freed["slots_used"] == 0
    ws.close()
