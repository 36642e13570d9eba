"""Notebook tasks: papermill parameters, execution on real local workers, progress, outputs,
the executed notebook over the API, a failing cell named."""

from __future__ import annotations

import json
import urllib.request

import nbformat
import pytest

from jupyter_orch.client.notebooks import NotebookFailed, NotebookResult


def make_notebook(path):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("lr = 0.01\nname = 'default'\nepochs = 1\nflags = []\nfail = False")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        nbformat.v4.new_markdown_cell("# a tiny training notebook"),
        nbformat.v4.new_code_cell("import os\nimport jupyter_orch"),
        params,
        nbformat.v4.new_code_cell(
            "print(f'lr={lr!r} name={name!r} epochs={epochs!r} flags={flags!r}')\nprint('pid', os.getpid())"
        ),
        nbformat.v4.new_code_cell(
            "jupyter_orch.output('score', lr * epochs)\njupyter_orch.output('label', name.upper())"
        ),
        nbformat.v4.new_code_cell("if fail:\n    raise ValueError('boom in the last cell')"),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def stream(cell):
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o["output_type"] == "stream")


def test_a_notebook_runs_with_its_parameters_and_records_outputs(orch, tmp_path):
    client = orch.client()
    path = make_notebook(tmp_path / "train.ipynb")
    quoted = 'it\'s "quoted"'
    fut = client.run_notebook(
        str(path),
        {"lr": 0.5, "name": quoted, "epochs": 3, "flags": ["a"]},
        output=str(tmp_path / "out.ipynb"),
    )
    result = fut.result(120)
    assert isinstance(result, NotebookResult)
    assert result.outputs == {"score": 1.5, "label": quoted.upper()}
    tags = [c.metadata.get("tags", []) for c in result.notebook.cells]
    assert ["injected-parameters"] in tags  # papermill's cell, after the one tagged parameters
    printed = stream(result.notebook.cells[tags.index(["injected-parameters"]) + 1])
    assert f"lr=0.5 name={quoted!r} epochs=3 flags=['a']" in printed  # strings quoted, types kept
    assert nbformat.read(tmp_path / "out.ipynb", as_version=4).cells[0].source == "# a tiny training notebook"
    logs = fut.logs().splitlines()
    # progress per code cell (5, and the one papermill adds) and what the cells printed, in
    # order: the fourth cell's two lines after its progress line
    progress = [f"[jupyter-orch] cell {i} of 6" for i in range(1, 7)]
    pid = next(line for line in printed.splitlines() if line.startswith("pid "))
    assert logs == [*progress[:4], f"lr=0.5 name={quoted!r} epochs=3 flags=['a']", pid, *progress[4:]]
    view = orch.api().get(f"/tasks/{fut.id}")
    assert view["kind"] == "notebook" and view["notebook_url"] == f"tasks/{fut.id}/notebook"
    nb = json.loads(fetch(orch, f"/tasks/{fut.id}/notebook", "application/x-ipynb+json"))
    assert nb["nbformat"] == 4 and len(nb["cells"]) == 7
    assert json.loads(fetch(orch, f"/tasks/{fut.id}/outputs")) == {"outputs": result.outputs}


def test_what_the_cells_print_is_in_the_log_live_and_in_order(orch, tmp_path):
    """stdout and stderr of the notebook's cells reach the task's log as the cell runs (the
    first lines are followed while the cell still waits for a file), each in its stream and
    in the order written; the executed notebook keeps them in its cells as before."""
    from jupyter_orch.client.logstream import LogFollow

    gate = tmp_path / "go"
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("import os, sys, time\nprint('first line')\nprint('second line')"),
        nbformat.v4.new_code_cell(
            "print('to stderr', file=sys.stderr, flush=True)\n"
            "print('before the gate', flush=True)\n"
            f"while not os.path.exists({str(gate)!r}):\n"
            "    time.sleep(0.02)\n"
            "print('after the gate')"
        ),
        nbformat.v4.new_code_cell("for i in range(3):\n    print('loop', i)"),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "talks.ipynb")
    client = orch.client()
    fut = client.run_notebook(str(tmp_path / "talks.ipynb"))
    assert fut.accepted()  # the server has it: its log can be followed
    seen = []
    for line in LogFollow(client.api, fut.id):
        seen.append((line["stream"], line["text"].rstrip("\n")))
        if seen[-1][1] == "before the gate":
            # the cell is still running (it waits for the gate): the line came live
            assert orch.api().get(f"/tasks/{fut.id}")["state"] == "running"
            gate.write_text("go")
    assert seen == [
        ("stderr", "[jupyter-orch] cell 1 of 3"),
        ("stdout", "first line"),
        ("stdout", "second line"),
        ("stderr", "[jupyter-orch] cell 2 of 3"),
        ("stderr", "to stderr"),
        ("stdout", "before the gate"),
        ("stdout", "after the gate"),
        ("stderr", "[jupyter-orch] cell 3 of 3"),
        ("stdout", "loop 0"),
        ("stdout", "loop 1"),
        ("stdout", "loop 2"),
    ]
    result = fut.result(120)
    kept = [
        [(o["name"], line) for o in c.outputs for line in o["text"].splitlines()]
        for c in result.notebook.cells
    ]
    assert kept == [
        [("stdout", "first line"), ("stdout", "second line")],
        [("stderr", "to stderr"), ("stdout", "before the gate"), ("stdout", "after the gate")],
        [("stdout", "loop 0"), ("stdout", "loop 1"), ("stdout", "loop 2")],
    ]


def fetch(orch, path, content_type="application/json"):
    req = urllib.request.Request(
        orch.url + "/orch/api/v1" + path, headers={"Authorization": f"Bearer {orch.token}"}
    )
    with urllib.request.urlopen(req) as resp:
        assert resp.headers["Content-Type"].startswith(content_type)
        return resp.read()


def test_a_failing_cell_is_named_and_its_notebook_kept(orch, tmp_path):
    client = orch.client()
    path = make_notebook(tmp_path / "train.ipynb")
    fut = client.run_notebook(str(path), {"fail": True})
    with pytest.raises(NotebookFailed) as info:
        fut.result(120)
    failed = info.value
    assert "cell 6 of 6 failed: ValueError: boom in the last cell" in str(failed)
    assert "boom in the last cell" in failed.traceback and "\x1b[" not in failed.traceback
    errors = [o for c in failed.notebook.cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert errors and errors[0]["ename"] == "ValueError"
    assert orch.api().get(f"/tasks/{fut.id}")["notebook_url"]


def test_a_module_missing_on_the_worker_is_not_retried(orch, tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import no_such_module_here")]
    nbformat.write(nb, tmp_path / "needs.ipynb")
    fut = orch.client().run_notebook(str(tmp_path / "needs.ipynb"), retries=2, retry_backoff=0.1)
    with pytest.raises(NotebookFailed, match="ModuleNotFoundError: No module named 'no_such_module_here'"):
        fut.result(120)
    task = orch.api().get(f"/tasks/{fut.id}")
    assert task["error_kind"] == "environment" and task["attempt"] == 1  # it would fail again


def test_each_notebook_gets_a_fresh_kernel_and_a_missing_kernel_is_one_sentence(orch, tmp_path):
    client = orch.client()
    path = make_notebook(tmp_path / "train.ipynb")
    pids = set()
    for _ in range(3):
        nb = client.run_notebook(str(path)).result(120).notebook
        pids.add(next(line for c in nb.cells for line in stream(c).splitlines() if line.startswith("pid ")))
    assert len(pids) == 3
    fut = client.run_notebook(str(path), kernel="no-such-kernel")
    with pytest.raises(NotebookFailed, match="kernel 'no-such-kernel' is not installed on this worker"):
        fut.result(120)


def test_bad_notebook_input_fails_before_sending(orch, tmp_path):
    client = orch.client()
    from jupyter_orch.core.errors import SpecError

    with pytest.raises(SpecError) as info:
        client.run_notebook(str(tmp_path / "nowhere.ipynb"))
    assert info.value.field == "path"
    (tmp_path / "bad.ipynb").write_text("not json")
    with pytest.raises(SpecError, match="is not a readable notebook"):
        client.run_notebook(str(tmp_path / "bad.ipynb"))
    with pytest.raises(SpecError, match="must be JSON values") as info:
        client.run_notebook(str(make_notebook(tmp_path / "ok.ipynb")), {"lr": object()})
    assert info.value.field == "parameters"
