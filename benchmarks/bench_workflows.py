"""Workflows, side by side in one run (issue 4's benchmark):

1. a trivial notebook step (2 cells, one parameter): submit -> executed notebook stored;
2. the a -> b, a -> c pipeline of three such notebooks: orch as one workflow run, beside
   the papermill CLI run one after another (what Elyra's local runner does) and papermill's
   Python API in one process;
3. 1,000- and 10,000-step DAGs of no-op function steps (layers of 50, each step after two of
   the layer before), on 2 local workers of 1 slot: time from submit to the run's end and the
   server's memory, beside the same graph in Dask (LocalCluster, 2 workers x 1 thread) and
   Ray (2 CPUs).

    /tmp/benchvenv/bin/python benchmarks/bench_workflows.py [--steps 1000,10000] [--reps 5]

Writes results/workflows.json and prints a table.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import psutil
from bench_notebooks import timed, trivial_notebook
from bench_orch import OrchAdapter

import common

HERE = os.path.dirname(os.path.abspath(__file__))
WIDTH = 50


def noop_step(*_, **__):
    return None


def layered(n):
    """Step i's parents: two steps of the layer before (none for the first layer)."""
    deps = []
    for i in range(n):
        layer = i // WIDTH
        if layer == 0:
            deps.append([])
        else:
            base = (layer - 1) * WIDTH
            j = i % WIDTH
            deps.append(sorted({base + j, base + (j + 1) % WIDTH}))
    return deps


def dag_workflow(n):
    tasks = []
    for i, parents in enumerate(layered(n)):
        step = {"name": f"s{i}", "function": "benchsteps:noop"}
        if parents:
            step["depends"] = [f"s{p}" for p in parents]
        tasks.append(step)
    return {"name": f"dag-{n}", "tasks": tasks}


def pipeline_yaml(tmp):
    for name in ("a", "b", "c"):
        trivial_notebook(os.path.join(tmp, f"{name}.ipynb"))
    text = (
        "name: abc\n"
        "tasks:\n"
        "  - {name: a, notebook: a.ipynb, parameters: {x: 1}}\n"
        "  - {name: b, notebook: b.ipynb, depends: [a], parameters: {x: 2}}\n"
        "  - {name: c, notebook: c.ipynb, depends: [a], parameters: {x: 3}}\n"
    )
    path = os.path.join(tmp, "abc.yaml")
    with open(path, "w") as f:
        f.write(text)
    return path


def rss_mb(pid):
    return psutil.Process(pid).memory_info().rss / 2**20


def orch_part(tmp, reps, sizes, results):
    orch = OrchAdapter()
    orch.start()
    client = orch.client
    try:
        src = os.path.join(tmp, "a.ipynb")

        def step():
            client.run_notebook(src, {"x": 3}).result(120)

        def after_pause(fn):
            def run():
                time.sleep(1.5)  # not timed: spare kernels have started since the last run
                t = time.perf_counter()
                fn()
                return time.perf_counter() - t

            return run

        step()
        results["notebook_step"]["orch (warm kernel)"] = common.stats_ms(
            [after_pause(step)() for _ in range(reps)]
        )
        path = pipeline_yaml(tmp)

        def pipeline():
            final = client.submit_workflow(path).wait(120)
            assert final["state"] == "succeeded", final

        pipeline()
        results["pipeline"]["orch (warm kernels)"] = common.stats_ms(
            [after_pause(pipeline)() for _ in range(reps)]
        )
        results["pipeline"]["orch (back to back)"] = timed(pipeline, reps)

        with open(os.path.join(tmp, "benchsteps.py"), "w") as f:
            f.write("def noop(**_):\n    return None\n")
        for n in sizes:
            spec_path = os.path.join(tmp, f"dag-{n}.json")
            with open(spec_path, "w") as f:
                json.dump(dag_workflow(n), f)
            before = rss_mb(orch.proc.pid)
            t = time.perf_counter()
            run = client.submit_workflow(spec_path)
            accepted = time.perf_counter() - t
            final = run.wait(600)
            took = time.perf_counter() - t
            assert final["state"] == "succeeded", [s.get("error") for s in final["steps"] if s.get("error")][
                :3
            ]
            results["dag"][f"orch {n}"] = {
                "seconds": round(took, 3),
                "accepted_s": round(accepted, 3),
                "steps_per_s": round(n / took),
                "server_rss_mb_before": round(before, 1),
                "server_rss_mb_after": round(rss_mb(orch.proc.pid), 1),
            }
            print(results["dag"][f"orch {n}"], flush=True)
    finally:
        orch.stop()


def dask_part(sizes, results):
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            client.submit(noop_step).result()
            for n in sizes:
                deps = layered(n)
                graph = {}
                for i, parents in enumerate(deps):
                    graph[f"s{i}"] = (noop_step, *[f"s{p}" for p in parents])
                before = client.run_on_scheduler(lambda: psutil.Process().memory_info().rss / 2**20)
                t = time.perf_counter()
                futures = client.get(graph, [f"s{i}" for i in range(n)], sync=False)
                client.gather(futures)
                took = time.perf_counter() - t
                after = client.run_on_scheduler(lambda: psutil.Process().memory_info().rss / 2**20)
                results["dag"][f"dask {n}"] = {
                    "seconds": round(took, 3),
                    "steps_per_s": round(n / took),
                    "scheduler_rss_mb_before": round(before, 1),
                    "scheduler_rss_mb_after": round(after, 1),
                }
                print(results["dag"][f"dask {n}"], flush=True)


def ray_part(sizes, results):
    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    try:
        remote = ray.remote(noop_step)
        ray.get(remote.remote())
        for n in sizes:
            t = time.perf_counter()
            refs = []
            for parents in layered(n):
                refs.append(remote.remote(*[refs[p] for p in parents]))
            ray.get(refs)
            took = time.perf_counter() - t
            results["dag"][f"ray {n}"] = {"seconds": round(took, 3), "steps_per_s": round(n / took)}
            print(results["dag"][f"ray {n}"], flush=True)
    finally:
        ray.shutdown()


def papermill_part(tmp, reps, results):
    import papermill

    out = os.path.join(tmp, "out.ipynb")
    cli = os.path.join(os.path.dirname(sys.executable), "papermill")

    def run_cli(name, x):
        subprocess.run(
            [cli, os.path.join(tmp, f"{name}.ipynb"), out, "-p", "x", str(x), "--no-progress-bar"],
            check=True,
            capture_output=True,
        )

    results["notebook_step"]["papermill CLI"] = timed(lambda: run_cli("a", 3), max(3, reps // 2))
    results["pipeline"]["papermill CLI, one after another"] = timed(
        lambda: [run_cli(n, x) for n, x in (("a", 1), ("b", 2), ("c", 3))], max(3, reps // 2)
    )
    results["pipeline"]["papermill API, one process"] = timed(
        lambda: [
            papermill.execute_notebook(os.path.join(tmp, f"{n}.ipynb"), out, {"x": x}, progress_bar=False)
            for n, x in (("a", 1), ("b", 2), ("c", 3))
        ],
        max(3, reps // 2),
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", default="1000,10000")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--only", default="orch,papermill,dask,ray")
    args = parser.parse_args()
    sizes = [int(s) for s in args.steps.split(",") if s]
    only = set(args.only.split(","))
    tmp = tempfile.mkdtemp(prefix="bench-wf-")
    results = {
        "versions": common.pkg_versions("jupyter-orch", "papermill", "dask", "distributed", "ray"),
        "reps": args.reps,
        "cpus": os.cpu_count(),
        "notebook_step": {},
        "pipeline": {},
        "dag": {},
    }
    pipeline_yaml(tmp)
    if "orch" in only:
        orch_part(tmp, args.reps, sizes, results)
    if "papermill" in only:
        papermill_part(tmp, args.reps, results)
    if "dask" in only:
        dask_part(sizes, results)
    if "ray" in only:
        ray_part(sizes, results)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "workflows.json"), "w") as f:
        json.dump(results, f, indent=2)
    print("| workload | system | p50 ms | p90 ms |")
    print("|---|---|---|---|")
    for part in ("notebook_step", "pipeline"):
        for system, s in results[part].items():
            print(f"| {part} | {system} | {s['p50_ms']:.0f} | {s['p90_ms']:.0f} |")
    print("| DAG | system | seconds | steps/s | memory (MB, before -> after) |")
    print("|---|---|---|---|---|")
    for key, s in results["dag"].items():
        mem = "-"
        if "server_rss_mb_before" in s:
            mem = f"server {s['server_rss_mb_before']} -> {s['server_rss_mb_after']}"
        elif "scheduler_rss_mb_before" in s:
            mem = f"scheduler {s['scheduler_rss_mb_before']} -> {s['scheduler_rss_mb_after']}"
        print(f"| {key} | | {s['seconds']} | {s['steps_per_s']} | {mem} |")


if __name__ == "__main__":
    main()
