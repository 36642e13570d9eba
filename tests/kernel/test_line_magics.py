"""``%orch`` line magics and the Python API's notebook views, in a real notebook."""

from __future__ import annotations

from support.notebook import result, status_line, text


def said(cell):
    return text(cell, "stderr") + "".join(
        o.get("evalue", "") for o in cell.outputs if o["output_type"] == "error"
    )


def shown(cell):
    """Everything the cell printed or displayed as text."""
    parts = [text(cell), text(cell, "stderr")]
    for out in cell.outputs:
        if out["output_type"] in ("display_data", "execute_result"):
            parts.append(out["data"].get("text/plain", "") + out["data"].get("text/html", ""))
    return "\n".join(parts)


def test_status_logs_cancel_and_workers(notebook):
    notebook.run(
        "import jupyter_orch\n"
        "client = jupyter_orch.connect()\n"
        "done = client.submit_shell('echo hello from the worker', name='greeter')\n"
        "done.result(60)\n"
        "sleeper = client.submit_shell('sleep 60', name='sleeper')\n"
        "sleeper.accepted()"
    )
    ids = text(notebook.run("print(done.id, sleeper.id)")).split()
    status = shown(notebook.run("%orch status"))
    assert "greeter" in status and "sleeper" in status
    detail = shown(notebook.run(f"%orch status {ids[0]}"))
    assert "succeeded" in detail and ids[0] in detail
    assert text(notebook.run(f"%orch logs {ids[0]}")) == "hello from the worker\n"
    assert text(notebook.run(f"%orch logs {ids[0]} -f")) == "hello from the worker\n"  # ended: all, then stop
    assert text(notebook.run(f"%orch cancel {ids[1]}")) == f"task {ids[1]} cancelled\n"
    refused = said(notebook.run(f"%orch cancel {ids[0]}"))
    assert "succeeded" in refused, refused
    workers = shown(notebook.run("%orch workers"))
    assert "local-0" in workers and "local-1" in workers


def test_line_magic_usage_and_bad_arguments(notebook):
    assert "usage: %orch status [ID]" in said(notebook.run("%orch frobnicate"))
    assert "one task id" in said(notebook.run("%orch logs"))
    assert "no notebook at" in said(notebook.run("%orch notebook nowhere.ipynb"))
    assert "usage: %orch notebook PATH" in said(notebook.run("%orch notebook"))
    assert "usage: %orch workflow FILE" in said(notebook.run("%orch workflow"))
    assert "no task" in said(notebook.run("%orch status 01aaaaaaaaaaaaaaaaaaaaaaaa"))


def test_a_displayed_future_is_a_live_view_and_gather_shows_progress(notebook):
    cell = notebook.run(
        "import jupyter_orch\n"
        "@jupyter_orch.remote(cpus=1)\n"
        "def cube(x):\n"
        "    return x ** 3\n"
        "f = cube.submit(3)\n"
        "f.result(60)\n"
        "f"
    )
    view = result(cell)
    assert "succeeded" in status_line(notebook, view)
    cell = notebook.run("values = jupyter_orch.gather(cube.map(range(6)))\nprint(values)")
    assert text(cell) == "[0, 1, 8, 27, 64, 125]\n"
    bars = [s for s in notebook.client.widget_state.values() if s.get("_model_name") == "IntProgressModel"]
    assert bars and bars[-1]["value"] == bars[-1]["max"] == 6 and bars[-1]["bar_style"] == "success"


def test_orch_notebook_runs_a_notebook_with_parameters(notebook, tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("n = 1\nword = 'a'")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        params,
        nbformat.v4.new_code_cell("import jupyter_orch\njupyter_orch.output('echo', word * n)"),
    ]
    nbformat.write(nb, tmp_path / "small.ipynb")
    cell = notebook.run(
        f"r = %orch notebook {tmp_path / 'small.ipynb'} -p n 3 -p word hey --output {tmp_path / 'out.ipynb'}\nprint(r.outputs)"
    )
    assert text(cell).splitlines()[-1] == "{'echo': 'heyheyhey'}"
    assert "[jupyter-orch] cell 3 of 3" in text(cell, "stderr")  # progress streamed into the cell
    assert (tmp_path / "out.ipynb").exists()
