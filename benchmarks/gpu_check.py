"""On a machine with an NVIDIA GPU: a real ``jupyter orch serve`` with one local worker of
2 slots; records what the worker reports of the GPU (pynvml: index, uuid, model, memory,
utilisation), runs a shell task and a PyTorch task that each ask for one GPU, and a task
asking for two (which must wait with a reason), and writes ``$OUT/device.json``.

    OUT=/tmp python3 benchmarks/gpu_check.py     # jupyter-orch importable, torch installed

Last run: results/gpu-worker-h200.json (an H200; see docs/benchmarks.md). Not part of the
test suite: no test may depend on a GPU.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import traceback

OUT = os.environ.get("OUT", "/tmp")
record = {}
d = tempfile.mkdtemp()
env = dict(
    os.environ, JUPYTER_DATA_DIR=d + "/data", JUPYTER_CONFIG_DIR=d + "/cfg", JUPYTER_RUNTIME_DIR=d + "/rt"
)
env.pop("JUPYTER_ORCH_URL", None)
log = open(os.path.join(OUT, "server.log"), "w")
t0 = time.time()
server = subprocess.Popen(
    [
        sys.executable,
        "-m",
        "jupyter_orch",
        "serve",
        "--ServerApp.port=18888",
        "--ServerApp.ip=127.0.0.1",
        "--ServerApp.port_retries=0",
        "--LocalProvider.workers=1",
        "--LocalProvider.slots_per_worker=2",
    ],
    env=env,
    stdout=log,
    stderr=subprocess.STDOUT,
)
info_file = os.path.join(d, "data", "orch", "server.json")
try:
    while not os.path.exists(info_file):
        assert server.poll() is None, "server exited"
        assert time.time() - t0 < 120, "server did not start"
        time.sleep(0.1)
    record["server_start_s"] = round(time.time() - t0, 2)
    info = json.load(open(info_file))
    from jupyter_orch.client import Client

    c = Client(info["url"], info["token"])
    while not [w for w in c.workers() if w["state"] == "connected"]:
        assert time.time() - t0 < 180, "no worker"
        time.sleep(0.2)
    record["workers"] = c.workers()
    f = c.submit_shell(
        "nvidia-smi -L; echo CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES", gpus=1, name="nvidia-smi"
    )
    f.result(120)
    record["shell_gpu_task"] = {"info": f.info(), "logs": f.logs()}

    def matmul():
        import os
        import time

        import torch

        x = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
        torch.cuda.synchronize()
        for _ in range(3):
            x @ x
        torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(10):
            x @ x
        torch.cuda.synchronize()
        dt = (time.perf_counter() - t) / 10
        return {
            "device": torch.cuda.get_device_name(0),
            "visible": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "tflops": round(2 * 8192**3 / dt / 1e12, 1),
            "count": torch.cuda.device_count(),
        }

    f2 = c.submit(matmul, gpus=1, name="matmul")
    record["torch_gpu_task"] = {"result": f2.result(300), "info": f2.info()}
    f3 = c.submit_shell("true", gpus=2, name="two-gpus")
    time.sleep(2)
    record["two_gpu_task"] = f3.info()
    f3.cancel()
    record["workers_after"] = c.workers()
except Exception:
    record["error"] = traceback.format_exc()
finally:
    server.terminate()
    try:
        server.wait(30)
    except Exception:
        server.kill()
    json.dump(record, open(os.path.join(OUT, "device.json"), "w"), indent=1, default=str)
    print(json.dumps(record, indent=1, default=str)[:6000])
