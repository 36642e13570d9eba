"""Run as job over the API: a notebook of the server's own files (its root_dir), its papermill
parameters listed with defaults and types, and the notebook submitted as a task that runs on
a real local worker with the given parameters."""

from __future__ import annotations

import jsonschema
import nbformat
import pytest

from jupyter_orch.core.errors import NotFound, SpecError
from jupyter_orch.server import openapi

PARAMS = (
    "lr = 0.01  # learning rate\n"
    "epochs: int = 1\n"
    "name = 'default'\n"
    "flags = []\n"
    "verbose = False\n"
    "workdir = os.getcwd()"
)


def write_notebook(path, params=PARAMS, kernelspec=True):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(params)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [
        nbformat.v4.new_code_cell("import os\nimport jupyter_orch"),
        cell,
        nbformat.v4.new_code_cell(
            "jupyter_orch.output('score', lr * epochs)\njupyter_orch.output('label', name.upper())\n"
            "jupyter_orch.output('types', [type(v).__name__ for v in (lr, epochs, name, flags, verbose)])"
        ),
    ]
    if kernelspec:
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def check(instance, name):
    """``instance`` valid against the OpenAPI document's schema ``name``."""
    schema = {"$ref": f"#/components/schemas/{name}", "components": openapi.document()["components"]}
    jsonschema.validate(instance, schema, cls=jsonschema.Draft202012Validator)


def inspect(api, path):
    return api.request("GET", "/notebooks/parameters", query={"path": path})


@pytest.fixture(scope="module")
def notebook(orch):
    """``jobs/train.ipynb`` under the server's root directory (OrchServer serves its own root)."""
    write_notebook(orch.root / "jobs" / "train.ipynb")
    return "jobs/train.ipynb"


def test_parameters_are_listed_with_defaults_types_and_help(orch, notebook):
    answer = inspect(orch.api(), notebook)
    check(answer, "NotebookParameters")
    assert answer["path"] == notebook and answer["kernel"] == "python3"
    assert answer["parameters"] == [
        {"name": "lr", "default": 0.01, "type": "float", "help": "learning rate"},
        {"name": "epochs", "default": 1, "type": "int", "help": ""},
        {"name": "name", "default": "default", "type": "str", "help": ""},
        {"name": "flags", "default": [], "type": "list", "help": ""},
        {"name": "verbose", "default": False, "type": "bool", "help": ""},
        {"name": "workdir", "default": "os.getcwd()", "type": None, "help": ""},  # not a literal
    ]


def test_a_notebook_without_a_parameters_cell_or_kernelspec_has_none(orch):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    nbformat.write(nb, orch.root / "plain.ipynb")
    assert inspect(orch.api(), "plain.ipynb") == {
        "path": "plain.ipynb",
        "kernel": None,
        "parameters": [],
    }
    write_notebook(orch.root / "nokernel.ipynb", "a = 2", kernelspec=False)
    params = inspect(orch.api(), "nokernel.ipynb")["parameters"]
    assert params == [{"name": "a", "default": 2, "type": "int", "help": ""}]


def test_bad_paths_are_refused(orch, notebook):
    api = orch.api()
    with pytest.raises(NotFound, match="no notebook at jobs/missing.ipynb"):
        inspect(api, "jobs/missing.ipynb")
    (orch.root.parent / "outside.ipynb").write_text("{}")
    link = orch.root / "link.ipynb"
    if not link.is_symlink():
        link.symlink_to(orch.root.parent / "outside.ipynb")  # a link out of the root counts as out
    for outside in ("../outside.ipynb", "jobs/../../outside.ipynb", "link.ipynb"):
        with pytest.raises(SpecError) as info:
            inspect(api, outside)
        assert info.value.field == "path" and "outside the Jupyter server's root" in info.value.message
    with pytest.raises(SpecError) as info:
        api.request("GET", "/notebooks/parameters")
    assert info.value.field == "path"
    (orch.root / "broken.ipynb").write_text("not json")
    with pytest.raises(SpecError, match="not a readable notebook") as info:
        inspect(api, "broken.ipynb")
    assert info.value.field == "path"
    with pytest.raises(NotFound):
        api.post("/notebooks/run", {"path": "jobs/missing.ipynb"})
    with pytest.raises(SpecError) as info:
        api.post("/notebooks/run", {"path": "../outside.ipynb"})
    assert info.value.field == "path"


def test_run_as_job_runs_the_notebook_with_its_parameters(orch, notebook):
    api = orch.api()
    task = api.post(
        "/notebooks/run",
        {
            "path": notebook,
            # as a dialog sends them: text typed by the notebook's defaults, JSON values as they are
            "parameters": {"lr": "0.5", "epochs": 3, "name": "job", "flags": '["a"]', "verbose": "true"},
            "resources": {"gpus": 0, "cpus": 1, "memory": "256Mi"},
            "retries": 1,
            "timeout": 300,
        },
    )
    check(task, "Task")
    assert task["kind"] == "notebook" and task["name"] == "train.ipynb"
    assert task["state"] in ("pending", "scheduled", "running")
    assert task["retries"] == 1 and task["resources"]["gpus"] == 0
    assert task["metadata"] == {  # as client.run_notebook records it
        "notebook": str((orch.root / notebook).resolve()),
        "parameters": {"lr": 0.5, "epochs": 3, "name": "job", "flags": ["a"], "verbose": True},
    }
    orch.wait_task(task["id"], "succeeded", "failed", timeout=180)
    final = api.get(f"/tasks/{task['id']}")
    assert final["state"] == "succeeded", final.get("error")
    outputs = api.get(f"/tasks/{task['id']}/outputs")["outputs"]
    assert outputs == {"score": 1.5, "label": "JOB", "types": ["float", "int", "str", "list", "bool"]}


def test_run_as_job_names_the_task_and_keeps_defaults(orch, notebook):
    api = orch.api()
    task = api.post("/notebooks/run", {"path": notebook, "name": "nightly train"})
    assert task["name"] == "nightly train"
    orch.wait_task(task["id"], "succeeded", "failed", timeout=180)
    assert api.get(f"/tasks/{task['id']}/outputs")["outputs"]["score"] == 0.01


def test_bad_parameters_are_named(orch, notebook):
    api = orch.api()
    with pytest.raises(SpecError) as info:
        api.post("/notebooks/run", {"path": notebook, "parameters": {"epochs": "three"}})
    assert info.value.field == "parameters.epochs" and "int" in info.value.message
    with pytest.raises(SpecError) as info:
        api.post("/notebooks/run", {"path": notebook, "parameters": {"lr": [1]}})
    assert info.value.field == "parameters.lr"
    with pytest.raises(SpecError) as info:
        api.post("/notebooks/run", {"path": notebook, "parameters": {"batch": 32}})
    assert info.value.field == "parameters.batch"
    assert "lr" in info.value.message and "epochs" in info.value.message and "workdir" in info.value.message
    with pytest.raises(SpecError) as info:
        api.post("/notebooks/run", {"path": notebook, "resources": {"gpus": "two"}})
    assert info.value.field == "resources.gpus"
    with pytest.raises(SpecError) as info:
        api.post("/notebooks/run", {"path": notebook, "colour": "blue"})
    assert info.value.field == "colour"
    # a parameter whose default is not a literal takes any JSON value
    task = api.post(
        "/notebooks/run",
        {"path": notebook, "parameters": {"workdir": "/tmp"}, "image": "python:3.11", "priority": -5},
    )
    assert task["image"] == "python:3.11"  # local workers have no images: it waits, cancelled here
    api.post(f"/tasks/{task['id']}/cancel")


def test_a_nul_in_a_notebook_path_is_a_400_naming_it(orch, notebook):
    """Issue 12: a NUL in the path was a 500 (ValueError: embedded null byte)."""
    api = orch.api()
    for body in ({"path": "jobs/train\0.ipynb"}, {"path": "\0"}):
        with pytest.raises(SpecError) as info:
            api.post("/notebooks/run", body)
        assert info.value.field == "path" and "NUL" in info.value.message


def test_an_unreadable_notebook_is_named_without_quoting_the_file(orch):
    """The error says the file is no notebook, and does not echo its first bytes (a path
    under the root may name a secret, such as the orch data directory's API token file)."""
    (orch.root / "secret.ipynb").write_text("orch_SECRET-VALUE-0123456789")
    with pytest.raises(SpecError) as info:
        inspect(orch.api(), "secret.ipynb")
    assert info.value.field == "path" and "not a readable notebook" in info.value.message
    assert "SECRET" not in info.value.message


def test_labels_as_a_list_and_bad_resources_are_handled(orch, notebook):
    """``resources`` as the document says (the labels' list form included), each checked
    with the field named: ``labels: ["k=v"]`` was a 500, ``env: "x"`` too."""
    api = orch.api()
    task = api.post("/notebooks/run", {"path": notebook, "resources": {"labels": ["team=ml"], "cpus": "1"}})
    assert task["resources"]["labels"] == {"team": "ml"}
    api.post(f"/tasks/{task['id']}/cancel")
    for body, field in (
        ({"resources": {"labels": ["no-equals"]}}, "resources.labels"),
        ({"resources": {"gpus": 1.5}}, "resources.gpus"),
        ({"env": "x"}, "env"),
    ):
        with pytest.raises(SpecError) as info:
            api.post("/notebooks/run", {"path": notebook, **body})
        assert info.value.field == field, (body, info.value.message)
