"""Figures for docs/reliability.md (issue 12): how fast the server gets over each fault.
The chaos tests (tests/chaos) prove the outcomes; this measures the times, on a real
``jupyter orch serve`` with 2 local workers and SQLite:

- ``kill -9`` of a local worker running a task: time from the kill to the retry running on
  the worker that replaces it (before issue 12 it waited out the 60 s ``worker_grace``);
- a submit while another process holds the SQLite file locked: time to its 503;
- a "billion laughs" workflow (14 lines, 10^9 values if expanded): time to its 400 and the
  server's RSS before and after;
- SIGKILL of the server with 1,000 quick tasks submitted: time from the restart to the last
  task done, and how many tasks had a second attempt.

    .venv/bin/python benchmarks/bench_faults.py

Writes results/faults.json and prints it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import psutil
from bench_orch import OrchAdapter

HERE = os.path.dirname(os.path.abspath(__file__))
LAUGHS = "name: lol\ntasks: [{name: x, shell: echo}]\n" + "\n".join(
    f"{c}: &{c} [{','.join([f'*{p}'] * 9) if p else ','.join(['lol'] * 9)}]"
    for p, c in zip(["", *"abcdefgh"], "abcdefghi", strict=True)
)
LOCKER = (
    "import sqlite3,sys;c=sqlite3.connect(sys.argv[1],isolation_level=None);"
    "c.execute('BEGIN EXCLUSIVE');print('locked',flush=True);sys.stdin.read()"
)


class Server(OrchAdapter):
    server_args = [
        "--LocalProvider.workers=2",
        "--LocalProvider.slots_per_worker=2",
        "--OrchApp.worker_grace=600",
    ]


def request(server: Server, method: str, path: str, body: object = None) -> tuple[int, object]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(server.client.api.url + "/orch/api/v1" + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {server.client.api.token}")
    try:
        with urllib.request.urlopen(req, timeout=300) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def wait_state(server: Server, task_id: str, states: set[str], timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        _, task = request(server, "GET", f"/tasks/{task_id}")
        if task["state"] in states or time.monotonic() > deadline:  # type: ignore[index]
            return task  # type: ignore[return-value]
        time.sleep(0.01)


def worker_kill(server: Server, tmp: str) -> dict:
    marker = os.path.join(tmp, "first")
    command = f"if [ -e {marker} ]; then echo second; else touch {marker}; exec sleep 600; fi"
    _, task = request(
        server, "POST", "/tasks", {"kind": "shell", "command": command, "retries": 1, "retry_backoff": 0.01}
    )
    wait_state(server, task["id"], {"running"})  # type: ignore[index]
    info = json.load(open(os.path.join(server.tmp.name, "data", "orch", "local-workers.json")))
    _, detail = request(server, "GET", f"/tasks/{task['id']}")  # type: ignore[index]
    pid = next(e["pid"] for e in info if e["worker_id"] == detail["worker_id"])  # type: ignore[index]
    start = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    while True:
        _, detail = request(server, "GET", f"/tasks/{task['id']}")  # type: ignore[index]
        if detail["attempt"] == 2 and detail["state"] in ("running", "succeeded"):  # type: ignore[index]
            break
        time.sleep(0.01)
    return {"kill_to_retry_running_s": round(time.monotonic() - start, 2), "worker_grace_s": 600}


def sqlite_locked(server: Server) -> dict:
    db = os.path.join(server.tmp.name, "data", "orch", "orch.sqlite")
    locker = subprocess.Popen(
        [sys.executable, "-c", LOCKER, db], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
    try:
        start = time.monotonic()
        status, body = request(server, "POST", "/tasks", {"kind": "shell", "command": "true"})
        took = time.monotonic() - start
    finally:
        assert locker.stdin is not None
        locker.stdin.close()
        locker.wait()
    return {"status": status, "seconds_to_answer": round(took, 2), "message": body["message"]}  # type: ignore[index]


def billion_laughs(server: Server) -> dict:
    proc = psutil.Process(server.proc.pid)
    before = proc.memory_info().rss
    start = time.monotonic()
    status, body = request(server, "POST", "/workflows", {"source": LAUGHS, "filename": "lol.yaml"})
    took = time.monotonic() - start
    return {
        "status": status,
        "ms_to_answer": round(took * 1000, 1),
        "message": body["message"],  # type: ignore[index]
        "rss_mb_before": round(before / 2**20, 1),
        "rss_mb_after": round(proc.memory_info().rss / 2**20, 1),
    }


def server_kill(server: Server) -> dict:
    tasks = [{"kind": "shell", "command": "true", "retries": 1} for _ in range(1000)]
    _, body = request(server, "POST", "/tasks", {"tasks": tasks})
    ids = [t["id"] for t in body["tasks"]]  # type: ignore[index]
    time.sleep(0.5)  # some done, some running, most pending
    server.proc.kill()
    server.proc.wait()
    server.client.close()
    restart = time.monotonic()
    server.launch()
    while True:
        _, counts = request(server, "GET", "/info")
        if counts["counts"]["succeeded"] + counts["counts"]["failed"] >= len(ids) + 1:  # type: ignore[index]
            break
        time.sleep(0.1)
    took = time.monotonic() - restart
    _, listing = request(server, "GET", "/tasks?limit=1000&state=succeeded")
    twice = sum(1 for t in listing["tasks"] if t["attempt"] > 1)  # type: ignore[index]
    return {"tasks": len(ids), "restart_to_all_done_s": round(took, 1), "tasks_with_a_second_attempt": twice}


def main() -> None:
    server = Server()
    server.start()
    results = {}
    try:
        results["worker_kill"] = worker_kill(server, server.tmp.name)
        results["sqlite_locked"] = sqlite_locked(server)
        results["billion_laughs"] = billion_laughs(server)
        results["server_kill_1000"] = server_kill(server)
    finally:
        server.stop()
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "faults.json"), "w") as f:
        json.dump(results, f, indent=1)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
