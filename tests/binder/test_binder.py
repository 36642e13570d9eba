"""Binder (``binder/``): repo2docker's steps repeated in a fresh virtual environment, then
the quickstart notebook run with nbclient, as a visitor of mybinder.org would run it.

repo2docker installs ``binder/requirements.txt`` from the repository's root into the image's
Python and starts a Jupyter server; here a new venv stands for the image (its pip and its
index are this machine's). The server is started the way JupyterLab starts it (the extension
enabled by the package's own configuration, nothing passed on its command line), and the
notebook's kernel finds the orchestrator by itself. Every wait is on a log line or a process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from support.orchserver import free_port, tagged_pids, wait_gone
from support.output import Output

ROOT = Path(__file__).resolve().parents[2]

RUN = """
import json, sys
import nbformat
from nbclient import NotebookClient
path, folder = sys.argv[1], sys.argv[2]
nb = nbformat.read(path, as_version=4)
NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": folder}}).execute()
text = []
for cell in nb.cells:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            text.append(out["text"])
print(json.dumps("".join(text)))
"""


@pytest.mark.timeout(900)
def test_the_quickstart_runs_in_an_environment_built_as_binder_builds_it(tmp_path: Path) -> None:
    venv = tmp_path / "image"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "-r", "binder/requirements.txt"],
        cwd=ROOT,
        check=True,
        timeout=600,
    )
    home = tmp_path / "home"
    examples = home / "examples"
    shutil.copytree(ROOT / "examples", examples)
    tag = uuid.uuid4().hex
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "VIRTUAL_ENV", "PYTHON"))}
    env.update(
        HOME=str(home),
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        ORCH_TEST_TAG=tag,
        PYTHONUNBUFFERED="1",
    )
    server = subprocess.Popen(
        [
            str(venv / "bin" / "jupyter"),
            "server",
            "--allow-root",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={free_port()}",
            f"--IdentityProvider.token={uuid.uuid4().hex}",
            f"--ServerApp.root_dir={home}",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=home,
    )
    output = Output("binder server")
    assert server.stdout is not None
    output.follow(server.stdout)
    try:
        output.wait_for(": API at ", 120)  # the extension is on, by the package's own config
        first = output.wait_for("connected to http://127.0.0.1", 120)  # its two local workers
        output.wait_for("connected to http://127.0.0.1", 120, start=output.lines.index(first) + 1)
        run = subprocess.run(
            [str(python), "-c", RUN, str(examples / "quickstart.ipynb"), str(examples)],
            env=env,
            cwd=examples,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert run.returncode == 0, run.stderr[-3000:]
        text = json.loads(run.stdout.strip().splitlines()[-1])
        assert "epoch 4: loss" in text
        assert "raised here: ZeroDivisionError('division by zero')" in text
        assert "gathered: [0, 1, 4, 9, 16, 25, 36, 49]" in text
    finally:
        server.terminate()
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
        left = wait_gone(tagged_pids(tag), timeout=30)
        for pid in tagged_pids(tag):
            os.kill(pid, 9)
        assert not left, left
