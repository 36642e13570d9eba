"""No server to talk to (issue 12, items 6 and 7): the CLI and ``connect()`` say so in one
clear sentence, naming the ``server.json`` they read when they read one, never a traceback,
a hang, or a dead address followed in silence.

A server killed with SIGKILL leaves its ``server.json`` behind (no shutdown code runs);
one whose process lives on but does not listen is the other way a file goes stale.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from jupyter_orch.client.http import ServerUnreachable
from jupyter_orch.discovery import NoServer

from support.orchserver import free_port

WORKFLOW = "name: hello\ntasks:\n  - name: a\n    shell: echo hi\n"


def cli(*args, data_dir, env=None):
    full = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER_ORCH_")}
    full.update(JUPYTER_ORCH_DATA_DIR=str(data_dir), COLUMNS="200", **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "jupyter_orch", *args], capture_output=True, text=True, env=full, timeout=60
    )


def one_line(result):
    text = result.stderr.strip()
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert len(text.splitlines()) == 1, text
    return text


@pytest.fixture
def no_env(monkeypatch):
    for name in ("JUPYTER_ORCH_URL", "JUPYTER_ORCH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_a_killed_servers_file_is_named_as_stale_by_the_cli_and_connect(orch_factory, tmp_path, no_env):
    import jupyter_orch

    server = orch_factory(workers=0).start()
    pid = server.proc.pid
    server.stop(kill=True)
    stale = server.data_dir / "server.json"
    assert json.loads(stale.read_text())["pid"] == pid  # left behind

    for args in (["status"], ["workers"], ["run", str(tmp_path / "wf.yaml"), "--wait"]):
        (tmp_path / "wf.yaml").write_text(WORKFLOW)
        said = one_line(cli(*args, data_dir=server.data_dir))
        assert f"the jupyter-orch server named in {stale} ({server.url}) is not running" in said
        assert f"is not running (its process {pid} is gone)" in said
        assert "jupyter orch serve" in said and "delete that file" in said

    no_env.setenv("JUPYTER_ORCH_DATA_DIR", str(server.data_dir))
    with pytest.raises(NoServer) as info:
        jupyter_orch.connect()
    assert f"named in {stale}" in str(info.value) and "is not running" in str(info.value)
    assert isinstance(info.value, RuntimeError)  # what callers of connect() caught before


def test_a_file_whose_server_does_not_listen_is_named_when_it_cannot_be_reached(tmp_path, no_env):
    import jupyter_orch

    # a live process (this one, older than the file) and nothing listening at the URL
    url = f"http://127.0.0.1:{free_port()}"
    path = tmp_path / "server.json"
    path.write_text(json.dumps({"url": url, "token": "orch_x", "pid": os.getpid()}))

    said = one_line(cli("status", data_dir=tmp_path))
    assert f"cannot reach the jupyter-orch server at {url}, named in {path}" in said
    assert "jupyter orch serve" in said

    no_env.setenv("JUPYTER_ORCH_DATA_DIR", str(tmp_path))
    with pytest.raises(ServerUnreachable) as info:
        jupyter_orch.connect()
    assert f"named in {path}" in str(info.value)


def test_run_with_no_server_is_one_clear_line(tmp_path):
    workflow = tmp_path / "wf.yaml"
    workflow.write_text(WORKFLOW)
    url = f"http://127.0.0.1:{free_port()}"
    for wait in (["--wait"], []):
        said = one_line(cli("run", str(workflow), *wait, data_dir=tmp_path, env={"JUPYTER_ORCH_URL": url}))
        assert said.startswith(f"jupyter orch run: cannot reach the jupyter-orch server at {url}")
        assert "jupyter orch serve" in said
    # and with nothing at all to go by
    said = one_line(cli("run", str(workflow), "--wait", data_dir=tmp_path / "empty"))
    assert "no jupyter-orch server found" in said and "jupyter orch serve" in said


def test_a_file_whose_pid_now_belongs_to_another_process_is_stale(tmp_path):
    other = subprocess.Popen(["sleep", "60"])  # started after the file was written
    try:
        path = tmp_path / "server.json"
        path.write_text(json.dumps({"url": f"http://127.0.0.1:{free_port()}", "pid": other.pid}))
        an_hour_ago = path.stat().st_mtime - 3600
        os.utime(path, (an_hour_ago, an_hour_ago))
        said = one_line(cli("status", data_dir=tmp_path))
        assert f"named in {path}" in said
        assert f"its process {other.pid} has exited; that pid is another process now" in said
    finally:
        other.kill()
        other.wait()
