"""The Orchestrator dashboard (a main-area widget) in a real JupyterLab, driven in Chromium: opened
from the command palette, its GPU timeline shows a lane per GPU of the real local workers (two
GPUs each (of four) from the stand-in ``pynvml``, ``support/fakenvml``), tasks submitted through the SDK
appear as bars that grow while they run and change colour when they end, a hover shows a bar's
tooltip, a click opens its log in the sidebar; the queue shows a task waiting with its reason;
opening it again activates the same widget.

The timeline is a canvas: the test finds a bar through the visually hidden list the panel keeps
for screen readers (each item carries its bar's place in the canvas), moves the real mouse there
and reads the canvas's pixels for its colour. Every wait is on something the page shows; the
tasks wait on files the test creates. With ``ORCH_SCREENSHOTS`` set, screenshots go to
``docs/images/dashboard-*.png``."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import lab_server
from playwright.sync_api import expect

from support.orchserver import OrchServer

pytestmark = pytest.mark.timeout(300)

REPO = Path(__file__).resolve().parents[2]
DOCS_IMAGES = REPO / "docs" / "images"
FAKE_NVML = Path(__file__).resolve().parents[1] / "support" / "fakenvml"
DASHBOARD = "#jupyter-orch-dashboard"
LONG = 60_000  # ms: a task placed on a worker and started, on a busy machine


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrchServer]:
    """As tests/lab/conftest.py's, but each of the 2 local workers has 2 GPUs and 2 slots, and
    the page exposes the app (``window.jupyterapp``) so that the test can run commands."""
    args = ["--LocalProvider.slots_per_worker=2", "--LabApp.expose_app_in_browser=True"]
    env = {
        "PYTHONPATH": os.pathsep.join(p for p in (str(FAKE_NVML), os.environ.get("PYTHONPATH", "")) if p),
        "FAKE_GPUS": "4",  # shared out round-robin: two for each worker
    }
    with lab_server(tmp_path_factory.mktemp("dash-lab"), args, env) as server:
        yield server


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def shot(target: Any, name: str) -> None:
    """docs/images/dashboard-``name``.png, only with ORCH_SCREENSHOTS set."""
    if os.environ.get("ORCH_SCREENSHOTS"):
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        target.screenshot(path=str(DOCS_IMAGES / f"dashboard-{name}.png"), animations="disabled")


def open_from_palette(page: Any) -> Any:
    page.keyboard.press("Control+Shift+C")
    palette = page.locator(".lm-CommandPalette")
    expect(palette).to_be_visible()
    search = palette.locator("input")
    expect(search).to_be_focused()
    search.fill("open dashboard")
    item = palette.locator(".lm-CommandPalette-item", has_text="Orchestrator: open dashboard")
    expect(item).to_have_count(1)
    item.click()
    dashboard = page.locator(DASHBOARD)
    expect(dashboard).to_be_visible()
    return dashboard


def bar(dashboard: Any, task_id: str) -> Any:
    return dashboard.locator(f'[data-testid="orch-timeline-bar"][data-task="{task_id}"]')


def bar_box(dashboard: Any, task_id: str) -> dict[str, float]:
    """Where the task's bar is on the page (from the bars list: its place in the canvas)."""
    item = bar(dashboard, task_id).first
    canvas = dashboard.locator('[data-testid="orch-timeline-canvas"]').bounding_box()
    x, y, w, h = (float(item.get_attribute(f"data-{k}")) for k in "xywh")
    return {"x": canvas["x"] + x, "y": canvas["y"] + y, "w": w, "h": h}


def pixel(page: Any, dashboard: Any, task_id: str) -> list[int]:
    """The colour the canvas drew in the middle of the task's bar (RGBA)."""
    box = bar_box(dashboard, task_id)
    canvas = dashboard.locator('[data-testid="orch-timeline-canvas"]')
    origin = canvas.bounding_box()
    x = box["x"] - origin["x"] + min(box["w"] / 2, 6)
    y = box["y"] - origin["y"] + box["h"] / 2 - 3  # above the text line
    return canvas.evaluate(
        "(c, [x, y]) => { const d = window.devicePixelRatio || 1;"
        " return Array.from(c.getContext('2d').getImageData(Math.round(x * d), Math.round(y * d), 1, 1).data); }",
        [x, y],
    )


def width_of(dashboard: Any, task_id: str) -> float:
    return float(bar(dashboard, task_id).first.get_attribute("data-w"))


def test_the_timeline_shows_a_lane_per_gpu_and_live_bars_with_tooltips_and_logs(ui: Any) -> None:
    page = ui.page
    dashboard = open_from_palette(page)
    expect(dashboard.locator('[data-testid="orch-dash-tab-timeline"]')).to_have_attribute(
        "aria-selected", "true"
    )
    timeline = dashboard.locator('[data-testid="orch-dash-timeline"]')
    expect(timeline).to_be_visible()
    # a lane per GPU per worker, named by its worker
    lanes = timeline.locator('[data-testid="orch-timeline-lane"]')
    workers = [w for w in ui.server.api().get("/workers")["workers"] if w["state"] == "connected"]
    assert len(workers) == 2 and all(len(w["gpus"]) == 2 for w in workers)
    expect(lanes).to_have_count(4)
    for w in workers:
        mine = lanes.and_(page.locator(f'[data-worker="{w["name"]}"]'))
        expect(mine).to_have_count(2)
        expect(mine.and_(page.locator('[data-kind="gpu"]'))).to_have_count(2)
    expect(timeline.locator('[data-testid="orch-timeline-status"]')).to_contain_text("2 workers · 4 GPUs")
    # the admin panel is for a shared server's admins only
    expect(dashboard.locator('[data-testid="orch-dash-tab-admin"]')).to_be_hidden()

    # zoom: 15 min, then the wheel zooms in about the pointer (and stops following), Now follows again
    timeline.locator('[data-testid="orch-timeline-preset"]', has_text="15 min").click()
    span_label = timeline.locator('[data-testid="orch-timeline-span"]')
    expect(span_label).to_have_text("15 min, following now")
    canvas = timeline.locator('[data-testid="orch-timeline-canvas"]')
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.95, box["y"] + 10)
    for _ in range(8):
        page.mouse.wheel(0, -200)
    expect(span_label).not_to_contain_text("following")
    expect(span_label).to_have_text(re.compile(r"^(\d+ s|[1-4] min)$"))
    timeline.locator('[data-testid="orch-timeline-now"]').click()
    expect(span_label).to_contain_text("following now")
    expect(timeline.locator('[data-testid="orch-timeline-now"]')).to_have_attribute("aria-pressed", "true")

    # two GPU tasks through the SDK, each running until the test lets it end
    client = ui.server.client()
    gates, futures, names = {}, {}, {}
    for key, outcome in (("ok", "exit 0"), ("bad", "exit 3")):
        name = names[key] = unique(f"dash-{key}")
        gate = ui.server.root / f"{name}.go"
        gates[key] = gate
        futures[key] = client.submit_shell(
            f"echo hello from {name}; while [ ! -e {gate} ]; do sleep 0.05; done; {outcome}",
            gpus=1,
            name=name,
        )
    ids = {k: f.id for k, f in futures.items()}
    for key in ids:
        expect(bar(timeline, ids[key])).to_have_attribute("data-state", "running", timeout=LONG)
        expect(bar(timeline, ids[key])).to_have_attribute("data-mine", "true")
    # each holds a GPU lane of the worker it runs on
    for key in ids:
        task = ui.server.api().get(f"/tasks/{ids[key]}")
        lane = bar(timeline, ids[key]).first.get_attribute("data-lane")
        assert lane == f"{task['worker_id']}/gpu/{task['gpus'][0]}"
    # running bars grow
    w0 = width_of(timeline, ids["ok"])
    page.wait_for_function(
        "([sel, w0]) => { const el = document.querySelector(sel); return el && parseFloat(el.dataset.w) > w0 + 2; }",
        arg=[f'[data-testid="orch-timeline-bar"][data-task="{ids["ok"]}"]', w0],
        timeout=LONG,
    )
    if os.environ.get("ORCH_SCREENSHOTS"):  # bars wide enough to read in the docs
        page.wait_for_function(
            "sel => { const el = document.querySelector(sel); return el && parseFloat(el.dataset.w) > 150; }",
            arg=f'[data-testid="orch-timeline-bar"][data-task="{ids["ok"]}"]',
            timeout=LONG,
        )
    running_colour = pixel(page, timeline, ids["ok"])

    # hover: the tooltip names the task, its owner and state
    b = bar_box(timeline, ids["ok"])
    page.mouse.move(b["x"] + min(b["w"] / 2, 8), b["y"] + b["h"] / 2)
    tooltip = timeline.locator('[data-testid="orch-timeline-tooltip"]')
    expect(tooltip).to_be_visible()
    expect(tooltip.locator('[data-testid="orch-timeline-tooltip-name"]')).to_have_text(names["ok"])
    expect(tooltip).to_contain_text("state: running")
    expect(tooltip).to_contain_text("so far")
    shot(dashboard, "timeline")

    # they end: the same bars, new colours (succeeded and failed differ)
    for gate in gates.values():
        gate.write_text("go")
    expect(bar(timeline, ids["ok"])).to_have_attribute("data-state", "succeeded", timeout=LONG)
    expect(bar(timeline, ids["bad"])).to_have_attribute("data-state", "failed", timeout=LONG)
    page.mouse.move(box["x"] + 2, box["y"] + box["height"] - 2)  # off the bars
    expect(tooltip).to_be_hidden()
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"orch-timeline-tooltip\"]:not([hidden])')"
    )
    done_colour = pixel(page, timeline, ids["ok"])
    failed_colour = pixel(page, timeline, ids["bad"])
    assert done_colour != running_colour, (done_colour, running_colour)
    assert failed_colour not in (done_colour, running_colour), (failed_colour, done_colour)

    # a click on the user's own bar selects the task and opens its log in the sidebar
    b = bar_box(timeline, ids["ok"])
    page.mouse.click(b["x"] + min(b["w"] / 2, 8), b["y"] + b["h"] / 2)
    logs = ui.section("logs")
    expect(logs).to_be_visible()
    expect(
        logs.locator('[data-testid="orch-log-line"]').filter(has_text=f"hello from {names['ok']}")
    ).to_have_count(1, timeout=LONG)
    expect(ui.row("task", ids["ok"])).to_have_class(re.compile(r"\bjp-mod-selected\b"))
    shot(page, "with-sidebar")
    # opened on a task by a command (as another view would): that task is selected
    page.evaluate(
        "id => window.jupyterapp.commands.execute('jupyter-orch:dashboard', {panel: 'timeline', task: id})",
        ids["bad"],
    )
    expect(ui.row("task", ids["bad"])).to_have_class(re.compile(r"\bjp-mod-selected\b"))
    expect(dashboard.locator('[data-testid="orch-dash-tab-timeline"]')).to_have_attribute(
        "aria-selected", "true"
    )
    expect(page.locator(DASHBOARD)).to_have_count(1)


def test_the_queue_shows_a_waiting_task_with_its_reason_and_counts_it(ui: Any) -> None:
    page = ui.page
    dashboard = open_from_palette(page)
    name = unique("dash-huge")
    fut = ui.server.client().submit_shell("true", gpus=8, name=name)  # no worker has 8 GPUs
    try:
        tab = dashboard.locator('[data-testid="orch-dash-tab-queue"]')
        expect(tab).to_have_text(re.compile(r"^Queue \(\d+\)$"), timeout=LONG)
        tab.click()
        expect(tab).to_have_attribute("aria-selected", "true")
        queue = dashboard.locator('[data-testid="orch-dash-queue"]')
        row = queue.locator(f'[data-testid="orch-queue-row"][data-id="{fut.id}"]')
        expect(row).to_be_visible(timeout=LONG)
        expect(row).to_have_attribute("data-state", "pending")
        expect(row.locator('[data-testid="orch-queue-reason"]')).not_to_be_empty()
        reason = ui.server.api().get(f"/tasks/{fut.id}")["reason"]
        assert reason, "the server gives a waiting task a reason"
        expect(row.locator('[data-testid="orch-queue-reason"]')).to_contain_text(reason[:40], timeout=LONG)
        expect(row).to_contain_text("8 GPUs")
        expect(row).to_contain_text(name)
        waited = row.locator('[data-testid="orch-queue-waited"]')
        first = waited.inner_text()
        expect(waited).not_to_have_text(first, timeout=10_000)  # it ticks
        count = len(queue.locator('[data-testid="orch-queue-row"]').all())
        expect(tab).to_have_text(f"Queue ({count})")
        shot(dashboard, "queue")
    finally:
        ui.server.api().post(f"/tasks/{fut.id}/cancel")
    expect(dashboard.locator(f'[data-testid="orch-queue-row"][data-id="{fut.id}"]')).to_have_count(
        0, timeout=LONG
    )


def test_a_runs_row_opens_the_dashboard_on_its_task(ui: Any) -> None:
    """A waiting task's row opens the dashboard on the queue with that task selected; a
    finished one's, on the timeline."""
    page = ui.page
    waiting = ui.server.client().submit_shell("true", gpus=8, name=unique("row-huge"))  # never placed
    done = ui.server.client().submit_shell("true", name=unique("row-done"))
    try:
        done.result(LONG / 1000)
        row = ui.sidebar.locator(f'[data-testid="orch-run-row"][data-id="{waiting.id}"]')
        expect(row).to_be_visible(timeout=LONG)
        row.locator('[data-testid="orch-row-dashboard"]').click()
        dashboard = page.locator(DASHBOARD)
        expect(dashboard).to_be_visible()
        expect(dashboard.locator('[data-testid="orch-dash-tab-queue"]')).to_have_attribute(
            "aria-selected", "true"
        )
        expect(row).to_have_class(re.compile(r"jp-mod-selected"))  # the task is the selection
        finished = ui.sidebar.locator(f'[data-testid="orch-run-row"][data-id="{done.id}"]')
        expect(finished).to_have_attribute("data-state", "succeeded", timeout=LONG)
        finished.locator('[data-testid="orch-row-dashboard"]').click()
        expect(dashboard.locator('[data-testid="orch-dash-tab-timeline"]')).to_have_attribute(
            "aria-selected", "true"
        )
        expect(finished).to_have_class(re.compile(r"jp-mod-selected"))
        expect(page.locator(DASHBOARD)).to_have_count(1)
    finally:
        ui.server.api().post(f"/tasks/{waiting.id}/cancel")


def test_opening_it_again_activates_the_same_widget(ui: Any) -> None:
    page = ui.page
    dashboard = open_from_palette(page)
    marker = dashboard.evaluate("el => (el.dataset.mark = 'first')")
    assert marker == "first"
    # away to a launcher, back from the sidebar's button
    page.evaluate("window.jupyterapp.commands.execute('launcher:create')")
    expect(dashboard).to_be_hidden()
    ui.sidebar.locator('[data-testid="orch-open-dashboard"]').click()
    expect(dashboard).to_be_visible()
    expect(page.locator(DASHBOARD)).to_have_count(1)
    expect(dashboard).to_have_attribute("data-mark", "first")
    # a command with a panel: the same widget, on that panel
    page.evaluate("window.jupyterapp.commands.execute('launcher:create')")
    expect(dashboard).to_be_hidden()
    page.evaluate("window.jupyterapp.commands.execute('jupyter-orch:dashboard', {panel: 'queue'})")
    expect(dashboard).to_be_visible()
    expect(page.locator(DASHBOARD)).to_have_count(1)
    expect(dashboard.locator('[data-testid="orch-dash-tab-queue"]')).to_have_attribute(
        "aria-selected", "true"
    )
    expect(dashboard.locator('[data-testid="orch-dash-queue"]')).to_be_visible()
    expect(dashboard.locator('[data-testid="orch-dash-timeline"]')).to_be_hidden()
    # the layout restorer: a reload brings it back, on the panel it showed
    page.wait_for_function(
        "async () => { const r = await fetch('/lab/api/workspaces/default'); const j = await r.json();"
        " const d = (j.data || {})['jupyter-orch-dashboard:dashboard'];"
        " return !!d && !!d.data && d.data.panel === 'queue'; }",
        polling=250,
    )
    page.goto(ui.url().replace("reset=&", ""))
    expect(page.locator("#jupyterlab-splash")).to_have_count(0, timeout=LONG)
    expect(dashboard).to_be_visible()
    expect(dashboard.locator('[data-testid="orch-dash-tab-queue"]')).to_have_attribute(
        "aria-selected", "true"
    )
    # the main area's tab of the dashboard is one
    expect(
        page.locator('.lm-DockPanel-tabBar .lm-TabBar-tab[data-id="jupyter-orch-dashboard"]')
    ).to_have_count(1)


# ---------------------------------------------------------------- a server shared by a team
# (the hub users, quotas, the worker with four GPUs and the running and queued work of
# tests/lab/test_admin_sidebar.py: alice runs a GPU task, bob runs one and has one queued)
from test_admin_sidebar import open_as, team, work  # noqa: E402, F401


def open_dashboard(page: Any) -> Any:
    page.locator('[data-testid="orch-open-dashboard"]').click()
    dashboard = page.locator(DASHBOARD)
    expect(dashboard).to_be_visible()
    return dashboard


def test_an_admin_sees_gpus_and_quota_use_per_user_and_group_and_others_work_muted(
    team: OrchServer,  # noqa: F811
    work: dict[str, str],  # noqa: F811
    open_as: Any,  # noqa: F811
) -> None:
    page = open_as("admin")
    dashboard = open_dashboard(page)
    # on the timeline everyone's work, named (the admin reads all), but not the admin's: muted
    timeline = dashboard.locator('[data-testid="orch-dash-timeline"]')
    expect(timeline.locator('[data-testid="orch-timeline-lane"][data-kind="gpu"]')).to_have_count(4)
    for key in ("alice", "bob"):
        b = bar(timeline, work[key])
        expect(b).to_have_attribute("data-state", "running", timeout=LONG)
        expect(b).to_have_attribute("data-mine", "false")
    tab = dashboard.locator('[data-testid="orch-dash-tab-admin"]')
    expect(tab).to_be_visible(timeout=LONG)
    if os.environ.get("ORCH_SCREENSHOTS"):  # zoomed in on the last minutes, bars wide enough to read
        box = timeline.locator('[data-testid="orch-timeline-canvas"]').bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.95, box["y"] + 10)
        for _ in range(12):
            page.mouse.wheel(0, -200)
        timeline.locator('[data-testid="orch-timeline-now"]').click()
        page.mouse.move(0, 0)
        page.wait_for_function(
            "sel => { const el = document.querySelector(sel); return el && parseFloat(el.dataset.w) > 150; }",
            arg=f'[data-testid="orch-timeline-bar"][data-task="{work["alice"]}"]',
            timeout=LONG,
        )
    shot(dashboard, "timeline-team")
    tab.click()
    admin = dashboard.locator('[data-testid="orch-dash-admin"]')
    expect(admin).to_be_visible()
    expect(admin.locator('[data-testid="orch-dash-admin-summary"]')).to_have_text(
        "2 running · 1 queued · 2 of 4 GPUs held"
    )
    users = admin.locator('[data-testid="orch-dash-admin-user"]')
    alice = users.and_(page.locator('[data-user="alice"]'))
    bob = users.and_(page.locator('[data-user="bob"]'))
    expect(alice.locator('[data-testid="orch-dash-admin-meter"]').first).to_have_text("1 of 4 GPUs")
    expect(bob.locator('[data-testid="orch-dash-admin-meter"]').first).to_have_text("1 of 1 GPUs")
    expect(bob).to_have_attribute("data-full", "true")  # at his GPU quota
    expect(bob).to_contain_text("1 of 10 queued")
    group = admin.locator('[data-testid="orch-dash-admin-group"][data-group="ml-team"]')
    expect(group).to_contain_text("1 of 2 GPUs")
    expect(group).to_contain_text("1 of 2 H100")
    shares = admin.locator('[data-testid="orch-dash-admin-shares"]')
    expect(shares).to_have_attribute("aria-label", re.compile(r"alice 1.*bob 1.* of 4"))
    shot(dashboard, "admin")


def test_a_user_sees_others_gpu_time_anonymously_and_no_admin_panel(
    team: OrchServer,  # noqa: F811
    work: dict[str, str],  # noqa: F811
    open_as: Any,  # noqa: F811
) -> None:
    page = open_as("alice")
    dashboard = open_dashboard(page)
    timeline = dashboard.locator('[data-testid="orch-dash-timeline"]')
    mine = bar(timeline, work["alice"])
    expect(mine).to_have_attribute("data-state", "running", timeout=LONG)
    expect(mine).to_have_attribute("data-mine", "true")
    # bob's running task: busy time on a GPU, without its name or id
    others = timeline.locator('[data-testid="orch-timeline-bar"][data-mine="false"][data-state="running"]')
    expect(others).to_have_count(1, timeout=LONG)
    expect(others).to_have_attribute("data-task", "")
    expect(others).to_have_attribute("data-name", "")
    expect(dashboard.locator('[data-testid="orch-dash-tab-admin"]')).to_be_hidden()
    # the queue holds alice's own waiting work only (bob's queued task is not hers)
    expect(dashboard.locator('[data-testid="orch-dash-tab-queue"]')).to_have_text("Queue")
