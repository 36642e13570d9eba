"""Adaptive search (issue 15's benchmark), run by hand: 100 trials of a training-like curve
with ASHA early stopping, against the same 100 trials run to the end (``scheduler="random"``:
the same sampled parameters, nothing stopped), on one server in one run.

Each trial is a task that reports ``loss = a + b / (step + 1)`` for ``--steps`` steps,
``--step-ms`` apart (a stand-in for an epoch). Measured: wall time from ``client.search``
to the search's end, trial-steps run, and whether ASHA found the trial that the full run
ranks best (or how far down it is).

    python benchmarks/bench_search.py                 # writes results/search.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def curve(a: float, b: float, steps: int = 27, step_ms: float = 50) -> float:
    import time

    import jupyter_orch

    loss = a + b
    for step in range(steps):
        loss = a + b / (step + 1)
        jupyter_orch.report(step=step, loss=loss)
        time.sleep(step_ms / 1000)
    return loss


def run(client: Any, scheduler: str, args: argparse.Namespace) -> dict[str, Any]:
    from jupyter_orch.core.space import uniform

    started = time.perf_counter()
    search = client.search(
        curve,
        {"a": uniform(0, 1), "b": uniform(0, 4)},
        metric="loss",
        scheduler=scheduler,
        max_t=args.steps,
        max_trials=args.trials,
        max_concurrent=args.concurrent,
        seed=7,
        steps=args.steps,
        step_ms=args.step_ms,
        name=f"bench-{scheduler}",
    )
    best = search.result(timeout=3600)
    wall = time.perf_counter() - started
    trials = search.trials()
    steps = sum((t["step"] if t["step"] is not None else -1) + 1 for t in trials)
    return {
        "scheduler": scheduler,
        "wall_s": round(wall, 1),
        "trial_steps": steps,
        "stopped": sum(t["state"] == "stopped" for t in trials),
        "best": {"number": best["number"], "value": best["value"], "params": best["params"]},
        "trials": {t["number"]: t["last"] for t in trials},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--steps", type=int, default=27)
    parser.add_argument("--step-ms", type=float, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrent", type=int, default=2)
    args = parser.parse_args()
    import cloudpickle

    from support.orchserver import OrchServer

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    with tempfile.TemporaryDirectory() as tmp:
        server = OrchServer(Path(tmp), workers=args.workers)
        try:
            server.start()
            server.wait_workers()
            client = server.client()
            full = run(client, "random", args)
            asha = run(client, "asha", args)
        finally:
            server.cleanup()
    ranking = sorted(
        full["trials"], key=lambda n: full["trials"][n]
    )  # final loss of every trial, run to the end
    out = {
        "trials": args.trials,
        "steps": args.steps,
        "step_ms": args.step_ms,
        "concurrent": args.concurrent,
        "full": {k: v for k, v in full.items() if k != "trials"},
        "asha": {k: v for k, v in asha.items() if k != "trials"},
        "wall_ratio": round(asha["wall_s"] / full["wall_s"], 3),
        "steps_ratio": round(asha["trial_steps"] / full["trial_steps"], 3),
        "asha_best_rank_in_full": ranking.index(asha["best"]["number"]),
    }
    print(json.dumps(out, indent=2))
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    (results / "search.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
