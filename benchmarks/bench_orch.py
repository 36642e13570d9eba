"""jupyter-orch: ``jupyter orch serve`` (a Jupyter server with the extension, SQLite in a
temporary data dir) with 2 local workers of 1 slot each; tasks go through the Python
client (``client.submit``), every task persisted before it is acknowledged."""

import os
import subprocess
import sys
import tempfile
import time

import common
from common import Adapter, run_suite


class OrchAdapter(Adapter):
    name = "orch"  # the script is bench_orch.py: run_all.sh names its records after it
    server_args = ["--LocalProvider.workers=2", "--LocalProvider.slots_per_worker=1"]
    workers = 2  # start() waits for this many
    dag_notes = {
        "native": "client.submit(fan_in, *futures): futures as arguments are "
        "dependencies kept by the server; values go worker to worker via the server"
    }

    def import_libs(self):
        import jupyter_orch
        import jupyter_orch.client  # noqa: F401

    def versions(self):
        return common.pkg_versions(
            "jupyter-orch", "jupyter_server", "tornado", "sqlalchemy", "cloudpickle", "numpy"
        )

    def start(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="bench-orch-")
        self.launch()

    def launch(self):
        """Start the server (again) on the data dir of :meth:`start`."""
        import json
        import socket

        from jupyter_orch.client import Client

        data = os.path.join(self.tmp.name, "data")
        info_file = os.path.join(data, "orch", "server.json")
        if os.path.exists(info_file):
            os.unlink(info_file)  # a killed server's: wait for the new one's
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = dict(
            os.environ,
            JUPYTER_DATA_DIR=data,
            JUPYTER_CONFIG_DIR=os.path.join(self.tmp.name, "cfg"),
            JUPYTER_RUNTIME_DIR=os.path.join(self.tmp.name, "rt"),
        )
        env.pop("JUPYTER_ORCH_URL", None)
        env.pop("JUPYTER_ORCH_TOKEN", None)
        self.log = open(os.path.join(self.tmp.name, "server.log"), "a+")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyter_orch",
                "serve",
                f"--ServerApp.port={port}",
                "--ServerApp.ip=127.0.0.1",
                "--ServerApp.port_retries=0",
                *self.server_args,
                "--ServerApp.log_level=WARN",
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=self.tmp.name,
        )
        deadline = time.monotonic() + 60
        while not os.path.exists(info_file):  # the server writes it once it is ready
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.log.seek(0)
                raise RuntimeError("server did not start:\n" + self.log.read()[-3000:])
            time.sleep(0.01)
        info = json.load(open(info_file))
        self.client = Client(info["url"], info["token"])
        # block until both workers can run tasks
        while sum(w["state"] == "connected" for w in self.client.workers()) < self.workers:
            if time.monotonic() > deadline:
                raise RuntimeError("workers did not connect")
            time.sleep(0.01)

    def stop(self):
        self.client.close()
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        self.tmp.cleanup()

    def pids(self):
        try:
            import psutil

            return [p.pid for p in psutil.Process(self.proc.pid).children(recursive=True)] + [self.proc.pid]
        except Exception:
            return []

    def submit(self, fn, *args):
        return self.client.submit(fn, *args)

    def result(self, fut):
        return fut.result()

    def dag(self, n):
        futs = [self.client.submit(common.noop, i) for i in range(n)]
        return self.client.submit(common.fan_in, *futs).result()


if __name__ == "__main__":
    run_suite(OrchAdapter)
