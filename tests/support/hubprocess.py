"""A JupyterHub process for the tests under tests/hub: started from a config file with the
test's tag in its environment (so every process it starts, services and single-user
servers included, can be ended by the teardown), its output followed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from .orchserver import tagged_pids
from .output import Output

ROOT = Path(__file__).resolve().parents[2]
PROXY = ROOT / ".hub-test-deps" / "node_modules" / ".bin" / "configurable-http-proxy"


def start_hub(config: Path, tag: str, output: Output) -> subprocess.Popen[str]:
    """``jupyterhub -f config``, once it says it is running."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    env.update(ORCH_TEST_TAG=tag, PYTHONUNBUFFERED="1")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    start = len(output.lines)
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterhub", "-f", str(config)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=config.parent,
    )
    assert proc.stdout is not None
    output.follow(proc.stdout)
    output.wait_for("JupyterHub is now running", 120, start=start)
    return proc


def stop_hub(proc: subprocess.Popen[str] | None, tag: str) -> None:
    """Stop the hub, then end whatever of the test's is left (SIGKILL by tag)."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    for pid in tagged_pids(tag):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
