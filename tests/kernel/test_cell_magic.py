"""``%%orch run`` in a real notebook: what goes to the worker, what comes back, what the
cell shows."""

from __future__ import annotations

from conftest import error, result, text


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
    assert "<orch In[" in tb and "line 3" in tb and "y = x / 0" in tb
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
