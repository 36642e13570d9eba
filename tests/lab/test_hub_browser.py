"""Team mode in the browser: Chromium logs in to a real JupyterHub as alice, the hub spawns
her server (client mode, JupyterLab with this checkout's extension), and the sidebar,
talking to the one orchestrator service through her server, lists her workflow run and
not bob's."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ARTIFACTS, BUILT, SIDEBAR, _lab_settings
from playwright.sync_api import expect

from support.hubprocess import PROXY
from support.teamhub import TeamHub

LONG = 120_000


def flow(name: str) -> dict[str, str]:
    return {
        "source": f"name: {name}\ntasks:\n  - name: only\n    shell: echo {name}\n",
        "filename": f"{name}.yaml",
    }


@pytest.fixture
def team(tmp_path: Path) -> Iterator[TeamHub]:
    if not PROXY.exists():
        pytest.fail(f"{PROXY} is missing: run scripts/hub-test-deps.sh (scripts/test.sh does)")
    if shutil.which("jupyterhub-singleuser", path=str(Path(sys.executable).parent)) is None:
        pytest.fail("jupyterhub is not installed: pip install -e '.[test]'")
    hub = TeamHub(tmp_path / "team", lab=True)
    try:
        yield hub.start()
    finally:
        hub.cleanup()


def prepare_home(team: TeamHub, user: str) -> None:
    """This checkout's built extension and the test lab settings, in the user's own Jupyter dirs
    (the spawner gives their server HOME = their home)."""
    home = team.home(user)
    package = json.loads((BUILT / "package.json").read_text())
    link = home / ".local" / "share" / "jupyter" / "labextensions" / package["name"]
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(BUILT, target_is_directory=True)
    _lab_settings(home / ".jupyter")


@pytest.mark.timeout(400)
def test_alice_logs_in_through_the_hub_and_her_sidebar_shows_only_her_runs(
    team: TeamHub, browser: Any
) -> None:
    prepare_home(team, "alice")
    alice, bob = team.orch(team.user_token("alice")), team.orch(team.user_token("bob"))
    hers = alice.post("/workflows", flow("alices-run"))
    his = bob.post("/workflows", flow("bobs-run"))
    for api, run in ((alice, hers), (bob, his)):
        assert api.get(f"/workflows/{run['id']}/wait?timeout=90")["state"] == "succeeded"

    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    context.set_default_timeout(60_000)
    page = context.new_page()
    try:
        page.goto(f"http://127.0.0.1:{team.port}/hub/login")
        page.fill("input[name=username]", "alice")
        page.fill("input[name=password]", "any")
        page.click("input[type=submit], button[type=submit]")
        page.wait_for_url("**/user/alice/lab**", timeout=LONG)
        expect(page.locator("#jupyterlab-splash")).to_have_count(0, timeout=LONG)
        sidebar = page.locator(SIDEBAR)
        if not sidebar.is_visible():
            page.locator(f'.jp-SideBar .lm-TabBar-tab[data-id="{SIDEBAR[1:]}"]').click()
        expect(sidebar.locator('[data-testid="orch-connection"]')).to_have_attribute(
            "data-state", "open", timeout=LONG
        )
        rows = sidebar.locator('[data-testid="orch-run-row"]')
        expect(rows.filter(has_text="alices-run")).to_be_visible(timeout=LONG)
        expect(rows.filter(has_text="bobs-run")).to_have_count(0)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        sidebar.screenshot(path=str(ARTIFACTS / "hub-alice-sidebar.png"), animations="disabled")
    except Exception:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "FAILED-hub-login.png"))
        raise
    finally:
        context.close()
