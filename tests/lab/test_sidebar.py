"""The Orchestrator sidebar in a real JupyterLab, driven as a user would in Chromium: its
views, a cell task submitted from a notebook, live logs, a workflow's DAG, cancel from the
UI, Run as job. Every wait is on something the page shows (Playwright's auto-waiting
``expect``); the tasks wait on files the test creates, never on time."""

from __future__ import annotations

import re
import sys
import textwrap
import uuid

import nbformat
import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.timeout(300)

LONG = 60_000  # ms: a kernel start plus a task on a worker, on a busy machine


def write_notebook(path, *cells, params=None):
    nb = nbformat.v4.new_notebook()
    for source in cells:
        nb.cells.append(nbformat.v4.new_code_cell(textwrap.dedent(source).strip()))
    if params is not None:
        cell = nbformat.v4.new_code_cell(params)
        cell.metadata["tags"] = ["parameters"]
        nb.cells.insert(0, cell)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def test_the_sidebar_shows_its_views_the_connection_and_the_workers(ui):
    for section in ("runs", "dag", "workers", "logs"):
        expect(ui.section(section)).to_be_attached()
    expect(ui.sidebar.locator('[data-testid="orch-connection"]')).to_have_attribute("data-state", "open")
    workers = ui.section("workers").locator('[data-testid="orch-worker"]')
    expect(workers).to_have_count(2)
    names = {w["name"] for w in ui.server.api().get("/workers")["workers"] if w["state"] == "connected"}
    for name in names:
        expect(workers.and_(ui.page.locator(f'[data-name="{name}"]'))).to_have_count(1)
    expect(ui.section("workers").locator('[data-testid="orch-empty-workers"]')).to_have_count(0)
    ui.screenshot("overview")
    ui.screenshot("workers", ui.section("workers"))


def test_a_cell_task_from_a_notebook_appears_streams_its_log_and_finishes(ui):
    name = unique("ui-cell")
    go = ui.server.root / f"{name}.go"
    write_notebook(
        ui.server.root / f"{name}.ipynb",
        "%load_ext jupyter_orch",
        f"""
        %%orch run --name {name}
        import os, time
        print('waiting for go', flush=True)
        while not os.path.exists({str(go)!r}):
            time.sleep(0.05)
        print('\\x1b[32mgot go\\x1b[0m', flush=True)
        answer = 42
        """,
        "print('answer is', answer)",
    )
    page = ui.page
    ui.page.goto(ui.url(f"lab/tree/{name}.ipynb"))
    expect(page.locator("#jupyterlab-splash")).to_have_count(0, timeout=LONG)
    notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")
    expect(notebook.locator(".jp-Cell")).to_have_count(3, timeout=LONG)
    ui.show_sidebar()
    # the user runs every cell from the Run menu
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile("^Run All Cells$")).click()

    row = ui.rows(name)
    expect(row).to_have_count(1, timeout=LONG)
    expect(row).to_have_attribute("data-kind", "task")
    expect(row).to_have_attribute("data-state", "running", timeout=LONG)
    task_id = row.get_attribute("data-id")
    assert task_id and ui.server.api().get(f"/tasks/{task_id}")["name"] == name

    row.click()
    expect(row).to_have_class(re.compile(r"\bjp-mod-selected\b"))
    lines = ui.section("logs").locator('[data-testid="orch-log-line"]')
    expect(lines.filter(has_text="waiting for go")).to_have_count(1, timeout=LONG)
    expect(lines.filter(has_text="got go")).to_have_count(0)  # the task is still waiting
    expect(row).to_have_attribute("data-state", "running")
    ui.screenshot("running-task")

    go.write_text("go")  # the next line arrives live, then the task ends
    expect(lines.filter(has_text="got go")).to_have_count(1, timeout=LONG)
    expect(row).to_have_attribute("data-state", "succeeded", timeout=LONG)
    ansi = lines.filter(has_text="got go")
    expect(ansi).not_to_contain_text("[32m")  # colours rendered, not printed
    ui.screenshot("logs", ui.section("logs"))
    with page.expect_download() as info:  # the whole log, as text
        ui.section("logs").locator('[data-testid="orch-log-download"]').click()
    saved = info.value.path().read_text()
    assert "waiting for go" in saved and "got go" in saved
    # the variable it assigned came back into the kernel
    last = notebook.locator(".jp-Cell").nth(2).locator(".jp-OutputArea-output")
    expect(last).to_contain_text("answer is 42", timeout=LONG)
    ui.screenshot("runs", ui.section("runs"))


def test_a_workflow_runs_dag_nodes_change_state_live(ui):
    name = unique("ui-flow")
    go = ui.server.root / f"{name}.go"
    source = textwrap.dedent(
        f"""
        name: {name}
        tasks:
          - name: prepare
            shell: echo prepared
          - name: train
            depends: [prepare]
            shell: 'while [ ! -e {go} ]; do sleep 0.05; done; echo trained'
          - name: report
            depends: [train]
            shell: echo reported
        """
    )
    run = ui.server.api().post("/workflows", {"source": source, "filename": f"{name}.yaml"})
    row = ui.row("workflow", run["id"])
    expect(row).to_be_visible(timeout=LONG)
    row.click()
    nodes = ui.section("dag").locator('[data-testid="orch-dag-node"]')
    expect(nodes).to_have_count(3)
    node = {s: nodes.and_(ui.page.locator(f'[data-step="{s}"]')) for s in ("prepare", "train", "report")}
    expect(node["prepare"]).to_have_attribute("data-state", "succeeded", timeout=LONG)
    expect(node["train"]).to_have_attribute("data-state", "running", timeout=LONG)
    expect(node["report"]).not_to_have_attribute("data-state", re.compile("succeeded|running"))
    running_colour = colour(node["train"])
    assert running_colour != colour(node["prepare"])  # states read at a glance
    ui.screenshot("dag-running", ui.section("dag"))

    go.write_text("go")
    expect(node["train"]).to_have_attribute("data-state", "succeeded", timeout=LONG)
    expect(node["report"]).to_have_attribute("data-state", "succeeded", timeout=LONG)
    assert colour(node["train"]) != running_colour  # the same node, a new colour
    assert colour(node["train"]) == colour(node["prepare"])
    expect(row).to_have_attribute("data-state", "succeeded", timeout=LONG)
    ui.screenshot("dag", ui.section("dag"))


def colour(node) -> str:
    """What the node's shape is painted with (its fill and stroke)."""
    return node.evaluate(
        "g => { const el = g.querySelector('rect') || g; const s = getComputedStyle(el);"
        " return s.fill + ' ' + s.stroke; }"
    )


def test_cancel_a_running_task_from_its_row(ui):
    name = unique("ui-cancel")
    gate = ui.server.root / f"{name}.started"
    task = ui.server.api().post(
        "/tasks",
        {
            "kind": "shell",
            "name": name,
            "command": f"touch {gate}; sleep 600",
            "resources": {"memory": "64Mi"},
        },
    )
    row = ui.row("task", task["id"])
    expect(row).to_have_attribute("data-state", "running", timeout=LONG)
    ui.screenshot("cancel-before", row)
    runs = ui.sidebar.locator('[data-testid="orch-run-row"]')
    ui.sidebar.locator('[data-testid="orch-filter-text"]').fill(name)  # the user finds it by name
    expect(runs).to_have_count(1)
    row.locator('[data-testid="orch-cancel"]').click()
    expect(row).to_have_attribute("data-state", "cancelled", timeout=LONG)
    expect(row.locator('[data-testid="orch-cancel"]')).to_have_count(0)
    ui.sidebar.locator('[data-testid="orch-filter-text"]').fill("")
    ui.sidebar.locator('[data-testid="orch-filter-state"]').select_option("cancelled")
    expect(row).to_be_visible()
    # the filter is applied on the next render: wait for it, not for a row that was there already
    expect(ui.sidebar.locator('[data-testid="orch-run-row"]:not([data-state="cancelled"])')).to_have_count(0)
    for state in runs.evaluate_all("rows => rows.map(r => r.dataset.state)"):
        assert state == "cancelled"
    ui.sidebar.locator('[data-testid="orch-filter-state"]').select_option("succeeded")
    expect(row).to_have_count(0)
    assert ui.server.api().get(f"/tasks/{task['id']}")["state"] == "cancelled"


def test_run_as_job_from_the_file_browser_submits_the_notebook_and_selects_its_run(ui):
    name = unique("ui-job")
    write_notebook(
        ui.server.root / "jobs" / f"{name}.ipynb",
        "import jupyter_orch\njupyter_orch.output('score', lr * epochs)\nprint('score', lr * epochs)",
        params="lr = 0.1  # learning rate\nepochs = 2",
    )
    page = ui.page
    # the sidebar has the left area: the user switches to the file browser and opens jobs/
    page.locator('.jp-SideBar .lm-TabBar-tab[data-id="filebrowser"]').click()
    expect(page.locator("#filebrowser")).to_be_visible()
    listing = page.locator("#filebrowser .jp-DirListing-content")
    listing.locator(".jp-DirListing-itemText").get_by_text("jobs", exact=True).dblclick()
    item = listing.locator(".jp-DirListing-item", has_text=f"{name}.ipynb")
    item.click(button="right")
    page.locator('.lm-Menu-item[data-command="jupyter-orch:run-as-job"]').click()

    dialog = page.locator(".jp-Dialog")
    lr = dialog.locator('[data-testid="orch-job-param-lr"]')
    expect(lr).to_have_value("0.1")  # pre-filled from the parameters cell
    expect(dialog.locator('[data-testid="orch-job-param-epochs"]')).to_have_value("2")
    for field in ("gpus", "cpus", "memory", "image"):
        expect(dialog.locator(f'[data-testid="orch-job-{field}"]')).to_be_visible()
    lr.fill("0.5")
    dialog.locator('[data-testid="orch-job-memory"]').fill("256Mi")
    ui.screenshot("run-as-job", dialog.locator(".jp-Dialog-content"))
    dialog.locator("button", has_text=re.compile("^Submit$")).click()
    expect(dialog).to_have_count(0)
    expect(ui.sidebar).to_be_visible()  # the sidebar comes forward by itself, its new run selected

    selected = ui.sidebar.locator('[data-testid="orch-run-row"].jp-mod-selected')
    expect(selected).to_have_count(1, timeout=LONG)
    expect(selected).to_contain_text(f"{name}.ipynb")
    expect(selected).to_have_attribute("data-kind", "task")
    expect(selected).to_have_attribute("data-state", "succeeded", timeout=LONG)
    task_id = selected.get_attribute("data-id")
    assert ui.server.api().get(f"/tasks/{task_id}/outputs")["outputs"] == {"score": 1.0}
    lines = ui.section("logs").locator('[data-testid="orch-log-line"]')
    expect(lines.first).to_be_visible(timeout=LONG)  # the selected run's log is the one shown
    ui.screenshot("run-as-job-selected")


def test_run_as_job_from_the_notebook_toolbar(ui):
    name = unique("ui-toolbar")
    write_notebook(
        ui.server.root / f"{name}.ipynb",
        "import jupyter_orch\njupyter_orch.output('greeting', f'hello {who}')",
        params="who = 'world'",
    )
    page = ui.page
    page.goto(ui.url(f"lab/tree/{name}.ipynb"))
    expect(page.locator("#jupyterlab-splash")).to_have_count(0, timeout=LONG)
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    panel.locator(".jp-Toolbar").get_by_text("Run as job").click()
    dialog = page.locator(".jp-Dialog")
    who = dialog.locator('[data-testid="orch-job-param-who"]')
    expect(who).to_have_value("world")
    who.fill("lab")
    dialog.locator("button", has_text=re.compile("^Submit$")).click()
    expect(dialog).to_have_count(0)
    expect(ui.sidebar).to_be_visible()
    selected = ui.sidebar.locator('[data-testid="orch-run-row"].jp-mod-selected')
    expect(selected).to_contain_text(f"{name}.ipynb", timeout=LONG)
    expect(selected).to_have_attribute("data-state", "succeeded", timeout=LONG)
    outputs = ui.server.api().get(f"/tasks/{selected.get_attribute('data-id')}/outputs")["outputs"]
    assert outputs == {"greeting": "hello lab"}


def test_a_tasks_checkpoints_show_under_its_log_header(ui):
    name = unique("ui-ckpt")
    script = (
        "import tempfile, os\n"
        "from jupyter_orch import checkpoint\n"
        "path = os.path.join(tempfile.mkdtemp(), 'w.bin')\n"
        "open(path, 'wb').write(b'x' * 2048)\n"
        "checkpoint.save(path, {'epoch': 1}, step=5)\n"
        "checkpoint.save(path, {'epoch': 2}, step=10)\n"
        "print('saved')\n"
    )
    command = f"{sys.executable} - <<'EOF'\n{script}EOF\n"
    task = ui.server.api().post("/tasks", {"kind": "shell", "name": name, "command": command})
    ui.server.wait_task(task["id"], "succeeded", "failed")
    assert ui.server.api().get(f"/tasks/{task['id']}")["state"] == "succeeded"
    ui.open()
    ui.show_sidebar()
    row = ui.rows(name)
    expect(row).to_have_attribute("data-state", "succeeded", timeout=LONG)
    row.click()
    shown = ui.section("logs").locator('[data-testid="orch-checkpoints"]')
    expect(shown).to_have_text("2 checkpoints · latest: step 10, attempt 1, 2.0 KiB", timeout=LONG)
    assert '{"epoch":2}' in (shown.get_attribute("title") or "")
    # a task without any shows no line
    other = ui.server.api().post(
        "/tasks", {"kind": "shell", "name": unique("ui-none"), "command": "echo none"}
    )
    ui.server.wait_task(other["id"], "succeeded")
    none_row = ui.rows(other["name"])
    expect(none_row).to_have_count(1, timeout=LONG)
    none_row.click()
    expect(ui.section("logs").locator('[data-testid="orch-log-line"]').filter(has_text="none")).to_have_count(
        1, timeout=LONG
    )
    expect(shown).to_be_hidden()
