"""The experience in JupyterLab: a kernel started by a Jupyter server that has the
extension finds the orchestrator by itself, and the quickstart notebook runs."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from support.kernel import ServerKernel

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory):
    from support.orchserver import OrchServer

    server = OrchServer(tmp_path_factory.mktemp("lab"), full=True)
    try:
        server.start()
        server.wait_workers()
        yield server
    finally:
        server.cleanup()


def test_kernels_inherit_the_orchestrator_address_and_token(lab_server):
    kernel = ServerKernel(lab_server)
    try:
        out = kernel.execute(
            "import os; print(os.environ['JUPYTER_ORCH_URL']); print(os.environ['JUPYTER_ORCH_TOKEN'])"
        )
        assert out["error"] is None, out["error"]
        url, token = out["stdout"].split()
        assert url == lab_server.url and token == lab_server.token and token.startswith("orch_")
        # a token for this API, not the Jupyter server's own
        assert token != lab_server.jupyter_token
        out = kernel.execute(
            "import jupyter_orch\nprint(jupyter_orch.connect().submit(sum, [1, 2, 3]).result(60))"
        )
        assert out["error"] is None, out["error"]
        assert out["stdout"].strip() == "6"
    finally:
        kernel.close()


def test_the_quickstart_notebook_runs(lab_server):
    nb = nbformat.read(EXAMPLES / "quickstart.ipynb", as_version=4)
    kernel = ServerKernel(lab_server)
    try:
        outputs = []
        kernel.execute(
            f"import os; os.chdir({str(EXAMPLES)!r})"
        )  # as JupyterLab starts it: beside the notebook
        for cell in nb.cells:
            if cell.cell_type == "code":
                out = kernel.execute(cell.source)
                assert out["error"] is None, f"cell failed:\n{cell.source}\n{out['error']}"
                outputs.append(out)
    finally:
        kernel.close()
    text = "".join(o["stdout"] for o in outputs)
    assert "epoch 4: loss" in text
    assert "raised here: ZeroDivisionError('division by zero')" in text
    assert "in fragile" in text  # the remote traceback
    assert "running on" in text and "epoch 1: loss" in text  # the remote cell's own output, streamed
    assert "back in the notebook: [" in text  # its outputs, bound here
    assert "gathered: [0, 1, 4, 9, 16, 25, 36, 49]" in text
    assert "run succeeded - test accuracy: 0." in text  # the example pipeline, as a workflow run
    assert "model-C0.5.pkl" in text
