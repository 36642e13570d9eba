"""The notebook views of client objects: the client draws nothing itself (a registry of
views, plain text when none is registered); the kernel package registers its ipywidgets
views; a notebook that only imports ``jupyter_orch`` (no ``%load_ext``) still shows them."""

from __future__ import annotations

import io
import subprocess
import sys
from typing import Any

from jupyter_orch.client import display
from jupyter_orch.client.futures import Future
from jupyter_orch.client.progress import ProgressBar

from support.notebook import Notebook, result, status_line

WIDGET = "application/vnd.jupyter.widget-view+json"


def test_the_client_imports_no_notebook_code():
    code = (
        "import sys, jupyter_orch.client, jupyter_orch.client.progress, jupyter_orch.client.runs\n"
        "import jupyter_orch.client.render, jupyter_orch.client.display\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('IPython', 'ipywidgets')"
        " or m.split('.')[:2] in (['jupyter_orch', 'kernel'], ['jupyter_orch', 'cli'])]\n"
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_without_a_registered_view_the_client_falls_back_to_text(monkeypatch):
    monkeypatch.setattr(display, "_factories", {})
    monkeypatch.setattr(display, "in_notebook", lambda: True)
    fut = Future(None, "01aaaaaaaaaaaaaaaaaaaaaaaa", "job")  # type: ignore[arg-type]
    fut._set_done({"id": fut.id, "state": "succeeded"})
    assert fut._repr_mimebundle_() == {"text/plain": repr(fut)}
    stream = io.StringIO()
    bar = ProgressBar(2, widget=True, stream=stream)
    assert bar.widget is None
    bar.advance()
    assert bar._repr_mimebundle_() == {"text/plain": bar.summary()}


def test_the_kernel_registers_its_views(monkeypatch):
    monkeypatch.setattr(display, "_factories", {})
    from jupyter_orch.kernel import displays

    monkeypatch.setattr(displays, "_installed", False)
    displays.install()
    displays.install()  # idempotent
    assert display.lookup("future") is displays.future_view
    assert display.lookup("run") is displays.run_view
    bar = ProgressBar(2, widget=True)
    state = bar.widget.children[0]
    bar.advance(failed=True)
    bar.advance()
    assert state.value == 2 and state.bar_style == "danger"
    assert bar.widget.children[1].value == bar.summary()


def test_a_plain_import_in_a_notebook_shows_widgets(orch: Any, tmp_path):
    with Notebook(orch, tmp_path, allow_errors=True) as nb:
        cell = nb.run(
            "from jupyter_orch import connect, gather\nf = connect().submit(sum, [1, 2])\nf.result(60)\nf"
        )
        assert "succeeded" in status_line(nb, result(cell))
        nb.run("gather([connect().submit(sum, [i]) for i in range(3)])")
        bars = [s for s in nb.client.widget_state.values() if s.get("_model_name") == "IntProgressModel"]
        assert bars and bars[-1]["value"] == bars[-1]["max"] == 3
