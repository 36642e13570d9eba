"""Live metrics from a running task to a plot in the notebook (issue 15's benchmark), run by
hand beside Dask's structured events, the nearest thing a peer has.

One task reports ``--rate`` points a second for ``--seconds`` seconds (each point carries
the time it was reported). On the notebook's side a follower receives them and feeds the
same live plot (``jupyter_orch.kernel.metricplot.MetricPlot``: matplotlib, at most 10
redraws a second) for both systems, so the plotting costs the same. Measured per point:

* arrive: from the task's report to the follower's callback (transport only);
* plot: from the task's report to the end of the first redraw that shows it.

jupyter-orch: ``jupyter orch serve`` (SQLite, 1 local worker), the task calls
``jupyter_orch.report``; the follower is the SDK's log follower with ``on_metrics`` (what a
``%%orch run`` cell uses). Every point is also stored per attempt. Dask: a
``LocalCluster`` of 1 worker; the task ``get_worker().log_event("metrics", ...)``, the
client ``subscribe_topic("metrics", ...)`` (Pub/Sub is gone from recent Dask); nothing is
stored.

    python benchmarks/bench_metrics.py --system orch   # writes results/metrics-orch.json
    python benchmarks/bench_metrics.py --system dask   # needs dask[distributed]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def reporter(rate: float, seconds: float) -> int:
    """The task: ``rate`` reports a second, paced against the clock."""
    import time

    import jupyter_orch

    n = int(rate * seconds)
    start = time.perf_counter()
    for i in range(n):
        jupyter_orch.report(step=i, loss=1.0 / (i + 1))
        delay = start + (i + 1) / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    return n


def dask_reporter(rate: float, seconds: float) -> int:
    import time

    from distributed import get_worker

    worker = get_worker()
    n = int(rate * seconds)
    start = time.perf_counter()
    for i in range(n):
        worker.log_event("metrics", {"ts": time.time(), "step": i, "loss": 1.0 / (i + 1)})
        delay = start + (i + 1) / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    worker.log_event("metrics", {"end": True})
    return n


class Probe:
    """The notebook's side: arrival times, and the plot's redraws."""

    def __init__(self) -> None:
        from jupyter_orch.kernel.metricplot import MetricPlot, warm_up

        warm_up()  # as a cell that follows a task does

        self.plotted: list[tuple[float, float]] = []  # (report time, latency to the plot)
        self.arrived: list[tuple[float, float]] = []
        self._waiting: list[float] = []  # report times of points not drawn yet
        self.plot = MetricPlot(self._drawn, title="bench")

    def points(self, stamps: list[float], points: list[list[Any]], offset: int, attempt: int = 1) -> None:
        now = time.time()
        self.arrived.extend((ts, now - ts) for ts in stamps)
        self._waiting.extend(stamps)
        self.plot.add(attempt, offset, points)

    def _drawn(self, png: bytes) -> None:
        now = time.time()
        self.plotted.extend((ts, now - ts) for ts in self._waiting)
        self._waiting = []

    def finish(self) -> None:
        self.plot.finish()

    def results(self) -> dict[str, Any]:
        """Every point, and the steady state: points reported after the first second (the
        first point waits for the follower to connect and the first figure to be laid out)."""
        first = min(ts for ts, _ in self.arrived)
        steady = first + 1.0
        return {
            "draws": self.plot.draws,
            "arrive": summary([lat for _, lat in self.arrived]),
            "plot": summary([lat for _, lat in self.plotted]),
            "arrive_steady": summary([lat for ts, lat in self.arrived if ts >= steady]),
            "plot_steady": summary([lat for ts, lat in self.plotted if ts >= steady]),
        }


def summary(values: list[float]) -> dict[str, float]:
    ms = sorted(v * 1000 for v in values)
    if not ms:
        return {}
    q = statistics.quantiles(ms, n=100) if len(ms) > 1 else [ms[0]] * 99
    return {
        "n": len(ms),
        "p50": round(q[49], 1),
        "p90": round(q[89], 1),
        "p99": round(q[98], 1),
        "max": round(ms[-1], 1),
    }


def run_orch(rate: float, seconds: float) -> dict[str, Any]:
    from jupyter_orch.client.logstream import LogFollow

    from support.orchserver import OrchServer

    with tempfile.TemporaryDirectory() as tmp:
        server = OrchServer(Path(tmp), workers=1)
        try:
            server.start()
            server.wait_workers()
            client = server.client()
            probe = Probe()
            fut = client.submit(reporter, rate, seconds)
            fut.accepted()

            def on_metrics(attempt: int, offset: int, points: list[list[Any]]) -> None:
                probe.points([p[0] for p in points], points, offset, attempt)

            for _ in LogFollow(client.api, fut.id, on_metrics=on_metrics):
                probe.plot.maybe_draw()
            probe.finish()
            stored = client.api.get(f"/tasks/{fut.id}/metrics", max_points=10)["series"][0]["count"]
            return {"points": fut.result(60), "stored": stored, **probe.results()}
        finally:
            server.cleanup()


def run_dask(rate: float, seconds: float) -> dict[str, Any]:
    import queue

    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=1, threads_per_worker=1, processes=True) as cluster,
        Client(cluster) as client,
    ):
        probe = Probe()
        inbox: queue.Queue[Any] = queue.Queue()
        client.subscribe_topic(
            "metrics", lambda event: inbox.put(event[1])
        )  # (time, msg) on the client's loop
        fut = client.submit(dask_reporter, rate, seconds, pure=False)
        offset = 0
        while True:
            batch = [inbox.get()]
            while not inbox.empty():
                batch.append(inbox.get_nowait())
            points = [[m["ts"], m["step"], "training", {"loss": m["loss"]}] for m in batch if "end" not in m]
            if points:
                probe.points([p[0] for p in points], points, offset)
                offset += len(points)
            probe.plot.maybe_draw()
            if any("end" in m for m in batch):
                break
        probe.finish()
        return {"points": fut.result(), "stored": 0, **probe.results()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--system", choices=("orch", "dask"), required=True)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the tasks go by value to either system
    started = time.time()
    out = (run_orch if args.system == "orch" else run_dask)(args.rate, args.seconds)
    out.update(system=args.system, rate=args.rate, seconds=args.seconds, wall=round(time.time() - started, 1))
    print(json.dumps(out))
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    (results / f"metrics-{args.system}.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
