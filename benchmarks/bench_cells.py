"""Notebook cells from a real kernel: ``%%orch run`` beside the same cell run locally and
through ipyparallel (``%%px`` on one engine; for the array, push / execute / pull, which is
what ``%%px`` needs to move variables).

    /tmp/benchvenv/bin/python benchmarks/bench_cells.py [REPS]

Each figure is the wall time of one ``execute_request`` as the notebook front end sees it
(kernel messaging included, the same for every variant), from a kernel started with
jupyter_client. Writes results/cells.json.
"""

import json
import os
import sys
import time

from bench_orch import OrchAdapter
from jupyter_client.manager import start_new_kernel

import common

HERE = os.path.dirname(os.path.abspath(__file__))


def timed(kc, code, reps, warm=3):
    for _ in range(warm):
        run(kc, code)
    samples = []
    for _ in range(reps):
        t = time.perf_counter()
        run(kc, code)
        samples.append(time.perf_counter() - t)
    return common.stats_ms(samples)


def run(kc, code):
    reply = kc.execute_interactive(code, timeout=600, output_hook=lambda msg: None)
    if reply["content"]["status"] != "ok":
        raise RuntimeError(f"cell failed: {code!r}: {reply['content'].get('evalue')}")


def main(reps=200):
    orch = OrchAdapter()
    orch.start()
    env = dict(os.environ, JUPYTER_ORCH_URL=orch.client.api.url, JUPYTER_ORCH_TOKEN=orch.client.api.token)
    km, kc = start_new_kernel(kernel_name="python3", env=env)
    results = {
        "versions": common.pkg_versions("jupyter-orch", "ipyparallel", "ipykernel", "numpy"),
        "reps": reps,
    }
    try:
        run(kc, "%load_ext jupyter_orch\nimport numpy as np\nimport ipyparallel as ipp")
        run(
            kc,
            "cluster = ipp.Cluster(n=1, log_level=40)\nrc = cluster.start_and_connect_sync()\nrc.wait_for_engines(1, timeout=120)\nengine = rc[0]",
        )
        results["noop"] = {
            "local": timed(kc, "x = 1", reps),
            "orch": timed(kc, "%%orch run\nx = 1", reps),
            "px": timed(kc, "%%px --targets 0\nx = 1", reps),
        }
        big_reps = max(5, reps // 20)
        run(kc, "a = np.ones(100 * 2**20 // 8)")  # 100 MB
        results["array_100mb"] = {
            "local": timed(kc, "b = a + 1", big_reps, warm=1),
            "orch": timed(kc, "%%orch run\nb = a + 1", big_reps, warm=1),
            "px_push_execute_pull": timed(
                kc,
                "engine.push({'a': a}, block=True)\nengine.execute('b = a + 1', block=True)\nb = engine.pull('b', block=True)",
                big_reps,
                warm=1,
            ),
        }
        run(kc, "assert b.shape == a.shape and float(b[0]) == 2.0")
        run(kc, "rc.close()\ncluster.stop_cluster_sync()")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
        orch.stop()
    noop, arr = results["noop"], results["array_100mb"]
    results["magic_overhead_p50_ms"] = round(noop["orch"]["p50_ms"] - noop["local"]["p50_ms"], 2)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "cells.json"), "w") as f:
        json.dump(results, f, indent=2)
    print("| cell | local p50 / p99 ms | %%orch run p50 / p99 ms | ipyparallel p50 / p99 ms |")
    print("|---|---|---|---|")
    for name, row, px in (("no-op", noop, "px"), ("100 MB array in and back", arr, "px_push_execute_pull")):
        cells = [f"{row[k]['p50_ms']:.1f} / {row[k]['p99_ms']:.1f}" for k in ("local", "orch", px)]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"magic overhead p50 (orch - local): {results['magic_overhead_p50_ms']} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
