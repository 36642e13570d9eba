"""``%%orch run`` in a real notebook: what goes to the worker, what comes back, what the
cell shows."""

from __future__ import annotations

from support.notebook import error, result, status_line, text


def test_the_namespace_goes_and_comes_back(notebook):
    notebook.run(
        "import os\n"
        "import numpy as np\n"
        "import pandas as pd\n"
        "def double(x):\n"
        "    return 2 * x\n"
        "square = lambda v: v * v\n"
        "class Box:\n"
        "    def __init__(self, v):\n"
        "        self.v = v\n"
        "box = Box(3)\n"
        "arr = np.arange(10)\n"
        "df = pd.DataFrame({'a': [1, 2]})\n"
        "kernel_pid = os.getpid()"
    )
    cell = notebook.run(
        "%%orch run\n"
        "total = int(double(arr).sum() + square(box.v))\n"
        "df2 = df.assign(b=df.a * 10)\n"
        "new_box = Box(7)\n"
        "worker_pid = os.getpid()\n"
        "total"
    )
    assert result(cell)["text/plain"] == "99"  # the last expression, shown as Out[n]
    check = notebook.run(
        "print(total, df2.b.tolist(), new_box.v, isinstance(new_box, Box), worker_pid != kernel_pid)"
    )
    assert text(check) == "99 [10, 20] 7 True True\n"


def test_output_streams_into_the_cell(notebook):
    cell = notebook.run("%%orch run\nfor i in range(3):\n    print('line', i)\n")
    assert text(cell) == "line 0\nline 1\nline 2\n"


def test_an_exception_shows_the_cells_own_lines(notebook):
    cell = notebook.run("%%orch run\nx = 1\ny = x / 0\n")
    err = error(cell)
    assert err["ename"] == "ZeroDivisionError"
    tb = "\n".join(err["traceback"])
    # named as the cell's own prompt, In [n]
    assert f"<orch In[{cell.execution_count}]>" in tb and "line 3" in tb and "y = x / 0" in tb
    assert "runner.py" not in tb and "executor.py" not in tb


def lines(cell):
    """The cell's outputs as (stream or mime kind, text) lines, in order."""
    seen = []
    for out in cell.outputs:
        if out["output_type"] == "stream":
            seen += [(out["name"], line) for line in out["text"].splitlines()]
        elif out["output_type"] == "display_data":
            kind = "image" if "image/png" in out["data"] else "html" if "text/html" in out["data"] else "text"
            seen.append((kind, out["data"].get("text/plain", "")))
    return seen


def test_stdout_stderr_and_displays_arrive_in_the_order_written(notebook):
    cell = notebook.run(
        "%%orch run\n"
        "import sys\n"
        "import pandas as pd\n"
        "for i in range(3):\n"
        "    print('out', i)\n"
        "    print('err', i, file=sys.stderr)\n"
        "display(pd.DataFrame({'col': [1, 2]}))\n"
        "print('after', flush=True)\n"
    )
    got = lines(cell)
    assert got[:6] == [("stdout", "out 0"), ("stderr", "err 0"), ("stdout", "out 1"),
                       ("stderr", "err 1"), ("stdout", "out 2"), ("stderr", "err 2")]  # fmt: skip
    assert got[6][0] == "html" and "col" in got[6][1], got
    assert got[7:] == [("stdout", "after")]


def test_a_matplotlib_figure_comes_back_as_an_image(notebook):
    cell = notebook.run(
        "%%orch run\n"
        "import matplotlib.pyplot as plt\n"
        "plt.plot([1, 2, 3], [1, 4, 9])\n"
        "plt.title('squares')\n"
        "print('plotted')\n"
    )
    got = lines(cell)
    assert got[0] == ("stdout", "plotted")
    images = [o for o in cell.outputs if o["output_type"] == "display_data" and "image/png" in o["data"]]
    assert len(images) == 1
    import base64

    assert base64.b64decode(images[0]["data"]["image/png"])[:8] == b"\x89PNG\r\n\x1a\n"


def test_interrupting_the_kernel_cancels_the_remote_task(notebook, orch, tmp_path):
    import os
    import signal
    import threading
    import time

    gate = tmp_path / "started"
    pid = int(text(notebook.run("import os; print(os.getpid())")))

    def interrupt_once_running():
        deadline = time.monotonic() + 60
        while not gate.exists() and time.monotonic() < deadline:
            time.sleep(0.02)  # the remote cell writes the gate; nothing to subscribe to here
        os.kill(pid, signal.SIGINT)  # what the notebook's stop button does

    threading.Thread(target=interrupt_once_running, daemon=True).start()
    cell = notebook.run(
        f"%%orch run --name sleeper\nimport pathlib, time\npathlib.Path({str(gate)!r}).touch()\ntime.sleep(120)\n"
    )
    assert error(cell)["ename"] == "KeyboardInterrupt"
    said = text(cell, "stderr")
    assert "interrupted; task" in said and "cancelled" in said
    task_id = said.split("task ")[1].split()[0]
    assert orch.api().get(f"/tasks/{task_id}")["state"] == "cancelled"


def test_async_returns_a_live_handle_and_result_binds_the_outputs(notebook):
    cell = notebook.run("%%orch run --async --as h\nimport time\ntime.sleep(0.3)\nz = 41 + 1\nz * 2")
    shown = result(cell)
    assert "application/vnd.jupyter.widget-view+json" in shown  # the live status view
    assert "task" in shown["text/plain"]
    check = notebook.run("print(_ is h, 'z' in dir())\nprint(h.result(), z)")
    assert text(check) == "True False\n84 42\n"
    line = status_line(notebook, shown)
    assert "succeeded" in line and "42" not in line.split("</span>")[0]


def test_an_input_that_cannot_be_pickled_is_named_before_anything_is_sent(notebook, orch):
    before = orch.api().get("/tasks", limit=1000)["tasks"]
    notebook.run("import threading\nlock = threading.Lock()")
    cell = notebook.run("%%orch run\nwith lock:\n    pass\n")
    said = text(cell, "stderr") + "".join(
        o.get("evalue", "") for o in cell.outputs if o["output_type"] == "error"
    )
    assert "cannot send 'lock' (a lock)" in said and "--in" in said
    assert len(orch.api().get("/tasks", limit=1000)["tasks"]) == len(before)


def test_bad_options_print_the_usage_line(notebook):
    for line, expected in (
        ("%%orch run --gpus abc", "argument --gpus: invalid int value: 'abc'"),
        ("%%orch run --bogus", "unrecognized arguments: --bogus"),
        ("%%orch launch", "unknown %%orch command 'launch'"),
    ):
        cell = notebook.run(f"{line}\nx = 1")
        said = text(cell, "stderr") + "".join(
            o.get("evalue", "") for o in cell.outputs if o["output_type"] == "error"
        )
        assert expected in said and "usage: %%orch run [--gpus N]" in said, said


def said(cell):
    return text(cell, "stderr") + "".join(
        o.get("evalue", "") + "\n".join(o.get("traceback", []))
        for o in cell.outputs
        if o["output_type"] == "error"
    )


def test_with_no_server_the_magic_says_how_to_start_one(tmp_path):
    from support.notebook import Notebook

    with Notebook(None, tmp_path, allow_errors=True) as nb:
        nb.run("%load_ext jupyter_orch")
        cell = nb.run("%%orch run\nx = 1")
    assert "no jupyter-orch server is reachable: start one with `jupyter orch serve`" in said(cell)
    assert len(said(cell).strip().splitlines()) == 1


def test_a_module_missing_on_the_worker_is_one_clear_sentence(notebook, tmp_path):
    (tmp_path / "kernel_only_mod.py").write_text("class Thing:\n    pass\n")
    notebook.run("import kernel_only_mod\nthing = kernel_only_mod.Thing()")
    cell = notebook.run("%%orch run\nr = repr(thing)")
    err = error(cell)
    assert err["ename"] == "TaskFailed"
    shown = "\n".join(err["traceback"])
    assert "module 'kernel_only_mod' is not installed on worker" in shown
    assert "pip install kernel_only_mod" in shown and "Traceback" not in shown


def test_a_remote_cell_fans_out_nested_tasks(notebook):
    cell = notebook.run(
        "%%orch run\n"
        "import jupyter_orch\n"
        "client = jupyter_orch.connect()\n"
        "squares = [f.result(60) for f in [client.submit(pow, i, 2) for i in range(4)]]\n"
    )
    assert not [o for o in cell.outputs if o["output_type"] == "error"], cell.outputs
    assert "stays on the worker" not in text(cell, "stderr")  # the client came back as a client
    assert text(notebook.run("print(squares, type(client).__name__)")) == "[0, 1, 4, 9] Client\n"
    # the notebook's own client, used in a remote cell, connects there with the task's token
    cell = notebook.run("%%orch run\ntwice = client.submit(pow, 3, 2).result(60) * 2")
    assert not [o for o in cell.outputs if o["output_type"] == "error"], cell.outputs
    assert text(notebook.run("print(twice)")) == "18\n"


def test_a_cell_no_worker_can_run_says_why_it_waits(notebook, orch):
    import os
    import signal
    import threading
    import time

    pid = int(text(notebook.run("import os; print(os.getpid())")))

    def interrupt_once_explained():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the server's verdict, read over its API
            pending = orch.api().get("/tasks", state="pending")["tasks"]
            if any(t.get("reason") and t["name"] == "needs-gpu" for t in pending):
                break
            time.sleep(0.05)
        os.kill(pid, signal.SIGINT)

    threading.Thread(target=interrupt_once_explained, daemon=True).start()
    cell = notebook.run("%%orch run --gpus 1 --name needs-gpu\nx = 1\n")
    err = text(cell, "stderr")
    assert "is waiting: no worker has" in err and "gpu" in err.lower()
    assert "interrupted; task" in err and "cancelled" in err


def test_the_magics_load_from_the_kernels_configuration(orch, tmp_path):
    from support.notebook import Notebook

    args = ["--InteractiveShellApp.extensions=jupyter_orch"]  # c.InteractiveShellApp.extensions
    with Notebook(orch, tmp_path, allow_errors=True, kernel_args=args) as nb:
        cell = nb.run("%%orch run\nanswer = 6 * 7\nanswer")
    assert result(cell)["text/plain"] == "42"


def test_the_options_shape_the_task(notebook, orch):
    notebook.run("w = 21")
    cell = notebook.run(
        "%%orch run --cpus 0.5 --memory 256Mi --name shaped --retries 2 --timeout 30 --in w --out w2\n"
        "w2 = w * 2\n"
        "unused = 1\n"
    )
    assert not [o for o in cell.outputs if o["output_type"] == "error"], cell.outputs
    assert text(notebook.run("print(w2, 'unused' in dir())")) == "42 False\n"
    task = next(t for t in orch.api().get("/tasks", limit=50)["tasks"] if t["name"] == "shaped")
    assert task["kind"] == "cell" and task["retries"] == 2 and task["timeout"] == 30
    assert task["resources"]["cpus"] == 0.5 and task["resources"]["memory"] == "256Mi"
    missing = notebook.run("%%orch run --in nowhere\nx = 1")
    assert "--in: nowhere is not defined here" in text(missing, "stderr")
