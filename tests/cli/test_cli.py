"""``jupyter orch`` as a user types it, against a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def orch_cli(server, *args, env=None, timeout=60):
    full_env = dict(os.environ, JUPYTER_ORCH_URL=server.url, JUPYTER_ORCH_TOKEN=server.token, COLUMNS="200")
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "jupyter_orch", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
    )


def test_submit_shell_wait_prints_output_and_exits_with_its_code(orch):
    ok = orch_cli(orch, "submit", "--wait", "--", "echo", "hello", "world")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == "hello world\n"
    bad = orch_cli(orch, "submit", "--wait", "--", "sh", "-c", "echo oops >&2; exit 4")
    assert bad.returncode == 4
    assert "oops" in bad.stderr and "exited with code 4" in bad.stderr


def test_submit_function_by_reference(orch):
    result = orch_cli(orch, "submit", "--wait", "operator:add", "2", "40")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "42"
    failed = orch_cli(orch, "submit", "--wait", "json:loads", '"not json"')
    assert failed.returncode == 1
    assert "JSONDecodeError" in failed.stderr


def test_submit_without_wait_prints_the_id_and_status_shows_it(orch):
    submitted = orch_cli(orch, "submit", "--name", "cli-task", "--", "true")
    task_id = submitted.stdout.strip()
    assert len(task_id) == 26
    orch.api().get(f"/tasks/{task_id}/wait", timeout=30)
    table = orch_cli(orch, "status")
    assert task_id in table.stdout and "cli-task" in table.stdout and "succeeded" in table.stdout
    detail = json.loads(orch_cli(orch, "status", task_id, "--json").stdout)
    assert detail["state"] == "succeeded" and detail["attempts"][0]["exit_code"] == 0
    assert "attempts (1)" in orch_cli(orch, "status", task_id).stdout


def test_logs_cancel_retry(orch, tmp_path):
    task_id = orch_cli(orch, "submit", "--", "echo a; exit 1").stdout.strip()
    orch.api().get(f"/tasks/{task_id}/wait", timeout=30)
    assert orch_cli(orch, "logs", task_id).stdout == "a\n"
    retried = orch_cli(orch, "retry", task_id)
    assert retried.returncode == 0 and "retrying" in retried.stdout
    follow = orch_cli(orch, "logs", "-f", task_id)
    assert follow.stdout == "a\n" and follow.returncode == 1
    assert len(orch.api().get(f"/tasks/{task_id}")["attempts"]) == 2

    long_id = orch_cli(orch, "submit", "--", "sleep", "60").stdout.strip()
    cancelled = orch_cli(orch, "cancel", long_id)
    assert cancelled.returncode == 0 and "cancelled" in cancelled.stdout
    again = orch_cli(orch, "cancel", long_id)
    assert again.returncode == 1 and "already cancelled" in again.stderr


def test_workers_and_tokens(orch):
    table = orch_cli(orch, "workers")
    assert "local-0" in table.stdout and "local-1" in table.stdout and "connected" in table.stdout
    as_json = json.loads(orch_cli(orch, "workers", "--json").stdout)
    assert {w["name"] for w in as_json["workers"]} == {"local-0", "local-1"}
    created = json.loads(orch_cli(orch, "token", "create", "gpu-box", "--json").stdout)
    assert created["token"].startswith("orch_")
    listed = orch_cli(orch, "token", "list").stdout
    assert "gpu-box" in listed and created["token"] not in listed
    assert orch_cli(orch, "token", "revoke", created["id"]).returncode == 0


def test_bad_input_is_one_clear_line(orch):
    bad = orch_cli(orch, "submit", "--memory", "lots", "--", "true")
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines() == [bad.stderr.strip()]
    assert "resources.memory" in bad.stderr
    unknown = orch_cli(orch, "status", "0" * 26)
    assert unknown.returncode == 1 and "no task" in unknown.stderr


def test_no_server_says_how_to_start_one(tmp_path):
    env = dict(os.environ, JUPYTER_DATA_DIR=str(tmp_path))
    env.pop("JUPYTER_ORCH_URL", None)
    env.pop("JUPYTER_ORCH_TOKEN", None)
    result = subprocess.run(
        [sys.executable, "-m", "jupyter_orch", "status"], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode != 0
    assert "jupyter orch serve" in result.stderr
    gone = subprocess.run(
        [sys.executable, "-m", "jupyter_orch", "status", "--url", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert gone.returncode == 1 and "cannot reach" in gone.stderr and "jupyter orch serve" in gone.stderr


def test_the_running_server_is_found_without_settings(orch):
    env = dict(os.environ, JUPYTER_DATA_DIR=str(orch.data_dir.parent))
    env.pop("JUPYTER_ORCH_URL", None)
    env.pop("JUPYTER_ORCH_TOKEN", None)
    result = subprocess.run(
        [sys.executable, "-m", "jupyter_orch", "workers"], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0 and "local-0" in result.stdout


def test_submit_notebook_with_typed_parameters(orch, tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("lr = 0.01\nepochs = 1\ntag = 'x'\nfail = False")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        params,
        nbformat.v4.new_code_cell(
            "import jupyter_orch\njupyter_orch.output('run', {'lr': lr, 'epochs': epochs, 'tag': tag})"
        ),
        nbformat.v4.new_code_cell("assert not fail, 'asked to fail'"),
    ]
    path = tmp_path / "train.ipynb"
    nbformat.write(nb, path)
    out = tmp_path / "executed.ipynb"
    ok = orch_cli(orch, "submit-notebook", str(path), "-p", "lr=0.5", "-p", "epochs=3", "-p", "tag=v 2",
                  "--output", str(out), "--wait")  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout) == {"run": {"lr": 0.5, "epochs": 3, "tag": "v 2"}}
    assert "[jupyter-orch] cell 4 of 4" in ok.stdout + ok.stderr
    assert nbformat.read(out, as_version=4).cells[1].metadata["tags"] == ["injected-parameters"]
    bad = orch_cli(orch, "submit-notebook", str(path), "-p", "fail=true", "--wait")
    assert bad.returncode == 1
    assert "cell 4 of 4 failed: AssertionError: asked to fail" in bad.stderr
    missing = orch_cli(orch, "submit-notebook", str(tmp_path / "nope.ipynb"))
    assert missing.returncode == 1 and f"no notebook at {tmp_path / 'nope.ipynb'}" in missing.stderr
