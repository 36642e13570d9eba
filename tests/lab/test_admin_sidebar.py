"""The sidebar's admin view in a real JupyterLab on a server shared by several users (users as
JupyterHub gives them: ``support/identities.py``), driven in Chromium: an admin sees every
user's running and queued work with its owner, GPUs held and quota use per user and group,
and cancels bob's queued task from it; alice sees no admin view and only her own work.

Each page acts as its user: JupyterLab sends the token of its page config with every request
(and on its WebSockets), so each user's page reads its config with that user's token in it.
The worker's four H100s come from the stand-in ``pynvml`` (``support/fakenvml``); tasks hold their slot until the
test creates a file. Every wait is on something the page shows, or on the events stream."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from support.identities import IDENTITY_ARGS, hub_users
from support.orchserver import OrchServer

pytestmark = pytest.mark.timeout(300)

REPO = Path(__file__).resolve().parents[2]
BUILT = REPO / "jupyter_orch" / "labextension"
ARTIFACTS = Path(os.environ.get("ORCH_LAB_ARTIFACTS") or REPO / "tests" / "lab" / "artifacts")
SIDEBAR = "#jupyter-orch-sidebar"
LONG = 60_000  # ms: JupyterLab's first load on a busy machine
MODEL = "NVIDIA H100 80GB HBM3"  # what the stand-in pynvml reports
FAKE_NVML = Path(__file__).resolve().parents[1] / "support" / "fakenvml"
QUOTAS = {
    "default": {"gpus": 4, "running": 8, "queued": 1000},
    "users": {"bob": {"gpus": 1, "running": 4, "queued": 10}},
    "groups": {"ml-team": {"gpus": 2, "gpu_types": {"H100": 2}}},
}
USERS = hub_users(
    alice={"groups": ["ml-team"]},
    bob={},
    carl={},
    admin={"scopes": ["custom:orch:admin"]},
)
BOBS_QUOTA = "waiting: you use 1 of your 1 GPUs"
# JupyterLab sends the token of its page config with every request and on its WebSockets: the
# page reads the config as the user's, with that user's token in it
AS_USER = """
(() => {
  const byId = Document.prototype.getElementById;
  Document.prototype.getElementById = function (id) {
    const el = byId.call(this, id);
    if (id === 'jupyter-config-data' && el && !el.dataset.orchTestUser) {
      const config = JSON.parse(el.textContent || '{}');
      config.token = %s;
      el.textContent = JSON.stringify(config);
      el.dataset.orchTestUser = 'yes';
    }
    return el;
  };
})();
"""


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrchServer]:
    """A whole Jupyter server with JupyterLab and the extension (the checkout's build, linked
    as tests/lab/conftest.py does), users alice, bob and admin, quotas, one local worker with
    four GPUs and four slots."""
    root = tmp_path_factory.mktemp("team-lab")
    package = json.loads((BUILT / "package.json").read_text())
    link = root / "data" / "labextensions" / package["name"]
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(BUILT, target_is_directory=True)
    settings = root / "config" / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    env = {
        **USERS,
        "PYTHONPATH": f"{FAKE_NVML}:{USERS['PYTHONPATH']}",
        "FAKE_GPUS": "4",
        "MPLBACKEND": "agg",
        # in a virtualenv jupyter_core searches the environment's share/ first, where an
        # installed copy of the extension (perhaps older than this checkout's build) would win
        "JUPYTER_PREFER_ENV_PATH": "0",
    }
    server = OrchServer(
        root,
        full=True,
        workers=1,
        args=[
            "--ServerApp.open_browser=False",
            *IDENTITY_ARGS,
            "--LocalProvider.slots_per_worker=4",
            f"--OrchApp.quotas={json.dumps(QUOTAS)}",
        ],
        env=env,
    )
    try:
        server.start(timeout=120)
        server.wait_workers()
        yield server
    finally:
        server.cleanup()


def wait_task(server: OrchServer, task_id: str, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Block until ``done(task)`` holds, on the admin's events stream (everyone's tasks)."""
    ws = server.ws("/events?types=task", token="admin-token")
    ws.settimeout(60)
    deadline = time.monotonic() + 60
    try:
        json.loads(ws.recv())  # hello: subscribed from here on
        task = server.api("admin-token").get(f"/tasks/{task_id}")
        while not done(task):
            if time.monotonic() > deadline:
                raise TimeoutError(f"task {task_id} is {task['state']} ({task.get('reason')})")
            event = json.loads(ws.recv())
            if event.get("type") == "task" and event["task"]["id"] == task_id:
                task = event["task"]
        return task
    finally:
        ws.close()


def submit(team: OrchServer, user: str, name: str) -> str:
    """A GPU task of ``user`` that holds its slot until the test creates the file ``go``."""
    task = {
        "kind": "shell",
        "name": name,
        "command": f"while [ ! -e {team.root / 'go'} ]; do sleep 0.05; done",
        "resources": {"gpus": 1, "cpus": 0.25},
    }
    return str(team.api(f"{user}-token").post("/tasks", task)["id"])


@pytest.fixture(scope="module")
def work(team: OrchServer) -> Iterator[dict[str, str]]:
    """alice runs a GPU task; bob runs one and has a second queued (his quota is one GPU)."""
    go = team.root / "go"

    for user in ("alice", "bob"):  # as their sidebars do: the server learns their hub groups
        team.api(f"{user}-token").get("/info")
    tasks = {"alice": submit(team, "alice", "alice-train"), "bob": submit(team, "bob", "bob-train")}
    for task_id in tasks.values():
        wait_task(team, task_id, lambda t: t["state"] == "running")
    tasks["bob-queued"] = submit(team, "bob", "bob-sweep")
    wait_task(team, tasks["bob-queued"], lambda t: t.get("reason") == BOBS_QUOTA)
    try:
        yield tasks
    finally:
        go.touch()
        for task_id in tasks.values():
            wait_task(team, task_id, lambda t: t["state"] in ("succeeded", "cancelled"))


@pytest.fixture
def open_as(team: OrchServer, browser: Any, request: pytest.FixtureRequest) -> Iterator[Callable[[str], Any]]:
    """``open_as(user)``: a page on /lab acting as ``user``, the sidebar open and connected.
    How each page was left is in the artifacts (``LAST-<test>-<n>.png``)."""
    contexts: list[Any] = []

    def open_page(user: str) -> Any:
        token = f"{user}-token"
        context = browser.new_context(viewport={"width": 1500, "height": 1000})
        contexts.append(context)
        context.set_default_timeout(30_000)

        context.add_init_script(AS_USER % json.dumps(token))
        page = context.new_page()
        page.goto(f"{team.url}/lab?reset&token={token}")
        expect(page.locator("#jupyterlab-splash")).to_have_count(0, timeout=LONG)
        sidebar = page.locator(SIDEBAR)
        if not sidebar.is_visible():
            page.locator(f'.jp-SideBar .lm-TabBar-tab[data-id="{SIDEBAR[1:]}"]').click()
        expect(sidebar).to_be_visible()
        widen(page, sidebar)
        expect(sidebar.locator('[data-testid="orch-connection"]')).to_have_attribute(
            "data-state", "open", timeout=LONG
        )
        return page

    try:
        yield open_page
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for i, context in enumerate(contexts):
            for page in context.pages:  # how each page was left (a failing test's last view)
                try:
                    page.screenshot(path=str(ARTIFACTS / f"LAST-{request.node.name}-{i}.png"))
                except Exception:
                    pass
            context.close()


def widen(page: Any, sidebar: Any, width: int = 460) -> None:
    """Drag the left area's edge so the sidebar is ``width`` pixels wide."""
    box = sidebar.bounding_box()
    if box is None or abs(box["width"] - width) < 4:
        return
    edge_x, mid_y = box["x"] + box["width"] + 2, box["y"] + box["height"] / 2
    page.mouse.move(edge_x, mid_y)
    page.mouse.down()
    page.mouse.move(edge_x + width - box["width"], mid_y, steps=5)
    page.mouse.up()


def screenshot(target: Any, name: str) -> None:
    """``name``.png as an artifact, and in docs/images/ with ORCH_LAB_UPDATE_DOCS=1."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    target.screenshot(path=str(path), animations="disabled")
    if os.environ.get("ORCH_LAB_UPDATE_DOCS") == "1":
        shutil.copyfile(path, REPO / "docs" / "images" / f"{name}.png")


def test_an_admin_sees_everyones_work_and_cancels_bobs_queued_task(
    team: OrchServer, work: dict[str, str], open_as: Callable[[str], Any]
) -> None:
    page = open_as("admin")
    sidebar = page.locator(SIDEBAR)
    admin = sidebar.locator('[data-testid="orch-admin"]')
    expect(admin).to_be_visible()
    tasks = admin.locator('[data-testid="orch-admin-task"]')
    expect(tasks).to_have_count(3)
    for key, owner, state in (
        ("alice", "alice", "running"),
        ("bob", "bob", "running"),
        ("bob-queued", "bob", "pending"),
    ):
        row = tasks.and_(page.locator(f'[data-id="{work[key]}"]'))
        expect(row).to_have_attribute("data-owner", owner)
        expect(row).to_have_attribute("data-state", state)
        expect(row.locator('[data-testid="orch-admin-owner"]')).to_have_text(owner)
    queued = tasks.and_(page.locator(f'[data-id="{work["bob-queued"]}"]'))
    expect(queued).to_contain_text(BOBS_QUOTA)
    # GPUs held and quota use, per user and per group
    quota = '[data-testid="orch-admin-quota"]'
    users = admin.locator('[data-testid="orch-admin-user"]')
    expect(users.and_(page.locator('[data-user="alice"]')).locator(quota)).to_have_text(
        "alice: 1 of 4 GPUs, 1 of 8 running, 0 of 1000 queued"
    )
    bob = users.and_(page.locator('[data-user="bob"]'))
    expect(bob.locator(quota)).to_have_text("bob: 1 of 1 GPUs, 1 of 4 running, 1 of 10 queued")
    expect(bob).to_have_attribute("data-full", "true")  # at his GPU quota
    group = admin.locator('[data-testid="orch-admin-group"][data-group="ml-team"]')
    expect(group.locator(quota)).to_have_text("ml-team: 1 of 2 GPUs, 1 of 2 H100, 1 running, 0 queued")
    expect(admin.locator('[data-testid="orch-admin-summary"]')).to_have_text(
        "2 running · 1 queued · 2 of 4 GPUs held"
    )
    # the other sections folded, as an admin watching the service would: the admin view fills the sidebar
    for title in ("Runs", "Workflow steps", "Workers", "Logs"):
        heading = sidebar.locator(".lm-AccordionPanel-title", has_text=re.compile(f"^{title}$", re.I))
        heading.click()
        expect(heading).to_have_attribute("aria-expanded", "false")
    screenshot(admin, "admin-view")

    # the admin cancels bob's queued task: gone from the work, bob's queue empties, bob reads it cancelled
    queued.locator('[data-testid="orch-admin-cancel"]').click()
    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_contain_text("bob's task bob-sweep")
    dialog.locator(".jp-mod-accept").click()
    expect(queued).to_have_count(0)
    expect(tasks).to_have_count(2)
    expect(bob.locator(quota)).to_have_text("bob: 1 of 1 GPUs, 1 of 4 running, 0 of 10 queued")
    assert team.api("bob-token").get(f"/tasks/{work['bob-queued']}")["state"] == "cancelled"
    # the admin's own Runs list stays theirs: others' news goes to the admin view only
    expect(sidebar.locator('[data-testid="orch-run-row"]')).to_have_count(0)


def test_a_user_without_the_scope_sees_no_admin_view_and_only_their_own_work(
    team: OrchServer, work: dict[str, str], open_as: Callable[[str], Any]
) -> None:
    page = open_as("alice")
    sidebar = page.locator(SIDEBAR)
    rows = sidebar.locator('[data-testid="orch-run-row"]')
    expect(rows.and_(page.locator(f'[data-id="{work["alice"]}"]'))).to_have_attribute("data-state", "running")
    # the rights were read before the runs: by now an admin view would be there
    expect(sidebar.locator('[data-testid="orch-admin"]')).to_have_count(0)
    expect(rows).to_have_count(1)
    for key in ("bob", "bob-queued"):
        expect(sidebar.locator(f'[data-id="{work[key]}"]')).to_have_count(0)
    assert team.api("alice-token").get("/info")["rights"] == {"read_all": False, "admin": False}


def test_a_gpu_task_waiting_for_capacity_shows_its_place_in_line_in_its_row(
    team: OrchServer, work: dict[str, str], open_as: Callable[[str], Any]
) -> None:
    carl = team.api("carl-token")
    holding = [submit(team, "carl", f"carl-train-{i}") for i in range(2)]  # the last two GPUs and slots
    for task_id in holding:
        wait_task(team, task_id, lambda t: t["state"] == "running")
    waiting = [submit(team, "carl", f"carl-sweep-{i}") for i in range(2)]
    try:
        page = open_as("carl")
        rows = page.locator(SIDEBAR).locator('[data-testid="orch-run-row"]')
        use = "(fair share: your recent use is 0.0 GPU-hours)"
        for place, task_id in zip(("1st", "2nd"), waiting, strict=True):
            row = rows.and_(page.locator(f'[data-id="{task_id}"]'))
            expect(row).to_have_attribute("data-state", "pending")
            expect(row.locator(".jp-OrchRow-meta")).to_have_text(f"waiting: {place} in line for GPUs {use}")
        running = rows.and_(page.locator(f'[data-id="{holding[0]}"]')).locator(".jp-OrchRow-meta")
        expect(running).to_contain_text("carl · 1 GPU")  # a task not waiting shows its facts
        screenshot(page.locator(SIDEBAR), "place-in-line")
    finally:
        for task_id in holding + waiting:
            carl.post(f"/tasks/{task_id}/cancel")
