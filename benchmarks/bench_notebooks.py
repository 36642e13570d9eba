"""A trivial notebook step (2 cells, one parameter): jupyter-orch on a warm local worker
(submit -> executed notebook stored and returned) beside the papermill CLI and papermill's
Python API in one process (each starts a kernel).

    /tmp/benchvenv/bin/python benchmarks/bench_notebooks.py [REPS]

Writes results/notebooks.json. (The workflow benchmarks of issue 4, pipelines and 1,000-step
DAGs, arrive with workflow execution.)
"""

import json
import os
import subprocess
import sys
import tempfile
import time

import nbformat
from bench_orch import OrchAdapter

import common

HERE = os.path.dirname(os.path.abspath(__file__))


def trivial_notebook(path):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("x = 1")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("y = x * 2\nprint(y)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def timed(fn, reps, warm=1):
    for _ in range(warm):
        fn()
    samples = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return common.stats_ms(samples)


def main(reps=20):
    tmp = tempfile.mkdtemp(prefix="bench-nb-")
    src, out = os.path.join(tmp, "in.ipynb"), os.path.join(tmp, "out.ipynb")
    trivial_notebook(src)
    results = {
        "versions": common.pkg_versions("jupyter-orch", "papermill", "nbclient", "ipykernel"),
        "reps": reps,
    }

    orch = OrchAdapter()
    orch.start()
    try:
        client = orch.client

        def orch_step():
            result = client.run_notebook(src, {"x": 3}).result(120)
            assert "6" in result.notebook.cells[-1].outputs[0]["text"]

        results["orch_back_to_back"] = timed(orch_step, reps, warm=2)

        def orch_step_after_pause():
            time.sleep(1.5)  # not timed: the spare kernel of the previous run has started
            t = time.perf_counter()
            orch_step()
            return time.perf_counter() - t

        samples = [orch_step_after_pause() for _ in range(max(5, reps // 2))]
        results["orch_warm_kernel"] = common.stats_ms(samples)
    finally:
        orch.stop()

    def papermill_cli():
        subprocess.run(
            [
                os.path.join(os.path.dirname(sys.executable), "papermill"),
                src,
                out,
                "-p",
                "x",
                "3",
                "--no-progress-bar",
            ],
            check=True,
            capture_output=True,
        )

    results["papermill_cli"] = timed(papermill_cli, max(3, reps // 4))

    import papermill

    results["papermill_api"] = timed(
        lambda: papermill.execute_notebook(src, out, {"x": 3}, progress_bar=False), max(3, reps // 4)
    )

    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "notebooks.json"), "w") as f:
        json.dump(results, f, indent=2)
    print("| trivial notebook step | p50 ms | p90 ms |")
    print("|---|---|---|")
    for key in ("orch_warm_kernel", "orch_back_to_back", "papermill_cli", "papermill_api"):
        print(f"| {key} | {results[key]['p50_ms']:.0f} | {results[key]['p90_ms']:.0f} |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
