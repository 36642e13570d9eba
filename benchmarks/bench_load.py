"""A load figure (issue 12): many concurrent clients against one real server for minutes.

``--clients`` clients (default 50), spread over ``--procs`` processes so the load is not
limited by one Python process, each with its own keep-alive HTTP connection, in a closed
loop for ``--seconds`` (default 300): submit a function task with ``POST /tasks`` (the
answer comes after its commit), then wait for its end with ``GET /tasks/{id}/wait``.
Every task is persisted (SQLite in the data dir) before it is acknowledged. The server
runs 2 local workers of 4 slots each.

Measured: submit latency (POST answered) p50/p99, task latency (submit to seen ended)
p50/p99, tasks/s completed, errors by status, the server's RSS at start, every 30 s and
at the end (the server process alone; workers are separate processes).

    .venv/bin/python benchmarks/bench_load.py [--clients 50] [--seconds 300]

Writes results/load.json and prints a table.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import multiprocessing as mp
import os
import statistics
import sys
import time
from urllib.parse import urlparse

import psutil
from bench_orch import OrchAdapter

import common

HERE = os.path.dirname(os.path.abspath(__file__))


class LoadServer(OrchAdapter):
    server_args = ["--LocalProvider.workers=2", "--LocalProvider.slots_per_worker=4"]


def client_proc(url: str, token: str, payload: str, clients: int, until: float, out: mp.Queue) -> None:
    import threading

    parsed = urlparse(url)
    body = json.dumps({"kind": "function", "name": "load", "payload": payload}).encode()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    results: list[tuple[float, float, int]] = []  # (submit s, task s, status)
    lock = threading.Lock()

    def one() -> None:
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=120)
        mine = []
        while time.time() < until:
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/orch/api/v1/tasks", body, headers)
                resp = conn.getresponse()
                answer = json.loads(resp.read())
                t1 = time.perf_counter()
                if resp.status != 201:
                    mine.append((t1 - t0, 0.0, resp.status))
                    continue
                conn.request("GET", f"/orch/api/v1/tasks/{answer['id']}/wait?timeout=120", headers=headers)
                done = json.loads(conn.getresponse().read())
                t2 = time.perf_counter()
                mine.append((t1 - t0, t2 - t0, 201 if done["state"] == "succeeded" else 0))
            except (OSError, http.client.HTTPException, ValueError):
                mine.append((time.perf_counter() - t0, 0.0, -1))
                conn.close()
                conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=120)
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=one) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put(results)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--procs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=300)
    args = parser.parse_args()

    from jupyter_orch.serialization import dumps_call

    payload, _ = dumps_call(common.noop, (1,))
    server = LoadServer()
    server.workers = 2
    server.start()
    try:
        proc = psutil.Process(server.proc.pid)
        rss = [(0.0, proc.memory_info().rss)]
        url, token = server.client.api.url, server.client.api.token
        start = time.time()
        until = start + args.seconds
        queue: mp.Queue = mp.Queue()
        per = [args.clients // args.procs + (i < args.clients % args.procs) for i in range(args.procs)]
        procs = [
            mp.Process(
                target=client_proc, args=(url, token, base64.b64encode(payload).decode(), n, until, queue)
            )
            for n in per
        ]
        for p in procs:
            p.start()
        while time.time() < until:
            time.sleep(min(30.0, max(0.0, until - time.time())))
            rss.append((round(time.time() - start), proc.memory_info().rss))
        results = []
        for _ in procs:
            results.extend(queue.get())
        for p in procs:
            p.join()
        elapsed = time.time() - start
        rss.append((round(elapsed), proc.memory_info().rss))
    finally:
        server.stop()

    ok = [r for r in results if r[2] == 201]
    errors: dict[str, int] = {}
    for r in results:
        if r[2] != 201:
            errors[str(r[2])] = errors.get(str(r[2]), 0) + 1
    submit = [r[0] * 1000 for r in ok]
    task = [r[1] * 1000 for r in ok]
    record = {
        "clients": args.clients,
        "procs": args.procs,
        "seconds": round(elapsed, 1),
        "tasks": len(ok),
        "tasks_per_s": round(len(ok) / elapsed, 1),
        "errors": errors,
        "submit_ms": {
            "p50": round(pct(submit, 0.5), 1),
            "p99": round(pct(submit, 0.99), 1),
            "mean": round(statistics.fmean(submit), 1) if submit else None,
        },  # fmt: skip
        "task_ms": {"p50": round(pct(task, 0.5), 1), "p99": round(pct(task, 0.99), 1)},
        "server_rss_mb": [(t, round(b / 2**20, 1)) for t, b in rss],
        "versions": server.versions(),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
    }
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "load.json"), "w") as f:
        json.dump(record, f, indent=1)
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
