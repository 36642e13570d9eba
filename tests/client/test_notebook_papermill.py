"""Notebook tasks end as papermill says: every notebook of papermill's own test suite
(``papermill/tests/notebooks``, shipped with the installed papermill) is run with
``papermill.execute_notebook`` (with the parameters and working directory papermill's tests
give it) and as a notebook task on a real server, and the verdicts must agree: success or
failure, the same code cells executed, and a failure naming papermill's failing cell.
Papermill treats ``sys.exit()``, ``sys.exit(0)`` and ``raise SystemExit`` as a successful
early stop and any other exit code as a failure; so must we (issue 12, item 8).

The papermill runs happen once per session, in one subprocess started before the server,
so they overlap with its start-up."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import papermill
import pytest
from jupyter_client.kernelspec import KernelSpecManager

from jupyter_orch.client.notebooks import NotebookFailed

NOTEBOOKS = Path(papermill.__file__).parent / "tests" / "notebooks"
MARKER = "papermill-error-cell-tag"  # papermill's banner cells of a failed run

# name -> how papermill's own tests execute it (tests/test_execute.py; its tests pass
# kernel_name="python3" to every run): parameters, and "check_file" for a working directory
# holding check.txt (TestCWD); "report_mode" only hides inputs (we have no such option)
EXECUTED: dict[str, dict[str, Any]] = {
    "simple_execute.ipynb": {"parameters": {"msg": "Hello"}},
    "no_parameters.ipynb": {"parameters": {"msg": "Hello"}},
    "broken1.ipynb": {},
    "broken2.ipynb": {},
    "report_mode_test.ipynb": {"parameters": {"a": 0}, "report_mode": True},
    "read_check.ipynb": {"check_file": True},
    "sysexit.ipynb": {},
    "sysexit0.ipynb": {},
    "sysexit1.ipynb": {},
    "systemexit.ipynb": {},
    "line_magic_error.ipynb": {},
    "nb_version_4.4.ipynb": {"parameters": {"var": "It works"}},
    "blank-vscode.ipynb": {"parameters": {"var": "It works"}},
}
# in the folder, only read or inspected by papermill's tests (never executed there), and
# cheap and self-contained: run as they are, for more cases of the same verdict
ALSO_RUN: dict[str, dict[str, Any]] = {
    "broken.ipynb": {},  # Python 2 syntax: a failure
    "complex_parameters.ipynb": {},  # test_inspect.py
    "result_no_exec.ipynb": {},
    "test_autosave.ipynb": {},  # test_autosave.py (kernelspec "python")
    "test_logging.ipynb": {},  # test_clientwrap.py; imports ggplot, missing here: a failure
    "test_notebooknode_io.ipynb": {},  # test_iorw.py
}
HAVE_R = "r" in KernelSpecManager().find_kernel_specs()
# every other notebook of the folder, and why it is not run here
SKIPPED: dict[str, str] = {
    "gcs/gcs_in/gcs-simple_notebook.ipynb": "read from Google Cloud Storage in papermill's tests (test_gcs.py mocks it)",
    "s3/s3_in/s3-simple_notebook.ipynb": "read from S3 in papermill's tests (test_s3.py mocks it)",
    "keyboard_interrupt.ipynb": "papermill's tests only prepare it (prepare_only=True): it sleeps 60 s to be interrupted by hand",
    "binder.ipynb": "never executed by papermill's tests: it runs `python -m papermill` from a source checkout (cd ../../../)",
}
if not HAVE_R:
    SKIPPED["notimplemented_translator.ipynb"] = "needs the 'r' kernel (IRkernel), not installed here"
else:
    ALSO_RUN["notimplemented_translator.ipynb"] = {}
CASES = {**EXECUTED, **ALSO_RUN}

PAPERMILL_RUNS = textwrap.dedent(
    """
    import json, os, sys, tempfile
    import nbformat, papermill
    from papermill.exceptions import PapermillExecutionError

    cases, out_path = json.loads(sys.argv[1]), sys.argv[2]
    verdicts = {}
    for case in cases:
        output = os.path.join(tempfile.mkdtemp(), "out.ipynb")
        verdict = {"ok": True}
        try:
            papermill.execute_notebook(
                case["path"], output, case["parameters"], kernel_name="python3", cwd=case["cwd"],
                report_mode=case["report_mode"], progress_bar=False,
            )
        except PapermillExecutionError as exc:
            verdict = {"ok": False, "cell_index": exc.cell_index, "ename": exc.ename, "evalue": exc.evalue}
        except Exception as exc:
            verdict = {"ok": False, "error": repr(exc)}
        if os.path.exists(output):
            nb = nbformat.read(output, as_version=4)
            verdict["cells"] = [c for c in nb.cells if "papermill-error-cell-tag" not in c.metadata.get("tags", [])]
        verdicts[case["name"]] = verdict
    with open(out_path, "w") as f:
        json.dump(verdicts, f)
    """
)


class PapermillRuns:
    """papermill's verdicts, computed in a subprocess started at once and read when first needed."""

    def __init__(self, root: Path) -> None:
        self.out = root / "verdicts.json"
        self.dirs: dict[str, str] = {}
        cases = []
        for name, how in CASES.items():
            cwd = root / "cwd" / name
            cwd.mkdir(parents=True)
            if how.get("check_file"):
                (cwd / "check.txt").write_text("exists")
            self.dirs[name] = str(cwd)
            cases.append(
                {
                    "name": name,
                    "path": str(NOTEBOOKS / name),
                    "parameters": how.get("parameters") or {},
                    "cwd": str(cwd),
                    "report_mode": bool(how.get("report_mode")),
                }
            )
        self.proc = subprocess.Popen(
            [sys.executable, "-c", PAPERMILL_RUNS, json.dumps(cases), str(self.out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._verdicts: dict[str, Any] | None = None

    def verdict(self, name: str) -> dict[str, Any]:
        if self._verdicts is None:
            output, _ = self.proc.communicate(timeout=600)
            assert self.proc.returncode == 0, output
            self._verdicts = json.loads(self.out.read_text())
        return self._verdicts[name]  # type: ignore[no-any-return]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


@pytest.fixture(scope="session")
def papermill_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PapermillRuns]:
    runs = PapermillRuns(tmp_path_factory.mktemp("papermill"))
    yield runs
    runs.close()


def executed(cells: list[Any]) -> list[bool]:
    """Which code cells ran (papermill's banner cells left out)."""
    return [
        c.get("execution_count") is not None
        for c in cells
        if c["cell_type"] == "code" and MARKER not in (c.get("metadata") or {}).get("tags", [])
    ]


def test_every_notebook_of_papermills_tests_is_run_here_or_skipped_with_its_reason() -> None:
    found = {str(p.relative_to(NOTEBOOKS)) for p in NOTEBOOKS.rglob("*.ipynb")}
    assert found, f"papermill ships no test notebooks at {NOTEBOOKS}"
    assert found == set(CASES) | set(SKIPPED)
    assert not set(CASES) & set(SKIPPED)


@pytest.mark.parametrize(
    "name",
    [*CASES, *(pytest.param(name, marks=pytest.mark.skip(reason=why)) for name, why in SKIPPED.items())],
)
def test_a_notebook_task_ends_as_papermill_says(papermill_runs: PapermillRuns, orch: Any, name: str) -> None:
    how = CASES[name]
    env = {"ORCH_RUN_DIR": papermill_runs.dirs[name]} if how.get("check_file") else None
    fut = orch.client().run_notebook(str(NOTEBOOKS / name), how.get("parameters"), env=env)
    try:
        ours: Any = fut.result(120).notebook
        error = None
    except NotebookFailed as exc:
        ours, error = exc.notebook, exc
    theirs = papermill_runs.verdict(name)
    assert (error is None) == theirs["ok"], (name, str(error), theirs)
    assert executed(ours.cells) == executed(theirs["cells"])  # the same cells ran (and no others)
    if error is None:
        return
    assert "cell_index" in theirs, theirs  # papermill failed in a cell, not before running
    code = [i for i, c in enumerate(theirs["cells"]) if c["cell_type"] == "code"]
    failing = code.index(theirs["cell_index"]) + 1
    assert f"cell {failing} of {len(code)} failed: " in str(error)
    if theirs["ename"] != "CellExecutionError":  # papermill's name for an error without an error output
        assert f"failed: {theirs['ename']}" in str(error)
    # papermill's banner at the top, its anchor just above the failing cell
    assert MARKER in ours.cells[0].metadata["tags"]
    anchor = [i for i, c in enumerate(ours.cells) if MARKER in c.metadata.get("tags", [])][1]
    assert ours.cells[anchor + 1].get("execution_count") is not None
    assert ours.cells[anchor + 1].metadata["papermill"]["exception"] is True


def early_stop_notebook(path: Path, code: str = "0") -> Path:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("limit = 10")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        nbformat.v4.new_code_cell("import sys\nimport jupyter_orch"),
        params,
        nbformat.v4.new_code_cell("jupyter_orch.output('seen', limit)"),
        nbformat.v4.new_code_cell(f"if limit < 5:\n    sys.exit({code})"),
        nbformat.v4.new_code_cell("jupyter_orch.output('late', 1)\nraise RuntimeError('ran past the exit')"),
    ]
    # a stale output of an earlier run in the cell after the exit: not kept, not an output
    nb.cells[4].outputs = [
        nbformat.v4.new_output(
            "display_data", {"application/vnd.jupyter-orch.output+json": {"name": "late", "value": 0}}
        )
    ]
    nb.cells[4].execution_count = 7
    nbformat.write(nb, path)
    return path


def test_a_notebook_that_stops_itself_succeeds_and_says_where(orch: Any, tmp_path: Path) -> None:
    client = orch.client()
    path = early_stop_notebook(tmp_path / "gate.ipynb")
    fut = client.run_notebook(str(path), {"limit": 1})
    result = fut.result(120)
    assert result.outputs == {"seen": 1}  # the stale output of the cell that did not run is gone
    cells = result.notebook.cells
    assert [c.execution_count for c in cells] == [1, 2, 3, 4, 5, None]  # papermill's cell injected
    assert cells[4].outputs[0]["ename"] == "SystemExit" and cells[4].outputs[0]["evalue"] == "0"
    assert cells[5].outputs == []
    assert not any(MARKER in c.metadata.get("tags", []) for c in cells)  # no failure banner
    logs = fut.logs().splitlines()
    assert logs[-1] == (
        "[jupyter-orch] the notebook stopped itself at cell 5 of 6 (SystemExit(0)); later cells were not run"
    )
    assert "[jupyter-orch] cell 6 of 6" not in logs
    view = orch.api().get(f"/tasks/{fut.id}")
    assert view["state"] == "succeeded"
    # the same notebook running past the exit fails in its last cell
    with pytest.raises(NotebookFailed, match="cell 6 of 6 failed: RuntimeError: ran past the exit"):
        client.run_notebook(str(path), {"limit": 10}).result(120)


def test_a_non_zero_exit_fails_naming_the_cell(orch: Any, tmp_path: Path) -> None:
    path = early_stop_notebook(tmp_path / "gate.ipynb", code="'no data for this day'")
    with pytest.raises(NotebookFailed, match="cell 5 of 6 failed: SystemExit: no data for this day") as info:
        orch.client().run_notebook(str(path), {"limit": 1}).result(120)
    assert info.value.notebook.cells[0].metadata["tags"] == [MARKER]


def test_a_cell_tagged_raises_exception_may_raise(orch: Any, tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("1 / 0"),
        nbformat.v4.new_code_cell("import jupyter_orch\njupyter_orch.output('after', 1)"),
    ]
    nb.cells[0].metadata["tags"] = ["raises-exception"]  # nbclient's tag for an expected error
    nbformat.write(nb, tmp_path / "expected.ipynb")
    result = orch.client().run_notebook(str(tmp_path / "expected.ipynb")).result(120)
    assert result.outputs == {"after": 1}
    assert result.notebook.cells[0].outputs[0]["ename"] == "ZeroDivisionError"


def test_a_workflow_step_that_stops_itself_lets_the_next_step_run(orch: Any, tmp_path: Path) -> None:
    early_stop_notebook(tmp_path / "gate.ipynb")
    after = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("seen = None")
    params.metadata["tags"] = ["parameters"]
    after.cells = [params, nbformat.v4.new_code_cell("import jupyter_orch\njupyter_orch.output('got', seen)")]
    nbformat.write(after, tmp_path / "after.ipynb")
    (tmp_path / "flow.yaml").write_text(
        textwrap.dedent(
            """
            name: early-stop
            tasks:
              - name: gate
                notebook: gate.ipynb
                parameters: {limit: 2}
              - name: after
                depends: [gate]
                notebook: after.ipynb
                parameters: {seen: "{{ tasks.gate.outputs.seen }}"}
            """
        )
    )
    run = orch.client().submit_workflow(tmp_path / "flow.yaml")
    final = run.wait(180)
    assert final["state"] == "succeeded", [(s["name"], s["state"], s.get("error")) for s in final["steps"]]
    assert run.outputs("gate") == {"seen": 2}
    assert run.outputs("after") == {"got": 2}
