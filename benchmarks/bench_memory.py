"""Server memory after many finished tasks: start ``jupyter orch serve`` (2 local workers,
SQLite), run N no-op tasks through the client in waves, and report the server's RSS
before, during and after. Run by hand:

    python benchmarks/bench_memory.py [N]        # default 100000
"""

import json
import os
import sys
import time

import psutil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_orch import OrchAdapter

import common


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    wave = 5_000
    adapter = OrchAdapter()
    adapter.import_libs()
    adapter.start()
    pid = adapter.proc.pid
    try:
        start = rss_mb(pid)
        samples = []
        done = 0
        t0 = time.perf_counter()
        while done < n:
            size = min(wave, n - done)
            futures = [adapter.submit(common.noop, i) for i in range(size)]
            assert adapter.gather(futures)[-1] == size - 1
            done += size
            samples.append((done, round(rss_mb(pid), 1)))
            print(f"{done} tasks: server RSS {samples[-1][1]} MB", flush=True)
        wall = time.perf_counter() - t0
        record = {
            "workload": "memory",
            "tasks": n,
            "rss_start_mb": round(start, 1),
            "rss_end_mb": samples[-1][1],
            "rss_max_mb": max(s[1] for s in samples),
            "wall_s": round(wall, 1),
            "tasks_per_s": round(n / wall, 1),
            "samples": samples,
        }
        print(json.dumps(record))
    finally:
        adapter.stop()


if __name__ == "__main__":
    main()
