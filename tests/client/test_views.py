"""``client.workers()`` and ``Future.info()`` read as sizes, local times and durations, while
their items stay the API's values (bytes, epoch seconds), so code indexing them works as before."""

from __future__ import annotations

import json
import pickle
import re
import time
from datetime import datetime

from jupyter_orch.client.views import (
    TaskInfo,
    WorkerInfo,
    Workers,
    human_ago,
    human_duration,
    human_size,
    human_time,
)

GiB = 1024**3
NOW = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC


def test_sizes_durations_and_times_read_as_words():
    assert [human_size(n) for n in (None, 0, 512, 1536, int(1.5 * GiB), 80 * GiB, 300 * GiB)] == [
        "-", "-", "512 B", "1.5 KiB", "1.5 GiB", "80.0 GiB", "300 GiB",
    ]  # fmt: skip
    assert [human_duration(s) for s in (None, 0.0002, 0.25, 3.21, 42, 65, 120, 7260, 3 * 86400)] == [
        "-", "under 1 ms", "250 ms", "3.2 s", "42 s", "1 min 5 s", "2 min", "2 h 1 min", "3 d",
    ]  # fmt: skip
    assert [human_ago(NOW - d, NOW) for d in (0.2, 42, 180, 7300, 86400, 3 * 86400)] == [
        "just now", "42 s ago", "3 min ago", "2 h ago", "1 day ago", "3 days ago",
    ]  # fmt: skip
    assert human_ago(NOW + 120, NOW) == "in 2 min" and human_ago(None) == "-"
    local = datetime.fromtimestamp(NOW - 180).isoformat(sep=" ", timespec="seconds")
    assert human_time(NOW - 180, NOW) == f"{local} (3 min ago)"  # local time, to the second
    assert human_time(None) == "-"


def worker_view() -> dict:
    """A worker as ``GET /workers`` gives it, connected 185 s ago, seen 2 s ago (now)."""
    return {
        "id": "w1",
        "name": "gpu-box",
        "provider": "static",
        "owner": None,
        "group": None,
        "state": "connected",
        "hostname": "node7",
        "labels": {"zone": "a"},
        "slots": 2,
        "slots_used": 1,
        "cpus": 16,
        "memory": 64 * GiB,
        "gpus": [
            {
                "index": 0,
                "uuid": "GPU-0",
                "model": "NVIDIA A100",
                "memory": 80 * GiB,
                "utilization": 35,
                "memory_used": 12 * GiB,
                "memory_total": 80 * GiB,
                "task_id": "t1",
            },
            {"index": 1, "uuid": "GPU-1", "model": "NVIDIA A100", "memory": 80 * GiB, "task_id": None},
        ],
        "running": ["t1"],
        "metrics": {"cpu_percent": 12.4, "memory_used": int(3.1 * GiB), "memory_total": 64 * GiB},
        "connected_at": time.time() - 185,
        "last_seen": time.time() - 2,
        "disconnected_at": None,
    }


def test_a_worker_reads_as_sizes_and_times_and_stays_the_apis_dict():
    view = worker_view()
    w = WorkerInfo(view)
    assert w == view and isinstance(w, dict)  # every item unchanged
    assert w["memory"] == 64 * GiB and w["gpus"][0]["memory_used"] == 12 * GiB
    assert json.loads(json.dumps(w)) == json.loads(json.dumps(view))
    assert pickle.loads(pickle.dumps(w)) == w
    text = repr(w)
    assert text.splitlines()[0] == "Worker gpu-box (w1) · connected · static · node7"
    assert "64.0 GiB" in text and str(64 * GiB) not in text
    assert "NVIDIA A100 · 80.0 GiB · util 35% · mem 12.0 GiB of 80.0 GiB · task t1" in text
    assert "NVIDIA A100 · 80.0 GiB · free" in text
    assert "CPU 12% · RAM 3.1 GiB of 64.0 GiB" in text
    assert "(3 min ago)" in text and "2 s ago" in text
    assert str(int(view["connected_at"])) not in text  # no epoch seconds
    html = w._repr_html_()
    assert "<table>" in html and "64.0 GiB" in html and "&lt;" not in html.replace("<", "")


def test_the_workers_list_is_a_table_of_them():
    view = worker_view()
    ws = Workers([view, {**view, "id": "w2", "name": "cpu-box", "gpus": [], "state": "disconnected"}])
    assert isinstance(ws, list) and len(ws) == 2 and all(isinstance(w, WorkerInfo) for w in ws)
    assert ws == [view, {**view, "id": "w2", "name": "cpu-box", "gpus": [], "state": "disconnected"}]
    assert sum(w["slots"] for w in ws) == 4  # as the examples use it
    lines = repr(ws).splitlines()
    assert lines[0] == "2 workers"
    assert lines[1].split() == ["name", "state", "slots", "CPUs", "memory", "GPUs", "load", "last", "seen"]
    assert (
        lines[2].startswith("gpu-box")
        and "64.0 GiB" in lines[2]
        and "0: NVIDIA A100, 1: NVIDIA A100" in lines[2]
    )
    assert lines[3].startswith("cpu-box") and "disconnected" in lines[3]
    assert ws._repr_html_().count("<tr>") == 3
    assert repr(Workers([])).startswith("no workers") and Workers([]) == []


def test_a_task_reads_as_times_durations_and_sizes():
    now = time.time()
    view = {
        "id": "t1", "name": "train", "kind": "function", "owner": "ada", "state": "succeeded",
        "resources": {"cpus": 4, "memory": 8 * GiB, "gpus": 1, "gpu_type": "A100", "labels": {}},
        "reason": None, "error": None, "error_kind": None, "depends": [],
        "created_at": now - 400, "started_at": now - 390, "ended_at": now - 325, "duration": 65.0,
        "worker_id": "w1", "gpus": [0], "payload_size": 1536, "result_size": int(2.5 * 1024**2),
        "retry_at": None,
        "attempts": [
            {"number": 1, "state": "failed", "worker_id": "w1", "started_at": now - 395, "ended_at": now - 393,
             "exit_code": 1, "error": "boom"},
            {"number": 2, "state": "succeeded", "worker_id": "w1", "started_at": now - 390, "ended_at": now - 325,
             "exit_code": 0, "error": None},
        ],
    }  # fmt: skip
    info = TaskInfo(view)
    assert info == view and info["attempts"][1]["ended_at"] == now - 325
    text = repr(info)
    assert text.splitlines()[0] == "Task train (t1) · succeeded · function · owner ada"
    assert "1 GPU (A100), 4 CPUs, 8.0 GiB memory" in text
    assert shown(text, "took") == "1 min 5 s"
    assert "(6 min ago)" in text and "(5 min ago)" in text
    assert shown(text, "attempt 1") == "failed · on w1 · 2.0 s · exit 1 · boom"
    assert shown(text, "attempt 2") == "succeeded · on w1 · 1 min 5 s · exit 0"
    assert "payload 1.5 KiB · result 2.5 MiB" in text and "GPUs 0" in text
    assert "<table>" in info._repr_html_() and "1 min 5 s" in info._repr_html_()


def shown(text, label):
    """What the line labelled ``label`` says."""
    found = re.search(rf"^  {re.escape(label)} +(.*)$", text, re.M)
    assert found, text
    return found.group(1)


def test_a_real_servers_workers_and_task_info(orch):
    client = orch.client()
    workers = client.workers()
    raw = orch.api().get("/workers")["workers"]
    assert isinstance(workers, Workers) and [w["id"] for w in workers] == [w["id"] for w in raw]
    assert all(isinstance(w["memory"], int) and w["memory"] > 0 for w in workers)  # bytes, as before
    shown = repr(workers)
    assert "GiB" in shown and all(w["name"] in shown for w in raw)
    fut = client.submit(sum, [1, 2], name="adder", cpus=0.5)
    assert fut.result(60) == 3
    info = fut.info()
    assert isinstance(info, TaskInfo) and info == orch.api().get(f"/tasks/{fut.id}")
    assert isinstance(info["created_at"], float) and info["name"] == "adder" and fut.status == "succeeded"
    text = repr(info)
    assert text.startswith(f"Task adder ({fut.id}) · succeeded") and "0.5 CPU" in text
    created = datetime.fromtimestamp(info["created_at"]).isoformat(sep=" ", timespec="seconds")
    assert created in text and str(info["created_at"]) not in text
